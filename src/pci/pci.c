/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PCI function model: configuration space with per-byte write rules, BARs
 * made of trapped and shared parts, DMA gated by bus mastering. See
 * include/umdev/pci.h.
 *
 * Config space is three byte arrays: the value, a mask of bits software may
 * write, and a mask of write-1-to-clear bits. A write changes only writable
 * bits; RW1C bits clear where a 1 is written. Registers with side effects
 * (BARs, command, MSI/MSI-X control, PM) are post-processed after the byte
 * rules are applied, so an access of any size and alignment behaves as the
 * same bytes written one by one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "umdev/log.h"
#include "umdev/pci.h"
#include "umdev/proto/pci_regs.h"

#define CAP_PM 0x40
#define CAP_MSI 0x48
#define CAP_MSIX 0x60
#define CAP_EXP 0x70
#define PAGE 4096u

struct bar {
	struct umdev_pci_bar_desc desc;
	void *mem; /* whole BAR when any part is shared */
	int fd;
};

struct umdev_pci_dev {
	struct umdev_pci_config cfg;
	char name[32];
	uint32_t cfg_size;
	uint8_t val[UMDEV_PCIE_CFG_SIZE];
	uint8_t init[UMDEV_PCIE_CFG_SIZE]; /* power-on values, for reset */
	uint8_t wmask[UMDEV_PCIE_CFG_SIZE];
	uint8_t w1c[UMDEV_PCIE_CFG_SIZE];
	struct bar bars[UMDEV_PCI_NUM_BARS];
	umdev_irq *irq;
	uint8_t msi_cap, msix_cap, pm_cap, exp_cap;
	uint8_t vcap[UMDEV_PCI_MAX_VCAPS]; /* offsets of the vendor capabilities */
	unsigned vcap_end; /* one past the last vendor capability byte (0: none) */
	_Atomic uint16_t command; /* mirror readable from any thread */

	/*
	 * The transport attaches and detaches its DMA ops on the control thread
	 * while a device's data-plane thread may be asking for a map: the lock
	 * keeps a detach (and the freeing of what get_map reads) from racing
	 * with a get_map in progress. Taken only to fetch a map, not per I/O.
	 */
	pthread_mutex_t dma_lock;
	const struct umdev_pci_dma_ops *dma;
	void *dma_opaque;
};

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void set_wmask16(umdev_pci_dev *d, unsigned off, uint16_t m)
{
	put16(d->wmask + off, m);
}

