/* SPDX-License-Identifier: BSD-3-Clause */
/* pci-sample over vfio-user, as a daemon device type. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/dev_type.h"
#include "dev/sample/sample.h"
#include "umdev/log.h"
#include "umdev/vfio_user.h"

struct sample_inst {
	umdev_sample *dev;
	umdev_vfu_server *vfu;
};

static void sample_destroy(void *opaque)
{
	struct sample_inst *v = opaque;

	/* Transport first: it quiesces DMA and drops the client's fds. */
	umdev_vfu_server_free(v->vfu);
	umdev_sample_free(v->dev);
	free(v);
}

static bool sample_connected(void *opaque)
{
	return umdev_vfu_server_connected(((struct sample_inst *)opaque)->vfu);
}

static int sample_create(const struct umdev_dev_ctx *ctx, struct umdev_kv *kv, void **inst,
			 char *msg, size_t msglen)
{
	struct sample_inst *v;
	int ret, err = 0;

	ret = umdev_kv_check_unused(kv, msg, msglen);
	if (ret < 0)
		return ret;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->dev = umdev_sample_new(ctx->id, &err);
	if (!v->dev) {
		snprintf(msg, msglen, "cannot create the device: %s", strerror(-err));
		free(v);
		return err;
	}
	v->vfu = umdev_vfu_server_new(umdev_sample_pci(v->dev), ctx->ctl, ctx->socket, -1, &err);
	if (!v->vfu) {
		snprintf(msg, msglen, "cannot listen on %s: %s", ctx->socket,
			 err == -EADDRINUSE ? "another server is listening there" :
			 strerror(-err));
		umdev_sample_free(v->dev);
		free(v);
		return err;
	}
	umdev_info("%s: pci-sample on vfio-user socket %s", ctx->id, ctx->socket);
	*inst = v;
	return 0;
}

const struct umdev_dev_type umdev_type_pci_sample = {
	.name = "pci-sample",
	.transport = "vfio-user",
	.params = "id=ID,socket=PATH",
	.create = sample_create,
	.destroy = sample_destroy,
	.connected = sample_connected,
};
