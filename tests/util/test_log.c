/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The log line format: a local time with its UTC offset, then "umdev LEVEL:
 * message"; no time when stderr is the systemd journal (JOURNAL_STREAM names
 * fd 2). The format is decided once per process, so each case logs from a
 * child of its own, with stderr redirected to a file the test then reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "umdev/log.h"

/* What a child does, with fd 2 already on the file. */
enum child_env {
	ENV_NONE, /* no JOURNAL_STREAM */
	ENV_JOURNAL, /* JOURNAL_STREAM = fd 2 */
	ENV_OTHER, /* JOURNAL_STREAM = some other file (inherited, stale) */
	ENV_GARBAGE, /* JOURNAL_STREAM that does not parse */
};

#define NTHREADS 4
#define LINES_PER_THREAD 200

static void *log_lines(void *arg)
{
	for (int i = 0; i < LINES_PER_THREAD; i++)
		umdev_warn("t%d: line %d of many, long enough to matter", (int)(intptr_t)arg, i);
	return NULL;
}

/*
 * Run one child that logs "hello 42" at info (and @threads threads of
 * lines when non-zero) under @tz and @env; returns what it wrote to stderr
 * (caller frees).
 */
static char *run_child(const char *tz, enum child_env env, bool threads)
{
	char path[] = "/tmp/umdev-test-log.XXXXXX", *buf;
	int fd = mkstemp(path), st;
	struct stat sb;
	ssize_t n;
	pid_t pid;

	assert_true(fd >= 0);
	unlink(path);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char js[64];

		if (dup2(fd, STDERR_FILENO) < 0)
			_exit(3);
		setenv("TZ", tz, 1);
		unsetenv("JOURNAL_STREAM");
		if (env == ENV_JOURNAL || env == ENV_OTHER) {
			struct stat s;

			if (env == ENV_JOURNAL ? fstat(STDERR_FILENO, &s) : stat("/", &s))
				_exit(3);
			snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)s.st_dev,
				 (unsigned long long)s.st_ino);
			setenv("JOURNAL_STREAM", js, 1);
		} else if (env == ENV_GARBAGE) {
			setenv("JOURNAL_STREAM", "8:x", 1);
		}
		umdev_log_set_level(UMDEV_LOG_INFO);
		if (threads) {
			pthread_t t[NTHREADS];

			/* All threads race for the first line: the decision is made once. */
			for (int i = 0; i < NTHREADS; i++)
				if (pthread_create(&t[i], NULL, log_lines, (void *)(intptr_t)i))
					_exit(4);
			for (int i = 0; i < NTHREADS; i++)
				pthread_join(t[i], NULL);
		}
		umdev_info("hello %d", 42);
		umdev_dbg("not shown at info");
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(fstat(fd, &sb), 0);
	buf = calloc(1, (size_t)sb.st_size + 1);
	assert_non_null(buf);
	n = pread(fd, buf, (size_t)sb.st_size, 0);
	assert_int_equal(n, sb.st_size);
	close(fd);
	return buf;
}

/*
 * Check that @line starts with "YYYY-MM-DD HH:MM:SS.mmm+HH:MM " carrying
 * offset @zone; returns the time it names as seconds since the epoch
 * (with @zone_s, the offset in seconds, taken back off).
 */
static time_t check_stamp(const char *line, const char *zone, long zone_s)
{
	struct tm tm = { 0 };
	const char *end;

	static const char layout[] = "dddd-dd-dd dd:dd:dd.ddd"; /* d: a digit */

	for (size_t i = 0; i < sizeof(layout) - 1; i++) {
		if (layout[i] == 'd')
			assert_true(line[i] >= '0' && line[i] <= '9');
		else
			assert_int_equal(line[i], layout[i]);
	}
	assert_memory_equal(line + 23, zone, 6);
	assert_int_equal(line[29], ' ');
	end = strptime(line, "%Y-%m-%d %H:%M:%S", &tm);
	assert_non_null(end);
	assert_ptr_equal(end, line + 19);
	/* timegm: the fields as if UTC, then the offset back off. */
	return timegm(&tm) - zone_s;
}

static void test_local_time_utc(void **state)
{
	time_t before = time(NULL), t;
	char *out = run_child("UTC", ENV_NONE, false);

	t = check_stamp(out, "+00:00", 0);
	assert_true(t >= before - 1 && t <= time(NULL) + 1);
	assert_string_equal(out + 30, "umdev info: hello 42\n");
	free(out);
}

static void test_local_time_offset(void **state)
{
	time_t before = time(NULL), t;
	/* POSIX TZ: 5 h 30 min east of UTC, no zoneinfo needed. */
	char *out = run_child("XST-5:30", ENV_NONE, false);

	t = check_stamp(out, "+05:30", 5 * 3600 + 30 * 60);
	assert_true(t >= before - 1 && t <= time(NULL) + 1);
	assert_string_equal(out + 30, "umdev info: hello 42\n");
	free(out);
	out = run_child("XST+3:30", ENV_NONE, false);
	check_stamp(out, "-03:30", -(3 * 3600 + 30 * 60));
	free(out);
}

static void test_journal_no_time(void **state)
{
	char *out = run_child("UTC", ENV_JOURNAL, false);

	assert_string_equal(out, "umdev info: hello 42\n");
	free(out);
}

static void test_journal_elsewhere_keeps_time(void **state)
{
	/* Inherited from a service, but stderr is a file now: stamp it. */
	char *out = run_child("UTC", ENV_OTHER, false);

	check_stamp(out, "+00:00", 0);
	assert_string_equal(out + 30, "umdev info: hello 42\n");
	free(out);
	out = run_child("UTC", ENV_GARBAGE, false);
	check_stamp(out, "+00:00", 0);
	free(out);
}

/* Lines from racing threads: each whole, each in the one format. */
static void check_threads(enum child_env env)
{
	char *out = run_child("UTC", env, true), *line, *save = NULL;
	unsigned n = 0;

	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *msg = line;

		if (env != ENV_JOURNAL) {
			check_stamp(line, "+00:00", 0);
			msg = line + 30;
		}
		assert_true(!strncmp(msg, "umdev warning: t", 16) ||
			    !strcmp(msg, "umdev info: hello 42"));
		if (msg[6] == 'w')
			assert_non_null(strstr(msg, " of many, long enough to matter"));
		n++;
	}
	assert_int_equal(n, NTHREADS * LINES_PER_THREAD + 1);
	free(out);
}

static void test_threads(void **state)
{
	check_threads(ENV_NONE);
	check_threads(ENV_JOURNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_time_utc),
		cmocka_unit_test(test_local_time_offset),
		cmocka_unit_test(test_journal_no_time),
		cmocka_unit_test(test_journal_elsewhere_keeps_time),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
