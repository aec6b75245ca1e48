/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Admin command set, run on the control thread (a trapped admin doorbell,
 * or in poll=on mode loop 0 seeing one, queues a pass). Everything
 * completes at once except Asynchronous Event Requests (parked until an
 * event). Queue changes run on the owning loop with umdev_loop_call_sync().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvme_internal.h"
#include "umdev/log.h"
#include "util/shm.h"

/* Space-padded, unterminated identification strings. */
static void pad(char *dst, size_t n, const char *src)
{
	size_t l = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

static void put128(uint8_t *dst, uint64_t v)
{
	memset(dst, 0, 16);
	memcpy(dst, &v, 8); /* little-endian host */
}

static void id_ctrl(struct umdev_nvme *n, struct nvme_id_ctrl *id)
{
	id->vid = UMDEV_NVME_PCI_VENDOR;
	id->ssvid = UMDEV_NVME_PCI_VENDOR;
	pad(id->sn, sizeof(id->sn), n->serial);
	pad(id->mn, sizeof(id->mn), "umdev NVMe controller");
	pad(id->fr, sizeof(id->fr), "0.1");
	id->rab = 6;
	id->ieee[0] = 0x00;
	id->ieee[1] = 0x54;
	id->ieee[2] = 0x52;
	id->mdts = NVME_MDTS;
	id->cntlid = 1;
	id->ver = n->vs;
	id->oaes = NVME_OAES_NS_ATTR;
	id->cntrltype = 1; /* I/O controller */
	id->oacs = NVME_OACS_DBBUF;
	id->acl = NVME_ACL - 1;
	id->aerl = NVME_AERL - 1;
	id->frmw = 0x3; /* one slot, read-only */
	id->lpa = NVME_LPA_CMD_EFFECTS | NVME_LPA_EXT_DATA;
	id->elpe = NVME_ERRLOG - 1;
	id->wctemp = 0x157;
	id->cctemp = 0x175;
	id->sqes = NVME_SQES_LOG2 << 4 | NVME_SQES_LOG2;
	id->cqes = NVME_CQES_LOG2 << 4 | NVME_CQES_LOG2;
	id->nn = UMDEV_NVME_MAX_NS;
	id->oncs = NVME_ONCS_COMPARE | NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES;
	id->vwc = 0x1; /* volatile write cache; broadcast flush not supported */
	id->sgls = NVME_SGLS_SUPPORTED;
	snprintf(id->subnqn, sizeof(id->subnqn), "nqn.2026-01.io.umdev:nvme:%s", n->serial);
	id->psd[0][0] = 0xc4; /* power state 0: 25 W (2500 centiwatts) */
	id->psd[0][1] = 0x09;
}

static void id_ns(struct nvme_ns *ns, struct nvme_id_ns *id)
{
	id->nsze = id->ncap = id->nuse = atomic_load_explicit(&ns->nlb, memory_order_relaxed);
	id->nlbaf = 0;
	id->flbas = 0;
	id->lbaf[0].lbads = (uint8_t)ns->lba_shift;
	memcpy(id->nguid, ns->nguid, sizeof(id->nguid));
}

/* Namespace identification descriptors: NGUID and the command set. */
static size_t ns_desc(struct nvme_ns *ns, uint8_t *buf)
{
	size_t o = 0;

	buf[o] = NVME_NIDT_NGUID;
	buf[o + 1] = 16;
	memcpy(buf + o + 4, ns->nguid, 16);
	o += 4 + 16;
	buf[o] = NVME_NIDT_CSI;
	buf[o + 1] = 1;
	buf[o + 4] = NVME_CSI_NVM;
	o += 4 + 1;
	return o;
}

static void ns_list(struct umdev_nvme *n, uint32_t after, uint32_t *list)
{
	unsigned k = 0;

	for (uint32_t id = after + 1; id <= UMDEV_NVME_MAX_NS && k < 1024; id++)
		if (nvme_ns_get(&n->alp, id))
			list[k++] = id;
}

static uint16_t identify(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	const struct nvme_sqe *c = &r->cmd;
	unsigned cns = c->cdw10 & 0xff, csi = c->cdw11 >> 24;
	uint32_t nsid = c->nsid;
	struct nvme_ns *ns = NULL;
	uint8_t *buf;
	uint16_t st = 0;

	buf = calloc(1, NVME_IDENTIFY_SIZE);
	if (!buf)
		return NVME_GEN(NVME_SC_INTERNAL);
	switch (cns) {
	case NVME_CNS_CTRL:
		id_ctrl(n, (struct nvme_id_ctrl *)buf);
		break;
	case NVME_CNS_NS:
	case NVME_CNS_NS_DESC_LIST:
	case NVME_CNS_CS_NS:
		if (cns == NVME_CNS_NS && nsid == 0xffffffffu) {
			/* Capabilities common to all namespaces: the one LBA format. */
			((struct nvme_id_ns *)buf)->lbaf[0].lbads = 9;
			break;
		}
		if (!nsid || nsid > UMDEV_NVME_MAX_NS) {
			st = NVME_GEN(NVME_SC_INVALID_NS);
			break;
		}
		if (cns == NVME_CNS_CS_NS && csi != NVME_CSI_NVM) {
			st = NVME_GEN(NVME_SC_INVALID_FIELD);
			break;
		}
		ns = nvme_ns_get(&n->alp, nsid);
		if (!ns) {
			/* An inactive NSID reads as zeroes, but has no descriptors. */
			if (cns == NVME_CNS_NS_DESC_LIST)
				st = NVME_GEN(NVME_SC_INVALID_NS);
			break;
		}
		if (cns == NVME_CNS_NS)
			id_ns(ns, (struct nvme_id_ns *)buf);
		else if (cns == NVME_CNS_NS_DESC_LIST)
			ns_desc(ns, buf);
		/* CNS 05h for the NVM set: no fields beyond the base structure. */
		break;
	case NVME_CNS_ACTIVE_NS_LIST:
	case NVME_CNS_CS_ACTIVE_NS_LIST:
		if (nsid >= 0xfffffffeu || (cns == NVME_CNS_CS_ACTIVE_NS_LIST && csi != NVME_CSI_NVM)) {
			st = nsid >= 0xfffffffeu ? NVME_GEN(NVME_SC_INVALID_NS) :
						  NVME_GEN(NVME_SC_INVALID_FIELD);
			break;
		}
		ns_list(n, nsid, (uint32_t *)buf);
		break;
	case NVME_CNS_CS_CTRL:
		if (csi != NVME_CSI_NVM)
			st = NVME_GEN(NVME_SC_INVALID_FIELD);
		/* NVM controller structure: all zero means "no extra limits". */
		break;
	case NVME_CNS_CS_INDEX:
		buf[0] = 1; /* command set combination 0: NVM only */
		break;
	default:
		st = NVME_GEN(NVME_SC_INVALID_FIELD);
		break;
	}
	if (!st)
		st = nvme_copy_to_guest(&n->alp, c, buf, NVME_IDENTIFY_SIZE);
	free(buf);
	return st;
}

/* ---- queues ----
 *
 * The admin side keeps which I/O queues exist (n->sq_cqid, n->cq_live,
 * n->cq_nsq) and runs each change on the loop that owns the queue with
 * umdev_loop_call_sync(): CQ q belongs to loop (q - 1) mod nlp, and an SQ
 * to the loop of the CQ it posts to. The command completes once the queue
 * is installed or gone there.
 */

struct q_args {
	struct nvme_lp *lp;
	uint16_t qid, cqid, iv;
	uint32_t size;
	uint64_t gpa;
	bool ien;
	int err;
	unsigned inflight;
};

static void io_cq_create(void *opaque)
{
	struct q_args *a = opaque;

	a->err = 0;
	if (!nvme_cq_new(a->lp, a->qid, a->size, a->gpa, a->ien, a->iv, &a->err) && !a->err)
		a->err = -EIO;
}

static void io_sq_create(void *opaque)
{
	struct q_args *a = opaque;
	struct nvme_lp *lp = a->lp;
	struct nvme_sq *sq;

	a->err = 0;
	sq = nvme_sq_new(lp, a->qid, a->cqid, a->size, a->gpa, &a->err);
	if (!sq) {
		if (!a->err)
			a->err = -EIO;
		return;
	}
	sq->prio = a->iv;
	/* The shadow tail is the host's (0 for a new queue); EventIdx is ours. */
	if (lp->ei)
		umdev_shm_st32(&lp->ei[2 * a->qid], 0);
	if (lp->loop)
		nvme_wake(lp); /* poll=on: a loop without SQs slept */
}

static void io_sq_stop(void *opaque)
{
	struct q_args *a = opaque;
	struct nvme_sq *sq = a->lp->sq[a->qid];

	if (sq)
		sq->deleting = true;
	a->inflight = sq ? sq->inflight : 0;
}

static void io_sq_delete(void *opaque)
{
	struct q_args *a = opaque;

	nvme_sq_free(a->lp, a->lp->sq[a->qid]);
}

static void io_cq_delete(void *opaque)
{
	struct q_args *a = opaque;

	nvme_cq_free(a->lp, a->lp->cq[a->qid]);
}

static uint16_t create_cq(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	const struct nvme_sqe *c = &r->cmd;
	struct q_args a = { 0 };
	uint16_t qid = c->cdw10 & 0xffff, iv = c->cdw11 >> NVME_CQ_IV_SHIFT;
	uint32_t size = (c->cdw10 >> 16) + 1;
	uint64_t base = c->dptr.prp.prp1;

	if (!qid || qid > n->feat.ncq || n->cq_live[qid])
		return NVME_CS(NVME_SC_QID_INVALID);
	if (size < 2 || size > NVME_MQES + 1)
		return NVME_CS(NVME_SC_QUEUE_SIZE);
	if (!(c->cdw11 & NVME_QUEUE_PC) || c->flags & NVME_CMD_PSDT_MASK)
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	if (base & (NVME_PAGE - 1))
		return NVME_GEN(NVME_SC_INVALID_PRP_OFFSET);
	if (iv > n->max_queues)
		return NVME_CS(NVME_SC_INVALID_VECTOR);
	if (((n->cc_io & NVME_CC_IOCQES_MASK) >> NVME_CC_IOCQES_SHIFT) != NVME_CQES_LOG2)
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	a = (struct q_args){ .lp = nvme_cq_owner(n, qid), .qid = qid, .iv = iv, .size = size,
			     .gpa = base, .ien = c->cdw11 & NVME_CQ_IEN, .err = -EIO };
	/* A new queue's head is 0, whatever an earlier queue of this id left. */
	nvme_db_store(n, 2u * qid + 1, 0);
	nvme_sync(n, a.lp, io_cq_create, &a);
	if (a.err)
		return a.err == -ENOMEM ? NVME_GEN(NVME_SC_INTERNAL) :
					  NVME_GEN(NVME_SC_DATA_XFER_ERROR);
	n->cq_live[qid] = true;
	return 0;
}

static uint16_t create_sq(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	const struct nvme_sqe *c = &r->cmd;
	struct q_args a;
	uint16_t qid = c->cdw10 & 0xffff, cqid = c->cdw11 >> NVME_SQ_CQID_SHIFT;
	uint32_t size = (c->cdw10 >> 16) + 1;
	uint64_t base = c->dptr.prp.prp1;

	if (!qid || qid > n->feat.nsq || n->sq_cqid[qid])
		return NVME_CS(NVME_SC_QID_INVALID);
	if (!cqid || cqid > n->max_queues || !n->cq_live[cqid])
		return NVME_CS(NVME_SC_CQ_INVALID);
	if (size < 2 || size > NVME_MQES + 1)
		return NVME_CS(NVME_SC_QUEUE_SIZE);
	if (!(c->cdw11 & NVME_QUEUE_PC) || c->flags & NVME_CMD_PSDT_MASK)
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	if (base & (NVME_PAGE - 1))
		return NVME_GEN(NVME_SC_INVALID_PRP_OFFSET);
	if (((n->cc_io & NVME_CC_IOSQES_MASK) >> NVME_CC_IOSQES_SHIFT) != NVME_SQES_LOG2)
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	a = (struct q_args){ .lp = nvme_cq_owner(n, cqid), .qid = qid, .cqid = cqid,
			     .iv = (c->cdw11 >> NVME_SQ_QPRIO_SHIFT) & 3, .size = size,
			     .gpa = base, .err = -EIO };
	nvme_db_store(n, 2u * qid, 0); /* a new queue's tail is 0 */
	nvme_sync(n, a.lp, io_sq_create, &a);
	if (a.err)
		return a.err == -ENOMEM ? NVME_GEN(NVME_SC_INTERNAL) :
					  NVME_GEN(NVME_SC_DATA_XFER_ERROR);
	n->sq_cqid[qid] = cqid;
	n->cq_nsq[cqid]++;
	return 0;
}

/*
 * The SQ's loop stops taking commands from it; its in-flight commands post
 * their completions first (the spec wants them before this command's),
 * then the queue goes. The control thread waits, bounded as drain() is.
 */
static uint16_t delete_sq(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	uint16_t qid = r->cmd.cdw10 & 0xffff, cqid;
	struct q_args a = { 0 };

	if (!qid || qid > n->max_queues || !(cqid = n->sq_cqid[qid]))
		return NVME_CS(NVME_SC_QID_INVALID);
	a.lp = nvme_cq_owner(n, cqid);
	a.qid = qid;
	for (unsigned i = 0; i < 100000; i++) {
		nvme_sync(n, a.lp, io_sq_stop, &a);
		if (!a.inflight)
			break;
		usleep(100);
	}
	if (a.inflight)
		umdev_warn("%s: SQ %u: in-flight commands did not drain in 10 s", n->name, qid);
	nvme_sync(n, a.lp, io_sq_delete, &a);
	n->sq_cqid[qid] = 0;
	n->cq_nsq[cqid]--;
	return 0;
}

static uint16_t delete_cq(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	uint16_t qid = r->cmd.cdw10 & 0xffff;
	struct q_args a = { 0 };

	if (!qid || qid > n->max_queues || !n->cq_live[qid])
		return NVME_CS(NVME_SC_QID_INVALID);
	if (n->cq_nsq[qid])
		return NVME_CS(NVME_SC_INVALID_QUEUE_DELETION);
	a.lp = nvme_cq_owner(n, qid);
	a.qid = qid;
	nvme_sync(n, a.lp, io_cq_delete, &a);
	n->cq_live[qid] = false;
	return 0;
}

/* ---- features ---- */

/* The features the loops read, as relaxed atomics: a value, not an order. */
static void features_publish(struct umdev_nvme *n)
{
	atomic_store_explicit(&n->rt_wce, n->feat.wce, memory_order_relaxed);
	atomic_store_explicit(&n->rt_coalesce, n->feat.coalesce, memory_order_relaxed);
	for (unsigned i = 0; i <= UMDEV_NVME_MAX_QUEUES; i++)
		atomic_store_explicit(&n->rt_cd[i], n->feat.irq_cd[i] != 0, memory_order_relaxed);
}

static void features_defaults(const struct umdev_nvme *n, struct nvme_features *f)
{
	memset(f, 0, sizeof(*f));
	f->temp_over = 0x157;
	f->wce = true;
	f->nsq = f->ncq = (uint16_t)n->max_queues;
}

void nvme_features_reset(struct umdev_nvme *n)
{
	features_defaults(n, &n->feat);
	features_publish(n);
}

static uint16_t get_features(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	const struct nvme_sqe *c = &r->cmd;
	unsigned fid = c->cdw10 & 0xff, sel = (c->cdw10 >> NVME_FEAT_SEL_SHIFT) & 7;
	struct nvme_features def, *f = &n->feat;

	if (sel > NVME_FEAT_SEL_SUPPORTED)
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	if (sel == NVME_FEAT_SEL_DEFAULT || sel == NVME_FEAT_SEL_SAVED) {
		/* Nothing is saveable: saved values are the defaults. */
		features_defaults(n, &def);
		f = &def;
	}
	switch (fid) {
	case NVME_FEAT_ARBITRATION: r->dw0 = f->arbitration; break;
	case NVME_FEAT_POWER_MGMT: r->dw0 = f->power_mgmt; break;
	case NVME_FEAT_TEMP_THRESH: {
		unsigned tmpsel = (c->cdw11 >> 16) & 0xf, thsel = (c->cdw11 >> 20) & 3;

		if (tmpsel != 0 || thsel > 1)
			return NVME_GEN(NVME_SC_INVALID_FIELD);
		r->dw0 = thsel ? f->temp_under : f->temp_over;
		break;
	}
	case NVME_FEAT_ERR_RECOVERY: r->dw0 = f->err_recovery; break;
	case NVME_FEAT_VOLATILE_WC: r->dw0 = f->wce; break;
	case NVME_FEAT_NUM_QUEUES:
		r->dw0 = (uint32_t)(f->ncq - 1) << 16 | (uint32_t)(f->nsq - 1);
		break;
	case NVME_FEAT_IRQ_COALESCE: r->dw0 = f->coalesce; break;
	case NVME_FEAT_IRQ_CONFIG: {
		unsigned iv = c->cdw11 & 0xffff;

		if (iv > n->max_queues)
			return NVME_GEN(NVME_SC_INVALID_FIELD);
		r->dw0 = iv | (f->irq_cd[iv] ? NVME_IRQ_CONFIG_CD : 0);
		break;
	}
	case NVME_FEAT_WRITE_ATOMIC: r->dw0 = f->write_atomic; break;
	case NVME_FEAT_ASYNC_EVENT: r->dw0 = f->async_cfg; break;
	default:
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	}
	if (sel == NVME_FEAT_SEL_SUPPORTED)
		r->dw0 = fid == NVME_FEAT_IRQ_CONFIG ? 0x6 : 0x4; /* changeable (+ per vector) */
	return 0;
}

static uint16_t set_features(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	const struct nvme_sqe *c = &r->cmd;
	unsigned fid = c->cdw10 & 0xff;
	uint32_t v = c->cdw11;

	if (c->cdw10 & NVME_FEAT_SAVE)
		return NVME_CS(NVME_SC_FEATURE_NOT_SAVEABLE);
	switch (fid) {
	case NVME_FEAT_ARBITRATION:
		n->feat.arbitration = v;
		break;
	case NVME_FEAT_POWER_MGMT:
		if (v & 0x1f) /* only power state 0 exists */
			return NVME_GEN(NVME_SC_INVALID_FIELD);
		n->feat.power_mgmt = v & 0xff;
		break;
	case NVME_FEAT_TEMP_THRESH: {
		unsigned tmpsel = (v >> 16) & 0xf, thsel = (v >> 20) & 3;

		if (tmpsel != 0 || thsel > 1)
			return NVME_GEN(NVME_SC_INVALID_FIELD);
		if (thsel)
			n->feat.temp_under = v & 0xffff;
		else
			n->feat.temp_over = v & 0xffff;
		break;
	}
	case NVME_FEAT_ERR_RECOVERY:
		n->feat.err_recovery = v & 0x1ffff;
		break;
	case NVME_FEAT_VOLATILE_WC:
		n->feat.wce = v & 1;
		break;
	case NVME_FEAT_NUM_QUEUES: {
		uint32_t nsq = (v & 0xffff) + 1, ncq = (v >> 16) + 1;

		if ((v & 0xffff) == 0xffff || (v >> 16) == 0xffff)
			return NVME_GEN(NVME_SC_INVALID_FIELD);
		for (unsigned q = 1; q <= n->max_queues; q++)
			if (n->sq_cqid[q] || n->cq_live[q])
				return NVME_GEN(NVME_SC_CMD_SEQ_ERROR);
		n->feat.nsq = (uint16_t)(nsq < n->max_queues ? nsq : n->max_queues);
		n->feat.ncq = (uint16_t)(ncq < n->max_queues ? ncq : n->max_queues);
		r->dw0 = (uint32_t)(n->feat.ncq - 1) << 16 | (uint32_t)(n->feat.nsq - 1);
		break;
	}
	case NVME_FEAT_IRQ_COALESCE:
		n->feat.coalesce = v & 0xffff;
		break;
	case NVME_FEAT_IRQ_CONFIG: {
		unsigned iv = v & 0xffff;

		if (iv > n->max_queues)
			return NVME_GEN(NVME_SC_INVALID_FIELD);
		n->feat.irq_cd[iv] = !!(v & NVME_IRQ_CONFIG_CD);
		break;
	}
	case NVME_FEAT_WRITE_ATOMIC:
		n->feat.write_atomic = v & 1;
		break;
	case NVME_FEAT_ASYNC_EVENT:
		n->feat.async_cfg = v;
		nvme_aer_kick(n);
		break;
	default:
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	}
	features_publish(n);
	return 0;
}

/* ---- log pages ---- */

void nvme_errlog_add(struct umdev_nvme *n, const struct nvme_req *r)
{
	struct nvme_error_log *e;

	/* Errors are rare and come from every loop: a lock off the fast path. */
	pthread_mutex_lock(&n->errlog_lock);
	memmove(&n->errlog[1], &n->errlog[0], sizeof(n->errlog[0]) * (NVME_ERRLOG - 1));
	e = &n->errlog[0];
	memset(e, 0, sizeof(*e));
	e->error_count = ++n->err_count;
	e->sqid = r->sq->qid;
	e->cid = r->cmd.cid;
	e->status = (uint16_t)(r->status << 1);
	e->param_loc = 0xffff;
	e->nsid = r->cmd.nsid;
	pthread_mutex_unlock(&n->errlog_lock);
}

static void smart_log(struct umdev_nvme *n, struct nvme_smart_log *s)
{
	uint64_t hours = (nvme_now_ns() - n->power_on_ns) / 3600000000000ull, errs;
	struct nvme_lp_stats st;

	nvme_stats_sum(n, &st);
	pthread_mutex_lock(&n->errlog_lock);
	errs = n->err_count;
	pthread_mutex_unlock(&n->errlog_lock);

	s->temperature = NVME_TEMP_K;
	if (NVME_TEMP_K > n->feat.temp_over || NVME_TEMP_K < n->feat.temp_under)
		s->critical_warning |= 0x2; /* temperature beyond a threshold */
	s->avail_spare = 100;
	s->spare_thresh = 10;
	/* Data units are thousands of 512-byte units, rounded up. */
	put128(s->data_units_read, (st.read_bytes / 512 + 999) / 1000);
	put128(s->data_units_written, (st.write_bytes / 512 + 999) / 1000);
	put128(s->host_reads, st.io_cmds);
	put128(s->host_writes, st.io_cmds);
	put128(s->power_cycles, 1);
	put128(s->power_on_hours, hours);
	put128(s->num_err_log_entries, errs);
}

static uint16_t get_log_page(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	const struct nvme_sqe *c = &r->cmd;
	unsigned lid = c->cdw10 & 0xff;
	bool rae = c->cdw10 & NVME_LOG_RAE;
	uint64_t numd = ((uint64_t)(c->cdw11 & 0xffff) << 16 | (c->cdw10 >> 16)) + 1;
	uint64_t len = numd * 4, off = (uint64_t)c->cdw13 << 32 | c->cdw12, size;
	uint8_t *buf;
	uint16_t st;

	if (off & 3 || len > NVME_MAX_XFER)
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	buf = calloc(1, len + 4096);
	if (!buf)
		return NVME_GEN(NVME_SC_INTERNAL);
	switch (lid) {
	case NVME_LOG_ERROR:
		size = sizeof(n->errlog);
		break;
	case NVME_LOG_SMART:
		size = sizeof(struct nvme_smart_log);
		if (c->nsid && c->nsid != 0xffffffffu) {
			free(buf);
			return NVME_GEN(NVME_SC_INVALID_FIELD); /* no per-namespace SMART */
		}
		break;
	case NVME_LOG_FW_SLOT:
		size = sizeof(struct nvme_fw_slot_log);
		break;
	case NVME_LOG_CHANGED_NS:
		size = NVME_CHANGED_NS_MAX * 4;
		break;
	case NVME_LOG_CMD_EFFECTS:
		size = sizeof(struct nvme_cmd_effects_log);
		break;
	default:
		free(buf);
		return NVME_CS(NVME_SC_INVALID_LOG_PAGE);
	}
	if (off >= size) {
		free(buf);
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	}
	{
		/* Build the whole page, then hand out [off, off + len). */
		uint8_t *page = calloc(1, size);

		if (!page) {
			free(buf);
			return NVME_GEN(NVME_SC_INTERNAL);
		}
		if (lid == NVME_LOG_ERROR) {
			pthread_mutex_lock(&n->errlog_lock);
			memcpy(page, n->errlog, size);
			pthread_mutex_unlock(&n->errlog_lock);
		} else if (lid == NVME_LOG_SMART) {
			smart_log(n, (struct nvme_smart_log *)page);
		} else if (lid == NVME_LOG_FW_SLOT) {
			struct nvme_fw_slot_log *fw = (struct nvme_fw_slot_log *)page;

			fw->afi = 1;
			pad(fw->frs[0], sizeof(fw->frs[0]), "0.1");
		} else if (lid == NVME_LOG_CHANGED_NS) {
			uint32_t *l = (uint32_t *)page;

			if (n->changed_overflow)
				l[0] = 0xffffffffu;
			else
				memcpy(l, n->changed, n->nchanged * 4);
			if (!rae) {
				n->nchanged = 0;
				n->changed_overflow = false;
				n->ns_event_masked = false;
				/* The host now knows every change so far. */
				n->ns_event_pending = false;
			}
		} else {
			struct nvme_cmd_effects_log *e = (struct nvme_cmd_effects_log *)page;
			static const uint8_t adm[] = {
				NVME_ADM_DELETE_SQ, NVME_ADM_CREATE_SQ, NVME_ADM_GET_LOG_PAGE,
				NVME_ADM_DELETE_CQ, NVME_ADM_CREATE_CQ, NVME_ADM_IDENTIFY,
				NVME_ADM_ABORT, NVME_ADM_SET_FEATURES, NVME_ADM_GET_FEATURES,
				NVME_ADM_ASYNC_EVENT, NVME_ADM_DBBUF_CONFIG,
			};

			for (size_t i = 0; i < sizeof(adm); i++)
				e->acs[adm[i]] = NVME_CMD_EFFECTS_CSUPP;
			e->iocs[NVME_CMD_FLUSH] = NVME_CMD_EFFECTS_CSUPP;
			e->iocs[NVME_CMD_READ] = NVME_CMD_EFFECTS_CSUPP;
			e->iocs[NVME_CMD_COMPARE] = NVME_CMD_EFFECTS_CSUPP;
			e->iocs[NVME_CMD_WRITE] = NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC;
			e->iocs[NVME_CMD_WRITE_ZEROES] = NVME_CMD_EFFECTS_CSUPP |
							 NVME_CMD_EFFECTS_LBCC;
			e->iocs[NVME_CMD_DSM] = NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC;
		}
		memcpy(buf, page + off, size - off < len ? size - off : len);
		free(page);
	}
	st = nvme_copy_to_guest(&n->alp, c, buf, len);
	free(buf);
	if (!st && lid == NVME_LOG_CHANGED_NS && !rae)
		nvme_aer_kick(n);
	return st;
}

/* ---- asynchronous events ---- */

void nvme_aer_kick(struct umdev_nvme *n)
{
	struct nvme_req *r;

	if (!n->naer || !n->ns_event_pending || n->ns_event_masked ||
	    !(n->feat.async_cfg & NVME_AEN_CFG_NS_ATTR))
		return;
	r = n->aer[--n->naer];
	n->ns_event_pending = false;
	n->ns_event_masked = true; /* until the host reads the changed list */
	r->status = 0;
	r->dw0 = (uint32_t)NVME_LOG_CHANGED_NS << 16 | NVME_AER_NOTICE_NS_CHANGED << 8 |
		 NVME_AER_TYPE_NOTICE;
	nvme_req_complete(r);
	nvme_irq_flush(&n->alp, false);
}

void nvme_aer_post_ns_changed(struct umdev_nvme *n, uint32_t nsid)
{
	bool have = false;

	for (unsigned i = 0; i < n->nchanged; i++)
		have |= n->changed[i] == nsid;
	if (!have) {
		if (n->nchanged < NVME_CHANGED_NS_MAX)
			n->changed[n->nchanged++] = nsid;
		else
			n->changed_overflow = true;
	}
	n->ns_event_pending = true;
	nvme_aer_kick(n);
}

/* ---- dispatch ---- */

/* A loop takes the new buffers: translate them, seed its queues' shadows. */
static void io_dbbuf(void *opaque)
{
	struct nvme_lp *lp = opaque;
	struct umdev_nvme *n = lp->n;

	if (nvme_ensure_map(lp) < 0 || nvme_translate_dbbuf(lp) < 0)
		return; /* retried with the next map */
	/*
	 * Queues that exist already: start from the real doorbells. EventIdx
	 * equal to the value seen asks the host to ring on its next update;
	 * the poller leaves it there until it sleeps (nvme_eventidx_arm()).
	 */
	for (unsigned q = 1; q <= n->max_queues; q++) {
		for (unsigned i = 2 * q; i <= 2 * q + 1; i++) {
			if ((i & 1) ? !lp->cq[q] : !lp->sq[q])
				continue;
			umdev_shm_st32(&lp->dbbuf[i], nvme_db_load(n, i));
			umdev_shm_st32(&lp->ei[i], nvme_db_load(n, i));
		}
	}
}

static uint16_t dbbuf_config(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	struct nvme_lp *alp = &n->alp;
	uint64_t db = r->cmd.dptr.prp.prp1, ei = r->cmd.dptr.prp.prp2;

	if (!db || !ei || (db | ei) & (NVME_PAGE - 1))
		return NVME_GEN(NVME_SC_INVALID_FIELD);
	if (nvme_ensure_map(alp) < 0)
		return NVME_GEN(NVME_SC_DATA_XFER_ERROR);
	if (!umdev_as_map_translate(alp->map, db, NVME_PAGE, UMDEV_MEM_READ | UMDEV_MEM_WRITE) ||
	    !umdev_as_map_translate(alp->map, ei, NVME_PAGE, UMDEV_MEM_READ | UMDEV_MEM_WRITE))
		return NVME_GEN(NVME_SC_DATA_XFER_ERROR);
	if (!n->dbbuf_gpa)
		umdev_info("%s: shadow doorbells on (buffer 0x%" PRIx64 ", EventIdx 0x%" PRIx64 ")",
			   n->name, db, ei);
	n->dbbuf_gpa = db;
	n->ei_gpa = ei;
	for (unsigned i = 0; i < n->nlp; i++)
		nvme_sync(n, n->lp[i], io_dbbuf, n->lp[i]);
	return 0;
}

bool nvme_admin(struct nvme_req *r)
{
	struct umdev_nvme *n = r->n;
	const struct nvme_sqe *c = &r->cmd;

	if (c->flags & NVME_CMD_FUSE_MASK) {
		r->status = NVME_GEN(NVME_SC_INVALID_FIELD);
		return true;
	}
	/* Admin commands carry PRPs only. */
	if (c->flags & NVME_CMD_PSDT_MASK) {
		r->status = NVME_GEN(NVME_SC_INVALID_FIELD);
		return true;
	}
	switch (c->opcode) {
	case NVME_ADM_IDENTIFY:
		r->status = identify(r);
		return true;
	case NVME_ADM_CREATE_CQ:
		r->status = create_cq(r);
		return true;
	case NVME_ADM_CREATE_SQ:
		r->status = create_sq(r);
		return true;
	case NVME_ADM_DELETE_SQ:
		r->status = delete_sq(r);
		return true;
	case NVME_ADM_DELETE_CQ:
		r->status = delete_cq(r);
		return true;
	case NVME_ADM_GET_FEATURES:
		r->status = get_features(r);
		return true;
	case NVME_ADM_SET_FEATURES:
		r->status = set_features(r);
		return true;
	case NVME_ADM_GET_LOG_PAGE:
		r->status = get_log_page(r);
		return true;
	case NVME_ADM_ASYNC_EVENT:
		if (n->naer >= NVME_AERL) {
			r->status = NVME_CS(NVME_SC_ASYNC_LIMIT);
			return true;
		}
		n->aer[n->naer++] = r;
		nvme_aer_kick(n);
		return false;
	case NVME_ADM_ABORT:
		/* Commands run to completion here: report "not aborted" (bit 0). */
		r->dw0 = 1;
		return true;
	case NVME_ADM_DBBUF_CONFIG:
		r->status = dbbuf_config(r);
		return true;
	default:
		r->status = NVME_GEN(NVME_SC_INVALID_OPCODE);
		return true;
	}
}
