/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Queues and doorbells, on the side that owns them (struct nvme_lp: a
 * data-plane loop for I/O queues, the control thread for the admin pair).
 *
 * - Submission: each pass reads the side's SQ tails from the doorbells (or,
 *   for I/O queues once Doorbell Buffer Config ran, from the shadow
 *   doorbells in guest memory; EventIdx is armed only before the loop
 *   sleeps), and takes commands while the paired CQ has a free slot for
 *   each of them. A command that is taken therefore always has a CQ slot
 *   when it completes: completions never wait.
 * - Completion: the entry is written with its phase tag last (a release
 *   store of the status word), so the host never sees half an entry.
 * - Interrupts: each CQ counts entries posted since its last interrupt and
 *   is signalled at the end of a pass (one MSI-X message per CQ per batch).
 *   The admin CQ, and I/O CQs whose vector has coalescing disabled, signal
 *   then; other I/O CQs wait for the aggregation threshold or time
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

static uint32_t db_read(struct nvme_lp *lp, unsigned idx, uint16_t qid)
{
	/*
	 * Shadow doorbell (NVMe 1.3 Doorbell Buffer Config): the host writes
	 * the SQ entries, then the shadow tail, so acquire as for the real
	 * doorbell. Linux never shadows the admin queue, so neither do we.
	 */
	if (lp->dbbuf && qid)
		return umdev_shm_ld32_acq(&lp->dbbuf[idx]);
	return nvme_db_load(lp->n, idx);
}

/*
 * Arm EventIdx before the loop sleeps: the value seen, so the host's
 * next shadow update crosses it and rings the real (trapped) doorbell.
 * While the thread polls, EventIdx is left behind and the host does not
 * ring. The caller puts a full fence between these stores and its last
 * look at the shadow doorbells (the host fences between its shadow store
 * and its EventIdx load), so one of the two sides sees the other's write.
 */
void nvme_eventidx_arm(struct nvme_lp *lp)
{
	struct umdev_nvme *n = lp->n;

	if (!lp->ei)
		return;
	for (unsigned q = 1; q <= n->max_queues; q++) {
		struct nvme_cq *cq = lp->cq[q];
		bool blocked = false;

		if (lp->sq[q])
			umdev_shm_st32(&lp->ei[2 * q], umdev_shm_ld32(&lp->dbbuf[2 * q]));
		if (!cq)
			continue;
		/*
		 * A CQ head update matters only to an SQ waiting for CQ space;
		 * otherwise EventIdx sits just behind the head, so the host
		 * rings at most once per wrap.
		 */
		for (unsigned s = 1; s <= n->max_queues && !blocked; s++)
			blocked = lp->sq[s] && lp->sq[s]->cqid == q &&
				  umdev_shm_ld32(&lp->dbbuf[2 * s]) != lp->sq[s]->head;
		umdev_shm_st32(&lp->ei[2 * q + 1],
			       blocked ? cq->head : (cq->head + cq->size - 1) % cq->size);
	}
}

/* The shadow doorbell and EventIdx pages through this side's map. */
int nvme_translate_dbbuf(struct nvme_lp *lp)
{
	struct umdev_nvme *n = lp->n;

	lp->dbbuf = lp->ei = NULL;
	if (!n->dbbuf_gpa || !lp->map)
		return 0;
	lp->dbbuf = umdev_as_map_translate(lp->map, n->dbbuf_gpa, NVME_PAGE,
					   UMDEV_MEM_READ | UMDEV_MEM_WRITE);
	lp->ei = umdev_as_map_translate(lp->map, n->ei_gpa, NVME_PAGE,
					UMDEV_MEM_READ | UMDEV_MEM_WRITE);
	if (!lp->dbbuf || !lp->ei) {
		lp->dbbuf = lp->ei = NULL;
		return -EFAULT;
	}
	return 0;
}

static int translate_all(struct nvme_lp *lp)
{
	for (unsigned q = 0; q <= lp->n->max_queues; q++) {
		struct nvme_cq *cq = lp->cq[q];
		struct nvme_sq *sq = lp->sq[q];

		if (cq) {
			cq->ring = umdev_as_map_translate(lp->map, cq->gpa,
							  (uint64_t)cq->size * NVME_CQE_SIZE,
							  UMDEV_MEM_WRITE);
			if (!cq->ring)
				return -EFAULT;
		}
		if (sq) {
			sq->ring = umdev_as_map_translate(lp->map, sq->gpa,
							  (uint64_t)sq->size * NVME_SQE_SIZE,
							  UMDEV_MEM_READ);
			if (!sq->ring)
				return -EFAULT;
		}
	}
	return lp->loop ? nvme_translate_dbbuf(lp) : 0;
}

