#!/usr/bin/env bash
# Installs what the browser test (tests/browser/) needs: Debian's chromium and playwright-core
# from npm. Idempotent: does nothing that is already done. No browser download by playwright:
# the test drives /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    echo "install-browser: installing Debian's chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
/usr/bin/chromium --version >&2 2>/dev/null || true

if ! command -v npm >/dev/null; then
    echo "install-browser: npm is missing (apt-get install nodejs npm)" >&2
    exit 1
fi

cd tests/browser
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -f package-lock.json ]; then
    # Reinstall only when node_modules is missing or older than the lock file.
    if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    fi
else
    npm install --no-audit --no-fund --loglevel=error
fi
echo "install-browser: ready (chromium + playwright-core $(node -p "require('playwright-core/package.json').version"))" >&2
