/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd over a real vhost-user socket, control plane while the data path
 * runs: stopping and resuming rings, remapping memory under running rings,
 * ADD/REM_MEM_REG, REPLY_ACK, RESET_DEVICE, reconnects and the inflight
 * buffer.
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

/* Bring-up without memory or rings: negotiate and SET_FEATURES only. */
static void connect_bare(struct umdev_vuc *c, uint64_t features)
{
	assert_int_equal(umdev_vuc_connect(c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(c, ~0ull), 0);
	assert_int_equal(umdev_vuc_set_features(c, features), 0);
}

static void write_read(struct umdev_vuc *c, unsigned q, uint64_t sector, uint64_t wb, uint64_t rb,
		       uint32_t len, uint64_t seed)
{
	proto_fill(umdev_vuc_gpa_ptr(c, wb, len), len, seed);
	memset(umdev_vuc_gpa_ptr(c, rb, len), 0, len);
	assert_int_equal(proto_rw(c, q, VIRTIO_BLK_T_OUT, sector, wb, len, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(c, q, VIRTIO_BLK_T_IN, sector, rb, len, 1), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(c, rb, len), len, seed));
}

static void test_vring_base_stop_resume(void **state)
{
	struct umdev_vuc c;
	uint64_t wb, rb;
	uint16_t base;

	proto_connect_blk(&c, srv.sock, 2, 16, 1, REGION);
	wb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	rb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	/* 20 requests on a 16-entry ring: the indices wrap the ring once. */
	for (unsigned i = 0; i < 10; i++)
		write_read(&c, 0, i * 8, wb, rb, 4096, i);
	assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base), 0);
	assert_int_equal(base, 20);
	assert_int_equal(base, c.vqs[0].drv.avail_idx);

	/* A stopped ring ignores new work until it is started again. */
	assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_IN, 0,
					   &(struct umdev_vqd_buf){ .addr = rb, .len = 4096,
								    .write = true },
					   1, 7, false),
			 0);
	{
		struct umdev_vblk_cpl cpl;

		assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, 300), 0);
		assert_int_equal(umdev_vuc_vq_start(&c, 0, base), 0);
		assert_int_equal(umdev_vuc_kick(&c, 0), 0);
		assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, PROTO_IO_TIMEOUT_MS), 1);
		assert_int_equal(cpl.cookie, 7);
		assert_int_equal(cpl.status, VIRTIO_BLK_S_OK);
	}
	write_read(&c, 0, 800, wb, rb, 4096, 99);
	assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base), 0);
	assert_int_equal(base, 23);
	/* Queue 1 was never used: base 0; stopping it twice is harmless. */
	assert_int_equal(umdev_vuc_vq_stop(&c, 1, &base), 0);
	assert_int_equal(base, 0);
	assert_int_equal(umdev_vuc_vq_stop(&c, 1, &base), 0);
	assert_int_equal(base, 0);
	umdev_vuc_close(&c);
}

