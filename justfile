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

# The load generator's own ceiling against a minimal fan-out server, e.g. `just calibrate --payloads 128`
calibrate *ARGS:
    cargo build --release -p fanbench
    ./target/release/fanbench calibrate {{ARGS}}

# Network-namespace lab for load from several hosts on one machine (root): `just netns-lab up`, `just netns-lab down`
netns-lab ACTION="status":
    bash scripts/netns-lab.sh {{ACTION}}

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

# --- report / compare (plots + compare) ---

# Charts (SVG) + index.html for a results.json, sweep.json or run directory (default: newest run in results/)
report RESULTS="" *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    target='{{RESULTS}}'
    if [ -z "$target" ]; then
        target="$(ls -td results/*/ 2>/dev/null | head -n 1)"
        [ -n "$target" ] || { echo "no run in results/; give a results.json" >&2; exit 1; }
    fi
    cargo build --release -p fanbench
    ./target/release/fanbench report "$target" {{ARGS}}

# REV's server against the working tree's (or `just compare BASE NEW`), measured in alternation by today's harness; --markdown for a PR comment (10 to 11 min on 2 cores, plus building REV once)
compare REV *ARGS:
    cargo run --release -p fanbench -- compare-revs {{REV}} {{ARGS}}
