/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * accel operations on one descriptor (accel_exec) in an address space of two
 * regions with a hole and four adjacent one-page windows (as a vIOMMU maps
 * a guest buffer): results, completion fields, CRC32C against the RFC 3720
 * (iSCSI) test vectors, buffers spanning windows, and every refusal.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dev/accel/accel.h"
#include "umdev/mem.h"

#define R0 0x10000ull
#define R1 0x40000ull
#define RSZ 0x10000ull

static umdev_as *as;
static umdev_as_map *m;
static uint8_t *r0;

/* Pages of their own memfds, adjacent in the guest: a vIOMMU's page-by-page windows. */
#define PG 0x80000ull
#define NPG 4

static uint8_t *pg[NPG];

static uint8_t *region_sized(uint64_t gpa, uint64_t size, unsigned prot)
{
	int fd = memfd_create("accel-ops", MFD_CLOEXEC);
	struct umdev_mem_region_desc d = { .guest_addr = gpa, .size = size, .fd = fd, .prot = prot };
	umdev_as_map *mm;
	uint8_t *p;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(umdev_as_add_region(as, &d), 0);
	mm = umdev_as_get_map(as);
	p = umdev_as_map_translate(mm, gpa, size, UMDEV_MEM_READ);
	umdev_as_map_put(mm);
	return p;
}

static uint8_t *region(uint64_t gpa, unsigned prot)
{
	return region_sized(gpa, RSZ, prot);
}

static int setup(void **state)
{
	int err = 0;

	(void)state;
	as = umdev_as_new(&err);
	assert_non_null(as);
	r0 = region(R0, UMDEV_MEM_READ | UMDEV_MEM_WRITE);
	(void)region(R1, UMDEV_MEM_READ); /* a read-only DMA window (mapped read-only) */
	for (unsigned i = 0; i < NPG; i++)
		pg[i] = region_sized(PG + i * 4096ull, 4096, UMDEV_MEM_READ | UMDEV_MEM_WRITE);
	m = umdev_as_get_map(as);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	umdev_as_map_put(m);
	umdev_as_free(as);
	return 0;
}

static struct accel_desc desc(uint8_t op, uint64_t src, uint64_t dst, uint32_t size)
{
	return (struct accel_desc){ .opcode = op, .flags = ACCEL_F_COMP, .src = src, .dst = dst,
				    .size = size, .cookie = 0x1234 };
}

static void test_crc32c_vectors(void **state)
{
	uint8_t b[48];

	(void)state;
	memset(b, 0, 32);
	assert_int_equal(accel_crc32c(0, b, 32), 0x8a9136aau);
	memset(b, 0xff, 32);
	assert_int_equal(accel_crc32c(0, b, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	assert_int_equal(accel_crc32c(0, b, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	assert_int_equal(accel_crc32c(0, b, 32), 0x113fdb5cu);
	/* Continuing a CRC equals computing it in one go. */
	assert_int_equal(accel_crc32c(accel_crc32c(0, b, 13), b + 13, 19), 0x113fdb5cu);
}

static void test_ops(void **state)
{
	struct accel_comp c;
	struct accel_desc d;

	(void)state;
	for (unsigned i = 0; i < 4096; i++)
		r0[i] = (uint8_t)(i * 31);
	d = desc(ACCEL_OP_COPY, R0, R0 + 8192, 4096);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_memory_equal(r0, r0 + 8192, 4096);
	assert_int_equal(c.bytes, 4096);
	assert_int_equal(c.cookie, 0x1234);
	/* Overlapping copy behaves as memmove. */
	d = desc(ACCEL_OP_COPY, R0, R0 + 1, 100);
	memcpy(r0 + 20000, r0, 101);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_memory_equal(r0 + 1, r0 + 20000, 100);
	/* Dualcast from a read-only window into two places. */
	memset(r0 + 30000, 0x77, 16);
	memset(r0 + 40000, 0x66, 16);
	d = desc(ACCEL_OP_DUALCAST, R1, R0 + 30000, 16); /* R1 holds zeroes */
	d.src2 = R0 + 40000;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(r0[30005], 0);
	assert_int_equal(r0[40015], 0);
	/* Compare and compare-pattern report the first difference. */
	d = desc(ACCEL_OP_COMPARE, R0 + 30000, R0, 16);
	d.src2 = R0 + 40000;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(c.result, 0);
	r0[40009] ^= 0x10;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(c.result, 1);
	assert_int_equal(c.bytes, 9);
	d = desc(ACCEL_OP_FILL, 0, R0 + 50000, 13);
	d.pattern = 0x1122334455667788ull;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(r0[50000], 0x88);
	assert_int_equal(r0[50012], 0x44);
	d.opcode = ACCEL_OP_COMPARE_PATTERN;
	d.src = R0 + 50000;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(c.result, 0);
	d.size = 14;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(c.result, 1);
	assert_int_equal(c.bytes, 13);
	d = desc(ACCEL_OP_CRC32C, R0 + 50000, 0, 13);
	d.crc_seed = 7;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(c.value, accel_crc32c(7, r0 + 50000, 13));
	d = desc(ACCEL_OP_NOP, 0, 0, 0);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
}

static void test_refusals(void **state)
{
	struct accel_comp c;
	struct accel_desc d;

	(void)state;
	/* Across the hole between the regions, before and after them. */
	d = desc(ACCEL_OP_COPY, R0 + RSZ - 8, R0, 16);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_ADDR);
	assert_int_equal(c.fault_addr, R0 + RSZ - 8);
	d = desc(ACCEL_OP_COPY, R0, R1 + RSZ, 1);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_ADDR);
	d = desc(ACCEL_OP_COPY, ~0ull - 4, R0, 16);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_ADDR);
	/* A read-only window is no destination, for any writing operation. */
	d = desc(ACCEL_OP_COPY, R0, R1, 16);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_ADDR);
	assert_int_equal(c.fault_addr, R1);
	d = desc(ACCEL_OP_FILL, 0, R1, 16);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_ADDR);
	d = desc(ACCEL_OP_DUALCAST, R0, R0 + 100, 16);
	d.src2 = R1;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_ADDR);
	/* Sizes, opcodes, flags. */
	d = desc(ACCEL_OP_COPY, R0, R0 + 100, 0);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_SIZE);
	d.size = ACCEL_MAX_XFER + 1;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_SIZE);
	d = desc(ACCEL_OP_MAX + 1, R0, R0 + 100, 16);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_OPCODE);
	d = desc(ACCEL_OP_COPY, R0, R0 + 100, 16);
	d.flags |= 0x80;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_FLAGS);
}

