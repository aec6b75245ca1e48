/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest memory is one memfd, seen twice: the device through the address
 * space's own mmaps of two adjacent regions (A and B, so buffers can cross a
 * region boundary), the driver through a separate mmap of the whole first
 * MiB. The two views sit at different host addresses, so any translation
 * mistake shows up as wrong data rather than passing by accident. Two more
 * small regions, past a gap, are read-only (C) and write-only (D).
 *
 * Hostile cases write the descriptor table and avail ring by hand and check
 * that the queue goes BROKEN with exactly one error line and no crash.
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

static void add_region(struct fx *f, uint64_t gpa, uint64_t size, uint64_t off, unsigned prot)
{
	struct umdev_mem_region_desc rd = {
		.guest_addr = gpa, .size = size, .mmap_offset = off,
		.fd = dup(f->memfd), .prot = prot,
	};

	assert_true(rd.fd >= 0);
	assert_int_equal(umdev_as_add_region(f->as, &rd), 0);
}

int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int err = 0;

	assert_non_null(f);
	f->memfd = memfd_create("umdev-vq-test", MFD_CLOEXEC);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, MEMFD_SIZE), 0);
	f->as = umdev_as_new(&err);
	assert_non_null(f->as);
	add_region(f, GPA_A, REGION_AB, 0, UMDEV_MEM_READ | UMDEV_MEM_WRITE);
	add_region(f, GPA_B, REGION_AB, REGION_AB, UMDEV_MEM_READ | UMDEV_MEM_WRITE);
	add_region(f, GPA_C, REGION_CD, DRV_SIZE, UMDEV_MEM_READ);
	add_region(f, GPA_D, REGION_CD, DRV_SIZE + REGION_CD, UMDEV_MEM_WRITE);
	f->map = umdev_as_get_map(f->as);
	f->drv_mem = mmap(NULL, DRV_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->drv_mem != MAP_FAILED);
	f->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(f->call_fd >= 0);
	f->vq = umdev_vq_new("test.q0", &err);
	assert_non_null(f->vq);
	*state = f;
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;

	if (f->vq) {
		(void)umdev_vq_stop(f->vq);
		umdev_vq_free(f->vq);
	}
	umdev_vqd_fini(&f->d);
	umdev_as_map_put(f->map);
	umdev_as_free(f->as);
	munmap(f->drv_mem, DRV_SIZE);
	close(f->call_fd);
	close(f->memfd);
	free(f->inflight);
	free(f);
	return 0;
}

/* Lay out the driver ring and start the device on it. */
void fx_start(struct fx *f, uint16_t size, bool event_idx, bool indirect)
{
	umdev_vqd_fini(&f->d);
	assert_int_equal(umdev_vqd_init(&f->d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA, size,
					 event_idx), 0);
	f->cfg = (struct umdev_vq_config){
		.size = size, .desc_addr = f->d.desc_gpa, .avail_addr = f->d.avail_gpa,
		.used_addr = f->d.used_gpa, .event_idx = event_idx, .indirect = indirect,
	};
	umdev_vq_set_call_fd(f->vq, f->call_fd);
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);
}

/* The same with a packed ring (driver and device start at slot 0, wrap 1). */
void fx_start_packed(struct fx *f, uint16_t size, bool event_idx, bool indirect)
{
	umdev_vqd_fini(&f->d);
	assert_int_equal(umdev_vqd_init_packed(&f->d, f->drv_mem, GPA_A, DRV_SIZE, RING_GPA, size,
						event_idx), 0);
	f->cfg = (struct umdev_vq_config){
		.size = size, .desc_addr = f->d.desc_gpa, .avail_addr = f->d.avail_gpa,
		.used_addr = f->d.used_gpa, .event_idx = event_idx, .indirect = indirect,
		.packed = true, .last_avail_idx = VIRTQ_PACKED_WRAP_BIT,
		.last_used_idx = VIRTQ_PACKED_WRAP_BIT,
	};
	umdev_vq_set_call_fd(f->vq, f->call_fd);
	assert_int_equal(umdev_vq_start(f->vq, f->map, &f->cfg), 0);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_RUNNING);
}

