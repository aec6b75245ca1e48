/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef UMDEV_VFU_INTERNAL_H
#define UMDEV_VFU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/log.h"
#include "umdev/mem.h"
#include "umdev/pci.h"
#include "umdev/proto/vfio_user.h"
#include "umdev/vfio_user.h"
#include "util/sock.h"

/* Largest message we accept: header, a 16-byte access header, the data. */
#define VFU_MAX_MSG (sizeof(struct vfio_user_header) + 16 + UMDEV_VFU_MAX_DATA_XFER)
/* How long a server-to-client DMA may wait for its reply. */
#define VFU_IO_TIMEOUT_MS 2000
/* Commands that may arrive while we wait for a DMA reply, kept for later. */
#define VFU_MAX_STASH 32
/*
 * Bytes of replies (and our own commands) a connection may have waiting for
 * the client to read them, beyond what the socket buffer holds. Replies are
 * never waited for: what the socket does not take is queued and sent as
 * the socket drains (EPOLLOUT). A client over this bound is not reading
 * and is dropped. Big enough for a few max_data_xfer_size REGION_READ
 * replies in flight.
 */
#define VFU_OUTQ_MAX (4u << 20)

/* Part of a message the socket did not take yet. */
struct vfu_out {
	struct vfu_out *next;
	size_t len, off;
	int fds[UMDEV_VFU_MAX_MSG_FDS]; /* our dups, sent with the first byte */
	unsigned nfds;
	uint8_t data[];
};

/* One received message; body and fds belong to it until freed. */
struct vfu_msg {
	struct vfio_user_header hdr;
	uint8_t *body; /* hdr.msg_size - 16 bytes */
	size_t len;
	int fds[UMDEV_VFU_MAX_MSG_FDS];
	unsigned nfds;
	struct vfu_msg *next; /* stash list */
};

/* Work a device deferred until the current message is answered. */
struct vfu_deferred {
	void (*fn)(void *arg);
	void *arg;
	struct vfu_deferred *next;
};

/* A DMA window the client gave us. */
struct vfu_dma {
	uint64_t addr;
	uint64_t size;
	uint32_t flags; /* VFIO_USER_F_DMA_REGION_* */
	bool has_fd; /* in the address space; else reached by DMA_READ/WRITE */
	bool shadowed; /* no fd, but shadowed in the address space (umdev_as_add_shadow) */
};

/*
 * Most fd-less DMA memory shadowed per connection. Shadows cost nothing
 * until requests touch them, but a client could have every page touched;
 * SeaBIOS needs well under 1 MiB of them.
 */
#define VFU_SHADOW_MAX (256ull << 20)

struct vfu_conn {
	umdev_vfu_server *s;
	int fd; /* -1 for a fed (fuzzing) connection: replies are dropped */
	bool dead; /* closing once the current handler returns */
	bool negotiated;
	uint32_t peer_max_fds;
	uint32_t peer_max_xfer;
	bool write_multi;
	bool dma_count32; /* QEMU's DMA_READ/WRITE layout, see dma_chunk() */
	uint16_t next_id;

	/* Receive state of the message in progress. */
	struct vfu_msg rx;
	size_t got; /* bytes of header + body so far */

	struct vfu_msg *stash, *stash_tail;
	unsigned nstash;

	/* Output not yet taken by the socket, oldest first. */
	struct vfu_out *outq, *outq_tail;
	size_t outq_bytes;
	bool epollout; /* EPOLLOUT is armed */
	const char *drop_why; /* why c->dead was set, for the log line */

	umdev_as *as;
	struct vfu_dma *dma; /* grown on demand, up to UMDEV_VFU_MAX_DMA_MAPS */
	unsigned ndma, dma_cap;
	uint64_t shadow_bytes; /* of windows shadowed now */
};

struct umdev_vfu_server {
	umdev_pci_dev *pci;
	/* Deferred device work (umdev_pci_defer), run after each message. */
	struct vfu_deferred *deferred, *deferred_tail;
	bool running_deferred;
	umdev_loop *ctl;
	/*
	 * Commands stashed by a DMA_READ/WRITE made outside message handling
	 * (the virtio runner's copies) wait for no input: this runs them.
	 */
	struct umdev_loop_deferred stash_d;
	struct umdev_listener listener; /* fd -1 for a feed-only server */
	struct vfu_conn *conn;
	/*
	 * Every log line a client can cause goes through this. It lives with
	 * the socket rather than the connection: one client at a time, and a
	 * client that reconnects in a loop must not get a fresh budget each time.
	 */
	struct umdev_ratelimit rl;
	char name[40];
};

/* handlers.c */
#define VFU_CLOSE 1000 /* handler result: drop the connection */
int vfu_dispatch(struct vfu_conn *c, struct vfu_msg *m);
void vfu_conn_drop_dma(struct vfu_conn *c);
int vfu_check_header(const struct vfio_user_header *h, const char **why);

/* Log lines a client can cause: rate-limited per server socket. */
#define vfu_err(c, ...) umdev_err_rl(&(c)->s->rl, __VA_ARGS__)
#define vfu_warn(c, ...) umdev_warn_rl(&(c)->s->rl, __VA_ARGS__)
#define vfu_info(c, ...) umdev_log_rl(&(c)->s->rl, UMDEV_LOG_INFO, __VA_ARGS__)

/* server.c */
int vfu_reply(struct vfu_conn *c, const struct vfu_msg *m, const void *body, size_t len,
	      const int *fds, unsigned nfds);
int vfu_reply_err(struct vfu_conn *c, const struct vfu_msg *m, int err);
void vfu_msg_release(struct vfu_msg *m);
extern const struct umdev_pci_dma_ops vfu_dma_ops;

#endif
