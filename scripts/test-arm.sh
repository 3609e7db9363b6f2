#!/usr/bin/env bash
# Cross-builds kdsr-runtime (library, kdsr-edge, tests) for aarch64 and armv7 Linux and runs the
# tests under qemu-user. Installs what is missing (idempotent): the Rust targets, the Debian
# cross compilers and qemu-user. Linkers and runners are set in .cargo/config.toml.
# Usage: bash scripts/test-arm.sh [aarch64|armv7|all]   (default: all)
# Timings under qemu mean nothing; this checks that the code builds and computes the same results.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
which_arch="${1:-all}"

missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v arm-linux-gnueabihf-gcc >/dev/null || missing+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
{ command -v qemu-aarch64 >/dev/null && command -v qemu-arm >/dev/null; } || missing+=(qemu-user)
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
installed=$(rustup target list --installed)
for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

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
# armv7 runs what 32-bit arithmetic and numerics can break (sizes, budgets, fuzzed headers and
# graphs, tiling, the ops, parity); the CLI's file handling (cli, stream, anywhere: ~10 minutes
# under qemu) is the same code as on aarch64 and runs there.
armv7_tests=(--lib --test upscaler --test tiling --test fuzz --test bad_inputs --test models --test ops)
aarch64=(aarch64-unknown-linux-gnu "qemu-aarch64 -L /usr/aarch64-linux-gnu")
armv7=(armv7-unknown-linux-gnueabihf "qemu-arm -L /usr/arm-linux-gnueabihf")
case "$which_arch" in
  aarch64) run "${aarch64[@]}" ;;
  armv7) run "${armv7[@]}" "${armv7_tests[@]}" ;;
  all)
    run "${aarch64[@]}"
    run "${armv7[@]}" "${armv7_tests[@]}"
    ;;
  *) echo "usage: $0 [aarch64|armv7|all]" >&2; exit 2 ;;
esac
