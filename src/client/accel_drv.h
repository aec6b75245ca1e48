/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small guest driver for the accel virtual device over our vfio-user
 * client (tests and the benchmark): maps the hot page and the ring through
 * the sparse mmap areas, submits descriptors with plain stores (or the
 * trapped portal), waits on completion records and MSI-X eventfds.
 * Single-threaded; one per process. Not part of libumdev.
 */
#ifndef UMDEV_CLIENT_ACCEL_DRV_H
#define UMDEV_CLIENT_ACCEL_DRV_H

#include <stdbool.h>
#include <stdint.h>

#include "client/vfio_user_client.h"
#include "umdev/proto/accel.h"

#define ACCEL_DRV_MAX_VEC 64
#define ACCEL_DRV_IOVA 0x100000ull

struct accel_drv {
	struct umdev_vfuc c;
	uint8_t *bar; /* BAR0 mapping (only the sparse areas are backed) */
	uint8_t *mem; /* guest memory, @mem_size bytes at ACCEL_DRV_IOVA */
	uint64_t mem_size, brk;
	uint32_t wq_size, pasid, nvec, tail;
	int efd[ACCEL_DRV_MAX_VEC];
	unsigned kicks; /* trapped KICK writes done */
	bool open; /* between accel_drv_open() and accel_drv_close() */
};

/** accel_drv_open() - connect, map @mem_size of guest memory, map BAR0's hot areas. */
int accel_drv_open(struct accel_drv *d, const char *sock, uint64_t mem_size)
	__attribute__((warn_unused_result));
/** accel_drv_close() - a no-op on a closed (or zeroed) driver. */
void accel_drv_close(struct accel_drv *d);

/** accel_drv_msix() - eventfds for vectors [@start, +@n) and MSI-X on. Returns SET_IRQS's result. */
int accel_drv_msix(struct accel_drv *d, unsigned start, unsigned n)
	__attribute__((warn_unused_result));
/** accel_drv_msix_off() - disable the MSI-X index (frees the IMS entries). */
int accel_drv_msix_off(struct accel_drv *d) __attribute__((warn_unused_result));
/** accel_drv_mask() - SET_IRQS MASK (@mask) or UNMASK of vector @v. */
int accel_drv_mask(struct accel_drv *d, unsigned v, bool mask) __attribute__((warn_unused_result));

int accel_drv_reg_read(struct accel_drv *d, uint32_t off, uint32_t *val)
	__attribute__((warn_unused_result));
int accel_drv_reg_write(struct accel_drv *d, uint32_t off, uint32_t val)
	__attribute__((warn_unused_result));
/** accel_drv_cmd() - write ACCEL_REG_CMD (ENABLE, DISABLE, RESET). */
int accel_drv_cmd(struct accel_drv *d, uint32_t cmd) __attribute__((warn_unused_result));
/** accel_drv_perm() - write vector @v's permission-table entry. */
int accel_drv_perm(struct accel_drv *d, unsigned v, bool en, uint32_t pasid)
	__attribute__((warn_unused_result));

/** accel_drv_alloc() - zeroed guest memory; returns its IOVA (asserts in tests if full: 0). */
uint64_t accel_drv_alloc(struct accel_drv *d, uint64_t size, uint64_t align);
void *accel_drv_ptr(struct accel_drv *d, uint64_t iova);

/**
 * accel_drv_submit() - put @desc in the mapped ring, waiting for room up to
 * @timeout_ms; kicks the engine if it sleeps. 0 or -ETIMEDOUT.
 */
int accel_drv_submit(struct accel_drv *d, const struct accel_desc *desc, int timeout_ms)
	__attribute__((warn_unused_result));
/** accel_drv_submit_portal() - @n descriptors in one trapped portal write. */
int accel_drv_submit_portal(struct accel_drv *d, const struct accel_desc *desc, unsigned n)
	__attribute__((warn_unused_result));
/** accel_drv_head() - descriptors the engine has taken so far. */
uint32_t accel_drv_head(struct accel_drv *d);

/** accel_drv_wait() - wait for the record at @comp_iova; its status, or -ETIMEDOUT. */
int accel_drv_wait(struct accel_drv *d, uint64_t comp_iova, int timeout_ms);
/**
 * accel_drv_irqs() - interrupts on vector @v since the last call, waiting up
 * to @timeout_ms for at least @want (0: just read what is there).
 */
uint64_t accel_drv_irqs(struct accel_drv *d, unsigned v, uint64_t want, int timeout_ms);

/** accel_drv_copy_desc() - a COPY descriptor with a record and vector @vec (0: no irq). */
struct accel_desc accel_drv_copy_desc(struct accel_drv *d, uint64_t src, uint64_t dst,
				      uint32_t size, uint64_t comp, unsigned vec);

#endif
