/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One hostile front-end must not hurt another client of the same umdevd.
 *
 * Each test attacks device blk0 (memory shrunk under the daemon, a saturated
 * call eventfd, a socket that is never read, a message flood) while a second
 * client drives device blk1 from another thread with verified I/O the whole
 * time. After the attack: umdevd is alive, blk1's every request completed
 * with OK and the right data, none waited anywhere near a stall, and blk0
 * failed alone (its connection dropped or its requests failed) with a log
 * line. The last test checks SIGTERM still ends the daemon promptly.
 */
#include "proto_common.h"
#include "../test_wait.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REGION (4ull << 20)
/* A request slower than this means a thread of the daemon was stuck. */
#define STALL_NS (2000ull * 1000 * 1000)

static struct proto_srv srv;

/* ---- the bystander: blk1 driven from its own thread ---------------------- */

struct bystander {
	pthread_t thread;
	volatile bool stop;
	unsigned long done, errors, bad_data;
	uint64_t worst_ns;
	const char *why; /* first failure */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void *bystander_run(void *opaque)
{
	struct bystander *b = opaque;
	struct umdev_vuc c;
	uint64_t wb, rb;

	if (umdev_vuc_connect(&c, srv.sock2, 5000) < 0 ||
	    umdev_vuc_start_blk(&c, 1, 64, 1, REGION, 0) < 0) {
		b->why = "cannot attach to blk1";
		b->errors++;
		return NULL;
	}
	wb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	rb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	for (uint64_t i = 0; !b->stop; i++) {
		uint64_t t0 = now_ns(), sector = (i % 512) * 8, dt;
		int st;

		proto_fill(umdev_vuc_gpa_ptr(&c, wb, 4096), 4096, i);
		memset(umdev_vuc_gpa_ptr(&c, rb, 4096), 0, 4096);
		st = proto_rw(&c, 0, VIRTIO_BLK_T_OUT, sector, wb, 4096, 1);
		if (st == VIRTIO_BLK_S_OK)
			st = proto_rw(&c, 0, VIRTIO_BLK_T_IN, sector, rb, 4096, 1);
		dt = now_ns() - t0;
		if (dt > b->worst_ns)
			b->worst_ns = dt;
		if (st != VIRTIO_BLK_S_OK) {
			if (!b->why)
				b->why = "a request failed";
			b->errors++;
			break;
		}
		if (!proto_check(umdev_vuc_gpa_ptr(&c, rb, 4096), 4096, i)) {
			if (!b->why)
				b->why = "read back the wrong data";
			b->bad_data++;
		}
		b->done += 2;
	}
	umdev_vuc_close(&c);
	return NULL;
}

static void bystander_start(struct bystander *b)
{
	memset(b, 0, sizeof(*b));
	assert_int_equal(pthread_create(&b->thread, NULL, bystander_run, b), 0);
	/* Let it get going, so the attack lands while it runs. */
	TEST_WAIT_UNTIL(b->done || b->errors);
	assert_true(b->done > 0);
}

/* Stop the bystander and check it saw nothing of the attack. */
static void bystander_check(struct bystander *b)
{
	unsigned long before = b->done;

	/* It must still be making progress after the attack. */
	TEST_WAIT_UNTIL(b->done >= before + 20 || b->errors);
	b->stop = true;
	pthread_join(b->thread, NULL);
	if (b->why)
		fprintf(stderr, "bystander: %s after %lu requests\n", b->why, b->done);
	assert_int_equal(b->errors, 0);
	assert_int_equal(b->bad_data, 0);
	assert_true(b->done >= before + 20);
	if (b->worst_ns >= STALL_NS)
		fprintf(stderr, "bystander: a request took %llu ms\n",
			(unsigned long long)(b->worst_ns / 1000000));
	assert_true(b->worst_ns < STALL_NS);
	assert_true(umdev_proc_alive(&srv.proc));
}

/* ---- helpers -------------------------------------------------------------- */

static bool log_has(const char *needle)
{
	static char buf[1 << 20];
	int fd = open(srv.log, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

static void kick_raw(struct umdev_vuc *c, unsigned q)
{
	uint64_t one = 1;

	assert_int_equal(write(c->vqs[q].kick_fd, &one, sizeof(one)), sizeof(one));
}

/* blk0 still works for a new, well-behaved front-end. */
static void assert_blk0_serves(void)
{
	struct umdev_vuc c;

	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	proto_check_roundtrip_all_queues(&c, 1);
	umdev_vuc_close(&c);
}

static int setup_group(void **state)
{
	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--device",
			   "virtio-blk,id=blk0,socket=@SOCK@,backend=ram:16M",
			   "--device", "virtio-blk,id=blk1,socket=@SOCK2@,backend=ram:16M", NULL);
	return 0;
}

static int teardown_group(void **state)
{
	proto_stop(&srv, false);
	return 0;
}

/* ---- attacks -------------------------------------------------------------- */

/*
 * The front-end shrinks the memfd behind the data buffers of a request it
 * posted: the daemon's copy faults. The request fails, blk0 is dropped, the
 * process lives.
 */
static void test_data_memory_shrunk(void **state)
{
	struct bystander b;
	struct umdev_vuc c;
	struct umdev_vblk_cpl cpl;
	struct umdev_vqd_buf buf;
	int n;

	bystander_start(&b);
	proto_connect_blk(&c, srv.sock, 1, 64, 2, REGION);
	buf.addr = umdev_vuc_alloc(&c, 1, 65536, 4096);
	buf.len = 65536;
	buf.write = false;
	assert_true(buf.addr != 0);
	proto_fill(umdev_vuc_gpa_ptr(&c, buf.addr, 65536), 65536, 5);
	/* Region 1 (the data) goes away; the ring and headers in region 0 stay. */
	assert_int_equal(ftruncate(c.mem.regions[1].fd, 0), 0);
	assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_OUT, 0, &buf, 1, 1, true), 0);
	kick_raw(&c, 0);
	n = umdev_vblk_wait(&c, 0, &cpl, 1, PROTO_IO_TIMEOUT_MS);
	assert_int_equal(n, 1);
	assert_int_equal(cpl.status, VIRTIO_BLK_S_IOERR);
	assert_true(umdev_vuc_is_closed(&c, 5000));
	umdev_vuc_close(&c);
	bystander_check(&b);
	assert_true(log_has("took away guest memory"));
	assert_blk0_serves();
}

