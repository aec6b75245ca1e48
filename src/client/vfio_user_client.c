/* SPDX-License-Identifier: BSD-3-Clause */
/* vfio-user client (see vfio_user_client.h), written from the protocol spec. */
#include "vfio_user_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "umdev/proto/pci_regs.h"

#define HS sizeof(struct vfio_user_header)
#define MAX_FDS 16
#define MAX_MSG (HS + 16 + (64u << 20))

struct rmsg {
	struct vfio_user_header hdr;
	uint8_t *body;
	size_t len;
	int fds[MAX_FDS];
	unsigned nfds;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int umdev_vfuc_connect(struct umdev_vfuc *c, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = now_ms() + timeout_ms;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			c->fd = fd;
			c->server_max_xfer = VFIO_USER_DEF_MAX_DATA_XFER;
			c->server_max_fds = VFIO_USER_DEF_MAX_MSG_FDS;
			return 0;
		}
		close(fd);
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

void umdev_vfuc_close(struct umdev_vfuc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	for (unsigned i = 0; i < c->nmem; i++) {
		munmap(c->mem[i].ptr, c->mem[i].size);
		close(c->mem[i].fd);
	}
	c->nmem = 0;
}

int umdev_vfuc_send_raw(struct umdev_vfuc *c, const void *buf, size_t len, const int *fds,
			unsigned nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	size_t done = 0;

	if (nfds > MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	while (done < len) {
		ssize_t n;

		iov.iov_base = (uint8_t *)buf + done;
		iov.iov_len = len - done;
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		done += (size_t)n;
	}
	return 0;
}

/* Read exactly @len bytes (collecting fds), waiting until @deadline. */
static int recv_exact(struct umdev_vfuc *c, void *buf, size_t len, struct rmsg *m,
		      int64_t deadline)
{
	size_t got = 0;

	while (got < len) {
		char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct iovec iov = { (uint8_t *)buf + got, len - got };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			unsigned k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			for (unsigned i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (m->nfds < MAX_FDS)
					m->fds[m->nfds++] = fd;
				else
					close(fd);
			}
		}
		got += (size_t)n;
	}
	return 0;
}

static void rmsg_free(struct rmsg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
	free(m->body);
	m->body = NULL;
}

static int recv_msg(struct umdev_vfuc *c, struct rmsg *m, int64_t deadline)
{
	int ret;

	memset(m, 0, sizeof(*m));
	ret = recv_exact(c, &m->hdr, HS, m, deadline);
	if (ret < 0)
		return ret;
	if (m->hdr.msg_size < HS || m->hdr.msg_size > MAX_MSG)
		return -EPROTO;
	m->len = m->hdr.msg_size - HS;
	if (m->len) {
		m->body = malloc(m->len);
		if (!m->body)
			return -ENOMEM;
		ret = recv_exact(c, m->body, m->len, m, deadline);
		if (ret < 0) {
			rmsg_free(m);
			return ret;
		}
	}
	return 0;
}

static struct umdev_vfuc_mem *find_mem(struct umdev_vfuc *c, uint64_t iova, uint64_t len)
{
	for (unsigned i = 0; i < c->nmem; i++) {
		struct umdev_vfuc_mem *r = &c->mem[i];

		if (iova >= r->iova && len <= r->size && iova - r->iova <= r->size - len)
			return r;
	}
	return NULL;
}

/* Serve a command from the server (DMA_READ / DMA_WRITE), in either layout. */
static int serve(struct umdev_vfuc *c, struct rmsg *m)
{
	struct vfio_user_header h = { .msg_id = m->hdr.msg_id, .cmd = m->hdr.cmd,
				      .msg_size = HS, .flags = VFIO_USER_F_TYPE_REPLY };
	const size_t data_off = c->qemu_dma_layout ? 12 : 16;
	struct umdev_vfuc_mem *r;
	uint64_t addr, count = 0;
	uint8_t *out;
	int ret;

	if (m->len < 16 || c->refuse_dma ||
	    (m->hdr.cmd != VFIO_USER_DMA_READ && m->hdr.cmd != VFIO_USER_DMA_WRITE))
		goto err;
	memcpy(&addr, m->body, 8);
	memcpy(&count, m->body + 8, c->qemu_dma_layout ? 4 : 8);
	r = find_mem(c, addr, count);
	if (!r || count > c->server_max_xfer + 0ull)
		goto err;
	if (m->hdr.cmd == VFIO_USER_DMA_WRITE) {
		if (m->len != 16 + count)
			goto err;
		memcpy(r->ptr + (addr - r->iova), m->body + data_off, count);
		c->dma_writes++;
		/* spec: address and count echoed; QEMU: the bare header */
		h.msg_size = (uint32_t)(HS + (c->qemu_dma_layout ? 0 : 16));
		out = calloc(1, h.msg_size);
		if (!out)
			return -ENOMEM;
		memcpy(out, &h, HS);
		if (!c->qemu_dma_layout)
			memcpy(out + HS, m->body, 16);
	} else {
		c->dma_reads++;
		h.msg_size = (uint32_t)(HS + 16 + count);
		out = calloc(1, h.msg_size);
		if (!out)
			return -ENOMEM;
		memcpy(out, &h, HS);
		memcpy(out + HS, m->body, 16);
		memcpy(out + HS + data_off, r->ptr + (addr - r->iova), count);
	}
	ret = umdev_vfuc_send_raw(c, out, h.msg_size, NULL, 0);
	free(out);
	return ret;
err:
	h.flags |= VFIO_USER_F_ERROR;
	h.error_no = EINVAL;
	return umdev_vfuc_send_raw(c, &h, HS, NULL, 0);
}

int umdev_vfuc_wait_reply(struct umdev_vfuc *c, uint16_t id, void *reply, size_t reply_max,
			  size_t *reply_len, int *rfds, unsigned *nrfds)
{
	int64_t deadline = now_ms() + UMDEV_VFUC_TIMEOUT_MS;
	unsigned maxfds = nrfds ? *nrfds : 0;

	if (nrfds)
		*nrfds = 0;
	for (;;) {
		struct rmsg m;
		int ret = recv_msg(c, &m, deadline);

		if (ret < 0)
			return ret;
		if ((m.hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND) {
			ret = serve(c, &m);
			rmsg_free(&m);
			if (ret < 0)
				return ret;
			continue;
		}
		if (m.hdr.msg_id != id) {
			rmsg_free(&m);
			return -EPROTO;
		}
		if (m.hdr.flags & VFIO_USER_F_ERROR) {
			ret = m.hdr.error_no ? -(int)m.hdr.error_no : -EIO;
			rmsg_free(&m);
			return ret;
		}
		if (reply_len)
			*reply_len = m.len;
		if (reply)
			memcpy(reply, m.body, m.len < reply_max ? m.len : reply_max);
		for (unsigned i = 0; i < m.nfds; i++) {
			if (nrfds && *nrfds < maxfds)
				rfds[(*nrfds)++] = m.fds[i];
			else
				close(m.fds[i]);
		}
		m.nfds = 0;
		rmsg_free(&m);
		return 0;
	}
}

int umdev_vfuc_request(struct umdev_vfuc *c, uint16_t cmd, uint32_t flags, const void *payload,
		       size_t len, const int *fds, unsigned nfds, void *reply, size_t reply_max,
		       size_t *reply_len, int *rfds, unsigned *nrfds)
{
	struct vfio_user_header h = { .msg_id = c->next_id++, .cmd = cmd,
				      .msg_size = (uint32_t)(HS + len),
				      .flags = VFIO_USER_F_TYPE_COMMAND | flags };
	uint8_t *buf = malloc(HS + len);
	int ret;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, &h, HS);
	if (len)
		memcpy(buf + HS, payload, len);
	ret = umdev_vfuc_send_raw(c, buf, HS + len, fds, nfds);
	free(buf);
	if (ret < 0 || (flags & VFIO_USER_F_NO_REPLY))
		return ret;
	return umdev_vfuc_wait_reply(c, h.msg_id, reply, reply_max, reply_len, rfds, nrfds);
}

int umdev_vfuc_poll(struct umdev_vfuc *c, int timeout_ms)
{
	int served = 0;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		struct rmsg m;

		if (poll(&p, 1, timeout_ms) <= 0)
			return served;
		if (recv_msg(c, &m, now_ms() + UMDEV_VFUC_TIMEOUT_MS) < 0)
			return served;
		if ((m.hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND &&
		    serve(c, &m) == 0)
			served++;
		rmsg_free(&m);
	}
}

/* Minimal extraction of "key":number from the server's JSON. */
static bool json_num(const char *json, const char *key, uint64_t *out)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(json, pat);
	if (!p)
		return false;
	p += strlen(pat);
	while (*p == ' ' || *p == ':')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	*out = strtoull(p, NULL, 10);
	return true;
}

