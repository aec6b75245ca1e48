/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target for the vhost-user server: framing, validation, every handler,
 * the ring life cycle behind them and the virtio-blk data path they start.
 *
 * It is stateful. One input is a sequence of steps a front-end plays against
 * a fresh server (umdev_vu_server_new() on one end of a socketpair, serving a
 * virtio-blk device with a ram: or null: backend):
 * - send a message (any bytes, sometimes in two writes) with real fds
 *   attached: memfds of chosen sizes (sealed or not, maybe smaller than the
 *   region they are sent for), eventfds, pipe ends (one kind full and
 *   blocking), /dev/null, a directory, a socket, or an fd sent before; up to
 *   ten of them, more than the protocol allows;
 * - write into a memfd sent before (rings, requests), or shrink it under the
 *   server's mapping;
 * - kick a ring through an eventfd, pipe or socket sent before;
 * - wait for the answer to a GET_QUEUE_NUM, so that later steps meet the
 *   state the earlier ones set up (only when the stream is at a message
 *   boundary).
 * Replies are read all along, so the socket never fills, and their framing is
 * checked. After the input the front-end hangs up and waits for the server
 * to close; the server and the device are freed, and the process must then
 * hold exactly the fds it held before the input: a leak is a finding, as are
 * a crash, a sanitizer report, a malformed reply and (built-in driver) a hang.
 *
 * Input format (the built-in generator writes it, libFuzzer mutates it):
 *   input  := cfg:u8 step*
 *   cfg    := bit 0 null:64M backend (else ram:1M), bit 1 two queues,
 *             bits 2-4 all set: busy-polling queues, bit 5 adaptive polling
 *   step   := op:u8, then by op % 8:
 *     0-3 MSG   nfds:u8 (% 11) fdspec[nfds] split:u16 len:u16 bytes[len]
 *               (split: first write ends there, with the fds; 0: one write)
 *     4   POKE  which:u8 off:u32 len:u16 fill:u8, then bytes[len], or a
 *               single byte repeated len times when fill is odd
 *     5   KICK  which:u8 (among the eventfds, pipe read ends, sockets sent)
 *     6   SYNC
 *     7   TRUNC which:u8 size:u32 (among the memfds sent)
 *   fdspec := kind:u8 (enum fz_fd_kind, % FD_KINDS) arg:u32 (memfd size, or
 *             the index of the fd to send again)
 *
 * Two ways to run it:
 * - clang -fsanitize=fuzzer (coverage-guided libFuzzer), see fuzz/meson.build;
 * - the built-in driver (fuzz_vu_gen.c; any compiler; what CI runs): a
 *   generator biased to plausible sessions (negotiation, memory table, ring setup, I/O, then
 *   mutations, reordering, ring restarts, resets, memory hot-plug):
 *     fuzz-vu-msg [--seconds N] [--seed S] [--only I] [--verbose]
 *     fuzz-vu-msg --replay FILE        (one input, e.g. a saved crash)
 *     fuzz-vu-msg --corpus DIR N       (write N generated inputs, a seed
 *                                       corpus for libFuzzer)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "umdev/blk.h"
#include "umdev/log.h"
#include "umdev/mem.h"
#include "umdev/loop.h"
#include "umdev/proto/vhost_user.h"
#include "umdev/vhost_user.h"
#include "umdev/virtio.h"

#include "fuzz_vu.h"
#include "util/sock.h"

static umdev_loop *ctl, *dp[2];
/*
 * To look past a known bug while it is unfixed, FUZZ_VU_AVOID lists what not
 * to do: "blocking-fds" (a pipe with room instead of a full blocking one),
 * "shrink" (TRUNC only grows a memfd), "misaligned-rings" (SET_VRING_ADDR
 * addresses are aligned as virtio requires before they are sent). Empty by
 * default.
 */
static bool avoid_blocking_fds, avoid_shrink, avoid_misaligned;
static bool trace; /* each step on stderr (--verbose) */

