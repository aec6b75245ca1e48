/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Driver-side split virtqueue: what a guest's virtio driver does, in
 * userspace. Used by our tests and benchmarks to drive umdev's device-side
 * queue (unit tests) or a umdevd over vhost-user (protocol tests, bench).
 *
 * The ring and the buffers live in "guest memory" the caller owns: a host
 * mapping @mem of @mem_size bytes whose first byte is guest address
 * @mem_gpa. All addresses handed to and returned from this API are guest
 * addresses inside that window. Not thread-safe; one user at a time.
 */
#ifndef UMDEV_CLIENT_VIRTQ_DRV_H
#define UMDEV_CLIENT_VIRTQ_DRV_H

#include <stdbool.h>
#include <stdint.h>

#include "umdev/proto/virtio_ring.h"
#include "umdev/proto/virtio_ring_packed.h"

struct umdev_vqd_buf {
	uint64_t addr; /* guest address */
	uint32_t len;
	bool write; /* device writes it */
};

struct umdev_vqd {
	uint8_t *mem; /* host view of guest memory */
	uint64_t mem_gpa;
	uint64_t mem_size;
	uint16_t size;
	bool event_idx;
	struct virtq_desc *desc; /* host pointers into mem */
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t free_head, num_free;
	uint16_t avail_idx; /* next avail slot (shadow) */
	uint16_t last_used_idx;
	uint16_t kicked_idx; /* avail_idx at the last kick decision */
	uint16_t *chain_len; /* descriptors per head, to free them */
	uint64_t *indirect_gpa; /* indirect table per head, 0 if none */
	uint16_t *next; /* driver's own free-list/chain links: never read back
			 * from the shared table, which the device could alter */

	/* Packed ring (umdev_vqd_init_packed); chain_len/indirect_gpa are then
	 * indexed by buffer id and next[] is the stack of free ids. */
	bool packed;
	struct virtq_packed_desc *pdesc; /* == desc's memory */
	struct virtq_packed_event *drv_event; /* driver area (avail_gpa) */
	struct virtq_packed_event *dev_event; /* device area (used_gpa) */
	uint16_t next_avail; /* next slot to fill, 0..size-1 */
	bool avail_wrap;
	uint16_t next_used; /* next slot to reap */
	bool used_wrap;
	uint16_t n_free_ids;
	uint16_t kicked_pos; /* next_avail | wrap << 15 at the last kick decision */
};

/**
 * umdev_vqd_init() - lay out a ring of @size entries at guest address
 * @ring_gpa (must be 4096-aligned and inside the window; uses
 * umdev_vqd_ring_bytes(size) bytes) and reset driver state.
 */
int umdev_vqd_init(struct umdev_vqd *d, void *mem, uint64_t mem_gpa, uint64_t mem_size,
		   uint64_t ring_gpa, uint16_t size, bool event_idx);
/* Returns 0, -EINVAL (bad size/alignment/window) or -ENOMEM. fini frees
 * only the driver's own arrays; the ring memory belongs to the caller. */
void umdev_vqd_fini(struct umdev_vqd *d);

/**
 * umdev_vqd_init_packed() - the same for a packed ring (VIRTIO_F_RING_PACKED):
 * descriptor ring at @ring_gpa, then the driver and device event areas
 * (desc_gpa, avail_gpa, used_gpa name them, as vhost-user's SET_VRING_ADDR
 * does). Fits in umdev_vqd_ring_bytes(size). Every function below works on
 * both layouts; with a packed ring the "head" they return or take is the
 * buffer id. With @event_idx the driver asks for interrupts in DESC mode at
 * the next slot it will reap.
 */
int umdev_vqd_init_packed(struct umdev_vqd *d, void *mem, uint64_t mem_gpa, uint64_t mem_size,
			  uint64_t ring_gpa, uint16_t size, bool event_idx);
uint64_t umdev_vqd_ring_bytes(uint16_t size);

/**
 * umdev_vqd_add() - post a chain of @n buffers (readable ones first is the
 * caller's business). With @indirect_gpa != 0 the chain is written as an
 * indirect table at that guest address and takes one ring descriptor.
 * Returns the head index, or -ENOSPC if the ring lacks free descriptors.
 * The entry becomes visible to the device (avail->idx, release ordering).
 */
int umdev_vqd_add(struct umdev_vqd *d, const struct umdev_vqd_buf *bufs, unsigned n,
		  uint64_t indirect_gpa);

/** umdev_vqd_kick_needed() - honour VIRTQ_USED_F_NO_NOTIFY / avail_event. */
bool umdev_vqd_kick_needed(struct umdev_vqd *d);

/**
 * umdev_vqd_get_used() - reap one used entry: returns 1 and sets *@head and
 * *@len, or 0 if none, or -EPROTO if the device returned a head that is not
 * outstanding. Frees the chain's descriptors. With EVENT_IDX (and
 * VIRTQ_AVAIL_F_NO_INTERRUPT clear) it then sets used_event to the next
 * entry it will reap, as Linux does, so the device interrupts for it.
 */
int umdev_vqd_get_used(struct umdev_vqd *d, uint16_t *head, uint32_t *len);

/**
 * umdev_vqd_set_used_event() - with EVENT_IDX, ask for an interrupt at @idx
 * (packed: a slot | wrap << 15).
 */
void umdev_vqd_set_used_event(struct umdev_vqd *d, uint16_t idx);

/** umdev_vqd_num_free() - free descriptors left in the ring. */
unsigned umdev_vqd_num_free(const struct umdev_vqd *d);

/** umdev_vqd_has_used() - true if get_used would find an entry. */
bool umdev_vqd_has_used(struct umdev_vqd *d);

/**
 * umdev_vqd_set_interrupts() - packed rings: the driver area's flags
 * (VIRTQ_PACKED_EVENT_ENABLE, _DISABLE or _DESC with the offset at @pos,
 * a slot | wrap << 15). Split rings: VIRTQ_AVAIL_F_NO_INTERRUPT for DISABLE.
 */
void umdev_vqd_set_interrupts(struct umdev_vqd *d, uint16_t mode, uint16_t pos);

/* virtq_drv_packed.c, called by the functions above for packed rings. */
int umdev_vqd_packed_add(struct umdev_vqd *d, const struct umdev_vqd_buf *bufs, unsigned n,
			 uint64_t indirect_gpa);
bool umdev_vqd_packed_kick_needed(struct umdev_vqd *d);
bool umdev_vqd_packed_has_used(struct umdev_vqd *d);
int umdev_vqd_packed_get_used(struct umdev_vqd *d, uint16_t *id, uint32_t *len);

#endif
