/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dirty page log for live migration (vhost-user VHOST_F_LOG_ALL with
 * LOG_SHMFD).
 *
 * The front-end hands us a shared bitmap: bit N stands for the 4 KiB page of
 * guest physical address N * 4096, bits numbered from the least significant
 * bit of byte 0. While it migrates, it clears the bits it has copied and
 * copies again every page whose bit comes back. So every byte the device
 * writes into guest memory must set its page's bit, after the write: a bit
 * set before the data lands could be collected and cleared with the old
 * data copied, and the page would never be sent again.
 *
 * Marking is an atomic OR on one byte at a time (the front-end clears bits
 * concurrently with atomic exchanges), lock-free, from any thread. The
 * front-end chose the log's size; a page past its end is not marked (there
 * is nowhere to mark it): that is counted and reported once, since the
 * migration it belongs to can then lose data.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "umdev/log.h"
#include "umdev/mem.h"
#include "mem/mem_internal.h"
#include "util/fd.h"
#include "util/shm.h"

struct umdev_dirty_log {
	uint8_t *bits;
	uint64_t size; /* bytes of bitmap */
	_Atomic uint64_t overflows; /* marks past the end */
};

umdev_dirty_log *umdev_dirty_log_new(int fd, uint64_t size, uint64_t offset, int *err)
{
	struct umdev_dirty_log *l;
	struct stat st;
	bool sealed;
	void *p;

	/*
	 * The fd is the front-end's: only a regular (memfd or tmpfs) file that
	 * holds the whole range is mapped. Anything else (a socket, a device,
	 * a pipe) is refused before mmap can do something surprising with it.
	 */
	if (size == 0 || size > UMDEV_DIRTY_LOG_MAX || offset % 4096 ||
	    offset > UINT64_MAX - size) {
		*err = -EINVAL;
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		*err = -errno;
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		*err = -EBADFD;
		return NULL;
	}
	/* The same check as for guest memory: does the file hold the range? */
	if (umdev_fd_check_range(fd, offset, size, &sealed) < 0) {
		*err = -ERANGE;
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		*err = -ENOMEM;
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (p == MAP_FAILED) {
		*err = -errno;
		free(l);
		return NULL;
	}
	l->bits = p;
	l->size = size;
	*err = 0;
	return l;
}

void umdev_dirty_log_free(umdev_dirty_log *l)
{
	if (!l)
		return;
	munmap(l->bits, l->size);
	free(l);
}

void *umdev_dirty_log_base(const umdev_dirty_log *l)
{
	return l->bits;
}

uint64_t umdev_dirty_log_size(const umdev_dirty_log *l)
{
	return l->size;
}

bool umdev_dirty_log_covers(const umdev_dirty_log *l, uint64_t gpa, uint64_t len)
{
	uint64_t last;

	if (!len)
		return true;
	if (gpa > UINT64_MAX - (len - 1))
		return false;
	last = (gpa + len - 1) / UMDEV_DIRTY_LOG_PAGE;
	return last / 8 < l->size;
}

void umdev_dirty_log_mark(umdev_dirty_log *l, uint64_t gpa, uint64_t len)
{
	uint64_t page, last;

	if (!l || !len)
		return;
	if (gpa > UINT64_MAX - (len - 1)) {
		last = UINT64_MAX / UMDEV_DIRTY_LOG_PAGE;
	} else {
		last = (gpa + len - 1) / UMDEV_DIRTY_LOG_PAGE;
	}
	for (page = gpa / UMDEV_DIRTY_LOG_PAGE; page <= last; page++) {
		if (page / 8 >= l->size) {
			if (atomic_fetch_add_explicit(&l->overflows, 1, memory_order_relaxed) == 0)
				umdev_err("dirty log of %llu bytes does not cover guest page 0x%llx: "
					  "a migration may lose what the device wrote there",
					  (unsigned long long)l->size,
					  (unsigned long long)page * UMDEV_DIRTY_LOG_PAGE);
			return;
		}
		/* Release: the data written to the page is visible before its bit. */
		umdev_shm_or8_rel(&l->bits[page / 8], (uint8_t)(1u << (page % 8)));
	}
}

uint64_t umdev_dirty_log_overflows(const umdev_dirty_log *l)
{
	return atomic_load_explicit(&l->overflows, memory_order_relaxed);
}

int umdev_as_map_hva_to_gpa(const umdev_as_map *m, const void *p, uint64_t len, uint64_t *gpa)
{
	uintptr_t a = (uintptr_t)p;

	for (unsigned i = 0; m && i < m->n; i++) {
		const struct umdev_mem_region *r = m->r[i];
		uintptr_t h = (uintptr_t)r->host;

		if (a >= h && a - h < r->size && len <= r->size - (a - h)) {
			*gpa = r->gpa + (a - h);
			return 0;
		}
	}
	return -EFAULT;
}
