/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio-user command handlers. Every length, index and count comes from the
 * client and is checked before use; a malformed command gets an error reply
 * with an errno, a broken stream (framing) closes the connection.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "umdev/log.h"
#include "umdev/proto/pci_regs.h"
#include "vfu_internal.h"

#define PAGE 4096u

static const char *const cmd_names[VFIO_USER_MAX_COMMAND] = {
	[VFIO_USER_VERSION] = "VERSION",
	[VFIO_USER_DMA_MAP] = "DMA_MAP",
	[VFIO_USER_DMA_UNMAP] = "DMA_UNMAP",
	[VFIO_USER_DEVICE_GET_INFO] = "DEVICE_GET_INFO",
	[VFIO_USER_DEVICE_GET_REGION_INFO] = "DEVICE_GET_REGION_INFO",
	[VFIO_USER_DEVICE_GET_REGION_IO_FDS] = "DEVICE_GET_REGION_IO_FDS",
	[VFIO_USER_DEVICE_GET_IRQ_INFO] = "DEVICE_GET_IRQ_INFO",
	[VFIO_USER_DEVICE_SET_IRQS] = "DEVICE_SET_IRQS",
	[VFIO_USER_REGION_READ] = "REGION_READ",
	[VFIO_USER_REGION_WRITE] = "REGION_WRITE",
	[VFIO_USER_DMA_READ] = "DMA_READ",
	[VFIO_USER_DMA_WRITE] = "DMA_WRITE",
	[VFIO_USER_DEVICE_RESET] = "DEVICE_RESET",
	[VFIO_USER_REGION_WRITE_MULTI] = "REGION_WRITE_MULTI",
	[VFIO_USER_DEVICE_FEATURE] = "DEVICE_FEATURE",
	[VFIO_USER_MIG_DATA_READ] = "MIG_DATA_READ",
	[VFIO_USER_MIG_DATA_WRITE] = "MIG_DATA_WRITE",
};

const char *umdev_vfu_command_name(unsigned cmd)
{
	return cmd < VFIO_USER_MAX_COMMAND && cmd_names[cmd] ? cmd_names[cmd] : "?";
}

int vfu_check_header(const struct vfio_user_header *h, const char **why)
{
	unsigned type = h->flags & VFIO_USER_F_TYPE_MASK;

	if (h->msg_size < sizeof(*h)) {
		*why = "size smaller than the header";
		return -EPROTO;
	}
	if (h->msg_size > VFU_MAX_MSG) {
		*why = "larger than max_data_xfer_size allows";
		return -EMSGSIZE;
	}
	if (type != VFIO_USER_F_TYPE_COMMAND && type != VFIO_USER_F_TYPE_REPLY) {
		*why = "unknown message type";
		return -EPROTO;
	}
	if (h->flags & ~(VFIO_USER_F_TYPE_MASK | VFIO_USER_F_NO_REPLY | VFIO_USER_F_ERROR)) {
		*why = "unknown flags";
		return -EPROTO;
	}
	return 0;
}

/* ---- VERSION ---- */

