//! Building the ring: the setup flags we ask for, and the fallbacks when the kernel refuses.

use std::io;

use io_uring::{opcode, IoUring, Probe};

use crate::config::{SubmitPolicy, UringConfig};
use crate::stats::RingFlags;

/// The kernel's limit on submission queue entries.
pub(crate) const MAX_RING_ENTRIES: u32 = 32768;

/// Check the sizes before the kernel sees them, for a clear message.
pub(crate) fn validate(config: &UringConfig) -> io::Result<()> {
    let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    if config.ring_entries == 0 || config.ring_entries > MAX_RING_ENTRIES {
        return invalid(format!(
            "io_uring ring size must be between 1 and {MAX_RING_ENTRIES} entries, got {}",
            config.ring_entries
        ));
    }
    if config.cq_entries != 0 && config.cq_entries < config.ring_entries {
        return invalid(format!(
            "io_uring completion queue ({}) must be at least as large as the submission queue ({})",
            config.cq_entries, config.ring_entries
        ));
    }
    if config.sqpoll_cpu.is_some() && config.policy != SubmitPolicy::Sqpoll {
        return invalid("io_uring sqpoll_cpu is set but the policy is not sqpoll".into());
    }
    if config.tick_budget == 0 {
        return invalid("io_uring tick budget must be at least 1 task per tick".into());
    }
    if config.batch_threshold == 0 {
        return invalid("io_uring batch threshold must be at least 1 SQE".into());
    }
    Ok(())
}

/// Flag sets to try, most wanted first. `DEFER_TASKRUN` needs `SINGLE_ISSUER` and excludes
/// SQPOLL; `TASKRUN_FLAG` needs `COOP_TASKRUN` or `DEFER_TASKRUN`.
fn candidates(config: &UringConfig) -> Vec<RingFlags> {
    let sqpoll = config.policy == SubmitPolicy::Sqpoll;
    let none = RingFlags {
        sqpoll,
        ..RingFlags::default()
    };
    if !config.setup_flags {
        return vec![none];
    }
    let coop = RingFlags {
        coop_taskrun: true,
        taskrun_flag: true,
        ..none
    };
    let single_coop = RingFlags {
        single_issuer: true,
        ..coop
    };
    if sqpoll {
        vec![single_coop, coop, none]
    } else {
        let defer = RingFlags {
            single_issuer: true,
            defer_taskrun: true,
            taskrun_flag: true,
            ..none
        };
        vec![defer, single_coop, coop, none]
    }
}

/// Create the ring with the best flag set the kernel accepts.
pub(crate) fn build_ring(config: &UringConfig) -> io::Result<(IoUring, RingFlags)> {
    let mut last_err = None;
    for flags in candidates(config) {
        let mut builder = IoUring::builder();
        if flags.sqpoll {
            builder.setup_sqpoll(config.sqpoll_idle_ms);
            if let Some(cpu) = config.sqpoll_cpu {
                builder.setup_sqpoll_cpu(cpu);
            }
        }
        if flags.single_issuer {
            builder.setup_single_issuer();
        }
        if flags.defer_taskrun {
            builder.setup_defer_taskrun();
        }
        if flags.coop_taskrun {
            builder.setup_coop_taskrun();
        }
        if flags.taskrun_flag {
            builder.setup_taskrun_flag();
        }
        if config.cq_entries != 0 {
            builder.setup_cqsize(config.cq_entries);
        }
        match builder.build(config.ring_entries) {
            Ok(ring) => return Ok((ring, flags)),
            // EINVAL: a flag this kernel does not know (or a combination it refuses).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = Some(e),
            Err(e) => return Err(unavailable(e)),
        }
    }
    Err(unavailable(last_err.unwrap_or_else(|| {
        io::Error::other("no io_uring setup flag combination was accepted")
    })))
}

fn unavailable(e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("io_uring unavailable: io_uring_setup failed: {e}"),
    )
}

/// Refuse to start on a kernel that lacks an opcode the runtime uses.
pub(crate) fn check_opcodes(ring: &IoUring) -> io::Result<()> {
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| io::Error::new(e.kind(), format!("io_uring opcode probe failed: {e}")))?;
    let needed = [
        (opcode::Read::CODE, "READ"),
        (opcode::Recv::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::SendMsg::CODE, "SENDMSG"),
        (opcode::Accept::CODE, "ACCEPT"),
        (opcode::Connect::CODE, "CONNECT"),
        (opcode::Close::CODE, "CLOSE"),
        (opcode::Timeout::CODE, "TIMEOUT"),
        (opcode::TimeoutRemove::CODE, "TIMEOUT_REMOVE"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    ];
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "io_uring unavailable: the kernel lacks opcodes {}",
                missing.join(", ")
            ),
        ))
    }
}
