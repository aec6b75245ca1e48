/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user front-end ("client") and a userspace virtio-blk driver on top.
 *
 * Concepts:
 * - A struct umdev_vuc is one connection to a vhost-user back-end over a
 *   UNIX socket. It plays QEMU's part: negotiates features, shares guest
 *   memory, sets up virtqueues, and drives them with umdev_vqd (virtq_drv.h).
 * - Guest memory is a set of regions, each its own memfd. The driver sees
 *   all of them through ONE contiguous host mapping (mem.base), laid out by
 *   guest physical address. The back-end is told a different, fake user
 *   address (uva) for each region, with gaps between regions, so that a
 *   back-end that confuses uva, gpa and its own mapping fails loudly rather
 *   than by luck. Ring addresses sent in SET_VRING_ADDR are such uvas.
 * - The raw API (umdev_vuc_send/recv) lets negative tests put anything on
 *   the wire.
 * - On top, umdev_vblk_* builds virtio-blk requests (header, data, status)
 *   at any queue depth and reaps their completions by polling the used ring
 *   or waiting on the call eventfd.
 *
 * Ownership: the caller allocates struct umdev_vuc (often on the stack),
 * umdev_vuc_connect() fills it, umdev_vuc_close() frees everything it holds
 * (fds, mappings). Nothing here is thread-safe: one thread per connection.
 * Calls that talk to the back-end block up to c->timeout_ms.
 */
#ifndef UMDEV_CLIENT_VHOST_USER_CLIENT_H
#define UMDEV_CLIENT_VHOST_USER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/virtq_drv.h"
#include "umdev/proto/vhost_user.h"
#include "umdev/proto/virtio_blk.h"

#define UMDEV_VUC_MAX_QUEUES 16
#define UMDEV_VUC_MAX_REGIONS VHOST_USER_MAX_MEM_REGIONS
#define UMDEV_VUC_WUR __attribute__((warn_unused_result))

/* Where guest memory starts and where the fake user addresses live. */
#define UMDEV_VUC_GPA_BASE 0x100000000ull
#define UMDEV_VUC_UVA_BASE 0x5a0000000000ull
/* Gap between consecutive regions' fake user addresses. */
#define UMDEV_VUC_UVA_GAP 0x40000000ull

struct umdev_vuc_region {
	int fd; /* memfd, owned */
	uint64_t gpa;
	uint64_t size;
	uint64_t uva; /* fake address the back-end is told */
	uint64_t fd_offset; /* region starts this far into fd (mmap_offset) */
	bool in_table; /* currently known to the back-end */
	uint64_t alloc_next; /* bump allocator, offset inside the region */
};

struct umdev_vuc_mem {
	uint8_t *base; /* driver's view: gpa_base .. gpa_base + span */
	uint64_t gpa_base;
	uint64_t span;
	unsigned nregions;
	struct umdev_vuc_region regions[UMDEV_VUC_MAX_REGIONS];
};

/* Per-request bookkeeping the blk layer keeps per ring slot. */
struct umdev_vblk_slot {
	uint64_t hdr_gpa; /* struct virtio_blk_outhdr, 16 bytes */
	uint64_t status_gpa; /* 1 byte */
	uint64_t cookie;
	bool busy;
};

struct umdev_vuc_vq {
	struct umdev_vqd drv;
	uint16_t size;
	uint64_t ring_gpa;
	int kick_fd; /* eventfd we write to notify the back-end */
	int call_fd; /* eventfd the back-end writes on completion */
	bool ready; /* rings laid out (umdev_vuc_vq_init) */
	bool started; /* sent to the back-end and enabled */
	bool no_interrupt; /* poll mode: VIRTQ_AVAIL_F_NO_INTERRUPT set */
	struct umdev_vblk_slot *slots; /* size entries: header/status pool */
	uint16_t *free_slots; /* stack of free slot numbers */
	unsigned nfree_slots;
	uint16_t *head_slot; /* ring head -> slot number */
	uint64_t slot_area_gpa;
	unsigned inflight; /* requests posted and not yet reaped */
};

