/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * accel virtual device: one PCI function (include/umdev/proto/accel.h for
 * the layout) with its work queue, PASID and IMS-backed MSI-X vectors.
 *
 * Submission: the ring and the hot page (tail, head, engine-idle flag) are
 * shared BAR memory the client maps (sparse mmap), so a driver submits with
 * plain stores and the engine polls; the trapped portal is the slow path
 * for a driver that cannot map (each write is a vfio-user message). The
 * register page, where the MSI-X permission table sits, is always trapped:
 * a permission change must reach the IMS entry before the next completion.
 *
 * Every descriptor names a PASID; its buffers and its completion record are
 * resolved in that PASID's address space through the parent's registry,
 * which refuses a PASID that is not this device's. A completion interrupt
 * goes out only if the vector's IMS entry allows the descriptor's PASID;
 * otherwise the error vector (0) fires and the software error register
 * says why.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel_internal.h"
#include "umdev/log.h"
#include "util/shm.h"

/* ---- engine thread ---- */

static uint8_t *hot(struct umdev_accel_vdev *v)
{
	return v->bar + ACCEL_HOT_OFF;
}

static void swerr_raise(struct umdev_accel_vdev *v, unsigned code, uint32_t index, uint32_t pasid,
			uint64_t addr)
{
	uint32_t cur = atomic_load_explicit(&v->swerr, memory_order_acquire);

	if (cur & ACCEL_SWERR_VALID) {
		/* Keep the first error's details; say that more happened. */
		atomic_fetch_or_explicit(&v->swerr, ACCEL_SWERR_OVERFLOW, memory_order_release);
	} else {
		atomic_store_explicit(&v->swerr_index, index, memory_order_relaxed);
		atomic_store_explicit(&v->swerr_pasid, pasid, memory_order_relaxed);
		atomic_store_explicit(&v->swerr_addr, addr, memory_order_relaxed);
		atomic_store_explicit(&v->swerr, ACCEL_SWERR_VALID | code << 8, memory_order_release);
	}
	ACCEL_STAT_ADD(v, swerr, 1);
	umdev_warn_rl(&v->eng_rl, "%s: software error %u at descriptor %u (PASID %u)", v->name,
		      code, index, pasid);
	/* Vector 0 not enabled: the register alone tells the driver. */
	if (umdev_irq_trigger(v->irq, 0) < 0)
		umdev_dbg("%s: error vector not enabled", v->name);
}

static void deliver(struct umdev_accel_vdev *v, const struct accel_desc *d, uint32_t index)
{
	unsigned vec = d->vector;
	int idx;

	if (vec == 0 || vec >= v->nvec) {
		swerr_raise(v, ACCEL_ERR_VECTOR, index, d->pasid, vec);
		return;
	}
	idx = atomic_load_explicit(&v->ims_idx[vec], memory_order_acquire);
	if (idx >= 0 && !umdev_ims_pasid_allows(v->a->ims, (unsigned)idx, d->pasid)) {
		ACCEL_STAT_ADD(v, irq_refused, 1);
		swerr_raise(v, ACCEL_ERR_IRQ_PASID, index, d->pasid, vec);
		return;
	}
	/* A masked vector is held pending (PBA) by the irq layer. */
	if (umdev_irq_trigger(v->irq, vec) >= 0)
		ACCEL_STAT_ADD(v, irqs, 1);
}

/* The record's first word (status, result) goes last, with release order. */
static bool write_record(umdev_as_map *m, uint64_t addr, const struct accel_comp *c)
{
	uint8_t *rec = addr % 32 ? NULL : umdev_as_map_translate(m, addr, sizeof(*c),
								 UMDEV_MEM_WRITE);
	uint32_t first = (uint32_t)c->status | (uint32_t)c->result << 8;

	if (!rec)
		return false;
	umdev_shm_copy_out(rec + 4, (const uint8_t *)c + 4, sizeof(*c) - 4);
	umdev_shm_st32_rel(rec, first);
	return true;
}

