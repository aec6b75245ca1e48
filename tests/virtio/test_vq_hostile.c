/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hostile drivers: each case writes the ring by hand and checks that the
 * queue goes BROKEN with exactly one log line, touching nothing outside
 * guest memory. Also the driver side on its own, and a driver rewriting
 * descriptors while the device walks them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vq_fixture.h"

/* ---- hostile drivers ---- */

static void test_bad_loop(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "loop");
	/* Only stop leaves BROKEN; a restart meets the same bad chain. */
	assert_int_equal(umdev_vq_stop(f->vq), 0);
	f->cfg.last_avail_idx = 0;
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
	expect_broken(f, MAX_IOV, "loop");
}

/* The front-end hears of a broken queue through the error eventfd, once. */
static void test_broken_signals_err_fd(void **state)
{
	struct fx *f = *state;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	uint64_t v = 0;

	assert_true(efd >= 0);
	umdev_vq_set_err_fd(f->vq, efd);
	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 99);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "out of range");
	assert_int_equal(read(efd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
	/* Popping again on the broken queue does not signal again. */
	{
		struct iovec iov[MAX_IOV];
		struct umdev_vq_elem e;

		assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), -EIO);
	}
	assert_int_equal(read(efd, &v, sizeof(v)), -1);
	umdev_vq_set_err_fd(f->vq, -1);
	close(efd);
}

static void test_bad_loop_zero_len(void **state)
{
	struct fx *f = *state;

	/* Zero-length descriptors take no iovecs, so only the count stops it. */
	fx_start(f, 16, false, false);
	for (uint16_t i = 0; i < 16; i++)
		set_desc(f, i, BUF_GPA, 0, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % 16));
	publish(f, 3);
	expect_broken(f, MAX_IOV, "loop");
}

static void test_full_length_chain_ok(void **state)
{
	struct fx *f = *state;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;

	/* A chain using every descriptor once is legal. */
	fx_start(f, 16, false, false);
	for (uint16_t i = 0; i < 16; i++)
		set_desc(f, i, BUF_GPA, 1, i < 15 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	publish(f, 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.n_out, 16);
}

static void test_bad_next(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 16);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "out of range");
}

static void test_bad_avail_head(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	publish(f, 16);
	expect_broken(f, MAX_IOV, "head 16");
}

static void test_bad_avail_idx(void **state)
{
	struct fx *f = *state;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;

	fx_start(f, 16, false, false);
	for (int i = 0; i < 16; i++)
		set_desc(f, (uint16_t)i, BUF_GPA, 8, 0, 0);
	/* Exactly a full ring is fine. */
	for (int i = 0; i < 16; i++)
		publish(f, (uint16_t)i);
	for (int i = 0; i < 16; i++)
		assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	/* One more than a ring ahead of us is not. */
	__atomic_store_n(&f->d.avail->idx, (uint16_t)(16 + 17), __ATOMIC_RELEASE);
	expect_broken(f, MAX_IOV, "ahead");
}

static void test_bad_indirect_not_negotiated(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	ind_table(f)[0] = (struct virtq_desc){ .addr = BUF_GPA, .len = 8 };
	set_desc(f, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "not negotiated");
}

static void bad_indirect_len(void **state, uint32_t len, const char *what)
{
	struct fx *f = *state;

	fx_start(f, 16, false, true);
	memset(ind_table(f), 0, 64);
	set_desc(f, 0, IND_GPA, len, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, what);
}

static void test_bad_indirect_len0(void **state)
{
	bad_indirect_len(state, 0, "length 0");
}

static void test_bad_indirect_len_odd(void **state)
{
	bad_indirect_len(state, 24, "length 24");
}

static void test_bad_indirect_len_huge(void **state)
{
	bad_indirect_len(state, 16u * (VIRTQ_MAX_SIZE + 1), "indirect table length");
}

