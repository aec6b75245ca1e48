# SPDX-License-Identifier: BSD-3-Clause
# e2e-arm64, guest side (arm64 guest on QEMU's virt machine): four disks
# served by one umdevd, virtio-blk and virtio-scsi each on virtio-pci and on
# virtio-mmio, all with QUEUES request queues. Each disk is found by its
# transport (its sysfs path), gets verified fio on every queue (one job
# pinned to each vCPU, iodepth 32), then a pattern the host looks for.
# Parameters: QUEUES SECTORS JOB_MB PATTERN_OFFSET BLK_PCI_SERIAL
# BLK_MMIO_SERIAL.
. /e2e/lib.sh

for d in vda vdb sda sdb; do
    wait_dev "$d"
done
expect_eq "vCPUs" "$(grep -c ^processor /proc/cpuinfo)" "$QUEUES"

# transport DISK: "mmio" or "pci", from where the device sits in sysfs.
transport() {
    case "$(readlink -f "/sys/block/$1")" in
    *virtio_mmio*|*virtio-mmio*) echo mmio ;;
    */pci0000:*) echo pci ;;
    *) fail "$1: unknown transport: $(readlink -f "/sys/block/$1")" ;;
    esac
}

for d in vda vdb; do
    t=$(transport "$d")
    eval "blk_$t=$d"
done
for d in sda sdb; do
    t=$(transport "$d")
    eval "scsi_$t=$d"
done
[ -n "$blk_pci" ] && [ -n "$blk_mmio" ] || fail "virtio-blk disks not on both transports"
[ -n "$scsi_pci" ] && [ -n "$scsi_mmio" ] || fail "virtio-scsi disks not on both transports"
expect_eq "virtio-blk on pci serial" "$(cat /sys/block/$blk_pci/serial)" "$BLK_PCI_SERIAL"
expect_eq "virtio-blk on mmio serial" "$(cat /sys/block/$blk_mmio/serial)" "$BLK_MMIO_SERIAL"
disks="$blk_pci $blk_mmio $scsi_pci $scsi_mmio"
for d in $disks; do
    expect_eq "$d ($(transport $d)) size" "$(cat /sys/block/$d/size)" "$SECTORS"
    expect_eq "$d blk-mq queues" "$(ls /sys/block/$d/mq | wc -l)" "$QUEUES"
done

# One fio section per disk; its QUEUES jobs get disjoint regions
# (offset_increment), so fio's "multiple writers" warning is harmless.
set --
for d in $disks; do
    set -- "$@" --name="$d" --filename="/dev/$d"
done
mark fio-start
run_fio --ioengine=libaio --direct=1 --bs=4k --iodepth=32 --rw=randwrite \
    --size="${JOB_MB}M" --offset_increment="${JOB_MB}M" --numjobs="$QUEUES" \
    --cpus_allowed="0-$((QUEUES - 1))" --cpus_allowed_policy=split \
    --verify=crc32c --verify_fatal=1 "$@"
mark fio-end

# The host checks (umdevctl stats) that every queue carried requests.
for d in $disks; do
    write_pattern "/dev/$d" "$PATTERN_OFFSET"
done
echo "e2e: disk order $disks"
check_dmesg_clean
