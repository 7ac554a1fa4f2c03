#!/usr/bin/env bash
# One leased-GPU call: continue the prior with two recipes side by side for BUDGET seconds each and copy every
# run's resumable state (last.pt, log.jsonl, train.log) to $OUT. Benchmark the results afterwards on any machine:
#   python benchmarks/prior_structure.py --n 8 --checkpoint OUT/<recipe>_last.pt
# Usage: OUT=dir BUDGET=470 [INIT=checkpoint] bash benchmarks/gpu_train.sh: from INIT (default the shipped weights),
# a density-balanced continuation beside one that draws more low noise levels (edit RECIPES for others).
# Needs XANESGEN_DATA (the a-C folder) and the package importable.
set -u
OUT=${OUT:-out}; BUDGET=${BUDGET:-470}; INIT=${INIT:-ase_xanesgen/weights/prior.pt}; PY=${PY:-python3}
BATCH=${BATCH:-32}; mkdir -p "$OUT" runs
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
declare -A RECIPES=(
  [balanced]="--lr 1e-4"
  [lowt]="--lr 1e-4 --t-power 1.5"
)
for name in "${!RECIPES[@]}"; do
  rm -rf "runs/gpu_$name"  # a left-over last.pt would be resumed instead of starting from INIT
  $PY -m ase_xanesgen.cli.main train prior --out "runs/gpu_$name" --init "$INIT" --batch-size "$BATCH" \
    --steps 1000000 --time-budget "$BUDGET" --val-every 500 ${RECIPES[$name]} > "runs/gpu_$name.log" 2>&1 &
done
wait
for name in "${!RECIPES[@]}"; do
  echo "== $name: ${RECIPES[$name]}"; tr '\r' '\n' < "runs/gpu_$name.log" | grep -E "time budget|resumed|Error"
  tail -n 2 "runs/gpu_$name/log.jsonl"
  cp "runs/gpu_$name/last.pt" "$OUT/${name}_last.pt"; cp "runs/gpu_$name/log.jsonl" "$OUT/${name}_log.jsonl"
  cp "runs/gpu_$name.log" "$OUT/${name}_train.log"
done
