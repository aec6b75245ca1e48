/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd against a hostile front-end. Each test misbehaves on device blk0,
 * either on the socket (malformed or out-of-order messages, wrong fds) or
 * in guest memory (descriptor loops, addresses outside guest memory, bad
 * ring indices), then checks that umdevd answered by closing the connection
 * or failing the request/queue, and that it is still alive and serving: a
 * second device (blk1) and a fresh connection to blk0 both do I/O, and no
 * file descriptor leaked.
 */
#include "proto_common.h"
#include "../test_wait.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define REGION (4ull << 20)

static struct proto_srv srv;
static int fds_at_start;
static bool served; /* the test got to its final assert_serving() */

/* For requests whose outcome is allowed either way. */
static void may_fail(int r)
{
	(void)r;
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static int setup(void **state)
{
	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--device",
			   "virtio-blk,id=blk0,socket=@SOCK@,backend=ram:16M,num-queues=2",
			   "--device", "virtio-blk,id=blk1,socket=@SOCK2@,backend=ram:16M", NULL);
	fds_at_start = count_fds(srv.proc.pid);
	served = false;
	return 0;
}

/* umdevd is alive, both devices serve I/O, and fds came back to baseline. */
static void assert_serving(void)
{
	const char *socks[2] = { srv.sock2, srv.sock };
	int fds = -1;

	assert_true(umdev_proc_alive(&srv.proc));
	for (unsigned i = 0; i < 2; i++) {
		struct umdev_vuc c;

		proto_connect_blk(&c, socks[i], 1, 64, 1, REGION);
		proto_check_roundtrip_all_queues(&c, 1);
		umdev_vuc_close(&c);
	}
	/* Closing is asynchronous on the daemon side: wait for it, bounded. */
	TEST_WAIT_UNTIL((fds = count_fds(srv.proc.pid)) == fds_at_start);
	assert_int_equal(fds, fds_at_start);
	served = true;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	/* A test that failed shows the daemon's side too. */
	proto_stop(&srv, !alive || !served);
	assert_true(alive);
	return 0;
}

/* The back-end hung up, or at least refuses to go on talking. */
static void assert_closed(struct umdev_vuc *c)
{
	assert_int_equal(umdev_vuc_is_closed(c, 2000), 1);
}

/* Either a non-zero ack / closed connection: the request was refused. */
static void assert_refused(struct umdev_vuc *c, uint32_t req, const void *p, uint32_t size,
			   const int *fds, unsigned nfds)
{
	int r;

	c->use_reply_ack = true;
	r = umdev_vuc_request(c, req, p, size, fds, nfds);
	assert_true(r == -EIO || r == -ECONNRESET || r == -EPIPE);
}

static void connect_negotiated(struct umdev_vuc *c)
{
	assert_int_equal(umdev_vuc_connect(c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(c, ~0ull), 0);
	assert_true(c->use_reply_ack);
}

/* ---- socket-level hostility ---------------------------------------------- */

static void test_bad_version(void **state)
{
	struct vhost_user_header h = { .request = VHOST_USER_GET_FEATURES, .flags = 0x2 };
	struct umdev_vuc c;

	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_send_raw(&c, &h, sizeof(h), NULL, 0), 0);
	assert_closed(&c);
	umdev_vuc_close(&c);
	assert_serving();
}

static void test_reply_flag_from_front_end(void **state)
{
	struct vhost_user_header h = { .request = VHOST_USER_GET_FEATURES,
				       .flags = VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY };
	struct umdev_vuc c;
	struct vhost_user_msg m;

	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_send_raw(&c, &h, sizeof(h), NULL, 0), 0);
	/* A "reply" sent to the back-end: ignoring it or hanging up are fine,
	 * but it must not be answered as if it were a request and crash. */
	c.timeout_ms = 500;
	if (umdev_vuc_recv(&c, &m, NULL, NULL) == 0)
		assert_int_equal(m.hdr.request, VHOST_USER_GET_FEATURES);
	umdev_vuc_close(&c);
	assert_serving();
}

