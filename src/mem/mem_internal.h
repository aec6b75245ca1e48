/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef UMDEV_MEM_INTERNAL_H
#define UMDEV_MEM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "umdev/mem.h"

/*
 * One mmap of one client region. Shared by every map that contains it, so an
 * unrelated add/remove does not remap it; unmapped when the last map goes.
 */
struct umdev_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	unsigned prot;
	uint8_t *host; /* host address of gpa */
	void *mmap_base; /* what munmap needs (aligned down) */
	size_t mmap_len;
	int guard; /* its entry in the SIGBUS guard (guard.c), -1: none */
	/*
	 * Our own anonymous copy of memory the client shared without an fd
	 * (umdev_as_add_shadow()): stale unless copied in, so only callers
	 * that pass UMDEV_MEM_SHADOW (and copy in and out) reach it.
	 */
	bool shadow;
	atomic_uint refs;
};

/* Immutable after publication: regions sorted by gpa, non-overlapping. */
struct umdev_as_map {
	atomic_uint refs;
	int guard_sink; /* its address space's (umdev_as_map_faulted), -1: none */
	uint64_t version;
	unsigned nshadow; /* how many of r[] are shadows */
	unsigned n;
	struct umdev_mem_region *r[];
};

struct umdev_as {
	pthread_mutex_t lock; /* guards cur against umdev_as_get_map() on other threads */
	struct umdev_as_map *cur;
	uint64_t version;
	int guard_sink; /* where the SIGBUS guard reports faults, -1: nowhere */
};

/* translate.c: index in m->r[] of the region holding @addr, or m->n. */
unsigned mem_region_index(const umdev_as_map *m, uint64_t addr);

/* guard.c: the tables the SIGBUS handler reads. Control thread. */
int mem_guard_sink_new(void);
void mem_guard_sink_set_cb(int id, void (*cb)(void *opaque), void *opaque);
bool mem_guard_sink_faulted(int id);
void mem_guard_sink_free(int id);
int mem_guard_range_add(int sink, void *addr, size_t len);
void mem_guard_range_del(int id);

#endif
