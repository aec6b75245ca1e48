/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device-side split virtqueue (src/virtio) driven by our driver-side queue
 * (src/client/virtq_drv.c).
 *
 * Guest memory is one memfd, seen twice: the device through the address
 * space's own mmaps of two adjacent regions (A and B, so buffers can cross a
 * region boundary), the driver through a separate mmap of the whole first
 * MiB. The two views sit at different host addresses, so any translation
 * mistake shows up as wrong data rather than passing by accident. Two more
 * small regions, past a gap, are read-only (C) and write-only (D).
 *
 * Hostile cases write the descriptor table and avail ring by hand and check
 * that the queue goes BROKEN with exactly one error line and no crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/virtq_drv.h"
#include "umdev/mem.h"
#include "umdev/vq.h"

#define MEMFD_SIZE 0x200000ull
#define GPA_A 0x100000ull /* region A: RW, 512 KiB, memfd offset 0 */
#define GPA_B 0x180000ull /* region B: RW, 512 KiB, adjacent to A */
#define REGION_AB 0x80000ull
#define GPA_C 0x400000ull /* read-only, 64 KiB, memfd offset 1 MiB */
#define GPA_D 0x410000ull /* write-only, 64 KiB */
#define REGION_CD 0x10000ull
#define GPA_GAP 0x300000ull /* no region here */
#define DRV_SIZE 0x100000ull /* driver window: A and B */
#define RING_GPA GPA_A
#define BUF_GPA 0x110000ull
#define IND_GPA 0x140000ull
#define MAX_IOV 16

struct fx {
	int memfd;
	umdev_as *as;
	umdev_as_map *map;
	uint8_t *drv_mem;
	struct umdev_vqd d;
	umdev_vq *vq;
	struct umdev_vq_config cfg;
	int call_fd;
	struct vhost_user_inflight_queue *inflight;
};

static void add_region(struct fx *f, uint64_t gpa, uint64_t size, uint64_t off, unsigned prot)
{
	struct umdev_mem_region_desc rd = {
		.guest_addr = gpa, .size = size, .mmap_offset = off,
		.fd = dup(f->memfd), .prot = prot,
	};

	assert_true(rd.fd >= 0);
	assert_int_equal(umdev_as_add_region(f->as, &rd), 0);
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int err = 0;

	assert_non_null(f);
	f->memfd = memfd_create("umdev-vq-test", MFD_CLOEXEC);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, MEMFD_SIZE), 0);
	f->as = umdev_as_new(&err);
	assert_non_null(f->as);
	add_region(f, GPA_A, REGION_AB, 0, UMDEV_MEM_READ | UMDEV_MEM_WRITE);
	add_region(f, GPA_B, REGION_AB, REGION_AB, UMDEV_MEM_READ | UMDEV_MEM_WRITE);
	add_region(f, GPA_C, REGION_CD, DRV_SIZE, UMDEV_MEM_READ);
	add_region(f, GPA_D, REGION_CD, DRV_SIZE + REGION_CD, UMDEV_MEM_WRITE);
	f->map = umdev_as_get_map(f->as);
	f->drv_mem = mmap(NULL, DRV_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->drv_mem != MAP_FAILED);
	f->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(f->call_fd >= 0);
	f->vq = umdev_vq_new("test.q0", &err);
	assert_non_null(f->vq);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	if (f->vq) {
		(void)umdev_vq_stop(f->vq);
		umdev_vq_free(f->vq);
	}
	umdev_vqd_fini(&f->d);
	umdev_as_map_put(f->map);
	umdev_as_free(f->as);
	munmap(f->drv_mem, DRV_SIZE);
	close(f->call_fd);
	close(f->memfd);
	free(f->inflight);
	free(f);
	return 0;
}

/* Lay out the driver ring and start the device on it. */
static void fx_start(struct fx *f, uint16_t size, bool event_idx, bool indirect)
{
	umdev_vqd_fini(&f->d);
	assert_int_equal(umdev_vqd_init(&f->d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA, size,
					 event_idx), 0);
	f->cfg = (struct umdev_vq_config){
		.size = size, .desc_addr = f->d.desc_gpa, .avail_addr = f->d.avail_gpa,
		.used_addr = f->d.used_gpa, .event_idx = event_idx, .indirect = indirect,
	};
	umdev_vq_set_call_fd(f->vq, f->call_fd);
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);
}

static void *drv_ptr(struct fx *f, uint64_t gpa)
{
	assert_true(gpa >= GPA_A && gpa < GPA_A + DRV_SIZE);
	return f->drv_mem + (gpa - GPA_A);
}

