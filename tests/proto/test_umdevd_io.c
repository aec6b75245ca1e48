/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd over a real vhost-user socket, data path: feature negotiation,
 * config space, and every virtio-blk request type on every queue, driven by
 * our client with guest memory mapped twice (driver view vs. fake uvas).
 */
#include "proto_common.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define DISK_BYTES (64ull << 20)
#define REGION (16ull << 20)

static struct proto_srv srv;

static void start_ram(bool readonly)
{
	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--device",
			   readonly ? "virtio-blk,id=blk0,socket=@SOCK@,backend=ram:64M,num-queues=2,"
				      "readonly=on"
				    : "virtio-blk,id=blk0,socket=@SOCK@,backend=ram:64M,num-queues=2",
			   NULL);
}

static int setup_ram(void **state)
{
	start_ram(false);
	return 0;
}

static int teardown(void **state)
{
	/* A daemon that died under a test is a failure worth seeing. */
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	assert_true(alive);
	return 0;
}

static void test_features_and_config(void **state)
{
	const uint64_t want_proto = (1ull << VHOST_USER_PROTOCOL_F_MQ) |
				    (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
				    (1ull << VHOST_USER_PROTOCOL_F_CONFIG) |
				    (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |
				    (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
				    (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE);
	struct virtio_blk_config cfg;
	struct vhost_user_config big = { .offset = 0, .size = VHOST_USER_MAX_CONFIG_SIZE };
	struct vhost_user_msg reply;
	struct umdev_vuc c;
	uint32_t blk_size = 0, rsize;
	uint64_t nq;

	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(&c, ~0ull), 0);
	assert_true(c.features & (1ull << VIRTIO_F_VERSION_1));
	assert_true(c.features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES));
	assert_true(c.features & (1ull << VIRTIO_BLK_F_FLUSH));
	assert_true(c.features & (1ull << VIRTIO_BLK_F_BLK_SIZE));
	assert_true(c.features & (1ull << VIRTIO_BLK_F_SEG_MAX));
	assert_true(c.features & (1ull << VIRTIO_BLK_F_MQ));
	assert_false(c.features & (1ull << VIRTIO_BLK_F_RO));
	assert_int_equal(c.protocol_features & want_proto, want_proto);

	assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_QUEUE_NUM, &nq), 0);
	assert_int_equal(nq, 2);
	memset(&cfg, 0xa5, sizeof(cfg));
	assert_int_equal(umdev_vuc_get_config(&c, 0, &cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg.capacity, DISK_BYTES >> 9);
	assert_int_equal(cfg.blk_size, 512);
	assert_true(cfg.seg_max >= 1 && cfg.seg_max <= 1024);
	assert_int_equal(cfg.num_queues, 2);
	/* A partial read at an offset returns the same bytes. */
	assert_int_equal(umdev_vuc_get_config(&c, offsetof(struct virtio_blk_config, blk_size),
					      &blk_size, sizeof(blk_size)),
			 0);
	assert_int_equal(blk_size, 512);

	/* A read past the config: the spec allows the exact size or an empty
	 * (error) payload, nothing else, and the connection stays up. */
	assert_int_equal(umdev_vuc_send(&c, VHOST_USER_GET_CONFIG, 0, &big,
					VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE,
					NULL, 0),
			 0);
	assert_int_equal(umdev_vuc_wait_reply(&c, VHOST_USER_GET_CONFIG, &reply,
					      sizeof(reply.p.config), &rsize, NULL, NULL),
			 0);
	if (rsize != 0 && rsize != VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE)
		fail_msg("GET_CONFIG past the end answered with %u payload bytes", rsize);
	assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_QUEUE_NUM, &nq), 0);
	umdev_vuc_close(&c);
}

static void test_roundtrip_multiseg_cross_region(void **state)
{
	struct umdev_vuc c;

	proto_connect_blk(&c, srv.sock, 2, 128, 2, REGION);
	assert_true(c.use_reply_ack);
	proto_check_roundtrip_all_queues(&c, 2);
	proto_check_multiseg(&c);
	proto_check_cross_region(&c);
	proto_check_qd(&c, 0, 32);
	proto_check_qd(&c, 1, 40);
	umdev_vuc_close(&c);
}

