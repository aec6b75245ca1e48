/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Address spaces: region bookkeeping, versioned maps and mmap lifetimes.
 * Translation lives in translate.c.
 */
#include <errno.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "mem_internal.h"
#include "umdev/log.h"
#include "util/fd.h"

static void region_put(struct umdev_mem_region *r)
{
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
		/* Nobody can touch it now: withdraw it from the guard, then unmap. */
		mem_guard_range_del(r->guard);
		munmap(r->mmap_base, r->mmap_len);
		free(r);
	}
}

static struct umdev_as_map *map_alloc(unsigned n, uint64_t version)
{
	struct umdev_as_map *m = calloc(1, sizeof(*m) + n * sizeof(m->r[0]));

	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	m->guard_sink = -1;
	m->n = n;
	m->version = version;
	return m;
}

umdev_as_map *umdev_as_map_ref(umdev_as_map *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void umdev_as_map_put(umdev_as_map *m)
{
	if (!m)
		return;
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
		for (unsigned i = 0; i < m->n; i++)
			region_put(m->r[i]);
		free(m);
	}
}

uint64_t umdev_as_map_version(const umdev_as_map *m)
{
	return m->version;
}

bool umdev_as_map_covers(const umdev_as_map *newer, const umdev_as_map *older)
{
	return umdev_as_map_covers_except(newer, older, 0, 0);
}

bool umdev_as_map_covers_except(const umdev_as_map *newer, const umdev_as_map *older,
				uint64_t addr, uint64_t len)
{
	const uint64_t last = addr + len - 1;
	unsigned j = 0;

	/* Both keep their regions in guest-address order, which insert() preserves. */
	for (unsigned i = 0; i < older->n; i++) {
		const struct umdev_mem_region *r = older->r[i];

		if (len && r->gpa >= addr && r->gpa + r->size - 1 <= last)
			continue;
		while (j < newer->n && newer->r[j] != r)
			j++;
		if (j == newer->n)
			return false;
		j++;
	}
	return true;
}

umdev_as *umdev_as_new(int *err)
{
	umdev_as *as = calloc(1, sizeof(*as));

	if (!as) {
		*err = -ENOMEM;
		return NULL;
	}
	as->cur = map_alloc(0, 0);
	if (!as->cur) {
		free(as);
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&as->lock, NULL);
	as->guard_sink = mem_guard_sink_new();
	return as;
}

void umdev_as_free(umdev_as *as)
{
	if (!as)
		return;
	umdev_as_map_put(as->cur);
	mem_guard_sink_free(as->guard_sink);
	pthread_mutex_destroy(&as->lock);
	free(as);
}

umdev_as_map *umdev_as_get_map(umdev_as *as)
{
	umdev_as_map *m;

	pthread_mutex_lock(&as->lock);
	m = umdev_as_map_ref(as->cur);
	pthread_mutex_unlock(&as->lock);
	return m;
}

unsigned umdev_as_num_regions(const umdev_as *as)
{
	return as->cur->n;
}

/* Make @next current; the old map lives on while someone holds it. */
static void publish(umdev_as *as, struct umdev_as_map *next)
{
	struct umdev_as_map *old;

	next->guard_sink = as->guard_sink;
	pthread_mutex_lock(&as->lock);
	old = as->cur;
	as->cur = next;
	pthread_mutex_unlock(&as->lock);
	umdev_as_map_put(old);
}

/*
 * hugetlbfs refuses mmap lengths and offsets that are not multiples of its
 * page size, so align to the fd's file-system block size there.
 */
