/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio-user server: the listening socket, the one client connection, message
 * framing and the server-to-client DMA path.
 *
 * Framing is incremental on a non-blocking socket: the 16-byte header first,
 * then a body buffer of exactly the announced size (refused above
 * VFU_MAX_MSG), so a client that sends half a message cannot stall the
 * control loop, and a large REGION_WRITE is gathered across wakeups.
 *
 * Output never waits for the client: a reply goes straight to the socket
 * when nothing is queued before it and the socket takes it; what it does not
 * take is copied (fds dup()ed) to the connection's output queue and sent on
 * EPOLLOUT. A client that lets more than VFU_OUTQ_MAX bytes pile up is not
 * reading and is dropped, so one stuck client costs the control loop (and
 * every other device on it) nothing.
 *
 * DMA_READ/DMA_WRITE for memory the client shared without an fd are
 * synchronous on the control thread: we send the command and read the
 * socket until its reply arrives (bounded by VFU_IO_TIMEOUT_MS). Commands
 * the client pipelines meanwhile are stashed and handled afterwards, in
 * order, so nothing is lost or reordered.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include "umdev/proto/pci_regs.h"
#include "util/sock.h"
#include "vfu_internal.h"

void vfu_msg_release(struct vfu_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
	free(m->body);
	m->body = NULL;
	m->len = 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Mark the connection for closing once the current handler returns. */
static void conn_kill(struct vfu_conn *c, const char *why)
{
	if (!c->dead)
		c->drop_why = why;
	c->dead = true;
}

static void out_free(struct vfu_out *o)
{
	for (unsigned i = 0; i < o->nfds; i++)
		close(o->fds[i]);
	free(o);
}

static void outq_free_all(struct vfu_conn *c)
{
	while (c->outq) {
		struct vfu_out *o = c->outq;

		c->outq = o->next;
		out_free(o);
	}
	c->outq_tail = NULL;
	c->outq_bytes = 0;
}

/* Watch for EPOLLOUT exactly while output is queued. */
static void arm_epollout(struct vfu_conn *c, bool on)
{
	uint32_t ev = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0);

	if (c->epollout == on || !c->s->ctl)
		return;
	if (umdev_loop_mod_fd(c->s->ctl, c->fd, ev) < 0) {
		conn_kill(c, "cannot watch the socket");
		return;
	}
	c->epollout = on;
}

/*
 * One non-blocking sendmsg of @iov (fds with the first byte). Returns the
 * bytes taken (0 when the socket is full) or -errno.
 */
static ssize_t send_some(struct vfu_conn *c, struct iovec *iov, unsigned niov, const int *fds,
			 unsigned nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * UMDEV_VFU_MAX_MSG_FDS)];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = niov };

	if (umdev_msg_attach_fds(&mh, cbuf, sizeof(cbuf), fds, nfds) < 0)
		return -EINVAL;
	for (;;) {
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? 0 : -errno;
	}
}

/* Send what the socket takes of the output queue. 0, or -errno (connection dead). */
static int outq_flush(struct vfu_conn *c)
{
	while (c->outq) {
		struct vfu_out *o = c->outq;
		struct iovec iov = { o->data + o->off, o->len - o->off };
		ssize_t n = send_some(c, &iov, 1, o->fds, o->nfds);

		if (n < 0) {
			conn_kill(c, "socket error");
			return (int)n;
		}
		if (n == 0)
			break;
		for (unsigned i = 0; i < o->nfds; i++)
			close(o->fds[i]);
		o->nfds = 0;
		o->off += (size_t)n;
		c->outq_bytes -= (size_t)n;
		if (o->off < o->len)
			break; /* the socket is full again */
		c->outq = o->next;
		if (!c->outq)
			c->outq_tail = NULL;
		free(o);
	}
	arm_epollout(c, c->outq != NULL);
	return 0;
}

/*
 * Send one message (@iov, fds with its first byte) without waiting: what
 * the socket does not take now is queued, with dups of the fds if they did
 * not go yet. The caller keeps its fds either way.
 */
