/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dirty logging of the device-side virtqueue (live migration): used-ring
 * writes are marked at the ring's log address (not where the ring really
 * is), exactly the pages written; buffers the device wrote are marked
 * through their host iovecs, across regions; the log's bounds hold; bad
 * logs are refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "umdev/proto/virtio_ring.h"
#include "vq_fixture.h"

#define PAGE 4096ull
#define LOG_BYTES 4096ull /* 32768 pages: guest addresses below 128 MiB */
/* A log address one u16 below a page boundary: flags and the rest of the
 * used ring land on different pages of the log. */
#define LOG_USED (0x700000ull - 2)

struct logfx {
	int fd;
	uint8_t *bits;
	umdev_dirty_log *log;
};

static void log_open(struct logfx *l, uint64_t size)
{
	int err = 0;

	l->fd = memfd_create("vq-log", MFD_CLOEXEC);
	assert_true(l->fd >= 0);
	assert_int_equal(ftruncate(l->fd, (off_t)LOG_BYTES), 0);
	l->bits = mmap(NULL, LOG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	assert_true(l->bits != MAP_FAILED);
	l->log = umdev_dirty_log_new(l->fd, size, 0, &err);
	assert_non_null(l->log);
	assert_int_equal(err, 0);
}

static void log_close(struct logfx *l)
{
	umdev_dirty_log_free(l->log);
	munmap(l->bits, LOG_BYTES);
	close(l->fd);
}

static bool dirty(const struct logfx *l, uint64_t gpa)
{
	uint64_t p = gpa / PAGE;

	return l->bits[p / 8] & (1u << (p % 8));
}

static unsigned count_dirty(const struct logfx *l)
{
	unsigned n = 0;

	for (uint64_t i = 0; i < LOG_BYTES; i++)
		n += (unsigned)__builtin_popcount(l->bits[i]);
	return n;
}

static void one_request(struct fx *f, const struct umdev_vqd_buf *b, unsigned n,
			struct umdev_vq_elem *e, struct iovec *iov)
{
	assert_true(umdev_vqd_add(&f->d, b, n, 0) >= 0);
	assert_int_equal(umdev_vq_pop(f->vq, e, iov, MAX_IOV), 1);
}

/* With EVENT_IDX, the device writes used entries, used idx and avail_event. */
static void test_used_logged_at_log_addr(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b = { .addr = BUF_GPA, .len = 64, .write = true };
	struct umdev_vq_log lg;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	struct logfx l;

	log_open(&l, LOG_BYTES);
	lg = (struct umdev_vq_log){ .log = l.log, .used = true, .used_gpa = LOG_USED };
	umdev_vq_set_log(f->vq, &lg);
	fx_start(f, 16, true, false);
	one_request(f, &b, 1, &e, iov);
	assert_int_equal(count_dirty(&l), 0);
	umdev_vq_push(f->vq, e.head, 64);
	/* Entry (offset 4) and idx (offset 2): page 0x700 only, not the flags' page. */
	assert_true(dirty(&l, 0x700000));
	assert_false(dirty(&l, 0x6ff000));
	assert_int_equal(count_dirty(&l), 1);
	/* Not where the ring really is, and not the buffer: data logging is off. */
	assert_false(dirty(&l, f->d.used_gpa));
	assert_false(dirty(&l, BUF_GPA));
	umdev_vq_log_write(f->vq, iov + e.n_out, e.n_in);
	assert_int_equal(count_dirty(&l), 1);
	/* avail_event (offset 4 + 8 * 16) is on the same log page. */
	memset(l.bits, 0, LOG_BYTES);
	(void)umdev_vq_enable_kicks(f->vq);
	assert_true(dirty(&l, 0x700000));
	assert_int_equal(count_dirty(&l), 1);
	(void)umdev_vq_stop(f->vq);
	umdev_vq_set_log(f->vq, NULL);
	log_close(&l);
}

/* Without EVENT_IDX the device writes used->flags to suppress kicks: logged too. */
static void test_used_flags_logged(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_log lg;
	struct logfx l;

	log_open(&l, LOG_BYTES);
	lg = (struct umdev_vq_log){ .log = l.log, .used = true, .used_gpa = LOG_USED };
	umdev_vq_set_log(f->vq, &lg);
	fx_start(f, 16, false, false);
	umdev_vq_disable_kicks(f->vq);
	assert_true(dirty(&l, 0x6ff000));
	assert_int_equal(count_dirty(&l), 1);
	memset(l.bits, 0, LOG_BYTES);
	(void)umdev_vq_enable_kicks(f->vq);
	assert_true(dirty(&l, 0x6ff000));
	assert_int_equal(count_dirty(&l), 1);
	(void)umdev_vq_stop(f->vq);
	umdev_vq_set_log(f->vq, NULL);
	log_close(&l);
}

/* Packed rings: used descriptors are logged where they are written (the
 * descriptor ring), the device area at the log address. */
static void test_packed_used_logged(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b = { .addr = BUF_GPA, .len = 64, .write = true };
	struct umdev_vq_log lg;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	struct logfx l;

	log_open(&l, LOG_BYTES);
	lg = (struct umdev_vq_log){ .log = l.log, .used = true, .used_gpa = LOG_USED };
	umdev_vq_set_log(f->vq, &lg);
	fx_start_packed(f, 16, true, false);
	one_request(f, &b, 1, &e, iov);
	assert_int_equal(count_dirty(&l), 0);
	umdev_vq_push(f->vq, e.head, 64);
	assert_true(dirty(&l, RING_GPA));
	assert_int_equal(count_dirty(&l), 1);
	assert_false(dirty(&l, BUF_GPA));
	memset(l.bits, 0, LOG_BYTES);
	/* off_wrap and flags: 4 bytes across the log page boundary. */
	(void)umdev_vq_enable_kicks(f->vq);
	assert_true(dirty(&l, 0x6ff000));
	assert_true(dirty(&l, 0x700000));
	assert_int_equal(count_dirty(&l), 2);
	(void)umdev_vq_stop(f->vq);
	umdev_vq_set_log(f->vq, NULL);
	log_close(&l);
}

/* Data logging marks exactly the written buffers' pages, across regions. */
static void test_data_logged(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd_buf b[4] = {
		{ .addr = BUF_GPA, .len = 16 },
		{ .addr = BUF_GPA + 0x1000, .len = 200 },
		{ .addr = BUF_GPA + 0x2ff0, .len = 0x20, .write = true }, /* pages 0x112, 0x113 */
		{ .addr = GPA_B - 0x800, .len = 0x1000, .write = true }, /* A's last, B's first */
	};
	struct umdev_vq_log lg;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	struct logfx l;

	log_open(&l, LOG_BYTES);
	lg = (struct umdev_vq_log){ .log = l.log, .data = true };
	umdev_vq_set_log(f->vq, &lg);
	fx_start(f, 16, false, false);
	one_request(f, b, 4, &e, iov);
	assert_int_equal(e.n_in, 3); /* the last buffer spans two regions */
	umdev_vq_log_write(f->vq, iov + e.n_out, e.n_in);
	assert_true(dirty(&l, BUF_GPA + 0x2000));
	assert_true(dirty(&l, BUF_GPA + 0x3000));
	assert_true(dirty(&l, GPA_B - PAGE));
	assert_true(dirty(&l, GPA_B));
	assert_false(dirty(&l, BUF_GPA));
	assert_false(dirty(&l, BUF_GPA + 0x1000));
	assert_int_equal(count_dirty(&l), 4);
	/* used.flags is written, but used-ring logging is off. */
	umdev_vq_push(f->vq, e.head, 0);
	assert_int_equal(count_dirty(&l), 4);
	(void)umdev_vq_stop(f->vq);
	/* Detached: nothing more is marked. */
	umdev_vq_set_log(f->vq, NULL);
	memset(l.bits, 0, LOG_BYTES);
	fx_start(f, 16, false, false);
	one_request(f, b, 4, &e, iov);
	umdev_vq_log_write(f->vq, iov + e.n_out, e.n_in);
	umdev_vq_push(f->vq, e.head, 0);
	assert_int_equal(count_dirty(&l), 0);
	(void)umdev_vq_stop(f->vq);
	log_close(&l);
}

/* Pages past the log are counted, never written; bad logs are refused. */
static void test_log_bounds(void **state)
{
	struct logfx l;
	int efd, err = 0;

	(void)state;
	log_open(&l, 1); /* one byte: pages 0..7 */
	assert_true(umdev_dirty_log_covers(l.log, 0, 8 * PAGE));
	assert_false(umdev_dirty_log_covers(l.log, 0, 8 * PAGE + 1));
	assert_false(umdev_dirty_log_covers(l.log, UINT64_MAX - 8, 16));
	umdev_dirty_log_mark(l.log, 7 * PAGE + 100, 10);
	assert_int_equal(l.bits[0], 0x80);
	umdev_dirty_log_mark(l.log, 6 * PAGE, 3 * PAGE); /* 6, 7, then past the end */
	assert_int_equal(l.bits[0], 0xc0);
	assert_int_equal(l.bits[1], 0);
	assert_int_equal(umdev_dirty_log_overflows(l.log), 1);
	umdev_dirty_log_mark(l.log, UINT64_MAX - 10, 100); /* wraps: clamped, past the end */
	assert_int_equal(umdev_dirty_log_overflows(l.log), 2);
	umdev_dirty_log_mark(NULL, 0, 10);
	umdev_dirty_log_mark(l.log, 0, 0);
	assert_int_equal(l.bits[0], 0xc0);

	assert_null(umdev_dirty_log_new(l.fd, 0, 0, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(umdev_dirty_log_new(l.fd, LOG_BYTES, 100, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(umdev_dirty_log_new(l.fd, UMDEV_DIRTY_LOG_MAX + 1, 0, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(umdev_dirty_log_new(l.fd, LOG_BYTES, UINT64_MAX & ~(PAGE - 1), &err));
	assert_int_equal(err, -EINVAL);
	assert_null(umdev_dirty_log_new(l.fd, LOG_BYTES + 1, 0, &err));
	assert_int_equal(err, -ERANGE);
	assert_null(umdev_dirty_log_new(l.fd, LOG_BYTES, PAGE, &err));
	assert_int_equal(err, -ERANGE);
	efd = eventfd(0, EFD_CLOEXEC);
	assert_true(efd >= 0);
	assert_null(umdev_dirty_log_new(efd, PAGE, 0, &err));
	assert_int_equal(err, -EBADFD);
	close(efd);
	log_close(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_used_logged_at_log_addr, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_used_flags_logged, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_data_logged, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_used_logged, fx_setup, fx_teardown),
		cmocka_unit_test(test_log_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
