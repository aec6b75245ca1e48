/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd's virtio-blk over vhost-user with packed virtqueues
 * (VIRTIO_F_RING_PACKED), driven by our client's packed driver: I/O on
 * several queues with and without EVENT_IDX, indirect tables, deep queues
 * across many laps of the ring, GET/SET_VRING_BASE with wrap counters, and
 * inflight resubmission after a back-end restart (emulated exactly, then a
 * real SIGKILL under load).
 */
#include "proto_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "umdev/proto/virtio_ring_packed.h"

#define DISK_BYTES (64ull << 20)
#define REGION (16ull << 20)
#define NQ 3
#define QSIZE 128

#define BLK_FEATURES                                                                  \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_SEG_MAX) |               \
	 (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |              \
	 (1ull << VIRTIO_BLK_F_MQ) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |           \
	 (1ull << VIRTIO_F_RING_PACKED))

static struct proto_srv srv;

static void start_daemon(void)
{
	proto_start_umdevd(&srv, "--device",
			   "virtio-blk,id=blk0,socket=@SOCK@,backend=file:@DISK@,num-queues=3",
			   NULL);
}

static int setup(void **state)
{
	proto_srv_init(&srv, DISK_BYTES);
	start_daemon();
	return 0;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	assert_true(alive);
	return 0;
}

static void connect_packed(struct umdev_vuc *c, bool event_idx)
{
	assert_int_equal(umdev_vuc_connect(c, srv.sock, 3000), 0);
	c->want_features = BLK_FEATURES | (event_idx ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0);
	assert_int_equal(umdev_vuc_start_blk(c, NQ, QSIZE, 2, REGION, 0), 0);
	assert_true(c->acked_features & (1ull << VIRTIO_F_RING_PACKED));
	assert_int_equal(!!(c->acked_features & (1ull << VIRTIO_RING_F_EVENT_IDX)), event_idx);
	assert_true(c->vqs[0].drv.packed);
}

static void io_checks(bool event_idx)
{
	struct umdev_vuc c;
	uint64_t tbl, buf;

	connect_packed(&c, event_idx);
	proto_check_roundtrip_all_queues(&c, NQ);
	proto_check_multiseg(&c);
	proto_check_cross_region(&c);
	/* Deep queues lap the 128-slot ring many times on every queue. */
	for (unsigned q = 0; q < NQ; q++)
		proto_check_qd(&c, q, 32);
	/* An indirect table takes one ring slot. */
	tbl = umdev_vuc_alloc(&c, 0, 16 * 8, 16);
	buf = umdev_vuc_alloc(&c, 0, 8192, 4096);
	proto_fill(umdev_vuc_gpa_ptr(&c, buf, 8192), 8192, 77);
	assert_int_equal(umdev_vblk_submit_indirect(&c, 1, VIRTIO_BLK_T_OUT, 300,
						    &(struct umdev_vqd_buf){ .addr = buf, .len = 8192 },
						    1, 5, tbl), 0);
	{
		struct umdev_vblk_cpl cpl;

		assert_int_equal(umdev_vblk_wait(&c, 1, &cpl, 1, PROTO_IO_TIMEOUT_MS), 1);
		assert_int_equal(cpl.cookie, 5);
		assert_int_equal(cpl.status, VIRTIO_BLK_S_OK);
	}
	memset(umdev_vuc_gpa_ptr(&c, buf, 8192), 0, 8192);
	assert_int_equal(proto_rw(&c, 2, VIRTIO_BLK_T_IN, 300, buf, 8192, 2), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(&c, buf, 8192), 8192, 77));
	umdev_vuc_close(&c);
}

static void test_packed_io_event_idx(void **state)
{
	io_checks(true);
}

static void test_packed_io_no_event_idx(void **state)
{
	io_checks(false);
}

/* GET_VRING_BASE answers avail | used << 16 with wrap bits; a restart resumes there. */
static void test_packed_vring_base(void **state)
{
	struct umdev_vuc c;
	struct umdev_vqd *d;
	uint16_t base;
	uint64_t buf;

	connect_packed(&c, true);
	d = &c.vqs[0].drv;
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	/* 3 slots a request: 50 requests lap the ring once and a bit. */
	for (unsigned i = 0; i < 50; i++)
		assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, i, buf, 4096, 1), VIRTIO_BLK_S_OK);
	assert_false(d->avail_wrap);
	assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base), 0);
	assert_int_equal(base, d->next_avail | (d->avail_wrap ? VIRTQ_PACKED_WRAP_BIT : 0));
	assert_int_equal(umdev_vuc_vq_start(&c, 0, 0), 0);
	for (unsigned i = 0; i < 50; i++)
		assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, i, buf, 4096, 1), VIRTIO_BLK_S_OK);
	umdev_vuc_close(&c);
}

