# SPDX-License-Identifier: BSD-3-Clause
# e2e-scsi, guest side: the virtio_scsi driver finds every LUN as a disk of
# the right size; sg_inq/sg_vpd show our identification, sg_luns lists the
# LUNs, sg_readcap matches the backends; verified fio runs on two LUNs at
# once; a pattern written to LUN 0:0 (the host finds it in the image); a
# LUN hot-added on the host appears as /dev/sdX without a rescan by hand,
# and goes away when the host removes it.
# Parameters: SECTORS_0_0 SECTORS_0_1 SECTORS_3_0 SECTORS_HOT PATTERN_OFFSET
# FIO_SIZE_MB.
. /e2e/lib.sh

# disk_of T L: the sdX of target T, LUN L (any host, channel 0).
disk_of() {
    for d in /sys/class/scsi_disk/*:0:"$1":"$2"/device/block/*; do
        [ -e "$d" ] && { basename "$d"; return 0; }
    done
    return 1
}

# wait_lun T L: wait up to 60 s for its disk node; prints sdX.
wait_lun() {
    i=0
    while ! disk_of "$1" "$2" >/dev/null; do
        [ "$i" -ge 300 ] && { ls /sys/class/scsi_disk >&2; fail "LUN $1:$2 did not appear"; }
        i=$((i + 1))
        sleep 0.2
    done
    d=$(disk_of "$1" "$2")
    wait_dev "$d"
    echo "$d"
}

A=$(wait_lun 0 0) || exit 1
B=$(wait_lun 0 1) || exit 1
C=$(wait_lun 3 0) || exit 1
echo "e2e: LUN 0:0=$A 0:1=$B 3:0=$C"
expect_eq "0:0 size" "$(cat /sys/block/$A/size)" "$SECTORS_0_0"
expect_eq "0:1 size" "$(cat /sys/block/$B/size)" "$SECTORS_0_1"
expect_eq "3:0 size" "$(cat /sys/block/$C/size)" "$SECTORS_3_0"
expect_eq "0:0 vendor" "$(tr -d " " < /sys/block/$A/device/vendor)" "UMDEV"

# Identification through the SCSI commands themselves.
sg_inq /dev/$A > /tmp/inq || fail "sg_inq failed"
cat /tmp/inq
grep -q "Vendor identification: UMDEV" /tmp/inq || fail "sg_inq: vendor"
grep -q "Product identification: VIRTUAL DISK" /tmp/inq || fail "sg_inq: product"
sg_vpd -p sn /dev/$A > /tmp/sn || fail "sg_vpd -p sn failed"
cat /tmp/sn
grep -q "scsi0-0-0" /tmp/sn || fail "sg_vpd: serial"
sg_vpd -p di /dev/$A > /tmp/di || fail "sg_vpd -p di failed"
cat /tmp/di
grep -q "designator type: NAA" /tmp/di && grep -q "0x6" /tmp/di || fail "sg_vpd: no NAA-6 designator"
grep -q "UMDEV" /tmp/di || fail "sg_vpd: no T10 vendor designator"
sg_vpd -p bl /dev/$A > /tmp/bl || fail "sg_vpd -p bl failed"
cat /tmp/bl
grep -qi "Maximum transfer length" /tmp/bl || fail "sg_vpd: block limits"
sg_vpd -p 0 /dev/$A | grep -qi "Block device characteristics" || fail "sg_vpd: supported pages"
sg_luns /dev/$A > /tmp/luns || fail "sg_luns failed"
cat /tmp/luns
grep -q "0000000000000000" /tmp/luns || fail "sg_luns: LUN 0"
grep -q "0001000000000000" /tmp/luns || fail "sg_luns: LUN 1"
expect_eq "sg_luns entries (target 0)" "$(grep -c '^    00' /tmp/luns)" 2
sg_luns /dev/$C | grep -c '^    00' > /tmp/n3
expect_eq "sg_luns entries (target 3)" "$(cat /tmp/n3)" 1
for pair in "$A:$SECTORS_0_0" "$B:$SECTORS_0_1" "$C:$SECTORS_3_0"; do
    d=${pair%%:*}
    n=${pair#*:}
    sg_readcap /dev/$d > /tmp/rc || fail "sg_readcap $d failed"
    grep -q "Number of logical blocks=$n" /tmp/rc || { cat /tmp/rc; fail "sg_readcap $d: not $n blocks"; }
    echo "e2e: sg_readcap $d = $n blocks (ok)"
done

# Verified random writes on two LUNs at once (different targets).
mark fio-start
run_fio --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=8 \
    --size="${FIO_SIZE_MB}M" --verify=crc32c --verify_fatal=1 --end_fsync=1 \
    --name=lun00 --filename=/dev/$A --name=lun30 --filename=/dev/$C
mark fio-end
write_pattern /dev/$A "$PATTERN_OFFSET"
check_dmesg_clean

# Hot-add: the host adds LUN 0:2 when it sees this mark.
mark hotadd
D=$(wait_lun 0 2) || exit 1
echo "e2e: hot-added LUN 0:2 is $D"
expect_eq "0:2 size" "$(cat /sys/block/$D/size)" "$SECTORS_HOT"
dd if=/e2e/pattern.bin of=/dev/$D bs=65536 oflag=direct conv=fsync status=none || fail "write to hot-added LUN"
check_pattern /dev/$D 0
sg_luns /dev/$A | grep -c '^    00' > /tmp/n
expect_eq "sg_luns entries after hot-add" "$(cat /tmp/n)" 3

# Hot-remove: the host removes it; the disk must go away by itself.
mark hotremove
i=0
while disk_of 0 2 >/dev/null || [ -b /dev/$D ]; do
    [ "$i" -ge 300 ] && fail "LUN 0:2 ($D) still there after hot-remove"
    i=$((i + 1))
    sleep 0.2
done
echo "e2e: $D is gone after hot-remove"
sg_luns /dev/$A | grep -c '^    00' > /tmp/n
expect_eq "sg_luns entries after hot-remove" "$(cat /tmp/n)" 2
# The remaining LUNs still work.
check_pattern /dev/$A "$PATTERN_OFFSET"
sync
