/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio-user wire format (QEMU docs/interop/vfio-user.rst, protocol 0.1),
 * plus the VFIO constants it borrows from <linux/vfio.h>. Host endianness,
 * packed little structures; every field is named as in the spec. Wire
 * format only: no API here.
 */
#ifndef UMDEV_PROTO_VFIO_USER_H
#define UMDEV_PROTO_VFIO_USER_H

#include <stdint.h>

#define VFIO_USER_MAJOR 0
#define VFIO_USER_MINOR 1

enum vfio_user_command {
	VFIO_USER_VERSION = 1,
	VFIO_USER_DMA_MAP = 2,
	VFIO_USER_DMA_UNMAP = 3,
	VFIO_USER_DEVICE_GET_INFO = 4,
	VFIO_USER_DEVICE_GET_REGION_INFO = 5,
	VFIO_USER_DEVICE_GET_REGION_IO_FDS = 6,
	VFIO_USER_DEVICE_GET_IRQ_INFO = 7,
	VFIO_USER_DEVICE_SET_IRQS = 8,
	VFIO_USER_REGION_READ = 9,
	VFIO_USER_REGION_WRITE = 10,
	VFIO_USER_DMA_READ = 11,
	VFIO_USER_DMA_WRITE = 12,
	VFIO_USER_DEVICE_RESET = 13,
	VFIO_USER_REGION_WRITE_MULTI = 15,
	VFIO_USER_DEVICE_FEATURE = 16,
	VFIO_USER_MIG_DATA_READ = 17,
	VFIO_USER_MIG_DATA_WRITE = 18,
	VFIO_USER_MAX_COMMAND = 19,
};

/* Header flags. */
#define VFIO_USER_F_TYPE_MASK 0xf
#define VFIO_USER_F_TYPE_COMMAND 0x0
#define VFIO_USER_F_TYPE_REPLY 0x1
#define VFIO_USER_F_NO_REPLY 0x10
#define VFIO_USER_F_ERROR 0x20

struct vfio_user_header {
	uint16_t msg_id;
	uint16_t cmd;
	uint32_t msg_size; /* whole message, header included */
	uint32_t flags;
	uint32_t error_no; /* errno in an error reply */
} __attribute__((packed));

/* VERSION: followed by optional NUL-terminated JSON. */
struct vfio_user_version {
	uint16_t major;
	uint16_t minor;
	char data[];
} __attribute__((packed));

/* Capability defaults when the peer does not state them. */
#define VFIO_USER_DEF_MAX_MSG_FDS 1
#define VFIO_USER_DEF_MAX_DATA_XFER (1u << 20)
#define VFIO_USER_DEF_MAX_DMA_MAPS 65535
#define VFIO_USER_DEF_PGSIZES 4096

/* DMA_MAP / DMA_UNMAP. */
#define VFIO_USER_F_DMA_REGION_READ (1u << 0)
#define VFIO_USER_F_DMA_REGION_WRITE (1u << 1)
#define VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (1u << 0)
#define VFIO_DMA_UNMAP_FLAG_ALL (1u << 1)

struct vfio_user_dma_map {
	uint32_t argsz;
	uint32_t flags;
	uint64_t offset; /* in the fd, 0 when there is none */
	uint64_t addr; /* IOVA */
	uint64_t size;
} __attribute__((packed));

struct vfio_user_dma_unmap {
	uint32_t argsz;
	uint32_t flags;
	uint64_t addr;
	uint64_t size;
} __attribute__((packed));

/* DEVICE_GET_INFO. */
#define VFIO_DEVICE_FLAGS_RESET (1u << 0)
#define VFIO_DEVICE_FLAGS_PCI (1u << 1)

struct vfio_user_device_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t num_regions;
	uint32_t num_irqs;
} __attribute__((packed));

/* PCI region and IRQ indices (the VFIO PCI device model). */
enum {
	VFIO_PCI_BAR0_REGION_INDEX = 0,
	VFIO_PCI_BAR5_REGION_INDEX = 5,
	VFIO_PCI_ROM_REGION_INDEX = 6,
	VFIO_PCI_CONFIG_REGION_INDEX = 7,
	VFIO_PCI_VGA_REGION_INDEX = 8,
	VFIO_PCI_NUM_REGIONS = 9,
};