static int conn_send(struct vfu_conn *c, struct iovec *iov, unsigned niov, const int *fds,
		     unsigned nfds)
{
	size_t total = 0, sent = 0, left, o = 0;
	struct vfu_out *out;

	if (c->fd < 0)
		return 0; /* fed connection: replies go nowhere */
	if (c->dead)
		return -ECONNRESET;
	if (nfds > UMDEV_VFU_MAX_MSG_FDS)
		return -EINVAL;
	for (unsigned i = 0; i < niov; i++)
		total += iov[i].iov_len;
	if (!c->outq) {
		ssize_t n = send_some(c, iov, niov, fds, nfds);

		if (n < 0) {
			conn_kill(c, "socket error");
			return (int)n;
		}
		sent = (size_t)n;
		if (sent == total)
			return 0;
	}
	left = total - sent;
	if (c->outq_bytes + left > VFU_OUTQ_MAX) {
		vfu_err(c, "%s: the vfio-user client does not read: %zu bytes waiting for it, "
			   "dropping it", c->s->name, c->outq_bytes + left);
		conn_kill(c, "client stopped reading");
		return -ENOBUFS;
	}
	out = malloc(sizeof(*out) + left);
	if (!out) {
		conn_kill(c, "out of memory");
		return -ENOMEM;
	}
	out->next = NULL;
	out->len = left;
	out->off = 0;
	out->nfds = 0;
	for (unsigned i = 0; i < niov; i++) {
		const uint8_t *b = iov[i].iov_base;
		size_t l = iov[i].iov_len;

		if (sent >= l) {
			sent -= l;
			continue;
		}
		memcpy(out->data + o, b + sent, l - sent);
		o += l - sent;
		sent = 0;
	}
	/* Nothing sent yet (sent was 0 and stays so): the fds go with the queued copy. */
	if (left == total) {
		for (unsigned i = 0; i < nfds; i++) {
			int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);

			if (d < 0) {
				int err = -errno;

				out_free(out);
				conn_kill(c, "cannot keep an fd for a queued reply");
				return err;
			}
			out->fds[out->nfds++] = d;
		}
	}
	if (c->outq_tail)
		c->outq_tail->next = out;
	else
		c->outq = out;
	c->outq_tail = out;
	c->outq_bytes += left;
	arm_epollout(c, true);
	return c->dead ? -ECONNRESET : 0;
}

int vfu_reply(struct vfu_conn *c, const struct vfu_msg *m, const void *body, size_t len,
	      const int *fds, unsigned nfds)
{
	struct vfio_user_header h = {
		.msg_id = m->hdr.msg_id,
		.cmd = m->hdr.cmd,
		.msg_size = (uint32_t)(sizeof(h) + len),
		.flags = VFIO_USER_F_TYPE_REPLY,
	};
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)body, len } };

	if (m->hdr.flags & VFIO_USER_F_NO_REPLY)
		return 0;
	return conn_send(c, iov, len ? 2 : 1, fds, nfds);
}

int vfu_reply_err(struct vfu_conn *c, const struct vfu_msg *m, int err)
{
	struct vfio_user_header h = {
		.msg_id = m->hdr.msg_id,
		.cmd = m->hdr.cmd,
		.msg_size = sizeof(h),
		.flags = VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR,
		.error_no = (uint32_t)err,
	};
	struct iovec iov = { &h, sizeof(h) };

	if (m->hdr.flags & VFIO_USER_F_NO_REPLY)
		return 0;
	return conn_send(c, &iov, 1, NULL, 0);
}

/*
 * Read what is available of the current message. 1: complete (in c->rx),
 * 2: more of it arrived (read again: the rest or an EOF may follow), 0:
 * nothing to read now, <0: error (-ECONNRESET on EOF, -EMSGSIZE/-EPROTO
 * framing).
 */
