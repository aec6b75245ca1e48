# SPDX-License-Identifier: BSD-3-Clause
# e2e-blk-reset, guest side: unbinding virtio_blk resets the device (QEMU
# stops the vhost-user rings) and loading it again renegotiates and restarts
# them; each cycle, with a different number of queues in use, must see the
# same data and keep serving verified I/O.
# Parameters: EXPECT_SECTORS EXPECT_QUEUES PATTERN_OFFSET.
. /e2e/lib.sh

blk_ko=/lib/modules/$(grep '/virtio_blk.ko$' /etc/e2e-modules)

wait_dev vda
write_pattern /dev/vda "$PATTERN_OFFSET"

cycle=0
# One queue in use of the two the device offers, then both, then a small
# ring depth (fewer descriptors in flight than the ring holds).
for params in "num_request_queues=1" "" "queue_depth=16"; do
    cycle=$((cycle + 1))
    mark "reset-cycle $cycle ($params)"
    rmmod virtio_blk || fail "rmmod virtio_blk failed"
    [ ! -e /sys/block/vda ] || fail "vda still present after rmmod"
    # shellcheck disable=SC2086 # $params is a word list on purpose
    insmod "$blk_ko" $params || fail "insmod virtio_blk $params failed"
    wait_dev vda
    expect_eq "vda size (sectors)" "$(cat /sys/block/vda/size)" "$EXPECT_SECTORS"
    want=$EXPECT_QUEUES
    [ "$params" = "num_request_queues=1" ] && want=1
    expect_eq "vda blk-mq queues" "$(ls /sys/block/vda/mq | wc -l)" "$want"
    check_pattern /dev/vda "$PATTERN_OFFSET"
    run_fio --name="cycle$cycle" --filename=/dev/vda --rw=randwrite --bs=4k \
        --iodepth=8 --ioengine=libaio --direct=1 --numjobs=2 --size=8M \
        --offset=$((cycle * 16))M --offset_increment=8M \
        --verify=crc32c --verify_fatal=1 --group_reporting
done
check_dmesg_clean
