/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev-bench-vpci: virtio-blk over virtio-pci on vfio-user against
 * virtio-blk over vhost-user, 4 KiB random reads at each queue depth asked
 * (default 1 and 32), in one run: umdevd with transport=vfio-user (trapped
 * notify with adaptive polling, trapped notify without it, and poll=on where
 * notifies land in a mapped area and never trap), umdevd over vhost-user,
 * and qemu-storage-daemon over vhost-user as the peer. Every server has a
 * null backend, so the numbers measure the transport and the virtio path.
 *
 * The client busy-polls its used ring and asks for no interrupts; it kicks
 * only when the device asks (VIRTQ_USED_F_NO_NOTIFY), so a server that polls
 * is never kicked. Over vfio-user a kick is a REGION_WRITE message answered
 * by the server (what a VMM does with a trapped notify write). Server CPU
 * time per I/O comes from /proc/PID/stat, the client's from getrusage.
 *
 * Usage: umdev-bench-vpci [--duration SEC] [--qd N[,N...]] [--umdevd PATH]
 *                         [--qsd PATH] [--label TEXT]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/proc_util.h"
#include "client/virtio_blk_any.h"
#include "umdev/proto/virtio_blk.h"

#include "bench_util.h"

#ifndef UMDEVD_DEFAULT_PATH
#define UMDEVD_DEFAULT_PATH NULL
#endif

#define MAX_QDS 8
#define RING 128
#define IO_BYTES 4096u
#define NULL_SIZE "1G"
#define NBLOCKS ((1ull << 30) / IO_BYTES)

struct server {
	const char *name;
	bool vfu, qsd;
	const char *extra; /* appended to the umdevd device */
};

static int post(struct umdev_vba *c, uint64_t bufs, uint64_t sector, unsigned b, bool more)
{
	struct umdev_vqd_buf d = { bufs + (uint64_t)b * IO_BYTES, IO_BYTES, true };

	return umdev_vba_submit(c, 0, VIRTIO_BLK_T_IN, sector, &d, 1, b, more);
}

/* Reap into @done (buffer numbers); returns how many, or -errno. */
static int reap(struct umdev_vba *c, unsigned *done, unsigned max)
{
	struct umdev_vblk_cpl cpl[RING];
	int n = umdev_vba_poll(c, 0, cpl, max < RING ? max : RING);

	for (int i = 0; i < n; i++) {
		if (cpl[i].status != VIRTIO_BLK_S_OK)
			return -EIO;
		done[i] = (unsigned)cpl[i].cookie;
	}
	return n;
}

/* Keep @qd reads in flight for @secs. Returns completions or -errno. */
static int64_t load(struct umdev_vba *c, uint64_t bufs, unsigned qd, double secs,
		    uint64_t *seed)
{
	unsigned freeb[RING], nfree = qd, inflight = 0;
	double end = bench_mono_s() + secs;
	int64_t total = 0;

	for (unsigned i = 0; i < qd; i++)
		freeb[i] = i;
	for (bool stop = false; !stop || inflight;) {
		int n;

		while (!stop && nfree) {
			unsigned b = freeb[--nfree];
			int r = post(c, bufs, (bench_xorshift(seed) % NBLOCKS) * (IO_BYTES >> 9), b,
				     nfree != 0);

			if (r)
				return r;
			inflight++;
		}
		stop = stop || bench_mono_s() >= end;
		n = reap(c, freeb + nfree, qd - nfree);
		if (n < 0)
			return n;
		nfree += (unsigned)n;
		inflight -= (unsigned)n;
		total += n;
	}
	return total;
}

