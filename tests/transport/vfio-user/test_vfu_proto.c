/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio-user protocol tests: our client (src/client/vfio_user_client.c)
 * against a real umdevd serving the pci-sample device, over a real socket.
 * Every command of the protocol, DMA with and without fds, MSI-X through
 * eventfds with masking, reconnect, and hostile messages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/vfio_user_client.h"
#include "dev/sample/sample.h"
#include "proto_common.h"
#include "umdev/proto/pci_regs.h"

#define GUEST_IOVA 0x100000000ull
#define GUEST_SIZE (1u << 20)
#define NOFD_IOVA 0x200000000ull
#define ALL_RW (VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE)

static struct proto_srv srv;

static int setup(void **state)
{
	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--device", "pci-sample,id=sample0,socket=@SOCK@", NULL);
	return 0;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	assert_true(alive);
	return 0;
}

static void connect_ok(struct umdev_vfuc *c)
{
	assert_int_equal(umdev_vfuc_connect(c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vfuc_version(c, NULL), 0);
}

static uint32_t reg_rd(struct umdev_vfuc *c, uint32_t off)
{
	uint32_t v = 0xdeadbeef;

	assert_int_equal(umdev_vfuc_region_read(c, 0, off, &v, 4), 0);
	return v;
}

static void reg_wr(struct umdev_vfuc *c, uint32_t off, uint32_t v)
{
	assert_int_equal(umdev_vfuc_region_write(c, 0, off, &v, 4), 0);
}

static void enable(struct umdev_vfuc *c, uint16_t cmd)
{
	assert_int_equal(umdev_vfuc_cfg_write(c, UMDEV_PCI_COMMAND, cmd, 2), 0);
}

static uint64_t fired(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v = 0;

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	assert_int_equal(read(fd, &v, 8), 8);
	return v;
}

static void setup_msix(struct umdev_vfuc *c, int *efd)
{
	int fds[SAMPLE_MSIX_VECTORS];

	for (int i = 0; i < SAMPLE_MSIX_VECTORS; i++)
		efd[i] = fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_int_equal(umdev_vfuc_set_irqs(c, VFIO_PCI_MSIX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, SAMPLE_MSIX_VECTORS, NULL, fds, SAMPLE_MSIX_VECTORS),
			 0);
}

static void run_cmd(struct umdev_vfuc *c, uint32_t cmd, uint64_t addr, uint32_t len)
{
	reg_wr(c, SAMPLE_REG_STATUS, ~0u);
	reg_wr(c, SAMPLE_REG_DMA_LO, (uint32_t)addr);
	reg_wr(c, SAMPLE_REG_DMA_HI, (uint32_t)(addr >> 32));
	reg_wr(c, SAMPLE_REG_DMA_LEN, len);
	reg_wr(c, SAMPLE_REG_CMD, cmd);
}

static void test_negotiate_and_info(void **state)
{
	struct umdev_vfuc c;
	struct vfio_user_device_info di;
	uint32_t flags, count;

	connect_ok(&c);
	assert_int_equal(c.major, 0);
	assert_int_equal(c.minor, 1);
	assert_int_equal(c.server_max_xfer, 1u << 20);
	assert_int_equal(c.server_max_fds, 16);
	assert_int_equal(c.server_pgsizes, 4096);
	assert_non_null(strstr(c.server_caps, "\"write_multiple\":true"));
	/* VERSION twice is refused, the connection stays */
	assert_int_equal(umdev_vfuc_version(&c, NULL), -EINVAL);
	assert_int_equal(umdev_vfuc_device_info(&c, &di), 0);
	assert_int_equal(di.argsz, 16);
	assert_int_equal(di.flags, VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI);
	assert_int_equal(di.num_regions, 9);
	assert_int_equal(di.num_irqs, 5);
	assert_int_equal(umdev_vfuc_irq_info(&c, VFIO_PCI_INTX_IRQ_INDEX, &flags, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(flags, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
					VFIO_IRQ_INFO_AUTOMASKED);
	assert_int_equal(umdev_vfuc_irq_info(&c, VFIO_PCI_MSIX_IRQ_INDEX, &flags, &count), 0);
	assert_int_equal(count, SAMPLE_MSIX_VECTORS);
	assert_int_equal(umdev_vfuc_irq_info(&c, VFIO_PCI_ERR_IRQ_INDEX, &flags, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(umdev_vfuc_irq_info(&c, 5, &flags, &count), -EINVAL);
	umdev_vfuc_close(&c);
}

static void test_regions(void **state)
{
	struct umdev_vfuc c;
	uint8_t buf[256];
	struct vfio_user_region_info *ri = (void *)buf;
	struct vfio_region_info_cap_sparse_mmap *cap;
	int fd;

	connect_ok(&c);
	assert_int_equal(umdev_vfuc_region_info(&c, 0, buf, sizeof(buf), &fd), 0);
	assert_int_equal(ri->size, SAMPLE_BAR0_SIZE);
	assert_true(ri->flags & VFIO_REGION_INFO_FLAG_MMAP);
	assert_true(ri->flags & VFIO_REGION_INFO_FLAG_CAPS);
	assert_true(fd >= 0);
	assert_int_equal(ri->cap_offset, sizeof(*ri));
	cap = (void *)(buf + ri->cap_offset);
	assert_int_equal(cap->header.id, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
	assert_int_equal(cap->nr_areas, 2);
	assert_int_equal(cap->areas[0].offset, SAMPLE_DATA_OFF);
	assert_int_equal(cap->areas[0].size, SAMPLE_DATA_SIZE);
	assert_int_equal(ri->argsz, sizeof(*ri) + sizeof(*cap) + 2 * 16);
	/* The mmapped data page and REGION_READ see the same bytes. */
	uint8_t *m = mmap(NULL, SAMPLE_DATA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			  (off_t)(ri->offset + cap->areas[0].offset));
	assert_true(m != MAP_FAILED);
	close(fd);
	enable(&c, UMDEV_PCI_CMD_MEMORY);
	memcpy(m + 64, "shared-bar-bytes", 16);
	uint8_t rb[16];
	assert_int_equal(umdev_vfuc_region_read(&c, 0, SAMPLE_DATA_OFF + 64, rb, 16), 0);
	assert_memory_equal(rb, "shared-bar-bytes", 16);
	assert_int_equal(umdev_vfuc_region_write(&c, 0, SAMPLE_DATA_OFF + 128, "written-by-msg", 14),
			 0);
	assert_memory_equal(m + 128, "written-by-msg", 14);
	munmap(m, SAMPLE_DATA_SIZE);
	/* argsz too small: the needed size comes back, without capabilities */
	assert_int_equal(umdev_vfuc_region_info(&c, 0, buf, sizeof(*ri), &fd), 0);
	assert_int_equal(ri->argsz, sizeof(*ri) + sizeof(*cap) + 2 * 16);
	assert_int_equal(fd, -1);
	/* QEMU 10.2's client rejects CAPS with cap_offset < sizeof(info) here. */
	assert_true(!(ri->flags & VFIO_REGION_INFO_FLAG_CAPS) ||
		    (ri->cap_offset >= sizeof(*ri) && ri->cap_offset <= ri->argsz));
	/* config space, an absent BAR, the MSI-X BAR (trapped only) */
	assert_int_equal(umdev_vfuc_region_info(&c, VFIO_PCI_CONFIG_REGION_INDEX, buf, sizeof(buf),
						&fd),
			 0);
	assert_int_equal(ri->size, 4096);
	assert_int_equal(umdev_vfuc_region_info(&c, 1, buf, sizeof(buf), &fd), 0);
	assert_int_equal(ri->size, 0);
	assert_int_equal(umdev_vfuc_region_info(&c, 2, buf, sizeof(buf), &fd), 0);
	assert_int_equal(ri->size, 4096);
	assert_false(ri->flags & VFIO_REGION_INFO_FLAG_MMAP);
	assert_int_equal(umdev_vfuc_region_info(&c, 9, buf, sizeof(buf), &fd), -EINVAL);
	/* GET_REGION_IO_FDS: no ioeventfds offered */
	struct vfio_user_region_io_fds_request q = { .argsz = 16, .index = 0 }, r;
	size_t rl = 0;
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DEVICE_GET_REGION_IO_FDS, 0, &q, 16, NULL,
					    0, &r, sizeof(r), &rl, NULL, NULL),
			 0);
	assert_int_equal(r.count, 0);
	umdev_vfuc_close(&c);
}

static void test_config_space(void **state)
{
	struct umdev_vfuc c;
	uint32_t id = 0, reg;

	connect_ok(&c);
	assert_int_equal(umdev_vfuc_cfg_read(&c, 0, &id, 4), 0);
	assert_int_equal(id, SAMPLE_DEVICE_ID << 16 | SAMPLE_VENDOR_ID);
	assert_int_equal(umdev_vfuc_bar_size(&c, 0), SAMPLE_BAR0_SIZE);
	assert_int_equal(umdev_vfuc_bar_size(&c, 2), 4096);
	assert_int_equal(umdev_vfuc_bar_size(&c, 4), 0);
	assert_true(umdev_vfuc_find_cap(&c, UMDEV_PCI_CAP_ID_PM));
	assert_true(umdev_vfuc_find_cap(&c, UMDEV_PCI_CAP_ID_MSI));
	assert_true(umdev_vfuc_find_cap(&c, UMDEV_PCI_CAP_ID_MSIX));
	assert_true(umdev_vfuc_find_cap(&c, UMDEV_PCI_CAP_ID_EXP));
	/* vendor ID is read-only */
	assert_int_equal(umdev_vfuc_cfg_write(&c, 0, 0xffff, 2), 0);
	assert_int_equal(umdev_vfuc_cfg_read(&c, 0, &id, 4), 0);
	assert_int_equal(id & 0xffff, SAMPLE_VENDOR_ID);
	/* memory decoding off: BAR access refused with EIO */
	enable(&c, 0);
	assert_int_equal(umdev_vfuc_region_read(&c, 0, 0, &reg, 4), -EIO);
	enable(&c, UMDEV_PCI_CMD_MEMORY);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_ID), SAMPLE_ID_VALUE);
	/* access beyond config space */
	assert_int_equal(umdev_vfuc_cfg_read(&c, 4094, &reg, 4), -EINVAL);
	/*
	 * A new client finds the device as a freshly opened kernel VFIO device
	 * is: reset (bus mastering off), memory space enabled, even though the
	 * last one left memory space off and bus mastering on.
	 */
	enable(&c, UMDEV_PCI_CMD_MASTER);
	assert_int_equal(umdev_vfuc_region_read(&c, 0, 0, &reg, 4), -EIO);
	umdev_vfuc_close(&c);
	connect_ok(&c);
	uint16_t cmd = 0;
	assert_int_equal(umdev_vfuc_cfg_read(&c, UMDEV_PCI_COMMAND, &cmd, 2), 0);
	assert_int_equal(cmd, UMDEV_PCI_CMD_MEMORY);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_ID), SAMPLE_ID_VALUE);
	umdev_vfuc_close(&c);
}

