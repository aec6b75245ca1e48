/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon: control loop, data-plane loop pool, devices.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctl_internal.h"
#include "dev_type.h"
#include "umdev/log.h"
#include "umdev/loop.h"
#include "umdev/mem.h"

#define MAX_DP_THREADS UMDEV_MAX_DP_THREADS
#define dev_entry umdev_dev_entry

/*
 * Open files a connected device holds (docs/performance.md, "Thousands of
 * devices"): its listening and connection sockets and a kick and a call
 * eventfd per started queue (guest memory and inflight fds are closed once
 * mapped); 16 covers seven queues. Only used to warn.
 */
#define FDS_PER_DEVICE 16

/*
 * Each device costs open files (sockets, guest memory, eventfds), so the
 * usual soft limit of 1024 would stop a daemon well short of its
 * --max-devices. The soft limit is a default, not a policy: raise it to
 * the hard limit the administrator set, and say so.
 */
static void raise_nofile(unsigned max_devices)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_devices * FDS_PER_DEVICE + 64;
	rlim_t old;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	old = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			umdev_warn("cannot raise the open-file limit from %llu to %llu: %s",
				   (unsigned long long)old, (unsigned long long)rl.rlim_max,
				   strerror(errno));
			rl.rlim_cur = old;
		} else {
			umdev_info("open-file limit raised from %llu to the hard limit %llu",
				   (unsigned long long)old, (unsigned long long)rl.rlim_cur);
		}
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		umdev_warn("open-file limit %llu is below the %llu that %u connected devices may "
			   "need: raise the hard limit (LimitNOFILE=, ulimit -Hn)",
			   (unsigned long long)rl.rlim_cur, (unsigned long long)want, max_devices);
}

static void on_signal(void *opaque, uint32_t events)
{
	umdev_daemon *d = opaque;
	struct signalfd_siginfo si;

	if (read(d->sig_fd, &si, sizeof(si)) != sizeof(si))
		return;
	umdev_info("signal %u: draining in-flight I/O, flushing and exiting", si.ssi_signo);
	umdev_loop_stop(d->ctl);
}

/* SIGTERM and SIGINT (blocked by the caller) through a signalfd on the control loop. */
static int sig_open(umdev_daemon *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	d->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sig_fd < 0)
		return -errno;
	return umdev_loop_add_fd(d->ctl, d->sig_fd, EPOLLIN, on_signal, d);
}

umdev_daemon *umdev_daemon_new(const struct umdev_daemon_opts *o, int *err)
{
	umdev_daemon *d = calloc(1, sizeof(*d));
	unsigned n = o->dp_threads;

	if (!d) {
		*err = -ENOMEM;
		return NULL;
	}
	d->sig_fd = -1;
	d->max_devices = o->max_devices ? o->max_devices : UMDEV_DEFAULT_MAX_DEVICES;
	raise_nofile(d->max_devices);
	if (n == 0 && o->ncpus) {
		n = o->ncpus > MAX_DP_THREADS ? MAX_DP_THREADS : o->ncpus;
	} else if (n == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus < 1 ? 1 : cpus > MAX_DP_THREADS ? MAX_DP_THREADS : (unsigned)cpus;
	}
	if (n > MAX_DP_THREADS) {
		*err = -EINVAL;
		free(d);
		return NULL;
	}
	/* Process-wide, before any loop: tests and tools creating loops follow it too. */
	umdev_io_engine_set_default(o->io_engine);
	if (o->io_engine == UMDEV_IO_ENGINE_IO_URING && umdev_io_uring_probe() < 0) {
		*err = umdev_io_uring_probe();
		umdev_err("io_uring was asked for but is unavailable: %s", strerror(-*err));
		free(d);
		return NULL;
	}
	if (o->io_engine == UMDEV_IO_ENGINE_AUTO && umdev_io_uring_probe() < 0)
		umdev_info("io_uring unavailable (%s): data-plane loops run on epoll",
			   strerror(-umdev_io_uring_probe()));
	d->ctl = umdev_loop_new_engine("umdev-ctl", 0, UMDEV_IO_ENGINE_EPOLL, err);
	if (!d->ctl)
		goto fail;
	/* A client that shrinks guest memory under us fails its device, not the process. */
	*err = umdev_mem_guard_init(d->ctl);
	if (*err < 0 && *err != -EALREADY)
		goto fail;
	d->guard = *err == 0;
	/*
	 * The signalfd now, not in umdev_daemon_run(): once a device socket
	 * appears the daemon holds all its startup fds (tests take that as
	 * their fd baseline) and a SIGTERM has somewhere to go.
	 */
	*err = sig_open(d);
	if (*err < 0)
		goto fail;
	for (unsigned i = 0; i < n; i++) {
		char name[16];

		snprintf(name, sizeof(name), "umdev-dp%u", i);
		d->dp[i] = umdev_loop_new(name, 0, err);
		if (!d->dp[i])
			goto fail;
		d->ndp = i + 1;
		umdev_info("%s: I/O engine %s", name,
			   umdev_io_engine_name(umdev_loop_engine(d->dp[i])));
		*err = umdev_loop_start_thread(d->dp[i]);
		if (*err < 0)
			goto fail;
		if (o->ncpus) {
			unsigned cpu = o->cpus[i % o->ncpus];

			*err = umdev_loop_set_cpu(d->dp[i], cpu);
			if (*err < 0) {
				umdev_err("%s: cannot run on CPU %u: %s", name, cpu,
					  strerror(-*err));
				goto fail;
			}
			umdev_info("%s: on CPU %u", name, cpu);
		}
	}
	return d;
fail:
	umdev_daemon_free(d);
	return NULL;
}

