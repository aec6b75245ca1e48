/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Running a server process (umdevd, qemu-storage-daemon) from a test or
 * benchmark: spawn it, wait for its socket, check it is alive, read its CPU
 * time, stop it. The child is killed if the parent dies (PR_SET_PDEATHSIG),
 * so a crashed test leaves no daemon behind. Not thread-safe.
 */
#ifndef UMDEV_CLIENT_PROC_UTIL_H
#define UMDEV_CLIENT_PROC_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct umdev_proc {
	pid_t pid; /* 0 when not running */
	int status; /* wait status once reaped */
};

/**
 * umdev_proc_spawn() - fork and exec @argv (argv[0] is a path or a name
 * looked up in PATH). stdout and stderr go to @log_path (appended) if not
 * NULL. Return: 0 or -errno (exec failures show as an early exit).
 */
int umdev_proc_spawn(struct umdev_proc *p, char *const argv[], const char *log_path)
	__attribute__((warn_unused_result));

/**
 * umdev_proc_wait_socket() - wait up to @timeout_ms until a UNIX socket
 * bound to @path (as the server spelled it) listens, failing early with
 * -ECHILD if @p exits meanwhile. The socket file existing is not enough: a
 * server may bind before it listens.
 */
int umdev_proc_wait_socket(struct umdev_proc *p, const char *path, int timeout_ms)
	__attribute__((warn_unused_result));

/** umdev_proc_alive() - true while the process has not exited. */
bool umdev_proc_alive(struct umdev_proc *p);

/**
 * umdev_proc_stop() - SIGTERM, wait up to @timeout_ms, then SIGKILL.
 * Return: the wait status, or -errno. A no-op (0) if not running.
 */
int umdev_proc_stop(struct umdev_proc *p, int timeout_ms);

/** umdev_proc_kill() - SIGKILL and reap, for crash tests. */
void umdev_proc_kill(struct umdev_proc *p);

/** umdev_proc_cpu_ns() - user+system CPU time of @pid so far, in ns. */
int umdev_proc_cpu_ns(pid_t pid, uint64_t *ns) __attribute__((warn_unused_result));

/**
 * umdev_proc_tmpdir() - make a fresh directory under $TMPDIR or /tmp into
 * @buf (at least 64 bytes). The caller removes it (umdev_proc_rmtree).
 */
int umdev_proc_tmpdir(char *buf, size_t len) __attribute__((warn_unused_result));

/** umdev_proc_rmtree() - remove @dir and the plain files/sockets in it. */
void umdev_proc_rmtree(const char *dir);

#endif
