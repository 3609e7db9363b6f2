#!/usr/bin/env bash
# The paper's Table 4 / Table 5 ablations at our scale: five students distilled from one teacher,
# identical in everything (data, seed, schedule, G initialised from the teacher's G) but the one
# setting each row changes, then Gaussian8 ×4 on Set5 and Set14 for the teacher and each student.
#   kd-kl     L1 + KL KD (KDSR)                   kd-l1 / kd-l2   L1 + L1 / L2 KD on D' (Table 5)
#   no-kd     L1 only (the IDE learns from L1)    plain           KL KD, plain 3×3 convs instead of IDR-DDC
# Writes OUT/<row>/ (runs) and RESULTS/ablation.{md,json} (scripts/ablation_table.py).
# Usage: bash scripts/ablation.sh   (env: TEACHER, ITERS, PATCH, BATCH, OUT, RESULTS, ROWS)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
TEACHER=${TEACHER:-models/edge/training/teacher/final.safetensors}
ITERS=${ITERS:-1500}
PATCH=${PATCH:-128}
BATCH=${BATCH:-8}
OUT=${OUT:-runs/ablation}
RESULTS=${RESULTS:-models/edge/ablation}
ROWS=${ROWS:-"kd-kl no-kd plain kd-l1 kd-l2"}
cargo build --release --locked -p kdsr-trainer --bin trainer
T=./target/release/trainer
mkdir -p "$OUT" "$RESULTS"
common=(--config cpu-edge --stage student --teacher "$TEACHER" -q
  --set "student.iterations=$ITERS" --set "student.decay_every=$((ITERS * 2 / 3))"
  --set "data.hr_patch=$PATCH" --set "data.batch_size=$BATCH"
  --set run.val_every=0 --set "run.save_every=$ITERS")
for row in $ROWS; do
  case $row in
    kd-kl) extra=() ;;
    no-kd) extra=(--set student.kd_weight=0) ;;
    plain) extra=(--set 'model.block_conv="plain"') ;;
    kd-l1) extra=(--set 'student.kd="l1"') ;;
    kd-l2) extra=(--set 'student.kd="l2"') ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  if [ ! -f "$OUT/$row/student/final.safetensors" ]; then
    echo "== $row: training $ITERS iterations"
    "$T" train "${common[@]}" "${extra[@]}" --out "$OUT/$row" --resume
  fi
  "$T" eval --weights "$OUT/$row/student/final.safetensors" --data data/Set5 data/Set14 \
    --out "$OUT/eval-$row"
done
"$T" eval --weights "$TEACHER" --data data/Set5 data/Set14 --out "$OUT/eval-teacher"
python3 scripts/ablation_table.py "$OUT" "$RESULTS" "$TEACHER" "$ITERS" "$PATCH" "$BATCH" $ROWS
