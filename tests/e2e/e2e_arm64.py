#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end test with an arm64 guest: virtio-pci and virtio-mmio.

Concepts: one umdevd (the host's) serves four devices to one arm64 guest on
Debian's qemu-system-aarch64 (virt machine, -cpu max, 4 vCPUs, multi-
threaded TCG, guest RAM in a shared memfd as vhost-user needs):
virtio-blk and virtio-scsi, each attached once as a PCI device
(vhost-user-blk-pci, vhost-user-scsi-pci) and once on the virt machine's
virtio-mmio bus (vhost-user-blk, vhost-user-scsi: QEMU 7.2's names for the
transport-less devices, which the virt machine plugs into a free
virtio-mmio slot). The guest (mkguest_arm64.py) finds each disk by its
transport, runs verified fio on all four queues of all four disks at
iodepth 32, checks that every queue carried requests, and writes a
pattern; the host then finds the pattern and every fio block in each
backing file. One boot serves all four devices to keep CI time down.

The device uses the weakly ordered guest's rings exactly as on x86; what
differs for the guest is its driver's barriers (dma_wmb/virt_mb on arm64)
and the transport's notification and interrupt path (MMIO register writes
and one shared interrupt line on virtio-mmio, MSI-X on PCI).

    e2e_arm64.py --umdevd PATH --umdevctl PATH --workdir DIR --cache-dir DIR
"""

import argparse
import json
import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
import mkguest_arm64  # noqa: E402

MiB = e2e.MiB
QUEUES = 4  # one per vCPU


class Arm64Spec:
    """umdevd's command line for the four devices (e2e.Server calls argv)."""

    kind = "umdevd"

    def __init__(self, umdevd):
        self.umdevd = umdevd
        self.rpc = None  # set by the test: a path next to its sockets

    def argv(self, devices):
        argv = [self.umdevd, "--rpc", self.rpc]
        for d in devices:
            if d.kind == "blk":
                spec = "virtio-blk,id=%s,socket=%s,backend=file:%s,num-queues=%d,serial=%s" % (
                    d.id, d.sock, d.image, d.queues, d.serial)
            else:
                spec = "virtio-scsi,id=%s,socket=%s,lun=0:0:file:%s,num-queues=%d" % (
                    d.id, d.sock, d.image, d.queues)
            argv += ["--device", spec]
        return argv

    def __str__(self):
        return "umdevd (%s)" % self.umdevd


