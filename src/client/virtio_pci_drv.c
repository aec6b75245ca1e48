/* SPDX-License-Identifier: BSD-3-Clause */
/* A virtio-pci (modern) driver over our vfio-user client. See virtio_pci_drv.h. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client/virtio_pci_drv.h"
#include "umdev/proto/pci_regs.h"
#include "umdev/proto/virtio_ring.h"

static int cfg_u32(struct umdev_vpd *d, uint32_t off, uint32_t *v)
{
	return umdev_vfuc_cfg_read(d->c, off, v, 4);
}

/* Read one virtio vendor capability into @r; ignore those we don't know. */
static int parse_cap(struct umdev_vpd *d, uint8_t off)
{
	uint8_t hdr[4];
	uint32_t bar_off, len, bar;
	struct umdev_vpd_region *r;
	int ret = umdev_vfuc_cfg_read(d->c, off, hdr, 4);

	if (ret < 0)
		return ret;
	switch (hdr[VPCI_CAP_CFG_TYPE]) {
	case VIRTIO_PCI_CAP_COMMON_CFG: r = &d->common; break;
	case VIRTIO_PCI_CAP_NOTIFY_CFG: r = &d->notify; break;
	case VIRTIO_PCI_CAP_ISR_CFG: r = &d->isr; break;
	case VIRTIO_PCI_CAP_DEVICE_CFG: r = &d->device; break;
	case VIRTIO_PCI_CAP_PCI_CFG: r = &d->pcicfg; break;
	default: return 0;
	}
	if (r->cap)
		return 0; /* the first of a type is the one to use */
	if ((ret = cfg_u32(d, off + VPCI_CAP_BAR, &bar)) < 0 ||
	    (ret = cfg_u32(d, off + VPCI_CAP_OFFSET, &bar_off)) < 0 ||
	    (ret = cfg_u32(d, off + VPCI_CAP_LENGTH, &len)) < 0)
		return ret;
	r->cap = off;
	r->bar = bar & 0xff;
	r->offset = bar_off;
	r->length = len;
	if (r == &d->notify)
		return cfg_u32(d, off + VPCI_CAP_NOTIFY_MULT, &d->notify_mult);
	return 0;
}

int umdev_vpd_probe(struct umdev_vpd *d, struct umdev_vfuc *c)
{
	uint8_t ptr = 0, hdr[2];
	uint32_t v;
	unsigned guard = 0;
	int ret;

	memset(d, 0, sizeof(*d));
	d->c = c;
	for (unsigned i = 0; i < UMDEV_VPD_MAX_VECTORS; i++)
		d->irq_fd[i] = -1;
	if ((ret = umdev_vfuc_cfg_read(c, UMDEV_PCI_VENDOR_ID, &v, 4)) < 0)
		return ret;
	if ((v & 0xffff) != 0x1af4 || (v >> 16) < 0x1040 || (v >> 16) > 0x107f)
		return -ENODEV;
	if ((ret = umdev_vfuc_cfg_read(c, UMDEV_PCI_CAP_PTR, &ptr, 1)) < 0)
		return ret;
	/* A capability list longer than config space can hold is a loop. */
	while (ptr && guard++ < 48) {
		if ((ret = umdev_vfuc_cfg_read(c, ptr & ~3u, hdr, 2)) < 0)
			return ret;
		if (hdr[0] == 0x09 && (ret = parse_cap(d, ptr & ~3u)) < 0)
			return ret;
		if (hdr[0] == UMDEV_PCI_CAP_ID_MSIX) {
			uint16_t flags;
			uint32_t table;

			d->msix_cap = ptr;
			if ((ret = umdev_vfuc_cfg_read(c, ptr + 2, &flags, 2)) < 0 ||
			    (ret = cfg_u32(d, ptr + UMDEV_PCI_MSIX_TABLE, &table)) < 0)
				return ret;
			d->msix_vectors = (flags & UMDEV_PCI_MSIX_FLAGS_QSIZE) + 1u;
			d->msix_bar = table & UMDEV_PCI_MSIX_BIR_MASK;
			d->msix_table_off = table & ~UMDEV_PCI_MSIX_BIR_MASK;
		}
		ptr = hdr[1];
	}
	if (!d->common.cap || !d->notify.cap || !d->isr.cap)
		return -ENODEV;
	if (d->common.length < VPCI_COMMON_SIZE)
		return -ENODEV;
	/* Memory space and bus mastering, as the guest's PCI core does. */
	ret = umdev_vfuc_cfg_write(c, UMDEV_PCI_COMMAND, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER,
				   2);
	if (ret < 0)
		return ret;
	d->num_queues = (uint16_t)umdev_vpd_common(d, VPCI_COMMON_NUMQ, 2);
	return 0;
}

