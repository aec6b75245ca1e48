/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared helpers for the protocol tests; see proto_common.h. */
#include "proto_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 64

void proto_srv_init(struct proto_srv *s, uint64_t disk_bytes)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(umdev_proc_tmpdir(s->dir, sizeof(s->dir)), 0);
	snprintf(s->sock, sizeof(s->sock), "%s/blk0.sock", s->dir);
	snprintf(s->sock2, sizeof(s->sock2), "%s/blk1.sock", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
	snprintf(s->disk, sizeof(s->disk), "%s/disk.img", s->dir);
	if (disk_bytes) {
		int fd = open(s->disk, O_RDWR | O_CREAT | O_TRUNC, 0600);

		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, (off_t)disk_bytes), 0);
		close(fd);
	}
}

/* Replace each placeholder in @in; the result is malloc'ed. */
static char *subst(const struct proto_srv *s, const char *in, bool *uses_sock2)
{
	static const char *const keys[] = { "@SOCK@", "@SOCK2@", "@DISK@", "@DIR@" };
	const char *vals[] = { s->sock, s->sock2, s->disk, s->dir };
	char out[1024];
	size_t o = 0;

	while (*in && o < sizeof(out) - 1) {
		bool hit = false;

		for (unsigned k = 0; k < 4; k++) {
			size_t kl = strlen(keys[k]);

			if (strncmp(in, keys[k], kl))
				continue;
			if (k == 1)
				*uses_sock2 = true;
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", vals[k]);
			if (o >= sizeof(out))
				o = sizeof(out) - 1;
			in += kl;
			hit = true;
			break;
		}
		if (!hit)
			out[o++] = *in++;
	}
	out[o] = 0;
	return strdup(out);
}

static void start(struct proto_srv *s, const char *exe, va_list ap)
{
	char *argv[MAX_ARGS];
	bool uses_sock2 = false;
	unsigned n = 0;
	const char *a;
	int r;

	argv[n++] = strdup(exe);
	while ((a = va_arg(ap, const char *)) && n < MAX_ARGS - 1)
		argv[n++] = subst(s, a, &uses_sock2);
	argv[n] = NULL;
	r = umdev_proc_spawn(&s->proc, argv, s->log);
	for (unsigned i = 0; i < n; i++)
		free(argv[i]);
	assert_int_equal(r, 0);
	r = umdev_proc_wait_socket(&s->proc, s->sock, 10000);
	if (!r && uses_sock2)
		r = umdev_proc_wait_socket(&s->proc, s->sock2, 10000);
	if (r)
		proto_stop(s, true);
	assert_int_equal(r, 0);
}

void proto_start_umdevd(struct proto_srv *s, ...)
{
	const char *exe = getenv("UMDEVD");
	va_list ap;

	assert_non_null(exe);
	va_start(ap, s);
	start(s, exe, ap);
	va_end(ap);
}

void proto_start_qsd(struct proto_srv *s, ...)
{
	const char *exe = getenv("QSD");
	va_list ap;

	va_start(ap, s);
	start(s, exe && *exe ? exe : "qemu-storage-daemon", ap);
	va_end(ap);
}

void proto_stop(struct proto_srv *s, bool dump)
{
	umdev_proc_stop(&s->proc, 3000);
	if (dump) {
		char buf[4096];
		int fd = open(s->log, O_RDONLY);
		ssize_t n;

		fprintf(stderr, "---- server log (%s) ----\n", s->log);
		while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, (size_t)n, stderr);
		if (fd >= 0)
			close(fd);
		fprintf(stderr, "---- end of server log ----\n");
		if (s->proc.pid == 0 && WIFSIGNALED(s->proc.status))
			fprintf(stderr, "server was killed by signal %d (%s)\n",
				WTERMSIG(s->proc.status), strsignal(WTERMSIG(s->proc.status)));
		else if (s->proc.pid == 0 && WIFEXITED(s->proc.status))
			fprintf(stderr, "server exited with status %d\n",
				WEXITSTATUS(s->proc.status));
	}
	if (s->dir[0])
		umdev_proc_rmtree(s->dir);
	s->dir[0] = 0;
}

