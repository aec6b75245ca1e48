/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD backends through umdevd's control socket: virtio-blk create, a
 * virtio-scsi LUN and an NVMe namespace on an nbdkit export, shown in list
 * and stats and serving I/O; a disk declared in a config file; creates with a bad URI, an unreachable server
 * or a missing export fail with the reason and leave no fd or thread behind.
 */
#include "ctl_common.h"
#include "../test_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REGION (16ull << 20)

static struct proto_srv srv;
static struct umdev_proc nbdkit;
static char nbd_sock[256], uri[300], uri_named[320], blk_sock[256];

static int setup(void **state)
{
	char log[256];
	/* One export, "disk0"; any other name is refused. */
	char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "--filter=exportname", "-U",
			 nbd_sock, "memory", "size=16M", "exportname=disk0",
			 "exportname-strict=true", NULL };

	proto_srv_init(&srv, 0);
	snprintf(nbd_sock, sizeof(nbd_sock), "%s/nbd.sock", srv.dir);
	snprintf(blk_sock, sizeof(blk_sock), "%s/blk.sock", srv.dir);
	snprintf(log, sizeof(log), "%s/nbdkit.log", srv.dir);
	snprintf(uri, sizeof(uri), "nbd+unix:///disk0?socket=%s", nbd_sock);
	snprintf(uri_named, sizeof(uri_named), "nbd+unix:///nosuch?socket=%s", nbd_sock);
	assert_int_equal(umdev_proc_spawn(&nbdkit, argv, log), 0);
	assert_int_equal(umdev_proc_wait_socket(&nbdkit, nbd_sock, 10000), 0);
	proto_start_umdevd(&srv, "--rpc", "@SOCK@", NULL);
	ctl_wait_listening(srv.sock);
	return 0;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	umdev_proc_kill(&nbdkit);
	assert_true(alive);
	return 0;
}

static void test_nbd_devices(void **state)
{
	struct json_object *r;
	const char *s;
	char lun[400];
	struct umdev_vuc c;
	uint64_t buf;

	r = ctl_ok(srv.sock, "create",
		   ctl_obj("type", "virtio-blk", "id", "nb0", "socket", blk_sock, "backend", uri,
			   NULL));
	json_object_put(r);
	r = ctl_ok(srv.sock, "list", NULL);
	s = json_object_to_json_string(r);
	assert_non_null(strstr(s, "nb0"));
	assert_non_null(strstr(s, "nbd+unix:"));
	json_object_put(r);

	/* I/O through it, then seen in stats. */
	proto_connect_blk(&c, blk_sock, 1, 64, 1, REGION);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	proto_fill(umdev_vuc_gpa_ptr(&c, buf, 4096), 4096, 31);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 8, buf, 4096, 1), VIRTIO_BLK_S_OK);
	memset(umdev_vuc_gpa_ptr(&c, buf, 4096), 0, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 8, buf, 4096, 1), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(&c, buf, 4096), 4096, 31));
	r = ctl_ok(srv.sock, "stats", NULL);
	assert_int_equal(ctl_ndevices(r), 1);
	assert_non_null(strstr(json_object_to_json_string(r), "nb0"));
	json_object_put(r);
	umdev_vuc_close(&c);
	r = ctl_ok(srv.sock, "remove", ctl_obj("id", "nb0", NULL));
	json_object_put(r);

	/* A virtio-scsi LUN and an NVMe namespace on the same export. */
	snprintf(lun, sizeof(lun), "0:0:%s", uri);
	r = ctl_ok(srv.sock, "create",
		   ctl_obj("type", "virtio-scsi", "id", "sc0", "socket", blk_sock, "lun", lun,
			   NULL));
	json_object_put(r);
	r = ctl_ok(srv.sock, "lun-add", ctl_obj("id", "sc0", "lun", "0:1", "backend", uri, NULL));
	json_object_put(r);
	/* Both LUNs, with their URIs, in what save would write. */
	r = ctl_ok(srv.sock, "save", NULL);
	s = json_object_to_json_string(r);
	assert_non_null(strstr(s, "0:1:nbd+unix:"));
	json_object_put(r);
	r = ctl_ok(srv.sock, "remove", ctl_obj("id", "sc0", NULL));
	json_object_put(r);
	r = ctl_ok(srv.sock, "create",
		   ctl_obj("type", "nvme", "id", "nv0", "socket", blk_sock, "ns", "ram:1M", NULL));
	json_object_put(r);
	r = ctl_ok(srv.sock, "ns-add", ctl_obj("id", "nv0", "backend", uri, NULL));
	json_object_put(r);
	r = ctl_ok(srv.sock, "remove", ctl_obj("id", "nv0", NULL));
	json_object_put(r);
}

