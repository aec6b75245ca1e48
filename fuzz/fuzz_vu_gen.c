/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Built-in driver of the vhost-user fuzz target (fuzz_vu_msg.c): writes
 * inputs in its format from a seed and runs them for a bounded time. The
 * generator follows the session it writes (features, memory layout, ring
 * sizes and indices, which fd is which) so that most inputs get past setup
 * and post virtio-blk requests; then it mutates payloads, framing and fds,
 * reorders steps, restarts rings, resets and hot-plugs memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "umdev/proto/virtio_blk.h"
#include "umdev/proto/virtio_ring.h"
#include "umdev/vq.h"

#include "fuzz_vu.h"
#include "fuzz_rng.h"

#define RING_SPAN 0x4000u /* per queue: desc +0, avail +0x1000, used +0x2000 */
#define DATA_OFF 0x8000u /* request slots of 4 KiB from here */
#define SLOT 0x1000u


static bool one_in(uint32_t n)
{
	return below(n) == 0;
}

/* Each input has its own stream, so input I of seed S can be rerun alone. */
static void seed_input(uint64_t seed, uint64_t iter)
{
	uint64_t z = seed + (iter + 1) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	rng_state = (z ^ (z >> 31)) | 1;
}

static uint64_t interesting(void)
{
	static const uint64_t v[] = { 0, 1, 2, 3, 4, 7, 8, 12, 16, 20, 24, 31, 32, 40, 0x7f,
				      0x80, 0xff, 0x100, 0x101, 0xfff, 0x1000, 0x1001, 0x7fff,
				      0x8000, 0xffff, 0x10000, 0x100000, 0x7fffffff, 0x80000000,
				      0xffffffff, 0x100000000ull, 0xfffffffffffff000ull,
				      0xffffffffffffffffull };

	return v[below(sizeof(v) / sizeof(v[0]))];
}

struct out {
	uint8_t *b;
	size_t len, cap;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->len + n > o->cap)
		return; /* truncated input: still a valid one */
	memcpy(o->b + o->len, p, n);
	o->len += n;
}

static void put_le(struct out *o, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(o, b, bytes);
}

struct fdspec {
	uint8_t kind;
	uint32_t arg;
};

/* What the generator knows of the session it writes. */
struct gen {
	struct out *o;
	unsigned nq;
	uint64_t capacity; /* sectors */
	unsigned nent, nmem, nkick; /* mirrors of make_fd() and nth_entry() */
	bool have_mem;
	unsigned mem_idx, mem_ent; /* guest memory: index among memfds, entry */
	uint64_t gpa, uva, memsize, mmap_off;
	uint64_t proto, features;
	int kick[2]; /* index among kick targets, -1: none */
	uint32_t num[2];
	uint16_t avail[2];
	bool setup; /* fewer mutations while the session is set up */
	size_t marks[2048]; /* where each step starts, for reordering */
	unsigned nmarks;
};

/* Start a step of kind @op. */
static void put_op(struct gen *g, unsigned op)
{
	if (g->nmarks < sizeof(g->marks) / sizeof(g->marks[0]))
		g->marks[g->nmarks++] = g->o->len;
	put_le(g->o, op, 1);
}

static struct fdspec new_fd(unsigned kind, uint32_t arg)
{
	return (struct fdspec){ (uint8_t)kind, arg };
}

/* Mirror of make_fd() and nth_entry(), as the fds are written out. */
static void count_fd(struct gen *g, struct fdspec s)
{
	if (s.kind == FD_REUSE || g->nent == MAX_ENTRIES)
		return;
	g->nent++;
	if (s.kind == FD_MEMFD || s.kind == FD_MEMFD_SEALED)
		g->nmem++;
	if (s.kind == FD_EVENTFD || s.kind == FD_PIPE_R || s.kind == FD_SOCK)
		g->nkick++;
}

static struct fdspec random_fd(struct gen *g)
{
	unsigned kind = below(FD_KINDS);

	if (kind == FD_REUSE)
		return new_fd(kind, g->nent ? below(g->nent) : 0);
	return new_fd(kind, one_in(2) ? 0x1000u << below(9) : (uint32_t)rnd());
}