static void fill(struct fx *f, uint64_t gpa, size_t len, uint8_t seed)
{
	uint8_t *p = drv_ptr(f, gpa);

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* Concatenate @n iovecs and compare them with the driver's view of @gpa. */
static void check_iov_data(struct fx *f, const struct iovec *iov, unsigned n, uint64_t gpa,
			   size_t len)
{
	const uint8_t *want = drv_ptr(f, gpa);
	size_t off = 0;

	for (unsigned i = 0; i < n; i++) {
		/* Two mappings: the device must never hand out the driver's. */
		assert_true((uint8_t *)iov[i].iov_base < f->drv_mem ||
			    (uint8_t *)iov[i].iov_base >= f->drv_mem + DRV_SIZE);
		assert_true(off + iov[i].iov_len <= len);
		assert_memory_equal(iov[i].iov_base, want + off, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	assert_int_equal(off, len);
}

static uint64_t read_call(struct fx *f)
{
	uint64_t v = 0;

	if (read(f->call_fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Publish @head in the avail ring by hand (hostile tests). */
static void publish(struct fx *f, uint16_t head)
{
	struct umdev_vqd *d = &f->d;

	d->avail->ring[d->avail_idx & (d->size - 1)] = head;
	d->avail_idx++;
	__atomic_store_n(&d->avail->idx, d->avail_idx, __ATOMIC_RELEASE);
}

static void set_desc(struct fx *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	f->d.desc[i] = (struct virtq_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static struct virtq_desc *ind_table(struct fx *f)
{
	return drv_ptr(f, IND_GPA);
}

/*
 * Pop with stderr captured: expect -EIO, BROKEN, exactly one log line
 * naming the queue and containing @what, and no state change; a second pop
 * stays -EIO without logging again.
 */
static void expect_broken(struct fx *f, unsigned max_iov, const char *what)
{
	struct iovec *iov = calloc(max_iov ? max_iov : 1, sizeof(*iov));
	uint16_t last = umdev_vq_last_avail_idx(f->vq);
	unsigned inuse = umdev_vq_inuse(f->vq);
	struct umdev_vq_elem e;
	char log[4096] = { 0 };
	int p[2], saved, r1, r2, lines = 0;
	ssize_t n;

	assert_non_null(iov);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	r1 = umdev_vq_pop(f->vq, &e, iov, max_iov);
	r2 = umdev_vq_pop(f->vq, &e, iov, max_iov);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	n = read(p[0], log, sizeof(log) - 1);
	close(p[0]);
	free(iov);

	if (n > 0)
		fprintf(stderr, "(captured) %s", log);
	assert_int_equal(r1, -EIO);
	assert_int_equal(r2, -EIO);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_BROKEN);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq), last);
	assert_int_equal(umdev_vq_inuse(f->vq), inuse);
	assert_true(n > 0);
	for (ssize_t i = 0; i < n; i++)
		lines += log[i] == '\n';
	assert_int_equal(lines, 1);
	assert_non_null(strstr(log, "test.q0"));
	assert_non_null(strstr(log, what));
	/* Nothing further happens on a broken queue. */
	assert_false(umdev_vq_has_avail(f->vq));
	assert_int_equal(umdev_vq_notify(f->vq), 0);
}

/* ---- normal operation ---- */

static void test_simple_chain(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b = { .addr = BUF_GPA, .len = 100 };
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	uint16_t head;
	uint32_t len;
	int h;

	fx_start(f, 16, false, false);
	assert_int_equal(umdev_vq_size(f->vq), 16);
	assert_false(umdev_vq_has_avail(f->vq));
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 0);
	fill(f, BUF_GPA, 100, 3);
	h = umdev_vqd_add(&f->d, &b, 1, 0);
	assert_true(h >= 0);
	assert_true(umdev_vq_has_avail(f->vq));
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.head, h);
	assert_ptr_equal(e.iov, iov);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 0);
	assert_int_equal(e.out_len, 100);
	assert_int_equal(e.in_len, 0);
	check_iov_data(f, iov, 1, BUF_GPA, 100);
	assert_int_equal(umdev_vq_inuse(f->vq), 1);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq), 1);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 0);

	assert_int_equal(umdev_vqd_get_used(&f->d, &head, &len), 0);
	umdev_vq_push(f->vq, e.head, 0);
	assert_int_equal(umdev_vq_inuse(f->vq), 0);
	assert_int_equal(f->d.used->idx, 1);
	assert_int_equal(f->d.used->ring[0].id, h);
	assert_int_equal(f->d.used->ring[0].len, 0);
	assert_int_equal(umdev_vqd_get_used(&f->d, &head, &len), 1);
	assert_int_equal(head, h);
	assert_int_equal(len, 0);
	assert_int_equal(umdev_vqd_num_free(&f->d), 16);
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	assert_int_equal(read_call(f), 1);
}

static void test_rw_split(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b[4] = {
		{ .addr = BUF_GPA, .len = 16 },
		{ .addr = BUF_GPA + 0x1000, .len = 200 },
		{ .addr = BUF_GPA + 0x2000, .len = 512, .write = true },
		{ .addr = BUF_GPA + 0x3000, .len = 1, .write = true },
	};
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	uint16_t head;
	uint32_t len;
	uint8_t *w;
	int h;

	fx_start(f, 16, false, false);
	fill(f, BUF_GPA, 16, 1);
	fill(f, BUF_GPA + 0x1000, 200, 2);
	memset(drv_ptr(f, BUF_GPA + 0x2000), 0, 512);
	h = umdev_vqd_add(&f->d, b, 4, 0);
	assert_true(h >= 0);
	assert_int_equal(umdev_vqd_num_free(&f->d), 12);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.n_out, 2);
	assert_int_equal(e.n_in, 2);
	assert_int_equal(e.out_len, 216);
	assert_int_equal(e.in_len, 513);
	check_iov_data(f, &iov[0], 1, BUF_GPA, 16);
	check_iov_data(f, &iov[1], 1, BUF_GPA + 0x1000, 200);
	assert_int_equal(iov[2].iov_len, 512);
	assert_int_equal(iov[3].iov_len, 1);
	/* The device writes through its mapping; the driver sees it in its own. */
	memset(iov[2].iov_base, 0x5a, 512);
	*(uint8_t *)iov[3].iov_base = 0x77;
	umdev_vq_push(f->vq, e.head, 513);
	assert_int_equal(umdev_vqd_get_used(&f->d, &head, &len), 1);
	assert_int_equal(head, h);
	assert_int_equal(len, 513);
	w = drv_ptr(f, BUF_GPA + 0x2000);
	for (int i = 0; i < 512; i++)
		assert_int_equal(w[i], 0x5a);
	assert_int_equal(*(uint8_t *)drv_ptr(f, BUF_GPA + 0x3000), 0x77);
	assert_int_equal(umdev_vqd_num_free(&f->d), 16);
}

static void test_cross_region(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b[2] = {
		{ .addr = GPA_B - 0x1000, .len = 0x2000 },
		{ .addr = GPA_B - 0x100, .len = 0x300, .write = true },
	};
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	uint8_t *w;

	fx_start(f, 16, false, false);
	fill(f, GPA_B - 0x1000, 0x2000, 9);
	assert_true(umdev_vqd_add(&f->d, b, 1, 0) >= 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.n_out, 2);
	assert_int_equal(iov[0].iov_len, 0x1000);
	assert_int_equal(iov[1].iov_len, 0x1000);
	check_iov_data(f, iov, 2, GPA_B - 0x1000, 0x2000);
	umdev_vq_push(f->vq, e.head, 0);

	/* Readable across, then writable across: four iovecs in all. */
	assert_true(umdev_vqd_add(&f->d, b, 2, 0) >= 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.n_out, 2);
	assert_int_equal(e.n_in, 2);
	assert_int_equal(e.in_len, 0x300);
	assert_int_equal(iov[2].iov_len, 0x100);
	assert_int_equal(iov[3].iov_len, 0x200);
	memset(iov[2].iov_base, 0xa1, 0x100);
	memset(iov[3].iov_base, 0xb2, 0x200);
	w = drv_ptr(f, GPA_B - 0x100);
	assert_int_equal(w[0], 0xa1);
	assert_int_equal(w[0xff], 0xa1);
	assert_int_equal(w[0x100], 0xb2);
	assert_int_equal(w[0x2ff], 0xb2);
	umdev_vq_push(f->vq, e.head, 0x300);

	/* Exactly enough iovecs is fine. */
	assert_true(umdev_vqd_add(&f->d, b, 2, 0) >= 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, 4), 1);
	umdev_vq_push(f->vq, e.head, 0);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);
}

