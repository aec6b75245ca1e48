/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * accel: a memory accelerator shared by many VMs (docs/devices/accel.md).
 *
 * Concepts
 * - The parent (umdev_accel) owns the shared hardware-like resources: engine
 *   workers (one per data-plane loop it was given), an Interrupt Message
 *   Store (include/umdev/irq.h) and a PASID registry (include/umdev/mem.h).
 *   Parents are found by name (umdev_accel_find), as mdev parents are.
 * - A virtual device (umdev_accel_vdev) is one PCI function with its own
 *   work queue (size, priority), PASID and MSI-X vectors. Its vectors are
 *   backed by IMS entries while enabled; its PASID's address space is the
 *   DMA space its client gave the function.
 * - The device sees only the PCI model and the irq/mem layers; a transport
 *   (vfio-user today, bound in src/ctl/type_accel_vdev.c) serves the
 *   function returned by umdev_accel_vdev_pci().
 *
 * Threads: everything here is for the control thread; engines run on the
 * data-plane loops and are reached with loop messages.
 */
#ifndef UMDEV_DEV_ACCEL_H
#define UMDEV_DEV_ACCEL_H

#include <stdint.h>

#include "umdev/loop.h"
#include "umdev/pci.h"
#include "umdev/proto/accel.h"

typedef struct umdev_accel umdev_accel;
typedef struct umdev_accel_vdev umdev_accel_vdev;

#define ACCEL_MAX_VECTORS 64
#define ACCEL_DEFAULT_VECTORS 9 /* error vector + 8 completion vectors */

struct umdev_accel_config {
	const char *name; /* copied; unique among parents */
	umdev_loop **loops; /* data-plane loops (borrowed, running, outlive the parent) */
	unsigned num_loops;
	unsigned engines; /* 1..num_loops */
	unsigned ims_entries; /* 1..UMDEV_IMS_MAX_ENTRIES */
	unsigned max_vdevs;
};

/**
 * umdev_accel_new() - a parent with its engines started, listed by name.
 * @err: -EINVAL (bad config), -EEXIST (name taken), -ENOMEM, a loop error.
 * Release with umdev_accel_put().
 */
umdev_accel *umdev_accel_new(const struct umdev_accel_config *cfg, int *err)
	__attribute__((warn_unused_result));

/**
 * umdev_accel_put() - the creator's reference: unlists the parent (no new
 * virtual devices); it goes once its last virtual device is freed.
 */
void umdev_accel_put(umdev_accel *a);

/** umdev_accel_find() - a listed parent by name, or NULL. */
umdev_accel *umdev_accel_find(const char *name);

/** umdev_accel_available() - how many more virtual devices @a may make (all parents if NULL). */
unsigned umdev_accel_available(const umdev_accel *a);

struct umdev_accel_info {
	unsigned engines, vdevs, max_vdevs;
	unsigned ims_entries, ims_free;
	unsigned pasids;
};
void umdev_accel_info(umdev_accel *a, struct umdev_accel_info *out);

struct umdev_accel_vdev_config {
	const char *name; /* copied */
	unsigned wq_size; /* power of two, 1..ACCEL_RING_MAX_BYTES/64 */
	unsigned priority; /* 1..16: descriptors per engine round */
	unsigned vectors; /* 2..ACCEL_MAX_VECTORS */
};

/**
 * umdev_accel_vdev_new() - a virtual device of @a: a PASID, a work queue on
 * the least loaded engine, a PCI function. @err: -EINVAL, -ENOSPC (the
 * parent's max_vdevs or its PASIDs are used up), -ENOMEM.
 */
umdev_accel_vdev *umdev_accel_vdev_new(umdev_accel *a, const struct umdev_accel_vdev_config *cfg,
				       int *err) __attribute__((warn_unused_result));

/**
 * umdev_accel_vdev_free() - the transport must be gone. Drains and drops
 * only this device's work; returns its PASID and IMS entries.
 */
void umdev_accel_vdev_free(umdev_accel_vdev *v);

umdev_pci_dev *umdev_accel_vdev_pci(umdev_accel_vdev *v);
umdev_accel *umdev_accel_vdev_parent(umdev_accel_vdev *v);

struct umdev_accel_vdev_stats {
	uint64_t descs; /* taken from the work queue */
	uint64_t ok, failed; /* completion status success / error */
	uint64_t bytes; /* processed by successful descriptors */
	uint64_t irqs; /* completion interrupts raised */
	uint64_t irq_refused; /* withheld: PASID not allowed by the vector's entry */
	uint64_t swerr; /* software errors reported (error vector) */
	uint64_t dropped; /* descriptors dropped without memory (client gone, reset) */
	uint64_t portal_writes; /* descriptors submitted through the trapped portal */
	uint32_t pasid, wq_size, priority, ims_used;
};
void umdev_accel_vdev_stats(umdev_accel_vdev *v, struct umdev_accel_vdev_stats *out);

/**
 * accel_exec() - run one descriptor in @m (the descriptor PASID's map) and
 * fill @c (except status). Returns the ACCEL_ST_* status. Any thread.
 */
struct umdev_as_map;
int accel_exec(const struct accel_desc *d, struct umdev_as_map *m, struct accel_comp *c);

/** accel_crc32c() - CRC32C of @buf continuing @crc (0 to start). */
uint32_t accel_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
