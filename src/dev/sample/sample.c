/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pci-sample device (see sample.h). It shows the three things a vfio-user
 * device does: trapped registers with side effects, shared BAR memory the
 * client maps, and DMA to guest memory followed by an interrupt. It sees
 * only the PCI model (include/umdev/pci.h) and the interrupt layer.
 *
 * A command is a posted write: the register write is answered first and
 * the command runs right after (umdev_pci_defer), on the control thread. That
 * is what lets its DMA use the client's DMA_READ/DMA_WRITE messages for
 * memory shared without an fd: a client blocked waiting for the reply to its
 * register write could not serve them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"
#include "umdev/log.h"

struct umdev_sample {
	umdev_pci_dev *pci;
	char name[32];
	uint32_t scratch, dma_lo, dma_hi, dma_len, status, vector, done;
	uint32_t pending_cmd; /* written, not yet run (0: none) */
};

static int regs_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	struct umdev_sample *s = opaque;
	uint32_t v;

	if (len != 4 || off % 4)
		return -EINVAL; /* registers are 32-bit */
	switch (off) {
	case SAMPLE_REG_ID: v = SAMPLE_ID_VALUE; break;
	case SAMPLE_REG_SCRATCH: v = s->scratch; break;
	case SAMPLE_REG_DMA_LO: v = s->dma_lo; break;
	case SAMPLE_REG_DMA_HI: v = s->dma_hi; break;
	case SAMPLE_REG_DMA_LEN: v = s->dma_len; break;
	case SAMPLE_REG_STATUS: v = s->status; break;
	case SAMPLE_REG_VECTOR: v = s->vector; break;
	case SAMPLE_REG_DONE: v = s->done; break;
	default: v = 0; break;
	}
	memcpy(buf, &v, 4);
	return 0;
}

static void run(struct umdev_sample *s, uint32_t cmd)
{
	uint64_t addr = (uint64_t)s->dma_hi << 32 | s->dma_lo;
	uint8_t *data = (uint8_t *)umdev_pci_bar_mem(s->pci, 0) + SAMPLE_DATA_OFF;
	int ret = 0;

	if ((cmd == SAMPLE_CMD_TO_GUEST || cmd == SAMPLE_CMD_FROM_GUEST) &&
	    s->dma_len > SAMPLE_DATA_SIZE)
		ret = -EINVAL;
	else if (cmd == SAMPLE_CMD_TO_GUEST)
		ret = umdev_pci_dma_write(s->pci, addr, data, s->dma_len);
	else if (cmd == SAMPLE_CMD_FROM_GUEST)
		ret = umdev_pci_dma_read(s->pci, addr, data, s->dma_len);
	else if (cmd != SAMPLE_CMD_IRQ)
		ret = -EINVAL;
	if (ret < 0) {
		umdev_warn("%s: command %u at 0x%llx+%u failed: %s", s->name, cmd,
			   (unsigned long long)addr, s->dma_len, strerror(-ret));
		s->status |= SAMPLE_STS_ERROR;
	}
	s->status |= SAMPLE_STS_DONE;
	s->done++;
	/* A masked vector is held pending by the interrupt layer, not lost. */
	if (umdev_irq_trigger(umdev_pci_irq(s->pci), s->vector) < 0)
		umdev_dbg("%s: vector %u not enabled", s->name, s->vector);
}

static void run_pending(void *opaque)
{
	struct umdev_sample *s = opaque;
	uint32_t cmd = s->pending_cmd;

	/* A reset between the write and now cancels the command. */
	if (!cmd)
		return;
	s->pending_cmd = 0;
	run(s, cmd);
}

static void start(struct umdev_sample *s, uint32_t cmd)
{
	bool queued = s->pending_cmd != 0;

	/* A second write before the first ran replaces it, as a busy device would. */
	s->pending_cmd = cmd ? cmd : ~0u;
	if (queued)
		return;
	if (umdev_pci_defer(s->pci, run_pending, s) < 0)
		run_pending(s);
}

static int regs_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	struct umdev_sample *s = opaque;
	uint32_t v;

	if (len != 4 || off % 4)
		return -EINVAL;
	memcpy(&v, buf, 4);
	switch (off) {
	case SAMPLE_REG_SCRATCH: s->scratch = v; break;
	case SAMPLE_REG_DMA_LO: s->dma_lo = v; break;
	case SAMPLE_REG_DMA_HI: s->dma_hi = v; break;
	case SAMPLE_REG_DMA_LEN: s->dma_len = v; break;
	case SAMPLE_REG_CMD: start(s, v); break;
	case SAMPLE_REG_STATUS: s->status &= ~v; break;
	case SAMPLE_REG_VECTOR: s->vector = v; break;
	default: break; /* read-only or unassigned: ignored */
	}
	return 0;
}

static void sample_reset(void *opaque)
{
	struct umdev_sample *s = opaque;

	s->scratch = s->dma_lo = s->dma_hi = s->dma_len = s->status = s->vector = 0;
	s->done = s->pending_cmd = 0;
}

static void sample_dma_unmap(void *opaque, uint64_t iova, uint64_t len)
{
	/*
	 * A command runs to completion once started, on this same thread, so
	 * no DMA is in flight here; one still pending runs after the unmap and
	 * finds the range gone (an error, as on hardware).
	 */
}

static const struct umdev_pci_dev_ops sample_ops = {
	.reset = sample_reset,
	.dma_unmap = sample_dma_unmap,
};

umdev_sample *umdev_sample_new(const char *name, int *err)
{
	struct umdev_sample *s = calloc(1, sizeof(*s));
	struct umdev_pci_config c = {
		.vendor_id = SAMPLE_VENDOR_ID,
		.device_id = SAMPLE_DEVICE_ID,
		.subsys_vendor_id = SAMPLE_VENDOR_ID,
		.subsys_id = SAMPLE_DEVICE_ID,
		.class_code = SAMPLE_CLASS,
		.irq = { .intx = true, .msi_vectors = 1, .msix_vectors = SAMPLE_MSIX_VECTORS,
			 .err = true, .req = true },
		.msix_bar = SAMPLE_MSIX_BAR,
		.msix_table_offset = 0,
		.msix_pba_offset = 0x800,
		.pm = true,
		.pcie = true,
		.ops = &sample_ops,
	};

	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	c.name = s->name;
	c.opaque = s;
	c.bars[0] = (struct umdev_pci_bar_desc){
		.size = SAMPLE_BAR0_SIZE,
		.flags = UMDEV_PCI_BAR_MEM64,
		.traps = { { 0, SAMPLE_REGS_SIZE, regs_read, regs_write, s } },
		.num_traps = 1,
		.shared = { { SAMPLE_DATA_OFF, SAMPLE_DATA_SIZE }, { SAMPLE_DOORBELL_OFF, 0x1000 } },
		.num_shared = 2,
	};
	c.bars[SAMPLE_MSIX_BAR].size = 0x1000;
	s->pci = umdev_pci_dev_new(&c, err);
	if (!s->pci) {
		free(s);
		return NULL;
	}
	return s;
}

void umdev_sample_free(umdev_sample *s)
{
	if (!s)
		return;
	umdev_pci_dev_free(s->pci);
	free(s);
}

umdev_pci_dev *umdev_sample_pci(umdev_sample *s)
{
	return s->pci;
}
