# SPDX-License-Identifier: BSD-3-Clause
# e2e-ctl-scsi-hotplug, guest side: a virtio-scsi device created at run
# time shows LUN 0:0 as sda; the host then adds LUN 0:1 with umdevctl and
# the disk must appear by itself (no rescan by hand), take a pattern, and
# go away again when the host removes it. The host paces with the marks.
. /e2e/lib.sh

wait_dev sda
mark READY
i=0
while [ ! -b /dev/sdb ]; do
    [ "$i" -ge 600 ] && fail "sdb did not appear after lun-add"
    i=$((i + 1))
    sleep 0.1
done
echo "e2e: sdb appeared after $((i / 10)) s"
write_pattern /dev/sdb "$PATTERN_OFFSET"
sync
mark ADDED-OK
i=0
while [ -b /dev/sdb ]; do
    [ "$i" -ge 600 ] && fail "sdb still there after lun-remove"
    i=$((i + 1))
    sleep 0.1
done
echo "e2e: sdb went away after $((i / 10)) s"
mark REMOVED-OK
sleep 2
