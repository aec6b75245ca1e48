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

No vhost-user-scsi-pci variant: QEMU (7.2 up to 10.2) does not forward
VIRTIO_F_RING_PACKED to a vhost-user-scsi back-end (it is missing from that
device's user_feature_bits), so with packed=on the guest drives a packed
ring while the back-end is told to expect a split one, whatever the
back-end. tests/proto/test_umdevd_scsi_packed.c covers umdevd's packed
virtio-scsi with our own driver instead.
"""
import argparse
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import E2EFailure  # noqa: E402

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


TESTS = {cls.name: cls for cls in (BlkFioPacked, BlkReconnectPacked)}


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
