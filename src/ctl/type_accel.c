/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The accel parent as a daemon device type: `--device accel,id=accel0`.
 * It serves no socket; its virtual devices (type accel-vdev) do.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "ctl/dev_type.h"
#include "dev/accel/accel.h"
#include "umdev/log.h"

static int accel_create(const struct umdev_dev_ctx *ctx, struct umdev_kv *kv, void **inst,
			char *msg, size_t msglen)
{
	unsigned long engines, ims, max_vdevs;
	struct umdev_accel_config cfg = { .name = ctx->id, .loops = ctx->loops,
					  .num_loops = ctx->num_loops };
	umdev_accel *a;
	int ret, err = 0;

	if ((ret = umdev_kv_uint(kv, "engines", 1, 1, ctx->num_loops, &engines, msg, msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "ims", 64, 1, UMDEV_IMS_MAX_ENTRIES, &ims, msg, msglen)) < 0 ||
	    (ret = umdev_kv_uint(kv, "max-vdevs", 16, 1, 1024, &max_vdevs, msg, msglen)) < 0 ||
	    (ret = umdev_kv_check_unused(kv, msg, msglen)) < 0)
		return ret;
	cfg.engines = (unsigned)engines;
	cfg.ims_entries = (unsigned)ims;
	cfg.max_vdevs = (unsigned)max_vdevs;
	a = umdev_accel_new(&cfg, &err);
	if (!a) {
		snprintf(msg, msglen, "cannot create accel parent %s: %s", ctx->id,
			 err == -EEXIST ? "a parent of that name exists" : strerror(-err));
		return err;
	}
	umdev_info("%s: accel parent, %lu engine(s), %lu IMS entries, up to %lu virtual devices",
		   ctx->id, engines, ims, max_vdevs);
	*inst = a;
	return 0;
}

static void accel_destroy(void *inst)
{
	umdev_accel_put(inst);
}

/* A parent with virtual devices is in use: `remove` needs force. */
static bool accel_in_use(void *inst)
{
	struct umdev_accel_info i;

	umdev_accel_info(inst, &i);
	return i.vdevs > 0;
}

static struct json_object *accel_stats(void *inst)
{
	struct json_object *o = json_object_new_object();
	struct umdev_accel_info i;

	umdev_accel_info(inst, &i);
	json_object_object_add(o, "engines", json_object_new_int((int)i.engines));
	json_object_object_add(o, "vdevs", json_object_new_int((int)i.vdevs));
	json_object_object_add(o, "max_vdevs", json_object_new_int((int)i.max_vdevs));
	json_object_object_add(o, "available_instances",
			       json_object_new_int((int)(i.max_vdevs - i.vdevs)));
	json_object_object_add(o, "ims_entries", json_object_new_int((int)i.ims_entries));
	json_object_object_add(o, "ims_free", json_object_new_int((int)i.ims_free));
	json_object_object_add(o, "pasids", json_object_new_int((int)i.pasids));
	return o;
}

const struct umdev_dev_type umdev_type_accel = {
	.name = "accel",
	.transport = "none",
	.params = "id=ID[,engines=N][,ims=N][,max-vdevs=N]",
	.create = accel_create,
	.destroy = accel_destroy,
	.connected = accel_in_use,
	.stats = accel_stats,
	.no_socket = true,
};
