#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Live migration end-to-end: a guest moves between two QEMUs, disks served by umdevd.

Concepts: two "hosts" on this machine share one image file, as two real
hosts share storage. Each runs its own umdevd (the source's and the
destination's device on the same image) and its own QEMU 7.2 under TCG;
the destination waits with -incoming on a UNIX socket and the source is
told to migrate there over QMP. The guest (guest/migrate.sh) runs verified
fio across the move and reads a disk region into its page cache while the
migration runs. The host holds the switchover back until that read is done
(a 1 ms downtime limit, the bandwidth cut to a trickle after the first pass,
and the guest keeps a few pages dirty), so the device's writes land in guest pages the
migration has already sent and only dirty logging gets them sent again.
The host paces the guest through a mailbox sector of the image, checks
that the destination's umdevd served no request before the source had
stopped, and checks the image after the guest powered off.

Guest RAM is 1048568 KiB, not 1 GiB: QEMU 7.2 under TCG loses guest CPU
writes during migration when guest RAM is a multiple of 256 KiB (fixed in
QEMU 9.0); see docs/testing.md.

Usage:
    e2e_migrate.py TEST --umdevd PATH --umdevctl PATH --workdir DIR --cache-dir DIR
        [--no-dirty-log]
--no-dirty-log runs umdevd with UMDEV_DEBUG_NO_DIRTY_LOG=1 and inverts the
verdict: the test passes only if the guest detects the lost writes.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
import mkguest  # noqa: E402
from e2e import E2EFailure, MiB, SECTOR, log, tail  # noqa: E402

RAM = "1048568k"


class Qmp:
    """A minimal QMP client: commands in order, events skipped."""

    def __init__(self, path, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise E2EFailure("no QMP socket at %s" % path)
                time.sleep(0.1)
        self.sock.settimeout(timeout)
        self.buf = b""
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise E2EFailure("QMP connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise E2EFailure("QMP %s failed: %s" % (name, r["error"]))

    def close(self):
        self.sock.close()


class Umdevd:
    """One host's umdevd: one device on the shared image, its own control socket."""

    def __init__(self, exe, umdevctl, spec, rpc, logpath, no_log):
        self.argv = [exe, "--rpc", rpc, "--device", spec]
        self.umdevctl = umdevctl
        self.rpc = rpc
        self.logpath = logpath
        self.env = dict(os.environ)
        if no_log:
            self.env["UMDEV_DEBUG_NO_DIRTY_LOG"] = "1"
        self.proc = None

    def start(self, sock):
        with open(self.logpath, "ab") as logf:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 15
        while not (os.path.exists(sock) and os.path.exists(self.rpc)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise E2EFailure("umdevd did not start; log:\n%s" % tail(self.logpath))
            time.sleep(0.05)
        time.sleep(0.2)

    def requests(self, dev_id):
        out = subprocess.run([self.umdevctl, "--rpc", self.rpc, "--json", "stats", dev_id],
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise E2EFailure("umdevctl stats failed: %s" % out.stderr)
        total = 0

        def walk(o):
            nonlocal total
            if isinstance(o, dict):
                for k, v in o.items():
                    if k == "requests" and isinstance(v, int):
                        total += v
                    else:
                        walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(json.loads(out.stdout))
        return total

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise E2EFailure("umdevd ignored SIGTERM; log:\n%s" % tail(self.logpath))
        return None if self.proc is None else self.proc.returncode


class Migrate(e2e.Test):
    """Base: subclasses name the device (blk or scsi)."""

    script = "migrate.sh"
    image_mb = 512
    fio_mb = 64
    guest_timeout = 300
    read_off_mb = 300
    read_mb = 48
    cancel_first = False

    def __init__(self, args, spec):
        super().__init__(args, spec)
        self.pattern = e2e.make_pattern(self.name, MiB)
        self.files["/e2e/pattern.bin"] = self.pattern
        self.p1 = 400 * MiB
        self.p2 = 420 * MiB
        self.mailbox = 440 * MiB
        self.region = os.urandom(self.read_mb * MiB)
        self.params.update(DISK=self.disk, FIO_SIZE_MB=self.fio_mb, PATTERN_OFFSET=self.p1,
                           PATTERN2_OFFSET=self.p2, MAILBOX_OFFSET=self.mailbox,
                           READ_OFFSET_MB=self.read_off_mb, READ_MB=self.read_mb,
                           READ_SHA=hashlib.sha256(self.region).hexdigest())

    def prepare_image(self):
        super().prepare_image()
        with open(self.image, "r+b") as f:
            f.seek(self.read_off_mb * MiB)
            f.write(self.region)

    def post(self, word):
        buf = word.encode().ljust(SECTOR, b"\0")
        fd = os.open(self.image, os.O_WRONLY)
        try:
            os.pwrite(fd, buf, self.mailbox)
            os.fsync(fd)
        finally:
            os.close(fd)
        log("host: mailbox %s" % word)

    def qemu_argv(self, kernel, initrd, sock, qmp, incoming=None):
        argv = [e2e.qemu_binary(), "-accel", "tcg", "-smp", "2", "-m", RAM,
                "-object", "memory-backend-memfd,id=mem,size=%s,share=on" % RAM,
                "-machine", "q35,memory-backend=mem",
                "-nographic", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
                # init_on_alloc would have the CPU zero each page-cache page
                # before the device fills it: a CPU write QEMU tracks itself,
                # which could hide a back-end that does not log.
                "-append", "console=ttyS0 quiet panic=-1 init_on_alloc=0",
                "-qmp", "unix:%s,server=on,wait=off" % qmp,
                "-chardev", "socket,id=c0,path=%s" % sock] + self.device_args()
        if incoming:
            argv += ["-incoming", "unix:" + incoming]
        return argv

    def run(self):
        t_all = time.monotonic()
        if os.path.isdir(self.work):
            shutil.rmtree(self.work)
        os.makedirs(self.work)
        kernel, base = mkguest.build_base(self.args.cache_dir, log=log)
        self.prepare_image()
        self.files["/e2e/timeout"] = b"%d\n" % max(30, self.guest_timeout - 45)
        initrd = mkguest.make_initrd(base, self.guest_script(),
                                     os.path.join(self.work, "initrd.cpio"), self.files)
        d = tempfile.mkdtemp(prefix="umdev-mig-")
        no_log = self.args.no_dirty_log
        hosts = []
        for h in ("src", "dst"):
            sock = os.path.join(d, h + ".sock")
            u = Umdevd(self.args.umdevd, self.args.umdevctl, self.umdevd_spec(sock),
                       os.path.join(d, h + ".rpc"), os.path.join(self.work, h + "-umdevd.log"),
                       no_log)
            hosts.append((h, sock, u))
        src_q = dst_q = None
        qmp_src = qmp_dst = None
        try:
            for h, sock, u in hosts:
                u.start(sock)
            src_q = e2e.Qemu(None, None, [], False, os.path.join(self.work, "src-console.log"),
                             argv=self.qemu_argv(kernel, initrd, hosts[0][1],
                                                 os.path.join(d, "src.qmp")))
            dst_q = e2e.Qemu(None, None, [], False, os.path.join(self.work, "dst-console.log"),
                             argv=self.qemu_argv(kernel, initrd, hosts[1][1],
                                                 os.path.join(d, "dst.qmp"),
                                                 incoming=os.path.join(d, "mig.sock")))
            self.qemu = src_q
            src_q.start()
            dst_q.start()
            qmp_src = Qmp(os.path.join(d, "src.qmp"))
            qmp_dst = Qmp(os.path.join(d, "dst.qmp"))
            if src_q.wait_for(r"E2E-MARK ready", 150) is None:
                self.fail_both(src_q, dst_q, "guest never got ready", hosts)
            if self.cancel_first:
                dst_q, qmp_dst = self.cancel_once(qmp_src, src_q, dst_q, qmp_dst, hosts, d,
                                                  kernel, initrd)
            t_mig = time.monotonic()
            # Hold the switchover back until the guest's read is done.
            qmp_src.cmd("migrate-set-parameters", **{"downtime-limit": 1,
                                                     "max-bandwidth": 512 * MiB})
            qmp_src.cmd("migrate", uri="unix:" + os.path.join(d, "mig.sock"))
            posted_go = False
            released = False
            trickle = False
            dst_requests_before = 0
            while True:
                st = qmp_src.cmd("query-migrate")
                status = st.get("status")
                with open(os.path.join(self.work, "query-migrate.log"), "a") as f:
                    f.write("%.1f %s\n" % (time.monotonic() - t_mig, json.dumps(st)))
                if status in ("failed", "cancelled"):
                    self.fail_both(src_q, dst_q, "migration %s: %s" % (status, st), hosts)
                if status == "completed":
                    break
                # The destination must not serve a request before the switchover.
                dst_requests_before = hosts[1][2].requests("d0")
                if dst_requests_before:
                    self.fail_both(src_q, dst_q, "the destination's umdevd served %d "
                                   "requests while the source still ran"
                                   % dst_requests_before, hosts)
                ram = st.get("ram", {})
                if (not trickle and ram.get("dirty-sync-count", 0) <= 1 and
                        0 < ram.get("remaining", 0) < 48 * MiB):
                    # Slow to a trickle before the first pass ends: after it,
                    # a guest starved of CPU (a loaded host) may dirty too
                    # little to hold a 512 MiB/s switchover back between two
                    # of our polls. The last 48 MiB then take <= 12 s.
                    qmp_src.cmd("migrate-set-parameters", **{"max-bandwidth": 4 * MiB})
                    trickle = True
                if not posted_go and ram.get("dirty-sync-count", 0) >= 2:
                    # Slow to a trickle: the bandwidth times the 1 ms limit
                    # is then below one page, and any dirty page (the guest
                    # keeps making some) holds the switchover back.
                    qmp_src.cmd("migrate-set-parameters", **{"max-bandwidth": 4 * MiB})
                    self.post("GO")
                    posted_go = True
                if posted_go and not released and src_q.find(r"E2E-MARK read-done"):
                    log("host: guest read done during the migration; letting it converge")
                    qmp_src.cmd("migrate-set-parameters", **{"downtime-limit": 3000,
                                                             "max-bandwidth": 1024 * MiB})
                    released = True
                if time.monotonic() - t_mig > 150:
                    self.fail_both(src_q, dst_q, "migration did not complete: %s" % st, hosts)
                time.sleep(0.1)
            if not released:
                self.fail_both(src_q, dst_q, "migration completed before the guest's read: "
                               "the test lost its power", hosts)
            self.timing("migration", t_mig)
            log("host: migration completed: total %s ms, downtime %s ms, %s"
                % (st.get("total-time"), st.get("downtime"), st.get("ram")))
            if src_q.find(r"E2E-MARK fio-end"):
                self.fail_both(src_q, dst_q, "fio ended before the move; raise fio_mb", hosts)
            if qmp_dst.cmd("query-status").get("status") != "running":
                # QEMU 7.2 starts the destination by itself (autostart).
                qmp_dst.cmd("cont")
            qmp_src.cmd("quit")
            self.post("DONE")
            rc = dst_q.wait_exit(self.guest_timeout)
            if rc is None:
                self.fail_both(src_q, dst_q, "guest still running on the destination", hosts)
            res = dst_q.find(e2e.Qemu.RESULT_RE.pattern)
            if res is None:
                self.fail_both(src_q, dst_q, "no result marker on the destination", hosts)
            if res[1].group(1) != "PASS":
                lost = dst_q.find(r"dirty pages were not logged")
                if no_log and lost:
                    log("host: as expected without dirty logging, the guest found "
                        "the memory the device wrote during the migration stale")
                    return
                self.fail_both(src_q, dst_q, "guest test script failed (rc=%s)"
                               % res[1].group(2), hosts)
            if no_log:
                raise E2EFailure("with UMDEV_DEBUG_NO_DIRTY_LOG=1 the guest found "
                                 "nothing wrong: this test does not catch a back-end "
                                 "that does not log")
            if self.cancel_first:
                # LOG_ALL went on, off (the cancel) and on again.
                with open(hosts[0][2].logpath) as f:
                    ons = f.read().count("dirty logging on")
                if ons < 2:
                    raise E2EFailure("the source's umdevd saw dirty logging switched on "
                                     "%d time(s), expected 2 (cancel, then retry)" % ons)
            for h, sock, u in hosts:
                status = u.stop()
                if status not in (0, -signal.SIGTERM):
                    raise E2EFailure("%s umdevd exited with %s" % (h, status))
            self.expect_image(self.p1, self.pattern, "pattern written before the move")
            self.expect_image(self.p2, self.pattern, "pattern written after the move")
            e2e.check_fio_blocks(self.image, 0, 2 * self.fio_mb * MiB)
        finally:
            for q in (qmp_src, qmp_dst):
                if q:
                    q.close()
            for q in (src_q, dst_q):
                if q:
                    q.kill()
            for h, sock, u in hosts:
                if u.proc and u.proc.poll() is None:
                    u.proc.kill()
                    u.proc.wait()
            shutil.rmtree(d, ignore_errors=True)
        self.timing("total", t_all)
        log("timings: " + ", ".join("%s %.1f s" % x for x in self.timings))
        if not os.environ.get("UMDEV_E2E_KEEP"):
            for p in (self.image, os.path.join(self.work, "initrd.cpio")):
                if os.path.exists(p):
                    os.unlink(p)

    def cancel_once(self, qmp_src, src_q, dst_q, qmp_dst, hosts, d, kernel, initrd):
        """Start a migration, cancel it half-way, and give the retry a new
        destination QEMU (a cancelled incoming migration ends the old one).
        The guest must keep running on the source throughout."""
        qmp_src.cmd("migrate-set-parameters", **{"downtime-limit": 1,
                                                 "max-bandwidth": 64 * MiB})
        qmp_src.cmd("migrate", uri="unix:" + os.path.join(d, "mig.sock"))
        t = time.monotonic()
        while True:
            st = qmp_src.cmd("query-migrate")
            if st.get("status") == "active" and \
                    st.get("ram", {}).get("transferred", 0) > 64 * MiB:
                break
            if st.get("status") not in ("setup", "active") or time.monotonic() - t > 60:
                self.fail_both(src_q, dst_q, "first migration did not get going: %s" % st,
                               hosts)
            time.sleep(0.2)
        qmp_src.cmd("migrate_cancel")
        while qmp_src.cmd("query-migrate").get("status") != "cancelled":
            if time.monotonic() - t > 90:
                self.fail_both(src_q, dst_q, "migrate_cancel did not take", hosts)
            time.sleep(0.2)
        log("host: migration cancelled half-way after %.1f s" % (time.monotonic() - t))
        if qmp_src.cmd("query-status").get("status") != "running":
            self.fail_both(src_q, dst_q, "the source VM is not running after the cancel",
                           hosts)
        qmp_dst.close()
        if dst_q.wait_exit(30) is None:
            dst_q.kill()
        if src_q.find(e2e.Qemu.RESULT_RE.pattern):
            self.fail_both(src_q, dst_q, "the guest ended during the cancelled migration",
                           hosts)
        # The destination's umdevd takes the new QEMU's connection.
        new_q = e2e.Qemu(None, None, [], False, os.path.join(self.work, "dst2-console.log"),
                         argv=self.qemu_argv(kernel, initrd, hosts[1][1],
                                             os.path.join(d, "dst2.qmp"),
                                             incoming=os.path.join(d, "mig.sock")))
        new_q.start()
        self.timing("cancelled migration", t)
        return new_q, Qmp(os.path.join(d, "dst2.qmp"))

    def fail_both(self, src_q, dst_q, why, hosts):
        src_q.kill()
        dst_q.kill()
        raise E2EFailure("%s\n---- source console (%s) ----\n%s\n---- destination console "
                         "(%s) ----\n%s\n---- source umdevd ----\n%s\n---- destination "
                         "umdevd ----\n%s"
                         % (why, src_q.logpath, tail(src_q.logpath, 40), dst_q.logpath,
                            tail(dst_q.logpath, 40), tail(hosts[0][2].logpath, 20),
                            tail(hosts[1][2].logpath, 20)))


class MigrateBlk(Migrate):
    name = "e2e-migrate-blk"
    disk = "/dev/vda"

    def umdevd_spec(self, sock):
        return "virtio-blk,id=d0,socket=%s,backend=file:%s,num-queues=2" % (sock, self.image)

    def device_args(self):
        return ["-device", "vhost-user-blk-pci,chardev=c0,num-queues=2"]


class MigrateScsi(Migrate):
    """Also: the first migration is cancelled half-way and retried."""

    name = "e2e-migrate-scsi"
    disk = "/dev/sda"
    cancel_first = True

    def umdevd_spec(self, sock):
        return "virtio-scsi,id=d0,socket=%s,lun=0:0:file:%s,num-queues=2" % (sock, self.image)

    def device_args(self):
        return ["-device", "vhost-user-scsi-pci,chardev=c0,num_queues=2"]


TESTS = {c.name: c for c in (MigrateBlk, MigrateScsi)}


def main():
    signal.signal(signal.SIGTERM, e2e.on_signal)
    signal.signal(signal.SIGINT, e2e.on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("test", choices=sorted(TESTS))
    ap.add_argument("--umdevd", required=True)
    ap.add_argument("--umdevctl", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--cache-dir", default="e2e-guest-cache")
    ap.add_argument("--no-dirty-log", action="store_true")
    args = ap.parse_args()
    args.umdevd = os.path.abspath(args.umdevd)
    args.umdevctl = os.path.abspath(args.umdevctl)
    try:
        spec = e2e.ServerSpec("umdevd", umdevd=args.umdevd)
        TESTS[args.test](args, spec).run()
    except E2EFailure as e:
        print("E2E FAIL %s: %s" % (args.test, e), flush=True)
        return 1
    print("E2E PASS %s%s" % (args.test, " (lost writes detected)" if args.no_dirty_log
                             else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
