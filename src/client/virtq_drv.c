/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Driver side of a split virtqueue, written the way a guest driver works:
 * a free list of descriptors, an avail ring published with a release store,
 * used entries reaped after an acquire load, and both notification
 * suppression schemes (flags, and EVENT_IDX's avail_event/used_event).
 *
 * The free list and chain links live in the driver's private arrays, never
 * in the shared descriptor table: the device (or a test playing a hostile
 * device) may scribble on the table, and the driver must not follow that.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/virtq_drv.h"
#include "util/shm.h"

#define RING_ALIGN 4096ull

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint64_t avail_off(uint16_t size)
{
	return virtq_desc_bytes(size);
}

static uint64_t used_off(uint16_t size)
{
	return align_up(virtq_desc_bytes(size) + virtq_avail_bytes(size), RING_ALIGN);
}

uint64_t umdev_vqd_ring_bytes(uint16_t size)
{
	return used_off(size) + virtq_used_bytes(size);
}

/* Host pointer for guest [gpa, gpa+len) inside the window, or NULL. */
static void *gpa_ptr(const struct umdev_vqd *d, uint64_t gpa, uint64_t len)
{
	if (gpa < d->mem_gpa || gpa - d->mem_gpa > d->mem_size ||
	    len > d->mem_size - (gpa - d->mem_gpa))
		return NULL;
	return d->mem + (gpa - d->mem_gpa);
}

int umdev_vqd_init(struct umdev_vqd *d, void *mem, uint64_t mem_gpa, uint64_t mem_size,
		   uint64_t ring_gpa, uint16_t size, bool event_idx)
{
	uint8_t *ring;

	memset(d, 0, sizeof(*d));
	if (!mem || size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)) ||
	    ring_gpa % RING_ALIGN)
		return -EINVAL;
	d->mem = mem;
	d->mem_gpa = mem_gpa;
	d->mem_size = mem_size;
	ring = gpa_ptr(d, ring_gpa, umdev_vqd_ring_bytes(size));
	if (!ring)
		return -EINVAL;
	d->chain_len = calloc(size, sizeof(*d->chain_len));
	d->indirect_gpa = calloc(size, sizeof(*d->indirect_gpa));
	d->next = calloc(size, sizeof(*d->next));
	if (!d->chain_len || !d->indirect_gpa || !d->next) {
		umdev_vqd_fini(d);
		return -ENOMEM;
	}
	memset(ring, 0, umdev_vqd_ring_bytes(size));
	d->size = size;
	d->event_idx = event_idx;
	d->desc_gpa = ring_gpa;
	d->avail_gpa = ring_gpa + avail_off(size);
	d->used_gpa = ring_gpa + used_off(size);
	d->desc = (struct virtq_desc *)ring;
	d->avail = (struct virtq_avail *)(ring + avail_off(size));
	d->used = (struct virtq_used *)(ring + used_off(size));
	for (unsigned i = 0; i < size; i++)
		d->next[i] = (uint16_t)(i + 1);
	d->free_head = 0;
	d->num_free = size;
	return 0;
}

void umdev_vqd_fini(struct umdev_vqd *d)
{
	free(d->chain_len);
	free(d->indirect_gpa);
	free(d->next);
	d->chain_len = NULL;
	d->indirect_gpa = NULL;
	d->next = NULL;
}

static void fill_desc(struct virtq_desc *desc, const struct umdev_vqd_buf *b, bool more,
		      uint16_t next)
{
	desc->addr = b->addr;
	desc->len = b->len;
	desc->flags = (uint16_t)((b->write ? VIRTQ_DESC_F_WRITE : 0) | (more ? VIRTQ_DESC_F_NEXT : 0));
	desc->next = more ? next : 0;
}

