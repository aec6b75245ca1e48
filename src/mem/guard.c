/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest memory that shrinks under us.
 *
 * A client gives us fds to map (guest RAM, DMA windows, inflight regions).
 * It can truncate such a file after we mapped it: a memfd it did not seal,
 * or a hugetlbfs file (which cannot be sealed). The next access to a page
 * past the new end raises SIGBUS in whichever thread makes it, a data-plane
 * thread in the middle of a ring walk or a memcpy, and by default the whole
 * process dies with every other client's device.
 *
 * Checking before each access cannot work (the file can shrink between the
 * check and the access), and a jump point around every access would cost the
 * data path and leave half-done requests. Instead each mapping of client
 * memory is registered here, and a SIGBUS handler that finds the faulting
 * address inside one replaces that whole mapping, in place, with private
 * anonymous memory (MAP_FIXED: same addresses, reads as zero). The access
 * that faulted then completes on the zero pages, no thread is interrupted,
 * and no lock is needed anywhere. The mapping's address space is marked, and
 * its owner (the transport) is told on the control loop, where it fails the
 * device and drops the client: what the device reads from then on is zeros,
 * and what it writes is lost with the memory the client took away.
 *
 * A SIGBUS at an address that is not client memory is a bug of ours: the
 * handler restores the previous action and returns, so the access faults
 * again and the process dies as it would have.
 *
 * The tables are fixed arrays so the handler can read them without locks:
 * a range is published by storing its start last (release) and withdrawn by
 * clearing the start first, and is only withdrawn when no thread can access
 * it any more (its last map reference is gone), so the handler never remaps
 * memory that has been unmapped.
 *
 * The handler touches only <stdatomic.h> objects that are lock-free (checked
 * below at compile time): C11 allows such atomics in a signal handler, and a
 * lock-based fallback could deadlock against the thread it interrupted.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem_internal.h"
#include "umdev/log.h"

#define GUARD_MAX_RANGES 16384
#define GUARD_MAX_SINKS 4096

struct range {
	_Atomic uintptr_t start; /* 0: free */
	size_t len;
	unsigned sink; /* GUARD_MAX_SINKS: none */
	unsigned gen; /* the sink's generation when registered */
};

/* Where a fault is reported: one per address space. */
struct sink {
	atomic_uint gen; /* bumped on release, so stale ranges report nowhere */
	atomic_int pending; /* set by the handler, cleared by the control loop */
	atomic_int faulted; /* set by the handler, stays until the sink is freed */
	bool used;
	void (*cb)(void *opaque);
	void *opaque;
};

static struct range ranges[GUARD_MAX_RANGES];
static struct sink sinks[GUARD_MAX_SINKS];
static atomic_uint ranges_hwm; /* ranges[0, hwm) may be in use */

/* What on_sigbus reads and writes must be lock-free to be async-signal-safe. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "int atomics must be lock-free");
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && sizeof(uintptr_t) == sizeof(long),
	       "uintptr_t atomics must be lock-free");
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static int event_fd = -1;
static umdev_loop *ctl_loop;
static struct sigaction old_action;
static __thread unsigned long thread_faults;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	unsigned n = atomic_load_explicit(&ranges_hwm, memory_order_acquire);
	int saved_errno = errno;

	for (unsigned i = 0; i < n; i++) {
		struct range *r = &ranges[i];
		uintptr_t s = atomic_load_explicit(&r->start, memory_order_acquire);
		static const uint64_t one = 1;

		if (!s || a - s >= r->len)
			continue;
		if (mmap((void *)s, r->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
			break;
		thread_faults++;
		if (r->sink < GUARD_MAX_SINKS &&
		    atomic_load_explicit(&sinks[r->sink].gen, memory_order_acquire) == r->gen)
		{
			atomic_store_explicit(&sinks[r->sink].faulted, 1, memory_order_release);
			atomic_store_explicit(&sinks[r->sink].pending, 1, memory_order_release);
		}
		if (event_fd >= 0 && write(event_fd, &one, sizeof(one)) < 0) {
			/* a saturated counter is still readable: the loop will look */
		}
		errno = saved_errno;
		return;
	}
	/* Not client memory: fault again under the previous action. */
	sigaction(SIGBUS, &old_action, NULL);
	errno = saved_errno;
}

/* Control loop: tell the owners of faulted address spaces. */
static void on_event(void *opaque, uint32_t events)
{
	uint64_t v;

	if (read(event_fd, &v, sizeof(v)) < 0) {
		/* spurious wake-up */
	}
	for (unsigned i = 0; i < GUARD_MAX_SINKS; i++) {
		struct sink *k = &sinks[i];
		void (*cb)(void *);
		void *op;

		if (!atomic_exchange_explicit(&k->pending, 0, memory_order_acq_rel))
			continue;
		pthread_mutex_lock(&table_lock);
		cb = k->used ? k->cb : NULL;
		op = k->opaque;
		pthread_mutex_unlock(&table_lock);
		if (cb)
			cb(op);
	}
}

