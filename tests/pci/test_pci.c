/* SPDX-License-Identifier: BSD-3-Clause */
/* PCI model: config space bit rules, BAR sizing, capabilities, BAR parts, DMA gating. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "umdev/pci.h"
#include "umdev/proto/pci_regs.h"

struct fake {
	uint32_t reg[4];
	unsigned resets;
	uint64_t unmap_iova, unmap_len;
	uint16_t last_cmd;
};

static int trap_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	struct fake *f = opaque;

	if (len != 4 || off % 4)
		return -EINVAL;
	memcpy(buf, &f->reg[off / 4], 4);
	return 0;
}

static int trap_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	struct fake *f = opaque;

	if (len != 4 || off % 4)
		return -EINVAL;
	memcpy(&f->reg[off / 4], buf, 4);
	return 0;
}

static void f_reset(void *opaque)
{
	((struct fake *)opaque)->resets++;
}

static void f_unmap(void *opaque, uint64_t iova, uint64_t len)
{
	struct fake *f = opaque;

	f->unmap_iova = iova;
	f->unmap_len = len;
}

static void f_cmd(void *opaque, uint16_t o, uint16_t n)
{
	((struct fake *)opaque)->last_cmd = n;
}

static const struct umdev_pci_dev_ops fops = { .reset = f_reset, .dma_unmap = f_unmap,
					       .command = f_cmd };

static struct fake fk;

static umdev_pci_dev *mk(void)
{
	struct umdev_pci_config c = {
		.name = "t0", .vendor_id = 0x1234, .device_id = 0x5678, .class_code = 0x010802,
		.irq = { .intx = true, .msi_vectors = 1, .msix_vectors = 4 },
		.msix_bar = 2, .msix_table_offset = 0, .msix_pba_offset = 0x800,
		.pm = true, .pcie = true, .ops = &fops, .opaque = &fk,
	};
	int err = 0;
	umdev_pci_dev *d;

	memset(&fk, 0, sizeof(fk));
	c.bars[0].size = 0x4000;
	c.bars[0].flags = UMDEV_PCI_BAR_MEM64;
	c.bars[0].traps[0] = (struct umdev_pci_trap){ 0, 16, trap_read, trap_write, &fk };
	c.bars[0].num_traps = 1;
	c.bars[0].shared[0] = (struct umdev_pci_shared){ 0x1000, 0x1000 };
	c.bars[0].num_shared = 1;
	c.bars[2].size = 0x1000;
	d = umdev_pci_dev_new(&c, &err);
	assert_non_null(d);
	return d;
}

static uint32_t rd(umdev_pci_dev *d, unsigned off, unsigned len)
{
	uint32_t v = 0;

	assert_int_equal(umdev_pci_cfg_access(d, off, &v, len, false), 0);
	return v;
}

static void wr(umdev_pci_dev *d, unsigned off, uint32_t v, unsigned len)
{
	assert_int_equal(umdev_pci_cfg_access(d, off, &v, len, true), 0);
}

static void test_header_ro(void **state)
{
	umdev_pci_dev *d = mk();

	assert_int_equal(umdev_pci_cfg_size(d), 4096);
	assert_int_equal(rd(d, 0, 4), 0x56781234);
	wr(d, 0, 0xffffffff, 4);
	assert_int_equal(rd(d, 0, 4), 0x56781234); /* IDs are read-only */
	assert_int_equal(rd(d, UMDEV_PCI_CLASS_PROG, 4) & 0xffffff, 0x010802);
	assert_int_equal(rd(d, UMDEV_PCI_INTERRUPT_PIN, 1), 1);
	wr(d, UMDEV_PCI_INTERRUPT_LINE, 0x0b, 1);
	assert_int_equal(rd(d, UMDEV_PCI_INTERRUPT_LINE, 1), 0x0b);
	/* Command: only implemented bits stick; IO space is not. */
	wr(d, UMDEV_PCI_COMMAND, 0xffff, 2);
	assert_int_equal(rd(d, UMDEV_PCI_COMMAND, 2),
			 UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER | UMDEV_PCI_CMD_PARITY |
				 UMDEV_PCI_CMD_SERR | UMDEV_PCI_CMD_INTX_DISABLE);
	assert_int_equal(fk.last_cmd, rd(d, UMDEV_PCI_COMMAND, 2));
	assert_true(umdev_pci_command(d) & UMDEV_PCI_CMD_MASTER);
	/* Status: capability bit is RO, error bits are RW1C. */
	assert_true(rd(d, UMDEV_PCI_STATUS, 2) & UMDEV_PCI_STATUS_CAP_LIST);
	wr(d, UMDEV_PCI_STATUS, 0xffff, 2);
	assert_true(rd(d, UMDEV_PCI_STATUS, 2) & UMDEV_PCI_STATUS_CAP_LIST);
	/* out of range */
	uint32_t v;
	assert_int_equal(umdev_pci_cfg_access(d, 4094, &v, 4, false), -EINVAL);
	umdev_pci_dev_free(d);
}

