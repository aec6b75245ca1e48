/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev-bench-scsi: 4 KiB random READ(10) IOPS of umdevd's virtio-scsi
 * device, and the server's CPU time per I/O.
 *
 * The LUN has a null backend (null:SIZE), so the numbers measure the
 * vhost-user/virtio-scsi/SCSI-target path, not storage; run umdev-bench
 * (virtio-blk, same null backend) next to it to compare the two device
 * models on one machine. There is no vhost-user-scsi peer to compare with
 * in Debian: qemu-storage-daemon 7.2 exports vhost-user-blk, vduse-blk,
 * NBD and FUSE only. Our driver busy-polls the used rings, asks for no
 * interrupts and makes no system call per I/O (kicks only when the device
 * asks, once per batch), so the figure is the server's; client CPU per I/O
 * is printed beside the server's to show it. The server's CPU time comes
 * from /proc/PID/stat around each measurement.
 *
 * Three configurations: umdevd --threads 1 with one request queue,
 * --threads 2 with one, and --threads 2 with two (one queue per loop,
 * the client driving both from one thread); the last line gives the
 * scaling ratio. --single runs the first only.
 *
 * --scaling makes the server the bottleneck so that the ratio can show on
 * a machine with few cores (as umdev-bench --scaling does for virtio-blk):
 * READ(10)s of --bs bytes (128 KiB by default) that the null LUN zero-fills,
 * and a client that sleeps in poll() on the request queues' call eventfds,
 * asking with EVENT_IDX to be woken once per qd/4 completions, instead of
 * busy-polling. Columns then show IOPS, GB/s, server and client CPU per I/O
 * and the client's wake-ups per I/O.
 *
 * Usage: umdev-bench-scsi [--duration SEC] [--qd N[,N...]] [--umdevd PATH]
 *                         [--size BYTES] [--dev-extra ",key=val..."] [--label TEXT]
 *                         [--single] [--scaling [--bs BYTES]]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "client/proc_util.h"
#include "client/virtio_scsi_drv.h"
#include "umdev/proto/scsi.h"
#include "umdev/proto/virtio_ring.h"
#include "util/shm.h"

#include "bench_util.h"

#ifndef UMDEVD_DEFAULT_PATH
#define UMDEVD_DEFAULT_PATH NULL
#endif

#define MAX_QDS 8
#define RING_SIZE 128
#define IO_BYTES 4096u
#define REQQ VIRTIO_SCSI_REQQ0
#define MAX_QUEUES 2

struct opts {
	double duration;
	unsigned qds[MAX_QDS];
	unsigned nqds;
	const char *umdevd;
	uint64_t size;
	const char *dev_extra;
	const char *label;
	bool single; /* only --threads 1 with one queue */
	bool scaling; /* large reads, sleeping client */
	uint32_t bs; /* bytes per read */
};

/* Bytes per read: IO_BYTES, or --bs with --scaling. */
static uint32_t io_bytes = IO_BYTES;

/* Point @cmd at a random 4 KiB block: the LBA lives in the CDB copy in cmd->buf. */
static void aim(struct umdev_vscsi_cmd *cmd, uint64_t nblocks, uint64_t *seed)
{
	uint8_t *cdb = cmd->buf + sizeof(struct virtio_scsi_cmd_req);
	uint32_t lba = (uint32_t)((bench_xorshift(seed) % nblocks) * (io_bytes / 512));

	cdb[2] = lba >> 24;
	cdb[3] = lba >> 16;
	cdb[4] = lba >> 8;
	cdb[5] = lba;
}

/* The command a chain belongs to (the chain is its first member). */
static struct umdev_vscsi_cmd *cmd_of(struct umdev_vscsi_chain *ch)
{
	return (struct umdev_vscsi_cmd *)((char *)ch - offsetof(struct umdev_vscsi_cmd, chain));
}

/* The command behind reaped chain @ch, or NULL if it did not succeed. */
static struct umdev_vscsi_cmd *reaped_ok(struct umdev_vscsi_chain *ch)
{
	struct umdev_vscsi_cmd *cmd = cmd_of(ch);
	struct umdev_vscsi_cmd_res res;

	umdev_vscsi_cmd_result(cmd, &res);
	if (res.resp.response != VIRTIO_SCSI_S_OK || res.resp.status != SCSI_STATUS_GOOD)
		return NULL;
	return cmd;
}

