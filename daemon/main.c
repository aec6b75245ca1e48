/* SPDX-License-Identifier: BSD-3-Clause */
/* umdevd: a thin main() over src/ctl. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
		"                     backends: file:PATH, ram:SIZE, null:SIZE (SIZE like 1G),\n"
		"                     nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH,\n"
		"                     rbd:POOL/IMAGE[@SNAP][:conf=PATH][:id=USER]\n"
		"  --config FILE      add the devices a config file declares\n"
		"                     (JSON {\"devices\":[{\"type\":\"virtio-blk\",\"id\":...}]}\n"
		"                     or one SPEC per line)\n"
		"  --rpc PATH         JSON-RPC control socket (umdevctl talks to it); default\n"
		"                     $XDG_RUNTIME_DIR/umdev/umdevd.sock, else /run/umdev/umdevd.sock;\n"
		"                     'none': no control socket\n"
		"  --max-devices N    refuse to create more than N devices (default 256)\n"
		"  --threads N        data-plane threads (default: one per CPU, at most 8)\n"
		"  --cpus LIST        keep data-plane thread i on the i-th CPU of LIST (like\n"
		"                     taskset -c: 0,2-3), round robin; --threads defaults to\n"
		"                     the number of CPUs listed (at most 8)\n"
		"  --io-engine E      data-plane I/O: auto (default: io_uring where allowed,\n"
		"                     else epoll with a worker pool for file I/O), io_uring, epoll\n"
		"  --log-level LEVEL  error, warning, info (default) or debug\n"
		"  --help, --version\n\n"
		"vhost-user back-end conventions (QEMU docs/interop/vhost-user.rst), for one device:\n"
		"  --socket-path PATH  serve the device on PATH (the --device then has no socket=)\n"
		"  --fd N              serve the device on the inherited socket N (listening)\n"
		"  --blk-file PATH     with --socket-path/--fd and no --device: virtio-blk on PATH\n"
		"  --read-only         with --blk-file: the disk is read-only\n"
		"  --print-capabilities  print the back-end capabilities as JSON and exit\n\n"
		"With no device, umdevd waits for devices created through the control socket.\n"
		"With systemd socket activation (LISTEN_FDS), fd 3 is the control socket.\n"
		"SIGTERM or SIGINT: stop taking requests, complete those in flight, flush, exit.\n");
}

/* The vhost-user back-end convention: the type of device and what it can do. */
static void print_capabilities(void)
{
	printf("{\n  \"type\": \"block\",\n  \"features\": [\n    \"read-only\",\n"
	       "    \"blk-file\"\n  ]\n}\n");
}

/*
 * The version, and the I/O engine the data-plane loops would run on here:
 * "I/O engine: epoll (auto; io_uring unavailable: Function not implemented)".
 */
static int print_version(enum umdev_io_engine engine)
{
	int probe = umdev_io_uring_probe();

	printf("umdevd 0.1.0\n");
	if (engine == UMDEV_IO_ENGINE_EPOLL)
		printf("I/O engine: epoll (forced)\n");
	else if (probe == 0)
		printf("I/O engine: io_uring (%s)\n", umdev_io_engine_name(engine));
	else if (engine == UMDEV_IO_ENGINE_AUTO)
		printf("I/O engine: epoll (auto; io_uring unavailable: %s)\n", strerror(-probe));
	else
		printf("I/O engine: none (io_uring forced but unavailable: %s)\n",
		       strerror(-probe));
	return 0;
}

static int parse_num(const char *opt, const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (errno || end == s || *end || *out < min || *out > max) {
		fprintf(stderr, "umdevd: %s takes a number from %ld to %ld\n", opt, min, max);
		return -1;
	}
	return 0;
}

/*
 * --cpus: a CPU list as taskset -c and cpuset(7) write it, "0,2-3", into
 * @cpus (up to @max entries, in the order given; ranges ascending).
 * Returns the count, or -1 after saying what is wrong.
 */
