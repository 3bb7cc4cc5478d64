//! The results file (`results/<run-id>/results.json`): one serializable type tree that every
//! view (charts, `compare`, Markdown) is generated from. results/README.md documents each field.
//!
//! # Conventions
//!
//! - Latencies are microseconds (`f64`), durations seconds (`f64`), sizes bytes.
//! - A metric that could not be measured is `null` and the field `<name>_null_reason` next to it
//!   says why; a measured metric has a `null` reason. Nothing is ever guessed or zero-filled.
//!   In Rust such a pair is one [`Measured`] field.
//! - A run is *invalid* (kept, flagged) when the load generator fell behind its schedule or
//!   saturated its CPU, or a healthy subscriber lost a message; `invalid_reasons` says which.
//! - Any change that renames, removes or re-types a field bumps [`SCHEMA_VERSION`]; adding an
//!   optional field does not (readers ignore unknown fields and default missing optional ones).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::measured::Measured;

/// The JSON field pairs of the [`Measured`] fields below.
mod fields {
    crate::measured_fields! {
        latency_us,
        service_latency_us,
        pacing_lag_us,
        syscalls_per_msg,
        sqes_per_msg,
        server_cpu_us_per_msg,
        server_peak_rss_bytes,
        server_stats,
        cpu_task_clock => "cpu_task_clock_s", "cpu_task_clock_null_reason",
        sqes,
        syscalls_total => "total", "null_reason",
        read_delay_us,
        loadgen_cpu_us_per_msg => "cpu_us_per_msg", "cpu_us_per_msg_null_reason",
        headroom,
        server_utilisation => "utilisation", "utilisation_null_reason",
        counted_cpu_us_per_msg,
    }
}

/// Version of this schema. Readers must check it before interpreting a file.
pub const SCHEMA_VERSION: u32 = 1;

/// One results file: the provenance of a run and one [`ScenarioResult`] per (scenario, runtime).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsFile {
    pub schema_version: u32,
    /// Unique id of this run, also the directory name (`YYYYMMDDTHHMMSSZ-<short commit>`).
    pub run_id: String,
    /// When the run started / finished, RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The command line that produced this file (`fanbench bench-all --quick ...`).
    pub command: Vec<String>,
    pub git: GitInfo,
    pub host: HostInfo,
    pub toolchain: Toolchain,
    /// Every runtime row considered, whether it ran or not (and why not).
    pub runtimes: Vec<RuntimeInfo>,
    /// One entry per measured (scenario, runtime).
    pub results: Vec<ScenarioResult>,
    /// (scenario, runtime) pairs that were requested but not measured, with the reason.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// The load generator's measured ceiling (`fanbench calibrate`), run before the suite;
    /// null when this run did not calibrate.
    #[serde(default)]
    pub calibration: Option<crate::calibrate::Calibration>,
    /// bench-all's batching comparison: `fanout-100` on every fanbench row at each batching
    /// window (`scenario_config.coalesce_us`); empty when it did not run.
    #[serde(default)]
    pub batching: Vec<ScenarioResult>,
    /// bench-all's submission-policy comparison: the `uring` row under each policy
    /// (`runtime_config.uring_policy`, `runtime_config.cpus_used`) at a few loads; empty when
    /// it did not run.
    #[serde(default)]
    pub policies: Vec<ScenarioResult>,
    /// True until the run finished everything it was asked to: a file left by a run that was
    /// interrupted or killed says so (`bench-all --resume DIR` completes it).
    #[serde(default)]
    pub partial: bool,
    /// The signal that stopped the run (`SIGINT`, `SIGTERM`, `SIGHUP`), null if none did.
    #[serde(default)]
    pub interrupted_by: Option<String>,
    /// (scenario, runtime) pairs whose measurement failed, most often because the server died.
    #[serde(default)]
    pub failed: Vec<Failed>,
    /// The agents that generated the load (`fanbench run --agent`); null when the load came
    /// from this process alone.
    #[serde(default)]
    pub agents: Option<crate::agent::controller::AgentsSection>,
}

