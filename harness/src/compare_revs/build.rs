//! The server binary of a git revision: built once in a worktree of its own, cached by
//! commit id, checked for the `serve` options the harness passes.
//!
//! # Layout of the cache (`--cache-dir`, default `$CARGO_TARGET_DIR/compare-revs` or
//! `target/compare-revs`)
//!
//! - `tree/`: one detached `git worktree`, checked out at each revision in turn, so cargo
//!   rebuilds only the crates a revision changed (its fingerprints follow file contents and
//!   times at the same paths).
//! - `target/`: that worktree's `CARGO_TARGET_DIR`.
//! - `bin/<commit>/fanbench`: the built binary, copied out; a later compare of the same
//!   commit uses it without building.
//! - `lock`: held while building, so two compares cannot check out the tree under each other.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// A revision's fanbench binary.
#[derive(Debug, Clone)]
pub struct RevBinary {
    /// The revision as given.
    pub rev: String,
    /// Its full commit id.
    pub commit: String,
    pub path: PathBuf,
    /// The runtime rows its `serve --runtime` knows.
    pub rows: Vec<String>,
    /// The long options its `serve --help` lists.
    pub serve_options: Vec<String>,
}

impl RevBinary {
    pub fn short(&self) -> &str {
        &self.commit[..self.commit.len().min(10)]
    }
}

/// The default cache directory: `$CARGO_TARGET_DIR/compare-revs`, else `<repo>/target/compare-revs`.
pub fn default_cache_dir(repo: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("compare-revs"),
        _ => repo.join("target").join("compare-revs"),
    }
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The top directory of the git checkout around the current directory.
pub fn repo_root() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    git(&cwd, &["rev-parse", "--show-toplevel"])
        .map(PathBuf::from)
        .context("compare-revs runs inside the fanbench git checkout")
}

/// The full commit id of `rev`, or a clear error.
pub fn resolve_commit(repo: &Path, rev: &str) -> anyhow::Result<String> {
    if rev.starts_with('-') {
        bail!("{rev:?} is not a revision");
    }
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .with_context(|| format!("git does not know a commit {rev:?}"))
}

/// The binary of `rev`, from the cache or built now (cargo's output goes to stderr).
pub fn binary_for(repo: &Path, cache: &Path, rev: &str) -> anyhow::Result<RevBinary> {
    let commit = resolve_commit(repo, rev)?;
    let bin = cache.join("bin").join(&commit).join("fanbench");
    if !bin.is_file() {
        std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
        let lock = File::create(cache.join("lock"))
            .with_context(|| format!("creating {}", cache.join("lock").display()))?;
        // SAFETY: flock takes no pointers; the descriptor is open for the duration of the
        // call (`lock` lives to the end of this block, which releases the lock by closing it).
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("locking {}", cache.display()));
        }
        // Another compare may have built it while we waited for the lock.
        if !bin.is_file() {
            build(repo, cache, rev, &commit, &bin)?;
        }
    } else {
        eprintln!(
            "fanbench: {rev} ({}) from the cache: {}",
            &commit[..10],
            bin.display()
        );
    }
    let (rows, serve_options) = check_serve(&bin).with_context(|| {
        format!(
            "the fanbench of {rev} ({}) cannot serve the rows compare-revs measures",
            &commit[..10]
        )
    })?;
    Ok(RevBinary {
        rev: rev.to_string(),
        commit,
        path: bin,
        rows,
        serve_options,
    })
}

