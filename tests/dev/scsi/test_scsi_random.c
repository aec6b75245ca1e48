/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SCSI target against hostile CDBs: many random commands (random bytes,
 * with the opcode drawn from the ones we implement half of the time) with
 * random data-out/data-in sizes split over several iovecs. Every command
 * must complete exactly once, with sense that fits, transfers that fit the
 * buffers, and never a write outside them (guard bytes) - run under ASan
 * in CI for out-of-range accesses.
 */
#include "scsi_harness.h"

#define ROUNDS 100000
#define BUF 8192
#define GUARD 64

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static const uint8_t ops[] = {
	SCSI_TEST_UNIT_READY, SCSI_REQUEST_SENSE, SCSI_READ_6, SCSI_WRITE_6, SCSI_INQUIRY,
	SCSI_MODE_SELECT_6, SCSI_MODE_SENSE_6, SCSI_START_STOP_UNIT, SCSI_READ_CAPACITY_10,
	SCSI_READ_10, SCSI_WRITE_10, SCSI_VERIFY_10, SCSI_SYNCHRONIZE_CACHE_10,
	SCSI_WRITE_SAME_10, SCSI_UNMAP, SCSI_MODE_SELECT_10, SCSI_MODE_SENSE_10, SCSI_READ_16,
	SCSI_WRITE_16, SCSI_VERIFY_16, SCSI_SYNCHRONIZE_CACHE_16, SCSI_WRITE_SAME_16,
	SCSI_SERVICE_ACTION_IN_16, SCSI_REPORT_LUNS, SCSI_MAINTENANCE_IN, SCSI_READ_12,
	SCSI_WRITE_12,
};

static void test_random_cdbs(void **state)
{
	struct env e;
	static uint8_t out[BUF + GUARD], in[BUF + GUARD];
	uint64_t seed = 0x243f6a8885a308d3ull;

	env_init(&e);
	env_add(&e, 0, 0, "ram:256K", false);
	env_add(&e, 0, 1, "ram:64K", true);
	for (unsigned round = 0; round < ROUNDS; round++) {
		struct umdev_scsi_cmd cmd;
		struct iovec oiov[3], iiov[3], scratch[4];
		uint8_t cdb[32];
		size_t olen = rnd(&seed) % (BUF + 1), ilen = rnd(&seed) % (BUF + 1);
		size_t ocut = olen ? rnd(&seed) % olen : 0, icut = ilen ? rnd(&seed) % ilen : 0;
		unsigned cdb_len = 6 + rnd(&seed) % 27;

		for (unsigned i = 0; i < sizeof(cdb); i++)
			cdb[i] = (uint8_t)rnd(&seed);
		if (rnd(&seed) & 1)
			cdb[0] = ops[rnd(&seed) % sizeof(ops)];
		/* Small lengths and LBAs now and then, so commands get past the checks. */
		if (rnd(&seed) & 1) {
			memset(cdb + 2, 0, 8);
			cdb[4] = (uint8_t)(rnd(&seed) % 8);
			cdb[8] = (uint8_t)(rnd(&seed) % 8);
			cdb[13] = (uint8_t)(rnd(&seed) % 8);
			cdb[10] = cdb[11] = cdb[12] = 0;
		}
		for (unsigned i = 0; i < olen; i++)
			out[i] = (uint8_t)rnd(&seed);
		memset(in, 0xe7, sizeof(in));
		memset(out + olen, 0xd1, GUARD);
		oiov[0] = (struct iovec){ out, ocut };
		oiov[1] = (struct iovec){ out + ocut, olen - ocut };
		iiov[0] = (struct iovec){ in, icut };
		iiov[1] = (struct iovec){ in + icut, ilen - icut };

		memset(&cmd, 0, sizeof(cmd));
		cmd.target = 0;
		cmd.lun = (uint16_t)(rnd(&seed) % 3);
		cmd.tag = round;
		cmd.cdb = cdb;
		cmd.cdb_len = cdb_len;
		cmd.out_iov = oiov;
		cmd.out_cnt = 2;
		cmd.in_iov = iiov;
		cmd.in_cnt = 2;
		cmd.scratch = scratch;
		cmd.scratch_max = 4;
		cmd.done = on_done;
		done_calls = 0;
		umdev_scsi_submit(e.ch, &cmd);
		assert_int_equal(done_calls, 1);
		assert_int_equal(umdev_scsi_chan_inflight(e.ch), 0);
		assert_true(cmd.sense_len <= UMDEV_SCSI_SENSE_MAX);
		assert_true(cmd.in_xfer <= ilen);
		assert_true(cmd.out_xfer <= olen);
		if (cmd.status == SCSI_STATUS_GOOD)
			assert_int_equal(cmd.sense_len, 0);
		else
			assert_true(cmd.sense_len >= 8);
		for (unsigned i = 0; i < GUARD; i++) {
			assert_int_equal(in[ilen + i], 0xe7);
			assert_int_equal(out[olen + i], 0xd1);
		}
		/* Bytes past what the target says it wrote are untouched. */
		if (cmd.in_xfer < ilen)
			assert_int_equal(in[ilen - 1], 0xe7);
	}
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_cdbs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
