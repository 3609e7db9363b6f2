#!/usr/bin/env bash
# Why the edge teacher's IDR ignores the blur, measured: teachers of the edge preset trained from
# scratch for ITERS iterations, identical (data, seed, schedule) but for one setting per row, each
# then measured with `trainer idr-plot` (B100 crops at σ 1.2 / 2.4 / 3.6: η² of D and the
# leave-one-out σ accuracy; the IDR swap test σ 1.8 ↔ 3.2 on Set14) and `trainer eval`
# (Gaussian8 on Set5 and Set14).
#   paper         the paper recipe: one kernel per batch, L1 only
#   per-sample    one kernel per sample (degradation.per_sample)
#   regress       per-sample + D[0] regressed on the normalised σ (idr.regress_weight 1)
#   regress-consistency  per-sample pairs + regression + pair consistency of D
#   precondition  per-sample + the IDE's first conv preconditioned (idr.precondition)
#   blind         per-sample pairs + precondition + regression + consistency (cpu-edge-blind)
# Writes OUT/<row>/ (runs, idr-plot and eval files) and RESULTS/idr-variants.{md,json}.
# Usage: bash scripts/idr-variants.sh   (env: ITERS, PATCH, BATCH, THREADS, JOBS, OUT, RESULTS, ROWS)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
ITERS=${ITERS:-1500}
PATCH=${PATCH:-128}
BATCH=${BATCH:-8}
THREADS=${THREADS:-1}
JOBS=${JOBS:-2}
OUT=${OUT:-runs/idr-variants}
RESULTS=${RESULTS:-models/edge/idr-variants}
ROWS=${ROWS:-"paper per-sample regress regress-consistency precondition blind"}
cargo build --release --locked -p kdsr-trainer --bin trainer
T=./target/release/trainer
mkdir -p "$OUT" "$RESULTS"
common=(--stage teacher -q
  --set "teacher.iterations=$ITERS" --set "teacher.decay_every=$((ITERS * 2 / 3))"
  --set "data.hr_patch=$PATCH" --set "data.batch_size=$BATCH"
  --set run.val_every=0 --set "run.save_every=$ITERS" --set "run.threads=$THREADS")
one() {
  local row=$1 extra
  case $row in
    paper) extra=(--config cpu-edge) ;;
    per-sample) extra=(--config cpu-edge --set degradation.per_sample=true) ;;
    regress) extra=(--config cpu-edge --set degradation.per_sample=true --set idr.regress_weight=1) ;;
    regress-consistency) extra=(--config cpu-edge-blind --set idr.precondition=false) ;;
    precondition) extra=(--config cpu-edge --set degradation.per_sample=true --set idr.precondition=true) ;;
    blind) extra=(--config cpu-edge-blind) ;;
    *) echo "unknown row $row" >&2; return 2 ;;
  esac
  if [ ! -f "$OUT/$row/teacher/final.safetensors" ]; then
    echo "== $row: training $ITERS teacher iterations"
    "$T" train "${common[@]}" "${extra[@]}" --out "$OUT/$row" --resume
  fi
  "$T" idr-plot --teacher "$OUT/$row/teacher/final.safetensors" --out "$OUT/$row/idr" 2> "$OUT/$row/idr.log"
  "$T" eval --weights "$OUT/$row/teacher/final.safetensors" --data data/Set5 data/Set14 \
    --out "$OUT/$row/eval" 2> "$OUT/$row/eval.log"
  echo "== $row done"
}
running=0
for row in $ROWS; do
  one "$row" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
python3 scripts/idr_variants_table.py "$OUT" "$RESULTS" "$ITERS" "$PATCH" "$BATCH" $ROWS
