/* SPDX-License-Identifier: BSD-3-Clause */
/* "TYPE,key=value,..." device specs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_internal.h"

void umdev_kv_free(struct umdev_kv *kv)
{
	for (unsigned i = 0; i < kv->n; i++) {
		free(kv->key[i]);
		free(kv->val[i]);
	}
	free(kv->type);
	memset(kv, 0, sizeof(*kv));
}

int umdev_kv_add(struct umdev_kv *kv, const char *key, size_t klen, const char *val,
		 char *msg, size_t msglen)
{
	if (kv->n == UMDEV_KV_MAX) {
		snprintf(msg, msglen, "too many options (at most %d)", UMDEV_KV_MAX);
		return -E2BIG;
	}
	for (unsigned i = 0; i < kv->n; i++) {
		if (strlen(kv->key[i]) == klen && !strncmp(kv->key[i], key, klen) &&
		    strcmp(kv->key[i], "lun") && strcmp(kv->key[i], "ns")) {
			snprintf(msg, msglen, "option '%.*s' given twice", (int)klen, key);
			return -EINVAL;
		}
	}
	kv->key[kv->n] = strndup(key, klen);
	kv->val[kv->n] = strdup(val);
	if (!kv->key[kv->n] || !kv->val[kv->n]) {
		free(kv->key[kv->n]);
		free(kv->val[kv->n]);
		return -ENOMEM;
	}
	kv->used[kv->n] = false;
	kv->n++;
	return 0;
}

int umdev_kv_parse(const char *spec, struct umdev_kv *kv, char *msg, size_t msglen)
{
	char *copy = strdup(spec), *save = NULL, *tok;
	int ret = 0;

	memset(kv, 0, sizeof(*kv));
	if (!copy)
		return -ENOMEM;
	tok = strtok_r(copy, ",", &save);
	if (!tok || strchr(tok, '=')) {
		snprintf(msg, msglen, "device spec must start with its type, e.g. virtio-blk,id=...");
		ret = -EINVAL;
		goto out;
	}
	kv->type = strdup(tok);
	if (!kv->type) {
		ret = -ENOMEM;
		goto out;
	}
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok) {
			snprintf(msg, msglen, "'%s' is not key=value", tok);
			ret = -EINVAL;
			goto out;
		}
		ret = umdev_kv_add(kv, tok, eq - tok, eq + 1, msg, msglen);
		if (ret < 0)
			goto out;
	}
out:
	free(copy);
	if (ret < 0)
		umdev_kv_free(kv);
	return ret;
}

const char *umdev_kv_get(struct umdev_kv *kv, const char *key)
{
	for (unsigned i = 0; i < kv->n; i++) {
		if (!strcmp(kv->key[i], key)) {
			kv->used[i] = true;
			return kv->val[i];
		}
	}
	return NULL;
}

int umdev_kv_bool(struct umdev_kv *kv, const char *key, bool def, bool *out, char *msg,
		  size_t msglen)
{
	const char *v = umdev_kv_get(kv, key);

	if (!v) {
		*out = def;
		return 0;
	}
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = false;
	else {
		snprintf(msg, msglen, "%s=%s: expected on or off", key, v);
		return -EINVAL;
	}
	return 0;
}

int umdev_kv_uint(struct umdev_kv *kv, const char *key, unsigned long def, unsigned long min,
		  unsigned long max, unsigned long *out, char *msg, size_t msglen)
{
	const char *v = umdev_kv_get(kv, key);
	char *end;

	if (!v) {
		*out = def;
		return 0;
	}
	errno = 0;
	*out = strtoul(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || *out < min || *out > max) {
		snprintf(msg, msglen, "%s=%s: expected a number from %lu to %lu", key, v, min, max);
		return -EINVAL;
	}
	return 0;
}

int umdev_kv_check_unused(const struct umdev_kv *kv, char *msg, size_t msglen)
{
	for (unsigned i = 0; i < kv->n; i++) {
		if (!kv->used[i]) {
			snprintf(msg, msglen, "unknown option '%s' for %s", kv->key[i], kv->type);
			return -EINVAL;
		}
	}
	return 0;
}
