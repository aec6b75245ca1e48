/* SPDX-License-Identifier: BSD-3-Clause */
/* umdevd: a thin main() over src/ctl. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umdev/ctl.h"
#include "umdev/log.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: umdevd [OPTIONS]\n"
		"Serve emulated devices to virtual machines.\n\n"
		"  --device SPEC      add a device (repeatable), e.g.\n"
		"                     virtio-blk,id=blk0,socket=PATH,backend=file:IMAGE[,num-queues=N]\n"
		"                     [,readonly=on][,queue-size=N][,serial=S][,poll=on][,poll-us=N]\n"
		"                     backends: file:PATH, ram:SIZE, null:SIZE (SIZE like 1G)\n"
		"  --config FILE      add the devices a config file declares\n"
		"                     (JSON {\"devices\":[{\"type\":\"virtio-blk\",\"id\":...}]}\n"
		"                     or one SPEC per line)\n"
		"  --threads N        data-plane threads (default: one per CPU, at most 8)\n"
		"  --log-level LEVEL  error, warning, info (default) or debug\n"
		"  --help, --version\n\n"
		"SIGTERM or SIGINT: stop taking requests, complete those in flight, flush, exit.\n");
}

static int parse_level(const char *s)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct umdev_daemon_opts o = { 0 };
	const char **devices = calloc(argc, sizeof(char *));
	const char **configs = calloc(argc, sizeof(char *));
	unsigned ndev = 0, ncfg = 0;
	char msg[512];
	umdev_daemon *d;
	sigset_t set;
	int c, err = 0, ret = 1;

	if (!devices || !configs)
		return 1;
	while ((c = getopt_long(argc, argv, "d:c:t:l:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			devices[ndev++] = optarg;
			break;
		case 'c':
			configs[ncfg++] = optarg;
			break;
		case 't': {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (*end || n < 1 || n > 8) {
				fprintf(stderr, "umdevd: --threads takes a number from 1 to 8\n");
				return 2;
			}
			o.dp_threads = n;
			break;
		}
		case 'l':
			if (parse_level(optarg) < 0) {
				fprintf(stderr, "umdevd: unknown log level '%s'\n", optarg);
				return 2;
			}
			umdev_log_set_level(parse_level(optarg));
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("umdevd 0.1.0\n");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "umdevd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!ndev && !ncfg) {
		fprintf(stderr, "umdevd: no devices: give --device or --config\n");
		usage(stderr);
		return 2;
	}

	/* Signals are taken through a signalfd on the control loop: block them in every thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = umdev_daemon_new(&o, &err);
	if (!d) {
		fprintf(stderr, "umdevd: cannot start: %s\n", strerror(-err));
		return 1;
	}
	for (unsigned i = 0; i < ncfg; i++) {
		if (umdev_daemon_load_config(d, configs[i], msg, sizeof(msg)) < 0) {
			fprintf(stderr, "umdevd: %s\n", msg);
			goto out;
		}
	}
	for (unsigned i = 0; i < ndev; i++) {
		if (umdev_daemon_add_device(d, devices[i], msg, sizeof(msg)) < 0) {
			fprintf(stderr, "umdevd: --device %s: %s\n", devices[i], msg);
			goto out;
		}
	}
	ret = umdev_daemon_run(d) < 0;
out:
	umdev_daemon_free(d);
	free(devices);
	free(configs);
	return ret;
}
