/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Statistics of any virtio device served by the queue runner, as JSON, for
 * the types' stats op (see dev_type.h). Shared so that every virtio type
 * reports the same fields.
 */
#include <json-c/json.h>

#include "dev_type.h"
#include "umdev/virtio.h"

/* Latency percentiles in microseconds (with ns precision), as an object. */
static struct json_object *lat_json(const uint64_t lat[UMDEV_VDEV_LAT_BUCKETS])
{
	static const unsigned pcts[] = { 50, 90, 99 };
	static const char *const names[] = { "p50", "p90", "p99" };
	struct json_object *o = json_object_new_object();

	for (unsigned i = 0; o && i < 3; i++)
		json_object_object_add(o, names[i],
				       json_object_new_double(
					       (double)umdev_vdev_lat_percentile(lat, pcts[i]) /
					       1000.0));
	return o;
}

static void add_u64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static struct json_object *queue_json(unsigned idx, const struct umdev_vdev_queue_stats *st)
{
	struct json_object *o = json_object_new_object();
	uint64_t popped = st->requests + st->inflight;

	if (!o)
		return NULL;
	json_object_object_add(o, "index", json_object_new_int((int)idx));
	json_object_object_add(o, "running", json_object_new_boolean(st->running));
	add_u64(o, "requests", st->requests);
	add_u64(o, "errors", st->errors);
	add_u64(o, "bytes_from_guest", st->bytes_out);
	add_u64(o, "bytes_to_guest", st->bytes_in);
	add_u64(o, "inflight", st->inflight);
	add_u64(o, "max_inflight", st->max_inflight);
	json_object_object_add(o, "avg_depth",
			       json_object_new_double(popped ? (double)st->depth_sum /
								       (double)popped :
							       0.0));
	add_u64(o, "broken", st->broken);
	json_object_object_add(o, "latency_us", lat_json(st->lat));
	return o;
}

struct json_object *umdev_ctl_virtio_stats(struct umdev_virtio_dev *vdev)
{
	struct json_object *o = json_object_new_object(), *qs = json_object_new_array();
	struct umdev_vdev_queue_stats sum = { 0 };

	if (!o || !qs) {
		json_object_put(o);
		json_object_put(qs);
		return NULL;
	}
	for (unsigned i = 0; i < vdev->num_queues; i++) {
		struct umdev_vdev_queue_stats st;

		/* A queue the driver never started has nothing to say yet. */
		if (umdev_vdev_queue_stats(vdev, i, &st) < 0)
			continue;
		json_object_array_add(qs, queue_json(i, &st));
		sum.running |= st.running;
		sum.requests += st.requests;
		sum.errors += st.errors;
		sum.bytes_out += st.bytes_out;
		sum.bytes_in += st.bytes_in;
		sum.inflight += st.inflight;
		sum.max_inflight += st.max_inflight;
		sum.depth_sum += st.depth_sum;
		sum.broken += st.broken;
		for (unsigned b = 0; b < UMDEV_VDEV_LAT_BUCKETS; b++)
			sum.lat[b] += st.lat[b];
	}
	add_u64(o, "num_queues", vdev->num_queues);
	add_u64(o, "requests", sum.requests);
	add_u64(o, "errors", sum.errors);
	add_u64(o, "bytes_from_guest", sum.bytes_out);
	add_u64(o, "bytes_to_guest", sum.bytes_in);
	add_u64(o, "inflight", sum.inflight);
	json_object_object_add(o, "latency_us", lat_json(sum.lat));
	json_object_object_add(o, "queues", qs);
	return o;
}
