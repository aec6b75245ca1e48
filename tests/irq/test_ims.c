/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupt Message Store and the MSI-X binding hooks that back a function's
 * vectors with IMS entries: allocation, exhaustion, PASID permission, and
 * SET_IRQS refusing a request the store cannot back.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "umdev/irq.h"

#define TRIG_FD (UMDEV_IRQ_SET_DATA_EVENTFD | UMDEV_IRQ_SET_ACTION_TRIGGER)

static int a_owner, b_owner;

static void test_alloc_exhaust(void **state)
{
	int err = 0, idx[4];
	umdev_ims *ims = umdev_ims_new(4, &err);
	struct umdev_ims_entry e;

	(void)state;
	assert_non_null(ims);
	assert_null(umdev_ims_new(0, &err));
	assert_int_equal(err, -EINVAL);
	for (int i = 0; i < 4; i++) {
		idx[i] = umdev_ims_alloc(ims, i < 2 ? (void *)&a_owner : (void *)&b_owner);
		assert_true(idx[i] >= 0 && idx[i] < 4);
	}
	assert_int_equal(umdev_ims_num_free(ims), 0);
	assert_int_equal(umdev_ims_alloc(ims, &a_owner), -ENOSPC);
	assert_int_equal(umdev_ims_alloc(ims, NULL), -EINVAL);
	/* Only the owner frees, and only once. */
	assert_int_equal(umdev_ims_release(ims, (unsigned)idx[0], &b_owner), -EINVAL);
	assert_int_equal(umdev_ims_release(ims, (unsigned)idx[0], &a_owner), 0);
	assert_int_equal(umdev_ims_release(ims, (unsigned)idx[0], &a_owner), -EINVAL);
	assert_int_equal(umdev_ims_num_free(ims), 1);
	assert_int_equal(umdev_ims_alloc(ims, &b_owner), idx[0]);
	/* A fresh entry is masked with the PASID check off. */
	assert_int_equal(umdev_ims_get(ims, (unsigned)idx[0], &e), 0);
	assert_true(e.masked);
	assert_false(e.pasid_en);
	assert_ptr_equal(e.owner, &b_owner);
	assert_int_equal(umdev_ims_release_owner(ims, &b_owner), 3);
	assert_int_equal(umdev_ims_num_free(ims), 3);
	assert_int_equal(umdev_ims_get(ims, 4, &e), -EINVAL);
	umdev_ims_free(ims);
}

static void test_program(void **state)
{
	int err = 0;
	umdev_ims *ims = umdev_ims_new(8, &err);
	struct umdev_ims_entry e;
	int i;

	(void)state;
	assert_non_null(ims);
	i = umdev_ims_alloc(ims, &a_owner);
	assert_true(i >= 0);
	assert_int_equal(umdev_ims_set_msg(ims, (unsigned)i, 0xfee00000ull, 0x4041), 0);
	assert_int_equal(umdev_ims_set_mask(ims, (unsigned)i, false), 0);
	assert_int_equal(umdev_ims_get(ims, (unsigned)i, &e), 0);
	assert_int_equal(e.addr, 0xfee00000ull);
	assert_int_equal(e.data, 0x4041);
	assert_false(e.masked);
	/* Check off: any PASID may use it. */
	assert_true(umdev_ims_pasid_allows(ims, (unsigned)i, 7));
	assert_int_equal(umdev_ims_set_pasid(ims, (unsigned)i, true, 5), 0);
	assert_true(umdev_ims_pasid_allows(ims, (unsigned)i, 5));
	assert_false(umdev_ims_pasid_allows(ims, (unsigned)i, 7));
	assert_int_equal(umdev_ims_set_pasid(ims, (unsigned)i, true, UMDEV_IMS_PASID_MAX + 1),
			 -EINVAL);
	/* A free entry allows nothing and cannot be programmed. */
	assert_false(umdev_ims_pasid_allows(ims, (unsigned)(i + 1) % 8, 5));
	assert_int_equal(umdev_ims_set_msg(ims, (unsigned)(i + 1) % 8, 1, 1), -EINVAL);
	assert_false(umdev_ims_pasid_allows(ims, 99, 5));
	assert_int_equal(umdev_ims_release(ims, (unsigned)i, &a_owner), 0);
	assert_false(umdev_ims_pasid_allows(ims, (unsigned)i, 5));
	umdev_ims_free(ims);
}

/* A function whose vectors are backed by a two-entry store. */
struct backed {
	umdev_ims *ims;
	umdev_irq *irq;
	int entry[8];
	unsigned binds, unbinds, changes;
};

static int bind(void *opaque, unsigned v)
{
	struct backed *b = opaque;
	int i = umdev_ims_alloc(b->ims, b);

	if (i < 0)
		return i;
	b->entry[v] = i;
	b->binds++;
	return 0;
}