static void test_oversized_size(void **state)
{
	static const uint32_t sizes[] = { 0xffffffffu, 0x10000u, sizeof(union vhost_user_payload) + 1 };

	for (unsigned i = 0; i < 3; i++) {
		struct {
			struct vhost_user_header h;
			uint8_t body[512];
		} __attribute__((packed)) m;
		struct umdev_vuc c;

		memset(&m, 0x41, sizeof(m));
		m.h = (struct vhost_user_header){ .request = VHOST_USER_SET_MEM_TABLE,
						  .flags = VHOST_USER_VERSION, .size = sizes[i] };
		assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
		assert_int_equal(umdev_vuc_send_raw(&c, &m, sizeof(m), NULL, 0), 0);
		assert_closed(&c);
		umdev_vuc_close(&c);
	}
	assert_serving();
}

static void test_truncated_messages(void **state)
{
	struct vhost_user_header h = { .request = VHOST_USER_SET_FEATURES,
				       .flags = VHOST_USER_VERSION, .size = 8 };
	uint32_t half = 7;
	struct umdev_vuc c;

	/* Half a header, then hang up. */
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_send_raw(&c, &h, 6, NULL, 0), 0);
	umdev_vuc_close(&c);
	/* A header and half its payload, then hang up. */
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_send_raw(&c, &h, sizeof(h), NULL, 0), 0);
	assert_int_equal(umdev_vuc_send_raw(&c, &half, 4, NULL, 0), 0);
	umdev_vuc_close(&c);
	assert_serving();
}

static void test_wrong_payload_sizes(void **state)
{
	uint8_t junk[64];
	struct umdev_vuc c;

	memset(junk, 0, sizeof(junk));
	connect_negotiated(&c);
	/* Each must be refused; after a hang-up, reconnect for the next. */
	static const struct {
		uint32_t req, size;
	} cases[] = {
		{ VHOST_USER_SET_FEATURES, 4 },
		{ VHOST_USER_SET_VRING_NUM, 4 },
		{ VHOST_USER_SET_VRING_ADDR, 16 },
		{ VHOST_USER_SET_MEM_TABLE, 4 },
		{ VHOST_USER_SET_VRING_BASE, 0 },
		{ VHOST_USER_ADD_MEM_REG, 8 },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_refused(&c, cases[i].req, junk, cases[i].size, NULL, 0);
		if (umdev_vuc_is_closed(&c, 0) || c.sock < 0) {
			umdev_vuc_close(&c);
			connect_negotiated(&c);
		}
	}
	umdev_vuc_close(&c);
	assert_serving();
}

static void test_unknown_request(void **state)
{
	uint64_t zero = 0, f;
	struct umdev_vuc c;
	int r;

	connect_negotiated(&c);
	assert_refused(&c, 999, &zero, sizeof(zero), NULL, 0);
	umdev_vuc_close(&c);
	/* Requests for features never negotiated (IOTLB, postcopy). */
	connect_negotiated(&c);
	assert_refused(&c, VHOST_USER_IOTLB_MSG, &zero, sizeof(zero), NULL, 0);
	umdev_vuc_close(&c);
	connect_negotiated(&c);
	assert_refused(&c, VHOST_USER_POSTCOPY_ADVISE, NULL, 0, NULL, 0);
	umdev_vuc_close(&c);
	/* Without NEED_REPLY, an unknown request is dropped or fatal; if the
	 * connection survives, it is still in step. */
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_send(&c, 12345, 0, NULL, 0, NULL, 0), 0);
	r = umdev_vuc_get_u64(&c, VHOST_USER_GET_FEATURES, &f);
	assert_true(r == 0 || r == -ECONNRESET || r == -EPIPE);
	umdev_vuc_close(&c);
	assert_serving();
}