int umdev_vfuc_version(struct umdev_vfuc *c, const char *json)
{
	const char *def = "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576,"
			  "\"pgsizes\":4096,\"max_dma_maps\":64,\"write_multiple\":true}}";
	uint8_t req[1024], rep[1024];
	size_t jl, rl = 0;
	uint64_t v;
	int ret;

	if (!json)
		json = def;
	jl = strlen(json) + 1;
	if (4 + jl > sizeof(req))
		return -EINVAL;
	((struct vfio_user_version *)req)->major = VFIO_USER_MAJOR;
	((struct vfio_user_version *)req)->minor = VFIO_USER_MINOR;
	memcpy(req + 4, json, jl);
	ret = umdev_vfuc_request(c, VFIO_USER_VERSION, 0, req, 4 + jl, NULL, 0, rep,
				 sizeof(rep) - 1, &rl, NULL, NULL);
	if (ret < 0)
		return ret;
	if (rl < 4 || rl > sizeof(rep) - 1)
		return -EPROTO;
	rep[rl] = 0;
	c->major = ((struct vfio_user_version *)rep)->major;
	c->minor = ((struct vfio_user_version *)rep)->minor;
	{
		size_t n = strnlen((char *)rep + 4, rl - 4);

		if (n >= sizeof(c->server_caps))
			n = sizeof(c->server_caps) - 1;
		memcpy(c->server_caps, rep + 4, n);
		c->server_caps[n] = 0;
	}
	if (json_num(c->server_caps, "max_data_xfer_size", &v))
		c->server_max_xfer = (uint32_t)v;
	if (json_num(c->server_caps, "max_msg_fds", &v))
		c->server_max_fds = (uint32_t)v;
	if (json_num(c->server_caps, "max_dma_maps", &v))
		c->server_max_dma_maps = (uint32_t)v;
	if (json_num(c->server_caps, "pgsizes", &v))
		c->server_pgsizes = v;
	return c->major == VFIO_USER_MAJOR ? 0 : -EPROTO;
}

