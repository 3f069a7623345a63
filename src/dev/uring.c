/* SPDX-License-Identifier: MIT */
/* uring: being written. */
#include <errno.h>

#include "engine.h"
#include "../util/util.h"

static int uring_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	(void)dev, (void)uri;
	return sn__err(SN_ENOTAVAIL, "engine uring is being written");
}

static const struct sn_option uring_options[] = { { NULL, NULL, NULL } };

const struct sn_engine sn_engine_uring = {
	.version = SN_ENGINE_V1,
	.name = "uring",
	.summary = "being written",
	.options = uring_options,
	.dev_size = sizeof(struct sn_dev),
	.queue_size = sizeof(struct sn_queue),
	.open = uring_open,
};
