#!/usr/bin/env bash
# One prepared GPU call: trains six models concurrently on one GPU from the carried pack
# (.pack/, made by training/pack.py), exports ONNX to $OUT, plus logs.
#   seed schedule (batch 32, lr 1e-3, /10 on plateau < 1e-4, 30 epochs):
#     landscape-seed (CE, intel), l2-seed (L2, intel), general-seed (CE, general+intel)
#   long schedule (batch 128, lr 2e-3 = sqrt(128/32) x 1e-3, 300-step warmup, cosine to 1e-6
#   over the time budget, same data/aug):
#     landscape-long, l2-long, general-long
# Usage on the device:  bash training/gpu_run.sh          (OUT set by the device tool)
#                       ROUND=2 BUDGET=170 bash training/gpu_run.sh   (the second, shorter call)
# Local dry run (CPU):  OUT=/tmp/gout BUDGET=90 LIMIT=64 bash training/gpu_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_out}"
BUDGET="${BUDGET:-440}"          # seconds per training process (includes load + export reserve)
LIMIT="${LIMIT:-0}"              # >0: photos per source (dry runs)
PACK="${PACK:-.pack}"
PY="${PY:-python3}"
RUNS="${RUNS_DIR:-/tmp/colorizer_runs}"
mkdir -p "$OUT" "$RUNS"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
PTS=training/resources/pts_in_hull.npy
{ date; nvidia-smi 2>/dev/null | head -15; $PY -c "import torch,onnx,onnxruntime,PIL;print('torch',torch.__version__,'cuda',torch.cuda.is_available(),'onnx',onnx.__version__,'ort',onnxruntime.__version__,'PIL',PIL.__version__)"; ls -la "$PACK"; } > "$RUNS/env.txt" 2>&1
cat "$RUNS/env.txt"

common=(--pts "$PTS" --size 112 --crop 96 --k 5 --sigma 5 --lam 0.5 --prior empirical
        --time-budget-s "$BUDGET" --log-every 25 --input-size 112)
[ "$LIMIT" -gt 0 ] && common+=(--limit "$LIMIT" --val-limit "$LIMIT")
INTEL=(--data "$PACK/intel.npz" --val "$PACK/intel_val.npz")
GENERAL=(--data "$PACK/general.npz" --data "$PACK/intel.npz" --val "$PACK/general_val.npz")
SEED=(--schedule plateau --batch 32 --lr 1e-3 --epochs 30)
LONG=(--schedule cosine-time --batch 128 --lr 2e-3 --min-lr 1e-6 --warmup-steps 300 --epochs 100000)
D_L="Zhang et al. 313-bin rebalanced-CE colorizer trained on Intel landscapes (buildings, forest, glacier, mountain, sea, street)"
D_G="Zhang et al. 313-bin rebalanced-CE colorizer trained on general photos (faces, people, streets, animals, objects) + Intel landscapes"
D_2="L2 regression baseline (ab head) on the same backbone, trained on Intel landscapes"

run() {  # name, then train args
  local name=$1; shift
  timeout $((BUDGET + 60)) $PY -m training.train --out "$RUNS/$name" --export "$OUT/$name.onnx" "${common[@]}" "$@" \
    > "$RUNS/$name.out" 2>&1
  echo "$name exit $?" >> "$RUNS/status.txt"
}
if [ "${ROUND:-1}" = 2 ]; then
  # round 2 (after round 1 showed overfitting of the long runs): cosine over a fixed epoch count
  COS=(--schedule cosine --batch 128 --lr 2e-3 --min-lr 1e-6 --warmup-steps 100)
  run general-cos16 --head ce "${GENERAL[@]}" "${COS[@]}" --epochs 16 --name colorizer-general --description "$D_G" &
  run general-cos16-inprior --head ce "${GENERAL[@]}" "${COS[@]}" --epochs 16 --prior "$PACK/prior_probs.npy" --name colorizer-general --description "$D_G (ImageNet prior)" &
  run landscape-cos30 --head ce "${INTEL[@]}" "${COS[@]}" --epochs 30 --name colorizer-landscape --description "$D_L" &
  run l2-cos30 --head l2 "${INTEL[@]}" "${COS[@]}" --epochs 30 --name colorizer-l2 --description "$D_2" &
else
run landscape-seed --head ce "${INTEL[@]}" "${SEED[@]}" --name colorizer-landscape --description "$D_L" &
run l2-seed --head l2 "${INTEL[@]}" "${SEED[@]}" --name colorizer-l2 --description "$D_2" &
run general-seed --head ce "${GENERAL[@]}" "${SEED[@]}" --name colorizer-general --description "$D_G" &
run landscape-long --head ce "${INTEL[@]}" "${LONG[@]}" --name colorizer-landscape --description "$D_L" &
run l2-long --head l2 "${INTEL[@]}" "${LONG[@]}" --name colorizer-l2 --description "$D_2" &
run general-long --head ce "${GENERAL[@]}" "${LONG[@]}" --name colorizer-general --description "$D_G" &
fi
( while sleep 60; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >> "$RUNS/gpu_util.txt" 2>/dev/null || break; tail -qn1 "$RUNS"/*/train.log 2>/dev/null | cut -c1-160; done ) &
mon=$!
wait $(jobs -p | grep -v "^$mon$") 2>/dev/null
kill $mon 2>/dev/null
# fallback: any run whose ONNX export failed returns its weights (fp16) instead
for d in "$RUNS"/*/; do
  name=$(basename "$d")
  if [ ! -s "$OUT/$name.onnx" ] && [ -f "$d/last.pt" ]; then
    $PY -c "import torch,sys; ck=torch.load(sys.argv[1],map_location='cpu',weights_only=False); torch.save({'model':{k:(v.half() if v.is_floating_point() else v) for k,v in ck['model'].items()},'config':ck['config'],'prior':ck['prior'],'args':ck['args'],'state':{k:ck['state'][k] for k in ('epoch','step','lr')}}, sys.argv[2])" "$d/last.pt" "$OUT/$name.pt"
  fi
done
cat "$RUNS/status.txt"
tar czf "$OUT/logs.tar.gz" -C "$RUNS" --exclude='*.pt' --exclude='*.tmp' .
ls -la "$OUT"
