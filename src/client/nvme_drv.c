/* SPDX-License-Identifier: BSD-3-Clause */
/* NVMe host driver for tests and bench (see nvme_drv.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "nvme_drv.h"
#include "umdev/proto/pci_regs.h"
#include "util/shm.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void umdev_nvmed_init(struct umdev_nvmed *d, const struct umdev_nvmed_bus *bus, void *opaque,
		      void *mem, uint64_t mem_iova, uint64_t mem_size)
{
	memset(d, 0, sizeof(*d));
	d->bus = bus;
	d->opaque = opaque;
	d->mem = mem;
	d->mem_iova = mem_iova;
	d->mem_size = mem_size;
	d->timeout_ms = 5000;
}

uint64_t umdev_nvmed_alloc(struct umdev_nvmed *d, uint64_t size, uint64_t align)
{
	uint64_t at = (d->brk + align - 1) & ~(align - 1);

	if (at + size > d->mem_size)
		return 0;
	d->brk = at + size;
	memset(d->mem + at, 0, size);
	return d->mem_iova + at;
}

void *umdev_nvmed_ptr(struct umdev_nvmed *d, uint64_t iova)
{
	return d->mem + (iova - d->mem_iova);
}

int umdev_nvmed_reg_read32(struct umdev_nvmed *d, uint32_t off, uint32_t *v)
{
	return d->bus->reg_read(d->opaque, off, v, 4);
}

int umdev_nvmed_reg_write32(struct umdev_nvmed *d, uint32_t off, uint32_t v)
{
	return d->bus->reg_write(d->opaque, off, &v, 4);
}

static void kick(struct umdev_nvmed *d)
{
	if (d->bus->kick)
		d->bus->kick(d->opaque);
}

static int wait_csts(struct umdev_nvmed *d, uint32_t mask, uint32_t want)
{
	uint64_t end = now_ms() + (uint64_t)d->timeout_ms;
	uint32_t csts;
	int ret;

	for (;;) {
		ret = umdev_nvmed_reg_read32(d, NVME_REG_CSTS, &csts);
		if (ret < 0)
			return ret;
		if (csts & NVME_CSTS_CFS)
			return -EIO;
		if ((csts & mask) == want)
			return 0;
		if (now_ms() > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

static int alloc_queue(struct umdev_nvmed *d, uint16_t qid, uint32_t size)
{
	struct umdev_nvmed_queue *q = &d->q[qid];

	if (!q->sq_iova || q->size < size) {
		q->sq_iova = umdev_nvmed_alloc(d, (uint64_t)size * NVME_SQE_SIZE, 4096);
		q->cq_iova = umdev_nvmed_alloc(d, (uint64_t)size * NVME_CQE_SIZE, 4096);
		if (!q->sq_iova || !q->cq_iova)
			return -ENOMEM;
	}
	q->sq = umdev_nvmed_ptr(d, q->sq_iova);
	q->cq = umdev_nvmed_ptr(d, q->cq_iova);
	memset(q->sq, 0, (size_t)size * NVME_SQE_SIZE);
	memset(q->cq, 0, (size_t)size * NVME_CQE_SIZE);
	q->size = size;
	q->sq_tail = q->cq_head = 0;
	q->phase = 1;
	q->live = true;
	return 0;
}

int umdev_nvmed_enable(struct umdev_nvmed *d, uint32_t aq_size)
{
	uint32_t lo, hi, cc;
	int ret;

	if ((ret = umdev_nvmed_reg_read32(d, NVME_REG_CAP, &lo)) < 0 ||
	    (ret = umdev_nvmed_reg_read32(d, NVME_REG_CAP + 4, &hi)) < 0)
		return ret;
	d->cap = (uint64_t)hi << 32 | lo;
	ret = alloc_queue(d, 0, aq_size);
	if (ret < 0)
		return ret;
	d->shadow = d->eventidx = NULL;
	cc = NVME_CC_EN | NVME_CC_CSS_NVM << NVME_CC_CSS_SHIFT |
	     NVME_SQES_LOG2 << NVME_CC_IOSQES_SHIFT | NVME_CQES_LOG2 << NVME_CC_IOCQES_SHIFT;
	if ((ret = umdev_nvmed_reg_write32(d, NVME_REG_AQA, (aq_size - 1) << 16 | (aq_size - 1))) ||
	    (ret = umdev_nvmed_reg_write32(d, NVME_REG_ASQ, (uint32_t)d->q[0].sq_iova)) ||
	    (ret = umdev_nvmed_reg_write32(d, NVME_REG_ASQ + 4, (uint32_t)(d->q[0].sq_iova >> 32))) ||
	    (ret = umdev_nvmed_reg_write32(d, NVME_REG_ACQ, (uint32_t)d->q[0].cq_iova)) ||
	    (ret = umdev_nvmed_reg_write32(d, NVME_REG_ACQ + 4, (uint32_t)(d->q[0].cq_iova >> 32))) ||
	    (ret = umdev_nvmed_reg_write32(d, NVME_REG_CC, cc)))
		return ret;
	return wait_csts(d, NVME_CSTS_RDY, NVME_CSTS_RDY);
}

int umdev_nvmed_disable(struct umdev_nvmed *d)
{
	uint64_t end = now_ms() + (uint64_t)d->timeout_ms;
	uint32_t csts;
	int ret;

	ret = umdev_nvmed_reg_write32(d, NVME_REG_CC, 0);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < UMDEV_NVMED_MAX_QUEUES; i++)
		d->q[i].live = false;
	d->shadow = d->eventidx = NULL;
	/* CFS may stay set until RDY clears; wait for RDY alone. */
	for (;;) {
		ret = umdev_nvmed_reg_read32(d, NVME_REG_CSTS, &csts);
		if (ret < 0)
			return ret;
		if (!(csts & NVME_CSTS_RDY))
			return 0;
		if (now_ms() > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

/* The EventIdx rule: ring when the new value passes the event index. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

int umdev_nvmed_db_write(struct umdev_nvmed *d, unsigned idx, uint32_t val)
{
	if (d->bus->doorbells) {
		/* Release: the SQ entries are written before the tail. */
		umdev_shm_st32_rel(&d->bus->doorbells[idx], val);
		return 0;
	}
	return d->bus->reg_write(d->opaque, NVME_REG_DBS + 4 * idx, &val, 4);
}

