/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe protocol tests: a real umdevd serving an NVMe controller over
 * vfio-user, driven by our vfio-user client (src/client/vfio_user_client.c)
 * acting as the VMM and our NVMe host driver (src/client/nvme_drv.c) acting
 * as the guest's nvme driver. Registers and doorbells go through
 * REGION_READ/WRITE (umdevd traps doorbells unless poll=on; with shadow
 * doorbells only when EventIdx asks), guest memory is a memfd given with DMA_MAP, interrupts arrive on
 * MSI-X eventfds. Namespaces are hot-plugged with umdevctl.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/nvme_drv.h"
#include "client/vfio_user_client.h"
#include "proto_common.h"
#include "umdev/proto/pci_regs.h"
#include "../../test_wait.h"

#define GUEST_IOVA 0x100000000ull
#define GUEST_SIZE (32u << 20)
#define NVEC 3 /* queues=2: admin + 2 */
#define SC(sct, sc) ((sct) << 8 | (sc))

struct host {
	struct umdev_vfuc c;
	struct umdev_nvmed d;
	struct umdev_nvmed_bus bus;
	void *db_page;
	int efd[NVEC];
};

static struct proto_srv srv;

static int setup(void **state)
{
	proto_srv_init(&srv, 2u << 20);
	/* One file split in two namespaces, plus a RAM namespace. */
	proto_start_umdevd(&srv, "--rpc", "@SOCK2@", "--device",
			   "nvme,id=nvme0,socket=@SOCK@,ns=file:@DISK@@0+1M,ns=file:@DISK@@1M+1M,"
			   "ns=ram:8M,queues=2,poll-us=50",
			   NULL);
	return 0;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	assert_true(alive);
	return 0;
}

static int h_reg_read(void *opaque, uint32_t off, void *buf, unsigned len)
{
	return umdev_vfuc_region_read(&((struct host *)opaque)->c, 0, off, buf, len);
}

static int h_reg_write(void *opaque, uint32_t off, const void *buf, unsigned len)
{
	return umdev_vfuc_region_write(&((struct host *)opaque)->c, 0, off, buf, len);
}

