#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A throw-away one-node Ceph cluster for the RBD tests, from Debian's packages:
# one monitor on 127.0.0.1 (a free port, msgr2 only), one OSD on memstore (no
# disk, no root, nothing outside DIR), replication 1, cephx on, and a pool
# "rbd" with the rbd application. No manager: RADOS and librbd I/O never need
# one, and it would cost seconds of Python start-up per run.
#
#   ceph-cluster.sh start DIR   create and start; prints nothing, writes
#                               DIR/ceph.conf and DIR/keyring (client.admin)
#   ceph-cluster.sh stop DIR    stop the daemons and remove DIR
#
# Clients use: CEPH_CONF=DIR/ceph.conf (the keyring is named in it).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# Nothing in the cluster is worth keeping: SIGKILL, then wait (bounded) until
# every daemon is gone or a zombie, so DIR is not removed under a live one.
stop() {
	local pids=() f p st alive
	for f in "$dir"/run/*.pid; do
		[ -f "$f" ] && pids+=("$(cat "$f")")
	done
	[ ${#pids[@]} = 0 ] || kill -9 "${pids[@]}" 2>/dev/null || true
	for _ in $(seq 100); do
		alive=0
		for p in "${pids[@]}"; do
			st=$(ps -o stat= -p "$p" 2>/dev/null || true)
			[ -n "$st" ] && [ "${st#Z}" = "$st" ] && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.05
	done
	rm -rf "$dir"
}

if [ "$cmd" = stop ]; then
	stop
	exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

mkdir -p "$dir"/run "$dir"/log "$dir"/mon.a "$dir"/osd.0
dir=$(cd "$dir" && pwd)
fsid=$(uuidgen)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
conf=$dir/ceph.conf

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port]
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
crash dir = $dir/crash
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon data = $dir/mon.\$id
mon osd nearfull ratio = 0.95
mon osd backfillfull ratio = 0.96
mon osd full ratio = 0.97
# A nearly full /tmp must not stop the monitor (it shuts down at 5% free).
mon data avail warn = 1
mon data avail crit = 0
auth allow insecure global id reclaim = false
[osd]
# Small and quick: the test cluster lives for a few minutes, in memory.
osd objectstore = memstore
memstore device bytes = 1073741824
osd data = $dir/osd.\$id
keyring = $dir/osd.\$id/keyring
osd op num shards = 1
osd op num threads per shard = 2
osd failsafe full ratio = 0.99
[client]
# Unreachable cluster: fail in seconds, not minutes.
client mount timeout = 10
rados osd op timeout = 30
rados mon op timeout = 10
log file = $dir/log/client.\$pid.log
admin socket = $dir/run/client.\$pid.asok
EOF

ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$dir/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
	--cap mgr 'allow *' >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$port]" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
ceph-mon -c "$conf" -i a

# Anything failing from here on leaves a running monitor: stop it.
trap 'echo "ceph-cluster: start failed, logs in $dir/log" >&2; for l in "$dir"/log/*.log; do tail -n 20 "$l" >&2; done; stop' ERR

osd_uuid=$(uuidgen)
osd_key=$(ceph-authtool --gen-print-key)
echo "{\"cephx_secret\": \"$osd_key\"}" >"$dir/osd-secret.json"
osd_id=$(ceph -c "$conf" --connect-timeout 20 osd new "$osd_uuid" -i "$dir/osd-secret.json")
ceph-osd -c "$conf" -i "$osd_id" --mkfs --key "$osd_key" --osd-uuid "$osd_uuid" \
	>"$dir/log/osd-mkfs.log" 2>&1
ceph-authtool --create-keyring "$dir/osd.$osd_id/keyring" -n "osd.$osd_id" --add-key "$osd_key" \
	>/dev/null
ceph-osd -c "$conf" -i "$osd_id" 2>>"$dir/log/osd-start.log"

ceph -c "$conf" osd pool create rbd 8 8 >/dev/null 2>&1
ceph -c "$conf" osd pool set rbd size 1 --yes-i-really-mean-it >/dev/null 2>&1
ceph -c "$conf" osd pool application enable rbd rbd >/dev/null 2>&1
# The pool is usable once its placement groups are active on the OSD.
for _ in $(seq 300); do
	if timeout 5 rbd -c "$conf" ls rbd >/dev/null 2>&1; then
		exit 0
	fi
	sleep 0.1
done
echo "ceph-cluster: pool rbd never became usable" >&2
false
