/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev-bench --scaling: how the server scales from one data-plane thread
 * to two on a machine with few cores, with the server as the bottleneck.
 *
 * The busy-polling benches cannot show it on 2 cores: a spinning client
 * plus two server loops are three busy threads. Here each request is a
 * large read (--bs, 128 KiB by default) from a null backend, which the
 * server answers with a memset of the whole buffer (umdevd null:SIZE, qsd
 * null-co with read-zeroes=on: the same work per I/O), so the server
 * spends far more per I/O than the client does. The client is one thread
 * that sleeps in poll() on every queue's call eventfd, keeps QD reads in
 * flight per queue, and with EVENT_IDX asks to be woken only after a batch
 * of completions (used_event set --batch entries ahead, qd/4 by default),
 * then reaps them all, reposts and kicks only when the server asks
 * (avail_event). Its CPU per I/O is printed next to the server's.
 *
 * Matrix: umdevd --threads 1 with one queue, --threads 2 with one, and
 * --threads 2 with two (queue i on loop i mod 2); qemu-storage-daemon with
 * one and two queues (Debian's 7.2 runs all of an export's queues in one
 * AioContext: one iothread). qsd runs in an iothread whose poll-max-ns
 * follows umdevd's poll-us (from --umdevd-dev-extra, QEMU's default
 * otherwise), so both servers poll, or both sleep on kicks, alike.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/proc_util.h"
#include "client/vhost_user_client.h"
#include "util/shm.h"

#include "bench_scaling.h"
#include "bench_util.h"

#define SC_RING BENCH_SCALING_RING
#define SC_MAX_QUEUES 2
#define SC_MAX_SEGS 32
#define SC_FEATURES                                                                         \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_SEG_MAX) |                     \
	 (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |                 \
	 (1ull << VIRTIO_BLK_F_MQ) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |                 \
	 (1ull << VIRTIO_RING_F_EVENT_IDX))

struct sc_result {
	bool ok;
	double iops;
	double srv_us_per_io, srv_util;
	double cli_us_per_io, cli_util;
	double wakes_per_io; /* client wake-ups (poll returns) per I/O */
};

/* One configuration of the matrix. */
struct sc_cfg {
	const char *name;
	bool qsd;
	unsigned threads; /* umdevd --threads */
	unsigned nq;
	struct sc_result res[BENCH_SCALING_MAX_QDS]; /* this round's, then the median */
	struct sc_result rounds[BENCH_SCALING_MAX_ROUNDS][BENCH_SCALING_MAX_QDS];
	double min_iops[BENCH_SCALING_MAX_QDS], max_iops[BENCH_SCALING_MAX_QDS];
	char limits[96]; /* seg_max/size_max the server announced */
};

/* Per-queue client state. */
struct sc_queue {
	uint64_t bufs; /* qd buffers of bs bytes */
	unsigned free_buf[SC_RING];
	unsigned nfree;
	unsigned posted;
};

struct sc_run {
	const struct bench_scaling_opts *o;
	struct umdev_vuc *c;
	unsigned nq, qd, batch;
	uint32_t seg_len; /* bytes per data descriptor */
	unsigned nseg;
	uint64_t nblocks; /* of bs bytes */
	uint64_t seed;
	struct sc_queue q[SC_MAX_QUEUES];
};

/* Post every free buffer of queue @qi as one batch; one kick if asked. */
static int sc_post(struct sc_run *s, unsigned qi)
{
	struct sc_queue *q = &s->q[qi];
	struct umdev_vqd_buf d[SC_MAX_SEGS];

	if (!q->nfree)
		return 0;
	while (q->nfree) {
		unsigned b = q->free_buf[--q->nfree];
		uint64_t addr = q->bufs + (uint64_t)b * s->o->bs;
		uint64_t sector = (bench_xorshift(&s->seed) % s->nblocks) * (s->o->bs >> 9);
		int r;

		for (unsigned k = 0; k < s->nseg; k++) {
			uint32_t off = k * s->seg_len;

			d[k] = (struct umdev_vqd_buf){ .addr = addr + off, .write = true,
						       .len = s->o->bs - off < s->seg_len
								      ? s->o->bs - off
								      : s->seg_len };
		}
		r = umdev_vblk_submit(s->c, qi, VIRTIO_BLK_T_IN, sector, d, s->nseg, b, true);
		if (r)
			return r;
		q->posted++;
	}
	return umdev_vblk_kick(s->c, qi);
}

/*
 * Ask for the next interrupt @want completions ahead (EVENT_IDX used_event).
 * Return: true if that many are already there (the server may have passed
 * the event before it was written, and then it will not call).
 */
