/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user message handlers and ring life cycle.
 *
 * A ring runs when it is started (kick received, not stopped by
 * GET_VRING_BASE), enabled, has addresses, and guest memory exists.
 * vring_apply() moves the device queue to match. Anything that changes what
 * a running queue depends on (memory table, features, kick fd, inflight
 * region) stops the queue first (waiting for its in-flight requests), makes
 * the change, then restarts it at the index it stopped at, re-translating
 * the ring addresses through the new memory map.
 *
 * Live migration: the dirty log (SET_LOG_BASE), VHOST_F_LOG_ALL and a
 * ring's VHOST_VRING_F_LOG are ring configuration like the rest: a change
 * stops the rings (their requests complete and are logged under the old
 * settings), then they restart with the new ones. A request is thus logged
 * or not as a whole, never half, and no data-plane thread ever sees a log
 * being swapped or unmapped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "umdev/log.h"
#include "umdev/proto/virtio_ring.h"
#include "umdev/proto/virtio_ring_packed.h"
#include "util/fd.h"
#include "vu_internal.h"

static struct umdev_virtio_dev *vdev_of(struct vu_conn *c)
{
	return c->s->vdev;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int take_fd(int *fds, unsigned i)
{
	int fd = fds[i];

	fds[i] = -1;
	return fd;
}

static bool has_proto(const struct vu_conn *c, unsigned bit)
{
	return c->protocol_features & (1ull << bit);
}

static void vring_stop(struct vu_conn *c, unsigned i)
{
	struct vu_vring *vr = &c->vrings[i];

	if (!vr->running)
		return;
	umdev_vdev_queue_stop(vdev_of(c), i);
	vr->used_base = umdev_vq_last_used_idx(vr->vq);
	vr->base = umdev_vq_stop(vr->vq);
	vr->running = false;
}

/*
 * The ring's queue object, made when the ring first starts: a device offers
 * up to 256 rings and most front-ends use a few, so per-ring state beyond
 * struct vu_vring is made only for rings that are used.
 */
static umdev_vq *vring_vq(struct vu_conn *c, unsigned i)
{
	struct vu_vring *vr = &c->vrings[i];
	char name[64];
	int err = 0;

	if (!vr->vq) {
		snprintf(name, sizeof(name), "%s.q%u", c->name, i);
		vr->vq = umdev_vq_new(name, &err);
	}
	return vr->vq;
}

/* The ring's logging, from the log, LOG_ALL and its VHOST_VRING_F_LOG. */
static void vring_set_log(struct vu_conn *c, unsigned i)
{
	struct vu_vring *vr = &c->vrings[i];
	bool log_all = c->features & (1ull << VHOST_F_LOG_ALL);
	bool log_used = vr->addr.flags & (1u << VHOST_VRING_F_LOG);
	struct umdev_vq_log lg = {
		.log = c->no_dirty_log ? NULL : c->log,
		.data = log_all,
		.used = log_used,
		.used_gpa = vr->addr.log_guest_addr,
	};

	if ((log_all || log_used) && !c->log)
		umdev_err_rl(&c->rl, "%s.q%u: dirty logging asked for but no log was given "
			     "(SET_LOG_BASE): a migration would lose what this ring writes",
			     c->name, i);
	umdev_vq_set_log(vr->vq, &lg);
}

static bool is_packed(const struct vu_conn *c)
{
	return c->features & (1ull << VIRTIO_F_RING_PACKED);
}

/* Inflight bytes per queue: the layout depends on the ring format. */
static uint64_t inflight_per_queue(const struct vu_conn *c, uint16_t qsize)
{
	return is_packed(c) ? umdev_vq_inflight_size_packed(qsize) : umdev_vq_inflight_size(qsize);
}

static int vring_start(struct vu_conn *c, unsigned i)
{
	struct vu_vring *vr = &c->vrings[i];
	struct umdev_vq_config cfg = {
		.size = vr->num,
		.last_avail_idx = vr->base,
		.event_idx = c->features & (1ull << VIRTIO_RING_F_EVENT_IDX),
		.indirect = c->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC),
		.packed = is_packed(c),
		.last_used_idx = vr->used_base,
	};
	umdev_as_map *map;
	int ret;

