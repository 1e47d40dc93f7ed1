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
exit "$status"
