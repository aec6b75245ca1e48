/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * accel over vfio-user, driven by our client as a guest driver: one parent
 * (one engine, 12 IMS entries) and two virtual devices. Every operation with
 * completion records and interrupts, masking and the PBA, IMS exhaustion,
 * the MSI-X permission table (also while work runs), foreign PASIDs and
 * addresses outside the address space, reset and disconnect of one device
 * while another runs, and fairness under a flooding neighbour. The
 * concurrent tests run each device's driver in its own process.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/accel_drv.h"
#include "proto_common.h"

#define MEM (4u << 20) /* guest memory per device; room for 2 x ACCEL_MAX_XFER */
#define TMO 5000
#define NVEC 9 /* the default: error vector + 8 */

static struct proto_srv srv;
/* The drivers of the running test; closed after it even when it fails. */
static struct accel_drv drv[2];
static pid_t child = -1;

static int test_teardown(void **state)
{
	(void)state;
	for (unsigned i = 0; i < 2; i++)
		accel_drv_close(&drv[i]);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	child = -1;
	return 0;
}

/* Wait for *@p >= @want, for at most 20 s; a stuck child fails the test. */
static void wait_counter(volatile unsigned *p, unsigned want)
{
	for (int i = 0; i < 20000 && __atomic_load_n(p, __ATOMIC_ACQUIRE) < want; i++)
		usleep(1000);
	assert_true(__atomic_load_n(p, __ATOMIC_ACQUIRE) >= want);
}

static int setup(void **state)
{
	(void)state;
	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--threads", "1", "--rpc", "@DIR@/rpc.sock", "--device",
			   "accel,id=accel0,engines=1,ims=12,max-vdevs=4", "--device",
			   "accel-vdev,id=v0,parent=accel0,socket=@SOCK@,wq-size=256", "--device",
			   "accel-vdev,id=v1,parent=accel0,socket=@SOCK2@,wq-size=64", NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	proto_stop(&srv, false);
	return 0;
}

static void open_dev(struct accel_drv *d, const char *sock, unsigned nvec)
{
	assert_int_equal(accel_drv_open(d, sock, MEM), 0);
	if (nvec)
		assert_int_equal(accel_drv_msix(d, 0, nvec), 0);
	assert_int_equal(accel_drv_cmd(d, ACCEL_CMD_ENABLE), 0);
}

static struct accel_comp *rec(struct accel_drv *d, uint64_t comp)
{
	return accel_drv_ptr(d, comp);
}

/* Submit @desc, wait for its record; returns the status. */
static int run(struct accel_drv *d, struct accel_desc desc)
{
	assert_int_equal(accel_drv_submit(d, &desc, TMO), 0);
	return accel_drv_wait(d, desc.comp_addr, TMO);
}

static void wait_idle(struct accel_drv *d)
{
	for (int i = 0; i < TMO && accel_drv_head(d) != d->tail; i++)
		usleep(1000);
	assert_int_equal(accel_drv_head(d), d->tail);
}

