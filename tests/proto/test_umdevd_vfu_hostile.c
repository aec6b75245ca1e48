/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One bad vfio-user client never hurts another. umdevd serves two NVMe
 * controllers on one data-plane thread (--threads 1), so anything that
 * blocks a thread for one of them would stop both. In each test a victim
 * client drives nvme1 from its own thread (NVMe writes and reads checked
 * byte for byte, plus a register read per round trip through the control
 * thread) while the main thread attacks or misuses nvme0. Afterwards: the
 * daemon is alive, the victim completed every request without an error and
 * without a stall, and SIGTERM still ends the daemon within 5 s.
 */
#include "proto_common.h"
#include "umdev/vfio_user.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/nvme_drv.h"
#include "client/vfio_user_client.h"
#include "umdev/log.h"
#include "umdev/proto/pci_regs.h"

#define IOVA 0x100000000ull
#define MEM (4u << 20)
#define NVEC 3 /* queues=2: admin + 2 */
#define SIGTERM_LIMIT_MS 5000
/* A victim round (write, read, register read) slower than this is a stall. */
#define VICTIM_MAX_LAT_MS 700
#define VICTIM_MIN_ROUNDS 50

static struct proto_srv srv;
static bool passed;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
	(void)state;
	passed = false;
	proto_srv_init(&srv, 0);
	proto_start_umdevd(&srv, "--threads", "1", "--device",
			   /* poll=on: nvme0's doorbell page is a BAR memfd to check. */
			   "nvme,id=nvme0,socket=@SOCK@,ns=ram:8M,queues=2,poll=on", "--device",
			   "nvme,id=nvme1,socket=@SOCK2@,ns=ram:8M,queues=2", NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	proto_stop(&srv, !passed);
	return 0;
}

/* A controller brought up the usual way: MSE+BME, MSI-X, one I/O queue pair. */
static void host_up(struct umdev_nvmed_vfu *h, const char *sock)
{
	assert_int_equal(umdev_nvmed_vfu_open(h, sock, IOVA, MEM), 0);
	assert_int_equal(umdev_nvmed_vfu_command(h, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER, 0),
			 0);
	assert_int_equal(umdev_nvmed_vfu_msix(h, NVEC), 0);
	assert_int_equal(umdev_nvmed_enable(&h->d, 32), 0);
	assert_int_equal(umdev_nvmed_create_qpair(&h->d, 1, 64, true), 0);
}

static int rw(struct umdev_nvmed_vfu *h, uint8_t op, uint64_t slba, uint64_t buf)
{
	struct nvme_sqe c;
	int ret = umdev_nvmed_build_rw(&h->d, &c, op, 1, slba, 8, buf, 4096, false, false);

	return ret < 0 ? ret : umdev_nvmed_cmd(&h->d, 1, &c, NULL);
}

/* ---- the victim: nvme1, driven from its own thread ---- */

struct victim {
	struct umdev_nvmed_vfu h;
	pthread_t thread;
	atomic_bool stop;
	unsigned rounds, errors;
	int first_error;
	int64_t max_lat_ms;
};

static void *victim_run(void *arg)
{
	struct victim *v = arg;
	uint64_t wb = umdev_nvmed_alloc(&v->h.d, 4096, 4096);
	uint64_t rb = umdev_nvmed_alloc(&v->h.d, 4096, 4096);
	int64_t give_up = now_ms() + 25000;

	while ((!atomic_load(&v->stop) || v->rounds < VICTIM_MIN_ROUNDS) && now_ms() < give_up &&
	       v->errors < 3) {
		int64_t t0 = now_ms();
		uint32_t csts = 0;
		int ret;

		proto_fill(umdev_nvmed_ptr(&v->h.d, wb), 4096, v->rounds);
		memset(umdev_nvmed_ptr(&v->h.d, rb), 0, 4096);
		ret = rw(&v->h, NVME_CMD_WRITE, (v->rounds % 256) * 8, wb);
		if (!ret)
			ret = rw(&v->h, NVME_CMD_READ, (v->rounds % 256) * 8, rb);
		if (!ret && !proto_check(umdev_nvmed_ptr(&v->h.d, rb), 4096, v->rounds))
			ret = -EILSEQ;
		/* A round trip through the control thread, the one every device shares. */
		if (!ret)
			ret = umdev_nvmed_reg_read32(&v->h.d, NVME_REG_CSTS, &csts);
		if (!ret && csts != NVME_CSTS_RDY)
			ret = -EIO;
		if (ret) {
			if (!v->errors++)
				v->first_error = ret;
			continue;
		}
		if (now_ms() - t0 > v->max_lat_ms)
			v->max_lat_ms = now_ms() - t0;
		v->rounds++;
	}
	return NULL;
}

