/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ring stress: a driver thread (src/client/virtq_drv.c, plus the interrupt
 * suppression a guest driver does) and a device thread (the real umdev_vq
 * split ring) share one ring with no lock between them, for a million or
 * more requests, sleeping on eventfds (kick and call) whenever the other
 * side has not produced work yet, exactly as a guest and umdevd do.
 *
 * What a request carries, and what is checked:
 * - The driver writes a request buffer (sequence number + a pattern derived
 *   from it) with plain stores, then publishes the chain. The device checks
 *   that requests arrive in submission order, none skipped or repeated, and
 *   that every byte is the one the driver wrote: a device that read the
 *   avail entry or the buffer before the avail idx that published them
 *   (missing acquire) would see a stale sequence number or pattern.
 * - The device writes a response (sequence number + pattern + a length that
 *   varies) into the writable buffer and pushes completions of a batch in
 *   reverse order. The driver checks each used entry names an outstanding
 *   head, carries the right length and response bytes: a device that
 *   published used idx before the entry or the data (missing release) would
 *   hand the driver a stale head (-EPROTO here) or stale bytes.
 * - Notifications: with EVENT_IDX (used_event/avail_event) and with the
 *   flags (VIRTQ_USED_F_NO_NOTIFY, VIRTQ_AVAIL_F_NO_INTERRUPT). Both sides
 *   sleep only after re-checking the ring behind a full fence; if either
 *   side's store-to-load fence were missing (publish idx, then read the
 *   peer's suppression field) both could decide the other will act and
 *   sleep: the test then stops making progress, prints the ring state every
 *   few seconds so the log shows the lost wakeup, and meson's timeout fails
 *   it. Every request completing exactly once is asserted at the end.
 *
 * What it can catch where, and what it did catch (2-core x86-64 host shared
 * with other jobs, 2M + 1M requests a run):
 * - Natively on x86-64: compiler reordering around the accessors, and the
 *   store-to-load reordering x86 does in hardware. Tried by hand, with
 *   driver and device pinned to different CPUs (pin_to): split_push
 *   storing used idx (relaxed) before the used element failed 6 runs in 6
 *   ("completion for request N: response names 0" or "used ring named a
 *   head not in flight"; before the threads were pinned, 1 run in 12).
 *   With the fence in split_need_notify removed, 0 runs in 15 hung: that
 *   window (a store still in the store buffer while the peer goes to
 *   sleep) is nanoseconds wide once per sleep, so for the fences a pass is
 *   evidence, not proof; their need is argued rule by rule in
 *   docs/architecture.md ("Ordering of shared memory"). Load-load and
 *   store-store reordering does not happen on x86 at all, so there a
 *   missing acquire/release shows only when the compiler exploits it.
 * - Under qemu-aarch64 (the arm64 cross build): the aarch64 code the
 *   compiler emits for the accessors, including its reordering freedom.
 *   But qemu-user's TCG runs the guest's loads and stores as host loads
 *   and stores with x86's ordering (a guest barrier becomes a host fence,
 *   nothing weaker is emulated), so arm64's hardware reordering is not
 *   reproduced: that needs a run on a real arm64 host (the same test
 *   binary: `meson test virtio-vq-stress` there). Tried by hand under
 *   qemu-aarch64: used idx stored before the used element, 3 runs in 3
 *   failed; the used idx store merely weakened from release to relaxed
 *   (program order kept, the bug only arm64 hardware would show), 0 in 3.
 *
 * The request count comes from UMDEV_VQ_STRESS_REQUESTS (tests/virtio/
 * meson.build sets fewer for the emulated and sanitizer builds).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/shm.h"
#include "vq_fixture.h"

#define RING_SIZE 256
#define SLOTS 96 /* requests in flight at most (2-3 descriptors each) */
#define REQ_LEN 48
#define RESP_LEN 64
#define SLOT_BYTES 256 /* request at 0, response at 128 */
#define IND_BYTES 64 /* room for 3 indirect descriptors per slot */
#define DEV_BATCH 16
#define STALL_MS 5000
/* Polls of an empty ring before sleeping, as a busy-polling back-end and a
 * NAPI-style driver do: it keeps both threads on a CPU at once, which is
 * when data ordering bugs show, while sleeping at once exercises the
 * notifications. Both sides alternate: phases of 4096 requests each. */
#define SPIN 4000
#define DEFAULT_REQUESTS 2000000ull

struct stress {
	struct fx *f;
	uint64_t total;
	int kick_fd;
	bool event_idx;
	/* device thread's results, read after join */
	_Atomic uint64_t dev_done; /* requests the device has completed */
	uint64_t calls;
	char dev_err[160];
	/* driver side */
	uint64_t kicks;
	uint64_t cb_waits;
	unsigned head_slot[RING_SIZE]; /* the driver's own head -> buffer slot */
	atomic_bool stop; /* set by the driver on failure; the device thread exits */
};