static void test_ops(void **state)
{
	struct accel_drv *d = &drv[0];
	uint64_t src, dst, dst2, comp;
	struct accel_desc x;
	uint8_t *s, *t;
	uint32_t cap;

	(void)state;
	open_dev(d, srv.sock, NVEC);
	assert_int_equal(accel_drv_reg_read(d, ACCEL_REG_CAP, &cap), 0);
	assert_int_equal(cap, 0x7f);
	src = accel_drv_alloc(d, 65536, 4096);
	dst = accel_drv_alloc(d, 65536, 4096);
	dst2 = accel_drv_alloc(d, 65536, 4096);
	comp = accel_drv_alloc(d, 32 * 32, 32);
	s = accel_drv_ptr(d, src);
	t = accel_drv_ptr(d, dst);
	for (unsigned i = 0; i < 65536; i++)
		s[i] = (uint8_t)(i * 7 + 3);

	/* COPY, with an interrupt on vector 1. */
	x = accel_drv_copy_desc(d, src, dst, 65536, comp, 1);
	x.cookie = 0xc0ffee;
	assert_int_equal(run(d, x), ACCEL_ST_SUCCESS);
	assert_memory_equal(s, t, 65536);
	assert_int_equal(rec(d, comp)->bytes, 65536);
	assert_int_equal(rec(d, comp)->cookie, 0xc0ffee);
	assert_int_equal(accel_drv_irqs(d, 1, 1, TMO), 1);

	/* COMPARE: equal, then different at 777. */
	x = (struct accel_desc){ .pasid = d->pasid, .opcode = ACCEL_OP_COMPARE, .flags = ACCEL_F_COMP,
				 .comp_addr = comp + 32, .src = src, .src2 = dst, .size = 65536 };
	assert_int_equal(run(d, x), ACCEL_ST_SUCCESS);
	assert_int_equal(rec(d, comp + 32)->result, 0);
	t[777] ^= 1;
	x.comp_addr = comp + 64;
	assert_int_equal(run(d, x), ACCEL_ST_SUCCESS);
	assert_int_equal(rec(d, comp + 64)->result, 1);
	assert_int_equal(rec(d, comp + 64)->bytes, 777);

	/* FILL of a length that is not a multiple of the pattern, then COMPARE_PATTERN. */
	x = (struct accel_desc){ .pasid = d->pasid, .opcode = ACCEL_OP_FILL, .flags = ACCEL_F_COMP,
				 .comp_addr = comp + 96, .dst = dst, .size = 1001,
				 .pattern = 0x0123456789abcdefull };
	assert_int_equal(run(d, x), ACCEL_ST_SUCCESS);
	assert_int_equal(t[0], 0xef);
	assert_int_equal(t[1000], 0xef);
	assert_int_equal(t[999], 0x01);
	assert_int_equal(t[1001], (uint8_t)(1001 * 7 + 3)); /* untouched after the end */
	x.opcode = ACCEL_OP_COMPARE_PATTERN;
	x.src = dst;
	x.dst = 0;
	x.comp_addr = comp + 128;
	assert_int_equal(run(d, x), ACCEL_ST_SUCCESS);
	assert_int_equal(rec(d, comp + 128)->result, 0);
	x.size = 1002;
	x.comp_addr = comp + 160;
	assert_int_equal(run(d, x), ACCEL_ST_SUCCESS);
	assert_int_equal(rec(d, comp + 160)->result, 1);
	assert_int_equal(rec(d, comp + 160)->bytes, 1001);

	/* CRC32C of the standard check string. */
	memcpy(s, "123456789", 9);
	x = (struct accel_desc){ .pasid = d->pasid, .opcode = ACCEL_OP_CRC32C, .flags = ACCEL_F_COMP,
				 .comp_addr = comp + 192, .src = src, .size = 9 };
	assert_int_equal(run(d, x), ACCEL_ST_SUCCESS);
	assert_int_equal(rec(d, comp + 192)->value, 0xe3069283u);

	/* DUALCAST to two destinations, interrupt on the last vector. */
	x = (struct accel_desc){ .pasid = d->pasid, .opcode = ACCEL_OP_DUALCAST,
				 .flags = ACCEL_F_COMP | ACCEL_F_IRQ, .vector = 8,
				 .comp_addr = comp + 224, .src = src, .dst = dst, .src2 = dst2,
				 .size = 4096 };
	assert_int_equal(run(d, x), ACCEL_ST_SUCCESS);
	assert_memory_equal(s, t, 4096);
	assert_memory_equal(s, accel_drv_ptr(d, dst2), 4096);
	assert_int_equal(accel_drv_irqs(d, 8, 1, TMO), 1);

	/* Malformed descriptors get an error status, not silence. */
	x = accel_drv_copy_desc(d, src, dst, 4096, comp + 256, 0);
	x.opcode = 99;
	assert_int_equal(run(d, x), ACCEL_ST_BAD_OPCODE);
	x = accel_drv_copy_desc(d, src, dst, 0, comp + 288, 0);
	assert_int_equal(run(d, x), ACCEL_ST_BAD_SIZE);
	x = accel_drv_copy_desc(d, src, dst, ACCEL_MAX_XFER + 1, comp + 320, 0);
	assert_int_equal(run(d, x), ACCEL_ST_BAD_SIZE);

	/* The trapped portal: two descriptors in one write. */
	{
		struct accel_desc two[2] = {
			accel_drv_copy_desc(d, src, dst2, 4096, comp + 352, 0),
			accel_drv_copy_desc(d, src + 4096, dst2 + 4096, 4096, comp + 384, 2),
		};

		memset(accel_drv_ptr(d, dst2), 0, 8192);
		assert_int_equal(accel_drv_submit_portal(d, two, 2), 0);
		assert_int_equal(accel_drv_wait(d, comp + 352, TMO), ACCEL_ST_SUCCESS);
		assert_int_equal(accel_drv_wait(d, comp + 384, TMO), ACCEL_ST_SUCCESS);
		assert_memory_equal(s, accel_drv_ptr(d, dst2), 8192);
		assert_int_equal(accel_drv_irqs(d, 2, 1, TMO), 1);
	}
	wait_idle(d);
	accel_drv_close(d);
}

