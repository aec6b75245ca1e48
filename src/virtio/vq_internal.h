/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private virtqueue state shared by the format-independent front (vq.c) and
 * the ring formats (vq_split.c, vq_packed.c).
 *
 * The front owns the state machine, the map reference, the call fd and the
 * inflight region pointer; a format implements the ring walking behind
 * struct umdev_vq_ops. Formats report guest errors through
 * umdev_vq_set_broken(), which logs exactly once.
 */
#ifndef UMDEV_VIRTIO_VQ_INTERNAL_H
#define UMDEV_VIRTIO_VQ_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "umdev/proto/vhost_user.h"
#include "umdev/proto/virtio_ring.h"
#include "umdev/proto/virtio_ring_packed.h"
#include "umdev/vq.h"
#include "util/shm.h"

#define UMDEV_VQ_NAME_MAX 32

/*
 * Largest indirect table we walk, in descriptors. The spec lets a table
 * exceed the ring size (Linux does with seg_max > queue size), so the cap
 * is the largest ring rather than this ring; max_iov bounds real use.
 */
#define UMDEV_VQ_MAX_INDIRECT VIRTQ_MAX_SIZE

/**
 * struct umdev_vq_ops - one ring format. Called only by vq.c, only in the
 * states noted; none may be NULL.
 * @start: translate and check the ring parts (STOPPED -> about to run).
 *         -EFAULT/-EINVAL as umdev_vq_start() documents.
 * @pop: RUNNING only. 1, 0 or -EIO (queue now BROKEN).
 * @get_head: RUNNING only; build the element of a given head.
 * @push: RUNNING only; publish one used entry (and inflight bookkeeping).
 * @need_notify: RUNNING only; decide on an interrupt and record the
 *               decision point. Includes the required full fence.
 * @enable_kicks/@disable_kicks/@has_avail: RUNNING only.
 * @inflight_init: initialise a fresh (version 0) inflight region.
 * @inflight_attach: at start, a region is attached: initialise it if fresh,
 *                   else check it fits; sets vq->inflight_active.
 * @recover_inflight: RUNNING only; see umdev_vq_recover_inflight().
 * @stop: release what @start allocated (may be called after a failed start).
 */
struct umdev_vq_ops {
	int (*start)(umdev_vq *vq);
	int (*pop)(umdev_vq *vq, struct umdev_vq_elem *elem, struct iovec *iov, unsigned max_iov);
	int (*get_head)(umdev_vq *vq, uint16_t head, struct umdev_vq_elem *elem,
			struct iovec *iov, unsigned max_iov);
	void (*push)(umdev_vq *vq, uint16_t head, uint32_t written);
	bool (*need_notify)(umdev_vq *vq);
	bool (*enable_kicks)(umdev_vq *vq);
	void (*disable_kicks)(umdev_vq *vq);
	bool (*has_avail)(umdev_vq *vq);
	void (*inflight_init)(umdev_vq *vq);
	void (*inflight_attach)(umdev_vq *vq);
	int (*recover_inflight)(umdev_vq *vq, uint16_t *heads, unsigned max);
	void (*stop)(umdev_vq *vq);
};

/* Split ring state: host pointers into the held map, and device shadows. */
struct umdev_vq_split {
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t *used_event; /* avail->ring[size], valid with EVENT_IDX */
	uint16_t *avail_event; /* &used->ring[size], valid with EVENT_IDX */
	uint16_t shadow_avail_idx; /* last avail->idx read */
	uint16_t used_idx; /* device's own copy; used->idx is write-only to us */
	uint16_t used_flags; /* device's own copy of used->flags */
	uint16_t signalled_used; /* used_idx at the last notify decision */
	bool signalled_used_valid; /* false until the first decision */
};

/* Packed ring state: host pointers into the held map, and device positions. */
struct umdev_vq_packed {
	struct virtq_packed_desc *desc;
	struct virtq_packed_event *driver; /* driver area: read only */
	struct virtq_packed_event *device; /* device area: written only */
	uint16_t avail_idx; /* next slot to pop, 0..size-1 */
	bool avail_wrap;
	uint16_t used_idx; /* next slot to write a used descriptor at */
	bool used_wrap;
	uint16_t signalled_used; /* used_idx at the last notify decision */
	bool signalled_valid;
	unsigned pushed; /* ring slots made used since the last notify decision */
	uint16_t dev_flags; /* last flags written to the device area; 0xffff: none */
	uint16_t *id_num; /* per buffer id: ring slots its chain took */
	uint16_t *id_ent; /* per buffer id: inflight head entry */
};

/* Ring parts: descriptor table, driver area (avail), device area (used). */
#define UMDEV_VQ_RING_PARTS 3

