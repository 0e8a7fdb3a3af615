#!/usr/bin/env bash
# Aggregation throughput of `chorus stress` side by side with raw libzmq PUSH/PULL for the same
# message size (one gradient payload) in the same run, then p50/p99 step latency for 2, 4, 8, 16
# workers. Every run also checks every aggregate exactly; a failed check stops the script.
#
#   CHORUS=.build/release/chorus benchmarks/stress-vs-zmq.sh
#   ENDPOINT=tcp://127.0.0.1:* benchmarks/stress-vs-zmq.sh      # loopback TCP instead of ipc
set -euo pipefail
cd "$(dirname "$0")/.."
CHORUS=${CHORUS:-.build/release/chorus}
ENDPOINT=${ENDPOINT:-}
THROUGHPUT_WORKERS=${THROUGHPUT_WORKERS:-4}
LATENCY_PARAMS=${LATENCY_PARAMS:-1000000}
LATENCY_STEPS=${LATENCY_STEPS:-60}
endpoint_flag=()
if [ -n "$ENDPOINT" ]; then endpoint_flag=(--endpoint "$ENDPOINT"); fi
field() { python3 -c "import json,sys; r=json.load(open('$1')); print(eval(sys.argv[1], {}, r))" "$2"; }
json=$(mktemp)
trap 'rm -f "$json"' EXIT

echo "# throughput: chorus stress vs raw libzmq PUSH/PULL, same message size (${ENDPOINT:-ipc})"
echo "# $(nproc) cores; $THROUGHPUT_WORKERS workers; fp32; each chorus run is followed by its own raw measurement"
echo "# shm: gradients through the shared-memory pool (the same-host path); socket: --no-shm (the other-host path)"
printf '%-10s %-9s %-9s %-9s %-7s %-10s %-9s %-7s\n' params message shm_GB/s raw_GB/s ratio sock_GB/s raw_GB/s ratio
for params in 262144 2621440 10000000; do
    steps=$(( 4000000000 / (params * 4 * THROUGHPUT_WORKERS) ))
    (( steps < 10 )) && steps=10
    (( steps > 400 )) && steps=400
    row=()
    for path in shm socket; do
        flags=(); [ "$path" = socket ] && flags=(--no-shm)
        "$CHORUS" stress --quiet --workers "$THROUGHPUT_WORKERS" --params "$params" --steps "$steps" \
            --compare-raw "${endpoint_flag[@]}" "${flags[@]}" --json "$json" >/dev/null
        row+=("$(field "$json" throughput_gbps)" "$(field "$json" raw_zmq_gbps)" "$(field "$json" ratio_to_raw)")
    done
    printf '%-10s %-9s %-9.2f %-9.2f %-7.2f %-10.2f %-9.2f %-7.2f\n' "$params" "$(field "$json" 'f"{params*4/1048576:.1f}MiB"')" "${row[@]}"
done

echo
echo "# step latency: $LATENCY_PARAMS params (fp32), $LATENCY_STEPS steps, shards = workers"
printf '%-8s %-10s %-10s %-10s %-10s %-12s %-10s\n' workers p50_ms p90_ms p99_ms max_ms GB/s peak_RSS_MiB
for workers in 2 4 8 16; do
    "$CHORUS" stress --quiet --workers "$workers" --params "$LATENCY_PARAMS" --steps "$LATENCY_STEPS" \
        "${endpoint_flag[@]}" --json "$json" >/dev/null
    printf '%-8s %-10.2f %-10.2f %-10.2f %-10.2f %-10.2f %-12.1f\n' "$workers" \
        "$(field "$json" 'step_latency_ms["p50"]')" "$(field "$json" 'step_latency_ms["p90"]')" \
        "$(field "$json" 'step_latency_ms["p99"]')" "$(field "$json" 'step_latency_ms["max"]')" \
        "$(field "$json" throughput_gbps)" "$(field "$json" 'peak_rss_bytes/1048576')"
done