static void process(struct umdev_accel_vdev *v, const struct accel_desc *d, uint32_t index,
		    umdev_as_map **own, int *own_err)
{
	bool mine = d->pasid == v->pasid;
	umdev_as_map *m;
	struct accel_comp c;
	unsigned long faults;
	int err = 0;

	if (mine && !*own && !*own_err) {
		*own = umdev_pasid_get_map(v->a->pasids, v->pasid, v, own_err);
		if (!*own && !*own_err)
			*own_err = -ENXIO;
	}
	/* Through the registry even when foreign: it alone says whose a PASID is. */
	m = mine ? *own : umdev_pasid_get_map(v->a->pasids, d->pasid, v, &err);
	if (!m) {
		if (mine) {
			ACCEL_STAT_ADD(v, dropped, 1); /* no memory: client gone or DMA off */
		} else {
			ACCEL_STAT_ADD(v, failed, 1);
			swerr_raise(v, ACCEL_ERR_PASID, index, d->pasid, 0);
		}
		return;
	}
	faults = umdev_mem_fault_count();
	c.status = (uint8_t)accel_exec(d, m, &c);
	if (umdev_mem_fault_count() != faults && c.status == ACCEL_ST_SUCCESS)
		c.status = ACCEL_ST_BAD_ADDR; /* the client shrank its memory under us */
	if (c.status == ACCEL_ST_SUCCESS) {
		ACCEL_STAT_ADD(v, ok, 1);
		ACCEL_STAT_ADD(v, bytes, d->size);
	} else {
		ACCEL_STAT_ADD(v, failed, 1);
	}
	if ((d->flags & ACCEL_F_COMP) && !write_record(m, d->comp_addr, &c)) {
		swerr_raise(v, ACCEL_ERR_COMP_ADDR, index, d->pasid, d->comp_addr);
	} else if (d->flags & ACCEL_F_IRQ) {
		deliver(v, d, index);
	}
	if (!mine)
		umdev_as_map_put(m);
}

bool accel_vdev_has_work(struct umdev_accel_vdev *v)
{
	return atomic_load_explicit(&v->enabled, memory_order_relaxed) &&
	       umdev_shm_ld32_acq(hot(v) + ACCEL_HOT_TAIL) != v->head;
}

void accel_vdev_set_idle(struct umdev_accel_vdev *v, bool idle)
{
	umdev_shm_st32(hot(v) + ACCEL_HOT_IDLE, idle);
}

unsigned accel_vdev_run(struct umdev_accel_vdev *v, unsigned budget)
{
	umdev_as_map *own = NULL;
	int own_err = 0;
	uint32_t tail, n = 0;

	if (!atomic_load_explicit(&v->enabled, memory_order_relaxed))
		return 0;
	/* Acquire: the descriptors the tail publishes are read after it. */
	tail = umdev_shm_ld32_acq(hot(v) + ACCEL_HOT_TAIL);
	if (tail == v->head)
		return 0;
	if (tail - v->head > v->wq_size) {
		/* A driver bug or a hostile one: skip to its tail, say so once. */
		swerr_raise(v, ACCEL_ERR_RING, v->head, 0, tail);
		v->head = tail;
		umdev_shm_st32_rel(hot(v) + ACCEL_HOT_HEAD, v->head);
		return 1;
	}
	while (n < budget && v->head != tail) {
		struct accel_desc d;
		uint32_t slot = v->head & (v->wq_size - 1);

		umdev_shm_copy_in(&d, v->bar + ACCEL_RING_OFF + (size_t)slot * sizeof(d), sizeof(d));
		process(v, &d, v->head, &own, &own_err);
		v->head++;
		n++;
	}
	ACCEL_STAT_ADD(v, descs, n);
	/* Release: the slots are free only once their records are written. */
	umdev_shm_st32_rel(hot(v) + ACCEL_HOT_HEAD, v->head);
	umdev_as_map_put(own);
	return n;
}

/* Engine-thread halves of the control commands (run between rounds). */
static void on_enable(struct umdev_accel_vdev *v)
{
	atomic_store_explicit(&v->enabled, true, memory_order_relaxed);
}

