/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's control plane (src/ctl): the control loop, the pool of
 * data-plane loops, and the set of devices with their transports.
 *
 * Devices are described by a type and key=value options, the same in every
 * front door: `--device virtio-blk,id=blk0,socket=PATH,backend=file:IMG`,
 * a config file (JSON, or one such line per device), and the JSON-RPC 2.0
 * control socket (docs/rpc.md) that umdevctl talks to.
 * Everything here runs on the control thread.
 */
#ifndef UMDEV_CTL_H
#define UMDEV_CTL_H

#include <stddef.h>

#include "umdev/loop.h"

typedef struct umdev_daemon umdev_daemon;

struct umdev_daemon_opts {
	unsigned dp_threads; /* data-plane loops; 0: one per CPU of @cpus, else per online CPU (at most 8) */
	/*
	 * CPUs the data-plane loops are kept on, loop i on cpus[i % ncpus]
	 * (SPDK's core mask, libvirt's iothreadpin); ncpus 0: wherever the
	 * scheduler puts them. The control thread is never pinned. The array
	 * is the caller's and only read during umdev_daemon_new().
	 */
	const unsigned *cpus;
	unsigned ncpus;
	unsigned max_devices; /* 0: 256 */
	/*
	 * Data-plane loops' I/O engine (0: AUTO, io_uring where the kernel
	 * and the seccomp policy allow it). The control loop always runs on
	 * epoll alone: it does no backend I/O.
	 */
	enum umdev_io_engine io_engine;
};

umdev_daemon *umdev_daemon_new(const struct umdev_daemon_opts *o, int *err)
	__attribute__((warn_unused_result));

/**
 * umdev_daemon_free() - stop every device: queues drain their in-flight I/O,
 * backends are flushed, sockets removed; then the loops are joined.
 */
void umdev_daemon_free(umdev_daemon *d);

/**
 * umdev_daemon_add_device() - create a device from "TYPE,key=value,...".
 * On failure nothing is left behind and @msg (of @msglen bytes) says why in
 * words a person can act on.
 */
int umdev_daemon_add_device(umdev_daemon *d, const char *spec, char *msg, size_t msglen)
	__attribute__((warn_unused_result));

/**
 * umdev_daemon_add_device_fd() - like umdev_daemon_add_device() but the
 * device serves the inherited, already-listening socket @listen_fd (the
 * vhost-user back-end convention --fd); the spec then has no socket=.
 * @listen_fd is owned by the device on success and closed on failure.
 */
int umdev_daemon_add_device_fd(umdev_daemon *d, const char *spec, int listen_fd, char *msg,
			       size_t msglen) __attribute__((warn_unused_result));

/**
 * umdev_daemon_load_config() - add every device a config file declares.
 * JSON: {"devices": [{"type": "virtio-blk", "id": "blk0", ...}, ...]}, or
 * plain text: one device spec per line, '#' comments.
 */
int umdev_daemon_load_config(umdev_daemon *d, const char *path, char *msg, size_t msglen)
	__attribute__((warn_unused_result));

unsigned umdev_daemon_num_devices(const umdev_daemon *d);

/**
 * umdev_daemon_rpc_listen() - serve the JSON-RPC control socket at @path
 * (created mode 0600; a stale socket file is replaced, a live daemon's is
 * -EADDRINUSE), or on the inherited listening socket @listen_fd when >= 0
 * (systemd socket activation; then @path is only for messages and may be
 * NULL). The socket file is removed when the daemon is freed, unless
 * another daemon has replaced it meanwhile.
 */
int umdev_daemon_rpc_listen(umdev_daemon *d, const char *path, int listen_fd, char *msg,
			    size_t msglen) __attribute__((warn_unused_result));

/**
 * umdev_rpc_default_path() - the default control socket path into @buf:
 * $XDG_RUNTIME_DIR/umdev/umdevd.sock when XDG_RUNTIME_DIR is set, else
 * /run/umdev/umdevd.sock. -ENAMETOOLONG if it does not fit.
 */
int umdev_rpc_default_path(char *buf, size_t len) __attribute__((warn_unused_result));

/**
 * umdev_daemon_run() - serve on the calling thread until SIGTERM/SIGINT
 * (the caller must have blocked them in every thread; see daemon/main.c)
 * or umdev_daemon_stop(). On a signal, devices are drained and flushed.
 */
int umdev_daemon_run(umdev_daemon *d);

#endif
