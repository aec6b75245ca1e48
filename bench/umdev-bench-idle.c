/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev-bench-idle: what the server costs when it should be asleep.
 *
 * idle: N devices (virtio-blk on null backends, one in 40 an NVMe
 * controller, one in 40 a virtio-scsi host), created at run time through
 * umdevd's JSON-RPC socket, each with a connected client that set up one
 * queue, did one I/O and then went quiet. Over --duration seconds: the
 * server's CPU time, its wake-ups (context switches of all its threads),
 * and its memory per device: RssAnon (the server's own memory), apart
 * from RssShmem (guest memory pages the server mapped: guest-visible
 * buffers), plus open files and threads. qemu-storage-daemon serves the
 * same number of vhost-user-blk exports (it has no NVMe or vhost-user-scsi
 * export in Debian) with the same clients, in the same run.
 *
 * irq: one virtio-blk device, one queue, 4 KiB reads at QD1 paced at
 * --rate IOPS, the client sleeping on its call eventfd between requests
 * (interrupt mode: umdevd with poll-us=0, so the server sleeps on its kick
 * eventfd too). Server CPU per I/O for umdevd against qsd.
 *
 * --mix blk,scsi,nvme picks the kinds mixed in (default all three).
 *
 * Usage: umdev-bench-idle [--mode idle|irq|all] [--devices N] [--duration SEC] [--mix K,K]
 *                         [--rate IOPS] [--servers umdevd,qsd] [--umdevd PATH]
 *                         [--qsd PATH] [--rounds N] [--place any|cross|same]
 */
#include <errno.h>
#include <getopt.h>
#include <liburing.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "client/nvme_drv.h"
#include "client/proc_util.h"
#include "client/vhost_user_client.h"
#include "client/virtio_scsi_drv.h"
#include "umdev/proto/nvme.h"
#include "umdev/proto/pci_regs.h"
#include "umdev/proto/scsi.h"

#include "bench_util.h"

#ifndef UMDEVD_DEFAULT_PATH
#define UMDEVD_DEFAULT_PATH NULL
#endif

#define EVERY 40 /* device i: NVMe when i % 40 == 0, virtio-scsi when i % 40 == 20 */
#define REGION (1ull << 20) /* guest memory per client */
#define QSIZE 128 /* QEMU's vhost-user-blk default */
#define MAX_ROUNDS 15
#define NVME_IOVA 0x10000000ull

struct opts {
	bool idle, irq, umdevd, qsd;
	unsigned ndev, rounds;
	enum { PLACE_ANY, PLACE_CROSS, PLACE_SAME } place;
	double duration;
	unsigned rate;
	const char *umdevd_path, *qsd_path;
	char dir[128];
};

enum kind { K_BLK, K_NVME, K_SCSI };

struct client {
	enum kind kind;
	struct umdev_vuc vuc;
	struct umdev_vscsi_drv *scsi;
	struct umdev_nvmed_vfu *nvme;
};

/* ---- process figures ---- */

struct pstat {
	unsigned long rss_anon, rss_shmem, rss_file; /* KiB */
	unsigned fds, threads;
	uint64_t cpu_ns, ctxsw;
};

static unsigned count_dir(pid_t pid, const char *sub)
{
	char path[64];
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, sub);
	d = opendir(path);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Context switches of every thread: each is a wake-up of a sleeping thread (or a preemption). */
static uint64_t ctx_switches(pid_t pid)
{
	char path[320], line[128];
	uint64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));) {
		unsigned long long v;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
				sum += v;
		fclose(f);
	}
	closedir(d);
	return sum;
}

static int pstat_get(pid_t pid, struct pstat *s)
{
	char path[64], line[256];
	FILE *f;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "RssAnon: %lu", &s->rss_anon);
		sscanf(line, "RssShmem: %lu", &s->rss_shmem);
		sscanf(line, "RssFile: %lu", &s->rss_file);
	}
	fclose(f);
	s->fds = count_dir(pid, "fd");
	s->threads = count_dir(pid, "task");
	s->ctxsw = ctx_switches(pid);
	return umdev_proc_cpu_ns(pid, &s->cpu_ns);
}

