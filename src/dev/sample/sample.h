/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pci-sample: a small PCI device on the vfio-user transport, used as a test
 * fixture and as the worked example in docs/devices/pci-sample.md.
 *
 * BAR0 (16 KiB, 64-bit): registers at 0x0000 (trapped), a shared data page
 * at 0x1000 (mmappable), a shared doorbell page at 0x2000 (mmappable,
 * polled by no one: it shows a hot register that never traps).
 * BAR2 (4 KiB): MSI-X table at 0, PBA at 0x800 (4 vectors).
 * Also MSI (1 vector), INTx, PM and PCIe capabilities.
 */
#ifndef UMDEV_DEV_SAMPLE_H
#define UMDEV_DEV_SAMPLE_H

#include <stdint.h>

#include "umdev/pci.h"

#define SAMPLE_VENDOR_ID 0x1b36 /* virtual devices' vendor */
#define SAMPLE_DEVICE_ID 0x00f0
#define SAMPLE_CLASS 0xff0000 /* unassigned class */

/* BAR0 register offsets (32-bit registers). */
#define SAMPLE_REG_ID 0x00 /* RO: SAMPLE_ID_VALUE */
#define SAMPLE_REG_SCRATCH 0x04 /* RW */
#define SAMPLE_REG_DMA_LO 0x08 /* RW: guest address, low half */
#define SAMPLE_REG_DMA_HI 0x0c /* RW: high half */
#define SAMPLE_REG_DMA_LEN 0x10 /* RW: bytes, at most SAMPLE_DATA_SIZE */
#define SAMPLE_REG_CMD 0x14 /* WO: SAMPLE_CMD_* starts a command */
#define SAMPLE_REG_STATUS 0x18 /* RW1C: SAMPLE_STS_* */
#define SAMPLE_REG_VECTOR 0x1c /* RW: interrupt vector raised on completion */
#define SAMPLE_REG_DONE 0x20 /* RO: commands completed */
#define SAMPLE_REGS_SIZE 0x1000

#define SAMPLE_ID_VALUE 0x756d6476u /* "vdmu" */

#define SAMPLE_CMD_TO_GUEST 1 /* copy the data page to guest memory */
#define SAMPLE_CMD_FROM_GUEST 2 /* copy guest memory to the data page */
#define SAMPLE_CMD_IRQ 3 /* just raise the interrupt */

#define SAMPLE_STS_DONE 0x1
#define SAMPLE_STS_ERROR 0x2

#define SAMPLE_DATA_OFF 0x1000
#define SAMPLE_DATA_SIZE 0x1000
#define SAMPLE_DOORBELL_OFF 0x2000
#define SAMPLE_BAR0_SIZE 0x4000
#define SAMPLE_MSIX_BAR 2
#define SAMPLE_MSIX_VECTORS 4

typedef struct umdev_sample umdev_sample;

/** umdev_sample_new() - build the device; @name is copied. Free with umdev_sample_free(). */
umdev_sample *umdev_sample_new(const char *name, int *err) __attribute__((warn_unused_result));
void umdev_sample_free(umdev_sample *s);
umdev_pci_dev *umdev_sample_pci(umdev_sample *s);

#endif
