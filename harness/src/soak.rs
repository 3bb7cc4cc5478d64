//! `fanbench soak`: hold one fan-out load on one server per row for minutes, and record what
//! drifts: the server's resident memory and open descriptors (sampled every second from
//! `/proc/<pid>`) and latency per second. Writes `<out>/<run-id>/soak.json`, `soak.svg` and
//! an `index.html`. Not part of `bench-all` (a soak takes minutes per row).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::interrupt;
use crate::loadgen::{self, LoadSpec};
use crate::measure::{PlacementArgs, Row};
use crate::metrics::ServerSampler;
use crate::results::provenance::new_results_file;
use crate::results::schema::{GitInfo, HostInfo};
use crate::server_proc::{free_local_addr, ServerProcess, STOP_TIMEOUT};
use crate::sysinfo;
use crate::workload::{self, WorkloadOverrides};

/// Options of `fanbench soak`.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// Rows to soak, comma-separated, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "uring,tokio")]
    pub runtimes: Vec<String>,
    /// Workload held (a name from the workloads directory, or a TOML file); its --duration is
    /// replaced by --length.
    #[arg(long, default_value = "fanout-100")]
    pub workload: String,
    /// How long to hold the load on each row (after the workload's warm-up).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub length: Duration,
    /// Results directory: the run writes DIR/<run-id>/soak.json, soak.svg, index.html.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    #[command(flatten)]
    pub overrides: WorkloadOverrides,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// `soak.json` (results/README.md documents it).
#[derive(Debug, Serialize)]
struct SoakFile {
    schema_version: u32,
    kind: &'static str,
    run_id: String,
    started_at: String,
    finished_at: Option<String>,
    command: Vec<String>,
    git: GitInfo,
    host: HostInfo,
    scenario: String,
    scenario_config: crate::results::schema::Scenario,
    /// Seconds of measured load per row.
    load_s: f64,
    partial: bool,
    interrupted_by: Option<String>,
    rows: Vec<SoakRow>,
}

#[derive(Debug, Serialize)]
struct SoakRow {
    runtime: String,
    server_pid: u32,
    delivered: u64,
    expected: u64,
    lost: u64,
    samples: Vec<Sample>,
    windows: Vec<WindowPoint>,
    summary: Summary,
}

/// The server process, `t_s` seconds after the load generator started connecting.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    t_s: f64,
    rss_bytes: Option<u64>,
    fds: Option<u64>,
    threads: Option<u64>,
}

#[derive(Debug, Serialize)]
struct WindowPoint {
    /// Seconds after the load generator started (warm-up included), at the window's end.
    t_s: f64,
    delivered: u64,
    received: u64,
    latency_p50_us: Option<f64>,
    latency_p99_us: Option<f64>,
}

/// Start against end: medians of the first and the last minute (or sixth of the run, when
/// shorter), so one noisy second moves nothing. Then the verdict: a least-squares line through
/// the samples of the window's last half; RSS (descriptors) are flat when that line rises by
/// less than [`FLAT_RSS_RISE_BYTES`] ([`FLAT_FDS_RISE`]) over it.
#[derive(Debug, Serialize)]
struct Summary {
    rss_first_minute_bytes: Option<f64>,
    rss_last_minute_bytes: Option<f64>,
    rss_growth_bytes: Option<f64>,
    fds_first: Option<u64>,
    fds_last: Option<u64>,
    fds_max: Option<u64>,
    p99_first_minute_us: Option<f64>,
    p99_last_minute_us: Option<f64>,
    /// The stretch the lines are fitted over: the last half of the measured window.
    fit_from_s: f64,
    fit_to_s: f64,
    rss_slope_bytes_per_s: Option<f64>,
    /// Slope times the stretch's length: what the line gains over it.
    rss_rise_bytes: Option<f64>,
    rss_flat: Option<bool>,
    fds_slope_per_s: Option<f64>,
    fds_rise: Option<f64>,
    fds_flat: Option<bool>,
}

/// RSS is flat when the line fitted through the last half of the window rises by less than
/// this: over the last half of a 5-minute soak, about 7 KiB/s. Allocator noise on a steady
/// load moves RSS in steps of a few hundred KiB at most, and holds still for minutes; a leak
/// of a few bytes per message passes it within minutes (at fanout-100, 16 B per publish is
/// 8 KiB/s). A longer soak detects a smaller slope.
const FLAT_RSS_RISE_BYTES: f64 = 1024.0 * 1024.0;

/// Descriptors are flat when the fitted line rises by less than one over the last half: a
/// soak holds a fixed set of connections, so any steady gain is a descriptor leak.
const FLAT_FDS_RISE: f64 = 1.0;

