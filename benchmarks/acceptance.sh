#!/usr/bin/env bash
# Acceptance runs (release build): accuracy targets of the tensor-core and distributed issues.
#   MLP 784-256-128-10, 10 epochs, in-process      → test_accuracy ≥ 0.885
#   small CNN (2 conv + pool + dense), 3 epochs     → test_accuracy ≥ 0.90
#   MLP, 10 epochs, 2 worker processes              → test_accuracy ≥ 0.885
# Usage: benchmarks/acceptance.sh [mlp|cnn|distributed|cnn-bn|cnn-bn-2]...   (default: the first three)
set -uo pipefail
cd "$(dirname "$0")/.."
CHORUS=${CHORUS:-.build/release/chorus}
passed=0; failed=0
check() {  # name, threshold, out dir, command...
    local name=$1 threshold=$2 out=$3; shift 3
    rm -rf "$out"
    local start=$SECONDS
    "$@" --out "$out" --quiet || { echo "$name: run failed"; failed=$((failed+1)); return; }
    local accuracy; accuracy=$(python3 -c "import json;print(json.load(open('$out/report.json'))['test_accuracy'])")
    if python3 -c "import sys; sys.exit(0 if $accuracy >= $threshold else 1)"; then
        echo "$name: test_accuracy $accuracy ≥ $threshold in $((SECONDS-start)) s: PASS"; passed=$((passed+1))
    else
        echo "$name: test_accuracy $accuracy < $threshold: FAIL"; failed=$((failed+1))
    fi
}
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(mlp cnn distributed)
for target in "${targets[@]}"; do
    case $target in
        mlp) check "MLP in-process, 10 epochs" 0.885 runs/acceptance-mlp "$CHORUS" train --workers 0 --epochs 10 ;;
        cnn) check "CNN in-process, 3 epochs" 0.90 runs/acceptance-cnn "$CHORUS" train --workers 0 --config benchmarks/configs/cnn.json ;;
        distributed) check "MLP 2 workers, 10 epochs" 0.885 runs/acceptance-distributed "$CHORUS" train --workers 2 --epochs 10 ;;
        # Not in the default set: ~10 minutes each on 2 cores.
        cnn-bn) check "batch-norm CNN in-process, 10 epochs" 0.93 runs/acceptance-cnn-bn "$CHORUS" train --workers 0 --config benchmarks/configs/cnn-bn-dropout.json ;;
        cnn-bn-2) check "batch-norm CNN 2 workers, 10 epochs" 0.93 runs/acceptance-cnn-bn-2 "$CHORUS" train --workers 2 --config benchmarks/configs/cnn-bn-dropout.json ;;
    esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
