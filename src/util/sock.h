/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef UMDEV_UTIL_SOCK_H
#define UMDEV_UTIL_SOCK_H

/**
 * umdev_sock_listen() - a non-blocking, close-on-exec UNIX stream socket
 * listening on @path. A socket file nobody listens on (left by a crashed
 * server) is replaced; a live server's is refused with -EADDRINUSE, any
 * other kind of file with -EEXIST. On success *@out is the socket (the
 * caller owns it and unlinks @path when done).
 */
int umdev_sock_listen(const char *path, int *out) __attribute__((warn_unused_result));

#endif