static void on_disable(struct umdev_accel_vdev *v)
{
	atomic_store_explicit(&v->enabled, false, memory_order_relaxed);
}

static void on_reset(struct umdev_accel_vdev *v)
{
	uint32_t tail = umdev_shm_ld32(hot(v) + ACCEL_HOT_TAIL);

	/* Only this queue's pending work is dropped; the engine's others run on. */
	ACCEL_STAT_ADD(v, dropped, tail - v->head <= v->wq_size ? tail - v->head : 0);
	atomic_store_explicit(&v->enabled, false, memory_order_relaxed);
	v->head = 0;
	umdev_shm_st32(hot(v) + ACCEL_HOT_TAIL, 0);
	umdev_shm_st32_rel(hot(v) + ACCEL_HOT_HEAD, 0);
}

static void on_barrier(struct umdev_accel_vdev *v)
{
	(void)v; /* the engine finished its round: no descriptor holds an old map */
}

/* ---- control thread ---- */

static void swerr_clear_all(struct umdev_accel_vdev *v)
{
	atomic_store_explicit(&v->swerr, 0, memory_order_release);
	atomic_store_explicit(&v->swerr_index, 0, memory_order_relaxed);
	atomic_store_explicit(&v->swerr_pasid, 0, memory_order_relaxed);
	atomic_store_explicit(&v->swerr_addr, 0, memory_order_relaxed);
}

static void perm_to_ims(struct umdev_accel_vdev *v, unsigned vec)
{
	int idx = atomic_load_explicit(&v->ims_idx[vec], memory_order_relaxed);
	uint32_t p = v->perm[vec];

	if (idx >= 0 && umdev_ims_set_pasid(v->a->ims, (unsigned)idx, p & ACCEL_PERM_PASID_EN,
					    p >> ACCEL_PERM_PASID_SHIFT) < 0)
		umdev_warn("%s: IMS entry %d of vector %u is not ours", v->name, idx, vec);
}

static int regs_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	struct umdev_accel_vdev *v = opaque;
	uint32_t val = 0;

	if (len != 4 || off % 4)
		return -EINVAL;
	if (off >= ACCEL_REG_PERM) {
		uint64_t vec = (off - ACCEL_REG_PERM) / ACCEL_PERM_STRIDE;

		if (vec < v->nvec && off % ACCEL_PERM_STRIDE == 0)
			val = v->perm[vec];
		memcpy(buf, &val, 4);
		return 0;
	}
	switch (off) {
	case ACCEL_REG_CAP:
		val = 1u << ACCEL_OP_NOP | 1u << ACCEL_OP_COPY | 1u << ACCEL_OP_FILL |
		      1u << ACCEL_OP_COMPARE | 1u << ACCEL_OP_COMPARE_PATTERN |
		      1u << ACCEL_OP_CRC32C | 1u << ACCEL_OP_DUALCAST;
		break;
	case ACCEL_REG_VERSION: val = ACCEL_VERSION; break;
	case ACCEL_REG_WQ_SIZE: val = v->wq_size; break;
	case ACCEL_REG_WQ_PRIO: val = v->prio; break;
	case ACCEL_REG_PASID: val = v->pasid; break;
	case ACCEL_REG_VECTORS: val = v->nvec; break;
	case ACCEL_REG_MAX_XFER: val = ACCEL_MAX_XFER; break;
	case ACCEL_REG_STATUS:
		val = atomic_load_explicit(&v->enabled, memory_order_relaxed) ? ACCEL_STS_ENABLED : 0;
		break;
	case ACCEL_REG_SWERR: val = atomic_load_explicit(&v->swerr, memory_order_acquire); break;
	case ACCEL_REG_SWERR_INDEX: val = atomic_load_explicit(&v->swerr_index, memory_order_relaxed); break;
	case ACCEL_REG_SWERR_PASID: val = atomic_load_explicit(&v->swerr_pasid, memory_order_relaxed); break;
	case ACCEL_REG_SWERR_ADDR_LO:
		val = (uint32_t)atomic_load_explicit(&v->swerr_addr, memory_order_relaxed);
		break;
	case ACCEL_REG_SWERR_ADDR_HI:
		val = (uint32_t)(atomic_load_explicit(&v->swerr_addr, memory_order_relaxed) >> 32);
		break;
	default: break;
	}
	memcpy(buf, &val, 4);
	return 0;
}

