/// `scripts/dev-setup.sh`, which `sagedev init --onboarding-script` writes into a team's repository: from a fresh
/// clone to a running stack, without root, and safe to run again on every pull.
public enum OnboardingScript {
    public static let path = "scripts/dev-setup.sh"

    public static let text = #"""
        #!/usr/bin/env bash
        # Brings this project's local stack up with sagedev, from a fresh clone, without root. Safe to run on every
        # pull: each step checks before it acts. Written by `sagedev init --onboarding-script`.
        #   1. sagedev itself: on PATH or in ~/.local/bin, else installed from a sagedev checkout
        #      (SAGEDEV_SOURCE=/path/to/sagedev, or SAGEDEV_GIT_URL=<url> to clone one) with its scripts/install.sh;
        #   2. PostgreSQL 18 and Valkey 8 for your user (sagedev toolchain install; skipped when installed);
        #   3. .env, this machine's own with random passwords, when missing (sagedev init);
        #   4. sagedev doctor, up and wait, then the URLs.
        set -euo pipefail
        cd "$(dirname "${BASH_SOURCE[0]}")/.."
        say() { printf 'dev-setup: %s\n' "$*" >&2; }

        export PATH="$HOME/.local/bin:$PATH"
        if ! command -v sagedev >/dev/null 2>&1; then
          src="${SAGEDEV_SOURCE:-}"
          if [ -z "$src" ] && [ -n "${SAGEDEV_GIT_URL:-}" ]; then
            src="${XDG_CACHE_HOME:-$HOME/.cache}/sagedev-source"
            [ -d "$src/.git" ] || git clone --depth 1 "$SAGEDEV_GIT_URL" "$src"
          fi
          if [ -z "$src" ] || [ ! -x "$src/scripts/install.sh" ]; then
            say "sagedev is not installed: set SAGEDEV_SOURCE to a sagedev checkout (or SAGEDEV_GIT_URL to clone one), then run $0 again"
            exit 1
          fi
          "$src/scripts/install.sh"
        fi

        sagedev toolchain install
        [ -f .env ] || sagedev init
        if ! sagedev doctor; then
          say "sagedev doctor found a problem (marked ✘ above, with its fix); fix it and run $0 again"
          exit 1
        fi
        sagedev up
        status=$(sagedev status --json)
        health=$(printf '%s' "$status" | grep -o '"healthURL":"[^"]*"' | sed -e 's/^"healthURL":"//' -e 's/"$//')
        # shellcheck disable=SC2086 # one argument per URL
        [ -z "$health" ] || sagedev wait --timeout 120 $health
        printf '\nThe stack is up:\n'
        printf '%s' "$status" | grep -o '"url":"[^"]*"' | sed -e 's/^"url":"/  /' -e 's/"$//'
        printf 'Stop it with: sagedev down\n'

        """#
}