	if (!vring_vq(c, i)) {
		umdev_err("%s.q%u: no memory for the ring", c->name, i);
		return -ENOMEM;
	}
	map = umdev_as_get_map(c->as);
	if (umdev_as_map_uva_to_gpa(map, vr->addr.desc_user_addr, &cfg.desc_addr) < 0 ||
	    umdev_as_map_uva_to_gpa(map, vr->addr.avail_user_addr, &cfg.avail_addr) < 0 ||
	    umdev_as_map_uva_to_gpa(map, vr->addr.used_user_addr, &cfg.used_addr) < 0) {
		umdev_warn_rl(&c->rl, "%s.q%u: ring addresses are not in guest memory (yet); not started", c->name,
			   i);
		umdev_as_map_put(map);
		return -EFAULT;
	}
	/* The inflight region must have room for every head of this ring (in
	 * this ring format's layout: features may have changed since SET). */
	if (c->inflight && i < c->inflight_queues && vr->num <= c->inflight_qsize &&
	    (i + 1) * inflight_per_queue(c, c->inflight_qsize) <= c->inflight_size)
		umdev_vq_set_inflight(vr->vq, (struct vhost_user_inflight_queue *)
				      ((uint8_t *)c->inflight +
				       i * inflight_per_queue(c, c->inflight_qsize)));
	else
		umdev_vq_set_inflight(vr->vq, NULL);
	umdev_vq_set_call_fd(vr->vq, vr->call_fd);
	umdev_vq_set_err_fd(vr->vq, vr->err_fd);
	vring_set_log(c, i);
	ret = umdev_vq_start(vr->vq, map, &cfg);
	umdev_as_map_put(map);
	if (ret < 0) {
		umdev_err_rl(&c->rl, "%s.q%u: cannot start ring (size %u): %s", c->name, i, vr->num,
			  strerror(-ret));
		return ret;
	}
	ret = umdev_vdev_queue_start(vdev_of(c), i, vr->vq, vr->kick_fd,
				     vr->recover && c->inflight && vr->num <= c->inflight_qsize);
	if (ret < 0) {
		umdev_err_rl(&c->rl, "%s.q%u: device refused to start the queue: %s", c->name, i,
			  strerror(-ret));
		vr->base = umdev_vq_stop(vr->vq);
		return ret;
	}
	vr->recover = false;
	vr->running = true;
	return 0;
}

/* Bring queue @i to the state its configuration asks for. */
static void vring_apply(struct vu_conn *c, unsigned i)
{
	struct vu_vring *vr = &c->vrings[i];
	bool want = vr->started && vr->enabled && vr->addr_set && vr->num &&
		    umdev_as_num_regions(c->as) > 0;

	/*
	 * A ring that cannot start (its addresses are not in guest memory) is
	 * tried again at the next configuration change: QEMU removes and
	 * re-adds a region (REM_MEM_REG, then ADD_MEM_REG) when its bounds
	 * change, and the ring must come back with it.
	 */
	if (want && !vr->running) {
		(void)vring_start(c, i);
	} else if (!want && vr->running) {
		vring_stop(c, i);
	}
}

/* Stop all running rings; returns a mask of those that ran. */
static uint64_t pause_rings(struct vu_conn *c)
{
	uint64_t mask = 0;

	for (unsigned i = 0; i < vdev_of(c)->num_queues; i++) {
		if (c->vrings[i].running) {
			vring_stop(c, i);
			mask |= 1ull << (i % 64);
		}
	}
	return mask;
}

static void resume_rings(struct vu_conn *c)
{
	for (unsigned i = 0; i < vdev_of(c)->num_queues; i++)
		vring_apply(c, i);
}

void vu_stop_all(struct vu_conn *c)
{
	pause_rings(c);
}

int vu_conn_init_state(struct vu_conn *c)
{
	struct umdev_virtio_dev *vdev = vdev_of(c);
	int err = 0;

	const char *nolog = getenv("UMDEV_DEBUG_NO_DIRTY_LOG");

	c->inflight_guard = -1;
	c->log_guard = -1;
	c->backend_fd = -1;
	/* A test switch: shows that migration tests catch a back-end that does not log. */
	c->no_dirty_log = nolog && *nolog && strcmp(nolog, "0") != 0;
	c->as = umdev_as_new(&err);
	if (!c->as)
		return err;
	c->vrings = calloc(vdev->num_queues, sizeof(*c->vrings));
	if (!c->vrings)
		return -ENOMEM;
	for (unsigned i = 0; i < vdev->num_queues; i++)
		c->vrings[i].kick_fd = c->vrings[i].call_fd = c->vrings[i].err_fd = -1;
	return 0;
}

static void unmap_inflight(struct vu_conn *c)
{
	for (unsigned i = 0; c->vrings && i < vdev_of(c)->num_queues; i++)
		if (c->vrings[i].vq)
			umdev_vq_set_inflight(c->vrings[i].vq, NULL);
	umdev_as_guard_del(c->inflight_guard);
	c->inflight_guard = -1;
	if (c->inflight)
		munmap(c->inflight, c->inflight_size);
	c->inflight = NULL;
	c->inflight_size = 0;
}

/* Rings must be stopped: none marks the log any more. */
static void unmap_log(struct vu_conn *c)
{
	for (unsigned i = 0; c->vrings && i < vdev_of(c)->num_queues; i++)
		if (c->vrings[i].vq)
			umdev_vq_set_log(c->vrings[i].vq, NULL);
	umdev_as_guard_del(c->log_guard);
	c->log_guard = -1;
	umdev_dirty_log_free(c->log);
	c->log = NULL;
}

void vu_conn_fini_state(struct vu_conn *c)
{
	if (c->vrings)
		pause_rings(c);
	/* Detach the inflight region and the log while the vqs still exist. */
	unmap_inflight(c);
	unmap_log(c);
	if (c->vrings) {
		for (unsigned i = 0; i < vdev_of(c)->num_queues; i++) {
			struct vu_vring *vr = &c->vrings[i];

			close_fd(&vr->kick_fd);
			close_fd(&vr->call_fd);
			close_fd(&vr->err_fd);
			umdev_vq_free(vr->vq);
			vr->vq = NULL;
		}
	}
	free(c->vrings);
	c->vrings = NULL;
	umdev_as_free(c->as);
	c->as = NULL;
	if (c->backend_fd >= 0) {
		vdev_of(c)->config_notify = NULL;
		close_fd(&c->backend_fd);
	}
}

