#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""e2e-multitenant: one tenant's hostile front-end cannot hurt another's disk.

Concepts: one umdevd serves two virtio-blk devices. Tenant A is a real guest
(QEMU 7.2, vhost-user-blk-pci) running verified fio passes (crc32c) for
fio_seconds. Once fio runs, the host starts tenant B's "VMM", the
e2e-hostile-tenant program (hostile_tenant.c), on the other device: it
truncates the memfd behind its guest memory and kicks, first with the data
buffers there, then with the ring, each on a fresh connection; then it
floods new connections with valid requests that change nothing (without
replies, at full speed; with replies it never reads, at a steady rate), then
with garbage, opens more connections that send only garbage, and ends with
a front-end that sends half a message and stops, held open until the end.

Pass means: tenant A's fio verifies every pass with no I/O error and all its
blocks reach the image; umdevd is alive after the attack and after the
guest; it logged an error about the hostile device after each truncation
and none about tenant A; the hostile client saw its connection closed after
each truncation and every garbage connection closed; and SIGTERM (with the
half-message front-end still connected) makes umdevd exit within
shutdown_limit seconds.

Usage: e2e_multitenant.py --umdevd PATH --hostile PATH --workdir DIR
                          --cache-dir DIR
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import E2EFailure, MiB, log  # noqa: E402

