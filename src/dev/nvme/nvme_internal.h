/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe controller internals, shared by the files of src/dev/nvme/.
 *
 * Thread ownership: fields under "registers" belong to the control thread
 * (csts is atomic: the I/O thread sets CFS). Everything under "I/O thread"
 * is touched only on the controller's loop thread, or by the control thread
 * through umdev_loop_call_sync() (which runs there). Tests that never start
 * the loop run both roles on one thread and drive nvme_process() by hand.
 */
#ifndef UMDEV_DEV_NVME_INTERNAL_H
#define UMDEV_DEV_NVME_INTERNAL_H

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

struct nvme_ns {
	uint32_t nsid;
	umdev_bdev *bdev;
	umdev_bdev_queue *q; /* on the I/O loop */
	uint64_t offset, size; /* bytes of the backend */
	uint32_t lba_shift;
	uint64_t nlb;
	bool can_discard, can_wz;
	bool removed; /* no new commands; freed once inflight is 0 */
	unsigned inflight; /* backend I/Os */
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
	uint16_t qid, cqid;
	uint32_t size;
	uint64_t gpa;
	const struct nvme_sqe *ring; /* host pointer, valid while n->map is held */
	uint32_t head;
	uint16_t prio;
	bool deleting;
	struct nvme_req *del_req; /* the Delete I/O SQ waiting for inflight to drain */
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

struct umdev_nvme {
	umdev_pci_dev *pci;
	umdev_loop *loop;
	char name[32];
	char serial[21];
	unsigned max_queues;
	unsigned poll_us;
	bool always_poll;
	/*
	 * Doorbells: with always_poll the BAR's shared page the client mmaps
	 * (writes never trap, the I/O thread polls); otherwise db_store, filled
	 * by the trapped writes on the control thread, which also wake a
	 * sleeping I/O thread. Accessed with src/util/shm.h either way.
	 */
	uint32_t *db;
	uint32_t *db_store;
	bool db_trapped;
	int wake_fd; /* eventfd: a trapped doorbell write while the I/O thread sleeps */
	/*
	 * Set by the I/O thread before it re-checks the doorbells and goes to
	 * sleep; read by the trap handler after it stored the doorbell. Both
	 * sides put a full fence between their store and their load, so either
	 * the I/O thread sees the new doorbell or the handler sees it asleep.
	 */
	atomic_bool sleeping;
	struct umdev_ratelimit rl_ctl, rl_io; /* client-caused lines, per thread */

	/* registers (control thread) */
	uint64_t cap;
	uint32_t vs, cc, aqa;
	_Atomic uint32_t intms; /* read by the I/O thread when it signals */
	uint64_t asq, acq;
	_Atomic uint32_t csts;
	/*
	 * The I/O thread must not ask the PCI layer for a DMA map while the
	 * transport may be detaching (pci.h: data-plane DMA calls are valid
	 * only between DMA_MAP and the dma_unmap that revokes it). Set when a
	 * window is revoked, bus mastering goes off or a fetch found no client;
	 * cleared by control-thread events that prove an attached client: the
	 * deferred work after a DMA_UNMAP reply, a register access, a command
	 * register write, a function reset.
	 */
	atomic_bool map_blocked;

	/* I/O thread */
	bool enabled; /* queues run */
	uint32_t cc_io; /* CC as of the last enable (queue entry sizes) */
	bool fatal;
	bool map_missing_logged;
	umdev_as_map *map;
	struct nvme_sq *sq[UMDEV_NVME_MAX_QUEUES + 1];
	struct nvme_cq *cq[UMDEV_NVME_MAX_QUEUES + 1];
	uint64_t dbbuf_gpa, ei_gpa;
	uint32_t *dbbuf, *ei; /* shadow doorbells, EventIdx in guest memory (NULL: off) */
	struct nvme_features feat;
	struct nvme_req *aer[NVME_AERL];
	unsigned naer;
	bool ns_event_pending, ns_event_masked;
	uint32_t changed[NVME_CHANGED_NS_MAX];
	unsigned nchanged;
	bool changed_overflow;
	struct nvme_error_log errlog[NVME_ERRLOG];
	uint64_t err_count;
	struct nvme_ns *ns[UMDEV_NVME_MAX_NS + 1]; /* by NSID */
	unsigned io_inflight; /* backend I/Os of every namespace */
	umdev_loop_poller *poller;
	uint64_t last_work_ns;
	uint64_t power_on_ns;
	struct umdev_nvme_stats st;
};

/* ctrl.c */
uint64_t nvme_now_ns(void);
void nvme_fatal(struct umdev_nvme *n, const char *why);
struct nvme_ns *nvme_ns_get(struct umdev_nvme *n, uint32_t nsid);

/* queue.c */
int nvme_process(struct umdev_nvme *n);
int nvme_ensure_map(struct umdev_nvme *n) __attribute__((warn_unused_result));
void nvme_drop_map(struct umdev_nvme *n);
void nvme_req_complete(struct nvme_req *r);
void nvme_irq_flush(struct umdev_nvme *n, bool force);
bool nvme_irq_waiting(const struct umdev_nvme *n);
uint32_t nvme_db_load(struct umdev_nvme *n, unsigned idx);
void nvme_db_store(struct umdev_nvme *n, unsigned idx, uint32_t v);
void nvme_eventidx_arm(struct umdev_nvme *n);
struct nvme_sq *nvme_sq_new(struct umdev_nvme *n, uint16_t qid, uint16_t cqid, uint32_t size,
			    uint64_t gpa, int *err);
void nvme_sq_free(struct umdev_nvme *n, struct nvme_sq *sq);
struct nvme_cq *nvme_cq_new(struct umdev_nvme *n, uint16_t qid, uint32_t size, uint64_t gpa,
			    bool ien, uint16_t iv, int *err);
void nvme_cq_free(struct umdev_nvme *n, struct nvme_cq *cq);
void nvme_queues_free(struct umdev_nvme *n);

/* dptr.c: data pointers. Return an NVMe status field (0: success). */
uint16_t nvme_map_data(struct umdev_nvme *n, const umdev_as_map *m, const struct nvme_sqe *cmd,
		       uint64_t len, unsigned prot, struct iovec *iov, unsigned max_iov,
		       int *iovcnt);
uint16_t nvme_copy_to_guest(struct umdev_nvme *n, const struct nvme_sqe *cmd, const void *buf,
			    uint64_t len);
uint16_t nvme_copy_from_guest(struct umdev_nvme *n, const struct nvme_sqe *cmd, void *buf,
			      uint64_t len);

/* admin.c: returns true when @r completes now (status set), false if parked. */
bool nvme_admin(struct nvme_req *r);
void nvme_aer_post_ns_changed(struct umdev_nvme *n, uint32_t nsid);
void nvme_aer_kick(struct umdev_nvme *n);
void nvme_errlog_add(struct umdev_nvme *n, const struct nvme_req *r);
void nvme_features_reset(struct umdev_nvme *n);

/* io.c: returns true when @r completes now (status set), false if the backend has it. */
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