/* The same with the rings themselves: the daemon faults reading them. */
static void test_ring_memory_shrunk(void **state)
{
	struct bystander b;
	struct umdev_vuc c;

	bystander_start(&b);
	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	proto_check_roundtrip_all_queues(&c, 1);
	usleep(20 * 1000); /* the queue goes back to sleeping on kicks */
	assert_int_equal(ftruncate(c.mem.regions[0].fd, 0), 0);
	kick_raw(&c, 0);
	assert_true(umdev_vuc_is_closed(&c, 5000));
	umdev_vuc_close(&c);
	bystander_check(&b);
	assert_blk0_serves();
}

/*
 * The inflight region is the front-end's file too: one it made itself (not
 * sealed) and shrinks after SET_INFLIGHT_FD faults when the daemon records
 * the next request in it.
 */
static void test_inflight_shrunk(void **state)
{
	struct bystander b;
	struct umdev_vuc c;
	struct umdev_vqd_buf buf;
	int fd;

	bystander_start(&b);
	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	assert_true(c.inflight.mmap_size > 0);
	fd = memfd_create("hostile-inflight", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)c.inflight.mmap_size), 0);
	assert_int_equal(umdev_vuc_set_inflight_fd(&c, fd, &c.inflight), 0);
	proto_check_roundtrip_all_queues(&c, 1);
	usleep(20 * 1000);
	assert_int_equal(ftruncate(fd, 0), 0);
	buf.addr = umdev_vuc_alloc(&c, 0, 4096, 4096);
	buf.len = 4096;
	buf.write = true;
	assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_IN, 0, &buf, 1, 1, true), 0);
	kick_raw(&c, 0);
	assert_true(umdev_vuc_is_closed(&c, 5000));
	close(fd);
	umdev_vuc_close(&c);
	bystander_check(&b);
	assert_blk0_serves();
}

/*
 * A call eventfd whose counter is at its maximum: a blocking write would
 * hang the data-plane thread (and blk1 with it). The daemon's writes fail
 * with EAGAIN instead, and blk0's requests still complete.
 */