static void pstat_print(const char *what, const struct pstat *s)
{
	printf("  %-28s RssAnon %7lu KiB  RssShmem %7lu KiB  RssFile %6lu KiB  fds %5u  "
	       "threads %u\n",
	       what, s->rss_anon, s->rss_shmem, s->rss_file, s->fds, s->threads);
}

/* ---- a minimal JSON-RPC client (one request at a time, line-framed) ---- */

static int rpc_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	for (int i = 0; fd >= 0 && i < 200; i++) {
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		usleep(20000);
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Send @req (one line) and read the answer; 0 if it is a result, -EIO with the line printed. */
static int rpc_call(int fd, const char *req)
{
	static char buf[1 << 20];
	size_t n = 0, len = strlen(req);

	if (write(fd, req, len) != (ssize_t)len)
		return -errno;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);

		if (r <= 0)
			return -EIO;
		n += (size_t)r;
		if (buf[n - 1] == '\n' || n == sizeof(buf) - 1)
			break;
	}
	buf[n] = 0;
	if (strstr(buf, "\"error\"")) {
		fprintf(stderr, "rpc: %s -> %s", req, buf);
		return -EIO;
	}
	return 0;
}

static bool with_nvme = true, with_scsi = true;

static enum kind kind_of(unsigned i)
{
	if (with_nvme && i % EVERY == 0)
		return K_NVME;
	return with_scsi && i % EVERY == EVERY / 2 ? K_SCSI : K_BLK;
}

static void dev_sock(const struct opts *o, char *buf, size_t len, unsigned i)
{
	snprintf(buf, len, "%s/d%u.sock", o->dir, i);
}

static int create_all(const struct opts *o, int fd)
{
	char req[768], sock[256];

	for (unsigned i = 0; i < o->ndev; i++) {
		static const char *const fmt[] = {
			[K_BLK] = "\"type\":\"virtio-blk\",\"backend\":\"null:1G\"",
			[K_NVME] = "\"type\":\"nvme\",\"ns\":\"null:1G\"",
			[K_SCSI] = "\"type\":\"virtio-scsi\",\"lun\":\"0:0:null:1G\"",
		};
		int r;

		dev_sock(o, sock, sizeof(sock), i);
		snprintf(req, sizeof(req),
			 "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"create\",\"params\":{%s,"
			 "\"id\":\"d%u\",\"socket\":\"%s\"}}\n",
			 i, fmt[kind_of(i)], i, sock);
		r = rpc_call(fd, req);
		if (r)
			return r;
	}
	return 0;
}

/* ---- clients: one queue, one I/O, then quiet ---- */

static int blk_up(struct umdev_vuc *c, const char *sock)
{
	struct umdev_vqd_buf b;
	uint64_t buf;
	int r = umdev_vuc_connect(c, sock, 5000);

	if (r)
		return r;
	r = umdev_vuc_start_blk(c, 1, QSIZE, 1, REGION, 0);
	if (r)
		return r;
	buf = umdev_vuc_alloc(c, 0, 4096, 4096);
	if (!buf)
		return -ENOMEM;
	b = (struct umdev_vqd_buf){ .addr = buf, .len = 4096, .write = true };
	r = umdev_vblk_io(c, 0, VIRTIO_BLK_T_IN, 0, &b, 1, 5000);
	return r < 0 ? r : r == VIRTIO_BLK_S_OK ? 0 : -EIO;
}

static int scsi_up(struct client *cl, const char *sock)
{
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY };
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	int r;

	cl->scsi = calloc(1, sizeof(*cl->scsi));
	if (!cl->scsi)
		return -ENOMEM;
	r = umdev_vscsi_drv_start(cl->scsi, &cl->vuc, sock, 1, QSIZE, 0, REGION);
	if (r)
		return r;
	r = umdev_vscsi_cmd_init(&cmd, 0, 0, 1, tur, 6, NULL, 0, 0, 0, 0);
	if (!r)
		r = umdev_vscsi_exec(cl->scsi, VIRTIO_SCSI_REQQ0, &cmd, &res, 5000);
	umdev_vscsi_cmd_fini(&cmd);
	return r < 0 ? r : r == VIRTIO_SCSI_S_OK ? 0 : -EIO;
}

