/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevctl: the command line for umdevd's JSON-RPC control socket
 * (docs/rpc.md, umdevctl(8)). One request per run; human-readable output,
 * or the JSON result with --json for scripts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "umdev/ctl.h"

#define MAX_REPLY (64u << 20)

static const char *rpc_path;
static bool opt_json;
static bool opt_force;
static int opt_timeout = 60;

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: umdevctl [OPTIONS] COMMAND [ARGS] [OPTIONS]\n"
		"Manage the devices of a running umdevd.\n\n"
		"Commands:\n"
		"  types                          device types, their parameters, how many more\n"
		"  list [ID]                      devices, socket, transport, client connected\n"
		"  create TYPE key=value...       create a device, e.g.\n"
		"                                 create virtio-blk id=blk3 socket=/run/b3.sock "
		"backend=file:/img\n"
		"  remove [--force] ID            remove a device; refused while a client is\n"
		"                                 connected unless --force (the VM loses it)\n"
		"  lun-add ID T:L BACKEND [k=v]   add a LUN to a virtio-scsi device\n"
		"  lun-remove ID T:L              remove it\n"
		"  lun-list ID                    the LUNs of a virtio-scsi device\n"
		"  ns-add ID BACKEND [k=v...]     add a namespace to an NVMe controller\n"
		"  ns-remove ID NSID              remove it\n"
		"  stats [ID]                     requests, bytes, errors, latency, queue depth\n"
		"  save [FILE]                    the running devices as a config file for\n"
		"                                 umdevd --config (stdout without FILE)\n"
		"  call METHOD [JSON|k=v...]      any method, raw params\n"
		"  version                        the daemon's version and methods\n\n"
		"Options:\n"
		"  --rpc PATH      control socket (default $XDG_RUNTIME_DIR/umdev/umdevd.sock,\n"
		"                  else /run/umdev/umdevd.sock)\n"
		"  --json          print the JSON result instead of text\n"
		"  --timeout SEC   give up waiting for an answer after SEC seconds (default 60)\n"
		"  --force, -f     with remove: remove even while a client is connected\n\n"
		"Options may come before or after the command and its arguments; \"--\" ends\n"
		"them, so that a word after it may begin with '-' (remove -- -odd-id).\n");
}

static int die_usage(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0)));

static int die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "umdevctl: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	fprintf(stderr, fmt, arg);
#pragma GCC diagnostic pop
	fprintf(stderr, "\n(umdevctl --help for usage)\n");
	return 2;
}

static int rpc_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = opt_timeout };
	int fd;

	if (strlen(rpc_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "umdevctl: %s: path too long\n", rpc_path);
		return -1;
	}
	memcpy(sa.sun_path, rpc_path, strlen(rpc_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "umdevctl: cannot connect to umdevd at %s: %s\n", rpc_path,
			strerror(errno));
		if (errno == ENOENT || errno == ECONNREFUSED)
			fprintf(stderr, "umdevctl: is umdevd running? (--rpc PATH chooses the "
					"socket)\n");
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/*
 * Send one request and wait for its answer. Returns the result (new
 * reference), or NULL after printing the error; *@code gets the JSON-RPC
 * error code (0 for transport errors).
 */
static struct json_object *rpc_call(const char *method, struct json_object *params, int *code)
{
	struct json_object *req = json_object_new_object(), *resp = NULL, *v, *err;
	struct json_tokener *tok = json_tokener_new();
	const char *text;
	size_t len, off = 0, total = 0;
	int fd = rpc_connect();

	*code = 0;
	json_object_object_add(req, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(req, "method", json_object_new_string(method));
	if (params)
		json_object_object_add(req, "params", json_object_get(params));
	json_object_object_add(req, "id", json_object_new_int(1));
	if (fd < 0 || !tok)
		goto out;
	text = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
	while (off < len) {
		ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "umdevctl: sending to umdevd: %s\n", strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		fprintf(stderr, "umdevctl: sending to umdevd: %s\n", strerror(errno));
		goto out;
	}
	while (!resp) {
		char buf[65536];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "umdevctl: %s\n",
				n == 0 ? "umdevd closed the connection without answering" :
				errno == EAGAIN ? "no answer from umdevd (timed out)" :
						  strerror(errno));
			goto out;
		}
		total += (size_t)n;
		resp = json_tokener_parse_ex(tok, buf, (int)n);
		if (!resp && (json_tokener_get_error(tok) != json_tokener_continue ||
			      total > MAX_REPLY)) {
			fprintf(stderr, "umdevctl: umdevd answered something that is not JSON\n");
			goto out;
		}
	}
	if (json_object_object_get_ex(resp, "error", &err)) {
		struct json_object *m;

		if (json_object_object_get_ex(err, "code", &v))
			*code = json_object_get_int(v);
		if (opt_json)
			printf("%s\n", json_object_to_json_string_ext(err, JSON_C_TO_STRING_PRETTY |
									   JSON_C_TO_STRING_SPACED));
		fprintf(stderr, "umdevctl: %s\n",
			json_object_object_get_ex(err, "message", &m) ? json_object_get_string(m) :
									 "error");
		json_object_put(resp);
		resp = NULL;
		if (!*code)
			*code = -1;
		goto out;
	}
	if (!json_object_object_get_ex(resp, "result", &v)) {
		fprintf(stderr, "umdevctl: umdevd answered without a result\n");
		json_object_put(resp);
		resp = NULL;
		goto out;
	}
	v = json_object_get(v);
	json_object_put(resp);
	resp = v;
out:
	if (fd >= 0)
		close(fd);
	if (tok)
		json_tokener_free(tok);
	json_object_put(req);
	return resp;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
}

