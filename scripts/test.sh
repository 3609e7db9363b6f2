#!/usr/bin/env bash
# The project's test command (README): installs libtorch into .venv if needed, runs every test of
# the workspace, then cross-checks every ONNX graph the converter tests exported with onnxruntime,
# then builds the `kdsr` Python package into .venv (maturin develop) and runs its pytest tests
# (test_ray.py: the Ray Data example on a local Ray, against kdsr-edge).
# Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-libtorch.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
# onnxruntime pinned: converter/tests/ort_check.py compares its int8 integer kernels with tract,
# and what they compute changes with its versions and the CPU (converter/README.md).
python -c 'import onnxruntime, numpy, safetensors, maturin, pytest, PIL
assert onnxruntime.__version__ == "1.32.0"' 2>/dev/null \
  || pip install --quiet onnxruntime==1.32.0 numpy safetensors maturin pytest pillow
# Ray Data for python/tests/test_ray.py (python/examples/ray_upscale.py), the version tested
# (needs CPython >= 3.10; ~33 s and ~500 MB into a fresh venv here: ray, pyarrow, pandas).
python -c 'import ray, ray.data; assert ray.__version__ == "2.60.0"' 2>/dev/null \
  || pip install --quiet "ray[data]==2.60.0"
export KDSR_ORT_DIR="$PWD/target/ort-check"
rm -rf "$KDSR_ORT_DIR"
cargo test --workspace --locked "$@"
python converter/tests/ort_check.py "$KDSR_ORT_DIR"
(cd python && VIRTUAL_ENV="$PWD/../.venv" maturin develop --quiet)
KDSR_EDGE="$PWD/target/debug/kdsr-edge" python -m pytest -q python/tests