bool proto_stop_alive(struct proto_srv *s)
{
	bool alive = umdev_proc_alive(&s->proc);

	proto_stop(s, !alive);
	return alive;
}

void proto_connect_blk(struct umdev_vuc *c, const char *sock, unsigned nq, uint16_t qsize,
		       unsigned nregions, uint64_t region_size)
{
	assert_int_equal(umdev_vuc_connect(c, sock, 3000), 0);
	assert_int_equal(umdev_vuc_start_blk(c, nq, qsize, nregions, region_size, 0), 0);
}

void proto_fill(void *p, size_t len, uint64_t seed)
{
	uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)((seed * 131 + i * 7 + (i >> 9)) ^ (seed >> 3));
}

bool proto_check(const void *p, size_t len, uint64_t seed)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != (uint8_t)((seed * 131 + i * 7 + (i >> 9)) ^ (seed >> 3)))
			return false;
	return true;
}

int proto_rw(struct umdev_vuc *c, unsigned q, uint32_t type, uint64_t sector, uint64_t data_gpa,
	     uint32_t bytes, unsigned nseg)
{
	struct umdev_vqd_buf bufs[256];
	uint32_t per;

	assert_true(nseg <= 256 && (nseg ? bytes % nseg == 0 : bytes == 0));
	per = nseg ? bytes / nseg : 0;
	for (unsigned i = 0; i < nseg; i++)
		bufs[i] = (struct umdev_vqd_buf){ .addr = data_gpa + (uint64_t)i * per,
						  .len = per,
						  .write = type == VIRTIO_BLK_T_IN ||
							   type == VIRTIO_BLK_T_GET_ID };
	return umdev_vblk_io(c, q, type, sector, bufs, nseg, PROTO_IO_TIMEOUT_MS);
}

int proto_dwz(struct umdev_vuc *c, uint32_t type, uint64_t sector, uint32_t n, uint32_t flags)
{
	uint64_t seg = umdev_vuc_alloc(c, 0, sizeof(struct virtio_blk_discard_write_zeroes), 16);
	struct virtio_blk_discard_write_zeroes *s = umdev_vuc_gpa_ptr(c, seg, sizeof(*s));
	struct umdev_vqd_buf b = { .addr = seg, .len = sizeof(*s) };

	s->sector = sector;
	s->num_sectors = n;
	s->flags = flags;
	return umdev_vblk_io(c, 0, type, 0, &b, 1, PROTO_IO_TIMEOUT_MS);
}

void proto_check_roundtrip_all_queues(struct umdev_vuc *c, unsigned nq)
{
	uint64_t wb = umdev_vuc_alloc(c, 0, 8192, 4096);
	uint64_t rb = umdev_vuc_alloc(c, 0, 8192, 4096);

	assert_true(wb && rb);
	for (unsigned q = 0; q < nq; q++) {
		uint64_t sector = 1000 + q * 64;

		proto_fill(umdev_vuc_gpa_ptr(c, wb, 8192), 8192, 77 + q);
		memset(umdev_vuc_gpa_ptr(c, rb, 8192), 0xee, 8192);
		assert_int_equal(proto_rw(c, q, VIRTIO_BLK_T_OUT, sector, wb, 8192, 1),
				 VIRTIO_BLK_S_OK);
		assert_int_equal(proto_rw(c, q, VIRTIO_BLK_T_IN, sector, rb, 8192, 1),
				 VIRTIO_BLK_S_OK);
		assert_true(proto_check(umdev_vuc_gpa_ptr(c, rb, 8192), 8192, 77 + q));
	}
	/* What queue 0 wrote is visible through the last queue too. */
	memset(umdev_vuc_gpa_ptr(c, rb, 8192), 0, 8192);
	assert_int_equal(proto_rw(c, nq - 1, VIRTIO_BLK_T_IN, 1000, rb, 8192, 1),
			 VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(c, rb, 8192), 8192, 77));
}

