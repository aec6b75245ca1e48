/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Queues and doorbells, on the I/O thread.
 *
 * - Submission: each pass reads every SQ's tail from the doorbell page (or,
 *   for I/O queues once Doorbell Buffer Config ran, from the shadow
 *   doorbell in guest memory, then publishes the value seen as the
 *   EventIdx), and takes commands while the paired CQ has a free slot for
 *   each of them. A command that is taken therefore always has a CQ slot
 *   when it completes: completions never wait.
 * - Completion: the entry is written with its phase tag last (a release
 *   store of the status word), so the host never sees half an entry.
 * - Interrupts: each CQ counts entries posted since its last interrupt.
 *   The admin CQ, and I/O CQs whose vector has coalescing disabled, signal
 *   at once; other I/O CQs wait for the aggregation threshold or time
 *   (Set Features 0x08), and the poller stays awake while any waits.
 * - Queue memory is translated once per DMA map; a new map (after the
 *   client changed its memory) re-translates every ring. A ring that is not
 *   guest memory at that moment pauses the queues until it is (VMMs remap
 *   as unmap-then-map).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nvme_internal.h"
#include "umdev/log.h"
#include "umdev/proto/pci_regs.h"
#include "util/shm.h"

/*
 * Doorbells (the page the client mmaps, or our store of trapped writes).
 * NVMe: the host writes the SQ entries before the SQ tail doorbell, so the
 * tail is loaded with acquire and the entries read after it are complete.
 */
uint32_t nvme_db_load(struct umdev_nvme *n, unsigned idx)
{
	return umdev_shm_ld32_acq(&n->db[idx]);
}

/* Release: whoever loads the doorbell with acquire also sees what came before. */
void nvme_db_store(struct umdev_nvme *n, unsigned idx, uint32_t v)
{
	umdev_shm_st32_rel(&n->db[idx], v);
}

static uint32_t db_read(struct umdev_nvme *n, unsigned idx, uint16_t qid)
{
	/*
	 * Shadow doorbell (NVMe 1.3 Doorbell Buffer Config): the host writes
	 * the SQ entries, then the shadow tail, so acquire as for the real
	 * doorbell. Linux never shadows the admin queue, so neither do we.
	 */
	if (n->dbbuf && qid)
		return umdev_shm_ld32_acq(&n->dbbuf[idx]);
	return nvme_db_load(n, idx);
}

/*
 * Arm EventIdx before the I/O thread sleeps: the value seen, so the host's
 * next shadow update crosses it and rings the real (trapped) doorbell.
 * While the thread polls, EventIdx is left behind and the host does not
 * ring. The caller puts a full fence between these stores and its last
 * look at the shadow doorbells (the host fences between its shadow store
 * and its EventIdx load), so one of the two sides sees the other's write.
 */
void nvme_eventidx_arm(struct umdev_nvme *n)
{
	if (!n->ei)
		return;
	for (unsigned q = 1; q <= n->max_queues; q++) {
		struct nvme_cq *cq = n->cq[q];
		bool blocked = false;

		if (n->sq[q])
			umdev_shm_st32(&n->ei[2 * q], umdev_shm_ld32(&n->dbbuf[2 * q]));
		if (!cq)
			continue;
		/*
		 * A CQ head update matters only to an SQ waiting for CQ space;
		 * otherwise EventIdx sits just behind the head, so the host
		 * rings at most once per wrap.
		 */
		for (unsigned s = 1; s <= n->max_queues && !blocked; s++)
			blocked = n->sq[s] && n->sq[s]->cqid == q &&
				  umdev_shm_ld32(&n->dbbuf[2 * s]) != n->sq[s]->head;
		umdev_shm_st32(&n->ei[2 * q + 1],
			       blocked ? cq->head : (cq->head + cq->size - 1) % cq->size);
	}
}

