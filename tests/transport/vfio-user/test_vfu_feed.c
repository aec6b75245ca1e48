/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio-user message handling without a socket: byte streams fed to a server
 * built around the pci-sample device (the same entry point the fuzz target
 * uses). Checks that framing refuses what it must and that handlers reject
 * malformed commands without touching the device.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "dev/sample/sample.h"
#include "umdev/proto/pci_regs.h"
#include "umdev/proto/vfio_user.h"
#include "umdev/vfio_user.h"

static uint8_t stream[65536];
static size_t slen;

static void put(uint16_t cmd, uint32_t flags, const void *body, size_t len)
{
	struct vfio_user_header h = { .msg_id = (uint16_t)slen, .cmd = cmd,
				      .msg_size = (uint32_t)(sizeof(h) + len), .flags = flags };

	assert_true(slen + sizeof(h) + len <= sizeof(stream));
	memcpy(stream + slen, &h, sizeof(h));
	memcpy(stream + slen + sizeof(h), body, len);
	slen += sizeof(h) + len;
}

static void put_version(void)
{
	uint8_t v[64] = { 0, 0, 1, 0 };
	const char *j = "{\"capabilities\":{\"max_msg_fds\":4}}";

	memcpy(v + 4, j, strlen(j) + 1);
	put(VFIO_USER_VERSION, 0, v, 4 + strlen(j) + 1);
}

static umdev_sample *dev;
static umdev_vfu_server *srv;

static int setup(void **state)
{
	int err = 0;

	dev = umdev_sample_new("feed0", &err);
	assert_non_null(dev);
	srv = umdev_vfu_server_new(umdev_sample_pci(dev), NULL, NULL, -1, &err);
	assert_non_null(srv);
	slen = 0;
	return 0;
}

static int teardown(void **state)
{
	umdev_vfu_server_free(srv);
	umdev_sample_free(dev);
	return 0;
}

static uint32_t scratch(void)
{
	/* read the register straight from the PCI model, memory decoding on */
	umdev_pci_dev *p = umdev_sample_pci(dev);
	uint16_t cmd = UMDEV_PCI_CMD_MEMORY;
	uint32_t v = 0;

	assert_int_equal(umdev_pci_cfg_access(p, UMDEV_PCI_COMMAND, &cmd, 2, true), 0);
	assert_int_equal(umdev_pci_bar_access(p, 0, SAMPLE_REG_SCRATCH, &v, 4, false), 0);
	return v;
}

static void test_good_stream(void **state)
{
	struct vfio_user_device_info di = { .argsz = 16 };
	struct {
		struct {
			uint64_t offset;
			uint32_t region;
			uint32_t count;
		} __attribute__((packed)) a; /* vfio_user_region_access without its data[] */
		uint32_t v;
	} __attribute__((packed)) w = { { UMDEV_PCI_COMMAND, VFIO_PCI_CONFIG_REGION_INDEX, 2 },
					UMDEV_PCI_CMD_MEMORY };

	put_version();
	put(VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di));
	w.a.count = 2;
	put(VFIO_USER_REGION_WRITE, 0, &w, sizeof(w.a) + 2);
	w = (typeof(w)){ { SAMPLE_REG_SCRATCH, 0, 4 }, 0xabcd };
	put(VFIO_USER_REGION_WRITE, 0, &w, sizeof(w));
	assert_int_equal(umdev_vfu_server_feed(srv, stream, slen), 4);
	assert_int_equal(scratch(), 0xabcd);
}

static void test_command_before_version(void **state)
{
	struct vfio_user_device_info di = { .argsz = 16 };

	put(VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di));
	put_version();
	assert_int_equal(umdev_vfu_server_feed(srv, stream, slen), -EPROTO);
}