static struct vhost_user_inflight_queue_packed *inflight_q(struct umdev_vuc *c, unsigned q)
{
	uint64_t per = c->inflight.mmap_size / c->inflight.num_queues;

	return (struct vhost_user_inflight_queue_packed *)((uint8_t *)c->inflight_map + q * per);
}

/* Bring a reconnected client's queues back the way QEMU 7.2 does after a
 * back-end crash: its packed base is the ring's start, not where it was. */
static void restart_queues(struct umdev_vuc *c, uint64_t features)
{
	assert_int_equal(umdev_vuc_negotiate(c, ~0ull), 0);
	assert_int_equal(umdev_vuc_set_features(c, features), 0);
	assert_int_equal(umdev_vuc_set_inflight_fd(c, c->inflight_fd, &c->inflight), 0);
	assert_int_equal(umdev_vuc_set_mem_table(c, 3), 0);
	for (unsigned q = 0; q < NQ; q++) {
		assert_int_equal(umdev_vuc_vq_start(c, q, VIRTQ_PACKED_WRAP_BIT), 0);
		assert_int_equal(umdev_vuc_kick(c, q), 0);
	}
}

/*
 * Made deterministic: with the first connection gone, the driver posts two
 * writes and, playing the dead back-end's part, records the first in the
 * inflight region as fetched (the spec's packed steps). The restarted
 * back-end must resubmit that one exactly once, pop the second, and place
 * both rings positions from the region, not from the stale base.
 */
static void test_packed_inflight_resubmit(void **state)
{
	struct vhost_user_inflight_queue_packed *r;
	struct umdev_vblk_cpl cpl[4];
	struct umdev_vuc c;
	struct umdev_vqd *d;
	uint64_t wb[2], rb, f;
	uint16_t slot, head, e;
	int n, got = 0;

	connect_packed(&c, true);
	assert_true(c.inflight_map != NULL);
	d = &c.vqs[0].drv;
	for (unsigned i = 0; i < 2; i++)
		wb[i] = umdev_vuc_alloc(&c, 0, 4096, 4096);
	rb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	for (unsigned i = 0; i < 50; i++) /* move off the ring start, past one lap */
		assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 64 + i, rb, 4096, 1),
				 VIRTIO_BLK_S_OK);

	assert_int_equal(umdev_vuc_reconnect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_FEATURES, &f), 0);
	r = inflight_q(&c, 0);
	assert_int_equal(r->version, 1);
	assert_int_equal(r->used_idx, d->next_used);
	assert_int_equal(r->used_wrap_counter, d->used_wrap);
	slot = d->next_avail;
	for (unsigned i = 0; i < 2; i++) {
		proto_fill(umdev_vuc_gpa_ptr(&c, wb[i], 4096), 4096, 600 + i);
		assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_OUT, 8 * i,
						   &(struct umdev_vqd_buf){ .addr = wb[i], .len = 4096 },
						   1, 40 + i, true), 0);
	}
	/* The dead back-end fetched the first chain (3 slots) into the region. */
	head = r->old_free_head;
	e = r->free_head;
	r->desc[head].num = 0;
	r->desc[head].counter = 1000;
	r->desc[head].inflight = 1;
	for (unsigned k = 0; k < 3; k++) {
		struct virtq_packed_desc *s = &d->pdesc[(slot + k) % QSIZE];

		if (k == 2)
			r->desc[head].last = e;
		r->desc[head].num++;
		r->desc[e].addr = s->addr;
		r->desc[e].len = s->len;
		r->desc[e].flags = s->flags;
		r->desc[e].id = s->id;
		e = r->desc[e].next;
	}
	r->free_head = r->old_free_head = e;

	restart_queues(&c, BLK_FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX));
	while (got < 2 && (n = umdev_vblk_wait(&c, 0, cpl + got, 4 - got, PROTO_IO_TIMEOUT_MS)) > 0)
		got += n;
	assert_int_equal(got, 2);
	assert_true(cpl[0].cookie != cpl[1].cookie);
	assert_true(cpl[0].cookie >= 40 && cpl[0].cookie <= 41);
	assert_true(cpl[1].cookie >= 40 && cpl[1].cookie <= 41);
	assert_int_equal(cpl[0].status, VIRTIO_BLK_S_OK);
	assert_int_equal(cpl[1].status, VIRTIO_BLK_S_OK);
	usleep(200 * 1000);
	assert_int_equal(umdev_vblk_poll(&c, 0, cpl, 4), 0); /* exactly once */
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 8 * i, rb, 4096, 1),
				 VIRTIO_BLK_S_OK);
		assert_true(proto_check(umdev_vuc_gpa_ptr(&c, rb, 4096), 4096, 600 + i));
	}
	for (unsigned q = 0; q < NQ; q++)
		proto_check_qd(&c, q, 16);
	umdev_vuc_close(&c);
}

