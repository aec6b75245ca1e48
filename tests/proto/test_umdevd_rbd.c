/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd with Ceph RBD backends, against the one-node cluster that
 * tests/backend/rbd-tests.sh starts ($CEPH_CONF, pool "rbd"): every
 * virtio-blk request type with the data checked on the cluster (rbd export),
 * a read-only snapshot, a resize seen by the driver (virtio-blk config
 * change on the vhost-user back-end channel, SCSI CAPACITY DATA HAS CHANGED,
 * an NVMe Namespace Attribute Changed event, the config vector of virtio-blk
 * served as a virtio-pci function over vfio-user),
 * and create-time errors (missing image or pool, bad spec, unreachable
 * cluster) that leave no device behind.
 */
#include "scsi_common.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "client/nvme_drv.h"
#include "client/virtio_pci_drv.h"
#include "umdev/proto/pci_regs.h"
#include "umdev/proto/virtio_blk.h"

#define MIB (1ull << 20)
#define BLK_REGION (16ull << 20)

static const char *conf(void)
{
	const char *c = getenv("CEPH_CONF");

	assert_non_null(c);
	return c;
}

/* Run a shell command with $CEPH_CONF set; returns its exit status. */
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A fresh image of @mib MiB (removed first if a previous run left it). */
static void image_new(const char *name, unsigned mib)
{
	sh("rbd rm --no-progress rbd/%s >/dev/null 2>&1", name);
	assert_int_equal(sh("rbd create --size %uM rbd/%s", mib, name), 0);
}

static void start_blk(const char *backend, const char *extra)
{
	char dev[1024], rpc[300];

	proto_srv_init(&srv, 0);
	snprintf(rpc_path, sizeof(rpc_path), "%s/rpc.sock", srv.dir);
	snprintf(rpc, sizeof(rpc), "%s", rpc_path);
	snprintf(dev, sizeof(dev), "virtio-blk,id=blk0,socket=@SOCK@,backend=%s%s", backend, extra);
	proto_start_umdevd(&srv, "--rpc", rpc, "--device", dev, NULL);
}

/* @len bytes of the image at byte @off, as the cluster has them (rbd export). */
static void export_range(const char *image, uint64_t off, void *buf, size_t len)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/export.img", srv.dir);
	assert_int_equal(sh("rbd export --no-progress rbd/%s %s >/dev/null", image, path), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
	unlink(path);
}

