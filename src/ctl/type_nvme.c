/* SPDX-License-Identifier: BSD-3-Clause */
/* NVMe over vfio-user, as a daemon device type ("nvme"). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctl/dev_type.h"
#include "umdev/log.h"
#include "umdev/nvme.h"
#include "umdev/vfio_user.h"

struct nvme_inst {
	char id[32];
	umdev_nvme *nvme;
	umdev_vfu_server *vfu;
};

static void nvme_destroy(void *opaque)
{
	struct nvme_inst *v = opaque;

	/* Transport first: it quiesces DMA and drops the client's fds. */
	umdev_vfu_server_free(v->vfu);
	umdev_nvme_free(v->nvme);
	free(v);
}

static bool nvme_connected(void *opaque)
{
	return umdev_vfu_server_connected(((struct nvme_inst *)opaque)->vfu);
}

/* Open "BACKEND[@OFF[+SIZE]]" (extra @offset/@size override) and attach it. */
static int add_ns(umdev_nvme *n, const char *spec, const char *offs, const char *sizes,
		  uint32_t nsid, uint32_t *out, char *msg, size_t msglen)
{
	char backend[4096];
	uint64_t off, size;
	umdev_bdev *b;
	int ret, err = 0;

	ret = umdev_nvme_parse_ns(spec, backend, sizeof(backend), &off, &size);
	if (ret == 0 && offs && !strcmp(offs, "0"))
		off = 0;
	if (ret == 0 && offs && strcmp(offs, "0") && umdev_bdev_parse_size(offs, &off) < 0)
		ret = -EINVAL;
	if (ret == 0 && sizes && umdev_bdev_parse_size(sizes, &size) < 0)
		ret = -EINVAL;
	if (ret < 0) {
		snprintf(msg, msglen, "namespace '%s': want BACKEND[@OFFSET[+SIZE]]", spec);
		return ret;
	}
	b = umdev_bdev_open(backend, false, &err);
	if (!b) {
		snprintf(msg, msglen, "cannot open backend '%s': %s", backend, strerror(-err));
		return err;
	}
	ret = umdev_nvme_ns_add(n, b, off, size, nsid, out);
	if (ret < 0) {
		umdev_bdev_close(b);
		snprintf(msg, msglen, "namespace '%s': %s", spec,
			 ret == -EINVAL ? "window outside the backend or not block aligned" :
			 ret == -EEXIST ? "NSID in use" : strerror(-ret));
	}
	return ret;
}

