#!/usr/bin/env bash
# Runs every test of the project on a fresh machine, installing what it needs on the way:
# ONNX Runtime (PyPI wheel), the Rust tests, the training tests (PyTorch venv), the deployment
# linters and checks, schemathesis against the OpenAPI document and the live service
# (scripts/schemathesis.sh), the memory test of the release binary (18 concurrent 48-megapixel
# uploads), the browser test of the demo page, and the container image built and run with podman
# and scraped by Prometheus (scripts/container-test.sh). Exit status non-zero if any fails.
#
#   scripts/test.sh            everything
#   SKIP=training,browser scripts/test.sh   skip some parts
#                              (rust, training, deploy, schema, memory, browser, container)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
skip=",${SKIP:-},"
failed=()
passed=()
step() {
  local name=$1
  shift
  if [[ $skip == *",$name,"* ]]; then
    echo "=== $name: skipped (SKIP)"
    return
  fi
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then
    passed+=("$name")
    echo "=== $name: ok ($((SECONDS - t0)) s)"
  else
    failed+=("$name")
    echo "=== $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

rust() {
  scripts/build-deps.sh && scripts/fetch-ort.sh && cargo build --locked && cargo test --locked --no-fail-fast
}

training() {
  training/setup.sh && training/.venv/bin/python -m pytest -q training/tests
}

deploy() {
  # The deploy checks compare metric names with a live /metrics and flags with --help.
  local port=18777 log
  log=$(mktemp)
  ./target/debug/colorizer --host 127.0.0.1 --port $port --no-embedded-models \
    --model fixture=tests/fixtures/untrained-colorizer.onnx >"$log" 2>&1 &
  local pid=$!
  local ok=1
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && ok=0 && break
    sleep 0.1
  done
  if [ $ok -ne 0 ]; then
    echo "service did not become ready:"; cat "$log"; kill $pid; return 1
  fi
  # One request so that every labelled series exists.
  if ! curl -sf -o /dev/null -H 'Content-Type: image/png' --data-binary @web/samples/landscape.png \
      "http://127.0.0.1:$port/colorize" || ! curl -sf "http://127.0.0.1:$port/metrics" >"$log.metrics"; then
    echo "the service did not colorize a sample or serve /metrics:"; cat "$log"; kill $pid; return 1
  fi
  kill $pid; wait $pid 2>/dev/null
  COLORIZER_BIN=target/debug/colorizer COLORIZER_METRICS_FILE="$log.metrics" DEPLOY_TESTS_STRICT=1 scripts/lint-deploy.sh
}

schema() {
  scripts/schemathesis.sh
}

memory() {
  # Peak RSS under big uploads is a property of the optimised build (a debug build takes minutes
  # per 48-megapixel photo); the container part builds the same binary.
  scripts/build-deps.sh && cargo build --release --locked --bin colorizer &&
    COLORIZER_BIN=target/release/colorizer cargo test --locked --test api -- --ignored --exact \
      memory::eighteen_48_megapixel_uploads_stay_under_2_gib --nocapture
}

browser() {
  scripts/install-browser.sh && COLORIZER_BIN=target/debug/colorizer node --test tests/browser/
}

container() {
  scripts/container-test.sh
}

step rust rust
step training training
step deploy deploy
step schema schema
step memory memory
step browser browser
step container container

echo
echo "test parts: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
