/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev interrupts: INTx, MSI and MSI-X emulation for one PCI function.
 *
 * Concepts
 * - A device raises interrupts with umdev_irq_trigger(vector) and never
 *   learns how they are delivered. The transport (vfio-user) gives the
 *   layer eventfds with VFIO SET_IRQS semantics (umdev_irq_set()); a
 *   trigger signals the eventfd of the vector in the mode the client
 *   enabled (MSI-X, else MSI, else INTx).
 * - Masking is enforced here, not left to the client: an MSI-X vector whose
 *   table entry mask bit is set, or all of them while the function mask bit
 *   is set, or an MSI vector masked in the capability, or INTx while masked
 *   (automask after each trigger, as VFIO does), does not fire. The trigger
 *   sets the vector's pending bit instead (visible in the MSI-X PBA) and the
 *   interrupt is delivered when it is unmasked.
 * - The MSI-X table and PBA are emulated here: the PCI layer routes BAR
 *   accesses to them to umdev_irq_msix_table_access()/_pba_read().
 * - Threads: umdev_irq_trigger() and the query functions may be called from
 *   any thread (data-plane queues raise their vectors); everything else is
 *   for the control thread. A short internal mutex orders the two; a
 *   trigger never blocks on I/O (eventfd writes do not block).
 */
#ifndef UMDEV_IRQ_H
#define UMDEV_IRQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UMDEV_WUR __attribute__((warn_unused_result))

typedef struct umdev_irq umdev_irq;

/* Interrupt indices, numbered as VFIO's PCI IRQ indices. */
enum umdev_irq_index {
	UMDEV_IRQ_INTX = 0,
	UMDEV_IRQ_MSI = 1,
	UMDEV_IRQ_MSIX = 2,
	UMDEV_IRQ_ERR = 3,
	UMDEV_IRQ_REQ = 4,
	UMDEV_IRQ_NUM_INDEX = 5,
};

/* The interrupt mode the client enabled; at most one at a time, as in VFIO. */
enum umdev_irq_mode {
	UMDEV_IRQ_MODE_NONE = 0,
	UMDEV_IRQ_MODE_INTX,
	UMDEV_IRQ_MODE_MSI,
	UMDEV_IRQ_MODE_MSIX,
};

#define UMDEV_IRQ_MAX_MSI 32
#define UMDEV_IRQ_MAX_MSIX 2048

struct umdev_irq_config {
	bool intx; /* pin INTA# */
	unsigned msi_vectors; /* 0, or a power of two up to 32 */
	unsigned msix_vectors; /* 0..2048 */
	bool err; /* offer the ERR index (PCIe error reporting) */
	bool req; /* offer the REQ index (device release request) */
};

/* VFIO SET_IRQS flags (same values as on the wire). */
#define UMDEV_IRQ_SET_DATA_NONE (1u << 0)
#define UMDEV_IRQ_SET_DATA_BOOL (1u << 1)
#define UMDEV_IRQ_SET_DATA_EVENTFD (1u << 2)
#define UMDEV_IRQ_SET_ACTION_MASK (1u << 3)
#define UMDEV_IRQ_SET_ACTION_UNMASK (1u << 4)
#define UMDEV_IRQ_SET_ACTION_TRIGGER (1u << 5)

/* VFIO IRQ info flags. */
#define UMDEV_IRQ_INFO_EVENTFD (1u << 0)
#define UMDEV_IRQ_INFO_MASKABLE (1u << 1)
#define UMDEV_IRQ_INFO_AUTOMASKED (1u << 2)
#define UMDEV_IRQ_INFO_NORESIZE (1u << 3)

/**
 * umdev_irq_new() - interrupt state for one function, everything disabled,
 * every MSI-X vector masked (the reset state of the table).
 * @err: -EINVAL for a bad vector count, -ENOMEM.
 * Caller owns the result; free with umdev_irq_free(). Control thread.
 */
umdev_irq *umdev_irq_new(const struct umdev_irq_config *cfg, int *err) UMDEV_WUR;

/** umdev_irq_free() - closes every eventfd. NULL is allowed. */
void umdev_irq_free(umdev_irq *irq);

/* ---- device side ---- */

/**
 * umdev_irq_trigger() - raise @vector (an MSI-X or MSI vector number; for
 * INTx only 0). Any thread, never blocks.
 * Return: 1 if an eventfd was signalled, 0 if the interrupt is held pending
 * (masked) or dropped (no eventfd, mode disabled), -EINVAL for a vector the
 * current mode does not have.
 */
int umdev_irq_trigger(umdev_irq *irq, unsigned vector) UMDEV_WUR;

/** umdev_irq_mode() - which mode the client enabled. Any thread. */
enum umdev_irq_mode umdev_irq_mode(const umdev_irq *irq);

