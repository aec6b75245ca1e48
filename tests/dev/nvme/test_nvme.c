/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe controller unit tests: our host driver (src/client/nvme_drv.c)
 * against the controller on a faked transport (nvme_fixture.h). Covers
 * bring-up, identify, queues, PRP and SGL data pointers, every error status
 * the controller gives, shadow doorbells, interrupts and coalescing,
 * namespace hot-add/remove with its async event, reset and re-enable, and
 * CSTS.CFS on garbage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <sys/mman.h>

#include "nvme_fixture.h"

#define SC(sct, sc) ((sct) << 8 | (sc))

static int setup(void **state)
{
	struct fx *f = fx_new(false);
	uint32_t nsid;

	if (!f)
		return -1;
	/* ns 1: the first half of a 4 MiB backend; ns 2: 1 MiB. */
	if (fx_add_ram_ns(f, "ram:4M", 0, 2u << 20, &nsid) < 0 || nsid != 1)
		return -1;
	if (fx_add_ram_ns(f, "ram:1M", 0, 0, &nsid) < 0 || nsid != 2)
		return -1;
	*state = f;
	return 0;
}

static int setup_threaded(void **state)
{
	struct fx *f = fx_new(true);
	uint32_t nsid;

	if (!f || fx_add_ram_ns(f, "ram:4M", 0, 0, &nsid) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

static void up(struct fx *f, unsigned qpairs)
{
	assert_int_equal(umdev_nvmed_enable(&f->d, 32), 0);
	for (unsigned q = 1; q <= qpairs; q++)
		assert_int_equal(umdev_nvmed_create_qpair(&f->d, (uint16_t)q, 64, true), 0);
}

static int rw(struct fx *f, uint16_t qid, uint8_t op, uint32_t nsid, uint64_t slba, uint32_t nlb,
	      uint64_t buf, bool sgl, bool split)
{
	struct nvme_sqe c;

	assert_int_equal(umdev_nvmed_build_rw(&f->d, &c, op, nsid, slba, nlb, buf,
					      (uint64_t)nlb * 512, sgl, split), 0);
	return umdev_nvmed_cmd(&f->d, qid, &c, NULL);
}

static void fill(struct fx *f, uint64_t iova, size_t len, unsigned seed)
{
	uint8_t *p = umdev_nvmed_ptr(&f->d, iova);

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 9));
}

static void test_bringup_identify(void **state)
{
	struct fx *f = *state;
	uint64_t buf = umdev_nvmed_alloc(&f->d, 4096, 4096);
	struct nvme_id_ctrl *ic = umdev_nvmed_ptr(&f->d, buf);
	struct nvme_id_ns *in = umdev_nvmed_ptr(&f->d, buf);
	uint32_t *list = umdev_nvmed_ptr(&f->d, buf), csts;
	uint8_t *desc = umdev_nvmed_ptr(&f->d, buf);

	assert_int_equal(umdev_nvmed_enable(&f->d, 32), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CSTS, &csts), 0);
	assert_int_equal(csts, NVME_CSTS_RDY);
	assert_int_equal(NVME_CAP_MQES(f->d.cap), 1023);
	assert_true(f->d.cap & NVME_CAP_CQR);
	fx_irqs(f, 0);
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_CTRL, 0, buf), 0);
	assert_true(fx_irqs(f, 0) >= 1); /* the admin CQ signals vector 0 */
	assert_int_equal(ic->vid, UMDEV_NVME_PCI_VENDOR);
	assert_int_equal(ic->mdts, NVME_MDTS);
	assert_int_equal(ic->sqes, 0x66);
	assert_int_equal(ic->cqes, 0x44);
	assert_true(ic->oacs & NVME_OACS_DBBUF);
	assert_int_equal(ic->nn, UMDEV_NVME_MAX_NS);
	assert_true(ic->sgls & 1);
	assert_memory_equal(ic->sn, "nvmet ", 6);
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_NS, 1, buf), 0);
	assert_int_equal(in->nsze, (2u << 20) / 512);
	assert_int_equal(in->lbaf[0].lbads, 9);
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_NS, 2, buf), 0);
	assert_int_equal(in->nsze, (1u << 20) / 512);
	/* An allocated-range but inactive NSID reads as zeroes. */
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_NS, 9, buf), 0);
	assert_int_equal(in->nsze, 0);
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_NS, 0, buf),
			 SC(0, NVME_SC_INVALID_NS));
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_ACTIVE_NS_LIST, 0, buf), 0);
	assert_int_equal(list[0], 1);
	assert_int_equal(list[1], 2);
	assert_int_equal(list[2], 0);
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_ACTIVE_NS_LIST, 1, buf), 0);
	assert_int_equal(list[0], 2);
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_NS_DESC_LIST, 1, buf), 0);
	assert_int_equal(desc[0], NVME_NIDT_NGUID);
	assert_int_equal(desc[1], 16);
	assert_int_equal(desc[20], NVME_NIDT_CSI);
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_NS_DESC_LIST, 7, buf),
			 SC(0, NVME_SC_INVALID_NS));
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_CS_CTRL, 0, buf), 0);
	assert_int_equal(umdev_nvmed_identify(&f->d, 0x42, 0, buf), SC(0, NVME_SC_INVALID_FIELD));
}