static void set_wmask32(umdev_pci_dev *d, unsigned off, uint32_t m)
{
	put32(d->wmask + off, m);
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static bool ranges_overlap(uint64_t a, uint64_t al, uint64_t b, uint64_t bl)
{
	return a < b + bl && b < a + al;
}

static int check_bars(const struct umdev_pci_config *c)
{
	for (unsigned i = 0; i < UMDEV_PCI_NUM_BARS; i++) {
		const struct umdev_pci_bar_desc *b = &c->bars[i];
		uint64_t ranges[2 * UMDEV_PCI_MAX_BAR_PARTS][2];
		unsigned n = 0;

		if (!b->size) {
			if (b->num_traps || b->num_shared)
				return -EINVAL;
			continue;
		}
		if (!is_pow2(b->size) || b->size < PAGE || b->num_traps > UMDEV_PCI_MAX_BAR_PARTS ||
		    b->num_shared > UMDEV_PCI_MAX_BAR_PARTS)
			return -EINVAL;
		if (!(b->flags & UMDEV_PCI_BAR_MEM64) && b->size > (1ull << 31))
			return -EINVAL;
		if (b->flags & UMDEV_PCI_BAR_MEM64) {
			if (i == 5 || c->bars[i + 1].size)
				return -EINVAL;
		}
		for (unsigned t = 0; t < b->num_traps; t++) {
			ranges[n][0] = b->traps[t].offset;
			ranges[n++][1] = b->traps[t].size;
		}
		for (unsigned s = 0; s < b->num_shared; s++) {
			if (b->shared[s].offset % PAGE || b->shared[s].size % PAGE)
				return -EINVAL;
			ranges[n][0] = b->shared[s].offset;
			ranges[n++][1] = b->shared[s].size;
		}
		for (unsigned x = 0; x < n; x++) {
			if (!ranges[x][1] || ranges[x][0] > b->size || ranges[x][1] > b->size - ranges[x][0])
				return -EINVAL;
			for (unsigned y = 0; y < x; y++)
				if (ranges_overlap(ranges[x][0], ranges[x][1], ranges[y][0], ranges[y][1]))
					return -EINVAL;
		}
	}
	return 0;
}

static int check_vcaps(const struct umdev_pci_config *c)
{
	unsigned end = c->pcie ? CAP_EXP + 0x3c : CAP_EXP;

	if (c->num_vcaps > UMDEV_PCI_MAX_VCAPS)
		return -EINVAL;
	for (unsigned i = 0; i < c->num_vcaps; i++) {
		if (c->vcaps[i].len < 3 || c->vcaps[i].len > UMDEV_PCI_VCAP_MAX_LEN)
			return -EINVAL;
		end = (end + c->vcaps[i].len + 3) & ~3u;
	}
	return end <= UMDEV_PCI_CFG_SIZE ? 0 : -EINVAL;
}

/* MSI-X table and PBA as traps the layer owns. */
static int msix_table_read(void *opaque, uint64_t off, void *buf, size_t len);
static int msix_table_write(void *opaque, uint64_t off, const void *buf, size_t len);
static int msix_pba_read(void *opaque, uint64_t off, void *buf, size_t len);

static int add_msix_traps(umdev_pci_dev *d)
{
	struct umdev_pci_bar_desc *b;
	uint64_t tsz = umdev_irq_msix_table_size(d->irq), psz = umdev_irq_msix_pba_size(d->irq);

	if (d->cfg.msix_bar >= UMDEV_PCI_NUM_BARS)
		return -EINVAL;
	b = &d->bars[d->cfg.msix_bar].desc;
	if (d->cfg.msix_table_offset % 8 || d->cfg.msix_pba_offset % 8 ||
	    b->num_traps + 2 > UMDEV_PCI_MAX_BAR_PARTS)
		return -EINVAL;
	b->traps[b->num_traps++] = (struct umdev_pci_trap){
		.offset = d->cfg.msix_table_offset, .size = tsz,
		.read = msix_table_read, .write = msix_table_write, .opaque = d };
	b->traps[b->num_traps++] = (struct umdev_pci_trap){
		.offset = d->cfg.msix_pba_offset, .size = psz, .read = msix_pba_read, .opaque = d };
	return 0;
}

static int alloc_bar_mem(umdev_pci_dev *d, unsigned i)
{
	struct bar *b = &d->bars[i];
	char name[48];

	b->fd = -1;
	if (!b->desc.num_shared)
		return 0;
	snprintf(name, sizeof(name), "umdev-%s-bar%u", d->name, i);
	b->fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (b->fd < 0)
		return -errno;
	if (ftruncate(b->fd, (off_t)b->desc.size) < 0)
		return -errno;
	/*
	 * The fd goes to clients, who may mmap it but must not resize it: a
	 * client that truncates it would make our own accesses to the BAR
	 * fault (SIGBUS). Sealed before it ever leaves the process.
	 */
	if (fcntl(b->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	b->mem = mmap(NULL, b->desc.size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	if (b->mem == MAP_FAILED) {
		b->mem = NULL;
		return -errno;
	}
	return 0;
}

static void build_header(umdev_pci_dev *d)
{
	const struct umdev_pci_config *c = &d->cfg;
	uint8_t *v = d->val;
	uint8_t last = 0, *link = &v[UMDEV_PCI_CAP_PTR];

	put16(v + UMDEV_PCI_VENDOR_ID, c->vendor_id);
	put16(v + UMDEV_PCI_DEVICE_ID, c->device_id);
	v[UMDEV_PCI_REVISION_ID] = c->revision;
	v[UMDEV_PCI_CLASS_PROG] = c->class_code & 0xff;
	v[UMDEV_PCI_CLASS_PROG + 1] = (c->class_code >> 8) & 0xff;
	v[UMDEV_PCI_CLASS_PROG + 2] = (c->class_code >> 16) & 0xff;
	put16(v + UMDEV_PCI_SUBSYS_VENDOR_ID, c->subsys_vendor_id);
	put16(v + UMDEV_PCI_SUBSYS_ID, c->subsys_id);
	put16(v + UMDEV_PCI_STATUS, UMDEV_PCI_STATUS_CAP_LIST);
	set_wmask16(d, UMDEV_PCI_COMMAND,
		    UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER | UMDEV_PCI_CMD_PARITY |
			    UMDEV_PCI_CMD_SERR | (c->irq.intx ? UMDEV_PCI_CMD_INTX_DISABLE : 0));
	put16(d->w1c + UMDEV_PCI_STATUS, UMDEV_PCI_STATUS_RW1C_MASK);
	d->wmask[UMDEV_PCI_CACHE_LINE_SIZE] = 0xff;
	d->wmask[UMDEV_PCI_LATENCY_TIMER] = 0xff;
	d->wmask[UMDEV_PCI_INTERRUPT_LINE] = 0xff;
	v[UMDEV_PCI_INTERRUPT_PIN] = c->irq.intx ? 1 : 0;

	for (unsigned i = 0; i < UMDEV_PCI_NUM_BARS; i++) {
		const struct umdev_pci_bar_desc *b = &c->bars[i];
		uint32_t low;

		if (!b->size)
			continue;
		low = (b->flags & UMDEV_PCI_BAR_MEM64 ? UMDEV_PCI_BAR_MEM_TYPE_64 : 0) |
		      (b->flags & UMDEV_PCI_BAR_PREFETCH ? UMDEV_PCI_BAR_MEM_PREFETCH : 0);
		put32(v + UMDEV_PCI_BAR0 + 4 * i, low);
		set_wmask32(d, UMDEV_PCI_BAR0 + 4 * i, (uint32_t)~(b->size - 1) & ~0xfu);
		if (b->flags & UMDEV_PCI_BAR_MEM64)
			set_wmask32(d, UMDEV_PCI_BAR0 + 4 * (i + 1), (uint32_t)(~(b->size - 1) >> 32));
	}

#define LINK(off)                  \
	do {                       \
		*link = (off);     \
		link = &v[(off) + 1]; \
		last = (off);      \
	} while (0)
	if (c->pm) {
		d->pm_cap = CAP_PM;
		LINK(CAP_PM);
		v[CAP_PM] = UMDEV_PCI_CAP_ID_PM;
		put16(v + CAP_PM + UMDEV_PCI_PM_PMC, 0x0003); /* version 3, no PME */
		/* NO_SOFT_RESET: going D3hot->D0 keeps state; we do not model a reset there. */
		put16(v + CAP_PM + UMDEV_PCI_PM_CTRL, UMDEV_PCI_PM_CTRL_NO_SOFT_RESET);
		set_wmask16(d, CAP_PM + UMDEV_PCI_PM_CTRL, UMDEV_PCI_PM_CTRL_STATE_MASK);
	}
	if (c->irq.msi_vectors) {
		unsigned mmc = __builtin_ctz(c->irq.msi_vectors);

		d->msi_cap = CAP_MSI;
		LINK(CAP_MSI);
		v[CAP_MSI] = UMDEV_PCI_CAP_ID_MSI;
		put16(v + CAP_MSI + UMDEV_PCI_MSI_FLAGS,
		      UMDEV_PCI_MSI_FLAGS_64BIT | UMDEV_PCI_MSI_FLAGS_MASKBIT | (mmc << 1));
		set_wmask16(d, CAP_MSI + UMDEV_PCI_MSI_FLAGS,
			    UMDEV_PCI_MSI_FLAGS_ENABLE | UMDEV_PCI_MSI_FLAGS_QSIZE);
		set_wmask32(d, CAP_MSI + UMDEV_PCI_MSI_ADDRESS_LO, 0xfffffffc);
		set_wmask32(d, CAP_MSI + UMDEV_PCI_MSI_ADDRESS_HI, 0xffffffff);
		set_wmask16(d, CAP_MSI + UMDEV_PCI_MSI_DATA_64, 0xffff);
		set_wmask32(d, CAP_MSI + UMDEV_PCI_MSI_MASK_64,
			    c->irq.msi_vectors >= 32 ? 0xffffffff : (1u << c->irq.msi_vectors) - 1);
	}
	if (c->irq.msix_vectors) {
		d->msix_cap = CAP_MSIX;
		LINK(CAP_MSIX);
		v[CAP_MSIX] = UMDEV_PCI_CAP_ID_MSIX;
		put16(v + CAP_MSIX + UMDEV_PCI_MSIX_FLAGS, c->irq.msix_vectors - 1);
		set_wmask16(d, CAP_MSIX + UMDEV_PCI_MSIX_FLAGS,
			    UMDEV_PCI_MSIX_FLAGS_ENABLE | UMDEV_PCI_MSIX_FLAGS_MASKALL);
		put32(v + CAP_MSIX + UMDEV_PCI_MSIX_TABLE, c->msix_table_offset | c->msix_bar);
		put32(v + CAP_MSIX + UMDEV_PCI_MSIX_PBA, c->msix_pba_offset | c->msix_bar);
	}
	if (c->pcie) {
		d->exp_cap = CAP_EXP;
		LINK(CAP_EXP);
		v[CAP_EXP] = UMDEV_PCI_CAP_ID_EXP;
		put16(v + CAP_EXP + UMDEV_PCI_EXP_FLAGS,
		      UMDEV_PCI_EXP_FLAGS_VER2 | UMDEV_PCI_EXP_TYPE_ENDPOINT << 4);
		/* 256-byte max payload supported, function-level reset. */
		put32(v + CAP_EXP + UMDEV_PCI_EXP_DEVCAP, 0x1 | UMDEV_PCI_EXP_DEVCAP_FLR);
		/* Relaxed ordering, no snoop, payload and read request sizes: RW. */
		set_wmask16(d, CAP_EXP + UMDEV_PCI_EXP_DEVCTL, 0x7cff | UMDEV_PCI_EXP_DEVCTL_BCR_FLR);
		put16(v + CAP_EXP + UMDEV_PCI_EXP_DEVCTL, 0x2810); /* defaults: 512B MRRS, RO, NS */
		put16(d->w1c + CAP_EXP + UMDEV_PCI_EXP_DEVSTA, UMDEV_PCI_EXP_DEVSTA_RW1C);
		/* x1 link at 2.5 GT/s, trained. */
		put32(v + CAP_EXP + UMDEV_PCI_EXP_LNKCAP, 0x11 | 1u << 10);
		set_wmask16(d, CAP_EXP + UMDEV_PCI_EXP_LNKCTL, 0x01c3);
		put16(v + CAP_EXP + UMDEV_PCI_EXP_LNKSTA, 0x11);
		put32(v + CAP_EXP + UMDEV_PCI_EXP_LNKCAP2, 0x2);
		put16(v + CAP_EXP + UMDEV_PCI_EXP_LNKCTL2, 0x1);
	}
	{
		/* Vendor capabilities after the layer's own, dword aligned. */
		unsigned off = c->pcie ? CAP_EXP + 0x3c : CAP_EXP;

		for (unsigned i = 0; i < c->num_vcaps; i++) {
			const struct umdev_pci_vcap *vc = &c->vcaps[i];

			d->vcap[i] = off;
			LINK(off);
			memcpy(v + off + 2, vc->data + 2, vc->len - 2u);
			memcpy(d->wmask + off + 2, vc->wmask + 2, vc->len - 2u);
			v[off] = 0x09;
			v[off + 2] = vc->len;
			d->vcap_end = off + vc->len;
			off = (off + vc->len + 3) & ~3u;
		}
	}
#undef LINK
	(void)last;
	*link = 0;
	if (!c->pm && !c->irq.msi_vectors && !c->irq.msix_vectors && !c->pcie && !c->num_vcaps)
		put16(v + UMDEV_PCI_STATUS, 0);
}

umdev_pci_dev *umdev_pci_dev_new(const struct umdev_pci_config *cfg, int *err)
{
	umdev_pci_dev *d;
	int ret;

	if (check_bars(cfg) < 0 || check_vcaps(cfg) < 0) {
		*err = -EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		*err = -ENOMEM;
		return NULL;
	}
	d->cfg = *cfg;
	pthread_mutex_init(&d->dma_lock, NULL);
	snprintf(d->name, sizeof(d->name), "%s", cfg->name ? cfg->name : "pci");
	d->cfg.name = d->name;
	d->cfg_size = cfg->pcie ? UMDEV_PCIE_CFG_SIZE : UMDEV_PCI_CFG_SIZE;
	for (unsigned i = 0; i < UMDEV_PCI_NUM_BARS; i++) {
		d->bars[i].desc = cfg->bars[i];
		d->bars[i].fd = -1;
	}
	d->irq = umdev_irq_new(&cfg->irq, &ret);
	if (!d->irq)
		goto fail;
	if (cfg->irq.msix_vectors) {
		const struct umdev_pci_bar_desc *b;
		uint64_t tsz = umdev_irq_msix_table_size(d->irq);
		uint64_t psz = umdev_irq_msix_pba_size(d->irq);

		ret = -EINVAL;
		if (cfg->msix_bar >= UMDEV_PCI_NUM_BARS)
			goto fail;
		b = &cfg->bars[cfg->msix_bar];
		if (cfg->msix_table_offset + tsz > b->size || cfg->msix_pba_offset + psz > b->size ||
		    ranges_overlap(cfg->msix_table_offset, tsz, cfg->msix_pba_offset, psz))
			goto fail;
		for (unsigned t = 0; t < b->num_traps; t++)
			if (ranges_overlap(cfg->msix_table_offset, tsz, b->traps[t].offset,
					   b->traps[t].size) ||
			    ranges_overlap(cfg->msix_pba_offset, psz, b->traps[t].offset,
					   b->traps[t].size))
				goto fail;
		for (unsigned s = 0; s < b->num_shared; s++)
			if (ranges_overlap(cfg->msix_table_offset, tsz, b->shared[s].offset,
					   b->shared[s].size) ||
			    ranges_overlap(cfg->msix_pba_offset, psz, b->shared[s].offset,
					   b->shared[s].size))
				goto fail;
		ret = add_msix_traps(d);
		if (ret < 0)
			goto fail;
	}
	for (unsigned i = 0; i < UMDEV_PCI_NUM_BARS; i++) {
		ret = alloc_bar_mem(d, i);
		if (ret < 0)
			goto fail;
	}
	build_header(d);
	memcpy(d->init, d->val, sizeof(d->val));
	return d;
fail:
	umdev_pci_dev_free(d);
	*err = ret;
	return NULL;
}

void umdev_pci_dev_free(umdev_pci_dev *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < UMDEV_PCI_NUM_BARS; i++) {
		if (d->bars[i].mem)
			munmap(d->bars[i].mem, d->bars[i].desc.size);
		if (d->bars[i].fd >= 0)
			close(d->bars[i].fd);
	}
	umdev_irq_free(d->irq);
	pthread_mutex_destroy(&d->dma_lock);
	free(d);
}

const char *umdev_pci_name(const umdev_pci_dev *d)
{
	return d->name;
}

void *umdev_pci_bar_mem(umdev_pci_dev *d, unsigned bar)
{
	return bar < UMDEV_PCI_NUM_BARS ? d->bars[bar].mem : NULL;
}

umdev_irq *umdev_pci_irq(umdev_pci_dev *d)
{
	return d->irq;
}

unsigned umdev_pci_vcap_offset(const umdev_pci_dev *d, unsigned i)
{
	return i < d->cfg.num_vcaps ? d->vcap[i] : 0;
}

const uint8_t *umdev_pci_cfg_bytes(const umdev_pci_dev *d)
{
	return d->val;
}

uint16_t umdev_pci_command(const umdev_pci_dev *d)
{
	return atomic_load(&d->command);
}

uint32_t umdev_pci_cfg_size(const umdev_pci_dev *d)
{
	return d->cfg_size;
}

uint64_t umdev_pci_bar_size(const umdev_pci_dev *d, unsigned bar)
{
	return bar < UMDEV_PCI_NUM_BARS ? d->bars[bar].desc.size : 0;
}

unsigned umdev_pci_bar_shared(const umdev_pci_dev *d, unsigned bar, struct umdev_pci_shared *out,
			      unsigned max, int *fd)
{
	unsigned n = 0;

	*fd = -1;
	if (bar >= UMDEV_PCI_NUM_BARS)
		return 0;
	*fd = d->bars[bar].fd;
	for (unsigned s = 0; s < d->bars[bar].desc.num_shared && n < max; s++)
		out[n++] = d->bars[bar].desc.shared[s];
	return n;
}

/* ---- config space ---- */

static bool touches(uint64_t off, size_t len, unsigned reg, unsigned reglen)
{
	return ranges_overlap(off, len, reg, reglen);
}

static void after_write(umdev_pci_dev *d, uint64_t off, size_t len, uint16_t old_cmd)
{
	if (touches(off, len, UMDEV_PCI_COMMAND, 2)) {
		uint16_t cmd = get16(d->val + UMDEV_PCI_COMMAND);

		atomic_store(&d->command, cmd);
		if (d->cfg.irq.intx)
			umdev_irq_intx_disable(d->irq, cmd & UMDEV_PCI_CMD_INTX_DISABLE);
		if (cmd != old_cmd && d->cfg.ops && d->cfg.ops->command)
			d->cfg.ops->command(d->cfg.opaque, old_cmd, cmd);
	}
	if (d->msix_cap && touches(off, len, d->msix_cap + UMDEV_PCI_MSIX_FLAGS, 2)) {
		uint16_t f = get16(d->val + d->msix_cap + UMDEV_PCI_MSIX_FLAGS);

		umdev_irq_msix_control(d->irq, f & UMDEV_PCI_MSIX_FLAGS_ENABLE,
				       f & UMDEV_PCI_MSIX_FLAGS_MASKALL);
	}
	if (d->msi_cap && touches(off, len, d->msi_cap + UMDEV_PCI_MSI_MASK_64, 4))
		umdev_irq_msi_mask(d->irq, get32(d->val + d->msi_cap + UMDEV_PCI_MSI_MASK_64));
	if (d->exp_cap && touches(off, len, d->exp_cap + UMDEV_PCI_EXP_DEVCTL, 2)) {
		uint16_t ctl = get16(d->val + d->exp_cap + UMDEV_PCI_EXP_DEVCTL);

		if (ctl & UMDEV_PCI_EXP_DEVCTL_BCR_FLR) {
			/* The FLR bit always reads 0; writing 1 resets the function. */
			umdev_info("%s: function-level reset", d->name);
			umdev_pci_reset(d);
		}
	}
}

static bool vcap_touched(const umdev_pci_dev *d, uint64_t off, size_t len)
{
	return d->vcap_end && d->cfg.ops && d->cfg.ops->vcap_access &&
	       ranges_overlap(off, len, d->vcap[0], d->vcap_end - d->vcap[0]);
}

int umdev_pci_cfg_access(umdev_pci_dev *d, uint64_t off, void *buf, size_t len, bool write)
{
	uint8_t *b = buf;
	uint16_t old_cmd;

	if (off > d->cfg_size || len > d->cfg_size - off)
		return -EINVAL;
	if (!write) {
		memcpy(buf, d->val + off, len);
		/* Dynamic bits, computed when read. */
		for (size_t i = 0; i < len; i++) {
			uint64_t o = off + i;

			if (o == UMDEV_PCI_STATUS && d->cfg.irq.intx &&
			    umdev_irq_intx_asserted(d->irq))
				b[i] |= UMDEV_PCI_STATUS_INTERRUPT;
			if (d->msi_cap && o >= (uint64_t)d->msi_cap + UMDEV_PCI_MSI_PENDING_64 &&
			    o < d->msi_cap + UMDEV_PCI_MSI_PENDING_64 + 4u)
				b[i] = umdev_irq_msi_pending_bits(d->irq) >>
				       (8 * (o - d->msi_cap - UMDEV_PCI_MSI_PENDING_64));
		}
		if (vcap_touched(d, off, len))
			d->cfg.ops->vcap_access(d->cfg.opaque, off, buf, len, false);
		return 0;
	}
	old_cmd = get16(d->val + UMDEV_PCI_COMMAND);
	for (size_t i = 0; i < len; i++) {
		uint64_t o = off + i;
		uint8_t w = d->wmask[o], c = d->w1c[o];

		d->val[o] = (d->val[o] & ~w) | (b[i] & w);
		d->val[o] &= ~(b[i] & c);
	}
	after_write(d, off, len, old_cmd);
	if (vcap_touched(d, off, len))
		d->cfg.ops->vcap_access(d->cfg.opaque, off, buf, len, true);
	return 0;
}

/* ---- BARs ---- */

static int msix_table_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	umdev_pci_dev *d = opaque;

	return umdev_irq_msix_table_access(d->irq, off - d->cfg.msix_table_offset, buf, len, false);
}

static int msix_table_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	umdev_pci_dev *d = opaque;

	return umdev_irq_msix_table_access(d->irq, off - d->cfg.msix_table_offset, (void *)buf,
					   len, true);
}

static int msix_pba_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	umdev_pci_dev *d = opaque;

	return umdev_irq_msix_pba_read(d->irq, off - d->cfg.msix_pba_offset, buf, len);
}

