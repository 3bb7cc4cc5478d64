//! Record the versions of the runtime crates this binary is built with (from Cargo.lock), so
//! `fanbench runtimes` and the results can report them.
//!
//! A lock file may hold several versions of one crate (glommio brings its own io-uring, for
//! example), so each crate's version is the one *our* package that uses it resolved to: in
//! Cargo.lock a dependency is written `"name version"` exactly when the name is ambiguous.

use std::path::PathBuf;

/// (crate, the workspace package whose dependency on it the row reports).
const CRATES: &[(&str, &str)] = &[
    ("tokio", "fanbench-rt-tokio"),
    ("io-uring", "fanbench-uring"),
    ("glommio", "fanbench-rt-glommio"),
    ("monoio", "fanbench-rt-monoio"),
    ("compio", "fanbench-rt-compio"),
    ("async-nats", "fanbench"),
    ("criterion", "fanbench-micro"),
];

#[derive(serde::Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<Package>,
}

#[derive(serde::Deserialize)]
struct Package {
    name: String,
    version: String,
    #[serde(default)]
    dependencies: Vec<String>,
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let lock_path = manifest.join("..").join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let lock: Lock = std::fs::read_to_string(&lock_path)
        .ok()
        .and_then(|text| toml::from_str(&text).ok())
        .unwrap_or(Lock {
            package: Vec::new(),
        });
    for (name, user) in CRATES {
        let version = resolved_version(&lock, name, user).unwrap_or_else(|| "unknown".into());
        let key = name.replace('-', "_").to_uppercase();
        println!("cargo:rustc-env=FANBENCH_CRATE_VERSION_{key}={version}");
    }
    // The compiler that builds this binary (not whatever rustc is on PATH when it runs).
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=FANBENCH_RUSTC_VERSION={version}");
}

/// The version of `name` that package `user` depends on.
fn resolved_version(lock: &Lock, name: &str, user: &str) -> Option<String> {
    let user = lock.package.iter().find(|p| p.name == user)?;
    let dep = user
        .dependencies
        .iter()
        .find(|d| d.split(' ').next() == Some(name))?;
    let mut parts = dep.split(' ');
    parts.next();
    if let Some(version) = parts.next() {
        return Some(version.to_string());
    }
    // Unambiguous: the lock holds exactly one package of that name.
    lock.package
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.version.clone())
}
