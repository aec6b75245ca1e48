/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-pci (modern) transport: registers, capabilities, the device status
 * state machine and the queues' life. See include/umdev/virtio_pci.h.
 *
 * BAR 4 (64-bit, 32 KiB) layout, each part a trap unless noted:
 *   0x0000 common configuration   0x1000 ISR status
 *   0x2000 device configuration   0x3000 notify area (shared when polling)
 *   0x4000 MSI-X table            0x6000 MSI-X PBA (installed by src/pci)
 *
 * A queue runs (umdev_vq started and handed to the queue runner) while the
 * driver enabled it, DRIVER_OK is set, bus mastering is on and no DMA
 * window is being unmapped; "suspend" stops running queues and keeps
 * where they were, "resume" starts again what should run.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "umdev/log.h"
#include "umdev/proto/pci_regs.h"
#include "umdev/proto/virtio_ring_packed.h"
#include "umdev/proto/virtio_ring.h"
#include "umdev/virtio_pci.h"
#include "umdev/proto/virtio_pci.h"

#define VPCI_BAR 4
#define VPCI_BAR_SIZE 0x8000u
#define OFF_COMMON 0x0000u
#define OFF_ISR 0x1000u
#define OFF_DEVCFG 0x2000u
#define OFF_NOTIFY 0x3000u
#define OFF_MSIX 0x4000u
#define OFF_PBA 0x6000u
#define PART 0x1000u
#define NOTIFY_MULT 4u
/* MSI-X table room (0x2000 bytes) and the notify area bound the queue count. */
#define VPCI_MAX_QUEUES 511u
#define VPCI_CAP_PCI_CFG_IDX 4 /* the fifth vendor capability we add */

/* Transport feature bits we never offer: their machinery is not here. */
#define VPCI_NOT_OFFERED                                                                    \
	(1ull << VIRTIO_F_NOTIFICATION_DATA | 1ull << VIRTIO_F_RING_RESET |                 \
	 1ull << VIRTIO_F_IN_ORDER | 1ull << VIRTIO_F_SR_IOV |                              \
	 1ull << 30 /* VHOST_USER_F_PROTOCOL_FEATURES */)

struct vpci_queue {
	struct umdev_vpci *vp;
	unsigned idx;
	uint16_t size;
	_Atomic uint16_t vector; /* read on the queue's loop when it interrupts */
	bool enabled;
	uint64_t desc, driver, device;
	umdev_vq *vq;
	int kick_fd;
	bool running;
	bool resumed; /* suspended with the ring in use: resume_* hold its position */
	uint16_t resume_idx; /* last_avail_idx when it was suspended (packed: | wrap << 15) */
	uint16_t resume_used; /* packed rings: last_used_idx then (| wrap << 15) */
	bool refused; /* a ring part was said to be unusable; said once per enable */
};

struct umdev_vpci {
	struct umdev_virtio_dev *vdev;
	umdev_pci_dev *pci;
	umdev_irq *irq;
	struct umdev_ratelimit rl;
	uint32_t dfselect, gfselect;
	uint64_t driver_features;
	uint16_t config_vector;
	uint8_t status;
	_Atomic uint8_t config_gen;
	_Atomic uint8_t isr;
	uint16_t queue_select;
	bool unmapping; /* inside a DMA_UNMAP: nothing may start */
	unsigned nq;
	struct vpci_queue *q;
};

static uint64_t offered(const struct umdev_vpci *vp)
{
	/* Packed rings are the vq layer's business: every virtio device has them. */
	return (vp->vdev->ops->features(vp->vdev) | 1ull << VIRTIO_F_VERSION_1 |
		1ull << VIRTIO_F_ACCESS_PLATFORM | 1ull << VIRTIO_F_RING_PACKED) &
	       ~VPCI_NOT_OFFERED;
}

static unsigned num_vectors(const struct umdev_vpci *vp)
{
	return vp->nq + 1;
}

/* ---- interrupts (any thread) ---- */

static void raise_irq(struct umdev_vpci *vp, uint16_t vector, uint8_t isr_bit)
{
	int ret;

	if (umdev_irq_mode(vp->irq) == UMDEV_IRQ_MODE_MSIX) {
		if (vector == VIRTIO_MSI_NO_VECTOR)
			return;
		ret = umdev_irq_trigger(vp->irq, vector);
	} else {
		/* INTx: the ISR says why; reading it clears it (and the driver unmasks). */
		atomic_fetch_or(&vp->isr, isr_bit);
		ret = umdev_irq_trigger(vp->irq, 0);
	}
	(void)ret; /* masked (held pending) or no eventfd: nothing more to do */
}