static void ring(struct umdev_nvmed *d, unsigned idx, uint16_t qid, uint32_t old, uint32_t val)
{
	if (d->shadow && qid) {
		/*
		 * Shadow store before the EventIdx load (full fence): either the
		 * controller sees our value, or we see the EventIdx it armed
		 * before sleeping and ring the real doorbell.
		 */
		umdev_shm_st32_rel(&d->shadow[idx], val);
		umdev_shm_fence_full();
		if (!need_event((uint16_t)umdev_shm_ld32(&d->eventidx[idx]), (uint16_t)val,
				(uint16_t)old))
			return;
	}
	if (umdev_nvmed_db_write(d, idx, val) < 0)
		d->db_errors++;
	d->db_writes++;
}

int umdev_nvmed_submit_batch(struct umdev_nvmed *d, uint16_t qid, struct nvme_sqe *cmds,
			     unsigned n)
{
	struct umdev_nvmed_queue *q = &d->q[qid];
	uint32_t old = q->sq_tail;
	int cid = -ENOSPC;

	if (qid >= UMDEV_NVMED_MAX_QUEUES || !q->live)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		uint32_t next = (q->sq_tail + 1) % q->size;

		if (next == old) /* would overrun what the device has not seen */
			return -ENOSPC;
		cmds[i].cid = d->next_cid++;
		if (d->next_cid == 0xffff)
			d->next_cid = 0;
		/* Published by the release store of the tail in ring(). */
		umdev_shm_copy_out(&q->sq[q->sq_tail], &cmds[i], sizeof(cmds[i]));
		q->sq_tail = next;
		cid = cmds[i].cid;
	}
	ring(d, 2u * qid, qid, old, q->sq_tail);
	kick(d);
	return cid;
}

