/* SPDX-License-Identifier: MIT */
/*
 * dax: a file on a DAX filesystem mapped MAP_SHARED_VALIDATE|MAP_SYNC, so stores reach
 * persistent memory without the page cache and the kernel keeps block metadata durable
 * at fault time (mmap(2)); persist is a cache-line flush of the range (CLWB, else
 * CLFLUSHOPT, else CLFLUSH, chosen by CPUID at open) and an SFENCE. A filesystem that
 * refuses MAP_SYNC (EOPNOTSUPP; EINVAL before Linux 4.15) is not DAX: open fails, unless
 * fallback=msync, which persists with msync(MS_SYNC) through the page cache instead
 * (and flushes with fdatasync, as mmap: does).
 * tmpfs refuses MAP_SYNC too, but it is RAM: the engine maps it plainly and says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <emmintrin.h>
#endif

#include "../util/util.h"
#include "engine.h"

#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif

/* How a range is made durable; the order is CPUID preference, best first. */
enum dax_how { HOW_CLWB, HOW_CLFLUSHOPT, HOW_CLFLUSH, HOW_MSYNC };

static const char *const how_names[] = { "clwb", "clflushopt", "clflush", "msync" };

struct dax_dev {
	struct sn_dev dev;
	int fd;
	char *base;
	size_t page;
	enum dax_how how;
	int nt;   /* writes of whole cache lines use non-temporal stores */
	int lost; /* msync fallback: the first failed writeback (sn__msync_range) */
};

static const struct sn_option dax_options[] = {
	SN_FILE_OPTIONS,
	{ "fallback", "none|msync",
	  "msync: on a file that is not on a DAX mount, persist with msync (page cache)" },
	{ "flush", "auto|clwb|clflushopt|clflush",
	  "cache-line flush instruction (default auto: the best CPUID reports)" },
	{ "nt", "0|1", "non-temporal stores for writes of 256 bytes or more (default 1)" },
	{ "populate", "0|1", "MAP_POPULATE: fault every page in at open" },
	{ NULL, NULL, NULL },
};

#if defined(__x86_64__)
/* Bit k set: how_names[k] is an instruction this CPU has. CLFLUSH is CPUID.1:EDX[19],
 * CLFLUSHOPT CPUID.(7,0):EBX[23], CLWB CPUID.(7,0):EBX[24]. */
static unsigned cpu_flushes(void)
{
	unsigned a, b, c, d, have = 0;

	if (__get_cpuid(1, &a, &b, &c, &d) && (d & (1u << 19)))
		have |= 1u << HOW_CLFLUSH;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		if (b & (1u << 23))
			have |= 1u << HOW_CLFLUSHOPT;
		if (b & (1u << 24))
			have |= 1u << HOW_CLWB;
	}
	return have;
}

/* CLWB and CLFLUSHOPT are weakly ordered: the caller's SFENCE (fence()) is what waits
 * for them. CLFLUSH is ordered with other stores, but the fence costs little next to it. */
static void flush_lines(enum dax_how how, const void *addr, size_t len)
{
	uintptr_t p = (uintptr_t)addr & ~(uintptr_t)(SN_CACHELINE - 1);
	uintptr_t end = (uintptr_t)addr + len;

	switch (how) {
	case HOW_CLWB:
		for (; p < end; p += SN_CACHELINE)
			__asm__ volatile("clwb %0" : "+m"(*(volatile char *)p));
		break;
	case HOW_CLFLUSHOPT:
		for (; p < end; p += SN_CACHELINE)
			__asm__ volatile("clflushopt %0" : "+m"(*(volatile char *)p));
		break;
	case HOW_CLFLUSH:
		for (; p < end; p += SN_CACHELINE)
			__asm__ volatile("clflush %0" : "+m"(*(volatile char *)p));
		break;
	case HOW_MSYNC:
		break;
	}
}

static void fence(void)
{
	__asm__ volatile("sfence" ::: "memory");
}

/*
 * Copy len bytes to persistent memory, flushed but not yet fenced. Whole cache lines
 * go with non-temporal stores (MOVNTDQ, SSE2: every x86-64 has it), which bypass the
 * cache, so there is nothing to flush and no line to read first; the ragged head and
 * tail are copied and flushed. Short copies are cheaper through the cache (PMDK's
 * movnt threshold is 256 bytes too).
 */