static void test_io_prp(void **state)
{
	struct fx *f = *state;
	uint64_t wbuf = umdev_nvmed_alloc(&f->d, 256 * 1024, 4096);
	uint64_t rbuf = umdev_nvmed_alloc(&f->d, 256 * 1024 + 4096, 4096);

	up(f, 2);
	fx_irqs(f, 1);
	/* 256 KiB (MDTS) through a PRP list. */
	fill(f, wbuf, 256 * 1024, 3);
	assert_int_equal(rw(f, 1, NVME_CMD_WRITE, 1, 100, 512, wbuf, false, false), 0);
	assert_true(fx_irqs(f, 1) >= 1);
	assert_int_equal(rw(f, 2, NVME_CMD_READ, 1, 100, 512, rbuf, false, false), 0);
	assert_memory_equal(umdev_nvmed_ptr(&f->d, wbuf), umdev_nvmed_ptr(&f->d, rbuf), 256 * 1024);
	/* PRP1 with an offset, crossing into PRP2 as a data page. */
	memset(umdev_nvmed_ptr(&f->d, rbuf), 0, 8192);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 100, 8, rbuf + 0x200, false, false), 0);
	assert_memory_equal(umdev_nvmed_ptr(&f->d, wbuf), umdev_nvmed_ptr(&f->d, rbuf + 0x200),
			    4096);
	/* Namespace 2 is its own backend: block 100 there is still zero. */
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 2, 100, 1, rbuf, false, false), 0);
	assert_true(((uint8_t *)umdev_nvmed_ptr(&f->d, rbuf))[7] == 0);
	/* A PRP list that chains: its first page holds 1 entry and the pointer on. */
	{
		struct nvme_sqe c;
		uint64_t lists = umdev_nvmed_alloc(&f->d, 8192, 4096);
		uint64_t *l1 = umdev_nvmed_ptr(&f->d, lists + 4096 - 16);
		uint64_t *l2 = umdev_nvmed_ptr(&f->d, lists + 4096);

		memset(umdev_nvmed_ptr(&f->d, rbuf), 0, 16384);
		assert_int_equal(umdev_nvmed_build_rw(&f->d, &c, NVME_CMD_READ, 1, 100, 32, rbuf,
						      16384, false, false), 0);
		l1[0] = rbuf + 4096;
		l1[1] = lists + 4096; /* last slot of the page: next list */
		l2[0] = rbuf + 8192;
		l2[1] = rbuf + 12288;
		c.dptr.prp.prp2 = lists + 4096 - 16;
		assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), 0);
		assert_memory_equal(umdev_nvmed_ptr(&f->d, wbuf), umdev_nvmed_ptr(&f->d, rbuf),
				    16384);
		/* The last slot holding data where a chain pointer belongs. */
		l1[1] = lists + 4096 - 16;
		assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL),
				 SC(0, NVME_SC_INVALID_PRP_OFFSET));
		/* A one-slot list page that chains to itself forever is cut off. */
		l1[1] = lists + 4096 - 8;
		c.dptr.prp.prp2 = lists + 4096 - 8;
		assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_DATA_XFER_ERROR));
	}
	/* Too big for MDTS. */
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 0, 513, rbuf, false, false),
			 SC(0, NVME_SC_INVALID_FIELD));
}