#define PAGE_BYTES 4096u

/* Where page @i of paged memory @r lies in its memfd: in reverse order. */
static uint64_t page_offset(const struct umdev_vfuc_mem *r, uint64_t i)
{
	return r->size - (i + 1) * PAGE_BYTES;
}

static int map_page(struct umdev_vfuc *c, struct umdev_vfuc_mem *r, uint64_t i, uint32_t flags)
{
	struct vfio_user_dma_map m = { .argsz = sizeof(m), .flags = flags,
				       .offset = page_offset(r, i),
				       .addr = r->iova + i * PAGE_BYTES, .size = PAGE_BYTES };

	return umdev_vfuc_request(c, VFIO_USER_DMA_MAP, 0, &m, sizeof(m), &r->fd, 1, NULL, 0,
				  NULL, NULL, NULL);
}

static int map_one(struct umdev_vfuc *c, struct umdev_vfuc_mem *r, uint32_t flags)
{
	if (r->paged) {
		for (uint64_t i = 0; i < r->size / PAGE_BYTES; i++) {
			int ret = map_page(c, r, i, flags);

			if (ret < 0)
				return ret;
		}
		return 0;
	}
	struct vfio_user_dma_map m = { .argsz = sizeof(m), .flags = flags, .offset = 0,
				       .addr = r->iova, .size = r->size };

	return umdev_vfuc_request(c, VFIO_USER_DMA_MAP, 0, &m, sizeof(m), &r->fd,
				  r->mapped_with_fd ? 1 : 0, NULL, 0, NULL, NULL, NULL);
}