static void test_wrong_fd_counts(void **state)
{
	uint64_t sizes[2] = { REGION, REGION };
	struct vhost_user_mem_table t;
	int efds[4];
	uint64_t u;
	struct umdev_vuc c;

	for (unsigned i = 0; i < 4; i++)
		efds[i] = eventfd(0, EFD_CLOEXEC);

	/* SET_MEM_TABLE naming 2 regions with 1 fd, and 1 region with 3 fds. */
	connect_negotiated(&c);
	assert_int_equal(umdev_vuc_mem_create(&c, sizes, 2, 0), 0);
	memset(&t, 0, sizeof(t));
	t.nregions = 2;
	umdev_vuc_region_desc(&c, 0, &t.regions[0]);
	umdev_vuc_region_desc(&c, 1, &t.regions[1]);
	assert_refused(&c, VHOST_USER_SET_MEM_TABLE, &t, 8 + 2 * 32, &c.mem.regions[0].fd, 1);
	umdev_vuc_close(&c);

	connect_negotiated(&c);
	assert_int_equal(umdev_vuc_mem_create(&c, sizes, 2, 0), 0);
	t.nregions = 1;
	umdev_vuc_region_desc(&c, 0, &t.regions[0]);
	{
		int three[3] = { c.mem.regions[0].fd, c.mem.regions[1].fd, efds[0] };

		assert_refused(&c, VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, three, 3);
	}
	umdev_vuc_close(&c);

	/* SET_VRING_KICK with two fds; with none but no NOFD flag. */
	connect_negotiated(&c);
	u = 0;
	assert_refused(&c, VHOST_USER_SET_VRING_KICK, &u, sizeof(u), efds, 2);
	umdev_vuc_close(&c);
	connect_negotiated(&c);
	assert_refused(&c, VHOST_USER_SET_VRING_CALL, &u, sizeof(u), NULL, 0);
	umdev_vuc_close(&c);

	/* fds on a message that takes none: the request may be refused or
	 * served, but the fds must be closed (checked by assert_serving). */
	connect_negotiated(&c);
	u = 1ull << VIRTIO_F_VERSION_1;
	c.use_reply_ack = true;
	may_fail(umdev_vuc_request(&c, VHOST_USER_SET_FEATURES, &u, sizeof(u), efds, 4));
	may_fail(umdev_vuc_request(&c, VHOST_USER_SET_OWNER, NULL, 0, efds, 2));
	umdev_vuc_close(&c);
	/* A memory "fd" that cannot be mapped (an eventfd). */
	connect_negotiated(&c);
	assert_int_equal(umdev_vuc_mem_create(&c, sizes, 1, 0), 0);
	umdev_vuc_region_desc(&c, 0, &t.regions[0]);
	assert_refused(&c, VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, &efds[1], 1);
	umdev_vuc_close(&c);

	for (unsigned i = 0; i < 4; i++)
		close(efds[i]);
	assert_serving();
}

static void test_bad_mem_tables(void **state)
{
	uint64_t sizes[2] = { REGION, REGION };
	struct vhost_user_mem_table t;
	struct umdev_vuc c;
	int fds[VHOST_USER_MAX_MEM_REGIONS];

	for (unsigned k = 0; k < 7; k++) {
		unsigned n = 1;
		int r;

		connect_negotiated(&c);
		assert_int_equal(umdev_vuc_mem_create(&c, sizes, 2, 0), 0);
		memset(&t, 0, sizeof(t));
		umdev_vuc_region_desc(&c, 0, &t.regions[0]);
		umdev_vuc_region_desc(&c, 1, &t.regions[1]);
		fds[0] = c.mem.regions[0].fd;
		fds[1] = c.mem.regions[1].fd;
		switch (k) {
		case 0: /* nregions larger than the array */
			t.nregions = 9;
			break;
		case 1: /* zero-sized region */
			t.regions[0].memory_size = 0;
			break;
		case 2: /* region larger than its file */
			t.regions[0].memory_size = 1ull << 40;
			break;
		case 3: /* mmap offset past the end of the file */
			t.regions[0].mmap_offset = 1ull << 40;
			break;
		case 4: /* guest range wraps around 2^64 */
			t.regions[0].guest_phys_addr = ~0ull - 4095;
			break;
		case 5: /* user range wraps around 2^64 */
			t.regions[0].userspace_addr = ~0ull - 4095;
			break;
		case 6: /* two regions overlapping in guest space */
			n = 2;
			t.regions[1].guest_phys_addr = t.regions[0].guest_phys_addr + 4096;
			break;
		}
		if (k != 0)
			t.nregions = n;
		c.use_reply_ack = true;
		r = umdev_vuc_request(&c, VHOST_USER_SET_MEM_TABLE, &t, 8 + (k == 0 ? 8 : n) * 32,
				      fds, k == 0 ? 2 : n);
		if (r != -EIO && r != -ECONNRESET && r != -EPIPE)
			fail_msg("bad memory table case %u: answered %d", k, r);
		umdev_vuc_close(&c);
	}
	assert_serving();
}