/*
 * Keep @qd reads in flight on each of @nq request queues for @secs, from
 * this one thread; returns completions, or -errno. The driver does no
 * system call per I/O: it busy-polls the used rings (no interrupts asked
 * for), reposts what finished in a batch and kicks once per batch, only
 * when the device asks for it (EVENT_IDX).
 */
/*
 * A busy-polling client burns a whole core whatever it does, so its CPU
 * time per I/O is just 1/IOPS of what it was given. *@empty counts the
 * polls that found nothing: their calibrated cost taken off the client's
 * CPU time leaves its real work (reaping, checking, reposting, kicking).
 */
static int64_t run_load(struct umdev_vscsi_drv *d, struct umdev_vscsi_cmd (*cmds)[RING_SIZE],
			unsigned nq, unsigned qd, uint64_t nblocks, double secs, uint64_t *seed,
			uint64_t *empty)
{
	double end = bench_mono_s() + secs;
	unsigned posted = 0, spins = 0;
	int64_t done = 0;
	bool stop = false;

	for (unsigned q = 0; q < nq; q++) {
		for (unsigned i = 0; i < qd; i++) {
			aim(&cmds[q][i], nblocks, seed);
			if (umdev_vscsi_post(d, REQQ + q, &cmds[q][i].chain, i + 1 < qd))
				return -EIO;
			posted++;
		}
	}
	while (!stop || posted) {
		/* The clock only every 256 polls: it is not free either. */
		if (++spins % 256 == 0)
			stop = bench_mono_s() >= end;
		for (unsigned q = 0; q < nq; q++) {
			struct umdev_vscsi_chain *fin[RING_SIZE];
			int n = umdev_vscsi_poll(d, REQQ + q, fin, RING_SIZE);
			if (n <= 0) {
				if (n < 0)
					return n;
				(*empty)++;
				continue;
			}
			for (int k = 0; k < n; k++) {
				struct umdev_vscsi_cmd *cmd = reaped_ok(fin[k]);

				if (!cmd)
					return -EIO;
				done++;
				posted--;
				if (stop)
					continue;
				aim(cmd, nblocks, seed);
				if (umdev_vscsi_post(d, REQQ + q, &cmd->chain, true))
					return -EIO;
				posted++;
			}
			if (!stop && umdev_vqd_kick_needed(&d->c->vqs[REQQ + q].drv) &&
			    umdev_vuc_kick(d->c, REQQ + q))
				return -EIO;
		}
		if (stop && posted && bench_mono_s() > end + 5)
			return -ETIMEDOUT;
	}
	return done;
}

/* --scaling: ask for the next interrupt @want completions ahead; true if already there. */
static bool arm(struct umdev_vqd *v, unsigned want)
{
	umdev_vqd_set_used_event(v, (uint16_t)(v->last_used_idx + want - 1)); /* full fence */
	return (uint16_t)(umdev_shm_ld16_acq(&v->used->idx) - v->last_used_idx) >= want;
}

/*
 * --scaling: as run_load, but the client sleeps in poll() on the call
 * eventfds and is woken once per @batch completions (EVENT_IDX); *@wakes
 * counts its wake-ups.
 */
