/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef UMDEV_CTL_INTERNAL_H
#define UMDEV_CTL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "umdev/ctl.h"

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

int umdev_daemon_add_kv(umdev_daemon *d, struct umdev_kv *kv, char *msg, size_t msglen);

#endif
