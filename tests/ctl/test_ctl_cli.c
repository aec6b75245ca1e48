/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command lines: umdevctl's subcommands (text and --json output, exit
 * codes, messages), and umdevd's start-up contract: waiting without
 * devices, the default control socket, the vhost-user back-end conventions
 * (--print-capabilities, --socket-path, --fd, --blk-file, --read-only) and
 * systemd socket activation.
 */
#include "ctl_common.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define REGION (16ull << 20)

static struct proto_srv srv;

static int setup(void **state)
{
	proto_srv_init(&srv, 16ull << 20);
	proto_start_umdevd(&srv, "--rpc", "@SOCK@", NULL);
	ctl_wait_listening(srv.sock);
	return 0;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	assert_true(alive);
	return 0;
}

struct run {
	int status; /* exit code, or -1 if it did not exit normally */
	char out[16384];
	char err[4096];
};

static void drain(int fd, char *buf, size_t cap, size_t *n)
{
	ssize_t r = read(fd, buf + *n, cap - 1 - *n);

	if (r > 0)
		*n += (size_t)r;
	buf[*n] = 0;
}

/* Run @argv (NULL-terminated) and collect its output and exit code. */
static void run_argv(struct run *r, char *const argv[])
{
	int po[2], pe[2];
	size_t no = 0, ne = 0;
	pid_t pid;
	int st;

	assert_int_equal(pipe(po), 0);
	assert_int_equal(pipe(pe), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	for (;;) {
		struct pollfd p[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };

		if (poll(p, 2, 20000) <= 0)
			break;
		if (p[0].revents)
			drain(po[0], r->out, sizeof(r->out), &no);
		if (p[1].revents)
			drain(pe[0], r->err, sizeof(r->err), &ne);
		if ((p[0].revents & POLLHUP) && (p[1].revents & POLLHUP) && !(p[0].revents & POLLIN) &&
		    !(p[1].revents & POLLIN))
			break;
	}
	r->out[no] = 0;
	r->err[ne] = 0;
	close(po[0]);
	close(pe[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* umdevctl with @args (NULL-terminated), "--rpc SOCK" first or, with @rpc_last, last. */
static void ctl_va(struct run *r, bool rpc_last, va_list ap)
{
	char *argv[32];
	unsigned n = 0;
	const char *a;

	memset(r, 0, sizeof(*r));
	argv[n++] = getenv("UMDEVCTL");
	assert_non_null(argv[0]);
	if (!rpc_last) {
		argv[n++] = "--rpc";
		argv[n++] = srv.sock;
	}
	while ((a = va_arg(ap, const char *)) && n < 29)
		argv[n++] = (char *)a;
	if (rpc_last) {
		argv[n++] = "--rpc";
		argv[n++] = srv.sock;
	}
	argv[n] = NULL;
	run_argv(r, argv);
}

/* umdevctl --rpc SOCK ARGS... */
static void ctl(struct run *r, ...)
{
	va_list ap;

	va_start(ap, r);
	ctl_va(r, false, ap);
	va_end(ap);
}

/* umdevctl ARGS... --rpc SOCK: every option after the command. */
static void ctl_tail(struct run *r, ...)
{
	va_list ap;

	va_start(ap, r);
	ctl_va(r, true, ap);
	va_end(ap);
}

static void test_umdevctl_commands(void **state)
{
	char sock[256], backend[256], cfg[256];
	struct json_object *j, *devs;
	struct umdev_vuc c;
	struct run r;

	snprintf(sock, sizeof(sock), "%s/cli0.sock", srv.dir);
	snprintf(backend, sizeof(backend), "backend=file:%s", srv.disk);
	snprintf(cfg, sizeof(cfg), "%s/cfg.json", srv.dir);

	ctl(&r, "types", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "virtio-blk"));
	assert_non_null(strstr(r.out, "vhost-user"));
	assert_non_null(strstr(r.out, "AVAILABLE"));

	/* Both spellings of a device: words, and umdevd's --device form. */
	{
		char s1[300];

		snprintf(s1, sizeof(s1), "socket=%s", sock);
		ctl(&r, "create", "virtio-blk", "id=cli0", s1, backend, "num-queues=2", NULL);
		assert_int_equal(r.status, 0);
		assert_non_null(strstr(r.out, "created cli0"));
		snprintf(s1, sizeof(s1), "virtio-blk,id=cli1,socket=%s/cli1.sock,backend=ram:1M",
			 srv.dir);
		ctl(&r, "create", s1, NULL);
		assert_int_equal(r.status, 0);
	}
	/* Errors: exit 1 and the daemon's message on stderr. */
	ctl(&r, "create", "virtio-blk", "id=cli0", "socket=/tmp/x.sock", "backend=ram:1M", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "already exists"));

	ctl(&r, "list", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "cli0"));
	assert_non_null(strstr(r.out, sock));

	/* I/O through a client, then stats in both forms. */
	proto_connect_blk(&c, sock, 2, 64, 1, REGION);
	proto_check_roundtrip_all_queues(&c, 2);
	ctl(&r, "list", "cli0", NULL);
	assert_non_null(strstr(r.out, "connected"));
	ctl(&r, "stats", "cli0", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "P99"));
	assert_non_null(strstr(r.out, "q1"));
	ctl(&r, "--json", "stats", "cli0", NULL);
	assert_int_equal(r.status, 0);
	j = json_tokener_parse(r.out);
	assert_non_null(j);
	assert_true(json_object_object_get_ex(j, "devices", &devs));
	assert_int_equal(json_object_get_int(json_object_object_get(
				 json_object_object_get(json_object_array_get_idx(devs, 0), "stats"),
				 "requests")),
			 5); /* 2 writes + 2 reads + 1 read */
	json_object_put(j);

	/* Device methods: routed, and refused by a type without them. */
	ctl(&r, "lun-add", "cli0", "0:2", "file:/img", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "device 'cli0' (virtio-blk) does not support method "
				      "'lun-add'"));
	ctl(&r, "lun-remove", "cli0", "0:2", NULL);
	assert_non_null(strstr(r.err, "does not support method 'lun-remove'"));
	ctl(&r, "ns-add", "cli0", "file:/img", NULL);
	assert_non_null(strstr(r.err, "does not support method 'ns-add'"));
	ctl(&r, "ns-remove", "cli0", "2", NULL);
	assert_non_null(strstr(r.err, "does not support method 'ns-remove'"));
	ctl(&r, "ns-remove", "cli0", "two", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, "ns-add", "nvme9", "file:/img", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "no device with id 'nvme9'"));

	/* save, to a file and to stdout. */
	ctl(&r, "save", cfg, NULL);
	assert_int_equal(r.status, 0);
	j = json_object_from_file(cfg);
	assert_non_null(j);
	assert_int_equal(ctl_ndevices(j), 2);
	json_object_put(j);
	ctl(&r, "save", NULL);
	j = json_tokener_parse(r.out);
	assert_non_null(j);
	assert_int_equal(ctl_ndevices(j), 2);
	json_object_put(j);

	/* remove: refused while connected, --force drops the client. */
	ctl(&r, "remove", "cli0", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "connected"));
	ctl(&r, "remove", "--force", "cli0", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "removed cli0"));
	assert_int_equal(umdev_vuc_is_closed(&c, 2000), 1);
	umdev_vuc_close(&c);
	ctl(&r, "remove", "cli1", NULL);
	assert_int_equal(r.status, 0);
	ctl(&r, "--json", "list", NULL);
	j = json_tokener_parse(r.out);
	assert_int_equal(ctl_ndevices(j), 0);
	json_object_put(j);

	/* Generic call, version, usage errors. */
	ctl(&r, "call", "list", "{}", NULL);
	assert_int_equal(r.status, 0);
	ctl(&r, "version", NULL);
	assert_non_null(strstr(r.out, "umdevd 0.1.0"));
	ctl(&r, "frob", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, "remove", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, "create", "id=x", NULL);
	assert_int_equal(r.status, 2);
}

