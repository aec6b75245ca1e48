/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-pci over vfio-user: our vfio-user client acting as a guest's
 * virtio_pci driver (src/client/virtio_pci_drv.c) against a real umdevd
 * serving virtio-blk and virtio-scsi with transport=vfio-user. Capability
 * walk, feature negotiation, queue set-up, I/O on every queue with MSI-X,
 * INTx with ISR, reset and DEVICE_RESET, bus mastering off, hostile
 * register accesses, and rings and buffers in one window per page (as
 * behind a vIOMMU).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "client/virtio_pci_drv.h"
#include "proto_common.h"
#include "umdev/proto/pci_regs.h"
#include "umdev/proto/virtio_blk.h"
#include "umdev/proto/virtio_ring.h"
#include "umdev/proto/virtio_scsi.h"
#include "umdev/mem.h"
#include "../test_wait.h"

#define GUEST_IOVA 0x100000000ull
#define GUEST_SIZE (4u << 20)
#define RING(q) (GUEST_IOVA + (uint64_t)(q) * 0x10000)
#define AREA(q) (GUEST_IOVA + 0x200000 + (uint64_t)(q) * 0x10000)
#define DISK_BYTES (8u << 20)
#define NQ 3
#define ALL_RW (VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE)
#define WANT (~0ull)

static struct proto_srv srv;
static char rpc_path[256];
static struct umdev_vfuc cli;
static struct umdev_vpd drv;

static int setup(void **state)
{
	(void)state;
	proto_srv_init(&srv, DISK_BYTES);
	snprintf(rpc_path, sizeof(rpc_path), "%s/rpc.sock", srv.dir);
	proto_start_umdevd(&srv, "--rpc", rpc_path, "--device",
			   "virtio-blk,id=vb0,transport=vfio-user,socket=@SOCK@,backend=file:@DISK@,"
			   "num-queues=3,queue-size=256",
			   "--device",
			   "virtio-scsi,id=vs0,transport=vfio-user,socket=@SOCK2@,lun=0:0:ram:4M,"
			   "num-queues=1,queue-size=256",
			   "--device",
			   "virtio-blk,id=vb1,transport=vfio-user,socket=@DIR@/vb1.sock,"
			   "backend=ram:4M",
			   NULL);
	return 0;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	(void)state;
	proto_stop(&srv, !alive);
	assert_true(alive);
	return 0;
}

static void open_dev(const char *sock)
{
	memset(&cli, 0, sizeof(cli));
	assert_int_equal(umdev_vfuc_connect(&cli, sock, 3000), 0);
	assert_int_equal(umdev_vfuc_version(&cli, NULL), 0);
	assert_int_equal(umdev_vfuc_add_mem(&cli, GUEST_IOVA, GUEST_SIZE, true, ALL_RW), 0);
	assert_int_equal(umdev_vpd_probe(&drv, &cli), 0);
}

static void close_dev(void)
{
	umdev_vpd_fini(&drv);
	umdev_vfuc_close(&cli);
}

/* A device with @nq queues of 64 entries, queue q on MSI-X vector q + 1. */
static void bring_up(unsigned nq, bool msix)
{
	assert_int_equal(umdev_vpd_negotiate(&drv, WANT), 0);
	if (msix) {
		assert_int_equal(umdev_vpd_enable_msix(&drv, nq + 1), 0);
		assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_MSIX, 2, 0), 0);
	} else {
		assert_int_equal(umdev_vpd_enable_intx(&drv), 0);
	}
	for (unsigned q = 0; q < nq; q++)
		assert_int_equal(umdev_vpd_queue_setup(&drv, q, 64, RING(q),
						       msix ? q + 1 : VIRTIO_MSI_NO_VECTOR),
				 0);
	assert_int_equal(umdev_vpd_driver_ok(&drv), 0);
}

/*
 * Post one virtio-blk request on queue @q (header, data, status at @a; as an
 * indirect table at @indirect unless 0) and kick.
 */
static void blk_post_ind(unsigned q, uint64_t a, uint32_t type, uint64_t sector, uint32_t len,
			 uint64_t indirect)
{
	struct virtio_blk_outhdr *h = umdev_vfuc_mem_ptr(&cli, a, sizeof(*h));
	struct umdev_vqd_buf b[3] = {
		{ a, sizeof(*h), false },
		{ a + 4096, len, type == VIRTIO_BLK_T_IN },
		{ a + 64, 1, true },
	};

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*(uint8_t *)umdev_vfuc_mem_ptr(&cli, a + 64, 1) = 0xff;
	assert_true(umdev_vqd_add(&drv.q[q], b, 3, indirect) >= 0);
	assert_int_equal(umdev_vpd_kick(&drv, q), 0);
}

static void blk_post_at(unsigned q, uint64_t a, uint32_t type, uint64_t sector, uint32_t len)
{
	blk_post_ind(q, a, type, sector, len, 0);
}

static void blk_post(unsigned q, uint32_t type, uint64_t sector, uint32_t len)
{
	blk_post_at(q, AREA(q), type, sector, len);
}