static void host_open(struct host *h)
{
	uint8_t buf[512];
	int fd = -1, fds[NVEC];
	unsigned msix;

	memset(h, 0, sizeof(*h));
	assert_int_equal(umdev_vfuc_connect(&h->c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vfuc_version(&h->c, NULL), 0);
	assert_int_equal(umdev_vfuc_add_mem(&h->c, GUEST_IOVA, GUEST_SIZE, true,
					    VFIO_USER_F_DMA_REGION_READ |
						    VFIO_USER_F_DMA_REGION_WRITE), 0);
	/*
	 * BAR0: without poll=on the doorbells trap (no fd, nothing to mmap);
	 * with it the doorbell page is the mmappable (sparse) part.
	 */
	assert_int_equal(umdev_vfuc_region_info(&h->c, 0, buf, sizeof(buf), &fd), 0);
	assert_true(fd < 0);
	assert_int_equal(umdev_vfuc_cfg_write(&h->c, UMDEV_PCI_COMMAND,
					      UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER, 2), 0);
	for (int i = 0; i < NVEC; i++)
		h->efd[i] = fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_int_equal(umdev_vfuc_set_irqs(&h->c, VFIO_PCI_MSIX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, NVEC, NULL, fds, NVEC), 0);
	msix = umdev_vfuc_find_cap(&h->c, UMDEV_PCI_CAP_ID_MSIX);
	assert_true(msix != 0);
	assert_int_equal(umdev_vfuc_cfg_write(&h->c, msix + 2, UMDEV_PCI_MSIX_FLAGS_ENABLE, 2), 0);
	for (unsigned i = 0; i < NVEC; i++) {
		uint32_t z = 0;

		assert_int_equal(umdev_vfuc_region_write(&h->c, 4, i * 16 + 12, &z, 4), 0);
	}
	h->bus.reg_read = h_reg_read;
	h->bus.reg_write = h_reg_write;
	h->bus.doorbells = h->db_page;
	umdev_nvmed_init(&h->d, &h->bus, h, umdev_vfuc_mem_ptr(&h->c, GUEST_IOVA, GUEST_SIZE),
			 GUEST_IOVA, GUEST_SIZE);
}

static void host_close(struct host *h)
{
	if (h->db_page)
		munmap(h->db_page, 4096);
	for (int i = 0; i < NVEC; i++)
		close(h->efd[i]);
	umdev_vfuc_close(&h->c);
}

static uint64_t fired(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v = 0;

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	if (read(fd, &v, 8) != 8)
		return 0;
	return v;
}

static int rw(struct host *h, uint16_t qid, uint8_t op, uint32_t nsid, uint64_t slba,
	      uint32_t nlb, uint64_t buf, bool sgl)
{
	struct nvme_sqe c;

	assert_int_equal(umdev_nvmed_build_rw(&h->d, &c, op, nsid, slba, nlb, buf,
					      (uint64_t)nlb * 512, sgl, sgl), 0);
	return umdev_nvmed_cmd(&h->d, qid, &c, NULL);
}

static void up(struct host *h)
{
	assert_int_equal(umdev_nvmed_enable(&h->d, 32), 0);
	assert_int_equal(umdev_nvmed_create_qpair(&h->d, 1, 128, true), 0);
	assert_int_equal(umdev_nvmed_create_qpair(&h->d, 2, 128, true), 0);
}

static void test_bringup_split_namespaces(void **state)
{
	struct host h;
	uint64_t buf = 0, wbuf;
	uint32_t *list;
	struct nvme_id_ns *ns;
	uint8_t *disk;
	int fd;

	host_open(&h);
	up(&h);
	buf = umdev_nvmed_alloc(&h.d, 4096, 4096);
	wbuf = umdev_nvmed_alloc(&h.d, 65536, 4096);
	list = umdev_nvmed_ptr(&h.d, buf);
	ns = umdev_nvmed_ptr(&h.d, buf);
	fired(h.efd[0], 0);
	assert_int_equal(umdev_nvmed_identify(&h.d, NVME_CNS_ACTIVE_NS_LIST, 0, buf), 0);
	assert_int_equal(fired(h.efd[0], 1000), 1);
	assert_int_equal(list[0], 1);
	assert_int_equal(list[1], 2);
	assert_int_equal(list[2], 3);
	assert_int_equal(list[3], 0);
	assert_int_equal(umdev_nvmed_identify(&h.d, NVME_CNS_NS, 2, buf), 0);
	assert_int_equal(ns->nsze, 2048);
	assert_int_equal(umdev_nvmed_identify(&h.d, NVME_CNS_NS, 3, buf), 0);
	assert_int_equal(ns->nsze, 16384);
	/* Namespace 2 starts 1 MiB into the file. */
	proto_fill(umdev_nvmed_ptr(&h.d, wbuf), 65536, 21);
	assert_int_equal(rw(&h, 1, NVME_CMD_WRITE, 2, 0, 128, wbuf, false), 0);
	assert_true(fired(h.efd[1], 1000) >= 1);
	proto_fill(umdev_nvmed_ptr(&h.d, wbuf), 65536, 22);
	assert_int_equal(rw(&h, 2, NVME_CMD_WRITE, 1, 2047, 1, wbuf, true), 0);
	assert_true(fired(h.efd[2], 1000) >= 1);
	/* The last block of ns 1 is the block before ns 2; past it is out of range. */
	assert_int_equal(rw(&h, 1, NVME_CMD_WRITE, 1, 2048, 1, wbuf, false),
			 SC(0, NVME_SC_LBA_RANGE));
	fd = open(srv.disk, O_RDONLY);
	assert_true(fd >= 0);
	disk = malloc(2u << 20);
	assert_int_equal(pread(fd, disk, 2u << 20, 0), 2u << 20);
	close(fd);
	proto_fill(umdev_nvmed_ptr(&h.d, wbuf), 65536, 21);
	assert_memory_equal(disk + (1u << 20), umdev_nvmed_ptr(&h.d, wbuf), 65536);
	proto_fill(umdev_nvmed_ptr(&h.d, wbuf), 512, 22);
	assert_memory_equal(disk + (1u << 20) - 512, umdev_nvmed_ptr(&h.d, wbuf), 512);
	free(disk);
	host_close(&h);
}

static void test_io_queue_depth(void **state)
{
	struct host h;
	struct nvme_sqe cmds[32];
	struct nvme_cqe e;
	uint64_t bufs[32];

	host_open(&h);
	up(&h);
	for (unsigned i = 0; i < 32; i++) {
		bufs[i] = umdev_nvmed_alloc(&h.d, 16384, 4096);
		proto_fill(umdev_nvmed_ptr(&h.d, bufs[i]), 16384, 100 + i);
		/* Mixed data pointers: PRP list, one SGL block, split SGL. */
		assert_int_equal(umdev_nvmed_build_rw(&h.d, &cmds[i], NVME_CMD_WRITE, 3, i * 32, 32,
						      bufs[i], 16384, i % 3 != 0, i % 3 == 2), 0);
	}
	for (unsigned round = 0; round < 2; round++) {
		assert_true(umdev_nvmed_submit_batch(&h.d, 1, cmds, 32) >= 0);
		for (unsigned i = 0; i < 32; i++) {
			assert_int_equal(umdev_nvmed_reap(&h.d, 1, &e), 0);
			assert_int_equal((e.status >> 1) & 0x7ff, 0);
		}
		for (unsigned i = 0; i < 32 && !round; i++) {
			cmds[i].opcode = NVME_CMD_READ;
			memset(umdev_nvmed_ptr(&h.d, bufs[i]), 0, 16384);
		}
	}
	for (unsigned i = 0; i < 32; i++)
		assert_true(proto_check(umdev_nvmed_ptr(&h.d, bufs[i]), 16384, 100 + i));
	host_close(&h);
}

static void test_shadow_doorbells(void **state)
{
	struct host h;
	uint64_t buf;
	struct nvme_sqe c[4];
	struct nvme_cqe e;
	unsigned before;

	host_open(&h);
	assert_int_equal(umdev_nvmed_enable(&h.d, 32), 0);
	assert_int_equal(umdev_nvmed_dbbuf(&h.d), 0);
	assert_int_equal(umdev_nvmed_create_qpair(&h.d, 1, 64, true), 0);
	buf = umdev_nvmed_alloc(&h.d, 4096, 4096);
	before = h.d.db_writes;
	for (unsigned round = 0; round < 50; round++) {
		for (unsigned i = 0; i < 4; i++)
			assert_int_equal(umdev_nvmed_build_rw(&h.d, &c[i], NVME_CMD_READ, 3, i, 1, buf,
							      512, false, false), 0);
		assert_true(umdev_nvmed_submit_batch(&h.d, 1, c, 4) >= 0);
		for (unsigned i = 0; i < 4; i++) {
			assert_int_equal(umdev_nvmed_reap(&h.d, 1, &e), 0);
			assert_int_equal((e.status >> 1) & 0x7ff, 0);
		}
	}
	/*
	 * The device tracks our shadow tail in EventIdx. It arms it only when
	 * its loop goes idle (poll-us after the last command), which a loaded
	 * machine can delay past our last reap: wait for it, bounded.
	 */
	TEST_WAIT_UNTIL(__atomic_load_n(&h.d.eventidx[2], __ATOMIC_ACQUIRE) == h.d.q[1].sq_tail);
	assert_int_equal(__atomic_load_n(&h.d.eventidx[2], __ATOMIC_ACQUIRE), h.d.q[1].sq_tail);
	assert_true(h.d.db_writes - before <= 250);
	host_close(&h);
}

static void test_reset_and_flr(void **state)
{
	struct host h;
	uint64_t buf;
	uint32_t csts;

	host_open(&h);
	up(&h);
	buf = umdev_nvmed_alloc(&h.d, 4096, 4096);
	assert_int_equal(rw(&h, 2, NVME_CMD_READ, 3, 0, 8, buf, false), 0);
	assert_int_equal(umdev_nvmed_disable(&h.d), 0);
	up(&h);
	assert_int_equal(rw(&h, 2, NVME_CMD_READ, 3, 0, 8, buf, false), 0);
	/* Garbage doorbell: CSTS.CFS, the daemon lives, reset recovers. */
	assert_int_equal(umdev_nvmed_db_write(&h.d, 2, 5000), 0);
	for (int64_t deadline = test_now_ms() + TEST_WAIT_MS;;) {
		assert_int_equal(umdev_nvmed_reg_read32(&h.d, NVME_REG_CSTS, &csts), 0);
		if ((csts & NVME_CSTS_CFS) || test_now_ms() >= deadline)
			break;
		usleep(10000);
	}
	assert_true(csts & NVME_CSTS_CFS);
	assert_int_equal(umdev_nvmed_disable(&h.d), 0);
	up(&h);
	assert_int_equal(rw(&h, 1, NVME_CMD_READ, 3, 0, 8, buf, false), 0);
	/* Function reset (VFIO_USER_DEVICE_RESET). */
	assert_int_equal(umdev_vfuc_reset(&h.c), 0);
	assert_int_equal(umdev_vfuc_cfg_write(&h.c, UMDEV_PCI_COMMAND,
					      UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER, 2), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&h.d, NVME_REG_CSTS, &csts), 0);
	assert_int_equal(csts, 0);
	up(&h);
	assert_int_equal(rw(&h, 1, NVME_CMD_READ, 3, 0, 8, buf, false), 0);
	host_close(&h);
}