int umdev_nvmed_submit(struct umdev_nvmed *d, uint16_t qid, struct nvme_sqe *cmd)
{
	return umdev_nvmed_submit_batch(d, qid, cmd, 1);
}

bool umdev_nvmed_cq_ready(struct umdev_nvmed *d, uint16_t qid)
{
	struct umdev_nvmed_queue *q = &d->q[qid];
	/* Acquire: the entry is read after its phase tag says it is new. */
	uint16_t st = umdev_shm_ld16_acq(&q->cq[q->cq_head].status);

	return (st & 1) == q->phase;
}

int umdev_nvmed_reap_many(struct umdev_nvmed *d, uint16_t qid, struct nvme_cqe *out,
			  unsigned max)
{
	struct umdev_nvmed_queue *q = &d->q[qid];
	uint32_t old = q->cq_head;
	unsigned k = 0;

	if (qid >= UMDEV_NVMED_MAX_QUEUES || !q->live)
		return -EINVAL;
	while (k < max && umdev_nvmed_cq_ready(d, qid)) {
		/* After the acquire load of the phase tag in cq_ready(). */
		umdev_shm_copy_in(&out[k++], &q->cq[q->cq_head], sizeof(*out));
		if (++q->cq_head == q->size) {
			q->cq_head = 0;
			q->phase ^= 1;
		}
	}
	if (k)
		ring(d, 2u * qid + 1, qid, old, q->cq_head);
	return (int)k;
}

int umdev_nvmed_reap(struct umdev_nvmed *d, uint16_t qid, struct nvme_cqe *out)
{
	struct umdev_nvmed_queue *q = &d->q[qid];
	uint64_t end = now_ms() + (uint64_t)d->timeout_ms;
	uint32_t old;

	if (qid >= UMDEV_NVMED_MAX_QUEUES || !q->live)
		return -EINVAL;
	for (unsigned spins = 0; !umdev_nvmed_cq_ready(d, qid); spins++) {
		kick(d);
		if (spins > 1000) {
			if (now_ms() > end)
				return -ETIMEDOUT;
			usleep(50);
		}
	}
	/* After the acquire load of the phase tag in cq_ready(). */
	umdev_shm_copy_in(out, &q->cq[q->cq_head], sizeof(*out));
	old = q->cq_head;
	if (++q->cq_head == q->size) {
		q->cq_head = 0;
		q->phase ^= 1;
	}
	ring(d, 2u * qid + 1, qid, old, q->cq_head);
	return 0;
}

static int status_of(const struct nvme_cqe *e)
{
	return (e->status >> 1) & 0x7ff;
}

int umdev_nvmed_cmd(struct umdev_nvmed *d, uint16_t qid, struct nvme_sqe *cmd, uint32_t *dw0)
{
	struct nvme_cqe e;
	int cid, ret;

	cid = umdev_nvmed_submit(d, qid, cmd);
	if (cid < 0)
		return cid;
	for (;;) {
		ret = umdev_nvmed_reap(d, qid, &e);
		if (ret < 0)
			return ret;
		if (e.cid == cid)
			break;
		/* Someone else's completion (an AER): not ours, keep waiting. */
	}
	if (dw0)
		*dw0 = e.dw0;
	return status_of(&e);
}

int umdev_nvmed_identify(struct umdev_nvmed *d, uint8_t cns, uint32_t nsid, uint64_t buf_iova)
{
	struct nvme_sqe c = { .opcode = NVME_ADM_IDENTIFY, .nsid = nsid, .cdw10 = cns };

	c.dptr.prp.prp1 = buf_iova;
	return umdev_nvmed_cmd(d, 0, &c, NULL);
}

int umdev_nvmed_set_features(struct umdev_nvmed *d, uint8_t fid, uint32_t cdw11, uint32_t *dw0)
{
	struct nvme_sqe c = { .opcode = NVME_ADM_SET_FEATURES, .cdw10 = fid, .cdw11 = cdw11 };

	return umdev_nvmed_cmd(d, 0, &c, dw0);
}