/* The guest-side bytes [@gpa, +@len) of the paged area, gathered. */
static void pg_read(uint64_t gpa, uint8_t *out, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		uint64_t a = gpa + i - PG;

		out[i] = pg[a / 4096][a % 4096];
	}
}

static void pg_write(uint64_t gpa, const uint8_t *in, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		uint64_t a = gpa + i - PG;

		pg[a / 4096][a % 4096] = in[i];
	}
}

/* Buffers over adjacent windows (vIOMMU): every operation, piece by piece. */
static void test_paged_buffers(void **state)
{
	static uint8_t a[3 * 4096], b[3 * 4096];
	struct accel_comp c;
	struct accel_desc d;

	(void)state;
	for (unsigned i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 7 + 3);
	/* Copy from contiguous memory into three pages and back out. */
	memcpy(r0, a, 6000);
	d = desc(ACCEL_OP_COPY, R0, PG + 100, 6000);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(c.bytes, 6000);
	pg_read(PG + 100, b, 6000);
	assert_memory_equal(a, b, 6000);
	/* Overlapping copy across pages still behaves as memmove. */
	pg_write(PG, a, 3 * 4096);
	d = desc(ACCEL_OP_COPY, PG + 10, PG + 4000, 7000);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	pg_read(PG + 4000, b, 7000);
	assert_memory_equal(a + 10, b, 7000);
	/* CRC over pages equals the CRC of the same bytes in one piece. */
	pg_write(PG, a, 3 * 4096);
	d = desc(ACCEL_OP_CRC32C, PG + 5, 0, 9000);
	d.crc_seed = 11;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(c.value, accel_crc32c(11, a + 5, 9000));
	/* Compare finds a difference in the third page. */
	memcpy(r0, a + 5, 9000);
	d = desc(ACCEL_OP_COMPARE, PG + 5, 0, 9000);
	d.src2 = R0;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(c.result, 0);
	r0[8500] ^= 1;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(c.result, 1);
	assert_int_equal(c.bytes, 8500);
	/* Fill and compare-pattern keep the pattern's phase across pages. */
	d = desc(ACCEL_OP_FILL, 0, PG + 4093, 20);
	d.pattern = 0x0102030405060708ull;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	pg_read(PG + 4093, b, 20);
	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(b[i], (uint8_t)(d.pattern >> (8 * (i % 8))));
	d.opcode = ACCEL_OP_COMPARE_PATTERN;
	d.src = PG + 4093;
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	assert_int_equal(c.result, 0);
	/* Dualcast into two paged destinations. */
	d = desc(ACCEL_OP_DUALCAST, R0, PG + 4000, 200);
	d.src2 = PG + 3 * 4096 - 100;
	memcpy(r0, a, 200);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_SUCCESS);
	pg_read(PG + 4000, b, 100);
	assert_memory_equal(a, b, 100);
	/* Past the last page: refused before anything is written. */
	memset(b, 0xee, 300);
	pg_write(PG + NPG * 4096 - 300, b, 300);
	d = desc(ACCEL_OP_FILL, 0, PG + NPG * 4096 - 300, 301);
	assert_int_equal(accel_exec(&d, m, &c), ACCEL_ST_BAD_ADDR);
	assert_int_equal(c.fault_addr, PG + NPG * 4096 - 300);
	pg_read(PG + NPG * 4096 - 300, a, 300);
	assert_memory_equal(a, b, 300);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_ops),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_paged_buffers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