static uint8_t blk_done_at(unsigned q, uint64_t a, int timeout_ms)
{
	uint16_t head;
	uint32_t len;
	int ret = umdev_vpd_wait_used(&drv, q, timeout_ms, &head, &len);

	if (ret <= 0)
		return 0xee; /* nothing came back */
	return *(uint8_t *)umdev_vfuc_mem_ptr(&cli, a + 64, 1);
}

static uint8_t blk_done(unsigned q, int timeout_ms)
{
	return blk_done_at(q, AREA(q), timeout_ms);
}

static uint8_t *blk_data(unsigned q)
{
	return umdev_vfuc_mem_ptr(&cli, AREA(q) + 4096, 4096);
}

static void test_identity_and_caps(void **state)
{
	uint32_t id, sub, cls;
	uint64_t cap;

	(void)state;
	open_dev(srv.sock);
	assert_int_equal(umdev_vfuc_cfg_read(&cli, 0, &id, 4), 0);
	assert_int_equal(id, 0x1af4u | (0x1040u + VIRTIO_ID_BLOCK) << 16);
	assert_int_equal(umdev_vfuc_cfg_read(&cli, UMDEV_PCI_SUBSYS_VENDOR_ID, &sub, 4), 0);
	assert_int_equal(sub, 0x1af4u | VIRTIO_ID_BLOCK << 16);
	assert_int_equal(umdev_vfuc_cfg_read(&cli, UMDEV_PCI_REVISION_ID, &cls, 4), 0);
	assert_int_equal(cls & 0xff, 1); /* modern-only: revision >= 1 */
	assert_int_equal(umdev_vfuc_bar_size(&cli, 4), 0x8000);
	/* Every structure lives in BAR 4, inside it, none overlapping the MSI-X table. */
	assert_int_equal(drv.common.bar, 4);
	assert_int_equal(drv.common.length, VPCI_COMMON_SIZE);
	assert_int_equal(drv.notify.bar, 4);
	assert_int_equal(drv.notify_mult, 4);
	assert_true(drv.notify.length >= NQ * 4);
	assert_int_equal(drv.isr.bar, 4);
	assert_true(drv.isr.length >= 1);
	assert_int_equal(drv.device.bar, 4);
	assert_true(drv.device.length >= 8);
	assert_true(drv.pcicfg.cap != 0);
	assert_int_equal(drv.num_queues, NQ);
	assert_int_equal(drv.msix_vectors, NQ + 1);
	assert_int_equal(drv.msix_bar, 4);
	/* Device config: the capacity in sectors. */
	assert_int_equal(umdev_vfuc_region_read(&cli, 4, drv.device.offset, &cap, 8), 0);
	assert_int_equal(cap, DISK_BYTES / 512);
	close_dev();
}

static void test_features(void **state)
{
	uint64_t f;

	(void)state;
	open_dev(srv.sock);
	f = umdev_vpd_device_features(&drv);
	assert_true(f & 1ull << VIRTIO_F_VERSION_1);
	assert_true(f & 1ull << VIRTIO_F_ACCESS_PLATFORM);
	assert_true(f & 1ull << VIRTIO_F_RING_PACKED);
	assert_false(f & 1ull << VIRTIO_F_NOTIFICATION_DATA); /* not served on this transport */
	assert_false(f & 1ull << VIRTIO_F_RING_RESET);
	/* A legacy driver (no VERSION_1) is refused FEATURES_OK. */
	assert_int_equal(umdev_vpd_negotiate(&drv, ~(1ull << VIRTIO_F_VERSION_1)), -EPROTO);
	/* Bits never offered are refused too. */
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_STATUS, 1, 0), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_STATUS, 1, 3), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_GFSELECT, 4, 1), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_GF, 4, 0xffffffffu), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_STATUS, 1, 0xb), 0);
	assert_false(umdev_vpd_status(&drv) & VIRTIO_STATUS_FEATURES_OK);
	/* A good set is accepted and frozen once FEATURES_OK is set. */
	assert_int_equal(umdev_vpd_negotiate(&drv, WANT), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_GFSELECT, 4, 0), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_GF, 4, 0), 0);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_GF, 4), drv.features & 0xffffffffu);
	close_dev();
}

