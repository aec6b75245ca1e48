/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device-side split virtqueue (src/virtio) driven by our driver-side queue
 * (src/client/virtq_drv.c): normal operation, notifications, stop/start
 * and inflight recovery. Hostile rings are in test_vq_hostile.c.
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

#include "vq_fixture.h"

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

/*
 * A window added while the queue runs: the queue takes the new map without
 * stopping, a request popped before keeps its buffers, and the next one may
 * use the new window. A map that lost a region is refused (the owner must
 * restart the queue then); a stopped queue takes none.
 */
static void test_grow_map(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b = { .addr = BUF_GPA, .len = 512, .write = true };
	const struct umdev_vqd_buf nb = { .addr = GPA_GAP + 0x100, .len = 256 };
	struct umdev_mem_region_desc rd = {
		.guest_addr = GPA_GAP, .size = 0x10000, .mmap_offset = 0x180000,
		.fd = dup(f->memfd), .prot = UMDEV_MEM_READ | UMDEV_MEM_WRITE,
	};
	struct iovec iov[MAX_IOV], iov2[MAX_IOV];
	struct umdev_vq_elem e, e2;
	umdev_as_map *grown, *shrunk;
	uint8_t *gap;

	fx_start(f, 16, false, false);
	assert_true(umdev_vqd_add(&f->d, &b, 1, 0) >= 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);

	assert_int_equal(umdev_as_add_region(f->as, &rd), 0);
	grown = umdev_as_get_map(f->as);
	assert_true(umdev_as_map_covers(grown, f->map));
	assert_false(umdev_as_map_covers(f->map, grown));
	assert_int_equal(umdev_vq_grow_map(f->vq, grown), 0);
	assert_ptr_equal(umdev_vq_map(f->vq), grown);

	/* The request in flight still writes where the driver looks. */
	memset(iov[0].iov_base, 0x5c, 512);
	assert_int_equal(((uint8_t *)drv_ptr(f, BUF_GPA))[511], 0x5c);
	umdev_vq_push(f->vq, e.head, 512);

	/* A buffer in the new window (outside the driver's own mapping: by hand). */
	set_desc(f, 15, nb.addr, nb.len, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 15);
	assert_int_equal(umdev_vq_pop(f->vq, &e2, iov2, MAX_IOV), 1);
	assert_int_equal(iov2[0].iov_len, 256);
	memset(iov2[0].iov_base, 0x6d, 256);
	gap = mmap(NULL, 0x10000, PROT_READ, MAP_SHARED, f->memfd, 0x180000);
	assert_true(gap != MAP_FAILED);
	assert_int_equal(gap[0x100], 0x6d);
	assert_int_equal(gap[0x1ff], 0x6d);
	assert_int_equal(gap[0xff], 0);
	munmap(gap, 0x10000);
	umdev_vq_push(f->vq, e2.head, 256);

	/* A region gone: not a superset, refused; the queue runs on. */
	assert_int_equal(umdev_as_remove_region(f->as, GPA_C, REGION_CD), 0);
	shrunk = umdev_as_get_map(f->as);
	assert_false(umdev_as_map_covers(shrunk, grown));
	assert_int_equal(umdev_vq_grow_map(f->vq, shrunk), -ESTALE);
	assert_ptr_equal(umdev_vq_map(f->vq), grown);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);

	umdev_vq_stop(f->vq);
	assert_int_equal(umdev_vq_grow_map(f->vq, grown), -EINVAL);
	umdev_as_map_put(shrunk);
	umdev_as_map_put(grown);
}

/* An indirect table across adjacent regions (a vIOMMU maps page by page) is copied in. */
/*
 * An unmap elsewhere (a vIOMMU's per-request windows): the queue takes the
 * map without the window and runs on; one it uses (a request in flight, the
 * ring) or a map that lost more is refused, so the caller stops the queue.
 */
