/* SPDX-License-Identifier: MIT */
/*
 * dev.c — the generic device layer, the only caller of engine ops (SQLite's os.c).
 * It refuses bad URIs and bad requests once for every engine, enforces queue depth
 * (back-pressure is -EAGAIN, never a drop), keeps completions that engines post
 * synchronously, and gives every started request exactly one completion.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../util/util.h"
#include "engine.h"

const struct sn_engine *sn__engine_find(const char *name)
{
	for (unsigned i = 0; sn__engines[i]; i++)
		if (strcmp(sn__engines[i]->name, name) == 0)
			return sn__engines[i];
	return NULL;
}

const struct sn_engine_desc *sn_engine_desc(unsigned idx)
{
	/* struct sn_engine begins with the same fields in a different order, so keep a
	 * parallel table of public descriptions built on first use. */
	static struct sn_engine_desc descs[32];
	static unsigned n;

	if (!n) {
		unsigned i;

		for (i = 0; i < SN_ARRAY_SIZE(descs) && sn__engines[i]; i++) {
			descs[i].name = sn__engines[i]->name;
			descs[i].summary = sn__engines[i]->summary;
			descs[i].options = sn__engines[i]->options;
		}
		__atomic_store_n(&n, i, __ATOMIC_RELEASE);
	}
	return idx < __atomic_load_n(&n, __ATOMIC_ACQUIRE) ? &descs[idx] : NULL;
}

static int check_options(const struct sn_engine *e, const struct sn_uri *uri)
{
	for (unsigned i = 0; i < uri->nkv; i++) {
		const struct sn_option *o = e->options;
		char known[256] = "";
		size_t used = 0;

		for (; o && o->key; o++)
			if (strcmp(o->key, uri->kv[i].key) == 0 || !strcmp(o->key, SN_OPTION_ANY))
				break;
		if (o && o->key)
			continue;
		for (o = e->options; o && o->key && used < sizeof(known); o++)
			used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s",
			                         used ? ", " : "", o->key);
		return sn__err(-EINVAL, "engine %s does not know option '%s' (it takes: %s)",
		               e->name, uri->kv[i].key, used ? known : "no options");
	}
	return 0;
}

static int list_engines(char *buf, size_t len)
{
	size_t used = 0;

	for (unsigned i = 0; sn__engines[i] && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
		                         sn__engines[i]->name);
	return 0;
}

int sn_dev_open(const char *uri_str, struct sn_dev **devp)
{
	const struct sn_engine *e;
	struct sn_uri uri;
	struct sn_dev *dev;
	int err;

	*devp = NULL;
	err = sn__uri_parse(uri_str, &uri);
	if (err)
		return err;
	e = sn__engine_find(uri.engine);
	if (!e) {
		char known[256];

		list_engines(known, sizeof(known));
		err = sn__err(SN_ENOTAVAIL, "unknown engine '%s' in '%s' (this build has: %s)",
		              uri.engine, uri_str, known);
		goto out;
	}
	err = check_options(e, &uri);
	if (err)
		goto out;
	if (e->resolve) {
		err = e->resolve(&uri, devp);
		goto out;
	}
	dev = calloc(1, e->dev_size);
	if (!dev) {
		err = -ENOMEM;
		goto out;
	}
	dev->engine = e;
	dev->path = strdup(uri.path);
	if (!dev->path) {
		free(dev);
		err = -ENOMEM;
		goto out;
	}
	dev->info.engine = e->name;
	dev->info.path = dev->path;
	dev->info.offset_align = 1;
	dev->info.mem_align = 1;
	dev->info.block_size = 512;
	dev->info.max_queue_depth = 4096;
	dev->info.max_transfer_bytes = 1u << 30;
	dev->info.flush_does = "nothing: this engine does not persist data";
	dev->info.features = dev->features;
	dev->info.note = dev->note;
	err = e->open(dev, &uri);
	dev->fast_op_max = dev->readonly ? SN_OP_READ : SN_OP_WRITE;
	if (err) {
		free(dev->path);
		free(dev);
		goto out;
	}
	*devp = dev;
out:
	sn__uri_free(&uri);
	return err;
}

void sn_dev_close(struct sn_dev *dev)
{
	if (!dev)
		return;
	if (dev->engine->close)
		dev->engine->close(dev);
	free(dev->path);
	free(dev);
}

void sn_dev_info(const struct sn_dev *dev, struct sn_dev_info *info)
{
	*info = dev->info;
}