struct umdev_vuc {
	int sock;
	int timeout_ms; /* for every reply we wait for; default 5000 */
	uint64_t features; /* what the back-end offers */
	uint64_t acked_features; /* what we sent in SET_FEATURES */
	uint64_t protocol_features; /* offered */
	uint64_t acked_protocol_features;
	bool use_reply_ack; /* set NEED_REPLY on requests without a reply */
	uint64_t want_features; /* umdev_vuc_start_blk(): 0 = default set */
	struct umdev_vuc_mem mem;
	unsigned nqueues;
	struct umdev_vuc_vq vqs[UMDEV_VUC_MAX_QUEUES];
	/* inflight tracking buffer from GET_INFLIGHT_FD, or -1 / NULL */
	int inflight_fd;
	void *inflight_map;
	struct vhost_user_inflight inflight;
};

/* ---- connection and raw messages ---------------------------------------- */

/**
 * umdev_vuc_connect() - connect to the back-end at @path, retrying for up
 * to @wait_ms while the socket does not exist or refuses (the daemon may
 * still be starting). Initialises all of @c. Blocks.
 * Return: 0 or -errno.
 */
int umdev_vuc_connect(struct umdev_vuc *c, const char *path, int wait_ms) UMDEV_VUC_WUR;

/**
 * umdev_vuc_reconnect() - drop the connection and open a new one to @path,
 * keeping guest memory, rings, eventfds and the inflight buffer, as QEMU
 * does when a back-end restarts. Negotiation and ring setup must be redone.
 */
int umdev_vuc_reconnect(struct umdev_vuc *c, const char *path, int wait_ms) UMDEV_VUC_WUR;

/**
 * umdev_vuc_attach() - use @fd, an already-connected socket (e.g. one end of
 * a socketpair whose other end a back-end was started with), as the
 * connection. The client owns @fd afterwards.
 */
int umdev_vuc_attach(struct umdev_vuc *c, int fd) UMDEV_VUC_WUR;

/**
 * umdev_vuc_close() - close the socket and release every fd and mapping
 * @c holds (guest memory, eventfds, inflight buffer). Safe on a @c that
 * umdev_vuc_connect() failed on and on one already closed.
 */
void umdev_vuc_close(struct umdev_vuc *c);

/**
 * umdev_vuc_send_raw() - write @len bytes from @buf as one sendmsg with
 * @nfds fds as SCM_RIGHTS. No validation: for hostile-input tests.
 * Return: 0 or -errno (-EPIPE once the back-end hung up).
 */
int umdev_vuc_send_raw(struct umdev_vuc *c, const void *buf, size_t len, const int *fds,
		       unsigned nfds) UMDEV_VUC_WUR;

/**
 * umdev_vuc_send() - send request @req with @flags (version bits are added)
 * and @size payload bytes from @payload, plus @nfds fds.
 */
int umdev_vuc_send(struct umdev_vuc *c, uint32_t req, uint32_t flags, const void *payload,
		   uint32_t size, const int *fds, unsigned nfds) UMDEV_VUC_WUR;

/**
 * umdev_vuc_recv() - receive one message into @msg, waiting up to
 * c->timeout_ms. fds that come with it are stored in @fds (up to *@nfds,
 * the rest closed) and *@nfds is set to how many; pass @fds NULL to close
 * them all. Payloads larger than the union are refused with -EMSGSIZE.
 * Return: 0, -ETIMEDOUT, -ECONNRESET on EOF, or -errno.
 */
int umdev_vuc_recv(struct umdev_vuc *c, struct vhost_user_msg *msg, int *fds,
		   unsigned *nfds) UMDEV_VUC_WUR;

/**
 * umdev_vuc_wait_reply() - receive a reply to @req and check its header:
 * reply flag set, same request, at most @max_size payload bytes. The
 * payload size is returned through @size if not NULL. -EPROTO on mismatch.
 */
