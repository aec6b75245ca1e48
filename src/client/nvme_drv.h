/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small NVMe host driver for tests and the benchmark: what a guest's nvme
 * driver does, over any "bus" (the in-tree vfio-user client, or a direct
 * fake in unit tests). Written from the NVMe base specification.
 *
 * Guest memory is one window [mem_iova, mem_iova + mem_size) the caller
 * provides a host pointer for; the driver carves queues and buffers from it
 * with a bump allocator. Queue pair N uses SQ N and CQ N (vector N).
 * Single-threaded; not part of libumdev.
 */
#ifndef UMDEV_CLIENT_NVME_DRV_H
#define UMDEV_CLIENT_NVME_DRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/vfio_user_client.h"
#include "umdev/proto/nvme.h"

#define UMDEV_NVMED_MAX_QUEUES 65

struct umdev_nvmed_bus {
	/* BAR0 register access (4 or 8 bytes). */
	int (*reg_read)(void *opaque, uint32_t off, void *buf, unsigned len);
	int (*reg_write)(void *opaque, uint32_t off, const void *buf, unsigned len);
	/*
	 * Host pointer to the doorbell page (BAR0 + 0x1000) when the bus maps
	 * it; NULL: doorbells are written with reg_write (trapped).
	 */
	uint32_t *doorbells; /* written with umdev_shm_st32_rel() */
	/* Let the device run once (unit tests drive the controller by hand); may be NULL. */
	void (*kick)(void *opaque);
};

struct umdev_nvmed_queue {
	uint64_t sq_iova, cq_iova;
	struct nvme_sqe *sq;
	struct nvme_cqe *cq;
	uint32_t size;
	uint32_t sq_tail, cq_head;
	uint8_t phase;
	bool live;
};

struct umdev_nvmed {
	const struct umdev_nvmed_bus *bus;
	void *opaque;
	uint8_t *mem;
	uint64_t mem_iova, mem_size, brk;
	uint64_t cap;
	uint16_t next_cid;
	struct umdev_nvmed_queue q[UMDEV_NVMED_MAX_QUEUES];
	/* Shadow doorbells (after umdev_nvmed_dbbuf()). */
	uint32_t *shadow, *eventidx;
	unsigned db_writes; /* real doorbell writes done */
	unsigned db_errors; /* trapped doorbell writes that failed */
	int timeout_ms;
};

/** umdev_nvmed_init() - no device access yet. @mem: host view of the guest window. */
void umdev_nvmed_init(struct umdev_nvmed *d, const struct umdev_nvmed_bus *bus, void *opaque,
		      void *mem, uint64_t mem_iova, uint64_t mem_size);

/** umdev_nvmed_alloc() - zeroed guest memory, @align a power of two; 0 when full. */
uint64_t umdev_nvmed_alloc(struct umdev_nvmed *d, uint64_t size, uint64_t align);
/** umdev_nvmed_ptr() - host pointer for guest @iova (no check beyond the window). */
void *umdev_nvmed_ptr(struct umdev_nvmed *d, uint64_t iova);

int umdev_nvmed_reg_read32(struct umdev_nvmed *d, uint32_t off, uint32_t *v)
	__attribute__((warn_unused_result));
int umdev_nvmed_reg_write32(struct umdev_nvmed *d, uint32_t off, uint32_t v)
	__attribute__((warn_unused_result));

/**
 * umdev_nvmed_enable() - set up an admin queue pair of @aq_size entries and
 * enable the controller (CC.EN=1), waiting for CSTS.RDY. -EIO if CSTS.CFS,
 * -ETIMEDOUT. A second call after umdev_nvmed_disable() reuses the memory.
 */
int umdev_nvmed_enable(struct umdev_nvmed *d, uint32_t aq_size) __attribute__((warn_unused_result));
/** umdev_nvmed_disable() - CC.EN=0 and wait for RDY to clear; forget the queues. */
int umdev_nvmed_disable(struct umdev_nvmed *d) __attribute__((warn_unused_result));

/**
 * umdev_nvmed_submit() - put @cmd (cid assigned) on SQ @qid and ring its
 * doorbell (through the shadow doorbell when enabled, writing the real one
 * only when EventIdx asks). Returns the cid, -ENOSPC if the SQ is full.
 */
int umdev_nvmed_submit(struct umdev_nvmed *d, uint16_t qid, struct nvme_sqe *cmd)
	__attribute__((warn_unused_result));
/**
 * umdev_nvmed_db_write() - write real doorbell @idx (2*qid: SQ tail,
 * 2*qid+1: CQ head) as is, mapped or trapped; tests use it for bad values.
 */
int umdev_nvmed_db_write(struct umdev_nvmed *d, unsigned idx, uint32_t val)
	__attribute__((warn_unused_result));
/** umdev_nvmed_submit_many() - like submit, ringing the doorbell once for @n commands. */
int umdev_nvmed_submit_batch(struct umdev_nvmed *d, uint16_t qid, struct nvme_sqe *cmds,
			     unsigned n) __attribute__((warn_unused_result));
/**
 * umdev_nvmed_reap() - wait up to the driver's timeout for the next entry on
 * CQ @qid; copy it to @out and release the slot. 0, or -ETIMEDOUT.
 */
int umdev_nvmed_reap(struct umdev_nvmed *d, uint16_t qid, struct nvme_cqe *out)
	__attribute__((warn_unused_result));
