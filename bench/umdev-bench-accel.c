/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev-bench-accel: copy throughput of umdevd's accel virtual devices over
 * vfio-user (4 KiB and 64 KiB descriptors, several batch sizes, one and two
 * virtual devices sharing the parent's engines), completion interrupts per
 * second, the trapped portal against the mapped ring, and plain memcpy in
 * the client as the baseline (there is no other userspace DSA-like device
 * server to compare with).
 *
 * Each virtual device is driven by its own client process (client/
 * accel_drv.h): descriptors go to the mapped ring, the client busy-polls the
 * last completion record of each batch (or, for the interrupt rows, sleeps
 * in poll() on the vector's eventfd). Client CPU comes from getrusage of the
 * children, server CPU from /proc/PID/stat, both per descriptor.
 *
 * Usage: umdev-bench-accel [--duration SEC] [--engines N] [--umdevd PATH]
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/accel_drv.h"
#include "client/proc_util.h"

#include "bench_util.h"

#ifndef UMDEVD_DEFAULT_PATH
#define UMDEVD_DEFAULT_PATH NULL
#endif

#define MEM (8u << 20)
#define WQ 256

enum mode { RING, PORTAL, IRQ, MEMCPY };

struct result {
	uint64_t descs, bytes;
	int err;
};

static double duration = 2.0;

/* One client process: @size-byte copies in batches of @batch for the duration. */
static void client(const char *sock, enum mode mode, uint32_t size, unsigned batch,
		   struct result *out)
{
	struct accel_drv d;
	uint64_t src, dst, comp;
	double end;
	int ret;

	if (mode == MEMCPY) {
		uint8_t *a = malloc(size), *b = malloc(size);

		memset(a, 1, size);
		end = bench_mono_s() + duration;
		while (bench_mono_s() < end) {
			for (unsigned i = 0; i < batch; i++) {
				memcpy(b, a, size);
				__asm__ __volatile__("" ::"r"(b) : "memory");
			}
			out->descs += batch;
		}
		out->bytes = out->descs * size;
		_exit(0);
	}
	ret = accel_drv_open(&d, sock, MEM);
	if (ret == 0 && mode == IRQ)
		ret = accel_drv_msix(&d, 0, 2);
	if (ret == 0)
		ret = accel_drv_cmd(&d, ACCEL_CMD_ENABLE);
	if (ret < 0) {
		out->err = ret;
		_exit(1);
	}
	src = accel_drv_alloc(&d, size, 4096);
	dst = accel_drv_alloc(&d, size, 4096);
	comp = accel_drv_alloc(&d, 32ull * WQ, 32);
	memset(accel_drv_ptr(&d, src), 1, size);
	end = bench_mono_s() + duration;
	while (bench_mono_s() < end) {
		struct accel_desc x[WQ];
		uint64_t last = comp + 32ull * (batch - 1);

		for (unsigned i = 0; i < batch; i++) {
			bool tail = i == batch - 1;

			x[i] = accel_drv_copy_desc(&d, src, dst, size, comp + 32ull * i,
						   tail && mode == IRQ ? 1 : 0);
			x[i].flags = tail ? x[i].flags : 0; /* one record per batch */
		}
		memset(accel_drv_ptr(&d, last), 0, 32);
		if (mode == PORTAL) {
			ret = accel_drv_submit_portal(&d, x, batch);
		} else {
			for (unsigned i = 0; i < batch && ret == 0; i++)
				ret = accel_drv_submit(&d, &x[i], 5000);
		}
		if (ret < 0)
			break;
		if (mode == IRQ) {
			struct pollfd p = { .fd = d.efd[1], .events = POLLIN };

			if (poll(&p, 1, 5000) != 1 || accel_drv_irqs(&d, 1, 1, 0) != 1) {
				ret = -ETIMEDOUT;
				break;
			}
		}
		if (accel_drv_wait(&d, last, 5000) != ACCEL_ST_SUCCESS) {
			ret = -EIO;
			break;
		}
		out->descs += batch;
	}
	out->bytes = out->descs * size;
	out->err = ret;
	accel_drv_close(&d);
	_exit(ret < 0);
}

static const char *mode_name(enum mode m)
{
	return m == RING ? "ring" : m == PORTAL ? "portal" : m == IRQ ? "ring+irq" : "memcpy";
}

static int row(struct umdev_proc *srv, char socks[2][256], unsigned nvdev, enum mode mode,
	       uint32_t size, unsigned batch)
{
	struct result *res = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				  -1, 0);
	uint64_t s0 = 0, s1 = 0, descs = 0, bytes = 0, ccpu;
	struct rusage ru0, ru1;
	pid_t pids[2];
	double t0, t;
	int bad = 0;

	if (res == MAP_FAILED)
		return -errno;
	memset(res, 0, 4096);
	getrusage(RUSAGE_CHILDREN, &ru0);
	if (mode != MEMCPY && umdev_proc_cpu_ns(srv->pid, &s0))
		return -EIO;
	t0 = bench_mono_s();
	for (unsigned i = 0; i < nvdev; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			client(socks[i], mode, size, batch, &res[i]);
	}
	for (unsigned i = 0; i < nvdev; i++) {
		int st = 0;

		waitpid(pids[i], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) || res[i].err;
		descs += res[i].descs;
		bytes += res[i].bytes;
	}
	t = bench_mono_s() - t0;
	if (mode != MEMCPY && umdev_proc_cpu_ns(srv->pid, &s1))
		return -EIO;
	getrusage(RUSAGE_CHILDREN, &ru1);
	ccpu = (uint64_t)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
			  ru0.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
			  ru0.ru_stime.tv_usec) * 1000ull;
	printf("%-9s %5u %6u %5u %10.0f %9.2f %12.0f %12.0f%s\n", mode_name(mode), nvdev,
	       size / 1024, batch, (double)descs / t, (double)bytes / t / 1e9,
	       descs ? (double)ccpu / (double)descs : 0,
	       descs && mode != MEMCPY ? (double)(s1 - s0) / (double)descs : 0,
	       bad ? "  (failed)" : "");
	fflush(stdout);
	munmap(res, 4096);
	return bad ? -EIO : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "duration", 1, NULL, 'd' },
					      { "engines", 1, NULL, 'e' },
					      { "umdevd", 1, NULL, 'u' },
					      { NULL, 0, NULL, 0 } };
	const char *umdevd = getenv("UMDEVD") ? getenv("UMDEVD") : UMDEVD_DEFAULT_PATH;
	char dir[128], log[256], socks[2][256], parent[64], v[2][640];
	static const uint32_t sizes[] = { 4096, 65536 };
	static const unsigned batches[] = { 1, 16, 64 };
	struct umdev_proc srv;
	unsigned engines = 1;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd')
			duration = atof(optarg);
		else if (c == 'e')
			engines = (unsigned)atoi(optarg);
		else if (c == 'u')
			umdevd = optarg;
		else
			return 2;
	}
	if (!umdevd || umdev_proc_tmpdir(dir, sizeof(dir)) < 0)
		return 2;
	snprintf(log, sizeof(log), "%s/umdevd.log", dir);
	snprintf(parent, sizeof(parent), "accel,id=accel0,engines=%u", engines);
	for (unsigned i = 0; i < 2; i++) {
		snprintf(socks[i], sizeof(socks[i]), "%s/v%u.sock", dir, i);
		snprintf(v[i], sizeof(v[i]), "accel-vdev,id=v%u,parent=accel0,socket=%s,wq-size=%u",
			 i, socks[i], WQ);
	}
	{
		char threads[16];
		char *av[] = { (char *)umdevd, "--rpc", "none", "--threads", threads,
			       "--device", parent, "--device", v[0], "--device", v[1], NULL };

		snprintf(threads, sizeof(threads), "%u", engines);
		if (umdev_proc_spawn(&srv, av, log) < 0 ||
		    umdev_proc_wait_socket(&srv, socks[1], 10000) < 0) {
			bench_dump_log(log);
			return 1;
		}
	}
	printf("accel over vfio-user, %u engine(s), %.1f s per row; CPU in ns per descriptor\n",
	       engines, duration);
	printf("%-9s %5s %6s %5s %10s %9s %12s %12s\n", "path", "vdevs", "KiB", "batch",
	       "desc/s", "GB/s", "client-cpu", "server-cpu");
	for (unsigned s = 0; s < 2; s++) {
		for (unsigned n = 1; n <= 2; n++)
			for (unsigned b = 0; b < 3; b++)
				ret |= row(&srv, socks, n, RING, sizes[s], batches[b]);
		ret |= row(&srv, socks, 1, PORTAL, sizes[s], 16);
		ret |= row(&srv, socks, 1, MEMCPY, sizes[s], 16);
	}
	ret |= row(&srv, socks, 1, IRQ, 4096, 1);
	ret |= row(&srv, socks, 2, IRQ, 4096, 1);
	umdev_proc_stop(&srv, 5000);
	if (ret)
		bench_dump_log(log);
	umdev_proc_rmtree(dir);
	return ret ? 1 : 0;
}