static int translate_all(struct umdev_nvme *n)
{
	for (unsigned q = 0; q <= n->max_queues; q++) {
		struct nvme_cq *cq = n->cq[q];
		struct nvme_sq *sq = n->sq[q];

		if (cq) {
			cq->ring = umdev_as_map_translate(n->map, cq->gpa,
							  (uint64_t)cq->size * NVME_CQE_SIZE,
							  UMDEV_MEM_WRITE);
			if (!cq->ring)
				return -EFAULT;
		}
		if (sq) {
			sq->ring = umdev_as_map_translate(n->map, sq->gpa,
							  (uint64_t)sq->size * NVME_SQE_SIZE,
							  UMDEV_MEM_READ);
			if (!sq->ring)
				return -EFAULT;
		}
	}
	if (n->dbbuf_gpa) {
		n->dbbuf = umdev_as_map_translate(n->map, n->dbbuf_gpa, NVME_PAGE,
						  UMDEV_MEM_READ | UMDEV_MEM_WRITE);
		n->ei = umdev_as_map_translate(n->map, n->ei_gpa, NVME_PAGE,
					       UMDEV_MEM_READ | UMDEV_MEM_WRITE);
		if (!n->dbbuf || !n->ei) {
			n->dbbuf = n->ei = NULL;
			return -EFAULT;
		}
	}
	return 0;
}

void nvme_drop_map(struct umdev_nvme *n)
{
	umdev_as_map_put(n->map);
	n->map = NULL;
	for (unsigned q = 0; q <= n->max_queues; q++) {
		if (n->cq[q])
			n->cq[q]->ring = NULL;
		if (n->sq[q])
			n->sq[q]->ring = NULL;
	}
	n->dbbuf = n->ei = NULL;
}

int nvme_ensure_map(struct umdev_nvme *n)
{
	int err = 0;

	if (n->map)
		return 0;
	if (atomic_load(&n->map_blocked))
		return -EAGAIN;
	n->map = umdev_pci_dma_map(n->pci, &err);
	if (!n->map) {
		/* No client (or no bus mastering): wait for the control thread. */
		atomic_store(&n->map_blocked, true);
		return err ? err : -EFAULT;
	}
	if (translate_all(n) < 0) {
		/*
		 * A VMM remaps memory as unmap-then-map (QEMU does while the
		 * guest boots): queue memory may be missing for a moment. The
		 * queues pause and the next pass tries again; a queue that
		 * never comes back only stalls its own controller.
		 */
		if (!n->map_missing_logged)
			umdev_warn("%s: queue memory not mapped by the client; queues paused",
				   n->name);
		n->map_missing_logged = true;
		nvme_drop_map(n);
		return -EFAULT;
	}
	n->map_missing_logged = false;
	return 0;
}

static void fire(struct umdev_nvme *n, uint16_t iv)
{
	umdev_irq *irq = umdev_pci_irq(n->pci);
	enum umdev_irq_mode mode = umdev_irq_mode(irq);
	unsigned v = iv;

	if (mode == UMDEV_IRQ_MODE_NONE)
		return;
	if (mode != UMDEV_IRQ_MODE_MSIX) {
		/* INTMS masks MSI vectors and INTx (bit 0) only. */
		if (mode == UMDEV_IRQ_MODE_INTX || v >= umdev_irq_vectors(irq))
			v = 0;
		if (atomic_load_explicit(&n->intms, memory_order_relaxed) & (1u << (v & 31)))
			return;
	}
	if (umdev_irq_trigger(irq, v) > 0)
		n->st.irqs++;
}

void nvme_irq_flush(struct umdev_nvme *n, bool force)
{
	uint32_t thr = (n->feat.coalesce & 0xff) + 1;
	uint64_t time_ns = (uint64_t)((n->feat.coalesce >> 8) & 0xff) * 100000;
	uint64_t now = 0;

	for (unsigned q = 0; q <= n->max_queues; q++) {
		struct nvme_cq *cq = n->cq[q];
		bool now_fire;

		if (!cq || !cq->unsignalled)
			continue;
		if (!cq->ien) {
			cq->unsignalled = 0;
			continue;
		}
		now_fire = force || !q || n->feat.irq_cd[cq->iv] || !n->feat.coalesce ||
			   cq->unsignalled >= thr;
		if (!now_fire) {
			if (!now)
				now = nvme_now_ns();
			now_fire = now - cq->first_unsignalled_ns >= time_ns;
		}
		if (now_fire) {
			cq->unsignalled = 0;
			fire(n, cq->iv);
		}
	}
}

bool nvme_irq_waiting(const struct umdev_nvme *n)
{
	for (unsigned q = 1; q <= n->max_queues; q++)
		if (n->cq[q] && n->cq[q]->unsignalled)
			return true;
	return false;
}

