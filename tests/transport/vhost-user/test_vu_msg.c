/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user message parsing: the validation table, and the server's
 * framing and replies driven over a real socket against a fake device
 * (no rings are started, so no data-plane loop is involved).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "umdev/loop.h"
#include "umdev/proto/vhost_user.h"
#include "umdev/vhost_user.h"

/* ---- the validation table ---- */

static void test_check_sizes(void **state)
{
	const char *why = NULL;

	assert_int_equal(umdev_vu_msg_check(VHOST_USER_GET_FEATURES, 0, 0, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_GET_FEATURES, 8, 0, 0, &why), -EINVAL);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_FEATURES, 8, 0, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_FEATURES, 4, 0, 0, &why), -EINVAL);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_VRING_ADDR, 40, 0, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_VRING_ADDR, 39, 0, 0, &why), -EINVAL);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_VRING_NUM, 8, 0, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_GET_CONFIG, 11, 0, 0, &why), -EINVAL);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_GET_CONFIG, 12 + 60, 0, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_GET_CONFIG, 12 + 257, 0, 0, &why), -EINVAL);
	assert_non_null(why);
}

static void test_check_fds(void **state)
{
	const char *why = NULL;

	/* fds where none belong */
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_FEATURES, 8, 1, 0, &why), -EINVAL);
	/* kick/call: one fd unless the no-fd flag */
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_VRING_KICK, 8, 1, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_VRING_KICK, 8, 0, 0, &why), -EINVAL);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_VRING_CALL, 8, 0,
					    VHOST_USER_VRING_NOFD, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_VRING_CALL, 8, 1,
					    VHOST_USER_VRING_NOFD, &why), -EINVAL);
	/* reserved bits in the ring index word */
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_VRING_KICK, 8, 1, 1ull << 20, &why),
			 -EINVAL);
	/* memory table: 1..8 fds */
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_MEM_TABLE, 8 + 32, 0, 0, &why), -EINVAL);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_MEM_TABLE, 8 + 32, 1, 0, &why), 0);
	/* REM_MEM_REG: QEMU sends the fd along; zero is fine too */
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_REM_MEM_REG, 40, 1, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_REM_MEM_REG, 40, 0, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_REM_MEM_REG, 40, 2, 0, &why), -EINVAL);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_INFLIGHT_FD, 20, 0, 0, &why), -EINVAL);
	/* QEMU sends the padded 24-byte struct; the spec's 20 bytes are fine too. */
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_GET_INFLIGHT_FD, 24, 0, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_GET_INFLIGHT_FD, 20, 0, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_GET_INFLIGHT_FD, 16, 0, 0, &why), -EINVAL);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_ADD_MEM_REG, 40, 1, 0, &why), 0);
}

static void test_check_unknown(void **state)
{
	const char *why = NULL;

	assert_int_equal(umdev_vu_msg_check(0, 0, 0, 0, &why), -EOPNOTSUPP);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_MAX_REQUEST, 0, 0, 0, &why), -EOPNOTSUPP);
	assert_int_equal(umdev_vu_msg_check(0xffffffffu, 0, 0, 0, &why), -EOPNOTSUPP);
	/* Known but never offered: the log eventfd, IOTLB, postcopy. */
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_LOG_FD, 0, 1, 0, &why), -EOPNOTSUPP);
	/* Migration logging: size and fds go to the handler, which always replies. */
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_LOG_BASE, 16, 1, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_LOG_BASE, 16, 0, 0, &why), 0);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_LOG_BASE, 17, 1, 0, &why), -EINVAL);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_SET_LOG_BASE, 16, 2, 0, &why), -EINVAL);
	assert_int_equal(umdev_vu_msg_check(VHOST_USER_IOTLB_MSG, 0, 0, 0, &why), -EOPNOTSUPP);
	assert_string_equal(umdev_vu_request_name(VHOST_USER_GET_INFLIGHT_FD), "GET_INFLIGHT_FD");
	assert_string_equal(umdev_vu_request_name(9999), "UNKNOWN");
}

/* ---- the server against a fake device ---- */

struct fake {
	struct umdev_virtio_dev vdev;
	uint8_t config[16];
	int resets;
};

static uint64_t fake_features(struct umdev_virtio_dev *v)
{
	return 1ull << 32 | 1ull << 5;
}