static void test_indirect(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b[3] = {
		{ .addr = BUF_GPA, .len = 64 },
		{ .addr = BUF_GPA + 0x1000, .len = 0 }, /* zero length: no iovec */
		{ .addr = GPA_B - 0x10, .len = 0x20, .write = true },
	};
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	uint16_t head;
	uint32_t len;
	int h;

	fx_start(f, 16, false, true);
	fill(f, BUF_GPA, 64, 4);
	h = umdev_vqd_add(&f->d, b, 3, IND_GPA);
	assert_true(h >= 0);
	assert_int_equal(umdev_vqd_num_free(&f->d), 15);
	assert_int_equal(f->d.desc[h].flags, VIRTQ_DESC_F_INDIRECT);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.head, h);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 2);
	assert_int_equal(e.out_len, 64);
	assert_int_equal(e.in_len, 0x20);
	check_iov_data(f, iov, 1, BUF_GPA, 64);
	umdev_vq_push(f->vq, e.head, 0x20);
	assert_int_equal(umdev_vqd_get_used(&f->d, &head, &len), 1);
	assert_int_equal(head, h);
	assert_int_equal(len, 0x20);
	assert_int_equal(umdev_vqd_num_free(&f->d), 16);

	/* Direct descriptors followed by an indirect one (spec allows it). */
	ind_table(f)[0] = (struct virtq_desc){ .addr = BUF_GPA + 0x2000, .len = 8,
					       .flags = VIRTQ_DESC_F_WRITE };
	set_desc(f, 5, BUF_GPA, 32, VIRTQ_DESC_F_NEXT, 6);
	set_desc(f, 6, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	publish(f, 5);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.head, 5);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 1);
	assert_int_equal(e.out_len, 32);
	assert_int_equal(e.in_len, 8);
	umdev_vq_push(f->vq, e.head, 8);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);
}

/* Chain totals up to exactly 2^32 - 1 bytes are legal. */
static void test_max_total_len(void **state)
{
	struct fx *f = *state;
	unsigned n = 8192, max = n + 8;
	struct umdev_vqd_buf *b = calloc(n, sizeof(*b));
	struct iovec *iov = calloc(max, sizeof(*iov));
	struct umdev_vq_elem e;

	assert_non_null(b);
	assert_non_null(iov);
	fx_start(f, 16, false, true);
	for (unsigned i = 0; i < n; i++)
		b[i] = (struct umdev_vqd_buf){ .addr = GPA_B, .len = (uint32_t)REGION_AB };
	b[n - 1].len = (uint32_t)REGION_AB - 1;
	assert_true(umdev_vqd_add(&f->d, b, n, IND_GPA) >= 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, max), 1);
	assert_int_equal(e.n_out, n);
	assert_int_equal(e.out_len, UINT32_MAX);
	umdev_vq_push(f->vq, e.head, 0);
	free(b);
	free(iov);
}

static void test_wraparound(void **state)
{
	struct fx *f = *state;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e[2];
	uint32_t pushes = 0;

	fx_start(f, 4, false, false);
	for (uint32_t it = 0; it < 35000; it++) {
		struct umdev_vqd_buf b[2] = {
			{ .addr = BUF_GPA + (it % 7) * 0x100, .len = 1 + it % 200 },
			{ .addr = BUF_GPA + 0x8000, .len = 1 + it % 64, .write = true },
		};
		unsigned n0 = 1 + it % 2, n1 = 2 - it % 2;
		int h0 = umdev_vqd_add(&f->d, b, n0, 0);
		int h1 = umdev_vqd_add(&f->d, b, n1, 0);
		uint16_t head;
		uint32_t len;

		assert_true(h0 >= 0 && h1 >= 0);
		assert_int_equal(umdev_vq_pop(f->vq, &e[0], iov, MAX_IOV), 1);
		assert_int_equal(umdev_vq_pop(f->vq, &e[1], iov + 8, MAX_IOV - 8), 1);
		assert_int_equal(e[0].head, h0);
		assert_int_equal(e[1].head, h1);
		assert_int_equal(e[0].n_out + e[0].n_in, n0);
		assert_int_equal(e[0].out_len, 1 + it % 200);
		/* Complete out of order. */
		umdev_vq_push(f->vq, e[1].head, it);
		umdev_vq_push(f->vq, e[0].head, it + 1);
		pushes += 2;
		assert_int_equal(umdev_vqd_get_used(&f->d, &head, &len), 1);
		assert_int_equal(head, h1);
		assert_int_equal(len, it);
		assert_int_equal(umdev_vqd_get_used(&f->d, &head, &len), 1);
		assert_int_equal(head, h0);
		assert_int_equal(len, it + 1);
		assert_int_equal(umdev_vqd_get_used(&f->d, &head, &len), 0);
	}
	assert_true(pushes > 65536);
	assert_int_equal(f->d.used->idx, (uint16_t)pushes);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq), (uint16_t)pushes);
	assert_int_equal(umdev_vq_inuse(f->vq), 0);
	assert_int_equal(umdev_vqd_num_free(&f->d), 4);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);
}

static void pop_n(struct fx *f, struct umdev_vq_elem *e, unsigned n)
{
	static struct iovec iov[64][4];

	for (unsigned i = 0; i < n; i++)
		assert_int_equal(umdev_vq_pop(f->vq, &e[i], iov[i % 64], 4), 1);
}

static void add_n(struct fx *f, unsigned n)
{
	struct umdev_vqd_buf b = { .addr = BUF_GPA, .len = 8, .write = true };

	for (unsigned i = 0; i < n; i++)
		assert_true(umdev_vqd_add(&f->d, &b, 1, 0) >= 0);
}

static void test_event_idx_notify(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e[6];

	fx_start(f, 16, true, false);
	add_n(f, 6);
	pop_n(f, e, 6);
	/* The first decision after start always signals. */
	umdev_vq_push(f->vq, e[0].head, 1);
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	assert_int_equal(read_call(f), 1);
	/* Nothing new: no signal. */
	assert_int_equal(umdev_vq_notify(f->vq), 0);

	/* Driver wants an interrupt once used entry 2 is there (idx 2 -> 3). */
	umdev_vqd_set_used_event(&f->d, 2);
	umdev_vq_push(f->vq, e[1].head, 1); /* used idx 2 */
	assert_int_equal(umdev_vq_notify(f->vq), 0);
	assert_int_equal(read_call(f), 0);
	umdev_vq_push(f->vq, e[2].head, 1); /* used idx 3 */
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	assert_int_equal(read_call(f), 1);

	/* A batch that jumps over used_event still signals once. */
	umdev_vqd_set_used_event(&f->d, 3);
	umdev_vq_push(f->vq, e[3].head, 1);
	umdev_vq_push(f->vq, e[4].head, 1); /* used idx 5 */
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	assert_int_equal(read_call(f), 1);

	/* A used_event behind us: suppressed. EVENT_IDX ignores avail flags. */
	f->d.avail->flags = 0;
	umdev_vqd_set_used_event(&f->d, 1);
	umdev_vq_push(f->vq, e[5].head, 1);
	assert_int_equal(umdev_vq_notify(f->vq), 0);
	assert_int_equal(read_call(f), 0);

	/* get_used moves used_event itself, so reaping then pushing signals. */
	for (int i = 0; i < 6; i++) {
		uint16_t head;
		uint32_t len;

		assert_int_equal(umdev_vqd_get_used(&f->d, &head, &len), 1);
	}
	assert_int_equal(f->d.avail->ring[16], 6);
	add_n(f, 1);
	pop_n(f, e, 1);
	umdev_vq_push(f->vq, e[0].head, 1);
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	assert_int_equal(read_call(f), 1);
}