static void test_io_sgl(void **state)
{
	struct fx *f = *state;
	uint64_t wbuf = umdev_nvmed_alloc(&f->d, 64 * 1024, 4096);
	uint64_t rbuf = umdev_nvmed_alloc(&f->d, 64 * 1024, 4096);
	struct nvme_sqe c;

	up(f, 1);
	fill(f, wbuf, 64 * 1024, 11);
	assert_int_equal(rw(f, 1, NVME_CMD_WRITE, 1, 8, 128, wbuf, true, false), 0);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 8, 128, rbuf, true, true), 0);
	assert_memory_equal(umdev_nvmed_ptr(&f->d, wbuf), umdev_nvmed_ptr(&f->d, rbuf), 64 * 1024);
	/* A data block shorter than the transfer. */
	assert_int_equal(umdev_nvmed_build_rw(&f->d, &c, NVME_CMD_READ, 1, 0, 8, rbuf, 4096, true,
					      false), 0);
	c.dptr.sgl.length = 1024;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_DATA_SGL_LEN_INVALID));
	/* Keyed data blocks are not offered. */
	c.dptr.sgl.length = 4096;
	c.dptr.sgl.type = NVME_SGL_TYPE_KEYED_DATA_BLOCK << 4;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_SGL_DESC_TYPE_INVALID));
	/* A segment whose length is not a whole number of descriptors. */
	c.dptr.sgl.type = NVME_SGL_TYPE_LAST_SEGMENT << 4;
	c.dptr.sgl.length = 20;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_INVALID_SGL_SEG_DESC));
	/* A segment chaining to itself forever is cut off. */
	{
		uint64_t seg = umdev_nvmed_alloc(&f->d, 16, 16);
		struct nvme_sgl_desc *d = umdev_nvmed_ptr(&f->d, seg);

		d->addr = seg;
		d->length = 16;
		d->type = NVME_SGL_TYPE_SEGMENT << 4;
		c.dptr.sgl.addr = seg;
		c.dptr.sgl.length = 16;
		c.dptr.sgl.type = NVME_SGL_TYPE_SEGMENT << 4;
		assert_int_not_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), 0);
	}
	/* Admin commands take PRPs only. */
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_IDENTIFY;
	c.cdw10 = NVME_CNS_CTRL;
	c.flags = NVME_PSDT_SGL_MPTR_CONTIG << NVME_CMD_PSDT_SHIFT;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(0, NVME_SC_INVALID_FIELD));
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	uint64_t buf = umdev_nvmed_alloc(&f->d, 16384, 4096);
	uint64_t qmem = umdev_nvmed_alloc(&f->d, 65536, 4096);
	struct nvme_sqe c;
	uint32_t dw0;

	up(f, 1);
	memset(&c, 0, sizeof(c));
	c.opcode = 0x7f;
	c.nsid = 1;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_INVALID_OPCODE));
	memset(&c, 0, sizeof(c));
	c.opcode = 0x55;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(0, NVME_SC_INVALID_OPCODE));
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 4096 - 1, 2, buf, false, false),
			 SC(0, NVME_SC_LBA_RANGE));
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, ~0ull, 1, buf, false, false),
			 SC(0, NVME_SC_LBA_RANGE));
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 3, 0, 1, buf, false, false),
			 SC(0, NVME_SC_INVALID_NS));
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 0xffffffffu, 0, 1, buf, false, false),
			 SC(0, NVME_SC_INVALID_NS));
	/* PRP2 as a data page must be page aligned; PRP1 dword aligned. */
	assert_int_equal(umdev_nvmed_build_rw(&f->d, &c, NVME_CMD_READ, 1, 0, 16, buf, 8192, false,
					      false), 0);
	c.dptr.prp.prp2 += 8;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_INVALID_PRP_OFFSET));
	c.dptr.prp.prp1 = buf + 2;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_INVALID_PRP_OFFSET));
	/* Data outside guest memory. */
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 0, 1, 0x1000, false, false),
			 SC(0, NVME_SC_DATA_XFER_ERROR));
	/* A PRP list entry with an offset. */
	assert_int_equal(umdev_nvmed_build_rw(&f->d, &c, NVME_CMD_READ, 1, 0, 24, buf, 12288,
					      false, false), 0);
	((uint64_t *)umdev_nvmed_ptr(&f->d, c.dptr.prp.prp2))[1] += 0x10;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_INVALID_PRP_OFFSET));
	/* Fused operations are not offered. */
	assert_int_equal(umdev_nvmed_build_rw(&f->d, &c, NVME_CMD_READ, 1, 0, 1, buf, 512, false,
					      false), 0);
	c.flags |= 1;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_INVALID_FIELD));

	/* Queue management statuses. */
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_CREATE_CQ;
	c.dptr.prp.prp1 = qmem;
	c.cdw10 = 15u << 16 | 0; /* qid 0 */
	c.cdw11 = NVME_QUEUE_PC | NVME_CQ_IEN;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_QID_INVALID));
	c.cdw10 = 15u << 16 | (FX_QUEUES + 1);
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_QID_INVALID));
	c.cdw10 = 1u << 16 | 1; /* qid 1 exists */
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_QID_INVALID));
	c.cdw10 = 4096u << 16 | 2;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_QUEUE_SIZE));
	c.cdw10 = 0u << 16 | 2;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_QUEUE_SIZE));
	c.cdw10 = 15u << 16 | 2;
	c.cdw11 = NVME_QUEUE_PC | NVME_CQ_IEN | 77u << NVME_CQ_IV_SHIFT;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_INVALID_VECTOR));
	c.cdw11 = NVME_CQ_IEN;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(0, NVME_SC_INVALID_FIELD));
	c.cdw11 = NVME_QUEUE_PC;
	c.dptr.prp.prp1 = qmem + 64;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(0, NVME_SC_INVALID_PRP_OFFSET));
	c.dptr.prp.prp1 = 0x2000; /* not guest memory */
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(0, NVME_SC_DATA_XFER_ERROR));
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_CREATE_SQ;
	c.dptr.prp.prp1 = qmem;
	c.cdw10 = 15u << 16 | 2;
	c.cdw11 = NVME_QUEUE_PC | 3u << NVME_SQ_CQID_SHIFT; /* CQ 3 does not exist */
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_CQ_INVALID));
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_DELETE_CQ;
	c.cdw10 = 1; /* SQ 1 still posts there */
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_INVALID_QUEUE_DELETION));
	c.opcode = NVME_ADM_DELETE_SQ;
	c.cdw10 = 3;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_QID_INVALID));
	c.cdw10 = 0;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_QID_INVALID));

	/* Features and logs. */
	assert_int_equal(umdev_nvmed_set_features(&f->d, NVME_FEAT_NUM_QUEUES, 0, NULL),
			 SC(0, NVME_SC_CMD_SEQ_ERROR)); /* I/O queues exist */
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_SET_FEATURES;
	c.cdw10 = NVME_FEAT_ARBITRATION | NVME_FEAT_SAVE;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_FEATURE_NOT_SAVEABLE));
	assert_int_equal(umdev_nvmed_set_features(&f->d, 0x77, 0, NULL),
			 SC(0, NVME_SC_INVALID_FIELD));
	assert_int_equal(umdev_nvmed_set_features(&f->d, NVME_FEAT_POWER_MGMT, 3, NULL),
			 SC(0, NVME_SC_INVALID_FIELD));
	assert_int_equal(umdev_nvmed_get_features(&f->d, NVME_FEAT_NUM_QUEUES, 0, &dw0), 0);
	assert_int_equal(dw0, (FX_QUEUES - 1) << 16 | (FX_QUEUES - 1));
	assert_int_equal(umdev_nvmed_set_features(&f->d, NVME_FEAT_VOLATILE_WC, 0, NULL), 0);
	assert_int_equal(umdev_nvmed_get_features(&f->d, NVME_FEAT_VOLATILE_WC, 0, &dw0), 0);
	assert_int_equal(dw0, 0);
	assert_int_equal(umdev_nvmed_set_features(&f->d, NVME_FEAT_TEMP_THRESH, 0x100, NULL), 0);
	assert_int_equal(umdev_nvmed_get_features(&f->d, NVME_FEAT_TEMP_THRESH, 0, &dw0), 0);
	assert_int_equal(dw0, 0x100);
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_GET_LOG_PAGE;
	c.dptr.prp.prp1 = buf;
	c.cdw10 = 0x33 | 127u << 16;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(1, NVME_SC_INVALID_LOG_PAGE));
	c.cdw10 = NVME_LOG_SMART | 127u << 16;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), 0);
	/* 300 K is above the 0x100 K threshold set above: temperature warning. */
	assert_int_equal(((struct nvme_smart_log *)umdev_nvmed_ptr(&f->d, buf))->critical_warning,
			 0x2);
	c.cdw10 = NVME_LOG_ERROR | 15u << 16;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), 0);
	assert_true(((struct nvme_error_log *)umdev_nvmed_ptr(&f->d, buf))->error_count > 10);
	c.cdw10 = NVME_LOG_CMD_EFFECTS | 1023u << 16;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), 0);
	assert_true(((struct nvme_cmd_effects_log *)umdev_nvmed_ptr(&f->d, buf))
			    ->iocs[NVME_CMD_WRITE] & NVME_CMD_EFFECTS_CSUPP);
	c.cdw10 = NVME_LOG_FW_SLOT | 127u << 16;
	c.cdw12 = 2; /* offset not dword aligned */
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(0, NVME_SC_INVALID_FIELD));
	c.cdw12 = 4096; /* beyond the page */
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(0, NVME_SC_INVALID_FIELD));
	/* Abort: nothing is abortable; reported as not aborted. */
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_ABORT;
	c.cdw10 = 1 | 5u << 16;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, &dw0), 0);
	assert_int_equal(dw0 & 1, 1);
	/* Keep Alive is not advertised. */
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_KEEP_ALIVE;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), SC(0, NVME_SC_INVALID_OPCODE));
}