static void test_mem_table_while_running(void **state)
{
	uint64_t sizes[3] = { REGION, REGION, REGION };
	struct umdev_vblk_cpl cpl[32];
	struct umdev_vuc c;
	uint64_t wb, rb, wb2, rb2, bufs;
	unsigned got = 0;

	connect_bare(&c, 1ull << VIRTIO_F_VERSION_1);
	assert_int_equal(umdev_vuc_mem_create(&c, sizes, 3, 0), 0);
	assert_int_equal(umdev_vuc_set_mem_table(&c, 1), 0);
	assert_int_equal(umdev_vuc_vq_init(&c, 0, 128, true), 0);
	assert_int_equal(umdev_vuc_vq_start(&c, 0, 0), 0);
	wb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	rb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	write_read(&c, 0, 0, wb, rb, 4096, 1);

	/* 32 requests in flight, then a new table (regions 0 and 1) under them. */
	bufs = umdev_vuc_alloc(&c, 0, 32 * 4096, 4096);
	for (unsigned i = 0; i < 32; i++)
		assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_IN, i * 8ull,
						   &(struct umdev_vqd_buf){
							   .addr = bufs + i * 4096ull,
							   .len = 4096, .write = true },
						   1, i, false),
				 0);
	assert_int_equal(umdev_vuc_set_mem_table(&c, 3), 0);
	while (got < 32) {
		int n = umdev_vblk_wait(&c, 0, cpl, 32, PROTO_IO_TIMEOUT_MS);

		assert_true(n > 0);
		for (int k = 0; k < n; k++)
			assert_int_equal(cpl[k].status, VIRTIO_BLK_S_OK);
		got += (unsigned)n;
	}
	/* The rings still work and region 1 is now usable. */
	wb2 = umdev_vuc_alloc(&c, 1, 4096, 4096);
	rb2 = umdev_vuc_alloc(&c, 1, 4096, 4096);
	write_read(&c, 0, 64, wb2, rb2, 4096, 2);
	proto_check_cross_region(&c);
	/* Same again, now with all three regions. */
	assert_int_equal(umdev_vuc_set_mem_table(&c, 7), 0);
	write_read(&c, 0, 128, umdev_vuc_alloc(&c, 2, 4096, 4096), rb, 4096, 3);
	umdev_vuc_close(&c);
}

static void test_add_rem_mem_reg(void **state)
{
	uint64_t sizes[3] = { REGION, REGION, REGION };
	struct umdev_vuc c;
	uint64_t slots, wb, rb, wb1;
	int st;

	connect_bare(&c, 1ull << VIRTIO_F_VERSION_1);
	assert_true(c.acked_protocol_features & (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
	assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_MAX_MEM_SLOTS, &slots), 0);
	assert_true(slots >= 8 && slots <= 4096);
	assert_int_equal(umdev_vuc_mem_create(&c, sizes, 3, 0), 0);
	/* Build the whole table with ADD_MEM_REG, as QEMU does with slots. */
	assert_int_equal(umdev_vuc_add_mem_reg(&c, 0), 0);
	assert_int_equal(umdev_vuc_vq_init(&c, 0, 64, true), 0);
	assert_int_equal(umdev_vuc_vq_start(&c, 0, 0), 0);
	wb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	rb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	write_read(&c, 0, 0, wb, rb, 4096, 1);
	assert_int_equal(umdev_vuc_add_mem_reg(&c, 1), 0);
	assert_int_equal(umdev_vuc_add_mem_reg(&c, 2), 0);
	wb1 = umdev_vuc_alloc(&c, 1, 4096, 4096);
	write_read(&c, 0, 8, wb1, rb, 4096, 2);
	proto_check_cross_region(&c);

	/* Remove region 1: a buffer there must no longer reach the disk. */
	assert_int_equal(umdev_vuc_rem_mem_reg(&c, 1), 0);
	proto_fill(umdev_vuc_gpa_ptr(&c, wb1, 4096), 4096, 3);
	st = proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 16, wb1, 4096, 1);
	assert_true(st == VIRTIO_BLK_S_IOERR || st == -ETIMEDOUT);
	if (st == VIRTIO_BLK_S_IOERR) {
		/* The queue survived the bad request: region 0 and 2 still work. */
		write_read(&c, 0, 24, wb, rb, 4096, 4);
		write_read(&c, 0, 32, umdev_vuc_alloc(&c, 2, 4096, 4096), rb, 4096, 5);
		/* And nothing of the refused write reached the disk. */
		assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 16, rb, 4096, 1),
				 VIRTIO_BLK_S_OK);
		assert_false(proto_check(umdev_vuc_gpa_ptr(&c, rb, 4096), 4096, 3));
	}
	/* Removing a region that is not there fails (ack) or hangs up. */
	st = umdev_vuc_rem_mem_reg(&c, 1);
	assert_true(st == -EIO || st == -ECONNRESET);
	umdev_vuc_close(&c);
}

