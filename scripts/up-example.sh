#!/usr/bin/env bash
# Sets up this machine (idempotent), builds sagedev, and brings the example Sage stack up in examples/sage:
# PostgreSQL 18, Valkey 8, migrations and seeds, the backend and the frontend. Native processes by default when no
# Docker engine answers (SAGEDEV_RUNTIME=auto). Stop it with: (cd examples/sage && ../../.build/release/sagedev down)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="/opt/swift/usr/bin:$PATH"

scripts/bootstrap.sh
bin=$(scripts/build-release 2> >(grep -E 'warning:|error:|Compiling|Build' | grep -v 'mktemp' | tail -3 >&2) | tail -1)
SAGEDEV="$bin/sagedev"

cd examples/sage
if [ ! -f .env ]; then
  cp .env.example .env
  echo "up-example: created examples/sage/.env from .env.example (edit it to change ports or passwords)" >&2
fi
exec "$SAGEDEV" up "$@"