int sn_queue_create(struct sn_dev *dev, unsigned depth, struct sn_queue **qp)
{
	const struct sn_engine *e = dev->engine;
	struct sn_queue *q;
	unsigned cap = 2;
	int err;

	*qp = NULL;
	if (depth < 1 || depth > dev->info.max_queue_depth)
		return sn__err(-EINVAL, "queue depth %u is out of range: %s takes 1..%u", depth,
		               e->name, dev->info.max_queue_depth);
	/* Room for every request in flight plus the one a blocking helper adds. */
	while (cap < depth + 1)
		cap <<= 1;
	q = calloc(1, e->queue_size);
	if (!q)
		return -ENOMEM;
	q->cq = calloc(cap, sizeof(*q->cq));
	if (!q->cq) {
		free(q);
		return -ENOMEM;
	}
	q->cq_cap = cap;
	q->dev = dev;
	q->depth = depth;
	err = e->queue_init ? e->queue_init(q) : 0;
	if (err) {
		free(q->cq);
		free(q);
		return err;
	}
	*qp = q;
	return 0;
}

void sn_queue_destroy(struct sn_queue *q)
{
	struct sn_cqe cqe[64];

	if (!q)
		return;
	while (q->inflight)
		if (sn_queue_reap(q, cqe, SN_ARRAY_SIZE(cqe), 1) < 0)
			break;
	while (q->nbufs)
		sn_queue_buf_free(q, q->bufs[q->nbufs - 1].addr);
	if (q->dev->engine->queue_fini)
		q->dev->engine->queue_fini(q);
	free(q->bufs);
	free(q->cq);
	free(q);
}

unsigned sn_queue_inflight(const struct sn_queue *q)
{
	return q->inflight;
}

int sn_queue_notify(struct sn_queue *q, int efd)
{
	const struct sn_engine *e = q->dev->engine;

	if (e->version < SN_ENGINE_V2 || !e->notify)
		return sn__err(-ENOTSUP,
		               "engine %s completes requests as they are submitted: "
		               "there is nothing to wait for",
		               e->name);
	return e->notify(q, efd);
}

struct sn_dev *sn_queue_dev(const struct sn_queue *q)
{
	return q->dev;
}

static const char *op_name(unsigned op)
{
	static const char *const names[] = { "read", "write", "flush", "discard" };

	return op < SN_ARRAY_SIZE(names) ? names[op] : "unknown";
}

/* The slow path of check_io(): name the rule the request broke. */
static int refuse_io(const struct sn_dev *dev, const struct sn_io *io)
{
	const struct sn_dev_info *in = &dev->info;
	const char *op = op_name(io->op);
	unsigned long long off = io->offset, len = io->len;

	if (io->op > SN_OP_DISCARD)
		return sn__err(-EINVAL,
		               "unknown opcode %u (expected SN_OP_READ, _WRITE, _FLUSH "
		               "or _DISCARD)",
		               io->op);
	if (io->reserved || (io->flags & ~SN_IO_FUA))
		return sn__err(-EINVAL, "%s: unknown flags 0x%x or reserved field set", op,
		               io->flags);
	if (io->flags & SN_IO_FUA && io->op != SN_OP_WRITE)
		return sn__err(-EINVAL, "%s: SN_IO_FUA applies to writes only", op);
	if (io->op == SN_OP_FLUSH)
		return 0;
	if (io->op != SN_OP_READ && dev->readonly)
		return sn__err(-EBADF, "%s: '%s' was opened read-only", op, in->path);
	if (io->op == SN_OP_DISCARD && !(in->caps & SN_CAP_DISCARD))
		return sn__err(-ENOTSUP, "discard: engine %s on '%s' cannot discard", in->engine,
		               in->path);
	if (io->len == 0)
		return sn__err(-EINVAL, "zero-length %s at offset %llu: len must be at least 1", op,
		               off);
	if (io->len > in->max_transfer_bytes)
		return sn__err(-EINVAL, "%s of %llu bytes exceeds the %u-byte maximum transfer", op,
		               len, in->max_transfer_bytes);
	if (io->offset > in->capacity_bytes || len > in->capacity_bytes - io->offset)
		return sn__err(-ERANGE,
		               "%s of [%llu, %llu) reaches past the end of the device (%llu bytes)",
		               op, off, off + len, (unsigned long long)in->capacity_bytes);
	if ((io->offset | io->len) & (in->offset_align - 1))
		return sn__err(-EINVAL,
		               "%s at offset %llu, length %llu: both must be multiples of %u "
		               "(direct I/O on '%s' needs %u-byte alignment)",
		               op, off, len, in->offset_align, in->path, in->offset_align);
	if (io->op != SN_OP_DISCARD && !io->buf)
		return sn__err(-EINVAL, "%s at offset %llu: buf is NULL", op, off);
	if (io->op != SN_OP_DISCARD && ((uintptr_t)io->buf & (in->mem_align - 1)))
		return sn__err(-EINVAL,
		               "%s buffer %p is not aligned to %u bytes, as direct I/O on '%s' "
		               "needs (allocate it with sn_queue_buf_alloc)",
		               op, io->buf, in->mem_align, in->path);
	return 0;
}