static void test_framing(void **state)
{
	struct vfio_user_header h = { .cmd = VFIO_USER_VERSION, .msg_size = 4 };

	/* shorter than a header */
	assert_int_equal(umdev_vfu_server_feed(srv, &h, sizeof(h)), -EPROTO);
	/* too large */
	h.msg_size = 64u << 20;
	assert_int_equal(umdev_vfu_server_feed(srv, &h, sizeof(h)), -EMSGSIZE);
	/* unknown flags, unknown type */
	h.msg_size = sizeof(h);
	h.flags = 0x100;
	assert_int_equal(umdev_vfu_server_feed(srv, &h, sizeof(h)), -EPROTO);
	h.flags = 5;
	assert_int_equal(umdev_vfu_server_feed(srv, &h, sizeof(h)), -EPROTO);
	/* a message cut short */
	put_version();
	assert_int_equal(umdev_vfu_server_feed(srv, stream, slen - 3), -EPROTO);
	/* trailing garbage shorter than a header is simply not a message */
	assert_int_equal(umdev_vfu_server_feed(srv, stream, slen), 1);
}

static void test_bad_commands_leave_device_alone(void **state)
{
	uint8_t junk[64];
	struct {
		struct {
			uint64_t offset;
			uint32_t region;
			uint32_t count;
		} __attribute__((packed)) a; /* vfio_user_region_access without its data[] */
		uint32_t v;
	} __attribute__((packed)) w = { { SAMPLE_REG_SCRATCH, 0, 8 }, 0x77 };
	uint64_t multi[1 + 3] = { 1000 };

	memset(junk, 0xff, sizeof(junk));
	put_version();
	for (unsigned cmd = 0; cmd < 40; cmd++)
		if (cmd != VFIO_USER_VERSION)
			put(cmd, 0, junk, cmd % 3 ? sizeof(junk) : 3);
	put(VFIO_USER_REGION_WRITE, 0, &w, sizeof(w)); /* count says 8, payload 4 */
	put(VFIO_USER_REGION_WRITE_MULTI, 0, multi, sizeof(multi)); /* wr_cnt too big */
	assert_int_equal(umdev_vfu_server_feed(srv, stream, slen), 42);
	assert_int_equal(scratch(), 0);
}

static void test_version_json(void **state)
{
	uint8_t v[64] = { 0, 0, 1, 0 };
	const char *bad[] = { "{", "[]", "{\"capabilities\":5}", "{\"capabilities\":{\"max_data_xfer_size\":1}}" };

	for (unsigned i = 0; i < 4; i++) {
		slen = 0;
		memcpy(v + 4, bad[i], strlen(bad[i]) + 1);
		put(VFIO_USER_VERSION, 0, v, 4 + strlen(bad[i]) + 1);
		/* refused with an error reply: the next command is still "before VERSION" */
		put(VFIO_USER_DEVICE_GET_INFO, 0, v, 16);
		assert_int_equal(umdev_vfu_server_feed(srv, stream, slen), -EPROTO);
	}
	/* JSON without its terminating NUL */
	slen = 0;
	memcpy(v + 4, "{}", 2);
	put(VFIO_USER_VERSION, 0, v, 6);
	put(VFIO_USER_DEVICE_GET_INFO, 0, v, 16);
	assert_int_equal(umdev_vfu_server_feed(srv, stream, slen), -EPROTO);
	assert_string_equal(umdev_vfu_command_name(VFIO_USER_DMA_UNMAP), "DMA_UNMAP");
	assert_string_equal(umdev_vfu_command_name(14), "?");
}

/* A bare device that records the quiesce calls the transport makes. */
static unsigned unmaps;
static uint64_t unmap_iova, unmap_len;

static void rec_unmap(void *opaque, uint64_t iova, uint64_t len)
{
	unmaps++;
	unmap_iova = iova;
	unmap_len = len;
}

static const struct umdev_pci_dev_ops rec_ops = { .dma_unmap = rec_unmap };

