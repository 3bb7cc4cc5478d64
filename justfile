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
