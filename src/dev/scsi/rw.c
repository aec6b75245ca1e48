/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Media commands: READ CAPACITY, READ/WRITE(6/10/12/16), SYNCHRONIZE CACHE,
 * VERIFY, WRITE SAME, UNMAP and START STOP UNIT. Every LBA range is checked
 * against the capacity (overflow-safe) and every transfer against the
 * buffers before the backend sees it.
 */
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"
#include "util/iov.h"

#define WS_CHUNK_BYTES (1u << 20) /* WRITE SAME writes its pattern this much at a time */

static struct umdev_scsi_cmd *cmd_of(struct umdev_bdev_io *io)
{
	return (struct umdev_scsi_cmd *)((char *)io - offsetof(struct umdev_scsi_cmd, p.io));
}

static bool range_ok(const umdev_scsi_lu *lu, uint64_t lba, uint64_t n)
{
	uint64_t nblocks = scsi_lu_nblocks(lu);

	return lba <= nblocks && n <= nblocks - lba;
}

static unsigned ilog2(uint32_t v)
{
	unsigned n = 0;

	while (v >>= 1)
		n++;
	return n;
}

void scsi_read_capacity(struct umdev_scsi_cmd *cmd)
{
	const umdev_scsi_lu *lu = cmd->p.lu;
	uint64_t nblocks = scsi_lu_nblocks(lu), last = nblocks ? nblocks - 1 : 0;
	uint8_t b[32];

	memset(b, 0, sizeof(b));
	if (cmd->cdb[0] == SCSI_READ_CAPACITY_10) {
		/* 0xffffffff tells the initiator to use READ CAPACITY(16). */
		umdev_scsi_put32(b, last > 0xffffffffull ? 0xffffffff : (uint32_t)last);
		umdev_scsi_put32(b + 4, lu->bs);
		scsi_reply(cmd, b, 8, 8);
		return;
	}
	umdev_scsi_put64(b, last);
	umdev_scsi_put32(b + 8, lu->bs);
	if (lu->info.physical_block_size > lu->bs)
		b[13] = ilog2(lu->info.physical_block_size / lu->bs) & 0x0f;
	if (lu->info.can_discard && !lu->readonly)
		b[14] = 0x80; /* LBPME */
	scsi_reply(cmd, b, sizeof(b), umdev_scsi_get32(cmd->cdb + 10));
}

/* An aborted multi-stage command stops between stages. */
static void finish_aborted(struct umdev_scsi_cmd *cmd)
{
	cmd->status = SCSI_STATUS_TASK_ABORTED;
	scsi_complete(cmd);
}

static void rw_done(struct umdev_bdev_io *io, int res)
{
	struct umdev_scsi_cmd *cmd = cmd_of(io);
	bool write = io->op == UMDEV_BDEV_WRITE;

	if (res < 0) {
		scsi_fail(cmd, SCSI_SK_MEDIUM_ERROR, write ? SCSI_ASC_WRITE_ERROR
							   : SCSI_ASC_READ_ERROR);
		return;
	}
	if (write)
		cmd->out_xfer = io->len;
	else
		cmd->in_xfer = io->len;
	scsi_good(cmd);
}

static void start_io(struct umdev_scsi_cmd *cmd, enum umdev_bdev_op op, uint64_t off, uint64_t len,
		     const struct iovec *iov, int cnt, bool fua,
		     void (*done)(struct umdev_bdev_io *, int))
{
	cmd->p.io = (struct umdev_bdev_io){
		.op = op, .offset = off, .len = len, .iov = iov, .iovcnt = cnt, .fua = fua,
		.done = done,
	};
	scsi_io_submit(cmd);
}

