/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev-bench-nvme: 4 KiB random-read IOPS of umdevd's NVMe controller over
 * vfio-user, with the client's and the server's CPU time per I/O, for each
 * umdevd --threads count asked (default 1 and 2), with one I/O queue pair
 * and with one queue pair per loop, at each queue depth per queue (default
 * 1 and 32). The last lines give the scaling ratio (one queue per loop on
 * the most threads against one queue on one thread).
 *
 * The namespace is null:SIZE, so the numbers measure the vfio-user/NVMe data
 * path (doorbells, PRP translation, completion posting), not storage.
 *
 * The client is made cheap so that the server sets the figure: one thread
 * busy-polls its completion queues (created without interrupts), takes
 * every completion waiting and refills the queue with one SQ tail write per
 * batch and one CQ head write per batch, and makes no system call per I/O:
 * doorbells are stores to the doorbell page when the server lets it be
 * mmapped (poll=on), else shadow doorbells (Doorbell Buffer Config), where
 * the real, trapped doorbell is written only when the server's EventIdx
 * asks (when it went to sleep). Client CPU is reported twice: all of it
 * (cli_us/io: it spins, so it is about one core over the IOPS) and the part
 * spent in loop passes that submitted or reaped something (cli_work_us/io,
 * the driver's own cost per I/O). Server CPU is umdevd's from /proc/PID/stat.
 * db/io counts real doorbell writes per I/O (each a vfio-user message when
 * the doorbells trap; stores to the mapped page with poll=on).
 *
 * There is no peer to compare with: qemu-storage-daemon has no vfio-user
 * export, and QEMU's own vfio-user server needs libvfio-user (not in Debian).
 *
 * Usage: umdev-bench-nvme [--duration SEC] [--qd N[,N...]] [--threads N[,N...]]
 *                         [--umdevd PATH] [--dev-extra ",poll=on"] [--label TEXT]
 *                         [--pin]
 *
 * --pin runs umdevd on every CPU but the last and the client on the last,
 * so the two never take turns on one core.
 *
 * --scaling [--bs BYTES] makes the server the bottleneck so that the
 * scaling ratio can show on a machine with few cores (as umdev-bench
 * --scaling does for virtio-blk): reads of --bs bytes (128 KiB by default,
 * MDTS allows 256 KiB) that the null namespace zero-fills, and CQs with
 * interrupts, the client sleeping in poll() on their MSI-X eventfds
 * (vfio-user SET_IRQS) whenever a pass reaped nothing instead of spinning.
 * umdevd sends one MSI-X message per CQ per pass. Rows then show IOPS,
 * GB/s, client and server CPU per I/O, doorbells and wake-ups per I/O.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/nvme_drv.h"
#include "client/proc_util.h"
#include "client/vfio_user_client.h"

#include "bench_util.h"

#ifndef UMDEVD_DEFAULT_PATH
#define UMDEVD_DEFAULT_PATH NULL
#endif

#define MAX_QDS 8
#define QSIZE 256
#define IO_BYTES 4096u
#define GUEST_IOVA 0x100000000ull
#define GUEST_SIZE (8u << 20)
#define NS_BYTES (1ull << 30)

#define MAX_Q 8

/* --scaling: bytes per read, interrupts and a sleeping client. */
static uint32_t io_bytes = IO_BYTES;
static bool scaling;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct host {
	struct umdev_nvmed_vfu v;
	unsigned nq;
	struct nvme_sqe *cmds[MAX_Q + 1]; /* per queue: QSIZE prepared reads */
};

/* Connect, enable, @nq queue pairs without interrupts; shadow doorbells when unmapped. */
static int host_up(struct host *h, const char *sock, unsigned nq)
{
	int r;

	if (scaling && nq + 1 > UMDEV_NVMED_VFU_MAX_VEC)
		return -EINVAL; /* one MSI-X eventfd per queue and the admin queue's */
	/* Every prepared read has its own buffer (and PRP list page when large). */
	r = umdev_nvmed_vfu_open(&h->v, sock, GUEST_IOVA,
				 scaling ? GUEST_SIZE + (uint64_t)nq * QSIZE * (io_bytes + 4096)
					 : GUEST_SIZE);
	if (r)
		return r;
	h->v.posted_doorbells = true; /* as QEMU posts BAR writes */
	r = umdev_nvmed_vfu_command(&h->v, 0x6, 0); /* memory space + bus master */
	if (!r && scaling)
		r = umdev_nvmed_vfu_msix(&h->v, nq + 1); /* queue q on vector q */
	if (!r)
		r = umdev_nvmed_enable(&h->v.d, 32);
	if (!r && !h->v.bus.doorbells)
		r = umdev_nvmed_dbbuf(&h->v.d);
	for (unsigned q = 1; !r && q <= nq; q++)
		r = umdev_nvmed_create_qpair(&h->v.d, (uint16_t)q, QSIZE, scaling);
	for (unsigned q = 1; !r && q <= nq; q++) {
		h->cmds[q] = calloc(QSIZE, sizeof(struct nvme_sqe));
		if (!h->cmds[q])
			return -ENOMEM;
		for (unsigned i = 0; i < QSIZE; i++) {
			uint64_t buf = umdev_nvmed_alloc(&h->v.d, io_bytes, 4096);

			if (!buf || umdev_nvmed_build_rw(&h->v.d, &h->cmds[q][i], NVME_CMD_READ, 1, 0,
							 io_bytes / 512, buf, io_bytes, false,
							 false))
				return -ENOMEM;
		}
	}
	h->nq = nq;
	return r < 0 ? r : r ? -EIO : 0;
}

static void host_down(struct host *h)
{
	umdev_nvmed_vfu_close(&h->v);
	for (unsigned q = 1; q <= MAX_Q; q++)
		free(h->cmds[q]);
	memset(h, 0, sizeof(*h));
}

struct load {
	int64_t done;
	uint64_t work_ns; /* client time in passes that did something */
	uint64_t wakes; /* --scaling: sleeps in poll() */
};

/*
 * --scaling: a pass reaped nothing: sleep until a CQ's interrupt. An MSI-X
 * message sent after the pass looked leaves its eventfd readable, so none
 * is lost; one sent before it makes a harmless early return.
 */
static int sleep_irq(struct host *h, unsigned nq, struct load *out)
{
	struct pollfd pfd[MAX_Q];
	int r;

	for (unsigned q = 1; q <= nq; q++)
		pfd[q - 1] = (struct pollfd){ .fd = h->v.efd[q], .events = POLLIN };
	r = poll(pfd, nq, 50);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	out->wakes++;
	for (unsigned q = 0; q < nq && r > 0; q++) {
		uint64_t cnt;

		if ((pfd[q].revents & POLLIN) && read(pfd[q].fd, &cnt, sizeof(cnt)) < 0 &&
		    errno != EAGAIN)
			return -errno;
	}
	return 0;
}

/* Keep @qd reads in flight on each of queues 1..@nq for @secs. */
static int run_load(struct host *h, unsigned nq, unsigned qd, double secs, uint64_t *seed,
		    struct load *out)
{
	uint64_t nblocks = NS_BYTES / io_bytes;
	double end = bench_mono_s() + secs;
	unsigned inflight[MAX_Q + 1] = { 0 }, total = 0;
	struct nvme_cqe e[QSIZE];
	bool stop = false;
	unsigned pass = 0;

	out->done = 0;
	out->work_ns = 0;
	out->wakes = 0;
	while (!stop || total) {
		bool worked = false, reaped = false;
		uint64_t t0 = mono_ns();

		for (unsigned q = 1; q <= nq; q++) {
			unsigned k = 0;
			int got;

			while (!stop && inflight[q] + k < qd) {
				struct nvme_sqe *c = &h->cmds[q][k];
				uint64_t slba = (bench_xorshift(seed) % nblocks) * (io_bytes / 512);

				c->cdw10 = (uint32_t)slba;
				c->cdw11 = (uint32_t)(slba >> 32);
				k++;
			}
			if (k) {
				if (umdev_nvmed_submit_batch(&h->v.d, (uint16_t)q, h->cmds[q], k) < 0)
					return -EIO;
				inflight[q] += k;
				total += k;
				worked = true;
			}
			got = inflight[q] ? umdev_nvmed_reap_many(&h->v.d, (uint16_t)q, e, QSIZE) : 0;
			if (got < 0)
				return got;
			for (int i = 0; i < got; i++)
				if ((e[i].status >> 1) & 0x7ff)
					return -EIO;
			inflight[q] -= (unsigned)got;
			total -= (unsigned)got;
			out->done += got;
			worked |= got > 0;
			reaped |= got > 0;
		}
		if (worked)
			out->work_ns += mono_ns() - t0;
		if (!stop && (scaling || !(++pass & 255)) && bench_mono_s() >= end)
			stop = true;
		if (scaling && !reaped && total) {
			int r = sleep_irq(h, nq, out);

			if (r)
				return r;
		}
	}
	if (h->v.d.db_errors)
		return -EIO;
	return 0;
}

struct point {
	unsigned threads, nq, qd;
	double iops;
};

static struct point points[64];
static unsigned npoints;
static bool pin;

/* --pin: @client: this thread on the last CPU; else every CPU but the last. */
static void pin_self(bool client)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (!pin || ncpu < 2)
		return;
	if ((client ? bench_set_cpus(ncpu - 1, 1) : bench_set_cpus(0, ncpu - 1)) < 0)
		perror("sched_setaffinity");
}