/*
 * QEMU changes a region's bounds by removing it and adding it back
 * (REM_MEM_REG, then ADD_MEM_REG). A ring that lives in that region cannot
 * run in between, and must run again afterwards.
 */
static void test_ring_region_readded(void **state)
{
	uint64_t sizes[2] = { REGION, REGION };
	struct umdev_vuc c;
	uint64_t wb, rb;

	connect_bare(&c, 1ull << VIRTIO_F_VERSION_1);
	assert_int_equal(umdev_vuc_mem_create(&c, sizes, 2, 0), 0);
	assert_int_equal(umdev_vuc_add_mem_reg(&c, 0), 0);
	assert_int_equal(umdev_vuc_add_mem_reg(&c, 1), 0);
	assert_int_equal(umdev_vuc_vq_init(&c, 0, 64, true), 0);
	assert_int_equal(umdev_vuc_vq_start(&c, 0, 0), 0);
	wb = umdev_vuc_alloc(&c, 1, 4096, 4096);
	rb = umdev_vuc_alloc(&c, 1, 4096, 4096);
	write_read(&c, 0, 0, wb, rb, 4096, 11);
	/* The ring is in region 0: take it away and bring it back. */
	assert_int_equal(umdev_vuc_rem_mem_reg(&c, 0), 0);
	assert_int_equal(umdev_vuc_add_mem_reg(&c, 0), 0);
	write_read(&c, 0, 8, wb, rb, 4096, 12);
	umdev_vuc_close(&c);
}

static void test_reply_ack(void **state)
{
	struct vhost_user_vring_state st;
	struct umdev_vuc c;
	uint64_t u;

	connect_bare(&c, 1ull << VIRTIO_F_VERSION_1);
	assert_true(c.use_reply_ack);
	/* Valid requests are acked with 0 (umdev_vuc_request checks). */
	st = (struct vhost_user_vring_state){ .index = 1, .num = 256 };
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_NUM, &st, sizeof(st), NULL, 0),
			 0);
	u = 1ull << VIRTIO_F_VERSION_1;
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_FEATURES, &u, sizeof(u), NULL, 0), 0);
	/* Invalid ones get a non-zero ack, or the connection is closed (the
	 * spec lets a back-end hang up on errors); either way, never a 0. */
	static const struct vhost_user_vring_state bad[] = {
		{ .index = 1, .num = 3 }, { .index = 1, .num = 65536 }, { .index = 200, .num = 64 },
	};
	for (unsigned i = 0; i < 3; i++) {
		int r = umdev_vuc_request(&c, VHOST_USER_SET_VRING_NUM, &bad[i], sizeof(bad[i]),
					  NULL, 0);

		assert_true(r == -EIO || r == -ECONNRESET);
		/* A refused request may also end the connection after its NACK. */
		if (r == -ECONNRESET || umdev_vuc_is_closed(&c, 200) == 1) {
			umdev_vuc_close(&c);
			connect_bare(&c, 1ull << VIRTIO_F_VERSION_1);
		}
	}
	/* Messages with a reply of their own answer with that reply only. */
	assert_int_equal(umdev_vuc_send(&c, VHOST_USER_GET_FEATURES, VHOST_USER_FLAG_NEED_REPLY,
					NULL, 0, NULL, 0),
			 0);
	{
		struct vhost_user_msg reply;
		uint32_t rsize;

		assert_int_equal(umdev_vuc_wait_reply(&c, VHOST_USER_GET_FEATURES, &reply, 8, &rsize,
						      NULL, NULL),
				 0);
		assert_int_equal(reply.p.u64, c.features);
	}
	/* And the connection is still in step. */
	assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_QUEUE_NUM, &u), 0);
	assert_int_equal(u, 2);
	umdev_vuc_close(&c);
}

