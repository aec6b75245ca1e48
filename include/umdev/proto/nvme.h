/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe wire format: controller registers, queue entries, admin and NVM
 * command set structures, as the NVM Express Base Specification (2.0) and
 * the NVM Command Set Specification lay them out. Everything is
 * little-endian; structures are packed to the exact byte layout the spec
 * gives, and the sizes and a few key offsets are checked at compile time.
 * Only what umdev's controller and its test host need is defined here.
 */
#ifndef UMDEV_PROTO_NVME_H
#define UMDEV_PROTO_NVME_H

#include <stddef.h>
#include <stdint.h>

/* ---- PCI identity ---- */
#define NVME_PCI_CLASS 0x010802 /* mass storage, NVM, NVMe I/O controller */

/* ---- controller registers (BAR0) ---- */
#define NVME_REG_CAP 0x00 /* 64-bit: capabilities */
#define NVME_REG_VS 0x08 /* version */
#define NVME_REG_INTMS 0x0c /* interrupt mask set (INTx/MSI only) */
#define NVME_REG_INTMC 0x10 /* interrupt mask clear */
#define NVME_REG_CC 0x14 /* controller configuration */
#define NVME_REG_CSTS 0x1c /* controller status */
#define NVME_REG_NSSR 0x20 /* NVM subsystem reset */
#define NVME_REG_AQA 0x24 /* admin queue attributes */
#define NVME_REG_ASQ 0x28 /* 64-bit: admin SQ base */
#define NVME_REG_ACQ 0x30 /* 64-bit: admin CQ base */
#define NVME_REG_CMBLOC 0x38
#define NVME_REG_CMBSZ 0x3c
#define NVME_REG_DBS 0x1000 /* first doorbell */

/* CAP fields. */
#define NVME_CAP_MQES(cap) ((uint32_t)((cap) & 0xffff)) /* max queue entries, 0's based */
#define NVME_CAP_CQR (1ull << 16) /* queues must be physically contiguous */
#define NVME_CAP_AMS_WRR (1ull << 17)
#define NVME_CAP_TO_SHIFT 24 /* ready timeout, 500 ms units, 8 bits */
#define NVME_CAP_DSTRD_SHIFT 32 /* doorbell stride 2^(2+n) */
#define NVME_CAP_NSSRS (1ull << 36)
#define NVME_CAP_CSS_SHIFT 37 /* command sets, 8 bits */
#define NVME_CAP_CSS_NVM 0x01
#define NVME_CAP_CSS_ADMIN_ONLY 0x80
#define NVME_CAP_MPSMIN_SHIFT 48 /* 2^(12+n), 4 bits */
#define NVME_CAP_MPSMAX_SHIFT 52

#define NVME_VS(maj, min, ter) (((uint32_t)(maj) << 16) | ((uint32_t)(min) << 8) | (ter))

/* CC fields. */
#define NVME_CC_EN (1u << 0)
#define NVME_CC_CSS_SHIFT 4 /* 3 bits */
#define NVME_CC_CSS_MASK (7u << NVME_CC_CSS_SHIFT)
#define NVME_CC_CSS_NVM 0u
#define NVME_CC_CSS_ADMIN 7u
#define NVME_CC_MPS_SHIFT 7 /* 4 bits: page size 2^(12+n) */
#define NVME_CC_MPS_MASK (0xfu << NVME_CC_MPS_SHIFT)
#define NVME_CC_AMS_SHIFT 11
#define NVME_CC_AMS_MASK (7u << NVME_CC_AMS_SHIFT)
#define NVME_CC_SHN_SHIFT 14
#define NVME_CC_SHN_MASK (3u << NVME_CC_SHN_SHIFT)
#define NVME_CC_SHN_NONE 0u
#define NVME_CC_SHN_NORMAL 1u
#define NVME_CC_SHN_ABRUPT 2u
#define NVME_CC_IOSQES_SHIFT 16 /* SQ entry size 2^n */
#define NVME_CC_IOSQES_MASK (0xfu << NVME_CC_IOSQES_SHIFT)
#define NVME_CC_IOCQES_SHIFT 20
#define NVME_CC_IOCQES_MASK (0xfu << NVME_CC_IOCQES_SHIFT)

