/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The hostile "VMM" of e2e-multitenant: a vhost-user front-end that attacks
 * its own device of a umdevd that also serves a real guest's disk.
 *
 * Concepts: each step named on the command line runs in order:
 * - data-gone: guest memory is two memfd regions, the ring in region 0 and
 *   the data buffers in region 1. After a few good requests, more requests
 *   are posted, region 1's memfd is truncated to 0 and the ring is kicked:
 *   umdevd reads intact descriptors that point into memory that no longer
 *   exists (a plain load or store there raises SIGBUS).
 * - ring-gone: the same, but region 0 (the ring itself) is truncated.
 * - burst: a new connection negotiates, then sends valid requests that
 *   change nothing and have no reply (SET_FEATURES with what was acked) as
 *   fast as umdevd takes them, then garbage; then it is closed.
 * - flood: a new connection sends valid requests that each have a reply
 *   (GET_FEATURES, GET_CONFIG, ...) at FLOOD_RATE a second and never reads
 *   one, then garbage; then more connections send only garbage, and last a
 *   front-end negotiates, sends half a message and stops. That one and the
 *   garbage connections stay open.
 * - hold: keep every connection open and unread until SIGTERM (or 300 s),
 *   so that the runner can check that umdevd still exits promptly with
 *   peers that never finish a message or read a reply. Prints
 *   "HOSTILE-HOLDING" first.
 * After a truncation step umdevd must close our connection (the device
 * failed; reading EOF is all a front-end can observe of that). The floods
 * report what umdevd did (kept reading, stopped, hung up) without judging:
 * the runner judges umdevd by its other device and its shutdown.
 *
 * Output: one "hostile: ..." line per action, then "HOSTILE-FAIL why" and
 * exit status 1 when umdevd did not behave as promised; "HOSTILE-DONE" and
 * status 0 when every step is done (and the last was not hold).
 *
 * Usage: e2e-hostile-tenant SOCKET STEP...
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client/vhost_user_client.h"

#define REGION_BYTES (2u << 20)
#define QSIZE 64
#define IO_BYTES 4096
#define GOOD_IOS 8
#define POSTED_IOS 16
/* How long umdevd may take to drop a device whose memory is gone. */
#define DISCONNECT_WAIT_MS 10000
/* The valid-request flood stops when umdevd has not taken a byte for this
 * long (it stopped reading us), or after FLOOD_MAX_MS in all. */
#define FLOOD_STALL_MS 2000
#define FLOOD_MAX_MS 10000
/* Requests a second in the steady flood: well below the 20000 at which
 * umdevd drops a connection as a flood, so that its replies pile up. */
#define FLOOD_RATE 5000
#define GARBAGE_CONNS 6
#define HOLD_MAX_S 300

