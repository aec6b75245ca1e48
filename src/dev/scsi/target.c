/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SCSI target: the LU table, channels, command dispatch, sense data, unit
 * attentions, and the commands that need no family of their own (TEST UNIT
 * READY, REQUEST SENSE, REPORT LUNS).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"
#include "umdev/log.h"
#include "util/iov.h"

/* ---- answers ---- */

uint64_t scsi_in_len(const struct umdev_scsi_cmd *cmd)
{
	return umdev_iov_size(cmd->in_iov, cmd->in_cnt);
}

uint64_t scsi_out_len(const struct umdev_scsi_cmd *cmd)
{
	return umdev_iov_size(cmd->out_iov, cmd->out_cnt);
}

static void unlink_cmd(struct umdev_scsi_cmd *cmd)
{
	umdev_scsi_chan *ch = cmd->p.chan;

	if (cmd->p.prev)
		cmd->p.prev->p.next = cmd->p.next;
	else
		ch->head = cmd->p.next;
	if (cmd->p.next)
		cmd->p.next->p.prev = cmd->p.prev;
	else
		ch->tail = cmd->p.prev;
	cmd->p.prev = cmd->p.next = NULL;
	ch->inflight--;
}

void scsi_complete(struct umdev_scsi_cmd *cmd)
{
	unlink_cmd(cmd);
	if (cmd->p.lu)
		atomic_fetch_sub(&cmd->p.lu->inflight, 1);
	free(cmd->p.bounce);
	cmd->p.bounce = NULL;
	cmd->p.bounce_len = 0;
	cmd->done(cmd);
}

uint32_t scsi_build_sense(uint8_t *out, bool desc, uint8_t sk, uint16_t asc)
{
	memset(out, 0, UMDEV_SCSI_SENSE_MAX);
	if (desc) {
		out[0] = SCSI_SENSE_DESC;
		out[1] = sk;
		out[2] = asc >> 8;
		out[3] = asc & 0xff;
		return SCSI_SENSE_DESC_LEN;
	}
	out[0] = SCSI_SENSE_FIXED;
	out[2] = sk;
	out[7] = SCSI_SENSE_FIXED_LEN - 8;
	out[12] = asc >> 8;
	out[13] = asc & 0xff;
	return SCSI_SENSE_FIXED_LEN;
}

static bool desc_sense(const struct umdev_scsi_cmd *cmd)
{
	return cmd->p.lu && atomic_load(&cmd->p.lu->d_sense);
}

void scsi_fail(struct umdev_scsi_cmd *cmd, uint8_t sk, uint16_t asc)
{
	cmd->status = SCSI_STATUS_CHECK_CONDITION;
	cmd->sense_len = scsi_build_sense(cmd->sense, desc_sense(cmd), sk, asc);
	scsi_complete(cmd);
}

/* Sense-key specific field pointer (SPC-4 "field pointer sense key specific data"). */
static void add_field_pointer(struct umdev_scsi_cmd *cmd, bool in_cdb, unsigned byte, int bit)
{
	uint8_t sks[3];

	sks[0] = 0x80 | (in_cdb ? 0x40 : 0) | (bit >= 0 ? 0x08 | (bit & 7) : 0);
	sks[1] = byte >> 8;
	sks[2] = byte & 0xff;
	if (cmd->sense[0] == SCSI_SENSE_FIXED) {
		memcpy(cmd->sense + 15, sks, 3);
	} else {
		/* Sense key specific descriptor: type 2, 6 bytes of payload. */
		uint8_t *d = cmd->sense + SCSI_SENSE_DESC_LEN;

		d[0] = 0x02;
		d[1] = 0x06;
		memcpy(d + 4, sks, 3);
		cmd->sense[7] = 8;
		cmd->sense_len = SCSI_SENSE_DESC_LEN + 8;
	}
}

static void fail_field(struct umdev_scsi_cmd *cmd, bool in_cdb, unsigned byte, int bit)
{
	cmd->status = SCSI_STATUS_CHECK_CONDITION;
	cmd->sense_len = scsi_build_sense(cmd->sense, desc_sense(cmd), SCSI_SK_ILLEGAL_REQUEST,
					  in_cdb ? SCSI_ASC_INVALID_FIELD_IN_CDB
						 : SCSI_ASC_INVALID_FIELD_IN_PARAM);
	add_field_pointer(cmd, in_cdb, byte, bit);
	scsi_complete(cmd);
}