static void test_shrink_map(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b = { .addr = BUF_GPA, .len = 512, .write = true };
	struct umdev_mem_region_desc rd = {
		.guest_addr = GPA_GAP, .size = 0x10000, .mmap_offset = 0x180000,
		.fd = dup(f->memfd), .prot = UMDEV_MEM_READ | UMDEV_MEM_WRITE,
	};
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	umdev_as_map *with, *without, *less;

	assert_int_equal(umdev_as_add_region(f->as, &rd), 0);
	with = umdev_as_get_map(f->as);
	assert_int_equal(umdev_as_remove_region(f->as, GPA_GAP, 0x10000), 0);
	without = umdev_as_get_map(f->as);
	assert_int_equal(umdev_as_remove_region(f->as, GPA_D, REGION_CD), 0);
	less = umdev_as_get_map(f->as);
	umdev_as_map_put(f->map);
	f->map = umdev_as_map_ref(with);
	fx_start(f, 16, false, false);
	assert_true(umdev_vqd_add(&f->d, &b, 1, 0) >= 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);

	assert_true(umdev_vq_uses(f->vq, BUF_GPA + 511, 1));
	assert_false(umdev_vq_uses(f->vq, BUF_GPA + 512, 0x1000));
	assert_true(umdev_vq_uses(f->vq, f->d.used_gpa, 1));
	/* The window of the request in flight, or a map lacking more: refused. */
	assert_int_equal(umdev_vq_shrink_map(f->vq, without, BUF_GPA, 0x1000), -EBUSY);
	assert_int_equal(umdev_vq_shrink_map(f->vq, less, GPA_GAP, 0x10000), -ESTALE);
	assert_ptr_equal(umdev_vq_map(f->vq), with);
	assert_int_equal(umdev_vq_shrink_map(f->vq, without, GPA_GAP, 0x10000), 0);
	assert_ptr_equal(umdev_vq_map(f->vq), without);
	/* Once pushed, its buffer is nobody's. */
	umdev_vq_push(f->vq, e.head, 512);
	assert_false(umdev_vq_uses(f->vq, BUF_GPA, 0x1000));
	/* The next request runs on the new map. */
	assert_true(umdev_vqd_add(&f->d, &b, 1, 0) >= 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	umdev_vq_push(f->vq, e.head, 512);
	umdev_as_map_put(with);
	umdev_as_map_put(without);
	umdev_as_map_put(less);
}

static void test_indirect_across_regions(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b[2] = {
		{ .addr = BUF_GPA, .len = 64 },
		{ .addr = BUF_GPA + 0x2000, .len = 0x20, .write = true },
	};
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	int h;

	fx_start(f, 16, false, true);
	fill(f, BUF_GPA, 64, 5);
	h = umdev_vqd_add(&f->d, b, 2, GPA_B - 16);
	assert_true(h >= 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.head, h);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 1);
	assert_int_equal(e.in_len, 0x20);
	check_iov_data(f, iov, 1, BUF_GPA, 64);
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
	c.used_addr = GPA_C + REGION_CD - 8; /* read-only C into write-only D */
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EFAULT);
	c.used_addr = GPA_B + REGION_AB - 8; /* runs past B into nothing */
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EFAULT);
	c.used_addr = f->d.used_gpa;
	c.desc_addr = GPA_B + 0x10000;
	c.size = 32768; /* desc table would run past B into nothing */
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), -EFAULT);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_STOPPED);
	c.size = 16;
	c.desc_addr = f->d.desc_gpa;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c), 0);
	/*
	 * Across adjacent regions (a vIOMMU's page windows) a ring part runs
	 * on a view, where views can be made (not under qemu-user).
	 */
	umdev_vq_stop(f->vq);
	c.used_addr = GPA_B - 8;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &c),
			 umdev_as_views_supported() ? 0 : -EFAULT);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_simple_chain),
		T(test_rw_split),
		T(test_cross_region),
		T(test_grow_map),
		T(test_indirect),
		T(test_indirect_across_regions),
		T(test_shrink_map),
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
#undef T
	};

	int r = cmocka_run_group_tests_name("virtio-vq", tests, NULL, NULL);

	return r + vq_hostile_tests();
}
