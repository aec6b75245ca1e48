/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vhost-user fuzz target (fuzz_vu_msg.c) and its built-in driver
 * (fuzz_vu_gen.c): the input format they share, and what the driver needs of
 * the target. The format is described at the top of fuzz_vu_msg.c.
 */
#ifndef UMDEV_FUZZ_VU_H
#define UMDEV_FUZZ_VU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/proto/vhost_user.h"

/* One input: see fuzz_vu_msg.c. Always returns 0; findings abort. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { OP_POKE = 4, OP_KICK = 5, OP_SYNC = 6, OP_TRUNC = 7, OP_KINDS = 8 };

enum fz_fd_kind {
	FD_MEMFD,
	FD_MEMFD_SEALED, /* F_SEAL_SHRINK | F_SEAL_GROW, as QEMU's guest memory */
	FD_EVENTFD,
	FD_PIPE_R,
	FD_PIPE_W,
	FD_PIPE_FULL, /* write end of a full pipe, left blocking */
	FD_DEVNULL,
	FD_DIR,
	FD_SOCK, /* one end of another socketpair */
	FD_REUSE, /* an fd sent before (arg % count) */
	FD_KINDS
};

#define MAX_SEND_FDS (VHOST_USER_MAX_FDS + 2)
#define MAX_ENTRIES 64
#define MAX_MEMFD_SIZE (4u << 20)

struct fz_vu_totals {
	uint64_t inputs, steps, requests, broken; /* requests completed, rings broken */
};
extern struct fz_vu_totals fz_vu_totals;

/*
 * Built-in driver only: logs go away unless @verbose (then every step is
 * traced on stderr too); crashes and the SIGALRM watchdog save the running
 * input to @crash_file and say how to rerun it.
 */
void fz_vu_driver_start(bool verbose, const char *crash_file);
/* The input about to run: input @iter of @seed, or a replayed file (!@generated). */
void fz_vu_driver_input(bool generated, uint64_t seed, uint64_t iter);

#endif
