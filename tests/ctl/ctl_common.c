/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers for the control-socket tests; see ctl_common.h. */
#include "ctl_common.h"

#include <dirent.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

void ctl_wait_listening(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	for (int i = 0; i < 1000; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), err = 0;

		assert_true(fd >= 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			err = errno;
		close(fd);
		if (!err)
			return;
		assert_true(err == ECONNREFUSED || err == ENOENT);
		usleep(5000);
	}
	fail_msg("%s: nothing listens", path);
}

int ctl_send_raw(int fd, const void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

/*
 * Responses are one per line: peek, then take up to the newline only, so
 * nothing of the next response is consumed (and lost) with this one.
 */
struct json_object *ctl_read(int fd, int timeout_ms, bool *eof)
{
	/* Big enough for "list" of a thousand devices (test_ctl_scale.c). */
	const size_t cap = 4u << 20;
	char *line = malloc(cap);
	struct json_object *o = NULL;
	size_t n = 0;

	assert_non_null(line);
	if (eof)
		*eof = false;
	while (n < cap - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *nl;
		ssize_t r;
		size_t take;

		if (poll(&p, 1, timeout_ms) <= 0)
			goto out;
		r = recv(fd, line + n, cap - 1 - n, MSG_PEEK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (eof)
				*eof = true;
			goto out;
		}
		nl = memchr(line + n, '\n', (size_t)r);
		take = nl ? (size_t)(nl - (line + n)) + 1 : (size_t)r;
		if (recv(fd, line + n, take, 0) != (ssize_t)take)
			goto out;
		n += take;
		if (nl) {
			n--;
			break;
		}
	}
	line[n] = 0;
	o = json_tokener_parse(line);
out:
	free(line);
	return o;
}

struct json_object *ctl_request(int fd, const char *method, struct json_object *params)
{
	static int next_id = 1;
	struct json_object *req = json_object_new_object(), *resp, *id;
	const char *text;

	json_object_object_add(req, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(req, "method", json_object_new_string(method));
	if (params)
		json_object_object_add(req, "params", params);
	json_object_object_add(req, "id", json_object_new_int(next_id));
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	assert_int_equal(ctl_send_raw(fd, text, strlen(text)), 0);
	assert_int_equal(ctl_send_raw(fd, "\n", 1), 0);
	json_object_put(req);
	resp = ctl_read(fd, 10000, NULL);
	assert_non_null(resp);
	assert_true(json_object_object_get_ex(resp, "id", &id));
	assert_int_equal(json_object_get_int(id), next_id);
	next_id++;
	return resp;
}

struct json_object *ctl_ok(const char *path, const char *method, struct json_object *params)
{
	int fd = ctl_connect(path);
	struct json_object *resp = ctl_request(fd, method, params), *res, *err;

	close(fd);
	if (json_object_object_get_ex(resp, "error", &err))
		fprintf(stderr, "%s failed: %s\n", method, json_object_to_json_string(err));
	assert_false(json_object_object_get_ex(resp, "error", NULL));
	assert_true(json_object_object_get_ex(resp, "result", &res));
	json_object_get(res);
	json_object_put(resp);
	return res;
}

const char *ctl_err(const char *path, const char *method, struct json_object *params, int code)
{
	static char msg[1024];
	int fd = ctl_connect(path);
	struct json_object *resp = ctl_request(fd, method, params), *err, *c, *m;

	close(fd);
	if (!json_object_object_get_ex(resp, "error", &err))
		fprintf(stderr, "%s succeeded: %s\n", method, json_object_to_json_string(resp));
	assert_true(json_object_object_get_ex(resp, "error", &err));
	assert_true(json_object_object_get_ex(err, "code", &c));
	assert_true(json_object_object_get_ex(err, "message", &m));
	if (json_object_get_int(c) != code)
		fprintf(stderr, "%s: %s\n", method, json_object_to_json_string(err));
	assert_int_equal(json_object_get_int(c), code);
	snprintf(msg, sizeof(msg), "%s", json_object_get_string(m));
	assert_false(json_object_object_get_ex(resp, "result", NULL));
	json_object_put(resp);
	return msg;
}

struct json_object *ctl_obj(const char *k, ...)
{
	struct json_object *o = json_object_new_object();
	va_list ap;

	va_start(ap, k);
	while (k) {
		const char *v = va_arg(ap, const char *);

		json_object_object_add(o, k, json_object_new_string(v));
		k = va_arg(ap, const char *);
	}
	va_end(ap);
	return o;
}

static unsigned count_dir(pid_t pid, const char *sub)
{
	char path[64];
	unsigned n = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, sub);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

unsigned ctl_count_fds(pid_t pid)
{
	return count_dir(pid, "fd");
}

unsigned ctl_settled_fds(pid_t pid)
{
	unsigned last = ctl_count_fds(pid), same = 0;

	/* The daemon closes a finished client's fd when it sees the hang-up: let it. */
	while (same < 5) {
		unsigned n;

		usleep(20000);
		n = ctl_count_fds(pid);
		same = n == last ? same + 1 : 0;
		last = n;
	}
	return last;
}

unsigned ctl_count_threads(pid_t pid)
{
	return count_dir(pid, "task");
}

size_t ctl_ndevices(struct json_object *result)
{
	struct json_object *devs;

	assert_true(json_object_object_get_ex(result, "devices", &devs));
	return json_object_array_length(devs);
}
