#!/usr/bin/env bash
# The project's test command: builds the release binary the end-to-end tests run, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release
CHORUS_BINARY="$PWD/.build/release/chorus" swift test
