/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A vfio-user client written from the protocol spec (QEMU's
 * docs/interop/vfio-user.rst): what a VMM does to use a device served by
 * umdevd. Synchronous, one request at a time; while it waits for a reply it
 * serves the server's DMA_READ/DMA_WRITE commands from its guest memory.
 * Used by the protocol tests; not part of libumdev. Not thread-safe.
 */
#ifndef UMDEV_CLIENT_VFIO_USER_CLIENT_H
#define UMDEV_CLIENT_VFIO_USER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/proto/vfio_user.h"

#define UMDEV_VFUC_MAX_MEM 8
#define UMDEV_VFUC_TIMEOUT_MS 5000

struct umdev_vfuc_mem {
	uint64_t iova;
	uint64_t size;
	uint8_t *ptr; /* our mapping */
	int fd; /* memfd */
	bool mapped_with_fd; /* the server got the fd (else it uses DMA_READ/WRITE) */
	bool paged; /* one window per page, pages in reverse order in the memfd */
};

struct umdev_vfuc {
	int fd;
	uint16_t next_id;
	uint16_t major, minor; /* negotiated */
	uint32_t server_max_xfer;
	uint32_t server_max_fds;
	uint32_t server_max_dma_maps;
	uint64_t server_pgsizes;
	char server_caps[512]; /* the server's JSON */
	struct umdev_vfuc_mem mem[UMDEV_VFUC_MAX_MEM];
	unsigned nmem;
	unsigned dma_reads, dma_writes; /* server DMA commands served */
	bool refuse_dma; /* answer server DMA with an error (tests) */
	bool unsealed_mem; /* leave guest memfds unsealed, so tests can shrink them */
	/*
	 * Lay out DMA_READ/DMA_WRITE as QEMU's client does (32-bit count, data
	 * at byte 12, bare-header DMA_WRITE reply) instead of the spec's; the
	 * caller also sends "migration" in VERSION, as QEMU does.
	 */
	bool qemu_dma_layout;
};

/** umdev_vfuc_connect() - connect to @path, retrying up to @timeout_ms. */
int umdev_vfuc_connect(struct umdev_vfuc *c, const char *path, int timeout_ms)
	__attribute__((warn_unused_result));

/** umdev_vfuc_close() - close the socket and unmap guest memory. */
void umdev_vfuc_close(struct umdev_vfuc *c);

/**
 * umdev_vfuc_version() - VERSION with @json capabilities (NULL: ours, with
 * max_msg_fds 8, max_data_xfer_size 1 MiB, write_multiple). Parses the
 * server's reply capabilities with json-c.
 */
int umdev_vfuc_version(struct umdev_vfuc *c, const char *json) __attribute__((warn_unused_result));

/**
 * umdev_vfuc_request() - send command @cmd with @payload (+ @fds), wait for
 * its reply. The reply payload is copied to @reply (up to @reply_max bytes,
 * *@reply_len gets its full size) and received fds to @rfds (up to
 * *@nrfds, updated; the caller closes them). Returns 0, the negated errno
 * of an error reply, or -ETIMEDOUT/-ECONNRESET/-EPROTO.
 */
int umdev_vfuc_request(struct umdev_vfuc *c, uint16_t cmd, uint32_t flags, const void *payload,
		       size_t len, const int *fds, unsigned nfds, void *reply, size_t reply_max,
		       size_t *reply_len, int *rfds, unsigned *nrfds)
	__attribute__((warn_unused_result));

/** umdev_vfuc_send_raw() - put raw bytes (+ fds) on the socket (hostile tests). */
int umdev_vfuc_send_raw(struct umdev_vfuc *c, const void *buf, size_t len, const int *fds,
			unsigned nfds) __attribute__((warn_unused_result));

/**
 * umdev_vfuc_wait_reply() - wait for a reply with @id; as umdev_vfuc_request()
 * for the rest. For tests that sent the command raw.
 */
int umdev_vfuc_wait_reply(struct umdev_vfuc *c, uint16_t id, void *reply, size_t reply_max,
			  size_t *reply_len, int *rfds, unsigned *nrfds)
	__attribute__((warn_unused_result));

/**
 * umdev_vfuc_add_mem() - create guest memory (a memfd of @size at @iova)
 * and DMA_MAP it, with its fd when @with_fd, else as memory the server must
 * reach with DMA_READ/DMA_WRITE. @flags: VFIO_USER_F_DMA_REGION_*.
 */
int umdev_vfuc_add_mem(struct umdev_vfuc *c, uint64_t iova, uint64_t size, bool with_fd,
		       uint32_t flags) __attribute__((warn_unused_result));

