/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe controller internals, shared by the files of src/dev/nvme/.
 *
 * Threads: the control thread owns the registers, the admin queue pair
 * (its struct nvme_lp, n->alp, has no loop) and the bookkeeping of which
 * I/O queues exist. Each data-plane loop has a struct nvme_lp that owns the
 * I/O CQs mapped to it (CQ q on loop (q - 1) mod nlp) and the SQs that post
 * to them, its own DMA map, shadow doorbell pointers, namespace table and
 * statistics; nothing of it is touched by another thread except through
 * umdev_loop_call_sync() (the control thread waits for a loop, never the
 * reverse; loops never wait for each other). Tests that never start the
 * loops run every role on one thread (nvme_process_all()).
 */
#ifndef UMDEV_DEV_NVME_INTERNAL_H
#define UMDEV_DEV_NVME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "umdev/backend.h"
#include "umdev/log.h"
#include "umdev/loop.h"
#include "umdev/mem.h"
#include "umdev/nvme.h"
#include "umdev/pci.h"
#include "umdev/proto/nvme.h"

#define NVME_PAGE 4096u /* the only memory page size offered (MPSMIN = MPSMAX = 0) */
#define NVME_MQES 1023u /* CAP.MQES: 1024 entries per queue at most */
#define NVME_MDTS 6u /* max transfer 2^6 pages = 256 KiB */
#define NVME_MAX_XFER (NVME_PAGE << NVME_MDTS)
#define NVME_MAX_IOV (NVME_MAX_XFER / NVME_PAGE + 2)
#define NVME_MAX_SGL_DESC 512u /* descriptors walked per command */
#define NVME_AERL 4u /* outstanding Asynchronous Event Requests */
#define NVME_ACL 4u
#define NVME_ERRLOG 16u /* error log entries kept */
#define NVME_BATCH 64u /* commands taken from one SQ per pass */
#define NVME_BAR0_SIZE 0x4000u
#define NVME_DB_OFF NVME_REG_DBS
#define NVME_MSIX_BAR 4u
#define NVME_MSIX_PBA_OFF 0x1000u
#define NVME_BAR4_SIZE 0x2000u
#define NVME_TEMP_K 300u /* the composite temperature we report */


struct nvme_sq;
struct nvme_lp;
struct umdev_nvme;

struct nvme_kick {
	struct umdev_nvme *n; /* NULL once the controller is gone; control thread only */
};

#define NVME_MAX_LOOPS 16 /* data-plane loops a controller spreads its queues over */

struct nvme_ns {
	uint32_t nsid;
	struct umdev_nvme *n;
	umdev_bdev *bdev;
	umdev_bdev_queue *q[NVME_MAX_LOOPS]; /* one per loop, used on that loop */
	uint64_t offset, size; /* bytes of the backend */
	bool whole; /* to the backend's end: follows its resizes */
	uint32_t lba_shift;
	_Atomic uint64_t nlb; /* loops read it while a resize changes it */
	bool can_discard, can_wz;
	unsigned inflight[NVME_MAX_LOOPS]; /* backend I/Os, per loop */
	uint8_t nguid[16];
};

/* What an I/O command still has to do after a backend step. */
enum nvme_req_stage {
	NVME_STAGE_NONE,
	NVME_STAGE_DSM, /* one discard per range */
	NVME_STAGE_WZ_EMUL, /* zeroes written from a zero page, chunk by chunk */
	NVME_STAGE_COMPARE, /* backend read into bounce, then compare */
};

struct nvme_req {
	struct umdev_bdev_io bio;
	struct umdev_nvme *n;
	struct nvme_sq *sq;
	struct nvme_ns *ns;
	struct nvme_sqe cmd;
	umdev_as_map *map; /* held while the request uses guest memory */
	uint16_t status; /* status field (SCT/SC/DNR), 0: success */
	uint32_t dw0;
	bool busy;
	enum nvme_req_stage stage;
	uint64_t pos, end; /* byte cursor of multi-step commands */
	unsigned range, nranges;
	struct nvme_dsm_range *ranges;
	uint8_t *bounce;
	uint64_t len;
	int iovcnt;
	struct iovec iov[NVME_MAX_IOV];
};

struct nvme_sq {
	struct nvme_lp *lp; /* the loop (or admin side) that owns it */
	uint16_t qid, cqid;
	uint32_t size;
	uint64_t gpa;
	const struct nvme_sqe *ring; /* host pointer, valid while lp->map is held */
	uint32_t head;
	uint16_t prio;
	bool deleting;
	unsigned inflight; /* requests taken and not yet completed */
	uint64_t cmds; /* statistics: commands taken */
	struct nvme_req *reqs; /* @size entries */
	uint32_t *free; /* stack of free request indexes */
	uint32_t nfree;
};

