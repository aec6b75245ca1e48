/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: NVMe command parsing. An input is guest memory contents (the
 * first 64 KiB, where PRP lists, SGL segments, DSM ranges and shadow
 * doorbells may point) followed by 65-byte records: a selector byte, then a
 * submission queue entry put on the admin queue or one of two I/O queues,
 * or (selector 0xff) a register write. Data pointers are steered into guest
 * memory when the selector's high bit is set, so the walkers go deep.
 * Controllers that end in CSTS.CFS are reset and brought up again.
 *
 * Without libFuzzer (the default build) main() runs random inputs for
 * --seconds N, or replays the files given: this is the CI test. With clang,
 * -DUMDEV_LIBFUZZER gives LLVMFuzzerTestOneInput for coverage-guided runs.
 */
#include <stdio.h>
#include <time.h>

#include "nvme_fixture.h"
#include "umdev/log.h"

#define SCRATCH_OFF (8u << 20) /* guest window the input fills */
#define SCRATCH_LEN 65536u
#define REC 65u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fx *g;
static unsigned since_reset;

static void bring_up(void)
{
	uint32_t csts = 0;

	if (umdev_nvmed_reg_read32(&g->d, NVME_REG_CSTS, &csts) == 0 &&
	    (csts & NVME_CSTS_RDY) && !(csts & NVME_CSTS_CFS) && since_reset < 64)
		return;
	since_reset = 0;
	/* After a reset everything must come up again: anything else is a bug. */
	if (umdev_nvmed_disable(&g->d) < 0)
		abort();
	g->d.brk = 0; /* queues are carved again from the start of guest memory */
	if (umdev_nvmed_enable(&g->d, 32) < 0 || umdev_nvmed_create_qpair(&g->d, 1, 16, true) ||
	    umdev_nvmed_create_qpair(&g->d, 2, 16, false))
		abort();
}

static void drain_cqs(void)
{
	for (uint16_t q = 0; q < 3; q++) {
		struct umdev_nvmed_queue *uq = &g->d.q[q];

		for (unsigned i = 0; uq->live && i < uq->size && umdev_nvmed_cq_ready(&g->d, q); i++) {
			struct nvme_cqe e;

			if (umdev_nvmed_reap(&g->d, q, &e) < 0)
				break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = size < SCRATCH_LEN ? size : SCRATCH_LEN;

	if (!g) {
		uint32_t nsid;

		umdev_log_set_level(UMDEV_LOG_ERR);
		g = fx_new(false);
		if (!g || fx_add_ram_ns(g, "ram:1M", 0, 0, &nsid) < 0 ||
		    fx_add_ram_ns(g, "ram:1M", 4096, 0, &nsid) < 0)
			abort();
		g->d.timeout_ms = 0;
	}
	since_reset++;
	bring_up();
	memcpy(g->mem + SCRATCH_OFF, data, n);
	for (size_t off = n; off + REC <= size; off += REC) {
		const uint8_t *r = data + off;
		struct nvme_sqe c;
		uint16_t q = r[0] % 3;

		if (r[0] == 0xff) {
			uint32_t reg, v;

			memcpy(&reg, r + 1, 4);
			memcpy(&v, r + 5, 4);
			if (umdev_nvmed_reg_write32(&g->d, reg % 0x40 & ~3u, v) < 0)
				abort(); /* register writes never fail while memory is on */
			bring_up();
			continue;
		}
		memcpy(&c, r + 1, sizeof(c));
		if (r[0] & 0x80) {
			uint64_t base = FX_IOVA + SCRATCH_OFF;

			c.dptr.prp.prp1 = base + (c.dptr.prp.prp1 % SCRATCH_LEN);
			if (r[0] & 0x40)
				c.dptr.prp.prp2 = base + (c.dptr.prp.prp2 % SCRATCH_LEN);
			c.cdw12 &= 0xff; /* keep transfers small enough to stay in the window */
		}
		if (!g->d.q[q].live)
			continue;
		if (umdev_nvmed_submit(&g->d, q, &c) < 0)
			continue;
		drain_cqs();
	}
	drain_cqs();
	return 0;
}

#ifndef UMDEV_LIBFUZZER
static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

int main(int argc, char **argv)
{
	double seconds = 10;
	unsigned long iters = 0;
	struct timespec t0, t;
	static uint8_t buf[SCRATCH_LEN + 64 * REC];

	if (argc == 3 && !strcmp(argv[1], "--seconds")) {
		seconds = atof(argv[2]);
	} else if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			FILE *fp = fopen(argv[i], "rb");
			size_t len;

			if (!fp)
				return 1;
			len = fread(buf, 1, sizeof(buf), fp);
			fclose(fp);
			LLVMFuzzerTestOneInput(buf, len);
		}
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		size_t recs = rnd() % 64, len;

		/* Guest memory: mostly plausible PRP/SGL entries pointing into itself. */
		for (size_t i = 0; i < 4096; i += 8) {
			uint64_t v = rnd();

			if (v & 1)
				v = FX_IOVA + SCRATCH_OFF + (v >> 8) % SCRATCH_LEN;
			if ((v & 6) == 2)
				v &= ~0xfffull;
			memcpy(buf + i, &v, 8);
		}
		for (size_t i = 4096; i < SCRATCH_LEN; i += 8) {
			uint64_t v = rnd();

			memcpy(buf + i, &v, 8);
		}
		len = SCRATCH_LEN + recs * REC;
		for (size_t i = SCRATCH_LEN; i < len; i += 8) {
			uint64_t v = rnd();

			memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
		}
		/* Opcodes the controller knows, most of the time. */
		for (size_t k = 0; k < recs; k++) {
			uint8_t *rec = buf + SCRATCH_LEN + k * REC;
			static const uint8_t adm[] = { 0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08,
						       0x09, 0x0a, 0x0c, 0x7c };

			if (rec[0] == 0xff && rnd() % 4)
				rec[0] = 0x80;
			if (rnd() % 8 == 0)
				continue;
			rec[1] = rec[0] % 3 == 0 ? adm[rnd() % sizeof(adm)] : (uint8_t)(rnd() % 10);
			rec[2] &= 0xc0; /* PRP or SGL, no fused operation */
			if (rnd() % 2) {
				uint32_t nsid = 1 + rnd() % 2;

				memcpy(rec + 5, &nsid, 4);
			}
			if (rnd() % 2) {
				/* An LBA range inside the namespace, data in guest memory. */
				uint32_t slba = (uint32_t)(rnd() % 2000), hi = 0;

				memcpy(rec + 1 + 40, &slba, 4);
				memcpy(rec + 1 + 44, &hi, 4);
				rec[0] |= 0x80;
			}
		}
		LLVMFuzzerTestOneInput(buf, len);
		iters++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
	{
		struct umdev_nvme_stats st;

		umdev_nvme_get_stats(g->n, &st);
		printf("fuzz-nvme-cmd: %lu inputs in %.0f s: %llu admin, %llu I/O commands, "
		       "%llu errors, %llu bytes read, %llu written\n", iters, seconds,
		       (unsigned long long)st.admin_cmds, (unsigned long long)st.io_cmds,
		       (unsigned long long)st.errors, (unsigned long long)st.read_bytes,
		       (unsigned long long)st.write_bytes);
	}
	fx_free(g);
	return 0;
}
#endif
