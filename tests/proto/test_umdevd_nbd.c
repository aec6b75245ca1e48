/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * umdevd serving virtio-blk disks whose backend is an NBD export: nbdkit
 * (memory plugin) started by the test on a UNIX socket and on 127.0.0.1.
 * Every virtio-blk request type through our vhost-user client, the data
 * checked by a second NBD client; the server stopped and killed under I/O
 * (requests end with IOERR, a ring stop returns, the daemon lives) and
 * restarted (I/O resumes). TLS: nbds+unix:// with a pre-shared key against
 * an nbdkit that requires TLS, and a plain client refused by it.
 */
#include "proto_common.h"
#include "../test_server.h"

#include <arpa/inet.h>
#include <libnbd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DISK_BYTES (64ull << 20)
#define REGION (16ull << 20)

static struct proto_srv srv;
static struct umdev_proc nbd_unix, nbd_tcp;
static char nbd_sock[256], uri_unix[300], uri_tcp[64], nbd_log[256];
static int nbd_port;

static void nbdkit_unix_start(void)
{
	/* One thread per connection: nbdkit 1.32 can abort when a client hangs up
	 * on a connection whose replies several threads are sending. */
	char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "-t", "1", "-U", nbd_sock,
			 "memory", "size=64M", NULL };

	unlink(nbd_sock);
	assert_int_equal(umdev_proc_spawn(&nbd_unix, argv, nbd_log), 0);
	assert_int_equal(umdev_proc_wait_socket(&nbd_unix, nbd_sock, 10000), 0);
}

/* A TCP server is ready once a second client gets through the handshake. */
static void nbdkit_tcp_start(void)
{
	char port[16];
	char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", port,
			 "memory", "size=64M", NULL };

	snprintf(port, sizeof(port), "%d", nbd_port);
	assert_int_equal(umdev_proc_spawn(&nbd_tcp, argv, nbd_log), 0);
	for (int i = 0; i < 500; i++) {
		struct nbd_handle *h = nbd_create();
		int r = nbd_connect_uri(h, uri_tcp);

		nbd_close(h);
		if (r == 0)
			return;
		assert_true(umdev_proc_alive(&nbd_tcp));
		usleep(20000);
	}
	fail_msg("nbdkit on port %d did not start", nbd_port);
}

static int setup(void **state)
{
	char dev0[512], dev1[256];

	proto_srv_init(&srv, 0);
	snprintf(nbd_sock, sizeof(nbd_sock), "%s/nbd.sock", srv.dir);
	snprintf(nbd_log, sizeof(nbd_log), "%s/nbdkit.log", srv.dir);
	snprintf(uri_unix, sizeof(uri_unix), "nbd+unix:///?socket=%s", nbd_sock);
	nbd_port = test_free_port();
	assert_true(nbd_port > 0);
	snprintf(uri_tcp, sizeof(uri_tcp), "nbd://127.0.0.1:%d/", nbd_port);
	nbdkit_unix_start();
	nbdkit_tcp_start();
	/* One second of patience with the server: bounds every request. */
	snprintf(dev0, sizeof(dev0),
		 "virtio-blk,id=blk0,socket=@SOCK@,num-queues=2,backend=%s&nbd-timeout=1",
		 uri_unix);
	snprintf(dev1, sizeof(dev1), "virtio-blk,id=blk1,socket=@SOCK2@,backend=%s", uri_tcp);
	proto_start_umdevd(&srv, "--device", dev0, "--device", dev1, NULL);
	return 0;
}

static int teardown(void **state)
{
	bool alive = umdev_proc_alive(&srv.proc);

	proto_stop(&srv, !alive);
	umdev_proc_kill(&nbd_unix);
	umdev_proc_kill(&nbd_tcp);
	assert_true(alive);
	return 0;
}

