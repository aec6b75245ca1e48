/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdev-bench-scsi: 4 KiB random READ(10) IOPS of umdevd's virtio-scsi
 * device, and the server's CPU time per I/O.
 *
 * The LUN has a null backend (null:SIZE), so the numbers measure the
 * vhost-user/virtio-scsi/SCSI-target path, not storage; run umdev-bench
 * (virtio-blk, same null backend) next to it to compare the two device
 * models on one machine. There is no vhost-user-scsi peer to compare with
 * in Debian: qemu-storage-daemon exports vhost-user-blk only. Our driver
 * busy-polls the used ring and asks for no interrupts; the server's CPU
 * time comes from /proc/PID/stat around each measurement.
 *
 * Usage: umdev-bench-scsi [--duration SEC] [--qd N[,N...]] [--umdevd PATH]
 *                         [--size BYTES] [--dev-extra ",key=val..."] [--label TEXT]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "client/proc_util.h"
#include "client/virtio_scsi_drv.h"
#include "umdev/proto/scsi.h"
#include "umdev/proto/virtio_ring.h"

#include "bench_util.h"

#ifndef UMDEVD_DEFAULT_PATH
#define UMDEVD_DEFAULT_PATH NULL
#endif

#define MAX_QDS 8
#define RING_SIZE 128
#define IO_BYTES 4096u
#define REQQ VIRTIO_SCSI_REQQ0

struct opts {
	double duration;
	unsigned qds[MAX_QDS];
	unsigned nqds;
	const char *umdevd;
	uint64_t size;
	const char *dev_extra;
	const char *label;
};

/* Point @cmd at a random 4 KiB block: the LBA lives in the CDB copy in cmd->buf. */
static void aim(struct umdev_vscsi_cmd *cmd, uint64_t nblocks, uint64_t *seed)
{
	uint8_t *cdb = cmd->buf + sizeof(struct virtio_scsi_cmd_req);
	uint32_t lba = (uint32_t)((bench_xorshift(seed) % nblocks) * (IO_BYTES / 512));

	cdb[2] = lba >> 24;
	cdb[3] = lba >> 16;
	cdb[4] = lba >> 8;
	cdb[5] = lba;
}

/* Keep @qd reads in flight for @secs; returns completions, or -errno. */
static int64_t run_load(struct umdev_vscsi_drv *d, struct umdev_vscsi_cmd *cmds, unsigned qd,
			uint64_t nblocks, double secs, uint64_t *seed)
{
	double end = bench_mono_s() + secs;
	int64_t done = 0;
	unsigned posted = 0;

	for (unsigned i = 0; i < qd; i++) {
		aim(&cmds[i], nblocks, seed);
		if (umdev_vscsi_post(d, REQQ, &cmds[i].chain, i + 1 < qd))
			return -EIO;
		posted++;
	}
	for (bool stop = false; !stop;) {
		int n, kick = 0;

		stop = bench_mono_s() >= end;
		n = umdev_vscsi_reap(d, REQQ, 0);
		if (n < 0)
			return n;
		for (unsigned i = 0; i < qd && n; i++) {
			struct umdev_vscsi_cmd_res res;

			if (!cmds[i].chain.done)
				continue;
			umdev_vscsi_cmd_result(&cmds[i], &res);
			if (res.resp.response != VIRTIO_SCSI_S_OK ||
			    res.resp.status != SCSI_STATUS_GOOD)
				return -EIO;
			cmds[i].chain.done = false;
			done++;
			posted--;
			if (!stop) {
				aim(&cmds[i], nblocks, seed);
				if (umdev_vscsi_post(d, REQQ, &cmds[i].chain, true))
					return -EIO;
				posted++;
				kick = 1;
			}
		}
		if (kick && umdev_vqd_kick_needed(&d->c->vqs[REQQ].drv) &&
		    umdev_vuc_kick(d->c, REQQ))
			return -EIO;
	}
	for (double give_up = bench_mono_s() + 5; posted && bench_mono_s() < give_up;) {
		int n = umdev_vscsi_reap(d, REQQ, 0);

		if (n < 0)
			return n;
		posted -= (unsigned)n;
	}
	return posted ? -ETIMEDOUT : done;
}

