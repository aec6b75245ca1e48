/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the block backends: file (direct and buffered paths, short
 * transfers, fallocate ops), ram and null, request validation, spec and
 * size parsing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libaio.h>


#include "bdev_harness.h"

/* ---- parsing ---- */

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		int ret;
		uint64_t v;
	} cases[] = {
		{ "4096", 0, 4096 },
		{ "1", 0, 1 },
		{ "512K", 0, 512ULL << 10 },
		{ "512k", 0, 512ULL << 10 },
		{ "64M", 0, 64ULL << 20 },
		{ "1G", 0, 1ULL << 30 },
		{ "3T", 0, 3ULL << 40 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "16777216T", -ERANGE, 0 },
		{ "16777215T", 0, 16777215ULL << 40 },
		{ "0", -EINVAL, 0 },
		{ "0K", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "1KB", -EINVAL, 0 },
		{ "1X", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "K", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 },
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 0;
		assert_int_equal(umdev_bdev_parse_size(cases[i].s, &v), cases[i].ret);
		if (cases[i].ret == 0)
			assert_true(v == cases[i].v);
	}
	assert_int_equal(umdev_bdev_parse_size(NULL, &v), -EINVAL);
}

static void test_bad_specs(void **state)
{
	static const struct {
		const char *spec;
		int err;
	} cases[] = {
		{ "", -EINVAL },
		{ "ram", -EINVAL },
		{ "disk:/tmp/x", -EINVAL },
		{ "ram:", -EINVAL },
		{ "ram:0", -EINVAL },
		{ "ram:-4096", -EINVAL },
		{ "ram:1000", -EINVAL }, /* not a whole number of sectors */
		{ "ram:4Q", -EINVAL },
		{ "null:abc", -EINVAL },
		{ "null:99999999999T", -ERANGE },
		{ "file:", -EINVAL },
		{ "file:/nonexistent/umdev/disk.img", -ENOENT },
		{ "file:/tmp", -EISDIR },
		{ "file:/dev/null", -EINVAL }, /* character device */
	};
	int err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = 0;
		assert_null(umdev_bdev_open(cases[i].spec, false, &err));
		if (err != cases[i].err)
			fail_msg("spec '%s': got %d, want %d", cases[i].spec, err, cases[i].err);
	}
	err = 0;
	assert_null(umdev_bdev_open(NULL, false, &err));
	assert_int_equal(err, -EINVAL);
}

static void test_file_empty(void **state)
{
	struct env e = { 0 };
	int err = 0;
	char spec[80];

	make_file(&e, "/tmp", 0);
	snprintf(spec, sizeof(spec), "file:%s", e.path);
	assert_null(umdev_bdev_open(spec, false, &err));
	assert_int_equal(err, -EINVAL);
	unlink(e.path);
}

/* ---- validation (shared by all backends; checked on ram and file) ---- */

