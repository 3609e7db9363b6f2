#!/usr/bin/env bash
# The kdsr benchmark run: the criterion benches of the tract runtime, then onnxruntime on the same
# ONNX files and inputs, then the table of both (target/tmp/kdsr-bench/table.md).
# Usage: bash benches/criterion.sh [criterion args, e.g. a filter: 320x180]
# Env: KDSR_BENCH_THREADS (default 2,1: the same counts for tract and onnxruntime),
#      KDSR_BENCH_MODEL (model prefix, default models/edge/student-edge), ORT_ITERS (default 10).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
python -c 'import onnxruntime, numpy' 2>/dev/null || pip install --quiet onnxruntime numpy
target=$(cargo metadata --no-deps --format-version 1 |
  python -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) CPUs)"
cargo bench -p kdsr-benches --bench upscale -- "$@"
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"
python benches/ort_bench.py "$target/tmp/kdsr-bench" --criterion "$target/criterion" \
  --iters "${ORT_ITERS:-10}"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
