#!/usr/bin/env bash
# Builds sagedev in release mode from this checkout and installs the binary as PREFIX/bin/sagedev.
#   scripts/install.sh [--prefix DIR]
# The default prefix is /usr/local as root and ~/.local otherwise. Needs the Swift 6 toolchain (swift on PATH, or
# /opt/swift/usr/bin), nothing else; no root unless the prefix needs it. Idempotent: an unchanged build installs the
# same file again. Prints the installed version and path, and warns when PREFIX/bin is not on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'install: %s\n' "$*" >&2; }

if [ "$(id -u)" = 0 ]; then PREFIX=/usr/local; else PREFIX="$HOME/.local"; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { say "--prefix needs a directory"; exit 64; }; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) say "unknown option '$1' (usage: scripts/install.sh [--prefix DIR])"; exit 64 ;;
  esac
done
case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then export PATH="/opt/swift/usr/bin:$PATH"
  else say "swift is not on PATH: install the Swift 6 toolchain (https://www.swift.org/install/), then run $0 again"; exit 1; fi
fi

cd "$ROOT"
say "building sagedev (release) in $ROOT"
log=$(mktemp)
if ! bin=$(scripts/build-release 2>"$log"); then
  grep -E 'error:' "$log" | head -20 >&2 || tail -20 "$log" >&2
  rm -f "$log"; say "the build failed (above)"; exit 1
fi
rm -f "$log"
built="$(printf '%s\n' "$bin" | tail -1)/sagedev"

if ! mkdir -p "$PREFIX/bin" 2>/dev/null || [ ! -w "$PREFIX/bin" ]; then
  say "cannot write $PREFIX/bin: run as a user who can, or choose another place with --prefix DIR"; exit 1
fi
# Copy beside the target, then rename: a running sagedev keeps its old file, and nothing is ever half-written.
tmp="$PREFIX/bin/.sagedev.$$"
cp "$built" "$tmp" && chmod 0755 "$tmp" && mv -f "$tmp" "$PREFIX/bin/sagedev"

version=$("$PREFIX/bin/sagedev" --version)
say "installed $version as $PREFIX/bin/sagedev"
case ":$PATH:" in
  *":$PREFIX/bin:"*) ;;
  *) say "warning: $PREFIX/bin is not on PATH; add it, e.g. echo 'export PATH=\"$PREFIX/bin:\$PATH\"' >> ~/.profile" ;;
esac
say "next: sagedev toolchain install   (PostgreSQL 18 and Valkey 8 for your user, no root)"
