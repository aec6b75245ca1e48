/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target for the virtio-pci transport's register handlers
 * (src/transport/virtio-pci): config space (the vendor capabilities and
 * the PCI_CFG window) and BAR 4 (common, ISR, device config, notify, MSI-X)
 * of a virtio-blk function, driven as a hostile guest would, with no client
 * attached (so queues never reach memory: this is about the registers).
 *
 * Each input is a sequence of 12-byte operations:
 *   byte 0: kind (even: BAR 4, odd: config space), bit 1: write
 *   bytes 1-2: offset, byte 3: log2 of the width (1, 2, 4, 8) or raw length
 *   bytes 4-11: the value written
 * After every operation the invariants a guest relies on are checked:
 * num_queues never changes, a status of 0 means every queue is disabled,
 * and DRIVER_OK never stands without FEATURES_OK.
 *
 * Two ways to run it: clang -fsanitize=fuzzer (fuzz/meson.build), or the
 * built-in driver (any compiler; what CI runs), which biases offsets to the
 * registers and plays driver-like sequences: fuzz-vpci [--seconds N] [--seed S]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "umdev/blk.h"
#include "umdev/log.h"
#include "umdev/proto/pci_regs.h"
#include "umdev/proto/virtio_pci.h"
#include "umdev/virtio_pci.h"
#include "fuzz_rng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NQ 4
#define BAR 4

static umdev_blk *blk;
static umdev_vpci *vp;
static umdev_pci_dev *pci;
static umdev_loop *loop; /* never run: with no client no queue starts */

static void init_once(void)
{
	struct umdev_blk_opts o = { .id = "fz0", .backend = "null:1M", .num_queues = NQ,
				    .queue_size = 256 };
	int err = 0;

	if (vp)
		return;
	umdev_log_set_level(UMDEV_LOG_ERR);
	loop = umdev_loop_new_engine("fz-dp", 0, UMDEV_IO_ENGINE_EPOLL, &err);
	if (loop)
		blk = umdev_blk_new(&o, &loop, 1, &err);
	if (blk)
		vp = umdev_vpci_new(umdev_blk_vdev(blk), &err);
	if (!vp) {
		fprintf(stderr, "fuzz-vpci: cannot build the device: %d\n", err);
		abort();
	}
	pci = umdev_vpci_pci(vp);
}

static void fail(const char *why)
{
	fprintf(stderr, "fuzz-vpci: invariant broken: %s\n", why);
	abort();
}

static uint64_t common_rd(uint32_t off, size_t len)
{
	uint64_t v = 0;

	if (umdev_pci_bar_access(pci, BAR, off, &v, len, false) < 0)
		fail("an aligned read of a field failed");
	return v;
}

static void check_invariants(void)
{
	uint8_t st;

	if (!(umdev_pci_command(pci) & UMDEV_PCI_CMD_MEMORY))
		return; /* BAR closed: nothing to read */
	if (common_rd(VPCI_COMMON_NUMQ, 2) != NQ)
		fail("num_queues changed");
	st = (uint8_t)common_rd(VPCI_COMMON_STATUS, 1);
	if ((st & VIRTIO_STATUS_DRIVER_OK) && !(st & VIRTIO_STATUS_FEATURES_OK))
		fail("DRIVER_OK without FEATURES_OK");
	if (st == 0) {
		uint64_t sel = common_rd(VPCI_COMMON_Q_SELECT, 2);

		if (sel < NQ && common_rd(VPCI_COMMON_Q_ENABLE, 2) != 0)
			fail("a queue enabled while status is 0");
	}
}

static void one_op(const uint8_t *p)
{
	bool cfg = p[0] & 1, write = p[0] & 2;
	uint32_t off = (uint32_t)p[1] | (uint32_t)p[2] << 8;
	size_t len = p[3] < 4 ? (size_t)1 << p[3] : (size_t)(p[3] % 16) + 1;
	uint8_t buf[16];
	int ret;

	memset(buf, 0, sizeof(buf));
	memcpy(buf, p + 4, 8);
	if (cfg) {
		ret = umdev_pci_cfg_access(pci, off % 0x110, buf, len, write);
	} else {
		ret = umdev_pci_bar_access(pci, BAR, off % 0x8100, buf, len, write);
	}
	(void)ret;
	check_invariants();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	/* Every input starts from a freshly reset function with its BAR open. */
	umdev_pci_reset(pci);
	{
		uint16_t cmd = UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER;

		if (umdev_pci_cfg_access(pci, UMDEV_PCI_COMMAND, &cmd, 2, true) < 0)
			abort();
	}
	for (size_t i = 0; i + 12 <= size; i += 12)
		one_op(data + i);
	return 0;
}

#ifndef UMDEV_LIBFUZZER

/* Offsets worth hitting: every common field, the other parts, the caps. */
static uint32_t pick_offset(bool *cfg)
{
	static const uint16_t common[] = { 0x00, 0x04, 0x08, 0x0c, 0x10, 0x12, 0x14, 0x15,
					   0x16, 0x18, 0x1a, 0x1c, 0x1e, 0x20, 0x24, 0x28,
					   0x2c, 0x30, 0x34, 0x38, 0x3a, 0x3c };

	*cfg = below(5) == 0;
	if (*cfg)
		return below(3) ? 0x70 + below(0x60) : below(0x110);
	switch (below(8)) {
	case 0: return 0x1000 + below(8); /* ISR */
	case 1: return 0x2000 + below(64); /* device config */
	case 2: return 0x3000 + 2 * below(12); /* notify */
	case 3: return 0x4000 + below(0x60); /* MSI-X table */
	case 4: return below(0x8100); /* anywhere */
	default: return common[below(sizeof(common) / sizeof(common[0]))];
	}
}

static size_t gen(uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (n + 12 <= cap && below(64)) {
		bool cfg;
		uint32_t off = pick_offset(&cfg);
		uint64_t v = below(4) ? below(8) : rnd();
		uint8_t *p = out + n;

		if (!cfg && off == VPCI_COMMON_STATUS && below(2))
			v = (uint64_t)1 << below(8) | (below(2) ? 0xf : 0); /* status transitions */
		p[0] = (uint8_t)((cfg ? 1 : 0) | (below(3) ? 2 : 0));
		p[1] = (uint8_t)off;
		p[2] = (uint8_t)(off >> 8);
		p[3] = (uint8_t)(below(8) ? below(4) : 4 + below(16));
		memcpy(p + 4, &v, 8);
		n += 12;
	}
	return n;
}

int main(int argc, char **argv)
{
	static uint8_t stream[12 * 64];
	double seconds = 30;
	uint64_t seed = 0x9e3779b97f4a7c15ull, iters = 0;
	struct timespec t0, t;

	if (fuzz_args(argc, argv, &seconds, &seed, NULL) < 0)
		return 2;
	init_once();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		size_t len = gen(stream, sizeof(stream));

		LLVMFuzzerTestOneInput(stream, len);
		iters++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
	umdev_vpci_free(vp);
	umdev_blk_free(blk);
	umdev_loop_free(loop);
	printf("fuzz-vpci: %llu inputs in %.0f s, seed 0x%llx, no crash\n",
	       (unsigned long long)iters, seconds, (unsigned long long)seed);
	return 0;
}

#endif