/* The device's config changed: tell the front-end (it re-reads it with GET_CONFIG). */
static void config_notify(void *opaque)
{
	struct vu_conn *c = opaque;
	struct vhost_user_msg m = { .hdr = { .request = VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
					     .flags = VHOST_USER_VERSION } };
	ssize_t n;

	/* Never waits: a front-end that does not read its channel misses the notice. */
	do
		n = send(c->backend_fd, &m, sizeof(m.hdr), MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(m.hdr))
		umdev_warn_rl(&c->rl, "%s: cannot send a config change notice: %s", c->name,
			      n < 0 ? strerror(errno) : "short send");
}

static int set_backend_req_fd(struct vu_conn *c, int *fds, unsigned nfds)
{
	int fd = nfds ? take_fd(fds, 0) : -1;
	struct stat st;

	if (fd < 0 || !has_proto(c, VHOST_USER_PROTOCOL_F_BACKEND_REQ) || fstat(fd, &st) < 0 ||
	    !S_ISSOCK(st.st_mode)) {
		umdev_err_rl(&c->rl, "%s: SET_BACKEND_REQ_FD refused (not negotiated, or not a socket)",
			     c->name);
		if (fd >= 0)
			close(fd);
		return VU_SOFT_FAIL;
	}
	close_fd(&c->backend_fd);
	c->backend_fd = fd;
	vdev_of(c)->config_notify = config_notify;
	vdev_of(c)->config_notify_opaque = c;
	return 0;
}

static uint64_t offered_features(struct vu_conn *c)
{
	return vdev_of(c)->ops->features(vdev_of(c)) | VU_TRANSPORT_FEATURES;
}

static uint64_t offered_protocol(struct vu_conn *c)
{
	uint64_t f = VU_PROTOCOL_FEATURES;

	if (vdev_of(c)->config_by_frontend)
		f &= ~(1ull << VHOST_USER_PROTOCOL_F_CONFIG);
	else if (vdev_of(c)->config_changes)
		f |= 1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ;
	return f;
}

static int reply_u64(struct vu_conn *c, struct vhost_user_msg *m, uint64_t v)
{
	m->hdr.size = sizeof(uint64_t);
	m->p.u64 = v;
	return vu_send(c, m, NULL, 0);
}

/*
 * Ring index from a state/addr payload, or from a kick/call u64. A ring the
 * device does not have is refused (VU_SOFT_FAIL: a failed ack where one was
 * asked for) without dropping the connection: a front-end may probe, and
 * the protocol lets it carry on with the rings that exist.
 */
static int ring_index(struct vu_conn *c, unsigned idx, const char *what)
{
	if (idx >= vdev_of(c)->num_queues) {
		umdev_err_rl(&c->rl, "%s: %s names ring %u, the device has %u (num-queues): refused",
			     c->name, what, idx, vdev_of(c)->num_queues);
		return -ERANGE;
	}
	return idx;
}

static int set_mem_table(struct vu_conn *c, struct vhost_user_msg *m, int *fds, unsigned nfds)
{
	struct vhost_user_mem_table *t = &m->p.mem;
	unsigned n = t->nregions;

	if (n == 0 || n > VHOST_USER_MAX_MEM_REGIONS || n != nfds ||
	    m->hdr.size < 8 + n * sizeof(t->regions[0])) {
		umdev_err_rl(&c->rl, "%s: memory table with %u regions, %u fds, %u bytes", c->name, n, nfds,
			  m->hdr.size);
		return -EINVAL;
	}
	/* Quiesce before anything is unmapped: queues hold translated pointers. */
	pause_rings(c);
	umdev_as_clear(c->as);
	for (unsigned i = 0; i < n; i++) {
		const struct vhost_user_mem_region *r = &t->regions[i];
		struct umdev_mem_region_desc d = {
			.guest_addr = r->guest_phys_addr,
			.size = r->memory_size,
			.user_addr = r->userspace_addr,
			.mmap_offset = r->mmap_offset,
			.fd = take_fd(fds, i),
			.prot = UMDEV_MEM_READ | UMDEV_MEM_WRITE,
		};
		int ret = umdev_as_add_region(c->as, &d);

		if (ret < 0) {
			umdev_err_rl(&c->rl, "%s: cannot map guest region %u (gpa 0x%llx size 0x%llx): %s",
				  c->name, i, (unsigned long long)r->guest_phys_addr,
				  (unsigned long long)r->memory_size, strerror(-ret));
			umdev_as_clear(c->as);
			return ret;
		}
	}
	resume_rings(c);
	return 0;
}