static void test_no_interrupt(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e[3];

	fx_start(f, 16, false, false);
	add_n(f, 3);
	pop_n(f, e, 3);
	f->d.avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	umdev_vq_push(f->vq, e[0].head, 0);
	assert_int_equal(umdev_vq_notify(f->vq), 0);
	assert_int_equal(read_call(f), 0);
	f->d.avail->flags = 0;
	umdev_vq_push(f->vq, e[1].head, 0);
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	assert_int_equal(read_call(f), 1);
	assert_int_equal(umdev_vq_notify(f->vq), 0);
	/* No call fd: the decision is still reported, nothing is written. */
	(void)umdev_vq_stop(f->vq);
	umdev_vq_set_call_fd(f->vq, -1);
	f->cfg.last_avail_idx = 3;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
	add_n(f, 1);
	pop_n(f, e, 1);
	umdev_vq_push(f->vq, e[0].head, 0);
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	assert_int_equal(read_call(f), 0);
}

static void test_kicks_flags(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e[2];

	fx_start(f, 16, false, false);
	assert_false(umdev_vq_enable_kicks(f->vq));
	add_n(f, 1);
	assert_true(umdev_vqd_kick_needed(&f->d));
	assert_false(umdev_vqd_kick_needed(&f->d)); /* nothing new */
	umdev_vq_disable_kicks(f->vq);
	assert_true(f->d.used->flags & VIRTQ_USED_F_NO_NOTIFY);
	add_n(f, 1);
	assert_false(umdev_vqd_kick_needed(&f->d));
	/* Buffers arrived while kicks were off: enable says "poll again". */
	assert_true(umdev_vq_enable_kicks(f->vq));
	assert_false(f->d.used->flags & VIRTQ_USED_F_NO_NOTIFY);
	assert_true(umdev_vq_has_avail(f->vq));
	pop_n(f, e, 2);
	assert_false(umdev_vq_has_avail(f->vq));
	assert_false(umdev_vq_enable_kicks(f->vq));
	add_n(f, 1);
	assert_true(umdev_vqd_kick_needed(&f->d));
}

static void test_kicks_event_idx(void **state)
{
	struct fx *f = *state;
	uint16_t *avail_event;
	struct umdev_vq_elem e[3];

	fx_start(f, 16, true, false);
	avail_event = (uint16_t *)&f->d.used->ring[16];
	assert_false(umdev_vq_enable_kicks(f->vq));
	assert_int_equal(*avail_event, 0);
	add_n(f, 1);
	assert_true(umdev_vqd_kick_needed(&f->d));
	add_n(f, 1);
	assert_false(umdev_vqd_kick_needed(&f->d)); /* avail_event already passed */
	umdev_vq_disable_kicks(f->vq);
	assert_int_equal(f->d.used->flags, 0); /* EVENT_IDX does not use the flag */
	assert_true(umdev_vq_enable_kicks(f->vq));
	assert_int_equal(*avail_event, 2);
	pop_n(f, e, 2);
	assert_false(umdev_vq_enable_kicks(f->vq));
	add_n(f, 1);
	assert_true(umdev_vqd_kick_needed(&f->d));
	pop_n(f, e, 1);
}

static void test_stop_start_resume(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e[5];
	struct iovec iov[4];
	int heads[5];

	fx_start(f, 16, false, false);
	for (int i = 0; i < 5; i++) {
		struct umdev_vqd_buf b = { .addr = BUF_GPA, .len = 10 + i };

		heads[i] = umdev_vqd_add(&f->d, &b, 1, 0);
		assert_true(heads[i] >= 0);
	}
	pop_n(f, e, 3);
	for (int i = 0; i < 3; i++)
		umdev_vq_push(f->vq, e[i].head, 0);
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), -EBUSY);
	assert_int_equal(umdev_vq_stop(f->vq), 3);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_STOPPED);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq), 3);
	assert_int_equal(umdev_vq_pop(f->vq, &e[0], iov, 4), -EINVAL);
	assert_false(umdev_vq_has_avail(f->vq));
	f->cfg.last_avail_idx = 3;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e[3], iov, 4), 1);
	assert_int_equal(e[3].head, heads[3]);
	assert_int_equal(e[3].out_len, 13);
	assert_int_equal(umdev_vq_pop(f->vq, &e[4], iov, 4), 1);
	assert_int_equal(e[4].head, heads[4]);
	assert_int_equal(umdev_vq_pop(f->vq, &e[0], iov, 4), 0);
	/* Used index continues from the ring, not from zero. */
	umdev_vq_push(f->vq, e[3].head, 0);
	assert_int_equal(f->d.used->idx, 4);
}

static void test_start_errors(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_config c;

	assert_int_equal(umdev_vqd_init(&f->d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA, 16, true), 0);
	c = (struct umdev_vq_config){ .size = 16, .desc_addr = f->d.desc_gpa,
				      .avail_addr = f->d.avail_gpa, .used_addr = f->d.used_gpa,
				      .event_idx = true };
	c.size = 0;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EINVAL);
	c.size = 24;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EINVAL);
	c.size = 16;
	c.desc_addr += 8;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EFAULT);
	c.desc_addr -= 8;
	c.avail_addr += 1;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EFAULT);
	c.avail_addr -= 1;
	c.used_addr += 2;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EFAULT);
	c.used_addr -= 2;
	c.desc_addr = GPA_GAP;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EFAULT);
	c.desc_addr = f->d.desc_gpa;
	c.used_addr = GPA_C; /* read-only memory cannot hold the used ring */
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EFAULT);
	c.used_addr = GPA_B - 8; /* crosses a region boundary: not contiguous */
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EFAULT);
	c.used_addr = f->d.used_gpa;
	c.desc_addr = GPA_A + 0x10000;
	c.size = 32768; /* desc table would run past region A */
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EFAULT);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_STOPPED);
	c.size = 16;
	c.desc_addr = f->d.desc_gpa;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), 0);
}

