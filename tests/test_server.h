/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers for tests that start servers (NBD servers, for one): a free TCP
 * port, and stopping a server for sure.
 */
#ifndef UMDEV_TEST_SERVER_H
#define UMDEV_TEST_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

/*
 * A TCP port on 127.0.0.1 that nobody listens on right now, or -1 (a small
 * race with other processes is accepted).
 */
static inline int test_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/*
 * SIGSTOP @pid and wait until it is stopped: kill() returns before every
 * thread has stopped, and a thread still running may answer a request.
 * 0, or -1 if the process is gone.
 */
static inline int test_stop_process(pid_t pid)
{
	char path[64], buf[256];

	if (kill(pid, SIGSTOP) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (;;) {
		FILE *f = fopen(path, "r");
		char *p = NULL;

		if (!f)
			return -1;
		if (fgets(buf, sizeof(buf), f))
			p = strrchr(buf, ')');
		fclose(f);
		if (p && p[1] == ' ' && p[2] == 'T')
			return 0;
		usleep(1000);
	}
}

#endif
