/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-scsi controlq against umdevd: every task management function on
 * commands really in flight (a WRITE SAME over 2 GiB of a file LUN runs as
 * a long series of backend writes), answered FUNCTION_COMPLETE, SUCCEEDED
 * or REJECTED as SAM says, with aborted commands returned before the TMF;
 * the LUN reset's event and unit attention; AN query and subscribe. Over
 * vhost-user, or virtio-pci on vfio-user (scsi_common.h).
 */
#include "scsi_common.h"

#define DISK (2ull << 30)
#define WS_BLOCKS (1u << 22) /* the whole 2 GiB: far longer than a TMF takes */

static int setup(void **state)
{
	scsi_start_disk("lun=0:0:file:@DISK@,lun=0:1:ram:1M,lun=1:0:ram:1M", 2, DISK);
	return 0;
}

static int teardown(void **state)
{
	scsi_stop();
	return 0;
}

struct tmf {
	struct umdev_vscsi_chain ch;
	struct virtio_scsi_ctrl_tmf_req req;
};

static void tmf_post(struct umdev_vscsi_drv *d, struct tmf *t, uint32_t subtype, unsigned target,
		     unsigned lun, uint64_t id)
{
	memset(t, 0, sizeof(*t));
	t->req.type = VIRTIO_SCSI_T_TMF;
	t->req.subtype = subtype;
	umdev_vscsi_lun(t->req.lun, target, lun);
	t->req.id = id;
	t->ch.out = &t->req;
	t->ch.out_len = sizeof(t->req);
	t->ch.in_len = 1;
	assert_int_equal(umdev_vscsi_post(d, VIRTIO_SCSI_CTRLQ, &t->ch, false), 0);
}

static uint8_t tmf_wait(struct umdev_vscsi_drv *d, struct tmf *t)
{
	assert_int_equal(umdev_vscsi_wait(d, VIRTIO_SCSI_CTRLQ, &t->ch, 10000), 0);
	assert_int_equal(t->ch.used_len, 1);
	return t->ch.in[0];
}

static uint8_t tmf(struct umdev_vscsi_drv *d, uint32_t subtype, unsigned target, unsigned lun,
		   uint64_t id)
{
	struct tmf t;

	tmf_post(d, &t, subtype, target, lun, id);
	return tmf_wait(d, &t);
}

/* Start a long WRITE SAME with a pattern on @q as task @tag; check it is running. */
static void start_long(struct umdev_vscsi_drv *d, unsigned q, unsigned target, unsigned lun,
		       uint64_t tag, struct umdev_vscsi_cmd *cmd, uint32_t blocks)
{
	uint8_t cdb[16] = { SCSI_WRITE_SAME_16 }, pattern[512];

	memset(pattern, 0x5a, sizeof(pattern));
	cdb[10] = blocks >> 24;
	cdb[11] = blocks >> 16;
	cdb[12] = blocks >> 8;
	cdb[13] = blocks;
	assert_int_equal(umdev_vscsi_cmd_init(cmd, target, lun, tag, cdb, 16, pattern,
					      sizeof(pattern), 0, 0, 0), 0);
	assert_int_equal(umdev_vscsi_post(d, q, &cmd->chain, false), 0);
	usleep(30000);
	assert_int_equal(umdev_vscsi_reap(d, q, 0), 0);
	assert_false(cmd->chain.done);
}


/* The command was returned ABORTED, and before the TMF answered (no wait needed). */
static void assert_aborted_first(struct umdev_vscsi_drv *d, unsigned q, struct umdev_vscsi_cmd *c)
{
	struct umdev_vscsi_cmd_res res;

	assert_true(umdev_vscsi_reap(d, q, 0) >= 0);
	assert_true(c->chain.done);
	umdev_vscsi_cmd_result(c, &res);
	assert_int_equal(res.resp.response, VIRTIO_SCSI_S_ABORTED);
}

static void connect(struct umdev_vscsi_drv *d, struct umdev_vba *b)
{
	scsi_open(d, b, 2, 0);
	drain_ua(d, 0, 0);
	drain_ua(d, 0, 1);
	drain_ua(d, 1, 0);
}