static int nvme_create(const struct umdev_dev_ctx *ctx, struct umdev_kv *kv, void **inst,
		       char *msg, size_t msglen)
{
	struct umdev_nvme_config cfg = { .name = ctx->id };
	unsigned long nq, poll_us;
	struct nvme_inst *v;
	int ret, err = 0, lfd = -1;
	bool poll;

	cfg.serial = umdev_kv_get(kv, "serial");
	/*
	 * QEMU guests ask for one queue pair per vCPU; a queue pair costs
	 * nothing until the guest creates it, so offer the most by default.
	 */
	if ((ret = umdev_kv_uint(kv, "queues", UMDEV_NVME_MAX_QUEUES, 1, UMDEV_NVME_MAX_QUEUES,
				 &nq, msg, msglen)) < 0 ||
	    (ret = umdev_kv_bool(kv, "poll", false, &poll, msg, msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "poll-us", 64, 1, 1000000, &poll_us, msg, msglen)) < 0)
		return ret;
	if (cfg.serial && strlen(cfg.serial) > 20) {
		snprintf(msg, msglen, "serial is at most 20 characters");
		return -EINVAL;
	}
	/* "ns" repeats: mark every occurrence read before the unused check. */
	for (unsigned i = 0; i < kv->n; i++)
		if (!strcmp(kv->key[i], "ns"))
			kv->used[i] = true;
	ret = umdev_kv_check_unused(kv, msg, msglen);
	if (ret < 0)
		return ret;
	if (!ctx->num_loops) {
		snprintf(msg, msglen, "no data-plane thread");
		return -EINVAL;
	}
	/* I/O queue pairs spread over every data-plane loop; admin on this one. */
	cfg.loop = ctx->loops[0];
	cfg.loops = ctx->loops;
	cfg.num_loops = ctx->num_loops;
	cfg.ctl_loop = ctx->ctl;
	cfg.max_queues = (unsigned)nq;
	cfg.poll_us = (unsigned)poll_us;
	cfg.always_poll = poll;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	snprintf(v->id, sizeof(v->id), "%s", ctx->id);
	v->nvme = umdev_nvme_new(&cfg, &err);
	if (!v->nvme) {
		snprintf(msg, msglen, "cannot create the controller: %s", strerror(-err));
		free(v);
		return err;
	}
	for (unsigned i = 0; i < kv->n; i++) {
		if (strcmp(kv->key[i], "ns"))
			continue;
		ret = add_ns(v->nvme, kv->val[i], NULL, NULL, 0, NULL, msg, msglen);
		if (ret < 0) {
			nvme_destroy(v);
			return ret;
		}
	}
	if (ctx->listen_fd >= 0) {
		lfd = fcntl(ctx->listen_fd, F_DUPFD_CLOEXEC, 3);
		if (lfd < 0) {
			err = -errno;
			snprintf(msg, msglen, "cannot use fd %d: %s", ctx->listen_fd, strerror(errno));
			nvme_destroy(v);
			return err;
		}
		fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
	}
	v->vfu = umdev_vfu_server_new(umdev_nvme_pci(v->nvme), ctx->ctl,
				      lfd >= 0 ? NULL : ctx->socket, lfd, &err);
	if (!v->vfu) {
		if (lfd >= 0 && fcntl(lfd, F_GETFD) >= 0)
			close(lfd);
		snprintf(msg, msglen, "cannot listen on %s: %s", ctx->socket,
			 err == -EADDRINUSE ? "another server is listening there" :
			 strerror(-err));
		nvme_destroy(v);
		return err;
	}
	umdev_info("%s: nvme on vfio-user socket %s, %lu I/O queue pair(s)", ctx->id, ctx->socket,
		   nq);
	*inst = v;
	return 0;
}

/* A param as a string: JSON strings as they are, numbers printed. */
static const char *param_str(struct json_object *params, const char *key)
{
	struct json_object *o;

	if (!params || !json_object_object_get_ex(params, key, &o))
		return NULL;
	return json_object_get_string(o);
}

static int nvme_call(void *opaque, const char *method, struct json_object *params,
		     struct json_object **result, char *msg, size_t msglen)
{
	struct nvme_inst *v = opaque;
	const char *s;
	uint32_t nsid = 0;
	int ret;

	if (!strcmp(method, "ns-add")) {
		const char *backend = param_str(params, "backend");

		if (params) {
			json_object_object_foreach(params, key, val) {
				(void)val;
				if (strcmp(key, "id") && strcmp(key, "backend") &&
				    strcmp(key, "offset") && strcmp(key, "size") && strcmp(key, "nsid")) {
					snprintf(msg, msglen,
						 "ns-add: unknown option '%s' (offset, size, nsid)", key);
					return -EINVAL;
				}
			}
		}

		if (!backend) {
			snprintf(msg, msglen, "ns-add needs a backend");
			return -EINVAL;
		}
		if ((s = param_str(params, "nsid"))) {
			char *end;
			unsigned long id = strtoul(s, &end, 0);

			if (*end || !id || id > UMDEV_NVME_MAX_NS) {
				snprintf(msg, msglen, "nsid must be 1..%u", UMDEV_NVME_MAX_NS);
				return -EINVAL;
			}
			nsid = (uint32_t)id;
		}
		ret = add_ns(v->nvme, backend, param_str(params, "offset"),
			     param_str(params, "size"), nsid, &nsid, msg, msglen);
		if (ret < 0)
			return ret;
		*result = json_object_new_object();
		if (*result)
			json_object_object_add(*result, "nsid", json_object_new_int64(nsid));
		return 0;
	}
	if (!strcmp(method, "ns-remove")) {
		char *end;
		unsigned long id;

		s = param_str(params, "nsid");
		if (!s) {
			snprintf(msg, msglen, "ns-remove needs an nsid");
			return -EINVAL;
		}
		id = strtoul(s, &end, 0);
		if (*end || !id || id > UMDEV_NVME_MAX_NS) {
			snprintf(msg, msglen, "nsid must be 1..%u", UMDEV_NVME_MAX_NS);
			return -EINVAL;
		}
		ret = umdev_nvme_ns_remove(v->nvme, (uint32_t)id);
		if (ret == -ENODEV)
			snprintf(msg, msglen, "no namespace %lu", id);
		return ret;
	}
	return -ENOENT;
}