int umdev_vuc_wait_reply(struct umdev_vuc *c, uint32_t req, struct vhost_user_msg *reply,
			 uint32_t max_size, uint32_t *size, int *fds,
			 unsigned *nfds) UMDEV_VUC_WUR;

/**
 * umdev_vuc_request() - send a request that has no reply of its own; when
 * REPLY_ACK is in use, ask for and check the ack. Return: 0, -EIO if the
 * back-end acked with a non-zero value, or another -errno.
 */
int umdev_vuc_request(struct umdev_vuc *c, uint32_t req, const void *payload, uint32_t size,
		      const int *fds, unsigned nfds) UMDEV_VUC_WUR;

/** umdev_vuc_get_u64() - send @req with no payload and read a u64 reply. */
int umdev_vuc_get_u64(struct umdev_vuc *c, uint32_t req, uint64_t *val) UMDEV_VUC_WUR;

/**
 * umdev_vuc_is_closed() - has the back-end closed the connection? Waits up
 * to @wait_ms for EOF, discarding anything it sends meanwhile.
 * Return: 1 if closed, 0 if still open.
 */
int umdev_vuc_is_closed(struct umdev_vuc *c, int wait_ms);

/* ---- negotiation --------------------------------------------------------- */

/**
 * umdev_vuc_negotiate() - SET_OWNER, GET_FEATURES, and if offered,
 * GET/SET_PROTOCOL_FEATURES with (@want_protocol & offered). Records what
 * was offered and acked in @c. REPLY_ACK, once acked, is used from then on.
 * SET_FEATURES is separate (umdev_vuc_set_features) because QEMU sends it
 * only when starting the device.
 */
int umdev_vuc_negotiate(struct umdev_vuc *c, uint64_t want_protocol) UMDEV_VUC_WUR;

/**
 * umdev_vuc_set_features() - SET_FEATURES with @want & offered, plus
 * PROTOCOL_FEATURES if offered. Returns 0 or -errno.
 */
int umdev_vuc_set_features(struct umdev_vuc *c, uint64_t want) UMDEV_VUC_WUR;

/** umdev_vuc_get_config() - GET_CONFIG of @size bytes at @offset into @buf. */
int umdev_vuc_get_config(struct umdev_vuc *c, uint32_t offset, void *buf,
			 uint32_t size) UMDEV_VUC_WUR;

/* ---- guest memory -------------------------------------------------------- */

/**
 * umdev_vuc_mem_create() - create @n regions of @sizes[i] bytes (multiples
 * of 4096), contiguous in guest physical space from UMDEV_VUC_GPA_BASE,
 * each a memfd whose region data starts @fd_offset bytes into the file.
 * Maps them into one contiguous driver view. Nothing is sent.
 */
int umdev_vuc_mem_create(struct umdev_vuc *c, const uint64_t *sizes, unsigned n,
			 uint64_t fd_offset) UMDEV_VUC_WUR;

/**
 * umdev_vuc_set_mem_table() - SET_MEM_TABLE with the regions whose bit is
 * set in @mask (bit i = region i); marks exactly those in_table.
 */
int umdev_vuc_set_mem_table(struct umdev_vuc *c, uint32_t mask) UMDEV_VUC_WUR;

/** umdev_vuc_add_mem_reg() / rem_mem_reg() - ADD_MEM_REG / REM_MEM_REG. */
int umdev_vuc_add_mem_reg(struct umdev_vuc *c, unsigned region) UMDEV_VUC_WUR;
int umdev_vuc_rem_mem_reg(struct umdev_vuc *c, unsigned region) UMDEV_VUC_WUR;

/** umdev_vuc_region_desc() - the wire description of @region. */
void umdev_vuc_region_desc(const struct umdev_vuc *c, unsigned region,
			   struct vhost_user_mem_region *out);

/**
 * umdev_vuc_alloc() - carve @size bytes aligned to @align (power of two)
 * out of @region. Return: guest address, or 0 when the region is full.
 * Memory is never freed before umdev_vuc_close().
 */
uint64_t umdev_vuc_alloc(struct umdev_vuc *c, unsigned region, uint64_t size, uint64_t align);