struct umdev_vq {
	char name[UMDEV_VQ_NAME_MAX];
	enum umdev_vq_state state;
	const struct umdev_vq_ops *ops;
	umdev_as_map *map; /* held while RUNNING or BROKEN */
	/* Contiguous mappings of ring parts that span windows (a vIOMMU maps per page). */
	umdev_as_view *ring_view[UMDEV_VQ_RING_PARTS];
	struct umdev_vq_config cfg; /* as given to start */
	uint16_t last_avail_idx;
	unsigned inuse;
	int call_fd;
	bool call_nonblock; /* O_NONBLOCK when set: may be written through the loop's ring */
	void (*notify_fn)(void *opaque); /* instead of call_fd when set */
	void *notify_opaque;
	int err_fd; /* signalled once when the queue breaks; -1: none */
	struct vhost_user_inflight_queue *inflight; /* borrowed, may be NULL */
	bool inflight_active; /* region checked: pop/push may write it */
	uint64_t inflight_counter; /* last submission counter handed out */
	uint64_t *busy; /* bit per head: popped, not yet pushed */
	/*
	 * Per busy head, the guest addresses its chain touches (first and last
	 * byte over every descriptor and indirect table): a DMA_UNMAP elsewhere
	 * need not wait for it (umdev_vq_uses()). walk: the chain just walked,
	 * taken by the next umdev_vq_head_set_busy(); everything until then.
	 */
	struct umdev_vq_span {
		uint64_t lo, hi;
	} *span, walk;
	struct umdev_vq_log log; /* log.log NULL: not logging */
	struct umdev_vq_split split;
	struct umdev_vq_packed packed;
};

/* Translation flags a buffer descriptor adds to its access. */
static inline unsigned shadow_prot(const umdev_vq *vq)
{
	return vq->cfg.shadow_buffers ? UMDEV_MEM_SHADOW : 0;
}

static inline bool umdev_vq_head_busy(const umdev_vq *vq, uint16_t head)
{
	return vq->busy[head / 64] & (1ull << (head % 64));
}

static inline void umdev_vq_head_set_busy(umdev_vq *vq, uint16_t head, bool busy)
{
	if (busy) {
		vq->busy[head / 64] |= 1ull << (head % 64);
		/* A head recovered without a walk may touch anything. */
		vq->span[head] = vq->walk;
		vq->walk = (struct umdev_vq_span){ 0, UINT64_MAX };
	} else {
		vq->busy[head / 64] &= ~(1ull << (head % 64));
	}
}

/* Widen @sp by guest range [@addr, +@len) (a walked descriptor or table). */
static inline void umdev_vq_span_add(struct umdev_vq_span *sp, uint64_t addr, uint64_t len)
{
	if (!len)
		return;
	if (addr < sp->lo)
		sp->lo = addr;
	if (addr + len - 1 > sp->hi)
		sp->hi = addr + len - 1;
}

/* A buffer recovery found in flight; sorted by submission counter. */
struct umdev_vq_recovered {
	uint64_t counter;
	uint16_t idx; /* head (split) or inflight entry (packed) */
};

void umdev_vq_sort_recovered(struct umdev_vq_recovered *r, unsigned n);

/*
 * Start with an inflight region whose header says @version and @num: set up
 * a fresh one (ops->inflight_init), trust one that fits (its largest
 * submission counter, read at @counter0 + i * @stride, is where ours
 * resumes), or warn and leave tracking off.
 */
void umdev_vq_inflight_adopt(umdev_vq *vq, uint16_t version, uint16_t num,
			     const uint8_t *counter0, size_t stride);

extern const struct umdev_vq_ops umdev_vq_split_ops;
extern const struct umdev_vq_ops umdev_vq_packed_ops;

/* A write of @len bytes at @off into the used ring happened: log it. */
static inline void umdev_vq_log_used(umdev_vq *vq, uint64_t off, uint64_t len)
{
	if (vq->log.used)
		umdev_dirty_log_mark(vq->log.log, vq->log.used_gpa + off, len);
}

/**
 * umdev_vq_ring_part() - host pointer for ring part @part (< UMDEV_VQ_RING_PARTS)
 * at [@addr, +@len) with @prot, through the held map: one region, or a view
 * the queue keeps until it stops when the part spans adjacent windows. NULL
 * with *@err as umdev_as_map_translate_view(). Formats' @start only.
 */
void *umdev_vq_ring_part(umdev_vq *vq, unsigned part, uint64_t addr, uint64_t len,
			 unsigned prot, int *err);

/**
 * umdev_vq_indirect_table() - an indirect table of @len bytes at @addr: a
 * host pointer when it lies in one region; else NULL, with *@through true
 * when it spans adjacent readable windows (a vIOMMU maps the kmalloc'ed
 * table page by page): its entries are then copied one by one.
 */
const void *umdev_vq_indirect_table(const umdev_vq *vq, uint64_t addr, uint32_t len,
				    bool *through);

/**
 * umdev_vq_desc_load() - copy 16-byte descriptor @i of a table: through
 * @table when it is a host pointer, else from guest address @addr. 0 or
 * -EFAULT. Inline: the ring walk calls it for every descriptor.
 */
static inline int umdev_vq_desc_load(const umdev_vq *vq, const void *table, uint64_t addr,
				     uint32_t i, void *desc)
{
	if (table) {
		umdev_shm_copy_in(desc, (const uint8_t *)table + 16ull * i, 16);
		return 0;
	}
	return umdev_as_map_read(vq->map, addr + 16ull * i, desc, 16);
}

/**
 * umdev_vq_set_broken() - the driver broke the ring: log one line saying
 * what (printf-style, prefixed with the queue name) and move to BROKEN.
 * Later calls while already BROKEN log nothing.
 */
void umdev_vq_set_broken(umdev_vq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
