/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SCSI target media commands: READ CAPACITY, READ/WRITE(6/10/12/16),
 * SYNCHRONIZE CACHE, VERIFY, WRITE SAME, UNMAP; ranges, overruns and
 * write protection.
 */
#include "scsi_harness.h"

#define BLOCKS 2048 /* ram:1M */

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	env_init(e);
	env_add(e, 0, 0, "ram:1M", false);
	env_add(e, 0, 1, "ram:1M", true);
	env_add(e, 0, 2, "ram:64M", false);
	clear_ua(e, 0, 0);
	clear_ua(e, 0, 1);
	clear_ua(e, 0, 2);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	env_fini(*state);
	free(*state);
	return 0;
}

static void cdb16(uint8_t *c, uint8_t op, uint64_t lba, uint32_t n)
{
	memset(c, 0, 16);
	c[0] = op;
	umdev_scsi_put64(c + 2, lba);
	umdev_scsi_put32(c + 10, n);
}

static void cdb10(uint8_t *c, uint8_t op, uint32_t lba, uint16_t n)
{
	memset(c, 0, 10);
	c[0] = op;
	umdev_scsi_put32(c + 2, lba);
	umdev_scsi_put16(c + 7, n);
}

static void test_read_capacity(void **state)
{
	struct env *e = *state;
	uint8_t c10[10] = { SCSI_READ_CAPACITY_10 }, c16[16] = { SCSI_SERVICE_ACTION_IN_16, 0x10 };
	uint8_t b[32];
	struct res r;

	assert_int_equal(run(e, 0, 0, c10, 10, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
	assert_int_equal(umdev_scsi_get32(b), BLOCKS - 1);
	assert_int_equal(umdev_scsi_get32(b + 4), 512);
	assert_int_equal(r.in_xfer, 8);
	c16[13] = 32;
	assert_int_equal(run(e, 0, 0, c16, 16, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
	assert_int_equal(umdev_scsi_get64(b), BLOCKS - 1);
	assert_int_equal(umdev_scsi_get32(b + 8), 512);
	assert_int_equal(b[14] & 0x80, 0x80); /* LBPME: ram can discard */
	assert_int_equal(r.in_xfer, 32);
	c16[1] = 0x11; /* another service action */
	run(e, 0, 0, c16, 16, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void fill(uint8_t *b, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed + i * 7);
}

static void test_rw_all_sizes(void **state)
{
	struct env *e = *state;
	uint8_t c[16], w[4096], rd[4096];
	static const uint8_t ops[4][2] = { { SCSI_WRITE_6, SCSI_READ_6 },
					   { SCSI_WRITE_10, SCSI_READ_10 },
					   { SCSI_WRITE_12, SCSI_READ_12 },
					   { SCSI_WRITE_16, SCSI_READ_16 } };
	struct res r;

	for (unsigned k = 0; k < 4; k++) {
		uint32_t lba = 100 + 10 * k;

		fill(w, sizeof(w), k);
		for (unsigned d = 0; d < 2; d++) {
			uint8_t op = ops[k][d];

			memset(c, 0, sizeof(c));
			c[0] = op;
			if (k == 0) {
				c[1] = lba >> 16;
				umdev_scsi_put16(c + 2, lba);
				c[4] = 8;
			} else if (k == 1) {
				cdb10(c, op, lba, 8);
			} else if (k == 2) {
				umdev_scsi_put32(c + 2, lba);
				umdev_scsi_put32(c + 6, 8);
			} else {
				cdb16(c, op, lba, 8);
			}
			if (!d) {
				assert_int_equal(run(e, 0, 0, c, 16, w, sizeof(w), NULL, 0, &r),
						 SCSI_STATUS_GOOD);
				assert_int_equal(r.out_xfer, 4096);
			} else {
				memset(rd, 0, sizeof(rd));
				assert_int_equal(run(e, 0, 0, c, 16, NULL, 0, rd, sizeof(rd), &r),
						 SCSI_STATUS_GOOD);
				assert_int_equal(r.in_xfer, 4096);
				assert_memory_equal(rd, w, sizeof(w));
			}
		}
	}
	/* READ(6) with length 0 means 256 blocks: a 4K buffer is an overrun. */
	memset(c, 0, sizeof(c));
	c[0] = SCSI_READ_6;
	run(e, 0, 0, c, 6, NULL, 0, rd, sizeof(rd), &r);
	assert_true(r.overrun);
	/* A buffer larger than the transfer: short transfer, the rest untouched. */
	memset(rd, 0xaa, sizeof(rd));
	cdb10(c, SCSI_READ_10, 100, 1);
	run(e, 0, 0, c, 10, NULL, 0, rd, sizeof(rd), &r);
	assert_int_equal(r.in_xfer, 512);
	assert_int_equal(rd[512], 0xaa);
	/* FUA writes work; READ(10) with zero blocks is a no-op. */
	cdb10(c, SCSI_WRITE_10, 0, 1);
	c[1] = 0x08;
	assert_int_equal(run(e, 0, 0, c, 10, w, 512, NULL, 0, &r), SCSI_STATUS_GOOD);
	cdb10(c, SCSI_READ_10, 0, 0);
	assert_int_equal(run(e, 0, 0, c, 10, NULL, 0, rd, sizeof(rd), &r), SCSI_STATUS_GOOD);
	assert_int_equal(r.in_xfer, 0);
}

static void test_rw_bad_fields(void **state)
{
	struct env *e = *state;
	uint8_t c[16], b[4096] = { 0 };
	struct res r;

	cdb16(c, SCSI_READ_16, BLOCKS - 1, 2);
	run(e, 0, 0, c, 16, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	cdb16(c, SCSI_READ_16, UINT64_MAX, 2); /* would wrap */
	run(e, 0, 0, c, 16, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	cdb16(c, SCSI_WRITE_16, BLOCKS, 0);
	assert_int_equal(run(e, 0, 0, c, 16, b, 512, NULL, 0, &r), SCSI_STATUS_GOOD);
	cdb16(c, SCSI_WRITE_16, BLOCKS + 1, 0);
	run(e, 0, 0, c, 16, b, 512, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* More blocks than the buffers hold. */
	cdb10(c, SCSI_WRITE_10, 0, 9);
	run(e, 0, 0, c, 10, b, sizeof(b), NULL, 0, &r);
	assert_true(r.overrun);
	assert_int_equal(r.status, SCSI_STATUS_CHECK_CONDITION);
	cdb10(c, SCSI_READ_10, 0, 1);
	run(e, 0, 0, c, 10, NULL, 0, b, 511, &r);
	assert_true(r.overrun);
	run(e, 0, 0, c, 10, NULL, 0, NULL, 0, &r);
	assert_true(r.overrun);
	/* Protection information is not supported. */
	c[1] = 0x20;
	run(e, 0, 0, c, 10, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* Beyond the maximum transfer length. */
	cdb16(c, SCSI_READ_16, 0, (1u << 16) + 1);
	run(e, 0, 2, c, 16, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* Read-only LU. */
	cdb10(c, SCSI_WRITE_10, 0, 1);
	run(e, 0, 1, c, 10, b, 512, NULL, 0, &r);
	assert_check(&r, SCSI_SK_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	cdb10(c, SCSI_READ_10, 0, 1);
	assert_int_equal(run(e, 0, 1, c, 10, NULL, 0, b, 512, &r), SCSI_STATUS_GOOD);
}

static void test_sync_cache(void **state)
{
	struct env *e = *state;
	uint8_t c[16];
	struct res r;

	cdb10(c, SCSI_SYNCHRONIZE_CACHE_10, 0, 0);
	assert_int_equal(run(e, 0, 0, c, 10, NULL, 0, NULL, 0, &r), SCSI_STATUS_GOOD);
	cdb16(c, SCSI_SYNCHRONIZE_CACHE_16, 10, 10);
	assert_int_equal(run(e, 0, 0, c, 16, NULL, 0, NULL, 0, &r), SCSI_STATUS_GOOD);
	cdb16(c, SCSI_SYNCHRONIZE_CACHE_16, BLOCKS, 1);
	run(e, 0, 0, c, 16, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
}

static void test_verify(void **state)
{
	struct env *e = *state;
	uint8_t c[16], w[1024], one[512];
	struct res r;

	fill(w, sizeof(w), 3);
	cdb10(c, SCSI_WRITE_10, 40, 2);
	assert_int_equal(run(e, 0, 0, c, 10, w, sizeof(w), NULL, 0, &r), SCSI_STATUS_GOOD);
	cdb10(c, SCSI_VERIFY_10, 40, 2);
	assert_int_equal(run(e, 0, 0, c, 10, NULL, 0, NULL, 0, &r), SCSI_STATUS_GOOD);
	c[1] = 0x02; /* BYTCHK 1 */
	assert_int_equal(run(e, 0, 0, c, 10, w, sizeof(w), NULL, 0, &r), SCSI_STATUS_GOOD);
	assert_int_equal(r.out_xfer, 1024);
	w[700] ^= 1;
	run(e, 0, 0, c, 10, w, sizeof(w), NULL, 0, &r);
	assert_check(&r, SCSI_SK_MISCOMPARE, SCSI_ASC_MISCOMPARE_VERIFY);
	run(e, 0, 0, c, 10, w, 1000, NULL, 0, &r);
	assert_true(r.overrun);
	/* BYTCHK 3: one block against each; BYTCHK 2 is reserved. */
	memset(one, 0x5a, sizeof(one));
	cdb10(c, SCSI_WRITE_SAME_10, 60, 4);
	assert_int_equal(run(e, 0, 0, c, 10, one, sizeof(one), NULL, 0, &r), SCSI_STATUS_GOOD);
	cdb16(c, SCSI_VERIFY_16, 60, 4);
	c[1] = 0x06;
	assert_int_equal(run(e, 0, 0, c, 16, one, sizeof(one), NULL, 0, &r), SCSI_STATUS_GOOD);
	cdb16(c, SCSI_VERIFY_16, 59, 4);
	c[1] = 0x06;
	run(e, 0, 0, c, 16, one, sizeof(one), NULL, 0, &r);
	assert_check(&r, SCSI_SK_MISCOMPARE, SCSI_ASC_MISCOMPARE_VERIFY);
	c[1] = 0x04;
	run(e, 0, 0, c, 16, one, sizeof(one), NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	cdb16(c, SCSI_VERIFY_16, BLOCKS, 1);
	run(e, 0, 0, c, 16, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
}

static void read_blocks(struct env *e, unsigned lun, uint64_t lba, uint32_t n, uint8_t *b)
{
	uint8_t c[16];

	cdb16(c, SCSI_READ_16, lba, n);
	assert_int_equal(run(e, 0, lun, c, 16, NULL, 0, b, (size_t)n * 512, NULL),
			 SCSI_STATUS_GOOD);
}

static void test_write_same(void **state)
{
	struct env *e = *state;
	uint8_t c[16], blk[512], b[8 * 512];
	struct res r;

	fill(blk, sizeof(blk), 9);
	cdb10(c, SCSI_WRITE_SAME_10, 200, 8);
	assert_int_equal(run(e, 0, 0, c, 10, blk, sizeof(blk), NULL, 0, &r), SCSI_STATUS_GOOD);
	read_blocks(e, 0, 200, 8, b);
	for (int i = 0; i < 8; i++)
		assert_memory_equal(b + 512 * i, blk, 512);
	/* Zeroes with UNMAP. */
	memset(blk, 0, sizeof(blk));
	cdb16(c, SCSI_WRITE_SAME_16, 202, 2);
	c[1] = 0x08;
	assert_int_equal(run(e, 0, 0, c, 16, blk, sizeof(blk), NULL, 0, &r), SCSI_STATUS_GOOD);
	read_blocks(e, 0, 200, 8, b);
	assert_memory_equal(b + 1024, ((uint8_t[1024]){ 0 }), 1024);
	assert_memory_not_equal(b, ((uint8_t[512]){ 0 }), 512);
	/* NDOB: zeroes without a data-out buffer. */
	cdb16(c, SCSI_WRITE_SAME_16, 200, 1);
	c[1] = 0x01;
	assert_int_equal(run(e, 0, 0, c, 16, NULL, 0, NULL, 0, &r), SCSI_STATUS_GOOD);
	read_blocks(e, 0, 200, 1, b);
	assert_memory_equal(b, ((uint8_t[512]){ 0 }), 512);
	/* Zero blocks (WSNZ), out of range, no data, anchor, read-only. */
	cdb10(c, SCSI_WRITE_SAME_10, 0, 0);
	run(e, 0, 0, c, 10, blk, sizeof(blk), NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	cdb10(c, SCSI_WRITE_SAME_10, BLOCKS - 1, 2);
	run(e, 0, 0, c, 10, blk, sizeof(blk), NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	cdb10(c, SCSI_WRITE_SAME_10, 0, 1);
	run(e, 0, 0, c, 10, blk, 100, NULL, 0, &r);
	assert_true(r.overrun);
	c[1] = 0x10;
	run(e, 0, 0, c, 10, blk, sizeof(blk), NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	c[1] = 0;
	run(e, 0, 1, c, 10, blk, sizeof(blk), NULL, 0, &r);
	assert_check(&r, SCSI_SK_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
}

static void test_write_same_large(void **state)
{
	struct env *e = *state;
	uint8_t c[16], blk[512], b[512];
	uint64_t blocks = (64ull << 20) / 512;

	/* A pattern over the whole 64M LU: 64 chunk writes completing inline. */
	fill(blk, sizeof(blk), 77);
	cdb16(c, SCSI_WRITE_SAME_16, 0, (uint32_t)blocks);
	assert_int_equal(run(e, 0, 2, c, 16, blk, sizeof(blk), NULL, 0, NULL), SCSI_STATUS_GOOD);
	read_blocks(e, 2, blocks - 1, 1, b);
	assert_memory_equal(b, blk, 512);
	read_blocks(e, 2, blocks / 2 + 3, 1, b);
	assert_memory_equal(b, blk, 512);
}

static void test_unmap(void **state)
{
	struct env *e = *state;
	uint8_t c[10] = { SCSI_UNMAP }, p[8 + 3 * 16], w[512], b[512];
	struct res r;

	fill(w, sizeof(w), 1);
	memset(p, 0, sizeof(p));
	umdev_scsi_put16(p, sizeof(p) - 2);
	umdev_scsi_put16(p + 2, 3 * 16);
	umdev_scsi_put64(p + 8, 10);
	umdev_scsi_put32(p + 16, 4);
	umdev_scsi_put64(p + 24, 500); /* empty descriptor: skipped */
	umdev_scsi_put64(p + 40, BLOCKS - 1);
	umdev_scsi_put32(p + 48, 1);
	umdev_scsi_put16(c + 7, sizeof(p));
	assert_int_equal(run(e, 0, 0, c, 10, p, sizeof(p), NULL, 0, &r), SCSI_STATUS_GOOD);
	assert_int_equal(r.out_xfer, sizeof(p));
	/* A descriptor past the end: nothing done, LBA OUT OF RANGE. */
	umdev_scsi_put32(p + 48, 2);
	run(e, 0, 0, c, 10, p, sizeof(p), NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* Descriptor length not a multiple of 16, or beyond the list. */
	umdev_scsi_put32(p + 48, 1);
	umdev_scsi_put16(p + 2, 20);
	run(e, 0, 0, c, 10, p, sizeof(p), NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAM);
	umdev_scsi_put16(p + 2, 64);
	run(e, 0, 0, c, 10, p, sizeof(p), NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAM);
	/* Short list, list longer than the buffer, read-only LU, zero length. */
	umdev_scsi_put16(c + 7, 4);
	run(e, 0, 0, c, 10, p, sizeof(p), NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
	umdev_scsi_put16(c + 7, sizeof(p));
	run(e, 0, 0, c, 10, p, 20, NULL, 0, &r);
	assert_true(r.overrun);
	run(e, 0, 1, c, 10, p, sizeof(p), NULL, 0, &r);
	assert_check(&r, SCSI_SK_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	umdev_scsi_put16(c + 7, 0);
	assert_int_equal(run(e, 0, 0, c, 10, NULL, 0, NULL, 0, &r), SCSI_STATUS_GOOD);
	/* Data outside unmapped ranges survives. */
	{
		uint8_t wc[10];

		cdb10(wc, SCSI_WRITE_10, 20, 1);
		assert_int_equal(run(e, 0, 0, wc, 10, w, 512, NULL, 0, NULL), SCSI_STATUS_GOOD);
		umdev_scsi_put16(c + 7, sizeof(p));
		umdev_scsi_put16(p + 2, 3 * 16);
		assert_int_equal(run(e, 0, 0, c, 10, p, sizeof(p), NULL, 0, &r), SCSI_STATUS_GOOD);
		read_blocks(e, 0, 20, 1, b);
		assert_memory_equal(b, w, 512);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_capacity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rw_all_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rw_bad_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_same, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_same_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
