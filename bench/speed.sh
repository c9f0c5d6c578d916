#!/usr/bin/env bash
# Large-photo and small-photo speed in one run (bench/speed.py): large photos (12 and 48 MP, JPEG and
# PNG out) against the single-threaded reference (OpenCV + raw ONNX Runtime), memory per request,
# the CLI batch on 2 MP photos and 256 px at c = 8 against raw ORT; the service before and after.
#
#   bench/speed.sh --before BIN --data PHOTOS [--rounds 3] [--only large,batch,c8]
# PHOTOS: any folder of colour photos (the report used the project's general val photos).
#
# BIN: the service as built before (e.g. from the commit before the speed work:
#   git worktree add --detach /tmp/before 6db53c0 && (cd /tmp/before && cargo build --release)).
# Builds here: the service (cargo build --release), bench/ort-raw, oha (into bench/out/tools),
# the reference's venv (bench/reference/setup.sh). BENCH_SKIP_BUILD=1 uses what is built.
# Writes bench/out/speed/{results.json,speed.md}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
OHA_VERSION=1.16.0
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  scripts/build-deps.sh
  scripts/fetch-ort.sh
  cargo build --release --locked --bin colorizer
  (cd bench/ort-raw && cargo build --release --locked)
  if [ ! -x bench/out/tools/bin/oha ] || ! bench/out/tools/bin/oha --version | grep -q "$OHA_VERSION"; then
    cargo install oha --version "$OHA_VERSION" --locked --no-default-features --features native-tls --root bench/out/tools
  fi
  bench/reference/setup.sh
fi
exec bench/out/ref-venv/bin/python bench/speed.py --after target/release/colorizer "$@"
