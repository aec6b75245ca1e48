/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split virtqueue, device side (virtio 1.x "Split Virtqueues").
 *
 * Everything in the three ring parts and in the buffers belongs to a hostile
 * driver that may change it while we look. Rules followed here:
 * - Ring parts are translated once at start (contiguous, aligned, with the
 *   needed permission; a part across adjacent windows, as a vIOMMU maps
 *   them, through a view: umdev_vq_ring_part()); buffers are translated per
 *   descriptor and may produce several iovecs when they cross regions; an
 *   indirect table across windows is copied entry by entry.
 * - Memory order: see the [R*] rules below.
 * - Every guest field is read exactly once into a local (descriptors as a
 *   whole), so a value checked is the value used.
 * - used->idx, used->flags and avail_event are only written, never trusted:
 *   the device keeps its own copies.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "umdev/log.h"
#include "util/shm.h"
#include "virtio/vq_internal.h"

/*
 * Ordering rules of the spec ("Split Virtqueues"; 2.7.13 and 2.7.7 in
 * virtio 1.2) and where each is kept:
 * [R1] avail->idx is read (acquire) before the ring entries and descriptors
 *      it publishes: split_pop, split_has_avail, split_enable_kicks.
 * [R2] used entries are written before used->idx (release): split_push.
 * [R3] used->idx is visible before the driver's used_event / flags are read
 *      (full fence), or the driver may sleep without an interrupt:
 *      split_need_notify.
 * [R4] avail_event / NO_NOTIFY is visible before avail->idx is read again
 *      (full fence), or a buffer added meanwhile is neither kicked nor seen:
 *      split_enable_kicks.
 * Other ring fields are single untorn relaxed accesses (umdev_shm_ld16/st16).
 *
 * The inflight region is shared with the front-end, which reads it only
 * after this process died; what must hold there is program order of the
 * stores (a killed process leaves every store it made). Relaxed atomics
 * may be reordered by the compiler, so the stores whose order the
 * vhost-user spec prescribes are release stores: each keeps every earlier
 * store before it.
 */
#define IF_OFF(field) offsetof(struct vhost_user_inflight_queue, field)
#define IF_DESC(i, field) (sizeof(struct vhost_user_inflight_queue) + \
			   (size_t)(i) * sizeof(struct vhost_user_inflight_desc) + \
			   offsetof(struct vhost_user_inflight_desc, field))

static uint8_t *inflight_of(umdev_vq *vq)
{
	return vq->inflight_active ? (uint8_t *)vq->inflight : NULL;
}

static uint8_t if_flag(const uint8_t *r, unsigned i)
{
	return umdev_shm_ld8(r + IF_DESC(i, inflight));
}

static void if_set_flag(uint8_t *r, unsigned i, uint8_t v)
{
	umdev_shm_st8_rel(r + IF_DESC(i, inflight), v);
}

/* Walk the chain at @head into @iov. @pos is the avail index it came from,
 * for log lines. On any violation the queue is broken and -EIO returned. */
