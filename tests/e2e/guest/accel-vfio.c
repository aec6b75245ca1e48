/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * accel-vfio: drive one accel virtual device from inside a Linux guest
 * through the guest kernel's vfio-pci (type1 IOMMU behind an emulated
 * VT-d), as src/client/accel_drv.c does over vfio-user on the host.
 *
 * Hand check only (tests/e2e/accel-guest-check.sh builds it static and
 * boots it in a QEMU 10.2 guest); not built by meson, not run by CI.
 *
 *   accel-vfio 0000:00:04.0
 *
 * Binds the function to vfio-pci (driver_override), opens its group and
 * device, maps a buffer with VFIO_IOMMU_MAP_DMA, gives MSI-X vectors 0 and 1
 * eventfds, maps BAR0 and submits through the mapped ring: a COPY and a FILL
 * with a completion record and an interrupt on vector 1, then a COPY from
 * an unmapped IOVA (BAD_ADDR record), then unmaps the buffer and checks
 * that a COPY within it is refused. Each waits for its interrupt on the
 * eventfd before it reads the record. Prints ACCEL-VFIO: PASS or FAIL.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "umdev/proto/accel.h"

#define IOVA_BASE 0x40000000ull /* any address: the vIOMMU translates it */
#define IOVA2_BASE 0x50000000ull
#define BUF_PAGES 8
#define PG 4096u
#define NVEC 2

struct dev {
	int container, group, fd;
	uint64_t bar0_off, cfg_off;
	uint8_t *bar;
	uint8_t *buf;
	uint8_t *rec2; /* one page at IOVA2_BASE, mapped on its own */
	int efd[NVEC];
	uint32_t pasid, wq_size, tail;
};

static int failures;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("%s: ", ok ? "ok" : "FAIL");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	if (!ok)
		failures++;
}

static void die(const char *what)
{
	printf("ACCEL-VFIO: FAIL (%s: %s)\n", what, strerror(errno));
	exit(1);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, text, strlen(text)) < 0) {
		/* drivers_probe reports an error for a function that is already bound. */
		if (!strstr(path, "drivers_probe"))
			die(path);
	}
	if (fd >= 0)
		close(fd);
}

static uint32_t reg_rd(struct dev *d, uint32_t off)
{
	uint32_t v;

	if (pread(d->fd, &v, 4, (off_t)(d->bar0_off + off)) != 4)
		die("BAR0 register read");
	return v;
}

static void reg_wr(struct dev *d, uint32_t off, uint32_t v)
{
	if (pwrite(d->fd, &v, 4, (off_t)(d->bar0_off + off)) != 4)
		die("BAR0 register write");
}

static void open_dev(struct dev *d, const char *bdf)
{
	char path[PATH_MAX], link[PATH_MAX];
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	struct vfio_region_info ri = { .argsz = sizeof(ri) };
	const char *grp;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	write_file(path, "vfio-pci");
	write_file("/sys/bus/pci/drivers_probe", bdf);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		die("iommu_group (no IOMMU? boot with intel_iommu=on)");
	link[n] = 0;
	grp = strrchr(link, '/') + 1;
	printf("%s: iommu group %s\n", bdf, grp);

	d->container = open("/dev/vfio/vfio", O_RDWR);
	if (d->container < 0)
		die("/dev/vfio/vfio");
	if (ioctl(d->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    !ioctl(d->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU))
		die("no type1v2 IOMMU");
	snprintf(path, sizeof(path), "/dev/vfio/%s", grp);
	d->group = open(path, O_RDWR);
	if (d->group < 0)
		die(path);
	if (ioctl(d->group, VFIO_GROUP_GET_STATUS, &gs) < 0 ||
	    !(gs.flags & VFIO_GROUP_FLAGS_VIABLE))
		die("group not viable");
	if (ioctl(d->group, VFIO_GROUP_SET_CONTAINER, &d->container) < 0)
		die("VFIO_GROUP_SET_CONTAINER");
	if (ioctl(d->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
		die("VFIO_SET_IOMMU");
	d->fd = ioctl(d->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (d->fd < 0)
		die("VFIO_GROUP_GET_DEVICE_FD");

	ri.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0)
		die("config region info");
	d->cfg_off = ri.offset;
	memset(&ri, 0, sizeof(ri));
	ri.argsz = sizeof(ri);
	ri.index = VFIO_PCI_BAR0_REGION_INDEX;
	if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0)
		die("BAR0 region info");
	d->bar0_off = ri.offset;
	check(ri.size == ACCEL_BAR0_SIZE && (ri.flags & VFIO_REGION_INFO_FLAG_MMAP),
	      "BAR0 size 0x%llx, mmap %s", (unsigned long long)ri.size,
	      ri.flags & VFIO_REGION_INFO_FLAG_MMAP ? "yes" : "no");
	d->bar = mmap(NULL, ACCEL_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
		      (off_t)d->bar0_off);
	if (d->bar == MAP_FAILED)
		die("mmap BAR0");
}

static uint8_t *map_one(struct dev *d, uint64_t iova, size_t size)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.iova = iova,
		.size = size,
	};
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap buffer");
	m.vaddr = (uintptr_t)p;
	if (ioctl(d->container, VFIO_IOMMU_MAP_DMA, &m) < 0)
		die("VFIO_IOMMU_MAP_DMA");
	return p;
}

