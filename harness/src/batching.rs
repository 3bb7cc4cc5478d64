//! bench-all's batching comparison: one workload (`fanout-100`) on every fanbench row at each
//! batching window of [`WINDOWS_US`], so the latency-for-CPU trade of the broker's one
//! batching policy (`fanbench serve --coalesce-us`, `fanbench_broker::coalesce`) is a chart
//! and not a claim.
//!
//! Every point is measured the same way: one repetition with the sweep's step timing (0.5 s
//! warm-up, 2 s window; `--quick`: the quick timing), so the windows are compared like with
//! like. Where the suite already measured a row at one of the windows with exactly that
//! timing (`--quick`), its result is reused instead of measured twice. `--quick` compares
//! only the extremes ([`QUICK_WINDOWS_US`]). nats-server has no such setting and is not part
//! of the comparison. Results go to the `batching` array of results.json.

use crate::measure::{measure, MeasureError, Placement, Row};
use crate::results::schema::{Scenario, ScenarioResult, Skipped};

/// The windows compared, in microseconds.
pub const WINDOWS_US: &[u64] = &[0, 250, 1000];
/// The windows `--quick` compares.
pub const QUICK_WINDOWS_US: &[u64] = &[0, 1000];

/// The windows compared in this mode.
pub fn windows(quick: bool) -> &'static [u64] {
    if quick {
        QUICK_WINDOWS_US
    } else {
        WINDOWS_US
    }
}

/// The (row, window) pairs to measure: every fanbench row at every window, except those the
/// suite already measured with the same timing.
pub fn plan(
    rows: &[Row],
    scenario: &Scenario,
    quick: bool,
    measured: &[ScenarioResult],
) -> Vec<(Row, u64)> {
    let mut out = Vec::new();
    for row in rows {
        if matches!(row, Row::NatsServer) {
            continue;
        }
        for &w in windows(quick) {
            if reused(*row, &at_window(scenario, w, quick), measured).is_none() {
                out.push((*row, w));
            }
        }
    }
    out
}

/// The suite's own result for `row`, if it ran exactly `wanted` (same window and timing).
fn reused<'a>(
    row: Row,
    wanted: &Scenario,
    measured: &'a [ScenarioResult],
) -> Option<&'a ScenarioResult> {
    measured
        .iter()
        .find(|r| r.runtime == row.name() && r.scenario_config == *wanted)
}

/// The scenario as measured at window `w`: one repetition with the sweep's step timing (the
/// comparison is across windows and rows, not of one point's spread).
pub fn at_window(scenario: &Scenario, w: u64, quick: bool) -> Scenario {
    let mut s = Scenario {
        coalesce_us: Some(w),
        ..scenario.clone()
    };
    crate::sweep::Settings::step_timing(&mut s, quick);
    s
}

/// One point of the comparison, as it comes.
pub enum Point {
    /// The suite's own result at its window.
    Reused(ScenarioResult),
    /// Measured here.
    Measured(ScenarioResult),
    /// The pair could not be measured.
    Failed(Skipped),
}

/// Runs the comparison, handing each point to `on_point` as soon as it is known (so the caller
/// can write the results file after each, and an interrupted run keeps what it measured).
pub fn run(
    rows: &[Row],
    scenario: &Scenario,
    placement: &Placement,
    log_dir: &std::path::Path,
    quick: bool,
    measured: &[ScenarioResult],
    on_point: &mut dyn FnMut(Point),
) {
    for row in rows {
        if matches!(row, Row::NatsServer) {
            continue;
        }
        for &w in windows(quick) {
            let at_w = at_window(scenario, w, quick);
            if let Some(r) = reused(*row, &at_w, measured) {
                on_point(Point::Reused(r.clone()));
                continue;
            }
            if crate::interrupt::received().is_some() {
                return;
            }
            let point = match measure(*row, &at_w, placement, log_dir, &mut |_| {}) {
                Ok(result) => Point::Measured(result),
                // Not recorded: `bench-all --resume` measures the point whole.
                Err(MeasureError::Interrupted { .. }) => return,
                Err(err) => Point::Failed(Skipped {
                    scenario: Some(format!("{} (batching {w} µs)", scenario.name)),
                    runtime: row.name().to_string(),
                    reason: format!("{err}"),
                }),
            };
            on_point(point);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtimes::RuntimeRow;

    fn scenario(w: u64) -> Scenario {
        Scenario {
            name: "fanout-100".into(),
            description: String::new(),
            publishers: 1,
            subscribers_per_publisher: 100,
            rate_per_publisher: 500.0,
            payload_bytes: 1024,
            duration_s: 3.0,
            warmup_s: 1.0,
            repetitions: 3,
            slow_subscribers: 0,
            slow_read_bytes_per_s: 0,
            coalesce_us: Some(w),
        }
    }

    #[test]
    fn the_plan_skips_nats_server_and_the_suites_own_window() {
        let rows = [
            Row::Fanbench(RuntimeRow::Uring),
            Row::Fanbench(RuntimeRow::Tokio),
            Row::NatsServer,
        ];
        let plan = plan(&rows, &scenario(1000), false, &[]);
        assert_eq!(plan.len(), 2 * WINDOWS_US.len(), "nothing measured yet");
        let quick = super::plan(&rows, &scenario(1000), true, &[]);
        assert_eq!(quick.len(), 2 * QUICK_WINDOWS_US.len());
        assert!(plan.iter().all(|(r, _)| !matches!(r, Row::NatsServer)));
    }

    #[test]
    fn at_window_sets_the_window_and_the_step_timing() {
        let s = at_window(&scenario(1000), 250, false);
        assert_eq!(s.coalesce_us, Some(250));
        assert_eq!(s.repetitions, 1);
        assert_eq!(s.duration_s, 2.0);
        assert_eq!(s.name, "fanout-100");
    }
}
