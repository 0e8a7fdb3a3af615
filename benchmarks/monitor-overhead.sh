#!/usr/bin/env bash
# Training throughput with the collapse monitor on vs off (default MLP, batch 128, in-process),
# alternating runs side by side (ROUNDS rounds of STEPS steps, median); then the same with 2 local
# workers, audits included; then CPU per step. Target: overhead ≤ 3 % on the default (in-process) run.
set -euo pipefail
cd "$(dirname "$0")/.."
CHORUS=${CHORUS:-.build/release/chorus}
STEPS=${STEPS:-600}
ROUNDS=${ROUNDS:-10}
# One CPU for both runs of a round (taskset, when there is one): the monitor's cost is ~2 % of a
# step, and a run that moves between cores or shares one with the other run's leftovers moves
# by ±10 %. The figure is the median of the rounds' own overheads (each round runs on and off
# back to back, so a slow spell of the VM hits both).
PIN=()
command -v taskset >/dev/null && PIN=(taskset -c "$(($(nproc) - 1))")
rate() { python3 -c "import json;print(json.load(open('$1/report.json'))['samples_per_s'])"; }
cpu_step() { python3 -c "import json;print(json.load(open('$1/report.json'))['cpu_ms_per_step'])"; }
# run_pair ON OFF WORKERS FLAGS_OFF: one run with the monitor and one without, in the order given by
# the round: the first run of a pair is slower on this VM (docs/benchmarks.md: a round's first run
# averaged 6 % above its second whatever it was), so odd rounds run "on" first and even rounds
# "off" first, and the figure is the mean of the two orders' medians, which cancels that.
run_pair() {
    local round=$1 on=$2 off=$3 workers=$4 offflags=$5 pin=()
    ((workers == 0)) && pin=("${PIN[@]}")  # worker processes get every CPU
    if ((round % 2)); then
        "${pin[@]}" "$CHORUS" train --workers "$workers" --max-steps "$STEPS" --out "$on" --quiet 2>/dev/null
        "${pin[@]}" "$CHORUS" train --workers "$workers" --max-steps "$STEPS" --out "$off" --quiet $offflags 2>/dev/null
    else
        "${pin[@]}" "$CHORUS" train --workers "$workers" --max-steps "$STEPS" --out "$off" --quiet $offflags 2>/dev/null
        "${pin[@]}" "$CHORUS" train --workers "$workers" --max-steps "$STEPS" --out "$on" --quiet 2>/dev/null
    fi
}
# balanced NAME VALUES...: the per-round overheads (odd rounds "on" first), summarized.
balanced() {
    local name=$1; shift
    python3 -c "
import statistics
v=[float(x) for x in '$*'.split()]
first, second = v[0::2], v[1::2]
print('$name: on first', round(statistics.median(first), 1), '%, off first', round(statistics.median(second), 1) if second else 'n/a',
      '%, order-balanced', round((statistics.median(first) + statistics.median(second)) / 2, 1) if second else 'n/a', '%  (rounds:', [round(x, 1) for x in v], ')')"
}
wall=(); cpus=()
for ((round = 1; round <= ROUNDS; round++)); do
    on=$(mktemp -d); off=$(mktemp -d)
    run_pair "$round" "$on" "$off" 0 --no-monitor
    wall+=("$(python3 -c "print(100 * ($(rate "$off") - $(rate "$on")) / $(rate "$off"))")")
    cpus+=("$(python3 -c "print(100 * ($(cpu_step "$on") - $(cpu_step "$off")) / $(cpu_step "$off"))")")
    python3 -c "on=$(rate "$on"); off=$(rate "$off"); print(f'round $round ($( ((round % 2)) && echo on || echo off) first): monitor on {on:.0f} samples/s, off {off:.0f} samples/s, overhead {100*(off-on)/off:.1f}%; CPU ms per step on $(cpu_step "$on"), off $(cpu_step "$off")')"
    rm -rf "$on" "$off"
