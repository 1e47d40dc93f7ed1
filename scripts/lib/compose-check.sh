# Sourced by scripts/bootstrap.sh (and its tests). Bash.
# compose_v2_status: prints "installed" when `docker compose` is the Compose v2 (or later) plugin, else "missing".
# It reads the version number itself: Debian's plugin prints "Docker Compose version 2.26.1-4", without the "v"
# that Docker's own builds print, so matching the text "v2." would reinstall the plugin on every run.
compose_v2_status() {
  local version major
  version=$(docker compose version --short 2>/dev/null) || { echo missing; return 0; }
  major=$(printf '%s\n' "$version" | sed -nE '1s/^v?([0-9]+)(\..*)?$/\1/p')
  if [ -n "$major" ] && [ "$major" -ge 2 ]; then echo installed; else echo missing; fi
}
