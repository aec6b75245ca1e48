/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket's methods (docs/rpc.md). Each runs to completion on
 * the control loop and either returns its result or fills a
 * struct umdev_rpc_error with a code and a message a person can act on.
 * Methods the daemon does not know are routed to the device named by
 * params "id", through its type's call op (lun-add, ns-remove, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctl_internal.h"
#include "dev_type.h"
#include "umdev/log.h"

#define UMDEV_VERSION "0.1.0"

static struct json_object *fail(struct umdev_rpc_error *e, int code, int err, const char *fmt,
				...) __attribute__((format(printf, 4, 5)));

static struct json_object *fail(struct umdev_rpc_error *e, int code, int err, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	e->err = err;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return NULL;
}

/* Refuse parameters a method does not take: a typo must not be ignored. */
static bool check_params(struct json_object *params, const char *method,
			 const char *const *allowed, struct umdev_rpc_error *e)
{
	if (!params)
		return true;
	json_object_object_foreach(params, key, val) {
		bool ok = false;

		(void)val;
		for (unsigned i = 0; allowed[i] && !ok; i++)
			ok = !strcmp(key, allowed[i]);
		if (!ok) {
			fail(e, UMDEV_RPC_INVALID_PARAMS, EINVAL, "%s takes no parameter '%s'",
			     method, key);
			return false;
		}
	}
	return true;
}

/*
 * params[@key] as a string: NULL in *@out when absent and optional.
 * Returns false (and fills @e) when it has the wrong type or is missing.
 */
static bool get_string(struct json_object *params, const char *key, bool required,
		       const char **out, struct umdev_rpc_error *e)
{
	struct json_object *v;

	*out = NULL;
	if (!params || !json_object_object_get_ex(params, key, &v) ||
	    json_object_is_type(v, json_type_null)) {
		if (required)
			fail(e, UMDEV_RPC_INVALID_PARAMS, EINVAL, "parameter '%s' is required", key);
		return !required;
	}
	if (!json_object_is_type(v, json_type_string)) {
		fail(e, UMDEV_RPC_INVALID_PARAMS, EINVAL, "parameter '%s' must be a string", key);
		return false;
	}
	*out = json_object_get_string(v);
	return true;
}

static struct json_object *dev_json(struct umdev_dev_entry *e)
{
	struct json_object *o = json_object_new_object(), *b;

	json_object_object_add(o, "id", json_object_new_string(e->id));
	json_object_object_add(o, "type", json_object_new_string(e->type->name));
	json_object_object_add(o, "transport",
			       json_object_new_string(e->type->transport_of ?
							      e->type->transport_of(e->inst) :
							      e->type->transport));
	json_object_object_add(o, "socket", json_object_new_string(e->socket));
	/* Where the data lives (e.g. an NBD URI), for devices created with one backend. */
	if (e->config && json_object_object_get_ex(e->config, "backend", &b))
		json_object_object_add(o, "backend", json_object_get(b));
	json_object_object_add(o, "connected",
			       json_object_new_boolean(e->type->connected &&
						       e->type->connected(e->inst)));
	return o;
}

/* Devices oldest first, the order they were created in (and are saved in). */
static unsigned sorted_devs(umdev_daemon *d, struct umdev_dev_entry **out, unsigned max)
{
	unsigned n = 0;

	for (struct umdev_dev_entry *e = d->devs; e && n < max; e = e->next)
		out[n++] = e;
	for (unsigned i = 0; i < n / 2; i++) {
		struct umdev_dev_entry *t = out[i];

		out[i] = out[n - 1 - i];
		out[n - 1 - i] = t;
	}
	return n;
}

static struct umdev_dev_entry **dev_array(umdev_daemon *d, unsigned *n,
					  struct umdev_rpc_error *e)
{
	unsigned total = umdev_daemon_num_devices(d);
	struct umdev_dev_entry **v = calloc(total ? total : 1, sizeof(*v));

	if (!v) {
		fail(e, UMDEV_RPC_INTERNAL, ENOMEM, "out of memory");
		return NULL;
	}
	*n = sorted_devs(d, v, total);
	return v;
}

static struct json_object *m_types(umdev_daemon *d, struct json_object *params,
				   struct umdev_rpc_error *e)
{
	static const char *const allowed[] = { NULL };
	unsigned total = umdev_daemon_num_devices(d);
	struct json_object *o, *arr;