static void queue_interrupt(void *opaque)
{
	struct vpci_queue *q = opaque;

	raise_irq(q->vp, atomic_load_explicit(&q->vector, memory_order_relaxed),
		  VIRTIO_PCI_ISR_QUEUE);
}

void umdev_vpci_config_changed(umdev_vpci *vp)
{
	atomic_fetch_add(&vp->config_gen, 1);
	raise_irq(vp, vp->config_vector, VIRTIO_PCI_ISR_CONFIG);
}

/* The device changed its config (a resized image): the config vector tells the driver. */
static void config_notify(void *opaque)
{
	umdev_vpci_config_changed(opaque);
}

/* ---- queues (control thread) ---- */

/* Stop the ring, keeping where it was: the next start picks up from there. */
static void queue_park(struct vpci_queue *q)
{
	q->resume_used = umdev_vq_last_used_idx(q->vq);
	q->resume_idx = umdev_vq_stop(q->vq);
	q->resumed = true;
}

static void queue_suspend(struct vpci_queue *q)
{
	if (!q->running)
		return;
	/* Every popped request completes before the ring stops. */
	umdev_vdev_queue_stop(q->vp->vdev, q->idx);
	queue_park(q);
	q->running = false;
}

static bool queue_should_run(const struct vpci_queue *q)
{
	const struct umdev_vpci *vp = q->vp;

	return q->enabled && (vp->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(vp->status & VIRTIO_STATUS_NEEDS_RESET) && !vp->unmapping &&
	       (umdev_pci_command(vp->pci) & UMDEV_PCI_CMD_MASTER);
}

/*
 * A queue's eventfd and ring object, made when it first starts: a device
 * may offer hundreds of queues (virtio-blk 256) of which a guest uses a few.
 */
static int queue_alloc(struct vpci_queue *q)
{
	char name[48];
	int err = 0;

	if (q->vq)
		return 0;
	if (q->kick_fd < 0) {
		q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->kick_fd < 0)
			return -errno;
	}
	snprintf(name, sizeof(name), "%s.q%u", q->vp->vdev->name, q->idx);
	q->vq = umdev_vq_new(name, &err);
	return q->vq ? 0 : err;
}

/*
 * -EAGAIN unless every ring part lies in guest memory with the access the
 * device needs: in one window, or across adjacent ones (behind a vIOMMU
 * the guest maps its rings page by page; the queue then runs on a
 * contiguous view). A VMM remaps memory as unmap-then-map (QEMU does while
 * the guest boots), so a part missing now waits for ops->dma_mapped,
 * quietly; a part where the device may not use it (a read-only window
 * under the used ring) waits too, but is said once.
 */
static int rings_usable(struct vpci_queue *q, const umdev_as_map *map, bool packed)
{
	static const char *const name[] = { "descriptor table", "driver area", "device area" };
	const uint64_t addr[] = { q->desc, q->driver, q->device };
	/* Packed: the device writes descriptors too. */
	const unsigned prot[] = { packed ? UMDEV_MEM_READ | UMDEV_MEM_WRITE : UMDEV_MEM_READ,
				  UMDEV_MEM_READ, UMDEV_MEM_WRITE };

	for (unsigned i = 0; i < 3; i++) {
		uint64_t len = umdev_vq_ring_part_bytes(packed, q->size, i);
		int span = umdev_as_map_span(map, addr[i], len, prot[i]);

		if (span >= 0)
			continue;
		if (span != -ENOENT && !q->refused) {
			q->refused = true;
			umdev_warn_rl(&q->vp->rl,
				      "%s.q%u: %s [0x%" PRIx64 ", +0x%" PRIx64 ") is %s; "
				      "the queue waits for a DMA_MAP that fixes it",
				      q->vp->vdev->name, q->idx, name[i], addr[i], len,
				      umdev_as_span_why(span));
		}
		return -EAGAIN;
	}
	return 0;
}