/*
 * A region that claims more than its file holds: mmap() accepts that, and
 * touching the part past the end of the file raises SIGBUS in whoever
 * touches it. The back-end must refuse the region (or at least survive a
 * request that points there).
 */
static void test_region_past_eof(void **state)
{
	uint64_t sizes[1] = { REGION };
	struct vhost_user_mem_table t = { .nregions = 1 };
	struct umdev_vuc c;
	int r;

	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(&c, ~0ull), 0);
	assert_int_equal(umdev_vuc_set_features(&c, 1ull << VIRTIO_F_VERSION_1), 0);
	assert_int_equal(umdev_vuc_mem_create(&c, sizes, 1, 0), 0);
	umdev_vuc_region_desc(&c, 0, &t.regions[0]);
	t.regions[0].memory_size = 4 * REGION; /* the memfd holds only REGION bytes */
	r = umdev_vuc_request(&c, VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, &c.mem.regions[0].fd, 1);
	if (r == 0) {
		/* Accepted: a request whose data lies past the file's end. */
		struct umdev_vqd_buf b = { .addr = c.mem.regions[0].gpa + 2 * REGION, .len = 4096 };
		int st;

		assert_int_equal(umdev_vuc_vq_init(&c, 0, 64, true), 0);
		assert_int_equal(umdev_vuc_vq_start(&c, 0, 0), 0);
		st = umdev_vblk_io(&c, 0, VIRTIO_BLK_T_OUT, 0, &b, 1, 1000);
		assert_true(umdev_proc_alive(&srv.proc));
		assert_int_not_equal(st, VIRTIO_BLK_S_OK);
	} else {
		assert_true(r == -EIO || r == -ECONNRESET || r == -EPIPE);
	}
	umdev_vuc_close(&c);
	assert_serving();
}

