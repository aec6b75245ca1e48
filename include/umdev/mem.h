/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev address spaces: the one I/O address-space layer every transport uses.
 *
 * Concepts
 * - An address space (umdev_as) is the set of guest memory regions a client
 *   gave us: guest-physical (or IOVA) ranges backed by fds we mmap MAP_SHARED.
 *   It is owned and changed only by the control thread.
 * - A map (umdev_as_map) is an immutable, reference-counted snapshot of the
 *   regions at one moment. Data-plane threads translate addresses through the
 *   map they hold; a change to the address space publishes a new map and never
 *   alters one in use. A region's mmap lives until the last map holding it is
 *   put, so a data-plane thread can never touch unmapped memory. Even so the
 *   control thread quiesces queues before removing regions (see
 *   docs/architecture.md), so that no request straddles two versions.
 * - Every translation is bounds-checked: an address range that is not wholly
 *   inside guest memory is an error, never a pointer.
 * - Each region also records the client's own virtual address for it
 *   (vhost-user names ring addresses that way); umdev_as_map_uva_to_gpa()
 *   converts.
 */
#ifndef UMDEV_MEM_H
#define UMDEV_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "umdev/loop.h"

#define UMDEV_WUR __attribute__((warn_unused_result))

typedef struct umdev_as umdev_as;
typedef struct umdev_as_map umdev_as_map;

/* Access the caller wants; a region may refuse write (read-only DMA maps). */
#define UMDEV_MEM_READ  1u
#define UMDEV_MEM_WRITE 2u
/*
 * With READ/WRITE in translation: shadow regions (umdev_as_add_shadow()) may
 * be returned too. Only a caller that copies a shadowed range in before
 * reading it and out after writing it passes this; everyone else gets
 * -EFAULT/NULL there, as for memory outside the space.
 */
#define UMDEV_MEM_SHADOW 4u

/* Upper bound on regions in one address space. */
#define UMDEV_AS_MAX_REGIONS 512

struct umdev_mem_region_desc {
	uint64_t guest_addr; /* GPA or IOVA of the first byte */
	uint64_t size; /* bytes, > 0 */
	uint64_t user_addr; /* client's virtual address of the first byte (0 if none) */
	uint64_t mmap_offset; /* offset of the first byte in fd */
	int fd; /* backing fd; see umdev_as_add_region() for ownership */
	unsigned prot; /* UMDEV_MEM_READ | UMDEV_MEM_WRITE */
};

/**
 * umdev_as_new() - create an empty address space.
 * @err: set to -errno on failure.
 * Caller owns the result and frees it with umdev_as_free(). Control thread.
 */
umdev_as *umdev_as_new(int *err) UMDEV_WUR;

/** umdev_as_free() - drop every region and the address space itself. */
void umdev_as_free(umdev_as *as);

/**
 * umdev_as_add_region() - mmap a region and publish a new map with it.
 * The fd is always consumed: on success the address space owns it (mapped
 * then closed, as mmap keeps its own reference); on failure it is closed.
 * Fails with -EINVAL for zero/overflowing sizes, -EEXIST if the range
 * overlaps an existing region, -ENOSPC past UMDEV_AS_MAX_REGIONS, or the
 * mmap error.
 */
int umdev_as_add_region(umdev_as *as, const struct umdev_mem_region_desc *d) UMDEV_WUR;

/**
 * umdev_as_add_shadow() - add [@guest_addr, +@size) as a shadow region:
 * memory the client shares only through messages (vfio-user DMA windows
 * without an fd), mirrored by a private anonymous mapping of ours that takes
 * no memory until touched. Translation reaches it only with UMDEV_MEM_SHADOW;
 * the caller keeps it coherent (umdev_as_map_shadow_gpa() finds the guest
 * address to copy from/to). Errors as umdev_as_add_region(). Removed with
 * umdev_as_remove_region().
 */
int umdev_as_add_shadow(umdev_as *as, uint64_t guest_addr, uint64_t size, unsigned prot) UMDEV_WUR;

/**
 * umdev_as_map_has_shadow() - true if @m holds a shadow region (cheap: lets
 * a hot path skip umdev_as_map_shadow_gpa()).
 */
bool umdev_as_map_has_shadow(const umdev_as_map *m);

/**
 * umdev_as_map_shadow_gpa() - 1 with *@gpa set if host range [@p, +@len)
 * lies in a shadow region of @m, 0 if it does not.
 */
int umdev_as_map_shadow_gpa(const umdev_as_map *m, const void *p, uint64_t len, uint64_t *gpa);

/**
 * umdev_as_remove_region() - remove the region that starts at @guest_addr
 * and has exactly @size bytes. -ENOENT if there is none. The mapping itself
 * goes when the last map that holds it is put.
 */
