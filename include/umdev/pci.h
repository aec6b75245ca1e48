/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev PCI device model: one emulated PCI function, independent of the
 * transport that serves it (vfio-user today).
 *
 * Concepts
 * - Configuration space: a type-0 header with read-only, read-write and
 *   write-1-to-clear bits enforced per byte, BAR sizing, the command
 *   register (memory space and bus master enables are respected), and a
 *   capability list built from the config: power management, MSI, MSI-X and
 *   PCI Express (an endpoint; the config region is then 4 KiB).
 * - BARs are made of parts. A *trap* is a range whose accesses call the
 *   device's handler (registers with side effects). A *shared* range is
 *   plain memory (a memfd the layer allocates) that the client may mmap, so
 *   hot registers such as NVMe doorbells never trap; the device polls it.
 *   The transport declares shared ranges as sparse mmap areas. The MSI-X
 *   table and PBA are traps the layer installs itself.
 * - DMA: the device reads and writes guest memory through
 *   umdev_pci_dma_read/_write() or, for zero-copy, a map from
 *   umdev_pci_dma_map(). Both are refused while Command.MASTER is clear. The
 *   transport decides where memory comes from (include/umdev/mem.h address
 *   space for fd-backed ranges, messages to the client for the rest) and
 *   calls ops->dma_unmap before a range goes away.
 * - Interrupts: umdev_irq_trigger(umdev_pci_irq(dev), vector).
 * - The device never sees the transport.
 *
 * Threads: all functions are for the control thread unless marked
 * otherwise. Trap handlers run on the control thread.
 */
#ifndef UMDEV_PCI_H
#define UMDEV_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/irq.h"
#include "umdev/mem.h"

#define UMDEV_WUR __attribute__((warn_unused_result))

typedef struct umdev_pci_dev umdev_pci_dev;

#define UMDEV_PCI_MAX_BAR_PARTS 8

/* BAR kinds. */
#define UMDEV_PCI_BAR_MEM64 (1u << 0) /* 64-bit BAR: takes this and the next slot */
#define UMDEV_PCI_BAR_PREFETCH (1u << 1)

/*
 * A trapped BAR range. Handlers get the offset from the start of the BAR,
 * a length of 1..max_data_xfer bytes inside the range, and run on the
 * control thread. They return 0 or -errno (the transport turns it into an
 * error reply). read must fill @buf entirely. Either may be NULL: reads give
 * zeroes, writes are ignored.
 */
struct umdev_pci_trap {
	uint64_t offset;
	uint64_t size;
	int (*read)(void *opaque, uint64_t off, void *buf, size_t len);
	int (*write)(void *opaque, uint64_t off, const void *buf, size_t len);
	void *opaque;
};

/* A range of a BAR backed by shared memory the client may mmap. */
struct umdev_pci_shared {
	uint64_t offset; /* page aligned */
	uint64_t size; /* page multiple */
};

struct umdev_pci_bar_desc {
	uint64_t size; /* 0: not implemented; else a power of two >= 4096 */
	unsigned flags; /* UMDEV_PCI_BAR_* */
	struct umdev_pci_trap traps[UMDEV_PCI_MAX_BAR_PARTS];
	unsigned num_traps;
	struct umdev_pci_shared shared[UMDEV_PCI_MAX_BAR_PARTS];
	unsigned num_shared;
};

/*
 * A vendor-specific capability (ID 0x09; virtio-pci's are such). The layer
 * chains it after its own and fills bytes 0 (ID) and 1 (next); @data[2..len)
 * is the body. Bytes are read-only unless @wmask sets their bits.
 */
#define UMDEV_PCI_MAX_VCAPS 8
#define UMDEV_PCI_VCAP_MAX_LEN 32
struct umdev_pci_vcap {
	uint8_t len; /* 3..UMDEV_PCI_VCAP_MAX_LEN */
	uint8_t data[UMDEV_PCI_VCAP_MAX_LEN];
	uint8_t wmask[UMDEV_PCI_VCAP_MAX_LEN];
};