impl ResultsFile {
    /// Whether the pair has an entry: measured, failed, or skipped (a skip that names no
    /// scenario covers every scenario of its row).
    pub fn has_entry(&self, scenario: &str, runtime: &str) -> bool {
        self.results
            .iter()
            .any(|r| r.scenario == scenario && r.runtime == runtime)
            || self
                .failed
                .iter()
                .any(|f| f.scenario == scenario && f.runtime == runtime)
            || self.skipped.iter().any(|s| {
                s.runtime == runtime && s.scenario.as_deref().is_none_or(|n| n == scenario)
            })
    }

    /// A signal stopped the run: every pair of `pairs` (scenario, runtime) without an entry is
    /// listed as skipped with `reason`, and the file is flagged partial, interrupted by
    /// `signal`.
    pub fn mark_interrupted<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        reason: &str,
        signal: String,
    ) {
        for (scenario, runtime) in pairs {
            if !self.has_entry(scenario, runtime) {
                self.skipped.push(Skipped {
                    scenario: Some(scenario.to_string()),
                    runtime: runtime.to_string(),
                    reason: reason.to_string(),
                });
            }
        }
        self.partial = true;
        self.interrupted_by = Some(signal);
    }
}

/// A (scenario, runtime) pair that started but could not be measured to the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    pub scenario: String,
    pub runtime: String,
    /// The whole error, as printed.
    pub reason: String,
    /// When the server died: how it ended (`signal: 9 (SIGKILL)`, `exit status: 101`).
    pub server_exit: Option<String>,
    /// The server's exit code, or the signal that killed it (one of the two when it died).
    pub server_exit_code: Option<i32>,
    pub server_signal: Option<i32>,
    /// The last lines of the server's output when it died.
    pub server_log_tail: Option<String>,
    /// Repetitions completed before the failure (not kept: a pair is reported whole or not).
    pub repetitions_completed: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitInfo {
    /// Full commit hash of the checkout the binary was run from (`git rev-parse HEAD`).
    pub commit: Option<String>,
    /// Whether tracked files had uncommitted changes (`git status --porcelain`).
    pub dirty: Option<bool>,
    pub null_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: Option<String>,
    /// `uname -r` (release) and `uname -v` (build).
    pub kernel: String,
    pub kernel_version: Option<String>,
    /// CPU model name from /proc/cpuinfo.
    pub cpu: String,
    /// Online logical CPUs.
    pub cores: u32,
    /// MemTotal from /proc/meminfo.
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toolchain {
    /// `rustc --version` of the compiler that built the binary (null if the build could not ask it).
    pub rustc: Option<String>,
    /// Version of the `fanbench` binary.
    pub fanbench: String,
}

/// One runtime row as listed by `fanbench runtimes`, plus reference servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// `--runtime` name (`uring`, `tokio-mt`, ...) or `nats-server`, or an external `--label`.
    pub name: String,
    /// `fanbench` (our broker on a runtime), `reference` (another server started by us),
    /// `external` (`run --target`, started by someone else).
    pub kind: RuntimeKind,
    /// Crate name -> version for the runtime's dependencies, or the server's own version.
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    pub available: bool,
    pub unavailable_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    Fanbench,
    Reference,
    External,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub scenario: Option<String>,
    pub runtime: String,
    pub reason: String,
}

