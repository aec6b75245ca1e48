/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd's JSON-RPC control socket, over the real socket: every method and
 * its errors, devices created at runtime serving I/O to our vhost-user
 * client, statistics that follow that I/O, removal with and without a
 * client, and failed creates that must leave nothing behind.
 */
#include "ctl_common.h"
#include "../test_wait.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define REGION (16ull << 20)

static struct proto_srv srv;
static char path_buf[8][256];

/* "@DIR@/name" into a small rotating set of buffers. */
static const char *in_dir(const char *name)
{
	static unsigned next;
	char *p = path_buf[next++ % 8];

	snprintf(p, 256, "%s/%s", srv.dir, name);
	return p;
}

static int setup(void **state)
{
	proto_srv_init(&srv, 16ull << 20);
	proto_start_umdevd(&srv, "--rpc", "@SOCK@", "--max-devices", "4", NULL);
	ctl_wait_listening(srv.sock);
	return 0;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	assert_true(alive);
	return 0;
}

static struct json_object *blk_params(const char *id, const char *sock, const char *backend)
{
	return ctl_obj("type", "virtio-blk", "id", id, "socket", sock, "backend", backend, NULL);
}

static struct json_object *dev_at(struct json_object *result, size_t i)
{
	struct json_object *devs;

	assert_true(json_object_object_get_ex(result, "devices", &devs));
	assert_true(i < json_object_array_length(devs));
	return json_object_array_get_idx(devs, i);
}

static const char *str_of(struct json_object *o, const char *k)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, k, &v));
	return json_object_get_string(v);
}

static int64_t int_of(struct json_object *o, const char *k)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, k, &v));
	return json_object_get_int64(v);
}

