/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Block backend front: spec parsing, request validation and dispatch to the
 * backend's ops table. Requests come from guest-driven devices, so every
 * field is checked here before a backend sees it: a backend never has to
 * guard against out-of-range offsets or lengths that disagree with the
 * iovecs.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"
#include "umdev/log.h"

static const struct umdev_bdev_ops *const bdev_kinds[] = {
	&umdev_bdev_file_ops,
	&umdev_bdev_ram_ops,
	&umdev_bdev_null_ops,
	&umdev_bdev_nbd_ops,
	&umdev_bdev_nbd_unix_ops,
	&umdev_bdev_nbds_ops,
	&umdev_bdev_nbds_unix_ops,
#ifdef UMDEV_HAVE_RBD
	&umdev_bdev_rbd_ops,
#endif
};

int umdev_bdev_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (!s || !out)
		return -EINVAL;
	/* Digits only: strtoull would accept spaces, signs and hex. */
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	switch (*p) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1ULL << 10;
		break;
	case 'm': case 'M':
		mult = 1ULL << 20;
		break;
	case 'g': case 'G':
		mult = 1ULL << 30;
		break;
	case 't': case 'T':
		mult = 1ULL << 40;
		break;
	default:
		return -EINVAL;
	}
	if (*p && p[1] != '\0')
		return -EINVAL;
	if (v == 0)
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

umdev_bdev *umdev_bdev_open(const char *spec, bool readonly, int *err)
{
	const struct umdev_bdev_ops *ops = NULL;
	const char *colon, *arg;
	umdev_bdev *b;
	size_t klen;
	int ret;

	if (!spec || !(colon = strchr(spec, ':'))) {
		if (spec)
			umdev_err("backend '%s': expected KIND:ARG (file:, ram:, null:, nbd[s]://, nbd[s]+unix://, rbd:)", spec);
		*err = -EINVAL;
		return NULL;
	}
	klen = (size_t)(colon - spec);
	arg = colon + 1;
	for (size_t i = 0; i < sizeof(bdev_kinds) / sizeof(bdev_kinds[0]); i++) {
		if (strlen(bdev_kinds[i]->kind) == klen &&
		    memcmp(bdev_kinds[i]->kind, spec, klen) == 0)
			ops = bdev_kinds[i];
	}
	if (!ops) {
		umdev_err("backend '%s': unknown kind (file:, ram:, null:, nbd[s]://, nbd[s]+unix://, rbd:)", spec);
		*err = -EINVAL;
		return NULL;
	}
	if (*arg == '\0') {
		umdev_err("backend '%s': missing argument", spec);
		*err = -EINVAL;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b || !(b->spec = strdup(spec))) {
		free(b);
		*err = -ENOMEM;
		return NULL;
	}
	b->ops = ops;
	b->info.readonly = readonly;
	ret = ops->open(b, arg, readonly);
	if (ret < 0) {
		umdev_err("backend '%s': %s", spec, strerror(-ret));
		free(b->spec);
		free(b);
		*err = ret;
		return NULL;
	}
	atomic_init(&b->size, b->info.size);
	if (readonly) {
		b->info.readonly = true;
		b->info.can_discard = false;
		b->info.can_write_zeroes = false;
	}
	return b;
}

void umdev_bdev_close(umdev_bdev *b)
{
	if (!b)
		return;
	if (atomic_load_explicit(&b->nqueues, memory_order_acquire))
		umdev_warn("backend '%s': closed with queues still open", b->spec);
	b->ops->close(b);
	free(b->spec);
	free(b);
}

void umdev_bdev_get_info(const umdev_bdev *b, struct umdev_bdev_info *info)
{
	*info = b->info;
	info->size = atomic_load_explicit(&b->size, memory_order_relaxed);
}

int umdev_bdev_watch_size(umdev_bdev *b, umdev_loop *loop, umdev_bdev_size_cb cb, void *opaque)
{
	if (!b || !loop || !cb)
		return -EINVAL;
	if (atomic_load_explicit(&b->size_loop, memory_order_relaxed))
		return -EBUSY;
	b->size_cb = cb;
	b->size_opaque = opaque;
	atomic_store_explicit(&b->size_loop, loop, memory_order_release);
	return 0;
}

umdev_loop *umdev_bdev_size_loop(const umdev_bdev *b)
{
	return atomic_load_explicit(&b->size_loop, memory_order_acquire);
}

void umdev_bdev_size_changed(umdev_bdev *b, uint64_t size)
{
	uint64_t old = atomic_load_explicit(&b->size, memory_order_relaxed);

	if (size == old)
		return; /* the header changed for another reason */
	umdev_info("backend '%s': size now %llu bytes (was %llu)", b->spec,
		   (unsigned long long)size, (unsigned long long)old);
	atomic_store_explicit(&b->size, size, memory_order_relaxed);
	if (b->size_cb)
		b->size_cb(b->size_opaque, size);
}