static uint8_t pat(uint64_t seq, unsigned i, uint8_t salt)
{
	uint64_t x = (seq + 1) * 0x9e3779b97f4a7c15ull + i * 0x100000001b3ull + salt;

	return (uint8_t)(x >> 56 ^ x >> 17);
}

static uint32_t resp_len(uint64_t seq)
{
	return RESP_LEN - (uint32_t)(seq % 8) * 4;
}

/* True while an idle side should poll again rather than sleep: in odd
 * phases (by its request @count) up to SPIN times, yielding now and then. */
static bool keep_polling(unsigned *idle, uint64_t count)
{
	if (++*idle < ((count >> 12) & 1 ? SPIN : 0)) {
		if (*idle % 64 == 0)
			sched_yield();
		return true;
	}
	*idle = 0;
	return false;
}

static uint64_t slot_gpa(unsigned slot)
{
	return BUF_GPA + (uint64_t)slot * SLOT_BYTES;
}

static void wait_fd(int fd, const char *who, struct stress *s)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	while (poll(&p, 1, STALL_MS) == 0) {
		/* No assertion on time: a report, so a hang shows where it stalled. */
		struct umdev_vqd *d = &s->f->d;

		fprintf(stderr,
			"stress: %s waiting %d ms: avail idx %u used idx %u "
			"used_event %u avail_event %u avail flags %#x used flags %#x "
			"device done %" PRIu64 "\n",
			who, STALL_MS, umdev_shm_ld16(&d->avail->idx), umdev_shm_ld16(&d->used->idx),
			umdev_shm_ld16(&d->avail->ring[d->size]),
			umdev_shm_ld16(&d->used->ring[d->size]), umdev_shm_ld16(&d->avail->flags),
			umdev_shm_ld16(&d->used->flags),
			atomic_load_explicit(&s->dev_done, memory_order_relaxed));
	}
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		fprintf(stderr, "stress: %s: read eventfd: %s\n", who, strerror(errno));
}

/* Put the calling thread on the @nth CPU it may use (if there are two):
 * driver and device on different CPUs run at the same instant more often,
 * which is when ordering bugs show. Best effort: no CPU set, no pinning. */
static void pin_to(unsigned nth)
{
	cpu_set_t set;
	unsigned seen = 0;

	if (sched_getaffinity(0, sizeof(set), &set) || CPU_COUNT(&set) < 2)
		return;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set) || seen++ != nth)
			continue;
		CPU_ZERO(&set);
		CPU_SET(c, &set);
		(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		return;
	}
}

/* ---- device thread: the real umdev_vq ---- */

static int dev_check(struct stress *s, const struct umdev_vq_elem *e, uint64_t want)
{
	uint8_t req[REQ_LEN];
	uint64_t seq;
	size_t off = 0;

	if (e->out_len != REQ_LEN || e->in_len != RESP_LEN)
		return snprintf(s->dev_err, sizeof(s->dev_err),
				"request %" PRIu64 ": lengths out %" PRIu64 " in %" PRIu64, want,
				e->out_len, e->in_len);
	for (unsigned i = 0; i < e->n_out; i++) {
		memcpy(req + off, e->iov[i].iov_base, e->iov[i].iov_len);
		off += e->iov[i].iov_len;
	}
	memcpy(&seq, req, sizeof(seq));
	if (seq != want)
		return snprintf(s->dev_err, sizeof(s->dev_err),
				"request %" PRIu64 " arrived as %" PRIu64 " (lost or duplicated)",
				want, seq);
	for (unsigned i = sizeof(seq); i < REQ_LEN; i++)
		if (req[i] != pat(seq, i, 0x5a))
			return snprintf(s->dev_err, sizeof(s->dev_err),
					"request %" PRIu64 ": byte %u corrupted", seq, i);
	return 0;
}

static void dev_respond(const struct umdev_vq_elem *e, uint64_t seq)
{
	uint8_t resp[RESP_LEN];
	uint32_t len = resp_len(seq);
	size_t off = 0;

	memcpy(resp, &seq, sizeof(seq));
	for (unsigned i = sizeof(seq); i < RESP_LEN; i++)
		resp[i] = pat(seq, i, 0xa5);
	for (unsigned i = e->n_out; i < e->n_out + e->n_in && off < len; i++) {
		size_t n = e->iov[i].iov_len < len - off ? e->iov[i].iov_len : len - off;

		memcpy(e->iov[i].iov_base, resp + off, n);
		off += n;
	}
}