static void test_blk_requests(void **state)
{
	const uint32_t len = 64 * 1024;
	char backend[512];
	struct umdev_vuc c;
	uint64_t wb, rb, idb;
	uint8_t *r, *disk;

	image_new("io", 64);
	snprintf(backend, sizeof(backend), "rbd:rbd/io:conf=%s:id=admin", conf());
	start_blk(backend, ",num-queues=2");
	proto_connect_blk(&c, srv.sock, 2, 128, 2, BLK_REGION);
	assert_true(c.acked_features & (1ull << VIRTIO_BLK_F_FLUSH));
	assert_true(c.acked_features & (1ull << VIRTIO_BLK_F_DISCARD));
	assert_true(c.acked_features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_false(c.features & (1ull << VIRTIO_BLK_F_RO));
	/* Reads and writes on both queues, multi-segment, across regions, queue depth. */
	proto_check_roundtrip_all_queues(&c, 2);
	proto_check_multiseg(&c);
	proto_check_cross_region(&c);
	proto_check_qd(&c, 0, 32);
	proto_check_qd(&c, 1, 16);

	/* WRITE, then WRITE_ZEROES in its middle, FLUSH: the cluster holds exactly that. */
	wb = umdev_vuc_alloc(&c, 0, len, 4096);
	rb = umdev_vuc_alloc(&c, 0, len, 4096);
	r = umdev_vuc_gpa_ptr(&c, rb, len);
	proto_fill(umdev_vuc_gpa_ptr(&c, wb, len), len, 77);
	assert_int_equal(proto_rw(&c, 1, VIRTIO_BLK_T_OUT, 20000, wb, len, 4), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_dwz(&c, VIRTIO_BLK_T_WRITE_ZEROES, 20000 + 32, 16, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0), VIRTIO_BLK_S_OK);
	memset(r, 0xcc, len);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 20000, rb, len, 1), VIRTIO_BLK_S_OK);
	disk = malloc(len);
	assert_non_null(disk);
	export_range("io", 20000 * 512ull, disk, len);
	assert_memory_equal(disk, r, len);
	assert_memory_equal(disk, umdev_vuc_gpa_ptr(&c, wb, 16384), 16384);
	for (unsigned i = 16384; i < 16384 + 8192; i++)
		assert_int_equal(disk[i], 0);
	assert_memory_equal(disk + 24576, (uint8_t *)umdev_vuc_gpa_ptr(&c, wb, len) + 24576,
			    len - 24576);
	/* A whole 4 MiB object discarded reads back as zeroes (librbd removes it). */
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 8192, wb, len, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_dwz(&c, VIRTIO_BLK_T_DISCARD, 8192, 8192, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0), VIRTIO_BLK_S_OK);
	export_range("io", 8192 * 512ull, disk, len);
	for (unsigned i = 0; i < len; i++)
		assert_int_equal(disk[i], 0);
	free(disk);

	/* GET_ID, an unknown type, and the edges of the 64 MiB image. */
	idb = umdev_vuc_alloc(&c, 0, 4096, 4096);
	assert_int_equal(proto_rw(&c, 1, VIRTIO_BLK_T_GET_ID, 0, idb, VIRTIO_BLK_ID_BYTES, 1),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(umdev_vuc_gpa_ptr(&c, idb, 5), "blk0\0", 5);
	assert_int_equal(proto_rw(&c, 0, 99, 0, idb, 512, 1), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, (64 * MIB >> 9) - 1, idb, 512, 1),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 64 * MIB >> 9, idb, 512, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, (64 * MIB >> 9) - 1, idb, 1024, 1),
			 VIRTIO_BLK_S_IOERR);
	umdev_vuc_close(&c);
	scsi_stop();
}

static void test_snapshot_readonly(void **state)
{
	const uint32_t len = 256 * 1024;
	char backend[512], path[300];
	struct umdev_vuc c;
	uint64_t rb;
	void *pat;
	int fd;

	/* An image whose first 256 KiB hold a pattern, snapshotted, then overwritten. */
	proto_srv_init(&srv, 0);
	snprintf(path, sizeof(path), "%s/pattern", srv.dir);
	pat = malloc(len);
	assert_non_null(pat);
	proto_fill(pat, len, 5150);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pat, len), (ssize_t)len);
	close(fd);
	sh("rbd snap purge --no-progress rbd/snapped >/dev/null 2>&1; "
	   "rbd rm --no-progress rbd/snapped >/dev/null 2>&1");
	assert_int_equal(sh("rbd import --no-progress %s rbd/snapped && rbd snap create "
			    "--no-progress rbd/snapped@s1 && rbd bench --io-type write "
			    "--io-size 4K --io-total 256K --io-pattern seq rbd/snapped >/dev/null",
			    path),
			 0);
	proto_stop(&srv, false);

	snprintf(backend, sizeof(backend), "rbd:rbd/snapped@s1:conf=%s", conf());
	start_blk(backend, "");
	proto_connect_blk(&c, srv.sock, 1, 64, 1, BLK_REGION);
	assert_true(c.features & (1ull << VIRTIO_BLK_F_RO));
	assert_false(c.features & (1ull << VIRTIO_BLK_F_DISCARD));
	rb = umdev_vuc_alloc(&c, 0, len, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, rb, len, 4), VIRTIO_BLK_S_OK);
	assert_memory_equal(umdev_vuc_gpa_ptr(&c, rb, len), pat, len);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 0, rb, 4096, 1), VIRTIO_BLK_S_IOERR);
	assert_int_not_equal(proto_dwz(&c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0), VIRTIO_BLK_S_OK);
	umdev_vuc_close(&c);
	scsi_stop();

	/* The head of the image changed (rbd bench wrote over it): not the snapshot. */
	snprintf(backend, sizeof(backend), "rbd:rbd/snapped:conf=%s:snap=s1", conf());
	start_blk(backend, ",readonly=on");
	proto_connect_blk(&c, srv.sock, 1, 64, 1, BLK_REGION);
	rb = umdev_vuc_alloc(&c, 0, len, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, rb, len, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(umdev_vuc_gpa_ptr(&c, rb, len), pat, len);
	umdev_vuc_close(&c);
	scsi_stop();
	free(pat);
}