const char *umdev_bdev_spec(const umdev_bdev *b)
{
	return b->spec;
}

int umdev_bdev_flush_sync(umdev_bdev *b)
{
	return b->ops->flush_sync(b);
}

umdev_bdev_queue *umdev_bdev_queue_new(umdev_bdev *b, umdev_loop *loop, int *err)
{
	umdev_bdev_queue *q;
	int ret;

	if (!b || !loop) {
		*err = -EINVAL;
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		*err = -ENOMEM;
		return NULL;
	}
	q->b = b;
	q->loop = loop;
	ret = b->ops->queue_new(q);
	if (ret < 0) {
		free(q);
		*err = ret;
		return NULL;
	}
	atomic_fetch_add_explicit(&b->nqueues, 1, memory_order_release);
	return q;
}

void umdev_bdev_queue_free(umdev_bdev_queue *q)
{
	if (!q)
		return;
	q->b->ops->queue_free(q);
	atomic_fetch_sub_explicit(&q->b->nqueues, 1, memory_order_release);
	free(q);
}

void umdev_bdev_queue_get_stats(const umdev_bdev_queue *q, struct umdev_bdev_queue_stats *st)
{
	*st = q->stats;
}

/* 0 if the request is well-formed for @b, else the -errno to complete it with. */
static int bdev_check(const umdev_bdev *b, const struct umdev_bdev_io *io)
{
	uint64_t total = 0, size;

	switch (io->op) {
	case UMDEV_BDEV_READ:
	case UMDEV_BDEV_WRITE:
		if (io->iovcnt < 0 || (io->iovcnt > 0 && !io->iov))
			return -EINVAL;
		for (int i = 0; i < io->iovcnt; i++) {
			if (io->iov[i].iov_len && !io->iov[i].iov_base)
				return -EINVAL;
			if (io->iov[i].iov_len > UINT64_MAX - total)
				return -EINVAL;
			total += io->iov[i].iov_len;
		}
		if (total != io->len)
			return -EINVAL;
		if (io->op == UMDEV_BDEV_WRITE && b->info.readonly)
			return -EROFS;
		break;
	case UMDEV_BDEV_FLUSH:
		return 0; /* offset and len are meaningless */
	case UMDEV_BDEV_DISCARD:
		if (b->info.readonly)
			return -EROFS;
		if (!b->info.can_discard)
			return -EOPNOTSUPP;
		break;
	case UMDEV_BDEV_WRITE_ZEROES:
		if (b->info.readonly)
			return -EROFS;
		if (!b->info.can_write_zeroes)
			return -EOPNOTSUPP;
		break;
	default:
		return -EINVAL;
	}
	/* Written so that offset + len cannot overflow; the size may change (rbd resize). */
	size = atomic_load_explicit(&b->size, memory_order_relaxed);
	if (io->offset > size || io->len > size - io->offset)
		return -EINVAL;
	return 0;
}

int umdev_bdev_submit(umdev_bdev_queue *q, struct umdev_bdev_io *io)
{
	int ret;

	if (!q || !io || !io->done)
		return -EINVAL;
	ret = bdev_check(q->b, io);
	if (ret < 0) {
		io->done(io, ret);
		return 0;
	}
	/* Nothing to transfer: complete now rather than ask the kernel. */
	if (io->op != UMDEV_BDEV_FLUSH && io->len == 0) {
		io->done(io, 0);
		return 0;
	}
	return q->b->ops->submit(q, io);
}

void umdev_bdev_iov_to_buf(const struct iovec *iov, int iovcnt, void *dst, uint64_t len)
{
	char *d = dst;

	for (int i = 0; i < iovcnt && len; i++) {
		size_t n = iov[i].iov_len < len ? iov[i].iov_len : (size_t)len;

		memcpy(d, iov[i].iov_base, n);
		d += n;
		len -= n;
	}
}

void umdev_bdev_buf_to_iov(const struct iovec *iov, int iovcnt, const void *src, uint64_t len)
{
	const char *s = src;

	for (int i = 0; i < iovcnt && len; i++) {
		size_t n = iov[i].iov_len < len ? iov[i].iov_len : (size_t)len;

		memcpy(iov[i].iov_base, s, n);
		s += n;
		len -= n;
	}
}

void umdev_bdev_iov_zero(const struct iovec *iov, int iovcnt, uint64_t skip)
{
	for (int i = 0; i < iovcnt; i++) {
		size_t len = iov[i].iov_len;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		memset((char *)iov[i].iov_base + skip, 0, len - (size_t)skip);
		skip = 0;
	}
}
