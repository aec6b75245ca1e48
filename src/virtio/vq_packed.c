/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packed virtqueue, device side (virtio 1.1+ "Packed Virtqueues").
 *
 * One descriptor ring carries available and used buffers. The device keeps
 * two positions with their wrap counters: where the next available chain
 * starts (avail_idx/avail_wrap) and where the next used descriptor goes
 * (used_idx/used_wrap). A chain of n ring descriptors (an indirect table
 * counts as one) moves each position by n. elem->head is the buffer id the
 * driver put in the chain's last descriptor; completions may come in any
 * order, the driver matches them by id.
 *
 * The driver is hostile: every descriptor is copied once into a local; the
 * chain's later descriptors must carry the avail/used bits of their own
 * wrap (a driver writes them all, the head last); chains longer than the
 * ring, ids out of range or already in use, indirect tables inside
 * indirect tables or chained with NEXT, bad lengths and addresses break the
 * queue with one log line.
 *
 * Ordering rules of the spec (virtio 1.2, 2.8.21 and 2.8.10-2.8.14) and
 * where each is kept:
 * [P1] a descriptor's flags are read (acquire) before its other fields and
 *      before the chain's later descriptors: packed_pop, packed_has_avail.
 * [P2] a used descriptor's id and len are written before its flags
 *      (release), which hand it to the driver: packed_push.
 * [P3] used flags are visible before the driver's event suppression area is
 *      read (full fence): packed_need_notify.
 * [P4] the device area (flags, off_wrap) is visible before the ring is
 *      looked at again (full fence): packed_enable_kicks.
 * [P5] in the device area, off_wrap is written before flags (release), so
 *      a driver that sees DESC mode reads a current offset.
 *
 * Inflight tracking follows the packed layout and steps of the vhost-user
 * spec (free list of entries, old_* copies committed after each batch).
 * The front-end reads it only after we died, so what matters is the
 * program order of the stores; the stores the spec orders are release
 * stores (each keeps all earlier stores before it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umdev/log.h"
#include "util/shm.h"
#include "virtio/vq_internal.h"

typedef struct vhost_user_inflight_queue_packed pinflight;
typedef struct vhost_user_inflight_desc_packed pientry;

#define AVAIL_USED (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)

static pinflight *pinflight_of(umdev_vq *vq)
{
	return vq->inflight_active ? (pinflight *)vq->inflight : NULL;
}

/* Flags bits a descriptor available in wrap @wrap carries. */
static uint16_t avail_bits(bool wrap)
{
	return wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

static bool is_avail(uint16_t flags, bool wrap)
{
	return (flags & AVAIL_USED) == avail_bits(wrap);
}

static void advance(uint16_t *idx, bool *wrap, uint16_t n, uint16_t size)
{
	uint32_t v = (uint32_t)*idx + n;

	if (v >= size) {
		v -= size;
		*wrap = !*wrap;
	}
	*idx = (uint16_t)v;
}

static void sync_last_avail(umdev_vq *vq)
{
	struct umdev_vq_packed *p = &vq->packed;

	vq->last_avail_idx = p->avail_idx | (p->avail_wrap ? VIRTQ_PACKED_WRAP_BIT : 0);
}

/* A write of @len bytes at @off into the descriptor ring: log it (at its
 * guest address: vhost-user's log address names the device area only). */
static void log_desc(umdev_vq *vq, uint64_t off, uint64_t len)
{
	if (vq->log.used)
		umdev_dirty_log_mark(vq->log.log, vq->cfg.desc_addr + off, len);
}

/* ---- walking a chain ---- */

struct chain {
	struct umdev_vq_elem *elem;
	struct iovec *iov;
	unsigned max_iov, niov, n_out;
	uint64_t total, out_len, in_len;
	bool seen_write;
	struct umdev_vq_span sp; /* guest range touched so far */
};

/* Add one buffer descriptor. Returns NULL or what is wrong with it. */
static const char *chain_add(umdev_vq *vq, struct chain *c, uint64_t addr, uint32_t len,
			     uint16_t flags, char *why, size_t why_len)
{
	bool wr = flags & VIRTQ_DESC_F_WRITE;

	if (wr)
		c->seen_write = true;
	else if (c->seen_write)
		return "readable descriptor after a writable one";
	c->total += len;
	if (c->total > UINT32_MAX)
		return "chain length overflows 32 bits";
	if (!len)
		return NULL;
	int r = umdev_as_map_to_iov(vq->map, addr, len,
				    (wr ? UMDEV_MEM_WRITE : UMDEV_MEM_READ) | shadow_prot(vq),
				    c->iov + c->niov, c->max_iov - c->niov);
	if (r == -ENOBUFS) {
		snprintf(why, why_len, "chain needs more than %u iovecs", c->max_iov);
		return why;
	}
	if (r < 0) {
		snprintf(why, why_len, "buffer 0x%" PRIx64 "+%" PRIu32 " not in %s guest memory",
			 addr, len, wr ? "writable" : "readable");
		return why;
	}
	c->niov += (unsigned)r;
	umdev_vq_span_add(&c->sp, addr, len);
	if (wr) {
		c->in_len += len;
	} else {
		c->out_len += len;
		c->n_out += (unsigned)r;
	}
	return NULL;
}

/* Walk an indirect table (a ring descriptor with INDIRECT). */
static const char *chain_indirect(umdev_vq *vq, struct chain *c, uint64_t addr, uint32_t len,
				  uint16_t flags, char *why, size_t why_len)
{
	const struct virtq_packed_desc *t;
	bool through;
	uint32_t n;

	if (!vq->cfg.indirect)
		return "INDIRECT flag but INDIRECT_DESC not negotiated";
	if (flags & VIRTQ_DESC_F_NEXT)
		return "INDIRECT together with NEXT";
	if (len == 0 || len % sizeof(*t) || len / sizeof(*t) > UMDEV_VQ_MAX_INDIRECT) {
		snprintf(why, why_len, "bad indirect table length %" PRIu32, len);
		return why;
	}
	umdev_vq_span_add(&c->sp, addr, len);
	t = umdev_vq_indirect_table(vq, addr, len, &through);
	if (!t && !through) {
		snprintf(why, why_len, "indirect table 0x%" PRIx64 "+%" PRIu32
			 " not in readable guest memory", addr, len);
		return why;
	}
	n = len / sizeof(*t);
	/* A packed indirect table is used whole and in order; NEXT is ignored. */
	for (uint32_t i = 0; i < n; i++) {
		struct virtq_packed_desc d;
		const char *err;

		if (umdev_vq_desc_load(vq, t, addr, i, &d) < 0) {
			snprintf(why, why_len, "indirect table 0x%" PRIx64 " not in readable guest "
				 "memory", addr);
			return why;
		}
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			snprintf(why, why_len, "nested indirect table (entry %" PRIu32 ")", i);
			return why;
		}
		err = chain_add(vq, c, d.addr, d.len, d.flags, why, why_len);
		if (err)
			return err;
	}
	return NULL;
}

static void chain_done(umdev_vq *vq, struct chain *c, uint16_t id)
{
	vq->walk = c->sp;
	c->elem->head = id;
	c->elem->iov = c->iov;
	c->elem->n_out = c->n_out;
	c->elem->n_in = c->niov - c->n_out;
	c->elem->out_len = c->out_len;
	c->elem->in_len = c->in_len;
}

/* ---- inflight region (vhost-user, packed layout) ---- */

/*
 * Receiving a chain: the spec's steps, one ring descriptor @d at a time.
 * The list links come from a region the front-end could change under us:
 * a link out of range stops tracking rather than writing out of bounds.
 */
static void inflight_take(umdev_vq *vq, pinflight *r, const struct virtq_packed_desc *d,
			  bool first, bool last)
{
	uint16_t head = umdev_shm_ld16(&r->old_free_head);
	uint16_t fh = umdev_shm_ld16(&r->free_head);
	pientry *h, *e;

	if (head >= vq->cfg.size || fh >= vq->cfg.size) {
		umdev_warn("%s: inflight free list runs out of range; not tracking", vq->name);
		vq->inflight_active = false;
		return;
	}
	h = &r->desc[head];
	e = &r->desc[fh];
	if (first) {
		umdev_shm_st16(&h->num, 0);
		umdev_shm_st64(&h->counter, ++vq->inflight_counter);
		umdev_shm_st8_rel(&h->inflight, 1);
	}
	if (last)
		umdev_shm_st16(&h->last, fh);
	umdev_shm_st16(&h->num, umdev_shm_ld16(&h->num) + 1);
	umdev_shm_st64(&e->addr, d->addr);
	umdev_shm_st32(&e->len, d->len);
	umdev_shm_st16(&e->flags, d->flags);
	umdev_shm_st16(&e->id, d->id);
	umdev_shm_st16_rel(&r->free_head, umdev_shm_ld16(&e->next));
	if (last)
		umdev_shm_st16_rel(&r->old_free_head, umdev_shm_ld16(&r->free_head));
}

/* ---- ring operations ---- */

static int packed_pop(umdev_vq *vq, struct umdev_vq_elem *elem, struct iovec *iov,
		      unsigned max_iov)
{
	struct umdev_vq_packed *p = &vq->packed;
	uint16_t size = vq->cfg.size, idx = p->avail_idx, slots = 0, id = 0, ent = 0;
	bool wrap = p->avail_wrap;
	struct chain c = { .elem = elem, .iov = iov, .max_iov = max_iov,
			   .sp = { UINT64_MAX, 0 } };
	struct virtq_packed_desc d;
	pinflight *r = pinflight_of(vq);
	char why[160];
	const char *err = NULL;
	uint16_t flags;

	/* [P1] */
	flags = umdev_shm_ld16_acq(&p->desc[idx].flags);
	if (!is_avail(flags, wrap))
		return 0;
	if (r)
		ent = umdev_shm_ld16(&r->old_free_head);
	for (;;) {
		umdev_shm_copy_in(&d, &p->desc[idx], sizeof(d));
		d.flags = flags;
		if (++slots > size) {
			err = "chain longer than the ring";
			break;
		}
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (slots > 1) {
				err = "INDIRECT descriptor inside a chain";
				break;
			}
			err = chain_indirect(vq, &c, d.addr, d.len, d.flags, why, sizeof(why));
		} else {
			err = chain_add(vq, &c, d.addr, d.len, d.flags, why, sizeof(why));
		}
		if (err)
			break;
		id = d.id;
		if (r && vq->inflight_active)
			inflight_take(vq, r, &d, slots == 1, !(d.flags & VIRTQ_DESC_F_NEXT));
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		advance(&idx, &wrap, 1, size);
		/* [P1]: the head's flags were read with acquire, and the driver
		 * writes them last; later ones must still show this wrap. */
		flags = umdev_shm_ld16(&p->desc[idx].flags);
		if (!is_avail(flags, wrap)) {
			snprintf(why, sizeof(why), "chain continues into slot %u, which is not available "
				 "(flags 0x%x, wrap %d)", idx, flags, wrap);
			err = why;
			break;
		}
	}
	if (!err && id >= size) {
		snprintf(why, sizeof(why), "buffer id %u out of range (ring size %u)", id, size);
		err = why;
	}
	if (!err && umdev_vq_head_busy(vq, id)) {
		snprintf(why, sizeof(why), "buffer id %u is already in use", id);
		err = why;
	}
	if (err) {
		umdev_vq_set_broken(vq, "chain at slot %u (wrap %d), descriptor %u: %s", p->avail_idx,
				    p->avail_wrap, slots, err);
		return -EIO;
	}
	chain_done(vq, &c, id);
	p->id_num[id] = slots;
	p->id_ent[id] = ent;
	advance(&p->avail_idx, &p->avail_wrap, slots, size);
	sync_last_avail(vq);
	vq->inuse++;
	umdev_vq_head_set_busy(vq, id, true);
	return 1;
}

