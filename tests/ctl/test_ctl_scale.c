/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A thousand devices in one umdevd, all created at run time through the
 * JSON-RPC socket: virtio-blk over ram and null backends, mixed with NVMe
 * controllers and virtio-scsi hosts. Every device is listed, answers one
 * verified I/O from our own client (connect, one queue, write and read
 * back, disconnect) and is removed. After a small warm-up round, the
 * thousand-device round must leave the daemon where it found it (same fds
 * and threads, RSS within a small bound): nothing is kept per device.
 */
#include "ctl_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/nvme_drv.h"
#include "client/virtio_scsi_drv.h"
#include "umdev/proto/nvme.h"
#include "umdev/proto/scsi.h"
#include "umdev/proto/pci_regs.h"

/*
 * 1,000 devices; fewer where every instruction costs many (sanitizers,
 * user-mode emulation of a cross build), which tests/ctl/meson.build says
 * through UMDEV_SCALE_DEVICES: those runs hunt memory errors, not limits.
 */
#define NDEV_DEFAULT 1000
#define NWARM 80
#define EVERY_NVME 40 /* device i is NVMe when i % 40 == 0 */
#define EVERY_SCSI 40 /* and virtio-scsi when i % 40 == 20: 25 of each */
#define BLK_REGION (1ull << 20)
#define SCSI_REGION (1ull << 20)
#define NVME_IOVA 0x10000000ull
#define NVME_MEM (1ull << 20)
/*
 * What the thousand-device round may leave in RSS after a warm-up round:
 * allocator slack, not per-device state (a leaked request slot, eventfd
 * or connection buffer is a page or more per device: 4 MiB and up).
 */
#define RSS_SLACK_KIB 2048

static struct proto_srv srv;
static struct rlimit saved_nofile;
static unsigned ndev = NDEV_DEFAULT;
/*
 * RSS says nothing about our memory under a sanitizer (freed memory waits in
 * quarantine; LeakSanitizer checks at exit instead) or under qemu-user (its
 * translated code grows as new paths run): tests/ctl/meson.build says so.
 */
static bool rss_unreliable;

static int setup(void **state)
{
	const char *n = getenv("UMDEV_SCALE_DEVICES");

	(void)state;
	if (n && atoi(n) >= 2 * EVERY_NVME && atoi(n) <= NDEV_DEFAULT)
		ndev = (unsigned)atoi(n);
	rss_unreliable = getenv("UMDEV_SCALE_RSS_UNRELIABLE") != NULL;
	proto_srv_init(&srv, 0);
	/*
	 * umdevd starts with the usual soft limit of 1024 open files, too few
	 * for a thousand devices: it must raise it to the hard limit itself.
	 */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
	if (saved_nofile.rlim_max > 1024) {
		struct rlimit low = { .rlim_cur = 1024, .rlim_max = saved_nofile.rlim_max };

		assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	}
	proto_start_umdevd(&srv, "--rpc", "@SOCK@", "--max-devices", "1024", "--threads", "2",
			   "--log-level", "warning", NULL);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
	ctl_wait_listening(srv.sock);
	return 0;
}

/* The soft open-file limit of @pid, from /proc/PID/limits. */
static unsigned long long nofile_soft(pid_t pid)
{
	char path[64], line[256];
	unsigned long long soft = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Max open files %llu", &soft) == 1)
			break;
	fclose(f);
	return soft;
}

/* The daemon must exit cleanly: under a sanitizer, that is also its leak check. */
static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);
	int st = umdev_proc_stop(&srv.proc, 20000);
	bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;

	(void)state;
	proto_stop(&srv, !alive || !clean);
	assert_true(alive);
	assert_true(clean);
	return 0;
}

enum kind { K_BLK_RAM, K_BLK_NULL, K_NVME, K_SCSI };

static enum kind kind_of(unsigned i)
{
	if (i % EVERY_NVME == 0)
		return K_NVME;
	if (i % EVERY_SCSI == EVERY_SCSI / 2)
		return K_SCSI;
	return i & 1 ? K_BLK_NULL : K_BLK_RAM;
}

static void dev_sock(char *buf, size_t len, unsigned i)
{
	snprintf(buf, len, "%s/d%u.sock", srv.dir, i);
}

static struct json_object *create_params(unsigned i)
{
	char id[16], sock[256];

	snprintf(id, sizeof(id), "d%u", i);
	dev_sock(sock, sizeof(sock), i);
	switch (kind_of(i)) {
	case K_NVME:
		return ctl_obj("type", "nvme", "id", id, "socket", sock, "ns", "ram:1M", NULL);
	case K_SCSI:
		return ctl_obj("type", "virtio-scsi", "id", id, "socket", sock, "lun",
			       "0:0:ram:1M", NULL);
	case K_BLK_NULL:
		return ctl_obj("type", "virtio-blk", "id", id, "socket", sock, "backend",
			       "null:1M", NULL);
	default:
		return ctl_obj("type", "virtio-blk", "id", id, "socket", sock, "backend",
			       "ram:1M", NULL);
	}
}

