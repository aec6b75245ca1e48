/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupt emulation: INTx, MSI, MSI-X with VFIO SET_IRQS semantics and
 * masking enforced here (see include/umdev/irq.h).
 *
 * Who owns the MSI-X table: with kernel VFIO the host kernel programs the
 * physical table; with vfio-user a client such as QEMU usually emulates the
 * table itself and tells us about masking with SET_IRQS MASK/UNMASK. A
 * client may instead forward table accesses to our BAR. So the emulated
 * table's mask bits are honoured once a client has written the table
 * ("table_live"); before that only SET_IRQS masks and the function mask
 * apply. Otherwise a QEMU that never touches our table would see every
 * vector masked forever (the table's reset state).
 *
 * Client fds: a trigger fd comes from the client and is written by whatever
 * thread raises the interrupt (a data-plane loop, the control loop). Only an
 * eventfd is accepted (checked when it is assigned), and it is switched to
 * O_NONBLOCK: a counter the client saturated (0xfffffffffffffffe) makes our
 * write fail with EAGAIN instead of sleeping until the client reads, and an
 * unread counter already means "interrupt pending", so EAGAIN counts as
 * delivered. O_NONBLOCK is a property of the open file, shared with the
 * client; VMMs create their interrupt eventfds non-blocking anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "umdev/irq.h"
#include "util/fd.h"
#include "umdev/log.h"

struct msix_entry {
	uint32_t addr_lo;
	uint32_t addr_hi;
	uint32_t data;
	uint32_t ctrl;
};

struct umdev_irq {
	pthread_mutex_t lock; /* orders any-thread triggers with control-thread changes */
	struct umdev_irq_config cfg;
	enum umdev_irq_mode mode;
	unsigned nvec; /* vectors enabled in mode */
	unsigned nfds; /* entries in fds */
	int *fds; /* trigger eventfd per vector of the current mode, -1: none */
	int err_fd, req_fd;

	/* MSI-X */
	struct msix_entry *table;
	uint8_t *client_mask; /* SET_IRQS MASK per vector */
	uint8_t *pending; /* per vector; the PBA is built from it */
	uint8_t *bound; /* per vector: the hooks bound it (control thread) */
	const struct umdev_irq_msix_hooks *hooks;
	void *hooks_opaque;
	bool table_live;
	bool msix_enable, msix_fmask;

	/* MSI */
	uint32_t msi_mask, msi_pending;

	/* INTx */
	bool intx_masked, intx_pending, intx_disabled;
};

static void lock(const umdev_irq *irq)
{
	pthread_mutex_lock((pthread_mutex_t *)&irq->lock);
}

static void unlock(const umdev_irq *irq)
{
	pthread_mutex_unlock((pthread_mutex_t *)&irq->lock);
}

/* Write 1 to a trigger eventfd (non-blocking, see above). 1: raised, 0: not. */
static int signal_fd(int fd)
{
	uint64_t one = 1;

	if (fd < 0)
		return 0;
	/* EAGAIN: the counter is saturated, the client has an interrupt to read already. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return 0;
	return 1;
}

umdev_irq *umdev_irq_new(const struct umdev_irq_config *cfg, int *err)
{
	umdev_irq *irq;
	unsigned n;

	if (cfg->msi_vectors > UMDEV_IRQ_MAX_MSI ||
	    (cfg->msi_vectors & (cfg->msi_vectors - 1)) ||
	    cfg->msix_vectors > UMDEV_IRQ_MAX_MSIX) {
		*err = -EINVAL;
		return NULL;
	}
	irq = calloc(1, sizeof(*irq));
	if (!irq)
		goto nomem;
	pthread_mutex_init(&irq->lock, NULL);
	irq->cfg = *cfg;
	irq->err_fd = irq->req_fd = -1;
	n = cfg->msix_vectors > cfg->msi_vectors ? cfg->msix_vectors : cfg->msi_vectors;
	irq->nfds = n ? n : 1;
	irq->fds = malloc(sizeof(int) * irq->nfds);
	if (!irq->fds)
		goto nomem;
	for (unsigned i = 0; i < irq->nfds; i++)
		irq->fds[i] = -1;
	if (cfg->msix_vectors) {
		irq->table = calloc(cfg->msix_vectors, sizeof(*irq->table));
		irq->client_mask = calloc(cfg->msix_vectors, 1);
		irq->bound = calloc(cfg->msix_vectors, 1);
	}
	irq->pending = calloc(irq->nfds, 1);
	if (!irq->pending || (cfg->msix_vectors && (!irq->table || !irq->client_mask || !irq->bound)))
		goto nomem;
	umdev_irq_reset(irq);
	return irq;
nomem:
	umdev_irq_free(irq);
	*err = -ENOMEM;
	return NULL;
}

static void close_vector_fds(umdev_irq *irq)
{
	for (unsigned i = 0; i < irq->nfds; i++) {
		if (irq->fds[i] >= 0)
			close(irq->fds[i]);
		irq->fds[i] = -1;
	}
}

void umdev_irq_free(umdev_irq *irq)
{
	if (!irq)
		return;
	if (irq->fds)
		close_vector_fds(irq);
	if (irq->err_fd >= 0)
		close(irq->err_fd);
	if (irq->req_fd >= 0)
		close(irq->req_fd);
	pthread_mutex_destroy(&irq->lock);
	free(irq->fds);
	free(irq->table);
	free(irq->client_mask);
	free(irq->bound);
	free(irq->pending);
	free(irq);
}

/* Caller holds the lock. */
static bool masked_locked(const umdev_irq *irq, unsigned v)
{
	switch (irq->mode) {
	case UMDEV_IRQ_MODE_MSIX:
		if (v >= irq->cfg.msix_vectors)
			return true;
		return irq->msix_fmask || irq->client_mask[v] ||
		       (irq->table_live && (irq->table[v].ctrl & 1));
	case UMDEV_IRQ_MODE_MSI:
		return v >= irq->cfg.msi_vectors || (irq->msi_mask >> v) & 1;
	case UMDEV_IRQ_MODE_INTX:
		return irq->intx_masked || irq->intx_disabled;
	default:
		return false;
	}
}

/* Deliver @v now or hold it pending. Lock held. Returns 1 if signalled. */
static int fire_locked(umdev_irq *irq, unsigned v)
{
	if (masked_locked(irq, v)) {
		if (irq->mode == UMDEV_IRQ_MODE_MSI)
			irq->msi_pending |= 1u << v;
		else if (irq->mode == UMDEV_IRQ_MODE_INTX)
			irq->intx_pending = true;
		else
			irq->pending[v] = 1;
		return 0;
	}
	if (irq->mode == UMDEV_IRQ_MODE_INTX) {
		/* Level interrupt, automasked until the client unmasks (VFIO INTx). */
		irq->intx_masked = true;
		irq->intx_pending = false;
	}
	return signal_fd(irq->fds[v]);
}

/* After an unmask: deliver what is pending and now unmasked. Lock held. */
static void flush_pending_locked(umdev_irq *irq)
{
	switch (irq->mode) {
	case UMDEV_IRQ_MODE_MSIX:
		for (unsigned v = 0; v < irq->nvec; v++)
			if (irq->pending[v] && !masked_locked(irq, v)) {
				irq->pending[v] = 0;
				signal_fd(irq->fds[v]);
			}
		break;
	case UMDEV_IRQ_MODE_MSI:
		for (unsigned v = 0; v < irq->nvec; v++)
			if ((irq->msi_pending >> v & 1) && !masked_locked(irq, v)) {
				irq->msi_pending &= ~(1u << v);
				signal_fd(irq->fds[v]);
			}
		break;
	case UMDEV_IRQ_MODE_INTX:
		if (irq->intx_pending && !masked_locked(irq, 0))
			fire_locked(irq, 0);
		break;
	default:
		break;
	}
}

int umdev_irq_trigger(umdev_irq *irq, unsigned vector)
{
	int ret;

	lock(irq);
	if (irq->mode == UMDEV_IRQ_MODE_NONE) {
		/*
		 * No interrupt mode enabled: remember MSI-X vectors so a driver that
		 * enables MSI-X later still sees what it missed in the PBA.
		 */
		if (irq->cfg.msix_vectors && vector < irq->cfg.msix_vectors) {
			irq->pending[vector] = 1;
			ret = 0;
		} else {
			ret = vector < irq->nfds ? 0 : -EINVAL;
		}
	} else if (vector >= irq->nvec) {
		ret = -EINVAL;
	} else {
		ret = fire_locked(irq, vector);
	}
	unlock(irq);
	return ret;
}

enum umdev_irq_mode umdev_irq_mode(const umdev_irq *irq)
{
	enum umdev_irq_mode m;

	lock(irq);
	m = irq->mode;
	unlock(irq);
	return m;
}

unsigned umdev_irq_vectors(const umdev_irq *irq)
{
	unsigned n;

	lock(irq);
	n = irq->nvec;
	unlock(irq);
	return n;
}

bool umdev_irq_masked(const umdev_irq *irq, unsigned vector)
{
	bool m;

	lock(irq);
	m = masked_locked(irq, vector);
	unlock(irq);
	return m;
}

bool umdev_irq_pending(const umdev_irq *irq, unsigned vector)
{
	bool p = false;

	lock(irq);
	if (irq->mode == UMDEV_IRQ_MODE_MSI)
		p = vector < 32 && (irq->msi_pending >> vector & 1);
	else if (irq->mode == UMDEV_IRQ_MODE_INTX)
		p = vector == 0 && irq->intx_pending;
	else if (vector < irq->nfds && irq->cfg.msix_vectors)
		p = irq->pending[vector];
	unlock(irq);
	return p;
}

int umdev_irq_info(const umdev_irq *irq, unsigned index, uint32_t *flags, uint32_t *count)
{
	switch (index) {
	case UMDEV_IRQ_INTX:
		*count = irq->cfg.intx ? 1 : 0;
		*flags = UMDEV_IRQ_INFO_EVENTFD | UMDEV_IRQ_INFO_MASKABLE | UMDEV_IRQ_INFO_AUTOMASKED;
		return 0;
	case UMDEV_IRQ_MSI:
		*count = irq->cfg.msi_vectors;
		*flags = UMDEV_IRQ_INFO_EVENTFD | UMDEV_IRQ_INFO_MASKABLE | UMDEV_IRQ_INFO_NORESIZE;
		return 0;
	case UMDEV_IRQ_MSIX:
		*count = irq->cfg.msix_vectors;
		*flags = UMDEV_IRQ_INFO_EVENTFD | UMDEV_IRQ_INFO_MASKABLE;
		return 0;
	case UMDEV_IRQ_ERR:
		*count = irq->cfg.err ? 1 : 0;
		*flags = UMDEV_IRQ_INFO_EVENTFD;
		return 0;
	case UMDEV_IRQ_REQ:
		*count = irq->cfg.req ? 1 : 0;
		*flags = UMDEV_IRQ_INFO_EVENTFD;
		return 0;
	default:
		return -EINVAL;
	}
}

static enum umdev_irq_mode index_mode(unsigned index)
{
	return index == UMDEV_IRQ_INTX ? UMDEV_IRQ_MODE_INTX :
	       index == UMDEV_IRQ_MSI	? UMDEV_IRQ_MODE_MSI :
					  UMDEV_IRQ_MODE_MSIX;
}

/* Disable the current mode: close its eventfds. Lock held. */
static void disable_locked(umdev_irq *irq)
{
	close_vector_fds(irq);
	if (irq->mode == UMDEV_IRQ_MODE_INTX) {
		irq->intx_masked = false;
		irq->intx_pending = false;
	}
	irq->mode = UMDEV_IRQ_MODE_NONE;
	irq->nvec = 0;
}

static bool selected(uint32_t flags, const uint8_t *bools, uint32_t i)
{
	return (flags & UMDEV_IRQ_SET_DATA_NONE) || bools[i];
}

/* Assign (nfds == count) or de-assign (nfds == 0) trigger eventfds. Lock held. */
static void assign_fds_locked(umdev_irq *irq, uint32_t start, uint32_t count, int *fds,
			      unsigned nfds)
{
	for (uint32_t i = 0; i < count; i++) {
		int *slot = &irq->fds[start + i];

		if (*slot >= 0)
			close(*slot);
		*slot = -1;
		if (nfds) {
			*slot = fds[i];
			fds[i] = -1;
		}
	}
}

static int set_vectors(umdev_irq *irq, unsigned index, uint32_t flags, uint32_t start,
		       uint32_t count, const uint8_t *bools, int *fds, unsigned nfds, uint32_t max)
{
	enum umdev_irq_mode want = index_mode(index);
	uint32_t action = flags & ~7u;

	if (action == UMDEV_IRQ_SET_ACTION_TRIGGER) {
		if (count == 0) {
			if (irq->mode == want)
				disable_locked(irq);
			return 0;
		}
		if (flags & UMDEV_IRQ_SET_DATA_EVENTFD) {
			if (irq->mode != want && irq->mode != UMDEV_IRQ_MODE_NONE)
				return -EINVAL; /* one mode at a time, as VFIO */
			if (irq->mode == UMDEV_IRQ_MODE_NONE) {
				irq->mode = want;
				irq->nvec = 0;
				if (want == UMDEV_IRQ_MODE_INTX) {
					irq->intx_masked = false;
					irq->intx_pending = false;
				}
				if (want == UMDEV_IRQ_MODE_MSI)
					irq->msi_pending = 0;
			}
			if (want == UMDEV_IRQ_MODE_MSI && irq->nvec && start + count > irq->nvec)
				return -EINVAL; /* MSI cannot grow once enabled (NORESIZE) */
			if (start + count > irq->nvec)
				irq->nvec = start + count;
			assign_fds_locked(irq, start, count, fds, nfds);
			/* Interrupts held while no mode was enabled reach the driver now. */
			flush_pending_locked(irq);
			return 0;
		}
		if (irq->mode != want)
			return 0; /* kernel: a loopback trigger of a disabled index is a no-op */
		for (uint32_t i = 0; i < count; i++)
			if (selected(flags, bools, i) && start + i < irq->nvec)
				fire_locked(irq, start + i);
		return 0;
	}
	/* MASK / UNMASK */
	if (flags & UMDEV_IRQ_SET_DATA_EVENTFD)
		return -ENOTTY; /* unmask/mask eventfds (resample) are not offered */
	(void)max;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t v = start + i;
		bool m = action == UMDEV_IRQ_SET_ACTION_MASK;

		if (!selected(flags, bools, i))
			continue;
		if (index == UMDEV_IRQ_INTX) {
			if (irq->mode == UMDEV_IRQ_MODE_INTX)
				irq->intx_masked = m;
		} else if (index == UMDEV_IRQ_MSIX) {
			irq->client_mask[v] = m;
		} else {
			irq->msi_mask = m ? irq->msi_mask | 1u << v : irq->msi_mask & ~(1u << v);
		}
	}
	if (action == UMDEV_IRQ_SET_ACTION_UNMASK)
		flush_pending_locked(irq);
	return 0;
}

/*
 * Vector binding hooks. Only the control thread changes mode and fds, so it
 * may read them here without the lock, and the hooks run unlocked (they may
 * read the MSI-X table). A request that assigns eventfds binds its new
 * vectors first, so a bind failure (say an exhausted IMS) refuses the whole
 * request before anything changed; unbinding follows every change.
 */
void umdev_irq_set_msix_hooks(umdev_irq *irq, const struct umdev_irq_msix_hooks *h, void *opaque)
{
	irq->hooks = h;
	irq->hooks_opaque = opaque;
}

bool umdev_irq_msix_bound(const umdev_irq *irq, unsigned vector)
{
	return vector < irq->cfg.msix_vectors && irq->bound[vector];
}

static bool wants_bound(const umdev_irq *irq, unsigned v)
{
	return irq->mode == UMDEV_IRQ_MODE_MSIX && v < irq->nfds && irq->fds[v] >= 0;
}

/* Tell the device that bound vectors [@first, @first + @n) may have changed. */
static void notify_changed(umdev_irq *irq, unsigned first, unsigned n)
{
	if (!irq->hooks || !irq->hooks->changed)
		return;
	for (unsigned v = first; v < first + n && v < irq->cfg.msix_vectors; v++)
		if (irq->bound[v])
			irq->hooks->changed(irq->hooks_opaque, v);
}

static void unbind_stale(umdev_irq *irq)
{
	for (unsigned v = 0; v < irq->cfg.msix_vectors; v++) {
		if (!irq->bound[v] || wants_bound(irq, v))
			continue;
		irq->bound[v] = 0;
		if (irq->hooks && irq->hooks->unbind)
			irq->hooks->unbind(irq->hooks_opaque, v);
	}
}

static int bind_new(umdev_irq *irq, unsigned index, uint32_t flags, uint32_t start,
		    uint32_t count, unsigned nfds)
{
	int ret = 0;
	uint32_t i;

	if (!irq->hooks || !irq->hooks->bind || index != UMDEV_IRQ_MSIX || !nfds ||
	    !(flags & UMDEV_IRQ_SET_DATA_EVENTFD) || !(flags & UMDEV_IRQ_SET_ACTION_TRIGGER) ||
	    (irq->mode != UMDEV_IRQ_MODE_NONE && irq->mode != UMDEV_IRQ_MODE_MSIX))
		return 0;
	for (i = 0; i < count; i++) {
		if (irq->bound[start + i])
			continue;
		ret = irq->hooks->bind(irq->hooks_opaque, start + i);
		if (ret < 0)
			break;
		irq->bound[start + i] = 2; /* new in this request */
	}
	for (uint32_t k = 0; k < i; k++) {
		if (irq->bound[start + k] != 2)
			continue;
		irq->bound[start + k] = ret < 0 ? 0 : 1;
		if (ret < 0 && irq->hooks->unbind)
			irq->hooks->unbind(irq->hooks_opaque, start + k);
	}
	return ret;
}

int umdev_irq_set(umdev_irq *irq, unsigned index, uint32_t flags, uint32_t start, uint32_t count,
		  const uint8_t *bools, int *fds, unsigned nfds)
{
	uint32_t data = flags & 7u, action = flags & ~7u, max, iflags;
	int ret;

	if (umdev_irq_info(irq, index, &iflags, &max) < 0)
		return -EINVAL;
	if (__builtin_popcount(data) != 1 || __builtin_popcount(action) != 1 ||
	    (action & ~(UMDEV_IRQ_SET_ACTION_MASK | UMDEV_IRQ_SET_ACTION_UNMASK |
			UMDEV_IRQ_SET_ACTION_TRIGGER)))
		return -EINVAL;
	/* count 0 is only the "disable everything" form. */
	if (count == 0) {
		if (data != UMDEV_IRQ_SET_DATA_NONE || action != UMDEV_IRQ_SET_ACTION_TRIGGER)
			return -EINVAL;
	} else if (start >= max || count > max - start) {
		return -EINVAL;
	}
	if (data == UMDEV_IRQ_SET_DATA_BOOL && !bools)
		return -EINVAL;
	if (data == UMDEV_IRQ_SET_DATA_EVENTFD) {
		if (nfds != 0 && nfds != count)
			return -EINVAL;
		for (unsigned i = 0; i < nfds; i++) {
			if (fds[i] < 0)
				return -EINVAL;
			/* Only an eventfd, made non-blocking (see the top of this file). */
			ret = umdev_fd_prepare_eventfd(fds[i]);
			if (ret < 0)
				return ret == -EBADFD ? -EINVAL : ret;
		}
	} else if (nfds) {
		return -EINVAL;
	}

	ret = bind_new(irq, index, flags, start, count, nfds);
	if (ret < 0)
		return ret;
	lock(irq);
	if (index == UMDEV_IRQ_ERR || index == UMDEV_IRQ_REQ) {
		int *slot = index == UMDEV_IRQ_ERR ? &irq->err_fd : &irq->req_fd;

		if (action != UMDEV_IRQ_SET_ACTION_TRIGGER) {
			ret = -ENOTTY;
		} else if (data == UMDEV_IRQ_SET_DATA_EVENTFD || count == 0) {
			if (*slot >= 0)
				close(*slot);
			*slot = -1;
			if (nfds) {
				*slot = fds[0];
				fds[0] = -1;
			}
			ret = 0;
		} else {
			if (selected(flags, bools, 0))
				signal_fd(*slot);
			ret = 0;
		}
	} else if (index == UMDEV_IRQ_INTX && action == UMDEV_IRQ_SET_ACTION_TRIGGER &&
		   data == UMDEV_IRQ_SET_DATA_EVENTFD && nfds == 0) {
		/* fd -1 for INTx disables it altogether (kernel semantics). */
		if (irq->mode == UMDEV_IRQ_MODE_INTX)
			disable_locked(irq);
		ret = 0;
	} else {
		ret = set_vectors(irq, index, flags, start, count, bools, fds, nfds, max);
	}
	unlock(irq);
	unbind_stale(irq);
	if (ret == 0 && index == UMDEV_IRQ_MSIX && count &&
	    (action == UMDEV_IRQ_SET_ACTION_MASK || action == UMDEV_IRQ_SET_ACTION_UNMASK))
		notify_changed(irq, start, count);
	return ret;
}

void umdev_irq_drop_fds(umdev_irq *irq)
{
	lock(irq);
	disable_locked(irq);
	if (irq->err_fd >= 0)
		close(irq->err_fd);
	if (irq->req_fd >= 0)
		close(irq->req_fd);
	irq->err_fd = irq->req_fd = -1;
	unlock(irq);
	unbind_stale(irq);
}

void umdev_irq_reset(umdev_irq *irq)
{
	lock(irq);
	for (unsigned v = 0; v < irq->cfg.msix_vectors; v++) {
		irq->table[v] = (struct msix_entry){ .ctrl = 1 };
		irq->client_mask[v] = 0;
	}
	memset(irq->pending, 0, irq->nfds);
	irq->table_live = false;
	irq->msix_enable = irq->msix_fmask = false;
	irq->msi_mask = irq->msi_pending = 0;
	irq->intx_pending = false;
	irq->intx_disabled = false;
	unlock(irq);
}

uint64_t umdev_irq_msix_table_size(const umdev_irq *irq)
{
	return (uint64_t)irq->cfg.msix_vectors * 16;
}

uint64_t umdev_irq_msix_pba_size(const umdev_irq *irq)
{
	return ((uint64_t)irq->cfg.msix_vectors + 63) / 64 * 8;
}

static bool access_ok(uint64_t off, size_t len, uint64_t size)
{
	return (len == 1 || len == 2 || len == 4 || len == 8) && !(off & (len - 1)) &&
	       off < size && len <= size - off;
}

int umdev_irq_msix_table_access(umdev_irq *irq, uint64_t off, void *buf, size_t len, bool write)
{
	uint8_t *raw;

	if (!access_ok(off, len, umdev_irq_msix_table_size(irq))) {
		if (!write)
			memset(buf, 0xff, len);
		return -EINVAL;
	}
	lock(irq);
	raw = (uint8_t *)irq->table + off;
	if (!write) {
		memcpy(buf, raw, len);
	} else {
		unsigned v = off / 16;
		uint32_t old_ctrl = irq->table[v].ctrl;

		memcpy(raw, buf, len);
		/* Only the mask bit of Vector Control is writable. */
		irq->table[v].ctrl &= 1;
		irq->table_live = true;
		if ((old_ctrl & 1) && !(irq->table[v].ctrl & 1))
			flush_pending_locked(irq);
	}
	unlock(irq);
	if (write)
		notify_changed(irq, (unsigned)(off / 16), 1);
	return 0;
}

int umdev_irq_msix_pba_read(umdev_irq *irq, uint64_t off, void *buf, size_t len)
{
	uint8_t bytes[8];

	if (!access_ok(off, len, umdev_irq_msix_pba_size(irq))) {
		memset(buf, 0xff, len);
		return -EINVAL;
	}
	lock(irq);
	for (unsigned b = 0; b < len; b++) {
		uint8_t v = 0;

		for (unsigned bit = 0; bit < 8; bit++) {
			uint64_t vec = (off + b) * 8 + bit;

			if (vec < irq->cfg.msix_vectors && irq->pending[vec])
				v |= 1u << bit;
		}
		bytes[b] = v;
	}
	unlock(irq);
	memcpy(buf, bytes, len);
	return 0;
}

void umdev_irq_msix_control(umdev_irq *irq, bool enable, bool mask)
{
	lock(irq);
	irq->msix_enable = enable;
	irq->msix_fmask = mask;
	if (!mask)
		flush_pending_locked(irq);
	unlock(irq);
	notify_changed(irq, 0, irq->cfg.msix_vectors);
}

void umdev_irq_msi_mask(umdev_irq *irq, uint32_t mask)
{
	lock(irq);
	irq->msi_mask = irq->cfg.msi_vectors >= 32 ? mask : mask & ((1u << irq->cfg.msi_vectors) - 1);
	flush_pending_locked(irq);
	unlock(irq);
}

uint32_t umdev_irq_msi_pending_bits(const umdev_irq *irq)
{
	uint32_t p;

	lock(irq);
	p = irq->msi_pending;
	unlock(irq);
	return p;
}

void umdev_irq_intx_disable(umdev_irq *irq, bool disable)
{
	lock(irq);
	irq->intx_disabled = disable;
	if (!disable)
		flush_pending_locked(irq);
	unlock(irq);
}

bool umdev_irq_intx_asserted(const umdev_irq *irq)
{
	bool a;

	lock(irq);
	a = irq->mode == UMDEV_IRQ_MODE_INTX && (irq->intx_pending || irq->intx_masked);
	unlock(irq);
	return a;
}
