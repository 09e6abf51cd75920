#!/usr/bin/env bash
# The test suite under AddressSanitizer, then ThreadSanitizer (SwiftPM's --sanitize, no
# unsafeFlags), each in its own build folder. Prints each run's summary and any sanitizer report.
#
#   scripts/sanitizers.sh [address|thread|both] [TEST FILTER]
set -uo pipefail
cd "$(dirname "$0")/.."
which="${1:-both}"
filter="${2:-}"
run() {
    local s=$1
    swift build --build-tests --sanitize="$s" --scratch-path ".build-$s" > "/tmp/tidepool-$s-build.log" 2>&1 || {
        echo "$s: build failed (see /tmp/tidepool-$s-build.log)"; return 1; }
    TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1" ASAN_OPTIONS="detect_leaks=0" \
        swift test --skip-build --sanitize="$s" --scratch-path ".build-$s" ${filter:+--filter "$filter"} \
        > "/tmp/tidepool-$s-test.log" 2>&1
    echo "$s: exit $?"
    grep -E "Executed [0-9]+ tests" "/tmp/tidepool-$s-test.log" | tail -1
    grep -E "^(==[0-9]+==ERROR|WARNING: ThreadSanitizer|SUMMARY:)" "/tmp/tidepool-$s-test.log" | sort | uniq -c | head -40
}
[ "$which" = thread ] || run address
[ "$which" = address ] || run thread