static void test_bad_inflight(void **state)
{
	struct vhost_user_inflight in;
	struct umdev_vuc c;
	int small, r;

	/* GET_INFLIGHT_FD for no queues, too many, or empty rings. */
	static const uint16_t bad[3][2] = { { 0, 64 }, { 100, 64 }, { 2, 0 } };
	for (unsigned i = 0; i < 3; i++) {
		connect_negotiated(&c);
		in = (struct vhost_user_inflight){ .num_queues = bad[i][0], .queue_size = bad[i][1] };
		assert_int_equal(umdev_vuc_send(&c, VHOST_USER_GET_INFLIGHT_FD, 0, &in, sizeof(in),
						NULL, 0),
				 0);
		{
			struct vhost_user_msg m;
			int fd = -1;
			unsigned nfds = 1;

			/* Refusal: a hang-up, or a reply with no fd / no size. */
			r = umdev_vuc_recv(&c, &m, &fd, &nfds);
			if (r == 0) {
				assert_true(nfds == 0 || m.p.inflight.mmap_size == 0);
				if (nfds)
					close(fd);
			} else {
				assert_int_equal(r, -ECONNRESET);
			}
		}
		umdev_vuc_close(&c);
	}
	/* SET_INFLIGHT_FD without an fd. */
	connect_negotiated(&c);
	in = (struct vhost_user_inflight){ .mmap_size = 1 << 20, .num_queues = 2, .queue_size = 64 };
	assert_refused(&c, VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), NULL, 0);
	umdev_vuc_close(&c);

	/* A buffer smaller than it claims: mapping it works, touching its
	 * tail raises SIGBUS, so the back-end must check the file's size. */
	small = memfd_create("small-inflight", MFD_CLOEXEC);
	assert_true(small >= 0);
	assert_int_equal(ftruncate(small, 4096), 0);
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(&c, ~0ull), 0);
	in = (struct vhost_user_inflight){ .mmap_size = 1 << 20, .num_queues = 2,
					   .queue_size = 1024 };
	r = umdev_vuc_set_inflight_fd(&c, small, &in);
	assert_true(r == 0 || r == -EIO || r == -ECONNRESET);
	if (r == 0) {
		uint64_t sizes[1] = { REGION };
		uint64_t b;

		assert_int_equal(umdev_vuc_set_features(&c, 1ull << VIRTIO_F_VERSION_1), 0);
		assert_int_equal(umdev_vuc_mem_create(&c, sizes, 1, 0), 0);
		assert_int_equal(umdev_vuc_set_mem_table(&c, 1), 0);
		assert_int_equal(umdev_vuc_vq_init(&c, 1, 1024, true), 0);
		/* Queue 1's part of the buffer lies wholly past the 4 KiB the
		 * file has: starting the ring, or I/O on it, touches it. */
		if (umdev_vuc_vq_start(&c, 1, 0) == 0) {
			b = umdev_vuc_alloc(&c, 0, 4096, 4096);
			for (unsigned i = 0; i < 8 && umdev_proc_alive(&srv.proc); i++)
				may_fail(proto_rw(&c, 1, VIRTIO_BLK_T_IN, 0, b, 4096, 1));
		}
		usleep(100 * 1000);
		assert_true(umdev_proc_alive(&srv.proc));
	}
	umdev_vuc_close(&c);
	close(small);

	/* A region the front-end filled with garbage before a reconnect. */
	proto_connect_blk(&c, srv.sock, 2, 64, 1, REGION);
	assert_true(c.inflight_map != NULL);
	assert_int_equal(umdev_vuc_reconnect(&c, srv.sock, 3000), 0);
	{
		uint64_t f;

		/* Answered only once the old session is dropped (see the server's accept). */
		assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_FEATURES, &f), 0);
	}
	memset(c.inflight_map, 0xff, c.inflight.mmap_size);
	assert_int_equal(umdev_vuc_negotiate(&c, ~0ull), 0);
	r = umdev_vuc_set_inflight_fd(&c, c.inflight_fd, &c.inflight);
	assert_true(r == 0 || r == -EIO || r == -ECONNRESET);
	if (r == 0 && umdev_vuc_set_features(&c, 1ull << VIRTIO_F_VERSION_1) == 0 &&
	    umdev_vuc_set_mem_table(&c, 1) == 0 && umdev_vuc_vq_start(&c, 0, 0) == 0) {
		uint64_t b = umdev_vuc_alloc(&c, 0, 4096, 4096);

		may_fail(umdev_vuc_kick(&c, 0));
		may_fail(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, b, 4096, 1));
		assert_true(umdev_proc_alive(&srv.proc));
	}
	umdev_vuc_close(&c);
	assert_serving();
}