/* The response to a request on the shared control connection: success expected. */
static void rpc_ok(int fd, const char *method, struct json_object *params)
{
	struct json_object *r = ctl_request(fd, method, params), *err;

	if (json_object_object_get_ex(r, "error", &err))
		fail_msg("%s: %s", method, json_object_to_json_string(err));
	json_object_put(r);
}

/* virtio-blk: one queue, write a block, read it back. ram keeps it; null reads zeroes. */
static void io_blk(unsigned i)
{
	struct umdev_vuc c;
	char sock[256];
	uint64_t buf;
	uint8_t *p;

	dev_sock(sock, sizeof(sock), i);
	proto_connect_blk(&c, sock, 1, 16, 1, BLK_REGION);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	assert_true(buf != 0);
	p = umdev_vuc_gpa_ptr(&c, buf, 4096);
	proto_fill(p, 4096, i);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, i % 256, buf, 4096, 1), VIRTIO_BLK_S_OK);
	memset(p, 0xa5, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, i % 256, buf, 4096, 1), VIRTIO_BLK_S_OK);
	if (kind_of(i) == K_BLK_RAM) {
		assert_true(proto_check(p, 4096, i));
	} else {
		for (unsigned k = 0; k < 4096; k++)
			assert_int_equal(p[k], 0);
	}
	umdev_vuc_close(&c);
}

/* NVMe: admin queue, one I/O queue pair with MSI-X, write a page and read it back. */
static void io_nvme(unsigned i)
{
	struct umdev_nvmed_vfu *h = calloc(1, sizeof(*h));
	struct nvme_sqe cmd;
	char sock[256];
	uint64_t buf;

	assert_non_null(h);
	dev_sock(sock, sizeof(sock), i);
	assert_int_equal(umdev_nvmed_vfu_open(h, sock, NVME_IOVA, NVME_MEM), 0);
	assert_int_equal(umdev_nvmed_vfu_command(h, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER,
						 0),
			 0);
	assert_int_equal(umdev_nvmed_vfu_msix(h, 2), 0);
	assert_int_equal(umdev_nvmed_enable(&h->d, 8), 0);
	assert_int_equal(umdev_nvmed_create_qpair(&h->d, 1, 8, true), 0);
	buf = umdev_nvmed_alloc(&h->d, 4096, 4096);
	proto_fill(umdev_nvmed_ptr(&h->d, buf), 4096, i);
	assert_int_equal(umdev_nvmed_build_rw(&h->d, &cmd, NVME_CMD_WRITE, 1, 8, 8, buf, 4096,
					      false, false),
			 0);
	assert_int_equal(umdev_nvmed_cmd(&h->d, 1, &cmd, NULL), 0);
	memset(umdev_nvmed_ptr(&h->d, buf), 0xa5, 4096);
	assert_int_equal(umdev_nvmed_build_rw(&h->d, &cmd, NVME_CMD_READ, 1, 8, 8, buf, 4096,
					      false, false),
			 0);
	assert_int_equal(umdev_nvmed_cmd(&h->d, 1, &cmd, NULL), 0);
	assert_true(proto_check(umdev_nvmed_ptr(&h->d, buf), 4096, i));
	umdev_nvmed_vfu_close(h);
	free(h);
}

/* virtio-scsi: one request queue; past the power-on unit attention, WRITE(10) and READ(10). */
static void io_scsi(unsigned i)
{
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY }, cdb[10] = { SCSI_WRITE_10 };
	struct umdev_vscsi_drv *d = calloc(1, sizeof(*d));
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	struct umdev_vuc c;
	static uint8_t w[4096];
	char sock[256];

	assert_non_null(d);
	dev_sock(sock, sizeof(sock), i);
	assert_int_equal(umdev_vscsi_drv_start(d, &c, sock, 1, 16, 0, SCSI_REGION), 0);
	for (int k = 0; k < 4; k++) {
		assert_int_equal(umdev_vscsi_cmd_init(&cmd, 0, 0, 1, tur, 6, NULL, 0, 0, 0, 0), 0);
		assert_int_equal(umdev_vscsi_exec(d, VIRTIO_SCSI_REQQ0, &cmd, &res,
						  PROTO_IO_TIMEOUT_MS),
				 VIRTIO_SCSI_S_OK);
		if (res.resp.status == SCSI_STATUS_GOOD)
			break;
	}
	assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
	proto_fill(w, sizeof(w), i);
	cdb[5] = 8;
	cdb[8] = 8;
	assert_int_equal(umdev_vscsi_cmd_init(&cmd, 0, 0, 2, cdb, 10, w, sizeof(w), 0, 0, 0), 0);
	assert_int_equal(umdev_vscsi_exec(d, VIRTIO_SCSI_REQQ0, &cmd, &res, PROTO_IO_TIMEOUT_MS),
			 VIRTIO_SCSI_S_OK);
	assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
	cdb[0] = SCSI_READ_10;
	assert_int_equal(umdev_vscsi_cmd_init(&cmd, 0, 0, 3, cdb, 10, NULL, 0, sizeof(w), 0, 0),
			 0);
	assert_int_equal(umdev_vscsi_exec(d, VIRTIO_SCSI_REQQ0, &cmd, &res, PROTO_IO_TIMEOUT_MS),
			 VIRTIO_SCSI_S_OK);
	assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
	assert_true(proto_check(res.data_in, sizeof(w), i));
	umdev_vscsi_cmd_fini(&cmd);
	umdev_vuc_close(&c);
	free(d);
}

