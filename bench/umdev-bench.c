/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev-bench: 4 KiB random-read IOPS of a vhost-user-blk server, umdevd
 * against QEMU's qemu-storage-daemon (qsd), in one run on one machine.
 *
 * Both servers get a null backend (umdevd backend=null:SIZE, qsd null-co
 * with read-zeroes=on), so the numbers measure the vhost-user/virtio data
 * path, not storage. Our client busy-polls the used ring and asks for no
 * interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT), which takes the client's wake-up
 * cost out; the server's CPU time per I/O comes from /proc/PID/stat
 * (utime+stime) sampled around each measurement.
 *
 * With --file PATH the servers use that file instead (umdevd backend=file:,
 * qsd driver=file with cache.direct=on), and --engines picks the servers:
 * umdevd on each I/O engine (io_uring, epoll: the worker pool) and qsd with
 * aio=threads and aio=native, all in the same run. --rw write measures
 * 4 KiB random writes instead of reads. --rings split,packed runs umdevd
 * with each ring layout (VIRTIO_F_RING_PACKED for packed; qsd's vhost-user
 * export has split rings only).
 *
 * With --nbd the bench starts nbdkit (memory plugin, --size bytes) on a UNIX
 * socket and both servers use that export: umdevd with
 * backend=nbd+unix:///?socket=..., qsd with --blockdev driver=nbd. The NBD
 * server's CPU per I/O is shown too (a fresh nbdkit per server).
 *
 * With --scaling the bench measures how each server scales from one
 * data-plane thread to two while it, not the client, is the bottleneck:
 * large reads (--bs, 128 KiB by default) that the server zero-fills, a
 * client that sleeps on the call eventfds (EVENT_IDX, woken per batch of
 * completions), and a matrix of umdevd --threads 1/2 with one queue or one
 * queue per loop against qsd with one and two queues. See bench_scaling.c.
 *
 * Usage: umdev-bench [--duration SEC] [--qd N[,N...]] [--servers umdevd,qsd]
 *                    [--umdevd PATH] [--qsd PATH] [--size BYTES]
 *                    [--umdevd-dev-extra ",key=val..."] [--umdevd-arg ARG]...
 *                    [--label TEXT] [--rw read|write]
 *                    [--file PATH [--engines io_uring,epoll,threads,native]]
 *                    [--rings split,packed]
 *                    [--scaling [--bs BYTES] [--batch N] [--pin] [--rounds N]]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "client/proc_util.h"
#include "client/vhost_user_client.h"

#include "bench_scaling.h"
#include "bench_util.h"

#ifndef UMDEVD_DEFAULT_PATH
#define UMDEVD_DEFAULT_PATH NULL
#endif

#define MAX_QDS 8
#define MAX_EXTRA_ARGS 16
#define RING_SIZE 128
#define IO_BYTES 4096u
/* What the bench negotiates (the client's defaults, plus the ring layout). */
#define BENCH_FEATURES                                                              \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_SEG_MAX) |             \
	 (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |            \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC))

struct opts {
	double duration;
	unsigned qds[MAX_QDS];
	unsigned nqds;
	bool run_umdevd, run_qsd;
	const char *umdevd;
	const char *qsd;
	uint64_t size;
	const char *dev_extra;
	const char *extra_args[MAX_EXTRA_ARGS];
	unsigned nextra;
	const char *label;
	bool write;
	const char *file; /* NULL: null backends */
	const char *engines;
	bool nbd; /* both servers on an nbdkit memory export */
	bool split, packed; /* --rings */
	bool cur_packed; /* the ring layout of the server being measured */
	bool scaling; /* --scaling: see bench_scaling.c */
	uint32_t bs; /* --scaling: bytes per read */
	unsigned batch; /* --scaling: completions per wake-up, 0 = qd / 4 */
	bool pin; /* --scaling: client on the last CPU */
	unsigned rounds; /* --scaling: passes over the matrix, median shown */
};

struct result {
	bool ok;
	double iops;
	double lat_us; /* mean completion latency: qd / iops */
	double srv_cpu_us_per_io;
	double srv_util; /* server CPU seconds per wall second */
	double cli_cpu_us_per_io;
	double nbd_cpu_us_per_io; /* --nbd: the NBD server's */
};