struct nvme_cq {
	uint16_t qid;
	uint32_t size;
	uint64_t gpa;
	struct nvme_cqe *ring;
	uint32_t head, tail;
	uint8_t phase;
	bool ien;
	uint16_t iv;
	unsigned reserved; /* slots promised to requests in flight */
	unsigned nsq; /* SQs that post here */
	unsigned unsignalled; /* entries posted since the last interrupt */
	uint64_t first_unsignalled_ns;
};

struct nvme_features {
	uint32_t arbitration, power_mgmt, temp_over, temp_under, err_recovery;
	bool wce;
	uint16_t nsq, ncq; /* granted I/O queues (1-based counts) */
	uint32_t coalesce; /* THR 7:0, TIME 15:8 */
	uint8_t irq_cd[UMDEV_NVME_MAX_QUEUES + 1]; /* coalescing disabled per vector */
	uint32_t write_atomic, async_cfg;
};

/* Statistics a loop keeps for itself; summed on demand. */
struct nvme_lp_stats {
	uint64_t io_cmds, read_bytes, write_bytes, errors, irqs, polls, sleeps;
};

/*
 * One loop's share of the controller (or, with loop NULL, the admin side on
 * the control thread). Only its own thread touches it.
 */
struct nvme_lp {
	struct umdev_nvme *n;
	umdev_loop *loop; /* NULL: the admin side */
	unsigned idx; /* index in n->lp (the admin side: 0, unused) */
	bool enabled; /* queues run */
	umdev_as_map *map;
	bool map_missing_logged;
	uint32_t *dbbuf, *ei; /* shadow doorbells, EventIdx in guest memory (NULL: off) */
	struct nvme_sq *sq[UMDEV_NVME_MAX_QUEUES + 1]; /* the SQs this side owns, by id */
	struct nvme_cq *cq[UMDEV_NVME_MAX_QUEUES + 1];
	struct nvme_ns *ns[UMDEV_NVME_MAX_NS + 1]; /* namespaces as this side sees them */
	unsigned io_inflight; /* backend I/Os of every namespace */
	unsigned nsq; /* SQs this side owns */
	umdev_loop_poller *poller;
	int wake_fd; /* eventfd: a trapped doorbell write while this loop sleeps */
	/*
	 * Set by the loop before it re-checks its doorbells and goes to sleep;
	 * read by the trap handler after it stored the doorbell. Both sides
	 * put a full fence between their store and their load, so either the
	 * loop sees the new doorbell or the handler sees it asleep.
	 */
	atomic_bool sleeping;
	uint64_t last_work_ns;
	struct umdev_ratelimit rl;
	struct nvme_lp_stats st;
};

struct umdev_nvme {
	umdev_pci_dev *pci;
	umdev_loop *ctl_loop; /* poll=on: where admin doorbells seen by loop 0 are sent */
	char name[32];
	char serial[21];
	unsigned max_queues;
	unsigned poll_us;
	bool always_poll;
	/*
	 * Doorbells: with always_poll the BAR's shared page the client mmaps
	 * (writes never trap, the loops poll); otherwise db_store, filled by
	 * the trapped writes on the control thread, which also wake the
	 * sleeping loop that owns the queue. Accessed with src/util/shm.h.
	 */
	uint32_t *db;
	uint32_t *db_store;
	bool db_trapped;
	struct nvme_lp *lp[NVME_MAX_LOOPS];
	unsigned nlp;
	struct nvme_lp alp; /* the admin queue pair, on the control thread */
	atomic_bool admin_pending; /* an admin pass is deferred on the control thread */
	/*
	 * poll=on: loop 0 hands admin passes to the control loop as messages
	 * carrying this token, never @n itself: a message still queued when
	 * the controller is freed finds the token's n NULL and frees it.
	 */
	struct nvme_kick *kick;
	atomic_bool kick_queued;
	_Atomic uint32_t admin_head; /* admin SQ head, for loop 0's look in poll=on mode */
	struct umdev_ratelimit rl_ctl; /* client-caused lines of the control thread */

	/* registers (control thread) */
	uint64_t cap;
	uint32_t vs, cc, aqa;
	_Atomic uint32_t intms; /* read by the loops when they signal */
	uint64_t asq, acq;
	_Atomic uint32_t csts;
	/*
	 * The loops must not ask the PCI layer for a DMA map while the
	 * transport may be detaching (pci.h: data-plane DMA calls are valid
	 * only between DMA_MAP and the dma_unmap that revokes it). Set when a
	 * window is revoked, bus mastering goes off or a fetch found no client;
	 * cleared by control-thread events that prove an attached client: the
	 * deferred work after a DMA_UNMAP reply, a register access, a command
	 * register write, a function reset.
	 */
	atomic_bool map_blocked;
	atomic_bool fatal;

