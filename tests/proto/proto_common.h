/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared pieces of the protocol tests: starting a real server (umdevd or
 * qemu-storage-daemon) in a private temporary directory, and virtio-blk
 * checks that hold for any correct vhost-user-blk back-end. The checks use
 * cmocka asserts, so call them from inside a test.
 */
#ifndef UMDEV_TESTS_PROTO_COMMON_H
#define UMDEV_TESTS_PROTO_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/proc_util.h"
#include "client/vhost_user_client.h"

struct proto_srv {
	struct umdev_proc proc;
	char dir[128];
	char sock[192];
	char sock2[192]; /* a second device's socket, when started with two */
	char log[192];
	char disk[192]; /* backing file, when the test uses one */
};

/* Timeout for any single I/O in the tests. */
#define PROTO_IO_TIMEOUT_MS 5000

/**
 * proto_srv_init() - make the temp dir and fill in the paths; creates a
 * sparse backing file of @disk_bytes at s->disk when @disk_bytes != 0.
 */
void proto_srv_init(struct proto_srv *s, uint64_t disk_bytes);

/**
 * proto_start_umdevd() - run umdevd (path from $UMDEVD) with the given
 * extra args; "@SOCK@", "@SOCK2@" and "@DISK@" inside an arg are replaced
 * by the paths. NULL-terminated. Waits for s->sock (and s->sock2 if any
 * arg mentions it). Asserts on failure.
 */
void proto_start_umdevd(struct proto_srv *s, ...);

/** proto_start_qsd() - run qemu-storage-daemon ($QSD), same conventions. */
void proto_start_qsd(struct proto_srv *s, ...);

/**
 * proto_drain_calls() - a back-end signals each new call fd once (so a
 * completion raced with the fd change is never lost); tests that count
 * interrupts exactly drain that signal after start. A round trip first
 * orders it before the drain.
 */
void proto_drain_calls(struct umdev_vuc *c, unsigned nq);

/** proto_stop() - stop the server, print its log if @dump, remove the dir. */
void proto_stop(struct proto_srv *s, bool dump);
/**
 * proto_stop_alive() - was the server still alive? Stop it either way, with
 * its log printed if it had died (a daemon that died under a test is a
 * failure worth seeing). For teardown: assert_true(proto_stop_alive(&srv)).
 */
bool proto_stop_alive(struct proto_srv *s);

/** proto_connect_blk() - connect and umdev_vuc_start_blk(); asserts. */
void proto_connect_blk(struct umdev_vuc *c, const char *sock, unsigned nq, uint16_t qsize,
		       unsigned nregions, uint64_t region_size);

/** proto_fill() / proto_check() - a recognisable pattern per (seed, offset). */
void proto_fill(void *p, size_t len, uint64_t seed);
bool proto_check(const void *p, size_t len, uint64_t seed);

/**
 * proto_rw() - one request with @nseg data segments of @seg_bytes each,
 * allocated in @region (or straddling regions 0/1 when @region < 0).
 * Returns the status byte.
 */
int proto_rw(struct umdev_vuc *c, unsigned q, uint32_t type, uint64_t sector, uint64_t data_gpa,
	     uint32_t bytes, unsigned nseg);

/**
 * proto_dwz() - one DISCARD or WRITE_ZEROES request on queue 0 with a single
 * segment (@n sectors at @sector, @flags). Returns the status byte.
 */
int proto_dwz(struct umdev_vuc *c, uint32_t type, uint64_t sector, uint32_t n, uint32_t flags);

/* Reusable checks (cmocka asserts). */
void proto_check_roundtrip_all_queues(struct umdev_vuc *c, unsigned nq);
void proto_check_multiseg(struct umdev_vuc *c);
void proto_check_cross_region(struct umdev_vuc *c);
void proto_check_qd(struct umdev_vuc *c, unsigned q, unsigned depth);

#endif
