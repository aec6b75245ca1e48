/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "umdev/log.h"

static enum umdev_log_level log_level = UMDEV_LOG_INFO;

void umdev_log_set_level(enum umdev_log_level level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum umdev_log_level umdev_log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static void vlog(enum umdev_log_level level, const char *fmt, va_list ap);

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

static void vlog(enum umdev_log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	struct timespec ts;
	int n, m;

	if (level > umdev_log_get_level())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof(line), "umdev[%ld.%03ld] %s: ", (long)ts.tv_sec,
		     ts.tv_nsec / 1000000, names[level]);
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