static unsigned long rss_kib(pid_t pid)
{
	char path[64], line[256];
	unsigned long kib = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lu kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Every device listed once, with the right mix of types. */
static void check_list(int fd, unsigned n)
{
	struct json_object *r = ctl_request(fd, "list", NULL), *res, *devs;
	unsigned seen_nvme = 0, seen_scsi = 0, want_nvme = 0, want_scsi = 0;

	assert_true(json_object_object_get_ex(r, "result", &res));
	assert_int_equal(ctl_ndevices(res), n);
	assert_true(json_object_object_get_ex(res, "devices", &devs));
	for (size_t k = 0; k < n; k++) {
		struct json_object *dj = json_object_array_get_idx(devs, k), *v;

		assert_true(json_object_object_get_ex(dj, "type", &v));
		seen_nvme += !strcmp(json_object_get_string(v), "nvme");
		seen_scsi += !strcmp(json_object_get_string(v), "virtio-scsi");
		want_nvme += kind_of((unsigned)k) == K_NVME;
		want_scsi += kind_of((unsigned)k) == K_SCSI;
	}
	assert_int_equal(seen_nvme, want_nvme);
	assert_int_equal(seen_scsi, want_scsi);
	json_object_put(r);
}

/* A removal the daemon refuses while it still sees the client we just closed: retry. */
static void remove_dev(int fd, unsigned i)
{
	char id[16];

	snprintf(id, sizeof(id), "d%u", i);
	for (int tries = 0;; tries++) {
		struct json_object *r = ctl_request(fd, "remove", ctl_obj("id", id, NULL));
		struct json_object *err, *code;
		int c;

		if (!json_object_object_get_ex(r, "error", &err)) {
			json_object_put(r);
			return;
		}
		assert_true(json_object_object_get_ex(err, "code", &code));
		c = json_object_get_int(code);
		json_object_put(r);
		assert_int_equal(c, UMDEV_TEST_BUSY);
		assert_true(tries < 500);
		usleep(10000);
	}
}

/*
 * Create @n devices, list them, one verified I/O on each of the first @nio,
 * remove them all. *@created_kib: the RSS with them created.
 */
static void one_round(int fd, unsigned n, unsigned nio, unsigned long *created_kib)
{
	struct json_object *r, *res;

	for (unsigned i = 0; i < n; i++)
		rpc_ok(fd, "create", create_params(i));
	check_list(fd, n);
	*created_kib = rss_kib(srv.proc.pid);
	for (unsigned i = 0; i < nio; i++) {
		switch (kind_of(i)) {
		case K_NVME:
			io_nvme(i);
			break;
		case K_SCSI:
			io_scsi(i);
			break;
		default:
			io_blk(i);
		}
	}
	for (unsigned i = 0; i < n; i++)
		remove_dev(fd, i);
	r = ctl_request(fd, "list", NULL);
	assert_true(json_object_object_get_ex(r, "result", &res));
	assert_int_equal(ctl_ndevices(res), 0);
	json_object_put(r);
}

/*
 * A first round (all devices, I/O on a few) warms the allocator up: the
 * control thread's heap grows to a thousand devices and keeps its high
 * water mark, the data-plane threads get their arenas. The full round
 * after it must then leave the daemon as it found it.
 */
static void test_thousand_devices(void **state)
{
	pid_t pid = srv.proc.pid;
	unsigned long rss0, rss_created, rss1;
	unsigned fds0, threads0;
	int fd;

	(void)state;
	assert_int_equal(nofile_soft(pid), (unsigned long long)saved_nofile.rlim_max);
	fd = ctl_connect(srv.sock);
	one_round(fd, ndev, NWARM, &rss_created);
	fds0 = ctl_settled_fds(pid);
	threads0 = ctl_count_threads(pid);
	rss0 = rss_kib(pid);
	one_round(fd, ndev, ndev, &rss_created);
	assert_int_equal(ctl_settled_fds(pid), fds0);
	assert_int_equal(ctl_count_threads(pid), threads0);
	rss1 = rss_kib(pid);
	print_message("umdevd: %u fds, %u threads; RSS %lu KiB before, %lu KiB with %u devices "
		      "created, %lu KiB after their removal\n",
		      fds0, threads0, rss0, rss_created, ndev, rss1);
	if (!rss_unreliable && rss1 > rss0 + RSS_SLACK_KIB)
		fail_msg("%u devices created, used and removed left %lu KiB of RSS (bound %u KiB)",
			 ndev, rss1 - rss0, RSS_SLACK_KIB);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_thousand_devices, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
