#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Run every test: unit, protocol and end-to-end (QEMU + Linux guest) suites on
# a normal build (e2e-blk-fio-nouring among them: a guest on umdevd without
# io_uring), the unit and protocol suites again with io_uring blocked by
# seccomp (test setup 'nouring', tests/nouring), the unit, protocol and fuzz
# suites again under ASan/UBSan, then an arm64 cross build's unit and
# protocol suites under qemu-aarch64 (which has no io_uring: the epoll engine).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

# e2e-proof: the no-dirty-logging migration, a proof run by hand (tests/e2e/meson.build).
meson test -C build --print-errorlogs --num-processes 2 --no-suite e2e-proof
meson test -C build --setup nouring --print-errorlogs --num-processes 2 --suite unit --suite proto

if [ -d build-asan ]; then
  meson setup --reconfigure build-asan >/dev/null
else
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -De2e=false >/dev/null
fi
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --print-errorlogs --num-processes 2 --suite unit --suite proto --suite fuzz

if [ -d build-arm64 ]; then
  meson setup --reconfigure build-arm64 >/dev/null
else
  meson setup build-arm64 --cross-file cross/aarch64-linux-gnu.ini -De2e=false >/dev/null
fi
ninja -C build-arm64
meson test -C build-arm64 --setup nouring --print-errorlogs --num-processes 2 --suite unit --suite proto