static void test_dma_fd_and_msix(void **state)
{
	struct umdev_vfuc c;
	uint8_t *data, *g;
	int efd[SAMPLE_MSIX_VECTORS], bfd;
	uint8_t buf[256];

	connect_ok(&c);
	assert_int_equal(umdev_vfuc_add_mem(&c, GUEST_IOVA, GUEST_SIZE, true, ALL_RW), 0);
	assert_int_equal(umdev_vfuc_region_info(&c, 0, buf, sizeof(buf), &bfd), 0);
	data = mmap(NULL, SAMPLE_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
	assert_true(data != MAP_FAILED);
	close(bfd);
	setup_msix(&c, efd);
	/* bus mastering off: the DMA is refused, the device reports an error */
	enable(&c, UMDEV_PCI_CMD_MEMORY);
	run_cmd(&c, SAMPLE_CMD_TO_GUEST, GUEST_IOVA, 512);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_STATUS), SAMPLE_STS_DONE | SAMPLE_STS_ERROR);
	assert_int_equal(fired(efd[0], 1000), 1);
	enable(&c, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER);
	/* device -> guest, vector 2 */
	proto_fill(data + SAMPLE_DATA_OFF, SAMPLE_DATA_SIZE, 11);
	reg_wr(&c, SAMPLE_REG_VECTOR, 2);
	run_cmd(&c, SAMPLE_CMD_TO_GUEST, GUEST_IOVA + 8192, SAMPLE_DATA_SIZE);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_STATUS), SAMPLE_STS_DONE);
	g = umdev_vfuc_mem_ptr(&c, GUEST_IOVA + 8192, SAMPLE_DATA_SIZE);
	assert_true(proto_check(g, SAMPLE_DATA_SIZE, 11));
	assert_int_equal(fired(efd[2], 1000), 1);
	assert_int_equal(fired(efd[0], 0), 0);
	/* guest -> device */
	proto_fill(g, 1024, 12);
	run_cmd(&c, SAMPLE_CMD_FROM_GUEST, GUEST_IOVA + 8192, 1024);
	/* The command is a posted write: a read orders it before we look at the page. */
	assert_int_equal(reg_rd(&c, SAMPLE_REG_STATUS), SAMPLE_STS_DONE);
	assert_true(proto_check(data + SAMPLE_DATA_OFF, 1024, 12));
	assert_int_equal(fired(efd[2], 1000), 1);
	/* outside guest memory: error, and no DMA message (the range has an fd-less twin nowhere) */
	run_cmd(&c, SAMPLE_CMD_TO_GUEST, GUEST_IOVA + GUEST_SIZE - 16, 512);
	assert_true(reg_rd(&c, SAMPLE_REG_STATUS) & SAMPLE_STS_ERROR);
	assert_int_equal(fired(efd[2], 1000), 1);
	assert_int_equal(c.dma_writes + c.dma_reads, 0);
	/* MSI-X table in BAR2: mask vector 2, trigger -> pending in PBA, unmask -> delivered */
	uint32_t ctrl = 1, pba = 0;
	assert_int_equal(umdev_vfuc_region_write(&c, 2, 2 * 16 + 12, &ctrl, 4), 0);
	reg_wr(&c, SAMPLE_REG_CMD, SAMPLE_CMD_IRQ);
	assert_int_equal(fired(efd[2], 200), 0);
	assert_int_equal(umdev_vfuc_region_read(&c, 2, 0x800, &pba, 4), 0);
	assert_int_equal(pba, 1u << 2);
	ctrl = 0;
	assert_int_equal(umdev_vfuc_region_write(&c, 2, 2 * 16 + 12, &ctrl, 4), 0);
	assert_int_equal(fired(efd[2], 1000), 1);
	assert_int_equal(umdev_vfuc_region_read(&c, 2, 0x800, &pba, 4), 0);
	assert_int_equal(pba, 0);
	/* function mask in the MSI-X capability holds it too */
	unsigned msix = umdev_vfuc_find_cap(&c, UMDEV_PCI_CAP_ID_MSIX);
	assert_int_equal(umdev_vfuc_cfg_write(&c, msix + 2,
					      UMDEV_PCI_MSIX_FLAGS_ENABLE |
						      UMDEV_PCI_MSIX_FLAGS_MASKALL, 2), 0);
	reg_wr(&c, SAMPLE_REG_CMD, SAMPLE_CMD_IRQ);
	assert_int_equal(fired(efd[2], 200), 0);
	assert_int_equal(umdev_vfuc_cfg_write(&c, msix + 2, UMDEV_PCI_MSIX_FLAGS_ENABLE, 2), 0);
	assert_int_equal(fired(efd[2], 1000), 1);
	/* SET_IRQS MASK/UNMASK on the MSI-X index, as QEMU does for vectors */
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_MSIX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, 2, 1,
					     NULL, NULL, 0), 0);
	reg_wr(&c, SAMPLE_REG_CMD, SAMPLE_CMD_IRQ);
	assert_int_equal(fired(efd[2], 200), 0);
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_MSIX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 2,
					     1, NULL, NULL, 0), 0);
	assert_int_equal(fired(efd[2], 1000), 1);
	/* disable MSI-X (count 0): the trigger goes nowhere */
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_MSIX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0,
					     0, NULL, NULL, 0), 0);
	reg_wr(&c, SAMPLE_REG_CMD, SAMPLE_CMD_IRQ);
	assert_int_equal(fired(efd[2], 200), 0);
	/* malformed SET_IRQS */
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_MSIX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL |
						     VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, 1, (uint8_t[]){ 1 }, NULL, 0), -EINVAL);
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_MSIX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     3, 2, NULL, efd, 2), -EINVAL);
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_MSIX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, 2, NULL, efd, 1), -EINVAL);
	/* DMA_UNMAP: exact match only, and the range is gone for the device */
	struct vfio_user_dma_unmap u = { .argsz = sizeof(u), .addr = GUEST_IOVA, .size = 4096 };
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u), NULL, 0,
					    NULL, 0, NULL, NULL, NULL), -ENOENT);
	/* overlapping map */
	struct vfio_user_dma_map mm = { .argsz = sizeof(mm), .flags = ALL_RW, .addr = GUEST_IOVA,
					.size = 4096 };
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DMA_MAP, 0, &mm, sizeof(mm), NULL, 0,
					    NULL, 0, NULL, NULL, NULL), -EEXIST);
	assert_int_equal(umdev_vfuc_remove_mem(&c, GUEST_IOVA), 0);
	run_cmd(&c, SAMPLE_CMD_TO_GUEST, GUEST_IOVA + 8192, 64);
	assert_true(reg_rd(&c, SAMPLE_REG_STATUS) & SAMPLE_STS_ERROR);
	munmap(data, SAMPLE_BAR0_SIZE);
	for (int i = 0; i < SAMPLE_MSIX_VECTORS; i++)
		close(efd[i]);
	umdev_vfuc_close(&c);
}

