/* SPDX-License-Identifier: BSD-3-Clause */
/* umdev-bench --scaling: see bench_scaling.c. */
#ifndef UMDEV_BENCH_SCALING_H
#define UMDEV_BENCH_SCALING_H

#include <stdbool.h>
#include <stdint.h>

#define BENCH_SCALING_MAX_QDS 8
#define BENCH_SCALING_MAX_ARGS 16
#define BENCH_SCALING_MAX_ROUNDS 9
#define BENCH_SCALING_RING 256 /* entries per queue */

struct bench_scaling_opts {
	double duration;
	const unsigned *qds; /* per queue */
	unsigned nqds;
	bool run_umdevd, run_qsd;
	const char *umdevd;
	const char *qsd;
	uint64_t size; /* null backend bytes */
	uint32_t bs; /* bytes per read */
	unsigned batch; /* completions per interrupt asked (used_event), 0: qd / 4 */
	bool pin; /* client on the last CPU */
	unsigned rounds; /* 1..BENCH_SCALING_MAX_ROUNDS passes over the matrix */
	const char *dev_extra; /* appended to umdevd's --device */
	const char *const *extra_args; /* umdevd arguments */
	unsigned nextra;
	const char *label;
	const char *dir; /* private temp dir, removed by the caller */
	double load_before;
};

/* Runs the matrix and prints its table. Return: 0, or 1 if a point failed. */
int bench_scaling(const struct bench_scaling_opts *o);

#endif