/* Payload-only damage: sizes stay honest. */
static void mutate_payload(uint8_t *m, size_t len)
{
	size_t pl = len - sizeof(struct vhost_user_header);
	uint8_t *p = m + sizeof(struct vhost_user_header);

	for (unsigned r = 1 + below(3); r; r--) {
		switch (below(6)) {
		case 0:
			if (pl)
				p[below((uint32_t)pl)] ^= (uint8_t)(1u << below(8));
			break;
		case 1:
			if (pl)
				p[below((uint32_t)pl)] = (uint8_t)rnd();
			break;
		case 2:
			if (pl >= 4) {
				uint32_t v = (uint32_t)interesting();

				memcpy(p + 4 * below((uint32_t)pl / 4), &v, 4);
			}
			break;
		case 3:
			if (pl >= 8) {
				uint64_t v = interesting();

				memcpy(p + 8 * below((uint32_t)pl / 8), &v, 8);
			}
			break;
		case 4: { /* another request */
			uint32_t req = below(VHOST_USER_MAX_REQUEST + 4);

			memcpy(m, &req, 4);
			break;
		}
		default: /* flags */
			m[4] ^= (uint8_t)(1u << (2 + below(6)));
			break;
		}
	}
}

/* Framing damage: the server must close the connection cleanly (or cope). */
static size_t mutate_framing(uint8_t *m, size_t len, size_t cap)
{
	uint32_t v;

	switch (below(4)) {
	case 0: /* lie about the size */
		v = one_in(2) ? (uint32_t)interesting() : (uint32_t)(len - 12 + below(9) - 4);
		memcpy(m + 8, &v, 4);
		break;
	case 1: /* cut it short */
		len = below((uint32_t)len + 1);
		break;
	case 2: /* wrong protocol version */
		m[4] = (uint8_t)((m[4] & ~VHOST_USER_VERSION_MASK) | below(4));
		break;
	default: /* junk after it */
		for (unsigned i = 1 + below(64); i && len < cap; i--)
			m[len++] = (uint8_t)rnd();
		break;
	}
	return len;
}

static void emit_msg_fds(struct gen *g, uint32_t req, uint32_t flags, const void *payload,
			 uint32_t size, struct fdspec *fds, unsigned nfds)
{
	uint8_t m[sizeof(struct vhost_user_msg) + 128];
	struct vhost_user_header h = { req, VHOST_USER_VERSION | flags, size };
	struct fdspec extra[MAX_SEND_FDS];
	size_t len = sizeof(h) + size;
	size_t split = 0;

	memcpy(m, &h, sizeof(h));
	if (size)
		memcpy(m + sizeof(h), payload, size);
	if (one_in(g->setup ? 60 : 12))
		mutate_payload(m, len);
	if (one_in(g->setup ? 300 : 80))
		len = mutate_framing(m, len, sizeof(m));
	if (one_in(g->setup ? 80 : 16)) { /* too many, too few or other fds */
		if (nfds)
			memcpy(extra, fds, nfds * sizeof(*fds));
		switch (below(3)) {
		case 0:
			if (nfds)
				nfds--;
			break;
		case 1:
			for (unsigned k = 1 + below(3); k && nfds < MAX_SEND_FDS; k--)
				extra[nfds++] = random_fd(g);
			break;
		default: /* (not the first: it is the one the generator follows) */
			if (nfds > 1)
				extra[1 + below(nfds - 1)] = random_fd(g);
			break;
		}
		fds = extra;
	}
	if (len > 1 && one_in(16))
		split = 1 + below((uint32_t)len - 1);
	put_op(g, below(4)); /* MSG */
	put_le(g->o, nfds, 1);
	for (unsigned i = 0; i < nfds; i++) {
		count_fd(g, fds[i]);
		put_le(g->o, fds[i].kind, 1);
		put_le(g->o, fds[i].arg, 4);
	}
	put_le(g->o, split, 2);
	put_le(g->o, len, 2);
	put(g->o, m, len);
}

static uint32_t ack_flag(const struct gen *g)
{
	return (g->proto & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)) && one_in(3) ?
		       VHOST_USER_FLAG_NEED_REPLY : 0;
}

static void emit_msg(struct gen *g, uint32_t req, const void *payload, uint32_t size)
{
	emit_msg_fds(g, req, ack_flag(g), payload, size, NULL, 0);
}

static void emit_u64(struct gen *g, uint32_t req, uint64_t v)
{
	emit_msg(g, req, &v, 8);
}

static void emit_state(struct gen *g, uint32_t req, uint32_t idx, uint32_t num)
{
	struct vhost_user_vring_state s = { idx, num };

	emit_msg(g, req, &s, sizeof(s));
}

static void emit_sync(struct gen *g)
{
	put_op(g, OP_SYNC);
}

