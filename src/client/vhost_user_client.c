/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user front-end and virtio-blk driver for tests and benchmarks.
 * Written from QEMU's docs/interop/vhost-user.rst and the virtio 1.x spec;
 * see vhost_user_client.h for the concepts.
 *
 * The back-end is the party under test, so everything it sends back is
 * checked (reply flag, request, sizes, heads) and reported as -EPROTO
 * rather than trusted.
 */
#include "client/vhost_user_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/shm.h"

#define PAGE_SIZE_4K 4096ull
#define BLK_SLOT_BYTES 32u /* 16-byte header, status at +16, padding */
#define BLK_MAX_DATA_BUFS 254u

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* ---- connection and raw messages ---------------------------------------- */

static void vuc_reset(struct umdev_vuc *c)
{
	memset(c, 0, sizeof(*c));
	c->sock = -1;
	c->timeout_ms = 5000;
	c->inflight_fd = -1;
	for (unsigned i = 0; i < UMDEV_VUC_MAX_REGIONS; i++)
		c->mem.regions[i].fd = -1;
	for (unsigned i = 0; i < UMDEV_VUC_MAX_QUEUES; i++) {
		c->vqs[i].kick_fd = -1;
		c->vqs[i].call_fd = -1;
	}
}

static int connect_sock(const char *path, int wait_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = now_ms() + wait_ms;
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		err = -errno;
		close(fd);
		/* The daemon may not have bound or listened yet. */
		if ((err != -ENOENT && err != -ECONNREFUSED) || now_ms() >= deadline)
			return err;
		usleep(10 * 1000);
	}
}

int umdev_vuc_connect(struct umdev_vuc *c, const char *path, int wait_ms)
{
	int fd;

	vuc_reset(c);
	fd = connect_sock(path, wait_ms);
	if (fd < 0)
		return fd;
	c->sock = fd;
	return 0;
}

int umdev_vuc_attach(struct umdev_vuc *c, int fd)
{
	if (fd < 0)
		return -EBADF;
	vuc_reset(c);
	c->sock = fd;
	return 0;
}

int umdev_vuc_reconnect(struct umdev_vuc *c, const char *path, int wait_ms)
{
	int fd;

	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
	c->features = c->acked_features = 0;
	c->protocol_features = c->acked_protocol_features = 0;
	c->use_reply_ack = false;
	for (unsigned i = 0; i < c->mem.nregions; i++)
		c->mem.regions[i].in_table = false;
	for (unsigned i = 0; i < UMDEV_VUC_MAX_QUEUES; i++)
		c->vqs[i].started = false;
	fd = connect_sock(path, wait_ms);
	if (fd < 0)
		return fd;
	c->sock = fd;
	return 0;
}

void umdev_vuc_close(struct umdev_vuc *c)
{
	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
	for (unsigned i = 0; i < UMDEV_VUC_MAX_QUEUES; i++) {
		struct umdev_vuc_vq *vq = &c->vqs[i];

		if (vq->kick_fd >= 0)
			close(vq->kick_fd);
		if (vq->call_fd >= 0)
			close(vq->call_fd);
		vq->kick_fd = vq->call_fd = -1;
		if (vq->ready)
			umdev_vqd_fini(&vq->drv);
		free(vq->slots);
		free(vq->free_slots);
		free(vq->head_slot);
		vq->slots = NULL;
		vq->free_slots = NULL;
		vq->head_slot = NULL;
		vq->ready = vq->started = false;
	}
	for (unsigned i = 0; i < c->mem.nregions; i++)
		if (c->mem.regions[i].fd >= 0)
			close(c->mem.regions[i].fd);
	if (c->mem.base)
		munmap(c->mem.base, c->mem.span);
	if (c->inflight_map)
		munmap(c->inflight_map, c->inflight.mmap_size);
	if (c->inflight_fd >= 0)
		close(c->inflight_fd);
	vuc_reset(c);
}

