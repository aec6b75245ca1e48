/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The JSON-RPC 2.0 control socket (docs/rpc.md), on the control loop.
 *
 * Concepts
 * - A UNIX stream socket, mode 0600. A client writes JSON-RPC requests (or
 *   batches), one JSON text after another; umdevctl puts each on its own
 *   line. Every response is one line of JSON.
 * - The control loop also serves every vhost-user connection, so nothing
 *   here may block it: sockets are non-blocking, a request is parsed
 *   incrementally as bytes arrive (json-c's tokener keeps the state between
 *   reads), and every buffer has a cap. A client that sends something that
 *   is not JSON gets a parse error and is disconnected (the stream cannot be
 *   resynchronised); one that sends too much, or does not read its answers,
 *   is dropped. Nothing a client does stops the daemon serving others.
 * - Requests run one at a time on the control loop, so two clients never
 *   see a half-made device.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctl_internal.h"
#include "umdev/log.h"
#include "util/sock.h"

#define RPC_MAX_CLIENTS 32
#define RPC_MAX_REQUEST (256u << 10) /* one JSON text, batches included */
#define RPC_MAX_BATCH 64
#define RPC_MAX_DEPTH 16
#define RPC_OUT_HIGH (256u << 10) /* stop reading requests above this backlog */
#define RPC_OUT_MAX (16u << 20) /* drop a client that lets this much pile up */
#define RPC_READ_CHUNK 4096
#define RPC_READ_BUDGET 16 /* chunks per wake-up, so one client cannot hog the loop */

struct rpc_conn {
	struct umdev_rpc *r;
	struct rpc_conn *next;
	int fd;
	unsigned num; /* for logs */
	struct json_tokener *tok;
	size_t req_bytes; /* bytes of the JSON text being parsed */
	char *out; /* responses not yet written */
	size_t out_len, out_off, out_cap;
	uint32_t events; /* what the loop watches */
	bool eof; /* the client shut down its side */
	bool closing; /* close once the output is flushed */
	bool drop; /* close now */
};

struct umdev_rpc {
	umdev_daemon *d;
	umdev_loop *ctl;
	int listen_fd;
	char *path; /* socket file we created, removed at the end; NULL if inherited */
	dev_t dev;
	ino_t ino;
	struct rpc_conn *conns;
	unsigned nconns;
	unsigned next_num;
};

static void conn_free(struct rpc_conn *c)
{
	struct umdev_rpc *r = c->r;

	for (struct rpc_conn **pp = &r->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	r->nconns--;
	umdev_loop_del_fd(r->ctl, c->fd);
	close(c->fd);
	if (c->tok)
		json_tokener_free(c->tok);
	free(c->out);
	free(c);
}

static void conn_watch(struct rpc_conn *c)
{
	uint32_t ev = 0;

	if (!c->eof && !c->closing && c->out_len - c->out_off < RPC_OUT_HIGH)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (c->out_len > c->out_off)
		ev |= EPOLLOUT;
	if (ev == c->events)
		return;
	if (umdev_loop_mod_fd(c->r->ctl, c->fd, ev) < 0)
		c->drop = true;
	else
		c->events = ev;
}

static void conn_flush(struct rpc_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->drop = true; /* the client went away; nothing to tell it */
			break;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
}

static void conn_send(struct rpc_conn *c, struct json_object *msg)
{
	size_t len;
	const char *s = json_object_to_json_string_length(
		msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	if (c->drop)
		return;
	if (!s || c->out_len + len + 1 > RPC_OUT_MAX) {
		umdev_warn("rpc client %u: does not read its answers; dropping it", c->num);
		c->drop = true;
		return;
	}
	if (c->out_len + len + 1 > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		while (cap < c->out_len + len + 1)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			c->drop = true;
			return;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	conn_flush(c);
}

static struct json_object *error_response(struct json_object *id, int code, int err,
					  const char *msg)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	if (err) {
		struct json_object *data = json_object_new_object();

		json_object_object_add(data, "errno", json_object_new_int(err));
		json_object_object_add(data, "strerror", json_object_new_string(strerror(err)));
		json_object_object_add(e, "data", data);
	}
	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "error", e);
	json_object_object_add(o, "id", json_object_get(id));
	return o;
}

static bool valid_id(struct json_object *id)
{
	return !id || json_object_is_type(id, json_type_string) ||
	       json_object_is_type(id, json_type_int) || json_object_is_type(id, json_type_null);
}

/* One request object; returns the response, or NULL for a notification. */
static struct json_object *handle_request(struct umdev_rpc *r, struct json_object *req)
{
	struct json_object *id = NULL, *ver, *method, *params = NULL, *result, *o;
	struct umdev_rpc_error e = { 0 };
	bool has_id;

	if (!json_object_is_type(req, json_type_object))
		return error_response(NULL, UMDEV_RPC_INVALID_REQUEST, 0,
				      "a request must be a JSON object");
	has_id = json_object_object_get_ex(req, "id", &id);
	if (!valid_id(id))
		return error_response(NULL, UMDEV_RPC_INVALID_REQUEST, 0,
				      "\"id\" must be a string, an integer or null");
	if (!json_object_object_get_ex(req, "jsonrpc", &ver) ||
	    !json_object_is_type(ver, json_type_string) ||
	    strcmp(json_object_get_string(ver), "2.0"))
		return error_response(id, UMDEV_RPC_INVALID_REQUEST, 0,
				      "\"jsonrpc\": \"2.0\" is required");
	if (!json_object_object_get_ex(req, "method", &method) ||
	    !json_object_is_type(method, json_type_string))
		return error_response(id, UMDEV_RPC_INVALID_REQUEST, 0,
				      "\"method\" must be a string");
	if (json_object_object_get_ex(req, "params", &params) &&
	    !json_object_is_type(params, json_type_object) &&
	    !json_object_is_type(params, json_type_null))
		return error_response(id, UMDEV_RPC_INVALID_PARAMS, 0,
				      "\"params\" must be an object (parameters by name)");
	if (params && json_object_is_type(params, json_type_null))
		params = NULL;

	result = umdev_rpc_dispatch(r->d, json_object_get_string(method), params, &e);
	if (!has_id) {
		/* A notification: done, and the client wants no answer. */
		json_object_put(result);
		return NULL;
	}
	if (!result)
		return error_response(id, e.code ? e.code : UMDEV_RPC_INTERNAL, e.err,
				      e.msg[0] ? e.msg : "internal error");
	o = json_object_new_object();
	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "result", result);
	json_object_object_add(o, "id", json_object_get(id));
	return o;
}