/// `fanbench soak`.
pub fn run(args: SoakArgs) -> anyhow::Result<()> {
    interrupt::install()?;
    if args.length < Duration::from_secs(10) {
        bail!("--length must be at least 10s (a soak compares its first and last stretches)");
    }
    let dir = workload::workloads_dir(args.overrides.workloads_dir.as_deref());
    let mut scenario = args
        .overrides
        .apply(workload::load(&args.workload, &dir)?)?;
    scenario.duration_s = args.length.as_secs_f64();
    scenario.repetitions = 1;
    let rows: Vec<Row> = args
        .runtimes
        .iter()
        .map(|n| Row::named(n.trim()))
        .collect::<anyhow::Result<_>>()?;
    let placement = args.placement.resolve()?;
    for row in &rows {
        if let Some(reason) = row.info(&placement).unavailable_reason {
            bail!("runtime {} is unavailable: {reason}", row.name());
        }
    }
    let provenance = new_results_file(
        SystemTime::now(),
        rows.iter().map(|r| r.info(&placement)).collect(),
    );
    let run_dir = args.out.join(&provenance.run_id);
    let mut file = SoakFile {
        schema_version: 1,
        kind: "soak",
        run_id: provenance.run_id.clone(),
        started_at: provenance.started_at.clone(),
        finished_at: None,
        command: provenance.command.clone(),
        git: provenance.git.clone(),
        host: provenance.host.clone(),
        scenario: scenario.name.clone(),
        scenario_config: scenario.clone(),
        load_s: scenario.duration_s,
        partial: true,
        interrupted_by: None,
        rows: Vec::new(),
    };
    let path = run_dir.join(fanbench_plots::charts::soak::SOAK_FILE);
    for row in rows {
        eprintln!(
            "fanbench: soak {} on {} for {:?} (+{} s warm-up)",
            scenario.name,
            row.name(),
            args.length,
            scenario.warmup_s
        );
        match soak_row(row, &scenario, &placement, &run_dir.join("logs")) {
            Ok(soaked) => {
                print_summary(&soaked);
                file.rows.push(soaked);
            }
            Err(err)
                if interrupt::in_chain(&err)
                    .or_else(interrupt::received)
                    .is_some() =>
            {
                break
            }
            Err(err) => return Err(err.context(format!("soak of {}", row.name()))),
        }
        write(&path, &file)?;
    }
    file.finished_at = Some(sysinfo::rfc3339(SystemTime::now()));
    let interrupted = interrupt::received();
    file.interrupted_by = interrupted.map(|i| i.signal_name());
    file.partial = interrupted.is_some();
    write(&path, &file)?;
    if !file.rows.is_empty() {
        let index = fanbench_plots::write_soak_report(&path)?;
        eprintln!("fanbench: soak chart and page in {}", index.display());
    }
    eprintln!("fanbench: soak written to {}", path.display());
    match interrupted {
        Some(by) => Err(by.into()),
        None => Ok(()),
    }
}

fn write(path: &Path, file: &SoakFile) -> anyhow::Result<()> {
    let dir = path.parent().context("soak path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(file).context("serializing the soak")?,
    )
    .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// One row: a fresh server, the load held for the scenario's duration, the server sampled
/// every second on a thread of its own.
fn soak_row(
    row: Row,
    scenario: &crate::results::schema::Scenario,
    placement: &crate::measure::Placement,
    log_dir: &Path,
) -> anyhow::Result<SoakRow> {
    std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let stem = format!("soak.{}.{}", scenario.name, row.name());
    let addr = free_local_addr()?;
    let stats = log_dir.join(format!("{stem}.stats.json"));
    let cmd = row.command(placement, addr, &stats, scenario.coalesce_us)?;
    let server = ServerProcess::start(&cmd, &log_dir.join(format!("{stem}.log")))?;
    let pid = server.pid();
    let spec = LoadSpec {
        target: addr,
        publishers: scenario.publishers,
        subscribers_per_publisher: scenario.subscribers_per_publisher,
        rate_per_publisher: scenario.rate_per_publisher,
        payload_bytes: scenario.payload_bytes,
        warmup: Duration::try_from_secs_f64(scenario.warmup_s).context("warm-up")?,
        duration: Duration::try_from_secs_f64(scenario.duration_s).context("length")?,
        slow_subscribers: scenario.slow_subscribers,
        slow_read_bytes_per_s: scenario.slow_read_bytes_per_s,
        client_cpus: placement.client_cpus.clone(),
    };
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("soak-sampler".into())
            .spawn(move || sample_every_second(pid, started, &stop))
            .context("spawning the sampler thread")?
    };
    let report = loadgen::run(
        &spec,
        &mut ServerSampler::without_pid("a soak samples /proc itself"),
    );
    stop.store(true, Ordering::Relaxed);
    let samples = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the sampler thread panicked"))?;
    let stopped = server.stop(STOP_TIMEOUT);
    let report = report.context("the load generator")?;
    if let Ok(s) = &stopped {
        if !s.status.success() && !s.killed && interrupt::received().is_none() {
            bail!("the server exited with {} during the soak", s.status);
        }
    }
    // Windows are placed on the samples' clock from the end: the load generator returns after
    // its window and the drain that followed it (`grace_ns`), give or take joining threads.
    let window_end_s = started.elapsed().as_secs_f64() - report.grace_ns as f64 / 1e9;
    let window_start_s = window_end_s - report.window_ns as f64 / 1e9;
    let windows: Vec<WindowPoint> = report
        .windows
        .iter()
        .map(|w| WindowPoint {
            t_s: window_start_s + (w.start_offset_ns + w.length_ns) as f64 / 1e9,
            delivered: w.delivered,
            received: w.received,
            latency_p50_us: w.latency_p50_ns.map(|ns| ns as f64 / 1000.0),
            latency_p99_us: w.latency_p99_ns.map(|ns| ns as f64 / 1000.0),
        })
        .collect();
    let summary = summarize(&samples, &windows, window_start_s, window_end_s);
    Ok(SoakRow {
        runtime: row.name().to_string(),
        server_pid: pid,
        delivered: report.delivered,
        expected: report.expected,
        lost: report.lost,
        samples,
        windows,
        summary,
    })
}

