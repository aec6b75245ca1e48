/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd's virtio-scsi device over a real vhost-user socket, driven by our
 * userspace virtio-scsi driver: features and config space (writable
 * sense_size/cdb_size, restored on reset), request queues, LUN addressing
 * and BAD_TARGET, residuals, OVERRUN, INOUT, eventq with and without
 * buffers, and LUN hot-plug through umdevctl. The bodies that need no
 * vhost-user message run over virtio-pci on vfio-user too (scsi_common.h).
 */
#include "scsi_common.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../test_wait.h"
#include "umdev/proto/virtio_ring.h"

static int setup(void **state)
{
	scsi_start("lun=0:0:ram:4M,lun=0:1:ram:1M,lun=3:0:null:8M", 2);
	return 0;
}

static int teardown(void **state)
{
	scsi_stop();
	return 0;
}

static void get_cfg(struct umdev_vuc *c, struct virtio_scsi_config *cfg)
{
	memset(cfg, 0xa5, sizeof(*cfg));
	assert_int_equal(umdev_vuc_get_config(c, 0, cfg, sizeof(*cfg)), 0);
}

static int set_cfg(struct umdev_vuc *c, uint32_t off, const void *val, uint32_t len)
{
	struct vhost_user_config cfg = { .offset = off, .size = len };

	memcpy(cfg.payload, val, len);
	return umdev_vuc_request(c, VHOST_USER_SET_CONFIG, &cfg, VHOST_USER_CONFIG_HDR_SIZE + len,
				 NULL, 0);
}

/*
 * What only vhost-user tells: the device's offered features, GET_QUEUE_NUM,
 * and SET_CONFIG refusals answered as errors. test_config_any checks the
 * config space, its writable fields and the reset over both transports.
 */
static void test_features_config(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vuc c;
	struct virtio_scsi_config cfg;
	uint32_t v32 = 48;
	uint64_t nq;

	assert_int_equal(umdev_vscsi_drv_start(&d, &c, srv.sock, 2, 64, 0, REGION), 0);
	assert_true(c.features & (1ull << VIRTIO_SCSI_F_INOUT));
	assert_true(c.features & (1ull << VIRTIO_SCSI_F_HOTPLUG));
	assert_true(c.features & (1ull << VIRTIO_SCSI_F_CHANGE));
	assert_false(c.features & (1ull << VIRTIO_SCSI_F_T10_PI));
	assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_QUEUE_NUM, &nq), 0);
	assert_int_equal(nq, 4);
	/* sense_size and cdb_size are writable; the rest is not. */
	assert_int_equal(set_cfg(&c, offsetof(struct virtio_scsi_config, sense_size), &v32, 4), 0);
	assert_int_not_equal(set_cfg(&c, 0, &v32, 4), 0);
	v32 = 1u << 20; /* absurd: refused */
	assert_int_not_equal(set_cfg(&c, offsetof(struct virtio_scsi_config, sense_size), &v32, 4),
			     0);
	get_cfg(&c, &cfg);
	assert_int_equal(cfg.num_queues, 2);
	assert_int_equal(cfg.sense_size, 48);
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	get_cfg(&c, &cfg);
	assert_int_equal(cfg.sense_size, 96);
	umdev_vuc_close(&c);
}

/*
 * Config space and negotiated features through either transport: the
 * defaults, sense_size/cdb_size writable and followed by the request
 * layout, the rest read-only, and a device reset restoring the defaults.
 * (test_features_config checks the vhost-user answers to refused writes.)
 */