static void test_abort_task(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vba b;
	struct umdev_vscsi_cmd ws = { 0 };

	connect(&d, &b);
	start_long(&d, Q0, 0, 0, 77, &ws, WS_BLOCKS);
	/* Querying it: it exists; another tag does not. */
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0, 77),
			 VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0, 78),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, 1, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	/* Aborting another tag leaves it running. */
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 0, 78),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(umdev_vscsi_reap(&d, Q0, 0), 0);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 0, 77),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_aborted_first(&d, Q0, &ws);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 0, 77),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	umdev_vscsi_cmd_fini(&ws);
	umdev_vba_close(&b);
}

static void test_task_sets_across_queues(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vba vb;
	struct umdev_vscsi_cmd a = { 0 }, b = { 0 };

	connect(&d, &vb);
	/* One command on each request queue; ABORT TASK SET catches both. */
	start_long(&d, Q0, 0, 0, 1, &a, WS_BLOCKS / 2);
	start_long(&d, Q0 + 1, 0, 0, 2, &b, WS_BLOCKS / 2);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_ABORT_TASK_SET, 0, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_aborted_first(&d, Q0, &a);
	assert_aborted_first(&d, Q0 + 1, &b);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	/* CLEAR TASK SET likewise. */
	start_long(&d, Q0 + 1, 0, 0, 3, &a, WS_BLOCKS);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET, 0, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_aborted_first(&d, Q0 + 1, &a);
	umdev_vscsi_cmd_fini(&a);
	umdev_vscsi_cmd_fini(&b);
	umdev_vba_close(&vb);
}

static void test_resets(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vba b;
	struct umdev_vscsi_cmd ws = { 0 }, cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	struct umdev_vscsi_chain ev[4];
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY };
	struct virtio_scsi_event e;
	bool got = false;

	connect(&d, &b);
	for (unsigned i = 0; i < 4; i++) {
		ev[i] = (struct umdev_vscsi_chain){ .in_len = sizeof(e) };
		assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_EVENTQ, &ev[i], false), 0);
	}
	/* LOGICAL UNIT RESET: in-flight command aborted, RESET_HARD event, 29/00. */
	start_long(&d, Q0, 0, 0, 5, &ws, WS_BLOCKS);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_aborted_first(&d, Q0, &ws);
	for (int tries = 0; tries < 50 && !got; tries++) {
		assert_true(umdev_vscsi_reap(&d, VIRTIO_SCSI_EVENTQ, 100) >= 0);
		for (unsigned i = 0; i < 4; i++) {
			if (!ev[i].done)
				continue;
			memcpy(&e, ev[i].in, sizeof(e));
			assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_EVENTQ, &ev[i], false), 0);
			if (e.event == VIRTIO_SCSI_T_TRANSPORT_RESET)
				got = true;
			if (got)
				break;
		}
	}
	assert_true(got);
	assert_int_equal(e.reason, VIRTIO_SCSI_EVT_RESET_HARD);
	assert_int_equal(e.lun[1], 0);
	assert_int_equal(e.lun[3], 0);
	assert_int_equal(scsi_cmd(&d, Q0, 0, 0, tur, 6, NULL, 0, 0, &cmd, &res), VIRTIO_SCSI_S_OK);
	assert_int_equal(sense_key(&res), SCSI_SK_UNIT_ATTENTION);
	assert_int_equal(sense_asc(&res), SCSI_ASC_POWER_ON_RESET);
	/* The other LU was not reset. */
	assert_int_equal(scsi_cmd(&d, Q0, 0, 1, tur, 6, NULL, 0, 0, &cmd, &res), VIRTIO_SCSI_S_OK);
	assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);

	/* I_T NEXUS RESET: every LU of target 0, not target 1. */
	start_long(&d, Q0 + 1, 0, 0, 6, &ws, WS_BLOCKS);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET, 0, 1, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_aborted_first(&d, Q0 + 1, &ws);
	assert_int_equal(scsi_cmd(&d, Q0, 0, 1, tur, 6, NULL, 0, 0, &cmd, &res), VIRTIO_SCSI_S_OK);
	assert_int_equal(sense_asc(&res), SCSI_ASC_I_T_NEXUS_LOSS);
	assert_int_equal(scsi_cmd(&d, Q0, 1, 0, tur, 6, NULL, 0, 0, &cmd, &res), VIRTIO_SCSI_S_OK);
	assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
	umdev_vscsi_cmd_fini(&ws);
	umdev_vscsi_cmd_fini(&cmd);
	umdev_vba_close(&b);
}