static int queue_start(struct vpci_queue *q)
{
	struct umdev_vpci *vp = q->vp;
	const bool packed = vp->driver_features & (1ull << VIRTIO_F_RING_PACKED);
	/* A fresh packed ring starts at slot 0 with wrap counter 1. */
	const uint16_t fresh = packed ? VIRTQ_PACKED_WRAP_BIT : 0;
	struct umdev_vq_config cfg = {
		.size = q->size,
		.desc_addr = q->desc,
		.avail_addr = q->driver,
		.used_addr = q->device,
		.last_avail_idx = q->resumed ? q->resume_idx : fresh,
		.packed = packed,
		.last_used_idx = q->resumed ? q->resume_used : fresh,
		.event_idx = vp->driver_features & (1ull << VIRTIO_RING_F_EVENT_IDX),
		.indirect = vp->driver_features & (1ull << VIRTIO_RING_F_INDIRECT_DESC),
		.shadow_buffers = umdev_vdev_has_remote(vp->vdev),
	};
	umdev_as_map *map;
	int err = 0, ret;

	if (q->running || !queue_should_run(q))
		return 0;
	ret = queue_alloc(q);
	if (ret < 0)
		return ret;
	map = umdev_pci_dma_map(vp->pci, &err);
	if (!map)
		return err ? err : -EFAULT;
	ret = rings_usable(q, map, packed);
	if (ret < 0) {
		umdev_as_map_put(map);
		return ret;
	}
	umdev_vq_set_notify_fn(q->vq, queue_interrupt, q);
	ret = umdev_vq_start(q->vq, map, &cfg);
	umdev_as_map_put(map);
	if (ret < 0)
		return ret;
	ret = umdev_vdev_queue_start(vp->vdev, q->idx, q->vq, vp->vdev->poll ? -1 : q->kick_fd,
				     false);
	if (ret < 0) {
		queue_park(q);
		return ret;
	}
	q->running = true;
	return 0;
}

/*
 * Start what should run. A ring outside guest memory (the client has not
 * mapped it yet, or never will) is retried at the next notify or resume.
 */
static void resume_all(struct umdev_vpci *vp)
{
	for (unsigned i = 0; i < vp->nq; i++) {
		int ret = queue_start(&vp->q[i]);

		if (ret < 0 && ret != -EPERM && ret != -ENOTCONN && ret != -EAGAIN)
			umdev_warn_rl(&vp->rl, "%s.q%u: cannot start the queue: %s",
				      vp->vdev->name, i, strerror(-ret));
	}
}

static void suspend_all(struct umdev_vpci *vp)
{
	for (unsigned i = 0; i < vp->nq; i++)
		queue_suspend(&vp->q[i]);
}

static void queue_reset_regs(struct umdev_vpci *vp, struct vpci_queue *q)
{
	q->size = vp->vdev->max_queue_size;
	atomic_store(&q->vector, VIRTIO_MSI_NO_VECTOR);
	q->enabled = false;
	q->desc = q->driver = q->device = 0;
	q->resumed = false;
}

/* Device reset (status 0 written, DEVICE_RESET, FLR): every register to its initial value. */
static void device_reset(struct umdev_vpci *vp)
{
	suspend_all(vp);
	for (unsigned i = 0; i < vp->nq; i++)
		queue_reset_regs(vp, &vp->q[i]);
	vp->dfselect = vp->gfselect = 0;
	vp->driver_features = 0;
	vp->config_vector = VIRTIO_MSI_NO_VECTOR;
	vp->status = 0;
	vp->queue_select = 0;
	atomic_store(&vp->isr, 0);
	if (vp->vdev->ops->reset)
		vp->vdev->ops->reset(vp->vdev);
}

/* ---- common configuration ---- */

static bool features_ok(struct umdev_vpci *vp)
{
	uint64_t f = vp->driver_features;
	int ret = 0;

	if (f & ~offered(vp)) {
		umdev_warn_rl(&vp->rl, "%s: driver accepted features never offered: 0x%" PRIx64,
			      vp->vdev->name, f & ~offered(vp));
		return false;
	}
	if (!(f & (1ull << VIRTIO_F_VERSION_1))) {
		umdev_warn_rl(&vp->rl, "%s: legacy driver (no VERSION_1) refused", vp->vdev->name);
		return false;
	}
	if (vp->vdev->ops->set_features)
		ret = vp->vdev->ops->set_features(vp->vdev, f & ~(1ull << VIRTIO_F_ACCESS_PLATFORM));
	return ret == 0;
}

static void write_status(struct umdev_vpci *vp, uint8_t v)
{
	uint8_t old = vp->status;

	if (v == 0) {
		device_reset(vp);
		return;
	}
	if (old & ~v) {
		/* Only a reset clears bits; a driver that tries is confused. */
		umdev_warn_rl(&vp->rl, "%s: status 0x%x -> 0x%x ignored (only 0 clears bits)",
			      vp->vdev->name, old, v);
		return;
	}
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    !features_ok(vp))
		v &= ~VIRTIO_STATUS_FEATURES_OK; /* the driver reads it back and gives up */
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) {
		umdev_warn_rl(&vp->rl, "%s: DRIVER_OK without FEATURES_OK ignored", vp->vdev->name);
		v &= ~VIRTIO_STATUS_DRIVER_OK;
	}
	vp->status = v;
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK))
		resume_all(vp);
	if ((v & VIRTIO_STATUS_FAILED) && !(old & VIRTIO_STATUS_FAILED))
		suspend_all(vp);
}