/* CSTS fields. */
#define NVME_CSTS_RDY (1u << 0)
#define NVME_CSTS_CFS (1u << 1) /* controller fatal status */
#define NVME_CSTS_SHST_SHIFT 2
#define NVME_CSTS_SHST_MASK (3u << NVME_CSTS_SHST_SHIFT)
#define NVME_CSTS_SHST_NORMAL 0u
#define NVME_CSTS_SHST_OCCURRING 1u
#define NVME_CSTS_SHST_COMPLETE 2u
#define NVME_CSTS_NSSRO (1u << 4)

/* AQA: admin SQ size in bits 11:0, admin CQ size in bits 27:16, 0's based. */
#define NVME_AQA_ASQS(aqa) ((aqa) & 0xfffu)
#define NVME_AQA_ACQS(aqa) (((aqa) >> 16) & 0xfffu)

/* ---- queue entries ---- */
#define NVME_SQE_SIZE 64
#define NVME_CQE_SIZE 16
#define NVME_SQES_LOG2 6
#define NVME_CQES_LOG2 4

/* Command dword 0: opcode, fused operation, PRP or SGL selector, command id. */
#define NVME_CMD_FUSE_MASK 0x03u
#define NVME_CMD_PSDT_SHIFT 6
#define NVME_CMD_PSDT_MASK (3u << NVME_CMD_PSDT_SHIFT)
#define NVME_PSDT_PRP 0u
#define NVME_PSDT_SGL_MPTR_CONTIG 1u /* SGL data, metadata pointer is an address */
#define NVME_PSDT_SGL_MPTR_SGL 2u

/* An SGL descriptor (16 bytes). */
struct nvme_sgl_desc {
	uint64_t addr;
	uint32_t length;
	uint8_t rsvd[3];
	uint8_t type; /* descriptor type in bits 7:4, subtype in bits 3:0 */
} __attribute__((packed));

#define NVME_SGL_TYPE_DATA_BLOCK 0x0
#define NVME_SGL_TYPE_BIT_BUCKET 0x1
#define NVME_SGL_TYPE_SEGMENT 0x2
#define NVME_SGL_TYPE_LAST_SEGMENT 0x3
#define NVME_SGL_TYPE_KEYED_DATA_BLOCK 0x4
#define NVME_SGL_SUBTYPE_ADDRESS 0x0
#define NVME_SGL_SUBTYPE_OFFSET 0x1

/* The 64-byte submission queue entry, common layout. */
struct nvme_sqe {
	uint8_t opcode;
	uint8_t flags; /* FUSE in 1:0, PSDT in 7:6 */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	union {
		struct {
			uint64_t prp1;
			uint64_t prp2;
		} prp;
		struct nvme_sgl_desc sgl;
	} dptr;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
} __attribute__((packed));

/* The 16-byte completion queue entry. */
struct nvme_cqe {
	uint32_t dw0; /* command specific */
	uint32_t dw1;
	uint16_t sqhd; /* SQ head pointer */
	uint16_t sqid;
	uint16_t cid;
	uint16_t status; /* phase tag in bit 0, status field in bits 15:1 */
} __attribute__((packed));

/* Status field (the CQE's status word shifted right by one). */
#define NVME_SC_SHIFT 0 /* status code, 8 bits */
#define NVME_SCT_SHIFT 8 /* status code type, 3 bits */
#define NVME_STATUS_MORE (1u << 13)
#define NVME_STATUS_DNR (1u << 14) /* do not retry */
#define NVME_STATUS(sct, sc) ((uint16_t)(((sct) << NVME_SCT_SHIFT) | (sc)))

