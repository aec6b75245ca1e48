/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hostile packed rings: descriptors written by hand. Each case must break
 * the queue with exactly one log line naming it, and never crash or hand
 * out memory outside guest RAM (expect_broken in vq_fixture.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vq_fixture.h"

/* Write slot @i; the flags carry avail bits for @wrap unless @raw. */
static void pdesc(struct fx *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t id,
		  uint16_t flags, bool wrap)
{
	struct virtq_packed_desc *d = &f->d.pdesc[i];

	d->addr = addr;
	d->len = len;
	d->id = id;
	__atomic_store_n(&d->flags,
			 (uint16_t)(flags | (wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED)),
			 __ATOMIC_RELEASE);
}

static struct virtq_packed_desc *pind(struct fx *f)
{
	return drv_ptr(f, IND_GPA);
}

static void test_bad_wrap_in_chain(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, false);
	/* The second descriptor carries the other lap's bits. */
	pdesc(f, 1, BUF_GPA, 8, 0, 0, false);
	pdesc(f, 0, BUF_GPA, 8, 0, VIRTQ_DESC_F_NEXT, true);
	expect_broken(f, MAX_IOV, "not available");
}

static void test_wrong_wrap_is_not_available(void **state)
{
	struct fx *f = *state;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;

	fx_start_packed(f, 8, false, false);
	/* A head written for the other lap is simply not there yet. */
	pdesc(f, 0, BUF_GPA, 8, 0, 0, false);
	assert_false(umdev_vq_has_avail(f->vq));
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 0);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);
}

static void test_id_out_of_range(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, false);
	pdesc(f, 0, BUF_GPA, 8, 8, 0, true);
	expect_broken(f, MAX_IOV, "buffer id 8 out of range");
}

static void test_id_in_use(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e;

	fx_start_packed(f, 8, false, false);
	pdesc(f, 0, BUF_GPA, 8, 3, 0, true);
	pop_n(f, &e, 1);
	pdesc(f, 1, BUF_GPA, 8, 3, 0, true);
	expect_broken(f, MAX_IOV, "already in use");
}

static void test_huge_chain(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, false);
	/* Every slot says NEXT, and the lap after it too: a chain with no end. */
	for (uint16_t i = 1; i < 8; i++)
		pdesc(f, i, BUF_GPA, 8, 0, VIRTQ_DESC_F_NEXT, true);
	pdesc(f, 0, BUF_GPA, 8, 0, VIRTQ_DESC_F_NEXT, true);
	expect_broken(f, 64, "not available");
}

static void test_indirect_in_indirect(void **state)
{
	struct fx *f = *state;
	struct virtq_packed_desc *t = pind(f);

	fx_start_packed(f, 8, false, true);
	t[0] = (struct virtq_packed_desc){ .addr = BUF_GPA, .len = 8 };
	t[1] = (struct virtq_packed_desc){ .addr = IND_GPA + 0x100, .len = 16,
					   .flags = VIRTQ_DESC_F_INDIRECT };
	pdesc(f, 0, IND_GPA, 32, 0, VIRTQ_DESC_F_INDIRECT, true);
	expect_broken(f, MAX_IOV, "nested indirect");
}

static void test_indirect_with_next(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, true);
	pind(f)[0] = (struct virtq_packed_desc){ .addr = BUF_GPA, .len = 8 };
	pdesc(f, 1, BUF_GPA, 8, 0, 0, true);
	pdesc(f, 0, IND_GPA, 16, 0, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, true);
	expect_broken(f, MAX_IOV, "INDIRECT together with NEXT");
}

static void test_indirect_mid_chain(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, true);
	pind(f)[0] = (struct virtq_packed_desc){ .addr = BUF_GPA, .len = 8 };
	pdesc(f, 1, IND_GPA, 16, 0, VIRTQ_DESC_F_INDIRECT, true);
	pdesc(f, 0, BUF_GPA, 8, 0, VIRTQ_DESC_F_NEXT, true);
	expect_broken(f, MAX_IOV, "INDIRECT descriptor inside a chain");
}

static void test_indirect_not_negotiated(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, false);
	pind(f)[0] = (struct virtq_packed_desc){ .addr = BUF_GPA, .len = 8 };
	pdesc(f, 0, IND_GPA, 16, 0, VIRTQ_DESC_F_INDIRECT, true);
	expect_broken(f, MAX_IOV, "INDIRECT_DESC not negotiated");
}

static void test_indirect_bad_len(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, true);
	pdesc(f, 0, IND_GPA, 24, 0, VIRTQ_DESC_F_INDIRECT, true);
	expect_broken(f, MAX_IOV, "bad indirect table length 24");
}

static void test_indirect_outside_memory(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, true);
	pdesc(f, 0, GPA_GAP, 32, 0, VIRTQ_DESC_F_INDIRECT, true);
	expect_broken(f, MAX_IOV, "not in readable guest memory");
}

static void test_read_after_write(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, false);
	pdesc(f, 1, BUF_GPA, 8, 0, 0, true);
	pdesc(f, 0, BUF_GPA, 8, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, true);
	expect_broken(f, MAX_IOV, "readable descriptor after a writable one");
}

static void test_buffer_outside_memory(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, false);
	pdesc(f, 0, GPA_GAP, 8, 0, 0, true);
	expect_broken(f, MAX_IOV, "not in readable guest memory");
}

static void test_write_to_readonly(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, false);
	pdesc(f, 0, GPA_C, 8, 0, VIRTQ_DESC_F_WRITE, true);
	expect_broken(f, MAX_IOV, "not in writable guest memory");
}

static void test_too_many_iovecs(void **state)
{
	struct fx *f = *state;

	fx_start_packed(f, 8, false, false);
	pdesc(f, 2, BUF_GPA, 8, 0, 0, true);
	pdesc(f, 1, BUF_GPA, 8, 0, VIRTQ_DESC_F_NEXT, true);
	pdesc(f, 0, BUF_GPA, 8, 0, VIRTQ_DESC_F_NEXT, true);
	expect_broken(f, 2, "more than 2 iovecs");
}

/* A corrupt inflight region is refused, the queue keeps running. */
static void test_inflight_corrupt(void **state)
{
	struct fx *f = *state;
	struct vhost_user_inflight_queue_packed *r;
	uint16_t heads[8];

	f->inflight = calloc(1, umdev_vq_inflight_size_packed(8));
	assert_non_null(f->inflight);
	r = (struct vhost_user_inflight_queue_packed *)f->inflight;
	umdev_vq_set_inflight(f->vq, f->inflight);
	fx_start_packed(f, 8, false, false);
	r->desc[3].inflight = 1; /* not on the free list: "in flight" */
	r->desc[3].num = 9; /* longer than the ring */
	r->desc[7].next = 8;
	r->desc[2].next = 4; /* take 3 off the free list */
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), -EIO);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);
	r->desc[3].num = 1;
	r->desc[3].last = 3;
	r->desc[3].id = 200; /* id out of range */
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), -EIO);
	r->desc[3].id = 5;
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), 1);
	assert_int_equal(heads[0], 5);
}

int vq_packed_hostile_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_wrap_in_chain, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_wrong_wrap_is_not_available, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_id_out_of_range, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_id_in_use, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_huge_chain, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_indirect_in_indirect, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_indirect_with_next, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_indirect_mid_chain, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_indirect_not_negotiated, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_indirect_bad_len, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_indirect_outside_memory, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_read_after_write, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_buffer_outside_memory, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_to_readonly, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_too_many_iovecs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_inflight_corrupt, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests_name("packed-hostile", tests, NULL, NULL);
}