void umdev_vpd_fini(struct umdev_vpd *d)
{
	for (unsigned i = 0; i < UMDEV_VPD_MAX_VECTORS; i++)
		if (d->irq_fd[i] >= 0)
			close(d->irq_fd[i]);
	for (unsigned i = 0; i < UMDEV_VPD_MAX_QUEUES; i++)
		if (d->q_live[i])
			umdev_vqd_fini(&d->q[i]);
	memset(d->q_live, 0, sizeof(d->q_live));
	for (unsigned i = 0; i < UMDEV_VPD_MAX_VECTORS; i++)
		d->irq_fd[i] = -1;
}

int umdev_vpd_common_read(struct umdev_vpd *d, uint32_t off, uint32_t len, uint64_t *val)
{
	*val = 0;
	return umdev_vfuc_region_read(d->c, d->common.bar, d->common.offset + off, val, len);
}

int umdev_vpd_common_write(struct umdev_vpd *d, uint32_t off, uint32_t len, uint64_t val)
{
	return umdev_vfuc_region_write(d->c, d->common.bar, d->common.offset + off, &val, len);
}

uint64_t umdev_vpd_common(struct umdev_vpd *d, uint32_t off, uint32_t len)
{
	uint64_t v;

	return umdev_vpd_common_read(d, off, len, &v) < 0 ? 0xdeadbeef : v;
}

uint8_t umdev_vpd_status(struct umdev_vpd *d)
{
	return (uint8_t)umdev_vpd_common(d, VPCI_COMMON_STATUS, 1);
}

uint64_t umdev_vpd_device_features(struct umdev_vpd *d)
{
	uint64_t lo, hi;

	if (umdev_vpd_common_write(d, VPCI_COMMON_DFSELECT, 4, 0) < 0)
		return 0;
	lo = umdev_vpd_common(d, VPCI_COMMON_DF, 4);
	if (umdev_vpd_common_write(d, VPCI_COMMON_DFSELECT, 4, 1) < 0)
		return 0;
	hi = umdev_vpd_common(d, VPCI_COMMON_DF, 4);
	return hi << 32 | (lo & 0xffffffffu);
}

int umdev_vpd_negotiate(struct umdev_vpd *d, uint64_t want)
{
	uint64_t f;
	int ret;

	if ((ret = umdev_vpd_common_write(d, VPCI_COMMON_STATUS, 1, 0)) < 0 ||
	    (ret = umdev_vpd_common_write(d, VPCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE)) < 0 ||
	    (ret = umdev_vpd_common_write(d, VPCI_COMMON_STATUS, 1,
					  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER)) < 0)
		return ret;
	f = umdev_vpd_device_features(d) & want;
	if (!d->packed)
		f &= ~(1ull << VIRTIO_F_RING_PACKED);
	if ((ret = umdev_vpd_common_write(d, VPCI_COMMON_GFSELECT, 4, 0)) < 0 ||
	    (ret = umdev_vpd_common_write(d, VPCI_COMMON_GF, 4, f & 0xffffffffu)) < 0 ||
	    (ret = umdev_vpd_common_write(d, VPCI_COMMON_GFSELECT, 4, 1)) < 0 ||
	    (ret = umdev_vpd_common_write(d, VPCI_COMMON_GF, 4, f >> 32)) < 0 ||
	    (ret = umdev_vpd_common_write(d, VPCI_COMMON_STATUS, 1,
					  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
						  VIRTIO_STATUS_FEATURES_OK)) < 0)
		return ret;
	if (!(umdev_vpd_status(d) & VIRTIO_STATUS_FEATURES_OK))
		return -EPROTO;
	d->features = f;
	return 0;
}

static int new_eventfds(struct umdev_vpd *d, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (d->irq_fd[i] >= 0)
			close(d->irq_fd[i]);
		d->irq_fd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (d->irq_fd[i] < 0)
			return -errno;
	}
	d->nirq = n;
	return 0;
}

int umdev_vpd_enable_msix(struct umdev_vpd *d, unsigned n)
{
	int ret;

	if (!d->msix_cap || !n || n > d->msix_vectors || n > UMDEV_VPD_MAX_VECTORS)
		return -EINVAL;
	if ((ret = new_eventfds(d, n)) < 0)
		return ret;
	ret = umdev_vfuc_set_irqs(d->c, VFIO_PCI_MSIX_IRQ_INDEX,
				  VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, n, NULL,
				  d->irq_fd, n);
	if (ret < 0)
		return ret;
	ret = umdev_vfuc_cfg_write(d->c, d->msix_cap + UMDEV_PCI_MSIX_FLAGS,
				   UMDEV_PCI_MSIX_FLAGS_ENABLE, 2);
	for (unsigned i = 0; ret == 0 && i < n; i++) {
		uint32_t ctrl = 0;

		ret = umdev_vfuc_region_write(d->c, d->msix_bar,
					      d->msix_table_off + i * UMDEV_PCI_MSIX_ENTRY_SIZE +
						      UMDEV_PCI_MSIX_ENTRY_CTRL,
					      &ctrl, 4);
	}
	return ret;
}

int umdev_vpd_enable_intx(struct umdev_vpd *d)
{
	int ret = new_eventfds(d, 1);

	if (ret < 0)
		return ret;
	return umdev_vfuc_set_irqs(d->c, VFIO_PCI_INTX_IRQ_INDEX,
				   VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, NULL,
				   d->irq_fd, 1);
}

