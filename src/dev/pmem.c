/* SPDX-License-Identifier: MIT */
/*
 * pmem: a file mapped through PMDK's libpmem2, which picks the store granularity the
 * medium offers (byte on eADR, cache line on MAP_SYNC DAX, page elsewhere) and the
 * matching persist and memcpy functions. On page granularity libpmem2's persist calls
 * abort() when msync fails (libpmem2 persist.c, "crash the application. Sorry."), so
 * there this engine calls msync (persist, FUA) and fdatasync (flush) itself and returns
 * the error; it uses libpmem2's functions only where they are cache flushes and fences,
 * which cannot fail.
 * Built only when pkg-config finds libpmem2 (Debian: libpmem2-dev).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpmem2.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../util/util.h"
#include "engine.h"

struct pmem_dev {
	struct sn_dev dev;
	int fd;
	struct pmem2_source *src;
	struct pmem2_map *map;
	char *base;
	size_t page;
	enum pmem2_granularity gran;
	int lost; /* page granularity: the first failed writeback (sn__msync_range) */
	pmem2_persist_fn persist;
	pmem2_drain_fn drain;
	pmem2_memcpy_fn copy;
};

static const struct sn_option pmem_options[] = {
	SN_FILE_OPTIONS,
	{ NULL, NULL, NULL },
};

/* libpmem2's codes are -errno or its own (-100000 and below; Debian's 1.12.1 does not
 * export pmem2_err_to_errno): map those as it does, and keep its text in sn_errmsg(). */
static int pmem2_fail(int ret, const char *what, const char *path)
{
	int err = ret;

	if (ret == PMEM2_E_NOSUPP || ret == PMEM2_E_GRANULARITY_NOT_SUPPORTED)
		err = -ENOTSUP;
	else if (ret >= 0 || ret < -4095)
		err = -EINVAL;
	return sn__err(err, "pmem: %s for '%s' failed: %s", what, path, pmem2_errormsg());
}

static const char *gran_name(enum pmem2_granularity g)
{
	return g == PMEM2_GRANULARITY_BYTE         ? "byte"
	       : g == PMEM2_GRANULARITY_CACHE_LINE ? "cache_line"
	                                           : "page";
}

static int pmem_setup(struct pmem_dev *p, const struct sn_uri *uri)
{
	struct sn_dev *dev = &p->dev;
	struct pmem2_config *cfg = NULL;
	const char *forced = getenv("PMEM2_FORCE_GRANULARITY");
	size_t align = 0, len;
	struct statfs sfs;
	int ret;

	if ((ret = pmem2_source_from_fd(&p->src, p->fd)))
		return pmem2_fail(ret, "pmem2_source_from_fd", uri->path);
	if (pmem2_source_alignment(p->src, &align) != 0 || !align)
		align = p->page;
	/* libpmem2 maps whole alignment units; size= off that unit maps the rest too. */
	len = (size_t)((dev->info.capacity_bytes + align - 1) / align * align);
	if ((ret = pmem2_config_new(&cfg)))
		return pmem2_fail(ret, "pmem2_config_new", uri->path);
	/* PAGE is the weakest: libpmem2 maps anything that offers at least that and
	 * reports the granularity it got. */
	ret = pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	if (!ret)
		ret = pmem2_config_set_length(cfg, len);
	if (!ret && dev->readonly)
		ret = pmem2_config_set_protection(cfg, PMEM2_PROT_READ);
	if (!ret)
		ret = pmem2_map_new(&p->map, cfg, p->src);
	pmem2_config_delete(&cfg);
	if (ret)
		return pmem2_fail(ret, "pmem2_map_new", uri->path);
	p->base = pmem2_map_get_address(p->map);
	p->gran = pmem2_map_get_store_granularity(p->map);
	p->persist = pmem2_get_persist_fn(p->map);
	p->drain = pmem2_get_drain_fn(p->map);
	p->copy = pmem2_get_memcpy_fn(p->map);

	snprintf(dev->features, sizeof(dev->features), "libpmem2 granularity=%s%s%s",
	         gran_name(p->gran), forced ? " PMEM2_FORCE_GRANULARITY=" : "",
	         forced ? forced : "");
	if (fstatfs(p->fd, &sfs) == 0 && (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC))
		snprintf(dev->note, sizeof(dev->note),
		         "'%.100s' is on tmpfs: RAM, not persistent memory%s", uri->path,
		         forced ? "; granularity forced by PMEM2_FORCE_GRANULARITY (tests only)"
		                : "");
	else if (forced)
		snprintf(dev->note, sizeof(dev->note),
		         "granularity forced by PMEM2_FORCE_GRANULARITY=%.40s: a test setting; "
		         "on a disk file it skips msync and loses data at power loss",
		         forced);
	return 0;
}

static void pmem_unmap(struct pmem_dev *p)
{
	if (p->map)
		pmem2_map_delete(&p->map);
	if (p->src)
		pmem2_source_delete(&p->src);
}

