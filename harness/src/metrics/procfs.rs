//! Readers for /proc/<pid>: CPU times (all threads), peak RSS, thread ids.

use anyhow::{anyhow, Context};

/// CPU time of a whole process (every thread, live or exited), in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcCpu {
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub num_threads: u64,
}

/// Parses /proc/<pid>/stat. The command name (field 2) is in parentheses and may itself hold
/// spaces or parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> anyhow::Result<ProcCpu> {
    let close = text
        .rfind(')')
        .ok_or_else(|| anyhow!("no ')' after the command name in /proc stat line"))?;
    // Fields 3.. (state, ppid, ...): field n is at index n - 3.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        let raw = fields
            .get(n - 3)
            .ok_or_else(|| anyhow!("/proc stat line has no field {n}"))?;
        raw.parse()
            .with_context(|| format!("/proc stat field {n} is not a number: {raw:?}"))
    };
    Ok(ProcCpu {
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        num_threads: field(20)?,
    })
}

/// Reads /proc/<pid>/stat.
pub fn read_cpu(pid: u32) -> anyhow::Result<ProcCpu> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat(&text).with_context(|| format!("parsing {path}"))
}

/// Clock ticks per second (`_SC_CLK_TCK`).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

/// A `kB` field of /proc/<pid>/status (`VmHWM`, `VmRSS`, ...), in bytes.
pub fn parse_status_kib(text: &str, key: &str) -> anyhow::Result<u64> {
    let line = text
        .lines()
        .find(|l| l.split(':').next() == Some(key))
        .ok_or_else(|| anyhow!("no {key} line in /proc status"))?;
    let value = line[key.len() + 1..].trim();
    let kib: u64 = value
        .strip_suffix("kB")
        .unwrap_or(value)
        .trim()
        .parse()
        .with_context(|| format!("{key} is not a number of kB: {value:?}"))?;
    kib.checked_mul(1024)
        .ok_or_else(|| anyhow!("{key} overflows: {kib} kB"))
}

/// Peak resident set size (VmHWM) of the process, in bytes.
pub fn read_peak_rss(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_kib(&text, "VmHWM").with_context(|| format!("parsing {path}"))
}

/// Resets VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux >= 4.0), so the
/// next [`read_peak_rss`] reports the peak since now.
pub fn reset_peak_rss(pid: u32) -> anyhow::Result<()> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").with_context(|| format!("writing 5 to {path}"))
}

/// Thread ids of the process (/proc/<pid>/task), sorted.
pub fn thread_ids(pid: u32) -> anyhow::Result<Vec<u32>> {
    let path = format!("/proc/{pid}/task");
    let mut tids = Vec::new();
    for entry in std::fs::read_dir(&path).with_context(|| format!("listing {path}"))? {
        let entry = entry.with_context(|| format!("listing {path}"))?;
        if let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            tids.push(tid);
        }
    }
    tids.sort_unstable();
    Ok(tids)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line, with a command name holding a space and a ')'.
    const STAT: &str = "4242 (tokio rt) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                        157 42 0 0 20 0 3 0 123456 1000000 500 18446744073709551615 \
                        1 1 0 0 0 0 0 4096 1260 0 0 0 17 0 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_from_the_last_paren() {
        let cpu = parse_stat(STAT).expect("parses");
        assert_eq!(cpu.utime_ticks, 157);
        assert_eq!(cpu.stime_ticks, 42);
        assert_eq!(cpu.num_threads, 3);
    }

    #[test]
    fn truncated_stat_is_an_error_not_a_panic() {
        assert!(parse_stat("1 (x) S 1 2 3").is_err());
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn status_kib_fields_convert_to_bytes() {
        let status =
            "Name:\tfanbench\nVmPeak:\t  200000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM").expect("hwm"), 5120 * 1024);
        assert_eq!(parse_status_kib(status, "VmRSS").expect("rss"), 4096 * 1024);
        assert!(parse_status_kib(status, "VmSwap").is_err());
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        let cpu = read_cpu(pid).expect("own stat");
        assert!(cpu.num_threads >= 1);
        assert!(read_peak_rss(pid).expect("own VmHWM") > 0);
        assert!(thread_ids(pid).expect("own tasks").contains(&pid));
    }
}
