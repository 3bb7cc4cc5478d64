//! CPU lists (`0-3,6`) and pinning threads to them.

use anyhow::{bail, Context, Result};

/// Parse a Linux-style CPU list such as `0`, `0-3` or `0,2-3`.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim) {
        if part.is_empty() {
            bail!("bad CPU list {list:?}: empty element");
        }
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let lo: usize = lo.trim().parse().with_context(|| {
            format!("bad CPU list {list:?}: {part:?} is not a CPU number or range")
        })?;
        let hi: usize = hi.trim().parse().with_context(|| {
            format!("bad CPU list {list:?}: {part:?} is not a CPU number or range")
        })?;
        if lo > hi {
            bail!("bad CPU list {list:?}: range {part:?} runs backwards");
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    let online = online_cpus();
    if let Some(bad) = cpus.iter().find(|&&c| c >= online) {
        bail!(
            "bad CPU list {list:?}: CPU {bad} does not exist (this machine has CPUs 0-{})",
            online - 1
        );
    }
    Ok(cpus)
}

/// Number of CPUs configured on this machine.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

/// The `cpu_set_t` holding `cpus`; an error for a CPU beyond what the set can hold.
pub fn cpu_set(cpus: &[usize]) -> Result<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is a plain bit set for which all-zero is a valid (empty) value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &cpu in cpus {
        if cpu >= max {
            bail!("CPU {cpu} is beyond what a cpu_set_t can hold ({max})");
        }
        // SAFETY: `cpu` is below the set's size in bits (checked above), so CPU_SET writes a
        // bit inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    Ok(set)
}

/// Confine the calling thread to `set`. Only the system call: no allocation, so it is
/// async-signal-safe and may run between fork and exec.
pub fn set_current_thread_affinity(set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 means the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Pin the calling thread to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> Result<()> {
    let set = cpu_set(cpus)?;
    set_current_thread_affinity(&set).with_context(|| format!("pinning thread to CPUs {cpus:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_cpus_and_ranges() {
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        if online_cpus() >= 2 {
            assert_eq!(parse_cpu_list("1,0-1").unwrap(), vec![0, 1]);
        }
    }

    #[test]
    fn rejects_garbage_backwards_ranges_and_missing_cpus() {
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("1-0").is_err());
        assert!(parse_cpu_list("0,,1").is_err());
        assert!(parse_cpu_list("100000").is_err());
    }
}
