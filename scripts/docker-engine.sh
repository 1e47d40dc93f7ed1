#!/usr/bin/env bash
# A private Docker engine for tests and benchmarks, isolated from any system dockerd and from the host firewall.
#
#   scripts/docker-engine.sh start DIR [--timeout SECONDS]   prints DOCKER_HOST=unix://DIR/docker.sock
#   scripts/docker-engine.sh stop DIR                         stops it by its pid and waits
#   scripts/docker-engine.sh status DIR                       exit 0 and DOCKER_HOST=… when it answers
#
# Everything lives under DIR: data-root DIR/data, exec-root DIR/x, pidfile DIR/docker.pid, socket DIR/docker.sock,
# log DIR/dockerd.log. Keep DIR short: the socket path and containerd's socket under the exec-root
# (DIR/x/containerd/containerd.sock.ttrpc) must fit in a Unix socket path (107 bytes).
#
# Networking, chosen so that several engines can run side by side and the host's firewall is never touched:
#   --bridge sgd<hash>   the default bridge is a bridge interface this script creates per DIR (10.213.N.1/24),
#                        not the shared docker0. With --bridge=none Compose's services still work (they sit on
#                        user-defined networks), but BuildKit's RUN steps fail with "network bridge not found".
#   --iptables=false     no NAT/filter rules and no change to the FORWARD policy (a default dockerd sets it to DROP).
#   --ip-forward=false   the net.ipv4.ip_forward sysctl is left alone.
#   --userland-proxy     published ports (127.0.0.1:PORT) are served by docker-proxy, which needs no iptables.
#                        Traffic from the host to 127.0.0.1 never went through Docker's DNAT anyway.
# User-defined networks (Compose's) get subnets from Docker's default pools; dockerd skips subnets already routed
# on the host, so engines started one after another do not collide.
set -euo pipefail