	/* admin side (control thread) */
	bool enabled;
	uint32_t cc_io; /* CC as of the last enable (queue entry sizes) */
	uint16_t sq_cqid[UMDEV_NVME_MAX_QUEUES + 1]; /* I/O SQ q posts to CQ sq_cqid[q]; 0: none */
	bool cq_live[UMDEV_NVME_MAX_QUEUES + 1];
	unsigned cq_nsq[UMDEV_NVME_MAX_QUEUES + 1];
	uint64_t dbbuf_gpa, ei_gpa;
	struct nvme_features feat;
	/* What the loops read of the features (Set Features writes both). */
	atomic_bool rt_wce;
	_Atomic uint32_t rt_coalesce;
	atomic_bool rt_cd[UMDEV_NVME_MAX_QUEUES + 1];
	struct nvme_req *aer[NVME_AERL];
	unsigned naer;
	bool ns_event_pending, ns_event_masked;
	uint32_t changed[NVME_CHANGED_NS_MAX];
	unsigned nchanged;
	bool changed_overflow;
	pthread_mutex_t errlog_lock; /* errors are logged from every loop */
	struct nvme_error_log errlog[NVME_ERRLOG];
	uint64_t err_count;
	uint64_t admin_cmds;
	uint64_t power_on_ns;
	struct nvme_lp_stats *st_tmp; /* nvme_stats_sum()'s sum while it runs */
};

/* ctrl.c */
uint64_t nvme_now_ns(void);
void nvme_fatal(struct umdev_nvme *n, const char *why);
struct nvme_ns *nvme_ns_get(struct nvme_lp *lp, uint32_t nsid);
struct nvme_lp *nvme_cq_owner(struct umdev_nvme *n, uint16_t cqid);
void nvme_sync(struct umdev_nvme *n, struct nvme_lp *lp, umdev_loop_fn fn, void *arg);
void nvme_stats_sum(struct umdev_nvme *n, struct nvme_lp_stats *out);
int nvme_process_all(struct umdev_nvme *n);
void nvme_wake(struct nvme_lp *lp);

/* queue.c */
int nvme_process(struct nvme_lp *lp);
int nvme_ensure_map(struct nvme_lp *lp) __attribute__((warn_unused_result));
void nvme_drop_map(struct nvme_lp *lp);
int nvme_translate_dbbuf(struct nvme_lp *lp);
void nvme_req_complete(struct nvme_req *r);
void nvme_irq_flush(struct nvme_lp *lp, bool force);
bool nvme_irq_waiting(const struct nvme_lp *lp);
uint32_t nvme_db_load(struct umdev_nvme *n, unsigned idx);
void nvme_db_store(struct umdev_nvme *n, unsigned idx, uint32_t v);
void nvme_eventidx_arm(struct nvme_lp *lp);
struct nvme_sq *nvme_sq_new(struct nvme_lp *lp, uint16_t qid, uint16_t cqid, uint32_t size,
			    uint64_t gpa, int *err);
void nvme_sq_free(struct nvme_lp *lp, struct nvme_sq *sq);
struct nvme_cq *nvme_cq_new(struct nvme_lp *lp, uint16_t qid, uint32_t size, uint64_t gpa,
			    bool ien, uint16_t iv, int *err);
void nvme_cq_free(struct nvme_lp *lp, struct nvme_cq *cq);
void nvme_queues_free(struct nvme_lp *lp);

/* dptr.c: data pointers. Return an NVMe status field (0: success). */
uint16_t nvme_map_data(const umdev_as_map *m, const struct nvme_sqe *cmd, uint64_t len,
		       unsigned prot, struct iovec *iov, unsigned max_iov, int *iovcnt);
uint16_t nvme_copy_to_guest(struct nvme_lp *lp, const struct nvme_sqe *cmd, const void *buf,
			    uint64_t len);
uint16_t nvme_copy_from_guest(struct nvme_lp *lp, const struct nvme_sqe *cmd, void *buf,
			      uint64_t len);

/* admin.c (control thread): true when @r completes now (status set), false if parked. */
bool nvme_admin(struct nvme_req *r);
void nvme_aer_post_ns_changed(struct umdev_nvme *n, uint32_t nsid);
void nvme_aer_kick(struct umdev_nvme *n);
void nvme_errlog_add(struct umdev_nvme *n, const struct nvme_req *r);
void nvme_features_reset(struct umdev_nvme *n);

/* io.c (a data-plane loop): true when @r completes now (status set), false if the backend has it. */
bool nvme_io(struct nvme_req *r);
void nvme_req_release(struct nvme_req *r);

/* Status helpers. */
static inline uint16_t nvme_sts(unsigned sct, unsigned sc)
{
	return (uint16_t)(NVME_STATUS(sct, sc) | NVME_STATUS_DNR);
}
#define NVME_GEN(sc) nvme_sts(NVME_SCT_GENERIC, (sc))
#define NVME_CS(sc) nvme_sts(NVME_SCT_CMD_SPECIFIC, (sc))

#endif