/* ---- findings ---- */

/* Where a finding is reported: stderr is silenced during the run (logs). */
static int saved_stderr = -1;
static const char *crash_file = "fuzz-vu-crash.bin";
#define STDERR_LOG "fuzz-vu-stderr.log" /* the running input's logs (built-in driver) */
static uint64_t cur_iter, cur_seed;
static const uint8_t *cur_input;
static size_t cur_len;
static bool builtin_driver;

static void say(const char *s)
{
	if (write(saved_stderr >= 0 ? saved_stderr : 2, s, strlen(s)) < 0)
		return;
}

static void save_input(void)
{
	int fd = open(crash_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return;
	if (write(fd, cur_input, cur_len) < 0)
		say("fuzz-vu-msg: cannot save the input\n");
	close(fd);
}

static void report(const char *what)
{
	char msg[320];

	save_input();
	if (builtin_driver)
		snprintf(msg, sizeof(msg),
			 "fuzz-vu-msg: %s on input %llu of seed 0x%llx, saved to %s; rerun with "
			 "--seed 0x%llx --only %llu --verbose, or --replay %s (its logs: "
			 STDERR_LOG ")\n",
			 what, (unsigned long long)cur_iter, (unsigned long long)cur_seed,
			 crash_file, (unsigned long long)cur_seed, (unsigned long long)cur_iter,
			 crash_file);
	else
		snprintf(msg, sizeof(msg), "fuzz-vu-msg: %s\n", what);
	say(msg);
}

/* A finding that is not a signal: report, then crash so every runner sees it. */
static void finding(const char *what)
{
	report(what);
	signal(SIGABRT, SIG_DFL);
	abort();
}

static struct sigaction old_act[NSIG];

static void on_signal(int sig)
{
	char what[64];

	snprintf(what, sizeof(what), sig == SIGALRM ? "hang (watchdog)" : "signal %d", sig);
	report(what);
	if (sig == SIGALRM) {
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	/* Hand over to whoever was there before (ASan prints its report). */
	sigaction(sig, &old_act[sig], NULL);
	if (sig == SIGABRT)
		raise(sig);
}

static void catch_signals(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGALRM };
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, &old_act[sigs[i]]);
}

/* The fds the process holds and what they are, to compare and to report. */
struct fd_list {
	int n;
	int fd[256];
	char what[256][48];
};

static void list_fds(struct fd_list *l)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		finding("cannot read /proc/self/fd");
	l->n = 0;
	while ((e = readdir(d)) && l->n < 256) {
		char path[300];
		ssize_t k;

		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		k = readlink(path, l->what[l->n], sizeof(l->what[0]) - 1);
		l->what[l->n][k > 0 ? k : 0] = 0;
		l->fd[l->n++] = atoi(e->d_name);
	}
	closedir(d);
}

/* Report what is in @a and not in @b. */
static void fd_diff(const struct fd_list *a, const struct fd_list *b, const char *label)
{
	for (int i = 0; i < a->n; i++) {
		bool found = false;
		char line[128];

		for (int j = 0; j < b->n && !found; j++)
			found = a->fd[i] == b->fd[j] && !strcmp(a->what[i], b->what[j]);
		if (found)
			continue;
		snprintf(line, sizeof(line), "  %s fd %d: %s\n", label, a->fd[i], a->what[i]);
		say(line);
	}
}

/* ---- the front-end side of one input ---- */

struct fz {
	umdev_blk *blk;
	umdev_vu_server *srv;
	int sv[2]; /* [0] ours, [1] the server's */
	int err;
	bool eof; /* the server closed, or our writes fail */

	/* fds we created and sent (ours stay open until the input ends) */
	int fd[MAX_ENTRIES];
	int partner[MAX_ENTRIES]; /* the other end of a pipe or socketpair */
	uint8_t kind[MAX_ENTRIES];
	unsigned n;

