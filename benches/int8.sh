#!/usr/bin/env bash
# float32 against int8 (QDQ) in kdsr-edge, interleaved: the shipped student-edge split SR graph
# (`--no-ide`) and its int8 twin, each with kdsr-edge's default ops, with the default but
# without `qdq` (the QDQ chains left to tract), and with tract's own ops only
# (KDSR_EDGE_OPS=none), at 1 and 2 threads. Prints a markdown table: the minimum over the
# rounds of each call's median of 3 runs, and int8's ratio to float32 with the same ops. Where
# the CPU has AMX bf16, also the float32 graph with `--precision bf16` (default ops), and its
# ratio to float32. README's "Reduced precision" section comes from it.
# Usage: bash benches/int8.sh [ROUNDS] [WxH]   (default 3 rounds, 320x180)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-3}
size=${2:-320x180}
cargo build --release --quiet -p kdsr-runtime --bin kdsr-edge
bin=target/release/kdsr-edge
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ops_sets=("default|" "without qdq|depth-to-space,winograd" "tract's ops only|none")
grep -qw amx_bf16 /proc/cpuinfo && ops_sets+=("bf16|")
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)" >&2
for r in $(seq "$rounds"); do
  for t in 1 2; do
    for o in "${ops_sets[@]}"; do
      IFS='|' read -r name ops <<<"$o"
      precision=f32
      [ "$name" = bf16 ] && precision=bf16
      for m in student-edge student-edge-int8; do
        [ "$name" = bf16 ] && [ "$m" = student-edge-int8 ] && continue
        if [ -n "$ops" ]; then export KDSR_EDGE_OPS=$ops; else unset KDSR_EDGE_OPS; fi
        "$bin" bench -m "models/edge/$m" --no-ide --size "$size" --threads "$t" \
          --direct-spatial auto --precision "$precision" --iters 3 --json >"$out/$r-$t-${name// /_}-$m.json"
      done
    done
  done
  echo "round $r/$rounds, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
unset KDSR_EDGE_OPS
"$py" - "$out" "$rounds" "$size" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import glob, json, os, sys
out, rounds, size, load = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
best = {}
for f in glob.glob(os.path.join(out, "*.json")):
    r, t, ops, model = os.path.basename(f)[:-5].split("-", 3)
    d = json.load(open(f))
    ms = (d["results"] if isinstance(d, dict) else d)[0]["median_ms"]
    key = (int(t), ops.replace("_", " "), model)
    best[key] = min(best.get(key, ms), ms)
print(f"split SR graph, LR {size}, `kdsr-edge bench --no-ide --direct-spatial auto --iters 3`, "
      f"{rounds} interleaved rounds, minimum of the medians (ms); load after {load}.\n")
print("| ops | threads | float32 | int8 QDQ | int8 / float32 |")
print("|---|---|---|---|---|")
for ops in ["default", "without qdq", "tract's ops only"]:
    for t in (1, 2):
        f, q = best[(t, ops, "student-edge")], best[(t, ops, "student-edge-int8")]
        print(f"| {ops} | {t} | {f:.0f} | {q:.0f} | {q / f:.2f}× |")
if any(k[1] == "bf16" for k in best):
    print("\n| ops | threads | float32 | `--precision bf16` (AMX) | bf16 / float32 |")
    print("|---|---|---|---|---|")
    for t in (1, 2):
        f, b = best[(t, "default", "student-edge")], best[(t, "bf16", "student-edge")]
        print(f"| default | {t} | {f:.0f} | {b:.0f} | {b / f:.2f}× |")
PY