static void test_config_any(void **state)
{
	const uint32_t sense_off = offsetof(struct virtio_scsi_config, sense_size);
	const uint32_t cdb_off = offsetof(struct virtio_scsi_config, cdb_size);
	struct umdev_vscsi_drv d;
	struct umdev_vba b;
	struct virtio_scsi_config cfg;
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	uint8_t cdb[6] = { 0x01 }; /* unsupported opcode: CHECK CONDITION */
	uint32_t v32 = 48;
	uint64_t f;

	scsi_open(&d, &b, 2, 0);
	f = umdev_vba_features(&b);
	assert_true(f & (1ull << VIRTIO_F_VERSION_1));
	assert_true(f & (1ull << VIRTIO_SCSI_F_INOUT));
	assert_true(f & (1ull << VIRTIO_SCSI_F_HOTPLUG));
	assert_true(f & (1ull << VIRTIO_SCSI_F_CHANGE));
	assert_false(f & (1ull << VIRTIO_SCSI_F_T10_PI));
	memset(&cfg, 0xa5, sizeof(cfg));
	assert_int_equal(umdev_vba_config(&b, 0, &cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg.num_queues, 2);
	assert_true(cfg.seg_max >= 1);
	assert_int_equal(cfg.event_info_size, 16);
	assert_int_equal(cfg.sense_size, 96);
	assert_int_equal(cfg.cdb_size, 32);
	assert_int_equal(cfg.max_channel, 0);
	assert_int_equal(cfg.max_target, 255);
	assert_int_equal(cfg.max_lun, 16383);
	assert_int_equal(umdev_vba_config_write(&b, sense_off, &v32, 4), 0);
	v32 = 64;
	assert_int_equal(umdev_vba_config_write(&b, cdb_off, &v32, 4), 0);
	/* Read-only num_queues, an absurd sense_size: refused (an error or ignored). */
	(void)!umdev_vba_config_write(&b, 0, &v32, 4);
	v32 = 1u << 20;
	(void)!umdev_vba_config_write(&b, sense_off, &v32, 4);
	assert_int_equal(umdev_vba_config(&b, 0, &cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg.num_queues, 2);
	assert_int_equal(cfg.sense_size, 48);
	assert_int_equal(cfg.cdb_size, 64);
	for (int i = 0; i < 4; i++) { /* the first answers carry unit attentions */
		assert_int_equal(umdev_vscsi_cmd_init(&cmd, 0, 0, 1, cdb, 6, NULL, 0, 0, 64, 48), 0);
		assert_int_equal(umdev_vscsi_exec(&d, Q0, &cmd, &res, PROTO_IO_TIMEOUT_MS),
				 VIRTIO_SCSI_S_OK);
		assert_int_equal(res.resp.status, SCSI_STATUS_CHECK_CONDITION);
		if (sense_key(&res) == SCSI_SK_ILLEGAL_REQUEST)
			break;
	}
	assert_int_equal(sense_asc(&res), SCSI_ASC_INVALID_OPCODE);
	assert_int_equal(res.resp.sense_len, 18);
	assert_int_equal(cmd.chain.used_len, 12 + 48);
	umdev_vscsi_cmd_fini(&cmd);
	if (use_vfu)
		assert_int_equal(umdev_vpd_common_write(&b.vpd, VPCI_COMMON_STATUS, 1, 0), 0);
	else
		assert_int_equal(umdev_vuc_request(&b.vu, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0),
				 0);
	assert_int_equal(umdev_vba_config(&b, 0, &cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg.sense_size, 96);
	assert_int_equal(cfg.cdb_size, 32);
	umdev_vba_close(&b);
}

static void test_io_all_queues(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vba b;
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	uint8_t inq[6] = { SCSI_INQUIRY, 0, 0, 0, 96 };
	uint8_t rl[12] = { SCSI_REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t rc[16] = { SCSI_SERVICE_ACTION_IN_16, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32 };
	uint8_t w[8192], cdb[16];

	scsi_open(&d, &b, 2, 0);
	drain_ua(&d, 0, 0);
	drain_ua(&d, 0, 1);
	for (unsigned q = Q0; q < Q0 + 2; q++) {
		assert_int_equal(scsi_cmd(&d, q, 0, 0, inq, 6, NULL, 0, 96, &cmd, &res),
				 VIRTIO_SCSI_S_OK);
		assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
		assert_memory_equal(res.data_in + 8, "UMDEV   ", 8);
		assert_int_equal(res.resp.resid, 96 - 66);
		/* REPORT LUNS of target 0: 0 and 1. */
		assert_int_equal(scsi_cmd(&d, q, 0, 0, rl, 12, NULL, 0, 256, &cmd, &res),
				 VIRTIO_SCSI_S_OK);
		assert_int_equal(res.data_in[3], 16);
		assert_int_equal(res.data_in[8 + 8 + 1], 1);
		assert_int_equal(res.resp.resid, 256 - 24);
		assert_int_equal(scsi_cmd(&d, q, 0, 0, rc, 16, NULL, 0, 32, &cmd, &res),
				 VIRTIO_SCSI_S_OK);
		assert_int_equal(res.data_in[7] | res.data_in[6] << 8, (4 << 20) / 512 - 1);
		/* Write then read back 16 blocks through this queue. */
		proto_fill(w, sizeof(w), q);
		memset(cdb, 0, sizeof(cdb));
		cdb[0] = SCSI_WRITE_10;
		cdb[5] = 16 * q;
		cdb[8] = 16;
		assert_int_equal(scsi_cmd(&d, q, 0, 0, cdb, 10, w, sizeof(w), 0, &cmd, &res),
				 VIRTIO_SCSI_S_OK);
		assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
		assert_int_equal(res.resp.resid, 0);
		cdb[0] = SCSI_READ_10;
		assert_int_equal(scsi_cmd(&d, q, 0, 0, cdb, 10, NULL, 0, sizeof(w), &cmd, &res),
				 VIRTIO_SCSI_S_OK);
		assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
		assert_true(proto_check(res.data_in, sizeof(w), q));
		assert_int_equal(cmd.chain.used_len, 12 + 96 + sizeof(w));
	}
	umdev_vscsi_cmd_fini(&cmd);
	umdev_vba_close(&b);
}

static void test_addressing_and_residuals(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vba b;
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY }, rd[10] = { SCSI_READ_10, 0, 0, 0, 0, 0, 0, 0, 1 };

	scsi_open(&d, &b, 2, 0);
	/* No target 7: BAD_TARGET, without a SCSI status. */
	assert_int_equal(scsi_cmd(&d, Q0, 7, 0, tur, 6, NULL, 0, 0, &cmd, &res),
			 VIRTIO_SCSI_S_BAD_TARGET);
	/* Target 3 exists; LUN 9 does not: the target answers LOGICAL UNIT NOT SUPPORTED. */
	assert_int_equal(scsi_cmd(&d, Q0, 3, 9, tur, 6, NULL, 0, 0, &cmd, &res), VIRTIO_SCSI_S_OK);
	assert_int_equal(res.resp.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(sense_asc(&res), SCSI_ASC_LUN_NOT_SUPPORTED);
	/* A malformed LUN field (first byte not 1; a hierarchical LUN). */
	assert_int_equal(umdev_vscsi_cmd_init(&cmd, 0, 0, 1, tur, 6, NULL, 0, 0, 0, 0), 0);
	cmd.buf[0] = 2;
	assert_int_equal(umdev_vscsi_exec(&d, Q0, &cmd, &res, PROTO_IO_TIMEOUT_MS),
			 VIRTIO_SCSI_S_BAD_TARGET);
	cmd.buf[0] = 1;
	cmd.buf[4] = 0x40;
	assert_int_equal(umdev_vscsi_exec(&d, Q0, &cmd, &res, PROTO_IO_TIMEOUT_MS),
			 VIRTIO_SCSI_S_BAD_TARGET);
	/* Peripheral addressing (byte 2 = 0) is a valid single-level LUN too. */
	cmd.buf[4] = 0;
	cmd.buf[2] = 0;
	assert_int_equal(umdev_vscsi_exec(&d, Q0, &cmd, &res, PROTO_IO_TIMEOUT_MS),
			 VIRTIO_SCSI_S_OK);
	drain_ua(&d, 0, 0);
	/* Underrun: one block into 4 KiB of data-in. */
	assert_int_equal(scsi_cmd(&d, Q0, 0, 0, rd, 10, NULL, 0, 4096, &cmd, &res),
			 VIRTIO_SCSI_S_OK);
	assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
	assert_int_equal(res.resp.resid, 4096 - 512);
	assert_int_equal(res.resp.sense_len, 0);
	/* Overrun: eight blocks into 512 bytes. */
	rd[8] = 8;
	assert_int_equal(scsi_cmd(&d, Q0, 0, 0, rd, 10, NULL, 0, 512, &cmd, &res),
			 VIRTIO_SCSI_S_OVERRUN);
	assert_int_equal(res.resp.resid, 512);
	/* Bidirectional without... INOUT negotiated here: a READ with data-out is fine. */
	rd[8] = 1;
	assert_int_equal(scsi_cmd(&d, Q0, 0, 0, rd, 10, "xxxx", 4, 512, &cmd, &res),
			 VIRTIO_SCSI_S_OK);
	assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
	assert_int_equal(res.resp.resid, 4); /* data-out not consumed */
	/* A chain too short for the response area is returned with nothing written. */
	assert_int_equal(umdev_vscsi_cmd_init(&cmd, 0, 0, 1, tur, 6, NULL, 0, 0, 0, 0), 0);
	cmd.chain.in_len = 20;
	assert_int_equal(umdev_vscsi_post(&d, Q0, &cmd.chain, false), 0);
	assert_int_equal(umdev_vscsi_wait(&d, Q0, &cmd.chain, PROTO_IO_TIMEOUT_MS), 0);
	assert_int_equal(cmd.chain.used_len, 0);
	/* A header cut short: FAILURE. */
	assert_int_equal(umdev_vscsi_cmd_init(&cmd, 0, 0, 1, tur, 6, NULL, 0, 0, 0, 0), 0);
	cmd.chain.out_len = 20;
	assert_int_equal(umdev_vscsi_exec(&d, Q0, &cmd, &res, PROTO_IO_TIMEOUT_MS),
			 VIRTIO_SCSI_S_FAILURE);
	umdev_vscsi_cmd_fini(&cmd);
	umdev_vba_close(&b);
}

static void test_no_inout(void **state)
{
	const uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX);
	struct umdev_vscsi_drv d;
	struct umdev_vba b;
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	uint8_t rd[10] = { SCSI_READ_10, 0, 0, 0, 0, 0, 0, 0, 1 };

	scsi_open(&d, &b, 2, f);
	assert_false(umdev_vba_features(&b) & (1ull << VIRTIO_SCSI_F_INOUT));
	assert_int_equal(scsi_cmd(&d, Q0, 0, 0, rd, 10, "xxxx", 4, 512, &cmd, &res),
			 VIRTIO_SCSI_S_FAILURE);
	/* One direction at a time still works. */
	drain_ua(&d, 0, 0);
	assert_int_equal(scsi_cmd(&d, Q0, 0, 0, rd, 10, NULL, 0, 512, &cmd, &res),
			 VIRTIO_SCSI_S_OK);
	assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
	umdev_vscsi_cmd_fini(&cmd);
	umdev_vba_close(&b);
}

/* Post @n event buffers on the eventq. */
static void post_events(struct umdev_vscsi_drv *d, struct umdev_vscsi_chain *ev, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		ev[i] = (struct umdev_vscsi_chain){ .in_len = sizeof(struct virtio_scsi_event) };
		assert_int_equal(umdev_vscsi_post(d, VIRTIO_SCSI_EVENTQ, &ev[i], false), 0);
	}
}

/*
 * Wait for a real event (skipping the NO_EVENT buffers the device hands
 * back now and then, which are reposted) and return it.
 */
static void next_event(struct umdev_vscsi_drv *d, struct umdev_vscsi_chain *ev, unsigned n,
		       struct virtio_scsi_event *out)
{
	for (int tries = 0; tries < 100; tries++) {
		assert_true(umdev_vscsi_reap(d, VIRTIO_SCSI_EVENTQ, 100) >= 0);
		for (unsigned i = 0; i < n; i++) {
			if (!ev[i].done)
				continue;
			assert_int_equal(ev[i].used_len, sizeof(*out));
			memcpy(out, ev[i].in, sizeof(*out));
			assert_int_equal(umdev_vscsi_post(d, VIRTIO_SCSI_EVENTQ, &ev[i], false), 0);
			if ((out->event & ~VIRTIO_SCSI_T_EVENTS_MISSED) != VIRTIO_SCSI_T_NO_EVENT ||
			    (out->event & VIRTIO_SCSI_T_EVENTS_MISSED))
				return;
		}
	}
	fail_msg("no event arrived");
}

static void test_hotplug_events(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vba b;
	struct umdev_vscsi_chain ev[4];
	struct virtio_scsi_event e;
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	uint8_t rl[12] = { SCSI_REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY };

	scsi_open(&d, &b, 2, 0);
	drain_ua(&d, 0, 0);
	post_events(&d, ev, 4);
	/* Hot-add 0:300 through the control socket: RESCAN for it. */
	assert_int_equal(ctl("lun-add scsi0 0:300 ram:2M"), 0);
	next_event(&d, ev, 4, &e);
	assert_int_equal(e.event, VIRTIO_SCSI_T_TRANSPORT_RESET);
	assert_int_equal(e.reason, VIRTIO_SCSI_EVT_RESET_RESCAN);
	assert_int_equal(e.lun[0], 1);
	assert_int_equal(e.lun[1], 0);
	assert_int_equal((e.lun[2] << 8 | e.lun[3]) & 0x3fff, 300);
	assert_int_equal(scsi_cmd(&d, Q0, 0, 0, rl, 12, NULL, 0, 256, &cmd, &res),
			 VIRTIO_SCSI_S_OK);
	assert_int_equal(res.data_in[3], 24);
	/* The others get REPORTED LUNS DATA HAS CHANGED on their next command. */
	assert_int_equal(scsi_cmd(&d, Q0, 0, 0, tur, 6, NULL, 0, 0, &cmd, &res), VIRTIO_SCSI_S_OK);
	assert_int_equal(res.resp.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(sense_key(&res), SCSI_SK_UNIT_ATTENTION);
	assert_int_equal(sense_asc(&res), SCSI_ASC_REPORTED_LUNS_CHANGED);
	/* Errors from the control socket: duplicate, bad address, missing LUN. */
	assert_int_not_equal(ctl("lun-add scsi0 0:300 ram:2M"), 0);
	assert_int_not_equal(ctl("lun-add scsi0 0:99999 ram:2M"), 0);
	assert_int_not_equal(ctl("lun-remove scsi0 5:5"), 0);
	/* Hot-remove: REMOVED, and the LUN answers LOGICAL UNIT NOT SUPPORTED. */
	assert_int_equal(ctl("lun-remove scsi0 0:300"), 0);
	next_event(&d, ev, 4, &e);
	assert_int_equal(e.event, VIRTIO_SCSI_T_TRANSPORT_RESET);
	assert_int_equal(e.reason, VIRTIO_SCSI_EVT_RESET_REMOVED);
	assert_int_equal(e.lun[3], 300 & 0xff);
	assert_int_equal(scsi_cmd(&d, Q0, 0, 300, tur, 6, NULL, 0, 0, &cmd, &res),
			 VIRTIO_SCSI_S_OK);
	assert_int_equal(sense_asc(&res), SCSI_ASC_LUN_NOT_SUPPORTED);
	/* A whole new target: REPORT LUNS through it works once it is there. */
	assert_int_equal(scsi_cmd(&d, Q0, 9, 0, tur, 6, NULL, 0, 0, &cmd, &res),
			 VIRTIO_SCSI_S_BAD_TARGET);
	assert_int_equal(ctl("lun-add scsi0 9:2 ram:1M"), 0);
	next_event(&d, ev, 4, &e);
	assert_int_equal(e.lun[1], 9);
	assert_int_equal(scsi_cmd(&d, Q0, 9, 0, rl, 12, NULL, 0, 256, &cmd, &res),
			 VIRTIO_SCSI_S_OK);
	assert_int_equal(res.data_in[3], 8);
	assert_int_equal(res.data_in[9], 2);
	umdev_vscsi_cmd_fini(&cmd);
	umdev_vba_close(&b);
}

static void test_events_missed(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vba b;
	struct umdev_vscsi_chain ev[2];
	struct virtio_scsi_event e;

	scsi_open(&d, &b, 1, 0);
	/* No buffer on the eventq: the event waits and comes flagged EVENTS_MISSED. */
	assert_int_equal(ctl("lun-add scsi0 0:7 ram:1M"), 0);
	post_events(&d, ev, 2);
	next_event(&d, ev, 2, &e);
	assert_int_equal(e.event, VIRTIO_SCSI_T_TRANSPORT_RESET | VIRTIO_SCSI_T_EVENTS_MISSED);
	assert_int_equal(e.reason, VIRTIO_SCSI_EVT_RESET_RESCAN);
	assert_int_equal(e.lun[3], 7);
	/* With buffers there: no flag. */
	assert_int_equal(ctl("lun-remove scsi0 0:7"), 0);
	next_event(&d, ev, 2, &e);
	assert_int_equal(e.event, VIRTIO_SCSI_T_TRANSPORT_RESET);
	assert_int_equal(e.reason, VIRTIO_SCSI_EVT_RESET_REMOVED);
	/* A too-short event buffer comes straight back, empty. */
	{
		struct umdev_vscsi_chain small = { .in_len = 8 };

		assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_EVENTQ, &small, false), 0);
		assert_int_equal(umdev_vscsi_wait(&d, VIRTIO_SCSI_EVENTQ, &small, 3000), 0);
		assert_int_equal(small.used_len, 0);
	}
	umdev_vba_close(&b);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

/*
 * Wait, bounded, until the device has taken every buffer posted on @q: it
 * moves avail_event (EVENT_IDX) to the avail index only once it has
 * drained the ring. A stop before that finds them still in the avail ring.
 */
static void wait_parked(struct umdev_vuc *c, unsigned q)
{
	struct umdev_vqd *v = &c->vqs[q].drv;
	uint16_t *avail_event = (uint16_t *)&v->used->ring[v->size];

	assert_true(v->event_idx);
	TEST_WAIT_UNTIL(__atomic_load_n(avail_event, __ATOMIC_ACQUIRE) == v->avail_idx);
	assert_int_equal(__atomic_load_n(avail_event, __ATOMIC_ACQUIRE), v->avail_idx);
}

/*
 * The eventq stopped as at a migration's switchover (GET_VRING_BASE with
 * buffers parked): the stop does not wait for an event, the
 * parked buffers come back as NO_EVENT (used idx = the base), an event
 * raised while the ring is stopped is kept and delivered once the ring
 * resumes at that base, and exactly once.
 */
static void test_eventq_stop_resume(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vuc c;
	struct umdev_vscsi_chain ev[4];
	struct virtio_scsi_event e;
	uint16_t base = 0;
	uint64_t t;
	int seen = 0;

	assert_int_equal(umdev_vscsi_drv_start(&d, &c, srv.sock, 1, 64, 0, REGION), 0);
	post_events(&d, ev, 4);
	wait_parked(&c, VIRTIO_SCSI_EVENTQ);
	t = now_ms();
	assert_int_equal(umdev_vuc_vq_stop(&c, VIRTIO_SCSI_EVENTQ, &base), 0);
	t = now_ms() - t;
	if (t >= 500)
		fail_msg("stopping the eventq took %llu ms: it waited for parked buffers",
			 (unsigned long long)t);
	assert_int_equal(__atomic_load_n(&c.vqs[VIRTIO_SCSI_EVENTQ].drv.used->idx,
					 __ATOMIC_ACQUIRE), base);
	assert_int_equal(umdev_vscsi_reap(&d, VIRTIO_SCSI_EVENTQ, 100) >= 0, 1);
	for (unsigned i = 0; i < 4; i++) {
		assert_true(ev[i].done);
		memcpy(&e, ev[i].in, sizeof(e));
		assert_int_equal(e.event, VIRTIO_SCSI_T_NO_EVENT);
	}
	/* Raised while stopped: kept. */
	assert_int_equal(ctl("lun-add scsi0 0:8 ram:1M"), 0);
	assert_int_equal(umdev_vuc_vq_start(&c, VIRTIO_SCSI_EVENTQ, base), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_EVENTQ, &ev[i], false), 0);
	next_event(&d, ev, 4, &e);
	assert_int_equal(e.event & ~VIRTIO_SCSI_T_EVENTS_MISSED, VIRTIO_SCSI_T_TRANSPORT_RESET);
	assert_int_equal(e.reason, VIRTIO_SCSI_EVT_RESET_RESCAN);
	assert_int_equal(e.lun[3], 8);
	/* And only once: 1.5 s more carry nothing else. */
	t = now_ms();
	while (now_ms() - t < 1500) {
		assert_true(umdev_vscsi_reap(&d, VIRTIO_SCSI_EVENTQ, 100) >= 0);
		for (unsigned i = 0; i < 4; i++) {
			if (!ev[i].done)
				continue;
			memcpy(&e, ev[i].in, sizeof(e));
			if (e.event != VIRTIO_SCSI_T_NO_EVENT)
				seen++;
			assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_EVENTQ, &ev[i], false), 0);
		}
	}
	assert_int_equal(seen, 0);
	assert_int_equal(ctl("lun-remove scsi0 0:8"), 0);
	umdev_vuc_close(&c);
}