	/* where our stream stands in the server's framing */
	uint8_t hdr[sizeof(struct vhost_user_header)];
	size_t hgot;
	uint64_t left;

	/* replies */
	uint8_t rbuf[2 * sizeof(struct vhost_user_msg)];
	size_t rlen;
	unsigned syncs;
};

static void srv_create(void *opaque)
{
	struct fz *f = opaque;

	f->srv = umdev_vu_server_new(umdev_blk_vdev(f->blk), ctl, NULL, f->sv[1], &f->err);
}

static void srv_free(void *opaque)
{
	struct fz *f = opaque;

	umdev_vu_server_free(f->srv);
}

static void fill_pipe(int wfd)
{
	static const uint8_t junk[4096];
	int fl = fcntl(wfd, F_GETFL);

	(void)fcntl(wfd, F_SETPIPE_SZ, 4096);
	(void)fcntl(wfd, F_SETFL, fl | O_NONBLOCK);
	while (write(wfd, junk, sizeof(junk)) > 0)
		;
	(void)fcntl(wfd, F_SETFL, fl & ~O_NONBLOCK);
}

/* An fd of @kind to send; we keep it (and its partner) until the input ends. */
static int make_fd(struct fz *f, unsigned kind, uint32_t arg)
{
	int fd = -1, other = -1, p[2];

	if (kind == FD_REUSE || f->n == MAX_ENTRIES)
		return f->n ? f->fd[arg % f->n] : -1;
	if (kind == FD_PIPE_FULL && avoid_blocking_fds)
		kind = FD_PIPE_W;
	switch (kind) {
	case FD_MEMFD:
	case FD_MEMFD_SEALED:
		fd = memfd_create("fz-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd >= 0 && ftruncate(fd, arg % (MAX_MEMFD_SIZE + 1)) < 0) {
			close(fd);
			fd = -1;
		}
		if (fd >= 0 && kind == FD_MEMFD_SEALED)
			(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
		break;
	case FD_EVENTFD:
		fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		break;
	case FD_PIPE_R:
	case FD_PIPE_W:
	case FD_PIPE_FULL:
		if (pipe2(p, O_CLOEXEC | (kind == FD_PIPE_FULL ? 0 : O_NONBLOCK)) < 0)
			break;
		fd = kind == FD_PIPE_R ? p[0] : p[1];
		other = kind == FD_PIPE_R ? p[1] : p[0];
		if (kind == FD_PIPE_FULL)
			fill_pipe(p[1]);
		break;
	case FD_DEVNULL:
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		break;
	case FD_DIR:
		fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		break;
	default:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p) < 0)
			break;
		fd = p[0];
		other = p[1];
		break;
	}
	if (fd < 0)
		return -1;
	f->fd[f->n] = fd;
	f->partner[f->n] = other;
	f->kind[f->n] = (uint8_t)kind;
	f->n++;
	return fd;
}

static bool is_memfd(unsigned kind)
{
	return kind == FD_MEMFD || kind == FD_MEMFD_SEALED;
}

/* The fd to write to for a kick, or -1. */
static int kick_target(const struct fz *f, unsigned i)
{
	switch (f->kind[i]) {
	case FD_EVENTFD:
		return f->fd[i];
	case FD_PIPE_R:
	case FD_SOCK:
		return f->partner[i];
	default:
		return -1;
	}
}

/* Entry @which among those @want accepts, or -1. */
static int nth_entry(const struct fz *f, unsigned which, bool memfds)
{
	unsigned cnt = 0;

	for (unsigned i = 0; i < f->n; i++)
		cnt += memfds ? is_memfd(f->kind[i]) : kick_target(f, i) >= 0;
	if (!cnt)
		return -1;
	which %= cnt;
	for (unsigned i = 0; i < f->n; i++) {
		if (!(memfds ? is_memfd(f->kind[i]) : kick_target(f, i) >= 0))
			continue;
		if (which-- == 0)
			return (int)i;
	}
	return -1;
}