static void test_io_commands(void **state)
{
	struct fx *f = *state;
	uint64_t wbuf = umdev_nvmed_alloc(&f->d, 8192, 4096);
	uint64_t rbuf = umdev_nvmed_alloc(&f->d, 8192, 4096);
	uint64_t rng = umdev_nvmed_alloc(&f->d, 4096, 4096);
	struct nvme_dsm_range *r = umdev_nvmed_ptr(&f->d, rng);
	struct nvme_sqe c;

	up(f, 1);
	fill(f, wbuf, 8192, 5);
	assert_int_equal(rw(f, 1, NVME_CMD_WRITE, 1, 40, 16, wbuf, false, false), 0);
	assert_int_equal(rw(f, 1, NVME_CMD_COMPARE, 1, 40, 16, wbuf, false, false), 0);
	((uint8_t *)umdev_nvmed_ptr(&f->d, wbuf))[5000] ^= 1;
	assert_int_equal(rw(f, 1, NVME_CMD_COMPARE, 1, 40, 16, wbuf, false, false),
			 SC(2, NVME_SC_COMPARE_FAILED));
	/* Write Zeroes, then the blocks read back as zeroes. */
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_CMD_WRITE_ZEROES;
	c.nsid = 1;
	c.cdw10 = 41;
	c.cdw12 = 1; /* 2 blocks */
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), 0);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 40, 4, rbuf, false, false), 0);
	assert_memory_equal(umdev_nvmed_ptr(&f->d, rbuf), umdev_nvmed_ptr(&f->d, wbuf), 512);
	for (unsigned i = 512; i < 1536; i++)
		assert_int_equal(((uint8_t *)umdev_nvmed_ptr(&f->d, rbuf))[i], 0);
	c.cdw10 = 4095;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_LBA_RANGE));
	/* Dataset Management: deallocate two ranges; one out of range fails. */
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_CMD_DSM;
	c.nsid = 1;
	c.dptr.prp.prp1 = rng;
	c.cdw10 = 1;
	c.cdw11 = NVME_DSM_AD;
	r[0].slba = 40;
	r[0].nlb = 1;
	r[1].slba = 100;
	r[1].nlb = 8;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), 0);
	r[1].slba = 4090;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_LBA_RANGE));
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_CMD_FLUSH;
	c.nsid = 1;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), 0);
	c.nsid = 0xffffffffu;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 1, &c, NULL), SC(0, NVME_SC_INVALID_NS));
}

