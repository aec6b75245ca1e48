/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-pci (modern, virtio 1.x) transport: a virtio device
 * (include/umdev/virtio.h) as a whole PCI function (include/umdev/pci.h),
 * served to a VMM by the vfio-user server. See docs/transports/virtio-pci.md.
 *
 * Concepts
 * - The function carries the virtio vendor capabilities (common, notify,
 *   ISR, device and PCI-config access) pointing into one 64-bit BAR, plus
 *   MSI-X (one vector for config changes, one per queue) and INTx with the
 *   ISR register's read-to-clear semantics.
 * - Ring addresses are IOVAs of the client's DMA_MAP space
 *   (VIRTIO_F_ACCESS_PLATFORM is offered); queues run only while bus
 *   mastering is on and stop while a DMA window they may use is unmapped.
 * - Notifications: trapped notify writes kick the queue's eventfd, and the
 *   queue runner polls adaptively after each burst (vdev->poll_us). With
 *   vdev->poll the notify area is shared memory the client may map and never
 *   traps: queues busy-poll their rings.
 * - Threads: everything here is for the control thread; interrupts are
 *   raised from the queues' loops through the irq layer.
 */
#ifndef UMDEV_VIRTIO_PCI_H
#define UMDEV_VIRTIO_PCI_H

#include "umdev/pci.h"
#include "umdev/virtio.h"

typedef struct umdev_vpci umdev_vpci;

/* virtio-pci's PCI identity. */
#define UMDEV_VPCI_VENDOR 0x1af4
#define UMDEV_VPCI_DEVICE_BASE 0x1040 /* + VIRTIO_ID_* */

/**
 * umdev_vpci_new() - wrap @vdev (borrowed; must outlive the result) in a PCI
 * function. Caller owns the result; serve umdev_vpci_pci() with a vfio-user
 * server, free the server first, then umdev_vpci_free().
 * @err: -EINVAL (too many queues), -ENOMEM, or an eventfd error.
 */
umdev_vpci *umdev_vpci_new(struct umdev_virtio_dev *vdev, int *err) UMDEV_WUR;

/** umdev_vpci_free() - stop every queue (waiting for in-flight I/O) and free. NULL is allowed. */
void umdev_vpci_free(umdev_vpci *vp);

/**
 * umdev_vpci_serve_remote() - let queues use buffers in memory the client
 * shares only through DMA messages (vfio-user windows without an fd, where
 * SeaBIOS keeps its disk buffers), copying them on control loop @ctl (the
 * one serving the function). Before the client connects. -errno on failure.
 */
int umdev_vpci_serve_remote(umdev_vpci *vp, umdev_loop *ctl) UMDEV_WUR;

/** umdev_vpci_pci() - the PCI function (lives as long as @vp). */
umdev_pci_dev *umdev_vpci_pci(umdev_vpci *vp);

/**
 * umdev_vpci_config_changed() - the device changed its config space: bump
 * config_generation and raise the configuration-change interrupt.
 */
void umdev_vpci_config_changed(umdev_vpci *vp);

/* Register handler entry points, for the fuzz target and unit tests. */
int umdev_vpci_common_access(umdev_vpci *vp, uint64_t off, void *buf, size_t len, bool write)
	UMDEV_WUR;

#endif
