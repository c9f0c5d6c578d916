#!/usr/bin/env bash
# One prepared GPU session for the broad-photo models: the shards (training.pack --out-dir, one
# per device call, each under the ~64 MiB a call carries) arrive over several calls on one warm
# machine; the last call trains three models concurrently on one GPU and returns their weights
# (float16, model only) and logs in $OUT.
#
#   call 1..k-1:  STAGE=copy  bash training/gpu_broad.sh   (carry .gp1, .gp2, ...: copies to $STORE)
#   call k:       STAGE=train bash training/gpu_broad.sh   (carry the last shard + init checkpoint)
#
# Runs (same photos, same budget, batch 256, 112-px crops of 128-px photos, flips, cosine):
#   guided-ft:     --init the guided model's checkpoint (hint-taking Lite0 U-Net), whole encoder
#                  trained (--freeze-groups 0, encoder at 0.25x lr), hints on half the photos
#   guided-frozen: the same with the stem + 5 block groups frozen (as on CPU before)
#   scratch:       ColorNet from scratch (no ImageNet weights), its own empirical prior
#   STAGE=semantic: instead, semantic-loss fine-tunes of the shipped guided-frozen (init_frozen.pt,
#   carried with efficientnet-lite0.pth, the critic's ImageNet weights, as EFFICIENTNET_WEIGHTS_DIR),
#   one per weight in SEM_WEIGHTS (default "1 5"), the critic at SEM_SIZE px (default 224)
#   STAGE=vivid: semantic-loss fine-tunes of the shipped default unfolded from its ONNX file
#   (training.unfold -> init_unfolded.pt), one per NAME:PC:CF[:CRITICS[:WEIGHT]] in VIVID_RUNS, side by
#   side: the semantic loss decodes with prior correction PC, CF weighs the colourfulness gap
#   (--cf-weight), CRITICS (default lite0; e.g. lite0,lite1, their .pth files carried into the store)
#   judge it with WEIGHT (default $SEM_WEIGHT, else 5); VIVID_INIT (a checkpoint in the store) and
#   VIVID_LR override the start and the lr; VIVID_EXTRA, more train args for every run (e.g. the
#   1/2-grid stage with the semantic loss: VIVID_EXTRA="--arch {\"out_stride\":2} --train-only ^fine")
# Local dry run (CPU):  STORE=/tmp/gpstore OUT=/tmp/gout BUDGET=60 LIMIT=64 BATCH=16 STAGE=train bash training/gpu_broad.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_out}"
STORE="${STORE:-/tmp/gpstore}"
BUDGET="${BUDGET:-400}"
LIMIT="${LIMIT:-0}"
PY="${PY:-python3}"
RUNS="${RUNS_DIR:-/tmp/colorizer_runs}"
mkdir -p "$OUT" "$STORE" "$RUNS"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4

for d in .gp*/; do   # whatever this call carried joins the store
  [ -d "$d" ] && cp -n "$d"* "$STORE"/ 2>/dev/null
done
ls -la "$STORE"
if [ "${STAGE:-train}" = copy ]; then
  nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader 2>/dev/null
  exit 0
fi

INIT="$STORE/init_guided.pt"
DATA=()
for f in "$STORE"/part_*.npz; do DATA+=(--data "$f"); done
VAL=()
[ -f "$STORE/val.npz" ] && VAL=(--val "$STORE/val.npz" --val-every-s 60)
common=(--size 128 --crop 112 --input-size 128 --k 5 --sigma 5 --lam 0.5 --batch "${BATCH:-256}"
        --schedule cosine-time --lr 1e-3 --min-lr 1e-6 --warmup-steps 200 --epochs 100000
        --time-budget-s "$BUDGET" --log-every 50 --print-every 200 --checkpoint-every-s 120 "${DATA[@]}" "${VAL[@]}")
[ "$LIMIT" -gt 0 ] && common+=(--limit "$LIMIT" --val-limit "$LIMIT")
{ date; nvidia-smi 2>/dev/null | head -15; $PY -c "import torch,PIL,numpy;print('torch',torch.__version__,'cuda',torch.cuda.is_available(),'PIL',PIL.__version__)"; } > "$RUNS/env.txt" 2>&1
cat "$RUNS/env.txt"

run() {  # name, then train args
  local name=$1; shift
  timeout $((BUDGET + 90)) $PY -m training.train --out "$RUNS/$name" "${common[@]}" "$@" > "$RUNS/$name.out" 2>&1
  echo "$name exit $?" >> "$RUNS/status.txt"
}
if [ "${STAGE:-train}" = semantic ]; then
  # two semantic weights side by side, from the shipped model (guided-frozen, carried as
  # init_frozen.pt), its encoder groups 1-5 frozen as it was trained; the critic sees 224 px
  export EFFICIENTNET_WEIGHTS_DIR="$STORE"
  for w in ${SEM_WEIGHTS:-1 5}; do
    run "semantic-w$w" --init "$STORE/init_frozen.pt" --hints --hint-p-none 0.5 --freeze-groups 5 \
      --encoder-lr-mult 0.25 --lr 3e-4 --warmup-steps 50 --semantic-weight "$w" --semantic-critic lite0 \
      --semantic-size "${SEM_SIZE:-224}" &
  done
elif [ "${STAGE:-train}" = vivid ]; then
  export EFFICIENTNET_WEIGHTS_DIR="$STORE"
  for spec in ${VIVID_RUNS:-pc25:0.25:0 pc25-cf:0.25:1 pc40-cf:0.4:1}; do
    IFS=: read -r name pc cf critics weight <<< "$spec"
    run "$name" --init "$STORE/${VIVID_INIT:-init_unfolded.pt}" --hints --hint-p-none 0.5 --freeze-groups 5 \
      --encoder-lr-mult 0.25 --lr "${VIVID_LR:-3e-4}" --warmup-steps 50 --semantic-weight "${weight:-${SEM_WEIGHT:-5}}" \
      --semantic-critic "${critics:-lite0}" --semantic-size "${SEM_SIZE:-224}" --semantic-prior-correction "$pc" \
      --cf-weight "$cf" ${VIVID_EXTRA:-} &
  done
else
run guided-ft --init "$INIT" --hints --hint-p-none 0.5 --freeze-groups 0 --encoder-lr-mult 0.25 &
run guided-frozen --init "$INIT" --hints --hint-p-none 0.5 --freeze-groups 5 --encoder-lr-mult 0.25 &
run scratch --encoder scratch --lr 2e-3 &
fi
( while sleep 45; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >> "$RUNS/gpu_util.txt" 2>/dev/null; tail -qn1 "$RUNS"/*/train.log 2>/dev/null | cut -c1-150; done ) &
mon=$!
wait $(jobs -p | grep -v "^$mon$") 2>/dev/null
kill $mon 2>/dev/null
for d in "$RUNS"/*/; do   # weights only, float16: the checkpoints with optimizer state are too big to return
  name=$(basename "$d")
  [ -f "$d/last.pt" ] && $PY -c "
import sys, torch
ck = torch.load(sys.argv[1], map_location='cpu', weights_only=False)
ck['model'] = {k: (v.half() if v.is_floating_point() else v) for k, v in ck['model'].items()}
ck.pop('opt', None)
torch.save(ck, sys.argv[2])" "$d/last.pt" "$OUT/$name.pt"
done
cat "$RUNS/status.txt"
tar czf "$OUT/logs.tar.gz" -C "$RUNS" --exclude='*.pt' --exclude='*.tmp' .
ls -la "$OUT"
