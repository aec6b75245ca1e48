#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""e2e-readme: README.md's own commands, run as written, work.

Concepts: the command lines are read from README.md at run time, so the test
breaks when README changes in a way that no longer works:
- "Set up and run": the indented `./scripts/setup.sh && ./build/daemon/umdevd
  ...` line runs through sh from the repository root (setup.sh installs only
  what is missing, then rebuilds ./build), and the qemu-system-x86_64 example
  below it attaches a guest, its trailing `...` replaced by the test guest's
  kernel, initrd and console options. A second guest then attaches to the
  same umdevd with QEMU's defaults (`vhost-user-blk-pci,chardev=c0`, no
  num-queues, `-smp 4`) and finds what the first one wrote.
- "umdevd": the virtio-scsi example line (PATH and IMG0 filled in, optional
  `[...]` parts dropped) with QEMU's defaults for vhost-user-scsi-pci and
  `-smp 4`, every other QEMU option as in README's example.
README's socket path is fixed (/tmp/umdev-blk0.sock): a lock keeps two runs
of this test apart, and a server already listening there fails the test
before anything starts.

Usage: e2e_readme.py --source-root DIR --workdir DIR --cache-dir DIR
"""

import argparse
import errno
import fcntl
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
import mkguest  # noqa: E402
from e2e import E2EFailure, MiB, SECTOR, log, tail  # noqa: E402

LOCK = "/tmp/umdev-e2e-readme.lock"
LOCK_WAIT = 60
# setup.sh may have to install packages and build from scratch.
SETUP_TIMEOUT = 480
GUEST_TIMEOUT = 150
DEFAULT_SMP = 4
FIO_SIZE_MB = 16
SCSI_IMAGE_MB = 64


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMGT]?)", text)
    if not m:
        raise E2EFailure("README: cannot read size %r" % text)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30,
                               "T": 40}[m.group(2)]


def device_opts(spec):
    """'virtio-blk,id=x,socket=y' -> ('virtio-blk', {'id': 'x', ...}); keys
    that repeat (lun=) keep their last value."""
    kind, _, rest = spec.partition(",")
    opts = {}
    for kv in rest.split(","):
        k, _, v = kv.partition("=")
        opts[k] = v
    return kind, opts


class Readme:
    """The commands README.md gives, parsed out of its text."""

    SETUP_PREFIX = "./scripts/setup.sh && "

    def __init__(self, path):
        with open(path) as f:
            self.text = f.read()
        self.setup_line = self._setup_line()
        argv = shlex.split(self.setup_line[len(self.SETUP_PREFIX):])
        self.umdevd = argv[0]
        dev = self._opt_value(argv, "--device", "README's umdevd command")
        kind, opts = device_opts(dev)
        if kind != "virtio-blk" or "socket" not in opts or \
                not opts.get("backend", "").startswith("ram:"):
            raise E2EFailure("README's umdevd command no longer serves a "
                             "virtio-blk RAM disk: %s" % dev)
        self.sock = opts["socket"]
        self.disk_bytes = parse_size(opts["backend"][len("ram:"):])
        self.qemu_argv = self._qemu_example()
        self.scsi_line = self._scsi_line()

    def _section(self, title):
        # The heading may go on, e.g. "## Set up and run (Debian 12, ...)".
        m = re.search(r"^## %s\b[^\n]*\n(.*?)(?=^## |\Z)" % re.escape(title),
                      self.text, re.M | re.S)
        if not m:
            raise E2EFailure("README.md has no '## %s' section" % title)
        return m.group(1)

    @staticmethod
    def _blocks(section):
        """Indented code blocks, backslash continuations joined."""
        blocks, cur = [], []
        for line in section.splitlines():
            if line.startswith("    "):
                cur.append(line[4:])
            elif cur:
                blocks.append(cur)
                cur = []
        if cur:
            blocks.append(cur)
        return [re.sub(r"\\\n\s*", " ", "\n".join(b)) for b in blocks]

    def _setup_line(self):
        for b in self._blocks(self._section("Set up and run")):
            if b.startswith(self.SETUP_PREFIX + "./build/daemon/umdevd "):
                return b
        raise E2EFailure("README's 'Set up and run' has no indented line "
                         "starting with '%s./build/daemon/umdevd'"
                         % self.SETUP_PREFIX)

    def _qemu_example(self):
        for b in self._blocks(self._section("Set up and run")):
            if b.startswith("qemu-system-x86_64 "):
                argv = shlex.split(b)
                if argv[-1] != "...":
                    raise E2EFailure("README's QEMU example no longer ends "
                                     "in '...' (where the guest goes)")
                return argv[:-1]
        raise E2EFailure("README's 'Set up and run' has no "
                         "qemu-system-x86_64 example")

    def _scsi_line(self):
        for b in self._blocks(self._section("umdevd")):
            for line in b.splitlines():
                if "--device virtio-scsi," in line:
                    return line.strip()
        raise E2EFailure("README's 'umdevd' section has no virtio-scsi line")

    @staticmethod
    def _opt_value(argv, opt, what):
        if opt not in argv[:-1]:
            raise E2EFailure("%s has no %s: %s" % (what, opt, shlex.join(argv)))
        return argv[argv.index(opt) + 1]

    def qemu_device_index(self, argv):
        for i, a in enumerate(argv[:-1]):
            if a == "-device" and argv[i + 1].startswith("vhost-user-"):
                return i + 1
        raise E2EFailure("README's QEMU example has no vhost-user -device")

    def qemu_chardev_id(self):
        i = self.qemu_device_index(self.qemu_argv)
        _, opts = device_opts(self.qemu_argv[i])
        if "chardev" not in opts:
            raise E2EFailure("README's -device has no chardev=")
        return opts["chardev"]

    def qemu_defaults(self, device_driver, sock, smp, reconnect=True):
        """README's QEMU example with QEMU's defaults for @device_driver
        (only its chardev set), -smp @smp, and the chardev on @sock;
        without reconnect=N on the chardev unless @reconnect."""
        argv = list(self.qemu_argv)
        argv[self.qemu_device_index(argv)] = "%s,chardev=%s" % (
            device_driver, self.qemu_chardev_id())
        if sock != self.sock:
            argv = [a.replace("path=%s" % self.sock, "path=%s" % sock)
                    for a in argv]
        if not reconnect:
            argv = [re.sub(r",reconnect=\d+", "", a)
                    if argv[i - 1] == "-chardev" else a
                    for i, a in enumerate(argv)]
        return argv[:1] + ["-smp", str(smp)] + argv[1:]

    def qemu_queues(self):
        """num-queues in README's example, None if it leaves the default."""
        _, opts = device_opts(self.qemu_argv[self.qemu_device_index(
            self.qemu_argv)])
        n = opts.get("num-queues", opts.get("num_queues"))
        return int(n) if n else None