static void map_dma(struct dev *d)
{
	d->buf = map_one(d, IOVA_BASE, BUF_PAGES * PG);
	d->rec2 = map_one(d, IOVA2_BASE, PG);
}

static void setup_msix(struct dev *d)
{
	struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX };
	char sbuf[sizeof(struct vfio_irq_set) + NVEC * sizeof(int32_t)];
	struct vfio_irq_set *s = (struct vfio_irq_set *)sbuf;

	if (ioctl(d->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii) < 0)
		die("VFIO_DEVICE_GET_IRQ_INFO");
	check(ii.count == 9, "MSI-X vectors %u (9 expected)", ii.count);
	for (int i = 0; i < NVEC; i++) {
		d->efd[i] = eventfd(0, EFD_NONBLOCK);
		if (d->efd[i] < 0)
			die("eventfd");
	}
	s->argsz = sizeof(sbuf);
	s->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	s->index = VFIO_PCI_MSIX_IRQ_INDEX;
	s->start = 0;
	s->count = NVEC;
	memcpy(s->data, d->efd, NVEC * sizeof(int32_t));
	if (ioctl(d->fd, VFIO_DEVICE_SET_IRQS, s) < 0)
		die("VFIO_DEVICE_SET_IRQS");
}

static void enable(struct dev *d)
{
	uint16_t cmd;

	/* vfio-pci enabled memory decoding; the engine's DMA needs bus mastering. */
	if (pread(d->fd, &cmd, 2, (off_t)(d->cfg_off + 4)) != 2)
		die("config read");
	cmd |= 0x6;
	if (pwrite(d->fd, &cmd, 2, (off_t)(d->cfg_off + 4)) != 2)
		die("config write");
	check(reg_rd(d, ACCEL_REG_VERSION) == ACCEL_VERSION, "VERSION 0x%08x",
	      reg_rd(d, ACCEL_REG_VERSION));
	d->pasid = reg_rd(d, ACCEL_REG_PASID);
	d->wq_size = reg_rd(d, ACCEL_REG_WQ_SIZE);
	printf("PASID %u, WQ_SIZE %u, VECTORS %u\n", d->pasid, d->wq_size,
	       reg_rd(d, ACCEL_REG_VECTORS));
	if (!d->wq_size || (d->wq_size & (d->wq_size - 1)) ||
	    d->wq_size * sizeof(struct accel_desc) > ACCEL_RING_MAX_BYTES)
		die("WQ_SIZE");
	/* Completions on vector 1 are allowed for our PASID only. */
	reg_wr(d, ACCEL_REG_PERM + 1 * ACCEL_PERM_STRIDE,
	       ACCEL_PERM_PASID_EN | d->pasid << ACCEL_PERM_PASID_SHIFT);
	reg_wr(d, ACCEL_REG_CMD, ACCEL_CMD_RESET);
	reg_wr(d, ACCEL_REG_CMD, ACCEL_CMD_ENABLE);
	check(reg_rd(d, ACCEL_REG_STATUS) & ACCEL_STS_ENABLED, "STATUS enabled");
	d->tail = 0;
}