/*
 * The real thing: writes at depth 16 on every queue, umdevd killed with
 * SIGKILL while they run, restarted on the same socket and disk. Every
 * request posted completes exactly once, and the disk holds every write
 * that completed (those in flight at the kill included).
 */
#define KILL_REQS 48 /* per queue; 4 KiB each at sector 8 * (q * KILL_REQS + i) */
static void test_packed_killed_daemon(void **state)
{
	struct umdev_vblk_cpl cpl[32];
	unsigned posted[NQ] = { 0 }, done[NQ] = { 0 }, total = 0;
	uint8_t seen[NQ][KILL_REQS] = { { 0 } };
	struct umdev_vuc c;
	uint64_t bufs[NQ][KILL_REQS], rb; /* one per request: completions come in any order */
	bool killed = false, termed = false;

	connect_packed(&c, true);
	for (unsigned q = 0; q < NQ; q++)
		for (unsigned s = 0; s < KILL_REQS; s++)
			bufs[q][s] = umdev_vuc_alloc(&c, q % 2, 4096, 4096);
	rb = umdev_vuc_alloc(&c, 0, 4096, 4096);

	while (total < NQ * KILL_REQS) {
		for (unsigned q = 0; q < NQ; q++) {
			int n;

			while (posted[q] < KILL_REQS && posted[q] - done[q] < 16) {
				unsigned i = posted[q];
				uint64_t b = bufs[q][i];

				proto_fill(umdev_vuc_gpa_ptr(&c, b, 4096), 4096, 1000 + q * KILL_REQS + i);
				assert_int_equal(umdev_vblk_submit(&c, q, VIRTIO_BLK_T_OUT,
								   8ull * (q * KILL_REQS + i),
								   &(struct umdev_vqd_buf){ .addr = b,
											   .len = 4096 },
								   1, i, false), 0);
				posted[q]++;
			}
			n = umdev_vblk_poll(&c, q, cpl, 32);
			assert_true(n >= 0);
			for (int k = 0; k < n; k++) {
				assert_int_equal(cpl[k].status, VIRTIO_BLK_S_OK);
				assert_true(cpl[k].cookie < KILL_REQS);
				assert_int_equal(seen[q][cpl[k].cookie], 0);
				seen[q][cpl[k].cookie] = 1;
				done[q]++;
				total++;
			}
		}
		if (!killed && total >= NQ * KILL_REQS / 3) {
			umdev_proc_kill(&srv.proc);
			killed = true;
			unlink(srv.sock);
			start_daemon();
			assert_int_equal(umdev_vuc_reconnect(&c, srv.sock, 3000), 0);
			restart_queues(&c, BLK_FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX));
		}
		/* Then a graceful stop (SIGTERM drains), as e2e-blk-reconnect does. */
		if (killed && !termed && total >= 2 * NQ * KILL_REQS / 3) {
			umdev_proc_stop(&srv.proc, 3000);
			termed = true;
			unlink(srv.sock);
			start_daemon();
			assert_int_equal(umdev_vuc_reconnect(&c, srv.sock, 3000), 0);
			restart_queues(&c, BLK_FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX));
		}
		if (killed)
			for (unsigned q = 0; q < NQ; q++)
				(void)umdev_vuc_wait_call(&c, q, 10);
	}
	assert_true(killed && termed);
	{
		/* How many the new daemon resubmitted (timing decides; reported only). */
		char log[8192] = { 0 }, *p = log;
		int fd = open(srv.log, O_RDONLY), resub = 0;

		if (fd >= 0) {
			(void)!read(fd, log, sizeof(log) - 1);
			close(fd);
		}
		while ((p = strstr(p, "resubmitting "))) {
			p += strlen("resubmitting ");
			resub += atoi(p);
		}
		fprintf(stderr, "killed umdevd: %d request(s) resubmitted by its successor\n", resub);
	}
	usleep(100 * 1000);
	for (unsigned q = 0; q < NQ; q++)
		assert_int_equal(umdev_vblk_poll(&c, q, cpl, 32), 0);
	for (unsigned q = 0; q < NQ; q++)
		for (unsigned i = 0; i < KILL_REQS; i++) {
			assert_int_equal(proto_rw(&c, q, VIRTIO_BLK_T_IN, 8ull * (q * KILL_REQS + i),
						  rb, 4096, 1), VIRTIO_BLK_S_OK);
			assert_true(proto_check(umdev_vuc_gpa_ptr(&c, rb, 4096), 4096,
						1000 + q * KILL_REQS + i));
		}
	umdev_vuc_close(&c);
}

