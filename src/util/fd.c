/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

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