static int nvme_up(struct client *cl, const char *sock)
{
	struct umdev_nvmed_vfu *h = calloc(1, sizeof(*h));
	struct nvme_sqe cmd;
	uint64_t buf;
	int r;

	if (!h)
		return -ENOMEM;
	cl->nvme = h;
	r = umdev_nvmed_vfu_open(h, sock, NVME_IOVA, REGION);
	if (r) {
		cl->nvme = NULL;
		free(h);
		return r;
	}
	if ((r = umdev_nvmed_vfu_command(h, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER, 0)) ||
	    (r = umdev_nvmed_vfu_msix(h, 2)) || (r = umdev_nvmed_enable(&h->d, 32)) ||
	    (r = umdev_nvmed_create_qpair(&h->d, 1, QSIZE, true)))
		return r;
	buf = umdev_nvmed_alloc(&h->d, 4096, 4096);
	r = umdev_nvmed_build_rw(&h->d, &cmd, NVME_CMD_READ, 1, 0, 8, buf, 4096, false, false);
	if (!r)
		r = umdev_nvmed_cmd(&h->d, 1, &cmd, NULL);
	return r < 0 ? r : r ? -EIO : 0;
}

static void client_close(struct client *cl)
{
	if (cl->nvme) {
		umdev_nvmed_vfu_close(cl->nvme);
		free(cl->nvme);
	} else if (cl->kind != K_NVME) {
		umdev_vuc_close(&cl->vuc);
	}
	free(cl->scsi);
}

/* ---- idle ---- */

static int idle_measure(const struct opts *o, const char *name, pid_t pid, struct client *cl,
			bool qsd)
{
	struct pstat s0, s1, s2;
	char sock[256];
	unsigned connected = 0;
	double t;
	int r = 0;

	if (pstat_get(pid, &s0))
		return -EIO;
	printf("%s, %u devices%s:\n", name, o->ndev,
	       qsd ? " (all vhost-user-blk)"
	       : with_nvme && with_scsi ? " (virtio-blk; 1 in 40 NVMe, 1 in 40 virtio-scsi)"
	       : with_nvme ? " (virtio-blk; 1 in 40 NVMe)"
	       : with_scsi ? " (virtio-blk; 1 in 40 virtio-scsi)" : " (virtio-blk)");
	pstat_print("devices created, no client", &s0);
	for (unsigned i = 0; i < o->ndev && !r; i++) {
		cl[i].kind = qsd ? K_BLK : kind_of(i);
		dev_sock(o, sock, sizeof(sock), i);
		r = cl[i].kind == K_NVME ? nvme_up(&cl[i], sock)
		    : cl[i].kind == K_SCSI ? scsi_up(&cl[i], sock)
					  : blk_up(&cl[i].vuc, sock);
		if (r)
			fprintf(stderr, "%s: device %u: %s\n", name, i, strerror(-r));
		else
			connected++;
	}
	usleep(500 * 1000); /* let the last set-ups settle before measuring */
	if (pstat_get(pid, &s1))
		return -EIO;
	t = bench_mono_s();
	usleep((useconds_t)(o->duration * 1e6));
	t = bench_mono_s() - t;
	if (pstat_get(pid, &s2))
		return -EIO;
	pstat_print("clients connected, idle", &s2);
	printf("  idle %.1f s: server CPU %.3f%% of one core, %.1f wake-ups/s; per device: "
	       "RssAnon %.1f KiB, RssShmem %.1f KiB (guest memory), %.2f fds\n",
	       t, (double)(s2.cpu_ns - s1.cpu_ns) / (t * 1e7), (double)(s2.ctxsw - s1.ctxsw) / t,
	       connected ? (double)((long)s2.rss_anon - (long)s0.rss_anon) / connected : 0.0,
	       connected ? (double)((long)s2.rss_shmem - (long)s0.rss_shmem) / connected : 0.0,
	       connected ? (double)((int)s2.fds - (int)s0.fds) / connected : 0.0);
	for (unsigned i = 0; i < o->ndev; i++)
		client_close(&cl[i]);
	memset(cl, 0, sizeof(*cl) * o->ndev);
	return r;
}