static int conn_recv(struct vfu_conn *c)
{
	char cbuf[CMSG_SPACE(sizeof(int) * UMDEV_VFU_MAX_MSG_FDS)];
	const size_t hs = sizeof(struct vfio_user_header);
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;

	if (c->got < hs) {
		iov.iov_base = (uint8_t *)&c->rx.hdr + c->got;
		iov.iov_len = hs - c->got;
	} else {
		iov.iov_base = c->rx.body + (c->got - hs);
		iov.iov_len = c->rx.len - (c->got - hs);
	}
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
			if (c->rx.nfds < UMDEV_VFU_MAX_MSG_FDS)
				c->rx.fds[c->rx.nfds++] = fd;
			else
				close(fd);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		return -EMSGSIZE;
	if (n == 0)
		return -ECONNRESET;
	c->got += n;
	if (c->got == hs) {
		const char *why = NULL;
		int ret = vfu_check_header(&c->rx.hdr, &why);

		if (ret < 0) {
			vfu_err(c, "%s: refusing message (id %u, command %u, size %u): %s",
				c->s->name, c->rx.hdr.msg_id, c->rx.hdr.cmd, c->rx.hdr.msg_size, why);
			return ret;
		}
		c->rx.len = c->rx.hdr.msg_size - hs;
		if (c->rx.len) {
			c->rx.body = malloc(c->rx.len);
			if (!c->rx.body)
				return -ENOMEM;
		}
	}
	/* 2: more arrived but not all of it; read again (an EOF may follow). */
	return c->got >= hs && c->got == hs + c->rx.len ? 1 : 2;
}

/* Hand the completed c->rx to the caller and start a fresh one. */
static struct vfu_msg *take_rx(struct vfu_conn *c)
{
	struct vfu_msg *m = malloc(sizeof(*m));

	if (!m)
		return NULL;
	*m = c->rx;
	m->next = NULL;
	memset(&c->rx, 0, sizeof(c->rx));
	c->got = 0;
	return m;
}

static void stash_free_all(struct vfu_conn *c)
{
	while (c->stash) {
		struct vfu_msg *m = c->stash;

		c->stash = m->next;
		vfu_msg_release(m);
		free(m);
	}
	c->stash_tail = NULL;
	c->nstash = 0;
}

static void conn_free(struct vfu_conn *c)
{
	vfu_conn_drop_dma(c);
	free(c->dma);
	umdev_as_free(c->as);
	stash_free_all(c);
	outq_free_all(c);
	vfu_msg_release(&c->rx);
	free(c);
}

/* Run the work devices deferred while the last message was handled. */
static void run_deferred(umdev_vfu_server *s)
{
	/* Work may defer more work; a bound keeps a looping device from hanging us. */
	for (unsigned budget = 1024; s->deferred && budget; budget--) {
		struct vfu_deferred *w = s->deferred;

		s->deferred = w->next;
		if (!s->deferred)
			s->deferred_tail = NULL;
		w->fn(w->arg);
		free(w);
	}
}

static void drop_deferred(umdev_vfu_server *s)
{
	while (s->deferred) {
		struct vfu_deferred *w = s->deferred;

		s->deferred = w->next;
		free(w);
	}
	s->deferred_tail = NULL;
}

static int dma_defer(void *opaque, void (*fn)(void *arg), void *arg)
{
	umdev_vfu_server *s = opaque;
	struct vfu_deferred *w;

	if (!s->conn)
		return -ENOTCONN;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fn = fn;
	w->arg = arg;
	if (s->deferred_tail)
		s->deferred_tail->next = w;
	else
		s->deferred = w;
	s->deferred_tail = w;
	return 0;
}

/*
 * The client is gone. Spec: its mappings and eventfds go, device state
 * stays. Every window is quiesced (ops->dma_unmap) before the device loses
 * its DMA ops, and those before the address space is freed.
 */
static void detach(umdev_vfu_server *s, struct vfu_conn *c)
{
	vfu_conn_drop_dma(c);
	umdev_pci_attach(s->pci, NULL, NULL);
	umdev_irq_drop_fds(umdev_pci_irq(s->pci));
	conn_free(c);
	s->conn = NULL;
}