static void *dev_thread(void *arg)
{
	struct stress *s = arg;
	umdev_vq *vq = s->f->vq;
	struct iovec iov[DEV_BATCH][4];
	struct umdev_vq_elem e[DEV_BATCH];
	uint64_t seq = 0;
	unsigned idle = 0;

	pin_to(1);
	umdev_vq_disable_kicks(vq);
	while (seq < s->total && !atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		unsigned n = 0;
		int r = 0;

		while (n < DEV_BATCH && (r = umdev_vq_pop(vq, &e[n], iov[n], 4)) == 1) {
			if (dev_check(s, &e[n], seq))
				goto out;
			dev_respond(&e[n], seq);
			seq++;
			n++;
		}
		if (n == 0 && r < 0) {
			snprintf(s->dev_err, sizeof(s->dev_err), "pop: %d", r);
			goto out;
		}
		/* Reverse order: completions need not follow submissions. */
		for (unsigned i = n; i-- > 0;)
			umdev_vq_push(vq, e[i].head, resp_len(seq - n + i));
		atomic_store_explicit(&s->dev_done, seq, memory_order_relaxed);
		if (n && umdev_vq_notify(vq) == 1)
			s->calls++;
		if (n) {
			idle = 0;
			continue;
		}
		if (seq == s->total || atomic_load_explicit(&s->stop, memory_order_relaxed))
			continue;
		if (keep_polling(&idle, seq))
			continue;
		/* Ring empty: ask for kicks, look once more, then sleep. */
		if (umdev_vq_enable_kicks(vq)) {
			umdev_vq_disable_kicks(vq);
			continue;
		}
		wait_fd(s->kick_fd, "device", s);
		umdev_vq_disable_kicks(vq);
	}
out:
	/* Wake the driver so it reports the error instead of waiting. */
	if (eventfd_write(s->f->call_fd, 1) < 0)
		fprintf(stderr, "stress: device: eventfd_write: %s\n", strerror(errno));
	return NULL;
}

/* ---- driver thread (the test's main thread) ---- */

/* Stop and join the device thread before failing, so teardown does not
 * free the ring under it. */
#define STRESS_FAIL(s, t, ...)                                                 \
	do {                                                                   \
		atomic_store_explicit(&(s)->stop, true, memory_order_relaxed); \
		(void)eventfd_write((s)->kick_fd, 1);                          \
		pthread_join((t), NULL);                                       \
		fail_msg(__VA_ARGS__);                                         \
	} while (0)

/* What Linux's virtqueue_enable_cb does: ask for an interrupt for the next
 * entry, then report whether one arrived meanwhile. */
static bool drv_enable_cb(struct stress *s)
{
	struct umdev_vqd *d = &s->f->d;

	if (s->event_idx) {
		umdev_vqd_set_used_event(d, d->last_used_idx); /* has the full fence */
	} else {
		umdev_shm_st16(&d->avail->flags, 0);
		umdev_shm_fence_full();
	}
	return umdev_vqd_has_used(d);
}