static bool exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static void test_socket_mode_and_types(void **state)
{
	struct json_object *r, *types, *t, *m;
	struct stat st;

	assert_int_equal(stat(srv.sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	r = ctl_ok(srv.sock, "types", NULL);
	assert_true(json_object_object_get_ex(r, "types", &types));
	assert_true(json_object_array_length(types) >= 1);
	t = NULL;
	for (size_t i = 0; i < json_object_array_length(types); i++)
		if (!strcmp(str_of(json_object_array_get_idx(types, i), "name"), "virtio-blk"))
			t = json_object_array_get_idx(types, i);
	assert_non_null(t);
	assert_string_equal(str_of(t, "transport"), "vhost-user");
	assert_non_null(strstr(str_of(t, "params"), "backend="));
	assert_int_equal(int_of(t, "instances"), 0);
	assert_int_equal(int_of(t, "available"), 4);
	assert_true(json_object_object_get_ex(t, "methods", &m));
	assert_int_equal(int_of(r, "max_devices"), 4);
	json_object_put(r);

	r = ctl_ok(srv.sock, "version", NULL);
	assert_string_equal(str_of(r, "version"), "0.1.0");
	json_object_put(r);
	r = ctl_ok(srv.sock, "list", NULL);
	assert_int_equal(ctl_ndevices(r), 0);
	json_object_put(r);
	/* Methods that take no parameters refuse them rather than ignore a typo. */
	assert_non_null(strstr(ctl_err(srv.sock, "types", ctl_obj("x", "1", NULL),
				       UMDEV_TEST_INVALID_PARAMS),
			       "'x'"));
}

/* Write then read back one block through queue @q; asserts the data. */
static void io_roundtrip(struct umdev_vuc *c, unsigned q, uint64_t sector, uint64_t seed)
{
	uint64_t wb = umdev_vuc_alloc(c, 0, 4096, 4096), rb = umdev_vuc_alloc(c, 0, 4096, 4096);

	assert_true(wb && rb);
	proto_fill(umdev_vuc_gpa_ptr(c, wb, 4096), 4096, seed);
	assert_int_equal(proto_rw(c, q, VIRTIO_BLK_T_OUT, sector, wb, 4096, 1), VIRTIO_BLK_S_OK);
	memset(umdev_vuc_gpa_ptr(c, rb, 4096), 0, 4096);
	assert_int_equal(proto_rw(c, q, VIRTIO_BLK_T_IN, sector, rb, 4096, 1), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(c, rb, 4096), 4096, seed));
}

static struct json_object *dev_stats(const char *id)
{
	struct json_object *r = ctl_ok(srv.sock, "stats", ctl_obj("id", id, NULL)), *st, *copy = NULL;

	assert_int_equal(ctl_ndevices(r), 1);
	assert_true(json_object_object_get_ex(dev_at(r, 0), "stats", &st));
	assert_int_equal(json_object_deep_copy(st, &copy, NULL), 0);
	json_object_put(r);
	return copy;
}

static void test_create_io_stats_remove(void **state)
{
	const char *bsock = in_dir("rt0.sock");
	struct json_object *r, *p, *st, *qs, *q1, *lat;
	char backend[256];
	struct umdev_vuc c;

	snprintf(backend, sizeof(backend), "file:%s", srv.disk);
	p = blk_params("rt0", bsock, backend);
	json_object_object_add(p, "num-queues", json_object_new_int(2));
	r = ctl_ok(srv.sock, "create", p);
	assert_string_equal(str_of(r, "id"), "rt0");
	assert_string_equal(str_of(r, "socket"), bsock);
	assert_string_equal(str_of(r, "transport"), "vhost-user");
	json_object_put(r);
	assert_true(exists(bsock));

	r = ctl_ok(srv.sock, "list", NULL);
	assert_int_equal(ctl_ndevices(r), 1);
	assert_false(json_object_get_boolean(json_object_object_get(dev_at(r, 0), "connected")));
	json_object_put(r);

	/* Nothing started yet: no queue statistics, zero totals. */
	st = dev_stats("rt0");
	assert_int_equal(int_of(st, "requests"), 0);
	assert_int_equal(int_of(st, "num_queues"), 2);
	json_object_put(st);

	proto_connect_blk(&c, bsock, 2, 64, 1, REGION);
	r = ctl_ok(srv.sock, "list", ctl_obj("id", "rt0", NULL));
	assert_true(json_object_get_boolean(json_object_object_get(dev_at(r, 0), "connected")));
	json_object_put(r);

	for (unsigned i = 0; i < 5; i++)
		io_roundtrip(&c, 1, i * 8, i + 1);
	proto_check_qd(&c, 0, 16);

	/* Stats moved with the I/O: 10 on queue 1, 32 on queue 0. */
	st = dev_stats("rt0");
	assert_int_equal(int_of(st, "requests"), 42);
	assert_int_equal(int_of(st, "errors"), 0);
	assert_int_equal(int_of(st, "inflight"), 0);
	/* Data plus the 16-byte headers the guest sent; data plus status bytes back. */
	assert_int_equal(int_of(st, "bytes_from_guest"), 21 * 4096 + 42 * 16);
	assert_int_equal(int_of(st, "bytes_to_guest"), 21 * 4096 + 42);
	assert_true(json_object_object_get_ex(st, "queues", &qs));
	assert_int_equal(json_object_array_length(qs), 2);
	q1 = json_object_array_get_idx(qs, 1);
	assert_int_equal(int_of(q1, "index"), 1);
	assert_int_equal(int_of(q1, "requests"), 10);
	assert_true(json_object_get_boolean(json_object_object_get(q1, "running")));
	assert_int_equal(int_of(json_object_array_get_idx(qs, 0), "requests"), 32);
	/* 16 were submitted with one kick: the queue saw them in flight together. */
	assert_true(int_of(json_object_array_get_idx(qs, 0), "max_inflight") > 1);
	assert_true(json_object_object_get_ex(st, "latency_us", &lat));
	assert_true(json_object_get_double(json_object_object_get(lat, "p50")) > 0.0);
	assert_true(json_object_get_double(json_object_object_get(lat, "p99")) >=
		    json_object_get_double(json_object_object_get(lat, "p50")));
	json_object_put(st);

	/* A failed request (a sector far past the end) counts as an error. */
	{
		struct umdev_vqd_buf d = { .addr = umdev_vuc_alloc(&c, 0, 512, 512), .len = 512,
					   .write = true };

		assert_int_equal(umdev_vblk_io(&c, 0, VIRTIO_BLK_T_IN, 1ull << 40, &d, 1, 5000),
				 VIRTIO_BLK_S_IOERR);
		st = dev_stats("rt0");
		assert_int_equal(int_of(st, "requests"), 43);
		assert_int_equal(int_of(st, "errors"), 1);
		json_object_put(st);
	}

	/* A connected client: refused with a message that says so, device intact. */
	assert_non_null(strstr(ctl_err(srv.sock, "remove", ctl_obj("id", "rt0", NULL),
				       UMDEV_TEST_BUSY),
			       "connected"));
	io_roundtrip(&c, 0, 100, 77);

	/* --force: the connection is dropped after the queues drained, the socket goes. */
	p = ctl_obj("id", "rt0", NULL);
	json_object_object_add(p, "force", json_object_new_boolean(true));
	r = ctl_ok(srv.sock, "remove", p);
	assert_true(json_object_get_boolean(json_object_object_get(r, "removed")));
	json_object_put(r);
	assert_int_equal(umdev_vuc_is_closed(&c, 2000), 1);
	umdev_vuc_close(&c);
	assert_false(exists(bsock));
	r = ctl_ok(srv.sock, "list", NULL);
	assert_int_equal(ctl_ndevices(r), 0);
	json_object_put(r);
	assert_non_null(strstr(ctl_err(srv.sock, "stats", ctl_obj("id", "rt0", NULL),
				       UMDEV_TEST_NO_DEVICE),
			       "rt0"));
	assert_non_null(strstr(ctl_err(srv.sock, "remove", ctl_obj("id", "rt0", NULL),
				       UMDEV_TEST_NO_DEVICE),
			       "no device"));
	/* The same id and socket can be used again. */
	r = ctl_ok(srv.sock, "create", blk_params("rt0", bsock, "ram:1M"));
	json_object_put(r);
	r = ctl_ok(srv.sock, "remove", ctl_obj("id", "rt0", NULL));
	json_object_put(r);
}

static void test_failed_creates_leave_nothing(void **state)
{
	const char *bsock = in_dir("bad.sock"), *okso = in_dir("ok.sock");
	const char *foreign = in_dir("foreign.sock");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct json_object *r, *p;
	unsigned fds, threads;
	int lfd;

	r = ctl_ok(srv.sock, "create", blk_params("ok0", okso, "ram:1M"));
	json_object_put(r);
	fds = ctl_settled_fds(srv.proc.pid);
	threads = ctl_count_threads(srv.proc.pid);

	/* Bad backend path. */
	assert_non_null(strstr(ctl_err(srv.sock, "create",
				       blk_params("bad0", bsock, "file:/nonexistent/img"),
				       UMDEV_TEST_FAILED),
			       "/nonexistent/img"));
	assert_false(exists(bsock));
	/* Duplicate id; socket already used by another device. */
	assert_non_null(strstr(ctl_err(srv.sock, "create", blk_params("ok0", bsock, "ram:1M"),
				       UMDEV_TEST_EXISTS),
			       "already exists"));
	assert_non_null(strstr(ctl_err(srv.sock, "create", blk_params("bad1", okso, "ram:1M"),
				       UMDEV_TEST_EXISTS),
			       "ok0"));
	/* Socket in use by someone else's live server: refused, theirs left alone. */
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, foreign);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_non_null(strstr(ctl_err(srv.sock, "create", blk_params("bad2", foreign, "ram:1M"),
				       UMDEV_TEST_EXISTS),
			       "another server"));
	assert_true(exists(foreign));
	close(lfd);
	/* Bad options: unknown type, unknown option, bad values, missing pieces. */
	p = blk_params("bad3", bsock, "ram:1M");
	json_object_object_add(p, "type", json_object_new_string("floppy"));
	assert_non_null(strstr(ctl_err(srv.sock, "create", p, UMDEV_TEST_INVALID_PARAMS),
			       "unknown device type 'floppy'"));
	p = blk_params("bad3", bsock, "ram:1M");
	json_object_object_add(p, "colour", json_object_new_string("blue"));
	assert_non_null(strstr(ctl_err(srv.sock, "create", p, UMDEV_TEST_INVALID_PARAMS),
			       "unknown option 'colour'"));
	p = blk_params("bad3", bsock, "ram:1M");
	json_object_object_add(p, "num-queues", json_object_new_int(0));
	assert_non_null(strstr(ctl_err(srv.sock, "create", p, UMDEV_TEST_INVALID_PARAMS),
			       "num-queues"));
	p = blk_params("bad3", bsock, "ram:1M");
	json_object_object_add(p, "readonly", json_object_new_double(1.5));
	ctl_err(srv.sock, "create", p, UMDEV_TEST_INVALID_PARAMS);
	assert_non_null(strstr(ctl_err(srv.sock, "create",
				       ctl_obj("type", "virtio-blk", "socket", bsock, "backend",
					       "ram:1M", NULL),
				       UMDEV_TEST_INVALID_PARAMS),
			       "id="));
	/* A path, an id umdevctl would take for an option, one a path would for "..". */
	for (const char *const *bad = (const char *const[]){ "bad/id", "-rf", "..", NULL }; *bad;
	     bad++)
		assert_non_null(strstr(ctl_err(srv.sock, "create",
					       ctl_obj("type", "virtio-blk", "id", *bad, "socket",
						       bsock, "backend", "ram:1M", NULL),
					       UMDEV_TEST_INVALID_PARAMS),
				       "id="));
	assert_non_null(strstr(ctl_err(srv.sock, "create",
				       ctl_obj("type", "virtio-blk", "id", "bad4", "backend",
					       "ram:1M", NULL),
				       UMDEV_TEST_INVALID_PARAMS),
			       "socket="));
	assert_non_null(strstr(ctl_err(srv.sock, "create",
				       ctl_obj("id", "bad4", "socket", bsock, NULL),
				       UMDEV_TEST_INVALID_PARAMS),
			       "type"));
	ctl_err(srv.sock, "create", NULL, UMDEV_TEST_INVALID_PARAMS);
	assert_false(exists(bsock));

	/* Nothing left behind by any of them (hang-ups are seen asynchronously). */
	assert_true(TEST_WAIT_UNTIL(ctl_count_fds(srv.proc.pid) <= fds));
	assert_int_equal(ctl_count_threads(srv.proc.pid), threads);
	r = ctl_ok(srv.sock, "list", NULL);
	assert_int_equal(ctl_ndevices(r), 1);
	json_object_put(r);

	/* The device limit (--max-devices 4). */
	for (unsigned i = 1; i < 4; i++) {
		char id[16];

		snprintf(id, sizeof(id), "ok%u", i);
		r = ctl_ok(srv.sock, "create", blk_params(id, in_dir(id), "ram:1M"));
		json_object_put(r);
	}
	assert_non_null(strstr(ctl_err(srv.sock, "create", blk_params("ok9", bsock, "ram:1M"),
				       UMDEV_TEST_LIMIT),
			       "limit"));
	r = ctl_ok(srv.sock, "types", NULL);
	assert_int_equal(int_of(json_object_array_get_idx(json_object_object_get(r, "types"), 0),
				"available"),
			 0);
	json_object_put(r);
}