/* --nbd: the nbdkit serving the current server (or 0), and whether rows show its CPU. */
static pid_t nbd_pid;
static bool nbd_column;

/* Keep @qd reads in flight for @secs; returns completions, or -errno. */
static int64_t run_load(struct umdev_vuc *c, uint64_t bufs, unsigned qd, uint64_t nblocks,
			double secs, uint64_t *seed, bool write)
{
	struct umdev_vblk_cpl cpl[RING_SIZE];
	double end = bench_mono_s() + secs;
	int64_t done = 0;
	unsigned posted = 0;
	unsigned free_buf[RING_SIZE], nfree = qd;

	for (unsigned i = 0; i < qd; i++)
		free_buf[i] = i;
	for (;;) {
		bool stop = false;
		int n;

		while (nfree) {
			unsigned b = free_buf[--nfree];
			struct umdev_vqd_buf d = { .addr = bufs + (uint64_t)b * IO_BYTES,
						   .len = IO_BYTES, .write = !write };
			uint64_t sector = (bench_xorshift(seed) % nblocks) * (IO_BYTES >> 9);
			int r = umdev_vblk_submit(c, 0, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
						  sector, &d, 1, b, nfree != 0);

			if (r)
				return r;
			posted++;
		}
		/* One cheap clock read per poll round keeps overhead low. */
		if (bench_mono_s() >= end)
			stop = true;
		n = umdev_vblk_poll(c, 0, cpl, RING_SIZE);
		if (n < 0)
			return n;
		for (int k = 0; k < n; k++) {
			if (cpl[k].status != VIRTIO_BLK_S_OK)
				return -EIO;
			free_buf[nfree++] = (unsigned)cpl[k].cookie;
		}
		done += n;
		posted -= (unsigned)n;
		if (stop)
			break;
	}
	/* Drain so the next measurement starts from an idle queue. */
	for (double give_up = bench_mono_s() + 5; posted && bench_mono_s() < give_up;) {
		int n = umdev_vblk_poll(c, 0, cpl, RING_SIZE);

		if (n < 0)
			return n;
		posted -= (unsigned)n;
	}
	return posted ? -ETIMEDOUT : done;
}

static int bench_server(const struct opts *o, const char *name, char *const argv[],
			const char *sock, const char *log, struct result *res)
{
	struct virtio_blk_config cfg;
	struct umdev_proc proc;
	struct umdev_vuc c;
	uint64_t bufs, nblocks, seed = 0x9e3779b97f4a7c15ull;
	int r;

	r = umdev_proc_spawn(&proc, argv, log);
	if (r)
		return r;
	r = umdev_proc_wait_socket(&proc, sock, 10000);
	if (r) {
		fprintf(stderr, "%s: did not create %s (%s); see %s\n", name, sock, strerror(-r),
			log);
		umdev_proc_stop(&proc, 2000);
		return r;
	}
	r = umdev_vuc_connect(&c, sock, 3000);
	if (r)
		goto out_proc;
	c.vqs[0].no_interrupt = true;
	c.want_features = BENCH_FEATURES | (o->cur_packed ? 1ull << VIRTIO_F_RING_PACKED : 0);
	r = umdev_vuc_start_blk(&c, 1, RING_SIZE, 1, 16ull << 20, 0);
	if (r)
		goto out;
	r = umdev_vuc_get_config(&c, 0, &cfg, sizeof(cfg));
	if (r)
		goto out;
	nblocks = cfg.capacity / (IO_BYTES >> 9);
	if (!nblocks) {
		r = -EINVAL;
		goto out;
	}
	bufs = umdev_vuc_alloc(&c, 0, (uint64_t)RING_SIZE * IO_BYTES, 4096);
	if (!bufs) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < o->nqds; i++) {
		uint64_t s0, s1, c0, c1, k0 = 0, k1 = 0;
		double t0, t1;
		int64_t n;

		/* Warm-up: page faults, server thread wake-up, caches. */
		n = run_load(&c, bufs, o->qds[i], nblocks, 0.3, &seed, o->write);
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		if (umdev_proc_cpu_ns(proc.pid, &s0)) {
			r = -EIO;
			goto out;
		}
		if (nbd_pid && umdev_proc_cpu_ns(nbd_pid, &k0)) {
			r = -EIO;
			goto out;
		}
		c0 = bench_self_cpu_ns();
		t0 = bench_mono_s();
		n = run_load(&c, bufs, o->qds[i], nblocks, o->duration, &seed, o->write);
		t1 = bench_mono_s();
		c1 = bench_self_cpu_ns();
		if (n <= 0 || umdev_proc_cpu_ns(proc.pid, &s1) ||
		    (nbd_pid && umdev_proc_cpu_ns(nbd_pid, &k1))) {
			r = n < 0 ? (int)n : -EIO;
			goto out;
		}
		res[i].ok = true;
		res[i].iops = (double)n / (t1 - t0);
		res[i].lat_us = 1e6 * o->qds[i] / res[i].iops;
		res[i].srv_cpu_us_per_io = (double)(s1 - s0) / 1e3 / (double)n;
		res[i].srv_util = (double)(s1 - s0) / 1e9 / (t1 - t0);
		res[i].cli_cpu_us_per_io = (double)(c1 - c0) / 1e3 / (double)n;
		res[i].nbd_cpu_us_per_io = (double)(k1 - k0) / 1e3 / (double)n;
	}
	r = 0;