void scsi_fail_cdb(struct umdev_scsi_cmd *cmd, unsigned byte, int bit)
{
	fail_field(cmd, true, byte, bit);
}

void scsi_fail_param(struct umdev_scsi_cmd *cmd, unsigned byte)
{
	fail_field(cmd, false, byte, -1);
}

void scsi_fail_overrun(struct umdev_scsi_cmd *cmd)
{
	/* The transport reports this as its own overrun; the sense is for the others. */
	cmd->overrun = true;
	cmd->in_xfer = 0;
	cmd->out_xfer = 0;
	scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

void scsi_good(struct umdev_scsi_cmd *cmd)
{
	cmd->status = SCSI_STATUS_GOOD;
	scsi_complete(cmd);
}

void scsi_reply(struct umdev_scsi_cmd *cmd, const void *buf, size_t len, size_t alloc)
{
	size_t n = len < alloc ? len : alloc;

	/* Data beyond the allocation length is cut silently (SPC-4 4.2.5.6). */
	cmd->in_xfer = umdev_iov_from_buf(cmd->in_iov, cmd->in_cnt, 0, buf, n);
	scsi_good(cmd);
}

bool scsi_get_params(struct umdev_scsi_cmd *cmd, void *buf, size_t len)
{
	if (scsi_out_len(cmd) < len) {
		scsi_fail_overrun(cmd);
		return false;
	}
	cmd->out_xfer = umdev_iov_to_buf(cmd->out_iov, cmd->out_cnt, 0, buf, len);
	return true;
}

umdev_bdev_queue *scsi_bq(struct umdev_scsi_cmd *cmd, int *err)
{
	umdev_scsi_chan *ch = cmd->p.chan;
	umdev_scsi_lu *lu = cmd->p.lu;
	struct chan_ent *e = &ch->ent[lu->slot];

	if (e->lu != lu) {
		/* The slot held an LU since detached and forgotten: start afresh. */
		if (e->bq)
			umdev_bdev_queue_free(e->bq);
		e->bq = umdev_bdev_queue_new(lu->bdev, ch->loop, err);
		e->lu = e->bq ? lu : NULL;
	}
	return e->bq;
}

void scsi_io_submit(struct umdev_scsi_cmd *cmd)
{
	int err = 0;
	umdev_bdev_queue *bq = scsi_bq(cmd, &err);

	if (bq)
		err = umdev_bdev_submit(bq, &cmd->p.io);
	if (err < 0)
		scsi_fail(cmd, SCSI_SK_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
}

/* ---- the LU table ---- */

static umdev_scsi_lu *lookup(const umdev_scsi_target *t, unsigned target, unsigned lun)
{
	unsigned n = atomic_load_explicit((atomic_uint *)&t->nslots, memory_order_acquire);

	for (unsigned i = 0; i < n; i++) {
		umdev_scsi_lu *lu = atomic_load_explicit(&t->slots[i], memory_order_acquire);

		if (lu && lu->target == target && lu->lun == lun)
			return lu;
	}
	return NULL;
}

bool umdev_scsi_target_exists(const umdev_scsi_target *t, unsigned target)
{
	unsigned n = atomic_load_explicit((atomic_uint *)&t->nslots, memory_order_acquire);

	for (unsigned i = 0; i < n; i++) {
		umdev_scsi_lu *lu = atomic_load_explicit(&t->slots[i], memory_order_acquire);

		if (lu && lu->target == target)
			return true;
	}
	return false;
}

bool umdev_scsi_lu_exists(const umdev_scsi_target *t, unsigned target, unsigned lun)
{
	return lookup(t, target, lun) != NULL;
}

int umdev_scsi_lu_info(const umdev_scsi_target *t, unsigned i, struct umdev_scsi_lu_info *out)
{
	umdev_scsi_lu *lu = i < UMDEV_SCSI_MAX_LUS ? atomic_load(&t->slots[i]) : NULL;

	if (!lu)
		return -ENOENT;
	*out = (struct umdev_scsi_lu_info){
		.target = lu->target, .lun = lu->lun, .backend = umdev_bdev_spec(lu->bdev),
		.readonly = lu->readonly, .size = scsi_lu_nblocks(lu) * lu->bs, .block_size = lu->bs,
	};
	return 0;
}

/* The backend was resized (rbd resize): new capacity, and a unit attention. */
static void lu_resized(void *opaque, uint64_t size)
{
	umdev_scsi_lu *lu = opaque;

	atomic_store_explicit(&lu->nblocks, size / lu->bs, memory_order_relaxed);
	atomic_fetch_or(&lu->ua, UA_CAPACITY_CHANGED);
	umdev_info("%s: LUN %u:%u now %llu blocks", lu->t->name, lu->target, lu->lun,
		   (unsigned long long)(size / lu->bs));
}

/* Tell the other LUs of @target that REPORT LUNS would now answer differently. */
static void luns_changed(umdev_scsi_target *t, unsigned target)
{
	for (unsigned i = 0; i < UMDEV_SCSI_MAX_LUS; i++) {
		umdev_scsi_lu *lu = atomic_load(&t->slots[i]);

		if (lu && lu->target == target)
			atomic_fetch_or(&lu->ua, UA_LUNS_CHANGED);
	}
}

umdev_scsi_target *umdev_scsi_target_new(const char *name, int *err)
{
	umdev_scsi_target *t = calloc(1, sizeof(*t));

	if (!t) {
		*err = -ENOMEM;
		return NULL;
	}
	snprintf(t->name, sizeof(t->name), "%s", name ? name : "scsi");
	return t;
}

void umdev_scsi_target_free(umdev_scsi_target *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < UMDEV_SCSI_MAX_LUS; i++)
		umdev_scsi_lu_free(atomic_load(&t->slots[i]));
	free(t);
}

int umdev_scsi_lu_add(umdev_scsi_target *t, unsigned target, unsigned lun,
		      const struct umdev_scsi_lu_opts *o, char *msg, size_t msglen)
{
	umdev_scsi_lu *lu;
	unsigned slot;
	int err = 0;

	if (target > UMDEV_SCSI_MAX_TARGET || lun > UMDEV_SCSI_MAX_LUN || !o || !o->backend) {
		snprintf(msg, msglen, "LUN %u:%u out of range (target <= %u, lun <= %u)", target,
			 lun, UMDEV_SCSI_MAX_TARGET, UMDEV_SCSI_MAX_LUN);
		return -EINVAL;
	}
	if (o->serial && strlen(o->serial) > 32) {
		snprintf(msg, msglen, "serial is at most 32 characters");
		return -EINVAL;
	}
	if (lookup(t, target, lun)) {
		snprintf(msg, msglen, "LUN %u:%u exists already", target, lun);
		return -EEXIST;
	}
	for (slot = 0; slot < UMDEV_SCSI_MAX_LUS; slot++)
		if (!atomic_load(&t->slots[slot]))
			break;
	if (slot == UMDEV_SCSI_MAX_LUS) {
		snprintf(msg, msglen, "at most %u LUNs per device", UMDEV_SCSI_MAX_LUS);
		return -ENOSPC;
	}
	lu = calloc(1, sizeof(*lu));
	if (!lu)
		return -ENOMEM;
	lu->bdev = umdev_bdev_open(o->backend, o->readonly, &err);
	if (!lu->bdev) {
		snprintf(msg, msglen, "cannot open backend '%s': %s", o->backend, strerror(-err));
		free(lu);
		return err;
	}
	umdev_bdev_get_info(lu->bdev, &lu->info);
	lu->t = t;
	lu->slot = slot;
	lu->target = target;
	lu->lun = lun;
	lu->bs = lu->info.block_size;
	atomic_init(&lu->nblocks, lu->info.size / lu->bs);
	if (o->notify_loop) {
		err = umdev_bdev_watch_size(lu->bdev, o->notify_loop, lu_resized, lu);
		if (err < 0) {
			snprintf(msg, msglen, "backend '%s': cannot watch its size: %s", o->backend,
				 strerror(-err));
			umdev_bdev_close(lu->bdev);
			free(lu);
			return err;
		}
	}
	lu->readonly = o->readonly || lu->info.readonly;
	if (o->serial)
		snprintf(lu->serial, sizeof(lu->serial), "%s", o->serial);
	else
		snprintf(lu->serial, sizeof(lu->serial), "%.20s-%u-%u", t->name, target, lun);
	scsi_lu_make_ids(lu, t->name);
	scsi_mode_defaults(lu);
	atomic_store(&lu->ua, UA_POWER_ON);
	luns_changed(t, target);
	atomic_store_explicit(&t->slots[slot], lu, memory_order_release);
	if (slot >= atomic_load(&t->nslots))
		atomic_store_explicit(&t->nslots, slot + 1, memory_order_release);
	return 0;
}

umdev_scsi_lu *umdev_scsi_lu_detach(umdev_scsi_target *t, unsigned target, unsigned lun)
{
	umdev_scsi_lu *lu = lookup(t, target, lun);

	if (!lu)
		return NULL;
	atomic_store_explicit(&t->slots[lu->slot], NULL, memory_order_release);
	luns_changed(t, target);
	return lu;
}

unsigned umdev_scsi_lu_inflight(const umdev_scsi_lu *lu)
{
	return atomic_load((atomic_uint *)&lu->inflight);
}

void umdev_scsi_lu_free(umdev_scsi_lu *lu)
{
	if (!lu)
		return;
	umdev_bdev_close(lu->bdev);
	free(lu);
}

void umdev_scsi_reset(umdev_scsi_target *t, enum umdev_scsi_reset kind, unsigned target,
		      unsigned lun)
{
	for (unsigned i = 0; i < UMDEV_SCSI_MAX_LUS; i++) {
		umdev_scsi_lu *lu = atomic_load(&t->slots[i]);

		if (!lu || lu->target != target || (kind == UMDEV_SCSI_RESET_LU && lu->lun != lun))
			continue;
		scsi_mode_defaults(lu);
		atomic_store(&lu->stopped, false);
		atomic_fetch_or(&lu->ua, kind == UMDEV_SCSI_RESET_LU ? UA_POWER_ON : UA_NEXUS_LOSS);
	}
}

int umdev_scsi_flush_all(umdev_scsi_target *t)
{
	int first = 0;

	for (unsigned i = 0; i < UMDEV_SCSI_MAX_LUS; i++) {
		umdev_scsi_lu *lu = atomic_load(&t->slots[i]);
		int ret = lu && !lu->readonly ? umdev_bdev_flush_sync(lu->bdev) : 0;

		if (ret < 0 && !first)
			first = ret;
	}
	return first;
}

/* ---- channels ---- */

umdev_scsi_chan *umdev_scsi_chan_new(umdev_scsi_target *t, umdev_loop *loop, int *err)
{
	umdev_scsi_chan *ch = calloc(1, sizeof(*ch));

	if (!ch) {
		*err = -ENOMEM;
		return NULL;
	}
	ch->t = t;
	ch->loop = loop;
	return ch;
}

void umdev_scsi_chan_free(umdev_scsi_chan *ch)
{
	if (!ch)
		return;
	for (unsigned i = 0; i < UMDEV_SCSI_MAX_LUS; i++)
		if (ch->ent[i].bq)
			umdev_bdev_queue_free(ch->ent[i].bq);
	free(ch);
}

void umdev_scsi_chan_forget(umdev_scsi_chan *ch, umdev_scsi_lu *lu)
{
	struct chan_ent *e = &ch->ent[lu->slot];

	if (e->lu != lu)
		return;
	umdev_bdev_queue_free(e->bq);
	e->bq = NULL;
	e->lu = NULL;
}

unsigned umdev_scsi_chan_inflight(const umdev_scsi_chan *ch)
{
	return ch->inflight;
}

void umdev_scsi_chan_for_each(umdev_scsi_chan *ch, void (*fn)(struct umdev_scsi_cmd *, void *),
			      void *opaque)
{
	for (struct umdev_scsi_cmd *c = ch->head; c; c = c->p.next)
		fn(c, opaque);
}

/* ---- small commands ---- */

/* Highest-priority pending attention, or 0. */
static unsigned ua_pick(unsigned bits)
{
	return bits & -bits;
}

static uint16_t ua_asc(unsigned bit)
{
	switch (bit) {
	case UA_POWER_ON:
		return SCSI_ASC_POWER_ON_RESET;
	case UA_NEXUS_LOSS:
		return SCSI_ASC_I_T_NEXUS_LOSS;
	case UA_LUNS_CHANGED:
		return SCSI_ASC_REPORTED_LUNS_CHANGED;
	case UA_CAPACITY_CHANGED:
		return SCSI_ASC_CAPACITY_CHANGED;
	default:
		return SCSI_ASC_MODE_PARAMS_CHANGED;
	}
}

/* Take one pending attention off @lu; returns its bit or 0. */
static unsigned ua_take(umdev_scsi_lu *lu)
{
	unsigned cur = atomic_load(&lu->ua), bit;

	do {
		bit = ua_pick(cur);
		if (!bit)
			return 0;
	} while (!atomic_compare_exchange_weak(&lu->ua, &cur, cur & ~bit));
	return bit;
}

static void request_sense(struct umdev_scsi_cmd *cmd, umdev_scsi_lu *lu)
{
	const uint8_t *cdb = cmd->cdb;
	bool desc = cdb[1] & 0x01;
	uint8_t sense[UMDEV_SCSI_SENSE_MAX];
	uint32_t len;
	unsigned bit;

	if (!lu) {
		len = scsi_build_sense(sense, desc, SCSI_SK_ILLEGAL_REQUEST,
				       SCSI_ASC_LUN_NOT_SUPPORTED);
	} else if ((bit = ua_take(lu))) {
		len = scsi_build_sense(sense, desc, SCSI_SK_UNIT_ATTENTION, ua_asc(bit));
	} else if (atomic_load(&lu->stopped)) {
		len = scsi_build_sense(sense, desc, SCSI_SK_NOT_READY,
				       SCSI_ASC_LUN_NOT_READY_START_NEEDED);
	} else {
		len = scsi_build_sense(sense, desc, SCSI_SK_NO_SENSE, SCSI_ASC_NONE);
	}
	scsi_reply(cmd, sense, len, cdb[4]);
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static void report_luns(struct umdev_scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint32_t alloc = umdev_scsi_get32(cdb + 6);
	uint8_t select = cdb[2];
	uint16_t luns[UMDEV_SCSI_MAX_LUS];
	uint8_t buf[8 + 8 * UMDEV_SCSI_MAX_LUS];
	unsigned n = 0;

	if (cmd->cdb_len < 12) {
		scsi_fail_cdb(cmd, 0, -1);
		return;
	}
	/* 0: all LUs, 2: all including well-known ones (we have none), 0x10-0x12 likewise. */
	if (select != 0x00 && select != 0x02 && select != 0x11 && select != 0x01 &&
	    select != 0x10 && select != 0x12) {
		scsi_fail_cdb(cmd, 2, -1);
		return;
	}
	if (alloc < 16) {
		scsi_fail_cdb(cmd, 6, -1);
		return;
	}
	memset(buf, 0, sizeof(buf));
	if (select != 0x01) {
		for (unsigned i = 0; i < UMDEV_SCSI_MAX_LUS; i++) {
			umdev_scsi_lu *lu = atomic_load(&cmd->p.chan->t->slots[i]);

			if (lu && lu->target == cmd->target)
				luns[n++] = lu->lun;
		}
	}
	qsort(luns, n, sizeof(luns[0]), cmp_u16);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = buf + 8 + 8 * i;

		/* Peripheral addressing below 256, flat space above (SAM-5 4.7). */
		e[0] = luns[i] < 256 ? 0 : 0x40 | luns[i] >> 8;
		e[1] = luns[i] & 0xff;
	}
	umdev_scsi_put32(buf, 8 * n);
	scsi_reply(cmd, buf, 8 + 8 * n, alloc);
}

/* Commands that need a ready medium. */
static bool needs_ready(uint8_t op)
{
	switch (op) {
	case SCSI_READ_6: case SCSI_READ_10: case SCSI_READ_12: case SCSI_READ_16:
	case SCSI_WRITE_6: case SCSI_WRITE_10: case SCSI_WRITE_12: case SCSI_WRITE_16:
	case SCSI_VERIFY_10: case SCSI_VERIFY_16: case SCSI_WRITE_SAME_10:
	case SCSI_WRITE_SAME_16: case SCSI_UNMAP: case SCSI_SYNCHRONIZE_CACHE_10:
	case SCSI_SYNCHRONIZE_CACHE_16: case SCSI_TEST_UNIT_READY:
		return true;
	default:
		return false;
	}
}

/* CDB length from the group code (SPC-4 4.2.5.1); 0 for vendor groups. */
static unsigned cdb_len_of(uint8_t op)
{
	static const uint8_t by_group[8] = { 6, 10, 10, 0, 16, 12, 0, 0 };

	return by_group[op >> 5];
}

static void dispatch(struct umdev_scsi_cmd *cmd, umdev_scsi_lu *lu)
{
	const uint8_t *cdb = cmd->cdb;
	uint8_t op = cdb[0];
	unsigned bit;

	if (op != SCSI_INQUIRY && op != SCSI_REPORT_LUNS && op != SCSI_REQUEST_SENSE &&
	    (bit = ua_take(lu))) {
		scsi_fail(cmd, SCSI_SK_UNIT_ATTENTION, ua_asc(bit));
		return;
	}
	if (needs_ready(op) && atomic_load(&lu->stopped)) {
		scsi_fail(cmd, SCSI_SK_NOT_READY, SCSI_ASC_LUN_NOT_READY_START_NEEDED);
		return;
	}
	switch (op) {
	case SCSI_TEST_UNIT_READY:
		scsi_good(cmd);
		break;
	case SCSI_REQUEST_SENSE:
		request_sense(cmd, lu);
		break;
	case SCSI_INQUIRY:
		scsi_inquiry(cmd, lu);
		break;
	case SCSI_REPORT_LUNS:
		report_luns(cmd);
		break;
	case SCSI_MODE_SENSE_6:
	case SCSI_MODE_SENSE_10:
		scsi_mode_sense(cmd);
		break;
	case SCSI_MODE_SELECT_6:
	case SCSI_MODE_SELECT_10:
		scsi_mode_select(cmd);
		break;
	case SCSI_READ_CAPACITY_10:
		scsi_read_capacity(cmd);
		break;
	case SCSI_SERVICE_ACTION_IN_16:
		if ((cdb[1] & 0x1f) == SCSI_SAI_READ_CAPACITY_16)
			scsi_read_capacity(cmd);
		else
			scsi_fail_cdb(cmd, 1, 4);
		break;
	case SCSI_MAINTENANCE_IN:
		if ((cdb[1] & 0x1f) == SCSI_MI_REPORT_SUPPORTED_OPCODES)
			scsi_report_opcodes(cmd);
		else
			scsi_fail_cdb(cmd, 1, 4);
		break;
	case SCSI_READ_6: case SCSI_READ_10: case SCSI_READ_12: case SCSI_READ_16:
	case SCSI_WRITE_6: case SCSI_WRITE_10: case SCSI_WRITE_12: case SCSI_WRITE_16:
		scsi_rw(cmd);
		break;
	case SCSI_SYNCHRONIZE_CACHE_10:
	case SCSI_SYNCHRONIZE_CACHE_16:
		scsi_sync_cache(cmd);
		break;
	case SCSI_VERIFY_10:
	case SCSI_VERIFY_16:
		scsi_verify(cmd);
		break;
	case SCSI_WRITE_SAME_10:
	case SCSI_WRITE_SAME_16:
		scsi_write_same(cmd);
		break;
	case SCSI_UNMAP:
		scsi_unmap(cmd);
		break;
	case SCSI_START_STOP_UNIT:
		scsi_start_stop(cmd);
		break;
	default:
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
		break;
	}
}

/* A command for an address with no LU behind it (SPC-4 and SAM-5 rules). */
static void no_lu(struct umdev_scsi_cmd *cmd)
{
	uint8_t op = cmd->cdb[0];

	if (op == SCSI_INQUIRY && !(cmd->cdb[1] & 0x01)) {
		uint8_t buf[36] = { SCSI_PQ_NOT_CONNECTED, 0, 0x06, 0x12, 31 };

		scsi_reply(cmd, buf, sizeof(buf), umdev_scsi_get16(cmd->cdb + 3));
	} else if (op == SCSI_REPORT_LUNS) {
		report_luns(cmd);
	} else if (op == SCSI_REQUEST_SENSE) {
		request_sense(cmd, NULL);
	} else {
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED);
	}
}

void umdev_scsi_submit(umdev_scsi_chan *ch, struct umdev_scsi_cmd *cmd)
{
	umdev_scsi_lu *lu;
	unsigned need;

	cmd->status = SCSI_STATUS_GOOD;
	cmd->overrun = false;
	cmd->sense_len = 0;
	cmd->in_xfer = cmd->out_xfer = 0;
	memset(&cmd->p, 0, sizeof(cmd->p));
	cmd->p.chan = ch;
	cmd->p.prev = ch->tail;
	if (ch->tail)
		ch->tail->p.next = cmd;
	else
		ch->head = cmd;
	ch->tail = cmd;
	ch->inflight++;

	if (!cmd->cdb || cmd->cdb_len < 6) {
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
		return;
	}
	need = cdb_len_of(cmd->cdb[0]);
	if (!need || cmd->cdb_len < need) {
		/* Vendor-specific group, or a CDB cut short by the transport. */
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
		return;
	}
	lu = lookup(ch->t, cmd->target, cmd->lun);
	if (!lu) {
		no_lu(cmd);
		return;
	}
	cmd->p.lu = lu;
	atomic_fetch_add(&lu->inflight, 1);
	dispatch(cmd, lu);
}
