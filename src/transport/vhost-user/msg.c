/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Validation of vhost-user messages before any handler sees them: payload
 * sizes and fd counts come from the front-end and are checked here once.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "umdev/proto/vhost_user.h"
#include "umdev/vhost_user.h"

static const char *const names[VHOST_USER_MAX_REQUEST] = {
	[VHOST_USER_GET_FEATURES] = "GET_FEATURES",
	[VHOST_USER_SET_FEATURES] = "SET_FEATURES",
	[VHOST_USER_SET_OWNER] = "SET_OWNER",
	[VHOST_USER_RESET_OWNER] = "RESET_OWNER",
	[VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
	[VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
	[VHOST_USER_SET_LOG_FD] = "SET_LOG_FD",
	[VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
	[VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
	[VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
	[VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
	[VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
	[VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
	[VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
	[VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[VHOST_USER_SEND_RARP] = "SEND_RARP",
	[VHOST_USER_NET_SET_MTU] = "NET_SET_MTU",
	[VHOST_USER_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
	[VHOST_USER_IOTLB_MSG] = "IOTLB_MSG",
	[VHOST_USER_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
	[VHOST_USER_GET_CONFIG] = "GET_CONFIG",
	[VHOST_USER_SET_CONFIG] = "SET_CONFIG",
	[VHOST_USER_CREATE_CRYPTO_SESSION] = "CREATE_CRYPTO_SESSION",
	[VHOST_USER_CLOSE_CRYPTO_SESSION] = "CLOSE_CRYPTO_SESSION",
	[VHOST_USER_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
	[VHOST_USER_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
	[VHOST_USER_POSTCOPY_END] = "POSTCOPY_END",
	[VHOST_USER_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
	[VHOST_USER_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
	[VHOST_USER_GPU_SET_SOCKET] = "GPU_SET_SOCKET",
	[VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
	[VHOST_USER_VRING_KICK] = "VRING_KICK",
	[VHOST_USER_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
	[VHOST_USER_ADD_MEM_REG] = "ADD_MEM_REG",
	[VHOST_USER_REM_MEM_REG] = "REM_MEM_REG",
	[VHOST_USER_SET_STATUS] = "SET_STATUS",
	[VHOST_USER_GET_STATUS] = "GET_STATUS",
};

const char *umdev_vu_request_name(unsigned request)
{
	if (request < VHOST_USER_MAX_REQUEST && names[request])
		return names[request];
	return "UNKNOWN";
}

enum fds_rule {
	FDS_NONE, /* no fd */
	FDS_ONE, /* exactly one */
	FDS_VRING, /* one unless the u64 carries VHOST_USER_VRING_NOFD */
	FDS_MEM_TABLE, /* one per region (checked by the handler with nregions) */
	FDS_OPTIONAL, /* zero or one (QEMU sends the region's fd with REM_MEM_REG) */
};

struct rule {
	bool supported; /* requests we never advertise have no rule */
	unsigned min, max; /* payload size bounds */
	enum fds_rule fds;
};

#define U64 sizeof(uint64_t)
#define STATE sizeof(struct vhost_user_vring_state)

static const struct rule rules[VHOST_USER_MAX_REQUEST] = {
	[VHOST_USER_GET_FEATURES] = { true, 0, 0, FDS_NONE },
	[VHOST_USER_SET_FEATURES] = { true, U64, U64, FDS_NONE },
	[VHOST_USER_SET_OWNER] = { true, 0, 0, FDS_NONE },
	[VHOST_USER_RESET_OWNER] = { true, 0, 0, FDS_NONE },
	[VHOST_USER_SET_MEM_TABLE] = { true, 8 + sizeof(struct vhost_user_mem_region),
				       sizeof(struct vhost_user_mem_table), FDS_MEM_TABLE },
	/* Size and fds are checked by the handler, which always replies. */
	[VHOST_USER_SET_LOG_BASE] = { true, U64, sizeof(struct vhost_user_log), FDS_OPTIONAL },
	[VHOST_USER_SET_VRING_NUM] = { true, STATE, STATE, FDS_NONE },
	[VHOST_USER_SET_VRING_ADDR] = { true, sizeof(struct vhost_user_vring_addr),
					sizeof(struct vhost_user_vring_addr), FDS_NONE },
	[VHOST_USER_SET_VRING_BASE] = { true, STATE, STATE, FDS_NONE },
	[VHOST_USER_GET_VRING_BASE] = { true, STATE, STATE, FDS_NONE },
	[VHOST_USER_SET_VRING_KICK] = { true, U64, U64, FDS_VRING },
	[VHOST_USER_SET_VRING_CALL] = { true, U64, U64, FDS_VRING },
	[VHOST_USER_SET_VRING_ERR] = { true, U64, U64, FDS_VRING },
	[VHOST_USER_GET_PROTOCOL_FEATURES] = { true, 0, 0, FDS_NONE },
	[VHOST_USER_SET_PROTOCOL_FEATURES] = { true, U64, U64, FDS_NONE },
	[VHOST_USER_GET_QUEUE_NUM] = { true, 0, 0, FDS_NONE },
	[VHOST_USER_SET_VRING_ENABLE] = { true, STATE, STATE, FDS_NONE },
	[VHOST_USER_GET_CONFIG] = { true, VHOST_USER_CONFIG_HDR_SIZE, sizeof(struct vhost_user_config),
				    FDS_NONE },
	[VHOST_USER_SET_CONFIG] = { true, VHOST_USER_CONFIG_HDR_SIZE, sizeof(struct vhost_user_config),
				    FDS_NONE },
	[VHOST_USER_GET_INFLIGHT_FD] = { true, VHOST_USER_INFLIGHT_MIN_SIZE,
					 sizeof(struct vhost_user_inflight), FDS_NONE },
	[VHOST_USER_SET_INFLIGHT_FD] = { true, VHOST_USER_INFLIGHT_MIN_SIZE,
					 sizeof(struct vhost_user_inflight), FDS_ONE },
	[VHOST_USER_RESET_DEVICE] = { true, 0, 0, FDS_NONE },
	[VHOST_USER_GET_MAX_MEM_SLOTS] = { true, 0, 0, FDS_NONE },
	[VHOST_USER_ADD_MEM_REG] = { true, sizeof(struct vhost_user_mem_reg),
				     sizeof(struct vhost_user_mem_reg), FDS_ONE },
	[VHOST_USER_REM_MEM_REG] = { true, sizeof(struct vhost_user_mem_reg),
				     sizeof(struct vhost_user_mem_reg), FDS_OPTIONAL },
	[VHOST_USER_SET_STATUS] = { true, U64, U64, FDS_NONE },
	[VHOST_USER_GET_STATUS] = { true, 0, 0, FDS_NONE },
	/* Offered only to devices whose config changes (offered_protocol()). */
	[VHOST_USER_SET_BACKEND_REQ_FD] = { true, 0, U64, FDS_ONE },
};

int umdev_vu_msg_check(unsigned request, unsigned size, unsigned nfds, uint64_t u64,
		       const char **why)
{
	const struct rule *r;

	if (request >= VHOST_USER_MAX_REQUEST || !names[request]) {
		*why = "unknown request";
		return -EOPNOTSUPP;
	}
	r = &rules[request];
	if (!r->supported) {
		*why = "request not supported by this back-end";
		return -EOPNOTSUPP;
	}
	if (size < r->min || size > r->max) {
		*why = "payload size does not match the request";
		return -EINVAL;
	}
	switch (r->fds) {
	case FDS_NONE:
		if (nfds) {
			*why = "unexpected file descriptors";
			return -EINVAL;
		}
		break;
	case FDS_ONE:
		if (nfds != 1) {
			*why = "expected exactly one file descriptor";
			return -EINVAL;
		}
		break;
	case FDS_VRING:
		if (u64 & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD)) {
			*why = "reserved bits set in ring index";
			return -EINVAL;
		}
		if (nfds != ((u64 & VHOST_USER_VRING_NOFD) ? 0u : 1u)) {
			*why = "file descriptor count does not match the no-fd flag";
			return -EINVAL;
		}
		break;
	case FDS_OPTIONAL:
		if (nfds > 1) {
			*why = "more than one file descriptor";
			return -EINVAL;
		}
		break;
	case FDS_MEM_TABLE:
		if (nfds < 1 || nfds > VHOST_USER_MAX_MEM_REGIONS) {
			*why = "bad file descriptor count for a memory table";
			return -EINVAL;
		}
		break;
	}
	return 0;
}