/* The next free slot for memory at @iova, with its memfd created; NULL and *@err. */
static struct umdev_vfuc_mem *mem_slot(struct umdev_vfuc *c, uint64_t iova, uint64_t size,
				       bool with_fd, bool paged, int *err)
{
	struct umdev_vfuc_mem *r;

	if (c->nmem >= UMDEV_VFUC_MAX_MEM) {
		*err = -ENOSPC;
		return NULL;
	}
	r = &c->mem[c->nmem];
	memset(r, 0, sizeof(*r));
	r->iova = iova;
	r->size = size;
	r->mapped_with_fd = with_fd;
	r->paged = paged;
	r->fd = memfd_create("vfuc-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (r->fd < 0) {
		*err = -errno;
		return NULL;
	}
	return r;
}

int umdev_vfuc_add_mem(struct umdev_vfuc *c, uint64_t iova, uint64_t size, bool with_fd,
		       uint32_t flags)
{
	struct umdev_vfuc_mem *r;
	int ret = 0;

	r = mem_slot(c, iova, size, with_fd, false, &ret);
	if (!r)
		return ret;
	if (ftruncate(r->fd, (off_t)size) < 0 ||
	    (r->ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0)) == MAP_FAILED) {
		ret = -errno;
		close(r->fd);
		return ret;
	}
	/* Guest memory never shrinks (QEMU seals its memfds too), unless a test shrinks it. */
	if (!c->unsealed_mem)
		fcntl(r->fd, F_ADD_SEALS, F_SEAL_SHRINK);
	ret = map_one(c, r, flags);
	if (ret < 0) {
		munmap(r->ptr, size);
		close(r->fd);
		return ret;
	}
	c->nmem++;
	return 0;
}

int umdev_vfuc_add_mem_pages(struct umdev_vfuc *c, uint64_t iova, uint64_t size, uint32_t flags)
{
	struct umdev_vfuc_mem *r;
	int ret = 0;

	if (!size || size % PAGE_BYTES || iova % PAGE_BYTES)
		return -EINVAL;
	r = mem_slot(c, iova, size, true, true, &ret);
	if (!r)
		return ret;
	r->ptr = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ftruncate(r->fd, (off_t)size) < 0 || r->ptr == MAP_FAILED) {
		ret = -errno;
		goto fail;
	}
	/* Our view in IOVA order, over the file's pages in reverse. */
	for (uint64_t i = 0; i < size / PAGE_BYTES; i++)
		if (mmap(r->ptr + i * PAGE_BYTES, PAGE_BYTES, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, r->fd, (off_t)page_offset(r, i)) == MAP_FAILED) {
			ret = -errno;
			goto fail;
		}
	if (!c->unsealed_mem)
		fcntl(r->fd, F_ADD_SEALS, F_SEAL_SHRINK);
	ret = map_one(c, r, flags);
	if (ret < 0)
		goto fail;
	c->nmem++;
	return 0;

fail:
	if (r->ptr != MAP_FAILED)
		munmap(r->ptr, size);
	close(r->fd);
	return ret;
}

int umdev_vfuc_remap_page(struct umdev_vfuc *c, uint64_t iova, uint32_t flags)
{
	struct umdev_vfuc_mem *r = find_mem(c, iova, PAGE_BYTES);
	struct vfio_user_dma_unmap u = { .argsz = sizeof(u), .addr = iova, .size = PAGE_BYTES };
	struct vfio_user_dma_unmap back;
	size_t bl = 0;
	int ret;

	if (!r || !r->paged || iova % PAGE_BYTES)
		return -EINVAL;
	ret = umdev_vfuc_request(c, VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u), NULL, 0, &back,
				 sizeof(back), &bl, NULL, NULL);
	if (ret < 0)
		return ret;
	return map_page(c, r, (iova - r->iova) / PAGE_BYTES, flags);
}

int umdev_vfuc_remap_all(struct umdev_vfuc *c)
{
	for (unsigned i = 0; i < c->nmem; i++) {
		int ret = map_one(c, &c->mem[i],
				  VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE);

		if (ret < 0)
			return ret;
	}
	return 0;
}