static void emit_poke(struct gen *g, uint64_t gpa, const void *b, uint16_t len)
{
	if (!g->have_mem)
		return;
	put_op(g, OP_POKE);
	put_le(g->o, g->mem_idx, 1);
	put_le(g->o, gpa - g->gpa + g->mmap_off, 4);
	put_le(g->o, len, 2);
	put_le(g->o, 0, 1);
	put(g->o, b, len);
}

static void emit_fill(struct gen *g, uint64_t gpa, uint8_t byte, uint16_t len)
{
	if (!g->have_mem)
		return;
	put_op(g, OP_POKE);
	put_le(g->o, g->mem_idx, 1);
	put_le(g->o, gpa - g->gpa + g->mmap_off, 4);
	put_le(g->o, len, 2);
	put_le(g->o, 1, 1);
	put_le(g->o, byte, 1);
}

static void emit_kick(struct gen *g, unsigned q)
{
	if (g->kick[q] < 0)
		return;
	put_op(g, OP_KICK);
	put_le(g->o, (uint64_t)g->kick[q], 1);
}

/* Features the blk device offers with either backend, plus protocol features. */
static const uint64_t blk_bits =
	1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |
	1ull << VIRTIO_RING_F_EVENT_IDX | 1ull << VIRTIO_BLK_F_SEG_MAX |
	1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
	1ull << VIRTIO_BLK_F_TOPOLOGY | 1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_MQ |
	1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