/* A config file naming an NBD backend (JSON form), read by a second daemon. */
static void test_nbd_config_file(void **state)
{
	struct proto_srv srv2;
	struct umdev_vuc c;
	char conf[256];
	uint64_t buf;
	FILE *f;

	proto_srv_init(&srv2, 0);
	snprintf(conf, sizeof(conf), "%s/umdevd.json", srv2.dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "{\"devices\":[{\"type\":\"virtio-blk\",\"id\":\"cf0\",\"socket\":\"%s\","
		   "\"backend\":\"%s\"}]}\n", srv2.sock, uri);
	fclose(f);
	proto_start_umdevd(&srv2, "--rpc", "none", "--config", conf, NULL);
	proto_connect_blk(&c, srv2.sock, 1, 64, 1, REGION);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	proto_fill(umdev_vuc_gpa_ptr(&c, buf, 4096), 4096, 32);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 16, buf, 4096, 1), VIRTIO_BLK_S_OK);
	memset(umdev_vuc_gpa_ptr(&c, buf, 4096), 0, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 16, buf, 4096, 1), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(&c, buf, 4096), 4096, 32));
	umdev_vuc_close(&c);
	assert_true(umdev_proc_alive(&srv2.proc));
	proto_stop(&srv2, false);
}

static void test_failed_creates_leave_nothing(void **state)
{
	static const struct {
		const char *uri;
		int code;
	} bad[] = {
		{ "nbd:foo", UMDEV_TEST_INVALID_PARAMS },
		{ "nbd://127.0.0.1:1/", UMDEV_TEST_FAILED },
		{ "nbd+unix:///?socket=/nonexistent/x.sock", UMDEV_TEST_FAILED },
		{ "nbd+unix:///", UMDEV_TEST_INVALID_PARAMS },
		{ "nbd://127.0.0.1/?nbd-timeout=banana", UMDEV_TEST_INVALID_PARAMS },
	};
	unsigned fds = ctl_settled_fds(srv.proc.pid), threads = ctl_count_threads(srv.proc.pid);
	struct json_object *r;
	const char *msg;

	/* Unparseable or out-of-range arguments are invalid params; the rest failed creates. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg = ctl_err(srv.sock, "create",
			      ctl_obj("type", "virtio-blk", "id", "bad", "socket", blk_sock,
				      "backend", bad[i].uri, NULL),
			      bad[i].code);
		assert_non_null(strstr(msg, "backend"));
	}
	/* The export's name is wrong: the reason names it. */
	msg = ctl_err(srv.sock, "create",
		      ctl_obj("type", "virtio-blk", "id", "bad", "socket", blk_sock, "backend",
			      uri_named, NULL),
		      UMDEV_TEST_FAILED);
	assert_non_null(strstr(msg, "nosuch"));
	ctl_err(srv.sock, "ns-add", ctl_obj("id", "nope", "backend", uri_named, NULL),
		UMDEV_TEST_NO_DEVICE);
	assert_true(access(blk_sock, F_OK) != 0);
	assert_true(TEST_WAIT_UNTIL(ctl_count_fds(srv.proc.pid) <= fds));
	assert_int_equal(ctl_count_threads(srv.proc.pid), threads);
	r = ctl_ok(srv.sock, "list", NULL);
	assert_int_equal(ctl_ndevices(r), 0);
	json_object_put(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nbd_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nbd_config_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_creates_leave_nothing, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