static int regs_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	struct umdev_accel_vdev *v = opaque;
	uint32_t val;

	if (len != 4 || off % 4)
		return -EINVAL;
	memcpy(&val, buf, 4);
	if (off >= ACCEL_REG_PERM) {
		uint64_t vec = (off - ACCEL_REG_PERM) / ACCEL_PERM_STRIDE;

		if (vec >= v->nvec || off % ACCEL_PERM_STRIDE)
			return 0; /* reserved: ignored */
		v->perm[vec] = val & (ACCEL_PERM_PASID_EN |
				      UMDEV_IMS_PASID_MAX << ACCEL_PERM_PASID_SHIFT);
		perm_to_ims(v, (unsigned)vec);
		return 0;
	}
	switch (off) {
	case ACCEL_REG_CMD:
		if (val == ACCEL_CMD_ENABLE) {
			accel_engine_sync(v, on_enable);
			accel_engine_kick(v);
		} else if (val == ACCEL_CMD_DISABLE) {
			accel_engine_sync(v, on_disable);
		} else if (val == ACCEL_CMD_RESET) {
			accel_engine_sync(v, on_reset);
			swerr_clear_all(v);
		} else {
			umdev_warn_rl(&v->ctl_rl, "%s: unknown command %u", v->name, val);
		}
		break;
	case ACCEL_REG_KICK: accel_engine_kick(v); break;
	case ACCEL_REG_SWERR:
		/* Clearing VALID clears the record (code and overflow) for the next error. */
		if (val & ACCEL_SWERR_VALID)
			atomic_store_explicit(&v->swerr, 0, memory_order_release);
		else
			atomic_fetch_and_explicit(&v->swerr, ~val, memory_order_acq_rel);
		break;
	default: break; /* read-only or unassigned */
	}
	return 0;
}

static int portal_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	struct umdev_accel_vdev *v = opaque;
	const uint8_t *p = buf;

	if (len == 0 || len % sizeof(struct accel_desc) || off % sizeof(struct accel_desc))
		return -EINVAL;
	for (size_t i = 0; i < len; i += sizeof(struct accel_desc)) {
		uint32_t tail = umdev_shm_ld32(hot(v) + ACCEL_HOT_TAIL);
		uint32_t head = umdev_shm_ld32_acq(hot(v) + ACCEL_HOT_HEAD);
		uint32_t slot = tail & (v->wq_size - 1);

		if (tail - head >= v->wq_size)
			return -EAGAIN; /* queue full: the rest is not taken (ENQCMD's retry) */
		umdev_shm_copy_out(v->bar + ACCEL_RING_OFF + (size_t)slot * sizeof(struct accel_desc),
				   p + i, sizeof(struct accel_desc));
		umdev_shm_st32_rel(hot(v) + ACCEL_HOT_TAIL, tail + 1);
		ACCEL_STAT_ADD(v, portal_writes, 1);
	}
	umdev_shm_fence_full();
	if (umdev_shm_ld32(hot(v) + ACCEL_HOT_IDLE))
		accel_engine_kick(v);
	return 0;
}

/* The message and mask the function shows for @vec, into its IMS entry. */
static void msg_to_ims(struct umdev_accel_vdev *v, unsigned vec)
{
	int idx = atomic_load_explicit(&v->ims_idx[vec], memory_order_relaxed);
	uint32_t ent[4] = { 0 };

	if (idx < 0)
		return;
	if (umdev_irq_msix_table_access(v->irq, (uint64_t)vec * 16, ent, 16, false) < 0)
		memset(ent, 0, sizeof(ent));
	if (umdev_ims_set_msg(v->a->ims, (unsigned)idx, (uint64_t)ent[1] << 32 | ent[0], ent[2]) <
		    0 ||
	    umdev_ims_set_mask(v->a->ims, (unsigned)idx, umdev_irq_masked(v->irq, vec)) < 0)
		umdev_warn("%s: IMS entry %d vanished", v->name, idx);
}