static int packed_get_head(umdev_vq *vq, uint16_t id, struct umdev_vq_elem *elem,
			   struct iovec *iov, unsigned max_iov)
{
	struct umdev_vq_packed *p = &vq->packed;
	pinflight *r = pinflight_of(vq);
	struct chain c = { .elem = elem, .iov = iov, .max_iov = max_iov,
			   .sp = { UINT64_MAX, 0 } };
	char why[160];
	const char *err = NULL;
	uint16_t e, num;

	/* Only heads recovery found can be rebuilt: their descriptors may be
	 * gone from the ring (used entries overwrite slots out of order), the
	 * inflight region kept copies. */
	if (id >= vq->cfg.size || !r || !umdev_vq_head_busy(vq, id))
		return -EINVAL;
	e = p->id_ent[id];
	num = p->id_num[id];
	for (uint16_t i = 0; i < num && !err; i++) {
		pientry *x = &r->desc[e];
		uint64_t addr = umdev_shm_ld64(&x->addr);
		uint32_t len = umdev_shm_ld32(&x->len);
		uint16_t flags = umdev_shm_ld16(&x->flags);

		if (flags & VIRTQ_DESC_F_INDIRECT)
			err = num > 1 ? "INDIRECT descriptor inside a chain" :
			      chain_indirect(vq, &c, addr, len, flags, why, sizeof(why));
		else
			err = chain_add(vq, &c, addr, len, flags, why, sizeof(why));
		e = umdev_shm_ld16(&x->next);
	}
	if (err) {
		umdev_vq_set_broken(vq, "resubmitted buffer id %u: %s", id, err);
		return -EIO;
	}
	chain_done(vq, &c, id);
	return 1;
}

