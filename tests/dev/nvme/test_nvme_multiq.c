/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe over many loops and in interrupt mode, against a real umdevd with
 * two data-plane loops (--threads 2), our vfio-user client as the VMM and
 * our NVMe host driver as the guest:
 * - verified I/O on every one of several I/O queue pairs (spread over both
 *   loops: both loop threads run, and `umdevctl stats` says which serves
 *   each queue), with trapped doorbells and with shadow doorbells;
 * - an idle controller makes no wake-ups: with the controller enabled,
 *   queues created and I/O done, the daemon's threads together switch
 *   context only a handful of times in a second (the old 200 us idle timer
 *   made 5,000), and the first command after the idle second still runs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/nvme_drv.h"
#include "proto_common.h"
#include "umdev/proto/pci_regs.h"

#define IOVA 0x100000000ull
#define MEM (8u << 20)
#define NQ 4 /* I/O queue pairs */
#define NVEC (NQ + 1)
#define BLOCKS 2048 /* 1 MiB file namespace of 512-byte blocks */

static struct proto_srv srv;

static int setup(void **state)
{
	proto_srv_init(&srv, 1u << 20);
	proto_start_umdevd(&srv, "--threads", "2", "--rpc", "@SOCK2@", "--device",
			   "nvme,id=nvme0,socket=@SOCK@,ns=file:@DISK@,queues=8,poll-us=50", NULL);
	return 0;
}

static int teardown(void **state)
{
	assert_true(proto_stop_alive(&srv));
	return 0;
}

static void host_up(struct umdev_nvmed_vfu *h, bool shadow)
{
	assert_int_equal(umdev_nvmed_vfu_open(h, srv.sock, IOVA, MEM), 0);
	/* Doorbells trap unless poll=on: nothing to mmap. */
	assert_null(h->bus.doorbells);
	/* With shadow doorbells, as QEMU does: the trapped writes go out posted. */
	h->posted_doorbells = shadow;
	assert_int_equal(umdev_nvmed_vfu_command(h, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER, 0),
			 0);
	assert_int_equal(umdev_nvmed_vfu_msix(h, NVEC), 0);
	assert_int_equal(umdev_nvmed_enable(&h->d, 32), 0);
	if (shadow)
		assert_int_equal(umdev_nvmed_dbbuf(&h->d), 0);
	for (uint16_t q = 1; q <= NQ; q++)
		assert_int_equal(umdev_nvmed_create_qpair(&h->d, q, 64, true), 0);
}

/* Write a pattern through queue @q and read it back through queue @q2. */
static void rw_check(struct umdev_nvmed_vfu *h, uint16_t q, uint16_t q2, uint64_t slba,
		     uint64_t seed, uint64_t wb, uint64_t rb)
{
	struct nvme_sqe c;

	proto_fill(umdev_nvmed_ptr(&h->d, wb), 4096, seed);
	memset(umdev_nvmed_ptr(&h->d, rb), 0, 4096);
	assert_int_equal(umdev_nvmed_build_rw(&h->d, &c, NVME_CMD_WRITE, 1, slba, 8, wb, 4096,
					      false, false), 0);
	assert_int_equal(umdev_nvmed_cmd(&h->d, q, &c, NULL), 0);
	assert_int_equal(umdev_nvmed_build_rw(&h->d, &c, NVME_CMD_READ, 1, slba, 8, rb, 4096,
					      (seed & 1) != 0, false), 0);
	assert_int_equal(umdev_nvmed_cmd(&h->d, q2, &c, NULL), 0);
	assert_true(proto_check(umdev_nvmed_ptr(&h->d, rb), 4096, seed));
}