#define NVME_SCT_GENERIC 0x0
#define NVME_SCT_CMD_SPECIFIC 0x1
#define NVME_SCT_MEDIA 0x2

/* Generic command status. */
#define NVME_SC_SUCCESS 0x00
#define NVME_SC_INVALID_OPCODE 0x01
#define NVME_SC_INVALID_FIELD 0x02
#define NVME_SC_CID_CONFLICT 0x03
#define NVME_SC_DATA_XFER_ERROR 0x04
#define NVME_SC_POWER_LOSS_ABORT 0x05
#define NVME_SC_INTERNAL 0x06
#define NVME_SC_ABORT_REQ 0x07
#define NVME_SC_ABORT_SQ_DELETED 0x08
#define NVME_SC_FUSED_FAIL 0x09
#define NVME_SC_FUSED_MISSING 0x0a
#define NVME_SC_INVALID_NS 0x0b
#define NVME_SC_CMD_SEQ_ERROR 0x0c
#define NVME_SC_INVALID_SGL_SEG_DESC 0x0d
#define NVME_SC_INVALID_NUM_SGL_DESC 0x0e
#define NVME_SC_DATA_SGL_LEN_INVALID 0x0f
#define NVME_SC_METADATA_SGL_LEN_INVALID 0x10
#define NVME_SC_SGL_DESC_TYPE_INVALID 0x11
#define NVME_SC_INVALID_PRP_OFFSET 0x13
#define NVME_SC_SGL_OFFSET_INVALID 0x16
#define NVME_SC_NS_NOT_READY 0x82
#define NVME_SC_LBA_RANGE 0x80 /* NVM command set: LBA out of range */
#define NVME_SC_CAP_EXCEEDED 0x81

/* Command specific status. */
#define NVME_SC_CQ_INVALID 0x00 /* completion queue invalid */
#define NVME_SC_QID_INVALID 0x01 /* invalid queue identifier */
#define NVME_SC_QUEUE_SIZE 0x02 /* invalid queue size */
#define NVME_SC_ABORT_LIMIT 0x03
#define NVME_SC_ASYNC_LIMIT 0x05 /* asynchronous event request limit exceeded */
#define NVME_SC_INVALID_LOG_PAGE 0x09
#define NVME_SC_INVALID_VECTOR 0x08 /* invalid interrupt vector */
#define NVME_SC_INVALID_QUEUE_DELETION 0x0c
#define NVME_SC_FEATURE_NOT_SAVEABLE 0x0d
#define NVME_SC_FEATURE_NOT_CHANGEABLE 0x0e
#define NVME_SC_ATTEMPTED_WRITE_TO_RO 0x82 /* NVM command set */
#define NVME_SC_CONFLICTING_ATTRS 0x80 /* NVM: conflicting attributes */

/* Media and data integrity errors. */
#define NVME_SC_WRITE_FAULT 0x80
#define NVME_SC_READ_ERROR 0x81
#define NVME_SC_COMPARE_FAILED 0x85
#define NVME_SC_ACCESS_DENIED 0x86

/* ---- admin opcodes ---- */
#define NVME_ADM_DELETE_SQ 0x00
#define NVME_ADM_CREATE_SQ 0x01
#define NVME_ADM_GET_LOG_PAGE 0x02
#define NVME_ADM_DELETE_CQ 0x04
#define NVME_ADM_CREATE_CQ 0x05
#define NVME_ADM_IDENTIFY 0x06
#define NVME_ADM_ABORT 0x08
#define NVME_ADM_SET_FEATURES 0x09
#define NVME_ADM_GET_FEATURES 0x0a
#define NVME_ADM_ASYNC_EVENT 0x0c
#define NVME_ADM_NS_MGMT 0x0d
#define NVME_ADM_KEEP_ALIVE 0x18
#define NVME_ADM_DBBUF_CONFIG 0x7c