static void packed_push(umdev_vq *vq, uint16_t id, uint32_t written)
{
	struct umdev_vq_packed *p = &vq->packed;
	pinflight *r = pinflight_of(vq);
	struct virtq_packed_desc *u = &p->desc[p->used_idx];
	uint16_t flags = p->used_wrap ? AVAIL_USED : 0, ent = 0;

	if (written)
		flags |= VIRTQ_DESC_F_WRITE;
	/* Inflight, "supplying used buffers": entries back on the free list and
	 * the new used position first, then the ring, then the flag, then
	 * commit the old_* copies. */
	if (r) {
		ent = p->id_ent[id];
		pientry *h = &r->desc[ent];

		umdev_shm_st16(&r->desc[umdev_shm_ld16(&h->last) % vq->cfg.size].next,
			       umdev_shm_ld16(&r->free_head));
		umdev_shm_st16_rel(&r->free_head, ent);
	}
	umdev_shm_st16(&u->id, id);
	umdev_shm_st32(&u->len, written);
	advance(&p->used_idx, &p->used_wrap, p->id_num[id], vq->cfg.size);
	if (r) {
		umdev_shm_st16(&r->used_idx, p->used_idx);
		umdev_shm_st8_rel(&r->used_wrap_counter, p->used_wrap);
	}
	/* [P2] */
	umdev_shm_st16_rel(&u->flags, flags);
	log_desc(vq, (uint8_t *)u - (uint8_t *)p->desc, sizeof(*u));
	p->pushed += p->id_num[id];
	if (r) {
		umdev_shm_st8_rel(&r->desc[ent].inflight, 0);
		umdev_shm_st16(&r->old_free_head, umdev_shm_ld16(&r->free_head));
		umdev_shm_st16(&r->old_used_idx, p->used_idx);
		umdev_shm_st8_rel(&r->old_used_wrap_counter, p->used_wrap);
	}
}