static void test_dma_without_fd(void **state)
{
	struct umdev_vfuc c;
	uint8_t pat[SAMPLE_DATA_SIZE];
	uint8_t *g;

	connect_ok(&c);
	assert_int_equal(umdev_vfuc_add_mem(&c, NOFD_IOVA, 65536, false, ALL_RW), 0);
	enable(&c, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER);
	proto_fill(pat, sizeof(pat), 21);
	assert_int_equal(umdev_vfuc_region_write(&c, 0, SAMPLE_DATA_OFF, pat, sizeof(pat)), 0);
	/* The device's DMA becomes DMA_WRITE messages that this client serves mid-request. */
	run_cmd(&c, SAMPLE_CMD_TO_GUEST, NOFD_IOVA + 4096, SAMPLE_DATA_SIZE);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_STATUS), SAMPLE_STS_DONE);
	assert_true(c.dma_writes >= 1);
	g = umdev_vfuc_mem_ptr(&c, NOFD_IOVA + 4096, SAMPLE_DATA_SIZE);
	assert_true(proto_check(g, SAMPLE_DATA_SIZE, 21));
	proto_fill(g, 2048, 22);
	run_cmd(&c, SAMPLE_CMD_FROM_GUEST, NOFD_IOVA + 4096, 2048);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_STATUS), SAMPLE_STS_DONE);
	assert_true(c.dma_reads >= 1);
	assert_int_equal(umdev_vfuc_region_read(&c, 0, SAMPLE_DATA_OFF, pat, 2048), 0);
	assert_true(proto_check(pat, 2048, 22));
	/* a client that refuses the DMA: the device sees an error, the connection stays */
	c.refuse_dma = true;
	run_cmd(&c, SAMPLE_CMD_TO_GUEST, NOFD_IOVA, 64);
	assert_true(reg_rd(&c, SAMPLE_REG_STATUS) & SAMPLE_STS_ERROR);
	c.refuse_dma = false;
	/* read-only window: the device cannot write it */
	assert_int_equal(umdev_vfuc_add_mem(&c, NOFD_IOVA + 0x100000, 4096, false,
					    VFIO_USER_F_DMA_REGION_READ), 0);
	unsigned before = c.dma_writes;
	run_cmd(&c, SAMPLE_CMD_TO_GUEST, NOFD_IOVA + 0x100000, 64);
	assert_true(reg_rd(&c, SAMPLE_REG_STATUS) & SAMPLE_STS_ERROR);
	assert_int_equal(c.dma_writes, before);
	umdev_vfuc_close(&c);
}

