/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef UMDEV_UTIL_SOCK_H
#define UMDEV_UTIL_SOCK_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "umdev/loop.h"

/**
 * umdev_sock_listen() - a non-blocking, close-on-exec UNIX stream socket
 * listening on @path. A socket file nobody listens on (left by a crashed
 * server) is replaced; a live server's is refused with -EADDRINUSE, any
 * other kind of file with -EEXIST. On success *@out is the socket (the
 * caller owns it and unlinks @path when done).
 */
int umdev_sock_listen(const char *path, int *out) __attribute__((warn_unused_result));

/**
 * umdev_sock_listen_mode() - the same, the file created with @mode from the
 * start (0: as the umask makes it; no moment anyone else could connect) and
 * @backlog.
 */
int umdev_sock_listen_mode(const char *path, mode_t mode, int backlog, int *out)
	__attribute__((warn_unused_result));

/**
 * umdev_msg_attach_fds() - attach @nfds fds (SCM_RIGHTS) to @mh, using
 * @cbuf of @cbuf_size bytes for the control message. Nothing is attached
 * when @nfds is 0; -EINVAL when @cbuf cannot hold them. The caller keeps
 * the fds; the kernel duplicates them into the receiver on sendmsg().
 */
int umdev_msg_attach_fds(struct msghdr *mh, void *cbuf, size_t cbuf_size, const int *fds,
			 unsigned nfds) __attribute__((warn_unused_result));

/* A transport's listening socket, registered on its control loop. */
struct umdev_listener {
	int fd; /* -1: none */
	char *path; /* bound by us (unlinked on close), NULL for an inherited fd */
};

/**
 * umdev_listener_open() - listen on @path, or on the already-listening @fd
 * when >= 0, and watch it on @loop with @cb. An inherited @fd is owned by
 * the listener on success and left to the caller on failure; on failure
 * nothing is left behind (no socket file, no registration).
 */
int umdev_listener_open(struct umdev_listener *l, umdev_loop *loop, const char *path, int fd,
			umdev_loop_fd_cb cb, void *opaque) __attribute__((warn_unused_result));

/** umdev_listener_close() - stop watching, close, remove the socket file. */
void umdev_listener_close(struct umdev_listener *l, umdev_loop *loop);

#endif