static void test_hostile_commands(void **state)
{
	struct host h;
	struct nvme_sqe c[64];
	struct nvme_cqe e;
	unsigned seed = 12345;

	host_open(&h);
	up(&h);
	/* Random SQEs: every one completes with some status; umdevd survives. */
	for (unsigned round = 0; round < 8; round++) {
		for (unsigned i = 0; i < 64; i++) {
			uint8_t *p = (uint8_t *)&c[i];

			for (unsigned b = 0; b < sizeof(c[i]); b++) {
				seed = seed * 1103515245 + 12345;
				p[b] = (uint8_t)(seed >> 16);
			}
			/* Keep it to commands that touch memory at most MDTS. */
			c[i].cdw12 &= 0x3f;
			if (i % 2)
				c[i].opcode &= 0xf;
			if (i % 4 == 1)
				c[i].nsid = 1 + i % 3;
		}
		assert_true(umdev_nvmed_submit_batch(&h.d, 1 + round % 2, c, 64) >= 0);
		for (unsigned i = 0; i < 64; i++)
			assert_int_equal(umdev_nvmed_reap(&h.d, 1 + round % 2, &e), 0);
	}
	assert_true(umdev_proc_alive(&srv.proc));
	host_close(&h);
}

/* DMA_MAP/DMA_UNMAP of a second window while queues run. */
static void test_dma_windows(void **state)
{
	struct host h;
	const uint64_t iova2 = 0x300000000ull;
	uint64_t buf;
	uint8_t *p2;

	host_open(&h);
	up(&h);
	buf = umdev_nvmed_alloc(&h.d, 4096, 4096);
	assert_int_equal(umdev_vfuc_add_mem(&h.c, iova2, 1u << 20, true,
					    VFIO_USER_F_DMA_REGION_READ |
						    VFIO_USER_F_DMA_REGION_WRITE), 0);
	p2 = umdev_vfuc_mem_ptr(&h.c, iova2, 4096);
	proto_fill(p2, 4096, 77);
	/* A window mapped after the controller started is used at once. */
	assert_int_equal(rw(&h, 1, NVME_CMD_WRITE, 3, 64, 8, iova2, false), 0);
	assert_int_equal(rw(&h, 1, NVME_CMD_READ, 3, 64, 8, buf, false), 0);
	assert_true(proto_check(umdev_nvmed_ptr(&h.d, buf), 4096, 77));
	/* Unmapped: commands pointing there fail, the rest goes on. */
	assert_int_equal(umdev_vfuc_remove_mem(&h.c, iova2), 0);
	assert_int_equal(rw(&h, 1, NVME_CMD_READ, 3, 64, 8, iova2, false),
			 SC(0, NVME_SC_DATA_XFER_ERROR));
	assert_int_equal(rw(&h, 2, NVME_CMD_READ, 3, 64, 8, buf, true), 0);
	assert_true(proto_check(umdev_nvmed_ptr(&h.d, buf), 4096, 77));
	host_close(&h);
}