/* QEMU's client lays DMA messages out its own way; the server follows it. */
static void test_dma_without_fd_qemu_layout(void **state)
{
	struct umdev_vfuc c;
	uint8_t pat[512];
	uint8_t *g;

	assert_int_equal(umdev_vfuc_connect(&c, srv.sock, 3000), 0);
	/* what QEMU 10.x sends, "migration" included */
	assert_int_equal(umdev_vfuc_version(&c,
		"{\"capabilities\":{\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":"
		"268435456},\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"
		"\"max_dma_maps\":65535,\"write_multiple\":true}}"), 0);
	c.qemu_dma_layout = true;
	assert_int_equal(umdev_vfuc_add_mem(&c, NOFD_IOVA, 65536, false, ALL_RW), 0);
	enable(&c, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER);
	proto_fill(pat, sizeof(pat), 31);
	assert_int_equal(umdev_vfuc_region_write(&c, 0, SAMPLE_DATA_OFF, pat, sizeof(pat)), 0);
	run_cmd(&c, SAMPLE_CMD_TO_GUEST, NOFD_IOVA + 8192, sizeof(pat));
	assert_int_equal(reg_rd(&c, SAMPLE_REG_STATUS), SAMPLE_STS_DONE);
	g = umdev_vfuc_mem_ptr(&c, NOFD_IOVA + 8192, sizeof(pat));
	assert_true(proto_check(g, sizeof(pat), 31));
	proto_fill(g, 256, 32);
	run_cmd(&c, SAMPLE_CMD_FROM_GUEST, NOFD_IOVA + 8192, 256);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_STATUS), SAMPLE_STS_DONE);
	assert_int_equal(umdev_vfuc_region_read(&c, 0, SAMPLE_DATA_OFF, pat, 256), 0);
	assert_true(proto_check(pat, 256, 32));
	assert_int_equal(c.dma_writes, 1);
	assert_int_equal(c.dma_reads, 1);
	umdev_vfuc_close(&c);
}

