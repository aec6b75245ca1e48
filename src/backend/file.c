/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "file:PATH" backend: a regular file or a block device, driven through the
 * io_uring of the queue's loop. Data moves straight between the file and the
 * request's iovecs (guest memory), never through a bounce buffer.
 *
 * Two fds on the same file
 * - An O_DIRECT fd (when the file system accepts O_DIRECT) serves every
 *   request whose offset, and every iovec base and length, are multiples of
 *   the direct alignment; a buffered fd serves the rest (a guest is free to
 *   send 512-byte-aligned I/O into byte-aligned buffers).
 * - Mixing them is safe on Linux because the kernel keeps the page cache
 *   coherent around direct I/O: before a direct read or write it writes back
 *   dirty cached pages of the range, and after a direct write it invalidates
 *   them, so a later buffered read re-reads the disk. Both fds share one
 *   inode, so fdatasync() on either makes both kinds of writes durable.
 *   What stays unordered is overlapping requests in flight at the same time,
 *   which a block device does not order either.
 * - If the kernel still rejects a direct request with EINVAL (an alignment
 *   rule we did not know about), it is retried once on the buffered fd.
 *
 * Requests
 * - READ/WRITE: readv/writev; a short transfer is continued from where it
 *   stopped (also used to split iovec arrays longer than IOV_MAX). A read
 *   hitting end-of-file inside the declared size (file shrunk behind our
 *   back) reads zeroes; a write that makes no progress fails with -EIO.
 *   FUA writes carry RWF_DSYNC.
 * - FLUSH: fsync with IORING_FSYNC_DATASYNC.
 * - DISCARD: fallocate(PUNCH_HOLE | KEEP_SIZE); when unsupported it is a
 *   successful no-op, as discard is only a hint.
 * - WRITE_ZEROES: fallocate(ZERO_RANGE | KEEP_SIZE), falling back to
 *   PUNCH_HOLE | KEEP_SIZE on regular files whose fs lacks ZERO_RANGE
 *   (tmpfs): both read back as zeroes.
 *
 * Two ways to the kernel, chosen per queue by its loop's I/O engine
 * - io_uring loop: each step of a request is one submission entry on the
 *   loop's ring (readv, writev, fsync, fallocate).
 * - epoll loop (no io_uring): a read or write step on the O_DIRECT fd goes
 *   to Linux native AIO (a per-queue aio context whose completions signal
 *   an eventfd on the loop), submitted with RWF_NOWAIT so that io_submit
 *   never blocks the loop: a step the kernel could not start without
 *   blocking (block allocation, a full context, no AIO at all: qemu-user)
 *   goes to the worker pool instead. Every other step (buffered I/O, flush,
 *   discard, write-zeroes) runs as the same system call (preadv2, pwritev2,
 *   fdatasync, fallocate) on a worker of the file's pool (pool.h), whose
 *   completion comes back to the loop through an eventfd. Data still moves
 *   straight between the file and guest memory. All paths share the
 *   completion handling below (file_cb), so short transfers, retries and
 *   the direct/buffered choice behave the same.
 *
 * Per-request state lives in a struct file_req taken from a per-queue free
 * list (only touched on the queue's thread), so the data path allocates
 * only while the list grows to the queue's depth.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <libaio.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "backend_internal.h"
#include "pool.h"
#include "umdev/log.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* Retries of a request the kernel answered with EAGAIN or EINTR. */
#define FILE_MAX_RETRIES 16
/* Workers of a file's pool (epoll loops): enough for a QD32 queue on a fast disk. */
#define FILE_POOL_WORKERS 16
/* Native AIO requests in flight per queue (epoll loops); more go to the pool. */
#define FILE_AIO_DEPTH 128
#define FILE_AIO_BATCH 64

struct file_bdev {
	int fd; /* buffered */
	int dfd; /* O_DIRECT, or -1 */
	uint32_t align; /* direct alignment: offset, iovec bases and lengths */
	bool is_blk;
	atomic_bool no_zero_range; /* hint: ZERO_RANGE is unsupported */
	atomic_bool warned_direct; /* the EINVAL fallback was logged */
	pthread_mutex_t pool_lock; /* creating the pool from several loops */
	struct bdev_pool *pool; /* workers for epoll loops, made on first use */
};

/* One step of a request, as a system call (the worker pool path). */
enum file_call { FILE_CALL_READ, FILE_CALL_WRITE, FILE_CALL_FSYNC, FILE_CALL_FALLOCATE };

struct file_op {
	enum file_call call;
	int fd;
	const struct iovec *iov;
	int iovcnt;
	uint64_t off;
	uint64_t len; /* FALLOCATE */
	int flags; /* WRITE: RWF_*; FALLOCATE: mode */
};

struct file_queue;

struct file_req {
	struct umdev_loop_io lio;
	struct bdev_pool_work work; /* epoll loops */
	struct file_op op; /* epoll loops: the step a worker runs */
	int res; /* ... and its result */
	struct iocb iocb; /* epoll loops: the step as native AIO */
	bool no_aio; /* the kernel would not start it without blocking: pool */
	struct file_queue *fq;
	struct umdev_bdev_io *io;
	uint64_t done; /* bytes transferred so far */
	int idx; /* first iovec not fully transferred */
	size_t skip; /* bytes of iov[idx] already transferred */
	bool used_direct; /* the entry in flight went to the O_DIRECT fd */
	bool force_buffered;
	bool punch; /* WRITE_ZEROES through PUNCH_HOLE */
	unsigned retries;
	struct iovec *tmp; /* copy of the remaining iovecs when skip != 0 */
	int tmp_cap;
	struct file_req *next; /* free or deferred list */
};

struct file_queue {
	umdev_bdev_queue *q;
	struct bdev_pool_chan *chan; /* epoll loop: the pool's way back to it */
	io_context_t aio; /* epoll loop: native AIO for O_DIRECT steps, or 0 */
	int aio_efd; /* its completions' eventfd, watched by the loop */
	unsigned aio_inflight;
	struct file_req *free_list;
	struct file_req *defer_head, *defer_tail;
	umdev_loop_poller *defer_poller;
	unsigned inflight;
};

static void file_issue(struct file_req *req);

/* ---- open/close ---- */

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int file_blk_geometry(struct file_bdev *f, umdev_bdev *b)
{
	unsigned int pbs = 0;
	uint64_t size;
	int lbs = 0;

	if (ioctl(f->fd, BLKGETSIZE64, &size) < 0 || ioctl(f->fd, BLKSSZGET, &lbs) < 0)
		return -errno;
	if (ioctl(f->fd, BLKPBSZGET, &pbs) < 0)
		pbs = (unsigned int)lbs;
	if (lbs < 512 || !is_pow2((uint64_t)lbs))
		lbs = 512;
	if (pbs < (unsigned int)lbs || !is_pow2(pbs))
		pbs = (unsigned int)lbs;
	b->info.size = size;
	b->info.block_size = (uint32_t)lbs;
	b->info.physical_block_size = pbs;
	f->align = (uint32_t)lbs;
	return 0;
}

/*
 * Direct alignment of a regular file: what statx() reports since Linux 6.1,
 * else a conservative 4096 (a direct request the kernel still rejects is
 * retried buffered). 0 means the file does not support direct I/O.
 * A reply with STATX_DIOALIGN set but both alignments 0 is what qemu-user
 * gives (it passes the mask through and drops the fields) as well as what
 * a file without direct I/O gets: leave that to the O_DIRECT open probe,
 * which fails on such files.
 */
static uint32_t file_dio_align(int fd)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN)) {
		uint32_t a = stx.stx_dio_offset_align;

		if (a == 0 && stx.stx_dio_mem_align == 0)
			return 4096;
		if (a == 0)
			return 0;
		if (stx.stx_dio_mem_align > a)
			a = stx.stx_dio_mem_align;
		if (a < 512)
			a = 512;
		return is_pow2(a) ? a : 4096;
	}