static void test_bad_indirect_outside(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, true);
	set_desc(f, 0, GPA_B + REGION_AB - 16, 32, VIRTQ_DESC_F_INDIRECT, 0); /* runs off B */
	publish(f, 0);
	expect_broken(f, MAX_IOV, "indirect table");
}

static void test_bad_indirect_nested(void **state)
{
	struct fx *f = *state;
	struct virtq_desc *t = ind_table(f);

	fx_start(f, 16, false, true);
	t[0] = (struct virtq_desc){ .addr = BUF_GPA, .len = 8, .flags = VIRTQ_DESC_F_NEXT, .next = 1 };
	t[1] = (struct virtq_desc){ .addr = IND_GPA, .len = 32, .flags = VIRTQ_DESC_F_INDIRECT };
	set_desc(f, 0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "nested");
}

static void test_bad_indirect_with_next(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, true);
	ind_table(f)[0] = (struct virtq_desc){ .addr = BUF_GPA, .len = 8 };
	set_desc(f, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 8, 0, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "INDIRECT together with NEXT");
}

static void test_bad_indirect_loop(void **state)
{
	struct fx *f = *state;
	struct virtq_desc *t = ind_table(f);

	fx_start(f, 16, false, true);
	t[0] = (struct virtq_desc){ .addr = BUF_GPA, .len = 0, .flags = VIRTQ_DESC_F_NEXT, .next = 1 };
	t[1] = (struct virtq_desc){ .addr = BUF_GPA, .len = 0, .flags = VIRTQ_DESC_F_NEXT, .next = 0 };
	set_desc(f, 0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "loop");
}

static void test_bad_indirect_next(void **state)
{
	struct fx *f = *state;
	struct virtq_desc *t = ind_table(f);

	fx_start(f, 16, false, true);
	t[0] = (struct virtq_desc){ .addr = BUF_GPA, .len = 4, .flags = VIRTQ_DESC_F_NEXT, .next = 1 };
	t[1] = (struct virtq_desc){ .addr = BUF_GPA, .len = 4, .flags = VIRTQ_DESC_F_NEXT, .next = 2 };
	set_desc(f, 0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "out of range");
}

static void test_bad_head_in_use(void **state)
{
	struct fx *f = *state;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;

	fx_start(f, 16, false, false);
	set_desc(f, 4, BUF_GPA, 8, 0, 0);
	publish(f, 4);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	/* Once pushed, the driver may offer the same head again... */
	umdev_vq_push(f->vq, 4, 0);
	publish(f, 4);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.head, 4);
	/* ...but not while the device still owns it. */
	publish(f, 4);
	expect_broken(f, MAX_IOV, "already in use");
}

static void test_push_not_in_use(void **state)
{
	struct fx *f = *state;
	struct umdev_vq_elem e[2];

	fx_start(f, 16, false, false);
	add_n(f, 2);
	pop_n(f, e, 1);
	/* A device bug: pushing a head never popped, or twice. Refused. */
	umdev_vq_push(f->vq, (uint16_t)(e[0].head + 1), 0);
	umdev_vq_push(f->vq, 16, 0);
	assert_int_equal(f->d.used->idx, 0);
	assert_int_equal(umdev_vq_inuse(f->vq), 1);
	umdev_vq_push(f->vq, e[0].head, 0);
	umdev_vq_push(f->vq, e[0].head, 0);
	assert_int_equal(f->d.used->idx, 1);
	assert_int_equal(umdev_vq_inuse(f->vq), 0);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);
}

static void test_bad_read_after_write(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 8, 0, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, "readable descriptor after a writable");
}

static void test_bad_total_overflow(void **state)
{
	struct fx *f = *state;
	unsigned n = 8193;
	struct virtq_desc *t = ind_table(f);

	/* 8193 x 512 KiB = 2^32 + 512 KiB, each buffer itself valid. */
	fx_start(f, 16, false, true);
	for (unsigned i = 0; i < n; i++)
		t[i] = (struct virtq_desc){ .addr = GPA_B, .len = (uint32_t)REGION_AB,
					    .flags = i + 1 < n ? VIRTQ_DESC_F_NEXT : 0,
					    .next = (uint16_t)(i + 1) };
	set_desc(f, 0, IND_GPA, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, n + 8, "overflows 32 bits");
}

