#!/usr/bin/env bash
# What the syscall tracepoints cost the server, and whether the default (split) measurement of
# server CPU is free of it.
#
# For each round, row and workload, runs `fanbench run` once per counter mode, in rotating
# order so that drift of the machine falls on every mode alike:
#   off     no perf event at all: server CPU from /proc (utime + stime, 10 ms ticks)
#   always  tracepoints attached for the whole window: CPU measured with them
#   split   the default: CPU from the uncounted seconds (task-clock), syscalls after the cut
# and prints, per row and workload, the median server CPU per message of each mode with the
# ratios always/off (the tracepoints' cost) and split/off (should be ~1).
#
# Usage: scripts/tracepoint-cost.sh [-r ROUNDS] [-w WORKLOAD[,WORKLOAD...]] [-R ROW[,ROW...]]
#                                   [-o DIR] [-- EXTRA fanbench run ARGS]
# Defaults: 5 rounds, fanout-100, rows tokio,uring, a new directory under /tmp.
set -euo pipefail

rounds=5
workloads=fanout-100
rows=tokio,uring
out=""
while getopts "r:w:R:o:h" opt; do
    case $opt in
        r) rounds=$OPTARG ;;
        w) workloads=$OPTARG ;;
        R) rows=$OPTARG ;;
        o) out=$OPTARG ;;
        h) sed -n '2,16p' "$0"; exit 0 ;;
        *) sed -n '2,16p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ ${1:-} == "--" ]] && shift
extra=("$@")

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${FANBENCH:-$here/target/release/fanbench}
if [[ ! -x $bin ]]; then
    echo "tracepoint-cost: $bin not found; build it with: cargo build --release" >&2
    exit 1
fi
command -v python3 >/dev/null || { echo "tracepoint-cost: python3 is needed for the medians" >&2; exit 1; }
out=${out:-$(mktemp -d /tmp/tracepoint-cost.XXXXXX)}
mkdir -p "$out"
modes=(off always split)

IFS=, read -r -a row_list <<<"$rows"
IFS=, read -r -a workload_list <<<"$workloads"
total=$((rounds * ${#row_list[@]} * ${#workload_list[@]} * ${#modes[@]}))
n=0
for ((round = 0; round < rounds; round++)); do
    for workload in "${workload_list[@]}"; do
        for row in "${row_list[@]}"; do
            for k in 0 1 2; do
                mode=${modes[$(((k + round) % 3))]}
                n=$((n + 1))
                file="$out/$workload.$row.$mode.$round.json"
                echo "[$n/$total] round $round: $row $workload --server-counters $mode" >&2
                if ! "$bin" run --runtime "$row" --workload "$workload" --reps 1 \
                    --server-counters "$mode" --out "$file" "${extra[@]}" >"$file.log" 2>&1; then
                    echo "  failed (see $file.log)" >&2
                fi
            done
        done
    done
done

python3 - "$out" <<'EOF'
import glob, json, os, statistics, sys
out = sys.argv[1]
cpu = {}
for path in glob.glob(os.path.join(out, "*.json")):
    workload, row, mode, _round, _ = os.path.basename(path).split(".")
    try:
        rep = json.load(open(path))["results"][0]["repetitions"][0]
    except (OSError, ValueError, KeyError, IndexError) as err:
        print(f"unreadable {path}: {err}", file=sys.stderr)
        continue
    value = rep.get("server_cpu_us_per_msg")
    if value is None:
        print(f"{path}: no CPU/msg: {rep.get('server_cpu_us_per_msg_null_reason')}", file=sys.stderr)
        continue
    if not rep.get("valid", True):
        print(f"{path}: invalid ({'; '.join(rep.get('invalid_reasons', []))}), kept", file=sys.stderr)
    cpu.setdefault((workload, row), {}).setdefault(mode, []).append(value)
print(f"server CPU per message (us), median of the rounds; results in {out}")
print(f"{'workload':<14} {'row':<8} {'off':>8} {'always':>8} {'split':>8} {'always/off':>11} {'split/off':>10}  n")
for (workload, row), modes in sorted(cpu.items()):
    med = {m: statistics.median(v) for m, v in modes.items()}
    def ratio(a):
        return f"{med[a] / med['off']:.3f}" if a in med and "off" in med else "-"
    cells = " ".join(f"{med[m]:8.3f}" if m in med else f"{'-':>8}" for m in ("off", "always", "split"))
    counts = "/".join(str(len(modes.get(m, []))) for m in ("off", "always", "split"))
    print(f"{workload:<14} {row:<8} {cells} {ratio('always'):>11} {ratio('split'):>10}  {counts}")
EOF
