/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd's side of live migration, seen by our vhost-user client playing
 * QEMU: SET_LOG_BASE and its refusals, used-ring log addresses, the pages a
 * device write marks (exactly those), VHOST_F_LOG_ALL switched on and off on
 * running rings with requests in flight, and GET_VRING_BASE answering only
 * once the ring's requests have completed.
 */
#include "proto_common.h"

#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define QSIZE 256
#define REGION (16ull << 20)
#define PAGE 4096ull

static struct proto_srv srv;

static int setup(void **state)
{
	proto_srv_init(&srv, 64ull << 20);
	proto_start_umdevd(&srv, "--device",
			   "virtio-blk,id=blk0,socket=@SOCK@,backend=file:@DISK@,num-queues=1", NULL);
	return 0;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	assert_true(alive);
	return 0;
}

/* A log for every guest page the client uses (its memory starts at 4 GiB). */
struct log {
	int fd;
	uint8_t *bits;
	uint64_t size;
};

static void log_create(struct log *l, const struct umdev_vuc *c)
{
	uint64_t end = c->mem.gpa_base + c->mem.span;

	l->size = (end / PAGE + 7) / 8;
	l->size = (l->size + PAGE - 1) & ~(PAGE - 1);
	l->fd = memfd_create("test-log", MFD_CLOEXEC);
	assert_true(l->fd >= 0);
	assert_int_equal(ftruncate(l->fd, (off_t)l->size), 0);
	l->bits = mmap(NULL, l->size, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	assert_true(l->bits != MAP_FAILED);
}

static void log_destroy(struct log *l)
{
	munmap(l->bits, l->size);
	close(l->fd);
}

static bool page_dirty(const struct log *l, uint64_t gpa)
{
	uint64_t p = gpa / PAGE;

	return __atomic_load_n(&l->bits[p / 8], __ATOMIC_ACQUIRE) & (1u << (p % 8));
}

static void log_clear(struct log *l)
{
	memset(l->bits, 0, l->size);
}

static bool in_range(uint64_t gpa, uint64_t start, uint64_t len)
{
	return gpa + PAGE > start && gpa < start + len;
}

static void connect_blk(struct umdev_vuc *c)
{
	proto_connect_blk(c, srv.sock, 1, QSIZE, 1, REGION);
	assert_true(c->features & (1ull << VHOST_F_LOG_ALL));
	assert_true(c->acked_protocol_features & (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD));
}

static void set_log_all(struct umdev_vuc *c, bool on)
{
	uint64_t f = c->acked_features & ~(1ull << VHOST_F_LOG_ALL);

	if (on)
		f |= 1ull << VHOST_F_LOG_ALL;
	assert_int_equal(umdev_vuc_set_features(c, f), 0);
	assert_int_equal(!!(c->acked_features & (1ull << VHOST_F_LOG_ALL)), on);
}

static void roundtrip(struct umdev_vuc *c, uint64_t sector)
{
	uint64_t buf = umdev_vuc_alloc(c, 0, 8192, 4096);

	assert_true(buf);
	proto_fill(umdev_vuc_gpa_ptr(c, buf, 8192), 8192, sector);
	assert_int_equal(proto_rw(c, 0, VIRTIO_BLK_T_OUT, sector, buf, 8192, 1), VIRTIO_BLK_S_OK);
	memset(umdev_vuc_gpa_ptr(c, buf, 8192), 0, 8192);
	assert_int_equal(proto_rw(c, 0, VIRTIO_BLK_T_IN, sector, buf, 8192, 2), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(c, buf, 8192), 8192, sector));
}