done
# report.json's cpu_ms_per_step is the process's CPU time in the training steps: the same steps as
# samples_per_s without the time the VM gave to others. Target: ≤ 3 %.
balanced "monitor overhead in-process, samples/s" "${wall[@]}"
balanced "monitor overhead in-process, CPU per training step" "${cpus[@]}"
# Distributed (2 local workers): the default (monitor + a bitwise audit every 20 steps) vs
# neither, so the audit's extra shard computation is included in the overhead.
two=()
for round in 1 2 3 4; do
    on=$(mktemp -d); off=$(mktemp -d)
    run_pair "$round" "$on" "$off" 2 "--no-monitor --audit-every 0"
    two+=("$(python3 -c "print(100 * ($(rate "$off") - $(rate "$on")) / $(rate "$off"))")")
    python3 -c "on=$(rate "$on"); off=$(rate "$off"); print(f'round $round, 2 workers: monitor+audits on {on:.0f} samples/s, off {off:.0f} samples/s, overhead {100*(off-on)/off:.1f}%')"
    rm -rf "$on" "$off"
done
balanced "monitor + audits, 2 workers, samples/s" "${two[@]}"
# Wall-clock rates on a shared VM move by ±10% between runs. CPU time per step is steadier:
# (CPU of a 1200-step run − CPU of a 400-step run) / 800, in-process, median of 3, which also
# cancels one-time costs (the monitor's data summary at start).
cpu() { /usr/bin/time -f "%U %S" -o "$1/t" "${PIN[@]}" "$CHORUS" train --workers 0 --max-steps "$2" --out "$1" --quiet $3 2>/dev/null; awk '{print $1 + $2}' "$1/t"; }
# cpu_per_step LABEL FLAGS: the median of 3 rounds, printed with the rounds.
cpu_per_step() {
    local values=() round a b
    for round in 1 2 3; do
        a=$(mktemp -d); b=$(mktemp -d)
        values+=("$(python3 -c "print(($(cpu "$b" 1200 "$2") - $(cpu "$a" 400 "$2")) / 800 * 1000)")")
        rm -rf "$a" "$b"
    done
    python3 -c "import statistics; v=[${values[0]}, ${values[1]}, ${values[2]}]; print('CPU ms per step, $1:', round(statistics.median(v), 3), [round(x, 3) for x in v])"
}
# The monitor's overhead from CPU time, on and off alternating inside each of ROUNDS rounds (so a
# busy spell of the VM hits both), per-round ratio, median: the figure docs/benchmarks.md quotes.
overhead_rounds() {
    local ratios=() round a b c d on off
    for ((round = 1; round <= ${ROUNDS:-5}; round++)); do
        a=$(mktemp -d); b=$(mktemp -d); c=$(mktemp -d); d=$(mktemp -d)
        on=$(python3 -c "print(($(cpu "$b" 1200 "") - $(cpu "$a" 400 "")) / 800 * 1000)")
        off=$(python3 -c "print(($(cpu "$d" 1200 --no-monitor) - $(cpu "$c" 400 --no-monitor)) / 800 * 1000)")
        ratios+=("$(python3 -c "print(100 * ($on - $off) / $off)")")
        echo "round $round: CPU ms per step on $on, off $off"
        rm -rf "$a" "$b" "$c" "$d"
    done
    python3 -c "import statistics; v=[$(IFS=,; echo "${ratios[*]}")]; print('monitor overhead, CPU per step, median of', len(v), 'alternating rounds:', round(statistics.median(v), 1), '%', [round(x, 1) for x in v])"
}
overhead_rounds
# What watching a run costs: TensorBoard events, the timeline and a Prometheus endpoint (the
# defaults plus --metrics-port 0) vs none of them (--no-tensorboard --timeline-steps 0), both with
# the monitor on; CPU ms per step as above, median of 3.
cpu_per_step "observability --metrics-port 0" "--metrics-port 0"
cpu_per_step "observability --no-tensorboard --timeline-steps 0" "--no-tensorboard --timeline-steps 0"
