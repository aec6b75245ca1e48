/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Format-independent part of the device-side virtqueue: the state machine
 * (STOPPED -> RUNNING -> BROKEN -> STOPPED), the map reference, the call
 * eventfd and the inflight region. Ring walking lives behind the ops table
 * in vq_split.c and vq_packed.c, chosen at start from the config.
 *
 * Choices where vq.h leaves room:
 * - pop/get_head on a STOPPED queue return -EINVAL (a caller bug); -EIO
 *   always means BROKEN. get_head returns 1 on success, like pop.
 * - notify returns 1 whenever the driver wanted an interrupt, even with no
 *   call fd (polling front-ends), and writes the eventfd only if there is one.
 * - The first notify after start always signals: we cannot know whether the
 *   previous owner of the ring signalled, and a spurious interrupt is cheap.
 * - A head is "busy" from pop (or recovery) to push. The driver offering a
 *   busy head again breaks the queue; pushing a head that is not busy is a
 *   device bug, logged and dropped.
 * - An inflight region is written only once it is known to fit: a fresh
 *   one is initialised at start, an old one must have version 1 and
 *   desc_num == size (checked at start and again by recover).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "umdev/log.h"
#include "umdev/loop.h"
#include "util/shm.h"
#include "virtio/vq_internal.h"

umdev_vq *umdev_vq_new(const char *name, int *err)
{
	umdev_vq *vq = calloc(1, sizeof(*vq));

	if (!vq) {
		*err = -ENOMEM;
		return NULL;
	}
	snprintf(vq->name, sizeof(vq->name), "%s", name ? name : "vq");
	vq->state = UMDEV_VQ_STOPPED;
	vq->ops = &umdev_vq_split_ops;
	vq->call_fd = -1;
	vq->err_fd = -1;
	*err = 0;
	return vq;
}

/* The ring views go before the map whose windows they copy. */
static void ring_views_free(umdev_vq *vq)
{
	for (unsigned i = 0; i < UMDEV_VQ_RING_PARTS; i++) {
		umdev_as_view_free(vq->ring_view[i]);
		vq->ring_view[i] = NULL;
	}
}

void *umdev_vq_ring_part(umdev_vq *vq, unsigned part, uint64_t addr, uint64_t len,
			 unsigned prot, int *err)
{
	umdev_as_view_free(vq->ring_view[part]);
	return umdev_as_map_translate_view(vq->map, addr, len, prot, &vq->ring_view[part], err);
}

const void *umdev_vq_indirect_table(const umdev_vq *vq, uint64_t addr, uint32_t len,
				   bool *through)
{
	const void *t = umdev_as_map_translate(vq->map, addr, len, UMDEV_MEM_READ);
	int span;

	*through = false;
	if (t)
		return t;
	/* Seams off a page boundary do not matter to a copy. */
	span = umdev_as_map_span(vq->map, addr, len, UMDEV_MEM_READ);
	*through = span == 1 || span == -EXDEV || span == -EOPNOTSUPP;
	return NULL;
}

void umdev_vq_free(umdev_vq *vq)
{
	if (!vq)
		return;
	ring_views_free(vq);
	umdev_as_map_put(vq->map);
	vq->ops->stop(vq);
	free(vq->busy);
	free(vq->span);
	free(vq);
}