/* Every queue: write a pattern, read it back; its own MSI-X vector fires. */
static void test_io_every_queue_msix(void **state)
{
	(void)state;
	open_dev(srv.sock);
	bring_up(NQ, true);
	for (unsigned q = 0; q < NQ; q++) {
		proto_fill(blk_data(q), 4096, 100 + q);
		blk_post(q, VIRTIO_BLK_T_OUT, 8 * q, 4096);
		assert_true(umdev_vpd_wait_irq(&drv, q + 1, PROTO_IO_TIMEOUT_MS) > 0);
		assert_int_equal(blk_done(q, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	}
	for (unsigned q = 0; q < NQ; q++) {
		unsigned rq = (q + 1) % NQ; /* read through another queue */

		memset(blk_data(rq), 0, 4096);
		blk_post(rq, VIRTIO_BLK_T_IN, 8 * q, 4096);
		assert_true(umdev_vpd_wait_irq(&drv, rq + 1, PROTO_IO_TIMEOUT_MS) > 0);
		assert_int_equal(blk_done(rq, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
		assert_true(proto_check(blk_data(rq), 4096, 100 + q));
	}
	/* A masked vector holds its interrupt in the PBA, and fires on unmask. */
	{
		uint32_t ctrl = 1, pba = 0;
		uint32_t entry = drv.msix_table_off + 2 * UMDEV_PCI_MSIX_ENTRY_SIZE +
				 UMDEV_PCI_MSIX_ENTRY_CTRL;

		assert_int_equal(umdev_vfuc_region_write(&cli, 4, entry, &ctrl, 4), 0);
		blk_post(1, VIRTIO_BLK_T_IN, 0, 512);
		/* The pending bit first: once the entry is reaped, no interrupt is due. */
		for (int i = 0; i < PROTO_IO_TIMEOUT_MS && !(pba & 1u << 2); i++) {
			assert_int_equal(umdev_vfuc_region_read(&cli, 4, 0x6000, &pba, 4), 0);
			if (!(pba & 1u << 2))
				usleep(1000);
		}
		assert_true(pba & 1u << 2);
		assert_int_equal(blk_done(1, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
		assert_int_equal(umdev_vpd_wait_irq(&drv, 2, 0), 0);
		ctrl = 0;
		assert_int_equal(umdev_vfuc_region_write(&cli, 4, entry, &ctrl, 4), 0);
		assert_true(umdev_vpd_wait_irq(&drv, 2, PROTO_IO_TIMEOUT_MS) > 0);
	}
	close_dev();
}

static void test_intx_isr(void **state)
{
	uint8_t isr = 0xff;

	(void)state;
	open_dev(srv.sock);
	bring_up(1, false);
	blk_post(0, VIRTIO_BLK_T_IN, 0, 512);
	assert_true(umdev_vpd_wait_irq(&drv, 0, PROTO_IO_TIMEOUT_MS) > 0);
	assert_int_equal(blk_done(0, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	/* ISR says "queue", and reading it clears it. */
	assert_int_equal(umdev_vfuc_region_read(&cli, 4, drv.isr.offset, &isr, 1), 0);
	assert_int_equal(isr, VIRTIO_PCI_ISR_QUEUE);
	assert_int_equal(umdev_vfuc_region_read(&cli, 4, drv.isr.offset, &isr, 1), 0);
	assert_int_equal(isr, 0);
	close_dev();
}

static void check_reset_state(void)
{
	assert_int_equal(umdev_vpd_status(&drv), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_SELECT, 2, 0), 0);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_Q_ENABLE, 2), 0);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_Q_SIZE, 2), 256);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_Q_DESC, 4), 0);
}

static void test_reset_and_flr(void **state)
{
	(void)state;
	open_dev(srv.sock);
	bring_up(2, true);
	blk_post(0, VIRTIO_BLK_T_IN, 0, 512);
	assert_int_equal(blk_done(0, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	/* Driver reset: status 0. */
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_STATUS, 1, 0), 0);
	check_reset_state();
	/* The device works again after a fresh set-up. */
	bring_up(2, true);
	blk_post(1, VIRTIO_BLK_T_IN, 0, 512);
	assert_int_equal(blk_done(1, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	/* Function reset (vfio-user DEVICE_RESET, what FLR becomes). */
	assert_int_equal(umdev_vfuc_reset(&cli), 0);
	check_reset_state();
	assert_int_equal(umdev_vfuc_cfg_write(&cli, UMDEV_PCI_COMMAND,
					      UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER, 2), 0);
	bring_up(1, true);
	blk_post(0, VIRTIO_BLK_T_IN, 0, 512);
	assert_int_equal(blk_done(0, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	close_dev();
}

static void test_bus_master_off(void **state)
{
	(void)state;
	open_dev(srv.sock);
	bring_up(1, true);
	assert_int_equal(umdev_vfuc_cfg_write(&cli, UMDEV_PCI_COMMAND, UMDEV_PCI_CMD_MEMORY, 2), 0);
	blk_post(0, VIRTIO_BLK_T_IN, 0, 512);
	/* No DMA while bus mastering is off: the request stays on the ring... */
	assert_int_equal(blk_done(0, 300), 0xee);
	/* ...and is served once it is back on. */
	assert_int_equal(umdev_vfuc_cfg_write(&cli, UMDEV_PCI_COMMAND,
					      UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER, 2), 0);
	assert_int_equal(blk_done(0, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	close_dev();
}

/*
 * Buffers in memory shared without an fd (as QEMU shares the BIOS area where
 * SeaBIOS keeps its disk buffers): served through DMA_READ/DMA_WRITE, the
 * data right both ways, bytes the device does not write left alone; a client
 * that refuses those messages fails its requests, not the queue; a reset
 * while such a request waits for its copy does not hang.
 */
/* Driver reset, one queue set up again, and the data of seed 71 at sector 64 read back. */
static void reset_and_read_back(void)
{
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_STATUS, 1, 0), 0);
	check_reset_state();
	bring_up(1, true);
	blk_post(0, VIRTIO_BLK_T_IN, 64, 4096);
	assert_int_equal(blk_done(0, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	assert_true(proto_check(blk_data(0), 4096, 71));
}

#define LOWMEM 0xc0000ull
#define LOWMEM_SIZE 0x40000u

static void test_fdless_buffers(void **state)
{
	uint8_t *data;
	unsigned reads, writes;

	(void)state;
	open_dev(srv.sock);
	assert_int_equal(umdev_vfuc_add_mem(&cli, LOWMEM, LOWMEM_SIZE, false, ALL_RW), 0);
	bring_up(1, true);
	data = umdev_vfuc_mem_ptr(&cli, LOWMEM + 4096, 8192);
	assert_non_null(data);

	/* Write from fd-less memory; read back through fd-backed buffers. */
	proto_fill(data, 8192, 71);
	reads = cli.dma_reads;
	blk_post_at(0, LOWMEM, VIRTIO_BLK_T_OUT, 64, 8192);
	assert_int_equal(blk_done_at(0, LOWMEM, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	assert_true(cli.dma_reads > reads);
	memset(blk_data(0), 0, 4096);
	blk_post(0, VIRTIO_BLK_T_IN, 64, 4096);
	assert_int_equal(blk_done(0, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	assert_true(proto_check(blk_data(0), 4096, 71));

	/* Read into fd-less memory: data and status arrive by DMA_WRITE. */
	memset(data, 0x5a, 8192);
	writes = cli.dma_writes;
	blk_post_at(0, LOWMEM, VIRTIO_BLK_T_IN, 64, 4096);
	assert_int_equal(blk_done_at(0, LOWMEM, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	assert_true(cli.dma_writes > writes);
	assert_true(proto_check(data, 4096, 71));
	/* Beyond the buffer, nothing changed. */
	for (unsigned i = 4096; i < 8192; i++)
		assert_int_equal(data[i], 0x5a);

	/*
	 * A client that refuses DMA messages: no used entry claims a status it
	 * never got; the queue stops until a reset, then serves again.
	 */
	cli.refuse_dma = true;
	blk_post_at(0, LOWMEM, VIRTIO_BLK_T_IN, 0, 512);
	assert_int_equal(blk_done_at(0, LOWMEM, 500), 0xee);
	assert_true(cli.dma_reads > reads);
	cli.refuse_dma = false;
	reset_and_read_back();

	/* Reset with a request waiting for its copy: served while the stop waits. */
	blk_post_at(0, LOWMEM, VIRTIO_BLK_T_OUT, 80, 4096);
	reset_and_read_back();
	close_dev();
}

/*
 * Windows mapped while the queue runs (SeaBIOS's BIOS area, a vIOMMU's
 * per-request maps): requests may use them at once, fd-backed or not.
 */
static void test_window_added_while_running(void **state)
{
	const uint64_t win = 0x200000000ull;
	unsigned reads;
	uint8_t *data;

	(void)state;
	open_dev(srv.sock);
	bring_up(1, true);
	blk_post(0, VIRTIO_BLK_T_IN, 0, 4096);
	assert_int_equal(blk_done(0, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);

	assert_int_equal(umdev_vfuc_add_mem(&cli, win, 1u << 20, true, ALL_RW), 0);
	proto_fill(umdev_vfuc_mem_ptr(&cli, win + 4096, 4096), 4096, 91);
	blk_post_at(0, win, VIRTIO_BLK_T_OUT, 128, 4096);
	assert_int_equal(blk_done_at(0, win, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	memset(blk_data(0), 0, 4096);
	blk_post(0, VIRTIO_BLK_T_IN, 128, 4096);
	assert_int_equal(blk_done(0, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	assert_true(proto_check(blk_data(0), 4096, 91));

	/* An fd-less one: the queue learns it holds shadows and copies. */
	assert_int_equal(umdev_vfuc_add_mem(&cli, LOWMEM, LOWMEM_SIZE, false, ALL_RW), 0);
	data = umdev_vfuc_mem_ptr(&cli, LOWMEM + 4096, 4096);
	assert_non_null(data);
	memset(data, 0x33, 4096);
	reads = cli.dma_reads;
	blk_post_at(0, LOWMEM, VIRTIO_BLK_T_IN, 128, 4096);
	assert_int_equal(blk_done_at(0, LOWMEM, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	assert_true(cli.dma_reads > reads);
	assert_true(proto_check(data, 4096, 91));
	close_dev();
}

/*
 * Packed rings (VIRTIO_F_RING_PACKED) over this transport: I/O on every
 * queue with MSI-X, around the ring several times; a window mapped while
 * they run restarts them where they were (wrap counters included); a reset
 * and a fresh set-up start again at slot 0 with wrap counter 1.
 */
static void test_packed_rings(void **state)
{
	(void)state;
	open_dev(srv.sock);
	drv.packed = true;
	bring_up(NQ, true);
	assert_true(drv.features & (1ull << VIRTIO_F_RING_PACKED));
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 50; i++) {
			unsigned q = i % NQ;

			proto_fill(blk_data(q), 4096, 300 + i);
			blk_post(q, VIRTIO_BLK_T_OUT, 8 * i, 4096);
			assert_int_equal(blk_done(q, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
			memset(blk_data(q), 0, 4096);
			blk_post(q, VIRTIO_BLK_T_IN, 8 * i, 4096);
			assert_int_equal(blk_done(q, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
			assert_true(proto_check(blk_data(q), 4096, 300 + i));
		}
		assert_true(umdev_vpd_wait_irq(&drv, 1, PROTO_IO_TIMEOUT_MS) > 0);
		if (round == 0) /* a new window: the queues restart on the new map */
			assert_int_equal(umdev_vfuc_add_mem(&cli, 0x200000000ull, 1u << 20, true,
							    ALL_RW), 0);
		if (round == 1) { /* reset, fresh rings */
			assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_STATUS, 1, 0), 0);
			check_reset_state();
			bring_up(NQ, true);
		}
	}
	close_dev();
}

/*
 * Behind a vIOMMU (QEMU with intel-iommu) the guest's DMA API maps every
 * page on its own: one DMA_MAP per 4 KiB page, guest pages in any order,
 * buffers it only sends read-only. A ring of 1024 entries spans several
 * windows (the descriptor table 4, the used ring 3), an 8 KiB buffer three,
 * an indirect table two. Everything here lives in such memory.
 */
#define PAGED 0xffe00000ull
#define PAGED_SIZE (64u * 4096)
#define PAGED_REQ (PAGED + 0x8800) /* after the ring; header, status, then data */
#define PAGED_INDIRECT (PAGED + 0xeff0) /* a table across two windows */
#define VIOMMU_QSIZE 1024

static char vb1_sock[256];

/* One request in paged memory (optionally as an indirect table), waited for. */
static uint8_t paged_rw(uint32_t type, uint64_t sector, uint32_t len, uint64_t indirect,
			int timeout_ms)
{
	blk_post_ind(0, PAGED_REQ, type, sector, len, indirect);
	return blk_done_at(0, PAGED_REQ, timeout_ms);
}

/* Lines of the daemon's log that contain @what. */
static unsigned log_count(const char *what)
{
	char line[1024];
	unsigned n = 0;
	FILE *f = fopen(srv.log, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

static void viommu_bring_up(bool packed)
{
	memset(&cli, 0, sizeof(cli));
	assert_int_equal(umdev_vfuc_connect(&cli, vb1_sock, 3000), 0);
	assert_int_equal(umdev_vfuc_version(&cli, NULL), 0);
	assert_int_equal(umdev_vfuc_add_mem_pages(&cli, PAGED, PAGED_SIZE, ALL_RW), 0);
	assert_int_equal(umdev_vpd_probe(&drv, &cli), 0);
	drv.packed = packed;
	assert_int_equal(umdev_vpd_negotiate(&drv, WANT), 0);
	assert_true(drv.features & (1ull << VIRTIO_F_ACCESS_PLATFORM));
	assert_true(drv.features & (1ull << VIRTIO_RING_F_INDIRECT_DESC));
	assert_int_equal(!!(drv.features & (1ull << VIRTIO_F_RING_PACKED)), packed);
	assert_int_equal(umdev_vpd_enable_msix(&drv, 2), 0);
	assert_int_equal(umdev_vpd_queue_setup(&drv, 0, VIOMMU_QSIZE, PAGED, 1), 0);
	assert_int_equal(umdev_vpd_driver_ok(&drv), 0);
}

/* Write, then read back: plain chains and indirect tables, around the ring twice. */
static void viommu_io(unsigned seed)
{
	uint8_t *data = umdev_vfuc_mem_ptr(&cli, PAGED_REQ + 4096, 8192);

	for (unsigned i = 0; i < 2 * VIOMMU_QSIZE + 10; i += 7) {
		uint64_t ind = i % 2 ? PAGED_INDIRECT : 0;

		proto_fill(data, 8192, seed + i);
		assert_int_equal(paged_rw(VIRTIO_BLK_T_OUT, 16 * (i % 64), 8192, ind,
					  PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
		memset(data, 0, 8192);
		assert_int_equal(paged_rw(VIRTIO_BLK_T_IN, 16 * (i % 64), 8192, ind,
					  PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
		assert_true(proto_check(data, 8192, seed + i));
	}
}

static void test_rings_in_page_windows(void **state)
{
	const char *refusal = "device area";
	uint64_t used;

	(void)state;
	snprintf(vb1_sock, sizeof(vb1_sock), "%s/vb1.sock", srv.dir);
	if (!umdev_as_views_supported()) {
		/*
		 * qemu-user (our arm64 runs; the server runs under it too): no
		 * view can join the rings' pages, so the queue does not start,
		 * and says why once.
		 */
		printf("# mremap cannot duplicate a mapping here: rings across windows refused\n");
		viommu_bring_up(false);
		blk_post_at(0, PAGED_REQ, VIRTIO_BLK_T_IN, 0, 4096);
		assert_int_equal(blk_done_at(0, PAGED_REQ, 300), 0xee);
		assert_true(TEST_WAIT_UNTIL(log_count("cannot join") >= 1));
		close_dev();
		return;
	}
	for (int packed = 0; packed < 2; packed++) {
		struct vfio_user_dma_unmap u = { .argsz = sizeof(u), .addr = PAGED + 0x20000,
						 .size = 4096 };
		struct vfio_user_dma_unmap back;
		size_t bl = 0;

		viommu_bring_up(packed);
		viommu_io(500);
		/* A page nothing uses goes and comes back while the queue runs. */
		assert_int_equal(umdev_vfuc_remap_page(&cli, PAGED + 0x30000, ALL_RW), 0);
		viommu_io(700);
		/* Unmapped, a page is out of the device's reach at once. */
		assert_int_equal(umdev_vfuc_request(&cli, VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u),
						    NULL, 0, &back, sizeof(back), &bl, NULL, NULL),
				 0);
		blk_post_at(0, u.addr - 4096, VIRTIO_BLK_T_IN, 0, 4096);
		assert_int_equal(blk_done_at(0, u.addr - 4096, 300), 0xee);
		close_dev();
	}

	/*
	 * The used ring in a page the guest mapped read-only: the queue does
	 * not start, says why once however often it is kicked, and starts
	 * once the page is mapped writable.
	 */
	viommu_bring_up(false);
	used = drv.q[0].used_gpa;
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_STATUS, 1, 0), 0);
	assert_int_equal(umdev_vfuc_remap_page(&cli, used & ~4095ull, VFIO_USER_F_DMA_REGION_READ),
			 0);
	assert_int_equal(log_count(refusal), 0);
	assert_int_equal(umdev_vpd_negotiate(&drv, WANT), 0);
	assert_int_equal(umdev_vpd_queue_setup(&drv, 0, VIOMMU_QSIZE, PAGED, 1), 0);
	assert_int_equal(umdev_vpd_driver_ok(&drv), 0);
	assert_int_equal(paged_rw(VIRTIO_BLK_T_IN, 0, 4096, 0, 300), 0xee);
	assert_int_equal(umdev_vpd_kick(&drv, 0), 0);
	assert_int_equal(umdev_vpd_kick(&drv, 0), 0);
	assert_int_equal(blk_done_at(0, PAGED_REQ, 100), 0xee);
	assert_int_equal(log_count(refusal), 1);
	assert_int_equal(umdev_vfuc_remap_page(&cli, used & ~4095ull, ALL_RW), 0);
	assert_int_equal(umdev_vpd_kick(&drv, 0), 0);
	assert_int_equal(blk_done_at(0, PAGED_REQ, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	viommu_io(900);
	assert_int_equal(log_count(refusal), 1);
	close_dev();
}

static void test_hostile_registers(void **state)
{
	uint8_t b3[3];
	uint32_t v;
	uint8_t data[4];
	unsigned pc;

	(void)state;
	open_dev(srv.sock);
	/* Widths and alignments a driver must not use are refused. */
	assert_true(umdev_vfuc_region_read(&cli, 4, VPCI_COMMON_DF, b3, 3) < 0);
	assert_true(umdev_vpd_common_read(&drv, VPCI_COMMON_DF, 2, &(uint64_t){ 0 }) < 0);
	assert_true(umdev_vpd_common_read(&drv, VPCI_COMMON_STATUS, 4, &(uint64_t){ 0 }) < 0);
	assert_true(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_SIZE + 1, 1, 1) < 0);
	/* Past the structure but inside its part: zeroes. Outside the BAR: refused. */
	assert_int_equal(umdev_vpd_common(&drv, 0x100, 4), 0);
	assert_true(umdev_vfuc_region_read(&cli, 4, 0x8000, &v, 4) < 0);
	/* Read-only fields stay as they are. */
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_NUMQ, 2, 99), 0);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_NUMQ, 2), NQ);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_NOFF, 2, 77), 0);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_Q_NOFF, 2), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_CFGGEN, 1, 9), 0);
	/* Queue sizes out of range or not a power of two are ignored. */
	assert_int_equal(umdev_vpd_negotiate(&drv, WANT), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_SELECT, 2, 0), 0);
	for (unsigned i = 0; i < 4; i++) {
		static const uint16_t bad[] = { 0, 3, 512, 0xffff };

		assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_SIZE, 2, bad[i]), 0);
		assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_Q_SIZE, 2), 256);
	}
	/* A vector the function lacks reads back as NO_VECTOR. */
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_MSIX, 2, 500), 0);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* A queue that does not exist has size 0 and cannot be enabled. */
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_SELECT, 2, 999), 0);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_Q_SIZE, 2), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_ENABLE, 2, 1), 0);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_Q_ENABLE, 2), 0);
	/* Clearing status bits without a reset is ignored. */
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_STATUS, 1, 1), 0);
	assert_true(umdev_vpd_status(&drv) & VIRTIO_STATUS_FEATURES_OK);
	/* A ring outside guest memory never runs; the notify of a queue we lack is harmless. */
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_SELECT, 2, 0), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_DESC, 4, 0x1000), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_AVAIL, 4, 0x2000), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_USED, 4, 0x3000), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_ENABLE, 2, 1), 0);
	assert_int_equal(umdev_vpd_driver_ok(&drv), 0);
	assert_int_equal(umdev_vpd_kick(&drv, 0), 0);
	v = 0;
	assert_int_equal(umdev_vfuc_region_write(&cli, 4, drv.notify.offset + 4 * 200, &v, 2), 0);
	/* Addresses of an enabled queue cannot change under it. */
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_Q_DESC, 4, RING(0)), 0);
	assert_int_equal(umdev_vpd_common(&drv, VPCI_COMMON_Q_DESC, 4), 0x1000);
	/* The PCI_CFG window reaches the common structure through config space. */
	pc = drv.pcicfg.cap;
	assert_int_equal(umdev_vfuc_cfg_write(&cli, pc + VPCI_CAP_BAR, 4, 1), 0);
	assert_int_equal(umdev_vfuc_cfg_write(&cli, pc + VPCI_CAP_OFFSET,
					      drv.common.offset + VPCI_COMMON_NUMQ, 4), 0);
	assert_int_equal(umdev_vfuc_cfg_write(&cli, pc + VPCI_CAP_LENGTH, 2, 4), 0);
	assert_int_equal(umdev_vfuc_cfg_read(&cli, pc + VPCI_PCICFG_DATA, data, 4), 0);
	assert_int_equal(data[0] | data[1] << 8, NQ);
	/* The window's type and its other caps' fields are read-only. */
	assert_int_equal(umdev_vfuc_cfg_write(&cli, drv.common.cap + VPCI_CAP_OFFSET, 0x1234, 4), 0);
	assert_int_equal(umdev_vfuc_cfg_read(&cli, drv.common.cap + VPCI_CAP_OFFSET, &v, 4), 0);
	assert_int_equal(v, drv.common.offset);
	/* After all that, a reset brings back a working device. */
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_STATUS, 1, 0), 0);
	bring_up(1, true);
	blk_post(0, VIRTIO_BLK_T_IN, 0, 512);
	assert_int_equal(blk_done(0, PROTO_IO_TIMEOUT_MS), VIRTIO_BLK_S_OK);
	close_dev();
}