static int cap_uint(json_object *caps, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(caps, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
		return -EINVAL;
	*out = (uint64_t)x;
	return 0;
}

static int h_version(struct vfu_conn *c, struct vfu_msg *m)
{
	const struct vfio_user_version *v = (const void *)m->body;
	uint64_t max_fds = VFIO_USER_DEF_MAX_MSG_FDS, xfer = VFIO_USER_DEF_MAX_DATA_XFER;
	uint64_t pgsizes = VFIO_USER_DEF_PGSIZES, maps = VFIO_USER_DEF_MAX_DMA_MAPS;
	bool wm = false, qemu = false;
	char json[512];
	uint8_t reply[4 + sizeof(json)];
	int n;

	if (c->negotiated)
		return -EINVAL;
	if (m->len < sizeof(*v))
		return -EINVAL;
	if (v->major != VFIO_USER_MAJOR) {
		vfu_err(c, "%s: client speaks vfio-user %u.%u, we speak %u.%u", c->s->name, v->major,
			  v->minor, VFIO_USER_MAJOR, VFIO_USER_MINOR);
		return VFU_CLOSE;
	}
	if (m->len > sizeof(*v)) {
		size_t jl = m->len - sizeof(*v);
		json_tokener *tok;
		json_object *root, *caps;
		int ret = 0;

		/* The JSON string carries its NUL inside the message. */
		if (v->data[jl - 1] != 0 || strlen(v->data) + 1 != jl)
			return -EINVAL;
		tok = json_tokener_new_ex(16);
		if (!tok)
			return -ENOMEM;
		root = json_tokener_parse_ex(tok, v->data, (int)jl - 1);
		if (!root || json_tokener_get_error(tok) != json_tokener_success ||
		    !json_object_is_type(root, json_type_object))
			ret = -EINVAL;
		json_tokener_free(tok);
		if (!ret && json_object_object_get_ex(root, "capabilities", &caps)) {
			json_object *w;

			if (!json_object_is_type(caps, json_type_object))
				ret = -EINVAL;
			if (!ret)
				ret = cap_uint(caps, "max_msg_fds", 1, 1024, &max_fds);
			if (!ret)
				ret = cap_uint(caps, "max_data_xfer_size", 512, 1ull << 30, &xfer);
			if (!ret)
				ret = cap_uint(caps, "pgsizes", 1, UINT64_MAX >> 1, &pgsizes);
			if (!ret)
				ret = cap_uint(caps, "max_dma_maps", 1, 1ull << 31, &maps);
			/*
			 * QEMU's client always sends "migration" (no other client
			 * does yet) and lays out DMA_READ/DMA_WRITE its own way.
			 */
			if (!ret && json_object_object_get_ex(caps, "migration", &w))
				qemu = true;
			if (!ret && json_object_object_get_ex(caps, "write_multiple", &w)) {
				if (!json_object_is_type(w, json_type_boolean))
					ret = -EINVAL;
				else
					wm = json_object_get_boolean(w);
			}
		}
		json_object_put(root);
		if (ret < 0) {
			vfu_err(c, "%s: VERSION with malformed capabilities", c->s->name);
			return ret;
		}
	}
	if (!(pgsizes & PAGE)) {
		vfu_err(c, "%s: client does not support 4 KiB DMA pages", c->s->name);
		return -ENOTSUP;
	}
	c->peer_max_fds = (uint32_t)max_fds;
	c->peer_max_xfer = (uint32_t)xfer;
	c->write_multi = wm;
	c->dma_count32 = qemu;
	/* Our reply only lists capabilities, plus write_multiple if the client offered it. */
	n = snprintf(json, sizeof(json),
		     "{\"capabilities\":{\"max_msg_fds\":%u,\"max_data_xfer_size\":%u,"
		     "\"pgsizes\":%u,\"max_dma_maps\":%u%s}}",
		     UMDEV_VFU_MAX_MSG_FDS, UMDEV_VFU_MAX_DATA_XFER, PAGE, UMDEV_VFU_MAX_DMA_MAPS,
		     wm ? ",\"write_multiple\":true" : "");
	((struct vfio_user_version *)reply)->major = VFIO_USER_MAJOR;
	((struct vfio_user_version *)reply)->minor =
		v->minor < VFIO_USER_MINOR ? v->minor : VFIO_USER_MINOR;
	memcpy(reply + 4, json, (size_t)n + 1);
	c->negotiated = true;
	vfu_info(c, "%s: vfio-user %u.%u negotiated (client max_data_xfer_size %u, max_msg_fds %u%s)",
		   c->s->name, VFIO_USER_MAJOR, ((struct vfio_user_version *)reply)->minor,
		   c->peer_max_xfer, c->peer_max_fds,
		   qemu ? ", QEMU's DMA message layout" : "");
	return vfu_reply(c, m, reply, 4 + (size_t)n + 1, NULL, 0);
}

/* ---- DMA ---- */

static int h_dma_map(struct vfu_conn *c, struct vfu_msg *m)
{
	struct vfio_user_dma_map r;
	struct vfu_dma *d;

	if (m->len < sizeof(r))
		return -EINVAL;
	memcpy(&r, m->body, sizeof(r));
	if (r.argsz < sizeof(r) || m->nfds > 1)
		return -EINVAL;
	if (!r.flags || (r.flags & ~(VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE)))
		return -EINVAL;
	/* Page-aligned, non-empty, and neither the IOVA range nor the file range wraps. */
	if (!r.size || r.addr % PAGE || r.size % PAGE || r.offset % PAGE ||
	    r.addr + r.size < r.addr || r.offset + r.size < r.offset ||
	    r.offset + r.size > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (!m->nfds && r.offset)
		return -EINVAL;
	for (unsigned i = 0; i < c->ndma; i++)
		if (r.addr < c->dma[i].addr + c->dma[i].size && c->dma[i].addr < r.addr + r.size)
			return -EEXIST;
	/* The count we advertised as max_dma_maps; fd-backed ones also fit umdev_as. */
	if (c->ndma >= UMDEV_VFU_MAX_DMA_MAPS)
		return -ENOSPC;
	if (c->ndma == c->dma_cap) {
		unsigned cap = c->dma_cap ? c->dma_cap * 2 : 16;
		struct vfu_dma *n = realloc(c->dma, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->dma = n;
		c->dma_cap = cap;
	}
	if (m->nfds) {
		struct umdev_mem_region_desc rd = {
			.guest_addr = r.addr,
			.size = r.size,
			.mmap_offset = r.offset,
			.fd = m->fds[0],
			.prot = (r.flags & VFIO_USER_F_DMA_REGION_READ ? UMDEV_MEM_READ : 0) |
				(r.flags & VFIO_USER_F_DMA_REGION_WRITE ? UMDEV_MEM_WRITE : 0),
		};
		int ret;

		m->fds[0] = -1; /* consumed by the address space either way */
		ret = umdev_as_add_region(c->as, &rd);
		if (ret < 0) {
			vfu_err(c, "%s: DMA_MAP [0x%llx, +0x%llx) refused: %s", c->s->name,
				  (unsigned long long)r.addr, (unsigned long long)r.size,
				  strerror(-ret));
			return ret;
		}
	}
	d = &c->dma[c->ndma++];
	*d = (struct vfu_dma){ .addr = r.addr, .size = r.size, .flags = r.flags,
			       .has_fd = m->nfds > 0 };
	/*
	 * Without an fd, devices that copy (the virtio runner) may still use
	 * a shadow of it; the rest go on failing there, as before.
	 */
	if (!d->has_fd && r.size <= VFU_SHADOW_MAX - c->shadow_bytes) {
		unsigned prot = (r.flags & VFIO_USER_F_DMA_REGION_READ ? UMDEV_MEM_READ : 0) |
				(r.flags & VFIO_USER_F_DMA_REGION_WRITE ? UMDEV_MEM_WRITE : 0);
		int ret = umdev_as_add_shadow(c->as, r.addr, r.size, prot);

		if (ret == 0) {
			d->shadowed = true;
			c->shadow_bytes += r.size;
		} else {
			umdev_dbg("%s: no shadow for DMA window 0x%llx: %s", c->s->name,
				  (unsigned long long)r.addr, strerror(-ret));
		}
	}
	umdev_dbg("%s: DMA_MAP [0x%llx, +0x%llx) %s%s, %s", c->s->name,
		  (unsigned long long)r.addr, (unsigned long long)r.size,
		  r.flags & VFIO_USER_F_DMA_REGION_READ ? "r" : "",
		  r.flags & VFIO_USER_F_DMA_REGION_WRITE ? "w" : "",
		  d->has_fd ? "fd" : "no fd: DMA_READ/DMA_WRITE");
	umdev_pci_dma_mapped(c->s->pci, r.addr, r.size);
	return vfu_reply(c, m, NULL, 0, NULL, 0);
}

/* Quiesce device users of dma[i], remove it. */
static void remove_dma(struct vfu_conn *c, unsigned i)
{
	struct vfu_dma d = c->dma[i];

	umdev_dbg("%s: DMA_UNMAP [0x%llx, +0x%llx)", c->s->name, (unsigned long long)d.addr,
		  (unsigned long long)d.size);
	umdev_pci_dma_unmap(c->s->pci, d.addr, d.size);
	if (d.shadowed)
		c->shadow_bytes -= d.size;
	if ((d.has_fd || d.shadowed) && umdev_as_remove_region(c->as, d.addr, d.size) < 0)
		umdev_err("%s: DMA window 0x%llx missing from the address space", c->s->name,
			  (unsigned long long)d.addr);
	c->dma[i] = c->dma[--c->ndma];
	umdev_pci_dma_unmapped(c->s->pci, d.addr, d.size);
}

void vfu_conn_drop_dma(struct vfu_conn *c)
{
	while (c->ndma)
		remove_dma(c, c->ndma - 1);
}

static int h_dma_unmap(struct vfu_conn *c, struct vfu_msg *m)
{
	struct vfio_user_dma_unmap r;

	if (m->len < sizeof(r))
		return -EINVAL;
	memcpy(&r, m->body, sizeof(r));
	if (r.argsz < sizeof(r))
		return -EINVAL;
	if (r.flags == VFIO_DMA_UNMAP_FLAG_ALL) {
		if (r.addr || r.size)
			return -EINVAL;
		vfu_conn_drop_dma(c);
	} else if (r.flags) {
		return -EINVAL; /* dirty bitmaps are not offered */
	} else {
		/* Inclusive: QEMU unmaps up to the top of the IOVA space (type1 allows it). */
		uint64_t last = r.addr + r.size - 1;
		unsigned i;

		if (!r.size || last < r.addr)
			return -EINVAL;
		/*
		 * Beyond the spec's exact match, an unmap may cover whole windows, as
		 * the kernel's type1 allows: QEMU with a vIOMMU unmaps a detached
		 * domain as power-of-two chunks of the whole IOVA width, over
		 * page-sized windows. All or nothing; a window it cuts is refused.
		 */
		for (i = 0; i < c->ndma; i++) {
			uint64_t a = c->dma[i].addr, e = a + c->dma[i].size - 1;

			if (a <= last && e >= r.addr && (a < r.addr || e > last))
				return -ENOENT;
		}
		for (i = 0; i < c->ndma;) {
			if (c->dma[i].addr >= r.addr && c->dma[i].addr <= last)
				remove_dma(c, i); /* moves the last window to i */
			else
				i++;
		}
	}
	r.argsz = sizeof(r);
	return vfu_reply(c, m, &r, sizeof(r), NULL, 0);
}

/* ---- device information ---- */

static int h_get_info(struct vfu_conn *c, struct vfu_msg *m)
{
	struct vfio_user_device_info r;

	if (m->len < sizeof(r))
		return -EINVAL;
	memcpy(&r, m->body, sizeof(r));
	if (r.argsz < sizeof(r))
		return -EINVAL;
	r = (struct vfio_user_device_info){ .argsz = sizeof(r),
					    .flags = VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI,
					    .num_regions = VFIO_PCI_NUM_REGIONS,
					    .num_irqs = VFIO_PCI_NUM_IRQS };
	return vfu_reply(c, m, &r, sizeof(r), NULL, 0);
}

static int h_region_info(struct vfu_conn *c, struct vfu_msg *m)
{
	/* info, then one sparse-mmap capability header, then its areas */
	uint8_t out[sizeof(struct vfio_user_region_info) +
		    sizeof(struct vfio_region_info_cap_sparse_mmap) +
		    UMDEV_PCI_MAX_BAR_PARTS * sizeof(struct vfio_region_sparse_mmap_area)];
	struct umdev_pci_shared sh[UMDEV_PCI_MAX_BAR_PARTS];
	struct vfio_user_region_info q, info;
	umdev_pci_dev *pci = c->s->pci;
	unsigned n = 0;
	size_t need = sizeof(info);
	int fd = -1, sfd = -1, ret;

	if (m->len < sizeof(q))
		return -EINVAL;
	memcpy(&q, m->body, sizeof(q));
	if (q.argsz < sizeof(q) || q.index >= VFIO_PCI_NUM_REGIONS)
		return -EINVAL;
	memset(out, 0, sizeof(out));
	memset(&info, 0, sizeof(info));
	info.index = q.index;
	if (q.index <= VFIO_PCI_BAR5_REGION_INDEX) {
		info.size = umdev_pci_bar_size(pci, q.index);
		if (info.size)
			info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		n = umdev_pci_bar_shared(pci, q.index, sh, UMDEV_PCI_MAX_BAR_PARTS, &fd);
	} else if (q.index == VFIO_PCI_CONFIG_REGION_INDEX) {
		info.size = umdev_pci_cfg_size(pci);
		info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	}
	if (n && fd >= 0) {
		struct vfio_region_info_cap_sparse_mmap cap = {
			.header = { .id = VFIO_REGION_INFO_CAP_SPARSE_MMAP, .version = 1 },
			.nr_areas = n,
		};

		info.flags |= VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS;
		info.cap_offset = sizeof(info);
		memcpy(out + need, &cap, sizeof(cap));
		need += sizeof(cap);
		for (unsigned i = 0; i < n; i++) {
			struct vfio_region_sparse_mmap_area a = { sh[i].offset, sh[i].size };

			memcpy(out + need, &a, sizeof(a));
			need += sizeof(a);
		}
	}
	info.argsz = (uint32_t)need;
	if (q.argsz < need) {
		/*
		 * Too small for the capabilities: say how much is needed. The
		 * kernel's VFIO zeroes cap_offset here, but QEMU's vfio-user
		 * client refuses CAPS with a cap_offset inside the info struct,
		 * so keep it where the capabilities will be (within argsz).
		 */
		return vfu_reply(c, m, &info, sizeof(info), NULL, 0);
	}
	memcpy(out, &info, sizeof(info));
	if (info.flags & VFIO_REGION_INFO_FLAG_MMAP) {
		sfd = dup(fd);
		if (sfd < 0)
			return -errno;
	}
	ret = vfu_reply(c, m, out, need, &sfd, sfd >= 0 ? 1 : 0);
	if (sfd >= 0)
		close(sfd);
	return ret;
}

static int h_region_io_fds(struct vfu_conn *c, struct vfu_msg *m)
{
	struct vfio_user_region_io_fds_request r;

	if (m->len < sizeof(r))
		return -EINVAL;
	memcpy(&r, m->body, sizeof(r));
	if (r.argsz < sizeof(r) || r.index >= VFIO_PCI_NUM_REGIONS || r.flags)
		return -EINVAL;
	/* No ioeventfds are offered: traps are rare, hot registers are mmapped. */
	r = (struct vfio_user_region_io_fds_request){ .argsz = sizeof(r), .index = r.index };
	return vfu_reply(c, m, &r, sizeof(r), NULL, 0);
}

static int h_irq_info(struct vfu_conn *c, struct vfu_msg *m)
{
	struct vfio_user_irq_info r;
	uint32_t flags, count;
	int ret;

	if (m->len < sizeof(r))
		return -EINVAL;
	memcpy(&r, m->body, sizeof(r));
	if (r.argsz < sizeof(r))
		return -EINVAL;
	ret = umdev_irq_info(umdev_pci_irq(c->s->pci), r.index, &flags, &count);
	if (ret < 0)
		return ret;
	r.flags = flags;
	r.count = count;
	r.argsz = sizeof(r);
	return vfu_reply(c, m, &r, sizeof(r), NULL, 0);
}

static int h_set_irqs(struct vfu_conn *c, struct vfu_msg *m)
{
	struct vfio_user_irq_set r;
	const uint8_t *bools = NULL;
	int ret;

	if (m->len < sizeof(r))
		return -EINVAL;
	memcpy(&r, m->body, sizeof(r));
	if (r.argsz < sizeof(r))
		return -EINVAL;
	if (r.flags & VFIO_IRQ_SET_DATA_BOOL) {
		if (r.count > m->len - sizeof(r))
			return -EINVAL;
		bools = m->body + sizeof(r);
	}
	ret = umdev_irq_set(umdev_pci_irq(c->s->pci), r.index, r.flags, r.start, r.count, bools,
			    m->fds, m->nfds);
	if (ret < 0)
		return ret;
	return vfu_reply(c, m, NULL, 0, NULL, 0);
}

/* ---- region access ---- */

static int region_access(struct vfu_conn *c, uint32_t region, uint64_t off, void *buf,
			 size_t len, bool write)
{
	umdev_pci_dev *pci = c->s->pci;

	if (region <= VFIO_PCI_BAR5_REGION_INDEX)
		return umdev_pci_bar_access(pci, region, off, buf, len, write);
	if (region == VFIO_PCI_CONFIG_REGION_INDEX)
		return umdev_pci_cfg_access(pci, off, buf, len, write);
	return -EINVAL;
}

static int h_region_read(struct vfu_conn *c, struct vfu_msg *m)
{
	struct vfio_user_region_access r;
	uint8_t *out;
	int ret;

	if (m->len != sizeof(r))
		return -EINVAL;
	memcpy(&r, m->body, sizeof(r));
	if (!r.count || r.count > UMDEV_VFU_MAX_DATA_XFER)
		return -EINVAL;
	out = malloc(sizeof(r) + r.count);
	if (!out)
		return -ENOMEM;
	ret = region_access(c, r.region, r.offset, out + sizeof(r), r.count, false);
	if (ret == 0) {
		memcpy(out, &r, sizeof(r));
		ret = vfu_reply(c, m, out, sizeof(r) + r.count, NULL, 0);
	}
	free(out);
	return ret;
}

static int h_region_write(struct vfu_conn *c, struct vfu_msg *m)
{
	struct vfio_user_region_access r;
	int ret;

	if (m->len < sizeof(r))
		return -EINVAL;
	memcpy(&r, m->body, sizeof(r));
	if (!r.count || r.count != m->len - sizeof(r))
		return -EINVAL;
	ret = region_access(c, r.region, r.offset, m->body + sizeof(r), r.count, true);
	if (ret < 0)
		return ret;
	return vfu_reply(c, m, &r, sizeof(r), NULL, 0);
}

static int h_write_multi(struct vfu_conn *c, struct vfu_msg *m)
{
	struct vfio_user_write_multi hdr;

	if (m->len < sizeof(hdr))
		return -EINVAL;
	memcpy(&hdr, m->body, sizeof(hdr));
	if (!hdr.wr_cnt || hdr.wr_cnt > VFIO_USER_MULTI_MAX ||
	    m->len != sizeof(hdr) + hdr.wr_cnt * sizeof(struct vfio_user_write_multi_entry))
		return -EINVAL;
	for (uint64_t i = 0; i < hdr.wr_cnt; i++) {
		struct vfio_user_write_multi_entry e;
		int ret;

		memcpy(&e, m->body + sizeof(hdr) + i * sizeof(e), sizeof(e));
		if (!e.count || e.count > VFIO_USER_MULTI_DATA)
			return -EINVAL;
		ret = region_access(c, e.region, e.offset, e.data, e.count, true);
		if (ret < 0)
			return ret;
	}
	return vfu_reply(c, m, &hdr, sizeof(hdr), NULL, 0);
}

/*
 * DEVICE_RESET is the vfio-user VFIO_DEVICE_RESET. The kernel's
 * pci_reset_function() saves the config state and restores it after the
 * function reset, so a client's command register (Memory Space Enable, Bus
 * Master) survives the ioctl; a client written for kernel VFIO carries on
 * with BAR accesses right after it. Do the same for the command register.
 * A reset from inside the device (FLR through the PCIe capability) is the
 * device's and leaves it at its power-on value.
 */
static int h_reset(struct vfu_conn *c, struct vfu_msg *m)
{
	umdev_pci_dev *pci = c->s->pci;
	uint16_t cmd;

	if (m->len)
		return -EINVAL;
	vfu_info(c, "%s: device reset by the client", c->s->name);
	cmd = umdev_pci_command(pci);
	umdev_pci_reset(pci);
	if (cmd && umdev_pci_cfg_access(pci, UMDEV_PCI_COMMAND, &cmd, sizeof(cmd), true) < 0)
		umdev_warn("%s: cannot restore the command register after a reset", c->s->name);
	return vfu_reply(c, m, NULL, 0, NULL, 0);
}

/*
 * Live migration over vfio-user is not implemented: umdevd cannot save or
 * restore an NVMe controller's state (queues, doorbells, outstanding
 * commands), nor log the guest pages it writes. A client that asks for
 * migration or DMA dirty logging is refused, and the refusal is logged
 * once per reason, so that a VM is never moved with its device state
 * silently lost. (QEMU 10.x's vfio-user client does not ask; a VM with
 * such a device must be kept from migrating by its manager: see
 * docs/migration.md.)
 */
#define VFIO_DEVICE_FEATURE_MIGRATION 1
#define VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE 2
#define VFIO_DEVICE_FEATURE_DMA_LOGGING_START 6
#define VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP 7
#define VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT 8

static const char *feature_name(uint32_t feature)
{
	switch (feature) {
	case VFIO_DEVICE_FEATURE_MIGRATION: return "MIGRATION";
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: return "MIG_DEVICE_STATE";
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START: return "DMA_LOGGING_START";
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP: return "DMA_LOGGING_STOP";
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: return "DMA_LOGGING_REPORT";
	default: return NULL;
	}
}

static int h_device_feature(struct vfu_conn *c, struct vfu_msg *m)
{
	struct vfio_user_device_feature f;
	const char *name;

	if (m->len < sizeof(f)) {
		vfu_err(c, "%s: DEVICE_FEATURE of %zu bytes", c->s->name, m->len);
		return -EINVAL;
	}
	memcpy(&f, m->body, sizeof(f));
	name = feature_name(f.flags & VFIO_DEVICE_FEATURE_MASK);
	if (name && !(f.flags & VFIO_DEVICE_FEATURE_PROBE))
		vfu_err(c, "%s: the client asked for device feature %s: refused, umdevd cannot "
			"migrate a vfio-user device (its state would be lost)", c->s->name, name);
	else if (name)
		vfu_info(c, "%s: the client probed device feature %s: not supported (no "
			 "vfio-user migration)", c->s->name, name);
	return -ENOTTY;
}

static int h_mig_data(struct vfu_conn *c, struct vfu_msg *m)
{
	vfu_err(c, "%s: %s refused: umdevd has no migration state to %s for a vfio-user "
		"device; the VM must not be migrated with it", c->s->name,
		umdev_vfu_command_name(m->hdr.cmd),
		m->hdr.cmd == VFIO_USER_MIG_DATA_READ ? "save" : "restore");
	return -EINVAL;
}

int vfu_dispatch(struct vfu_conn *c, struct vfu_msg *m)
{
	unsigned cmd = m->hdr.cmd;
	int ret;

	if ((m->hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY) {
		/* A reply to nothing we wait for (e.g. after a DMA timed out): drop it. */
		vfu_warn(c, "%s: ignoring an unexpected reply (id %u)", c->s->name, m->hdr.msg_id);
		return 0;
	}
	if (!c->negotiated && cmd != VFIO_USER_VERSION) {
		vfu_err(c, "%s: %s before VERSION", c->s->name, umdev_vfu_command_name(cmd));
		return VFU_CLOSE;
	}
	switch (cmd) {
	case VFIO_USER_VERSION: ret = h_version(c, m); break;
	case VFIO_USER_DMA_MAP: ret = h_dma_map(c, m); break;
	case VFIO_USER_DMA_UNMAP: ret = h_dma_unmap(c, m); break;
	case VFIO_USER_DEVICE_GET_INFO: ret = h_get_info(c, m); break;
	case VFIO_USER_DEVICE_GET_REGION_INFO: ret = h_region_info(c, m); break;
	case VFIO_USER_DEVICE_GET_REGION_IO_FDS: ret = h_region_io_fds(c, m); break;
	case VFIO_USER_DEVICE_GET_IRQ_INFO: ret = h_irq_info(c, m); break;
	case VFIO_USER_DEVICE_SET_IRQS: ret = h_set_irqs(c, m); break;
	case VFIO_USER_REGION_READ: ret = h_region_read(c, m); break;
	case VFIO_USER_REGION_WRITE: ret = h_region_write(c, m); break;
	case VFIO_USER_REGION_WRITE_MULTI: ret = h_write_multi(c, m); break;
	case VFIO_USER_DEVICE_RESET: ret = h_reset(c, m); break;
	case VFIO_USER_DEVICE_FEATURE: ret = h_device_feature(c, m); break;
	case VFIO_USER_MIG_DATA_READ:
	case VFIO_USER_MIG_DATA_WRITE: ret = h_mig_data(c, m); break;
	default:
		vfu_warn(c, "%s: unsupported command %u (%s)", c->s->name, cmd,
			   umdev_vfu_command_name(cmd));
		ret = -ENOSYS;
		break;
	}
	if (ret == VFU_CLOSE)
		return ret;
	if (ret < 0) {
		if (ret != -ENOTTY)
			vfu_warn(c, "%s: %s (id %u) failed: %s", c->s->name,
				   umdev_vfu_command_name(cmd), m->hdr.msg_id, strerror(-ret));
		/* A failed send means the client is gone; on_conn sees c->dead. */
		if (!c->dead)
			vfu_reply_err(c, m, -ret);
		return 0;
	}
	return 0;
}