static int walk_chain(umdev_vq *vq, uint16_t head, uint32_t pos, struct umdev_vq_elem *elem,
		      struct iovec *iov, unsigned max_iov)
{
	const struct virtq_desc *table = vq->split.desc;
	uint64_t table_addr = vq->cfg.desc_addr;
	uint32_t table_len = vq->cfg.size;
	uint32_t idx = head, walked = 0;
	bool in_indirect = false, seen_write = false, through;
	uint64_t total = 0, out_len = 0, in_len = 0;
	unsigned niov = 0, n_out = 0;
	struct umdev_vq_span sp = { UINT64_MAX, 0 };

#define CHAIN_ERR(fmt, ...)                                                                      \
	do {                                                                                     \
		umdev_vq_set_broken(vq, "chain at head %u (avail idx %" PRIu32 "), %s desc %" PRIu32 \
				   ": " fmt, head, pos, in_indirect ? "indirect" : "ring", idx,   \
				   ##__VA_ARGS__);                                               \
		return -EIO;                                                                     \
	} while (0)

	for (;;) {
		struct virtq_desc d;

		/* A chain longer than its table must revisit a descriptor. */
		if (++walked > table_len)
			CHAIN_ERR("loop (more than %" PRIu32 " descriptors)", table_len);
		if (umdev_vq_desc_load(vq, table, table_addr, idx, &d) < 0)
			CHAIN_ERR("indirect table 0x%" PRIx64 " not in readable guest memory",
				  table_addr);

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->cfg.indirect)
				CHAIN_ERR("INDIRECT flag but INDIRECT_DESC not negotiated");
			if (in_indirect)
				CHAIN_ERR("nested indirect table");
			if (d.flags & VIRTQ_DESC_F_NEXT)
				CHAIN_ERR("INDIRECT together with NEXT");
			if (d.len == 0 || d.len % sizeof(struct virtq_desc) ||
			    d.len / sizeof(struct virtq_desc) > UMDEV_VQ_MAX_INDIRECT)
				CHAIN_ERR("bad indirect table length %" PRIu32, d.len);
			table = umdev_vq_indirect_table(vq, d.addr, d.len, &through);
			table_addr = d.addr;
			umdev_vq_span_add(&sp, d.addr, d.len);
			if (!table && !through)
				CHAIN_ERR("indirect table 0x%" PRIx64 "+%" PRIu32
					  " not in readable guest memory", d.addr, d.len);
			table_len = d.len / sizeof(struct virtq_desc);
			in_indirect = true;
			idx = 0;
			walked = 0;
			continue;
		}

		bool wr = d.flags & VIRTQ_DESC_F_WRITE;

		if (wr)
			seen_write = true;
		else if (seen_write)
			CHAIN_ERR("readable descriptor after a writable one");
		total += d.len;
		if (total > UINT32_MAX)
			CHAIN_ERR("chain length overflows 32 bits");
		if (d.len) {
			int r = umdev_as_map_to_iov(vq->map, d.addr, d.len,
						    (wr ? UMDEV_MEM_WRITE : UMDEV_MEM_READ) | shadow_prot(vq),
						    iov + niov, max_iov - niov);
			if (r == -ENOBUFS)
				CHAIN_ERR("chain needs more than %u iovecs", max_iov);
			if (r < 0)
				CHAIN_ERR("buffer 0x%" PRIx64 "+%" PRIu32 " not in %s guest memory",
					  d.addr, d.len, wr ? "writable" : "readable");
			niov += (unsigned)r;
			umdev_vq_span_add(&sp, d.addr, d.len);
			if (wr) {
				in_len += d.len;
			} else {
				out_len += d.len;
				n_out += (unsigned)r;
			}
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= table_len)
			CHAIN_ERR("next %u out of range (%" PRIu32 " descriptors)", d.next, table_len);
		idx = d.next;
	}
#undef CHAIN_ERR

	vq->walk = sp;
	elem->head = head;
	elem->iov = iov;
	elem->n_out = n_out;
	elem->n_in = niov - n_out;
	elem->out_len = out_len;
	elem->in_len = in_len;
	return 0;
}

/* vhost-user inflight tracking, "receiving available buffers": counter
 * first, then the inflight flag. */
static void inflight_mark(umdev_vq *vq, uint16_t head)
{
	uint8_t *r = inflight_of(vq);

	if (!r)
		return;
	umdev_shm_st64(r + IF_DESC(head, counter), ++vq->inflight_counter);
	if_set_flag(r, head, 1);
}

static int split_pop(umdev_vq *vq, struct umdev_vq_elem *elem, struct iovec *iov, unsigned max_iov)
{
	struct umdev_vq_split *s = &vq->split;
	uint16_t size = vq->cfg.size;
	uint16_t pos = vq->last_avail_idx, head;
	int ret;

	if (s->shadow_avail_idx == pos) {
		/* [R1] */
		uint16_t idx = umdev_shm_ld16_acq(&s->avail->idx);

		if (idx == pos)
			return 0;
		if ((uint16_t)(idx - pos) > size) {
			umdev_vq_set_broken(vq, "avail idx %u runs %u entries ahead of last_avail_idx %u (ring size %u)",
					    idx, (uint16_t)(idx - pos), pos, size);
			return -EIO;
		}
		s->shadow_avail_idx = idx;
	}
	head = umdev_shm_ld16(&s->avail->ring[pos & (size - 1)]);
	if (head >= size) {
		umdev_vq_set_broken(vq, "avail idx %u names head %u, ring size %u", pos, head, size);
		return -EIO;
	}
	/* Two live requests on one chain would alias each other's buffers. */
	if (umdev_vq_head_busy(vq, head)) {
		umdev_vq_set_broken(vq, "avail idx %u names head %u, which is already in use",
				    pos, head);
		return -EIO;
	}
	ret = walk_chain(vq, head, pos, elem, iov, max_iov);
	if (ret < 0)
		return ret;
	vq->last_avail_idx++;
	vq->inuse++;
	umdev_vq_head_set_busy(vq, head, true);
	inflight_mark(vq, head);
	return 1;
}

