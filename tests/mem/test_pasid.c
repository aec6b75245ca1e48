/* SPDX-License-Identifier: BSD-3-Clause */
/* PASID address-space registry: assignment, binding, owner checks on lookup. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "umdev/mem.h"

static int dev_a, dev_b;

static umdev_as *as_with(uint64_t gpa, size_t size, char fill)
{
	int err = 0, fd = memfd_create("umdev-pasid", MFD_CLOEXEC);
	umdev_as *as = umdev_as_new(&err);
	struct umdev_mem_region_desc d = { .guest_addr = gpa, .size = size, .fd = fd,
					   .prot = UMDEV_MEM_READ | UMDEV_MEM_WRITE };
	umdev_as_map *m;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_non_null(as);
	assert_int_equal(umdev_as_add_region(as, &d), 0);
	m = umdev_as_get_map(as);
	memset(umdev_as_map_translate(m, gpa, size, UMDEV_MEM_WRITE), fill, size);
	umdev_as_map_put(m);
	return as;
}

static void test_alloc(void **state)
{
	int err = 0, a, b;
	umdev_pasid_reg *r = umdev_pasid_reg_new(1, &err);

	(void)state;
	assert_non_null(r);
	assert_null(umdev_pasid_reg_new(0, &err));
	assert_int_equal(err, -EINVAL);
	a = umdev_pasid_alloc(r, &dev_a);
	b = umdev_pasid_alloc(r, &dev_b);
	assert_true(a >= 1 && b >= 1 && a != b);
	assert_ptr_equal(umdev_pasid_owner(r, (uint32_t)a), &dev_a);
	assert_null(umdev_pasid_owner(r, 12345));
	assert_int_equal(umdev_pasid_alloc(r, NULL), -EINVAL);
	assert_int_equal(umdev_pasid_free(r, (uint32_t)a, &dev_b), -ENOENT);
	assert_int_equal(umdev_pasid_free(r, (uint32_t)a, &dev_a), 0);
	assert_null(umdev_pasid_owner(r, (uint32_t)a));
	/* A freed PASID is not handed out again at once. */
	assert_int_not_equal(umdev_pasid_alloc(r, &dev_a), a);
	assert_int_equal(umdev_pasid_count(r), 2);
	umdev_pasid_reg_free(r);
}

static void test_exhaust(void **state)
{
	int err = 0;
	umdev_pasid_reg *r = umdev_pasid_reg_new(UMDEV_PASID_LIMIT - 1, &err);

	(void)state;
	assert_non_null(r);
	assert_true(umdev_pasid_alloc(r, &dev_a) > 0);
	assert_true(umdev_pasid_alloc(r, &dev_a) > 0);
	assert_int_equal(umdev_pasid_alloc(r, &dev_a), -ENOSPC);
	umdev_pasid_reg_free(r);
}

static void test_lookup(void **state)
{
	int err = 0, a, b;
	umdev_pasid_reg *r = umdev_pasid_reg_new(1, &err);
	umdev_as *as_a = as_with(0x10000, 4096, 'a'), *as_b = as_with(0x10000, 4096, 'b');
	umdev_as_map *m;
	char c;

	(void)state;
	a = umdev_pasid_alloc(r, &dev_a);
	b = umdev_pasid_alloc(r, &dev_b);
	/* Assigned but without memory yet. */
	assert_null(umdev_pasid_get_map(r, (uint32_t)a, &dev_a, &err));
	assert_int_equal(err, -ENXIO);
	assert_int_equal(umdev_pasid_bind_as(r, (uint32_t)a, &dev_b, as_a), -ENOENT);
	assert_int_equal(umdev_pasid_bind_as(r, (uint32_t)a, &dev_a, as_a), 0);
	assert_int_equal(umdev_pasid_bind_as(r, (uint32_t)b, &dev_b, as_b), 0);
	/* The same address resolves in each PASID's own space. */
	m = umdev_pasid_get_map(r, (uint32_t)a, &dev_a, &err);
	assert_non_null(m);
	assert_int_equal(umdev_as_map_read(m, 0x10000, &c, 1), 0);
	assert_int_equal(c, 'a');
	umdev_as_map_put(m);
	m = umdev_pasid_get_map(r, (uint32_t)b, &dev_b, &err);
	assert_non_null(m);
	assert_int_equal(umdev_as_map_read(m, 0x10000, &c, 1), 0);
	assert_int_equal(c, 'b');
	/* A map taken before an unbind stays usable until put. */
	assert_int_equal(umdev_pasid_bind_as(r, (uint32_t)b, &dev_b, NULL), 0);
	assert_int_equal(umdev_as_map_read(m, 0x10000, &c, 1), 0);
	umdev_as_map_put(m);
	assert_null(umdev_pasid_get_map(r, (uint32_t)b, &dev_b, &err));
	assert_int_equal(err, -ENXIO);
	/* A foreign or unassigned PASID is refused. */
	assert_null(umdev_pasid_get_map(r, (uint32_t)a, &dev_b, &err));
	assert_int_equal(err, -EPERM);
	assert_null(umdev_pasid_get_map(r, 999, &dev_a, &err));
	assert_int_equal(err, -EPERM);
	umdev_pasid_reg_free(r);
	umdev_as_free(as_a);
	umdev_as_free(as_b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc),
		cmocka_unit_test(test_exhaust),
		cmocka_unit_test(test_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
