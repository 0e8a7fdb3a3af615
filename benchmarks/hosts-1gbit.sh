#!/usr/bin/env bash
# Plain workers vs host agents vs chunk owners vs PyTorch DDP across test hosts with rate-limited links: a
# coordinator host and HOSTS worker hosts (cluster/testhosts.sh, needs root), every link limited
# to RATE (tc tbf, both directions; this kernel has no netem). Each worker host runs K workers:
#   plain   K `chorus worker` processes per host, each its own connection (S = HOSTS·K shards)
#   agents  one `chorus worker --local-workers K` per host (same S, same bits)
#   owners  the same agents with --peer-bind and the coordinator with --chunk-owners: pieces
#           of the node sums go to the chunks' owners peer to peer (docs/coordination.md)
#   ddp     PyTorch DDP, gloo, CPU, K ranks per worker host, same MLP, batch 128 per rank,
#           Adam 1e-3, clip 1.0 (benchmarks/ddp_mlp.py; skipped when VENV has no torch)
# Default MLP, batch 128 per worker, monitor off, ROUNDS alternating rounds. Prints samples/s,
# the ratios, and where a Chorus step goes (the coordinator's busiest host link in MB/step, and
# ms per step waiting on workers and the wire).
#   benchmarks/hosts-1gbit.sh [HOSTS] (default 2); K=2, RATE=1gbit, STEPS=300, ROUNDS=2,
#   VENV=/tmp/torchenv (python -m venv $VENV && $VENV/bin/pip install torch numpy),
#   COLOCATE=1: the coordinator runs on the first worker host (as torchrun's rank 0 does), so
#   that host's workers reach it without crossing a link and only the others' traffic does
set -euo pipefail
cd "$(dirname "$0")/.."
CHORUS=$(realpath "${CHORUS:-.build/release/chorus}")
HOSTS=${1:-2}
K=${K:-2}
RATE=${RATE:-1gbit}
STEPS=${STEPS:-300}
ROUNDS=${ROUNDS:-2}
VENV=${VENV:-/tmp/torchenv}
hosts=cluster/testhosts.sh
trap 'bash $hosts down >/dev/null 2>&1 || true' EXIT
bash $hosts up $((HOSTS + 1)) >/dev/null
for ((h = 0; h <= HOSTS; h++)); do bash $hosts rate "$h" "$RATE"; done
coordinator_host=0
[ "${COLOCATE:-0}" = 1 ] && coordinator_host=1
endpoint="tcp://$(bash $hosts addr $coordinator_host):5555"
workers=$((HOSTS * K))
run=(--shards "$workers" --batch-size $((128 * workers)) --max-steps "$STEPS" --seed 9 --quiet --no-monitor)
have_torch=false
[ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch" 2>/dev/null && have_torch=true

chorus_round() {  # plain|agents|owners → prints "samples/s hash maxhostMB wait_ms"
    local layout=$1 out; out=$(mktemp -d)
    local expect=$workers owners=(); [ "$layout" != plain ] && expect=$HOSTS
    [ "$layout" = owners ] && owners=(--chunk-owners)
    bash $hosts exec $coordinator_host "$CHORUS" coordinator --bind "$endpoint" --expect "$expect" --out "$out" "${owners[@]}" "${run[@]}" 2>"$out/coordinator.err" &
    local coordinator=$! pids=()
    for ((h = 1; h <= HOSTS; h++)); do
        if [ "$layout" = owners ]; then
            bash $hosts exec "$h" "$CHORUS" worker --connect "$endpoint" --local-workers "$K" --peer-bind "tcp://$(bash $hosts addr "$h"):6000" --quiet 2>/dev/null & pids+=($!)
        elif [ "$layout" = agents ]; then
            bash $hosts exec "$h" "$CHORUS" worker --connect "$endpoint" --local-workers "$K" --quiet 2>/dev/null & pids+=($!)
        else
            for ((k = 0; k < K; k++)); do
                bash $hosts exec "$h" "$CHORUS" worker --connect "$endpoint" --quiet 2>/dev/null & pids+=($!)
            done
        fi
    done
    wait "$coordinator" || { echo "the $layout coordinator failed:" >&2; cat "$out/coordinator.err" >&2; exit 1; }
    for p in "${pids[@]}"; do wait "$p" || true; done
    python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/report.json")); c = r.get("cluster", {})
print(f'{r["samples_per_s"]:.0f} {r["params_sha256"][:12]} {c.get("max_host_bytes_per_step", 0) / 1e6:.2f} {r.get("timing_ms", {}).get("waiting_on_workers_and_wire", 0):.2f}')
PY
}

ddp_round() {  # prints samples/s
    local master out pids=()
    master=$(bash $hosts addr 1); out=$(mktemp)
    for ((r = 0; r < workers; r++)); do
        # gloo finds its address through the host name, the same on every test host: name the link.
        local h=$((1 + r / K))
        timeout 600 bash $hosts exec "$h" env GLOO_SOCKET_IFNAME="ch$h" "$VENV/bin/python" benchmarks/ddp_mlp.py "$r" "$workers" "$master" 29500 "$STEPS" \
            >>"$out" 2>/dev/null & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    grep -o 'samples_per_s [0-9]*' "$out" | cut -d' ' -f2
}

where=$([ $coordinator_host = 0 ] && echo "+ a coordinator host" || echo "with the coordinator on worker host 1")
echo "# $HOSTS worker hosts × $K workers $where, links $RATE (tc tbf), $STEPS steps, batch 128 per worker, $(nproc) cores in all"
printf "%-6s %-8s %10s %12s %14s %8s\n" round layout samples/s params_sha256 max_host_MB/st wait_ms
for ((round = 1; round <= ROUNDS; round++)); do
    read -r plain plain_hash plain_mb plain_wait < <(chorus_round plain)
    printf "%-6s %-8s %10s %12s %14s %8s\n" "$round" plain "$plain" "$plain_hash" "$plain_mb" "$plain_wait"
    read -r agents agents_hash agents_mb agents_wait < <(chorus_round agents)
    printf "%-6s %-8s %10s %12s %14s %8s\n" "$round" agents "$agents" "$agents_hash" "$agents_mb" "$agents_wait"
    read -r owners owners_hash owners_mb owners_wait < <(chorus_round owners)
    printf "%-6s %-8s %10s %12s %14s %8s\n" "$round" owners "$owners" "$owners_hash" "$owners_mb" "$owners_wait"
    ddp="-"
    if $have_torch; then ddp=$(ddp_round); printf "%-6s %-8s %10s\n" "$round" ddp "$ddp"; fi
    python3 -c "
import sys; p, a, o, d = float('$plain'), float('$agents'), float('$owners'), '$ddp'
line = f'round $round: agents/plain {a / p:.2f}x, owners/plain {o / p:.2f}x'
if d not in ('-', ''): line += f', owners/ddp {o / float(d):.2f}x, agents/ddp {a / float(d):.2f}x, plain/ddp {p / float(d):.2f}x'
same = '$plain_hash' == '$agents_hash' == '$owners_hash'
print(line + ('' if same else '  (HASHES DIFFER: $plain_hash, $agents_hash, $owners_hash)'))"
done
