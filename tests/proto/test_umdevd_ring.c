/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd ring semantics seen from the driver: ring enable states, legacy
 * front-ends without protocol features, NOFD kick/call (polling), stopping
 * with requests in flight, used lengths, and notification suppression
 * (NO_INTERRUPT and EVENT_IDX's used_event).
 */
#include "proto_common.h"

#include <string.h>
#include <unistd.h>

#define REGION (16ull << 20)

static struct proto_srv srv;

static int setup_ram(void **state)
{
	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--device",
			   "virtio-blk,id=blk0,socket=@SOCK@,backend=ram:64M,num-queues=2", NULL);
	return 0;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	assert_true(alive);
	return 0;
}

static int submit_read(struct umdev_vuc *c, unsigned q, uint64_t buf, uint64_t cookie)
{
	struct umdev_vqd_buf b = { .addr = buf, .len = 4096, .write = true };

	return umdev_vblk_submit(c, q, VIRTIO_BLK_T_IN, cookie * 8, &b, 1, cookie, false);
}

/* Bring-up up to (not including) the rings. */
static void bare(struct umdev_vuc *c, uint64_t features)
{
	uint64_t sizes[1] = { REGION };

	assert_int_equal(umdev_vuc_connect(c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(c, ~0ull), 0);
	assert_int_equal(umdev_vuc_set_features(c, features), 0);
	assert_int_equal(umdev_vuc_mem_create(c, sizes, 1, 0), 0);
	assert_int_equal(umdev_vuc_set_mem_table(c, 1), 0);
	assert_int_equal(umdev_vuc_vq_init(c, 0, 64, true), 0);
}

static void test_disabled_until_enable(void **state)
{
	struct vhost_user_vring_state st = { .index = 0, .num = 64 };
	struct umdev_vblk_cpl cpl;
	struct umdev_vuc c;
	uint64_t buf, u = 0;

	bare(&c, 1ull << VIRTIO_F_VERSION_1);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	/* Everything but SET_VRING_ENABLE. */
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_NUM, &st, sizeof(st), NULL, 0),
			 0);
	st.num = 0;
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_BASE, &st, sizeof(st), NULL, 0),
			 0);
	{
		struct vhost_user_vring_addr a = {
			.index = 0,
			.desc_user_addr = umdev_vuc_gpa_to_uva(&c, c.vqs[0].drv.desc_gpa),
			.used_user_addr = umdev_vuc_gpa_to_uva(&c, c.vqs[0].drv.used_gpa),
			.avail_user_addr = umdev_vuc_gpa_to_uva(&c, c.vqs[0].drv.avail_gpa),
		};

		assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a),
						   NULL, 0),
				 0);
	}
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_KICK, &u, sizeof(u),
					   &c.vqs[0].kick_fd, 1),
			 0);
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_CALL, &u, sizeof(u),
					   &c.vqs[0].call_fd, 1),
			 0);
	assert_int_equal(submit_read(&c, 0, buf, 1), 0);
	/* With protocol features negotiated the ring starts disabled. */
	assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, 300), 0);
	assert_int_equal(umdev_vuc_vq_enable(&c, 0, true), 0);
	assert_int_equal(umdev_vuc_kick(&c, 0), 0);
	assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, PROTO_IO_TIMEOUT_MS), 1);
	assert_int_equal(cpl.status, VIRTIO_BLK_S_OK);
	/* Disabled again: no progress; re-enabled: progress. */
	assert_int_equal(umdev_vuc_vq_enable(&c, 0, false), 0);
	assert_int_equal(submit_read(&c, 0, buf, 2), 0);
	assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, 300), 0);
	assert_int_equal(umdev_vuc_vq_enable(&c, 0, true), 0);
	assert_int_equal(umdev_vuc_kick(&c, 0), 0);
	assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, PROTO_IO_TIMEOUT_MS), 1);
	assert_int_equal(cpl.cookie, 2);
	umdev_vuc_close(&c);
}

