/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command lines: umdevctl's subcommands (text and --json output, exit
 * codes, messages), and umdevd's start-up contract: waiting without
 * devices, the default control socket, the vhost-user back-end conventions
 * (--print-capabilities, --socket-path, --fd, --blk-file, --read-only) and
 * systemd socket activation.
 */
#include "ctl_common.h"
#include "../test_wait.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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
	assert_non_null(strstr(r.out, "BACKEND"));
	assert_non_null(strstr(r.out, "ram:1M"));

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
	assert_non_null(strstr(r.out, getenv("UMDEV_TEST_NO_IO_URING") ? "I/O engine: epoll\n" :
									 "I/O engine: io_uring\n"));
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

/* What `umdevctl stats` prints under one device's header line. */
enum stats_body {
	BODY_TABLE, /* header, one row per started queue, total */
	BODY_NO_CLIENT, /* "no client connected to SOCKET: ..." */
	BODY_NOT_STARTED, /* "client connected, nothing to count until ..." */
	BODY_NO_STATS, /* a type without statistics */
};

struct stats_block {
	char id[64];
	bool connected;
	enum stats_body body;
	unsigned queue_rows;
	char note[512];
};

#define STATS_COLS 11

static unsigned count_fields(const char *line)
{
	unsigned n = 0;

	for (const char *p = line; *p; p++)
		n += *p != ' ' && (p == line || p[-1] == ' ');
	return n;
}

/*
 * Parse `umdevctl stats` text into blocks, asserting its form: blocks
 * apart by one empty line; each begins "ID (TYPE on TRANSPORT, no client|
 * client connected)"; then either one note line, or a table whose lines all
 * have STATS_COLS columns and the same width (so nothing is misaligned),
 * starting with the header and ending with the total; then, if @engine, the
 * "I/O engine: ..." line, last. Returns the count of blocks.
 */
static unsigned parse_stats(const char *out, struct stats_block *b, unsigned max, bool engine)
{
	static const char *const header[STATS_COLS] = {
		"QUEUE", "REQUESTS", "ERRORS", "MiB-FROM-VM", "MiB-TO-VM", "INFL",
		"MAXQD", "AVGQD", "P50(us)", "P90(us)", "P99(us)",
	};
	char *text = strdup(out), *line = text, *next;
	unsigned nb = 0;
	size_t width = 0;
	bool connected = false;
	enum { HEAD, FIRST, TABLE, DONE } state = HEAD;
	bool engine_seen = false;

	assert_non_null(text);
	for (; *line; line = next) {
		next = strchr(line, '\n');
		assert_non_null(next); /* every line ends */
		*next++ = 0;
		if (!*line) {
			/* One empty line between blocks, after a complete one. */
			assert_true(state == DONE);
			state = HEAD;
			continue;
		}
		if (state == HEAD && !strncmp(line, "I/O engine: ", 12)) {
			/* The last line: the data-plane loops' engine, as the daemon runs. */
			char eng[16], tail[64];
			unsigned nloops = 0;

			assert_int_equal(sscanf(line + 12, "%15s on %u data-plane loops %63[^\n]", eng,
						&nloops, tail),
					 3);
			assert_string_equal(eng, getenv("UMDEV_TEST_NO_IO_URING") ? "epoll" : "io_uring");
			assert_true(nloops >= 1);
			assert_string_equal(tail, "(control loop: epoll)");
			assert_true(*next == 0);
			engine_seen = true;
			state = DONE;
			continue;
		}
		if (state == HEAD) {
			char id[64], rest[128];

			assert_true(nb < max);
			assert_int_not_equal(line[0], ' ');
			assert_int_equal(sscanf(line, "%63s (%127[^)])", id, rest), 2);
			assert_non_null(strstr(rest, " on "));
			connected = strstr(rest, ", client connected") != NULL;
			assert_true(connected || strstr(rest, ", no client"));
			assert_int_equal(line[strlen(line) - 1], ')');
			memset(&b[nb], 0, sizeof(b[nb]));
			snprintf(b[nb].id, sizeof(b[nb].id), "%s", id);
			b[nb].connected = connected;
			nb++;
			state = FIRST;
			continue;
		}
		assert_true(state == FIRST || state == TABLE);
		assert_memory_equal(line, "  ", 2);
		if (state == FIRST && strncmp(line, "  QUEUE ", 8)) {
			struct stats_block *cur = &b[nb - 1];

			snprintf(cur->note, sizeof(cur->note), "%s", line + 2);
			if (!strncmp(line, "  no statistics", 15))
				cur->body = BODY_NO_STATS;
			else if (connected)
				cur->body = BODY_NOT_STARTED;
			else
				cur->body = BODY_NO_CLIENT;
			state = DONE;
			continue;
		}
		if (count_fields(line) != STATS_COLS || (state == TABLE && strlen(line) != width))
			fprintf(stderr, "malformed row: '%s'\n", line);
		assert_int_equal(count_fields(line), STATS_COLS);
		if (state == FIRST) {
			char *save = NULL, *copy = strdup(line), *f = strtok_r(copy, " ", &save);

			for (unsigned i = 0; i < STATS_COLS; i++, f = strtok_r(NULL, " ", &save))
				assert_string_equal(f, header[i]);
			free(copy);
			width = strlen(line);
			b[nb - 1].body = BODY_TABLE;
			state = TABLE;
			continue;
		}
		assert_int_equal(strlen(line), width);
		if (!strncmp(line, "  total ", 8)) {
			state = DONE;
			continue;
		}
		assert_int_equal(line[2], 'q');
		b[nb - 1].queue_rows++;
	}
	assert_true(state == DONE);
	assert_true(engine_seen == engine);
	free(text);
	return nb;
}