static int fake_get_config(struct umdev_virtio_dev *v, void *buf, uint32_t off, uint32_t len)
{
	struct fake *f = (struct fake *)v;

	if (off > sizeof(f->config) || len > sizeof(f->config) - off)
		return -EINVAL;
	memcpy(buf, f->config + off, len);
	return 0;
}

static void fake_handle(struct umdev_vdev_queue *q, struct umdev_vdev_req *r)
{
	fail(); /* no ring is ever started here */
}

static void fake_reset(struct umdev_virtio_dev *v)
{
	((struct fake *)v)->resets++;
}

static const struct umdev_virtio_dev_ops fake_ops = {
	.features = fake_features,
	.get_config = fake_get_config,
	.handle = fake_handle,
	.reset = fake_reset,
};

struct fixture {
	struct fake dev;
	struct umdev_vdev_queue *queues[2];
	umdev_loop *ctl;
	umdev_vu_server *srv;
	char path[108];
};

static void srv_create(void *opaque)
{
	struct fixture *fx = opaque;
	int err = 0;

	fx->srv = umdev_vu_server_new(&fx->dev.vdev, fx->ctl, fx->path, -1, &err);
}

static void srv_free(void *opaque)
{
	struct fixture *fx = opaque;

	umdev_vu_server_free(fx->srv);
}

