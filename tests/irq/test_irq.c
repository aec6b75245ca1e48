/* SPDX-License-Identifier: BSD-3-Clause */
/* Interrupt layer: VFIO SET_IRQS semantics, masking, pending bits, the MSI-X table. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "umdev/irq.h"

#define TRIG_FD (UMDEV_IRQ_SET_DATA_EVENTFD | UMDEV_IRQ_SET_ACTION_TRIGGER)

static umdev_irq *mk(void)
{
	struct umdev_irq_config c = { .intx = true, .msi_vectors = 4, .msix_vectors = 8, .err = true };
	int err = 0;
	umdev_irq *irq = umdev_irq_new(&c, &err);

	assert_non_null(irq);
	return irq;
}

static int efd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* Count signalled on @fd since the last call (0 if none). */
static uint64_t fired(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Give the layer dup()s of @user so the test keeps its own ends. */
static void assign(umdev_irq *irq, unsigned index, unsigned start, unsigned n, const int *user)
{
	int fds[16];

	for (unsigned i = 0; i < n; i++)
		fds[i] = dup(user[i]);
	assert_int_equal(umdev_irq_set(irq, index, TRIG_FD, start, n, NULL, fds, n), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(fds[i], -1); /* consumed */
}

static void test_info(void **state)
{
	umdev_irq *irq = mk();
	uint32_t flags, count;

	assert_int_equal(umdev_irq_info(irq, UMDEV_IRQ_INTX, &flags, &count), 0);
	assert_int_equal(count, 1);
	assert_true(flags & UMDEV_IRQ_INFO_AUTOMASKED);
	assert_int_equal(umdev_irq_info(irq, UMDEV_IRQ_MSIX, &flags, &count), 0);
	assert_int_equal(count, 8);
	assert_int_equal(umdev_irq_info(irq, UMDEV_IRQ_MSI, &flags, &count), 0);
	assert_int_equal(count, 4);
	assert_true(flags & UMDEV_IRQ_INFO_NORESIZE);
	assert_int_equal(umdev_irq_info(irq, UMDEV_IRQ_REQ, &flags, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(umdev_irq_info(irq, 5, &flags, &count), -EINVAL);
	umdev_irq_free(irq);
}

static void test_bad_requests(void **state)
{
	umdev_irq *irq = mk();
	int fd = efd(), fds[2] = { fd, fd };
	uint8_t b[2] = { 1, 1 };

	/* two data types, no action, out of range, count 0 with other than NONE|TRIGGER */
	assert_int_equal(umdev_irq_set(irq, 2, 3 | UMDEV_IRQ_SET_ACTION_TRIGGER, 0, 1, b, NULL, 0),
			 -EINVAL);
	assert_int_equal(umdev_irq_set(irq, 2, UMDEV_IRQ_SET_DATA_NONE, 0, 1, NULL, NULL, 0), -EINVAL);
	assert_int_equal(umdev_irq_set(irq, 2, TRIG_FD, 7, 2, NULL, fds, 2), -EINVAL);
	assert_int_equal(umdev_irq_set(irq, 2, TRIG_FD, 0xffffffffu, 2, NULL, fds, 2), -EINVAL);
	assert_int_equal(umdev_irq_set(irq, 2, UMDEV_IRQ_SET_DATA_BOOL | UMDEV_IRQ_SET_ACTION_TRIGGER,
				       0, 0, b, NULL, 0),
			 -EINVAL);
	/* fd count neither 0 nor count */
	assert_int_equal(umdev_irq_set(irq, 2, TRIG_FD, 0, 2, NULL, fds, 1), -EINVAL);
	/* fds with DATA_NONE */
	assert_int_equal(umdev_irq_set(irq, 2, UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_TRIGGER,
				       0, 1, NULL, fds, 1),
			 -EINVAL);
	/* index without interrupts (REQ not configured) */
	assert_int_equal(umdev_irq_set(irq, 4, TRIG_FD, 0, 1, NULL, fds, 1), -EINVAL);
	/* refused requests leave the caller's fds alone */
	assert_int_equal(fds[0], fd);
	close(fd);
	umdev_irq_free(irq);
}

static void test_msix_trigger_and_modes(void **state)
{
	umdev_irq *irq = mk();
	int u[8];

	for (int i = 0; i < 8; i++)
		u[i] = efd();
	assert_int_equal(umdev_irq_mode(irq), UMDEV_IRQ_MODE_NONE);
	assign(irq, UMDEV_IRQ_MSIX, 0, 2, u);
	assert_int_equal(umdev_irq_mode(irq), UMDEV_IRQ_MODE_MSIX);
	assert_int_equal(umdev_irq_vectors(irq), 2);
	assert_int_equal(umdev_irq_trigger(irq, 1), 1);
	assert_int_equal(fired(u[1]), 1);
	assert_int_equal(fired(u[0]), 0);
	assert_int_equal(umdev_irq_trigger(irq, 2), -EINVAL); /* not enabled */
	/* MSI-X grows without disabling (no NORESIZE) */
	assign(irq, UMDEV_IRQ_MSIX, 2, 3, u + 2);
	assert_int_equal(umdev_irq_vectors(irq), 5);
	assert_int_equal(umdev_irq_trigger(irq, 4), 1);
	assert_int_equal(fired(u[4]), 1);
	/* another mode while MSI-X is on is refused */
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSI, TRIG_FD, 0, 1, NULL, &u[7], 1), -EINVAL);
	/* de-assign vector 1 (vfio-user: eventfd with no fds) */
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX, TRIG_FD, 1, 1, NULL, NULL, 0), 0);
	assert_int_equal(umdev_irq_trigger(irq, 1), 0);
	assert_int_equal(fired(u[1]), 0);
	/* loopback trigger with BOOL selects vectors */
	uint8_t sel[2] = { 0, 1 };
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX,
				       UMDEV_IRQ_SET_DATA_BOOL | UMDEV_IRQ_SET_ACTION_TRIGGER, 2, 2, sel,
				       NULL, 0),
			 0);
	assert_int_equal(fired(u[2]), 0);
	assert_int_equal(fired(u[3]), 1);
	/* disable with count 0 */
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_TRIGGER, 0, 0,
				       NULL, NULL, 0),
			 0);
	assert_int_equal(umdev_irq_mode(irq), UMDEV_IRQ_MODE_NONE);
	/* now MSI can be enabled, and cannot grow afterwards (NORESIZE) */
	assign(irq, UMDEV_IRQ_MSI, 0, 1, u + 6);
	assert_int_equal(umdev_irq_mode(irq), UMDEV_IRQ_MODE_MSI);
	int extra = dup(u[7]);
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSI, TRIG_FD, 1, 1, NULL, &extra, 1), -EINVAL);
	close(extra);
	assert_int_equal(umdev_irq_trigger(irq, 0), 1);
	assert_int_equal(fired(u[6]), 1);
	for (int i = 0; i < 8; i++)
		close(u[i]);
	umdev_irq_free(irq);
}

