//! What the runtime counts about itself, and the serializable snapshot the harness records.
//!
//! Counting is plain integer arithmetic on the runtime's own thread (no atomics on the hot
//! path), except for cross-thread wakes, which are counted by the waking thread.

use serde::Serialize;

use crate::config::SubmitPolicy;

/// Upper bounds (inclusive) of the SQEs-per-enter histogram buckets; a last bucket with
/// `le: null` counts everything above the largest bound.
pub const SQES_PER_ENTER_BOUNDS: [u64; 14] =
    [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// A histogram of how many SQEs each `io_uring_enter` call consumed.
///
/// Serialized as a list of `{ "le": bound, "count": n }` buckets in increasing order of
/// `le`; bucket `i` counts enters that consumed more than bucket `i-1`'s bound and at most
/// `le` SQEs. The last bucket has `le: null` (unbounded). Enters that only waited for
/// completions (or only woke the SQPOLL thread) consumed 0 SQEs and land in `le: 0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SqesPerEnter {
    buckets: Vec<Bucket>,
}

/// One histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Inclusive upper bound; `None` (JSON `null`) for the overflow bucket.
    pub le: Option<u64>,
    /// Number of enters in this bucket.
    pub count: u64,
}

impl Default for SqesPerEnter {
    fn default() -> Self {
        let mut buckets: Vec<Bucket> = SQES_PER_ENTER_BOUNDS
            .iter()
            .map(|&le| Bucket {
                le: Some(le),
                count: 0,
            })
            .collect();
        buckets.push(Bucket { le: None, count: 0 });
        SqesPerEnter { buckets }
    }
}

impl SqesPerEnter {
    /// Count one enter that consumed `sqes` SQEs.
    pub fn record(&mut self, sqes: u64) {
        let idx = SQES_PER_ENTER_BOUNDS.partition_point(|&le| le < sqes);
        self.buckets[idx].count += 1;
    }

    /// The buckets, in increasing order of bound.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// Total enters recorded.
    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }

    fn merge(&mut self, other: &SqesPerEnter) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            a.count += b.count;
        }
    }
}

/// Ring setup flags the kernel accepted (each was asked for only where the policy allows it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RingFlags {
    /// `IORING_SETUP_SQPOLL`: a kernel thread consumes the submission queue.
    pub sqpoll: bool,
    /// `IORING_SETUP_SINGLE_ISSUER`: only this thread submits.
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN`: completion work runs only when we enter with GETEVENTS.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN`: no IPI to interrupt us for completion work.
    pub coop_taskrun: bool,
    /// `IORING_SETUP_TASKRUN_FLAG`: the kernel flags pending completion work in the SQ ring.
    pub taskrun_flag: bool,
}

/// Counters of one runtime (or, after [`merge`](UringStats::merge), of several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UringStats {
    /// The submission policy in effect.
    pub policy: SubmitPolicy,
    /// Submission queue entries of the ring (as granted by the kernel).
    pub sq_entries: u32,
    /// Completion queue entries of the ring (as granted by the kernel).
    pub cq_entries: u32,
    /// Ring setup flags the kernel accepted.
    pub flags: RingFlags,
    /// SQPOLL: the CPU the kernel submission thread was bound to (null: not bound, or not
    /// SQPOLL).
    pub sqpoll_cpu: Option<u32>,
    /// How many runtimes these counters add up (1 unless merged).
    pub runtimes: u32,
    /// `io_uring_enter` system calls made.
    pub io_uring_enter_calls: u64,
    /// SQEs handed to the kernel: the sum of what each enter consumed, or under SQPOLL the
    /// SQEs queued for the kernel thread (it consumes them without an enter).
    pub sqes_submitted: u64,
    /// CQEs read from the completion queue.
    pub cqes_reaped: u64,
    /// SQEs consumed per `io_uring_enter` call.
    pub sqes_per_enter: SqesPerEnter,
    /// Scheduler ticks (one run of the ready tasks followed by one visit to the ring).
    pub ticks: u64,
    /// Task polls (including the `block_on` future).
    pub task_polls: u64,
    /// Tasks spawned.
    pub tasks_spawned: u64,
    /// Enters that blocked waiting for a completion.
    pub parks: u64,
    /// Adaptive policy: idle iterations spent busy-polling the ring instead of parking.
    pub busy_polls: u64,
    /// Times the submission queue was full and the runtime had to submit to make room.
    pub sq_full: u64,
    /// Times the kernel flagged completion-queue overflow and an enter flushed it.
    pub cq_overflows: u64,
    /// Wakes that came from another thread.
    pub remote_wakes: u64,
    /// Of those, the ones that had to write the eventfd because the runtime was parked.
    pub eventfd_wakes: u64,
    /// Ops whose future was dropped while in flight (cancelled, resources kept until done).
    pub ops_cancelled: u64,
    /// Ops still in flight when the runtime was dropped that did not complete in time: their
    /// resources were deliberately leaked, never freed under the kernel.
    pub leaked_on_drop: u64,
}