	if (!check_params(params, "types", allowed, e))
		return NULL;
	o = json_object_new_object();
	arr = json_object_new_array();
	for (unsigned i = 0; umdev_dev_types[i]; i++) {
		const struct umdev_dev_type *t = umdev_dev_types[i];
		struct json_object *to = json_object_new_object(), *m = json_object_new_array();
		unsigned n = 0, avail;

		for (struct umdev_dev_entry *x = d->devs; x; x = x->next)
			n += x->type == t;
		for (unsigned k = 0; t->methods && t->methods[k]; k++)
			json_object_array_add(m, json_object_new_string(t->methods[k]));
		json_object_object_add(to, "name", json_object_new_string(t->name));
		json_object_object_add(to, "transport", json_object_new_string(t->transport));
		json_object_object_add(to, "params", json_object_new_string(t->params));
		json_object_object_add(to, "methods", m);
		json_object_object_add(to, "instances", json_object_new_int((int)n));
		/* Every type draws on the daemon's one device limit (as mdev's available_instances). */
		avail = d->max_devices - total;
		if (t->available && t->available() < avail)
			avail = t->available();
		json_object_object_add(to, "available", json_object_new_int((int)avail));
		json_object_array_add(arr, to);
	}
	json_object_object_add(o, "types", arr);
	json_object_object_add(o, "max_devices", json_object_new_int((int)d->max_devices));
	return o;
}

/*
 * Which I/O engine runs where: {"requested": "auto", "control": "epoll",
 * "data_plane": "io_uring", "loops": [{"name": ..., "io_engine": ...}]}.
 * "data_plane" is "mixed" only if loops disagree, which AUTO never causes.
 */
static struct json_object *engine_json(umdev_daemon *d)
{
	struct json_object *o = json_object_new_object(), *loops = json_object_new_array();
	const char *dp = NULL;

	for (unsigned i = 0; i < d->ndp; i++) {
		struct json_object *l = json_object_new_object();
		const char *e = umdev_io_engine_name(umdev_loop_engine(d->dp[i]));

		json_object_object_add(l, "name", json_object_new_string(umdev_loop_name(d->dp[i])));
		json_object_object_add(l, "io_engine", json_object_new_string(e));
		json_object_array_add(loops, l);
		dp = !dp || !strcmp(dp, e) ? e : "mixed";
	}
	json_object_object_add(o, "requested", json_object_new_string(umdev_io_engine_name(
						       umdev_io_engine_get_default())));
	json_object_object_add(o, "control", json_object_new_string(umdev_io_engine_name(
						     umdev_loop_engine(d->ctl))));
	json_object_object_add(o, "data_plane", json_object_new_string(dp ? dp : "none"));
	json_object_object_add(o, "loops", loops);
	return o;
}

/* "list" and "stats": the devices (all, or the one named "id"), with or without statistics. */
static struct json_object *devices_json(umdev_daemon *d, struct json_object *params,
					const char *method, bool with_stats,
					struct umdev_rpc_error *e)
{
	static const char *const allowed[] = { "id", NULL };
	struct umdev_dev_entry **v;
	struct json_object *o, *arr;
	const char *id;
	unsigned n;

	if (!check_params(params, method, allowed, e) || !get_string(params, "id", false, &id, e))
		return NULL;
	if (id && !umdev_daemon_find(d, id))
		return fail(e, UMDEV_RPC_NO_DEVICE, ENOENT, "no device with id '%s'", id);
	v = dev_array(d, &n, e);
	if (!v)
		return NULL;
	o = json_object_new_object();
	arr = json_object_new_array();
	for (unsigned i = 0; i < n; i++) {
		struct json_object *dj;

		if (id && strcmp(v[i]->id, id))
			continue;
		dj = dev_json(v[i]);
		if (with_stats)
			json_object_object_add(dj, "stats",
					       v[i]->type->stats ? v[i]->type->stats(v[i]->inst)
								 : NULL);
		json_object_array_add(arr, dj);
	}
	json_object_object_add(o, "devices", arr);
	if (with_stats)
		json_object_object_add(o, "io_engine", engine_json(d));
	free(v);
	return o;
}

static struct json_object *m_list(umdev_daemon *d, struct json_object *params,
				  struct umdev_rpc_error *e)
{
	return devices_json(d, params, "list", false, e);
}

