//! One colour per runtime, the same in every chart and table.
//!
//! Known rows get fixed colours from the Okabe-Ito / Tableau palettes (distinguishable with the
//! common colour-vision deficiencies); any other name (an external `--label`) gets a colour
//! derived from its name, so it too is stable across charts and across runs.

use plotters::style::RGBColor;

const KNOWN: &[(&str, RGBColor)] = &[
    ("uring", RGBColor(0xD5, 0x5E, 0x00)),
    ("tokio", RGBColor(0x00, 0x72, 0xB2)),
    ("tokio-mt", RGBColor(0x56, 0xB4, 0xE9)),
    ("glommio", RGBColor(0x00, 0x9E, 0x73)),
    ("monoio", RGBColor(0xCC, 0x79, 0xA7)),
    ("monoio-epoll", RGBColor(0x2C, 0xA0, 0x2C)),
    ("compio", RGBColor(0xE6, 0x9F, 0x00)),
    ("threads", RGBColor(0x8C, 0x56, 0x4B)),
    ("nats-server", RGBColor(0x33, 0x22, 0x88)),
    ("floor", RGBColor(0x40, 0x40, 0x40)),
];

const FALLBACK: &[RGBColor] = &[
    RGBColor(0x17, 0xBE, 0xCF),
    RGBColor(0xBC, 0xBD, 0x22),
    RGBColor(0x94, 0x67, 0xBD),
    RGBColor(0xE3, 0x77, 0xC2),
    RGBColor(0x7F, 0x7F, 0x7F),
    RGBColor(0x2C, 0xA0, 0x2C),
];

/// The fixed colour of a known row; `None` for any other name.
pub fn known_runtime_colour(name: &str) -> Option<RGBColor> {
    KNOWN
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, colour)| *colour)
}

/// The colour of a runtime row.
pub fn runtime_colour(name: &str) -> RGBColor {
    if let Some(colour) = known_runtime_colour(name) {
        return colour;
    }
    // FNV-1a: stable across builds and platforms, unlike std's RandomState.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    FALLBACK[(hash % FALLBACK.len() as u64) as usize]
}

/// `#rrggbb` for HTML.
pub fn css(colour: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", colour.0, colour.1, colour.2)
}

/// Colours for the syscall-mix segments (Tableau 10 without its grey, which is
/// [`OTHER_SYSCALLS`]): one per named syscall, in legend order.
pub fn syscall_colour(index: usize) -> RGBColor {
    const MIX: &[RGBColor] = &[
        RGBColor(0x4E, 0x79, 0xA7),
        RGBColor(0xF2, 0x8E, 0x2B),
        RGBColor(0xE1, 0x57, 0x59),
        RGBColor(0x76, 0xB7, 0xB2),
        RGBColor(0x59, 0xA1, 0x4F),
        RGBColor(0xED, 0xC9, 0x48),
        RGBColor(0xB0, 0x7A, 0xA1),
        RGBColor(0xFF, 0x9D, 0xA7),
        RGBColor(0x9C, 0x75, 0x5F),
    ];
    MIX[index % MIX.len()]
}

/// The "other syscalls" segment: neutral grey.
pub const OTHER_SYSCALLS: RGBColor = RGBColor(0xBA, 0xB0, 0xAC);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_runtimes_have_distinct_colours() {
        for (i, (a, ca)) in KNOWN.iter().enumerate() {
            for (b, cb) in &KNOWN[i + 1..] {
                assert_ne!(ca, cb, "{a} and {b} share a colour");
            }
        }
    }

    #[test]
    fn unknown_runtime_colour_is_stable() {
        assert_eq!(runtime_colour("my-server"), runtime_colour("my-server"));
        assert_eq!(css(runtime_colour("uring")), "#d55e00");
    }
}
