/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe controller: PCI function, registers and the controller state
 * machine, the I/O thread's poller, namespaces.
 *
 * State machine (CC.EN / CSTS.RDY):
 *   disabled --CC.EN 0->1, valid AQA/ASQ/ACQ/CC--> ready (admin queues live)
 *   disabled --CC.EN 0->1, invalid setup--> CSTS.CFS (until CC.EN -> 0)
 *   ready --guest garbage in queues/doorbells--> ready + CSTS.CFS (queues stop)
 *   ready --CC.SHN--> drained and flushed, CSTS.SHST complete
 *   ready --CC.EN 1->0, FLR--> in-flight I/O drained, queues freed, disabled
 * Register traps run on the control thread and hand queue work to the I/O
 * thread with umdev_loop_call_sync().
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
	if (!n->fatal)
		umdev_err("%s: controller fatal status: %s", n->name, why);
	n->fatal = true;
	atomic_fetch_or(&n->csts, NVME_CSTS_CFS);
}

struct nvme_ns *nvme_ns_get(struct umdev_nvme *n, uint32_t nsid)
{
	struct nvme_ns *ns;

	if (!nsid || nsid > UMDEV_NVME_MAX_NS)
		return NULL;
	ns = n->ns[nsid];
	return ns && !ns->removed ? ns : NULL;
}

/* ---- I/O thread: poll or sleep ---- */

static int poll_cb(void *opaque);

static void wake(struct umdev_nvme *n)
{
	int err = 0;

	if (n->poller || !n->enabled)
		return;
	n->poller = umdev_loop_add_poller(n->loop, poll_cb, n, &err);
	if (!n->poller) {
		umdev_warn_rl(&n->rl_io, "%s: cannot poll the queues: %s", n->name, strerror(-err));
		return;
	}
	atomic_store(&n->sleeping, false);
	n->last_work_ns = nvme_now_ns();
}

/*
 * Go to sleep unless a doorbell moved meanwhile: tell the trap handler we
 * sleep, arm EventIdx, fence, then look once more. Returns true if asleep.
 */
static bool try_sleep(struct umdev_nvme *n)
{
	atomic_store(&n->sleeping, true);
	nvme_eventidx_arm(n);
	/* Store (sleeping, EventIdx) before load (doorbells): see nvme_internal.h. */
	umdev_shm_fence_full();
	if (nvme_process(n) > 0 || n->io_inflight || nvme_irq_waiting(n)) {
		atomic_store(&n->sleeping, false);
		n->last_work_ns = nvme_now_ns();
		return false;
	}
	umdev_loop_del_poller(n->loop, n->poller);
	n->poller = NULL;
	n->st.sleeps++;
	return true;
}

static int poll_cb(void *opaque)
{
	struct umdev_nvme *n = opaque;
	int work = nvme_process(n);
	uint64_t now;

	if (work) {
		n->last_work_ns = nvme_now_ns();
		return work;
	}
	/*
	 * Doorbells in the mmapped page: nothing tells us of a write, so poll
	 * for ever. Backend I/O in flight, or an interrupt held back by
	 * coalescing, keeps the poller too: its pass posts the interrupts.
	 */
	if (n->always_poll || n->io_inflight || nvme_irq_waiting(n))
		return 0;
	now = nvme_now_ns();
	if (!n->last_work_ns)
		n->last_work_ns = now;
	if (now - n->last_work_ns >= (uint64_t)n->poll_us * 1000)
		try_sleep(n);
	return 0;
}

