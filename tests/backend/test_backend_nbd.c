/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NBD backend against real servers started here: nbdkit's memory
 * plugin on a UNIX socket and on 127.0.0.1, with filters taking flags away,
 * and qemu-nbd (named export, no multi-conn). Every request type, data
 * checked through a second, independent libnbd connection; bad URIs,
 * refused and silent servers, a missing export; the server killed and
 * stopped under I/O (requests end with -EIO, none hangs) and restarted (I/O
 * resumes). No timed assertions: a request that never completes hangs the
 * test into meson's timeout.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <libnbd.h>

#include "bdev_harness.h"
#include "../test_server.h"

extern char **environ;

#define SIZE (64u << 20)

struct server {
	pid_t pid;
	char sock[108];
	char pidfile[108];
	int port;
};

static char tmpdir[64];
/* Every server started, killed at the end even when a test failed midway. */
static pid_t spawned[32];
static unsigned nspawned;

/* Starts a server from @argv, waits until its pid file (written when listening) exists. */
static void server_spawn(struct server *s, char *const argv[])
{
	unlink(s->pidfile);
	assert_int_equal(posix_spawnp(&s->pid, argv[0], NULL, NULL, argv, environ), 0);
	if (nspawned < 32)
		spawned[nspawned++] = s->pid;
	for (int i = 0; i < 1000; i++) {
		int st;

		if (access(s->pidfile, F_OK) == 0)
			return;
		assert_int_equal(waitpid(s->pid, &st, WNOHANG), 0); /* still running */
		usleep(10000);
	}
	fail_msg("server %s did not start", argv[0]);
}

/*
 * nbdkit memory plugin; @extra: options and filters, and key=value filter
 * parameters (which go after the plugin).
 */
static void nbdkit_start(struct server *s, bool tcp, const char *const *extra)
{
	char portbuf[16];
	char *argv[32];
	int n = 0;

	snprintf(s->pidfile, sizeof(s->pidfile), "%s/nbdkit.pid", tmpdir);
	argv[n++] = "nbdkit";
	argv[n++] = "-f";
	argv[n++] = "--exit-with-parent";
	argv[n++] = "-P";
	argv[n++] = s->pidfile;
	if (tcp) {
		snprintf(portbuf, sizeof(portbuf), "%d", s->port);
		argv[n++] = "-i";
		argv[n++] = "127.0.0.1";
		argv[n++] = "-p";
		argv[n++] = portbuf;
	} else {
		argv[n++] = "-U";
		argv[n++] = s->sock;
	}
	for (const char *const *x = extra; x && *x && n < 24; x++)
		if (!strchr(*x, '=') || **x == '-')
			argv[n++] = (char *)*x;
	argv[n++] = "memory";
	argv[n++] = "size=64M";
	for (const char *const *x = extra; x && *x && n < 30; x++)
		if (strchr(*x, '=') && **x != '-')
			argv[n++] = (char *)*x;
	argv[n] = NULL;
	server_spawn(s, argv);
}

static void server_stop(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
	}
	s->pid = 0;
	unlink(s->pidfile);
	if (s->sock[0])
		unlink(s->sock);
}

/* nbdkit on @sockname in the temp dir, and a backend on its export. */
static void open_on_nbdkit(struct server *s, struct env *e, const char *sockname,
			   const char *const *extra, const char *params)
{
	char uri[256];

	snprintf(s->sock, sizeof(s->sock), "%s/%s", tmpdir, sockname);
	nbdkit_start(s, false, extra);
	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s%s", s->sock, params);
	env_open(e, uri, false);
}

/* A second, independent client of the same export. */
static struct nbd_handle *peer(const char *uri)
{
	struct nbd_handle *h = nbd_create();

	assert_non_null(h);
	if (nbd_connect_uri(h, uri) < 0)
		fail_msg("peer connect %s: %s", uri, nbd_get_error());
	return h;
}

static void fill(char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (char)(i * 13 + seed);
}