static int64_t jint(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static struct json_object *jget(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static void print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_SPACED |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Elements in @a; 0 when it is missing or not an array (json-c asserts on those). */
static size_t arr_len(struct json_object *a)
{
	return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static void show_types(struct json_object *r)
{
	struct json_object *types = jget(r, "types");

	printf("%-14s %-11s %9s %9s  %s\n", "TYPE", "TRANSPORT", "INSTANCES", "AVAILABLE",
	       "METHODS");
	for (size_t i = 0; i < arr_len(types); i++) {
		struct json_object *t = json_object_array_get_idx(types, i), *m = jget(t, "methods");
		char methods[256] = "-";
		size_t n = 0;

		for (size_t k = 0; k < arr_len(m) && n < sizeof(methods); k++)
			n += (size_t)snprintf(methods + n, sizeof(methods) - n, "%s%s", k ? "," : "",
					      json_object_get_string(json_object_array_get_idx(m, k)));
		printf("%-14s %-11s %9" PRId64 " %9" PRId64 "  %s\n", jstr(t, "name"),
		       jstr(t, "transport"), jint(t, "instances"), jint(t, "available"), methods);
	}
	for (size_t i = 0; i < arr_len(types); i++) {
		struct json_object *t = json_object_array_get_idx(types, i);

		printf("\n%s: %s\n", jstr(t, "name"), jstr(t, "params"));
	}
}

static void show_list(struct json_object *r)
{
	struct json_object *devs = jget(r, "devices");

	/* The backend last: a device with LUNs or namespaces has none of its own ("-"). */
	printf("%-16s %-12s %-11s %-9s %-30s %s\n", "ID", "TYPE", "TRANSPORT", "CLIENT", "SOCKET",
	       "BACKEND");
	for (size_t i = 0; i < arr_len(devs); i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);

		printf("%-16s %-12s %-11s %-9s %-30s %s\n", jstr(d, "id"), jstr(d, "type"),
		       jstr(d, "transport"),
		       json_object_get_boolean(jget(d, "connected")) ? "connected" : "-",
		       jstr(d, "socket"), jget(d, "backend") ? jstr(d, "backend") : "-");
	}
}

/*
 * The stats table: one header, then one row per started queue and a total,
 * all with the same columns. A value the device type does not report
 * (NVMe keeps no latency histogram, for one) is "-", never a made-up 0.
 */
enum { STAT_COLS = 11 };

static const int stat_width[STAT_COLS] = { -6, 12, 8, 12, 12, 6, 6, 7, 9, 9, 9 };

static void stat_row(const char *const cell[STAT_COLS])
{
	printf(" ");
	for (int i = 0; i < STAT_COLS; i++)
		printf(" %*s", stat_width[i], cell[i]);
	printf("\n");
}

/* Cell text for @key of @o: an integer, MiB (@mib), or "-" when missing. */
static const char *cell_int(char *buf, size_t len, struct json_object *o, const char *key,
			    bool mib)
{
	struct json_object *v = jget(o, key);

	if (!v) /* missing, or JSON null */
		return "-";
	if (mib)
		snprintf(buf, len, "%.1f", (double)json_object_get_int64(v) / 1048576.0);
	else
		snprintf(buf, len, "%" PRId64, json_object_get_int64(v));
	return buf;
}

static const char *cell_dbl(char *buf, size_t len, struct json_object *o, const char *key)
{
	struct json_object *v = jget(o, key);

	if (!v) /* missing, or JSON null */
		return "-";
	snprintf(buf, len, "%.1f", json_object_get_double(v));
	return buf;
}

/* A row for a queue or, with @total, the device's sums (no per-queue depth there). */
static void show_stats_row(const char *name, struct json_object *q, bool total)
{
	struct json_object *lat = jget(q, "latency_us");
	char b[STAT_COLS][32];
	const char *cell[STAT_COLS] = {
		name,
		cell_int(b[1], sizeof(b[1]), q, "requests", false),
		cell_int(b[2], sizeof(b[2]), q, "errors", false),
		cell_int(b[3], sizeof(b[3]), q, "bytes_from_guest", true),
		cell_int(b[4], sizeof(b[4]), q, "bytes_to_guest", true),
		cell_int(b[5], sizeof(b[5]), q, "inflight", false),
		total ? "-" : cell_int(b[6], sizeof(b[6]), q, "max_inflight", false),
		total ? "-" : cell_dbl(b[7], sizeof(b[7]), q, "avg_depth"),
		cell_dbl(b[8], sizeof(b[8]), lat, "p50"),
		cell_dbl(b[9], sizeof(b[9]), lat, "p90"),
		cell_dbl(b[10], sizeof(b[10]), lat, "p99"),
	};

	stat_row(cell);
}

static void show_stats(struct json_object *r)
{
	static const char *const header[STAT_COLS] = {
		"QUEUE", "REQUESTS", "ERRORS", "MiB-FROM-VM", "MiB-TO-VM", "INFL",
		"MAXQD", "AVGQD", "P50(us)", "P90(us)", "P99(us)",
	};
	struct json_object *devs = jget(r, "devices");

	for (size_t i = 0; i < arr_len(devs); i++) {
		struct json_object *d = json_object_array_get_idx(devs, i), *st = jget(d, "stats");
		struct json_object *qs = jget(st, "queues");
		bool connected = json_object_get_boolean(jget(d, "connected"));

		printf("%s%s (%s on %s, %s)\n", i ? "\n" : "", jstr(d, "id"), jstr(d, "type"),
		       jstr(d, "transport"), connected ? "client connected" : "no client");
		if (!st) {
			printf("  no statistics for this type\n");
			continue;
		}
		/* A device without queues (accel, accel-vdev): its counters as they are. */
		if (!qs) {
			json_object_object_foreach(st, key, val)
				printf("  %-18s %s\n", key, json_object_get_string(val));
			continue;
		}
		/*
		 * Queues count from when the client starts them: until then
		 * there is nothing to tabulate, so say why in one line.
		 */
		if (!arr_len(qs)) {
			char nq[48] = "queues";

			/* num_queues is what the device accepts, not what a VM will use. */
			if (jget(st, "num_queues"))
				snprintf(nq, sizeof(nq), "queues (up to %" PRId64 ")",
					 jint(st, "num_queues"));
			if (connected)
				printf("  client connected, nothing to count until it starts its "
				       "%s\n",
				       nq);
			else
				printf("  no client connected to %s: nothing to count until a VM "
				       "starts its %s\n",
				       jstr(d, "socket"), nq);
			continue;
		}
		stat_row(header);
		for (size_t k = 0; k < arr_len(qs); k++) {
			struct json_object *q = json_object_array_get_idx(qs, k);
			char name[24];

			snprintf(name, sizeof(name), "q%" PRId64, jint(q, "index"));
			show_stats_row(name, q, false);
		}
		show_stats_row("total", st, true);
	}
	/* Last, after the devices: which I/O engine the data-plane loops run on. */
	if (jget(r, "io_engine")) {
		struct json_object *e = jget(r, "io_engine");

		printf("%sI/O engine: %s on %zu data-plane loops (control loop: %s)\n",
		       arr_len(devs) ? "\n" : "", jstr(e, "data_plane"), arr_len(jget(e, "loops")),
		       jstr(e, "control"));
	}
}

/*
 * key=value words (each may hold several, comma-separated, as in umdevd
 * --device) into @o; a key given twice becomes a list (lun=, ns=).
 */
static int add_kv_words(struct json_object *o, char **words, int n)
{
	for (int i = 0; i < n; i++) {
		char *copy = strdup(words[i]), *save = NULL, *tok;

		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(tok, '=');
			struct json_object *prev;

			if (!eq || eq == tok) {
				die_usage("'%s' is not key=value", tok);
				free(copy);
				return -1;
			}
			*eq = 0;
			if (json_object_object_get_ex(o, tok, &prev)) {
				if (!json_object_is_type(prev, json_type_array)) {
					struct json_object *arr = json_object_new_array();

					json_object_array_add(arr, json_object_get(prev));
					json_object_object_add(o, tok, arr);
					prev = arr;
				}
				json_object_array_add(prev, json_object_new_string(eq + 1));
			} else {
				json_object_object_add(o, tok, json_object_new_string(eq + 1));
			}
		}
		free(copy);
	}
	return 0;
}

static int write_file(const char *path, const char *text)
{
	char tmp[4096];
	size_t len = strlen(text);
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0 ||
	    close(fd) < 0 || rename(tmp, path) < 0) {
		int ret = -errno;

		unlink(tmp);
		return ret ? ret : -EIO;
	}
	return 0;
}