static void test_msix_masks_and_pba(void **state)
{
	umdev_irq *irq = mk();
	uint32_t ctrl, addr = 0xfee00000, data = 0x41;
	uint8_t pba = 0;
	int u[2] = { efd(), efd() };

	assign(irq, UMDEV_IRQ_MSIX, 0, 2, u);
	/* The table has not been written by the client: its reset mask does not apply. */
	assert_false(umdev_irq_masked(irq, 0));
	/* Program vector 0 through the table: it becomes authoritative, mask bit set. */
	assert_int_equal(umdev_irq_msix_table_access(irq, 0, &addr, 4, true), 0);
	assert_int_equal(umdev_irq_msix_table_access(irq, 8, &data, 4, true), 0);
	assert_int_equal(umdev_irq_msix_table_access(irq, 12, &ctrl, 4, false), 0);
	assert_int_equal(ctrl, 1);
	assert_true(umdev_irq_masked(irq, 0));
	/* Trigger while masked: pending, PBA bit, no eventfd. */
	assert_int_equal(umdev_irq_trigger(irq, 0), 0);
	assert_int_equal(fired(u[0]), 0);
	assert_true(umdev_irq_pending(irq, 0));
	assert_int_equal(umdev_irq_msix_pba_read(irq, 0, &pba, 1), 0);
	assert_int_equal(pba, 1);
	/* Reserved Vector Control bits are read-only. */
	ctrl = 0xfffffffe;
	assert_int_equal(umdev_irq_msix_table_access(irq, 12, &ctrl, 4, true), 0);
	assert_int_equal(umdev_irq_msix_table_access(irq, 12, &ctrl, 4, false), 0);
	assert_int_equal(ctrl, 0);
	/* Unmask delivered the pending interrupt exactly once and cleared the PBA. */
	assert_int_equal(fired(u[0]), 1);
	assert_false(umdev_irq_pending(irq, 0));
	assert_int_equal(umdev_irq_msix_pba_read(irq, 0, &pba, 1), 0);
	assert_int_equal(pba, 0);
	/* Function mask holds every vector. */
	umdev_irq_msix_control(irq, true, true);
	assert_int_equal(umdev_irq_trigger(irq, 0), 0);
	assert_int_equal(umdev_irq_trigger(irq, 1), 0);
	assert_int_equal(fired(u[0]) + fired(u[1]), 0);
	umdev_irq_msix_control(irq, true, false);
	assert_int_equal(fired(u[0]), 1);
	/* vector 1's table entry was never written but the table is live: masked */
	assert_int_equal(fired(u[1]), 0);
	assert_true(umdev_irq_pending(irq, 1));
	/* SET_IRQS MASK / UNMASK per vector */
	ctrl = 0;
	assert_int_equal(umdev_irq_msix_table_access(irq, 16 + 12, &ctrl, 4, true), 0);
	assert_int_equal(fired(u[1]), 1);
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_MASK, 1, 1, NULL,
				       NULL, 0),
			 0);
	assert_int_equal(umdev_irq_trigger(irq, 1), 0);
	assert_int_equal(fired(u[1]), 0);
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_UNMASK, 1, 1,
				       NULL, NULL, 0),
			 0);
	assert_int_equal(fired(u[1]), 1);
	/* Bad table accesses: misaligned, outside. */
	assert_int_equal(umdev_irq_msix_table_access(irq, 2, &ctrl, 4, false), -EINVAL);
	assert_int_equal(ctrl, 0xffffffff);
	assert_int_equal(umdev_irq_msix_table_access(irq, 8 * 16, &ctrl, 4, true), -EINVAL);
	assert_int_equal(umdev_irq_msix_pba_read(irq, 8, &ctrl, 4), -EINVAL);
	/* Reset: every vector masked, nothing pending, eventfds kept. */
	umdev_irq_reset(irq);
	assert_int_equal(umdev_irq_msix_table_access(irq, 12, &ctrl, 4, false), 0);
	assert_int_equal(ctrl, 1);
	assert_int_equal(umdev_irq_mode(irq), UMDEV_IRQ_MODE_MSIX);
	close(u[0]);
	close(u[1]);
	umdev_irq_free(irq);
}