/* A trapped doorbell write (or a spurious wake-up) while asleep. */
static void wake_cb(void *opaque, uint32_t events)
{
	struct umdev_nvme *n = opaque;
	uint64_t v;

	(void)events;
	if (read(n->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		umdev_warn_rl(&n->rl_io, "%s: wake eventfd: %s", n->name, strerror(errno));
	wake(n);
}

static void io_start(void *opaque)
{
	struct umdev_nvme *n = opaque;

	n->enabled = true;
	wake(n);
}

static void io_stop(void *opaque)
{
	struct umdev_nvme *n = opaque;

	n->enabled = false;
	if (n->poller)
		umdev_loop_del_poller(n->loop, n->poller);
	n->poller = NULL;
	atomic_store(&n->sleeping, false);
}

struct enable_args {
	struct umdev_nvme *n;
	int ret;
};

static void io_enable(void *opaque)
{
	struct enable_args *a = opaque;
	struct umdev_nvme *n = a->n;
	uint32_t sqs = NVME_AQA_ASQS(n->aqa) + 1, cqs = NVME_AQA_ACQS(n->aqa) + 1;
	int err;

	n->fatal = false;
	n->cc_io = n->cc;
	nvme_features_reset(n);
	if (!nvme_cq_new(n, 0, cqs, n->acq, true, 0, &err) ||
	    !nvme_sq_new(n, 0, 0, sqs, n->asq, &err)) {
		nvme_queues_free(n);
		a->ret = err;
		return;
	}
	a->ret = 0;
	io_start(n);
}

static void io_reset_queues(void *opaque)
{
	struct umdev_nvme *n = opaque;

	nvme_queues_free(n);
	nvme_drop_map(n);
	n->dbbuf_gpa = n->ei_gpa = 0;
	n->fatal = false;
	n->ns_event_pending = false;
	n->ns_event_masked = false;
	n->nchanged = 0;
	n->changed_overflow = false;
	/* The doorbell page belongs to the controller: back to zero. */
	for (unsigned i = 0; i < 2 * (n->max_queues + 1); i++)
		nvme_db_store(n, i, 0);
}

struct count_args {
	struct umdev_nvme *n;
	struct nvme_ns *ns; /* NULL: the whole controller */
	unsigned count;
};

static void io_count(void *opaque)
{
	struct count_args *a = opaque;

	a->count = a->ns ? a->ns->inflight : a->n->io_inflight;
}

/* Wait (bounded) until backend I/O of @ns (or all) has completed. */
static void drain(struct umdev_nvme *n, struct nvme_ns *ns)
{
	for (unsigned i = 0; i < 100000; i++) {
		struct count_args a = { n, ns, 0 };

		if (umdev_loop_call_sync(n->loop, io_count, &a) < 0 || !a.count)
			return;
		usleep(100);
	}
	umdev_warn("%s: in-flight I/O did not drain in 10 s", n->name);
}

static void sync_call(struct umdev_nvme *n, umdev_loop_fn fn, void *arg)
{
	if (umdev_loop_call_sync(n->loop, fn, arg) < 0)
		umdev_err("%s: cannot reach the I/O thread", n->name);
}

static void ctrl_disable(struct umdev_nvme *n)
{
	sync_call(n, io_stop, n);
	drain(n, NULL);
	sync_call(n, io_reset_queues, n);
}

static void flush_all(struct umdev_nvme *n)
{
	for (uint32_t id = 1; id <= UMDEV_NVME_MAX_NS; id++) {
		struct nvme_ns *ns = n->ns[id];

		if (ns && !ns->removed && umdev_bdev_flush_sync(ns->bdev) < 0)
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
		struct enable_args a = { n, 0 };

		n->cc = v;
		if (!enable_valid(n, &why)) {
			umdev_err("%s: enable refused: %s", n->name, why);
			atomic_fetch_or(&n->csts, NVME_CSTS_CFS);
			return;
		}
		if (umdev_loop_call_sync(n->loop, io_enable, &a) < 0 || a.ret < 0) {
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
			sync_call(n, io_stop, n);
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
 * value is stored where the I/O thread reads it, then a sleeping I/O
 * thread is woken. Linux rings the real doorbell of a shadowed queue only
 * when EventIdx asks, which is only while the I/O thread sleeps.
 */
static int db_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	struct umdev_nvme *n = opaque;
	uint64_t idx = (off - NVME_DB_OFF) / 4;
	uint32_t v;

	if (atomic_load(&n->map_blocked))
		map_unblock(n);
	if (len != 4 || off % 4 || idx >= 2 * ((uint64_t)n->max_queues + 1)) {
		umdev_warn_rl(&n->rl_ctl, "%s: %zu-byte doorbell write at 0x%" PRIx64 " ignored", n->name,
			      len, off);
		return 0;
	}
	memcpy(&v, buf, 4);
	nvme_db_store(n, (unsigned)idx, v);
	/* Store (doorbell) before load (sleeping): see nvme_internal.h. */
	umdev_shm_fence_full();
	if (atomic_load(&n->sleeping)) {
		uint64_t one = 1;

		if (write(n->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			umdev_warn_rl(&n->rl_ctl, "%s: wake eventfd: %s", n->name, strerror(errno));
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
		sync_call(n, io_reset_queues, n);
	n->cc = n->aqa = 0;
	atomic_store(&n->intms, 0);
	n->asq = n->acq = 0;
	atomic_store(&n->csts, 0);
	map_unblock(n);
}

static void io_drop_map(void *opaque)
{
	struct umdev_nvme *n = opaque;

	atomic_store(&n->map_blocked, true);
	nvme_drop_map(n);
}

static void pci_dma_unmap(void *opaque, uint64_t iova, uint64_t len)
{
	struct umdev_nvme *n = opaque;

	/*
	 * Drop the I/O thread's map (requests in flight keep theirs) and let
	 * it take a fresh one only once this DMA_UNMAP has been answered: by
	 * then the window is gone, or, on a disconnect, the deferred work never
	 * runs and the next client's first access unblocks.
	 */
	sync_call(n, io_drop_map, n);
	drain(n, NULL);
	if (umdev_pci_defer(n->pci, map_unblock, n) < 0)
		umdev_dbg("%s: DMA map stays blocked until the next client access", n->name);
}

static void pci_command(void *opaque, uint16_t old_cmd, uint16_t new_cmd)
{
	struct umdev_nvme *n = opaque;

	if ((old_cmd & 0x4) && !(new_cmd & 0x4)) {
		/* Bus mastering off: no more DMA until it is back. */
		sync_call(n, io_drop_map, n);
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

static void io_attach(void *opaque)
{
	struct enable_args *a = opaque;
	struct umdev_nvme *n = a->n;

	a->ret = umdev_loop_add_fd(n->loop, n->wake_fd, EPOLLIN, wake_cb, n);
}

static void io_detach(void *opaque)
{
	struct umdev_nvme *n = opaque;

	io_stop(n);
	umdev_loop_del_fd(n->loop, n->wake_fd);
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
	struct enable_args a;

	if (!cfg->loop || !cfg->name || cfg->max_queues < 1 ||
	    cfg->max_queues > UMDEV_NVME_MAX_QUEUES) {
		*err = -EINVAL;
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		*err = -ENOMEM;
		return NULL;
	}
	snprintf(n->name, sizeof(n->name), "%s", cfg->name);
	snprintf(n->serial, sizeof(n->serial), "%s", cfg->serial ? cfg->serial : cfg->name);
	n->loop = cfg->loop;
	n->max_queues = cfg->max_queues;
	n->poll_us = cfg->poll_us ? cfg->poll_us : 64;
	n->always_poll = cfg->always_poll;
	n->cap = NVME_MQES | NVME_CAP_CQR | (uint64_t)20 << NVME_CAP_TO_SHIFT |
		 (uint64_t)NVME_CAP_CSS_NVM << NVME_CAP_CSS_SHIFT;
	n->vs = NVME_VS(1, 4, 0);
	n->power_on_ns = nvme_now_ns();
	nvme_features_reset(n);
	n->db_trapped = !n->always_poll;
	n->db_store = calloc(2 * (n->max_queues + 1), sizeof(*n->db_store));
	n->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->wake_fd < 0 || !n->db_store) {
		*err = n->wake_fd < 0 ? -errno : -ENOMEM;
		goto fail;
	}
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
	a.n = n;
	a.ret = 0;
	if (umdev_loop_call_sync(n->loop, io_attach, &a) < 0 || a.ret < 0) {
		*err = a.ret < 0 ? a.ret : -EIO;
		goto fail;
	}
	return n;
fail:
	umdev_pci_dev_free(n->pci);
	if (n->wake_fd >= 0)
		close(n->wake_fd);
	free(n->db_store);
	free(n);
	return NULL;
}

static void io_ns_detach(void *opaque);

void umdev_nvme_free(umdev_nvme *n)
{
	if (!n)
		return;
	if (n->cc & NVME_CC_EN)
		ctrl_disable(n);
	else
		sync_call(n, io_reset_queues, n);
	sync_call(n, io_detach, n);
	for (uint32_t id = 1; id <= UMDEV_NVME_MAX_NS; id++) {
		struct nvme_ns *ns = n->ns[id];

		if (!ns)
			continue;
		drain(n, ns);
		sync_call(n, io_ns_detach, ns);
		n->ns[id] = NULL;
		umdev_bdev_close(ns->bdev);
		free(ns);
	}
	umdev_pci_dev_free(n->pci);
	close(n->wake_fd);
	free(n->db_store);
	free(n);
}

umdev_pci_dev *umdev_nvme_pci(umdev_nvme *n)
{
	return n->pci;
}

/* ---- namespaces ---- */

struct ns_args {
	struct umdev_nvme *n;
	struct nvme_ns *ns;
	uint32_t nsid;
	int ret;
};

static void make_nguid(const char *serial, uint32_t nsid, uint8_t out[16]);

static void io_ns_attach(void *opaque)
{
	struct ns_args *a = opaque;
	struct umdev_nvme *n = a->n;
	uint32_t id = a->nsid;
	int err = 0;

	if (!id) {
		for (id = 1; id <= UMDEV_NVME_MAX_NS && n->ns[id]; id++)
			;
		if (id > UMDEV_NVME_MAX_NS) {
			a->ret = -ENOSPC;
			return;
		}
	} else if (id > UMDEV_NVME_MAX_NS) {
		a->ret = -EINVAL;
		return;
	} else if (n->ns[id]) {
		a->ret = -EEXIST;
		return;
	}
	a->ns->q = umdev_bdev_queue_new(a->ns->bdev, n->loop, &err);
	if (!a->ns->q) {
		a->ret = err ? err : -ENOMEM;
		return;
	}
	a->ns->nsid = id;
	a->nsid = id;
	/* Everything the I/O thread reads is set before the namespace is published. */
	make_nguid(n->serial, id, a->ns->nguid);
	n->ns[id] = a->ns;
	a->ret = 0;
	if (n->enabled)
		nvme_aer_post_ns_changed(n, id);
}

static void io_ns_detach(void *opaque)
{
	struct nvme_ns *ns = opaque;

	umdev_bdev_queue_free(ns->q);
	ns->q = NULL;
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

int umdev_nvme_ns_add(umdev_nvme *n, umdev_bdev *bdev, uint64_t offset, uint64_t size,
		      uint32_t nsid, uint32_t *out_nsid)
{
	struct umdev_bdev_info info;
	struct nvme_ns *ns;
	struct ns_args a;

	umdev_bdev_get_info(bdev, &info);
	if (!size && offset <= info.size)
		size = info.size - offset;
	if (!size || offset > info.size || size > info.size - offset ||
	    offset % info.block_size || size % info.block_size)
		return -EINVAL;
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->bdev = bdev;
	ns->offset = offset;
	ns->size = size;
	ns->lba_shift = (uint32_t)__builtin_ctz(info.block_size);
	ns->nlb = size >> ns->lba_shift;
	ns->can_discard = info.can_discard;
	ns->can_wz = info.can_write_zeroes;
	a = (struct ns_args){ n, ns, nsid, 0 };
	if (umdev_loop_call_sync(n->loop, io_ns_attach, &a) < 0)
		a.ret = -EIO;
	if (a.ret < 0) {
		free(ns);
		return a.ret;
	}
	if (out_nsid)
		*out_nsid = a.nsid;
	umdev_info("%s: namespace %u: %s [%" PRIu64 ", +%" PRIu64 ") %u-byte blocks", n->name,
		   a.nsid, umdev_bdev_spec(bdev), offset, size, info.block_size);
	return 0;
}

static void io_ns_remove(void *opaque)
{
	struct ns_args *a = opaque;
	struct umdev_nvme *n = a->n;
	struct nvme_ns *ns = a->nsid <= UMDEV_NVME_MAX_NS ? n->ns[a->nsid] : NULL;

	if (!a->nsid || !ns || ns->removed) {
		a->ret = -ENODEV;
		return;
	}
	ns->removed = true;
	a->ns = ns;
	a->ret = 0;
	if (n->enabled)
		nvme_aer_post_ns_changed(n, a->nsid);
}

static void io_ns_forget(void *opaque)
{
	struct ns_args *a = opaque;

	umdev_bdev_queue_free(a->ns->q);
	a->ns->q = NULL;
	a->n->ns[a->nsid] = NULL;
}

int umdev_nvme_ns_remove(umdev_nvme *n, uint32_t nsid)
{
	struct ns_args a = { n, NULL, nsid, 0 };

	if (umdev_loop_call_sync(n->loop, io_ns_remove, &a) < 0)
		return -EIO;
	if (a.ret < 0)
		return a.ret;
	drain(n, a.ns);
	sync_call(n, io_ns_forget, &a);
	umdev_info("%s: namespace %u removed", n->name, nsid);
	umdev_bdev_close(a.ns->bdev);
	free(a.ns);
	return 0;
}

struct list_args {
	struct umdev_nvme *n;
	struct umdev_nvme_ns_info *out;
	unsigned max, count;
};

static void io_list(void *opaque)
{
	struct list_args *a = opaque;

	for (uint32_t id = 1; id <= UMDEV_NVME_MAX_NS && a->count < a->max; id++) {
		struct nvme_ns *ns = nvme_ns_get(a->n, id);

		if (!ns)
			continue;
		a->out[a->count++] = (struct umdev_nvme_ns_info){
			.nsid = id,
			.spec = umdev_bdev_spec(ns->bdev),
			.offset = ns->offset,
			.size = ns->size,
			.block_size = 1u << ns->lba_shift,
		};
	}
}

unsigned umdev_nvme_ns_list(umdev_nvme *n, struct umdev_nvme_ns_info *out, unsigned max)
{
	struct list_args a = { n, out, max, 0 };

	sync_call(n, io_list, &a);
	return a.count;
}

struct stats_args {
	struct umdev_nvme *n;
	struct umdev_nvme_stats *st;
};

static void io_stats(void *opaque)
{
	struct stats_args *a = opaque;
	struct umdev_nvme *n = a->n;

	*a->st = n->st;
	a->st->io_queues = 0;
	a->st->inflight = n->io_inflight;
	for (unsigned q = 1; q <= n->max_queues; q++)
		a->st->io_queues += n->sq[q] != NULL;
	for (unsigned q = 0; q <= n->max_queues; q++) {
		if (!n->sq[q])
			continue;
		a->st->sq[q].live = true;
		a->st->sq[q].cmds = n->sq[q]->cmds;
		a->st->sq[q].inflight = n->sq[q]->inflight;
	}
}

void umdev_nvme_get_stats(umdev_nvme *n, struct umdev_nvme_stats *st)
{
	struct stats_args a = { n, st };

	memset(st, 0, sizeof(*st));
	sync_call(n, io_stats, &a);
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