static void conn_close(struct vfu_conn *c, const char *why)
{
	umdev_vfu_server *s = c->s;

	if (c->drop_why)
		why = c->drop_why;
	vfu_info(c, "%s: vfio-user client disconnected%s%s", s->name, why ? ": " : "",
		 why ? why : "");
	umdev_loop_del_fd(s->ctl, c->fd);
	close(c->fd);
	c->fd = -1;
	/* Deferred device work finishes first; its DMA through messages fails now. */
	c->dead = true;
	run_deferred(s);
	detach(s, c);
}

/* Handle one message; owns @m. Returns VFU_CLOSE to drop the connection. */
static int handle(struct vfu_conn *c, struct vfu_msg *m)
{
	int ret = vfu_dispatch(c, m);

	vfu_msg_release(m);
	free(m);
	return ret;
}

static void on_conn(void *opaque, uint32_t events)
{
	struct vfu_conn *c = opaque;

	if (c->outq && outq_flush(c) < 0) {
		conn_close(c, NULL);
		return;
	}
	for (int budget = 64; budget > 0; budget--) {
		struct vfu_msg *m;
		int ret;

		if (c->stash) {
			m = c->stash;
			c->stash = m->next;
			if (!c->stash)
				c->stash_tail = NULL;
			c->nstash--;
		} else {
			ret = conn_recv(c);
			if (ret == 0)
				break;
			if (ret == 2)
				continue;
			if (ret < 0) {
				conn_close(c, ret == -ECONNRESET ? NULL : "protocol error");
				return;
			}
			m = take_rx(c);
			if (!m) {
				conn_close(c, "out of memory");
				return;
			}
		}
		ret = handle(c, m);
		if (ret != VFU_CLOSE && !c->dead)
			run_deferred(c->s);
		if (ret == VFU_CLOSE || c->dead) {
			conn_close(c, ret == VFU_CLOSE ? "protocol error" : NULL);
			return;
		}
	}
	if (c->stash) {
		/* Budget spent with stashed commands left: come back without waiting for input. */
		on_conn(c, 0);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR) && !(events & EPOLLIN))
		conn_close(c, NULL);
}

/* ---- server-to-client DMA ---- */

static struct vfu_dma *find_dma(struct vfu_conn *c, uint64_t iova, size_t len)
{
	for (unsigned i = 0; i < c->ndma; i++) {
		struct vfu_dma *d = &c->dma[i];

		if (iova >= d->addr && len <= d->size && iova - d->addr <= d->size - len)
			return d;
	}
	return NULL;
}

/* Wait for the reply to @id; stash commands that arrive first. Returns the reply. */
static struct vfu_msg *wait_reply(struct vfu_conn *c, uint16_t id, uint16_t cmd, int *err)
{
	int64_t deadline = now_ms() + VFU_IO_TIMEOUT_MS;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		struct vfu_msg *m;
		int ret;

		if (left <= 0) {
			*err = -ETIMEDOUT;
			conn_kill(c, "no reply to a DMA command"); /* the stream is out of step now */
			return NULL;
		}
		/* Our command may still sit in the output queue behind earlier replies. */
		if (c->outq && outq_flush(c) < 0) {
			*err = -ECONNRESET;
			return NULL;
		}
		ret = conn_recv(c);
		if (ret < 0) {
			*err = ret;
			conn_kill(c, ret == -ECONNRESET ? NULL : "protocol error");
			return NULL;
		}
		if (ret == 2)
			continue; /* part of a message: read on */
		if (ret == 0) {
			if (c->outq)
				p.events |= POLLOUT;
			poll(&p, 1, (int)left);
			continue;
		}
		m = take_rx(c);
		if (!m) {
			*err = -ENOMEM;
			return NULL;
		}
		if ((m->hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY) {
			if (m->hdr.msg_id == id && m->hdr.cmd == cmd)
				return m;
			vfu_warn(c, "%s: dropping unexpected reply id %u", c->s->name, m->hdr.msg_id);
			vfu_msg_release(m);
			free(m);
			continue;
		}
		if (c->nstash >= VFU_MAX_STASH) {
			vfu_msg_release(m);
			free(m);
			*err = -ENOBUFS;
			vfu_err(c, "%s: more than %u commands while a DMA reply is awaited, dropping "
				   "the client", c->s->name, VFU_MAX_STASH);
			conn_kill(c, "too many commands during DMA");
			return NULL;
		}
		if (c->stash_tail)
			c->stash_tail->next = m;
		else
			c->stash = m;
		c->stash_tail = m;
		c->nstash++;
	}
}