impl UringStats {
    pub(crate) fn new(policy: SubmitPolicy, sq: u32, cq: u32, flags: RingFlags) -> Self {
        UringStats {
            policy,
            sq_entries: sq,
            cq_entries: cq,
            flags,
            sqpoll_cpu: None,
            runtimes: 1,
            io_uring_enter_calls: 0,
            sqes_submitted: 0,
            cqes_reaped: 0,
            sqes_per_enter: SqesPerEnter::default(),
            ticks: 0,
            task_polls: 0,
            tasks_spawned: 0,
            parks: 0,
            busy_polls: 0,
            sq_full: 0,
            cq_overflows: 0,
            remote_wakes: 0,
            eventfd_wakes: 0,
            ops_cancelled: 0,
            leaked_on_drop: 0,
        }
    }

    /// Add `other`'s counters to these (for N runtimes on N threads). Configuration fields
    /// (policy, ring sizes, flags) are kept from `self`: the harness merges runtimes that were
    /// built from one configuration.
    pub fn merge(&mut self, other: &UringStats) {
        self.runtimes += other.runtimes;
        self.io_uring_enter_calls += other.io_uring_enter_calls;
        self.sqes_submitted += other.sqes_submitted;
        self.cqes_reaped += other.cqes_reaped;
        self.sqes_per_enter.merge(&other.sqes_per_enter);
        self.ticks += other.ticks;
        self.task_polls += other.task_polls;
        self.tasks_spawned += other.tasks_spawned;
        self.parks += other.parks;
        self.busy_polls += other.busy_polls;
        self.sq_full += other.sq_full;
        self.cq_overflows += other.cq_overflows;
        self.remote_wakes += other.remote_wakes;
        self.eventfd_wakes += other.eventfd_wakes;
        self.ops_cancelled += other.ops_cancelled;
        self.leaked_on_drop += other.leaked_on_drop;
    }

    /// Mean SQEs per enter, or `None` before the first enter.
    pub fn mean_sqes_per_enter(&self) -> Option<f64> {
        (self.io_uring_enter_calls > 0)
            .then(|| self.sqes_submitted as f64 / self.io_uring_enter_calls as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_puts_values_in_the_first_bucket_whose_bound_covers_them() {
        let mut h = SqesPerEnter::default();
        for v in [0, 1, 2, 3, 4, 5, 4096, 4097, 1_000_000] {
            h.record(v);
        }
        let count = |le: Option<u64>| h.buckets().iter().find(|b| b.le == le).unwrap().count;
        assert_eq!(count(Some(0)), 1);
        assert_eq!(count(Some(1)), 1);
        assert_eq!(count(Some(2)), 1);
        assert_eq!(count(Some(4)), 2);
        assert_eq!(count(Some(8)), 1);
        assert_eq!(count(Some(4096)), 1);
        assert_eq!(count(None), 2);
        assert_eq!(h.total(), 9);
    }

    #[test]
    fn merge_sums_counters_and_buckets() {
        let mut a = UringStats::new(SubmitPolicy::Eager, 8, 16, RingFlags::default());
        let mut b = a.clone();
        a.io_uring_enter_calls = 3;
        a.sqes_per_enter.record(7);
        b.io_uring_enter_calls = 4;
        b.sqes_per_enter.record(7);
        b.sqes_per_enter.record(0);
        a.merge(&b);
        assert_eq!(a.runtimes, 2);
        assert_eq!(a.io_uring_enter_calls, 7);
        assert_eq!(a.sqes_per_enter.total(), 3);
    }

    #[test]
    fn stats_serialize_histogram_as_le_count_list() {
        let mut s = UringStats::new(SubmitPolicy::Adaptive, 8, 16, RingFlags::default());
        s.sqes_per_enter.record(3);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["policy"], "adaptive");
        let buckets = v["sqes_per_enter"].as_array().unwrap();
        assert_eq!(buckets[3], serde_json::json!({"le": 4, "count": 1}));
        assert_eq!(buckets.last().unwrap()["le"], serde_json::Value::Null);
    }
}
