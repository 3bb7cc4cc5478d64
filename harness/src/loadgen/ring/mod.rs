//! The subscribers' receive path on io_uring: one ring per load-generator thread, a multishot
//! `recvmsg` per subscriber connection on a provided-buffer ring, frames parsed in place, and
//! every message timed by the kernel's receive timestamp.
//!
//! # Why not the runtime under test, and why not epoll
//!
//! The receiver must out-run every server, and a bug in one of the runtimes being compared
//! must not bias every row, so it is written here on the raw `io-uring` crate. With readiness
//! I/O a server that sends one message per segment costs the receiver a wake-up and a `recv`
//! per message; here one `io_uring_enter` reaps as many completions as have arrived, each
//! completion carries whatever the socket held, and nothing is allocated per message.
//!
//! # Timing
//!
//! A message's receive time is the kernel's software receive stamp of the data
//! ([`clock`]), not the moment this thread got around to it: in a 100-way fan-out the last
//! socket would otherwise wait behind 99 others and that wait would be charged to the server.
//! The difference (read time - kernel stamp) is recorded per message as the instrument's own
//! read delay. For TCP a completion reports the stamp of the last segment it read, so messages
//! from earlier segments of the same completion are charged at most that read's spread; a
//! receiver that keeps up reads about one segment per completion.
//!
//! # Ring
//!
//! `SINGLE_ISSUER | DEFER_TASKRUN` where the kernel has them (completions are only processed
//! when this thread enters the ring), else `COOP_TASKRUN`, else no flags; which one ran is
//! reported. The thread blocks in `io_uring_enter` with a short timeout so it notices the end
//! of the run.

mod bufring;
mod clock;
pub mod frames;

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use io_uring::types::{Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, IoUring};
use tokio::sync::watch;

use super::delivery;
use super::os;
use super::publisher::{NextStep, Pacer};
use super::seq::SeqTracker;
use super::stats::WindowAcc;
use super::subscriber::{Phase, Shared, SubPlan, ThreadReport};
use super::wire::{self, Incoming, Pings};
use super::Timeline;
use bufring::BufRing;
use frames::{Frame, FrameParser};

/// Provided buffers per thread and their size: 16 MiB, enough that 100 connections with a
/// full socket each never starve the ring between two enters.
const BUFFERS: u16 = 256;
const BUFFER_BYTES: usize = 64 * 1024;
const BUFFER_GROUP: u16 = 0;
const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 16 * 1024;
/// Longest wait in `io_uring_enter` before the thread looks at the run's phase again.
const WAIT_NS: u32 = 5_000_000;
/// `user_data` of cancellation requests (connections use their index).
const CANCEL_USER_DATA: u64 = u64::MAX;
/// `user_data` tags of the pacer's publisher polls (ORed with the publisher's index).
const PUB_READ: u64 = 1 << 62;
const PUB_WRITE: u64 = 1 << 61;
/// Time allowed for one subscriber's connect and handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed at the end for every receive to acknowledge its cancellation.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes the probe makes before it concludes the kernel does not stamp received data.
const PROBE_ATTEMPTS: usize = 5;

/// Which receive path ran, for the results.
pub const PATH_NAME: &str = "io_uring multishot recvmsg, provided buffers, kernel rx timestamps";