static int add_mem_reg(struct vu_conn *c, struct vhost_user_msg *m, int *fds)
{
	const struct vhost_user_mem_region *r = &m->p.mem_reg.region;
	struct umdev_mem_region_desc d = {
		.guest_addr = r->guest_phys_addr,
		.size = r->memory_size,
		.user_addr = r->userspace_addr,
		.mmap_offset = r->mmap_offset,
		.fd = take_fd(fds, 0),
		.prot = UMDEV_MEM_READ | UMDEV_MEM_WRITE,
	};
	int ret;

	if (umdev_as_num_regions(c->as) >= VU_MAX_MEM_SLOTS) {
		close(d.fd);
		umdev_err_rl(&c->rl, "%s: ADD_MEM_REG beyond the %u slots we announced", c->name,
			  VU_MAX_MEM_SLOTS);
		return -ENOSPC;
	}
	/* Queues must see the new map: restart them on it. */
	pause_rings(c);
	ret = umdev_as_add_region(c->as, &d);
	if (ret < 0)
		umdev_err_rl(&c->rl, "%s: cannot add guest region gpa 0x%llx size 0x%llx: %s", c->name,
			  (unsigned long long)r->guest_phys_addr,
			  (unsigned long long)r->memory_size, strerror(-ret));
	resume_rings(c);
	return ret < 0 ? VU_SOFT_FAIL : 0;
}

static int rem_mem_reg(struct vu_conn *c, struct vhost_user_msg *m)
{
	const struct vhost_user_mem_region *r = &m->p.mem_reg.region;
	int ret;

	/* (Any fd sent along is closed by the caller, as the spec requires.) */
	pause_rings(c);
	ret = umdev_as_remove_region(c->as, r->guest_phys_addr, r->memory_size);
	if (ret < 0)
		umdev_warn_rl(&c->rl, "%s: REM_MEM_REG for unknown region gpa 0x%llx size 0x%llx", c->name,
			   (unsigned long long)r->guest_phys_addr,
			   (unsigned long long)r->memory_size);
	resume_rings(c);
	return ret < 0 ? VU_SOFT_FAIL : 0;
}

static int set_features(struct vu_conn *c, uint64_t f)
{
	struct umdev_virtio_dev *vdev = vdev_of(c);
	uint64_t extra = f & ~offered_features(c);
	int ret = 0;

	if (extra) {
		umdev_err_rl(&c->rl, "%s: front-end acked features we never offered: 0x%llx", c->name,
			  (unsigned long long)extra);
		return -EINVAL;
	}
	/*
	 * Event-index and indirect support are read at ring start, and so is
	 * LOG_ALL: QEMU toggles it on running rings when a migration starts
	 * and ends, and requests in flight finish under the old setting.
	 */
	pause_rings(c);
	if ((c->features ^ f) & (1ull << VHOST_F_LOG_ALL))
		umdev_info("%s: dirty logging %s", c->name,
			   f & (1ull << VHOST_F_LOG_ALL) ? "on (migration starts)" : "off");
	c->features = f;
	/* Without protocol features there is no SET_VRING_ENABLE: rings are enabled. */
	if (!(f & VU_FRONTEND_FEATURES))
		for (unsigned i = 0; i < vdev->num_queues; i++)
			c->vrings[i].enabled = true;
	if (vdev->ops->set_features)
		ret = vdev->ops->set_features(vdev, f & ~VU_TRANSPORT_FEATURES);
	resume_rings(c);
	return ret;
}

static int get_config(struct vu_conn *c, struct vhost_user_msg *m)
{
	struct vhost_user_config *cfg = &m->p.config;
	struct umdev_virtio_dev *vdev = vdev_of(c);
	uint32_t have = 0;

	if (cfg->size > VHOST_USER_MAX_CONFIG_SIZE ||
	    cfg->offset > VHOST_USER_MAX_CONFIG_SIZE - cfg->size) {
		umdev_warn_rl(&c->rl, "%s: GET_CONFIG of %u bytes at %u is past the %u bytes a "
			      "message can carry", c->name, cfg->size, cfg->offset,
			      VHOST_USER_MAX_CONFIG_SIZE);
		/* The spec's error answer: a reply with a zero-length payload. */
		m->hdr.size = 0;
		return vu_send(c, m, NULL, 0);
	}
	/*
	 * Front-ends may ask for more than the device has (some always ask for
	 * 256 bytes): the reply has the size asked for, and bytes past the
	 * device's config space read as zero.
	 */
	if (cfg->offset < vdev->config_size)
		have = vdev->config_size - cfg->offset < cfg->size ? vdev->config_size - cfg->offset
								     : cfg->size;
	memset(cfg->payload, 0, cfg->size);
	if (have && vdev->ops->get_config(vdev, cfg->payload, cfg->offset, have) < 0)
		memset(cfg->payload, 0, cfg->size);
	m->hdr.size = VHOST_USER_CONFIG_HDR_SIZE + cfg->size;
	return vu_send(c, m, NULL, 0);
}

