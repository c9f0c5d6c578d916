#!/usr/bin/env bash
# Where does the service's CPU go under load, next to raw ORT? Sampling profile with perf
# (software event cpu-clock: this VM has no hardware counters, `perf stat -e instructions`
# says <not supported>), by shared object and by symbol, for:
#   1. the service (pool 2 x 1 thread) under oha c=8 with a 256x256 JPEG, and
#   2. bench/ort-raw 2 sessions x 1 thread (Session::run only).
# Usage: bench/profile.sh [SERVICE_BIN] [SECONDS]   (run bench/run.sh once first: it builds)
# Output: bench/out/profile-<time>/{service,raw}.{dso,sym}.txt and perf.data files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${1:-target/release/colorizer}
secs=${2:-15}
default_model=models/colorizer.onnx
[ -e "$default_model" ] || default_model=tests/fixtures/untrained-colorizer.onnx
model=${BENCH_MODEL:-$default_model}
out=bench/out/profile-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
img=bench/out/images/gray_256.jpg
[ -f "$img" ] || { echo "missing $img: run bench/run.sh --quick once"; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --host 127.0.0.1 --port "$port" --pool-size 2 --threads 1 --queue 64 --no-embedded-models --model "bench=$model" \
  >"$out/service.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.05; done
bench/out/tools/bin/oha --no-tui -z 2s -c 8 -m POST -D "$img" -T image/jpeg "http://127.0.0.1:$port/colorize" >/dev/null
perf record -e cpu-clock -F 499 -g -p "$pid" -o "$out/service.perf.data" -- sleep "$secs" >"$out/perf-record.log" 2>&1 &
ppid=$!
bench/out/tools/bin/oha --no-tui -z "${secs}s" -c 8 -m POST -D "$img" -T image/jpeg "http://127.0.0.1:$port/colorize" >"$out/oha.txt"
wait $ppid || true
kill $pid; wait $pid 2>/dev/null || true
trap - EXIT
perf report -i "$out/service.perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^$' | head -40 >"$out/service.dso.txt"
perf report -i "$out/service.perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^$' | head -80 >"$out/service.sym.txt"


perf record -e cpu-clock -F 499 -g -o "$out/raw.perf.data" -- bench/out/ort-raw-target/release/ort-raw --model "$model" \
  --lib .ort/libonnxruntime.so.1.31.1 --sessions 2 --threads 1 --seconds "$secs" >"$out/raw.json" 2>"$out/perf-raw.log"
perf report -i "$out/raw.perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^$' | head -40 >"$out/raw.dso.txt"
perf report -i "$out/raw.perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^$' | head -60 >"$out/raw.sym.txt"
echo "$out"
grep -E "Requests/sec|Success rate" "$out/oha.txt" || true
cat "$out/raw.json"