static void test_fd_offset_regions(void **state)
{
	/* Regions whose data starts 64 KiB into their memfd (mmap_offset). */
	uint64_t sizes[2] = { REGION, REGION };
	struct umdev_vuc c;

	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(&c, ~0ull), 0);
	assert_int_equal(umdev_vuc_set_features(&c, (1ull << VIRTIO_F_VERSION_1)), 0);
	assert_int_equal(umdev_vuc_mem_create(&c, sizes, 2, 64 << 10), 0);
	assert_int_equal(umdev_vuc_set_mem_table(&c, 3), 0);
	assert_int_equal(umdev_vuc_vq_init(&c, 0, 64, true), 0);
	assert_int_equal(umdev_vuc_vq_start(&c, 0, 0), 0);
	proto_check_roundtrip_all_queues(&c, 1);
	proto_check_cross_region(&c);
	umdev_vuc_close(&c);
}

static void test_event_idx_and_interrupts(void **state)
{
	for (unsigned pass = 0; pass < 2; pass++) {
		struct umdev_vblk_cpl cpl;
		struct umdev_vqd_buf b;
		struct umdev_vuc c;

		assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
		c.want_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_FLUSH) |
				  (pass ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0);
		assert_int_equal(umdev_vuc_start_blk(&c, 1, 64, 1, REGION, 0), 0);
		proto_drain_calls(&c, 1);
		assert_int_equal(!!(c.acked_features & (1ull << VIRTIO_RING_F_EVENT_IDX)), pass);
		b = (struct umdev_vqd_buf){ .addr = umdev_vuc_alloc(&c, 0, 4096, 4096), .len = 4096,
					    .write = true };
		/* 100 requests, each must be signalled on the call eventfd. */
		for (unsigned i = 0; i < 100; i++) {
			assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_IN, i, &b, 1, i, false),
					 0);
			assert_int_equal(umdev_vuc_wait_call(&c, 0, PROTO_IO_TIMEOUT_MS), 1);
			assert_int_equal(umdev_vblk_poll(&c, 0, &cpl, 1), 1);
			assert_int_equal(cpl.status, VIRTIO_BLK_S_OK);
			assert_int_equal(cpl.cookie, i);
		}
		umdev_vuc_close(&c);
	}
}

static void test_indirect(void **state)
{
	struct umdev_vuc c;
	struct umdev_vblk_cpl cpl;
	struct umdev_vqd_buf segs[8];
	uint64_t table, buf, rb;

	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	assert_true(c.acked_features & (1ull << VIRTIO_RING_F_INDIRECT_DESC));
	table = umdev_vuc_alloc(&c, 0, 16 * 16, 16);
	buf = umdev_vuc_alloc(&c, 0, 8 * 4096, 4096);
	rb = umdev_vuc_alloc(&c, 0, 8 * 4096, 4096);
	proto_fill(umdev_vuc_gpa_ptr(&c, buf, 8 * 4096), 8 * 4096, 31);
	for (unsigned i = 0; i < 8; i++)
		segs[i] = (struct umdev_vqd_buf){ .addr = buf + i * 4096ull, .len = 4096 };
	assert_int_equal(umdev_vblk_submit_indirect(&c, 0, VIRTIO_BLK_T_OUT, 320, segs, 8, 1, table),
			 0);
	assert_int_equal(umdev_vblk_wait(&c, 0, &cpl, 1, PROTO_IO_TIMEOUT_MS), 1);
	assert_int_equal(cpl.status, VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 320, rb, 8 * 4096, 8), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(&c, rb, 8 * 4096), 8 * 4096, 31));
	umdev_vuc_close(&c);
}

