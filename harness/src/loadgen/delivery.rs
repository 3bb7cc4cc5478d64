//! What one received message adds to a receiver thread's figures, the same on both receive
//! paths.

use std::sync::atomic::Ordering;

use super::payload::Header;
use super::seq::{Observation, SeqTracker};
use super::subscriber::{Shared, SubPlan, ThreadReport};
use super::Timeline;

/// What a batch of reads adds to the figures shared with the coordinator (published once per
/// batch, not per message).
pub struct Batch {
    new_unique: u64,
    max_latency: u64,
    /// [`Shared::mark_ns`] as of the start of the batch.
    mark_ns: u64,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            new_unique: 0,
            max_latency: 0,
            mark_ns: u64::MAX,
        }
    }
}

impl Batch {
    /// Reads the mark: call it once the batch's data is in hand (after the completions were
    /// synced or the read returned), so a message received after the mark was set is counted.
    pub fn load_mark(&mut self, shared: &Shared) {
        self.mark_ns = shared.mark_ns.load(Ordering::Relaxed);
    }

    pub fn flush(&mut self, shared: &Shared) {
        if self.new_unique > 0 {
            shared
                .unique_in_window
                .fetch_add(self.new_unique, Ordering::Relaxed);
            shared
                .max_latency_ns
                .fetch_max(self.max_latency, Ordering::Relaxed);
        }
        self.new_unique = 0;
        self.max_latency = 0;
    }
}

/// Records one received message of `plan`'s publisher: latency, service latency, its
/// per-second windows (due and received), and its sequence number.
pub fn record(
    plan: &SubPlan,
    tracker: Option<&mut SeqTracker>,
    header: Header,
    received_ns: u64,
    timeline: Option<&Timeline>,
    report: &mut ThreadReport,
    batch: &mut Batch,
) {
    if header.publisher != plan.publisher {
        report.error(format!(
            "subscriber {}: got a message of publisher {} on publisher {}'s subject",
            plan.id, header.publisher, plan.publisher
        ));
        return;
    }
    let (Some(timeline), Some(tracker)) = (timeline, tracker) else {
        report.error(format!(
            "subscriber {}: a message arrived before the run started",
            plan.id
        ));
        return;
    };
    if let Some(w) = timeline.window_index(received_ns) {
        report.received_in_window += 1;
        report.windows[w].received += 1;
        if received_ns >= batch.mark_ns {
            report.received_since_mark += 1;
        }
    }
    let intended_ns = timeline.local_ns(header.intended_ns);
    let Some(window) = timeline.window_index(intended_ns) else {
        return;
    };
    let latency = received_ns.saturating_sub(intended_ns);
    report.latency.saturating_record(latency);
    report
        .service_latency
        .saturating_record(received_ns.saturating_sub(timeline.local_ns(header.actual_ns)));
    report.windows[window].delivered += 1;
    report.windows[window].latency.saturating_record(latency);
    report.delivered += 1;
    batch.max_latency = batch.max_latency.max(latency);
    match tracker.observe(header.seq) {
        Observation::InOrder | Observation::Reordered => batch.new_unique += 1,
        Observation::Duplicate => {}
        Observation::Unexpected => report.error(format!(
            "subscriber {}: sequence {} of publisher {} does not match its send time",
            plan.id, header.seq, plan.publisher
        )),
    }
}