static int run_server(const struct server *s, const char *umdevd, const char *qsd,
		      const unsigned *qds, unsigned nqds, double secs)
{
	char dir[128], sock[192], log[192], dev[512], blockdev[128], exp[512];
	char *uargs[] = { (char *)umdevd, "--device", dev, NULL };
	char *qargs[] = { (char *)qsd, "--blockdev", blockdev, "--export", exp, NULL };
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	struct umdev_proc proc;
	struct umdev_vba c = { .no_interrupts = true };
	uint64_t bufs = 0;
	bool opened = false;
	int r;

	if (umdev_proc_tmpdir(dir, sizeof(dir)) < 0)
		return -EIO;
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	snprintf(log, sizeof(log), "%s/server.log", dir);
	snprintf(dev, sizeof(dev), "virtio-blk,id=b0,socket=%s,backend=null:%s,num-queues=1%s%s",
		 sock, NULL_SIZE, s->vfu ? ",transport=vfio-user" : "", s->extra);
	snprintf(blockdev, sizeof(blockdev),
		 "driver=null-co,node-name=n0,size=%llu,read-zeroes=on", NBLOCKS * IO_BYTES);
	snprintf(exp, sizeof(exp),
		 "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=%s,"
		 "writable=on", sock);
	r = umdev_proc_spawn(&proc, s->qsd ? qargs : uargs, log);
	if (r)
		return r;
	r = umdev_proc_wait_socket(&proc, sock, 10000);
	if (r == 0) {
		r = umdev_vba_open(&c, s->vfu, sock, 1, RING, 16ull << 20);
		opened = true;
	}
	if (r == 0 && !(bufs = umdev_vba_alloc(&c, (uint64_t)RING * IO_BYTES, 4096)))
		r = -ENOMEM;
	for (unsigned i = 0; r == 0 && i < nqds; i++) {
		uint64_t s0, s1, c0, c1;
		double t0, t1;
		int64_t n = load(&c, bufs, qds[i], 0.3, &seed); /* warm-up */

		if (n < 0 || umdev_proc_cpu_ns(proc.pid, &s0)) {
			r = n < 0 ? (int)n : -EIO;
			break;
		}
		c0 = bench_self_cpu_ns();
		t0 = bench_mono_s();
		n = load(&c, bufs, qds[i], secs, &seed);
		t1 = bench_mono_s();
		c1 = bench_self_cpu_ns();
		if (n <= 0 || umdev_proc_cpu_ns(proc.pid, &s1)) {
			r = n < 0 ? (int)n : -EIO;
			break;
		}
		printf("%-34s QD%-3u %9.0f IOPS %8.1f us  server %6.2f us/IO (%4.0f%% CPU)  "
		       "client %6.2f us/IO\n",
		       s->name, qds[i], n / (t1 - t0), 1e6 * qds[i] * (t1 - t0) / n,
		       (s1 - s0) / 1e3 / n, 100.0 * (s1 - s0) / 1e9 / (t1 - t0),
		       (c1 - c0) / 1e3 / n);
		fflush(stdout);
	}
	if (r)
		fprintf(stderr, "%s: failed: %s\n", s->name, strerror(-r));
	if (opened)
		umdev_vba_close(&c);
	umdev_proc_stop(&proc, 3000);
	if (r)
		bench_dump_log(log);
	return r;
}

int main(int argc, char **argv)
{
	static const struct server servers[] = {
		{ "umdevd vfio-user (trap+adaptive)", true, false, "" },
		{ "umdevd vfio-user (trap, poll-us=0)", true, false, ",poll-us=0" },
		{ "umdevd vfio-user (poll=on, mapped)", true, false, ",poll=on" },
		{ "umdevd vhost-user (adaptive)", false, false, "" },
		{ "umdevd vhost-user (poll=on)", false, false, ",poll=on" },
		{ "qsd vhost-user", false, true, "" },
	};
	const char *umdevd = UMDEVD_DEFAULT_PATH, *qsd = "qemu-storage-daemon", *label = NULL;
	unsigned qds[MAX_QDS] = { 1, 32 }, nqds = 2;
	double secs = 2;
	int opt, fails = 0;
	static const struct option lo[] = {
		{ "duration", required_argument, NULL, 'd' }, { "qd", required_argument, NULL, 'q' },
		{ "umdevd", required_argument, NULL, 'u' }, { "qsd", required_argument, NULL, 's' },
		{ "label", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 },
	};

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'd': secs = atof(optarg); break;
		case 'u': umdevd = optarg; break;
		case 's': qsd = optarg; break;
		case 'l': label = optarg; break;
		case 'q':
			nqds = 0;
			for (char *p = optarg; *p && nqds < MAX_QDS; p += *p == ',') {
				unsigned long v = strtoul(p, &p, 10);

				if (!v || v > RING / 2)
					goto usage;
				qds[nqds++] = (unsigned)v;
			}
			break;
		default:
			goto usage;
		}
	}
	if (!umdevd || secs <= 0 || !nqds)
		goto usage;
	printf("umdev-bench-vpci%s%s: 4 KiB random reads, null backends, %.1f s per point\n",
	       label ? " " : "", label ? label : "", secs);
	for (unsigned i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
		fails += run_server(&servers[i], umdevd, qsd, qds, nqds, secs) != 0;
	return fails ? 1 : 0;
usage:
	fprintf(stderr, "usage: umdev-bench-vpci [--duration SEC] [--qd 1,32] [--umdevd PATH] "
			"[--qsd PATH] [--label TEXT]\n");
	return 2;
}
