/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging. One line per event on stderr, prefixed with a level and, by
 * convention, the object it concerns ("blk0: ...", "blk0.q1: ...").
 * Thread-safe; never blocks for long (a single write(2) per line).
 */
#ifndef UMDEV_LOG_H
#define UMDEV_LOG_H

enum umdev_log_level {
	UMDEV_LOG_ERR = 0,
	UMDEV_LOG_WARN,
	UMDEV_LOG_INFO,
	UMDEV_LOG_DEBUG,
};

/** umdev_log_set_level() - lines above @level are dropped (default INFO). */
void umdev_log_set_level(enum umdev_log_level level);
enum umdev_log_level umdev_log_get_level(void);

void umdev_log(enum umdev_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define umdev_err(...) umdev_log(UMDEV_LOG_ERR, __VA_ARGS__)
#define umdev_warn(...) umdev_log(UMDEV_LOG_WARN, __VA_ARGS__)
#define umdev_info(...) umdev_log(UMDEV_LOG_INFO, __VA_ARGS__)
#define umdev_dbg(...) umdev_log(UMDEV_LOG_DEBUG, __VA_ARGS__)

/*
 * Rate limiting for lines a client can cause: one per connection (embedded,
 * zero-initialised), so a client that floods bad messages fills no disk and
 * costs no other client its log lines. At most UMDEV_RATELIMIT_BURST lines
 * per UMDEV_RATELIMIT_INTERVAL_S seconds pass; the next line that passes
 * says how many were suppressed. Not thread-safe: use one per thread
 * (connections live on the control loop).
 */
#define UMDEV_RATELIMIT_BURST 10
#define UMDEV_RATELIMIT_INTERVAL_S 5

struct umdev_ratelimit {
	long long window_start; /* seconds, CLOCK_MONOTONIC */
	unsigned printed; /* lines passed in this window */
	unsigned long long suppressed; /* lines dropped since the last one passed */
};

void umdev_log_rl(struct umdev_ratelimit *rl, enum umdev_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define umdev_err_rl(rl, ...) umdev_log_rl(rl, UMDEV_LOG_ERR, __VA_ARGS__)
#define umdev_warn_rl(rl, ...) umdev_log_rl(rl, UMDEV_LOG_WARN, __VA_ARGS__)

#endif