static bool sc_arm(struct sc_run *s, unsigned qi, unsigned want)
{
	struct umdev_vqd *d = &s->c->vqs[qi].drv;
	uint16_t used;

	if (want > s->q[qi].posted)
		want = s->q[qi].posted ? s->q[qi].posted : 1;
	umdev_vqd_set_used_event(d, (uint16_t)(d->last_used_idx + want - 1)); /* full fence */
	used = umdev_shm_ld16_acq(&d->used->idx);
	return (uint16_t)(used - d->last_used_idx) >= want;
}

/* Reap what queue @qi has, repost if @repost, re-arm. Return: completions or -errno. */
static int sc_service(struct sc_run *s, unsigned qi, bool repost, unsigned want, bool *ready)
{
	struct umdev_vblk_cpl cpl[SC_RING];
	struct sc_queue *q = &s->q[qi];
	int n = umdev_vblk_poll(s->c, qi, cpl, SC_RING);

	if (n < 0)
		return n;
	for (int k = 0; k < n; k++) {
		if (cpl[k].status != VIRTIO_BLK_S_OK || cpl[k].cookie >= s->qd)
			return -EIO;
		q->free_buf[q->nfree++] = (unsigned)cpl[k].cookie;
	}
	q->posted -= (unsigned)n;
	if (repost) {
		int r = sc_post(s, qi);

		if (r)
			return r;
	}
	*ready |= sc_arm(s, qi, want);
	return n;
}