/* QD16 on every queue at once, each command checked by its own pattern. */
static void all_queues_deep(struct umdev_nvmed_vfu *h, uint64_t round)
{
	enum { DEPTH = 16 };
	uint64_t buf[NQ + 1][DEPTH];
	struct nvme_sqe c[DEPTH];
	struct nvme_cqe e;

	for (uint16_t q = 1; q <= NQ; q++) {
		for (unsigned i = 0; i < DEPTH; i++) {
			uint64_t slba = ((q - 1) * DEPTH + i) * 8;

			buf[q][i] = umdev_nvmed_alloc(&h->d, 4096, 4096);
			assert_true(buf[q][i] != 0);
			proto_fill(umdev_nvmed_ptr(&h->d, buf[q][i]), 4096, round * 1000 + slba);
			assert_int_equal(umdev_nvmed_build_rw(&h->d, &c[i], NVME_CMD_WRITE, 1, slba,
							      8, buf[q][i], 4096, i & 1, false), 0);
		}
		assert_true(umdev_nvmed_submit_batch(&h->d, q, c, DEPTH) >= 0);
	}
	for (uint16_t q = 1; q <= NQ; q++)
		for (unsigned i = 0; i < DEPTH; i++) {
			assert_int_equal(umdev_nvmed_reap(&h->d, q, &e), 0);
			assert_int_equal(e.sqid, q);
			assert_int_equal((e.status >> 1) & 0x7ff, 0);
		}
	/* Read everything back through a different queue than wrote it. */
	for (uint16_t q = 1; q <= NQ; q++) {
		uint16_t rq = q % NQ + 1;

		for (unsigned i = 0; i < DEPTH; i++) {
			uint64_t slba = ((q - 1) * DEPTH + i) * 8;

			memset(umdev_nvmed_ptr(&h->d, buf[q][i]), 0, 4096);
			assert_int_equal(umdev_nvmed_build_rw(&h->d, &c[i], NVME_CMD_READ, 1, slba, 8,
							      buf[q][i], 4096, false, false), 0);
		}
		assert_true(umdev_nvmed_submit_batch(&h->d, rq, c, DEPTH) >= 0);
		for (unsigned i = 0; i < DEPTH; i++) {
			assert_int_equal(umdev_nvmed_reap(&h->d, rq, &e), 0);
			assert_int_equal((e.status >> 1) & 0x7ff, 0);
		}
		for (unsigned i = 0; i < DEPTH; i++) {
			uint64_t slba = ((q - 1) * DEPTH + i) * 8;

			assert_true(proto_check(umdev_nvmed_ptr(&h->d, buf[q][i]), 4096,
						round * 1000 + slba));
		}
	}
}

/* The image holds what queue q wrote (checked in the file, not through the device). */
static void check_file(uint64_t round)
{
	int fd = open(srv.disk, O_RDONLY);
	uint8_t b[4096];

	assert_true(fd >= 0);
	for (unsigned q = 1; q <= NQ; q++)
		for (unsigned i = 0; i < 16; i++) {
			uint64_t slba = ((q - 1) * 16 + i) * 8;

			assert_int_equal(pread(fd, b, sizeof(b), (off_t)(slba * 512)),
					 (ssize_t)sizeof(b));
			assert_true(proto_check(b, sizeof(b), round * 1000 + slba));
		}
	close(fd);
}

#define MAX_TASKS 256

/* The thread ids of @pid now; returns how many (at most MAX_TASKS). */
static unsigned tasks(pid_t pid, int *tid)
{
	char path[64];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) && n < MAX_TASKS)
		if (de->d_name[0] != '.')
			tid[n++] = atoi(de->d_name);
	closedir(d);
	return n;
}

/* CPU time (ns, from schedstat) of @pid's threads named @comm; 0 if none. */
static uint64_t thread_ns(pid_t pid, const char *comm)
{
	int tid[MAX_TASKS];
	unsigned n = tasks(pid, tid);
	unsigned long long ns = 0;

	for (unsigned i = 0; i < n; i++) {
		char path[96], name[64];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, tid[i]);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(name, sizeof(name), f))
			name[0] = 0;
		fclose(f);
		name[strcspn(name, "\n")] = 0;
		if (strcmp(name, comm))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, tid[i]);
		f = fopen(path, "r");
		if (f) {
			unsigned long long v;

			if (fscanf(f, "%llu", &v) == 1)
				ns += v;
			fclose(f);
		}
	}
	return ns;
}

/* `umdevctl stats`: which loop serves each SQ (-1: the control thread). */
static void check_loops_in_stats(void)
{
	char cmd[512], out[8192];
	bool seen[3] = { false, false, false }; /* -1, 0, 1 */
	size_t len;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s --rpc %s --json stats nvme0", getenv("UMDEVCTL"),
		 srv.sock2);
	p = popen(cmd, "r");
	assert_non_null(p);
	len = fread(out, 1, sizeof(out) - 1, p);
	out[len] = 0;
	assert_int_equal(pclose(p), 0);
	for (char *k = strstr(out, "\"loop\""); k; k = strstr(k + 1, "\"loop\"")) {
		long v = strtol(k + 7 + strspn(k + 7, ": "), NULL, 10);

		assert_true(v >= -1 && v <= 1);
		seen[v + 1] = true;
	}
	assert_true(seen[0] && seen[1] && seen[2]);
}

