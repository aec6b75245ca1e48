/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev-bench-nvme: 4 KiB random-read IOPS of umdevd's NVMe controller over
 * vfio-user, at each queue depth asked (default 1 and 32), with the
 * server's CPU time per I/O.
 *
 * The namespace is null:SIZE, so the numbers measure the vfio-user/NVMe data
 * path (doorbell polling, PRP translation, completion posting), not storage.
 * The host side is our vfio-user client plus our NVMe host driver: guest
 * memory is a memfd given with DMA_MAP, doorbells are written to the mmapped
 * doorbell page, and the client busy-polls its completion queue, created
 * without interrupts so the client's wake-ups stay out of the numbers. The
 * server's CPU time comes from /proc/PID/stat around each measurement.
 *
 * Usage: umdev-bench-nvme [--duration SEC] [--qd N[,N...]] [--umdevd PATH]
 *                         [--dev-extra ",poll=on"] [--shadow] [--label TEXT]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

struct host {
	struct umdev_vfuc c;
	struct umdev_nvmed d;
	struct umdev_nvmed_bus bus;
};

static int reg_read(void *opaque, uint32_t off, void *buf, unsigned len)
{
	return umdev_vfuc_region_read(&((struct host *)opaque)->c, 0, off, buf, len);
}

static int reg_write(void *opaque, uint32_t off, const void *buf, unsigned len)
{
	return umdev_vfuc_region_write(&((struct host *)opaque)->c, 0, off, buf, len);
}

static int host_up(struct host *h, const char *sock, bool shadow)
{
	uint8_t info[512];
	void *db;
	int fd = -1, r;

	r = umdev_vfuc_connect(&h->c, sock, 3000);
	if (!r)
		r = umdev_vfuc_version(&h->c, NULL);
	if (!r)
		r = umdev_vfuc_add_mem(&h->c, GUEST_IOVA, GUEST_SIZE, true,
				       VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE);
	if (!r)
		r = umdev_vfuc_region_info(&h->c, 0, info, sizeof(info), &fd);
	if (r)
		return r;
	if (fd < 0)
		return -ENODEV;
	db = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, NVME_REG_DBS);
	close(fd);
	if (db == MAP_FAILED)
		return -errno;
	r = umdev_vfuc_cfg_write(&h->c, 4, 0x6, 2); /* memory space + bus master */
	if (r)
		return r;
	h->bus.reg_read = reg_read;
	h->bus.reg_write = reg_write;
	h->bus.doorbells = db;
	umdev_nvmed_init(&h->d, &h->bus, h, umdev_vfuc_mem_ptr(&h->c, GUEST_IOVA, GUEST_SIZE),
			 GUEST_IOVA, GUEST_SIZE);
	r = umdev_nvmed_enable(&h->d, 32);
	if (!r && shadow)
		r = umdev_nvmed_dbbuf(&h->d);
	if (!r)
		r = umdev_nvmed_create_qpair(&h->d, 1, QSIZE, false);
	return r < 0 ? r : r ? -EIO : 0;
}