static int idle_umdevd(const struct opts *o, struct client *cl)
{
	char rpc[256], log[256], maxd[16];
	char *argv[] = { (char *)o->umdevd_path, "--rpc", rpc, "--max-devices", maxd,
			 "--threads", "2", "--log-level", "warning", NULL };
	struct umdev_proc p;
	struct pstat s;
	double t;
	int fd, r;

	snprintf(rpc, sizeof(rpc), "%s/rpc.sock", o->dir);
	snprintf(log, sizeof(log), "%s/umdevd.log", o->dir);
	snprintf(maxd, sizeof(maxd), "%u", o->ndev);
	r = umdev_proc_spawn(&p, argv, log);
	if (r)
		return r;
	fd = rpc_connect(rpc);
	if (fd < 0) {
		r = -EIO;
		goto out;
	}
	if (pstat_get(p.pid, &s) == 0)
		pstat_print("umdevd, no device", &s);
	t = bench_mono_s();
	r = create_all(o, fd);
	if (r)
		goto out;
	printf("umdevd: %u devices created through the RPC in %.2f s\n", o->ndev,
	       bench_mono_s() - t);
	r = idle_measure(o, "umdevd", p.pid, cl, false);
	close(fd);
out:
	if (r)
		bench_dump_log(log);
	umdev_proc_stop(&p, 5000);
	return r;
}

static int idle_qsd(const struct opts *o, struct client *cl)
{
	char **argv = calloc(4 * o->ndev + 2, sizeof(char *));
	char log[256], sock[256];
	struct umdev_proc p;
	unsigned n = 0;
	int r = -ENOMEM;

	if (!argv)
		return r;
	argv[n++] = (char *)o->qsd_path;
	for (unsigned i = 0; i < o->ndev; i++) {
		dev_sock(o, sock, sizeof(sock), i);
		argv[n++] = "--blockdev";
		if (asprintf(&argv[n++], "driver=null-co,node-name=n%u,size=1073741824,read-zeroes=on", i) < 0)
			goto out_args;
		argv[n++] = "--export";
		if (asprintf(&argv[n++],
			     "type=vhost-user-blk,id=e%u,node-name=n%u,addr.type=unix,addr.path=%s,"
			     "writable=on,num-queues=1",
			     i, i, sock) < 0)
			goto out_args;
	}
	snprintf(log, sizeof(log), "%s/qsd.log", o->dir);
	r = umdev_proc_spawn(&p, argv, log);
	if (r)
		goto out_args;
	dev_sock(o, sock, sizeof(sock), o->ndev - 1);
	r = umdev_proc_wait_socket(&p, sock, 60000);
	if (!r)
		r = idle_measure(o, "qsd", p.pid, cl, true);
	if (r)
		bench_dump_log(log);
	umdev_proc_stop(&p, 5000);
out_args:
	for (unsigned i = 2; i < n; i += 2)
		free(argv[i]);
	free(argv);
	return r;
}

/* ---- interrupt mode ---- */

/*
 * The paced client loop shared by every server: @io submits one request and
 * sleeps until its interrupt. Returns the I/Os done, their wall time and the
 * client's own CPU; the caller samples the server's CPU around it.
 */
struct irq_run {
	uint64_t n, cpu_ns;
	double secs;
};

static int irq_pace(const struct opts *o, int (*io)(void *ctx, uint64_t n), void *ctx,
		    struct irq_run *run)
{
	uint64_t period_ns = 1000000000ull / o->rate, c0 = bench_self_cpu_ns();
	struct timespec next;
	double t = bench_mono_s();
	int r = 0;