static int setup_ram(void **state)
{
	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--device",
			   "virtio-blk,id=blk0,socket=@SOCK@,backend=ram:64M,num-queues=3", NULL);
	return 0;
}

/*
 * One used-buffer notification per queue per batch: 16 requests posted
 * with one kick complete in one pass of the device (a RAM disk completes
 * inside it), and the driver gets exactly one interrupt for all of them,
 * with flags-mode suppression (no EVENT_IDX) and with EVENT_IDX, on split
 * and packed rings.
 */
static void one_interrupt_per_batch(uint64_t ring_features)
{
	struct umdev_vblk_cpl cpl[16];
	struct umdev_vuc c;
	uint64_t buf, calls = 0;
	int got = 0, n;

	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	c.want_features = (BLK_FEATURES & ~(1ull << VIRTIO_F_RING_PACKED)) | ring_features;
	assert_int_equal(umdev_vuc_start_blk(&c, 1, QSIZE, 1, REGION, 0), 0);
	buf = umdev_vuc_alloc(&c, 0, 16 * 4096, 4096);
	/* Warm up (the first decision after start always interrupts). */
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096, 1), VIRTIO_BLK_S_OK);
	proto_drain_calls(&c, 1);
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 16; i++)
			assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_IN, i * 8,
							   &(struct umdev_vqd_buf){
								   .addr = buf + i * 4096, .len = 4096,
								   .write = true },
							   1, i, true), 0);
		assert_int_equal(umdev_vuc_kick(&c, 0), 0);
		/* Busy-poll: waiting on the call fd would consume what we count. */
		got = 0;
		for (unsigned t = 0; got < 16 && t < 5000; t++) {
			n = umdev_vblk_poll(&c, 0, cpl, 16);
			assert_true(n >= 0);
			got += n;
			if (!n)
				usleep(1000);
		}
		assert_int_equal(got, 16);
		usleep(20 * 1000);
		calls = 0;
		assert_int_equal(read(c.vqs[0].call_fd, &calls, sizeof(calls)), sizeof(calls));
		assert_int_equal(calls, 1);
		calls = 0;
	}
	umdev_vuc_close(&c);
}

static void test_batch_split_flags(void **state)
{
	one_interrupt_per_batch(0);
}

static void test_batch_split_event_idx(void **state)
{
	one_interrupt_per_batch(1ull << VIRTIO_RING_F_EVENT_IDX);
}

static void test_batch_packed_flags(void **state)
{
	one_interrupt_per_batch(1ull << VIRTIO_F_RING_PACKED);
}

static void test_batch_packed_event_idx(void **state)
{
	one_interrupt_per_batch((1ull << VIRTIO_F_RING_PACKED) | (1ull << VIRTIO_RING_F_EVENT_IDX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_packed_io_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packed_io_no_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packed_vring_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packed_inflight_resubmit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packed_killed_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_split_flags, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_batch_split_event_idx, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_batch_packed_flags, setup_ram, teardown),
		cmocka_unit_test_setup_teardown(test_batch_packed_event_idx, setup_ram, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
