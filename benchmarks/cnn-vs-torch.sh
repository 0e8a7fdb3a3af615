#!/usr/bin/env bash
# The CNN of benchmarks/configs/cnn.json, Chorus in-process vs PyTorch (CPU, one thread, the same
# network, batch and recipe: benchmarks/cnn_torch.py), alternating in one run; then the default
# MLP the same way (its ratio must not fall); then where Chorus's CNN time goes (perf: the share
# of samples in OpenBLAS's GEMM kernels and packing).
#
#   benchmarks/cnn-vs-torch.sh [ROUNDS] [STEPS]        (default 3 rounds of 150 steps)
#   VENV=/tmp/torchenv: a virtual environment with torch and numpy
#   (python3 -m venv $VENV && $VENV/bin/pip install torch numpy)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
STEPS=${2:-150}
CHORUS=${CHORUS:-.build/release/chorus}
VENV=${VENV:-/tmp/torchenv}
[ -x "$VENV/bin/python" ] || { echo "cnn-vs-torch: no $VENV (python3 -m venv $VENV && $VENV/bin/pip install torch numpy)" >&2; exit 1; }
rate() { python3 -c "import json;print(json.load(open('$1/report.json'))['samples_per_s'])"; }
for round in $(seq "$ROUNDS"); do
    out=$(mktemp -d)
    "$CHORUS" train --config benchmarks/configs/cnn.json --max-steps "$STEPS" --out "$out" --quiet --no-tensorboard --timeline-steps 0 2>/dev/null
    chorus=$(rate "$out"); rm -rf "$out"
    torch=$("$VENV/bin/python" benchmarks/cnn_torch.py speed "$STEPS" | awk '{print $2}')
    python3 -c "print(f'round $round CNN: Chorus {$chorus:.0f} samples/s, PyTorch {$torch:.0f} samples/s, ratio {$chorus/$torch:.2f}')"
    out=$(mktemp -d)
    "$CHORUS" train --max-steps 1500 --out "$out" --quiet --no-tensorboard --timeline-steps 0 2>/dev/null
    chorus=$(rate "$out"); rm -rf "$out"
    torch=$(MLP=1 "$VENV/bin/python" - <<'PY'
import gzip, time, numpy as np, torch
from torch import nn
torch.set_num_threads(1); torch.manual_seed(1)
with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32)
with gzip.open("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") as f:
    y = torch.from_numpy(np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64))
x = torch.from_numpy((x - x.mean()) / x.std())
net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
order = torch.randperm(len(x)); steps = 1500
for s in range(steps + 20):
    if s == 20: start = time.perf_counter()
    i = order[(s * 128) % (len(x) - 128):][:128]
    opt.zero_grad(set_to_none=True); nn.functional.cross_entropy(net(x[i]), y[i]).backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0); opt.step()
print(steps * 128 / (time.perf_counter() - start))
PY
)
    python3 -c "print(f'round $round MLP: Chorus {$chorus:.0f} samples/s, PyTorch {$torch:.0f} samples/s, ratio {$chorus/$torch:.2f}')"
done
if command -v perf >/dev/null; then
    out=$(mktemp -d)
    perf record -q -o "$out/perf.data" -- "$CHORUS" train --config benchmarks/configs/cnn.json --max-steps "$STEPS" --out "$out/run" --quiet \
        --no-tensorboard --timeline-steps 0 >/dev/null 2>&1
    perf report -i "$out/perf.data" --stdio --no-children --sort dso,sym -q 2>/dev/null | python3 -c "
import sys
gemm = other = 0.0
for line in sys.stdin:
    parts = line.split()
    if not parts or not parts[0].endswith('%'): continue
    share = float(parts[0].rstrip('%'))
    name = ' '.join(parts[1:]).lower()
    if 'openblas' in name and ('gemm' in name or 'copy' in name or 'beta' in name): gemm += share
    else: other += share
print(f'CNN profile: {gemm:.1f}% of samples in OpenBLAS GEMM kernels and packing, {other:.1f}% elsewhere')"
    rm -rf "$out"
fi