void scsi_rw(struct umdev_scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	const umdev_scsi_lu *lu = cmd->p.lu;
	uint64_t lba, n, bytes;
	bool write = false, fua = false;
	int cnt;

	switch (cdb[0]) {
	case SCSI_WRITE_6:
		write = true;
		/* fall through */
	case SCSI_READ_6:
		lba = (uint64_t)(cdb[1] & 0x1f) << 16 | umdev_scsi_get16(cdb + 2);
		n = cdb[4] ? cdb[4] : 256;
		break;
	case SCSI_WRITE_10:
		write = true;
		/* fall through */
	case SCSI_READ_10:
		lba = umdev_scsi_get32(cdb + 2);
		n = umdev_scsi_get16(cdb + 7);
		break;
	case SCSI_WRITE_12:
		write = true;
		/* fall through */
	case SCSI_READ_12:
		lba = umdev_scsi_get32(cdb + 2);
		n = umdev_scsi_get32(cdb + 6);
		break;
	case SCSI_WRITE_16:
		write = true;
		/* fall through */
	default:
		lba = umdev_scsi_get64(cdb + 2);
		n = umdev_scsi_get32(cdb + 10);
		break;
	}
	if (cdb[0] != SCSI_READ_6 && cdb[0] != SCSI_WRITE_6) {
		if (cdb[1] & 0xe0) { /* RDPROTECT/WRPROTECT: no protection information */
			scsi_fail_cdb(cmd, 1, 7);
			return;
		}
		fua = cdb[1] & 0x08;
	}
	if (write && lu->readonly) {
		scsi_fail(cmd, SCSI_SK_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return;
	}
	if (!range_ok(lu, lba, n)) {
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return;
	}
	if (n == 0) {
		scsi_good(cmd);
		return;
	}
	if (n > SCSI_MAX_XFER_BLOCKS) {
		scsi_fail_cdb(cmd, cdb[0] == SCSI_READ_16 || cdb[0] == SCSI_WRITE_16 ? 10 : 6, -1);
		return;
	}
	bytes = n * lu->bs;
	if (bytes > (write ? scsi_out_len(cmd) : scsi_in_len(cmd))) {
		scsi_fail_overrun(cmd);
		return;
	}
	cnt = write ? umdev_iov_slice(cmd->out_iov, cmd->out_cnt, 0, bytes, cmd->scratch,
				      cmd->scratch_max)
		    : umdev_iov_slice(cmd->in_iov, cmd->in_cnt, 0, bytes, cmd->scratch,
				      cmd->scratch_max);
	if (cnt < 0) {
		scsi_fail(cmd, SCSI_SK_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	/* With the write cache off, every write is write-through. */
	fua = write && (fua || !atomic_load(&lu->wce));
	start_io(cmd, write ? UMDEV_BDEV_WRITE : UMDEV_BDEV_READ, lba * lu->bs, bytes,
		 cmd->scratch, cnt, fua, rw_done);
}

static void flush_done(struct umdev_bdev_io *io, int res)
{
	struct umdev_scsi_cmd *cmd = cmd_of(io);

	if (res < 0)
		scsi_fail(cmd, SCSI_SK_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
	else
		scsi_good(cmd);
}

void scsi_sync_cache(struct umdev_scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool sixteen = cdb[0] == SCSI_SYNCHRONIZE_CACHE_16;
	uint64_t lba = sixteen ? umdev_scsi_get64(cdb + 2) : umdev_scsi_get32(cdb + 2);
	uint64_t n = sixteen ? umdev_scsi_get32(cdb + 10) : umdev_scsi_get16(cdb + 7);

	/* n == 0 means "to the end"; either way the whole cache is flushed. */
	if (!range_ok(cmd->p.lu, lba, n)) {
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return;
	}
	start_io(cmd, UMDEV_BDEV_FLUSH, 0, 0, NULL, 0, false, flush_done);
}

/* ---- VERIFY ---- */

static void verify_done(struct umdev_bdev_io *io, int res)
{
	struct umdev_scsi_cmd *cmd = cmd_of(io);
	const umdev_scsi_lu *lu = cmd->p.lu;
	uint64_t bytes = cmd->p.nblocks * lu->bs;
	uint8_t *medium = cmd->p.bounce, *want = cmd->p.bounce + bytes;

	if (res < 0) {
		scsi_fail(cmd, SCSI_SK_MEDIUM_ERROR, SCSI_ASC_READ_ERROR);
		return;
	}
	for (uint64_t i = 0; i < cmd->p.nblocks; i++) {
		/* BYTCHK 3 sent one block to compare every block against. */
		const uint8_t *w = cmd->p.stage == 3 ? want : want + i * lu->bs;

		if (memcmp(medium + i * lu->bs, w, lu->bs)) {
			scsi_fail(cmd, SCSI_SK_MISCOMPARE, SCSI_ASC_MISCOMPARE_VERIFY);
			return;
		}
	}
	scsi_good(cmd);
}

void scsi_verify(struct umdev_scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	const umdev_scsi_lu *lu = cmd->p.lu;
	bool sixteen = cdb[0] == SCSI_VERIFY_16;
	uint64_t lba = sixteen ? umdev_scsi_get64(cdb + 2) : umdev_scsi_get32(cdb + 2);
	uint64_t n = sixteen ? umdev_scsi_get32(cdb + 10) : umdev_scsi_get16(cdb + 7);
	unsigned bytchk = (cdb[1] >> 1) & 3;
	uint64_t bytes, want_len;

	if (cdb[1] & 0xe0) {
		scsi_fail_cdb(cmd, 1, 7);
		return;
	}
	if (bytchk == 2) {
		scsi_fail_cdb(cmd, 1, 2);
		return;
	}
	if (!range_ok(lu, lba, n)) {
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return;
	}
	/* BYTCHK 0: the medium check is the backend's business; nothing to compare. */
	if (bytchk == 0 || n == 0) {
		scsi_good(cmd);
		return;
	}
	bytes = n * lu->bs;
	if (bytes > SCSI_MAX_VERIFY_BYTES) {
		scsi_fail_cdb(cmd, sixteen ? 10 : 7, -1);
		return;
	}
	want_len = bytchk == 3 ? lu->bs : bytes;
	if (scsi_out_len(cmd) < want_len) {
		scsi_fail_overrun(cmd);
		return;
	}
	cmd->p.bounce = malloc(bytes + want_len);
	if (!cmd->p.bounce) {
		scsi_fail(cmd, SCSI_SK_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	cmd->p.bounce_len = bytes + want_len;
	cmd->out_xfer = umdev_iov_to_buf(cmd->out_iov, cmd->out_cnt, 0, cmd->p.bounce + bytes,
					 want_len);
	cmd->p.nblocks = n;
	cmd->p.stage = bytchk;
	cmd->scratch[0] = (struct iovec){ cmd->p.bounce, bytes };
	start_io(cmd, UMDEV_BDEV_READ, lba * lu->bs, bytes, cmd->scratch, 1, false, verify_done);
}

/* ---- multi-stage commands (WRITE SAME with a pattern, UNMAP) ---- */

/*
 * A step returns true once it has completed the command (which must not be
 * touched afterwards), false when it started a stage. A stage that
 * completes inline only records its result and sets again, so a long
 * command loops here instead of recursing once per stage.
 */
static void run_stages(struct umdev_scsi_cmd *cmd, bool (*step)(struct umdev_scsi_cmd *))
{
	cmd->p.running = true;
	for (;;) {
		cmd->p.again = false;
		if (step(cmd))
			return;
		if (!cmd->p.again)
			break;
	}
	cmd->p.running = false;
}

static bool stage_start(struct umdev_scsi_cmd *cmd, enum umdev_bdev_op op, uint64_t off,
			uint64_t len, const struct iovec *iov, int cnt,
			void (*done)(struct umdev_bdev_io *, int))
{
	int err = 0;
	umdev_bdev_queue *bq = scsi_bq(cmd, &err);

	cmd->p.io = (struct umdev_bdev_io){
		.op = op, .offset = off, .len = len, .iov = iov, .iovcnt = cnt,
		.fua = cmd->p.fua, .done = done,
	};
	if (bq)
		err = umdev_bdev_submit(bq, &cmd->p.io);
	if (err < 0) {
		scsi_fail(cmd, SCSI_SK_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
		return true;
	}
	return false;
}

static void stage_done(struct umdev_bdev_io *io, int res, bool (*step)(struct umdev_scsi_cmd *))
{
	struct umdev_scsi_cmd *cmd = cmd_of(io);

	cmd->p.res = res;
	if (cmd->p.running)
		cmd->p.again = true;
	else
		run_stages(cmd, step);
}

static bool ws_step(struct umdev_scsi_cmd *cmd);

static void ws_done(struct umdev_bdev_io *io, int res)
{
	stage_done(io, res, ws_step);
}

static bool ws_step(struct umdev_scsi_cmd *cmd)
{
	const umdev_scsi_lu *lu = cmd->p.lu;
	uint64_t left;

	if (cmd->p.res < 0) {
		scsi_fail(cmd, SCSI_SK_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
		return true;
	}
	cmd->p.done_blocks += cmd->p.chunk;
	cmd->p.chunk = 0;
	left = cmd->p.nblocks - cmd->p.done_blocks;
	if (!left) {
		scsi_good(cmd);
		return true;
	}
	if (cmd->aborted) {
		finish_aborted(cmd);
		return true;
	}
	cmd->p.chunk = left < cmd->p.bounce_len / lu->bs ? left : cmd->p.bounce_len / lu->bs;
	cmd->scratch[0] = (struct iovec){ cmd->p.bounce, cmd->p.chunk * lu->bs };
	return stage_start(cmd, UMDEV_BDEV_WRITE, (cmd->p.lba + cmd->p.done_blocks) * lu->bs,
			   cmd->p.chunk * lu->bs, cmd->scratch, 1, ws_done);
}

static void zeroes_done(struct umdev_bdev_io *io, int res)
{
	struct umdev_scsi_cmd *cmd = cmd_of(io);

	if (res < 0)
		scsi_fail(cmd, SCSI_SK_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
	else
		scsi_good(cmd);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

void scsi_write_same(struct umdev_scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	umdev_scsi_lu *lu = cmd->p.lu;
	bool sixteen = cdb[0] == SCSI_WRITE_SAME_16;
	uint64_t lba = sixteen ? umdev_scsi_get64(cdb + 2) : umdev_scsi_get32(cdb + 2);
	uint64_t n = sixteen ? umdev_scsi_get32(cdb + 10) : umdev_scsi_get16(cdb + 7);
	bool ndob = sixteen && (cdb[1] & 0x01);
	size_t per;

	if (cdb[1] & 0xe0) {
		scsi_fail_cdb(cmd, 1, 7);
		return;
	}
	if (cdb[1] & 0x10) { /* ANCHOR */
		scsi_fail_cdb(cmd, 1, 4);
		return;
	}
	if (lu->readonly) {
		scsi_fail(cmd, SCSI_SK_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return;
	}
	if (!range_ok(lu, lba, n)) {
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return;
	}
	if (n == 0 || n > SCSI_MAX_WRITE_SAME_BLOCKS) { /* WSNZ is set in VPD 0xB0 */
		scsi_fail_cdb(cmd, sixteen ? 10 : 7, -1);
		return;
	}
	per = WS_CHUNK_BYTES / lu->bs;
	if (per > n)
		per = n;
	cmd->p.bounce = calloc(per, lu->bs);
	if (!cmd->p.bounce) {
		scsi_fail(cmd, SCSI_SK_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	cmd->p.bounce_len = per * lu->bs;
	if (!ndob) {
		if (scsi_out_len(cmd) < lu->bs) {
			scsi_fail_overrun(cmd);
			return;
		}
		cmd->out_xfer = umdev_iov_to_buf(cmd->out_iov, cmd->out_cnt, 0, cmd->p.bounce,
						 lu->bs);
	}
	cmd->p.fua = !atomic_load(&lu->wce);
	if (all_zero(cmd->p.bounce, lu->bs) && lu->info.can_write_zeroes) {
		/* Zeroes (with or without UNMAP): one request, which may deallocate. */
		start_io(cmd, UMDEV_BDEV_WRITE_ZEROES, lba * lu->bs, n * lu->bs, NULL, 0, false,
			 zeroes_done);
		return;
	}
	/* A pattern, or a backend without write-zeroes: write it chunk by chunk. */
	for (size_t i = 1; i < per; i++)
		memcpy(cmd->p.bounce + i * lu->bs, cmd->p.bounce, lu->bs);
	cmd->p.lba = lba;
	cmd->p.nblocks = n;
	cmd->p.done_blocks = 0;
	run_stages(cmd, ws_step);
}

/* ---- UNMAP ---- */

static bool unmap_step(struct umdev_scsi_cmd *cmd);

static void unmap_done(struct umdev_bdev_io *io, int res)
{
	stage_done(io, res, unmap_step);
}

/* p.done_blocks counts descriptors here; p.chunk is 1 while one is being discarded. */
static bool unmap_step(struct umdev_scsi_cmd *cmd)
{
	const umdev_scsi_lu *lu = cmd->p.lu;
	const uint8_t *d;

	if (cmd->p.res < 0) {
		scsi_fail(cmd, SCSI_SK_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
		return true;
	}
	cmd->p.done_blocks += cmd->p.chunk;
	cmd->p.chunk = 0;
	while (cmd->p.done_blocks < cmd->p.nblocks &&
	       !umdev_scsi_get32(cmd->p.bounce + 8 + 16 * cmd->p.done_blocks + 8))
		cmd->p.done_blocks++;
	if (cmd->p.done_blocks == cmd->p.nblocks) {
		scsi_good(cmd);
		return true;
	}
	if (cmd->aborted) {
		finish_aborted(cmd);
		return true;
	}
	d = cmd->p.bounce + 8 + 16 * cmd->p.done_blocks;
	cmd->p.chunk = 1;
	return stage_start(cmd, UMDEV_BDEV_DISCARD, umdev_scsi_get64(d) * lu->bs,
			   (uint64_t)umdev_scsi_get32(d + 8) * lu->bs, NULL, 0, unmap_done);
}

void scsi_unmap(struct umdev_scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	const umdev_scsi_lu *lu = cmd->p.lu;
	size_t plen = umdev_scsi_get16(cdb + 7), dlen, ndesc;
	uint8_t *p;

	if (cdb[1] & 0x01) { /* ANCHOR */
		scsi_fail_cdb(cmd, 1, 0);
		return;
	}
	if (lu->readonly) {
		scsi_fail(cmd, SCSI_SK_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return;
	}
	if (plen == 0) {
		scsi_good(cmd);
		return;
	}
	if (plen < 8) {
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
		return;
	}
	if (plen > 8 + 16 * SCSI_MAX_UNMAP_DESC) {
		scsi_fail_cdb(cmd, 7, -1);
		return;
	}
	p = calloc(1, plen);
	if (!p) {
		scsi_fail(cmd, SCSI_SK_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	cmd->p.bounce = p; /* freed on completion */
	cmd->p.bounce_len = plen;
	if (!scsi_get_params(cmd, p, plen))
		return;
	dlen = umdev_scsi_get16(p + 2);
	if (dlen % 16 || dlen > plen - 8) {
		scsi_fail_param(cmd, 2);
		return;
	}
	ndesc = dlen / 16;
	for (size_t i = 0; i < ndesc; i++) {
		const uint8_t *d = p + 8 + 16 * i;
		uint64_t lba = umdev_scsi_get64(d);
		uint32_t n = umdev_scsi_get32(d + 8);

		if (!range_ok(lu, lba, n)) {
			scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
			return;
		}
		if (n > SCSI_MAX_UNMAP_BLOCKS) {
			scsi_fail_param(cmd, 8 + 16 * i + 8);
			return;
		}
	}
	cmd->p.nblocks = ndesc;
	cmd->p.done_blocks = 0;
	run_stages(cmd, unmap_step);
}

/* ---- START STOP UNIT ---- */

static void stop_done(struct umdev_bdev_io *io, int res)
{
	struct umdev_scsi_cmd *cmd = cmd_of(io);

	if (res < 0) {
		scsi_fail(cmd, SCSI_SK_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
		return;
	}
	atomic_store(&cmd->p.lu->stopped, true);
	scsi_good(cmd);
}

void scsi_start_stop(struct umdev_scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	umdev_scsi_lu *lu = cmd->p.lu;

	/* A power condition other than START_VALID leaves START alone (SBC-3 5.25). */
	if (cdb[4] >> 4) {
		scsi_good(cmd);
		return;
	}
	if (cdb[4] & 0x01) {
		atomic_store(&lu->stopped, false);
		scsi_good(cmd);
		return;
	}
	/* Stopping: what the cache holds goes to the medium first. */
	start_io(cmd, UMDEV_BDEV_FLUSH, 0, 0, NULL, 0, false, stop_done);
}
