/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit-test fixture: a real NVMe controller on a real PCI function, with
 * guest memory from a memfd address space (the transport's part faked) and
 * MSI-X eventfds. Unthreaded fixtures never start the I/O loop: the host
 * driver's kick runs one nvme_process_all() pass, so every step is synchronous.
 * Threaded ones run the loop, as umdevd does.
 */
#ifndef UMDEV_TESTS_NVME_FIXTURE_H
#define UMDEV_TESTS_NVME_FIXTURE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/nvme_drv.h"
#include "dev/nvme/nvme_internal.h"
#include "umdev/mem.h"
#include "umdev/nvme.h"
#include "umdev/pci.h"

#define FX_IOVA 0x10000000ull
#define FX_MEM (16u << 20)
#define FX_QUEUES 4
#define FX_NVEC (FX_QUEUES + 1)

struct fx {
	umdev_loop *loop;
	bool threaded;
	umdev_nvme *n;
	umdev_as *as;
	uint8_t *mem;
	int memfd; /* a dup kept to map the region again */
	int efd[FX_NVEC];
	struct umdev_nvmed d;
	struct umdev_nvmed_bus bus;
	struct umdev_pci_dma_ops dma;
	/* Work the device deferred until "the reply": run by the next kick. */
	void (*deferred)(void *arg);
	void *deferred_arg;
};

static umdev_as_map *fx_get_map(void *opaque)
{
	return umdev_as_get_map(((struct fx *)opaque)->as);
}

static inline int fx_reg_read(void *opaque, uint32_t off, void *buf, unsigned len)
{
	return umdev_pci_bar_access(umdev_nvme_pci(((struct fx *)opaque)->n), 0, off, buf, len,
				    false);
}

static inline int fx_reg_write(void *opaque, uint32_t off, const void *buf, unsigned len)
{
	return umdev_pci_bar_access(umdev_nvme_pci(((struct fx *)opaque)->n), 0, off, (void *)buf,
				    len, true);
}

static int fx_defer(void *opaque, void (*fn)(void *arg), void *arg)
{
	struct fx *f = opaque;

	/* Threaded: nobody kicks, so the caller runs the work itself. */
	if (f->threaded)
		return -ENOTCONN;
	f->deferred = fn;
	f->deferred_arg = arg;
	return 0;
}

static inline void fx_kick(void *opaque)
{
	struct fx *f = opaque;

	if (f->deferred) {
		void (*fn)(void *arg) = f->deferred;

		f->deferred = NULL;
		fn(f->deferred_arg);
	}
	(void)nvme_process_all(f->n);
}

/* Bus mastering + memory space, MSI-X with every vector unmasked. */
static inline int fx_pci_up(struct fx *f)
{
	umdev_pci_dev *pci = umdev_nvme_pci(f->n);
	umdev_irq *irq = umdev_pci_irq(pci);
	uint16_t cmd = 0x6;
	int fds[FX_NVEC];
	int ret;

	ret = umdev_pci_cfg_access(pci, 4, &cmd, 2, true);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < FX_NVEC; i++)
		fds[i] = dup(f->efd[i]);
	ret = umdev_irq_set(irq, UMDEV_IRQ_MSIX,
			    UMDEV_IRQ_SET_DATA_EVENTFD | UMDEV_IRQ_SET_ACTION_TRIGGER, 0, FX_NVEC,
			    NULL, fds, FX_NVEC);
	if (ret < 0)
		return ret;
	umdev_irq_msix_control(irq, true, false);
	for (unsigned i = 0; i < FX_NVEC; i++) {
		uint32_t z = 0;

		ret = umdev_irq_msix_table_access(irq, i * 16 + 12, &z, 4, true);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Interrupts signalled on @vec since the last call. */
static inline uint64_t fx_irqs(struct fx *f, unsigned vec)
{
	uint64_t v = 0;

	if (read(f->efd[vec], &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static inline int fx_add_ram_ns(struct fx *f, const char *spec, uint64_t off, uint64_t size,
			 uint32_t *nsid)
{
	int err = 0, ret;
	umdev_bdev *b = umdev_bdev_open(spec, false, &err);

	if (!b)
		return err;
	ret = umdev_nvme_ns_add(f->n, b, off, size, 0, nsid);
	if (ret < 0)
		umdev_bdev_close(b);
	return ret;
}

/* The client maps guest memory again (after fx_unmap). */
static inline int fx_remap(struct fx *f)
{
	struct umdev_mem_region_desc rd = { .guest_addr = FX_IOVA, .size = FX_MEM,
					    .prot = UMDEV_MEM_READ | UMDEV_MEM_WRITE,
					    .fd = dup(f->memfd) };

	return umdev_as_add_region(f->as, &rd);
}

/* The client unmaps guest memory: the device is told first, as the transport does. */
static inline int fx_unmap(struct fx *f)
{
	umdev_pci_dma_unmap(umdev_nvme_pci(f->n), FX_IOVA, FX_MEM);
	return umdev_as_remove_region(f->as, FX_IOVA, FX_MEM);
}

static struct fx *fx_new(bool threaded)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct umdev_nvme_config cfg = { .name = "nvmet", .max_queues = FX_QUEUES };
	struct umdev_mem_region_desc rd = { .guest_addr = FX_IOVA, .size = FX_MEM,
					    .prot = UMDEV_MEM_READ | UMDEV_MEM_WRITE };
	int err = 0, mfd;

	if (!f)
		return NULL;
	f->threaded = threaded;
	f->loop = umdev_loop_new("nvmet-io", 0, &err);
	if (!f->loop)
		return NULL;
	if (threaded && umdev_loop_start_thread(f->loop) < 0)
		return NULL;
	cfg.loop = f->loop;
	f->n = umdev_nvme_new(&cfg, &err);
	if (!f->n)
		return NULL;
	f->as = umdev_as_new(&err);
	mfd = memfd_create("nvmet-guest", MFD_CLOEXEC);
	if (!f->as || mfd < 0 || ftruncate(mfd, FX_MEM) < 0)
		return NULL;
	f->mem = mmap(NULL, FX_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (f->mem == MAP_FAILED)
		return NULL;
	f->memfd = dup(mfd);
	rd.fd = mfd;
	if (umdev_as_add_region(f->as, &rd) < 0)
		return NULL;
	f->dma.get_map = fx_get_map;
	f->dma.defer = fx_defer;
	umdev_pci_attach(umdev_nvme_pci(f->n), &f->dma, f);
	for (unsigned i = 0; i < FX_NVEC; i++)
		f->efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fx_pci_up(f) < 0)
		return NULL;
	f->bus.reg_read = fx_reg_read;
	f->bus.reg_write = fx_reg_write;
	/* Trapped doorbells (no shared BAR memory) go through reg_write. */
	if (umdev_pci_bar_mem(umdev_nvme_pci(f->n), 0))
		f->bus.doorbells = (uint32_t *)((uint8_t *)umdev_pci_bar_mem(
			umdev_nvme_pci(f->n), 0) + NVME_REG_DBS);
	f->bus.kick = threaded ? NULL : fx_kick;
	umdev_nvmed_init(&f->d, &f->bus, f, f->mem, FX_IOVA, FX_MEM);
	f->d.timeout_ms = threaded ? 5000 : 200;
	return f;
}

static inline void fx_free(struct fx *f)
{
	umdev_pci_attach(umdev_nvme_pci(f->n), NULL, NULL);
	umdev_nvme_free(f->n);
	if (f->threaded) {
		umdev_loop_stop(f->loop);
		umdev_loop_join(f->loop);
	}
	umdev_loop_free(f->loop);
	umdev_as_free(f->as);
	munmap(f->mem, FX_MEM);
	close(f->memfd);
	for (unsigned i = 0; i < FX_NVEC; i++)
		close(f->efd[i]);
	free(f);
}

#endif
