# SPDX-License-Identifier: BSD-3-Clause
# e2e-readme, guest side, virtio-scsi: the two LUNs of README's umdevd line
# (0:0 a file, 0:1 a RAM disk) appear as sd disks with their sizes; as many
# request queues as QEMU asked for (capped by the vCPUs), each of which
# completes requests; verified fio on the RAM LUN, a pattern on the file LUN
# (the host then finds it in the image).
# Parameters (set by the host): LUN0_SECTORS LUN1_SECTORS EXPECT_QUEUES NCPUS
# PATTERN_OFFSET FIO_SIZE_MB.
. /e2e/lib.sh

# lun_disk TARGET LUN: the sd disk at channel 0, that target and LUN.
lun_disk() {
    for d in /sys/block/sd*; do
        [ -e "$d/device" ] || continue
        case "$(basename "$(readlink -f "$d/device")")" in
            *:0:$1:$2) basename "$d" ;;
        esac
    done
}

i=0
while [ -z "$(lun_disk 0 0)" ] || [ -z "$(lun_disk 0 1)" ]; do
    if [ "$i" -ge 100 ]; then
        ls -l /sys/block
        fail "LUNs 0:0 and 0:1 did not both appear"
    fi
    i=$((i + 1))
    sleep 0.1
done
L0=$(lun_disk 0 0)
L1=$(lun_disk 0 1)
echo "e2e: LUN 0:0 is $L0, LUN 0:1 is $L1"
expect_eq "vCPUs" "$(grep -c ^processor /proc/cpuinfo)" "$NCPUS"
expect_eq "$L0 size (sectors)" "$(cat /sys/block/$L0/size)" "$LUN0_SECTORS"
expect_eq "$L1 size (sectors)" "$(cat /sys/block/$L1/size)" "$LUN1_SECTORS"
expect_eq "$L1 blk-mq queues" "$(ls /sys/block/$L1/mq | wc -l)" "$EXPECT_QUEUES"

write_pattern "/dev/$L0" "$PATTERN_OFFSET"
mark fio-start
run_fio --name=readme-scsi --filename="/dev/$L1" --rw=randwrite --bs=4k \
    --iodepth=8 --ioengine=libaio --direct=1 --numjobs="$NCPUS" \
    --size="${FIO_SIZE_MB}M" --offset_increment="${FIO_SIZE_MB}M" \
    --verify=crc32c --verify_fatal=1 --end_fsync=1 \
    --cpus_allowed="0-$((NCPUS - 1))" --cpus_allowed_policy=split --group_reporting
mark fio-end
check_all_queues_used virtio0 "$EXPECT_QUEUES" request
check_dmesg_clean
sync
