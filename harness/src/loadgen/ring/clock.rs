//! Kernel receive timestamps: asking for them, reading them from control data, and putting
//! them on the clock the payloads carry.
//!
//! The kernel stamps each incoming packet with CLOCK_REALTIME when it reaches the network
//! stack (`SOF_TIMESTAMPING_RX_SOFTWARE`); for TCP, a receive reports the stamp of the last
//! packet it read from (`SCM_TIMESTAMPING`, three timespecs, the software one first). Payloads
//! carry CLOCK_MONOTONIC, so a stamp is converted with the offset between the two clocks,
//! sampled by reading CLOCK_REALTIME between two CLOCK_MONOTONIC reads (error: half the time
//! between them, well under a microsecond) and sampled again every [`OFFSET_REFRESH_NS`] so
//! that a slewing CLOCK_REALTIME (NTP) cannot drift it. A step of the realtime clock during a
//! run would be visible as one refresh period of wrong stamps; the harness does not set it.

use std::io;
use std::os::fd::RawFd;

use crate::loadgen::os;

/// `SO_TIMESTAMPING` (the "old" one with `struct timespec`, whose layout is the same on every
/// 64-bit Linux target); the libc crate does not export it for Linux.
const SO_TIMESTAMPING: libc::c_int = 37;
/// How often the realtime - monotonic offset is sampled again.
pub const OFFSET_REFRESH_NS: u64 = 100_000_000;
/// Control-data space for one `SCM_TIMESTAMPING` message (`CMSG_SPACE(3 * 16)`).
pub const CONTROL_LEN: usize = 64;

/// Asks the kernel to stamp received data on `fd` and report the stamps.
pub fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
    let flags: libc::c_uint = libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
    // SAFETY: `flags` is a live c_uint and its size is passed; the fd is the caller's socket.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_TIMESTAMPING,
            (&flags as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The software receive stamp (CLOCK_REALTIME ns) in a receive's control data, if any.
pub fn rx_software_stamp(control: &[u8]) -> Option<u64> {
    const HDR: usize = std::mem::size_of::<libc::cmsghdr>();
    let mut at = 0;
    while at + HDR <= control.len() {
        // SAFETY: HDR bytes are in bounds; read_unaligned copes with any alignment.
        let hdr: libc::cmsghdr = unsafe {
            control
                .as_ptr()
                .add(at)
                .cast::<libc::cmsghdr>()
                .read_unaligned()
        };
        let len = hdr.cmsg_len;
        if len < HDR || at + len > control.len() {
            return None;
        }
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == SO_TIMESTAMPING && len >= HDR + 16
        {
            let data = &control[at + HDR..at + HDR + 16];
            let sec = i64::from_ne_bytes(data[0..8].try_into().ok()?);
            let nsec = i64::from_ne_bytes(data[8..16].try_into().ok()?);
            if sec <= 0 {
                return None;
            }
            return Some(sec as u64 * 1_000_000_000 + nsec as u64);
        }
        at += len.next_multiple_of(std::mem::size_of::<usize>());
    }
    None
}

fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Converts CLOCK_REALTIME stamps to CLOCK_MONOTONIC.
#[derive(Debug, Clone, Copy)]
pub struct RealtimeToMonotonic {
    /// realtime - monotonic, ns.
    offset: i128,
    sampled_at_ns: u64,
}

impl RealtimeToMonotonic {
    pub fn sample() -> Self {
        let before = os::now_ns();
        let real = realtime_ns();
        let after = os::now_ns();
        Self {
            offset: i128::from(real) - i128::from(before / 2 + after / 2),
            sampled_at_ns: after,
        }
    }

    /// Samples the offset again when the last sample is older than [`OFFSET_REFRESH_NS`].
    pub fn refresh(&mut self, now_ns: u64) {
        if now_ns.saturating_sub(self.sampled_at_ns) >= OFFSET_REFRESH_NS {
            *self = Self::sample();
        }
    }

    pub fn to_monotonic(self, realtime_ns: u64) -> u64 {
        u64::try_from(i128::from(realtime_ns) - self.offset).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_maps_the_realtime_clock_onto_the_monotonic_clock() {
        let conv = RealtimeToMonotonic::sample();
        let mono = os::now_ns();
        let mapped = conv.to_monotonic(realtime_ns());
        assert!(mapped.abs_diff(mono) < 1_000_000, "{mapped} vs {mono}");
    }

    #[test]
    fn control_data_without_a_timestamp_gives_none() {
        assert_eq!(rx_software_stamp(&[]), None);
        assert_eq!(rx_software_stamp(&[0u8; 8]), None);
        // A cmsghdr claiming more bytes than there are.
        let mut bogus = vec![0u8; CONTROL_LEN];
        bogus[..8].copy_from_slice(&(1000usize).to_ne_bytes());
        assert_eq!(rx_software_stamp(&bogus), None);
    }

    #[test]
    fn a_timestamping_message_yields_its_software_stamp() {
        let mut control = vec![0u8; CONTROL_LEN];
        let hdr = std::mem::size_of::<libc::cmsghdr>();
        control[..8].copy_from_slice(&((hdr + 48) as usize).to_ne_bytes());
        control[8..12].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        control[12..16].copy_from_slice(&SO_TIMESTAMPING.to_ne_bytes());
        control[hdr..hdr + 8].copy_from_slice(&7i64.to_ne_bytes());
        control[hdr + 8..hdr + 16].copy_from_slice(&5i64.to_ne_bytes());
        assert_eq!(rx_software_stamp(&control), Some(7_000_000_005));
    }
}