/* The "id" of devices[@i] in umdevctl's --json output @out (static buffer). */
static const char *json_dev_id(const char *out, size_t i)
{
	static char id[64];
	struct json_object *j = json_tokener_parse(out), *devs;

	if (!j)
		fprintf(stderr, "not JSON: %s\n", out);
	assert_non_null(j);
	assert_true(json_object_object_get_ex(j, "devices", &devs));
	assert_true(i < json_object_array_length(devs));
	snprintf(id, sizeof(id), "%s",
		 json_object_get_string(
			 json_object_object_get(json_object_array_get_idx(devs, i), "id")));
	json_object_put(j);
	return id;
}

static void test_umdevctl_option_order(void **state)
{
	char sock[256], sockarg[300];
	struct json_object *j;
	struct umdev_vuc c;
	struct run r;

	snprintf(sock, sizeof(sock), "%s/o0.sock", srv.dir);
	snprintf(sockarg, sizeof(sockarg), "socket=%s", sock);

	/* Every option after the command, --rpc included; key=value words stay words. */
	ctl_tail(&r, "create", "virtio-blk", "id=o0", sockarg, "backend=ram:1M", "num-queues=2",
		 "--json", NULL);
	assert_int_equal(r.status, 0);
	j = json_tokener_parse(r.out);
	assert_non_null(j);
	assert_string_equal(json_object_get_string(json_object_object_get(j, "id")), "o0");
	json_object_put(j);

	ctl_tail(&r, "list", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_dev_id(r.out, 0), "o0");
	ctl(&r, "list", "o0", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_dev_id(r.out, 0), "o0");

	/* stats ID --json, --json stats ID, and between the two. */
	ctl_tail(&r, "stats", "o0", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_dev_id(r.out, 0), "o0");
	ctl(&r, "--json", "stats", "o0", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_dev_id(r.out, 0), "o0");
	ctl(&r, "stats", "--json", "o0", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_dev_id(r.out, 0), "o0");
	ctl(&r, "stats", "o0", "-j", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_dev_id(r.out, 0), "o0");

	/* The same with POSIXLY_CORRECT set, which stops plain getopt at the command. */
	setenv("POSIXLY_CORRECT", "1", 1);
	ctl(&r, "list", "--json", NULL);
	unsetenv("POSIXLY_CORRECT");
	assert_int_equal(r.status, 0);
	assert_string_equal(json_dev_id(r.out, 0), "o0");

	/* "--" ends the options: what follows is a word, wherever it starts. */
	ctl(&r, "--", "list", "--json", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "no device with id '--json'"));
	ctl(&r, "list", "--", "--json", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "no device with id '--json'"));
	ctl(&r, "--json", "--", "list", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_dev_id(r.out, 0), "o0");

	/* Usage errors wherever the option is. */
	ctl(&r, "list", "--bogus", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "umdevctl: unrecognized option '--bogus'"));
	ctl(&r, "list", "--timeout", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, "list", "--timeout", "3x", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, "list", "--force", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--force is for remove"));
	ctl(&r, "remove", "o0", "extra", NULL);
	assert_int_equal(r.status, 2);
	ctl_tail(&r, "list", "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: umdevctl"));

	/* remove ID --force, with a client that must lose the device. */
	proto_connect_blk(&c, sock, 2, 64, 1, REGION);
	ctl_tail(&r, "remove", "o0", NULL);
	assert_int_equal(r.status, 1);
	ctl_tail(&r, "remove", "o0", "--force", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "removed o0"));
	assert_int_equal(umdev_vuc_is_closed(&c, 2000), 1);
	umdev_vuc_close(&c);
}

