/* SPDX-License-Identifier: MIT */
/*
 * mmap: the file or block device mapped MAP_SHARED; reads and writes are memcpy, flush
 * is msync(MS_SYNC) of the whole mapping, persist(range) msync of the pages it covers.
 * Byte-addressable through sn_dev_map(). An I/O error on the medium arrives as SIGBUS,
 * not as a result code: this is mmap's nature, documented in docs/engines.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../util/util.h"
#include "engine.h"

struct mmap_dev {
	struct sn_dev dev;
	int fd;
	char *base;
	size_t page;
	int lost; /* the first failed writeback (sn__msync_range) */
};

static const struct sn_option mmap_options[] = {
	SN_FILE_OPTIONS,
	{ "populate", "0|1", "MAP_POPULATE: fault every page in at open" },
	{ NULL, NULL, NULL },
};

static int mmap_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	struct mmap_dev *m = (struct mmap_dev *)dev;
	struct sn_file_opts o = { 0 };
	int populate = 0, err, prot;

	if ((err = sn__uri_bool(uri, "populate", &populate)))
		return err;
	m->fd = sn__file_open(dev, uri, &o);
	if (m->fd < 0)
		return m->fd;
	prot = PROT_READ | (dev->readonly ? 0 : PROT_WRITE);
	m->base = mmap(NULL, dev->info.capacity_bytes, prot,
	               MAP_SHARED | (populate ? MAP_POPULATE : 0), m->fd, 0);
	if (m->base == MAP_FAILED) {
		err = sn__err(-errno, "cannot map '%s' (%llu bytes): %s", uri->path,
		              (unsigned long long)dev->info.capacity_bytes, sn_strerror(-errno));
		close(m->fd);
		return err;
	}
	m->page = (size_t)sysconf(_SC_PAGESIZE);
	dev->info.caps |= SN_CAP_BYTE_ADDR;
	dev->info.persist_gran = SN_GRAN_PAGE;
	dev->info.flush_does = "fdatasync(2) of the file: dirty pages of the mapping reach stable "
	                       "storage";
	snprintf(dev->features, sizeof(dev->features), "MAP_SHARED%s",
	         populate ? " MAP_POPULATE" : "");
	return 0;
}

static void mmap_close(struct sn_dev *dev)
{
	struct mmap_dev *m = (struct mmap_dev *)dev;

	munmap(m->base, dev->info.capacity_bytes);
	close(m->fd);
}

static int mmap_sync(struct mmap_dev *m, uint64_t off, uint64_t len)
{
	return sn__msync_range(m->base, m->page, off, len, &m->lost);
}

static int mmap_queue_init(struct sn_queue *q)
{
	return sn__file_queue_init(q, ((struct mmap_dev *)q->dev)->fd, 1);
}

static int64_t mmap_one(struct mmap_dev *m, int fd, const struct sn_io *io)
{
	int err;

	switch (io->op) {
	case SN_OP_READ:
		memcpy(io->buf, m->base + io->offset, io->len);
		return io->len;
	case SN_OP_WRITE:
		memcpy(m->base + io->offset, io->buf, io->len);
		if (io->flags & SN_IO_FUA && (err = mmap_sync(m, io->offset, io->len)))
			return err;
		return io->len;
	case SN_OP_FLUSH:
		/* Not msync: that reports a writeback error to the mapping's file
		 * description only, so one queue would take it for all. */
		return fdatasync(fd) < 0 ? -errno : 0;
	case SN_OP_DISCARD:
		err = sn__file_discard(m->fd, m->dev.info.caps & SN_CAP_BLOCKDEV, io->offset,
		                       io->len);
		return err ? err : (int64_t)io->len;
	}
	return -EINVAL;
}

static int mmap_submit(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	struct mmap_dev *m = (struct mmap_dev *)q->dev;
	int fd = ((struct sn_file_queue *)q)->fd;

	for (unsigned i = 0; i < n; i++)
		sn__queue_complete(q, ios[i].user_data, mmap_one(m, fd, &ios[i]));
	return (int)n;
}

static int mmap_map(struct sn_dev *dev, void **basep)
{
	*basep = ((struct mmap_dev *)dev)->base;
	return 0;
}

static int mmap_persist(struct sn_dev *dev, const void *addr, size_t len)
{
	struct mmap_dev *m = (struct mmap_dev *)dev;

	return mmap_sync(m, (uint64_t)((const char *)addr - m->base), len);
}

const struct sn_engine sn_engine_mmap = {
	.version = SN_ENGINE_V1,
	.name = "mmap",
	.summary = "shared mapping of a file or block device; fdatasync to flush; byte-addressable",
	.options = mmap_options,
	.dev_size = sizeof(struct mmap_dev),
	.queue_size = sizeof(struct sn_file_queue),
	.open = mmap_open,
	.close = mmap_close,
	.queue_init = mmap_queue_init,
	.queue_fini = sn__file_queue_fini,
	.submit = mmap_submit,
	.map = mmap_map,
	.persist = mmap_persist,
};