/* One umdevd with @threads loops; every (queues, qd) point against it. */
static int bench_threads(const char *umdevd, const char *extra, unsigned threads,
			 const unsigned *qds, unsigned nqds, double duration, uint64_t *seed)
{
	char dir[128], sock[192], log[192], dev[512], tstr[16];
	unsigned layouts[2] = { 1, threads }, nlayouts = threads > 1 ? 2 : 1;
	struct umdev_proc proc;
	int r;

	if (umdev_proc_tmpdir(dir, sizeof(dir)) < 0)
		return -EIO;
	snprintf(sock, sizeof(sock), "%s/nvme.sock", dir);
	snprintf(log, sizeof(log), "%s/umdevd.log", dir);
	snprintf(dev, sizeof(dev), "nvme,id=nvme0,socket=%s,ns=null:1G%s", sock, extra);
	snprintf(tstr, sizeof(tstr), "%u", threads);
	{
		char *av[] = { (char *)umdevd, "--threads", tstr, "--device", dev, NULL };

		pin_self(false); /* umdevd inherits it */
		r = umdev_proc_spawn(&proc, av, log);
		pin_self(true);
	}
	if (!r)
		r = umdev_proc_wait_socket(&proc, sock, 10000);
	if (r) {
		fprintf(stderr, "umdevd did not start (%s)\n", strerror(-r));
		bench_dump_log(log);
		return r;
	}
	for (unsigned l = 0; l < nlayouts && !r; l++) {
		struct host h;

		memset(&h, 0, sizeof(h));
		r = host_up(&h, sock, layouts[l]);
		if (r) {
			fprintf(stderr, "NVMe bring-up failed: %d\n", r);
			bench_dump_log(log);
			host_down(&h);
			break;
		}
		for (unsigned i = 0; i < nqds && !r; i++) {
			uint64_t s0, s1, c0, c1;
			unsigned db0;
			struct load ld;
			double t0, t1;

			r = run_load(&h, layouts[l], qds[i], 0.3, seed, &ld);
			if (!r)
				r = umdev_proc_cpu_ns(proc.pid, &s0);
			c0 = bench_self_cpu_ns();
			db0 = h.v.d.db_writes;
			t0 = bench_mono_s();
			if (!r)
				r = run_load(&h, layouts[l], qds[i], duration, seed, &ld);
			t1 = bench_mono_s();
			c1 = bench_self_cpu_ns();
			if (!r)
				r = umdev_proc_cpu_ns(proc.pid, &s1);
			if (r || ld.done <= 0) {
				fprintf(stderr, "threads %u queues %u qd %u: load failed (%d)\n",
					threads, layouts[l], qds[i], r);
				r = r ? r : -EIO;
				break;
			}
			if (scaling)
				printf("%-8u %-7u %-5u %10.0f %7.2f %10.2f %10.2f %8.0f%% %8.3f %9.3f\n",
				       threads, layouts[l], qds[i], (double)ld.done / (t1 - t0),
				       (double)ld.done * io_bytes / (t1 - t0) / 1e9,
				       (double)(c1 - c0) / 1e3 / (double)ld.done,
				       (double)(s1 - s0) / 1e3 / (double)ld.done,
				       (double)(s1 - s0) / 1e7 / (t1 - t0),
				       (double)(h.v.d.db_writes - db0) / (double)ld.done,
				       (double)ld.wakes / (double)ld.done);
			else
				printf("%-8u %-7u %-5u %10.0f %8.1f %10.2f %13.2f %10.2f %8.3f\n",
				       threads, layouts[l], qds[i], (double)ld.done / (t1 - t0),
				       (t1 - t0) * 1e6 * qds[i] * layouts[l] / (double)ld.done,
				       (double)(c1 - c0) / 1e3 / (double)ld.done,
				       (double)ld.work_ns / 1e3 / (double)ld.done,
				       (double)(s1 - s0) / 1e3 / (double)ld.done,
				       (double)(h.v.d.db_writes - db0) / (double)ld.done);
			fflush(stdout);
			if (npoints < sizeof(points) / sizeof(points[0]))
				points[npoints++] = (struct point){ threads, layouts[l], qds[i],
								    (double)ld.done / (t1 - t0) };
		}
		host_down(&h);
	}
	umdev_proc_stop(&proc, 5000);
	umdev_proc_rmtree(dir);
	return r;
}