def smp_of(argv):
    if "-smp" in argv[:-1]:
        return int(argv[argv.index("-smp") + 1].split(",")[0])
    return 1


def listening(path):
    """Does a server answer on UNIX socket @path?"""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError as e:
        if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise E2EFailure("cannot probe %s: %s" % (path, e))
    finally:
        s.close()


def children_of(pid):
    """Every descendant pid of @pid (from /proc)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out


class ShellServer:
    """A command line from README run by sh in its own process group. Stop
    signals go to the umdevd it runs (found by its executable), and sh's
    exit status is then umdevd's."""

    def __init__(self, line, cwd, umdevd, sock, logpath):
        self.line = line
        self.cwd = cwd
        self.umdevd = os.path.realpath(os.path.join(cwd, umdevd))
        self.sock = sock
        self.logpath = logpath
        self.proc = None
        self.sock_ino = None

    def start(self, timeout):
        with open(self.logpath, "ab") as logf:
            logf.write(("=== in %s: sh -c %s\n"
                        % (self.cwd, shlex.quote(self.line))).encode())
            logf.flush()
            self.proc = subprocess.Popen(["sh", "-c", self.line], cwd=self.cwd,
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise E2EFailure("`%s` exited with status %d before umdevd "
                                 "listened on %s; log tail:\n%s"
                                 % (self.line, self.proc.returncode,
                                    self.sock, tail(self.logpath)))
            pid = self.umdevd_pid()
            if pid and os.path.exists(self.sock) and \
                    stat.S_ISSOCK(os.stat(self.sock).st_mode) and \
                    listening(self.sock):
                self.sock_ino = os.stat(self.sock).st_ino
                return pid
            if time.monotonic() > deadline:
                raise E2EFailure("umdevd did not listen on %s within %d s; "
                                 "log tail:\n%s" % (self.sock, timeout,
                                                    tail(self.logpath)))
            time.sleep(0.2)

    def umdevd_pid(self):
        for pid in children_of(self.proc.pid):
            try:
                if os.path.realpath("/proc/%d/exe" % pid) == self.umdevd:
                    return pid
            except OSError:
                pass
        return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None and \
            self.umdevd_pid() is not None

    def stop(self, limit):
        """SIGTERM umdevd; returns its exit status; fails after @limit s."""
        pid = self.umdevd_pid()
        if pid is None:
            raise E2EFailure("umdevd is not running (sh status %s); log "
                             "tail:\n%s" % (self.proc.poll(),
                                            tail(self.logpath)))
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        try:
            status = self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            raise E2EFailure("umdevd still running %.0f s after SIGTERM"
                             % limit)
        log("umdevd exited %.1f s after SIGTERM (status %d)"
            % (time.monotonic() - t0, status))
        return status

    def kill(self):
        if self.proc:
            # The whole group: umdevd may outlive an sh that was signalled.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        # Remove the socket only if it is still the one our umdevd made.
        try:
            if self.sock_ino and os.stat(self.sock).st_ino == self.sock_ino:
                os.unlink(self.sock)
        except FileNotFoundError:
            pass


class ReadmeTest:
    def __init__(self, args):
        self.args = args
        self.root = os.path.abspath(args.source_root)
        self.work = os.path.abspath(args.workdir)
        self.readme = Readme(os.path.join(self.root, "README.md"))
        self.kernel = self.base = None
        self.timings = []

    def guest(self, name, argv_head, script, params, files=None):
        """Boot a guest with @argv_head + the test guest's boot options,
        running guest/@script; fail unless it reports PASS."""
        with open(os.path.join(e2e.GUEST_DIR, "lib.sh"), "rb") as f:
            files = dict(files or {}, **{"/e2e/lib.sh": f.read()})
        with open(os.path.join(e2e.GUEST_DIR, script)) as f:
            body = f.read()
        files["/e2e/timeout"] = b"%d\n" % (GUEST_TIMEOUT - 30)
        head = "".join("%s=%s\n" % (k, shlex.quote(str(v)))
                       for k, v in sorted(params.items()))
        initrd = mkguest.make_initrd(self.base, head + body,
                                     os.path.join(self.work, name + ".cpio"),
                                     files)
        argv = argv_head + e2e.guest_boot_args(self.kernel, initrd)
        console = os.path.join(self.work, name + ".console.log")
        qemu = e2e.Qemu(None, None, [], False, console, argv=argv)
        log("%s: %s" % (name, shlex.join(argv)))
        t = time.monotonic()
        qemu.start()
        try:
            if qemu.wait_for(r"UMDEV-E2E-BOOTED", 120) is None:
                if qemu.proc.poll() is not None:
                    self.fail_guest(name, qemu, "QEMU exited with status %d "
                                    "before the guest booted"
                                    % qemu.proc.returncode)
                self.fail_guest(name, qemu, "guest did not boot (or its "
                                "drivers never finished probing the device)")
            if qemu.wait_exit(GUEST_TIMEOUT) is None:
                self.fail_guest(name, qemu, "guest still running after %d s"
                                % GUEST_TIMEOUT)
            res = qemu.find(e2e.Qemu.RESULT_RE.pattern)
            if res is None:
                self.fail_guest(name, qemu, "QEMU exited (status %s) without "
                                "a guest result" % qemu.proc.returncode)
            if res[1].group(1) != "PASS":
                self.fail_guest(name, qemu, "guest test script failed")
        finally:
            qemu.kill()
            os.unlink(initrd)
        self.timings.append((name, time.monotonic() - t))
        log("%s: guest PASS" % name)

    def fail_guest(self, name, qemu, why):
        qemu.kill()
        raise E2EFailure("%s: %s\n---- console tail (%s) ----\n%s\n"
                         "---- server log tail (%s) ----\n%s"
                         % (name, why, qemu.logpath, tail(qemu.logpath, 60),
                            self.server.logpath, tail(self.server.logpath)))

    def run(self):
        t_all = time.monotonic()
        if os.path.isdir(self.work):
            shutil.rmtree(self.work)
        os.makedirs(self.work)
        self.kernel, self.base = mkguest.build_base(self.args.cache_dir,
                                                    log=log)
        if not os.access(self.kernel, os.R_OK):
            raise E2EFailure("cannot read %s: run as root" % self.kernel)
        with open(LOCK, "w") as lock:
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise E2EFailure("another e2e-readme run has held "
                                         "%s for %d s; README's socket %s "
                                         "is in use" % (LOCK, LOCK_WAIT,
                                                        self.readme.sock))
                    time.sleep(1)
            if listening(self.readme.sock):
                raise E2EFailure("a server already listens on README's "
                                 "socket %s; stop it (this test needs that "
                                 "path)" % self.readme.sock)
            self.blk()
        self.scsi()
        self.timings.append(("total", time.monotonic() - t_all))
        log("timings: " + ", ".join("%s %.1f s" % x for x in self.timings))

    def blk(self):
        r = self.readme
        log("README set-up line: %s" % r.setup_line)
        self.server = ShellServer(r.setup_line, self.root, r.umdevd, r.sock,
                                  os.path.join(self.work, "blk-server.log"))
        try:
            t = time.monotonic()
            self.server.start(SETUP_TIMEOUT)
            self.timings.append(("setup.sh + start", time.monotonic() - t))
            nq = r.qemu_queues()
            smp = smp_of(r.qemu_argv)
            params = {"EXPECT_SECTORS": r.disk_bytes // SECTOR,
                      "PATTERN_OFFSET": r.disk_bytes // 2,
                      "FIO_SIZE_MB": FIO_SIZE_MB}
            pattern = e2e.make_pattern("readme-blk", MiB)
            files = {"/e2e/pattern.bin": pattern}
            # Linux uses at most one request queue per vCPU.
            self.guest("blk-readme-qemu", r.qemu_argv, "readme-blk.sh",
                       dict(params, PHASE="first", NCPUS=smp,
                            EXPECT_QUEUES=min(nq or smp, smp)), files)
            if not self.server.alive():
                raise E2EFailure("umdevd exited after the first guest; log "
                                 "tail:\n%s" % tail(self.server.logpath))
            argv = r.qemu_defaults("vhost-user-blk-pci", r.sock, DEFAULT_SMP)
            self.guest("blk-qemu-defaults", argv, "readme-blk.sh",
                       dict(params, PHASE="next", NCPUS=DEFAULT_SMP,
                            EXPECT_QUEUES=DEFAULT_SMP), files)
            status = self.server.stop(10)
            if status not in (0, 128 + signal.SIGTERM):
                raise E2EFailure("README's umdevd exited with status %d on "
                                 "SIGTERM; log tail:\n%s"
                                 % (status, tail(self.server.logpath)))
        finally:
            self.server.kill()

    def scsi(self):
        r = self.readme
        sock = os.path.join(self.work, "scsi0.sock")
        if len(sock) >= 100:
            sock = os.path.join(tempfile.mkdtemp(prefix="umdev-e2e-"),
                                "scsi0.sock")
        image = os.path.join(self.work, "scsi-lun0.img")
        with open(image, "wb") as f:
            f.truncate(SCSI_IMAGE_MB * MiB)
        # "umdevd --device virtio-scsi,...,lun=0:0:file:IMG0,...[,num-queues=N]"
        line = re.sub(r"\[[^]]*\]", "", r.scsi_line)
        argv = shlex.split(line)
        if argv[0] != "umdevd":
            raise E2EFailure("README's virtio-scsi line does not start with "
                             "umdevd: %s" % r.scsi_line)
        argv[0] = os.path.join(self.root, r.umdevd)
        spec = argv[argv.index("--device") + 1]
        spec = spec.replace("socket=PATH", "socket=" + sock) \
                   .replace(":file:IMG0", ":file:" + image)
        argv[argv.index("--device") + 1] = spec
        luns = [v for k, v in (kv.split("=", 1) for kv in spec.split(",")[1:])
                if k == "lun"]
        if len(luns) != 2 or not luns[0].startswith("0:0:file:") or \
                not luns[1].startswith("0:1:ram:"):
            raise E2EFailure("README's virtio-scsi example no longer has "
                             "LUN 0:0 on a file and 0:1 on RAM: %s" % spec)
        lun1_bytes = parse_size(luns[1].split(":", 3)[3])
        self.server = ShellServer(shlex.join(argv), self.root, argv[0], sock,
                                  os.path.join(self.work, "scsi-server.log"))
        try:
            self.server.start(15)
            pattern = e2e.make_pattern("readme-scsi", MiB)
            offset = 32 * MiB
            # QEMU 7.2's vhost-user-scsi has no reconnect support: with
            # reconnect=N on its chardev it fails at start-up ("Failed to
            # set msg fds"), so that option of README's blk example goes.
            argv = r.qemu_defaults("vhost-user-scsi-pci", sock, DEFAULT_SMP,
                                   reconnect=False)
            self.guest("scsi-qemu-defaults", argv, "readme-scsi.sh",
                       {"LUN0_SECTORS": SCSI_IMAGE_MB * MiB // SECTOR,
                        "LUN1_SECTORS": lun1_bytes // SECTOR,
                        "EXPECT_QUEUES": DEFAULT_SMP, "NCPUS": DEFAULT_SMP,
                        "PATTERN_OFFSET": offset,
                        "FIO_SIZE_MB": FIO_SIZE_MB},
                       {"/e2e/pattern.bin": pattern})
            status = self.server.stop(10)
            if status not in (0, 128 + signal.SIGTERM):
                raise E2EFailure("umdevd (virtio-scsi) exited with status %d "
                                 "on SIGTERM" % status)
        finally:
            self.server.kill()
        if e2e.read_at(image, offset, len(pattern)) != pattern:
            raise E2EFailure("the guest's pattern on LUN 0:0 is not in %s"
                             % image)
        log("host: LUN 0:0 pattern found in the image")
        os.unlink(image)


def main():
    signal.signal(signal.SIGTERM, e2e.on_signal)
    signal.signal(signal.SIGINT, e2e.on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source-root", required=True,
                    help="repository root (holds README.md and scripts/)")
    ap.add_argument("--workdir", default="e2e-work/e2e-readme")
    ap.add_argument("--cache-dir", default="e2e-guest-cache")
    args = ap.parse_args()
    try:
        ReadmeTest(args).run()
    except (E2EFailure, OSError, subprocess.CalledProcessError,
            RuntimeError) as e:
        print("E2E FAIL e2e-readme: %s" % e, flush=True)
        return 1
    print("E2E PASS e2e-readme", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
