/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user back-end (src/transport/vhost-user): serves one virtio device
 * on one UNIX socket, one front-end (QEMU) connection at a time.
 *
 * Threads: everything here runs on the control loop given at creation. The
 * device's queues run on its data-plane loops; the server starts, stops and
 * quiesces them through include/umdev/virtio.h.
 */
#ifndef UMDEV_VHOST_USER_H
#define UMDEV_VHOST_USER_H

#include <stdbool.h>

#include "umdev/loop.h"
#include "umdev/virtio.h"

typedef struct umdev_vu_server umdev_vu_server;

/**
 * umdev_vu_server_new() - listen on @path (created; an existing socket file
 * that nobody listens on is replaced, a live one is -EADDRINUSE), or on the
 * already-listening @listen_fd when >= 0 (then @path may be NULL; the server
 * owns the fd once it is created, and leaves it to the caller on failure).
 * @vdev is borrowed and must outlive the server.
 */
umdev_vu_server *umdev_vu_server_new(struct umdev_virtio_dev *vdev, umdev_loop *ctl,
				     const char *path, int listen_fd, int *err)
	__attribute__((warn_unused_result));

/**
 * umdev_vu_server_free() - stop every queue (waiting for in-flight I/O),
 * drop the connection, close and unlink the socket. Control thread.
 */
void umdev_vu_server_free(umdev_vu_server *s);

/** umdev_vu_server_connected() - a front-end is connected. */
bool umdev_vu_server_connected(const umdev_vu_server *s);

/**
 * umdev_vu_server_quiesce() - stop every running queue so in-flight I/O
 * completes (used on SIGTERM before flushing), then drop the connection.
 */
void umdev_vu_server_quiesce(umdev_vu_server *s);

/* Exposed for unit tests: payload/fd validation of one message header. */
int umdev_vu_msg_check(unsigned request, unsigned size, unsigned nfds, uint64_t u64,
		       const char **why) __attribute__((warn_unused_result));
const char *umdev_vu_request_name(unsigned request);

#endif
