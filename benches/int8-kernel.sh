#!/usr/bin/env bash
# tract-linalg 0.23.9's int8 product kernel on x86-64 AVX2 (`avx2_mmm_i32_8x8`, the one a CPU
# without VNNI gets) against its float32 one, as published and with the kernel's legacy-SSE
# loads (`movq`, `movd`, `pinsrd` into xmm registers among AVX2 instructions) changed to their
# VEX forms in a copy; and the cost of one such load in an AVX2 loop. README, "Reduced
# precision", has the numbers. Nothing of the workspace changes: both builds are made in a
# temporary folder (benches/int8-kernel/main.rs, with the workspace's Cargo.lock).
#
# Usage: bash benches/int8-kernel.sh     (x86-64 with AVX2; ~5 minutes, two builds of tract-linalg)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $(uname -m) == x86_64 ]] || { echo "int8-kernel.sh: x86-64 only" >&2; exit 1; }
grep -q avx2 /proc/cpuinfo || { echo "int8-kernel.sh: this CPU has no AVX2" >&2; exit 1; }
cargo fetch --locked >/dev/null # tract-linalg's source into cargo's registry
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/tract-linalg-0.23.9 | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src" "$work/tract-linalg-vex"
chmod -R u+w "$work/tract-linalg-vex"
kernel=x86_64/fma/avx2_mmm_i32_8x8.S.j2
sed -i -E 's/^(\s*)movq(\s+xmm)/\1vmovq\2/; s/^(\s*)movd(\s+xmm)/\1vmovd\2/;
  s/^(\s*)pinsrd(\s+)(xmm[0-9]+),/\1vpinsrd\2\3, \3,/' "$work/tract-linalg-vex/$kernel"
echo "== the copy's changes to $kernel:"
diff "$src/$kernel" "$work/tract-linalg-vex/$kernel" | grep '^[<>]' || true
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for variant in published vex; do
  d="$work/$variant"
  mkdir -p "$d/src"
  cp benches/int8-kernel/main.rs "$d/src/main.rs"
  cp Cargo.lock "$d/"
  cat > "$d/Cargo.toml" <<EOF
[package]
name = "int8-kernel"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
tract-linalg = "=0.23.9"
tract-data = "=0.23.9"
EOF
  if [[ $variant == vex ]]; then
    printf '\n[patch.crates-io]\ntract-linalg = { path = "../tract-linalg-vex" }\n' >> "$d/Cargo.toml"
  fi
  echo "== tract-linalg 0.23.9, $variant"
  (cd "$d" && CARGO_TARGET_DIR="$work/target" cargo run --release -q)
done