class Multitenant(e2e.Test):
    name = "e2e-multitenant"
    script = "multitenant.sh"
    image_mb = 128
    fio_mb = 16
    # Verified fio passes run at least this long; the attack must be over
    # before they end.
    fio_seconds = 30
    guest_timeout = 180
    shutdown_limit = 5.0
    attack_timeout = 90

    def __init__(self, args, spec):
        super().__init__(args, spec)
        self.hostile_log = os.path.join(self.work, "hostile.log")
        self.hostile = None
        self.log_offset = 0
        self.params.update(FIO_SIZE_MB=self.fio_mb,
                           FIO_SECONDS=self.fio_seconds)

    def make_devices(self):
        return [self.device("tenant-a", size_mb=self.image_mb,
                            queues=self.queues),
                self.device("hostile", backend="ram", size_mb=64, queues=1)]

    def make_qemu(self, kernel, initrd):
        # Tenant A's guest gets only its own device.
        return e2e.Qemu(kernel, initrd, self.devices[:1], self.reconnect,
                        os.path.join(self.work, "console.log"))

    def hostile_lines(self):
        try:
            with open(self.hostile_log, errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def server_log_since(self, offset):
        with open(self.server.logpath, errors="replace") as f:
            f.seek(offset)
            return f.read().splitlines()

    def fail_attack(self, why):
        # A dead umdevd explains everything else the hostile client saw.
        self.server.proc.poll()
        status = self.server.proc.returncode
        if status is not None:
            why = "umdevd died during the attack (%s); %s" % (
                "killed by %s" % signal.Signals(-status).name if status < 0
                else "exit status %d" % status, why)
        self.fail_with_logs("%s\n---- hostile client (%s) ----\n%s"
                            % (why, self.hostile_log,
                               "\n".join(self.hostile_lines()[-30:])))

    def attack(self, steps, until):
        """Run the hostile client with @steps until it prints @until (or
        exits, for HOSTILE-DONE); fail on HOSTILE-FAIL or a dead umdevd."""
        argv = [self.args.hostile, self.devices[1].sock] + steps
        log("tenant B: %s" % " ".join(argv))
        t = time.monotonic()
        first = len(self.hostile_lines())
        with open(self.hostile_log, "ab") as out:
            self.hostile = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                            stdout=out,
                                            stderr=subprocess.STDOUT)
        while True:
            lines = self.hostile_lines()[first:]
            if any(x.startswith("HOSTILE-FAIL") for x in lines):
                self.fail_attack("the hostile client found umdevd "
                                 "misbehaving")
            if until in lines and (until != "HOSTILE-DONE" or
                                   self.hostile.poll() == 0):
                break
            if self.hostile.poll() is not None and until not in lines:
                self.fail_attack("the hostile client exited (status %d) "
                                 "before finishing its steps"
                                 % self.hostile.returncode)
            if not self.server.alive():
                self.fail_attack("tenant A's disk is gone with it")
            if time.monotonic() - t > self.attack_timeout:
                self.fail_attack("the hostile client's %s did not finish in "
                                 "%d s" % (" ".join(steps),
                                           self.attack_timeout))
            time.sleep(0.1)
        self.timing(" ".join(steps), t)
        for line in lines:
            log("tenant B: " + line)
        if not self.server.alive():
            self.fail_attack("tenant A's disk is gone with it")

    def drive(self):
        if self.qemu.wait_for(r"E2E-MARK fio-start", 120) is None:
            self.fail_with_logs("tenant A's guest never started fio")
        self.log_offset = os.path.getsize(self.server.logpath)
        # First its guest memory vanishes under the device: each time umdevd
        # must say so (nothing else this client does could cause a line).
        for step in ("data-gone", "ring-gone"):
            offset = os.path.getsize(self.server.logpath)
            self.attack([step], "HOSTILE-DONE")
            deadline = time.monotonic() + 3
            while True:
                failed = [x for x in self.server_log_since(offset)
                          if re.search(r"\b(error|warning): hostile[.:]", x)]
                if failed or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if not failed:
                self.fail_attack("umdevd logged no error or warning about "
                                 "the hostile device after %s" % step)
            log("host: umdevd logged the hostile device's failure: %r"
                % failed[0])
        # Then floods that stay unread until umdevd is told to stop.
        self.attack(["burst", "flood", "hold"], "HOSTILE-HOLDING")
        if self.qemu.find(r"E2E-MARK fio-end"):
            self.fail_attack("tenant A's fio finished before the attack was "
                             "over; raise fio_seconds")
        log("attack over, umdevd alive, tenant A's fio still running")

    def check_host(self):
        tenant_a = [x for x in self.server_log_since(self.log_offset)
                    if re.search(r"\b(error|warning): tenant-a[.:]", x)]
        if tenant_a:
            raise E2EFailure("umdevd logged trouble with tenant A's device "
                             "during the attack:\n%s" % "\n".join(tenant_a))
        passes = self.qemu.find(r"E2E-VALUE fio-passes (\d+)")
        if passes is None or int(passes[1].group(1)) < 2:
            raise E2EFailure("tenant A's guest did not report at least two "
                             "verified fio passes")
        log("host: tenant A ran %s verified fio passes"
            % passes[1].group(1))
        e2e.check_fio_blocks(self.image, 0, 2 * self.fio_mb * MiB)

    def cleanup(self):
        # Only now: the hostile client held its connections open (unread)
        # while umdevd got SIGTERM.
        if self.hostile and self.hostile.poll() is None:
            self.hostile.send_signal(signal.SIGTERM)
            try:
                self.hostile.wait(5)
            except subprocess.TimeoutExpired:
                self.hostile.kill()
                self.hostile.wait()


def main():
    signal.signal(signal.SIGTERM, e2e.on_signal)
    signal.signal(signal.SIGINT, e2e.on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--umdevd", required=True)
    ap.add_argument("--hostile", required=True,
                    help="the e2e-hostile-tenant program")
    ap.add_argument("--workdir", default="e2e-work/e2e-multitenant")
    ap.add_argument("--cache-dir", default="e2e-guest-cache")
    args = ap.parse_args()
    args.server = "umdevd"
    try:
        spec = e2e.ServerSpec.from_args(args)
        if spec.kind != "umdevd":
            raise E2EFailure("e2e-multitenant tests umdevd only")
        Multitenant(args, spec).run()
    except E2EFailure as e:
        print("E2E FAIL e2e-multitenant: %s" % e, flush=True)
        return 1
    print("E2E PASS e2e-multitenant", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
