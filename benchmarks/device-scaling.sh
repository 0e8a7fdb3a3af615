#!/usr/bin/env bash
# Runs on the device machine from the repository root, with .build-device carried
# (benchmarks/device-bundle.sh): weak scaling of the default MLP, batch 128 per worker, in-process
# and 1–16 local workers, 16 workers as plain TCP workers and as host agents, then the stress throughput against raw libzmq and its step latency.
# Each run's report goes to $OUT (the files come back); nothing here needs python or Swift.
#
#   run: bash .build-device/device-scaling.sh      (carry: [".build-device"])
# (it unpacks .build-device/bundle.tar.gz into a temporary directory first)
set -uo pipefail
D=.build-device
B=$(mktemp -d)
tar -xzf "$D/bundle.tar.gz" -C "$B"
cp -r "$D/data" "$B/data"
export LD_LIBRARY_PATH=$B/lib
OUT=${OUT:-/tmp/device-out}
STEPS=${STEPS:-300}
mkdir -p "$OUT"
nproc > "$OUT/nproc"
df -h /dev/shm /tmp >> "$OUT/nproc" 2>&1
for n in 0 1 2 4 8 12 16; do
    shards=$(( n == 0 ? 1 : n )); batch=$(( 128 * shards ))
    dir=$(mktemp -d)
    timeout 120 "$B/chorus" train --data "$B/data" --workers "$n" --shards "$shards" --batch-size "$batch" \
        --max-steps "$STEPS" --no-monitor --quiet --out "$dir" 2> "$OUT/scaling-$n.log"
    echo "workers $n: exit $?" >> "$OUT/summary"
    cp "$dir/report.json" "$OUT/scaling-$n.json" 2>/dev/null
    grep -o '"samples_per_s" *: *[0-9.e+]*' "$dir/report.json" >> "$OUT/summary" 2>/dev/null
    rm -rf "$dir"
done
# The same at 16 workers with the monitor (and its audits) on, and over the socket only.
for variant in monitor no-shm; do
    dir=$(mktemp -d)
    flags=(--quiet); [ "$variant" = no-shm ] && flags+=(--no-shm --no-monitor)
    timeout 120 "$B/chorus" train --data "$B/data" --workers 16 --shards 16 --batch-size 2048 \
        --max-steps "$STEPS" "${flags[@]}" --out "$dir" 2> "$OUT/scaling-16-$variant.log"
    cp "$dir/report.json" "$OUT/scaling-16-$variant.json" 2>/dev/null
    rm -rf "$dir"
done
# Host agents on this one machine: 16 workers as A agents × 16/A local workers over loopback TCP,
# beside 16 plain workers over the same TCP (what several hosts would do, without the network).
for layout in plain-16 agents-2x8 agents-4x4; do
    dir=$(mktemp -d); port=$((5600 + RANDOM % 300)); endpoint="tcp://127.0.0.1:$port"
    case $layout in plain-16) expect=16; per=1 ;; agents-2x8) expect=2; per=8 ;; agents-4x4) expect=4; per=4 ;; esac
    timeout 150 "$B/chorus" coordinator --bind "$endpoint" --expect "$expect" --data "$B/data" --shards 16 --batch-size 2048 \
        --max-steps "$STEPS" --no-monitor --quiet --out "$dir" 2> "$OUT/scaling-16-$layout.log" &
    coordinator=$!
    for ((a = 0; a < expect; a++)); do
        if [ "$per" = 1 ]; then
            timeout 150 "$B/chorus" worker --connect "$endpoint" --data "$B/data" --quiet 2>> "$OUT/scaling-16-$layout.log" &
        else
            timeout 150 "$B/chorus" worker --connect "$endpoint" --data "$B/data" --local-workers "$per" --quiet 2>> "$OUT/scaling-16-$layout.log" &
        fi
    done
    wait "$coordinator"; echo "16 workers, $layout: exit $?" >> "$OUT/summary"
    wait
    cp "$dir/report.json" "$OUT/scaling-16-$layout.json" 2>/dev/null
    rm -rf "$dir"
done
# Stress: throughput vs raw libzmq (same message size, same run), then latency by worker count.
# Shared-memory pool (the same-host default) and --no-shm (the socket, other hosts' path).
for params in 262144 2621440; do
    timeout 120 "$B/chorus" stress --quiet --workers 8 --params "$params" --steps 200 --compare-raw \
        --json "$OUT/stress-throughput-$params.json" > /dev/null 2>> "$OUT/stress.log"
    timeout 120 "$B/chorus" stress --quiet --workers 8 --params "$params" --steps 200 --compare-raw --no-shm \
        --json "$OUT/stress-throughput-$params-socket.json" > /dev/null 2>> "$OUT/stress.log"
done
for workers in 2 4 8 16; do
    timeout 120 "$B/chorus" stress --quiet --workers "$workers" --params 1000000 --steps 60 \
        --json "$OUT/stress-latency-$workers.json" > /dev/null 2>> "$OUT/stress.log"
done
cat "$OUT/summary"