int umdev_pci_bar_access(umdev_pci_dev *d, unsigned bar, uint64_t off, void *buf, size_t len,
			 bool write)
{
	const struct bar *b;

	if (bar >= UMDEV_PCI_NUM_BARS)
		return -EINVAL;
	b = &d->bars[bar];
	if (!b->desc.size || !len || off > b->desc.size || len > b->desc.size - off)
		return -EINVAL;
	if (!(umdev_pci_command(d) & UMDEV_PCI_CMD_MEMORY))
		return -EIO;
	for (unsigned t = 0; t < b->desc.num_traps; t++) {
		const struct umdev_pci_trap *tr = &b->desc.traps[t];

		if (!ranges_overlap(off, len, tr->offset, tr->size))
			continue;
		if (off < tr->offset || off + len > tr->offset + tr->size)
			return -EINVAL; /* straddles a part boundary */
		if (write)
			return tr->write ? tr->write(tr->opaque, off, buf, len) : 0;
		if (!tr->read) {
			memset(buf, 0, len);
			return 0;
		}
		return tr->read(tr->opaque, off, buf, len);
	}
	for (unsigned s = 0; s < b->desc.num_shared; s++) {
		const struct umdev_pci_shared *sh = &b->desc.shared[s];

		if (!ranges_overlap(off, len, sh->offset, sh->size))
			continue;
		if (off < sh->offset || off + len > sh->offset + sh->size)
			return -EINVAL;
		if (write)
			memcpy((uint8_t *)b->mem + off, buf, len);
		else
			memcpy(buf, (uint8_t *)b->mem + off, len);
		return 0;
	}
	if (!write)
		memset(buf, 0, len);
	return 0;
}

