/* SPDX-License-Identifier: BSD-3-Clause */
/* Server process helpers for tests and benchmarks; see proc_util.h. */
#include "client/proc_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int umdev_proc_spawn(struct umdev_proc *p, char *const argv[], const char *log_path)
{
	pid_t parent = getpid();
	pid_t pid;

	p->pid = 0;
	p->status = 0;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* The parent may have died before prctl took effect. */
		if (getppid() != parent)
			_exit(127);
		if (log_path) {
			int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	p->pid = pid;
	return 0;
}

bool umdev_proc_alive(struct umdev_proc *p)
{
	pid_t r;

	if (p->pid <= 0)
		return false;
	r = waitpid(p->pid, &p->status, WNOHANG);
	if (r == p->pid) {
		p->pid = 0;
		return false;
	}
	return true;
}

/* __SO_ACCEPTCON in /proc/net/unix's Flags: the socket listens. */
#define UNIX_FLAG_LISTENING 0x10000

/*
 * Whether a listening UNIX socket is bound to @path, per /proc/net/unix
 * (the kernel's list; it shows the name given to bind()). Unlike a stat()
 * of the file or a probe connection, this neither races with listen() nor
 * leaves a session for the server to tear down.
 */
static bool unix_listening(const char *path)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[4352];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long flags;
		char name[4096];
		int n = sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %4095s", &flags, name);

		found = n == 2 && (flags & UNIX_FLAG_LISTENING) && !strcmp(name, path);
	}
	fclose(f);
	return found;
}

int umdev_proc_wait_socket(struct umdev_proc *p, const char *path, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;

	for (;;) {
		if (unix_listening(path))
			return 0;
		if (!umdev_proc_alive(p))
			return -ECHILD;
		if (mono_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(5000);
	}
}

int umdev_proc_stop(struct umdev_proc *p, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;

	if (p->pid <= 0)
		return p->status;
	kill(p->pid, SIGTERM);
	while (mono_ms() < deadline) {
		if (!umdev_proc_alive(p))
			return p->status;
		usleep(5000);
	}
	umdev_proc_kill(p);
	return p->status;
}

void umdev_proc_kill(struct umdev_proc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
		;
	p->pid = 0;
}

int umdev_proc_cpu_ns(pid_t pid, uint64_t *ns)
{
	char path[64], buf[1024];
	unsigned long long ut, st;
	const char *q;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* comm may hold spaces and parens: fields restart after the last ')'. */
	q = strrchr(buf, ')');
	if (!q)
		return -EIO;
	/* After ") " come field 3 (state) onwards; utime/stime are 14 and 15. */
	if (sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EIO;
	*ns = (uint64_t)(ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
	return 0;
}

int umdev_proc_tmpdir(char *buf, size_t len)
{
	const char *t = getenv("TMPDIR");

	if (!t || !*t)
		t = "/tmp";
	if ((size_t)snprintf(buf, len, "%s/umdev-XXXXXX", t) >= len)
		return -ENAMETOOLONG;
	return mkdtemp(buf) ? 0 : -errno;
}

void umdev_proc_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}
