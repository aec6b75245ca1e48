/* SPDX-License-Identifier: BSD-3-Clause */
/* accel: what parent.c (engines) and vdev.c (the PCI function) share. */
#ifndef UMDEV_DEV_ACCEL_INTERNAL_H
#define UMDEV_DEV_ACCEL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel.h"
#include "umdev/irq.h"
#include "umdev/log.h"
#include "umdev/mem.h"

/*
 * An engine: one worker on one data-plane loop, serving the work queues of
 * the virtual devices assigned to it. Its vdev array is only touched on its
 * loop (changed through umdev_loop_call_sync), so the data path has no lock.
 */
struct accel_engine {
	struct umdev_accel *a;
	umdev_loop *loop;
	struct umdev_accel_vdev **vdevs; /* engine thread */
	unsigned nvdev, cap, rr;
	umdev_loop_poller *poller;
	int timer_fd;
	bool sleeping;
	uint64_t last_work_ns;
	atomic_uint kick_pending; /* a wake message is queued */
	unsigned assigned; /* control thread: vdevs placed here */
};

struct umdev_accel {
	struct umdev_accel *next; /* the list of parents (control thread) */
	char name[32];
	unsigned refs; /* creator + one per vdev (control thread) */
	bool listed;
	umdev_ims *ims;
	umdev_pasid_reg *pasids;
	struct accel_engine *eng;
	unsigned neng;
	unsigned max_vdevs, nvdevs;
};

/* The counters of struct umdev_accel_vdev_stats, bumped by the engine. */
struct accel_vdev_counters {
	_Atomic uint64_t descs, ok, failed, bytes, irqs, irq_refused, swerr, dropped, portal_writes;
};

struct umdev_accel_vdev {
	struct umdev_accel *a;
	struct accel_engine *eng;
	char name[32];
	umdev_pci_dev *pci;
	umdev_irq *irq;
	uint8_t *bar; /* BAR0's shared memory: hot page and ring */
	unsigned wq_size, prio, nvec;
	uint32_t pasid;

	/* Engine thread (changed by the control thread only via call_sync). */
	atomic_bool enabled; /* relaxed: the control thread reads it too */
	uint32_t head;

	/* Control thread. */
	uint32_t perm[ACCEL_MAX_VECTORS];
	atomic_int ims_idx[ACCEL_MAX_VECTORS]; /* read by the engine */

	/* Software error register, written by the engine. */
	_Atomic uint32_t swerr, swerr_index, swerr_pasid;
	_Atomic uint64_t swerr_addr;

	struct accel_vdev_counters st;
	/* Lines a client can cause: one limiter per thread that logs them. */
	struct umdev_ratelimit ctl_rl, eng_rl;
};

/* parent.c, for vdev.c. Control thread. */
int accel_engine_attach(struct umdev_accel_vdev *v);
void accel_engine_detach(struct umdev_accel_vdev *v);
/* Run @fn(@v) on @v's engine between two rounds: no descriptor of it is in flight. */
void accel_engine_sync(struct umdev_accel_vdev *v, void (*fn)(struct umdev_accel_vdev *v));
/* Drop a reference to the parent (the creator's or a vdev's); the last frees it. */
void accel_parent_unref(struct umdev_accel *a);
/* Wake @v's engine if it sleeps. Any thread. */
void accel_engine_kick(struct umdev_accel_vdev *v);

/* vdev.c, for parent.c. Engine thread. Returns descriptors taken (<= @budget). */
unsigned accel_vdev_run(struct umdev_accel_vdev *v, unsigned budget);
/* Work waiting in @v's queue. Engine thread. */
bool accel_vdev_has_work(struct umdev_accel_vdev *v);
/* Tell @v's driver whether the engine sleeps (it then writes KICK). */
void accel_vdev_set_idle(struct umdev_accel_vdev *v, bool idle);

#define ACCEL_STAT_ADD(v, field, n) atomic_fetch_add_explicit(&(v)->st.field, (n), memory_order_relaxed)

#endif