static int64_t run_load_irq(struct umdev_vscsi_drv *d, struct umdev_vscsi_cmd (*cmds)[RING_SIZE],
			    unsigned nq, unsigned qd, uint64_t nblocks, double secs,
			    uint64_t *seed, uint64_t *wakes)
{
	struct pollfd pfd[MAX_QUEUES];
	double end = bench_mono_s() + secs;
	unsigned posted[MAX_QUEUES] = { 0 }, batch = qd >= 4 ? qd / 4 : 1;
	int64_t done = 0;
	bool ready = false, stop = false;

	for (unsigned q = 0; q < nq; q++) {
		pfd[q] = (struct pollfd){ .fd = d->c->vqs[REQQ + q].call_fd, .events = POLLIN };
		for (unsigned i = 0; i < qd; i++) {
			aim(&cmds[q][i], nblocks, seed);
			if (umdev_vscsi_post(d, REQQ + q, &cmds[q][i].chain, i + 1 < qd))
				return -EIO;
			posted[q]++;
		}
		ready |= arm(&d->c->vqs[REQQ + q].drv, batch);
	}
	for (double give_up = end + 5;;) {
		unsigned left = 0;

		if (!ready) {
			int r = poll(pfd, nq, stop ? 50 : 1000);

			if (r < 0 && errno != EINTR)
				return -errno;
			(*wakes)++;
			for (unsigned q = 0; q < nq && r > 0; q++) {
				uint64_t cnt;

				if ((pfd[q].revents & POLLIN) &&
				    read(pfd[q].fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
					return -errno;
			}
		}
		ready = false;
		stop = stop || bench_mono_s() >= end;
		for (unsigned q = 0; q < nq; q++) {
			struct umdev_vscsi_chain *fin[RING_SIZE];
			struct umdev_vqd *v = &d->c->vqs[REQQ + q].drv;
			int n = umdev_vscsi_poll(d, REQQ + q, fin, RING_SIZE);

			if (n < 0)
				return n;
			for (int k = 0; k < n; k++) {
				struct umdev_vscsi_cmd *cmd = reaped_ok(fin[k]);

				if (!cmd)
					return -EIO;
				done++;
				posted[q]--;
				if (stop)
					continue;
				aim(cmd, nblocks, seed);
				if (umdev_vscsi_post(d, REQQ + q, &cmd->chain, true))
					return -EIO;
				posted[q]++;
			}
			if (!stop && n > 0 && umdev_vqd_kick_needed(v) && umdev_vuc_kick(d->c, REQQ + q))
				return -EIO;
			ready |= arm(v, stop || posted[q] < batch ? 1 : batch);
			left += posted[q];
		}
		if (stop && !left)
			return done;
		if (bench_mono_s() > give_up)
			return -ETIMEDOUT;
	}
}

struct result {
	double iops, srv_us, srv_util, cli_us, work_us, wakes;
};

/* One umdevd with --threads @threads serving one device of @nq request queues. */
/* CPU ns of one poll of an empty used ring (nothing in flight on @q). */
static double empty_poll_ns(struct umdev_vscsi_drv *d, unsigned q)
{
	struct umdev_vscsi_chain *fin[RING_SIZE];
	const unsigned n = 2000000;
	uint64_t c0 = bench_self_cpu_ns();

	for (unsigned i = 0; i < n; i++)
		if (umdev_vscsi_poll(d, q, fin, RING_SIZE) != 0)
			return 0;
	return (double)(bench_self_cpu_ns() - c0) / n;
}

static int bench_config(const struct opts *o, unsigned threads, unsigned nq,
			struct result *res)
{
	char dir[128], sock[192], log[192], dev[512], nthreads[8], label[64];
	uint8_t cdb[10] = { SCSI_READ_10, 0, 0, 0, 0, 0, 0, (uint8_t)((io_bytes / 512) >> 8),
			    (uint8_t)(io_bytes / 512) };
	static struct umdev_vscsi_drv d;
	static struct umdev_vscsi_cmd cmds[MAX_QUEUES][RING_SIZE];
	uint64_t seed = 0x9e3779b97f4a7c15ull, nblocks = o->size / io_bytes;
	uint64_t region = 64ull << 20;
	struct umdev_proc proc;
	struct umdev_vuc c;
	double poll_ns;
	int r;

	memset(cmds, 0, sizeof(cmds));
	if (umdev_proc_tmpdir(dir, sizeof(dir)))
		return -EIO;
	snprintf(sock, sizeof(sock), "%s/scsi.sock", dir);
	snprintf(log, sizeof(log), "%s/umdevd.log", dir);
	snprintf(nthreads, sizeof(nthreads), "%u", threads);
	snprintf(dev, sizeof(dev),
		 "virtio-scsi,id=bench,socket=%s,lun=0:0:null:%" PRIu64 ",num-queues=%u%s", sock,
		 o->size, nq, o->dev_extra ? o->dev_extra : "");
	{
		char *argv[] = { (char *)o->umdevd, "--rpc", "none", "--threads", nthreads,
				 "--device", dev, NULL };

		r = umdev_proc_spawn(&proc, argv, log);
	}
	if (r)
		return r;
	r = umdev_proc_wait_socket(&proc, sock, 10000);
	if (r)
		goto out_proc;
	/* The driver helper's bring-up, with interrupts off on every queue (we poll). */
	memset(&d, 0, sizeof(d));
	d.c = &c;
	d.nreq = nq;
	d.no_poison = true;
	r = umdev_vuc_connect(&c, sock, 3000);
	if (r)
		goto out_proc;
	for (unsigned q = 0; q < 2 + nq && !o->scaling; q++)
		c.vqs[q].no_interrupt = true;
	c.want_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
			  (1ull << VIRTIO_SCSI_F_HOTPLUG);
	/* Data areas are carved on first post: room for every command's. */
	if (o->scaling)
		region += (uint64_t)nq * RING_SIZE * (io_bytes + 4096);
	r = umdev_vuc_start_blk(&c, 2 + nq, RING_SIZE, 1, region, 0);
	if (r)
		goto out;
	for (unsigned q = 0; q < nq; q++) {
		for (unsigned i = 0; i < RING_SIZE; i++) {
			r = umdev_vscsi_cmd_init(&cmds[q][i], 0, 0, i, cdb, sizeof(cdb), NULL, 0,
						 io_bytes, 0, 0);
			if (r)
				goto out;
		}
	}
	/* The LUN reports a power-on unit attention first: take it off. */
	{
		struct umdev_vscsi_cmd_res cres;

		for (int i = 0; i < 4; i++)
			if (umdev_vscsi_exec(&d, REQQ, &cmds[0][0], &cres, 5000) == 0 &&
			    cres.resp.status == SCSI_STATUS_GOOD)
				break;
	}
	snprintf(label, sizeof(label), "umdevd t%u q%u", threads, nq);
	poll_ns = empty_poll_ns(&d, REQQ);
	for (unsigned i = 0; i < o->nqds; i++) {
		uint64_t s0, s1, c0, c1, work = 0, wakes = 0;
		double t0, t1;
		int64_t n;

		n = o->scaling ? run_load_irq(&d, cmds, nq, o->qds[i], nblocks, 0.3, &seed, &wakes)
			       : run_load(&d, cmds, nq, o->qds[i], nblocks, 0.3, &seed, &work);
		if (n < 0 || umdev_proc_cpu_ns(proc.pid, &s0)) {
			r = n < 0 ? (int)n : -EIO;
			goto out;
		}
		c0 = bench_self_cpu_ns();
		t0 = bench_mono_s();
		work = 0;
		wakes = 0;
		n = o->scaling ? run_load_irq(&d, cmds, nq, o->qds[i], nblocks, o->duration, &seed,
					      &wakes)
			       : run_load(&d, cmds, nq, o->qds[i], nblocks, o->duration, &seed,
					  &work);
		t1 = bench_mono_s();
		c1 = bench_self_cpu_ns();
		if (n <= 0 || umdev_proc_cpu_ns(proc.pid, &s1)) {
			r = n < 0 ? (int)n : -EIO;
			goto out;
		}
		res[i].iops = (double)n / (t1 - t0);
		res[i].srv_us = (double)(s1 - s0) / 1e3 / (double)n;
		res[i].srv_util = (double)(s1 - s0) / 1e9 / (t1 - t0);
		res[i].cli_us = (double)(c1 - c0) / 1e3 / (double)n;
		res[i].work_us = ((double)(c1 - c0) - (double)work * poll_ns) / 1e3 / (double)n;
		if (res[i].work_us < 0)
			res[i].work_us = 0;
		res[i].wakes = (double)wakes / (double)n;
		if (o->scaling) {
			printf("%-22s %4u %10.0f %7.2f %12.2f %9.2f %12.2f %9.2f %9.3f\n",
			       o->label ? o->label : label, o->qds[i], res[i].iops,
			       res[i].iops * io_bytes / 1e9, res[i].srv_us, res[i].srv_util,
			       res[i].cli_us, res[i].cli_us * res[i].iops / 1e6, res[i].wakes);
			fflush(stdout);
			continue;
		}
		printf("%-22s %4u %10.0f %9.1f %12.2f %9.2f %12.2f %12.3f\n",
		       o->label ? o->label : label, o->qds[i], res[i].iops,
		       1e6 * o->qds[i] * nq / res[i].iops, res[i].srv_us, res[i].srv_util,
		       res[i].cli_us, res[i].work_us);
		fflush(stdout);
	}
	r = 0;
out:
	if (r)
		fprintf(stderr, "umdev-bench-scsi: failed: %s; see %s\n", strerror(-r), log);
	for (unsigned q = 0; q < nq; q++)
		for (unsigned i = 0; i < RING_SIZE; i++)
			umdev_vscsi_cmd_fini(&cmds[q][i]);
	umdev_vuc_close(&c);
out_proc:
	umdev_proc_stop(&proc, 3000);
	if (!r)
		umdev_proc_rmtree(dir);
	return r;
}

static int bench(const struct opts *o)
{
	static const struct {
		unsigned threads, nq;
	} cfg[] = { { 1, 1 }, { 2, 1 }, { 2, 2 } };
	struct result res[3][MAX_QDS];
	int r = 0;

	memset(res, 0, sizeof(res));
	if (o->scaling) {
		printf("umdev-bench-scsi --scaling: %u KiB random reads (the null LUN zero-fills "
		       "them), %.1f s per point; qd is per queue; t = umdevd --threads, q = "
		       "request queues (one per loop when q = t)\n",
		       io_bytes >> 10, o->duration);
		printf("client: one thread, sleeps in poll() on the call eventfds, EVENT_IDX, "
		       "woken every qd/4 completions per queue; no peer (see below)\n");
		printf("qemu-storage-daemon has no vhost-user-scsi export (Debian's 7.2)\n");
		printf("%-22s %4s %10s %7s %12s %9s %12s %9s %9s\n", "server", "qd", "IOPS",
		       "GB/s", "srv_us/io", "srv_util", "cli_us/io", "cli_util", "wakes/io");
		for (unsigned k = 0; k < (o->single ? 1 : 3); k++)
			r |= bench_config(o, cfg[k].threads, cfg[k].nq, res[k]);
		goto ratio;
	}
	printf("umdev-bench-scsi: 4 KiB random reads, null LUN; qd is per queue; "
	       "t = umdevd --threads, q = request queues (one per loop when q = t)\n");
	printf("qemu-storage-daemon has no vhost-user-scsi export (Debian's 7.2: "
	       "vhost-user-blk, vduse-blk, nbd, fuse): no peer in this run\n");
	printf("cli_us/io: client CPU per I/O (busy-polling: all it was given); "
	       "cli_work_us: that minus its empty polls (calibrated cost each)\n");
	printf("%-22s %4s %10s %9s %12s %9s %12s %12s\n", "server", "qd", "IOPS", "lat_us",
	       "srv_us/io", "srv_util", "cli_us/io", "cli_work_us");
	for (unsigned k = 0; k < (o->single ? 1 : 3); k++)
		r |= bench_config(o, cfg[k].threads, cfg[k].nq, res[k]);
ratio:
	if (!o->single) {
		for (unsigned i = 0; i < o->nqds; i++)
			if (res[0][i].iops > 0 && res[2][i].iops > 0)
				printf("scaling qd %u: t2 q2 / t1 q1 = %.2f IOPS\n", o->qds[i],
				       res[2][i].iops / res[0][i].iops);
	}
	return r;
}

static void usage(void)
{
	fprintf(stderr, "usage: umdev-bench-scsi [--duration SEC] [--qd N[,N...]] "
			"[--umdevd PATH] [--size BYTES] [--dev-extra ,k=v...] [--label TEXT]\n"
			"                        [--single] [--scaling [--bs BYTES (131072)]]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "qd", required_argument, NULL, 'q' },
		{ "umdevd", required_argument, NULL, 'u' },
		{ "size", required_argument, NULL, 's' },
		{ "dev-extra", required_argument, NULL, 'x' },
		{ "label", required_argument, NULL, 'l' },
		{ "single", no_argument, NULL, '1' },
		{ "scaling", no_argument, NULL, 'C' },
		{ "bs", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .duration = 3, .qds = { 1, 32 }, .nqds = 2,
			  .umdevd = UMDEVD_DEFAULT_PATH, .size = 1ull << 30, .bs = 128u << 10 };
	int opt;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.duration = strtod(optarg, NULL);
			break;
		case 'q': {
			char *save = NULL, *copy = strdup(optarg);

			o.nqds = 0;
			for (char *t = strtok_r(copy, ",", &save); t && o.nqds < MAX_QDS;
			     t = strtok_r(NULL, ",", &save)) {
				long v = strtol(t, NULL, 10);

				if (v < 1 || v > RING_SIZE) {
					fprintf(stderr, "qd %s: 1..%d\n", t, RING_SIZE);
					free(copy);
					return 2;
				}
				o.qds[o.nqds++] = (unsigned)v;
			}
			free(copy);
			break;
		}
		case 'u':
			o.umdevd = optarg;
			break;
		case 's':
			o.size = strtoull(optarg, NULL, 0);
			break;
		case 'x':
			o.dev_extra = optarg;
			break;
		case 'l':
			o.label = optarg;
			break;
		case '1':
			o.single = true;
			break;
		case 'C':
			o.scaling = true;
			break;
		case 'B':
			o.bs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (o.scaling)
		io_bytes = o.bs;
	/* READ(10) counts 512-byte blocks in 16 bits. */
	if (!o.umdevd || !o.nqds || o.duration <= 0 || o.size < io_bytes || o.size % 512 ||
	    io_bytes < 512 || io_bytes % 512 || io_bytes / 512 > 0xffff) {
		usage();
		return 2;
	}
	return bench(&o) ? 1 : 0;
}
