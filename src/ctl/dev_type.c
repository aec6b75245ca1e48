/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "dev_type.h"

extern const struct umdev_dev_type umdev_type_virtio_blk;
extern const struct umdev_dev_type umdev_type_virtio_scsi;
extern const struct umdev_dev_type umdev_type_pci_sample;
extern const struct umdev_dev_type umdev_type_nvme;
extern const struct umdev_dev_type umdev_type_accel;
extern const struct umdev_dev_type umdev_type_accel_vdev;

const struct umdev_dev_type *const umdev_dev_types[] = {
	&umdev_type_virtio_blk,
	&umdev_type_virtio_scsi,
	&umdev_type_pci_sample,
	&umdev_type_nvme,
	&umdev_type_accel,
	&umdev_type_accel_vdev,
	NULL,
};

const struct umdev_dev_type *umdev_dev_type_find(const char *name)
{
	for (unsigned i = 0; umdev_dev_types[i]; i++)
		if (!strcmp(umdev_dev_types[i]->name, name))
			return umdev_dev_types[i];
	return NULL;
}