static void test_out_of_order(void **state)
{
	struct vhost_user_vring_addr a = { .index = 0, .desc_user_addr = 0x10000,
					   .used_user_addr = 0x20000,
					   .avail_user_addr = 0x30000 };
	struct vhost_user_vring_state st = { .index = 0, .num = 64 };
	struct umdev_vuc c;
	uint64_t u = 0;
	int efd = eventfd(0, EFD_CLOEXEC);

	/* Rings before any memory table: the back-end may refuse the address
	 * or keep it until memory arrives, but a kick must not start a ring it
	 * cannot translate. */
	connect_negotiated(&c);
	assert_int_equal(umdev_vuc_set_features(&c, 1ull << VIRTIO_F_VERSION_1), 0);
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_VRING_NUM, &st, sizeof(st), NULL, 0),
			 0);
	may_fail(umdev_vuc_request(&c, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0));
	may_fail(umdev_vuc_request(&c, VHOST_USER_SET_VRING_KICK, &u, sizeof(u), &efd, 1));
	st.num = 1;
	may_fail(umdev_vuc_request(&c, VHOST_USER_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0));
	u = 1;
	assert_int_equal(write(efd, &u, sizeof(u)), sizeof(u));
	usleep(50 * 1000);
	umdev_vuc_close(&c);

	/* Everything before SET_FEATURES / SET_OWNER, and GET_VRING_BASE of a
	 * ring that never existed. */
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	c.use_reply_ack = false;
	st = (struct vhost_user_vring_state){ .index = 1, .num = 0 };
	assert_int_equal(umdev_vuc_send(&c, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0),
			 0);
	{
		struct vhost_user_msg m;
		int r = umdev_vuc_recv(&c, &m, NULL, NULL);

		assert_true(r == 0 || r == -ECONNRESET);
	}
	umdev_vuc_close(&c);

	/* Protocol features set without PROTOCOL_FEATURES offered/acked first
	 * is legal per spec; but a second SET_OWNER must not break anything. */
	connect_negotiated(&c);
	may_fail(umdev_vuc_request(&c, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0));
	umdev_vuc_close(&c);
	close(efd);
	assert_serving();
}

static void test_bad_vring_addr(void **state)
{
	struct vhost_user_vring_addr a;
	struct umdev_vuc c;
	uint16_t base;
	int r;

	/* Ring addresses outside every region: refused at SET_VRING_ADDR or
	 * when the ring starts; a later GET_VRING_BASE still answers. */
	proto_connect_blk(&c, srv.sock, 2, 64, 1, REGION);
	memset(&a, 0, sizeof(a));
	a.index = 1;
	a.desc_user_addr = 0x1000;
	a.avail_user_addr = c.mem.regions[0].uva;
	a.used_user_addr = c.mem.regions[0].uva + REGION - 8; /* used ring runs off the end */
	r = umdev_vuc_request(&c, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	if (r == 0) {
		assert_int_equal(umdev_vuc_kick(&c, 1), 0);
		usleep(50 * 1000);
	}
	if (!umdev_vuc_is_closed(&c, 0)) {
		r = umdev_vuc_vq_stop(&c, 1, &base);
		assert_true(r == 0 || r == -ECONNRESET);
	}
	umdev_vuc_close(&c);
	assert_serving();
}

/* ---- guest-memory hostility ---------------------------------------------- */

/*
 * Publish @head in queue @q's avail ring behind the driver's back (the
 * connection is poisoned afterwards anyway) and kick.
 */
static void raw_post(struct umdev_vuc *c, unsigned q, uint16_t head)
{
	struct umdev_vqd *d = &c->vqs[q].drv;

	d->avail->ring[d->avail_idx & (d->size - 1)] = head;
	d->avail_idx++;
	__atomic_store_n(&d->avail->idx, d->avail_idx, __ATOMIC_RELEASE);
	assert_int_equal(umdev_vuc_kick(c, q), 0);
}

/* After a bad chain: whatever was completed must not claim success. */
static void assert_no_success(struct umdev_vuc *c, unsigned q, unsigned ms)
{
	struct umdev_vqd *d = &c->vqs[q].drv;

	usleep(ms * 1000);
	for (uint16_t i = d->last_used_idx; i != __atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE);
	     i++) {
		struct virtq_used_elem *e = &d->used->ring[i & (d->size - 1)];
		uint8_t *status = umdev_vuc_gpa_ptr(c, c->vqs[q].slots[0].status_gpa, 1);

		/* Our crafted chains all use slot 0's status byte. */
		assert_true(e->id < d->size);
		assert_int_not_equal(*status, VIRTIO_BLK_S_OK);
	}
}

enum chain_kind {
	CHAIN_LOOP,
	CHAIN_SELF_LOOP,
	CHAIN_NEXT_OOR,
	CHAIN_DATA_OOR,
	CHAIN_DATA_WRAP,
	CHAIN_HDR_OOR,
	CHAIN_TOO_LONG,
	CHAIN_INDIRECT_LOOP,
	CHAIN_INDIRECT_NESTED,
	CHAIN_INDIRECT_BADLEN,
	CHAIN_INDIRECT_OOR,
	CHAIN_HEAD_OOR,
	CHAIN_NKINDS,
};