static void put_map(uint64_t addr, uint64_t size)
{
	struct vfio_user_dma_map m = { .argsz = sizeof(m), .flags = VFIO_USER_F_DMA_REGION_READ,
				       .addr = addr, .size = size };

	put(VFIO_USER_DMA_MAP, 0, &m, sizeof(m));
}

static void test_unmap_quiesces(void **state)
{
	struct umdev_pci_config cfg = { .name = "rec", .ops = &rec_ops };
	struct vfio_user_dma_unmap u = { .argsz = sizeof(u), .addr = 0x20000, .size = 0x3000 };
	umdev_vfu_server *s;
	umdev_pci_dev *p;
	int err = 0;

	cfg.bars[0].size = 0x1000;
	p = umdev_pci_dev_new(&cfg, &err);
	assert_non_null(p);
	s = umdev_vfu_server_new(p, NULL, NULL, -1, &err);
	assert_non_null(s);
	unmaps = 0;
	slen = 0;
	put_version();
	put_map(0x10000, 0x1000);
	put_map(0x20000, 0x3000);
	put(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u));
	/* DMA_UNMAP quiesced exactly that window before it went */
	assert_int_equal(umdev_vfu_server_feed(s, stream, slen), 4);
	/* ...and the end of the connection quiesced the one left */
	assert_int_equal(unmaps, 2);
	assert_int_equal(unmap_iova, 0x10000);
	assert_int_equal(unmap_len, 0x1000);
	/* an unmap of something never mapped quiesces nothing */
	unmaps = 0;
	slen = 0;
	put_version();
	put(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u));
	assert_int_equal(umdev_vfu_server_feed(s, stream, slen), 2);
	assert_int_equal(unmaps, 0);
	/* UNMAP_ALL quiesces every window */
	slen = 0;
	put_version();
	put_map(0x10000, 0x1000);
	put_map(0x20000, 0x3000);
	u = (struct vfio_user_dma_unmap){ .argsz = sizeof(u), .flags = VFIO_DMA_UNMAP_FLAG_ALL };
	put(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u));
	assert_int_equal(umdev_vfu_server_feed(s, stream, slen), 4);
	assert_int_equal(unmaps, 2);
	/*
	 * Beyond the spec, as the kernel's type1 (QEMU with a vIOMMU): an unmap
	 * covering whole windows removes them, one cutting a window does nothing.
	 */
	unmaps = 0;
	slen = 0;
	put_version();
	put_map(0x10000, 0x1000);
	put_map(0x11000, 0x1000);
	put_map(0x40000, 0x2000);
	u = (struct vfio_user_dma_unmap){ .argsz = sizeof(u), .addr = 0x40000, .size = 0x1000 };
	put(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u));
	u = (struct vfio_user_dma_unmap){ .argsz = sizeof(u), .addr = 0, .size = 0x20000 };
	put(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u));
	u = (struct vfio_user_dma_unmap){ .argsz = sizeof(u), .addr = 1ull << 40, .size = 1ull << 40 };
	put(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u));
	/* Up to the top of the IOVA space (QEMU's section above the vIOMMU's MSI window)... */
	put_map(0xffff0000, 0x1000);
	u = (struct vfio_user_dma_unmap){ .argsz = sizeof(u), .addr = 0xfef00000,
					  .size = 0 - 0xfef00000ull };
	put(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u));
	/* ...but not past it. */
	u.size++;
	put(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u));
	put_map(0xffff0000, 0x1000); /* fits again only if the unmap removed it */
	assert_int_equal(umdev_vfu_server_feed(s, stream, slen), 11);
	/*
	 * The two covered windows and the top one went, the cut one and the
	 * top one mapped again stayed until the end of the connection.
	 */
	assert_int_equal(unmaps, 5);
	assert_int_equal(unmap_iova, 0x40000);
	assert_int_equal(unmap_len, 0x2000);
	umdev_vfu_server_free(s);
	umdev_pci_dev_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_before_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_commands_leave_device_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_json, setup, teardown),
		cmocka_unit_test(test_unmap_quiesces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