static void submit(struct dev *d, const struct accel_desc *desc)
{
	volatile uint64_t *slot = (volatile uint64_t *)(d->bar + ACCEL_RING_OFF +
							(d->tail & (d->wq_size - 1)) * sizeof(*desc));
	volatile uint32_t *hot = (volatile uint32_t *)(d->bar + ACCEL_HOT_OFF);
	uint64_t w[8];

	memcpy(w, desc, sizeof(w));
	for (int i = 0; i < 8; i++)
		slot[i] = w[i];
	/* The slot before the tail (release), the tail before the idle flag (full fence). */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	hot[ACCEL_HOT_TAIL / 4] = ++d->tail;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (hot[ACCEL_HOT_IDLE / 4])
		reg_wr(d, ACCEL_REG_KICK, 1);
}

/* Interrupts counted on vector @v within @ms. */
static uint64_t wait_irq(struct dev *d, int v, int ms)
{
	struct pollfd p = { .fd = d->efd[v], .events = POLLIN };
	uint64_t n = 0;

	if (poll(&p, 1, ms) == 1 && read(d->efd[v], &n, sizeof(n)) != sizeof(n))
		n = 0;
	return n;
}

static struct accel_comp *rec(struct dev *d, unsigned page)
{
	return (struct accel_comp *)(d->buf + page * PG);
}

static uint64_t iova(unsigned page)
{
	return IOVA_BASE + (uint64_t)page * PG;
}

/* Pages of the buffer; the vIOMMU maps it page by page, one DMA window each. */
enum { P_COMP, P_SRC, P_DST, P_FILL, P_SPAN };