static void hostile_chain(enum chain_kind kind)
{
	struct umdev_vuc c;
	struct umdev_vqd *d;
	struct virtq_desc *t;
	struct virtio_blk_outhdr *hdr;
	uint64_t data, hdr_gpa, status_gpa, table;
	uint16_t size;

	proto_connect_blk(&c, srv.sock, 2, 64, 1, REGION);
	d = &c.vqs[0].drv;
	t = d->desc;
	size = d->size;
	hdr_gpa = c.vqs[0].slots[0].hdr_gpa;
	status_gpa = c.vqs[0].slots[0].status_gpa;
	hdr = umdev_vuc_gpa_ptr(&c, hdr_gpa, sizeof(*hdr));
	*hdr = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = 0 };
	*(uint8_t *)umdev_vuc_gpa_ptr(&c, status_gpa, 1) = 0xff;
	data = umdev_vuc_alloc(&c, 0, 8192, 4096);
	table = umdev_vuc_alloc(&c, 0, 4096, 4096);

	/* Default: a good 3-descriptor chain at 0 -> 1 -> 2. */
	t[0] = (struct virtq_desc){ hdr_gpa, 16, VIRTQ_DESC_F_NEXT, 1 };
	t[1] = (struct virtq_desc){ data, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2 };
	t[2] = (struct virtq_desc){ status_gpa, 1, VIRTQ_DESC_F_WRITE, 0 };
	switch (kind) {
	case CHAIN_LOOP: /* 0 -> 1 -> 0 -> ... */
		t[1].next = 0;
		break;
	case CHAIN_SELF_LOOP:
		t[1].next = 1;
		break;
	case CHAIN_NEXT_OOR:
		t[1].next = size + 5;
		break;
	case CHAIN_DATA_OOR:
		t[1].addr = 0x7777000000ull;
		break;
	case CHAIN_DATA_WRAP:
		t[1].addr = ~0ull - 100;
		break;
	case CHAIN_HDR_OOR:
		t[0].addr = 0x10;
		break;
	case CHAIN_TOO_LONG: /* every descriptor chained, last back to 0 */
		for (uint16_t i = 0; i < size; i++)
			t[i] = (struct virtq_desc){ data, 512,
						    VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE,
						    (uint16_t)((i + 1) % size) };
		t[0] = (struct virtq_desc){ hdr_gpa, 16, VIRTQ_DESC_F_NEXT, 1 };
		break;
	case CHAIN_INDIRECT_LOOP:
	case CHAIN_INDIRECT_NESTED:
	case CHAIN_INDIRECT_BADLEN:
	case CHAIN_INDIRECT_OOR: {
		struct virtq_desc *it = umdev_vuc_gpa_ptr(&c, table, 4 * 16);

		it[0] = (struct virtq_desc){ hdr_gpa, 16, VIRTQ_DESC_F_NEXT, 1 };
		it[1] = (struct virtq_desc){ data, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2 };
		it[2] = (struct virtq_desc){ status_gpa, 1, VIRTQ_DESC_F_WRITE, 0 };
		t[0] = (struct virtq_desc){ table, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0 };
		if (kind == CHAIN_INDIRECT_LOOP)
			it[1].next = 0;
		else if (kind == CHAIN_INDIRECT_NESTED)
			it[1] = (struct virtq_desc){ table, 3 * 16,
						     VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 2 };
		else if (kind == CHAIN_INDIRECT_BADLEN)
			t[0].len = 3 * 16 + 5;
		else
			t[0].addr = 0x7777000000ull;
		break;
	}
	case CHAIN_HEAD_OOR:
		break;
	case CHAIN_NKINDS:
		break;
	}
	raw_post(&c, 0, kind == CHAIN_HEAD_OOR ? (uint16_t)(size + 3) : 0);
	assert_no_success(&c, 0, 200);
	assert_true(umdev_proc_alive(&srv.proc));
	/* The other queue of the same connection is independent: it may work
	 * or the whole device may have been failed, but it must not hang the
	 * daemon. Give it one try. */
	if (!umdev_vuc_is_closed(&c, 0)) {
		uint64_t b = umdev_vuc_alloc(&c, 0, 4096, 4096);
		int st = proto_rw(&c, 1, VIRTIO_BLK_T_IN, 0, b, 4096, 1);

		assert_true(st == VIRTIO_BLK_S_OK || st == -ETIMEDOUT);
	}
	umdev_vuc_close(&c);
}

