/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVM command set: Read, Write, Flush, Write Zeroes, Dataset Management
 * (deallocate) and Compare, turned into backend I/O on the loop that owns
 * the submission queue (its backend queue, its io_uring).
 * Reads and writes go straight between the backend and guest memory (the
 * iovecs point into the DMA map the request holds). Compare reads into a
 * bounce buffer; Write Zeroes on a backend without a zeroing primitive
 * writes from a shared zero page, a chunk at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nvme_internal.h"
#include "umdev/log.h"

static const uint8_t zero_page[NVME_PAGE];

void nvme_req_release(struct nvme_req *r)
{
	umdev_as_map_put(r->map);
	r->map = NULL;
	free(r->bounce);
	r->bounce = NULL;
	free(r->ranges);
	r->ranges = NULL;
	r->stage = NVME_STAGE_NONE;
}

static uint16_t errno_status(int res, bool write)
{
	switch (res) {
	case -EINVAL:
		return NVME_GEN(NVME_SC_LBA_RANGE);
	case -EROFS:
		return NVME_CS(NVME_SC_ATTEMPTED_WRITE_TO_RO);
	case -EOPNOTSUPP:
		return NVME_GEN(NVME_SC_INVALID_OPCODE);
	case -ENOMEM:
	case -EAGAIN:
		return nvme_sts(NVME_SCT_GENERIC, NVME_SC_INTERNAL) & ~NVME_STATUS_DNR;
	default:
		return nvme_sts(NVME_SCT_MEDIA, write ? NVME_SC_WRITE_FAULT : NVME_SC_READ_ERROR);
	}
}

static bool step(struct nvme_req *r);

/* Backend completion: next step, or complete. */
static void io_done(struct umdev_bdev_io *bio, int res)
{
	struct nvme_req *r = (struct nvme_req *)((uint8_t *)bio - offsetof(struct nvme_req, bio));
	struct nvme_lp *lp = r->sq->lp;
	bool finished = true;

	r->ns->inflight[lp->idx]--;
	lp->io_inflight--;
	if (res < 0) {
		r->status = errno_status(res, bio->op != UMDEV_BDEV_READ);
	} else if (r->stage == NVME_STAGE_NONE) {
		if (bio->op == UMDEV_BDEV_READ)
			lp->st.read_bytes += bio->len;
		else if (bio->op == UMDEV_BDEV_WRITE)
			lp->st.write_bytes += bio->len;
	} else if (r->stage == NVME_STAGE_COMPARE) {
		uint64_t off = 0;

		for (int i = 0; i < r->iovcnt && !r->status; i++) {
			if (memcmp(r->bounce + off, r->iov[i].iov_base, r->iov[i].iov_len))
				r->status = nvme_sts(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED);
			off += r->iov[i].iov_len;
		}
	} else {
		finished = step(r);
	}
	/*
	 * No interrupt here: the poller stays while backend I/O is in flight,
	 * and its pass after this batch of completions sends one MSI-X
	 * message per CQ (nvme_process() -> nvme_irq_flush()).
	 */
	if (finished)
		nvme_req_complete(r);
}

/* Submit r->bio; true when the request completed (status set). */
static bool submit(struct nvme_req *r)
{
	struct nvme_lp *lp = r->sq->lp;
	int ret;

	r->bio.done = io_done;
	r->ns->inflight[lp->idx]++;
	lp->io_inflight++;
	ret = umdev_bdev_submit(r->ns->q[lp->idx], &r->bio);
	if (ret < 0) {
		r->ns->inflight[lp->idx]--;
		lp->io_inflight--;
		r->status = errno_status(ret, r->bio.op != UMDEV_BDEV_READ);
		return true;
	}
	return false;
}