/* virtio-scsi through the same transport: INQUIRY on the request queue. */
static void test_scsi_inquiry(void **state)
{
	uint64_t a = AREA(2);
	struct virtio_scsi_cmd_req *req;
	struct virtio_scsi_cmd_resp *resp;
	uint8_t *cdb, *inq;
	uint32_t id;
	uint16_t head;
	uint32_t len;

	(void)state;
	open_dev(srv.sock2);
	assert_int_equal(umdev_vfuc_cfg_read(&cli, 0, &id, 4), 0);
	assert_int_equal(id, 0x1af4u | (0x1040u + VIRTIO_ID_SCSI) << 16);
	assert_int_equal(drv.num_queues, 3); /* control, event, one request queue */
	bring_up(3, true);
	req = umdev_vfuc_mem_ptr(&cli, a, 64);
	memset(req, 0, 64);
	req->lun[0] = 1;
	cdb = (uint8_t *)req + sizeof(*req);
	cdb[0] = 0x12; /* INQUIRY */
	cdb[4] = 96;
	resp = umdev_vfuc_mem_ptr(&cli, a + 1024, 12 + 96);
	memset(resp, 0xff, 12 + 96);
	inq = umdev_vfuc_mem_ptr(&cli, a + 4096, 96);
	memset(inq, 0, 96);
	{
		struct umdev_vqd_buf b[3] = {
			{ a, sizeof(*req) + 32, false },
			{ a + 1024, 12 + 96, true },
			{ a + 4096, 96, true },
		};

		assert_true(umdev_vqd_add(&drv.q[2], b, 3, 0) >= 0);
	}
	assert_int_equal(umdev_vpd_kick(&drv, 2), 0);
	assert_true(umdev_vpd_wait_irq(&drv, 3, PROTO_IO_TIMEOUT_MS) > 0);
	assert_int_equal(umdev_vpd_wait_used(&drv, 2, PROTO_IO_TIMEOUT_MS, &head, &len), 1);
	assert_int_equal(resp->response, VIRTIO_SCSI_S_OK);
	assert_int_equal(resp->status, 0);
	assert_int_equal(inq[0] & 0x1f, 0); /* direct-access block device */
	close_dev();
}

