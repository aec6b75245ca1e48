/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The accel virtual device as a guest driver sees it (docs/devices/accel.md):
 * BAR0 layout, registers, the 64-byte descriptor and the 32-byte completion
 * record. All little-endian. Modelled on the shape of Intel DSA (a work
 * queue portal, completion records, a software error register and an MSI-X
 * permission table), not on its encodings.
 */
#ifndef UMDEV_PROTO_ACCEL_H
#define UMDEV_PROTO_ACCEL_H

#include <stdint.h>

#define ACCEL_VENDOR_ID 0x1b36 /* virtual devices' vendor, as pci-sample */
#define ACCEL_DEVICE_ID 0x00f1
#define ACCEL_CLASS 0x088000 /* system peripheral, other */

/* BAR0 (32 KiB, 64-bit). */
#define ACCEL_BAR0_SIZE 0x8000
#define ACCEL_REGS_OFF 0x0000 /* trapped: registers + MSI-X permission table */
#define ACCEL_HOT_OFF 0x1000 /* mapped: tail, head, engine-idle flag */
#define ACCEL_RING_OFF 0x2000 /* mapped: the work queue, wq_size descriptors */
#define ACCEL_RING_MAX_BYTES 0x4000
#define ACCEL_PORTAL_OFF 0x6000 /* trapped: writes of 64*k bytes submit k descriptors */
#define ACCEL_PAGE 0x1000

/* Registers (32-bit, in the trapped page). */
#define ACCEL_REG_CAP 0x000 /* RO: 1 << opcode for each supported opcode */
#define ACCEL_REG_VERSION 0x004 /* RO: ACCEL_VERSION */
#define ACCEL_REG_WQ_SIZE 0x008 /* RO: descriptors in the ring (power of two) */
#define ACCEL_REG_WQ_PRIO 0x00c /* RO: the work queue's priority (its engine share) */
#define ACCEL_REG_PASID 0x010 /* RO: the PASID of this device's address space */
#define ACCEL_REG_VECTORS 0x014 /* RO: MSI-X vectors (0: errors, 1..: completions) */
#define ACCEL_REG_MAX_XFER 0x018 /* RO: largest transfer size of one descriptor */
#define ACCEL_REG_CMD 0x020 /* WO: ACCEL_CMD_* */
#define ACCEL_REG_STATUS 0x024 /* RO: ACCEL_STS_* */
#define ACCEL_REG_KICK 0x028 /* WO: wake an idle engine (see ACCEL_HOT_IDLE) */
#define ACCEL_REG_SWERR 0x030 /* RW1C: ACCEL_SWERR_* in bits 0..7, code in 8..15; clearing VALID clears all */
#define ACCEL_REG_SWERR_INDEX 0x034 /* RO: ring index of the descriptor (or ~0) */
#define ACCEL_REG_SWERR_PASID 0x038 /* RO: the descriptor's PASID */
#define ACCEL_REG_SWERR_ADDR_LO 0x03c /* RO: the address at fault */
#define ACCEL_REG_SWERR_ADDR_HI 0x040
#define ACCEL_REG_PERM 0x800 /* MSI-X permission table: one u32 per vector, stride 8 */
#define ACCEL_PERM_STRIDE 8

#define ACCEL_VERSION 0x00010000u

#define ACCEL_CMD_ENABLE 1 /* start taking descriptors */
#define ACCEL_CMD_DISABLE 2 /* stop; pending descriptors stay in the ring */
#define ACCEL_CMD_RESET 3 /* disable, drop pending work, head = tail = 0, clear SWERR */

#define ACCEL_STS_ENABLED 0x1

#define ACCEL_SWERR_VALID 0x1
#define ACCEL_SWERR_OVERFLOW 0x2 /* another error happened while VALID was set */

/* SWERR codes (bits 8..15). */
#define ACCEL_ERR_PASID 1 /* descriptor names a PASID that is not this device's */
#define ACCEL_ERR_COMP_ADDR 2 /* the completion record address is not writable */
#define ACCEL_ERR_IRQ_PASID 3 /* completion PASID not allowed by its vector's entry */
#define ACCEL_ERR_VECTOR 4 /* completion vector 0 or out of range */
#define ACCEL_ERR_RING 5 /* tail moved more than wq_size past head */

/* Permission table entry: PASID check enable and the PASID allowed. */
#define ACCEL_PERM_PASID_EN 0x1u
#define ACCEL_PERM_PASID_SHIFT 12

/* Hot page (mapped; plain memory the engine polls). Separate cache lines. */
#define ACCEL_HOT_TAIL 0x00 /* u32, driver writes: descriptors submitted */
#define ACCEL_HOT_HEAD 0x40 /* u32, device writes: descriptors taken */
#define ACCEL_HOT_IDLE 0x80 /* u32, device writes: 1 = engine asleep, write KICK */

/* Opcodes. */
#define ACCEL_OP_NOP 0
#define ACCEL_OP_COPY 1 /* src -> dst */
#define ACCEL_OP_FILL 2 /* pattern (8 bytes, repeated) -> dst */
#define ACCEL_OP_COMPARE 3 /* src vs src2 */
#define ACCEL_OP_COMPARE_PATTERN 4 /* src vs pattern */
#define ACCEL_OP_CRC32C 5 /* crc32c(seed, src) */
#define ACCEL_OP_DUALCAST 6 /* src -> dst and dst2 */
#define ACCEL_OP_MAX 6

/* Descriptor flags. */
#define ACCEL_F_COMP 0x01 /* write a completion record at comp_addr */
#define ACCEL_F_IRQ 0x02 /* raise MSI-X vector @vector on completion */

#define ACCEL_MAX_XFER (1u << 20)

struct accel_desc {
	uint32_t pasid;
	uint8_t opcode;
	uint8_t flags;
	uint16_t vector;
	uint64_t comp_addr; /* 32-byte aligned */
	uint64_t src;
	uint64_t dst;
	uint32_t size;
	uint32_t crc_seed;
	uint64_t src2; /* COMPARE: second source; DUALCAST: second destination */
	uint64_t pattern;
	uint64_t cookie; /* echoed in the completion record */
};

/* Completion status. 0: not written yet (the driver zeroes it). */
#define ACCEL_ST_SUCCESS 1
#define ACCEL_ST_BAD_OPCODE 0x10
#define ACCEL_ST_BAD_SIZE 0x11
#define ACCEL_ST_BAD_ADDR 0x12 /* an address outside the PASID's address space */
#define ACCEL_ST_BAD_FLAGS 0x13

struct accel_comp {
	uint8_t status; /* written last, with release order */
	uint8_t result; /* COMPARE*: 0 equal, 1 different */
	uint16_t rsvd;
	uint32_t bytes; /* bytes processed; COMPARE*: offset of the first difference */
	uint64_t value; /* CRC32C result */
	uint64_t cookie;
	uint64_t fault_addr; /* BAD_ADDR: the address at fault */
};

_Static_assert(sizeof(struct accel_desc) == 64, "descriptor is 64 bytes");
_Static_assert(sizeof(struct accel_comp) == 32, "completion record is 32 bytes");

#endif
