/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target for the vfio-user message parser and command handlers.
 *
 * LLVMFuzzerTestOneInput() feeds one byte stream to a vfio-user server built
 * around the pci-sample device (umdev_vfu_server_feed(): framing, VERSION
 * JSON, every handler, the PCI model and the interrupt layer behind them).
 * A valid VERSION is put in front of inputs whose first byte is odd, so the
 * fuzzer spends most of its time past negotiation.
 *
 * Two ways to run it:
 * - clang -fsanitize=fuzzer (coverage-guided libFuzzer), see fuzz/meson.build;
 * - the built-in driver (any compiler; what CI runs): structure-aware random
 *   mutation of well-formed messages for a bounded time:
 *     fuzz-vfu-msg [--seconds N] [--seed S]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dev/sample/sample.h"
#include "umdev/log.h"
#include "umdev/proto/pci_regs.h"
#include "umdev/proto/vfio_user.h"
#include "umdev/vfio_user.h"
#include "fuzz_rng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static umdev_sample *dev;
static umdev_vfu_server *srv;

static const char version_json[] =
	"{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576,"
	"\"pgsizes\":4096,\"write_multiple\":true}}";

static size_t put_msg(uint8_t *out, size_t cap, uint16_t id, uint16_t cmd, uint32_t flags,
		      const void *body, size_t len)
{
	struct vfio_user_header h = { .msg_id = id, .cmd = cmd,
				      .msg_size = (uint32_t)(sizeof(h) + len), .flags = flags };

	if (sizeof(h) + len > cap)
		return 0;
	memcpy(out, &h, sizeof(h));
	if (len)
		memcpy(out + sizeof(h), body, len);
	return sizeof(h) + len;
}

static size_t put_version(uint8_t *out, size_t cap)
{
	uint8_t v[4 + sizeof(version_json)] = { VFIO_USER_MAJOR, 0, VFIO_USER_MINOR, 0 };

	memcpy(v + 4, version_json, sizeof(version_json));
	return put_msg(out, cap, 0, VFIO_USER_VERSION, 0, v, sizeof(v));
}

static void init_once(void)
{
	int err = 0;

	if (srv)
		return;
	/* Hostile input is logged line by line; a fuzzer would drown in it. */
	umdev_log_set_level(UMDEV_LOG_ERR);
	dev = umdev_sample_new("fuzz0", &err);
	if (!dev)
		abort();
	srv = umdev_vfu_server_new(umdev_sample_pci(dev), NULL, NULL, -1, &err);
	if (!srv)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[1 << 21];
	size_t n = 0;

	init_once();
	if (size > sizeof(buf) - 256)
		return 0;
	if (!size)
		return 0;
	/* Byte 0 only selects the VERSION prefix; the stream is what follows. */
	if (data[0] & 1)
		n = put_version(buf, sizeof(buf));
	memcpy(buf + n, data + 1, size - 1);
	/* Any result is fine; crashes, leaks and sanitizer reports are the findings. */
	if (umdev_vfu_server_feed(srv, buf, n + size - 1) == -EBUSY)
		abort(); /* a previous input left a connection behind */
	return 0;
}

#ifndef UMDEV_LIBFUZZER

/* ---- built-in driver ---- */


/* Interesting values for lengths, offsets, counts. */
static uint64_t interesting(void)
{
	static const uint64_t v[] = { 0, 1, 2, 3, 4, 7, 8, 15, 16, 20, 24, 31, 32, 0x7f, 0x80,
				      0xff, 0x100, 0xfff, 0x1000, 0x1001, 0x3ffc, 0x4000, 0x7fff,
				      0xffff, 0x10000, 0x100000, 0x100010, 0x7fffffff, 0x80000000,
				      0xffffffff, 0x100000000ull, 0xfffffffffffff000ull,
				      0xffffffffffffffffull };

	return v[below(sizeof(v) / sizeof(v[0]))];
}

