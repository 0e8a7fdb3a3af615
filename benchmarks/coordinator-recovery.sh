#!/usr/bin/env bash
# How long a coordinator crash costs: a coordinator and WORKERS workers on separate test hosts
# (cluster/testhosts.sh, needs root), the coordinator SIGKILLed at step KILL_AT and restarted at
# once with --resume on the same endpoint. Prints, per round, the time from the kill to the first
# step the restarted coordinator completes, to the step it was killed at (caught up), the steps
# lost (back to the last checkpoint), and whether the final params_sha256 equals an
# uninterrupted in-process run's.
# Usage: benchmarks/coordinator-recovery.sh [ROUNDS] (default 3); KILL_AT=130, EVERY=20 (--checkpoint-every),
# WORKERS=2, EXTRA passes flags to the coordinator.
set -euo pipefail
cd "$(dirname "$0")/.."
CHORUS=$(realpath "${CHORUS:-.build/release/chorus}")
ROUNDS=${1:-3}
KILL_AT=${KILL_AT:-130}
EVERY=${EVERY:-20}
WORKERS=${WORKERS:-2}
EXTRA=${EXTRA:-}
run=(--shards 4 --max-steps 400 --batch-size 128 --seed 9 --quiet)
hosts=cluster/testhosts.sh
trap 'bash $hosts down >/dev/null 2>&1 || true' EXIT
bash $hosts up $((WORKERS + 1)) >/dev/null
endpoint="tcp://$(bash $hosts addr 0):5555"
ref=$(mktemp -d)
"$CHORUS" train --workers 0 --out "$ref" "${run[@]}" >/dev/null 2>&1
expected=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]+'/report.json'))['params_sha256'])" "$ref")
printf "%-6s %8s %14s %14s %10s %s\n" round killed first-step-s caught-up-s lost same-bits
for ((r = 1; r <= ROUNDS; r++)); do
    out=$(mktemp -d)
    # shellcheck disable=SC2086
    coordinator=(coordinator --bind "$endpoint" --expect "$WORKERS" --checkpoint-every "$EVERY" --out "$out" "${run[@]}" $EXTRA)
    bash $hosts exec 0 "$CHORUS" "${coordinator[@]}" 2>"$out/first.err" &
    first=$!
    pids=()
    for ((w = 1; w <= WORKERS; w++)); do
        bash $hosts exec "$w" "$CHORUS" worker --connect "$endpoint" --quiet 2>/dev/null & pids+=($!)
    done
    python3 - "$out" "$KILL_AT" "$EVERY" "$first" "$CHORUS" "${coordinator[@]}" <<'PY' > "$out/line"
import json, os, signal, subprocess, sys, time
out, kill_at, every, pid, chorus, args = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6:]
def last_step():
    try:
        lines = open(out + "/metrics.jsonl").read().splitlines()
        return json.loads(lines[-1])["step"] if lines else 0
    except (OSError, ValueError, KeyError, IndexError):
        return 0
while last_step() < kill_at: time.sleep(0.002)
# `ip netns exec` execs the command, so the pid is the coordinator's own.
os.kill(pid, signal.SIGKILL); killed_at = time.monotonic(); killed = last_step()
checkpoint = killed // every * every
second = subprocess.Popen(["ip", "netns", "exec", "chorus-h0", chorus] + args + ["--resume", out], stderr=open(out + "/second.err", "w"))
first_step = caught_up = None
while second.poll() is None:
    step = last_step()
    if first_step is None and step == checkpoint + 1: first_step = time.monotonic() - killed_at
    if first_step is not None and step >= killed: caught_up = time.monotonic() - killed_at; break
    time.sleep(0.002)
second.wait()
report = json.load(open(out + "/report.json"))
print(f"{killed:8d} {first_step or float('nan'):14.2f} {caught_up or float('nan'):14.2f} {killed - checkpoint:10d} {report['params_sha256']}")
PY
    { wait "$first"; } 2>/dev/null || true
    for p in "${pids[@]}"; do wait "$p" || true; done
    read -r killed fs cu lost hash < "$out/line"
    printf "%-6s %8s %14s %14s %10s %s\n" "$r" "$killed" "$fs" "$cu" "$lost" "$([ "$hash" = "$expected" ] && echo yes || echo "NO ($hash)")"
done