static void copy_flush(enum dax_how how, int nt, char *dst, const char *src, size_t len)
{
	size_t head, body;

	if (!nt || len < 256) {
		memcpy(dst, src, len);
		flush_lines(how, dst, len);
		return;
	}
	head = (size_t)(-(uintptr_t)dst & (SN_CACHELINE - 1));
	if (head) {
		memcpy(dst, src, head);
		flush_lines(how, dst, head);
		dst += head;
		src += head;
		len -= head;
	}
	body = len & ~(size_t)(SN_CACHELINE - 1);
	for (size_t i = 0; i < body; i += SN_CACHELINE) {
		const __m128i *s = (const __m128i *)(const void *)(src + i);
		__m128i *d = (__m128i *)(void *)(dst + i);
		__m128i a = _mm_loadu_si128(s), b = _mm_loadu_si128(s + 1);
		__m128i c = _mm_loadu_si128(s + 2), e = _mm_loadu_si128(s + 3);

		_mm_stream_si128(d, a);
		_mm_stream_si128(d + 1, b);
		_mm_stream_si128(d + 2, c);
		_mm_stream_si128(d + 3, e);
	}
	if (len > body) {
		memcpy(dst + body, src + body, len - body);
		flush_lines(how, dst + body, len - body);
	}
}
#else
/* No cache-line flush is written for this architecture: only fallback=msync opens. */
static unsigned cpu_flushes(void)
{
	return 0;
}

static void flush_lines(enum dax_how how, const void *addr, size_t len)
{
	(void)how;
	(void)addr;
	(void)len;
}

static void fence(void)
{
}

static void copy_flush(enum dax_how how, int nt, char *dst, const char *src, size_t len)
{
	(void)how;
	(void)nt;
	memcpy(dst, src, len);
}
#endif

/* Refuse a bad flush= even where fallback=msync makes it moot. */
static int check_flush_name(const struct sn_uri *uri)
{
	const char *want = sn__uri_get(uri, "flush");

	if (!want || !strcmp(want, "auto"))
		return 0;
	for (unsigned k = HOW_CLWB; k < HOW_MSYNC; k++)
		if (!strcmp(want, how_names[k]))
			return 0;
	return sn__err(-EINVAL, "dax: flush=%s: expected auto, clwb, clflushopt or clflush", want);
}

static int choose_flush(const struct sn_uri *uri, enum dax_how *how)
{
	const char *want = sn__uri_get(uri, "flush");
	unsigned have = cpu_flushes();

	if (!want || !strcmp(want, "auto")) {
		for (unsigned k = HOW_CLWB; k < HOW_MSYNC; k++)
			if (have & (1u << k)) {
				*how = (enum dax_how)k;
				return 0;
			}
		return sn__err(SN_ENOTAVAIL,
		               "dax: this build has no cache-line flush for this CPU "
		               "architecture; add fallback=msync to persist with msync");
	}
	for (unsigned k = HOW_CLWB; k < HOW_MSYNC; k++) {
		if (strcmp(want, how_names[k]) != 0)
			continue;
		if (!(have & (1u << k)))
			return sn__err(SN_ENOTAVAIL, "dax: flush=%s, but this CPU has no %s", want,
			               how_names[k]);
		*how = (enum dax_how)k;
		return 0;
	}
	return check_flush_name(uri);
}

static int parse_fallback(const struct sn_uri *uri, int *msync_ok)
{
	const char *v = sn__uri_get(uri, "fallback");

	*msync_ok = 0;
	if (!v || !strcmp(v, "none"))
		return 0;
	if (!strcmp(v, "msync")) {
		*msync_ok = 1;
		return 0;
	}
	return sn__err(-EINVAL, "dax: fallback=%s: expected none or msync", v);
}

static int dax_map(struct dax_dev *d, int flags)
{
	int prot = PROT_READ | (d->dev.readonly ? 0 : PROT_WRITE);

	d->base = mmap(NULL, d->dev.info.capacity_bytes, prot, flags, d->fd, 0);
	return d->base == MAP_FAILED ? -errno : 0;
}

