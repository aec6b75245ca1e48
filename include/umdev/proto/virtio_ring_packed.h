/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packed virtqueue wire format (virtio 1.1+, "Packed Virtqueues",
 * VIRTIO_F_RING_PACKED), and the packed layout of the vhost-user inflight
 * region (docs/interop/vhost-user.rst, "Inflight I/O tracking").
 *
 * One descriptor ring carries both directions. The driver makes a
 * descriptor available by setting AVAIL to its wrap counter and USED to the
 * inverse; the device marks a buffer used by writing both bits equal to its
 * own wrap counter into the first slot of the next used position. Both
 * counters start at 1 and flip each time their index passes the ring end.
 */
#ifndef UMDEV_PROTO_VIRTIO_RING_PACKED_H
#define UMDEV_PROTO_VIRTIO_RING_PACKED_H

#include <stdint.h>

#include "umdev/proto/virtio_ring.h"

#define VIRTQ_DESC_F_AVAIL (1u << 7)
#define VIRTQ_DESC_F_USED  (1u << 15)

struct virtq_packed_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id; /* buffer id; the device reads it from the chain's last descriptor */
	uint16_t flags;
};

/* Event suppression structure (driver area and device area). */
struct virtq_packed_event {
	uint16_t off_wrap; /* bits 0-14 ring offset, bit 15 wrap counter (DESC mode) */
	uint16_t flags;
};

#define VIRTQ_PACKED_EVENT_ENABLE  0u
#define VIRTQ_PACKED_EVENT_DISABLE 1u
#define VIRTQ_PACKED_EVENT_DESC    2u /* only with VIRTIO_RING_F_EVENT_IDX */

/* The ring-position encoding vhost-user's VRING_BASE uses: idx | wrap << 15. */
#define VIRTQ_PACKED_WRAP_BIT 0x8000u

/* vhost-user inflight region, packed rings: one entry per ring slot. */
struct vhost_user_inflight_desc_packed {
	uint8_t inflight; /* head entry: 1 while the buffer is owned by the back-end */
	uint8_t padding;
	uint16_t next; /* free-list link, and the chain's next entry while in flight */
	uint16_t last; /* head entry: entry holding the chain's last descriptor */
	uint16_t num; /* head entry: ring descriptors in the chain */
	uint64_t counter; /* head entry: submission order */
	uint16_t id; /* copy of the ring descriptor */
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

struct vhost_user_inflight_queue_packed {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct vhost_user_inflight_desc_packed desc[];
};

_Static_assert(sizeof(struct virtq_packed_desc) == 16, "packed desc layout");
_Static_assert(sizeof(struct vhost_user_inflight_desc_packed) == 32, "inflight packed desc");
_Static_assert(sizeof(struct vhost_user_inflight_queue_packed) == 32, "inflight packed queue");

#endif