static int parse_cpus(const char *s, unsigned *cpus, unsigned max)
{
	unsigned n = 0;
	const char *p = s;

	for (;;) {
		char *end;
		long lo, hi;

		errno = 0;
		lo = strtol(p, &end, 10);
		hi = lo;
		if (!errno && end != p && *end == '-') {
			p = end + 1;
			hi = strtol(p, &end, 10);
		}
		if (errno || end == p || lo < 0 || hi < lo || hi >= CPU_SETSIZE ||
		    (*end && *end != ',') || n + (unsigned)(hi - lo) >= max) {
			fprintf(stderr,
				"umdevd: --cpus takes a list of CPUs like 0,2-3 (numbers below %d, "
				"at most %u)\n",
				CPU_SETSIZE, max);
			return -1;
		}
		for (long c = lo; c <= hi; c++)
			cpus[n++] = (unsigned)c;
		if (!*end)
			return (int)n;
		p = end + 1;
	}
}

/* systemd socket activation: our control socket is fd 3 (see sd_listen_fds(3)). */
static int activated_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int fd = -1;

	if (pid && fds && strtol(pid, NULL, 10) == (long)getpid() && strtol(fds, NULL, 10) >= 1) {
		struct stat st;

		if (fstat(3, &st) == 0 && S_ISSOCK(st.st_mode))
			fd = 3;
	}
	/* Not for our children (we have none, but the environment must not lie). */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return fd;
}

/*
 * Open the control socket. A path the user chose must work; the default one
 * may be held by another umdevd (several daemons, each with its own
 * devices): then this one serves its devices without a control socket.
 */
static int open_rpc(umdev_daemon *d, const char *rpc, bool have_devices)
{
	char path[256], msg[512];
	bool is_default = !rpc;
	int fd = activated_fd(), ret;

	if (rpc && !strcmp(rpc, "none"))
		return have_devices ? 0 : -1;
	if (fd >= 0) {
		ret = umdev_daemon_rpc_listen(d, rpc ? rpc : "(socket activation)", fd, msg,
					      sizeof(msg));
		if (ret < 0)
			fprintf(stderr, "umdevd: control socket: %s\n", msg);
		return ret;
	}
	if (is_default) {
		char dir[256], *slash;

		if (umdev_rpc_default_path(path, sizeof(path)) < 0) {
			fprintf(stderr, "umdevd: $XDG_RUNTIME_DIR is too long; give --rpc PATH\n");
			return -1;
		}
		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		/* If this fails, listening fails next and says where. */
		if (slash) {
			*slash = 0;
			if (mkdir(dir, 0700) < 0 && errno != EEXIST)
				umdev_dbg("cannot create %s: %s", dir, strerror(errno));
		}
		rpc = path;
	}
	ret = umdev_daemon_rpc_listen(d, rpc, -1, msg, sizeof(msg));
	if (ret < 0) {
		if (is_default && have_devices) {
			umdev_warn("no control socket (%s); serving the devices given", msg);
			return 0;
		}
		fprintf(stderr, "umdevd: control socket: %s\n", msg);
		return ret;
	}
	umdev_info("control socket %s", rpc);
	return 0;
}

