/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user wire format, written from QEMU's docs/interop/vhost-user.rst.
 *
 * Every message is a 12-byte header followed by header.size payload bytes;
 * file descriptors travel as SCM_RIGHTS ancillary data with the header.
 * Host byte order (the protocol runs between processes on one host).
 */
#ifndef UMDEV_PROTO_VHOST_USER_H
#define UMDEV_PROTO_VHOST_USER_H

#include <stdint.h>

enum vhost_user_request {
	VHOST_USER_NONE = 0,
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SEND_RARP = 19,
	VHOST_USER_NET_SET_MTU = 20,
	VHOST_USER_SET_BACKEND_REQ_FD = 21,
	VHOST_USER_IOTLB_MSG = 22,
	VHOST_USER_SET_VRING_ENDIAN = 23,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_CREATE_CRYPTO_SESSION = 26,
	VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
	VHOST_USER_POSTCOPY_ADVISE = 28,
	VHOST_USER_POSTCOPY_LISTEN = 29,
	VHOST_USER_POSTCOPY_END = 30,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_GPU_SET_SOCKET = 33,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_VRING_KICK = 35,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
	VHOST_USER_SET_STATUS = 39,
	VHOST_USER_GET_STATUS = 40,
	VHOST_USER_MAX_REQUEST,
};

/* Requests a back-end sends on the SET_BACKEND_REQ_FD channel. */
enum vhost_user_backend_request {
	VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2,
};

/* Virtio feature bit that announces vhost-user protocol features. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30
/* Virtio feature bit for dirty logging (migration). */
#define VHOST_F_LOG_ALL 26

enum vhost_user_protocol_feature {
	VHOST_USER_PROTOCOL_F_MQ = 0,
	VHOST_USER_PROTOCOL_F_LOG_SHMFD = 1,
	VHOST_USER_PROTOCOL_F_RARP = 2,
	VHOST_USER_PROTOCOL_F_REPLY_ACK = 3,
	VHOST_USER_PROTOCOL_F_NET_MTU = 4,
	VHOST_USER_PROTOCOL_F_BACKEND_REQ = 5,
	VHOST_USER_PROTOCOL_F_CROSS_ENDIAN = 6,
	VHOST_USER_PROTOCOL_F_CRYPTO_SESSION = 7,
	VHOST_USER_PROTOCOL_F_PAGEFAULT = 8,
	VHOST_USER_PROTOCOL_F_CONFIG = 9,
	VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD = 10,
	VHOST_USER_PROTOCOL_F_HOST_NOTIFIER = 11,
	VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD = 12,
	VHOST_USER_PROTOCOL_F_RESET_DEVICE = 13,
	VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS = 14,
	VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15,
	VHOST_USER_PROTOCOL_F_STATUS = 16,
};

/* header.flags */
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_VERSION      0x1u
#define VHOST_USER_FLAG_REPLY   (1u << 2)
#define VHOST_USER_FLAG_NEED_REPLY (1u << 3)

/* SET_VRING_KICK/CALL/ERR u64 payload: ring index and "no fd" flag. */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD     (1ull << 8)

/* SET_MEM_TABLE carries at most this many regions. */
#define VHOST_USER_MAX_MEM_REGIONS 8
/* Most fds any single message carries. */
#define VHOST_USER_MAX_FDS 8
/* Largest config space GET/SET_CONFIG may move. */
#define VHOST_USER_MAX_CONFIG_SIZE 256

struct vhost_user_header {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vhost_user_vring_state {
	uint32_t index;
	uint32_t num;
} __attribute__((packed));

#define VHOST_VRING_F_LOG 0 /* vring_addr.flags bit: log used ring writes */

struct vhost_user_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
} __attribute__((packed));

struct vhost_user_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
} __attribute__((packed));

struct vhost_user_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vhost_user_mem_region regions[VHOST_USER_MAX_MEM_REGIONS];
} __attribute__((packed));

/* ADD_MEM_REG / REM_MEM_REG payload. */
struct vhost_user_mem_reg {
	uint64_t padding;
	struct vhost_user_mem_region region;
} __attribute__((packed));

struct vhost_user_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t payload[VHOST_USER_MAX_CONFIG_SIZE];
} __attribute__((packed));
#define VHOST_USER_CONFIG_HDR_SIZE 12u

/*
 * GET/SET_INFLIGHT_FD payload. The spec lists four fields (20 bytes); QEMU
 * sends and expects the naturally aligned struct, 24 bytes with padding.
 */
struct vhost_user_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
} __attribute__((packed));
#define VHOST_USER_INFLIGHT_MIN_SIZE 20u

struct vhost_user_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
} __attribute__((packed));

union vhost_user_payload {
	uint64_t u64;
	struct vhost_user_vring_state state;
	struct vhost_user_vring_addr addr;
	struct vhost_user_mem_table mem;
	struct vhost_user_mem_reg mem_reg;
	struct vhost_user_config config;
	struct vhost_user_inflight inflight;
	struct vhost_user_log log;
};

struct vhost_user_msg {
	struct vhost_user_header hdr;
	union vhost_user_payload p;
} __attribute__((packed));

/*
 * Inflight region (INFLIGHT_SHMFD), split rings. One queue region per
 * virtqueue, laid out back to back; each is padded to a multiple of 64 bytes
 * by the back-end that sizes it.
 */
struct vhost_user_inflight_desc {
	uint8_t inflight; /* 1 while the descriptor head is owned by the back-end */
	uint8_t padding[5];
	uint16_t next; /* batch link used while completing */
	uint64_t counter; /* submission order, for resubmission in order */
} __attribute__((packed));

struct vhost_user_inflight_queue {
	uint64_t features; /* reserved */
	uint16_t version; /* 0 until the back-end first initialises it */
	uint16_t desc_num; /* ring size */
	uint16_t last_batch_head; /* head of the chain being completed */
	uint16_t used_idx; /* back-end's copy of used->idx */
	struct vhost_user_inflight_desc desc[];
} __attribute__((packed));

#define VHOST_USER_INFLIGHT_VERSION 1

_Static_assert(sizeof(struct vhost_user_inflight_desc) == 16, "inflight desc layout");
_Static_assert(sizeof(struct vhost_user_inflight_queue) == 16, "inflight queue layout");
_Static_assert(sizeof(struct vhost_user_vring_addr) == 40, "vring addr layout");
_Static_assert(sizeof(struct vhost_user_mem_table) == 8 + 8 * 32, "mem table layout");

#endif
