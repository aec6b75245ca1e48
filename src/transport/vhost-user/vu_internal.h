/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef UMDEV_VU_INTERNAL_H
#define UMDEV_VU_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "umdev/log.h"
#include "umdev/mem.h"
#include "umdev/proto/vhost_user.h"
#include "umdev/vhost_user.h"
#include "umdev/vq.h"
#include "util/sock.h"

/* Ring as the front-end configured it; the device queue runs it when ready. */
struct vu_vring {
	umdev_vq *vq;
	uint32_t num;
	struct vhost_user_vring_addr addr;
	bool addr_set;
	uint16_t base; /* where popping resumes (SET_VRING_BASE, or our last stop) */
	uint16_t used_base; /* packed rings: where the next used entry goes (idx | wrap << 15) */
	int kick_fd; /* -1: none; the ring is polled if started with no fd */
	int call_fd;
	int err_fd;
	bool started; /* kick received and not stopped by GET_VRING_BASE */
	bool enabled; /* SET_VRING_ENABLE (or implicitly, without protocol features) */
	bool running; /* the device queue runs it */
	bool recover; /* next start resubmits from the inflight region */
};

struct vu_conn {
	umdev_vu_server *s;
	int fd;
	char name[48]; /* "blk0" for logs */
	struct umdev_ratelimit rl; /* every line this front-end can cause */
	bool send_failed; /* a reply could not be sent: the reason it is dropped */
	int backend_fd; /* SET_BACKEND_REQ_FD channel (config changes), -1: none */

	/* Receive state: a message may arrive in pieces on the non-blocking socket. */
	struct vhost_user_msg msg;
	size_t got;
	int fds[VHOST_USER_MAX_FDS];
	unsigned nfds;

	uint64_t features; /* acked virtio features */
	uint64_t protocol_features; /* acked protocol features */
	uint8_t status;
	umdev_as *as;
	struct vu_vring *vrings; /* vdev->num_queues entries */

	/* Inflight region shared with the front-end (INFLIGHT_SHMFD). */
	void *inflight;
	uint64_t inflight_size;
	uint16_t inflight_queues;
	uint16_t inflight_qsize;
	int inflight_guard; /* its SIGBUS guard entry (umdev_as_guard_add), -1: none */

	/* Dirty log for live migration (SET_LOG_BASE); rings stop to swap it. */
	umdev_dirty_log *log;
	int log_guard; /* its SIGBUS guard entry, -1: none */
	bool no_dirty_log; /* debug switch UMDEV_DEBUG_NO_DIRTY_LOG: never mark it */

	/* Messages received in the current second (see VU_MAX_MSGS_PER_S). */
	long long rate_window;
	unsigned rate_count;
};

struct umdev_vu_server {
	struct umdev_virtio_dev *vdev;
	umdev_loop *ctl;
	struct umdev_listener listener;
	struct vu_conn *conn;
	struct umdev_ratelimit rl; /* lines about refused connections */
};

/* handlers.c */
#define VU_SOFT_FAIL 1 /* handler failed but the connection stays: ack 1 */
int vu_handle(struct vu_conn *c, struct vhost_user_msg *m, int *fds, unsigned nfds);
int vu_conn_init_state(struct vu_conn *c);
void vu_conn_fini_state(struct vu_conn *c);
void vu_stop_all(struct vu_conn *c);

/* server.c */
int vu_send(struct vu_conn *c, const struct vhost_user_msg *m, const int *fds, unsigned nfds);

#define VU_FRONTEND_FEATURES (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
/* Transport feature bits the device never sees (the ring layout is the vq layer's). */
#define VU_TRANSPORT_FEATURES                                                     \
	(VU_FRONTEND_FEATURES | (1ull << VHOST_F_LOG_ALL) | (1ull << VIRTIO_F_RING_PACKED))
#define VU_PROTOCOL_FEATURES                                                                    \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |       \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG) | (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) | \
	 (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) |                                           \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |                                    \
	 (1ull << VHOST_USER_PROTOCOL_F_STATUS) | (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD))
#define VU_MAX_MEM_SLOTS 256
/*
 * Limits on one front-end. QEMU sends a few messages per ring when a device
 * starts (some hundreds for 256 rings) and a few per memory hot-plug; far
 * more in one second is a flood that would take the control loop from every
 * other device, so the connection is dropped. Replies are never queued
 * beyond the socket's send buffer: vhost-user front-ends wait for each reply
 * before the next request, so a full buffer means the front-end stopped
 * reading, and the connection is dropped rather than waited for.
 */
#define VU_MAX_MSGS_PER_S 20000

#endif
