/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Data pointers: a command's PRP entries or SGL descriptors turned into host
 * iovecs over guest memory. Every address and length the guest gives is
 * checked against the DMA map; nothing here ever yields a pointer outside
 * guest memory. The walk is bounded (NVME_MAX_IOV iovecs, NVME_MAX_SGL_DESC
 * descriptors, transfers of at most NVME_MAX_XFER bytes) so a looping PRP or
 * SGL chain costs a bounded amount of work.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nvme_internal.h"

struct walk {
	const umdev_as_map *m;
	unsigned prot;
	struct iovec *iov;
	unsigned max;
	int cnt;
};

/* Append guest [addr, addr + len) to the iovecs, merging host-contiguous pieces. */
static uint16_t walk_add(struct walk *w, uint64_t addr, uint64_t len)
{
	struct iovec tmp[4];
	int got;

	if (!len)
		return 0;
	got = umdev_as_map_to_iov(w->m, addr, len, w->prot, tmp, 4);
	if (got < 0)
		return NVME_GEN(NVME_SC_DATA_XFER_ERROR);
	for (int i = 0; i < got; i++) {
		struct iovec *last = w->cnt ? &w->iov[w->cnt - 1] : NULL;

		if (last && (uint8_t *)last->iov_base + last->iov_len == tmp[i].iov_base) {
			last->iov_len += tmp[i].iov_len;
			continue;
		}
		if ((unsigned)w->cnt >= w->max)
			return NVME_GEN(NVME_SC_DATA_XFER_ERROR);
		w->iov[w->cnt++] = tmp[i];
	}
	return 0;
}

static uint16_t walk_prp(struct walk *w, const struct nvme_sqe *cmd, uint64_t len)
{
	uint64_t prp1 = cmd->dptr.prp.prp1, prp2 = cmd->dptr.prp.prp2;
	uint64_t first, rest, list;
	uint16_t st;

	if (prp1 & 3)
		return NVME_GEN(NVME_SC_INVALID_PRP_OFFSET);
	first = NVME_PAGE - (prp1 & (NVME_PAGE - 1));
	if (first > len)
		first = len;
	st = walk_add(w, prp1, first);
	if (st)
		return st;
	rest = len - first;
	if (!rest)
		return 0;
	if (rest <= NVME_PAGE) {
		/* PRP2 is the second (and last) data page. */
		if (prp2 & (NVME_PAGE - 1))
			return NVME_GEN(NVME_SC_INVALID_PRP_OFFSET);
		return walk_add(w, prp2, rest);
	}
	/* PRP2 points to a PRP list; its last entry may chain to the next list. */
	list = prp2;
	if (list & 7)
		return NVME_GEN(NVME_SC_INVALID_PRP_OFFSET);
	for (unsigned lists = 0; rest; lists++) {
		uint64_t ents[NVME_PAGE / 8];
		unsigned n = (NVME_PAGE - (list & (NVME_PAGE - 1))) / 8, need;

		if (lists > NVME_MAX_IOV)
			return NVME_GEN(NVME_SC_DATA_XFER_ERROR);
		need = (unsigned)((rest + NVME_PAGE - 1) / NVME_PAGE);
		/* Read only the entries this transfer needs (+1 for a chain pointer). */
		if (need < n)
			n = need;
		if (umdev_as_map_read(w->m, list, ents, (size_t)n * 8) < 0)
			return NVME_GEN(NVME_SC_DATA_XFER_ERROR);
		for (unsigned i = 0; i < n && rest; i++) {
			uint64_t e = ents[i], chunk;

			if (i == n - 1 && need > n) {
				/* Last slot of a full list page: the next list. */
				if (e & 7)
					return NVME_GEN(NVME_SC_INVALID_PRP_OFFSET);
				list = e;
				break;
			}
			if (e & (NVME_PAGE - 1))
				return NVME_GEN(NVME_SC_INVALID_PRP_OFFSET);
			chunk = rest < NVME_PAGE ? rest : NVME_PAGE;
			st = walk_add(w, e, chunk);
			if (st)
				return st;
			rest -= chunk;
		}
	}
	return 0;
}

static uint16_t sgl_check(const struct nvme_sgl_desc *d)
{
	unsigned sub = d->type & 0xf;

	if (sub != NVME_SGL_SUBTYPE_ADDRESS)
		return NVME_GEN(NVME_SC_SGL_DESC_TYPE_INVALID);
	switch (d->type >> 4) {
	case NVME_SGL_TYPE_DATA_BLOCK:
	case NVME_SGL_TYPE_SEGMENT:
	case NVME_SGL_TYPE_LAST_SEGMENT:
		return 0;
	default: /* bit bucket and keyed descriptors are not offered */
		return NVME_GEN(NVME_SC_SGL_DESC_TYPE_INVALID);
	}
}

