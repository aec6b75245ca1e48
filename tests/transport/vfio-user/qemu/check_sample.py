#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Manual check of pci-sample with a real vfio-user client: QEMU 10.1+
(`vfio-user-pci`, not in Debian 12, so not in CI) and a Linux guest built by
tests/e2e/mkguest.py.

    tests/transport/vfio-user/qemu/check_sample.py --qemu PATH/qemu-system-x86_64 \\
        --umdevd BUILD/daemon/umdevd [--workdir /tmp/vfu-qemu]

It proves, through the guest: enumeration and the capability list, trapped
registers, the mmapped shared page, DMA from guest RAM (memfd, fd-backed
window), DMA_READ from the BIOS ROM and DMA_WRITE into the VGA framebuffer
(both windows QEMU maps without an fd).
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "e2e"))
import mkguest  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--umdevd", required=True)
    ap.add_argument("--workdir", default="/tmp/vfu-qemu")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    kernel, base = mkguest.build_base(os.path.join(a.workdir, "cache"), log=print)
    with open(os.path.join(HERE, "guest_sample.sh")) as f:
        script = f.read()
    initrd = mkguest.make_initrd(base, script, os.path.join(a.workdir, "initrd.cpio"),
                                 {"/e2e/timeout": b"60\n"})
    sock = os.path.join(a.workdir, "sample.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    with open(os.path.join(a.workdir, "server.log"), "w") as slog:
        srv = subprocess.Popen([a.umdevd, "--log-level", "debug", "--device",
                                "pci-sample,id=sample0,socket=" + sock],
                               stdout=slog, stderr=subprocess.STDOUT)
        try:
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            q = subprocess.run(
                [a.qemu, "-accel", "tcg", "-smp", "1", "-m", "512M",
                 "-object", "memory-backend-memfd,id=mem,size=512M,share=on",
                 "-machine", "q35,memory-backend=mem", "-nographic", "-no-reboot",
                 "-kernel", kernel, "-initrd", initrd,
                 "-append", "console=ttyS0 quiet panic=-1",
                 "-device", '{"driver":"vfio-user-pci","socket":'
                            '{"path":"%s","type":"unix"}}' % sock],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
        finally:
            srv.terminate()
            srv.wait()
    out = q.stdout.decode(errors="replace")
    with open(os.path.join(a.workdir, "console.log"), "w") as f:
        f.write(out)
    got = dict(m.groups() for m in re.finditer(r"^([A-Z]+) (.*?)\r?$", out, re.M))
    ram = got.get("RAM", "").split()
    checks = [
        ("capability list present", got.get("CAPS", "").strip() not in ("", "00")),
        ("ID register (trap)", got.get("ID") == "0x756D6476"),
        ("scratch register (trap)", got.get("SCRATCH") == "0x12345678"),
        ("shared page (mmap)", got.get("SHARED") == "0xCAFEF00D"),
        ("DMA from guest RAM (fd)",
         len(ram) == 4 and got.get("DEVRAM", "").lower().startswith(
             " ".join("0x" + x for x in ram))),
        ("DMA_READ from the BIOS ROM (no fd): reset vector",
         got.get("DEVROM", "").startswith("0x00E05BEA status 0x00000001")),
        ("DMA_WRITE into the VGA framebuffer (no fd)",
         got.get("VGA") == "0x11223344 0x55667788 status 0x00000001"),
    ]
    ok = True
    for what, good in checks:
        print("%-50s %s" % (what, "ok" if good else "FAILED"))
        ok &= good
    if not ok:
        print("console: %s/console.log, server: %s/server.log" % (a.workdir, a.workdir))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
