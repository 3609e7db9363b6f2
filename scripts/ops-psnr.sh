#!/usr/bin/env bash
# Set5 + Set14 Gaussian8 ×4 PSNR of a model with tract's ops only and with kdsr-edge's own ops
# (runtime/src/ops) under the default tile choice (F(6,3) or F(4,3) by size) and each tile
# fixed: the accuracy check of issue 13 (within 0.01 dB of the plain path); and, where the CPU
# has AMX bf16, with `--precision bf16` (the reduced-precision path: within 0.1 dB). Prints each
# variant's mean PSNR per set, and its largest difference from tract's ops only per image and
# per set mean.
#
#   bash scripts/ops-psnr.sh [MODEL...]   # default: student-edge, the camera model, student-edge-int8
#
# MODEL is what `kdsr-edge eval -m` takes. Needs a release kdsr-edge (cargo build --release -p
# kdsr-runtime; KDSR_EDGE=PATH for another). One thread (-j 1), so that no thread count changes
# the arithmetic. Writes the eval reports under ${OUT:-target/ops-psnr}.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${KDSR_EDGE:-target/release/kdsr-edge}
out=${OUT:-target/ops-psnr}
mkdir -p "$out"
if [ $# -eq 0 ]; then
  set -- models/edge/student-edge models/edge/camera/student-edge-camera \
    models/edge/student-edge-int8
fi
variants=("none:none" "default:depth-to-space,winograd,qdq"
  "f43:depth-to-space,winograd-f43,qdq" "f63:depth-to-space,winograd-f63,qdq")
bf16=no
if grep -qw amx_bf16 /proc/cpuinfo 2>/dev/null; then
  bf16=yes
  variants+=("bf16:depth-to-space,winograd,qdq")
else
  echo "ops-psnr: no AMX bf16 on this CPU: --precision bf16 not measured"
fi
for model in "$@"; do
  tag=$(basename "$model")
  for v in "${variants[@]}"; do
    name=${v%%:*} ops=${v#*:} precision=f32
    [ "$name" = bf16 ] && precision=bf16
    KDSR_EDGE_OPS=$ops "$exe" eval -m "$model" -j 1 --precision $precision --data data/Set5 data/Set14 \
      --suite gaussian8 --out "$out/$tag-$name" > "$out/$tag-$name.log" 2>&1 \
      || { echo "ops-psnr: eval of $model with KDSR_EDGE_OPS=$ops failed, see $out/$tag-$name.log" >&2; exit 1; }
  done
  python3 - "$out" "$tag" "$bf16" <<'PY'
import json, sys
out, tag, bf16 = sys.argv[1:]
def load(v):
    d = json.load(open(f"{out}/{tag}-{v}.json"))
    rows = {}
    for r in d["results"]:
        for row in r["report"]["rows"]:
            rows[(r["set"], row["case"], row["image"])] = row["psnr"]
    means = {r["set"]: r["report"]["mean"][0] for r in d["results"]}
    return rows, means
def sets(means):
    return ", ".join(f"{s} {m:.4f} dB" for s, m in means.items())
base, base_means = load("none")
print(f"{tag}: tract's ops only {sets(base_means)}")
for v in ["default", "f43", "f63"] + (["bf16"] if bf16 == "yes" else []):
    rows, means = load(v)
    assert rows.keys() == base.keys(), "the reports differ in images or cases"
    worst = max(abs(rows[k] - base[k]) for k in base)
    mean_diff = max(abs(means[s] - base_means[s]) for s in base_means)
    label = {"default": "Winograd by size", "bf16": "bf16 on AMX (--precision bf16)"}.get(v, f"Winograd {v}")
    print(f"  own ops, {label}: {sets(means)}; largest per-image difference "
          f"{worst:.1e} dB, of the set means {mean_diff:.1e} dB")
PY
done