/* Keep @qd reads in flight for @secs; returns completions or -errno. */
static int64_t run_load(struct host *h, struct nvme_sqe *cmds, unsigned qd, double secs,
			uint64_t *seed)
{
	uint64_t nblocks = NS_BYTES / IO_BYTES;
	double end = bench_mono_s() + secs;
	unsigned inflight = 0;
	int64_t done = 0;
	bool stop = false;

	while (!stop || inflight) {
		struct nvme_cqe e;

		if (!stop) {
			unsigned k = 0;

			while (inflight + k < qd) {
				struct nvme_sqe *c = &cmds[k];
				uint64_t slba = (bench_xorshift(seed) % nblocks) * (IO_BYTES / 512);

				c->cdw10 = (uint32_t)slba;
				c->cdw11 = (uint32_t)(slba >> 32);
				k++;
			}
			if (k) {
				int r = umdev_nvmed_submit_batch(&h->d, 1, cmds, k);

				if (r < 0)
					return r;
				inflight += k;
			}
			if (bench_mono_s() >= end)
				stop = true;
		}
		while (inflight && umdev_nvmed_cq_ready(&h->d, 1)) {
			if (umdev_nvmed_reap(&h->d, 1, &e) < 0)
				return -ETIMEDOUT;
			if ((e.status >> 1) & 0x7ff)
				return -EIO;
			inflight--;
			done++;
		}
	}
	return done;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "qd", required_argument, NULL, 'q' },
		{ "umdevd", required_argument, NULL, 'u' },
		{ "dev-extra", required_argument, NULL, 'x' },
		{ "shadow", no_argument, NULL, 's' },
		{ "label", required_argument, NULL, 'l' },
		{ 0 },
	};
	const char *umdevd = UMDEVD_DEFAULT_PATH, *extra = "", *label = "";
	unsigned qds[MAX_QDS] = { 1, 32 }, nqds = 2;
	double duration = 3;
	bool shadow = false;
	char dir[128], sock[192], log[192], dev[512];
	struct umdev_proc proc;
	struct host h;
	struct nvme_sqe *cmds;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'd': duration = atof(optarg); break;
		case 'u': umdevd = optarg; break;
		case 'x': extra = optarg; break;
		case 's': shadow = true; break;
		case 'l': label = optarg; break;
		case 'q': {
			char *s = optarg, *end;

			for (nqds = 0; *s && nqds < MAX_QDS; s = *end ? end + 1 : end) {
				unsigned long v = strtoul(s, &end, 10);

				if (!v || v >= QSIZE || (*end && *end != ',')) {
					fprintf(stderr, "bad --qd\n");
					return 2;
				}
				qds[nqds++] = (unsigned)v;
			}
			break;
		}
		default:
			fprintf(stderr, "usage: umdev-bench-nvme [--duration SEC] [--qd N[,N..]] "
					"[--umdevd PATH] [--dev-extra ,k=v] [--shadow] [--label T]\n");
			return 2;
		}
	}
	if (!umdevd) {
		fprintf(stderr, "umdev-bench-nvme: --umdevd PATH is required\n");
		return 2;
	}
	if (umdev_proc_tmpdir(dir, sizeof(dir)) < 0)
		return 1;
	snprintf(sock, sizeof(sock), "%s/nvme.sock", dir);
	snprintf(log, sizeof(log), "%s/umdevd.log", dir);
	snprintf(dev, sizeof(dev), "nvme,id=nvme0,socket=%s,ns=null:1G,queues=1%s", sock, extra);
	{
		char *av[] = { (char *)umdevd, "--device", dev, NULL };

		r = umdev_proc_spawn(&proc, av, log);
	}
	if (!r)
		r = umdev_proc_wait_socket(&proc, sock, 10000);
	if (r) {
		fprintf(stderr, "umdevd did not start (%s); see %s\n", strerror(-r), log);
		return 1;
	}
	memset(&h, 0, sizeof(h));
	r = host_up(&h, sock, shadow);
	if (r) {
		fprintf(stderr, "NVMe bring-up failed: %d; see %s\n", r, log);
		umdev_proc_stop(&proc, 2000);
		return 1;
	}
	cmds = calloc(QSIZE, sizeof(*cmds));
	for (unsigned i = 0; cmds && i < QSIZE; i++) {
		uint64_t buf = umdev_nvmed_alloc(&h.d, IO_BYTES, 4096);

		if (!buf || umdev_nvmed_build_rw(&h.d, &cmds[i], NVME_CMD_READ, 1, 0,
						 IO_BYTES / 512, buf, IO_BYTES, false, false)) {
			fprintf(stderr, "out of guest memory\n");
			return 1;
		}
	}
	printf("# umdev-bench-nvme %s: 4 KiB random reads, null namespace, %.1f s per point%s\n",
	       label, duration, shadow ? ", shadow doorbells" : "");
	printf("%-6s %12s %10s %16s\n", "qd", "IOPS", "lat_us", "srv_cpu_us/io");
	for (unsigned i = 0; i < nqds; i++) {
		uint64_t s0, s1;
		double t0, t1;
		int64_t n;

		if (run_load(&h, cmds, qds[i], 0.3, &seed) < 0)
			break;
		if (umdev_proc_cpu_ns(proc.pid, &s0))
			break;
		t0 = bench_mono_s();
		n = run_load(&h, cmds, qds[i], duration, &seed);
		t1 = bench_mono_s();
		if (n <= 0 || umdev_proc_cpu_ns(proc.pid, &s1)) {
			fprintf(stderr, "qd %u: load failed (%lld)\n", qds[i], (long long)n);
			r = 1;
			break;
		}
		printf("%-6u %12.0f %10.1f %16.2f\n", qds[i], (double)n / (t1 - t0),
		       (t1 - t0) * 1e6 * qds[i] / (double)n, (double)(s1 - s0) / 1e3 / (double)n);
		fflush(stdout);
	}
	free(cmds);
	umdev_vfuc_close(&h.c);
	umdev_proc_stop(&proc, 5000);
	umdev_proc_rmtree(dir);
	return r ? 1 : 0;
}