static void check_validation(struct env *e)
{
	struct umdev_bdev_info info;
	char buf[1024];
	struct iovec iov[2] = { { buf, 512 }, { buf + 512, 512 } };
	struct waiter w = { .loop = e->loop };

	umdev_bdev_get_info(e->b, &info);
	/* Beyond the end, straddling it, and offsets that would overflow. */
	assert_int_equal(run_io(e, UMDEV_BDEV_READ, info.size, 512, iov, 1, false), -EINVAL);
	assert_int_equal(run_io(e, UMDEV_BDEV_READ, info.size - 512, 1024, iov, 2, false), -EINVAL);
	assert_int_equal(run_io(e, UMDEV_BDEV_WRITE, UINT64_MAX - 511, 512, iov, 1, false), -EINVAL);
	assert_int_equal(run_io(e, UMDEV_BDEV_DISCARD, 512, UINT64_MAX, NULL, 0, false), -EINVAL);
	assert_int_equal(run_io(e, UMDEV_BDEV_WRITE_ZEROES, UINT64_MAX, 2, NULL, 0, false), -EINVAL);
	/* len must match the iovecs. */
	assert_int_equal(run_io(e, UMDEV_BDEV_READ, 0, 512, iov, 2, false), -EINVAL);
	assert_int_equal(run_io(e, UMDEV_BDEV_READ, 0, 2048, iov, 2, false), -EINVAL);
	assert_int_equal(run_io(e, UMDEV_BDEV_READ, 0, 512, NULL, 1, false), -EINVAL);
	assert_int_equal(run_io(e, UMDEV_BDEV_READ, 0, 512, iov, -1, false), -EINVAL);
	/* Unknown op. */
	assert_int_equal(run_io(e, (enum umdev_bdev_op)42, 0, 0, NULL, 0, false), -EINVAL);
	/* Zero-length transfers complete at once. */
	assert_int_equal(run_io(e, UMDEV_BDEV_READ, info.size, 0, NULL, 0, false), 0);
	/* Without done there is nobody to tell: refused synchronously. */
	w.io.op = UMDEV_BDEV_FLUSH;
	assert_int_equal(umdev_bdev_submit(e->q, &w.io), -EINVAL);
	assert_int_equal(umdev_bdev_submit(e->q, NULL), -EINVAL);
	assert_int_equal(w.calls, 0);
}

/* Multi-iovec write then read back with different iovec boundaries. */
static void check_roundtrip(struct env *e, uint64_t off, size_t len, size_t seg, size_t seg2,
			    size_t base_off)
{
	char *wbuf = aligned_buf(len + 8192, 0);
	char *rbuf = aligned_buf(len + 8192, 0x5a);
	struct iovec wv[64], rv[64];
	int wn = 0, rn = 0;

	for (size_t i = 0; i < len; i++)
		wbuf[base_off + i] = (char)(rand() & 0xff);
	for (size_t p = 0; p < len; p += seg, wn++) {
		assert_true(wn < 64);
		wv[wn].iov_base = wbuf + base_off + p;
		wv[wn].iov_len = len - p < seg ? len - p : seg;
	}
	for (size_t p = 0; p < len; p += seg2, rn++) {
		assert_true(rn < 64);
		rv[rn].iov_base = rbuf + base_off + p;
		rv[rn].iov_len = len - p < seg2 ? len - p : seg2;
	}
	assert_int_equal(run_io(e, UMDEV_BDEV_WRITE, off, len, wv, wn, false), 0);
	assert_int_equal(run_io(e, UMDEV_BDEV_READ, off, len, rv, rn, false), 0);
	assert_memory_equal(wbuf + base_off, rbuf + base_off, len);
	/* Nothing outside the iovecs was touched. */
	assert_int_equal((unsigned char)rbuf[base_off + len], 0x5a);
	if (base_off)
		assert_int_equal((unsigned char)rbuf[base_off - 1], 0x5a);
	free(wbuf);
	free(rbuf);
}

/* DISCARD and WRITE_ZEROES over a range with unaligned edges read back zeroes. */
static void check_zeroing(struct env *e, enum umdev_bdev_op op)
{
	size_t len = 5 * 4096;
	char *buf = aligned_buf(len, 0x11);

	assert_int_equal(run_rw(e, UMDEV_BDEV_WRITE, 0, buf, len), 0);
	assert_int_equal(run_io(e, op, 1024, 3 * 4096 + 512, NULL, 0, false), 0);
	memset(buf, 0x77, len);
	assert_int_equal(run_rw(e, UMDEV_BDEV_READ, 0, buf, len), 0);
	for (size_t i = 0; i < len; i++) {
		bool inside = i >= 1024 && i < 1024 + 3 * 4096 + 512;

		if (inside && buf[i] != 0)
			fail_msg("byte %zu: %#x, want 0", i, buf[i]);
		if (!inside && buf[i] != 0x11)
			fail_msg("byte %zu: %#x, want 0x11", i, buf[i]);
	}
	free(buf);
}

