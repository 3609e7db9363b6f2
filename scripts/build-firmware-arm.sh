#!/usr/bin/env bash
# Cross-builds the firmware examples (kdsr-firmware-examples: the library and its examples
# display-st7789-upscale, display-ssd1306-degradation-meter, simulator-upscale) for the
# Raspberry Pi targets: aarch64 (64-bit Raspberry Pi OS) and armv7 (32-bit). Installs what is
# missing (idempotent), as scripts/test-arm.sh does: the Rust targets and the Debian cross
# compilers. Linkers and CC/AR for tract-linalg are set in .cargo/config.toml. Nothing is run:
# the displays are not here.
# Usage: bash scripts/build-firmware-arm.sh [aarch64|armv7|all] [--release]   (default: all, dev)
# The dev profile (dependencies optimized) is the CI check and shares tract's ARM build with
# scripts/test-arm.sh; --release makes the binaries to copy to the board:
# target/<triple>/release/examples/<name> (target/<triple>/debug/examples/<name> without it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
which_arch="${1:-all}"
# The dev check builds the runtime library with its default features (the `cli` one is kdsr-edge's),
# as scripts/test-arm.sh's build did, so it links that build instead of compiling kdsr-runtime once
# more (CI's firmware phase: 116 s before, 29 s after, 2026-12-05). The library without `cli`, what
# the firmware links on a board, is compiled on x86-64 by the Python package's build
# (scripts/test.sh), and its code does not depend on the architecture. --release builds exactly
# what a board gets.
args=(--features kdsr-runtime/default)
[[ "${2:-}" == "--release" ]] && args=(--release)

# shellcheck source=scripts/arm-toolchain.sh
source scripts/arm-toolchain.sh

build() {
  local target=$1 start=$SECONDS
  echo "== $target: cargo build -p kdsr-firmware-examples --examples ${args[*]}"
  cargo build -p kdsr-firmware-examples --examples --target "$target" --locked "${args[@]}"
  echo "== $target: built in $((SECONDS - start)) s"
}
case "$which_arch" in
  aarch64) build aarch64-unknown-linux-gnu ;;
  armv7) build armv7-unknown-linux-gnueabihf ;;
  all)
    build aarch64-unknown-linux-gnu
    build armv7-unknown-linux-gnueabihf
    ;;
  *) echo "usage: $0 [aarch64|armv7|all] [--release]" >&2; exit 2 ;;
esac
