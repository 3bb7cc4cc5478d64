//! The syscall mix of one scenario: per runtime, a stacked bar of syscalls per delivered
//! message split by syscall (`server.syscalls.breakdown` summed over repetitions).

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::{
    category_label, fmt_sig3, label_above, plot_err, render_svg, slug, zero_based_range, Chart,
    DESC_SIZE, FONT, LABEL_SIZE, TITLE_SIZE,
};
use crate::model::{Entry, ResultsDoc};
use crate::palette::{runtime_colour, syscall_colour, OTHER_SYSCALLS};

/// Syscalls listed by name before the rest is folded into "other".
const MAX_NAMED: usize = 9; // = the distinct colours of palette::syscall_colour

/// Per-message syscall counts by name for one entry, or why there are none.
fn mix(entry: &Entry) -> Result<BTreeMap<String, f64>, String> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut delivered = 0_u64;
    for rep in &entry.repetitions {
        let syscalls = rep.server.as_ref().and_then(|s| s.syscalls.as_ref());
        let Some(syscalls) = syscalls.filter(|s| !s.breakdown.is_empty()) else {
            let reason = syscalls
                .and_then(|s| {
                    s.breakdown_null_reason
                        .clone()
                        .or_else(|| s.null_reason.clone())
                })
                .unwrap_or_else(|| "no syscall breakdown recorded".to_owned());
            return Err(reason);
        };
        for (name, count) in &syscalls.breakdown {
            *counts.entry(name.clone()).or_default() += count;
        }
        delivered += rep.headline.delivered;
    }
    if entry.repetitions.is_empty() {
        return Err("no repetitions recorded".to_owned());
    }
    if delivered == 0 {
        return Err("no message delivered".to_owned());
    }
    Ok(counts
        .into_iter()
        .map(|(name, count)| (name, count as f64 / delivered as f64))
        .collect())
}

/// Orders syscall names by their largest per-message count, keeps the top ones, "other" last.
fn legend_order(mixes: &[&BTreeMap<String, f64>]) -> Vec<String> {
    let mut weight: BTreeMap<&str, f64> = BTreeMap::new();
    for mix in mixes {
        for (name, value) in *mix {
            let w = weight.entry(name).or_default();
            *w = w.max(*value);
        }
    }
    let mut names: Vec<(&str, f64)> = weight
        .into_iter()
        .filter(|(name, value)| *name != "other" && *value > 0.0)
        .collect();
    names.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let mut order: Vec<String> = names
        .into_iter()
        .take(MAX_NAMED)
        .map(|(n, _)| n.to_owned())
        .collect();
    order.push("other".to_owned());
    order
}

fn segment_colour(order: &[String], slot: usize) -> RGBColor {
    if order.get(slot).is_some_and(|name| name == "other") {
        OTHER_SYSCALLS
    } else {
        syscall_colour(slot)
    }
}

/// Folds names not in `order` into "other".
fn fold(mix: &BTreeMap<String, f64>, order: &[String]) -> Vec<f64> {
    let mut values = vec![0.0; order.len()];
    for (name, value) in mix {
        let slot = order
            .iter()
            .position(|o| o == name)
            .unwrap_or(order.len() - 1);
        values[slot] += value;
    }
    values
}

