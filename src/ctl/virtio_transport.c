/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one place a virtio device type picks its transport: vhost-user (the
 * VMM emulates the PCI function) or virtio-pci over vfio-user (umdevd serves
 * the whole function). Every virtio type binds through these calls, so the
 * devices in src/dev never see either transport.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dev_type.h"
#include "umdev/vfio_user.h"
#include "umdev/vhost_user.h"
#include "umdev/virtio_pci.h"

int umdev_ctl_vt_parse(struct umdev_ctl_vt *t, struct umdev_kv *kv, char *msg, size_t msglen)
{
	const char *s = umdev_kv_get(kv, "transport");

	t->vfio_user = false;
	if (!s || !strcmp(s, "vhost-user"))
		return 0;
	if (!strcmp(s, "vfio-user")) {
		t->vfio_user = true;
		return 0;
	}
	snprintf(msg, msglen, "transport=%s: expected vhost-user or vfio-user", s);
	return -EINVAL;
}

/* An inherited socket stays the daemon's: the server gets (and owns) a dup. */
static int dup_listen_fd(const struct umdev_dev_ctx *ctx, bool need_listening, char *msg,
			 size_t msglen)
{
	int lfd, listening = 0, err;
	socklen_t len = sizeof(listening);

	if (ctx->listen_fd < 0)
		return -1;
	if (need_listening &&
	    (getsockopt(ctx->listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
	     !listening)) {
		snprintf(msg, msglen, "fd %d: transport=vfio-user needs a listening socket",
			 ctx->listen_fd);
		return -EINVAL;
	}
	lfd = fcntl(ctx->listen_fd, F_DUPFD_CLOEXEC, 3);
	if (lfd < 0) {
		err = -errno;
		snprintf(msg, msglen, "cannot use fd %d: %s", ctx->listen_fd, strerror(errno));
		return err;
	}
	/* accept4() must never block the control loop (shares the file status). */
	fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
	return lfd;
}

int umdev_ctl_vt_start(struct umdev_ctl_vt *t, struct umdev_virtio_dev *vdev,
		       const struct umdev_dev_ctx *ctx, char *msg, size_t msglen)
{
	const char *path = ctx->listen_fd >= 0 ? NULL : ctx->socket;
	int lfd, err = 0;

	lfd = dup_listen_fd(ctx, t->vfio_user, msg, msglen);
	if (lfd < -1)
		return lfd;
	if (t->vfio_user) {
		t->vp = umdev_vpci_new(vdev, &err);
		if (!t->vp) {
			if (lfd >= 0)
				close(lfd);
			snprintf(msg, msglen, "cannot build the virtio-pci function: %s",
				 strerror(-err));
			return err;
		}
		err = umdev_vpci_serve_remote(t->vp, ctx->ctl);
		if (err < 0) {
			if (lfd >= 0)
				close(lfd);
			snprintf(msg, msglen, "cannot set up remote memory: %s", strerror(-err));
			umdev_ctl_vt_stop(t);
			return err;
		}
		t->vfu = umdev_vfu_server_new(umdev_vpci_pci(t->vp), ctx->ctl, path, lfd, &err);
	} else {
		t->vu = umdev_vu_server_new(vdev, ctx->ctl, path, lfd, &err);
	}
	if (!t->vfu && !t->vu) {
		/* The server owns a given fd only once it was created. */
		if (lfd >= 0)
			close(lfd);
		snprintf(msg, msglen, "cannot listen on %s: %s", ctx->socket,
			 err == -EADDRINUSE ? "another server is listening there" : strerror(-err));
		umdev_ctl_vt_stop(t);
		return err;
	}
	return 0;
}

void umdev_ctl_vt_stop(struct umdev_ctl_vt *t)
{
	/* Server first: it drops the client; then the function stops the queues. */
	umdev_vu_server_free(t->vu);
	umdev_vfu_server_free(t->vfu);
	umdev_vpci_free(t->vp);
	t->vu = NULL;
	t->vfu = NULL;
	t->vp = NULL;
}

bool umdev_ctl_vt_connected(const struct umdev_ctl_vt *t)
{
	return t->vfio_user ? t->vfu && umdev_vfu_server_connected(t->vfu) :
			      t->vu && umdev_vu_server_connected(t->vu);
}

const char *umdev_ctl_vt_name(const struct umdev_ctl_vt *t)
{
	return t->vfio_user ? "vfio-user" : "vhost-user";
}