/// A workload exactly as it was run (after command-line overrides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub publishers: u32,
    /// Each publisher k publishes on its own subject; this many subscribers listen to each.
    pub subscribers_per_publisher: u32,
    /// Messages per second per publisher (open loop).
    pub rate_per_publisher: f64,
    /// Payload size including the load generator's header (sequence, timestamps).
    pub payload_bytes: usize,
    /// Measured window per repetition.
    pub duration_s: f64,
    /// Warm-up before each measured window (not measured).
    pub warmup_s: f64,
    pub repetitions: u32,
    /// Subscribers of publisher 0 that read at a trickle (excluded from `expected`/`lost`).
    #[serde(default)]
    pub slow_subscribers: u32,
    #[serde(default)]
    pub slow_read_bytes_per_s: u64,
    /// The broker's batching window in microseconds (`fanbench serve --coalesce-us`): a busy
    /// connection's next write waits up to this long (0: off). Applied to every fanbench row;
    /// nats-server has no such setting and ignores it. Null in results written before it was
    /// recorded.
    #[serde(default)]
    pub coalesce_us: Option<u64>,
}

/// How the server under test was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    pub name: String,
    pub kind: RuntimeKind,
    /// The argv the server was started with (empty for an external server).
    pub command: Vec<String>,
    /// Environment variables set for the server (e.g. GOMAXPROCS for nats-server).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Address the load generator connected to.
    pub target: String,
    /// CPUs the server was pinned to (null for an external server: unknown).
    pub server_cpus: Option<Vec<usize>>,
    /// CPUs the load generator's threads were pinned to.
    pub client_cpus: Vec<usize>,
    /// Server pid whose metrics were sampled (null: no server metrics).
    pub server_pid: Option<u32>,
    /// The uring row's submission policy (`eager`, `adaptive`, `sqpoll`); null for every
    /// other row, and in files written before it was recorded.
    #[serde(default)]
    pub uring_policy: Option<String>,
    /// Every CPU the server used: `server_cpus` plus, for an SQPOLL row bound elsewhere, its
    /// kernel submission thread's CPU. Utilisation is over these (null: unknown, or written
    /// before it was recorded).
    #[serde(default)]
    pub cpus_used: Option<Vec<usize>>,
}

/// All repetitions of one scenario on one runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// The scenario name (full configuration in `scenario_config`).
    pub scenario: String,
    pub runtime: String,
    pub scenario_config: Scenario,
    pub runtime_config: RuntimeConfig,
    /// True only when every repetition is valid.
    pub valid: bool,
    /// Union of the repetitions' reasons, prefixed with the repetition index.
    pub invalid_reasons: Vec<String>,
    pub repetitions: Vec<Repetition>,
    pub summary: Summary,
    /// The `uring` row's own counters (`fanbench serve --stats-out`), written by the server at
    /// shutdown and therefore covering the whole server lifetime (all repetitions and warm-ups).
    #[serde(flatten, with = "fields::server_stats")]
    pub server_stats: Measured<serde_json::Value>,
}

/// The headline numbers. The same fields appear in every repetition (measured values) and in
/// the summary (median over repetitions; counts are totals), so one accessor reads both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// Delivered messages per second in the measured window.
    pub throughput_msgs_per_s: f64,
    /// Receive time - intended send time (includes queueing: the number to quote). Null when
    /// nothing was delivered in the window (an empty histogram has no percentiles).
    #[serde(flatten, with = "fields::latency_us")]
    pub latency_us: Measured<Percentiles>,
    /// Receive time - actual send time (null as `latency_us`).
    #[serde(flatten, with = "fields::service_latency_us")]
    pub service_latency_us: Measured<Percentiles>,
    /// Actual - intended send time (the load generator's own error). Null when nothing was sent.
    #[serde(flatten, with = "fields::pacing_lag_us")]
    pub pacing_lag_us: Measured<Percentiles>,
    /// Messages received by healthy subscribers in the measured window.
    pub delivered: u64,
    /// Messages healthy subscribers should have received in the measured window.
    pub expected: u64,
    /// Gaps in the per-publisher sequence seen by healthy subscribers.
    pub lost: u64,
    #[serde(flatten, with = "fields::syscalls_per_msg")]
    pub syscalls_per_msg: Measured<f64>,
    #[serde(flatten, with = "fields::sqes_per_msg")]
    pub sqes_per_msg: Measured<f64>,
    #[serde(flatten, with = "fields::server_cpu_us_per_msg")]
    pub server_cpu_us_per_msg: Measured<f64>,
    #[serde(flatten, with = "fields::server_peak_rss_bytes")]
    pub server_peak_rss_bytes: Measured<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    /// Number of samples recorded.
    pub count: u64,
}

