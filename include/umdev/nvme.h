/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev NVMe controller: an emulated NVMe controller on a PCI function
 * (include/umdev/pci.h), served to a VMM by the vfio-user transport.
 *
 * Concepts
 * - BAR0 holds the controller registers (trapped: they run on the control
 *   thread) and the doorbell page (trapped, or with always_poll shared
 *   memory the client mmaps). BAR4 holds the MSI-X table and PBA.
 * - The admin queue pair runs on the control thread; the I/O queue pairs are
 *   spread over data-plane loops (include/umdev/loop.h), one pair on one
 *   loop, which runs its commands and does backend I/O on its io_uring
 *   straight into guest memory (a umdev_as_map from
 *   umdev_pci_dma_map(); no bounce buffers except for Compare). While busy
 *   it polls the doorbells (and the shadow doorbells when the host
 *   configured them). When no queue had work for poll_us and no I/O is in
 *   flight it arms the shadow doorbells' EventIdx and sleeps with no timer;
 *   a trapped doorbell write wakes it. With always_poll the doorbell page is
 *   mmapped by the client instead and the thread never sleeps.
 * - Control thread: register writes (CC.EN, shutdown), the admin queue,
 *   function reset, DMA unmaps and namespace changes; what touches an I/O
 *   queue is handed to its loop with umdev_loop_call_sync(), and the
 *   control thread waits (bounded) for in-flight backend I/O to drain.
 * - Guest mistakes in commands get NVMe status codes. Guest mistakes that
 *   leave the controller unable to go on (queue memory that is not guest
 *   memory, a doorbell beyond the queue size) set CSTS.CFS and log a line;
 *   only a reset (CC.EN 1 -> 0 or FLR) clears it.
 * - Namespaces: a backend (include/umdev/backend.h), or a window
 *   [offset, offset + size) of one, so one file can be split between VMs.
 *   Adding or removing one at runtime raises the changed-namespace-list
 *   asynchronous event.
 */
#ifndef UMDEV_NVME_H
#define UMDEV_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/backend.h"
#include "umdev/loop.h"
#include "umdev/pci.h"

typedef struct umdev_nvme umdev_nvme;

#define UMDEV_NVME_MAX_QUEUES 64 /* I/O queue pairs */
#define UMDEV_NVME_MAX_NS 256
#define UMDEV_NVME_PCI_VENDOR 0x1b36
#define UMDEV_NVME_PCI_DEVICE 0x00f2

struct umdev_nvme_config {
	const char *name; /* for logs and the serial number default; copied */
	const char *serial; /* NULL: derived from name; at most 20 bytes used */
	umdev_loop *loop; /* the one loop when num_loops is 0 (borrowed; outlives us) */
	/*
	 * Data-plane loops to spread the I/O queue pairs over (borrowed; they
	 * must outlive the controller): CQ q and the SQs posting to it run on
	 * loops[(q - 1) % num_loops]. 0: just @loop.
	 */
	umdev_loop *const *loops;
	unsigned num_loops;
	/*
	 * The control loop the caller runs the PCI traps on; with always_poll
	 * admin doorbells (in the mmapped page) are handed there from loop 0.
	 * NULL: admin commands run only on trapped admin doorbell writes.
	 */
	umdev_loop *ctl_loop;
	unsigned max_queues; /* I/O queue pairs offered, 1..UMDEV_NVME_MAX_QUEUES */
	unsigned poll_us; /* busy-poll this long after the last work (0: default 64) */
	/*
	 * Never stop busy polling; the doorbell page is then shared memory the
	 * client mmaps. Otherwise doorbell writes trap and wake the sleeping
	 * loop (with shadow doorbells only when EventIdx asks).
	 */
	bool always_poll;
};

/**
 * umdev_nvme_new() - build a controller (disabled, no namespace). Its I/O
 * thread hooks are installed on @cfg->loop with umdev_loop_call_sync().
 * @err: -EINVAL for a bad config, -ENOMEM, PCI layer errors.
 * Caller owns the result; umdev_nvme_free() releases it. Control thread.
 */