static struct vpci_queue *selected(struct umdev_vpci *vp)
{
	return vp->queue_select < vp->nq ? &vp->q[vp->queue_select] : NULL;
}

static uint64_t read_field(struct umdev_vpci *vp, unsigned field)
{
	struct vpci_queue *q = selected(vp);

	switch (field) {
	case VPCI_COMMON_DFSELECT: return vp->dfselect;
	case VPCI_COMMON_DF: return vp->dfselect < 2 ? (uint32_t)(offered(vp) >> (32 * vp->dfselect)) : 0;
	case VPCI_COMMON_GFSELECT: return vp->gfselect;
	case VPCI_COMMON_GF:
		return vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0;
	case VPCI_COMMON_MSIX: return vp->config_vector;
	case VPCI_COMMON_NUMQ: return vp->nq;
	case VPCI_COMMON_STATUS: return vp->status;
	case VPCI_COMMON_CFGGEN: return atomic_load(&vp->config_gen);
	case VPCI_COMMON_Q_SELECT: return vp->queue_select;
	case VPCI_COMMON_Q_SIZE: return q ? q->size : 0;
	case VPCI_COMMON_Q_MSIX: return q ? atomic_load(&q->vector) : VIRTIO_MSI_NO_VECTOR;
	case VPCI_COMMON_Q_ENABLE: return q ? q->enabled : 0;
	case VPCI_COMMON_Q_NOFF: return q ? q->idx : 0;
	case VPCI_COMMON_Q_DESC: return q ? q->desc : 0;
	case VPCI_COMMON_Q_AVAIL: return q ? q->driver : 0;
	case VPCI_COMMON_Q_USED: return q ? q->device : 0;
	case VPCI_COMMON_Q_NDATA: return q ? q->idx : 0;
	default: return 0; /* queue_reset (RING_RESET not offered) and padding */
	}
}

static uint16_t check_vector(struct umdev_vpci *vp, uint16_t v)
{
	/* A vector the function lacks reads back as NO_VECTOR: the driver's failure test. */
	return v < num_vectors(vp) ? v : VIRTIO_MSI_NO_VECTOR;
}

static void set_half(uint64_t *r, unsigned field_off, unsigned off, unsigned len, uint64_t v)
{
	if (len == 8)
		*r = v;
	else if (off == field_off)
		*r = (*r & 0xffffffff00000000ull) | (uint32_t)v;
	else
		*r = (*r & 0xffffffffull) | v << 32;
}