/* One chain on the control queue (0): @req readable, @resp_len writable at AREA(0)+2048. */
static void *ctrl_req(const void *req, uint32_t len, uint32_t resp_len)
{
	uint64_t a = AREA(0);
	struct umdev_vqd_buf b[2] = { { a, len, false }, { a + 2048, resp_len, true } };
	uint16_t head;
	uint32_t used;

	memcpy(umdev_vfuc_mem_ptr(&cli, a, len), req, len);
	memset(umdev_vfuc_mem_ptr(&cli, a + 2048, resp_len), 0xee, resp_len);
	assert_true(umdev_vqd_add(&drv.q[0], b, 2, 0) >= 0);
	assert_int_equal(umdev_vpd_kick(&drv, 0), 0);
	/*
	 * The interrupt before reaping: with EVENT_IDX a driver that has
	 * already reaped the entry asked for no interrupt for it.
	 */
	assert_true(umdev_vpd_wait_irq(&drv, 1, PROTO_IO_TIMEOUT_MS) > 0);
	assert_int_equal(umdev_vpd_wait_used(&drv, 0, PROTO_IO_TIMEOUT_MS, &head, &used), 1);
	assert_int_equal(used, resp_len);
	return umdev_vfuc_mem_ptr(&cli, a + 2048, resp_len);
}

