#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Run the benchmark in each server configuration, one table per run.
# Usage: bench/run.sh [BUILD_DIR] [umdev-bench options, e.g. --duration 10]
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
bench="$build/bench/umdev-bench"
if [ ! -x "$bench" ]; then
  echo "no $bench: build first (meson setup $build && ninja -C $build)" >&2
  exit 1
fi
# umdevd sleeping on kicks (the default) against qemu-storage-daemon.
"$bench" --label "(umdevd waits for kicks)" "$@"
echo
# umdevd busy-polling its queues: lowest latency, one core spent per queue loop.
"$bench" --servers umdevd --umdevd-dev-extra ,poll=on --label "(umdevd poll=on)" "$@"