static void test_umdevctl_no_daemon(void **state)
{
	struct run r;
	char *argv[] = { getenv("UMDEVCTL"), "--rpc", "/nonexistent/umdevd.sock", "list", NULL };

	memset(&r, 0, sizeof(r));
	run_argv(&r, argv);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "cannot connect to umdevd at /nonexistent/umdevd.sock"));
}

static void test_print_capabilities(void **state)
{
	char *argv[] = { getenv("UMDEVD"), "--device", "bogus", "--print-capabilities", NULL };
	struct json_object *j, *f;
	struct run r;
	bool ro = false, file = false;

	memset(&r, 0, sizeof(r));
	run_argv(&r, argv);
	assert_int_equal(r.status, 0);
	j = json_tokener_parse(r.out);
	assert_non_null(j);
	assert_string_equal(json_object_get_string(json_object_object_get(j, "type")), "block");
	assert_true(json_object_object_get_ex(j, "features", &f));
	for (size_t i = 0; i < json_object_array_length(f); i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(f, i));

		ro |= !strcmp(s, "read-only");
		file |= !strcmp(s, "blk-file");
	}
	assert_true(ro && file);
	json_object_put(j);
}

static void test_no_devices_no_socket_fails(void **state)
{
	char *argv[] = { getenv("UMDEVD"), "--rpc", "none", NULL };
	char *argv2[] = { getenv("UMDEVD"), "--socket-path", "/tmp/x", "--fd", "3", NULL };
	char *argv3[] = { getenv("UMDEVD"), "--rpc", "/nonexistent-dir/r.sock", NULL };
	struct run r;

	memset(&r, 0, sizeof(r));
	run_argv(&r, argv);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "nothing to do"));
	memset(&r, 0, sizeof(r));
	run_argv(&r, argv2);
	assert_int_equal(r.status, 2);
	/* A control socket the user asked for must work. */
	memset(&r, 0, sizeof(r));
	run_argv(&r, argv3);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "/nonexistent-dir/r.sock"));
}