static bool packed_need_notify(umdev_vq *vq)
{
	struct umdev_vq_packed *p = &vq->packed;
	uint16_t old = p->signalled_used, cur = p->used_idx, flags, off_wrap, size = vq->cfg.size;
	bool valid = p->signalled_valid, full_lap = p->pushed >= size; /* slots */
	int ev, o;

	/* [P3] */
	umdev_shm_fence_full();
	if (valid && !p->pushed)
		return false;
	p->signalled_used = cur;
	p->signalled_valid = true;
	p->pushed = 0;
	flags = umdev_shm_ld16(&p->driver->flags);
	if (flags == VIRTQ_PACKED_EVENT_DISABLE)
		return false;
	if (flags != VIRTQ_PACKED_EVENT_DESC || !vq->cfg.event_idx)
		return true; /* ENABLE, or a value we do not know: interrupting is safe */
	if (!valid)
		return true;
	/*
	 * DESC mode: interrupt if this batch crossed the slot the driver named.
	 * Positions are placed on one line: the current lap runs 0..size-1,
	 * the previous lap (where old, or an event of the other wrap, lies
	 * when behind us) sits one ring length lower.
	 */
	off_wrap = umdev_shm_ld16(&p->driver->off_wrap);
	ev = off_wrap & ~VIRTQ_PACKED_WRAP_BIT;
	if (!!(off_wrap & VIRTQ_PACKED_WRAP_BIT) != p->used_wrap)
		ev -= size;
	o = old;
	if (old > cur || (old == cur && full_lap))
		o -= size;
	return ev >= o && ev < (int)cur;
}

