# SPDX-License-Identifier: BSD-3-Clause
# e2e-scsi-fio-packed, guest side: vhost-user-scsi-pci with packed=on. The
# driver negotiated packed rings; LUN 0:0 (a file) appears with its size;
# verified fio on two queues; a pattern written with O_DIRECT (the host then
# finds it in the image).
# Parameters (set by the host): LUN0_SECTORS FIO_SIZE_MB PATTERN_OFFSET.
. /e2e/lib.sh

i=0
while ! ls /sys/block | grep -q '^sd'; do
    [ "$i" -lt 100 ] || fail "no SCSI disk appeared"
    i=$((i + 1))
    sleep 0.1
done
D=$(ls /sys/block | grep '^sd' | head -n 1)
PACKED_FEATURES=/sys/bus/virtio/devices/virtio0/features
# PACKED-CHECK
expect_eq "$D size (sectors)" "$(cat /sys/block/$D/size)" "$LUN0_SECTORS"

mark fio-start
run_fio --name=scsi-packed --filename="/dev/$D" --rw=randwrite --bs=4k \
    --iodepth=8 --ioengine=libaio --direct=1 --numjobs=2 \
    --size="${FIO_SIZE_MB}M" --offset_increment="${FIO_SIZE_MB}M" \
    --verify=crc32c --verify_fatal=1 --end_fsync=1 \
    --cpus_allowed=0,1 --cpus_allowed_policy=split --group_reporting
mark fio-end
write_pattern "/dev/$D" "$PATTERN_OFFSET"
check_dmesg_clean
sync
