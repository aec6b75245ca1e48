/* SPDX-License-Identifier: BSD-3-Clause */
/* iovec helpers: how devices carve headers, data and status out of chains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/iov.h"

static uint8_t a[5], b[3], c[8];
static struct iovec v[3];

static int setup(void **state)
{
	for (unsigned i = 0; i < sizeof(a); i++)
		a[i] = i;
	for (unsigned i = 0; i < sizeof(b); i++)
		b[i] = 10 + i;
	for (unsigned i = 0; i < sizeof(c); i++)
		c[i] = 20 + i;
	v[0] = (struct iovec){ a, sizeof(a) };
	v[1] = (struct iovec){ b, sizeof(b) };
	v[2] = (struct iovec){ c, sizeof(c) };
	return 0;
}

static void test_size_and_byte(void **state)
{
	assert_int_equal(umdev_iov_size(v, 3), 16);
	assert_ptr_equal(umdev_iov_byte(v, 3, 0), &a[0]);
	assert_ptr_equal(umdev_iov_byte(v, 3, 5), &b[0]);
	assert_ptr_equal(umdev_iov_byte(v, 3, 15), &c[7]);
	assert_null(umdev_iov_byte(v, 3, 16));
	assert_null(umdev_iov_byte(v, 0, 0));
}

static void test_copy_across(void **state)
{
	uint8_t out[16], in[6] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5 };

	memset(out, 0xff, sizeof(out));
	/* From byte 3, across all three iovecs, asking for more than there is. */
	assert_int_equal(umdev_iov_to_buf(v, 3, 3, out, sizeof(out)), 13);
	assert_int_equal(out[0], 3);
	assert_int_equal(out[2], 10);
	assert_int_equal(out[5], 20);
	assert_int_equal(out[12], 27);
	assert_int_equal(out[13], 0xff);
	assert_int_equal(umdev_iov_to_buf(v, 3, 99, out, 4), 0);
	/* Writing back spans iovec boundaries the same way. */
	assert_int_equal(umdev_iov_from_buf(v, 3, 4, in, sizeof(in)), 6);
	assert_int_equal(a[3], 3);
	assert_int_equal(a[4], 0xa0);
	assert_int_equal(b[0], 0xa1);
	assert_int_equal(b[2], 0xa3);
	assert_int_equal(c[0], 0xa4);
	assert_int_equal(c[1], 0xa5);
	assert_int_equal(c[2], 22);
}

static void test_slice(void **state)
{
	struct iovec d[3];

	/* Skip a 4-byte "header", keep 10 bytes of "data", leave the rest. */
	assert_int_equal(umdev_iov_slice(v, 3, 4, 10, d, 3), 3);
	assert_ptr_equal(d[0].iov_base, &a[4]);
	assert_int_equal(d[0].iov_len, 1);
	assert_ptr_equal(d[1].iov_base, &b[0]);
	assert_int_equal(d[1].iov_len, 3);
	assert_ptr_equal(d[2].iov_base, &c[0]);
	assert_int_equal(d[2].iov_len, 6);
	/* Too few output entries, or a source too short: refused. */
	assert_int_equal(umdev_iov_slice(v, 3, 4, 10, d, 2), -1);
	assert_int_equal(umdev_iov_slice(v, 3, 4, 13, d, 3), -1);
	assert_int_equal(umdev_iov_slice(v, 3, 16, 1, d, 3), -1);
	/* Exactly to the end, and empty. */
	assert_int_equal(umdev_iov_slice(v, 3, 8, 8, d, 3), 1);
	assert_int_equal(umdev_iov_slice(v, 3, 16, 0, d, 3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_size_and_byte, setup),
		cmocka_unit_test_setup(test_copy_across, setup),
		cmocka_unit_test_setup(test_slice, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