/// One repetition: one warm-up plus one measured window against the same server process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repetition {
    pub index: u32,
    pub started_at: String,
    pub valid: bool,
    pub invalid_reasons: Vec<String>,
    /// Length of the measured window actually observed.
    pub window_s: f64,
    #[serde(flatten)]
    pub headline: Headline,
    pub sent: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub histograms: Histograms,
    /// One entry per second of the measured window.
    pub windows: Vec<WindowStats>,
    pub slow_subscribers: SlowSubscribers,
    pub load_generator: LoadGenerator,
    pub server: ServerMetrics,
    /// `-ERR` lines and connection errors the load generator saw.
    pub errors: Vec<String>,
}

/// HdrHistograms in the V2 serialization format (uncompressed), base64 (standard alphabet).
/// Deserialize with `hdrhistogram::serialization::Deserializer`. Values are in `unit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// `ns` or `us`.
    pub unit: String,
    pub latency: String,
    pub service_latency: String,
    pub pacing_lag: String,
}

/// One second of the measured window, by intended send time: the messages due in it and what
/// became of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Seconds since the start of the measured window (0, 1, 2, ...).
    pub second: u32,
    /// Length of this window (1 s, except a shorter last one).
    pub length_s: f64,
    /// Messages due in this second that were sent.
    pub sent: u64,
    /// Deliveries they should produce (healthy subscribers) and did produce.
    pub expected: u64,
    pub delivered: u64,
    /// Latency of those deliveries; null when there were none.
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    pub latency_max_us: Option<f64>,
    /// Deliveries (any due time) whose receive time fell in this second.
    #[serde(default)]
    pub received: u64,
    /// Largest pacing lag of a message due in this second.
    #[serde(default)]
    pub max_pacing_lag_us: f64,
    /// Highest share of any CPU the host stole in this second (null: /proc/stat unreadable).
    #[serde(default)]
    pub steal_max_share: Option<f64>,
}