/* A well-formed message for a random command (before mutation). */
static size_t seed_msg(uint8_t *out, size_t cap, uint16_t id)
{
	uint8_t b[512];
	size_t len = 0;
	uint16_t cmd = (uint16_t)(1 + below(18));

	memset(b, 0, sizeof(b));
	switch (cmd) {
	case VFIO_USER_VERSION:
		return put_version(out, cap);
	case VFIO_USER_DMA_MAP: {
		struct vfio_user_dma_map m = { 32, 1 + below(3), 0, (uint64_t)below(64) << 12,
					       (uint64_t)(1 + below(16)) << 12 };
		memcpy(b, &m, sizeof(m));
		len = sizeof(m);
		break;
	}
	case VFIO_USER_DMA_UNMAP: {
		struct vfio_user_dma_unmap u = { 24, below(4) ? 0 : VFIO_DMA_UNMAP_FLAG_ALL,
						 (uint64_t)below(64) << 12,
						 (uint64_t)(1 + below(16)) << 12 };
		memcpy(b, &u, sizeof(u));
		len = sizeof(u);
		break;
	}
	case VFIO_USER_DEVICE_GET_INFO:
	case VFIO_USER_DEVICE_GET_IRQ_INFO:
	case VFIO_USER_DEVICE_GET_REGION_IO_FDS: {
		uint32_t q[4] = { 16, 0, below(10), 0 };
		memcpy(b, q, sizeof(q));
		len = sizeof(q);
		break;
	}
	case VFIO_USER_DEVICE_GET_REGION_INFO: {
		struct vfio_user_region_info q = { .argsz = below(2) ? 32 : 256, .index = below(10) };
		memcpy(b, &q, sizeof(q));
		len = sizeof(q);
		break;
	}
	case VFIO_USER_DEVICE_SET_IRQS: {
		static const uint32_t data[] = { VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_BOOL,
						 VFIO_IRQ_SET_DATA_EVENTFD };
		static const uint32_t act[] = { VFIO_IRQ_SET_ACTION_MASK,
						VFIO_IRQ_SET_ACTION_UNMASK,
						VFIO_IRQ_SET_ACTION_TRIGGER };
		struct vfio_user_irq_set s = { 20, data[below(3)] | act[below(3)], below(6),
					       below(5), below(6) };
		memcpy(b, &s, sizeof(s));
		len = sizeof(s);
		if (s.flags & VFIO_IRQ_SET_DATA_BOOL) {
			for (uint32_t i = 0; i < s.count; i++)
				b[len++] = (uint8_t)below(2);
		}
		break;
	}
	case VFIO_USER_REGION_READ:
	case VFIO_USER_REGION_WRITE: {
		static const uint32_t regions[] = { 0, 0, 0, 2, 7, 7, 7, 1, 6, 8, 9 };
		struct vfio_user_region_access a = { below(0x4100), regions[below(11)],
						     1u << below(4) };
		if (a.region == 7)
			a.offset = below(0x110);
		if (below(4) == 0)
			a.offset = 4 * below(16); /* sample registers and the header */
		memcpy(b, &a, sizeof(a));
		len = sizeof(a);
		if (cmd == VFIO_USER_REGION_WRITE) {
			for (uint32_t i = 0; i < a.count; i++)
				b[len++] = (uint8_t)rnd();
		}
		break;
	}
	case VFIO_USER_REGION_WRITE_MULTI: {
		uint64_t cnt = 1 + below(4);
		memcpy(b, &cnt, 8);
		len = 8;
		for (uint64_t i = 0; i < cnt; i++) {
			struct vfio_user_write_multi_entry e = { 4 * below(12), below(2) ? 0 : 7, 4, { 0 } };
			uint64_t d = rnd();
			memcpy(e.data, &d, 8);
			memcpy(b + len, &e, sizeof(e));
			len += sizeof(e);
		}
		break;
	}
	case VFIO_USER_DEVICE_FEATURE: {
		uint32_t f[2] = { 8, VFIO_DEVICE_FEATURE_PROBE | below(9) };
		memcpy(b, f, 8);
		len = 8;
		break;
	}
	default:
		len = below(32);
		for (size_t i = 0; i < len; i++)
			b[i] = (uint8_t)rnd();
		break;
	}
	return put_msg(out, cap, id, cmd, below(8) ? 0 : VFIO_USER_F_NO_REPLY, b, len);
}

/* Damage a message in place; may change its length (returned). */
static size_t mutate(uint8_t *m, size_t len, size_t cap)
{
	unsigned rounds = 1 + below(4);

	for (unsigned r = 0; r < rounds && len; r++) {
		switch (below(8)) {
		case 0: /* bit flip */
			m[below((uint32_t)len)] ^= (uint8_t)(1u << below(8));
			break;
		case 1: /* random byte */
			m[below((uint32_t)len)] = (uint8_t)rnd();
			break;
		case 2: { /* interesting 32-bit value at a 4-aligned place in the payload */
			uint32_t v = (uint32_t)interesting();
			size_t off = len > 20 ? 16 + 4 * below((uint32_t)(len - 20) / 4 + 1) : 0;
			if (off + 4 <= len)
				memcpy(m + off, &v, 4);
			break;
		}
		case 3: { /* interesting 64-bit value */
			uint64_t v = interesting();
			size_t off = len > 24 ? 16 + 8 * below((uint32_t)(len - 24) / 8 + 1) : 0;
			if (off + 8 <= len)
				memcpy(m + off, &v, 8);
			break;
		}
		case 4: { /* lie about the size */
			uint32_t sz = below(2) ? (uint32_t)interesting() : (uint32_t)(len + below(9) - 4);
			if (len >= 8)
				memcpy(m + 4, &sz, 4);
			break;
		}
		case 5: /* truncate */
			len = below((uint32_t)len + 1);
			break;
		case 6: /* grow with junk, keeping the header honest */
			if (len + 64 <= cap) {
				uint32_t add = below(64), sz;
				for (uint32_t i = 0; i < add; i++)
					m[len + i] = (uint8_t)rnd();
				len += add;
				if (len >= 8) {
					sz = (uint32_t)len;
					memcpy(m + 4, &sz, 4);
				}
			}
			break;
		default: { /* another command or flags */
			uint16_t cmd = (uint16_t)below(24);
			if (len >= 4)
				memcpy(m + 2, &cmd, 2);
			if (len >= 12 && below(2))
				m[8] = (uint8_t)(1u << below(8));
			break;
		}
		}
	}
	return len;
}

