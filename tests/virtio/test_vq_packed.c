/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device-side packed virtqueue (src/virtio/vq_packed.c) driven by our
 * driver-side packed queue (src/client/virtq_drv_packed.c), guest memory
 * mapped twice (vq_fixture.c): chains, indirect tables, wrap counters,
 * out-of-order completion, both event suppression modes, stop/start and
 * inflight recovery. Hostile rings are in test_vq_packed_hostile.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <cmocka.h>

#include "vq_fixture.h"

static void test_packed_simple(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b = { .addr = BUF_GPA, .len = 100 };
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	uint16_t id;
	uint32_t len;
	int h;

	fx_start_packed(f, 16, false, false);
	assert_true(umdev_vq_is_packed(f->vq));
	assert_false(umdev_vq_has_avail(f->vq));
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 0);
	fill(f, BUF_GPA, 100, 3);
	h = umdev_vqd_add(&f->d, &b, 1, 0);
	assert_true(h >= 0);
	assert_true(umdev_vq_has_avail(f->vq));
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.head, h);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 0);
	assert_int_equal(e.out_len, 100);
	check_iov_data(f, iov, 1, BUF_GPA, 100);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq), 1 | VIRTQ_PACKED_WRAP_BIT);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 0);
	assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 0);
	umdev_vq_push(f->vq, e.head, 7);
	assert_int_equal(umdev_vq_last_used_idx(f->vq), 1 | VIRTQ_PACKED_WRAP_BIT);
	assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
	assert_int_equal(id, h);
	assert_int_equal(len, 7);
	assert_int_equal(umdev_vqd_num_free(&f->d), 16);
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	assert_int_equal(read_call(f), 1);
	/* Nothing pushed since: no second interrupt for the same batch. */
	assert_int_equal(umdev_vq_notify(f->vq), 0);
}

/*
 * Many laps of a small ring with chains of 1-3 descriptors and indirect
 * tables, completed in reverse order: ids, lengths, data and both wrap
 * counters must stay right across every lap.
 */
static void test_packed_wrap_out_of_order(void **state)
{
	struct fx *f = *state;
	struct iovec iov[8][MAX_IOV];
	struct umdev_vq_elem e[8];
	unsigned laps_checked = 0;

	fx_start_packed(f, 8, false, true);
	for (unsigned round = 0; round < 500; round++) {
		int ids[8];
		unsigned n = 0, used_slots = 0;

		/* Post until the ring is full (or 4 chains). */
		while (n < 4) {
			unsigned k = 1 + (round + n) % 3;
			bool ind = (round + n) % 5 == 0;
			struct umdev_vqd_buf b[3];

			if (!ind && k > umdev_vqd_num_free(&f->d))
				break;
			if (ind && umdev_vqd_num_free(&f->d) < 1)
				break;
			for (unsigned j = 0; j < k; j++) {
				uint64_t a = BUF_GPA + 0x1000 * (n * 3 + j);

				b[j] = (struct umdev_vqd_buf){ .addr = a, .len = 64 + j,
							       .write = j == k - 1 && k > 1 };
				fill(f, a, 64 + j, (uint8_t)(round + j));
			}
			ids[n] = umdev_vqd_add(&f->d, b, k, ind ? IND_GPA + 0x100 * n : 0);
			assert_true(ids[n] >= 0);
			used_slots += ind ? 1 : k;
			n++;
		}
		assert_true(n > 0);
		for (unsigned i = 0; i < n; i++) {
			unsigned k = 1 + (round + i) % 3;

			assert_int_equal(umdev_vq_pop(f->vq, &e[i], iov[i], MAX_IOV), 1);
			assert_int_equal(e[i].head, ids[i]);
			assert_int_equal(e[i].n_out + e[i].n_in, k);
			assert_int_equal(e[i].in_len, k > 1 ? 64 + k - 1 : 0);
			check_iov_data(f, iov[i], 1, BUF_GPA + 0x1000 * (i * 3), 64);
		}
		assert_int_equal(umdev_vq_pop(f->vq, &e[0], iov[0], MAX_IOV), 0);
		for (unsigned i = n; i-- > 0;)
			umdev_vq_push(f->vq, e[i].head, i);
		for (unsigned i = n; i-- > 0;) {
			uint16_t id;
			uint32_t len;

			assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
			assert_int_equal(id, ids[i]);
			assert_int_equal(len, i);
		}
		assert_int_equal(umdev_vqd_num_free(&f->d), 8);
		assert_int_equal(umdev_vq_inuse(f->vq), 0);
		/* Device and driver agree on where they are, wrap included. */
		assert_int_equal(umdev_vq_last_avail_idx(f->vq),
				 f->d.next_avail | (f->d.avail_wrap ? VIRTQ_PACKED_WRAP_BIT : 0));
		assert_int_equal(umdev_vq_last_used_idx(f->vq),
				 f->d.next_used | (f->d.used_wrap ? VIRTQ_PACKED_WRAP_BIT : 0));
		laps_checked += !f->d.avail_wrap;
		(void)used_slots;
	}
	assert_true(laps_checked > 0); /* the wrap counter did flip */
}