/* 1 when io may be submitted. Kept branch-light: this runs for every request. */
static inline int check_io(const struct sn_dev *dev, const struct sn_io *io)
{
	const struct sn_dev_info *in = &dev->info;

	/* Flush, discard, FUA and writes to a read-only device take the slow path. */
	if (SN_UNLIKELY(io->op > dev->fast_op_max || io->flags || io->reserved))
		return refuse_io(dev, io) == 0;
	/* len <= capacity first: capacity - len must not wrap for a request longer than
	 * the whole device. */
	return io->len && io->len <= in->max_transfer_bytes && io->len <= in->capacity_bytes &&
	       io->offset <= in->capacity_bytes - io->len && io->buf &&
	       !(((uintptr_t)io->buf & (in->mem_align - 1)) |
	         ((io->offset | io->len) & (in->offset_align - 1)));
}

static int submit(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	unsigned ok = 0;
	int r;

	while (ok < n && check_io(q->dev, &ios[ok]))
		ok++;
	if (ok == 0)
		return refuse_io(q->dev, &ios[0]);
	r = q->dev->engine->submit(q, ios, ok);
	if (r > 0)
		q->inflight += (unsigned)r;
	return r;
}

int sn_queue_submit(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	unsigned room = q->depth > q->inflight ? q->depth - q->inflight : 0;

	if (SN_UNLIKELY(n == 0))
		return 0;
	if (SN_UNLIKELY(room == 0))
		return sn__err_str(-EAGAIN, "queue full: reap completions before submitting more");
	return submit(q, ios, n < room ? n : room);
}

static unsigned cq_pending(const struct sn_queue *q)
{
	return q->cq_tail - q->cq_head;
}

static unsigned cq_drain(struct sn_queue *q, struct sn_cqe *out, unsigned max)
{
	unsigned n = cq_pending(q), mask = q->cq_cap - 1;

	if (n > max)
		n = max;
	for (unsigned i = 0; i < n; i++)
		out[i] = q->cq[(q->cq_head + i) & mask];
	q->cq_head += n;
	return n;
}

int sn_queue_reap(struct sn_queue *q, struct sn_cqe *cqes, unsigned max, unsigned min_wait)
{
	const struct sn_engine *e = q->dev->engine;
	unsigned n;

	if (min_wait > q->inflight)
		min_wait = q->inflight;
	if (min_wait > max)
		min_wait = max;
	n = cq_drain(q, cqes, max);
	if (e->reap && n < max) {
		int r = e->reap(q, cqes + n, max - n, min_wait > n ? min_wait - n : 0);

		if (r < 0 && n == 0)
			return r;
		if (r > 0)
			n += (unsigned)r;
	}
	q->inflight -= n;
	return (int)n;
}

/*
 * Submit one request and wait for it alone. It may exceed the queue depth by one (the
 * completion ring has room for depth + 1), so a blocking call on a full queue works.
 * Other completions met while waiting are kept in the ring for sn_queue_reap().
 */
static int queue_wait_one(struct sn_queue *q, struct sn_io *io)
{
	const struct sn_engine *e = q->dev->engine;
	uint64_t tag = (uint64_t)(uintptr_t)io;
	unsigned mask = q->cq_cap - 1;
	int r;

	io->user_data = tag;
	if (q->inflight > q->depth)
		return sn__err(-EBUSY, "a blocking call is already waiting on this queue");
	r = submit(q, io, 1);
	if (r < 0)
		return r;
	for (;;) {
		/* Look for the tag among posted completions, newest first. */
		for (unsigned i = q->cq_tail; i != q->cq_head; i--) {
			struct sn_cqe *c = &q->cq[(i - 1) & mask];

			if (c->user_data != tag)
				continue;
			r = (int)(c->res < 0 ? c->res : 0);
			for (unsigned j = i; j != q->cq_tail; j++)
				q->cq[(j - 1) & mask] = q->cq[j & mask];
			q->cq_tail--;
			q->inflight--;
			return r;
		}
		if (!e->reap)
			return sn__err(-EIO, "engine %s lost a completion", e->name);
		{
			struct sn_cqe c;

			r = e->reap(q, &c, 1, 1);
			if (r < 0)
				return r;
			if (r == 1)
				sn__queue_complete(q, c.user_data, c.res);
		}
	}
}