int umdev_nvmed_get_features(struct umdev_nvmed *d, uint8_t fid, uint32_t cdw11, uint32_t *dw0)
{
	struct nvme_sqe c = { .opcode = NVME_ADM_GET_FEATURES, .cdw10 = fid, .cdw11 = cdw11 };

	return umdev_nvmed_cmd(d, 0, &c, dw0);
}

int umdev_nvmed_create_qpair(struct umdev_nvmed *d, uint16_t qid, uint32_t size, bool ien)
{
	struct nvme_sqe c = { .opcode = NVME_ADM_CREATE_CQ };
	struct umdev_nvmed_queue *q = &d->q[qid];
	int ret;

	if (!qid || qid >= UMDEV_NVMED_MAX_QUEUES)
		return -EINVAL;
	ret = alloc_queue(d, qid, size);
	if (ret < 0)
		return ret;
	q->live = false;
	/* A new queue starts at 0: so does its shadow, before the controller looks. */
	if (d->shadow) {
		umdev_shm_st32(&d->shadow[2 * qid], 0);
		umdev_shm_st32(&d->shadow[2 * qid + 1], 0);
	}
	c.dptr.prp.prp1 = q->cq_iova;
	c.cdw10 = (size - 1) << 16 | qid;
	c.cdw11 = (uint32_t)qid << NVME_CQ_IV_SHIFT | NVME_QUEUE_PC | (ien ? NVME_CQ_IEN : 0);
	ret = umdev_nvmed_cmd(d, 0, &c, NULL);
	if (ret)
		return ret;
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_CREATE_SQ;
	c.dptr.prp.prp1 = q->sq_iova;
	c.cdw10 = (size - 1) << 16 | qid;
	c.cdw11 = (uint32_t)qid << NVME_SQ_CQID_SHIFT | NVME_QUEUE_PC;
	ret = umdev_nvmed_cmd(d, 0, &c, NULL);
	if (ret)
		return ret;
	q->live = true;
	return 0;
}

int umdev_nvmed_delete_qpair(struct umdev_nvmed *d, uint16_t qid)
{
	struct nvme_sqe c = { .opcode = NVME_ADM_DELETE_SQ, .cdw10 = qid };
	int ret;

	ret = umdev_nvmed_cmd(d, 0, &c, NULL);
	if (ret)
		return ret;
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADM_DELETE_CQ;
	c.cdw10 = qid;
	ret = umdev_nvmed_cmd(d, 0, &c, NULL);
	if (!ret)
		d->q[qid].live = false;
	return ret;
}

int umdev_nvmed_dbbuf(struct umdev_nvmed *d)
{
	struct nvme_sqe c = { .opcode = NVME_ADM_DBBUF_CONFIG };
	uint64_t db = umdev_nvmed_alloc(d, 4096, 4096), ei = umdev_nvmed_alloc(d, 4096, 4096);
	int ret;

	if (!db || !ei)
		return -ENOMEM;
	/* Start the shadows from what the real doorbells hold. */
	for (unsigned i = 1; i < UMDEV_NVMED_MAX_QUEUES; i++) {
		/* Before the command that hands the page over (its doorbell is a release). */
		umdev_shm_st32((uint32_t *)umdev_nvmed_ptr(d, db) + 2 * i, d->q[i].sq_tail);
		umdev_shm_st32((uint32_t *)umdev_nvmed_ptr(d, db) + 2 * i + 1, d->q[i].cq_head);
	}
	c.dptr.prp.prp1 = db;
	c.dptr.prp.prp2 = ei;
	ret = umdev_nvmed_cmd(d, 0, &c, NULL);
	if (ret)
		return ret;
	d->shadow = umdev_nvmed_ptr(d, db);
	d->eventidx = umdev_nvmed_ptr(d, ei);
	return 0;
}