/* One interrupt per batch; flags mode DISABLE/ENABLE. */
static void test_packed_notify_flags(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e[4];

	fx_start_packed(f, 16, false, false);
	add_n(f, 4);
	pop_n(f, e, 4);
	umdev_vq_push(f->vq, e[0].head, 0);
	umdev_vq_push(f->vq, e[1].head, 0);
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	assert_int_equal(umdev_vq_notify(f->vq), 0);
	assert_int_equal(read_call(f), 1);
	umdev_vqd_set_interrupts(&f->d, VIRTQ_PACKED_EVENT_DISABLE, 0);
	umdev_vq_push(f->vq, e[2].head, 0);
	assert_int_equal(umdev_vq_notify(f->vq), 0);
	umdev_vqd_set_interrupts(&f->d, VIRTQ_PACKED_EVENT_ENABLE, 0);
	umdev_vq_push(f->vq, e[3].head, 0);
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	assert_int_equal(read_call(f), 1);
}

/* EVENT_IDX: DESC mode interrupts only when a batch crosses the named slot. */
static void test_packed_notify_desc(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e[12];

	fx_start_packed(f, 8, true, false);
	add_n(f, 6);
	pop_n(f, e, 6);
	/* First decision after start always signals. */
	umdev_vq_push(f->vq, e[0].head, 0);
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	/* Ask for an interrupt once slot 3 is used (wrap 1). */
	umdev_vqd_set_interrupts(&f->d, VIRTQ_PACKED_EVENT_DESC, 3 | VIRTQ_PACKED_WRAP_BIT);
	umdev_vq_push(f->vq, e[1].head, 0); /* used: slot 1 */
	assert_int_equal(umdev_vq_notify(f->vq), 0);
	umdev_vq_push(f->vq, e[2].head, 0); /* slot 2 */
	umdev_vq_push(f->vq, e[3].head, 0); /* slot 3: crossed in this batch */
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	umdev_vq_push(f->vq, e[4].head, 0);
	assert_int_equal(umdev_vq_notify(f->vq), 0);
	/* An event in the next lap (slot 1, wrap 0) across the ring end. */
	for (unsigned i = 0; i < 5; i++) {
		uint16_t id;
		uint32_t len;

		assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
	}
	umdev_vqd_set_interrupts(&f->d, VIRTQ_PACKED_EVENT_DESC, 1);
	add_n(f, 5);
	pop_n(f, e + 6, 5);
	umdev_vq_push(f->vq, e[5].head, 0); /* slot 5 */
	umdev_vq_push(f->vq, e[6].head, 0); /* slot 6 */
	assert_int_equal(umdev_vq_notify(f->vq), 0);
	umdev_vq_push(f->vq, e[7].head, 0); /* slot 7 */
	umdev_vq_push(f->vq, e[8].head, 0); /* slot 0, wrap 0 */
	assert_int_equal(umdev_vq_notify(f->vq), 0);
	umdev_vq_push(f->vq, e[9].head, 0); /* slot 1, wrap 0: the event */
	assert_int_equal(umdev_vq_notify(f->vq), 1);
	/* Past the event: quiet again. */
	umdev_vq_push(f->vq, e[10].head, 0);
	assert_int_equal(umdev_vq_notify(f->vq), 0);
}

