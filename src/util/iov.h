/* SPDX-License-Identifier: BSD-3-Clause */
/* iovec helpers used by devices to carve requests out of descriptor chains. */
#ifndef UMDEV_UTIL_IOV_H
#define UMDEV_UTIL_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Total bytes in @iov[0..@cnt). */
uint64_t umdev_iov_size(const struct iovec *iov, unsigned cnt);

/* Copy up to @len bytes starting @skip bytes into @iov, to @buf. Returns bytes copied. */
size_t umdev_iov_to_buf(const struct iovec *iov, unsigned cnt, size_t skip, void *buf, size_t len);

/* Copy @len bytes from @buf into @iov starting @skip bytes in. Returns bytes copied. */
size_t umdev_iov_from_buf(const struct iovec *iov, unsigned cnt, size_t skip, const void *buf,
			  size_t len);

/*
 * Describe the bytes [@skip, @skip+@len) of @src in @dst (at most @max
 * entries), without copying data. Returns the entry count, or -1 if @src is
 * shorter than @skip+@len or @dst is too small.
 */
int umdev_iov_slice(const struct iovec *src, unsigned cnt, uint64_t skip, uint64_t len,
		    struct iovec *dst, unsigned max);

/* Host pointer to byte @off of @iov, or NULL if out of range. */
uint8_t *umdev_iov_byte(const struct iovec *iov, unsigned cnt, uint64_t off);

#endif