/* Write the device area; @flags last ([P5]). Skips writes that change nothing. */
static void set_device_event(umdev_vq *vq, uint16_t flags, bool with_off)
{
	struct umdev_vq_packed *p = &vq->packed;

	if (with_off)
		umdev_shm_st16(&p->device->off_wrap, vq->last_avail_idx);
	else if (p->dev_flags == flags)
		return;
	umdev_shm_st16_rel(&p->device->flags, flags);
	p->dev_flags = flags;
	/* The device area is the packed ring's "used" part: its log address. */
	if (vq->log.used)
		umdev_dirty_log_mark(vq->log.log, vq->log.used_gpa, sizeof(*p->device));
}

static bool packed_has_avail(umdev_vq *vq)
{
	struct umdev_vq_packed *p = &vq->packed;

	return is_avail(umdev_shm_ld16_acq(&p->desc[p->avail_idx].flags), p->avail_wrap); /* [P1] */
}

static bool packed_enable_kicks(umdev_vq *vq)
{
	if (vq->cfg.event_idx)
		set_device_event(vq, VIRTQ_PACKED_EVENT_DESC, true);
	else
		set_device_event(vq, VIRTQ_PACKED_EVENT_ENABLE, false);
	/* [P4] */
	umdev_shm_fence_full();
	return packed_has_avail(vq);
}

static void packed_disable_kicks(umdev_vq *vq)
{
	set_device_event(vq, VIRTQ_PACKED_EVENT_DISABLE, false);
}

static void packed_stop(umdev_vq *vq)
{
	free(vq->packed.id_num);
	free(vq->packed.id_ent);
	memset(&vq->packed, 0, sizeof(vq->packed));
}

static int packed_start(umdev_vq *vq)
{
	const struct umdev_vq_config *c = &vq->cfg;
	struct umdev_vq_packed *p = &vq->packed;
	uint16_t avail = c->last_avail_idx & ~VIRTQ_PACKED_WRAP_BIT;
	uint16_t used = c->last_used_idx & ~VIRTQ_PACKED_WRAP_BIT;
	int err = 0;

	memset(p, 0, sizeof(*p));
	if (avail >= c->size || used >= c->size) {
		umdev_err("%s: packed ring base avail %u used %u outside a ring of %u", vq->name,
			  avail, used, c->size);
		return -EINVAL;
	}
	if (c->desc_addr % 16 || c->avail_addr % 4 || c->used_addr % 4) {
		umdev_err("%s: misaligned packed ring (desc 0x%" PRIx64 " driver 0x%" PRIx64
			  " device 0x%" PRIx64 ")", vq->name, c->desc_addr, c->avail_addr, c->used_addr);
		return -EFAULT;
	}
	p->desc = umdev_vq_ring_part(vq, 0, c->desc_addr, 16ull * c->size,
				     UMDEV_MEM_READ | UMDEV_MEM_WRITE, &err);
	if (p->desc)
		p->driver = umdev_vq_ring_part(vq, 1, c->avail_addr, sizeof(*p->driver),
					       UMDEV_MEM_READ, &err);
	if (p->driver)
		p->device = umdev_vq_ring_part(vq, 2, c->used_addr, sizeof(*p->device),
					       UMDEV_MEM_READ | UMDEV_MEM_WRITE, &err);
	if (!p->device) {
		umdev_err("%s: packed ring part %s (desc 0x%" PRIx64 " driver 0x%" PRIx64
			  " device 0x%" PRIx64 ", size %u)", vq->name, umdev_as_span_why(err),
			  c->desc_addr, c->avail_addr, c->used_addr, c->size);
		return -EFAULT;
	}
	if ((uintptr_t)p->desc % 16 || (uintptr_t)p->driver % 4 || (uintptr_t)p->device % 4) {
		umdev_err("%s: ring misaligned in its memory region (the region's guest address "
			  "and file offset disagree)", vq->name);
		return -EFAULT;
	}
	p->id_num = calloc(c->size, sizeof(*p->id_num));
	p->id_ent = calloc(c->size, sizeof(*p->id_ent));
	if (!p->id_num || !p->id_ent)
		return -ENOMEM;
	p->avail_idx = avail;
	p->avail_wrap = c->last_avail_idx & VIRTQ_PACKED_WRAP_BIT;
	p->used_idx = used;
	p->used_wrap = c->last_used_idx & VIRTQ_PACKED_WRAP_BIT;
	p->dev_flags = 0xffff;
	sync_last_avail(vq);
	return 0;
}

