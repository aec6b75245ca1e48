/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A userspace virtio-scsi driver for the protocol tests and the benchmarks,
 * over either transport: vhost-user (umdev_vscsi_drv_start() on a caller's
 * vhost-user client) or, through the transport half of virtio_blk_any.h,
 * vhost-user or virtio-pci on vfio-user (umdev_vscsi_drv_open()), so that
 * one test body runs over both. It brings a device up with its controlq,
 * eventq and request queues, and posts chains the way a guest driver does
 * (header and data in separate descriptors), reaping them asynchronously so
 * that task management can act on commands really in flight.
 *
 * Ownership: the caller owns every struct umdev_vscsi_chain and keeps it
 * alive (and unmodified) from post until it is reaped. Guest memory for a
 * chain is carved on its first post and reused by later posts of the same
 * chain, as long as they are not larger. Not thread-safe.
 */
#ifndef UMDEV_CLIENT_VIRTIO_SCSI_DRV_H
#define UMDEV_CLIENT_VIRTIO_SCSI_DRV_H

#include <stdbool.h>
#include <stdint.h>

#include "client/vhost_user_client.h"
#include "client/virtio_blk_any.h"
#include "umdev/proto/virtio_scsi.h"

#define UMDEV_VSCSI_DRV_MAX_QSIZE 1024

/* One descriptor chain: readable bytes, then a writable area. */
struct umdev_vscsi_chain {
	/* Filled by the caller before posting. */
	const void *out; /* device-readable bytes, copied into guest memory */
	uint32_t out_len;
	uint32_t out_split; /* readable part goes in two descriptors at this offset (0: one) */
	uint32_t in_len; /* device-writable bytes (0: none) */
	uint32_t in_split; /* same for the writable part */
	/* Results. */
	bool done;
	uint32_t used_len;
	uint8_t *in; /* driver view of the writable area */
	/* Private. */
	uint64_t out_gpa, in_gpa;
	uint32_t out_cap, in_cap;
};

struct umdev_vscsi_drv {
	struct umdev_vba *b; /* umdev_vscsi_drv_open(): the transport, else NULL */
	struct umdev_vuc *c; /* vhost-user client (&b->vu, or umdev_vscsi_drv_start()'s), else NULL */
	unsigned nreq; /* request queues */
	/*
	 * Benchmarks: leave a writable area as it is when posting. By default
	 * it is filled with 0xcc first so that bytes the device did not write
	 * are recognisable, which costs a memset of the whole area per post.
	 */
	bool no_poison;
	struct umdev_vscsi_chain *by_head[UMDEV_VUC_MAX_QUEUES][UMDEV_VSCSI_DRV_MAX_QSIZE];
};

/**
 * umdev_vscsi_drv_start() - connect @c to @sock and bring up 2 + @nreq
 * queues of @qsize with @features (0: VERSION_1, INOUT, HOTPLUG, CHANGE,
 * EVENT_IDX, INDIRECT_DESC) and one @region_size guest memory region.
 */
int umdev_vscsi_drv_start(struct umdev_vscsi_drv *d, struct umdev_vuc *c, const char *sock,
			  unsigned nreq, uint16_t qsize, uint64_t features,
			  uint64_t region_size) __attribute__((warn_unused_result));

/**
 * umdev_vscsi_drv_open() - as umdev_vscsi_drv_start() over @vfu's transport
 * (virtio-pci on vfio-user, else vhost-user), the device and guest memory
 * held in @b (close with umdev_vba_close()). Over vfio-user, queue q
 * interrupts on MSI-X vector q + 1.
 */
int umdev_vscsi_drv_open(struct umdev_vscsi_drv *d, struct umdev_vba *b, bool vfu, const char *sock,
			 unsigned nreq, uint16_t qsize, uint64_t features,
			 uint64_t region_size) __attribute__((warn_unused_result));

/** umdev_vscsi_post() - post @ch on queue @q; kick unless @no_kick. Returns 0 or -errno. */
int umdev_vscsi_post(struct umdev_vscsi_drv *d, unsigned q, struct umdev_vscsi_chain *ch,
		     bool no_kick) __attribute__((warn_unused_result));

/**
 * umdev_vscsi_reap() - reap completions of @q (waiting up to @timeout_ms for
 * the first); marks each chain done. Returns how many, or -errno (-EPROTO
 * for a head we never posted).
 */
int umdev_vscsi_reap(struct umdev_vscsi_drv *d, unsigned q, int timeout_ms)
	__attribute__((warn_unused_result));

/**
 * umdev_vscsi_poll() - reap what @q's used ring holds now, without waiting
 * or any system call: up to @max finished chains into @out (each marked
 * done). Returns how many, or -errno (-EPROTO for a head we never posted).
 * For benchmarks that repost what finished without scanning their chains.
 */
int umdev_vscsi_poll(struct umdev_vscsi_drv *d, unsigned q, struct umdev_vscsi_chain **out,
		     unsigned max) __attribute__((warn_unused_result));

/** umdev_vscsi_wait() - reap @q until @ch is done or @timeout_ms passed; 0 or -ETIMEDOUT. */
int umdev_vscsi_wait(struct umdev_vscsi_drv *d, unsigned q, struct umdev_vscsi_chain *ch,
		     int timeout_ms) __attribute__((warn_unused_result));

/* ---- building requests ---- */

/** umdev_vscsi_lun() - the 8-byte LUN field for @target:@lun. */
void umdev_vscsi_lun(uint8_t *out, unsigned target, unsigned lun);

/**
 * A SCSI command on a request queue. Build with umdev_vscsi_cmd_init(),
 * post cmd->chain, and after completion read the answer with
 * umdev_vscsi_cmd_result().
 */
struct umdev_vscsi_cmd {
	struct umdev_vscsi_chain chain;
	uint32_t cdb_size, sense_size; /* what the chain was laid out for */
	uint8_t hdr[19 + 256 + 1]; /* request header + cdb, then data-out is appended by init */
	uint8_t *buf; /* header + data-out, owned (umdev_vscsi_cmd_fini) */
};

struct umdev_vscsi_cmd_res {
	struct virtio_scsi_cmd_resp resp;
	const uint8_t *sense; /* resp.sense_len valid bytes */
	const uint8_t *data_in;
};

int umdev_vscsi_cmd_init(struct umdev_vscsi_cmd *cmd, unsigned target, unsigned lun,
			 uint64_t tag, const uint8_t *cdb, unsigned cdb_len, const void *data_out,
			 uint32_t data_out_len, uint32_t data_in_len, uint32_t cdb_size,
			 uint32_t sense_size) __attribute__((warn_unused_result));
void umdev_vscsi_cmd_fini(struct umdev_vscsi_cmd *cmd);
void umdev_vscsi_cmd_result(const struct umdev_vscsi_cmd *cmd, struct umdev_vscsi_cmd_res *res);

/**
 * umdev_vscsi_exec() - synchronous command on request queue @q (absolute
 * queue index, 2 or more): returns the virtio response byte (>= 0) with
 * @res filled, or -errno.
 */
int umdev_vscsi_exec(struct umdev_vscsi_drv *d, unsigned q, struct umdev_vscsi_cmd *cmd,
		     struct umdev_vscsi_cmd_res *res, int timeout_ms)
	__attribute__((warn_unused_result));

#endif