int umdev_vfuc_remove_mem(struct umdev_vfuc *c, uint64_t iova)
{
	for (unsigned i = 0; i < c->nmem; i++) {
		struct umdev_vfuc_mem *r = &c->mem[i];
		struct vfio_user_dma_unmap u = { .argsz = sizeof(u), .addr = r->iova,
						 .size = r->size };
		struct vfio_user_dma_unmap back;
		size_t bl = 0;
		int ret;

		if (r->iova != iova)
			continue;
		ret = umdev_vfuc_request(c, VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u), NULL, 0, &back,
					 sizeof(back), &bl, NULL, NULL);
		if (ret < 0)
			return ret;
		if (bl != sizeof(back) || back.addr != u.addr || back.size != u.size)
			return -EPROTO;
		munmap(r->ptr, r->size);
		close(r->fd);
		c->mem[i] = c->mem[--c->nmem];
		return 0;
	}
	return -ENOENT;
}

void *umdev_vfuc_mem_ptr(struct umdev_vfuc *c, uint64_t iova, uint64_t len)
{
	struct umdev_vfuc_mem *r = find_mem(c, iova, len);

	return r ? r->ptr + (iova - r->iova) : NULL;
}

int umdev_vfuc_device_info(struct umdev_vfuc *c, struct vfio_user_device_info *out)
{
	struct vfio_user_device_info q = { .argsz = sizeof(q) };
	size_t rl = 0;
	int ret = umdev_vfuc_request(c, VFIO_USER_DEVICE_GET_INFO, 0, &q, sizeof(q), NULL, 0, out,
				     sizeof(*out), &rl, NULL, NULL);

	if (ret == 0 && rl != sizeof(*out))
		return -EPROTO;
	return ret;
}

int umdev_vfuc_region_info(struct umdev_vfuc *c, uint32_t index, void *buf, size_t bufsz, int *fd)
{
	struct vfio_user_region_info q = { .argsz = (uint32_t)bufsz, .index = index };
	unsigned nfd = 1;
	size_t rl = 0;
	int ret;

	*fd = -1;
	if (bufsz < sizeof(q))
		return -EINVAL;
	ret = umdev_vfuc_request(c, VFIO_USER_DEVICE_GET_REGION_INFO, 0, &q, sizeof(q), NULL, 0,
				 buf, bufsz, &rl, fd, &nfd);
	if (ret < 0)
		return ret;
	if (!nfd)
		*fd = -1;
	return rl >= sizeof(q) ? 0 : -EPROTO;
}

int umdev_vfuc_region_read(struct umdev_vfuc *c, uint32_t region, uint64_t off, void *buf,
			   uint32_t len)
{
	struct vfio_user_region_access q = { .offset = off, .region = region, .count = len };
	uint8_t *rep = malloc(sizeof(q) + len);
	size_t rl = 0;
	int ret;

	if (!rep)
		return -ENOMEM;
	ret = umdev_vfuc_request(c, VFIO_USER_REGION_READ, 0, &q, sizeof(q), NULL, 0, rep,
				 sizeof(q) + len, &rl, NULL, NULL);
	if (ret == 0 && rl != sizeof(q) + len)
		ret = -EPROTO;
	if (ret == 0)
		memcpy(buf, rep + sizeof(q), len);
	free(rep);
	return ret;
}

static int region_write(struct umdev_vfuc *c, uint32_t region, uint64_t off, const void *buf,
			uint32_t len, uint32_t flags)
{
	struct vfio_user_region_access q = { .offset = off, .region = region, .count = len };
	uint8_t *req = malloc(sizeof(q) + len);
	struct vfio_user_region_access rep;
	size_t rl = 0;
	int ret;

	if (!req)
		return -ENOMEM;
	memcpy(req, &q, sizeof(q));
	memcpy(req + sizeof(q), buf, len);
	ret = umdev_vfuc_request(c, VFIO_USER_REGION_WRITE, flags, req, sizeof(q) + len, NULL, 0,
				 &rep, sizeof(rep), &rl, NULL, NULL);
	free(req);
	if (ret == 0 && !flags && (rl != sizeof(rep) || rep.count != len))
		ret = -EPROTO;
	return ret;
}

int umdev_vfuc_region_write(struct umdev_vfuc *c, uint32_t region, uint64_t off,
			    const void *buf, uint32_t len)
{
	return region_write(c, region, off, buf, len, 0);
}

int umdev_vfuc_region_write_posted(struct umdev_vfuc *c, uint32_t region, uint64_t off,
				   const void *buf, uint32_t len)
{
	return region_write(c, region, off, buf, len, VFIO_USER_F_NO_REPLY);
}

