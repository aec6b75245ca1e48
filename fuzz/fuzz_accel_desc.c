/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target for accel descriptors: each input is a run of 64-byte
 * descriptors that device A submits. They are resolved as the engine does
 * (the PASID registry, owner A) and executed (accel_exec) in A's address
 * space of two regions with a hole between them. Beyond "no crash" (run it
 * with ASan), it checks the isolation the device promises: device B's
 * memory never changes, a PASID other than A's is always refused, and every
 * status is one the guest's driver knows.
 *
 * Two ways to run it:
 * - clang -fsanitize=fuzzer (see fuzz/meson.build);
 * - the built-in driver (any compiler; what CI runs): random descriptors
 *   aimed at region edges, for a bounded time:
 *     fuzz-accel-desc [--seconds N] [--seed S]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dev/accel/accel.h"
#include "fuzz_rng.h"
#include "umdev/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define R0 0x10000ull /* A: [R0, R0 + RSZ) and [R1, R1 + RSZ) */
#define R1 0x100000ull
#define RSZ (256 * 1024ull)

static umdev_pasid_reg *reg;
static umdev_as *as_a, *as_b;
static uint32_t pasid_a, pasid_b;
static int owner_a, owner_b;
static uint8_t *b_mem; /* B's memory, to check it never changes */
static uint32_t b_crc;

static void add(umdev_as *as, uint64_t gpa, uint8_t **out)
{
	int fd = memfd_create("fuzz-accel", MFD_CLOEXEC);
	struct umdev_mem_region_desc d = { .guest_addr = gpa, .size = RSZ, .fd = fd,
					   .prot = UMDEV_MEM_READ | UMDEV_MEM_WRITE };
	umdev_as_map *m;

	if (fd < 0 || ftruncate(fd, RSZ) < 0 || umdev_as_add_region(as, &d) < 0)
		abort();
	m = umdev_as_get_map(as);
	*out = umdev_as_map_translate(m, gpa, RSZ, UMDEV_MEM_WRITE);
	umdev_as_map_put(m);
}

static void init_once(void)
{
	uint8_t *p;
	int err = 0;

	if (reg)
		return;
	reg = umdev_pasid_reg_new(1, &err);
	as_a = umdev_as_new(&err);
	as_b = umdev_as_new(&err);
	if (!reg || !as_a || !as_b)
		abort();
	add(as_a, R0, &p);
	for (uint64_t i = 0; i < RSZ; i++)
		p[i] = (uint8_t)(i * 13);
	add(as_a, R1, &p);
	add(as_b, R0, &b_mem);
	memset(b_mem, 0xb5, RSZ);
	b_crc = accel_crc32c(0, b_mem, RSZ);
	pasid_a = (uint32_t)umdev_pasid_alloc(reg, &owner_a);
	pasid_b = (uint32_t)umdev_pasid_alloc(reg, &owner_b);
	if (umdev_pasid_bind_as(reg, pasid_a, &owner_a, as_a) < 0 ||
	    umdev_pasid_bind_as(reg, pasid_b, &owner_b, as_b) < 0)
		abort();
}

static bool known_status(int st)
{
	return st == ACCEL_ST_SUCCESS || st == ACCEL_ST_BAD_OPCODE || st == ACCEL_ST_BAD_SIZE ||
	       st == ACCEL_ST_BAD_ADDR || st == ACCEL_ST_BAD_FLAGS;
}

static void one(const struct accel_desc *d)
{
	struct accel_comp c;
	umdev_as_map *m;
	int err = 0, st;

	m = umdev_pasid_get_map(reg, d->pasid, &owner_a, &err);
	if (!m) {
		if (d->pasid == pasid_a || err != -EPERM)
			abort(); /* A's own PASID must resolve; others are refused */
		return;
	}
	if (d->pasid != pasid_a)
		abort(); /* a foreign PASID resolved: isolation broken */
	st = accel_exec(d, m, &c);
	if (!known_status(st) || (st == ACCEL_ST_SUCCESS && c.bytes > d->size) ||
	    c.cookie != d->cookie)
		abort();
	umdev_as_map_put(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	for (size_t off = 0; off + sizeof(struct accel_desc) <= size;
	     off += sizeof(struct accel_desc)) {
		struct accel_desc d;

		memcpy(&d, data + off, sizeof(d));
		/* Most inputs name A's PASID, so the operations themselves get fuzzed. */
		if (d.pasid & 0x80000000u)
			d.pasid = pasid_a;
		one(&d);
	}
	if (accel_crc32c(0, b_mem, RSZ) != b_crc)
		abort(); /* B's memory changed */
	return 0;
}

#ifndef UMDEV_LIBFUZZER
/* An address near an edge of A's regions (or the hole, or anywhere). */
static uint64_t addr(void)
{
	static const uint64_t edges[] = { R0, R0 + RSZ, R1, R1 + RSZ, 0, ~0ull };
	uint64_t base = edges[below(6)];

	switch (below(4)) {
	case 0: return base + below(64) - 32;
	case 1: return base - below(RSZ);
	case 2: return R0 + below(RSZ);
	default: return rnd();
	}
}

static uint32_t size(void)
{
	switch (below(4)) {
	case 0: return below(64);
	case 1: return below(RSZ + 64);
	case 2: return ACCEL_MAX_XFER + below(3) - 1;
	default: return (uint32_t)rnd();
	}
}

int main(int argc, char **argv)
{
	double seconds = 30;
	uint64_t seed = 0x9e3779b97f4a7c15ull, iters = 0;
	struct timespec t0, t;

	if (fuzz_args(argc, argv, &seconds, &seed, NULL) < 0)
		return 2;
	init_once();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct accel_desc run[8];
		unsigned n = 1 + below(8);

		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds)
			break;
		for (unsigned i = 0; i < n; i++) {
			struct accel_desc *d = &run[i];

			d->pasid = below(8) ? 0x80000000u : (below(2) ? pasid_b : (uint32_t)rnd());
			d->opcode = (uint8_t)(below(8) ? below(ACCEL_OP_MAX + 1) : rnd());
			d->flags = (uint8_t)(below(8) ? below(4) : rnd());
			d->vector = (uint16_t)rnd();
			d->comp_addr = addr();
			d->src = addr();
			d->dst = addr();
			d->size = size();
			d->crc_seed = (uint32_t)rnd();
			d->src2 = addr();
			d->pattern = rnd();
			d->cookie = rnd();
		}
		LLVMFuzzerTestOneInput((const uint8_t *)run, n * sizeof(run[0]));
		iters++;
	}
	printf("fuzz-accel-desc: %llu runs, seed 0x%llx, no finding\n", (unsigned long long)iters,
	       (unsigned long long)seed);
	return 0;
}
#endif