static void test_shadow_doorbells(void **state)
{
	struct fx *f = *state;
	uint64_t buf = umdev_nvmed_alloc(&f->d, 4096, 4096);
	struct nvme_sqe c[8];
	struct nvme_cqe e;
	unsigned before, start;

	assert_int_equal(umdev_nvmed_enable(&f->d, 32), 0);
	assert_int_equal(umdev_nvmed_dbbuf(&f->d), 0);
	assert_int_equal(umdev_nvmed_create_qpair(&f->d, 1, 64, true), 0);
	start = f->d.db_writes;
	for (unsigned round = 0; round < 20; round++) {
		for (unsigned i = 0; i < 8; i++)
			assert_int_equal(umdev_nvmed_build_rw(&f->d, &c[i], NVME_CMD_READ, 1, i, 1,
							      buf, 512, false, false), 0);
		before = f->d.db_writes;
		assert_true(umdev_nvmed_submit_batch(&f->d, 1, c, 8) >= 0);
		for (unsigned i = 0; i < 8; i++) {
			assert_int_equal(umdev_nvmed_reap(&f->d, 1, &e), 0);
			assert_int_equal((e.status >> 1) & 0x7ff, 0);
		}
		assert_true(f->d.db_writes - before <= 2);
	}
	/*
	 * A polling controller leaves EventIdx behind: the host rings the real
	 * doorbell only when its tail passes it, at most about once per wrap
	 * of the 64-entry queue (160 commands), plus once per CQ wrap.
	 */
	assert_true(f->d.db_writes - start <= 8);
	/* Going to sleep arms EventIdx at the tails seen: the next update rings. */
	nvme_eventidx_arm(f->n->lp[0]);
	assert_int_equal(f->d.eventidx[2], f->d.q[1].sq_tail);
	before = f->d.db_writes;
	assert_true(umdev_nvmed_submit_batch(&f->d, 1, c, 1) >= 0);
	assert_int_equal(f->d.db_writes - before, 1);
	assert_int_equal(umdev_nvmed_reap(&f->d, 1, &e), 0);
	/* With shadows on, the real SQ doorbell may lag far behind: the device does not care. */
	assert_int_equal(f->d.shadow[2], f->d.q[1].sq_tail);
}

/* Completions of one pass raise one MSI-X message per CQ, not one each. */
static void test_irq_batching(void **state)
{
	struct fx *f = *state;
	uint64_t buf = umdev_nvmed_alloc(&f->d, 4096, 4096);
	struct nvme_sqe c[8];
	struct nvme_cqe e;

	up(f, 2);
	fx_irqs(f, 1);
	fx_irqs(f, 2);
	for (uint16_t q = 1; q <= 2; q++) {
		for (unsigned i = 0; i < 8; i++)
			assert_int_equal(umdev_nvmed_build_rw(&f->d, &c[i], NVME_CMD_READ, 1, i, 1,
							      buf, 512, false, false), 0);
		/* One doorbell, one pass (the kick): 8 completions. */
		assert_true(umdev_nvmed_submit_batch(&f->d, q, c, 8) >= 0);
		assert_int_equal(fx_irqs(f, q), 1);
		for (unsigned i = 0; i < 8; i++)
			assert_int_equal(umdev_nvmed_reap(&f->d, q, &e), 0);
	}
}

static void test_irq_coalescing(void **state)
{
	struct fx *f = *state;
	uint64_t buf = umdev_nvmed_alloc(&f->d, 4096, 4096);
	struct nvme_sqe c[4];
	struct nvme_cqe e;
	struct nvme_sqe one;

	up(f, 1);
	/* Aggregation threshold 4 entries, time 25.5 ms. */
	assert_int_equal(umdev_nvmed_set_features(&f->d, NVME_FEAT_IRQ_COALESCE, 3 | 255u << 8,
						  NULL), 0);
	fx_irqs(f, 1);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(umdev_nvmed_build_rw(&f->d, &c[i], NVME_CMD_READ, 1, i, 1, buf, 512,
						      false, false), 0);
	assert_true(umdev_nvmed_submit_batch(&f->d, 1, c, 2) >= 0);
	assert_true(umdev_nvmed_cq_ready(&f->d, 1));
	assert_int_equal(fx_irqs(f, 1), 0); /* 2 < 4: held */
	assert_true(umdev_nvmed_submit_batch(&f->d, 1, c, 2) >= 0);
	assert_int_equal(fx_irqs(f, 1), 1); /* 4 entries: one interrupt */
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(umdev_nvmed_reap(&f->d, 1, &e), 0);
	/* The aggregation time elapses. */
	assert_true(umdev_nvmed_submit_batch(&f->d, 1, c, 1) >= 0);
	assert_int_equal(fx_irqs(f, 1), 0);
	usleep(30000);
	fx_kick(f);
	assert_int_equal(fx_irqs(f, 1), 1);
	assert_int_equal(umdev_nvmed_reap(&f->d, 1, &e), 0);
	/* Coalescing disabled for vector 1. */
	assert_int_equal(umdev_nvmed_set_features(&f->d, NVME_FEAT_IRQ_CONFIG,
						  1 | NVME_IRQ_CONFIG_CD, NULL), 0);
	one = c[0];
	assert_true(umdev_nvmed_submit(&f->d, 1, &one) >= 0);
	assert_int_equal(fx_irqs(f, 1), 1);
	assert_int_equal(umdev_nvmed_reap(&f->d, 1, &e), 0);
	/* A CQ created without interrupts never signals. */
	assert_int_equal(umdev_nvmed_create_qpair(&f->d, 2, 16, false), 0);
	fx_irqs(f, 2);
	one = c[0];
	assert_int_equal(umdev_nvmed_cmd(&f->d, 2, &one, NULL), 0);
	assert_int_equal(fx_irqs(f, 2), 0);
}