static int set_config(struct vu_conn *c, struct vhost_user_msg *m)
{
	struct vhost_user_config *cfg = &m->p.config;
	struct umdev_virtio_dev *vdev = vdev_of(c);
	int ret;

	if (cfg->size > m->hdr.size - VHOST_USER_CONFIG_HDR_SIZE) {
		umdev_err_rl(&c->rl, "%s: SET_CONFIG size %u exceeds its payload", c->name, cfg->size);
		return -EINVAL;
	}
	ret = vdev->ops->set_config ? vdev->ops->set_config(vdev, cfg->payload, cfg->offset,
							     cfg->size)
				    : -EPERM;
	if (ret < 0) {
		umdev_warn_rl(&c->rl, "%s: config write of %u bytes at %u refused: %s", c->name, cfg->size,
			   cfg->offset, strerror(-ret));
		return VU_SOFT_FAIL;
	}
	return 0;
}

static int get_inflight_fd(struct vu_conn *c, struct vhost_user_msg *m)
{
	struct vhost_user_inflight *in = &m->p.inflight;
	uint64_t per, size;
	int fd, ret;
	void *p;

	if (in->num_queues == 0 || in->num_queues > vdev_of(c)->num_queues ||
	    in->queue_size == 0 || in->queue_size > VIRTQ_MAX_SIZE) {
		umdev_err_rl(&c->rl, "%s: GET_INFLIGHT_FD for %u queues of %u entries", c->name,
			  in->num_queues, in->queue_size);
		return -EINVAL;
	}
	per = inflight_per_queue(c, in->queue_size);
	size = per * in->num_queues;
	fd = memfd_create("umdev-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	/* The front-end keeps it across our restarts: it must never shrink under a mapping. */
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		close(fd);
		return ret;
	}
	memset(p, 0, size);
	munmap(p, size);
	in->mmap_size = size;
	in->mmap_offset = 0;
	in->padding = 0;
	m->hdr.size = sizeof(*in);
	ret = vu_send(c, m, &fd, 1);
	close(fd);
	return ret;
}

static int set_inflight_fd(struct vu_conn *c, struct vhost_user_msg *m, int *fds)
{
	struct vhost_user_inflight *in = &m->p.inflight;
	uint64_t need;
	bool sealed;
	void *p;

	if (in->num_queues == 0 || in->num_queues > vdev_of(c)->num_queues ||
	    in->queue_size == 0 || in->queue_size > VIRTQ_MAX_SIZE) {
		umdev_err_rl(&c->rl, "%s: SET_INFLIGHT_FD for %u queues of %u entries", c->name,
			  in->num_queues, in->queue_size);
		return -EINVAL;
	}
	need = inflight_per_queue(c, in->queue_size) * in->num_queues;
	if (in->mmap_size < need || in->mmap_size > (1ull << 32)) {
		umdev_err_rl(&c->rl, "%s: inflight region of %llu bytes, need %llu", c->name,
			  (unsigned long long)in->mmap_size, (unsigned long long)need);
		return -EINVAL;
	}
	if (umdev_fd_check_range(fds[0], in->mmap_offset, in->mmap_size, &sealed) < 0) {
		umdev_err_rl(&c->rl, "%s: inflight fd holds less than the %llu bytes at offset %llu announced",
			  c->name, (unsigned long long)in->mmap_size,
			  (unsigned long long)in->mmap_offset);
		return -EINVAL;
	}
	p = mmap(NULL, in->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], in->mmap_offset);
	if (p == MAP_FAILED) {
		umdev_err_rl(&c->rl, "%s: cannot map inflight region: %s", c->name, strerror(errno));
		return -errno;
	}
	/* It may arrive before any ring exists, or while some run. */
	pause_rings(c);
	unmap_inflight(c);
	c->inflight = p;
	c->inflight_size = in->mmap_size;
	/* The front-end owns the file: it may shrink it under us like guest RAM. */
	c->inflight_guard = umdev_as_guard_add(c->as, p, in->mmap_size);
	c->inflight_queues = in->num_queues;
	c->inflight_qsize = in->queue_size;
	for (unsigned i = 0; i < vdev_of(c)->num_queues; i++)
		c->vrings[i].recover = true;
	resume_rings(c);
	return 0;
}