/**
 * umdev_vfuc_add_mem_pages() - as umdev_vfuc_add_mem() with an fd, but the
 * way QEMU maps guest memory behind a vIOMMU: one DMA_MAP per 4 KiB page.
 * The pages lie in the memfd in reverse order, so windows adjacent in IOVA
 * are not adjacent in the file (as guest pages need not be); our own
 * mapping (umdev_vfuc_mem_ptr()) is contiguous in IOVA order.
 */
int umdev_vfuc_add_mem_pages(struct umdev_vfuc *c, uint64_t iova, uint64_t size, uint32_t flags)
	__attribute__((warn_unused_result));

/**
 * umdev_vfuc_remap_page() - in memory from umdev_vfuc_add_mem_pages():
 * DMA_UNMAP the page at @iova and DMA_MAP it again with @flags.
 */
int umdev_vfuc_remap_page(struct umdev_vfuc *c, uint64_t iova, uint32_t flags)
	__attribute__((warn_unused_result));

/** umdev_vfuc_remove_mem() - DMA_UNMAP the region at @iova and free it. */
int umdev_vfuc_remove_mem(struct umdev_vfuc *c, uint64_t iova) __attribute__((warn_unused_result));

/** umdev_vfuc_remap_all() - after a reconnect: DMA_MAP every region again. */
int umdev_vfuc_remap_all(struct umdev_vfuc *c) __attribute__((warn_unused_result));

/** umdev_vfuc_mem_ptr() - our pointer to guest memory [@iova, +@len), or NULL. */
void *umdev_vfuc_mem_ptr(struct umdev_vfuc *c, uint64_t iova, uint64_t len);

int umdev_vfuc_device_info(struct umdev_vfuc *c, struct vfio_user_device_info *out)
	__attribute__((warn_unused_result));

/**
 * umdev_vfuc_region_info() - region @index; the full reply (info and
 * capabilities) goes to @buf (@bufsz bytes, at least the info structure).
 * *@fd gets the region's fd when it is mappable, else -1.
 */
int umdev_vfuc_region_info(struct umdev_vfuc *c, uint32_t index, void *buf, size_t bufsz, int *fd)
	__attribute__((warn_unused_result));

int umdev_vfuc_region_read(struct umdev_vfuc *c, uint32_t region, uint64_t off, void *buf,
			   uint32_t len) __attribute__((warn_unused_result));
int umdev_vfuc_region_write(struct umdev_vfuc *c, uint32_t region, uint64_t off,
			    const void *buf, uint32_t len) __attribute__((warn_unused_result));
/*
 * A posted write (VFIO_USER_F_NO_REPLY), as QEMU sends BAR writes by default
 * (x-no-posted-writes=off): no wait for the server. Later messages cannot
 * pass it (the server handles a connection's messages in order), so a read
 * after it sees its effect. Failures are the server's to log.
 */
int umdev_vfuc_region_write_posted(struct umdev_vfuc *c, uint32_t region, uint64_t off,
				   const void *buf, uint32_t len)
	__attribute__((warn_unused_result));

/** Config space helpers (region VFIO_PCI_CONFIG_REGION_INDEX). */
int umdev_vfuc_cfg_read(struct umdev_vfuc *c, uint32_t off, void *buf, uint32_t len)
	__attribute__((warn_unused_result));
int umdev_vfuc_cfg_write(struct umdev_vfuc *c, uint32_t off, uint32_t val, uint32_t len)
	__attribute__((warn_unused_result));

/**
 * umdev_vfuc_bar_size() - size a BAR the way a guest does (write all-ones,
 * read back, restore). Returns the size or 0 for an unimplemented BAR.
 */
uint64_t umdev_vfuc_bar_size(struct umdev_vfuc *c, unsigned bar);

/** umdev_vfuc_find_cap() - config offset of capability @id, 0 if absent. */
unsigned umdev_vfuc_find_cap(struct umdev_vfuc *c, uint8_t id);

int umdev_vfuc_irq_info(struct umdev_vfuc *c, uint32_t index, uint32_t *flags, uint32_t *count)
	__attribute__((warn_unused_result));

int umdev_vfuc_set_irqs(struct umdev_vfuc *c, uint32_t index, uint32_t flags, uint32_t start,
			uint32_t count, const uint8_t *bools, const int *fds, unsigned nfds)
	__attribute__((warn_unused_result));

int umdev_vfuc_reset(struct umdev_vfuc *c) __attribute__((warn_unused_result));

/**
 * umdev_vfuc_poll() - serve server commands (DMA) that arrive within
 * @timeout_ms without sending anything. Returns the number served.
 */
int umdev_vfuc_poll(struct umdev_vfuc *c, int timeout_ms);

#endif