static void test_write_multi_and_reset(void **state)
{
	struct umdev_vfuc c;
	uint8_t req[8 + 2 * 24];
	uint64_t cnt = 2, back = 0;
	struct vfio_user_write_multi_entry e[2] = {
		{ .offset = SAMPLE_REG_SCRATCH, .region = 0, .count = 4 },
		{ .offset = SAMPLE_REG_VECTOR, .region = 0, .count = 4 },
	};
	uint32_t v1 = 0x1234, v2 = 3;
	size_t rl = 0;

	connect_ok(&c);
	enable(&c, UMDEV_PCI_CMD_MEMORY);
	memcpy(e[0].data, &v1, 4);
	memcpy(e[1].data, &v2, 4);
	memcpy(req, &cnt, 8);
	memcpy(req + 8, e, sizeof(e));
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_REGION_WRITE_MULTI, 0, req, sizeof(req),
					    NULL, 0, &back, 8, &rl, NULL, NULL), 0);
	assert_int_equal(back, 2);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_SCRATCH), 0x1234);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_VECTOR), 3);
	/* wr_cnt not matching the payload */
	cnt = 3;
	memcpy(req, &cnt, 8);
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_REGION_WRITE_MULTI, 0, req, sizeof(req),
					    NULL, 0, NULL, 0, NULL, NULL, NULL), -EINVAL);
	/* DEVICE_FEATURE (migration probe): not supported */
	uint32_t feat[2] = { 8, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET | 1 };
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DEVICE_FEATURE, 0, feat, 8, NULL, 0,
					    NULL, 0, NULL, NULL, NULL), -ENOTTY);
	/* No_reply: nothing comes back, the write still happens */
	struct {
		struct {
			uint64_t offset;
			uint32_t region;
			uint32_t count;
		} __attribute__((packed)) a; /* vfio_user_region_access without its data[] */
		uint32_t v;
	} __attribute__((packed)) w = { { SAMPLE_REG_SCRATCH, 0, 4 }, 0x5678 };
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, &w,
					    sizeof(w), NULL, 0, NULL, 0, NULL, NULL, NULL), 0);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_SCRATCH), 0x5678);
	/*
	 * DEVICE_RESET: registers back to power-on values, the command register
	 * kept, as VFIO_DEVICE_RESET keeps it (the kernel restores the config
	 * state around the function reset).
	 */
	enable(&c, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER);
	assert_int_equal(umdev_vfuc_reset(&c), 0);
	uint16_t cmd = 0xffff;
	assert_int_equal(umdev_vfuc_cfg_read(&c, UMDEV_PCI_COMMAND, &cmd, 2), 0);
	assert_int_equal(cmd, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_SCRATCH), 0);
	/* memory space the client turned off stays off across the reset */
	enable(&c, 0);
	assert_int_equal(umdev_vfuc_reset(&c), 0);
	assert_int_equal(umdev_vfuc_cfg_read(&c, UMDEV_PCI_COMMAND, &cmd, 2), 0);
	assert_int_equal(cmd, 0);
	uint32_t v;
	assert_int_equal(umdev_vfuc_region_read(&c, 0, SAMPLE_REG_SCRATCH, &v, 4), -EIO);
	/* an FLR from inside the function is the device's own: command register cleared */
	unsigned exp = umdev_vfuc_find_cap(&c, UMDEV_PCI_CAP_ID_EXP);
	enable(&c, UMDEV_PCI_CMD_MEMORY);
	assert_int_equal(umdev_vfuc_cfg_write(&c, exp + UMDEV_PCI_EXP_DEVCTL,
					      UMDEV_PCI_EXP_DEVCTL_BCR_FLR, 2), 0);
	assert_int_equal(umdev_vfuc_cfg_read(&c, UMDEV_PCI_COMMAND, &cmd, 2), 0);
	assert_int_equal(cmd, 0);
	umdev_vfuc_close(&c);
}

static void test_reconnect(void **state)
{
	struct umdev_vfuc c;
	int efd[SAMPLE_MSIX_VECTORS];

	connect_ok(&c);
	assert_int_equal(umdev_vfuc_add_mem(&c, GUEST_IOVA, 65536, true, ALL_RW), 0);
	enable(&c, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER);
	reg_wr(&c, SAMPLE_REG_SCRATCH, 0xcafe);
	setup_msix(&c, efd);
	/* drop the socket without a word, keep our memory */
	close(c.fd);
	for (int i = 0; i < SAMPLE_MSIX_VECTORS; i++)
		close(efd[i]);
	struct umdev_vfuc c2;
	connect_ok(&c2);
	/*
	 * A new client opens a reset device, as after a kernel VFIO open: the
	 * last client's register state is gone.
	 */
	assert_int_equal(reg_rd(&c2, SAMPLE_REG_SCRATCH), 0);
	enable(&c2, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER);
	/* mappings dropped: the old window is not guest memory now */
	run_cmd(&c2, SAMPLE_CMD_TO_GUEST, GUEST_IOVA, 64);
	assert_true(reg_rd(&c2, SAMPLE_REG_STATUS) & SAMPLE_STS_ERROR);
	/* re-made: map again and DMA works; MSI-X eventfds set again */
	c2.mem[0] = c.mem[0];
	c2.nmem = 1;
	c.nmem = 0;
	assert_int_equal(umdev_vfuc_remap_all(&c2), 0);
	setup_msix(&c2, efd);
	reg_wr(&c2, SAMPLE_REG_VECTOR, 1);
	run_cmd(&c2, SAMPLE_CMD_TO_GUEST, GUEST_IOVA, 64);
	assert_int_equal(reg_rd(&c2, SAMPLE_REG_STATUS), SAMPLE_STS_DONE);
	assert_int_equal(fired(efd[1], 1000), 1);
	for (int i = 0; i < SAMPLE_MSIX_VECTORS; i++)
		close(efd[i]);
	umdev_vfuc_close(&c2);
	c.fd = -1;
	umdev_vfuc_close(&c);
}