/* Device callbacks. Every op may be NULL. All run on the control thread. */
struct umdev_pci_dev_ops {
	/*
	 * Function reset (DEVICE_RESET, FLR): put registers back to their
	 * power-on values and stop DMA. Config space and interrupts are reset by
	 * the layer after this returns.
	 */
	void (*reset)(void *opaque);
	/*
	 * [@iova, @iova + @len) is about to stop being guest memory. Return only
	 * once nothing of the device uses it any more (stop the queues that do,
	 * wait for their in-flight requests, drop maps from umdev_pci_dma_map()),
	 * or finish that in ops->dma_unmapped, which runs before the client
	 * hears the unmap is done.
	 */
	void (*dma_unmap)(void *opaque, uint64_t iova, uint64_t len);
	/*
	 * [@iova, @iova + @len) became guest memory (after the transport added
	 * it): a device waiting for memory that a remap took away may resume.
	 */
	void (*dma_mapped)(void *opaque, uint64_t iova, uint64_t len);
	/*
	 * [@iova, @iova + @len) went (after ops->dma_unmap, before the
	 * transport tells the client): a device that let users of other memory
	 * run on through ops->dma_unmap moves them to the map without it here.
	 * May be NULL.
	 */
	void (*dma_unmapped)(void *opaque, uint64_t iova, uint64_t len);
	/* The guest changed the command register (MEMORY, MASTER, ...). */
	void (*command)(void *opaque, uint16_t old_cmd, uint16_t new_cmd);
	/*
	 * A config access touched a vendor capability: for a read, @buf holds
	 * the bytes about to be returned (the device may change them); for a
	 * write, the byte rules were already applied. @off/@len as accessed.
	 */
	void (*vcap_access)(void *opaque, uint64_t off, void *buf, size_t len, bool write);
};

struct umdev_pci_config {
	const char *name; /* for logs: "sample0" */
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint8_t revision;
	uint32_t class_code; /* base << 16 | sub << 8 | prog-if */
	struct umdev_pci_bar_desc bars[6];
	struct umdev_irq_config irq; /* intx, msi_vectors, msix_vectors */
	/* Where the MSI-X table and PBA live (when msix_vectors > 0). */
	unsigned msix_bar;
	uint32_t msix_table_offset; /* 8-byte aligned */
	uint32_t msix_pba_offset; /* 8-byte aligned */
	bool pm; /* power management capability */
	bool pcie; /* PCI Express endpoint capability (4 KiB config space) */
	struct umdev_pci_vcap vcaps[UMDEV_PCI_MAX_VCAPS]; /* must fit in the first 256 bytes */
	unsigned num_vcaps;
	const struct umdev_pci_dev_ops *ops;
	void *opaque; /* passed to ops and trap handlers */
};

/**
 * umdev_pci_dev_new() - build the function described by @cfg (copied).
 * @err: -EINVAL for an inconsistent description (overlapping parts, bad BAR
 * sizes, MSI-X table outside its BAR), -ENOMEM, or a memfd error.
 * Caller owns the result; umdev_pci_dev_free() releases it.
 */
umdev_pci_dev *umdev_pci_dev_new(const struct umdev_pci_config *cfg, int *err) UMDEV_WUR;

/** umdev_pci_dev_free() - NULL is allowed. The transport must be gone. */
void umdev_pci_dev_free(umdev_pci_dev *d);

/** umdev_pci_name() - the configured name. */
const char *umdev_pci_name(const umdev_pci_dev *d);

/**
 * umdev_pci_bar_mem() - host pointer to BAR @bar's shared memory (the whole
 * BAR is backed when any part is shared; only shared parts are mmapped by
 * the client). NULL if the BAR has no shared part. Valid for the device's
 * life; any thread.
 */
void *umdev_pci_bar_mem(umdev_pci_dev *d, unsigned bar);

/**
 * umdev_pci_vcap_offset() - config offset of vendor capability @i (0 if none).
 * umdev_pci_cfg_bytes() - the config space values now (for a device's
 * ops->vcap_access; valid for the device's life, control thread).
 */
unsigned umdev_pci_vcap_offset(const umdev_pci_dev *d, unsigned i);
const uint8_t *umdev_pci_cfg_bytes(const umdev_pci_dev *d);

/** umdev_pci_irq() - the function's interrupt state (lives as long as @d). */
umdev_irq *umdev_pci_irq(umdev_pci_dev *d);

/** umdev_pci_command() - the command register now. Any thread. */
uint16_t umdev_pci_command(const umdev_pci_dev *d);

/**
 * umdev_pci_dma_map() - a reference to the current guest memory map for
 * zero-copy access (fd-backed ranges only), or NULL with -EPERM in *@err
 * when bus mastering is off, -ENOTCONN without a client. Release with
 * umdev_as_map_put(). Any thread; a holder must drop it when ops->dma_unmap
 * asks.
 */
umdev_as_map *umdev_pci_dma_map(umdev_pci_dev *d, int *err) UMDEV_WUR;

/**
 * umdev_pci_dma_read() / _write() - copy between guest memory at @iova and
 * @buf. Fd-backed memory is copied directly (any thread). Memory the client
 * did not share with an fd is reached with DMA_READ/DMA_WRITE messages,
 * which only the control thread may do (it may block up to the transport's
 * timeout); other threads get -EWOULDBLOCK for such ranges.
 * Return: 0, -EPERM (bus mastering off), -EFAULT (not guest memory or
 * access refused), -ENOTCONN (no client), -ETIMEDOUT/-EIO.
 * From a data-plane thread these are valid only between a window's DMA_MAP
 * and the ops->dma_unmap that revokes it: the transport detaches after
 * every window has been quiesced.
 */
