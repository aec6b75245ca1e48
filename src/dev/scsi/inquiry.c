/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * INQUIRY (standard data and the VPD pages a Linux or Windows initiator
 * asks for) and REPORT SUPPORTED OPERATION CODES.
 */
#include <string.h>

#include "scsi_internal.h"

#define VENDOR "UMDEV   " /* 8 bytes, T10 vendor identification */
#define PRODUCT "VIRTUAL DISK    " /* 16 bytes */
#define REVISION "0001"

/* FNV-1a: spreads names into identifiers; stability matters, not strength. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void scsi_lu_make_ids(umdev_scsi_lu *lu, const char *tname)
{
	uint64_t h = fnv1a(0xcbf29ce484222325ull, tname, strlen(tname));
	uint8_t addr[3] = { lu->target, lu->lun >> 8, lu->lun & 0xff };
	uint64_t h2;

	h = fnv1a(h, addr, sizeof(addr));
	h = fnv1a(h, lu->serial, strlen(lu->serial));
	h2 = fnv1a(h, "umdev", 5);
	/*
	 * NAA 6 (IEEE registered extended): 4-bit NAA, 24-bit OUI, 100 bits
	 * vendor specific. We use a locally administered OUI-like value with
	 * the hash in the vendor-specific bits, so ids are stable per address.
	 */
	lu->naa[0] = 0x60 | 0x02;
	lu->naa[1] = 0x55;
	lu->naa[2] = 0xd0;
	lu->naa[3] = 0x00 | (uint8_t)(h >> 60);
	umdev_scsi_put32(lu->naa + 4, (uint32_t)(h >> 28));
	umdev_scsi_put64(lu->naa + 8, h2);
}

static size_t std_inquiry(const umdev_scsi_lu *lu, uint8_t *b)
{
	size_t n = 66;

	memset(b, 0, n);
	b[0] = SCSI_TYPE_DISK;
	b[2] = 0x06; /* SPC-4 */
	b[3] = 0x12; /* HISUP, response data format 2 */
	b[4] = n - 5;
	b[7] = 0x02; /* CMDQUE: tagged queueing */
	memcpy(b + 8, VENDOR, 8);
	memcpy(b + 16, PRODUCT, 16);
	memcpy(b + 32, REVISION, 4);
	/* Version descriptors: SAM-5, SPC-4, SBC-3. */
	umdev_scsi_put16(b + 58, 0x00a0);
	umdev_scsi_put16(b + 60, 0x0460);
	umdev_scsi_put16(b + 62, 0x04c0);
	return n;
}

static size_t vpd_device_id(const umdev_scsi_lu *lu, uint8_t *b)
{
	size_t n = 4, slen = strlen(lu->serial);

	/* NAA designator, binary, associated with the LU. */
	b[n++] = 0x01;
	b[n++] = 0x03;
	b[n++] = 0;
	b[n++] = 16;
	memcpy(b + n, lu->naa, 16);
	n += 16;
	/* T10 vendor ID designator, ASCII: vendor then serial. */
	b[n++] = 0x02;
	b[n++] = 0x01;
	b[n++] = 0;
	b[n++] = 8 + slen;
	memcpy(b + n, VENDOR, 8);
	memcpy(b + n + 8, lu->serial, slen);
	n += 8 + slen;
	return n;
}

static size_t vpd_block_limits(const umdev_scsi_lu *lu, uint8_t *b)
{
	uint32_t gran = lu->info.physical_block_size > lu->bs ? lu->info.physical_block_size / lu->bs
							       : 1;

	b[4] = 0x01; /* WSNZ: WRITE SAME with zero blocks is refused */
	umdev_scsi_put16(b + 6, gran);
	umdev_scsi_put32(b + 8, SCSI_MAX_XFER_BLOCKS);
	/* Optimal: 1 MiB, well under what a virtio driver's max_sectors allows. */
	umdev_scsi_put32(b + 12, (1u << 20) / lu->bs);
	if (lu->info.can_discard && !lu->readonly) {
		umdev_scsi_put32(b + 20, SCSI_MAX_UNMAP_BLOCKS);
		umdev_scsi_put32(b + 24, SCSI_MAX_UNMAP_DESC);
		umdev_scsi_put32(b + 28, gran);
	}
	umdev_scsi_put64(b + 36, SCSI_MAX_WRITE_SAME_BLOCKS);
	return 64;
}

