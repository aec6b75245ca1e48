/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd's virtio-scsi over vhost-user with packed virtqueues, driven by
 * our virtio-scsi driver on our packed ring: INQUIRY, READ CAPACITY and
 * verified WRITE/READ on every request queue, many laps of the rings, and
 * the control queue. (QEMU up to 10.2 does not forward
 * VIRTIO_F_RING_PACKED to vhost-user-scsi back-ends, so this is where the
 * packed virtio-scsi path is tested.)
 */
#include "scsi_common.h"

#include <string.h>
#include <unistd.h>

#include "umdev/proto/virtio_ring.h"

#define SCSI_PACKED_FEATURES                                                               \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_SCSI_F_INOUT) |                     \
	 (1ull << VIRTIO_SCSI_F_HOTPLUG) | (1ull << VIRTIO_SCSI_F_CHANGE) |                 \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_F_RING_PACKED))

static int setup(void **state)
{
	scsi_start("lun=0:0:ram:4M,lun=0:1:ram:1M", 2);
	return 0;
}

static int teardown(void **state)
{
	scsi_stop();
	return 0;
}

static void io_all_queues(uint64_t extra)
{
	struct umdev_vscsi_drv d;
	struct umdev_vuc c;
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	uint8_t inq[6] = { SCSI_INQUIRY, 0, 0, 0, 96 };
	uint8_t rc[16] = { SCSI_SERVICE_ACTION_IN_16, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32 };
	uint8_t w[4096], cdb[16];

	assert_int_equal(umdev_vscsi_drv_start(&d, &c, srv.sock, 2, 64,
					       SCSI_PACKED_FEATURES | extra, REGION), 0);
	assert_true(c.acked_features & (1ull << VIRTIO_F_RING_PACKED));
	assert_true(c.vqs[Q0].drv.packed);
	drain_ua(&d, 0, 0);
	for (unsigned q = Q0; q < Q0 + 2; q++) {
		assert_int_equal(scsi_cmd(&d, q, 0, 0, inq, 6, NULL, 0, 96, &cmd, &res),
				 VIRTIO_SCSI_S_OK);
		assert_memory_equal(res.data_in + 8, "UMDEV   ", 8);
		assert_int_equal(scsi_cmd(&d, q, 0, 0, rc, 16, NULL, 0, 32, &cmd, &res),
				 VIRTIO_SCSI_S_OK);
		assert_int_equal(res.data_in[7] | res.data_in[6] << 8, (4 << 20) / 512 - 1);
		/* 40 write+read pairs of 8 blocks: several laps of the 64-slot ring. */
		for (unsigned i = 0; i < 40; i++) {
			unsigned lba = 8 * (i + 40 * (q - Q0));

			proto_fill(w, sizeof(w), 1000 * q + i);
			memset(cdb, 0, sizeof(cdb));
			cdb[0] = SCSI_WRITE_10;
			cdb[4] = (uint8_t)(lba >> 8);
			cdb[5] = (uint8_t)lba;
			cdb[8] = 8;
			assert_int_equal(scsi_cmd(&d, q, 0, 0, cdb, 10, w, sizeof(w), 0, &cmd, &res),
					 VIRTIO_SCSI_S_OK);
			assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
			cdb[0] = SCSI_READ_10;
			assert_int_equal(scsi_cmd(&d, q, 0, 0, cdb, 10, NULL, 0, sizeof(w), &cmd,
						  &res), VIRTIO_SCSI_S_OK);
			assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
			assert_true(proto_check(res.data_in, sizeof(w), 1000 * q + i));
		}
	}
	umdev_vscsi_cmd_fini(&cmd);
	umdev_vuc_close(&c);
}

static void test_packed_io(void **state)
{
	io_all_queues(0);
}

static void test_packed_io_event_idx(void **state)
{
	io_all_queues(1ull << VIRTIO_RING_F_EVENT_IDX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_packed_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packed_io_event_idx, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
