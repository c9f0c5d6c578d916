#!/usr/bin/env bash
# One command: builds the service and bench/ort-raw, installs oha and the Python
# peer's venv (all into the ignored bench/out/), runs bench/harness.py, writes bench/REPORT.md.
#
#   bench/run.sh            full run (about 15 minutes of measuring after the builds)
#   bench/run.sh --quick    short runs (about 5 minutes)
#   bench/run.sh --service after=/tmp/x/target/release/colorizer   also measure another build
#                           in the same run (before/after of a patch); any harness flag passes on
#
# Environment: BENCH_MODEL (ONNX file; default models/colorizer.onnx, the service's default model,
# else tests/fixtures/untrained-colorizer.onnx: same architecture and cost), BENCH_SKIP_BUILD=1
# (use what is built).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=bench/out
mkdir -p "$out"
log() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

OHA_VERSION=1.16.0
PY=${PYTHON:-python3}

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "ONNX Runtime library"
  scripts/fetch-ort.sh
  log "cargo build --release (the service)"
  cargo build --release --locked --bin colorizer
  log "bench/ort-raw (own workspace, target dir bench/out/ort-raw-target)"
  (cd bench/ort-raw && cargo build --release --locked)
  if [ ! -x "$out/tools/bin/oha" ] || ! "$out/tools/bin/oha" --version | grep -q "$OHA_VERSION"; then
    log "cargo install oha $OHA_VERSION (once; a few minutes)"
    cargo install oha --version "$OHA_VERSION" --locked --no-default-features --features native-tls --root "$out/tools"
  fi
  if [ ! -x "$out/peer-venv/bin/python" ] || ! cmp -s bench/python_peer/requirements.txt "$out/peer-venv/.requirements"; then
    log "Python peer venv ($out/peer-venv)"
    "$PY" -m venv "$out/peer-venv"
    "$out/peer-venv/bin/pip" install --quiet -r bench/python_peer/requirements.txt
    cp bench/python_peer/requirements.txt "$out/peer-venv/.requirements"
  fi
fi

default_model=models/colorizer.onnx
[ -e "$default_model" ] || default_model=tests/fixtures/untrained-colorizer.onnx
model=${BENCH_MODEL:-$default_model}
log "harness (model $model)"
exec "$out/peer-venv/bin/python" bench/harness.py --model "$model" --argv "bench/run.sh $*" "$@"
