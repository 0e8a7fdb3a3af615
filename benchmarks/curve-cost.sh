#!/usr/bin/env bash
# What encryption costs, side by side on test hosts (cluster/testhosts.sh, needs root): a
# coordinator host and HOSTS worker hosts with K `chorus worker` processes each, links unlimited
# (or RATE), default MLP, batch 128 per worker, monitor off. Each round runs, alternating:
#   plain   no encryption
#   curve   --curve-keys --curve-bulk off: every byte through libzmq's CURVE (XSalsa20-Poly1305)
#   sealed  --curve-keys (the default): CURVE for the handshake, AES-256-GCM for the messages
# and prints samples/s, params_sha256 (the same in all three) and the ratios to plain.
#   benchmarks/curve-cost.sh [HOSTS] (default 2); K=1, STEPS=400, ROUNDS=3, RATE=off, SHARDS=HOSTS·K
set -euo pipefail
cd "$(dirname "$0")/.."
CHORUS=$(realpath "${CHORUS:-.build/release/chorus}")
HOSTS=${1:-2}
K=${K:-1}
STEPS=${STEPS:-400}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-off}
workers=$((HOSTS * K))
SHARDS=${SHARDS:-$workers}
hosts=cluster/testhosts.sh
work=$(mktemp -d)
trap 'bash $hosts down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
bash $hosts up $((HOSTS + 1)) >/dev/null
for ((h = 0; h <= HOSTS; h++)); do bash $hosts rate "$h" "$RATE"; done
"$CHORUS" keygen --out "$work/cluster.key" >"$work/public"
public=$(sed 's/^public: //' "$work/public")
endpoint="tcp://$(bash $hosts addr 0):5555"
run=(--shards "$SHARDS" --batch-size $((128 * workers)) --max-steps "$STEPS" --seed 9 --quiet --no-monitor --audit-every 0)

round() {  # plain|curve|sealed → prints "samples/s hash"
    local mode=$1 out; out=$(mktemp -d -p "$work")
    local server=() client=()
    case $mode in
        curve) server=(--curve-keys "$work/cluster.key" --curve-bulk off); client=(--curve-server-key="$public") ;;
        sealed) server=(--curve-keys "$work/cluster.key"); client=(--curve-server-key="$public") ;;
    esac
    bash $hosts exec 0 "$CHORUS" coordinator --bind "$endpoint" --expect "$workers" --out "$out" "${run[@]}" "${server[@]}" 2>"$out/coordinator.err" &
    local coordinator=$! pids=()
    for ((h = 1; h <= HOSTS; h++)); do
        for ((k = 0; k < K; k++)); do
            bash $hosts exec "$h" "$CHORUS" worker --connect "$endpoint" --quiet "${client[@]}" 2>/dev/null & pids+=($!)
        done
    done
    wait "$coordinator" || { echo "the $mode coordinator failed:" >&2; cat "$out/coordinator.err" >&2; exit 1; }
    for p in "${pids[@]}"; do wait "$p" || true; done
    python3 -c "import json,sys; r=json.load(open('$out/report.json')); print(f'{r[\"samples_per_s\"]:.0f} {r[\"params_sha256\"][:12]}')"
}

echo "# $HOSTS worker hosts × $K workers + a coordinator host, links $RATE, $STEPS steps, S = $SHARDS, batch 128 per worker, $(nproc) cores in all"
printf "%-6s %-8s %10s %14s\n" round mode samples/s params_sha256
for ((r = 1; r <= ROUNDS; r++)); do
    declare -A speed=() hash=()
    for mode in plain curve sealed; do
        read -r speed[$mode] hash[$mode] < <(round $mode)
        printf "%-6s %-8s %10s %14s\n" "$r" "$mode" "${speed[$mode]}" "${hash[$mode]}"
    done
    same=$([ "${hash[plain]}" = "${hash[curve]}" ] && [ "${hash[plain]}" = "${hash[sealed]}" ] && echo "same bits" || echo "HASHES DIFFER")
    python3 -c "print(f'round $r: curve/plain {${speed[curve]} / ${speed[plain]}:.2f}, sealed/plain {${speed[sealed]} / ${speed[plain]}:.2f}, sealed/curve {${speed[sealed]} / ${speed[curve]}:.2f}  ($same)')"
done
