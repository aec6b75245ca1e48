/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The file backend on a real block device: a loop device with 4096-byte
 * logical blocks over a file in /var/tmp. Checks the geometry ioctls, that
 * 4096-aligned requests take the O_DIRECT fd while 512-aligned ones take
 * the buffered fd, and fallocate-based DISCARD/WRITE_ZEROES on a device.
 * Needs root and /dev/loop-control (both present on the project's machines).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev_harness.h"

#define BLK_IMG_SIZE (8 << 20)

struct blk_fixture {
	struct env file; /* backing file (path only) */
	int loop_fd; /* keeps the auto-clearing loop device alive */
	char dev[32];
};

static int setup_loopdev(void **state)
{
	struct blk_fixture *fx = calloc(1, sizeof(*fx));
	struct loop_config cfg;
	int ctl, backing, n = -1;

	assert_non_null(fx);
	make_file(&fx->file, "/var/tmp", BLK_IMG_SIZE);
	backing = open(fx->file.path, O_RDWR | O_CLOEXEC);
	assert_true(backing >= 0);
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		fail_msg("/dev/loop-control: %s (this test needs root and loop devices)",
			 strerror(errno));
	/* Another process may grab the free device first: try a few times. */
	for (int tries = 0; tries < 20; tries++) {
		n = ioctl(ctl, LOOP_CTL_GET_FREE);
		assert_true(n >= 0);
		snprintf(fx->dev, sizeof(fx->dev), "/dev/loop%d", n);
		fx->loop_fd = open(fx->dev, O_RDWR | O_CLOEXEC);
		if (fx->loop_fd < 0)
			continue;
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (uint32_t)backing;
		cfg.block_size = 4096;
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		if (ioctl(fx->loop_fd, LOOP_CONFIGURE, &cfg) == 0)
			break;
		close(fx->loop_fd);
		fx->loop_fd = -1;
	}
	close(ctl);
	close(backing);
	if (fx->loop_fd < 0)
		fail_msg("could not configure a loop device");
	*state = fx;
	return 0;
}

static int teardown_loopdev(void **state)
{
	struct blk_fixture *fx = *state;

	/* Autoclear detaches the device once this last reference goes. */
	close(fx->loop_fd);
	unlink(fx->file.path);
	free(fx);
	return 0;
}

static void open_dev(struct env *e, const struct blk_fixture *fx, bool readonly)
{
	char spec[64];

	snprintf(spec, sizeof(spec), "file:%s", fx->dev);
	env_open(e, spec, readonly);
}

static void test_blk_geometry_and_paths(void **state)
{
	struct blk_fixture *fx = *state;
	struct umdev_bdev_queue_stats st0, st1;
	struct umdev_bdev_info info;
	struct env e = { 0 };
	char *buf = aligned_buf(65536, 0);
	char *chk = aligned_buf(65536, 0);

	open_dev(&e, fx, false);
	umdev_bdev_get_info(e.b, &info);
	assert_true(info.size == BLK_IMG_SIZE);
	assert_int_equal(info.block_size, 4096);
	assert_true(info.physical_block_size >= 4096);
	assert_true(info.direct);
	assert_true(info.volatile_cache);
	assert_true(info.can_discard && info.can_write_zeroes);

	/* Block-aligned: O_DIRECT fd; the backing file's pattern is there. */
	umdev_bdev_queue_get_stats(e.q, &st0);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 8192, buf, 8192), 0);
	umdev_bdev_queue_get_stats(e.q, &st1);
	assert_true(st1.direct_ios == st0.direct_ios + 1);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(buf[i], (char)((i + 8192) * 7 + 3));

	/* Sector- but not block-aligned: buffered fd, same data. */
	st0 = st1;
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 512, buf, 1024), 0);
	umdev_bdev_queue_get_stats(e.q, &st1);
	assert_true(st1.buffered_ios == st0.buffered_ios + 1);
	assert_true(st1.direct_ios == st0.direct_ios);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(buf[i], (char)((i + 512) * 7 + 3));

	/* Direct write, buffered overwrite inside it, both visible to a reader. */
	memset(buf, 0x42, 16384);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_WRITE, 65536, buf, 16384), 0);
	memset(buf, 0x24, 200);
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 65536 + 4000, 100,
				&(struct iovec){ buf + 3, 100 }, 1, true),
			 0);
	assert_int_equal(run_io(&e, UMDEV_BDEV_FLUSH, 0, 0, NULL, 0, false), 0);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 65536, chk, 16384), 0);
	for (int i = 0; i < 16384; i++)
		assert_int_equal(chk[i], i >= 4000 && i < 4100 ? 0x24 : 0x42);
	assert_int_equal(umdev_bdev_flush_sync(e.b), 0);

	/* Zeroing ops on whole blocks read back zeroes; neighbours untouched. */
	for (int op = UMDEV_BDEV_DISCARD; op <= UMDEV_BDEV_WRITE_ZEROES; op++) {
		memset(buf, 0x11, 65536);
		assert_int_equal(run_rw(&e, UMDEV_BDEV_WRITE, 1 << 20, buf, 65536), 0);
		assert_int_equal(run_io(&e, (enum umdev_bdev_op)op, (1 << 20) + 8192, 16384, NULL,
					0, false),
				 0);
		assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 1 << 20, chk, 65536), 0);
		for (int i = 0; i < 65536; i++) {
			bool inside = i >= 8192 && i < 8192 + 16384;

			if (chk[i] != (inside ? 0 : 0x11))
				fail_msg("op %d byte %d: %#x", op, i, chk[i]);
		}
	}
	/* The end of the device and past it. */
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, BLK_IMG_SIZE - 4096, buf, 4096), 0);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, BLK_IMG_SIZE - 4096, buf, 8192), -EINVAL);
	free(buf);
	free(chk);
	umdev_bdev_queue_free(e.q);
	umdev_bdev_close(e.b);
	umdev_loop_free(e.loop);
}

static void test_blk_readonly(void **state)
{
	struct blk_fixture *fx = *state;
	struct umdev_bdev_info info;
	struct env e = { 0 };
	char *buf = aligned_buf(4096, 0);

	open_dev(&e, fx, true);
	umdev_bdev_get_info(e.b, &info);
	assert_true(info.readonly);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_WRITE, 0, buf, 4096), -EROFS);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 0, buf, 4096), 0);
	assert_int_equal(buf[5], (char)(5 * 7 + 3));
	free(buf);
	umdev_bdev_queue_free(e.q);
	umdev_bdev_close(e.b);
	umdev_loop_free(e.loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blk_geometry_and_paths),
		cmocka_unit_test(test_blk_readonly),
	};

	return cmocka_run_group_tests(tests, setup_loopdev, teardown_loopdev);
}
