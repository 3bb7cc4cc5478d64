//! Provenance of a run: host, git checkout, toolchain, run id and timestamps.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::results::schema::{GitInfo, HostInfo, Toolchain};

/// Host description from uname, /proc/cpuinfo and /proc/meminfo.
pub fn host() -> HostInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    HostInfo {
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
        kernel_version: read_trimmed("/proc/sys/kernel/version"),
        cpu: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
        cores: u32::try_from(online_cpus()).unwrap_or(u32::MAX),
        memory_bytes: mem_total_bytes(&meminfo).unwrap_or(0),
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Online CPUs (`_SC_NPROCESSORS_ONLN`).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

/// The first `model name` in /proc/cpuinfo (x86), else `Model`/`CPU part` lines (arm).
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "cpu model", "CPU part"]
        .iter()
        .find_map(|key| {
            cpuinfo.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                (k.trim() == *key).then(|| v.trim().to_string())
            })
        })
}

/// MemTotal from /proc/meminfo, in bytes.
pub fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        kib.checked_mul(1024)
    })
}

/// Commit and dirty flag of the git checkout containing `dir`.
pub fn git(dir: &Path) -> GitInfo {
    let run = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("running git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let commit = run(&["rev-parse", "HEAD"]).map(|s| s.trim().to_string());
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.trim().is_empty());
    match (commit, dirty) {
        (Ok(commit), Ok(dirty)) => GitInfo {
            commit: Some(commit),
            dirty: Some(dirty),
            null_reason: None,
        },
        (commit, dirty) => GitInfo {
            null_reason: commit.as_ref().err().or(dirty.as_ref().err()).cloned(),
            commit: commit.ok(),
            dirty: dirty.ok(),
        },
    }
}

/// The source tree the binary was built from (the workspace root), used for git provenance.
pub fn source_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The rustc that compiled this binary (recorded by build.rs), and fanbench's version.
pub fn toolchain() -> Toolchain {
    let rustc = env!("FANBENCH_RUSTC_VERSION");
    Toolchain {
        rustc: (!rustc.is_empty()).then(|| rustc.to_string()),
        fanbench: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// RFC 3339 UTC timestamp with millisecond precision.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// `YYYYMMDDTHHMMSSZ-<short commit>` (or `-nogit`).
pub fn run_id(start: SystemTime, git: &GitInfo) -> String {
    let stamp: String = humantime::format_rfc3339_seconds(start)
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let short = git
        .commit
        .as_deref()
        .map(|c| c.chars().take(10).collect::<String>())
        .unwrap_or_else(|| "nogit".into());
    let dirty = if git.dirty == Some(true) {
        "-dirty"
    } else {
        ""
    };
    format!("{stamp}-{short}{dirty}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn cpu_model_reads_the_first_model_name() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_model(info).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("nothing here"), None);
    }

    #[test]
    fn mem_total_converts_kib_to_bytes() {
        let info = "MemTotal:       24522248 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total_bytes(info), Some(24_522_248 * 1024));
        assert_eq!(mem_total_bytes("MemFree: 1 kB"), None);
    }

    #[test]
    fn run_id_is_a_compact_utc_stamp_plus_short_commit() {
        let git = GitInfo {
            commit: Some("0123456789abcdef".into()),
            dirty: Some(true),
            null_reason: None,
        };
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(run_id(t, &git), "20231114T221320Z-0123456789-dirty");
    }
}