/* Follow our own stream with the server's framing rules. */
static void track(struct fz *f, const uint8_t *b, size_t len)
{
	while (len) {
		size_t take;

		if (f->hgot < sizeof(f->hdr)) {
			take = sizeof(f->hdr) - f->hgot < len ? sizeof(f->hdr) - f->hgot : len;
			memcpy(f->hdr + f->hgot, b, take);
			f->hgot += take;
			if (f->hgot == sizeof(f->hdr)) {
				struct vhost_user_header h;

				memcpy(&h, f->hdr, sizeof(h));
				f->left = h.size;
			}
		} else {
			take = f->left < len ? f->left : len;
			f->left -= take;
		}
		b += take;
		len -= take;
		if (f->hgot == sizeof(f->hdr) && f->left == 0)
			f->hgot = 0;
	}
}

/* Check and consume complete replies in f->rbuf. */
static void parse_replies(struct fz *f)
{
	size_t off = 0;

	while (f->rlen - off >= sizeof(struct vhost_user_header)) {
		struct vhost_user_header h;

		memcpy(&h, f->rbuf + off, sizeof(h));
		if ((h.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
		    !(h.flags & VHOST_USER_FLAG_REPLY) || h.request >= VHOST_USER_MAX_REQUEST ||
		    h.size > sizeof(union vhost_user_payload))
			finding("malformed reply from the server");
		if (f->rlen - off < sizeof(h) + h.size)
			break;
		if (h.request == VHOST_USER_GET_QUEUE_NUM)
			f->syncs++;
		off += sizeof(h) + h.size;
	}
	memmove(f->rbuf, f->rbuf + off, f->rlen - off);
	f->rlen -= off;
}

/* Read what the server sent, waiting up to @ms (-1: forever) for something. */
static void drain(struct fz *f, int ms)
{
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int) * 16)];
		struct iovec iov = { f->rbuf + f->rlen, sizeof(f->rbuf) - f->rlen };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct pollfd p = { f->sv[0], POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, ms) <= 0)
			return;
		n = recvmsg(f->sv[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			f->eof = true; /* (mh untouched: no fds to look at) */
			return;
		}
		/* The fds a reply carries (GET_INFLIGHT_FD) are ours to close. */
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				close(fd);
			}
		}
		if (n == 0) {
			f->eof = true;
			return;
		}
		f->rlen += (size_t)n;
		parse_replies(f);
		ms = 0;
	}
}

static bool send_chunk(struct fz *f, const uint8_t *b, size_t len, const int *fds, unsigned nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_SEND_FDS)];
	struct iovec iov = { (void *)b, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (umdev_msg_attach_fds(&mh, cbuf, sizeof(cbuf), fds, nfds) < 0)
		return false;
	while (iov.iov_len) {
		/* Blocking: a server that stops reading is a hang (watchdog). */
		ssize_t n = sendmsg(f->sv[0], &mh, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			f->eof = true;
			return false;
		}
		track(f, iov.iov_base, (size_t)n);
		iov.iov_base = (uint8_t *)iov.iov_base + n;
		iov.iov_len -= (size_t)n;
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
	}
	return true;
}

/* ---- reading an input ---- */

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint64_t get(struct rd *r, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes && r->n; i++, r->p++, r->n--)
		v |= (uint64_t)*r->p << (8 * i);
	return v;
}

/*
 * FUZZ_VU_AVOID=misaligned-rings: a copy of message @b whose ring and region
 * addresses keep the host addresses of rings aligned (a region's user address
 * and mmap offset decide them as much as the ring's own address).
 */