/// Whether this kernel runs the receive path: a ring, a provided-buffer ring, and a multishot
/// `recvmsg` on a loopback TCP connection that returns data with a software receive stamp.
/// Returns the ring flags that were accepted, or why the path cannot run.
pub fn probe() -> Result<String> {
    let mut probe = Receiver::with_buffers(8, 4096)?;
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding a probe listener")?;
    let client = TcpStream::connect(listener.local_addr()?).context("connecting the probe")?;
    let (mut server, _) = listener.accept().context("accepting the probe")?;
    clock::enable_rx_timestamps(client.as_raw_fd()).context("enabling SO_TIMESTAMPING")?;
    probe.arm(client.as_raw_fd(), 0)?;
    // The kernel turns receive stamping on for the whole stack lazily (a deferred static-key
    // switch), so the first packets after enabling it may carry none: try a few times.
    let mut result = Err(anyhow::anyhow!("no attempt"));
    for _attempt in 0..PROBE_ATTEMPTS {
        std::thread::sleep(Duration::from_millis(10));
        server
            .write_all(b"PING\r\n")
            .context("writing to the probe")?;
        let deadline = Instant::now() + Duration::from_secs(1);
        result = loop {
            probe.enter(1)?;
            let cqes: Vec<cqueue::Entry> = probe.ring.completion().collect();
            if let Some(cqe) = cqes.iter().find(|c| c.user_data() == 0) {
                break probe.check_probe_completion(cqe);
            }
            if Instant::now() > deadline {
                break Err(anyhow::anyhow!("no completion within 1 s"));
            }
        };
        if result.is_ok() {
            break;
        }
    }
    probe.shutdown(&[0]);
    drop(server);
    result
}

fn build_ring() -> io::Result<(IoUring, &'static str)> {
    let mut builder = IoUring::builder();
    builder
        .setup_cqsize(CQ_ENTRIES)
        .setup_single_issuer()
        .setup_defer_taskrun();
    if let Ok(ring) = builder.build(SQ_ENTRIES) {
        return Ok((ring, "SINGLE_ISSUER|DEFER_TASKRUN"));
    }
    let mut builder = IoUring::builder();
    builder.setup_cqsize(CQ_ENTRIES).setup_coop_taskrun();
    if let Ok(ring) = builder.build(SQ_ENTRIES) {
        return Ok((ring, "COOP_TASKRUN"));
    }
    let mut builder = IoUring::builder();
    builder.setup_cqsize(CQ_ENTRIES);
    Ok((builder.build(SQ_ENTRIES)?, "none"))
}

fn recv_msghdr() -> Box<libc::msghdr> {
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut hdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
    hdr.msg_controllen = clock::CONTROL_LEN as _;
    hdr
}

/// A ring with its provided buffers. Field order is drop order: the ring is closed before the
/// buffers it may write into are freed.
struct Receiver {
    ring: IoUring,
    flags: &'static str,
    /// The template of every multishot recvmsg (only its name and control lengths matter;
    /// boxed so its address is stable while a submission reads it).
    msghdr: Box<libc::msghdr>,
    bufs: Option<BufRing>,
}

impl Receiver {
    fn with_buffers(count: u16, size: usize) -> Result<Self> {
        let (ring, flags) = build_ring().context("creating an io_uring")?;
        let bufs = BufRing::register(&ring, BUFFER_GROUP, count, size)
            .context("registering a provided-buffer ring")?;
        Ok(Self {
            ring,
            flags,
            msghdr: recv_msghdr(),
            bufs: Some(bufs),
        })
    }

    /// The probe's one completion: data, in a provided buffer, with a receive stamp, and the
    /// receive still armed.
    fn check_probe_completion(&mut self, cqe: &cqueue::Entry) -> Result<String> {
        if cqe.result() < 0 {
            bail!(
                "multishot recvmsg failed: {}",
                io::Error::from_raw_os_error(-cqe.result())
            );
        }
        let Some(bid) = cqueue::buffer_select(cqe.flags()) else {
            bail!("the completion names no provided buffer");
        };
        let bufs = self.bufs.as_mut().context("the probe's buffers are gone")?;
        // SAFETY: `bid` and the length come from this completion; recycled just below.
        let data = unsafe { bufs.filled(bid, cqe.result() as usize) };
        let stamped = RecvMsgOut::parse(data, &self.msghdr)
            .ok()
            .and_then(|out| clock::rx_software_stamp(out.control_data()));
        bufs.recycle(bid);
        if stamped.is_none() {
            bail!("received data carries no kernel receive timestamp");
        }
        if !cqueue::more(cqe.flags()) {
            bail!("the kernel does not keep a multishot recvmsg armed");
        }
        Ok(self.flags.to_string())
    }