/* ---- ram ---- */

static void test_ram(void **state)
{
	struct umdev_bdev_info info;
	struct env e = { 0 };
	char buf[4096];

	env_open(&e, "ram:1M", false);
	umdev_bdev_get_info(e.b, &info);
	assert_true(info.size == 1 << 20);
	assert_int_equal(info.block_size, 512);
	assert_false(info.volatile_cache);
	assert_false(info.readonly);
	assert_true(info.can_discard && info.can_write_zeroes);

	/* Fresh memory reads as zeroes. */
	memset(buf, 1, sizeof(buf));
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 8192, buf, sizeof(buf)), 0);
	assert_true(all_zero(buf, sizeof(buf)));

	check_roundtrip(&e, 0, 16384, 4096, 1000, 0);
	check_roundtrip(&e, 3, 7777, 333, 1024, 5);
	check_roundtrip(&e, (1 << 20) - 4096, 4096, 512, 4096, 0);
	check_zeroing(&e, UMDEV_BDEV_DISCARD);
	check_zeroing(&e, UMDEV_BDEV_WRITE_ZEROES);
	/* Zeroing less than a page only memsets. */
	memset(buf, 9, sizeof(buf));
	assert_int_equal(run_rw(&e, UMDEV_BDEV_WRITE, 0, buf, sizeof(buf)), 0);
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE_ZEROES, 100, 200, NULL, 0, false), 0);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 0, buf, sizeof(buf)), 0);
	assert_true(all_zero(buf + 100, 200));
	assert_int_equal(buf[99], 9);
	assert_int_equal(buf[300], 9);

	assert_int_equal(run_io(&e, UMDEV_BDEV_FLUSH, 0, 0, NULL, 0, false), 0);
	assert_int_equal(umdev_bdev_flush_sync(e.b), 0);
	check_validation(&e);
	env_close(&e);
}

static void test_ram_readonly(void **state)
{
	struct umdev_bdev_info info;
	struct env e = { 0 };
	char buf[512] = { 1 };

	env_open(&e, "ram:64K", true);
	umdev_bdev_get_info(e.b, &info);
	assert_true(info.readonly);
	assert_false(info.can_discard);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_WRITE, 0, buf, sizeof(buf)), -EROFS);
	assert_int_equal(run_io(&e, UMDEV_BDEV_DISCARD, 0, 512, NULL, 0, false), -EROFS);
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE_ZEROES, 0, 512, NULL, 0, false), -EROFS);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 0, buf, sizeof(buf)), 0);
	assert_true(all_zero(buf, sizeof(buf)));
	assert_int_equal(run_io(&e, UMDEV_BDEV_FLUSH, 0, 0, NULL, 0, false), 0);
	env_close(&e);
}

/* ---- null ---- */

static void test_null(void **state)
{
	struct umdev_bdev_info info;
	struct env e = { 0 };
	char a[300], b[700];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };

	env_open(&e, "null:1G", false);
	umdev_bdev_get_info(e.b, &info);
	assert_true(info.size == 1ULL << 30);
	assert_false(info.volatile_cache);
	memset(a, 0xff, sizeof(a));
	memset(b, 0xff, sizeof(b));
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 4096, 1000, iov, 2, true), 0);
	assert_int_equal(run_io(&e, UMDEV_BDEV_READ, 4096, 1000, iov, 2, false), 0);
	assert_true(all_zero(a, sizeof(a)));
	assert_true(all_zero(b, sizeof(b)));
	assert_int_equal(run_io(&e, UMDEV_BDEV_DISCARD, 0, 1 << 20, NULL, 0, false), 0);
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE_ZEROES, 0, 1 << 20, NULL, 0, false), 0);
	assert_int_equal(run_io(&e, UMDEV_BDEV_FLUSH, 0, 0, NULL, 0, false), 0);
	assert_int_equal(umdev_bdev_flush_sync(e.b), 0);
	check_validation(&e);
	env_close(&e);
}