out:
	if (r)
		fprintf(stderr, "%s: benchmark failed: %s; see %s\n", name, strerror(-r), log);
	umdev_vuc_close(&c);
out_proc:
	umdev_proc_stop(&proc, 3000);
	return r;
}

static int parse_qds(struct opts *o, const char *s)
{
	char *copy = strdup(s), *save = NULL;

	o->nqds = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		long v = strtol(t, NULL, 10);

		/* Three descriptors a request must fit in the ring (--scaling's
		 * larger ring is checked once all options are known). */
		if (v < 1 || v > BENCH_SCALING_RING / 3 || o->nqds == MAX_QDS) {
			free(copy);
			return -EINVAL;
		}
		o->qds[o->nqds++] = (unsigned)v;
	}
	free(copy);
	return o->nqds ? 0 : -EINVAL;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: umdev-bench [--duration SEC] [--qd 1,32] [--servers umdevd,qsd]\n"
		"                   [--umdevd PATH] [--qsd PATH] [--size BYTES]\n"
		"                   [--umdevd-dev-extra ',k=v'] [--umdevd-arg ARG]... [--label T]\n"
		"                   [--rw read|write] [--file PATH [--engines "
		"io_uring,epoll,threads,native]] [--nbd]\n"
		"                   [--rings split,packed]\n"
		"       umdev-bench --scaling [--bs BYTES (131072)] [--batch N (qd/4)] [--pin] [--rounds N]\n"
		"                   [--duration SEC] [--qd 1,32] [--servers umdevd,qsd]\n"
		"                   [--umdevd PATH] [--qsd PATH] [--size BYTES]\n"
		"                   [--umdevd-dev-extra ',k=v'] [--umdevd-arg ARG]... [--label T]\n");
}

static void print_row(const char *name, unsigned qd, const struct result *r)
{
	if (!r->ok) {
		printf("%-18s %4u %12s\n", name, qd, "failed");
		return;
	}
	printf("%-18s %4u %12.0f %10.1f %14.2f %10.0f%% %14.2f", name, qd, r->iops, r->lat_us,
	       r->srv_cpu_us_per_io, 100 * r->srv_util, r->cli_cpu_us_per_io);
	if (nbd_column)
		printf(" %14.2f", r->nbd_cpu_us_per_io);
	printf("\n");
}

/* One server of a --file run: umdevd on an engine, or qsd with an aio mode. */
struct file_cfg {
	const char *name;
	const char *engine; /* as in --engines */
	bool qsd;
	struct result res[MAX_QDS];
	bool ran;
};

