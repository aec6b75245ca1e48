# SPDX-License-Identifier: BSD-3-Clause
# e2e-blk-multi, guest side: three devices from one server process, on the
# ram (busy-polled by umdevd), null and file backends, with 2, 1 and 2
# queues, run verified I/O at the same time.  ram keeps data, null reads zeroes whatever was written.
# Parameters: SERIALS (one word per disk) RAM_SECTORS NULL_SECTORS
# FILE_SECTORS FILE_PATTERN_OFFSET.
. /e2e/lib.sh

for d in vda vdb vdc; do
    wait_dev "$d"
done
set -- $SERIALS
for d in vda vdb vdc; do
    expect_eq "$d serial" "$(cat /sys/block/$d/serial)" "$1"
    shift
done
expect_eq "vda (ram) size" "$(cat /sys/block/vda/size)" "$RAM_SECTORS"
expect_eq "vdb (null) size" "$(cat /sys/block/vdb/size)" "$NULL_SECTORS"
expect_eq "vdc (file) size" "$(cat /sys/block/vdc/size)" "$FILE_SECTORS"
expect_eq "vda blk-mq queues" "$(ls /sys/block/vda/mq | wc -l)" 2
expect_eq "vdb blk-mq queues" "$(ls /sys/block/vdb/mq | wc -l)" 1
expect_eq "vdc blk-mq queues" "$(ls /sys/block/vdc/mq | wc -l)" 2

mark fio-start
run_fio --ioengine=libaio --direct=1 --bs=4k --iodepth=8 --group_reporting \
    --name=ram --filename=/dev/vda --rw=randwrite --size=48M \
    --verify=crc32c --verify_fatal=1 \
    --name=null --filename=/dev/vdb --rw=randwrite --size=64M \
    --name=file --filename=/dev/vdc --rw=randwrite --size=32M \
    --verify=crc32c --verify_fatal=1
mark fio-end

write_pattern /dev/vda $((100 * 1024 * 1024))
dd if=/e2e/pattern.bin of=/dev/vdb bs=65536 oflag=direct conv=notrunc \
    status=none || fail "write to the null disk failed"
expect_eq "null disk reads" "$(dd if=/dev/vdb bs=65536 count=16 iflag=direct status=none | md5sum)" \
    "$(head -c 1048576 /dev/zero | md5sum)"
write_pattern /dev/vdc "$FILE_PATTERN_OFFSET"
check_dmesg_clean
