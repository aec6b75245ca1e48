/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Accessors for memory shared with a driver: virtqueue rings (split and
 * packed), the vhost-user inflight region, NVMe queue entries, doorbells
 * and shadow doorbells, mapped BAR areas. Every access to such memory goes
 * through one of these, so its memory order is explicit and right on weakly
 * ordered CPUs (arm64), not only on x86 where plain accesses happen to work.
 *
 * - ld/st (relaxed): one untorn access the compiler can neither repeat nor
 *   merge; a value checked is the value used. No ordering with other fields.
 * - ld_acq: nothing after it (ring entries, descriptors, queue entries) is
 *   read before it. Use for the field that publishes others (avail idx, a
 *   packed descriptor's flags, an NVMe doorbell).
 * - st_rel: nothing before it (used entries, completion entries) is seen
 *   after it. Use for the field that publishes (used idx, packed flags,
 *   NVMe completion status with its phase bit).
 * - fence_full: a store before it is visible before a load after it. Needed
 *   between publishing used idx and reading the driver's event suppression
 *   fields (and NVMe's EventIdx/doorbell pair), else both sides may wait.
 * - or8_rel: an atomic read-modify-write OR of one byte, release: the
 *   dirty-log bitmap, where the front-end clears bits concurrently, so a
 *   plain or a load/store pair could lose its bit.
 * - copy_in: a whole structure (a descriptor, an NVMe command) copied once
 *   into a local; not ordered by itself, so call it after the ld_acq that
 *   published the structure.
 *
 * Shared fields are little-endian (virtio 1.x, NVMe); the le/cpu
 * conversions are no-ops on the little-endian hosts we build for and make
 * the intent plain. Pointers must be naturally aligned (callers check ring
 * alignment at set-up; copy_in takes any alignment).
 *
 * docs/architecture.md ("Ordering of shared memory") maps each rule of the
 * virtio and NVMe specs to these accessors. tests/util checks that no other
 * file in src/ uses __atomic builtins or volatile on shared memory.
 */
#ifndef UMDEV_UTIL_SHM_H
#define UMDEV_UTIL_SHM_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

#define UMDEV_SHM_DEF(bits)                                                          \
	static inline uint##bits##_t umdev_shm_ld##bits(const void *p)               \
	{                                                                            \
		return le##bits##toh(__atomic_load_n((const uint##bits##_t *)p,       \
						     __ATOMIC_RELAXED));              \
	}                                                                            \
	static inline uint##bits##_t umdev_shm_ld##bits##_acq(const void *p)         \
	{                                                                            \
		return le##bits##toh(__atomic_load_n((const uint##bits##_t *)p,       \
						     __ATOMIC_ACQUIRE));              \
	}                                                                            \
	static inline void umdev_shm_st##bits(void *p, uint##bits##_t v)             \
	{                                                                            \
		__atomic_store_n((uint##bits##_t *)p, htole##bits(v), __ATOMIC_RELAXED); \
	}                                                                            \
	static inline void umdev_shm_st##bits##_rel(void *p, uint##bits##_t v)       \
	{                                                                            \
		__atomic_store_n((uint##bits##_t *)p, htole##bits(v), __ATOMIC_RELEASE); \
	}

UMDEV_SHM_DEF(16)
UMDEV_SHM_DEF(32)
UMDEV_SHM_DEF(64)

#undef UMDEV_SHM_DEF

/* Byte fields (inflight region flags) need no byte-order conversion. */
static inline uint8_t umdev_shm_ld8(const void *p)
{
	return __atomic_load_n((const uint8_t *)p, __ATOMIC_RELAXED);
}

static inline void umdev_shm_st8(void *p, uint8_t v)
{
	__atomic_store_n((uint8_t *)p, v, __ATOMIC_RELAXED);
}

static inline void umdev_shm_st8_rel(void *p, uint8_t v)
{
	__atomic_store_n((uint8_t *)p, v, __ATOMIC_RELEASE);
}

/* Dirty-log bitmap (vhost-user LOG_SHMFD): set @bits in the byte at @p while
 * the front-end clears bits of the same byte with atomic exchanges. Release
 * keeps the log's rule: the data written to a page is visible before its bit
 * is, else the front-end could collect the bit, copy the old data and never
 * send the page again. */
static inline void umdev_shm_or8_rel(void *p, uint8_t bits)
{
	__atomic_fetch_or((uint8_t *)p, bits, __ATOMIC_RELEASE);
}

static inline void umdev_shm_fence_acq(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

static inline void umdev_shm_fence_rel(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void umdev_shm_fence_full(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Copy @len bytes of shared memory into a local once; the compiler barrier
 * stops it from re-reading the shared copy later instead of the local. */
static inline void umdev_shm_copy_in(void *dst, const void *src, size_t len)
{
	memcpy(dst, src, len);
	__asm__ __volatile__("" ::: "memory");
}

/* Copy a local into shared memory (entries published later by a st_rel). */
static inline void umdev_shm_copy_out(void *dst, const void *src, size_t len)
{
	memcpy(dst, src, len);
	__asm__ __volatile__("" ::: "memory");
}

#endif