static void test_get_id_flush_unsupported(void **state)
{
	struct umdev_vuc c;
	uint64_t buf;
	char *id;

	proto_connect_blk(&c, srv.sock, 2, 64, 1, REGION);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	id = umdev_vuc_gpa_ptr(&c, buf, VIRTIO_BLK_ID_BYTES);
	memset(id, 0x7f, VIRTIO_BLK_ID_BYTES);
	assert_int_equal(proto_rw(&c, 1, VIRTIO_BLK_T_GET_ID, 0, buf, VIRTIO_BLK_ID_BYTES, 1),
			 VIRTIO_BLK_S_OK);
	/* The id defaults to the device id, NUL-padded. */
	assert_memory_equal(id, "blk0\0", 5);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(&c, 0, 99, 0, buf, 512, 1), VIRTIO_BLK_S_UNSUPP);
	umdev_vuc_close(&c);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_discard_write_zeroes(void **state)
{
	const uint32_t len = 32 * 1024;
	struct umdev_vuc c;
	uint64_t wb, rb;
	uint8_t *r;

	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	assert_true(c.acked_features & (1ull << VIRTIO_BLK_F_DISCARD));
	assert_true(c.acked_features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	wb = umdev_vuc_alloc(&c, 0, len, 4096);
	rb = umdev_vuc_alloc(&c, 0, len, 4096);
	r = umdev_vuc_gpa_ptr(&c, rb, len);
	for (unsigned pass = 0; pass < 3; pass++) {
		proto_fill(umdev_vuc_gpa_ptr(&c, wb, len), len, 3 + pass);
		assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 6000, wb, len, 1),
				 VIRTIO_BLK_S_OK);
		/* Zero sectors 6016..6031 (the middle 8 KiB). */
		if (pass == 0)
			assert_int_equal(proto_dwz(&c, VIRTIO_BLK_T_WRITE_ZEROES, 6016, 16, 0),
					 VIRTIO_BLK_S_OK);
		else if (pass == 1)
			assert_int_equal(proto_dwz(&c, VIRTIO_BLK_T_WRITE_ZEROES, 6016, 16,
					     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
					 VIRTIO_BLK_S_OK);
		else /* the ram backend zeroes discarded ranges */
			assert_int_equal(proto_dwz(&c, VIRTIO_BLK_T_DISCARD, 6016, 16, 0),
					 VIRTIO_BLK_S_OK);
		memset(r, 0xcc, len);
		assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 6000, rb, len, 1),
				 VIRTIO_BLK_S_OK);
		assert_memory_equal(r, umdev_vuc_gpa_ptr(&c, wb, 8192), 8192);
		assert_true(all_zero(r + 8192, 8192));
		assert_memory_equal(r + 16384, (uint8_t *)umdev_vuc_gpa_ptr(&c, wb, len) + 16384,
				    len - 16384);
	}
	/* Out of range, and the unmap flag on a discard: refused. */
	assert_int_not_equal(proto_dwz(&c, VIRTIO_BLK_T_WRITE_ZEROES, (DISK_BYTES >> 9) - 8, 16, 0),
			     VIRTIO_BLK_S_OK);
	assert_int_not_equal(proto_dwz(&c, VIRTIO_BLK_T_DISCARD, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
			     VIRTIO_BLK_S_OK);
	umdev_vuc_close(&c);
}

static void test_out_of_range(void **state)
{
	const uint64_t cap = DISK_BYTES >> 9;
	struct umdev_vuc c;
	uint64_t buf;

	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	buf = umdev_vuc_alloc(&c, 0, 8192, 4096);
	/* The last sector is fine; one past it, straddling it, or 2^64-1 is not. */
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, cap - 1, buf, 512, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, cap, buf, 512, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, cap - 1, buf, 1024, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, cap, buf, 4096, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, ~0ull, buf, 512, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, ~0ull >> 9, buf, 4096, 1),
			 VIRTIO_BLK_S_IOERR);
	/* Not a multiple of 512 bytes. */
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 100, 1), VIRTIO_BLK_S_IOERR);
	/* Still serving. */
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096, 1), VIRTIO_BLK_S_OK);
	umdev_vuc_close(&c);
}

