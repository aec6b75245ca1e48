/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MODE SENSE(6/10) and MODE SELECT(6/10) with the caching page (WCE is the
 * one changeable bit) and the control page (D_SENSE is the one changeable
 * bit). Parameters are not savable.
 */
#include <string.h>

#include "scsi_internal.h"

#define CACHING_LEN 20 /* page 0x08, header included */
#define CONTROL_LEN 12 /* page 0x0a, header included */

enum pc { PC_CURRENT, PC_CHANGEABLE, PC_DEFAULT, PC_SAVED };

void scsi_mode_defaults(umdev_scsi_lu *lu)
{
	/* Without a volatile cache there is nothing to flush: report write-through. */
	atomic_store(&lu->wce, lu->info.volatile_cache);
	atomic_store(&lu->d_sense, false);
}

static size_t caching_page(const umdev_scsi_lu *lu, enum pc pc, uint8_t *b)
{
	memset(b, 0, CACHING_LEN);
	b[0] = SCSI_MODE_PAGE_CACHING;
	b[1] = CACHING_LEN - 2;
	if (pc == PC_CHANGEABLE)
		b[2] = 0x04;
	else if (pc == PC_DEFAULT ? lu->info.volatile_cache : atomic_load(&lu->wce))
		b[2] = 0x04;
	return CACHING_LEN;
}

static size_t control_page(const umdev_scsi_lu *lu, enum pc pc, uint8_t *b)
{
	memset(b, 0, CONTROL_LEN);
	b[0] = SCSI_MODE_PAGE_CONTROL;
	b[1] = CONTROL_LEN - 2;
	if (pc == PC_CHANGEABLE) {
		b[2] = 0x04;
		return CONTROL_LEN;
	}
	if (pc == PC_CURRENT && atomic_load(&lu->d_sense))
		b[2] |= 0x04;
	b[3] = 0x10; /* queue algorithm modifier 1: unrestricted reordering */
	umdev_scsi_put16(b + 8, 0xffff); /* busy timeout: unlimited */
	return CONTROL_LEN;
}

void scsi_mode_sense(struct umdev_scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	const umdev_scsi_lu *lu = cmd->p.lu;
	bool ten = cdb[0] == SCSI_MODE_SENSE_10;
	bool dbd = cdb[1] & 0x08, llbaa = ten && (cdb[1] & 0x10);
	enum pc pc = cdb[2] >> 6;
	uint8_t page = cdb[2] & 0x3f, subpage = cdb[3];
	size_t alloc = ten ? umdev_scsi_get16(cdb + 7) : cdb[4];
	size_t hdr = ten ? 8 : 4, bdlen = dbd ? 0 : llbaa ? 16 : 8, n;
	uint8_t b[8 + 16 + CACHING_LEN + CONTROL_LEN];

	if (pc == PC_SAVED) {
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_SAVING_PARAMS_UNSUP);
		return;
	}
	if (subpage != 0 && !(page == SCSI_MODE_PAGE_ALL && subpage == 0xff)) {
		scsi_fail_cdb(cmd, 3, -1);
		return;
	}
	if (page != SCSI_MODE_PAGE_ALL && page != SCSI_MODE_PAGE_CACHING &&
	    page != SCSI_MODE_PAGE_CONTROL) {
		scsi_fail_cdb(cmd, 2, 5);
		return;
	}
	memset(b, 0, sizeof(b));
	n = hdr;
	if (bdlen == 8) {
		uint64_t nblocks = scsi_lu_nblocks(lu);

		umdev_scsi_put32(b + n, nblocks > 0xffffffffull ? 0xffffffff : (uint32_t)nblocks);
		umdev_scsi_put32(b + n + 4, lu->bs & 0xffffff);
	} else if (bdlen == 16) {
		umdev_scsi_put64(b + n, scsi_lu_nblocks(lu));
		umdev_scsi_put32(b + n + 12, lu->bs);
	}
	n += bdlen;
	if (page == SCSI_MODE_PAGE_CACHING || page == SCSI_MODE_PAGE_ALL)
		n += caching_page(lu, pc, b + n);
	if (page == SCSI_MODE_PAGE_CONTROL || page == SCSI_MODE_PAGE_ALL)
		n += control_page(lu, pc, b + n);

	/* Device-specific parameter: WP, and DPOFUA since we honour FUA. */
	if (ten) {
		umdev_scsi_put16(b, n - 2);
		b[3] = (lu->readonly ? 0x80 : 0) | 0x10;
		b[4] = llbaa ? 0x01 : 0;
		umdev_scsi_put16(b + 6, bdlen);
	} else {
		b[0] = n - 1;
		b[2] = (lu->readonly ? 0x80 : 0) | 0x10;
		b[3] = bdlen;
	}
	scsi_reply(cmd, b, n, alloc);
}