/* Kick suppression through the device area, both modes. */
static void test_packed_kicks(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e[3];

	fx_start_packed(f, 8, false, false);
	umdev_vq_disable_kicks(f->vq);
	add_n(f, 1);
	assert_false(umdev_vqd_kick_needed(&f->d));
	assert_true(umdev_vq_enable_kicks(f->vq)); /* a buffer is waiting */
	pop_n(f, e, 1);
	assert_false(umdev_vq_enable_kicks(f->vq));
	add_n(f, 1);
	assert_true(umdev_vqd_kick_needed(&f->d));
	assert_false(umdev_vqd_kick_needed(&f->d)); /* nothing new */
	pop_n(f, e + 1, 1);

	(void)umdev_vq_stop(f->vq);
	fx_start_packed(f, 8, true, false);
	assert_false(umdev_vq_enable_kicks(f->vq)); /* DESC at slot 0 */
	add_n(f, 1);
	assert_true(umdev_vqd_kick_needed(&f->d));
	add_n(f, 1);
	assert_false(umdev_vqd_kick_needed(&f->d)); /* device has not moved its event */
	pop_n(f, e, 2);
	assert_false(umdev_vq_enable_kicks(f->vq)); /* DESC at slot 2 */
	add_n(f, 1);
	assert_true(umdev_vqd_kick_needed(&f->d));
}

/* Stop returns idx | wrap << 15; a restart there carries on. */
static void test_packed_stop_start(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e[8];
	uint16_t base, used, id;
	uint32_t len;

	fx_start_packed(f, 4, false, false);
	for (unsigned i = 0; i < 5; i++) {
		add_n(f, 1);
		pop_n(f, e, 1);
		umdev_vq_push(f->vq, e[0].head, 0);
		assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
	}
	used = umdev_vq_last_used_idx(f->vq);
	base = umdev_vq_stop(f->vq);
	assert_int_equal(base, 1); /* slot 1, wrap 0 */
	assert_int_equal(used, 1);
	f->cfg.last_avail_idx = base;
	f->cfg.last_used_idx = used;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
	add_n(f, 3);
	pop_n(f, e, 3);
	for (unsigned i = 0; i < 3; i++)
		umdev_vq_push(f->vq, e[i].head, 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq), 0 | VIRTQ_PACKED_WRAP_BIT);
	/* A base outside the ring is refused. */
	(void)umdev_vq_stop(f->vq);
	f->cfg.last_avail_idx = 4;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), -EINVAL);
}

static struct vhost_user_inflight_queue *new_region(uint16_t size)
{
	struct vhost_user_inflight_queue *r = calloc(1, umdev_vq_inflight_size_packed(size));

	assert_non_null(r);
	return r;
}

/* Kill the device (free it without completing), start a new one on the region. */
static void restart_device(struct fx *f, uint16_t stale_base)
{
	int err = 0;

	umdev_vq_free(f->vq);
	f->vq = umdev_vq_new("test.q0", &err);
	assert_non_null(f->vq);
	umdev_vq_set_inflight(f->vq, f->inflight);
	umdev_vq_set_call_fd(f->vq, f->call_fd);
	/* QEMU may hand back the ring's start as the base after a crash. */
	f->cfg.last_avail_idx = stale_base;
	f->cfg.last_used_idx = stale_base;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
}

