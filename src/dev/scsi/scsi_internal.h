/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private state of the SCSI target layer, shared by its command families:
 * target.c (addressing, LUs, sense, unit attentions, small commands),
 * inquiry.c (INQUIRY, VPD, REPORT SUPPORTED OPERATION CODES), mode.c (MODE
 * SENSE/SELECT) and rw.c (capacity, reads, writes and the other media
 * commands).
 */
#ifndef UMDEV_DEV_SCSI_INTERNAL_H
#define UMDEV_DEV_SCSI_INTERNAL_H

#include <stdatomic.h>

#include "umdev/proto/scsi.h"
#include "umdev/scsi.h"

/* Pending unit attentions, highest priority first. */
#define UA_POWER_ON (1u << 0)
#define UA_NEXUS_LOSS (1u << 1)
#define UA_LUNS_CHANGED (1u << 2)
#define UA_MODE_CHANGED (1u << 3)
#define UA_CAPACITY_CHANGED (1u << 4)

/* Limits we advertise in the Block Limits VPD page and enforce. */
#define SCSI_MAX_XFER_BLOCKS (1u << 16) /* per READ/WRITE */
#define SCSI_MAX_UNMAP_BLOCKS (1u << 22)
#define SCSI_MAX_UNMAP_DESC 64u
#define SCSI_MAX_WRITE_SAME_BLOCKS (1u << 22)
#define SCSI_MAX_VERIFY_BYTES (8u << 20) /* BYTCHK compares go through a bounce buffer */

struct umdev_scsi_lu {
	umdev_scsi_target *t;
	unsigned slot;
	uint8_t target;
	uint16_t lun;
	umdev_bdev *bdev;
	struct umdev_bdev_info info;
	uint32_t bs; /* logical block size */
	_Atomic uint64_t nblocks; /* changes when the backend is resized: read with scsi_lu_nblocks() */
	bool readonly;
	char serial[33];
	uint8_t naa[16]; /* NAA-6 designator for VPD 0x83 */
	atomic_uint inflight;
	atomic_uint ua; /* UA_* bits */
	atomic_bool wce; /* caching page: volatile write cache enabled */
	atomic_bool d_sense; /* control page: descriptor format sense */
	atomic_bool stopped; /* START STOP UNIT with START=0 */
};

struct umdev_scsi_target {
	char name[32];
	/* Slots ever used: lookups scan only these (it never shrinks). */
	atomic_uint nslots;
	_Atomic(umdev_scsi_lu *) slots[UMDEV_SCSI_MAX_LUS];
};

struct chan_ent {
	umdev_scsi_lu *lu; /* whose backend queue bq is */
	umdev_bdev_queue *bq;
};

struct umdev_scsi_chan {
	umdev_scsi_target *t;
	umdev_loop *loop;
	struct umdev_scsi_cmd *head, *tail; /* in flight, oldest first */
	unsigned inflight;
	struct chan_ent ent[UMDEV_SCSI_MAX_LUS];
};

static inline uint64_t scsi_lu_nblocks(const umdev_scsi_lu *lu)
{
	return atomic_load_explicit(&lu->nblocks, memory_order_relaxed);
}

/* ---- target.c: answers ---- */
void scsi_complete(struct umdev_scsi_cmd *cmd);
/* CHECK CONDITION with @sk and @asc (ASC << 8 | ASCQ), then complete. */
void scsi_fail(struct umdev_scsi_cmd *cmd, uint8_t sk, uint16_t asc);
/* ILLEGAL REQUEST, INVALID FIELD IN CDB pointing at byte @byte (bit @bit, -1: none). */
void scsi_fail_cdb(struct umdev_scsi_cmd *cmd, unsigned byte, int bit);
/* ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST at parameter byte @byte. */
void scsi_fail_param(struct umdev_scsi_cmd *cmd, unsigned byte);
/* The CDB wants more data than the buffers hold. */
void scsi_fail_overrun(struct umdev_scsi_cmd *cmd);
void scsi_good(struct umdev_scsi_cmd *cmd);
/* GOOD with @len bytes of @buf as data-in, cut to @alloc and to the buffers. */
void scsi_reply(struct umdev_scsi_cmd *cmd, const void *buf, size_t len, size_t alloc);
/* Build sense into @out (UMDEV_SCSI_SENSE_MAX bytes); returns its length. */
uint32_t scsi_build_sense(uint8_t *out, bool desc, uint8_t sk, uint16_t asc);
/*
 * Fetch @len bytes of parameter data (data-out). Returns false (and has
 * completed the command with OVERRUN) when the buffers hold less.
 */
bool scsi_get_params(struct umdev_scsi_cmd *cmd, void *buf, size_t len);
/* Total bytes in the data-in / data-out buffers. */
uint64_t scsi_in_len(const struct umdev_scsi_cmd *cmd);
uint64_t scsi_out_len(const struct umdev_scsi_cmd *cmd);
/* The backend queue of @cmd's LU on @cmd's channel, created on first use. */
umdev_bdev_queue *scsi_bq(struct umdev_scsi_cmd *cmd, int *err);
/* Submit cmd->p.io; on a refused submit, complete with a hardware error. */
void scsi_io_submit(struct umdev_scsi_cmd *cmd);

/* ---- inquiry.c ---- */
void scsi_inquiry(struct umdev_scsi_cmd *cmd, const umdev_scsi_lu *lu);
void scsi_report_opcodes(struct umdev_scsi_cmd *cmd);
void scsi_lu_make_ids(umdev_scsi_lu *lu, const char *tname);

/* ---- mode.c ---- */
void scsi_mode_sense(struct umdev_scsi_cmd *cmd);
void scsi_mode_select(struct umdev_scsi_cmd *cmd);
void scsi_mode_defaults(umdev_scsi_lu *lu);

/* ---- rw.c ---- */
void scsi_read_capacity(struct umdev_scsi_cmd *cmd);
void scsi_rw(struct umdev_scsi_cmd *cmd);
void scsi_sync_cache(struct umdev_scsi_cmd *cmd);
void scsi_verify(struct umdev_scsi_cmd *cmd);
void scsi_write_same(struct umdev_scsi_cmd *cmd);
void scsi_unmap(struct umdev_scsi_cmd *cmd);
void scsi_start_stop(struct umdev_scsi_cmd *cmd);

#endif
