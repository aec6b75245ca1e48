/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdbool.h>
#include <string.h>

#include "util/iov.h"

uint64_t umdev_iov_size(const struct iovec *iov, unsigned cnt)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Copy between @buf and the bytes of @iov from @skip on; either direction. */
static size_t iov_copy(const struct iovec *iov, unsigned cnt, size_t skip, uint8_t *buf,
		       size_t len, bool to_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < cnt && done < len; i++) {
		size_t l = iov[i].iov_len;
		uint8_t *p = (uint8_t *)iov[i].iov_base + skip;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len - done)
			l = len - done;
		if (to_iov)
			memcpy(p, buf + done, l);
		else
			memcpy(buf + done, p, l);
		done += l;
		skip = 0;
	}
	return done;
}

size_t umdev_iov_to_buf(const struct iovec *iov, unsigned cnt, size_t skip, void *buf, size_t len)
{
	return iov_copy(iov, cnt, skip, buf, len, false);
}

size_t umdev_iov_from_buf(const struct iovec *iov, unsigned cnt, size_t skip, const void *buf,
			  size_t len)
{
	return iov_copy(iov, cnt, skip, (uint8_t *)buf, len, true);
}

int umdev_iov_slice(const struct iovec *src, unsigned cnt, uint64_t skip, uint64_t len,
		    struct iovec *dst, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cnt && len; i++) {
		uint64_t l = src[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		if (n == max)
			return -1;
		dst[n].iov_base = (uint8_t *)src[i].iov_base + skip;
		dst[n].iov_len = l;
		n++;
		len -= l;
		skip = 0;
	}
	return len ? -1 : (int)n;
}

uint8_t *umdev_iov_byte(const struct iovec *iov, unsigned cnt, uint64_t off)
{
	for (unsigned i = 0; i < cnt; i++) {
		if (off < iov[i].iov_len)
			return (uint8_t *)iov[i].iov_base + off;
		off -= iov[i].iov_len;
	}
	return NULL;
}
