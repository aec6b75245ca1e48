/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user server: the listening socket, the one connection, and message
 * framing (header, payload, SCM_RIGHTS fds) on a non-blocking socket so a
 * slow or hostile front-end can never stall the control loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "umdev/log.h"
#include "util/sock.h"
#include "vu_internal.h"

static void conn_close(struct vu_conn *c, const char *why)
{
	umdev_vu_server *s = c->s;

	umdev_info("%s: vhost-user front-end disconnected%s%s", c->name, why ? ": " : "",
		   why ? why : "");
	umdev_loop_del_fd(s->ctl, c->fd);
	vu_conn_fini_state(c);
	for (unsigned i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	close(c->fd);
	free(c);
	s->conn = NULL;
}

int vu_send(struct vu_conn *c, const struct vhost_user_msg *m, const int *fds, unsigned nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
	struct iovec iov = { (void *)m, sizeof(m->hdr) + m->hdr.size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (umdev_msg_attach_fds(&mh, cbuf, sizeof(cbuf), fds, nfds) < 0)
		return -EINVAL;
	do
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	/*
	 * Replies are small and a front-end waits for each before its next
	 * request: a full socket buffer means it stopped reading. It is
	 * dropped, never waited for (the control loop serves every device).
	 */
	if (n != (ssize_t)iov.iov_len) {
		int err = n < 0 ? errno : EIO;

		umdev_err_rl(&c->rl, "%s: cannot send a reply (%s): the front-end is not reading "
			     "its replies; dropping it", c->name,
			     err == EAGAIN ? "socket buffer full" : strerror(err));
		c->send_failed = true;
		return -err;
	}
	return 0;
}

/* Count one message against the per-second limit. */
static bool msg_rate_ok(struct vu_conn *c)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec != c->rate_window) {
		c->rate_window = ts.tv_sec;
		c->rate_count = 0;
	}
	return ++c->rate_count <= VU_MAX_MSGS_PER_S;
}

/*
 * Read what is available of the current message. 1: complete, 2: more of it
 * arrived (read again: an EOF may follow), 0: nothing to read now, <0: error.
 */