static int create_code(int ret)
{
	switch (ret) {
	case -EEXIST:
	case -EADDRINUSE:
		return UMDEV_RPC_EXISTS;
	case -ENOSPC:
		return UMDEV_RPC_LIMIT;
	case -EINVAL:
	case -E2BIG:
	case -ENAMETOOLONG:
		return UMDEV_RPC_INVALID_PARAMS;
	default:
		return UMDEV_RPC_FAILED;
	}
}

static struct json_object *m_create(umdev_daemon *d, struct json_object *params,
				    struct umdev_rpc_error *e)
{
	struct umdev_kv kv;
	struct umdev_dev_entry *dev;
	char msg[400] = "out of memory";
	int ret;

	if (!params)
		return fail(e, UMDEV_RPC_INVALID_PARAMS, EINVAL,
			    "create needs the device as params: {\"type\": ..., \"id\": ..., "
			    "\"socket\": ..., options...}");
	ret = umdev_kv_from_json(params, &kv, msg, sizeof(msg));
	if (ret < 0)
		return fail(e, UMDEV_RPC_INVALID_PARAMS, -ret, "%s", msg);
	ret = umdev_daemon_add_kv(d, &kv, -1, msg, sizeof(msg));
	umdev_kv_free(&kv);
	if (ret < 0)
		return fail(e, create_code(ret), -ret, "%s", msg);
	dev = d->devs; /* the newest is first */
	umdev_info("%s: created through the control socket", dev->id);
	return dev_json(dev);
}

static struct json_object *m_remove(umdev_daemon *d, struct json_object *params,
				    struct umdev_rpc_error *e)
{
	static const char *const allowed[] = { "id", "force", NULL };
	struct json_object *f, *o;
	bool force = false;
	char msg[400];
	const char *id;
	int ret;

	if (!check_params(params, "remove", allowed, e) || !get_string(params, "id", true, &id, e))
		return NULL;
	if (json_object_object_get_ex(params, "force", &f)) {
		if (!json_object_is_type(f, json_type_boolean))
			return fail(e, UMDEV_RPC_INVALID_PARAMS, EINVAL,
				    "parameter 'force' must be true or false");
		force = json_object_get_boolean(f);
	}
	ret = umdev_daemon_remove(d, id, force, msg, sizeof(msg));
	if (ret < 0)
		return fail(e, ret == -ENOENT ? UMDEV_RPC_NO_DEVICE : UMDEV_RPC_BUSY, -ret, "%s",
			    msg);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "removed", json_object_new_boolean(true));
	return o;
}

static struct json_object *m_stats(umdev_daemon *d, struct json_object *params,
				   struct umdev_rpc_error *e)
{
	return devices_json(d, params, "stats", true, e);
}

/* Write @text to @path through a temporary file and rename(), so a reader never sees half. */
static int write_atomic(const char *path, const char *text, char *msg, size_t msglen)
{
	size_t len = strlen(text), off = 0;
	char tmp[4096];
	int fd, ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		snprintf(msg, msglen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		ret = -errno;
		snprintf(msg, msglen, "cannot write %s: %s", path, strerror(errno));
		return ret;
	}
	while (off < len && ret == 0) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno != EINTR)
			ret = -errno;
		else if (n > 0)
			off += (size_t)n;
	}
	if (ret == 0 && (fchmod(fd, 0600) < 0 || fsync(fd) < 0))
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0) {
		snprintf(msg, msglen, "cannot write %s: %s", path, strerror(-ret));
		unlink(tmp);
	}
	return ret;
}

static struct json_object *m_save(umdev_daemon *d, struct json_object *params,
				  struct umdev_rpc_error *e)
{
	static const char *const allowed[] = { "path", NULL };
	struct umdev_dev_entry **v;
	struct json_object *o, *arr;
	const char *path;
	unsigned n;

