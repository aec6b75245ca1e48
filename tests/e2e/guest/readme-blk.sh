# SPDX-License-Identifier: BSD-3-Clause
# e2e-readme, guest side, virtio-blk: README's RAM disk is /dev/vda with the
# size README gives and as many blk-mq queues as QEMU asked for (capped by
# the vCPUs), verified fio on every queue, and data that outlives the guest:
# the first guest writes a pattern, the next one (same umdevd) reads it back.
# Parameters (set by the host): EXPECT_SECTORS EXPECT_QUEUES NCPUS PHASE
# (first|next) PATTERN_OFFSET FIO_SIZE_MB.
. /e2e/lib.sh

wait_dev vda
expect_eq "vCPUs" "$(grep -c ^processor /proc/cpuinfo)" "$NCPUS"
expect_eq "vda size (sectors)" "$(cat /sys/block/vda/size)" "$EXPECT_SECTORS"
expect_eq "vda read-only" "$(cat /sys/block/vda/ro)" 0
expect_eq "vda blk-mq queues" "$(ls /sys/block/vda/mq | wc -l)" "$EXPECT_QUEUES"

if [ "$PHASE" = first ]; then
    write_pattern /dev/vda "$PATTERN_OFFSET"
else
    # Written by the previous guest: umdevd's RAM disk kept it.
    check_pattern /dev/vda "$PATTERN_OFFSET"
fi

# One job per vCPU, pinned, so that every request queue carries requests.
mark fio-start
run_fio --name=readme --filename=/dev/vda --rw=randwrite --bs=4k \
    --iodepth=8 --ioengine=libaio --direct=1 --numjobs="$NCPUS" \
    --size="${FIO_SIZE_MB}M" --offset_increment="${FIO_SIZE_MB}M" \
    --verify=crc32c --verify_fatal=1 --end_fsync=1 \
    --cpus_allowed="0-$((NCPUS - 1))" --cpus_allowed_policy=split --group_reporting
mark fio-end
check_all_queues_used virtio0 "$EXPECT_QUEUES"
check_dmesg_clean
sync