static void test_mask_pba(void **state)
{
	struct accel_drv *d = &drv[0];
	uint64_t src, comp, pba = 0;

	(void)state;
	open_dev(d, srv.sock, NVEC);
	src = accel_drv_alloc(d, 8192, 4096);
	comp = accel_drv_alloc(d, 64, 32);
	assert_int_equal(accel_drv_mask(d, 2, true), 0);
	assert_int_equal(run(d, accel_drv_copy_desc(d, src, src + 4096, 4096, comp, 2)),
			 ACCEL_ST_SUCCESS);
	/* Masked: held, visible in the PBA, not signalled. */
	assert_int_equal(accel_drv_irqs(d, 2, 0, 100), 0);
	assert_int_equal(umdev_vfuc_region_read(&d->c, 2, 0x800, &pba, 8), 0);
	assert_true(pba & (1u << 2));
	/* Unmasking delivers it, once. */
	assert_int_equal(accel_drv_mask(d, 2, false), 0);
	assert_int_equal(accel_drv_irqs(d, 2, 1, TMO), 1);
	assert_int_equal(umdev_vfuc_region_read(&d->c, 2, 0x800, &pba, 8), 0);
	assert_false(pba & (1u << 2));
	assert_int_equal(accel_drv_irqs(d, 2, 0, 50), 0);
	accel_drv_close(d);
}

static void test_ims_exhaustion(void **state)
{
	struct accel_drv *a = &drv[0], *b = &drv[1];
	uint64_t src, comp;
	int ret;

	(void)state;
	open_dev(a, srv.sock, NVEC); /* 9 of the 12 entries */
	open_dev(b, srv.sock2, 0);
	/* Nine more do not fit: a clear error, nothing half-enabled. */
	assert_int_equal(accel_drv_msix(b, 0, 9), -ENOSPC);
	assert_int_equal(accel_drv_msix(b, 0, 3), 0);
	assert_int_equal(accel_drv_msix(b, 3, 1), -ENOSPC);
	/* The three it got work. */
	src = accel_drv_alloc(b, 8192, 4096);
	comp = accel_drv_alloc(b, 32, 32);
	assert_int_equal(run(b, accel_drv_copy_desc(b, src, src + 4096, 4096, comp, 2)),
			 ACCEL_ST_SUCCESS);
	assert_int_equal(accel_drv_irqs(b, 2, 1, TMO), 1);
	/* Disabling frees entries for the neighbour; so does a disconnect. */
	assert_int_equal(accel_drv_msix_off(a), 0);
	assert_int_equal(accel_drv_msix(b, 3, 6), 0);
	assert_int_equal(accel_drv_msix(a, 0, 4), -ENOSPC);
	assert_int_equal(accel_drv_msix(a, 0, 3), 0);
	accel_drv_close(b);
	/* The server sees the hang-up on its own time: retry while it has not. */
	for (int i = 0; i < 2000 && (ret = accel_drv_msix(a, 3, 6)) == -ENOSPC; i++)
		usleep(1000);
	assert_int_equal(ret, 0);
	accel_drv_close(a);
}