/* Create I/O SQ/CQ: cdw10 = qsize (0's based) << 16 | qid. */
#define NVME_QUEUE_PC (1u << 0) /* physically contiguous */
#define NVME_CQ_IEN (1u << 1) /* cdw11: interrupts enabled */
#define NVME_CQ_IV_SHIFT 16 /* cdw11: interrupt vector */
#define NVME_SQ_QPRIO_SHIFT 1 /* cdw11: priority, 2 bits */
#define NVME_SQ_CQID_SHIFT 16 /* cdw11: completion queue id */

/* Identify CNS values (cdw10 bits 7:0; CSI in cdw11 bits 31:24). */
#define NVME_CNS_NS 0x00
#define NVME_CNS_CTRL 0x01
#define NVME_CNS_ACTIVE_NS_LIST 0x02
#define NVME_CNS_NS_DESC_LIST 0x03
#define NVME_CNS_CS_NS 0x05 /* I/O command set specific namespace */
#define NVME_CNS_CS_CTRL 0x06 /* I/O command set specific controller */
#define NVME_CNS_CS_ACTIVE_NS_LIST 0x07
#define NVME_CNS_IND_NS 0x08 /* I/O command set independent namespace */
#define NVME_CNS_CS_INDEX 0x1c /* I/O command set data structure */
#define NVME_CSI_NVM 0x00

#define NVME_IDENTIFY_SIZE 4096

/* Namespace identification descriptor types. */
#define NVME_NIDT_EUI64 0x1
#define NVME_NIDT_NGUID 0x2
#define NVME_NIDT_UUID 0x3
#define NVME_NIDT_CSI 0x4

/* Feature identifiers (cdw10 bits 7:0; SEL in bits 10:8 for Get). */
#define NVME_FEAT_ARBITRATION 0x01
#define NVME_FEAT_POWER_MGMT 0x02
#define NVME_FEAT_TEMP_THRESH 0x04
#define NVME_FEAT_ERR_RECOVERY 0x05
#define NVME_FEAT_VOLATILE_WC 0x06
#define NVME_FEAT_NUM_QUEUES 0x07
#define NVME_FEAT_IRQ_COALESCE 0x08
#define NVME_FEAT_IRQ_CONFIG 0x09
#define NVME_FEAT_WRITE_ATOMIC 0x0a
#define NVME_FEAT_ASYNC_EVENT 0x0b
#define NVME_FEAT_AUTO_PST 0x0c
#define NVME_FEAT_KATO 0x0f
#define NVME_FEAT_SAVE (1u << 31) /* Set Features cdw10: save */
#define NVME_FEAT_SEL_SHIFT 8
#define NVME_FEAT_SEL_CURRENT 0
#define NVME_FEAT_SEL_DEFAULT 1
#define NVME_FEAT_SEL_SAVED 2
#define NVME_FEAT_SEL_SUPPORTED 3

/* Interrupt vector configuration (cdw11): vector in 15:0, coalescing disable bit 16. */
#define NVME_IRQ_CONFIG_CD (1u << 16)

/* Asynchronous events: dw0 = log page << 16 | info << 8 | type. */
#define NVME_AER_TYPE_ERROR 0x0
#define NVME_AER_TYPE_SMART 0x1
#define NVME_AER_TYPE_NOTICE 0x2
#define NVME_AER_NOTICE_NS_CHANGED 0x00
#define NVME_AEN_CFG_NS_ATTR (1u << 8) /* async event config: namespace attribute notices */

/* Log page identifiers (cdw10 bits 7:0; NUMDL in 31:16, NUMDU in cdw11 15:0). */
#define NVME_LOG_ERROR 0x01
#define NVME_LOG_SMART 0x02
#define NVME_LOG_FW_SLOT 0x03
#define NVME_LOG_CHANGED_NS 0x04
#define NVME_LOG_CMD_EFFECTS 0x05
#define NVME_LOG_RAE (1u << 15) /* retain asynchronous event */

