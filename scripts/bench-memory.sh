#!/usr/bin/env bash
# Peak memory and time of `kdsr-edge upscale` on a 1920x1080 input (x4 -> 7680x4320) under the
# default 512 MiB budget, plus the latency of every graph kind at LR 320x180 (WxH) with tract's direct
# spatial convolution on and off (`kdsr-edge bench`).
#
# Models: the official tiny student weights (the RANDOM initialisation of the reference vectors)
# and, with --edge, a student-edge checkpoint of RANDOM weights (examples/random-checkpoint.rs).
# Neither is a trained model: these numbers measure the runtime, not picture quality.
# Usage: bash scripts/bench-memory.sh [--edge] [OUTDIR]   (default OUTDIR: target/bench-memory)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
edge=0
if [[ "${1:-}" == "--edge" ]]; then edge=1; shift; fi
out="${1:-target/bench-memory}"
mkdir -p "$out"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

cargo build --release --locked -p kdsr-runtime -p kdsr-converter --bins \
  --example tile-image --example random-checkpoint
bin=target/release
"$bin/examples/tile-image" data/Set14/baboon.png 1920 1080 "$out/1080p.png"

models=()
weights=tests/fixtures/reference/vectors/small_student_weights.safetensors
"$bin/converter" export --config student-tiny --weights "$weights" --graph split \
  --out "$out/tiny-random-init" --no-bench >/dev/null
"$bin/converter" export --config student-tiny --weights "$weights" --graph dynamic \
  --out "$out/tiny-random-init-dynamic.onnx" --no-bench >/dev/null
"$bin/converter" export --config student-tiny --weights "$weights" --graph folded \
  --image tests/fixtures/reference/vectors-pipeline/in_img.png \
  --out "$out/tiny-random-init-folded.onnx" --no-bench >/dev/null
models+=("$out/tiny-random-init")
bench_models=(-m "$out/tiny-random-init" -m "$out/tiny-random-init-dynamic.onnx" -m "$out/tiny-random-init-folded.onnx")
if ((edge)); then
  "$bin/examples/random-checkpoint" student-edge "$out/edge-RANDOM.safetensors"
  "$bin/converter" export --weights "$out/edge-RANDOM.safetensors" --graph split \
    --out "$out/edge-RANDOM" --no-bench >/dev/null
  "$bin/converter" export --weights "$out/edge-RANDOM.safetensors" --graph dynamic \
    --out "$out/edge-RANDOM-dynamic.onnx" --no-bench >/dev/null
  "$bin/converter" export --weights "$out/edge-RANDOM.safetensors" --graph folded \
    --image tests/fixtures/reference/vectors-pipeline/in_img.png \
    --out "$out/edge-RANDOM-folded.onnx" --no-bench >/dev/null
  models+=("$out/edge-RANDOM")
  bench_models+=(-m "$out/edge-RANDOM" -m "$out/edge-RANDOM-dynamic.onnx" -m "$out/edge-RANDOM-folded.onnx")
fi

echo "== 1920x1080 x4, default --mem-budget 512, all cores"
for m in "${models[@]}"; do
  /usr/bin/time -f "$(basename "$m"): max RSS %M KiB, wall %e s" \
    "$bin/kdsr-edge" upscale -i "$out/1080p.png" -o "$out/1080p-x4-$(basename "$m").png" -m "$m" \
    --json >"$out/$(basename "$m").json"
  grep -E '"tiles"|"peak_rss_mib"' "$out/$(basename "$m").json"
done

echo "== latency at LR 320x180, 1 thread, direct spatial on/off"
"$bin/kdsr-edge" bench "${bench_models[@]}" --size 320x180 --iters 5 --threads 1