static const struct stats_block *find_block(const struct stats_block *b, unsigned n,
					    const char *id)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(b[i].id, id))
			return &b[i];
	fail_msg("no stats block for %s", id);
	abort();
}

/* Wait until `list ID` says a client is connected. */
static void wait_connected(const char *id)
{
	struct run r;

	int64_t deadline = test_now_ms() + TEST_WAIT_MS;

	do {
		ctl(&r, "list", id, NULL);
		assert_int_equal(r.status, 0);
		if (strstr(r.out, "connected"))
			return;
		usleep(10000);
	} while (test_now_ms() < deadline);
	fail_msg("%s: no client connected", id);
}

static void test_umdevctl_stats_no_client(void **state)
{
	char a[5][320];
	const struct stats_block *sb;
	struct stats_block b[8];
	struct umdev_vuc idle, busy;
	struct run r;
	unsigned n;

	for (unsigned i = 0; i < 5; i++)
		snprintf(a[i], sizeof(a[i]), "socket=%s/s%u.sock", srv.dir, i);
	ctl(&r, "create", "virtio-blk", "id=nc-blk", a[0], "backend=ram:1M", "num-queues=2",
	    NULL);
	assert_int_equal(r.status, 0);
	ctl(&r, "create", "virtio-scsi", "id=nc-scsi", a[1], "lun=0:0:ram:1M", NULL);
	assert_int_equal(r.status, 0);
	ctl(&r, "create", "nvme", "id=nc-nvme", a[2], "ns=ram:1M", NULL);
	assert_int_equal(r.status, 0);
	ctl(&r, "create", "virtio-blk", "id=cn-blk", a[3], "backend=ram:1M", NULL);
	assert_int_equal(r.status, 0);
	ctl(&r, "create", "virtio-blk", "id=io-blk", a[4], "backend=ram:1M", "num-queues=2",
	    NULL);
	assert_int_equal(r.status, 0);

	/* Nothing connected: one well-formed note per device, naming its socket. */
	ctl(&r, "stats", NULL);
	assert_int_equal(r.status, 0);
	n = parse_stats(r.out, b, 8, true);
	assert_int_equal(n, 5);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(b[i].body, BODY_NO_CLIENT);
		assert_true(!strncmp(b[i].note, "no client connected to ", 23));
		assert_non_null(strstr(b[i].note, a[i] + strlen("socket=")));
	}
	assert_non_null(strstr(find_block(b, n, "nc-blk")->note, "its queues (up to 2)"));
	assert_non_null(strstr(find_block(b, n, "nc-scsi")->note, "queues"));
	assert_non_null(strstr(find_block(b, n, "cn-blk")->note, "its queues (up to 256)"));

	/* One device alone, each type. */
	ctl(&r, "stats", "nc-nvme", NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(parse_stats(r.out, b, 8, true), 1);
	assert_string_equal(b[0].id, "nc-nvme");
	assert_int_equal(b[0].body, BODY_NO_CLIENT);
	ctl(&r, "stats", "nc-scsi", NULL);
	assert_int_equal(parse_stats(r.out, b, 8, true), 1);
	assert_int_equal(b[0].body, BODY_NO_CLIENT);

	/* A client that connected but started no queue; one that did I/O. */
	assert_int_equal(umdev_vuc_connect(&idle, a[3] + strlen("socket="), 2000), 0);
	wait_connected("cn-blk");
	proto_connect_blk(&busy, a[4] + strlen("socket="), 2, 64, 1, REGION);
	proto_check_roundtrip_all_queues(&busy, 2);
	ctl(&r, "stats", NULL);
	assert_int_equal(r.status, 0);
	n = parse_stats(r.out, b, 8, true);
	assert_int_equal(n, 5);
	sb = find_block(b, n, "cn-blk");
	assert_int_equal(sb->body, BODY_NOT_STARTED);
	assert_string_equal(sb->note, "client connected, nothing to count until it starts its "
				      "queues (up to 256)");
	sb = find_block(b, n, "io-blk");
	assert_int_equal(sb->body, BODY_TABLE);
	assert_int_equal(sb->queue_rows, 2);
	assert_int_equal(find_block(b, n, "nc-blk")->body, BODY_NO_CLIENT);
	umdev_vuc_close(&idle);
	umdev_vuc_close(&busy);

	/* Queues once started keep their counts after the client left: still a table. */
	for (int64_t deadline = test_now_ms() + TEST_WAIT_MS;;) {
		ctl(&r, "stats", "io-blk", NULL);
		assert_int_equal(parse_stats(r.out, b, 8, true), 1);
		if (!b[0].connected || test_now_ms() >= deadline)
			break;
		usleep(10000);
	}
	assert_false(b[0].connected);
	assert_int_equal(b[0].body, BODY_TABLE);
	assert_int_equal(b[0].queue_rows, 2);
	assert_non_null(strstr(r.out, "io-blk (virtio-blk on vhost-user, no client)"));
}

