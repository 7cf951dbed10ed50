#!/usr/bin/env bash
# Installs what the browser tests (tests/browser/) need: Debian's Chromium and the pinned npm
# packages (playwright-core, axe-core). Playwright's own browser download cannot work here (only the
# package registries are reachable), so the tests drive /usr/bin/chromium from the apt package.
# Idempotent and quick when everything is there, so other scripts can run or source it every time.
# Needs: root (for apt-get) and Node >= 20 with npm.
set -euo pipefail

browser_log() { printf '==> browser: %s\n' "$*" >&2; }

browser_install() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/browser"

  if [[ -x /usr/bin/chromium ]]; then
    browser_log "chromium present (/usr/bin/chromium)"
  else
    browser_log "installing chromium with apt-get"
    # The package lists may be stale or absent on a fresh machine: refresh them only when needed.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2; then
      browser_log "apt-get install failed; running apt-get update and retrying"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
    fi
  fi

  # npm ci writes node_modules/.package-lock.json; -nt is also true when that file is missing.
  if [[ $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
    browser_log "npm ci in tests/browser"
    (cd "$dir" && npm ci --no-audit --no-fund >&2)
  else
    browser_log "tests/browser/node_modules up to date"
  fi
}

browser_install
