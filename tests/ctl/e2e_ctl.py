#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end test of the control plane: a device created at run time.

umdevd starts with no device; the disk is created through its control
socket with umdevctl, then a Linux guest boots with it (tests/e2e's guest,
QEMU under TCG). While the guest does I/O, `umdevctl stats` must move by at
least what the guest did, and `umdevctl remove` must be refused while QEMU
is connected; once the guest is gone the removal succeeds, the socket file
goes, and the data is in the image.

This reuses tests/e2e/e2e.py (guest build, QEMU and server handling) by
importing it; only the server's start-up and the host-side checks differ.

Second test: a virtio-scsi device created the same way; while the guest
runs, `umdevctl lun-add` makes a disk appear in it and `lun-remove` makes
it go, with no rescan by hand, and `save` carries the added LUN.

Usage: e2e_ctl.py TEST --umdevd PATH --umdevctl PATH --workdir DIR --cache-dir DIR
"""

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import e2e  # noqa: E402

MiB = e2e.MiB


class RuntimeSpec(e2e.ServerSpec):
    """umdevd with no --device: a helper creates the devices over RPC.

    The helper runs in the background while the shell execs umdevd (same
    pid, so e2e.Server's signals reach umdevd itself); e2e.Server then waits
    for the device sockets, which appear only once the runtime create worked.
    """

    def __init__(self, umdevd, umdevctl, rpc):
        super().__init__("umdevd", umdevd=umdevd)
        self.umdevctl = umdevctl
        self.rpc = rpc

    def argv(self, devices):
        ctl = "%s --rpc %s" % (shlex.quote(self.umdevctl), shlex.quote(self.rpc))
        creates = " && ".join(
            "%s create %s id=%s socket=%s %s"
            % (ctl, getattr(d, "ctl_type", "virtio-blk"), d.id, shlex.quote(d.sock),
               getattr(d, "ctl_opts", None) or
               "backend=file:%s num-queues=%d" % (shlex.quote(d.image), d.queues))
            for d in devices)
        helper = ("i=0; while [ ! -S %s ] && [ $i -lt 200 ]; do sleep 0.05; "
                  "i=$((i+1)); done; %s" % (shlex.quote(self.rpc), creates))
        return ["sh", "-c", "(%s) & exec %s --rpc %s" % (
            helper, shlex.quote(self.umdevd), shlex.quote(self.rpc))]


class CtlRuntime(e2e.Test):
    name = "e2e-ctl-runtime"
    script = os.path.join(HERE, "guest", "ctl-runtime.sh")
    image_mb = 64
    guest_timeout = 180

    def __init__(self, args, spec):
        super().__init__(args, spec)
        self.pattern = e2e.make_pattern("ctl-runtime", MiB)
        self.pattern_off = 16 * MiB
        self.files["/e2e/pattern.bin"] = self.pattern
        self.params.update(PATTERN_OFFSET=self.pattern_off)

    def ctl(self, *args, expect_rc=0):
        p = subprocess.run([self.spec.umdevctl, "--rpc", self.spec.rpc] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        if p.returncode != expect_rc:
            raise e2e.E2EFailure("umdevctl %s: exit %d (expected %d): %s%s"
                                 % (" ".join(args), p.returncode, expect_rc,
                                    p.stdout, p.stderr))
        return p

    def stats(self):
        out = json.loads(self.ctl("--json", "stats", "blk0").stdout)
        return out["devices"][0]["stats"]

    def list_dev(self):
        devs = json.loads(self.ctl("--json", "list").stdout)["devices"]
        return devs[0] if devs else None

    def drive(self):
        dev = self.list_dev()
        if not dev or not dev["connected"]:
            raise e2e.E2EFailure("the runtime-created device is not listed as "
                                 "connected while the guest runs: %r" % dev)
        if self.qemu.wait_for(r"E2E-MARK READY", 60) is None:
            self.fail_with_logs("guest never became READY")
        s0 = self.stats()
        if self.qemu.wait_for(r"E2E-MARK IO-DONE", 120) is None:
            self.fail_with_logs("guest never finished its I/O")
        s1 = self.stats()
        e2e.log("stats before %d requests, after %d requests (p50 %.1f us, "
                "p99 %.1f us)" % (s0["requests"], s1["requests"],
                                  s1["latency_us"]["p50"], s1["latency_us"]["p99"]))
        # The guest wrote then read 1 MiB in 64 KiB requests.
        if s1["requests"] - s0["requests"] < 32:
            raise e2e.E2EFailure("stats did not follow the guest's I/O: %r -> %r"
                                 % (s0, s1))
        if s1["bytes_from_guest"] - s0["bytes_from_guest"] < MiB or \
                s1["bytes_to_guest"] - s0["bytes_to_guest"] < MiB:
            raise e2e.E2EFailure("byte counters did not follow: %r -> %r" % (s0, s1))
        if s1["errors"] != 0 or s1["latency_us"]["p50"] <= 0 or not s1["queues"]:
            raise e2e.E2EFailure("unexpected stats: %r" % s1)
        # Refused while QEMU is connected, and the guest carries on.
        p = self.ctl("remove", "blk0", expect_rc=1)
        if "connected" not in p.stderr:
            raise e2e.E2EFailure("remove refusal does not say why: %r" % p.stderr)
        # Once the guest is gone (it powers off by itself), removal works.
        if self.qemu.wait_exit(self.guest_timeout) is None:
            self.fail_with_logs("guest still running")
        deadline = time.monotonic() + 10
        while self.list_dev()["connected"]:
            if time.monotonic() > deadline:
                raise e2e.E2EFailure("QEMU exited but the device still shows "
                                     "a client")
            time.sleep(0.1)
        self.ctl("remove", "blk0")
        if os.path.lexists(self.sock):
            raise e2e.E2EFailure("socket %s left after remove" % self.sock)
        if self.list_dev() is not None:
            raise e2e.E2EFailure("device still listed after remove")
        e2e.log("host: device removed after the guest left; socket gone")

    def check_host(self):
        self.expect_image(self.pattern_off, self.pattern, "guest pattern")


class ScsiQemu(e2e.Qemu):
    """e2e's guest, with vhost-user-scsi-pci in place of vhost-user-blk-pci."""

    def __init__(self, kernel, initrd, devices, reconnect, logpath, smp=2):
        super().__init__(kernel, initrd, devices, reconnect, logpath, smp)
        for i, a in enumerate(self.argv):
            if a.startswith("vhost-user-blk-pci,"):
                chardev = a.split(",")[1]
                self.argv[i] = "vhost-user-scsi-pci,%s,num_queues=2" % chardev


class CtlScsiHotplug(CtlRuntime):
    """virtio-scsi created at run time; a LUN hot-added and hot-removed."""

    name = "e2e-ctl-scsi-hotplug"
    script = os.path.join(HERE, "guest", "ctl-scsi-hotplug.sh")

    def make_devices(self):
        d = self.device("scsi0", backend="ram", size_mb=64, queues=2)
        d.image = os.path.join(self.work, "lun1.img")  # LUN 0:1, added later
        d.ctl_type = "virtio-scsi"
        d.ctl_opts = "lun=0:0:ram:64M num-queues=2"
        return [d]

    def stats(self):
        out = json.loads(self.ctl("--json", "stats", "scsi0").stdout)
        return out["devices"][0]["stats"]

    def run(self):
        # Test.run() builds its guest from e2e.Qemu: give it the SCSI one.
        orig = e2e.Qemu
        e2e.Qemu = ScsiQemu
        try:
            super().run()
        finally:
            e2e.Qemu = orig

    def drive(self):
        if self.qemu.wait_for(r"E2E-MARK READY", 60) is None:
            self.fail_with_logs("guest never saw LUN 0:0")
        self.ctl("lun-add", "scsi0", "0:1", "file:" + self.image)
        e2e.log("host: LUN 0:1 added with umdevctl")
        if self.qemu.wait_for(r"E2E-MARK ADDED-OK", 90) is None:
            self.fail_with_logs("guest did not use the hot-added LUN")
        s = self.stats()
        if s["requests"] < 32:
            raise e2e.E2EFailure("stats did not follow the guest's I/O: %r" % s)
        saved = json.loads(self.ctl("save").stdout)["devices"][0]
        if "0:1" not in json.dumps(saved.get("lun")):
            raise e2e.E2EFailure("save does not carry the added LUN: %r" % saved)
        self.ctl("lun-remove", "scsi0", "0:1")
        e2e.log("host: LUN 0:1 removed with umdevctl")
        if self.qemu.wait_for(r"E2E-MARK REMOVED-OK", 90) is None:
            self.fail_with_logs("guest did not see the LUN go")
        p = self.ctl("remove", "scsi0", expect_rc=1)
        if "connected" not in p.stderr:
            raise e2e.E2EFailure("remove refusal does not say why: %r" % p.stderr)
        if self.qemu.wait_exit(self.guest_timeout) is None:
            self.fail_with_logs("guest still running")
        deadline = time.monotonic() + 10
        while self.list_dev()["connected"]:
            if time.monotonic() > deadline:
                raise e2e.E2EFailure("QEMU exited but the device still shows a client")
            time.sleep(0.1)
        self.ctl("remove", "scsi0")
        if os.path.lexists(self.sock) or self.list_dev() is not None:
            raise e2e.E2EFailure("device or socket left after remove")
        e2e.log("host: device removed after the guest left; socket gone")


TESTS = {t.name: t for t in (CtlRuntime, CtlScsiHotplug)}


def main():
    signal.signal(signal.SIGTERM, e2e.on_signal)
    signal.signal(signal.SIGINT, e2e.on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("test", choices=sorted(TESTS))
    ap.add_argument("--umdevd", required=True)
    ap.add_argument("--umdevctl", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--cache-dir", default="e2e-guest-cache")
    args = ap.parse_args()
    cls = TESTS[args.test]
    if not args.workdir:
        args.workdir = os.path.join("e2e-work", args.test)
    try:
        spec = RuntimeSpec(os.path.abspath(args.umdevd), os.path.abspath(args.umdevctl),
                           None)
        test = cls(args, spec)
        # The control socket lives next to the device sockets (a short path).
        spec.rpc = os.path.join(test.sockdir, "umdevd-rpc.sock")
        test.run()
    except e2e.E2EFailure as e:
        print("E2E FAIL %s: %s" % (args.test, e), flush=True)
        return 1
    print("E2E PASS %s" % args.test, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
