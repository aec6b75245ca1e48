/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test harness for the SCSI target: a target with ram LUs, one channel on a
 * loop that never runs (ram backends complete inline), and a helper that
 * runs one CDB with data-out and data-in buffers and checks done() ran once.
 */
#ifndef TESTS_SCSI_HARNESS_H
#define TESTS_SCSI_HARNESS_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "umdev/proto/scsi.h"
#include "umdev/scsi.h"

struct env {
	umdev_loop *loop;
	umdev_scsi_target *t;
	umdev_scsi_chan *ch;
};

struct res {
	uint8_t status;
	bool overrun;
	uint32_t sense_len;
	uint8_t sense[UMDEV_SCSI_SENSE_MAX];
	uint64_t in_xfer, out_xfer;
};

static unsigned done_calls;

static void on_done(struct umdev_scsi_cmd *cmd)
{
	(void)cmd;
	done_calls++;
}

static inline void env_add(struct env *e, unsigned t, unsigned l, const char *spec, bool ro)
{
	struct umdev_scsi_lu_opts o = { .backend = spec, .readonly = ro };
	char msg[128];

	assert_int_equal(umdev_scsi_lu_add(e->t, t, l, &o, msg, sizeof(msg)), 0);
}

static inline void env_init(struct env *e)
{
	int err = 0;

	e->loop = umdev_loop_new("scsi-test", 0, &err);
	assert_non_null(e->loop);
	e->t = umdev_scsi_target_new("tgt", &err);
	assert_non_null(e->t);
	e->ch = umdev_scsi_chan_new(e->t, e->loop, &err);
	assert_non_null(e->ch);
}

static inline void env_fini(struct env *e)
{
	umdev_scsi_chan_free(e->ch);
	umdev_scsi_target_free(e->t);
	umdev_loop_free(e->loop);
}

/* Run @cdb against @t:@l; @out/@in may be NULL. Returns the status byte. */
static inline uint8_t run(struct env *e, unsigned t, unsigned l, const uint8_t *cdb,
			  unsigned cdb_len, const void *out, size_t out_len, void *in,
			  size_t in_len, struct res *r)
{
	struct umdev_scsi_cmd cmd;
	struct iovec oiov = { (void *)out, out_len }, iiov = { in, in_len };
	struct iovec scratch[4];

	memset(&cmd, 0, sizeof(cmd));
	cmd.target = t;
	cmd.lun = l;
	cmd.cdb = cdb;
	cmd.cdb_len = cdb_len;
	cmd.out_iov = &oiov;
	cmd.out_cnt = out ? 1 : 0;
	cmd.in_iov = &iiov;
	cmd.in_cnt = in ? 1 : 0;
	cmd.scratch = scratch;
	cmd.scratch_max = 4;
	cmd.done = on_done;
	done_calls = 0;
	umdev_scsi_submit(e->ch, &cmd);
	assert_int_equal(done_calls, 1);
	assert_int_equal(umdev_scsi_chan_inflight(e->ch), 0);
	if (r) {
		r->status = cmd.status;
		r->overrun = cmd.overrun;
		r->sense_len = cmd.sense_len;
		memcpy(r->sense, cmd.sense, sizeof(r->sense));
		r->in_xfer = cmd.in_xfer;
		r->out_xfer = cmd.out_xfer;
	}
	return cmd.status;
}

/* Sense key and ASC/ASCQ out of fixed or descriptor sense. */
static inline void sense_of(const struct res *r, uint8_t *sk, uint16_t *asc)
{
	if (r->sense[0] == SCSI_SENSE_DESC) {
		*sk = r->sense[1] & 0xf;
		*asc = (uint16_t)(r->sense[2] << 8 | r->sense[3]);
	} else {
		*sk = r->sense[2] & 0xf;
		*asc = (uint16_t)(r->sense[12] << 8 | r->sense[13]);
	}
}

#define assert_check(r, want_sk, want_asc)                                          \
	do {                                                                        \
		uint8_t sk_;                                                        \
		uint16_t asc_;                                                      \
		assert_int_equal((r)->status, SCSI_STATUS_CHECK_CONDITION);         \
		sense_of((r), &sk_, &asc_);                                         \
		assert_int_equal(sk_, (want_sk));                                   \
		assert_int_equal(asc_, (want_asc));                                 \
	} while (0)

/* Consume the power-on attention a fresh LU reports. */
static inline void clear_ua(struct env *e, unsigned t, unsigned l)
{
	static const uint8_t tur[6] = { SCSI_TEST_UNIT_READY };

	for (int i = 0; i < 4 && run(e, t, l, tur, 6, NULL, 0, NULL, 0, NULL); i++)
		;
	assert_int_equal(run(e, t, l, tur, 6, NULL, 0, NULL, 0, NULL), SCSI_STATUS_GOOD);
}

#endif
