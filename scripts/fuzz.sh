#!/usr/bin/env bash
# A long run of the seeded mutation fuzzers (Tests/TidepoolTests/FuzzTests.swift): damaged
# database files (every fixture file: WAL frames, segments, the manifest), filters, and
# .npy/.fvecs/.ivecs files. CI runs 100 cases per target; this runs many more, in a release
# build, with a seed of your choice. A trap fails the run; so does a damaged file that verify
# calls sound but that answers differently from the original.
#
#   scripts/fuzz.sh [ITERATIONS] [SEED]        (default 20000, 1)
set -euo pipefail
cd "$(dirname "$0")/.."
export TIDEPOOL_FUZZ_ITERATIONS="${1:-20000}"
export TIDEPOOL_FUZZ_SEED="${2:-1}"
swift build -c release --build-tests --scratch-path .build-fuzz
swift test -c release --skip-build --scratch-path .build-fuzz --filter FuzzTests 2>&1 | grep -E "fuzz:|error|Executed" || true
