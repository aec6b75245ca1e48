/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Driver side of a packed virtqueue, written the way Linux's
 * virtio_ring.c works: free buffer ids on a private stack, chains written
 * into consecutive slots with the head's flags stored last (release), used
 * descriptors reaped in ring order after an acquire load of their flags,
 * and both event suppression modes (flags, and DESC with EVENT_IDX).
 *
 * Ordering (virtio 1.2, 2.8.21):
 * - descriptors and buffers are written before the head's flags (release);
 * - a used descriptor's flags are read (acquire) before its id and len, and
 *   before the data the device wrote;
 * - the head's flags are visible before the device area is read to decide
 *   on a kick (full fence), pairing with the device's fence after it
 *   writes the device area and before it looks at the ring again.
 */
#include <errno.h>
#include <string.h>

#include "client/virtq_drv.h"
#include "util/shm.h"

#define AVAIL_USED (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)

static void advance(uint16_t *idx, bool *wrap, uint16_t n, uint16_t size)
{
	uint32_t v = (uint32_t)*idx + n;

	if (v >= size) {
		v -= size;
		*wrap = !*wrap;
	}
	*idx = (uint16_t)v;
}

static uint16_t pos(uint16_t idx, bool wrap)
{
	return idx | (wrap ? VIRTQ_PACKED_WRAP_BIT : 0);
}

static void *gpa_ptr(const struct umdev_vqd *d, uint64_t gpa, uint64_t len)
{
	if (gpa < d->mem_gpa || gpa - d->mem_gpa > d->mem_size ||
	    len > d->mem_size - (gpa - d->mem_gpa))
		return NULL;
	return d->mem + (gpa - d->mem_gpa);
}

int umdev_vqd_packed_add(struct umdev_vqd *d, const struct umdev_vqd_buf *bufs, unsigned n,
			 uint64_t indirect_gpa)
{
	uint16_t avail = d->avail_wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
	uint16_t id, slots = indirect_gpa ? 1 : (uint16_t)n, idx = d->next_avail, head_flags = 0;
	bool wrap = d->avail_wrap;

	if (n == 0 || n > VIRTQ_MAX_SIZE)
		return -EINVAL;
	if (slots > d->num_free || !d->n_free_ids)
		return -ENOSPC;
	id = d->next[--d->n_free_ids];
	if (indirect_gpa) {
		struct virtq_packed_desc *t = gpa_ptr(d, indirect_gpa, (uint64_t)n * sizeof(*t));

		if (!t) {
			d->n_free_ids++;
			return -EINVAL;
		}
		for (unsigned k = 0; k < n; k++) {
			t[k].addr = bufs[k].addr;
			t[k].len = bufs[k].len;
			t[k].id = 0;
			t[k].flags = bufs[k].write ? VIRTQ_DESC_F_WRITE : 0;
		}
		d->pdesc[idx].addr = indirect_gpa;
		d->pdesc[idx].len = n * (uint32_t)sizeof(*t);
		d->pdesc[idx].id = id;
		head_flags = VIRTQ_DESC_F_INDIRECT | avail;
	} else {
		for (unsigned k = 0; k < n; k++) {
			uint16_t f = (uint16_t)((bufs[k].write ? VIRTQ_DESC_F_WRITE : 0) |
						(k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));

			f |= wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
			d->pdesc[idx].addr = bufs[k].addr;
			d->pdesc[idx].len = bufs[k].len;
			d->pdesc[idx].id = id;
			if (k == 0)
				head_flags = f;
			else
				umdev_shm_st16(&d->pdesc[idx].flags, f);
			advance(&idx, &wrap, 1, d->size);
		}
	}
	d->chain_len[id] = slots;
	d->indirect_gpa[id] = indirect_gpa;
	d->num_free = (uint16_t)(d->num_free - slots);
	/* Release: the whole chain (and the buffers) before the head's flags. */
	umdev_shm_st16_rel(&d->pdesc[d->next_avail].flags, head_flags);
	advance(&d->next_avail, &d->avail_wrap, slots, d->size);
	return id;
}

