/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The built-in fuzz drivers' random stream: xorshift64*, plenty for picking
 * mutations, deterministic for a seed so a finding can be replayed. Each
 * file that includes this has its own stream (rng_state, set by its driver).
 */
#ifndef UMDEV_FUZZ_RNG_H
#define UMDEV_FUZZ_RNG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static inline uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* Uniform enough in [0, n); 0 when n is 0. */
static inline uint32_t below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

/*
 * The built-in drivers' command line: --seconds N, --seed S and, when
 * @verbose is not NULL, --verbose. Seeds the stream. -1 (usage printed) on
 * anything else.
 */
static inline int fuzz_args(int argc, char **argv, double *seconds, uint64_t *seed, bool *verbose)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			*seconds = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			*seed = strtoull(argv[++i], NULL, 0);
		} else if (verbose && !strcmp(argv[i], "--verbose")) {
			*verbose = true;
		} else {
			fprintf(stderr, "usage: %s [--seconds N] [--seed S]%s\n", argv[0],
				verbose ? " [--verbose]" : "");
			return -1;
		}
	}
	rng_state = *seed ? *seed : 1;
	return 0;
}

#endif
