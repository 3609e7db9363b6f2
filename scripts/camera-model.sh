#!/usr/bin/env bash
# Trains, evaluates, exports and banks the camera model (models/edge/camera/, issue 12): the
# `cpu-edge-camera` preset (anisotropic blur, Gaussian/shot noise ≤ 20, JPEG 30–95) on this repo's
# data, on the CPU. Every number of models/edge/camera/README.md comes from this script.
#
# Usage: bash scripts/camera-model.sh [train|post|all]   (default all)
#   train: teacher (2,000 iterations from the blind teacher), student (1,500: 400 of them E_st
#          alone), student fine-tune (3,000 at lr 1e-4) → runs/camera*/
#   post:  copies the fine-tuned student into models/edge/camera/, evaluates it (trainer and
#          kdsr-edge, f32 and int8), exports split f32 / int8 ONNX, makes its bank, plots its IDR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
what=${1:-all}
# shellcheck source=scripts/env.sh
source scripts/env.sh
T=./target/release/trainer
C=./target/release/converter
E=./target/release/kdsr-edge
M=models/edge/camera
P=$M/student-edge-camera
if [[ $what == train || $what == all ]]; then
  cargo build --release --locked -p kdsr-trainer --bin trainer
  $T train --config cpu-edge-camera --stage teacher --out runs/camera \
    --set teacher.pretrain='"models/edge/blind/training/teacher/final.safetensors"' \
    --set teacher.iterations=2000 --set teacher.decay_every=1300 --set data.hr_patch=128 \
    --set run.val_every=500 --set run.save_every=500 --set run.threads=2
  $T train --config cpu-edge-camera --stage student --out runs/camera \
    --teacher runs/camera/teacher/final.safetensors --set student.iterations=1500 \
    --set student.decay_every=800 --set student.encoder_iterations=400 \
    --set student.encoder_lr=1e-3 --set student.encoder_decay_every=100000 \
    --set data.hr_patch=128 --set run.val_every=500 --set run.save_every=500 --set run.threads=2
  $T train --config cpu-edge-camera --stage student --out runs/camera-ft \
    --teacher runs/camera/teacher/final.safetensors \
    --set student.pretrain='"runs/camera/student/final.safetensors"' \
    --set student.iterations=3000 --set student.lr=1e-4 --set student.decay_every=2000 \
    --set student.encoder_iterations=0 --set data.hr_patch=128 \
    --set run.val_every=1000 --set run.save_every=1000 --set run.threads=2
fi
if [[ $what == post || $what == all ]]; then
  cargo build --release --locked -p kdsr-trainer --bin trainer
  cargo build --release --locked -p kdsr-converter -p kdsr-runtime --bins
  mkdir -p $M/training/teacher $M/training/student $M/training/student-ft
  cp runs/camera-ft/student/final.safetensors $P.safetensors
  cp runs/camera-ft/student/final.json $P.json
  for s in teacher student; do
    cp runs/camera/$s/train.toml runs/camera/$s/metrics.jsonl $M/training/$s/
  done
  cp runs/camera/teacher/final.safetensors runs/camera/teacher/final.json $M/training/teacher/
  cp runs/camera-ft/student/train.toml runs/camera-ft/student/metrics.jsonl $M/training/student-ft/
  # The checkpoint in the trainer: Table 2 layout (Set14), camera suite (B100), Gaussian8.
  $T eval --weights $P.safetensors --data data/Set14 --suite aniso-noise --device cpu \
    --out $M/eval-aniso-noise
  $T eval --weights $P.safetensors --data data/B100 --suite camera --device cpu --out $M/eval-camera
  $T eval --weights $P.safetensors --data data/Set5 data/Set14 --suite gaussian8 --device cpu \
    --out $M/eval-gaussian8
  # The shipped Gaussian-only model on the same camera inputs, for the README's comparison.
  $T eval --weights models/edge/student-edge.safetensors --data data/B100 --suite camera \
    --device cpu --out $M/eval-camera-student-edge
  # IDR: σ groups with the swap test, then noise groups (σ 2.0), teacher and student.
  $T idr-plot --teacher $M/training/teacher/final.safetensors --student $P.safetensors \
    --out $M/idr-pca
  $T idr-plot --teacher $M/training/teacher/final.safetensors --student $P.safetensors \
    --noise-levels 0,10,20 --no-swap --out $M/idr-pca-noise
  # ONNX: split f32 and static int8, each verified in tract by the converter.
  $C export --weights $P.safetensors --out $P.onnx --graph split \
    --test-image data/Set5/baby.png --json --report $M/export-split.json
  $C export --weights $P.safetensors --out $M/student-edge-camera-int8.onnx --graph split \
    --quantize int8 --calib-data data/T91 --calib-degrade --calib-percentile 99.99 \
    --exclude G.sub_mean --exclude G.head.0 --exclude G.tail.1 --exclude sr \
    --test-image data/Set5/baby.png --json --report $M/export-split-int8.json
  for m in f32:student-edge-camera int8:student-edge-camera-int8; do
    $E eval -m $M/${m#*:} --data data/B100 --suite camera --threads 2 --out $M/eval-onnx-camera-${m%%:*}
  done
  $E make-bank -m $P -o $P.bank
  cargo run --release --locked -p kdsr-runtime --example bank-accuracy -- $P $P.bank data/B100 100 \
    | tee $M/bank-accuracy.txt
fi
