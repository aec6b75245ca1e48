/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The accel operations on one descriptor, in one PASID's address space.
 * Pure with respect to the device: it gets a descriptor already copied out
 * of the ring and a map, and fills a completion record; the fuzz target
 * drives it directly.
 *
 * Every buffer must lie wholly inside one region of the map (a guest's
 * contiguous RAM); anything else is ACCEL_ST_BAD_ADDR with the address at
 * fault, never a pointer past guest memory. The source and destination of a
 * copy may overlap (memmove), as the guest's bytes are only data to us.
 */
#include <string.h>

#include "accel_internal.h"
#include "umdev/mem.h"

/* CRC32C (Castagnoli), reflected polynomial 0x82f63b78, slicing by 8. */
static uint32_t crc_tab[8][256];

static void crc_init_once(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t accel_crc32c(uint32_t crc, const void *buf, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const uint8_t *p = buf;

	pthread_once(&once, crc_init_once);
	crc = ~crc;
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		v ^= crc;
		crc = crc_tab[7][v & 0xff] ^ crc_tab[6][(v >> 8) & 0xff] ^
		      crc_tab[5][(v >> 16) & 0xff] ^ crc_tab[4][(v >> 24) & 0xff] ^
		      crc_tab[3][(v >> 32) & 0xff] ^ crc_tab[2][(v >> 40) & 0xff] ^
		      crc_tab[1][(v >> 48) & 0xff] ^ crc_tab[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

/* Host pointer for a guest buffer, or NULL with the fault address recorded. */
static void *buf_at(umdev_as_map *m, uint64_t addr, uint32_t len, unsigned prot,
		    struct accel_comp *c)
{
	void *p = umdev_as_map_translate(m, addr, len, prot);

	if (!p)
		c->fault_addr = addr;
	return p;
}

static uint32_t first_diff(const uint8_t *a, const uint8_t *b, uint32_t len)
{
	uint32_t i = 0;

	while (i < len && a[i] == b[i])
		i++;
	return i;
}

int accel_exec(const struct accel_desc *d, umdev_as_map *m, struct accel_comp *c)
{
	uint8_t *src = NULL, *dst = NULL, *src2 = NULL;
	uint64_t pat = d->pattern;
	uint32_t n = d->size;

	memset(c, 0, sizeof(*c));
	c->cookie = d->cookie;
	if (d->flags & ~(ACCEL_F_COMP | ACCEL_F_IRQ))
		return ACCEL_ST_BAD_FLAGS;
	if (d->opcode > ACCEL_OP_MAX)
		return ACCEL_ST_BAD_OPCODE;
	if (d->opcode == ACCEL_OP_NOP)
		return ACCEL_ST_SUCCESS;
	if (n == 0 || n > ACCEL_MAX_XFER)
		return ACCEL_ST_BAD_SIZE;
	switch (d->opcode) {
	case ACCEL_OP_COPY:
	case ACCEL_OP_DUALCAST:
		if (!(src = buf_at(m, d->src, n, UMDEV_MEM_READ, c)) ||
		    !(dst = buf_at(m, d->dst, n, UMDEV_MEM_WRITE, c)))
			return ACCEL_ST_BAD_ADDR;
		if (d->opcode == ACCEL_OP_DUALCAST &&
		    !(src2 = buf_at(m, d->src2, n, UMDEV_MEM_WRITE, c)))
			return ACCEL_ST_BAD_ADDR;
		memmove(dst, src, n);
		if (src2)
			memmove(src2, src, n);
		break;
	case ACCEL_OP_FILL:
		if (!(dst = buf_at(m, d->dst, n, UMDEV_MEM_WRITE, c)))
			return ACCEL_ST_BAD_ADDR;
		for (uint32_t i = 0; i < n; i += 8)
			memcpy(dst + i, &pat, n - i < 8 ? n - i : 8);
		break;
	case ACCEL_OP_COMPARE:
		if (!(src = buf_at(m, d->src, n, UMDEV_MEM_READ, c)) ||
		    !(src2 = buf_at(m, d->src2, n, UMDEV_MEM_READ, c)))
			return ACCEL_ST_BAD_ADDR;
		if (memcmp(src, src2, n)) {
			c->result = 1;
			c->bytes = first_diff(src, src2, n);
			return ACCEL_ST_SUCCESS;
		}
		break;
	case ACCEL_OP_COMPARE_PATTERN:
		if (!(src = buf_at(m, d->src, n, UMDEV_MEM_READ, c)))
			return ACCEL_ST_BAD_ADDR;
		for (uint32_t i = 0; i < n; i++) {
			if (src[i] != (uint8_t)(pat >> (8 * (i % 8)))) {
				c->result = 1;
				c->bytes = i;
				return ACCEL_ST_SUCCESS;
			}
		}
		break;
	case ACCEL_OP_CRC32C:
		if (!(src = buf_at(m, d->src, n, UMDEV_MEM_READ, c)))
			return ACCEL_ST_BAD_ADDR;
		c->value = accel_crc32c(d->crc_seed, src, n);
		break;
	default:
		return ACCEL_ST_BAD_OPCODE;
	}
	c->bytes = n;
	return ACCEL_ST_SUCCESS;
}