static void bad_buffer(void **state, uint64_t addr, uint32_t len, uint16_t flags,
		       const char *what)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, addr, len, flags, 0);
	publish(f, 0);
	expect_broken(f, MAX_IOV, what);
}

static void test_bad_addr_gap(void **state)
{
	bad_buffer(state, GPA_GAP, 16, 0, "not in readable guest memory");
}

static void test_bad_addr_into_gap(void **state)
{
	/* Starts in region B, runs off its end into nothing. */
	bad_buffer(state, GPA_A + 2 * REGION_AB - 8, 16, VIRTQ_DESC_F_WRITE,
		   "not in writable guest memory");
}

static void test_bad_addr_wrap(void **state)
{
	bad_buffer(state, UINT64_MAX - 7, 16, 0, "not in readable guest memory");
}

static void test_bad_write_to_readonly(void **state)
{
	bad_buffer(state, GPA_C, 16, VIRTQ_DESC_F_WRITE, "not in writable guest memory");
}

static void test_bad_read_from_writeonly(void **state)
{
	bad_buffer(state, GPA_D, 16, 0, "not in readable guest memory");
}

static void test_permissions_ok(void **state)
{
	struct fx *f = *state;
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;

	fx_start(f, 16, false, false);
	set_desc(f, 0, GPA_C, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, GPA_D, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 1);
}

static void test_bad_too_many_iov(void **state)
{
	struct fx *f = *state;

	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, GPA_B - 8, 16, 0, 0); /* two iovecs */
	publish(f, 0);
	expect_broken(f, 2, "more than 2 iovecs");
}

/* ---- driver side (src/client/virtq_drv.c) ---- */

static void test_drv_init_errors(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd *d = &f->d;

	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA, 0, false), -EINVAL);
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA, 12, false), -EINVAL);
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA + 16, 16, false),
			 -EINVAL);
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, GPA_A - 0x1000, 16, false),
			 -EINVAL);
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, GPA_A + DRV_SIZE - 0x1000,
					256, false), -EINVAL);
	/* 32768 entries need 0xd1006 bytes: too many from here on. */
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, GPA_A + 0x40000, 32768,
					false), -EINVAL);
	assert_int_equal(umdev_vqd_init(d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA, 8192, false), 0);
	assert_int_equal(umdev_vqd_num_free(d), 8192);
	assert_int_equal(d->used_gpa % 4096, 0);
	assert_true(d->used_gpa + virtq_used_bytes(8192) <= RING_GPA + umdev_vqd_ring_bytes(8192));
	assert_true(d->avail_gpa + virtq_avail_bytes(8192) <= d->used_gpa);
}

