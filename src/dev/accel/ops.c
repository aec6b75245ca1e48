/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The accel operations on one descriptor, in one PASID's address space.
 * Pure with respect to the device: it gets a descriptor already copied out
 * of the ring and a map, and fills a completion record; the fuzz target
 * drives it directly.
 *
 * Every byte of every buffer must lie in the map, with the access the
 * operation needs; a buffer may span adjacent regions (a vIOMMU maps page by
 * page). Anything else is ACCEL_ST_BAD_ADDR with the start of the buffer at
 * fault, checked before anything is written, never a pointer past guest
 * memory. The source and destination of a copy may overlap (memmove), as the
 * guest's bytes are only data to us.
 */
#include <stdlib.h>
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

/*
 * A descriptor's buffers, walked together: each piece is contiguous in
 * every buffer. A guest behind a vIOMMU has its buffers mapped page by page
 * (adjacent DMA windows), so a buffer may take several pieces.
 */
struct walk {
	umdev_as_map *m;
	unsigned nb;
	uint64_t addr[3];
	unsigned prot[3];
	uint8_t *p[3];
};

static void walk_add(struct walk *w, uint64_t addr, unsigned prot)
{
	w->addr[w->nb] = addr;
	w->prot[w->nb++] = prot;
}

/*
 * Every byte of every buffer reachable? Checked before anything is written,
 * so a refused descriptor changes nothing. The fault address is the start of
 * the buffer at fault.
 */
static bool walk_check(const struct walk *w, uint32_t n, struct accel_comp *c)
{
	for (unsigned i = 0; i < w->nb; i++) {
		uint64_t got;

		if (w->addr[i] + n - 1 < w->addr[i]) {
			c->fault_addr = w->addr[i];
			return false;
		}
		for (uint32_t o = 0; o < n; o += (uint32_t)got)
			if (!umdev_as_map_translate_prefix(w->m, w->addr[i] + o, n - o, w->prot[i],
							   &got)) {
				c->fault_addr = w->addr[i];
				return false;
			}
	}
	return true;
}

/* The piece at offset @off (at most @left bytes): pointers in w->p, its length. */
static uint32_t walk_piece(struct walk *w, uint32_t off, uint32_t left)
{
	uint64_t len = left;

	for (unsigned i = 0; i < w->nb; i++) {
		uint64_t got;

		w->p[i] = umdev_as_map_translate_prefix(w->m, w->addr[i] + off, len, w->prot[i],
							&got);
		if (got < len)
			len = got;
	}
	return (uint32_t)len; /* > 0: walk_check() passed and the map is fixed */
}

/* Pattern byte for offset @i of the buffer (the pattern repeats every 8 bytes). */
static uint8_t pat_byte(uint64_t pat, uint32_t i)
{
	return (uint8_t)(pat >> (8 * (i % 8)));
}

static uint32_t first_diff(const uint8_t *a, const uint8_t *b, uint32_t len)
{
	uint32_t i = 0;

	while (i < len && a[i] == b[i])
		i++;
	return i;
}

/*
 * Copy and dualcast. In one piece, memmove (source and destination may
 * overlap; the guest's bytes are only data to us); in several, through a
 * bounce buffer, so overlapping ranges still read as memmove does.
 */
static int do_copy(struct walk *w, uint32_t n)
{
	uint8_t *tmp;

	if (walk_piece(w, 0, n) == n) {
		memmove(w->p[1], w->p[0], n);
		if (w->nb == 3)
			memmove(w->p[2], w->p[0], n);
		return ACCEL_ST_SUCCESS;
	}
	tmp = malloc(n);
	if (!tmp)
		return ACCEL_ST_BAD_SIZE;
	for (uint32_t o = 0, k; o < n; o += k) {
		k = walk_piece(w, o, n - o);
		memcpy(tmp + o, w->p[0], k);
	}
	for (uint32_t o = 0, k; o < n; o += k) {
		k = walk_piece(w, o, n - o);
		memcpy(w->p[1], tmp + o, k);
		if (w->nb == 3)
			memcpy(w->p[2], tmp + o, k);
	}
	free(tmp);
	return ACCEL_ST_SUCCESS;
}

int accel_exec(const struct accel_desc *d, umdev_as_map *m, struct accel_comp *c)
{
	struct walk w = { .m = m };
	uint64_t pat = d->pattern;
	uint32_t n = d->size, k;
	uint32_t crc = d->crc_seed;

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
		walk_add(&w, d->src, UMDEV_MEM_READ);
		walk_add(&w, d->dst, UMDEV_MEM_WRITE);
		if (d->opcode == ACCEL_OP_DUALCAST)
			walk_add(&w, d->src2, UMDEV_MEM_WRITE);
		break;
	case ACCEL_OP_FILL:
		walk_add(&w, d->dst, UMDEV_MEM_WRITE);
		break;
	case ACCEL_OP_COMPARE:
		walk_add(&w, d->src, UMDEV_MEM_READ);
		walk_add(&w, d->src2, UMDEV_MEM_READ);
		break;
	case ACCEL_OP_COMPARE_PATTERN:
	case ACCEL_OP_CRC32C:
		walk_add(&w, d->src, UMDEV_MEM_READ);
		break;
	default:
		return ACCEL_ST_BAD_OPCODE;
	}
	if (!walk_check(&w, n, c))
		return ACCEL_ST_BAD_ADDR;
	if (d->opcode == ACCEL_OP_COPY || d->opcode == ACCEL_OP_DUALCAST) {
		int st = do_copy(&w, n);

		if (st != ACCEL_ST_SUCCESS)
			return st;
		c->bytes = n;
		return ACCEL_ST_SUCCESS;
	}
	for (uint32_t o = 0; o < n; o += k) {
		k = walk_piece(&w, o, n - o);
		switch (d->opcode) {
		case ACCEL_OP_FILL:
			for (uint32_t i = 0; i < k; i++)
				w.p[0][i] = pat_byte(pat, o + i);
			break;
		case ACCEL_OP_COMPARE:
			if (memcmp(w.p[0], w.p[1], k)) {
				c->result = 1;
				c->bytes = o + first_diff(w.p[0], w.p[1], k);
				return ACCEL_ST_SUCCESS;
			}
			break;
		case ACCEL_OP_COMPARE_PATTERN:
			for (uint32_t i = 0; i < k; i++) {
				if (w.p[0][i] != pat_byte(pat, o + i)) {
					c->result = 1;
					c->bytes = o + i;
					return ACCEL_ST_SUCCESS;
				}
			}
			break;
		default: /* ACCEL_OP_CRC32C */
			crc = accel_crc32c(crc, w.p[0], k);
			break;
		}
	}
	if (d->opcode == ACCEL_OP_CRC32C)
		c->value = crc;
	c->bytes = n;
	return ACCEL_ST_SUCCESS;
}