int umdev_as_remove_region(umdev_as *as, uint64_t guest_addr, uint64_t size) UMDEV_WUR;

/** umdev_as_clear() - remove every region (e.g. before SET_MEM_TABLE). */
void umdev_as_clear(umdev_as *as);

/** umdev_as_num_regions() - regions in the current map. */
unsigned umdev_as_num_regions(const umdev_as *as);

/**
 * umdev_as_get_map() - take a reference to the current map.
 * Never NULL (an empty address space has an empty map). Any thread may hold
 * the result; release it with umdev_as_map_put() from any thread.
 */
umdev_as_map *umdev_as_get_map(umdev_as *as);

/** umdev_as_map_ref() - take one more reference to @m; returns @m. */
umdev_as_map *umdev_as_map_ref(umdev_as_map *m);

/** umdev_as_map_put() - drop a reference; NULL is allowed. */
void umdev_as_map_put(umdev_as_map *m);

/** umdev_as_map_version() - generation number, grows with every change. */
uint64_t umdev_as_map_version(const umdev_as_map *m);

/**
 * umdev_as_map_covers() - true if @newer holds every region @older holds
 * (the same mappings, not equal ones), as after regions were only added:
 * whatever was translated through @older stays valid while @newer is held,
 * so a user may trade @older for @newer without stopping.
 */
bool umdev_as_map_covers(const umdev_as_map *newer, const umdev_as_map *older);

/**
 * umdev_as_map_covers_except() - as umdev_as_map_covers(), for the regions
 * of @older that do not lie wholly inside [@addr, +@len): after an unmap of
 * that range, whatever was translated outside it stays valid with @newer.
 */
bool umdev_as_map_covers_except(const umdev_as_map *newer, const umdev_as_map *older,
				uint64_t addr, uint64_t len);

/**
 * umdev_as_map_translate() - host pointer for [@addr, @addr+@len) when the
 * whole range lies in one region that allows @prot; NULL otherwise (including
 * @len == 0 overflow cases). Use it for structures that must be contiguous
 * (ring parts, headers). The pointer stays valid while @m is held.
 */
void *umdev_as_map_translate(const umdev_as_map *m, uint64_t addr, uint64_t len, unsigned prot);

/**
 * umdev_as_map_translate_prefix() - host pointer for @addr, and in *@got how
 * many of the @len bytes from there lie in the same region (all with
 * @prot): for walking a range that may span adjacent regions (a vIOMMU
 * maps a guest buffer page by page). NULL if @addr itself is unreachable.
 */
void *umdev_as_map_translate_prefix(const umdev_as_map *m, uint64_t addr, uint64_t len,
				    unsigned prot, uint64_t *got);

/*
 * Views (src/mem/view.c): a structure that must be contiguous (a ring) but
 * lies in several adjacent regions, as behind a vIOMMU where a client maps
 * guest memory one page per window, gets its own contiguous host mapping of
 * the same pages.
 */
typedef struct umdev_as_view umdev_as_view;

/**
 * umdev_as_map_span() - how [@addr, +@len) lies in @m, for a structure that
 * must be contiguous. 0: in one region; 1: across adjacent regions that a
 * view can join (umdev_as_map_translate_view()); -ENOENT: some byte is in no
 * region (or in a shadow); -EACCES: a region holding it lacks @prot;
 * -EXDEV: two regions meet off a page boundary; -EINVAL: empty or wrapping.
 */
int umdev_as_map_span(const umdev_as_map *m, uint64_t addr, uint64_t len, unsigned prot);

/**
 * umdev_as_views_supported() - whether views can be made here (Linux's
 * mremap() duplicating a shared mapping; qemu-user lacks it). Without
 * them a range across windows is -EOPNOTSUPP for umdev_as_map_span() and
 * umdev_as_map_translate_view().
 */
bool umdev_as_views_supported(void);

/** umdev_as_span_why() - words for a umdev_as_map_span() error, for a log line. */
const char *umdev_as_span_why(int err);

/**
 * umdev_as_map_translate_view() - as umdev_as_map_translate(), but a range
 * across adjacent regions (umdev_as_map_span() == 1) is mapped once more,
 * contiguously: *@view then holds that mapping (else NULL) and the caller
 * frees it with umdev_as_view_free() before it stops using the pointer and
 * before it puts @m (the view shares the pages, and must not outlive the
 * windows it copies). NULL with *@err set as umdev_as_map_span() or to the
 * mmap/mremap error. Control thread or any thread holding @m.
 */
void *umdev_as_map_translate_view(const umdev_as_map *m, uint64_t addr, uint64_t len,
				  unsigned prot, umdev_as_view **view, int *err);

