#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end tests: a Linux guest under QEMU (TCG) against a vhost-user server.

Concepts: each test starts a server (umdevd, or qemu-storage-daemon for
comparison) on a Unix socket, boots the small guest built by mkguest.py with
a vhost-user-blk-pci device on that socket, and reads the serial console.
The guest runs a shell script from tests/e2e/guest/ and ends with a marker
line (PASS/FAIL and the exit status); the host then checks the backing image
itself, so a test passes only when the data really reached the backend.

Usage:
    e2e.py TEST --workdir DIR --cache-dir DIR [--server umdevd --umdevd PATH]

Server selection (first match wins):
    UMDEV_E2E_SERVER_CMD   a command template with {socket} {image} {queues}
                           {readonly} (on/off) placeholders; needs
                           UMDEV_E2E_EXPECT_WRITE_CACHE ("write back" or
                           "write through", what the guest should see)
    UMDEV_E2E_SERVER=qsd   qemu-storage-daemon (vhost-user-blk export)
    --server qsd|umdevd    (default umdevd, needs --umdevd)
Other knobs: UMDEV_E2E_QEMU (QEMU binary), UMDEV_E2E_KEEP=1 (keep images).
"""

import argparse
import hashlib
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

# Keep the source tree clean of __pycache__ when run from meson.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkguest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_DIR = os.path.join(HERE, "guest")
MiB = 1 << 20
SECTOR = 512


class E2EFailure(Exception):
    """A test assertion failed; the message says what and where to look."""


def log(msg):
    print("e2e: " + msg, flush=True)


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return "\n".join(lines[-n:])


def make_pattern(seed, size):
    """Deterministic, non-repeating bytes: sha256 in counter mode."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(("%s:%d" % (seed, i)).encode()).digest()
        i += 1
    return bytes(out[:size])


def read_at(path, offset, size):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


class Device:
    """One vhost-user-blk device: its socket and backend.

    backend is "file" (the image at @image, which the runner creates),
    "ram" or "null" (no host file: umdevd's ram:/null: backends).
    """

    def __init__(self, dev_id, sock, backend="file", image=None, size_mb=256,
                 queues=2, readonly=False, serial=None, umdevd_opts=""):
        self.id = dev_id
        self.serial = serial
        # Extra ",key=value" options only umdevd has (e.g. poll=on).
        self.umdevd_opts = umdevd_opts
        self.sock = sock
        self.backend = backend
        self.image = image
        self.size_mb = size_mb
        self.queues = queues
        self.readonly = readonly