    /// Queues a multishot recvmsg on `fd` (submitted at the next enter).
    fn arm(&mut self, fd: i32, user_data: u64) -> Result<()> {
        let sqe = opcode::RecvMsgMulti::new(Fd(fd), &*self.msghdr as *const _, BUFFER_GROUP)
            .build()
            .user_data(user_data);
        self.push(&sqe)
    }

    fn push(&mut self, sqe: &io_uring::squeue::Entry) -> Result<()> {
        // SAFETY: the msghdr the entry points at is boxed in `self` and outlives the
        // submission (the kernel copies it when it prepares the request); the buffers are the
        // registered group.
        if unsafe { self.ring.submission().push(sqe) }.is_err() {
            self.ring
                .submit()
                .context("submitting a full submission queue")?;
            // SAFETY: as above.
            unsafe { self.ring.submission().push(sqe) }
                .map_err(|_| anyhow::anyhow!("the submission queue is still full"))?;
        }
        Ok(())
    }

    /// Submits what is queued and waits up to [`WAIT_NS`] for `want` completions.
    fn enter(&mut self, want: usize) -> Result<()> {
        self.enter_for(want, WAIT_NS)
    }

    /// Submits what is queued and waits up to `wait_ns` (< 1 s) for `want` completions.
    fn enter_for(&mut self, want: usize, wait_ns: u32) -> Result<()> {
        let ts = Timespec::new().nsec(wait_ns);
        let args = SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e).context("io_uring_enter"),
        }
    }

    /// Cancels the receives of `armed` connections and waits until each has ended, so that
    /// the buffers are no longer the kernel's. If that does not happen in time the buffers are
    /// leaked rather than freed under the kernel.
    fn shutdown(&mut self, armed: &[u64]) {
        let mut live: Vec<u64> = armed.to_vec();
        for &ud in &live {
            let cancel = opcode::AsyncCancel::new(ud)
                .build()
                .user_data(CANCEL_USER_DATA);
            if self.push(&cancel).is_err() {
                break;
            }
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !live.is_empty() && Instant::now() < deadline {
            if self.enter(1).is_err() {
                break;
            }
            let cqes: Vec<cqueue::Entry> = self.ring.completion().collect();
            for cqe in cqes {
                if let (Some(bid), Some(bufs)) =
                    (cqueue::buffer_select(cqe.flags()), self.bufs.as_mut())
                {
                    bufs.recycle(bid);
                }
                if cqe.user_data() != CANCEL_USER_DATA && !cqueue::more(cqe.flags()) {
                    live.retain(|&ud| ud != cqe.user_data());
                }
            }
        }
        if !live.is_empty() {
            std::mem::forget(self.bufs.take());
        }
    }
}

/// One subscriber connection on the ring.
struct Conn {
    stream: TcpStream,
    plan: SubPlan,
    parser: FrameParser,
    tracker: Option<SeqTracker>,
    /// A multishot receive is in flight.
    armed: bool,
    /// Closed or failed: no more receives.
    done: bool,
}

/// The pacer ([`Pacer`]) running in receiver thread 0's loop: it sends between completions
/// and bounds the ring wait by its next deadline, which saves the separate pacer thread's two
/// context switches per message on a CPU it would share with this one. The thread then runs
/// SCHED_FIFO where permitted. Its publishers'
/// sockets are watched on this ring: a multishot poll for readability (server `PING`s,
/// `-ERR`s) and a one-shot poll for writability while a publisher has a backlog.
struct PacerOnRing {
    pacer: Pacer,
    read_armed: Vec<bool>,
    write_armed: Vec<bool>,
}

impl PacerOnRing {
    /// Takes the pacer handed over for this thread, if any, makes this thread its own and
    /// arms its publishers' polls.
    fn take(shared: &Shared, rx: &mut Receiver) -> Result<Option<Self>> {
        let Some(mut pacer) = shared.pacer.lock().ok().and_then(|mut slot| slot.take()) else {
            return Ok(None);
        };
        // SCHED_FIFO, as the pacer's own thread would be: otherwise the coordinating thread's
        // work at a window boundary (attaching the server's tracepoints takes milliseconds)
        // delays the messages due meanwhile (harness/PERF.md).
        pacer.claim_thread("receiver thread 0's ring loop");
        let n = pacer.publishers();
        let mut me = Self {
            pacer,
            read_armed: vec![false; n],
            write_armed: vec![false; n],
        };
        for k in 0..n {
            me.arm_read(rx, k)?;
        }
        Ok(Some(me))
    }