say() { printf 'docker-engine: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() { die "usage: $0 start DIR [--timeout SECONDS] | stop DIR | status DIR"; }

[ $# -ge 2 ] || usage
cmd=$1 dir=$2; shift 2
timeout=60
while [ $# -gt 0 ]; do
  case $1 in
    --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
    *) usage ;;
  esac
done

[ "$(id -u)" = 0 ] || die "a private dockerd needs root (it creates a bridge and mounts); run as root"
command -v dockerd >/dev/null || die "dockerd not found; run scripts/bootstrap.sh (Debian package docker.io)"
command -v docker >/dev/null || die "docker CLI not found; run scripts/bootstrap.sh (Debian package docker.io)"

dir=$(realpath -m "$dir")
sock="$dir/docker.sock"
pidfile="$dir/docker.pid"
data="$dir/data"
execroot="$dir/x"
log="$dir/dockerd.log"
host="unix://$sock"
longest="$execroot/containerd/containerd.sock.ttrpc"
[ ${#longest} -le 107 ] || die "DIR is too long for Unix socket paths ($longest is ${#longest} bytes, at most 107); use a shorter DIR such as /tmp/sgde-XXXX"

mkdir -p "$dir"
hash=$(printf '%s' "$dir" | sha256sum | cut -c1-12)
bridge="sgd$hash"  # 15 characters: the most an interface name may have

# Serialise start/stop on one DIR.
exec 9>"$dir/.lock"
flock -w 120 9 || die "another start/stop holds $dir/.lock"

answers() { DOCKER_HOST=$host timeout 5 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

# A pid counts as running unless it is gone or a zombie.
alive() {
  local pid=$1 state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && [ "$state" != X ]
}
cmdline_has() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }
engine_pid() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if alive "$pid" && cmdline_has "$pid" "--data-root $data"; then echo "$pid"; fi
}

# Waits until every given pid is gone, up to $1 seconds; returns 1 if some remain.
wait_gone() {
  local secs=$1; shift
  local end=$((SECONDS + secs)) p left
  while :; do
    left=0
    for p in "$@"; do alive "$p" && left=1; done
    [ $left = 0 ] && return 0
    [ $SECONDS -ge $end ] && return 1
    sleep 0.1
  done
}

# Network ids this engine created (read from its store even when it is not running).
network_bridges() {
  local kv="$data/network/files/local-kv.db"
  [ -f "$kv" ] || return 0
  grep -ao 'docker/network/v1.0/network/[0-9a-f]\{64\}' "$kv" 2>/dev/null | sed -E 's|.*/([0-9a-f]{12}).*|br-\1|' | sort -u
}

# After an unclean end (dockerd killed), its managed containerd, the shims and the containers may linger.
# Everything here is matched by this DIR's own paths and pid files, never by a process name alone.
reap_leftovers() {
  local pids=() p id cg
  local ctrpid
  ctrpid=$(cat "$execroot/containerd/containerd.pid" 2>/dev/null || true)
  # Container processes: by the cgroups of this engine's container ids.
  if [ -d "$data/containers" ]; then
    for id in $(ls "$data/containers" 2>/dev/null); do
      for cg in $(find /sys/fs/cgroup -maxdepth 4 -type d -name "$id" 2>/dev/null); do
        [ -r "$cg/cgroup.procs" ] && pids+=($(cat "$cg/cgroup.procs"))
      done
    done
  fi
  for p in $(grep -laF -- "$execroot/containerd/containerd.sock" /proc/[0-9]*/cmdline 2>/dev/null); do
    p=${p#/proc/}; p=${p%/cmdline}
    [ "$p" != $$ ] && pids+=("$p")
  done
  alive "$ctrpid" && cmdline_has "$ctrpid" "$execroot" && pids+=("$ctrpid")
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping leftovers of an earlier engine in $dir: ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait_gone 10 "${pids[@]}" || say "some leftovers did not exit: ${pids[*]}"
  fi
  # Mounts under DIR (overlay layers, shm, network namespaces), deepest first.
  awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -f "$sock" "$pidfile" "$execroot/containerd/containerd.pid"
}

ensure_bridge() {
  if ip link show "$bridge" >/dev/null 2>&1; then
    ip link set "$bridge" up
    return 0
  fi
  # 10.213.N.0/24, starting at a slot derived from DIR, skipping any subnet already on the host.
  local start=$((16#${hash:0:4} % 250 + 1)) i n inuse
  inuse=$( { ip -4 -o addr show; ip -4 route show; } 2>/dev/null)
  for i in $(seq 0 249); do
    n=$(( (start + i - 1) % 250 + 1 ))
    if ! grep -q "10\.213\.$n\." <<<"$inuse"; then
      ip link add name "$bridge" type bridge
      ip addr add "10.213.$n.1/24" dev "$bridge"
      ip link set "$bridge" up
      return 0
    fi
  done
  die "no free 10.213.N.0/24 subnet for the engine's bridge"
}

start() {
  local pid
  pid=$(engine_pid)
  if [ -n "$pid" ]; then
    # Already running (or still starting): wait for it to answer.
    local end=$((SECONDS + timeout))
    until answers; do
      alive "$pid" || break
      [ $SECONDS -ge $end ] && die "dockerd (pid $pid) in $dir does not answer after ${timeout}s; see $log"
      sleep 0.1
    done
    if answers; then echo "DOCKER_HOST=$host"; return 0; fi
  fi
  reap_leftovers
  ensure_bridge
  mkdir -p "$data" "$execroot"
  [ -f "$dir/daemon.json" ] || echo '{}' >"$dir/daemon.json"
  # setsid: the engine leaves our session and process group, so a caller that kills its group on a deadline
  # does not take the engine with it. Its output goes to the log only, so no pipe of the caller stays open.
  setsid dockerd \
    --config-file "$dir/daemon.json" \
    --data-root "$data" \
    --exec-root "$execroot" \
    --pidfile "$pidfile" \
    --host "$host" \
    --bridge "$bridge" \
    --iptables=false \
    --ip-forward=false \
    --userland-proxy=true \
    --shutdown-timeout 5 \
    --log-level warn \
    </dev/null >>"$log" 2>&1 9>&- &
  pid=$!
  local end=$((SECONDS + timeout))
  until answers; do
    if ! alive "$pid"; then
      say "dockerd exited during start; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      ip link del "$bridge" 2>/dev/null || true
      exit 1
    fi
    if [ $SECONDS -ge $end ]; then
      say "dockerd (pid $pid) did not answer within ${timeout}s; stopping it. Last lines of $log:"
      tail -n 20 "$log" >&2 || true
      kill -KILL "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.1
  done
  echo "DOCKER_HOST=$host"
}

stop() {
  local pid
  pid=$(engine_pid)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    # --shutdown-timeout 5 bounds how long dockerd waits for containers; leave room for containerd to stop.
    if ! wait_gone 30 "$pid"; then
      say "dockerd (pid $pid) did not stop after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone 10 "$pid" || die "dockerd (pid $pid) survived SIGKILL"
    fi
  fi
  reap_leftovers
  local b
  for b in $(network_bridges) "$bridge"; do
    ip link del "$b" 2>/dev/null || true
  done
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status)
    if [ -n "$(engine_pid)" ] && answers; then echo "DOCKER_HOST=$host"; else exit 1; fi ;;
  *) usage ;;
esac
