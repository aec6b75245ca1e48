# SPDX-License-Identifier: BSD-3-Clause
# e2e-blk-fio, guest side: the disk has the expected geometry and queues,
# fio's verified random writes succeed on both queues, verified writes of
# mixed sizes succeed, and a known pattern
# written with O_DIRECT reads back (the host then finds it in the image).
# Parameters (set by the host): EXPECT_SECTORS EXPECT_QUEUES FIO_SIZE_MB
# PATTERN_OFFSET.
. /e2e/lib.sh

wait_dev vda
expect_eq "vda size (sectors)" "$(cat /sys/block/vda/size)" "$EXPECT_SECTORS"
expect_eq "vda read-only" "$(cat /sys/block/vda/ro)" 0
expect_eq "vda blk-mq queues" "$(ls /sys/block/vda/mq | wc -l)" "$EXPECT_QUEUES"
expect_eq "vda logical block size" "$(cat /sys/block/vda/queue/logical_block_size)" 512

mark fio-start
# Two jobs on disjoint regions so each can verify what it wrote; with
# cpus_allowed they run on different vCPUs and so submit on both queues.
run_fio --name=randw --filename=/dev/vda --rw=randwrite --bs=4k \
    --iodepth=8 --ioengine=libaio --direct=1 --numjobs=2 \
    --size="${FIO_SIZE_MB}M" --offset_increment="${FIO_SIZE_MB}M" \
    --verify=crc32c --verify_fatal=1 --end_fsync=1 \
    --cpus_allowed=0,1 --cpus_allowed_policy=split --group_reporting
# Mixed request sizes, 512 B to 1 MiB, sequential so blocks never overlap:
# multi-descriptor requests up to the device's seg_max/size_max limits.
run_fio --name=mixed --filename=/dev/vda --rw=write \
    --bssplit=512/10:4k/20:12k/20:64k/20:256k/20:1M/10 \
    --iodepth=8 --ioengine=libaio --direct=1 --numjobs=1 \
    --offset=$((2 * FIO_SIZE_MB))M --size=32M \
    --verify=crc32c --verify_fatal=1
mark fio-end

# Both virtqueues must have carried requests and signalled completions.
check_all_queues_used virtio0 "$EXPECT_QUEUES"
write_pattern /dev/vda "$PATTERN_OFFSET"
# Mixed sizes and an unaligned-to-4k (but 512-aligned) request.
dd if=/e2e/pattern.bin of=/dev/vda bs=512 seek=$((PATTERN_OFFSET / 512 + 1024 + 3)) \
    count=7 oflag=direct conv=fsync,notrunc status=none || fail "512-byte write failed"
check_dmesg_clean
sync