/** umdev_irq_vectors() - vectors enabled in the current mode (0: none). */
unsigned umdev_irq_vectors(const umdev_irq *irq);

/** umdev_irq_masked() - @vector is masked now (vector or function mask). */
bool umdev_irq_masked(const umdev_irq *irq, unsigned vector);

/** umdev_irq_pending() - @vector has a held interrupt (MSI-X PBA bit, MSI/INTx). */
bool umdev_irq_pending(const umdev_irq *irq, unsigned vector);

/* ---- transport side (control thread) ---- */

/**
 * umdev_irq_info() - VFIO_DEVICE_GET_IRQ_INFO for @index: flags
 * (UMDEV_IRQ_INFO_*) and count (0 when the device lacks this kind).
 * -EINVAL for an index out of range.
 */
int umdev_irq_info(const umdev_irq *irq, unsigned index, uint32_t *flags, uint32_t *count)
	UMDEV_WUR;

/**
 * umdev_irq_set() - VFIO_DEVICE_SET_IRQS with the kernel's semantics:
 * - exactly one DATA_* and one ACTION_* flag;
 * - count 0 with DATA_NONE and ACTION_TRIGGER disables the whole index;
 * - DATA_EVENTFD with TRIGGER assigns @fds[0..count) to vectors start..,
 *   enabling the index (and disabling the other modes) if needed; @nfds == 0
 *   de-assigns those vectors (vfio-user's form of fd -1). @nfds must be 0 or
 *   @count. For INTx, DATA_EVENTFD with UNMASK assigns an unmask eventfd.
 * - DATA_NONE/BOOL with TRIGGER fires the vectors (the client's loopback);
 *   with MASK/UNMASK masks or unmasks them (INTx, and MSI-X per vector: a
 *   vector unmasked with a pending interrupt fires at once).
 * @bools: @count bytes with DATA_BOOL, else NULL.
 * Fds: on success every fd in @fds is owned by the layer and set to -1 in
 * the array; on failure the caller keeps them.
 * Return: 0, -EINVAL for a malformed request (bad flags, range), -ENOTTY
 * for an action the index does not support.
 */
int umdev_irq_set(umdev_irq *irq, unsigned index, uint32_t flags, uint32_t start, uint32_t count,
		  const uint8_t *bools, int *fds, unsigned nfds) UMDEV_WUR;

/**
 * umdev_irq_drop_fds() - the client went away: close every eventfd it gave
 * us and disable every index. Mask state, table contents and pending bits
 * are kept (device state survives a reconnect).
 */
void umdev_irq_drop_fds(umdev_irq *irq);

/**
 * umdev_irq_reset() - function reset: MSI-X table cleared with every vector
 * masked, pending bits and MSI state cleared, function mask off. Eventfds
 * stay assigned (the client owns them, as with VFIO).
 */
void umdev_irq_reset(umdev_irq *irq);

/* ---- PCI layer side (control thread) ---- */

/**
 * umdev_irq_msix_table_access() - read or write @len bytes (1, 2, 4 or 8,
 * naturally aligned) at @off in the MSI-X table. Out-of-table or misaligned
 * accesses read as all-ones and drop writes (-EINVAL returned so the caller
 * can log). Unmasking a pending vector fires it.
 */
int umdev_irq_msix_table_access(umdev_irq *irq, uint64_t off, void *buf, size_t len, bool write)
	UMDEV_WUR;

/** umdev_irq_msix_pba_read() - read the PBA (writes are ignored by callers). */
int umdev_irq_msix_pba_read(umdev_irq *irq, uint64_t off, void *buf, size_t len) UMDEV_WUR;

/** umdev_irq_msix_table_size() / _pba_size() - bytes the table and PBA span. */
uint64_t umdev_irq_msix_table_size(const umdev_irq *irq);
uint64_t umdev_irq_msix_pba_size(const umdev_irq *irq);

/**
 * umdev_irq_msix_control() - the guest wrote the MSI-X capability's message
 * control: function @enable and function @mask. Clearing the mask delivers
 * what is pending on unmasked vectors.
 */
void umdev_irq_msix_control(umdev_irq *irq, bool enable, bool mask);

/** umdev_irq_msi_mask() - the guest wrote the MSI per-vector mask bits. */
void umdev_irq_msi_mask(umdev_irq *irq, uint32_t mask);

/** umdev_irq_msi_pending_bits() - pending bits for the MSI capability. */
uint32_t umdev_irq_msi_pending_bits(const umdev_irq *irq);

/** umdev_irq_intx_disable() - the guest set/cleared Command.INTX_DISABLE. */
void umdev_irq_intx_disable(umdev_irq *irq, bool disable);