static const char *sock_path;
/* Connections kept open (and never read) until we are told to go. */
static struct umdev_vuc held_conn;
static int garbage_fds[GARBAGE_CONNS];

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("hostile: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

static void __attribute__((noreturn)) fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("HOSTILE-FAIL ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
	exit(1);
}

/*
 * Bring a device up over a new connection with two memory regions: the
 * ring (and the request headers) in region 0, data buffers in region 1.
 * Then prove it works: GOOD_IOS writes, each read back and compared.
 * Returns the guest address of POSTED_IOS data buffers in region 1.
 */
static uint64_t start_working_device(struct umdev_vuc *c)
{
	uint64_t data;
	int r;

	r = umdev_vuc_connect(c, sock_path, 10000);
	if (r)
		fail("cannot connect to %s: %s", sock_path, strerror(-r));
	r = umdev_vuc_start_blk(c, 1, QSIZE, 2, REGION_BYTES, 0);
	if (r)
		fail("device bring-up failed: %s", strerror(-r));
	data = umdev_vuc_alloc(c, 1, (uint64_t)IO_BYTES * POSTED_IOS, 4096);
	if (!data)
		fail("no room for data buffers in region 1");
	for (unsigned i = 0; i < GOOD_IOS; i++) {
		struct umdev_vqd_buf b = { .addr = data, .len = IO_BYTES };
		uint8_t *p = umdev_vuc_gpa_ptr(c, data, IO_BYTES);
		uint8_t *q = umdev_vuc_gpa_ptr(c, data + IO_BYTES, IO_BYTES);
		int st;

		memset(p, 0xa0 + (int)i, IO_BYTES);
		st = umdev_vblk_io(c, 0, VIRTIO_BLK_T_OUT, i * 8, &b, 1, 5000);
		if (st != VIRTIO_BLK_S_OK)
			fail("write %u before the attack: status %d", i, st);
		b.addr = data + IO_BYTES;
		b.write = true;
		memset(q, 0, IO_BYTES);
		st = umdev_vblk_io(c, 0, VIRTIO_BLK_T_IN, i * 8, &b, 1, 5000);
		if (st != VIRTIO_BLK_S_OK || memcmp(p, q, IO_BYTES))
			fail("read-back %u before the attack: status %d, data %s", i, st,
			     memcmp(p, q, IO_BYTES) ? "differs" : "same");
	}
	say("device works: %u writes read back intact", GOOD_IOS);
	return data;
}

/*
 * Post requests without kicking, take the memory of @region away, kick.
 * From the truncation on, neither we nor umdevd may touch that region:
 * our own mapping of it faults as well.
 */
static void truncate_and_kick(const char *step, unsigned region)
{
	struct umdev_vuc c;
	uint64_t data = start_working_device(&c);
	uint64_t t0;
	int r;

	for (unsigned i = 0; i < POSTED_IOS; i++) {
		struct umdev_vqd_buf b = { .addr = data + (uint64_t)i * IO_BYTES,
					   .len = IO_BYTES,
					   .write = (i & 1) != 0 };

		r = umdev_vblk_submit(&c, 0, (i & 1) ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
				      64 + (uint64_t)i * 8, &b, 1, i, true);
		if (r)
			fail("%s: cannot post request %u: %s", step, i, strerror(-r));
	}
	if (ftruncate(c.mem.regions[region].fd, 0))
		fail("%s: ftruncate: %s", step, strerror(errno));
	say("%s: %u requests posted, region %u (%s) truncated to 0 bytes", step, POSTED_IOS,
	    region, region ? "data buffers" : "the ring");
	t0 = now_ms();
	r = umdev_vuc_kick(&c, 0);
	if (r)
		fail("%s: kick: %s", step, strerror(-r));
	if (!umdev_vuc_is_closed(&c, DISCONNECT_WAIT_MS))
		fail("%s: umdevd kept the connection open %d s after its device touched "
		     "memory that is gone", step, DISCONNECT_WAIT_MS / 1000);
	say("%s: umdevd closed the connection %llu ms after the kick", step,
	    (unsigned long long)(now_ms() - t0));
	umdev_vuc_close(&c);
}

/*
 * A valid request that changes nothing, in a fixed rotation: with @replies,
 * requests that each have a reply; without, SET_FEATURES repeating what was
 * acked (no reply asked for). Returns the message size.
 */
static size_t useless_request(const struct umdev_vuc *c, unsigned i, bool replies,
			      struct vhost_user_msg *m)
{
	static const uint32_t reqs[] = { VHOST_USER_GET_FEATURES,
					 VHOST_USER_GET_PROTOCOL_FEATURES,
					 VHOST_USER_GET_QUEUE_NUM, VHOST_USER_GET_CONFIG,
					 VHOST_USER_SET_FEATURES };

	memset(m, 0, sizeof(*m));
	m->hdr.request = replies ? reqs[i % (sizeof(reqs) / sizeof(reqs[0]))]
				 : VHOST_USER_SET_FEATURES;
	m->hdr.flags = VHOST_USER_VERSION;
	switch (m->hdr.request) {
	case VHOST_USER_GET_CONFIG:
		m->hdr.size = VHOST_USER_CONFIG_HDR_SIZE + 8;
		m->p.config.offset = 0;
		m->p.config.size = 8; /* capacity */
		break;
	case VHOST_USER_SET_FEATURES:
		if (replies)
			m->hdr.flags |= VHOST_USER_FLAG_NEED_REPLY;
		m->hdr.size = sizeof(uint64_t);
		m->p.u64 = c->acked_features;
		break;
	default:
		break;
	}
	return sizeof(m->hdr) + m->hdr.size;
}

/* Garbage: random bytes, then headers that lie about their size or version. */
static size_t garbage(uint8_t *buf, size_t len, unsigned seed)
{
	struct vhost_user_header h;

	srand(seed);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rand();
	h = (struct vhost_user_header){ VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION,
					0xfffffff0u };
	memcpy(buf + 64, &h, sizeof(h));
	h = (struct vhost_user_header){ VHOST_USER_GET_FEATURES, 0x3f, 0 };
	memcpy(buf + 128, &h, sizeof(h));
	return len;
}

/*
 * Push @len bytes without ever blocking or reading. Returns how many went in
 * before the socket stayed full for @stall_ms, or -errno if umdevd hung up.
 */
static ssize_t push(int fd, const uint8_t *buf, size_t len, int stall_ms)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN)
			return off ? (ssize_t)off : -errno;
		{
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			int r = poll(&p, 1, stall_ms);

			if (r > 0 && (p.revents & (POLLERR | POLLHUP)))
				return off ? (ssize_t)off : -EPIPE;
			if (r <= 0)
				break;
		}
	}
	return (ssize_t)off;
}

/* Connect and negotiate as a front-end would; fails the run if refused. */
static void connect_front_end(const char *step, struct umdev_vuc *c)
{
	int r = umdev_vuc_connect(c, sock_path, 10000);

	if (r)
		fail("%s: cannot reconnect to %s: %s", step, sock_path, strerror(-r));
	r = umdev_vuc_negotiate(c, ~0ull);
	if (r == 0)
		r = umdev_vuc_set_features(c, 1ull << VIRTIO_F_VERSION_1);
	if (r)
		fail("%s: negotiation on a new connection failed: %s", step, strerror(-r));
}