/*
 * One DMA_READ/DMA_WRITE. Two layouts exist: the spec's (64-bit count, data
 * at byte 16 of the payload) and QEMU's (through at least 10.2: a 32-bit
 * count, data at byte 12, 4 bytes of padding at the end, so the sizes
 * match). The request is the same for DMA_READ either way; DMA_WRITE data
 * and DMA_READ reply data sit where the client's layout puts them.
 */
static int dma_chunk(struct vfu_conn *c, uint64_t iova, uint8_t *buf, size_t len, bool write)
{
	const size_t data_off = c->dma_count32 ? 12 : 16;
	uint8_t head[16] = { 0 }, pad[4] = { 0 };
	uint16_t cmd = write ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ;
	uint64_t count = len;
	struct vfio_user_header h = {
		.msg_id = c->next_id++,
		.cmd = cmd,
		.msg_size = (uint32_t)(sizeof(h) + sizeof(head) + (write ? len : 0)),
		.flags = VFIO_USER_F_TYPE_COMMAND,
	};
	struct iovec iov[4] = { { &h, sizeof(h) }, { head, sizeof(head) }, { buf, len },
				{ pad, sizeof(pad) } };
	unsigned niov = 2;
	struct vfu_msg *r;
	int ret, err = 0;

	memcpy(head, &iova, 8);
	memcpy(head + 8, &count, c->dma_count32 ? 4 : 8);
	if (write && c->dma_count32) {
		iov[1].iov_len = 12;
		niov = 4;
	} else if (write) {
		niov = 3;
	}
	ret = conn_send(c, iov, niov, NULL, 0);
	if (ret < 0)
		return ret;
	umdev_dbg("%s: %s [0x%llx, +%zu) sent to the client", c->s->name,
		  umdev_vfu_command_name(cmd), (unsigned long long)iova, len);
	r = wait_reply(c, h.msg_id, cmd, &err);
	if (!r)
		return err;
	if (r->hdr.flags & VFIO_USER_F_ERROR) {
		ret = r->hdr.error_no ? -(int)r->hdr.error_no : -EIO;
		if (ret < -4095)
			ret = -EIO;
	} else if (write) {
		/* The spec's reply echoes address and count; QEMU's is the bare header. */
		ret = 0;
	} else if (r->len < data_off || r->len - data_off < len) {
		ret = -EIO;
	} else {
		memcpy(buf, r->body + data_off, len);
		ret = 0;
	}
	vfu_msg_release(r);
	free(r);
	return ret;
}

static int dma_rw_one(umdev_vfu_server *s, uint64_t iova, void *buf, size_t len, bool write);

/* Handle what the client sent while we waited for a DMA reply. Control loop. */
static void run_stash(struct umdev_loop_deferred *d)
{
	umdev_vfu_server *s = (umdev_vfu_server *)((char *)d - offsetof(umdev_vfu_server, stash_d));

	if (s->conn && s->conn->stash && !s->conn->dead)
		on_conn(s->conn, 0);
}

static int dma_rw(void *opaque, uint64_t iova, void *buf, size_t len, bool write)
{
	umdev_vfu_server *s = opaque;
	int ret = dma_rw_one(s, iova, buf, len, write);

	/*
	 * Inside a message handler on_conn() goes on with the stash itself;
	 * elsewhere nothing would until the client sent more. Either way,
	 * look at it once this loop iteration is done.
	 */
	if (s->ctl && umdev_loop_in_thread(s->ctl) && s->conn && s->conn->stash)
		umdev_loop_defer(s->ctl, &s->stash_d);
	return ret;
}