/* ---- file ---- */

#define FILE_SIZE (1 << 20)

static void open_file_env(struct env *e, const char *dir, size_t size, bool readonly)
{
	char spec[80];

	make_file(e, dir, size);
	snprintf(spec, sizeof(spec), "file:%s", e->path);
	env_open(e, spec, readonly);
}

static void test_file_direct(void **state)
{
	struct umdev_bdev_queue_stats st0, st1;
	struct umdev_bdev_info info;
	struct env e = { 0 };
	char *buf = aligned_buf(65536, 0), *chk = aligned_buf(65536, 0);
	struct iovec iov[3];

	/* /var/tmp is disk-backed (ext4 here), which supports O_DIRECT. */
	open_file_env(&e, "/var/tmp", FILE_SIZE, false);
	umdev_bdev_get_info(e.b, &info);
	assert_true(info.size == FILE_SIZE);
	assert_true(info.direct);
	assert_true(info.volatile_cache);
	assert_int_equal(info.block_size, 512);
	assert_true(info.physical_block_size >= 512);

	/* The pattern written by make_file is visible. */
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 4096, buf, 4096), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], (char)((i + 4096) * 7 + 3));

	/* Aligned multi-iovec write: goes to the O_DIRECT fd. */
	for (int i = 0; i < 3 * 4096; i++)
		buf[i] = (char)(i ^ 0x5c);
	iov[0] = (struct iovec){ buf, 4096 };
	iov[1] = (struct iovec){ buf + 4096, 8192 };
	umdev_bdev_queue_get_stats(e.q, &st0);
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 65536, 3 * 4096, iov, 2, false), 0);
	umdev_bdev_queue_get_stats(e.q, &st1);
	assert_true(st1.direct_ios == st0.direct_ios + 1);
	assert_true(st1.buffered_ios == st0.buffered_ios);
	pread_file(&e, 65536, chk, 3 * 4096);
	assert_memory_equal(buf, chk, 3 * 4096);

	/* Misaligned (offset, buffer and length): buffered fd. */
	iov[0] = (struct iovec){ buf + 1, 100 };
	iov[1] = (struct iovec){ buf + 200, 1000 };
	iov[2] = (struct iovec){ buf + 3000, 7 };
	memset(buf, 0xa5, 4096);
	st0 = st1;
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 65536 + 3, 1107, iov, 3, true), 0);
	umdev_bdev_queue_get_stats(e.q, &st1);
	assert_true(st1.buffered_ios == st0.buffered_ios + 1);
	assert_true(st1.direct_ios == st0.direct_ios);

	/* A direct read sees the buffered write (the kernel keeps them coherent). */
	st0 = st1;
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 65536, chk, 4096), 0);
	umdev_bdev_queue_get_stats(e.q, &st1);
	assert_true(st1.direct_ios == st0.direct_ios + 1);
	assert_int_equal((unsigned char)chk[2], (unsigned char)(2 ^ 0x5c));
	for (int i = 3; i < 3 + 1107; i++)
		assert_int_equal((unsigned char)chk[i], 0xa5);
	assert_int_equal((unsigned char)chk[1110], (unsigned char)(1110 ^ 0x5c));

	/* Round trips in both modes, with different iovec boundaries. */
	check_roundtrip(&e, 8192, 32768, 4096, 16384, 0);
	check_roundtrip(&e, 12345, 9999, 1111, 512, 7);
	check_roundtrip(&e, FILE_SIZE - 4096, 4096, 512, 4096, 0);

	/* A FUA direct write, then flush both ways. */
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 0, 4096, &(struct iovec){ buf, 4096 }, 1,
				true), 0);
	assert_int_equal(run_io(&e, UMDEV_BDEV_FLUSH, 0, 0, NULL, 0, false), 0);
	assert_int_equal(umdev_bdev_flush_sync(e.b), 0);

	check_zeroing(&e, UMDEV_BDEV_DISCARD);
	check_zeroing(&e, UMDEV_BDEV_WRITE_ZEROES);
	check_validation(&e);
	check_io_path(&e);
	free(buf);
	free(chk);
	env_close(&e);
}

