//! Workloads: TOML files in `workloads/` (one per named scenario), and the command-line flags
//! that override any of their fields.
//!
//! A workload is named either by file path (`--workload my.toml`) or by name
//! (`--workload fanout-100`), which resolves to `<workloads dir>/<name>.toml`. The workloads dir
//! is `--workloads-dir`, else `$FANBENCH_WORKLOADS_DIR`, else `./workloads` when it exists,
//! else the `workloads/` directory of the source tree the binary was built from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use clap::Args;
use serde::Deserialize;

use crate::results::schema::Scenario;

/// Smallest payload the load generator can carry (its header: publisher id, sequence,
/// intended and actual send time).
pub const MIN_PAYLOAD_BYTES: usize = 32;
/// The server's default max payload (nats-server's default, 1 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// The broker's default batching window, in microseconds.
pub const DEFAULT_COALESCE_US: u64 = fanbench_broker::coalesce::DEFAULT_COALESCE.as_micros() as u64;
/// The longest batching window accepted: a longer one is a latency bug, not a policy.
pub const MAX_COALESCE_US: u64 = fanbench_broker::coalesce::MAX_COALESCE.as_micros() as u64;

/// A workload file as written on disk. Unknown keys are an error (a typo must not silently
/// fall back to a default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    publishers: u32,
    subscribers_per_publisher: u32,
    rate_per_publisher: f64,
    payload_bytes: usize,
    duration_s: f64,
    warmup_s: f64,
    repetitions: u32,
    #[serde(default)]
    slow_subscribers: u32,
    #[serde(default)]
    slow_read_bytes_per_s: u64,
    /// The broker's batching window in microseconds (default: the broker's default).
    coalesce_us: Option<u64>,
}

/// Flags that override fields of the chosen workload(s).
#[derive(Debug, Clone, Default, Args)]
pub struct WorkloadOverrides {
    /// Directory holding the named workload files (default: ./workloads, else the source tree's).
    #[arg(long, value_name = "DIR")]
    pub workloads_dir: Option<PathBuf>,
    /// Override: number of publishers.
    #[arg(long)]
    pub publishers: Option<u32>,
    /// Override: subscribers per publisher.
    #[arg(long)]
    pub subscribers: Option<u32>,
    /// Override: messages per second per publisher.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Override: payload size in bytes (including the load generator's 32-byte header).
    #[arg(long)]
    pub payload: Option<usize>,
    /// Override: measured window per repetition ("5s", "500ms", or seconds as a number).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Override: warm-up before each measured window ("1s", "0", ...).
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Override: number of repetitions.
    #[arg(long)]
    pub reps: Option<u32>,
    /// Override: subscribers of publisher 0 that read at a trickle.
    #[arg(long)]
    pub slow_subscribers: Option<u32>,
    /// Override: read rate of each slow subscriber, bytes per second.
    #[arg(long)]
    pub slow_read_rate: Option<u64>,
    /// Override: the broker's batching window in microseconds: a busy connection's next write
    /// waits up to this long so it carries more messages (0: off; every fanbench row).
    #[arg(long, value_name = "US")]
    pub coalesce_us: Option<u64>,
}

/// Parses "5s", "250ms", "1m" (humantime) or a bare number of seconds ("2.5").
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|err| format!("invalid duration {text:?}: {err}"));
    }
    humantime::parse_duration(text).map_err(|err| format!("invalid duration {text:?}: {err}"))
}

/// The directory named workloads are looked up in.
pub fn workloads_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("FANBENCH_WORKLOADS_DIR") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("workloads");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("workloads")
}

/// Loads a workload by name or file path (see the module docs), without overrides.
pub fn load(name_or_file: &str, dir: &Path) -> anyhow::Result<Scenario> {
    let as_path = Path::new(name_or_file);
    let path = if name_or_file.ends_with(".toml") || as_path.components().count() > 1 {
        as_path.to_path_buf()
    } else {
        dir.join(format!("{name_or_file}.toml"))
    };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading workload {name_or_file:?} from {} (known workloads: {})",
            path.display(),
            list_names(dir).unwrap_or_default().join(", ")
        )
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| name_or_file.to_string());
    parse(&text, &stem).with_context(|| format!("in workload file {}", path.display()))
}

/// Parses workload TOML; `default_name` is used when the file has no `name`.
pub fn parse(text: &str, default_name: &str) -> anyhow::Result<Scenario> {
    let file: WorkloadFile = toml::from_str(text).context("parsing workload TOML")?;
    let scenario = Scenario {
        name: file.name.unwrap_or_else(|| default_name.to_string()),
        description: file.description,
        publishers: file.publishers,
        subscribers_per_publisher: file.subscribers_per_publisher,
        rate_per_publisher: file.rate_per_publisher,
        payload_bytes: file.payload_bytes,
        duration_s: file.duration_s,
        warmup_s: file.warmup_s,
        repetitions: file.repetitions,
        slow_subscribers: file.slow_subscribers,
        slow_read_bytes_per_s: file.slow_read_bytes_per_s,
        coalesce_us: Some(file.coalesce_us.unwrap_or(DEFAULT_COALESCE_US)),
    };
    validate(&scenario)?;
    Ok(scenario)
}