static struct victim *victim_start(void)
{
	struct victim *v = calloc(1, sizeof(*v));

	assert_non_null(v);
	host_up(&v->h, srv.sock2);
	v->h.d.timeout_ms = 3000;
	assert_int_equal(pthread_create(&v->thread, NULL, victim_run, v), 0);
	return v;
}

/* Stop the victim; every request it made completed, none failed or stalled. */
static void victim_check(struct victim *v)
{
	atomic_store(&v->stop, true);
	assert_int_equal(pthread_join(v->thread, NULL), 0);
	if (v->errors)
		fprintf(stderr, "victim: %u errors, first %d\n", v->errors, v->first_error);
	fprintf(stderr, "victim: %u rounds, slowest %lld ms\n", v->rounds,
		(long long)v->max_lat_ms);
	assert_int_equal(v->errors, 0);
	assert_true(v->rounds >= VICTIM_MIN_ROUNDS);
	assert_true(v->max_lat_ms < VICTIM_MAX_LAT_MS);
	umdev_nvmed_vfu_close(&v->h);
	free(v);
}

/* The daemon is alive, exits on SIGTERM within the limit, and cleanly. */
static void sigterm_exits(void)
{
	int64_t t0 = now_ms();
	bool exited;

	assert_true(umdev_proc_alive(&srv.proc));
	assert_int_equal(kill(srv.proc.pid, SIGTERM), 0);
	while (umdev_proc_alive(&srv.proc) && now_ms() - t0 < SIGTERM_LIMIT_MS)
		usleep(10000);
	exited = !umdev_proc_alive(&srv.proc);
	fprintf(stderr, "SIGTERM: %s after %lld ms\n", exited ? "exited" : "still running",
		(long long)(now_ms() - t0));
	if (!exited)
		umdev_proc_kill(&srv.proc);
	assert_true(exited);
	assert_true(WIFEXITED(srv.proc.status));
	assert_int_equal(WEXITSTATUS(srv.proc.status), 0);
}