void umdev_vq_set_broken(umdev_vq *vq, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (vq->state == UMDEV_VQ_BROKEN)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Memory the client took away reads as zeros: that is not a driver bug to report. */
	if (umdev_as_map_faulted(vq->map))
		umdev_dbg("%s: queue stopped: its memory was taken away (%s)", vq->name, msg);
	else
		umdev_err("%s: driver error, queue broken: %s", vq->name, msg);
	vq->state = UMDEV_VQ_BROKEN;
	/* Tell the front-end too (QEMU logs a vring error for it). */
	if (vq->err_fd >= 0) {
		static const uint64_t one = 1;

		if (write(vq->err_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			umdev_warn("%s: error eventfd write failed: %s", vq->name, strerror(errno));
	}
}

int umdev_vq_start(umdev_vq *vq, umdev_as_map *map, const struct umdev_vq_config *cfg)
{
	int ret;

	if (vq->state != UMDEV_VQ_STOPPED)
		return -EBUSY;
	if (!map || !cfg)
		return -EINVAL;
	/* Power of two in 1..32768: masks replace modulo in the ring code. */
	if (cfg->size == 0 || cfg->size > VIRTQ_MAX_SIZE || (cfg->size & (cfg->size - 1)))
		return -EINVAL;
	free(vq->busy);
	free(vq->span);
	vq->busy = calloc((cfg->size + 63) / 64, sizeof(*vq->busy));
	vq->span = calloc(cfg->size, sizeof(*vq->span));
	if (!vq->busy || !vq->span)
		return -ENOMEM;
	vq->walk = (struct umdev_vq_span){ 0, UINT64_MAX };
	vq->cfg = *cfg;
	vq->ops = cfg->packed ? &umdev_vq_packed_ops : &umdev_vq_split_ops;
	vq->map = umdev_as_map_ref(map);
	vq->last_avail_idx = cfg->last_avail_idx;
	vq->inuse = 0;
	memset(&vq->split, 0, sizeof(vq->split));
	ret = vq->ops->start(vq);
	if (ret < 0) {
		vq->ops->stop(vq);
		ring_views_free(vq);
		umdev_as_map_put(vq->map);
		vq->map = NULL;
		return ret;
	}
	vq->state = UMDEV_VQ_RUNNING;

	/*
	 * A fresh region is set up here so tracking works even if the owner
	 * never calls recover; an initialised one is only trusted once
	 * umdev_vq_recover_inflight() has checked it (or it looks sane now).
	 */
	vq->inflight_active = false;
	vq->inflight_counter = 0;
	if (vq->inflight)
		vq->ops->inflight_attach(vq);
	return 0;
}

uint16_t umdev_vq_stop(umdev_vq *vq)
{
	vq->state = UMDEV_VQ_STOPPED;
	ring_views_free(vq);
	umdev_as_map_put(vq->map);
	vq->map = NULL;
	vq->inuse = 0;
	vq->inflight_active = false;
	free(vq->busy);
	vq->busy = NULL;
	free(vq->span);
	vq->span = NULL;
	vq->ops->stop(vq);
	memset(&vq->split, 0, sizeof(vq->split));
	return vq->last_avail_idx;
}

enum umdev_vq_state umdev_vq_get_state(const umdev_vq *vq)
{
	return vq->state;
}

uint16_t umdev_vq_size(const umdev_vq *vq)
{
	return vq->cfg.size;
}

bool umdev_vq_memory_gone(const umdev_vq *vq)
{
	return umdev_as_map_faulted(vq->map);
}

/* Run on @map from now on; the caller checked it keeps all the queue uses. */
static void take_map(umdev_vq *vq, umdev_as_map *map)
{
	umdev_as_map *old = vq->map;

	vq->map = umdev_as_map_ref(map);
	umdev_as_map_put(old);
}

int umdev_vq_grow_map(umdev_vq *vq, umdev_as_map *map)
{
	if (vq->state != UMDEV_VQ_RUNNING || !vq->map)
		return -EINVAL;
	if (!umdev_as_map_covers(map, vq->map))
		return -ESTALE;
	take_map(vq, map);
	return 0;
}

static bool overlaps(uint64_t lo, uint64_t hi, uint64_t addr, uint64_t last)
{
	return lo <= last && hi >= addr;
}

uint64_t umdev_vq_ring_part_bytes(bool packed, uint32_t size, unsigned part)
{
	switch (part) {
	case 0: /* packed descriptors are 16 bytes too */
		return virtq_desc_bytes(size);
	case 1:
		return packed ? sizeof(struct virtq_packed_event) : virtq_avail_bytes(size);
	default:
		return packed ? sizeof(struct virtq_packed_event) : virtq_used_bytes(size);
	}
}

bool umdev_vq_uses(const umdev_vq *vq, uint64_t addr, uint64_t len)
{
	const struct umdev_vq_config *c = &vq->cfg;
	const uint64_t last = addr + len - 1;
	const uint64_t part[UMDEV_VQ_RING_PARTS] = { c->desc_addr, c->avail_addr, c->used_addr };

	if (!len || last < addr)
		return true;
	for (unsigned i = 0; i < UMDEV_VQ_RING_PARTS; i++)
		if (overlaps(part[i], part[i] + umdev_vq_ring_part_bytes(c->packed, c->size, i) - 1,
			     addr, last))
			return true;
	for (unsigned w = 0; vq->busy && w < (c->size + 63u) / 64; w++)
		for (uint64_t bits = vq->busy[w]; bits; bits &= bits - 1) {
			unsigned h = w * 64 + (unsigned)__builtin_ctzll(bits);

			if (overlaps(vq->span[h].lo, vq->span[h].hi, addr, last))
				return true;
		}
	return false;
}

int umdev_vq_shrink_map(umdev_vq *vq, umdev_as_map *map, uint64_t addr, uint64_t len)
{
	if (vq->state != UMDEV_VQ_RUNNING || !vq->map)
		return -EINVAL;
	if (umdev_vq_uses(vq, addr, len))
		return -EBUSY;
	if (!umdev_as_map_covers_except(map, vq->map, addr, len))
		return -ESTALE;
	take_map(vq, map);
	return 0;
}

umdev_as_map *umdev_vq_map(const umdev_vq *vq)
{
	return vq->map;
}

uint16_t umdev_vq_last_avail_idx(const umdev_vq *vq)
{
	return vq->last_avail_idx;
}

uint16_t umdev_vq_last_used_idx(const umdev_vq *vq)
{
	if (vq->cfg.packed)
		return vq->packed.used_idx | (vq->packed.used_wrap ? VIRTQ_PACKED_WRAP_BIT : 0);
	return vq->split.used_idx;
}

bool umdev_vq_is_packed(const umdev_vq *vq)
{
	return vq->cfg.packed;
}

unsigned umdev_vq_inuse(const umdev_vq *vq)
{
	return vq->inuse;
}

int umdev_vq_pop(umdev_vq *vq, struct umdev_vq_elem *elem, struct iovec *iov, unsigned max_iov)
{
	if (vq->state == UMDEV_VQ_BROKEN)
		return -EIO;
	if (vq->state != UMDEV_VQ_RUNNING)
		return -EINVAL;
	return vq->ops->pop(vq, elem, iov, max_iov);
}

int umdev_vq_get_head(umdev_vq *vq, uint16_t head, struct umdev_vq_elem *elem,
		      struct iovec *iov, unsigned max_iov)
{
	if (vq->state == UMDEV_VQ_BROKEN)
		return -EIO;
	if (vq->state != UMDEV_VQ_RUNNING)
		return -EINVAL;
	return vq->ops->get_head(vq, head, elem, iov, max_iov);
}

void umdev_vq_push(umdev_vq *vq, uint16_t head, uint32_t written)
{
	/*
	 * A broken ring is not written to any more: the driver must reset the
	 * device anyway, and nothing it could read there would be meaningful.
	 */
	if (vq->state != UMDEV_VQ_RUNNING) {
		if (vq->inuse)
			vq->inuse--;
		return;
	}
	/* Device bugs, not guest input: refuse rather than hand the driver a
	 * head it does not expect (it would have to reset the device). */
	if (head >= vq->cfg.size || !umdev_vq_head_busy(vq, head)) {
		umdev_err("%s: push of head %u that is not in use (device bug)", vq->name, head);
		return;
	}
	umdev_vq_head_set_busy(vq, head, false);
	vq->ops->push(vq, head, written);
	if (vq->inuse)
		vq->inuse--;
}

void umdev_vq_set_call_fd(umdev_vq *vq, int fd)
{
	int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;

	/* Only a non-blocking eventfd may be written through the loop's ring. */
	vq->call_nonblock = fl >= 0 && (fl & O_NONBLOCK);
	vq->call_fd = fd;
}

void umdev_vq_set_notify_fn(umdev_vq *vq, void (*fn)(void *opaque), void *opaque)
{
	vq->notify_fn = fn;
	vq->notify_opaque = opaque;
}

void umdev_vq_set_log(umdev_vq *vq, const struct umdev_vq_log *log)
{
	if (log && log->log && (log->data || log->used))
		vq->log = *log;
	else
		memset(&vq->log, 0, sizeof(vq->log));
}

void umdev_vq_log_write(umdev_vq *vq, const struct iovec *iov, unsigned n)
{
	if (!vq->log.data || vq->state == UMDEV_VQ_STOPPED)
		return;
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa;

		if (!iov[i].iov_len)
			continue;
		/* Iovecs from pop lie inside one region of the map we hold. */
		if (umdev_as_map_hva_to_gpa(vq->map, iov[i].iov_base, iov[i].iov_len, &gpa) < 0) {
			umdev_err("%s: written buffer not in guest memory, cannot log it (bug)",
				  vq->name);
			continue;
		}
		umdev_dirty_log_mark(vq->log.log, gpa, iov[i].iov_len);
	}
}

void umdev_vq_set_err_fd(umdev_vq *vq, int fd)
{
	vq->err_fd = fd;
}

int umdev_vq_notify(umdev_vq *vq)
{
	static const uint64_t one = 1;
	int ret = 0;

	if (vq->state != UMDEV_VQ_RUNNING)
		return 0;
	if (!vq->ops->need_notify(vq))
		return 0;
	/*
	 * Without a call fd the owner polls; still report that the driver
	 * wanted an interrupt. EAGAIN means the counter is saturated, which
	 * already wakes the reader. From the end of a loop iteration the
	 * loop writes it with the system call that puts it to sleep.
	 */
	if (vq->notify_fn)
		vq->notify_fn(vq->notify_opaque);
	else if (vq->call_fd >= 0 && vq->call_nonblock)
		ret = umdev_loop_signal_eventfd(vq->call_fd);
	else if (vq->call_fd >= 0 && write(vq->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		ret = -errno;
	if (ret < 0)
		umdev_warn("%s: call eventfd write failed: %s", vq->name, strerror(-ret));
	return 1;
}

bool umdev_vq_enable_kicks(umdev_vq *vq)
{
	if (vq->state != UMDEV_VQ_RUNNING)
		return false;
	return vq->ops->enable_kicks(vq);
}

void umdev_vq_disable_kicks(umdev_vq *vq)
{
	if (vq->state == UMDEV_VQ_RUNNING)
		vq->ops->disable_kicks(vq);
}

bool umdev_vq_has_avail(umdev_vq *vq)
{
	if (vq->state != UMDEV_VQ_RUNNING)
		return false;
	return vq->ops->has_avail(vq);
}

uint64_t umdev_vq_inflight_size(uint16_t size)
{
	uint64_t n = sizeof(struct vhost_user_inflight_queue) +
		     (uint64_t)size * sizeof(struct vhost_user_inflight_desc);

	return (n + 63) & ~63ull;
}

uint64_t umdev_vq_inflight_size_packed(uint16_t size)
{
	uint64_t n = sizeof(struct vhost_user_inflight_queue_packed) +
		     (uint64_t)size * sizeof(struct vhost_user_inflight_desc_packed);

	return (n + 63) & ~63ull;
}

void umdev_vq_set_inflight(umdev_vq *vq, struct vhost_user_inflight_queue *region)
{
	vq->inflight = region;
	vq->inflight_active = false;
}

static int cmp_recovered(const void *a, const void *b)
{
	const struct umdev_vq_recovered *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return (int)x->idx - (int)y->idx;
}

void umdev_vq_inflight_adopt(umdev_vq *vq, uint16_t version, uint16_t num,
			     const uint8_t *counter0, size_t stride)
{
	if (version == 0) {
		vq->ops->inflight_init(vq);
	} else if (version == VHOST_USER_INFLIGHT_VERSION && num == vq->cfg.size) {
		for (unsigned i = 0; i < vq->cfg.size; i++) {
			uint64_t c = umdev_shm_ld64(counter0 + (size_t)i * stride);

			if (c > vq->inflight_counter)
				vq->inflight_counter = c;
		}
		vq->inflight_active = true;
	} else {
		umdev_warn("%s: inflight region version %u desc_num %u does not fit ring size %u; not tracking",
			   vq->name, version, num, vq->cfg.size);
	}
}

/* Resubmission keeps the driver's submission order (the counter). */
void umdev_vq_sort_recovered(struct umdev_vq_recovered *r, unsigned n)
{
	qsort(r, n, sizeof(*r), cmp_recovered);
}

int umdev_vq_recover_inflight(umdev_vq *vq, uint16_t *heads, unsigned max)
{
	int n;

	if (vq->state == UMDEV_VQ_BROKEN)
		return -EIO;
	if (vq->state != UMDEV_VQ_RUNNING)
		return -EINVAL;
	if (!vq->inflight)
		return 0;
	n = vq->ops->recover_inflight(vq, heads, max);
	for (int i = 0; i < n; i++)
		umdev_vq_head_set_busy(vq, heads[i], true);
	return n;
}