static void test_device_method_routing(void **state)
{
	struct json_object *r, *p;

	r = ctl_ok(srv.sock, "create", blk_params("blk0", in_dir("b.sock"), "ram:1M"));
	json_object_put(r);
	/* virtio-blk's call op answers -ENOENT for every method. */
	p = ctl_obj("id", "blk0", "lun", "0:2", "backend", "ram:1M", NULL);
	assert_string_equal(ctl_err(srv.sock, "lun-add", p, UMDEV_TEST_METHOD_NOT_FOUND),
			    "device 'blk0' (virtio-blk) does not support method 'lun-add'");
	p = ctl_obj("id", "blk0", "lun", "0:2", NULL);
	assert_non_null(strstr(ctl_err(srv.sock, "lun-remove", p, UMDEV_TEST_METHOD_NOT_FOUND),
			       "does not support method 'lun-remove'"));
	p = ctl_obj("id", "blk0", "backend", "ram:1M", NULL);
	assert_non_null(strstr(ctl_err(srv.sock, "ns-add", p, UMDEV_TEST_METHOD_NOT_FOUND),
			       "does not support method 'ns-add'"));
	p = ctl_obj("id", "blk0", NULL);
	json_object_object_add(p, "nsid", json_object_new_int(2));
	assert_non_null(strstr(ctl_err(srv.sock, "ns-remove", p, UMDEV_TEST_METHOD_NOT_FOUND),
			       "does not support method 'ns-remove'"));
	/* A device that does not exist; a method with no device; a bad id type. */
	assert_string_equal(ctl_err(srv.sock, "lun-add", ctl_obj("id", "scsi9", NULL),
				    UMDEV_TEST_NO_DEVICE),
			    "no device with id 'scsi9'");
	assert_non_null(strstr(ctl_err(srv.sock, "frobnicate", NULL, UMDEV_TEST_METHOD_NOT_FOUND),
			       "unknown method 'frobnicate'"));
	p = json_object_new_object();
	json_object_object_add(p, "id", json_object_new_int(3));
	ctl_err(srv.sock, "lun-add", p, UMDEV_TEST_INVALID_PARAMS);
	/* Parameters of the daemon's own methods are checked too. */
	p = ctl_obj("id", "blk0", NULL);
	json_object_object_add(p, "force", json_object_new_string("yes"));
	ctl_err(srv.sock, "remove", p, UMDEV_TEST_INVALID_PARAMS);
	ctl_err(srv.sock, "remove", ctl_obj("id", "blk0", "forse", "1", NULL),
		UMDEV_TEST_INVALID_PARAMS);
	ctl_err(srv.sock, "remove", NULL, UMDEV_TEST_INVALID_PARAMS);
	ctl_err(srv.sock, "save", ctl_obj("path", "relative.json", NULL),
		UMDEV_TEST_INVALID_PARAMS);
	ctl_err(srv.sock, "save", ctl_obj("path", "/nonexistent-dir/x.json", NULL),
		UMDEV_TEST_FAILED);
	r = ctl_ok(srv.sock, "list", NULL);
	assert_int_equal(ctl_ndevices(r), 1);
	json_object_put(r);
}