/// Names of the workload files in `dir`, sorted.
pub fn list_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            if let Some(stem) = path.file_stem() {
                names.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

impl WorkloadOverrides {
    /// Applies every given override to `scenario` and re-validates it. The name stays the
    /// file's (bench-all finds its sweep workload by name); when the load itself changed
    /// (publishers, subscribers, rate, payload, slow subscribers) the description says so,
    /// since the file's description no longer matches what ran.
    pub fn apply(&self, mut scenario: Scenario) -> anyhow::Result<Scenario> {
        let load = |s: &Scenario| {
            (
                s.publishers,
                s.subscribers_per_publisher,
                s.rate_per_publisher,
                s.payload_bytes,
                s.slow_subscribers,
                s.slow_read_bytes_per_s,
            )
        };
        let file_load = load(&scenario);
        if let Some(publishers) = self.publishers {
            scenario.publishers = publishers;
        }
        if let Some(subscribers) = self.subscribers {
            scenario.subscribers_per_publisher = subscribers;
        }
        if let Some(rate) = self.rate {
            scenario.rate_per_publisher = rate;
        }
        if let Some(payload) = self.payload {
            scenario.payload_bytes = payload;
        }
        if let Some(duration) = self.duration {
            scenario.duration_s = duration.as_secs_f64();
        }
        if let Some(warmup) = self.warmup {
            scenario.warmup_s = warmup.as_secs_f64();
        }
        if let Some(reps) = self.reps {
            scenario.repetitions = reps;
        }
        if let Some(slow) = self.slow_subscribers {
            scenario.slow_subscribers = slow;
        }
        if let Some(rate) = self.slow_read_rate {
            scenario.slow_read_bytes_per_s = rate;
        }
        if let Some(us) = self.coalesce_us {
            scenario.coalesce_us = Some(us);
        }
        if load(&scenario) != file_load {
            scenario.description = format!(
                "{} with its load overridden on the command line (the file says: {})",
                scenario.name,
                if scenario.description.is_empty() {
                    "no description"
                } else {
                    scenario.description.trim_end_matches('.')
                }
            );
        }
        validate(&scenario).with_context(|| {
            format!("workload {:?} after command-line overrides", scenario.name)
        })?;
        Ok(scenario)
    }
}

/// Rejects workloads the load generator or the server cannot run as described.
pub fn validate(s: &Scenario) -> anyhow::Result<()> {
    ensure!(!s.name.trim().is_empty(), "workload name is empty");
    ensure!(s.publishers >= 1, "publishers must be at least 1");
    if let Some(us) = s.coalesce_us {
        ensure!(
            us <= MAX_COALESCE_US,
            "coalesce_us must be at most {MAX_COALESCE_US} µs, got {us}"
        );
    }
    ensure!(
        s.subscribers_per_publisher >= 1,
        "subscribers_per_publisher must be at least 1"
    );
    ensure!(
        s.rate_per_publisher.is_finite() && s.rate_per_publisher > 0.0,
        "rate_per_publisher must be a positive number of messages per second, got {}",
        s.rate_per_publisher
    );
    ensure!(
        (MIN_PAYLOAD_BYTES..=MAX_PAYLOAD_BYTES).contains(&s.payload_bytes),
        "payload_bytes must be between {MIN_PAYLOAD_BYTES} (the load generator's header) and \
         {MAX_PAYLOAD_BYTES} (the server's max payload), got {}",
        s.payload_bytes
    );
    ensure!(
        s.duration_s.is_finite() && s.duration_s > 0.0,
        "duration_s must be positive, got {}",
        s.duration_s
    );
    ensure!(
        s.warmup_s.is_finite() && s.warmup_s >= 0.0,
        "warmup_s must be zero or positive, got {}",
        s.warmup_s
    );
    ensure!(s.repetitions >= 1, "repetitions must be at least 1");
    if s.slow_subscribers > s.subscribers_per_publisher {
        bail!(
            "slow_subscribers ({}) cannot exceed subscribers_per_publisher ({})",
            s.slow_subscribers,
            s.subscribers_per_publisher
        );
    }
    if s.slow_subscribers > 0 {
        ensure!(
            s.slow_read_bytes_per_s > 0,
            "slow_read_bytes_per_s must be positive when there are slow subscribers"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        publishers = 2
        subscribers_per_publisher = 3
        rate_per_publisher = 10.0
        payload_bytes = 64
        duration_s = 2.0
        warmup_s = 0.5
        repetitions = 1
    "#;

    fn shipped_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads")
    }

    #[test]
    fn name_defaults_to_file_stem_and_slow_fields_to_zero() {
        let s = parse(MINIMAL, "my-load").expect("valid workload");
        assert_eq!(s.name, "my-load");
        assert_eq!(s.publishers, 2);
        assert_eq!(s.subscribers_per_publisher, 3);
        assert_eq!(s.slow_subscribers, 0);
        assert_eq!(s.slow_read_bytes_per_s, 0);
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let text = format!("{MINIMAL}\nsubscribers = 4\n");
        let err = format!("{:#}", parse(&text, "x").unwrap_err());
        assert!(err.contains("subscribers"), "{err}");
    }

    #[test]
    fn payload_below_header_size_is_rejected() {
        let text = MINIMAL.replace("payload_bytes = 64", "payload_bytes = 8");
        let err = format!("{:#}", parse(&text, "x").unwrap_err());
        assert!(err.contains("payload_bytes"), "{err}");
    }

    #[test]
    fn more_slow_subscribers_than_subscribers_is_rejected() {
        let text = format!("{MINIMAL}\nslow_subscribers = 4\nslow_read_bytes_per_s = 100\n");
        assert!(parse(&text, "x").is_err());
    }

    #[test]
    fn every_override_replaces_its_field_and_nothing_else() {
        let base = parse(MINIMAL, "base").expect("valid");
        let overrides = WorkloadOverrides {
            publishers: Some(1),
            subscribers: Some(10),
            rate: Some(200.0),
            payload: Some(512),
            duration: Some(Duration::from_millis(6000)),
            warmup: Some(Duration::ZERO),
            reps: Some(5),
            slow_subscribers: Some(1),
            slow_read_rate: Some(1000),
            ..Default::default()
        };
        let s = overrides
            .apply(base.clone())
            .expect("valid after overrides");
        assert_eq!(s.name, base.name);
        assert_eq!(s.publishers, 1);
        assert_eq!(s.subscribers_per_publisher, 10);
        assert_eq!(s.rate_per_publisher, 200.0);
        assert_eq!(s.payload_bytes, 512);
        assert_eq!(s.duration_s, 6.0);
        assert_eq!(s.warmup_s, 0.0);
        assert_eq!(s.repetitions, 5);
        assert_eq!(s.slow_subscribers, 1);
        assert_eq!(s.slow_read_bytes_per_s, 1000);

        assert!(
            s.description.contains("overridden on the command line"),
            "{}",
            s.description
        );

        let untouched = WorkloadOverrides::default()
            .apply(base.clone())
            .expect("valid");
        assert_eq!(untouched, base);
        // Timing alone does not change the load the description describes.
        let timing = WorkloadOverrides {
            duration: Some(Duration::from_secs(9)),
            reps: Some(2),
            ..Default::default()
        }
        .apply(base.clone())
        .expect("valid");
        assert_eq!(timing.description, base.description);
    }

    #[test]
    fn override_that_makes_workload_invalid_is_an_error() {
        let base = parse(MINIMAL, "base").expect("valid");
        let overrides = WorkloadOverrides {
            rate: Some(-1.0),
            ..Default::default()
        };
        assert!(overrides.apply(base).is_err());
    }

    #[test]
    fn durations_parse_as_humantime_or_seconds() {
        assert_eq!(parse_duration("6s"), Ok(Duration::from_secs(6)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn the_six_shipped_workloads_load_with_their_documented_shapes() {
        let dir = shipped_dir();
        let get = |name: &str| load(name, &dir).expect(name);
        let seed = get("seed-5x5");
        assert_eq!((seed.publishers, seed.subscribers_per_publisher), (5, 5));
        assert_eq!(seed.rate_per_publisher, 10.0);
        let seed25 = get("seed-5x25");
        assert_eq!(
            (seed25.publishers, seed25.subscribers_per_publisher),
            (5, 25)
        );
        assert_eq!(seed25.rate_per_publisher, 50.0);
        let f100 = get("fanout-100");
        assert_eq!((f100.publishers, f100.subscribers_per_publisher), (1, 100));
        assert_eq!(f100.payload_bytes, 1024);
        let f1000 = get("fanout-1000");
        assert_eq!(
            (f1000.publishers, f1000.subscribers_per_publisher),
            (5, 200)
        );
        assert_eq!(f1000.payload_bytes, 1024);
        let video = get("video-1mb");
        assert_eq!((video.publishers, video.subscribers_per_publisher), (1, 50));
        assert_eq!(video.payload_bytes, 1024 * 1024);
        assert_eq!(video.rate_per_publisher, 30.0);
        let slow = get("slow-subscriber");
        assert_eq!((slow.publishers, slow.subscribers_per_publisher), (1, 100));
        assert_eq!(slow.slow_subscribers, 1);
        for name in list_names(&dir).expect("list") {
            assert_eq!(get(&name).name, name, "name field matches file name");
        }
    }

    #[test]
    fn workload_given_as_path_is_read_from_that_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("custom.toml");
        std::fs::write(&path, MINIMAL).expect("write");
        let s = load(
            path.to_str().expect("utf-8 path"),
            Path::new("/nonexistent"),
        )
        .expect("loads");
        assert_eq!(s.name, "custom");
    }

    #[test]
    fn unknown_workload_name_lists_known_ones() {
        let err = format!("{:#}", load("nope", &shipped_dir()).unwrap_err());
        assert!(err.contains("fanout-100"), "{err}");
    }
}
