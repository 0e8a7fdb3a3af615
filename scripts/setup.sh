#!/usr/bin/env bash
# Installs what Chorus needs on a fresh Debian 12 machine and builds it in release mode.
# Idempotent: safe to run again. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libzmq3-dev libopenblas-dev zlib1g-dev pkg-config dataset-fashion-mnist python3-pip)
# --cluster-tests: what the multi-host tests run on (test hosts, ssh, a real Slurm).
if [ "${1:-}" = "--cluster-tests" ]; then
    packages+=(iproute2 nftables openssh-server openssh-client slurm-wlm munge)
fi
# promtool (Debian's prometheus package) validates the --metrics-port exposition in the tests.
if [ "${1:-}" = "--cluster-tests" ] && ! command -v promtool >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus
    # The package starts a Prometheus server; the tests need only its promtool.
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || $SUDO pkill -x prometheus || true
fi
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Python packages for the interoperability checks (safetensors) and the NumPy reference benchmark.
python3 -c "import safetensors, numpy" 2>/dev/null || python3 -m pip install -q safetensors numpy

# TensorBoard, in a virtual environment of its own, for the test that reads Chorus's event files
# back with TensorBoard's EventAccumulator (Tests/EndToEndTests/TensorBoardTests.swift).
if [ ! -x .build/tensorboard-venv/bin/python ] || ! .build/tensorboard-venv/bin/python -c "import tensorboard" 2>/dev/null; then
    python3 -m venv .build/tensorboard-venv && .build/tensorboard-venv/bin/pip install -q tensorboard \
        || echo "setup: warning: could not install tensorboard in .build/tensorboard-venv (its test is skipped outside CI)"
fi

swift build -c release
echo "setup: done; binary at .build/release/chorus"