static void test_every_queue(void **state)
{
	struct umdev_nvmed_vfu h;
	uint64_t wb, rb, dp0, dp1;

	dp0 = thread_ns(srv.proc.pid, "umdev-dp0");
	dp1 = thread_ns(srv.proc.pid, "umdev-dp1");
	for (int shadow = 0; shadow <= 1; shadow++) {
		host_up(&h, shadow);
		wb = umdev_nvmed_alloc(&h.d, 4096, 4096);
		rb = umdev_nvmed_alloc(&h.d, 4096, 4096);
		for (uint16_t q = 1; q <= NQ; q++)
			rw_check(&h, q, q % NQ + 1, 1024 + q * 8, q + 100 * shadow, wb, rb);
		for (uint64_t round = 1; round <= 3; round++) {
			all_queues_deep(&h, round + 10 * shadow);
			check_file(round + 10 * shadow);
		}
		check_loops_in_stats();
		if (shadow) /* The server polled while busy: few real doorbell writes. */
			assert_true(h.d.db_writes < 3u * 2 * NQ * 16 * 2);
		assert_int_equal(h.d.db_errors, 0);
		umdev_nvmed_vfu_close(&h);
	}
	/*
	 * Queue pairs 1 and 3 belong to one loop, 2 and 4 to the other: both
	 * data-plane threads ran (the admin queue runs on the control thread).
	 */
	dp0 = thread_ns(srv.proc.pid, "umdev-dp0") - dp0;
	dp1 = thread_ns(srv.proc.pid, "umdev-dp1") - dp1;
	print_message("CPU of the two loops during the I/O: %llu us, %llu us\n",
		      (unsigned long long)dp0 / 1000, (unsigned long long)dp1 / 1000);
	assert_true(dp0 > 1000000 / 4 && dp1 > 1000000 / 4);
}

struct ctxsw {
	unsigned n;
	int tid[MAX_TASKS];
	unsigned long sw[MAX_TASKS];
};

/* Context switches so far of every thread of @pid. */
static void ctx_switches(pid_t pid, struct ctxsw *out)
{
	out->n = tasks(pid, out->tid);
	for (unsigned i = 0; i < out->n; i++) {
		char path[96], line[256];
		FILE *f;

		out->sw[i] = 0;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, out->tid[i]);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned long v;

			if (sscanf(line, "voluntary_ctxt_switches: %lu", &v) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %lu", &v) == 1)
				out->sw[i] += v;
		}
		fclose(f);
	}
}

/* Switches between two samples, over the threads alive in both (workers may exit). */
static unsigned long ctx_delta(const struct ctxsw *a, const struct ctxsw *b)
{
	unsigned long total = 0;

	for (unsigned i = 0; i < b->n; i++)
		for (unsigned j = 0; j < a->n; j++)
			if (a->tid[j] == b->tid[i] && b->sw[i] >= a->sw[j])
				total += b->sw[i] - a->sw[j];
	return total;
}

static void test_idle_sleeps(void **state)
{
	struct umdev_nvmed_vfu h;
	uint64_t wb, rb;
	struct ctxsw before, after;
	unsigned long n;

	host_up(&h, true);
	wb = umdev_nvmed_alloc(&h.d, 4096, 4096);
	rb = umdev_nvmed_alloc(&h.d, 4096, 4096);
	for (uint16_t q = 1; q <= NQ; q++)
		rw_check(&h, q, q, q * 8, q, wb, rb);
	/* Let the loops pass poll-us and go to sleep (well beyond 50 us). */
	usleep(200000);
	ctx_switches(srv.proc.pid, &before);
	sleep(1);
	ctx_switches(srv.proc.pid, &after);
	n = ctx_delta(&before, &after);
	print_message("umdevd context switches in 1 s idle: %lu\n", n);
	/* A periodic check of the doorbells, even at 1 kHz, would be hundreds. */
	assert_true(n < 50);
	/* Asleep, it still wakes for the next command on every queue. */
	for (uint16_t q = 1; q <= NQ; q++)
		rw_check(&h, q, q, q * 8 + 512, q + 50, wb, rb);
	umdev_nvmed_vfu_close(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_sleeps, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
