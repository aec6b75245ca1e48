/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split virtqueue wire format (virtio 1.x, "Split Virtqueues").
 *
 * All fields are little-endian in guest memory. umdev only builds on
 * little-endian hosts today (checked below), so fields are read directly.
 */
#ifndef UMDEV_PROTO_VIRTIO_RING_H
#define UMDEV_PROTO_VIRTIO_RING_H

#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "umdev reads virtio rings in place and supports little-endian hosts only"
#endif

/* Descriptor flags. */
#define VIRTQ_DESC_F_NEXT     1u /* chain continues at .next */
#define VIRTQ_DESC_F_WRITE    2u /* device writes this buffer */
#define VIRTQ_DESC_F_INDIRECT 4u /* buffer holds a descriptor table */

/* Driver asks the device not to interrupt (ignored once EVENT_IDX is on). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
/* Device asks the driver not to kick (ignored once EVENT_IDX is on). */
#define VIRTQ_USED_F_NO_NOTIFY 1u

/* Feature bits that belong to the ring rather than to a device type. */
#define VIRTIO_F_NOTIFY_ON_EMPTY   24
#define VIRTIO_F_ANY_LAYOUT        27
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX    29
#define VIRTIO_F_VERSION_1         32
#define VIRTIO_F_ACCESS_PLATFORM   33
#define VIRTIO_F_RING_PACKED       34
#define VIRTIO_F_IN_ORDER          35
#define VIRTIO_F_ORDER_PLATFORM    36
#define VIRTIO_F_SR_IOV            37
#define VIRTIO_F_NOTIFICATION_DATA 38
#define VIRTIO_F_RING_RESET        40

/* Largest ring size the split format allows (2^15). */
#define VIRTQ_MAX_SIZE 32768u

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
	/* followed by uint16_t used_event when EVENT_IDX is negotiated */
};

struct virtq_used_elem {
	uint32_t id; /* head of the chain (uint32 for padding) */
	uint32_t len; /* bytes the device wrote into the chain */
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];
	/* followed by uint16_t avail_event when EVENT_IDX is negotiated */
};

/* Bytes each part of a split ring of @n entries occupies (with event fields). */
static inline uint64_t virtq_desc_bytes(uint32_t n) { return 16ull * n; }
static inline uint64_t virtq_avail_bytes(uint32_t n) { return 6ull + 2ull * n; }
static inline uint64_t virtq_used_bytes(uint32_t n) { return 6ull + 8ull * n; }

/*
 * With EVENT_IDX: should a notification be sent, given that the index moved
 * from @old_idx to @new_idx and the other side asked to hear at @event_idx?
 * All arithmetic is modulo 2^16.
 */
static inline int virtq_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

#endif
