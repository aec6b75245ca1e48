/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fd.h"

int umdev_fd_check_range(int fd, uint64_t off, uint64_t len, bool *shrink_sealed)
{
	struct stat st;
	int seals;

	*shrink_sealed = false;
	if (off + len < off)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	if (st.st_size < 0 || off + len > (uint64_t)st.st_size)
		return -EINVAL;
	seals = fcntl(fd, F_GET_SEALS);
	*shrink_sealed = seals >= 0 && (seals & F_SEAL_SHRINK);
	return 0;
}

int umdev_fd_prepare_eventfd(int fd)
{
	char path[64], link[64];
	ssize_t n;
	int fl;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	if (strcmp(link, "anon_inode:[eventfd]") != 0)
		return -EBADFD;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}