struct cmd {
	const char *name;
	int min_args, max_args; /* after the command name; -1: any */
};

static const struct cmd cmds[] = {
	{ "types", 0, 0 },	{ "list", 0, 1 },     { "create", 1, -1 },
	{ "remove", 1, 1 },	{ "lun-add", 3, -1 }, { "lun-remove", 2, 2 },
	{ "lun-list", 1, 1 },
	{ "ns-add", 2, -1 },	{ "ns-remove", 2, 2 }, { "stats", 0, 1 },
	{ "save", 0, 1 },	{ "call", 1, -1 },    { "version", 0, 0 },
};

/* Build the method and params of @cmd from its words. */
static int build(const char *cmd, char **a, int n, const char **method, struct json_object *p)
{
	*method = cmd;
	if (!strcmp(cmd, "list") || !strcmp(cmd, "stats") || !strcmp(cmd, "lun-list")) {
		if (n)
			json_object_object_add(p, "id", json_object_new_string(a[0]));
	} else if (!strcmp(cmd, "create")) {
		char *type = strdup(a[0]), *comma = strchr(type, ',');

		/* "TYPE,key=value,..." as umdevd --device takes it, or TYPE key=value... */
		if (comma)
			*comma = 0;
		if (!*type || strchr(type, '=')) {
			free(type);
			return die_usage("create: the first word is the device type, e.g. %s",
					 "virtio-blk");
		}
		json_object_object_add(p, "type", json_object_new_string(type));
		if (comma) {
			char *rest = comma + 1;

			if (add_kv_words(p, &rest, 1) < 0) {
				free(type);
				return 2;
			}
		}
		free(type);
		if (add_kv_words(p, a + 1, n - 1) < 0)
			return 2;
	} else if (!strcmp(cmd, "remove")) {
		json_object_object_add(p, "id", json_object_new_string(a[0]));
		if (opt_force)
			json_object_object_add(p, "force", json_object_new_boolean(true));
	} else if (!strcmp(cmd, "lun-add") || !strcmp(cmd, "lun-remove")) {
		json_object_object_add(p, "id", json_object_new_string(a[0]));
		json_object_object_add(p, "lun", json_object_new_string(a[1]));
		if (!strcmp(cmd, "lun-add")) {
			json_object_object_add(p, "backend", json_object_new_string(a[2]));
			if (add_kv_words(p, a + 3, n - 3) < 0)
				return 2;
		}
	} else if (!strcmp(cmd, "ns-add")) {
		json_object_object_add(p, "id", json_object_new_string(a[0]));
		json_object_object_add(p, "backend", json_object_new_string(a[1]));
		if (add_kv_words(p, a + 2, n - 2) < 0)
			return 2;
	} else if (!strcmp(cmd, "ns-remove")) {
		char *end;
		unsigned long nsid;

		errno = 0;
		nsid = strtoul(a[1], &end, 10);
		if (errno || *end || end == a[1] || nsid == 0 || nsid > 0xfffffffe)
			return die_usage("ns-remove: '%s' is not a namespace id (1, 2, ...)", a[1]);
		json_object_object_add(p, "id", json_object_new_string(a[0]));
		json_object_object_add(p, "nsid", json_object_new_int64((int64_t)nsid));
	} else if (!strcmp(cmd, "call")) {
		*method = a[0];
		if (n == 2 && a[1][0] == '{') {
			struct json_object *raw = json_tokener_parse(a[1]);

			if (!raw || !json_object_is_type(raw, json_type_object)) {
				json_object_put(raw);
				return die_usage("call: '%s' is not a JSON object", a[1]);
			}
			json_object_object_foreach(raw, k, v)
				json_object_object_add(p, k, json_object_get(v));
			json_object_put(raw);
		} else if (add_kv_words(p, a + 1, n - 1) < 0) {
			return 2;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rpc", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct json_object *params, *result;
	const struct cmd *cmd = NULL;
	const char *method;
	/* static: still reachable at exit, whichever return ends the run (LSan). */
	static char **words;
	char defpath[256], *end;
	int c, n, nw = 0, ret, code;
	long timeout;

	/*
	 * Options go anywhere on the line, as with GNU tools ("list --json"),
	 * and "--" ends them. The leading '-' makes getopt hand over the other
	 * words in order (as option 1) instead of permuting argv, whatever
	 * POSIXLY_CORRECT says; only words that begin with '-' are options, so
	 * create's key=value words and JSON params stay words. A word that
	 * begins with '-' (an id, a file) goes after "--".
	 */
	words = calloc((size_t)argc + 1, sizeof(*words));
	if (!words)
		return 1;
	/* getopt's own messages then start "umdevctl:", as ours do, whatever the path. */
	argv[0] = "umdevctl";
	while ((c = getopt_long(argc, argv, "-r:jt:fhV", longopts, NULL)) != -1) {
		switch (c) {
		case 1:
			words[nw++] = optarg;
			break;
		case 'r':
			rpc_path = optarg;
			break;
		case 'j':
			opt_json = true;
			break;
		case 't':
			errno = 0;
			timeout = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || timeout < 1 || timeout > 86400)
				return die_usage("--timeout takes seconds, 1 to 86400 (not '%s')",
						 optarg);
			opt_timeout = (int)timeout;
			break;
		case 'f':
			opt_force = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("umdevctl 0.1.0\n");
			return 0;
		default:
			/* getopt said what is wrong. */
			fprintf(stderr, "(umdevctl --help for usage)\n");
			return 2;
		}
	}
	while (optind < argc)
		words[nw++] = argv[optind++];
	if (!nw) {
		usage(stderr);
		return 2;
	}
	for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(words[0], cmds[i].name))
			cmd = &cmds[i];
	if (!cmd)
		return die_usage("unknown command '%s'", words[0]);
	n = nw - 1;
	if (n < cmd->min_args || (cmd->max_args >= 0 && n > cmd->max_args))
		return die_usage("wrong number of arguments for '%s'", cmd->name);
	if (opt_force && strcmp(cmd->name, "remove"))
		return die_usage("--force is for remove, not '%s'", cmd->name);
	if (!rpc_path) {
		if (umdev_rpc_default_path(defpath, sizeof(defpath)) < 0) {
			fprintf(stderr, "umdevctl: $XDG_RUNTIME_DIR is too long; give --rpc\n");
			return 1;
		}
		rpc_path = defpath;
	}
	params = json_object_new_object();
	/* `save FILE` writes the file here: FILE is relative to the user, not the daemon. */
	ret = build(cmd->name, words + 1, !strcmp(cmd->name, "save") ? 0 : n, &method,
		    params);
	if (ret) {
		json_object_put(params);
		return ret;
	}
	result = rpc_call(method, json_object_object_length(params) ? params : NULL, &code);
	json_object_put(params);
	if (!result)
		return 1;
	ret = 0;
	if (!strcmp(cmd->name, "save")) {
		const char *text = json_object_to_json_string_ext(
			result, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					JSON_C_TO_STRING_NOSLASHESCAPE);

		if (n == 0) {
			printf("%s\n", text);
		} else if ((ret = write_file(words[1], text)) < 0) {
			fprintf(stderr, "umdevctl: cannot write %s: %s\n", words[1],
				strerror(-ret));
			ret = 1;
		} else if (!opt_json) {
			printf("saved %zu device(s) to %s\n",
			       arr_len(jget(result, "devices")), words[1]);
		}
	} else if (opt_json) {
		print_json(result);
	} else if (!strcmp(cmd->name, "types")) {
		show_types(result);
	} else if (!strcmp(cmd->name, "list")) {
		show_list(result);
	} else if (!strcmp(cmd->name, "stats")) {
		show_stats(result);
	} else if (!strcmp(cmd->name, "create")) {
		printf("created %s (%s) on %s\n", jstr(result, "id"), jstr(result, "type"),
		       jstr(result, "socket"));
	} else if (!strcmp(cmd->name, "remove")) {
		printf("removed %s\n", jstr(result, "id"));
	} else if (!strcmp(cmd->name, "version")) {
		printf("umdevd %s\n", jstr(result, "version"));
		if (jget(result, "io_engine"))
			printf("I/O engine: %s\n", jstr(jget(result, "io_engine"), "data_plane"));
	} else if (json_object_object_length(result)) {
		print_json(result);
	} else {
		printf("done\n");
	}
	json_object_put(result);
	return ret;
}