static void test_tmf_answers(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vba b;

	connect(&d, &b);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_CLEAR_ACA, 0, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_REJECTED);
	assert_int_equal(tmf(&d, 99, 0, 0, 0), VIRTIO_SCSI_S_FUNCTION_REJECTED);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_ABORT_TASK, 5, 0, 1), VIRTIO_SCSI_S_BAD_TARGET);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 9, 0),
			 VIRTIO_SCSI_S_INCORRECT_LUN);
	/* Nothing in flight: the functions complete at once. */
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_ABORT_TASK_SET, 1, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(tmf(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 1, 0, 0),
			 VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	/* A controlq request too short for its type is returned untouched. */
	{
		struct umdev_vscsi_chain ch = { 0 };
		uint32_t type = VIRTIO_SCSI_T_TMF;

		ch.out = &type;
		ch.out_len = 4;
		ch.in_len = 1;
		assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_CTRLQ, &ch, false), 0);
		assert_int_equal(umdev_vscsi_wait(&d, VIRTIO_SCSI_CTRLQ, &ch, 3000), 0);
		assert_int_equal(ch.used_len, 0);
	}
	umdev_vba_close(&b);
}

static void test_async_notification(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vba b;

	connect(&d, &b);
	for (uint32_t type = VIRTIO_SCSI_T_AN_QUERY; type <= VIRTIO_SCSI_T_AN_SUBSCRIBE; type++) {
		struct virtio_scsi_ctrl_an_req req = { .type = type, .event_requested = 0x7e };
		struct virtio_scsi_ctrl_an_resp resp;
		struct umdev_vscsi_chain ch = { .out = &req, .out_len = sizeof(req),
						.in_len = sizeof(resp) };

		umdev_vscsi_lun(req.lun, 0, 0);
		assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_CTRLQ, &ch, false), 0);
		assert_int_equal(umdev_vscsi_wait(&d, VIRTIO_SCSI_CTRLQ, &ch, 3000), 0);
		assert_int_equal(ch.used_len, sizeof(resp));
		memcpy(&resp, ch.in, sizeof(resp));
		assert_int_equal(resp.response, VIRTIO_SCSI_S_OK);
		assert_int_equal(resp.event_actual, 0); /* no event class is supported */
		/* Unknown target, unknown LUN. */
		umdev_vscsi_lun(req.lun, 8, 0);
		assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_CTRLQ, &ch, false), 0);
		assert_int_equal(umdev_vscsi_wait(&d, VIRTIO_SCSI_CTRLQ, &ch, 3000), 0);
		assert_int_equal(ch.in[4], VIRTIO_SCSI_S_BAD_TARGET);
		umdev_vscsi_lun(req.lun, 0, 44);
		assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_CTRLQ, &ch, false), 0);
		assert_int_equal(umdev_vscsi_wait(&d, VIRTIO_SCSI_CTRLQ, &ch, 3000), 0);
		assert_int_equal(ch.in[4], VIRTIO_SCSI_S_INCORRECT_LUN);
	}
	umdev_vba_close(&b);
}

/* Hot-removing a LUN stops its commands in flight; they come back ABORTED. */
static void test_remove_in_flight(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vba b;
	struct umdev_vscsi_cmd ws = { 0 }, cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY };

	connect(&d, &b);
	start_long(&d, Q0, 0, 0, 9, &ws, WS_BLOCKS);
	assert_int_equal(ctl("lun-remove scsi0 0:0"), 0);
	assert_int_equal(umdev_vscsi_wait(&d, Q0, &ws.chain, 5000), 0);
	umdev_vscsi_cmd_result(&ws, &res);
	assert_int_equal(res.resp.response, VIRTIO_SCSI_S_ABORTED);
	assert_int_equal(scsi_cmd(&d, Q0, 0, 0, tur, 6, NULL, 0, 0, &cmd, &res), VIRTIO_SCSI_S_OK);
	assert_int_equal(sense_asc(&res), SCSI_ASC_LUN_NOT_SUPPORTED);
	umdev_vscsi_cmd_fini(&ws);
	umdev_vscsi_cmd_fini(&cmd);
	umdev_vba_close(&b);
}

int main(void)
{
	scsi_transport_from_env();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_abort_task, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_sets_across_queues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmf_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_notification, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_in_flight, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