/* Every request type on the disk at @sock, checked through @uri. */
static void check_all_types(const char *sock, const char *uri, unsigned nq)
{
	const uint32_t len = 32 * 1024;
	struct nbd_handle *h = nbd_create();
	struct virtio_blk_config cfg;
	struct umdev_vuc c;
	uint64_t wb, rb;
	uint8_t *r, *peer = malloc(len);

	assert_non_null(peer);
	assert_int_equal(nbd_set_uri_allow_local_file(h, true), 0); /* tls-psk-file= */
	assert_int_equal(nbd_connect_uri(h, uri), 0);
	proto_connect_blk(&c, sock, nq, 128, 2, REGION);
	assert_true(c.acked_features & (1ull << VIRTIO_BLK_F_FLUSH));
	assert_true(c.acked_features & (1ull << VIRTIO_BLK_F_DISCARD));
	assert_true(c.acked_features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_int_equal(umdev_vuc_get_config(&c, 0, &cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg.capacity, DISK_BYTES >> 9);

	proto_check_roundtrip_all_queues(&c, nq);
	proto_check_multiseg(&c);
	proto_check_cross_region(&c);
	proto_check_qd(&c, 0, 32);

	wb = umdev_vuc_alloc(&c, 0, len, 4096);
	rb = umdev_vuc_alloc(&c, 0, len, 4096);
	r = umdev_vuc_gpa_ptr(&c, rb, len);
	/* A write in 8 segments (8 NBD commands), seen by the other client. */
	proto_fill(umdev_vuc_gpa_ptr(&c, wb, len), len, 11);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 6000, wb, len, 8), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(nbd_pread(h, peer, len, 6000 * 512, 0), 0);
	assert_true(proto_check(peer, len, 11));
	/* What the other client writes is read back in 4 segments. */
	proto_fill(peer, len, 12);
	assert_int_equal(nbd_pwrite(h, peer, len, 9000 * 512, 0), 0);
	memset(r, 0xcc, len);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 9000, rb, len, 4), VIRTIO_BLK_S_OK);
	assert_true(proto_check(r, len, 12));
	/* Write-zeroes and discard of the middle 8 KiB: zeroes for both clients. */
	assert_int_equal(proto_dwz(&c, VIRTIO_BLK_T_WRITE_ZEROES, 6016, 16, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(proto_dwz(&c, VIRTIO_BLK_T_DISCARD, 9016, 16, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(nbd_pread(h, peer, 8192, 6016 * 512, 0), 0);
	for (unsigned i = 0; i < 8192; i++)
		assert_int_equal(peer[i], 0);
	memset(r, 0xcc, len);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 9000, rb, len, 1), VIRTIO_BLK_S_OK);
	for (unsigned i = 8192; i < 16384; i++)
		assert_int_equal(r[i], 0);
	/* Past the end: an error, not a request to the server. */
	assert_int_not_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, (DISK_BYTES >> 9) - 4, rb, 4096, 1),
			     VIRTIO_BLK_S_OK);
	umdev_vuc_close(&c);
	nbd_close(h);
	free(peer);
}

static void test_unix_all_types(void **state)
{
	check_all_types(srv.sock, uri_unix, 2);
}

static void test_tcp_all_types(void **state)
{
	check_all_types(srv.sock2, uri_tcp, 1);
}

/* Reads until one succeeds (the backend reconnected). */
static void wait_io_back(struct umdev_vuc *c, uint64_t buf)
{
	for (int i = 0; i < 100; i++) {
		if (proto_rw(c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096, 1) == VIRTIO_BLK_S_OK)
			return;
		usleep(100000);
	}
	fail_msg("I/O did not resume after the NBD server came back");
}