static void drv_disable_cb(struct stress *s)
{
	if (!s->event_idx)
		umdev_shm_st16(&s->f->d.avail->flags, VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* Returns the head, or -errno from umdev_vqd_add. */
static int drv_submit(struct stress *s, unsigned slot, uint64_t seq)
{
	struct fx *f = s->f;
	uint64_t gpa = slot_gpa(slot);
	uint8_t *req = drv_ptr(f, gpa);
	struct umdev_vqd_buf b[3];
	unsigned n;
	int head;

	memcpy(req, &seq, sizeof(seq));
	for (unsigned i = sizeof(seq); i < REQ_LEN; i++)
		req[i] = pat(seq, i, 0x5a);
	memset(req + 128, 0, RESP_LEN);
	/* Vary the chain: one or two readable descriptors, sometimes indirect. */
	if (seq % 3 == 1) {
		b[0] = (struct umdev_vqd_buf){ .addr = gpa, .len = 20 };
		b[1] = (struct umdev_vqd_buf){ .addr = gpa + 20, .len = REQ_LEN - 20 };
		n = 2;
	} else {
		b[0] = (struct umdev_vqd_buf){ .addr = gpa, .len = REQ_LEN };
		n = 1;
	}
	b[n++] = (struct umdev_vqd_buf){ .addr = gpa + 128, .len = RESP_LEN, .write = true };
	head = umdev_vqd_add(&f->d, b, n,
			     seq % 4 == 2 ? IND_GPA + (uint64_t)slot * IND_BYTES : 0);
	if (head >= 0)
		s->head_slot[head] = slot;
	return head;
}

static void run_stress(struct fx *f, uint64_t total, bool event_idx)
{
	static struct stress s;
	unsigned free_slots[SLOTS], nfree = SLOTS;
	uint64_t slot_seq[SLOTS];
	uint64_t submitted = 0, completed = 0;
	unsigned idle = 0;
	cpu_set_t cpus;
	pthread_t t;

	s = (struct stress){ .f = f, .total = total, .event_idx = event_idx };
	fx_start(f, RING_SIZE, event_idx, true);
	s.kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(s.kick_fd >= 0);
	for (unsigned i = 0; i < SLOTS; i++)
		free_slots[i] = SLOTS - 1 - i;
	drv_disable_cb(&s);
	assert_true(sched_getaffinity(0, sizeof(cpus), &cpus) == 0);
	assert_int_equal(pthread_create(&t, NULL, dev_thread, &s), 0);
	pin_to(0);

	while (completed < total) {
		bool progress = false;
		uint16_t head;
		uint32_t len;
		int r = 0;

		while (submitted < total && nfree && umdev_vqd_num_free(&f->d) >= 3) {
			unsigned slot = free_slots[--nfree];

			slot_seq[slot] = submitted;
			if ((r = drv_submit(&s, slot, submitted++)) < 0)
				STRESS_FAIL(&s, t, "umdev_vqd_add: %d", r);
			progress = true;
			/* Kick decisions every few adds, as a driver batching. */
			if (submitted % 8 == 0 && umdev_vqd_kick_needed(&f->d)) {
				if (eventfd_write(s.kick_fd, 1) < 0)
					STRESS_FAIL(&s, t, "kick: %s", strerror(errno));
				s.kicks++;
			}
		}
		if (progress && umdev_vqd_kick_needed(&f->d)) {
			if (eventfd_write(s.kick_fd, 1) < 0)
				STRESS_FAIL(&s, t, "kick: %s", strerror(errno));
			s.kicks++;
		}
		while ((r = umdev_vqd_get_used(&f->d, &head, &len)) == 1) {
			unsigned slot = s.head_slot[head];
			uint64_t seq = slot_seq[slot];
			const uint8_t *resp = drv_ptr(f, slot_gpa(slot) + 128);
			uint64_t got;

			memcpy(&got, resp, sizeof(got));
			if (got != seq || len != resp_len(seq))
				STRESS_FAIL(&s, t,
					    "completion for request %" PRIu64
					    ": response names %" PRIu64 ", length %u (want %u)",
					    seq, got, len, resp_len(seq));
			for (unsigned i = sizeof(got); i < resp_len(seq); i++)
				if (resp[i] != pat(seq, i, 0xa5))
					STRESS_FAIL(&s, t,
						    "request %" PRIu64 ": response byte %u corrupted",
						    seq, i);
			free_slots[nfree++] = slot;
			completed++;
			progress = true;
		}
		if (r < 0)
			STRESS_FAIL(&s, t,
				    "used ring named a head not in flight after %" PRIu64
				    " completions (duplicate or corrupt entry)", completed);
		if (s.dev_err[0])
			STRESS_FAIL(&s, t, "device: %s", s.dev_err);
		if (progress || completed == total) {
			idle = 0;
			continue;
		}
		if (keep_polling(&idle, completed))
			continue;
		/* Nothing to do until the device completes something. */
		if (!drv_enable_cb(&s)) {
			s.cb_waits++;
			wait_fd(f->call_fd, "driver", &s);
		}
		drv_disable_cb(&s);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(sched_setaffinity(0, sizeof(cpus), &cpus), 0);
	if (s.dev_err[0])
		fail_msg("device: %s", s.dev_err);
	assert_int_equal(s.dev_done, total);
	assert_int_equal(completed, total);
	assert_int_equal(umdev_vqd_num_free(&f->d), RING_SIZE);
	assert_int_equal(umdev_vq_inuse(f->vq), 0);
	/* Nothing left over in either direction. */
	assert_false(umdev_vq_has_avail(f->vq));
	assert_false(umdev_vqd_has_used(&f->d));
	printf("stress (%s): %" PRIu64 " requests, %" PRIu64 " kicks, %" PRIu64
	       " interrupts, driver slept %" PRIu64 " times\n",
	       event_idx ? "event idx" : "flags", total, s.kicks, s.calls, s.cb_waits);
	close(s.kick_fd);
}

static uint64_t requests(void)
{
	const char *e = getenv("UMDEV_VQ_STRESS_REQUESTS");
	uint64_t n = e ? strtoull(e, NULL, 10) : 0;

	return n ? n : DEFAULT_REQUESTS;
}

static void test_stress_event_idx(void **state)
{
	run_stress(*state, requests(), true);
}

static void test_stress_flags(void **state)
{
	run_stress(*state, requests() / 2, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stress_event_idx, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_stress_flags, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
