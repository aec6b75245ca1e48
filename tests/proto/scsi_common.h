/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared by the virtio-scsi protocol tests: start umdevd with a
 * virtio-scsi device and its control socket, bring a driver up, run
 * commands, and call umdevctl.
 */
#ifndef UMDEV_TESTS_PROTO_SCSI_COMMON_H
#define UMDEV_TESTS_PROTO_SCSI_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/virtio_scsi_drv.h"
#include "proto_common.h"
#include "umdev/proto/scsi.h"

#define REGION (32ull << 20)
#define Q0 VIRTIO_SCSI_REQQ0

static struct proto_srv srv;
static char rpc_path[256];
/*
 * The transport the device is served on and driven over: vhost-user, or
 * virtio-pci on vfio-user when UMDEV_TEST_TRANSPORT=vfio-user (meson runs
 * the test bodies that do not need vhost-user messages once per transport).
 */
static bool use_vfu;

static inline void scsi_transport_from_env(void)
{
	const char *t = getenv("UMDEV_TEST_TRANSPORT");

	use_vfu = t && !strcmp(t, "vfio-user");
}

/* umdevd with a virtio-scsi device; @luns like "lun=0:0:ram:4M,lun=0:1:..." */
static inline void scsi_start_disk(const char *luns, unsigned nq, uint64_t disk_bytes)
{
	char dev[1024], rpc[300];

	proto_srv_init(&srv, disk_bytes);
	snprintf(rpc_path, sizeof(rpc_path), "%s/rpc.sock", srv.dir);
	snprintf(rpc, sizeof(rpc), "%s", rpc_path);
	snprintf(dev, sizeof(dev), "virtio-scsi,id=scsi0,socket=@SOCK@,num-queues=%u%s%s%s", nq,
		 use_vfu ? ",transport=vfio-user" : "", luns[0] ? "," : "", luns);
	proto_start_umdevd(&srv, "--rpc", rpc, "--device", dev, NULL);
}

static inline void scsi_start(const char *luns, unsigned nq)
{
	scsi_start_disk(luns, nq, 0);
}

static inline void scsi_stop(void)
{
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	assert_true(alive);
}

/* Our driver on the device over the chosen transport; close with umdev_vba_close(@b). */
static inline void scsi_open(struct umdev_vscsi_drv *d, struct umdev_vba *b, unsigned nreq,
			     uint64_t features)
{
	assert_int_equal(umdev_vscsi_drv_open(d, b, use_vfu, srv.sock, nreq, 64, features, REGION),
			 0);
}

/* Run umdevctl against our daemon; returns its exit status. */
static inline int ctl(const char *args)
{
	char cmd[1024];
	const char *exe = getenv("UMDEVCTL");
	int st;

	assert_non_null(exe);
	snprintf(cmd, sizeof(cmd), "%s --rpc %s %s >&2", exe, rpc_path, args);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* One synchronous command; returns the virtio response byte. */
static inline int scsi_cmd(struct umdev_vscsi_drv *d, unsigned q, unsigned t, unsigned l,
			   const uint8_t *cdb, unsigned cdb_len, const void *out, uint32_t out_len,
			   uint32_t in_len, struct umdev_vscsi_cmd *cmd,
			   struct umdev_vscsi_cmd_res *res)
{
	assert_int_equal(umdev_vscsi_cmd_init(cmd, t, l, 0x1000 + q, cdb, cdb_len, out, out_len,
					      in_len, 0, 0),
			 0);
	return umdev_vscsi_exec(d, q, cmd, res, PROTO_IO_TIMEOUT_MS);
}

/* Sense key / ASC of fixed-format sense. */
static inline unsigned sense_key(const struct umdev_vscsi_cmd_res *r)
{
	return r->sense[2] & 0x0f;
}

static inline unsigned sense_asc(const struct umdev_vscsi_cmd_res *r)
{
	return (unsigned)r->sense[12] << 8 | r->sense[13];
}

/* Send commands to @t:@l until it has no unit attention left. */
static inline void drain_ua(struct umdev_vscsi_drv *d, unsigned t, unsigned l)
{
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY };
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;

	for (int i = 0; i < 8; i++) {
		assert_int_equal(scsi_cmd(d, Q0, t, l, tur, 6, NULL, 0, 0, &cmd, &res),
				 VIRTIO_SCSI_S_OK);
		if (res.resp.status == SCSI_STATUS_GOOD)
			break;
		assert_int_equal(sense_key(&res), SCSI_SK_UNIT_ATTENTION);
	}
	assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
	umdev_vscsi_cmd_fini(&cmd);
}

#endif