/* ---- NVM command set ---- */
#define NVME_CMD_FLUSH 0x00
#define NVME_CMD_WRITE 0x01
#define NVME_CMD_READ 0x02
#define NVME_CMD_WRITE_UNCOR 0x04
#define NVME_CMD_COMPARE 0x05
#define NVME_CMD_WRITE_ZEROES 0x08
#define NVME_CMD_DSM 0x09

/* Read/Write/Compare/Write Zeroes: SLBA in cdw10-11, NLB (0's based) in cdw12 15:0. */
#define NVME_RW_FUA (1u << 30)
#define NVME_RW_LR (1u << 31)
#define NVME_WZ_DEAC (1u << 25) /* write zeroes: deallocate */
/* Dataset management: NR (0's based) in cdw10 7:0, attributes in cdw11. */
#define NVME_DSM_AD (1u << 2) /* attribute: deallocate */
#define NVME_DSM_MAX_RANGES 256

struct nvme_dsm_range {
	uint32_t cattr;
	uint32_t nlb;
	uint64_t slba;
} __attribute__((packed));

/* ONCS (optional NVM commands supported) bits in Identify Controller. */
#define NVME_ONCS_COMPARE (1u << 0)
#define NVME_ONCS_WRITE_UNCOR (1u << 1)
#define NVME_ONCS_DSM (1u << 2)
#define NVME_ONCS_WRITE_ZEROES (1u << 3)
/* OACS (optional admin commands supported). */
#define NVME_OACS_NS_MGMT (1u << 3)
#define NVME_OACS_DBBUF (1u << 8)
/* LPA (log page attributes). */
#define NVME_LPA_CMD_EFFECTS (1u << 1)
#define NVME_LPA_EXT_DATA (1u << 2)
/* OAES: namespace attribute notices are sent. */
#define NVME_OAES_NS_ATTR (1u << 8)
/* SGLS: SGLs supported with no alignment rule (bits 1:0 = 01b). */
#define NVME_SGLS_SUPPORTED 0x1u
/* Commands Supported and Effects: command supported, LBC, NCC, NIC, CSE... */
#define NVME_CMD_EFFECTS_CSUPP (1u << 0)
#define NVME_CMD_EFFECTS_LBCC (1u << 1)

/* Identify Controller (4096 bytes). */
struct nvme_id_ctrl {
	uint16_t vid;
	uint16_t ssvid;
	char sn[20];
	char mn[40];
	char fr[8];
	uint8_t rab;
	uint8_t ieee[3];
	uint8_t cmic;
	uint8_t mdts; /* max transfer, 2^n minimum pages; 0: no limit */
	uint16_t cntlid;
	uint32_t ver;
	uint32_t rtd3r;
	uint32_t rtd3e;
	uint32_t oaes;
	uint32_t ctratt;
	uint16_t rrls;
	uint8_t rsvd102[9];
	uint8_t cntrltype; /* 1: I/O controller */
	uint8_t fguid[16];
	uint16_t crdt[3];
	uint8_t rsvd134[119];
	uint8_t nvmsr;
	uint8_t vwci;
	uint8_t mec;
	uint16_t oacs;
	uint8_t acl; /* abort command limit, 0's based */
	uint8_t aerl; /* async event request limit, 0's based */
	uint8_t frmw;
	uint8_t lpa;
	uint8_t elpe; /* error log page entries, 0's based */
	uint8_t npss;
	uint8_t avscc;
	uint8_t apsta;
	uint16_t wctemp;
	uint16_t cctemp;
	uint16_t mtfa;
	uint32_t hmpre;
	uint32_t hmmin;
	uint8_t tnvmcap[16];
	uint8_t unvmcap[16];
	uint32_t rpmbs;
	uint16_t edstt;
	uint8_t dsto;
	uint8_t fwug;
	uint16_t kas; /* keep alive granularity, 100 ms units; 0: not supported */
	uint16_t hctma;
	uint16_t mntmt;
	uint16_t mxtmt;
	uint32_t sanicap;
	uint32_t hmminds;
	uint16_t hmmaxd;
	uint16_t nsetidmax;
	uint16_t endgidmax;
	uint8_t anatt;
	uint8_t anacap;
	uint32_t anagrpmax;
	uint32_t nanagrpid;
	uint32_t pels;
	uint16_t domainid;
	uint8_t rsvd358[10];
	uint8_t megcap[16];
	uint8_t rsvd384[128];
	uint8_t sqes; /* max << 4 | required, log2 */
	uint8_t cqes;
	uint16_t maxcmd;
	uint32_t nn; /* number of namespaces (highest valid NSID) */
	uint16_t oncs;
	uint16_t fuses;
	uint8_t fna;
	uint8_t vwc; /* bit 0: volatile write cache present; 2:1 = 11b flush all ns ok */
	uint16_t awun;
	uint16_t awupf;
	uint8_t icsvscc;
	uint8_t nwpc;
	uint16_t acwu;
	uint16_t ocfs;
	uint32_t sgls;
	uint32_t mnan;
	uint8_t maxdna[16];
	uint32_t maxcna;
	uint8_t rsvd564[204];
	char subnqn[256];
	uint8_t rsvd1024[768];
	uint8_t nvmf[256];
	uint8_t psd[32][32]; /* power state descriptors */
	uint8_t vs[1024];
} __attribute__((packed));

