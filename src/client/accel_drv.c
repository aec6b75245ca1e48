/* SPDX-License-Identifier: BSD-3-Clause */
/* The accel test driver (see accel_drv.h). */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "client/accel_drv.h"
#include "umdev/proto/pci_regs.h"
#include "util/shm.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ll + ts.tv_nsec / 1000000;
}

/* The sparse areas must cover the hot page and the ring, and nothing trapped. */
static int check_sparse(const uint8_t *buf, size_t len)
{
	const struct vfio_user_region_info *ri = (const void *)buf;
	uint32_t off = ri->cap_offset;
	bool hot = false, ring = false;

	while (off && off + sizeof(struct vfio_info_cap_header) <= len) {
		const struct vfio_info_cap_header *h = (const void *)(buf + off);

		if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
			const struct vfio_region_info_cap_sparse_mmap *sp = (const void *)h;

			for (uint32_t i = 0; i < sp->nr_areas; i++) {
				uint64_t o = sp->areas[i].offset, e = o + sp->areas[i].size;

				if (o < ACCEL_REGS_OFF + ACCEL_PAGE && e > ACCEL_REGS_OFF)
					return -EPROTO; /* the register page must trap */
				if (o < ACCEL_PORTAL_OFF + ACCEL_PAGE && e > ACCEL_PORTAL_OFF)
					return -EPROTO;
				hot |= o <= ACCEL_HOT_OFF && e >= ACCEL_HOT_OFF + ACCEL_PAGE;
				ring |= o <= ACCEL_RING_OFF && e >= ACCEL_RING_OFF + ACCEL_RING_MAX_BYTES;
			}
		}
		off = h->next;
	}
	return hot && ring ? 0 : -ENODEV;
}

