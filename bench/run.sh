#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Run the benchmark in each umdevd notification mode, one table per run.
# Usage: bench/run.sh [BUILD_DIR] [umdev-bench options, e.g. --duration 10]
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
bench="$build/bench/umdev-bench"
if [ ! -x "$bench" ]; then
  echo "no $bench: build first (meson setup $build && ninja -C $build)" >&2
  exit 1
fi
# Default: a queue that runs dry polls briefly (poll-us) before sleeping on
# kicks; compared with qemu-storage-daemon in the same run.
"$bench" --label "(umdevd default: adaptive polling)" "$@"
echo
# Pure interrupt mode: sleep on the kick eventfd as soon as the ring is empty.
"$bench" --servers umdevd --umdevd-dev-extra ,poll-us=0 --label "(umdevd poll-us=0)" "$@"
echo
# Busy-polling: lowest latency, one core spent per queue loop.
"$bench" --servers umdevd --umdevd-dev-extra ,poll=on --label "(umdevd poll=on)" "$@"
# The file backend on each I/O engine against qsd's aio=threads and
# aio=native, when BENCH_FILE names a scratch image (writes overwrite it).
if [ -n "${BENCH_FILE:-}" ]; then
  echo
  "$bench" --file "$BENCH_FILE" --label "(file, reads)" "$@"
  echo
  "$bench" --file "$BENCH_FILE" --rw write --label "(file, writes)" "$@"
fi