static const uint64_t proto_bits =
	(1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
	(1ull << VHOST_USER_PROTOCOL_F_CONFIG) | (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |
	(1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) |
	(1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
	(1ull << VHOST_USER_PROTOCOL_F_STATUS);

static void gen_features(struct gen *g)
{
	uint64_t f = 1ull << VIRTIO_F_VERSION_1 | (blk_bits & rnd());

	if (g->proto || one_in(2))
		f |= 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
	if (one_in(40))
		f |= 1ull << below(64); /* maybe never offered: the connection goes */
	g->features = f;
	emit_u64(g, VHOST_USER_SET_FEATURES, f);
}

static uint64_t ring_gpa(const struct gen *g, unsigned q)
{
	return g->gpa + q * RING_SPAN;
}

static void gen_region(struct vhost_user_mem_region *r, uint64_t gpa,
		       uint64_t size, uint64_t uva, uint64_t off)
{
	r->guest_phys_addr = gpa;
	r->memory_size = size;
	r->userspace_addr = uva;
	r->mmap_offset = off;
}

/* A fresh memfd for guest memory; usually big enough, sometimes not. */
static struct fdspec guest_memfd(struct gen *g, uint64_t need)
{
	uint32_t size = (uint32_t)need;

	if (one_in(g->setup ? 20 : 8))
		size = one_in(2) ? size / 2 : size - 1 - below(0x1000);
	g->mem_idx = g->nmem;
	g->mem_ent = g->nent;
	return new_fd(one_in(3) ? FD_MEMFD : FD_MEMFD_SEALED, size);
}

static void gen_layout(struct gen *g)
{
	static const uint64_t gpas[] = { 0, 0x100000, 0x100000000ull, 0xfffffffffff00000ull };

	g->memsize = 0x10000u << below(5); /* 64 KiB .. 1 MiB */
	g->gpa = one_in(4) ? gpas[below(one_in(4) ? 4 : 3)] : 0;
	g->uva = 0x7f0000000000ull + ((uint64_t)below(1 << 20) << 12);
	g->mmap_off = one_in(6) ? 0x1000u << below(3) : 0;
}

static void gen_mem_table(struct gen *g)
{
	struct vhost_user_mem_table t;
	struct fdspec fds[VHOST_USER_MAX_MEM_REGIONS];
	unsigned n = one_in(5) ? 2 + below(3) : 1;

	memset(&t, 0, sizeof(t));
	gen_layout(g);
	t.nregions = n;
	gen_region(&t.regions[0], g->gpa, g->memsize, g->uva, g->mmap_off);
	fds[0] = guest_memfd(g, g->memsize + g->mmap_off);
	for (unsigned i = 1; i < n; i++) {
		/* Extra regions beyond the first (sometimes overlapping it). */
		uint64_t gpa = one_in(16) ? g->gpa : g->gpa + 0x10000000ull * i;
		uint64_t size = 0x1000u << below(6);

		gen_region(&t.regions[i], gpa, size, g->uva + 0x10000000ull * i, 0);
		fds[i] = one_in(4) ? new_fd(FD_REUSE, g->mem_ent) :
				     new_fd(FD_MEMFD, (uint32_t)size);
	}
	g->have_mem = true;
	emit_msg_fds(g, VHOST_USER_SET_MEM_TABLE, ack_flag(g), &t, 8 + n * sizeof(t.regions[0]),
		     fds, n);
}

static void gen_kick_fd(struct gen *g, unsigned q)
{
	uint64_t u = q;
	struct fdspec fd;
	unsigned k = below(20);

	if (k == 0) { /* poll the ring instead */
		u |= VHOST_USER_VRING_NOFD;
		g->kick[q] = -1;
		emit_msg_fds(g, VHOST_USER_SET_VRING_KICK, ack_flag(g), &u, 8, NULL, 0);
		return;
	}
	g->kick[q] = (int)g->nkick;
	fd = new_fd(k == 1 ? FD_PIPE_R : k == 2 ? FD_SOCK : k == 3 ? FD_DEVNULL : FD_EVENTFD, 0);
	if (k == 3)
		g->kick[q] = -1;
	emit_msg_fds(g, VHOST_USER_SET_VRING_KICK, ack_flag(g), &u, 8, &fd, 1);
}

static void gen_call_fd(struct gen *g, unsigned q, uint32_t req)
{
	static const uint8_t odd[] = { FD_PIPE_FULL, FD_PIPE_W, FD_PIPE_R, FD_DEVNULL, FD_DIR,
				       FD_MEMFD, FD_SOCK };
	uint64_t u = q;
	struct fdspec fd;

	if (one_in(12)) {
		u |= VHOST_USER_VRING_NOFD;
		emit_msg_fds(g, req, ack_flag(g), &u, 8, NULL, 0);
		return;
	}
	fd = new_fd(one_in(8) ? odd[below(sizeof(odd))] : FD_EVENTFD, 0x1000);
	emit_msg_fds(g, req, ack_flag(g), &u, 8, &fd, 1);
}

static void gen_ring_addr(struct gen *g, unsigned q)
{
	uint64_t base = g->uva + (ring_gpa(g, q) - g->gpa);
	struct vhost_user_vring_addr a = { q, 0, base, base + 0x2000, base + 0x1000, 0 };

	if (one_in(40))
		a.flags = 1u << VHOST_VRING_F_LOG;
	if (one_in(16)) /* outside guest memory, or misaligned */
		a.used_user_addr = one_in(2) ? base + g->memsize : base + 0x2001;
	emit_msg(g, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a));
}

static void gen_ring(struct gen *g, unsigned q)
{
	g->num[q] = 4u << below(7); /* 4 .. 256 */
	if (one_in(30))
		g->num[q] = (uint32_t)interesting();
	g->avail[q] = 0;
	emit_fill(g, ring_gpa(g, q), 0, 0x3000);
	emit_state(g, VHOST_USER_SET_VRING_NUM, q, g->num[q]);
	emit_state(g, VHOST_USER_SET_VRING_BASE, q, 0);
	gen_ring_addr(g, q);
	gen_kick_fd(g, q);
	gen_call_fd(g, q, VHOST_USER_SET_VRING_CALL);
	if (one_in(3))
		gen_call_fd(g, q, VHOST_USER_SET_VRING_ERR);
	if ((g->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) || one_in(4))
		emit_state(g, VHOST_USER_SET_VRING_ENABLE, q, one_in(20) ? 0 : 1);
}

static void gen_inflight(struct gen *g)
{
	struct vhost_user_inflight in = { 0, 0, (uint16_t)g->nq, (uint16_t)(4u << below(7)), 0 };
	struct fdspec fd;

	if (one_in(10))
		in.num_queues = (uint16_t)interesting();
	emit_msg(g, VHOST_USER_GET_INFLIGHT_FD, &in, one_in(4) ? 20 : sizeof(in));
	in.mmap_size = umdev_vq_inflight_size(in.queue_size) * in.num_queues;
	if (one_in(8))
		in.mmap_size = one_in(2) ? in.mmap_size - 1 : interesting();
	if (one_in(8))
		in.mmap_offset = 0x1000;
	fd = new_fd(one_in(2) ? FD_MEMFD : FD_MEMFD_SEALED,
		    (uint32_t)(in.mmap_size + in.mmap_offset) - (one_in(10) ? 64 : 0));
	emit_msg_fds(g, VHOST_USER_SET_INFLIGHT_FD, ack_flag(g), &in, sizeof(in), &fd, 1);
}

static void gen_config(struct gen *g)
{
	struct vhost_user_config c;
	uint32_t size;

	memset(&c, 0, sizeof(c));
	c.offset = one_in(4) ? (uint32_t)interesting() : below(64);
	c.size = one_in(4) ? (uint32_t)interesting() : below(64);
	size = c.size > VHOST_USER_MAX_CONFIG_SIZE ? VHOST_USER_MAX_CONFIG_SIZE : c.size;
	if (one_in(2)) {
		for (uint32_t i = 0; i < size; i++)
			c.payload[i] = (uint8_t)rnd();
		emit_msg(g, VHOST_USER_SET_CONFIG, &c, VHOST_USER_CONFIG_HDR_SIZE + size);
	} else {
		emit_msg(g, VHOST_USER_GET_CONFIG, &c, VHOST_USER_CONFIG_HDR_SIZE + size);
	}
}

static void gen_setup(struct gen *g)
{
	if (!one_in(8))
		emit_msg(g, VHOST_USER_GET_FEATURES, NULL, 0);
	if (!one_in(8))
		emit_msg(g, VHOST_USER_GET_PROTOCOL_FEATURES, NULL, 0);
	if (!one_in(6)) {
		g->proto = one_in(3) ? proto_bits & rnd() : proto_bits;
		emit_u64(g, VHOST_USER_SET_PROTOCOL_FEATURES, g->proto);
	}
	if (!one_in(4))
		emit_msg(g, VHOST_USER_SET_OWNER, NULL, 0);
	if (one_in(2)) {
		emit_msg(g, VHOST_USER_GET_QUEUE_NUM, NULL, 0);
		emit_msg(g, VHOST_USER_GET_MAX_MEM_SLOTS, NULL, 0);
	}
	gen_features(g);
	if (one_in(4))
		gen_config(g);
	if (one_in(4))
		gen_inflight(g);
	if (!one_in(12))
		gen_mem_table(g);
	for (unsigned q = 0, nr = g->nq + one_in(20); q < nr; q++)
		gen_ring(g, q < 2 ? q : 1); /* one ring too many now and then */
	if (one_in(3))
		emit_u64(g, VHOST_USER_SET_STATUS, 0xf);
	emit_sync(g);
}

/* One virtio-blk request on ring @q: header, data, status, then the avail ring. */
static void gen_request(struct gen *g, unsigned q)
{
	static const uint32_t types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_IN,
					  VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
					  VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES, 2, 99 };
	uint32_t n = g->num[q] && g->num[q] <= 256 ? g->num[q] : 4;
	uint32_t nslots = (uint32_t)((g->memsize - DATA_OFF) / SLOT);
	uint64_t slot = g->gpa + DATA_OFF + (uint64_t)(g->avail[q] % nslots) * SLOT;
	uint32_t type = types[below(sizeof(types) / sizeof(types[0]))];
	uint32_t dlen = 512u * (1 + below(7));
	struct virtio_blk_outhdr h = { type, 0, below((uint32_t)g->capacity) };
	struct virtq_desc d[3];
	unsigned nd = 0;
	uint16_t head = (uint16_t)((g->avail[q] * 3u) % n), idx;
	bool indirect = (g->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC) || one_in(8)) &&
			one_in(5);

	if (one_in(8))
		h.sector = one_in(2) ? interesting() : g->capacity - 1;
	if (type == VIRTIO_BLK_T_FLUSH)
		h.sector = 0;
	emit_poke(g, slot, &h, sizeof(h));
	d[nd++] = (struct virtq_desc){ slot, sizeof(h), 0, 0 };
	switch (type) {
	case VIRTIO_BLK_T_FLUSH:
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		struct virtio_blk_discard_write_zeroes s = { h.sector, 1 + below(16),
							     below(2) };

		emit_poke(g, slot + 0x100, &s, sizeof(s));
		d[nd++] = (struct virtq_desc){ slot + 0x100, sizeof(s), 0, 0 };
		break;
	}
	case VIRTIO_BLK_T_OUT:
		emit_fill(g, slot + 0x100, (uint8_t)rnd(), (uint16_t)dlen);
		d[nd++] = (struct virtq_desc){ slot + 0x100, dlen, 0, 0 };
		break;
	default:
		d[nd++] = (struct virtq_desc){ slot + 0x100, type == VIRTIO_BLK_T_GET_ID ? 20 : dlen,
					       VIRTQ_DESC_F_WRITE, 0 };
		break;
	}
	d[nd++] = (struct virtq_desc){ slot + 0xf00, 1, VIRTQ_DESC_F_WRITE, 0 };
	if (one_in(20)) /* a hostile field */
		switch (below(3)) {
		case 0:
			d[below(nd)].len = (uint32_t)interesting();
			break;
		case 1:
			d[below(nd)].addr = interesting();
			break;
		default:
			d[below(nd)].flags ^= (uint16_t)(1u << below(3));
			break;
		}
	if (indirect) {
		for (unsigned i = 0; i + 1 < nd; i++) {
			d[i].flags |= VIRTQ_DESC_F_NEXT;
			d[i].next = (uint16_t)(i + 1);
		}
		emit_poke(g, slot + 0xf80, d, (uint16_t)(nd * sizeof(d[0])));
		d[0] = (struct virtq_desc){ slot + 0xf80, (uint32_t)(nd * sizeof(d[0])),
					    VIRTQ_DESC_F_INDIRECT, 0 };
		emit_poke(g, ring_gpa(g, q) + 16u * head, &d[0], sizeof(d[0]));
	} else {
		for (unsigned i = 0; i < nd; i++) {
			if (i + 1 < nd) {
				d[i].flags |= VIRTQ_DESC_F_NEXT;
				d[i].next = (uint16_t)((head + i + 1) % n);
			}
			emit_poke(g, ring_gpa(g, q) + 16u * ((head + i) % n), &d[i], sizeof(d[i]));
		}
	}
	emit_poke(g, ring_gpa(g, q) + 0x1000 + 4 + 2 * (g->avail[q] % n), &head, 2);
	g->avail[q]++;
	idx = one_in(40) ? (uint16_t)rnd() : g->avail[q];
	emit_poke(g, ring_gpa(g, q) + 0x1000 + 2, &idx, 2);
}