/* ---- inflight tracking ---- */

static struct vhost_user_inflight_queue *new_region(struct fx *f, uint16_t size)
{
	uint64_t sz = umdev_vq_inflight_size(size);

	free(f->inflight);
	f->inflight = aligned_alloc(64, sz);
	assert_non_null(f->inflight);
	memset(f->inflight, 0, sz);
	return f->inflight;
}

/* Simulate a back-end crash: the queue object vanishes without stop. */
static void crash_and_restart(struct fx *f, uint16_t last_avail)
{
	int err;

	umdev_vq_free(f->vq);
	f->vq = umdev_vq_new("test.q0", &err);
	assert_non_null(f->vq);
	umdev_vq_set_inflight(f->vq, f->inflight);
	umdev_vq_set_call_fd(f->vq, f->call_fd);
	f->cfg.last_avail_idx = last_avail;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
}

static void test_inflight_size(void **state)
{
	(void)state;
	for (unsigned s = 1; s <= 32768; s *= 2) {
		uint64_t n = umdev_vq_inflight_size((uint16_t)s);

		assert_int_equal(n % 64, 0);
		assert_true(n >= 16 + 16ull * s);
		assert_true(n < 16 + 16ull * s + 64);
	}
}

static void test_inflight_recover(void **state)
{
	struct fx *f = *state;
	struct vhost_user_inflight_queue *r = new_region(f, 16);
	struct umdev_vq_elem e[6], g;
	struct iovec iov[4];
	uint16_t heads[16];
	uint64_t max_counter = 0;
	int h[6];

	umdev_vq_set_inflight(f->vq, r);
	fx_start(f, 16, false, false);
	assert_int_equal(r->version, 1);
	assert_int_equal(r->desc_num, 16);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 16), 0);
	/* Shuffle the driver's free list so submission order differs from
	 * head order: recovery must sort by counter, not by index. */
	add_n(f, 4);
	pop_n(f, e, 4);
	for (int i = 0; i < 4; i++) {
		uint16_t head;
		uint32_t len;

		umdev_vq_push(f->vq, e[i].head, 0);
		assert_int_equal(umdev_vqd_get_used(&f->d, &head, &len), 1);
	}
	for (int i = 0; i < 5; i++) {
		struct umdev_vqd_buf b[2] = {
			{ .addr = BUF_GPA + i * 0x100, .len = 20 + i },
			{ .addr = BUF_GPA + 0x4000, .len = 4, .write = true },
		};

		h[i] = umdev_vqd_add(&f->d, b, 2, 0);
		assert_true(h[i] >= 0);
	}
	pop_n(f, e, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r->desc[h[i]].inflight, 1);
		if (i)
			assert_true(r->desc[h[i]].counter > r->desc[h[i - 1]].counter);
	}
	assert_true(h[1] < h[0]);
	umdev_vq_push(f->vq, e[3].head, 4);
	umdev_vq_push(f->vq, e[2].head, 4);
	assert_int_equal(r->desc[h[3]].inflight, 0);
	assert_int_equal(r->desc[h[2]].inflight, 0);
	assert_int_equal(r->used_idx, 6);
	assert_int_equal(r->last_batch_head, h[2]);
	for (int i = 0; i < 16; i++)
		if (r->desc[i].counter > max_counter)
			max_counter = r->desc[i].counter;

	/* QEMU hands back some base after a crash; recovery decides. */
	crash_and_restart(f, 2);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 2), -ENOBUFS);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 16), 3);
	assert_int_equal(heads[0], h[0]);
	assert_int_equal(heads[1], h[1]);
	assert_int_equal(heads[2], h[4]);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq), 9);
	assert_int_equal(umdev_vq_inuse(f->vq), 3);
	for (int i = 0; i < 3; i++) {
		int k = i == 2 ? 4 : i;

		assert_int_equal(umdev_vq_get_head(f->vq, heads[i], &g, iov, 4), 1);
		assert_int_equal(g.head, heads[i]);
		assert_int_equal(g.out_len, 20 + k);
		assert_int_equal(g.in_len, 4);
		assert_int_equal(g.n_out, 1);
		assert_int_equal(g.n_in, 1);
	}
	assert_int_equal(umdev_vq_inuse(f->vq), 3);
	assert_int_equal(umdev_vq_get_head(f->vq, 16, &g, iov, 4), -EINVAL);
	/* Nothing else to pop until the driver adds more. */
	assert_int_equal(umdev_vq_pop(f->vq, &g, iov, 4), 0);
	for (int i = 0; i < 3; i++)
		umdev_vq_push(f->vq, heads[i], 4);
	assert_int_equal(umdev_vq_inuse(f->vq), 0);
	assert_int_equal(r->used_idx, 9);
	for (int i = 0; i < 16; i++)
		assert_int_equal(r->desc[i].inflight, 0);

	/* New work continues at avail index 9 with a counter above the old. */
	for (int i = 0; i < 5; i++) {
		uint16_t head;
		uint32_t len;

		assert_int_equal(umdev_vqd_get_used(&f->d, &head, &len), 1);
	}
	h[5] = umdev_vqd_add(&f->d, (struct umdev_vqd_buf[]){ { .addr = BUF_GPA, .len = 1 } }, 1, 0);
	assert_true(h[5] >= 0);
	assert_int_equal(umdev_vq_pop(f->vq, &g, iov, 4), 1);
	assert_int_equal(g.head, h[5]);
	assert_true(r->desc[h[5]].counter > max_counter);
}

/* Crash after used->idx was published but before inflight was cleared. */
static void test_inflight_half_batch(void **state)
{
	struct fx *f = *state;
	struct vhost_user_inflight_queue *r = new_region(f, 8);
	struct umdev_vq_elem e[3];
	uint16_t heads[8];
	struct virtq_used *u;

	umdev_vq_set_inflight(f->vq, r);
	fx_start(f, 8, false, false);
	add_n(f, 3);
	pop_n(f, e, 3);
	/* Do by hand what push does, stopping half way for e[1]. */
	u = f->d.used;
	r->desc[e[1].head].next = r->last_batch_head;
	r->last_batch_head = e[1].head;
	u->ring[0] = (struct virtq_used_elem){ .id = e[1].head, .len = 8 };
	u->idx = 1;
	assert_int_equal(r->desc[e[1].head].inflight, 1);
	assert_int_equal(r->used_idx, 0);

	crash_and_restart(f, 0);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), 2);
	assert_int_equal(heads[0], e[0].head);
	assert_int_equal(heads[1], e[2].head);
	assert_int_equal(r->desc[e[1].head].inflight, 0);
	assert_int_equal(r->used_idx, 1);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq), 3);
	/* Used ring continues after the entry the dead back-end published. */
	umdev_vq_push(f->vq, e[2].head, 8);
	assert_int_equal(u->idx, 2);
	assert_int_equal(u->ring[1].id, e[2].head);
}