static void test_reset_reenable(void **state)
{
	struct fx *f = *state;
	uint64_t buf = umdev_nvmed_alloc(&f->d, 4096, 4096);
	uint32_t csts, cc;

	up(f, 2);
	assert_int_equal(rw(f, 2, NVME_CMD_READ, 1, 0, 1, buf, false, false), 0);
	assert_int_equal(umdev_nvmed_disable(&f->d), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CSTS, &csts), 0);
	assert_int_equal(csts, 0);
	/* Queues are gone: the same qids can be created again. */
	up(f, 2);
	assert_int_equal(rw(f, 2, NVME_CMD_READ, 1, 0, 1, buf, false, false), 0);
	/* Shutdown notification. */
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CC, &cc), 0);
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_CC,
						 cc | NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CSTS, &csts), 0);
	assert_int_equal((csts & NVME_CSTS_SHST_MASK) >> NVME_CSTS_SHST_SHIFT,
			 NVME_CSTS_SHST_COMPLETE);
	assert_int_equal(umdev_nvmed_disable(&f->d), 0);
	/* Function-level reset: registers back to power-on values. */
	up(f, 1);
	umdev_pci_reset(umdev_nvme_pci(f->n));
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CC, &cc), -EIO); /* MEM off */
	assert_int_equal(fx_pci_up(f), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CC, &cc), 0);
	assert_int_equal(cc, 0);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CSTS, &csts), 0);
	assert_int_equal(csts, 0);
	up(f, 1);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 0, 1, buf, false, false), 0);
}

static void test_fatal(void **state)
{
	struct fx *f = *state;
	uint32_t csts;

	up(f, 1);
	/* A tail beyond the queue: fatal, but umdevd lives on. */
	assert_int_equal(umdev_nvmed_db_write(&f->d, 2, 1000), 0);
	fx_kick(f);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CSTS, &csts), 0);
	assert_true(csts & NVME_CSTS_CFS);
	assert_int_equal(umdev_nvmed_disable(&f->d), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CSTS, &csts), 0);
	assert_int_equal(csts, 0);
	up(f, 1);
	assert_int_equal(umdev_nvmed_disable(&f->d), 0);
	/* Admin queues outside guest memory: enable fails with CFS. */
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_AQA, 0x000f000f), 0);
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_ASQ, 0x1000), 0);
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_CC, NVME_CC_EN), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CSTS, &csts), 0);
	assert_int_equal(csts & (NVME_CSTS_CFS | NVME_CSTS_RDY), NVME_CSTS_CFS);
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_CC, 0), 0);
	/* Misaligned admin queue and a bad page size are refused too. */
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_ASQ, (uint32_t)FX_IOVA + 8), 0);
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_CC, NVME_CC_EN), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CSTS, &csts), 0);
	assert_true(csts & NVME_CSTS_CFS);
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_CC, 0), 0);
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_CC,
						 NVME_CC_EN | 3u << NVME_CC_MPS_SHIFT), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CSTS, &csts), 0);
	assert_true(csts & NVME_CSTS_CFS);
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_CC, 0), 0);
	/* Garbage register writes of odd sizes are ignored. */
	{
		uint8_t b = 0xff;
		uint64_t cap;

		assert_int_equal(umdev_pci_bar_access(umdev_nvme_pci(f->n), 0, NVME_REG_CC, &b, 1,
						      true), 0);
		assert_int_equal(umdev_pci_bar_access(umdev_nvme_pci(f->n), 0, 0, &cap, 8, false),
				 0);
		assert_int_equal(cap, f->d.cap ? f->d.cap : cap);
	}
	/* Bus mastering off: nothing runs, nothing crashes; back on: works again. */
	up(f, 1);
	{
		uint16_t cmd = 0x2;
		uint64_t buf = umdev_nvmed_alloc(&f->d, 4096, 4096);
		struct nvme_sqe c;
		struct nvme_cqe e;

		assert_int_equal(umdev_pci_cfg_access(umdev_nvme_pci(f->n), 4, &cmd, 2, true), 0);
		assert_int_equal(umdev_nvmed_build_rw(&f->d, &c, NVME_CMD_READ, 1, 0, 1, buf, 512,
						      false, false), 0);
		assert_true(umdev_nvmed_submit(&f->d, 1, &c) >= 0);
		assert_false(umdev_nvmed_cq_ready(&f->d, 1));
		cmd = 0x6;
		assert_int_equal(umdev_pci_cfg_access(umdev_nvme_pci(f->n), 4, &cmd, 2, true), 0);
		assert_int_equal(umdev_nvmed_reap(&f->d, 1, &e), 0);
		assert_int_equal((e.status >> 1) & 0x7ff, 0);
	}
}

/* INTx (and the INTMS/INTMC registers, which only apply to INTx and MSI). */
static void test_intx(void **state)
{
	struct fx *f = *state;
	umdev_irq *irq = umdev_pci_irq(umdev_nvme_pci(f->n));
	uint64_t buf = umdev_nvmed_alloc(&f->d, 4096, 4096), v;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), fd = dup(efd);

	up(f, 1);
	/* One mode at a time, as with VFIO: MSI-X off first. */
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_TRIGGER, 0, 0,
				       NULL, NULL, 0), 0);
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_INTX,
				       UMDEV_IRQ_SET_DATA_EVENTFD | UMDEV_IRQ_SET_ACTION_TRIGGER, 0, 1,
				       NULL, &fd, 1), 0);
	assert_int_equal(umdev_irq_mode(irq), UMDEV_IRQ_MODE_INTX);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 0, 1, buf, false, false), 0);
	assert_int_equal(read(efd, &v, 8), 8);
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_INTX,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_UNMASK, 0, 1,
				       NULL, NULL, 0), 0);
	/* Masked through INTMS: completions post, no interrupt. */
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_INTMS, 1), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_INTMS, (uint32_t *)&v), 0);
	assert_int_equal((uint32_t)v, 1);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 0, 1, buf, false, false), 0);
	assert_int_equal(read(efd, &v, 8), -1);
	/* INTMC unmasks and signals what may be waiting. */
	assert_int_equal(umdev_nvmed_reg_write32(&f->d, NVME_REG_INTMC, 1), 0);
	assert_int_equal(read(efd, &v, 8), 8);
	close(efd);
}

