/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk protocol tests, one body for both transports: each test runs
 * against umdevd's virtio-blk over vhost-user and over virtio-pci on
 * vfio-user (src/client/virtio_blk_any.c hides which). The device code is
 * the same; these check that the transports carry it the same way: I/O on
 * every queue (MSI-X vector per queue on vfio-user), multi-segment chains,
 * a deep queue, flush, GET_ID, write-zeroes and discard, out-of-range
 * sectors and a config space that agrees.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "client/virtio_blk_any.h"
#include "proto_common.h"
#include "umdev/proto/virtio_blk.h"

#define DISK_BYTES (8u << 20)
#define NQ 2
#define QSIZE 128 /* 32 requests of 3 descriptors in flight */

static struct proto_srv srv;
static bool use_vfu;
static struct umdev_vba blk;

static int setup(bool vfu)
{
	char dev[512];

	use_vfu = vfu;
	proto_srv_init(&srv, DISK_BYTES);
	snprintf(dev, sizeof(dev),
		 "virtio-blk,id=vb0,socket=@SOCK@,backend=file:@DISK@,num-queues=%u,"
		 "serial=both-ways%s",
		 NQ, vfu ? ",transport=vfio-user" : "");
	proto_start_umdevd(&srv, "--device", dev, NULL);
	return 0;
}

static int setup_vhost_user(void **state)
{
	(void)state;
	return setup(false);
}

static int setup_vfio_user(void **state)
{
	(void)state;
	return setup(true);
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	(void)state;
	proto_stop(&srv, !alive);
	assert_true(alive);
	return 0;
}

static int open_blk(void **state)
{
	(void)state;
	assert_int_equal(umdev_vba_open(&blk, use_vfu, srv.sock, NQ, QSIZE, 8u << 20), 0);
	return 0;
}

static int close_blk(void **state)
{
	(void)state;
	umdev_vba_close(&blk);
	return 0;
}

/* One request, waited for; returns its status byte. */
static uint8_t rw(unsigned q, uint32_t type, uint64_t sector, const struct umdev_vqd_buf *d,
		  unsigned n)
{
	struct umdev_vblk_cpl c;

	assert_int_equal(umdev_vba_submit(&blk, q, type, sector, d, n, 42, false), 0);
	assert_int_equal(umdev_vba_wait(&blk, q, &c, 1, PROTO_IO_TIMEOUT_MS), 1);
	assert_int_equal(c.cookie, 42);
	return c.status;
}

static void test_config(void **state)
{
	uint64_t cap = 0;

	(void)state;
	assert_int_equal(umdev_vba_config(&blk, 0, &cap, 8), 0);
	assert_int_equal(cap, DISK_BYTES / 512);
	assert_true(umdev_vba_features(&blk) & 1ull << VIRTIO_F_VERSION_1);
}

static void test_every_queue(void **state)
{
	uint64_t buf = umdev_vba_alloc(&blk, 8192, 4096);

	(void)state;
	assert_true(buf != 0);
	for (unsigned q = 0; q < NQ; q++) {
		struct umdev_vqd_buf w = { buf, 4096, false }, r = { buf + 4096, 4096, true };

		proto_fill(umdev_vba_ptr(&blk, buf, 4096), 4096, 7 + q);
		assert_int_equal(rw(q, VIRTIO_BLK_T_OUT, 64 + 8 * q, &w, 1), VIRTIO_BLK_S_OK);
		memset(umdev_vba_ptr(&blk, buf + 4096, 4096), 0, 4096);
		/* Read back through the other queue. */
		assert_int_equal(rw((q + 1) % NQ, VIRTIO_BLK_T_IN, 64 + 8 * q, &r, 1),
				 VIRTIO_BLK_S_OK);
		assert_true(proto_check(umdev_vba_ptr(&blk, buf + 4096, 4096), 4096, 7 + q));
	}
}