/* lun-* and ns-* reach the real virtio-scsi and NVMe types and come back. */
static void test_real_device_methods(void **state)
{
	struct json_object *r, *p, *luns, *types;
	bool nvme_listed = false;

	r = ctl_ok(srv.sock, "create",
		   ctl_obj("type", "virtio-scsi", "id", "scsi0", "socket", in_dir("scsi0.sock"),
			   "lun", "0:0:ram:1M", NULL));
	json_object_put(r);
	r = ctl_ok(srv.sock, "lun-add",
		   ctl_obj("id", "scsi0", "lun", "0:2", "backend", "ram:2M", NULL));
	json_object_put(r);
	/* Added twice: the type's refusal comes back as an error, not a success. */
	p = ctl_obj("id", "scsi0", "lun", "0:2", "backend", "ram:2M", NULL);
	{
		int fd = ctl_connect(srv.sock);
		struct json_object *resp = ctl_request(fd, "lun-add", p);

		close(fd);
		assert_true(json_object_object_get_ex(resp, "error", NULL));
		json_object_put(resp);
	}
	/* save carries the LUN added at run time (the type's save op). */
	r = ctl_ok(srv.sock, "save", NULL);
	assert_true(json_object_object_get_ex(dev_at(r, 0), "lun", &luns));
	assert_non_null(strstr(json_object_to_json_string(luns), "0:2"));
	json_object_put(r);
	r = ctl_ok(srv.sock, "lun-remove", ctl_obj("id", "scsi0", "lun", "0:2", NULL));
	json_object_put(r);
	assert_non_null(strstr(ctl_err(srv.sock, "lun-remove",
				       ctl_obj("id", "scsi0", "lun", "0:2", NULL),
				       UMDEV_TEST_NO_DEVICE),
			       "scsi0"));
	ctl_err(srv.sock, "lun-add", ctl_obj("id", "scsi0", "lun", "banana", NULL),
		UMDEV_TEST_INVALID_PARAMS);
	/* NVMe's methods are refused by virtio-scsi, and the other way round. */
	ctl_err(srv.sock, "ns-add", ctl_obj("id", "scsi0", "backend", "ram:1M", NULL),
		UMDEV_TEST_METHOD_NOT_FOUND);

	r = ctl_ok(srv.sock, "create",
		   ctl_obj("type", "nvme", "id", "nvme0", "socket", in_dir("nvme0.sock"), "ns",
			   "ram:1M", NULL));
	json_object_put(r);
	r = ctl_ok(srv.sock, "ns-add", ctl_obj("id", "nvme0", "backend", "ram:2M", NULL));
	assert_int_equal(int_of(r, "nsid"), 2);
	json_object_put(r);
	p = ctl_obj("id", "nvme0", NULL);
	json_object_object_add(p, "nsid", json_object_new_int(2));
	r = ctl_ok(srv.sock, "ns-remove", p);
	json_object_put(r);
	p = ctl_obj("id", "nvme0", NULL);
	json_object_object_add(p, "nsid", json_object_new_int(2));
	ctl_err(srv.sock, "ns-remove", p, UMDEV_TEST_NO_DEVICE);
	ctl_err(srv.sock, "lun-add", ctl_obj("id", "nvme0", "lun", "0:1", NULL),
		UMDEV_TEST_METHOD_NOT_FOUND);
	r = ctl_ok(srv.sock, "types", NULL);
	assert_true(json_object_object_get_ex(r, "types", &types));
	for (size_t i = 0; i < json_object_array_length(types); i++) {
		struct json_object *t = json_object_array_get_idx(types, i);

		if (strcmp(str_of(t, "name"), "nvme"))
			continue;
		nvme_listed = true;
		assert_int_equal(int_of(t, "instances"), 1);
		assert_non_null(strstr(json_object_to_json_string(
					       json_object_object_get(t, "methods")),
				       "ns-add"));
	}
	assert_true(nvme_listed);
	json_object_put(r);
}