/// What the slow subscribers saw (excluded from every healthy figure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowSubscribers {
    pub count: u32,
    pub read_bytes_per_s: u64,
    pub bytes_read: u64,
    /// Bytes read at full speed after the run (at most 500 ms), only to see whether the server
    /// had cut the connection behind the data still queued.
    #[serde(default)]
    pub bytes_drained_at_end: u64,
    /// `MSG`s they read in total, and those of them due in the measured window.
    pub messages: u64,
    pub messages_in_window: u64,
    /// How many got `-ERR 'Slow Consumer'`, and how many the server disconnected.
    pub cut_as_slow_consumer: u32,
    pub closed_by_server: u32,
    /// Highest latency of an in-window message a slow subscriber read.
    pub max_latency_us: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadGenerator {
    pub cpus: Vec<usize>,
    /// Pacing lag p99 > 1 ms or max > 10 ms, or a publisher could not send everything.
    pub behind_schedule: bool,
    pub max_pacing_lag_us: f64,
    /// How the pacer thread was scheduled ("SCHED_FIFO 1", or SCHED_OTHER and why).
    pub pacer_priority: String,
    /// CPU seconds the load generator process used in the measured window.
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// (user + sys) / (window x client cores), 0..1.
    pub utilisation: f64,
    /// Highest share of one core used by one load-generator thread, and which thread.
    pub busiest_thread_utilisation: Option<f64>,
    pub busiest_thread: Option<String>,
    pub busiest_thread_null_reason: Option<String>,
    /// Utilisation or the busiest thread above 90 %.
    pub saturated: bool,
    /// Healthy subscribers that lost at least one message.
    pub subscribers_with_loss: u32,
    /// How long the load generator waited after the window for in-flight messages.
    pub grace_s: f64,
    /// Which receive path the healthy subscribers ran on, the io_uring setup flags it got, and
    /// why the io_uring path did not run when it did not.
    #[serde(default)]
    pub receive_path: String,
    #[serde(default)]
    pub receive_ring_flags: Option<String>,
    #[serde(default)]
    pub receive_fallback_reason: Option<String>,
    /// Read time - kernel receive time per message: the instrument's own lag. Null on the
    /// readiness path (no kernel receive time).
    #[serde(flatten, with = "fields::read_delay_us")]
    pub read_delay_us: Measured<Percentiles>,
    /// Messages (healthy subscribers, any due time) whose kernel receive time fell in the
    /// window: the throughput numerator.
    #[serde(default)]
    pub received_in_window: u64,
    /// The latest the window's boundaries (start, each second, end) were sampled, in us after
    /// the boundary; over 10 ms the repetition is invalid (absent in older files).
    #[serde(default)]
    pub boundary_late_us: Option<f64>,
    /// Load generator process CPU (user + sys) in the window / messages received in it.
    #[serde(flatten, with = "fields::loadgen_cpu_us_per_msg")]
    pub cpu_us_per_msg: Measured<f64>,
    /// Busy and steal share of each client CPU over the window (`/proc/stat`).
    #[serde(default)]
    pub client_cpu_shares: Vec<CpuShare>,
    /// Messages per receive completion (how many messages a server packs per segment, as the
    /// load generator saw it); null on the readiness path.
    #[serde(default)]
    pub messages_per_receive: Option<f64>,
    /// The calibrated ceiling (deliveries/s) that applies to this result, and whether it is
    /// only a lower bound (the blaster saturated before the load generator did).
    #[serde(default)]
    pub ceiling_deliveries_per_s: Option<f64>,
    #[serde(default)]
    pub ceiling_is_lower_bound: bool,
    /// Ceiling / throughput.
    #[serde(flatten, with = "fields::headroom")]
    pub headroom: Measured<f64>,
    /// Headroom below 1.5 from a ceiling that is not a lower bound: the instrument may have
    /// limited this result (it is then invalid). A headroom derived from a lower-bound ceiling
    /// is a lower bound too and never sets this.
    #[serde(default)]
    pub instrument_limited: bool,
    /// Read delay p99 above 200 us: the load generator read late. A flag, not an invalidation
    /// (latency comes from kernel receive stamps; results/README.md says why).
    #[serde(default)]
    pub read_delay_over_bound: bool,
    /// Seconds of the window whose pacing hiccup or latency spike coincided with host steal.
    #[serde(default)]
    pub host_noise_windows: Vec<u32>,
    /// The io_uring receive path's counters in the whole run.
    #[serde(default)]
    pub rx: RxCounters,
}

/// One CPU's share of busy and stolen time over an interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuShare {
    pub cpu: usize,
    pub busy: f64,
    pub steal: f64,
}

/// The io_uring receive path's counters (all zero on the readiness path).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RxCounters {
    pub enters: u64,
    pub completions: u64,
    /// Completions without a kernel receive timestamp (timed at read instead).
    pub unstamped_completions: u64,
    /// Times every provided buffer was in use and a receive had to be re-armed.
    pub buffer_starvations: u64,
    pub bytes: u64,
    /// `MSG` frames parsed over the whole run (warm-up and drain included).
    #[serde(default)]
    pub messages: u64,
}

