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

/*
 * An fd a client gave us to signal or be signalled through (kick, call,
 * irq): it must be an eventfd, since anything else (a pipe nobody reads, a
 * socket, a file) could block or never wake the thread that uses it. Checks
 * the kind and sets O_NONBLOCK (on the open file, which the client shares:
 * eventfds are used non-blocking by QEMU and KVM alike), so a write to a
 * saturated counter fails with EAGAIN instead of blocking: the signal is
 * pending anyway. -EBADFD if @fd is not an eventfd.
 */
int umdev_fd_prepare_eventfd(int fd) __attribute__((warn_unused_result));

#endif