static int run_umdevctl(const char *a1, const char *a2, const char *a3, const char *a4)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s --rpc %s %s %s %s %s >/dev/null", getenv("UMDEVCTL"),
		 srv.sock2, a1, a2, a3, a4 ? a4 : "");
	return system(cmd);
}

static void test_ns_hotplug_umdevctl(void **state)
{
	struct host h;
	uint64_t buf;
	uint32_t *list;
	struct nvme_sqe aer = { .opcode = NVME_ADM_ASYNC_EVENT }, c;
	struct nvme_cqe e;

	host_open(&h);
	up(&h);
	buf = umdev_nvmed_alloc(&h.d, 4096, 4096);
	list = umdev_nvmed_ptr(&h.d, buf);
	assert_int_equal(umdev_nvmed_set_features(&h.d, NVME_FEAT_ASYNC_EVENT,
						  NVME_AEN_CFG_NS_ATTR, NULL), 0);
	assert_true(umdev_nvmed_submit(&h.d, 0, &aer) >= 0);
	assert_int_equal(run_umdevctl("ns-add", "nvme0", "ram:2M", NULL), 0);
	assert_int_equal(umdev_nvmed_reap(&h.d, 0, &e), 0);
	assert_int_equal(e.dw0, NVME_LOG_CHANGED_NS << 16 | NVME_AER_TYPE_NOTICE);
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_GET_LOG_PAGE;
	c.dptr.prp.prp1 = buf;
	c.cdw10 = NVME_LOG_CHANGED_NS | 1023u << 16;
	assert_int_equal(umdev_nvmed_cmd(&h.d, 0, &c, NULL), 0);
	assert_int_equal(list[0], 4);
	assert_int_equal(list[1], 0);
	assert_int_equal(rw(&h, 1, NVME_CMD_WRITE, 4, 4095, 1, buf, false), 0);
	/* Remove namespace 2 (half of the file). */
	assert_true(umdev_nvmed_submit(&h.d, 0, &aer) >= 0);
	assert_int_equal(run_umdevctl("ns-remove", "nvme0", "2", NULL), 0);
	assert_int_equal(umdev_nvmed_reap(&h.d, 0, &e), 0);
	assert_int_equal(e.dw0 & 0xff, NVME_AER_TYPE_NOTICE);
	assert_int_equal(umdev_nvmed_identify(&h.d, NVME_CNS_ACTIVE_NS_LIST, 0, buf), 0);
	assert_int_equal(list[0], 1);
	assert_int_equal(list[1], 3);
	assert_int_equal(list[2], 4);
	assert_int_equal(rw(&h, 1, NVME_CMD_READ, 2, 0, 1, buf, false), SC(0, NVME_SC_INVALID_NS));
	/* Errors: no such namespace, bad window. */
	assert_int_not_equal(run_umdevctl("ns-remove", "nvme0", "9", NULL), 0);
	assert_int_not_equal(run_umdevctl("ns-add", "nvme0", "ram:1M", "offset=4M"), 0);
	assert_int_not_equal(run_umdevctl("ns-add", "nvme0", "ram:1M", "readonly=on"), 0);
	/* A window of the file again, at a chosen NSID. */
	{
		char spec[300];

		snprintf(spec, sizeof(spec), "file:%s@1M+512K", srv.disk);
		assert_int_equal(run_umdevctl("ns-add", "nvme0", spec, "nsid=7"), 0);
	}
	assert_int_equal(umdev_nvmed_identify(&h.d, NVME_CNS_NS, 7, buf), 0);
	assert_int_equal(((struct nvme_id_ns *)umdev_nvmed_ptr(&h.d, buf))->nsze, 1024);
	host_close(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bringup_split_namespaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_queue_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shadow_doorbells, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_and_flr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ns_hotplug_umdevctl, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