static void run(struct dev *d)
{
	struct accel_desc desc;
	struct accel_comp *c = rec(d, P_COMP);
	uint8_t *src = d->buf + P_SRC * PG, *dst = d->buf + P_DST * PG;
	const uint64_t *fill = (const uint64_t *)(d->buf + P_FILL * PG);
	uint64_t irqs;
	int ok;

	for (unsigned i = 0; i < PG; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	memset(dst, 0, PG);

	memset(c, 0, sizeof(*c));
	desc = (struct accel_desc){ .pasid = d->pasid, .opcode = ACCEL_OP_COPY,
				    .flags = ACCEL_F_COMP | ACCEL_F_IRQ, .vector = 1,
				    .comp_addr = iova(P_COMP), .src = iova(P_SRC),
				    .dst = iova(P_DST), .size = PG, .cookie = 0xc0b1 };
	submit(d, &desc);
	irqs = wait_irq(d, 1, 10000);
	check(irqs == 1, "COPY: interrupt on vector 1 (%" PRIu64 ")", irqs);
	check(c->status == ACCEL_ST_SUCCESS && c->bytes == PG && c->cookie == 0xc0b1,
	      "COPY: record status %u bytes %u cookie 0x%" PRIx64, c->status, c->bytes, c->cookie);
	check(memcmp(src, dst, PG) == 0, "COPY: 4096 bytes copied");

	memset(c, 0, sizeof(*c));
	desc = (struct accel_desc){ .pasid = d->pasid, .opcode = ACCEL_OP_FILL,
				    .flags = ACCEL_F_COMP | ACCEL_F_IRQ, .vector = 1,
				    .comp_addr = iova(P_COMP), .dst = iova(P_FILL), .size = PG,
				    .pattern = 0x0123456789abcdefull, .cookie = 0xf111 };
	submit(d, &desc);
	irqs = wait_irq(d, 1, 10000);
	check(irqs == 1, "FILL: interrupt on vector 1 (%" PRIu64 ")", irqs);
	check(c->status == ACCEL_ST_SUCCESS && c->bytes == PG && c->cookie == 0xf111,
	      "FILL: record status %u bytes %u cookie 0x%" PRIx64, c->status, c->bytes, c->cookie);
	ok = 1;
	for (unsigned i = 0; i < PG / 8; i++)
		ok &= fill[i] == 0x0123456789abcdefull;
	check(ok, "FILL: 4096 bytes of pattern");

	/* An IOVA the vIOMMU does not map: the device must refuse it. */
	memset(c, 0, sizeof(*c));
	desc.opcode = ACCEL_OP_COPY;
	desc.src = IOVA_BASE + BUF_PAGES * PG;
	desc.dst = iova(P_DST);
	desc.cookie = 0xbad;
	submit(d, &desc);
	irqs = wait_irq(d, 1, 10000);
	check(irqs == 1, "unmapped source: interrupt on vector 1 (%" PRIu64 ")", irqs);
	check(c->status == ACCEL_ST_BAD_ADDR && c->fault_addr == desc.src,
	      "unmapped source: record status 0x%x fault 0x%" PRIx64, c->status, c->fault_addr);
	check(memcmp(src, dst, PG) == 0, "unmapped source: destination untouched");

	/* The vIOMMU hands the server one window per page: a buffer spans two. */
	for (unsigned i = 0; i < 2 * PG; i++)
		d->buf[P_SPAN * PG + i] = (uint8_t)(i * 13 + 1);
	memset(d->buf + (P_SPAN + 2) * PG, 0, 2 * PG);
	memset(c, 0, sizeof(*c));
	desc.src = iova(P_SPAN);
	desc.dst = iova(P_SPAN + 2);
	desc.size = 2 * PG;
	desc.cookie = 0x2;
	submit(d, &desc);
	irqs = wait_irq(d, 1, 10000);
	check(irqs == 1 && c->status == ACCEL_ST_SUCCESS && c->bytes == 2 * PG,
	      "8 KiB COPY over two pages: %" PRIu64 " interrupt(s), status 0x%x, bytes %u", irqs,
	      c->status, c->bytes);
	check(memcmp(d->buf + P_SPAN * PG, d->buf + (P_SPAN + 2) * PG, 2 * PG) == 0,
	      "8 KiB COPY over two pages: data");

	check(wait_irq(d, 0, 0) == 0, "no interrupt on the error vector");
	check((reg_rd(d, ACCEL_REG_SWERR) & ACCEL_SWERR_VALID) == 0, "SWERR clear");
	check(*(volatile uint32_t *)(d->bar + ACCEL_HOT_OFF + ACCEL_HOT_HEAD) == 4,
	      "HEAD 4");
}

/*
 * After VFIO_IOMMU_UNMAP_DMA the device must no longer reach the pages:
 * a COPY between two of them (record in the other mapping) gets BAD_ADDR.
 */
static void run_after_unmap(struct dev *d)
{
	struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = IOVA_BASE,
						.size = BUF_PAGES * PG };
	struct accel_comp *c = (struct accel_comp *)d->rec2;
	struct accel_desc desc;
	uint64_t irqs;

	if (ioctl(d->container, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
		die("VFIO_IOMMU_UNMAP_DMA");
	memset(d->buf + P_DST * PG, 0x5a, PG);
	memset(c, 0, sizeof(*c));
	desc = (struct accel_desc){ .pasid = d->pasid, .opcode = ACCEL_OP_COPY,
				    .flags = ACCEL_F_COMP | ACCEL_F_IRQ, .vector = 1,
				    .comp_addr = IOVA2_BASE, .src = iova(P_SRC),
				    .dst = iova(P_DST), .size = PG, .cookie = 0x94 };
	submit(d, &desc);
	irqs = wait_irq(d, 1, 10000);
	check(irqs == 1, "after UNMAP_DMA: interrupt on vector 1 (%" PRIu64 ")", irqs);
	check(c->status == ACCEL_ST_BAD_ADDR,
	      "after UNMAP_DMA: record status 0x%x (0x12 expected) fault 0x%" PRIx64, c->status,
	      c->fault_addr);
	check(d->buf[P_DST * PG] == 0x5a, "after UNMAP_DMA: the unmapped page untouched");
}

/* The guest kernel's side of the interrupts: vfio-pci's MSI-X handlers. */
static void show_interrupts(void)
{
	FILE *f = fopen("/proc/interrupts", "r");
	char line[512];

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "vfio-msix"))
			fputs(line, stdout);
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	struct dev d;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DOMAIN:BUS:SLOT.FN\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	memset(&d, 0, sizeof(d));
	open_dev(&d, argv[1]);
	map_dma(&d);
	setup_msix(&d);
	enable(&d);
	run(&d);
	run_after_unmap(&d);
	show_interrupts();
	reg_wr(&d, ACCEL_REG_CMD, ACCEL_CMD_DISABLE);
	printf("ACCEL-VFIO: %s (%d failures)\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
