/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SCSI target: addressing, INQUIRY and VPD, REPORT LUNS, unit attentions,
 * REQUEST SENSE, MODE SENSE/SELECT, REPORT SUPPORTED OPERATION CODES,
 * START STOP UNIT, unknown opcodes and fixed/descriptor sense.
 */
#include "scsi_harness.h"

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	env_init(e);
	env_add(e, 0, 0, "ram:1M", false);
	env_add(e, 0, 1, "null:8M", true);
	env_add(e, 0, 300, "ram:64K", false);
	env_add(e, 3, 0, "ram:128K", false);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	env_fini(*state);
	free(*state);
	return 0;
}

static void test_inquiry_standard(void **state)
{
	struct env *e = *state;
	uint8_t cdb[6] = { SCSI_INQUIRY, 0, 0, 0, 96 }, b[96];
	struct res r;

	assert_int_equal(run(e, 0, 0, cdb, 6, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
	assert_int_equal(b[0], SCSI_TYPE_DISK);
	assert_int_equal(b[2], 0x06);
	assert_int_equal(b[3] & 0x0f, 2);
	assert_true(b[7] & 0x02);
	assert_memory_equal(b + 8, "UMDEV   ", 8);
	assert_int_equal(r.in_xfer, b[4] + 5);
	/* Allocation length cuts the data. */
	cdb[4] = 5;
	run(e, 0, 0, cdb, 6, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(r.in_xfer, 5);
	/* No LU at 0:7: peripheral qualifier 3, type 0x1f. */
	cdb[4] = 36;
	assert_int_equal(run(e, 0, 7, cdb, 6, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
	assert_int_equal(b[0], 0x7f);
	/* CMDDT is refused; a page code without EVPD too. */
	cdb[1] = 0x02;
	run(e, 0, 0, cdb, 6, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	assert_int_equal(r.sense[15], 0x80 | 0x40 | 0x08 | 1); /* SKSV, C/D, BPV, bit 1 */
	assert_int_equal(r.sense[17], 1);
	cdb[1] = 0;
	cdb[2] = 0x80;
	run(e, 0, 0, cdb, 6, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void vpd(struct env *e, unsigned lun, uint8_t page, uint8_t *b, size_t len, struct res *r)
{
	uint8_t cdb[6] = { SCSI_INQUIRY, 1, page, (uint8_t)(len >> 8), (uint8_t)len };

	memset(b, 0xee, len);
	run(e, 0, lun, cdb, 6, NULL, 0, b, len, r);
}

static void test_vpd(void **state)
{
	struct env *e = *state;
	uint8_t b[256];
	struct res r;
	size_t n;

	vpd(e, 0, 0x00, b, sizeof(b), &r);
	assert_int_equal(r.status, SCSI_STATUS_GOOD);
	assert_int_equal(b[1], 0);
	n = umdev_scsi_get16(b + 2);
	assert_int_equal(n, 6);
	assert_memory_equal(b + 4, ((uint8_t[]){ 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 }), 6);

	vpd(e, 0, 0x80, b, sizeof(b), &r);
	assert_int_equal(r.status, SCSI_STATUS_GOOD);
	assert_memory_equal(b + 4, "tgt-0-0", 7);
	assert_int_equal(umdev_scsi_get16(b + 2), 7);

	vpd(e, 0, 0x83, b, sizeof(b), &r);
	assert_int_equal(r.status, SCSI_STATUS_GOOD);
	assert_int_equal(b[4 + 1] & 0x0f, 3); /* NAA */
	assert_int_equal(b[4 + 4] >> 4, 6);
	assert_int_equal(b[24 + 1] & 0x0f, 1); /* T10 vendor id */
	assert_memory_equal(b + 28, "UMDEV   tgt-0-0", 15);
	{
		/* Distinct LUs have distinct NAA identifiers. */
		uint8_t b2[256];

		vpd(e, 300, 0x83, b2, sizeof(b2), &r);
		assert_memory_not_equal(b + 8, b2 + 8, 16);
	}

	vpd(e, 0, 0xb0, b, sizeof(b), &r);
	assert_int_equal(r.status, SCSI_STATUS_GOOD);
	assert_int_equal(umdev_scsi_get16(b + 2), 60);
	assert_true(umdev_scsi_get32(b + 8) > 0);	   /* max transfer length */
	assert_true(umdev_scsi_get32(b + 20) > 0);	   /* max unmap LBA count (ram discards) */
	assert_true(umdev_scsi_get64(b + 36) > 0);	   /* max write same length */

	vpd(e, 0, 0xb1, b, sizeof(b), &r);
	assert_int_equal(umdev_scsi_get16(b + 4), 1);

	vpd(e, 0, 0xb2, b, sizeof(b), &r);
	assert_true(b[5] & 0x80); /* LBPU */
	vpd(e, 1, 0xb2, b, sizeof(b), &r); /* read-only: no unmap */
	assert_false(b[5] & 0x80);

	vpd(e, 0, 0x81, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	assert_int_equal(r.sense[17], 2); /* field pointer: byte 2 */
}

static void test_report_luns(void **state)
{
	struct env *e = *state;
	uint8_t cdb[12] = { SCSI_REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 1, 0 }, b[256];
	struct res r;

	assert_int_equal(run(e, 0, 0, cdb, 12, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
	assert_int_equal(umdev_scsi_get32(b), 24);
	assert_int_equal(r.in_xfer, 32);
	assert_memory_equal(b + 8, ((uint8_t[8]){ 0, 0 }), 8);
	assert_memory_equal(b + 16, ((uint8_t[8]){ 0, 1 }), 8);
	assert_memory_equal(b + 24, ((uint8_t[8]){ 0x41, 0x2c }), 8); /* 300, flat space */
	/* Answered through any LUN of the target, even one that does not exist. */
	assert_int_equal(run(e, 3, 9, cdb, 12, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
	assert_int_equal(umdev_scsi_get32(b), 8);
	/* Allocation length under 16 is invalid; select report 0x40 too. */
	cdb[9] = 8;
	cdb[8] = 0;
	run(e, 0, 0, cdb, 12, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	cdb[9] = 64;
	cdb[2] = 0x40;
	run(e, 0, 0, cdb, 12, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void test_unit_attention(void **state)
{
	struct env *e = *state;
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY }, rs[6] = { SCSI_REQUEST_SENSE, 0, 0, 0, 32 };
	uint8_t b[32];
	struct res r;
	umdev_scsi_lu *lu;

	/* A fresh LU reports power on once. */
	run(e, 3, 0, tur, 6, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_UNIT_ATTENTION, SCSI_ASC_POWER_ON_RESET);
	assert_int_equal(run(e, 3, 0, tur, 6, NULL, 0, NULL, 0, &r), SCSI_STATUS_GOOD);
	/* Adding a LUN to target 3: the others learn REPORT LUNS changed. */
	env_add(e, 3, 5, "ram:64K", false);
	/* REQUEST SENSE returns it as data, in descriptor format when asked. */
	rs[1] = 1;
	assert_int_equal(run(e, 3, 0, rs, 6, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
	assert_int_equal(b[0], SCSI_SENSE_DESC);
	assert_int_equal(b[1], SCSI_SK_UNIT_ATTENTION);
	assert_int_equal(b[2] << 8 | b[3], SCSI_ASC_REPORTED_LUNS_CHANGED);
	assert_int_equal(run(e, 3, 0, tur, 6, NULL, 0, NULL, 0, &r), SCSI_STATUS_GOOD);
	/* Nothing pending: NO SENSE, fixed format. */
	rs[1] = 0;
	run(e, 3, 0, rs, 6, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(b[0], SCSI_SENSE_FIXED);
	assert_int_equal(b[2], SCSI_SK_NO_SENSE);
	assert_int_equal(r.in_xfer, 18);
	/* Removing it: attention again, then LOGICAL UNIT NOT SUPPORTED for it. */
	lu = umdev_scsi_lu_detach(e->t, 3, 5);
	assert_non_null(lu);
	assert_int_equal(umdev_scsi_lu_inflight(lu), 0);
	umdev_scsi_chan_forget(e->ch, lu);
	umdev_scsi_lu_free(lu);
	assert_null(umdev_scsi_lu_detach(e->t, 3, 5));
	run(e, 3, 0, tur, 6, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_UNIT_ATTENTION, SCSI_ASC_REPORTED_LUNS_CHANGED);
	run(e, 3, 5, tur, 6, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED);
	run(e, 3, 5, rs, 6, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(r.status, SCSI_STATUS_GOOD);
	assert_int_equal(b[12], 0x25);
	/* Resets: 29/00 for the LU, 29/07 for the whole nexus. */
	umdev_scsi_reset(e->t, UMDEV_SCSI_RESET_LU, 3, 0);
	run(e, 3, 0, tur, 6, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_UNIT_ATTENTION, SCSI_ASC_POWER_ON_RESET);
	umdev_scsi_reset(e->t, UMDEV_SCSI_RESET_NEXUS, 3, 0);
	run(e, 3, 0, tur, 6, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_UNIT_ATTENTION, SCSI_ASC_I_T_NEXUS_LOSS);
	assert_true(umdev_scsi_target_exists(e->t, 3));
	assert_false(umdev_scsi_target_exists(e->t, 4));
	assert_true(umdev_scsi_lu_exists(e->t, 0, 300));
}

static void test_bad_opcode_and_sense_format(void **state)
{
	struct env *e = *state;
	uint8_t cdb[16] = { 0xc5 }, ms[10] = { SCSI_MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 0, 20 };
	uint8_t ctl[20] = { 0 };
	struct res r;

	clear_ua(e, 0, 0);
	run(e, 0, 0, cdb, 16, NULL, 0, NULL, 0, &r); /* vendor group */
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	cdb[0] = 0x01; /* REZERO UNIT: not ours */
	run(e, 0, 0, cdb, 6, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	assert_int_equal(r.sense[0], SCSI_SENSE_FIXED);
	assert_int_equal(r.sense_len, 18);
	cdb[0] = SCSI_READ_16; /* a CDB shorter than its group says */
	run(e, 0, 0, cdb, 10, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	run(e, 0, 0, cdb, 3, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);

	/* D_SENSE on through the control page: descriptor sense from now on. */
	ctl[8] = SCSI_MODE_PAGE_CONTROL;
	ctl[9] = 10;
	ctl[10] = 0x04;
	ctl[11] = 0x10;
	ctl[16] = 0xff;
	ctl[17] = 0xff;
	assert_int_equal(run(e, 0, 0, ms, 10, ctl, sizeof(ctl), NULL, 0, &r), SCSI_STATUS_GOOD);
	cdb[0] = 0x01;
	run(e, 0, 0, cdb, 6, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	assert_int_equal(r.sense[0], SCSI_SENSE_DESC);
	assert_int_equal(r.sense_len, 8);
	/* Field pointers travel in a sense-key specific descriptor. */
	cdb[0] = SCSI_INQUIRY;
	cdb[1] = 0x02;
	run(e, 0, 0, cdb, 6, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	assert_int_equal(r.sense_len, 16);
	assert_int_equal(r.sense[8], 0x02);
	assert_int_equal(r.sense[12] & 0x80, 0x80);
	/* A reset restores the default: fixed format. */
	umdev_scsi_reset(e->t, UMDEV_SCSI_RESET_LU, 0, 0);
	run(e, 0, 0, cdb, 6, NULL, 0, NULL, 0, &r);
	assert_int_equal(r.sense[0], SCSI_SENSE_FIXED);
	clear_ua(e, 0, 0);
}

static void test_mode_sense(void **state)
{
	struct env *e = *state;
	uint8_t cdb6[6] = { SCSI_MODE_SENSE_6, 0, 0x3f, 0, 255 };
	uint8_t cdb10[10] = { SCSI_MODE_SENSE_10, 0x10, 0x08, 0, 0, 0, 0, 1, 0 };
	uint8_t b[256];
	struct res r;

	clear_ua(e, 0, 0);
	assert_int_equal(run(e, 0, 0, cdb6, 6, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
	assert_int_equal(b[0], 4 + 8 + 20 + 12 - 1);
	assert_int_equal(b[2], 0x10); /* DPOFUA, not write protected */
	assert_int_equal(b[3], 8);
	assert_int_equal(umdev_scsi_get32(b + 4), 2048); /* 1M / 512 */
	assert_int_equal(umdev_scsi_get32(b + 8) & 0xffffff, 512);
	assert_int_equal(b[12], 0x08);
	assert_int_equal(b[32], 0x0a);
	/* Read-only LU: WP. */
	clear_ua(e, 0, 1);
	run(e, 0, 1, cdb6, 6, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(b[2] & 0x80, 0x80);
	/* MODE SENSE(10), long LBA block descriptor, caching page only. */
	assert_int_equal(run(e, 0, 0, cdb10, 10, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
	assert_int_equal(umdev_scsi_get16(b), 8 + 16 + 20 - 2);
	assert_int_equal(umdev_scsi_get16(b + 6), 16);
	assert_int_equal(umdev_scsi_get64(b + 8), 2048);
	assert_int_equal(b[24], 0x08);
	/* Changeable values: WCE only. */
	cdb6[1] = 0x08; /* DBD */
	cdb6[2] = 0x40 | 0x08;
	run(e, 0, 0, cdb6, 6, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(b[3], 0);
	assert_int_equal(b[4 + 2], 0x04);
	/* Saved values: not supported. Unknown page, subpage: invalid field. */
	cdb6[2] = 0xc8;
	run(e, 0, 0, cdb6, 6, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_SAVING_PARAMS_UNSUP);
	cdb6[2] = 0x1c;
	run(e, 0, 0, cdb6, 6, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	cdb6[2] = 0x08;
	cdb6[3] = 1;
	run(e, 0, 0, cdb6, 6, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* Allocation length cuts it. */
	cdb6[3] = 0;
	cdb6[4] = 4;
	run(e, 0, 0, cdb6, 6, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(r.in_xfer, 4);
}

static void test_mode_select(void **state)
{
	struct env *e = *state;
	uint8_t ms6[6] = { SCSI_MODE_SELECT_6, 0x10, 0, 0, 0 };
	uint8_t sense6[6] = { SCSI_MODE_SENSE_6, 0x08, 0x08, 0, 255 };
	uint8_t p[64], b[64];
	struct res r;

	clear_ua(e, 0, 0);
	run(e, 0, 0, sense6, 6, NULL, 0, b, sizeof(b), &r);
	/* Turn WCE off: header + caching page as read, minus the bit. */
	memcpy(p, b, 4 + 20);
	p[0] = 0;
	p[4 + 2] &= ~0x04;
	ms6[4] = 24;
	assert_int_equal(run(e, 0, 0, ms6, 6, p, 24, NULL, 0, &r), SCSI_STATUS_GOOD);
	assert_int_equal(r.out_xfer, 24);
	run(e, 0, 0, sense6, 6, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(b[4 + 2] & 0x04, 0);
	/* And on again. */
	p[4 + 2] |= 0x04;
	assert_int_equal(run(e, 0, 0, ms6, 6, p, 24, NULL, 0, &r), SCSI_STATUS_GOOD);
	run(e, 0, 0, sense6, 6, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(b[4 + 2] & 0x04, 0x04);
	/* A bit that is not changeable: rejected, nothing applied. */
	p[4 + 2] = 0x01; /* RCD, WCE off */
	run(e, 0, 0, ms6, 6, p, 24, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAM);
	assert_int_equal(r.sense[17], 4 + 2);
	run(e, 0, 0, sense6, 6, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(b[4 + 2] & 0x04, 0x04);
	/* Wrong page length; unknown page; page running past the list. */
	memcpy(p, b, 24);
	p[0] = 0;
	p[5] = 0x10;
	run(e, 0, 0, ms6, 6, p, 24, NULL, 0, &r);
	assert_int_equal(r.status, SCSI_STATUS_CHECK_CONDITION);
	p[5] = 0x12;
	p[4] = 0x1c;
	run(e, 0, 0, ms6, 6, p, 24, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAM);
	p[4] = 0x08;
	ms6[4] = 10;
	run(e, 0, 0, ms6, 6, p, 10, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
	/* A block descriptor changing the block size. */
	{
		uint8_t q[12] = { 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x10, 0 };

		ms6[4] = 12;
		run(e, 0, 0, ms6, 6, q, 12, NULL, 0, &r);
		assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAM);
		q[10] = 0x02; /* 512: fine */
		assert_int_equal(run(e, 0, 0, ms6, 6, q, 12, NULL, 0, &r), SCSI_STATUS_GOOD);
	}
	/* SP and PF=0 are invalid fields in the CDB; a list longer than the buffer overruns. */
	ms6[1] = 0x11;
	run(e, 0, 0, ms6, 6, p, 24, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	ms6[1] = 0x00;
	run(e, 0, 0, ms6, 6, p, 24, NULL, 0, &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	ms6[1] = 0x10;
	ms6[4] = 24;
	run(e, 0, 0, ms6, 6, p, 20, NULL, 0, &r);
	assert_true(r.overrun);
}

static void test_report_opcodes(void **state)
{
	struct env *e = *state;
	uint8_t cdb[12] = { SCSI_MAINTENANCE_IN, SCSI_MI_REPORT_SUPPORTED_OPCODES, 0, 0, 0, 0,
			    0, 0, 4, 0 };
	uint8_t b[1024];
	struct res r;
	bool saw_read16 = false;

	clear_ua(e, 0, 0);
	assert_int_equal(run(e, 0, 0, cdb, 12, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
	assert_true(umdev_scsi_get32(b) >= 8 * 20);
	for (unsigned i = 0; i < umdev_scsi_get32(b) / 8; i++)
		if (b[4 + 8 * i] == SCSI_READ_16 && umdev_scsi_get16(b + 4 + 8 * i + 6) == 16)
			saw_read16 = true;
	assert_true(saw_read16);
	/* One command: supported, with its usage map. */
	cdb[2] = 1;
	cdb[3] = SCSI_WRITE_10;
	run(e, 0, 0, cdb, 12, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(r.status, SCSI_STATUS_GOOD);
	assert_int_equal(b[1] & 7, 3);
	assert_int_equal(umdev_scsi_get16(b + 2), 10);
	assert_int_equal(b[4], SCSI_WRITE_10);
	cdb[3] = 0x01;
	run(e, 0, 0, cdb, 12, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(b[1] & 7, 1);
	/* With a service action. */
	cdb[2] = 2;
	cdb[3] = SCSI_SERVICE_ACTION_IN_16;
	cdb[5] = SCSI_SAI_READ_CAPACITY_16;
	run(e, 0, 0, cdb, 12, NULL, 0, b, sizeof(b), &r);
	assert_int_equal(b[1] & 7, 3);
	assert_int_equal(umdev_scsi_get16(b + 2), 16);
	/* Option 1 for a command that has service actions: invalid. */
	cdb[2] = 1;
	run(e, 0, 0, cdb, 12, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	cdb[2] = 0x80;
	run(e, 0, 0, cdb, 12, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void test_start_stop(void **state)
{
	struct env *e = *state;
	uint8_t ssu[6] = { SCSI_START_STOP_UNIT, 0, 0, 0, 0 }, tur[6] = { 0 };
	uint8_t rd[10] = { SCSI_READ_10, 0, 0, 0, 0, 0, 0, 0, 1 }, b[512];
	struct res r;

	clear_ua(e, 0, 0);
	assert_int_equal(run(e, 0, 0, ssu, 6, NULL, 0, NULL, 0, &r), SCSI_STATUS_GOOD);
	run(e, 0, 0, tur, 6, NULL, 0, NULL, 0, &r);
	assert_check(&r, SCSI_SK_NOT_READY, SCSI_ASC_LUN_NOT_READY_START_NEEDED);
	run(e, 0, 0, rd, 10, NULL, 0, b, sizeof(b), &r);
	assert_check(&r, SCSI_SK_NOT_READY, SCSI_ASC_LUN_NOT_READY_START_NEEDED);
	ssu[4] = 1;
	assert_int_equal(run(e, 0, 0, ssu, 6, NULL, 0, NULL, 0, &r), SCSI_STATUS_GOOD);
	assert_int_equal(run(e, 0, 0, tur, 6, NULL, 0, NULL, 0, &r), SCSI_STATUS_GOOD);
	assert_int_equal(run(e, 0, 0, rd, 10, NULL, 0, b, sizeof(b), &r), SCSI_STATUS_GOOD);
}

static void test_lu_add_errors(void **state)
{
	struct env *e = *state;
	struct umdev_scsi_lu_opts o = { .backend = "ram:64K" };
	char msg[128];
	struct umdev_scsi_lu_info info;
	unsigned n = 0;

	assert_int_equal(umdev_scsi_lu_add(e->t, 0, 0, &o, msg, sizeof(msg)), -EEXIST);
	assert_int_equal(umdev_scsi_lu_add(e->t, 256, 0, &o, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(umdev_scsi_lu_add(e->t, 0, 16384, &o, msg, sizeof(msg)), -EINVAL);
	o.backend = "bogus:1";
	assert_true(umdev_scsi_lu_add(e->t, 0, 9, &o, msg, sizeof(msg)) < 0);
	assert_false(umdev_scsi_lu_exists(e->t, 0, 9));
	for (unsigned i = 0; i < UMDEV_SCSI_MAX_LUS; i++)
		if (umdev_scsi_lu_info(e->t, i, &info) == 0) {
			n++;
			if (info.target == 0 && info.lun == 300) {
				assert_string_equal(info.backend, "ram:64K");
				assert_int_equal(info.size, 65536);
			}
		}
	assert_int_equal(n, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inquiry_standard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vpd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_luns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unit_attention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_opcode_and_sense_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_sense, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_select, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_opcodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lu_add_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