static void test_inflight_corrupt(void **state)
{
	struct fx *f = *state;
	struct vhost_user_inflight_queue *r = new_region(f, 8);
	struct umdev_vq_elem e[2];
	uint16_t heads[8];

	umdev_vq_set_inflight(f->vq, r);
	fx_start(f, 8, false, false);
	add_n(f, 2);
	pop_n(f, e, 2);

	r->desc_num = 16;
	crash_and_restart(f, 0);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), -EIO);
	/* A region we refused is not written by pop. */
	add_n(f, 1);
	{
		size_t sz = umdev_vq_inflight_size(8);
		uint8_t *before = malloc(sz);
		struct umdev_vq_elem g;
		struct iovec iov[4];

		assert_non_null(before);
		memcpy(before, r, sz);
		assert_int_equal(umdev_vq_pop(f->vq, &g, iov, 4), 1);
		umdev_vq_push(f->vq, g.head, 0);
		assert_memory_equal(before, r, sz);
		free(before);
	}
	r->desc_num = 8;

	r->version = 7;
	crash_and_restart(f, 0);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), -EIO);
	r->version = 1;

	r->desc[3].inflight = 5;
	crash_and_restart(f, 0);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), -EIO);
	r->desc[3].inflight = 0;

	/* used idx moved but the batch list names a head outside the ring. */
	f->d.used->idx = 1;
	r->used_idx = 0;
	r->last_batch_head = 200;
	crash_and_restart(f, 0);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), -EIO);
	/* ... or claims a batch larger than the ring. */
	r->last_batch_head = 0;
	f->d.used->idx = 100;
	crash_and_restart(f, 0);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), -EIO);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), -EIO);
}

/* ---- hostile drivers ---- */

static void test_bad_loop(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "loop");
	/* Only stop leaves BROKEN; a restart meets the same bad chain. */
	assert_int_equal(umdev_vq_stop(f->vq), 0);
	f->cfg.last_avail_idx = 0;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
	expect_broken(f, MAX_IOV, "loop");
}

static void test_bad_loop_zero_len(void **state)
{
	struct fx *f = *state;

	/* Zero-length descriptors take no iovecs, so only the count stops it. */
	fx_start(f, 16, false, false);
	for (uint16_t i = 0; i < 16; i++)
		set_desc(f, i, BUF_GPA, 0, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % 16));
	publish(f, 3);
	expect_broken(f, MAX_IOV, "loop");
}

static void test_full_length_chain_ok(void **state)
{
	struct fx *f = *state;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;

	/* A chain using every descriptor once is legal. */
	fx_start(f, 16, false, false);
	for (uint16_t i = 0; i < 16; i++)
		set_desc(f, i, BUF_GPA, 1, i < 15 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	publish(f, 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.n_out, 16);
}

static void test_bad_next(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 16);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "out of range");
}

static void test_bad_avail_head(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	publish(f, 16);
	expect_broken(f, MAX_IOV, "head 16");
}

static void test_bad_avail_idx(void **state)
{
	struct fx *f = *state;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;

	fx_start(f, 16, false, false);
	for (int i = 0; i < 16; i++)
		set_desc(f, (uint16_t)i, BUF_GPA, 8, 0, 0);
	/* Exactly a full ring is fine. */
	for (int i = 0; i < 16; i++)
		publish(f, (uint16_t)i);
	for (int i = 0; i < 16; i++)
		assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	/* One more than a ring ahead of us is not. */
	__atomic_store_n(&f->d.avail->idx, (uint16_t)(16 + 17), __ATOMIC_RELEASE);
	expect_broken(f, MAX_IOV, "ahead");
}

static void test_bad_indirect_not_negotiated(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	ind_table(f)[0] = (struct virtq_desc){ .addr = BUF_GPA, .len = 8 };
	set_desc(f, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "not negotiated");
}

static void bad_indirect_len(void **state, uint32_t len, const char *what)
{
	struct fx *f = *state;

	fx_start(f, 16, false, true);
	memset(ind_table(f), 0, 64);
	set_desc(f, 0, IND_GPA, len, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, what);
}

static void test_bad_indirect_len0(void **state)
{
	bad_indirect_len(state, 0, "length 0");
}

static void test_bad_indirect_len_odd(void **state)
{
	bad_indirect_len(state, 24, "length 24");
}

static void test_bad_indirect_len_huge(void **state)
{
	bad_indirect_len(state, 16u * (VIRTQ_MAX_SIZE + 1), "indirect table length");
}

static void test_bad_indirect_outside(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, true);
	set_desc(f, 0, GPA_B - 16, 32, VIRTQ_DESC_F_INDIRECT, 0); /* crosses regions */
	publish(f, 0);
	expect_broken(f, MAX_IOV, "indirect table");
}

static void test_bad_indirect_nested(void **state)
{
	struct fx *f = *state;
	struct virtq_desc *t = ind_table(f);

	fx_start(f, 16, false, true);
	t[0] = (struct virtq_desc){ .addr = BUF_GPA, .len = 8, .flags = VIRTQ_DESC_F_NEXT, .next = 1 };
	t[1] = (struct virtq_desc){ .addr = IND_GPA, .len = 32, .flags = VIRTQ_DESC_F_INDIRECT };
	set_desc(f, 0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "nested");
}

static void test_bad_indirect_with_next(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, true);
	ind_table(f)[0] = (struct virtq_desc){ .addr = BUF_GPA, .len = 8 };
	set_desc(f, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 8, 0, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "INDIRECT together with NEXT");
}

static void test_bad_indirect_loop(void **state)
{
	struct fx *f = *state;
	struct virtq_desc *t = ind_table(f);

	fx_start(f, 16, false, true);
	t[0] = (struct virtq_desc){ .addr = BUF_GPA, .len = 0, .flags = VIRTQ_DESC_F_NEXT, .next = 1 };
	t[1] = (struct virtq_desc){ .addr = BUF_GPA, .len = 0, .flags = VIRTQ_DESC_F_NEXT, .next = 0 };
	set_desc(f, 0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "loop");
}

static void test_bad_indirect_next(void **state)
{
	struct fx *f = *state;
	struct virtq_desc *t = ind_table(f);

	fx_start(f, 16, false, true);
	t[0] = (struct virtq_desc){ .addr = BUF_GPA, .len = 4, .flags = VIRTQ_DESC_F_NEXT, .next = 1 };
	t[1] = (struct virtq_desc){ .addr = BUF_GPA, .len = 4, .flags = VIRTQ_DESC_F_NEXT, .next = 2 };
	set_desc(f, 0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "out of range");
}