static void test_legacy_front_end(void **state)
{
	uint64_t sizes[1] = { REGION }, f = 1ull << VIRTIO_F_VERSION_1, got;
	struct umdev_vuc c;
	uint64_t buf;

	/* A front-end that never negotiates protocol features: rings start
	 * enabled, and no message asks for an ack. */
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_FEATURES, &got), 0);
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0), 0);
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_FEATURES, &f, sizeof(f), NULL, 0), 0);
	c.features = got;
	c.acked_features = f;
	assert_int_equal(umdev_vuc_mem_create(&c, sizes, 1, 0), 0);
	assert_int_equal(umdev_vuc_set_mem_table(&c, 1), 0);
	assert_int_equal(umdev_vuc_vq_init(&c, 0, 64, true), 0);
	assert_int_equal(umdev_vuc_vq_start(&c, 0, 0), 0); /* sends no ENABLE */
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096, 1), VIRTIO_BLK_S_OK);
	umdev_vuc_close(&c);
}

static void test_nofd_kick_and_call(void **state)
{
	struct umdev_vblk_cpl cpl;
	struct umdev_vuc c;
	uint64_t buf;

	/* No kick fd: the back-end must poll. No call fd: we poll. */
	bare(&c, 1ull << VIRTIO_F_VERSION_1);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	{
		struct vhost_user_vring_state st = { .index = 0, .num = 64 };
		struct vhost_user_vring_addr a = {
			.index = 0,
			.desc_user_addr = umdev_vuc_gpa_to_uva(&c, c.vqs[0].drv.desc_gpa),
			.used_user_addr = umdev_vuc_gpa_to_uva(&c, c.vqs[0].drv.used_gpa),
			.avail_user_addr = umdev_vuc_gpa_to_uva(&c, c.vqs[0].drv.avail_gpa),
		};
		uint64_t u = 0 | VHOST_USER_VRING_NOFD;

		assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_NUM, &st, sizeof(st),
						   NULL, 0),
				 0);
		st.num = 0;
		assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_BASE, &st, sizeof(st),
						   NULL, 0),
				 0);
		assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL,
						   0),
				 0);
		assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_CALL, &u, sizeof(u), NULL,
						   0),
				 0);
		/* With no kick fd the ring starts at SET_VRING_KICK itself. */
		assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_KICK, &u, sizeof(u), NULL,
						   0),
				 0);
		assert_int_equal(umdev_vuc_vq_enable(&c, 0, true), 0);
	}
	c.vqs[0].no_interrupt = true;
	for (unsigned i = 0; i < 20; i++) {
		/* No kick at all: submit with no_kick. */
		struct umdev_vqd_buf b = { .addr = buf, .len = 4096, .write = true };

		assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_IN, i, &b, 1, i, true), 0);
		assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, PROTO_IO_TIMEOUT_MS), 1);
		assert_int_equal(cpl.status, VIRTIO_BLK_S_OK);
	}
	umdev_vuc_close(&c);
}

static void test_stop_with_requests_in_flight(void **state)
{
	struct umdev_vuc c;
	uint64_t bufs;
	uint16_t base;

	proto_connect_blk(&c, srv.sock, 1, 128, 1, REGION);
	bufs = umdev_vuc_alloc(&c, 0, 40 * 4096, 4096);
	for (unsigned i = 0; i < 40; i++)
		assert_int_equal(submit_read(&c, 0, bufs + i * 4096ull, i), 0);
	/* GET_VRING_BASE returns once the ring is stopped: every request
	 * popped has been completed into the used ring by then. */
	assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base), 0);
	assert_int_equal(base, __atomic_load_n(&c.vqs[0].drv.used->idx, __ATOMIC_ACQUIRE));
	assert_true(base <= 40);
	/* Resume and collect the rest. */
	assert_int_equal(umdev_vuc_vq_start(&c, 0, base), 0);
	assert_int_equal(umdev_vuc_kick(&c, 0), 0);
	for (unsigned got = 0; got < 40;) {
		struct umdev_vblk_cpl cpl[40];
		int n = umdev_vblk_wait(&c, 0, cpl, 40, PROTO_IO_TIMEOUT_MS);

		assert_true(n > 0);
		got += (unsigned)n;
	}
	umdev_vuc_close(&c);
}