class Arm64Fio(e2e.Test):
    name = "e2e-arm64"
    script = "arm64-fio.sh"
    image_mb = 64
    job_mb = 1  # per fio job, QUEUES jobs per disk
    # An arm64 kernel under TCG on a shared 2-core host boots in ~40 s.
    boot_timeout = 180
    guest_timeout = 420

    # (id, device class, transport, QEMU device)
    LAYOUT = [
        ("blkpci", "blk", "pci", "vhost-user-blk-pci,chardev=c%d,num-queues=%d"),
        ("scsipci", "scsi", "pci", "vhost-user-scsi-pci,chardev=c%d,num_queues=%d"),
        ("blkmmio", "blk", "mmio", "vhost-user-blk,chardev=c%d,num-queues=%d"),
        ("scsimmio", "scsi", "mmio", "vhost-user-scsi,chardev=c%d,num_queues=%d"),
    ]

    def __init__(self, args, spec):
        super().__init__(args, spec)
        spec.rpc = os.path.join(self.sockdir, "umdevd.rpc")
        self.pattern = e2e.make_pattern("arm64", MiB)
        self.pattern_off = 48 * MiB
        self.files["/e2e/pattern.bin"] = self.pattern
        by_id = {d.id: d for d in self.devices}
        self.params = {
            "QUEUES": QUEUES, "SECTORS": self.image_mb * MiB // e2e.SECTOR,
            "JOB_MB": self.job_mb, "PATTERN_OFFSET": self.pattern_off,
            "BLK_PCI_SERIAL": by_id["blkpci"].serial,
            "BLK_MMIO_SERIAL": by_id["blkmmio"].serial,
        }

    def make_devices(self):
        devs = []
        for dev_id, kind, transport, _ in self.LAYOUT:
            d = self.device(dev_id, size_mb=self.image_mb, queues=QUEUES,
                            serial="umdev-" + dev_id if kind == "blk" else None)
            d.kind = kind
            d.transport = transport
            devs.append(d)
        return devs

    def build_guest(self):
        return mkguest_arm64.build_base(self.args.cache_dir, log=e2e.log)

    def make_qemu(self, kernel, initrd):
        qemu = os.environ.get("UMDEV_E2E_QEMU_AARCH64", "qemu-system-aarch64")
        argv = [qemu, "-machine", "virt,memory-backend=mem", "-cpu", "max",
                "-smp", str(QUEUES), "-accel", "tcg,thread=multi", "-m", "1G",
                "-object", "memory-backend-memfd,id=mem,size=1G,share=on",
                "-nographic", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
                "-append", "console=ttyAMA0 quiet panic=-1"]
        for i, (d, (_, _, _, dev)) in enumerate(zip(self.devices, self.LAYOUT)):
            argv += ["-chardev", "socket,id=c%d,path=%s" % (i, d.sock),
                     "-device", dev % (i, QUEUES)]
        return e2e.Qemu(kernel, initrd, self.devices, False,
                        os.path.join(self.work, "console.log"), argv=argv)

    def drive(self):
        """After fio, every request queue of every device carried requests
        (umdevd's per-queue counters): blk-mq spread the four jobs over the
        four queues on both transports."""
        if self.qemu.wait_for(r"E2E-MARK fio-end", self.guest_timeout) is None:
            return  # run() reports the guest's failure
        out = subprocess.run([self.args.umdevctl, "--rpc", self.spec.rpc, "--json",
                              "stats"], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            self.fail_with_logs("umdevctl stats failed: %s" % out.stderr)
        try:
            reply = json.loads(out.stdout)
            reply = reply.get("result", reply)
            stats = {d["id"]: d["stats"] for d in reply["devices"]}
        except (ValueError, KeyError, TypeError) as e:
            self.fail_with_logs("umdevctl stats: unexpected output (%s): %s"
                                % (e, out.stdout[:500]))
        for d in self.devices:
            # virtio-scsi: queue 0 is control, 1 events, 2.. requests.
            first = 0 if d.kind == "blk" else 2
            counts = {q["index"]: q["requests"] for q in stats[d.id]["queues"]}
            got = [counts.get(first + i, 0) for i in range(QUEUES)]
            e2e.log("%s (%s over %s): requests per queue %s"
                    % (d.id, d.kind, d.transport, got))
            if min(got) == 0:
                self.fail_with_logs("%s: a request queue carried no request: %s"
                                    % (d.id, got))

    def check_host(self):
        fio_bytes = QUEUES * self.job_mb * MiB
        for d in self.devices:
            self.image = d.image
            self.expect_image(self.pattern_off, self.pattern,
                              "%s (%s over %s) pattern" % (d.id, d.kind, d.transport))
            e2e.check_fio_blocks(d.image, 0, fio_bytes)


def main():
    signal.signal(signal.SIGTERM, e2e.on_signal)
    signal.signal(signal.SIGINT, e2e.on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--umdevd", required=True)
    ap.add_argument("--umdevctl", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--cache-dir", required=True)
    args = ap.parse_args()
    try:
        if not os.access(args.umdevd, os.X_OK):
            raise e2e.E2EFailure("umdevd not executable: %s" % args.umdevd)
        Arm64Fio(args, Arm64Spec(os.path.abspath(args.umdevd))).run()
    except e2e.E2EFailure as e:
        print("E2E FAIL %s: %s" % (Arm64Fio.name, e), flush=True)
        return 1
    print("E2E PASS %s" % Arm64Fio.name, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