static int bench(const struct opts *o)
{
	char dir[128], sock[192], log[192], dev[512];
	uint8_t cdb[10] = { SCSI_READ_10, 0, 0, 0, 0, 0, 0, 0, IO_BYTES / 512 };
	static struct umdev_vscsi_drv d;
	struct umdev_vscsi_cmd cmds[RING_SIZE];
	uint64_t seed = 0x9e3779b97f4a7c15ull, nblocks = o->size / IO_BYTES;
	struct umdev_proc proc;
	struct umdev_vuc c;
	int r;

	memset(cmds, 0, sizeof(cmds));
	if (umdev_proc_tmpdir(dir, sizeof(dir)))
		return -EIO;
	snprintf(sock, sizeof(sock), "%s/scsi.sock", dir);
	snprintf(log, sizeof(log), "%s/umdevd.log", dir);
	snprintf(dev, sizeof(dev), "virtio-scsi,id=bench,socket=%s,lun=0:0:null:%" PRIu64 "%s",
		 sock, o->size, o->dev_extra ? o->dev_extra : "");
	{
		char *argv[] = { (char *)o->umdevd, "--device", dev, NULL };

		r = umdev_proc_spawn(&proc, argv, log);
	}
	if (r)
		return r;
	r = umdev_proc_wait_socket(&proc, sock, 10000);
	if (r)
		goto out_proc;
	/* The driver helper's bring-up, with interrupts off on every queue (we poll). */
	memset(&d, 0, sizeof(d));
	d.c = &c;
	d.nreq = 1;
	r = umdev_vuc_connect(&c, sock, 3000);
	if (r)
		goto out_proc;
	for (unsigned q = 0; q < 3; q++)
		c.vqs[q].no_interrupt = true;
	c.want_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
			  (1ull << VIRTIO_SCSI_F_HOTPLUG);
	r = umdev_vuc_start_blk(&c, 3, RING_SIZE, 1, 32ull << 20, 0);
	if (r)
		goto out;
	for (unsigned i = 0; i < RING_SIZE; i++) {
		r = umdev_vscsi_cmd_init(&cmds[i], 0, 0, i, cdb, sizeof(cdb), NULL, 0, IO_BYTES, 0,
					 0);
		if (r)
			goto out;
	}
	/* The LUN reports a power-on unit attention first: take it off. */
	{
		struct umdev_vscsi_cmd_res res;

		for (int i = 0; i < 4; i++)
			if (umdev_vscsi_exec(&d, REQQ, &cmds[0], &res, 5000) == 0 &&
			    res.resp.status == SCSI_STATUS_GOOD)
				break;
	}
	printf("%-22s %4s %10s %9s %12s %9s %12s\n", "server", "qd", "IOPS", "lat_us",
	       "srv_us/io", "srv_util", "cli_us/io");
	for (unsigned i = 0; i < o->nqds; i++) {
		uint64_t s0, s1, c0, c1;
		double t0, t1, iops;
		int64_t n;

		n = run_load(&d, cmds, o->qds[i], nblocks, 0.3, &seed);
		if (n < 0 || umdev_proc_cpu_ns(proc.pid, &s0)) {
			r = n < 0 ? (int)n : -EIO;
			goto out;
		}
		c0 = bench_self_cpu_ns();
		t0 = bench_mono_s();
		n = run_load(&d, cmds, o->qds[i], nblocks, o->duration, &seed);
		t1 = bench_mono_s();
		c1 = bench_self_cpu_ns();
		if (n <= 0 || umdev_proc_cpu_ns(proc.pid, &s1)) {
			r = n < 0 ? (int)n : -EIO;
			goto out;
		}
		iops = (double)n / (t1 - t0);
		printf("%-22s %4u %10.0f %9.1f %12.2f %9.2f %12.2f\n",
		       o->label ? o->label : "umdevd virtio-scsi", o->qds[i], iops,
		       1e6 * o->qds[i] / iops, (double)(s1 - s0) / 1e3 / (double)n,
		       (double)(s1 - s0) / 1e9 / (t1 - t0), (double)(c1 - c0) / 1e3 / (double)n);
		fflush(stdout);
	}
	r = 0;
out:
	if (r)
		fprintf(stderr, "umdev-bench-scsi: failed: %s; see %s\n", strerror(-r), log);
	for (unsigned i = 0; i < RING_SIZE; i++)
		umdev_vscsi_cmd_fini(&cmds[i]);
	umdev_vuc_close(&c);
out_proc:
	umdev_proc_stop(&proc, 3000);
	if (!r)
		umdev_proc_rmtree(dir);
	return r;
}

static void usage(void)
{
	fprintf(stderr, "usage: umdev-bench-scsi [--duration SEC] [--qd N[,N...]] "
			"[--umdevd PATH] [--size BYTES] [--dev-extra ,k=v...] [--label TEXT]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "qd", required_argument, NULL, 'q' },
		{ "umdevd", required_argument, NULL, 'u' },
		{ "size", required_argument, NULL, 's' },
		{ "dev-extra", required_argument, NULL, 'x' },
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .duration = 3, .qds = { 1, 32 }, .nqds = 2,
			  .umdevd = UMDEVD_DEFAULT_PATH, .size = 1ull << 30 };
	int opt;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.duration = strtod(optarg, NULL);
			break;
		case 'q': {
			char *save = NULL, *copy = strdup(optarg);

			o.nqds = 0;
			for (char *t = strtok_r(copy, ",", &save); t && o.nqds < MAX_QDS;
			     t = strtok_r(NULL, ",", &save)) {
				long v = strtol(t, NULL, 10);

				if (v < 1 || v > RING_SIZE) {
					fprintf(stderr, "qd %s: 1..%d\n", t, RING_SIZE);
					free(copy);
					return 2;
				}
				o.qds[o.nqds++] = (unsigned)v;
			}
			free(copy);
			break;
		}
		case 'u':
			o.umdevd = optarg;
			break;
		case 's':
			o.size = strtoull(optarg, NULL, 0);
			break;
		case 'x':
			o.dev_extra = optarg;
			break;
		case 'l':
			o.label = optarg;
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (!o.umdevd || !o.nqds || o.duration <= 0 || o.size < IO_BYTES || o.size % 512) {
		usage();
		return 2;
	}
	return bench(&o) ? 1 : 0;
}
