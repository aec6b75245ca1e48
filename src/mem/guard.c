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
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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
	uintptr_t start; /* atomic; 0: free */
	size_t len;
	unsigned sink; /* GUARD_MAX_SINKS: none */
	unsigned gen; /* the sink's generation when registered */
};

/* Where a fault is reported: one per address space. */
struct sink {
	unsigned gen; /* atomic; bumped on release, so stale ranges report nowhere */
	int pending; /* atomic; set by the handler, cleared by the control loop */
	int faulted; /* atomic; set by the handler, stays until the sink is freed */
	bool used;
	void (*cb)(void *opaque);
	void *opaque;
};

static struct range ranges[GUARD_MAX_RANGES];
static struct sink sinks[GUARD_MAX_SINKS];
static unsigned ranges_hwm; /* atomic: ranges[0, hwm) may be in use */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static int event_fd = -1;
static umdev_loop *ctl_loop;
static struct sigaction old_action;
static __thread unsigned long thread_faults;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	unsigned n = __atomic_load_n(&ranges_hwm, __ATOMIC_ACQUIRE);
	int saved_errno = errno;

	for (unsigned i = 0; i < n; i++) {
		struct range *r = &ranges[i];
		uintptr_t s = __atomic_load_n(&r->start, __ATOMIC_ACQUIRE);
		static const uint64_t one = 1;

		if (!s || a - s >= r->len)
			continue;
		if (mmap((void *)s, r->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
			break;
		thread_faults++;
		if (r->sink < GUARD_MAX_SINKS &&
		    __atomic_load_n(&sinks[r->sink].gen, __ATOMIC_ACQUIRE) == r->gen)
		{
			__atomic_store_n(&sinks[r->sink].faulted, 1, __ATOMIC_RELEASE);
			__atomic_store_n(&sinks[r->sink].pending, 1, __ATOMIC_RELEASE);
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

		if (!__atomic_exchange_n(&k->pending, 0, __ATOMIC_ACQ_REL))
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
			__atomic_store_n(&sinks[i].pending, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&sinks[i].faulted, 0, __ATOMIC_RELAXED);
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
	return id >= 0 && __atomic_load_n(&sinks[id].faulted, __ATOMIC_ACQUIRE);
}

void mem_guard_sink_free(int id)
{
	if (id < 0)
		return;
	pthread_mutex_lock(&table_lock);
	__atomic_add_fetch(&sinks[id].gen, 1, __ATOMIC_RELEASE);
	sinks[id].used = false;
	sinks[id].cb = NULL;
	__atomic_store_n(&sinks[id].pending, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&table_lock);
}

int mem_guard_range_add(int sink, void *addr, size_t len)
{
	int id = -1;

	pthread_mutex_lock(&table_lock);
	for (unsigned i = 0; i < GUARD_MAX_RANGES; i++) {
		struct range *r = &ranges[i];

		if (__atomic_load_n(&r->start, __ATOMIC_RELAXED))
			continue;
		r->len = len;
		r->sink = sink >= 0 ? (unsigned)sink : GUARD_MAX_SINKS;
		r->gen = sink >= 0 ? __atomic_load_n(&sinks[sink].gen, __ATOMIC_RELAXED) : 0;
		if (i >= ranges_hwm)
			__atomic_store_n(&ranges_hwm, i + 1, __ATOMIC_RELEASE);
		__atomic_store_n(&r->start, (uintptr_t)addr, __ATOMIC_RELEASE);
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
	__atomic_store_n(&ranges[id].start, 0, __ATOMIC_RELEASE);
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