static void test_drv_add_reap(void **state)
{
	struct fx *f = *state;
	struct umdev_vqd *d = &f->d;
	struct umdev_vqd_buf b[5] = {
		{ .addr = BUF_GPA, .len = 1 }, { .addr = BUF_GPA, .len = 2 },
		{ .addr = BUF_GPA, .len = 3 }, { .addr = BUF_GPA, .len = 4 },
		{ .addr = BUF_GPA, .len = 5 },
	};
	struct iovec iov[MAX_IOV];
	struct umdev_vq_elem e;
	uint16_t head;
	uint32_t len;
	int h, h2;

	fx_start(f, 4, false, true);
	assert_int_equal(umdev_vqd_add(d, b, 0, 0), -EINVAL);
	assert_int_equal(umdev_vqd_add(d, b, 5, 0), -ENOSPC);
	assert_int_equal(umdev_vqd_add(d, b, 5, GPA_A + DRV_SIZE - 16), -EINVAL);
	h = umdev_vqd_add(d, b, 3, 0);
	assert_true(h >= 0);
	assert_int_equal(umdev_vqd_num_free(d), 1);
	assert_int_equal(umdev_vqd_add(d, b, 2, 0), -ENOSPC);
	/* An indirect chain of any length takes one ring descriptor. */
	h2 = umdev_vqd_add(d, b, 5, IND_GPA);
	assert_true(h2 >= 0);
	assert_int_equal(umdev_vqd_num_free(d), 0);
	assert_int_equal(umdev_vqd_add(d, b, 1, IND_GPA), -ENOSPC);
	assert_int_equal(umdev_vqd_add(d, b, 1, 0), -ENOSPC);

	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.out_len, 6);
	assert_int_equal(umdev_vq_pop(f->vq, &e, iov, MAX_IOV), 1);
	assert_int_equal(e.out_len, 15);
	assert_int_equal(e.n_out, 5);
	/* The device scribbling on the table must not steer the free list. */
	for (int i = 0; i < 4; i++)
		d->desc[i].next = 0xbeef;
	umdev_vq_push(f->vq, (uint16_t)h, 0);
	umdev_vq_push(f->vq, (uint16_t)h2, 0);
	assert_true(umdev_vqd_has_used(d));
	assert_int_equal(umdev_vqd_get_used(d, &head, &len), 1);
	assert_int_equal(head, h);
	assert_int_equal(umdev_vqd_get_used(d, &head, &len), 1);
	assert_int_equal(head, h2);
	assert_false(umdev_vqd_has_used(d));
	assert_int_equal(umdev_vqd_num_free(d), 4);
	h = umdev_vqd_add(d, b, 2, 0);
	h2 = umdev_vqd_add(d, b, 2, 0);
	assert_true(h >= 0 && h < 4 && h2 >= 0 && h2 < 4 && h != h2);
	assert_int_equal(umdev_vqd_num_free(d), 0);

	/* A device returning a head that is not outstanding is caught. */
	d->used->ring[d->last_used_idx & 3] = (struct virtq_used_elem){ .id = 99 };
	__atomic_store_n(&d->used->idx, (uint16_t)(d->last_used_idx + 1), __ATOMIC_RELEASE);
	assert_int_equal(umdev_vqd_get_used(d, &head, &len), -EPROTO);
	for (uint32_t i = 0; i < 4; i++) {
		if (i == (uint32_t)h || i == (uint32_t)h2)
			continue;
		/* i is the second descriptor of some chain, not a head */
		d->used->ring[d->last_used_idx & 3] = (struct virtq_used_elem){ .id = i };
		assert_int_equal(umdev_vqd_get_used(d, &head, &len), -EPROTO);
	}
	assert_int_equal(umdev_vqd_num_free(d), 0);
}

/* ---- a driver rewriting descriptors while the device reads them ---- */

struct flipper {
	struct fx *f;
	bool stop;
	unsigned long flips;
};