#endif
	return 4096;
}

static int file_open(umdev_bdev *b, const char *path, bool readonly)
{
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct file_bdev *f;
	struct stat st;
	int ret;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->dfd = -1;
	f->fd = open(path, flags);
	if (f->fd < 0) {
		ret = -errno;
		free(f);
		return ret;
	}
	pthread_mutex_init(&f->pool_lock, NULL);
	if (fstat(f->fd, &st) < 0) {
		ret = -errno;
		goto fail;
	}
	if (S_ISBLK(st.st_mode)) {
		f->is_blk = true;
		ret = file_blk_geometry(f, b);
		if (ret < 0)
			goto fail;
	} else if (S_ISREG(st.st_mode)) {
		b->info.size = (uint64_t)st.st_size;
		b->info.block_size = 512;
		b->info.physical_block_size =
			is_pow2((uint64_t)st.st_blksize) && st.st_blksize >= 512 &&
					st.st_blksize <= 65536 ?
				(uint32_t)st.st_blksize :
				4096;
		f->align = file_dio_align(f->fd);
	} else {
		umdev_err("'%s': neither a regular file nor a block device", path);
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto fail;
	}
	if (b->info.size == 0) {
		umdev_err("'%s': empty, a disk needs a size", path);
		ret = -EINVAL;
		goto fail;
	}

	/* Probe O_DIRECT: EINVAL means the file system has no direct I/O. */
	if (f->align) {
		f->dfd = open(path, flags | O_DIRECT);
		if (f->dfd < 0 && errno != EINVAL)
			umdev_warn("backend '%s': O_DIRECT open failed (%s), using buffered I/O",
				   path, strerror(errno));
	}
	b->info.direct = f->dfd >= 0;
	/* DISCARD degrades to a no-op where unsupported, so always offer it. */
	b->info.can_discard = true;
	b->info.can_write_zeroes = true;
	b->info.volatile_cache = true;
	b->priv = f;
	umdev_dbg("backend '%s': %s, %llu bytes, %s I/O, alignment %u", path,
		  f->is_blk ? "block device" : "file", (unsigned long long)b->info.size,
		  f->dfd >= 0 ? "direct" : "buffered", f->align);
	return 0;

fail:
	close(f->fd);
	pthread_mutex_destroy(&f->pool_lock);
	free(f);
	return ret;
}

