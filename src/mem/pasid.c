/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PASID address-space registry (see include/umdev/mem.h). A device
 * resolves every request through here, so the owner check cannot be skipped
 * by a caller that forgot it: a map is only handed out to the owner.
 *
 * Few PASIDs are live at once (one per virtual device), so a flat array
 * searched under a mutex is enough; the lock is held for a lookup and the
 * binding's map callback, which only takes a reference (no I/O).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "umdev/mem.h"

#define PASID_MAX_LIVE 1024

struct pasid_ent {
	uint32_t pasid;
	const void *owner;
	umdev_pasid_map_fn fn;
	void *opaque;
};

struct umdev_pasid_reg {
	pthread_mutex_t lock;
	uint32_t first, next;
	unsigned n;
	struct pasid_ent e[PASID_MAX_LIVE];
};

umdev_pasid_reg *umdev_pasid_reg_new(uint32_t first, int *err)
{
	struct umdev_pasid_reg *r;

	if (first == 0 || first > UMDEV_PASID_LIMIT) {
		*err = -EINVAL; /* PASID 0 means "no PASID" on PCIe */
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->first = r->next = first;
	return r;
}

void umdev_pasid_reg_free(umdev_pasid_reg *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static struct pasid_ent *find_locked(umdev_pasid_reg *r, uint32_t pasid)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->e[i].pasid == pasid)
			return &r->e[i];
	return NULL;
}

int umdev_pasid_alloc(umdev_pasid_reg *r, const void *owner)
{
	uint32_t span = UMDEV_PASID_LIMIT - r->first + 1;
	int ret = -ENOSPC;

	if (!owner)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	/* Hand out PASIDs in a cycle so a freed one is not reused at once. */
	for (uint32_t k = 0; r->n < PASID_MAX_LIVE && k < span; k++) {
		uint32_t p = r->first + (r->next - r->first + k) % span;

		if (find_locked(r, p))
			continue;
		r->e[r->n++] = (struct pasid_ent){ .pasid = p, .owner = owner };
		r->next = p + 1 > UMDEV_PASID_LIMIT ? r->first : p + 1;
		ret = (int)p;
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int umdev_pasid_bind(umdev_pasid_reg *r, uint32_t pasid, const void *owner, umdev_pasid_map_fn fn,
		     void *opaque)
{
	struct pasid_ent *e;
	int ret = -ENOENT;

	pthread_mutex_lock(&r->lock);
	e = find_locked(r, pasid);
	if (e && owner && e->owner == owner) {
		e->fn = fn;
		e->opaque = fn ? opaque : NULL;
		ret = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static umdev_as_map *as_map_fn(void *opaque, int *err)
{
	(void)err;
	return umdev_as_get_map(opaque);
}

int umdev_pasid_bind_as(umdev_pasid_reg *r, uint32_t pasid, const void *owner, umdev_as *as)
{
	return umdev_pasid_bind(r, pasid, owner, as ? as_map_fn : NULL, as);
}

int umdev_pasid_free(umdev_pasid_reg *r, uint32_t pasid, const void *owner)
{
	struct pasid_ent *e;
	int ret = -ENOENT;

	pthread_mutex_lock(&r->lock);
	e = find_locked(r, pasid);
	if (e && owner && e->owner == owner) {
		*e = r->e[--r->n];
		ret = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

const void *umdev_pasid_owner(umdev_pasid_reg *r, uint32_t pasid)
{
	struct pasid_ent *e;
	const void *o;

	pthread_mutex_lock(&r->lock);
	e = find_locked(r, pasid);
	o = e ? e->owner : NULL;
	pthread_mutex_unlock(&r->lock);
	return o;
}

umdev_as_map *umdev_pasid_get_map(umdev_pasid_reg *r, uint32_t pasid, const void *owner,
				  int *err)
{
	umdev_as_map *m = NULL;
	struct pasid_ent *e;

	pthread_mutex_lock(&r->lock);
	e = find_locked(r, pasid);
	if (!e || !owner || e->owner != owner)
		*err = -EPERM;
	else if (!e->fn)
		*err = -ENXIO;
	else if (!(m = e->fn(e->opaque, err)) && *err == 0)
		*err = -ENXIO;
	pthread_mutex_unlock(&r->lock);
	return m;
}

unsigned umdev_pasid_count(umdev_pasid_reg *r)
{
	unsigned n;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}
