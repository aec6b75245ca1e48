# SPDX-License-Identifier: BSD-3-Clause
# e2e-blk-discard, guest side: the device offers discard and write-zeroes
# and the cache mode the server promises; write-zeroes really zeroes (the
# host checks the exact byte range in the image), discard and flush reach
# the device and complete without errors.  Parameters: EXPECT_SECTORS
# EXPECT_WRITE_CACHE ZERO_OFFSET ZERO_SKIP ZERO_LEN KEEP_OFFSET
# DISCARD_OFFSET DISCARD_LEN.
. /e2e/lib.sh

# Field N of /sys/block/vda/stat (see Documentation/block/stat.rst).
stat_field() {
    awk -v n="$1" '{ print $n }' /sys/block/vda/stat
}

wait_dev vda
expect_eq "vda size (sectors)" "$(cat /sys/block/vda/size)" "$EXPECT_SECTORS"
expect_eq "vda write cache" "$(cat /sys/block/vda/queue/write_cache)" "$EXPECT_WRITE_CACHE"
wz=$(cat /sys/block/vda/queue/write_zeroes_max_bytes)
dm=$(cat /sys/block/vda/queue/discard_max_bytes)
echo "e2e: write_zeroes_max_bytes=$wz discard_max_bytes=$dm"
[ "$wz" -gt 0 ] || fail "the device does not offer write-zeroes"
[ "$dm" -gt 0 ] || fail "the device does not offer discard"

write_pattern /dev/vda "$ZERO_OFFSET"
write_pattern /dev/vda "$KEEP_OFFSET"

# BLKZEROOUT: the kernel sends WRITE_ZEROES since the device offers it.
/usr/bin/blkdiscard -f -z -o $((ZERO_OFFSET + ZERO_SKIP)) -l "$ZERO_LEN" /dev/vda ||
    fail "write-zeroes failed"
dd if=/dev/vda bs=65536 skip=$(((ZERO_OFFSET + ZERO_SKIP) / 65536)) \
    count=$((ZERO_LEN / 65536)) iflag=direct status=none > /tmp/z || fail "read failed"
expect_eq "zeroed range" "$(md5sum < /tmp/z)" "$(head -c "$ZERO_LEN" /dev/zero | md5sum)"
check_pattern /dev/vda "$KEEP_OFFSET"

d0=$(stat_field 12)
/usr/bin/blkdiscard -f -o "$DISCARD_OFFSET" -l "$DISCARD_LEN" /dev/vda || fail "discard failed"
d1=$(stat_field 12)
echo "e2e: discard requests $d0 -> $d1"
[ "$d1" -gt "$d0" ] || fail "no discard request reached the device"

# fsync on the block device sends a flush when the cache is write back
# (with write through the kernel drops flushes before the driver).
f0=$(stat_field 16)
dd if=/e2e/pattern.bin of=/dev/vda bs=65536 seek=$((KEEP_OFFSET / 65536)) \
    conv=fsync,notrunc status=none || fail "buffered write + fsync failed"
f1=$(stat_field 16)
echo "e2e: flush requests $f0 -> $f1"
if [ "$EXPECT_WRITE_CACHE" = "write back" ]; then
    [ "$f1" -gt "$f0" ] || fail "fsync sent no flush to the device"
fi
check_dmesg_clean