/* One write/read through a vhost-user socket, checking what the disk holds. */
static void blk_io_check(const char *sock, bool expect_ro)
{
	struct umdev_vuc c;
	uint64_t wb;
	int st;

	proto_connect_blk(&c, sock, 1, 64, 1, REGION);
	wb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	proto_fill(umdev_vuc_gpa_ptr(&c, wb, 4096), 4096, 3);
	st = proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 16, wb, 4096, 1);
	assert_int_equal(st, expect_ro ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
	umdev_vuc_close(&c);
}

static void test_backend_conventions(void **state)
{
	struct proto_srv s;
	char file[256];
	int lfd;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char fdarg[16];

	/* --socket-path with --blk-file (and the RPC off: it is a plain back-end then). */
	proto_srv_init(&s, 8 << 20);
	snprintf(file, sizeof(file), "%s", s.disk);
	proto_start_umdevd(&s, "--socket-path", "@SOCK@", "--blk-file", "@DISK@", "--rpc", "none",
			   NULL);
	blk_io_check(s.sock, false);
	proto_stop(&s, false);

	proto_srv_init(&s, 8 << 20);
	proto_start_umdevd(&s, "--socket-path", "@SOCK@", "--blk-file", "@DISK@", "--read-only",
			   "--rpc", "@DIR@/rpc.sock", NULL);
	blk_io_check(s.sock, true);
	proto_stop(&s, false);

	/* --socket-path with one --device that has no socket=. */
	proto_srv_init(&s, 0);
	proto_start_umdevd(&s, "--socket-path", "@SOCK@", "--device",
			   "virtio-blk,id=d0,backend=ram:4M", "--rpc", "none", NULL);
	blk_io_check(s.sock, false);
	proto_stop(&s, false);

	/* --fd: the launcher made and bound the socket; umdevd inherits it. */
	proto_srv_init(&s, 8 << 20);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0); /* no CLOEXEC: the child gets it */
	strcpy(sa.sun_path, s.sock);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	snprintf(fdarg, sizeof(fdarg), "%d", lfd);
	proto_start_umdevd(&s, "--fd", fdarg, "--blk-file", "@DISK@", "--rpc", "@DIR@/rpc.sock",
			   NULL);
	close(lfd);
	blk_io_check(s.sock, false);
	{
		struct json_object *r;
		char rpc[256];

		snprintf(rpc, sizeof(rpc), "%s/rpc.sock", s.dir);
		r = ctl_ok(rpc, "list", NULL);
		snprintf(fdarg, sizeof(fdarg), "fd:%d", lfd);
		assert_string_equal(json_object_get_string(json_object_object_get(
					    json_object_array_get_idx(
						    json_object_object_get(r, "devices"), 0),
					    "socket")),
				    fdarg);
		json_object_put(r);
	}
	proto_stop(&s, false);

	/*
	 * A connected socket (one end of a socketpair, as some launchers pass
	 * with --fd): umdevd serves it as its one connection.
	 */
	{
		struct umdev_proc p = { 0 };
		struct umdev_vuc c;
		char log[300];
		uint64_t wb, rb;
		int sv[2];
		char *argv[] = { getenv("UMDEVD"), "--fd", fdarg, "--blk-file", s.disk, "--rpc",
				 "none", NULL };

		proto_srv_init(&s, 8 << 20);
		argv[4] = s.disk;
		snprintf(log, sizeof(log), "%s/umdevd.log", s.dir);
		/* The child end is inherited (no CLOEXEC); ours is not. */
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		assert_int_equal(fcntl(sv[1], F_SETFD, FD_CLOEXEC), 0);
		snprintf(fdarg, sizeof(fdarg), "%d", sv[0]);
		assert_int_equal(umdev_proc_spawn(&p, argv, log), 0);
		close(sv[0]);
		assert_int_equal(umdev_vuc_attach(&c, sv[1]), 0);
		assert_int_equal(umdev_vuc_start_blk(&c, 1, 64, 1, REGION, 0), 0);
		wb = umdev_vuc_alloc(&c, 0, 4096, 4096);
		rb = umdev_vuc_alloc(&c, 0, 4096, 4096);
		proto_fill(umdev_vuc_gpa_ptr(&c, wb, 4096), 4096, 9);
		assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 8, wb, 4096, 1), VIRTIO_BLK_S_OK);
		assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 8, rb, 4096, 1), VIRTIO_BLK_S_OK);
		assert_true(proto_check(umdev_vuc_gpa_ptr(&c, rb, 4096), 4096, 9));
		umdev_vuc_close(&c);
		/* Nothing left to serve: it keeps running until told to stop. */
		assert_true(umdev_proc_alive(&p));
		assert_int_equal(umdev_proc_stop(&p, 5000), 0);
		proto_stop(&s, false);
	}
}