static void test_perm(void **state)
{
	enum { N = 200 };
	struct accel_drv *d = &drv[0];
	uint64_t src, comp;
	uint32_t sw = 0, pasid = 0;
	uint64_t on1, on0;

	(void)state;
	open_dev(d, srv.sock, NVEC);
	src = accel_drv_alloc(d, 2 * 65536, 4096);
	comp = accel_drv_alloc(d, 32 * (N + 2), 32);
	/* Its own PASID: delivered. */
	assert_int_equal(accel_drv_perm(d, 1, true, d->pasid), 0);
	assert_int_equal(run(d, accel_drv_copy_desc(d, src, src + 65536, 4096, comp, 1)),
			 ACCEL_ST_SUCCESS);
	assert_int_equal(accel_drv_irqs(d, 1, 1, TMO), 1);
	/* Another PASID: the work is done, the interrupt goes to the error vector. */
	assert_int_equal(accel_drv_perm(d, 1, true, d->pasid + 100), 0);
	assert_int_equal(run(d, accel_drv_copy_desc(d, src, src + 65536, 4096, comp + 32, 1)),
			 ACCEL_ST_SUCCESS);
	assert_int_equal(accel_drv_irqs(d, 0, 1, TMO), 1);
	assert_int_equal(accel_drv_irqs(d, 1, 0, 50), 0);
	assert_int_equal(accel_drv_reg_read(d, ACCEL_REG_SWERR, &sw), 0);
	assert_int_equal(sw, ACCEL_SWERR_VALID | ACCEL_ERR_IRQ_PASID << 8);
	assert_int_equal(accel_drv_reg_read(d, ACCEL_REG_SWERR_PASID, &pasid), 0);
	assert_int_equal(pasid, d->pasid);
	assert_int_equal(accel_drv_reg_write(d, ACCEL_REG_SWERR, 0xff), 0);
	assert_int_equal(accel_drv_reg_read(d, ACCEL_REG_SWERR, &sw), 0);
	assert_int_equal(sw, 0);

	/* Rewritten while work runs: every completion lands on exactly one vector. */
	for (unsigned i = 0; i < N; i++) {
		if (i % 10 == 0)
			assert_int_equal(accel_drv_perm(d, 1, true, i % 20 ? d->pasid + 1 : d->pasid),
					 0);
		struct accel_desc x = accel_drv_copy_desc(d, src, src + 65536, 65536,
							  comp + 64 + 32ull * i, 1);

		assert_int_equal(accel_drv_submit(d, &x, TMO), 0);
	}
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(accel_drv_wait(d, comp + 64 + 32ull * i, TMO), ACCEL_ST_SUCCESS);
	on1 = accel_drv_irqs(d, 1, 0, 0);
	on0 = accel_drv_irqs(d, 0, N - on1, TMO);
	assert_int_equal(on1 + on0, N);
	assert_true(on1 > 0 && on0 > 0);
	accel_drv_close(d);
}

static void test_foreign(void **state)
{
	struct accel_drv *a = &drv[0], *b = &drv[1];
	uint64_t src, dst, comp, bdst;
	struct accel_desc x;
	uint32_t sw = 0, lo = 0;

	(void)state;
	open_dev(a, srv.sock, NVEC);
	open_dev(b, srv.sock2, 0);
	assert_int_not_equal(a->pasid, b->pasid);
	src = accel_drv_alloc(a, 4096, 4096);
	dst = accel_drv_alloc(a, 4096, 4096);
	comp = accel_drv_alloc(a, 128, 32);
	bdst = accel_drv_alloc(b, 4096, 4096);
	memset(accel_drv_ptr(a, src), 0x5a, 4096);
	/* The neighbour's PASID: refused whole, no record, error vector and SWERR. */
	x = accel_drv_copy_desc(a, src, bdst, 4096, comp, 1);
	x.pasid = b->pasid;
	assert_int_equal(accel_drv_submit(a, &x, TMO), 0);
	wait_idle(a);
	assert_int_equal(accel_drv_irqs(a, 0, 1, TMO), 1);
	assert_int_equal(rec(a, comp)->status, 0);
	assert_int_equal(accel_drv_reg_read(a, ACCEL_REG_SWERR, &sw), 0);
	assert_int_equal(sw, ACCEL_SWERR_VALID | ACCEL_ERR_PASID << 8);
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(((uint8_t *)accel_drv_ptr(b, bdst))[i], 0);
	assert_int_equal(accel_drv_irqs(a, 1, 0, 50), 0);
	/* An address outside its own space: an error record with the address. */
	x = accel_drv_copy_desc(a, 0x1000, dst, 4096, comp + 32, 0);
	assert_int_equal(run(a, x), ACCEL_ST_BAD_ADDR);
	assert_int_equal(rec(a, comp + 32)->fault_addr, 0x1000);
	x = accel_drv_copy_desc(a, src, ACCEL_DRV_IOVA + MEM - 100, 4096, comp + 64, 0);
	assert_int_equal(run(a, x), ACCEL_ST_BAD_ADDR);
	/* A record that cannot be written: SWERR (overflowing the first) names the address. */
	x = accel_drv_copy_desc(a, src, dst, 4096, 0x40000000ull, 0);
	assert_int_equal(accel_drv_submit(a, &x, TMO), 0);
	wait_idle(a);
	assert_int_equal(accel_drv_reg_write(a, ACCEL_REG_SWERR, 0xff), 0);
	x.comp_addr = 0x40000020ull;
	assert_int_equal(accel_drv_submit(a, &x, TMO), 0);
	wait_idle(a);
	assert_int_equal(accel_drv_reg_read(a, ACCEL_REG_SWERR, &sw), 0);
	assert_int_equal(sw, ACCEL_SWERR_VALID | ACCEL_ERR_COMP_ADDR << 8);
	assert_int_equal(accel_drv_reg_read(a, ACCEL_REG_SWERR_ADDR_LO, &lo), 0);
	assert_int_equal(lo, 0x40000020u);
	accel_drv_close(a);
	accel_drv_close(b);
}

