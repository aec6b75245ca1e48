/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio-user server (src/transport/vfio-user): serves one PCI function
 * (include/umdev/pci.h) on one UNIX socket, one client at a time, following
 * QEMU's docs/interop/vfio-user.rst.
 *
 * - Guest memory: DMA_MAP with an fd becomes a region of an address space
 *   (include/umdev/mem.h) at its IOVA; without an fd the range is reached
 *   with DMA_READ/DMA_WRITE messages to the client. DMA_UNMAP asks the
 *   device to quiesce the range before it is removed and before the reply.
 * - A client that disconnects loses its DMA mappings and eventfds; the
 *   device state is kept for the next one.
 * - Threads: everything runs on the control loop given at creation. Socket
 *   framing is incremental on a non-blocking socket; a message is at most
 *   the header plus a small fixed part plus max_data_xfer_size bytes.
 */
#ifndef UMDEV_VFIO_USER_H
#define UMDEV_VFIO_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/loop.h"
#include "umdev/pci.h"

typedef struct umdev_vfu_server umdev_vfu_server;

/* What we advertise in VERSION. */
#define UMDEV_VFU_MAX_DATA_XFER (1u << 20)
#define UMDEV_VFU_MAX_MSG_FDS 16
/*
 * DMA windows per connection. Behind a vIOMMU QEMU maps every 4 KiB page
 * of a request as its own window: 4096 of them are 16 MiB in flight. Each
 * fd-backed window is one mmap of ours (the process's vm.max_map_count,
 * 65530 by default, is shared by every connection).
 */
#define UMDEV_VFU_MAX_DMA_MAPS 4096

/**
 * umdev_vfu_server_new() - listen on @path (an existing socket file nobody
 * listens on is replaced; a live one is -EADDRINUSE), or on the listening
 * @listen_fd when >= 0 (owned by the server once created, the caller's on
 * failure; @path may be NULL). @pci is
 * borrowed and must outlive the server. @ctl may be NULL for a server that
 * is only fed with umdev_vfu_server_feed() (fuzzing, unit tests).
 */
umdev_vfu_server *umdev_vfu_server_new(umdev_pci_dev *pci, umdev_loop *ctl, const char *path,
				       int listen_fd, int *err) __attribute__((warn_unused_result));

/** umdev_vfu_server_free() - drop the client (quiescing DMA), close and unlink the socket. */
void umdev_vfu_server_free(umdev_vfu_server *s);

/** umdev_vfu_server_connected() - a client is connected. */
bool umdev_vfu_server_connected(const umdev_vfu_server *s);

/**
 * umdev_vfu_server_feed() - parse and handle the messages in @buf as if a
 * client without fds had sent them on a fresh connection (replies are
 * dropped). For fuzzing and tests; the server must have no live client.
 * Return: number of messages handled, or -errno when the stream was refused
 * (the connection would have been closed).
 */
int umdev_vfu_server_feed(umdev_vfu_server *s, const void *buf, size_t len)
	__attribute__((warn_unused_result));

/** umdev_vfu_command_name() - "DMA_MAP" etc., "?" if unknown. */
const char *umdev_vfu_command_name(unsigned cmd);

#endif