/* A well-formed-looking message of any kind, fds included. */
static void gen_random_msg(struct gen *g)
{
	static const uint32_t sizes[] = { 0, 8, 8, 20, 24, 40, 40, 12 + 8, 8 + 32, 8 + 64 };
	union vhost_user_payload p;
	struct fdspec fds[3];
	uint32_t req = 1 + below(VHOST_USER_MAX_REQUEST), size = sizes[below(10)];
	unsigned nfds = one_in(2) ? below(3) : 0;

	for (size_t i = 0; i < sizeof(p); i++)
		((uint8_t *)&p)[i] = one_in(4) ? (uint8_t)rnd() : 0;
	p.state.index = below(3);
	for (unsigned i = 0; i < nfds; i++)
		fds[i] = random_fd(g);
	emit_msg_fds(g, req, ack_flag(g), &p, size, fds, nfds);
}

static void gen_rem_add(struct gen *g)
{
	struct vhost_user_mem_reg m = { 0, { g->gpa, g->memsize, g->uva, g->mmap_off } };
	struct fdspec fd;

	if (one_in(6)) /* a region that is not there */
		m.region.memory_size = 0x1000;
	fd = new_fd(FD_REUSE, g->mem_ent);
	emit_msg_fds(g, VHOST_USER_REM_MEM_REG, ack_flag(g), &m, sizeof(m), &fd, one_in(2));
	if (one_in(4))
		return; /* the rings lose their memory */
	if (one_in(4)) {
		/* The same region from a new memfd (old contents gone) */
		fd = guest_memfd(g, g->memsize + g->mmap_off);
		emit_msg_fds(g, VHOST_USER_ADD_MEM_REG, ack_flag(g), &m, sizeof(m), &fd, 1);
		for (unsigned q = 0; q < g->nq; q++)
			g->avail[q] = 0;
		return;
	}
	fd = new_fd(FD_REUSE, g->mem_ent);
	emit_msg_fds(g, VHOST_USER_ADD_MEM_REG, ack_flag(g), &m, sizeof(m), &fd, 1);
}

