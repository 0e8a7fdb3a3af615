#!/usr/bin/env bash
# Coverage-guided fuzzing of Chorus's input readers with libFuzzer (fuzz/README.md).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 30 s each, every target)
#   fuzz/run.sh --runs N [TARGET...]                 (N executions each)
#
# Builds chorus-fuzz with -sanitize=fuzzer,address into .build-fuzz (the toolchain's own
# libFuzzer and ASan runtimes), then fuzzes each target from a copy of its committed corpus in
# fuzz/corpus/TARGET. New inputs it finds stay in .build-fuzz/corpus; a crash writes
# .build-fuzz/crash-* and fails the script (turn it into a regression test and a seed).
set -euo pipefail
cd "$(dirname "$0")/.."
limit=(-max_total_time="${1:-30}")
if [ "${1:-}" = "--runs" ]; then limit=(-runs="$2"); shift; fi
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wire config safetensors idx csv signals npy sealed)

mkdir -p .build-fuzz
swift build -c release --scratch-path .build-fuzz --product chorus-fuzz \
    -Xswiftc -DFUZZING -Xswiftc -sanitize=fuzzer,address >.build-fuzz/build.log 2>&1 \
    || { tail -n 30 .build-fuzz/build.log; exit 1; }
binary=.build-fuzz/release/chorus-fuzz
status=0
for target in "${targets[@]}"; do
    work=.build-fuzz/corpus/$target
    mkdir -p "$work"
    cp -n fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
    log=.build-fuzz/$target.log
    if CHORUS_FUZZ_TARGET=$target ASAN_OPTIONS=detect_leaks=0 "$binary" "$work" ${limit[@]} \
        -max_len=65536 -timeout=10 -rss_limit_mb=2048 -artifact_prefix=.build-fuzz/crash-"$target"- >"$log" 2>&1; then
        done_line=$(grep -E "cov: " "$log" | tail -n 1 | sed -E "s/.*(#[0-9]+).*(cov: [0-9]+).*(corp: [^ ]+).*/\1 runs, \2, \3/"); done_line="$done_line; $(grep -E "^Done" "$log" | tail -n 1)"
        echo "fuzz $target: ok: $done_line"
    else
        status=1
        echo "fuzz $target: FAILED (log $log):"
        tail -n 30 "$log"
    fi
done
exit $status
