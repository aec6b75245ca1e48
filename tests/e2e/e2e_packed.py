#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end tests of packed virtqueues (VIRTIO_F_RING_PACKED) with QEMU 7.2.

The e2e.py tests, with ",packed=on" on QEMU's vhost-user device and a check
in the guest that the driver really negotiated the packed layout (bit 34 of
the virtio device's features):

- e2e-blk-fio-packed: e2e-blk-fio (verified fio on two queues, a pattern
  checked in the image).
- e2e-blk-reconnect-packed: e2e-blk-reconnect (umdevd SIGKILLed and
  SIGTERMed mid-fio with reconnect=1, restarted; fio verifies, the image is
  right). QEMU 7.2 hands a restarted back-end the ring's start as its packed
  base: the inflight region is what puts the rings back where they were.
- e2e-scsi-fio-packed: vhost-user-scsi-pci packed=on against umdevd's
  virtio-scsi (QEMU 7.2's vhost-user-scsi cannot reconnect): verified fio
  on a file LUN, a pattern checked in the image.
"""
import argparse
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import MiB, E2EFailure, log  # noqa: E402

GUEST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest")

# Inserted after the guest script finds its disk: the driver must have
# negotiated the packed ring, or the test would prove nothing.
PACKED_CHECK = """
packed_bit=$(cut -c35 "$PACKED_FEATURES")
expect_eq "VIRTIO_F_RING_PACKED negotiated ($PACKED_FEATURES)" "$packed_bit" 1
echo "e2e: the device runs packed virtqueues"
"""


def packed_qemu(qemu, device):
    """Add packed=on to every @device (a QEMU -device driver) in @qemu's argv."""
    argv = list(qemu.argv)
    hits = 0
    for i, a in enumerate(argv):
        if a.startswith(device + ","):
            argv[i] = a + ",packed=on"
            hits += 1
    if not hits:
        raise E2EFailure("no %s on QEMU's command line" % device)
    qemu.argv = argv
    return qemu


class PackedBlk:
    """Mix-in for the blk tests of e2e.py."""

    def make_qemu(self, kernel, initrd):
        return packed_qemu(super().make_qemu(kernel, initrd),
                           "vhost-user-blk-pci")

    def guest_script(self):
        body = super().guest_script()
        marker = "wait_dev vda\n"
        if marker not in body:
            raise E2EFailure("guest script has no 'wait_dev vda' line")
        return body.replace(marker, marker + "PACKED_FEATURES=/sys/block/vda/device/features\n" +
                            PACKED_CHECK, 1)


class BlkFioPacked(PackedBlk, e2e.BlkFio):
    name = "e2e-blk-fio-packed"


class BlkReconnectPacked(PackedBlk, e2e.BlkReconnect):
    name = "e2e-blk-reconnect-packed"


class ScsiServer(e2e.Server):
    """umdevd with one virtio-scsi device, LUN 0:0 on the test's image."""

    def __init__(self, umdevd, dev, logpath):
        self.argv = [umdevd, "--device",
                     "virtio-scsi,id=%s,socket=%s,lun=0:0:file:%s,num-queues=%d"
                     % (dev.id, dev.sock, dev.image, dev.queues)]
        self.socks = [dev.sock]
        self.logpath = logpath
        self.proc = None
        self.starts = 0


class ScsiFioPacked(e2e.Test):
    name = "e2e-scsi-fio-packed"
    script = "scsi-packed.sh"
    fio_mb = 32
    image_mb = 128

    def __init__(self, args, spec):
        if spec.kind != "umdevd":
            raise E2EFailure("%s runs against umdevd only" % self.name)
        super().__init__(args, spec)
        self.pattern = e2e.make_pattern("scsi-packed", MiB)
        self.pattern_off = 100 * MiB
        self.files["/e2e/pattern.bin"] = self.pattern
        self.params.update(FIO_SIZE_MB=self.fio_mb, PATTERN_OFFSET=self.pattern_off,
                           LUN0_SECTORS=self.image_mb * MiB // e2e.SECTOR)

    def guest_script(self):
        return PACKED_CHECK.join(super().guest_script().split("# PACKED-CHECK\n", 1))

    def make_server(self):
        return ScsiServer(self.spec.umdevd, self.devices[0],
                          os.path.join(self.work, "server.log"))

    def make_qemu(self, kernel, initrd):
        q = super().make_qemu(kernel, initrd)
        q.argv = [a.replace("vhost-user-blk-pci,", "vhost-user-scsi-pci,")
                  .replace(",num-queues=%d" % self.queues, ",num_queues=%d" % self.queues)
                  for a in q.argv]
        return packed_qemu(q, "vhost-user-scsi-pci")

    def check_host(self):
        self.expect_image(self.pattern_off, self.pattern, "guest pattern")
        e2e.check_fio_blocks(self.image, 0, 2 * self.fio_mb * MiB)


TESTS = {cls.name: cls for cls in (BlkFioPacked, BlkReconnectPacked, ScsiFioPacked)}


def main():
    signal.signal(signal.SIGTERM, e2e.on_signal)
    signal.signal(signal.SIGINT, e2e.on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("test", choices=sorted(TESTS))
    ap.add_argument("--umdevd")
    ap.add_argument("--server", default="umdevd")
    ap.add_argument("--workdir", default="e2e-work")
    ap.add_argument("--cache-dir", default="e2e-guest-cache")
    args = ap.parse_args()
    try:
        spec = e2e.ServerSpec.from_args(args)
        TESTS[args.test](args, spec).run()
    except (E2EFailure, OSError, subprocess.CalledProcessError,
            RuntimeError) as e:
        print("E2E FAIL %s: %s" % (args.test, e), flush=True)
        return 1
    print("E2E PASS %s" % args.test, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