static void test_server_failures(void **state)
{
	struct umdev_vblk_cpl cpl[16];
	struct umdev_vuc c;
	uint64_t buf;
	unsigned got = 0;
	uint16_t base;

	proto_connect_blk(&c, srv.sock, 1, 128, 1, REGION);
	buf = umdev_vuc_alloc(&c, 0, 16 * 4096, 4096);
	proto_fill(umdev_vuc_gpa_ptr(&c, buf, 4096), 4096, 21);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_OUT, 0, buf, 4096, 1), VIRTIO_BLK_S_OK);

	/* Killed under I/O: all 16 requests complete (fine or IOERR), none hangs. */
	for (unsigned i = 0; i < 16; i++) {
		struct umdev_vqd_buf b = { .addr = buf + i * 4096, .len = 4096, .write = i & 1 };

		assert_int_equal(umdev_vblk_submit(&c, 0, (i & 1) ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
						   i * 8, &b, 1, i, false),
				 0);
		if (i == 4)
			umdev_proc_kill(&nbd_unix);
	}
	while (got < 16) {
		int n = umdev_vblk_wait(&c, 0, cpl, 16, PROTO_IO_TIMEOUT_MS);

		assert_true(n > 0);
		for (int i = 0; i < n; i++)
			assert_true(cpl[i].status == VIRTIO_BLK_S_OK ||
				    cpl[i].status == VIRTIO_BLK_S_IOERR);
		got += (unsigned)n;
	}
	/* Still down after the timeout: new requests fail at once. */
	usleep(1300000);
	assert_int_equal(proto_rw(&c, 0, VIRTIO_BLK_T_IN, 0, buf, 4096, 1), VIRTIO_BLK_S_IOERR);
	/* Back (a fresh, empty memory disk): I/O works again. */
	nbdkit_unix_start();
	wait_io_back(&c, buf);

	/*
	 * A server that stops answering, with requests in flight and the ring
	 * stopped: GET_VRING_BASE waits for them, and they end with IOERR
	 * within the NBD timeout instead of holding the ring stop forever.
	 */
	assert_int_equal(test_stop_process(nbd_unix.pid), 0);
	for (unsigned i = 0; i < 8; i++) {
		struct umdev_vqd_buf b = { .addr = buf + i * 4096, .len = 4096, .write = true };

		assert_int_equal(umdev_vblk_submit(&c, 0, VIRTIO_BLK_T_IN, i * 8, &b, 1, i, false),
				 0);
	}
	assert_int_equal(umdev_vuc_vq_stop(&c, 0, &base), 0);
	got = 0;
	while (got < 8) {
		int n = umdev_vblk_poll(&c, 0, cpl, 16);

		assert_true(n > 0);
		for (int i = 0; i < n; i++)
			assert_int_equal(cpl[i].status, VIRTIO_BLK_S_IOERR);
		got += (unsigned)n;
	}
	kill(nbd_unix.pid, SIGCONT);
	umdev_vuc_close(&c);

	/* A new connection of the driver finds the disk working again. */
	proto_connect_blk(&c, srv.sock, 1, 128, 1, REGION);
	buf = umdev_vuc_alloc(&c, 0, 4096, 4096);
	wait_io_back(&c, buf);
	umdev_vuc_close(&c);
}

/*
 * TLS: a disk on an nbdkit that requires TLS, reached with nbds+unix:// and
 * a pre-shared key named in the URI, passes every request type; the same
 * export without TLS is refused at create time and umdevd says why.
 */
static void test_tls(void **state)
{
	char sock[256], psk[256], log[256], uri[700], dev[900], cmd[1400], out[256];
	struct umdev_proc tls;
	struct proto_srv s2;
	FILE *f;
	int st;

	(void)state;
	proto_srv_init(&s2, 0);
	/* In the suite's directory: s2's goes with proto_stop(). */
	snprintf(sock, sizeof(sock), "%s/tls.sock", srv.dir);
	snprintf(psk, sizeof(psk), "%s/keys.psk", srv.dir);
	snprintf(log, sizeof(log), "%s/nbdkit-tls.log", srv.dir);
	snprintf(out, sizeof(out), "%s/umdevd-plain.log", srv.dir);
	f = fopen(psk, "w");
	assert_non_null(f);
	fprintf(f, "umdev:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
	fclose(f);
	{
		char tls_psk[300];
		char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "-t", "1", "--tls=require",
				 tls_psk, "-U", sock, "memory", "size=64M", NULL };

		snprintf(tls_psk, sizeof(tls_psk), "--tls-psk=%s", psk);
		assert_int_equal(umdev_proc_spawn(&tls, argv, log), 0);
		assert_int_equal(umdev_proc_wait_socket(&tls, sock, 10000), 0);
	}
	snprintf(uri, sizeof(uri), "nbds+unix://umdev@/?socket=%s&tls-psk-file=%s", sock, psk);
	snprintf(dev, sizeof(dev), "virtio-blk,id=tls0,socket=@SOCK@,backend=%s", uri);
	proto_start_umdevd(&s2, "--device", dev, NULL);
	check_all_types(s2.sock, uri, 1);
	assert_true(umdev_proc_alive(&s2.proc));
	proto_stop(&s2, false);
	/* Plain NBD to the TLS-only server: umdevd refuses to start the device. */
	snprintf(cmd, sizeof(cmd),
		 "%s --device virtio-blk,id=plain,socket=%s/plain.sock,"
		 "backend=nbd+unix:///?socket=%s\\&nbd-timeout=3 >%s 2>&1",
		 getenv("UMDEVD"), srv.dir, sock, out);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	f = fopen(out, "r");
	assert_non_null(f);
	{
		char text[4096];
		size_t n = fread(text, 1, sizeof(text) - 1, f);

		text[n] = 0;
		assert_non_null(strcasestr(text, "TLS"));
	}
	fclose(f);
	umdev_proc_kill(&tls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unix_all_types),
		cmocka_unit_test(test_tcp_all_types),
		cmocka_unit_test(test_server_failures),
		cmocka_unit_test(test_tls),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