/* Multi-step commands: issue the next backend op; true when all are done. */
static bool step(struct nvme_req *r)
{
	struct nvme_ns *ns = r->ns;

	if (r->status)
		return true;
	if (r->stage == NVME_STAGE_DSM) {
		while (r->range < r->nranges) {
			const struct nvme_dsm_range *d = &r->ranges[r->range++];

			if (!d->nlb)
				continue;
			r->bio.op = UMDEV_BDEV_DISCARD;
			r->bio.offset = ns->offset + (d->slba << ns->lba_shift);
			r->bio.len = (uint64_t)d->nlb << ns->lba_shift;
			r->bio.iov = NULL;
			r->bio.iovcnt = 0;
			if (submit(r)) {
				/* A backend that cannot discard: deallocate is only a hint. */
				if (r->status == NVME_GEN(NVME_SC_INVALID_OPCODE))
					r->status = 0;
				if (r->status)
					return true;
				continue;
			}
			return false;
		}
		return true;
	}
	if (r->stage == NVME_STAGE_WZ_EMUL) {
		uint64_t left = r->end - r->pos, chunk;
		int cnt = 0;

		if (!left)
			return true;
		chunk = left < NVME_MAX_XFER ? left : NVME_MAX_XFER;
		for (uint64_t done = 0; done < chunk; done += NVME_PAGE) {
			r->iov[cnt].iov_base = (void *)zero_page;
			r->iov[cnt].iov_len = chunk - done < NVME_PAGE ? chunk - done : NVME_PAGE;
			cnt++;
		}
		r->bio.op = UMDEV_BDEV_WRITE;
		r->bio.offset = r->pos;
		r->bio.len = chunk;
		r->bio.iov = r->iov;
		r->bio.iovcnt = cnt;
		r->bio.fua = false;
		r->pos += chunk;
		return submit(r);
	}
	return true;
}

/* The LBA range of a Read/Write/Compare/Write Zeroes; 0 or a status. */
static uint16_t lba_range(struct nvme_req *r, uint64_t *off, uint64_t *len)
{
	const struct nvme_sqe *c = &r->cmd;
	uint64_t slba = (uint64_t)c->cdw11 << 32 | c->cdw10;
	uint64_t nlb = (c->cdw12 & 0xffff) + 1ull;
	uint64_t end = atomic_load_explicit(&r->ns->nlb, memory_order_relaxed);

	if (slba >= end || nlb > end - slba)
		return NVME_GEN(NVME_SC_LBA_RANGE);
	*off = r->ns->offset + (slba << r->ns->lba_shift);
	*len = nlb << r->ns->lba_shift;
	return 0;
}

/* Map the data pointer, refreshing a stale DMA map once. */
static uint16_t map_data(struct nvme_req *r, uint64_t len, unsigned prot)
{
	struct nvme_lp *lp = r->sq->lp;
	uint16_t st;

	if (nvme_ensure_map(lp) < 0)
		return NVME_GEN(NVME_SC_DATA_XFER_ERROR);
	st = nvme_map_data(lp->map, &r->cmd, len, prot, r->iov, NVME_MAX_IOV, &r->iovcnt);
	if (st == NVME_GEN(NVME_SC_DATA_XFER_ERROR)) {
		/* The client may have added memory since this map was taken. */
		nvme_drop_map(lp);
		if (nvme_ensure_map(lp) < 0)
			return st;
		st = nvme_map_data(lp->map, &r->cmd, len, prot, r->iov, NVME_MAX_IOV,
				   &r->iovcnt);
	}
	if (!st)
		r->map = umdev_as_map_ref(lp->map);
	return st;
}

static bool io_rw(struct nvme_req *r, bool write)
{
	uint64_t off, len;

	r->status = lba_range(r, &off, &len);
	if (r->status)
		return true;
	if (len > NVME_MAX_XFER) {
		r->status = NVME_GEN(NVME_SC_INVALID_FIELD);
		return true;
	}
	r->status = map_data(r, len, write ? UMDEV_MEM_READ : UMDEV_MEM_WRITE);
	if (r->status)
		return true;
	r->bio.op = write ? UMDEV_BDEV_WRITE : UMDEV_BDEV_READ;
	r->bio.offset = off;
	r->bio.len = len;
	r->bio.iov = r->iov;
	r->bio.iovcnt = r->iovcnt;
	/* Without a volatile write cache every write is durable on completion. */
	r->bio.fua = write && ((r->cmd.cdw12 & NVME_RW_FUA) ||
			       !atomic_load_explicit(&r->n->rt_wce, memory_order_relaxed));
	return submit(r);
}

