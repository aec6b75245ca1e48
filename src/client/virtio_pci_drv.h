/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A virtio-pci (modern) driver over our vfio-user client: what a guest's
 * virtio_pci driver does, from userspace. It walks the vendor capabilities,
 * negotiates features, sets up split rings in the client's guest memory
 * (src/client/virtq_drv.h), enables MSI-X or INTx with eventfds, and kicks
 * through the notify area. Used by the protocol tests; not part of libumdev.
 * Not thread-safe; one user at a time.
 */
#ifndef UMDEV_CLIENT_VIRTIO_PCI_DRV_H
#define UMDEV_CLIENT_VIRTIO_PCI_DRV_H

#include <stdbool.h>
#include <stdint.h>

#include "client/vfio_user_client.h"
#include "client/virtq_drv.h"
#include "umdev/proto/virtio_pci.h"

#define UMDEV_VPD_MAX_QUEUES 16
#define UMDEV_VPD_MAX_VECTORS (UMDEV_VPD_MAX_QUEUES + 1)

/* Where one capability points. */
struct umdev_vpd_region {
	uint8_t cap; /* config-space offset of the capability, 0: absent */
	uint8_t bar;
	uint32_t offset, length;
};

struct umdev_vpd {
	struct umdev_vfuc *c;
	struct umdev_vpd_region common, notify, isr, device, pcicfg;
	uint32_t notify_mult;
	unsigned msix_cap, msix_vectors; /* from the MSI-X capability */
	uint32_t msix_table_off;
	unsigned msix_bar;
	uint16_t num_queues; /* the device's */
	uint64_t features; /* negotiated */
	/*
	 * Accept VIRTIO_F_RING_PACKED when offered (set after probe, before negotiating);
	 * by default rings stay split, whatever @want says, so tests choose.
	 */
	bool packed;
	int irq_fd[UMDEV_VPD_MAX_VECTORS]; /* MSI-X vector eventfds, or [0] for INTx */
	unsigned nirq;
	struct umdev_vqd q[UMDEV_VPD_MAX_QUEUES];
	bool q_live[UMDEV_VPD_MAX_QUEUES];
	uint32_t notify_at[UMDEV_VPD_MAX_QUEUES]; /* offset in the notify BAR, read at set-up */
};

/**
 * umdev_vpd_probe() - walk the capability list of the function @c is
 * connected to, check every virtio structure is present and inside its BAR,
 * and turn on memory space and bus mastering. Returns 0 or -errno
 * (-ENODEV: not a modern virtio-pci function).
 */
int umdev_vpd_probe(struct umdev_vpd *d, struct umdev_vfuc *c) __attribute__((warn_unused_result));

/** umdev_vpd_fini() - close the eventfds and free the rings' driver state. */
void umdev_vpd_fini(struct umdev_vpd *d);

/** Common configuration access of @len (1, 2, 4) bytes at @off. */
int umdev_vpd_common_read(struct umdev_vpd *d, uint32_t off, uint32_t len, uint64_t *val)
	__attribute__((warn_unused_result));
int umdev_vpd_common_write(struct umdev_vpd *d, uint32_t off, uint32_t len, uint64_t val)
	__attribute__((warn_unused_result));
/** umdev_vpd_common() - read, or 0xdeadbeef when the read fails (for asserts). */
uint64_t umdev_vpd_common(struct umdev_vpd *d, uint32_t off, uint32_t len);

/** umdev_vpd_status() - device_status now. */
uint8_t umdev_vpd_status(struct umdev_vpd *d);

/** umdev_vpd_device_features() - the 64 feature bits the device offers. */
uint64_t umdev_vpd_device_features(struct umdev_vpd *d);

/**
 * umdev_vpd_negotiate() - reset, ACKNOWLEDGE|DRIVER, accept @want & offered,
 * FEATURES_OK. Returns 0, or -EPROTO when the device refused FEATURES_OK.
 */
int umdev_vpd_negotiate(struct umdev_vpd *d, uint64_t want) __attribute__((warn_unused_result));

/**
 * umdev_vpd_enable_msix() - @n eventfds on MSI-X vectors 0..n-1 (SET_IRQS),
 * MSI-X enabled in the capability and every table entry unmasked.
 * umdev_vpd_enable_intx() - one eventfd on INTx instead.
 */
int umdev_vpd_enable_msix(struct umdev_vpd *d, unsigned n) __attribute__((warn_unused_result));
int umdev_vpd_enable_intx(struct umdev_vpd *d) __attribute__((warn_unused_result));

/**
 * umdev_vpd_queue_setup() - lay out queue @idx (@size entries) at @ring_gpa
 * in the client's guest memory, program its registers with @vector and
 * enable it. Returns 0 or -errno.
 */
int umdev_vpd_queue_setup(struct umdev_vpd *d, unsigned idx, uint16_t size, uint64_t ring_gpa,
			  uint16_t vector) __attribute__((warn_unused_result));

/** umdev_vpd_driver_ok() - set DRIVER_OK. */
int umdev_vpd_driver_ok(struct umdev_vpd *d) __attribute__((warn_unused_result));

/**
 * umdev_vpd_kick() - write the queue index to its notify address: for a
 * queue set up here, one posted write to the address read at set-up, as
 * Linux's virtio_pci and QEMU's posted BAR writes make it.
 */
int umdev_vpd_kick(struct umdev_vpd *d, unsigned idx) __attribute__((warn_unused_result));

/** umdev_vpd_wait_irq() - wait up to @timeout_ms for eventfd @slot; the count or 0. */
uint64_t umdev_vpd_wait_irq(struct umdev_vpd *d, unsigned slot, int timeout_ms);

/**
 * umdev_vpd_wait_used() - wait up to @timeout_ms for a used entry on queue
 * @idx, serving the server's DMA commands meanwhile. 1 with *@head and *@len set,
 * 0 on timeout, -errno.
 */
int umdev_vpd_wait_used(struct umdev_vpd *d, unsigned idx, int timeout_ms, uint16_t *head,
			uint32_t *len) __attribute__((warn_unused_result));

#endif