bool umdev_vqd_packed_kick_needed(struct umdev_vqd *d)
{
	uint16_t old = d->kicked_pos, cur = pos(d->next_avail, d->avail_wrap), flags, off_wrap;
	int ev, o, c = d->next_avail;

	umdev_shm_fence_full();
	d->kicked_pos = cur;
	if (old == cur)
		return false;
	flags = umdev_shm_ld16(&d->dev_event->flags);
	if (flags == VIRTQ_PACKED_EVENT_DISABLE)
		return false;
	if (flags != VIRTQ_PACKED_EVENT_DESC)
		return true;
	/* DESC: kick if the slot the device named lies in [old, cur). */
	off_wrap = umdev_shm_ld16(&d->dev_event->off_wrap);
	ev = off_wrap & ~VIRTQ_PACKED_WRAP_BIT;
	if (!!(off_wrap & VIRTQ_PACKED_WRAP_BIT) != d->avail_wrap)
		ev -= d->size;
	o = old & ~VIRTQ_PACKED_WRAP_BIT;
	if (!!(old & VIRTQ_PACKED_WRAP_BIT) != d->avail_wrap)
		o -= d->size;
	return ev >= o && ev < c;
}

bool umdev_vqd_packed_has_used(struct umdev_vqd *d)
{
	uint16_t f = umdev_shm_ld16_acq(&d->pdesc[d->next_used].flags);

	return (f & AVAIL_USED) == (d->used_wrap ? AVAIL_USED : 0);
}

int umdev_vqd_packed_get_used(struct umdev_vqd *d, uint16_t *id, uint32_t *len)
{
	struct virtq_packed_desc *u = &d->pdesc[d->next_used];
	uint16_t i;

	if (!umdev_vqd_packed_has_used(d))
		return 0;
	i = umdev_shm_ld16(&u->id);
	*len = umdev_shm_ld32(&u->len);
	if (i >= d->size || d->chain_len[i] == 0)
		return -EPROTO;
	advance(&d->next_used, &d->used_wrap, d->chain_len[i], d->size);
	d->num_free = (uint16_t)(d->num_free + d->chain_len[i]);
	d->chain_len[i] = 0;
	d->indirect_gpa[i] = 0;
	d->next[d->n_free_ids++] = i;
	*id = i;
	if (d->event_idx &&
	    umdev_shm_ld16(&d->drv_event->flags) == VIRTQ_PACKED_EVENT_DESC)
		umdev_vqd_set_used_event(d, pos(d->next_used, d->used_wrap));
	return 1;
}

int umdev_vqd_init_packed(struct umdev_vqd *d, void *mem, uint64_t mem_gpa, uint64_t mem_size,
			  uint64_t ring_gpa, uint16_t size, bool event_idx)
{
	uint8_t *ring;
	int r = umdev_vqd_init(d, mem, mem_gpa, mem_size, ring_gpa, size, event_idx);

	if (r < 0)
		return r;
	ring = gpa_ptr(d, ring_gpa, umdev_vqd_ring_bytes(size));
	d->packed = true;
	d->pdesc = (struct virtq_packed_desc *)ring;
	d->desc = NULL;
	d->avail = NULL;
	d->used = NULL;
	d->avail_gpa = ring_gpa + 16ull * size;
	d->used_gpa = d->avail_gpa + sizeof(struct virtq_packed_event);
	d->drv_event = (struct virtq_packed_event *)(ring + 16ull * size);
	d->dev_event = d->drv_event + 1;
	d->next_avail = d->next_used = 0;
	d->avail_wrap = d->used_wrap = true;
	d->kicked_pos = pos(0, true);
	/* Free ids as a stack, lowest on top (so ids start at 0 like Linux's). */
	for (unsigned i = 0; i < size; i++)
		d->next[i] = (uint16_t)(size - 1 - i);
	d->n_free_ids = size;
	umdev_vqd_set_interrupts(d, event_idx ? VIRTQ_PACKED_EVENT_DESC : VIRTQ_PACKED_EVENT_ENABLE,
				 pos(0, true));
	return 0;
}