/* ---- inflight set-up and recovery ---- */

static void packed_inflight_init(umdev_vq *vq)
{
	pinflight *r = (pinflight *)vq->inflight;
	struct umdev_vq_packed *p = &vq->packed;
	uint16_t size = vq->cfg.size;

	umdev_shm_st64(&r->features, 0);
	umdev_shm_st16(&r->desc_num, size);
	for (unsigned i = 0; i < size; i++) {
		memset(&r->desc[i], 0, sizeof(r->desc[i]));
		/* The last link (size) is out of range: the list's end. */
		umdev_shm_st16(&r->desc[i].next, (uint16_t)(i + 1));
	}
	umdev_shm_st16(&r->free_head, 0);
	umdev_shm_st16(&r->old_free_head, 0);
	umdev_shm_st16(&r->used_idx, p->used_idx);
	umdev_shm_st16(&r->old_used_idx, p->used_idx);
	umdev_shm_st8(&r->used_wrap_counter, p->used_wrap);
	umdev_shm_st8(&r->old_used_wrap_counter, p->used_wrap);
	/* version last (release): a crash before here leaves the region "fresh". */
	umdev_shm_st16_rel(&r->version, VHOST_USER_INFLIGHT_VERSION);
	vq->inflight_counter = 0;
	vq->inflight_active = true;
}

static void packed_inflight_attach(umdev_vq *vq)
{
	pinflight *r = (pinflight *)vq->inflight;
	uint16_t version = umdev_shm_ld16(&r->version), num = umdev_shm_ld16(&r->desc_num);

	/* A queue started without recovery (a plain restart of the ring, all
	 * requests completed) has every entry on the free list. */
	umdev_vq_inflight_adopt(vq, version, num, (const uint8_t *)&r->desc[0].counter,
				sizeof(r->desc[0]));
}

#define CORRUPT(...)                                                   \
	do {                                                           \
		umdev_err("%s: inflight region corrupt: " __VA_ARGS__); \
		goto corrupt;                                          \
	} while (0)