static size_t fd_page_size(int fd)
{
	struct statfs sfs;
	long ps = sysconf(_SC_PAGESIZE);

	if (fstatfs(fd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC && sfs.f_bsize > ps)
		return sfs.f_bsize;
	return ps;
}

/* A region for mapping [@p, +@len) (unmapped here on failure), one reference. */
static struct umdev_mem_region *region_new(void *p, size_t len, uint64_t gpa, uint64_t size,
					   unsigned prot)
{
	struct umdev_mem_region *r = calloc(1, sizeof(*r));

	if (!r) {
		munmap(p, len);
		return NULL;
	}
	r->gpa = gpa;
	r->size = size;
	r->prot = prot;
	r->mmap_base = p;
	r->mmap_len = len;
	atomic_init(&r->refs, 1);
	return r;
}

static int region_map(umdev_as *as, const struct umdev_mem_region_desc *d,
		      struct umdev_mem_region **out)
{
	struct umdev_mem_region *r;
	size_t ps = fd_page_size(d->fd);
	uint64_t delta = d->mmap_offset % ps;
	uint64_t len = d->size + delta;
	int mprot = 0;
	void *p;

	bool sealed;
	int ret;

	if (len < d->size || len + (ps - 1) < len)
		return -EINVAL;
	ret = umdev_fd_check_range(d->fd, d->mmap_offset, d->size, &sealed);
	if (ret < 0)
		return ret;
	if (!sealed)
		umdev_dbg("guest region at 0x%llx: its file can still shrink (not sealed)",
			  (unsigned long long)d->guest_addr);
	len = (len + ps - 1) / ps * ps;
	if (len != (size_t)len)
		return -EINVAL;
	if (d->prot & UMDEV_MEM_READ)
		mprot |= PROT_READ;
	if (d->prot & UMDEV_MEM_WRITE)
		mprot |= PROT_WRITE;
	p = mmap(NULL, len, mprot, MAP_SHARED | MAP_NORESERVE, d->fd, d->mmap_offset - delta);
	if (p == MAP_FAILED)
		return -errno;
	r = region_new(p, len, d->guest_addr, d->size, d->prot);
	if (!r)
		return -ENOMEM;
	r->uva = d->user_addr;
	r->host = (uint8_t *)p + delta;
	/* The client may shrink the file under us (unsealed memfd, hugetlbfs). */
	r->guard = mem_guard_range_add(as->guard_sink, p, len);
	*out = r;
	return 0;
}

/* -EEXIST/-ENOSPC unless [@gpa, +@size) fits in @cur; *pos: where it goes. */
static int find_slot(const struct umdev_as_map *cur, uint64_t gpa, uint64_t size, unsigned *pos)
{
	unsigned p;

	for (p = 0; p < cur->n && cur->r[p]->gpa < gpa; p++)
		;
	/* Overlap with the neighbours on either side? (inclusive ends avoid overflow) */
	if (p > 0 && cur->r[p - 1]->gpa + cur->r[p - 1]->size - 1 >= gpa)
		return -EEXIST;
	if (p < cur->n && gpa + size - 1 >= cur->r[p]->gpa)
		return -EEXIST;
	if (cur->n >= UMDEV_AS_MAX_REGIONS)
		return -ENOSPC;
	*pos = p;
	return 0;
}

/* Publish a map with @r (owned; freed on failure) inserted at @pos. */
static int insert(umdev_as *as, struct umdev_mem_region *r, unsigned pos)
{
	struct umdev_as_map *cur = as->cur, *next;
	unsigned i;

	next = map_alloc(cur->n + 1, ++as->version);
	if (!next) {
		region_put(r);
		return -ENOMEM;
	}
	for (i = 0; i < pos; i++)
		next->r[i] = cur->r[i];
	next->r[pos] = r;
	for (i = pos; i < cur->n; i++)
		next->r[i + 1] = cur->r[i];
	for (i = 0; i < next->n; i++) {
		next->nshadow += next->r[i]->shadow;
		if (next->r[i] != r)
			atomic_fetch_add_explicit(&next->r[i]->refs, 1, memory_order_relaxed);
	}
	publish(as, next);
	return 0;
}

static bool bad_range(uint64_t gpa, uint64_t size, unsigned prot)
{
	return size == 0 || gpa + size - 1 < gpa ||
	       !(prot & (UMDEV_MEM_READ | UMDEV_MEM_WRITE)) ||
	       (prot & ~(UMDEV_MEM_READ | UMDEV_MEM_WRITE));
}

int umdev_as_add_region(umdev_as *as, const struct umdev_mem_region_desc *d)
{
	struct umdev_mem_region *r = NULL;
	unsigned pos;
	int ret;

	if (bad_range(d->guest_addr, d->size, d->prot) ||
	    (d->user_addr && d->user_addr + d->size - 1 < d->user_addr) || d->fd < 0) {
		ret = -EINVAL;
		goto out_close;
	}
	ret = find_slot(as->cur, d->guest_addr, d->size, &pos);
	if (ret < 0)
		goto out_close;
	ret = region_map(as, d, &r);
	if (ret < 0)
		goto out_close;
	close(d->fd);
	return insert(as, r, pos);

out_close:
	close(d->fd);
	return ret;
}

int umdev_as_add_shadow(umdev_as *as, uint64_t guest_addr, uint64_t size, unsigned prot)
{
	struct umdev_mem_region *r;
	unsigned pos;
	size_t len;
	void *p;
	int ret;

	if (bad_range(guest_addr, size, prot) || size + 4095 < size || size != (size_t)size)
		return -EINVAL;
	ret = find_slot(as->cur, guest_addr, size, &pos);
	if (ret < 0)
		return ret;
	len = (size + 4095) & ~(size_t)4095;
	/* Ours, read and written by us alone: the client never sees these pages. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	r = region_new(p, len, guest_addr, size, prot);
	if (!r)
		return -ENOMEM;
	r->host = p;
	r->guard = -1;
	r->shadow = true;
	return insert(as, r, pos);
}

bool umdev_as_map_has_shadow(const umdev_as_map *m)
{
	return m->nshadow != 0;
}

int umdev_as_map_shadow_gpa(const umdev_as_map *m, const void *p, uint64_t len, uint64_t *gpa)
{
	uintptr_t a = (uintptr_t)p;

	for (unsigned i = 0; m->nshadow && i < m->n; i++) {
		const struct umdev_mem_region *r = m->r[i];
		uintptr_t h = (uintptr_t)r->host;

		if (r->shadow && a >= h && a - h < r->size && len <= r->size - (a - h)) {
			*gpa = r->gpa + (a - h);
			return 1;
		}
	}
	return 0;
}

int umdev_as_remove_region(umdev_as *as, uint64_t guest_addr, uint64_t size)
{
	struct umdev_as_map *cur = as->cur, *next;
	unsigned i, j, victim = cur->n;

	for (i = 0; i < cur->n; i++)
		if (cur->r[i]->gpa == guest_addr && cur->r[i]->size == size)
			victim = i;
	if (victim == cur->n)
		return -ENOENT;
	next = map_alloc(cur->n - 1, ++as->version);
	if (!next)
		return -ENOMEM;
	for (i = 0, j = 0; i < cur->n; i++) {
		if (i == victim)
			continue;
		next->nshadow += cur->r[i]->shadow;
		next->r[j++] = cur->r[i];
		atomic_fetch_add_explicit(&cur->r[i]->refs, 1, memory_order_relaxed);
	}
	publish(as, next);
	return 0;
}

void umdev_as_clear(umdev_as *as)
{
	struct umdev_as_map *next = map_alloc(0, ++as->version);

	if (!next) {
		/* Cannot allocate an empty map: drop regions one by one instead. */
		while (as->cur->n && umdev_as_remove_region(as, as->cur->r[0]->gpa,
							    as->cur->r[0]->size) == 0)
			;
		return;
	}
	publish(as, next);
}