/* IMS backing of MSI-X vectors: an entry while the vector has its eventfd. */
static int vec_bind(void *opaque, unsigned vec)
{
	struct umdev_accel_vdev *v = opaque;
	int idx = umdev_ims_alloc(v->a->ims, v);

	if (idx < 0) {
		umdev_warn_rl(&v->ctl_rl, "%s: cannot enable MSI-X vector %u: %s's %u IMS entries are "
			      "all in use", v->name, vec, v->a->name, umdev_ims_size(v->a->ims));
		return idx;
	}
	atomic_store_explicit(&v->ims_idx[vec], idx, memory_order_release);
	msg_to_ims(v, vec);
	perm_to_ims(v, vec);
	return 0;
}

static void vec_unbind(void *opaque, unsigned vec)
{
	struct umdev_accel_vdev *v = opaque;
	int idx = atomic_exchange_explicit(&v->ims_idx[vec], -1, memory_order_acq_rel);

	if (idx >= 0 && umdev_ims_release(v->a->ims, (unsigned)idx, v) < 0)
		umdev_warn("%s: IMS entry %d was not ours", v->name, idx);
}

static void vec_changed(void *opaque, unsigned vec)
{
	msg_to_ims(opaque, vec);
}

static const struct umdev_irq_msix_hooks vec_hooks = { vec_bind, vec_unbind, vec_changed };

static void vdev_reset(void *opaque)
{
	struct umdev_accel_vdev *v = opaque;

	accel_engine_sync(v, on_reset);
	swerr_clear_all(v);
	memset(v->bar + ACCEL_RING_OFF, 0, ACCEL_RING_MAX_BYTES);
	for (unsigned i = 0; i < v->nvec; i++) {
		v->perm[i] = 0;
		perm_to_ims(v, i);
	}
}

static void vdev_dma_unmap(void *opaque, uint64_t iova, uint64_t len)
{
	(void)iova;
	(void)len;
	/*
	 * The engine takes a fresh map every round and drops it at the end, so
	 * once a round boundary passed nothing of ours holds the old one.
	 */
	accel_engine_sync(opaque, on_barrier);
}

static const struct umdev_pci_dev_ops vdev_ops = {
	.reset = vdev_reset,
	.dma_unmap = vdev_dma_unmap,
};

/* The PASID's address space is the DMA space the client gave the function. */
static umdev_as_map *vdev_map(void *opaque, int *err)
{
	struct umdev_accel_vdev *v = opaque;

	return umdev_pci_dma_map(v->pci, err);
}

static umdev_pci_dev *make_pci(struct umdev_accel_vdev *v, int *err)
{
	struct umdev_pci_config c = {
		.name = v->name,
		.vendor_id = ACCEL_VENDOR_ID,
		.device_id = ACCEL_DEVICE_ID,
		.subsys_vendor_id = ACCEL_VENDOR_ID,
		.subsys_id = ACCEL_DEVICE_ID,
		.class_code = ACCEL_CLASS,
		.irq = { .msix_vectors = v->nvec, .err = true, .req = true },
		.msix_bar = 2,
		.msix_table_offset = 0,
		.msix_pba_offset = 0x800,
		.pm = true,
		.pcie = true,
		.ops = &vdev_ops,
		.opaque = v,
	};

	c.bars[0] = (struct umdev_pci_bar_desc){
		.size = ACCEL_BAR0_SIZE,
		.flags = UMDEV_PCI_BAR_MEM64,
		.traps = { { ACCEL_REGS_OFF, ACCEL_PAGE, regs_read, regs_write, v },
			   { ACCEL_PORTAL_OFF, ACCEL_PAGE, NULL, portal_write, v } },
		.num_traps = 2,
		.shared = { { ACCEL_HOT_OFF, ACCEL_PAGE },
			    { ACCEL_RING_OFF, ACCEL_RING_MAX_BYTES } },
		.num_shared = 2,
	};
	c.bars[2].size = 0x1000;
	return umdev_pci_dev_new(&c, err);
}