static int dma_rw_one(umdev_vfu_server *s, uint64_t iova, void *buf, size_t len, bool write)
{
	struct vfu_conn *c = s->conn;
	struct vfu_dma *d;
	uint32_t chunk;

	if (!c || c->fd < 0 || c->dead)
		return -ENOTCONN;
	if (s->ctl && !umdev_loop_in_thread(s->ctl))
		return -EWOULDBLOCK;
	d = find_dma(c, iova, len);
	if (!d || d->has_fd)
		return -EFAULT;
	if (!(d->flags & (write ? VFIO_USER_F_DMA_REGION_WRITE : VFIO_USER_F_DMA_REGION_READ)))
		return -EFAULT;
	chunk = c->peer_max_xfer < UMDEV_VFU_MAX_DATA_XFER ? c->peer_max_xfer :
							     UMDEV_VFU_MAX_DATA_XFER;
	for (size_t done = 0; done < len;) {
		size_t n = len - done < chunk ? len - done : chunk;
		int ret = dma_chunk(c, iova + done, (uint8_t *)buf + done, n, write);

		if (ret < 0)
			return ret;
		done += n;
	}
	return 0;
}

static umdev_as_map *dma_get_map(void *opaque)
{
	umdev_vfu_server *s = opaque;

	return umdev_as_get_map(s->conn->as);
}

static int dma_read(void *opaque, uint64_t iova, void *buf, size_t len)
{
	return dma_rw(opaque, iova, buf, len, false);
}

static int dma_write(void *opaque, uint64_t iova, const void *buf, size_t len)
{
	return dma_rw(opaque, iova, (void *)buf, len, true);
}

const struct umdev_pci_dma_ops vfu_dma_ops = {
	.get_map = dma_get_map,
	.read = dma_read,
	.write = dma_write,
	.defer = dma_defer,
};

/* ---- connections ---- */

/*
 * A client opens the device. Linux vfio-pci enables a device when it is
 * opened (pci_enable_device() sets Memory Space Enable), so drivers written
 * for kernel VFIO read BAR0 without touching the command register. Each
 * connection therefore starts with Memory Space Enable set, as a freshly
 * opened VFIO device has it; once the client or its guest clears the bit,
 * BAR accesses are refused again until it is set (pci.c).
 */
static void open_device(umdev_vfu_server *s)
{
	uint16_t cmd;

	/*
	 * Kernel vfio-pci also resets the function when it is opened (and when
	 * it is closed): a new client must not find a controller still enabled
	 * with queues in the last client's memory. Power-on state, then MSE.
	 */
	umdev_pci_reset(s->pci);
	cmd = umdev_pci_command(s->pci);
	if (cmd & UMDEV_PCI_CMD_MEMORY)
		return;
	cmd |= UMDEV_PCI_CMD_MEMORY;
	if (umdev_pci_cfg_access(s->pci, UMDEV_PCI_COMMAND, &cmd, sizeof(cmd), true) < 0)
		umdev_warn("%s: cannot enable memory space for the new client", s->name);
}

/*
 * The client shrank memory it had mapped for DMA and a thread touched what
 * is gone: the guard (src/mem/guard.c) put zero pages there, so the device's
 * view of the client's memory means nothing any more. Drop the client; the
 * device is reset for the next one.
 */
static void on_mem_fault(void *opaque)
{
	struct vfu_conn *c = opaque;

	umdev_err("%s: the client took away DMA memory it had mapped (file shrunk under the "
		  "mapping): device failed, disconnecting it", c->s->name);
	conn_close(c, "DMA memory fault");
}

static struct vfu_conn *conn_new(umdev_vfu_server *s, int fd)
{
	struct vfu_conn *c = calloc(1, sizeof(*c));
	int err = 0;

	if (!c)
		return NULL;
	c->s = s;
	c->fd = fd;
	c->peer_max_fds = VFIO_USER_DEF_MAX_MSG_FDS;
	c->peer_max_xfer = VFIO_USER_DEF_MAX_DATA_XFER;
	c->as = umdev_as_new(&err);
	if (!c->as) {
		free(c);
		return NULL;
	}
	umdev_as_set_fault_cb(c->as, on_mem_fault, c);
	return c;
}