static void *flip_thread(void *arg)
{
	struct flipper *fl = arg;
	struct virtq_desc *d = fl->f->d.desc;
	uint32_t x = 1;

	while (!__atomic_load_n(&fl->stop, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(&fl->flips, 1, __ATOMIC_RELAXED);
		x = x * 1103515245u + 12345u;
		__atomic_store_n(&d[0].next, (x >> 8) & 1 ? 1 : 200, __ATOMIC_RELAXED);
		__atomic_store_n(&d[1].len, (x >> 9) & 1 ? 16 : 0x7fffffff, __ATOMIC_RELAXED);
		__atomic_store_n(&d[1].addr, (x >> 10) & 1 ? BUF_GPA : GPA_GAP, __ATOMIC_RELAXED);
		__atomic_store_n(&d[1].flags, (x >> 11) & 1 ? 0 : VIRTQ_DESC_F_NEXT, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_concurrent_rewrite(void **state)
{
	struct fx *f = *state;
	struct flipper fl = { .f = f };
	const uint8_t *a = umdev_as_map_translate(f->map, GPA_A, REGION_AB, UMDEV_MEM_READ);
	const uint8_t *bb = umdev_as_map_translate(f->map, GPA_B, REGION_AB, UMDEV_MEM_READ);
	unsigned ok = 0, broken = 0, lines = 0;
	FILE *logf;
	int saved, c;
	pthread_t t;

	assert_non_null(a);
	assert_non_null(bb);
	fx_start(f, 16, false, false);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 16, 0, 0);
	/* Each break logs one line: send them to a file and count them. */
	logf = tmpfile();
	assert_non_null(logf);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(logf), STDERR_FILENO) >= 0);
	assert_int_equal(pthread_create(&t, NULL, flip_thread, &fl), 0);
	while (__atomic_load_n(&fl.flips, __ATOMIC_RELAXED) < 1000)
		sched_yield();
	/* Run until both outcomes were seen often, within a generous bound. */
	for (int i = 0; i < 4000000 && (ok < 5000 || broken < 5000); i++) {
		struct iovec iov[MAX_IOV];
		struct umdev_vq_elem e;
		uint64_t sum = 0;
		int r;

		publish(f, 0);
		r = umdev_vq_pop(f->vq, &e, iov, MAX_IOV);
		if (r == 1) {
			/* Whatever was read is self-consistent and inside guest memory. */
			for (unsigned k = 0; k < e.n_out + e.n_in; k++) {
				const uint8_t *p = iov[k].iov_base;
				bool in_a = p >= a && p + iov[k].iov_len <= a + REGION_AB;
				bool in_b = p >= bb && p + iov[k].iov_len <= bb + REGION_AB;

				assert_true(in_a || in_b);
				sum += iov[k].iov_len;
			}
			assert_int_equal(sum, e.out_len + e.in_len);
			assert_true(e.n_out >= 1);
			umdev_vq_push(f->vq, e.head, 0);
			ok++;
		} else {
			assert_int_equal(r, -EIO);
			assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_BROKEN);
			f->cfg.last_avail_idx = umdev_vq_stop(f->vq);
			f->cfg.last_avail_idx++; /* skip the bad entry */
			assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
			broken++;
		}
	}
	__atomic_store_n(&fl.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(logf);
	while ((c = fgetc(logf)) != EOF)
		lines += c == '\n';
	fclose(logf);
	fprintf(stderr, "concurrent rewrite: %u popped, %u broken\n", ok, broken);
	assert_true(ok > 0);
	assert_true(broken > 0);
	assert_int_equal(lines, broken);
}

int vq_hostile_tests(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_bad_loop),
		T(test_bad_loop_zero_len),
		T(test_broken_signals_err_fd),
		T(test_full_length_chain_ok),
		T(test_bad_next),
		T(test_bad_avail_head),
		T(test_bad_avail_idx),
		T(test_bad_indirect_not_negotiated),
		T(test_bad_indirect_len0),
		T(test_bad_indirect_len_odd),
		T(test_bad_indirect_len_huge),
		T(test_bad_indirect_outside),
		T(test_bad_indirect_nested),
		T(test_bad_indirect_with_next),
		T(test_bad_indirect_loop),
		T(test_bad_indirect_next),
		T(test_bad_head_in_use),
		T(test_push_not_in_use),
		T(test_bad_read_after_write),
		T(test_bad_total_overflow),
		T(test_bad_addr_gap),
		T(test_bad_addr_into_gap),
		T(test_bad_addr_wrap),
		T(test_bad_write_to_readonly),
		T(test_bad_read_from_writeonly),
		T(test_permissions_ok),
		T(test_bad_too_many_iov),
		T(test_drv_init_errors),
		T(test_drv_add_reap),
		T(test_concurrent_rewrite),
#undef T
	};

	return cmocka_run_group_tests_name("virtio-vq-hostile", tests, NULL, NULL);
}