/*
 * Check (apply=false) or apply one mode page from MODE SELECT. Returns -1
 * when fine, or the offset of the first bad byte within the page.
 */
static int select_page(umdev_scsi_lu *lu, const uint8_t *p, size_t len, bool apply)
{
	uint8_t cur[CACHING_LEN], chg[CACHING_LEN];
	size_t want;

	switch (p[0] & 0x3f) {
	case SCSI_MODE_PAGE_CACHING:
		want = caching_page(lu, PC_CURRENT, cur);
		caching_page(lu, PC_CHANGEABLE, chg);
		break;
	case SCSI_MODE_PAGE_CONTROL:
		want = control_page(lu, PC_CURRENT, cur);
		control_page(lu, PC_CHANGEABLE, chg);
		break;
	default:
		return 0;
	}
	if (len != want)
		return 1;
	/* Byte 0 carries PS (ignored on select); only changeable bits may differ. */
	for (size_t i = 2; i < len; i++)
		if ((p[i] ^ cur[i]) & ~chg[i])
			return (int)i;
	if (!apply)
		return -1;
	if ((p[0] & 0x3f) == SCSI_MODE_PAGE_CACHING)
		atomic_store(&lu->wce, (p[2] & 0x04) != 0);
	else
		atomic_store(&lu->d_sense, (p[2] & 0x04) != 0);
	return -1;
}

void scsi_mode_select(struct umdev_scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	umdev_scsi_lu *lu = cmd->p.lu;
	bool ten = cdb[0] == SCSI_MODE_SELECT_10;
	size_t plen = ten ? umdev_scsi_get16(cdb + 7) : cdb[4];
	size_t hdr = ten ? 8 : 4, bdlen, off;
	uint8_t p[512];

	if (cdb[1] & 0x01) { /* SP: nothing is savable */
		scsi_fail_cdb(cmd, 1, 0);
		return;
	}
	if (!(cdb[1] & 0x10)) { /* PF=0: vendor page format, which we do not have */
		scsi_fail_cdb(cmd, 1, 4);
		return;
	}
	if (plen == 0) {
		scsi_good(cmd);
		return;
	}
	if (plen > sizeof(p)) {
		scsi_fail_cdb(cmd, ten ? 7 : 4, -1);
		return;
	}
	if (!scsi_get_params(cmd, p, plen))
		return;
	if (plen < hdr) {
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
		return;
	}
	bdlen = ten ? umdev_scsi_get16(p + 6) : p[3];
	if ((bdlen != 0 && bdlen != 8 && bdlen != 16) || (bdlen == 16 && !(ten && (p[4] & 1)))) {
		scsi_fail_param(cmd, ten ? 6 : 3);
		return;
	}
	if (hdr + bdlen > plen) {
		scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
		return;
	}
	/* A block descriptor may restate our block length, not change it. */
	if (bdlen) {
		uint32_t bl = bdlen == 8 ? umdev_scsi_get32(p + hdr + 4) & 0xffffff
					 : umdev_scsi_get32(p + hdr + 12);

		if (bl != 0 && bl != lu->bs) {
			scsi_fail_param(cmd, hdr + (bdlen == 8 ? 5 : 12));
			return;
		}
	}
	/* Two passes: check every page, then apply, so a bad page changes nothing. */
	for (int apply = 0; apply < 2; apply++) {
		for (off = hdr + bdlen; off < plen;) {
			size_t len;
			int bad;

			if (plen - off < 2 || (p[off] & 0x40)) { /* no SPF subpages here */
				scsi_fail_param(cmd, off);
				return;
			}
			len = 2 + p[off + 1];
			if (len > plen - off) {
				scsi_fail(cmd, SCSI_SK_ILLEGAL_REQUEST,
					  SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
				return;
			}
			bad = select_page(lu, p + off, len, apply);
			if (bad >= 0) {
				scsi_fail_param(cmd, off + bad);
				return;
			}
			off += len;
		}
	}
	scsi_good(cmd);
}
