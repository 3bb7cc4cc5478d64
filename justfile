# fanbench: thin aliases over the fanbench CLI. `just --list` shows them.

# --- bench-all / bench (run + bench-all harness) ---

# Every available runtime row x every default workload into results/<run-id>/ (try: just bench-all --quick)
bench-all *ARGS:
    cargo build --release -p fanbench
    ./target/release/fanbench bench-all {{ARGS}}

# One workload on one runtime row, e.g. `just bench tokio-mt fanout-100 --reps 5`
bench RUNTIME WORKLOAD="seed-5x5" *ARGS:
    cargo build --release -p fanbench
    ./target/release/fanbench run --runtime {{RUNTIME}} --workload {{WORKLOAD}} {{ARGS}}

# --- serve / test (lead) ---

# Serve the broker on one runtime row, e.g. `just serve uring --threads 2`
serve RUNTIME *ARGS:
    cargo run --release -p fanbench -- serve --runtime {{RUNTIME}} {{ARGS}}

# The runtime rows built in, with crate versions
runtimes:
    cargo run --release -p fanbench -- runtimes

# The README's test command
test *ARGS:
    cargo test --release --workspace {{ARGS}}

# What CI runs: fmt, clippy, tests, bench-all --quick
ci:
    bash .ci/run