int accel_drv_open(struct accel_drv *d, const char *sock, uint64_t mem_size)
{
	uint8_t buf[1024];
	uint16_t cmd = 0;
	int fd = -1, ret;

	memset(d, 0, sizeof(*d));
	d->open = true;
	d->bar = MAP_FAILED;
	for (unsigned i = 0; i < ACCEL_DRV_MAX_VEC; i++)
		d->efd[i] = -1;
	ret = umdev_vfuc_connect(&d->c, sock, 3000);
	if (ret < 0)
		return ret;
	if ((ret = umdev_vfuc_version(&d->c, NULL)) < 0 ||
	    (ret = umdev_vfuc_add_mem(&d->c, ACCEL_DRV_IOVA, mem_size, true,
				      VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE)) < 0 ||
	    (ret = umdev_vfuc_region_info(&d->c, 0, buf, sizeof(buf), &fd)) < 0)
		goto fail;
	/* Start from a clean function: the last client may have left work behind. */
	if ((ret = umdev_vfuc_reset(&d->c)) < 0)
		goto fail;
	if (fd < 0 || (ret = check_sparse(buf, sizeof(buf))) < 0) {
		ret = ret < 0 ? ret : -ENODEV;
		goto fail;
	}
	/* Map the whole BAR as a VMM does; only the sparse areas are ever touched. */
	d->bar = mmap(NULL, ACCEL_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	fd = -1;
	if (d->bar == MAP_FAILED) {
		ret = -errno;
		goto fail;
	}
	d->mem = umdev_vfuc_mem_ptr(&d->c, ACCEL_DRV_IOVA, mem_size);
	d->mem_size = mem_size;
	if ((ret = umdev_vfuc_cfg_read(&d->c, UMDEV_PCI_COMMAND, &cmd, 2)) < 0 ||
	    (ret = umdev_vfuc_cfg_write(&d->c, UMDEV_PCI_COMMAND,
					cmd | UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER, 2)) < 0 ||
	    (ret = accel_drv_reg_read(d, ACCEL_REG_WQ_SIZE, &d->wq_size)) < 0 ||
	    (ret = accel_drv_reg_read(d, ACCEL_REG_PASID, &d->pasid)) < 0 ||
	    (ret = accel_drv_reg_read(d, ACCEL_REG_VECTORS, &d->nvec)) < 0)
		goto fail;
	d->tail = umdev_shm_ld32(d->bar + ACCEL_HOT_OFF + ACCEL_HOT_TAIL);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	accel_drv_close(d);
	return ret;
}

void accel_drv_close(struct accel_drv *d)
{
	if (!d->open)
		return;
	d->open = false;
	if (d->bar && d->bar != MAP_FAILED)
		munmap(d->bar, ACCEL_BAR0_SIZE);
	d->bar = MAP_FAILED;
	for (unsigned i = 0; i < ACCEL_DRV_MAX_VEC; i++) {
		if (d->efd[i] >= 0)
			close(d->efd[i]);
		d->efd[i] = -1;
	}
	umdev_vfuc_close(&d->c);
}

int accel_drv_msix(struct accel_drv *d, unsigned start, unsigned n)
{
	int fds[ACCEL_DRV_MAX_VEC];
	unsigned cap;
	int ret;

	if (start + n > ACCEL_DRV_MAX_VEC)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (d->efd[start + i] < 0)
			d->efd[start + i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (d->efd[start + i] < 0)
			return -errno;
		fds[i] = d->efd[start + i];
	}
	ret = umdev_vfuc_set_irqs(&d->c, VFIO_PCI_MSIX_IRQ_INDEX,
				  VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, start, n,
				  NULL, fds, n);
	if (ret < 0)
		return ret;
	cap = umdev_vfuc_find_cap(&d->c, UMDEV_PCI_CAP_ID_MSIX);
	if (!cap)
		return -ENODEV;
	return umdev_vfuc_cfg_write(&d->c, cap + 2, UMDEV_PCI_MSIX_FLAGS_ENABLE, 2);
}

int accel_drv_msix_off(struct accel_drv *d)
{
	return umdev_vfuc_set_irqs(&d->c, VFIO_PCI_MSIX_IRQ_INDEX,
				   VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL,
				   NULL, 0);
}

int accel_drv_mask(struct accel_drv *d, unsigned v, bool mask)
{
	return umdev_vfuc_set_irqs(&d->c, VFIO_PCI_MSIX_IRQ_INDEX,
				   VFIO_IRQ_SET_DATA_NONE |
					   (mask ? VFIO_IRQ_SET_ACTION_MASK : VFIO_IRQ_SET_ACTION_UNMASK),
				   v, 1, NULL, NULL, 0);
}

int accel_drv_reg_read(struct accel_drv *d, uint32_t off, uint32_t *val)
{
	return umdev_vfuc_region_read(&d->c, 0, off, val, 4);
}

int accel_drv_reg_write(struct accel_drv *d, uint32_t off, uint32_t val)
{
	return umdev_vfuc_region_write(&d->c, 0, off, &val, 4);
}

int accel_drv_cmd(struct accel_drv *d, uint32_t cmd)
{
	int ret = accel_drv_reg_write(d, ACCEL_REG_CMD, cmd);

	if (ret == 0 && cmd == ACCEL_CMD_RESET)
		d->tail = 0;
	return ret;
}

int accel_drv_perm(struct accel_drv *d, unsigned v, bool en, uint32_t pasid)
{
	return accel_drv_reg_write(d, ACCEL_REG_PERM + v * ACCEL_PERM_STRIDE,
				   (en ? ACCEL_PERM_PASID_EN : 0) | pasid << ACCEL_PERM_PASID_SHIFT);
}

uint64_t accel_drv_alloc(struct accel_drv *d, uint64_t size, uint64_t align)
{
	uint64_t at = (d->brk + align - 1) & ~(align - 1);

	if (at + size > d->mem_size)
		return 0;
	d->brk = at + size;
	memset(d->mem + at, 0, size);
	return ACCEL_DRV_IOVA + at;
}

void *accel_drv_ptr(struct accel_drv *d, uint64_t iova)
{
	return d->mem + (iova - ACCEL_DRV_IOVA);
}

uint32_t accel_drv_head(struct accel_drv *d)
{
	return umdev_shm_ld32_acq(d->bar + ACCEL_HOT_OFF + ACCEL_HOT_HEAD);
}

int accel_drv_submit(struct accel_drv *d, const struct accel_desc *desc, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	uint32_t slot;

	while (d->tail - accel_drv_head(d) >= d->wq_size) {
		if (now_ms() > end)
			return -ETIMEDOUT;
		sched_yield();
	}
	slot = d->tail & (d->wq_size - 1);
	umdev_shm_copy_out(d->bar + ACCEL_RING_OFF + slot * sizeof(*desc), desc, sizeof(*desc));
	umdev_shm_st32_rel(d->bar + ACCEL_HOT_OFF + ACCEL_HOT_TAIL, ++d->tail);
	/* Pairs with the engine's fence between raising idle and re-reading tails. */
	umdev_shm_fence_full();
	if (umdev_shm_ld32(d->bar + ACCEL_HOT_OFF + ACCEL_HOT_IDLE)) {
		d->kicks++;
		return accel_drv_reg_write(d, ACCEL_REG_KICK, 1);
	}
	return 0;
}

int accel_drv_submit_portal(struct accel_drv *d, const struct accel_desc *desc, unsigned n)
{
	int ret = umdev_vfuc_region_write(&d->c, 0, ACCEL_PORTAL_OFF, desc,
					  n * (uint32_t)sizeof(*desc));

	if (ret == 0)
		d->tail += n;
	return ret;
}

int accel_drv_wait(struct accel_drv *d, uint64_t comp_iova, int timeout_ms)
{
	const uint8_t *rec = accel_drv_ptr(d, comp_iova);
	long long end = now_ms() + timeout_ms;
	uint32_t first;

	while (!((first = umdev_shm_ld32_acq(rec)) & 0xff)) {
		if (now_ms() > end)
			return -ETIMEDOUT;
		sched_yield();
	}
	return (int)(first & 0xff);
}

uint64_t accel_drv_irqs(struct accel_drv *d, unsigned v, uint64_t want, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	uint64_t total = 0;

	if (v >= ACCEL_DRV_MAX_VEC || d->efd[v] < 0)
		return 0;
	for (;;) {
		struct pollfd p = { .fd = d->efd[v], .events = POLLIN };
		uint64_t n;

		if (read(d->efd[v], &n, sizeof(n)) == sizeof(n))
			total += n;
		if (total >= want || now_ms() >= end)
			return total;
		(void)poll(&p, 1, (int)(end - now_ms()));
	}
}

struct accel_desc accel_drv_copy_desc(struct accel_drv *d, uint64_t src, uint64_t dst,
				      uint32_t size, uint64_t comp, unsigned vec)
{
	return (struct accel_desc){
		.pasid = d->pasid,
		.opcode = ACCEL_OP_COPY,
		.flags = ACCEL_F_COMP | (vec ? ACCEL_F_IRQ : 0),
		.vector = (uint16_t)vec,
		.comp_addr = comp,
		.src = src,
		.dst = dst,
		.size = size,
	};
}
