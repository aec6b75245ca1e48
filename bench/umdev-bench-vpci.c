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
#include "client/vhost_user_client.h"
#include "client/virtio_pci_drv.h"
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
#define GUEST_IOVA 0x100000000ull
#define GUEST_SIZE (4u << 20)
#define DATA_OFF 0x100000u /* buffers; headers and status bytes below them */

/* One client, either transport: post a read into buffer @b, reap completions. */
struct client {
	bool vfu;
	struct umdev_vuc vu;
	struct umdev_vfuc vc;
	struct umdev_vpd vpd;
	uint64_t bufs; /* vhost-user: guest address of the buffers */
};

struct server {
	const char *name;
	bool vfu, qsd;
	const char *extra; /* appended to the umdevd device */
};

static int vpd_post(struct client *c, uint64_t sector, unsigned b)
{
	uint64_t hdr = GUEST_IOVA + b * 64ull;
	struct virtio_blk_outhdr *h = umdev_vfuc_mem_ptr(&c->vc, hdr, 16);
	struct umdev_vqd_buf bufs[3] = {
		{ hdr, 16, false },
		{ GUEST_IOVA + DATA_OFF + (uint64_t)b * IO_BYTES, IO_BYTES, true },
		{ hdr + 16, 1, true },
	};

	h->type = VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = sector;
	return umdev_vqd_add(&c->vpd.q[0], bufs, 3, 0) < 0 ? -ENOSPC : 0;
}

static int post(struct client *c, uint64_t sector, unsigned b, bool more)
{
	struct umdev_vqd_buf d = { c->bufs + (uint64_t)b * IO_BYTES, IO_BYTES, true };

	if (!c->vfu)
		return umdev_vblk_submit(&c->vu, 0, VIRTIO_BLK_T_IN, sector, &d, 1, b, more);
	if (vpd_post(c, sector, b) < 0)
		return -ENOSPC;
	if (!more && umdev_vqd_kick_needed(&c->vpd.q[0]))
		return umdev_vpd_kick(&c->vpd, 0);
	return 0;
}

/* Reap into @done (buffer numbers); returns how many, or -errno. */
static int reap(struct client *c, unsigned *done, unsigned max)
{
	struct umdev_vblk_cpl cpl[RING];
	uint16_t head;
	uint32_t len;
	int n = 0, r;

	if (!c->vfu) {
		n = umdev_vblk_poll(&c->vu, 0, cpl, max < RING ? max : RING);
		for (int i = 0; i < n; i++) {
			if (cpl[i].status != VIRTIO_BLK_S_OK)
				return -EIO;
			done[i] = (unsigned)cpl[i].cookie;
		}
		return n;
	}
	while ((unsigned)n < max && (r = umdev_vqd_get_used(&c->vpd.q[0], &head, &len)) > 0) {
		/* The chain's first descriptor is its header: that names the buffer. */
		uint64_t hdr = c->vpd.q[0].desc[head].addr;
		unsigned b = (unsigned)((hdr - GUEST_IOVA) / 64);

		if (*(uint8_t *)umdev_vfuc_mem_ptr(&c->vc, hdr + 16, 1) != VIRTIO_BLK_S_OK)
			return -EIO;
		done[n++] = b;
	}
	return n;
}

/* Keep @qd reads in flight for @secs. Returns completions or -errno. */
static int64_t load(struct client *c, unsigned qd, double secs, uint64_t *seed)
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
			int r = post(c, (bench_xorshift(seed) % NBLOCKS) * (IO_BYTES >> 9), b,
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

static int connect_client(struct client *c, const struct server *s, const char *sock)
{
	int r;

	memset(c, 0, sizeof(*c));
	c->vfu = s->vfu;
	if (!c->vfu) {
		r = umdev_vuc_connect(&c->vu, sock, 3000);
		if (r)
			return r;
		c->vu.vqs[0].no_interrupt = true;
		r = umdev_vuc_start_blk(&c->vu, 1, RING, 1, 16ull << 20, 0);
		if (r)
			return r;
		c->bufs = umdev_vuc_alloc(&c->vu, 0, (uint64_t)RING * IO_BYTES, 4096);
		return c->bufs ? 0 : -ENOMEM;
	}
	if ((r = umdev_vfuc_connect(&c->vc, sock, 3000)) < 0 ||
	    (r = umdev_vfuc_version(&c->vc, NULL)) < 0 ||
	    (r = umdev_vfuc_add_mem(&c->vc, GUEST_IOVA, GUEST_SIZE, true,
				    VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE)) < 0 ||
	    (r = umdev_vpd_probe(&c->vpd, &c->vc)) < 0 ||
	    /* No EVENT_IDX: the flags decide, and we ask for no interrupts at all. */
	    (r = umdev_vpd_negotiate(&c->vpd, ~(1ull << VIRTIO_RING_F_EVENT_IDX))) < 0 ||
	    (r = umdev_vpd_queue_setup(&c->vpd, 0, RING, GUEST_IOVA + 0x300000,
				       VIRTIO_MSI_NO_VECTOR)) < 0 ||
	    (r = umdev_vpd_driver_ok(&c->vpd)) < 0)
		return r;
	c->vpd.q[0].avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	return 0;
}

static void close_client(struct client *c)
{
	if (c->vfu) {
		umdev_vpd_fini(&c->vpd);
		umdev_vfuc_close(&c->vc);
	} else {
		umdev_vuc_close(&c->vu);
	}
}

static int run_server(const struct server *s, const char *umdevd, const char *qsd,
		      const unsigned *qds, unsigned nqds, double secs)
{
	char dir[128], sock[192], log[192], dev[512], blockdev[128], exp[512];
	char *uargs[] = { (char *)umdevd, "--device", dev, NULL };
	char *qargs[] = { (char *)qsd, "--blockdev", blockdev, "--export", exp, NULL };
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	struct umdev_proc proc;
	struct client c;
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
	if (r == 0)
		r = connect_client(&c, s, sock);
	for (unsigned i = 0; r == 0 && i < nqds; i++) {
		uint64_t s0, s1, c0, c1;
		double t0, t1;
		int64_t n = load(&c, qds[i], 0.3, &seed); /* warm-up */

		if (n < 0 || umdev_proc_cpu_ns(proc.pid, &s0)) {
			r = n < 0 ? (int)n : -EIO;
			break;
		}
		c0 = bench_self_cpu_ns();
		t0 = bench_mono_s();
		n = load(&c, qds[i], secs, &seed);
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
	close_client(&c);
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
