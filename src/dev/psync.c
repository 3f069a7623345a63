/* SPDX-License-Identifier: MIT */
/*
 * psync: pread(2)/pwrite(2) on a file or block device, one request at a time, at
 * submit. direct=1 opens with O_DIRECT (no page cache; alignment from statx), dsync=1
 * with O_DSYNC (every write durable on completion). Flush is fdatasync(2); FUA is
 * pwritev2(RWF_DSYNC) (Linux 4.7+). The seed's O_DIRECT and Raw Block rows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../util/util.h"
#include "engine.h"

struct psync_dev {
	struct sn_dev dev;
	int fd;
};

static const struct sn_option psync_options[] = {
	{ "direct", "0|1", "O_DIRECT: bypass the page cache (aligned I/O only)" },
	{ "dsync", "0|1", "O_DSYNC: every write is durable when it completes" },
	SN_FILE_OPTIONS,
	{ NULL, NULL, NULL },
};

static int psync_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	struct psync_dev *p = (struct psync_dev *)dev;
	struct sn_file_opts o = { 0 };
	int err;

	if ((err = sn__uri_bool(uri, "direct", &o.direct)) ||
	    (err = sn__uri_bool(uri, "dsync", &o.dsync)))
		return err;
	p->fd = sn__file_open(dev, uri, &o);
	if (p->fd < 0)
		return p->fd;
	dev->info.caps |= o.dsync ? SN_CAP_FUA : 0;
	dev->info.flush_does = "fdatasync(2): data and the metadata needed to read it reach "
	                       "stable storage";
	snprintf(dev->features, sizeof(dev->features), "%s%s", o.direct ? "O_DIRECT" : "",
	         o.dsync ? (o.direct ? " O_DSYNC" : "O_DSYNC") : "");
	return 0;
}

static void psync_close(struct sn_dev *dev)
{
	close(((struct psync_dev *)dev)->fd);
}

static int psync_queue_init(struct sn_queue *q)
{
	return sn__file_queue_init(q, ((struct psync_dev *)q->dev)->fd, 1);
}

static int64_t psync_one(struct psync_dev *p, int fd, const struct sn_io *io)
{
	switch (io->op) {
	case SN_OP_READ:
		return sn__file_rw(fd, 0, io->buf, io->len, io->offset);
	case SN_OP_WRITE:
		if (io->flags & SN_IO_FUA) {
			struct iovec iov = { io->buf, io->len };
			ssize_t r;

			/* RWF_DSYNC writes and syncs in one call; a short write is retried
			 * plainly and then synced. */
			do
				r = pwritev2(fd, &iov, 1, (off_t)io->offset, RWF_DSYNC);
			while (r < 0 && errno == EINTR);
			if (r < 0)
				return -errno;
			if ((uint64_t)r < io->len) {
				int64_t rest = sn__file_rw(fd, 1, (char *)io->buf + r,
				                           io->len - (uint64_t)r,
				                           io->offset + (uint64_t)r);
				if (rest < 0)
					return rest;
				if (fdatasync(fd) < 0)
					return -errno;
			}
			return io->len;
		}
		return sn__file_rw(fd, 1, io->buf, io->len, io->offset);
	case SN_OP_FLUSH:
		return fdatasync(fd) < 0 ? -errno : 0;
	case SN_OP_DISCARD: {
		int err = sn__file_discard(fd, p->dev.info.caps & SN_CAP_BLOCKDEV, io->offset,
		                           io->len);
		return err ? err : (int64_t)io->len;
	}
	}
	return -EINVAL;
}

static int psync_submit(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	struct psync_dev *p = (struct psync_dev *)q->dev;
	int fd = ((struct sn_file_queue *)q)->fd;

	for (unsigned i = 0; i < n; i++)
		sn__queue_complete(q, ios[i].user_data, psync_one(p, fd, &ios[i]));
	return (int)n;
}

const struct sn_engine sn_engine_psync = {
	.version = SN_ENGINE_V1,
	.name = "psync",
	.summary = "pread/pwrite on a file or block device; direct=1 for O_DIRECT",
	.options = psync_options,
	.dev_size = sizeof(struct psync_dev),
	.queue_size = sizeof(struct sn_file_queue),
	.open = psync_open,
	.close = psync_close,
	.queue_init = psync_queue_init,
	.queue_fini = sn__file_queue_fini,
	.submit = psync_submit,
};