void nvme_drop_map(struct nvme_lp *lp)
{
	umdev_as_map_put(lp->map);
	lp->map = NULL;
	for (unsigned q = 0; q <= lp->n->max_queues; q++) {
		if (lp->cq[q])
			lp->cq[q]->ring = NULL;
		if (lp->sq[q])
			lp->sq[q]->ring = NULL;
	}
	lp->dbbuf = lp->ei = NULL;
}

int nvme_ensure_map(struct nvme_lp *lp)
{
	struct umdev_nvme *n = lp->n;
	int err = 0;

	if (lp->map)
		return 0;
	if (atomic_load(&n->map_blocked))
		return -EAGAIN;
	lp->map = umdev_pci_dma_map(n->pci, &err);
	if (!lp->map) {
		/* No client (or no bus mastering): wait for the control thread. */
		atomic_store(&n->map_blocked, true);
		return err ? err : -EFAULT;
	}
	if (translate_all(lp) < 0) {
		/*
		 * A VMM remaps memory as unmap-then-map (QEMU does while the
		 * guest boots): queue memory may be missing for a moment. The
		 * queues pause and the next pass tries again; a queue that
		 * never comes back only stalls its own controller.
		 */
		if (!lp->map_missing_logged)
			umdev_warn("%s: queue memory not mapped by the client; queues paused",
				   n->name);
		lp->map_missing_logged = true;
		nvme_drop_map(lp);
		return -EFAULT;
	}
	lp->map_missing_logged = false;
	return 0;
}

static void fire(struct nvme_lp *lp, uint16_t iv)
{
	struct umdev_nvme *n = lp->n;
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
		lp->st.irqs++;
}

void nvme_irq_flush(struct nvme_lp *lp, bool force)
{
	struct umdev_nvme *n = lp->n;
	uint32_t co = atomic_load_explicit(&n->rt_coalesce, memory_order_relaxed);
	uint32_t thr = (co & 0xff) + 1;
	uint64_t time_ns = (uint64_t)((co >> 8) & 0xff) * 100000;
	uint64_t now = 0;

	for (unsigned q = 0; q <= n->max_queues; q++) {
		struct nvme_cq *cq = lp->cq[q];
		bool now_fire;

		if (!cq || !cq->unsignalled)
			continue;
		if (!cq->ien) {
			cq->unsignalled = 0;
			continue;
		}
		now_fire = force || !q || !co || cq->unsignalled >= thr ||
			   atomic_load_explicit(&n->rt_cd[cq->iv], memory_order_relaxed);
		if (!now_fire) {
			if (!now)
				now = nvme_now_ns();
			now_fire = now - cq->first_unsignalled_ns >= time_ns;
		}
		if (now_fire) {
			cq->unsignalled = 0;
			fire(lp, cq->iv);
		}
	}
}

bool nvme_irq_waiting(const struct nvme_lp *lp)
{
	for (unsigned q = 1; q <= lp->n->max_queues; q++)
		if (lp->cq[q] && lp->cq[q]->unsignalled)
			return true;
	return false;
}

static void post(struct nvme_cq *cq, const struct nvme_req *r)
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
	struct nvme_sq *sq = r->sq;
	struct nvme_lp *lp = sq->lp;
	struct umdev_nvme *n = lp->n;
	struct nvme_cq *cq = lp->cq[sq->cqid];

	if (r->status) {
		lp->st.errors++;
		nvme_errlog_add(n, r);
	}
	if (cq && !atomic_load(&n->fatal) && nvme_ensure_map(lp) == 0 && cq->ring)
		post(cq, r);
	if (cq && cq->reserved)
		cq->reserved--;
	nvme_req_release(r);
	r->busy = false;
	sq->free[sq->nfree++] = (uint32_t)(r - sq->reqs);
	sq->inflight--;
}

static int sq_run(struct nvme_lp *lp, struct nvme_sq *sq)
{
	struct umdev_nvme *n = lp->n;
	struct nvme_cq *cq = lp->cq[sq->cqid];
	uint16_t qid = sq->qid;
	uint32_t tail, head;
	int done = 0;

	tail = db_read(lp, 2u * qid, qid);
	head = db_read(lp, 2u * sq->cqid + 1, sq->cqid);
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
			lp->st.io_cmds++;
			now = nvme_io(r);
		} else {
			n->admin_cmds++;
			now = nvme_admin(r);
		}
		if (now)
			nvme_req_complete(r);
		done++;
		if (atomic_load(&n->fatal) || !lp->enabled)
			break;
		/* An admin command may have replaced the admin queue (a reset). */
		if (lp->sq[qid] != sq)
			break;
	}
	if (!qid && lp->sq[0] == sq)
		atomic_store(&n->admin_head, sq->head);
	return done;
}