int umdev_nvmed_build_rw(struct umdev_nvmed *d, struct nvme_sqe *cmd, uint8_t opcode,
			 uint32_t nsid, uint64_t slba, uint32_t nlb, uint64_t buf_iova,
			 uint64_t len, bool sgl, bool sgl_split)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->opcode = opcode;
	cmd->nsid = nsid;
	cmd->cdw10 = (uint32_t)slba;
	cmd->cdw11 = (uint32_t)(slba >> 32);
	cmd->cdw12 = nlb - 1;
	if (sgl) {
		cmd->flags = NVME_PSDT_SGL_MPTR_CONTIG << NVME_CMD_PSDT_SHIFT;
		if (!sgl_split) {
			cmd->dptr.sgl.addr = buf_iova;
			cmd->dptr.sgl.length = (uint32_t)len;
			cmd->dptr.sgl.type = NVME_SGL_TYPE_DATA_BLOCK << 4;
		} else {
			uint64_t pages = (len + 4095) / 4096, seg;
			struct nvme_sgl_desc *ds;

			seg = umdev_nvmed_alloc(d, pages * sizeof(*ds), 16);
			if (!seg)
				return -ENOMEM;
			ds = umdev_nvmed_ptr(d, seg);
			for (uint64_t i = 0; i < pages; i++) {
				ds[i].addr = buf_iova + i * 4096;
				ds[i].length = (uint32_t)(len - i * 4096 < 4096 ? len - i * 4096 : 4096);
				ds[i].type = NVME_SGL_TYPE_DATA_BLOCK << 4;
			}
			cmd->dptr.sgl.addr = seg;
			cmd->dptr.sgl.length = (uint32_t)(pages * sizeof(*ds));
			cmd->dptr.sgl.type = NVME_SGL_TYPE_LAST_SEGMENT << 4;
		}
		return 0;
	}
	cmd->dptr.prp.prp1 = buf_iova;
	{
		uint64_t first = 4096 - (buf_iova & 4095), rest;

		if (len <= first)
			return 0;
		rest = len - first;
		if (rest <= 4096) {
			cmd->dptr.prp.prp2 = buf_iova + first;
			return 0;
		}
		{
			uint64_t n = (rest + 4095) / 4096, list;
			uint64_t *l;

			/* One list page holds 512 entries: enough up to 2 MiB. */
			if (n > 512)
				return -E2BIG;
			list = umdev_nvmed_alloc(d, 4096, 4096);
			if (!list)
				return -ENOMEM;
			l = umdev_nvmed_ptr(d, list);
			for (uint64_t i = 0; i < n; i++)
				l[i] = buf_iova + first + i * 4096;
			cmd->dptr.prp.prp2 = list;
		}
	}
	return 0;
}

const char *umdev_nvmed_status_str(int status)
{
	static __thread char buf[32];

	if (status < 0)
		snprintf(buf, sizeof(buf), "errno %d", -status);
	else
		snprintf(buf, sizeof(buf), "sct %d sc 0x%02x", status >> 8, status & 0xff);
	return buf;
}

/* ---- over vfio-user ---- */

static int vfu_reg_read(void *opaque, uint32_t off, void *buf, unsigned len)
{
	return umdev_vfuc_region_read(&((struct umdev_nvmed_vfu *)opaque)->c, 0, off, buf, len);
}

static int vfu_reg_write(void *opaque, uint32_t off, const void *buf, unsigned len)
{
	struct umdev_nvmed_vfu *h = opaque;

	/* Doorbells are posted, as QEMU posts BAR writes: no wait for the controller. */
	if (off >= NVME_REG_DBS && h->posted_doorbells)
		return umdev_vfuc_region_write_posted(&h->c, 0, off, buf, len);
	return umdev_vfuc_region_write(&h->c, 0, off, buf, len);
}

int umdev_nvmed_vfu_open(struct umdev_nvmed_vfu *h, const char *sock, uint64_t iova,
			 uint64_t size)
{
	return umdev_nvmed_vfu_open_ex(h, sock, iova, size, false);
}