static void test_readonly(void **state)
{
	struct virtio_blk_config cfg;
	struct umdev_vuc c;
	uint64_t buf;

	start_ram(true);
	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	assert_true(c.features & (1ull << VIRTIO_BLK_F_RO));
	assert_int_equal(umdev_vuc_get_config(&c, 0, &cfg, sizeof(cfg)), 0);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 0, buf, 4096, 1), VIRTIO_BLK_S_IOERR);
	assert_int_not_equal(proto_dwz(&c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_OK);
	assert_int_not_equal(proto_dwz(&c, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_OK);
	umdev_vuc_close(&c);
}

static void test_file_durability(void **state)
{
	const uint32_t len = 64 * 1024;
	uint8_t disk[64 * 1024];
	struct umdev_vuc c;
	uint64_t wb, rb;
	int fd;

	proto_srv_init(&srv, DISK_BYTES);
	proto_start_umdevd(&srv, "--device",
			   "virtio-blk,id=blk0,socket=@SOCK@,backend=file:@DISK@,num-queues=2", NULL);
	proto_connect_blk(&c, srv.sock, 2, 64, 1, REGION);
	wb = umdev_vuc_alloc(&c, 0, len, 4096);
	rb = umdev_vuc_alloc(&c, 0, len, 4096);
	proto_fill(umdev_vuc_gpa_ptr(&c, wb, len), len, 4242);
	assert_int_equal(proto_rw(&c, 1, VIRTIO_BLK_T_OUT, 77, wb, len, 4), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0), VIRTIO_BLK_S_OK);
	/* After FLUSH completes the bytes are in the file (odd sector offset). */
	fd = open(srv.disk, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, disk, len, 77 * 512), len);
	close(fd);
	assert_true(proto_check(disk, len, 4242));
	umdev_vuc_close(&c);

	/* A fresh daemon on the same file reads them back. */
	assert_int_equal(umdev_proc_stop(&srv.proc, 3000), 0);
	unlink(srv.sock);
	proto_start_umdevd(&srv, "--device",
			   "virtio-blk,id=blk0,socket=@SOCK@,backend=file:@DISK@,num-queues=1", NULL);
	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	rb = umdev_vuc_alloc(&c, 0, len, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 77, rb, len, 16), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(&c, rb, len), len, 4242));
	umdev_vuc_close(&c);
}

static void test_null_backend_and_poll_mode(void **state)
{
	struct virtio_blk_config cfg;
	struct umdev_vuc c;
	uint64_t buf;

	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--device",
			   "virtio-blk,id=blk0,socket=@SOCK@,backend=null:1G,num-queues=1,poll=on",
			   NULL);
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	c.vqs[0].no_interrupt = true;
	assert_int_equal(umdev_vuc_start_blk(&c, 1, 128, 1, REGION, 0), 0);
	assert_int_equal(umdev_vuc_get_config(&c, 0, &cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg.capacity, (1ull << 30) >> 9);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	memset(umdev_vuc_gpa_ptr(&c, buf, 4096), 0x33, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 99, buf, 4096, 1), VIRTIO_BLK_S_OK);
	assert_true(all_zero(umdev_vuc_gpa_ptr(&c, buf, 4096), 4096));
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 99, buf, 4096, 1), VIRTIO_BLK_S_OK);
	/* 32 reads in flight, reaped by busy-polling (no interrupts asked for). */
	for (unsigned round = 0; round < 10; round++) {
		struct umdev_vblk_cpl cpl[32];
		unsigned got = 0;

		for (unsigned i = 0; i < 32; i++)
			assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_IN, i * 8ull,
							   &(struct umdev_vqd_buf){ .addr = buf,
										    .len = 4096,
										    .write = true },
							   1, i, i != 31),
					 0);
		while (got < 32) {
			int n = umdev_vblk_wait(&c, 0, cpl, 32, PROTO_IO_TIMEOUT_MS);

			assert_true(n > 0);
			for (int k = 0; k < n; k++)
				assert_int_equal(cpl[k].status, VIRTIO_BLK_S_OK);
			got += (unsigned)n;
		}
	}
	umdev_vuc_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features_and_config, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_multiseg_cross_region, setup_ram,
						teardown),
		cmocka_unit_test_setup_teardown(test_fd_offset_regions, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx_and_interrupts, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_get_id_flush_unsupported, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_discard_write_zeroes, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup_ram, teardown),
		cmocka_unit_test_teardown(test_readonly, teardown),
		cmocka_unit_test_teardown(test_file_durability, teardown),
		cmocka_unit_test_teardown(test_null_backend_and_poll_mode, teardown),
	};

	return cmocka_run_group_tests_name("umdevd-io", tests, NULL, NULL);
}