static size_t vpd_lbp(const umdev_scsi_lu *lu, uint8_t *b)
{
	if (lu->info.can_discard && !lu->readonly) {
		b[5] = 0x80 | 0x40 | 0x20; /* LBPU, LBPWS, LBPWS10 */
		b[6] = 0x02; /* thin provisioned */
	}
	return 8;
}

static const uint8_t vpd_pages[] = {
	SCSI_VPD_SUPPORTED_PAGES, SCSI_VPD_UNIT_SERIAL,	   SCSI_VPD_DEVICE_ID,
	SCSI_VPD_BLOCK_LIMITS,	  SCSI_VPD_BLOCK_DEV_CHARS, SCSI_VPD_LB_PROVISIONING,
};

void scsi_inquiry(struct umdev_scsi_cmd *cmd, const umdev_scsi_lu *lu)
{
	const uint8_t *cdb = cmd->cdb;
	uint16_t alloc = umdev_scsi_get16(cdb + 3);
	uint8_t b[256];
	size_t n;

	if (cdb[1] & 0x02) { /* CMDDT is obsolete */
		scsi_fail_cdb(cmd, 1, 1);
		return;
	}
	memset(b, 0, sizeof(b));
	if (!(cdb[1] & 0x01)) {
		if (cdb[2]) {
			scsi_fail_cdb(cmd, 2, -1);
			return;
		}
		n = std_inquiry(lu, b);
		scsi_reply(cmd, b, n, alloc);
		return;
	}
	b[0] = SCSI_TYPE_DISK;
	b[1] = cdb[2];
	switch (cdb[2]) {
	case SCSI_VPD_SUPPORTED_PAGES:
		memcpy(b + 4, vpd_pages, sizeof(vpd_pages));
		n = 4 + sizeof(vpd_pages);
		break;
	case SCSI_VPD_UNIT_SERIAL:
		n = strlen(lu->serial);
		memcpy(b + 4, lu->serial, n);
		n += 4;
		break;
	case SCSI_VPD_DEVICE_ID:
		n = vpd_device_id(lu, b);
		break;
	case SCSI_VPD_BLOCK_LIMITS:
		n = vpd_block_limits(lu, b);
		break;
	case SCSI_VPD_BLOCK_DEV_CHARS:
		umdev_scsi_put16(b + 4, 0x0001); /* non-rotating medium */
		n = 64;
		break;
	case SCSI_VPD_LB_PROVISIONING:
		n = vpd_lbp(lu, b);
		break;
	default:
		scsi_fail_cdb(cmd, 2, -1);
		return;
	}
	umdev_scsi_put16(b + 2, n - 4);
	scsi_reply(cmd, b, n, alloc);
}

/* ---- REPORT SUPPORTED OPERATION CODES ---- */

struct opcode_desc {
	uint8_t op;
	uint16_t sa;
	bool has_sa;
	uint8_t len;
	/* CDB usage map (SPC-4 6.35.3): bits the command looks at, after byte 0. */
	uint8_t usage[15];
};

