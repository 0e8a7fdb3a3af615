#!/usr/bin/env bash
# Single-process training throughput of the default MLP at batch 128, Chorus vs the NumPy
# reference doing the same computation, both with one BLAS thread, side by side in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
CHORUS=${CHORUS:-.build/release/chorus}
STEPS=${STEPS:-400}
for round in 1 2 3; do
    numpy=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python3 benchmarks/mlp_numpy.py "$STEPS")
    out=$(mktemp -d)
    "$CHORUS" train --workers 0 --max-steps "$STEPS" --out "$out" --quiet 2>/dev/null
    chorus=$(python3 -c "import json;print(round(json.load(open('$out/report.json'))['samples_per_s'],1))")
    core=$(python3 -c "import json;print(json.load(open('$out/report.json'))['blas_core'])")
    rm -rf "$out"
    python3 -c "print(f'round $round: chorus {$chorus:.0f} samples/s (OpenBLAS $core), numpy {$numpy:.0f} samples/s, ratio {$chorus/$numpy:.2f}x')"
done
