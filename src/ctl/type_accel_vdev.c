/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A virtual device of an accel parent over vfio-user, as a daemon device
 * type: `umdevctl create accel-vdev parent=accel0 id=vm1-accel socket=PATH`.
 * Created and removed at run time like an mdev; `types` shows how many
 * more the parents allow.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/dev_type.h"
#include "dev/accel/accel.h"
#include "umdev/log.h"
#include "umdev/vfio_user.h"

struct vdev_inst {
	umdev_accel_vdev *dev;
	umdev_vfu_server *vfu;
};

static void vdev_destroy(void *opaque)
{
	struct vdev_inst *v = opaque;

	/* Transport first: it quiesces DMA and drops the client's fds (and IMS entries). */
	umdev_vfu_server_free(v->vfu);
	umdev_accel_vdev_free(v->dev);
	free(v);
}

static bool vdev_connected(void *opaque)
{
	return umdev_vfu_server_connected(((struct vdev_inst *)opaque)->vfu);
}

static int vdev_create(const struct umdev_dev_ctx *ctx, struct umdev_kv *kv, void **inst,
		       char *msg, size_t msglen)
{
	const char *pname = umdev_kv_get(kv, "parent");
	unsigned long wq, prio, vectors;
	struct umdev_accel_vdev_config cfg = { .name = ctx->id };
	struct vdev_inst *v;
	umdev_accel *a;
	int ret, err = 0;

	if ((ret = umdev_kv_uint(kv, "wq-size", 64, 1, ACCEL_RING_MAX_BYTES / 64, &wq, msg,
				 msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "priority", 4, 1, 16, &prio, msg, msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "vectors", ACCEL_DEFAULT_VECTORS, 2, ACCEL_MAX_VECTORS,
				 &vectors, msg, msglen)) < 0 ||
	    (ret = umdev_kv_check_unused(kv, msg, msglen)) < 0)
		return ret;
	if (!pname) {
		snprintf(msg, msglen, "%s: parent=ACCEL is required", ctx->id);
		return -EINVAL;
	}
	if (wq & (wq - 1)) {
		snprintf(msg, msglen, "%s: wq-size must be a power of two", ctx->id);
		return -EINVAL;
	}
	a = umdev_accel_find(pname);
	if (!a) {
		snprintf(msg, msglen, "%s: no accel parent '%s'", ctx->id, pname);
		return -ENODEV;
	}
	cfg.wq_size = (unsigned)wq;
	cfg.priority = (unsigned)prio;
	cfg.vectors = (unsigned)vectors;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->dev = umdev_accel_vdev_new(a, &cfg, &err);
	if (!v->dev) {
		snprintf(msg, msglen, "%s: %s", ctx->id,
			 err == -ENOSPC ? "the parent has no room for another virtual device" :
					  strerror(-err));
		free(v);
		return err;
	}
	v->vfu = umdev_vfu_server_new(umdev_accel_vdev_pci(v->dev), ctx->ctl, ctx->socket, -1,
				      &err);
	if (!v->vfu) {
		snprintf(msg, msglen, "cannot listen on %s: %s", ctx->socket,
			 err == -EADDRINUSE ? "another server is listening there" :
			 strerror(-err));
		umdev_accel_vdev_free(v->dev);
		free(v);
		return err;
	}
	umdev_info("%s: accel virtual device of %s on vfio-user socket %s (wq %lu, priority %lu)",
		   ctx->id, pname, ctx->socket, wq, prio);
	*inst = v;
	return 0;
}

static struct json_object *vdev_stats(void *opaque)
{
	struct vdev_inst *v = opaque;
	struct json_object *o = json_object_new_object();
	struct umdev_accel_vdev_stats s;

	umdev_accel_vdev_stats(v->dev, &s);
#define U64(f) json_object_object_add(o, #f, json_object_new_uint64(s.f))
	U64(descs);
	U64(ok);
	U64(failed);
	U64(bytes);
	U64(irqs);
	U64(irq_refused);
	U64(swerr);
	U64(dropped);
	U64(portal_writes);
	U64(pasid);
	U64(wq_size);
	U64(priority);
	U64(ims_used);
#undef U64
	return o;
}

static unsigned vdev_available(void)
{
	return umdev_accel_available(NULL);
}

const struct umdev_dev_type umdev_type_accel_vdev = {
	.name = "accel-vdev",
	.transport = "vfio-user",
	.params = "id=ID,socket=PATH,parent=ACCEL[,wq-size=N][,priority=1..16][,vectors=N]",
	.create = vdev_create,
	.destroy = vdev_destroy,
	.connected = vdev_connected,
	.stats = vdev_stats,
	.available = vdev_available,
};