/* Runs the loop for about @ms (lets reconnects land). */
static void stop_cb(void *opaque, uint32_t ev)
{
	umdev_loop_stop(opaque);
}

static void run_for(umdev_loop *loop, unsigned ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000,
						.tv_nsec = (long)(ms % 1000) * 1000000 } };
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	assert_true(tfd >= 0);
	assert_int_equal(timerfd_settime(tfd, 0, &its, NULL), 0);
	assert_int_equal(umdev_loop_add_fd(loop, tfd, EPOLLIN, stop_cb, loop), 0);
	assert_int_equal(umdev_loop_run(loop), 0);
	umdev_loop_del_fd(loop, tfd);
	close(tfd);
}

/* Every request type, data checked through @uri by a second client. */
static void check_all_ops(struct env *e, const char *uri)
{
	size_t len = 3 * 4096 + 512;
	char *w = malloc(len), *r = malloc(len), *z = calloc(1, len);
	struct nbd_handle *h = peer(uri);
	struct iovec iov[3];
	struct umdev_bdev_info info;

	umdev_bdev_get_info(e->b, &info);
	assert_int_equal(info.size, SIZE);
	assert_false(info.readonly);
	assert_true(info.can_discard);
	assert_true(info.can_write_zeroes);
	assert_true(info.volatile_cache);

	/* WRITE from three iovecs (three NBD commands), seen by the peer. */
	fill(w, len, 1);
	iov[0] = (struct iovec){ w, 512 };
	iov[1] = (struct iovec){ w + 512, 4096 };
	iov[2] = (struct iovec){ w + 4608, len - 4608 };
	assert_int_equal(run_io(e, UMDEV_BDEV_WRITE, 1 << 20, len, iov, 3, false), 0);
	assert_int_equal(nbd_pread(h, r, len, 1 << 20, 0), 0);
	assert_memory_equal(r, w, len);

	/* READ of what the peer wrote, into three iovecs. */
	fill(w, len, 2);
	assert_int_equal(nbd_pwrite(h, w, len, 8 << 20, 0), 0);
	memset(r, 0, len);
	iov[0] = (struct iovec){ r, 4096 };
	iov[1] = (struct iovec){ r + 4096, 512 };
	iov[2] = (struct iovec){ r + 4608, len - 4608 };
	assert_int_equal(run_io(e, UMDEV_BDEV_READ, 8 << 20, len, iov, 3, false), 0);
	assert_memory_equal(r, w, len);

	/* FUA write and FLUSH. */
	fill(w, 4096, 3);
	iov[0] = (struct iovec){ w, 4096 };
	assert_int_equal(run_io(e, UMDEV_BDEV_WRITE, 4096, 4096, iov, 1, true), 0);
	assert_int_equal(run_io(e, UMDEV_BDEV_FLUSH, 0, 0, NULL, 0, false), 0);
	assert_int_equal(nbd_pread(h, r, 4096, 4096, 0), 0);
	assert_memory_equal(r, w, 4096);

	/* WRITE_ZEROES reads back as zeroes; DISCARD (memory: punches) too. */
	assert_int_equal(run_io(e, UMDEV_BDEV_WRITE_ZEROES, 1 << 20, len, NULL, 0, false), 0);
	assert_int_equal(nbd_pread(h, r, len, 1 << 20, 0), 0);
	assert_memory_equal(r, z, len);
	assert_int_equal(run_io(e, UMDEV_BDEV_DISCARD, 8 << 20, 8192, NULL, 0, false), 0);
	assert_int_equal(nbd_pread(h, r, 8192, 8 << 20, 0), 0);
	assert_memory_equal(r, z, 8192);

	/* Beyond the end: refused before reaching the server. */
	iov[0] = (struct iovec){ r, 4096 };
	assert_int_equal(run_io(e, UMDEV_BDEV_READ, SIZE - 512, 4096, iov, 1, false), -EINVAL);
	nbd_close(h);
	free(w);
	free(r);
	free(z);
}