/* Memory goes away under live queues (a VMM remapping): pause, then resume. */
static void test_dma_remap(void **state)
{
	struct fx *f = *state;
	uint64_t buf = umdev_nvmed_alloc(&f->d, 4096, 4096);
	struct nvme_sqe c;
	struct nvme_cqe e;
	uint32_t csts;

	up(f, 1);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 0, 1, buf, false, false), 0);
	assert_int_equal(fx_unmap(f), 0);
	assert_int_equal(umdev_nvmed_build_rw(&f->d, &c, NVME_CMD_READ, 1, 0, 1, buf, 512, false,
					      false), 0);
	assert_true(umdev_nvmed_submit(&f->d, 1, &c) >= 0);
	fx_kick(f);
	assert_false(umdev_nvmed_cq_ready(&f->d, 1));
	assert_int_equal(umdev_nvmed_reg_read32(&f->d, NVME_REG_CSTS, &csts), 0);
	assert_int_equal(csts, NVME_CSTS_RDY);
	assert_int_equal(fx_remap(f), 0);
	assert_int_equal(umdev_nvmed_reap(&f->d, 1, &e), 0);
	assert_int_equal((e.status >> 1) & 0x7ff, 0);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 0, 1, buf, false, false), 0);
}

/* A window mapped while the controller runs (memory hot-plug): I/O there works (map retaken). */
static void test_window_added(void **state)
{
	const uint64_t extra = 0x7f0000000ull;
	struct fx *f = *state;
	struct umdev_mem_region_desc rd = { .guest_addr = extra, .size = 1u << 20,
					    .prot = UMDEV_MEM_READ | UMDEV_MEM_WRITE };
	uint64_t buf = umdev_nvmed_alloc(&f->d, 4096, 4096);
	uint8_t *p;
	int fd;

	up(f, 1);
	fill(f, buf, 4096, 9);
	assert_int_equal(rw(f, 1, NVME_CMD_WRITE, 1, 16, 8, buf, false, false), 0);
	fd = memfd_create("nvmet-extra", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1u << 20), 0);
	p = mmap(NULL, 1u << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	rd.fd = fd;
	assert_int_equal(umdev_as_add_region(f->as, &rd), 0);
	umdev_pci_dma_mapped(umdev_nvme_pci(f->n), extra, 1u << 20);
	/* Read into the new window, write from it, read back. */
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 16, 8, extra + 8192, false, false), 0);
	assert_memory_equal(p + 8192, umdev_nvmed_ptr(&f->d, buf), 4096);
	memset(p, 0x3c, 4096);
	assert_int_equal(rw(f, 1, NVME_CMD_WRITE, 1, 32, 8, extra, false, false), 0);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 32, 8, buf, false, false), 0);
	assert_memory_equal(p, umdev_nvmed_ptr(&f->d, buf), 4096);
	munmap(p, 1u << 20);
}

static void test_ns_hotplug(void **state)
{
	struct fx *f = *state;
	uint64_t buf = umdev_nvmed_alloc(&f->d, 4096, 4096);
	uint32_t *list = umdev_nvmed_ptr(&f->d, buf), nsid;
	struct nvme_sqe aer = { .opcode = NVME_ADM_ASYNC_EVENT }, c;
	struct nvme_cqe e;
	int cid;

	up(f, 1);
	assert_int_equal(umdev_nvmed_set_features(&f->d, NVME_FEAT_ASYNC_EVENT,
						  NVME_AEN_CFG_NS_ATTR, NULL), 0);
	for (unsigned i = 0; i < NVME_AERL; i++)
		assert_true(umdev_nvmed_submit(&f->d, 0, &aer) >= 0);
	/* One too many. */
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &aer, NULL), SC(1, NVME_SC_ASYNC_LIMIT));
	cid = -1;
	assert_int_equal(fx_add_ram_ns(f, "ram:1M", 0, 0, &nsid), 0);
	assert_int_equal(nsid, 3);
	assert_int_equal(umdev_nvmed_reap(&f->d, 0, &e), 0);
	assert_int_equal(e.dw0, NVME_LOG_CHANGED_NS << 16 | NVME_AER_TYPE_NOTICE);
	(void)cid;
	/* Masked until the log is read: a second change does not fire yet. */
	assert_int_equal(umdev_nvme_ns_remove(f->n, 2), 0);
	assert_false(umdev_nvmed_cq_ready(&f->d, 0));
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_GET_LOG_PAGE;
	c.dptr.prp.prp1 = buf;
	c.cdw10 = NVME_LOG_CHANGED_NS | 1023u << 16;
	assert_int_equal(umdev_nvmed_cmd(&f->d, 0, &c, NULL), 0);
	assert_int_equal(list[0], 3);
	assert_int_equal(list[1], 2);
	assert_int_equal(list[2], 0);
	assert_int_equal(umdev_nvmed_identify(&f->d, NVME_CNS_ACTIVE_NS_LIST, 0, buf), 0);
	assert_int_equal(list[0], 1);
	assert_int_equal(list[1], 3);
	assert_int_equal(list[2], 0);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 2, 0, 1, buf, false, false),
			 SC(0, NVME_SC_INVALID_NS));
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 3, 0, 1, buf, false, false), 0);
	assert_int_equal(umdev_nvme_ns_remove(f->n, 2), -ENODEV);
	assert_int_equal(umdev_nvme_ns_remove(f->n, 3), 0);
	/* The host read the log: the next change fires at once. */
	assert_int_equal(umdev_nvmed_reap(&f->d, 0, &e), 0);
	assert_int_equal(e.dw0 & 0xff, NVME_AER_TYPE_NOTICE);
	/* Windows and NSIDs. */
	{
		int err = 0;
		umdev_bdev *b = umdev_bdev_open("ram:1M", false, &err);

		assert_non_null(b);
		assert_int_equal(umdev_nvme_ns_add(f->n, b, 512 * 1024, 1024 * 1024, 0, NULL),
				 -EINVAL);
		assert_int_equal(umdev_nvme_ns_add(f->n, b, 100, 0, 0, NULL), -EINVAL);
		assert_int_equal(umdev_nvme_ns_add(f->n, b, 0, 0, 1, NULL), -EEXIST);
		assert_int_equal(umdev_nvme_ns_add(f->n, b, 512 * 1024, 0, 77, &nsid), 0);
		assert_int_equal(nsid, 77);
	}
	{
		struct umdev_nvme_ns_info info[4];

		assert_int_equal(umdev_nvme_ns_list(f->n, info, 4), 2);
		assert_int_equal(info[1].nsid, 77);
		assert_int_equal(info[1].offset, 512 * 1024);
		assert_int_equal(info[1].size, 512 * 1024);
	}
}

