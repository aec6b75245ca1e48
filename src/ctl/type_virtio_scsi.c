/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-scsi over vhost-user or virtio-pci on vfio-user, as a daemon device type:
 *   virtio-scsi,id=ID,socket=PATH,lun=T:L:BACKEND[,lun=...][,num-queues=N][,transport=T]
 * and the runtime methods lun-add / lun-remove / lun-list.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/dev_type.h"
#include "umdev/log.h"
#include "dev/virtio-scsi/virtio_scsi.h"

struct vscsi_inst {
	char id[32];
	umdev_vscsi *dev;
	struct umdev_ctl_vt vt;
};

static void vscsi_destroy(void *opaque)
{
	struct vscsi_inst *v = opaque;

	/* Transport first: it stops the queues, which drain their in-flight I/O. */
	umdev_ctl_vt_stop(&v->vt);
	if (v->dev) {
		int ret = umdev_vscsi_flush(v->dev);

		if (ret < 0)
			umdev_err("%s: final flush failed: %s", v->id, strerror(-ret));
		umdev_vscsi_free(v->dev);
	}
	free(v);
}

static bool vscsi_connected(void *opaque)
{
	return umdev_ctl_vt_connected(&((struct vscsi_inst *)opaque)->vt);
}

/* "T:L:BACKEND", BACKEND being file:PATH, ram:SIZE or null:SIZE. */
static int add_lun_opt(umdev_vscsi *dev, const char *val, char *msg, size_t msglen)
{
	unsigned t, l;
	const char *rest;

	if (umdev_vscsi_parse_addr(val, &t, &l, &rest) < 0 || *rest != ':' || !rest[1]) {
		snprintf(msg, msglen, "lun=%s: expected lun=TARGET:LUN:BACKEND (target 0-255, "
				      "lun 0-16383), e.g. lun=0:0:file:/img", val);
		return -EINVAL;
	}
	return umdev_vscsi_lun_add(dev, t, l, rest + 1, false, msg, msglen);
}

static int vscsi_create(const struct umdev_dev_ctx *ctx, struct umdev_kv *kv, void **inst,
			char *msg, size_t msglen)
{
	struct umdev_vscsi_opts o = { .id = ctx->id };
	unsigned long nq, qsize, poll_us;
	const char *luns[UMDEV_KV_MAX];
	unsigned nluns = 0;
	struct umdev_ctl_vt vt = { 0 };
	struct vscsi_inst *v;
	int ret, err = 0;

	if ((ret = umdev_kv_bool(kv, "poll", false, &o.poll, msg, msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "num-queues", UMDEV_VSCSI_MAX_REQ_QUEUES, 1,
				 UMDEV_VSCSI_MAX_REQ_QUEUES, &nq, msg,
				 msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "queue-size", 1024, 1, 32768, &qsize, msg, msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "poll-us", 32, 0, 1000000, &poll_us, msg, msglen)) < 0)
		return ret;
	/* lun= repeats: walk the list rather than asking for one value. */
	for (unsigned i = 0; i < kv->n; i++) {
		if (strcmp(kv->key[i], "lun"))
			continue;
		kv->used[i] = true;
		luns[nluns++] = kv->val[i];
	}
	if (qsize & (qsize - 1)) {
		snprintf(msg, msglen, "queue-size=%lu: must be a power of two", qsize);
		return -EINVAL;
	}
	ret = umdev_ctl_vt_parse(&vt, kv, msg, msglen);
	if (ret == 0)
		ret = umdev_kv_check_unused(kv, msg, msglen);
	if (ret < 0)
		return ret;
	o.num_queues = nq;
	o.queue_size = qsize;
	o.poll_us = poll_us;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	snprintf(v->id, sizeof(v->id), "%s", ctx->id);
	v->dev = umdev_vscsi_new(&o, ctx->loops, ctx->num_loops, &err);
	if (!v->dev) {
		snprintf(msg, msglen, "cannot create the device: %s", strerror(-err));
		vscsi_destroy(v);
		return err;
	}
	for (unsigned i = 0; i < nluns; i++) {
		ret = add_lun_opt(v->dev, luns[i], msg, msglen);
		if (ret < 0) {
			vscsi_destroy(v);
			return ret;
		}
	}
	v->vt = vt;
	ret = umdev_ctl_vt_start(&v->vt, umdev_vscsi_vdev(v->dev), ctx, msg, msglen);
	if (ret < 0) {
		vscsi_destroy(v);
		return ret;
	}
	umdev_info("%s: virtio-scsi on %s %s, %u LUN(s), up to %lu request queue(s)", ctx->id,
		   umdev_ctl_vt_name(&v->vt), ctx->socket, nluns, nq);
	*inst = v;
	return 0;
}

static const char *param_str(struct json_object *params, const char *key)
{
	struct json_object *o;

	if (!params || !json_object_object_get_ex(params, key, &o) ||
	    !json_object_is_type(o, json_type_string))
		return NULL;
	return json_object_get_string(o);
}

static int param_bool(struct json_object *params, const char *key, bool *out, char *msg,
		      size_t msglen)
{
	struct json_object *o;
	const char *s;

	*out = false;
	if (!params || !json_object_object_get_ex(params, key, &o))
		return 0;
	if (json_object_is_type(o, json_type_boolean)) {
		*out = json_object_get_boolean(o);
		return 0;
	}
	s = json_object_is_type(o, json_type_string) ? json_object_get_string(o) : "";
	if (!strcmp(s, "on") || !strcmp(s, "true") || !strcmp(s, "1")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "off") || !strcmp(s, "false") || !strcmp(s, "0"))
		return 0;
	snprintf(msg, msglen, "%s: expected on/off", key);
	return -EINVAL;
}