static void test_nbd_unix(void **state)
{
	struct server s = { 0 };
	struct env e = { 0 };
	char uri[256];

	snprintf(s.sock, sizeof(s.sock), "%s/nbd.sock", tmpdir);
	nbdkit_start(&s, false, NULL);
	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s", s.sock);
	env_open(&e, uri, false);
	check_all_ops(&e, uri);
	assert_int_equal(umdev_bdev_flush_sync(e.b), 0);
	{
		/*
		 * multi-conn: a queue on another loop gets a connection of its
		 * own, made in the background; its first request waits for it
		 * and sees what the first queue wrote.
		 */
		struct env e2 = { .b = e.b };
		char w[4096], r[4096];
		struct iovec iov = { w, sizeof(w) };
		int err = 0;

		e2.loop = umdev_loop_new("t-bdev2", 64, &err);
		assert_non_null(e2.loop);
		e2.q = umdev_bdev_queue_new(e.b, e2.loop, &err);
		assert_non_null(e2.q);
		fill(w, sizeof(w), 7);
		assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 12288, sizeof(w), &iov, 1, false), 0);
		iov.iov_base = r;
		assert_int_equal(run_io(&e2, UMDEV_BDEV_READ, 12288, sizeof(r), &iov, 1, false), 0);
		assert_memory_equal(r, w, sizeof(r));
		umdev_bdev_queue_free(e2.q);
		umdev_loop_free(e2.loop);
	}
	env_close(&e);
	server_stop(&s);
}

static void test_nbd_tcp(void **state)
{
	struct server s = { .port = test_free_port() };
	struct env e = { 0 };
	char uri[256], spec[300];

	assert_true(s.port > 0);
	nbdkit_start(&s, true, NULL);
	snprintf(uri, sizeof(uri), "nbd://127.0.0.1:%d/", s.port);
	/* Our own parameter is taken out before libnbd sees the URI. */
	snprintf(spec, sizeof(spec), "%s?nbd-timeout=5", uri);
	env_open(&e, spec, false);
	check_all_ops(&e, uri);
	env_close(&e);
	server_stop(&s);
}

/* A server without FUA, trim, zero: none offered; FUA emulated by a flush. */
static void test_nbd_fewer_flags(void **state)
{
	/* Both filters default to taking the feature away. */
	static const char *const filters2[] = { "--filter=nozero", "--filter=fua", NULL };
	struct server s = { 0 };
	struct env e = { 0 };
	struct umdev_bdev_info info;
	char buf[4096];
	struct iovec iov = { buf, sizeof(buf) };

	open_on_nbdkit(&s, &e, "nbd2.sock", filters2, "");
	umdev_bdev_get_info(e.b, &info);
	assert_false(info.can_write_zeroes);
	fill(buf, sizeof(buf), 4);
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 0, sizeof(buf), &iov, 1, true), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(run_io(&e, UMDEV_BDEV_READ, 0, sizeof(buf), &iov, 1, false), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], (char)(i * 13 + 4));
	/* Refused by the front, as the backend does not offer it. */
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE_ZEROES, 0, 4096, NULL, 0, false),
			 -EOPNOTSUPP);
	env_close(&e);
	server_stop(&s);
}

/* A read-only export is a read-only backend. */
static void test_nbd_readonly_export(void **state)
{
	static const char *const ro[] = { "-r", NULL };
	struct server s = { 0 };
	struct env e = { 0 };
	struct umdev_bdev_info info;
	char buf[4096];
	struct iovec iov = { buf, sizeof(buf) };

	open_on_nbdkit(&s, &e, "nbd3.sock", ro, "");
	umdev_bdev_get_info(e.b, &info);
	assert_true(info.readonly);
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 0, sizeof(buf), &iov, 1, false), -EROFS);
	assert_int_equal(run_io(&e, UMDEV_BDEV_READ, 0, sizeof(buf), &iov, 1, false), 0);
	env_close(&e);
	server_stop(&s);
}