static void test_hostile_chains(void **state)
{
	for (unsigned k = 0; k < CHAIN_NKINDS; k++) {
		hostile_chain(k);
		assert_true(umdev_proc_alive(&srv.proc));
	}
	assert_serving();
}

static void test_avail_idx_jump(void **state)
{
	struct umdev_vuc c;
	struct umdev_vqd *d;

	/* The driver claims more new entries than the ring holds. */
	proto_connect_blk(&c, srv.sock, 1, 64, 1, REGION);
	d = &c.vqs[0].drv;
	__atomic_store_n(&d->avail->idx, (uint16_t)(d->avail_idx + d->size + 10), __ATOMIC_RELEASE);
	assert_int_equal(umdev_vuc_kick(&c, 0), 0);
	usleep(200 * 1000);
	/* Nothing sensible can complete; the used index moved at most by
	 * whatever garbage heads it rejected, never past the ring size. */
	assert_true((uint16_t)(d->used->idx - d->last_used_idx) <= d->size);
	umdev_vuc_close(&c);
	assert_serving();
}

static void test_memory_unmapped_under_ring(void **state)
{
	struct vhost_user_mem_table t = { .nregions = 1 };
	uint64_t sizes[2] = { REGION, REGION };
	struct umdev_vuc c;
	uint64_t b;
	int st;

	/* The front-end swaps the table for one that no longer holds the
	 * ring: the back-end must stop using the old mapping. */
	assert_int_equal(umdev_vuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(&c, ~0ull), 0);
	assert_int_equal(umdev_vuc_set_features(&c, 1ull << VIRTIO_F_VERSION_1), 0);
	assert_int_equal(umdev_vuc_mem_create(&c, sizes, 2, 0), 0);
	assert_int_equal(umdev_vuc_set_mem_table(&c, 3), 0);
	assert_int_equal(umdev_vuc_vq_init(&c, 0, 64, true), 0);
	assert_int_equal(umdev_vuc_vq_start(&c, 0, 0), 0);
	b = umdev_vuc_alloc(&c, 0, 4096, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, b, 4096, 1), VIRTIO_BLK_S_OK);
	umdev_vuc_region_desc(&c, 1, &t.regions[0]);
	st = umdev_vuc_request(&c, VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, &c.mem.regions[1].fd, 1);
	assert_true(st == 0 || st == -EIO || st == -ECONNRESET);
	if (st == 0) {
		st = proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, b, 4096, 1);
		/* The ring is gone from the back-end's view: no completion. */
		assert_int_equal(st, -ETIMEDOUT);
	}
	umdev_vuc_close(&c);
	assert_serving();
}

static void test_many_connections(void **state)
{
	struct umdev_vuc c[16];

	/* Connections opened and dropped mid-negotiation, all at once. */
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(umdev_vuc_connect(&c[i], i & 1 ? srv.sock : srv.sock2, 3000), 0);
		if (i % 3 == 0) {
			uint64_t f = 0;

			may_fail(umdev_vuc_send(&c[i], VHOST_USER_GET_FEATURES, 0, &f, 0, NULL, 0));
		}
	}
	for (unsigned i = 0; i < 16; i++)
		umdev_vuc_close(&c[i]);
	assert_serving();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_flag_from_front_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_payload_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_fd_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_mem_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_region_past_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_vring_addr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_idx_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_unmapped_under_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_connections, setup, teardown),
	};

	return cmocka_run_group_tests_name("umdevd-hostile", tests, NULL, NULL);
}
