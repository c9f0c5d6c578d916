#!/usr/bin/env bash
# Property-based API test: schemathesis (PyPI) generates requests from openapi/openapi.json and
# sends them to a live service, with every check (--checks all): no 5xx, every status, content
# type, header and body as the document says, schema-valid requests accepted, invalid ones
# refused. Image answers are decoded and compared with the request image
# (scripts/schemathesis_hooks.py, which also turns the bytes of schema-valid requests into real
# images: JSON Schema cannot say "an image").
#
#   scripts/schemathesis.sh
#
# Installs schemathesis and Pillow (scripts/schemathesis-requirements.txt) into
# .venv-schemathesis/ (ignored) on first run; later runs reuse it.
#
# Environment:
#   COLORIZER_BIN             the service binary (default target/debug/colorizer); it serves its
#                             embedded models, the ones the committed openapi/openapi.json lists
#   SCHEMATHESIS_VENV         where to install (default <repo>/.venv-schemathesis)
#   SCHEMATHESIS_MAX_EXAMPLES examples per operation and phase (default 60)
#   SCHEMATHESIS_SEED         the generation seed (default fixed, so runs repeat)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV=${SCHEMATHESIS_VENV:-$ROOT/.venv-schemathesis}
REQ=$ROOT/scripts/schemathesis-requirements.txt
BIN=${COLORIZER_BIN:-target/debug/colorizer}
PYTHON=${PYTHON:-python3}

want=$(sha256sum "$REQ" | cut -d' ' -f1)
have=$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)
if [ ! -x "$VENV/bin/schemathesis" ] || [ "$have" != "$want" ]; then
  echo "==> installing schemathesis into $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  echo "$want" >"$VENV/.requirements.sha256"
fi

[ -x "$BIN" ] || { echo "$BIN not found: cargo build (or set COLORIZER_BIN)" >&2; exit 1; }
port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
log=$(mktemp)
"$BIN" serve --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 300); do
  curl -sf "$url/readyz" >/dev/null && break
  kill -0 $pid 2>/dev/null || { echo "the service exited:"; cat "$log"; exit 1; }
  sleep 0.1
done
curl -sf "$url/readyz" >/dev/null || { echo "the service did not become ready:"; cat "$log"; exit 1; }

# The committed document is what this service serves (same models, same version).
curl -sf "$url/openapi.json" | "$VENV/bin/python" -c '
import json, sys
served, committed = json.load(sys.stdin), json.load(open("openapi/openapi.json"))
sys.exit(0 if served == committed else "the served /openapi.json differs from openapi/openapi.json")'

status=0
PYTHONPATH=$ROOT/scripts SCHEMATHESIS_HOOKS=schemathesis_hooks COLORIZER_URL=$url \
  "$VENV/bin/schemathesis" run openapi/openapi.json --url "$url" --checks all \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-60}" --seed "${SCHEMATHESIS_SEED:-20251127}" \
  --request-timeout 60 --no-color || status=$?

# No request may have made the service log an internal error.
if grep -E "internal error|panicked" "$log"; then
  echo "the service logged internal errors (above)"
  status=1
fi
exit $status
