#!/usr/bin/env bash
# Builds the Debian packages that a Raspberry Pi or Jetson user installs with apt:
#   target/<triple>/debian/kdsr-edge_VERSION-1_arm64.deb   (aarch64: 64-bit Raspberry Pi OS, Jetson)
#   target/<triple>/debian/kdsr-edge_VERSION-1_armhf.deb   (armv7: 32-bit Raspberry Pi OS)
# with cargo-deb (crates.io) from the cross builds of kdsr-edge. What goes in is set in
# runtime/Cargo.toml ([package.metadata.deb]): the binary (default model built in), the shipped
# edge models under /usr/share/kdsr/models (kdsr-edge finds them by name through its search
# order), the manual pages, README and licence. Then checks each package: its control fields, its
# file list, the glibc its binary needs against the Depends line, and that the binary unpacked
# from it runs under qemu-user, finds an installed model by name and upscales an image.
# Installs what is missing (idempotent): cargo-deb, the Rust targets, cross compilers, qemu-user.
# Usage: bash scripts/package-deb.sh [aarch64|armv7|all] [--release]   (default: all, dev)
# Without --release it packages the dev-profile binaries (dependencies at opt-level 2) that CI
# builds for its ARM tests anyway: CI checks the packaging, not the speed (cargo-deb warns that it
# is meant for release profiles; the pinned 3.8.0 accepts `--profile dev`, and a profile of our
# own would rebuild tract). --release makes the packages to install (sudo apt install
# ./kdsr-edge_0.1.0-1_arm64.deb on the board).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
which_arch="${1:-all}"
profile=dev
[[ "${2:-}" == "--release" ]] && profile=release

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0

# shellcheck source=scripts/arm-toolchain.sh
source scripts/arm-toolchain.sh qemu

fail() { echo "package-deb: $*" >&2; exit 1; }

# package TARGET DEB-ARCH GNU-PREFIX QEMU
package() {
  local target=$1 arch=$2 gnu=$3 qemu=$4 start=$SECONDS
  local dir=debug
  [[ $profile == release ]] && dir=release
  echo "== $target: cargo build --profile $profile, kdsr-edge man, cargo deb"
  cargo build -p kdsr-runtime --bin kdsr-edge --target "$target" --profile "$profile" --locked
  local exe="target/$target/$dir/kdsr-edge"
  # The manual pages come from the binary being packaged (clap_mangen, the same definitions as
  # --help), run under qemu-user.
  rm -rf target/man
  $qemu -L "/usr/$gnu" "$exe" man --out-dir target/man
  gzip -9n target/man/*.1
  local out="target/$target/debian"
  rm -rf "$out"
  cargo deb -p kdsr-runtime --target "$target" --profile "$profile" --no-build --locked \
    --no-dbgsym --no-separate-debug-symbols --strip -o "$out/"
  local deb
  deb=$(ls "$out"/kdsr-edge_*_"$arch".deb) || fail "no kdsr-edge_*_$arch.deb in $out"

  echo "== $target: checking $deb"
  [[ $(dpkg-deb -f "$deb" Package) == kdsr-edge ]] || fail "$deb: Package is not kdsr-edge"
  [[ $(dpkg-deb -f "$deb" Architecture) == "$arch" ]] || fail "$deb: Architecture is not $arch"
  local version
  version=$(cargo metadata --no-deps --format-version 1 --locked \
    | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="kdsr-runtime"))')
  [[ $(dpkg-deb -f "$deb" Version) == "$version-1" ]] || fail "$deb: Version is not $version-1"
  local files
  files=$(dpkg-deb -c "$deb" | awk '{print $6}')
  for f in ./usr/bin/kdsr-edge ./usr/share/man/man1/kdsr-edge.1.gz \
    ./usr/share/man/man1/kdsr-edge-upscale.1.gz ./usr/share/man/man1/kdsr-edge-stream.1.gz \
    ./usr/share/doc/kdsr-edge/copyright ./usr/share/doc/kdsr-edge/README.md \
    ./usr/share/kdsr/models/edge/camera/student-edge-camera-sr.onnx \
    ./usr/share/kdsr/models/edge/camera/student-edge-camera-int8-ide.onnx \
    ./usr/share/kdsr/models/edge/camera/student-edge-camera.bank \
    ./usr/share/kdsr/models/edge/student-edge-sr.onnx; do
    grep -qx "$f" <<<"$files" || fail "$deb: $f is missing"
  done
  grep -q "Apache License" <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/doc/kdsr-edge/copyright) \
    || fail "$deb: the copyright file does not carry the licence"

  local root
  root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  dpkg-deb -x "$deb" "$root"
  # The newest glibc symbol version the binary needs must be covered by Depends: libc6 (>= X).
  local need want
  need=$("$gnu-objdump" -T "$root/usr/bin/kdsr-edge" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
  want=$(dpkg-deb -f "$deb" Depends | sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p')
  [[ $(printf '%s\n%s\n' "$need" "$want" | sort -V | tail -1) == "$want" ]] \
    || fail "$deb: the binary needs GLIBC_$need, Depends says libc6 (>= $want)"
  echo "   binary needs glibc $need; Depends: $(dpkg-deb -f "$deb" Depends)"
  # Run it as installed: /usr/bin/kdsr-edge finds /usr/share/kdsr/models/… by a bare name.
  local run=($qemu -L "/usr/$gnu" "$root/usr/bin/kdsr-edge")
  "${run[@]}" --version | grep -qx "kdsr-edge $version" || fail "$deb: --version is not $version"
  local lr=tests/fixtures/reference/vectors-pipeline/classic_iso2.6_x4_lr.png # 24x30, blurred
  "${run[@]}" upscale -n student-edge-camera-int8 --threads 1 --progress -i "$lr" \
    -o "$root/out.png" 2>"$root/log" || { cat "$root/log" >&2; fail "$deb: upscale with an installed model failed"; }
  grep -q "share/kdsr/models/edge/camera/student-edge-camera-int8 (found by: installed layout)" "$root/log" \
    || { cat "$root/log" >&2; fail "$deb: the model was not found in /usr/share/kdsr/models"; }
  # The PNG header's width and height (IHDR).
  python3 -c 'import struct, sys; d = open(sys.argv[1], "rb").read(24); assert struct.unpack(">II", d[16:24]) == (96, 120), d[16:24]' \
    "$root/out.png" || fail "$deb: the upscaled image is not 96x120"
  echo "== $target: $deb ($(du -k "$deb" | cut -f1) KiB) checked in $((SECONDS - start)) s"
}
aarch64=(aarch64-unknown-linux-gnu arm64 aarch64-linux-gnu "$qemu_aarch64")
armv7=(armv7-unknown-linux-gnueabihf armhf arm-linux-gnueabihf qemu-arm)
case "$which_arch" in
  aarch64) package "${aarch64[@]}" ;;
  armv7) package "${armv7[@]}" ;;
  all)
    package "${aarch64[@]}"
    package "${armv7[@]}"
    ;;
  *) echo "usage: $0 [aarch64|armv7|all] [--release]" >&2; exit 2 ;;
esac
