#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Run the RBD tests against one throw-away Ceph cluster, so that its start
# (about 10 s) is paid once: start it (ceph-cluster.sh), export CEPH_CONF and
# CEPH_KEYRING, run each argument as a command, stop the cluster whatever
# happens. Fails if any command fails.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/umdev-ceph.XXXXXX")
trap '"$here/ceph-cluster.sh" stop "$dir"' EXIT
t0=$(date +%s%N)
"$here/ceph-cluster.sh" start "$dir" || exit 1
echo "ceph cluster up in $((($(date +%s%N) - t0) / 1000000)) ms ($dir)"
export CEPH_CONF=$dir/ceph.conf CEPH_KEYRING=$dir/keyring

rc=0
for cmd in "$@"; do
	echo "== $cmd"
	bash -c "$cmd" || { echo "FAILED: $cmd"; rc=1; }
done
exit $rc