int umdev_vfuc_cfg_read(struct umdev_vfuc *c, uint32_t off, void *buf, uint32_t len)
{
	return umdev_vfuc_region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, off, buf, len);
}

int umdev_vfuc_cfg_write(struct umdev_vfuc *c, uint32_t off, uint32_t val, uint32_t len)
{
	return umdev_vfuc_region_write(c, VFIO_PCI_CONFIG_REGION_INDEX, off, &val, len);
}

uint64_t umdev_vfuc_bar_size(struct umdev_vfuc *c, unsigned bar)
{
	uint32_t off = UMDEV_PCI_BAR0 + 4 * bar, orig = 0, lo = 0, hi = 0, orig_hi = 0;
	uint64_t mask;

	if (umdev_vfuc_cfg_read(c, off, &orig, 4) < 0 || umdev_vfuc_cfg_write(c, off, ~0u, 4) < 0 ||
	    umdev_vfuc_cfg_read(c, off, &lo, 4) < 0 || umdev_vfuc_cfg_write(c, off, orig, 4) < 0)
		return 0;
	if (orig & UMDEV_PCI_BAR_SPACE_IO)
		return 0;
	mask = lo & ~0xfu;
	if (orig & UMDEV_PCI_BAR_MEM_TYPE_64) {
		if (umdev_vfuc_cfg_read(c, off + 4, &orig_hi, 4) < 0 ||
		    umdev_vfuc_cfg_write(c, off + 4, ~0u, 4) < 0 ||
		    umdev_vfuc_cfg_read(c, off + 4, &hi, 4) < 0 ||
		    umdev_vfuc_cfg_write(c, off + 4, orig_hi, 4) < 0)
			return 0;
		mask |= (uint64_t)hi << 32;
	} else {
		mask |= 0xffffffff00000000ull;
	}
	return mask == 0xffffffff00000000ull || !mask ? 0 : ~mask + 1;
}

unsigned umdev_vfuc_find_cap(struct umdev_vfuc *c, uint8_t id)
{
	uint8_t ptr = 0;

	if (umdev_vfuc_cfg_read(c, UMDEV_PCI_CAP_PTR, &ptr, 1) < 0)
		return 0;
	for (unsigned n = 0; ptr && n < 48; n++) {
		uint8_t hdr[2];

		if (umdev_vfuc_cfg_read(c, ptr, hdr, 2) < 0)
			return 0;
		if (hdr[0] == id)
			return ptr;
		ptr = hdr[1];
	}
	return 0;
}

int umdev_vfuc_irq_info(struct umdev_vfuc *c, uint32_t index, uint32_t *flags, uint32_t *count)
{
	struct vfio_user_irq_info q = { .argsz = sizeof(q), .index = index }, r;
	size_t rl = 0;
	int ret = umdev_vfuc_request(c, VFIO_USER_DEVICE_GET_IRQ_INFO, 0, &q, sizeof(q), NULL, 0, &r,
				     sizeof(r), &rl, NULL, NULL);

	if (ret < 0)
		return ret;
	if (rl != sizeof(r))
		return -EPROTO;
	*flags = r.flags;
	*count = r.count;
	return 0;
}

int umdev_vfuc_set_irqs(struct umdev_vfuc *c, uint32_t index, uint32_t flags, uint32_t start,
			uint32_t count, const uint8_t *bools, const int *fds, unsigned nfds)
{
	size_t dl = bools ? count : 0;
	struct vfio_user_irq_set *q = malloc(sizeof(*q) + dl);
	int ret;

	if (!q)
		return -ENOMEM;
	*q = (struct vfio_user_irq_set){ .argsz = (uint32_t)(sizeof(*q) + dl), .flags = flags,
					 .index = index, .start = start, .count = count };
	if (dl)
		memcpy(q->data, bools, dl);
	ret = umdev_vfuc_request(c, VFIO_USER_DEVICE_SET_IRQS, 0, q, sizeof(*q) + dl, fds, nfds,
				 NULL, 0, NULL, NULL, NULL);
	free(q);
	return ret;
}

int umdev_vfuc_reset(struct umdev_vfuc *c)
{
	return umdev_vfuc_request(c, VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0, NULL, 0, NULL,
				  NULL, NULL);
}