/* virtio-scsi's control queue through this transport: a TMF and an AN query. */
static void test_scsi_tmf_an(void **state)
{
	struct virtio_scsi_ctrl_tmf_req tmf = { .type = VIRTIO_SCSI_T_TMF,
						.subtype = VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET,
						.lun = { 1, 0, 0x40, 0 } };
	struct virtio_scsi_ctrl_an_req an = { .type = VIRTIO_SCSI_T_AN_QUERY,
					      .lun = { 1, 0, 0x40, 0 },
					      .event_requested = 0x7e };
	struct virtio_scsi_ctrl_tmf_resp *tr;
	struct virtio_scsi_ctrl_an_resp *ar;

	(void)state;
	open_dev(srv.sock2);
	bring_up(3, true);
	tr = ctrl_req(&tmf, sizeof(tmf), sizeof(*tr));
	assert_int_equal(tr->response, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	tmf.lun[3] = 77; /* no such LUN */
	tr = ctrl_req(&tmf, sizeof(tmf), sizeof(*tr));
	assert_int_equal(tr->response, VIRTIO_SCSI_S_INCORRECT_LUN);
	ar = ctrl_req(&an, sizeof(an), sizeof(*ar));
	assert_int_equal(ar->response, VIRTIO_SCSI_S_OK);
	assert_int_equal(ar->event_actual & ~0x7eu, 0);
	close_dev();
}

/* Run umdevctl against our daemon; its stdout goes to @out. Returns its exit status. */
static int ctl(const char *args, char *out, size_t outlen)
{
	char cmd[1024];
	const char *exe = getenv("UMDEVCTL");
	size_t n = 0;
	FILE *f;

	assert_non_null(exe);
	snprintf(cmd, sizeof(cmd), "%s --rpc %s %s", exe, rpc_path, args);
	f = popen(cmd, "r");
	assert_non_null(f);
	if (out) {
		n = fread(out, 1, outlen - 1, f);
		out[n] = 0;
	} else {
		char sink[256];

		while (fread(sink, 1, sizeof(sink), f) > 0)
			;
	}
	return WEXITSTATUS(pclose(f));
}

/* LUN hot-plug over this transport: the event queue reports it, with its own vector. */
static void test_scsi_hotplug_and_list(void **state)
{
	uint64_t a = AREA(1);
	struct virtio_scsi_event *ev;
	char out[4096];
	uint16_t head;
	uint32_t len;

	(void)state;
	assert_int_equal(ctl("list", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "vfio-user"));
	open_dev(srv.sock2);
	bring_up(3, true);
	ev = umdev_vfuc_mem_ptr(&cli, a, sizeof(*ev));
	memset(ev, 0xff, sizeof(*ev));
	{
		struct umdev_vqd_buf b = { a, sizeof(*ev), true };

		assert_true(umdev_vqd_add(&drv.q[1], &b, 1, 0) >= 0);
	}
	assert_int_equal(umdev_vpd_kick(&drv, 1), 0);
	assert_int_equal(ctl("lun-add vs0 0:3 ram:1M", NULL, 0), 0);
	assert_true(umdev_vpd_wait_irq(&drv, 2, PROTO_IO_TIMEOUT_MS) > 0);
	assert_int_equal(umdev_vpd_wait_used(&drv, 1, PROTO_IO_TIMEOUT_MS, &head, &len), 1);
	assert_int_equal(ev->event, VIRTIO_SCSI_T_TRANSPORT_RESET);
	assert_int_equal(ev->lun[1], 0);
	assert_int_equal(ev->lun[3], 3);
	assert_int_equal(ctl("lun-remove vs0 0:3", NULL, 0), 0);
	close_dev();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_and_caps),
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_io_every_queue_msix),
		cmocka_unit_test(test_intx_isr),
		cmocka_unit_test(test_reset_and_flr),
		cmocka_unit_test(test_bus_master_off),
		cmocka_unit_test(test_hostile_registers),
		cmocka_unit_test(test_fdless_buffers),
		cmocka_unit_test(test_window_added_while_running),
		cmocka_unit_test(test_packed_rings),
		cmocka_unit_test(test_rings_in_page_windows),
		cmocka_unit_test(test_scsi_inquiry),
		cmocka_unit_test(test_scsi_hotplug_and_list),
		cmocka_unit_test(test_scsi_tmf_an),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
