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

/** umdev_vqd_set_used_event() - with EVENT_IDX, ask for an interrupt at @idx. */
void umdev_vqd_set_used_event(struct umdev_vqd *d, uint16_t idx);

/** umdev_vqd_num_free() - free descriptors left in the ring. */
unsigned umdev_vqd_num_free(const struct umdev_vqd *d);

/** umdev_vqd_has_used() - true if get_used would find an entry. */
bool umdev_vqd_has_used(struct umdev_vqd *d);

#endif
