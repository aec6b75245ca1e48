/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Waiting for a condition in tests: poll it until it holds or a generous
 * deadline passes, never sleep a fixed time and hope. The deadline only
 * bounds a failing run; a passing one waits as long as the condition takes,
 * so the tests pass on a machine many times slower than this one.
 */
#ifndef UMDEV_TEST_WAIT_H
#define UMDEV_TEST_WAIT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* How long a condition expected to hold "soon" may take. */
#define TEST_WAIT_MS 30000

static inline int64_t test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * TEST_WAIT_UNTIL(cond) - evaluate @cond every 2 ms until it is true or
 * TEST_WAIT_MS have passed; the expression's value is the last @cond.
 */
#define TEST_WAIT_UNTIL(cond)                                                  \
	({                                                                     \
		int64_t test_deadline_ = test_now_ms() + TEST_WAIT_MS;         \
		bool test_ok_;                                                 \
		while (!(test_ok_ = (cond)) && test_now_ms() < test_deadline_) \
			usleep(2000);                                          \
		test_ok_;                                                      \
	})

#endif
