#!/usr/bin/env bash
# Weak scaling of distributed training: the default MLP with batch 128 per worker (global
# batch 128·N, N shards), in-process and with 1, 2, 4, … local worker processes, side by side
# in one run. Prints samples/s, efficiency against 1 worker, and bytes on the wire per step.
# Usage: benchmarks/scaling.sh [MAX_WORKERS] (default 4); STEPS=300 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
CHORUS=${CHORUS:-.build/release/chorus}
STEPS=${STEPS:-300}
MAX=${1:-4}
printf "%-12s %12s %12s %16s\n" "workers" "samples/s" "efficiency" "wire MB/step"
base=""
for n in 0 $(seq 1 "$MAX" | awk '$1==1||$1==2||$1==4||$1==8||$1==16'); do
    out=$(mktemp -d)
    batch=$((128 * (n == 0 ? 1 : n)))
    "$CHORUS" train --workers "$n" --shards "$((n == 0 ? 1 : n))" --batch-size "$batch" --max-steps "$STEPS" --out "$out" --quiet --no-monitor 2>/dev/null
    python3 - "$out" "$n" "${base:-0}" <<'PY' > "$out/line"
import json, sys
report = json.load(open(sys.argv[1] + "/report.json")); n = int(sys.argv[2]); base = float(sys.argv[3])
rate = report["samples_per_s"]
cluster = report.get("cluster", {})
wire = (cluster.get("bytes_sent", 0) + cluster.get("bytes_received", 0)) / max(report["steps"], 1) / 1e6
eff = "" if n <= 1 or base == 0 else f"{100 * rate / (n * base):.0f}%"
print(f"{('in-process' if n == 0 else n):<12} {rate:12.0f} {eff:>12} {wire:16.2f}")
print(rate, file=open(sys.argv[1] + "/rate", "w"))
PY
    cat "$out/line"
    [ "$n" = 1 ] && base=$(cat "$out/rate")
    rm -rf "$out"
done