enum {
	VFIO_PCI_INTX_IRQ_INDEX = 0,
	VFIO_PCI_MSI_IRQ_INDEX = 1,
	VFIO_PCI_MSIX_IRQ_INDEX = 2,
	VFIO_PCI_ERR_IRQ_INDEX = 3,
	VFIO_PCI_REQ_IRQ_INDEX = 4,
	VFIO_PCI_NUM_IRQS = 5,
};

/* DEVICE_GET_REGION_INFO. */
#define VFIO_REGION_INFO_FLAG_READ (1u << 0)
#define VFIO_REGION_INFO_FLAG_WRITE (1u << 1)
#define VFIO_REGION_INFO_FLAG_MMAP (1u << 2)
#define VFIO_REGION_INFO_FLAG_CAPS (1u << 3)

struct vfio_user_region_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t cap_offset; /* from the start of this structure, 0: none */
	uint64_t size;
	uint64_t offset; /* mmap offset in the region's fd */
} __attribute__((packed));

struct vfio_info_cap_header {
	uint16_t id;
	uint16_t version;
	uint32_t next; /* from the start of the region info, 0: last */
} __attribute__((packed));

#define VFIO_REGION_INFO_CAP_SPARSE_MMAP 1
#define VFIO_REGION_INFO_CAP_TYPE 2

struct vfio_region_sparse_mmap_area {
	uint64_t offset;
	uint64_t size;
} __attribute__((packed));

struct vfio_region_info_cap_sparse_mmap {
	struct vfio_info_cap_header header;
	uint32_t nr_areas;
	uint32_t reserved;
	struct vfio_region_sparse_mmap_area areas[];
} __attribute__((packed));

/* DEVICE_GET_REGION_IO_FDS. */
struct vfio_user_region_io_fds_request {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t count;
} __attribute__((packed));

/* DEVICE_GET_IRQ_INFO. */
#define VFIO_IRQ_INFO_EVENTFD (1u << 0)
#define VFIO_IRQ_INFO_MASKABLE (1u << 1)
#define VFIO_IRQ_INFO_AUTOMASKED (1u << 2)
#define VFIO_IRQ_INFO_NORESIZE (1u << 3)

struct vfio_user_irq_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t count;
} __attribute__((packed));

/* DEVICE_SET_IRQS. */
#define VFIO_IRQ_SET_DATA_NONE (1u << 0)
#define VFIO_IRQ_SET_DATA_BOOL (1u << 1)
#define VFIO_IRQ_SET_DATA_EVENTFD (1u << 2)
#define VFIO_IRQ_SET_ACTION_MASK (1u << 3)
#define VFIO_IRQ_SET_ACTION_UNMASK (1u << 4)
#define VFIO_IRQ_SET_ACTION_TRIGGER (1u << 5)
#define VFIO_IRQ_SET_DATA_TYPE_MASK 0x7u
#define VFIO_IRQ_SET_ACTION_TYPE_MASK 0x38u

struct vfio_user_irq_set {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t start;
	uint32_t count;
	uint8_t data[]; /* count booleans with DATA_BOOL */
} __attribute__((packed));

/* REGION_READ / REGION_WRITE: data follows for writes and read replies. */
struct vfio_user_region_access {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
	uint8_t data[];
} __attribute__((packed));

/* DMA_READ / DMA_WRITE (server to client). */
struct vfio_user_dma_access {
	uint64_t addr;
	uint64_t count;
	uint8_t data[];
} __attribute__((packed));

/* REGION_WRITE_MULTI. */
#define VFIO_USER_MULTI_DATA 8
#define VFIO_USER_MULTI_MAX 200

struct vfio_user_write_multi_entry {
	uint64_t offset;
	uint32_t region;
	uint32_t count; /* at most VFIO_USER_MULTI_DATA */
	uint8_t data[VFIO_USER_MULTI_DATA];
} __attribute__((packed));

struct vfio_user_write_multi {
	uint64_t wr_cnt;
	struct vfio_user_write_multi_entry wrs[];
} __attribute__((packed));

/* DEVICE_FEATURE. */
#define VFIO_DEVICE_FEATURE_MASK 0xffffu
#define VFIO_DEVICE_FEATURE_GET (1u << 16)
#define VFIO_DEVICE_FEATURE_SET (1u << 17)
#define VFIO_DEVICE_FEATURE_PROBE (1u << 18)

struct vfio_user_device_feature {
	uint32_t argsz;
	uint32_t flags;
	uint8_t data[];
} __attribute__((packed));

#endif