int umdev_pci_dma_read(umdev_pci_dev *d, uint64_t iova, void *buf, size_t len) UMDEV_WUR;
int umdev_pci_dma_write(umdev_pci_dev *d, uint64_t iova, const void *buf, size_t len) UMDEV_WUR;

/**
 * umdev_pci_defer() - run @fn(@arg) on the control thread once the access
 * being handled (a trap handler's caller) has been answered, like a posted
 * write whose effect comes later. A device whose register write starts DMA
 * should do the DMA there: the client may only serve DMA_READ/DMA_WRITE
 * messages once it has its reply. Deferred work still runs if the client
 * disconnects meanwhile (its DMA then fails with -ENOTCONN), and is dropped
 * only when the transport is freed.
 * Return: 0, -ENOTCONN (no client: run it yourself), -ENOMEM.
 */
int umdev_pci_defer(umdev_pci_dev *d, void (*fn)(void *arg), void *arg) UMDEV_WUR;

/* ---- transport side ---- */

/* How the transport provides guest memory; set with umdev_pci_attach(). */
struct umdev_pci_dma_ops {
	/* Current map of fd-backed ranges (a new reference), never NULL. */
	umdev_as_map *(*get_map)(void *opaque);
	/*
	 * Slow path for ranges without fd. -EFAULT when [@iova, +@len) is not
	 * wholly inside one such range. Control thread only.
	 */
	int (*read)(void *opaque, uint64_t iova, void *buf, size_t len);
	int (*write)(void *opaque, uint64_t iova, const void *buf, size_t len);
	/* Queue @fn(@arg) to run after the current message is answered. */
	int (*defer)(void *opaque, void (*fn)(void *arg), void *arg);
};

/**
 * umdev_pci_attach() - the transport provides guest memory (@ops borrowed,
 * must outlive the attachment); NULL @ops detaches (client gone).
 */
void umdev_pci_attach(umdev_pci_dev *d, const struct umdev_pci_dma_ops *ops, void *opaque);

/** umdev_pci_dma_mapped() - the transport added a range: call ops->dma_mapped. */
void umdev_pci_dma_mapped(umdev_pci_dev *d, uint64_t iova, uint64_t len);

/** umdev_pci_dma_unmap() - call ops->dma_unmap; the transport then removes the range. */
void umdev_pci_dma_unmap(umdev_pci_dev *d, uint64_t iova, uint64_t len);

/** umdev_pci_dma_unmapped() - the transport removed the range: call ops->dma_unmapped. */
void umdev_pci_dma_unmapped(umdev_pci_dev *d, uint64_t iova, uint64_t len);

/** umdev_pci_cfg_size() - bytes of config space (256, or 4096 with PCIe). */
uint32_t umdev_pci_cfg_size(const umdev_pci_dev *d);

/**
 * umdev_pci_cfg_access() - read or write config space [@off, @off + @len).
 * Any length within the space; bit rules apply per byte. -EINVAL out of range.
 */
int umdev_pci_cfg_access(umdev_pci_dev *d, uint64_t off, void *buf, size_t len, bool write)
	UMDEV_WUR;

/**
 * umdev_pci_bar_access() - a BAR access from the client. The range must lie
 * inside the BAR and inside one part (or wholly outside every part: reads
 * give zeroes, writes are dropped). -EIO while Command.MEMORY is clear (as
 * the kernel's vfio-pci does), -EINVAL out of range, or the handler's error.
 */
int umdev_pci_bar_access(umdev_pci_dev *d, unsigned bar, uint64_t off, void *buf, size_t len,
			 bool write) UMDEV_WUR;

/** umdev_pci_bar_size() - 0 for an unimplemented BAR (and the upper half of a 64-bit one). */
uint64_t umdev_pci_bar_size(const umdev_pci_dev *d, unsigned bar);

/**
 * umdev_pci_bar_shared() - the shared ranges of @bar and the fd that backs
 * the whole BAR (at offset 0), or -1 if none. The fd stays owned by @d: dup
 * it to send it. Returns the number of ranges written to @out (at most @max).
 */
unsigned umdev_pci_bar_shared(const umdev_pci_dev *d, unsigned bar, struct umdev_pci_shared *out,
			      unsigned max, int *fd);

/**
 * umdev_pci_reset() - function reset: ops->reset, then config space back to
 * its initial values and interrupts reset (eventfds kept).
 */
void umdev_pci_reset(umdev_pci_dev *d);

#endif
