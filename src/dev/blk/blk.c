/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk: turns requests popped by the queue runner into backend I/O
 * straight on guest memory, and answers with the status byte.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umdev/backend.h"
#include "umdev/blk.h"
#include "umdev/log.h"
#include "umdev/proto/virtio_blk.h"
#include "umdev/proto/virtio_ring.h"
#include "util/iov.h"

#define SECTOR 512u
/* Limits we advertise for DISCARD / WRITE_ZEROES. */
#define DWZ_MAX_SEG 32u
#define DWZ_MAX_SECTORS 0x3fffffu
/* Largest single segment we advertise (SIZE_MAX). */
#define BLK_SIZE_MAX (1u << 20)
/* Chains are header + data segments + status; a segment may span two regions. */
#define BLK_MAX_IOV (2 * (UMDEV_BLK_SEG_MAX + 2))

struct umdev_blk {
	struct umdev_virtio_dev vdev;
	umdev_bdev *bdev;
	struct umdev_bdev_info info; /* info.size: at open; the current size is size */
	_Atomic uint64_t size; /* bytes; changes on a resize */
	struct virtio_blk_config cfg;
	bool readonly;
	/*
	 * The driver did not accept FLUSH, so it cannot ask for durability:
	 * every write must be stable before it completes (virtio spec). Set
	 * while the queues are stopped (features change only then).
	 */
	bool writethrough;
	char serial[VIRTIO_BLK_ID_BYTES];
	struct umdev_vdev_queue *queues_storage[UMDEV_BLK_MAX_QUEUES];
};

struct blk_req {
	struct umdev_vdev_req base; /* first: the runner's slot */
	struct umdev_bdev_io io;
	uint32_t type;
	uint8_t *status; /* last writable byte of the chain */
	uint32_t written; /* bytes written into the writable part, status excluded */
	/* DISCARD / WRITE_ZEROES segments, executed one after another. */
	struct virtio_blk_discard_write_zeroes seg[DWZ_MAX_SEG];
	unsigned nseg, cur_seg;
	struct iovec data[]; /* BLK_MAX_IOV entries */
};

static umdev_blk *to_blk(struct umdev_virtio_dev *vdev)
{
	return (umdev_blk *)((char *)vdev - offsetof(umdev_blk, vdev));
}

/* Loop threads read it while the control thread may change it (resize). */
static uint64_t capacity_sectors(const umdev_blk *blk)
{
	return atomic_load_explicit(&blk->size, memory_order_relaxed) / SECTOR;
}

static void finish(struct blk_req *r, uint8_t status)
{
	*r->status = status;
	r->base.failed = status != VIRTIO_BLK_S_OK; /* counted in the queue's stats */
	umdev_vdev_complete(&r->base, r->written + 1);
}

static void finish_errno(struct blk_req *r, int res)
{
	finish(r, res == 0 ? VIRTIO_BLK_S_OK : res == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP
								 : VIRTIO_BLK_S_IOERR);
}

static void submit(struct umdev_vdev_queue *q, struct blk_req *r)
{
	int ret = umdev_bdev_submit(umdev_vdev_queue_priv(q), &r->io);

	if (ret < 0)
		finish_errno(r, ret);
}

static void rw_done(struct umdev_bdev_io *io, int res)
{
	struct blk_req *r = (struct blk_req *)((char *)io - offsetof(struct blk_req, io));

	if (res < 0) {
		r->written = 0;
		umdev_dbg("%s: I/O at byte %llu failed: %s",
			  umdev_vdev_queue_dev(r->base.q)->name,
			  (unsigned long long)io->offset, strerror(-res));
	}
	finish_errno(r, res);
}

/* Is [sector, sector+n) inside the disk? (overflow-safe) */
static bool in_range(const umdev_blk *blk, uint64_t sector, uint64_t nsect)
{
	uint64_t cap = capacity_sectors(blk);

	return sector <= cap && nsect <= cap - sector;
}