static void write_field(struct umdev_vpci *vp, unsigned field, unsigned off, unsigned len,
			uint64_t v)
{
	struct vpci_queue *q = selected(vp);
	const char *why = NULL;
	int ret;

	switch (field) {
	case VPCI_COMMON_DFSELECT: vp->dfselect = (uint32_t)v; return;
	case VPCI_COMMON_GFSELECT: vp->gfselect = (uint32_t)v; return;
	case VPCI_COMMON_GF:
		if (vp->status & VIRTIO_STATUS_FEATURES_OK)
			why = "features after FEATURES_OK";
		else if (vp->gfselect < 2)
			vp->driver_features =
				(vp->driver_features & ~(0xffffffffull << (32 * vp->gfselect))) |
				(uint64_t)(uint32_t)v << (32 * vp->gfselect);
		break;
	case VPCI_COMMON_MSIX: vp->config_vector = check_vector(vp, (uint16_t)v); return;
	case VPCI_COMMON_STATUS: write_status(vp, (uint8_t)v); return;
	case VPCI_COMMON_Q_SELECT: vp->queue_select = (uint16_t)v; return;
	case VPCI_COMMON_Q_SIZE:
		if (!q || q->enabled)
			why = "queue_size of an absent or enabled queue";
		else if (!v || v > vp->vdev->max_queue_size || (v & (v - 1)))
			why = "queue_size not a power of two up to the maximum";
		else
			q->size = (uint16_t)v;
		break;
	case VPCI_COMMON_Q_MSIX:
		if (q)
			atomic_store(&q->vector, check_vector(vp, (uint16_t)v));
		return;
	case VPCI_COMMON_Q_ENABLE:
		if (!q || v != 1) {
			why = "queue_enable other than 1 (RING_RESET is not offered)";
		} else if (!(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
			why = "queue_enable before FEATURES_OK";
		} else if (!q->enabled) {
			q->enabled = true;
			q->resumed = false;
			q->refused = false;
			ret = queue_start(q);
			if (ret < 0 && ret != -EAGAIN && ret != -EPERM && ret != -ENOTCONN)
				why = "queue enabled with a bad ring";
		}
		break;
	case VPCI_COMMON_Q_DESC:
	case VPCI_COMMON_Q_AVAIL:
	case VPCI_COMMON_Q_USED:
		if (!q || q->enabled) {
			why = "ring address of an absent or enabled queue";
			break;
		}
		set_half(field == VPCI_COMMON_Q_DESC ? &q->desc :
			 field == VPCI_COMMON_Q_AVAIL ? &q->driver : &q->device,
			 field, off, len, v);
		break;
	default:
		why = "a read-only register";
		break;
	}
	if (why)
		umdev_warn_rl(&vp->rl, "%s: write to %s at 0x%x ignored", vp->vdev->name, why, off);
}

/*
 * Fields and their widths. 64-bit fields may also be reached as two 32-bit
 * halves, as Linux does; any other width or alignment is refused.
 */
static int field_of(unsigned off, unsigned len, unsigned *field)
{
	static const uint8_t width[VPCI_COMMON_SIZE] = {
		[VPCI_COMMON_DFSELECT] = 4, [VPCI_COMMON_DF] = 4, [VPCI_COMMON_GFSELECT] = 4,
		[VPCI_COMMON_GF] = 4, [VPCI_COMMON_MSIX] = 2, [VPCI_COMMON_NUMQ] = 2,
		[VPCI_COMMON_STATUS] = 1, [VPCI_COMMON_CFGGEN] = 1, [VPCI_COMMON_Q_SELECT] = 2,
		[VPCI_COMMON_Q_SIZE] = 2, [VPCI_COMMON_Q_MSIX] = 2, [VPCI_COMMON_Q_ENABLE] = 2,
		[VPCI_COMMON_Q_NOFF] = 2, [VPCI_COMMON_Q_DESC] = 8, [VPCI_COMMON_Q_AVAIL] = 8,
		[VPCI_COMMON_Q_USED] = 8, [VPCI_COMMON_Q_NDATA] = 2, [VPCI_COMMON_Q_RESET] = 2,
	};

	if (off >= VPCI_COMMON_SIZE)
		return -ENOENT;
	if (width[off] == len) {
		*field = off;
		return 0;
	}
	if (len == 4 && off >= 4 && width[off - 4] == 8) {
		*field = off - 4;
		return 0;
	}
	if (len == 4 && width[off] == 8) {
		*field = off;
		return 0;
	}
	return -EINVAL;
}

int umdev_vpci_common_access(umdev_vpci *vp, uint64_t off, void *buf, size_t len, bool write)
{
	unsigned field;
	uint64_t v = 0;
	int ret = off < PART ? field_of((unsigned)off, (unsigned)len, &field) : -EINVAL;

	if (ret == -ENOENT) {
		/* Past the structure, inside the part: reads as zero, writes dropped. */
		if (!write)
			memset(buf, 0, len);
		return 0;
	}
	if (ret < 0) {
		umdev_warn_rl(&vp->rl, "%s: common config access of %zu byte(s) at 0x%" PRIx64
			      " refused", vp->vdev->name, len, off);
		if (!write)
			memset(buf, 0xff, len);
		return ret;
	}
	if (!write) {
		v = read_field(vp, field);
		if (len == 4 && off != field)
			v >>= 32;
		memcpy(buf, &v, len); /* little-endian host, as the rest of umdev assumes */
		return 0;
	}
	memcpy(&v, buf, len);
	write_field(vp, field, (unsigned)off, (unsigned)len, v);
	return 0;
}

static int common_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	return umdev_vpci_common_access(opaque, off - OFF_COMMON, buf, len, false);
}

static int common_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	return umdev_vpci_common_access(opaque, off - OFF_COMMON, (void *)buf, len, true);
}

/* ---- ISR, device config, notify ---- */

static int isr_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	struct umdev_vpci *vp = opaque;

	memset(buf, 0, len);
	if (off == OFF_ISR)
		*(uint8_t *)buf = atomic_exchange(&vp->isr, 0);
	return 0;
}