static void handle_value(struct rpc_conn *c, struct json_object *v)
{
	struct json_object *resp;

	if (json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);

		if (n == 0 || n > RPC_MAX_BATCH) {
			resp = error_response(NULL, UMDEV_RPC_INVALID_REQUEST, 0,
					      n ? "a batch holds at most 64 requests" :
						  "an empty batch");
		} else {
			resp = json_object_new_array();
			for (size_t i = 0; i < n; i++) {
				struct json_object *one =
					handle_request(c->r, json_object_array_get_idx(v, i));

				if (one)
					json_object_array_add(resp, one);
			}
			/* Only notifications: nothing at all is sent back. */
			if (json_object_array_length(resp) == 0) {
				json_object_put(resp);
				resp = NULL;
			}
		}
	} else {
		resp = handle_request(c->r, v);
	}
	if (resp) {
		conn_send(c, resp);
		json_object_put(resp);
	}
}

/* Parse what arrived; several requests may be in @buf, or part of one. */
static void conn_feed(struct rpc_conn *c, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len && !c->closing && !c->drop) {
		struct json_object *v;
		enum json_tokener_error jerr;
		size_t used;

		/* Blank space between requests is not part of any request. */
		if (c->req_bytes == 0) {
			while (off < len && (buf[off] == ' ' || buf[off] == '\n' ||
					     buf[off] == '\r' || buf[off] == '\t'))
				off++;
			if (off == len)
				break;
		}
		v = json_tokener_parse_ex(c->tok, buf + off, (int)(len - off));
		jerr = json_tokener_get_error(c->tok);
		used = json_tokener_get_parse_end(c->tok);
		if (used > len - off)
			used = len - off;
		off += used;
		c->req_bytes += used;
		if (jerr == json_tokener_continue) {
			if (c->req_bytes > RPC_MAX_REQUEST) {
				struct json_object *resp = error_response(
					NULL, UMDEV_RPC_INVALID_REQUEST, 0,
					"request too large (at most 256 KiB); closing");

				conn_send(c, resp);
				json_object_put(resp);
				c->closing = true;
			}
			continue;
		}
		if (jerr != json_tokener_success || !v) {
			char m[200];
			struct json_object *resp;

			snprintf(m, sizeof(m), "not valid JSON (%s); closing the connection",
				 json_tokener_error_desc(jerr));
			resp = error_response(NULL, UMDEV_RPC_PARSE_ERROR, 0, m);
			conn_send(c, resp);
			json_object_put(resp);
			umdev_warn("rpc client %u: %s", c->num, m);
			c->closing = true;
			json_object_put(v);
			break;
		}
		json_tokener_reset(c->tok);
		c->req_bytes = 0;
		handle_value(c, v);
		json_object_put(v);
	}
}