static void test_bad_head_in_use(void **state)
{
	struct fx *f = *state;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;

	fx_start(f, 16, false, false);
	set_desc(f, 4, BUF_GPA, 8, 0, 0);
	publish(f, 4);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	/* Once pushed, the driver may offer the same head again... */
	umdev_vq_push(f->vq, 4, 0);
	publish(f, 4);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.head, 4);
	/* ...but not while the device still owns it. */
	publish(f, 4);
	expect_broken(f, MAX_IOV, "already in use");
}

static void test_push_not_in_use(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e[2];

	fx_start(f, 16, false, false);
	add_n(f, 2);
	pop_n(f, e, 1);
	/* A device bug: pushing a head never popped, or twice. Refused. */
	umdev_vq_push(f->vq, (uint16_t)(e[0].head + 1), 0);
	umdev_vq_push(f->vq, 16, 0);
	assert_int_equal(f->d.used->idx, 0);
	assert_int_equal(umdev_vq_inuse(f->vq), 1);
	umdev_vq_push(f->vq, e[0].head, 0);
	umdev_vq_push(f->vq, e[0].head, 0);
	assert_int_equal(f->d.used->idx, 1);
	assert_int_equal(umdev_vq_inuse(f->vq), 0);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);
}

static void test_bad_read_after_write(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 8, 0, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "readable descriptor after a writable");
}

static void test_bad_total_overflow(void **state)
{
	struct fx *f = *state;
	unsigned n = 8193;
	struct virtq_desc *t = ind_table(f);

	/* 8193 x 512 KiB = 2^32 + 512 KiB, each buffer itself valid. */
	fx_start(f, 16, false, true);
	for (unsigned i = 0; i < n; i++)
		t[i] = (struct virtq_desc){ .addr = GPA_B, .len = (uint32_t)REGION_AB,
					    .flags = i + 1 < n ? VIRTQ_DESC_F_NEXT : 0,
					    .next = (uint16_t)(i + 1) };
	set_desc(f, 0, IND_GPA, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, n + 8, "overflows 32 bits");
}

static void bad_buffer(void **state, uint64_t addr, uint32_t len, uint16_t flags,
		       const char *what)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, addr, len, flags, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, what);
}

static void test_bad_addr_gap(void **state)
{
	bad_buffer(state, GPA_GAP, 16, 0, "not in readable guest memory");
}

static void test_bad_addr_into_gap(void **state)
{
	/* Starts in region B, runs off its end into nothing. */
	bad_buffer(state, GPA_A + 2 * REGION_AB - 8, 16, VIRTQ_DESC_F_WRITE,
		   "not in writable guest memory");
}

static void test_bad_addr_wrap(void **state)
{
	bad_buffer(state, UINT64_MAX - 7, 16, 0, "not in readable guest memory");
}

static void test_bad_write_to_readonly(void **state)
{
	bad_buffer(state, GPA_C, 16, VIRTQ_DESC_F_WRITE, "not in writable guest memory");
}

static void test_bad_read_from_writeonly(void **state)
{
	bad_buffer(state, GPA_D, 16, 0, "not in readable guest memory");
}

static void test_permissions_ok(void **state)
{
	struct fx *f = *state;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;

	fx_start(f, 16, false, false);
	set_desc(f, 0, GPA_C, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, GPA_D, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 1);
}

static void test_bad_too_many_iov(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, GPA_B - 8, 16, 0, 0); /* two iovecs */
	publish(f, 0);
	expect_broken(f, 2, "more than 2 iovecs");
}

/* ---- driver side (src/client/virtq_drv.c) ---- */

static void test_drv_init_errors(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd *d = &f->d;

	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA, 0, false), -EINVAL);
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA, 12, false), -EINVAL);
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA + 16, 16, false),
			 -EINVAL);
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, GPA_A - 0x1000, 16, false),
			 -EINVAL);
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, GPA_A + DRV_SIZE - 0x1000,
					256, false), -EINVAL);
	/* 32768 entries need 0xd1006 bytes: too many from here on. */
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, GPA_A + 0x40000, 32768,
					false), -EINVAL);
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA, 8192, false), 0);
	assert_int_equal(umdev_vqd_num_free(d), 8192);
	assert_int_equal(d->used_gpa % 4096, 0);
	assert_true(d->used_gpa + virtq_used_bytes(8192) <= RING_GPA + umdev_vqd_ring_bytes(8192));
	assert_true(d->avail_gpa + virtq_avail_bytes(8192) <= d->used_gpa);
}

static void test_drv_add_reap(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd *d = &f->d;
	struct umdev_vqd_buf b[5] = {
		{ .addr = BUF_GPA, .len = 1 }, { .addr = BUF_GPA, .len = 2 },
		{ .addr = BUF_GPA, .len = 3 }, { .addr = BUF_GPA, .len = 4 },
		{ .addr = BUF_GPA, .len = 5 },
	};
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	uint16_t head;
	uint32_t len;
	int h, h2;

	fx_start(f, 4, false, true);
	assert_int_equal(umdev_vqd_add(d, b, 0, 0), -EINVAL);
	assert_int_equal(umdev_vqd_add(d, b, 5, 0), -ENOSPC);
	assert_int_equal(umdev_vqd_add(d, b, 5, GPA_A + DRV_SIZE - 16), -EINVAL);
	h = umdev_vqd_add(d, b, 3, 0);
	assert_true(h >= 0);
	assert_int_equal(umdev_vqd_num_free(d), 1);
	assert_int_equal(umdev_vqd_add(d, b, 2, 0), -ENOSPC);
	/* An indirect chain of any length takes one ring descriptor. */
	h2 = umdev_vqd_add(d, b, 5, IND_GPA);
	assert_true(h2 >= 0);
	assert_int_equal(umdev_vqd_num_free(d), 0);
	assert_int_equal(umdev_vqd_add(d, b, 1, IND_GPA), -ENOSPC);
	assert_int_equal(umdev_vqd_add(d, b, 1, 0), -ENOSPC);

	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.out_len, 6);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.out_len, 15);
	assert_int_equal(e.n_out, 5);
	/* The device scribbling on the table must not steer the free list. */
	for (int i = 0; i < 4; i++)
		d->desc[i].next = 0xbeef;
	umdev_vq_push(f->vq, (uint16_t)h, 0);
	umdev_vq_push(f->vq, (uint16_t)h2, 0);
	assert_true(umdev_vqd_has_used(d));
	assert_int_equal(umdev_vqd_get_used(d, &head, &len), 1);
	assert_int_equal(head, h);
	assert_int_equal(umdev_vqd_get_used(d, &head, &len), 1);
	assert_int_equal(head, h2);
	assert_false(umdev_vqd_has_used(d));
	assert_int_equal(umdev_vqd_num_free(d), 4);
	h = umdev_vqd_add(d, b, 2, 0);
	h2 = umdev_vqd_add(d, b, 2, 0);
	assert_true(h >= 0 && h < 4 && h2 >= 0 && h2 < 4 && h != h2);
	assert_int_equal(umdev_vqd_num_free(d), 0);

	/* A device returning a head that is not outstanding is caught. */
	d->used->ring[d->last_used_idx & 3] = (struct virtq_used_elem){ .id = 99 };
	__atomic_store_n(&d->used->idx, (uint16_t)(d->last_used_idx + 1), __ATOMIC_RELEASE);
	assert_int_equal(umdev_vqd_get_used(d, &head, &len), -EPROTO);
	for (uint32_t i = 0; i < 4; i++) {
		if (i == (uint32_t)h || i == (uint32_t)h2)
			continue;
		/* i is the second descriptor of some chain, not a head */
		d->used->ring[d->last_used_idx & 3] = (struct virtq_used_elem){ .id = i };
		assert_int_equal(umdev_vqd_get_used(d, &head, &len), -EPROTO);
	}
	assert_int_equal(umdev_vqd_num_free(d), 0);
}