/*
 * Is the connection closed by the server? Reads (and discards) what is
 * still queued, waiting up to 4 s in all: longer than the server's 2 s
 * DMA timeout.
 */
static bool closed_by_server(struct umdev_vfuc *c)
{
	int64_t left = 4000;

	while (left > 0) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		char b[64];
		ssize_t n;

		if (poll(&p, 1, 100) <= 0) {
			left -= 100;
			continue;
		}
		n = read(c->fd, b, sizeof(b));
		if (n <= 0)
			return true;
	}
	return false;
}

static void still_serving(void)
{
	struct umdev_vfuc c;
	struct vfio_user_device_info di;

	connect_ok(&c);
	assert_int_equal(umdev_vfuc_device_info(&c, &di), 0);
	umdev_vfuc_close(&c);
}

/* Build and send a command without waiting for its reply. */
static void send_cmd(struct umdev_vfuc *c, uint16_t id, uint16_t cmd, const void *body, size_t len)
{
	uint8_t buf[256];
	struct vfio_user_header h = { .msg_id = id, .cmd = cmd,
				      .msg_size = (uint32_t)(sizeof(h) + len) };

	assert_true(sizeof(h) + len <= sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	assert_int_equal(umdev_vfuc_send_raw(c, buf, sizeof(h) + len, NULL, 0), 0);
}

static void test_pipelined_during_dma(void **state)
{
	struct umdev_vfuc c;
	struct vfio_user_device_info di = { .argsz = 16 };
	struct {
		struct {
			uint64_t offset;
			uint32_t region;
			uint32_t count;
		} __attribute__((packed)) a;
		uint32_t v;
	} __attribute__((packed)) go = { { SAMPLE_REG_CMD, 0, 4 }, SAMPLE_CMD_TO_GUEST };

	connect_ok(&c);
	assert_int_equal(umdev_vfuc_add_mem(&c, NOFD_IOVA, 65536, false, ALL_RW), 0);
	enable(&c, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER);
	reg_wr(&c, SAMPLE_REG_STATUS, ~0u);
	reg_wr(&c, SAMPLE_REG_DMA_LO, (uint32_t)NOFD_IOVA);
	reg_wr(&c, SAMPLE_REG_DMA_HI, (uint32_t)(NOFD_IOVA >> 32));
	reg_wr(&c, SAMPLE_REG_DMA_LEN, 256);
	/*
	 * The register write is answered at once (a posted write); the device
	 * then runs the command, whose DMA becomes a DMA_WRITE to us. GET_INFO,
	 * pipelined right behind the write, reaches the server while it waits
	 * for our DMA reply: it is stashed and answered after the DMA.
	 */
	send_cmd(&c, 500, VFIO_USER_REGION_WRITE, &go, sizeof(go));
	send_cmd(&c, 501, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di));
	assert_int_equal(umdev_vfuc_wait_reply(&c, 500, NULL, 0, NULL, NULL, NULL), 0);
	assert_int_equal(umdev_vfuc_wait_reply(&c, 501, &di, sizeof(di), NULL, NULL, NULL), 0);
	assert_int_equal(di.num_regions, 9);
	assert_int_equal(c.dma_writes, 1);
	assert_int_equal(reg_rd(&c, SAMPLE_REG_STATUS), SAMPLE_STS_DONE);
	umdev_vfuc_close(&c);
}