static uint16_t walk_sgl(struct walk *w, const struct nvme_sqe *cmd, uint64_t len)
{
	struct nvme_sgl_desc d = cmd->dptr.sgl;
	uint64_t rest = len, seg_addr = 0, seg_left = 0;
	unsigned walked = 0;
	bool last_seg = false;
	uint16_t st;

	for (;;) {
		unsigned type = d.type >> 4;

		st = sgl_check(&d);
		if (st)
			return st;
		if (type == NVME_SGL_TYPE_DATA_BLOCK) {
			uint64_t chunk = d.length < rest ? d.length : rest;

			st = walk_add(w, d.addr, chunk);
			if (st)
				return st;
			rest -= chunk;
		} else {
			/*
			 * A segment descriptor must be the last of its segment,
			 * and a last segment holds none.
			 */
			if (seg_left || last_seg)
				return NVME_GEN(NVME_SC_INVALID_SGL_SEG_DESC);
			if (!d.length || d.length % sizeof(d))
				return NVME_GEN(NVME_SC_INVALID_SGL_SEG_DESC);
			seg_addr = d.addr;
			seg_left = d.length / sizeof(d);
			last_seg = type == NVME_SGL_TYPE_LAST_SEGMENT;
		}
		if (!rest)
			return 0;
		if (!seg_left)
			return NVME_GEN(NVME_SC_DATA_SGL_LEN_INVALID);
		if (++walked > NVME_MAX_SGL_DESC)
			return NVME_GEN(NVME_SC_INVALID_NUM_SGL_DESC);
		if (umdev_as_map_read(w->m, seg_addr, &d, sizeof(d)) < 0)
			return NVME_GEN(NVME_SC_DATA_XFER_ERROR);
		seg_addr += sizeof(d);
		seg_left--;
	}
}

uint16_t nvme_map_data(const umdev_as_map *m, const struct nvme_sqe *cmd, uint64_t len,
		       unsigned prot, struct iovec *iov, unsigned max_iov, int *iovcnt)
{
	struct walk w = { .m = m, .prot = prot, .iov = iov, .max = max_iov };
	unsigned psdt = (cmd->flags & NVME_CMD_PSDT_MASK) >> NVME_CMD_PSDT_SHIFT;
	uint16_t st;

	*iovcnt = 0;
	if (len > NVME_MAX_XFER)
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	if (!len)
		return 0;
	if (psdt == NVME_PSDT_PRP)
		st = walk_prp(&w, cmd, len);
	else if (psdt == NVME_PSDT_SGL_MPTR_CONTIG)
		st = walk_sgl(&w, cmd, len);
	else
		st = NVME_GEN(NVME_SC_INVALID_FIELD);
	if (!st)
		*iovcnt = w.cnt;
	return st;
}

static uint16_t copy_guest(struct nvme_lp *lp, const struct nvme_sqe *cmd, void *buf,
			   uint64_t len, bool to_guest)
{
	struct iovec *iov;
	uint8_t *p = buf;
	uint16_t st;
	int cnt;

	if (nvme_ensure_map(lp) < 0)
		return NVME_GEN(NVME_SC_DATA_XFER_ERROR);
	iov = calloc(NVME_MAX_IOV, sizeof(*iov));
	if (!iov)
		return NVME_GEN(NVME_SC_INTERNAL);
	st = nvme_map_data(lp->map, cmd, len, to_guest ? UMDEV_MEM_WRITE : UMDEV_MEM_READ, iov,
			   NVME_MAX_IOV, &cnt);
	for (int i = 0; !st && i < cnt; i++) {
		if (to_guest)
			memcpy(iov[i].iov_base, p, iov[i].iov_len);
		else
			memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	free(iov);
	return st;
}

uint16_t nvme_copy_to_guest(struct nvme_lp *lp, const struct nvme_sqe *cmd, const void *buf,
			    uint64_t len)
{
	return copy_guest(lp, cmd, (void *)buf, len, true);
}

uint16_t nvme_copy_from_guest(struct nvme_lp *lp, const struct nvme_sqe *cmd, void *buf,
			      uint64_t len)
{
	return copy_guest(lp, cmd, buf, len, false);
}