/* How many lines of the daemon's log contain @needle. */
static unsigned log_count(const char *needle)
{
	FILE *f = fopen(srv.log, "r");
	char line[1024];
	unsigned n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* ---- tests ---- */

/*
 * A driver written for kernel VFIO never sets Memory Space Enable (vfio-pci
 * did on open): it reads CAP and VS and brings the controller up all the
 * same.
 * Once it clears the bit itself, BAR accesses are refused as before.
 */
static void test_kernel_vfio_client(void **state)
{
	struct umdev_nvmed_vfu *h = calloc(1, sizeof(*h));
	struct victim *v = victim_start();
	uint32_t lo = 0, hi = 0, vs = 0, cc = 0, csts = 0;
	uint16_t cmd = 0;
	uint64_t buf;

	(void)state;
	assert_non_null(h);
	assert_int_equal(umdev_nvmed_vfu_open(h, srv.sock, IOVA, MEM), 0);
	assert_int_equal(umdev_vfuc_cfg_read(&h->c, UMDEV_PCI_COMMAND, &cmd, 2), 0);
	assert_int_equal(cmd, UMDEV_PCI_CMD_MEMORY);
	assert_int_equal(umdev_nvmed_reg_read32(&h->d, NVME_REG_CAP, &lo), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&h->d, NVME_REG_CAP + 4, &hi), 0);
	assert_true(lo & 0xffff); /* MQES */
	assert_int_equal(umdev_nvmed_reg_read32(&h->d, NVME_REG_VS, &vs), 0);
	assert_true(vs >= 0x10300);
	/*
	 * Bus mastering is the driver's to turn on (vfio-pci leaves it off).
	 * As on hardware, the controller becomes ready without it and fetches
	 * nothing until the driver sets it (read-modify-write, as QEMU's
	 * util/vfio-helpers.c does).
	 */
	assert_int_equal(umdev_nvmed_enable(&h->d, 32), 0);
	assert_int_equal(umdev_nvmed_vfu_command(h, UMDEV_PCI_CMD_MASTER, 0), 0);
	buf = umdev_nvmed_alloc(&h->d, 4096, 4096);
	assert_int_equal(umdev_nvmed_identify(&h->d, NVME_CNS_CTRL, 0, buf), 0);
	assert_int_equal(umdev_nvmed_create_qpair(&h->d, 1, 64, false), 0);
	proto_fill(umdev_nvmed_ptr(&h->d, buf), 4096, 7);
	assert_int_equal(rw(h, NVME_CMD_WRITE, 16, buf), 0);
	memset(umdev_nvmed_ptr(&h->d, buf), 0, 4096);
	assert_int_equal(rw(h, NVME_CMD_READ, 16, buf), 0);
	assert_true(proto_check(umdev_nvmed_ptr(&h->d, buf), 4096, 7));
	/* The client clears Memory Space Enable: BAR accesses are refused again. */
	assert_int_equal(umdev_nvmed_vfu_command(h, 0, UMDEV_PCI_CMD_MEMORY), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&h->d, NVME_REG_CAP, &lo), -EIO);
	assert_int_equal(umdev_nvmed_reg_write32(&h->d, NVME_REG_CC, 0), -EIO);
	/* ...and stays off across DEVICE_RESET, as the kernel restores it. */
	assert_int_equal(umdev_vfuc_reset(&h->c), 0);
	assert_int_equal(umdev_vfuc_cfg_read(&h->c, UMDEV_PCI_COMMAND, &cmd, 2), 0);
	assert_int_equal(cmd & UMDEV_PCI_CMD_MEMORY, 0);
	assert_int_equal(umdev_nvmed_reg_read32(&h->d, NVME_REG_CSTS, &csts), -EIO);
	umdev_nvmed_vfu_close(h);
	/* The next client opens the device afresh: enabled, and reset left it disabled. */
	assert_int_equal(umdev_nvmed_vfu_open(h, srv.sock, IOVA, MEM), 0);
	assert_int_equal(umdev_nvmed_reg_read32(&h->d, NVME_REG_CC, &cc), 0);
	assert_int_equal(cc & NVME_CC_EN, 0);
	assert_int_equal(umdev_nvmed_reg_read32(&h->d, NVME_REG_CSTS, &csts), 0);
	assert_int_equal(csts & NVME_CSTS_RDY, 0);
	umdev_nvmed_vfu_close(h);
	free(h);
	victim_check(v);
	sigterm_exits();
	passed = true;
}

/*
 * Interrupt fds that could block the thread signalling them. Not eventfds
 * (a pipe nobody reads, a socket, a memfd) are refused. A saturated INTx
 * eventfd (the client wrote 0xfffffffffffffffe) used to block the shared
 * I/O thread on the first completion, then DMA_UNMAP blocked the control
 * thread behind it: every device stopped and SIGTERM did nothing.
 */