    fn arm_read(&mut self, rx: &mut Receiver, k: usize) -> Result<()> {
        if self.pacer.is_alive(k) && !self.read_armed[k] {
            let sqe = opcode::PollAdd::new(Fd(self.pacer.fd(k)), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(PUB_READ | k as u64);
            rx.push(&sqe)?;
            self.read_armed[k] = true;
        }
        Ok(())
    }

    /// Watches for writability every publisher that has bytes the kernel did not take.
    fn arm_writes(&mut self, rx: &mut Receiver) -> Result<()> {
        for k in 0..self.pacer.publishers() {
            if !self.write_armed[k] && self.pacer.has_backlog(k) {
                let sqe = opcode::PollAdd::new(Fd(self.pacer.fd(k)), libc::POLLOUT as u32)
                    .build()
                    .user_data(PUB_WRITE | k as u64);
                rx.push(&sqe)?;
                self.write_armed[k] = true;
            }
        }
        Ok(())
    }

    fn on_completion(&mut self, rx: &mut Receiver, ud: u64, res: i32, more: bool) -> Result<()> {
        let k = (ud & !(PUB_READ | PUB_WRITE)) as usize;
        if k >= self.pacer.publishers() {
            return Ok(());
        }
        if ud & PUB_READ != 0 {
            if !more {
                self.read_armed[k] = false;
            }
            if res != -libc::ECANCELED {
                // Readable, hung up or failed: the read says which.
                self.pacer.on_readable(k);
                self.arm_read(rx, k)?;
            }
        } else {
            self.write_armed[k] = false;
            if res != -libc::ECANCELED {
                self.pacer.on_writable(k);
            }
        }
        Ok(())
    }

    /// `user_data` of the polls still in flight.
    fn armed(&self) -> impl Iterator<Item = u64> + '_ {
        let reads = (0..self.read_armed.len())
            .filter(|&k| self.read_armed[k])
            .map(|k| PUB_READ | k as u64);
        let writes = (0..self.write_armed.len())
            .filter(|&k| self.write_armed[k])
            .map(|k| PUB_WRITE | k as u64);
        reads.chain(writes)
    }
}

/// Counters of the receive path, per thread and summed over the run (all zero on the
/// readiness path).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RxCounters {
    pub enters: u64,
    pub completions: u64,
    /// Completions whose control data carried no receive stamp (timed at read instead).
    pub unstamped_completions: u64,
    /// Times a receive ended because every provided buffer was in use (re-armed at once).
    pub buffer_starvations: u64,
    pub bytes: u64,
    /// `MSG` frames parsed (whole run, any due time).
    pub messages: u64,
}

impl RxCounters {
    pub fn add(&mut self, other: &RxCounters) {
        self.enters += other.enters;
        self.completions += other.completions;
        self.unstamped_completions += other.unstamped_completions;
        self.buffer_starvations += other.buffer_starvations;
        self.bytes += other.bytes;
        self.messages += other.messages;
    }
}

/// Starts one receiver thread for `plans` (healthy subscribers only), pinned to `cpu`.
pub fn spawn_thread(
    index: usize,
    cpu: Option<usize>,
    plans: Vec<SubPlan>,
    shared: Arc<Shared>,
    phase: watch::Receiver<Phase>,
) -> Result<std::thread::JoinHandle<Result<ThreadReport>>> {
    std::thread::Builder::new()
        .name(format!("loadgen-rx-{index}"))
        .spawn(move || {
            let mut announced = 0;
            let result = thread_main(index, cpu, &plans, &shared, phase, &mut announced);
            if let Err(e) = &result {
                // Unblock the coordinator: subscribers not yet announced count as failed.
                if let Ok(ready) = shared.ready.lock() {
                    for plan in &plans[announced.min(plans.len())..] {
                        let _ = ready.send(Err(format!("subscriber {}: {e:#}", plan.id)));
                    }
                }
            }
            result
        })
        .context("spawning a receiver thread")
}