static int conn_recv(struct vu_conn *c)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
	size_t want = c->got < sizeof(c->msg.hdr) ? sizeof(c->msg.hdr) : sizeof(c->msg.hdr) + c->msg.hdr.size;
	struct iovec iov = { (uint8_t *)&c->msg + c->got, want - c->got };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n;

	n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		unsigned k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (unsigned i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (c->nfds < VHOST_USER_MAX_FDS)
				c->fds[c->nfds++] = fd;
			else
				close(fd);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		return -EMSGSIZE;
	if (n == 0)
		return -ECONNRESET;
	c->got += n;
	if (c->got == sizeof(c->msg.hdr)) {
		if ((c->msg.hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION)
			return -EPROTO;
		if (c->msg.hdr.size > sizeof(c->msg.p))
			return -EMSGSIZE;
	}
	return c->got >= sizeof(c->msg.hdr) && c->got == sizeof(c->msg.hdr) + c->msg.hdr.size ? 1 : 2;
}

static void on_conn(void *opaque, uint32_t events)
{
	struct vu_conn *c = opaque;

	/*
	 * At most a few dozen messages per wake-up, so one busy front-end
	 * cannot keep the control loop from every other connection.
	 */
	for (int budget = 64; budget > 0; budget--) {
		const char *why = NULL;
		unsigned req;
		int ret = conn_recv(c);

		if (ret == 0)
			break;
		if (ret == 2)
			continue;
		if (!msg_rate_ok(c)) {
			umdev_err("%s: more than %u vhost-user messages in a second: a flood, not a "
				  "front-end", c->name, VU_MAX_MSGS_PER_S);
			conn_close(c, "message flood");
			return;
		}
		if (ret < 0) {
			if (ret == -ECONNRESET)
				conn_close(c, NULL);
			else {
				umdev_err("%s: bad vhost-user message framing: %s", c->name,
					  ret == -EMSGSIZE ? "oversized payload or too many fds" :
					  ret == -EPROTO ? "wrong protocol version" : strerror(-ret));
				conn_close(c, "protocol error");
			}
			return;
		}
		req = c->msg.hdr.request;
		ret = umdev_vu_msg_check(req, c->msg.hdr.size, c->nfds,
					 c->msg.hdr.size >= 8 ? c->msg.p.u64 : 0, &why);
		if (ret == 0)
			ret = vu_handle(c, &c->msg, c->fds, c->nfds);
		else
			umdev_err_rl(&c->rl, "%s: refusing %s (%u): %s", c->name,
				     umdev_vu_request_name(req), req, why);
		/* Handlers take the fds they keep (set to -1); close the rest. */
		for (unsigned i = 0; i < c->nfds; i++)
			if (c->fds[i] >= 0)
				close(c->fds[i]);
		c->nfds = 0;
		c->got = 0;
		if (ret < 0) {
			conn_close(c, c->send_failed ? "not reading its replies" : "protocol error");
			return;
		}
	}
	if (events & (EPOLLHUP | EPOLLERR) && !(events & EPOLLIN))
		conn_close(c, NULL);
}

/*
 * The front-end shrank memory it gave us (guest RAM or the inflight region)
 * and a thread touched what is gone: the guard replaced it with zero pages,
 * so nothing this device reads or writes means anything any more. Fail it
 * and drop the front-end; a new connection starts from scratch.
 */
static void on_mem_fault(void *opaque)
{
	struct vu_conn *c = opaque;

	umdev_err("%s: the front-end took away guest memory it had given us (file shrunk "
		  "under the mapping): device failed, disconnecting it", c->name);
	conn_close(c, "guest memory fault");
}

/* Serve @fd (connected, non-blocking) as the connection. The fd is consumed. */
static int conn_adopt(umdev_vu_server *s, int fd)
{
	struct vu_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->s = s;
	c->fd = fd;
	snprintf(c->name, sizeof(c->name), "%s", s->vdev->name);
	if (vu_conn_init_state(c) < 0 ||
	    umdev_loop_add_fd(s->ctl, fd, EPOLLIN | EPOLLRDHUP, on_conn, c) < 0) {
		umdev_err("%s: cannot set up a new connection", c->name);
		vu_conn_fini_state(c);
		close(fd);
		free(c);
		return -ENOMEM;
	}
	umdev_as_set_fault_cb(c->as, on_mem_fault, c);
	s->conn = c;
	umdev_info("%s: vhost-user front-end connected", c->name);
	return 0;
}

static void on_listen(void *opaque, uint32_t events)
{
	umdev_vu_server *s = opaque;
	int fd = accept4(s->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/*
	 * A front-end that hangs up and reconnects at once can have its new
	 * connection seen before the old one's EOF: read the old one first, so
	 * a connection that is already gone is closed rather than in the way.
	 */
	if (s->conn)
		on_conn(s->conn, EPOLLIN);
	if (s->conn) {
		umdev_warn_rl(&s->rl, "%s: refusing a second vhost-user connection (one front-end "
			      "at a time)", s->vdev->name);
		close(fd);
		return;
	}
	(void)conn_adopt(s, fd);
}

/* Is @fd a listening socket? (Launchers pass either kind with --fd.) */
static bool is_listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

umdev_vu_server *umdev_vu_server_new(struct umdev_virtio_dev *vdev, umdev_loop *ctl,
				     const char *path, int listen_fd, int *err)
{
	umdev_vu_server *s = calloc(1, sizeof(*s));
	int ret;

	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	s->vdev = vdev;
	s->ctl = ctl;
	s->listener.fd = -1;
	if (listen_fd >= 0 && !is_listening(listen_fd)) {
		/*
		 * A connected socket (one end of a socketpair from the launcher):
		 * serve it as the one connection; when it hangs up there is
		 * nothing to listen on, and the device waits to be removed.
		 */
		int fl = fcntl(listen_fd, F_GETFL);
		int cfd;

		if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			ret = -errno;
			goto fail;
		}
		/* Adopt a dup: on failure the caller still owns (and closes) its fd. */
		cfd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 0);
		if (cfd < 0) {
			ret = -errno;
			goto fail;
		}
		ret = conn_adopt(s, cfd);
		if (ret < 0)
			goto fail;
		close(listen_fd);
		return s;
	}
	ret = umdev_listener_open(&s->listener, ctl, path, listen_fd, on_listen, s);
	if (ret < 0)
		goto fail;
	return s;
fail:
	free(s);
	*err = ret;
	return NULL;
}

bool umdev_vu_server_connected(const umdev_vu_server *s)
{
	return s->conn != NULL;
}

void umdev_vu_server_quiesce(umdev_vu_server *s)
{
	if (s->conn)
		conn_close(s->conn, "back-end shutting down");
}

void umdev_vu_server_free(umdev_vu_server *s)
{
	if (!s)
		return;
	umdev_vu_server_quiesce(s);
	umdev_listener_close(&s->listener, s->ctl);
	free(s);
}
