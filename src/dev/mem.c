/* SPDX-License-Identifier: MIT */
/*
 * mem: a device in anonymous memory. Data moves (memcpy) but nothing outlives the
 * device; byte-addressable through sn_dev_map(). Pages are allocated on first write,
 * so a large mem: device costs only what is written.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "../util/util.h"
#include "engine.h"

struct mem_dev {
	struct sn_dev dev;
	char *base;
};

static const struct sn_option mem_options[] = {
	{ "size", "SIZE", "capacity in bytes (default 1g), allocated as it is written" },
	{ NULL, NULL, NULL },
};

static int mem_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	struct mem_dev *m = (struct mem_dev *)dev;
	uint64_t size = 1ull << 30;
	int err = sn__uri_size(uri, "size", &size);

	if (err)
		return err;
	if (!size)
		return sn__err(-EINVAL, "size=0: a device needs at least one byte");
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->base == MAP_FAILED)
		return sn__err(-ENOMEM, "cannot reserve %llu bytes of memory for mem:",
		               (unsigned long long)size);
	dev->info.capacity_bytes = size;
	dev->info.max_queue_depth = 65536;
	dev->info.caps = SN_CAP_FLUSH | SN_CAP_FUA | SN_CAP_DISCARD | SN_CAP_BYTE_ADDR;
	dev->info.flush_does = "nothing: data lives in RAM and is lost at close";
	return 0;
}

static void mem_close(struct sn_dev *dev)
{
	struct mem_dev *m = (struct mem_dev *)dev;

	munmap(m->base, dev->info.capacity_bytes);
}

static void mem_discard(struct mem_dev *m, uint64_t off, uint64_t len)
{
	uint64_t start = (off + 4095) & ~4095ull, end = (off + len) & ~4095ull;

	/* Whole pages go back to the kernel and read as zeros; partial ones are zeroed. */
	if (start < end) {
		memset(m->base + off, 0, start - off);
		madvise(m->base + start, end - start, MADV_DONTNEED);
		memset(m->base + end, 0, off + len - end);
	} else {
		memset(m->base + off, 0, len);
	}
}

static int mem_submit(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	struct mem_dev *m = (struct mem_dev *)q->dev;

	for (unsigned i = 0; i < n; i++) {
		const struct sn_io *io = &ios[i];

		switch (io->op) {
		case SN_OP_READ:
			memcpy(io->buf, m->base + io->offset, io->len);
			break;
		case SN_OP_WRITE:
			memcpy(m->base + io->offset, io->buf, io->len);
			break;
		case SN_OP_DISCARD:
			mem_discard(m, io->offset, io->len);
			break;
		default:
			break;
		}
		sn__queue_complete(q, io->user_data, io->op == SN_OP_FLUSH ? 0 : io->len);
	}
	return (int)n;
}

static int mem_map(struct sn_dev *dev, void **basep)
{
	*basep = ((struct mem_dev *)dev)->base;
	return 0;
}

static int mem_persist(struct sn_dev *dev, const void *addr, size_t len)
{
	(void)dev, (void)addr, (void)len;
	return 0;
}

const struct sn_engine sn_engine_mem = {
	.version = SN_ENGINE_V1,
	.name = "mem",
	.summary = "anonymous memory: data moves, nothing persists; byte-addressable",
	.options = mem_options,
	.dev_size = sizeof(struct mem_dev),
	.queue_size = sizeof(struct sn_queue),
	.open = mem_open,
	.close = mem_close,
	.submit = mem_submit,
	.map = mem_map,
	.persist = mem_persist,
};