static struct json_object *nvme_stats(void *opaque)
{
	struct nvme_inst *v = opaque;
	struct umdev_nvme_stats st;
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	umdev_nvme_get_stats(v->nvme, &st);
	/* The keys every device type reports (umdevctl stats prints them). */
	json_object_object_add(o, "requests",
			       json_object_new_int64((int64_t)(st.admin_cmds + st.io_cmds)));
	json_object_object_add(o, "bytes_from_guest", json_object_new_int64((int64_t)st.write_bytes));
	json_object_object_add(o, "bytes_to_guest", json_object_new_int64((int64_t)st.read_bytes));
	json_object_object_add(o, "inflight", json_object_new_int64(st.inflight));
	{
		struct json_object *qs = json_object_new_array();

		for (unsigned q = 0; qs && q <= UMDEV_NVME_MAX_QUEUES; q++) {
			struct json_object *e;

			if (!st.sq[q].live || !(e = json_object_new_object()))
				continue;
			json_object_object_add(e, "index", json_object_new_int((int)q));
			json_object_object_add(e, "requests",
					       json_object_new_int64((int64_t)st.sq[q].cmds));
			json_object_object_add(e, "inflight", json_object_new_int64(st.sq[q].inflight));
			json_object_object_add(e, "loop", json_object_new_int(st.sq[q].loop));
			json_object_array_add(qs, e);
		}
		json_object_object_add(o, "queues", qs ? qs : json_object_new_array());
	}
	json_object_object_add(o, "admin_cmds", json_object_new_int64((int64_t)st.admin_cmds));
	json_object_object_add(o, "io_cmds", json_object_new_int64((int64_t)st.io_cmds));
	json_object_object_add(o, "read_bytes", json_object_new_int64((int64_t)st.read_bytes));
	json_object_object_add(o, "write_bytes", json_object_new_int64((int64_t)st.write_bytes));
	json_object_object_add(o, "errors", json_object_new_int64((int64_t)st.errors));
	json_object_object_add(o, "irqs", json_object_new_int64((int64_t)st.irqs));
	json_object_object_add(o, "polls", json_object_new_int64((int64_t)st.polls));
	json_object_object_add(o, "sleeps", json_object_new_int64((int64_t)st.sleeps));
	json_object_object_add(o, "io_queues", json_object_new_int(st.io_queues));
	json_object_object_add(o, "csts", json_object_new_int64(st.csts));
	return o;
}

/* `save`: the namespaces as they are now, in the ns=... syntax. */
static void nvme_save(void *opaque, struct json_object *config)
{
	struct nvme_inst *v = opaque;
	struct umdev_nvme_ns_info *info = calloc(UMDEV_NVME_MAX_NS, sizeof(*info));
	struct json_object *arr = json_object_new_array();
	unsigned cnt;

	if (!info || !arr) {
		free(info);
		json_object_put(arr);
		return;
	}
	cnt = umdev_nvme_ns_list(v->nvme, info, UMDEV_NVME_MAX_NS);
	for (unsigned i = 0; i < cnt; i++) {
		char buf[4200];

		snprintf(buf, sizeof(buf), "%s@%" PRIu64 "+%" PRIu64, info[i].spec, info[i].offset,
			 info[i].size);
		json_object_array_add(arr, json_object_new_string(buf));
	}
	json_object_object_add(config, "ns", arr);
	free(info);
}

static const char *const nvme_methods[] = { "ns-add", "ns-remove", NULL };

const struct umdev_dev_type umdev_type_nvme = {
	.name = "nvme",
	.transport = "vfio-user",
	.params = "id=ID,socket=PATH,ns=BACKEND[@OFFSET[+SIZE]] (repeat)[,queues=N]"
		  "[,serial=S][,poll=on][,poll-us=N]",
	.inherit_fd = true,
	.methods = nvme_methods,
	.create = nvme_create,
	.destroy = nvme_destroy,
	.connected = nvme_connected,
	.call = nvme_call,
	.stats = nvme_stats,
	.save = nvme_save,
};