static void test_file_readonly(void **state)
{
	struct umdev_bdev_info info;
	struct env e = { 0 };
	char buf[4096];

	open_file_env(&e, "/var/tmp", 65536, true);
	umdev_bdev_get_info(e.b, &info);
	assert_true(info.readonly);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_WRITE, 0, buf, sizeof(buf)), -EROFS);
	assert_int_equal(run_io(&e, UMDEV_BDEV_DISCARD, 0, 4096, NULL, 0, false), -EROFS);
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE_ZEROES, 0, 4096, NULL, 0, false), -EROFS);
	assert_int_equal(run_rw(&e, UMDEV_BDEV_READ, 1, buf, 100), 0);
	assert_int_equal(buf[0], (char)(1 * 7 + 3));
	assert_int_equal(run_io(&e, UMDEV_BDEV_FLUSH, 0, 0, NULL, 0, false), 0);
	env_close(&e);
}

/* tmpfs: no ZERO_RANGE, so WRITE_ZEROES falls back to punching a hole. */
static void test_file_tmpfs(void **state)
{
	struct env e = { 0 };

	open_file_env(&e, "/dev/shm", 65536, false);
	check_roundtrip(&e, 1000, 5000, 700, 999, 1);
	check_zeroing(&e, UMDEV_BDEV_WRITE_ZEROES);
	check_zeroing(&e, UMDEV_BDEV_DISCARD);
	check_io_path(&e);
	env_close(&e);
}

/* More iovecs than one readv takes: the request is continued in pieces. */
static void test_file_many_iovecs(void **state)
{
	struct umdev_bdev_queue_stats st;
	enum { N = 2500, SEG = 512 };
	struct env e = { 0 };
	struct iovec *iov = calloc(N, sizeof(*iov));
	char *buf = aligned_buf((size_t)N * SEG, 0), *chk = aligned_buf((size_t)N * SEG, 0);

	assert_non_null(iov);
	open_file_env(&e, "/var/tmp", 2 << 20, false);
	for (int i = 0; i < N; i++) {
		iov[i] = (struct iovec){ buf + (size_t)i * SEG, SEG };
		memset(iov[i].iov_base, i & 0xff, SEG);
	}
	/* A few empty iovecs must not disturb anything. */
	iov[0].iov_len = 0;
	iov[1024].iov_len = 0;
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 4096, (size_t)(N - 2) * SEG, iov, N, false),
			 0);
	umdev_bdev_queue_get_stats(e.q, &st);
	assert_true(st.short_ios >= 2);
	pread_file(&e, 4096, chk, (size_t)(N - 2) * SEG);
	for (size_t p = 0, i = 0; i < N; i++) {
		if (!iov[i].iov_len)
			continue;
		assert_memory_equal(chk + p, iov[i].iov_base, SEG);
		p += SEG;
	}
	memset(buf, 0, (size_t)N * SEG);
	assert_int_equal(run_io(&e, UMDEV_BDEV_READ, 4096, (size_t)(N - 2) * SEG, iov, N, false),
			 0);
	for (int i = 2; i < N; i++)
		if (i != 1024)
			assert_int_equal((unsigned char)buf[(size_t)i * SEG + 17], i & 0xff);
	free(iov);
	free(buf);
	free(chk);
	env_close(&e);
}

/*
 * The file shrinks behind our back: a direct read stops short inside an
 * iovec, is continued from mid-iovec, and the part past EOF reads zeroes.
 */