static int packed_recover_inflight(umdev_vq *vq, uint16_t *heads, unsigned max)
{
	struct umdev_vq_packed *p = &vq->packed;
	pinflight *r = (pinflight *)vq->inflight;
	uint16_t size = vq->cfg.size, used, fh;
	bool used_wrap, avail_wrap;
	uint8_t *on_free = NULL;
	struct umdev_vq_recovered *rec = NULL;
	unsigned count = 0, slots = 0;
	uint64_t max_counter = 0;

	if (umdev_shm_ld16(&r->version) == 0) {
		packed_inflight_init(vq);
		return 0;
	}
	vq->inflight_active = false;
	if (umdev_shm_ld16(&r->version) != VHOST_USER_INFLIGHT_VERSION ||
	    umdev_shm_ld16(&r->desc_num) != size) {
		umdev_err("%s: inflight region version %u desc_num %u, ring size %u: corrupt",
			  vq->name, umdev_shm_ld16(&r->version), umdev_shm_ld16(&r->desc_num), size);
		return -EIO;
	}
	/* A batch half done: if the driver can see its used descriptor, commit
	 * it; else roll back to the old_* copies. */
	if (umdev_shm_ld16(&r->used_idx) != umdev_shm_ld16(&r->old_used_idx)) {
		uint16_t o = umdev_shm_ld16(&r->old_used_idx);
		bool ow = umdev_shm_ld8(&r->old_used_wrap_counter);

		if (o >= size)
			CORRUPT("%s", vq->name, "old_used_idx out of range");
		if ((umdev_shm_ld16_acq(&p->desc[o].flags) & AVAIL_USED) == (ow ? AVAIL_USED : 0)) {
			umdev_shm_st16(&r->old_free_head, umdev_shm_ld16(&r->free_head));
			umdev_shm_st16(&r->old_used_idx, umdev_shm_ld16(&r->used_idx));
			umdev_shm_st8_rel(&r->old_used_wrap_counter,
					  umdev_shm_ld8(&r->used_wrap_counter));
		}
	}
	umdev_shm_st16(&r->free_head, umdev_shm_ld16(&r->old_free_head));
	umdev_shm_st16(&r->used_idx, umdev_shm_ld16(&r->old_used_idx));
	umdev_shm_st8_rel(&r->used_wrap_counter, umdev_shm_ld8(&r->old_used_wrap_counter));
	used = umdev_shm_ld16(&r->used_idx);
	used_wrap = umdev_shm_ld8(&r->used_wrap_counter);
	if (used >= size)
		CORRUPT("%s", vq->name, "used_idx out of range");

	on_free = calloc(size, 1);
	rec = malloc((size_t)size * sizeof(*rec));
	if (!on_free || !rec) {
		free(on_free);
		free(rec);
		return -ENOMEM;
	}
	/* Entries on the free list are not in flight, whatever their flag says
	 * (a chain being received when we died). */
	fh = umdev_shm_ld16(&r->free_head);
	for (unsigned i = 0; i < size && fh < size && !on_free[fh]; i++) {
		on_free[fh] = 1;
		umdev_shm_st8(&r->desc[fh].inflight, 0);
		fh = umdev_shm_ld16(&r->desc[fh].next);
	}
	for (unsigned i = 0; i < size; i++) {
		uint8_t f = umdev_shm_ld8(&r->desc[i].inflight);
		uint64_t c = umdev_shm_ld64(&r->desc[i].counter);

		if (c > max_counter)
			max_counter = c;
		if (f == 0)
			continue;
		if (f != 1)
			CORRUPT("flag %u at entry %u", vq->name, f, i);
		rec[count].counter = c;
		rec[count].idx = (uint16_t)i;
		count++;
	}
	if (count > max) {
		free(on_free);
		free(rec);
		vq->inflight_active = true;
		return -ENOBUFS;
	}
	umdev_vq_sort_recovered(rec, count);
	for (unsigned i = 0; i < count; i++) {
		pientry *h = &r->desc[rec[i].idx];
		uint16_t num = umdev_shm_ld16(&h->num), last = umdev_shm_ld16(&h->last), id;

		if (num == 0 || num > size || last >= size)
			CORRUPT("entry %u: chain of %u ending at %u", vq->name, rec[i].idx, num, last);
		id = umdev_shm_ld16(&r->desc[last].id);
		if (id >= size || umdev_vq_head_busy(vq, id))
			CORRUPT("entry %u: buffer id %u out of range or twice", vq->name,
				rec[i].idx, id);
		slots += num;
		if (slots > size)
			CORRUPT("%u slots in flight in a ring of %u", vq->name, slots, size);
		umdev_vq_head_set_busy(vq, id, true);
		p->id_num[id] = num;
		p->id_ent[id] = rec[i].idx;
		heads[i] = id;
	}
	free(on_free);
	free(rec);

	/* Everything between the used position and the next chain to pop is
	 * exactly what was in flight. */
	p->used_idx = used;
	p->used_wrap = used_wrap;
	p->avail_idx = used;
	avail_wrap = used_wrap;
	advance(&p->avail_idx, &avail_wrap, (uint16_t)(slots == size ? 0 : slots), size);
	if (slots == size)
		avail_wrap = !avail_wrap;
	p->avail_wrap = avail_wrap;
	sync_last_avail(vq);
	vq->inflight_counter = max_counter;
	vq->inuse = count;
	vq->inflight_active = true;
	return (int)count;

corrupt:
	for (unsigned i = 0; i < size; i++)
		umdev_vq_head_set_busy(vq, (uint16_t)i, false);
	free(on_free);
	free(rec);
	return -EIO;
}

const struct umdev_vq_ops umdev_vq_packed_ops = {
	.start = packed_start,
	.pop = packed_pop,
	.get_head = packed_get_head,
	.push = packed_push,
	.need_notify = packed_need_notify,
	.enable_kicks = packed_enable_kicks,
	.disable_kicks = packed_disable_kicks,
	.has_avail = packed_has_avail,
	.inflight_init = packed_inflight_init,
	.inflight_attach = packed_inflight_attach,
	.recover_inflight = packed_recover_inflight,
	.stop = packed_stop,
};
