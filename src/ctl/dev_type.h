/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device types the daemon can create. Each type lives in its own file
 * (type_*.c) and is listed once in dev_type.c; the daemon, the config file
 * and the RPC all create devices through this table.
 */
#ifndef UMDEV_CTL_DEV_TYPE_H
#define UMDEV_CTL_DEV_TYPE_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl_internal.h"
#include "umdev/loop.h"

struct json_object;

/* What a type's create() gets from the daemon. All borrowed. */
struct umdev_dev_ctx {
	const char *id; /* validated device id */
	const char *socket; /* transport socket path */
	umdev_loop *ctl; /* the control loop (everything here runs on it) */
	umdev_loop **loops; /* data-plane loops, rotated per device */
	unsigned num_loops;
	/*
	 * >= 0: serve this inherited, already-listening socket instead of
	 * creating @socket (then "fd:N"). Only given to types with
	 * .inherit_fd; the daemon keeps it and closes it after create(), so a
	 * type serves a dup() of it.
	 */
	int listen_fd;
};

struct umdev_dev_type {
	const char *name; /* "virtio-blk" */
	const char *transport; /* "vhost-user", "vfio-user" */
	const char *params; /* one-line parameter summary for help and `types` */
	bool inherit_fd; /* create() honours ctx->listen_fd (umdevd --fd) */
	/* Runtime methods call() implements, for `types` (NULL-terminated; may be NULL). */
	const char *const *methods;
	/*
	 * Build the device and start serving its socket. Reads its options from
	 * @kv with umdev_kv_get() & co. and must call umdev_kv_check_unused()
	 * before creating anything. On failure: -errno, @msg says why, nothing
	 * is left behind (no socket file, thread or fd).
	 */
	int (*create)(const struct umdev_dev_ctx *ctx, struct umdev_kv *kv, void **inst,
		      char *msg, size_t msglen);
	/* Stop serving: drain in-flight I/O, flush, remove the socket, free. */
	void (*destroy)(void *inst);
	/* A client (front-end) is connected. May be NULL. */
	bool (*connected)(void *inst);
	/*
	 * Type-specific runtime methods for the RPC and umdevctl ("lun-add",
	 * "ns-remove", ...). @params is the JSON-RPC params object (borrowed);
	 * on success *@result may be set to a new JSON value (caller owns it).
	 * -ENOENT: no such method for this type. Other -errno: @msg says why.
	 * May be NULL (no methods). Runs on the control loop.
	 *
	 * Every method the RPC does not know itself is routed here, to the
	 * device named by params "id". The params umdevctl sends (docs/rpc.md):
	 *   lun-add    {"id": "scsi0", "lun": "0:2", "backend": "file:/img", k: v...}
	 *   lun-remove {"id": "scsi0", "lun": "0:2"}
	 *   ns-add     {"id": "nvme0", "backend": "file:/img", k: v...}
	 *   ns-remove  {"id": "nvme0", "nsid": 2}
	 * (k: v are extra key=value words, as strings.) The errno picks the
	 * JSON-RPC error: -ENOENT for a method means "unsupported"; use
	 * -ENODEV for "no such LUN/namespace", -EEXIST, -EBUSY, -EINVAL.
	 */
	int (*call)(void *inst, const char *method, struct json_object *params,
		    struct json_object **result, char *msg, size_t msglen);
	/* Statistics as a new JSON object (caller owns it). May be NULL. */
	struct json_object *(*stats)(void *inst);
	/*
	 * For `save`: update @config (the options the device was created
	 * with, {"type": ..., "id": ..., key: value or [values]}) with what
	 * changed at runtime, e.g. LUNs added since. May be NULL.
	 */
	void (*save)(void *inst, struct json_object *config);
	/* The transport this instance serves on, when a type has several. May be NULL (.transport). */
	const char *(*transport_of)(void *inst);
	/* The device serves no socket itself (a parent of virtual devices). */
	bool no_socket;
	/*
	 * How many more instances can be made now, when that depends on more
	 * than the daemon's device limit (virtual devices of a parent, as mdev's
	 * available_instances). May be NULL.
	 */
	unsigned (*available)(void);
};

/* NULL-terminated list of every type. */
extern const struct umdev_dev_type *const umdev_dev_types[];
const struct umdev_dev_type *umdev_dev_type_find(const char *name);

struct umdev_virtio_dev;
/*
 * umdev_ctl_virtio_stats() - per-device and per-queue statistics of a
 * virtio device run by the queue runner, for a type's stats op (new object
 * or NULL). Control thread.
 */
struct json_object *umdev_ctl_virtio_stats(struct umdev_virtio_dev *vdev);

/*
 * The transport of a virtio device type (virtio_transport.c): transport=
 * vhost-user (default) or vfio-user (a virtio-pci function). Embedded in
 * the type's instance; zeroed before parse.
 */
typedef struct umdev_vu_server umdev_vu_server;
typedef struct umdev_vfu_server umdev_vfu_server;
typedef struct umdev_vpci umdev_vpci;
struct umdev_ctl_vt {
	bool vfio_user;
	umdev_vu_server *vu;
	umdev_vpci *vp;
	umdev_vfu_server *vfu;
};
#define UMDEV_CTL_VT_PARAMS "[,transport=vhost-user|vfio-user]"
/* Read transport= from @kv (before umdev_kv_check_unused). */
int umdev_ctl_vt_parse(struct umdev_ctl_vt *t, struct umdev_kv *kv, char *msg, size_t msglen);
/* Serve @vdev on ctx's socket (or inherited fd). On failure nothing is left. */
int umdev_ctl_vt_start(struct umdev_ctl_vt *t, struct umdev_virtio_dev *vdev,
		       const struct umdev_dev_ctx *ctx, char *msg, size_t msglen);
/* Drop the client and stop every queue (drains in-flight I/O). Idempotent. */
void umdev_ctl_vt_stop(struct umdev_ctl_vt *t);
bool umdev_ctl_vt_connected(const struct umdev_ctl_vt *t);
const char *umdev_ctl_vt_name(const struct umdev_ctl_vt *t);

#endif
