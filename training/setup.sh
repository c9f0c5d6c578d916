#!/usr/bin/env bash
# Create training/.venv with the pinned requirements. Idempotent.
# Usage: training/setup.sh            (from anywhere)
# Env: PYTHON (default python3), VENV (default training/.venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$here/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r "$here/requirements.txt"
"$VENV/bin/python" -c "import torch, onnx, onnxruntime, skimage; print('training venv ready:', 'torch', torch.__version__, 'onnxruntime', onnxruntime.__version__)"
echo "activate with: source $VENV/bin/activate   (run commands from the repo root)"
