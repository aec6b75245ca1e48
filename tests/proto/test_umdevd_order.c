/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Front-ends other than QEMU set rings up in other orders. The vhost-user
 * spec fixes no order among a ring's NUM, BASE, ADDR, KICK, CALL and ENABLE
 * messages, nor between them and the memory table: every permutation must
 * leave a ring that serves I/O. Also: reconfiguring a running ring,
 * disabling and re-enabling it with requests in flight, stopping a ring
 * that never started (twice), and the 256-byte GET_CONFIG some front-ends
 * send.
 */
#include "proto_common.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REGION (4ull << 20)
#define QSIZE 64

static struct proto_srv srv;

#define BLK_FEATURES                                                                      \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_SEG_MAX) |                   \
	 (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_MQ) |                        \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
#define PROTOCOL                                                                          \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |   \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG))

static int setup_group(void **state)
{
	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--device", "virtio-blk,id=blk0,socket=@SOCK@,backend=ram:16M",
			   NULL);
	return 0;
}

static int teardown_group(void **state)
{
	proto_stop(&srv, false);
	return 0;
}

/* Send one ring (or memory) message of the set-up, named by a letter. */
static void send_step(struct umdev_vuc *c, unsigned q, char step)
{
	struct umdev_vuc_vq *vq = &c->vqs[q];
	struct vhost_user_vring_state st = { .index = q };
	struct vhost_user_vring_addr a = { .index = q };
	uint64_t u = q;

	switch (step) {
	case 'N':
		st.num = vq->size;
		assert_int_equal(umdev_vuc_request(c, VHOST_USER_SET_VRING_NUM, &st, sizeof(st),
						   NULL, 0), 0);
		break;
	case 'B':
		st.num = 0;
		assert_int_equal(umdev_vuc_request(c, VHOST_USER_SET_VRING_BASE, &st, sizeof(st),
						   NULL, 0), 0);
		break;
	case 'A':
		a.desc_user_addr = umdev_vuc_gpa_to_uva(c, vq->drv.desc_gpa);
		a.used_user_addr = umdev_vuc_gpa_to_uva(c, vq->drv.used_gpa);
		a.avail_user_addr = umdev_vuc_gpa_to_uva(c, vq->drv.avail_gpa);
		assert_int_equal(umdev_vuc_request(c, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a),
						   NULL, 0), 0);
		break;
	case 'K':
		assert_int_equal(umdev_vuc_request(c, VHOST_USER_SET_VRING_KICK, &u, sizeof(u),
						   &vq->kick_fd, 1), 0);
		break;
	case 'C':
		assert_int_equal(umdev_vuc_request(c, VHOST_USER_SET_VRING_CALL, &u, sizeof(u),
						   &vq->call_fd, 1), 0);
		break;
	case 'E':
		assert_int_equal(umdev_vuc_vq_enable(c, q, true), 0);
		break;
	case 'M':
		assert_int_equal(umdev_vuc_set_mem_table(c, 1), 0);
		break;
	default:
		fail();
	}
}

/* Connect, negotiate, lay rings out locally; nothing about them sent yet. */
static void prepare(struct umdev_vuc *c)
{
	uint64_t size = REGION;

	assert_int_equal(umdev_vuc_connect(c, srv.sock, 5000), 0);
	assert_int_equal(umdev_vuc_negotiate(c, PROTOCOL), 0);
	assert_true(c->use_reply_ack);
	assert_int_equal(umdev_vuc_set_features(c, BLK_FEATURES), 0);
	assert_int_equal(umdev_vuc_mem_create(c, &size, 1, 0), 0);
	assert_int_equal(umdev_vuc_vq_init(c, 0, QSIZE, true), 0);
}

static void roundtrip(struct umdev_vuc *c, uint64_t seed)
{
	uint64_t wb = umdev_vuc_alloc(c, 0, 4096, 4096), rb = umdev_vuc_alloc(c, 0, 4096, 4096);

	assert_true(wb && rb);
	proto_fill(umdev_vuc_gpa_ptr(c, wb, 4096), 4096, seed);
	memset(umdev_vuc_gpa_ptr(c, rb, 4096), 0, 4096);
	assert_int_equal(proto_rw(c, 0, VIRTIO_BLK_T_OUT, seed % 1000 * 8, wb, 4096, 1),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(c, 0, VIRTIO_BLK_T_IN, seed % 1000 * 8, rb, 4096, 1),
			 VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(c, rb, 4096), 4096, seed));
}

static bool next_perm(char *s, size_t n)
{
	size_t i = n - 1, j = n - 1;
	char t;

	while (i > 0 && s[i - 1] >= s[i])
		i--;
	if (i == 0)
		return false;
	while (s[j] <= s[i - 1])
		j--;
	t = s[i - 1];
	s[i - 1] = s[j];
	s[j] = t;
	for (j = n - 1; i < j; i++, j--) {
		t = s[i];
		s[i] = s[j];
		s[j] = t;
	}
	return true;
}

/*
 * Every order of the six ring messages with the memory table first (720),
 * then every order with the memory table among them, sampled (each of the
 * seven positions for the memory table, with rotations of the rest).
 */