fn thread_main(
    index: usize,
    cpu: Option<usize>,
    plans: &[SubPlan],
    shared: &Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
    announced: &mut usize,
) -> Result<ThreadReport> {
    if let Some(cpu) = cpu {
        os::pin_current_thread(cpu)?;
    }
    if let Ok(mut threads) = shared.threads.lock() {
        threads.push((format!("receiver thread {index}"), os::gettid()));
    }
    let mut rx = Receiver::with_buffers(BUFFERS, BUFFER_BYTES)?;
    let mut report = ThreadReport::new();
    let mut conns = Vec::with_capacity(plans.len());
    let mut pending: Vec<Vec<u8>> = Vec::with_capacity(plans.len());
    for plan in plans {
        let opened = open(plan, shared);
        let ready = opened.as_ref().map(|_| ()).map_err(|e| {
            format!(
                "subscriber {} (publisher {}): {e:#}",
                plan.id, plan.publisher
            )
        });
        if let Ok(tx) = shared.ready.lock() {
            let _ = tx.send(ready);
        }
        *announced += 1;
        if let Ok((stream, leftover)) = opened {
            rx.arm(stream.as_raw_fd(), conns.len() as u64)?;
            conns.push(Conn {
                stream,
                plan: plan.clone(),
                parser: FrameParser::new(),
                tracker: None,
                armed: true,
                done: false,
            });
            pending.push(leftover);
        }
    }
    rx.enter(0)?;

    let mut timeline: Option<Timeline> = None;
    let mut conv = clock::RealtimeToMonotonic::sample();
    let mut batch = delivery::Batch::default();
    for (i, leftover) in pending.into_iter().enumerate() {
        if !leftover.is_empty() {
            let read_ns = os::now_ns();
            handle_data(
                &mut conns[i],
                &leftover,
                read_ns,
                read_ns,
                None,
                &mut report,
                &mut batch,
            );
        }
    }
    let mut pacer: Option<PacerOnRing> = None;
    loop {
        if phase.has_changed().unwrap_or(true) {
            match &*phase.borrow_and_update() {
                Phase::Stop => break,
                Phase::Running(t) if timeline.is_none() => {
                    start_timeline(t, &mut conns, &mut report);
                    timeline = Some(t.clone());
                    if index == 0 {
                        pacer = PacerOnRing::take(shared, &mut rx)?;
                    }
                }
                _ => {}
            }
        }
        // The pacer's turn: send what is due, busy-wait for a deadline within its margin, and
        // otherwise wait in the ring no longer than until the margin before the next one.
        let mut wait_ns = WAIT_NS;
        let mut timed_wake = None;
        if let Some(p) = pacer.as_mut() {
            p.pacer.send_due(os::now_ns());
            let now = os::now_ns();
            match p.pacer.next_step(now) {
                NextStep::Done => {}
                NextStep::SpinAndSend => {
                    p.pacer.spin_and_send();
                    continue;
                }
                NextStep::WakeAt(wake) if wake - now < u64::from(wait_ns) => {
                    wait_ns = (wake - now) as u32;
                    timed_wake = Some(wake);
                }
                NextStep::WakeAt(_) => {}
            }
            p.arm_writes(&mut rx)?;
        }
        rx.enter_for(1, wait_ns)?;
        report.rx.enters += 1;
        let mut rearm = Vec::new();
        let mut pub_events = Vec::new();
        {
            let Receiver {
                ring, msghdr, bufs, ..
            } = &mut rx;
            let bufs = bufs.as_mut().expect("buffers are only taken at shutdown");
            let mut completion = ring.completion();
            completion.sync();
            if completion.is_empty() {
                if let (Some(p), Some(wake)) = (pacer.as_mut(), timed_wake) {
                    p.pacer.observe_wake(wake, os::now_ns());
                }
                continue;
            }
            batch.load_mark(shared);
            // Data can only arrive once publishing started, which is after the phase changed.
            if timeline.is_none() {
                if let Phase::Running(t) = &*phase.borrow() {
                    start_timeline(t, &mut conns, &mut report);
                    timeline = Some(t.clone());
                }
            }
            for cqe in &mut completion {
                let ud = cqe.user_data();
                if ud & (PUB_READ | PUB_WRITE) != 0 && ud != CANCEL_USER_DATA {
                    pub_events.push((ud, cqe.result(), cqueue::more(cqe.flags())));
                    continue;
                }
                // Between two completions the pacer sends whatever fell due meanwhile, so a
                // long batch of completions delays a message by at most one completion.
                let read_ns = os::now_ns();
                if let Some(p) = pacer.as_mut() {
                    if read_ns >= p.pacer.next_due_ns() {
                        p.pacer.send_due(read_ns);
                    }
                }
                let Some(conn) = conns.get_mut(ud as usize) else {
                    continue;
                };
                report.rx.completions += 1;
                let flags = cqe.flags();
                let res = cqe.result();
                if !cqueue::more(flags) {
                    conn.armed = false;
                }
                if res < 0 {
                    match -res {
                        libc::ENOBUFS => report.rx.buffer_starvations += 1,
                        libc::ECANCELED => conn.done = true,
                        errno => {
                            conn.done = true;
                            report.error(format!(
                                "subscriber {} (publisher {}): receive failed: {}",
                                conn.plan.id,
                                conn.plan.publisher,
                                io::Error::from_raw_os_error(errno)
                            ));
                        }
                    }
                } else if let Some(bid) = cqueue::buffer_select(flags) {
                    // SAFETY: `bid` and the length come from this completion, and the buffer is
                    // recycled only after the last use of `data` below.
                    let data = unsafe { bufs.filled(bid, res as usize) };
                    match RecvMsgOut::parse(data, msghdr) {
                        Ok(out) if out.payload_data().is_empty() => {
                            conn.done = true;
                            report.error(format!(
                                "subscriber {} (publisher {}): server closed the connection",
                                conn.plan.id, conn.plan.publisher
                            ));
                        }
                        Ok(out) => {
                            report.rx.bytes += out.payload_data().len() as u64;
                            let stamp = clock::rx_software_stamp(out.control_data());
                            let received_ns = match stamp {
                                Some(real) => conv.to_monotonic(real).min(read_ns),
                                None => {
                                    report.rx.unstamped_completions += 1;
                                    read_ns
                                }
                            };
                            handle_data(
                                conn,
                                out.payload_data(),
                                received_ns,
                                read_ns,
                                timeline.as_ref(),
                                &mut report,
                                &mut batch,
                            );
                        }
                        Err(()) => {
                            conn.done = true;
                            report.error(format!(
                                "subscriber {}: a receive completion too short for its header",
                                conn.plan.id
                            ));
                        }
                    }
                    bufs.recycle(bid);
                }
                if !conn.armed && !conn.done {
                    rearm.push(ud);
                }
            }
        }
        for ud in rearm {
            let fd = conns[ud as usize].stream.as_raw_fd();
            rx.arm(fd, ud)?;
            conns[ud as usize].armed = true;
        }
        if let Some(p) = pacer.as_mut() {
            for (ud, res, more) in pub_events {
                p.on_completion(&mut rx, ud, res, more)?;
            }
        }
        batch.flush(shared);
        conv.refresh(os::now_ns());
    }
    let mut armed: Vec<u64> = (0..conns.len() as u64)
        .filter(|&i| conns[i as usize].armed)
        .collect();
    if let Some(p) = &pacer {
        armed.extend(p.armed());
    }
    rx.shutdown(&armed);
    // A run stopped before this thread saw it start still reports the (idle) pacer.
    let idle = || shared.pacer.lock().ok().and_then(|mut slot| slot.take());
    report.pacer = match pacer {
        Some(p) => Some(p.pacer.finish()),
        None if index == 0 => idle().map(Pacer::finish),
        None => None,
    };
    for conn in conns {
        let Some(tracker) = conn.tracker else {
            continue;
        };
        report.expected += tracker.expected();
        report.lost += tracker.lost();
        report.duplicates += tracker.duplicates();
        report.reordered += tracker.reordered();
        if tracker.lost() > 0 {
            report.subscribers_with_loss += 1;
        }
    }
    Ok(report)
}