int umdev_vuc_send_raw(struct umdev_vuc *c, const void *buf, size_t len, const int *fds,
		       unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS * 4)];
		struct cmsghdr align;
	} ctl;
	const uint8_t *p = buf;
	bool first = true;

	if (nfds > VHOST_USER_MAX_FDS * 4)
		return -EINVAL;
	do {
		struct iovec iov = { .iov_base = (void *)p, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (first && nfds) {
			struct cmsghdr *cm;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
		}
		n = sendmsg(c->sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		first = false;
		p += n;
		len -= (size_t)n;
	} while (len > 0);
	return 0;
}

int umdev_vuc_send(struct umdev_vuc *c, uint32_t req, uint32_t flags, const void *payload,
		   uint32_t size, const int *fds, unsigned nfds)
{
	struct vhost_user_msg msg;

	if (size > sizeof(msg.p))
		return -EMSGSIZE;
	memset(&msg, 0, sizeof(msg));
	msg.hdr.request = req;
	msg.hdr.flags = flags | VHOST_USER_VERSION;
	msg.hdr.size = size;
	if (size)
		memcpy(&msg.p, payload, size);
	return umdev_vuc_send_raw(c, &msg, sizeof(msg.hdr) + size, fds, nfds);
}

/* Wait until the socket is readable or the deadline passes. */
static int wait_readable(int fd, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		int r;

		if (left < 0)
			left = 0;
		r = poll(&pfd, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Read exactly @len bytes; fds may only arrive with the first byte. */
static int recv_exact(struct umdev_vuc *c, void *buf, size_t len, int64_t deadline, int *fds,
		      unsigned *nfds, unsigned max_fds)
{
	uint8_t *p = buf;
	bool want_fds = nfds != NULL;

	while (len > 0) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS * 4)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = p, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;
		int r;

		r = wait_readable(c->sock, deadline);
		if (r)
			return r;
		if (want_fds) {
			mh.msg_control = ctl.buf;
			mh.msg_controllen = sizeof(ctl.buf);
		}
		n = recvmsg(c->sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		if (want_fds) {
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
				unsigned cnt;
				int got[VHOST_USER_MAX_FDS * 4];

				if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
					continue;
				cnt = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				if (cnt > VHOST_USER_MAX_FDS * 4)
					cnt = VHOST_USER_MAX_FDS * 4;
				memcpy(got, CMSG_DATA(cm), cnt * sizeof(int));
				for (unsigned i = 0; i < cnt; i++) {
					if (fds && *nfds < max_fds)
						fds[(*nfds)++] = got[i];
					else
						close(got[i]);
				}
			}
			want_fds = false;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int umdev_vuc_recv(struct umdev_vuc *c, struct vhost_user_msg *msg, int *fds, unsigned *nfds)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	unsigned max_fds = nfds ? *nfds : 0;
	unsigned dummy = 0;
	int r;

	if (!nfds)
		nfds = &dummy;
	*nfds = 0;
	memset(msg, 0, sizeof(*msg));
	r = recv_exact(c, &msg->hdr, sizeof(msg->hdr), deadline, fds, nfds, fds ? max_fds : 0);
	if (r)
		goto fail;
	if (msg->hdr.size > sizeof(msg->p)) {
		r = -EMSGSIZE;
		goto fail;
	}
	r = recv_exact(c, &msg->p, msg->hdr.size, deadline, NULL, NULL, 0);
	if (r)
		goto fail;
	return 0;
fail:
	if (fds)
		close_fds(fds, *nfds);
	*nfds = 0;
	return r;
}

int umdev_vuc_wait_reply(struct umdev_vuc *c, uint32_t req, struct vhost_user_msg *reply,
			 uint32_t max_size, uint32_t *size, int *fds, unsigned *nfds)
{
	int r = umdev_vuc_recv(c, reply, fds, nfds);

	if (r)
		return r;
	if ((reply->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    !(reply->hdr.flags & VHOST_USER_FLAG_REPLY) || reply->hdr.request != req ||
	    reply->hdr.size > max_size) {
		if (fds && nfds) {
			close_fds(fds, *nfds);
			*nfds = 0;
		}
		return -EPROTO;
	}
	if (size)
		*size = reply->hdr.size;
	return 0;
}

int umdev_vuc_request(struct umdev_vuc *c, uint32_t req, const void *payload, uint32_t size,
		      const int *fds, unsigned nfds)
{
	struct vhost_user_msg reply;
	uint32_t rsize;
	int r;

	r = umdev_vuc_send(c, req, c->use_reply_ack ? VHOST_USER_FLAG_NEED_REPLY : 0, payload,
			   size, fds, nfds);
	if (r || !c->use_reply_ack)
		return r;
	r = umdev_vuc_wait_reply(c, req, &reply, sizeof(uint64_t), &rsize, NULL, NULL);
	if (r)
		return r;
	if (rsize != sizeof(uint64_t))
		return -EPROTO;
	return reply.p.u64 ? -EIO : 0;
}

int umdev_vuc_get_u64(struct umdev_vuc *c, uint32_t req, uint64_t *val)
{
	struct vhost_user_msg reply;
	uint32_t rsize;
	int r;

	r = umdev_vuc_send(c, req, 0, NULL, 0, NULL, 0);
	if (r)
		return r;
	r = umdev_vuc_wait_reply(c, req, &reply, sizeof(uint64_t), &rsize, NULL, NULL);
	if (r)
		return r;
	if (rsize != sizeof(uint64_t))
		return -EPROTO;
	*val = reply.p.u64;
	return 0;
}

int umdev_vuc_is_closed(struct umdev_vuc *c, int wait_ms)
{
	int64_t deadline = now_ms() + wait_ms;
	char buf[4096];

	for (;;) {
		ssize_t n;

		if (wait_readable(c->sock, deadline))
			return 0;
		n = recv(c->sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			return 1;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return 1; /* ECONNRESET and friends */
	}
}

/* ---- negotiation --------------------------------------------------------- */

int umdev_vuc_negotiate(struct umdev_vuc *c, uint64_t want_protocol)
{
	int r;

	r = umdev_vuc_get_u64(c, VHOST_USER_GET_FEATURES, &c->features);
	if (r)
		return r;
	if (c->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
		uint64_t acked;

		r = umdev_vuc_get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES,
				      &c->protocol_features);
		if (r)
			return r;
		acked = c->protocol_features & want_protocol;
		r = umdev_vuc_send(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, &acked, sizeof(acked),
				   NULL, 0);
		if (r)
			return r;
		c->acked_protocol_features = acked;
		c->use_reply_ack = acked & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
	}
	return umdev_vuc_request(c, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
}

int umdev_vuc_set_features(struct umdev_vuc *c, uint64_t want)
{
	uint64_t val = (want & c->features) |
		       (c->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES));
	int r = umdev_vuc_request(c, VHOST_USER_SET_FEATURES, &val, sizeof(val), NULL, 0);

	if (!r)
		c->acked_features = val;
	return r;
}

int umdev_vuc_get_config(struct umdev_vuc *c, uint32_t offset, void *buf, uint32_t size)
{
	struct vhost_user_config cfg = { .offset = offset, .size = size, .flags = 0 };
	struct vhost_user_msg reply;
	uint32_t rsize;
	int r;

	if (size > VHOST_USER_MAX_CONFIG_SIZE)
		return -EINVAL;
	r = umdev_vuc_send(c, VHOST_USER_GET_CONFIG, 0, &cfg, VHOST_USER_CONFIG_HDR_SIZE + size,
			   NULL, 0);
	if (r)
		return r;
	r = umdev_vuc_wait_reply(c, VHOST_USER_GET_CONFIG, &reply, sizeof(reply.p.config), &rsize,
				 NULL, NULL);
	if (r)
		return r;
	/* The spec: a back-end signals failure with an empty payload. */
	if (rsize == 0)
		return -EIO;
	if (rsize != VHOST_USER_CONFIG_HDR_SIZE + size || reply.p.config.size != size)
		return -EPROTO;
	memcpy(buf, reply.p.config.payload, size);
	return 0;
}

/* ---- guest memory -------------------------------------------------------- */

int umdev_vuc_mem_create(struct umdev_vuc *c, const uint64_t *sizes, unsigned n,
			 uint64_t fd_offset)
{
	struct umdev_vuc_mem *m = &c->mem;
	uint64_t span = 0, uva_off = 0;
	void *base;

	if (m->base || n == 0 || n > UMDEV_VUC_MAX_REGIONS || fd_offset % PAGE_SIZE_4K)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (!sizes[i] || sizes[i] % PAGE_SIZE_4K)
			return -EINVAL;
		span += sizes[i];
	}
	/* Reserve the whole view first so regions land back to back. */
	base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	m->base = base;
	m->span = span;
	m->gpa_base = UMDEV_VUC_GPA_BASE;
	span = 0;
	for (unsigned i = 0; i < n; i++) {
		struct umdev_vuc_region *rg = &m->regions[i];
		void *p;

		rg->fd = memfd_create("umdev-guest-ram", MFD_CLOEXEC);
		if (rg->fd < 0)
			return -errno;
		m->nregions = i + 1;
		if (ftruncate(rg->fd, (off_t)(fd_offset + sizes[i])) < 0)
			return -errno;
		p = mmap(m->base + span, sizes[i], PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 rg->fd, (off_t)fd_offset);
		if (p == MAP_FAILED)
			return -errno;
		rg->gpa = m->gpa_base + span;
		rg->size = sizes[i];
		rg->fd_offset = fd_offset;
		rg->uva = UMDEV_VUC_UVA_BASE + uva_off;
		rg->alloc_next = 0;
		span += sizes[i];
		uva_off += sizes[i] + UMDEV_VUC_UVA_GAP;
	}
	return 0;
}

void umdev_vuc_region_desc(const struct umdev_vuc *c, unsigned region,
			   struct vhost_user_mem_region *out)
{
	const struct umdev_vuc_region *rg = &c->mem.regions[region];

	out->guest_phys_addr = rg->gpa;
	out->memory_size = rg->size;
	out->userspace_addr = rg->uva;
	out->mmap_offset = rg->fd_offset;
}

int umdev_vuc_set_mem_table(struct umdev_vuc *c, uint32_t mask)
{
	struct vhost_user_mem_table t;
	int fds[UMDEV_VUC_MAX_REGIONS];
	unsigned n = 0;
	int r;

	memset(&t, 0, sizeof(t));
	for (unsigned i = 0; i < c->mem.nregions; i++) {
		if (!(mask & (1u << i)))
			continue;
		umdev_vuc_region_desc(c, i, &t.regions[n]);
		fds[n++] = c->mem.regions[i].fd;
	}
	t.nregions = n;
	/* Like QEMU, send only the regions in use. */
	r = umdev_vuc_request(c, VHOST_USER_SET_MEM_TABLE, &t,
			      8 + n * (uint32_t)sizeof(struct vhost_user_mem_region), fds, n);
	if (r)
		return r;
	for (unsigned i = 0; i < c->mem.nregions; i++)
		c->mem.regions[i].in_table = mask & (1u << i);
	return 0;
}

int umdev_vuc_add_mem_reg(struct umdev_vuc *c, unsigned region)
{
	struct vhost_user_mem_reg reg = { .padding = 0 };
	int r;

	if (region >= c->mem.nregions)
		return -EINVAL;
	umdev_vuc_region_desc(c, region, &reg.region);
	r = umdev_vuc_request(c, VHOST_USER_ADD_MEM_REG, &reg, sizeof(reg),
			      &c->mem.regions[region].fd, 1);
	if (!r)
		c->mem.regions[region].in_table = true;
	return r;
}

int umdev_vuc_rem_mem_reg(struct umdev_vuc *c, unsigned region)
{
	struct vhost_user_mem_reg reg = { .padding = 0 };
	int r;

	if (region >= c->mem.nregions)
		return -EINVAL;
	umdev_vuc_region_desc(c, region, &reg.region);
	r = umdev_vuc_request(c, VHOST_USER_REM_MEM_REG, &reg, sizeof(reg), NULL, 0);
	if (!r)
		c->mem.regions[region].in_table = false;
	return r;
}

uint64_t umdev_vuc_alloc(struct umdev_vuc *c, unsigned region, uint64_t size, uint64_t align)
{
	struct umdev_vuc_region *rg;
	uint64_t off;

	if (region >= c->mem.nregions || !align || (align & (align - 1)))
		return 0;
	rg = &c->mem.regions[region];
	off = (rg->alloc_next + align - 1) & ~(align - 1);
	if (off > rg->size || size > rg->size - off)
		return 0;
	rg->alloc_next = off + size;
	return rg->gpa + off;
}

void *umdev_vuc_gpa_ptr(struct umdev_vuc *c, uint64_t gpa, uint64_t len)
{
	const struct umdev_vuc_mem *m = &c->mem;

	if (gpa < m->gpa_base || gpa - m->gpa_base > m->span || len > m->span - (gpa - m->gpa_base))
		return NULL;
	return m->base + (gpa - m->gpa_base);
}

uint64_t umdev_vuc_gpa_to_uva(const struct umdev_vuc *c, uint64_t gpa)
{
	for (unsigned i = 0; i < c->mem.nregions; i++) {
		const struct umdev_vuc_region *rg = &c->mem.regions[i];

		if (gpa >= rg->gpa && gpa - rg->gpa < rg->size)
			return rg->uva + (gpa - rg->gpa);
	}
	return 0;
}

/* ---- virtqueues ---------------------------------------------------------- */

int umdev_vuc_vq_init(struct umdev_vuc *c, unsigned idx, uint16_t size, bool with_blk_slots)
{
	struct umdev_vuc_vq *vq;
	bool event_idx = c->acked_features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	int r;

	if (idx >= UMDEV_VUC_MAX_QUEUES || !size || (size & (size - 1)))
		return -EINVAL;
	vq = &c->vqs[idx];
	if (vq->ready)
		return -EBUSY;
	vq->ring_gpa = umdev_vuc_alloc(c, 0, umdev_vqd_ring_bytes(size), PAGE_SIZE_4K);
	if (!vq->ring_gpa)
		return -ENOMEM;
	if (c->acked_features & (1ull << VIRTIO_F_RING_PACKED))
		r = umdev_vqd_init_packed(&vq->drv, c->mem.base, c->mem.gpa_base, c->mem.span,
					  vq->ring_gpa, size, event_idx);
	else
		r = umdev_vqd_init(&vq->drv, c->mem.base, c->mem.gpa_base, c->mem.span,
				   vq->ring_gpa, size, event_idx);
	if (r)
		return r;
	vq->size = size;
	vq->ready = true;
	if (idx + 1 > c->nqueues)
		c->nqueues = idx + 1;
	vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->kick_fd < 0 || vq->call_fd < 0)
		return -errno;
	if (!with_blk_slots)
		return 0;
	vq->slot_area_gpa = umdev_vuc_alloc(c, 0, (uint64_t)size * BLK_SLOT_BYTES, 64);
	if (!vq->slot_area_gpa)
		return -ENOMEM;
	vq->slots = calloc(size, sizeof(*vq->slots));
	vq->free_slots = calloc(size, sizeof(*vq->free_slots));
	vq->head_slot = calloc(size, sizeof(*vq->head_slot));
	if (!vq->slots || !vq->free_slots || !vq->head_slot)
		return -ENOMEM;
	for (unsigned i = 0; i < size; i++) {
		vq->slots[i].hdr_gpa = vq->slot_area_gpa + (uint64_t)i * BLK_SLOT_BYTES;
		vq->slots[i].status_gpa = vq->slots[i].hdr_gpa + 16;
		vq->free_slots[i] = (uint16_t)(size - 1 - i);
	}
	vq->nfree_slots = size;
	return 0;
}

int umdev_vuc_set_log_base(struct umdev_vuc *c, int fd, unsigned nfds, uint64_t size,
			   uint64_t offset)
{
	struct vhost_user_log lg = { .mmap_size = size, .mmap_offset = offset };
	struct vhost_user_msg reply;
	uint32_t rsize;
	int r;

	if (nfds > 1)
		return -EINVAL;
	r = umdev_vuc_send(c, VHOST_USER_SET_LOG_BASE, 0, &lg, sizeof(lg), &fd, nfds);
	if (r)
		return r;
	r = umdev_vuc_wait_reply(c, VHOST_USER_SET_LOG_BASE, &reply, sizeof(uint64_t), &rsize,
				 NULL, NULL);
	if (r)
		return r;
	if (rsize != sizeof(uint64_t))
		return -EPROTO;
	return reply.p.u64 ? -EIO : 0;
}

int umdev_vuc_vq_set_addr(struct umdev_vuc *c, unsigned idx, uint32_t flags, uint64_t log_gpa)
{
	struct vhost_user_vring_addr a;

	if (idx >= UMDEV_VUC_MAX_QUEUES || !c->vqs[idx].ready)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	a.index = idx;
	a.flags = flags;
	a.desc_user_addr = umdev_vuc_gpa_to_uva(c, c->vqs[idx].drv.desc_gpa);
	a.used_user_addr = umdev_vuc_gpa_to_uva(c, c->vqs[idx].drv.used_gpa);
	a.avail_user_addr = umdev_vuc_gpa_to_uva(c, c->vqs[idx].drv.avail_gpa);
	a.log_guest_addr = log_gpa;
	if (!a.desc_user_addr || !a.used_user_addr || !a.avail_user_addr)
		return -EFAULT;
	return umdev_vuc_request(c, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

int umdev_vuc_vq_start(struct umdev_vuc *c, unsigned idx, uint16_t base)
{
	struct umdev_vuc_vq *vq;
	struct vhost_user_vring_state st;
	struct vhost_user_vring_addr a;
	uint64_t u;
	int r;

	if (idx >= UMDEV_VUC_MAX_QUEUES || !c->vqs[idx].ready)
		return -EINVAL;
	vq = &c->vqs[idx];
	if (vq->drv.packed) {
		if (vq->no_interrupt)
			umdev_vqd_set_interrupts(&vq->drv, VIRTQ_PACKED_EVENT_DISABLE, 0);
	} else if (vq->no_interrupt) {
		vq->drv.avail->flags |= VIRTQ_AVAIL_F_NO_INTERRUPT;
	} else {
		vq->drv.avail->flags &= (uint16_t)~VIRTQ_AVAIL_F_NO_INTERRUPT;
	}

	st = (struct vhost_user_vring_state){ .index = idx, .num = vq->size };
	r = umdev_vuc_request(c, VHOST_USER_SET_VRING_NUM, &st, sizeof(st), NULL, 0);
	if (r)
		return r;
	st.num = base;
	/* Packed rings: base 0 means the driver's own positions, as QEMU sends them. */
	if (vq->drv.packed && !base)
		st.num = (vq->drv.next_avail | (vq->drv.avail_wrap ? 0x8000u : 0)) |
			 (uint32_t)(vq->drv.next_used | (vq->drv.used_wrap ? 0x8000u : 0)) << 16;
	r = umdev_vuc_request(c, VHOST_USER_SET_VRING_BASE, &st, sizeof(st), NULL, 0);
	if (r)
		return r;
	memset(&a, 0, sizeof(a));
	a.index = idx;
	a.desc_user_addr = umdev_vuc_gpa_to_uva(c, vq->drv.desc_gpa);
	a.used_user_addr = umdev_vuc_gpa_to_uva(c, vq->drv.used_gpa);
	a.avail_user_addr = umdev_vuc_gpa_to_uva(c, vq->drv.avail_gpa);
	if (!a.desc_user_addr || !a.used_user_addr || !a.avail_user_addr)
		return -EFAULT;
	r = umdev_vuc_request(c, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	if (r)
		return r;
	u = idx;
	r = umdev_vuc_request(c, VHOST_USER_SET_VRING_KICK, &u, sizeof(u), &vq->kick_fd, 1);
	if (r)
		return r;
	r = umdev_vuc_request(c, VHOST_USER_SET_VRING_CALL, &u, sizeof(u), &vq->call_fd, 1);
	if (r)
		return r;
	if (c->acked_features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
		r = umdev_vuc_vq_enable(c, idx, true);
		if (r)
			return r;
	}
	vq->started = true;
	return 0;
}

int umdev_vuc_vq_enable(struct umdev_vuc *c, unsigned idx, bool on)
{
	struct vhost_user_vring_state st = { .index = idx, .num = on };

	return umdev_vuc_request(c, VHOST_USER_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0);
}

int umdev_vuc_vq_stop(struct umdev_vuc *c, unsigned idx, uint16_t *base)
{
	struct vhost_user_vring_state st = { .index = idx, .num = 0 };
	struct vhost_user_msg reply;
	uint32_t rsize;
	int r;

	r = umdev_vuc_send(c, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0);
	if (r)
		return r;
	r = umdev_vuc_wait_reply(c, VHOST_USER_GET_VRING_BASE, &reply, sizeof(st), &rsize, NULL,
				 NULL);
	if (r)
		return r;
	if (rsize != sizeof(st) || reply.p.state.index != idx ||
	    (reply.p.state.num > 0xffff && !(c->acked_features & (1ull << VIRTIO_F_RING_PACKED))))
		return -EPROTO;
	*base = (uint16_t)reply.p.state.num;
	if (idx < UMDEV_VUC_MAX_QUEUES)
		c->vqs[idx].started = false;
	return 0;
}

int umdev_vuc_kick(struct umdev_vuc *c, unsigned idx)
{
	uint64_t one = 1;

	if (idx >= UMDEV_VUC_MAX_QUEUES || c->vqs[idx].kick_fd < 0)
		return -EINVAL;
	if (write(c->vqs[idx].kick_fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

int umdev_vuc_wait_call(struct umdev_vuc *c, unsigned idx, int timeout_ms)
{
	struct pollfd pfd;
	uint64_t cnt;
	int r;

	if (idx >= UMDEV_VUC_MAX_QUEUES || c->vqs[idx].call_fd < 0)
		return -EINVAL;
	pfd = (struct pollfd){ .fd = c->vqs[idx].call_fd, .events = POLLIN };
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	if (read(pfd.fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return -errno;
	return 1;
}

/* ---- inflight I/O tracking ---------------------------------------------- */

int umdev_vuc_get_inflight_fd(struct umdev_vuc *c, uint16_t nq, uint16_t qsize)
{
	struct vhost_user_inflight in = { .num_queues = nq, .queue_size = qsize };
	struct vhost_user_msg reply;
	uint32_t rsize;
	unsigned nfds = 1;
	int fd = -1;
	void *map;
	int r;

	r = umdev_vuc_send(c, VHOST_USER_GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0);
	if (r)
		return r;
	r = umdev_vuc_wait_reply(c, VHOST_USER_GET_INFLIGHT_FD, &reply, sizeof(in), &rsize, &fd,
				 &nfds);
	if (r)
		return r;
	if (rsize != sizeof(in) || nfds != 1 || reply.p.inflight.mmap_size == 0) {
		if (nfds)
			close(fd);
		return -EPROTO;
	}
	map = mmap(NULL, reply.p.inflight.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)reply.p.inflight.mmap_offset);
	if (map == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	if (c->inflight_map)
		munmap(c->inflight_map, c->inflight.mmap_size);
	if (c->inflight_fd >= 0)
		close(c->inflight_fd);
	c->inflight_fd = fd;
	c->inflight_map = map;
	c->inflight = reply.p.inflight;
	c->inflight.num_queues = nq;
	c->inflight.queue_size = qsize;
	return 0;
}

int umdev_vuc_set_inflight_fd(struct umdev_vuc *c, int fd, const struct vhost_user_inflight *desc)
{
	return umdev_vuc_request(c, VHOST_USER_SET_INFLIGHT_FD, desc, sizeof(*desc), &fd, 1);
}

/* ---- one-call bring-up --------------------------------------------------- */

#define VUC_DEFAULT_BLK_FEATURES                                                          \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_SIZE_MAX) |                  \
	 (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |                \
	 (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_TOPOLOGY) |                  \
	 (1ull << VIRTIO_BLK_F_MQ) | (1ull << VIRTIO_BLK_F_DISCARD) |                      \
	 (1ull << VIRTIO_BLK_F_WRITE_ZEROES) | (1ull << VIRTIO_BLK_F_RO) |                 \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC))

#define VUC_DEFAULT_PROTOCOL                                                               \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |   \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG) |                                          \
	 (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |                                  \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |                             \
	 (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) | (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD))

int umdev_vuc_start_blk(struct umdev_vuc *c, unsigned nqueues, uint16_t qsize,
			unsigned nregions, uint64_t region_size, uint64_t proto_mask_off)
{
	uint64_t sizes[UMDEV_VUC_MAX_REGIONS];
	int r;

	if (nqueues == 0 || nqueues > UMDEV_VUC_MAX_QUEUES || nregions == 0 ||
	    nregions > UMDEV_VUC_MAX_REGIONS)
		return -EINVAL;
	r = umdev_vuc_negotiate(c, VUC_DEFAULT_PROTOCOL & ~proto_mask_off);
	if (r)
		return r;
	/* QEMU's vhost-user-blk order: features (the inflight layout depends on
	 * the ring format), get the buffer, hand it back, then start. */
	r = umdev_vuc_set_features(c, c->want_features ? c->want_features
						       : VUC_DEFAULT_BLK_FEATURES);
	if (r)
		return r;
	if (c->acked_protocol_features & (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)) {
		r = umdev_vuc_get_inflight_fd(c, (uint16_t)nqueues, qsize);
		if (r)
			return r;
		r = umdev_vuc_set_inflight_fd(c, c->inflight_fd, &c->inflight);
		if (r)
			return r;
	}
	for (unsigned i = 0; i < nregions; i++)
		sizes[i] = region_size;
	r = umdev_vuc_mem_create(c, sizes, nregions, 0);
	if (r)
		return r;
	r = umdev_vuc_set_mem_table(c, (1u << nregions) - 1);
	if (r)
		return r;
	for (unsigned q = 0; q < nqueues; q++) {
		r = umdev_vuc_vq_init(c, q, qsize, true);
		if (r)
			return r;
		r = umdev_vuc_vq_start(c, q, 0);
		if (r)
			return r;
	}
	return 0;
}

/* ---- virtio-blk driver --------------------------------------------------- */

static int blk_submit(struct umdev_vuc *c, unsigned q, uint32_t type, uint64_t sector,
		      const struct umdev_vqd_buf *data, unsigned n, uint64_t cookie, bool no_kick,
		      uint64_t table_gpa)
{
	struct umdev_vqd_buf bufs[BLK_MAX_DATA_BUFS + 2];
	struct virtio_blk_outhdr *hdr;
	struct umdev_vuc_vq *vq;
	struct umdev_vblk_slot *s;
	uint8_t *status;
	uint16_t slot;
	int head;

	if (q >= UMDEV_VUC_MAX_QUEUES || !c->vqs[q].slots || n > BLK_MAX_DATA_BUFS)
		return -EINVAL;
	vq = &c->vqs[q];
	if (!vq->nfree_slots)
		return -ENOSPC;
	slot = vq->free_slots[vq->nfree_slots - 1];
	s = &vq->slots[slot];
	hdr = umdev_vuc_gpa_ptr(c, s->hdr_gpa, sizeof(*hdr));
	status = umdev_vuc_gpa_ptr(c, s->status_gpa, 1);
	hdr->type = type;
	hdr->ioprio = 0;
	hdr->sector = sector;
	umdev_shm_st8(status, 0xff);

	bufs[0] = (struct umdev_vqd_buf){ .addr = s->hdr_gpa, .len = sizeof(*hdr) };
	for (unsigned i = 0; i < n; i++)
		bufs[1 + i] = data[i];
	bufs[1 + n] = (struct umdev_vqd_buf){ .addr = s->status_gpa, .len = 1, .write = true };
	head = umdev_vqd_add(&vq->drv, bufs, n + 2, table_gpa);
	if (head < 0)
		return head;
	if ((unsigned)head >= vq->size)
		return -EPROTO;
	vq->nfree_slots--;
	s->busy = true;
	s->cookie = cookie;
	vq->head_slot[head] = slot;
	vq->inflight++;
	if (no_kick)
		return 0;
	return umdev_vblk_kick(c, q);
}

int umdev_vblk_submit(struct umdev_vuc *c, unsigned q, uint32_t type, uint64_t sector,
		      const struct umdev_vqd_buf *data, unsigned n, uint64_t cookie, bool no_kick)
{
	return blk_submit(c, q, type, sector, data, n, cookie, no_kick, 0);
}

int umdev_vblk_submit_indirect(struct umdev_vuc *c, unsigned q, uint32_t type, uint64_t sector,
			       const struct umdev_vqd_buf *data, unsigned n, uint64_t cookie,
			       uint64_t table_gpa)
{
	if (!table_gpa)
		return -EINVAL;
	return blk_submit(c, q, type, sector, data, n, cookie, false, table_gpa);
}

int umdev_vblk_kick(struct umdev_vuc *c, unsigned q)
{
	if (q >= UMDEV_VUC_MAX_QUEUES || !c->vqs[q].ready)
		return -EINVAL;
	if (!umdev_vqd_kick_needed(&c->vqs[q].drv))
		return 0;
	return umdev_vuc_kick(c, q);
}

int umdev_vblk_poll(struct umdev_vuc *c, unsigned q, struct umdev_vblk_cpl *cpl, unsigned max)
{
	struct umdev_vuc_vq *vq;
	unsigned got = 0;

	if (q >= UMDEV_VUC_MAX_QUEUES || !c->vqs[q].slots)
		return -EINVAL;
	vq = &c->vqs[q];
	while (got < max) {
		struct umdev_vblk_slot *s;
		uint16_t head;
		uint32_t len;
		int r = umdev_vqd_get_used(&vq->drv, &head, &len);

		if (r < 0)
			return r;
		if (r == 0)
			break;
		if (head >= vq->size || !vq->slots[vq->head_slot[head]].busy)
			return -EPROTO;
		s = &vq->slots[vq->head_slot[head]];
		cpl[got].cookie = s->cookie;
		cpl[got].status = umdev_shm_ld8(umdev_vuc_gpa_ptr(c, s->status_gpa, 1));
		cpl[got].len = len;
		s->busy = false;
		vq->free_slots[vq->nfree_slots++] = vq->head_slot[head];
		vq->inflight--;
		got++;
	}
	return (int)got;
}

int umdev_vblk_wait(struct umdev_vuc *c, unsigned q, struct umdev_vblk_cpl *cpl, unsigned max,
		    int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		int64_t left;
		int r = umdev_vblk_poll(c, q, cpl, max);

		if (r != 0)
			return r;
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		if (c->vqs[q].no_interrupt)
			continue; /* busy-poll: the whole point of poll mode */
		/* Short naps: a device that completes without calling still gets reaped. */
		r = umdev_vuc_wait_call(c, q, left < 50 ? (int)left : 50);
		if (r < 0)
			return r;
	}
}

int umdev_vblk_io(struct umdev_vuc *c, unsigned q, uint32_t type, uint64_t sector,
		  const struct umdev_vqd_buf *data, unsigned n, int timeout_ms)
{
	struct umdev_vblk_cpl cpl;
	int r;

	r = umdev_vblk_submit(c, q, type, sector, data, n, 0x10c, false);
	if (r)
		return r;
	r = umdev_vblk_wait(c, q, &cpl, 1, timeout_ms);
	if (r < 0)
		return r;
	if (r == 0)
		return -ETIMEDOUT;
	return cpl.status;
}