class ServerSpec:
    """How to start the vhost-user-blk server for a set of devices."""

    # Where the servers differ by design, what the guest should see.
    # umdevd offers VIRTIO_BLK_F_FLUSH without CONFIG_WCE (always write
    # back); qemu-storage-daemon's export reports write through.
    WRITE_CACHE = {"umdevd": "write back", "qsd": "write through"}

    def __init__(self, kind, umdevd=None, template=None):
        self.kind = kind
        self.umdevd = umdevd
        self.template = template
        self.write_cache = os.environ.get("UMDEV_E2E_EXPECT_WRITE_CACHE",
                                          self.WRITE_CACHE.get(kind))

    @classmethod
    def from_args(cls, args):
        template = os.environ.get("UMDEV_E2E_SERVER_CMD")
        if template:
            if not os.environ.get("UMDEV_E2E_EXPECT_WRITE_CACHE"):
                raise E2EFailure("with UMDEV_E2E_SERVER_CMD, also set "
                                 "UMDEV_E2E_EXPECT_WRITE_CACHE to 'write "
                                 "back' or 'write through'")
            return cls("custom", template=template)
        kind = os.environ.get("UMDEV_E2E_SERVER") or args.server
        if kind == "umdevd":
            if not args.umdevd:
                raise E2EFailure("--umdevd PATH is required for the umdevd "
                                 "server (or set UMDEV_E2E_SERVER=qsd)")
            if not os.access(args.umdevd, os.X_OK):
                raise E2EFailure("umdevd not executable: %s" % args.umdevd)
            return cls("umdevd", umdevd=os.path.abspath(args.umdevd))
        if kind == "qsd":
            return cls("qsd")
        raise E2EFailure("unknown server kind %r" % kind)

    def argv(self, devices):
        if self.kind == "umdevd":
            argv = [self.umdevd]
            for d in devices:
                if d.backend == "file":
                    backend = "file:" + d.image
                else:
                    backend = "%s:%dM" % (d.backend, d.size_mb)
                spec = "virtio-blk,id=%s,socket=%s,backend=%s,num-queues=%d" % (
                    d.id, d.sock, backend, d.queues)
                if d.readonly:
                    spec += ",readonly=on"
                if d.serial:
                    spec += ",serial=" + d.serial
                argv += ["--device", spec + d.umdevd_opts]
            return argv
        if self.kind == "qsd":
            argv = ["qemu-storage-daemon"]
            for i, d in enumerate(devices):
                if d.backend == "null":
                    bd = ("driver=null-co,node-name=n%d,size=%d,"
                          "read-zeroes=on" % (i, d.size_mb * MiB))
                else:
                    # qsd has no ram disk; a file behaves the same for the
                    # guest (Test.prepare_images creates it).
                    bd = "driver=file,node-name=n%d,filename=%s" % (i, d.image)
                if d.readonly:
                    bd += ",read-only=on"
                argv += ["--blockdev", bd, "--export",
                         "type=vhost-user-blk,id=e%d,node-name=n%d,"
                         "addr.type=unix,addr.path=%s,writable=%s,"
                         "num-queues=%d" % (i, i, d.sock,
                                            "off" if d.readonly else "on",
                                            d.queues)]
            return argv
        if len(devices) != 1 or devices[0].backend != "file":
            raise E2EFailure("UMDEV_E2E_SERVER_CMD serves one file-backed "
                             "device; this test needs %d" % len(devices))
        d = devices[0]
        return shlex.split(self.template.format(
            socket=d.sock, image=d.image, queues=d.queues,
            readonly="on" if d.readonly else "off"))

    def expected_serial(self, dev):
        """What the guest should read from /sys/block/vdX/serial."""
        if self.kind == "qsd":
            # Its export answers GET_ID with a fixed string.
            return "vhost_user_blk"
        return dev.serial

    def __str__(self):
        return self.kind if self.kind != "umdevd" else "umdevd (%s)" % self.umdevd