/* Every params key must be one this method knows: a typo must not pass silently. */
static int check_keys(struct json_object *params, const char *const *allowed, char *msg,
		      size_t msglen)
{
	json_object_object_foreach(params, key, val)
	{
		bool ok = false;

		(void)val;
		for (unsigned i = 0; allowed[i]; i++)
			ok |= !strcmp(key, allowed[i]);
		if (!ok) {
			snprintf(msg, msglen, "unknown parameter '%s'", key);
			return -EINVAL;
		}
	}
	return 0;
}

static struct json_object *lun_list(umdev_vscsi *dev)
{
	struct json_object *arr = json_object_new_array();
	struct umdev_scsi_lu_info info;
	char buf[64];

	for (unsigned i = 0; i < UMDEV_SCSI_MAX_LUS; i++) {
		struct json_object *o;

		if (umdev_scsi_lu_info(umdev_vscsi_target(dev), i, &info) < 0)
			continue;
		o = json_object_new_object();
		snprintf(buf, sizeof(buf), "%u:%u", info.target, info.lun);
		json_object_object_add(o, "lun", json_object_new_string(buf));
		json_object_object_add(o, "backend", json_object_new_string(info.backend));
		json_object_object_add(o, "size", json_object_new_int64((int64_t)info.size));
		json_object_object_add(o, "block-size", json_object_new_int(info.block_size));
		json_object_object_add(o, "readonly", json_object_new_boolean(info.readonly));
		json_object_array_add(arr, o);
	}
	return arr;
}

static int vscsi_call(void *opaque, const char *method, struct json_object *params,
		      struct json_object **result, char *msg, size_t msglen)
{
	static const char *const add_keys[] = { "id", "lun", "backend", "readonly", NULL };
	static const char *const rm_keys[] = { "id", "lun", NULL };
	struct vscsi_inst *v = opaque;
	const char *addr = param_str(params, "lun");
	unsigned t, l;
	bool ro;
	int ret;

	if (!strcmp(method, "lun-list")) {
		*result = json_object_new_object();
		json_object_object_add(*result, "luns", lun_list(v->dev));
		return 0;
	}
	if (strcmp(method, "lun-add") && strcmp(method, "lun-remove"))
		return -ENOENT;
	ret = check_keys(params, !strcmp(method, "lun-add") ? add_keys : rm_keys, msg, msglen);
	if (ret < 0)
		return ret;
	if (!addr || umdev_vscsi_parse_addr(addr, &t, &l, NULL) < 0) {
		snprintf(msg, msglen, "lun: expected \"TARGET:LUN\" (target 0-255, lun 0-16383)");
		return -EINVAL;
	}
	if (!strcmp(method, "lun-remove")) {
		ret = umdev_vscsi_lun_remove(v->dev, t, l, msg, msglen);
		return ret == -ENOENT ? -ENODEV : ret;
	}
	if (!param_str(params, "backend")) {
		snprintf(msg, msglen, "backend: expected file:PATH, ram:SIZE or null:SIZE");
		return -EINVAL;
	}
	ret = param_bool(params, "readonly", &ro, msg, msglen);
	if (ret < 0)
		return ret;
	ret = umdev_vscsi_lun_add(v->dev, t, l, param_str(params, "backend"), ro, msg, msglen);
	if (ret == 0)
		umdev_info("%s: LUN %u:%u added (%s)", v->id, t, l, param_str(params, "backend"));
	return ret;
}

static const char *vscsi_transport(void *opaque)
{
	return umdev_ctl_vt_name(&((struct vscsi_inst *)opaque)->vt);
}

static struct json_object *vscsi_stats(void *opaque)
{
	struct vscsi_inst *v = opaque;
	struct json_object *o = umdev_ctl_virtio_stats(umdev_vscsi_vdev(v->dev));

	if (!o)
		o = json_object_new_object();
	json_object_object_add(o, "luns", lun_list(v->dev));
	return o;
}

/* The LUNs now attached replace the lun= list the device was created with. */
static void vscsi_save(void *opaque, struct json_object *config)
{
	struct vscsi_inst *v = opaque;
	struct json_object *arr = json_object_new_array();
	struct umdev_scsi_lu_info info;
	char buf[4200];

	for (unsigned i = 0; i < UMDEV_SCSI_MAX_LUS; i++) {
		if (umdev_scsi_lu_info(umdev_vscsi_target(v->dev), i, &info) < 0)
			continue;
		snprintf(buf, sizeof(buf), "%u:%u:%s", info.target, info.lun, info.backend);
		json_object_array_add(arr, json_object_new_string(buf));
	}
	json_object_object_add(config, "lun", arr);
}

const struct umdev_dev_type umdev_type_virtio_scsi = {
	.name = "virtio-scsi",
	.transport = "vhost-user",
	.params = "id=ID,socket=PATH,lun=T:L:file:PATH|ram:SIZE|null:SIZE[,lun=...]"
		  "[,num-queues=N][,queue-size=N][,poll=on][,poll-us=N]" UMDEV_CTL_VT_PARAMS,
	.create = vscsi_create,
	.destroy = vscsi_destroy,
	.connected = vscsi_connected,
	.call = vscsi_call,
	.stats = vscsi_stats,
	.save = vscsi_save,
	.transport_of = vscsi_transport,
};
