#!/usr/bin/env bash
# Cross-builds kdsr-runtime (library, kdsr-edge, tests) for aarch64 and armv7 Linux and runs the
# tests under qemu-user. Installs what is missing (idempotent): the Rust targets, the Debian
# cross compilers and qemu-user. Linkers and runners are set in .cargo/config.toml.
# Usage: bash scripts/test-arm.sh [aarch64|armv7|all] [--full|--check]   (default: all, the
# selection below; --full runs every test; --check only type-checks the runtime's library, binary
# and tests and the firmware examples for the target, with no build and no qemu: CI's armv7 step)
# Timings under qemu mean nothing; this checks that the code builds and computes the same results.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
which_arch="${1:-all}"
usage() { echo "usage: $0 [aarch64|armv7|all] [--full|--check]" >&2; exit 2; }

# shellcheck source=scripts/arm-toolchain.sh
source scripts/arm-toolchain.sh qemu

# cargo runs the test binaries under the runner of .cargo/config.toml; the CLI tests spawn
# kdsr-edge themselves and need the same runner (KDSR_TEST_RUNNER), as binfmt_misc is often not
# available in containers. For the same reason kdsr-edge must not re-execute itself to fix glibc's
# mmap threshold (glibc's execvp would hand the foreign binary to /bin/sh): setting the variable
# here skips that.
# run TARGET RUNNER [TEST-SELECTION...]: all of kdsr-runtime's tests, or only the named ones.
run() {
  local target=$1 runner=$2 start=$SECONDS
  shift 2
  echo "== $target: build and test under qemu ${*:-(all tests)}"
  cargo build -p kdsr-runtime --target "$target" --locked
  KDSR_TEST_RUNNER="$runner" cargo test -p kdsr-runtime --target "$target" --locked "$@"
  echo "== $target: $((SECONDS - start)) s"
}
# Under qemu every test is slow (50-75x its native time: cli 5.5 s -> 318 s, tiling 3.5 s ->
# 253 s, upscaler 2.2 s -> 121 s, aarch64 test builds, stop 19's logs). On aarch64, qemu emulates
# a Cortex-A76 (`qemu_aarch64`, scripts/arm-toolchain.sh, and .cargo/config.toml's runner): under
# qemu 7.2's default CPU, `max`, whose SVE makes NEON code far slower to emulate, CI's aarch64
# selection ran 891 s (ops 355 s, upscaler 522 s on an Intel Xeon host, 2026-12-05) against 99 s
# (ops 30 s, upscaler 50 s, 2026-12-06) with the A76. So the default selection runs on each
# architecture what that architecture can break, and `--full` runs everything:
# - aarch64: the library and the parity of the ops and graphs (upscaler, ops, models): NEON
#   kernels (tract-linalg's, matrixmultiply's) and the vectorized Winograd transforms;
# - armv7: what 32-bit arithmetic can break (sizes, budgets, tile geometry, fuzzed headers and
#   graphs, bad inputs, the stream pipeline's frame sizes and threads) and the same parity tests.
# The CLI's file handling (cli, anywhere: ~9 minutes under qemu) is the same code on every
# architecture; it runs natively in scripts/test.sh and under qemu with --full.
# check TARGET: `cargo check` of what CI would build and test for TARGET, firmware included.
check() {
  local target=$1 start=$SECONDS
  echo "== $target: cargo check (runtime library, kdsr-edge, tests; firmware examples)"
  cargo check -p kdsr-runtime --lib --bins --tests --target "$target" --locked
  cargo check -p kdsr-firmware-examples --examples --features kdsr-runtime/default \
    --target "$target" --locked
  echo "== $target: checked in $((SECONDS - start)) s"
}
# CI (.ci/run) runs the aarch64 selection and only `--check` for armv7: building the runtime for a
# third target and its tests under qemu took 1,057 s of CI's 3,634 s (2026-12-06, a 2-vCPU Intel
# Xeon VM), ~500 s of CPU of it compiling tract-core again, against 50 s for the check, which still
# catches what does not compile on a 32-bit target (clippy's lints included). The armv7 selection
# runs by hand: `bash scripts/test-arm.sh armv7`: 754 s here (build 393 s, test build 80 s, tests
# 279 s; 2026-12-06, commit 3eaed25; 918 s at f6180fc the same day, on a slower spell of that
# VM), so CI with it would be ~2,710 s.
aarch64_tests=(--lib --test upscaler --test ops --test models)
armv7_tests=(--lib --test upscaler --test ops --test models --test tiling --test fuzz --test bad_inputs --test stream)
case "${2:-}" in
  "") ;;
  --full)
    aarch64_tests=()
    armv7_tests=()
    ;;
  --check) run() { check "$1"; } ;;
  *) usage ;;
esac
aarch64=(aarch64-unknown-linux-gnu "$qemu_aarch64 -L /usr/aarch64-linux-gnu")
armv7=(armv7-unknown-linux-gnueabihf "qemu-arm -L /usr/arm-linux-gnueabihf")
case "$which_arch" in
  aarch64) run "${aarch64[@]}" "${aarch64_tests[@]}" ;;
  armv7) run "${armv7[@]}" "${armv7_tests[@]}" ;;
  all)
    run "${aarch64[@]}" "${aarch64_tests[@]}"
    run "${armv7[@]}" "${armv7_tests[@]}"
    ;;
  *) usage ;;
esac