static void test_saturated_intx(void **state)
{
	struct umdev_nvmed_vfu *h = calloc(1, sizeof(*h));
	struct victim *v = victim_start();
	uint64_t big = 0xfffffffffffffffeull, cnt = 0, buf;
	int p[2], sp[2], mfd, efd;

	(void)state;
	assert_non_null(h);
	assert_int_equal(umdev_nvmed_vfu_open(h, srv.sock, IOVA, MEM), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	mfd = memfd_create("not-an-eventfd", MFD_CLOEXEC);
	assert_true(mfd >= 0);
	assert_int_equal(umdev_vfuc_set_irqs(&h->c, VFIO_PCI_INTX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, 1, NULL, &p[1], 1), -EINVAL);
	assert_int_equal(umdev_vfuc_set_irqs(&h->c, VFIO_PCI_MSIX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, 1, NULL, &sp[0], 1), -EINVAL);
	assert_int_equal(umdev_vfuc_set_irqs(&h->c, VFIO_PCI_MSI_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, 1, NULL, &mfd, 1), -EINVAL);
	close(p[0]);
	close(p[1]);
	close(sp[0]);
	close(sp[1]);
	close(mfd);
	/* A blocking eventfd, saturated: any further write would sleep. */
	efd = eventfd(0, EFD_CLOEXEC);
	assert_true(efd >= 0);
	assert_int_equal(write(efd, &big, 8), 8);
	assert_int_equal(umdev_vfuc_set_irqs(&h->c, VFIO_PCI_INTX_IRQ_INDEX,
					     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					     0, 1, NULL, &efd, 1), 0);
	assert_int_equal(umdev_nvmed_vfu_command(h, UMDEV_PCI_CMD_MASTER, 0), 0);
	assert_int_equal(umdev_nvmed_enable(&h->d, 32), 0);
	buf = umdev_nvmed_alloc(&h->d, 4096, 4096);
	/* Admin completions raise INTx on the saturated eventfd, several times. */
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(umdev_nvmed_identify(&h->d, NVME_CNS_CTRL, 0, buf), 0);
		assert_int_equal(umdev_vfuc_set_irqs(&h->c, VFIO_PCI_INTX_IRQ_INDEX,
						     VFIO_IRQ_SET_DATA_NONE |
							     VFIO_IRQ_SET_ACTION_UNMASK,
						     0, 1, NULL, NULL, 0), 0);
	}
	/* DMA_UNMAP quiesces the device through the I/O thread: answered. */
	assert_int_equal(umdev_vfuc_remove_mem(&h->c, IOVA), 0);
	/* Nothing was added to or lost from the counter by the attempts. */
	assert_int_equal(read(efd, &cnt, 8), 8);
	assert_true(cnt == big);
	close(efd);
	umdev_nvmed_vfu_close(h);
	free(h);
	victim_check(v);
	sigterm_exits();
	passed = true;
}

/* Send one REGION_READ of the whole config space without waiting for its reply. */
static int send_cfg_read(struct umdev_vfuc *c, uint16_t id)
{
	struct {
		struct vfio_user_header h;
		struct vfio_user_region_access a;
	} __attribute__((packed)) m = {
		.h = { .msg_id = id, .cmd = VFIO_USER_REGION_READ, .msg_size = sizeof(m) },
		.a = { .offset = 0, .region = VFIO_PCI_CONFIG_REGION_INDEX, .count = 4096 },
	};

	return umdev_vfuc_send_raw(c, &m, sizeof(m), NULL, 0);
}

/*
 * A client that sends requests and never reads the replies. Below the
 * output bound it just sits there, costing nobody anything (replies used to
 * be written with a 2 s wait each, stalling every device's control path).
 * Over the bound it is dropped with a log line.
 */
static void test_client_stops_reading(void **state)
{
	struct victim *v = victim_start();
	struct umdev_vfuc c;
	const unsigned reply = 16 + 16 + 4096;
	unsigned sent = 0, i;
	uint64_t got = 0;
	int64_t t0;
	char b[65536];

	(void)state;
	assert_int_equal(umdev_vfuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vfuc_version(&c, NULL), 0);
	/* About 2 MiB of replies: more than the socket holds, less than the bound. */
	for (i = 0; i < 512; i++)
		assert_int_equal(send_cfg_read(&c, (uint16_t)(1000 + i)), 0);
	sent += i;
	usleep(1500 * 1000); /* the victim keeps going meanwhile */
	assert_true(umdev_proc_alive(&srv.proc));
	assert_int_equal(log_count("does not read"), 0);
	/* Another 8 MiB: over the bound, dropped. Sends may fail once it is gone. */
	for (i = 0; i < 2048; i++)
		if (send_cfg_read(&c, (uint16_t)(2000 + i)) < 0)
			break;
	sent += i;
	/* What was in the socket can still be read, then EOF: far less than was asked. */
	t0 = now_ms();
	for (;;) {
		struct pollfd pf = { .fd = c.fd, .events = POLLIN };
		ssize_t n;

		assert_true(now_ms() - t0 < 10000);
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		n = read(c.fd, b, sizeof(b));
		if (n <= 0)
			break;
		got += (uint64_t)n;
	}
	fprintf(stderr, "non-reading client: %u requests, %llu of %llu reply bytes delivered\n",
		sent, (unsigned long long)got, (unsigned long long)sent * reply);
	assert_true(got < (uint64_t)sent * reply);
	assert_int_equal(log_count("does not read"), 1);
	umdev_vfuc_close(&c);
	/* nvme0 serves the next client. */
	struct umdev_nvmed_vfu *h = calloc(1, sizeof(*h));
	uint64_t buf;
	assert_non_null(h);
	host_up(h, srv.sock);
	buf = umdev_nvmed_alloc(&h->d, 4096, 4096);
	assert_int_equal(rw(h, NVME_CMD_READ, 0, buf), 0);
	umdev_nvmed_vfu_close(h);
	free(h);
	victim_check(v);
	sigterm_exits();
	passed = true;
}