static int split_get_head(umdev_vq *vq, uint16_t head, struct umdev_vq_elem *elem,
			  struct iovec *iov, unsigned max_iov)
{
	uint8_t *r = inflight_of(vq);
	int ret;

	if (head >= vq->cfg.size)
		return -EINVAL;
	ret = walk_chain(vq, head, vq->last_avail_idx, elem, iov, max_iov);
	if (ret < 0)
		return ret;
	/* Heads found by recovery are already counted in inuse and keep their
	 * old counter so that resubmission order survives another crash. */
	if (!r || if_flag(r, head) != 1) {
		vq->inuse++;
		inflight_mark(vq, head);
	}
	umdev_vq_head_set_busy(vq, head, true);
	return 1;
}

static void split_push(umdev_vq *vq, uint16_t head, uint32_t written)
{
	struct umdev_vq_split *s = &vq->split;
	uint8_t *r = inflight_of(vq);
	struct virtq_used_elem *ue = &s->used->ring[s->used_idx & (vq->cfg.size - 1)];

	/* Inflight order per the vhost-user spec: batch list, used ring and
	 * index, then clear inflight, then record the used index. */
	if (r) {
		umdev_shm_st16(r + IF_DESC(head, next), umdev_shm_ld16(r + IF_OFF(last_batch_head)));
		umdev_shm_st16_rel(r + IF_OFF(last_batch_head), head);
	}
	umdev_shm_st32(&ue->id, head);
	umdev_shm_st32(&ue->len, written);
	umdev_vq_log_used(vq, (uint8_t *)ue - (uint8_t *)s->used, sizeof(*ue));
	s->used_idx++;
	/* [R2] */
	umdev_shm_st16_rel(&s->used->idx, s->used_idx);
	umdev_vq_log_used(vq, offsetof(struct virtq_used, idx), sizeof(s->used->idx));
	if (r) {
		if_set_flag(r, head, 0);
		umdev_shm_st16_rel(r + IF_OFF(used_idx), s->used_idx);
	}
}

