#!/usr/bin/env bash
# Builds the kit that scripts/device/round{1,2}.sh need on a GPU machine that has PyTorch but no
# cargo (this workplace's H200, see README.md here): .dev/ (git-ignored through
# .git/info/exclude) with the stripped trainer as xz, T91 + BSD200 as lossless WebP (checked
# pixel-identical; the trainer reads WebP) and the weights the rounds start from.
# Usage: bash scripts/device/kit.sh [ROUND2-START-WEIGHTS]   (needs Pillow: pip install pillow)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
grep -qx '/.dev/' .git/info/exclude 2>/dev/null || echo '/.dev/' >>.git/info/exclude
cargo build --release --locked -p kdsr-trainer --bin trainer
mkdir -p .dev/data/T91 .dev/data/BSD200 .dev/w
xz -9 -T2 -c target/release/trainer >.dev/trainer.xz
python3 scripts/device/towebp.py
cp models/edge/camera/training/teacher/final.safetensors .dev/w/cam-teacher.safetensors
cp models/edge/camera/training/student-ft2/final.safetensors .dev/w/cam-student.safetensors # ft2 ships its weights
if [ $# -ge 1 ]; then cp "$1" .dev/w/cam2.safetensors; fi
du -sh .dev
