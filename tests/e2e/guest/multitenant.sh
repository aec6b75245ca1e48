# SPDX-License-Identifier: BSD-3-Clause
# e2e-multitenant, guest side (tenant A): verified fio passes on both queues
# for FIO_SECONDS while the host's hostile client attacks the other device
# of the same umdevd. Every pass must verify; no I/O error may show up.
# Parameters (set by the host): EXPECT_SECTORS EXPECT_QUEUES FIO_SIZE_MB
# FIO_SECONDS.
. /e2e/lib.sh

wait_dev vda
expect_eq "vda size (sectors)" "$(cat /sys/block/vda/size)" "$EXPECT_SECTORS"
expect_eq "vda blk-mq queues" "$(ls /sys/block/vda/mq | wc -l)" "$EXPECT_QUEUES"

mark fio-start
end=$(($(date +%s) + FIO_SECONDS))
passes=0
while [ "$(date +%s)" -lt "$end" ]; do
    passes=$((passes + 1))
    # Two jobs on disjoint regions, one per vCPU (and so per queue); a new
    # seed each pass so each pass writes different data.
    run_fio --name="tenant-a-$passes" --filename=/dev/vda --rw=randwrite \
        --bs=4k --iodepth=8 --ioengine=libaio --direct=1 --numjobs=2 \
        --size="${FIO_SIZE_MB}M" --offset_increment="${FIO_SIZE_MB}M" \
        --randseed="$passes" --verify=crc32c --verify_fatal=1 --end_fsync=1 \
        --cpus_allowed=0,1 --cpus_allowed_policy=split --group_reporting
    echo "e2e: fio pass $passes verified"
done
mark fio-end
echo "E2E-VALUE fio-passes $passes"
check_all_queues_used virtio0 "$EXPECT_QUEUES"
check_dmesg_clean
sync