static int set_vring_fd(struct vu_conn *c, struct vhost_user_msg *m, int *fds, unsigned nfds)
{
	int i = ring_index(c, m->p.u64 & VHOST_USER_VRING_IDX_MASK, umdev_vu_request_name(m->hdr.request));
	int fd = nfds ? take_fd(fds, 0) : -1;
	struct vu_vring *vr;

	if (i < 0) {
		if (fd >= 0)
			close(fd);
		return VU_SOFT_FAIL;
	}
	vr = &c->vrings[i];
	/*
	 * Every ring fd is an eventfd we read (kick) or write (call, err) on a
	 * data-plane thread. Anything else (a pipe nobody reads, a socket, a
	 * file) could block that thread or never wake it: refuse it here. An
	 * accepted one is made non-blocking: a write to a saturated eventfd
	 * then fails with EAGAIN, and the interrupt is pending anyway.
	 */
	if (fd >= 0) {
		int ret = umdev_fd_prepare_eventfd(fd);

		if (ret < 0) {
			umdev_err_rl(&c->rl, "%s.q%d: %s fd refused: %s", c->name, i,
				     umdev_vu_request_name(m->hdr.request),
				     ret == -EBADFD ? "not an eventfd" : strerror(-ret));
			close(fd);
			return VU_SOFT_FAIL;
		}
	}
	switch (m->hdr.request) {
	case VHOST_USER_SET_VRING_KICK:
		vring_stop(c, i);
		close_fd(&vr->kick_fd);
		vr->kick_fd = fd; /* -1: the front-end asks us to poll */
		vr->started = true;
		if (!(c->features & VU_FRONTEND_FEATURES))
			vr->enabled = true;
		vring_apply(c, i);
		break;
	case VHOST_USER_SET_VRING_CALL:
		/* QEMU swaps call fds at run time (vector masking): no quiesce needed. */
		if (vr->vq)
			umdev_vdev_queue_set_call_fd(vdev_of(c), i, vr->vq, fd);
		close_fd(&vr->call_fd);
		vr->call_fd = fd;
		/*
		 * A completion may have been signalled on the previous fd, or on
		 * none: QEMU starts rings before it sends their call fds, and a
		 * guest that waits for that completion would wait forever. One
		 * spurious interrupt on the new fd makes the driver look at the
		 * used ring (found as a 1-in-10 boot hang with virtio-scsi).
		 */
		if (fd >= 0) {
			static const uint64_t one = 1;

			if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
				umdev_warn_rl(&c->rl, "%s.q%d: cannot signal the new call fd: %s", c->name, i,
					   strerror(errno));
		}
		break;
	default:
		/* The queue writes it from its loop: change it only while stopped. */
		vring_stop(c, i);
		close_fd(&vr->err_fd);
		vr->err_fd = fd;
		vring_apply(c, i);
		break;
	}
	return 0;
}

static int vring_config(struct vu_conn *c, struct vhost_user_msg *m)
{
	unsigned req = m->hdr.request;
	int i = ring_index(c, req == VHOST_USER_SET_VRING_ADDR ? m->p.addr.index : m->p.state.index,
			   umdev_vu_request_name(req));
	struct vu_vring *vr;

	if (i < 0)
		return VU_SOFT_FAIL;
	vr = &c->vrings[i];
	/*
	 * Legal at any time: QEMU re-sends SET_VRING_ADDR on a running ring to
	 * switch dirty logging, and other front-ends set rings up in other
	 * orders. The ring stops (its requests complete; the index it stopped
	 * at is kept), takes the change, and starts again if it still may.
	 */
	vring_stop(c, i);
	switch (req) {
	case VHOST_USER_SET_VRING_NUM:
		if (m->p.state.num == 0 || m->p.state.num > vdev_of(c)->max_queue_size ||
		    (m->p.state.num & (m->p.state.num - 1))) {
			umdev_err_rl(&c->rl, "%s.q%d: ring size %u not supported (power of two <= %u)",
				     c->name, i, m->p.state.num, vdev_of(c)->max_queue_size);
			vring_apply(c, i);
			return VU_SOFT_FAIL;
		}
		vr->num = m->p.state.num;
		break;
	case VHOST_USER_SET_VRING_BASE:
		/*
		 * Packed rings: bits 0-15 are the avail slot and its wrap counter
		 * (bit 15); newer QEMUs add the used slot and wrap in bits 16-31,
		 * older ones leave them 0, meaning "where avail is" (a stopped
		 * ring has nothing in flight).
		 */
		if (is_packed(c)) {
			vr->base = (uint16_t)m->p.state.num;
			vr->used_base = (uint16_t)(m->p.state.num >> 16);
			if (!vr->used_base)
				vr->used_base = vr->base;
			break;
		}
		if (m->p.state.num > 0xffff) {
			umdev_err_rl(&c->rl, "%s.q%d: ring base %u out of range", c->name, i,
				     m->p.state.num);
			vring_apply(c, i);
			return VU_SOFT_FAIL;
		}
		vr->base = m->p.state.num;
		break;
	default:
		if (m->p.addr.flags & ~(1u << VHOST_VRING_F_LOG)) {
			umdev_err_rl(&c->rl, "%s.q%d: SET_VRING_ADDR with unknown flags 0x%x", c->name,
				     i, m->p.addr.flags);
			vring_apply(c, i);
			return VU_SOFT_FAIL;
		}
		if ((m->p.addr.flags & (1u << VHOST_VRING_F_LOG)) &&
		    (!c->log || !umdev_dirty_log_covers(c->log, m->p.addr.log_guest_addr,
							is_packed(c) ? sizeof(struct virtq_packed_event) :
							virtq_used_bytes(vr->num ? vr->num : 1)))) {
			/* The spec: the used ring's last byte must fall inside the log. */
			umdev_err_rl(&c->rl, "%s.q%d: used-ring log address 0x%llx %s: refused",
				     c->name, i, (unsigned long long)m->p.addr.log_guest_addr,
				     c->log ? "is outside the dirty log" : "but no dirty log was given");
			vring_apply(c, i);
			return VU_SOFT_FAIL;
		}
		vr->addr = m->p.addr;
		vr->addr_set = true;
		break;
	}
	vring_apply(c, i);
	return 0;
}

