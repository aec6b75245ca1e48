/* SPDX-License-Identifier: BSD-3-Clause */
/* Config files: JSON (json-c) or one device spec per line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ctl_internal.h"

static int kv_add_json_value(struct umdev_kv *kv, const char *key, struct json_object *val,
			     char *msg, size_t msglen)
{
	const char *s;

	if (json_object_is_type(val, json_type_boolean))
		s = json_object_get_boolean(val) ? "on" : "off";
	else if (json_object_is_type(val, json_type_int) ||
		 json_object_is_type(val, json_type_string))
		s = json_object_get_string(val);
	else {
		snprintf(msg, msglen, "%s: expected a string, number or boolean", key);
		return -EINVAL;
	}
	return umdev_kv_add(kv, key, strlen(key), s, msg, msglen);
}

int umdev_kv_from_json(struct json_object *o, struct umdev_kv *kv, char *msg, size_t msglen)
{
	struct json_object *type;
	int ret = 0;

	memset(kv, 0, sizeof(*kv));
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "type", &type) ||
	    !json_object_is_type(type, json_type_string)) {
		snprintf(msg, msglen, "an object with a \"type\" string is required");
		return -EINVAL;
	}
	kv->type = strdup(json_object_get_string(type));
	if (!kv->type)
		return -ENOMEM;
	json_object_object_foreach(o, key, val) {
		if (!strcmp(key, "type"))
			continue;
		/* Repeatable options (lun=, ns=) are arrays in JSON. */
		if (json_object_is_type(val, json_type_array)) {
			size_t n = json_object_array_length(val);

			if (n == 0) {
				snprintf(msg, msglen, "%s: an empty list", key);
				ret = -EINVAL;
			}
			for (size_t i = 0; i < n && ret == 0; i++) {
				struct json_object *el = json_object_array_get_idx(val, i);

				if (json_object_is_type(el, json_type_array))
					el = NULL; /* no nesting: refused below */
				ret = el ? kv_add_json_value(kv, key, el, msg, msglen) : -EINVAL;
				if (!el)
					snprintf(msg, msglen, "%s: lists cannot nest", key);
			}
		} else {
			ret = kv_add_json_value(kv, key, val, msg, msglen);
		}
		if (ret < 0)
			break;
	}
	if (ret < 0)
		umdev_kv_free(kv);
	return ret;
}

struct json_object *umdev_kv_to_json(const struct umdev_kv *kv)
{
	struct json_object *o = json_object_new_object(), *prev;

	if (!o)
		return NULL;
	json_object_object_add(o, "type", json_object_new_string(kv->type));
	for (unsigned i = 0; i < kv->n; i++) {
		struct json_object *v = json_object_new_string(kv->val[i]);

		if (!json_object_object_get_ex(o, kv->key[i], &prev)) {
			json_object_object_add(o, kv->key[i], v);
			continue;
		}
		/* A repeated key (lun=, ns=): keep them all, in order, as a list. */
		if (!json_object_is_type(prev, json_type_array)) {
			struct json_object *arr = json_object_new_array();

			json_object_array_add(arr, json_object_get(prev));
			json_object_object_add(o, kv->key[i], arr);
			prev = arr;
		}
		json_object_array_add(prev, v);
	}
	return o;
}

static int add_json_device(umdev_daemon *d, struct json_object *o, unsigned idx, char *msg,
			   size_t msglen)
{
	struct umdev_kv kv;
	char sub[400] = "out of memory";
	int ret = umdev_kv_from_json(o, &kv, sub, sizeof(sub));

	if (ret == 0) {
		ret = umdev_daemon_add_kv(d, &kv, -1, sub, sizeof(sub));
		umdev_kv_free(&kv);
	}
	if (ret < 0)
		snprintf(msg, msglen, "devices[%u]: %s", idx, sub);
	return ret;
}

static int load_json(umdev_daemon *d, const char *path, char *msg, size_t msglen)
{
	struct json_object *root = json_object_from_file(path), *devs;
	int ret = 0;

	if (!root) {
		snprintf(msg, msglen, "%s: not valid JSON: %s", path, json_util_get_last_err());
		return -EINVAL;
	}
	if (!json_object_object_get_ex(root, "devices", &devs) ||
	    !json_object_is_type(devs, json_type_array)) {
		snprintf(msg, msglen, "%s: expected {\"devices\": [ ... ]}", path);
		json_object_put(root);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(devs) && ret == 0; i++)
		ret = add_json_device(d, json_object_array_get_idx(devs, i), i, msg, msglen);
	json_object_put(root);
	return ret;
}

static int load_lines(umdev_daemon *d, FILE *f, const char *path, char *msg, size_t msglen)
{
	char *line = NULL, sub[400] = "out of memory";
	size_t cap = 0;
	unsigned lineno = 0;
	int ret = 0;

	while (ret == 0 && getline(&line, &cap, f) >= 0) {
		char *p = line, *end;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strlen(p);
		while (end > p && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t' ||
				   end[-1] == '\r'))
			*--end = '\0';
		if (!*p || *p == '#')
			continue;
		ret = umdev_daemon_add_device(d, p, sub, sizeof(sub));
		if (ret < 0)
			snprintf(msg, msglen, "%s:%u: %s", path, lineno, sub);
	}
	free(line);
	return ret;
}

int umdev_daemon_load_config(umdev_daemon *d, const char *path, char *msg, size_t msglen)
{
	FILE *f = fopen(path, "r");
	int c, ret;

	if (!f) {
		ret = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return ret;
	}
	do
		c = fgetc(f);
	while (c == ' ' || c == '\n' || c == '\t' || c == '\r');
	if (c == '{') {
		fclose(f);
		return load_json(d, path, msg, msglen);
	}
	rewind(f);
	ret = load_lines(d, f, path, msg, msglen);
	fclose(f);
	return ret;
}