static const uint8_t *align_rings(const uint8_t *b, size_t len)
{
	static uint8_t copy[1 << 16];
	const size_t h = sizeof(struct vhost_user_header);
	uint32_t req;

	memcpy(&req, b, len < 4 ? len : 4);
	if (len < 4 || len > sizeof(copy))
		return b;
	memcpy(copy, b, len);
	if (req == VHOST_USER_SET_VRING_ADDR && len >= h + 40) {
		struct vhost_user_vring_addr a;

		memcpy(&a, copy + h, sizeof(a));
		a.desc_user_addr &= ~15ull;
		a.avail_user_addr &= ~15ull;
		a.used_user_addr &= ~15ull;
		memcpy(copy + h, &a, sizeof(a));
	} else if (req == VHOST_USER_SET_MEM_TABLE || req == VHOST_USER_ADD_MEM_REG) {
		/* regions start 8 bytes into either payload */
		for (size_t off = h + 8; off + sizeof(struct vhost_user_mem_region) <= len;
		     off += sizeof(struct vhost_user_mem_region)) {
			struct vhost_user_mem_region r;

			memcpy(&r, copy + off, sizeof(r));
			r.guest_phys_addr &= ~15ull;
			r.userspace_addr &= ~15ull;
			r.mmap_offset &= ~15ull;
			memcpy(copy + off, &r, sizeof(r));
		}
	}
	return copy;
}

static void do_msg(struct fz *f, struct rd *r)
{
	unsigned nspec = (unsigned)get(r, 1) % (MAX_SEND_FDS + 1), nfds = 0;
	int fds[MAX_SEND_FDS];
	size_t split, len;
	const uint8_t *b;

	for (unsigned i = 0; i < nspec; i++) {
		unsigned kind = (unsigned)get(r, 1) % FD_KINDS;
		int fd = make_fd(f, kind, (uint32_t)get(r, 4));

		if (fd >= 0)
			fds[nfds++] = fd;
	}
	split = get(r, 2);
	len = get(r, 2);
	if (len > r->n)
		len = r->n;
	b = r->p;
	r->p += len;
	r->n -= len;
	if (f->eof || !len)
		return;
	if (avoid_misaligned && !f->hgot)
		b = align_rings(b, len);
	if (trace) {
		struct vhost_user_header h = { 0, 0, 0 };

		memcpy(&h, b, len < sizeof(h) ? len : sizeof(h));
		fprintf(stderr, "fz: MSG %s (%u) flags 0x%x size %u, %zu bytes%s, %u fds:",
			umdev_vu_request_name(h.request), h.request, h.flags, h.size, len,
			f->hgot ? " (inside another message)" : "", nfds);
		for (unsigned i = 0; i < nfds; i++)
			fprintf(stderr, " %d", fds[i]);
		fprintf(stderr, "\n");
	}
	if (!split || split >= len)
		split = len;
	if (send_chunk(f, b, split, fds, nfds) && split < len)
		(void)send_chunk(f, b + split, len - split, NULL, 0);
	drain(f, 0);
}

static void do_poke(struct fz *f, struct rd *r)
{
	static uint8_t fill[1 << 16];
	int e = nth_entry(f, (unsigned)get(r, 1), true);
	uint64_t off = get(r, 4);
	size_t len = get(r, 2);
	const uint8_t *b;

	if (get(r, 1) & 1) {
		memset(fill, (int)get(r, 1), len);
		b = fill;
	} else {
		if (len > r->n)
			len = r->n;
		b = r->p;
		r->p += len;
		r->n -= len;
	}
	if (trace)
		fprintf(stderr, "fz: POKE memfd entry %d at 0x%llx, %zu bytes\n", e,
			(unsigned long long)off, len);
	/* Growing the file (writing past its end) is part of the game. */
	if (e >= 0 && len && off + len <= MAX_MEMFD_SIZE &&
	    pwrite(f->fd[e], b, len, (off_t)off) < 0)
		return;
}