static void file_close(umdev_bdev *b)
{
	struct file_bdev *f = b->priv;

	bdev_pool_free(f->pool); /* every queue is gone: no work in flight */
	pthread_mutex_destroy(&f->pool_lock);
	if (f->dfd >= 0)
		close(f->dfd);
	close(f->fd);
	free(f);
}

static int file_flush_sync(umdev_bdev *b)
{
	struct file_bdev *f = b->priv;

	if (fdatasync(f->fd) < 0)
		return -errno;
	if (f->dfd >= 0 && fdatasync(f->dfd) < 0)
		return -errno;
	return 0;
}

/* ---- queues ---- */

static void file_cb(struct umdev_loop_io *lio, int res);
static void file_pool_submit(struct file_req *req);

/* Native AIO completions, on the queue's loop. */
static void file_aio_cb(void *opaque, uint32_t events)
{
	struct file_queue *fq = opaque;
	struct io_event evs[FILE_AIO_BATCH];
	struct timespec zero = { 0, 0 };
	uint64_t v;
	int n;

	while (read(fq->aio_efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	do {
		n = io_getevents(fq->aio, 0, FILE_AIO_BATCH, evs, &zero);
		for (int i = 0; i < n; i++) {
			struct file_req *req = evs[i].data;
			long res = (long)evs[i].res;

			fq->aio_inflight--;
			if (res == -EAGAIN || res == -EOPNOTSUPP) {
				/*
				 * RWF_NOWAIT: it would have blocked (or this file
				 * cannot say): a worker may block.
				 */
				req->no_aio = true;
				file_pool_submit(req);
				continue;
			}
			file_cb(&req->lio, (int)res);
		}
	} while (n == FILE_AIO_BATCH);
}

/* A native AIO context for an epoll loop's queue; without one, all goes to the pool. */
static void file_aio_init(struct file_queue *fq)
{
	int ret;

	fq->aio_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fq->aio_efd < 0)
		return;
	ret = io_setup(FILE_AIO_DEPTH, &fq->aio);
	if (ret == 0)
		ret = umdev_loop_add_fd(fq->q->loop, fq->aio_efd, EPOLLIN, file_aio_cb, fq);
	else
		fq->aio = 0;
	if (ret < 0) {
		umdev_dbg("backend '%s': no native AIO (%s): worker pool only", fq->q->b->spec,
			  strerror(-ret));
		if (fq->aio)
			io_destroy(fq->aio);
		fq->aio = 0;
		close(fq->aio_efd);
		fq->aio_efd = -1;
	}
}

/*
 * Start @req's O_DIRECT read or write step as native AIO; false when it
 * must go to the pool instead (not such a step, or the kernel refused).
 */
static bool file_aio_submit(struct file_req *req)
{
	struct file_queue *fq = req->fq;
	const struct file_op *op = &req->op;
	struct iocb *cb = &req->iocb;
	int ret;

	if (!fq->aio || req->no_aio || !req->used_direct || fq->aio_inflight >= FILE_AIO_DEPTH ||
	    (op->call != FILE_CALL_READ && op->call != FILE_CALL_WRITE))
		return false;
	if (op->call == FILE_CALL_READ)
		io_prep_preadv2(cb, op->fd, op->iov, op->iovcnt, (long long)op->off, RWF_NOWAIT);
	else
		io_prep_pwritev2(cb, op->fd, op->iov, op->iovcnt, (long long)op->off,
				 op->flags | RWF_NOWAIT);
	cb->data = req;
	io_set_eventfd(cb, fq->aio_efd);
	ret = io_submit(fq->aio, 1, &cb);
	if (ret != 1)
		return false; /* EAGAIN (would block, context full), EOPNOTSUPP...: pool */
	fq->aio_inflight++;
	fq->q->stats.aio_ios++;
	return true;
}

/* The file's worker pool, started the first time an epoll loop needs it. */
static struct bdev_pool *file_pool(struct file_bdev *f, int *err)
{
	struct bdev_pool *p;

	pthread_mutex_lock(&f->pool_lock);
	if (!f->pool)
		f->pool = bdev_pool_new(FILE_POOL_WORKERS, err);
	p = f->pool;
	pthread_mutex_unlock(&f->pool_lock);
	return p;
}

static int file_queue_new(umdev_bdev_queue *q)
{
	struct file_queue *fq = calloc(1, sizeof(*fq));
	struct bdev_pool *pool;
	int err = 0;

	if (!fq)
		return -ENOMEM;
	fq->q = q;
	if (umdev_loop_engine(q->loop) == UMDEV_IO_ENGINE_EPOLL) {
		pool = file_pool(q->b->priv, &err);
		fq->chan = pool ? bdev_pool_chan_new(pool, q->loop, &err) : NULL;
		if (!fq->chan) {
			free(fq);
			return err;
		}
		fq->aio_efd = -1;
		if (((struct file_bdev *)q->b->priv)->dfd >= 0)
			file_aio_init(fq);
	}
	q->priv = fq;
	return 0;
}

static void file_queue_free(umdev_bdev_queue *q)
{
	struct file_queue *fq = q->priv;

	if (fq->inflight)
		umdev_err("backend '%s': queue freed with %u requests in flight", q->b->spec,
			  fq->inflight);
	if (fq->defer_poller)
		umdev_loop_del_poller(q->loop, fq->defer_poller);
	bdev_pool_chan_free(fq->chan);
	if (fq->aio) {
		umdev_loop_del_fd(q->loop, fq->aio_efd);
		close(fq->aio_efd);
		io_destroy(fq->aio);
	}
	while (fq->free_list) {
		struct file_req *r = fq->free_list;

		fq->free_list = r->next;
		free(r->tmp);
		free(r);
	}
	free(fq);
}

/* ---- requests ---- */

static void file_complete(struct file_req *req, int res)
{
	struct file_queue *fq = req->fq;
	struct umdev_bdev_io *io = req->io;

	req->io = NULL;
	req->next = fq->free_list;
	fq->free_list = req;
	fq->inflight--;
	io->done(io, res);
}

static int file_defer_poll(void *opaque)
{
	struct file_queue *fq = opaque;
	struct file_req *list = fq->defer_head;
	int n = 0;

	/* Take the whole list: entries that fail again are re-appended. */
	fq->defer_head = fq->defer_tail = NULL;
	while (list) {
		struct file_req *r = list;

		list = r->next;
		file_issue(r);
		n++;
	}
	if (!fq->defer_head) {
		umdev_loop_del_poller(fq->q->loop, fq->defer_poller);
		fq->defer_poller = NULL;
	}
	return n;
}

/* No free submission entry: park @req and retry every loop iteration. */
static void file_defer(struct file_req *req)
{
	struct file_queue *fq = req->fq;
	int err = 0;

	if (!fq->defer_poller) {
		fq->defer_poller = umdev_loop_add_poller(fq->q->loop, file_defer_poll, fq, &err);
		if (!fq->defer_poller) {
			file_complete(req, err);
			return;
		}
	}
	req->next = NULL;
	if (fq->defer_tail)
		fq->defer_tail->next = req;
	else
		fq->defer_head = req;
	fq->defer_tail = req;
	fq->q->stats.deferred++;
}

static bool file_aligned(uint64_t off, const struct iovec *v, int n, uint32_t align)
{
	uint64_t mask = align - 1;

	if (off & mask)
		return false;
	for (int i = 0; i < n; i++) {
		if (((uintptr_t)v[i].iov_base & mask) || (v[i].iov_len & mask))
			return false;
	}
	return true;
}

/*
 * The iovecs still to transfer, at most IOV_MAX of them. Points into the
 * caller's array when the transfer stopped on an iovec boundary, else into
 * a copy whose first element is trimmed. NULL when the copy cannot grow.
 */
static const struct iovec *file_remaining(struct file_req *req, int *cnt)
{
	const struct umdev_bdev_io *io = req->io;
	int n = io->iovcnt - req->idx;

	if (n > IOV_MAX)
		n = IOV_MAX;
	*cnt = n;
	if (req->skip == 0)
		return &io->iov[req->idx];
	if (req->tmp_cap < n) {
		struct iovec *t = realloc(req->tmp, (size_t)n * sizeof(*t));

		if (!t)
			return NULL;
		req->tmp = t;
		req->tmp_cap = n;
	}
	memcpy(req->tmp, &io->iov[req->idx], (size_t)n * sizeof(*req->tmp));
	req->tmp[0].iov_base = (char *)req->tmp[0].iov_base + req->skip;
	req->tmp[0].iov_len -= req->skip;
	return req->tmp;
}

/*
 * The next step of @req as a system call's arguments. -ENOMEM when the
 * remaining iovecs cannot be copied. Counts the step as direct or buffered.
 */
static int file_prepare(struct file_req *req, struct file_op *op)
{
	struct file_queue *fq = req->fq;
	umdev_bdev_queue *q = fq->q;
	struct file_bdev *f = q->b->priv;
	struct umdev_bdev_io *io = req->io;

	req->used_direct = false;
	*op = (struct file_op){ .fd = f->fd, .off = io->offset, .len = io->len };
	switch (io->op) {
	case UMDEV_BDEV_READ:
	case UMDEV_BDEV_WRITE:
		op->iov = file_remaining(req, &op->iovcnt);
		if (!op->iov)
			return -ENOMEM;
		op->off = io->offset + req->done;
		if (f->dfd >= 0 && !req->force_buffered &&
		    file_aligned(op->off, op->iov, op->iovcnt, f->align)) {
			op->fd = f->dfd;
			req->used_direct = true;
			q->stats.direct_ios++;
		} else {
			q->stats.buffered_ios++;
		}
		op->call = io->op == UMDEV_BDEV_READ ? FILE_CALL_READ : FILE_CALL_WRITE;
		if (io->op == UMDEV_BDEV_WRITE && io->fua)
			op->flags = RWF_DSYNC;
		break;
	case UMDEV_BDEV_FLUSH:
		op->call = FILE_CALL_FSYNC;
		break;
	case UMDEV_BDEV_DISCARD:
		op->call = FILE_CALL_FALLOCATE;
		op->flags = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		break;
	case UMDEV_BDEV_WRITE_ZEROES:
		if (!req->punch && atomic_load_explicit(&f->no_zero_range, memory_order_relaxed))
			req->punch = true;
		op->call = FILE_CALL_FALLOCATE;
		op->flags = (req->punch ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) |
			    FALLOC_FL_KEEP_SIZE;
		break;
	}
	return 0;
}

static void file_sqe_prep(struct io_uring_sqe *sqe, const struct file_op *op)
{
	switch (op->call) {
	case FILE_CALL_READ:
		io_uring_prep_readv(sqe, op->fd, op->iov, (unsigned)op->iovcnt, op->off);
		break;
	case FILE_CALL_WRITE:
		io_uring_prep_writev(sqe, op->fd, op->iov, (unsigned)op->iovcnt, op->off);
		sqe->rw_flags = op->flags;
		break;
	case FILE_CALL_FSYNC:
		io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
		break;
	case FILE_CALL_FALLOCATE:
		io_uring_prep_fallocate(sqe, op->fd, op->flags, (off_t)op->off, (off_t)op->len);
		break;
	}
}

/* On a pool worker: the step as a blocking system call. */
static void file_work_fn(struct bdev_pool_work *w)
{
	struct file_req *req = (struct file_req *)((char *)w - offsetof(struct file_req, work));
	const struct file_op *op = &req->op;
	ssize_t r = -1;

	switch (op->call) {
	case FILE_CALL_READ:
		r = preadv2(op->fd, op->iov, op->iovcnt, (off_t)op->off, 0);
		break;
	case FILE_CALL_WRITE:
		r = pwritev2(op->fd, op->iov, op->iovcnt, (off_t)op->off, op->flags);
		/*
		 * Without per-write flags (qemu-user, kernels before 4.7): the
		 * same durability from a plain write and fdatasync.
		 */
		if (r < 0 && (errno == EOPNOTSUPP || errno == ENOSYS) && op->flags == RWF_DSYNC) {
			r = pwritev(op->fd, op->iov, op->iovcnt, (off_t)op->off);
			if (r >= 0 && fdatasync(op->fd) < 0)
				r = -1;
		}
		break;
	case FILE_CALL_FSYNC:
		r = fdatasync(op->fd);
		break;
	case FILE_CALL_FALLOCATE:
		r = fallocate(op->fd, op->flags, (off_t)op->off, (off_t)op->len);
		break;
	}
	/* As a CQE would say it; Linux moves at most MAX_RW_COUNT (< INT_MAX) per call. */
	req->res = r < 0 ? -errno : (int)r;
}

static void file_cb(struct umdev_loop_io *lio, int res);

/* Back on the queue's loop thread. */
static void file_work_done(struct bdev_pool_work *w)
{
	struct file_req *req = (struct file_req *)((char *)w - offsetof(struct file_req, work));

	file_cb(&req->lio, req->res);
}

/* A step native AIO could not start without blocking: the same one, on a worker. */
static void file_pool_submit(struct file_req *req)
{
	struct file_queue *fq = req->fq;
	int err;

	req->work.fn = file_work_fn;
	req->work.done = file_work_done;
	err = bdev_pool_submit(fq->chan, &req->work);
	if (err < 0) {
		file_complete(req, err);
		return;
	}
	fq->q->stats.pool_ios++;
}

static void file_issue(struct file_req *req)
{
	struct file_queue *fq = req->fq;
	umdev_bdev_queue *q = fq->q;
	struct io_uring_sqe *sqe = NULL;
	int err = 0;

	if (!fq->chan) {
		sqe = umdev_loop_sqe(q->loop, &err);
		if (!sqe) {
			file_defer(req);
			return;
		}
	}
	err = file_prepare(req, &req->op);
	if (err == 0 && fq->chan) {
		if (file_aio_submit(req))
			return;
		req->work.fn = file_work_fn;
		req->work.done = file_work_done;
		err = bdev_pool_submit(fq->chan, &req->work);
		if (err == 0)
			q->stats.pool_ios++;
	}
	if (err < 0) {
		if (sqe) {
			/* The sqe is taken: turn it into a no-op, fail the request. */
			io_uring_prep_nop(sqe);
			umdev_loop_sqe_ready(q->loop, sqe, NULL);
		}
		file_complete(req, err);
		return;
	}
	if (sqe) {
		file_sqe_prep(sqe, &req->op);
		umdev_loop_sqe_ready(q->loop, sqe, &req->lio);
	}
}

/* Moves the request's position forward by @n transferred bytes. */
static void file_advance(struct file_req *req, uint64_t n)
{
	const struct umdev_bdev_io *io = req->io;

	req->done += n;
	while (n && req->idx < io->iovcnt) {
		size_t left = io->iov[req->idx].iov_len - req->skip;

		if (n < left) {
			req->skip += (size_t)n;
			return;
		}
		n -= left;
		req->idx++;
		req->skip = 0;
	}
	/* Skip empty iovecs so the next readv does not start on one. */
	while (req->idx < io->iovcnt && io->iov[req->idx].iov_len == 0)
		req->idx++;
}

/* Error handling; returns true if the request was issued again. */
static bool file_retry(struct file_req *req, int res)
{
	struct file_bdev *f = req->fq->q->b->priv;
	struct umdev_bdev_io *io = req->io;

	if ((res == -EAGAIN || res == -EINTR) && req->retries < FILE_MAX_RETRIES) {
		req->retries++;
		file_issue(req);
		return true;
	}
	if (res == -EINVAL && req->used_direct) {
		if (!atomic_exchange_explicit(&f->warned_direct, true, memory_order_relaxed))
			umdev_warn("backend '%s': direct I/O rejected, retrying buffered",
				   req->fq->q->b->spec);
		req->force_buffered = true;
		file_issue(req);
		return true;
	}
	if (io->op == UMDEV_BDEV_WRITE_ZEROES && !req->punch && !f->is_blk &&
	    (res == -EOPNOTSUPP || res == -EINVAL)) {
		atomic_store_explicit(&f->no_zero_range, true, memory_order_relaxed);
		req->punch = true;
		file_issue(req);
		return true;
	}
	return false;
}

static void file_cb(struct umdev_loop_io *lio, int res)
{
	struct file_req *req = (struct file_req *)((char *)lio - offsetof(struct file_req, lio));
	struct umdev_bdev_io *io = req->io;
	const struct file_bdev *f = req->fq->q->b->priv;

	if (res < 0) {
		if (file_retry(req, res))
			return;
		/*
		 * Discard is a hint: where it cannot be done (no support, or a
		 * block device whose logical block the range does not cover
		 * whole), skipping it is fine.
		 */
		if (io->op == UMDEV_BDEV_DISCARD &&
		    (res == -EOPNOTSUPP || (res == -EINVAL && f->is_blk)))
			res = 0;
		file_complete(req, res);
		return;
	}
	if (io->op != UMDEV_BDEV_READ && io->op != UMDEV_BDEV_WRITE) {
		file_complete(req, 0);
		return;
	}
	if (res == 0) {
		if (io->op == UMDEV_BDEV_WRITE) {
			file_complete(req, -EIO);
			return;
		}
		/* EOF inside the declared size: the file shrank; read holes. */
		umdev_bdev_iov_zero(io->iov, io->iovcnt, req->done);
		file_complete(req, 0);
		return;
	}
	if ((uint64_t)res > io->len - req->done) {
		file_complete(req, -EIO);
		return;
	}
	file_advance(req, (uint64_t)res);
	if (req->done == io->len) {
		file_complete(req, 0);
		return;
	}
	req->fq->q->stats.short_ios++;
	req->retries = 0;
	file_issue(req);
}

static int file_submit(umdev_bdev_queue *q, struct umdev_bdev_io *io)
{
	struct file_queue *fq = q->priv;
	struct file_req *req = fq->free_list;

	if (req) {
		fq->free_list = req->next;
	} else {
		req = calloc(1, sizeof(*req));
		if (!req)
			return -ENOMEM;
	}
	req->lio.cb = file_cb;
	req->fq = fq;
	req->io = io;
	req->done = 0;
	req->idx = 0;
	req->skip = 0;
	req->force_buffered = false;
	req->no_aio = false;
	req->punch = false;
	req->retries = 0;
	req->next = NULL;
	io->priv = req;
	fq->inflight++;
	if (io->op == UMDEV_BDEV_READ || io->op == UMDEV_BDEV_WRITE)
		file_advance(req, 0); /* step over leading empty iovecs */
	file_issue(req);
	return 0;
}

const struct umdev_bdev_ops umdev_bdev_file_ops = {
	.kind = "file",
	.open = file_open,
	.close = file_close,
	.queue_new = file_queue_new,
	.queue_free = file_queue_free,
	.submit = file_submit,
	.flush_sync = file_flush_sync,
};