void umdev_pci_reset(umdev_pci_dev *d)
{
	if (d->cfg.ops && d->cfg.ops->reset)
		d->cfg.ops->reset(d->cfg.opaque);
	memcpy(d->val, d->init, sizeof(d->val));
	atomic_store(&d->command, 0);
	umdev_irq_reset(d->irq);
}

/* ---- DMA ---- */

void umdev_pci_attach(umdev_pci_dev *d, const struct umdev_pci_dma_ops *ops, void *opaque)
{
	pthread_mutex_lock(&d->dma_lock);
	d->dma = ops;
	d->dma_opaque = opaque;
	pthread_mutex_unlock(&d->dma_lock);
}

void umdev_pci_dma_unmap(umdev_pci_dev *d, uint64_t iova, uint64_t len)
{
	if (d->cfg.ops && d->cfg.ops->dma_unmap)
		d->cfg.ops->dma_unmap(d->cfg.opaque, iova, len);
}

void umdev_pci_dma_unmapped(umdev_pci_dev *d, uint64_t iova, uint64_t len)
{
	if (d->cfg.ops && d->cfg.ops->dma_unmapped)
		d->cfg.ops->dma_unmapped(d->cfg.opaque, iova, len);
}

void umdev_pci_dma_mapped(umdev_pci_dev *d, uint64_t iova, uint64_t len)
{
	if (d->cfg.ops && d->cfg.ops->dma_mapped)
		d->cfg.ops->dma_mapped(d->cfg.opaque, iova, len);
}