/** umdev_as_view_free() - unmap a view; NULL is allowed. */
void umdev_as_view_free(umdev_as_view *v);

/**
 * umdev_as_map_to_iov() - translate a guest range that may cross regions into
 * host iovecs, appended at @iov[0..]. Returns the number of iovecs used,
 * -EFAULT if any byte is outside guest memory or lacks @prot, -ENOBUFS if
 * more than @max_iov would be needed. @len == 0 yields 0 iovecs.
 */
int umdev_as_map_to_iov(const umdev_as_map *m, uint64_t addr, uint64_t len, unsigned prot,
			struct iovec *iov, unsigned max_iov) UMDEV_WUR;

/**
 * umdev_as_map_uva_to_gpa() - convert a client virtual address to a guest
 * address. -EFAULT if no region covers @uva.
 */
int umdev_as_map_uva_to_gpa(const umdev_as_map *m, uint64_t uva, uint64_t *gpa) UMDEV_WUR;

/** umdev_as_map_read() / _write() - copy to/from guest memory, any layout. */
int umdev_as_map_read(const umdev_as_map *m, uint64_t addr, void *buf, size_t len) UMDEV_WUR;
int umdev_as_map_write(const umdev_as_map *m, uint64_t addr, const void *buf, size_t len) UMDEV_WUR;

/*
 * Memory a client takes away (see src/mem/guard.c for the design). A client
 * can shrink the file behind memory we mapped from it (an unsealed memfd, a
 * hugetlbfs file); touching it then raises SIGBUS. With the guard installed,
 * every region of every address space is watched: a fault there replaces the
 * region with zero pages (the access completes, no thread stops), and the
 * address space's fault callback runs on the control loop so the transport
 * can fail the device and drop that client alone.
 */

/**
 * umdev_mem_guard_init() - install the SIGBUS handler; fault callbacks run on
 * @ctl. Once per process, before clients connect. Without it a SIGBUS kills
 * the process as before (unit tests, embedders with their own handler).
 * Return: 0, -EALREADY, or -errno.
 */
int umdev_mem_guard_init(umdev_loop *ctl) UMDEV_WUR;

/** umdev_mem_guard_fini() - restore the previous SIGBUS action. */
void umdev_mem_guard_fini(void);

/**
 * umdev_mem_fault_count() - faults recovered on the calling thread so far.
 * Compare before and after touching guest memory to know whether what was
 * read there is real (the request then fails). Any thread; never blocks.
 */
unsigned long umdev_mem_fault_count(void);

/**
 * umdev_as_set_fault_cb() - @cb(@opaque) runs on the control loop after a
 * fault in @as's memory. Control thread. @cb NULL removes it.
 */
void umdev_as_set_fault_cb(umdev_as *as, void (*cb)(void *opaque), void *opaque);

/**
 * umdev_as_map_faulted() - the address space @m belongs to has lost memory
 * to a fault: what a queue reads through @m may be zeros, so a "broken"
 * ring there is the client's doing, already reported. Any thread.
 */
bool umdev_as_map_faulted(const umdev_as_map *m);

/**
 * umdev_as_guard_add() - watch another mapping of the client's (say the
 * vhost-user inflight region) as part of @as. Returns an id for
 * umdev_as_guard_del(), which must be called before the mapping goes, or -1
 * when the guard's table is full (logged). Control thread.
 */
int umdev_as_guard_add(umdev_as *as, void *addr, size_t len);
void umdev_as_guard_del(int id);

/*
 * Dirty page log (live migration). A bitmap the client shares with us: bit N
 * is the 4 KiB page at guest address N * UMDEV_DIRTY_LOG_PAGE. See
 * src/mem/log.c for the rules.
 */
typedef struct umdev_dirty_log umdev_dirty_log;

#define UMDEV_DIRTY_LOG_PAGE 4096ull
/* Largest log mapped: 1 GiB of bitmap covers 32 TiB of guest memory. */
#define UMDEV_DIRTY_LOG_MAX (1ull << 30)

/**
 * umdev_dirty_log_new() - map @size bytes at @offset of @fd (the client's,
 * not consumed: the caller closes it) as a dirty log. -EINVAL for a zero,
 * oversized or unaligned range, -EBADFD if @fd is not a regular file (memfd),
 * -ERANGE if the file is smaller than the range. Free with
 * umdev_dirty_log_free() once no thread marks it any more. Control thread.
 */
umdev_dirty_log *umdev_dirty_log_new(int fd, uint64_t size, uint64_t offset, int *err) UMDEV_WUR;
void umdev_dirty_log_free(umdev_dirty_log *l);