fn build(repo: &Path, cache: &Path, rev: &str, commit: &str, bin: &Path) -> anyhow::Result<()> {
    let tree = cache.join("tree");
    if tree.join(".git").exists() {
        git(
            &tree,
            &["checkout", "--quiet", "--detach", "--force", commit],
        )
        .with_context(|| format!("checking out {commit} in {}", tree.display()))?;
    } else {
        // A tree deleted by hand leaves a stale worktree entry behind; prune it first.
        git(repo, &["worktree", "prune"])?;
        let tree_text = tree.display().to_string();
        git(
            repo,
            &["worktree", "add", "--detach", "--force", &tree_text, commit],
        )
        .with_context(|| format!("creating a worktree for {commit} at {tree_text}"))?;
    }
    let target = cache.join("target");
    eprintln!(
        "fanbench: building {rev} ({}) in {} (CARGO_TARGET_DIR={}); this takes minutes the \
         first time, later revisions rebuild only what changed",
        &commit[..10],
        tree.display(),
        target.display()
    );
    let status = Command::new("cargo")
        .args(["build", "--release", "-p", "fanbench", "--locked"])
        .current_dir(&tree)
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!(
            "building {rev} ({}) failed ({status}); cargo's output is above",
            &commit[..10]
        );
    }
    let built = target.join("release").join("fanbench");
    let dir = bin.parent().context("binary path has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial = dir.join("fanbench.part");
    std::fs::copy(&built, &partial)
        .with_context(|| format!("copying {} to {}", built.display(), partial.display()))?;
    std::fs::rename(&partial, bin).with_context(|| format!("moving {}", bin.display()))?;
    Ok(())
}

/// The options `measure` passes to `fanbench serve`.
const SERVE_OPTIONS: &[&str] = &["--runtime", "--addr", "--threads", "--cpus", "--stats-out"];

/// Checks that `bin serve` takes the options the harness always passes; returns the rows it
/// knows and every long option its `serve` lists.
pub fn check_serve(bin: &Path) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let help = Command::new(bin)
        .args(["serve", "--help"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} serve --help", bin.display()))?;
    let text = String::from_utf8_lossy(&help.stdout);
    let missing: Vec<&str> = SERVE_OPTIONS
        .iter()
        .copied()
        .filter(|opt| !text.contains(opt))
        .collect();
    if !help.status.success() || !missing.is_empty() {
        bail!(
            "`{} serve` lacks {} (its --help exited with {})",
            bin.display(),
            missing.join(", "),
            help.status
        );
    }
    let listing = Command::new(bin)
        .args(["runtimes", "--json"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} runtimes --json", bin.display()))?;
    if !listing.status.success() {
        bail!(
            "`{} runtimes --json` exited with {}",
            bin.display(),
            listing.status
        );
    }
    #[derive(serde::Deserialize)]
    struct Listed {
        name: String,
    }
    let rows: Vec<Listed> = serde_json::from_slice(&listing.stdout)
        .with_context(|| format!("parsing `{} runtimes --json`", bin.display()))?;
    let options = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .collect();
    Ok((rows.into_iter().map(|r| r.name).collect(), options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_binary_passes_its_own_serve_check() {
        // The test binary is not fanbench; the built one sits beside the test's deps dir.
        let exe = std::env::current_exe().expect("test exe");
        let Some(bin) = exe
            .parent()
            .and_then(Path::parent)
            .map(|dir| dir.join("fanbench"))
            .filter(|p| p.is_file())
        else {
            eprintln!("skipped: no built fanbench binary beside the tests");
            return;
        };
        let (rows, options) = check_serve(&bin).expect("serve options present");
        assert!(rows.iter().any(|r| r == "tokio"), "{rows:?}");
        assert!(options.iter().any(|o| o == "--coalesce-us"), "{options:?}");
    }

    #[test]
    fn a_binary_without_the_serve_options_is_refused_clearly() {
        let err = check_serve(Path::new("/bin/true")).expect_err("must fail");
        let text = format!("{err:#}");
        assert!(text.contains("lacks --runtime"), "{text}");
    }

    #[test]
    fn an_unknown_revision_is_a_clear_error() {
        let Ok(repo) = repo_root() else {
            eprintln!("skipped: not inside a git checkout");
            return;
        };
        let err = resolve_commit(&repo, "no-such-revision-anywhere").expect_err("unknown");
        assert!(
            format!("{err:#}").contains("does not know a commit"),
            "{err:#}"
        );
        assert!(resolve_commit(&repo, "--help").is_err());
    }
}
