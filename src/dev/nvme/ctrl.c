/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe controller: PCI function, registers and the controller state
 * machine, the admin side, each loop's poller and sleep, namespaces.
 *
 * State machine (CC.EN / CSTS.RDY):
 *   disabled --CC.EN 0->1, valid AQA/ASQ/ACQ/CC--> ready (admin queues live)
 *   disabled --CC.EN 0->1, invalid setup--> CSTS.CFS (until CC.EN -> 0)
 *   ready --guest garbage in queues/doorbells--> ready + CSTS.CFS (queues stop)
 *   ready --CC.SHN--> drained and flushed, CSTS.SHST complete
 *   ready --CC.EN 1->0, FLR--> in-flight I/O drained, queues freed, disabled
 * Register traps and the admin queue run on the control thread and hand
 * queue work to the owning loop with umdev_loop_call_sync().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "nvme_internal.h"
#include "umdev/log.h"
#include "util/shm.h"

uint64_t nvme_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void nvme_fatal(struct umdev_nvme *n, const char *why)
{
	if (!atomic_exchange(&n->fatal, true))
		umdev_err("%s: controller fatal status: %s", n->name, why);
	atomic_fetch_or(&n->csts, NVME_CSTS_CFS);
}

struct nvme_ns *nvme_ns_get(struct nvme_lp *lp, uint32_t nsid)
{
	if (!nsid || nsid > UMDEV_NVME_MAX_NS)
		return NULL;
	return lp->ns[nsid];
}

/* CQ q (and every SQ posting to it) belongs to loop (q - 1) mod nlp. */
struct nvme_lp *nvme_cq_owner(struct umdev_nvme *n, uint16_t cqid)
{
	return cqid ? n->lp[(cqid - 1u) % n->nlp] : &n->alp;
}

/* Run @fn on @lp's thread and wait (the admin side: here). Control thread. */
void nvme_sync(struct umdev_nvme *n, struct nvme_lp *lp, umdev_loop_fn fn, void *arg)
{
	if (!lp->loop)
		fn(arg);
	else if (umdev_loop_call_sync(lp->loop, fn, arg) < 0)
		umdev_err("%s: cannot reach loop %s", n->name, umdev_loop_name(lp->loop));
}

/* @fn(lp) on every data-plane loop in turn. Control thread. */
static void sync_each(struct umdev_nvme *n, umdev_loop_fn fn)
{
	for (unsigned i = 0; i < n->nlp; i++)
		nvme_sync(n, n->lp[i], fn, n->lp[i]);
}

/* ---- a data-plane loop: poll or sleep ---- */

static int poll_cb(void *opaque);

/* Poll @lp's queues (again); its own thread. */
void nvme_wake(struct nvme_lp *lp)
{
	int err = 0;

	if (lp->poller || !lp->enabled)
		return;
	lp->poller = umdev_loop_add_poller(lp->loop, poll_cb, lp, &err);
	if (!lp->poller) {
		umdev_warn_rl(&lp->rl, "%s: cannot poll the queues: %s", lp->n->name,
			      strerror(-err));
		return;
	}
	atomic_store(&lp->sleeping, false);
	lp->last_work_ns = nvme_now_ns();
}

/*
 * Go to sleep unless a doorbell moved meanwhile: tell the trap handler we
 * sleep, arm EventIdx, fence, then look once more. Returns true if asleep.
 */
static bool try_sleep(struct nvme_lp *lp)
{
	atomic_store(&lp->sleeping, true);
	nvme_eventidx_arm(lp);
	/* Store (sleeping, EventIdx) before load (doorbells): see nvme_internal.h. */
	umdev_shm_fence_full();
	if (nvme_process(lp) > 0 || lp->io_inflight || nvme_irq_waiting(lp)) {
		atomic_store(&lp->sleeping, false);
		lp->last_work_ns = nvme_now_ns();
		return false;
	}
	umdev_loop_del_poller(lp->loop, lp->poller);
	lp->poller = NULL;
	lp->st.sleeps++;
	return true;
}

/*
 * poll=on: admin doorbells live in the mmapped page too, and nothing traps;
 * loop 0 notices a new admin tail (or head) and queues an admin pass on the
 * control thread.
 */
static void admin_kick_msg(void *opaque);

static void admin_look(struct nvme_lp *lp)
{
	struct umdev_nvme *n = lp->n;

	if (lp->idx || !n->ctl_loop || atomic_load(&n->kick_queued))
		return;
	if (nvme_db_load(n, 0) == atomic_load(&n->admin_head))
		return;
	if (!atomic_exchange(&n->kick_queued, true) &&
	    umdev_loop_call(n->ctl_loop, admin_kick_msg, n->kick) < 0)
		atomic_store(&n->kick_queued, false);
}

