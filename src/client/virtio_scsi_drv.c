/* SPDX-License-Identifier: BSD-3-Clause */
/* A userspace virtio-scsi driver for tests and the benchmark (see the header). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/virtio_scsi_drv.h"
#include "umdev/proto/virtio_ring.h"

#define DEFAULT_FEATURES                                                                   \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_SCSI_F_INOUT) |                     \
	 (1ull << VIRTIO_SCSI_F_HOTPLUG) | (1ull << VIRTIO_SCSI_F_CHANGE) |                 \
	 (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC))

int umdev_vscsi_drv_start(struct umdev_vscsi_drv *d, struct umdev_vuc *c, const char *sock,
			  unsigned nreq, uint16_t qsize, uint64_t features, uint64_t region_size)
{
	int r;

	if (nreq == 0 || 2 + nreq > UMDEV_VUC_MAX_QUEUES || qsize > UMDEV_VSCSI_DRV_MAX_QSIZE)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->c = c;
	d->nreq = nreq;
	r = umdev_vuc_connect(c, sock, 3000);
	if (r)
		return r;
	c->want_features = features ? features : DEFAULT_FEATURES;
	return umdev_vuc_start_blk(c, 2 + nreq, qsize, 1, region_size, 0);
}

int umdev_vscsi_drv_open(struct umdev_vscsi_drv *d, struct umdev_vba *b, bool vfu, const char *sock,
			 unsigned nreq, uint16_t qsize, uint64_t features, uint64_t region_size)
{
	int r;

	if (nreq == 0 || 2 + nreq > UMDEV_VUC_MAX_QUEUES || 2 + nreq > UMDEV_VPD_MAX_QUEUES ||
	    qsize > UMDEV_VSCSI_DRV_MAX_QSIZE)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->nreq = nreq;
	b->no_interrupts = false;
	b->want_features = features ? features : DEFAULT_FEATURES;
	r = umdev_vba_open(b, vfu, sock, 2 + nreq, qsize, region_size);
	d->b = b;
	d->c = vfu ? NULL : &b->vu;
	return r;
}

/* The transport: umdev_vba's when opened through it, else the vhost-user client's. */
static unsigned nqueues(struct umdev_vscsi_drv *d)
{
	return d->b ? d->b->nq : d->c->nqueues;
}

static struct umdev_vqd *vq(struct umdev_vscsi_drv *d, unsigned q)
{
	return d->b ? umdev_vba_vq(d->b, q) : &d->c->vqs[q].drv;
}

static void *gpa_ptr(struct umdev_vscsi_drv *d, uint64_t gpa, uint64_t len)
{
	return d->b ? umdev_vba_ptr(d->b, gpa, len) : umdev_vuc_gpa_ptr(d->c, gpa, len);
}

static void wait_irq(struct umdev_vscsi_drv *d, unsigned q, int timeout_ms)
{
	if (d->b)
		umdev_vba_wait_irq(d->b, q, timeout_ms);
	else
		(void)umdev_vuc_wait_call(d->c, q, timeout_ms);
}

static int ensure(struct umdev_vscsi_drv *d, uint64_t *gpa, uint32_t *cap, uint32_t len)
{
	uint64_t size = len ? len : 1;

	if (*gpa && *cap >= len)
		return 0;
	*gpa = d->b ? umdev_vba_alloc(d->b, size, 64) : umdev_vuc_alloc(d->c, 0, size, 64);
	*cap = len;
	return *gpa ? 0 : -ENOMEM;
}

int umdev_vscsi_post(struct umdev_vscsi_drv *d, unsigned q, struct umdev_vscsi_chain *ch,
		     bool no_kick)
{
	struct umdev_vqd_buf bufs[4];
	unsigned n = 0;
	int head, r;

	if (q >= nqueues(d) || q >= UMDEV_VUC_MAX_QUEUES)
		return -EINVAL;
	if ((r = ensure(d, &ch->out_gpa, &ch->out_cap, ch->out_len)) ||
	    (r = ensure(d, &ch->in_gpa, &ch->in_cap, ch->in_len)))
		return r;
	if (ch->out_len)
		memcpy(gpa_ptr(d, ch->out_gpa, ch->out_len), ch->out, ch->out_len);
	ch->in = gpa_ptr(d, ch->in_gpa, ch->in_len ? ch->in_len : 1);
	if (ch->in_len && !d->no_poison)
		memset(ch->in, 0xcc, ch->in_len); /* so unwritten bytes are recognisable */
	if (ch->out_split && ch->out_split < ch->out_len) {
		bufs[n++] = (struct umdev_vqd_buf){ ch->out_gpa, ch->out_split, false };
		bufs[n++] = (struct umdev_vqd_buf){ ch->out_gpa + ch->out_split,
						    ch->out_len - ch->out_split, false };
	} else if (ch->out_len) {
		bufs[n++] = (struct umdev_vqd_buf){ ch->out_gpa, ch->out_len, false };
	}
	if (ch->in_split && ch->in_split < ch->in_len) {
		bufs[n++] = (struct umdev_vqd_buf){ ch->in_gpa, ch->in_split, true };
		bufs[n++] = (struct umdev_vqd_buf){ ch->in_gpa + ch->in_split,
						    ch->in_len - ch->in_split, true };
	} else if (ch->in_len) {
		bufs[n++] = (struct umdev_vqd_buf){ ch->in_gpa, ch->in_len, true };
	}
	ch->done = false;
	ch->used_len = 0;
	head = umdev_vqd_add(vq(d, q), bufs, n, 0);
	if (head < 0)
		return head;
	d->by_head[q][head] = ch;
	if (!no_kick && umdev_vqd_kick_needed(vq(d, q)))
		return d->b ? umdev_vba_kick(d->b, q) : umdev_vuc_kick(d->c, q);
	return 0;
}

