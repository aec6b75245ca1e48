/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SCSI target layer: disk logical units over umdev block backends,
 * independent of the transport that carries CDBs (virtio-scsi today; a
 * vfio-user or iSCSI-like transport could use it unchanged).
 *
 * Concepts
 * - A umdev_scsi_target is the set of addressable units behind one host
 *   adapter: target ids 0..255, each with LUNs 0..16383. A target id
 *   "exists" while it has at least one LU. Logical units (umdev_scsi_lu)
 *   are added and detached at runtime by the control thread.
 * - A umdev_scsi_chan is one data-plane channel (one per transport queue):
 *   it lives on one loop and holds that loop's backend queues, so commands
 *   take no locks. Commands are submitted and complete on the channel's
 *   loop thread.
 * - A umdev_scsi_cmd is allocated by the transport (usually embedded in its
 *   request), filled with the addressing, CDB and data buffers, and
 *   submitted; done() runs on the channel's loop, possibly before
 *   umdev_scsi_submit() returns. Data moves straight between the backend
 *   and the caller's iovecs.
 * - Errors are SCSI answers, never crashes: a bad CDB field, an LBA beyond
 *   the capacity or a transfer longer than the buffers gives CHECK
 *   CONDITION with sense data, fixed format unless the LU's control mode
 *   page has D_SENSE set (then descriptor format).
 * - Unit attentions (power on/reset 29/00, I_T nexus loss 29/07, reported
 *   LUNs changed 3F/0E) are kept per LU and reported by the next command
 *   other than INQUIRY, REPORT LUNS and REQUEST SENSE (which returns them).
 * - Removing an LU: umdev_scsi_lu_detach() unlinks it (new commands answer
 *   LOGICAL UNIT NOT SUPPORTED); the transport then makes every loop pass a
 *   barrier, waits for umdev_scsi_lu_inflight() to reach 0, calls
 *   umdev_scsi_chan_forget() on each channel's loop and frees the LU.
 */
#ifndef UMDEV_SCSI_H
#define UMDEV_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "umdev/backend.h"
#include "umdev/loop.h"

#define UMDEV_SCSI_MAX_TARGET 255
#define UMDEV_SCSI_MAX_LUN 16383
/* Logical units one umdev_scsi_target holds at a time, all targets together. */
#define UMDEV_SCSI_MAX_LUS 256
/* Largest sense data the target produces. */
#define UMDEV_SCSI_SENSE_MAX 32

typedef struct umdev_scsi_target umdev_scsi_target;
typedef struct umdev_scsi_lu umdev_scsi_lu;
typedef struct umdev_scsi_chan umdev_scsi_chan;

struct umdev_scsi_lu_opts {
	const char *backend; /* "file:PATH", "ram:SIZE", "null:SIZE" */
	bool readonly;
	const char *serial; /* VPD 0x80; NULL: derived from the target name and address */
	/*
	 * Where a resize of the backend (rbd) is handled: the LU's capacity
	 * changes and a CAPACITY DATA HAS CHANGED unit attention is raised. The
	 * LU must be freed on this loop's thread or with the loop stopped.
	 * NULL: the capacity stays as it was at creation.
	 */
	umdev_loop *notify_loop;
};

struct umdev_scsi_cmd {
	/* Filled by the caller before umdev_scsi_submit(). */
	uint8_t target;
	uint16_t lun;
	uint64_t tag; /* transport's command id, for task management */
	const uint8_t *cdb;
	uint32_t cdb_len;
	const struct iovec *out_iov; /* data from the initiator (data-out) */
	unsigned out_cnt;
	const struct iovec *in_iov; /* data to the initiator (data-in) */
	unsigned in_cnt;
	struct iovec *scratch; /* >= max(out_cnt, in_cnt) + 1 entries, for slicing */
	unsigned scratch_max;
	void (*done)(struct umdev_scsi_cmd *cmd);
	/*
	 * Set by the transport on the channel's loop (task management): a
	 * command with backend I/O still running completes when that I/O does,
	 * but starts no further stage. The transport decides what to answer.
	 */
	bool aborted;

	/* Results, valid in done(). */
	uint8_t status; /* SCSI status byte */
	bool overrun; /* the CDB asked for more data than the buffers hold */
	uint32_t sense_len;
	uint8_t sense[UMDEV_SCSI_SENSE_MAX];
	uint64_t in_xfer; /* bytes written to in_iov */
	uint64_t out_xfer; /* bytes consumed from out_iov */

	/* Private to the target layer. */
	struct {
		struct umdev_bdev_io io;
		umdev_scsi_lu *lu;
		umdev_scsi_chan *chan;
		struct umdev_scsi_cmd *prev, *next; /* channel's in-flight list */
		uint64_t lba, nblocks, done_blocks; /* multi-stage commands */
		uint8_t *bounce;
		size_t bounce_len;
		uint64_t chunk; /* blocks of the current stage */
		uint32_t stage;
		int res; /* result of the last stage */
		bool fua;
		bool running, again; /* stage trampoline: inline completions do not recurse */
	} p;
};

/**
 * umdev_scsi_target_new() - an empty target set. @name (copied) appears in
 * logs and in derived serial numbers and identifiers. Control thread; free
 * with umdev_scsi_target_free() once no channel remains.
 */
umdev_scsi_target *umdev_scsi_target_new(const char *name, int *err)
	__attribute__((warn_unused_result));