/* Every malformed SET_LOG_BASE gets a failed reply, and the connection lives on. */
static void test_log_base_refused(void **state)
{
	struct umdev_vuc c;
	struct log l;
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t v;

	connect_blk(&c);
	log_create(&l, &c);
	/* No fd at all. */
	assert_int_equal(umdev_vuc_set_log_base(&c, -1, 0, l.size, 0), -EIO);
	/* Zero, absurd, past the file, overflowing, unaligned. */
	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, 0, 0), -EIO);
	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, 1ull << 40, 0), -EIO);
	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, l.size + PAGE, 0), -EIO);
	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, l.size, PAGE), -EIO);
	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, PAGE, UINT64_MAX - 100), -EIO);
	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, PAGE, 100), -EIO);
	/* Not a memory file. */
	assert_true(efd >= 0);
	assert_int_equal(umdev_vuc_set_log_base(&c, efd, 1, PAGE, 0), -EIO);
	close(efd);
	/* The u64-only form (no LOG_SHMFD): refused, still answered. */
	assert_int_equal(umdev_vuc_send(&c, VHOST_USER_SET_LOG_BASE, 0, &v, sizeof(v), &l.fd, 1), 0);
	{
		struct vhost_user_msg reply;
		uint32_t rsize;

		assert_int_equal(umdev_vuc_wait_reply(&c, VHOST_USER_SET_LOG_BASE, &reply, 8, &rsize,
						      NULL, NULL), 0);
		assert_int_equal(rsize, 8);
		assert_int_not_equal(reply.p.u64, 0);
	}
	/* Still served, and a good log is taken. */
	assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_QUEUE_NUM, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, l.size, 0), 0);
	roundtrip(&c, 8);
	umdev_vuc_close(&c);
	log_destroy(&l);
}

/* A used-ring log address the log does not cover is refused; the ring keeps running. */
static void test_log_addr_outside(void **state)
{
	struct umdev_vuc c;
	struct log l;
	uint64_t used = 0;

	connect_blk(&c);
	log_create(&l, &c);
	used = c.vqs[0].drv.used_gpa;
	/* No log yet. */
	assert_int_equal(umdev_vuc_vq_set_addr(&c, 0, 1u << VHOST_VRING_F_LOG, used), -EIO);
	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, l.size, 0), 0);
	/* Past the end, straddling the end, wrapping around. */
	assert_int_equal(umdev_vuc_vq_set_addr(&c, 0, 1u << VHOST_VRING_F_LOG, l.size * 8 * PAGE),
			 -EIO);
	assert_int_equal(umdev_vuc_vq_set_addr(&c, 0, 1u << VHOST_VRING_F_LOG,
					       l.size * 8 * PAGE - 16), -EIO);
	assert_int_equal(umdev_vuc_vq_set_addr(&c, 0, 1u << VHOST_VRING_F_LOG, UINT64_MAX - 8),
			 -EIO);
	/* Unknown flags. */
	assert_int_equal(umdev_vuc_vq_set_addr(&c, 0, 1u << 5, 0), -EIO);
	roundtrip(&c, 16);
	/* Inside: accepted, and used-ring writes are logged there. */
	assert_int_equal(umdev_vuc_vq_set_addr(&c, 0, 1u << VHOST_VRING_F_LOG, used), 0);
	log_clear(&l);
	roundtrip(&c, 24);
	assert_true(page_dirty(&l, used));
	umdev_vuc_close(&c);
	log_destroy(&l);
}

/*
 * A read marks exactly the pages the device wrote: its data pages, the
 * status byte's page, the used ring. Not the pages it only read (a write's
 * data), and nothing else.
 */
static void check_only(const struct log *l, const struct umdev_vuc *c, uint64_t data,
		       uint64_t data_len)
{
	uint64_t used = c->vqs[0].drv.used_gpa, used_len = virtq_used_bytes(QSIZE);
	uint64_t slots = c->vqs[0].slot_area_gpa, slots_len = (uint64_t)QSIZE * 32; /* BLK_SLOT_BYTES */

	for (uint64_t gpa = c->mem.gpa_base; gpa < c->mem.gpa_base + c->mem.span; gpa += PAGE) {
		bool want = in_range(gpa, used, used_len) || in_range(gpa, slots, slots_len) ||
			    (data_len && in_range(gpa, data, data_len));

		if (page_dirty(l, gpa) && !want)
			fail_msg("page 0x%llx marked, the device wrote nothing there",
				 (unsigned long long)gpa);
	}
	/* The log covers nothing below the client's memory either. */
	for (uint64_t b = 0; b < c->mem.gpa_base / PAGE / 8; b++)
		if (l->bits[b])
			fail_msg("log byte %llu set below guest memory", (unsigned long long)b);
}

