/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A virtio-blk driver over either transport: vhost-user (our vhost-user
 * client) or virtio-pci on vfio-user (our vfio-user client and virtio-pci
 * driver). One test body or benchmark drives both through this interface.
 * Buffers are guest addresses from umdev_vba_alloc(); completions come back
 * with the caller's cookie. Used by tests and benchmarks; not thread-safe.
 *
 * The transport half (open, guest memory, config, a queue's driver ring,
 * kick, interrupt wait) is not virtio-blk specific: the virtio-scsi driver
 * (virtio_scsi_drv.h) runs on it too.
 */
#ifndef UMDEV_CLIENT_VIRTIO_BLK_ANY_H
#define UMDEV_CLIENT_VIRTIO_BLK_ANY_H

#include <stdbool.h>
#include <stdint.h>

#include "client/vhost_user_client.h"
#include "client/virtio_pci_drv.h"

struct umdev_vba {
	bool vfu; /* virtio-pci over vfio-user, else vhost-user */
	/*
	 * Set before open for a client that busy-polls (benchmarks): the
	 * driver asks for no interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT, so no
	 * EVENT_IDX) and over vfio-user assigns no MSI-X vectors.
	 */
	bool no_interrupts;
	/* Set before open: features to accept (0: all the device offers; vhost-user: its default). */
	uint64_t want_features;
	unsigned nq;
	uint16_t qsize;
	struct umdev_vuc vu;
	struct umdev_vfuc vc;
	struct umdev_vpd vpd;
	/* vfio-user only: per queue, header+status slots and who owns each head. */
	uint64_t slots_gpa[UMDEV_VPD_MAX_QUEUES];
	uint16_t *free_slots[UMDEV_VPD_MAX_QUEUES];
	unsigned nfree[UMDEV_VPD_MAX_QUEUES];
	uint16_t *slot_of[UMDEV_VPD_MAX_QUEUES]; /* by head */
	uint64_t *cookie_of[UMDEV_VPD_MAX_QUEUES]; /* by head */
	uint64_t next_alloc, mem_end;
};

/**
 * umdev_vba_open() - connect to @sock and bring up @nq queues of @qsize
 * entries with @mem_size bytes of guest memory (fd-backed), every feature
 * the device offers accepted. Over vfio-user, queue q interrupts on MSI-X
 * vector q + 1. @b->no_interrupts and @b->want_features are read (set them
 * first; the rest of @b is cleared). Returns 0 or -errno.
 */
int umdev_vba_open(struct umdev_vba *b, bool vfu, const char *sock, unsigned nq, uint16_t qsize,
		   uint64_t mem_size) __attribute__((warn_unused_result));
void umdev_vba_close(struct umdev_vba *b);

/** umdev_vba_alloc() - guest memory for buffers (0 when exhausted); umdev_vba_ptr() maps it. */
uint64_t umdev_vba_alloc(struct umdev_vba *b, uint64_t size, uint64_t align);
void *umdev_vba_ptr(struct umdev_vba *b, uint64_t gpa, uint64_t len);

/** umdev_vba_config() - read the device's config space. */
int umdev_vba_config(struct umdev_vba *b, uint32_t off, void *buf, uint32_t len)
	__attribute__((warn_unused_result));

/**
 * umdev_vba_config_write() - write the device's config space: a vhost-user
 * SET_CONFIG (a refusal is an error), or a BAR write over vfio-user (which
 * a device ignores silently when it refuses, as PCI hardware does).
 */
int umdev_vba_config_write(struct umdev_vba *b, uint32_t off, const void *buf, uint32_t len)
	__attribute__((warn_unused_result));

/** umdev_vba_features() - the negotiated feature bits. */
uint64_t umdev_vba_features(struct umdev_vba *b);

/** umdev_vba_vq() - the driver side of queue @q (@q < @b->nq). */
struct umdev_vqd *umdev_vba_vq(struct umdev_vba *b, unsigned q);

/** umdev_vba_kick() - notify the device of new buffers on @q. */
int umdev_vba_kick(struct umdev_vba *b, unsigned q) __attribute__((warn_unused_result));

/**
 * umdev_vba_wait_irq() - sleep up to @timeout_ms for @q's interrupt (call
 * eventfd or MSI-X vector). It may have fired for entries already reaped:
 * callers look at the used ring again whatever this returns.
 */
void umdev_vba_wait_irq(struct umdev_vba *b, unsigned q, int timeout_ms);

/** As umdev_vblk_submit(): header, @n data buffers, status byte. */
int umdev_vba_submit(struct umdev_vba *b, unsigned q, uint32_t type, uint64_t sector,
		     const struct umdev_vqd_buf *data, unsigned n, uint64_t cookie, bool no_kick)
	__attribute__((warn_unused_result));

/** As umdev_vblk_poll() / umdev_vblk_wait() (the wait sleeps on the queue's interrupt). */
int umdev_vba_poll(struct umdev_vba *b, unsigned q, struct umdev_vblk_cpl *cpl, unsigned max)
	__attribute__((warn_unused_result));
int umdev_vba_wait(struct umdev_vba *b, unsigned q, struct umdev_vblk_cpl *cpl, unsigned max,
		   int timeout_ms) __attribute__((warn_unused_result));

#endif
