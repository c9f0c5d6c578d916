#!/usr/bin/env bash
# Regenerates the committed screenshots in docs/screenshots/ (the browser tests write theirs to
# the ignored target/screenshots/ instead): the demo page and Swagger UI driven by the browser
# tests with untrained fixture models, and the demo page with the embedded default model and three
# colour hints (tests/browser/screenshot-trained.mjs).
#
#   scripts/screenshots.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build-deps.sh
scripts/fetch-ort.sh
cargo build --locked
scripts/install-browser.sh
SCREENSHOTS=docs/screenshots COLORIZER_BIN=target/debug/colorizer node --test tests/browser/
node tests/browser/screenshot-trained.mjs "Still life" --hint 0.5,0.85,#8b5a2b --hint 0.72,0.45,#2e7d32 \
  --hint 0.2,0.2,#7088b0
git status --short docs/screenshots