static void test_bar_sizing(void **state)
{
	umdev_pci_dev *d = mk();

	assert_int_equal(rd(d, UMDEV_PCI_BAR0, 4), UMDEV_PCI_BAR_MEM_TYPE_64);
	wr(d, UMDEV_PCI_BAR0, 0xffffffff, 4);
	wr(d, UMDEV_PCI_BAR0 + 4, 0xffffffff, 4);
	assert_int_equal(rd(d, UMDEV_PCI_BAR0, 4), 0xffffc000 | UMDEV_PCI_BAR_MEM_TYPE_64);
	assert_int_equal(rd(d, UMDEV_PCI_BAR0 + 4, 4), 0xffffffff);
	wr(d, UMDEV_PCI_BAR0, 0xfe012345, 4);
	assert_int_equal(rd(d, UMDEV_PCI_BAR0, 4), 0xfe010000 | UMDEV_PCI_BAR_MEM_TYPE_64);
	/* 32-bit BAR2, 4 KiB */
	wr(d, UMDEV_PCI_BAR0 + 8, 0xffffffff, 4);
	assert_int_equal(rd(d, UMDEV_PCI_BAR0 + 8, 4), 0xfffff000);
	/* unimplemented BARs stay 0 */
	wr(d, UMDEV_PCI_BAR0 + 12, 0xffffffff, 4);
	assert_int_equal(rd(d, UMDEV_PCI_BAR0 + 12, 4), 0);
	assert_int_equal(umdev_pci_bar_size(d, 0), 0x4000);
	assert_int_equal(umdev_pci_bar_size(d, 1), 0);
	umdev_pci_dev_free(d);
}

static void test_caps(void **state)
{
	umdev_pci_dev *d = mk();
	unsigned seen = 0, ptr = rd(d, UMDEV_PCI_CAP_PTR, 1), msix = 0, msi = 0;

	for (unsigned n = 0; ptr && n < 16; n++) {
		unsigned id = rd(d, ptr, 1);

		seen |= 1u << (id & 31);
		if (id == UMDEV_PCI_CAP_ID_MSIX)
			msix = ptr;
		if (id == UMDEV_PCI_CAP_ID_MSI)
			msi = ptr;
		ptr = rd(d, ptr + 1, 1);
	}
	assert_true(seen & (1u << UMDEV_PCI_CAP_ID_PM));
	assert_true(seen & (1u << UMDEV_PCI_CAP_ID_MSI));
	assert_true(seen & (1u << UMDEV_PCI_CAP_ID_MSIX));
	assert_true(seen & (1u << (UMDEV_PCI_CAP_ID_EXP & 31)));
	/* MSI-X: table size RO, enable + mask RW, BIR/offsets right */
	assert_int_equal(rd(d, msix + 2, 2), 3);
	wr(d, msix + 2, 0xffff, 2);
	assert_int_equal(rd(d, msix + 2, 2),
			 3 | UMDEV_PCI_MSIX_FLAGS_ENABLE | UMDEV_PCI_MSIX_FLAGS_MASKALL);
	assert_int_equal(rd(d, msix + 4, 4), 2);
	assert_int_equal(rd(d, msix + 8, 4), 0x800 | 2);
	/* MSI: 64-bit and maskable are RO; a one-vector device has MME stuck at the bits we allow */
	assert_true(rd(d, msi + 2, 2) & UMDEV_PCI_MSI_FLAGS_64BIT);
	wr(d, msi + UMDEV_PCI_MSI_MASK_64, 0xffffffff, 4);
	assert_int_equal(rd(d, msi + UMDEV_PCI_MSI_MASK_64, 4), 1);
	umdev_pci_dev_free(d);
}