static int parse_list(const char *arg, unsigned *out, unsigned max, unsigned lim)
{
	const char *s = arg;
	char *end;
	unsigned n = 0;

	while (*s && n < max) {
		unsigned long v = strtoul(s, &end, 10);

		if (!v || v > lim || (*end && *end != ','))
			return -1;
		out[n++] = (unsigned)v;
		s = *end ? end + 1 : end;
	}
	return n ? (int)n : -1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "qd", required_argument, NULL, 'q' },
		{ "threads", required_argument, NULL, 't' },
		{ "umdevd", required_argument, NULL, 'u' },
		{ "dev-extra", required_argument, NULL, 'x' },
		{ "label", required_argument, NULL, 'l' },
		{ "pin", no_argument, NULL, 'p' },
		{ "scaling", no_argument, NULL, 'C' },
		{ "bs", required_argument, NULL, 'B' },
		{ 0 },
	};
	const char *umdevd = UMDEVD_DEFAULT_PATH, *extra = "", *label = "";
	unsigned qds[MAX_QDS] = { 1, 32 }, nqds = 2, thr[MAX_QDS] = { 1, 2 }, nthr = 2;
	double duration = 3;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int opt, r = 0, n;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'd': duration = atof(optarg); break;
		case 'u': umdevd = optarg; break;
		case 'x': extra = optarg; break;
		case 'l': label = optarg; break;
		case 'p': pin = true; break;
		case 'C': scaling = true; break;
		case 'B':
			io_bytes = (uint32_t)strtoul(optarg, NULL, 0);
			/* Whole pages, within the controller's MDTS (256 KiB). */
			if (io_bytes < 4096 || io_bytes % 4096 || io_bytes > (256u << 10)) {
				fprintf(stderr, "bad --bs (4096..262144, pages)\n");
				return 2;
			}
			break;
		case 'q':
			n = parse_list(optarg, qds, MAX_QDS, QSIZE / 2);
			if (n < 0) {
				fprintf(stderr, "bad --qd\n");
				return 2;
			}
			nqds = (unsigned)n;
			break;
		case 't':
			n = parse_list(optarg, thr, MAX_QDS, MAX_Q);
			if (n < 0) {
				fprintf(stderr, "bad --threads\n");
				return 2;
			}
			nthr = (unsigned)n;
			break;
		default:
			fprintf(stderr, "usage: umdev-bench-nvme [--duration SEC] [--qd N[,N..]] "
					"[--threads N[,N..]] [--umdevd PATH] [--dev-extra ,k=v] "
					"[--label T] [--pin] [--scaling [--bs BYTES (131072)]]\n");
			return 2;
		}
	}
	if (!umdevd) {
		fprintf(stderr, "umdev-bench-nvme: --umdevd PATH is required\n");
		return 2;
	}
	if (scaling && io_bytes == IO_BYTES)
		io_bytes = 128u << 10;
	if (scaling) {
		printf("# umdev-bench-nvme %s --scaling: %u KiB random reads (the null namespace "
		       "zero-fills them), %.1f s per point, qd per queue%s%s\n",
		       label, io_bytes >> 10, duration, extra, pin ? ", pinned" : "");
		printf("# client: one thread, sleeps in poll() on the CQs' MSI-X eventfds when a "
		       "pass reaped nothing; srv_util: umdevd CPU in %% of one core\n");
		printf("%-8s %-7s %-5s %10s %7s %10s %10s %9s %8s %9s\n", "threads", "queues", "qd",
		       "IOPS", "GB/s", "cli_us/io", "srv_us/io", "srv_util", "db/io", "wakes/io");
	} else {
		printf("# umdev-bench-nvme %s: 4 KiB random reads, null namespace, %.1f s per "
		       "point, qd per queue%s%s\n",
		       label, duration, extra, pin ? ", pinned" : "");
		printf("%-8s %-7s %-5s %10s %8s %10s %13s %10s %8s\n", "threads", "queues", "qd",
		       "IOPS", "lat_us", "cli_us/io", "cli_work_us/io", "srv_us/io", "db/io");
	}
	for (unsigned t = 0; t < nthr && !r; t++)
		r = bench_threads(umdevd, extra, thr[t], qds, nqds, duration, &seed);
	/* Scaling: one queue per loop on N threads against one queue on one thread. */
	for (unsigned i = 0; i < npoints; i++) {
		const struct point *p = &points[i];

		if (p->threads != 1 || p->nq != 1)
			continue;
		for (unsigned j = 0; j < npoints; j++)
			if (points[j].threads > 1 && points[j].nq == points[j].threads &&
			    points[j].qd == p->qd)
				printf("# scaling qd %u: %u threads x %u queues / 1 thread x 1 queue = "
				       "%.2f\n",
				       p->qd, points[j].threads, points[j].nq,
				       points[j].iops / p->iops);
	}
	return r ? 1 : 0;
}