static const struct opcode_desc opcodes[] = {
	{ SCSI_TEST_UNIT_READY, 0, false, 6, { 0, 0, 0, 0, 0x07 } },
	{ SCSI_REQUEST_SENSE, 0, false, 6, { 0x01, 0, 0, 0xff, 0x07 } },
	{ SCSI_READ_6, 0, false, 6, { 0x1f, 0xff, 0xff, 0xff, 0x07 } },
	{ SCSI_WRITE_6, 0, false, 6, { 0x1f, 0xff, 0xff, 0xff, 0x07 } },
	{ SCSI_INQUIRY, 0, false, 6, { 0x01, 0xff, 0xff, 0xff, 0x07 } },
	{ SCSI_MODE_SELECT_6, 0, false, 6, { 0x11, 0, 0, 0xff, 0x07 } },
	{ SCSI_MODE_SENSE_6, 0, false, 6, { 0x08, 0xff, 0xff, 0xff, 0x07 } },
	{ SCSI_START_STOP_UNIT, 0, false, 6, { 0x01, 0, 0x0f, 0xf3, 0x07 } },
	{ SCSI_READ_CAPACITY_10, 0, false, 10, { 0, 0, 0, 0, 0, 0, 0, 0, 0x07 } },
	{ SCSI_READ_10, 0, false, 10, { 0x18, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0x07 } },
	{ SCSI_WRITE_10, 0, false, 10, { 0x18, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0x07 } },
	{ SCSI_VERIFY_10, 0, false, 10, { 0x06, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0x07 } },
	{ SCSI_SYNCHRONIZE_CACHE_10, 0, false, 10,
	  { 0x02, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0x07 } },
	{ SCSI_WRITE_SAME_10, 0, false, 10, { 0x08, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0x07 } },
	{ SCSI_UNMAP, 0, false, 10, { 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07 } },
	{ SCSI_MODE_SELECT_10, 0, false, 10, { 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07 } },
	{ SCSI_MODE_SENSE_10, 0, false, 10, { 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0x07 } },
	{ SCSI_READ_16, 0, false, 16,
	  { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07 } },
	{ SCSI_WRITE_16, 0, false, 16,
	  { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07 } },
	{ SCSI_VERIFY_16, 0, false, 16,
	  { 0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07 } },
	{ SCSI_SYNCHRONIZE_CACHE_16, 0, false, 16,
	  { 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07 } },
	{ SCSI_WRITE_SAME_16, 0, false, 16,
	  { 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07 } },
	{ SCSI_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16, true, 16,
	  { 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07 } },
	{ SCSI_REPORT_LUNS, 0, false, 12, { 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07 } },
	{ SCSI_MAINTENANCE_IN, SCSI_MI_REPORT_SUPPORTED_OPCODES, true, 12,
	  { 0x1f, 0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07 } },
	{ SCSI_READ_12, 0, false, 12,
	  { 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07 } },
	{ SCSI_WRITE_12, 0, false, 12,
	  { 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07 } },
};

#define N_OPCODES (sizeof(opcodes) / sizeof(opcodes[0]))

void scsi_report_opcodes(struct umdev_scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint8_t options = cdb[2] & 0x07, req_op = cdb[3];
	uint16_t req_sa = umdev_scsi_get16(cdb + 4);
	uint32_t alloc = umdev_scsi_get32(cdb + 6);
	uint8_t b[4 + 8 * N_OPCODES];
	const struct opcode_desc *d = NULL;
	size_t n;

	if (cdb[2] & 0x80) { /* RCTD: we keep no command timeouts to report */
		scsi_fail_cdb(cmd, 2, 7);
		return;
	}
	memset(b, 0, sizeof(b));
	if (options == 0) {
		n = 4;
		for (unsigned i = 0; i < N_OPCODES; i++, n += 8) {
			b[n] = opcodes[i].op;
			umdev_scsi_put16(b + n + 2, opcodes[i].sa);
			b[n + 5] = opcodes[i].has_sa ? 0x01 : 0;
			umdev_scsi_put16(b + n + 6, opcodes[i].len);
		}
		umdev_scsi_put32(b, n - 4);
		scsi_reply(cmd, b, n, alloc);
		return;
	}
	if (options > 3) {
		scsi_fail_cdb(cmd, 2, 0);
		return;
	}
	for (unsigned i = 0; i < N_OPCODES; i++) {
		if (opcodes[i].op != req_op)
			continue;
		if (options == 1 && opcodes[i].has_sa) {
			/* This opcode needs a service action: option 1 is not allowed. */
			scsi_fail_cdb(cmd, 2, 0);
			return;
		}
		if (options == 2 && !opcodes[i].has_sa) {
			scsi_fail_cdb(cmd, 2, 0);
			return;
		}
		if (!opcodes[i].has_sa || opcodes[i].sa == req_sa) {
			d = &opcodes[i];
			break;
		}
	}
	if (!d) {
		b[1] = 0x01; /* not supported */
		scsi_reply(cmd, b, 4, alloc);
		return;
	}
	b[1] = 0x03; /* supported, conforming to the standard */
	umdev_scsi_put16(b + 2, d->len);
	b[4] = d->op;
	memcpy(b + 5, d->usage, d->len - 1);
	scsi_reply(cmd, b, 4 + d->len, alloc);
}