/* Where a crash is reported: stderr is silenced during the run (logs). */
static int saved_stderr = -1;
static uint64_t cur_iter, cur_seed;
static const uint8_t *cur_input;
static size_t cur_len;

static void on_crash(int sig)
{
	char msg[160];
	int n, fd;

	if (saved_stderr >= 0)
		dup2(saved_stderr, 2);
	fd = open("fuzz-vfu-crash.bin", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, cur_input, cur_len) < 0)
			n = 0;
		close(fd);
	}
	n = snprintf(msg, sizeof(msg),
		     "fuzz-vfu-msg: signal %d on input %llu (seed 0x%llx), saved to "
		     "fuzz-vfu-crash.bin; rerun with --seed 0x%llx --verbose\n",
		     sig, (unsigned long long)cur_iter, (unsigned long long)cur_seed,
		     (unsigned long long)cur_seed);
	if (write(2, msg, (size_t)n) < 0)
		n = 0;
	signal(sig, SIG_DFL);
	raise(sig);
}

int main(int argc, char **argv)
{
	bool verbose = false;
	static uint8_t stream[1 << 16];
	double seconds = 30;
	uint64_t seed = 0x9e3779b97f4a7c15ull, iters = 0;
	struct timespec t0, t;

	if (fuzz_args(argc, argv, &seconds, &seed, &verbose) < 0)
		return 2;
	init_once();
	umdev_log_set_level(UMDEV_LOG_ERR);
	cur_seed = seed;
	if (verbose)
		umdev_log_set_level(UMDEV_LOG_DEBUG);
	if (!verbose) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		saved_stderr = dup(2);
		if (null >= 0) {
			dup2(null, 2);
			close(null);
		}
	}
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	signal(SIGABRT, on_crash);
	signal(SIGFPE, on_crash);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		size_t len = 0;
		unsigned nmsg = 1 + below(12);

		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds)
			break;
		/* Byte 0 of the input decides the VERSION prefix; keep it mostly on. */
		stream[len++] = below(8) ? 1 : 0;
		if (below(2)) {
			/* Turn on memory decoding and bus mastering so BAR handlers run. */
			struct {
				struct {
					uint64_t offset;
					uint32_t region;
					uint32_t count;
				} __attribute__((packed)) a; /* vfio_user_region_access without its data[] */
				uint16_t cmd;
			} __attribute__((packed)) en = { { UMDEV_PCI_COMMAND,
							   VFIO_PCI_CONFIG_REGION_INDEX, 2 },
							 UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER };

			len += put_msg(stream + len, sizeof(stream) - len, 99, VFIO_USER_REGION_WRITE, 0,
				       &en, sizeof(en));
		}
		for (unsigned i = 0; i < nmsg && len < sizeof(stream) - 2048; i++) {
			size_t n = seed_msg(stream + len, sizeof(stream) - len - 1024, (uint16_t)i);

			if (below(3) == 0)
				n = mutate(stream + len, n, sizeof(stream) - len - 1024);
			len += n;
		}
		if (below(16) == 0) /* raw noise now and then */
			for (unsigned i = 0; i < 64 && len < sizeof(stream); i++)
				stream[len++] = (uint8_t)rnd();
		cur_input = stream;
		cur_len = len;
		cur_iter = iters;
		LLVMFuzzerTestOneInput(stream, len);
		iters++;
	}
	umdev_vfu_server_free(srv);
	umdev_sample_free(dev);
	if (saved_stderr >= 0)
		dup2(saved_stderr, 2);
	printf("fuzz-vfu-msg: %llu inputs in %.0f s, seed 0x%llx, no crash\n",
	       (unsigned long long)iters, seconds, (unsigned long long)seed);
	return 0;
}

#endif