static int setup(void **state)
{
	static struct fixture fx;
	int err = 0;

	memset(&fx, 0, sizeof(fx));
	fx.dev.vdev.ops = &fake_ops;
	strcpy(fx.dev.vdev.name, "fake0");
	fx.dev.vdev.num_queues = 2;
	fx.dev.vdev.max_queue_size = 256;
	fx.dev.vdev.config_size = sizeof(fx.dev.config);
	fx.dev.vdev.queues = fx.queues;
	for (unsigned i = 0; i < sizeof(fx.dev.config); i++)
		fx.dev.config[i] = 0xa0 + i;
	snprintf(fx.path, sizeof(fx.path), "/tmp/umdev-vu-msg-%d.sock", getpid());
	fx.ctl = umdev_loop_new("test-ctl", 0, &err);
	assert_non_null(fx.ctl);
	assert_int_equal(umdev_loop_start_thread(fx.ctl), 0);
	assert_int_equal(umdev_loop_call_sync(fx.ctl, srv_create, &fx), 0);
	assert_non_null(fx.srv);
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(umdev_loop_call_sync(fx->ctl, srv_free, fx), 0);
	umdev_loop_stop(fx->ctl);
	umdev_loop_join(fx->ctl);
	umdev_loop_free(fx->ctl);
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_msg(int fd, uint32_t req, uint32_t flags, const void *payload, uint32_t size)
{
	struct vhost_user_msg m = { .hdr = { req, VHOST_USER_VERSION | flags, size } };

	if (size)
		memcpy(&m.p, payload, size);
	assert_int_equal(send(fd, &m, sizeof(m.hdr) + size, MSG_NOSIGNAL), sizeof(m.hdr) + size);
}

/* Returns payload size, or -1 when the server closed the connection. */
static int recv_msg(int fd, struct vhost_user_msg *m)
{
	struct pollfd p = { fd, POLLIN, 0 };
	ssize_t n;

	assert_int_equal(poll(&p, 1, 5000), 1);
	n = recv(fd, &m->hdr, sizeof(m->hdr), MSG_WAITALL);
	if (n <= 0)
		return -1;
	assert_int_equal(n, sizeof(m->hdr));
	assert_true(m->hdr.size <= sizeof(m->p));
	if (m->hdr.size)
		assert_int_equal(recv(fd, &m->p, m->hdr.size, MSG_WAITALL), m->hdr.size);
	assert_int_equal(m->hdr.flags & VHOST_USER_FLAG_REPLY, VHOST_USER_FLAG_REPLY);
	return m->hdr.size;
}

static uint64_t get_u64(int fd, uint32_t req)
{
	struct vhost_user_msg m;

	send_msg(fd, req, 0, NULL, 0);
	assert_int_equal(recv_msg(fd, &m), 8);
	assert_int_equal(m.hdr.request, req);
	return m.p.u64;
}

static bool closed_by_server(int fd)
{
	struct vhost_user_msg m;

	return recv_msg(fd, &m) < 0;
}

static void test_features_and_acks(void **state)
{
	struct fixture *fx = *state;
	int fd = connect_to(fx->path);
	struct vhost_user_msg m;
	uint64_t f, pf;

	f = get_u64(fd, VHOST_USER_GET_FEATURES);
	/* The device's bits, plus the transport's: protocol features, dirty logging, packed rings. */
	assert_int_equal(f, 1ull << 32 | 1ull << 5 | 1ull << VHOST_USER_F_PROTOCOL_FEATURES |
			    1ull << VHOST_F_LOG_ALL | 1ull << 34 /* VIRTIO_F_RING_PACKED */);
	pf = get_u64(fd, VHOST_USER_GET_PROTOCOL_FEATURES);
	assert_true(pf & (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD));
	assert_true(pf & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
	assert_true(pf & (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_true(pf & (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
	/* Before REPLY_ACK is negotiated NEED_REPLY gets no answer... */
	send_msg(fd, VHOST_USER_SET_OWNER, VHOST_USER_FLAG_NEED_REPLY, NULL, 0);
	/* ...after it, every request with NEED_REPLY is acked. */
	send_msg(fd, VHOST_USER_SET_PROTOCOL_FEATURES, VHOST_USER_FLAG_NEED_REPLY, &pf, 8);
	assert_int_equal(recv_msg(fd, &m), 8);
	assert_int_equal(m.hdr.request, VHOST_USER_SET_PROTOCOL_FEATURES);
	assert_int_equal(m.p.u64, 0);
	send_msg(fd, VHOST_USER_SET_FEATURES, VHOST_USER_FLAG_NEED_REPLY, &f, 8);
	assert_int_equal(recv_msg(fd, &m), 8);
	assert_int_equal(m.p.u64, 0);
	assert_int_equal(get_u64(fd, VHOST_USER_GET_QUEUE_NUM), 2);
	assert_true(get_u64(fd, VHOST_USER_GET_MAX_MEM_SLOTS) >= 8);
	/* A refused config write is a soft failure: acked with non-zero, still connected. */
	{
		struct vhost_user_config c = { .offset = 0, .size = 4 };

		send_msg(fd, VHOST_USER_SET_CONFIG, VHOST_USER_FLAG_NEED_REPLY, &c, 12 + 4);
		assert_int_equal(recv_msg(fd, &m), 8);
		assert_int_not_equal(m.p.u64, 0);
	}
	/* STATUS round trip */
	{
		uint64_t st = 0xf;

		send_msg(fd, VHOST_USER_SET_STATUS, 0, &st, 8);
		assert_int_equal(get_u64(fd, VHOST_USER_GET_STATUS), 0xf);
	}
	send_msg(fd, VHOST_USER_RESET_DEVICE, VHOST_USER_FLAG_NEED_REPLY, NULL, 0);
	assert_int_equal(recv_msg(fd, &m), 8);
	assert_int_equal(fx->dev.resets, 1);
	assert_int_equal(get_u64(fd, VHOST_USER_GET_STATUS), 0);
	close(fd);
}

static void test_unacked_features_refused(void **state)
{
	struct fixture *fx = *state;
	int fd = connect_to(fx->path);
	uint64_t f = 1ull << 6; /* never offered */

	send_msg(fd, VHOST_USER_SET_FEATURES, 0, &f, 8);
	assert_true(closed_by_server(fd));
	close(fd);
}

static void test_config(void **state)
{
	struct fixture *fx = *state;
	int fd = connect_to(fx->path);
	struct vhost_user_config c = { .offset = 4, .size = 8 };
	struct vhost_user_msg m;

	send_msg(fd, VHOST_USER_GET_CONFIG, 0, &c, 12 + 8);
	assert_int_equal(recv_msg(fd, &m), 12 + 8);
	assert_int_equal(m.p.config.size, 8);
	assert_memory_equal(m.p.config.payload, fx->dev.config + 4, 8);
	/* Past the device's 16 bytes: the size asked for, zeros past the end. */
	c.offset = 12;
	send_msg(fd, VHOST_USER_GET_CONFIG, 0, &c, 12 + 8);
	assert_int_equal(recv_msg(fd, &m), 12 + 8);
	assert_int_equal(m.p.config.size, 8);
	assert_memory_equal(m.p.config.payload, fx->dev.config + 12, 4);
	for (unsigned i = 4; i < 8; i++)
		assert_int_equal(m.p.config.payload[i], 0);
	/* Front-ends that always ask for 256 bytes. */
	c.offset = 0;
	c.size = 256;
	send_msg(fd, VHOST_USER_GET_CONFIG, 0, &c, 12 + 256);
	assert_int_equal(recv_msg(fd, &m), 12 + 256);
	assert_int_equal(m.p.config.size, 256);
	assert_memory_equal(m.p.config.payload, fx->dev.config, 16);
	for (unsigned i = 16; i < 256; i++)
		assert_int_equal(m.p.config.payload[i], 0);
	/* Wholly past the config space, but inside what a message carries: zeros. */
	c.offset = 200;
	c.size = 16;
	send_msg(fd, VHOST_USER_GET_CONFIG, 0, &c, 12 + 16);
	assert_int_equal(recv_msg(fd, &m), 12 + 16);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(m.p.config.payload[i], 0);
	/* Past what a message can carry: a zero-length payload (the spec's error). */
	c.offset = 0xfffffff0u;
	c.size = 0x20;
	send_msg(fd, VHOST_USER_GET_CONFIG, 0, &c, 12);
	assert_int_equal(recv_msg(fd, &m), 0);
	assert_int_equal(get_u64(fd, VHOST_USER_GET_QUEUE_NUM), 2);
	close(fd);
}

/* A message that trickles in byte by byte is still one message. */
static void test_fragmented(void **state)
{
	struct fixture *fx = *state;
	int fd = connect_to(fx->path);
	struct vhost_user_msg m = { .hdr = { VHOST_USER_GET_QUEUE_NUM, VHOST_USER_VERSION, 0 } };

	for (unsigned i = 0; i < sizeof(m.hdr); i++) {
		assert_int_equal(send(fd, (uint8_t *)&m + i, 1, 0), 1);
		usleep(2000);
	}
	assert_int_equal(recv_msg(fd, &m), 8);
	assert_int_equal(m.p.u64, 2);
	close(fd);
}

static void expect_closed_after(struct fixture *fx, const void *raw, size_t len)
{
	int fd = connect_to(fx->path), fd2;

	assert_int_equal(send(fd, raw, len, MSG_NOSIGNAL), (ssize_t)len);
	assert_true(closed_by_server(fd));
	close(fd);
	/* The server lives on and serves the next front-end. */
	fd2 = connect_to(fx->path);
	assert_int_equal(get_u64(fd2, VHOST_USER_GET_QUEUE_NUM), 2);
	close(fd2);
}

static void test_malformed(void **state)
{
	struct fixture *fx = *state;
	struct vhost_user_header h;
	struct vhost_user_vring_state st = { .index = 7, .num = 64 };
	uint8_t buf[64];

	/* oversized payload */
	h = (struct vhost_user_header){ VHOST_USER_SET_FEATURES, VHOST_USER_VERSION, 0x10000 };
	expect_closed_after(fx, &h, sizeof(h));
	/* wrong version */
	h = (struct vhost_user_header){ VHOST_USER_GET_FEATURES, 0x2, 0 };
	expect_closed_after(fx, &h, sizeof(h));
	/* unknown request */
	h = (struct vhost_user_header){ 777, VHOST_USER_VERSION, 0 };
	expect_closed_after(fx, &h, sizeof(h));
	/* short payload for its request */
	h = (struct vhost_user_header){ VHOST_USER_SET_VRING_ADDR, VHOST_USER_VERSION, 8 };
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	expect_closed_after(fx, buf, sizeof(h) + 8);
	/* a kick without its fd */
	h = (struct vhost_user_header){ VHOST_USER_SET_VRING_KICK, VHOST_USER_VERSION, 8 };
	memcpy(buf, &h, sizeof(h));
	expect_closed_after(fx, buf, sizeof(h) + 8);
	(void)st;
	/* memory table with no fds */
	{
		struct vhost_user_msg m = { .hdr = { VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION,
						     8 + 32 } };
		m.p.mem.nregions = 1;
		m.p.mem.regions[0].memory_size = 4096;
		expect_closed_after(fx, &m, sizeof(m.hdr) + 8 + 32);
	}
}

static void send_fd_msg(int fd, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
			int sfd)
{
	struct vhost_user_msg m = { .hdr = { req, VHOST_USER_VERSION | flags, size } };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &m, sizeof(m.hdr) + size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memcpy(&m.p, payload, size);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &sfd, sizeof(int));
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)iov.iov_len);
}

/* The ack of a NEED_REPLY request: 0 done, non-zero refused. */
static uint64_t ack_of(int fd, uint32_t req)
{
	struct vhost_user_msg m;

	assert_int_equal(recv_msg(fd, &m), 8);
	assert_int_equal(m.hdr.request, req);
	return m.p.u64;
}

/*
 * Requests naming a ring the device does not have, bad ring sizes and fds
 * that are not eventfds are refused (a failed ack) without dropping the
 * connection: the front-end carries on with what the device has.
 */
static void test_soft_refusals(void **state)
{
	struct fixture *fx = *state;
	int fd = connect_to(fx->path);
	uint64_t pf = 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK, idx;
	struct vhost_user_vring_state st = { .index = 7, .num = 64 };
	const uint32_t nr = VHOST_USER_FLAG_NEED_REPLY;
	struct vhost_user_msg m;
	int efd = eventfd(0, EFD_CLOEXEC), p[2];

	(void)fx;
	assert_true(efd >= 0);
	assert_int_equal(pipe(p), 0);
	send_msg(fd, VHOST_USER_SET_PROTOCOL_FEATURES, 0, &pf, 8);
	send_msg(fd, VHOST_USER_SET_VRING_NUM, nr, &st, sizeof(st));
	assert_int_not_equal(ack_of(fd, VHOST_USER_SET_VRING_NUM), 0);
	send_msg(fd, VHOST_USER_SET_VRING_ENABLE, nr, &st, sizeof(st));
	assert_int_not_equal(ack_of(fd, VHOST_USER_SET_VRING_ENABLE), 0);
	idx = 7;
	send_fd_msg(fd, VHOST_USER_SET_VRING_KICK, nr, &idx, 8, efd);
	assert_int_not_equal(ack_of(fd, VHOST_USER_SET_VRING_KICK), 0);
	/* GET_VRING_BASE always answers. */
	send_msg(fd, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st));
	assert_int_equal(recv_msg(fd, &m), sizeof(st));
	assert_int_equal(m.p.state.num, 0);
	/* A ring size that is not a power of two. */
	st = (struct vhost_user_vring_state){ .index = 0, .num = 100 };
	send_msg(fd, VHOST_USER_SET_VRING_NUM, nr, &st, sizeof(st));
	assert_int_not_equal(ack_of(fd, VHOST_USER_SET_VRING_NUM), 0);
	/* A call fd that is a pipe: a write could block a data-plane thread. */
	idx = 0;
	send_fd_msg(fd, VHOST_USER_SET_VRING_CALL, nr, &idx, 8, p[1]);
	assert_int_not_equal(ack_of(fd, VHOST_USER_SET_VRING_CALL), 0);
	/* An eventfd is taken, and made non-blocking. */
	send_fd_msg(fd, VHOST_USER_SET_VRING_CALL, nr, &idx, 8, efd);
	assert_int_equal(ack_of(fd, VHOST_USER_SET_VRING_CALL), 0);
	assert_true(fcntl(efd, F_GETFL) & O_NONBLOCK);
	st = (struct vhost_user_vring_state){ .index = 0, .num = 64 };
	send_msg(fd, VHOST_USER_SET_VRING_NUM, nr, &st, sizeof(st));
	assert_int_equal(ack_of(fd, VHOST_USER_SET_VRING_NUM), 0);
	assert_int_equal(get_u64(fd, VHOST_USER_GET_QUEUE_NUM), 2);
	close(p[0]);
	close(p[1]);
	close(efd);
	close(fd);
}

static void test_second_connection_refused(void **state)
{
	struct fixture *fx = *state;
	int fd = connect_to(fx->path), fd2;

	assert_int_equal(get_u64(fd, VHOST_USER_GET_QUEUE_NUM), 2);
	fd2 = connect_to(fx->path);
	assert_true(closed_by_server(fd2));
	close(fd2);
	assert_int_equal(get_u64(fd, VHOST_USER_GET_QUEUE_NUM), 2);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_sizes),
		cmocka_unit_test(test_check_fds),
		cmocka_unit_test(test_check_unknown),
		cmocka_unit_test_setup_teardown(test_features_and_acks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unacked_features_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fragmented, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_soft_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_connection_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