static void test_parse_ns(void **state)
{
	char b[64];
	uint64_t off, size;

	assert_int_equal(umdev_nvme_parse_ns("ram:4G", b, sizeof(b), &off, &size), 0);
	assert_string_equal(b, "ram:4G");
	assert_int_equal(off, 0);
	assert_int_equal(size, 0);
	assert_int_equal(umdev_nvme_parse_ns("file:/a@b/img@1G+512M", b, sizeof(b), &off, &size),
			 0);
	assert_string_equal(b, "file:/a@b/img");
	assert_int_equal(off, 1ull << 30);
	assert_int_equal(size, 512ull << 20);
	assert_int_equal(umdev_nvme_parse_ns("file:/img@4096", b, sizeof(b), &off, &size), 0);
	assert_int_equal(off, 4096);
	assert_int_equal(size, 0);
	assert_int_equal(umdev_nvme_parse_ns("file:/img@0+1M", b, sizeof(b), &off, &size), 0);
	assert_int_equal(off, 0);
	assert_int_equal(size, 1u << 20);
	assert_int_equal(umdev_nvme_parse_ns("file:/img@x", b, sizeof(b), &off, &size), -EINVAL);
	assert_int_equal(umdev_nvme_parse_ns("file:/img@0+", b, sizeof(b), &off, &size), -EINVAL);
	assert_int_equal(umdev_nvme_parse_ns("file:/img@0+0", b, sizeof(b), &off, &size), -EINVAL);
	assert_int_equal(umdev_nvme_parse_ns("@0", b, sizeof(b), &off, &size), -EINVAL);
	assert_int_equal(umdev_nvme_parse_ns("file:/a/very/long/path", b, 8, &off, &size),
			 -ENAMETOOLONG);
}

/* The I/O thread runs: the poller finds doorbells, sleeps when idle, wakes again. */
static void test_threaded(void **state)
{
	struct fx *f = *state;
	uint64_t wbuf = umdev_nvmed_alloc(&f->d, 65536, 4096);
	uint64_t rbuf = umdev_nvmed_alloc(&f->d, 65536, 4096);
	struct umdev_nvme_stats st;

	up(f, 2);
	fill(f, wbuf, 65536, 9);
	for (unsigned i = 0; i < 50; i++) {
		assert_int_equal(rw(f, 1 + i % 2, NVME_CMD_WRITE, 1, i * 128, 128, wbuf, i & 1,
				    false), 0);
		assert_int_equal(rw(f, 2 - i % 2, NVME_CMD_READ, 1, i * 128, 128, rbuf, false,
				    false), 0);
		assert_memory_equal(umdev_nvmed_ptr(&f->d, wbuf), umdev_nvmed_ptr(&f->d, rbuf),
				    65536);
		if (i % 10 == 9) {
			/* Idle until the I/O thread has gone to sleep (bounded, not timed). */
			for (unsigned t = 0; t < 10000; t++) {
				umdev_nvme_get_stats(f->n, &st);
				if (st.sleeps >= 1)
					break;
				usleep(1000);
			}
		}
	}
	umdev_nvme_get_stats(f->n, &st);
	assert_true(st.sleeps >= 1);
	assert_int_equal(st.io_queues, 2);
	assert_true(st.sq[0].live && st.sq[1].live && st.sq[2].live && !st.sq[3].live);
	assert_int_equal(st.sq[1].cmds, 50);
	assert_int_equal(st.sq[2].cmds, 50);
	assert_int_equal(st.sq[1].inflight, 0);
	assert_true(st.write_bytes >= 50 * 65536);
	assert_int_equal(umdev_nvmed_disable(&f->d), 0);
	up(f, 1);
	assert_int_equal(rw(f, 1, NVME_CMD_READ, 1, 0, 8, rbuf, false, false), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bringup_identify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_prp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_sgl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shadow_doorbells, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irq_batching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irq_coalescing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_reenable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_remap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ns_hotplug, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_added, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_added, setup_threaded, teardown),
		cmocka_unit_test(test_parse_ns),
		cmocka_unit_test_setup_teardown(test_threaded, setup_threaded, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