	run->n = 0;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (bench_mono_s() - t < o->duration) {
		r = io(ctx, run->n);
		if (r)
			break;
		run->n++;
		next.tv_nsec += (long)period_ns;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	run->secs = bench_mono_s() - t;
	run->cpu_ns = bench_self_cpu_ns() - c0;
	return r;
}

static int irq_measure(const struct opts *o, const char *name, pid_t pid,
		       int (*io)(void *ctx, uint64_t n), void *ctx, double *us_per_io)
{
	struct irq_run run;
	uint64_t s0, s1;
	int r;

	/* Warm-up. */
	for (uint64_t i = 0; i < 1000; i++) {
		r = io(ctx, i);
		if (r)
			return r;
	}
	if (umdev_proc_cpu_ns(pid, &s0))
		return -EIO;
	r = irq_pace(o, io, ctx, &run);
	if (r)
		return r;
	if (umdev_proc_cpu_ns(pid, &s1) || !run.n)
		return -EIO;
	*us_per_io = (double)(s1 - s0) / 1e3 / (double)run.n;
	printf("  %-8s %8.0f IOPS  server CPU %6.2f us/IO (%5.1f%% of a core)  client CPU %6.2f "
	       "us/IO\n",
	       name, (double)run.n / run.secs, *us_per_io, (double)(s1 - s0) / (run.secs * 1e7),
	       (double)run.cpu_ns / 1e3 / (double)run.n);
	return 0;
}

/* ---- placement: which CPU the client and the server run on ---- */

/* @cpu, or every CPU when negative. */
static int place_cpu(int cpu)
{
	return cpu < 0 ? bench_set_cpus(0, sysconf(_SC_NPROCESSORS_ONLN)) : bench_set_cpus(cpu, 1);
}

/* Before starting a server: what it inherits. The client's own is set after. */
static void place_server(const struct opts *o)
{
	if (o->place != PLACE_ANY && place_cpu(o->place == PLACE_SAME ? 0 : 1) < 0)
		perror("sched_setaffinity");
}

static void place_client(const struct opts *o)
{
	if (place_cpu(o->place == PLACE_ANY ? -1 : 0) < 0)
		perror("sched_setaffinity");
}

/* ---- a vhost-user-blk server ---- */

struct irq_vuc {
	struct umdev_vuc *c;
	struct umdev_vqd_buf *b;
	uint64_t seed;
};

static int irq_vuc_io(void *ctx, uint64_t n)
{
	struct irq_vuc *v = ctx;
	uint64_t sector = (bench_xorshift(&v->seed) % (1u << 18)) * 8;
	struct umdev_vblk_cpl cpl;
	int r;

	/* The call eventfd wakes us: umdev_vblk_wait sleeps on it (interrupt mode). */
	r = umdev_vblk_submit(v->c, 0, VIRTIO_BLK_T_IN, sector, v->b, 1, n, false);
	if (!r)
		r = umdev_vblk_wait(v->c, 0, &cpl, 1, 5000) == 1 ? 0 : -ETIMEDOUT;
	return r;
}

static int irq_server(const struct opts *o, const char *name, char *const argv[],
		      const char *sock, const char *log, double *us_per_io)
{
	struct umdev_proc p;
	struct umdev_vuc c;
	struct umdev_vqd_buf b;
	struct irq_vuc v = { .c = &c, .b = &b, .seed = 0x9e3779b97f4a7c15ull };
	uint64_t buf;
	int r;

	place_server(o);
	r = umdev_proc_spawn(&p, argv, log);
	place_client(o);
	if (r)
		return r;
	r = umdev_proc_wait_socket(&p, sock, 10000);
	if (!r)
		r = umdev_vuc_connect(&c, sock, 3000);
	if (r)
		goto out_proc;
	r = umdev_vuc_start_blk(&c, 1, QSIZE, 1, 16ull << 20, 0);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	if (r || !buf) {
		r = r ? r : -ENOMEM;
		goto out;
	}
	b = (struct umdev_vqd_buf){ .addr = buf, .len = 4096, .write = true };
	r = irq_measure(o, name, p.pid, irq_vuc_io, &v, us_per_io);
out:
	umdev_vuc_close(&c);
out_proc:
	if (r)
		bench_dump_log(log);
	umdev_proc_stop(&p, 5000);
	unlink(sock);
	return r;
}

/* ---- the wake-up floor ---- */

/*
 * What any server that sleeps between requests pays on this machine: a
 * process that does nothing but sleep until the kick eventfd is written and
 * then write the call eventfd, the cheapest way we know (one io_uring_enter
 * per request: a multishot poll on the kick, the call write queued on the
 * ring with RWF_NOWAIT, as umdevd's loop does). No ring, no request, no
 * backend: a server's figure minus this one is what the server itself
 * spends per request; this one is the kernel's wake-ups, which no server
 * that sleeps avoids (a plain read()+write() loop costs more).
 */
static void __attribute__((noreturn)) floor_serve(int kick, int call)
{
	static const uint64_t one = 1;
	struct io_uring ring;
	struct io_uring_sqe *sqe;

	if (io_uring_queue_init(8, &ring, 0) < 0)
		_exit(1);
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_poll_multishot(sqe, kick, POLLIN);
	sqe->user_data = 1;
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, kicks = 0, seen = 0;

		if (io_uring_submit_and_wait(&ring, 1) < 0)
			_exit(1);
		io_uring_for_each_cqe(&ring, head, cqe) {
			seen++;
			if (cqe->user_data == 1)
				kicks++;
		}
		io_uring_cq_advance(&ring, seen);
		if (!kicks)
			continue;
		/* The eventfd counter only grows: no need to read the kick back. */
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_write(sqe, call, &one, sizeof(one), 0);
		sqe->rw_flags = RWF_NOWAIT;
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		sqe->user_data = 2;
	}
}

