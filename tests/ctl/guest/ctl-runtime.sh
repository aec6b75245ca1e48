# SPDX-License-Identifier: BSD-3-Clause
# e2e-ctl-runtime, guest side: the disk umdevd created at run time (through
# its control socket) works. The host samples umdevd's statistics at READY
# and at IO-DONE, so the guest pauses after each mark to let it.
# Parameters: EXPECT_SECTORS, PATTERN_OFFSET.
. /e2e/lib.sh

wait_dev vda
expect_eq "vda size (sectors)" "$(cat /sys/block/vda/size)" "$EXPECT_SECTORS"
sync
mark READY
sleep 3
write_pattern /dev/vda "$PATTERN_OFFSET"
mark IO-DONE
sleep 3
check_dmesg_clean