/* --file: every configuration in --engines on the same file, one table. */
static int bench_file(const struct opts *o, const char *dir, double load_before)
{
	struct file_cfg cfgs[] = {
		{ .name = "umdevd io_uring", .engine = "io_uring", .qsd = false },
		{ .name = "umdevd epoll", .engine = "epoll", .qsd = false },
		{ .name = "qsd aio=threads", .engine = "threads", .qsd = true },
		{ .name = "qsd aio=native", .engine = "native", .qsd = true },
	};
	char sock[192], log[192], dev[512], blockdev[512], export[512], engine[32];
	int failed = 0;

	snprintf(log, sizeof(log), "%s/server.log", dir);
	for (unsigned k = 0; k < sizeof(cfgs) / sizeof(cfgs[0]); k++) {
		struct file_cfg *f = &cfgs[k];

		if (!strstr(o->engines, f->engine))
			continue;
		f->ran = true;
		if (!f->qsd) {
			char *args[6 + MAX_EXTRA_ARGS];
			unsigned n = 0;

			snprintf(sock, sizeof(sock), "%s/umdevd.sock", dir);
			snprintf(dev, sizeof(dev),
				 "virtio-blk,id=blk0,socket=%s,backend=file:%s,num-queues=1%s", sock,
				 o->file, o->dev_extra);
			snprintf(engine, sizeof(engine), "--io-engine=%s", f->engine);
			args[n++] = (char *)o->umdevd;
			args[n++] = engine;
			args[n++] = "--rpc";
			args[n++] = "none";
			for (unsigned i = 0; i < o->nextra; i++)
				args[n++] = (char *)o->extra_args[i];
			args[n++] = "--device";
			args[n++] = dev;
			args[n] = NULL;
			failed |= bench_server(o, f->name, args, sock, log, f->res) != 0;
		} else {
			char *args[] = { (char *)o->qsd, "--blockdev", blockdev, "--export", export,
					 NULL };

			snprintf(sock, sizeof(sock), "%s/qsd.sock", dir);
			snprintf(blockdev, sizeof(blockdev),
				 "driver=file,node-name=n0,filename=%s,cache.direct=on,aio=%s",
				 o->file, f->engine);
			snprintf(export, sizeof(export),
				 "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,"
				 "addr.path=%s,writable=on,num-queues=1",
				 sock);
			failed |= bench_server(o, f->name, args, sock, log, f->res) != 0;
		}
		unlink(sock);
	}
	if (failed)
		bench_dump_log(log);
	umdev_proc_rmtree(dir);
	printf("umdev-bench%s%s: 4 KiB random %s, %.1f s per point, file %s (O_DIRECT), 1 queue\n",
	       *o->label ? " " : "", o->label, o->write ? "writes" : "reads", o->duration,
	       o->file);
	printf("client: busy-polls the used ring, requests no interrupts; %ld CPUs, load average "
	       "%.2f before the run%s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), load_before,
	       load_before > 0.5 ? " (busy machine: numbers are noisy)" : "");
	printf("%-18s %4s %12s %10s %14s %11s %14s\n", "server", "qd", "IOPS", "lat(us)",
	       "srv cpu us/IO", "srv cpu", "cli cpu us/IO");
	for (unsigned i = 0; i < o->nqds; i++)
		for (unsigned k = 0; k < sizeof(cfgs) / sizeof(cfgs[0]); k++)
			if (cfgs[k].ran)
				print_row(cfgs[k].name, o->qds[i], &cfgs[k].res[i]);
	return failed ? 1 : 0;
}

/* Starts nbdkit's memory plugin of @size bytes on @sock. */
static int nbdkit_start(struct umdev_proc *p, const char *sock, uint64_t size, const char *log)
{
	char sz[48];
	char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "-U", (char *)sock, "memory", sz,
			 NULL };
	int r;

	snprintf(sz, sizeof(sz), "size=%" PRIu64, size);
	unlink(sock); /* a stale socket would look ready at once */
	r = umdev_proc_spawn(p, argv, log);
	if (r == 0)
		r = umdev_proc_wait_socket(p, sock, 10000);
	if (r == 0)
		nbd_pid = p->pid;
	return r;
}