umdev_as_map *umdev_pci_dma_map(umdev_pci_dev *d, int *err)
{
	umdev_as_map *m = NULL;

	if (!(umdev_pci_command(d) & UMDEV_PCI_CMD_MASTER)) {
		*err = -EPERM;
		return NULL;
	}

	pthread_mutex_lock(&d->dma_lock);
	if (d->dma)
		m = d->dma->get_map(d->dma_opaque);
	else
		*err = -ENOTCONN;
	pthread_mutex_unlock(&d->dma_lock);
	return m;
}

static int dma_rw(umdev_pci_dev *d, uint64_t iova, void *buf, size_t len, bool write)
{
	umdev_as_map *m;
	int ret, err = 0;

	if (!len)
		return 0;
	m = umdev_pci_dma_map(d, &err);
	if (!m)
		return err;
	ret = write ? umdev_as_map_write(m, iova, buf, len) : umdev_as_map_read(m, iova, buf, len);
	umdev_as_map_put(m);
	if (ret == 0 || !d->dma->read)
		return ret;
	/* Not (wholly) fd-backed: the client's memory through messages. */
	return write ? d->dma->write(d->dma_opaque, iova, buf, len) :
		       d->dma->read(d->dma_opaque, iova, buf, len);
}

int umdev_pci_defer(umdev_pci_dev *d, void (*fn)(void *arg), void *arg)
{
	if (!d->dma || !d->dma->defer)
		return -ENOTCONN;
	return d->dma->defer(d->dma_opaque, fn, arg);
}

int umdev_pci_dma_read(umdev_pci_dev *d, uint64_t iova, void *buf, size_t len)
{
	return dma_rw(d, iova, buf, len, false);
}

int umdev_pci_dma_write(umdev_pci_dev *d, uint64_t iova, const void *buf, size_t len)
{
	return dma_rw(d, iova, (void *)buf, len, true);
}
