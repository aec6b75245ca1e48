#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""e2e-blk-nbd: e2e-blk-fio on a disk whose backend is an NBD export.

Concepts: the test starts nbdkit (memory plugin) on a UNIX socket, umdevd
serves a virtio-blk device with backend=nbd+unix:///?socket=..., and the
guest (QEMU 7.2) runs the same verified fio and pattern writes as
e2e-blk-fio (guest/blk-fio.sh). After the guest powers off and umdevd
stops, the host copies the export out with nbdcopy and checks the copy
exactly as e2e-blk-fio checks its image file: the pattern is there and every
fio block carries its verify header.

Usage: e2e_nbd.py --umdevd PATH --workdir DIR --cache-dir DIR
"""

import argparse
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import E2EFailure, log  # noqa: E402


class NbdServerSpec(e2e.ServerSpec):
    """umdevd with the device's backend given as a full spec (the NBD URI)."""

    def argv(self, devices):
        argv = [self.umdevd]
        for d in devices:
            argv += ["--device",
                     "virtio-blk,id=%s,socket=%s,backend=%s,num-queues=%d"
                     % (d.id, d.sock, d.backend, d.queues)]
        return argv


class BlkNbd(e2e.BlkFio):
    name = "e2e-blk-nbd"

    def __init__(self, args, spec):
        self.nbd_sock = None
        self.nbdkit = None
        super().__init__(args, spec)
        # The export copied out by nbdcopy, checked like e2e-blk-fio's image.
        self.image = os.path.join(self.work, "nbdcopy.img")

    def make_devices(self):
        self.nbd_sock = os.path.join(self.sockdir, "nbd.sock")
        return [self.device("blk0", size_mb=self.image_mb, queues=self.queues,
                            backend="nbd+unix:///?socket=%s&nbd-timeout=30"
                            % self.nbd_sock)]

    def prepare_image(self):
        if os.path.lexists(self.nbd_sock):
            os.unlink(self.nbd_sock)
        logf = open(os.path.join(self.work, "nbdkit.log"), "ab")
        self.nbdkit = subprocess.Popen(
            ["nbdkit", "-f", "-U", self.nbd_sock, "memory",
             "size=%dM" % self.image_mb], stdout=logf, stderr=logf)
        logf.close()
        for _ in range(500):
            if os.path.exists(self.nbd_sock):
                return
            if self.nbdkit.poll() is not None:
                break
            time.sleep(0.02)
        raise E2EFailure("nbdkit did not start; see nbdkit.log")

    def check_host(self):
        if self.nbdkit.poll() is not None:
            raise E2EFailure("nbdkit died during the test")
        subprocess.run(["nbdcopy", "nbd+unix:///?socket=" + self.nbd_sock,
                        self.image], check=True)
        log("host: export copied out with nbdcopy")
        super().check_host()

    def cleanup(self):
        if self.nbdkit and self.nbdkit.poll() is None:
            self.nbdkit.send_signal(signal.SIGTERM)
            try:
                self.nbdkit.wait(10)
            except subprocess.TimeoutExpired:
                self.nbdkit.kill()
                self.nbdkit.wait()


def main():
    signal.signal(signal.SIGTERM, e2e.on_signal)
    signal.signal(signal.SIGINT, e2e.on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--umdevd", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--cache-dir", required=True)
    args = ap.parse_args()
    args.server = "umdevd"
    try:
        spec = NbdServerSpec("umdevd", umdevd=os.path.abspath(args.umdevd))
        BlkNbd(args, spec).run()
    except E2EFailure as e:
        print("E2E FAIL %s: %s" % (BlkNbd.name, e), flush=True)
        return 1
    print("E2E PASS %s" % BlkNbd.name, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
