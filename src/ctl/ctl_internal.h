/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef UMDEV_CTL_INTERNAL_H
#define UMDEV_CTL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "umdev/ctl.h"
#include "umdev/loop.h"

#define UMDEV_KV_MAX 64

/* A parsed device spec: type plus key=value options. */
struct umdev_kv {
	char *type;
	unsigned n;
	char *key[UMDEV_KV_MAX];
	char *val[UMDEV_KV_MAX];
	bool used[UMDEV_KV_MAX]; /* read by a getter; unread keys are unknown options */
};

int umdev_kv_parse(const char *spec, struct umdev_kv *kv, char *msg, size_t msglen);
int umdev_kv_add(struct umdev_kv *kv, const char *key, size_t klen, const char *val, char *msg,
		 size_t msglen);
void umdev_kv_free(struct umdev_kv *kv);
const char *umdev_kv_get(struct umdev_kv *kv, const char *key);
int umdev_kv_bool(struct umdev_kv *kv, const char *key, bool def, bool *out, char *msg,
		  size_t msglen);
int umdev_kv_uint(struct umdev_kv *kv, const char *key, unsigned long def, unsigned long min,
		  unsigned long max, unsigned long *out, char *msg, size_t msglen);
int umdev_kv_check_unused(const struct umdev_kv *kv, char *msg, size_t msglen);

struct json_object;
struct umdev_dev_type;


/*
 * A parsed JSON device description ({"type": ..., "id": ..., key: value});
 * arrays of strings become repeated keys (lun=..., ns=...).
 */
int umdev_kv_from_json(struct json_object *o, struct umdev_kv *kv, char *msg, size_t msglen);
/* The reverse, for `save`: a new object, or NULL without memory. */
struct json_object *umdev_kv_to_json(const struct umdev_kv *kv);

/*
 * umdev_daemon_add_kv() - create a device. @listen_fd >= 0: serve that
 * inherited listening socket (--fd); it is closed on failure.
 */
int umdev_daemon_add_kv(umdev_daemon *d, struct umdev_kv *kv, int listen_fd, char *msg,
			size_t msglen);

#define UMDEV_MAX_DP_THREADS 8
#define UMDEV_DEFAULT_MAX_DEVICES 256

struct umdev_dev_entry {
	struct umdev_dev_entry *next;
	char *id;
	char *socket;
	const struct umdev_dev_type *type;
	void *inst;
	umdev_loop **loops; /* the pool, rotated so devices spread their queue 0s */
	struct json_object *config; /* the options it was created with, for `save` */
	unsigned long seq; /* creation order */
};

struct umdev_rpc;

struct umdev_daemon {
	umdev_loop *ctl;
	umdev_loop *dp[UMDEV_MAX_DP_THREADS];
	unsigned ndp;
	unsigned next_rot;
	unsigned max_devices;
	unsigned long next_seq;
	struct umdev_dev_entry *devs; /* newest first */
	int sig_fd;
	struct umdev_rpc *rpc;
	bool guard; /* installed the SIGBUS guard (umdev_mem_guard_init) */
};

struct umdev_dev_entry *umdev_daemon_find(umdev_daemon *d, const char *id);
/* -ENOENT: no such device; -EBUSY: a client is connected and !@force. */
int umdev_daemon_remove(umdev_daemon *d, const char *id, bool force, char *msg, size_t msglen);

/* rpc.c: the control socket on the control loop. */
int umdev_rpc_new(umdev_daemon *d, const char *path, int listen_fd, struct umdev_rpc **out,
		  char *msg, size_t msglen);
void umdev_rpc_free(struct umdev_rpc *r);

/* rpc_methods.c: one request's method, run on the control loop. */
struct umdev_rpc_error {
	int code; /* JSON-RPC error code */
	int err; /* errno behind it (positive), 0 if none */
	char msg[512];
};
/*
 * Run @method with @params (an object, or NULL when absent). Returns the
 * result (new reference) or NULL with @e filled in.
 */
struct json_object *umdev_rpc_dispatch(umdev_daemon *d, const char *method,
				       struct json_object *params, struct umdev_rpc_error *e);

/* JSON-RPC error codes beyond the standard ones (-32700 .. -32600). */
#define UMDEV_RPC_PARSE_ERROR -32700
#define UMDEV_RPC_INVALID_REQUEST -32600
#define UMDEV_RPC_METHOD_NOT_FOUND -32601
#define UMDEV_RPC_INVALID_PARAMS -32602
#define UMDEV_RPC_INTERNAL -32603
#define UMDEV_RPC_FAILED -32000 /* the operation failed; message says why */
#define UMDEV_RPC_NO_DEVICE -32001
#define UMDEV_RPC_EXISTS -32002 /* id or socket already taken */
#define UMDEV_RPC_BUSY -32003 /* a client is connected */
#define UMDEV_RPC_LIMIT -32004 /* device limit reached */

#endif