/*
 * The device hands idle event buffers back (NO_EVENT) when the eventq
 * stops; an event posted before the driver re-posts them is not "missed":
 * it waits for them and comes unflagged, however slow the driver is to
 * re-post. And an idle eventq keeps its buffer: no periodic hand-back.
 */
static void test_event_while_buffer_lent(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vuc c;
	struct umdev_vscsi_chain ev[1];
	struct virtio_scsi_event e;
	uint16_t base = 0;

	assert_int_equal(umdev_vscsi_drv_start(&d, &c, srv.sock, 1, 64, 0, REGION), 0);
	post_events(&d, ev, 1);
	/* Idle: the buffer stays parked (no timer hands it back). */
	assert_int_equal(umdev_vscsi_reap(&d, VIRTIO_SCSI_EVENTQ, 1500), 0);
	assert_false(ev[0].done);
	/* A stop hands it back; the ring resumes with the driver holding it. */
	assert_int_equal(umdev_vuc_vq_stop(&c, VIRTIO_SCSI_EVENTQ, &base), 0);
	assert_int_equal(umdev_vscsi_reap(&d, VIRTIO_SCSI_EVENTQ, 100), 1);
	assert_true(ev[0].done);
	assert_int_equal(umdev_vuc_vq_start(&c, VIRTIO_SCSI_EVENTQ, base), 0);
	assert_int_equal(ev[0].used_len, sizeof(e));
	memcpy(&e, ev[0].in, sizeof(e));
	assert_int_equal(e.event, VIRTIO_SCSI_T_NO_EVENT);
	/* The event happens while the driver holds the buffer, and only then is it re-posted. */
	assert_int_equal(ctl("lun-add scsi0 0:8 ram:1M"), 0);
	assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_EVENTQ, &ev[0], false), 0);
	next_event(&d, ev, 1, &e);
	assert_int_equal(e.event, VIRTIO_SCSI_T_TRANSPORT_RESET);
	assert_int_equal(e.reason, VIRTIO_SCSI_EVT_RESET_RESCAN);
	assert_int_equal(e.lun[3], 8);
	umdev_vuc_close(&c);
}