static void test_client_ignores_dma(void **state)
{
	struct umdev_vfuc c;
	struct {
		struct {
			uint64_t offset;
			uint32_t region;
			uint32_t count;
		} __attribute__((packed)) a;
		uint32_t v;
	} __attribute__((packed)) go = { { SAMPLE_REG_CMD, 0, 4 }, SAMPLE_CMD_FROM_GUEST };
	struct vfio_user_header h;
	struct pollfd p;

	connect_ok(&c);
	assert_int_equal(umdev_vfuc_add_mem(&c, NOFD_IOVA, 65536, false, ALL_RW), 0);
	enable(&c, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER);
	reg_wr(&c, SAMPLE_REG_DMA_LO, (uint32_t)NOFD_IOVA);
	reg_wr(&c, SAMPLE_REG_DMA_HI, (uint32_t)(NOFD_IOVA >> 32));
	reg_wr(&c, SAMPLE_REG_DMA_LEN, 64);
	send_cmd(&c, 600, VFIO_USER_REGION_WRITE, &go, sizeof(go));
	/* The write is answered first (the command runs after it)... */
	assert_int_equal(umdev_vfuc_wait_reply(&c, 600, NULL, 0, NULL, NULL, NULL), 0);
	/* ...then the server asks for the data... */
	p = (struct pollfd){ .fd = c.fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(read(c.fd, &h, sizeof(h)), sizeof(h));
	assert_int_equal(h.cmd, VFIO_USER_DMA_READ);
	/* ...and we never answer: after its timeout it hangs up and serves others again. */
	assert_true(closed_by_server(&c));
	umdev_vfuc_close(&c);
	struct umdev_vfuc c2;
	connect_ok(&c2);
	/* a new client opens a reset device: the interrupted command left nothing */
	assert_int_equal(reg_rd(&c2, SAMPLE_REG_STATUS), 0);
	assert_int_equal(reg_rd(&c2, SAMPLE_REG_ID), SAMPLE_ID_VALUE);
	umdev_vfuc_close(&c2);
}

static void test_intx_and_msi(void **state)
{
	struct umdev_vfuc c;
	int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), d;
	uint16_t sta = 0;

	connect_ok(&c);
	enable(&c, UMDEV_PCI_CMD_MEMORY);
	reg_wr(&c, SAMPLE_REG_VECTOR, 0);
	/* INTx: fires once, then automasked until the client unmasks */
	d = e;
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_INTX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, 1, NULL, &d, 1), 0);
	reg_wr(&c, SAMPLE_REG_CMD, SAMPLE_CMD_IRQ);
	assert_int_equal(fired(e, 1000), 1);
	assert_int_equal(umdev_vfuc_cfg_read(&c, UMDEV_PCI_STATUS, &sta, 2), 0);
	assert_true(sta & UMDEV_PCI_STATUS_INTERRUPT);
	reg_wr(&c, SAMPLE_REG_CMD, SAMPLE_CMD_IRQ);
	assert_int_equal(fired(e, 200), 0);
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_INTX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 0, 1,
					     NULL, NULL, 0), 0);
	assert_int_equal(fired(e, 1000), 1); /* the held level fires on unmask */
	/* Command.INTX_DISABLE holds it too */
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_INTX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 0, 1,
					     NULL, NULL, 0), 0);
	enable(&c, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_INTX_DISABLE);
	reg_wr(&c, SAMPLE_REG_CMD, SAMPLE_CMD_IRQ);
	assert_int_equal(fired(e, 200), 0);
	enable(&c, UMDEV_PCI_CMD_MEMORY);
	assert_int_equal(fired(e, 1000), 1);
	/* MSI while INTx is on: refused; after disabling INTx: works, with its mask bit */
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_MSI_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, 1, NULL, &d, 1), -EINVAL);
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_INTX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0,
					     NULL, NULL, 0), 0);
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_MSI_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, 1, NULL, &d, 1), 0);
	unsigned msi = umdev_vfuc_find_cap(&c, UMDEV_PCI_CAP_ID_MSI);
	assert_int_equal(umdev_vfuc_cfg_write(&c, msi + UMDEV_PCI_MSI_MASK_64, 1, 4), 0);
	reg_wr(&c, SAMPLE_REG_CMD, SAMPLE_CMD_IRQ);
	assert_int_equal(fired(e, 200), 0);
	uint32_t pend = 0;
	assert_int_equal(umdev_vfuc_cfg_read(&c, msi + UMDEV_PCI_MSI_PENDING_64, &pend, 4), 0);
	assert_int_equal(pend, 1);
	assert_int_equal(umdev_vfuc_cfg_write(&c, msi + UMDEV_PCI_MSI_MASK_64, 0, 4), 0);
	assert_int_equal(fired(e, 1000), 1);
	assert_int_equal(umdev_vfuc_set_irqs(&c, VFIO_PCI_MSI_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0,
					     NULL, NULL, 0), 0);
	close(e);
	umdev_vfuc_close(&c);
}