static void conn_read(struct rpc_conn *c)
{
	char buf[RPC_READ_CHUNK];

	for (unsigned i = 0; i < RPC_READ_BUDGET && !c->closing && !c->drop; i++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->drop = true;
			return;
		}
		if (n == 0) {
			if (c->req_bytes)
				umdev_info("rpc client %u: hung up in the middle of a request",
					   c->num);
			c->eof = true;
			c->closing = true; /* answer what came, then close */
			return;
		}
		conn_feed(c, buf, (size_t)n);
		if (c->out_len - c->out_off >= RPC_OUT_HIGH)
			return; /* let it read its answers first */
	}
}

static void on_conn(void *opaque, uint32_t events)
{
	struct rpc_conn *c = opaque;

	if (events & EPOLLOUT)
		conn_flush(c);
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_read(c);
	if (events & EPOLLERR)
		c->drop = true;
	if (!c->drop && c->closing && c->out_len == c->out_off)
		c->drop = true;
	if (!c->drop)
		conn_watch(c);
	if (c->drop)
		conn_free(c);
}

static void on_listen(void *opaque, uint32_t events)
{
	struct umdev_rpc *r = opaque;
	int fd = accept4(r->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct rpc_conn *c;

	if (fd < 0)
		return;
	if (r->nconns >= RPC_MAX_CLIENTS) {
		static const char busy[] = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,"
					   "\"message\":\"too many control clients\"},\"id\":null}\n";

		umdev_warn("rpc: refusing a client: already %u connected", r->nconns);
		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* it will see the close anyway */
		}
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->tok = json_tokener_new_ex(RPC_MAX_DEPTH))) {
		free(c);
		close(fd);
		return;
	}
	c->r = r;
	c->fd = fd;
	c->num = ++r->next_num;
	c->events = EPOLLIN | EPOLLRDHUP;
	if (umdev_loop_add_fd(r->ctl, fd, c->events, on_conn, c) < 0) {
		json_tokener_free(c->tok);
		free(c);
		close(fd);
		return;
	}
	c->next = r->conns;
	r->conns = c;
	r->nconns++;
	umdev_dbg("rpc client %u connected", c->num);
}

/*
 * Listen on @path, mode 0600 from the start (no moment anyone else could
 * connect), replacing a stale socket file but never a live daemon's.
 */
static int rpc_bind(const char *path, int *out, char *msg, size_t msglen)
{
	int ret = umdev_sock_listen_mode(path, 0600, 16, out);

	if (ret == -EADDRINUSE)
		snprintf(msg, msglen, "another umdevd already listens on %s (use --rpc)", path);
	else if (ret == -EEXIST)
		snprintf(msg, msglen, "%s exists and is not a socket", path);
	else if (ret == -ENAMETOOLONG)
		snprintf(msg, msglen, "control socket path %s is too long", path);
	else if (ret < 0)
		snprintf(msg, msglen, "cannot listen on %s: %s", path, strerror(-ret));
	return ret;
}

int umdev_rpc_new(umdev_daemon *d, const char *path, int listen_fd, struct umdev_rpc **out,
		  char *msg, size_t msglen)
{
	struct umdev_rpc *r = calloc(1, sizeof(*r));
	struct stat st;
	int ret;

	if (!r)
		return -ENOMEM;
	r->d = d;
	r->ctl = d->ctl;
	r->listen_fd = listen_fd;
	if (listen_fd < 0) {
		r->path = strdup(path);
		if (!r->path) {
			free(r);
			return -ENOMEM;
		}
		ret = rpc_bind(path, &r->listen_fd, msg, msglen);
		if (ret < 0) {
			free(r->path);
			free(r);
			return ret;
		}
		if (stat(path, &st) == 0) {
			r->dev = st.st_dev;
			r->ino = st.st_ino;
		}
	} else {
		fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
		fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
	}
	ret = umdev_loop_add_fd(r->ctl, r->listen_fd, EPOLLIN, on_listen, r);
	if (ret < 0) {
		snprintf(msg, msglen, "cannot watch the control socket: %s", strerror(-ret));
		r->conns = NULL;
		close(r->listen_fd);
		if (r->path)
			unlink(r->path);
		free(r->path);
		free(r);
		return ret;
	}
	*out = r;
	return 0;
}

void umdev_rpc_free(struct umdev_rpc *r)
{
	struct stat st;

	if (!r)
		return;
	while (r->conns)
		conn_free(r->conns);
	umdev_loop_del_fd(r->ctl, r->listen_fd);
	close(r->listen_fd);
	/* Remove the file only if it is still ours, not a newer daemon's. */
	if (r->path && stat(r->path, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino)
		unlink(r->path);
	free(r->path);
	free(r);
}

int umdev_rpc_default_path(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (xdg && *xdg)
		n = snprintf(buf, len, "%s/umdev/umdevd.sock", xdg);
	else
		n = snprintf(buf, len, "/run/umdev/umdevd.sock");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