/// Samples the server every second until `stop`.
fn sample_every_second(pid: u32, started: Instant, stop: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut next = started;
    while !stop.load(Ordering::Relaxed) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
        let field = |key: &str| {
            status.as_deref().and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            })
        };
        samples.push(Sample {
            t_s: started.elapsed().as_secs_f64(),
            rss_bytes: field("VmRSS:").map(|kib| kib * 1024),
            threads: field("Threads:"),
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .ok()
                .map(|d| d.count() as u64),
        });
        next += Duration::from_secs(1);
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    samples
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// First and last minute of the measured window (a sixth of it when it is shorter than six
/// minutes), medians.
fn summarize(samples: &[Sample], windows: &[WindowPoint], start_s: f64, end_s: f64) -> Summary {
    let stretch = ((end_s - start_s) / 6.0).min(60.0);
    let first = |t: f64| t >= start_s && t < start_s + stretch;
    let last = |t: f64| t > end_s - stretch && t <= end_s;
    let rss = |pick: &dyn Fn(f64) -> bool| {
        median(
            samples
                .iter()
                .filter(|s| pick(s.t_s))
                .filter_map(|s| s.rss_bytes.map(|b| b as f64))
                .collect(),
        )
    };
    let p99 = |pick: &dyn Fn(f64) -> bool| {
        median(
            windows
                .iter()
                .filter(|w| pick(w.t_s))
                .filter_map(|w| w.latency_p99_us)
                .collect(),
        )
    };
    let in_window: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t_s >= start_s && s.t_s <= end_s)
        .collect();
    let (rss_first, rss_last) = (rss(&first), rss(&last));
    let fit_from_s = start_s + (end_s - start_s) / 2.0;
    let in_fit = || {
        samples
            .iter()
            .filter(move |s| s.t_s >= fit_from_s && s.t_s <= end_s)
    };
    let rss_slope = slope(in_fit().filter_map(|s| Some((s.t_s, s.rss_bytes? as f64))));
    let fds_slope = slope(in_fit().filter_map(|s| Some((s.t_s, s.fds? as f64))));
    let rise = |slope: Option<f64>| slope.map(|k| k * (end_s - fit_from_s));
    let (rss_rise, fds_rise) = (rise(rss_slope), rise(fds_slope));
    Summary {
        rss_first_minute_bytes: rss_first,
        rss_last_minute_bytes: rss_last,
        rss_growth_bytes: rss_first.zip(rss_last).map(|(a, b)| b - a),
        fds_first: in_window.first().and_then(|s| s.fds),
        fds_last: in_window.last().and_then(|s| s.fds),
        fds_max: in_window.iter().filter_map(|s| s.fds).max(),
        p99_first_minute_us: p99(&first),
        p99_last_minute_us: p99(&last),
        fit_from_s,
        fit_to_s: end_s,
        rss_slope_bytes_per_s: rss_slope,
        rss_rise_bytes: rss_rise,
        rss_flat: rss_rise.map(|r| r < FLAT_RSS_RISE_BYTES),
        fds_slope_per_s: fds_slope,
        fds_rise,
        fds_flat: fds_rise.map(|r| r < FLAT_FDS_RISE),
    }
}

/// Least-squares slope of `(x, y)` points; `None` with fewer than two distinct x.
fn slope(points: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let points: Vec<(f64, f64)> = points.collect();
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (points.len() >= 2 && sxx > 0.0).then(|| sxy / sxx)
}

