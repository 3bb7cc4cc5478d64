//! The instrument's own limits as they apply to one result: the calibrated ceiling, the
//! headroom (ceiling / throughput), and the read-delay bound.
//!
//! The ceiling depends on how the server packs messages into segments: one message per
//! segment costs the receiver a completion per message, 64 per segment one per 64. The
//! calibration measures both ends (`calibrate --frames-per-send 1,64`); a result's ceiling is
//! interpolated between them, geometrically in the messages per receive completion the load
//! generator actually saw in that result (so a server that batches is not held to the
//! one-per-segment ceiling, and one that does not is not credited with the batched one).
//! When the one-per-segment climb ended because the blaster saturated, that ceiling is a
//! lower bound and so is the headroom derived from it; the results say so.

use std::sync::OnceLock;

use crate::calibrate::{Calibration, Ceiling, READ_DELAY_P99_LIMIT_NS};

/// Headroom below which a result is instrument-limited.
pub const HEADROOM_LIMIT: f64 = 1.5;

static CALIBRATION: OnceLock<Calibration> = OnceLock::new();

/// Makes `calibration` the one every later result of this process is read against.
pub fn set_calibration(calibration: Calibration) {
    let _ = CALIBRATION.set(calibration);
}

/// Reads a calibration from `path`: the file `fanbench calibrate --out` writes, or a
/// bench-all results.json (its top-level `calibration`), and makes it this process's.
pub fn load_calibration(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the calibration {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    // A `fanbench calibrate --out` file cut short by a signal: configurations are missing. (A
    // results.json's `partial` is about its pairs; its calibration is whole or null.)
    if value.get("calibration").is_none()
        && value.get("partial") == Some(&serde_json::Value::Bool(true))
    {
        anyhow::bail!(
            "{} is a partial calibration (interrupted before every configuration was \
             measured): run `fanbench calibrate` again",
            path.display()
        );
    }
    let calibration = match value.get("calibration") {
        Some(serde_json::Value::Null) => anyhow::bail!(
            "{} holds no calibration (that run skipped it)",
            path.display()
        ),
        Some(inner) => serde_json::from_value(inner.clone()),
        None => serde_json::from_value(value),
    }
    .with_context(|| format!("{} holds no fanbench calibration", path.display()))?;
    set_calibration(calibration);
    Ok(())
}

pub fn calibration() -> Option<&'static Calibration> {
    CALIBRATION.get()
}

/// The read delay p99 bound, in ns.
pub fn read_delay_limit_ns() -> u64 {
    READ_DELAY_P99_LIMIT_NS
}

/// The ceiling (deliveries/s) for `payload_bytes` at `messages_per_receive`, whether it is a
/// lower bound, or why there is none.
pub fn ceiling(
    calibration: &Calibration,
    payload_bytes: usize,
    messages_per_receive: Option<f64>,
) -> Result<(f64, bool), String> {
    let mut sizes: Vec<usize> = calibration
        .ceilings
        .iter()
        .map(|c| c.payload_bytes)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let Some(size) = sizes.iter().copied().find(|&s| s >= payload_bytes) else {
        return Err(format!(
            "no calibration at {payload_bytes} B payloads (largest calibrated: {} B)",
            sizes.last().copied().unwrap_or(0)
        ));
    };
    let mut at_size: Vec<&Ceiling> = calibration
        .ceilings
        .iter()
        .filter(|c| c.payload_bytes == size)
        .collect();
    at_size.sort_by_key(|c| c.frames_per_send);
    let measured: Vec<(f64, f64, bool)> = at_size
        .iter()
        .filter_map(|c| {
            c.ceiling_deliveries_per_s.map(|v| {
                (
                    c.frames_per_send as f64,
                    v,
                    c.ended_by == "blaster-saturated",
                )
            })
        })
        .collect();
    let (Some(low), Some(high)) = (measured.first().copied(), measured.last().copied()) else {
        return Err(format!(
            "the calibration at {size} B found no load the load generator sustained"
        ));
    };
    let k = messages_per_receive.unwrap_or(low.0).max(1.0);
    if high.0 <= low.0 || k <= low.0 {
        return Ok((low.1, low.2));
    }
    if k >= high.0 {
        return Ok((high.1, high.2));
    }
    let t = (k.ln() - low.0.ln()) / (high.0.ln() - low.0.ln());
    Ok((low.1 * (high.1 / low.1).powf(t), low.2 || high.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calibration {
        let c = |payload_bytes, frames_per_send, v: Option<f64>, ended_by: &str| Ceiling {
            payload_bytes,
            frames_per_send,
            subscribers: 100,
            ceiling_deliveries_per_s: v,
            ended_by: ended_by.into(),
            pacer_retries: 0,
            steps: Vec::new(),
        };
        Calibration {
            receive_path: "test".into(),
            server_cpus: vec![0],
            client_cpus: vec![1],
            step_s: 1.0,
            ceilings: vec![
                c(128, 1, Some(400_000.0), "blaster-saturated"),
                c(128, 64, Some(1_600_000.0), "load-generator"),
                c(1024, 1, None, "load-generator"),
            ],
        }
    }

    #[test]
    fn the_ceiling_follows_how_many_messages_each_receive_carried() {
        let cal = cal();
        assert_eq!(ceiling(&cal, 128, Some(1.0)), Ok((400_000.0, true)));
        assert_eq!(ceiling(&cal, 100, Some(64.0)), Ok((1_600_000.0, false)));
        // 8 per receive is halfway between 1 and 64 on a log scale: 400k x 2.
        let (mid, lower) = ceiling(&cal, 128, Some(8.0)).expect("ceiling");
        assert!((mid - 800_000.0).abs() < 1.0, "{mid}");
        assert!(
            lower,
            "interpolating from a lower bound gives a lower bound"
        );
        assert_eq!(ceiling(&cal, 128, None), Ok((400_000.0, true)));
    }

    #[test]
    fn no_ceiling_beyond_the_calibrated_sizes_or_when_nothing_passed() {
        let cal = cal();
        assert!(ceiling(&cal, 4096, Some(1.0))
            .unwrap_err()
            .contains("largest calibrated: 1024"));
        assert!(ceiling(&cal, 1024, Some(1.0))
            .unwrap_err()
            .contains("no load"));
    }
}