int nvme_process(struct nvme_lp *lp)
{
	struct umdev_nvme *n = lp->n;
	int work = 0;

	if (!lp->enabled || atomic_load(&n->fatal))
		return 0;
	if (nvme_ensure_map(lp) < 0)
		return 0;
	lp->st.polls++;
	for (unsigned q = 0; q <= n->max_queues && !atomic_load(&n->fatal); q++) {
		struct nvme_sq *sq = lp->sq[q];

		if (sq && !sq->deleting && lp->cq[sq->cqid])
			work += sq_run(lp, sq);
	}
	nvme_irq_flush(lp, false);
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
static bool admin_may_wait_for_dma(struct nvme_lp *lp, uint16_t qid, int *err)
{
	*err = nvme_ensure_map(lp);
	if (*err == 0)
		return true;
	if (qid == 0 && (*err == -EPERM || *err == -EAGAIN) &&
	    !(umdev_pci_command(lp->n->pci) & UMDEV_PCI_CMD_MASTER)) {
		*err = 0;
		return true;
	}
	return false;
}

struct nvme_cq *nvme_cq_new(struct nvme_lp *lp, uint16_t qid, uint32_t size, uint64_t gpa,
			    bool ien, uint16_t iv, int *err)
{
	struct nvme_cq *cq;

	if (!admin_may_wait_for_dma(lp, qid, err))
		return NULL;
	cq = calloc(1, sizeof(*cq));
	if (!cq) {
		*err = -ENOMEM;
		return NULL;
	}
	cq->ring = lp->map ? umdev_as_map_translate(lp->map, gpa, (uint64_t)size * NVME_CQE_SIZE,
						    UMDEV_MEM_WRITE)
			   : NULL;
	if (lp->map && !cq->ring) {
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
	lp->cq[qid] = cq;
	return cq;
}

void nvme_cq_free(struct nvme_lp *lp, struct nvme_cq *cq)
{
	if (!cq)
		return;
	lp->cq[cq->qid] = NULL;
	free(cq);
}

struct nvme_sq *nvme_sq_new(struct nvme_lp *lp, uint16_t qid, uint16_t cqid, uint32_t size,
			    uint64_t gpa, int *err)
{
	struct nvme_sq *sq;

	if (!lp->cq[cqid]) {
		*err = -EINVAL;
		return NULL;
	}
	if (!admin_may_wait_for_dma(lp, qid, err))
		return NULL;
	sq = calloc(1, sizeof(*sq));
	if (!sq) {
		*err = -ENOMEM;
		return NULL;
	}
	sq->ring = lp->map ? umdev_as_map_translate(lp->map, gpa, (uint64_t)size * NVME_SQE_SIZE,
						    UMDEV_MEM_READ)
			   : NULL;
	sq->reqs = calloc(size, sizeof(*sq->reqs));
	sq->free = calloc(size, sizeof(*sq->free));
	if ((lp->map && !sq->ring) || !sq->reqs || !sq->free) {
		*err = lp->map && !sq->ring ? -EFAULT : -ENOMEM;
		free(sq->reqs);
		free(sq->free);
		free(sq);
		return NULL;
	}
	sq->lp = lp;
	sq->qid = qid;
	sq->cqid = cqid;
	sq->size = size;
	sq->gpa = gpa;
	for (uint32_t i = 0; i < size; i++) {
		sq->reqs[i].n = lp->n;
		sq->reqs[i].sq = sq;
		sq->free[i] = size - 1 - i;
	}
	sq->nfree = size;
	lp->cq[cqid]->nsq++;
	lp->sq[qid] = sq;
	lp->nsq++;
	return sq;
}

void nvme_sq_free(struct nvme_lp *lp, struct nvme_sq *sq)
{
	struct umdev_nvme *n = lp->n;

	if (!sq)
		return;
	/* Only parked requests (AER) can still be busy here; in-flight I/O drained. */
	for (uint32_t i = 0; i < sq->size; i++)
		if (sq->reqs[i].busy)
			nvme_req_release(&sq->reqs[i]);
	if (!lp->loop)
		for (unsigned i = 0; i < n->naer; i++)
			if (n->aer[i]->sq == sq)
				n->aer[i] = n->aer[--n->naer], i--;
	if (lp->cq[sq->cqid])
		lp->cq[sq->cqid]->nsq--;
	lp->sq[sq->qid] = NULL;
	lp->nsq--;
	free(sq->reqs);
	free(sq->free);
	free(sq);
}

void nvme_queues_free(struct nvme_lp *lp)
{
	for (unsigned q = 0; q <= lp->n->max_queues; q++)
		nvme_sq_free(lp, lp->sq[q]);
	for (unsigned q = 0; q <= lp->n->max_queues; q++)
		nvme_cq_free(lp, lp->cq[q]);
	if (!lp->loop)
		lp->n->naer = 0;
}