static void test_intx_automask(void **state)
{
	umdev_irq *irq = mk();
	int u = efd();

	assign(irq, UMDEV_IRQ_INTX, 0, 1, &u);
	assert_int_equal(umdev_irq_trigger(irq, 0), 1);
	assert_int_equal(fired(u), 1);
	assert_true(umdev_irq_masked(irq, 0)); /* automasked */
	assert_true(umdev_irq_intx_asserted(irq));
	assert_int_equal(umdev_irq_trigger(irq, 0), 0);
	assert_int_equal(fired(u), 0);
	/* client unmask (NONE) re-delivers the pending level and masks again */
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_INTX,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_UNMASK, 0, 1,
				       NULL, NULL, 0),
			 0);
	assert_int_equal(fired(u), 1);
	assert_true(umdev_irq_masked(irq, 0));
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_INTX,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_UNMASK, 0, 1,
				       NULL, NULL, 0),
			 0);
	assert_false(umdev_irq_masked(irq, 0));
	/* Command.INTX_DISABLE holds it */
	umdev_irq_intx_disable(irq, true);
	assert_int_equal(umdev_irq_trigger(irq, 0), 0);
	assert_int_equal(fired(u), 0);
	umdev_irq_intx_disable(irq, false);
	assert_int_equal(fired(u), 1);
	/* unmask eventfds (resample) are not offered */
	int x = efd();
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_INTX,
				       UMDEV_IRQ_SET_DATA_EVENTFD | UMDEV_IRQ_SET_ACTION_UNMASK, 0, 1,
				       NULL, &x, 1),
			 -ENOTTY);
	close(x);
	/* eventfd de-assign disables INTx */
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_INTX, TRIG_FD, 0, 1, NULL, NULL, 0), 0);
	assert_int_equal(umdev_irq_mode(irq), UMDEV_IRQ_MODE_NONE);
	close(u);
	umdev_irq_free(irq);
}

