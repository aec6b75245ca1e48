/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-pci modern layout (virtio 1.x, "PCI-specific initialization"): wire format only. */
#ifndef UMDEV_PROTO_VIRTIO_PCI_H
#define UMDEV_PROTO_VIRTIO_PCI_H

/* Vendor capability cfg_type values. */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

/* struct virtio_pci_cap byte offsets (from the capability's first byte). */
#define VPCI_CAP_LEN 2
#define VPCI_CAP_CFG_TYPE 3
#define VPCI_CAP_BAR 4
#define VPCI_CAP_ID 5
#define VPCI_CAP_OFFSET 8
#define VPCI_CAP_LENGTH 12
#define VPCI_CAP_NOTIFY_MULT 16 /* virtio_pci_notify_cap */
#define VPCI_PCICFG_DATA 16 /* virtio_pci_cfg_cap */

/* struct virtio_pci_common_cfg field offsets. */
#define VPCI_COMMON_DFSELECT 0x00
#define VPCI_COMMON_DF 0x04
#define VPCI_COMMON_GFSELECT 0x08
#define VPCI_COMMON_GF 0x0c
#define VPCI_COMMON_MSIX 0x10
#define VPCI_COMMON_NUMQ 0x12
#define VPCI_COMMON_STATUS 0x14
#define VPCI_COMMON_CFGGEN 0x15
#define VPCI_COMMON_Q_SELECT 0x16
#define VPCI_COMMON_Q_SIZE 0x18
#define VPCI_COMMON_Q_MSIX 0x1a
#define VPCI_COMMON_Q_ENABLE 0x1c
#define VPCI_COMMON_Q_NOFF 0x1e
#define VPCI_COMMON_Q_DESC 0x20
#define VPCI_COMMON_Q_AVAIL 0x28
#define VPCI_COMMON_Q_USED 0x30
#define VPCI_COMMON_Q_NDATA 0x38
#define VPCI_COMMON_Q_RESET 0x3a
#define VPCI_COMMON_SIZE 0x3c

#define VIRTIO_MSI_NO_VECTOR 0xffff

/* ISR status bits. */
#define VIRTIO_PCI_ISR_QUEUE 0x1
#define VIRTIO_PCI_ISR_CONFIG 0x2

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#endif
