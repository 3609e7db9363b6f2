# Sourced by the ARM scripts (test-arm.sh, package-deb.sh, build-firmware-arm.sh): installs what
# cross-building for aarch64 and armv7 Linux needs, where missing (idempotent): the Debian cross
# compilers and the Rust targets, and qemu-user when called as `source … qemu` (to run the
# builds). Linkers, CC/AR for tract-linalg's assembly and qemu runners are set in
# .cargo/config.toml.
arm_missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || arm_missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v arm-linux-gnueabihf-gcc >/dev/null || arm_missing+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
if [[ "${1:-}" == qemu ]]; then
  { command -v qemu-aarch64 >/dev/null && command -v qemu-arm >/dev/null; } || arm_missing+=(qemu-user)
fi
if ((${#arm_missing[@]})); then
  arm_sudo=""
  [[ $(id -u) -ne 0 ]] && arm_sudo="sudo"
  $arm_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $arm_sudo apt-get install -y -qq "${arm_missing[@]}"
fi
arm_installed=$(rustup target list --installed)
for arm_t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  grep -qx "$arm_t" <<<"$arm_installed" || rustup target add "$arm_t"
done
unset arm_missing arm_sudo arm_installed arm_t
# The qemu-aarch64 command of .cargo/config.toml's runner (a Cortex-A76, the Pi 5's core: why, in
# scripts/test-arm.sh), for the scripts that run ARM binaries themselves.
qemu_aarch64="qemu-aarch64 -cpu cortex-a76"
