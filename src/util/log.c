/* SPDX-License-Identifier: BSD-3-Clause */
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "umdev/log.h"

static _Atomic enum umdev_log_level log_level = UMDEV_LOG_INFO;

void umdev_log_set_level(enum umdev_log_level level)
{
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

enum umdev_log_level umdev_log_get_level(void)
{
	return atomic_load_explicit(&log_level, memory_order_relaxed);
}

static void vlog(enum umdev_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

void umdev_log(enum umdev_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void umdev_log_rl(struct umdev_ratelimit *rl, enum umdev_log_level level, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	if (level > umdev_log_get_level())
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec - rl->window_start >= UMDEV_RATELIMIT_INTERVAL_S) {
		rl->window_start = ts.tv_sec;
		rl->printed = 0;
	}
	if (rl->printed >= UMDEV_RATELIMIT_BURST) {
		rl->suppressed++;
		return;
	}
	rl->printed++;
	if (rl->suppressed) {
		umdev_log(level, "(%llu similar line(s) suppressed)", rl->suppressed);
		rl->suppressed = 0;
	}
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

/*
 * Whether stderr is the systemd journal: systemd then sets JOURNAL_STREAM
 * to "DEVICE:INODE" of the stream it gave us (systemd.exec(5)); a child
 * that inherited the variable but writes elsewhere has a different fd 2.
 * The journal stamps each line itself, so our lines carry no time there.
 * Decided once, on the first line, for the life of the process.
 */
static pthread_once_t stamp_once = PTHREAD_ONCE_INIT;
static bool stamp_time;

static void stamp_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	stamp_time = true;
	/* localtime_r() need not read TZ itself (POSIX): read it here, once. */
	tzset();
	if (!js || sscanf(js, "%llu:%llu%n", &dev, &ino, &end) != 2 || js[end] ||
	    fstat(STDERR_FILENO, &st) < 0)
		return;
	if ((unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		stamp_time = false;
}

/*
 * "2026-12-06 16:15:09.123+01:00 " in local time (RFC 3339 with a space),
 * into @buf; returns its length, 0 when the time cannot be had.
 */
static int format_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char zone[8];
	size_t n;
	int m;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || !localtime_r(&ts.tv_sec, &tm))
		return 0;
	n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	/* %z is "+0100": RFC 3339 wants "+01:00". */
	if (!n || strftime(zone, sizeof(zone), "%z", &tm) != 5)
		return 0;
	m = snprintf(buf + n, len - n, ".%03ld%.3s:%.2s ", ts.tv_nsec / 1000000, zone, zone + 3);
	return m > 0 && (size_t)m < len - n ? (int)n + m : 0;
}

static void vlog(enum umdev_log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	int n = 0, m;

	if (level > umdev_log_get_level())
		return;
	pthread_once(&stamp_once, stamp_init);
	if (stamp_time)
		n = format_time(line, 64);
	n += snprintf(line + n, sizeof(line) - n, "umdev %s: ", names[level]);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line keeps lines from different threads whole. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
}