static void gen_add_extra(struct gen *g)
{
	uint64_t size = 0x1000u << below(6);
	struct vhost_user_mem_reg m = {
		0, { one_in(4) ? interesting() & ~0xfffull : g->gpa + 0x40000000ull * (1 + below(4)),
		     size, g->uva + 0x40000000ull * (1 + below(4)), 0 }
	};
	struct fdspec fd = new_fd(one_in(2) ? FD_MEMFD : below(FD_REUSE), (uint32_t)size);

	emit_msg_fds(g, one_in(3) ? VHOST_USER_REM_MEM_REG : VHOST_USER_ADD_MEM_REG, ack_flag(g),
		     &m, sizeof(m), &fd, 1);
}

static void gen_restart_ring(struct gen *g, unsigned q)
{
	emit_state(g, VHOST_USER_GET_VRING_BASE, q, 0);
	if (one_in(3))
		return;
	if (one_in(3)) {
		gen_ring(g, q);
		return;
	}
	emit_state(g, VHOST_USER_SET_VRING_BASE, q, g->avail[q]);
	gen_kick_fd(g, q);
}

static void gen_step(struct gen *g)
{
	unsigned q = below(g->nq);
	unsigned k = below(100);

	if (k < 30) {
		for (unsigned i = 1 + below(4); i; i--)
			gen_request(g, q);
		if (!one_in(8))
			emit_kick(g, q);
	} else if (k < 38) {
		emit_sync(g);
	} else if (k < 44) {
		gen_restart_ring(g, q);
	} else if (k < 47) {
		emit_msg(g, one_in(4) ? VHOST_USER_RESET_OWNER : VHOST_USER_RESET_DEVICE, NULL, 0);
		gen_features(g);
		for (unsigned i = 0; i < g->nq; i++)
			gen_ring(g, i);
	} else if (k < 52) {
		gen_rem_add(g);
	} else if (k < 55) {
		gen_mem_table(g);
		for (unsigned i = 0; i < g->nq; i++)
			if (one_in(2))
				gen_ring(g, i);
	} else if (k < 59) {
		gen_call_fd(g, q, VHOST_USER_SET_VRING_CALL);
	} else if (k < 63) {
		emit_state(g, VHOST_USER_SET_VRING_ENABLE, q, one_in(2));
	} else if (k < 67) { /* ring configuration while it may run */
		switch (below(3)) {
		case 0:
			emit_state(g, VHOST_USER_SET_VRING_NUM, q, 4u << below(7));
			break;
		case 1:
			emit_state(g, VHOST_USER_SET_VRING_BASE, q, g->avail[q]);
			break;
		default:
			gen_ring_addr(g, q);
			break;
		}
	} else if (k < 71) {
		gen_config(g);
	} else if (k < 74) {
		if (one_in(2))
			emit_u64(g, VHOST_USER_SET_STATUS, one_in(4) ? interesting() : below(0x100));
		else
			emit_msg(g, VHOST_USER_GET_STATUS, NULL, 0);
	} else if (k < 77) {
		gen_features(g);
	} else if (k < 80) {
		gen_inflight(g);
	} else if (k < 82) {
		/* Shrink (or grow) guest memory under the server's mapping. */
		if (g->have_mem) {
			put_op(g, OP_TRUNC);
			put_le(g->o, g->mem_idx, 1);
			put_le(g->o, one_in(2) ? g->memsize / 2 : g->memsize * 2, 4);
		}
	} else if (k < 88) {
		gen_random_msg(g);
	} else if (k < 91) {
		/* Garbage in a ring. */
		uint8_t junk[64];
		uint16_t len = (uint16_t)(1 + below(sizeof(junk)));

		for (unsigned i = 0; i < len; i++)
			junk[i] = (uint8_t)rnd();
		emit_poke(g, ring_gpa(g, q) + below(0x3000 - len), junk, len);
		emit_kick(g, q);
	} else if (k < 94) {
		gen_add_extra(g);
	} else if (k < 96) {
		emit_state(g, VHOST_USER_GET_VRING_BASE, below(4), 0);
	} else if (k < 99 || !one_in(4)) {
		gen_kick_fd(g, q);
	} else {
		/* Raw noise: the connection most likely goes. */
		uint8_t junk[48];
		uint32_t len = 1 + below(sizeof(junk));

		for (unsigned i = 0; i < len; i++)
			junk[i] = (uint8_t)rnd();
		put_op(g, 0);
		put_le(g->o, 0, 1);
		put_le(g->o, 0, 2);
		put_le(g->o, len, 2);
		put(g->o, junk, len);
	}
}

