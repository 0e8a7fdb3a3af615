#!/usr/bin/env bash
# Runs every scenario in scenarios/ distributed and checks the collapse monitor's verdict.
#   faulty  <cause>--<name>.json : collapse.cause == <cause> and collapse.step <= 50
#   healthy healthy--<name>.json : collapse.detected == false
#   mid-run <cause>--<name>.onset holds the step the fault begins (a schedule's jump): the
#           collapse must be found at or after it and within 20 steps (latency printed, with
#           the monitor's onset_step estimate)
# Extra CLI flags for a scenario live in <cause>--<name>.flags. Usage:
#   scripts/run-scenarios.sh [--workers N] [--steps-limit 50] [PATTERN]
# The binary is $CHORUS or .build/release/chorus; outputs go to $SCENARIO_OUT (default a temp dir).
set -u
cd "$(dirname "$0")/.."
CHORUS=${CHORUS:-.build/release/chorus}
WORKERS=2
LIMIT=50
PATTERN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) WORKERS=$2; shift 2 ;;
        --steps-limit) LIMIT=$2; shift 2 ;;
        *) PATTERN=$1; shift ;;
    esac
done
[ -x "$CHORUS" ] || { echo "run-scenarios: no chorus binary at $CHORUS (build with swift build -c release, or set CHORUS)" >&2; exit 2; }
OUT=${SCENARIO_OUT:-$(mktemp -d /tmp/chorus-scenarios.XXXXXX)}
passed=0; failed=0
for config in scenarios/*.json; do
    name=$(basename "$config" .json)
    [ -n "$PATTERN" ] && [[ "$name" != *$PATTERN* ]] && continue
    expected=${name%%--*}
    flags=""
    [ -f "scenarios/$name.flags" ] && flags=$(cat "scenarios/$name.flags")
    onset=0
    [ -f "scenarios/$name.onset" ] && onset=$(cat "scenarios/$name.onset")
    dir="$OUT/$name"
    rm -rf "$dir"
    # shellcheck disable=SC2086
    "$CHORUS" train --config "$config" --workers "$WORKERS" --out "$dir" $flags >"$OUT/$name.log" 2>&1
    rc=$?
    verdict=$(python3 - "$dir/report.json" "$expected" "$LIMIT" "$onset" <<'PY'
import json, sys
path, expected, limit, onset = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
try:
    c = json.load(open(path))["collapse"]
except Exception as e:
    print(f"FAIL no report ({e.__class__.__name__})"); sys.exit()
got, step = c.get("cause"), c.get("step")
if expected == "healthy":
    print("PASS no collapse" if not c.get("detected") else f"FAIL collapse {got} at step {step}")
elif onset > 0:
    estimate = (c.get("causes") or [{}])[0].get("onset_step")
    ok = got == expected and step is not None and onset <= step <= onset + 20
    print(("PASS" if ok else f"FAIL expected {expected} within 20 steps of {onset}, got") +
          f" {got} at step {step}, latency {None if step is None else step - onset}, onset_step {estimate} (true {onset})")
elif got == expected and step is not None and step <= limit:
    print(f"PASS {got} at step {step}" + (f" replica {c.get('replica')}" if c.get("replica") is not None else ""))
else:
    print(f"FAIL expected {expected}, got {got} at step {step}")
PY
)
    case "$verdict" in PASS*) passed=$((passed + 1)) ;; *) failed=$((failed + 1)); verdict="$verdict (exit $rc, log $OUT/$name.log)" ;; esac
    printf '%-50s %s\n' "$name" "$verdict"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