/* --nbd: umdevd and qsd, each on a fresh nbdkit memory export over a UNIX socket. */
static int bench_nbd(const struct opts *o, double load_before, const char *dir)
{
	struct result ru[MAX_QDS] = { 0 }, rq[MAX_QDS] = { 0 };
	char sock[192], nsock[192], log[192], nlog[192], dev[512], blockdev[512], export[512];
	struct umdev_proc nbdkit;
	int failed = 0;

	snprintf(log, sizeof(log), "%s/server.log", dir);
	snprintf(nlog, sizeof(nlog), "%s/nbdkit.log", dir);
	snprintf(nsock, sizeof(nsock), "%s/nbd.sock", dir);
	for (int k = 0; k < 2; k++) {
		bool qsd = k == 1;

		if ((qsd && !o->run_qsd) || (!qsd && !o->run_umdevd))
			continue;
		if (nbdkit_start(&nbdkit, nsock, o->size, nlog)) {
			fprintf(stderr, "nbdkit did not start; see %s\n", nlog);
			bench_dump_log(nlog);
			failed = 1;
			break;
		}
		if (!qsd) {
			char *args[] = { (char *)o->umdevd, "--rpc", "none", "--device", dev, NULL };

			snprintf(sock, sizeof(sock), "%s/umdevd.sock", dir);
			snprintf(dev, sizeof(dev),
				 "virtio-blk,id=blk0,socket=%s,backend=nbd+unix:///?socket=%s,"
				 "num-queues=1%s", sock, nsock, o->dev_extra);
			failed |= bench_server(o, "umdevd", args, sock, log, ru) != 0;
		} else {
			char *args[] = { (char *)o->qsd, "--blockdev", blockdev, "--export", export,
					 NULL };

			snprintf(sock, sizeof(sock), "%s/qsd.sock", dir);
			snprintf(blockdev, sizeof(blockdev),
				 "driver=nbd,node-name=n0,server.type=unix,server.path=%s", nsock);
			snprintf(export, sizeof(export),
				 "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,"
				 "addr.path=%s,writable=on,num-queues=1", sock);
			failed |= bench_server(o, "qsd", args, sock, log, rq) != 0;
		}
		unlink(sock);
		umdev_proc_stop(&nbdkit, 3000);
		nbd_pid = 0;
	}
	if (failed)
		bench_dump_log(log);
	umdev_proc_rmtree(dir);
	printf("umdev-bench%s%s: 4 KiB random %s, %.1f s per point, NBD export (nbdkit memory, "
	       "%" PRIu64 " bytes) over a UNIX socket, 1 queue\n",
	       *o->label ? " " : "", o->label, o->write ? "writes" : "reads", o->duration,
	       o->size);
	printf("client: busy-polls the used ring, requests no interrupts; %ld CPUs, load average "
	       "%.2f before the run%s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), load_before,
	       load_before > 0.5 ? " (busy machine: numbers are noisy)" : "");
	printf("%-18s %4s %12s %10s %14s %11s %14s %14s\n", "server", "qd", "IOPS", "lat(us)",
	       "srv cpu us/IO", "srv cpu", "cli cpu us/IO", "nbd cpu us/IO");
	nbd_column = true;
	for (unsigned i = 0; i < o->nqds; i++) {
		if (o->run_umdevd)
			print_row("umdevd", o->qds[i], &ru[i]);
		if (o->run_qsd)
			print_row("qsd", o->qds[i], &rq[i]);
	}
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "qd", required_argument, NULL, 'q' },
		{ "servers", required_argument, NULL, 's' },
		{ "umdevd", required_argument, NULL, 'u' },
		{ "qsd", required_argument, NULL, 'Q' },
		{ "size", required_argument, NULL, 'S' },
		{ "umdevd-dev-extra", required_argument, NULL, 'x' },
		{ "umdevd-arg", required_argument, NULL, 'a' },
		{ "label", required_argument, NULL, 'l' },
		{ "rw", required_argument, NULL, 'w' },
		{ "file", required_argument, NULL, 'F' },
		{ "engines", required_argument, NULL, 'E' },
		{ "nbd", no_argument, NULL, 'N' },
		{ "rings", required_argument, NULL, 'R' },
		{ "scaling", no_argument, NULL, 'C' },
		{ "bs", required_argument, NULL, 'B' },
		{ "batch", required_argument, NULL, 'b' },
		{ "pin", no_argument, NULL, 'P' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.duration = 5,
		.qds = { 1, 32 },
		.nqds = 2,
		.run_umdevd = true,
		.run_qsd = true,
		.umdevd = getenv("UMDEVD") ? getenv("UMDEVD") : UMDEVD_DEFAULT_PATH,
		.qsd = "qemu-storage-daemon",
		.size = 1ull << 30,
		.dev_extra = "",
		.label = "",
		.engines = "io_uring,epoll,threads,native",
		.split = true,
		.bs = 128u << 10,
		.rounds = 1,
	};
	struct result ru[2][MAX_QDS] = { { { 0 } } }, rq[MAX_QDS] = { 0 };
	static const char *const ring_name[2] = { "umdevd split", "umdevd packed" };
	char dir[128], sock[192], log[192], dev[512], blockdev[256], export[512];
	double load_before = -1;
	int opt, failed = 0;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.duration = strtod(optarg, NULL);
			break;
		case 'q':
			if (parse_qds(&o, optarg)) {
				fprintf(stderr, "bad --qd (1..%d, comma-separated; up to %d with "
						"--scaling)\n", RING_SIZE / 3, BENCH_SCALING_RING / 3);
				return 2;
			}
			break;
		case 's':
			o.run_umdevd = strstr(optarg, "umdevd") != NULL;
			o.run_qsd = strstr(optarg, "qsd") != NULL;
			break;
		case 'u':
			o.umdevd = optarg;
			break;
		case 'Q':
			o.qsd = optarg;
			break;
		case 'S':
			o.size = strtoull(optarg, NULL, 0);
			break;
		case 'x':
			o.dev_extra = optarg;
			break;
		case 'a':
			if (o.nextra == MAX_EXTRA_ARGS)
				return 2;
			o.extra_args[o.nextra++] = optarg;
			break;
		case 'l':
			o.label = optarg;
			break;
		case 'w':
			if (strcmp(optarg, "read") && strcmp(optarg, "write")) {
				usage();
				return 2;
			}
			o.write = !strcmp(optarg, "write");
			break;
		case 'F':
			o.file = optarg;
			break;
		case 'E':
			o.engines = optarg;
			break;
		case 'N':
			o.nbd = true;
			break;
		case 'R':
			o.split = strstr(optarg, "split") != NULL;
			o.packed = strstr(optarg, "packed") != NULL;
			if (!o.split && !o.packed) {
				usage();
				return 2;
			}
			break;
		case 'C':
			o.scaling = true;
			break;
		case 'B': {
			unsigned long v = strtoul(optarg, NULL, 0);

			/* Whole sectors; at most what the client's segment table holds. */
			if (v < 512 || v % 512 || v > (8u << 20)) {
				usage();
				return 2;
			}
			o.bs = (uint32_t)v;
			break;
		}
		case 'b':
			o.batch = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			o.pin = true;
			break;
		case 'r':
			o.rounds = (unsigned)strtoul(optarg, NULL, 0);
			if (o.rounds < 1 || o.rounds > BENCH_SCALING_MAX_ROUNDS) {
				usage();
				return 2;
			}
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (o.duration <= 0 || o.size < IO_BYTES) {
		usage();
		return 2;
	}
	for (unsigned i = 0; i < o.nqds && !o.scaling; i++)
		if (o.qds[i] > RING_SIZE / 3) {
			fprintf(stderr, "bad --qd (1..%d, comma-separated; up to %d with --scaling)\n",
				RING_SIZE / 3, BENCH_SCALING_RING / 3);
			return 2;
		}
	if (o.run_umdevd && !o.umdevd) {
		fprintf(stderr, "umdevd path unknown: pass --umdevd or set UMDEVD\n");
		return 2;
	}
	/* On a small machine anything else running skews the numbers, and
	 * busy-polling servers suffer most: say so next to the results. */
	{
		FILE *f = fopen("/proc/loadavg", "r");

		if (f) {
			if (fscanf(f, "%lf", &load_before) != 1)
				load_before = -1;
			fclose(f);
		}
	}
	if (umdev_proc_tmpdir(dir, sizeof(dir))) {
		perror("mkdtemp");
		return 1;
	}
	if (o.scaling) {
		struct bench_scaling_opts so = {
			.duration = o.duration, .qds = o.qds, .nqds = o.nqds,
			.run_umdevd = o.run_umdevd, .run_qsd = o.run_qsd, .umdevd = o.umdevd,
			.qsd = o.qsd, .size = o.size, .bs = o.bs, .batch = o.batch, .pin = o.pin,
			.rounds = o.rounds,
			.dev_extra = o.dev_extra, .extra_args = o.extra_args, .nextra = o.nextra,
			.label = o.label, .dir = dir, .load_before = load_before,
		};
		int r = bench_scaling(&so);

		umdev_proc_rmtree(dir);
		return r;
	}
	if (o.file)
		return bench_file(&o, dir, load_before);
	if (o.nbd)
		return bench_nbd(&o, load_before, dir);
	snprintf(log, sizeof(log), "%s/server.log", dir);

	for (unsigned pk = 0; pk < 2 && o.run_umdevd; pk++) {
		char *args[4 + MAX_EXTRA_ARGS];
		unsigned n = 0;

		if (!(pk ? o.packed : o.split))
			continue;
		o.cur_packed = pk;
		snprintf(sock, sizeof(sock), "%s/umdevd.sock", dir);
		snprintf(dev, sizeof(dev), "virtio-blk,id=blk0,socket=%s,backend=null:%" PRIu64
			 ",num-queues=1%s", sock, o.size, o.dev_extra);
		args[n++] = (char *)o.umdevd;
		for (unsigned i = 0; i < o.nextra; i++)
			args[n++] = (char *)o.extra_args[i];
		args[n++] = "--device";
		args[n++] = dev;
		args[n] = NULL;
		failed |= bench_server(&o, ring_name[pk], args, sock, log, ru[pk]) != 0;
		unlink(sock);
	}
	if (o.run_qsd) {
		char *args[] = { (char *)o.qsd, "--blockdev", blockdev, "--export", export, NULL };

		snprintf(sock, sizeof(sock), "%s/qsd.sock", dir);
		snprintf(blockdev, sizeof(blockdev),
			 "driver=null-co,node-name=n0,size=%" PRIu64 ",read-zeroes=on", o.size);
		snprintf(export, sizeof(export),
			 "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=%s,"
			 "writable=on,num-queues=1",
			 sock);
		o.cur_packed = false;
		failed |= bench_server(&o, "qsd", args, sock, log, rq) != 0;
		unlink(sock);
	}
	if (failed)
		bench_dump_log(log);
	umdev_proc_rmtree(dir);

	printf("umdev-bench%s%s: 4 KiB random reads, %.1f s per point, null backend of %" PRIu64
	       " bytes, 1 queue\n",
	       *o.label ? " " : "", o.label, o.duration, o.size);
	printf("client: busy-polls the used ring, requests no interrupts "
	       "(VIRTQ_AVAIL_F_NO_INTERRUPT); %ld CPUs, load average %.2f before the run%s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), load_before,
	       load_before > 0.5 ? " (busy machine: numbers are noisy)" : "");
	if (*o.dev_extra || o.nextra) {
		printf("umdevd options:");
		for (unsigned i = 0; i < o.nextra; i++)
			printf(" %s", o.extra_args[i]);
		printf(" device'%s'\n", o.dev_extra);
	}
	printf("%-18s %4s %12s %10s %14s %11s %14s\n", "server", "qd", "IOPS", "lat(us)",
	       "srv cpu us/IO", "srv cpu", "cli cpu us/IO");
	for (unsigned i = 0; i < o.nqds; i++) {
		for (unsigned pk = 0; pk < 2 && o.run_umdevd; pk++)
			if (pk ? o.packed : o.split)
				print_row(ring_name[pk], o.qds[i], &ru[pk][i]);
		if (o.run_qsd)
			print_row("qsd split", o.qds[i], &rq[i]);
	}
	if (o.run_umdevd && o.run_qsd) {
		printf("ratios umdevd/qsd (IOPS higher is better, CPU/IO lower is better):\n");
		for (unsigned i = 0; i < o.nqds; i++)
			for (unsigned pk = 0; pk < 2; pk++) {
				if (!ru[pk][i].ok || !rq[i].ok)
					continue;
				printf("  qd %-3u %-6s IOPS x%.2f   server CPU/IO x%.2f\n", o.qds[i],
				       pk ? "packed" : "split", ru[pk][i].iops / rq[i].iops,
				       ru[pk][i].srv_cpu_us_per_io / rq[i].srv_cpu_us_per_io);
			}
	}
	if (o.split && o.packed && o.run_umdevd) {
		printf("packed/split (umdevd):\n");
		for (unsigned i = 0; i < o.nqds; i++)
			if (ru[0][i].ok && ru[1][i].ok)
				printf("  qd %-3u IOPS x%.2f   server CPU/IO x%.2f   client CPU/IO x%.2f\n",
				       o.qds[i], ru[1][i].iops / ru[0][i].iops,
				       ru[1][i].srv_cpu_us_per_io / ru[0][i].srv_cpu_us_per_io,
				       ru[1][i].cli_cpu_us_per_io / ru[0][i].cli_cpu_us_per_io);
	}
	return failed ? 1 : 0;
}