static void test_default_socket_and_activation(void **state)
{
	char xdg[256], rpc[300], dev[300], *old = getenv("XDG_RUNTIME_DIR");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct json_object *j;
	struct proto_srv s;
	struct stat st;
	struct run r;
	pid_t pid;
	int lfd;

	/* The default path under $XDG_RUNTIME_DIR, 0600, used by umdevctl too. */
	proto_srv_init(&s, 0);
	snprintf(xdg, sizeof(xdg), "%s", s.dir);
	setenv("XDG_RUNTIME_DIR", xdg, 1);
	snprintf(rpc, sizeof(rpc), "%s/umdev/umdevd.sock", xdg);
	assert_true(strlen(rpc) < sizeof(s.sock));
	memcpy(s.sock, rpc, strlen(rpc) + 1);
	proto_start_umdevd(&s, NULL);
	ctl_wait_listening(s.sock);
	assert_int_equal(stat(rpc, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	{
		char *argv[] = { getenv("UMDEVCTL"), "--json", "list", NULL };

		memset(&r, 0, sizeof(r));
		run_argv(&r, argv);
		assert_int_equal(r.status, 0);
		j = json_tokener_parse(r.out);
		assert_int_equal(ctl_ndevices(j), 0);
		json_object_put(j);
	}
	/* A second daemon with devices finds the default socket taken and serves anyway. */
	{
		struct proto_srv s2;

		proto_srv_init(&s2, 0);
		proto_start_umdevd(&s2, "--device", "virtio-blk,id=x,socket=@SOCK@,backend=ram:1M",
				   NULL);
		assert_true(umdev_proc_alive(&s2.proc));
		proto_stop(&s2, false);
	}
	/* The default socket is still the first daemon's. */
	j = ctl_ok(rpc, "list", NULL);
	json_object_put(j);
	proto_stop(&s, false);
	if (old)
		setenv("XDG_RUNTIME_DIR", old, 1);
	else
		unsetenv("XDG_RUNTIME_DIR");

	/* systemd socket activation: the control socket arrives as fd 3. */
	proto_srv_init(&s, 0);
	snprintf(rpc, sizeof(rpc), "%s/act.sock", s.dir);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, rpc);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char pidstr[16];

		dup2(lfd, 3);
		snprintf(pidstr, sizeof(pidstr), "%d", (int)getpid());
		setenv("LISTEN_PID", pidstr, 1);
		setenv("LISTEN_FDS", "1", 1);
		execl(getenv("UMDEVD"), "umdevd", "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	close(lfd);
	snprintf(dev, sizeof(dev), "%s/act-dev.sock", s.dir);
	j = ctl_ok(rpc, "create", ctl_obj("type", "virtio-blk", "id", "a0", "socket", dev,
					  "backend", "ram:1M", NULL));
	json_object_put(j);
	blk_io_check(dev, false);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	/* Its devices are gone with it; the activation socket is systemd's to remove. */
	assert_true(stat(dev, &st) < 0);
	assert_int_equal(stat(rpc, &st), 0);
	proto_stop(&s, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_umdevctl_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_umdevctl_option_order, setup, teardown),
		cmocka_unit_test(test_umdevctl_no_daemon),
		cmocka_unit_test(test_print_capabilities),
		cmocka_unit_test(test_no_devices_no_socket_fails),
		cmocka_unit_test(test_backend_conventions),
		cmocka_unit_test(test_default_socket_and_activation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