/* Map with MAP_SYNC; when the filesystem refuses it, decide what the user allowed. */
static int dax_setup(struct dax_dev *d, const struct sn_uri *uri, int populate)
{
	struct sn_dev *dev = &d->dev;
	int msync_ok, ram = 0, err, pop = populate ? MAP_POPULATE : 0;
	const char *how = NULL;
	struct statfs sfs;

	if ((err = parse_fallback(uri, &msync_ok)) || (err = check_flush_name(uri)))
		return err;
	if (fstatfs(d->fd, &sfs) == 0)
		ram = sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC;
	err = dax_map(d, MAP_SHARED_VALIDATE | MAP_SYNC | pop);
	if (!err) {
		snprintf(dev->features, sizeof(dev->features), "MAP_SYNC");
	} else if (err != -EOPNOTSUPP && err != -EINVAL) {
		return sn__err(err, "dax: cannot map '%s' (%llu bytes): %s", uri->path,
		               (unsigned long long)dev->info.capacity_bytes, sn_strerror(err));
	} else if (msync_ok) {
		d->how = HOW_MSYNC;
		if ((err = dax_map(d, MAP_SHARED | pop)))
			return sn__err(err, "dax: cannot map '%s': %s", uri->path,
			               sn_strerror(err));
		snprintf(dev->features, sizeof(dev->features), "MAP_SHARED (not DAX)");
		how = "fallback=msync";
	} else if (ram) {
		/* Nothing can make tmpfs survive a power loss, msync included: run the
		 * cache-line path, which is what tests of this engine want to exercise. */
		if ((err = dax_map(d, MAP_SHARED | pop)))
			return sn__err(err, "dax: cannot map '%s': %s", uri->path,
			               sn_strerror(err));
		snprintf(dev->features, sizeof(dev->features), "MAP_SHARED (tmpfs: RAM)");
	} else {
		return sn__err(SN_ENOTAVAIL,
		               "dax: '%s' is not on a DAX mount: its filesystem refused MAP_SYNC "
		               "(%s). Use a file on a filesystem mounted with -o dax on "
		               "persistent memory, or add fallback=msync to persist with msync "
		               "through the page cache (a weaker, slower guarantee)",
		               uri->path, sn_errname(err));
	}
	if (!how) {
		err = choose_flush(uri, &d->how);
		if (err == SN_ENOTAVAIL && msync_ok && !sn__uri_get(uri, "flush")) {
			/* No flush instruction built for this CPU: msync works on DAX too. */
			d->how = HOW_MSYNC;
			err = 0;
		}
		if (err) {
			munmap(d->base, dev->info.capacity_bytes);
			return err;
		}
		how = d->how == HOW_MSYNC ? "fallback=msync" : how_names[d->how];
	}
	snprintf(dev->features + strlen(dev->features),
	         sizeof(dev->features) - strlen(dev->features), " %s%s%s", how,
	         d->how != HOW_MSYNC && d->nt ? " movnt" : "", populate ? " MAP_POPULATE" : "");
	if (ram)
		snprintf(dev->note, sizeof(dev->note),
		         "'%.120s' is on tmpfs: RAM, not persistent memory; persist runs but "
		         "nothing survives a power loss",
		         uri->path);
	return 0;
}

static int dax_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	struct dax_dev *d = (struct dax_dev *)dev;
	struct sn_file_opts o = { 0 };
	int populate = 0, existed, err;
	struct stat st;

	d->nt = 1;
	if ((err = sn__uri_bool(uri, "populate", &populate)) ||
	    (err = sn__uri_bool(uri, "nt", &d->nt)))
		return err;
	existed = stat(uri->path, &st) == 0;
	d->fd = sn__file_open(dev, uri, &o);
	if (d->fd < 0)
		return d->fd;
	if ((err = dax_setup(d, uri, populate))) {
		close(d->fd);
		/* Do not leave behind a file that this failed open created. */
		if (!existed && *uri->path)
			unlink(uri->path);
		return err;
	}
	d->page = (size_t)sysconf(_SC_PAGESIZE);
	dev->info.caps |= SN_CAP_BYTE_ADDR;
	if (d->how == HOW_MSYNC) {
		dev->info.persist_gran = SN_GRAN_PAGE;
		dev->info.flush_does = "fdatasync(2) of the file (fallback=msync: not DAX, dirty "
		                       "pages of the mapping go through the page cache)";
	} else {
		/* Every write is flushed and fenced before it completes: FUA is free. */
		dev->info.caps |= SN_CAP_FUA;
		dev->info.persist_gran = SN_GRAN_CACHE_LINE;
		dev->info.flush_does = "a store fence: each write was already flushed from the "
		                       "CPU cache (cache-line flush + SFENCE) before it completed";
	}
	return 0;
}