static void test_msi_mask_and_drop(void **state)
{
	umdev_irq *irq = mk();
	int u[2] = { efd(), efd() };

	assign(irq, UMDEV_IRQ_MSI, 0, 2, u);
	umdev_irq_msi_mask(irq, 0x2);
	assert_int_equal(umdev_irq_trigger(irq, 1), 0);
	assert_int_equal(umdev_irq_msi_pending_bits(irq), 0x2);
	umdev_irq_msi_mask(irq, 0);
	assert_int_equal(fired(u[1]), 1);
	assert_int_equal(umdev_irq_msi_pending_bits(irq), 0);
	/* client goes away: fds closed, mode off; a trigger is dropped harmlessly */
	umdev_irq_drop_fds(irq);
	assert_int_equal(umdev_irq_mode(irq), UMDEV_IRQ_MODE_NONE);
	assert_int_equal(umdev_irq_trigger(irq, 0), 0);
	/* ERR index: assign and loopback trigger */
	int e = efd(), d = dup(e);
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_ERR, TRIG_FD, 0, 1, NULL, &d, 1), 0);
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_ERR,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_TRIGGER, 0, 1,
				       NULL, NULL, 0),
			 0);
	assert_int_equal(fired(e), 1);
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_ERR,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_MASK, 0, 1, NULL,
				       NULL, 0),
			 -ENOTTY);
	close(e);
	close(u[0]);
	close(u[1]);
	umdev_irq_free(irq);
}

/*
 * Trigger fds come from the client: anything but an eventfd is refused (the
 * caller keeps it), an accepted one is made non-blocking, and a counter the
 * client saturated does not block the triggering thread.
 */
static void test_client_fds(void **state)
{
	umdev_irq *irq = mk();
	int p[2], sp[2], fds[2], u, fl;
	uint64_t big = 0xfffffffffffffffeull, v = 0;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	fds[0] = p[1];
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_INTX, TRIG_FD, 0, 1, NULL, fds, 1), -EINVAL);
	assert_int_equal(fds[0], p[1]); /* still the caller's */
	fds[0] = sp[0];
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX, TRIG_FD, 0, 1, NULL, fds, 1), -EINVAL);
	fds[0] = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(fds[0] >= 0);
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_ERR, TRIG_FD, 0, 1, NULL, fds, 1), -EINVAL);
	close(fds[0]);
	/* one bad fd among good ones refuses the lot */
	fds[0] = efd();
	fds[1] = p[1];
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX, TRIG_FD, 0, 2, NULL, fds, 2), -EINVAL);
	assert_int_equal(umdev_irq_mode(irq), UMDEV_IRQ_MODE_NONE);
	close(fds[0]);
	close(p[0]);
	close(p[1]);
	close(sp[0]);
	close(sp[1]);

	/* a blocking eventfd, saturated by its owner */
	u = eventfd(0, EFD_CLOEXEC);
	assert_true(u >= 0);
	assert_int_equal(write(u, &big, 8), 8);
	assign(irq, UMDEV_IRQ_INTX, 0, 1, &u);
	fl = fcntl(u, F_GETFL);
	assert_true(fl & O_NONBLOCK); /* the shared open file is non-blocking now */
	alarm(10); /* a blocked write would hang here: fail the test instead */
	assert_int_equal(umdev_irq_trigger(irq, 0), 1); /* pending already: delivered */
	alarm(0);
	assert_int_equal(read(u, &v, 8), 8);
	assert_int_equal(v, big);
	/* once the client read it, the next interrupt gets through */
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_INTX,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_UNMASK, 0, 1,
				       NULL, NULL, 0),
			 0);
	assert_int_equal(umdev_irq_trigger(irq, 0), 1);
	assert_int_equal(fired(u), 1);
	close(u);
	umdev_irq_free(irq);
}

static void test_bad_config(void **state)
{
	struct umdev_irq_config c = { .msi_vectors = 3 };
	int err = 0;

	assert_null(umdev_irq_new(&c, &err));
	assert_int_equal(err, -EINVAL);
	c = (struct umdev_irq_config){ .msix_vectors = 4096 };
	assert_null(umdev_irq_new(&c, &err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_msix_trigger_and_modes),
		cmocka_unit_test(test_msix_masks_and_pba),
		cmocka_unit_test(test_intx_automask),
		cmocka_unit_test(test_msi_mask_and_drop),
		cmocka_unit_test(test_client_fds),
		cmocka_unit_test(test_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
