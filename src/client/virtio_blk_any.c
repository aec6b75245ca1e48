/* SPDX-License-Identifier: BSD-3-Clause */
/* A virtio-blk driver over vhost-user or virtio-pci on vfio-user. See virtio_blk_any.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/virtio_blk_any.h"
#include "umdev/proto/virtio_blk.h"

#define VBA_IOVA 0x100000000ull
#define SLOT 32u /* header (16 bytes) then the status byte */

static int vfu_open(struct umdev_vba *b, const char *sock, uint64_t mem_size)
{
	uint64_t ring = umdev_vqd_ring_bytes(b->qsize);
	uint64_t at = VBA_IOVA;
	uint64_t want = b->want_features ? b->want_features : ~0ull;
	int r;

	if (b->no_interrupts)
		want &= ~(1ull << VIRTIO_RING_F_EVENT_IDX);
	if (b->nq > UMDEV_VPD_MAX_QUEUES)
		return -EINVAL;
	if ((r = umdev_vfuc_connect(&b->vc, sock, 3000)) < 0 ||
	    (r = umdev_vfuc_version(&b->vc, NULL)) < 0 ||
	    (r = umdev_vfuc_add_mem(&b->vc, VBA_IOVA, mem_size, true,
				    VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE)) < 0 ||
	    (r = umdev_vpd_probe(&b->vpd, &b->vc)) < 0 ||
	    (r = umdev_vpd_negotiate(&b->vpd, want)) < 0 ||
	    (!b->no_interrupts && (r = umdev_vpd_enable_msix(&b->vpd, b->nq + 1)) < 0))
		return r;
	for (unsigned q = 0; q < b->nq; q++) {
		r = umdev_vpd_queue_setup(&b->vpd, q, b->qsize, at,
					  b->no_interrupts ? VIRTIO_MSI_NO_VECTOR : (uint16_t)(q + 1));
		if (r < 0)
			return r;
		if (b->no_interrupts)
			b->vpd.q[q].avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
		at += (ring + 4095) & ~4095ull;
		b->slots_gpa[q] = at;
		at += ((uint64_t)b->qsize * SLOT + 4095) & ~4095ull;
		b->free_slots[q] = calloc(b->qsize, sizeof(uint16_t));
		b->slot_of[q] = calloc(b->qsize, sizeof(uint16_t));
		b->cookie_of[q] = calloc(b->qsize, sizeof(uint64_t));
		if (!b->free_slots[q] || !b->slot_of[q] || !b->cookie_of[q])
			return -ENOMEM;
		for (unsigned i = 0; i < b->qsize; i++)
			b->free_slots[q][i] = (uint16_t)i;
		b->nfree[q] = b->qsize;
	}
	if (at > VBA_IOVA + mem_size)
		return -ENOMEM;
	b->next_alloc = at;
	b->mem_end = VBA_IOVA + mem_size;
	return umdev_vpd_driver_ok(&b->vpd);
}

int umdev_vba_open(struct umdev_vba *b, bool vfu, const char *sock, unsigned nq, uint16_t qsize,
		   uint64_t mem_size)
{
	bool no_irq = b->no_interrupts;
	uint64_t want = b->want_features;
	int r;

	memset(b, 0, sizeof(*b));
	/* Nothing open yet: umdev_vba_close() after a failed open closes nothing else. */
	b->vc.fd = -1;
	b->vu.sock = -1;
	for (unsigned i = 0; i < UMDEV_VPD_MAX_VECTORS; i++)
		b->vpd.irq_fd[i] = -1;
	b->no_interrupts = no_irq;
	b->want_features = want;
	b->vfu = vfu;
	b->nq = nq;
	b->qsize = qsize;
	if (vfu)
		return vfu_open(b, sock, mem_size);
	r = umdev_vuc_connect(&b->vu, sock, 3000);
	b->vu.want_features = want; /* connect cleared it */
	for (unsigned q = 0; r == 0 && q < nq && q < UMDEV_VUC_MAX_QUEUES; q++)
		b->vu.vqs[q].no_interrupt = no_irq;
	if (r == 0)
		r = umdev_vuc_start_blk(&b->vu, nq, qsize, 1, mem_size, 0);
	return r;
}

void umdev_vba_close(struct umdev_vba *b)
{
	/* Safe after a failed umdev_vba_open(), not on a struct never opened. */
	if (!b->vfu) {
		umdev_vuc_close(&b->vu);
		return;
	}
	umdev_vpd_fini(&b->vpd);
	umdev_vfuc_close(&b->vc);
	for (unsigned q = 0; q < UMDEV_VPD_MAX_QUEUES; q++) {
		free(b->free_slots[q]);
		free(b->slot_of[q]);
		free(b->cookie_of[q]);
	}
}

uint64_t umdev_vba_alloc(struct umdev_vba *b, uint64_t size, uint64_t align)
{
	uint64_t at;

	if (!b->vfu)
		return umdev_vuc_alloc(&b->vu, 0, size, align);
	at = (b->next_alloc + align - 1) & ~(align - 1);
	if (at + size > b->mem_end)
		return 0;
	b->next_alloc = at + size;
	return at;
}

void *umdev_vba_ptr(struct umdev_vba *b, uint64_t gpa, uint64_t len)
{
	return b->vfu ? umdev_vfuc_mem_ptr(&b->vc, gpa, len) : umdev_vuc_gpa_ptr(&b->vu, gpa, len);
}