static void dax_close(struct sn_dev *dev)
{
	struct dax_dev *d = (struct dax_dev *)dev;

	munmap(d->base, dev->info.capacity_bytes);
	close(d->fd);
}

static int dax_sync(struct dax_dev *d, uint64_t off, uint64_t len)
{
	if (d->how != HOW_MSYNC) {
		flush_lines(d->how, d->base + off, len);
		fence();
		return 0;
	}
	return sn__msync_range(d->base, d->page, off, len, &d->lost);
}

static int dax_queue_init(struct sn_queue *q)
{
	struct dax_dev *d = (struct dax_dev *)q->dev;

	/* Only the page-cache fallback has writeback errors to report per queue. */
	return sn__file_queue_init(q, d->fd, d->how == HOW_MSYNC);
}

static int64_t dax_one(struct dax_dev *d, int fd, const struct sn_io *io)
{
	int err;

	switch (io->op) {
	case SN_OP_READ:
		memcpy(io->buf, d->base + io->offset, io->len);
		return io->len;
	case SN_OP_WRITE:
		/* Cache-line mode persists every write before it completes (cheap); msync
		 * mode only on FUA, as mmap: does, and leaves the rest to the flush. */
		if (d->how != HOW_MSYNC) {
			copy_flush(d->how, d->nt, d->base + io->offset, io->buf, io->len);
			fence();
			return io->len;
		}
		memcpy(d->base + io->offset, io->buf, io->len);
		if (io->flags & SN_IO_FUA && (err = dax_sync(d, io->offset, io->len)))
			return err;
		return io->len;
	case SN_OP_FLUSH:
		if (d->how != HOW_MSYNC) {
			fence();
			return 0;
		}
		/* Not msync, as on mmap:: that reports a writeback error to the mapping's
		 * file description only, so one queue would take it for all. */
		return fdatasync(fd) < 0 ? -errno : 0;
	case SN_OP_DISCARD:
		err = sn__file_discard(d->fd, d->dev.info.caps & SN_CAP_BLOCKDEV, io->offset,
		                       io->len);
		return err ? err : (int64_t)io->len;
	}
	return -EINVAL;
}

static int dax_submit(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	struct dax_dev *d = (struct dax_dev *)q->dev;
	int fd = ((struct sn_file_queue *)q)->fd;

	for (unsigned i = 0; i < n; i++)
		sn__queue_complete(q, ios[i].user_data, dax_one(d, fd, &ios[i]));
	return (int)n;
}

static int dax_base(struct sn_dev *dev, void **basep)
{
	*basep = ((struct dax_dev *)dev)->base;
	return 0;
}

static int dax_persist(struct sn_dev *dev, const void *addr, size_t len)
{
	struct dax_dev *d = (struct dax_dev *)dev;

	return dax_sync(d, (uint64_t)((const char *)addr - d->base), len);
}

const struct sn_engine sn_engine_dax = {
	.version = SN_ENGINE_V1,
	.name = "dax",
	.summary = "MAP_SYNC mapping of a file on a DAX mount; CLWB/CLFLUSHOPT + SFENCE to "
	           "persist; byte-addressable",
	.options = dax_options,
	.dev_size = sizeof(struct dax_dev),
	.queue_size = sizeof(struct sn_file_queue),
	.open = dax_open,
	.close = dax_close,
	.queue_init = dax_queue_init,
	.queue_fini = sn__file_queue_fini,
	.submit = dax_submit,
	.map = dax_base,
	.persist = dax_persist,
};