fn start_timeline(timeline: &Timeline, conns: &mut [Conn], report: &mut ThreadReport) {
    if report.windows.len() < timeline.windows() {
        report
            .windows
            .resize_with(timeline.windows(), WindowAcc::new);
    }
    for conn in conns {
        let schedule = timeline.schedules[conn.plan.publisher as usize];
        conn.tracker = Some(SeqTracker::new(
            schedule.seqs_due_in(timeline.window_start_ns, timeline.window_end_ns),
        ));
    }
}

/// Parses one completion's bytes and records every message in it.
fn handle_data(
    conn: &mut Conn,
    data: &[u8],
    received_ns: u64,
    read_ns: u64,
    timeline: Option<&Timeline>,
    report: &mut ThreadReport,
    batch: &mut delivery::Batch,
) {
    let mut pongs = 0;
    let mut messages = 0u64;
    let plan = &conn.plan;
    let tracker = &mut conn.tracker;
    let parsed = conn.parser.feed(data, |frame| match frame {
        Frame::Msg(header) => {
            messages += 1;
            delivery::record(
                plan,
                tracker.as_mut(),
                header,
                received_ns,
                timeline,
                report,
                batch,
            );
        }
        Frame::ShortMsg(len) => report.error(format!(
            "subscriber {}: payload of {len} bytes is shorter than the load-generator prefix",
            plan.id
        )),
        Frame::Ping => pongs += 1,
        Frame::Err(text) => {
            report.error(format!("subscriber {}: server sent -ERR {text}", plan.id))
        }
        Frame::Pong | Frame::Ok | Frame::Info => {}
    });
    report.rx.messages += messages;
    if messages > 0 {
        report
            .read_delay
            .saturating_record_n(read_ns.saturating_sub(received_ns), messages);
    }
    if let Err(e) = parsed {
        conn.done = true;
        report.error(format!(
            "subscriber {} (publisher {}): unparsable data from the server: {e:#}",
            plan.id, plan.publisher
        ));
        return;
    }
    for _ in 0..pongs {
        // A PONG is six bytes; a socket that cannot take them is a server that stopped
        // reading, which its own PING timeout will handle.
        let _ = (&conn.stream).write(wire::PONG);
    }
}

