/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for the address-space layer (src/mem). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "umdev/mem.h"

#define MB (1024u * 1024u)

static int make_memfd(size_t size)
{
	int fd = memfd_create("umdev-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	return fd;
}

static int add(umdev_as *as, int fd, uint64_t gpa, uint64_t size, uint64_t uva, uint64_t off,
	       unsigned prot)
{
	struct umdev_mem_region_desc d = {
		.guest_addr = gpa, .size = size, .user_addr = uva,
		.mmap_offset = off, .fd = dup(fd), .prot = prot,
	};
	return umdev_as_add_region(as, &d);
}

static void test_add_overlap_remove(void **state)
{
	int err = 0, fd = make_memfd(4 * MB);
	umdev_as *as = umdev_as_new(&err);

	assert_non_null(as);
	assert_int_equal(add(as, fd, 0x100000, MB, 0x7f0000000000, 0, 3), 0);
	/* overlapping at either end, and inside */
	assert_int_equal(add(as, fd, 0x100000 + MB - 1, MB, 0, 0, 3), -EEXIST);
	assert_int_equal(add(as, fd, 0x100000 - MB + 1, MB, 0, 0, 3), -EEXIST);
	assert_int_equal(add(as, fd, 0x180000, 4096, 0, 0, 3), -EEXIST);
	/* adjacent is fine */
	assert_int_equal(add(as, fd, 0x100000 + MB, MB, 0, MB, 3), 0);
	assert_int_equal(add(as, fd, 0, 0x100000, 0, 2 * MB, 3), 0);
	assert_int_equal(umdev_as_num_regions(as), 3);
	/* bad descriptors */
	assert_int_equal(add(as, fd, 0x10000000, 0, 0, 0, 3), -EINVAL);
	assert_int_equal(add(as, fd, UINT64_MAX - 10, 4096, 0, 0, 3), -EINVAL);
	assert_int_equal(add(as, fd, 0x10000000, 4096, 0, 0, 0), -EINVAL);
	/* removal needs the exact range */
	assert_int_equal(umdev_as_remove_region(as, 0x100000, MB - 1), -ENOENT);
	assert_int_equal(umdev_as_remove_region(as, 0x100000, MB), 0);
	assert_int_equal(umdev_as_remove_region(as, 0x100000, MB), -ENOENT);
	assert_int_equal(umdev_as_num_regions(as), 2);
	umdev_as_clear(as);
	assert_int_equal(umdev_as_num_regions(as), 0);
	umdev_as_free(as);
	close(fd);
}

static void test_translate_bounds(void **state)
{
	int err = 0, fd = make_memfd(2 * MB);
	umdev_as *as = umdev_as_new(&err);
	umdev_as_map *m;
	uint8_t *view, *p;

	assert_int_equal(add(as, fd, 0x200000, MB, 0, 0, 3), 0);
	m = umdev_as_get_map(as);
	/* A second, independent view of the same memory: writes must show through. */
	view = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(view != MAP_FAILED);
	view[0x1234] = 0xab;
	p = umdev_as_map_translate(m, 0x201234, 1, UMDEV_MEM_READ);
	assert_non_null(p);
	assert_int_equal(*p, 0xab);
	assert_true(p != view + 0x1234);
	/* last byte in, one past out, straddling out, before out */
	assert_non_null(umdev_as_map_translate(m, 0x200000 + MB - 1, 1, UMDEV_MEM_READ));
	assert_null(umdev_as_map_translate(m, 0x200000 + MB, 1, UMDEV_MEM_READ));
	assert_null(umdev_as_map_translate(m, 0x200000 + MB - 1, 2, UMDEV_MEM_READ));
	assert_null(umdev_as_map_translate(m, 0x1fffff, 1, UMDEV_MEM_READ));
	assert_null(umdev_as_map_translate(m, 0x200000, UINT64_MAX, UMDEV_MEM_READ));
	assert_null(umdev_as_map_translate(m, UINT64_MAX, 2, UMDEV_MEM_READ));
	umdev_as_map_put(m);
	munmap(view, MB);
	umdev_as_free(as);
	close(fd);
}

static void test_iov_cross_regions(void **state)
{
	int err = 0, fd = make_memfd(2 * MB);
	umdev_as *as = umdev_as_new(&err);
	struct iovec iov[4];
	umdev_as_map *m;
	uint8_t buf[64], out[64];

	/* Two guest-adjacent regions backed by non-adjacent parts of the fd. */
	assert_int_equal(add(as, fd, 0x0, MB, 0, MB, 3), 0);
	assert_int_equal(add(as, fd, MB, MB, 0, 0, 3), 0);
	m = umdev_as_get_map(as);
	assert_int_equal(umdev_as_map_to_iov(m, MB - 16, 32, UMDEV_MEM_WRITE, iov, 4), 2);
	assert_int_equal(iov[0].iov_len, 16);
	assert_int_equal(iov[1].iov_len, 16);
	assert_int_equal(umdev_as_map_to_iov(m, MB - 16, 32, UMDEV_MEM_WRITE, iov, 1), -ENOBUFS);
	assert_int_equal(umdev_as_map_to_iov(m, 2 * MB - 16, 32, UMDEV_MEM_READ, iov, 4), -EFAULT);
	assert_int_equal(umdev_as_map_to_iov(m, 5, 0, UMDEV_MEM_READ, iov, 4), 0);
	assert_int_equal(umdev_as_map_to_iov(m, UINT64_MAX - 1, 4, UMDEV_MEM_READ, iov, 4), -EFAULT);
	/* contiguous translate refuses the straddling range */
	assert_null(umdev_as_map_translate(m, MB - 16, 32, UMDEV_MEM_READ));
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = i;
	assert_int_equal(umdev_as_map_write(m, MB - 32, buf, sizeof(buf)), 0);
	memset(out, 0, sizeof(out));
	assert_int_equal(umdev_as_map_read(m, MB - 32, out, sizeof(out)), 0);
	assert_memory_equal(buf, out, sizeof(buf));
	assert_int_equal(umdev_as_map_read(m, 2 * MB - 8, out, 16), -EFAULT);
	umdev_as_map_put(m);
	umdev_as_free(as);
	close(fd);
}

static void test_uva(void **state)
{
	int err = 0, fd = make_memfd(2 * MB);
	umdev_as *as = umdev_as_new(&err);
	umdev_as_map *m;
	uint64_t gpa = 0;

	assert_int_equal(add(as, fd, 0x0, MB, 0x7f0000000000, 0, 3), 0);
	assert_int_equal(add(as, fd, 0x100000000, MB, 0x7f1000000000, MB, 3), 0);
	m = umdev_as_get_map(as);
	assert_int_equal(umdev_as_map_uva_to_gpa(m, 0x7f1000000010, &gpa), 0);
	assert_int_equal(gpa, 0x100000010);
	assert_int_equal(umdev_as_map_uva_to_gpa(m, 0x7f0000000000 + MB - 1, &gpa), 0);
	assert_int_equal(gpa, MB - 1);
	assert_int_equal(umdev_as_map_uva_to_gpa(m, 0x7f0000000000 + MB, &gpa), -EFAULT);
	umdev_as_map_put(m);
	umdev_as_free(as);
	close(fd);
}

static void test_prot(void **state)
{
	int err = 0, fd = make_memfd(MB);
	umdev_as *as = umdev_as_new(&err);
	struct iovec iov[2];
	umdev_as_map *m;

	assert_int_equal(add(as, fd, 0, MB, 0, 0, UMDEV_MEM_READ), 0);
	m = umdev_as_get_map(as);
	assert_non_null(umdev_as_map_translate(m, 0, 16, UMDEV_MEM_READ));
	assert_null(umdev_as_map_translate(m, 0, 16, UMDEV_MEM_WRITE));
	assert_int_equal(umdev_as_map_to_iov(m, 0, 16, UMDEV_MEM_WRITE, iov, 2), -EFAULT);
	assert_int_equal(umdev_as_map_write(m, 0, "x", 1), -EFAULT);
	umdev_as_map_put(m);
	umdev_as_free(as);
	close(fd);
}

/* A map held by a data-plane thread stays usable after the region is removed. */
static void test_versioned_lifetime(void **state)
{
	int err = 0, fd = make_memfd(MB);
	umdev_as *as = umdev_as_new(&err);
	umdev_as_map *old, *now;
	uint8_t *p;

	assert_int_equal(add(as, fd, 0, MB, 0, 0, 3), 0);
	old = umdev_as_get_map(as);
	p = umdev_as_map_translate(old, 100, 1, UMDEV_MEM_WRITE);
	assert_non_null(p);
	assert_int_equal(umdev_as_remove_region(as, 0, MB), 0);
	now = umdev_as_get_map(as);
	assert_true(umdev_as_map_version(now) > umdev_as_map_version(old));
	assert_null(umdev_as_map_translate(now, 100, 1, UMDEV_MEM_READ));
	*p = 7; /* still mapped: old holds the region */
	assert_int_equal(*(uint8_t *)umdev_as_map_translate(old, 100, 1, UMDEV_MEM_READ), 7);
	umdev_as_map_put(old);
	umdev_as_map_put(now);
	umdev_as_free(as);
	close(fd);
}

static void test_many_regions(void **state)
{
	int err = 0, fd = make_memfd(UMDEV_AS_MAX_REGIONS * 4096ul);
	umdev_as *as = umdev_as_new(&err);
	umdev_as_map *m;
	uint64_t gpa = 0;

	/* Insert in a scrambled order; each region is one page, 2 pages apart. */
	for (unsigned k = 0; k < UMDEV_AS_MAX_REGIONS; k++) {
		unsigned i = (k * 211) % UMDEV_AS_MAX_REGIONS;
		assert_int_equal(add(as, fd, i * 8192ull, 4096, 0x10000000 + i * 8192ull,
				     i * 4096ull, 3), 0);
	}
	assert_int_equal(add(as, fd, 1, 1, 0, 0, 3), -EEXIST);
	assert_int_equal(add(as, fd, 1ull << 40, 4096, 0, 0, 3), -ENOSPC);
	m = umdev_as_get_map(as);
	for (unsigned i = 0; i < UMDEV_AS_MAX_REGIONS; i++) {
		uint32_t *p = umdev_as_map_translate(m, i * 8192ull, 4, UMDEV_MEM_WRITE);
		assert_non_null(p);
		*p = i;
		assert_null(umdev_as_map_translate(m, i * 8192ull + 4096, 1, UMDEV_MEM_READ));
	}
	for (unsigned i = 0; i < UMDEV_AS_MAX_REGIONS; i++) {
		uint32_t v = 0;
		assert_int_equal(umdev_as_map_read(m, i * 8192ull, &v, 4), 0);
		assert_int_equal(v, i);
	}
	assert_int_equal(umdev_as_map_uva_to_gpa(m, 0x10000000 + 5 * 8192ull + 3, &gpa), 0);
	assert_int_equal(gpa, 5 * 8192ull + 3);
	umdev_as_map_put(m);
	umdev_as_free(as);
	close(fd);
}

static void test_unaligned_offset(void **state)
{
	int err = 0, fd = make_memfd(MB);
	umdev_as *as = umdev_as_new(&err);
	umdev_as_map *m;
	uint8_t *view;

	view = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(view != MAP_FAILED);
	view[0x1010] = 0x5a;
	/* An mmap_offset that is not page-aligned must still map the right bytes. */
	assert_int_equal(add(as, fd, 0x4000, 0x1000, 0, 0x1010, 3), 0);
	m = umdev_as_get_map(as);
	assert_int_equal(*(uint8_t *)umdev_as_map_translate(m, 0x4000, 1, UMDEV_MEM_READ), 0x5a);
	umdev_as_map_put(m);
	munmap(view, MB);
	umdev_as_free(as);
	close(fd);
}

/* A region the fd does not fully back would SIGBUS on access: refused up front. */
static void test_region_past_eof(void **state)
{
	int err = 0, fd = make_memfd(MB);
	umdev_as *as = umdev_as_new(&err);

	assert_int_equal(add(as, fd, 0, 2 * MB, 0, 0, 3), -EINVAL);
	assert_int_equal(add(as, fd, 0, MB, 0, 4096, 3), -EINVAL);
	assert_int_equal(add(as, fd, 0, 4096, 0, 1ull << 40, 3), -EINVAL);
	assert_int_equal(add(as, fd, 0, 4096, 0, UINT64_MAX - 100, 3), -EINVAL);
	assert_int_equal(umdev_as_num_regions(as), 0);
	assert_int_equal(add(as, fd, 0, MB - 4096, 0, 4096, 3), 0);
	umdev_as_free(as);
	close(fd);
}

/* Shadow regions: reached only with UMDEV_MEM_SHADOW, found back by host address. */
static void test_shadow(void **state)
{
	int err = 0, fd = make_memfd(MB);
	umdev_as *as = umdev_as_new(&err);
	umdev_as_map *m;
	struct iovec iov[4];
	uint64_t gpa = 0;
	uint8_t *p, byte = 0;

	(void)state;
	assert_non_null(as);
	assert_int_equal(add(as, fd, 0x100000, MB, 0, 0, 3), 0);
	assert_int_equal(umdev_as_add_shadow(as, 0xc0000, 0x40000, UMDEV_MEM_READ), 0);
	assert_int_equal(umdev_as_add_shadow(as, 0xd0000, 0x1000, 3), -EEXIST);
	assert_int_equal(umdev_as_add_shadow(as, 0x300000, 0, 3), -EINVAL);
	assert_int_equal(umdev_as_add_shadow(as, 0x300000, 4096, 0), -EINVAL);
	m = umdev_as_get_map(as);
	assert_true(umdev_as_map_has_shadow(m));
	/* Without the flag it is not there: not for translation, copies or iovecs. */
	assert_null(umdev_as_map_translate(m, 0xc1000, 16, UMDEV_MEM_READ));
	assert_int_equal(umdev_as_map_read(m, 0xc1000, &byte, 1), -EFAULT);
	assert_int_equal(umdev_as_map_to_iov(m, 0xc1000, 16, UMDEV_MEM_READ, iov, 4), -EFAULT);
	/* With it, yes, within its permissions; a range may run on into real memory. */
	p = umdev_as_map_translate(m, 0xc1000, 16, UMDEV_MEM_READ | UMDEV_MEM_SHADOW);
	assert_non_null(p);
	assert_null(umdev_as_map_translate(m, 0xc1000, 16, UMDEV_MEM_WRITE | UMDEV_MEM_SHADOW));
	assert_int_equal(umdev_as_map_to_iov(m, 0xff000, 0x2000, UMDEV_MEM_READ | UMDEV_MEM_SHADOW,
					     iov, 4), 2);
	assert_int_equal(umdev_as_map_shadow_gpa(m, iov[0].iov_base, iov[0].iov_len, &gpa), 1);
	assert_int_equal(gpa, 0xff000);
	assert_int_equal(umdev_as_map_shadow_gpa(m, iov[1].iov_base, iov[1].iov_len, &gpa), 0);
	assert_int_equal(umdev_as_map_shadow_gpa(m, p, 0x40000, &gpa), 0); /* runs past its end */
	umdev_as_map_put(m);
	/* Removed like any region; the map then has none. */
	assert_int_equal(umdev_as_remove_region(as, 0xc0000, 0x40000), 0);
	m = umdev_as_get_map(as);
	assert_false(umdev_as_map_has_shadow(m));
	assert_null(umdev_as_map_translate(m, 0xc1000, 16, UMDEV_MEM_READ | UMDEV_MEM_SHADOW));
	umdev_as_map_put(m);
	umdev_as_free(as);
	close(fd);
}

/*
 * Behind a vIOMMU a client maps one window per page, the file pages in any
 * order: a ring across them gets one contiguous view of the same memory.
 */
static void test_view_across_page_windows(void **state)
{
	const uint64_t gpa = 0xfffe0000;
	int err = 0, fd = make_memfd(8 * 4096);
	umdev_as *as = umdev_as_new(&err);
	umdev_as_view *v = NULL;
	umdev_as_map *m;
	uint8_t *file, *p;

	(void)state;
	/* IOVA page i is file page 7 - i; page 2 is read-only; page 6 is absent. */
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(add(as, fd, gpa + i * 4096, 4096, 0, (7 - i) * 4096,
				     i == 2 ? UMDEV_MEM_READ : 3), 0);
	file = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(file != MAP_FAILED);
	m = umdev_as_get_map(as);
	assert_null(umdev_as_map_translate(m, gpa + 4000, 200, UMDEV_MEM_READ));
	assert_int_equal(umdev_as_map_span(m, gpa + 100, 100, 3), 0);
	if (!umdev_as_views_supported()) {
		/* qemu-user (our arm64 runs): no view, and a range across windows says so. */
		printf("# mremap cannot duplicate a mapping here: views are refused\n");
		assert_int_equal(umdev_as_map_span(m, gpa + 4000, 200, 3), -EOPNOTSUPP);
		assert_null(umdev_as_map_translate_view(m, gpa + 3 * 4096 + 100, 2 * 4096 + 50, 3,
							&v, &err));
		assert_null(v);
		assert_int_equal(err, -EOPNOTSUPP);
		assert_non_null(umdev_as_map_translate_view(m, gpa + 16, 64, 3, &v, &err));
		assert_null(v);
		umdev_as_map_put(m);
		munmap(file, 8 * 4096);
		umdev_as_free(as);
		close(fd);
		return;
	}
	assert_int_equal(umdev_as_map_span(m, gpa + 4000, 200, 3), 1);
	assert_int_equal(umdev_as_map_span(m, gpa + 4000, 2 * 4096, UMDEV_MEM_READ), 1);
	assert_int_equal(umdev_as_map_span(m, gpa + 4000, 2 * 4096, 3), -EACCES);
	assert_int_equal(umdev_as_map_span(m, gpa + 5 * 4096, 4097, UMDEV_MEM_READ), -ENOENT);
	assert_int_equal(umdev_as_map_span(m, gpa - 1, 2, UMDEV_MEM_READ), -ENOENT);
	assert_int_equal(umdev_as_map_span(m, gpa, 0, UMDEV_MEM_READ), -EINVAL);

	/* In one window: the region's own pointer, no view. */
	p = umdev_as_map_translate_view(m, gpa + 16, 64, 3, &v, &err);
	assert_non_null(p);
	assert_null(v);
	assert_ptr_equal(p, umdev_as_map_translate(m, gpa + 16, 64, 3));

	/* Across windows 3, 4 and 5, from mid-page: written through the view, seen in the file. */
	p = umdev_as_map_translate_view(m, gpa + 3 * 4096 + 100, 2 * 4096 + 50, 3, &v, &err);
	assert_non_null(p);
	assert_non_null(v);
	for (unsigned i = 0; i < 2 * 4096 + 50; i++)
		p[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(file[4 * 4096 + 100], 1); /* IOVA page 3 is file page 4 */
	assert_int_equal(file[3 * 4096], (uint8_t)((4096 - 100) * 7 + 1));
	/* IOVA page 5 is file page 2. */
	assert_int_equal(file[2 * 4096 + 49], (uint8_t)((2 * 4096 - 100 + 49) * 7 + 1));
	/* ...and the other way. */
	file[3 * 4096 + 5] = 0x5a;
	assert_int_equal(p[4096 - 100 + 5], 0x5a);
	umdev_as_view_free(v);

	/* Refusals say why. */
	assert_null(umdev_as_map_translate_view(m, gpa + 4096, 2 * 4096, 3, &v, &err));
	assert_null(v);
	assert_int_equal(err, -EACCES);
	umdev_as_map_put(m);

	/* Windows that meet off a page boundary cannot be placed side by side. */
	umdev_as_clear(as);
	assert_int_equal(add(as, fd, 0x10000, 0x800, 0, 0, 3), 0);
	assert_int_equal(add(as, fd, 0x10800, 0x800, 0, 0x4800, 3), 0);
	m = umdev_as_get_map(as);
	assert_int_equal(umdev_as_map_span(m, 0x107f0, 32, 3), -EXDEV);
	assert_null(umdev_as_map_translate_view(m, 0x107f0, 32, 3, &v, &err));
	assert_int_equal(err, -EXDEV);
	umdev_as_map_put(m);
	munmap(file, 8 * 4096);
	umdev_as_free(as);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_overlap_remove),
		cmocka_unit_test(test_translate_bounds),
		cmocka_unit_test(test_iov_cross_regions),
		cmocka_unit_test(test_uva),
		cmocka_unit_test(test_prot),
		cmocka_unit_test(test_versioned_lifetime),
		cmocka_unit_test(test_many_regions),
		cmocka_unit_test(test_unaligned_offset),
		cmocka_unit_test(test_region_past_eof),
		cmocka_unit_test(test_shadow),
		cmocka_unit_test(test_view_across_page_windows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
