/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers for the control-socket tests: a real umdevd started with
 * `--rpc @SOCK@` (tests/proto/proto_common.h conventions: s->sock is then
 * the control socket), a blocking JSON-RPC client built on json-c, and
 * probes of the daemon's fds and threads. cmocka asserts: call from tests.
 */
#ifndef UMDEV_TESTS_CTL_COMMON_H
#define UMDEV_TESTS_CTL_COMMON_H

#include <json-c/json.h>

#include "../proto/proto_common.h"

/* Error codes as docs/rpc.md documents them (spelled out here on purpose). */
#define UMDEV_TEST_PARSE_ERROR -32700
#define UMDEV_TEST_INVALID_REQUEST -32600
#define UMDEV_TEST_METHOD_NOT_FOUND -32601
#define UMDEV_TEST_INVALID_PARAMS -32602
#define UMDEV_TEST_FAILED -32000
#define UMDEV_TEST_NO_DEVICE -32001
#define UMDEV_TEST_EXISTS -32002
#define UMDEV_TEST_BUSY -32003
#define UMDEV_TEST_LIMIT -32004

/*
 * Wait until the control socket @path accepts connections (up to 5 s):
 * umdevd binds it, and so makes the file that proto_start_umdevd() waits
 * for, a moment before it listen()s. Asserts.
 */
void ctl_wait_listening(const char *path);

/* Connect to the control socket @path; asserts. 5 s send/receive timeouts. */
int ctl_connect(const char *path);

/* Write all of @buf; returns 0 or -errno (the peer may have hung up). */
int ctl_send_raw(int fd, const void *buf, size_t len);

/*
 * Read one JSON text (a response line) within @timeout_ms. NULL on EOF or
 * timeout (*@eof tells which when not NULL).
 */
struct json_object *ctl_read(int fd, int timeout_ms, bool *eof);

/* One request on @fd; @params is consumed (may be NULL). The whole response. */
struct json_object *ctl_request(int fd, const char *method, struct json_object *params);

/* Request on a fresh connection, expecting success: the result (caller puts). */
struct json_object *ctl_ok(const char *path, const char *method, struct json_object *params);

/*
 * Request expecting error @code; returns the message (static buffer,
 * valid until the next call).
 */
const char *ctl_err(const char *path, const char *method, struct json_object *params, int code);

/* Small JSON builders: ctl_obj("k1", "v1", "k2", "v2", NULL), all strings. */
struct json_object *ctl_obj(const char *k, ...);

/* Open fds and threads of process @pid. */
unsigned ctl_count_fds(pid_t pid);
unsigned ctl_count_threads(pid_t pid);
/* The fd count once it has stopped changing (clients just closed are gone). */
unsigned ctl_settled_fds(pid_t pid);

/* The result's "devices" array length (list/stats/save). */
size_t ctl_ndevices(struct json_object *result);

#endif