static void do_kick(struct fz *f, struct rd *r)
{
	static const uint64_t one = 1;
	int e = nth_entry(f, (unsigned)get(r, 1), false);

	if (trace)
		fprintf(stderr, "fz: KICK entry %d\n", e);
	if (e >= 0 && write(kick_target(f, e), &one, sizeof(one)) < 0)
		return; /* full: the ring has been kicked already */
}

static void do_sync(struct fz *f)
{
	static const struct vhost_user_header h = { VHOST_USER_GET_QUEUE_NUM, VHOST_USER_VERSION,
						    0 };
	unsigned want = f->syncs + 1;

	/* Only at a message boundary: elsewhere it would be part of another message. */
	if (f->eof || f->hgot || !send_chunk(f, (const uint8_t *)&h, sizeof(h), NULL, 0))
		return;
	for (int i = 0; i < 200 && !f->eof && f->syncs < want; i++)
		drain(f, 10);
}

static void do_trunc(struct fz *f, struct rd *r)
{
	int e = nth_entry(f, (unsigned)get(r, 1), true);
	uint32_t size = (uint32_t)get(r, 4) % (MAX_MEMFD_SIZE + 1);

	if (trace)
		fprintf(stderr, "fz: TRUNC memfd entry %d to 0x%x\n", e, size);
	if (e >= 0 && avoid_shrink) {
		struct stat sb;

		if (fstat(f->fd[e], &sb) < 0 || (uint64_t)sb.st_size > size)
			return;
	}
	if (e >= 0 && ftruncate(f->fd[e], size) < 0)
		return; /* sealed */
}

struct fz_vu_totals fz_vu_totals;

struct stats_ctx {
	struct umdev_virtio_dev *vdev;
	uint64_t requests, broken;
};

static void collect_stats(void *opaque)
{
	struct stats_ctx *s = opaque;

	for (unsigned i = 0; i < s->vdev->num_queues; i++) {
		struct umdev_vdev_queue_stats st;

		if (umdev_vdev_queue_stats(s->vdev, i, &st) == 0) {
			s->requests += st.requests;
			s->broken += st.broken;
		}
	}
}

static void init_once(void)
{
	int err = 0;

	if (ctl)
		return;
	if (getenv("FUZZ_VU_AVOID")) {
		avoid_blocking_fds = strstr(getenv("FUZZ_VU_AVOID"), "blocking-fds");
		avoid_shrink = strstr(getenv("FUZZ_VU_AVOID"), "shrink");
		avoid_misaligned = strstr(getenv("FUZZ_VU_AVOID"), "misaligned-rings");
	}
	/* Hostile input is logged line by line; a fuzzer would drown in it. */
	umdev_log_set_level(UMDEV_LOG_ERR);
	ctl = umdev_loop_new("fz-ctl", 0, &err);
	/* As umdevd: memory a session shrinks under the server fails that session only. */
	if (!ctl || umdev_mem_guard_init(ctl) < 0 || umdev_loop_start_thread(ctl) < 0)
		abort();
	for (unsigned i = 0; i < 2; i++) {
		dp[i] = umdev_loop_new(i ? "fz-dp1" : "fz-dp0", 0, &err);
		if (!dp[i] || umdev_loop_start_thread(dp[i]) < 0)
			abort();
	}
}

