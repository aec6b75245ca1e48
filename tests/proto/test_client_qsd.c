/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Validates our vhost-user client against an independent vhost-user-blk
 * back-end, QEMU's qemu-storage-daemon. If these pass, a failure of the
 * same checks against umdevd points at umdevd, not at the client.
 */
#include "proto_common.h"

#include <string.h>

#define DISK_BYTES (64ull << 20)
#define REGION (16ull << 20)

static struct proto_srv srv;

static int start_file_qsd(void **state)
{
	proto_srv_init(&srv, DISK_BYTES);
	proto_start_qsd(&srv, "--blockdev", "driver=file,node-name=n0,filename=@DISK@",
			"--export",
			"type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=@SOCK@,"
			"writable=on,num-queues=2",
			NULL);
	return 0;
}

static int stop_qsd(void **state)
{
	proto_stop(&srv, false);
	return 0;
}

static void test_negotiation_and_config(void **state)
{
	struct virtio_blk_config cfg;
	struct umdev_vuc c;
	uint64_t nq;

	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(&c, ~0ull), 0);
	assert_true(c.features & (1ull << VIRTIO_F_VERSION_1));
	assert_true(c.features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES));
	assert_true(c.acked_protocol_features & (1ull << VHOST_USER_PROTOCOL_F_CONFIG));
	assert_true(c.acked_protocol_features & (1ull << VHOST_USER_PROTOCOL_F_MQ));
	assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_QUEUE_NUM, &nq), 0);
	assert_int_equal(nq, 2);
	memset(&cfg, 0xa5, sizeof(cfg));
	assert_int_equal(umdev_vuc_get_config(&c, 0, &cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg.capacity, DISK_BYTES >> 9);
	assert_int_equal(cfg.num_queues, 2);
	assert_int_equal(cfg.blk_size, 512);
	umdev_vuc_close(&c);
}

static void test_io(void **state)
{
	struct umdev_vuc c;

	proto_connect_blk(&c, srv.sock, 2, 128, 2, REGION);
	proto_check_roundtrip_all_queues(&c, 2);
	proto_check_multiseg(&c);
	proto_check_cross_region(&c);
	proto_check_qd(&c, 1, 32);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) >= 0, 1);
	umdev_vuc_close(&c);
}

static void test_vring_base_restart(void **state)
{
	uint64_t buf;
	struct umdev_vuc c;
	uint16_t base;

	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, i * 8, buf, 4096, 1),
				 VIRTIO_BLK_S_OK);
	assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base), 0);
	assert_int_equal(base, 5);
	assert_int_equal(umdev_vuc_vq_start(&c, 0, base), 0);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base), 0);
	assert_int_equal(base, 6);
	umdev_vuc_close(&c);
}

static void test_reply_ack(void **state)
{
	struct vhost_user_vring_state st = { .index = 0, .num = 64 };
	struct umdev_vuc c;

	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(&c, ~0ull), 0);
	assert_true(c.use_reply_ack);
	/* With REPLY_ACK, a request with no reply of its own is acked with 0. */
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_NUM, &st, sizeof(st), NULL, 0),
			 0);
	umdev_vuc_close(&c);
}

static void test_null_reads_zero(void **state)
{
	struct proto_srv s2;
	struct umdev_vuc c;
	uint64_t buf;

	proto_srv_init(&s2, 0);
	proto_start_qsd(&s2, "--blockdev", "driver=null-co,node-name=n0,size=1073741824,read-zeroes=on",
			"--export",
			"type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=@SOCK@,"
			"writable=on",
			NULL);
	proto_connect_blk(&c, s2.sock, 1, 64, 1, REGION);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	memset(umdev_vuc_gpa_ptr(&c, buf, 4096), 0x5a, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 12345, buf, 4096, 1), VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(((uint8_t *)umdev_vuc_gpa_ptr(&c, buf, 4096))[i], 0);
	umdev_vuc_close(&c);
	proto_stop(&s2, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_negotiation_and_config, start_file_qsd,
						stop_qsd),
		cmocka_unit_test_setup_teardown(test_io, start_file_qsd, stop_qsd),
		cmocka_unit_test_setup_teardown(test_vring_base_restart, start_file_qsd, stop_qsd),
		cmocka_unit_test_setup_teardown(test_reply_ack, start_file_qsd, stop_qsd),
		cmocka_unit_test(test_null_reads_zero),
	};

	return cmocka_run_group_tests_name("client-vs-qsd", tests, NULL, NULL);
}
