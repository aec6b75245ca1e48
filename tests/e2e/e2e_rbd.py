#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end test of the RBD backend: e2e-blk-fio on a Ceph RBD image.

A Linux guest under QEMU runs e2e-blk-fio's verified fio and pattern writes
on a vhost-user-blk disk that umdevd serves from an RBD image; the host then
grows the image with `rbd resize` and the guest must see the new size
(virtio config change); after power-off `rbd export` must hold what the
guest wrote. Needs a cluster: $CEPH_CONF (tests/backend/rbd-tests.sh starts
one) with a pool "rbd".

Usage: e2e_rbd.py e2e-rbd-fio --umdevd PATH --workdir DIR --cache-dir DIR
"""

import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import MiB, SECTOR, E2EFailure, log  # noqa: E402

IMAGE = "e2e-fio"


def rbd(*args):
    try:
        subprocess.run(["rbd", "--no-progress"] + list(args), check=True,
                       stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError as e:
        raise E2EFailure("rbd %s failed (status %d)" % (" ".join(args), e.returncode))


class RbdSpec(e2e.ServerSpec):
    """umdevd with each device's backend an RBD image (Device.backend "rbd")."""

    def argv(self, devices):
        argv = [self.umdevd]
        for d in devices:
            argv += ["--device", "virtio-blk,id=%s,socket=%s,backend=rbd:rbd/%s:conf=%s,"
                     "num-queues=%d" % (d.id, d.sock, IMAGE, os.environ["CEPH_CONF"],
                                        d.queues)]
        return argv


class RbdFio(e2e.BlkFio):
    name = "e2e-rbd-fio"
    script = "rbd-fio.sh"
    image_mb = 128
    grown_mb = 160
    fio_mb = 16

    def __init__(self, args, spec):
        if not os.environ.get("CEPH_CONF"):
            raise E2EFailure("CEPH_CONF is not set (run under tests/backend/rbd-tests.sh)")
        if spec.kind != "umdevd":
            raise E2EFailure("e2e-rbd-fio runs against umdevd only")
        super().__init__(args, RbdSpec("umdevd", umdevd=spec.umdevd))
        self.pattern_off = 100 * MiB
        self.params.update(PATTERN_OFFSET=self.pattern_off,
                           EXPECT_SECTORS_GROWN=self.grown_mb * MiB // SECTOR)
        with open(os.path.join(e2e.GUEST_DIR, "blk-fio.sh")) as f:
            self.files["/e2e/blk-fio.sh"] = f.read().encode()

    def make_devices(self):
        return [e2e.Device("blk0", os.path.join(self.sockdir, "blk0.sock"), backend="rbd",
                           size_mb=self.image_mb, queues=self.queues)]

    def prepare_image(self):
        subprocess.run(["rbd", "rm", "--no-progress", "rbd/" + IMAGE],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rbd("create", "--size", "%dM" % self.image_mb, "rbd/" + IMAGE)

    def drive(self):
        if self.qemu.wait_for(r"E2E-MARK resize-wait", self.guest_timeout) is None:
            self.fail_with_logs("guest never got to the resize")
        rbd("resize", "--size", "%dM" % self.grown_mb, "rbd/" + IMAGE)
        log("host: image grown to %d MiB" % self.grown_mb)

    def check_host(self):
        self.image = os.path.join(self.work, "export.img")
        rbd("export", "rbd/" + IMAGE, self.image)
        super().check_host()
        self.expect_image(self.grown_mb * MiB - MiB, self.pattern,
                          "pattern at the end of the grown disk")
        os.unlink(self.image)
        rbd("rm", "rbd/" + IMAGE)


if __name__ == "__main__":
    e2e.TESTS[RbdFio.name] = RbdFio
    sys.exit(e2e.main())