static void test_bar_parts(void **state)
{
	umdev_pci_dev *d = mk();
	uint32_t v = 0xabcd1234, r = 0;
	struct umdev_pci_shared sh[4];
	int fd;

	/* Memory space disabled: refused like kernel vfio-pci. */
	assert_int_equal(umdev_pci_bar_access(d, 0, 4, &v, 4, true), -EIO);
	wr(d, UMDEV_PCI_COMMAND, UMDEV_PCI_CMD_MEMORY, 2);
	assert_int_equal(umdev_pci_bar_access(d, 0, 4, &v, 4, true), 0);
	assert_int_equal(fk.reg[1], 0xabcd1234);
	assert_int_equal(umdev_pci_bar_access(d, 0, 4, &r, 4, false), 0);
	assert_int_equal(r, 0xabcd1234);
	/* straddling the trap's end, outside the BAR */
	assert_int_equal(umdev_pci_bar_access(d, 0, 14, &r, 4, false), -EINVAL);
	assert_int_equal(umdev_pci_bar_access(d, 0, 0x4000, &r, 4, false), -EINVAL);
	assert_int_equal(umdev_pci_bar_access(d, 1, 0, &r, 4, false), -EINVAL);
	/* shared memory is the same bytes as the fd the client would mmap */
	assert_int_equal(umdev_pci_bar_shared(d, 0, sh, 4, &fd), 1);
	assert_int_equal(sh[0].offset, 0x1000);
	assert_true(fd >= 0);
	assert_int_equal(umdev_pci_bar_access(d, 0, 0x1008, &v, 4, true), 0);
	uint8_t *m = mmap(NULL, 0x4000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	assert_memory_equal(m + 0x1008, &v, 4);
	assert_memory_equal((uint8_t *)umdev_pci_bar_mem(d, 0) + 0x1008, &v, 4);
	munmap(m, 0x4000);
	/* the fd is sealed against resizing: a client cannot make our accesses fault */
	assert_int_equal(fcntl(fd, F_GET_SEALS),
			 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	assert_int_equal(ftruncate(fd, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(fd, 0x8000), -1);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	assert_int_equal(umdev_pci_bar_access(d, 0, 0x1008, &r, 4, false), 0);
	assert_int_equal(r, v);
	/* a hole reads zero, writes are dropped */
	assert_int_equal(umdev_pci_bar_access(d, 0, 0x2000, &v, 4, true), 0);
	assert_int_equal(umdev_pci_bar_access(d, 0, 0x2000, &r, 4, false), 0);
	assert_int_equal(r, 0);
	/* MSI-X table through BAR2 */
	v = 0;
	assert_int_equal(umdev_pci_bar_access(d, 2, 12, &r, 4, false), 0);
	assert_int_equal(r, 1);
	uint64_t pba = ~0ull;
	assert_int_equal(umdev_pci_bar_access(d, 2, 0x800, &pba, 8, false), 0);
	assert_int_equal(pba, 0);
	umdev_pci_dev_free(d);
}

static umdev_as *g_as;

static umdev_as_map *get_map(void *opaque)
{
	return umdev_as_get_map(g_as);
}

static const struct umdev_pci_dma_ops dops = { .get_map = get_map };

static void test_dma_gating_and_reset(void **state)
{
	umdev_pci_dev *d = mk();
	int err = 0, fd = memfd_create("t", MFD_CLOEXEC);
	uint8_t buf[8] = "abcdefg", out[8] = { 0 };

	assert_int_equal(umdev_pci_dma_read(d, 0, out, 8), -EPERM);
	/* no transport: deferred work is the device's to run */
	assert_int_equal(umdev_pci_defer(d, f_reset, &fk), -ENOTCONN);
	wr(d, UMDEV_PCI_COMMAND, UMDEV_PCI_CMD_MASTER, 2);
	assert_int_equal(umdev_pci_dma_read(d, 0, out, 8), -ENOTCONN);
	g_as = umdev_as_new(&err);
	assert_non_null(g_as);
	assert_int_equal(ftruncate(fd, 8192), 0);
	struct umdev_mem_region_desc rd_ = { .guest_addr = 0x10000, .size = 8192, .fd = fd,
					     .prot = UMDEV_MEM_READ | UMDEV_MEM_WRITE };
	assert_int_equal(umdev_as_add_region(g_as, &rd_), 0);
	umdev_pci_attach(d, &dops, NULL);
	assert_int_equal(umdev_pci_dma_write(d, 0x10010, buf, 8), 0);
	assert_int_equal(umdev_pci_dma_read(d, 0x10010, out, 8), 0);
	assert_memory_equal(out, buf, 8);
	assert_int_equal(umdev_pci_dma_read(d, 0x20000, out, 8), -EFAULT);
	umdev_pci_dma_unmap(d, 0x10000, 8192);
	assert_int_equal(fk.unmap_iova, 0x10000);
	/* FLR through the PCIe capability resets the device and config space */
	unsigned exp = 0x70;
	assert_int_equal(rd(d, exp, 1), UMDEV_PCI_CAP_ID_EXP);
	wr(d, exp + UMDEV_PCI_EXP_DEVCTL, UMDEV_PCI_EXP_DEVCTL_BCR_FLR, 2);
	assert_int_equal(fk.resets, 1);
	assert_int_equal(rd(d, UMDEV_PCI_COMMAND, 2), 0);
	assert_int_equal(umdev_pci_dma_read(d, 0x10010, out, 8), -EPERM);
	umdev_pci_attach(d, NULL, NULL);
	umdev_as_free(g_as);
	umdev_pci_dev_free(d);
}

static void test_bad_configs(void **state)
{
	struct umdev_pci_config c = { .name = "bad" };
	int err = 0;

	c.bars[0].size = 0x3000; /* not a power of two */
	assert_null(umdev_pci_dev_new(&c, &err));
	assert_int_equal(err, -EINVAL);
	c.bars[0].size = 0x2000;
	c.bars[0].traps[0] = (struct umdev_pci_trap){ .offset = 0, .size = 0x1800 };
	c.bars[0].num_traps = 1;
	c.bars[0].shared[0] = (struct umdev_pci_shared){ 0x1000, 0x1000 }; /* overlaps */
	c.bars[0].num_shared = 1;
	assert_null(umdev_pci_dev_new(&c, &err));
	c.bars[0].traps[0].size = 0x1000;
	c.irq.msix_vectors = 4;
	c.msix_bar = 0;
	c.msix_table_offset = 0x1000; /* on the shared page */
	c.msix_pba_offset = 0x1800;
	assert_null(umdev_pci_dev_new(&c, &err));
	c.msix_bar = 1; /* BAR without size */
	assert_null(umdev_pci_dev_new(&c, &err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_ro),   cmocka_unit_test(test_bar_sizing),
		cmocka_unit_test(test_caps),	    cmocka_unit_test(test_bar_parts),
		cmocka_unit_test(test_dma_gating_and_reset), cmocka_unit_test(test_bad_configs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