/** umdev_vuc_gpa_ptr() - driver-view pointer for @gpa, NULL if outside. */
void *umdev_vuc_gpa_ptr(struct umdev_vuc *c, uint64_t gpa, uint64_t len);

/** umdev_vuc_gpa_to_uva() - fake user address for @gpa, 0 if unmapped. */
uint64_t umdev_vuc_gpa_to_uva(const struct umdev_vuc *c, uint64_t gpa);

/* ---- virtqueues ---------------------------------------------------------- */

/**
 * umdev_vuc_vq_init() - lay out queue @idx with @size entries in region 0
 * and create its kick/call eventfds. With @with_blk_slots, also allocate
 * the per-slot virtio-blk header/status area. Nothing is sent.
 */
int umdev_vuc_vq_init(struct umdev_vuc *c, unsigned idx, uint16_t size,
		      bool with_blk_slots) UMDEV_VUC_WUR;

/**
 * umdev_vuc_vq_start() - SET_VRING_NUM, SET_VRING_BASE (@base), SET_VRING_ADDR,
 * SET_VRING_KICK, SET_VRING_CALL, and SET_VRING_ENABLE 1 when protocol
 * features are negotiated. The driver's ring state is left as it is, so a
 * restart after umdev_vuc_vq_stop() passes the base that call returned (a
 * first start passes 0). With vq->no_interrupt set beforehand, the ring
 * asks for no interrupts (poll mode).
 */
int umdev_vuc_vq_start(struct umdev_vuc *c, unsigned idx, uint16_t base) UMDEV_VUC_WUR;

/**
 * umdev_vuc_vq_stop() - GET_VRING_BASE for @idx; *@base gets the back-end's
 * next avail index. The ring is stopped in the back-end after this.
 */
int umdev_vuc_vq_stop(struct umdev_vuc *c, unsigned idx, uint16_t *base) UMDEV_VUC_WUR;

/** umdev_vuc_vq_enable() - SET_VRING_ENABLE @idx to @on. */
int umdev_vuc_vq_enable(struct umdev_vuc *c, unsigned idx, bool on) UMDEV_VUC_WUR;

/** umdev_vuc_kick() - write the kick eventfd of @idx (unconditionally). */
int umdev_vuc_kick(struct umdev_vuc *c, unsigned idx) UMDEV_VUC_WUR;

/**
 * umdev_vuc_wait_call() - wait up to @timeout_ms for the call eventfd of
 * @idx and drain it. Return: 1 if signalled, 0 on timeout, -errno.
 */
int umdev_vuc_wait_call(struct umdev_vuc *c, unsigned idx, int timeout_ms);

/**
 * umdev_vuc_start_blk() - the usual bring-up in one call: negotiate (with
 * MQ, REPLY_ACK, CONFIG, INFLIGHT_SHMFD when offered, minus @proto_mask_off),
 * SET_FEATURES (VERSION_1 and blk features offered), guest memory of @nregions
 * regions of @region_size, SET_MEM_TABLE of all, and @nqueues queues of
 * @qsize started. Used by tests and the bench.
 */
int umdev_vuc_start_blk(struct umdev_vuc *c, unsigned nqueues, uint16_t qsize,
			unsigned nregions, uint64_t region_size,
			uint64_t proto_mask_off) UMDEV_VUC_WUR;

/* ---- live migration: dirty logging --------------------------------------- */

/**
 * umdev_vuc_set_log_base() - SET_LOG_BASE with @nfds (0 or 1) fds at @fd and
 * the log description {@size, @offset}, as QEMU sends it with LOG_SHMFD,
 * then wait for the back-end's reply (a message of the same type). Returns
 * 0 if it replied 0, -EIO if it replied non-zero, another -errno on a
 * transport error. @fd stays the caller's.
 */
int umdev_vuc_set_log_base(struct umdev_vuc *c, int fd, unsigned nfds, uint64_t size,
			   uint64_t offset) UMDEV_VUC_WUR;