static void test_file_shrunk(void **state)
{
	struct umdev_bdev_queue_stats st;
	struct env e = { 0 };
	char *buf = aligned_buf(16384, 0x33);
	struct iovec iov[2] = { { buf, 8192 }, { buf + 8192, 8192 } };

	open_file_env(&e, "/var/tmp", 65536, false);
	assert_int_equal(truncate(e.path, 8192 + 100), 0);
	assert_int_equal(run_io(&e, UMDEV_BDEV_READ, 0, 16384, iov, 2, false), 0);
	umdev_bdev_queue_get_stats(e.q, &st);
	assert_true(st.short_ios >= 1);
	/* Started direct, continued buffered from the unaligned EOF. */
	assert_true(st.direct_ios == 1);
	assert_true(st.buffered_ios >= 1);
	for (int i = 0; i < 8192 + 100; i++)
		assert_int_equal(buf[i], (char)(i * 7 + 3));
	assert_true(all_zero(buf + 8192 + 100, 16384 - 8192 - 100));
	free(buf);
	env_close(&e);
}

/* Two queues of one backend on two loop threads. */
struct mt_ctx {
	umdev_bdev *b;
	umdev_loop *loop;
	umdev_bdev_queue *q;
	char *buf;
	uint64_t off;
	int left;
	int errors;
	struct umdev_bdev_io io;
	struct iovec iov;
};

static void mt_issue(void *opaque);

static void mt_done(struct umdev_bdev_io *io, int res)
{
	struct mt_ctx *c = (struct mt_ctx *)((char *)io - offsetof(struct mt_ctx, io));

	if (res)
		c->errors++;
	if (--c->left == 0) {
		umdev_bdev_queue_free(c->q);
		umdev_loop_stop(c->loop);
		return;
	}
	mt_issue(c);
}

static void mt_issue(void *opaque)
{
	struct mt_ctx *c = opaque;
	int err = 0;

	if (!c->q) {
		c->q = umdev_bdev_queue_new(c->b, c->loop, &err);
		assert_non_null(c->q);
	}
	c->iov = (struct iovec){ c->buf, 4096 };
	c->io = (struct umdev_bdev_io){ .op = (c->left & 1) ? UMDEV_BDEV_READ : UMDEV_BDEV_WRITE,
					.offset = c->off + (uint64_t)(c->left % 8) * 4096,
					.len = 4096, .iov = &c->iov, .iovcnt = 1,
					.done = mt_done };
	if (umdev_bdev_submit(c->q, &c->io) < 0)
		c->errors++;
}

