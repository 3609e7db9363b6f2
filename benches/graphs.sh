# Sourced by benches/run.sh and benches/profile.sh: builds what they run and exports the graphs
# that are not shipped. After sourcing, `kdsr_bench_prepare NAME` sets:
#   py          the Python to use (.venv's when present)
#   target      cargo's target folder
#   dir         $target/tmp/NAME, where the graphs below go
#   folded      DIR/student-edge-folded.onnx: the shipped student-edge folded with the IDR of
#               data/Set14/monarch.png (converter export --graph folded, verified in tract)
#   student_m   DIR/student-m-random.onnx: a dynamic student-M graph of random weights
#               (runtime/examples/random-checkpoint.rs, seed 0), for timing only
# and installs the PyPI packages named in KDSR_BENCH_PIP (missing ones only; a package pip
# cannot install is reported, not fatal).
kdsr_bench_prepare() {
  local pkg
  py=python3
  [ -x .venv/bin/python ] && py=.venv/bin/python
  for pkg in ${KDSR_BENCH_PIP:-numpy onnxruntime onnx}; do
    if [ "$pkg" = pnnx ]; then
      [ -x "$(dirname "$py")/pnnx" ] || command -v pnnx >/dev/null || "$py" -m pip install --quiet pnnx ||
        echo "== warning: pip could not install pnnx"
      continue
    fi
    "$py" -c "import $pkg" 2>/dev/null || "$py" -m pip install --quiet "$pkg" ||
      echo "== warning: pip could not install $pkg; what needs it is reported as not measured"
  done
  # MNN's wheel pulls aliyun-log-python-sdk, which pins protobuf < 6 and so breaks `import onnx`
  # (onnx 1.23 needs protobuf ≥ 6.31.1; benches/profile.py imports it); MNN itself runs with
  # the newer protobuf (benches/run.sh, 2026-12-04), so put it back.
  case " ${KDSR_BENCH_PIP:-numpy onnxruntime onnx} " in
    *" onnx "*)
      "$py" -c "import onnx" 2>/dev/null || "$py" -m pip install --quiet "protobuf>=6.31.1" ||
        echo "== warning: pip could not restore protobuf for onnx"
      ;;
  esac
  PATH="$(cd "$(dirname "$py")" && pwd):$PATH"
  export PATH
  nice -n "${KDSR_BENCH_NICE:-0}" cargo build --release --quiet -p kdsr-runtime \
    --bin kdsr-edge --example random-checkpoint --example profile
  target=$(cargo metadata --no-deps --format-version 1 |
    "$py" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  dir="$target/tmp/$1"
  mkdir -p "$dir"
  folded="$dir/student-edge-folded.onnx"
  student_m="$dir/student-m-random.onnx"
  # The converter builds on its own (with kdsr-runtime in the same cargo call, tract's features
  # differ and all of tract is rebuilt), and only when a graph is missing.
  if [ ! -f "$folded" ] || [ ! -f "$student_m" ]; then
    nice -n "${KDSR_BENCH_NICE:-0}" cargo build --release --quiet -p kdsr-converter --bin converter
  fi
  if [ ! -f "$folded" ] || [ "$folded" -ot models/edge/student-edge.safetensors ]; then
    "$target/release/converter" export --weights models/edge/student-edge.safetensors \
      --graph folded --image data/Set14/monarch.png --out "$folded" --no-bench >/dev/null
  fi
  if [ ! -f "$student_m" ]; then
    "$target/release/examples/random-checkpoint" student-m "$dir/student-m-random.safetensors" 0
    "$target/release/converter" export --weights "$dir/student-m-random.safetensors" \
      --graph dynamic --out "$student_m" --no-bench >/dev/null
  fi
}