int umdev_vqd_add(struct umdev_vqd *d, const struct umdev_vqd_buf *bufs, unsigned n,
		  uint64_t indirect_gpa)
{
	uint16_t head, i;

	if (n == 0 || !d->size)
		return -EINVAL;
	if (d->packed)
		return umdev_vqd_packed_add(d, bufs, n, indirect_gpa);
	if (indirect_gpa) {
		struct virtq_desc *table;

		if (n > VIRTQ_MAX_SIZE)
			return -EINVAL;
		table = gpa_ptr(d, indirect_gpa, (uint64_t)n * sizeof(*table));
		if (!table)
			return -EINVAL;
		if (d->num_free < 1)
			return -ENOSPC;
		for (unsigned k = 0; k < n; k++)
			fill_desc(&table[k], &bufs[k], k + 1 < n, (uint16_t)(k + 1));
		head = d->free_head;
		d->free_head = d->next[head];
		d->num_free--;
		d->desc[head].addr = indirect_gpa;
		d->desc[head].len = n * (uint32_t)sizeof(*table);
		d->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
		d->desc[head].next = 0;
		d->chain_len[head] = 1;
		d->indirect_gpa[head] = indirect_gpa;
	} else {
		if (n > d->num_free)
			return -ENOSPC;
		head = i = d->free_head;
		for (unsigned k = 0; k < n; k++) {
			fill_desc(&d->desc[i], &bufs[k], k + 1 < n, d->next[i]);
			if (k + 1 < n)
				i = d->next[i];
		}
		d->free_head = d->next[i];
		d->num_free = (uint16_t)(d->num_free - n);
		d->chain_len[head] = (uint16_t)n;
		d->indirect_gpa[head] = 0;
	}
	umdev_shm_st16(&d->avail->ring[d->avail_idx & (d->size - 1)], head);
	d->avail_idx++;
	/* Release: descriptors and the ring entry before the index. */
	umdev_shm_st16_rel(&d->avail->idx, d->avail_idx);
	return head;
}

bool umdev_vqd_kick_needed(struct umdev_vqd *d)
{
	uint16_t old = d->kicked_idx, cur = d->avail_idx;

	if (d->packed)
		return umdev_vqd_packed_kick_needed(d);
	/* avail->idx must be visible before we read the device's wish, or we
	 * might skip a kick the device is about to sleep waiting for. */
	umdev_shm_fence_full();
	d->kicked_idx = cur;
	if (d->event_idx) {
		uint16_t ev = umdev_shm_ld16(&d->used->ring[d->size]);

		return virtq_need_event(ev, cur, old);
	}
	if (old == cur)
		return false;
	return !(umdev_shm_ld16(&d->used->flags) & VIRTQ_USED_F_NO_NOTIFY);
}

bool umdev_vqd_has_used(struct umdev_vqd *d)
{
	if (d->packed)
		return umdev_vqd_packed_has_used(d);
	return umdev_shm_ld16_acq(&d->used->idx) != d->last_used_idx;
}

int umdev_vqd_get_used(struct umdev_vqd *d, uint16_t *head, uint32_t *len)
{
	struct virtq_used_elem *e;
	uint32_t id, n;
	uint16_t last;

	if (d->packed)
		return umdev_vqd_packed_get_used(d, head, len);
	/* Acquire: the entry (and the data the device wrote) after the index. */
	if (umdev_shm_ld16_acq(&d->used->idx) == d->last_used_idx)
		return 0;
	e = &d->used->ring[d->last_used_idx & (d->size - 1)];
	id = umdev_shm_ld32(&e->id);
	*len = umdev_shm_ld32(&e->len);
	if (id >= d->size || d->chain_len[id] == 0)
		return -EPROTO;
	n = d->chain_len[id];
	last = (uint16_t)id;
	for (unsigned k = 1; k < n; k++)
		last = d->next[last];
	d->next[last] = d->free_head;
	d->free_head = (uint16_t)id;
	d->num_free = (uint16_t)(d->num_free + n);
	d->chain_len[id] = 0;
	d->indirect_gpa[id] = 0;
	d->last_used_idx++;
	*head = (uint16_t)id;
	if (d->event_idx && !(umdev_shm_ld16(&d->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT))
		umdev_vqd_set_used_event(d, d->last_used_idx);
	return 1;
}

void umdev_vqd_set_used_event(struct umdev_vqd *d, uint16_t idx)
{
	if (d->packed)
		umdev_shm_st16(&d->drv_event->off_wrap, idx);
	else
		umdev_shm_st16(&d->avail->ring[d->size], idx);
	/* Pairs with the device's fence between used->idx and used_event:
	 * after this, a re-check of used->idx cannot miss an entry the device
	 * decided not to interrupt for. */
	umdev_shm_fence_full();
}

void umdev_vqd_set_interrupts(struct umdev_vqd *d, uint16_t mode, uint16_t pos)
{
	if (!d->packed) {
		uint16_t f = umdev_shm_ld16(&d->avail->flags) & ~VIRTQ_AVAIL_F_NO_INTERRUPT;

		umdev_shm_st16(&d->avail->flags,
			       f | (mode == VIRTQ_PACKED_EVENT_DISABLE ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0));
		umdev_shm_fence_full();
		return;
	}
	umdev_shm_st16(&d->drv_event->off_wrap, pos);
	/* off_wrap before flags: a device seeing DESC reads a current offset. */
	umdev_shm_st16_rel(&d->drv_event->flags, mode);
	umdev_shm_fence_full();
}

unsigned umdev_vqd_num_free(const struct umdev_vqd *d)
{
	return d->num_free;
}