/* Power state descriptor, first bytes: max power (centiwatts) in bytes 0-1. */

/* LBA format descriptor. */
struct nvme_lbaf {
	uint16_t ms; /* metadata bytes per block */
	uint8_t lbads; /* log2 of the block size */
	uint8_t rp; /* relative performance */
} __attribute__((packed));

/* Identify Namespace, NVM command set (4096 bytes). */
struct nvme_id_ns {
	uint64_t nsze;
	uint64_t ncap;
	uint64_t nuse;
	uint8_t nsfeat;
	uint8_t nlbaf; /* 0's based */
	uint8_t flbas;
	uint8_t mc;
	uint8_t dpc;
	uint8_t dps;
	uint8_t nmic;
	uint8_t rescap;
	uint8_t fpi;
	uint8_t dlfeat; /* bit 3: write zeroes deallocates; 2:0 = 001b reads zeroes */
	uint16_t nawun;
	uint16_t nawupf;
	uint16_t nacwu;
	uint16_t nabsn;
	uint16_t nabo;
	uint16_t nabspf;
	uint16_t noiob;
	uint8_t nvmcap[16];
	uint16_t npwg;
	uint16_t npwa;
	uint16_t npdg;
	uint16_t npda;
	uint16_t nows;
	uint16_t mssrl;
	uint32_t mcl;
	uint8_t msrc;
	uint8_t rsvd81;
	uint8_t nulbaf;
	uint8_t rsvd83[9];
	uint32_t anagrpid;
	uint8_t rsvd96[3];
	uint8_t nsattr; /* bit 0: write protected */
	uint16_t nvmsetid;
	uint16_t endgid;
	uint8_t nguid[16];
	uint8_t eui64[8];
	struct nvme_lbaf lbaf[64];
	uint8_t vs[3712];
} __attribute__((packed));

#define NVME_NSFEAT_THIN (1u << 0)
#define NVME_NSFEAT_DEALLOC_ERR (1u << 2)

/* Error information log entry (64 bytes). */
struct nvme_error_log {
	uint64_t error_count;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status; /* status field with the phase tag bit */
	uint16_t param_loc; /* byte in 7:0, bit in 10:8 */
	uint64_t lba;
	uint32_t nsid;
	uint8_t vs;
	uint8_t trtype;
	uint8_t rsvd30[2];
	uint64_t cs;
	uint16_t trtype_info;
	uint8_t rsvd42[22];
} __attribute__((packed));