/*
 * A stand-in daemon that answers one request with @canned_result, for
 * output no real device gives on demand (an NVMe controller with queues
 * running needs a whole vfio-user driver).
 */
struct fake_daemon {
	int lfd;
	const char *result;
	char request[4096];
};

static void *fake_daemon_serve(void *arg)
{
	struct fake_daemon *f = arg;
	char resp[8192];
	struct pollfd p = { .fd = f->lfd, .events = POLLIN };
	size_t n = 0;
	int fd;

	/* A umdevctl that fails before connecting must not hang the test. */
	if (poll(&p, 1, 10000) != 1 || (fd = accept(f->lfd, NULL, NULL)) < 0)
		return NULL;
	while (n < sizeof(f->request) - 1 && !memchr(f->request, '\n', n)) {
		ssize_t r = read(fd, f->request + n, sizeof(f->request) - 1 - n);

		if (r <= 0)
			break;
		n += (size_t)r;
	}
	snprintf(resp, sizeof(resp), "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":%s}\n", f->result);
	if (write(fd, resp, strlen(resp)) < 0) {
		/* umdevctl reports it */
	}
	close(fd);
	return NULL;
}

static void test_umdevctl_stats_missing_values(void **state)
{
	static const char nvme_stats[] =
		"{\"devices\":[{\"id\":\"nvme0\",\"type\":\"nvme\",\"transport\":\"vfio-user\","
		"\"socket\":\"/run/n.sock\",\"connected\":true,\"stats\":{\"requests\":7,"
		"\"bytes_from_guest\":1048576,\"bytes_to_guest\":3145728,\"inflight\":1,"
		"\"queues\":[{\"index\":0,\"requests\":5,\"inflight\":0},"
		"{\"index\":1,\"requests\":2,\"inflight\":1}],\"errors\":0}},"
		"{\"id\":\"p0\",\"type\":\"pci-sample\",\"transport\":\"vfio-user\","
		"\"socket\":\"/run/p.sock\",\"connected\":false,\"stats\":null}]}";
	struct fake_daemon f = { .result = nvme_stats };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[128], *q0, *total;
	struct stats_block b[4];
	pthread_t t;
	struct run r;

	assert_int_equal(umdev_proc_tmpdir(dir, sizeof(dir)), 0);
	assert_true(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/fake.sock", dir) <
		    (int)sizeof(sa.sun_path));
	f.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f.lfd >= 0);
	assert_int_equal(bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f.lfd, 1), 0);
	assert_int_equal(pthread_create(&t, NULL, fake_daemon_serve, &f), 0);
	{
		char *argv[] = { getenv("UMDEVCTL"), "stats", "--rpc", sa.sun_path, NULL };

		memset(&r, 0, sizeof(r));
		run_argv(&r, argv);
	}
	pthread_join(t, NULL);
	close(f.lfd);
	umdev_proc_rmtree(dir);
	assert_non_null(strstr(f.request, "\"method\":\"stats\""));
	assert_int_equal(r.status, 0);
	/* A daemon that does not report its I/O engine gets no engine line. */
	assert_int_equal(parse_stats(r.out, b, 4, false), 2);
	assert_int_equal(b[0].body, BODY_TABLE);
	assert_int_equal(b[0].queue_rows, 2);
	assert_int_equal(b[1].body, BODY_NO_STATS);
	/* What the type does not report is "-", not 0; what it does is there. */
	q0 = strstr(r.out, "  q0 ");
	total = strstr(r.out, "  total ");
	assert_non_null(q0);
	assert_non_null(total);
	{
		char f1[11][32];

		assert_int_equal(sscanf(q0, "%31s %31s %31s %31s %31s %31s %31s %31s %31s %31s %31s",
					f1[0], f1[1], f1[2], f1[3], f1[4], f1[5], f1[6], f1[7],
					f1[8], f1[9], f1[10]),
				 11);
		assert_string_equal(f1[1], "5");
		for (unsigned i = 2; i < 11; i++)
			if (i != 5)
				assert_string_equal(f1[i], "-");
		assert_int_equal(sscanf(total, "%31s %31s %31s %31s %31s %31s %31s %31s %31s "
					       "%31s %31s",
					f1[0], f1[1], f1[2], f1[3], f1[4], f1[5], f1[6], f1[7],
					f1[8], f1[9], f1[10]),
				 11);
		assert_string_equal(f1[1], "7");
		assert_string_equal(f1[2], "0");
		assert_string_equal(f1[3], "1.0");
		assert_string_equal(f1[4], "3.0");
		assert_string_equal(f1[5], "1");
		for (unsigned i = 6; i < 11; i++)
			assert_string_equal(f1[i], "-");
	}
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

