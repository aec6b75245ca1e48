/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Synchronous backends: "ram:SIZE" (anonymous memory) and "null:SIZE"
 * (reads zeroes, drops writes). Both complete every request before
 * umdev_bdev_submit() returns; requests reach them already range-checked.
 *
 * ram memory is mapped MAP_NORESERVE and untouched pages read as zeroes, so
 * a large ram disk costs only what is written. Zeroing a range gives whole
 * pages back to the kernel (MADV_DONTNEED) and memsets the partial edges.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend_internal.h"
#include "umdev/mem.h"
#include "umdev/log.h"

struct ram_bdev {
	char *base;
	size_t size;
};

/* Size argument shared by ram: and null:, a whole number of sectors. */
static int mem_parse(const char *arg, uint64_t *size)
{
	int ret = umdev_bdev_parse_size(arg, size);

	if (ret == 0 && *size % 512)
		ret = -EINVAL;
	if (ret < 0)
		umdev_err("size '%s': want a positive multiple of 512 bytes, like 4096, 512K, 64M, 1G",
			  arg);
	return ret;
}

static void mem_fill_info(umdev_bdev *b, uint64_t size)
{
	b->info.size = size;
	b->info.block_size = 512;
	b->info.physical_block_size = 4096;
	b->info.can_discard = true;
	b->info.can_write_zeroes = true;
	b->info.volatile_cache = false;
	b->info.direct = false;
}

static int mem_queue_new(umdev_bdev_queue *q)
{
	return 0;
}

static void mem_queue_free(umdev_bdev_queue *q)
{
}

static int mem_flush_sync(umdev_bdev *b)
{
	return 0;
}

/* ---- ram ---- */

static int ram_open(umdev_bdev *b, const char *arg, bool readonly)
{
	struct ram_bdev *r;
	uint64_t size;
	void *p;
	int ret;

	ret = mem_parse(arg, &size);
	if (ret < 0)
		return ret;
	if (size > SIZE_MAX / 2)
		return -E2BIG;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		free(r);
		return ret;
	}
	r->base = p;
	r->size = (size_t)size;
	b->priv = r;
	mem_fill_info(b, size);
	return 0;
}

static void ram_close(umdev_bdev *b)
{
	struct ram_bdev *r = b->priv;

	munmap(r->base, r->size);
	free(r);
}

static void ram_zero(struct ram_bdev *r, uint64_t off, uint64_t len)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = (off + page - 1) & ~(page - 1);
	uint64_t end = (off + len) & ~(page - 1);

	if (start >= end || madvise(r->base + start, (size_t)(end - start), MADV_DONTNEED) < 0) {
		/* No whole page inside, or madvise refused: plain memset. */
		memset(r->base + off, 0, (size_t)len);
		return;
	}
	memset(r->base + off, 0, (size_t)(start - off));
	memset(r->base + end, 0, (size_t)(off + len - end));
}

static int ram_submit(umdev_bdev_queue *q, struct umdev_bdev_io *io)
{
	struct ram_bdev *r = q->b->priv;
	/* Guest memory taken away under the copy reads as zeros: fail the request. */
	unsigned long faults = umdev_mem_fault_count();

	switch (io->op) {
	case UMDEV_BDEV_READ:
		umdev_bdev_buf_to_iov(io->iov, io->iovcnt, r->base + io->offset, io->len);
		break;
	case UMDEV_BDEV_WRITE:
		umdev_bdev_iov_to_buf(io->iov, io->iovcnt, r->base + io->offset, io->len);
		break;
	case UMDEV_BDEV_FLUSH:
		break;
	case UMDEV_BDEV_DISCARD:
	case UMDEV_BDEV_WRITE_ZEROES:
		ram_zero(r, io->offset, io->len);
		break;
	}
	io->done(io, umdev_mem_fault_count() != faults ? -EFAULT : 0);
	return 0;
}

const struct umdev_bdev_ops umdev_bdev_ram_ops = {
	.kind = "ram",
	.open = ram_open,
	.close = ram_close,
	.queue_new = mem_queue_new,
	.queue_free = mem_queue_free,
	.submit = ram_submit,
	.flush_sync = mem_flush_sync,
};

/* ---- null ---- */

static int null_open(umdev_bdev *b, const char *arg, bool readonly)
{
	uint64_t size;
	int ret;

	ret = mem_parse(arg, &size);
	if (ret < 0)
		return ret;
	mem_fill_info(b, size);
	return 0;
}

static void null_close(umdev_bdev *b)
{
}

static int null_submit(umdev_bdev_queue *q, struct umdev_bdev_io *io)
{
	if (io->op == UMDEV_BDEV_READ)
		umdev_bdev_iov_zero(io->iov, io->iovcnt, 0);
	io->done(io, 0);
	return 0;
}

const struct umdev_bdev_ops umdev_bdev_null_ops = {
	.kind = "null",
	.open = null_open,
	.close = null_close,
	.queue_new = mem_queue_new,
	.queue_free = mem_queue_free,
	.submit = null_submit,
	.flush_sync = mem_flush_sync,
};
