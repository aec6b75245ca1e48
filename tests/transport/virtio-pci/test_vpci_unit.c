/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtio-pci transport with no client: a virtio-blk function driven
 * through the PCI and irq layers directly, for what a socket client cannot
 * provoke: the device-side config change (config_generation and the config
 * interrupt, over MSI-X and over INTx with the ISR), and the state a reset
 * leaves.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "umdev/blk.h"
#include "umdev/log.h"
#include "umdev/proto/pci_regs.h"
#include "umdev/proto/virtio_pci.h"
#include "umdev/virtio_pci.h"

#define BAR 4
#define ISR_OFF 0x1000u
#define NQ 2

struct fix {
	umdev_loop *loop;
	umdev_blk *blk;
	umdev_vpci *vp;
	umdev_pci_dev *pci;
	umdev_irq *irq;
	int fd[NQ + 1];
};

static int setup(void **state)
{
	static struct fix f;
	struct umdev_blk_opts o = { .id = "vt0", .backend = "null:1M", .num_queues = NQ,
				    .queue_size = 128 };
	uint16_t cmd = UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER;
	int err = 0;

	memset(&f, 0, sizeof(f));
	umdev_log_set_level(UMDEV_LOG_ERR);
	f.loop = umdev_loop_new_engine("vt-dp", 0, UMDEV_IO_ENGINE_EPOLL, &err);
	assert_non_null(f.loop);
	f.blk = umdev_blk_new(&o, &f.loop, 1, &err);
	assert_non_null(f.blk);
	f.vp = umdev_vpci_new(umdev_blk_vdev(f.blk), &err);
	assert_non_null(f.vp);
	f.pci = umdev_vpci_pci(f.vp);
	f.irq = umdev_pci_irq(f.pci);
	assert_int_equal(umdev_pci_cfg_access(f.pci, UMDEV_PCI_COMMAND, &cmd, 2, true), 0);
	for (unsigned i = 0; i <= NQ; i++) {
		f.fd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(f.fd[i] >= 0);
	}
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	umdev_vpci_free(f->vp);
	umdev_blk_free(f->blk);
	umdev_loop_free(f->loop);
	for (unsigned i = 0; i <= NQ; i++)
		if (f->fd[i] >= 0)
			close(f->fd[i]);
	return 0;
}

static uint64_t common(struct fix *f, uint32_t off, size_t len)
{
	uint64_t v = 0;

	assert_int_equal(umdev_vpci_common_access(f->vp, off, &v, len, false), 0);
	return v;
}

static void set_common(struct fix *f, uint32_t off, size_t len, uint64_t v)
{
	assert_int_equal(umdev_vpci_common_access(f->vp, off, &v, len, true), 0);
}