static void test_read_marks_exact_pages(void **state)
{
	struct umdev_vuc c;
	struct log l;
	uint64_t buf, used;
	uint8_t *p;

	connect_blk(&c);
	log_create(&l, &c);
	used = c.vqs[0].drv.used_gpa;
	/* A buffer over four pages, read into the middle two and a half. */
	buf = umdev_vuc_alloc(&c, 0, 4 * PAGE, PAGE);
	assert_true(buf);
	p = umdev_vuc_gpa_ptr(&c, buf, 4 * PAGE);
	proto_fill(p, 4 * PAGE, 5);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 0, buf, 4 * PAGE, 1), VIRTIO_BLK_S_OK);

	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, l.size, 0), 0);
	set_log_all(&c, true);
	assert_int_equal(umdev_vuc_vq_set_addr(&c, 0, 1u << VHOST_VRING_F_LOG, used), 0);

	/* A write: the device only reads its data, which must stay unmarked. */
	log_clear(&l);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 64, buf, 4 * PAGE, 1), VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < 4; i++)
		assert_false(page_dirty(&l, buf + i * PAGE));
	assert_true(page_dirty(&l, c.vqs[0].slots[0].status_gpa));
	assert_true(page_dirty(&l, used));
	check_only(&l, &c, 0, 0);

	/* A read of 2.5 pages starting half-way into page 1: pages 1..3 only. */
	log_clear(&l);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf + PAGE + 2048, 2 * PAGE + 2048, 1),
			 VIRTIO_BLK_S_OK);
	assert_false(page_dirty(&l, buf));
	assert_true(page_dirty(&l, buf + PAGE));
	assert_true(page_dirty(&l, buf + 2 * PAGE));
	assert_true(page_dirty(&l, buf + 3 * PAGE));
	assert_true(page_dirty(&l, used));
	check_only(&l, &c, buf + PAGE, 3 * PAGE);

	/* LOG_ALL off: data pages are no longer marked, the used ring still is. */
	set_log_all(&c, false);
	log_clear(&l);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4 * PAGE, 4), VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < 4; i++)
		assert_false(page_dirty(&l, buf + i * PAGE));
	assert_true(page_dirty(&l, used));
	/* Used-ring logging off too: nothing at all. */
	assert_int_equal(umdev_vuc_vq_set_addr(&c, 0, 0, 0), 0);
	log_clear(&l);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4 * PAGE, 4), VIRTIO_BLK_S_OK);
	for (uint64_t b = 0; b < l.size; b++)
		assert_int_equal(l.bits[b], 0);
	/* And on again: marked again, the data still right. */
	set_log_all(&c, true);
	memset(p, 0, 4 * PAGE);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4 * PAGE, 4), VIRTIO_BLK_S_OK);
	assert_true(proto_check(p, 4 * PAGE, 5));
	for (unsigned i = 0; i < 4; i++)
		assert_true(page_dirty(&l, buf + i * PAGE));
	umdev_vuc_close(&c);
	log_destroy(&l);
}

/* Submit @n 4 KiB reads of distinct buffers without waiting. */
static void submit_reads(struct umdev_vuc *c, uint64_t bufs, unsigned n, unsigned first)
{
	for (unsigned i = 0; i < n; i++) {
		struct umdev_vqd_buf b = { .addr = bufs + (uint64_t)i * PAGE, .len = PAGE,
					   .write = true };

		assert_int_equal(umdev_vblk_submit(c, 0, VIRTIO_BLK_T_IN, (first + i) * 8ull, &b, 1,
						   first + i, false), 0);
	}
}

static unsigned reap(struct umdev_vuc *c, unsigned want)
{
	struct umdev_vblk_cpl cpl[QSIZE];
	unsigned got = 0;

	while (got < want) {
		int n = umdev_vblk_wait(c, 0, cpl, QSIZE, PROTO_IO_TIMEOUT_MS);

		assert_true(n > 0);
		for (int i = 0; i < n; i++)
			assert_int_equal(cpl[i].status, VIRTIO_BLK_S_OK);
		got += (unsigned)n;
	}
	return got;
}