/// The syscall-mix chart of `scenario`.
pub fn chart(doc: &ResultsDoc, scenario: &str) -> anyhow::Result<Chart> {
    let entries = doc.entries_of(scenario);
    let title = format!("{scenario}: syscall mix per runtime");
    let mixes: Vec<Result<BTreeMap<String, f64>, String>> =
        entries.iter().map(|e| mix(e)).collect();
    let present: Vec<&BTreeMap<String, f64>> =
        mixes.iter().filter_map(|m| m.as_ref().ok()).collect();
    let order = legend_order(&present);
    let stacks: Vec<Option<Vec<f64>>> = mixes
        .iter()
        .map(|m| m.as_ref().ok().map(|mix| fold(mix, &order)))
        .collect();
    let max = stacks
        .iter()
        .flatten()
        .map(|s| s.iter().sum::<f64>())
        .fold(0.0_f64, f64::max);
    let names: Vec<String> = entries
        .iter()
        .map(|e| {
            if e.valid {
                e.runtime.clone()
            } else {
                format!("{} (invalid)", e.runtime)
            }
        })
        .collect();
    let count = entries.len().max(1);
    let width = (300 + 150 * count as u32).max(820);

    let svg = render_svg((width, 500), |root| {
        if present.is_empty() {
            let reasons: Vec<&str> = mixes
                .iter()
                .filter_map(|m| m.as_ref().err().map(String::as_str))
                .collect();
            let mut unique = reasons.clone();
            unique.dedup();
            return super::draw_empty_note(
                root,
                &title,
                &format!("No syscall breakdown recorded: {}", unique.join("; ")),
            );
        }
        let (plot_area, legend_area) = root.split_horizontally(width - 190);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(&title, (FONT, TITLE_SIZE))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(74)
            .build_cartesian_2d(-0.5..(count as f64 - 0.5), 0.0..zero_based_range(max))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .bold_line_style(super::GRID_BOLD)
            .light_line_style(super::GRID_LIGHT)
            .disable_x_mesh()
            .x_labels(count)
            .x_label_formatter(&|x| category_label(&names, *x))
            .y_label_formatter(&|y| super::fmt_axis(*y))
            .x_desc("runtime (bar outline in the runtime's colour)")
            .y_desc("syscalls per delivered message")
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, DESC_SIZE))
            .draw()
            .map_err(plot_err)?;
        for (i, (entry, stack)) in entries.iter().zip(&stacks).enumerate() {
            let x = i as f64;
            let Some(stack) = stack else {
                chart
                    .draw_series(std::iter::once(Text::new(
                        "n/a",
                        (x, zero_based_range(max) * 0.05),
                        label_above(14, RGBColor(0x70, 0x70, 0x70)),
                    )))
                    .map_err(plot_err)?;
                continue;
            };
            let mut base = 0.0;
            for (slot, value) in stack.iter().enumerate() {
                if *value <= 0.0 {
                    continue;
                }
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.3, base), (x + 0.3, base + value)],
                        segment_colour(&order, slot).filled(),
                    )))
                    .map_err(plot_err)?;
                base += value;
            }
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.3, 0.0), (x + 0.3, base)],
                    runtime_colour(&entry.runtime).stroke_width(3),
                )))
                .map_err(plot_err)?;
            let mut label = format!("{} / msg", fmt_sig3(base));
            if !entry.valid {
                label.push_str(" (invalid)");
            }
            chart
                .draw_series(std::iter::once(Text::new(
                    label,
                    (x, base + zero_based_range(max) * 0.02),
                    label_above(12, BLACK),
                )))
                .map_err(plot_err)?;
        }

        // Legend beside the plot: one swatch per syscall, top of the stack first.
        legend_area
            .draw(&Text::new(
                "syscall",
                (10, 60),
                (FONT, 15).into_font().style(FontStyle::Bold),
            ))
            .map_err(plot_err)?;
        for (slot, name) in order.iter().enumerate().rev() {
            let row = (order.len() - 1 - slot) as i32;
            let y = 86 + row * 24;
            legend_area
                .draw(&Rectangle::new(
                    [(10, y), (28, y + 16)],
                    segment_colour(&order, slot).filled(),
                ))
                .map_err(plot_err)?;
            legend_area
                .draw(&Text::new(
                    name.clone(),
                    (36, y + 1),
                    (FONT, 14).into_font(),
                ))
                .map_err(plot_err)?;
        }
        Ok(())
    })?;

    let missing: Vec<String> = entries
        .iter()
        .zip(&mixes)
        .filter_map(|(e, m)| m.as_ref().err().map(|why| format!("{}: {why}", e.runtime)))
        .collect();
    let mut caption = "Syscalls per delivered message in the measured window, split by syscall \
                       (syscalls:sys_enter_<name> tracepoints; \"other\" is every syscall not \
                       listed). Repetitions are summed. Lower is better."
        .to_owned();
    if !missing.is_empty() {
        caption.push_str(&format!(" No breakdown for {}.", missing.join("; ")));
    }
    Ok(Chart {
        file_name: format!("syscall-mix-{}.svg", slug(scenario)),
        title,
        caption,
        svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legend_puts_biggest_syscalls_first_and_other_last() {
        let a: BTreeMap<String, f64> = [
            ("read".into(), 0.2),
            ("writev".into(), 0.5),
            ("other".into(), 0.1),
        ]
        .into();
        let b: BTreeMap<String, f64> = [("io_uring_enter".into(), 0.05)].into();
        let order = legend_order(&[&a, &b]);
        assert_eq!(order, vec!["writev", "read", "io_uring_enter", "other"]);
        assert_eq!(fold(&a, &order), vec![0.5, 0.2, 0.0, 0.1]);
    }
}
