#!/usr/bin/env bash
# Builds and starts the service on the default (embedded) model on a fresh machine:
# fetches ONNX Runtime, builds the release binary, serves on port 8080 (COLORIZER_PORT).
# Extra arguments go to `colorizer serve`, e.g. scripts/run.sh --port 9000.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build-deps.sh
scripts/fetch-ort.sh
cargo build --release --locked
export ORT_DYLIB_PATH="$root/.ort/libonnxruntime.so.1.31.1"
exec ./target/release/colorizer serve "$@"