static void post(struct umdev_nvme *n, struct nvme_cq *cq, const struct nvme_req *r)
{
	struct nvme_cqe *e = &cq->ring[cq->tail];

	umdev_shm_st32(&e->dw0, r->dw0);
	umdev_shm_st32(&e->dw1, 0);
	umdev_shm_st16(&e->sqhd, (uint16_t)r->sq->head);
	umdev_shm_st16(&e->sqid, r->sq->qid);
	umdev_shm_st16(&e->cid, r->cmd.cid);
	/*
	 * NVMe: the host owns an entry once its phase tag flips, so the status
	 * word carrying the tag is stored last, with release: the host that
	 * sees the new phase sees the whole entry.
	 */
	umdev_shm_st16_rel(&e->status, (uint16_t)(r->status << 1 | cq->phase));
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase ^= 1;
	}
	if (!cq->unsignalled++)
		cq->first_unsignalled_ns = nvme_now_ns();
}

void nvme_req_complete(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	struct nvme_sq *sq = r->sq;
	struct nvme_cq *cq = n->cq[sq->cqid];

	if (r->status) {
		n->st.errors++;
		nvme_errlog_add(n, r);
	}
	if (cq && !n->fatal && nvme_ensure_map(n) == 0 && cq->ring)
		post(n, cq, r);
	if (cq && cq->reserved)
		cq->reserved--;
	nvme_req_release(r);
	r->busy = false;
	sq->free[sq->nfree++] = (uint32_t)(r - sq->reqs);
	sq->inflight--;
	if (sq->deleting && !sq->inflight) {
		struct nvme_req *del = sq->del_req;

		nvme_sq_free(n, sq);
		if (del) {
			del->status = 0;
			nvme_req_complete(del);
		}
	}
}

static int sq_run(struct umdev_nvme *n, struct nvme_sq *sq)
{
	struct nvme_cq *cq = n->cq[sq->cqid];
	uint16_t qid = sq->qid;
	uint32_t tail, head;
	int done = 0;

	tail = db_read(n, 2u * qid, qid);
	head = db_read(n, 2u * sq->cqid + 1, sq->cqid);
	if (tail >= sq->size || head >= cq->size) {
		umdev_err("%s: doorbell beyond the queue size (SQ %u tail %u of %u, CQ %u head %u of %u)",
			  n->name, qid, tail, sq->size, cq->qid, head, cq->size);
		nvme_fatal(n, "invalid doorbell value");
		return 0;
	}
	cq->head = head;
	while (sq->head != tail && done < (int)NVME_BATCH) {
		uint32_t used = (cq->tail + cq->size - cq->head) % cq->size;
		struct nvme_req *r;
		bool now;

		/* One slot stays empty: a full CQ holds size - 1 entries. */
		if (used + cq->reserved + 1 >= cq->size || !sq->nfree)
			break;
		r = &sq->reqs[sq->free[--sq->nfree]];
		/* Read once, after the acquire load of the tail that published it. */
		umdev_shm_copy_in(&r->cmd, &sq->ring[sq->head], sizeof(r->cmd));
		sq->head = (sq->head + 1) % sq->size;
		cq->reserved++;
		sq->inflight++;
		sq->cmds++;
		r->busy = true;
		r->status = 0;
		r->dw0 = 0;
		r->ns = NULL;
		r->map = NULL;
		r->stage = NVME_STAGE_NONE;
		r->iovcnt = 0;
		if (qid) {
			n->st.io_cmds++;
			now = nvme_io(r);
		} else {
			n->st.admin_cmds++;
			now = nvme_admin(r);
		}
		if (now)
			nvme_req_complete(r);
		done++;
		if (n->fatal || !n->enabled)
			break;
		/* An admin command may have deleted or replaced this queue. */
		if (n->sq[qid] != sq)
			break;
	}
	return done;
}

int nvme_process(struct umdev_nvme *n)
{
	int work = 0;

	if (!n->enabled || n->fatal)
		return 0;
	if (nvme_ensure_map(n) < 0)
		return 0;
	n->st.polls++;
	for (unsigned q = 0; q <= n->max_queues && !n->fatal; q++) {
		struct nvme_sq *sq = n->sq[q];

		if (sq && !sq->deleting && n->cq[sq->cqid])
			work += sq_run(n, sq);
	}
	nvme_irq_flush(n, false);
	return work;
}