static int parse_level(const char *s)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static int umdevd_main(int argc, char **argv, const char **devices, const char **configs)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "cpus", required_argument, NULL, 'C' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "rpc", required_argument, NULL, 'r' },
		{ "max-devices", required_argument, NULL, 'm' },
		{ "io-engine", required_argument, NULL, 'E' },
		{ "socket-path", required_argument, NULL, 's' },
		{ "fd", required_argument, NULL, 'f' },
		{ "blk-file", required_argument, NULL, 'b' },
		{ "read-only", no_argument, NULL, 'R' },
		{ "print-capabilities", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct umdev_daemon_opts o = { 0 };
	unsigned cpus[64];
	int ncpus;
	unsigned ndev = 0, ncfg = 0;
	const char *rpc = NULL, *socket_path = NULL, *blk_file = NULL;
	bool read_only = false, version = false;
	char msg[512], spec[4096];
	long fd = -1, num;
	umdev_daemon *d;
	sigset_t set;
	int c, err = 0, ret = 1;

	/* The convention: print them and exit, whatever else the command line says. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--print-capabilities")) {
			print_capabilities();
			return 0;
		}
	}
	while ((c = getopt_long(argc, argv, "d:c:t:l:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			devices[ndev++] = optarg;
			break;
		case 'c':
			configs[ncfg++] = optarg;
			break;
		case 't':
			if (parse_num("--threads", optarg, 1, 8, &num) < 0)
				return 2;
			o.dp_threads = num;
			break;
		case 'C':
			ncpus = parse_cpus(optarg, cpus, sizeof(cpus) / sizeof(cpus[0]));
			if (ncpus < 0)
				return 2;
			o.cpus = cpus;
			o.ncpus = (unsigned)ncpus;
			break;
		case 'm':
			if (parse_num("--max-devices", optarg, 1, 4096, &num) < 0)
				return 2;
			o.max_devices = num;
			break;
		case 'r':
			rpc = optarg;
			break;
		case 'E':
			if (umdev_io_engine_parse(optarg, &o.io_engine) < 0) {
				fprintf(stderr, "umdevd: --io-engine takes auto, io_uring or epoll\n");
				return 2;
			}
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'f':
			if (parse_num("--fd", optarg, 0, 1 << 20, &fd) < 0)
				return 2;
			break;
		case 'b':
			blk_file = optarg;
			break;
		case 'R':
			read_only = true;
			break;
		case 'P': /* an abbreviation the scan above did not catch */
			print_capabilities();
			return 0;
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
			version = true; /* after the other options: --io-engine counts */
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "umdevd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (version)
		return print_version(o.io_engine);
	if (socket_path && fd >= 0) {
		fprintf(stderr, "umdevd: --socket-path and --fd cannot be used together\n");
		return 2;
	}
	if ((blk_file || read_only) && !socket_path && fd < 0) {
		fprintf(stderr, "umdevd: --blk-file and --read-only go with --socket-path or --fd\n");
		return 2;
	}
	if (socket_path || fd >= 0) {
		/* One device on that socket: --blk-file's, or the one --device. */
		if (blk_file ? ndev || ncfg : ndev != 1 || ncfg) {
			fprintf(stderr, "umdevd: --socket-path/--fd serve one device: give either "
					"--blk-file or exactly one --device (without socket=)\n");
			return 2;
		}
		if (blk_file)
			snprintf(spec, sizeof(spec), "virtio-blk,id=blk0,backend=file:%s%s", blk_file,
				 read_only ? ",readonly=on" : "");
		else
			snprintf(spec, sizeof(spec), "%s", devices[0]);
		if (socket_path && strlen(spec) + strlen(socket_path) + 9 < sizeof(spec)) {
			strcat(spec, ",socket=");
			strcat(spec, socket_path);
		}
		devices[0] = spec;
		ndev = 1;
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
	if (open_rpc(d, rpc, ndev || ncfg) < 0) {
		if (rpc && !strcmp(rpc, "none"))
			fprintf(stderr, "umdevd: no devices and no control socket: nothing to do\n");
		goto out;
	}
	for (unsigned i = 0; i < ncfg; i++) {
		if (umdev_daemon_load_config(d, configs[i], msg, sizeof(msg)) < 0) {
			fprintf(stderr, "umdevd: %s\n", msg);
			goto out;
		}
	}
	for (unsigned i = 0; i < ndev; i++) {
		if ((fd >= 0 ? umdev_daemon_add_device_fd(d, devices[i], (int)fd, msg, sizeof(msg)) :
			       umdev_daemon_add_device(d, devices[i], msg, sizeof(msg))) < 0) {
			fprintf(stderr, "umdevd: --device %s: %s\n", devices[i], msg);
			goto out;
		}
	}
	if (!umdev_daemon_num_devices(d))
		umdev_info("no devices yet: waiting for umdevctl create");
	ret = umdev_daemon_run(d) < 0;
out:
	umdev_daemon_free(d);
	return ret;
}

int main(int argc, char **argv)
{
	const char **devices = calloc(argc, sizeof(char *));
	const char **configs = calloc(argc, sizeof(char *));
	int ret = 1;

	if (devices && configs)
		ret = umdevd_main(argc, argv, devices, configs);
	free(devices);
	free(configs);
	return ret;
}
