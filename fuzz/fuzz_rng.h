/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The built-in fuzz drivers' random stream: xorshift64*, plenty for picking
 * mutations, deterministic for a seed so a finding can be replayed. Each
 * file that includes this has its own stream (rng_state, set by its driver).
 */
#ifndef UMDEV_FUZZ_RNG_H
#define UMDEV_FUZZ_RNG_H

#include <stdint.h>

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

#endif
