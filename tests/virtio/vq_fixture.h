/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared fixture for the virtqueue tests: guest memory as one memfd seen
 * twice (the device through the address space's mmaps, the driver through
 * its own mmap at another host address), a driver-side ring and a device
 * queue. See vq_fixture.c for the memory layout.
 */
#ifndef UMDEV_TESTS_VQ_FIXTURE_H
#define UMDEV_TESTS_VQ_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "client/virtq_drv.h"
#include "umdev/mem.h"
#include "umdev/vq.h"

#define MEMFD_SIZE 0x200000ull
#define GPA_A 0x100000ull /* region A: RW, 512 KiB, memfd offset 0 */
#define GPA_B 0x180000ull /* region B: RW, 512 KiB, adjacent to A */
#define REGION_AB 0x80000ull
#define GPA_C 0x400000ull /* read-only, 64 KiB, memfd offset 1 MiB */
#define GPA_D 0x410000ull /* write-only, 64 KiB */
#define REGION_CD 0x10000ull
#define GPA_GAP 0x300000ull /* no region here */
#define DRV_SIZE 0x100000ull /* driver window: A and B */
#define RING_GPA GPA_A
#define BUF_GPA 0x110000ull
#define IND_GPA 0x140000ull
#define MAX_IOV 16

struct fx {
	int memfd;
	umdev_as *as;
	umdev_as_map *map;
	uint8_t *drv_mem;
	struct umdev_vqd d;
	umdev_vq *vq;
	struct umdev_vq_config cfg;
	int call_fd;
	struct vhost_user_inflight_queue *inflight;
};

int fx_setup(void **state);
int fx_teardown(void **state);
/* Lay out the driver ring and start the device on it. */
void fx_start(struct fx *f, uint16_t size, bool event_idx, bool indirect);
void fx_start_packed(struct fx *f, uint16_t size, bool event_idx, bool indirect);
void *drv_ptr(struct fx *f, uint64_t gpa);
void fill(struct fx *f, uint64_t gpa, size_t len, uint8_t seed);
void check_iov_data(struct fx *f, const struct iovec *iov, unsigned n, uint64_t gpa, size_t len);
uint64_t read_call(struct fx *f);
/* Publish @head in the avail ring by hand (hostile tests). */
void publish(struct fx *f, uint16_t head);
void set_desc(struct fx *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
	      uint16_t next);
struct virtq_desc *ind_table(struct fx *f);
void expect_broken(struct fx *f, unsigned max_iov, const char *what);
void pop_n(struct fx *f, struct umdev_vq_elem *e, unsigned n);
void add_n(struct fx *f, unsigned n);

/* test_vq_hostile.c */
int vq_hostile_tests(void);
/* test_vq_packed_hostile.c */
int vq_packed_hostile_tests(void);

#endif