static void test_used_len(void **state)
{
	struct umdev_vblk_cpl cpl;
	struct umdev_vuc c;
	uint64_t buf;

	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	buf = umdev_vuc_alloc(&c, 0, 8192, 4096);
	/* used.len counts the bytes written into the chain: data + status. */
	assert_int_equal(submit_read(&c, 0, buf, 1), 0);
	assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, PROTO_IO_TIMEOUT_MS), 1);
	assert_int_equal(cpl.len, 4096 + 1);
	assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_OUT, 0,
					   &(struct umdev_vqd_buf){ .addr = buf, .len = 8192 }, 1,
					   2, false),
			 0);
	assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, PROTO_IO_TIMEOUT_MS), 1);
	assert_int_equal(cpl.status, VIRTIO_BLK_S_OK);
	assert_int_equal(cpl.len, 1);
	umdev_vuc_close(&c);
}

static void test_no_interrupt_flag(void **state)
{
	struct umdev_vblk_cpl cpl;
	struct umdev_vuc c;
	uint64_t buf;

	/* Without EVENT_IDX, VIRTQ_AVAIL_F_NO_INTERRUPT asks for silence. */
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	c.vqs[0].no_interrupt = true;
	c.want_features = 1ull << VIRTIO_F_VERSION_1;
	assert_int_equal(umdev_vuc_start_blk(&c, 1, 64, 1, REGION, 0), 0);
	proto_drain_calls(&c, 1);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	for (unsigned i = 0; i < 50; i++) {
		assert_int_equal(submit_read(&c, 0, buf, i), 0);
		assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, PROTO_IO_TIMEOUT_MS), 1);
	}
	assert_int_equal(umdev_vuc_wait_call(&c, 0, 50), 0);
	umdev_vuc_close(&c);
}

static void test_event_idx_used_event(void **state)
{
	struct umdev_vblk_cpl cpl;
	struct umdev_vuc c;
	struct umdev_vqd *d;
	uint64_t buf;

	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	c.want_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX);
	assert_int_equal(umdev_vuc_start_blk(&c, 1, 64, 1, REGION, 0), 0);
	d = &c.vqs[0].drv;
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	/* One request first: like Linux vhost, a back-end may signal the
	 * first completion after a start whatever used_event says (the spec
	 * only says SHOULD NOT), so that one does not count. */
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096, 1), VIRTIO_BLK_S_OK);
	while (umdev_vuc_wait_call(&c, 0, 0) == 1)
		;
	for (unsigned round = 0; round < 3; round++) {
		uint16_t start = d->last_used_idx;

		/* "Interrupt me once used->idx moves past start + 3." */
		umdev_vqd_set_used_event(d, (uint16_t)(start + 3));
		for (unsigned i = 0; i < 4; i++) {
			assert_int_equal(submit_read(&c, 0, buf, i), 0);
			/* Busy-wait for the completion without reaping (reaping
			 * would move used_event). */
			for (unsigned spin = 0;
			     __atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE) == (uint16_t)(start + i);
			     spin++) {
				assert_true(spin < 5000000);
			}
			if (i == 3)
				assert_int_equal(umdev_vuc_wait_call(&c, 0, PROTO_IO_TIMEOUT_MS), 1);
			else if (umdev_vuc_wait_call(&c, 0, 20) != 0)
				fail_msg("round %u: interrupt after completion %u, used_event %u, used %u",
					 round, i + 1, (unsigned)(uint16_t)(start + 3),
					 (unsigned)d->used->idx);
		}
		for (unsigned i = 0; i < 4; i++)
			assert_int_equal(umdev_vblk_poll(&c, 0, &cpl, 1), 1);
	}
	umdev_vuc_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_disabled_until_enable, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_front_end, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_nofd_kick_and_call, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_stop_with_requests_in_flight, setup_ram,
						teardown),
		cmocka_unit_test_setup_teardown(test_used_len, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_no_interrupt_flag, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx_used_event, setup_ram, teardown),
	};

	return cmocka_run_group_tests_name("umdevd-ring", tests, NULL, NULL);
}
