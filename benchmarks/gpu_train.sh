#!/usr/bin/env bash
# One leased-GPU session: train several prior recipes side by side on one GPU for BUDGET seconds,
# then run the structure benchmark on each. Usage: OUT=dir BUDGET=360 bash benchmarks/gpu_train.sh
# Needs XANESGEN_DATA (the a-C folder) and the package importable.
set -u
OUT=${OUT:-out}; BUDGET=${BUDGET:-360}; PY=${PY:-python3}; mkdir -p "$OUT" runs
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
declare -A RECIPES=(
  [A]="--sigma-max 0.8 --t-power 1"
  [B]="--sigma-max 0.8 --t-power 2"
  [C]="--sigma-max 1.5 --t-power 2"
)
for name in "${!RECIPES[@]}"; do
  $PY -m ase_xanesgen.cli.main train prior --out "runs/gpu_$name" --batch-size 32 --width 128 --layers 4 \
    --time-budget "$BUDGET" --val-every 1000 ${RECIPES[$name]} > "runs_$name.log" 2>&1 &
done
wait
for name in "${!RECIPES[@]}"; do
  tail -n 3 "runs_$name.log"
  $PY benchmarks/prior_structure.py --checkpoint "runs/gpu_$name/model.pt" ${BENCH_ARGS:---n 8 --large 4096} --json "runs/gpu_$name/bench.json" \
    > "runs/gpu_$name/bench.txt" 2>&1 &
done
wait
for name in "${!RECIPES[@]}"; do
  echo "== recipe $name: ${RECIPES[$name]}"; cat "runs/gpu_$name/bench.txt"; tail -n 2 "runs/gpu_$name/log.jsonl"
  cp "runs_$name.log" "runs/gpu_$name/train.log"
  tar -C runs -cf "$OUT/gpu_$name.tar" "gpu_$name"
done