static void test_packed_inflight_recover(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf two[2] = {
		{ .addr = BUF_GPA, .len = 32 },
		{ .addr = BUF_GPA + 0x1000, .len = 16, .write = true },
	};
	struct umdev_vqd_buf one = { .addr = BUF_GPA + 0x2000, .len = 48 };
	struct iovec iov[4][MAX_IOV];
	struct umdev_vq_elem e[4];
	uint16_t heads[8], id;
	uint32_t len;
	int ids[4];

	f->inflight = new_region(8);
	umdev_vq_set_inflight(f->vq, f->inflight);
	fx_start_packed(f, 8, false, true);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), 0); /* fresh */
	fill(f, BUF_GPA, 32, 1);
	fill(f, BUF_GPA + 0x2000, 48, 2);
	/* A first request completes, so positions are not at the start. */
	ids[0] = umdev_vqd_add(&f->d, &one, 1, 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e[0], iov[0], MAX_IOV), 1);
	umdev_vq_push(f->vq, e[0].head, 0);
	assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
	ids[1] = umdev_vqd_add(&f->d, two, 2, 0); /* slots 1-2 */
	ids[2] = umdev_vqd_add(&f->d, two, 2, IND_GPA); /* slot 3 */
	ids[3] = umdev_vqd_add(&f->d, &one, 1, 0); /* slot 4 */
	for (unsigned i = 1; i < 4; i++)
		assert_int_equal(umdev_vq_pop(f->vq, &e[i], iov[i], MAX_IOV), 1);
	/* The middle one completes; its used descriptor lands on slot 1. */
	umdev_vq_push(f->vq, e[2].head, 5);
	assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
	assert_int_equal(id, ids[2]);

	restart_device(f, VIRTQ_PACKED_WRAP_BIT);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), 2);
	assert_int_equal(heads[0], ids[1]);
	assert_int_equal(heads[1], ids[3]);
	/* Slot 1 holds a used descriptor now: the chain comes from the region. */
	assert_int_equal(umdev_vq_get_head(f->vq, heads[0], &e[0], iov[0], MAX_IOV), 1);
	assert_int_equal(e[0].n_out, 1);
	assert_int_equal(e[0].n_in, 1);
	check_iov_data(f, iov[0], 1, BUF_GPA, 32);
	assert_int_equal(umdev_vq_get_head(f->vq, heads[1], &e[1], iov[1], MAX_IOV), 1);
	check_iov_data(f, iov[1], 1, BUF_GPA + 0x2000, 48);
	assert_int_equal(umdev_vq_inuse(f->vq), 2);
	/* Positions come from the region: used after the 2 completed chains'
	 * slots (1 + 1), avail after everything posted (5). */
	assert_int_equal(umdev_vq_last_used_idx(f->vq), 2 | VIRTQ_PACKED_WRAP_BIT);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq), 5 | VIRTQ_PACKED_WRAP_BIT);
	umdev_vq_push(f->vq, e[1].head, 1);
	umdev_vq_push(f->vq, e[0].head, 2);
	assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
	assert_int_equal(id, ids[3]);
	assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
	assert_int_equal(id, ids[1]);
	assert_int_equal(umdev_vqd_num_free(&f->d), 8);
	/* And the ring keeps working, across the wrap. */
	for (unsigned i = 0; i < 10; i++) {
		add_n(f, 1);
		pop_n(f, e, 1);
		umdev_vq_push(f->vq, e[0].head, 0);
		assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
	}
	/* A second crash with nothing in flight resubmits nothing. */
	restart_device(f, VIRTQ_PACKED_WRAP_BIT);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), 0);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq),
			 f->d.next_avail | (f->d.avail_wrap ? VIRTQ_PACKED_WRAP_BIT : 0));
}

/* A crash after the used descriptor was published but before the batch was
 * committed in the region: recovery must commit it, not resubmit it. */
static void test_packed_inflight_half_batch(void **state)
{
	struct fx *f = *state;
	struct vhost_user_inflight_queue_packed *r, before;
	struct umdev_vq_elem e[2];
	uint16_t heads[8], id;
	uint32_t len;

	f->inflight = new_region(8);
	r = (struct vhost_user_inflight_queue_packed *)f->inflight;
	umdev_vq_set_inflight(f->vq, f->inflight);
	fx_start_packed(f, 8, false, false);
	add_n(f, 2);
	pop_n(f, e, 2);
	before = *r;
	umdev_vq_push(f->vq, e[0].head, 0);
	/* Undo the commit steps, as if killed right after the flags store. */
	r->old_free_head = before.old_free_head;
	r->old_used_idx = before.old_used_idx;
	r->old_used_wrap_counter = before.old_used_wrap_counter;
	r->desc[0].inflight = 1;
	restart_device(f, VIRTQ_PACKED_WRAP_BIT);
	assert_int_equal(umdev_vq_recover_inflight(f->vq, heads, 8), 1);
	assert_int_equal(heads[0], e[1].head);
	assert_int_equal(umdev_vqd_get_used(&f->d, &id, &len), 1);
	assert_int_equal(id, e[0].head);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_packed_simple, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_wrap_out_of_order, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_notify_flags, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_notify_desc, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_kicks, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_stop_start, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_inflight_recover, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_inflight_half_batch, fx_setup,
						fx_teardown),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	return failed + vq_packed_hostile_tests();
}