/* Cpus_allowed_list of each of @pid's threads named @prefix*, and of its main thread. */
static unsigned thread_cpus(pid_t pid, const char *prefix, char lists[][64], unsigned max,
			    char *main_list)
{
	char path[512], comm[32], line[256];
	unsigned n = 0;
	DIR *dir;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	assert_non_null(dir);
	while ((de = readdir(dir))) {
		FILE *f;
		char *list = NULL;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid, de->d_name);
		f = fopen(path, "r");
		if (!f || !fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		if (f)
			fclose(f);
		comm[strcspn(comm, "\n")] = 0;
		if (!strncmp(comm, prefix, strlen(prefix)) && n < max)
			list = lists[n++];
		else if (atoi(de->d_name) == (int)pid)
			list = main_list;
		if (!list)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, de->d_name);
		f = fopen(path, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "Cpus_allowed_list:", 18))
				snprintf(list, 64, "%s", line + 18 + strspn(line + 18, " \t"));
		fclose(f);
		list[strcspn(list, "\n")] = 0;
	}
	closedir(dir);
	return n;
}

/* --cpus keeps every data-plane loop on its CPU (round robin), never the control thread. */
static void test_cpus(void **state)
{
	char lists[8][64], main_list[64] = "", mine[64] = "", last[32], line[256];
	char *bad[] = { getenv("UMDEVD"), "--rpc", "none", "--cpus", "1-0", NULL };
	char *bad2[] = { getenv("UMDEVD"), "--rpc", "none", "--cpus", "0,x", NULL };
	char *absent[] = { getenv("UMDEVD"), "--rpc", "none", "--cpus", "1023", "--device",
			   "virtio-blk,id=d0,socket=/tmp/umdev-cpus-never.sock,backend=null:1M",
			   NULL };
	struct proto_srv s;
	struct run r;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n;
	FILE *f = fopen("/proc/self/status", "r");

	/* Where we may run (the daemon inherits it), and the last CPU. */
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Cpus_allowed_list:", 18))
			snprintf(mine, sizeof(mine), "%s", line + 18 + strspn(line + 18, " \t"));
	fclose(f);
	mine[strcspn(mine, "\n")] = 0;
	snprintf(last, sizeof(last), "%ld", ncpu - 1);
	proto_srv_init(&s, 0);
	proto_start_umdevd(&s, "--cpus", last, "--threads", "3", "--device",
			   "virtio-blk,id=d0,socket=@SOCK@,backend=ram:4M,num-queues=3", "--rpc",
			   "none", NULL);
	/* Each loop thread names itself once running: wait for all three. */
	assert_true(TEST_WAIT_UNTIL(thread_cpus(s.proc.pid, "umdev-dp", lists, 8, main_list) == 3));
	n = 3;
	for (unsigned i = 0; i < n; i++)
		assert_string_equal(lists[i], last);
	/* The control thread stays where the process may run. */
	assert_string_equal(main_list, mine);
	blk_io_check(s.sock, false);
	proto_stop(&s, false);

	/* A list: --threads defaults to its length, loop i on the i-th CPU. */
	if (ncpu > 1) {
		proto_srv_init(&s, 0);
		proto_start_umdevd(&s, "--cpus", "1,0", "--device",
				   "virtio-blk,id=d0,socket=@SOCK@,backend=ram:4M", "--rpc",
				   "none", NULL);
		assert_true(TEST_WAIT_UNTIL(thread_cpus(s.proc.pid, "umdev-dp", lists, 8,
							main_list) == 2));
		/* Threads are listed in creation order: umdev-dp0 first. */
		assert_true((!strcmp(lists[0], "1") && !strcmp(lists[1], "0")) ||
			    (!strcmp(lists[0], "0") && !strcmp(lists[1], "1")));
		blk_io_check(s.sock, false);
		proto_stop(&s, false);
	}

	/* File I/O workers (epoll engine) block for any loop: never pinned. */
	proto_srv_init(&s, 8 << 20);
	proto_start_umdevd(&s, "--cpus", last, "--io-engine", "epoll", "--device",
			   "virtio-blk,id=d0,socket=@SOCK@,backend=file:@DISK@", "--rpc", "none",
			   NULL);
	blk_io_check(s.sock, false);
	n = thread_cpus(s.proc.pid, "umdev-io", lists, 8, main_list);
	assert_true(n >= 1);
	for (unsigned i = 0; i < n; i++)
		assert_string_equal(lists[i], mine);
	assert_true(TEST_WAIT_UNTIL(thread_cpus(s.proc.pid, "umdev-dp", lists, 8, main_list) == 1));
	assert_string_equal(lists[0], last);
	proto_stop(&s, false);

	memset(&r, 0, sizeof(r));
	run_argv(&r, bad);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--cpus"));
	memset(&r, 0, sizeof(r));
	run_argv(&r, bad2);
	assert_int_equal(r.status, 2);
	/* A CPU the machine lacks: refused at start, not ignored. */
	memset(&r, 0, sizeof(r));
	run_argv(&r, absent);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "cannot run on CPU 1023"));
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
		cmocka_unit_test_setup_teardown(test_umdevctl_stats_no_client, setup, teardown),
		cmocka_unit_test(test_umdevctl_stats_missing_values),
		cmocka_unit_test(test_umdevctl_no_daemon),
		cmocka_unit_test(test_print_capabilities),
		cmocka_unit_test(test_no_devices_no_socket_fails),
		cmocka_unit_test(test_backend_conventions),
		cmocka_unit_test(test_cpus),
		cmocka_unit_test(test_default_socket_and_activation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