/** umdev_scsi_target_free() - free the set and every LU still attached. */
void umdev_scsi_target_free(umdev_scsi_target *t);

/**
 * umdev_scsi_lu_add() - open @o->backend and attach it as @target:@lun.
 * -EEXIST if that address is taken, -ENOSPC when the set is full, -EINVAL
 * for an address out of range, backend errors as they come. @msg says why.
 * The other LUs of @target get a REPORTED LUNS DATA HAS CHANGED attention;
 * the new one starts with POWER ON OCCURRED. Control thread.
 */
int umdev_scsi_lu_add(umdev_scsi_target *t, unsigned target, unsigned lun,
		      const struct umdev_scsi_lu_opts *o, char *msg, size_t msglen)
	__attribute__((warn_unused_result));

/**
 * umdev_scsi_lu_detach() - unlink @target:@lun and return it (NULL if there
 * is none); see "Removing an LU" above for what the caller must do before
 * umdev_scsi_lu_free(). Control thread.
 */
umdev_scsi_lu *umdev_scsi_lu_detach(umdev_scsi_target *t, unsigned target, unsigned lun);
/** umdev_scsi_lu_inflight() - commands of @lu not yet completed (any thread). */
unsigned umdev_scsi_lu_inflight(const umdev_scsi_lu *lu);
/** umdev_scsi_lu_free() - close the backend; @lu must be detached and idle. */
void umdev_scsi_lu_free(umdev_scsi_lu *lu);

/** umdev_scsi_target_exists() - @target has at least one LU (any thread). */
bool umdev_scsi_target_exists(const umdev_scsi_target *t, unsigned target);
/** umdev_scsi_lu_exists() - @target:@lun is attached (any thread). */
bool umdev_scsi_lu_exists(const umdev_scsi_target *t, unsigned target, unsigned lun);

struct umdev_scsi_lu_info {
	unsigned target, lun;
	const char *backend; /* spec it was opened with; valid while the LU is attached */
	bool readonly;
	uint64_t size; /* bytes */
	uint32_t block_size;
};

/**
 * umdev_scsi_lu_info() - describe LU slot @i (0..UMDEV_SCSI_MAX_LUS-1), to
 * enumerate the attached LUs. -ENOENT for an empty slot. Control thread.
 */
int umdev_scsi_lu_info(const umdev_scsi_target *t, unsigned i, struct umdev_scsi_lu_info *out)
	__attribute__((warn_unused_result));

enum umdev_scsi_reset {
	UMDEV_SCSI_RESET_LU, /* LOGICAL UNIT RESET: 29/00 attention */
	UMDEV_SCSI_RESET_NEXUS, /* I_T NEXUS RESET: 29/07 attention on every LU of the target */
};

/**
 * umdev_scsi_reset() - the state part of a reset: mode parameters back to
 * their defaults, the unit attention set. Aborting the commands in flight
 * is the transport's job (umdev_scsi_chan_for_each). Any thread.
 */
void umdev_scsi_reset(umdev_scsi_target *t, enum umdev_scsi_reset kind, unsigned target,
		      unsigned lun);

/**
 * umdev_scsi_flush_all() - make every LU's completed writes durable
 * (blocking; control thread). Returns the first error.
 */
int umdev_scsi_flush_all(umdev_scsi_target *t) __attribute__((warn_unused_result));

/** umdev_scsi_chan_new() - a channel for @loop; call on that loop's thread. */
umdev_scsi_chan *umdev_scsi_chan_new(umdev_scsi_target *t, umdev_loop *loop, int *err)
	__attribute__((warn_unused_result));
/** umdev_scsi_chan_free() - no command may be in flight on @ch. Loop thread. */
void umdev_scsi_chan_free(umdev_scsi_chan *ch);
/** umdev_scsi_chan_forget() - drop @ch's state for a detached, idle @lu. Loop thread. */
void umdev_scsi_chan_forget(umdev_scsi_chan *ch, umdev_scsi_lu *lu);
/** umdev_scsi_chan_inflight() - commands in flight on @ch. Loop thread. */
unsigned umdev_scsi_chan_inflight(const umdev_scsi_chan *ch);

/**
 * umdev_scsi_chan_for_each() - call @fn for every command in flight on @ch
 * (loop thread), oldest first. @fn may set cmd->aborted; it must not
 * complete or free the command.
 */
void umdev_scsi_chan_for_each(umdev_scsi_chan *ch, void (*fn)(struct umdev_scsi_cmd *, void *),
			      void *opaque);

/**
 * umdev_scsi_submit() - execute @cmd on @ch (loop thread). cmd->done is
 * always called exactly once, maybe before this returns.
 */
void umdev_scsi_submit(umdev_scsi_chan *ch, struct umdev_scsi_cmd *cmd);

/* Big-endian field helpers for CDBs and parameter data. */
static inline uint16_t umdev_scsi_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t umdev_scsi_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t umdev_scsi_get64(const uint8_t *p)
{
	return (uint64_t)umdev_scsi_get32(p) << 32 | umdev_scsi_get32(p + 4);
}
static inline void umdev_scsi_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}
static inline void umdev_scsi_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}
static inline void umdev_scsi_put64(uint8_t *p, uint64_t v)
{
	umdev_scsi_put32(p, v >> 32);
	umdev_scsi_put32(p + 4, (uint32_t)v);
}

#endif