/**
 * umdev_vuc_vq_set_addr() - SET_VRING_ADDR for a laid-out ring @idx with
 * @flags (VHOST_VRING_F_LOG bit) and @log_gpa as its log_guest_addr, as
 * QEMU re-sends it on a running ring to switch used-ring logging.
 */
int umdev_vuc_vq_set_addr(struct umdev_vuc *c, unsigned idx, uint32_t flags,
			  uint64_t log_gpa) UMDEV_VUC_WUR;

/* ---- inflight I/O tracking ---------------------------------------------- */

/**
 * umdev_vuc_get_inflight_fd() - GET_INFLIGHT_FD for @nq queues of @qsize;
 * keeps the fd and maps it (c->inflight_fd, c->inflight_map, c->inflight).
 */
int umdev_vuc_get_inflight_fd(struct umdev_vuc *c, uint16_t nq, uint16_t qsize) UMDEV_VUC_WUR;

/** umdev_vuc_set_inflight_fd() - SET_INFLIGHT_FD with @fd and @desc. */
int umdev_vuc_set_inflight_fd(struct umdev_vuc *c, int fd,
			      const struct vhost_user_inflight *desc) UMDEV_VUC_WUR;

/* ---- virtio-blk driver --------------------------------------------------- */

struct umdev_vblk_cpl {
	uint64_t cookie;
	uint8_t status; /* VIRTIO_BLK_S_*, or 0xff if the status byte is unset */
	uint32_t len; /* used.len the device reported */
};

/**
 * umdev_vblk_submit() - post one request on queue @q: a readable header
 * {type, sector}, then @n data buffers, then a writable status byte. The
 * data buffers' write flags are the caller's (IN/GET_ID: device writes).
 * Kicks if the device wants it, unless @no_kick. Return: 0, -ENOSPC when the
 * ring is full, or -errno.
 */
int umdev_vblk_submit(struct umdev_vuc *c, unsigned q, uint32_t type, uint64_t sector,
		      const struct umdev_vqd_buf *data, unsigned n, uint64_t cookie,
		      bool no_kick) UMDEV_VUC_WUR;

/**
 * umdev_vblk_submit_indirect() - like umdev_vblk_submit() (always kicks) but
 * the chain goes in an indirect table at guest address @table_gpa (room for
 * n + 2 descriptors, caller-owned until the request completes).
 */
int umdev_vblk_submit_indirect(struct umdev_vuc *c, unsigned q, uint32_t type, uint64_t sector,
			       const struct umdev_vqd_buf *data, unsigned n, uint64_t cookie,
			       uint64_t table_gpa) UMDEV_VUC_WUR;

/** umdev_vblk_kick() - kick @q if the device asks for it (batched submit). */
int umdev_vblk_kick(struct umdev_vuc *c, unsigned q) UMDEV_VUC_WUR;

/**
 * umdev_vblk_poll() - reap up to @max completions from @q's used ring
 * without waiting. Return: how many, or -EPROTO if the device returned a
 * head we never posted.
 */
int umdev_vblk_poll(struct umdev_vuc *c, unsigned q, struct umdev_vblk_cpl *cpl,
		    unsigned max) UMDEV_VUC_WUR;

/**
 * umdev_vblk_wait() - like umdev_vblk_poll() but waits up to @timeout_ms for
 * at least one completion, sleeping on the call eventfd between polls.
 * Return: how many (0 on timeout) or -errno.
 */
int umdev_vblk_wait(struct umdev_vuc *c, unsigned q, struct umdev_vblk_cpl *cpl,
		    unsigned max, int timeout_ms) UMDEV_VUC_WUR;

/**
 * umdev_vblk_io() - synchronous single request: submit, wait, return the
 * status byte (>= 0) or -errno (-ETIMEDOUT if no completion came).
 */
int umdev_vblk_io(struct umdev_vuc *c, unsigned q, uint32_t type, uint64_t sector,
		  const struct umdev_vqd_buf *data, unsigned n, int timeout_ms) UMDEV_VUC_WUR;

#endif