static void test_without_reply_ack(void **state)
{
	struct umdev_vuc c;

	/* Not every front-end asks for acks (QEMU without REPLY_ACK). */
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_start_blk(&c, 2, 64, 2, REGION,
					     1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK),
			 0);
	assert_false(c.use_reply_ack);
	proto_check_roundtrip_all_queues(&c, 2);
	umdev_vuc_close(&c);
}

static void test_reset_device(void **state)
{
	struct umdev_vuc c;
	uint64_t wb, rb;
	uint16_t base;

	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	wb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	rb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	write_read(&c, 0, 0, wb, rb, 4096, 1);
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	/* After reset the ring is stopped and forgotten: base reads 0. */
	assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base), 0);
	assert_int_equal(base, 0);
	/* Set up again from scratch on the same connection. */
	assert_int_equal(umdev_vuc_set_features(&c, 1ull << VIRTIO_F_VERSION_1), 0);
	assert_int_equal(umdev_vuc_set_mem_table(&c, 1), 0);
	umdev_vqd_fini(&c.vqs[0].drv);
	assert_int_equal(umdev_vqd_init(&c.vqs[0].drv, c.mem.base, c.mem.gpa_base, c.mem.span,
					c.vqs[0].ring_gpa, 64, false),
			 0);
	assert_int_equal(umdev_vuc_vq_start(&c, 0, 0), 0);
	write_read(&c, 0, 0, wb, rb, 4096, 2);
	umdev_vuc_close(&c);
}

static void test_reconnect(void **state)
{
	struct umdev_vuc c, c2;

	for (unsigned i = 0; i < 3; i++) {
		proto_connect_blk(&c, srv.sock, 2, 64, 1, REGION);
		proto_check_roundtrip_all_queues(&c, 2);
		umdev_vuc_close(&c);
	}
	/* A second front-end while the first is connected must not disturb it. */
	proto_connect_blk(&c, srv.sock, 2, 64, 1, REGION);
	if (umdev_vuc_connect(&c2, srv.sock, 500) == 0) {
		uint64_t f;
		int r = umdev_vuc_get_u64(&c2, VHOST_USER_GET_FEATURES, &f);

		(void)r; /* refused, queued or served: all acceptable */
		umdev_vuc_close(&c2);
	}
	proto_check_roundtrip_all_queues(&c, 2);
	umdev_vuc_close(&c);
}

/* Queue region size for @qsize entries, as the spec lays it out. */
static uint64_t inflight_queue_bytes(uint16_t qsize)
{
	return sizeof(struct vhost_user_inflight_queue) +
	       (uint64_t)qsize * sizeof(struct vhost_user_inflight_desc);
}

static struct vhost_user_inflight_queue *inflight_q(struct umdev_vuc *c, unsigned q)
{
	uint64_t per = c->inflight.mmap_size / c->inflight.num_queues;

	return (struct vhost_user_inflight_queue *)((uint8_t *)c->inflight_map + q * per);
}

static void test_inflight_fd(void **state)
{
	struct vhost_user_inflight_queue *iq;
	struct umdev_vuc c;
	uint64_t wb, rb;

	proto_connect_blk(&c, srv.sock, 2, 128, 1, REGION);
	assert_true(c.inflight_map != NULL);
	assert_true(c.inflight.mmap_size >= 2 * inflight_queue_bytes(128));
	wb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	rb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	for (unsigned i = 0; i < 5; i++)
		write_read(&c, 1, i * 8, wb, rb, 4096, i);
	/* The back-end keeps the region up to date for queue 1. */
	iq = inflight_q(&c, 1);
	assert_int_equal(iq->version, VHOST_USER_INFLIGHT_VERSION);
	assert_int_equal(iq->desc_num, 128);
	assert_int_equal(iq->used_idx, c.vqs[1].drv.used->idx);
	assert_int_equal(iq->used_idx, 10);
	for (unsigned i = 0; i < 128; i++)
		assert_int_equal(iq->desc[i].inflight, 0);
	umdev_vuc_close(&c);
}