/* Swap a few neighbouring steps now and then: sessions out of order. */
static void reorder(struct gen *g)
{
	static uint8_t tmp[1 << 18];

	for (unsigned k = one_in(3) ? 1 + below(4) : 0; k && g->nmarks > 2; k--) {
		/* Mostly in the setup, where the order matters most. */
		unsigned i = below(one_in(2) && g->nmarks > 12 ? 12 : g->nmarks - 2);
		size_t a = g->marks[i], b = g->marks[i + 1];
		size_t c = i + 2 < g->nmarks ? g->marks[i + 2] : g->o->len;

		memcpy(tmp, g->o->b + a, c - a);
		memcpy(g->o->b + a, tmp + (b - a), c - b);
		memcpy(g->o->b + a + (c - b), tmp, b - a);
		g->marks[i + 1] = a + (c - b);
	}
}

static size_t gen_input(uint8_t *buf, size_t cap)
{
	struct out o = { buf, 0, cap };
	struct gen g;
	uint8_t cfg = (uint8_t)rnd();
	unsigned steps = below(4) ? 4 + below(40) : below(4);

	memset(&g, 0, sizeof(g));
	g.o = &o;
	g.kick[0] = g.kick[1] = -1;
	if (below(4))
		cfg &= ~0x10; /* busy polling burns a core per queue: rarely */
	put_le(&o, cfg, 1);
	g.nq = cfg & 2 ? 2 : 1;
	g.capacity = cfg & 1 ? (64u << 20) / 512 : (1u << 20) / 512;
	g.setup = true;
	gen_setup(&g);
	g.setup = false;
	for (unsigned i = 0; i < steps && o.len + 8192 < cap; i++)
		gen_step(&g);
	reorder(&g);
	return o.len;
}