struct irq_floor {
	int kick, call;
};

static int irq_floor_io(void *ctx, uint64_t n)
{
	struct irq_floor *f = ctx;
	struct pollfd pfd = { .fd = f->call, .events = POLLIN };
	uint64_t v = 1;

	(void)n;
	if (write(f->kick, &v, sizeof(v)) != sizeof(v))
		return -errno;
	if (poll(&pfd, 1, 5000) != 1)
		return -ETIMEDOUT;
	return read(f->call, &v, sizeof(v)) == sizeof(v) ? 0 : -EIO;
}

static int irq_floor(const struct opts *o, double *us_per_io)
{
	struct irq_floor f = {
		.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
		.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
	};
	pid_t pid = -1;
	int r = -errno;

	if (f.kick >= 0 && f.call >= 0) {
		place_server(o);
		pid = fork();
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			floor_serve(f.kick, f.call);
		}
		r = pid < 0 ? -errno : 0;
		place_client(o);
	}
	if (!r)
		r = irq_measure(o, "floor", pid, irq_floor_io, &f, us_per_io);
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (f.kick >= 0)
		close(f.kick);
	if (f.call >= 0)
		close(f.call);
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int irq_bench(const struct opts *o)
{
	static const char *const place_name[] = {
		[PLACE_ANY] = "wherever the scheduler puts them",
		[PLACE_CROSS] = "client on CPU 0, server on CPU 1",
		[PLACE_SAME] = "client and server both on CPU 0",
	};
	char sock[256], log[256], dev[512], blockdev[128], export[512];
	double fl[MAX_ROUNDS], ud[MAX_ROUNDS], qs[MAX_ROUNDS];
	double f = 0, u = 0, q = 0;
	int r = 0;

	printf("interrupt mode: virtio-blk, 1 queue, 4 KiB reads at QD1 paced at %u IOPS, "
	       "the client sleeping on its call fd, %.0f s, %u round(s), %s\n",
	       o->rate, o->duration, o->rounds, place_name[o->place]);
	snprintf(sock, sizeof(sock), "%s/irq.sock", o->dir);
	snprintf(dev, sizeof(dev),
		 "virtio-blk,id=b0,socket=%s,backend=null:1G,num-queues=1,poll-us=0", sock);
	snprintf(blockdev, sizeof(blockdev),
		 "driver=null-co,node-name=n0,size=1073741824,read-zeroes=on");
	snprintf(export, sizeof(export),
		 "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=%s,"
		 "writable=on,num-queues=1",
		 sock);
	for (unsigned i = 0; i < o->rounds && !r; i++) {
		if (o->rounds > 1)
			printf(" round %u\n", i + 1);
		r |= irq_floor(o, &fl[i]);
		if (o->umdevd) {
			char *argv[] = { (char *)o->umdevd_path, "--rpc", "none", "--threads",
					 "1", "--device", dev, NULL };

			snprintf(log, sizeof(log), "%s/umdevd-irq.log", o->dir);
			r |= irq_server(o, "umdevd", argv, sock, log, &ud[i]);
		}
		if (o->qsd) {
			char *argv[] = { (char *)o->qsd_path, "--blockdev", blockdev, "--export",
					 export, NULL };

			snprintf(log, sizeof(log), "%s/qsd-irq.log", o->dir);
			r |= irq_server(o, "qsd", argv, sock, log, &qs[i]);
		}
	}
	place_cpu(-1);
	if (r)
		return r;
	f = median(fl, o->rounds);
	if (o->umdevd)
		u = median(ud, o->rounds);
	if (o->qsd)
		q = median(qs, o->rounds);
	printf("  medians: floor %.2f", f);
	if (u > 0)
		printf(", umdevd %.2f", u);
	if (q > 0)
		printf(", qsd %.2f", q);
	printf(" us/IO\n");
	if (u > 0 && q > 0) {
		printf("  server CPU per I/O umdevd/qsd: %.2f (goal <= 0.5)\n", u / q);
		printf("  above the floor (the server's own work per I/O): umdevd %.2f, qsd %.2f "
		       "us/IO, ratio %.2f\n",
		       u - f, q - f, q - f > 0 ? (u - f) / (q - f) : 0);
		printf("  the floor alone is %.2fx qsd's CPU per I/O\n", f / q);
	}
	return 0;
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr, "usage: umdev-bench-idle [--mode idle|irq|all] [--devices N] "
			"[--duration SEC] [--rate IOPS] [--mix blk,scsi,nvme]\n"
			"                        [--servers umdevd,qsd] [--umdevd PATH] "
			"[--qsd PATH]\n"
			"                        [--rounds N] [--place any|cross|same]\n");
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			perror("setrlimit");
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "mix", required_argument, NULL, 'x' },
		{ "devices", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "servers", required_argument, NULL, 's' },
		{ "umdevd", required_argument, NULL, 'u' },
		{ "qsd", required_argument, NULL, 'Q' },
		{ "rounds", required_argument, NULL, 'R' },
		{ "place", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = {
		.idle = true, .irq = true, .umdevd = true, .qsd = true, .ndev = 1000,
		.duration = 10, .rate = 20000, .umdevd_path = UMDEVD_DEFAULT_PATH,
		.qsd_path = "qemu-storage-daemon", .rounds = 1, .place = PLACE_ANY,
	};
	struct client *cl;
	int c, r = 0;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			o.idle = !strcmp(optarg, "idle") || !strcmp(optarg, "all");
			o.irq = !strcmp(optarg, "irq") || !strcmp(optarg, "all");
			break;
		case 'x':
			with_nvme = strstr(optarg, "nvme") != NULL;
			with_scsi = strstr(optarg, "scsi") != NULL;
			break;
		case 'n':
			o.ndev = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			o.duration = strtod(optarg, NULL);
			break;
		case 'r':
			o.rate = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 's':
			o.umdevd = strstr(optarg, "umdevd") != NULL;
			o.qsd = strstr(optarg, "qsd") != NULL;
			break;
		case 'u':
			o.umdevd_path = optarg;
			break;
		case 'Q':
			o.qsd_path = optarg;
			break;
		case 'R':
			o.rounds = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			if (!strcmp(optarg, "any")) {
				o.place = PLACE_ANY;
			} else if (!strcmp(optarg, "cross")) {
				o.place = PLACE_CROSS;
			} else if (!strcmp(optarg, "same")) {
				o.place = PLACE_SAME;
			} else {
				usage();
				return 2;
			}
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (!o.ndev || o.duration <= 0 || !o.rate || (o.umdevd && !o.umdevd_path) ||
	    !o.rounds || o.rounds > MAX_ROUNDS ||
	    (o.place != PLACE_ANY && sysconf(_SC_NPROCESSORS_ONLN) < 2)) {
		usage();
		return 2;
	}
	raise_nofile();
	/* Paced sleeps of tens of microseconds: don't let the default 50 us slack stretch them. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	if (umdev_proc_tmpdir(o.dir, sizeof(o.dir)) < 0) {
		perror("tmpdir");
		return 1;
	}
	cl = calloc(o.ndev, sizeof(*cl));
	if (!cl)
		return 1;
	printf("umdev-bench-idle: %ld CPUs, load average before: ", sysconf(_SC_NPROCESSORS_ONLN));
	fflush(stdout);
	if (system("cut -d' ' -f1-3 /proc/loadavg") != 0)
		printf("?\n");
	if (o.idle && o.umdevd)
		r |= idle_umdevd(&o, cl);
	if (o.idle && o.qsd)
		r |= idle_qsd(&o, cl);
	if (o.irq)
		r |= irq_bench(&o);
	free(cl);
	umdev_proc_rmtree(o.dir);
	return r ? 1 : 0;
}
