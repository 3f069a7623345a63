/* SPDX-License-Identifier: MIT */
/*
 * null: completes every request at once and moves no data, like fio's null engine.
 * What it measures is the cost of the API itself: validation, queueing and reaping.
 * It is also the template for a new engine: copy this file.
 */
#include <errno.h>

#include "../util/util.h"
#include "engine.h"

static const struct sn_option null_options[] = {
	{ "size", "SIZE", "capacity to pretend to have (default 1g)" },
	{ NULL, NULL, NULL },
};

static int null_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	uint64_t size = 1ull << 30;
	int err = sn__uri_size(uri, "size", &size);

	if (err)
		return err;
	if (!size)
		return sn__err(-EINVAL, "size=0: a device needs at least one byte");
	dev->info.capacity_bytes = size;
	dev->info.max_queue_depth = 65536;
	dev->info.caps = SN_CAP_FLUSH | SN_CAP_FUA | SN_CAP_DISCARD;
	dev->info.flush_does = "nothing: no data is kept";
	return 0;
}

static int null_submit(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sn__queue_complete(q, ios[i].user_data, ios[i].op == SN_OP_FLUSH ? 0 : ios[i].len);
	return (int)n;
}

const struct sn_engine sn_engine_null = {
	.version = SN_ENGINE_V1,
	.name = "null",
	.summary = "completes every request at once, moves no data: the API's own cost",
	.options = null_options,
	.dev_size = sizeof(struct sn_dev),
	.queue_size = sizeof(struct sn_queue),
	.open = null_open,
	.submit = null_submit,
};
