//! `cargo bench -p fanbench-micro`: the micro-cost suite with criterion's own defaults
//! (3 s warm-up, 5 s measurement, 100 samples per benchmark); criterion's usual arguments
//! apply (`cargo bench -p fanbench-micro -- spawn_many` runs one group). `fanbench micro`
//! runs the same suite in a time budget and writes micro.json.

use criterion::Criterion;
use fanbench_micro::{MicroRow, Settings};

fn main() {
    let settings = Settings::cargo_bench();
    let mut c = settings
        .configure(Criterion::default())
        .configure_from_args();
    let run = fanbench_micro::run(&mut c, MicroRow::ALL, &settings);
    c.final_summary();
    for entry in &run.lateness {
        match (&entry.lateness, &entry.absent_reason) {
            (Some(l), _) => println!(
                "sleep_1ms_lateness/{}: p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us \
                 over {} sleeps",
                entry.runtime, l.p50_us, l.p90_us, l.p99_us, l.max_us, l.sleeps
            ),
            (None, reason) => println!(
                "sleep_1ms_lateness/{}: no result: {}",
                entry.runtime,
                reason.as_deref().unwrap_or("unknown")
            ),
        }
    }
}