umdev_nvme *umdev_nvme_new(const struct umdev_nvme_config *cfg, int *err)
	__attribute__((warn_unused_result));

/**
 * umdev_nvme_free() - drain in-flight I/O, free queues and namespaces
 * (closing their backends). The transport serving umdev_nvme_pci() must be
 * gone first. NULL is allowed.
 */
void umdev_nvme_free(umdev_nvme *n);

/** umdev_nvme_pci() - the PCI function to hand to a transport (lives as long as @n). */
umdev_pci_dev *umdev_nvme_pci(umdev_nvme *n);

/**
 * umdev_nvme_ns_add() - attach @bdev (ownership passes to the controller on
 * success only) as a namespace covering [@offset, @offset + @size) bytes of
 * it; @size 0 means "to the end". Both must be multiples of the backend's
 * block size. @nsid 0 picks the lowest free NSID. A running controller
 * raises a namespace attribute changed event. *@out_nsid gets the NSID.
 * Return: 0, -EINVAL (window outside the backend or misaligned), -EEXIST
 * (@nsid taken), -ENOSPC (no free NSID), -ENOMEM. Control thread.
 */
int umdev_nvme_ns_add(umdev_nvme *n, umdev_bdev *bdev, uint64_t offset, uint64_t size,
		      uint32_t nsid, uint32_t *out_nsid) __attribute__((warn_unused_result));

/**
 * umdev_nvme_ns_remove() - detach namespace @nsid: new commands to it fail
 * with Invalid Namespace, in-flight ones are waited for, the backend is
 * closed, and the host gets a namespace attribute changed event.
 * Return: 0 or -ENODEV. Control thread; may block while I/O drains.
 */
int umdev_nvme_ns_remove(umdev_nvme *n, uint32_t nsid) __attribute__((warn_unused_result));

struct umdev_nvme_ns_info {
	uint32_t nsid;
	const char *spec; /* the backend spec (valid until the namespace goes) */
	uint64_t offset, size; /* bytes */
	uint32_t block_size;
};

/** umdev_nvme_ns_list() - up to @max namespaces in NSID order; returns the count. */
unsigned umdev_nvme_ns_list(umdev_nvme *n, struct umdev_nvme_ns_info *out, unsigned max);

struct umdev_nvme_stats {
	uint64_t admin_cmds, io_cmds, read_bytes, write_bytes, errors, irqs;
	uint64_t polls, sleeps; /* busy-poll passes; times it went to the idle timer */
	unsigned io_queues; /* I/O SQs now created */
	unsigned inflight; /* backend I/Os in flight */
	uint32_t csts;
	struct {
		bool live;
		uint64_t cmds; /* commands taken from this SQ since it was created */
		unsigned inflight; /* taken, not yet completed */
		int loop; /* index of the data-plane loop serving it; -1: control thread */
	} sq[UMDEV_NVME_MAX_QUEUES + 1]; /* by SQ id; 0 is the admin queue */
};

/** umdev_nvme_get_stats() - a snapshot (approximate while I/O runs). Control thread. */
void umdev_nvme_get_stats(umdev_nvme *n, struct umdev_nvme_stats *st);

/**
 * umdev_nvme_parse_ns() - split a namespace spec "BACKEND[@OFFSET[+SIZE]]"
 * (e.g. "file:/img@1G+512M", "ram:4G") into the backend spec (copied to
 * @backend, @blen bytes) and the byte window; sizes take K/M/G/T suffixes.
 * The window starts at the last '@' (a path containing '@' must then be
 * followed by a window, e.g. "@0"). -EINVAL for a bad number,
 * -ENAMETOOLONG when @backend is too small.
 */
int umdev_nvme_parse_ns(const char *spec, char *backend, size_t blen, uint64_t *offset,
			uint64_t *size) __attribute__((warn_unused_result));

#endif