/*
 * A child process drives @sock: @n copies of @size bytes, checking each
 * record and the data. Exit status 0 on success, else the step that failed.
 */
static void child_stream(const char *sock, unsigned n, uint32_t size, volatile unsigned *started)
{
	struct accel_drv *d = &drv[0];
	uint64_t src, dst, comp;

	if (accel_drv_open(d, sock, MEM) < 0 || accel_drv_cmd(d, ACCEL_CMD_ENABLE) < 0)
		_exit(2);
	src = accel_drv_alloc(d, size, 4096);
	dst = accel_drv_alloc(d, size, 4096);
	comp = accel_drv_alloc(d, 32ull * d->wq_size, 32);
	for (uint32_t i = 0; i < size; i++)
		((uint8_t *)accel_drv_ptr(d, src))[i] = (uint8_t)(i ^ 0x3c);
	for (unsigned i = 0; i < n; i++) {
		uint64_t c = comp + 32ull * (i % d->wq_size);
		struct accel_desc x = accel_drv_copy_desc(d, src, dst, size, c, 0);

		memset(accel_drv_ptr(d, dst), 0, size);
		memset(accel_drv_ptr(d, c), 0, 32);
		if (accel_drv_submit(d, &x, TMO) < 0)
			_exit(3);
		if (accel_drv_wait(d, c, TMO) != ACCEL_ST_SUCCESS)
			_exit(4);
		if (memcmp(accel_drv_ptr(d, src), accel_drv_ptr(d, dst), size))
			_exit(5);
		__atomic_store_n(started, i + 1, __ATOMIC_RELEASE);
	}
	accel_drv_close(d);
	_exit(0);
}

static void test_reset_isolation(void **state)
{
	volatile unsigned *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct accel_drv *d = &drv[0];
	uint64_t src, comp;
	uint32_t sts = 1;
	int status = -1;
	pid_t pid;

	(void)state;
	assert_true(shared != MAP_FAILED);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_stream(srv.sock2, 400, 16384, shared);
	child = pid;
	wait_counter(shared, 20);
	open_dev(d, srv.sock, 0);
	src = accel_drv_alloc(d, 65536 * 2, 4096);
	comp = accel_drv_alloc(d, 32 * 65, 32);
	/* A full queue, then a reset before it drains: only our work is dropped. */
	for (unsigned i = 0; i < d->wq_size; i++) {
		struct accel_desc x = accel_drv_copy_desc(d, src, src + 65536, 65536,
							  comp + 32ull * i, 0);

		assert_int_equal(accel_drv_submit(d, &x, TMO), 0);
	}
	assert_int_equal(accel_drv_cmd(d, ACCEL_CMD_RESET), 0);
	assert_int_equal(accel_drv_reg_read(d, ACCEL_REG_STATUS, &sts), 0);
	assert_int_equal(sts, 0);
	assert_int_equal(accel_drv_head(d), 0);
	assert_int_equal(accel_drv_cmd(d, ACCEL_CMD_ENABLE), 0);
	assert_int_equal(run(d, accel_drv_copy_desc(d, src, src + 65536, 4096, comp + 32 * 64, 0)),
			 ACCEL_ST_SUCCESS);
	/* And a disconnect with a full queue. */
	for (unsigned i = 0; i < d->wq_size; i++) {
		struct accel_desc x = accel_drv_copy_desc(d, src, src + 65536, 65536,
							  comp + 32ull * i, 0);

		assert_int_equal(accel_drv_submit(d, &x, TMO), 0);
	}
	accel_drv_close(d);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	child = -1;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	munmap((void *)shared, 4096);
}

