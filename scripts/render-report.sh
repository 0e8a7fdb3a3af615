#!/usr/bin/env bash
# Renders report.html of a healthy run and of a collapsing one to PNGs with headless Chromium
# (Debian's chromium package), to look at the report as a browser shows it.
#
#   scripts/render-report.sh [OUT_DIR]   → OUT_DIR/healthy.png, OUT_DIR/collapsed.png (default /tmp/chorus-report-png)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/chorus-report-png}
mkdir -p "$out"
chorus=${CHORUS_BINARY:-.build/release/chorus}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "render-report: needs chromium (apt-get install --no-install-recommends chromium)" >&2
    exit 1
fi
"$chorus" train --max-steps 1500 --batch-size 128 --workers 2 --out "$out/healthy" --quiet
"$chorus" train --config scenarios/symmetric_weights--zero-init.json --max-steps 80 --out "$out/collapsed" --quiet || true
for run in healthy collapsed; do
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,4200 \
        --screenshot="$out/$run.png" "file://$(realpath "$out/$run/report.html")" 2>/dev/null
    echo "render-report: $out/$run.png"
done
