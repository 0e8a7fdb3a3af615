#!/usr/bin/env bash
# Weak scaling of distributed training: the default MLP with batch 128 per worker (global
# batch 128·N, N shards), in-process and with 1, 2, 4, … local worker processes, side by side
# in one run. Prints samples/s, efficiency against 1 worker, bytes per step over the socket and
# through shared memory, and where a step's time goes at the coordinator (ms per step):
# compute = mean worker compute per shard; wait = waiting on workers and the wire; decode =
# receiving/copying/checking gradients; agg = summing in shard order; update = averaging,
# clipping and the optimizer.
# Usage: benchmarks/scaling.sh [MAX_WORKERS] (default 4); STEPS=300 by default; EXTRA="--no-shm"
# passes flags to every run.
set -euo pipefail
cd "$(dirname "$0")/.."
CHORUS=${CHORUS:-.build/release/chorus}
STEPS=${STEPS:-300}
MAX=${1:-4}
EXTRA=${EXTRA:-}
printf "%-11s %10s %6s %9s %9s %8s %7s %7s %6s %7s\n" workers samples/s eff sockMB/st shmMB/st compute wait decode agg update
base=""
for n in 0 $(seq 1 "$MAX" | awk '$1==1||$1==2||$1==4||$1==8||$1==12||$1==16'); do
    out=$(mktemp -d)
    batch=$((128 * (n == 0 ? 1 : n)))
    # shellcheck disable=SC2086
    "$CHORUS" train --workers "$n" --shards "$((n == 0 ? 1 : n))" --batch-size "$batch" --max-steps "$STEPS" --out "$out" --quiet --no-monitor $EXTRA 2>/dev/null
    python3 - "$out" "$n" "${base:-0}" <<'PY' > "$out/line"
import json, sys
report = json.load(open(sys.argv[1] + "/report.json")); n = int(sys.argv[2]); base = float(sys.argv[3])
rate = report["samples_per_s"]
cluster = report.get("cluster", {})
steps = max(report["steps"], 1)
wire = (cluster.get("bytes_sent", 0) + cluster.get("bytes_received", 0)) / steps / 1e6
shm = (cluster.get("shared_memory_bytes", 0) + cluster.get("shared_memory_gradient_bytes", 0)) / steps / 1e6
t = report.get("timing_ms", {})
eff = "" if n <= 1 or base == 0 else f"{100 * rate / (n * base):.0f}%"
def ms(key): return f"{t[key]:.2f}" if key in t else "-"
print(f"{('in-process' if n == 0 else n):<11} {rate:10.0f} {eff:>6} {wire:9.2f} {shm:9.2f} {ms('worker_compute_per_shard'):>8} "
      f"{ms('waiting_on_workers_and_wire'):>7} {ms('gradient_decode'):>7} {ms('aggregation'):>6} {report.get('update_ms_per_step', 0):7.2f}")
print(rate, file=open(sys.argv[1] + "/rate", "w"))
PY
    cat "$out/line"
    [ "$n" = 1 ] && base=$(cat "$out/rate")
    rm -rf "$out"
done