/** umdev_dirty_log_base() / _size() - the mapping (for umdev_as_guard_add()). */
void *umdev_dirty_log_base(const umdev_dirty_log *l);
uint64_t umdev_dirty_log_size(const umdev_dirty_log *l);

/** umdev_dirty_log_covers() - the log has a bit for every page of [gpa, gpa+len). */
bool umdev_dirty_log_covers(const umdev_dirty_log *l, uint64_t gpa, uint64_t len);

/**
 * umdev_dirty_log_mark() - mark the pages of [gpa, gpa+len) dirty; call after
 * the bytes were written. Atomic, lock-free, any thread; @l NULL is a no-op.
 * Pages past the end of the log are not marked but counted (and reported
 * once): umdev_dirty_log_overflows().
 */
void umdev_dirty_log_mark(umdev_dirty_log *l, uint64_t gpa, uint64_t len);
uint64_t umdev_dirty_log_overflows(const umdev_dirty_log *l);

/**
 * umdev_as_map_hva_to_gpa() - guest address of host pointer @p, which with
 * @len bytes after it lies in one region of @m (as iovecs from
 * umdev_as_map_to_iov() do). -EFAULT otherwise. Any thread holding @m.
 */
int umdev_as_map_hva_to_gpa(const umdev_as_map *m, const void *p, uint64_t len,
			    uint64_t *gpa) UMDEV_WUR;

/*
 * PASID address spaces (src/mem/pasid.c): a registry in which each PASID
 * (Process Address Space ID, 20 bits) names one address space. A device
 * shared by many clients tags every request with a PASID and resolves the
 * request's addresses in that PASID's space only, so one client's request
 * can never reach another's memory. The registry does not care where a
 * space's maps come from: a binding gives a callback that returns the
 * current map (an umdev_as, or a transport's DMA map), and an owner token
 * (the device the PASID was assigned to) that lookups must present.
 */
typedef struct umdev_pasid_reg umdev_pasid_reg;

#define UMDEV_PASID_LIMIT ((1u << 20) - 1) /* PASIDs are 20 bits */

/* Returns a new map reference or NULL with -errno in *err (no memory yet, DMA off). */
typedef umdev_as_map *(*umdev_pasid_map_fn)(void *opaque, int *err);

/** umdev_pasid_reg_new() - an empty registry handing out PASIDs from @first up. */
umdev_pasid_reg *umdev_pasid_reg_new(uint32_t first, int *err) UMDEV_WUR;
void umdev_pasid_reg_free(umdev_pasid_reg *r);

/**
 * umdev_pasid_alloc() - a free PASID assigned to @owner (non-NULL), not yet
 * bound to memory. Return: the PASID, -ENOSPC when all are taken, -EINVAL.
 * Control thread.
 */
int umdev_pasid_alloc(umdev_pasid_reg *r, const void *owner) UMDEV_WUR;

/**
 * umdev_pasid_bind() - @pasid's address space is what @fn(@opaque) returns
 * from now on. -ENOENT for a PASID not assigned to @owner. @fn NULL unbinds:
 * when it returns, @fn of the old binding is no longer called (its caller's
 * maps stay valid until they are put). Control thread.
 */
int umdev_pasid_bind(umdev_pasid_reg *r, uint32_t pasid, const void *owner, umdev_pasid_map_fn fn,
		     void *opaque) UMDEV_WUR;

/** umdev_pasid_bind_as() - bind @pasid to an umdev_as (borrowed, outlives the binding). */
int umdev_pasid_bind_as(umdev_pasid_reg *r, uint32_t pasid, const void *owner, umdev_as *as)
	UMDEV_WUR;

/** umdev_pasid_free() - unbind and return @pasid to the pool; -ENOENT if not @owner's. */
int umdev_pasid_free(umdev_pasid_reg *r, uint32_t pasid, const void *owner) UMDEV_WUR;

/** umdev_pasid_owner() - who @pasid is assigned to, NULL if nobody. Any thread. */
const void *umdev_pasid_owner(umdev_pasid_reg *r, uint32_t pasid);

/**
 * umdev_pasid_get_map() - the current map of @pasid's address space for a
 * request of device @owner (release with umdev_as_map_put()). NULL with
 * *@err = -EPERM when @pasid is not @owner's (a foreign or unassigned
 * PASID: the request must be refused), -ENXIO when it has no memory bound,
 * or the binding's error. Any thread; a short lock, never blocks on I/O.
 */
umdev_as_map *umdev_pasid_get_map(umdev_pasid_reg *r, uint32_t pasid, const void *owner,
				  int *err) UMDEV_WUR;

/** umdev_pasid_count() - PASIDs assigned now. */
unsigned umdev_pasid_count(umdev_pasid_reg *r);

#endif