/*
 * An eventq this device never ran, resumed at a non-zero index: what a
 * migration's destination (or a restarted umdevd) sees. Events that were
 * queued where the ring ran before are gone, so the first buffer carries
 * EVENTS_MISSED and the driver rescans. Made here by replacing the device
 * on its socket under a connected driver.
 */
static void test_eventq_resumed_elsewhere(void **state)
{
	struct umdev_vscsi_drv d;
	struct umdev_vuc c;
	struct umdev_vscsi_chain ev[4];
	struct virtio_scsi_event e;
	uint16_t base[3];
	char cmd[600];

	assert_int_equal(umdev_vscsi_drv_start(&d, &c, srv.sock, 1, 64, 0, REGION), 0);
	post_events(&d, ev, 4);
	/* Taken before the stop, or the base is 0 and the premise is gone. */
	wait_parked(&c, VIRTIO_SCSI_EVENTQ);
	for (unsigned q = 0; q < 3; q++)
		assert_int_equal(umdev_vuc_vq_stop(&c, q, &base[q]), 0);
	assert_true(base[VIRTIO_SCSI_EVENTQ] != 0);
	assert_true(umdev_vscsi_reap(&d, VIRTIO_SCSI_EVENTQ, 100) >= 0);
	/* A new device on the same socket, as on another host. */
	assert_int_equal(ctl("remove scsi0 --force"), 0);
	snprintf(cmd, sizeof(cmd), "create virtio-scsi id=scsi0 socket=%s lun=0:0:ram:4M",
		 srv.sock);
	assert_int_equal(ctl(cmd), 0);
	assert_int_equal(umdev_vuc_reconnect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vuc_negotiate(&c, c.acked_protocol_features), 0);
	assert_int_equal(umdev_vuc_set_features(&c, c.acked_features), 0);
	assert_int_equal(umdev_vuc_set_mem_table(&c, 1), 0);
	for (unsigned q = 0; q < 3; q++)
		assert_int_equal(umdev_vuc_vq_start(&c, q, base[q]), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(umdev_vscsi_post(&d, VIRTIO_SCSI_EVENTQ, &ev[i], false), 0);
	next_event(&d, ev, 4, &e);
	assert_true(e.event & VIRTIO_SCSI_T_EVENTS_MISSED);
	/* Still served: the connection answers. */
	{
		uint64_t n = 0;

		assert_int_equal(umdev_vuc_get_u64(&c, VHOST_USER_GET_QUEUE_NUM, &n), 0);
		assert_true(n >= 3);
	}
	umdev_vuc_close(&c);
}

static void test_lun_list_rpc(void **state)
{
	assert_int_equal(ctl("call lun-list '{\"id\":\"scsi0\"}'"), 0);
	assert_int_not_equal(ctl("call lun-add '{\"id\":\"scsi0\",\"lun\":\"0:5\"}'"), 0);
	assert_int_not_equal(ctl("call lun-add '{\"id\":\"scsi0\",\"lun\":\"0:5\",\"backend\":"
				 "\"ram:1M\",\"bogus\":1}'"), 0);
	assert_int_equal(ctl("lun-add scsi0 0:5 ram:1M readonly=on"), 0);
	assert_int_equal(ctl("lun-remove scsi0 0:5"), 0);
}

/* The bodies that need no vhost-user message (config writes, ring stop/resume). */
#define ANY_TRANSPORT_TESTS                                                              \
	cmocka_unit_test_setup_teardown(test_config_any, setup, teardown),                \
	cmocka_unit_test_setup_teardown(test_io_all_queues, setup, teardown),             \
	cmocka_unit_test_setup_teardown(test_addressing_and_residuals, setup, teardown),  \
	cmocka_unit_test_setup_teardown(test_no_inout, setup, teardown),                  \
	cmocka_unit_test_setup_teardown(test_hotplug_events, setup, teardown),            \
	cmocka_unit_test_setup_teardown(test_events_missed, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features_config, setup, teardown),
		ANY_TRANSPORT_TESTS,
		cmocka_unit_test_setup_teardown(test_eventq_stop_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_while_buffer_lent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eventq_resumed_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lun_list_rpc, setup, teardown),
	};
	const struct CMUnitTest any_transport[] = { ANY_TRANSPORT_TESTS };

	scsi_transport_from_env();
	if (use_vfu)
		return cmocka_run_group_tests_name("virtio-scsi over vfio-user", any_transport, NULL,
						   NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
