#!/usr/bin/env bash
# The reference's venv (OpenCV + ONNX Runtime from PyPI) in the ignored bench/out/ref-venv.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=$root/bench/out/ref-venv
req=$root/bench/reference/requirements.txt
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/.requirements"; then
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements"
fi