int sn_queue_pread(struct sn_queue *q, void *buf, uint32_t len, uint64_t offset)
{
	struct sn_io io;

	sn_io_read(&io, buf, len, offset, 0);
	return queue_wait_one(q, &io);
}

int sn_queue_pwrite(struct sn_queue *q, const void *buf, uint32_t len, uint64_t offset)
{
	struct sn_io io;

	sn_io_write(&io, buf, len, offset, 0);
	return queue_wait_one(q, &io);
}

int sn_queue_flush(struct sn_queue *q)
{
	struct sn_io io;

	sn_io_flush(&io, 0);
	return queue_wait_one(q, &io);
}

int sn_queue_buf_alloc(struct sn_queue *q, size_t len, void **bufp)
{
	const struct sn_engine *e = q->dev->engine;
	size_t align = q->dev->info.mem_align > 4096 ? q->dev->info.mem_align : 4096;
	size_t map_len;
	struct sn_buf_rec *rec;
	void *map = MAP_FAILED, *addr;

	*bufp = NULL;
	if (len == 0)
		return sn__err(-EINVAL, "buffer length must be at least 1");
	if (q->nbufs == q->bufs_cap) {
		unsigned cap = q->bufs_cap ? q->bufs_cap * 2 : 8;
		struct sn_buf_rec *b = realloc(q->bufs, cap * sizeof(*b));

		if (!b)
			return -ENOMEM;
		q->bufs = b;
		q->bufs_cap = cap;
	}
	len = (len + 4095) & ~(size_t)4095;
	map_len = len + (align > 4096 ? align : 0);
	/* Huge pages cut TLB misses and io_uring's pinning cost on big buffers; fall back
	 * silently when none are reserved. */
	if (len >= (2u << 20) && align <= (2u << 20) && len % (2u << 20) == 0)
		map = mmap(NULL, len, PROT_READ | PROT_WRITE,
		           MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
	if (map != MAP_FAILED) {
		map_len = len;
		addr = map;
	} else {
		map = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
		           MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (map == MAP_FAILED)
			return sn__err(-ENOMEM, "cannot map a %zu-byte I/O buffer", len);
		addr = (void *)(((uintptr_t)map + align - 1) & ~(uintptr_t)(align - 1));
	}
	rec = &q->bufs[q->nbufs++];
	rec->addr = addr;
	rec->len = len;
	rec->map = map;
	rec->map_len = map_len;
	/* Registration only speeds I/O up; an unregistered buffer still works. */
	if (e->buf_register)
		(void)e->buf_register(q, addr, len);
	*bufp = addr;
	return 0;
}

void sn_queue_buf_free(struct sn_queue *q, void *buf)
{
	const struct sn_engine *e = q->dev->engine;

	for (unsigned i = 0; i < q->nbufs; i++) {
		struct sn_buf_rec r = q->bufs[i];

		if (r.addr != buf)
			continue;
		if (e->buf_unregister)
			e->buf_unregister(q, r.addr, r.len);
		munmap(r.map, r.map_len);
		q->bufs[i] = q->bufs[--q->nbufs];
		return;
	}
}

int sn_dev_ctl(struct sn_dev *dev, int op, void *arg)
{
	if (!dev->engine->ctl)
		return sn__err(-ENOTSUP, "engine %s has no control op 0x%x", dev->info.engine, op);
	return dev->engine->ctl(dev, op, arg);
}

int sn_dev_map(struct sn_dev *dev, void **basep)
{
	*basep = NULL;
	if (!(dev->info.caps & SN_CAP_BYTE_ADDR) || !dev->engine->map)
		return sn__err(-ENOTSUP,
		               "engine %s is not byte-addressable (use mmap:, dax: or "
		               "pmem:)",
		               dev->info.engine);
	return dev->engine->map(dev, basep);
}

int sn_dev_persist(struct sn_dev *dev, const void *addr, size_t len)
{
	void *base;
	int err;

	if (!dev->engine->persist)
		return sn__err(-ENOTSUP, "engine %s is not byte-addressable", dev->info.engine);
	err = dev->engine->map(dev, &base);
	if (err)
		return err;
	if ((const char *)addr < (char *)base || len > dev->info.capacity_bytes ||
	    (uint64_t)((const char *)addr - (char *)base) > dev->info.capacity_bytes - len)
		return sn__err(-EINVAL, "persist range %p+%zu lies outside the %s mapping", addr,
		               len, dev->info.engine);
	return dev->engine->persist(dev, addr, len);
}