int umdev_nvmed_vfu_open_ex(struct umdev_nvmed_vfu *h, const char *sock, uint64_t iova,
			    uint64_t size, bool unsealed)
{
	uint8_t buf[512];
	int fd = -1, ret;

	memset(h, 0, sizeof(*h));
	h->db_page = MAP_FAILED;
	for (unsigned i = 0; i < UMDEV_NVMED_VFU_MAX_VEC; i++)
		h->efd[i] = -1;
	ret = umdev_vfuc_connect(&h->c, sock, 3000);
	if (ret < 0)
		return ret;
	h->c.unsealed_mem = unsealed;
	if ((ret = umdev_vfuc_version(&h->c, NULL)) < 0 ||
	    (ret = umdev_vfuc_add_mem(&h->c, iova, size, true,
				      VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE)) < 0 ||
	    (ret = umdev_vfuc_region_info(&h->c, 0, buf, sizeof(buf), &fd)) < 0)
		goto fail;
	/* No fd: the server traps doorbell writes (REGION_WRITE messages). */
	if (fd >= 0) {
		h->db_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				  NVME_REG_DBS);
		close(fd);
		if (h->db_page == MAP_FAILED) {
			ret = -errno;
			goto fail;
		}
		h->bus.doorbells = h->db_page;
	}
	h->bus.reg_read = vfu_reg_read;
	h->bus.reg_write = vfu_reg_write;
	umdev_nvmed_init(&h->d, &h->bus, h, umdev_vfuc_mem_ptr(&h->c, iova, size), iova, size);
	return 0;
fail:
	umdev_nvmed_vfu_close(h);
	return ret;
}

int umdev_nvmed_vfu_msix(struct umdev_nvmed_vfu *h, unsigned nvec)
{
	int fds[UMDEV_NVMED_VFU_MAX_VEC];
	unsigned msix;
	int ret;

	if (!nvec || nvec > UMDEV_NVMED_VFU_MAX_VEC)
		return -EINVAL;
	for (unsigned i = 0; i < nvec; i++) {
		if (h->efd[i] < 0)
			h->efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (h->efd[i] < 0)
			return -errno;
		fds[i] = h->efd[i];
	}
	h->nvec = nvec;
	ret = umdev_vfuc_set_irqs(&h->c, VFIO_PCI_MSIX_IRQ_INDEX,
				  VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, nvec,
				  NULL, fds, nvec);
	if (ret < 0)
		return ret;
	msix = umdev_vfuc_find_cap(&h->c, UMDEV_PCI_CAP_ID_MSIX);
	if (!msix)
		return -ENODEV;
	ret = umdev_vfuc_cfg_write(&h->c, msix + 2, UMDEV_PCI_MSIX_FLAGS_ENABLE, 2);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < nvec; i++) {
		uint32_t table_bar, z = 0;

		ret = umdev_vfuc_cfg_read(&h->c, msix + UMDEV_PCI_MSIX_TABLE, &table_bar, 4);
		if (ret < 0)
			return ret;
		/* Vector Control of entry i, in the BAR the capability names. */
		ret = umdev_vfuc_region_write(&h->c, table_bar & 7,
					      (table_bar & ~7u) + i * 16 + 12, &z, 4);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int umdev_nvmed_vfu_command(struct umdev_nvmed_vfu *h, uint16_t set, uint16_t clear)
{
	uint16_t cmd = 0;
	int ret = umdev_vfuc_cfg_read(&h->c, UMDEV_PCI_COMMAND, &cmd, 2);

	if (ret < 0)
		return ret;
	return umdev_vfuc_cfg_write(&h->c, UMDEV_PCI_COMMAND, (cmd | set) & ~clear, 2);
}

void umdev_nvmed_vfu_close(struct umdev_nvmed_vfu *h)
{
	if (h->db_page != MAP_FAILED && h->db_page)
		munmap(h->db_page, 4096);
	h->db_page = MAP_FAILED;
	for (unsigned i = 0; i < UMDEV_NVMED_VFU_MAX_VEC; i++) {
		if (h->efd[i] >= 0)
			close(h->efd[i]);
		h->efd[i] = -1;
	}
	umdev_vfuc_close(&h->c);
}