/*
 * SET_LOG_BASE with LOG_SHMFD: map the front-end's log. The spec gives it no
 * reply payload, but QEMU (7.2 and later) waits for a message of this type
 * after it whenever LOG_SHMFD is negotiated, and reads none of its payload:
 * we answer with a u64, 0 on success and 1 on failure, like a REPLY_ACK.
 * A bad log (size, offset, fd) is refused and the old one, if any, kept.
 */
static int set_log_base(struct vu_conn *c, struct vhost_user_msg *m, int *fds, unsigned nfds)
{
	umdev_dirty_log *l;
	int err = 0;

	if (!has_proto(c, VHOST_USER_PROTOCOL_F_LOG_SHMFD)) {
		umdev_err_rl(&c->rl, "%s: SET_LOG_BASE without LOG_SHMFD negotiated: refused", c->name);
		return reply_u64(c, m, 1);
	}
	if (m->hdr.size != sizeof(m->p.log) || nfds != 1) {
		umdev_err_rl(&c->rl, "%s: SET_LOG_BASE with %u payload bytes and %u fds: refused "
			     "(need a log description and its fd)", c->name, m->hdr.size, nfds);
		return reply_u64(c, m, 1);
	}
	l = umdev_dirty_log_new(fds[0], m->p.log.mmap_size, m->p.log.mmap_offset, &err);
	if (!l) {
		umdev_err_rl(&c->rl, "%s: dirty log of %llu bytes at offset %llu refused: %s",
			     c->name, (unsigned long long)m->p.log.mmap_size,
			     (unsigned long long)m->p.log.mmap_offset,
			     err == -EBADFD ? "not a memory file" :
			     err == -ERANGE ? "the file is smaller" :
			     err == -EINVAL ? "zero, over 1 GiB or unaligned" : strerror(-err));
		return reply_u64(c, m, 1);
	}
	if (c->no_dirty_log)
		umdev_warn("%s: UMDEV_DEBUG_NO_DIRTY_LOG is set: the dirty log is NOT marked, "
			   "migrations will lose data", c->name);
	pause_rings(c);
	unmap_log(c);
	c->log = l;
	/* The front-end owns the file: it may shrink it under us like guest RAM. */
	c->log_guard = umdev_as_guard_add(c->as, umdev_dirty_log_base(l), umdev_dirty_log_size(l));
	umdev_dbg("%s: dirty log of %llu bytes mapped", c->name,
		  (unsigned long long)umdev_dirty_log_size(l));
	resume_rings(c);
	return reply_u64(c, m, 0);
}

static int get_vring_base(struct vu_conn *c, struct vhost_user_msg *m)
{
	int i = ring_index(c, m->p.state.index, "GET_VRING_BASE");
	struct vu_vring *vr;

	if (i < 0) {
		/* It always gets a reply: a ring that does not exist is at 0. */
		m->p.state.num = 0;
		m->hdr.size = sizeof(m->p.state);
		return vu_send(c, m, NULL, 0);
	}
	vr = &c->vrings[i];
	/* Stops the ring (in-flight requests complete first); indices are kept. */
	vr->started = false;
	vring_apply(c, i);
	close_fd(&vr->kick_fd);
	/*
	 * While logging, this stop is a live migration handing the device over
	 * to another host on shared storage, which starts serving the guest
	 * once QEMU has our answer: what completed here must be durable and
	 * visible there first (writes the file backend made through the page
	 * cache included).
	 */
	if ((c->features & (1ull << VHOST_F_LOG_ALL)) && vdev_of(c)->ops->flush) {
		int ret = vdev_of(c)->ops->flush(vdev_of(c));

		if (ret < 0)
			umdev_err_rl(&c->rl, "%s.q%d: flush at the migration hand-over failed: %s",
				     c->name, i, strerror(-ret));
	}
	m->p.state.num = vr->base;
	if (is_packed(c))
		m->p.state.num |= (uint32_t)vr->used_base << 16;
	m->hdr.size = sizeof(m->p.state);
	return vu_send(c, m, NULL, 0);
}

static int reset_device(struct vu_conn *c)
{
	struct umdev_virtio_dev *vdev = vdev_of(c);

	pause_rings(c);
	for (unsigned i = 0; i < vdev->num_queues; i++) {
		struct vu_vring *vr = &c->vrings[i];

		vr->started = vr->enabled = vr->addr_set = false;
		vr->base = 0;
		vr->used_base = 0;
		vr->num = 0;
		close_fd(&vr->kick_fd);
	}
	c->features = 0;
	c->status = 0;
	if (vdev->ops->reset)
		vdev->ops->reset(vdev);
	return 0;
}

static int handle(struct vu_conn *c, struct vhost_user_msg *m, int *fds, unsigned nfds,
		  bool *acked);

/*
 * Dispatch one validated message. A negative return closes the connection;
 * if the front-end asked for a reply, it gets a non-zero ack first, since
 * the spec says a requested reply must be sent.
 */
int vu_handle(struct vu_conn *c, struct vhost_user_msg *m, int *fds, unsigned nfds)
{
	uint32_t req = m->hdr.request;
	bool asked = m->hdr.flags & VHOST_USER_FLAG_NEED_REPLY;
	bool acked = false;
	int ret = handle(c, m, fds, nfds, &acked);

	if (ret < 0 && asked && !acked && has_proto(c, VHOST_USER_PROTOCOL_F_REPLY_ACK)) {
		m->hdr.request = req;
		m->hdr.flags = VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY;
		(void)reply_u64(c, m, 1);
	}
	return ret;
}

