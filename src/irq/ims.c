/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupt Message Store (see include/umdev/irq.h): one table of interrupt
 * messages per parent device, handed out to the functions it serves.
 *
 * Why the permission is a single atomic word: a data-plane thread checks it
 * for every completion it delivers, while the control thread rewrites it
 * whenever the guest writes its permission table. Packing enable and PASID
 * into one 32-bit word means the reader never sees the enable bit of one
 * write paired with the PASID of another, with no lock on the data path.
 * The owner word is atomic for the same reason: an entry freed (owner NULL)
 * allows nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "umdev/irq.h"

#define PERM_EN (1u << 31)
#define PERM_PASID(p) ((p) & UMDEV_IMS_PASID_MAX)

struct ims_slot {
	uint64_t addr;
	uint32_t data;
	_Atomic uint32_t perm; /* PERM_EN | pasid */
	_Atomic uint8_t masked;
	const void *_Atomic owner;
};

struct umdev_ims {
	pthread_mutex_t lock; /* allocation and programming (control thread) */
	unsigned n;
	unsigned nfree;
	unsigned hint; /* where the next search starts */
	struct ims_slot slot[];
};

umdev_ims *umdev_ims_new(unsigned n, int *err)
{
	struct umdev_ims *ims;

	if (n == 0 || n > UMDEV_IMS_MAX_ENTRIES) {
		*err = -EINVAL;
		return NULL;
	}
	ims = calloc(1, sizeof(*ims) + n * sizeof(ims->slot[0]));
	if (!ims) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&ims->lock, NULL);
	ims->n = n;
	ims->nfree = n;
	for (unsigned i = 0; i < n; i++)
		atomic_init(&ims->slot[i].masked, 1);
	return ims;
}

void umdev_ims_free(umdev_ims *ims)
{
	if (!ims)
		return;
	pthread_mutex_destroy(&ims->lock);
	free(ims);
}

static const void *owner_of(const struct ims_slot *s)
{
	return atomic_load_explicit(&s->owner, memory_order_acquire);
}

int umdev_ims_alloc(umdev_ims *ims, const void *owner)
{
	int ret = -ENOSPC;

	if (!owner)
		return -EINVAL;
	pthread_mutex_lock(&ims->lock);
	for (unsigned k = 0; k < ims->n && ims->nfree; k++) {
		unsigned i = (ims->hint + k) % ims->n;
		struct ims_slot *s = &ims->slot[i];

		if (owner_of(s))
			continue;
		s->addr = 0;
		s->data = 0;
		atomic_store_explicit(&s->perm, 0, memory_order_relaxed);
		atomic_store_explicit(&s->masked, 1, memory_order_relaxed);
		atomic_store_explicit(&s->owner, owner, memory_order_release);
		ims->nfree--;
		ims->hint = (i + 1) % ims->n;
		ret = (int)i;
		break;
	}
	pthread_mutex_unlock(&ims->lock);
	return ret;
}

/* Lock held. */
static void release_locked(umdev_ims *ims, struct ims_slot *s)
{
	atomic_store_explicit(&s->owner, NULL, memory_order_release);
	atomic_store_explicit(&s->perm, 0, memory_order_relaxed);
	atomic_store_explicit(&s->masked, 1, memory_order_relaxed);
	ims->nfree++;
}

int umdev_ims_release(umdev_ims *ims, unsigned idx, const void *owner)
{
	int ret = -EINVAL;

	if (idx >= ims->n || !owner)
		return -EINVAL;
	pthread_mutex_lock(&ims->lock);
	if (owner_of(&ims->slot[idx]) == owner) {
		release_locked(ims, &ims->slot[idx]);
		ret = 0;
	}
	pthread_mutex_unlock(&ims->lock);
	return ret;
}

unsigned umdev_ims_release_owner(umdev_ims *ims, const void *owner)
{
	unsigned n = 0;

	if (!owner)
		return 0;
	pthread_mutex_lock(&ims->lock);
	for (unsigned i = 0; i < ims->n; i++) {
		if (owner_of(&ims->slot[i]) == owner) {
			release_locked(ims, &ims->slot[i]);
			n++;
		}
	}
	pthread_mutex_unlock(&ims->lock);
	return n;
}

/* The slot @idx if allocated, lock held. */
static struct ims_slot *used_locked(umdev_ims *ims, unsigned idx)
{
	if (idx >= ims->n || !owner_of(&ims->slot[idx]))
		return NULL;
	return &ims->slot[idx];
}

int umdev_ims_set_msg(umdev_ims *ims, unsigned idx, uint64_t addr, uint32_t data)
{
	struct ims_slot *s;

	pthread_mutex_lock(&ims->lock);
	s = used_locked(ims, idx);
	if (s) {
		s->addr = addr;
		s->data = data;
	}
	pthread_mutex_unlock(&ims->lock);
	return s ? 0 : -EINVAL;
}

int umdev_ims_set_mask(umdev_ims *ims, unsigned idx, bool masked)
{
	struct ims_slot *s;

	pthread_mutex_lock(&ims->lock);
	s = used_locked(ims, idx);
	if (s)
		atomic_store_explicit(&s->masked, masked, memory_order_release);
	pthread_mutex_unlock(&ims->lock);
	return s ? 0 : -EINVAL;
}

int umdev_ims_set_pasid(umdev_ims *ims, unsigned idx, bool enable, uint32_t pasid)
{
	struct ims_slot *s;

	if (pasid > UMDEV_IMS_PASID_MAX)
		return -EINVAL;
	pthread_mutex_lock(&ims->lock);
	s = used_locked(ims, idx);
	if (s)
		atomic_store_explicit(&s->perm, (enable ? PERM_EN : 0) | pasid, memory_order_release);
	pthread_mutex_unlock(&ims->lock);
	return s ? 0 : -EINVAL;
}

int umdev_ims_get(umdev_ims *ims, unsigned idx, struct umdev_ims_entry *out)
{
	struct ims_slot *s;
	uint32_t perm;

	if (idx >= ims->n)
		return -EINVAL;
	pthread_mutex_lock(&ims->lock);
	s = &ims->slot[idx];
	perm = atomic_load_explicit(&s->perm, memory_order_acquire);
	*out = (struct umdev_ims_entry){
		.addr = s->addr,
		.data = s->data,
		.masked = atomic_load_explicit(&s->masked, memory_order_acquire),
		.pasid_en = perm & PERM_EN,
		.pasid = PERM_PASID(perm),
		.owner = owner_of(s),
	};
	pthread_mutex_unlock(&ims->lock);
	return 0;
}

bool umdev_ims_pasid_allows(const umdev_ims *ims, unsigned idx, uint32_t pasid)
{
	uint32_t perm;

	if (idx >= ims->n || !owner_of(&ims->slot[idx]))
		return false;
	perm = atomic_load_explicit(&ims->slot[idx].perm, memory_order_acquire);
	return !(perm & PERM_EN) || PERM_PASID(perm) == pasid;
}

unsigned umdev_ims_size(const umdev_ims *ims)
{
	return ims->n;
}

unsigned umdev_ims_num_free(umdev_ims *ims)
{
	unsigned n;

	pthread_mutex_lock(&ims->lock);
	n = ims->nfree;
	pthread_mutex_unlock(&ims->lock);
	return n;
}
