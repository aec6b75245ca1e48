# SPDX-License-Identifier: BSD-3-Clause
# e2e-blk-reconnect, guest side: a verified fio write+verify job runs while
# the host kills and restarts the server (SIGKILL, then SIGTERM); the job
# must complete without errors, data written before the disruption must
# survive it, and the disk must still work afterwards.
# Parameters: EXPECT_SECTORS FIO_SIZE_MB PATTERN_OFFSET PATTERN2_OFFSET.
. /e2e/lib.sh

wait_dev vda
expect_eq "vda size (sectors)" "$(cat /sys/block/vda/size)" "$EXPECT_SECTORS"
write_pattern /dev/vda "$PATTERN_OFFSET"

mark fio-start
run_fio --name=reconn --filename=/dev/vda --rw=randwrite --bs=4k \
    --iodepth=8 --ioengine=libaio --direct=1 --numjobs=2 \
    --size="${FIO_SIZE_MB}M" --offset_increment="${FIO_SIZE_MB}M" \
    --verify=crc32c --verify_fatal=1 --end_fsync=1 \
    --cpus_allowed=0,1 --cpus_allowed_policy=split --group_reporting \
    --output-format=normal,json
mark fio-end
# The longest completion latency tells the host whether requests really
# were in flight while the server was down.
max=$(awk '/"clat_ns"/ { f = 1 } f && /"max"/ { gsub(/[^0-9]/, ""); print; f = 0 }' \
    /tmp/fio.out | sort -n | tail -n 1)
[ -n "$max" ] || fail "no completion latency in fio's JSON output"
echo "E2E-VALUE fio-max-clat-ns $max"

check_pattern /dev/vda "$PATTERN_OFFSET"
write_pattern /dev/vda "$PATTERN2_OFFSET"
check_dmesg_clean
sync