/*
 * LOG_ALL switched on while 32 reads are in flight: each is either done
 * before (and unlogged) or logged, all complete, and every one that
 * completes after the switch's reply has its page marked.
 */
static void test_log_all_toggled_in_flight(void **state)
{
	struct umdev_vuc c;
	struct log l;
	uint64_t bufs;

	connect_blk(&c);
	log_create(&l, &c);
	bufs = umdev_vuc_alloc(&c, 0, 32 * PAGE, PAGE);
	assert_true(bufs);
	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, l.size, 0), 0);
	for (unsigned round = 0; round < 6; round++) {
		bool on = !(round % 2);

		submit_reads(&c, bufs, 32, round * 32);
		set_log_all(&c, on);
		/*
		 * The switch stopped the ring: what it had taken completed first,
		 * and what it had not yet taken (a slow daemon may not have) is
		 * served after the restart. All 32 complete, none lost.
		 */
		assert_true((uint16_t)(c.vqs[0].drv.avail_idx - c.vqs[0].drv.used->idx) <= 32);
		assert_int_equal(reap(&c, 32), 32);
		log_clear(&l);
		submit_reads(&c, bufs, 32, round * 32 + 7);
		assert_int_equal(reap(&c, 32), 32);
		for (unsigned i = 0; i < 32; i++)
			assert_int_equal(page_dirty(&l, bufs + i * PAGE), on);
	}
	umdev_vuc_close(&c);
	log_destroy(&l);
}

/*
 * GET_VRING_BASE with requests in flight answers once they completed: the
 * used index then equals the base, as QEMU (which does not migrate the
 * inflight region) needs. A second stop and a restart at that base work.
 */
static void test_get_vring_base_in_flight(void **state)
{
	struct umdev_vuc c;
	uint64_t bufs;
	uint16_t base = 0, base2 = 0;

	connect_blk(&c);
	bufs = umdev_vuc_alloc(&c, 0, 48 * PAGE, PAGE);
	assert_true(bufs);
	for (unsigned round = 0; round < 3; round++) {
		uint16_t before = c.vqs[0].drv.avail_idx;

		uint16_t taken;

		submit_reads(&c, bufs, 48, round * 48);
		assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base), 0);
		/*
		 * A slow daemon may not have taken all 48 when the stop comes
		 * (that is legal); what it took has completed: used idx == base.
		 */
		taken = (uint16_t)(base - before);
		assert_true(taken <= 48);
		assert_int_equal(__atomic_load_n(&c.vqs[0].drv.used->idx, __ATOMIC_ACQUIRE), base);
		/* Stopped twice: same answer. */
		assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base2), 0);
		assert_int_equal(base2, base);
		assert_int_equal(reap(&c, taken), taken);
		/* The rest is served after the restart at that base, none lost. */
		assert_int_equal(umdev_vuc_vq_start(&c, 0, base), 0);
		assert_int_equal(reap(&c, 48 - taken), 48 - taken);
		roundtrip(&c, 400 + round * 16);
	}
	umdev_vuc_close(&c);
}

/* The front-end shrinks the log file under our mapping: umdevd survives. */
static void test_log_shrunk(void **state)
{
	struct umdev_vuc c;
	struct log l;
	uint64_t buf;

	connect_blk(&c);
	log_create(&l, &c);
	buf = umdev_vuc_alloc(&c, 0, PAGE, PAGE);
	assert_int_equal(umdev_vuc_set_log_base(&c, l.fd, 1, l.size, 0), 0);
	set_log_all(&c, true);
	assert_int_equal(ftruncate(l.fd, 0), 0);
	/* The read's completion faults on the log: the front-end is dropped, not the process. */
	(void)proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, PAGE, 1);
	assert_int_equal(umdev_vuc_is_closed(&c, 3000), 1);
	umdev_vuc_close(&c);
	log_destroy(&l);
	assert_true(umdev_proc_alive(&srv.proc));
	/* A new front-end is served. */
	connect_blk(&c);
	roundtrip(&c, 800);
	umdev_vuc_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_log_base_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_addr_outside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_marks_exact_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_all_toggled_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_vring_base_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_shrunk, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
