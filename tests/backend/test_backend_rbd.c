/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The RBD backend without a cluster: malformed specs are refused before any
 * connection is tried, and a configuration file that does not exist fails
 * at once. (Everything that needs a cluster is in tests/proto/
 * test_umdevd_rbd.c, run by tests/backend/rbd-tests.sh.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "umdev/backend.h"

static void test_bad_specs(void **state)
{
	static const char *const bad[] = {
		"rbd:pool",            /* no image */
		"rbd:/img",            /* no pool */
		"rbd:pool/",           /* empty image */
		"rbd:pool/ns/img",     /* namespaces are not supported */
		"rbd:pool/img@",       /* empty snapshot */
		"rbd:pool/img:conf",   /* key without value */
		"rbd:pool/img:conf=",  /* empty value */
		"rbd:pool/img:bogus=1", /* unknown key */
		"rbd:pool/img:id=a:id=b", /* given twice */
		"rbd:pool/img@s:snap=t", /* snapshot twice */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = 0;

		assert_null(umdev_bdev_open(bad[i], false, &err));
		assert_int_equal(err, -EINVAL);
	}
}

static void test_missing_conf(void **state)
{
	int err = 0;

	assert_null(umdev_bdev_open("rbd:pool/img:conf=/nonexistent/ceph.conf", false, &err));
	assert_int_equal(err, -ENOENT);
	assert_null(umdev_bdev_open("rbd:pool/img@snap:conf=/nonexistent/ceph.conf:id=u", true,
				    &err));
	assert_int_equal(err, -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_missing_conf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