static void dev_free(struct dev_entry *e)
{
	if (e->inst)
		e->type->destroy(e->inst);
	free(e->loops);
	json_object_put(e->config);
	free(e->id);
	free(e->socket);
	free(e);
}

void umdev_daemon_free(umdev_daemon *d)
{
	if (!d)
		return;
	/* No new requests while devices go away. */
	umdev_rpc_free(d->rpc);
	d->rpc = NULL;
	while (d->devs) {
		struct dev_entry *e = d->devs;

		d->devs = e->next;
		dev_free(e);
	}
	for (unsigned i = 0; i < d->ndp; i++) {
		umdev_loop_stop(d->dp[i]);
		umdev_loop_join(d->dp[i]);
		umdev_loop_free(d->dp[i]);
	}
	if (d->guard)
		umdev_mem_guard_fini();
	if (d->sig_fd >= 0) {
		umdev_loop_del_fd(d->ctl, d->sig_fd);
		close(d->sig_fd);
	}
	umdev_loop_free(d->ctl);
	free(d);
}

unsigned umdev_daemon_num_devices(const umdev_daemon *d)
{
	unsigned n = 0;

	for (const struct dev_entry *e = d->devs; e; e = e->next)
		n++;
	return n;
}

/* Also a safe argument: no leading '-' (an option to umdevctl) or '.' ("..", hidden). */
static bool valid_id(const char *id)
{
	if (!*id || strlen(id) > 31 || *id == '-' || *id == '.')
		return false;
	for (const char *p = id; *p; p++)
		if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') ||
		      ('0' <= *p && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

struct dev_entry *umdev_daemon_find(umdev_daemon *d, const char *id)
{
	for (struct dev_entry *e = d->devs; e; e = e->next)
		if (!strcmp(e->id, id))
			return e;
	return NULL;
}

int umdev_daemon_remove(umdev_daemon *d, const char *id, bool force, char *msg, size_t msglen)
{
	struct dev_entry **pp, *e;

	for (pp = &d->devs; *pp && strcmp((*pp)->id, id); pp = &(*pp)->next)
		;
	e = *pp;
	if (!e) {
		snprintf(msg, msglen, "no device with id '%s'", id);
		return -ENOENT;
	}
	if (!force && e->type->connected && e->type->connected(e->inst)) {
		snprintf(msg, msglen,
			 "device '%s' has a client connected (a VM is using it); detach it from "
			 "the VM first, or force the removal",
			 id);
		return -EBUSY;
	}
	/*
	 * destroy() stops the queues (in-flight requests complete and are
	 * returned to the guest), flushes the backend, then drops the
	 * connection and removes the socket: the front-end sees the back-end
	 * hang up only once nothing is left in flight.
	 */
	*pp = e->next;
	umdev_info("%s: removing%s", id, force ? " (forced)" : "");
	dev_free(e);
	return 0;
}

static int add_kv(umdev_daemon *d, struct umdev_kv *kv, int listen_fd, char *msg, size_t msglen)
{
	const struct umdev_dev_type *type = umdev_dev_type_find(kv->type);
	const char *id = umdev_kv_get(kv, "id");
	const char *sock = umdev_kv_get(kv, "socket");
	char fdname[32];
	struct umdev_dev_ctx ctx;
	struct dev_entry *e;
	int ret;

	if (!type) {
		int n = snprintf(msg, msglen, "unknown device type '%s' (known:", kv->type);

		for (unsigned i = 0; umdev_dev_types[i] && n > 0 && (size_t)n < msglen; i++)
			n += snprintf(msg + n, msglen - n, " %s", umdev_dev_types[i]->name);
		if (n > 0 && (size_t)n < msglen)
			snprintf(msg + n, msglen - n, ")");
		return -EINVAL;
	}
	if (!id || !valid_id(id)) {
		snprintf(msg, msglen,
			 "%s needs id=NAME (letters, digits, '-', '_', '.', not first '-' or '.'; "
			 "<= 31)", kv->type);
		return -EINVAL;
	}
	if (listen_fd >= 0) {
		int listening = 0;
		socklen_t len = sizeof(listening);

		/*
		 * Launchers pass a listening socket or a connected one (one end
		 * of a socketpair); the vhost-user transport serves both, the
		 * vfio-user transport only a listening one.
		 */
		if (getsockopt(listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) {
			snprintf(msg, msglen, "%s: fd %d is not a socket", id, listen_fd);
			return -EINVAL;
		}
		if (!listening && strcmp(type->transport, "vhost-user")) {
			snprintf(msg, msglen,
				 "%s: fd %d is a connected socket; %s over %s needs a listening one",
				 id, listen_fd, type->name, type->transport);
			return -EINVAL;
		}
		if (sock) {
			snprintf(msg, msglen, "%s: socket= cannot be used with an inherited fd", id);
			return -EINVAL;
		}
		if (!type->inherit_fd) {
			snprintf(msg, msglen, "%s: a %s device cannot serve an inherited fd", id,
				 type->name);
			return -EINVAL;
		}
		snprintf(fdname, sizeof(fdname), "fd:%d", listen_fd);
		sock = fdname;
	}
	if (type->no_socket) {
		if (sock) {
			snprintf(msg, msglen, "%s: a %s device serves no socket", id, type->name);
			return -EINVAL;
		}
		sock = "";
	} else if (!sock || !*sock) {
		snprintf(msg, msglen, "%s: socket=PATH is required", id);
		return -EINVAL;
	}
	if (umdev_daemon_num_devices(d) >= d->max_devices) {
		snprintf(msg, msglen, "the daemon already serves %u devices, its limit",
			 d->max_devices);
		return -ENOSPC;
	}
	for (e = d->devs; e; e = e->next) {
		if (!strcmp(e->id, id)) {
			snprintf(msg, msglen, "a device with id '%s' already exists", id);
			return -EEXIST;
		}
		if (*sock && !strcmp(e->socket, sock)) {
			snprintf(msg, msglen, "socket %s is already used by device '%s'", sock, e->id);
			return -EADDRINUSE;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->id = strdup(id);
	e->socket = strdup(sock);
	e->type = type;
	e->loops = calloc(d->ndp, sizeof(*e->loops));
	e->config = umdev_kv_to_json(kv);
	if (!e->id || !e->socket || !e->loops || !e->config) {
		dev_free(e);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < d->ndp; i++)
		e->loops[i] = d->dp[(i + d->next_rot) % d->ndp];
	ctx = (struct umdev_dev_ctx){ .id = e->id, .socket = e->socket, .ctl = d->ctl,
				      .loops = e->loops, .num_loops = d->ndp,
				      .listen_fd = listen_fd };
	ret = type->create(&ctx, kv, &e->inst, msg, msglen);
	if (ret < 0) {
		dev_free(e); /* leaves no socket, thread or fd behind */
		return ret;
	}
	e->seq = d->next_seq++;
	d->next_rot++;
	e->next = d->devs;
	d->devs = e;
	return 0;
}

int umdev_daemon_add_kv(umdev_daemon *d, struct umdev_kv *kv, int listen_fd, char *msg,
			size_t msglen)
{
	int ret = add_kv(d, kv, listen_fd, msg, msglen);

	/* Types serve a dup() of it (see dev_type.h): this one is ours to close. */
	if (listen_fd >= 0)
		close(listen_fd);
	return ret;
}

int umdev_daemon_add_device_fd(umdev_daemon *d, const char *spec, int listen_fd, char *msg,
			       size_t msglen)
{
	struct umdev_kv kv;
	int ret = umdev_kv_parse(spec, &kv, msg, msglen);

	if (ret < 0) {
		if (listen_fd >= 0)
			close(listen_fd);
		return ret;
	}
	ret = umdev_daemon_add_kv(d, &kv, listen_fd, msg, msglen);
	umdev_kv_free(&kv);
	return ret;
}

int umdev_daemon_add_device(umdev_daemon *d, const char *spec, char *msg, size_t msglen)
{
	return umdev_daemon_add_device_fd(d, spec, -1, msg, msglen);
}

int umdev_daemon_rpc_listen(umdev_daemon *d, const char *path, int listen_fd, char *msg,
			    size_t msglen)
{
	if (d->rpc) {
		snprintf(msg, msglen, "the control socket is already open");
		return -EBUSY;
	}
	return umdev_rpc_new(d, path, listen_fd, &d->rpc, msg, msglen);
}

int umdev_daemon_run(umdev_daemon *d)
{
	return umdev_loop_run(d->ctl);
}