int umdev_vba_config(struct umdev_vba *b, uint32_t off, void *buf, uint32_t len)
{
	if (!b->vfu)
		return umdev_vuc_get_config(&b->vu, off, buf, len);
	if (off > b->vpd.device.length || len > b->vpd.device.length - off)
		return -EINVAL;
	return umdev_vfuc_region_read(&b->vc, b->vpd.device.bar, b->vpd.device.offset + off, buf,
				      len);
}

int umdev_vba_config_write(struct umdev_vba *b, uint32_t off, const void *buf, uint32_t len)
{
	struct vhost_user_config cfg = { .offset = off, .size = len };

	if (b->vfu) {
		if (off > b->vpd.device.length || len > b->vpd.device.length - off)
			return -EINVAL;
		return umdev_vfuc_region_write(&b->vc, b->vpd.device.bar, b->vpd.device.offset + off,
					       buf, len);
	}
	if (len > sizeof(cfg.payload))
		return -EINVAL;
	memcpy(cfg.payload, buf, len);
	return umdev_vuc_request(&b->vu, VHOST_USER_SET_CONFIG, &cfg,
				 VHOST_USER_CONFIG_HDR_SIZE + len, NULL, 0);
}

uint64_t umdev_vba_features(struct umdev_vba *b)
{
	return b->vfu ? b->vpd.features : b->vu.acked_features;
}

struct umdev_vqd *umdev_vba_vq(struct umdev_vba *b, unsigned q)
{
	return b->vfu ? &b->vpd.q[q] : &b->vu.vqs[q].drv;
}

int umdev_vba_kick(struct umdev_vba *b, unsigned q)
{
	return b->vfu ? umdev_vpd_kick(&b->vpd, q) : umdev_vuc_kick(&b->vu, q);
}

void umdev_vba_wait_irq(struct umdev_vba *b, unsigned q, int timeout_ms)
{
	if (b->vfu)
		(void)umdev_vpd_wait_irq(&b->vpd, q + 1, timeout_ms);
	else
		(void)umdev_vuc_wait_call(&b->vu, q, timeout_ms);
}

int umdev_vba_submit(struct umdev_vba *b, unsigned q, uint32_t type, uint64_t sector,
		     const struct umdev_vqd_buf *data, unsigned n, uint64_t cookie, bool no_kick)
{
	struct umdev_vqd_buf bufs[UMDEV_VPD_MAX_QUEUES + 2];
	struct virtio_blk_outhdr *h;
	uint64_t slot_gpa;
	uint16_t slot;
	int head;

	if (!b->vfu)
		return umdev_vblk_submit(&b->vu, q, type, sector, data, n, cookie, no_kick);
	if (q >= b->nq || n > UMDEV_VPD_MAX_QUEUES)
		return -EINVAL;
	if (!b->nfree[q])
		return -ENOSPC;
	slot = b->free_slots[q][b->nfree[q] - 1];
	slot_gpa = b->slots_gpa[q] + (uint64_t)slot * SLOT;
	h = umdev_vfuc_mem_ptr(&b->vc, slot_gpa, SLOT);
	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	((uint8_t *)h)[16] = 0xff;
	bufs[0] = (struct umdev_vqd_buf){ slot_gpa, sizeof(*h), false };
	if (n) /* a flush has no data (and may pass data == NULL) */
		memcpy(bufs + 1, data, n * sizeof(*data));
	bufs[n + 1] = (struct umdev_vqd_buf){ slot_gpa + 16, 1, true };
	head = umdev_vqd_add(&b->vpd.q[q], bufs, n + 2, 0);
	if (head < 0)
		return head;
	b->nfree[q]--;
	b->slot_of[q][head] = slot;
	b->cookie_of[q][head] = cookie;
	if (!no_kick && umdev_vqd_kick_needed(&b->vpd.q[q]))
		return umdev_vpd_kick(&b->vpd, q);
	return 0;
}

int umdev_vba_poll(struct umdev_vba *b, unsigned q, struct umdev_vblk_cpl *cpl, unsigned max)
{
	unsigned n = 0;
	uint16_t head;
	uint32_t len;
	int r = 0;

	if (!b->vfu)
		return umdev_vblk_poll(&b->vu, q, cpl, max);
	if (q >= b->nq)
		return -EINVAL;
	while (n < max && (r = umdev_vqd_get_used(&b->vpd.q[q], &head, &len)) > 0) {
		uint16_t slot = b->slot_of[q][head];

		cpl[n].cookie = b->cookie_of[q][head];
		cpl[n].status = *(uint8_t *)umdev_vfuc_mem_ptr(
			&b->vc, b->slots_gpa[q] + (uint64_t)slot * SLOT + 16, 1);
		cpl[n].len = len;
		b->free_slots[q][b->nfree[q]++] = slot;
		n++;
	}
	return n ? (int)n : r < 0 ? r : 0;
}

int umdev_vba_wait(struct umdev_vba *b, unsigned q, struct umdev_vblk_cpl *cpl, unsigned max,
		   int timeout_ms)
{
	int n;

	if (!b->vfu)
		return umdev_vblk_wait(&b->vu, q, cpl, max, timeout_ms);
	/* Sleep on the queue's MSI-X vector, then reap (the interrupt may precede our look). */
	for (int waited = 0;; waited += 10) {
		n = umdev_vba_poll(b, q, cpl, max);
		if (n != 0 || waited >= timeout_ms)
			return n;
		umdev_vba_wait_irq(b, q, 10);
	}
}