/* ---- a driver rewriting descriptors while the device reads them ---- */

struct flipper {
	struct fx *f;
	bool stop;
	unsigned long flips;
};

static void *flip_thread(void *arg)
{
	struct flipper *fl = arg;
	struct virtq_desc *d = fl->f->d.desc;
	uint32_t x = 1;

	while (!__atomic_load_n(&fl->stop, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(&fl->flips, 1, __ATOMIC_RELAXED);
		x = x * 1103515245u + 12345u;
		__atomic_store_n(&d[0].next, (x >> 8) & 1 ? 1 : 200, __ATOMIC_RELAXED);
		__atomic_store_n(&d[1].len, (x >> 9) & 1 ? 16 : 0x7fffffff, __ATOMIC_RELAXED);
		__atomic_store_n(&d[1].addr, (x >> 10) & 1 ? BUF_GPA : GPA_GAP, __ATOMIC_RELAXED);
		__atomic_store_n(&d[1].flags, (x >> 11) & 1 ? 0 : VIRTQ_DESC_F_NEXT, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_concurrent_rewrite(void **state)
{
	struct fx *f = *state;
	struct flipper fl = { .f = f };
	const uint8_t *a = umdev_as_map_translate(f->map, GPA_A, REGION_AB, UMDEV_MEM_READ);
	const uint8_t *bb = umdev_as_map_translate(f->map, GPA_B, REGION_AB, UMDEV_MEM_READ);
	unsigned ok = 0, broken = 0, lines = 0;
	FILE *logf;
	int saved, c;
	pthread_t t;

	assert_non_null(a);
	assert_non_null(bb);
	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 16, 0, 0);
	/* Each break logs one line: send them to a file and count them. */
	logf = tmpfile();
	assert_non_null(logf);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(logf), STDERR_FILENO) >= 0);
	assert_int_equal(pthread_create(&t, NULL, flip_thread, &fl), 0);
	while (__atomic_load_n(&fl.flips, __ATOMIC_RELAXED) < 1000)
		sched_yield();
	/* Run until both outcomes were seen often, within a generous bound. */
	for (int i = 0; i < 4000000 && (ok < 5000 || broken < 5000); i++) {
		struct iovec iov[MAX_IOV];
		struct umdev_vq_elem e;
		uint64_t sum = 0;
		int r;

		publish(f, 0);
		r = umdev_vq_pop(f->vq, &e, iov, MAX_IOV);
		if (r == 1) {
			/* Whatever was read is self-consistent and inside guest memory. */
			for (unsigned k = 0; k < e.n_out + e.n_in; k++) {
				const uint8_t *p = iov[k].iov_base;
				bool in_a = p >= a && p + iov[k].iov_len <= a + REGION_AB;
				bool in_b = p >= bb && p + iov[k].iov_len <= bb + REGION_AB;

				assert_true(in_a || in_b);
				sum += iov[k].iov_len;
			}
			assert_int_equal(sum, e.out_len + e.in_len);
			assert_true(e.n_out >= 1);
			umdev_vq_push(f->vq, e.head, 0);
			ok++;
		} else {
			assert_int_equal(r, -EIO);
			assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_BROKEN);
			f->cfg.last_avail_idx = umdev_vq_stop(f->vq);
			f->cfg.last_avail_idx++; /* skip the bad entry */
			assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
			broken++;
		}
	}
	__atomic_store_n(&fl.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(logf);
	while ((c = fgetc(logf)) != EOF)
		lines += c == '\n';
	fclose(logf);
	fprintf(stderr, "concurrent rewrite: %u popped, %u broken\n", ok, broken);
	assert_true(ok > 0);
	assert_true(broken > 0);
	assert_int_equal(lines, broken);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_simple_chain),
		T(test_rw_split),
		T(test_cross_region),
		T(test_indirect),
		T(test_max_total_len),
		T(test_wraparound),
		T(test_event_idx_notify),
		T(test_no_interrupt),
		T(test_kicks_flags),
		T(test_kicks_event_idx),
		T(test_stop_start_resume),
		T(test_start_errors),
		cmocka_unit_test(test_inflight_size),
		T(test_inflight_recover),
		T(test_inflight_half_batch),
		T(test_inflight_corrupt),
		T(test_bad_loop),
		T(test_bad_loop_zero_len),
		T(test_full_length_chain_ok),
		T(test_bad_next),
		T(test_bad_avail_head),
		T(test_bad_avail_idx),
		T(test_bad_indirect_not_negotiated),
		T(test_bad_indirect_len0),
		T(test_bad_indirect_len_odd),
		T(test_bad_indirect_len_huge),
		T(test_bad_indirect_outside),
		T(test_bad_indirect_nested),
		T(test_bad_indirect_with_next),
		T(test_bad_indirect_loop),
		T(test_bad_indirect_next),
		T(test_bad_head_in_use),
		T(test_push_not_in_use),
		T(test_bad_read_after_write),
		T(test_bad_total_overflow),
		T(test_bad_addr_gap),
		T(test_bad_addr_into_gap),
		T(test_bad_addr_wrap),
		T(test_bad_write_to_readonly),
		T(test_bad_read_from_writeonly),
		T(test_permissions_ok),
		T(test_bad_too_many_iov),
		T(test_drv_init_errors),
		T(test_drv_add_reap),
		T(test_concurrent_rewrite),
#undef T
	};

	return cmocka_run_group_tests_name("virtio-vq", tests, NULL, NULL);
}