static void run_input(const uint8_t *data, size_t size)
{
	static struct fz f;
	struct rd r = { data, size };
	uint8_t cfg = (uint8_t)get(&r, 1);
	struct umdev_blk_opts o = {
		.id = "fz0",
		.backend = cfg & 1 ? "null:64M" : "ram:1M",
		.num_queues = cfg & 2 ? 2 : 1,
		.queue_size = 256,
		.poll = (cfg & 0x1c) == 0x1c,
		.poll_us = cfg & 0x20 ? 50 : 0,
	};
	static struct fd_list before, after;
	struct stats_ctx st = { NULL, 0, 0 };
	bool unsynced = false;

	list_fds(&before);

	memset(&f, 0, sizeof(f));
	f.blk = umdev_blk_new(&o, dp, 2, &f.err);
	if (!f.blk)
		finding("cannot create the device");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f.sv) < 0)
		finding("socketpair failed");
	if (umdev_loop_call_sync(ctl, srv_create, &f) < 0 || !f.srv)
		finding("cannot create the server");
	while (r.n && !f.eof) {
		unsigned op = (unsigned)get(&r, 1) % OP_KINDS;

		fz_vu_totals.steps++;
		/*
		 * Memory and kicks act at once, messages when the server gets to
		 * them: let it catch up first, so that runs are reproducible.
		 */
		if (op >= OP_POKE && unsynced) {
			do_sync(&f);
			unsynced = false;
		}
		unsynced = op < OP_POKE;
		switch (op) {
		case OP_POKE:
			do_poke(&f, &r);
			break;
		case OP_KICK:
			do_kick(&f, &r);
			break;
		case OP_SYNC:
			do_sync(&f);
			break;
		case OP_TRUNC:
			do_trunc(&f, &r);
			break;
		default:
			do_msg(&f, &r);
			break;
		}
	}
	/* Hang up and wait for the server to close its end. */
	if (!f.eof)
		shutdown(f.sv[0], SHUT_WR);
	while (!f.eof)
		drain(&f, -1);
	close(f.sv[0]);
	if (umdev_loop_call_sync(ctl, srv_free, &f) < 0)
		finding("cannot free the server");
	st.vdev = umdev_blk_vdev(f.blk);
	if (umdev_loop_call_sync(ctl, collect_stats, &st) < 0)
		finding("cannot read queue statistics");
	fz_vu_totals.requests += st.requests;
	fz_vu_totals.broken += st.broken;
	umdev_blk_free(f.blk);
	for (unsigned i = 0; i < f.n; i++) {
		close(f.fd[i]);
		if (f.partner[i] >= 0)
			close(f.partner[i]);
	}
	list_fds(&after);
	if (after.n != before.n) {
		char what[96];

		snprintf(what, sizeof(what), "fd leak: %d fds before the input, %d after",
			 before.n, after.n);
		fd_diff(&after, &before, "new");
		fd_diff(&before, &after, "gone");
		finding(what);
	}
	fz_vu_totals.inputs++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	cur_input = data;
	cur_len = size;
	run_input(data, size);
	return 0;
}

/* Sanitizer runtimes, when linked in: where their reports go. */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

/*
 * Logs of hostile input would drown everything: stderr goes to a file that
 * holds the running input's lines only. Sanitizer reports go to the real
 * stderr where the runtime allows it (clang; GCC's separate UBSan runtime
 * does not), and end up in that file otherwise.
 */
static void quiet(bool verbose)
{
	int fd;

	if (verbose) {
		umdev_log_set_level(UMDEV_LOG_DEBUG);
		trace = true;
		return;
	}
	fd = open(STDERR_LOG, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	saved_stderr = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
	if (__sanitizer_set_report_fd && saved_stderr >= 0)
		__sanitizer_set_report_fd((void *)(intptr_t)saved_stderr);
}

void fz_vu_driver_start(bool verbose, const char *file)
{
	crash_file = file;
	/* First, so the SIGBUS guard (init_once) passes on only faults that are not its own. */
	catch_signals();
	init_once();
	quiet(verbose);
}

void fz_vu_driver_input(bool generated, uint64_t seed, uint64_t iter)
{
	/* A sanitizer may end the process without our handlers: say what ran. */
	if (saved_stderr >= 0 && ftruncate(2, 0) == 0)
		fprintf(stderr, "fuzz-vu-msg: input %llu of seed 0x%llx (--seed 0x%llx --only %llu)\n",
			(unsigned long long)iter, (unsigned long long)seed,
			(unsigned long long)seed, (unsigned long long)iter);
	builtin_driver = generated;
	cur_seed = seed;
	cur_iter = iter;
}