/// Server-side measurements, sampled at the load generator's window boundaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMetrics {
    pub pid: Option<u32>,
    /// From /proc/<pid>/stat (all threads), clock-tick resolution.
    pub cpu_user_s: Option<f64>,
    pub cpu_sys_s: Option<f64>,
    pub cpu_null_reason: Option<String>,
    /// perf `task-clock` summed over every server thread (ns resolution); used for
    /// `server_cpu_us_per_msg` when available, else user + sys.
    #[serde(flatten, with = "fields::cpu_task_clock")]
    pub cpu_task_clock_s: Measured<f64>,
    /// Whether peak RSS covers only the measured window (VmHWM reset via clear_refs at its
    /// start) or the process lifetime up to the window's end.
    pub peak_rss_scope: Option<String>,
    pub syscalls: Syscalls,
    /// `io_uring:io_uring_submit_req` events in the window.
    #[serde(flatten, with = "fields::sqes")]
    pub sqes: Measured<u64>,
    /// Server CPU seconds in the window / (window x server CPUs): 0.95 and above is a server
    /// that saturated its own cores.
    #[serde(flatten, with = "fields::server_utilisation")]
    pub utilisation: Measured<f64>,
    /// Which seconds of the window fed which metric (absent in files written before the window
    /// was split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counting: Option<ServerCounting>,
}

/// How the window was split between counting syscalls and measuring CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerCounting {
    /// `split`, `always` or `off` (`--server-counters`).
    pub mode: String,
    /// Seconds of the window (0-based) with the syscall tracepoints attached: syscalls, SQEs
    /// and the breakdown are counted there and divided by the messages received there (the
    /// last seconds, from `attach_ms` into the first of them).
    pub counted_seconds: Vec<u32>,
    /// Seconds whose server CPU and received messages give `server_cpu_us_per_msg`.
    pub cpu_seconds: Vec<u32>,
    /// Whether the tracepoints were attached while that CPU was measured (a one-second window,
    /// or `always`).
    pub cpu_with_tracepoints: bool,
    /// Server CPU per message in the counted seconds, tracepoints attached; over
    /// `server_cpu_us_per_msg` it is what the tracepoints cost this row here.
    #[serde(flatten, with = "fields::counted_cpu_us_per_msg")]
    pub counted_cpu_us_per_msg: Measured<f64>,
    /// How long attaching the tracepoints took at the cut: the counted part starts when it
    /// was done, so that long of the first counted second is not counted.
    pub attach_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Syscalls {
    /// `raw_syscalls:sys_enter` events on every server thread in the window.
    #[serde(flatten, with = "fields::syscalls_total")]
    pub total: Measured<u64>,
    /// `syscalls:sys_enter_<name>` per syscall that matters for a broker, plus `other`
    /// (= total - the listed ones). Empty when unavailable (see `breakdown_null_reason`).
    pub breakdown: BTreeMap<String, u64>,
    pub breakdown_null_reason: Option<String>,
    /// Server threads the counters were attached to when the repetition started (threads
    /// created later are counted through `inherit`).
    pub threads_at_start: Option<u32>,
    /// Server threads alive at the end of the window.
    pub threads_at_end: Option<u32>,
    /// How the counts were obtained.
    pub method: String,
}

/// Median and spread over all repetitions. Headline values are medians (counts are totals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub repetitions: u32,
    pub valid_repetitions: u32,
    #[serde(flatten)]
    pub headline: Headline,
    pub spread: Spread,
}

/// Min and max over repetitions for each median in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub throughput_msgs_per_s: Range,
    pub latency_us: Option<PercentileRanges>,
    pub service_latency_us: Option<PercentileRanges>,
    pub pacing_lag_us: Option<PercentileRanges>,
    pub syscalls_per_msg: Option<Range>,
    pub sqes_per_msg: Option<Range>,
    pub server_cpu_us_per_msg: Option<Range>,
    pub server_peak_rss_bytes: Option<Range>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PercentileRanges {
    pub p50: Range,
    pub p90: Range,
    pub p99: Range,
    pub p999: Range,
    pub max: Range,
    pub mean: Range,
}