/// Connects, reads INFO, sends CONNECT + SUB + PING and waits for the PONG (blocking, with a
/// timeout); returns the stream and any bytes read past the PONG.
fn open(plan: &SubPlan, shared: &Shared) -> Result<(TcpStream, Vec<u8>)> {
    let stream = TcpStream::connect_timeout(&shared.target, HANDSHAKE_TIMEOUT)
        .with_context(|| format!("connecting to {}", shared.target))?;
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .context("setting a read timeout")?;
    clock::enable_rx_timestamps(stream.as_raw_fd()).context("enabling SO_TIMESTAMPING")?;
    let mut parser = wire::Parser::new(shared.payload_bytes);
    let mut buf = BytesMut::with_capacity(4096);
    let mut stream = stream;
    wire::read_until(&mut stream, &mut parser, &mut buf, Pings::Answer, |op| {
        matches!(op, Incoming::Info)
    })?;
    let hello = wire::hello(
        &format!("fanbench-sub-{}", plan.id),
        Some((&plan.subject, "1")),
    );
    stream
        .write_all(&hello)
        .context("sending CONNECT/SUB/PING")?;
    wire::read_until(&mut stream, &mut parser, &mut buf, Pings::Answer, |op| {
        matches!(op, Incoming::Pong)
    })?;
    stream
        .set_nonblocking(true)
        .context("making the socket non-blocking")?;
    Ok((stream, buf.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reports_what_ran_or_why_not() {
        match probe() {
            Ok(flags) => assert!(!flags.is_empty()),
            Err(e) => eprintln!("io_uring receive path unavailable here: {e:#}"),
        }
    }
}