static void test_file_two_loops(void **state)
{
	struct mt_ctx c[2];
	struct env e = { 0 };
	char spec[80];
	int err = 0;

	make_file(&e, "/var/tmp", 1 << 20);
	snprintf(spec, sizeof(spec), "file:%s", e.path);
	e.b = umdev_bdev_open(spec, false, &err);
	assert_non_null(e.b);
	for (int i = 0; i < 2; i++) {
		c[i] = (struct mt_ctx){ .b = e.b, .buf = aligned_buf(4096, i + 1),
					.off = (uint64_t)i * 65536, .left = 200 };
		c[i].loop = umdev_loop_new(i ? "t-mt1" : "t-mt0", 0, &err);
		assert_non_null(c[i].loop);
		assert_int_equal(umdev_loop_start_thread(c[i].loop), 0);
		assert_int_equal(umdev_loop_call(c[i].loop, mt_issue, &c[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		umdev_loop_join(c[i].loop);
		assert_int_equal(c[i].errors, 0);
		assert_int_equal(c[i].left, 0);
		umdev_loop_free(c[i].loop);
		free(c[i].buf);
	}
	umdev_bdev_close(e.b);
	unlink(e.path);
}

/* 32 reads and 32 writes in flight at once on one queue, all complete with the right data. */
#define QD 32

struct qd_req {
	struct umdev_bdev_io io;
	umdev_loop *loop;
	unsigned *left;
	int res;
	char buf[4096] __attribute__((aligned(4096)));
	struct iovec iov;
};

static void qd_done(struct umdev_bdev_io *io, int res)
{
	struct qd_req *r = (struct qd_req *)((char *)io - offsetof(struct qd_req, io));

	r->res = res;
	if (--*r->left == 0)
		umdev_loop_stop(r->loop);
}

static void test_file_queue_depth(void **state)
{
	struct qd_req *r = aligned_alloc(4096, QD * sizeof(*r));
	struct env e = { 0 };
	unsigned left;

	assert_non_null(r);
	open_file_env(&e, "/var/tmp", FILE_SIZE, false);
	for (int pass = 0; pass < 2; pass++) {
		enum umdev_bdev_op op = pass ? UMDEV_BDEV_READ : UMDEV_BDEV_WRITE;

		left = QD;
		for (int i = 0; i < QD; i++) {
			if (!pass)
				memset(r[i].buf, 'A' + i, sizeof(r[i].buf));
			else
				memset(r[i].buf, 0, sizeof(r[i].buf));
			r[i].iov = (struct iovec){ r[i].buf, sizeof(r[i].buf) };
			r[i].io = (struct umdev_bdev_io){ .op = op,
							  .offset = (uint64_t)(QD - 1 - i) * 8192,
							  .len = 4096, .iov = &r[i].iov, .iovcnt = 1,
							  .done = qd_done };
			r[i].loop = e.loop;
			r[i].left = &left;
			r[i].res = 1;
			assert_int_equal(umdev_bdev_submit(e.q, &r[i].io), 0);
		}
		assert_int_equal(umdev_loop_run(e.loop), 0);
		assert_int_equal(left, 0);
		for (int i = 0; i < QD; i++) {
			assert_int_equal(r[i].res, 0);
			for (int k = 0; pass && k < 4096; k++)
				assert_int_equal(r[i].buf[k], 'A' + i);
		}
	}
	check_io_path(&e);
	if (umdev_loop_engine(e.loop) == UMDEV_IO_ENGINE_EPOLL) {
		struct umdev_bdev_queue_stats st;
		io_context_t ctx = 0;
		bool have_aio = io_setup(1, &ctx) == 0;

		/* Aligned O_DIRECT steps go to native AIO where the kernel has it (not qemu-user). */
		if (have_aio)
			io_destroy(ctx);
		umdev_bdev_queue_get_stats(e.q, &st);
		if (have_aio)
			assert_true(st.aio_ios > 0);
		else
			assert_true(st.aio_ios == 0 && st.pool_ios >= 2 * QD);
	}
	env_close(&e);
	free(r);
}

/* The file tests again on loops forced to the epoll engine (worker pool). */
static int force_epoll(void **state)
{
	umdev_io_engine_set_default(UMDEV_IO_ENGINE_EPOLL);
	return 0;
}

static int unforce(void **state)
{
	umdev_io_engine_set_default(UMDEV_IO_ENGINE_AUTO);
	return 0;
}

int main(void)
{
	const struct CMUnitTest epoll_tests[] = {
		cmocka_unit_test(test_file_empty),
		cmocka_unit_test(test_file_direct),
		cmocka_unit_test(test_file_readonly),
		cmocka_unit_test(test_file_tmpfs),
		cmocka_unit_test(test_file_many_iovecs),
		cmocka_unit_test(test_file_shrunk),
		cmocka_unit_test(test_file_two_loops),
		cmocka_unit_test(test_file_queue_depth),
	};
	int failed;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_queue_depth),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_file_empty),
		cmocka_unit_test(test_ram),
		cmocka_unit_test(test_ram_readonly),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_file_direct),
		cmocka_unit_test(test_file_readonly),
		cmocka_unit_test(test_file_tmpfs),
		cmocka_unit_test(test_file_many_iovecs),
		cmocka_unit_test(test_file_shrunk),
		cmocka_unit_test(test_file_two_loops),
	};

	srand(1);
	failed = cmocka_run_group_tests_name("default engine", tests, NULL, NULL);
	return failed + cmocka_run_group_tests_name("epoll engine", epoll_tests, force_epoll,
						    unforce);
}
