/* SPDX-License-Identifier: BSD-3-Clause */
/* Small helpers every benchmark program uses. */
#ifndef UMDEV_BENCH_UTIL_H
#define UMDEV_BENCH_UTIL_H

#include <stdint.h>

/* Monotonic time in seconds. */
double bench_mono_s(void);
/* CPU time (user + system) this process has used, in ns. */
uint64_t bench_self_cpu_ns(void);
/* xorshift64: cheap pseudo-random offsets; *@s must not be 0. */
uint64_t bench_xorshift(uint64_t *s);
/*
 * Keep this thread (and the processes and threads it starts from now on)
 * on CPUs [@first, @first + @count), those that exist. 0 or -errno.
 */
int bench_set_cpus(long first, long count);
/* Copy a server's log file at @path to stderr (after a failed run). */
void bench_dump_log(const char *path);

#endif