fn print_summary(row: &SoakRow) {
    let mib = |b: Option<f64>| b.map_or("null".into(), |b| format!("{:.1}", b / 1048576.0));
    let us = |v: Option<f64>| v.map_or("null".into(), |v| format!("{v:.0}"));
    let verdict = |flat: Option<bool>| match flat {
        Some(true) => "flat",
        Some(false) => "GROWING",
        None => "unknown",
    };
    let s = &row.summary;
    eprintln!(
        "fanbench:   {}: RSS {} -> {} MiB, descriptors {:?} -> {:?} (max {:?}), p99 {} -> {} us, \
         lost {} of {}",
        row.runtime,
        mib(s.rss_first_minute_bytes),
        mib(s.rss_last_minute_bytes),
        s.fds_first,
        s.fds_last,
        s.fds_max,
        us(s.p99_first_minute_us),
        us(s.p99_last_minute_us),
        row.lost,
        row.expected
    );
    eprintln!(
        "fanbench:   {}: over the last {:.0} s, RSS {} ({} KiB/s), descriptors {} ({}/min)",
        row.runtime,
        s.fit_to_s - s.fit_from_s,
        verdict(s.rss_flat),
        s.rss_slope_bytes_per_s
            .map_or("null".into(), |k| format!("{:.2}", k / 1024.0)),
        verdict(s.fds_flat),
        s.fds_slope_per_s
            .map_or("null".into(), |k| format!("{:.2}", k * 60.0)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_compares_the_first_and_last_stretch_by_median() {
        let samples: Vec<Sample> = (0..=60)
            .map(|t| Sample {
                t_s: t as f64,
                rss_bytes: Some(if t < 30 { 100 } else { 300 }),
                fds: Some(10 + (t == 59) as u64),
                threads: Some(1),
            })
            .collect();
        let windows: Vec<WindowPoint> = (1..=60)
            .map(|t| WindowPoint {
                t_s: t as f64,
                delivered: 1,
                received: 1,
                latency_p50_us: Some(1.0),
                latency_p99_us: Some(t as f64),
            })
            .collect();
        let s = summarize(&samples, &windows, 0.0, 60.0);
        assert_eq!(s.rss_first_minute_bytes, Some(100.0));
        assert_eq!(s.rss_last_minute_bytes, Some(300.0));
        assert_eq!(s.rss_growth_bytes, Some(200.0));
        assert_eq!(
            (s.fds_first, s.fds_last, s.fds_max),
            (Some(10), Some(10), Some(11))
        );
        // First stretch (10 s): windows ending at 1..9 s; last: 51..60 s.
        assert_eq!(s.p99_first_minute_us, Some(5.0));
        assert_eq!(s.p99_last_minute_us, Some(55.5));
    }

    fn samples(rss: impl Fn(u64) -> u64, fds: impl Fn(u64) -> u64) -> Vec<Sample> {
        (0..=300)
            .map(|t| Sample {
                t_s: t as f64,
                rss_bytes: Some(rss(t)),
                fds: Some(fds(t)),
                threads: Some(1),
            })
            .collect()
    }

    #[test]
    fn a_steady_gain_over_the_last_half_is_growth_and_an_early_step_is_not() {
        const MIB: u64 = 1024 * 1024;
        // 11 KiB/s from the start, as a leak of a few bytes per message does.
        let leak = summarize(
            &samples(|t| 20 * MIB + 11 * 1024 * t, |_| 112),
            &[],
            0.0,
            300.0,
        );
        assert_eq!(leak.fit_from_s, 150.0);
        let k = leak.rss_slope_bytes_per_s.expect("slope");
        assert!((k - 11.0 * 1024.0).abs() < 1e-6, "slope {k}");
        assert_eq!(leak.rss_flat, Some(false));
        assert_eq!(leak.fds_flat, Some(true));
        // A 3 MiB step in the first half (queues grown in a stall), flat after it.
        let step = summarize(
            &samples(|t| if t < 40 { 12 * MIB } else { 15 * MIB }, |_| 112),
            &[],
            0.0,
            300.0,
        );
        assert_eq!(step.rss_slope_bytes_per_s, Some(0.0));
        assert_eq!(step.rss_flat, Some(true));
        // One descriptor more every minute.
        let fds = summarize(&samples(|_| 20 * MIB, |t| 112 + t / 60), &[], 0.0, 300.0);
        assert_eq!(fds.fds_flat, Some(false));
        assert_eq!(fds.rss_flat, Some(true));
    }

    #[test]
    fn no_samples_in_the_last_half_is_no_verdict() {
        let s = summarize(&samples(|_| 1, |_| 1)[..10], &[], 0.0, 300.0);
        assert_eq!((s.rss_flat, s.fds_flat), (None, None));
        assert_eq!(s.rss_slope_bytes_per_s, None);
    }
}
