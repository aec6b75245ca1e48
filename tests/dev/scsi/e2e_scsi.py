#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end test of umdevd's virtio-scsi device with QEMU and a Linux guest.

Reuses tests/e2e/e2e.py (guest build, server and QEMU handling, console
marks): umdevd serves one virtio-scsi device with three LUNs (two file
images on two targets and a ram disk), QEMU attaches it as
vhost-user-scsi-pci, and the guest script (guest/scsi-e2e.sh) checks what
the guest's virtio_scsi + sd drivers and sg3-utils see. While the guest
runs, the host hot-adds and hot-removes a LUN with umdevctl.

Usage: e2e_scsi.py --umdevd PATH --umdevctl PATH --workdir DIR --cache-dir DIR
"""

import argparse
import os
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "e2e"))
import e2e  # noqa: E402
import mkguest  # noqa: E402

MiB = 1 << 20
# The guest checks need these; mkguest copies them in when the host has them.
for _b in ("sg_inq", "sg_vpd", "sg_luns", "sg_readcap"):
    if _b not in mkguest.OPTIONAL_BINARIES:
        mkguest.OPTIONAL_BINARIES.append(_b)


class ScsiServer(e2e.Server):
    """umdevd with one virtio-scsi device and its control socket."""

    def __init__(self, spec, devices, logpath):
        super().__init__(spec, devices, logpath)
        t = ScsiTest.current
        self.argv = [spec.umdevd, "--rpc", t.rpc, "--device",
                     "virtio-scsi,id=scsi0,socket=%s,num-queues=2,"
                     "lun=0:0:file:%s,lun=0:1:ram:%dM,lun=3:0:file:%s"
                     % (t.sock, t.image, t.ram_mb, t.image1)]


class ScsiQemu(e2e.Qemu):
    """The guest with a vhost-user-scsi-pci device instead of -blk."""

    def __init__(self, kernel, initrd, devices, reconnect, logpath, smp=2):
        super().__init__(kernel, initrd, [], reconnect, logpath, smp)
        self.argv += ["-chardev", "socket,id=c0,path=%s" % devices[0].sock,
                      "-device", "vhost-user-scsi-pci,chardev=c0,num_queues=2"]


class ScsiTest(e2e.Test):
    name = "e2e-scsi"
    script = "scsi-e2e.sh"
    image_mb = 64
    image1_mb = 48
    ram_mb = 32
    hot_mb = 16
    guest_timeout = 420
    current = None

    def __init__(self, args, spec):
        super().__init__(args, spec)
        ScsiTest.current = self
        self.image1 = os.path.join(self.work, "lun30.img")
        self.rpc = os.path.join(self.sockdir, "rpc.sock")
        self.pattern = e2e.make_pattern("scsi-e2e", MiB)
        self.files["/e2e/pattern.bin"] = self.pattern
        self.pattern_offset = 40 * MiB
        self.params = {
            "SECTORS_0_0": self.image_mb * MiB // 512,
            "SECTORS_0_1": self.ram_mb * MiB // 512,
            "SECTORS_3_0": self.image1_mb * MiB // 512,
            "SECTORS_HOT": self.hot_mb * MiB // 512,
            "PATTERN_OFFSET": self.pattern_offset,
            "FIO_SIZE_MB": 16,
        }

    def make_devices(self):
        return [self.device("scsi0", size_mb=self.image_mb)]

    def prepare_image(self):
        super().prepare_image()
        with open(self.image1, "wb") as f:
            f.truncate(self.image1_mb * MiB)

    def guest_script(self):
        with open(os.path.join(e2e.GUEST_DIR, "lib.sh")) as f:
            self.files["/e2e/lib.sh"] = f.read().encode()
        with open(os.path.join(HERE, "guest", self.script)) as f:
            body = f.read()
        head = "".join("%s=%s\n" % (k, v) for k, v in sorted(self.params.items()))
        return "# parameters from e2e_scsi.py\n" + head + body

    def ctl(self, *args):
        argv = [self.args.umdevctl, "--rpc", self.rpc] + list(args)
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        e2e.log("host: %s -> %d %s" % (" ".join(args), r.returncode,
                                       r.stdout.decode(errors="replace").strip()))
        if r.returncode != 0:
            self.fail_with_logs("umdevctl %s failed" % " ".join(args))

    def drive(self):
        for mark, action in (("hotadd", ("lun-add", "scsi0", "0:2",
                                         "ram:%dM" % self.hot_mb)),
                             ("hotremove", ("lun-remove", "scsi0", "0:2"))):
            if self.qemu.wait_for(r"E2E-MARK %s" % mark, self.guest_timeout) is None:
                self.fail_with_logs("guest never reached the %s step" % mark)
            self.ctl(*action)

    def check_host(self):
        self.expect_image(self.pattern_offset, self.pattern, "pattern on LUN 0:0")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--umdevd", required=True)
    ap.add_argument("--umdevctl", required=True)
    ap.add_argument("--workdir", default="e2e-work/e2e-scsi")
    ap.add_argument("--cache-dir", default="e2e-guest-cache")
    args = ap.parse_args()
    args.server = "umdevd"
    e2e.Server = ScsiServer
    e2e.Qemu = ScsiQemu
    try:
        spec = e2e.ServerSpec.from_args(args)
        if spec.kind != "umdevd":
            raise e2e.E2EFailure("only umdevd serves vhost-user-scsi here")
        ScsiTest(args, spec).run()
    except e2e.E2EFailure as e:
        print("E2E FAIL e2e-scsi: %s" % e, flush=True)
        return 1
    print("E2E PASS e2e-scsi", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