static void test_saturated_call_fd(void **state)
{
	uint64_t full = 0xfffffffffffffffeull, drained;
	struct bystander b;
	struct umdev_vuc c;
	struct umdev_vqd_buf buf;

	bystander_start(&b);
	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	/* Take the daemon's first signal, then fill the counter to the brim. */
	usleep(20 * 1000);
	(void)!read(c.vqs[0].call_fd, &drained, sizeof(drained));
	assert_int_equal(write(c.vqs[0].call_fd, &full, sizeof(full)), sizeof(full));
	buf.addr = umdev_vuc_alloc(&c, 0, 4096, 4096);
	buf.len = 4096;
	buf.write = true;
	for (unsigned i = 0; i < 200; i++) {
		struct umdev_vblk_cpl cpl;
		int n = 0;

		assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_IN, i * 8, &buf, 1, i, true),
				 0);
		kick_raw(&c, 0);
		/* Poll the used ring: reading the call fd would unsaturate it. */
		for (int t = 0; t < 5000 && n == 0; t++) {
			n = umdev_vblk_poll(&c, 0, &cpl, 1);
			if (n == 0)
				usleep(1000);
		}
		assert_int_equal(n, 1);
		assert_int_equal(cpl.status, VIRTIO_BLK_S_OK);
	}
	umdev_vuc_close(&c);
	bystander_check(&b);
	assert_blk0_serves();
}

/*
 * A front-end that sends requests and never reads the replies: the daemon
 * must not wait for it (its socket buffer fills), and drops it.
 */
static void test_never_reads(void **state)
{
	struct vhost_user_header h = { .request = VHOST_USER_GET_FEATURES,
				       .flags = VHOST_USER_VERSION };
	struct bystander b;
	struct umdev_vuc c;
	bool dropped = false;

	bystander_start(&b);
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 5000), 0);
	fcntl(c.sock, F_SETFL, fcntl(c.sock, F_GETFL) | O_NONBLOCK);
	for (unsigned i = 0; i < 200000 && !dropped; i++) {
		ssize_t n = send(c.sock, &h, sizeof(h), MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			usleep(1000);
			continue;
		}
		dropped = n < 0;
	}
	/* Whichever limit it hit (send buffer or rate), the connection is gone. */
	if (!dropped)
		dropped = umdev_vuc_is_closed(&c, 5000);
	assert_true(dropped);
	umdev_vuc_close(&c);
	bystander_check(&b);
	assert_blk0_serves();
}

/*
 * A flood of valid requests whose replies are read: the front-end is dropped
 * at the per-connection message rate, and nobody else notices.
 */
static void test_flood(void **state)
{
	struct vhost_user_header h[32];
	static uint8_t sink[32 * 20];
	struct bystander b;
	struct umdev_vuc c;
	bool dropped = false;

	for (unsigned i = 0; i < 32; i++)
		h[i] = (struct vhost_user_header){ .request = VHOST_USER_GET_QUEUE_NUM,
						   .flags = VHOST_USER_VERSION };
	bystander_start(&b);
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 5000), 0);
	for (uint64_t t0 = now_ns(); !dropped && now_ns() - t0 < 10000000000ull;) {
		/* 32 requests, then their 32 replies (20 bytes each). */
		if (send(c.sock, h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
			dropped = true;
		else if (recv(c.sock, sink, sizeof(sink), MSG_WAITALL) != (ssize_t)sizeof(sink))
			dropped = true;
	}
	assert_true(dropped);
	umdev_vuc_close(&c);
	bystander_check(&b);
	if (!log_has("vhost-user messages in a second"))
		proto_stop(&srv, true);
	assert_true(log_has("vhost-user messages in a second"));
	assert_blk0_serves();
}

/* After all of that, SIGTERM still drains and exits within a few seconds. */
static void test_sigterm_exits(void **state)
{
	uint64_t t0 = now_ns();

	assert_true(umdev_proc_alive(&srv.proc));
	assert_int_equal(umdev_proc_stop(&srv.proc, 5000), 0);
	assert_true(now_ns() - t0 < 5000000000ull);
	assert_true(WIFEXITED(srv.proc.status));
	assert_int_equal(WEXITSTATUS(srv.proc.status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_memory_shrunk),
		cmocka_unit_test(test_ring_memory_shrunk),
		cmocka_unit_test(test_inflight_shrunk),
		cmocka_unit_test(test_saturated_call_fd),
		cmocka_unit_test(test_never_reads),
		cmocka_unit_test(test_flood),
		cmocka_unit_test(test_sigterm_exits),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
