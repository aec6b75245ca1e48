/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest address translation. Hot path: called for every descriptor, so the
 * region lookup is a binary search over the sorted, immutable map.
 */
#include <errno.h>
#include <string.h>

#include "mem_internal.h"

unsigned mem_region_index(const umdev_as_map *m, uint64_t addr)
{
	unsigned lo = 0, hi = m->n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct umdev_mem_region *r = m->r[mid];

		if (addr < r->gpa)
			hi = mid;
		else if (addr - r->gpa >= r->size)
			lo = mid + 1;
		else
			return mid;
	}
	return m->n;
}

/* Region containing @addr, or NULL. */
static const struct umdev_mem_region *find(const umdev_as_map *m, uint64_t addr)
{
	unsigned i = mem_region_index(m, addr);

	return i < m->n ? m->r[i] : NULL;
}

/* @r exists, allows the access, and is no shadow unless the caller takes one. */
static bool reachable(const struct umdev_mem_region *r, unsigned prot)
{
	unsigned access = prot & (UMDEV_MEM_READ | UMDEV_MEM_WRITE);

	return r && (r->prot & access) == access && (!r->shadow || (prot & UMDEV_MEM_SHADOW));
}

void *umdev_as_map_translate(const umdev_as_map *m, uint64_t addr, uint64_t len, unsigned prot)
{
	const struct umdev_mem_region *r = find(m, addr);
	uint64_t off;

	if (!reachable(r, prot))
		return NULL;
	off = addr - r->gpa;
	if (len > r->size - off)
		return NULL;
	return r->host + off;
}

void *umdev_as_map_translate_prefix(const umdev_as_map *m, uint64_t addr, uint64_t len,
				    unsigned prot, uint64_t *got)
{
	const struct umdev_mem_region *r = find(m, addr);
	uint64_t off;

	*got = 0;
	if (!reachable(r, prot))
		return NULL;
	off = addr - r->gpa;
	*got = r->size - off < len ? r->size - off : len;
	return r->host + off;
}

int umdev_as_map_to_iov(const umdev_as_map *m, uint64_t addr, uint64_t len, unsigned prot,
			struct iovec *iov, unsigned max_iov)
{
	unsigned n = 0;

	if (len && addr + len - 1 < addr)
		return -EFAULT;
	while (len) {
		const struct umdev_mem_region *r = find(m, addr);
		uint64_t off, chunk;

		if (!reachable(r, prot))
			return -EFAULT;
		if (n == max_iov)
			return -ENOBUFS;
		off = addr - r->gpa;
		chunk = r->size - off < len ? r->size - off : len;
		iov[n].iov_base = r->host + off;
		iov[n].iov_len = chunk;
		n++;
		addr += chunk;
		len -= chunk;
	}
	return n;
}

int umdev_as_map_uva_to_gpa(const umdev_as_map *m, uint64_t uva, uint64_t *gpa)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct umdev_mem_region *r = m->r[i];

		if (!r->shadow && uva >= r->uva && uva - r->uva < r->size) {
			*gpa = r->gpa + (uva - r->uva);
			return 0;
		}
	}
	return -EFAULT;
}

static int copy(const umdev_as_map *m, uint64_t addr, void *buf, size_t len, bool to_guest)
{
	uint8_t *p = buf;

	if (len && addr + len - 1 < addr)
		return -EFAULT;
	while (len) {
		const struct umdev_mem_region *r = find(m, addr);
		uint64_t off, chunk;

		if (!reachable(r, to_guest ? UMDEV_MEM_WRITE : UMDEV_MEM_READ))
			return -EFAULT;
		off = addr - r->gpa;
		chunk = r->size - off < len ? r->size - off : len;
		if (to_guest)
			memcpy(r->host + off, p, chunk);
		else
			memcpy(p, r->host + off, chunk);
		p += chunk;
		addr += chunk;
		len -= chunk;
	}
	return 0;
}

int umdev_as_map_read(const umdev_as_map *m, uint64_t addr, void *buf, size_t len)
{
	return copy(m, addr, buf, len, false);
}

int umdev_as_map_write(const umdev_as_map *m, uint64_t addr, const void *buf, size_t len)
{
	return copy(m, addr, (void *)buf, len, true);
}
