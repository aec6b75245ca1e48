#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Build the arm64 Linux guest used by the arm64 end-to-end tests.

Concepts: the same guest as mkguest.py (busybox initramfs, its /init, the
base + per-test archive split), but every input comes from Debian's arm64
archive instead of the host: the kernel that linux-image-arm64 points at,
busybox-static and fio with the libraries fio links. `apt-get download`
fetches the packages (the arm64 architecture must be enabled, which
scripts/setup.sh does) into the cache dir, `dpkg-deb -x` unpacks them, and
the host's depmod writes modules.dep for the unpacked kernel (the package
leaves that to its postinst). Libraries are found by following DT_NEEDED
(readelf) inside the unpacked tree: ldd cannot run arm64 binaries.

Usable as a module (fetch, build_base; mkguest.make_initrd adds the test
archive) or as a command:
    mkguest_arm64.py --cache-dir DIR [--fetch-only]
scripts/setup.sh runs it with --fetch-only so the tests need no network.
"""

import argparse
import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkguest  # noqa: E402

# virtio_mmio for the virt machine's mmio transport; the rest as on x86.
WANTED_MODULES = [
    "crct10dif_generic", "crc64_rocksoft_generic",
    "virtio_mmio", "virtio_pci", "virtio_blk", "virtio_scsi", "scsi_mod",
    "sd_mod",
]
KERNEL_META = "linux-image-arm64:arm64"
PACKAGES = ["busybox-static:arm64", "fio:arm64"]
# Dependencies of fio that carry no library fio's binary needs (and are big).
SKIP_DEPS = re.compile(r"^lib(perl|python|pam-modules|debian-installer)")
LIBDIRS = ["lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib",
           "usr/lib/aarch64-linux-gnu/ceph"]  # librados RUNPATH
LOADER = "/lib/ld-linux-aarch64.so.1"


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout


def package_list():
    """The kernel package linux-image-arm64 depends on, busybox, fio and
    the libraries in fio's dependency closure."""
    out = run(["apt-cache", "depends", KERNEL_META])
    m = re.search(r"Depends: (linux-image-\S+-arm64):arm64", out)
    if not m:
        raise RuntimeError("no arm64 kernel package behind %s (is the arm64 "
                           "architecture enabled? see scripts/setup.sh)" % KERNEL_META)
    pkgs = [m.group(1) + ":arm64"] + PACKAGES
    out = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
               "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
               "--no-pre-depends", "fio:arm64"])
    for line in out.splitlines():
        if line.startswith(("lib", "zlib1g")) and line.endswith(":arm64") \
                and not SKIP_DEPS.match(line) and line not in pkgs:
            pkgs.append(line)
    return pkgs


