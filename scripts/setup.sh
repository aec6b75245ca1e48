#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Install what umdev needs on Debian 12 and build it into ./build.
# Run as root (or with sudo available). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  # build
  gcc meson ninja-build pkg-config liburing-dev libjson-c-dev libcmocka-dev libaio-dev
  # tests/nouring: the seccomp launcher that blocks io_uring
  libseccomp-dev
  # sanitizer runtime for the ASan/UBSan test build
  libclang-rt-14-dev
  # end-to-end tests: a real QEMU and Linux guest
  qemu-system-x86 qemu-system-common qemu-utils linux-image-amd64 busybox-static fio cpio
  sg3-utils
  python3
  # the NBD backend (libnbd) and its tests (nbdkit server, nbdcopy)
  libnbd-dev nbdkit libnbd-bin
  # libvirt's schema checker, for the XML in docs/libvirt.md
  libvirt-clients
  # the arm64 cross build (cross/aarch64-linux-gnu.ini), tested under qemu-user
  gcc-aarch64-linux-gnu qemu-user-static
  liburing-dev:arm64 libjson-c-dev:arm64 libcmocka-dev:arm64 libaio-dev:arm64
  # the RBD backend, and the one-node Ceph cluster its tests start (tests/backend/ceph-cluster.sh)
  librbd-dev librados-dev ceph-mon ceph-osd ceph-common uuid-runtime
  # the arm64 guest (tests/e2e/e2e_arm64.py): qemu-system-aarch64; depmod and
  # readelf for the guest image from arm64 packages (mkguest_arm64.py)
  qemu-system-arm kmod binutils
)

# arm64 packages come from Debian's arm64 archive: enable it once.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -d build ]; then
  meson setup --reconfigure build >/dev/null
else
  meson setup build >/dev/null
fi
ninja -C build

# The arm64 guest's kernel, busybox and fio come from Debian's arm64 archive:
# fetch them now into the e2e guest cache so the tests need no network.
python3 tests/e2e/mkguest_arm64.py --fetch-only --cache-dir build/tests/e2e/guest-cache