void proto_check_multiseg(struct umdev_vuc *c)
{
	const uint32_t len = 64 * 1024;
	uint64_t wb = umdev_vuc_alloc(c, 0, len, 4096);
	uint64_t rb = umdev_vuc_alloc(c, 0, len, 4096);

	assert_true(wb && rb);
	proto_fill(umdev_vuc_gpa_ptr(c, wb, len), len, 5);
	/* 16 segments of 4 KiB out, 64 segments of 1 KiB and one segment in. */
	assert_int_equal(proto_rw(c, 0, VIRTIO_BLK_T_OUT, 2048, wb, len, 16), VIRTIO_BLK_S_OK);
	memset(umdev_vuc_gpa_ptr(c, rb, len), 0, len);
	assert_int_equal(proto_rw(c, 0, VIRTIO_BLK_T_IN, 2048, rb, len, 64), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(c, rb, len), len, 5));
	memset(umdev_vuc_gpa_ptr(c, rb, len), 0, len);
	assert_int_equal(proto_rw(c, 0, VIRTIO_BLK_T_IN, 2048, rb, len, 1), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(c, rb, len), len, 5));
}

void proto_check_cross_region(struct umdev_vuc *c)
{
	/* 8 KiB buffers straddling the boundary between regions 0 and 1. */
	uint64_t edge = c->mem.regions[1].gpa;
	uint64_t wb = edge - 4096, rb = edge - 2048;
	uint64_t plain = umdev_vuc_alloc(c, 0, 8192, 4096);

	assert_true(c->mem.nregions >= 2 && plain);
	proto_fill(umdev_vuc_gpa_ptr(c, wb, 8192), 8192, 9);
	assert_int_equal(proto_rw(c, 0, VIRTIO_BLK_T_OUT, 4096, wb, 8192, 1), VIRTIO_BLK_S_OK);
	memset(umdev_vuc_gpa_ptr(c, plain, 8192), 0, 8192);
	assert_int_equal(proto_rw(c, 0, VIRTIO_BLK_T_IN, 4096, plain, 8192, 1), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(c, plain, 8192), 8192, 9));
	memset(umdev_vuc_gpa_ptr(c, rb, 8192), 0, 8192);
	assert_int_equal(proto_rw(c, 0, VIRTIO_BLK_T_IN, 4096, rb, 8192, 1), VIRTIO_BLK_S_OK);
	assert_true(proto_check(umdev_vuc_gpa_ptr(c, rb, 8192), 8192, 9));
}

void proto_check_qd(struct umdev_vuc *c, unsigned q, unsigned depth)
{
	uint64_t base = umdev_vuc_alloc(c, 0, (uint64_t)depth * 4096, 4096);
	struct umdev_vblk_cpl cpl[256];
	unsigned done = 0;

	assert_true(base && depth <= 256);
	for (unsigned pass = 0; pass < 2; pass++) {
		uint32_t type = pass ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;

		for (unsigned i = 0; i < depth; i++) {
			struct umdev_vqd_buf b = { .addr = base + i * 4096ull, .len = 4096,
						   .write = pass == 1 };

			if (pass == 0)
				proto_fill(umdev_vuc_gpa_ptr(c, b.addr, 4096), 4096, 1000 + i);
			else
				memset(umdev_vuc_gpa_ptr(c, b.addr, 4096), 0, 4096);
			/* Kick once for the whole batch. */
			assert_int_equal(umdev_vblk_submit(c, q, type, 8192 + i * 8ull, &b, 1, i,
							   i + 1 < depth),
					 0);
		}
		for (done = 0; done < depth;) {
			int n = umdev_vblk_wait(c, q, cpl, 256, PROTO_IO_TIMEOUT_MS);

			assert_true(n > 0);
			for (int k = 0; k < n; k++)
				assert_int_equal(cpl[k].status, VIRTIO_BLK_S_OK);
			done += (unsigned)n;
		}
		assert_int_equal(done, depth);
	}
	for (unsigned i = 0; i < depth; i++)
		assert_true(proto_check(umdev_vuc_gpa_ptr(c, base + i * 4096ull, 4096), 4096,
					1000 + i));
}

void proto_drain_calls(struct umdev_vuc *c, unsigned nq)
{
	uint64_t n;

	assert_int_equal(umdev_vuc_get_u64(c, VHOST_USER_GET_QUEUE_NUM, &n), 0);
	for (unsigned i = 0; i < nq; i++)
		(void)umdev_vuc_wait_call(c, i, 0);
}