static bool split_need_notify(umdev_vq *vq)
{
	struct umdev_vq_split *s = &vq->split;
	uint16_t old = s->signalled_used, cur = s->used_idx;
	bool valid = s->signalled_used_valid;

	/* [R3] */
	umdev_shm_fence_full();
	if (valid && old == cur)
		return false;
	s->signalled_used = cur;
	s->signalled_used_valid = true;
	if (vq->cfg.event_idx)
		return !valid || virtq_need_event(umdev_shm_ld16(s->used_event), cur, old);
	return !(umdev_shm_ld16(&s->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

static bool split_enable_kicks(umdev_vq *vq)
{
	struct umdev_vq_split *s = &vq->split;

	if (vq->cfg.event_idx) {
		umdev_shm_st16(s->avail_event, umdev_shm_ld16(&s->avail->idx));
		umdev_vq_log_used(vq, (uint8_t *)s->avail_event - (uint8_t *)s->used, 2);
	} else {
		s->used_flags &= (uint16_t)~VIRTQ_USED_F_NO_NOTIFY;
		umdev_shm_st16(&s->used->flags, s->used_flags);
		umdev_vq_log_used(vq, offsetof(struct virtq_used, flags), 2);
	}
	/* [R4], then [R1] */
	umdev_shm_fence_full();
	return umdev_shm_ld16_acq(&s->avail->idx) != vq->last_avail_idx;
}

static void split_disable_kicks(umdev_vq *vq)
{
	struct umdev_vq_split *s = &vq->split;

	/* With EVENT_IDX, not moving avail_event is enough: the driver kicks
	 * at most once more. */
	if (vq->cfg.event_idx)
		return;
	s->used_flags |= VIRTQ_USED_F_NO_NOTIFY;
	umdev_shm_st16(&s->used->flags, s->used_flags);
	umdev_vq_log_used(vq, offsetof(struct virtq_used, flags), 2);
}

static bool split_has_avail(umdev_vq *vq)
{
	struct umdev_vq_split *s = &vq->split;

	if (s->shadow_avail_idx != vq->last_avail_idx)
		return true;
	return umdev_shm_ld16_acq(&s->avail->idx) != vq->last_avail_idx; /* [R1] */
}

static int split_start(umdev_vq *vq)
{
	const struct umdev_vq_config *c = &vq->cfg;
	struct umdev_vq_split *s = &vq->split;
	uint64_t ev = c->event_idx ? 2 : 0;
	int err = 0;

	if (c->desc_addr % 16 || c->avail_addr % 2 || c->used_addr % 4) {
		umdev_err("%s: misaligned ring (desc 0x%" PRIx64 " avail 0x%" PRIx64
			  " used 0x%" PRIx64 ")", vq->name, c->desc_addr, c->avail_addr, c->used_addr);
		return -EFAULT;
	}
	s->desc = umdev_vq_ring_part(vq, 0, c->desc_addr, virtq_desc_bytes(c->size),
				     UMDEV_MEM_READ, &err);
	if (s->desc)
		s->avail = umdev_vq_ring_part(vq, 1, c->avail_addr,
					      virtq_avail_bytes(c->size) - 2 + ev, UMDEV_MEM_READ,
					      &err);
	if (s->avail)
		s->used = umdev_vq_ring_part(vq, 2, c->used_addr,
					     virtq_used_bytes(c->size) - 2 + ev,
					     UMDEV_MEM_READ | UMDEV_MEM_WRITE, &err);
	if (!s->used) {
		umdev_err("%s: ring part %s (desc 0x%" PRIx64 " avail 0x%" PRIx64 " used 0x%" PRIx64
			  ", size %u)", vq->name, umdev_as_span_why(err), c->desc_addr,
			  c->avail_addr, c->used_addr, c->size);
		return -EFAULT;
	}
	/*
	 * Aligned guest addresses can still land misaligned in our mapping when
	 * a region's guest address and file offset differ in their low bits:
	 * index loads and stores would then be neither atomic nor defined.
	 */
	if ((uintptr_t)s->desc % 16 || (uintptr_t)s->avail % 2 || (uintptr_t)s->used % 4) {
		umdev_err("%s: ring misaligned in its memory region (the region's guest address "
			  "and file offset disagree)", vq->name);
		return -EFAULT;
	}
	s->used_event = &s->avail->ring[c->size];
	s->avail_event = (uint16_t *)&s->used->ring[c->size];
	s->used_idx = umdev_shm_ld16(&s->used->idx);
	s->used_flags = umdev_shm_ld16(&s->used->flags) & VIRTQ_USED_F_NO_NOTIFY;
	s->shadow_avail_idx = vq->last_avail_idx;
	s->signalled_used_valid = false;
	return 0;
}

static void split_inflight_init(umdev_vq *vq)
{
	uint8_t *r = (uint8_t *)vq->inflight;

	umdev_shm_st64(r + IF_OFF(features), 0);
	umdev_shm_st16(r + IF_OFF(desc_num), vq->cfg.size);
	umdev_shm_st16(r + IF_OFF(last_batch_head), 0);
	umdev_shm_st16(r + IF_OFF(used_idx), vq->split.used_idx);
	for (unsigned i = 0; i < vq->cfg.size; i++) {
		umdev_shm_st64(r + IF_DESC(i, counter), 0);
		umdev_shm_st64(r + IF_DESC(i, inflight), 0); /* flag, padding, next */
	}
	/* version last (release): a crash before here leaves the region "fresh". */
	umdev_shm_st16_rel(r + IF_OFF(version), VHOST_USER_INFLIGHT_VERSION);
	vq->inflight_counter = 0;
	vq->inflight_active = true;
}

/* Start with a region attached: set up a fresh one, trust an old one that fits. */
static void split_inflight_attach(umdev_vq *vq)
{
	uint8_t *r = (uint8_t *)vq->inflight;
	uint16_t version = umdev_shm_ld16(r + IF_OFF(version));
	uint16_t num = umdev_shm_ld16(r + IF_OFF(desc_num));

	umdev_vq_inflight_adopt(vq, version, num, r + IF_DESC(0, counter),
				sizeof(struct vhost_user_inflight_desc));
}

static void split_stop(umdev_vq *vq)
{
	(void)vq;
}

static int split_recover_inflight(umdev_vq *vq, uint16_t *heads, unsigned max)
{
	struct umdev_vq_split *s = &vq->split;
	uint8_t *r = (uint8_t *)vq->inflight;
	uint16_t version = umdev_shm_ld16(r + IF_OFF(version));
	uint16_t num = umdev_shm_ld16(r + IF_OFF(desc_num));
	uint16_t r_used = umdev_shm_ld16(r + IF_OFF(used_idx));
	uint16_t size = vq->cfg.size, used = s->used_idx;
	struct umdev_vq_recovered *rec;
	uint64_t max_counter = 0;
	unsigned count = 0;

	if (version == 0) {
		split_inflight_init(vq);
		return 0;
	}
	/* Until this region checks out, pop and push leave it alone. */
	vq->inflight_active = false;
	if (version != VHOST_USER_INFLIGHT_VERSION || num != size) {
		umdev_err("%s: inflight region version %u desc_num %u, ring size %u: corrupt",
			  vq->name, version, num, size);
		return -EIO;
	}
	/* A batch was published in the used ring but its inflight flags were
	 * not cleared before the crash: finish that step now. */
	if (r_used != used) {
		uint16_t batch = used - r_used, h = umdev_shm_ld16(r + IF_OFF(last_batch_head));

		if (batch > size) {
			umdev_err("%s: inflight used_idx %u vs used idx %u: corrupt", vq->name,
				  r_used, used);
			return -EIO;
		}
		for (unsigned i = 0; i < batch; i++) {
			if (h >= size) {
				umdev_err("%s: inflight batch head %u out of range: corrupt",
					  vq->name, h);
				return -EIO;
			}
			if_set_flag(r, h, 0);
			h = umdev_shm_ld16(r + IF_DESC(h, next));
		}
		umdev_shm_st16_rel(r + IF_OFF(used_idx), used);
	}

	rec = malloc((size_t)size * sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	for (unsigned i = 0; i < size; i++) {
		uint8_t f = if_flag(r, i);
		uint64_t c = umdev_shm_ld64(r + IF_DESC(i, counter));

		if (c > max_counter)
			max_counter = c;
		if (f == 0)
			continue;
		if (f != 1) {
			umdev_err("%s: inflight flag %u for head %u: corrupt", vq->name, f, i);
			free(rec);
			return -EIO;
		}
		rec[count].counter = c;
		rec[count].idx = (uint16_t)i;
		count++;
	}
	vq->inflight_active = true;
	if (count > max) {
		free(rec);
		return -ENOBUFS;
	}
	umdev_vq_sort_recovered(rec, count);
	for (unsigned i = 0; i < count; i++)
		heads[i] = rec[i].idx;
	free(rec);

	vq->inflight_counter = max_counter;
	vq->inuse = count;
	vq->last_avail_idx = (uint16_t)(used + count);
	s->shadow_avail_idx = vq->last_avail_idx;
	return (int)count;
}

const struct umdev_vq_ops umdev_vq_split_ops = {
	.start = split_start,
	.pop = split_pop,
	.get_head = split_get_head,
	.push = split_push,
	.need_notify = split_need_notify,
	.enable_kicks = split_enable_kicks,
	.disable_kicks = split_disable_kicks,
	.has_avail = split_has_avail,
	.inflight_init = split_inflight_init,
	.inflight_attach = split_inflight_attach,
	.recover_inflight = split_recover_inflight,
	.stop = split_stop,
};