static int handle(struct vu_conn *c, struct vhost_user_msg *m, int *fds, unsigned nfds,
		  bool *acked)
{
	struct umdev_virtio_dev *vdev = vdev_of(c);
	unsigned req = m->hdr.request;
	bool asked = m->hdr.flags & VHOST_USER_FLAG_NEED_REPLY;
	bool need_reply = asked && has_proto(c, VHOST_USER_PROTOCOL_F_REPLY_ACK);
	int ret = 0, i;

	umdev_dbg("%s: %s", c->name, umdev_vu_request_name(req));
	m->hdr.flags = VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY;

	/* Requests that always answer do so themselves, failure or not. */
	*acked = req == VHOST_USER_GET_FEATURES || req == VHOST_USER_GET_PROTOCOL_FEATURES ||
		 req == VHOST_USER_GET_QUEUE_NUM || req == VHOST_USER_GET_MAX_MEM_SLOTS ||
		 req == VHOST_USER_GET_STATUS || req == VHOST_USER_GET_VRING_BASE ||
		 req == VHOST_USER_GET_CONFIG || req == VHOST_USER_GET_INFLIGHT_FD ||
		 req == VHOST_USER_SET_LOG_BASE;
	switch (req) {
	case VHOST_USER_GET_FEATURES:
		return reply_u64(c, m, offered_features(c));
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		return reply_u64(c, m, offered_protocol(c));
	case VHOST_USER_GET_QUEUE_NUM:
		return reply_u64(c, m, vdev->num_queues);
	case VHOST_USER_GET_MAX_MEM_SLOTS:
		return reply_u64(c, m, VU_MAX_MEM_SLOTS);
	case VHOST_USER_GET_STATUS:
		return reply_u64(c, m, c->status);
	case VHOST_USER_GET_VRING_BASE:
		return get_vring_base(c, m);
	case VHOST_USER_GET_CONFIG:
		return get_config(c, m);
	case VHOST_USER_GET_INFLIGHT_FD:
		return get_inflight_fd(c, m);
	case VHOST_USER_SET_LOG_BASE:
		return set_log_base(c, m, fds, nfds);

	case VHOST_USER_SET_FEATURES:
		ret = set_features(c, m->p.u64);
		break;
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (m->p.u64 & ~offered_protocol(c)) {
			umdev_err_rl(&c->rl, "%s: protocol features 0x%llx were never offered", c->name,
				  (unsigned long long)(m->p.u64 & ~offered_protocol(c)));
			return -EINVAL;
		}
		c->protocol_features = m->p.u64;
		need_reply = asked && has_proto(c, VHOST_USER_PROTOCOL_F_REPLY_ACK);
		break;
	case VHOST_USER_SET_OWNER:
		break;
	case VHOST_USER_RESET_OWNER:
	case VHOST_USER_RESET_DEVICE:
		ret = reset_device(c);
		break;
	case VHOST_USER_SET_MEM_TABLE:
		ret = set_mem_table(c, m, fds, nfds);
		break;
	case VHOST_USER_ADD_MEM_REG:
		ret = add_mem_reg(c, m, fds);
		break;
	case VHOST_USER_REM_MEM_REG:
		ret = rem_mem_reg(c, m);
		break;
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_SET_VRING_ADDR:
		ret = vring_config(c, m);
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		ret = set_vring_fd(c, m, fds, nfds);
		break;
	case VHOST_USER_SET_VRING_ENABLE:
		i = ring_index(c, m->p.state.index, "SET_VRING_ENABLE");
		if (i < 0) {
			ret = VU_SOFT_FAIL;
			break;
		}
		if (m->p.state.num > 1) {
			umdev_err_rl(&c->rl, "%s.q%d: SET_VRING_ENABLE with %u", c->name, i,
				     m->p.state.num);
			ret = VU_SOFT_FAIL;
			break;
		}
		c->vrings[i].enabled = m->p.state.num;
		vring_apply(c, i);
		break;
	case VHOST_USER_SET_CONFIG:
		ret = set_config(c, m);
		break;
	case VHOST_USER_SET_INFLIGHT_FD:
		ret = set_inflight_fd(c, m, fds);
		break;
	case VHOST_USER_SET_BACKEND_REQ_FD:
		ret = set_backend_req_fd(c, fds, nfds);
		break;
	case VHOST_USER_SET_STATUS:
		if (m->p.u64 > 0xff) {
			umdev_err_rl(&c->rl, "%s: SET_STATUS 0x%llx", c->name, (unsigned long long)m->p.u64);
			return -EINVAL;
		}
		c->status = m->p.u64;
		break;
	default:
		umdev_err_rl(&c->rl, "%s: %s is not supported", c->name, umdev_vu_request_name(req));
		return -EOPNOTSUPP;
	}
	if (ret < 0)
		return ret;
	*acked = true;
	if (need_reply)
		return reply_u64(c, m, ret == VU_SOFT_FAIL);
	return 0;
}