/** umdev_irq_intx_asserted() - INTx is asserted (Status.INTERRUPT). */
bool umdev_irq_intx_asserted(const umdev_irq *irq);

/* ---- vector binding (devices whose MSI-X is backed by other storage) ---- */

/*
 * Called when an MSI-X vector gains a trigger eventfd through SET_IRQS
 * (bind) and when it loses it (unbind: de-assigned, index disabled, mode
 * changed, client gone). A device backs its vectors with something scarce
 * here (an Interrupt Message Store entry). bind returning -errno fails the
 * SET_IRQS request (the vectors newly bound by it are unbound again and the
 * client keeps its fds). Control thread, never under the layer's lock: the
 * hooks may call the other functions of this header. Either may be NULL.
 */
struct umdev_irq_msix_hooks {
	int (*bind)(void *opaque, unsigned vector);
	void (*unbind)(void *opaque, unsigned vector);
	/*
	 * A bound vector's mask or message may have changed (SET_IRQS
	 * MASK/UNMASK, an MSI-X table write, the function mask): the device
	 * reads them again (umdev_irq_masked(), the table).
	 */
	void (*changed)(void *opaque, unsigned vector);
};

/** umdev_irq_set_msix_hooks() - install @h (borrowed, outlives @irq) or NULL. */
void umdev_irq_set_msix_hooks(umdev_irq *irq, const struct umdev_irq_msix_hooks *h, void *opaque);

/** umdev_irq_msix_bound() - @vector is bound (has its eventfd). Control thread. */
bool umdev_irq_msix_bound(const umdev_irq *irq, unsigned vector);

/*
 * Interrupt Message Store (src/irq/ims.c): a device-wide table of interrupt
 * messages shared by many functions, as Scalable IOV devices keep them.
 * Each entry holds the message (address/data as the guest programmed it), a
 * mask bit and a PASID permission (enable + PASID): a completion for a
 * PASID the entry does not allow must not be delivered through it.
 * Allocation and programming are for the control thread; the permission and
 * mask are single atomic words a data-plane thread reads without a lock.
 */
typedef struct umdev_ims umdev_ims;

#define UMDEV_IMS_MAX_ENTRIES 4096
#define UMDEV_IMS_PASID_MAX ((1u << 20) - 1) /* PASIDs are 20 bits */

struct umdev_ims_entry {
	uint64_t addr;
	uint32_t data;
	bool masked;
	bool pasid_en;
	uint32_t pasid;
	const void *owner; /* who allocated it (NULL: free) */
};

/** umdev_ims_new() - @n (1..UMDEV_IMS_MAX_ENTRIES) free entries; -EINVAL, -ENOMEM. */
umdev_ims *umdev_ims_new(unsigned n, int *err) UMDEV_WUR;
void umdev_ims_free(umdev_ims *ims);

/**
 * umdev_ims_alloc() - a free entry for @owner (non-NULL), reset to masked,
 * PASID disabled, zero message. Return: its index, or -ENOSPC when the
 * store is exhausted, -EINVAL for a NULL owner.
 */
int umdev_ims_alloc(umdev_ims *ims, const void *owner) UMDEV_WUR;

/** umdev_ims_release() - free entry @idx; -EINVAL if it is not allocated to @owner. */
int umdev_ims_release(umdev_ims *ims, unsigned idx, const void *owner) UMDEV_WUR;

/** umdev_ims_release_owner() - free every entry of @owner; returns how many. */
unsigned umdev_ims_release_owner(umdev_ims *ims, const void *owner);

/** umdev_ims_set_msg() / _set_mask() / _set_pasid() - program an allocated entry; -EINVAL otherwise. */
int umdev_ims_set_msg(umdev_ims *ims, unsigned idx, uint64_t addr, uint32_t data) UMDEV_WUR;
int umdev_ims_set_mask(umdev_ims *ims, unsigned idx, bool masked) UMDEV_WUR;
int umdev_ims_set_pasid(umdev_ims *ims, unsigned idx, bool enable, uint32_t pasid) UMDEV_WUR;

/** umdev_ims_get() - a copy of entry @idx (free entries too); -EINVAL out of range. */
int umdev_ims_get(umdev_ims *ims, unsigned idx, struct umdev_ims_entry *out) UMDEV_WUR;

/**
 * umdev_ims_pasid_allows() - a completion tagged @pasid may be delivered
 * through entry @idx: the entry is allocated and either its PASID check is
 * off or its PASID is @pasid. Any thread, lock-free.
 */
bool umdev_ims_pasid_allows(const umdev_ims *ims, unsigned idx, uint32_t pasid);

/** umdev_ims_size() / _num_free() - entries in all / not allocated. */
unsigned umdev_ims_size(const umdev_ims *ims);
unsigned umdev_ims_num_free(umdev_ims *ims);

#endif