static void test_every_order(void **state)
{
	char order[8] = "ABCEKN";
	unsigned n = 0;

	do {
		struct umdev_vuc c;

		prepare(&c);
		send_step(&c, 0, 'M');
		for (unsigned i = 0; i < 6; i++)
			send_step(&c, 0, order[i]);
		c.vqs[0].started = true;
		roundtrip(&c, n);
		umdev_vuc_close(&c);
		n++;
	} while (next_perm(order, 6));
	assert_int_equal(n, 720);

	for (unsigned pos = 0; pos < 7; pos++) {
		for (unsigned rot = 0; rot < 6; rot++) {
			const char base[] = "ABCEKN";
			char seq[8];
			struct umdev_vuc c;
			unsigned k = 0;

			for (unsigned i = 0; i < 7; i++)
				seq[i] = i == pos ? 'M' : base[(k++ + rot) % 6];
			prepare(&c);
			for (unsigned i = 0; i < 7; i++)
				send_step(&c, 0, seq[i]);
			c.vqs[0].started = true;
			roundtrip(&c, 1000 + pos * 6 + rot);
			umdev_vuc_close(&c);
		}
	}
}

/*
 * A running ring reconfigured (ADDR re-sent, as QEMU does to switch dirty
 * logging; NUM re-sent), disabled and enabled with requests in flight, and
 * stopped twice: no request is lost, and it resumes where it stopped.
 */
static void test_running_ring_changes(void **state)
{
	struct umdev_vuc c;
	struct vhost_user_vring_state st = { .index = 0 };
	struct umdev_vqd_buf buf;
	uint16_t base = 0, base2 = 0xffff;
	unsigned got = 0;

	prepare(&c);
	for (const char *s = "MNBAKCE"; *s; s++)
		send_step(&c, 0, *s);
	c.vqs[0].started = true;
	roundtrip(&c, 1);
	send_step(&c, 0, 'A');
	roundtrip(&c, 2);
	send_step(&c, 0, 'N');
	roundtrip(&c, 3);

	/* Disabled with requests posted: they wait, and complete once enabled. */
	assert_int_equal(umdev_vuc_vq_enable(&c, 0, false), 0);
	buf.addr = umdev_vuc_alloc(&c, 0, 4096, 4096);
	buf.len = 4096;
	buf.write = true;
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_IN, i * 8, &buf, 1, i, false),
				 0);
	usleep(50 * 1000);
	{
		struct umdev_vblk_cpl cpl[8];

		assert_int_equal(umdev_vblk_poll(&c, 0, cpl, 8), 0);
		assert_int_equal(umdev_vuc_vq_enable(&c, 0, true), 0);
		assert_int_equal(umdev_vblk_kick(&c, 0), 0);
		while (got < 8) {
			int n = umdev_vblk_wait(&c, 0, cpl, 8, PROTO_IO_TIMEOUT_MS);

			assert_true(n > 0);
			for (int i = 0; i < n; i++)
				assert_int_equal(cpl[i].status, VIRTIO_BLK_S_OK);
			got += (unsigned)n;
		}
	}

	/* Stopped twice: the same index both times. */
	assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base), 0);
	assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base2), 0);
	assert_int_equal(base, base2);
	assert_int_equal(base, 3 * 2 + 8);
	/* Started again at that index (BASE, then a new kick). */
	st.num = base;
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_BASE, &st, sizeof(st), NULL,
					   0), 0);
	send_step(&c, 0, 'K');
	roundtrip(&c, 4);
	umdev_vuc_close(&c);
}

/* A ring that never started can be stopped (twice), and reports 0. */
static void test_stop_never_started(void **state)
{
	struct umdev_vuc c;
	uint16_t base = 0xffff;

	prepare(&c);
	send_step(&c, 0, 'M');
	for (unsigned q = 0; q < 3; q++) {
		assert_int_equal(umdev_vuc_vq_stop(&c, q, &base), 0);
		assert_int_equal(base, 0);
		assert_int_equal(umdev_vuc_vq_stop(&c, q, &base), 0);
		assert_int_equal(base, 0);
	}
	umdev_vuc_close(&c);
}

/* QEMU's default of one queue per vCPU: many queues, each serving. */
static void test_many_queues(void **state)
{
	struct umdev_vuc c;
	uint64_t n = 0;

	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 5000), 0);
	assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_QUEUE_NUM, &n), 0);
	assert_true(n >= 64);
	umdev_vuc_close(&c);
	proto_connect_blk(&c, srv.sock, UMDEV_VUC_MAX_QUEUES, QSIZE, 1, REGION);
	proto_check_roundtrip_all_queues(&c, UMDEV_VUC_MAX_QUEUES);
	umdev_vuc_close(&c);
}

/* Some front-ends always read 256 bytes of config space. */
static void test_config_256(void **state)
{
	struct umdev_vuc c;
	uint8_t cfg[256];
	struct virtio_blk_config bc;

	prepare(&c);
	memset(cfg, 0xee, sizeof(cfg));
	assert_int_equal(umdev_vuc_get_config(&c, 0, cfg, sizeof(cfg)), 0);
	memcpy(&bc, cfg, sizeof(bc));
	assert_int_equal(bc.capacity, (16ull << 20) / 512);
	for (size_t i = sizeof(bc); i < sizeof(cfg); i++)
		assert_int_equal(cfg[i], 0);
	umdev_vuc_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_order),
		cmocka_unit_test(test_running_ring_changes),
		cmocka_unit_test(test_stop_never_started),
		cmocka_unit_test(test_many_queues),
		cmocka_unit_test(test_config_256),
	};
	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
