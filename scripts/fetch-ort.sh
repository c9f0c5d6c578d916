#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library from the PyPI wheel (the only registry reachable here)
# into .ort/ (ignored). Idempotent. ort is built with `load-dynamic`, and .cargo/config.toml
# points ORT_DYLIB_PATH at the file this script extracts.
set -euo pipefail
ORT_VERSION=1.31.1
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.ort"
lib="$dest/libonnxruntime.so.$ORT_VERSION"
if [ -f "$lib" ]; then
  echo "onnxruntime $ORT_VERSION already at $lib"
  exit 0
fi
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --python-version 3.11 --implementation cp \
  -d "$tmp" "onnxruntime==$ORT_VERSION"
wheel=$(ls "$tmp"/onnxruntime-*.whl)
python3 - "$wheel" "$dest" "$ORT_VERSION" <<'PY'
import sys, zipfile, os
wheel, dest, ver = sys.argv[1:4]
name = f"onnxruntime/capi/libonnxruntime.so.{ver}"
with zipfile.ZipFile(wheel) as z:
    data = z.read(name)
out = os.path.join(dest, f"libonnxruntime.so.{ver}")
with open(out + ".tmp", "wb") as f:
    f.write(data)
os.replace(out + ".tmp", out)
print(f"extracted {name} ({len(data) / 1e6:.1f} MB) -> {out}")
PY