static void test_hostile(void **state)
{
	struct umdev_vfuc c;
	struct vfio_user_header h;
	struct vfio_user_device_info di = { .argsz = 16 };

	/* a command before VERSION: closed */
	assert_int_equal(umdev_vfuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vfuc_device_info(&c, &di), -ECONNRESET);
	umdev_vfuc_close(&c);
	/* message shorter than its header */
	connect_ok(&c);
	h = (struct vfio_user_header){ .msg_id = 1, .cmd = 4, .msg_size = 8 };
	assert_int_equal(umdev_vfuc_send_raw(&c, &h, sizeof(h), NULL, 0), 0);
	assert_true(closed_by_server(&c));
	umdev_vfuc_close(&c);
	/* oversized: more than max_data_xfer_size allows */
	connect_ok(&c);
	h = (struct vfio_user_header){ .msg_id = 2, .cmd = 10, .msg_size = (64u << 20) };
	assert_int_equal(umdev_vfuc_send_raw(&c, &h, sizeof(h), NULL, 0), 0);
	assert_true(closed_by_server(&c));
	umdev_vfuc_close(&c);
	/* unknown command, bad flags: error replies, connection kept */
	connect_ok(&c);
	assert_int_equal(umdev_vfuc_request(&c, 99, 0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL, NULL),
			 -ENOSYS);
	/* Migration data: refused (no vfio-user migration), connection kept. */
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_MIG_DATA_READ, 0, NULL, 0, NULL, 0, NULL,
					    0, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_MIG_DATA_WRITE, 0, NULL, 0, NULL, 0, NULL,
					    0, NULL, NULL, NULL), -EINVAL);
	{
		/* Asking for migration or DMA logging (not a probe): refused. */
		uint32_t feat[2] = { 8, VFIO_DEVICE_FEATURE_SET | 2 };

		assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DEVICE_FEATURE, 0, feat, 8, NULL,
						    0, NULL, 0, NULL, NULL, NULL), -ENOTTY);
		feat[1] = VFIO_DEVICE_FEATURE_SET | 6;
		assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DEVICE_FEATURE, 0, feat, 8, NULL,
						    0, NULL, 0, NULL, NULL, NULL), -ENOTTY);
		/* Too short to say which feature. */
		assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DEVICE_FEATURE, 0, feat, 4, NULL,
						    0, NULL, 0, NULL, NULL, NULL), -EINVAL);
	}
	/* short payloads */
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DMA_MAP, 0, &di, 8, NULL, 0, NULL, 0,
					    NULL, NULL, NULL), -EINVAL);
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DEVICE_SET_IRQS, 0, &di, 16, NULL, 0,
					    NULL, 0, NULL, NULL, NULL), -EINVAL);
	/* REGION_READ above max_data_xfer_size, bad region, count 0 */
	struct vfio_user_region_access ra = { .offset = 0, .region = 0, .count = (2u << 20) };
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_REGION_READ, 0, &ra, sizeof(ra), NULL, 0,
					    NULL, 0, NULL, NULL, NULL), -EINVAL);
	ra = (struct vfio_user_region_access){ .region = 8, .count = 4 };
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_REGION_READ, 0, &ra, sizeof(ra), NULL, 0,
					    NULL, 0, NULL, NULL, NULL), -EINVAL);
	/* REGION_WRITE whose count disagrees with the payload */
	struct {
		struct {
			uint64_t offset;
			uint32_t region;
			uint32_t count;
		} __attribute__((packed)) a; /* vfio_user_region_access without its data[] */
		uint32_t v;
	} __attribute__((packed)) w = { { 0, VFIO_PCI_CONFIG_REGION_INDEX, 8 }, 0 };
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_REGION_WRITE, 0, &w, sizeof(w), NULL, 0,
					    NULL, 0, NULL, NULL, NULL), -EINVAL);
	/* wrong fds: two fds on DMA_MAP, an fd that is not a memfd of the right size */
	int memfd = memfd_create("small", MFD_CLOEXEC), fds[2];
	assert_int_equal(ftruncate(memfd, 4096), 0);
	fds[0] = fds[1] = memfd;
	struct vfio_user_dma_map mm = { .argsz = sizeof(mm), .flags = ALL_RW, .addr = 0x10000000,
					.size = 1 << 20 };
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DMA_MAP, 0, &mm, sizeof(mm), fds, 2, NULL,
					    0, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DMA_MAP, 0, &mm, sizeof(mm), fds, 1, NULL,
					    0, NULL, NULL, NULL), -EINVAL);
	/* an fd on a command that takes none is closed, not leaked or used */
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), fds,
					    1, &di, sizeof(di), NULL, NULL, NULL), 0);
	close(memfd);
	/* unaligned DMA_MAP */
	mm.addr = 0x10000100;
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_DMA_MAP, 0, &mm, sizeof(mm), NULL, 0, NULL,
					    0, NULL, NULL, NULL), -EINVAL);
	/* a message split in pieces with pauses still arrives whole */
	struct {
		struct vfio_user_header h;
		struct vfio_user_device_info d;
	} __attribute__((packed)) split = { { .msg_id = 77, .cmd = VFIO_USER_DEVICE_GET_INFO,
					      .msg_size = 32 }, { .argsz = 16 } };
	for (size_t o = 0; o < sizeof(split); o += 5) {
		size_t n = sizeof(split) - o < 5 ? sizeof(split) - o : 5;

		assert_int_equal(umdev_vfuc_send_raw(&c, (uint8_t *)&split + o, n, NULL, 0), 0);
		usleep(20000);
	}
	assert_int_equal(umdev_vfuc_wait_reply(&c, 77, &di, sizeof(di), NULL, NULL, NULL), 0);
	assert_int_equal(di.num_regions, 9);
	umdev_vfuc_close(&c);
	/* VERSION with broken JSON and a wrong major */
	assert_int_equal(umdev_vfuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vfuc_version(&c, "{\"capabilities\":[1,2"), -EINVAL);
	assert_int_equal(umdev_vfuc_version(&c, "{\"capabilities\":{\"max_msg_fds\":\"x\"}}"),
			 -EINVAL);
	assert_int_equal(umdev_vfuc_version(&c, "{\"capabilities\":{\"pgsizes\":65536}}"),
			 -ENOTSUP);
	assert_int_equal(umdev_vfuc_version(&c, "{}"), 0);
	assert_int_equal(c.server_max_xfer, 1u << 20);
	/* the server omits write_multiple when the client did not offer it */
	assert_null(strstr(c.server_caps, "write_multiple"));
	umdev_vfuc_close(&c);
	assert_int_equal(umdev_vfuc_connect(&c, srv.sock, 3000), 0);
	uint16_t badver[2] = { 1, 0 };
	assert_int_equal(umdev_vfuc_request(&c, VFIO_USER_VERSION, 0, badver, 4, NULL, 0, NULL, 0,
					    NULL, NULL, NULL), -ECONNRESET);
	umdev_vfuc_close(&c);
	still_serving();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_negotiate_and_info),
		cmocka_unit_test(test_regions),
		cmocka_unit_test(test_config_space),
		cmocka_unit_test(test_dma_fd_and_msix),
		cmocka_unit_test(test_dma_without_fd),
		cmocka_unit_test(test_dma_without_fd_qemu_layout),
		cmocka_unit_test(test_write_multi_and_reset),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_intx_and_msi),
		cmocka_unit_test(test_pipelined_during_dma),
		cmocka_unit_test(test_client_ignores_dma),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