static void do_rw(umdev_blk *blk, struct umdev_vdev_queue *q, struct blk_req *r, uint64_t sector,
		  const struct iovec *iov, unsigned cnt, uint64_t skip, uint64_t len, bool write)
{
	int n;

	if (write && blk->readonly) {
		finish(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (len % SECTOR || !in_range(blk, sector, len / SECTOR)) {
		umdev_dbg("%s: %s of %llu bytes at sector %llu refused (range/size)",
			  blk->vdev.name, write ? "write" : "read", (unsigned long long)len,
			  (unsigned long long)sector);
		finish(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	n = umdev_iov_slice(iov, cnt, skip, len, r->data, BLK_MAX_IOV);
	if (n < 0) {
		finish(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (len == 0) {
		finish(r, VIRTIO_BLK_S_OK);
		return;
	}
	r->io = (struct umdev_bdev_io){
		.op = write ? UMDEV_BDEV_WRITE : UMDEV_BDEV_READ,
		.offset = sector * SECTOR,
		.len = len,
		.iov = r->data,
		.iovcnt = n,
		.fua = write && blk->writethrough,
		.done = rw_done,
	};
	if (!write)
		r->written = len;
	submit(q, r);
}

static void dwz_next(struct umdev_vdev_queue *q, struct blk_req *r);

static void dwz_done(struct umdev_bdev_io *io, int res)
{
	struct blk_req *r = (struct blk_req *)((char *)io - offsetof(struct blk_req, io));

	if (res < 0) {
		finish_errno(r, res);
		return;
	}
	r->cur_seg++;
	dwz_next(r->base.q, r);
}

static void dwz_next(struct umdev_vdev_queue *q, struct blk_req *r)
{
	const struct virtio_blk_discard_write_zeroes *s;

	if (r->cur_seg == r->nseg) {
		finish(r, VIRTIO_BLK_S_OK);
		return;
	}
	s = &r->seg[r->cur_seg];
	r->io = (struct umdev_bdev_io){
		.op = r->type == VIRTIO_BLK_T_DISCARD ? UMDEV_BDEV_DISCARD : UMDEV_BDEV_WRITE_ZEROES,
		.offset = s->sector * SECTOR,
		.len = (uint64_t)s->num_sectors * SECTOR,
		.done = dwz_done,
	};
	submit(q, r);
}

static void do_dwz(umdev_blk *blk, struct umdev_vdev_queue *q, struct blk_req *r,
		   const struct umdev_vq_elem *e, uint64_t payload)
{
	bool discard = r->type == VIRTIO_BLK_T_DISCARD;
	uint64_t feature = discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES;

	if (!(blk->vdev.ops->features(&blk->vdev) & (1ull << feature))) {
		finish(r, VIRTIO_BLK_S_UNSUPP);
		return;
	}
	if (payload == 0 || payload % sizeof(r->seg[0]) || payload / sizeof(r->seg[0]) > DWZ_MAX_SEG) {
		finish(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	r->nseg = payload / sizeof(r->seg[0]);
	r->cur_seg = 0;
	umdev_iov_to_buf(e->iov, e->n_out, sizeof(struct virtio_blk_outhdr), r->seg, payload);
	for (unsigned i = 0; i < r->nseg; i++) {
		const struct virtio_blk_discard_write_zeroes *s = &r->seg[i];
		uint32_t allowed = discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;

		if (s->flags & ~allowed) {
			finish(r, VIRTIO_BLK_S_UNSUPP);
			return;
		}
		if (s->num_sectors > DWZ_MAX_SECTORS || !in_range(blk, s->sector, s->num_sectors)) {
			finish(r, VIRTIO_BLK_S_IOERR);
			return;
		}
	}
	dwz_next(q, r);
}

static void blk_handle(struct umdev_vdev_queue *q, struct umdev_vdev_req *base)
{
	struct blk_req *r = (struct blk_req *)base;
	umdev_blk *blk = to_blk(umdev_vdev_queue_dev(q));
	const struct umdev_vq_elem *e = &base->elem;
	const struct iovec *in_iov = e->iov + e->n_out;
	struct virtio_blk_outhdr hdr;
	uint64_t data_in, data_out;

	r->written = 0;
	r->status = e->in_len ? umdev_iov_byte(in_iov, e->n_in, e->in_len - 1) : NULL;
	if (!r->status || e->out_len < sizeof(hdr)) {
		/* No status byte to answer in: the chain is useless; return it empty. */
		umdev_warn("%s.q%u: request without header or status byte (head %u)",
			   blk->vdev.name, umdev_vdev_queue_index(q), e->head);
		umdev_vdev_complete(base, 0);
		return;
	}
	umdev_iov_to_buf(e->iov, e->n_out, 0, &hdr, sizeof(hdr));
	r->type = hdr.type;
	data_out = e->out_len - sizeof(hdr);
	data_in = e->in_len - 1;

	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
		do_rw(blk, q, r, hdr.sector, in_iov, e->n_in, 0, data_in, false);
		break;
	case VIRTIO_BLK_T_OUT:
		do_rw(blk, q, r, hdr.sector, e->iov, e->n_out, sizeof(hdr), data_out, true);
		break;
	case VIRTIO_BLK_T_FLUSH:
		r->io = (struct umdev_bdev_io){ .op = UMDEV_BDEV_FLUSH, .done = rw_done };
		submit(q, r);
		break;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = data_in < sizeof(blk->serial) ? data_in : sizeof(blk->serial);

		r->written = umdev_iov_from_buf(in_iov, e->n_in, 0, blk->serial, n);
		finish(r, VIRTIO_BLK_S_OK);
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (blk->readonly) {
			finish(r, VIRTIO_BLK_S_IOERR);
			break;
		}
		do_dwz(blk, q, r, e, data_out);
		break;
	default:
		finish(r, VIRTIO_BLK_S_UNSUPP);
		break;
	}
}

static int blk_queue_init(struct umdev_vdev_queue *q)
{
	umdev_blk *blk = to_blk(umdev_vdev_queue_dev(q));
	int err = 0;
	umdev_bdev_queue *bq = umdev_bdev_queue_new(blk->bdev, umdev_vdev_queue_loop(q), &err);

	if (!bq)
		return err;
	umdev_vdev_queue_set_priv(q, bq);
	return 0;
}

static void blk_queue_fini(struct umdev_vdev_queue *q)
{
	umdev_bdev_queue_free(umdev_vdev_queue_priv(q));
	umdev_vdev_queue_set_priv(q, NULL);
}

static uint64_t blk_features(struct umdev_virtio_dev *vdev)
{
	umdev_blk *blk = to_blk(vdev);
	uint64_t f = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |
		     1ull << VIRTIO_RING_F_EVENT_IDX | 1ull << VIRTIO_BLK_F_SEG_MAX |
		     1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
		     1ull << VIRTIO_BLK_F_TOPOLOGY | 1ull << VIRTIO_BLK_F_FLUSH |
		     1ull << VIRTIO_BLK_F_MQ;

	if (blk->readonly)
		f |= 1ull << VIRTIO_BLK_F_RO;
	else {
		if (blk->info.can_discard)
			f |= 1ull << VIRTIO_BLK_F_DISCARD;
		if (blk->info.can_write_zeroes)
			f |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	}
	return f;
}

static int blk_set_features(struct umdev_virtio_dev *vdev, uint64_t features)
{
	umdev_blk *blk = to_blk(vdev);

	blk->writethrough = blk->info.volatile_cache &&
			    !(features & (1ull << VIRTIO_BLK_F_FLUSH));
	return 0;
}

static int blk_get_config(struct umdev_virtio_dev *vdev, void *buf, uint32_t off, uint32_t len)
{
	umdev_blk *blk = to_blk(vdev);

	if (off > sizeof(blk->cfg) || len > sizeof(blk->cfg) - off)
		return -EINVAL;
	memcpy(buf, (uint8_t *)&blk->cfg + off, len);
	return 0;
}

static int blk_flush(struct umdev_virtio_dev *vdev)
{
	umdev_blk *blk = to_blk(vdev);

	return blk->readonly ? 0 : umdev_bdev_flush_sync(blk->bdev);
}

static const struct umdev_virtio_dev_ops blk_ops = {
	.features = blk_features,
	.set_features = blk_set_features,
	.get_config = blk_get_config,
	.set_config = NULL, /* writeback is fixed: CONFIG_WCE is not offered */
	.queue_init = blk_queue_init,
	.queue_fini = blk_queue_fini,
	.handle = blk_handle,
	.flush = blk_flush,
};

/* Control thread: the backend's size changed (an RBD image was resized). */
static void blk_resized(void *opaque, uint64_t size)
{
	umdev_blk *blk = opaque;

	atomic_store_explicit(&blk->size, size, memory_order_relaxed);
	blk->cfg.capacity = capacity_sectors(blk);
	umdev_info("%s: capacity now %llu sectors", blk->vdev.name,
		   (unsigned long long)blk->cfg.capacity);
	umdev_vdev_config_changed(&blk->vdev);
}

static unsigned ilog2_u32(uint32_t v)
{
	unsigned n = 0;

	while (v >>= 1)
		n++;
	return n;
}

static void fill_config(umdev_blk *blk, uint16_t num_queues)
{
	struct virtio_blk_config *c = &blk->cfg;
	uint32_t bs = blk->info.block_size;
	uint32_t pbs = blk->info.physical_block_size > bs ? blk->info.physical_block_size : bs;

	memset(c, 0, sizeof(*c));
	c->capacity = capacity_sectors(blk);
	c->size_max = BLK_SIZE_MAX;
	c->seg_max = UMDEV_BLK_SEG_MAX;
	c->blk_size = bs;
	c->topology.physical_block_exp = ilog2_u32(pbs / bs);
	c->topology.min_io_size = 1;
	c->topology.opt_io_size = 0;
	c->writeback = blk->info.volatile_cache;
	c->num_queues = num_queues;
	c->max_discard_sectors = DWZ_MAX_SECTORS;
	c->max_discard_seg = DWZ_MAX_SEG;
	c->discard_sector_alignment = bs / SECTOR;
	c->max_write_zeroes_sectors = DWZ_MAX_SECTORS;
	c->max_write_zeroes_seg = DWZ_MAX_SEG;
	c->write_zeroes_may_unmap = 1;
}

umdev_blk *umdev_blk_new(const struct umdev_blk_opts *o, umdev_loop **loops, unsigned num_loops,
			 int *err)
{
	umdev_blk *blk;
	size_t serial_len;

	if (!o->id || !o->backend || o->num_queues < 1 || o->num_queues > UMDEV_BLK_MAX_QUEUES ||
	    !num_loops) {
		*err = -EINVAL;
		return NULL;
	}
	blk = calloc(1, sizeof(*blk));
	if (!blk) {
		*err = -ENOMEM;
		return NULL;
	}
	blk->bdev = umdev_bdev_open(o->backend, o->readonly, err);
	if (!blk->bdev) {
		free(blk);
		return NULL;
	}
	umdev_bdev_get_info(blk->bdev, &blk->info);
	atomic_init(&blk->size, blk->info.size);
	if (o->ctl) {
		int ret = umdev_bdev_watch_size(blk->bdev, o->ctl, blk_resized, blk);

		if (ret < 0) {
			umdev_bdev_close(blk->bdev);
			free(blk);
			*err = ret;
			return NULL;
		}
		blk->vdev.config_changes = true;
	}
	blk->readonly = o->readonly || blk->info.readonly;
	serial_len = strlen(o->serial ? o->serial : o->id);
	memcpy(blk->serial, o->serial ? o->serial : o->id,
	       serial_len < sizeof(blk->serial) ? serial_len : sizeof(blk->serial));
	fill_config(blk, o->num_queues);
	/* Until the driver accepts FLUSH, assume it cannot send one. */
	blk->writethrough = blk->info.volatile_cache;

	blk->vdev.ops = &blk_ops;
	snprintf(blk->vdev.name, sizeof(blk->vdev.name), "%s", o->id);
	blk->vdev.device_id = VIRTIO_ID_BLOCK;
	blk->vdev.config_size = sizeof(blk->cfg);
	blk->vdev.num_queues = o->num_queues;
	blk->vdev.max_queue_size = o->queue_size ? o->queue_size : 1024;
	blk->vdev.req_size = sizeof(struct blk_req) + BLK_MAX_IOV * sizeof(struct iovec);
	blk->vdev.max_iov = BLK_MAX_IOV;
	blk->vdev.poll = o->poll;
	blk->vdev.poll_us = o->poll_us;
	blk->vdev.loops = loops;
	blk->vdev.num_loops = num_loops;
	blk->vdev.queues = blk->queues_storage;
	return blk;
}

void umdev_blk_free(umdev_blk *blk)
{
	if (!blk)
		return;
	umdev_vdev_free_queues(&blk->vdev);
	umdev_bdev_close(blk->bdev);
	free(blk);
}

struct umdev_virtio_dev *umdev_blk_vdev(umdev_blk *blk)
{
	return &blk->vdev;
}

int umdev_blk_flush(umdev_blk *blk)
{
	return umdev_bdev_flush_sync(blk->bdev);
}