/* Wait for one back-end request on @fd; returns its request code or -1. */
static int backend_msg(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct vhost_user_header h;

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	if (recv(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -1;
	return (int)h.request;
}

/*
 * rbd resize to @mib MiB: the driver gets a config change notice, the config
 * shows the new capacity, and a request of type @type at @sector answers @status.
 */
static void resize_seen(struct umdev_vuc *c, int backend_fd, unsigned mib, uint64_t sector,
			uint32_t type, uint64_t buf, int status)
{
	struct virtio_blk_config cfg;

	assert_int_equal(sh("rbd resize --no-progress --allow-shrink --size %uM rbd/grow", mib), 0);
	assert_int_equal(backend_msg(backend_fd, 10000), VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
	assert_int_equal(umdev_vuc_get_config(c, 0, &cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg.capacity, mib * MIB >> 9);
	assert_int_equal(proto_rw(c, 0, type, sector, buf, 4096, 1), status);
}

static void test_blk_resize(void **state)
{
	char backend[512];
	struct virtio_blk_config cfg;
	struct umdev_vuc c;
	uint64_t proto, buf;
	int sv[2];

	image_new("grow", 32);
	snprintf(backend, sizeof(backend), "rbd:rbd/grow:conf=%s", conf());
	start_blk(backend, "");
	proto_connect_blk(&c, srv.sock, 1, 64, 1, BLK_REGION);
	/* The driver side of the back-end channel: a socketpair end we read. */
	assert_true(c.protocol_features & (1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ));
	proto = c.acked_protocol_features | 1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ;
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_PROTOCOL_FEATURES, &proto,
					   sizeof(proto), NULL, 0),
			 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(umdev_vuc_request(&c, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1),
			 0);
	close(sv[1]);
	assert_int_equal(umdev_vuc_get_config(&c, 0, &cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg.capacity, 32 * MIB >> 9);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 40 * MIB >> 9, buf, 4096, 1),
			 VIRTIO_BLK_S_IOERR);

	/* Growing: the new end is usable. Shrinking is seen too; the range check follows it. */
	resize_seen(&c, sv[0], 48, 40 * MIB >> 9, VIRTIO_BLK_T_OUT, buf, VIRTIO_BLK_S_OK);
	resize_seen(&c, sv[0], 16, 20 * MIB >> 9, VIRTIO_BLK_T_IN, buf, VIRTIO_BLK_S_IOERR);
	close(sv[0]);
	umdev_vuc_close(&c);
	scsi_stop();
}

static uint64_t read_capacity16(struct umdev_vscsi_drv *d)
{
	uint8_t cdb[16] = { SCSI_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16 };
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	uint64_t last = 0;

	cdb[13] = 32;
	assert_int_equal(scsi_cmd(d, Q0, 0, 0, cdb, 16, NULL, 0, 32, &cmd, &res), VIRTIO_SCSI_S_OK);
	assert_int_equal(res.resp.status, SCSI_STATUS_GOOD);
	for (int i = 0; i < 8; i++)
		last = last << 8 | res.data_in[i];
	umdev_vscsi_cmd_fini(&cmd);
	return last + 1;
}

static void test_scsi_resize(void **state)
{
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY };
	struct umdev_vscsi_cmd cmd = { 0 };
	struct umdev_vscsi_cmd_res res;
	struct umdev_vscsi_drv d;
	struct umdev_vuc c;
	char luns[512];
	bool seen = false;

	image_new("lun", 16);
	snprintf(luns, sizeof(luns), "lun=0:0:rbd:rbd/lun:conf=%s", conf());
	scsi_start(luns, 1);
	assert_int_equal(umdev_vscsi_drv_start(&d, &c, srv.sock, 1, 64, 0, REGION), 0);
	drain_ua(&d, 0, 0);
	assert_int_equal(read_capacity16(&d), 16 * MIB / 512);
	assert_int_equal(sh("rbd resize --no-progress --size 24M rbd/lun"), 0);
	/* The watch is asynchronous: the attention comes within seconds. */
	for (int i = 0; i < 100 && !seen; i++) {
		assert_int_equal(scsi_cmd(&d, Q0, 0, 0, tur, 6, NULL, 0, 0, &cmd, &res),
				 VIRTIO_SCSI_S_OK);
		if (res.resp.status != SCSI_STATUS_GOOD) {
			assert_int_equal(sense_key(&res), SCSI_SK_UNIT_ATTENTION);
			assert_int_equal(sense_asc(&res), SCSI_ASC_CAPACITY_CHANGED);
			seen = true;
		}
		umdev_vscsi_cmd_fini(&cmd);
		if (!seen)
			usleep(100 * 1000);
	}
	assert_true(seen);
	assert_int_equal(read_capacity16(&d), 24 * MIB / 512);
	umdev_vuc_close(&c);
	/* lun-add of an RBD image through umdevctl, and of a missing one. */
	snprintf(luns, sizeof(luns), "lun-add scsi0 0:1 rbd:rbd/lun:conf=%s", conf());
	assert_int_equal(ctl(luns), 0);
	snprintf(luns, sizeof(luns), "lun-add scsi0 0:2 rbd:rbd/missing:conf=%s", conf());
	assert_int_not_equal(ctl(luns), 0);
	assert_int_equal(ctl("lun-list scsi0 | grep -c '\"backend\": \"rbd:' | grep -qx 2"), 0);
	scsi_stop();
}

/* A JSON config file (umdevd --config) naming an RBD image, and `umdevctl save`. */
static void test_config_file(void **state)
{
	char cfgpath[300], rpc[300], cmd[700];
	struct virtio_blk_config cfg;
	struct umdev_vuc c;
	FILE *f;

	image_new("cfg", 8);
	proto_srv_init(&srv, 0);
	snprintf(rpc_path, sizeof(rpc_path), "%s/rpc.sock", srv.dir);
	snprintf(rpc, sizeof(rpc), "%s", rpc_path);
	snprintf(cfgpath, sizeof(cfgpath), "%s/umdevd.json", srv.dir);
	f = fopen(cfgpath, "w");
	assert_non_null(f);
	fprintf(f, "{\"devices\":[{\"type\":\"virtio-blk\",\"id\":\"cfg0\",\"socket\":\"%s\","
		   "\"backend\":\"rbd:rbd/cfg:conf=%s\"}]}\n",
		srv.sock, conf());
	fclose(f);
	proto_start_umdevd(&srv, "--rpc", rpc, "--config", cfgpath, NULL);
	proto_connect_blk(&c, srv.sock, 1, 64, 1, BLK_REGION);
	assert_int_equal(umdev_vuc_get_config(&c, 0, &cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg.capacity, 8 * MIB >> 9);
	umdev_vuc_close(&c);
	snprintf(cmd, sizeof(cmd), "save | grep -q 'rbd:rbd/cfg:conf=%s'", conf());
	assert_int_equal(ctl(cmd), 0);
	scsi_stop();
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_create_errors(void **state)
{
	char cmd[640], dead_conf[200];
	double t0;
	FILE *f;

	image_new("exists", 8);
	start_blk("ram:1M", "");
	/* A configuration naming a monitor nobody listens on (port 1). */
	snprintf(dead_conf, sizeof(dead_conf), "%s/dead.conf", srv.dir);
	f = fopen(dead_conf, "w");
	assert_non_null(f);
	fprintf(f, "[global]\nmon host = [v2:127.0.0.1:1]\nauth client required = cephx\n"
		   "keyring = %.200s\n",
		getenv("CEPH_KEYRING"));
	fclose(f);

	/* Bad specs, a missing image, pool, snapshot or user. */
	const char *bad[][2] = { { "rbd:rbd/missing", "" }, { "rbd:nopool/exists", "" },
				 { "rbd:rbd/exists@nosnap", "" }, { "rbd:rbd/exists", ":bogus=1" },
				 { "rbd:rbd", "" }, { "rbd:rbd/exists", ":id=nobody" } };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(cmd, sizeof(cmd),
			 "create virtio-blk id=bad%u socket=%s/bad.sock backend=%s:conf=%s%s", i,
			 srv.dir, bad[i][0], conf(), bad[i][1]);
		assert_int_not_equal(ctl(cmd), 0);
	}
	/* Unreachable: an error within the connect timeout (10 s), not a hang. */
	t0 = now_s();
	snprintf(cmd, sizeof(cmd), "create virtio-blk id=dead socket=%s/bad.sock "
		 "backend=rbd:rbd/exists:conf=%s", srv.dir, dead_conf);
	assert_int_not_equal(ctl(cmd), 0);
	assert_true(now_s() - t0 < 30);
	/* Nothing left: only blk0 is listed, no socket was left behind. */
	assert_int_equal(ctl("list | grep -c . | grep -qx 2"), 0);
	snprintf(cmd, sizeof(cmd), "%s/bad.sock", srv.dir);
	assert_int_not_equal(access(cmd, F_OK), 0);
	/* And a good one through the same path. */
	snprintf(cmd, sizeof(cmd), "create virtio-blk id=good socket=%s/good.sock "
		 "backend=rbd:rbd/exists:conf=%s", srv.dir, conf());
	assert_int_equal(ctl(cmd), 0);
	assert_int_equal(ctl("remove good"), 0);
	/* NVMe: a namespace on an RBD image; ns-add of a missing one fails cleanly. */
	snprintf(cmd, sizeof(cmd), "create nvme id=nv0 socket=%s/nv.sock ns=rbd:rbd/exists:conf=%s",
		 srv.dir, conf());
	assert_int_equal(ctl(cmd), 0);
	snprintf(cmd, sizeof(cmd), "ns-add nv0 rbd:rbd/missing:conf=%s", conf());
	assert_int_not_equal(ctl(cmd), 0);
	assert_int_equal(ctl("remove nv0"), 0);
	scsi_stop();
}

/*
 * NVMe: a namespace on a whole RBD image follows a resize: the host gets a
 * Namespace Attribute Changed event, Identify Namespace shows the new size,
 * and I/O past the old end works.
 */
static void test_nvme_resize(void **state)
{
	struct nvme_sqe aer = { .opcode = NVME_ADM_ASYNC_EVENT }, c;
	struct umdev_nvmed_vfu h;
	struct nvme_id_ns *id;
	struct nvme_cqe e;
	char dev[600];
	uint64_t buf;
	bool seen = false;

	(void)state;
	image_new("nvgrow", 16);
	proto_srv_init(&srv, 0);
	snprintf(rpc_path, sizeof(rpc_path), "%s/rpc.sock", srv.dir);
	snprintf(dev, sizeof(dev), "nvme,id=nv0,socket=@SOCK@,ns=rbd:rbd/nvgrow:conf=%s", conf());
	proto_start_umdevd(&srv, "--rpc", rpc_path, "--device", dev, NULL);
	assert_int_equal(umdev_nvmed_vfu_open(&h, srv.sock, 0x100000000ull, 8u << 20), 0);
	assert_int_equal(umdev_nvmed_vfu_command(&h, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER, 0),
			 0);
	assert_int_equal(umdev_nvmed_vfu_msix(&h, 2), 0);
	assert_int_equal(umdev_nvmed_enable(&h.d, 32), 0);
	assert_int_equal(umdev_nvmed_create_qpair(&h.d, 1, 64, true), 0);
	assert_int_equal(umdev_nvmed_set_features(&h.d, NVME_FEAT_ASYNC_EVENT, NVME_AEN_CFG_NS_ATTR,
						  NULL), 0);
	assert_true(umdev_nvmed_submit(&h.d, 0, &aer) >= 0);
	buf = umdev_nvmed_alloc(&h.d, 4096, 4096);
	id = umdev_nvmed_ptr(&h.d, buf);
	assert_int_equal(umdev_nvmed_identify(&h.d, NVME_CNS_NS, 1, buf), 0);
	assert_int_equal(id->nsze, 16 * MIB >> (id->lbaf[0].lbads));
	assert_int_equal(sh("rbd resize --no-progress --size 24M rbd/nvgrow"), 0);
	/* The watch is asynchronous: the event comes within seconds. */
	for (int i = 0; i < 100 && !seen; i++) {
		seen = umdev_nvmed_cq_ready(&h.d, 0);
		if (!seen)
			usleep(100 * 1000);
	}
	assert_true(seen);
	assert_int_equal(umdev_nvmed_reap(&h.d, 0, &e), 0);
	assert_int_equal((e.status >> 1) & 0x7ff, 0);
	assert_int_equal(e.dw0, NVME_LOG_CHANGED_NS << 16 | NVME_AER_NOTICE_NS_CHANGED << 8 |
				NVME_AER_TYPE_NOTICE);
	assert_int_equal(umdev_nvmed_identify(&h.d, NVME_CNS_NS, 1, buf), 0);
	assert_int_equal(id->nsze, 24 * MIB >> (id->lbaf[0].lbads));
	/* A block past the old end, written and read back. */
	assert_int_equal(umdev_nvmed_build_rw(&h.d, &c, NVME_CMD_WRITE, 1,
					      (20 * MIB) >> id->lbaf[0].lbads, 1, buf, 512, false,
					      false), 0);
	assert_int_equal(umdev_nvmed_cmd(&h.d, 1, &c, NULL), 0);
	umdev_nvmed_vfu_close(&h);
	scsi_stop();
}

/* virtio-blk as a virtio-pci function: a resize raises the config vector, bumps config_generation. */
static void test_vpci_blk_resize(void **state)
{
	const uint32_t cap_off = offsetof(struct virtio_blk_config, capacity);
	struct umdev_vfuc cli;
	struct umdev_vpd drv;
	uint64_t cap = 0;
	uint8_t gen;
	char dev[600];

	(void)state;
	image_new("vpgrow", 16);
	proto_srv_init(&srv, 0);
	snprintf(rpc_path, sizeof(rpc_path), "%s/rpc.sock", srv.dir);
	snprintf(dev, sizeof(dev),
		 "virtio-blk,id=vb0,transport=vfio-user,socket=@SOCK@,backend=rbd:rbd/vpgrow:conf=%s",
		 conf());
	proto_start_umdevd(&srv, "--rpc", rpc_path, "--device", dev, NULL);
	memset(&cli, 0, sizeof(cli));
	assert_int_equal(umdev_vfuc_connect(&cli, srv.sock, 3000), 0);
	assert_int_equal(umdev_vfuc_version(&cli, NULL), 0);
	assert_int_equal(umdev_vfuc_add_mem(&cli, 0x100000000ull, 4u << 20, true,
					    VFIO_USER_F_DMA_REGION_READ |
						    VFIO_USER_F_DMA_REGION_WRITE), 0);
	assert_int_equal(umdev_vpd_probe(&drv, &cli), 0);
	assert_int_equal(umdev_vpd_negotiate(&drv, ~0ull), 0);
	assert_int_equal(umdev_vpd_enable_msix(&drv, 2), 0);
	assert_int_equal(umdev_vpd_common_write(&drv, VPCI_COMMON_MSIX, 2, 0), 0);
	assert_int_equal(umdev_vpd_driver_ok(&drv), 0);
	assert_int_equal(umdev_vfuc_region_read(&cli, drv.device.bar, drv.device.offset + cap_off,
						&cap, 8), 0);
	assert_int_equal(cap, 16 * MIB / 512);
	gen = (uint8_t)umdev_vpd_common(&drv, VPCI_COMMON_CFGGEN, 1);
	assert_int_equal(sh("rbd resize --no-progress --size 24M rbd/vpgrow"), 0);
	assert_true(umdev_vpd_wait_irq(&drv, 0, 10000) > 0);
	assert_int_not_equal((uint8_t)umdev_vpd_common(&drv, VPCI_COMMON_CFGGEN, 1), gen);
	assert_int_equal(umdev_vfuc_region_read(&cli, drv.device.bar, drv.device.offset + cap_off,
						&cap, 8), 0);
	assert_int_equal(cap, 24 * MIB / 512);
	umdev_vpd_fini(&drv);
	umdev_vfuc_close(&cli);
	scsi_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blk_requests),
		cmocka_unit_test(test_snapshot_readonly),
		cmocka_unit_test(test_blk_resize),
		cmocka_unit_test(test_scsi_resize),
		cmocka_unit_test(test_nvme_resize),
		cmocka_unit_test(test_vpci_blk_resize),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_create_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
