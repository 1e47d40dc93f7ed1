#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (idempotent), builds, runs every test
# against the real PostgreSQL 18, Valkey 8, Docker Engine + Compose v2 and clients. No test is skipped.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="/opt/swift/usr/bin:$PATH"

scripts/bootstrap.sh

# Build once (zero warnings is part of the contract), then test in parallel.
build_log=$(mktemp)
swift build --build-tests 2>&1 | tee "$build_log" | grep -E 'warning:|error:' || true
if grep -q 'warning:' "$build_log"; then echo "test.sh: the build has warnings (see above); sagedev builds warning-free" >&2; exit 1; fi
rm -f "$build_log"

# The whole output, per run (two runs at once must not write one file).
log=$(mktemp /tmp/sagedev-test.XXXXXX.log)
set +e
swift test --skip-build 2>&1 | tee "$log" | grep -vE '^(Test Case|Test Suite|\[|􀟈)' | grep -E '✘|error|passed|failed|Executed|Test run' | tail -60
status=${PIPESTATUS[0]}
set -e
echo "test.sh: the whole output is in $log"

# Every unit target again under ThreadSanitizer (SageCoreTests: the stack machine, the engine shell, probes,
# config; SageWireTests: the protocols; SageSystemTests: the OS layer; SageCLITests: the commands), in a build of its
# own in .build-tsan (about 2 minutes on 2 cores from nothing, 10 s to run). A race report fails the run.
tsan_log=$(mktemp /tmp/sagedev-tsan.XXXXXX.log)
set +e
swift build --build-tests --sanitize=thread --scratch-path .build-tsan > "$tsan_log.build" 2>&1
tsan_status=$?
if [ "$tsan_status" -eq 0 ]; then
    TSAN_OPTIONS=halt_on_error=1 swift test --skip-build --sanitize=thread --scratch-path .build-tsan \
        --filter 'SageCoreTests|SageWireTests|SageSystemTests|SageCLITests' > "$tsan_log" 2>&1
    tsan_status=$?
else
    grep -E 'error:' "$tsan_log.build" | head -20
fi
set -e
if grep -q 'ThreadSanitizer' "$tsan_log"; then
    grep -B2 -A30 'ThreadSanitizer' "$tsan_log" | head -80 || true
    tsan_status=1
fi
echo "test.sh: under ThreadSanitizer: $(grep -E 'Test run with' "$tsan_log" | tail -1) (output: $tsan_log)"
if [ "$status" -ne 0 ]; then exit "$status"; fi
exit "$tsan_status"