/*
 * A queue needs guest memory: translate it now if DMA is possible. The
 * admin queues are the exception: a driver may enable the controller before
 * it sets Bus Master (as on hardware, where CC.EN does not check it, and as
 * drivers written for kernel VFIO do, which enables memory space at open but
 * not bus mastering). They are then made untranslated, and translate_all()
 * fills them in once DMA is allowed; nothing is fetched before that.
 */
static bool admin_may_wait_for_dma(struct umdev_nvme *n, uint16_t qid, int *err)
{
	*err = nvme_ensure_map(n);
	if (*err == 0)
		return true;
	if (qid == 0 && (*err == -EPERM || *err == -EAGAIN) &&
	    !(umdev_pci_command(n->pci) & UMDEV_PCI_CMD_MASTER)) {
		*err = 0;
		return true;
	}
	return false;
}

struct nvme_cq *nvme_cq_new(struct umdev_nvme *n, uint16_t qid, uint32_t size, uint64_t gpa,
			    bool ien, uint16_t iv, int *err)
{
	struct nvme_cq *cq;

	if (!admin_may_wait_for_dma(n, qid, err))
		return NULL;
	cq = calloc(1, sizeof(*cq));
	if (!cq) {
		*err = -ENOMEM;
		return NULL;
	}
	cq->ring = n->map ? umdev_as_map_translate(n->map, gpa, (uint64_t)size * NVME_CQE_SIZE,
						   UMDEV_MEM_WRITE)
			  : NULL;
	if (n->map && !cq->ring) {
		free(cq);
		*err = -EFAULT;
		return NULL;
	}
	cq->qid = qid;
	cq->size = size;
	cq->gpa = gpa;
	cq->phase = 1;
	cq->ien = ien;
	cq->iv = iv;
	n->cq[qid] = cq;
	return cq;
}

void nvme_cq_free(struct umdev_nvme *n, struct nvme_cq *cq)
{
	if (!cq)
		return;
	n->cq[cq->qid] = NULL;
	free(cq);
}

struct nvme_sq *nvme_sq_new(struct umdev_nvme *n, uint16_t qid, uint16_t cqid, uint32_t size,
			    uint64_t gpa, int *err)
{
	struct nvme_sq *sq;

	if (!admin_may_wait_for_dma(n, qid, err))
		return NULL;
	sq = calloc(1, sizeof(*sq));
	if (!sq) {
		*err = -ENOMEM;
		return NULL;
	}
	sq->ring = n->map ? umdev_as_map_translate(n->map, gpa, (uint64_t)size * NVME_SQE_SIZE,
						   UMDEV_MEM_READ)
			  : NULL;
	sq->reqs = calloc(size, sizeof(*sq->reqs));
	sq->free = calloc(size, sizeof(*sq->free));
	if ((n->map && !sq->ring) || !sq->reqs || !sq->free) {
		*err = n->map && !sq->ring ? -EFAULT : -ENOMEM;
		free(sq->reqs);
		free(sq->free);
		free(sq);
		return NULL;
	}
	sq->qid = qid;
	sq->cqid = cqid;
	sq->size = size;
	sq->gpa = gpa;
	for (uint32_t i = 0; i < size; i++) {
		sq->reqs[i].n = n;
		sq->reqs[i].sq = sq;
		sq->free[i] = size - 1 - i;
	}
	sq->nfree = size;
	n->cq[cqid]->nsq++;
	n->sq[qid] = sq;
	return sq;
}

void nvme_sq_free(struct umdev_nvme *n, struct nvme_sq *sq)
{
	if (!sq)
		return;
	/* Only parked requests (AER) can still be busy here; in-flight I/O drained. */
	for (uint32_t i = 0; i < sq->size; i++)
		if (sq->reqs[i].busy)
			nvme_req_release(&sq->reqs[i]);
	for (unsigned i = 0; i < n->naer; i++)
		if (n->aer[i]->sq == sq)
			n->aer[i] = n->aer[--n->naer], i--;
	if (n->cq[sq->cqid])
		n->cq[sq->cqid]->nsq--;
	n->sq[sq->qid] = NULL;
	free(sq->reqs);
	free(sq->free);
	free(sq);
}

void nvme_queues_free(struct umdev_nvme *n)
{
	for (unsigned q = 0; q <= n->max_queues; q++)
		nvme_sq_free(n, n->sq[q]);
	for (unsigned q = 0; q <= n->max_queues; q++)
		nvme_cq_free(n, n->cq[q]);
	n->naer = 0;
}