static void test_multiseg(void **state)
{
	uint64_t buf = umdev_vba_alloc(&blk, 16384, 4096);
	struct umdev_vqd_buf w[3] = { { buf, 512, false }, { buf + 1024, 2048, false },
				      { buf + 3584, 1536, false } };
	struct umdev_vqd_buf r = { buf + 8192, 4096, true };
	uint8_t *out = umdev_vba_ptr(&blk, buf, 16384);

	(void)state;
	proto_fill(out, 8192, 99);
	assert_int_equal(rw(0, VIRTIO_BLK_T_OUT, 200, w, 3), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(1, VIRTIO_BLK_T_IN, 200, &r, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(out + 8192, out, 512);
	assert_memory_equal(out + 8192 + 512, out + 1024, 2048);
	assert_memory_equal(out + 8192 + 2560, out + 3584, 1536);
}

static void test_deep_queue(void **state)
{
	uint64_t buf = umdev_vba_alloc(&blk, 32 * 4096, 4096);
	struct umdev_vblk_cpl c[32];
	unsigned got = 0;

	(void)state;
	for (unsigned i = 0; i < 32; i++) {
		struct umdev_vqd_buf r = { buf + i * 4096ull, 4096, true };

		assert_int_equal(umdev_vba_submit(&blk, 1, VIRTIO_BLK_T_IN, 8 * i, &r, 1, i,
						  i != 31), 0);
	}
	while (got < 32) {
		int n = umdev_vba_wait(&blk, 1, c, 32, PROTO_IO_TIMEOUT_MS);

		assert_true(n > 0);
		for (int k = 0; k < n; k++)
			assert_int_equal(c[k].status, VIRTIO_BLK_S_OK);
		got += (unsigned)n;
	}
}

static void test_flush_getid_bounds(void **state)
{
	uint64_t buf = umdev_vba_alloc(&blk, 4096, 4096);
	struct umdev_vqd_buf id = { buf, VIRTIO_BLK_ID_BYTES, true }, r = { buf, 512, true };

	(void)state;
	assert_int_equal(rw(0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(0, VIRTIO_BLK_T_GET_ID, 0, &id, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(umdev_vba_ptr(&blk, buf, 9), "both-ways", 9);
	/* The last sector reads; the one past the end does not. */
	assert_int_equal(rw(1, VIRTIO_BLK_T_IN, DISK_BYTES / 512 - 1, &r, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(1, VIRTIO_BLK_T_IN, DISK_BYTES / 512, &r, 1), VIRTIO_BLK_S_IOERR);
}

static void test_write_zeroes_discard(void **state)
{
	uint64_t buf = umdev_vba_alloc(&blk, 8192, 4096);
	struct virtio_blk_discard_write_zeroes *seg = umdev_vba_ptr(&blk, buf, sizeof(*seg));
	struct umdev_vqd_buf d = { buf, sizeof(*seg), false }, w = { buf + 4096, 4096, false };
	uint8_t *data = umdev_vba_ptr(&blk, buf + 4096, 4096);

	(void)state;
	assert_true(umdev_vba_features(&blk) & 1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	proto_fill(data, 4096, 5);
	assert_int_equal(rw(0, VIRTIO_BLK_T_OUT, 400, &w, 1), VIRTIO_BLK_S_OK);
	memset(seg, 0, sizeof(*seg));
	seg->sector = 400;
	seg->num_sectors = 8;
	assert_int_equal(rw(0, VIRTIO_BLK_T_WRITE_ZEROES, 0, &d, 1), VIRTIO_BLK_S_OK);
	w.write = true;
	memset(data, 0xaa, 4096);
	assert_int_equal(rw(1, VIRTIO_BLK_T_IN, 400, &w, 1), VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(data[i], 0);
	if (umdev_vba_features(&blk) & 1ull << VIRTIO_BLK_F_DISCARD)
		assert_int_equal(rw(0, VIRTIO_BLK_T_DISCARD, 0, &d, 1), VIRTIO_BLK_S_OK);
}

#define T(f) cmocka_unit_test_setup_teardown(f, open_blk, close_blk)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_config),	      T(test_every_queue), T(test_multiseg),
		T(test_deep_queue),   T(test_flush_getid_bounds),
		T(test_write_zeroes_discard),
	};
	int fails = 0;

	fails += cmocka_run_group_tests_name("virtio-blk over vhost-user", tests, setup_vhost_user,
					     teardown);
	fails += cmocka_run_group_tests_name("virtio-blk over virtio-pci/vfio-user", tests,
					     setup_vfio_user, teardown);
	return fails;
}
