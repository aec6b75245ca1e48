/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-scsi wire format (virtio 1.x, "SCSI Host Device"). All multi-byte
 * fields are little-endian. Queue 0 is the controlq, queue 1 the eventq,
 * queues 2.. the request queues.
 */
#ifndef UMDEV_PROTO_VIRTIO_SCSI_H
#define UMDEV_PROTO_VIRTIO_SCSI_H

#include <stdint.h>

#define VIRTIO_ID_SCSI 8

#define VIRTIO_SCSI_CTRLQ 0
#define VIRTIO_SCSI_EVENTQ 1
#define VIRTIO_SCSI_REQQ0 2

/* Feature bits. */
#define VIRTIO_SCSI_F_INOUT 0
#define VIRTIO_SCSI_F_HOTPLUG 1
#define VIRTIO_SCSI_F_CHANGE 2
#define VIRTIO_SCSI_F_T10_PI 3

/* Defaults the driver may override through config space. */
#define VIRTIO_SCSI_SENSE_SIZE_DEFAULT 96
#define VIRTIO_SCSI_CDB_SIZE_DEFAULT 32

struct virtio_scsi_config {
	uint32_t num_queues; /* request queues */
	uint32_t seg_max;
	uint32_t max_sectors;
	uint32_t cmd_per_lun;
	uint32_t event_info_size;
	uint32_t sense_size; /* driver-writable */
	uint32_t cdb_size; /* driver-writable */
	uint16_t max_channel;
	uint16_t max_target;
	uint32_t max_lun;
} __attribute__((packed));

/*
 * The 8-byte LUN field of every request: byte 0 is 1, byte 1 the target,
 * bytes 2-3 the single-level LUN (0x40 | lun >> 8, lun & 0xff), the rest 0.
 */
#define VIRTIO_SCSI_LUN_SIZE 8

/* Request queue: driver-readable header, followed by the CDB. */
struct virtio_scsi_cmd_req {
	uint8_t lun[VIRTIO_SCSI_LUN_SIZE];
	uint64_t id; /* command tag, used by TMFs */
	uint8_t task_attr;
	uint8_t prio;
	uint8_t crn;
	/* uint8_t cdb[cdb_size]; then data-out */
} __attribute__((packed));

/* Request queue: device-writable header, followed by sense[sense_size], then data-in. */
struct virtio_scsi_cmd_resp {
	uint32_t sense_len;
	uint32_t resid;
	uint16_t status_qualifier;
	uint8_t status;
	uint8_t response;
	/* uint8_t sense[sense_size]; */
} __attribute__((packed));

/* Task attributes. */
#define VIRTIO_SCSI_S_SIMPLE 0
#define VIRTIO_SCSI_S_ORDERED 1
#define VIRTIO_SCSI_S_HEAD 2
#define VIRTIO_SCSI_S_ACA 3

/* Response codes (requests and control). */
#define VIRTIO_SCSI_S_OK 0
#define VIRTIO_SCSI_S_OVERRUN 1
#define VIRTIO_SCSI_S_ABORTED 2
#define VIRTIO_SCSI_S_BAD_TARGET 3
#define VIRTIO_SCSI_S_RESET 4
#define VIRTIO_SCSI_S_BUSY 5
#define VIRTIO_SCSI_S_TRANSPORT_FAILURE 6
#define VIRTIO_SCSI_S_TARGET_FAILURE 7
#define VIRTIO_SCSI_S_NEXUS_FAILURE 8
#define VIRTIO_SCSI_S_FAILURE 9
#define VIRTIO_SCSI_S_FUNCTION_SUCCEEDED 10
#define VIRTIO_SCSI_S_FUNCTION_REJECTED 11
#define VIRTIO_SCSI_S_INCORRECT_LUN 12
#define VIRTIO_SCSI_S_FUNCTION_COMPLETE 0

/* controlq request types. */
#define VIRTIO_SCSI_T_TMF 0
#define VIRTIO_SCSI_T_AN_QUERY 1
#define VIRTIO_SCSI_T_AN_SUBSCRIBE 2

/* TMF subtypes. */
#define VIRTIO_SCSI_T_TMF_ABORT_TASK 0
#define VIRTIO_SCSI_T_TMF_ABORT_TASK_SET 1
#define VIRTIO_SCSI_T_TMF_CLEAR_ACA 2
#define VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET 3
#define VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET 4
#define VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET 5
#define VIRTIO_SCSI_T_TMF_QUERY_TASK 6
#define VIRTIO_SCSI_T_TMF_QUERY_TASK_SET 7

struct virtio_scsi_ctrl_tmf_req {
	uint32_t type;
	uint32_t subtype;
	uint8_t lun[VIRTIO_SCSI_LUN_SIZE];
	uint64_t id;
} __attribute__((packed));

struct virtio_scsi_ctrl_tmf_resp {
	uint8_t response;
} __attribute__((packed));

/* Asynchronous notification classes (event_requested / event_actual bits). */
#define VIRTIO_SCSI_EVT_ASYNC_OPERATIONAL_CHANGE 2
#define VIRTIO_SCSI_EVT_ASYNC_POWER_MGMT 4
#define VIRTIO_SCSI_EVT_ASYNC_EXTERNAL_REQUEST 8
#define VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE 16
#define VIRTIO_SCSI_EVT_ASYNC_MULTI_HOST 32
#define VIRTIO_SCSI_EVT_ASYNC_DEVICE_BUSY 64

struct virtio_scsi_ctrl_an_req {
	uint32_t type;
	uint8_t lun[VIRTIO_SCSI_LUN_SIZE];
	uint32_t event_requested;
} __attribute__((packed));

struct virtio_scsi_ctrl_an_resp {
	uint32_t event_actual;
	uint8_t response;
} __attribute__((packed));

/* eventq. */
#define VIRTIO_SCSI_T_NO_EVENT 0
#define VIRTIO_SCSI_T_TRANSPORT_RESET 1
#define VIRTIO_SCSI_T_ASYNC_NOTIFY 2
#define VIRTIO_SCSI_T_PARAM_CHANGE 3
#define VIRTIO_SCSI_T_EVENTS_MISSED 0x80000000u

/* TRANSPORT_RESET reasons. */
#define VIRTIO_SCSI_EVT_RESET_HARD 0
#define VIRTIO_SCSI_EVT_RESET_RESCAN 1
#define VIRTIO_SCSI_EVT_RESET_REMOVED 2

struct virtio_scsi_event {
	uint32_t event;
	uint8_t lun[VIRTIO_SCSI_LUN_SIZE];
	uint32_t reason;
} __attribute__((packed));

#endif