/* Keep qd reads in flight per queue for @secs, sleeping between batches. */
static int64_t sc_load(struct sc_run *s, double secs, uint64_t *wakes)
{
	struct pollfd pfd[SC_MAX_QUEUES];
	double end = bench_mono_s() + secs;
	int64_t done = 0;
	bool ready = false;

	for (unsigned i = 0; i < s->nq; i++) {
		struct sc_queue *q = &s->q[i];

		q->nfree = 0;
		for (unsigned b = 0; b < s->qd; b++)
			q->free_buf[q->nfree++] = b;
		pfd[i] = (struct pollfd){ .fd = s->c->vqs[i].call_fd, .events = POLLIN };
		if (sc_post(s, i))
			return -EIO;
		ready |= sc_arm(s, i, s->batch);
	}
	while (bench_mono_s() < end) {
		if (!ready) {
			int r = poll(pfd, s->nq, 1000);

			if (r < 0 && errno != EINTR)
				return -errno;
			(*wakes)++;
			for (unsigned i = 0; i < s->nq && r > 0; i++) {
				uint64_t cnt;

				if ((pfd[i].revents & POLLIN) &&
				    read(pfd[i].fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
					return -errno;
			}
		}
		ready = false;
		for (unsigned i = 0; i < s->nq; i++) {
			int n = sc_service(s, i, true, s->batch, &ready);

			if (n < 0)
				return n;
			done += n;
		}
	}
	/* Drain (no reposting) so the next point starts from idle queues. */
	for (double give_up = bench_mono_s() + 5; bench_mono_s() < give_up;) {
		unsigned left = 0;

		for (unsigned i = 0; i < s->nq; i++) {
			int n = sc_service(s, i, false, 1, &ready);

			if (n < 0)
				return n;
			left += s->q[i].posted;
		}
		if (!left)
			return done;
		if (!ready)
			poll(pfd, s->nq, 50);
		ready = false;
	}
	return -ETIMEDOUT;
}

/* --pin: this (client) thread on the last CPU; the servers keep every CPU. */
static void sc_pin_client(bool pin)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (pin && ncpu >= 2 && bench_set_cpus(ncpu - 1, 1) < 0)
		perror("sched_setaffinity");
}

static void sc_unpin(bool pin)
{
	if (pin)
		(void)bench_set_cpus(0, sysconf(_SC_NPROCESSORS_ONLN));
}

/* Negotiate, check the request fits what the server announces, lay out buffers. */
static int sc_setup(struct sc_run *s, struct sc_cfg *cfg, unsigned max_qd)
{
	const struct bench_scaling_opts *o = s->o;
	struct virtio_blk_config bc;
	uint64_t region = (uint64_t)s->nq * max_qd * o->bs + (8ull << 20);
	int r;

	region = (region + (2ull << 20) - 1) & ~((2ull << 20) - 1);
	s->c->want_features = SC_FEATURES;
	r = umdev_vuc_start_blk(s->c, s->nq, SC_RING, 1, region, 0);
	if (r)
		return r;
	if (!(s->c->acked_features & (1ull << VIRTIO_RING_F_EVENT_IDX)))
		fprintf(stderr, "%s: no EVENT_IDX: one interrupt per completion\n", cfg->name);
	r = umdev_vuc_get_config(s->c, 0, &bc, sizeof(bc));
	if (r)
		return r;
	s->nblocks = bc.capacity / (o->bs >> 9);
	if (!s->nblocks)
		return -EINVAL;
	s->seg_len = o->bs;
	if ((s->c->acked_features & (1ull << VIRTIO_BLK_F_SIZE_MAX)) && bc.size_max &&
	    bc.size_max < o->bs)
		s->seg_len = bc.size_max & ~4095u ? bc.size_max & ~4095u : bc.size_max;
	s->nseg = (o->bs + s->seg_len - 1) / s->seg_len;
	snprintf(cfg->limits, sizeof(cfg->limits), "seg_max %u, size_max %s%u: %u segment(s)",
		 bc.seg_max,
		 s->c->acked_features & (1ull << VIRTIO_BLK_F_SIZE_MAX) ? "" : "(not offered) ",
		 bc.size_max, s->nseg);
	if (s->nseg > SC_MAX_SEGS ||
	    ((s->c->acked_features & (1ull << VIRTIO_BLK_F_SEG_MAX)) && s->nseg > bc.seg_max) ||
	    max_qd * (s->nseg + 2) > SC_RING) {
		fprintf(stderr, "%s: --bs %u needs %u segments of %u bytes (seg_max %u, %u-entry "
				"ring): use a smaller --bs or --qd\n",
			cfg->name, o->bs, s->nseg, s->seg_len, bc.seg_max, SC_RING);
		return -EINVAL;
	}
	for (unsigned i = 0; i < s->nq; i++) {
		s->q[i].bufs = umdev_vuc_alloc(s->c, 0, (uint64_t)max_qd * o->bs, 4096);
		if (!s->q[i].bufs)
			return -ENOMEM;
	}
	return 0;
}

static int sc_server(const struct bench_scaling_opts *o, struct sc_cfg *cfg, char *const argv[],
		     const char *sock, const char *log)
{
	struct sc_run s = { .o = o, .nq = cfg->nq, .seed = 0x9e3779b97f4a7c15ull };
	struct umdev_proc proc;
	struct umdev_vuc c;
	unsigned max_qd = 0;
	int r;

	for (unsigned i = 0; i < o->nqds; i++)
		max_qd = o->qds[i] > max_qd ? o->qds[i] : max_qd;
	r = umdev_proc_spawn(&proc, argv, log);
	if (r)
		return r;
	sc_pin_client(o->pin); /* after the spawn: the server must not inherit it */
	r = umdev_proc_wait_socket(&proc, sock, 10000);
	if (r) {
		fprintf(stderr, "%s: did not create %s (%s); see %s\n", cfg->name, sock,
			strerror(-r), log);
		goto out_proc;
	}
	r = umdev_vuc_connect(&c, sock, 3000);
	if (r)
		goto out_proc;
	s.c = &c;
	r = sc_setup(&s, cfg, max_qd);
	for (unsigned i = 0; i < o->nqds && !r; i++) {
		struct sc_result *res = &cfg->res[i];
		uint64_t s0, s1, c0, c1, wakes = 0;
		double t0, t1;
		int64_t n;

		s.qd = o->qds[i];
		s.batch = o->batch ? o->batch : (s.qd >= 4 ? s.qd / 4 : 1);
		if (s.batch > s.qd)
			s.batch = s.qd;
		/* Warm-up: page faults in guest memory, thread wake-ups, caches. */
		n = sc_load(&s, 0.3, &wakes);
		if (n < 0 || umdev_proc_cpu_ns(proc.pid, &s0)) {
			r = n < 0 ? (int)n : -EIO;
			break;
		}
		wakes = 0;
		c0 = bench_self_cpu_ns();
		t0 = bench_mono_s();
		n = sc_load(&s, o->duration, &wakes);
		t1 = bench_mono_s();
		c1 = bench_self_cpu_ns();
		if (n <= 0 || umdev_proc_cpu_ns(proc.pid, &s1)) {
			r = n < 0 ? (int)n : -EIO;
			break;
		}
		res->ok = true;
		res->iops = (double)n / (t1 - t0);
		res->srv_us_per_io = (double)(s1 - s0) / 1e3 / (double)n;
		res->srv_util = (double)(s1 - s0) / 1e9 / (t1 - t0);
		res->cli_us_per_io = (double)(c1 - c0) / 1e3 / (double)n;
		res->cli_util = (double)(c1 - c0) / 1e9 / (t1 - t0);
		res->wakes_per_io = (double)wakes / (double)n;
	}
	if (r)
		fprintf(stderr, "%s: benchmark failed: %s; see %s\n", cfg->name, strerror(-r), log);
	umdev_vuc_close(&c);
out_proc:
	sc_unpin(o->pin);
	umdev_proc_stop(&proc, 3000);
	return r;
}

/* qsd's iothread poll-max-ns mirroring umdevd's poll-us in --umdevd-dev-extra. */
static void sc_qsd_poll(const char *dev_extra, char *out, size_t len)
{
	const char *p = strstr(dev_extra, "poll-us=");

	if (p)
		snprintf(out, len, ",poll-max-ns=%llu",
			 strtoull(p + strlen("poll-us="), NULL, 10) * 1000ull);
	else
		*out = '\0';
}

static int sc_run_cfg(const struct bench_scaling_opts *o, struct sc_cfg *cfg)
{
	char sock[192], log[192], dev[512], blockdev[256], export[512], iothread[96];
	char nthreads[16], qpoll[48];
	int r;

	snprintf(log, sizeof(log), "%s/server.log", o->dir);
	if (!cfg->qsd) {
		char *args[6 + BENCH_SCALING_MAX_ARGS];
		unsigned n = 0;

		snprintf(sock, sizeof(sock), "%s/umdevd.sock", o->dir);
		snprintf(nthreads, sizeof(nthreads), "%u", cfg->threads);
		snprintf(dev, sizeof(dev),
			 "virtio-blk,id=blk0,socket=%s,backend=null:%" PRIu64 ",num-queues=%u%s",
			 sock, o->size, cfg->nq, o->dev_extra);
		args[n++] = (char *)o->umdevd;
		args[n++] = "--rpc";
		args[n++] = "none";
		args[n++] = "--threads";
		args[n++] = nthreads;
		for (unsigned i = 0; i < o->nextra; i++)
			args[n++] = (char *)o->extra_args[i];
		args[n++] = "--device";
		args[n++] = dev;
		args[n] = NULL;
		r = sc_server(o, cfg, args, sock, log);
	} else {
		char *args[] = { (char *)o->qsd, "--object", iothread, "--blockdev", blockdev,
				 "--export", export, NULL };

		sc_qsd_poll(o->dev_extra, qpoll, sizeof(qpoll));
		snprintf(iothread, sizeof(iothread), "iothread,id=io0%s", qpoll);
		snprintf(sock, sizeof(sock), "%s/qsd.sock", o->dir);
		snprintf(blockdev, sizeof(blockdev),
			 "driver=null-co,node-name=n0,size=%" PRIu64 ",read-zeroes=on", o->size);
		snprintf(export, sizeof(export),
			 "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=%s,"
			 "writable=on,num-queues=%u,iothread=io0",
			 sock, cfg->nq);
		r = sc_server(o, cfg, args, sock, log);
	}
	unlink(sock);
	if (r)
		bench_dump_log(log);
	return r;
}

static int sc_cmp_iops(const void *a, const void *b)
{
	const struct sc_result *x = a, *y = b;

	return (x->iops > y->iops) - (x->iops < y->iops);
}

/* cfg->res[i]: the median round by IOPS (failed rounds count as 0). */
static void sc_median(struct sc_cfg *cfg, unsigned rounds, unsigned i)
{
	struct sc_result all[BENCH_SCALING_MAX_ROUNDS];

	for (unsigned rd = 0; rd < rounds; rd++)
		all[rd] = cfg->rounds[rd][i].ok ? cfg->rounds[rd][i] : (struct sc_result){ 0 };
	qsort(all, rounds, sizeof(all[0]), sc_cmp_iops);
	cfg->res[i] = all[rounds / 2];
	cfg->min_iops[i] = all[0].iops;
	cfg->max_iops[i] = all[rounds - 1].iops;
}

static void sc_ratio(const char *who, const struct sc_cfg *one, const struct sc_cfg *two,
		     unsigned i, unsigned qd)
{
	if (!one->res[i].ok || !two->res[i].ok)
		return;
	printf("  %-6s qd %-3u %s / %s: IOPS x%.2f   server CPU/IO x%.2f\n", who, qd, two->name,
	       one->name, two->res[i].iops / one->res[i].iops,
	       two->res[i].srv_us_per_io / one->res[i].srv_us_per_io);
}

int bench_scaling(const struct bench_scaling_opts *o)
{
	struct sc_cfg cfgs[] = {
		{ .name = "umdevd t1 q1", .threads = 1, .nq = 1 },
		{ .name = "umdevd t2 q1", .threads = 2, .nq = 1 },
		{ .name = "umdevd t2 q2", .threads = 2, .nq = 2 },
		{ .name = "qsd q1", .qsd = true, .nq = 1 },
		{ .name = "qsd q2", .qsd = true, .nq = 2 },
	};
	const unsigned ncfg = sizeof(cfgs) / sizeof(cfgs[0]);
	bool ran[sizeof(cfgs) / sizeof(cfgs[0])] = { false };
	char qpoll[48];
	int failed = 0;

	/* Rounds go over the whole matrix in turn, so that other load on the
	 * machine falls on every configuration alike; each point is the round
	 * with the median IOPS. */
	for (unsigned rd = 0; rd < o->rounds; rd++)
		for (unsigned k = 0; k < ncfg; k++) {
			if (cfgs[k].qsd ? !o->run_qsd : !o->run_umdevd)
				continue;
			ran[k] = true;
			memset(cfgs[k].res, 0, sizeof(cfgs[k].res));
			failed |= sc_run_cfg(o, &cfgs[k]) != 0;
			memcpy(cfgs[k].rounds[rd], cfgs[k].res, sizeof(cfgs[k].res));
		}
	for (unsigned k = 0; k < ncfg; k++)
		for (unsigned i = 0; i < o->nqds && ran[k]; i++)
			sc_median(&cfgs[k], o->rounds, i);
	sc_qsd_poll(o->dev_extra, qpoll, sizeof(qpoll));
	printf("umdev-bench%s%s --scaling: %u KiB random reads, %.1f s per point, null backend "
	       "of %" PRIu64 " bytes (the server zero-fills every read)\n",
	       *o->label ? " " : "", o->label, o->bs >> 10, o->duration, o->size);
	printf("client: one thread, sleeps in poll() on the call eventfds, EVENT_IDX, woken every "
	       "%s completions per queue%s; %ld CPUs, load average %.2f before the run%s\n",
	       o->batch ? "--batch" : "qd/4", o->pin ? ", pinned to the last CPU" : "",
	       sysconf(_SC_NPROCESSORS_ONLN), o->load_before,
	       o->load_before > 0.5 ? " (busy machine: numbers are noisy)" : "");
	printf("umdevd device'%s'", o->dev_extra);
	for (unsigned i = 0; i < o->nextra; i++)
		printf(" %s", o->extra_args[i]);
	printf("; qsd: one iothread%s, all queues in its AioContext\n",
	       *qpoll ? qpoll : " (QEMU's default polling)");
	for (unsigned k = 0; k < ncfg; k++)
		if (ran[k] && cfgs[k].limits[0])
			printf("  %-14s %s\n", cfgs[k].name, cfgs[k].limits);
	printf("t = umdevd --threads, q = queues (queue i on loop i mod t); qd per queue\n");
	if (o->rounds > 1)
		printf("%u rounds over the matrix; each line is the median round by IOPS, "
		       "with the rounds' IOPS range\n", o->rounds);
	printf("%-14s %4s %10s %7s %13s %8s %13s %8s %9s %s\n", "server", "qd", "IOPS", "GB/s",
	       "srv cpu us/IO", "srv cpu", "cli cpu us/IO", "cli cpu", "wakes/IO",
	       o->rounds > 1 ? "  IOPS range" : "");
	for (unsigned i = 0; i < o->nqds; i++)
		for (unsigned k = 0; k < ncfg; k++) {
			const struct sc_result *r = &cfgs[k].res[i];

			if (!ran[k])
				continue;
			if (!r->ok) {
				printf("%-14s %4u %10s\n", cfgs[k].name, o->qds[i], "failed");
				continue;
			}
			printf("%-14s %4u %10.0f %7.2f %13.2f %7.0f%% %13.2f %7.0f%% %9.3f",
			       cfgs[k].name, o->qds[i], r->iops, r->iops * o->bs / 1e9,
			       r->srv_us_per_io, 100 * r->srv_util, r->cli_us_per_io,
			       100 * r->cli_util, r->wakes_per_io);
			if (o->rounds > 1)
				printf("  %.0f-%.0f", cfgs[k].min_iops[i], cfgs[k].max_iops[i]);
			printf("\n");
		}
	printf("scaling (IOPS of two queues on two threads against one queue on one):\n");
	for (unsigned i = 0; i < o->nqds; i++) {
		if (o->run_umdevd) {
			sc_ratio("umdevd", &cfgs[0], &cfgs[2], i, o->qds[i]);
			sc_ratio("umdevd", &cfgs[0], &cfgs[1], i, o->qds[i]);
		}
		if (o->run_qsd)
			sc_ratio("qsd", &cfgs[3], &cfgs[4], i, o->qds[i]);
	}
	return failed ? 1 : 0;
}
