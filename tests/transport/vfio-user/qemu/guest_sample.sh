# SPDX-License-Identifier: BSD-3-Clause
# Guest side of check_sample.py (busybox sh, run as /e2e/test.sh by the e2e
# initramfs). Pokes pci-sample through /sys and devmem: no driver needed.
# Prints "KEY value" lines that check_sample.py compares.
D=""
for d in /sys/bus/pci/devices/*; do
  if [ "$(cat $d/vendor)" = "0x1b36" ] && [ "$(cat $d/device)" = "0x00f0" ]; then D=$d; fi
done
[ -n "$D" ] || { echo "E2E-FAIL: no pci-sample device"; exit 1; }
B0=$(head -1 $D/resource | cut -d' ' -f1)
r() { devmem $((B0 + $1)) 32; }
w() { devmem $((B0 + $1)) 32 $2; }
cmd() { # cmd CMD ADDR LEN
  w 0x08 $2; w 0x0c 0; w 0x10 $3; w 0x18 3; w 0x14 $1; sleep 0.2
}
# Command register: memory space and bus master (the guest has no driver for it).
printf '\006\000' | dd of=$D/config bs=1 seek=4 count=2 conv=notrunc 2>/dev/null
echo "CAPS $(od -A n -t x1 -j 52 -N 1 $D/config)"
echo "ID $(r 0)"
w 0x04 0x12345678
echo "SCRATCH $(r 0x04)"
w 0x1000 0xcafef00d                    # shared page: QEMU mmapped our memfd
echo "SHARED $(r 0x1000)"
cmd 2 0 64                             # guest RAM (memfd, fd DMA) -> device
echo "RAM $(dd if=/dev/mem bs=16 count=1 2>/dev/null | od -A n -t x4 | tr -s ' ')"
echo "DEVRAM $(r 0x1000) $(r 0x1004) $(r 0x1008) $(r 0x100c) status $(r 0x18)"
cmd 2 0xfffffff0 16                    # BIOS ROM: no fd, DMA_READ message
echo "DEVROM $(r 0x1000) status $(r 0x18)"
w 0x1000 0x11223344; w 0x1004 0x55667788
cmd 1 0xfd000100 8                     # VGA framebuffer: no fd, DMA_WRITE message
echo "VGA $(devmem 0xfd000100 32) $(devmem 0xfd000104 32) status $(r 0x18)"
exit 0