static int devcfg_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	struct umdev_vpci *vp = opaque;

	off -= OFF_DEVCFG;
	if (off >= vp->vdev->config_size || len > vp->vdev->config_size - off ||
	    vp->vdev->ops->get_config(vp->vdev, buf, (uint32_t)off, (uint32_t)len) < 0)
		memset(buf, 0, len);
	return 0;
}

static int devcfg_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	struct umdev_vpci *vp = opaque;

	off -= OFF_DEVCFG;
	if (off >= vp->vdev->config_size || len > vp->vdev->config_size - off ||
	    !vp->vdev->ops->set_config ||
	    vp->vdev->ops->set_config(vp->vdev, buf, (uint32_t)off, (uint32_t)len) < 0)
		umdev_warn_rl(&vp->rl, "%s: device config write of %zu byte(s) at 0x%" PRIx64
			      " ignored", vp->vdev->name, len, off);
	return 0;
}

static int notify_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	struct umdev_vpci *vp = opaque;
	uint64_t idx = (off - OFF_NOTIFY) / NOTIFY_MULT, one = 1;
	struct vpci_queue *q;

	if (idx >= vp->nq)
		return 0; /* the driver notified a queue we lack: harmless */
	q = &vp->q[idx];
	if (!q->running && queue_should_run(q))
		(void)queue_start(q); /* memory may have come back since */
	if (q->running && write(q->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		umdev_warn_rl(&vp->rl, "%s.q%u: kick failed: %s", vp->vdev->name, q->idx,
			      strerror(errno));
	return 0;
}

/* ---- the PCI_CFG capability's window into the BAR ---- */

static void pcicfg_access(void *opaque, uint64_t off, void *buf, size_t len, bool write)
{
	struct umdev_vpci *vp = opaque;
	unsigned cap = umdev_pci_vcap_offset(vp->pci, VPCI_CAP_PCI_CFG_IDX);
	const uint8_t *cfg = umdev_pci_cfg_bytes(vp->pci);
	unsigned data = cap + VPCI_PCICFG_DATA;
	uint32_t boff, blen;
	uint8_t tmp[4] = { 0 };
	int ret;

	if (off + len <= data || off >= data + 4u)
		return;
	memcpy(&boff, cfg + cap + VPCI_CAP_OFFSET, 4);
	memcpy(&blen, cfg + cap + VPCI_CAP_LENGTH, 4);
	if (blen == 0)
		return; /* nothing selected (drivers probe the capability so) */
	if (cfg[cap + VPCI_CAP_BAR] != VPCI_BAR || (blen != 1 && blen != 2 && blen != 4) ||
	    boff % blen) {
		umdev_warn_rl(&vp->rl, "%s: PCI_CFG window bar %u offset 0x%x length %u refused",
			      vp->vdev->name, cfg[cap + VPCI_CAP_BAR], boff, blen);
		return;
	}
	if (write) {
		memcpy(tmp, cfg + data, 4);
		ret = umdev_pci_bar_access(vp->pci, VPCI_BAR, boff, tmp, blen, true);
	} else {
		ret = umdev_pci_bar_access(vp->pci, VPCI_BAR, boff, tmp, blen, false);
		for (size_t i = 0; ret == 0 && i < len; i++)
			if (off + i >= data && off + i < data + 4u)
				((uint8_t *)buf)[i] = tmp[off + i - data];
	}
	if (ret < 0)
		umdev_warn_rl(&vp->rl, "%s: PCI_CFG window access failed: %s", vp->vdev->name,
			      strerror(-ret));
}

/* ---- PCI function callbacks ---- */

static void pci_reset(void *opaque)
{
	device_reset(opaque);
}

static void resume_deferred(void *opaque)
{
	struct umdev_vpci *vp = opaque;

	vp->unmapping = false;
	resume_all(vp);
}

static void pci_dma_unmap(void *opaque, uint64_t iova, uint64_t len)
{
	struct umdev_vpci *vp = opaque;

	/*
	 * Nothing starts until the unmap is answered. Running queues go on:
	 * once the window is gone (pci_dma_unmapped) those that do not use it
	 * take the new map, the others stop (in-flight requests drain) and
	 * start again after the reply.
	 */
	(void)iova;
	(void)len;
	vp->unmapping = true;
	if (umdev_pci_defer(vp->pci, resume_deferred, vp) < 0)
		vp->unmapping = false; /* no client: the next notify or DRIVER_OK resumes */
}

/*
 * Behind a vIOMMU a guest unmaps every request's buffers once it completed:
 * draining every queue for each of them costs a queue drain per request,
 * and virtio-scsi hands its parked event buffers back at every stop, which
 * the guest unmaps and posts again, stopping the queues again (a loop that
 * never ends). A queue that touches nothing of the window runs on instead.
 */
static void pci_dma_unmapped(void *opaque, uint64_t iova, uint64_t len)
{
	struct umdev_vpci *vp = opaque;
	int err = 0;
	umdev_as_map *m = umdev_pci_dma_map(vp->pci, &err);

	for (unsigned i = 0; i < vp->nq; i++) {
		struct vpci_queue *q = &vp->q[i];

		if (q->running &&
		    (!m || umdev_vdev_queue_shrink_map(vp->vdev, q->idx, m, iova, len) < 0))
			queue_suspend(q);
	}
	umdev_as_map_put(m);
}

static void pci_dma_mapped(void *opaque, uint64_t iova, uint64_t len)
{
	struct umdev_vpci *vp = opaque;
	int err = 0;
	umdev_as_map *m = umdev_pci_dma_map(vp->pci, &err);
	const uint64_t now = m ? umdev_as_map_version(m) : 0;

	/*
	 * A running queue keeps the map it started with, which lacks the new
	 * window: SeaBIOS's buffers land in one QEMU maps while the BIOS makes
	 * itself read-only, after the queue started, and behind a vIOMMU a
	 * guest maps windows per request. The queue takes the new map on its
	 * loop without draining; only if a window went away meanwhile (the
	 * map no longer covers the queue's) is it restarted on it.
	 */
	for (unsigned i = 0; i < vp->nq; i++) {
		struct vpci_queue *q = &vp->q[i];

		if (!q->running || umdev_as_map_version(umdev_vq_map(q->vq)) == now)
			continue;
		if (!m || umdev_vdev_queue_grow_map(vp->vdev, q->idx, m) < 0)
			queue_suspend(q);
	}
	umdev_as_map_put(m);
	resume_all(vp);
}

static void pci_command(void *opaque, uint16_t old_cmd, uint16_t new_cmd)
{
	struct umdev_vpci *vp = opaque;

	if ((old_cmd & UMDEV_PCI_CMD_MASTER) && !(new_cmd & UMDEV_PCI_CMD_MASTER))
		suspend_all(vp); /* no DMA without bus mastering */
	else if (new_cmd & UMDEV_PCI_CMD_MASTER)
		resume_all(vp);
}

static const struct umdev_pci_dev_ops vpci_pci_ops = {
	.reset = pci_reset,
	.dma_unmap = pci_dma_unmap,
	.dma_mapped = pci_dma_mapped,
	.dma_unmapped = pci_dma_unmapped,
	.command = pci_command,
	.vcap_access = pcicfg_access,
};

/* ---- construction ---- */

static void add_cap(struct umdev_pci_config *c, uint8_t type, uint32_t off, uint32_t len,
		    unsigned caplen)
{
	struct umdev_pci_vcap *vc = &c->vcaps[c->num_vcaps++];

	vc->len = (uint8_t)caplen;
	vc->data[VPCI_CAP_CFG_TYPE] = type;
	vc->data[VPCI_CAP_BAR] = VPCI_BAR;
	memcpy(vc->data + VPCI_CAP_OFFSET, &off, 4);
	memcpy(vc->data + VPCI_CAP_LENGTH, &len, 4);
}

umdev_vpci *umdev_vpci_new(struct umdev_virtio_dev *vdev, int *err)
{
	struct umdev_pci_config c = { .name = vdev->name };
	struct umdev_pci_bar_desc *b = &c.bars[VPCI_BAR];
	struct umdev_vpci *vp;
	uint32_t mult = NOTIFY_MULT;

	if (!vdev->num_queues || vdev->num_queues > VPCI_MAX_QUEUES || !vdev->max_queue_size ||
	    vdev->config_size > PART) {
		*err = -EINVAL;
		return NULL;
	}
	vp = calloc(1, sizeof(*vp));
	if (vp)
		vp->q = calloc(vdev->num_queues, sizeof(*vp->q));
	if (!vp || !vp->q) {
		free(vp);
		*err = -ENOMEM;
		return NULL;
	}
	vp->vdev = vdev;
	vp->nq = vdev->num_queues;
	vp->config_vector = VIRTIO_MSI_NO_VECTOR;
	for (unsigned i = 0; i < vp->nq; i++)
		vp->q[i].kick_fd = -1;
	for (unsigned i = 0; i < vp->nq; i++) {
		struct vpci_queue *q = &vp->q[i];

		q->vp = vp;
		q->idx = i;
		queue_reset_regs(vp, q);
	}

	c.vendor_id = UMDEV_VPCI_VENDOR;
	c.device_id = (uint16_t)(UMDEV_VPCI_DEVICE_BASE + vdev->device_id);
	c.subsys_vendor_id = UMDEV_VPCI_VENDOR;
	c.subsys_id = (uint16_t)vdev->device_id;
	c.revision = 1; /* modern-only device */
	/* Mass storage: SCSI for virtio-scsi, "other" for the rest (as QEMU does). */
	c.class_code = vdev->device_id == 8 ? 0x010000 : 0x018000;
	b->size = VPCI_BAR_SIZE;
	b->flags = UMDEV_PCI_BAR_MEM64;
	b->traps[0] = (struct umdev_pci_trap){ OFF_COMMON, PART, common_read, common_write, vp };
	b->traps[1] = (struct umdev_pci_trap){ OFF_ISR, PART, isr_read, NULL, vp };
	b->traps[2] = (struct umdev_pci_trap){ OFF_DEVCFG, PART, devcfg_read, devcfg_write, vp };
	b->num_traps = 3;
	if (vdev->poll) {
		/* Queues busy-poll their rings: let notify writes land in memory, untrapped. */
		b->shared[0] = (struct umdev_pci_shared){ OFF_NOTIFY, PART };
		b->num_shared = 1;
	} else {
		b->traps[b->num_traps++] =
			(struct umdev_pci_trap){ OFF_NOTIFY, PART, NULL, notify_write, vp };
	}
	c.irq.intx = true;
	c.irq.msix_vectors = num_vectors(vp);
	c.msix_bar = VPCI_BAR;
	c.msix_table_offset = OFF_MSIX;
	c.msix_pba_offset = OFF_PBA;
	c.pm = true;
	c.ops = &vpci_pci_ops;
	c.opaque = vp;

	add_cap(&c, VIRTIO_PCI_CAP_COMMON_CFG, OFF_COMMON, VPCI_COMMON_SIZE, 16);
	add_cap(&c, VIRTIO_PCI_CAP_NOTIFY_CFG, OFF_NOTIFY, vp->nq * NOTIFY_MULT, 20);
	memcpy(c.vcaps[1].data + VPCI_CAP_NOTIFY_MULT, &mult, 4);
	add_cap(&c, VIRTIO_PCI_CAP_ISR_CFG, OFF_ISR, 1, 16);
	add_cap(&c, VIRTIO_PCI_CAP_DEVICE_CFG, OFF_DEVCFG, vdev->config_size, 16);
	add_cap(&c, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 20);
	/* The window's bar, offset, length and data are the driver's to write. */
	{
		struct umdev_pci_vcap *pc = &c.vcaps[VPCI_CAP_PCI_CFG_IDX];

		memset(pc->data + VPCI_CAP_BAR, 0, 1);
		pc->wmask[VPCI_CAP_BAR] = 0xff;
		memset(pc->wmask + VPCI_CAP_OFFSET, 0xff, 12);
	}
	vp->pci = umdev_pci_dev_new(&c, err);
	if (!vp->pci) {
		umdev_vpci_free(vp);
		return NULL;
	}
	vp->irq = umdev_pci_irq(vp->pci);
	vdev->config_notify = config_notify;
	vdev->config_notify_opaque = vp;
	return vp;
}

void umdev_vpci_free(umdev_vpci *vp)
{
	if (!vp)
		return;
	vp->vdev->config_notify = NULL;
	for (unsigned i = 0; i < vp->nq; i++)
		queue_suspend(&vp->q[i]);
	umdev_vdev_free_queues(vp->vdev);
	umdev_pci_dev_free(vp->pci);
	for (unsigned i = 0; i < vp->nq; i++) {
		umdev_vq_free(vp->q[i].vq);
		if (vp->q[i].kick_fd >= 0)
			close(vp->q[i].kick_fd);
	}
	free(vp->q);
	free(vp);
}

/* The runner's copy to or from memory the client shares only through messages. */
static int remote_copy(void *opaque, uint64_t gpa, void *buf, size_t len, bool to_guest)
{
	struct umdev_vpci *vp = opaque;

	return to_guest ? umdev_pci_dma_write(vp->pci, gpa, buf, len) :
			  umdev_pci_dma_read(vp->pci, gpa, buf, len);
}

int umdev_vpci_serve_remote(umdev_vpci *vp, umdev_loop *ctl)
{
	return umdev_vdev_set_remote(vp->vdev, ctl, remote_copy, vp);
}

umdev_pci_dev *umdev_vpci_pci(umdev_vpci *vp)
{
	return vp->pci;
}
