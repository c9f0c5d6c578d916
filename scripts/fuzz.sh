#!/usr/bin/env bash
# Fuzzes the pipeline entry (bytes in -> colorized bytes out, ONNX Runtime replaced by fixed
# logits) with cargo fuzz / libFuzzer for a bounded time, seeded with the hostile-input corpus,
# and writes docs/reliability/FUZZ.md.
#
#   scripts/fuzz.sh [SECONDS]      (default 300)
#
# cargo-fuzz needs nightly-only rustc flags; on the stable toolchain RUSTC_BOOTSTRAP=1 allows them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-300}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
scripts/build-deps.sh
export RUSTC_BOOTSTRAP=1
seeds=fuzz/corpus/pipeline
mkdir -p "$seeds" fuzz/artifacts/pipeline
FUZZ_SEEDS_DIR="$root/$seeds" cargo test --test api hostile::write_fuzz_seeds -q >/dev/null
nseeds=$(ls "$seeds" | wc -l)
log=$(mktemp)
set +e
cargo fuzz run pipeline "$seeds" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=262144 -timeout=20 -print_final_stats=1 2>&1 | tee "$log" | grep -E "^#[0-9]+.*(pulse|DONE|NEW)" | tail -n 3
status=${PIPESTATUS[0]}
set -e
execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
peak=$(grep -oE 'stat::peak_rss_mb: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
corpus_n=$(ls "$seeds" | wc -l)
crashes=$(ls fuzz/artifacts/pipeline | wc -l)
result="no crash, no timeout, no out-of-memory"
[ "$status" -eq 0 ] || result="FAILED (libFuzzer exit $status): see fuzz/artifacts/pipeline and the log"
{
  echo "# Fuzzing the pipeline"
  echo
  echo "Target \`fuzz/fuzz_targets/pipeline.rs\`: arbitrary bytes through \`pipeline::prepare_with\` (decode with"
  echo "limits, EXIF orientation, L, resize) and \`pipeline::finish\` (bin decoding of fixed logits, bilinear"
  echo "upsampling, join with full-resolution L, PNG/JPEG/WebP encoding). libFuzzer via cargo fuzz, with"
  echo "AddressSanitizer, seeded with the $nseeds raw bodies of the hostile-input corpus (\`tests/api/corpus.rs\`)."
  echo
  echo "Reproduce: \`scripts/fuzz.sh $secs\`"
  echo
  echo "| figure | value |"
  echo "| --- | --- |"
  echo "| run on | $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) |"
  echo "| time | $secs s |"
  echo "| executions | $execs ($speed/s) |"
  echo "| coverage (edges) | $cov |"
  echo "| corpus after the run | $corpus_n inputs |"
  echo "| peak RSS | $peak MB |"
  echo "| crash artifacts | $crashes |"
  echo "| result | $result |"
} > docs/reliability/FUZZ.md
cat docs/reliability/FUZZ.md
exit "$status"
