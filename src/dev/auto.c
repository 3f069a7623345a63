/* SPDX-License-Identifier: MIT */
/* auto: being written. */
#include <errno.h>

#include "engine.h"
#include "../util/util.h"

static int auto_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	(void)dev, (void)uri;
	return sn__err(SN_ENOTAVAIL, "engine auto is being written");
}

static const struct sn_option auto_options[] = { { NULL, NULL, NULL } };

const struct sn_engine sn_engine_auto = {
	.version = SN_ENGINE_V1,
	.name = "auto",
	.summary = "being written",
	.options = auto_options,
	.dev_size = sizeof(struct sn_dev),
	.queue_size = sizeof(struct sn_queue),
	.open = auto_open,
};
