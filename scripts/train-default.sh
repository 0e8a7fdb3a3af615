#!/usr/bin/env bash
# Sets up the machine, then trains the default MLP on Fashion-MNIST with 2 local workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.build/release/chorus train --workers "${WORKERS:-2}" --out "${OUT:-runs/default}" "$@"