/* qemu-nbd: a named export, and no multi-conn for a writable one. */
static void test_nbd_qemu_nbd(void **state)
{
	struct server s = { 0 };
	struct env e = { 0 };
	char uri[256], img[128], pidf[128];
	umdev_loop *other;
	int err = 0, fd;

	snprintf(s.sock, sizeof(s.sock), "%s/qnbd.sock", tmpdir);
	snprintf(img, sizeof(img), "%s/disk.img", tmpdir);
	snprintf(s.pidfile, sizeof(s.pidfile), "%s/qnbd.pid", tmpdir);
	fd = open(img, O_CREAT | O_RDWR | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, SIZE), 0);
	close(fd);
	snprintf(pidf, sizeof(pidf), "--pid-file=%s", s.pidfile);
	{
		char *argv[] = { "qemu-nbd", "-k", s.sock, "-x", "disk0", "-f", "raw", "-t",
				 "--shared=1", pidf, img, NULL };

		server_spawn(&s, argv);
	}
	/* Wrong export name: a clear error at open, nothing left behind. */
	snprintf(uri, sizeof(uri), "nbd+unix:///nosuch?socket=%s", s.sock);
	assert_null(umdev_bdev_open(uri, false, &err));
	assert_true(err < 0);

	snprintf(uri, sizeof(uri), "nbd+unix:///disk0?socket=%s", s.sock);
	env_open(&e, uri, false);
	{
		char buf[4096];
		struct iovec iov = { buf, sizeof(buf) };
		umdev_bdev_queue *q2;

		fill(buf, sizeof(buf), 5);
		assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 4096, 4096, &iov, 1, true), 0);
		/* Same loop: shares the connection; another loop: refused. */
		q2 = umdev_bdev_queue_new(e.b, e.loop, &err);
		assert_non_null(q2);
		other = umdev_loop_new("t-other", 0, &err);
		assert_non_null(other);
		assert_null(umdev_bdev_queue_new(e.b, other, &err));
		assert_int_equal(err, -EOPNOTSUPP);
		umdev_loop_free(other);
		umdev_bdev_queue_free(q2);
	}
	env_close(&e);
	server_stop(&s);
	unlink(img);
}

static void test_nbd_bad(void **state)
{
	static const char *const bad[] = {
		"nbd:",
		"nbd:foo",
		"nbd://127.0.0.1:1/",  /* refused */
		"nbd+unix:///?socket=/nonexistent/umdev-nbd.sock",
		"nbd+unix:///",  /* no socket */
		"nbd://127.0.0.1/?nbd-timeout=0",
		"nbd://127.0.0.1/?nbd-timeout=abc",
		"nbd://127.0.0.1/?nbd-timeout=99999",
	};
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char uri[256];
	int err, fd;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = 0;
		assert_null(umdev_bdev_open(bad[i], false, &err));
		assert_true(err < 0);
	}
	/* A server that accepts but never answers: the open gives up. */
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/silent.sock", tmpdir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s&nbd-timeout=300ms", a.sun_path);
	err = 0;
	assert_null(umdev_bdev_open(uri, false, &err));
	assert_int_equal(err, -ETIMEDOUT);
	close(fd);
	unlink(a.sun_path);
}

/* Many requests in flight; counts results. */
struct batch;

struct bio {
	struct umdev_bdev_io io;
	struct batch *b;
};

struct batch {
	struct bio w[16];
	struct iovec iov[16];
	char buf[16][4096];
	umdev_loop *loop;
	unsigned left, ok, eio, other;
};

static void batch_done(struct umdev_bdev_io *io, int res)
{
	struct batch *b = ((struct bio *)((char *)io - offsetof(struct bio, io)))->b;

	if (res == 0)
		b->ok++;
	else if (res == -EIO)
		b->eio++;
	else
		b->other++;
	if (--b->left == 0 && umdev_loop_in_thread(b->loop))
		umdev_loop_stop(b->loop);
}