umdev_accel_vdev *umdev_accel_vdev_new(umdev_accel *a, const struct umdev_accel_vdev_config *cfg,
				       int *err)
{
	struct umdev_accel_vdev *v;
	int pasid;

	if (!a->listed || !cfg->name || strlen(cfg->name) >= sizeof(v->name) || !cfg->wq_size ||
	    cfg->wq_size & (cfg->wq_size - 1) ||
	    cfg->wq_size > ACCEL_RING_MAX_BYTES / sizeof(struct accel_desc) || !cfg->priority ||
	    cfg->priority > 16 || cfg->vectors < 2 || cfg->vectors > ACCEL_MAX_VECTORS) {
		*err = -EINVAL;
		return NULL;
	}
	if (a->nvdevs >= a->max_vdevs) {
		*err = -ENOSPC;
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		*err = -ENOMEM;
		return NULL;
	}
	v->a = a;
	snprintf(v->name, sizeof(v->name), "%s", cfg->name);
	v->wq_size = cfg->wq_size;
	v->prio = cfg->priority;
	v->nvec = cfg->vectors;
	for (unsigned i = 0; i < ACCEL_MAX_VECTORS; i++)
		atomic_init(&v->ims_idx[i], -1);
	pasid = umdev_pasid_alloc(a->pasids, v);
	if (pasid < 0) {
		*err = pasid;
		free(v);
		return NULL;
	}
	v->pasid = (uint32_t)pasid;
	v->pci = make_pci(v, err);
	if (!v->pci)
		goto fail;
	v->irq = umdev_pci_irq(v->pci);
	v->bar = umdev_pci_bar_mem(v->pci, 0);
	umdev_irq_set_msix_hooks(v->irq, &vec_hooks, v);
	*err = umdev_pasid_bind(a->pasids, v->pasid, v, vdev_map, v);
	if (*err < 0)
		goto fail;
	*err = accel_engine_attach(v);
	if (*err < 0)
		goto fail;
	a->refs++;
	a->nvdevs++;
	return v;
fail:
	if (umdev_pasid_free(a->pasids, v->pasid, v) < 0)
		umdev_warn("%s: PASID %u was not ours", v->name, v->pasid);
	umdev_pci_dev_free(v->pci);
	free(v);
	return NULL;
}

void umdev_accel_vdev_free(umdev_accel_vdev *v)
{
	struct umdev_accel *a;

	if (!v)
		return;
	a = v->a;
	/* Off the engine first: after this no thread but ours looks at @v. */
	accel_engine_detach(v);
	if (umdev_pasid_free(a->pasids, v->pasid, v) < 0)
		umdev_warn("%s: PASID %u was not ours", v->name, v->pasid);
	umdev_irq_set_msix_hooks(v->irq, NULL, NULL);
	umdev_ims_release_owner(a->ims, v);
	umdev_pci_dev_free(v->pci);
	free(v);
	a->nvdevs--;
	accel_parent_unref(a);
}

umdev_pci_dev *umdev_accel_vdev_pci(umdev_accel_vdev *v)
{
	return v->pci;
}

umdev_accel *umdev_accel_vdev_parent(umdev_accel_vdev *v)
{
	return v->a;
}

void umdev_accel_vdev_stats(umdev_accel_vdev *v, struct umdev_accel_vdev_stats *out)
{
#define LD(f) out->f = atomic_load_explicit(&v->st.f, memory_order_relaxed)
	LD(descs);
	LD(ok);
	LD(failed);
	LD(bytes);
	LD(irqs);
	LD(irq_refused);
	LD(swerr);
	LD(dropped);
	LD(portal_writes);
#undef LD
	out->pasid = v->pasid;
	out->wq_size = v->wq_size;
	out->priority = v->prio;
	out->ims_used = 0;
	for (unsigned i = 0; i < v->nvec; i++)
		out->ims_used += atomic_load_explicit(&v->ims_idx[i], memory_order_relaxed) >= 0;
}