/* Large descriptors: a batch then lasts long enough to be watched from here. */
#define BIG ACCEL_MAX_XFER

/* A flooder keeps @d's queue full (its head is read by the parent) until told to stop. */
static void child_flood(struct accel_drv *d, volatile unsigned *stop)
{
	uint64_t src = accel_drv_alloc(d, 2 * BIG, 4096);

	while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
		struct accel_desc x = accel_drv_copy_desc(d, src, src + BIG, BIG, 0, 0);

		x.flags = 0; /* no record: pure load */
		if (d->tail - accel_drv_head(d) < d->wq_size) {
			if (accel_drv_submit(d, &x, TMO) < 0)
				_exit(3);
		} else {
			usleep(20);
		}
	}
	_exit(0);
}

/*
 * One measurement: queue K descriptors on @d while disabled, enable, and
 * sample both heads (read from shared memory, no message in between) while
 * ours runs. Returns false when we were descheduled past the window.
 */
static bool measure(struct accel_drv *d, struct accel_drv *f, uint64_t src, uint64_t comp,
		    unsigned k, unsigned *dv, unsigned *df)
{
	unsigned v0 = 0, f0 = 0, lo = k / 8, hi = k - k / 8, base = d->tail;
	bool have0 = false;

	assert_int_equal(accel_drv_cmd(d, ACCEL_CMD_DISABLE), 0);
	for (unsigned i = 0; i < k; i++) {
		struct accel_desc x = accel_drv_copy_desc(d, src, src + BIG, BIG, comp + 32ull * i,
							  0);

		memset(accel_drv_ptr(d, comp + 32ull * i), 0, 32);
		assert_int_equal(accel_drv_submit(d, &x, TMO), 0);
	}
	assert_int_equal(accel_drv_cmd(d, ACCEL_CMD_ENABLE), 0);
	/* At most ~20 s (100 us a turn): a stalled device then fails the waits below. */
	for (unsigned spins = 0; spins < 200000; spins++) {
		unsigned fa = accel_drv_head(f), vh = accel_drv_head(d) - base, fb = accel_drv_head(f);

		if (fa != fb)
			continue;
		if (vh >= k)
			break;
		if (!have0 && vh >= lo && vh < lo + k / 8) {
			v0 = vh;
			f0 = fa;
			have0 = true;
		}
		if (have0 && vh >= hi) {
			*dv = vh - v0;
			*df = fa - f0;
			break;
		}
		usleep(100);
	}
	for (unsigned i = 0; i < k; i++)
		assert_int_equal(accel_drv_wait(d, comp + 32ull * i, 4 * TMO), ACCEL_ST_SUCCESS);
	return have0 && *dv > 0;
}