static void test_save_and_reload(void **state)
{
	const char *cfg = in_dir("saved.json"), *s0 = in_dir("s0.sock"), *s1 = in_dir("s1.sock");
	struct json_object *r, *p, *d1, *v;
	char args_sock[256];
	struct proto_srv srv2;

	p = blk_params("s0", s0, "ram:2M");
	json_object_object_add(p, "readonly", json_object_new_boolean(true));
	r = ctl_ok(srv.sock, "create", p);
	json_object_put(r);
	p = blk_params("s1", s1, "null:4M");
	json_object_object_add(p, "num-queues", json_object_new_int(3));
	r = ctl_ok(srv.sock, "create", p);
	json_object_put(r);

	r = ctl_ok(srv.sock, "save", ctl_obj("path", cfg, NULL));
	assert_int_equal(ctl_ndevices(r), 2);
	assert_string_equal(str_of(r, "path"), cfg);
	/* Creation order, the options as given. */
	assert_string_equal(str_of(dev_at(r, 0), "id"), "s0");
	assert_string_equal(str_of(dev_at(r, 0), "readonly"), "on");
	d1 = dev_at(r, 1);
	assert_string_equal(str_of(d1, "type"), "virtio-blk");
	assert_string_equal(str_of(d1, "num-queues"), "3");
	assert_string_equal(str_of(d1, "backend"), "null:4M");
	json_object_put(r);
	r = ctl_ok(srv.sock, "save", NULL); /* without a path: only the answer */
	assert_false(json_object_object_get_ex(r, "path", &v));
	assert_int_equal(ctl_ndevices(r), 2);
	json_object_put(r);

	/* Free the sockets, then a new daemon reads the file with --config. */
	json_object_put(ctl_ok(srv.sock, "remove", ctl_obj("id", "s0", NULL)));
	json_object_put(ctl_ok(srv.sock, "remove", ctl_obj("id", "s1", NULL)));
	proto_srv_init(&srv2, 0);
	snprintf(args_sock, sizeof(args_sock), "%s", cfg);
	proto_start_umdevd(&srv2, "--rpc", "@SOCK@", "--config", args_sock, NULL);
	ctl_wait_listening(srv2.sock);
	r = ctl_ok(srv2.sock, "list", NULL);
	assert_int_equal(ctl_ndevices(r), 2);
	assert_string_equal(str_of(dev_at(r, 0), "id"), "s0");
	assert_string_equal(str_of(dev_at(r, 0), "socket"), s0);
	assert_string_equal(str_of(dev_at(r, 1), "id"), "s1");
	json_object_put(r);
	r = ctl_ok(srv2.sock, "save", NULL);
	assert_string_equal(str_of(dev_at(r, 1), "num-queues"), "3");
	assert_string_equal(str_of(dev_at(r, 0), "readonly"), "on");
	json_object_put(r);
	assert_true(umdev_proc_alive(&srv2.proc));
	proto_stop(&srv2, false);
	assert_false(exists(s0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_mode_and_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_io_stats_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_creates_leave_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_device_method_routing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_device_methods, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_and_reload, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