/* SMART / health information log (512 bytes); 128-bit counters as byte arrays. */
struct nvme_smart_log {
	uint8_t critical_warning;
	uint16_t temperature; /* Kelvin */
	uint8_t avail_spare;
	uint8_t spare_thresh;
	uint8_t percent_used;
	uint8_t endgrp_crit_warn;
	uint8_t rsvd7[25];
	uint8_t data_units_read[16]; /* thousands of 512-byte units */
	uint8_t data_units_written[16];
	uint8_t host_reads[16];
	uint8_t host_writes[16];
	uint8_t ctrl_busy_time[16];
	uint8_t power_cycles[16];
	uint8_t power_on_hours[16];
	uint8_t unsafe_shutdowns[16];
	uint8_t media_errors[16];
	uint8_t num_err_log_entries[16];
	uint32_t warning_temp_time;
	uint32_t critical_comp_time;
	uint16_t temp_sensor[8];
	uint8_t rsvd216[296];
} __attribute__((packed));

/* Firmware slot information log (512 bytes). */
struct nvme_fw_slot_log {
	uint8_t afi; /* active slot in bits 2:0 */
	uint8_t rsvd1[7];
	char frs[7][8];
	uint8_t rsvd64[448];
} __attribute__((packed));

/* Changed namespace list: up to 1024 NSIDs; 0xffffffff first means "more". */
#define NVME_CHANGED_NS_MAX 1024

/* Commands supported and effects log (4096 bytes). */
struct nvme_cmd_effects_log {
	uint32_t acs[256];
	uint32_t iocs[256];
	uint8_t rsvd[2048];
} __attribute__((packed));

_Static_assert(sizeof(struct nvme_sqe) == NVME_SQE_SIZE, "SQE size");
_Static_assert(sizeof(struct nvme_cqe) == NVME_CQE_SIZE, "CQE size");
_Static_assert(sizeof(struct nvme_sgl_desc) == 16, "SGL descriptor size");
_Static_assert(offsetof(struct nvme_sqe, dptr) == 24, "SQE DPTR");
_Static_assert(offsetof(struct nvme_sqe, cdw10) == 40, "SQE CDW10");
_Static_assert(sizeof(struct nvme_id_ctrl) == 4096, "identify controller size");
_Static_assert(offsetof(struct nvme_id_ctrl, cntrltype) == 111, "CNTRLTYPE");
_Static_assert(offsetof(struct nvme_id_ctrl, oacs) == 256, "OACS");
_Static_assert(offsetof(struct nvme_id_ctrl, kas) == 320, "KAS");
_Static_assert(offsetof(struct nvme_id_ctrl, sqes) == 512, "SQES");
_Static_assert(offsetof(struct nvme_id_ctrl, sgls) == 536, "SGLS");
_Static_assert(offsetof(struct nvme_id_ctrl, subnqn) == 768, "SUBNQN");
_Static_assert(offsetof(struct nvme_id_ctrl, psd) == 2048, "PSD");
_Static_assert(sizeof(struct nvme_id_ns) == 4096, "identify namespace size");
_Static_assert(offsetof(struct nvme_id_ns, anagrpid) == 92, "ANAGRPID");
_Static_assert(offsetof(struct nvme_id_ns, nguid) == 104, "NGUID");
_Static_assert(offsetof(struct nvme_id_ns, lbaf) == 128, "LBAF");
_Static_assert(sizeof(struct nvme_error_log) == 64, "error log entry size");
_Static_assert(sizeof(struct nvme_smart_log) == 512, "SMART log size");
_Static_assert(offsetof(struct nvme_smart_log, data_units_read) == 32, "SMART DUR");
_Static_assert(offsetof(struct nvme_smart_log, warning_temp_time) == 192, "SMART WCTT");
_Static_assert(sizeof(struct nvme_fw_slot_log) == 512, "firmware slot log size");
_Static_assert(sizeof(struct nvme_cmd_effects_log) == 4096, "effects log size");

#endif