static int dma_map(struct umdev_vfuc *c, uint64_t addr, uint64_t size, uint64_t offset, int fd)
{
	struct vfio_user_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE,
		.offset = offset,
		.addr = addr,
		.size = size,
	};

	return umdev_vfuc_request(c, VFIO_USER_DMA_MAP, 0, &m, sizeof(m), fd >= 0 ? &fd : NULL,
				  fd >= 0 ? 1 : 0, NULL, 0, NULL, NULL, NULL);
}

/*
 * Bounds: DMA_MAP alignment, overflow, overlap and count, each an error
 * reply on a connection that stays usable, and the log lines they cause
 * rate-limited. The BAR fd we hand out cannot be resized.
 */
static void test_limits_and_fds(void **state)
{
	struct victim *v = victim_start();
	struct umdev_vfuc c;
	uint8_t info[512];
	unsigned i;
	int mfd, bfd = -1;
	void *m;

	(void)state;
	assert_int_equal(umdev_vfuc_connect(&c, srv.sock, 3000), 0);
	assert_int_equal(umdev_vfuc_version(&c, NULL), 0);
	assert_int_equal(c.server_max_dma_maps, UMDEV_VFU_MAX_DMA_MAPS);
	mfd = memfd_create("guest", MFD_CLOEXEC);
	assert_true(mfd >= 0);
	assert_int_equal(ftruncate(mfd, 1 << 20), 0);
	for (unsigned round = 0; round < 5; round++) {
		/* Unaligned address, size, file offset; empty; wrapping address or offset. */
		assert_int_equal(dma_map(&c, 0x10000800, 4096, 0, mfd), -EINVAL);
		assert_int_equal(dma_map(&c, 0x10000000, 100, 0, mfd), -EINVAL);
		assert_int_equal(dma_map(&c, 0x10000000, 4096, 12, mfd), -EINVAL);
		assert_int_equal(dma_map(&c, 0x10000000, 0, 0, mfd), -EINVAL);
		assert_int_equal(dma_map(&c, 0xfffffffffffff000ull, 0x2000, 0, mfd), -EINVAL);
		assert_int_equal(dma_map(&c, 0x10000000, 0x2000, 0xfffffffffffff000ull, mfd),
				 -EINVAL);
		/* The fd is smaller than the window (checked before mmap). */
		assert_int_equal(dma_map(&c, 0x10000000, 2 << 20, 0, mfd), -EINVAL);
		/* An offset without an fd means nothing. */
		assert_int_equal(dma_map(&c, 0x10000000, 4096, 4096, -1), -EINVAL);
	}
	assert_int_equal(dma_map(&c, 0x10000000, 1 << 20, 0, mfd), 0);
	assert_int_equal(dma_map(&c, 0x10080000, 1 << 20, 0, mfd), -EEXIST);
	assert_int_equal(dma_map(&c, 0x0ff00000, 2 << 20, 0, -1), -EEXIST);
	/* The count advertised as max_dma_maps holds; one more is ENOSPC. */
	for (i = 1; i < UMDEV_VFU_MAX_DMA_MAPS; i++)
		assert_int_equal(dma_map(&c, 0x200000000ull + i * 0x10000ull, 4096, 0, -1), 0);
	assert_int_equal(dma_map(&c, 0x300000000ull, 4096, 0, -1), -ENOSPC);
	assert_int_equal(dma_map(&c, 0x300000000ull, 4096, 0, mfd), -ENOSPC);
	/* Still a working connection. */
	uint16_t cmd = 0;
	assert_int_equal(umdev_vfuc_cfg_read(&c, UMDEV_PCI_COMMAND, &cmd, 2), 0);
	assert_int_equal(cmd & UMDEV_PCI_CMD_MEMORY, UMDEV_PCI_CMD_MEMORY);
	/* The BAR memfd we hand out is sealed: mmap yes, resize no. */
	assert_int_equal(umdev_vfuc_region_info(&c, 0, info, sizeof(info), &bfd), 0);
	assert_true(bfd >= 0);
	assert_int_equal(ftruncate(bfd, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(bfd, 1 << 20), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fcntl(bfd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0x1000);
	assert_true(m != MAP_FAILED);
	munmap(m, 4096);
	close(bfd);
	close(mfd);
	umdev_vfuc_close(&c);
	/* 40+ failed DMA_MAPs, at most a burst of log lines about them. */
	fprintf(stderr, "DMA_MAP log lines: %u\n", log_count("DMA_MAP"));
	assert_true(log_count("DMA_MAP") >= 1);
	assert_true(log_count("DMA_MAP") <= UMDEV_RATELIMIT_BURST);
	victim_check(v);
	sigterm_exits();
	passed = true;
}

/*
 * The client shrinks the memfd behind memory it mapped for DMA (its own,
 * unsealed) and rings a doorbell: the controller faults reading the queue.
 * The process lives, nvme0's client is dropped with a log line, nvme1 never
 * notices, and nvme0 serves the next client.
 */
static void test_dma_memory_shrunk(void **state)
{
	struct umdev_nvmed_vfu *h = calloc(1, sizeof(*h));
	struct victim *v = victim_start();
	uint64_t buf;

	(void)state;
	assert_non_null(h);
	assert_int_equal(umdev_nvmed_vfu_open_ex(h, srv.sock, IOVA, MEM, true), 0);
	assert_int_equal(umdev_nvmed_vfu_command(h, UMDEV_PCI_CMD_MEMORY | UMDEV_PCI_CMD_MASTER, 0),
			 0);
	assert_int_equal(umdev_nvmed_enable(&h->d, 32), 0);
	buf = umdev_nvmed_alloc(&h->d, 4096, 4096);
	assert_int_equal(umdev_nvmed_identify(&h->d, NVME_CNS_CTRL, 0, buf), 0);
	/*
	 * The memory past the queues goes (the client keeps its queues, which
	 * it touches itself); IDENTIFY into a buffer there makes the
	 * controller write to what is gone. Whether the command completes
	 * before the client is dropped does not matter.
	 */
	buf = umdev_nvmed_alloc(&h->d, 4096, 4096);
	assert_int_equal(ftruncate(h->c.mem[0].fd, (off_t)(buf - IOVA)), 0);
	h->d.timeout_ms = 2000;
	if (umdev_nvmed_identify(&h->d, NVME_CNS_CTRL, 0, buf) == 0)
		fprintf(stderr, "identify completed before the client was dropped\n");
	for (int i = 0; i < 300 && !log_count("took away DMA memory"); i++)
		usleep(10000);
	assert_int_equal(log_count("took away DMA memory"), 1);
	umdev_nvmed_vfu_close(h);
	victim_check(v);
	/* A new, well-behaved client gets a working controller. */
	host_up(h, srv.sock);
	buf = umdev_nvmed_alloc(&h->d, 4096, 4096);
	assert_int_equal(rw(h, NVME_CMD_WRITE, 8, buf), 0);
	umdev_nvmed_vfu_close(h);
	free(h);
	sigterm_exits();
	passed = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kernel_vfio_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_saturated_intx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_stops_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_and_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_memory_shrunk, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
