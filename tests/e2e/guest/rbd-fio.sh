# SPDX-License-Identifier: BSD-3-Clause
# e2e-rbd-fio, guest side: e2e-blk-fio's checks on a disk whose backend is a
# Ceph RBD image, then the host grows the image (rbd resize) and the guest
# must see the new size (virtio config change). Parameters: those of
# blk-fio.sh, and EXPECT_SECTORS_GROWN.
. /e2e/blk-fio.sh

mark resize-wait
i=0
while [ "$(cat /sys/block/vda/size)" != "$EXPECT_SECTORS_GROWN" ]; do
    if [ "$i" -ge 300 ]; then
        fail "vda has $(cat /sys/block/vda/size) sectors, want $EXPECT_SECTORS_GROWN after rbd resize"
    fi
    i=$((i + 1))
    sleep 0.1
done
# The new end of the disk is usable.
write_pattern /dev/vda $(((EXPECT_SECTORS_GROWN - 2048) * 512))
mark resized