	if (!check_params(params, "save", allowed, e) || !get_string(params, "path", false, &path, e))
		return NULL;
	if (path && path[0] != '/')
		return fail(e, UMDEV_RPC_INVALID_PARAMS, EINVAL,
			    "path must be absolute (the daemon's working directory is not yours)");
	v = dev_array(d, &n, e);
	if (!v)
		return NULL;
	o = json_object_new_object();
	arr = json_object_new_array();
	for (unsigned i = 0; i < n; i++) {
		struct json_object *c = NULL;

		/* A deep copy: the type may update it with what changed at runtime. */
		if (json_object_deep_copy(v[i]->config, &c, NULL) < 0 || !c)
			continue;
		if (v[i]->type->save)
			v[i]->type->save(v[i]->inst, c);
		json_object_array_add(arr, c);
	}
	free(v);
	json_object_object_add(o, "devices", arr);
	if (path) {
		char msg[400];
		const char *text = json_object_to_json_string_ext(
			o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
				   JSON_C_TO_STRING_NOSLASHESCAPE);
		char *withnl = text ? malloc(strlen(text) + 2) : NULL;
		int ret;

		if (!withnl) {
			json_object_put(o);
			return fail(e, UMDEV_RPC_INTERNAL, ENOMEM, "out of memory");
		}
		sprintf(withnl, "%s\n", text);
		ret = write_atomic(path, withnl, msg, sizeof(msg));
		free(withnl);
		if (ret < 0) {
			json_object_put(o);
			return fail(e, UMDEV_RPC_FAILED, -ret, "%s", msg);
		}
		json_object_object_add(o, "path", json_object_new_string(path));
	}
	return o;
}

static struct json_object *m_version(umdev_daemon *d, struct json_object *params,
				     struct umdev_rpc_error *e);

static const struct {
	const char *name;
	struct json_object *(*fn)(umdev_daemon *d, struct json_object *params,
				  struct umdev_rpc_error *e);
} methods[] = {
	{ "types", m_types },   { "list", m_list },   { "create", m_create },
	{ "remove", m_remove }, { "stats", m_stats }, { "save", m_save },
	{ "version", m_version },
};

static struct json_object *m_version(umdev_daemon *d, struct json_object *params,
				     struct umdev_rpc_error *e)
{
	static const char *const allowed[] = { NULL };
	struct json_object *o, *m;

	if (!check_params(params, "version", allowed, e))
		return NULL;
	o = json_object_new_object();
	m = json_object_new_array();
	for (unsigned i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		json_object_array_add(m, json_object_new_string(methods[i].name));
	json_object_object_add(o, "version", json_object_new_string(UMDEV_VERSION));
	json_object_object_add(o, "methods", m);
	json_object_object_add(o, "io_engine", engine_json(d));
	return o;
}

static int call_code(int ret)
{
	switch (ret) {
	case -EINVAL:
	case -ERANGE:
	case -E2BIG:
		return UMDEV_RPC_INVALID_PARAMS;
	case -EEXIST:
	case -EADDRINUSE:
		return UMDEV_RPC_EXISTS;
	case -EBUSY:
		return UMDEV_RPC_BUSY;
	case -ENOSPC:
		return UMDEV_RPC_LIMIT;
	case -ENODEV:
		return UMDEV_RPC_NO_DEVICE; /* no such LUN or namespace */
	default:
		return UMDEV_RPC_FAILED;
	}
}

/* A device's own method: route it to its type's call op. */
static struct json_object *device_call(umdev_daemon *d, const char *method,
				       struct json_object *params, struct umdev_rpc_error *e)
{
	struct json_object *result = NULL;
	struct umdev_dev_entry *dev;
	char msg[400] = "";
	const char *id;
	int ret;

	if (!params || !json_object_object_get_ex(params, "id", NULL))
		return fail(e, UMDEV_RPC_METHOD_NOT_FOUND, ENOENT,
			    "unknown method '%s' (device methods need params.id naming the device)",
			    method);
	if (!get_string(params, "id", true, &id, e))
		return NULL;
	dev = umdev_daemon_find(d, id);
	if (!dev)
		return fail(e, UMDEV_RPC_NO_DEVICE, ENOENT, "no device with id '%s'", id);
	ret = dev->type->call ? dev->type->call(dev->inst, method, params, &result, msg,
						sizeof(msg)) :
				-ENOENT;
	if (ret == -ENOENT && !msg[0])
		return fail(e, UMDEV_RPC_METHOD_NOT_FOUND, ENOENT,
			    "device '%s' (%s) does not support method '%s'", id, dev->type->name,
			    method);
	if (ret < 0) {
		json_object_put(result);
		return fail(e, call_code(ret), -ret, "%s: %s", id, msg[0] ? msg : strerror(-ret));
	}
	umdev_info("%s: %s done through the control socket", id, method);
	/* A method with nothing to say still answers with an object. */
	return result ? result : json_object_new_object();
}

struct json_object *umdev_rpc_dispatch(umdev_daemon *d, const char *method,
				       struct json_object *params, struct umdev_rpc_error *e)
{
	for (unsigned i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(method, methods[i].name))
			return methods[i].fn(d, params, e);
	return device_call(d, method, params, e);
}
