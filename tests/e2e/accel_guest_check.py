#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Hand check (not in CI): a Linux guest drives an accel virtual device
through its own vfio-pci, behind QEMU's emulated VT-d.

Needs a QEMU with the vfio-user-pci client (10.1 or later), given by the
QEMU environment variable; umdevd and umdevctl from a build directory.
Builds a busybox initramfs holding the guest kernel's vfio, vfio_iommu_type1
and vfio-pci modules and tests/e2e/guest/accel-vfio.c compiled with
gcc -static, starts umdevd with one accel parent and two virtual devices,
boots the guest (TCG, q35 + intel-iommu) and prints its console.  The guest
lists both functions and runs accel-vfio on the second one.

    QEMU=/path/to/qemu-system-x86_64 tests/e2e/accel_guest_check.py \
        --build build --workdir /tmp/accel-check

Passes when the guest prints "ACCEL-VFIO: PASS"; docs/devices/accel.md
records a run.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mkguest  # noqa: E402

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 4 > /proc/sys/kernel/printk
while read -r m; do insmod "/lib/modules/$m" || echo "insmod $m failed"; done < /etc/modules-list
dmesg | grep -iE 'DMAR: (IOMMU enabled|Intel\(R\) Virtualization|Interrupt remapping)|DMAR-IR: Enabled' | head -5
found=""
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat $d/vendor)" = 0x1b36 ] && [ "$(cat $d/device)" = 0x00f1 ]; then
        echo "accel function $(basename $d): class $(cat $d/class) group $(basename $(readlink $d/iommu_group))"
        found="$found $(basename $d)"
    fi
done
set -- $found
echo "accel functions: $#"
if [ $# -eq 2 ]; then
    /accel-vfio "$2"
    rc=$?
else
    rc=1
fi
echo "ACCEL-CHECK-RC=$rc"
poweroff -f
"""


def build_initrd(src_root, out_dir):
    kernel, ver = mkguest.find_kernel()
    moddir = "/lib/modules/" + ver
    mkguest.WANTED_MODULES = ["vfio_iommu_type1", "vfio_pci"]
    mods = mkguest.module_closure(moddir)
    prog = os.path.join(out_dir, "accel-vfio")
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Werror",
                    "-I" + os.path.join(src_root, "include"), "-o", prog,
                    os.path.join(HERE, "guest", "accel-vfio.c")], check=True)
    c = mkguest.Cpio()
    for d in ("/bin", "/proc", "/sys", "/dev", "/etc"):
        c.mkdir(d)
    c.chardev("/dev/console", 5, 1)
    c.add_file("/bin/busybox", shutil.which("busybox"))
    c.symlink("/bin/sh", "busybox")
    for m in mods:
        c.add_file(moddir + "/" + m, moddir + "/" + m)
    c.add_bytes("/etc/modules-list",
                "".join("%s/%s\n" % (ver, m) for m in mods).encode())
    c.add_file("/accel-vfio", prog, 0o755)
    c.add_bytes("/init", INIT.encode(), 0o755)
    initrd = os.path.join(out_dir, "initrd.cpio")
    with open(initrd, "wb") as f:
        f.write(c.finish())
    return kernel, ver, initrd


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="meson build directory")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--log-level", default="info", help="umdevd's log level")
    args = ap.parse_args()
    qemu = os.environ.get("QEMU")
    if not qemu:
        sys.exit("set QEMU to a qemu-system-x86_64 with vfio-user-pci (10.1+)")
    os.makedirs(args.workdir, exist_ok=True)
    wd = os.path.abspath(args.workdir)
    src_root = os.path.dirname(os.path.dirname(HERE))
    umdevd = os.path.join(args.build, "daemon", "umdevd")
    umdevctl = os.path.join(args.build, "tools", "umdevctl")
    kernel, ver, initrd = build_initrd(src_root, wd)
    print("kernel %s, initrd %s" % (kernel, initrd))
    rpc = os.path.join(wd, "rpc.sock")
    socks = [os.path.join(wd, "v%d.sock" % i) for i in range(2)]
    for p in [rpc] + socks:
        if os.path.exists(p):
            os.unlink(p)
    srv_argv = [umdevd, "--log-level", args.log_level, "--threads", "1", "--rpc", rpc,
                "--device", "accel,id=accel0,ims=32"]
    for i, s in enumerate(socks):
        srv_argv += ["--device", "accel-vdev,id=v%d,parent=accel0,socket=%s" % (i, s)]
    print("$", " ".join(srv_argv))
    srv = subprocess.Popen(srv_argv)
    try:
        for _ in range(100):
            if all(os.path.exists(s) for s in socks):
                break
            time.sleep(0.1)
        qemu_argv = [
            qemu, "-accel", "tcg", "-m", "512M", "-smp", "1", "-nographic",
            "-no-reboot",
            "-object", "memory-backend-memfd,id=mem,size=512M,share=on",
            "-machine", "q35,kernel-irqchip=split,memory-backend=mem",
            "-device", "intel-iommu,intremap=on,caching-mode=on",
            "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 quiet panic=-1 intel_iommu=on",
        ]
        for s in socks:
            qemu_argv += ["-device", '{"driver":"vfio-user-pci","socket":'
                          '{"type":"unix","path":"%s"}}' % s]
        print("$", " ".join("'%s'" % a if "{" in a else a for a in qemu_argv))
        out = subprocess.run(qemu_argv, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             timeout=600).stdout
        print(out)
        for v in ("v1", "accel0"):
            subprocess.run([umdevctl, "--rpc", rpc, "stats", v])
    finally:
        srv.terminate()
        srv.wait()
    ok = "ACCEL-VFIO: PASS" in out and "ACCEL-CHECK-RC=0" in out
    print("accel guest check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