/* Ours on @sock against the flooder on srv.sock2: descriptors each ran meanwhile. */
static void fair_run(const char *sock, unsigned *dv, unsigned *df)
{
	volatile unsigned *stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct accel_drv *d = &drv[0], *f = &drv[1];
	unsigned k, tries = 0;
	uint64_t src, comp, start;
	int status = -1;
	pid_t pid;

	assert_true(stop != MAP_FAILED);
	/* The flooder's device is opened here so that we see its head directly. */
	open_dev(f, srv.sock2, 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_flood(f, stop);
	child = pid;
	start = accel_drv_head(f);
	for (int i = 0; i < 20000 && accel_drv_head(f) - start < 256; i++)
		usleep(1000);
	assert_true(accel_drv_head(f) - start >= 256);
	open_dev(d, sock, 0);
	k = d->wq_size;
	src = accel_drv_alloc(d, 2 * BIG, 4096);
	comp = accel_drv_alloc(d, 32ull * k, 32);
	while (!measure(d, f, src, comp, k, dv, df) && ++tries < 10)
		;
	__atomic_store_n(stop, 1, __ATOMIC_RELEASE);
	assert_true(tries < 10);
	printf("while ours ran %u descriptors the flooder ran %u\n", *dv, *df);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	child = -1;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	munmap((void *)stop, 4096);
	accel_drv_close(d);
	accel_drv_close(f);
}

static void test_fairness(void **state)
{
	unsigned dv = 0, df = 0;

	(void)state;
	fair_run(srv.sock, &dv, &df);
	/*
	 * Equal priorities share the engine round by round, so while ours ran
	 * dv descriptors the flooder ran about as many. The stated share: the
	 * flooder gets at most twice ours (we keep a third of the engine or
	 * more), give or take one round of each.
	 */
	assert_true(df <= 2 * dv + 8);
}

/* Run umdevctl on the test's daemon; its stdout goes to @out. Returns its exit status. */
static int ctl(char *out, size_t outlen, const char *args)
{
	char cmd[1024];
	size_t n = 0;
	FILE *p;

	assert_non_null(getenv("UMDEVCTL"));
	snprintf(cmd, sizeof(cmd), "%s --rpc %s/rpc.sock %s 2>&1", getenv("UMDEVCTL"), srv.dir,
		 args);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (n + 1 < outlen && fgets(out + n, (int)(outlen - n), p))
		n += strlen(out + n);
	out[n] = 0;
	return pclose(p);
}

/* INSTANCES and AVAILABLE of the accel-vdev row of `umdevctl types`. */
static void vdev_counts(unsigned *instances, unsigned *available)
{
	char out[4096], *line;

	assert_int_equal(ctl(out, sizeof(out), "types"), 0);
	line = strstr(out, "\naccel-vdev ");
	assert_non_null(line);
	assert_int_equal(sscanf(line, " accel-vdev vfio-user %u %u", instances, available), 2);
}

/*
 * A virtual device created at run time the mdev way, with twice the
 * priority of the flooder: it gets about two thirds of the engine; removed
 * again, the parent has room for it once more.
 */
static void test_runtime_priority(void **state)
{
	unsigned inst = 0, avail = 0, dv = 0, df = 0;
	char out[4096], args[512], sock[256];

	(void)state;
	vdev_counts(&inst, &avail);
	assert_int_equal(inst, 2);
	assert_int_equal(avail, 2); /* max-vdevs=4 */
	assert_int_not_equal(ctl(out, sizeof(out), "create accel-vdev parent=nope id=vx "
				 "socket=/nonexistent/x.sock"), 0);
	assert_non_null(strstr(out, "no accel parent"));
	snprintf(sock, sizeof(sock), "%s/v2.sock", srv.dir);
	snprintf(args, sizeof(args), "create accel-vdev parent=accel0 id=v2 socket=%s "
		 "wq-size=256 priority=8", sock);
	assert_int_equal(ctl(out, sizeof(out), args), 0);
	vdev_counts(&inst, &avail);
	assert_int_equal(inst, 3);
	assert_int_equal(avail, 1);

	fair_run(sock, &dv, &df);
	/* Priority 8 against 4: the flooder runs about half as many as ours. */
	assert_true(2 * df <= dv + 16);
	assert_true(4 * df >= dv); /* and is not starved */

	assert_int_equal(ctl(out, sizeof(out), "stats v2"), 0);
	assert_non_null(strstr(out, "priority"));
	assert_int_equal(ctl(out, sizeof(out), "remove v2"), 0);
	vdev_counts(&inst, &avail);
	assert_int_equal(inst, 2);
	assert_int_equal(avail, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_ops, test_teardown),
		cmocka_unit_test_teardown(test_mask_pba, test_teardown),
		cmocka_unit_test_teardown(test_ims_exhaustion, test_teardown),
		cmocka_unit_test_teardown(test_perm, test_teardown),
		cmocka_unit_test_teardown(test_foreign, test_teardown),
		cmocka_unit_test_teardown(test_reset_isolation, test_teardown),
		cmocka_unit_test_teardown(test_fairness, test_teardown),
		cmocka_unit_test_teardown(test_runtime_priority, test_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