/* Reap up to @max now; each finished chain into @out when it is not NULL. */
static int reap_some(struct umdev_vscsi_drv *d, unsigned q, struct umdev_vscsi_chain **out,
		     unsigned max)
{
	struct umdev_vqd *drv = vq(d, q);
	unsigned n = 0;
	int r = 0;
	uint16_t head;
	uint32_t len;

	while (n < max && (r = umdev_vqd_get_used(drv, &head, &len)) == 1) {
		struct umdev_vscsi_chain *ch = d->by_head[q][head];

		if (!ch)
			return -EPROTO;
		d->by_head[q][head] = NULL;
		ch->used_len = len;
		ch->done = true;
		if (out)
			out[n] = ch;
		n++;
	}
	return r < 0 ? r : (int)n;
}

static int reap_now(struct umdev_vscsi_drv *d, unsigned q)
{
	return reap_some(d, q, NULL, ~0u);
}

int umdev_vscsi_poll(struct umdev_vscsi_drv *d, unsigned q, struct umdev_vscsi_chain **out,
		     unsigned max)
{
	if (q >= nqueues(d) || q >= UMDEV_VUC_MAX_QUEUES)
		return -EINVAL;
	return reap_some(d, q, out, max);
}

int umdev_vscsi_reap(struct umdev_vscsi_drv *d, unsigned q, int timeout_ms)
{
	struct timespec t0, now;
	int n;

	if (q >= nqueues(d))
		return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long spent;

		n = reap_now(d, q);
		if (n != 0)
			return n;
		clock_gettime(CLOCK_MONOTONIC, &now);
		spent = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (spent >= timeout_ms)
			return 0;
		/* The call fd may have fired for an entry reaped already: poll every 10 ms. */
		wait_irq(d, q, timeout_ms - spent < 10 ? timeout_ms - spent : 10);
	}
}

int umdev_vscsi_wait(struct umdev_vscsi_drv *d, unsigned q, struct umdev_vscsi_chain *ch,
		     int timeout_ms)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!ch->done) {
		long spent;
		int r;

		clock_gettime(CLOCK_MONOTONIC, &now);
		spent = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (spent >= timeout_ms)
			return -ETIMEDOUT;
		r = umdev_vscsi_reap(d, q, timeout_ms - spent);
		if (r < 0)
			return r;
	}
	return 0;
}

void umdev_vscsi_lun(uint8_t *out, unsigned target, unsigned lun)
{
	memset(out, 0, 8);
	out[0] = 1;
	out[1] = target;
	out[2] = 0x40 | (lun >> 8);
	out[3] = lun & 0xff;
}

int umdev_vscsi_cmd_init(struct umdev_vscsi_cmd *cmd, unsigned target, unsigned lun,
			 uint64_t tag, const uint8_t *cdb, unsigned cdb_len, const void *data_out,
			 uint32_t data_out_len, uint32_t data_in_len, uint32_t cdb_size,
			 uint32_t sense_size)
{
	uint32_t hdr_len;

	cdb_size = cdb_size ? cdb_size : VIRTIO_SCSI_CDB_SIZE_DEFAULT;
	sense_size = sense_size ? sense_size : VIRTIO_SCSI_SENSE_SIZE_DEFAULT;
	if (cdb_size > 256 || cdb_len > cdb_size)
		return -EINVAL;
	hdr_len = sizeof(struct virtio_scsi_cmd_req) + cdb_size;
	free(cmd->buf);
	cmd->buf = calloc(1, hdr_len + data_out_len);
	if (!cmd->buf)
		return -ENOMEM;
	umdev_vscsi_lun(cmd->buf, target, lun);
	memcpy(cmd->buf + 8, &tag, 8);
	memcpy(cmd->buf + sizeof(struct virtio_scsi_cmd_req), cdb, cdb_len);
	if (data_out_len)
		memcpy(cmd->buf + hdr_len, data_out, data_out_len);
	cmd->cdb_size = cdb_size;
	cmd->sense_size = sense_size;
	cmd->chain.out = cmd->buf;
	cmd->chain.out_len = hdr_len + data_out_len;
	cmd->chain.out_split = data_out_len ? hdr_len : 0;
	cmd->chain.in_len = sizeof(struct virtio_scsi_cmd_resp) + sense_size + data_in_len;
	cmd->chain.in_split = data_in_len ? sizeof(struct virtio_scsi_cmd_resp) + sense_size : 0;
	return 0;
}

void umdev_vscsi_cmd_fini(struct umdev_vscsi_cmd *cmd)
{
	free(cmd->buf);
	cmd->buf = NULL;
}

void umdev_vscsi_cmd_result(const struct umdev_vscsi_cmd *cmd, struct umdev_vscsi_cmd_res *res)
{
	memcpy(&res->resp, cmd->chain.in, sizeof(res->resp));
	res->sense = cmd->chain.in + sizeof(res->resp);
	res->data_in = res->sense + cmd->sense_size;
}

int umdev_vscsi_exec(struct umdev_vscsi_drv *d, unsigned q, struct umdev_vscsi_cmd *cmd,
		     struct umdev_vscsi_cmd_res *res, int timeout_ms)
{
	int r = umdev_vscsi_post(d, q, &cmd->chain, false);

	if (r)
		return r;
	r = umdev_vscsi_wait(d, q, &cmd->chain, timeout_ms);
	if (r)
		return r;
	umdev_vscsi_cmd_result(cmd, res);
	return res->resp.response;
}
