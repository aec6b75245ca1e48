/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the control plane's pure parts: latency percentiles from
 * the runner's log2 histogram, device options to and from JSON (config
 * files, create, save), the default control socket path, and the method
 * dispatcher called directly on a daemon with no socket.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "ctl/ctl_internal.h"
#include "umdev/virtio.h"

static void test_percentiles(void **state)
{
	uint64_t lat[UMDEV_VDEV_LAT_BUCKETS] = { 0 };
	uint64_t p50, p90, p99;

	assert_int_equal(umdev_vdev_lat_percentile(lat, 50), 0);
	/* All samples in [1024, 2048) ns: every percentile lies in there. */
	lat[10] = 100;
	for (unsigned p = 1; p <= 100; p++) {
		uint64_t v = umdev_vdev_lat_percentile(lat, p);

		assert_true(v >= 1024 && v <= 2048);
	}
	/* 90 fast (~1 us), 10 slow (~1 ms): p50 fast, p99 slow, and ordered. */
	lat[20] = 10;
	lat[10] = 90;
	p50 = umdev_vdev_lat_percentile(lat, 50);
	p90 = umdev_vdev_lat_percentile(lat, 90);
	p99 = umdev_vdev_lat_percentile(lat, 99);
	assert_true(p50 >= 1024 && p50 < 2048);
	assert_true(p90 >= 1024 && p90 <= 2048);
	assert_true(p99 >= (1u << 20) && p99 <= (2u << 20));
	assert_true(p50 <= p90 && p90 <= p99);
	/* Out of range asks are clamped, never read past the histogram. */
	assert_int_equal(umdev_vdev_lat_percentile(lat, 1000), umdev_vdev_lat_percentile(lat, 100));
	memset(lat, 0, sizeof(lat));
	lat[UMDEV_VDEV_LAT_BUCKETS - 1] = 1;
	assert_true(umdev_vdev_lat_percentile(lat, 99) >= 1ull << (UMDEV_VDEV_LAT_BUCKETS - 1));
	lat[0] = 1000;
	assert_true(umdev_vdev_lat_percentile(lat, 50) <= 2);
}

static void test_kv_json(void **state)
{
	struct json_object *o = json_tokener_parse(
		"{\"type\":\"virtio-scsi\",\"id\":\"s0\",\"num-queues\":4,\"readonly\":true,"
		"\"lun\":[\"0:0:file:/a\",\"0:1:ram:1G\"],\"socket\":\"/x.sock\"}");
	struct json_object *back, *v;
	struct umdev_kv kv;
	char msg[256];

	assert_int_equal(umdev_kv_from_json(o, &kv, msg, sizeof(msg)), 0);
	assert_string_equal(kv.type, "virtio-scsi");
	assert_string_equal(umdev_kv_get(&kv, "num-queues"), "4");
	assert_string_equal(umdev_kv_get(&kv, "readonly"), "on");
	/* A list becomes the key repeated, in order. */
	assert_int_equal(kv.n, 6);
	assert_string_equal(kv.key[3], "lun");
	assert_string_equal(kv.val[3], "0:0:file:/a");
	assert_string_equal(kv.key[4], "lun");
	assert_string_equal(kv.val[4], "0:1:ram:1G");
	/* And back: repeated keys group into a list again. */
	back = umdev_kv_to_json(&kv);
	assert_non_null(back);
	assert_true(json_object_object_get_ex(back, "lun", &v));
	assert_true(json_object_is_type(v, json_type_array));
	assert_int_equal(json_object_array_length(v), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 1)), "0:1:ram:1G");
	assert_string_equal(json_object_get_string(json_object_object_get(back, "type")),
			    "virtio-scsi");
	json_object_put(back);
	umdev_kv_free(&kv);
	json_object_put(o);

	/* What a config or a create may not hold. */
	static const char *const bad[] = {
		"{\"id\":\"x\"}",
		"{\"type\":3}",
		"[1]",
		"{\"type\":\"virtio-blk\",\"x\":{\"a\":1}}",
		"{\"type\":\"virtio-blk\",\"x\":[]}",
		"{\"type\":\"virtio-blk\",\"x\":[[\"a\"]]}",
		"{\"type\":\"virtio-blk\",\"x\":1.5}",
		"{\"type\":\"virtio-blk\",\"id\":\"a\",\"id\":\"b\",\"socket\":\"1\",\"socket\":[\"2\",\"3\"]}",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = json_tokener_parse(bad[i]);
		assert_non_null(o);
		msg[0] = 0;
		assert_int_equal(umdev_kv_from_json(o, &kv, msg, sizeof(msg)), -EINVAL);
		assert_true(msg[0] != 0);
		json_object_put(o);
	}
}

static void test_default_path(void **state)
{
	char buf[64], big[300];
	char *old = getenv("XDG_RUNTIME_DIR");

	old = old ? strdup(old) : NULL;
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	assert_int_equal(umdev_rpc_default_path(buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/run/user/1000/umdev/umdevd.sock");
	setenv("XDG_RUNTIME_DIR", "", 1);
	assert_int_equal(umdev_rpc_default_path(buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/run/umdev/umdevd.sock");
	unsetenv("XDG_RUNTIME_DIR");
	assert_int_equal(umdev_rpc_default_path(buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/run/umdev/umdevd.sock");
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = 0;
	setenv("XDG_RUNTIME_DIR", big, 1);
	assert_int_equal(umdev_rpc_default_path(buf, sizeof(buf)), -ENAMETOOLONG);
	if (old)
		setenv("XDG_RUNTIME_DIR", old, 1);
	else
		unsetenv("XDG_RUNTIME_DIR");
	free(old);
}

static void test_dispatch_in_process(void **state)
{
	struct umdev_daemon_opts o = { .dp_threads = 1, .max_devices = 2 };
	struct umdev_rpc_error e = { 0 };
	struct json_object *r, *p;
	int err = 0;
	umdev_daemon *d = umdev_daemon_new(&o, &err);

	assert_non_null(d);
	r = umdev_rpc_dispatch(d, "list", NULL, &e);
	assert_non_null(r);
	json_object_put(r);
	p = json_tokener_parse("{\"type\":\"virtio-blk\",\"id\":\"u0\","
			       "\"socket\":\"/tmp/umdev-unit-ctl-u0.sock\",\"backend\":\"null:1M\"}");
	r = umdev_rpc_dispatch(d, "create", p, &e);
	json_object_put(p);
	assert_non_null(r);
	json_object_put(r);
	assert_int_equal(umdev_daemon_num_devices(d), 1);
	r = umdev_rpc_dispatch(d, "stats", NULL, &e);
	assert_non_null(r);
	json_object_put(r);
	/* A device method with params that are not what it takes. */
	p = json_tokener_parse("{\"id\":\"u0\"}");
	assert_null(umdev_rpc_dispatch(d, "lun-add", p, &e));
	assert_int_equal(e.code, UMDEV_RPC_METHOD_NOT_FOUND);
	json_object_put(p);
	p = json_tokener_parse("{\"id\":\"u0\"}");
	r = umdev_rpc_dispatch(d, "remove", p, &e);
	json_object_put(p);
	assert_non_null(r);
	json_object_put(r);
	assert_int_equal(umdev_daemon_num_devices(d), 0);
	umdev_daemon_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_kv_json),
		cmocka_unit_test(test_default_path),
		cmocka_unit_test(test_dispatch_in_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