/*
 * A back-end restart with a request outstanding, made deterministic: with
 * the first connection gone (nobody processing), the driver posts a write
 * and, playing the dead back-end's part, records it in the inflight buffer
 * as fetched but not completed. The reconnecting front-end passes the
 * buffer with SET_INFLIGHT_FD and the base = used->idx, as QEMU does. A
 * correct back-end resubmits that request exactly once and carries on.
 */
static void test_inflight_resubmit_on_reconnect(void **state)
{
	struct vhost_user_inflight_queue *iq;
	struct umdev_vblk_cpl cpl[2];
	struct umdev_vuc c;
	uint64_t wb, rb;
	uint16_t used;
	int head, n;

	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	assert_true(c.inflight_map != NULL);
	wb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	rb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	write_read(&c, 0, 0, wb, rb, 4096, 1);

	assert_int_equal(umdev_vuc_reconnect(&c, srv.sock, 3000), 0);
	/*
	 * The daemon adopts the new connection only after dropping the old
	 * session (it reads the old one's EOF first): a reply on the new one
	 * means the old queue no longer runs.
	 */
	{
		uint64_t f;

		assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_FEATURES, &f), 0);
	}
	proto_fill(umdev_vuc_gpa_ptr(&c, wb, 4096), 4096, 555);
	assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_OUT, 40,
					   &(struct umdev_vqd_buf){ .addr = wb, .len = 4096 }, 1,
					   42, true),
			 0);
	head = c.vqs[0].drv.avail->ring[(c.vqs[0].drv.avail_idx - 1) & 63];
	iq = inflight_q(&c, 0);
	assert_int_equal(iq->used_idx, c.vqs[0].drv.used->idx);
	iq->desc[head].counter = 1000;
	iq->desc[head].inflight = 1;
	used = c.vqs[0].drv.used->idx;

	assert_int_equal(umdev_vuc_negotiate(&c, ~0ull), 0);
	assert_int_equal(umdev_vuc_set_inflight_fd(&c, c.inflight_fd, &c.inflight), 0);
	assert_int_equal(umdev_vuc_set_features(&c, (1ull << VIRTIO_F_VERSION_1) |
						     (1ull << VIRTIO_BLK_F_FLUSH)),
			 0);
	assert_int_equal(umdev_vuc_set_mem_table(&c, 1), 0);
	assert_int_equal(umdev_vuc_vq_start(&c, 0, used), 0);
	assert_int_equal(umdev_vuc_kick(&c, 0), 0);
	n = umdev_vblk_wait(&c, 0, cpl, 2, PROTO_IO_TIMEOUT_MS);
	assert_int_equal(n, 1);
	assert_int_equal(cpl[0].cookie, 42);
	assert_int_equal(cpl[0].status, VIRTIO_BLK_S_OK);
	/* Exactly once: nothing else shows up. */
	usleep(200 * 1000);
	assert_int_equal(umdev_vblk_poll(&c, 0, cpl, 2), 0);
	assert_int_equal(c.vqs[0].drv.used->idx, used + 1);
	assert_int_equal(iq->desc[head].inflight, 0);
	/* The write landed, and the queue carries on. */
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 40, rb, 4096, 1), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(&c, rb, 4096), 4096, 555));
	write_read(&c, 0, 80, wb, rb, 4096, 7);
	umdev_vuc_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vring_base_stop_resume, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_mem_table_while_running, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_add_rem_mem_reg, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_ring_region_readded, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_reply_ack, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_without_reply_ack, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_reset_device, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_fd, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_resubmit_on_reconnect, setup_ram,
						teardown),
	};

	return cmocka_run_group_tests_name("umdevd-ctrl", tests, NULL, NULL);
}