def fetch(cache_dir, log=print, refresh=True):
    """Download and unpack the arm64 packages; return the unpacked root.

    With @refresh, redone when the package list (with the candidate versions
    apt would download) changed; without, a root fetched before is used as
    it is (tests: no apt queries, no network).
    """
    os.makedirs(cache_dir, exist_ok=True)
    top = os.path.join(cache_dir, "arm64")
    root = os.path.join(top, "root")
    stamp = os.path.join(top, "stamp")
    if not refresh and os.path.exists(stamp) and os.path.isdir(root):
        return root
    pkgs = package_list()
    versions = run(["apt-cache", "show", "--no-all-versions"] + pkgs)
    stamp_text = "\n".join(pkgs + WANTED_MODULES) + "\n" + \
        hashlib.sha256(versions.encode()).hexdigest()
    with open(os.path.join(cache_dir, ".lock-arm64"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(stamp) as f:
                if f.read() == stamp_text and os.path.isdir(root):
                    return root
        except FileNotFoundError:
            pass
        log("fetching %d arm64 packages into %s" % (len(pkgs), top))
        shutil.rmtree(top, ignore_errors=True)
        debs = os.path.join(top, "debs")
        os.makedirs(debs)
        subprocess.run(["apt-get", "download", "-q"] + pkgs, cwd=debs, check=True,
                       stdout=subprocess.DEVNULL)
        tmp = root + ".tmp"
        os.makedirs(tmp)
        for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
            subprocess.run(["dpkg-deb", "-x", deb, tmp], check=True)
        for ver in os.listdir(os.path.join(tmp, "lib/modules")):
            subprocess.run(["depmod", "-b", tmp, ver], check=True)
            prune_modules(os.path.join(tmp, "lib/modules", ver))
        shutil.rmtree(os.path.join(tmp, "usr/share"), ignore_errors=True)
        os.rename(tmp, root)
        shutil.rmtree(debs)
        with open(stamp, "w") as f:
            f.write(stamp_text)
        return root


def prune_modules(moddir):
    """Delete the modules the guest does not load (most of the 400 MB);
    modules.dep still names them, which nothing here reads for them."""
    keep = set(mkguest.module_closure(moddir, WANTED_MODULES))
    for top, _, names in os.walk(os.path.join(moddir, "kernel")):
        for name in names:
            rel = os.path.relpath(os.path.join(top, name), moddir)
            if rel not in keep:
                os.unlink(os.path.join(moddir, rel))


def in_root(root, path):
    """Host path of guest @path, following symlinks inside @root."""
    for _ in range(40):
        host = os.path.join(root, path.lstrip("/"))
        if not os.path.islink(host):
            return host
        target = os.readlink(host)
        path = target if target.startswith("/") else \
            os.path.normpath(os.path.join(os.path.dirname(path), target))
    raise RuntimeError("symlink loop at %s in %s" % (path, root))


def needed(host_path):
    out = run(["readelf", "-d", host_path])
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def lib_closure(root, binaries):
    """[(guest path, host path)] of every library @binaries need, and the
    dynamic loader."""
    files = [(LOADER, in_root(root, LOADER))]
    todo = list(binaries)
    seen = set()
    while todo:
        for so in needed(todo.pop()):
            if so in seen:
                continue
            seen.add(so)
            for d in LIBDIRS:
                host = in_root(root, "/%s/%s" % (d, so))
                if os.path.exists(host):
                    files.append(("/lib/aarch64-linux-gnu/" + so, host))
                    todo.append(host)
                    break
            else:
                raise RuntimeError("%s (needed by fio) is not in the arm64 packages" % so)
    return files


def collect_inputs(root):
    mods_top = os.path.join(root, "lib/modules")
    vers = sorted(os.listdir(mods_top))
    if len(vers) != 1:
        raise RuntimeError("expected one arm64 kernel in %s, found %s" % (mods_top, vers))
    ver = vers[0]
    kernel = os.path.join(root, "boot/vmlinuz-" + ver)
    moddir = os.path.join(mods_top, ver)
    mods = mkguest.module_closure(moddir, WANTED_MODULES)
    files = [("/bin/busybox", in_root(root, "/bin/busybox"))]
    for m in mods:
        files.append(("/lib/modules/%s/%s" % (ver, m), os.path.join(moddir, m)))
    fio = in_root(root, "/usr/bin/fio")
    files.append(("/usr/bin/fio", fio))
    files += lib_closure(root, [fio])
    return kernel, ver, mods, files


def build_base(cache_dir, log=print):
    """Return (kernel path, base initramfs path) of the arm64 guest."""
    root = fetch(cache_dir, log, refresh=False)
    kernel, ver, mods, files = collect_inputs(root)
    h = hashlib.sha256()
    for p in (os.path.abspath(__file__), mkguest.__file__):
        with open(p, "rb") as f:
            h.update(f.read())
    for p in [kernel] + [src for _, src in files]:
        st = os.stat(p)
        h.update(("%s %d %d\n" % (p, st.st_size, st.st_mtime_ns)).encode())
    out = os.path.join(cache_dir, "guest-arm64-base-%s.cpio" % h.hexdigest()[:16])
    with open(os.path.join(cache_dir, ".lock-arm64"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(out):
            return kernel, out
        log("building arm64 guest initramfs %s (kernel %s)" % (out, ver))
        mkguest.write_base(out, files, ver, mods)
        for old in glob.glob(os.path.join(cache_dir, "guest-arm64-base-*.cpio")):
            if old != out:
                os.unlink(old)
        return kernel, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--fetch-only", action="store_true",
                    help="download and unpack the packages, build nothing")
    args = ap.parse_args()
    if args.fetch_only:
        print("arm64 root:", fetch(args.cache_dir))
        return 0
    kernel, base = build_base(args.cache_dir)
    print("kernel:", kernel)
    print("base initramfs:", base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
