# SPDX-License-Identifier: BSD-3-Clause
# e2e-blk-readonly, guest side: a readonly=on device is read-only for the
# guest kernel, its content (a pattern the host wrote) reads back, and
# writes are refused.  Parameters: EXPECT_SECTORS.
. /e2e/lib.sh

wait_dev vda
expect_eq "vda size (sectors)" "$(cat /sys/block/vda/size)" "$EXPECT_SECTORS"
expect_eq "vda read-only" "$(cat /sys/block/vda/ro)" 1
check_pattern /dev/vda 0
if dd if=/e2e/pattern.bin of=/dev/vda bs=65536 count=1 oflag=direct \
        conv=fsync,notrunc status=none 2>/tmp/dd.err; then
    fail "a write to the read-only disk succeeded"
fi
echo "e2e: write refused as expected: $(cat /tmp/dd.err)"
# A verified read-only fio pass exercises the read path on both queues.
run_fio --name=randr --filename=/dev/vda --rw=randread --bs=4k --iodepth=8 \
    --ioengine=libaio --direct=1 --numjobs=2 --size=16M --readonly \
    --cpus_allowed=0,1 --cpus_allowed_policy=split --group_reporting
check_pattern /dev/vda 0
check_all_queues_used virtio0 "$EXPECT_QUEUES"
check_dmesg_clean
