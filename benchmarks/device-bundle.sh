#!/usr/bin/env bash
# Prepares .build-device/ for a machine with no Swift toolchain, no packages and no network
# (the 16-core `device` machine), under the 64 MiB a run may carry:
#   bundle.tar.gz  the chorus binary built with the Swift runtime linked in (stripped) and the
#                  shared libraries it needs (from ldd, minus glibc's);
#   data/          Fashion-MNIST: the full test set and the first $TRAIN_EXAMPLES training
#                  examples (the full training set would not fit; throughput does not depend on it);
#   device-scaling.sh, the script to run there.
#
#   bash benchmarks/device-bundle.sh && du -sh .build-device
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN_EXAMPLES=${TRAIN_EXAMPLES:-30000}
swift build -c release --static-swift-stdlib --build-path .build-static
rm -rf .build-device
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" .build-device/data
cp .build-static/release/chorus "$stage/chorus"
strip "$stage/chorus"
ldd "$stage/chorus" | awk '/=> \// {print $3}' \
    | grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv)\.so' \
    | while read -r lib; do cp -L "$lib" "$stage/lib/"; done
tar -czf .build-device/bundle.tar.gz -C "$stage" chorus lib
python3 - "$TRAIN_EXAMPLES" .build-device/data <<'PY'
import gzip, struct, sys
count, out = int(sys.argv[1]), sys.argv[2]
src = "/usr/share/datasets/fashion-mnist/"
for name, item in (("train-images-idx3-ubyte.gz", 784), ("train-labels-idx1-ubyte.gz", 1)):
    data = gzip.open(src + name).read()
    header = 16 if item == 784 else 8
    body = data[header:header + count * item]
    head = bytearray(data[:header]); head[4:8] = struct.pack(">I", count)
    with gzip.open(f"{out}/{name}", "wb", compresslevel=9) as f:
        f.write(bytes(head) + body)
PY
cp /usr/share/datasets/fashion-mnist/t10k-*.gz .build-device/data/
cp benchmarks/device-scaling.sh .build-device/
# The bundle must run on its own libraries: unpack it and train a few steps with them.
check=$(mktemp -d)
tar -xzf .build-device/bundle.tar.gz -C "$check"
LD_LIBRARY_PATH="$check/lib" "$check/chorus" train --data .build-device/data --workers 2 --max-steps 5 \
    --quiet --out "$check/out" 2>/dev/null
grep -q '"status" *: *"completed"' "$check/out/report.json"
rm -rf "$check"
du -sh .build-device
