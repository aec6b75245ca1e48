/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef UMDEV_UTIL_FD_H
#define UMDEV_UTIL_FD_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Before mapping a client's fd: does the file really hold [@off, @off+@len)?
 * mmap() accepts a range past the end of a file, and touching that part later
 * raises SIGBUS in whichever thread does it, so a hostile client could kill
 * the daemon. Regular files (memfd, tmpfs, hugetlbfs) are checked against
 * their size; other kinds (devices) are left to mmap. -EINVAL if the range is
 * not covered or overflows.
 *
 * *@shrink_sealed tells whether the file can no longer shrink (F_SEAL_SHRINK),
 * i.e. whether the check stays true after mapping. QEMU seals its memfd
 * guest memory by default.
 */
int umdev_fd_check_range(int fd, uint64_t off, uint64_t len, bool *shrink_sealed)
	__attribute__((warn_unused_result));

#endif