static int pmem_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	struct pmem_dev *p = (struct pmem_dev *)dev;
	struct sn_file_opts o = { 0 };
	int existed, err;
	struct stat st;

	existed = stat(uri->path, &st) == 0;
	p->page = (size_t)sysconf(_SC_PAGESIZE);
	p->fd = sn__file_open(dev, uri, &o);
	if (p->fd < 0)
		return p->fd;
	if ((err = pmem_setup(p, uri))) {
		pmem_unmap(p);
		close(p->fd);
		if (!existed && *uri->path)
			unlink(uri->path);
		return err;
	}
	dev->info.caps |= SN_CAP_BYTE_ADDR;
	switch (p->gran) {
	case PMEM2_GRANULARITY_BYTE:
		dev->info.persist_gran = SN_GRAN_BYTE;
		break;
	case PMEM2_GRANULARITY_CACHE_LINE:
		dev->info.persist_gran = SN_GRAN_CACHE_LINE;
		break;
	case PMEM2_GRANULARITY_PAGE:
		dev->info.persist_gran = SN_GRAN_PAGE;
		break;
	}
	if (p->gran == PMEM2_GRANULARITY_PAGE) {
		dev->info.flush_does = "fdatasync(2) of the file, called by snstore (libpmem2's "
		                       "page persist would abort() on an msync error)";
	} else {
		/* Writes go through libpmem2's memcpy, which flushes and drains: FUA is free. */
		dev->info.caps |= SN_CAP_FUA;
		dev->info.flush_does = "libpmem2's drain (a store fence): each write was already "
		                       "copied, flushed and drained by libpmem2's memcpy";
	}
	return 0;
}

static void pmem_close(struct sn_dev *dev)
{
	struct pmem_dev *p = (struct pmem_dev *)dev;

	pmem_unmap(p);
	close(p->fd);
}

static int pmem_sync(struct pmem_dev *p, uint64_t off, uint64_t len)
{
	if (p->gran != PMEM2_GRANULARITY_PAGE) {
		p->persist(p->base + off, len);
		return 0;
	}
	return sn__msync_range(p->base, p->page, off, len, &p->lost);
}

static int pmem_queue_init(struct sn_queue *q)
{
	struct pmem_dev *p = (struct pmem_dev *)q->dev;

	/* Only page granularity goes through the page cache, with writeback errors. */
	return sn__file_queue_init(q, p->fd, p->gran == PMEM2_GRANULARITY_PAGE);
}

static int64_t pmem_one(struct pmem_dev *p, int fd, const struct sn_io *io)
{
	int err;

	switch (io->op) {
	case SN_OP_READ:
		memcpy(io->buf, p->base + io->offset, io->len);
		return io->len;
	case SN_OP_WRITE:
		if (p->gran != PMEM2_GRANULARITY_PAGE) {
			p->copy(p->base + io->offset, io->buf, io->len, 0);
			return io->len;
		}
		/* Page granularity: libpmem2's memcpy would msync and abort on failure. */
		memcpy(p->base + io->offset, io->buf, io->len);
		if (io->flags & SN_IO_FUA && (err = pmem_sync(p, io->offset, io->len)))
			return err;
		return io->len;
	case SN_OP_FLUSH:
		if (p->gran != PMEM2_GRANULARITY_PAGE) {
			p->drain();
			return 0;
		}
		/* Not msync, as on mmap:: that reports a writeback error to the mapping's
		 * file description only, so one queue would take it for all. */
		return fdatasync(fd) < 0 ? -errno : 0;
	case SN_OP_DISCARD:
		err = sn__file_discard(p->fd, p->dev.info.caps & SN_CAP_BLOCKDEV, io->offset,
		                       io->len);
		return err ? err : (int64_t)io->len;
	}
	return -EINVAL;
}

static int pmem_submit(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	struct pmem_dev *p = (struct pmem_dev *)q->dev;
	int fd = ((struct sn_file_queue *)q)->fd;

	for (unsigned i = 0; i < n; i++)
		sn__queue_complete(q, ios[i].user_data, pmem_one(p, fd, &ios[i]));
	return (int)n;
}

static int pmem_base(struct sn_dev *dev, void **basep)
{
	*basep = ((struct pmem_dev *)dev)->base;
	return 0;
}

static int pmem_persist(struct sn_dev *dev, const void *addr, size_t len)
{
	struct pmem_dev *p = (struct pmem_dev *)dev;

	return pmem_sync(p, (uint64_t)((const char *)addr - p->base), len);
}

const struct sn_engine sn_engine_pmem = {
	.version = SN_ENGINE_V1,
	.name = "pmem",
	.summary = "a file mapped by PMDK libpmem2: persist/memcpy by store granularity; "
	           "byte-addressable",
	.options = pmem_options,
	.dev_size = sizeof(struct pmem_dev),
	.queue_size = sizeof(struct sn_file_queue),
	.open = pmem_open,
	.close = pmem_close,
	.queue_init = pmem_queue_init,
	.queue_fini = sn__file_queue_fini,
	.submit = pmem_submit,
	.map = pmem_base,
	.persist = pmem_persist,
};