static uint64_t fired(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v = 0;

	if (poll(&p, 1, 0) <= 0 || read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static uint8_t isr(struct fix *f)
{
	uint8_t v = 0xff;

	assert_int_equal(umdev_pci_bar_access(f->pci, BAR, ISR_OFF, &v, 1, false), 0);
	return v;
}

static void test_config_change_msix(void **state)
{
	struct fix *f = *state;
	uint16_t flags = UMDEV_PCI_MSIX_FLAGS_ENABLE;
	uint32_t ctrl = 0;
	uint8_t gen;
	unsigned cap = 0;
	int dups[NQ + 1];

	/* What a VMM does: eventfds on every vector, MSI-X on, table entries unmasked. */
	for (unsigned v = 0; v <= NQ; v++)
		dups[v] = dup(f->fd[v]); /* the layer owns what it is given */
	assert_int_equal(umdev_irq_set(f->irq, UMDEV_IRQ_MSIX,
				       UMDEV_IRQ_SET_DATA_EVENTFD | UMDEV_IRQ_SET_ACTION_TRIGGER, 0,
				       NQ + 1, NULL, dups, NQ + 1),
			 0);
	for (unsigned off = 0x40; off && !cap;) {
		uint8_t h[2];

		assert_int_equal(umdev_pci_cfg_access(f->pci, off, h, 2, false), 0);
		if (h[0] == UMDEV_PCI_CAP_ID_MSIX)
			cap = off;
		off = h[1];
	}
	assert_true(cap != 0);
	assert_int_equal(umdev_pci_cfg_access(f->pci, cap + UMDEV_PCI_MSIX_FLAGS, &flags, 2, true),
			 0);
	for (unsigned v = 0; v <= NQ; v++)
		assert_int_equal(umdev_pci_bar_access(f->pci, BAR,
						      0x4000 + 16 * v + UMDEV_PCI_MSIX_ENTRY_CTRL,
						      &ctrl, 4, true),
				 0);
	/* No config vector yet: a change bumps the generation and raises nothing. */
	gen = (uint8_t)common(f, VPCI_COMMON_CFGGEN, 1);
	umdev_vpci_config_changed(f->vp);
	assert_int_equal((uint8_t)common(f, VPCI_COMMON_CFGGEN, 1), (uint8_t)(gen + 1));
	for (unsigned v = 0; v <= NQ; v++)
		assert_int_equal(fired(f->fd[v]), 0);
	/* With vector 2 for config changes, that vector fires (and the ISR stays clear). */
	set_common(f, VPCI_COMMON_MSIX, 2, 2);
	assert_int_equal(common(f, VPCI_COMMON_MSIX, 2), 2);
	umdev_vpci_config_changed(f->vp);
	assert_int_equal((uint8_t)common(f, VPCI_COMMON_CFGGEN, 1), (uint8_t)(gen + 2));
	assert_true(fired(f->fd[2]) > 0);
	assert_int_equal(fired(f->fd[0]), 0);
	assert_int_equal(isr(f), 0);
	/* Masked: held in the PBA, delivered at unmask. */
	ctrl = UMDEV_PCI_MSIX_ENTRY_CTRL_MASKBIT;
	assert_int_equal(umdev_pci_bar_access(f->pci, BAR, 0x4000 + 32 + UMDEV_PCI_MSIX_ENTRY_CTRL,
					      &ctrl, 4, true),
			 0);
	umdev_vpci_config_changed(f->vp);
	assert_int_equal(fired(f->fd[2]), 0);
	assert_true(umdev_irq_pending(f->irq, 2));
	ctrl = 0;
	assert_int_equal(umdev_pci_bar_access(f->pci, BAR, 0x4000 + 32 + UMDEV_PCI_MSIX_ENTRY_CTRL,
					      &ctrl, 4, true),
			 0);
	assert_true(fired(f->fd[2]) > 0);
	/* A vector beyond the function's reads back as NO_VECTOR. */
	set_common(f, VPCI_COMMON_MSIX, 2, NQ + 1);
	assert_int_equal(common(f, VPCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
}

static void test_config_change_intx(void **state)
{
	struct fix *f = *state;
	int fd = dup(f->fd[0]); /* the layer owns what it is given */

	assert_int_equal(umdev_irq_set(f->irq, UMDEV_IRQ_INTX,
				       UMDEV_IRQ_SET_DATA_EVENTFD | UMDEV_IRQ_SET_ACTION_TRIGGER, 0, 1,
				       NULL, &fd, 1),
			 0);
	umdev_vpci_config_changed(f->vp);
	assert_true(fired(f->fd[0]) > 0);
	assert_int_equal(isr(f), VIRTIO_PCI_ISR_CONFIG);
	assert_int_equal(isr(f), 0); /* read clears */
}

static void test_reset_clears(void **state)
{
	struct fix *f = *state;

	set_common(f, VPCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	set_common(f, VPCI_COMMON_MSIX, 2, 1);
	set_common(f, VPCI_COMMON_Q_SELECT, 2, 1);
	set_common(f, VPCI_COMMON_Q_SIZE, 2, 64);
	set_common(f, VPCI_COMMON_Q_MSIX, 2, 2);
	set_common(f, VPCI_COMMON_Q_DESC, 8, 0x123000);
	assert_int_equal(common(f, VPCI_COMMON_Q_DESC + 4, 4), 0);
	assert_int_equal(common(f, VPCI_COMMON_Q_DESC, 8), 0x123000);
	/* Function reset (what DEVICE_RESET and FLR do). */
	umdev_pci_reset(f->pci);
	assert_int_equal(common(f, VPCI_COMMON_STATUS, 1), 0);
	assert_int_equal(common(f, VPCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(common(f, VPCI_COMMON_Q_SELECT, 2), 0);
	set_common(f, VPCI_COMMON_Q_SELECT, 2, 1);
	assert_int_equal(common(f, VPCI_COMMON_Q_SIZE, 2), 128);
	assert_int_equal(common(f, VPCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(common(f, VPCI_COMMON_Q_DESC, 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_change_msix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_change_intx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_clears, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