static bool io_compare(struct nvme_req *r)
{
	uint64_t off, len;

	r->status = lba_range(r, &off, &len);
	if (r->status)
		return true;
	if (len > NVME_MAX_XFER) {
		r->status = NVME_GEN(NVME_SC_INVALID_FIELD);
		return true;
	}
	r->status = map_data(r, len, UMDEV_MEM_READ);
	if (r->status)
		return true;
	if (r->iovcnt >= (int)NVME_MAX_IOV) {
		r->status = NVME_GEN(NVME_SC_DATA_XFER_ERROR);
		return true;
	}
	r->bounce = malloc(len);
	if (!r->bounce) {
		r->status = NVME_GEN(NVME_SC_INTERNAL);
		return true;
	}
	/* The guest's iovecs stay in r->iov; the backend reads into one bounce iovec. */
	r->stage = NVME_STAGE_COMPARE;
	r->bio.op = UMDEV_BDEV_READ;
	r->bio.offset = off;
	r->bio.len = len;
	r->bio.iov = &r->iov[NVME_MAX_IOV - 1];
	r->iov[NVME_MAX_IOV - 1].iov_base = r->bounce;
	r->iov[NVME_MAX_IOV - 1].iov_len = len;
	r->bio.iovcnt = 1;
	return submit(r);
}

static bool io_write_zeroes(struct nvme_req *r)
{
	uint64_t off, len;

	r->status = lba_range(r, &off, &len);
	if (r->status)
		return true;
	if (r->ns->can_wz) {
		r->bio.op = UMDEV_BDEV_WRITE_ZEROES;
		r->bio.offset = off;
		r->bio.len = len;
		r->bio.iov = NULL;
		r->bio.iovcnt = 0;
		r->bio.fua = false;
		return submit(r);
	}
	r->stage = NVME_STAGE_WZ_EMUL;
	r->pos = off;
	r->end = off + len;
	return step(r);
}

static bool io_dsm(struct nvme_req *r)
{
	unsigned nr = (r->cmd.cdw10 & 0xff) + 1;
	struct nvme_ns *ns = r->ns;

	if (!(r->cmd.cdw11 & NVME_DSM_AD))
		return true; /* only attributes (hints): nothing to do */
	r->ranges = calloc(nr, sizeof(*r->ranges));
	if (!r->ranges) {
		r->status = NVME_GEN(NVME_SC_INTERNAL);
		return true;
	}
	r->status = nvme_copy_from_guest(r->sq->lp, &r->cmd, r->ranges, nr * sizeof(*r->ranges));
	if (r->status)
		return true;
	for (unsigned i = 0; i < nr; i++) {
		uint64_t slba = r->ranges[i].slba, nlb = r->ranges[i].nlb;
		uint64_t end = atomic_load_explicit(&ns->nlb, memory_order_relaxed);

		if (slba > end || nlb > end - slba) {
			r->status = NVME_GEN(NVME_SC_LBA_RANGE);
			return true;
		}
	}
	if (!ns->can_discard)
		return true;
	r->stage = NVME_STAGE_DSM;
	r->range = 0;
	r->nranges = nr;
	return step(r);
}

bool nvme_io(struct nvme_req *r)
{
	const struct nvme_sqe *c = &r->cmd;

	if (c->flags & NVME_CMD_FUSE_MASK) {
		r->status = NVME_GEN(NVME_SC_INVALID_FIELD); /* fused operations are not offered */
		return true;
	}
	if (c->opcode == NVME_CMD_FLUSH && c->nsid == 0xffffffffu) {
		r->status = NVME_GEN(NVME_SC_INVALID_NS); /* VWC says: no broadcast flush */
		return true;
	}
	r->ns = nvme_ns_get(r->sq->lp, c->nsid);
	if (!r->ns) {
		r->status = NVME_GEN(NVME_SC_INVALID_NS);
		return true;
	}
	switch (c->opcode) {
	case NVME_CMD_READ:
		return io_rw(r, false);
	case NVME_CMD_WRITE:
		return io_rw(r, true);
	case NVME_CMD_FLUSH:
		r->bio.op = UMDEV_BDEV_FLUSH;
		r->bio.offset = 0;
		r->bio.len = 0;
		r->bio.iov = NULL;
		r->bio.iovcnt = 0;
		return submit(r);
	case NVME_CMD_COMPARE:
		return io_compare(r);
	case NVME_CMD_WRITE_ZEROES:
		return io_write_zeroes(r);
	case NVME_CMD_DSM:
		return io_dsm(r);
	default:
		r->status = NVME_GEN(NVME_SC_INVALID_OPCODE);
		return true;
	}
}
