/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket as a hostile or clumsy client sees it: JSON-RPC
 * envelope errors, garbage, requests split into single bytes, several in
 * one write, batches, notifications, oversized requests, clients that hang
 * up mid-request or never read, and many clients at once. After each, the
 * daemon must still answer everyone else.
 */
#include "ctl_common.h"
#include "../test_wait.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct proto_srv srv;

static int setup(void **state)
{
	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--rpc", "@SOCK@", NULL);
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

/* The daemon still serves: a fresh client gets a normal answer. */
static void assert_serving(void)
{
	struct json_object *r = ctl_ok(srv.sock, "version", NULL);

	json_object_put(r);
}

static int code_of(struct json_object *resp)
{
	struct json_object *e, *c;

	assert_non_null(resp);
	assert_true(json_object_object_get_ex(resp, "error", &e));
	assert_true(json_object_object_get_ex(e, "code", &c));
	return json_object_get_int(c);
}

/* Send @text on a new connection; returns the one response line. */
static struct json_object *raw_exchange(const char *text, int *fd_out)
{
	int fd = ctl_connect(srv.sock);
	struct json_object *resp;

	assert_int_equal(ctl_send_raw(fd, text, strlen(text)), 0);
	resp = ctl_read(fd, 5000, NULL);
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return resp;
}

static void expect_code(const char *text, int code)
{
	struct json_object *r = raw_exchange(text, NULL);

	assert_int_equal(code_of(r), code);
	json_object_put(r);
}

static void test_envelope_errors(void **state)
{
	struct json_object *r, *id;

	expect_code("[]\n", UMDEV_TEST_INVALID_REQUEST);
	expect_code("42\n", UMDEV_TEST_INVALID_REQUEST);
	expect_code("\"list\"\n", UMDEV_TEST_INVALID_REQUEST);
	expect_code("{\"method\":\"list\",\"id\":1}\n", UMDEV_TEST_INVALID_REQUEST);
	expect_code("{\"jsonrpc\":\"1.0\",\"method\":\"list\",\"id\":1}\n",
		    UMDEV_TEST_INVALID_REQUEST);
	expect_code("{\"jsonrpc\":\"2.0\",\"method\":7,\"id\":1}\n", UMDEV_TEST_INVALID_REQUEST);
	expect_code("{\"jsonrpc\":\"2.0\",\"id\":1}\n", UMDEV_TEST_INVALID_REQUEST);
	expect_code("{\"jsonrpc\":\"2.0\",\"method\":\"list\",\"id\":{\"a\":1}}\n",
		    UMDEV_TEST_INVALID_REQUEST);
	expect_code("{\"jsonrpc\":\"2.0\",\"method\":\"list\",\"params\":[1],\"id\":1}\n",
		    UMDEV_TEST_INVALID_PARAMS);
	expect_code("{\"jsonrpc\":\"2.0\",\"method\":\"list\",\"params\":\"x\",\"id\":1}\n",
		    UMDEV_TEST_INVALID_PARAMS);

	/* The id comes back as it was sent: a string, or null. */
	r = raw_exchange("{\"jsonrpc\":\"2.0\",\"method\":\"list\",\"id\":\"abc\"}\n", NULL);
	assert_true(json_object_object_get_ex(r, "id", &id));
	assert_string_equal(json_object_get_string(id), "abc");
	assert_true(json_object_object_get_ex(r, "result", NULL));
	json_object_put(r);
	r = raw_exchange("{\"jsonrpc\":\"2.0\",\"method\":\"list\",\"params\":null,\"id\":null}\n",
			 NULL);
	assert_true(json_object_object_get_ex(r, "id", &id));
	assert_true(json_object_is_type(id, json_type_null));
	assert_true(json_object_object_get_ex(r, "result", NULL));
	json_object_put(r);
	assert_serving();
}

static void test_garbage_closes_connection(void **state)
{
	static const char *const junk[] = {
		"hello\n",
		"{\"jsonrpc\":\"2.0\",,}\n",
		"}\n",
		"\x01\x02\x03\xff\xfe\n",
		"{\"a\":\"\xff\xfe\"} x\n",
	};
	bool eof;

	for (unsigned i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		int fd;
		struct json_object *r = raw_exchange(junk[i], &fd);

		/* A parse error (or, for a NUL, an invalid request), then the daemon hangs up. */
		if (code_of(r) != UMDEV_TEST_PARSE_ERROR) {
			json_object_put(r);
			r = ctl_read(fd, 5000, &eof);
			if (r)
				assert_int_equal(code_of(r), UMDEV_TEST_PARSE_ERROR);
		}
		json_object_put(r);
		assert_null(ctl_read(fd, 5000, &eof));
		assert_true(eof);
		close(fd);
		assert_serving();
	}
}

static void test_split_and_joined_requests(void **state)
{
	const char *req = "{\"jsonrpc\": \"2.0\", \"method\": \"version\", \"id\": 11}\n";
	int fd = ctl_connect(srv.sock), other;
	struct json_object *r, *id;

	/* One byte at a time, with another client served in between. */
	for (size_t i = 0; i < strlen(req); i++) {
		assert_int_equal(ctl_send_raw(fd, req + i, 1), 0);
		if (i == 10) {
			other = ctl_connect(srv.sock);
			r = ctl_request(other, "list", NULL);
			assert_true(json_object_object_get_ex(r, "result", NULL));
			json_object_put(r);
			close(other);
		}
	}
	r = ctl_read(fd, 5000, NULL);
	assert_true(json_object_object_get_ex(r, "id", &id));
	assert_int_equal(json_object_get_int(id), 11);
	assert_true(json_object_object_get_ex(r, "result", NULL));
	json_object_put(r);

	/* Three requests in one write, no separators: three answers, in order. */
	assert_int_equal(ctl_send_raw(fd,
				      "{\"jsonrpc\":\"2.0\",\"method\":\"list\",\"id\":1}"
				      "{\"jsonrpc\":\"2.0\",\"method\":\"types\",\"id\":2}  "
				      "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":3}\n",
				      strlen("{\"jsonrpc\":\"2.0\",\"method\":\"list\",\"id\":1}"
					     "{\"jsonrpc\":\"2.0\",\"method\":\"types\",\"id\":2}  "
					     "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":3}\n")),
			 0);
	for (int i = 1; i <= 3; i++) {
		r = ctl_read(fd, 5000, NULL);
		assert_non_null(r);
		assert_true(json_object_object_get_ex(r, "id", &id));
		assert_int_equal(json_object_get_int(id), i);
		if (i == 3)
			assert_int_equal(code_of(r), UMDEV_TEST_METHOD_NOT_FOUND);
		json_object_put(r);
	}
	close(fd);
}

static void test_batch_and_notifications(void **state)
{
	char create[512], batch[1024];
	struct json_object *r, *id;
	int fd = ctl_connect(srv.sock);

	/* A notification is carried out but not answered. */
	snprintf(create, sizeof(create),
		 "{\"jsonrpc\":\"2.0\",\"method\":\"create\",\"params\":{\"type\":\"virtio-blk\","
		 "\"id\":\"n0\",\"socket\":\"%s/n0.sock\",\"backend\":\"ram:1M\"}}\n",
		 srv.dir);
	assert_int_equal(ctl_send_raw(fd, create, strlen(create)), 0);
	r = ctl_request(fd, "list", NULL);
	assert_int_equal(ctl_ndevices(json_object_object_get(r, "result")), 1);
	json_object_put(r);

	/* A batch: answers for the requests with ids only, in one array. */
	snprintf(batch, sizeof(batch),
		 "[{\"jsonrpc\":\"2.0\",\"method\":\"list\",\"id\":\"a\"},"
		 "{\"jsonrpc\":\"2.0\",\"method\":\"version\"},"
		 "{\"jsonrpc\":\"2.0\",\"method\":\"remove\",\"params\":{\"id\":\"zz\"},\"id\":\"b\"},"
		 "17]\n");
	assert_int_equal(ctl_send_raw(fd, batch, strlen(batch)), 0);
	r = ctl_read(fd, 5000, NULL);
	assert_true(json_object_is_type(r, json_type_array));
	assert_int_equal(json_object_array_length(r), 3);
	assert_true(json_object_object_get_ex(json_object_array_get_idx(r, 0), "id", &id));
	assert_string_equal(json_object_get_string(id), "a");
	assert_int_equal(code_of(json_object_array_get_idx(r, 1)), UMDEV_TEST_NO_DEVICE);
	assert_int_equal(code_of(json_object_array_get_idx(r, 2)), UMDEV_TEST_INVALID_REQUEST);
	json_object_put(r);

	/* A batch of notifications only: no answer at all, the next request is answered. */
	{
		const char *nb = "[{\"jsonrpc\":\"2.0\",\"method\":\"list\"}]\n";

		assert_int_equal(ctl_send_raw(fd, nb, strlen(nb)), 0);
	}
	r = ctl_request(fd, "version", NULL);
	assert_true(json_object_object_get_ex(r, "result", NULL));
	json_object_put(r);
	close(fd);
}

static void test_oversized_request(void **state)
{
	size_t len = 400 << 10;
	char *big = malloc(len + 64);
	struct json_object *r;
	bool eof = false;
	int fd = ctl_connect(srv.sock);

	assert_non_null(big);
	/* An endless string: the daemon gives up at its cap, not at our end. */
	strcpy(big, "{\"jsonrpc\":\"2.0\",\"method\":\"list\",\"id\":1,\"x\":\"");
	memset(big + strlen(big), 'a', len - strlen(big));
	(void)ctl_send_raw(fd, big, len); /* may fail once the daemon hangs up */
	r = ctl_read(fd, 5000, &eof);
	assert_int_equal(code_of(r), UMDEV_TEST_INVALID_REQUEST);
	json_object_put(r);
	assert_null(ctl_read(fd, 5000, &eof));
	assert_true(eof);
	close(fd);
	free(big);
	assert_serving();
}

static void test_disconnects_and_many_clients(void **state)
{
	const char *half = "{\"jsonrpc\":\"2.0\",\"method\":\"cre";
	int fds[40], nf = 0, refused = 0;
	unsigned base = ctl_count_fds(srv.proc.pid);
	struct json_object *r;

	/* Hang up mid-request, a dozen times; and one that never finishes stays. */
	for (int i = 0; i < 12; i++) {
		int fd = ctl_connect(srv.sock);

		assert_int_equal(ctl_send_raw(fd, half, strlen(half)), 0);
		close(fd);
	}
	fds[nf++] = ctl_connect(srv.sock);
	assert_int_equal(ctl_send_raw(fds[0], half, strlen(half)), 0);
	assert_serving();

	/* A client that sends requests and never reads does not stall anyone. */
	fds[nf] = ctl_connect(srv.sock);
	for (int i = 0; i < 200; i++) {
		const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"types\",\"id\":1}\n";

		if (ctl_send_raw(fds[nf], req, strlen(req)) < 0)
			break;
	}
	nf++;
	assert_serving();
	/* Let the daemon see every hang-up above before counting places: our two remain. */
	assert_true(TEST_WAIT_UNTIL(ctl_count_fds(srv.proc.pid) <= base + 2));

	/* Many at once: up to the limit they are served, beyond it told so. */
	while (nf < 40)
		fds[nf++] = ctl_connect(srv.sock);
	for (int i = 2; i < nf; i++) {
		struct json_object *resp;
		bool eof;

		const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":5}\n";

		if (ctl_send_raw(fds[i], req, strlen(req)) < 0) {
			refused++;
			continue;
		}
		resp = ctl_read(fds[i], 5000, &eof);
		assert_non_null(resp);
		if (json_object_object_get_ex(resp, "error", NULL))
			refused++;
		json_object_put(resp);
	}
	/* 32 clients at most: the two idle ones plus 30 of these. */
	assert_int_equal(refused, 40 - 32);
	for (int i = 0; i < nf; i++)
		close(fds[i]);
	/* Closed clients free their places. */
	for (int i = 0; i < 50; i++) {
		r = ctl_ok(srv.sock, "list", NULL);
		json_object_put(r);
	}
}

/* Clients in several processes at once, each creating and removing its devices. */
static void test_concurrent_clients(void **state)
{
	pid_t kids[4];

	for (int k = 0; k < 4; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			int bad = 0;

			for (int i = 0; i < 15 && !bad; i++) {
				char id[32], sock[300], req[800];
				int fd = ctl_connect(srv.sock);
				struct json_object *r;

				snprintf(id, sizeof(id), "c%d-%d", k, i);
				snprintf(sock, sizeof(sock), "%s/%s.sock", srv.dir, id);
				snprintf(req, sizeof(req),
					 "{\"jsonrpc\":\"2.0\",\"method\":\"create\",\"params\":"
					 "{\"type\":\"virtio-blk\",\"id\":\"%s\",\"socket\":\"%s\","
					 "\"backend\":\"ram:1M\"},\"id\":1}\n"
					 "{\"jsonrpc\":\"2.0\",\"method\":\"remove\",\"params\":"
					 "{\"id\":\"%s\"},\"id\":2}\n",
					 id, sock, id);
				/* Sent in two pieces, so requests of the others interleave. */
				bad |= ctl_send_raw(fd, req, 30) < 0;
				usleep(1000);
				bad |= ctl_send_raw(fd, req + 30, strlen(req) - 30) < 0;
				for (int n = 0; n < 2 && !bad; n++) {
					r = ctl_read(fd, 10000, NULL);
					bad |= !r || !json_object_object_get_ex(r, "result", NULL);
					json_object_put(r);
				}
				close(fd);
			}
			_exit(bad);
		}
	}
	for (int k = 0; k < 4; k++) {
		int st;

		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	{
		struct json_object *r = ctl_ok(srv.sock, "list", NULL);

		assert_int_equal(ctl_ndevices(r), 0);
		json_object_put(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_envelope_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_closes_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_and_joined_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_and_notifications, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnects_and_many_clients, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_clients, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
