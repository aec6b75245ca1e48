/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Views: one contiguous host mapping of a guest range that spans adjacent
 * regions. Behind a vIOMMU a client maps guest memory one IOMMU page per
 * window (QEMU sends a DMA_MAP per 4 KiB page), so a ring of several pages
 * lies in as many regions, each mmapped on its own and scattered in our
 * address space. A ring is read and written through plain pointers, so it
 * needs the pages side by side: mremap() with old_size 0 duplicates a shared
 * mapping, and placing each window's pages back to back in one reservation
 * gives a second, contiguous mapping of the same guest memory.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem_internal.h"

struct umdev_as_view {
	void *base;
	size_t len;
	int guard; /* the SIGBUS guard covers the view like the regions it copies */
};

static uintptr_t page_size(void)
{
	return (uintptr_t)sysconf(_SC_PAGESIZE);
}

/*
 * Linux duplicates a shared mapping with mremap(old_size 0); an emulator may
 * not (qemu-user refuses it, which our arm64 test runs live under). Asked
 * once: without it no view can be made.
 */
bool umdev_as_views_supported(void)
{
	static atomic_int known; /* 0: not asked yet, 1: yes, -1: no */
	int k = atomic_load_explicit(&known, memory_order_relaxed);

	if (!k) {
		size_t ps = (size_t)page_size();
		uint8_t *a = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
				  0);
		uint8_t *b = a == MAP_FAILED ? MAP_FAILED : mremap(a, 0, ps, MREMAP_MAYMOVE);

		k = -1;
		if (b != MAP_FAILED) {
			a[1] = 0x5a; /* the same page twice, not a copy */
			k = b[1] == 0x5a ? 1 : -1;
			munmap(b, ps);
		}
		if (a != MAP_FAILED)
			munmap(a, ps);
		atomic_store_explicit(&known, k, memory_order_relaxed);
	}
	return k > 0;
}

/* As umdev_as_map_span(); *@first and *@count: the regions the range lies in. */
static int span(const umdev_as_map *m, uint64_t addr, uint64_t len, unsigned prot,
		unsigned *first, unsigned *count)
{
	const unsigned access = prot & (UMDEV_MEM_READ | UMDEV_MEM_WRITE);
	const uintptr_t ps = page_size();
	const uint64_t last = addr + len - 1;
	unsigned i = mem_region_index(m, addr), n;

	if (!len || last < addr)
		return -EINVAL;
	if (i == m->n)
		return -ENOENT;
	for (n = 0;; n++) {
		const struct umdev_mem_region *r = m->r[i + n], *next;

		/* A shadow is our private copy: no view can share it. */
		if (r->shadow)
			return -ENOENT;
		if ((r->prot & access) != access)
			return -EACCES;
		if (last - r->gpa < r->size)
			break;
		if (i + n + 1 == m->n || m->r[i + n + 1]->gpa != r->gpa + r->size)
			return -ENOENT;
		if (!umdev_as_views_supported())
			return -EOPNOTSUPP;
		next = m->r[i + n + 1];
		/* Pages can be placed side by side only where windows meet on a page boundary. */
		if (next->gpa % ps || (uintptr_t)(r->host + r->size) % ps ||
		    (uintptr_t)next->host % ps)
			return -EXDEV;
	}
	*first = i;
	*count = n + 1;
	return n ? 1 : 0;
}

int umdev_as_map_span(const umdev_as_map *m, uint64_t addr, uint64_t len, unsigned prot)
{
	unsigned first, count;

	return span(m, addr, len, prot, &first, &count);
}

const char *umdev_as_span_why(int err)
{
	switch (err) {
	case -ENOENT: return "not in guest memory";
	case -EACCES: return "in a window without the access it needs";
	case -EXDEV: return "across windows that do not meet on a page boundary";
	case -EINVAL: return "empty or wrapping around";
	case -EOPNOTSUPP: return "across windows, which this kernel cannot join (mremap)";
	default: return strerror(-err);
	}
}

void umdev_as_view_free(umdev_as_view *v)
{
	if (!v)
		return;
	mem_guard_range_del(v->guard);
	munmap(v->base, v->len);
	free(v);
}

/* A view of [@addr, +@len) over regions @first..+@count of @m. */
static umdev_as_view *view_new(const umdev_as_map *m, uint64_t addr, uint64_t len,
			       unsigned first, unsigned count, uintptr_t *lead, int *err)
{
	const uintptr_t ps = page_size();
	const struct umdev_mem_region *r0 = m->r[first];
	uintptr_t h0 = (uintptr_t)(r0->host + (addr - r0->gpa));
	umdev_as_view *v = calloc(1, sizeof(*v));
	uint64_t at = addr, end = addr + len;
	size_t off = 0;

	if (!v) {
		*err = -ENOMEM;
		return NULL;
	}
	*lead = h0 % ps;
	v->len = (*lead + len + ps - 1) / ps * ps;
	v->guard = -1;
	/* Reserve the whole span first, so the pieces land in one hole. */
	v->base = mmap(NULL, v->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (v->base == MAP_FAILED) {
		*err = -errno;
		free(v);
		return NULL;
	}
	for (unsigned i = first; i < first + count; i++) {
		const struct umdev_mem_region *r = m->r[i];
		uint64_t stop = end - r->gpa < r->size ? end : r->gpa + r->size;
		uintptr_t h = (uintptr_t)(r->host + (at - r->gpa));
		uintptr_t from = h / ps * ps;
		size_t plen = ((h + (stop - at)) - from + ps - 1) / ps * ps;
		void *p = mremap((void *)from, 0, plen, MREMAP_MAYMOVE | MREMAP_FIXED,
				 (uint8_t *)v->base + off);

		if (p == MAP_FAILED) {
			*err = -errno;
			munmap(v->base, v->len);
			free(v);
			return NULL;
		}
		off += plen;
		at = stop;
	}
	v->guard = mem_guard_range_add(m->guard_sink, v->base, v->len);
	return v;
}

void *umdev_as_map_translate_view(const umdev_as_map *m, uint64_t addr, uint64_t len,
				  unsigned prot, umdev_as_view **view, int *err)
{
	unsigned first, count;
	uintptr_t lead;
	int ret = span(m, addr, len, prot, &first, &count);

	*view = NULL;
	if (ret < 0) {
		*err = ret;
		return NULL;
	}
	if (ret == 0)
		return m->r[first]->host + (addr - m->r[first]->gpa);
	*view = view_new(m, addr, len, first, count, &lead, err);
	return *view ? (uint8_t *)(*view)->base + lead : NULL;
}