void *drv_ptr(struct fx *f, uint64_t gpa)
{
	assert_true(gpa >= GPA_A && gpa < GPA_A + DRV_SIZE);
	return f->drv_mem + (gpa - GPA_A);
}

void fill(struct fx *f, uint64_t gpa, size_t len, uint8_t seed)
{
	uint8_t *p = drv_ptr(f, gpa);

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* Concatenate @n iovecs and compare them with the driver's view of @gpa. */
void check_iov_data(struct fx *f, const struct iovec *iov, unsigned n, uint64_t gpa,
			   size_t len)
{
	const uint8_t *want = drv_ptr(f, gpa);
	size_t off = 0;

	for (unsigned i = 0; i < n; i++) {
		/* Two mappings: the device must never hand out the driver's. */
		assert_true((uint8_t *)iov[i].iov_base < f->drv_mem ||
			    (uint8_t *)iov[i].iov_base >= f->drv_mem + DRV_SIZE);
		assert_true(off + iov[i].iov_len <= len);
		assert_memory_equal(iov[i].iov_base, want + off, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	assert_int_equal(off, len);
}

uint64_t read_call(struct fx *f)
{
	uint64_t v = 0;

	if (read(f->call_fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Publish @head in the avail ring by hand (hostile tests). */
void publish(struct fx *f, uint16_t head)
{
	struct umdev_vqd *d = &f->d;

	d->avail->ring[d->avail_idx & (d->size - 1)] = head;
	d->avail_idx++;
	__atomic_store_n(&d->avail->idx, d->avail_idx, __ATOMIC_RELEASE);
}

void set_desc(struct fx *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	f->d.desc[i] = (struct virtq_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

struct virtq_desc *ind_table(struct fx *f)
{
	return drv_ptr(f, IND_GPA);
}

/*
 * Pop with stderr captured: expect -EIO, BROKEN, exactly one log line
 * naming the queue and containing @what, and no state change; a second pop
 * stays -EIO without logging again.
 */
void expect_broken(struct fx *f, unsigned max_iov, const char *what)
{
	struct iovec *iov = calloc(max_iov ? max_iov : 1, sizeof(*iov));
	uint16_t last = umdev_vq_last_avail_idx(f->vq);
	unsigned inuse = umdev_vq_inuse(f->vq);
	struct umdev_vq_elem e;
	char log[4096] = { 0 };
	int p[2], saved, r1, r2, lines = 0;
	ssize_t n;

	assert_non_null(iov);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	r1 = umdev_vq_pop(f->vq, &e, iov, max_iov);
	r2 = umdev_vq_pop(f->vq, &e, iov, max_iov);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	n = read(p[0], log, sizeof(log) - 1);
	close(p[0]);
	free(iov);

	if (n > 0)
		fprintf(stderr, "(captured) %s", log);
	assert_int_equal(r1, -EIO);
	assert_int_equal(r2, -EIO);
	assert_int_equal(umdev_vq_get_state(f->vq), UMDEV_VQ_BROKEN);
	assert_int_equal(umdev_vq_last_avail_idx(f->vq), last);
	assert_int_equal(umdev_vq_inuse(f->vq), inuse);
	assert_true(n > 0);
	for (ssize_t i = 0; i < n; i++)
		lines += log[i] == '\n';
	assert_int_equal(lines, 1);
	assert_non_null(strstr(log, "test.q0"));
	assert_non_null(strstr(log, what));
	/* Nothing further happens on a broken queue. */
	assert_false(umdev_vq_has_avail(f->vq));
	assert_int_equal(umdev_vq_notify(f->vq), 0);
}

void pop_n(struct fx *f, struct umdev_vq_elem *e, unsigned n)
{
	static struct iovec iov[64][4];

	for (unsigned i = 0; i < n; i++)
		assert_int_equal(umdev_vq_pop(f->vq, &e[i], iov[i % 64], 4), 1);
}

void add_n(struct fx *f, unsigned n)
{
	struct umdev_vqd_buf b = { .addr = BUF_GPA, .len = 8, .write = true };

	for (unsigned i = 0; i < n; i++)
		assert_true(umdev_vqd_add(&f->d, &b, 1, 0) >= 0);
}