static int write_file(const char *path, const uint8_t *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, b, len) != (ssize_t)len)
		ret = -EIO;
	close(fd);
	return ret;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat sb;
	uint8_t *b;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &sb) < 0) {
		perror(path);
		exit(2);
	}
	b = malloc((size_t)sb.st_size + 1);
	if (!b || read(fd, b, (size_t)sb.st_size) != sb.st_size) {
		perror(path);
		exit(2);
	}
	close(fd);
	*len = (size_t)sb.st_size;
	return b;
}

static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
	static uint8_t input[1 << 18];
	const char *replay = NULL, *corpus = NULL;
	bool verbose = false, only = false;
	double seconds = 30;
	uint64_t seed = 0, only_iter = 0, ncorpus = 0;
	unsigned watchdog = 20;
	struct timespec t0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = true;
			only_iter = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--replay") && i + 1 < argc)
			replay = argv[++i];
		else if (!strcmp(argv[i], "--corpus") && i + 2 < argc) {
			corpus = argv[++i];
			ncorpus = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--watchdog") && i + 1 < argc)
			watchdog = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--verbose"))
			verbose = true;
		else {
			fprintf(stderr,
				"usage: %s [--seconds N] [--seed S] [--only I] [--verbose] "
				"[--watchdog SECONDS]\n       %s --replay FILE\n       %s --corpus "
				"DIR N\n",
				argv[0], argv[0], argv[0]);
			return 2;
		}
	}
	if (!seed) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		seed = (uint64_t)t.tv_sec * 1000000007ull ^ (uint64_t)t.tv_nsec ^
		       (uint64_t)getpid() << 32;
	}
	if (corpus) {
		char path[4096];

		for (uint64_t i = 0; i < ncorpus; i++) {
			seed_input(seed, i);
			snprintf(path, sizeof(path), "%s/gen-%llx-%llu", corpus,
				 (unsigned long long)seed, (unsigned long long)i);
			if (write_file(path, input, gen_input(input, sizeof(input))) < 0) {
				perror(path);
				return 1;
			}
		}
		return 0;
	}
	printf("fuzz-vu-msg: seed 0x%llx\n", (unsigned long long)seed);
	fflush(stdout);
	fz_vu_driver_start(verbose, replay ? "fuzz-vu-replay-crash.bin" : "fuzz-vu-crash.bin");
	if (replay) {
		size_t len;
		uint8_t *b = read_file(replay, &len);

		fz_vu_driver_input(false, seed, 0);
		alarm(watchdog);
		LLVMFuzzerTestOneInput(b, len);
		alarm(0);
		free(b);
		printf("fuzz-vu-msg: %s: no finding (%llu ring requests completed)\n", replay,
		       (unsigned long long)fz_vu_totals.requests);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t iter = only ? only_iter : 0; only ? iter == only_iter : since(&t0) < seconds;
	     iter++) {
		size_t len;

		seed_input(seed, iter);
		len = gen_input(input, sizeof(input));
		fz_vu_driver_input(true, seed, iter);
		alarm(watchdog);
		LLVMFuzzerTestOneInput(input, len);
		alarm(0);
	}
	printf("fuzz-vu-msg: %llu inputs (%llu steps) in %.0f s, seed 0x%llx, %llu ring requests "
	       "completed, %llu rings found broken; no crash, hang or fd leak\n",
	       (unsigned long long)fz_vu_totals.inputs, (unsigned long long)fz_vu_totals.steps, since(&t0),
	       (unsigned long long)seed, (unsigned long long)fz_vu_totals.requests,
	       (unsigned long long)fz_vu_totals.broken);
	return 0;
}
