# SPDX-License-Identifier: BSD-3-Clause
# e2e-migrate-*, guest side: the guest is live-migrated (host-driven) while
# it runs a verified fio job and while it reads a region of the disk into
# its page cache. The host paces it through a mailbox sector of the disk
# (GO: the migration's first pass is done; DONE: the guest runs on the
# destination). After the move the guest checks
# - the data the device wrote into guest memory during the migration (the
#   cached region, compared with its known checksum): pages umdevd wrote
#   but did not log would arrive stale;
# - fio's own verification (writes before, during and after the move) and
#   a verify-only pass over everything fio wrote;
# - the pattern written before the move; then it writes a second one.
# Parameters: DISK EXPECT_SECTORS FIO_SIZE_MB PATTERN_OFFSET PATTERN2_OFFSET
# MAILBOX_OFFSET READ_OFFSET_MB READ_MB READ_SHA.
. /e2e/lib.sh

wait_dev "${DISK#/dev/}"

mailbox() {
    dd if="$DISK" bs=4096 skip=$((MAILBOX_OFFSET / 4096)) count=1 iflag=direct \
        status=none 2>/tmp/mailbox.err | tr -d '\000'
}

# wait_mailbox WORD SECONDS
wait_mailbox() {
    i=0
    while [ "$(mailbox)" != "$1" ]; do
        [ "$i" -lt $(($2 * 10)) ] || fail "host never wrote $1 to the mailbox"
        i=$((i + 1))
        [ $((i % 50)) -ne 0 ] || echo "e2e: mailbox reads '$(mailbox)' $(cat /tmp/mailbox.err)"
        sleep 0.1
    done
}

expect_eq "disk size (sectors)" "$(cat /sys/block/${DISK#/dev/}/size)" "$EXPECT_SECTORS"
write_pattern "$DISK" "$PATTERN_OFFSET"

# Keep the disk open: Linux drops a block device's page cache when its
# last opener closes it, and the cached region must survive the move.
exec 3<"$DISK"
sync
echo 3 > /proc/sys/vm/drop_caches

FIO_ARGS="--name=mig --filename=$DISK --rw=randwrite --bs=4k --iodepth=32 \
    --ioengine=libaio --direct=1 --numjobs=2 --size=${FIO_SIZE_MB}M \
    --offset_increment=${FIO_SIZE_MB}M --verify=crc32c --verify_fatal=1 \
    --cpus_allowed=0,1 --cpus_allowed_policy=split --group_reporting"
fio --output=/tmp/fio.out $FIO_ARGS --end_fsync=1 &
fio_pid=$!
# Keep memory dirty so the migration cannot converge before the host lets it
# (it holds the switchover back with a 1 ms downtime limit).
(while :; do dd if=/dev/zero of=/tmp/dirt bs=1M count=8 conv=notrunc status=none; done) &
dirt_pid=$!
mark ready

wait_mailbox GO 150
# Buffered: the device writes the data straight into page-cache pages that
# the migration has already sent once; the guest CPU never touches them.
dd if="$DISK" of=/dev/null bs=1M skip="$READ_OFFSET_MB" count="$READ_MB" status=none ||
    fail "read of the cached region failed"
mark read-done

wait_mailbox DONE 150
kill $dirt_pid
mark on-destination
got=$(dd if="$DISK" bs=1M skip="$READ_OFFSET_MB" count="$READ_MB" status=none | sha256sum)
disk=$(dd if="$DISK" bs=1M skip="$READ_OFFSET_MB" count="$READ_MB" iflag=direct status=none | sha256sum)
expect_eq "checksum of the region on the disk" "${disk%% *}" "$READ_SHA"
[ "${got%% *}" = "$READ_SHA" ] ||
    fail "memory the device wrote during the migration is wrong after it (page cache ${got%% *}, disk $READ_SHA): dirty pages were not logged"
echo "e2e: region read into memory during the migration is intact"

wait $fio_pid
rc=$?
cat /tmp/fio.out
[ "$rc" -eq 0 ] || fail "fio exited with $rc"
grep -q "err= 0" /tmp/fio.out || fail "fio reported a job error"
mark fio-end
# Everything fio wrote before, during and after the move, read back again.
run_fio $FIO_ARGS --verify_only
check_pattern "$DISK" "$PATTERN_OFFSET"
write_pattern "$DISK" "$PATTERN2_OFFSET"
check_dmesg_clean
exec 3<&-
sync