/* @before runs before the batch is submitted, @mid right after. */
static void batch_run(struct env *e, struct batch *b, void (*before)(void *),
		      void (*mid)(void *), void *arg)
{
	if (before)
		before(arg);
	b->loop = e->loop;
	b->left = 16;
	b->ok = b->eio = b->other = 0;
	for (int i = 0; i < 16; i++) {
		b->iov[i] = (struct iovec){ b->buf[i], 4096 };
		b->w[i] = (struct bio){
			.io = { .op = (i & 1) ? UMDEV_BDEV_WRITE : UMDEV_BDEV_READ,
				.offset = (uint64_t)i * 65536, .len = 4096, .iov = &b->iov[i],
				.iovcnt = 1, .done = batch_done },
			.b = b,
		};
		assert_int_equal(umdev_bdev_submit(e->q, &b->w[i].io), 0);
	}
	if (mid)
		mid(arg);
	if (b->left)
		assert_int_equal(umdev_loop_run(e->loop), 0);
	assert_int_equal(b->left, 0);
	assert_int_equal(b->other, 0);
}

static void kill_server(void *arg)
{
	server_stop(arg);
}

static void stop_server(void *arg)
{
	struct server *s = arg;

	assert_int_equal(test_stop_process(s->pid), 0);
}

/* Retries a read until the backend has reconnected. */
static void wait_io_back(struct env *e)
{
	char buf[4096];
	struct iovec iov = { buf, sizeof(buf) };

	for (int i = 0; i < 200; i++) {
		if (run_io(e, UMDEV_BDEV_READ, 0, sizeof(buf), &iov, 1, false) == 0)
			return;
		run_for(e->loop, 100);
	}
	fail_msg("I/O did not resume");
}

static void test_nbd_server_dies(void **state)
{
	/*
	 * nbdkit 1.32 can abort (assertion in raw_send_socket) when a client
	 * closes a connection while several of its threads still send replies,
	 * which is what a timeout does here: one thread per connection.
	 */
	static const char *const one_thread[] = { "-t", "1", NULL };
	struct server s = { 0 };
	struct env e = { 0 };
	struct batch *b = calloc(1, sizeof(*b));
	char buf[4096];
	struct iovec iov = { buf, sizeof(buf) };

	assert_non_null(b);
	open_on_nbdkit(&s, &e, "nbd4.sock", one_thread, "&nbd-timeout=1");
	batch_run(&e, b, NULL, NULL, NULL);
	assert_int_equal(b->ok, 16);

	/* Killed with requests in flight: each ends, fine or -EIO, none hangs. */
	batch_run(&e, b, NULL, kill_server, &s);
	assert_int_equal(b->ok + b->eio, 16);
	/* Down for longer than the timeout: new requests fail with -EIO. */
	run_for(e.loop, 1300);
	assert_int_equal(run_io(&e, UMDEV_BDEV_READ, 0, sizeof(buf), &iov, 1, false), -EIO);

	/* Back: the connector finds it, I/O works again. */
	nbdkit_start(&s, false, one_thread);
	wait_io_back(&e);
	fill(buf, sizeof(buf), 6);
	assert_int_equal(run_io(&e, UMDEV_BDEV_WRITE, 0, sizeof(buf), &iov, 1, true), 0);

	/* A server that stops answering: in-flight requests time out with -EIO. */
	batch_run(&e, b, stop_server, NULL, &s);
	assert_int_equal(b->eio, 16);
	kill(s.pid, SIGCONT);
	wait_io_back(&e);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(run_io(&e, UMDEV_BDEV_READ, 0, sizeof(buf), &iov, 1, false), 0);
	assert_int_equal(buf[1], (char)(13 + 6));

	env_close(&e);
	server_stop(&s);
	free(b);
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/umdev-nbd-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	for (unsigned i = 0; i < nspawned; i++) {
		if (kill(spawned[i], SIGKILL) == 0)
			waitpid(spawned[i], NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nbd_unix),
		cmocka_unit_test(test_nbd_tcp),
		cmocka_unit_test(test_nbd_fewer_flags),
		cmocka_unit_test(test_nbd_readonly_export),
		cmocka_unit_test(test_nbd_qemu_nbd),
		cmocka_unit_test(test_nbd_bad),
		cmocka_unit_test(test_nbd_server_dies),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