static void unbind(void *opaque, unsigned v)
{
	struct backed *b = opaque;

	assert_int_equal(umdev_ims_release(b->ims, (unsigned)b->entry[v], b), 0);
	b->entry[v] = -1;
	b->unbinds++;
}

static void changed(void *opaque, unsigned v)
{
	struct backed *b = opaque;

	assert_true(b->entry[v] >= 0); /* only bound vectors are reported */
	assert_int_equal(umdev_ims_set_mask(b->ims, (unsigned)b->entry[v], umdev_irq_masked(b->irq, v)), 0);
	b->changes++;
}

static const struct umdev_irq_msix_hooks hooks = { bind, unbind, changed };

static void set_fds(umdev_irq *irq, unsigned start, unsigned n, int *user, int want)
{
	int fds[8];

	for (unsigned i = 0; i < n; i++)
		fds[i] = dup(user[i]);
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX, TRIG_FD, start, n, NULL, fds, n), want);
	for (unsigned i = 0; i < n; i++) {
		/* Consumed on success, the caller's on failure. */
		assert_true(want == 0 ? fds[i] == -1 : fds[i] >= 0);
		if (fds[i] >= 0)
			close(fds[i]);
	}
}

static void test_hooks(void **state)
{
	struct umdev_irq_config c = { .msix_vectors = 8 };
	struct backed b = { 0 };
	int err = 0, user[8];
	umdev_irq *irq;

	(void)state;
	for (int i = 0; i < 8; i++) {
		user[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		b.entry[i] = -1;
	}
	b.ims = umdev_ims_new(2, &err);
	irq = umdev_irq_new(&c, &err);
	assert_non_null(b.ims);
	assert_non_null(irq);
	umdev_irq_set_msix_hooks(irq, &hooks, &b);
	b.irq = irq;

	set_fds(irq, 0, 2, user, 0);
	assert_true(umdev_irq_msix_bound(irq, 0) && umdev_irq_msix_bound(irq, 1));
	assert_int_equal(umdev_ims_num_free(b.ims), 0);
	/* Mask changes reach the entry: SET_IRQS MASK/UNMASK, table writes. */
	{
		struct umdev_ims_entry e;
		uint32_t ctrl = 1;

		assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX,
					       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_MASK,
					       1, 1, NULL, NULL, 0),
				 0);
		assert_int_equal(umdev_ims_get(b.ims, (unsigned)b.entry[1], &e), 0);
		assert_true(e.masked);
		assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX,
					       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_UNMASK,
					       1, 1, NULL, NULL, 0),
				 0);
		assert_int_equal(umdev_ims_get(b.ims, (unsigned)b.entry[1], &e), 0);
		assert_false(e.masked);
		assert_int_equal(umdev_irq_msix_table_access(irq, 16 + 12, &ctrl, 4, true), 0);
		assert_int_equal(umdev_ims_get(b.ims, (unsigned)b.entry[1], &e), 0);
		assert_true(e.masked);
		/* An unbound vector's table write reports nothing. */
		assert_int_equal(umdev_irq_msix_table_access(irq, 5 * 16 + 12, &ctrl, 4, true), 0);
		assert_int_equal(b.changes, 3);
	}
	/* Out of entries: the request is refused whole, nothing changes. */
	set_fds(irq, 2, 2, user + 2, -ENOSPC);
	assert_false(umdev_irq_msix_bound(irq, 2));
	assert_int_equal(umdev_irq_vectors(irq), 2);
	/* Re-assigning a bound vector needs no new entry. */
	set_fds(irq, 1, 1, user + 1, 0);
	assert_int_equal(b.binds, 2);
	/* De-assigning vector 1 frees its entry, which vector 3 can then use. */
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX, TRIG_FD, 1, 1, NULL, NULL, 0), 0);
	assert_false(umdev_irq_msix_bound(irq, 1));
	assert_int_equal(umdev_ims_num_free(b.ims), 1);
	set_fds(irq, 3, 1, user + 3, 0);
	assert_true(umdev_irq_msix_bound(irq, 3));
	/* Disabling the index frees everything; so does the client leaving. */
	assert_int_equal(umdev_irq_set(irq, UMDEV_IRQ_MSIX,
				       UMDEV_IRQ_SET_DATA_NONE | UMDEV_IRQ_SET_ACTION_TRIGGER, 0, 0,
				       NULL, NULL, 0),
			 0);
	assert_int_equal(umdev_ims_num_free(b.ims), 2);
	set_fds(irq, 0, 2, user, 0);
	umdev_irq_drop_fds(irq);
	assert_int_equal(umdev_ims_num_free(b.ims), 2);
	assert_int_equal(b.binds, b.unbinds);
	umdev_irq_free(irq);
	umdev_ims_free(b.ims);
	for (int i = 0; i < 8; i++)
		close(user[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_exhaust),
		cmocka_unit_test(test_program),
		cmocka_unit_test(test_hooks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