static int poll_cb(void *opaque)
{
	struct nvme_lp *lp = opaque;
	struct umdev_nvme *n = lp->n;
	int work = nvme_process(lp);
	uint64_t now;

	if (n->always_poll)
		admin_look(lp);
	if (work) {
		lp->last_work_ns = nvme_now_ns();
		return work;
	}
	/*
	 * Doorbells in the mmapped page: nothing tells us of a write, so a
	 * loop that owns an SQ (and loop 0, which watches the admin doorbell)
	 * polls for ever; another one sleeps until an SQ is created on it.
	 * Backend I/O in flight, or an interrupt held back by coalescing,
	 * keeps the poller too: its pass posts the interrupts.
	 */
	if ((n->always_poll && (lp->nsq || !lp->idx)) || lp->io_inflight ||
	    nvme_irq_waiting(lp))
		return 0;
	now = nvme_now_ns();
	if (!lp->last_work_ns)
		lp->last_work_ns = now;
	if (now - lp->last_work_ns >= (uint64_t)n->poll_us * 1000)
		try_sleep(lp);
	return 0;
}

/* A trapped doorbell write (or a spurious wake-up) while asleep. */
static void wake_cb(void *opaque, uint32_t events)
{
	struct nvme_lp *lp = opaque;
	uint64_t v;

	(void)events;
	if (read(lp->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		umdev_warn_rl(&lp->rl, "%s: wake eventfd: %s", lp->n->name, strerror(errno));
	nvme_wake(lp);
}

static void io_start(void *opaque)
{
	struct nvme_lp *lp = opaque;

	lp->enabled = true;
	nvme_wake(lp);
}

static void io_stop(void *opaque)
{
	struct nvme_lp *lp = opaque;

	lp->enabled = false;
	if (lp->poller)
		umdev_loop_del_poller(lp->loop, lp->poller);
	lp->poller = NULL;
	atomic_store(&lp->sleeping, false);
}

static void io_reset_lp(void *opaque)
{
	struct nvme_lp *lp = opaque;

	nvme_queues_free(lp);
	nvme_drop_map(lp);
}

static void io_drop_map(void *opaque)
{
	nvme_drop_map(opaque);
}

/* ---- the admin side (control thread) ---- */

/* One admin pass, and more while there is work. */
static void admin_run(void *opaque)
{
	struct umdev_nvme *n = opaque;

	atomic_store(&n->admin_pending, false);
	for (unsigned i = 0; i < 64 && nvme_process(&n->alp) > 0; i++)
		;
}

static void admin_kick_msg(void *opaque)
{
	struct nvme_kick *k = opaque;

	if (!k->n) {
		free(k); /* the controller went while this was queued */
		return;
	}
	atomic_store(&k->n->kick_queued, false);
	admin_run(k->n);
}

/* A trapped admin doorbell: run the admin queue once the write is answered. */
static void admin_kick(struct umdev_nvme *n)
{
	if (atomic_exchange(&n->admin_pending, true))
		return;
	if (umdev_pci_defer(n->pci, admin_run, n) < 0)
		admin_run(n);
}

int nvme_process_all(struct umdev_nvme *n)
{
	int work = nvme_process(&n->alp);

	for (unsigned i = 0; i < n->nlp; i++)
		work += nvme_process(n->lp[i]);
	return work;
}

static void stats_one(void *opaque)
{
	struct nvme_lp *lp = opaque;
	struct nvme_lp_stats *out = lp->n->st_tmp;

	out->io_cmds += lp->st.io_cmds;
	out->read_bytes += lp->st.read_bytes;
	out->write_bytes += lp->st.write_bytes;
	out->errors += lp->st.errors;
	out->irqs += lp->st.irqs;
	out->polls += lp->st.polls;
	out->sleeps += lp->st.sleeps;
}

/* Every loop's statistics added up, plus the admin side's. Control thread. */
void nvme_stats_sum(struct umdev_nvme *n, struct nvme_lp_stats *out)
{
	memset(out, 0, sizeof(*out));
	n->st_tmp = out;
	stats_one(&n->alp);
	sync_each(n, stats_one);
	n->st_tmp = NULL;
}

static int enable_admin(struct umdev_nvme *n)
{
	uint32_t sqs = NVME_AQA_ASQS(n->aqa) + 1, cqs = NVME_AQA_ACQS(n->aqa) + 1;
	int err;

	atomic_store(&n->fatal, false);
	n->cc_io = n->cc;
	nvme_features_reset(n);
	if (!nvme_cq_new(&n->alp, 0, cqs, n->acq, true, 0, &err) ||
	    !nvme_sq_new(&n->alp, 0, 0, sqs, n->asq, &err)) {
		nvme_queues_free(&n->alp);
		return err ? err : -EIO;
	}
	atomic_store(&n->admin_head, 0);
	n->alp.enabled = true;
	n->enabled = true;
	sync_each(n, io_start);
	return 0;
}

static void reset_queues(struct umdev_nvme *n)
{
	sync_each(n, io_reset_lp);
	nvme_queues_free(&n->alp);
	nvme_drop_map(&n->alp);
	n->alp.enabled = false;
	n->enabled = false;
	memset(n->sq_cqid, 0, sizeof(n->sq_cqid));
	memset(n->cq_live, 0, sizeof(n->cq_live));
	memset(n->cq_nsq, 0, sizeof(n->cq_nsq));
	n->dbbuf_gpa = n->ei_gpa = 0;
	atomic_store(&n->fatal, false);
	n->ns_event_pending = false;
	n->ns_event_masked = false;
	n->nchanged = 0;
	n->changed_overflow = false;
	/* The doorbells belong to the controller: back to zero. */
	for (unsigned i = 0; i < 2 * (n->max_queues + 1); i++)
		nvme_db_store(n, i, 0);
	atomic_store(&n->admin_head, 0);
}

struct count_args {
	struct nvme_lp *lp;
	struct nvme_ns *ns; /* NULL: the whole controller */
	unsigned count;
};

static void io_count(void *opaque)
{
	struct count_args *a = opaque;

	a->count = a->ns ? a->ns->inflight[a->lp->idx] : a->lp->io_inflight;
}

/* Wait (bounded) until backend I/O of @ns (or all) has completed on every loop. */
static void drain(struct umdev_nvme *n, struct nvme_ns *ns)
{
	for (unsigned i = 0; i < 100000; i++) {
		unsigned total = 0;

		for (unsigned k = 0; k < n->nlp; k++) {
			struct count_args a = { n->lp[k], ns, 0 };

			if (umdev_loop_call_sync(n->lp[k]->loop, io_count, &a) == 0)
				total += a.count;
		}
		if (!total)
			return;
		usleep(100);
	}
	umdev_warn("%s: in-flight I/O did not drain in 10 s", n->name);
}

static void ctrl_disable(struct umdev_nvme *n)
{
	sync_each(n, io_stop);
	n->alp.enabled = false;
	drain(n, NULL);
	reset_queues(n);
}

static void flush_all(struct umdev_nvme *n)
{
	for (uint32_t id = 1; id <= UMDEV_NVME_MAX_NS; id++) {
		struct nvme_ns *ns = n->alp.ns[id];

		if (ns && umdev_bdev_flush_sync(ns->bdev) < 0)
			umdev_warn("%s: namespace %u: flush failed at shutdown", n->name, id);
	}
}

static bool enable_valid(struct umdev_nvme *n, const char **why)
{
	unsigned mps = (n->cc & NVME_CC_MPS_MASK) >> NVME_CC_MPS_SHIFT;
	unsigned css = (n->cc & NVME_CC_CSS_MASK) >> NVME_CC_CSS_SHIFT;

	*why = NULL;
	if (mps != 0)
		*why = "memory page size other than 4 KiB";
	else if (css != NVME_CC_CSS_NVM && css != NVME_CC_CSS_ADMIN)
		*why = "unsupported command set";
	else if (!NVME_AQA_ASQS(n->aqa) || !NVME_AQA_ACQS(n->aqa))
		*why = "admin queue smaller than 2 entries";
	else if ((n->asq | n->acq) & (NVME_PAGE - 1))
		*why = "admin queue not page aligned";
	return !*why;
}

static void cc_write(struct umdev_nvme *n, uint32_t v)
{
	uint32_t old = n->cc;
	const char *why;

	if ((old & NVME_CC_EN) && !(v & NVME_CC_EN)) {
		ctrl_disable(n);
		n->cc = v;
		atomic_store(&n->csts, 0);
		return;
	}
	if (!(old & NVME_CC_EN) && (v & NVME_CC_EN)) {
		n->cc = v;
		if (!enable_valid(n, &why)) {
			umdev_err("%s: enable refused: %s", n->name, why);
			atomic_fetch_or(&n->csts, NVME_CSTS_CFS);
			return;
		}
		if (enable_admin(n) < 0) {
			umdev_err("%s: enable refused: admin queues are not in guest memory",
				  n->name);
			atomic_fetch_or(&n->csts, NVME_CSTS_CFS);
			return;
		}
		atomic_store(&n->csts, NVME_CSTS_RDY);
	}
	/* While enabled only SHN may change. */
	if (old & NVME_CC_EN)
		v = (old & ~NVME_CC_SHN_MASK) | (v & NVME_CC_SHN_MASK);
	n->cc = v;
	if ((v & NVME_CC_SHN_MASK) && !(old & NVME_CC_SHN_MASK)) {
		uint32_t cs;

		cs = atomic_load(&n->csts) & ~NVME_CSTS_SHST_MASK;
		atomic_store(&n->csts, cs | NVME_CSTS_SHST_OCCURRING << NVME_CSTS_SHST_SHIFT);
		if (old & NVME_CC_EN) {
			sync_each(n, io_stop);
			n->alp.enabled = false;
			drain(n, NULL);
		}
		flush_all(n);
		cs = atomic_load(&n->csts) & ~NVME_CSTS_SHST_MASK;
		atomic_store(&n->csts, cs | NVME_CSTS_SHST_COMPLETE << NVME_CSTS_SHST_SHIFT);
	}
}

static void regs_image(struct umdev_nvme *n, uint8_t img[0x40])
{
	uint32_t csts = atomic_load(&n->csts), intms = atomic_load(&n->intms);

	memset(img, 0, 0x40);
	memcpy(img + NVME_REG_CAP, &n->cap, 8);
	memcpy(img + NVME_REG_VS, &n->vs, 4);
	memcpy(img + NVME_REG_INTMS, &intms, 4);
	memcpy(img + NVME_REG_INTMC, &intms, 4);
	memcpy(img + NVME_REG_CC, &n->cc, 4);
	memcpy(img + NVME_REG_CSTS, &csts, 4);
	memcpy(img + NVME_REG_AQA, &n->aqa, 4);
	memcpy(img + NVME_REG_ASQ, &n->asq, 8);
	memcpy(img + NVME_REG_ACQ, &n->acq, 8);
}

static void map_unblock(void *opaque)
{
	struct umdev_nvme *n = opaque;

	atomic_store(&n->map_blocked, false);
}

static int regs_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	struct umdev_nvme *n = opaque;
	uint8_t img[0x40];

	/* A client is attached and talking to us: DMA maps may be asked for. */
	if (atomic_load(&n->map_blocked))
		map_unblock(n);

	regs_image(n, img);
	memset(buf, 0, len);
	if (off < sizeof(img))
		memcpy(buf, img + off, len < sizeof(img) - off ? len : sizeof(img) - off);
	return 0;
}

static void reg_write32(struct umdev_nvme *n, uint64_t off, uint32_t v)
{
	bool en = n->cc & NVME_CC_EN;
	umdev_irq *irq = umdev_pci_irq(n->pci);

	switch (off) {
	case NVME_REG_INTMS:
		atomic_fetch_or(&n->intms, v);
		break;
	case NVME_REG_INTMC:
		atomic_fetch_and(&n->intms, ~v);
		/* An unmasked vector may have completions waiting: signal it. */
		for (unsigned i = 0; i < 32; i++)
			if ((v & (1u << i)) && umdev_irq_mode(irq) != UMDEV_IRQ_MODE_MSIX &&
			    i < umdev_irq_vectors(irq) && umdev_irq_trigger(irq, i) < 0)
				break;
		break;
	case NVME_REG_CC:
		cc_write(n, v);
		break;
	case NVME_REG_AQA:
		if (!en)
			n->aqa = v & 0x0fff0fff;
		break;
	case NVME_REG_ASQ:
		if (!en)
			n->asq = (n->asq & ~0xffffffffull) | v;
		break;
	case NVME_REG_ASQ + 4:
		if (!en)
			n->asq = (n->asq & 0xffffffffull) | (uint64_t)v << 32;
		break;
	case NVME_REG_ACQ:
		if (!en)
			n->acq = (n->acq & ~0xffffffffull) | v;
		break;
	case NVME_REG_ACQ + 4:
		if (!en)
			n->acq = (n->acq & 0xffffffffull) | (uint64_t)v << 32;
		break;
	case NVME_REG_NSSR:
	default:
		break; /* read-only or not implemented: ignored */
	}
}

static int regs_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	struct umdev_nvme *n = opaque;
	uint32_t v[2] = { 0, 0 };

	if (atomic_load(&n->map_blocked))
		map_unblock(n);

	if ((len != 4 && len != 8) || off % 4) {
		umdev_dbg("%s: %zu-byte register write at 0x%" PRIx64 " ignored", n->name, len,
			  off);
		return 0;
	}
	memcpy(v, buf, len);
	reg_write32(n, off, v[0]);
	if (len == 8)
		reg_write32(n, off + 4, v[1]);
	return 0;
}

