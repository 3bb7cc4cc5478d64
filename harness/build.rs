//! Record the versions of the runtime crates this binary is built with (from Cargo.lock), so
//! `fanbench runtimes` and the results can report them.

use std::path::PathBuf;

const CRATES: &[&str] = &[
    "tokio",
    "io-uring",
    "glommio",
    "monoio",
    "compio",
    "async-nats",
];

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let lock = manifest.join("..").join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    for name in CRATES {
        let version = find_version(&text, name).unwrap_or_else(|| "not built".to_string());
        let key = name.replace('-', "_").to_uppercase();
        println!("cargo:rustc-env=FANBENCH_CRATE_VERSION_{key}={version}");
    }
}

/// The version of the first `[[package]]` named `name` in a Cargo.lock.
fn find_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let next = lines.next()?;
            return next
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')
                .map(str::to_string);
        }
    }
    None
}