int umdev_mem_guard_init(umdev_loop *ctl)
{
	struct sigaction sa;
	int ret;

	if (event_fd >= 0)
		return -EALREADY;
	event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (event_fd < 0)
		return -errno;
	ret = umdev_loop_add_fd(ctl, event_fd, EPOLLIN, on_event, NULL);
	if (ret < 0) {
		close(event_fd);
		event_fd = -1;
		return ret;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &old_action) < 0) {
		ret = -errno;
		umdev_loop_del_fd(ctl, event_fd);
		close(event_fd);
		event_fd = -1;
		return ret;
	}
	ctl_loop = ctl;
	return 0;
}

void umdev_mem_guard_fini(void)
{
	if (event_fd < 0)
		return;
	sigaction(SIGBUS, &old_action, NULL);
	umdev_loop_del_fd(ctl_loop, event_fd);
	close(event_fd);
	event_fd = -1;
	ctl_loop = NULL;
}

unsigned long umdev_mem_fault_count(void)
{
	return thread_faults;
}

int mem_guard_sink_new(void)
{
	int id = -1;

	pthread_mutex_lock(&table_lock);
	for (unsigned i = 0; i < GUARD_MAX_SINKS; i++) {
		if (!sinks[i].used) {
			sinks[i].used = true;
			sinks[i].cb = NULL;
			sinks[i].opaque = NULL;
			atomic_store_explicit(&sinks[i].pending, 0, memory_order_relaxed);
			atomic_store_explicit(&sinks[i].faulted, 0, memory_order_relaxed);
			id = (int)i;
			break;
		}
	}
	pthread_mutex_unlock(&table_lock);
	return id;
}

void mem_guard_sink_set_cb(int id, void (*cb)(void *opaque), void *opaque)
{
	if (id < 0)
		return;
	pthread_mutex_lock(&table_lock);
	sinks[id].cb = cb;
	sinks[id].opaque = opaque;
	pthread_mutex_unlock(&table_lock);
}

bool mem_guard_sink_faulted(int id)
{
	return id >= 0 && atomic_load_explicit(&sinks[id].faulted, memory_order_acquire);
}

void mem_guard_sink_free(int id)
{
	if (id < 0)
		return;
	pthread_mutex_lock(&table_lock);
	atomic_fetch_add_explicit(&sinks[id].gen, 1, memory_order_release);
	sinks[id].used = false;
	sinks[id].cb = NULL;
	atomic_store_explicit(&sinks[id].pending, 0, memory_order_relaxed);
	pthread_mutex_unlock(&table_lock);
}

int mem_guard_range_add(int sink, void *addr, size_t len)
{
	int id = -1;

	pthread_mutex_lock(&table_lock);
	for (unsigned i = 0; i < GUARD_MAX_RANGES; i++) {
		struct range *r = &ranges[i];

		if (atomic_load_explicit(&r->start, memory_order_relaxed))
			continue;
		r->len = len;
		r->sink = sink >= 0 ? (unsigned)sink : GUARD_MAX_SINKS;
		r->gen = sink >= 0 ? atomic_load_explicit(&sinks[sink].gen, memory_order_relaxed) : 0;
		if (i >= atomic_load_explicit(&ranges_hwm, memory_order_relaxed))
			atomic_store_explicit(&ranges_hwm, i + 1, memory_order_release);
		atomic_store_explicit(&r->start, (uintptr_t)addr, memory_order_release);
		id = (int)i;
		break;
	}
	pthread_mutex_unlock(&table_lock);
	if (id < 0)
		umdev_warn("guest memory guard: more than %u client mappings; a client that "
			   "shrinks this one can crash the process", GUARD_MAX_RANGES);
	return id;
}

void mem_guard_range_del(int id)
{
	if (id < 0)
		return;
	pthread_mutex_lock(&table_lock);
	atomic_store_explicit(&ranges[id].start, 0, memory_order_release);
	pthread_mutex_unlock(&table_lock);
}

int umdev_as_guard_add(umdev_as *as, void *addr, size_t len)
{
	uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)addr & ~(ps - 1);
	size_t l = ((uintptr_t)addr + len + ps - 1) / ps * ps - a;

	return mem_guard_range_add(as->guard_sink, (void *)a, l);
}

void umdev_as_guard_del(int id)
{
	mem_guard_range_del(id);
}

void umdev_as_set_fault_cb(umdev_as *as, void (*cb)(void *opaque), void *opaque)
{
	mem_guard_sink_set_cb(as->guard_sink, cb, opaque);
}

bool umdev_as_map_faulted(const umdev_as_map *m)
{
	return m && mem_guard_sink_faulted(m->guard_sink);
}