/**
 * umdev_nvmed_reap_many() - take every entry waiting on CQ @qid (at most
 * @max, no wait) and ring its head doorbell once. Returns the count.
 */
int umdev_nvmed_reap_many(struct umdev_nvmed *d, uint16_t qid, struct nvme_cqe *out,
			  unsigned max) __attribute__((warn_unused_result));
/** umdev_nvmed_cq_ready() - an entry is waiting on CQ @qid (no wait). */
bool umdev_nvmed_cq_ready(struct umdev_nvmed *d, uint16_t qid);

/**
 * umdev_nvmed_cmd() - submit and wait. Returns the status field (0 = success,
 * else SCT << 8 | SC, DNR/MORE bits dropped) or -errno; *@dw0 if non-NULL.
 */
int umdev_nvmed_cmd(struct umdev_nvmed *d, uint16_t qid, struct nvme_sqe *cmd, uint32_t *dw0)
	__attribute__((warn_unused_result));

/** Admin helpers; return as umdev_nvmed_cmd(). */
int umdev_nvmed_identify(struct umdev_nvmed *d, uint8_t cns, uint32_t nsid, uint64_t buf_iova)
	__attribute__((warn_unused_result));
int umdev_nvmed_set_features(struct umdev_nvmed *d, uint8_t fid, uint32_t cdw11, uint32_t *dw0)
	__attribute__((warn_unused_result));
int umdev_nvmed_get_features(struct umdev_nvmed *d, uint8_t fid, uint32_t cdw11, uint32_t *dw0)
	__attribute__((warn_unused_result));
/** umdev_nvmed_create_qpair() - CQ @qid (vector @qid, interrupts @ien) then SQ @qid. */
int umdev_nvmed_create_qpair(struct umdev_nvmed *d, uint16_t qid, uint32_t size, bool ien)
	__attribute__((warn_unused_result));
int umdev_nvmed_delete_qpair(struct umdev_nvmed *d, uint16_t qid)
	__attribute__((warn_unused_result));
/** umdev_nvmed_dbbuf() - Doorbell Buffer Config: use shadow doorbells from now on. */
int umdev_nvmed_dbbuf(struct umdev_nvmed *d) __attribute__((warn_unused_result));

/**
 * umdev_nvmed_build_rw() - a Read/Write/Compare command for @nlb blocks at
 * @slba of @nsid with data at @buf_iova (@len bytes), described by PRPs
 * (allocating a PRP list when needed) or, with @sgl, by one data block
 * descriptor (or a last segment of per-page descriptors when @sgl_split).
 */
int umdev_nvmed_build_rw(struct umdev_nvmed *d, struct nvme_sqe *cmd, uint8_t opcode,
			 uint32_t nsid, uint64_t slba, uint32_t nlb, uint64_t buf_iova,
			 uint64_t len, bool sgl, bool sgl_split) __attribute__((warn_unused_result));

/** umdev_nvmed_status() - "SCT/SC" name for logs. */
const char *umdev_nvmed_status_str(int status);

/*
 * The driver on a controller served over vfio-user (src/client's vfio-user
 * client as the bus): registers by REGION_READ/WRITE, the doorbell page
 * mmapped from BAR0's shared part, guest memory one fd-backed DMA window.
 * Opening touches neither the command register nor interrupts, as a driver
 * written for kernel VFIO would not; the caller sets those up as the test
 * needs. Single-threaded per host.
 */
#define UMDEV_NVMED_VFU_MAX_VEC 8

struct umdev_nvmed_vfu {
	struct umdev_vfuc c;
	struct umdev_nvmed d;
	struct umdev_nvmed_bus bus;
	void *db_page;
	int efd[UMDEV_NVMED_VFU_MAX_VEC]; /* MSI-X eventfds, -1 if unset */
	unsigned nvec;
	/* Trapped doorbell writes go out posted (no reply awaited), as QEMU's. */
	bool posted_doorbells;
};

/**
 * umdev_nvmed_vfu_open() - connect to @sock, negotiate, DMA_MAP @size bytes
 * of new guest memory at @iova, mmap the doorbell page. 0 or -errno (the
 * host is closed again on failure).
 */
int umdev_nvmed_vfu_open(struct umdev_nvmed_vfu *h, const char *sock, uint64_t iova,
			 uint64_t size) __attribute__((warn_unused_result));

/** umdev_nvmed_vfu_open_ex() - the same; @unsealed leaves guest memory shrinkable (tests). */
int umdev_nvmed_vfu_open_ex(struct umdev_nvmed_vfu *h, const char *sock, uint64_t iova,
			    uint64_t size, bool unsealed) __attribute__((warn_unused_result));

/**
 * umdev_nvmed_vfu_msix() - @nvec non-blocking MSI-X eventfds (h->efd),
 * MSI-X enabled in the capability, every table entry unmasked.
 */
int umdev_nvmed_vfu_msix(struct umdev_nvmed_vfu *h, unsigned nvec)
	__attribute__((warn_unused_result));

/** umdev_nvmed_vfu_command() - read-modify-write the PCI command register. */
int umdev_nvmed_vfu_command(struct umdev_nvmed_vfu *h, uint16_t set, uint16_t clear)
	__attribute__((warn_unused_result));

/** umdev_nvmed_vfu_close() - unmap, close the eventfds and the connection. */
void umdev_nvmed_vfu_close(struct umdev_nvmed_vfu *h);

#endif
