/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SCSI wire definitions we need (SPC-4/SBC-3 names): operation codes, status
 * codes, sense keys, additional sense codes and VPD page codes. Multi-byte
 * CDB and parameter fields are big-endian; see the get/put helpers in
 * include/umdev/scsi.h.
 */
#ifndef UMDEV_PROTO_SCSI_H
#define UMDEV_PROTO_SCSI_H

/* Operation codes. */
#define SCSI_TEST_UNIT_READY 0x00
#define SCSI_REQUEST_SENSE 0x03
#define SCSI_READ_6 0x08
#define SCSI_WRITE_6 0x0a
#define SCSI_INQUIRY 0x12
#define SCSI_MODE_SELECT_6 0x15
#define SCSI_MODE_SENSE_6 0x1a
#define SCSI_START_STOP_UNIT 0x1b
#define SCSI_READ_CAPACITY_10 0x25
#define SCSI_READ_10 0x28
#define SCSI_WRITE_10 0x2a
#define SCSI_VERIFY_10 0x2f
#define SCSI_SYNCHRONIZE_CACHE_10 0x35
#define SCSI_WRITE_SAME_10 0x41
#define SCSI_UNMAP 0x42
#define SCSI_MODE_SELECT_10 0x55
#define SCSI_MODE_SENSE_10 0x5a
#define SCSI_READ_16 0x88
#define SCSI_WRITE_16 0x8a
#define SCSI_VERIFY_16 0x8f
#define SCSI_SYNCHRONIZE_CACHE_16 0x91
#define SCSI_WRITE_SAME_16 0x93
#define SCSI_SERVICE_ACTION_IN_16 0x9e
#define SCSI_SAI_READ_CAPACITY_16 0x10 /* service action of 0x9e */
#define SCSI_REPORT_LUNS 0xa0
#define SCSI_MAINTENANCE_IN 0xa3
#define SCSI_MI_REPORT_SUPPORTED_OPCODES 0x0c /* service action of 0xa3 */
#define SCSI_READ_12 0xa8
#define SCSI_WRITE_12 0xaa

/* Status byte. */
#define SCSI_STATUS_GOOD 0x00
#define SCSI_STATUS_CHECK_CONDITION 0x02
#define SCSI_STATUS_BUSY 0x08
#define SCSI_STATUS_RESERVATION_CONFLICT 0x18
#define SCSI_STATUS_TASK_SET_FULL 0x28
#define SCSI_STATUS_TASK_ABORTED 0x40

/* Sense keys. */
#define SCSI_SK_NO_SENSE 0x0
#define SCSI_SK_NOT_READY 0x2
#define SCSI_SK_MEDIUM_ERROR 0x3
#define SCSI_SK_HARDWARE_ERROR 0x4
#define SCSI_SK_ILLEGAL_REQUEST 0x5
#define SCSI_SK_UNIT_ATTENTION 0x6
#define SCSI_SK_DATA_PROTECT 0x7
#define SCSI_SK_ABORTED_COMMAND 0xb
#define SCSI_SK_MISCOMPARE 0xe

/* Additional sense code and qualifier, as (ASC << 8 | ASCQ). */
#define SCSI_ASC_NONE 0x0000
#define SCSI_ASC_LUN_NOT_READY_START_NEEDED 0x0402 /* initializing command required */
#define SCSI_ASC_WRITE_ERROR 0x0c00
#define SCSI_ASC_READ_ERROR 0x1100
#define SCSI_ASC_MISCOMPARE_VERIFY 0x1d00
#define SCSI_ASC_PARAM_LIST_LENGTH_ERROR 0x1a00
#define SCSI_ASC_INVALID_OPCODE 0x2000
#define SCSI_ASC_LBA_OUT_OF_RANGE 0x2100
#define SCSI_ASC_INVALID_FIELD_IN_CDB 0x2400
#define SCSI_ASC_LUN_NOT_SUPPORTED 0x2500
#define SCSI_ASC_INVALID_FIELD_IN_PARAM 0x2600
#define SCSI_ASC_WRITE_PROTECTED 0x2700
#define SCSI_ASC_POWER_ON_RESET 0x2900
#define SCSI_ASC_I_T_NEXUS_LOSS 0x2907
#define SCSI_ASC_MODE_PARAMS_CHANGED 0x2a01
#define SCSI_ASC_CAPACITY_CHANGED 0x2a09
#define SCSI_ASC_SAVING_PARAMS_UNSUP 0x3900
#define SCSI_ASC_REPORTED_LUNS_CHANGED 0x3f0e
#define SCSI_ASC_INTERNAL_TARGET_FAILURE 0x4400

/* Sense data formats (response codes, current errors). */
#define SCSI_SENSE_FIXED 0x70
#define SCSI_SENSE_DESC 0x72
#define SCSI_SENSE_FIXED_LEN 18
#define SCSI_SENSE_DESC_LEN 8

/* INQUIRY. */
#define SCSI_TYPE_DISK 0x00
#define SCSI_PQ_NOT_CONNECTED 0x7f /* qualifier 3, type 0x1f: no LU here */
#define SCSI_VPD_SUPPORTED_PAGES 0x00
#define SCSI_VPD_UNIT_SERIAL 0x80
#define SCSI_VPD_DEVICE_ID 0x83
#define SCSI_VPD_BLOCK_LIMITS 0xb0
#define SCSI_VPD_BLOCK_DEV_CHARS 0xb1
#define SCSI_VPD_LB_PROVISIONING 0xb2

/* MODE SENSE / SELECT page codes. */
#define SCSI_MODE_PAGE_CACHING 0x08
#define SCSI_MODE_PAGE_CONTROL 0x0a
#define SCSI_MODE_PAGE_ALL 0x3f

#endif