/*
 * Valid requests on a new connection @c, never reading a reply, @rate a
 * second (0: as fast as they go in), until umdevd stops taking them, hangs
 * up, or FLOOD_MAX_MS pass; then garbage.
 */
static void flood(const char *step, struct umdev_vuc *c, bool replies, unsigned rate)
{
	static uint8_t junk[64 * 1024];
	uint64_t t0, now, msgs = 0, bytes = 0;
	const char *end = "umdevd stopped reading";
	ssize_t n;

	connect_front_end(step, c);
	say("%s: new connection negotiated; now requests %s at %s, reading nothing", step,
	    replies ? "with replies" : "without replies", rate ? "a steady rate" : "full speed");
	t0 = now_ms();
	for (;;) {
		struct vhost_user_msg m;
		size_t len = useless_request(c, (unsigned)msgs, replies, &m);

		n = push(c->sock, (const uint8_t *)&m, len, FLOOD_STALL_MS);
		if (n < 0) {
			end = "umdevd closed the connection";
			break;
		}
		bytes += (uint64_t)n;
		if ((size_t)n < len)
			break; /* stalled: umdevd no longer takes our bytes */
		msgs++;
		now = now_ms();
		if (now - t0 > FLOOD_MAX_MS) {
			end = "time limit; umdevd kept reading";
			break;
		}
		if (rate && msgs % 100 == 0 && msgs * 1000 / rate > now - t0)
			usleep((useconds_t)((msgs * 1000 / rate - (now - t0)) * 1000));
	}
	say("%s: %llu requests (%llu bytes) in %llu ms, then: %s", step,
	    (unsigned long long)msgs, (unsigned long long)bytes,
	    (unsigned long long)(now_ms() - t0), end);
	n = push(c->sock, junk, garbage(junk, sizeof(junk), 1), 500);
	say("%s: then %zd garbage bytes taken", step, n);
}

/* Requests without replies, as fast as they go. */
static void burst(void)
{
	struct umdev_vuc c;

	flood("burst", &c, false, 0);
	umdev_vuc_close(&c);
}

/*
 * Requests with replies at a steady rate, never read; garbage from more
 * connections; last, a front-end that sends half a message and stops.
 */
static void steady_flood(void)
{
	static uint8_t junk[64 * 1024];
	struct umdev_vuc c;
	struct vhost_user_msg m;
	ssize_t n;

	flood("flood", &c, true, FLOOD_RATE);
	umdev_vuc_close(&c);
	for (unsigned k = 0; k < GARBAGE_CONNS; k++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		garbage_fds[k] = fd;
		if (fd < 0)
			fail("socket: %s", strerror(errno));
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			say("flood: extra connection %u: connect: %s", k, strerror(errno));
			continue;
		}
		n = push(fd, junk, garbage(junk, sizeof(junk), 100 + k), 200);
		say("flood: extra connection %u: %zd garbage bytes taken", k, n);
	}
	/* Each is refused or dropped for its garbage; until then, a new
	 * front-end could be refused as a second one. */
	for (unsigned k = 0; k < GARBAGE_CONNS; k++) {
		struct pollfd p = { .fd = garbage_fds[k], .events = POLLRDHUP };

		if (poll(&p, 1, DISCONNECT_WAIT_MS) != 1)
			fail("flood: umdevd left garbage connection %u open for %d s", k,
			     DISCONNECT_WAIT_MS / 1000);
	}
	say("flood: umdevd closed every garbage connection");
	connect_front_end("half", &held_conn);
	n = (ssize_t)useless_request(&held_conn, 3, true, &m); /* GET_CONFIG */
	n = push(held_conn.sock, (const uint8_t *)&m, (size_t)n / 2, 500);
	say("half: a front-end sent %zd bytes of a %zu-byte message and stops there", n,
	    sizeof(m.hdr) + m.hdr.size);
}

static void hold(void)
{
	printf("HOSTILE-HOLDING\n");
	fflush(stdout);
	for (unsigned s = 0; s < HOLD_MAX_S; s++)
		sleep(1);
	say("held for %u s without being told to stop", HOLD_MAX_S);
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SOCKET data-gone|ring-gone|burst|flood|hold...\n", argv[0]);
		return 2;
	}
	/* Never outlive the runner, and leave quietly when it says so. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGTERM, on_term);
	sock_path = argv[1];
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "data-gone"))
			truncate_and_kick(argv[i], 1);
		else if (!strcmp(argv[i], "ring-gone"))
			truncate_and_kick(argv[i], 0);
		else if (!strcmp(argv[i], "burst"))
			burst();
		else if (!strcmp(argv[i], "flood"))
			steady_flood();
		else if (!strcmp(argv[i], "hold"))
			hold();
		else
			fail("unknown step %s", argv[i]);
	}
	printf("HOSTILE-DONE\n");
	return 0;
}