int umdev_vpd_queue_setup(struct umdev_vpd *d, unsigned idx, uint16_t size, uint64_t ring_gpa,
			  uint16_t vector)
{
	struct umdev_vqd *q = &d->q[idx];
	uint64_t bytes = umdev_vqd_ring_bytes(size), base = 0, mem_size = 0;
	uint8_t *mem = NULL;
	int ret;

	if (idx >= UMDEV_VPD_MAX_QUEUES)
		return -EINVAL;
	/* The window handed to the ring code is the guest memory region holding it. */
	for (unsigned i = 0; i < d->c->nmem; i++) {
		const struct umdev_vfuc_mem *m = &d->c->mem[i];

		if (ring_gpa >= m->iova && ring_gpa - m->iova < m->size) {
			mem = m->ptr;
			base = m->iova;
			mem_size = m->size;
		}
	}
	if (!mem || ring_gpa - base + bytes > mem_size)
		return -EFAULT;
	if (d->q_live[idx])
		umdev_vqd_fini(q);
	d->q_live[idx] = false;
	ret = (d->features & (1ull << VIRTIO_F_RING_PACKED) ? umdev_vqd_init_packed : umdev_vqd_init)(
		q, mem, base, mem_size, ring_gpa, size, d->features & (1ull << VIRTIO_RING_F_EVENT_IDX));
	if (ret < 0)
		return ret;
	d->q_live[idx] = true;
	if ((ret = umdev_vpd_common_write(d, VPCI_COMMON_Q_SELECT, 2, idx)) < 0 ||
	    (ret = umdev_vpd_common_write(d, VPCI_COMMON_Q_SIZE, 2, size)) < 0 ||
	    (ret = umdev_vpd_common_write(d, VPCI_COMMON_Q_MSIX, 2, vector)) < 0)
		return ret;
	/* 64-bit registers as two halves, as Linux writes them. */
	for (unsigned r = 0; r < 3; r++) {
		uint64_t a = r == 0 ? q->desc_gpa : r == 1 ? q->avail_gpa : q->used_gpa;
		uint32_t off = VPCI_COMMON_Q_DESC + 8 * r;

		if ((ret = umdev_vpd_common_write(d, off, 4, a & 0xffffffffu)) < 0 ||
		    (ret = umdev_vpd_common_write(d, off + 4, 4, a >> 32)) < 0)
			return ret;
	}
	if (umdev_vpd_common(d, VPCI_COMMON_Q_SIZE, 2) != size)
		return -EINVAL;
	d->notify_at[idx] = d->notify.offset +
			    (uint32_t)umdev_vpd_common(d, VPCI_COMMON_Q_NOFF, 2) * d->notify_mult;
	return umdev_vpd_common_write(d, VPCI_COMMON_Q_ENABLE, 2, 1);
}

int umdev_vpd_driver_ok(struct umdev_vpd *d)
{
	return umdev_vpd_common_write(d, VPCI_COMMON_STATUS, 1,
				      umdev_vpd_status(d) | VIRTIO_STATUS_DRIVER_OK);
}

int umdev_vpd_kick(struct umdev_vpd *d, unsigned idx)
{
	uint64_t noff;
	uint16_t v = (uint16_t)idx;
	int ret;

	if (idx < UMDEV_VPD_MAX_QUEUES && d->q_live[idx])
		return umdev_vfuc_region_write_posted(d->c, d->notify.bar, d->notify_at[idx], &v, 2);
	ret = umdev_vpd_common_write(d, VPCI_COMMON_Q_SELECT, 2, idx);
	if (ret < 0)
		return ret;
	noff = umdev_vpd_common(d, VPCI_COMMON_Q_NOFF, 2);
	return umdev_vfuc_region_write(d->c, d->notify.bar,
				       d->notify.offset + (uint32_t)noff * d->notify_mult, &v, 2);
}

uint64_t umdev_vpd_wait_irq(struct umdev_vpd *d, unsigned slot, int timeout_ms)
{
	struct pollfd p = { .fd = slot < UMDEV_VPD_MAX_VECTORS ? d->irq_fd[slot] : -1,
			    .events = POLLIN };
	uint64_t v = 0;

	if (p.fd < 0 || poll(&p, 1, timeout_ms) <= 0)
		return 0;
	if (read(p.fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int umdev_vpd_wait_used(struct umdev_vpd *d, unsigned idx, int timeout_ms, uint16_t *head,
			uint32_t *len)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;

	if (idx >= UMDEV_VPD_MAX_QUEUES || !d->q_live[idx])
		return -EINVAL;
	for (;;) {
		int ret = umdev_vqd_get_used(&d->q[idx], head, len);

		if (ret != 0)
			return ret;
		if (now_ms() >= end)
			return 0;
		/* Serve DMA commands (none with fd-backed memory) and sleep a little. */
		umdev_vfuc_poll(d->c, 1);
	}
}