class Server:
    """One server process serving all devices of a test; can be killed and
    started again on the same sockets."""

    def __init__(self, spec, devices, logpath):
        self.argv = spec.argv(devices)
        self.socks = [d.sock for d in devices]
        self.logpath = logpath
        self.proc = None
        self.starts = 0

    def start(self, timeout=15.0):
        # A socket left by a killed server would look ready at once; the
        # runner owns this path, so clearing it is safe.
        for sock in self.socks:
            if os.path.lexists(sock):
                os.unlink(sock)
        self.starts += 1
        logf = open(self.logpath, "ab")
        logf.write(("\n=== start %d: %s\n" % (self.starts, shlex.join(self.argv)))
                   .encode())
        logf.flush()
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT)
        except OSError as e:
            raise E2EFailure("cannot run %s: %s" % (self.argv[0], e))
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        waiting = list(self.socks)
        while waiting:
            if self.proc.poll() is not None:
                raise E2EFailure("server exited with status %d before "
                                 "listening; log tail:\n%s"
                                 % (self.proc.returncode, tail(self.logpath)))
            if time.monotonic() > deadline:
                raise E2EFailure("server did not create %s within %.0f s; "
                                 "log tail:\n%s" % (", ".join(waiting),
                                                    timeout,
                                                    tail(self.logpath)))
            try:
                if stat.S_ISSOCK(os.stat(waiting[0]).st_mode):
                    waiting.pop(0)
                    continue
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        # bind() creates the path just before listen(); give it a moment.
        time.sleep(0.2)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send @sig and reap; returns the exit status (None if not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise E2EFailure("server ignored %s for %.0f s"
                             % (signal.Signals(sig).name, timeout))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def connected_socks(self):
        """Our socket paths with a connected peer (an accepted connection
        carries the listener's path in /proc/net/unix)."""
        found = set()
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                fields = line.split()
                # Num RefCount Protocol Flags Type St Inode [Path]
                if len(fields) >= 8 and fields[7] in self.socks and \
                        fields[5] == "03":
                    found.add(fields[7])
        return found

    def wait_connected(self, timeout):
        """Wait until the front-end is connected to every socket; returns
        the seconds taken, None on timeout."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if len(self.connected_socks()) == len(self.socks):
                return time.monotonic() - t0
            if not self.alive():
                raise E2EFailure("server exited while waiting for the "
                                 "front-end; log tail:\n%s" % tail(self.logpath))
            time.sleep(0.05)
        return None


def qemu_binary():
    return os.environ.get("UMDEV_E2E_QEMU", "qemu-system-x86_64")


def guest_boot_args(kernel, initrd):
    """QEMU options that boot the test guest with its console on stdio."""
    return ["-nographic", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 quiet panic=-1"]


class Qemu:
    """The guest: QEMU with the console on a pipe read by a thread."""

    RESULT_RE = re.compile(re.escape(mkguest.RESULT_MARKER) +
                           r" (PASS|FAIL) rc=(\d+)")

    def __init__(self, kernel, initrd, devices, reconnect, logpath, smp=2,
                 argv=None):
        """@argv, if given, is the whole command line (e2e-readme takes it
        from README.md); otherwise it is built from @devices."""
        if argv is None:
            argv = [qemu_binary(), "-accel", "tcg", "-smp", str(smp),
                    "-m", "1G",
                    "-object", "memory-backend-memfd,id=mem,size=1G,share=on",
                    "-machine", "q35,memory-backend=mem"]
            argv += guest_boot_args(kernel, initrd)
            # Devices in this order get increasing PCI slots, so the guest
            # names them vda, vdb, ... in the same order.
            for i, d in enumerate(devices):
                chardev = "socket,id=c%d,path=%s" % (i, d.sock)
                if reconnect:
                    chardev += ",reconnect=1"
                argv += ["-chardev", chardev, "-device",
                         "vhost-user-blk-pci,chardev=c%d,num-queues=%d"
                         % (i, d.queues)]
        self.argv = argv
        self.logpath = logpath
        self.lines = []
        self.cond = threading.Condition()
        self.proc = None
        self.thread = None
        self.t0 = None

    def start(self):
        self.t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT)
        except OSError as e:
            raise E2EFailure("cannot run %s: %s" % (self.argv[0], e))
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self):
        with open(self.logpath, "wb") as logf:
            logf.write(("# %s\n" % shlex.join(self.argv)).encode())
            for raw in self.proc.stdout:
                logf.write(raw)
                logf.flush()
                line = raw.decode(errors="replace").rstrip("\r\n")
                with self.cond:
                    self.lines.append((time.monotonic() - self.t0, line))
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def find(self, pattern):
        """Return (time, match) of the first console line matching, or None."""
        rx = re.compile(pattern)
        with self.cond:
            for t, line in self.lines:
                m = rx.search(line)
                if m:
                    return t, m
        return None

    def wait_for(self, pattern, timeout):
        """Wait for a console line; None on timeout or QEMU exit."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for t, line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return t, m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    return None
                self.cond.wait(min(left, 1.0))

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.thread.join(5)
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.thread:
            self.thread.join(5)


class Test:
    """Common set-up: workdir, image, server, guest; subclasses add checks."""

    name = None
    script = None
    queues = 2
    readonly = False
    reconnect = False
    image_mb = 256
    guest_timeout = 240
    boot_timeout = 90
    # Seconds the server may take to exit after SIGTERM at the end.
    shutdown_limit = 10.0

    def __init__(self, args, spec):
        self.args = args
        self.spec = spec
        self.work = os.path.abspath(args.workdir)
        self.sockdir = self.work
        if len(os.path.join(self.work, "blk0.sock").encode()) >= 100:
            # sun_path holds 108 bytes; deep build dirs do not fit.
            self.sockdir = tempfile.mkdtemp(prefix="umdev-e2e-")
        self.devices = self.make_devices()
        # Most tests have one file-backed device; these name it.
        self.image = self.devices[0].image
        self.sock = self.devices[0].sock
        self.server = None
        self.qemu = None
        self.files = {}
        self.params = {"EXPECT_SECTORS": self.image_mb * MiB // SECTOR,
                       "EXPECT_QUEUES": self.queues}
        self.timings = []

    def timing(self, what, since):
        self.timings.append((what, time.monotonic() - since))

    def device(self, dev_id, **kw):
        image = None
        backend = kw.get("backend", "file")
        if backend == "file" or (backend == "ram" and self.spec.kind == "qsd"):
            image = os.path.join(self.work, dev_id + ".img")
        return Device(dev_id, os.path.join(self.sockdir, dev_id + ".sock"),
                      image=image, **kw)

    def make_devices(self):
        """The test's devices; default: one file-backed disk."""
        return [self.device("blk0", size_mb=self.image_mb, queues=self.queues,
                            readonly=self.readonly)]

    def prepare_image(self):
        """Create every device's image file (sparse, zero-filled)."""
        for d in self.devices:
            if d.image:
                with open(d.image, "wb") as f:
                    f.truncate(d.size_mb * MiB)

    def guest_script(self):
        with open(os.path.join(GUEST_DIR, "lib.sh")) as f:
            self.files["/e2e/lib.sh"] = f.read().encode()
        with open(os.path.join(GUEST_DIR, self.script)) as f:
            body = f.read()
        head = "".join("%s=%s\n" % (k, shlex.quote(str(v)))
                       for k, v in sorted(self.params.items()))
        return "# parameters from e2e.py\n" + head + body

    def make_server(self):
        """The server process (not started); default: all devices."""
        return Server(self.spec, self.devices,
                      os.path.join(self.work, "server.log"))

    def make_qemu(self, kernel, initrd):
        """The guest (not started); default: every device attached."""
        return Qemu(kernel, initrd, self.devices, self.reconnect,
                    os.path.join(self.work, "console.log"))

    def cleanup(self):
        """Stop what a test started besides server and guest; runs on
        success and failure, before the guest and server are killed."""

    def drive(self):
        """Host-side actions while the guest runs (reconnect test)."""

    def check_host(self):
        """Host-side checks of the image after the guest powered off."""

    def build_guest(self):
        """(kernel, base initramfs) of the guest; e2e_arm64.py overrides."""
        return mkguest.build_base(self.args.cache_dir, log=log)

    def run(self):
        t_all = time.monotonic()
        if os.path.isdir(self.work):
            shutil.rmtree(self.work)
        os.makedirs(self.work)
        t = time.monotonic()
        try:
            kernel, base = self.build_guest()
        except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
            raise E2EFailure("cannot build the guest: %s" % e)
        if not os.access(kernel, os.R_OK):
            raise E2EFailure("cannot read %s (Debian installs it 0600 root): "
                             "run as root or make it readable" % kernel)
        self.prepare_image()
        script = self.guest_script()
        # The guest's own watchdog fires first so its diagnostics make it
        # to the console.
        self.files["/e2e/timeout"] = b"%d\n" % max(30, self.guest_timeout - 45)
        initrd = mkguest.make_initrd(base, script,
                                     os.path.join(self.work, "initrd.cpio"),
                                     self.files)
        self.timing("prepare", t)
        log("%s against %s; logs in %s" % (self.name, self.spec, self.work))
        self.server = self.make_server()
        self.qemu = self.make_qemu(kernel, initrd)
        try:
            self.server.start()
            t = time.monotonic()
            self.qemu.start()
            booted = self.qemu.wait_for(r"UMDEV-E2E-BOOTED", self.boot_timeout)
            if booted is None:
                if self.qemu.find(r"UMDEV-E2E-INIT"):
                    # Module loading probes the device; a server that never
                    # completes the device start-up leaves virtio_blk stuck.
                    self.fail_with_logs("guest kernel started but loading "
                                        "the drivers did not finish (device "
                                        "start-up failed?)")
                self.fail_with_logs("guest did not boot")
            self.timings.append(("boot", booted[0]))
            self.drive()
            rc = self.qemu.wait_exit(self.guest_timeout)
            if rc is None:
                self.fail_with_logs("guest still running after %d s"
                                    % self.guest_timeout)
            self.timing("guest", t)
            res = self.qemu.find(Qemu.RESULT_RE.pattern)
            if res is None:
                self.fail_with_logs("guest powered off (QEMU status %d) "
                                    "without a result marker" % rc)
            if res[1].group(1) != "PASS":
                self.fail_with_logs("guest test script failed (rc=%s)"
                                    % res[1].group(2))
            if not self.server.alive():
                self.fail_with_logs("server died during the test (status %s)"
                                    % self.server.proc.returncode)
            t = time.monotonic()
            status = self.server.stop(signal.SIGTERM, self.shutdown_limit)
            if status not in (0, -signal.SIGTERM):
                raise E2EFailure("server exited with status %s after SIGTERM;"
                                 " log tail:\n%s"
                                 % (status, tail(self.server.logpath)))
            self.timing("server shutdown", t)
            self.check_host()
        finally:
            self.cleanup()
            self.qemu.kill()
            if self.server.alive():
                self.server.stop(signal.SIGKILL)
        self.timing("total", t_all)
        log("timings: " + ", ".join("%s %.1f s" % x for x in self.timings))
        if not os.environ.get("UMDEV_E2E_KEEP"):
            for p in [d.image for d in self.devices] + [
                    os.path.join(self.work, "initrd.cpio")]:
                if p and os.path.exists(p):
                    os.unlink(p)

    def fail_with_logs(self, why):
        self.qemu.kill()
        raise E2EFailure("%s\n---- console tail (%s) ----\n%s\n"
                         "---- server log tail (%s) ----\n%s"
                         % (why, self.qemu.logpath, tail(self.qemu.logpath, 60),
                            self.server.logpath, tail(self.server.logpath)))

    def expect_image(self, offset, data, what):
        got = read_at(self.image, offset, len(data))
        if got != data:
            first = next((i for i in range(min(len(got), len(data)))
                          if got[i] != data[i]), min(len(got), len(data)))
            raise E2EFailure("%s: image differs at offset %d (+%d); the "
                             "guest's write did not reach the backend file"
                             % (what, offset, first))
        log("host: %s found in the image at offset %d" % (what, offset))


class BlkFio(Test):
    """Verified fio on both queues, then a pattern the host finds in the file."""

    name = "e2e-blk-fio"
    script = "blk-fio.sh"
    fio_mb = 48

    def __init__(self, args, spec):
        super().__init__(args, spec)
        self.pattern = make_pattern("blk-fio", MiB)
        self.pattern_off = 200 * MiB
        self.files["/e2e/pattern.bin"] = self.pattern
        self.params.update(FIO_SIZE_MB=self.fio_mb,
                           PATTERN_OFFSET=self.pattern_off)

    def check_host(self):
        # The guest then rewrote 7 sectors at +512 KiB + 3 sectors with the
        # pattern's first 3.5 KiB (a write that is not 4 KiB aligned).
        expect = bytearray(self.pattern)
        sub = (1024 + 3) * SECTOR
        expect[sub:sub + 7 * SECTOR] = self.pattern[:7 * SECTOR]
        self.expect_image(self.pattern_off, bytes(expect), "guest pattern")
        check_fio_blocks(self.image, 0, 2 * self.fio_mb * MiB)


def check_fio_blocks(image, start, length, bs=4096):
    """Every block fio wrote starts with its verify header magic (0xacca).

    fio's random map makes a randwrite job touch each block of its region
    exactly once, so any block without the header never reached the file.
    """
    bad = []
    with open(image, "rb") as f:
        f.seek(start)
        for i in range(length // bs):
            blk = f.read(bs)
            if blk[:2] != b"\xca\xac":
                bad.append(start + i * bs)
    if bad:
        raise E2EFailure("%d of %d fio blocks missing from the image (first "
                         "at offset %d)" % (len(bad), length // bs, bad[0]))
    log("host: all %d fio blocks carry a verify header" % (length // bs))


class BlkReadonly(Test):
    """readonly=on: the guest sees a read-only disk with the host's data."""

    name = "e2e-blk-readonly"
    script = "blk-readonly.sh"
    readonly = True
    image_mb = 64

    def __init__(self, args, spec):
        super().__init__(args, spec)
        self.pattern = make_pattern("blk-readonly", MiB)
        self.files["/e2e/pattern.bin"] = self.pattern
        self.digest = None

    def prepare_image(self):
        super().prepare_image()
        with open(self.image, "r+b") as f:
            f.write(self.pattern)
            f.seek(32 * MiB)
            f.write(make_pattern("blk-readonly-2", MiB))
        self.digest = file_digest(self.image)

    def check_host(self):
        if file_digest(self.image) != self.digest:
            raise E2EFailure("the read-only image was modified")
        log("host: read-only image unchanged")


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


class BlkReconnect(Test):
    """The server is SIGKILLed and SIGTERMed mid-I/O and restarted each time."""

    name = "e2e-blk-reconnect"
    script = "blk-reconnect.sh"
    reconnect = True
    image_mb = 512
    fio_mb = 160
    guest_timeout = 360
    # Seconds after fio starts at which each disruption happens, and how
    # long the server stays down.
    disruptions = ((2.0, signal.SIGKILL), (4.0, signal.SIGTERM))
    downtime = 1.5

    def __init__(self, args, spec):
        super().__init__(args, spec)
        self.pattern = make_pattern("blk-reconnect", MiB)
        self.files["/e2e/pattern.bin"] = self.pattern
        self.p1 = 400 * MiB
        self.p2 = 420 * MiB
        self.params.update(FIO_SIZE_MB=self.fio_mb, PATTERN_OFFSET=self.p1,
                           PATTERN2_OFFSET=self.p2)

    def drive(self):
        started = self.qemu.wait_for(r"E2E-MARK fio-start", 120)
        if started is None:
            self.fail_with_logs("guest never started fio")
        for delay, sig in self.disruptions:
            time.sleep(delay)
            if self.qemu.find(r"E2E-MARK fio-end"):
                self.fail_with_logs("fio finished before the %s disruption; "
                                    "the test no longer overlaps I/O with "
                                    "the restart (raise fio_mb)"
                                    % signal.Signals(sig).name)
            t = time.monotonic()
            status = self.server.stop(sig)
            log("server stopped by %s (status %s) %.1f s into fio"
                % (signal.Signals(sig).name, status,
                   time.monotonic() - self.qemu.t0 - started[0]))
            if sig == signal.SIGTERM and status not in (0, -signal.SIGTERM):
                self.fail_with_logs("server exited with status %s on SIGTERM"
                                    % status)
            time.sleep(self.downtime)
            self.server.start()
            # QEMU retries every second (reconnect=1).
            took = self.server.wait_connected(15)
            if took is None:
                self.fail_with_logs("QEMU did not reconnect to the restarted "
                                    "server within 15 s")
            self.timing("reconnect after %s" % signal.Signals(sig).name, t)
        if self.qemu.find(r"E2E-MARK fio-end"):
            self.fail_with_logs("fio finished while the server was down; "
                                "raise fio_mb")

    def check_host(self):
        res = self.qemu.find(r"E2E-VALUE fio-max-clat-ns (\d+)")
        if res is None:
            raise E2EFailure("guest did not report fio's completion latency")
        max_s = int(res[1].group(1)) / 1e9
        # A request caught by the outage waits at least the downtime.
        if max_s < self.downtime * 0.9:
            raise E2EFailure("longest fio completion took %.2f s, shorter "
                             "than the %.1f s outage: no I/O was in flight "
                             "across the restart" % (max_s, self.downtime))
        log("host: longest fio completion %.2f s (requests spanned the "
            "outage)" % max_s)
        self.expect_image(self.p1, self.pattern, "pattern written before the "
                          "restarts")
        self.expect_image(self.p2, self.pattern, "pattern written after the "
                          "restarts")
        check_fio_blocks(self.image, 0, 2 * self.fio_mb * MiB)


class BlkDiscard(Test):
    """Flush, discard and write-zeroes reach the backend."""

    name = "e2e-blk-discard"
    script = "blk-discard.sh"
    image_mb = 64

    def __init__(self, args, spec):
        super().__init__(args, spec)
        self.pattern = make_pattern("blk-discard", MiB)
        self.files["/e2e/pattern.bin"] = self.pattern
        self.zero = (8 * MiB, 64 * 1024, 512 * 1024)  # offset, skip, len
        self.keep = 16 * MiB
        self.params.update(ZERO_OFFSET=self.zero[0], ZERO_SKIP=self.zero[1],
                           ZERO_LEN=self.zero[2], KEEP_OFFSET=self.keep,
                           EXPECT_WRITE_CACHE=spec.write_cache,
                           DISCARD_OFFSET=32 * MiB, DISCARD_LEN=4 * MiB)

    def check_host(self):
        off, skip, length = self.zero
        expect = bytearray(self.pattern)
        expect[skip:skip + length] = bytes(length)
        self.expect_image(off, bytes(expect), "pattern with its zeroed range")
        self.expect_image(self.keep, self.pattern, "untouched pattern")


class BlkReset(Test):
    """Driver unbind/rebind (device reset) with 1 or 2 queues in use."""

    name = "e2e-blk-reset"
    script = "blk-reset.sh"
    image_mb = 128

    def __init__(self, args, spec):
        super().__init__(args, spec)
        self.pattern = make_pattern("blk-reset", MiB)
        self.files["/e2e/pattern.bin"] = self.pattern
        self.pattern_off = 100 * MiB
        self.params.update(PATTERN_OFFSET=self.pattern_off)

    def check_host(self):
        self.expect_image(self.pattern_off, self.pattern,
                          "pattern written before the resets")
        for cycle in (1, 2, 3):
            check_fio_blocks(self.image, cycle * 16 * MiB, 16 * MiB)


class BlkMulti(Test):
    """Three devices (ram, null, file backends) served by one process."""

    name = "e2e-blk-multi"
    script = "blk-multi.sh"

    def __init__(self, args, spec):
        super().__init__(args, spec)
        self.pattern = make_pattern("blk-multi", MiB)
        self.files["/e2e/pattern.bin"] = self.pattern
        self.file_dev = self.devices[2]
        self.pattern_off = 40 * MiB
        self.params = {
            "SERIALS": " ".join(spec.expected_serial(d) for d in self.devices),
            "RAM_SECTORS": self.devices[0].size_mb * MiB // SECTOR,
            "NULL_SECTORS": self.devices[1].size_mb * MiB // SECTOR,
            "FILE_SECTORS": self.file_dev.size_mb * MiB // SECTOR,
            "FILE_PATTERN_OFFSET": self.pattern_off,
        }

    def make_devices(self):
        # Serials are how a guest tells the disks apart; umdevd answers
        # GET_ID with the configured one.  The last fills all 20 bytes, so
        # no NUL ends it on the wire.
        # ram0 is busy-polled (no kicks; the guest is told not to notify),
        # the others use the default adaptive notification.
        return [self.device("ram0", backend="ram", size_mb=128, queues=2,
                            serial="umdev-ram0", umdevd_opts=",poll=on"),
                self.device("null0", backend="null", size_mb=1024, queues=1,
                            serial="umdev-null0"),
                self.device("file0", size_mb=64, queues=2,
                            serial="umdev-file0-01234567")]

    def check_host(self):
        self.image = self.file_dev.image
        self.expect_image(self.pattern_off, self.pattern, "vdc pattern")
        check_fio_blocks(self.image, 0, 32 * MiB)


TESTS = {cls.name: cls for cls in (BlkFio, BlkReadonly, BlkReconnect,
                                   BlkDiscard, BlkReset, BlkMulti)}


class Interrupted(E2EFailure):
    """SIGTERM/SIGINT (e.g. meson's timeout): unwind so QEMU and the
    server are killed by Test.run()'s cleanup instead of left behind."""


def on_signal(signum, frame):
    raise Interrupted("interrupted by %s" % signal.Signals(signum).name)


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="tests: " + ", ".join(sorted(TESTS)))
    ap.add_argument("test", choices=sorted(TESTS))
    ap.add_argument("--server", default="umdevd", choices=("umdevd", "qsd"))
    ap.add_argument("--umdevd", help="path to the umdevd binary")
    ap.add_argument("--workdir", help="per-test directory (default: "
                    "./e2e-work/TEST)")
    ap.add_argument("--cache-dir", default="e2e-guest-cache",
                    help="where the guest initramfs is cached")
    args = ap.parse_args()
    if not args.workdir:
        args.workdir = os.path.join("e2e-work", args.test)
    try:
        spec = ServerSpec.from_args(args)
        TESTS[args.test](args, spec).run()
    except E2EFailure as e:
        print("E2E FAIL %s: %s" % (args.test, e), flush=True)
        return 1
    print("E2E PASS %s" % args.test, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