static void on_listen(void *opaque, uint32_t events)
{
	umdev_vfu_server *s = opaque;
	struct vfu_conn *c;
	int fd = accept4(s->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* A client that reconnects at once: notice the old connection's EOF first. */
	if (s->conn)
		on_conn(s->conn, EPOLLIN);
	if (s->conn) {
		umdev_warn_rl(&s->rl, "%s: refusing a second vfio-user client (one at a time)",
			      s->name);
		close(fd);
		return;
	}
	c = conn_new(s, fd);
	if (!c || umdev_loop_add_fd(s->ctl, fd, EPOLLIN | EPOLLRDHUP, on_conn, c) < 0) {
		umdev_err_rl(&s->rl, "%s: cannot set up a new connection", s->name);
		if (c)
			conn_free(c);
		close(fd);
		return;
	}
	s->conn = c;
	umdev_pci_attach(s->pci, &vfu_dma_ops, s);
	open_device(s);
	umdev_log_rl(&s->rl, UMDEV_LOG_INFO, "%s: vfio-user client connected", s->name);
}

umdev_vfu_server *umdev_vfu_server_new(umdev_pci_dev *pci, umdev_loop *ctl, const char *path,
				       int listen_fd, int *err)
{
	umdev_vfu_server *s = calloc(1, sizeof(*s));
	int ret = 0;

	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	s->pci = pci;
	s->ctl = ctl;
	s->stash_d.fn = run_stash;
	s->listener.fd = -1;
	snprintf(s->name, sizeof(s->name), "%s", umdev_pci_name(pci));
	if (!ctl)
		return s;
	ret = umdev_listener_open(&s->listener, ctl, path, listen_fd, on_listen, s);
	if (ret < 0)
		goto fail;
	return s;
fail:
	free(s);
	*err = ret;
	return NULL;
}

bool umdev_vfu_server_connected(const umdev_vfu_server *s)
{
	return s->conn != NULL;
}

void umdev_vfu_server_free(umdev_vfu_server *s)
{
	if (!s)
		return;
	if (s->conn)
		conn_close(s->conn, "server shutting down");
	drop_deferred(s);
	if (s->ctl) {
		umdev_loop_cancel(s->ctl, &s->stash_d);
		umdev_listener_close(&s->listener, s->ctl);
	}
	free(s);
}

int umdev_vfu_server_feed(umdev_vfu_server *s, const void *buf, size_t len)
{
	const size_t hs = sizeof(struct vfio_user_header);
	const uint8_t *p = buf;
	struct vfu_conn *c;
	size_t off = 0;
	int handled = 0, ret = 0;

	if (s->conn)
		return -EBUSY;
	c = conn_new(s, -1);
	if (!c)
		return -ENOMEM;
	s->conn = c;
	umdev_pci_attach(s->pci, &vfu_dma_ops, s);
	open_device(s);
	while (len - off >= hs) {
		struct vfu_msg *m = calloc(1, sizeof(*m));
		const char *why;

		if (!m) {
			ret = -ENOMEM;
			break;
		}
		memcpy(&m->hdr, p + off, hs);
		ret = vfu_check_header(&m->hdr, &why);
		if (ret < 0 || m->hdr.msg_size > len - off) {
			free(m);
			ret = ret < 0 ? ret : -EPROTO;
			break;
		}
		m->len = m->hdr.msg_size - hs;
		m->body = m->len ? malloc(m->len) : NULL;
		if (m->len && !m->body) {
			free(m);
			ret = -ENOMEM;
			break;
		}
		if (m->len)
			memcpy(m->body, p + off + hs, m->len);
		off += m->hdr.msg_size;
		handled++;
		if (handle(c, m) == VFU_CLOSE) {
			ret = -EPROTO;
			break;
		}
		run_deferred(s);
	}
	/* Same clean-up as a real disconnect. */
	c->dead = true;
	run_deferred(s);
	detach(s, c);
	return ret < 0 ? ret : handled;
}