/*
 * A trapped doorbell write (the page is not mmapped unless poll=on). The
 * value is stored where the loops read it, then the loop that owns the
 * queue is woken if it sleeps (a write to an admin doorbell queues an
 * admin pass instead). Linux rings the real doorbell of a shadowed queue only
 * when EventIdx asks, which is only while its loop sleeps.
 */
static int db_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	struct umdev_nvme *n = opaque;
	uint64_t idx = (off - NVME_DB_OFF) / 4;
	unsigned qid;
	struct nvme_lp *lp;
	uint32_t v;

	if (atomic_load(&n->map_blocked))
		map_unblock(n);
	if (len != 4 || off % 4 || idx >= 2 * ((uint64_t)n->max_queues + 1)) {
		umdev_warn_rl(&n->rl_ctl, "%s: %zu-byte doorbell write at 0x%" PRIx64 " ignored",
			      n->name, len, off);
		return 0;
	}
	memcpy(&v, buf, 4);
	nvme_db_store(n, (unsigned)idx, v);
	qid = (unsigned)idx / 2;
	if (!qid) {
		admin_kick(n);
		return 0;
	}
	/* The loop that owns the queue: the CQ's, for an SQ the CQ it posts to. */
	if (idx & 1)
		lp = n->cq_live[qid] ? nvme_cq_owner(n, (uint16_t)qid) : NULL;
	else
		lp = n->sq_cqid[qid] ? nvme_cq_owner(n, n->sq_cqid[qid]) : NULL;
	if (!lp)
		return 0;
	/* Store (doorbell) before load (sleeping): see struct nvme_lp. */
	umdev_shm_fence_full();
	if (atomic_load(&lp->sleeping)) {
		uint64_t one = 1;

		if (write(lp->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			umdev_warn_rl(&n->rl_ctl, "%s: wake eventfd: %s", n->name,
				      strerror(errno));
	}
	return 0;
}

static int db_read_trap(void *opaque, uint64_t off, void *buf, size_t len)
{
	struct umdev_nvme *n = opaque;
	uint64_t idx = (off - NVME_DB_OFF) / 4;
	uint32_t v = 0;

	/* Doorbells read back what was written last (the spec leaves it undefined). */
	if (off % 4 == 0 && idx < 2 * ((uint64_t)n->max_queues + 1))
		v = nvme_db_load(n, (unsigned)idx);
	memset(buf, 0, len);
	memcpy(buf, &v, len < 4 ? len : 4);
	return 0;
}

/* ---- PCI callbacks (control thread) ---- */

static void pci_reset(void *opaque)
{
	struct umdev_nvme *n = opaque;

	if (n->cc & NVME_CC_EN)
		ctrl_disable(n);
	else
		reset_queues(n);
	n->cc = n->aqa = 0;
	atomic_store(&n->intms, 0);
	n->asq = n->acq = 0;
	atomic_store(&n->csts, 0);
	map_unblock(n);
}

/* Every side drops its DMA map; no side takes a new one until unblocked. */
static void drop_maps(struct umdev_nvme *n)
{
	atomic_store(&n->map_blocked, true);
	nvme_drop_map(&n->alp);
	sync_each(n, io_drop_map);
}

static void pci_dma_unmap(void *opaque, uint64_t iova, uint64_t len)
{
	struct umdev_nvme *n = opaque;

	/*
	 * Drop the loops' maps (requests in flight keep theirs) and let them
	 * take a fresh one only once this DMA_UNMAP has been answered: by
	 * then the window is gone, or, on a disconnect, the deferred work never
	 * runs and the next client's first access unblocks.
	 */
	drop_maps(n);
	drain(n, NULL);
	if (umdev_pci_defer(n->pci, map_unblock, n) < 0)
		umdev_dbg("%s: DMA map stays blocked until the next client access", n->name);
}

static void pci_command(void *opaque, uint16_t old_cmd, uint16_t new_cmd)
{
	struct umdev_nvme *n = opaque;

	if ((old_cmd & 0x4) && !(new_cmd & 0x4)) {
		/* Bus mastering off: no more DMA until it is back. */
		drop_maps(n);
		drain(n, NULL);
	} else if (new_cmd & 0x4) {
		map_unblock(n);
	}
}

static const struct umdev_pci_dev_ops nvme_pci_ops = {
	.reset = pci_reset,
	.dma_unmap = pci_dma_unmap,
	.command = pci_command,
};

/* ---- lifecycle ---- */

struct attach_args {
	struct nvme_lp *lp;
	int ret;
};

static void io_attach(void *opaque)
{
	struct attach_args *a = opaque;

	a->ret = umdev_loop_add_fd(a->lp->loop, a->lp->wake_fd, EPOLLIN, wake_cb, a->lp);
}

static void io_detach(void *opaque)
{
	struct nvme_lp *lp = opaque;

	io_stop(lp);
	umdev_loop_del_fd(lp->loop, lp->wake_fd);
}

static void lps_free(struct umdev_nvme *n)
{
	for (unsigned i = 0; i < n->nlp; i++) {
		if (n->lp[i]->wake_fd >= 0)
			close(n->lp[i]->wake_fd);
		free(n->lp[i]);
	}
	n->nlp = 0;
}

/* One struct nvme_lp per loop, its wake eventfd watched there. */
static int lps_new(struct umdev_nvme *n, umdev_loop *const *loops, unsigned nloops)
{
	for (unsigned i = 0; i < nloops; i++) {
		struct nvme_lp *lp = calloc(1, sizeof(*lp));
		struct attach_args a = { lp, -EIO };

		if (!lp)
			return -ENOMEM;
		lp->n = n;
		lp->loop = loops[i];
		lp->idx = i;
		lp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		n->lp[n->nlp++] = lp;
		if (lp->wake_fd < 0)
			return -errno;
		if (umdev_loop_call_sync(lp->loop, io_attach, &a) < 0 || a.ret < 0) {
			close(lp->wake_fd);
			lp->wake_fd = -1;
			return a.ret < 0 ? a.ret : -EIO;
		}
	}
	return 0;
}

umdev_nvme *umdev_nvme_new(const struct umdev_nvme_config *cfg, int *err)
{
	struct umdev_nvme *n;
	struct umdev_pci_config c = {
		.vendor_id = UMDEV_NVME_PCI_VENDOR,
		.device_id = UMDEV_NVME_PCI_DEVICE,
		.subsys_vendor_id = UMDEV_NVME_PCI_VENDOR,
		.subsys_id = UMDEV_NVME_PCI_DEVICE,
		.class_code = NVME_PCI_CLASS,
		.msix_bar = NVME_MSIX_BAR,
		.msix_table_offset = 0,
		.msix_pba_offset = NVME_MSIX_PBA_OFF,
		.pm = true,
		.pcie = true,
		.ops = &nvme_pci_ops,
	};
	umdev_loop *const *loops = cfg->num_loops ? cfg->loops : &cfg->loop;
	unsigned nloops = cfg->num_loops ? cfg->num_loops : 1;
	int ret;

	if (!loops[0] || !cfg->name || cfg->max_queues < 1 ||
	    cfg->max_queues > UMDEV_NVME_MAX_QUEUES || nloops > NVME_MAX_LOOPS) {
		*err = -EINVAL;
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&n->errlog_lock, NULL);
	snprintf(n->name, sizeof(n->name), "%s", cfg->name);
	snprintf(n->serial, sizeof(n->serial), "%s", cfg->serial ? cfg->serial : cfg->name);
	n->ctl_loop = cfg->ctl_loop;
	n->max_queues = cfg->max_queues;
	n->poll_us = cfg->poll_us ? cfg->poll_us : 64;
	n->always_poll = cfg->always_poll;
	n->alp.n = n;
	n->alp.wake_fd = -1;
	n->cap = NVME_MQES | NVME_CAP_CQR | (uint64_t)20 << NVME_CAP_TO_SHIFT |
		 (uint64_t)NVME_CAP_CSS_NVM << NVME_CAP_CSS_SHIFT;
	n->vs = NVME_VS(1, 4, 0);
	n->power_on_ns = nvme_now_ns();
	nvme_features_reset(n);
	n->db_trapped = !n->always_poll;
	n->db_store = calloc(2 * (n->max_queues + 1), sizeof(*n->db_store));
	n->kick = calloc(1, sizeof(*n->kick));
	if (!n->db_store || !n->kick) {
		*err = -ENOMEM;
		goto fail;
	}
	n->kick->n = n;
	c.name = n->name;
	c.opaque = n;
	c.irq.intx = true;
	c.irq.msix_vectors = n->max_queues + 1;
	c.bars[0] = (struct umdev_pci_bar_desc){
		.size = NVME_BAR0_SIZE,
		.flags = UMDEV_PCI_BAR_MEM64,
		.traps = { { 0, NVME_DB_OFF, regs_read, regs_write, n },
			   { NVME_DB_OFF, 0x1000, db_read_trap, db_write, n } },
		.num_traps = n->db_trapped ? 2 : 1,
		.shared = { { NVME_DB_OFF, 0x1000 } },
		.num_shared = n->db_trapped ? 0 : 1,
	};
	c.bars[NVME_MSIX_BAR].size = NVME_BAR4_SIZE;
	n->pci = umdev_pci_dev_new(&c, err);
	if (!n->pci)
		goto fail;
	n->db = n->db_trapped ? n->db_store :
		(uint32_t *)((uint8_t *)umdev_pci_bar_mem(n->pci, 0) + NVME_DB_OFF);
	ret = lps_new(n, loops, nloops);
	if (ret < 0) {
		*err = ret;
		goto fail;
	}
	return n;
fail:
	for (unsigned i = 0; i < n->nlp; i++)
		if (n->lp[i]->wake_fd >= 0)
			nvme_sync(n, n->lp[i], io_detach, n->lp[i]);
	lps_free(n);
	umdev_pci_dev_free(n->pci);
	free(n->db_store);
	free(n->kick);
	pthread_mutex_destroy(&n->errlog_lock);
	free(n);
	return NULL;
}

static void ns_free(struct umdev_nvme *n, struct nvme_ns *ns);

void umdev_nvme_free(umdev_nvme *n)
{
	if (!n)
		return;
	if (n->cc & NVME_CC_EN)
		ctrl_disable(n);
	else
		reset_queues(n);
	sync_each(n, io_detach);
	for (uint32_t id = 1; id <= UMDEV_NVME_MAX_NS; id++) {
		struct nvme_ns *ns = n->alp.ns[id];

		if (!ns)
			continue;
		n->alp.ns[id] = NULL;
		ns_free(n, ns);
	}
	lps_free(n);
	umdev_pci_dev_free(n->pci);
	free(n->db_store);
	/* Loop 0 is detached: no new message. A queued one frees the token. */
	if (atomic_load(&n->kick_queued))
		n->kick->n = NULL;
	else
		free(n->kick);
	pthread_mutex_destroy(&n->errlog_lock);
	free(n);
}

umdev_pci_dev *umdev_nvme_pci(umdev_nvme *n)
{
	return n->pci;
}

/* ---- namespaces ----
 *
 * Every loop has its own namespace table and its own backend queue for each
 * namespace. Adding one builds the queues loop by loop, then publishes it
 * in each table; removing it takes it out of every table (new commands get
 * Invalid Namespace), waits for its I/O on every loop, then frees.
 */

struct ns_args {
	struct nvme_lp *lp;
	struct nvme_ns *ns;
	uint32_t nsid;
	int ret;
};

static void io_ns_queue(void *opaque)
{
	struct ns_args *a = opaque;
	int err = 0;

	a->ns->q[a->lp->idx] = umdev_bdev_queue_new(a->ns->bdev, a->lp->loop, &err);
	a->ret = a->ns->q[a->lp->idx] ? 0 : (err ? err : -ENOMEM);
}

static void io_ns_publish(void *opaque)
{
	struct ns_args *a = opaque;

	a->lp->ns[a->nsid] = a->ns;
}

static void io_ns_unpublish(void *opaque)
{
	struct ns_args *a = opaque;

	a->lp->ns[a->nsid] = NULL;
}

static void io_ns_queue_free(void *opaque)
{
	struct ns_args *a = opaque;

	umdev_bdev_queue_free(a->ns->q[a->lp->idx]);
	a->ns->q[a->lp->idx] = NULL;
}

static void each_ns(struct umdev_nvme *n, struct nvme_ns *ns, umdev_loop_fn fn)
{
	for (unsigned i = 0; i < n->nlp; i++) {
		struct ns_args a = { n->lp[i], ns, ns->nsid, 0 };

		nvme_sync(n, n->lp[i], fn, &a);
	}
}

/* Out of every loop's table, I/O drained, queues freed, backend closed. */
static void ns_free(struct umdev_nvme *n, struct nvme_ns *ns)
{
	each_ns(n, ns, io_ns_unpublish);
	drain(n, ns);
	each_ns(n, ns, io_ns_queue_free);
	umdev_bdev_close(ns->bdev);
	free(ns);
}

/* FNV-1a: a stable, unique-enough NGUID from the serial and the NSID. */
static void make_nguid(const char *serial, uint32_t nsid, uint8_t out[16])
{
	uint64_t h1 = 0xcbf29ce484222325ull, h2;

	for (const char *p = serial; *p; p++)
		h1 = (h1 ^ (uint8_t)*p) * 0x100000001b3ull;
	h2 = h1;
	for (unsigned i = 0; i < 4; i++)
		h2 = (h2 ^ ((nsid >> (8 * i)) & 0xff)) * 0x100000001b3ull;
	h1 = (h1 ^ 0x75) * 0x100000001b3ull;
	memcpy(out, &h1, 8);
	memcpy(out + 8, &h2, 8);
}

/*
 * Control thread: the backend of a whole-backend namespace was resized. New
 * commands see the new size at once; the host hears of it through a
 * Namespace Attribute Changed event and re-reads Identify Namespace.
 */
static void ns_resized(void *opaque, uint64_t size)
{
	struct nvme_ns *ns = opaque;
	struct umdev_nvme *n = ns->n;
	uint64_t nlb = size > ns->offset ? (size - ns->offset) >> ns->lba_shift : 0;

	ns->size = nlb << ns->lba_shift;
	atomic_store_explicit(&ns->nlb, nlb, memory_order_relaxed);
	umdev_info("%s: namespace %u now %" PRIu64 " blocks", n->name, ns->nsid, nlb);
	if (n->enabled)
		nvme_aer_post_ns_changed(n, ns->nsid);
}

int umdev_nvme_ns_add(umdev_nvme *n, umdev_bdev *bdev, uint64_t offset, uint64_t size,
		      uint32_t nsid, uint32_t *out_nsid)
{
	struct umdev_bdev_info info;
	struct nvme_ns *ns;
	uint32_t id = nsid;
	bool whole = !size;

	umdev_bdev_get_info(bdev, &info);
	if (!size && offset <= info.size)
		size = info.size - offset;
	if (!size || offset > info.size || size > info.size - offset ||
	    offset % info.block_size || size % info.block_size)
		return -EINVAL;
	if (!id) {
		for (id = 1; id <= UMDEV_NVME_MAX_NS && n->alp.ns[id]; id++)
			;
		if (id > UMDEV_NVME_MAX_NS)
			return -ENOSPC;
	} else if (id > UMDEV_NVME_MAX_NS) {
		return -EINVAL;
	} else if (n->alp.ns[id]) {
		return -EEXIST;
	}
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->nsid = id;
	ns->n = n;
	ns->bdev = bdev;
	ns->offset = offset;
	ns->size = size;
	ns->whole = whole;
	ns->lba_shift = (uint32_t)__builtin_ctz(info.block_size);
	atomic_init(&ns->nlb, size >> ns->lba_shift);
	ns->can_discard = info.can_discard;
	ns->can_wz = info.can_write_zeroes;
	make_nguid(n->serial, id, ns->nguid);
	for (unsigned i = 0; i < n->nlp; i++) {
		struct ns_args a = { n->lp[i], ns, id, -EIO };

		nvme_sync(n, n->lp[i], io_ns_queue, &a);
		if (a.ret < 0) {
			/* The backend stays the caller's: free only our queues. */
			each_ns(n, ns, io_ns_queue_free);
			free(ns);
			return a.ret;
		}
	}
	/* A namespace to the end of a backend that can grow (RBD) grows with it. */
	if (whole && n->ctl_loop && umdev_bdev_watch_size(bdev, n->ctl_loop, ns_resized, ns) < 0)
		umdev_dbg("%s: namespace %u will not follow resizes of its backend", n->name, id);
	/* Everything a loop reads is set before the namespace is published. */
	each_ns(n, ns, io_ns_publish);
	n->alp.ns[id] = ns;
	if (out_nsid)
		*out_nsid = id;
	if (n->enabled)
		nvme_aer_post_ns_changed(n, id);
	umdev_info("%s: namespace %u: %s [%" PRIu64 ", +%" PRIu64 ") %u-byte blocks", n->name,
		   id, umdev_bdev_spec(bdev), offset, size, info.block_size);
	return 0;
}

int umdev_nvme_ns_remove(umdev_nvme *n, uint32_t nsid)
{
	struct nvme_ns *ns = nsid && nsid <= UMDEV_NVME_MAX_NS ? n->alp.ns[nsid] : NULL;

	if (!ns)
		return -ENODEV;
	n->alp.ns[nsid] = NULL;
	if (n->enabled)
		nvme_aer_post_ns_changed(n, nsid);
	ns_free(n, ns);
	umdev_info("%s: namespace %u removed", n->name, nsid);
	return 0;
}

unsigned umdev_nvme_ns_list(umdev_nvme *n, struct umdev_nvme_ns_info *out, unsigned max)
{
	unsigned count = 0;

	for (uint32_t id = 1; id <= UMDEV_NVME_MAX_NS && count < max; id++) {
		struct nvme_ns *ns = n->alp.ns[id];

		if (!ns)
			continue;
		out[count++] = (struct umdev_nvme_ns_info){
			.nsid = id,
			.spec = umdev_bdev_spec(ns->bdev),
			.offset = ns->offset,
			.size = ns->size,
			.block_size = 1u << ns->lba_shift,
		};
	}
	return count;
}

struct stats_args {
	struct nvme_lp *lp;
	struct umdev_nvme_stats *st;
};

static void io_stats(void *opaque)
{
	struct stats_args *a = opaque;
	struct nvme_lp *lp = a->lp;

	a->st->inflight += lp->io_inflight;
	for (unsigned q = 0; q <= lp->n->max_queues; q++) {
		if (!lp->sq[q])
			continue;
		a->st->sq[q].live = true;
		a->st->sq[q].cmds = lp->sq[q]->cmds;
		a->st->sq[q].inflight = lp->sq[q]->inflight;
		a->st->sq[q].loop = lp->loop ? (int)lp->idx : -1;
		a->st->io_queues += q != 0;
	}
}

void umdev_nvme_get_stats(umdev_nvme *n, struct umdev_nvme_stats *st)
{
	struct nvme_lp_stats sum;
	struct stats_args a = { &n->alp, st };

	memset(st, 0, sizeof(*st));
	nvme_stats_sum(n, &sum);
	st->admin_cmds = n->admin_cmds;
	st->io_cmds = sum.io_cmds;
	st->read_bytes = sum.read_bytes;
	st->write_bytes = sum.write_bytes;
	st->errors = sum.errors;
	st->irqs = sum.irqs;
	st->polls = sum.polls;
	st->sleeps = sum.sleeps;
	io_stats(&a);
	for (unsigned i = 0; i < n->nlp; i++) {
		a.lp = n->lp[i];
		nvme_sync(n, n->lp[i], io_stats, &a);
	}
	st->csts = atomic_load(&n->csts);
}

/* Sizes as the backends spell them, plus a plain "0" (an offset may be zero). */
static int parse_offset(const char *s, uint64_t *out)
{
	if (!strcmp(s, "0")) {
		*out = 0;
		return 0;
	}
	return umdev_bdev_parse_size(s, out);
}

int umdev_nvme_parse_ns(const char *spec, char *backend, size_t blen, uint64_t *offset,
			uint64_t *size)
{
	const char *at = strrchr(spec, '@');
	size_t bl = at ? (size_t)(at - spec) : strlen(spec);

	*offset = *size = 0;
	if (bl + 1 > blen)
		return -ENAMETOOLONG;
	if (!bl)
		return -EINVAL;
	memcpy(backend, spec, bl);
	backend[bl] = 0;
	if (at) {
		char num[64];
		const char *plus = strchr(at + 1, '+');
		size_t ol = plus ? (size_t)(plus - at - 1) : strlen(at + 1);

		if (!ol || ol >= sizeof(num))
			return -EINVAL;
		memcpy(num, at + 1, ol);
		num[ol] = 0;
		if (parse_offset(num, offset) < 0)
			return -EINVAL;
		if (plus && (umdev_bdev_parse_size(plus + 1, size) < 0 || !*size))
			return -EINVAL;
	}
	return 0;
}
