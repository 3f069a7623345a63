/* SPDX-License-Identifier: MIT */
/*
 * fault: wraps another device to test what happens when storage fails (SQLite's crash
 * VFS, FoundationDB's AsyncFileNonDurable). Writes are held in memory until a flush
 * makes them durable, and reads see them; at a simulated power loss the held writes are
 * kept, dropped or torn (some of their blocks reach the medium: a head, a tail, or any
 * subset, holes and all) as crash= says, in their original order.
 * It also injects EIO/ENOSPC at the Nth request or with a probability, flips bits on
 * reads and adds latency. All choices come from one seeded generator: reproducible.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <snstore/fault.h>

#include "../util/util.h"
#include "engine.h"

enum crash_mode { CRASH_ALL, CRASH_RANDOM, CRASH_TEAR, CRASH_KEEP };

/* A write since the last flush, in submission order. data NULL means zeros (discard). */
struct held {
	uint64_t off;
	uint64_t len;
	char *data;
	int durable; /* FUA: already on the inner device; replayed to keep the order */
};

struct fault_dev {
	struct sn_dev dev;
	struct sn_dev *inner;
	char inner_uri[4096];
	pthread_mutex_t lock;

	/* Options. */
	enum crash_mode mode;
	uint64_t crash_at, eio_at, enospc_at, delay_us, tear_block;
	double eio_prob, enospc_prob, flip_prob;
	unsigned fail_ops; /* 1 << SN_OP_* that error injection applies to */

	/* State, under lock. */
	uint64_t rng;
	struct held *held;
	unsigned nheld, held_cap;
	int crashed;
	unsigned errseq; /* failed flushes so far: each queue's next flush reports a new one */
	struct sn_fault_stats st;
	char *zeros; /* 1 MiB of zeros, aligned, for discards */

	/* bytes=1: the CPU's view of the device; the inner device is the medium. */
	unsigned char *map;
	struct sn_queue *pq; /* persists and crashes write the medium through it, under lock */
};

struct fault_queue {
	struct sn_queue q;
	struct sn_queue *inner;
	unsigned errseq_seen; /* fault_dev.errseq this queue has reported */
};

static const struct sn_option fault_options[] = {
	{ "seed", "N", "seed of every random choice (default 1)" },
	{ "crash", "all|random|tear|keep",
	  "at a crash, held writes are all lost (default), each kept with p=1/2, kept or torn "
	  "(some of their blocks reach the device), or all kept" },
	{ "crash_at", "N", "simulate the crash just before the Nth request" },
	{ "tear_block", "SIZE",
	  "the unit a torn write keeps or loses (default: the device's block)" },
	{ "eio_at", "N", "the Nth request fails with EIO" },
	{ "eio_prob", "P", "each request fails with EIO with probability P" },
	{ "enospc_at", "N", "the Nth request, if a write, fails with ENOSPC" },
	{ "enospc_prob", "P", "each write fails with ENOSPC with probability P" },
	{ "fail_ops", "read,write,flush,discard", "which requests may fail (default all)" },
	{ "flip_prob", "P", "each read comes back with one bit flipped with probability P" },
	{ "delay_us", "N", "every request takes N more microseconds" },
	{ "bytes", "0|1",
	  "byte-addressable: sn_dev_map and sn_dev_persist (cache lines), over psync, mmap or "
	  "mem; a crash drops unpersisted lines as crash= says" },
	{ SN_OPTION_ANY, "", "other options go to the wrapped engine" },
	{ NULL, NULL, NULL },
};

static const char *const own_keys[] = { "seed",     "crash",     "crash_at",  "tear_block",
	                                "eio_at",   "eio_prob",  "enospc_at", "enospc_prob",
	                                "fail_ops", "flip_prob", "delay_us",  "bytes" };

/* splitmix64: tiny, seedable, good enough to pick crash states. */
static uint64_t splitmix(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct fault_dev *f)
{
	return splitmix(&f->rng);
}

static int chance(struct fault_dev *f, double p)
{
	return p > 0 && (double)(rnd(f) >> 11) * 0x1.0p-53 < p;
}

static int parse_prob(const struct sn_uri *uri, const char *key, double *out)
{
	const char *v = sn__uri_get(uri, key);
	char *end;

	if (!v)
		return 0;
	*out = strtod(v, &end);
	if (end == v || *end || isspace((unsigned char)*v) || !(*out >= 0 && *out <= 1))
		return sn__err(-EINVAL, "option %s=%s: expected a probability from 0 to 1", key, v);
	return 0;
}

static int parse_options(struct fault_dev *f, const struct sn_uri *uri)
{
	const char *mode = sn__uri_get(uri, "crash"), *ops = sn__uri_get(uri, "fail_ops");
	uint64_t seed = 1;
	int err;

	if ((err = sn__uri_uint(uri, "seed", &seed)) ||
	    (err = sn__uri_uint(uri, "crash_at", &f->crash_at)) ||
	    (err = sn__uri_size(uri, "tear_block", &f->tear_block)) ||
	    (err = sn__uri_uint(uri, "eio_at", &f->eio_at)) ||
	    (err = sn__uri_uint(uri, "enospc_at", &f->enospc_at)) ||
	    (err = sn__uri_uint(uri, "delay_us", &f->delay_us)) ||
	    (err = parse_prob(uri, "eio_prob", &f->eio_prob)) ||
	    (err = parse_prob(uri, "enospc_prob", &f->enospc_prob)) ||
	    (err = parse_prob(uri, "flip_prob", &f->flip_prob)))
		return err;
	if (f->delay_us > 60000000)
		return sn__err(-EINVAL, "option delay_us=%llu: at most 60000000 (a minute)",
		               (unsigned long long)f->delay_us);
	f->rng = seed;
	if (!mode || !strcmp(mode, "all"))
		f->mode = CRASH_ALL;
	else if (!strcmp(mode, "random"))
		f->mode = CRASH_RANDOM;
	else if (!strcmp(mode, "tear"))
		f->mode = CRASH_TEAR;
	else if (!strcmp(mode, "keep"))
		f->mode = CRASH_KEEP;
	else
		return sn__err(-EINVAL, "option crash=%s: expected all, random, tear or keep",
		               mode);
	f->fail_ops = ~0u;
	if (ops) {
		char buf[128], *tok, *save = NULL;

		f->fail_ops = 0;
		snprintf(buf, sizeof(buf), "%s", ops);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			static const char *const names[] = { "read", "write", "flush", "discard" };
			unsigned i;

			for (i = 0; i < SN_ARRAY_SIZE(names) && strcmp(tok, names[i]) != 0; i++)
				;
			if (i == SN_ARRAY_SIZE(names))
				return sn__err(-EINVAL,
				               "option fail_ops=%s: '%s' is not one of read, "
				               "write, flush, discard",
				               ops, tok);
			f->fail_ops |= 1u << i;
		}
	}
	return 0;
}

/* The wrapped URI: our path (ENGINE:PATH) plus every option that is not ours. */
static int inner_uri(struct fault_dev *f, const struct sn_uri *uri)
{
	size_t used = (size_t)snprintf(f->inner_uri, sizeof(f->inner_uri), "%s", uri->path);
	char sep = '?';

	if (!*uri->path)
		return sn__err(-EINVAL, "fault: wraps another device: fault:ENGINE:PATH?options, "
		                        "for example fault:psync:/tmp/f?crash=random");
	for (unsigned i = 0; i < uri->nkv; i++) {
		unsigned k;

		for (k = 0; k < SN_ARRAY_SIZE(own_keys) && strcmp(own_keys[k], uri->kv[i].key) != 0;
		     k++)
			;
		if (k < SN_ARRAY_SIZE(own_keys))
			continue;
		used += (size_t)snprintf(f->inner_uri + used, sizeof(f->inner_uri) - used,
		                         "%c%s=%s", sep, uri->kv[i].key, uri->kv[i].value);
		sep = '&';
	}
	if (used >= sizeof(f->inner_uri))
		return sn__err(-EINVAL, "fault: the wrapped URI is too long");
	return 0;
}

/* bytes=1: the mapping starts as a copy of the medium. */
static int bytes_open(struct fault_dev *f, const struct sn_dev_info *in)
{
	uint64_t cap = in->capacity_bytes;
	int err;

	if (strcmp(in->engine, "psync") != 0 && strcmp(in->engine, "mmap") != 0 &&
	    strcmp(in->engine, "mem") != 0)
		return sn__err(-EINVAL,
		               "fault: bytes=1 wraps psync, mmap or mem (they take requests from "
		               "any thread), not %s",
		               in->engine);
	if (in->offset_align > 64)
		return sn__err(-EINVAL,
		               "fault: bytes=1 writes single cache lines: the wrapped device "
		               "needs %u-byte alignment (drop direct=1)",
		               in->offset_align);
	f->map = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f->map == MAP_FAILED) {
		f->map = NULL;
		return sn__err(-ENOMEM, "fault: cannot map %llu bytes", (unsigned long long)cap);
	}
	err = sn_queue_create(f->inner, 4, &f->pq);
	for (uint64_t off = 0; !err && off < cap; off += 1u << 20)
		err = sn_queue_pread(f->pq, f->map + off,
		                     cap - off < (1u << 20) ? cap - off : 1u << 20, off);
	if (err) {
		if (f->pq)
			sn_queue_destroy(f->pq);
		munmap(f->map, cap);
		f->map = NULL;
		return err;
	}
	f->dev.info.caps |= SN_CAP_BYTE_ADDR;
	f->dev.info.persist_gran = SN_GRAN_CACHE_LINE;
	return 0;
}

static int fault_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	struct fault_dev *f = (struct fault_dev *)dev;
	struct sn_dev_info in;
	size_t align;
	int err;

	int bytes = 0;

	if ((err = parse_options(f, uri)) || (err = inner_uri(f, uri)) ||
	    (err = sn__uri_bool(uri, "bytes", &bytes)))
		return err;
	if (!strncmp(f->inner_uri, "fault:", 6) || !strncmp(f->inner_uri, "auto:", 5))
		return sn__err(-EINVAL, "fault: wraps a concrete engine, not '%.*s'",
		               (int)strcspn(f->inner_uri, ":"), f->inner_uri);
	err = sn_dev_open(f->inner_uri, &f->inner);
	if (err)
		return err;
	sn_dev_info(f->inner, &in);
	dev->info.capacity_bytes = in.capacity_bytes;
	dev->info.block_size = in.block_size;
	dev->info.offset_align = in.offset_align;
	dev->info.mem_align = in.mem_align;
	dev->info.max_queue_depth = in.max_queue_depth;
	dev->info.max_transfer_bytes = in.max_transfer_bytes;
	/* Byte addressing would bypass the held writes; discard is emulated with zeros. */
	dev->info.caps = (in.caps & ~SN_CAP_BYTE_ADDR) | SN_CAP_FLUSH | SN_CAP_FUA | SN_CAP_DISCARD;
	dev->info.flush_does = "held writes go to the wrapped device in order, then its flush";
	dev->readonly = f->inner->readonly;
	snprintf(dev->features, sizeof(dev->features), "wraps %s (%s)", in.engine, in.features);
	if (!f->tear_block)
		f->tear_block = in.block_size > in.offset_align ? in.block_size : in.offset_align;
	if (f->tear_block % in.offset_align) {
		sn_dev_close(f->inner);
		return sn__err(-EINVAL,
		               "tear_block=%llu is not a multiple of the %u-byte alignment",
		               (unsigned long long)f->tear_block, in.offset_align);
	}
	align = in.mem_align > 4096 ? in.mem_align : 4096;
	if (posix_memalign((void **)&f->zeros, align, 1u << 20)) {
		sn_dev_close(f->inner);
		return -ENOMEM;
	}
	memset(f->zeros, 0, 1u << 20);
	if (bytes && (err = bytes_open(f, &in))) {
		free(f->zeros);
		sn_dev_close(f->inner);
		return err;
	}
	pthread_mutex_init(&f->lock, NULL);
	return 0;
}

static void drop_held(struct fault_dev *f)
{
	for (unsigned i = 0; i < f->nheld; i++)
		free(f->held[i].data);
	f->nheld = 0;
}

static void fault_close(struct sn_dev *dev)
{
	struct fault_dev *f = (struct fault_dev *)dev;

	drop_held(f);
	free(f->held);
	free(f->zeros);
	if (f->map) {
		sn_queue_destroy(f->pq);
		munmap(f->map, dev->info.capacity_bytes);
	}
	sn_dev_close(f->inner);
	pthread_mutex_destroy(&f->lock);
}

static int fault_queue_init(struct sn_queue *q)
{
	struct fault_queue *fq = (struct fault_queue *)q;
	struct fault_dev *f = (struct fault_dev *)q->dev;

	pthread_mutex_lock(&f->lock);
	fq->errseq_seen = f->errseq;
	pthread_mutex_unlock(&f->lock);
	return sn_queue_create(((struct fault_dev *)q->dev)->inner, 4, &fq->inner);
}

static void fault_queue_fini(struct sn_queue *q)
{
	sn_queue_destroy(((struct fault_queue *)q)->inner);
}

/* Write [off, off+len) of h to the inner device, in pieces the device takes. */
static int apply(struct fault_dev *f, struct sn_queue *iq, const struct held *h, uint64_t off,
                 uint64_t len)
{
	uint64_t max = f->dev.info.max_transfer_bytes < (1u << 20) ? f->dev.info.max_transfer_bytes
	                                                           : (1u << 20);

	while (len) {
		uint32_t n = (uint32_t)(len < max ? len : max);
		const char *src = h->data ? h->data + (off - h->off) : f->zeros;
		int err = sn_queue_pwrite(iq, src, n, off);

		if (err)
			return err;
		off += n;
		len -= n;
	}
	return 0;
}

/* Make every held write reach the inner device, in order, then flush it. */
static int write_back(struct fault_dev *f, struct sn_queue *iq)
{
	int err = 0;

	/* FUA writes too (they are on the inner device already): an older held write to
	 * the same blocks must not land over one. */
	for (unsigned i = 0; i < f->nheld && !err; i++)
		err = apply(f, iq, &f->held[i], f->held[i].off, f->held[i].len);
	if (!err)
		err = sn_queue_flush(iq);
	drop_held(f);
	return err;
}

/* bytes=1, power loss: each line of the mapping that is not on the medium (a store never
 * persisted) is lost, kept (evicted from the cache in time) or torn at 8 bytes. */
static int crash_lines(struct fault_dev *f, struct sn_queue *iq)
{
	uint64_t cap = f->dev.info.capacity_bytes;
	unsigned char *medium = (unsigned char *)f->zeros; /* reused: discards are over */
	int err = 0;

	for (uint64_t off = 0; !err && off < cap; off += 1u << 20) {
		uint32_t n = cap - off < (1u << 20) ? (uint32_t)(cap - off) : 1u << 20;

		if ((err = sn_queue_pread(iq, medium, n, off)))
			break;
		for (uint32_t l = 0; l < n && !err; l += 64) {
			uint32_t len = n - l < 64 ? n - l : 64;
			unsigned char *line = f->map + off + l;

			if (!memcmp(line, medium + l, len))
				continue;
			if (f->mode == CRASH_ALL || (f->mode != CRASH_KEEP && (rnd(f) & 1))) {
				f->st.lines_dropped++;
				continue;
			}
			if (f->mode == CRASH_TEAR && len >= 16 && (rnd(f) & 1)) {
				len = 8 * (uint32_t)(1 + rnd(f) % (len / 8 - 1));
				f->st.lines_torn++;
			} else {
				f->st.lines_kept++;
			}
			err = sn_queue_pwrite(iq, line, len, off + l);
		}
	}
	memset(f->zeros, 0, 1u << 20);
	return err;
}

/* Write the blocks of h whose bit in the stream s is set, except block flip, which goes
 * the other way (flip = blocks: none does). Block i is [i * tear_block, (i + 1) *
 * tear_block) of h, the last one maybe short. A run of neighbours goes in one write;
 * runs go lowest offset first. */
static int apply_blocks(struct fault_dev *f, struct sn_queue *iq, const struct held *h,
                        uint64_t blocks, uint64_t s, uint64_t flip)
{
	uint64_t bs = f->tear_block, start = 0, word = 0;
	int run = 0, err = 0;

	for (uint64_t i = 0; i <= blocks && !err; i++) {
		int in = 0;

		if (i < blocks) {
			if (i % 64 == 0)
				word = splitmix(&s);
			in = (int)((word >> (i % 64)) & 1) ^ (i == flip);
		}
		if (in && !run)
			start = i;
		else if (!in && run)
			err = apply(f, iq, h, h->off + start * bs,
			            (i * bs < h->len ? i * bs : h->len) - start * bs);
		run = in;
	}
	return err;
}

/*
 * crash=tear, a kept write of blocks > 1 tear_blocks: a disk may persist any subset of
 * the blocks of a write in flight. One of three shapes reaches the medium, each with
 * p=1/3: the head or the tail, cut at a random block boundary; or each block with p=1/2,
 * so that holes of old data can sit between new blocks. Never all of it, never none
 * (that would be kept or dropped). The pieces are applied before any later held write,
 * so a later write to the same blocks still wins.
 */
static int tear(struct fault_dev *f, struct sn_queue *iq, const struct held *h, uint64_t blocks)
{
	uint64_t shape = rnd(f) % 3, s, t, n = 0, flip = blocks;

	f->st.writes_torn++;
	if (shape < 2) {
		uint64_t cut = (1 + rnd(f) % (blocks - 1)) * f->tear_block;

		return shape == 0 ? apply(f, iq, h, h->off, cut)
		                  : apply(f, iq, h, h->off + cut, h->len - cut);
	}
	/* A stream of its own, one 64-bit draw per 64 blocks: counted here, replayed by
	 * apply_blocks. When it takes all or none, one random block changes side. */
	s = t = rnd(f);
	for (uint64_t i = 0; i < blocks; i += 64) {
		uint64_t w = splitmix(&t);

		if (blocks - i < 64)
			w &= (1ull << (blocks - i)) - 1;
		n += (uint64_t)__builtin_popcountll(w);
	}
	if (n == 0 || n == blocks)
		flip = rnd(f) % blocks;
	return apply_blocks(f, iq, h, blocks, s, flip);
}

/* Power loss: each held write is kept, dropped or torn, in order; then nothing works. */
static int crash(struct fault_dev *f, struct sn_queue *iq)
{
	int err = 0;

	for (unsigned i = 0; i < f->nheld && !err; i++) {
		struct held *h = &f->held[i];
		uint64_t blocks = (h->len + f->tear_block - 1) / f->tear_block;
		int keep = h->durable || f->mode == CRASH_KEEP ||
		           (f->mode != CRASH_ALL && (rnd(f) & 1));

		if (!keep) {
			f->st.writes_dropped++;
			continue;
		}
		if (f->mode == CRASH_TEAR && !h->durable && blocks > 1 && (rnd(f) & 1)) {
			err = tear(f, iq, h, blocks);
			continue;
		}
		err = apply(f, iq, h, h->off, h->len);
		f->st.writes_kept += !h->durable;
	}
	if (!err && f->map)
		err = crash_lines(f, iq);
	if (!err)
		err = sn_queue_flush(iq);
	drop_held(f);
	f->crashed = 1;
	f->st.crashes = 1;
	return err;
}

static int hold(struct fault_dev *f, const struct sn_io *io, int durable)
{
	size_t align = f->dev.info.mem_align > 4096 ? f->dev.info.mem_align : 4096;
	struct held *h;

	if (f->nheld == f->held_cap) {
		unsigned cap = f->held_cap ? f->held_cap * 2 : 64;
		struct held *n = realloc(f->held, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		f->held = n;
		f->held_cap = cap;
	}
	h = &f->held[f->nheld];
	h->off = io->offset;
	h->len = io->len;
	h->durable = durable;
	h->data = NULL;
	if (io->op == SN_OP_WRITE) {
		if (posix_memalign((void **)&h->data, align, io->len))
			return -ENOMEM;
		memcpy(h->data, io->buf, io->len);
	}
	f->nheld++;
	return 0;
}

/* Reads see held writes: lay them over what the inner device returned, oldest first. */
static void overlay(struct fault_dev *f, const struct sn_io *io)
{
	uint64_t lo = io->offset, hi = io->offset + io->len;

	for (unsigned i = 0; i < f->nheld; i++) {
		const struct held *h = &f->held[i];
		uint64_t a = h->off > lo ? h->off : lo,
		         b = h->off + h->len < hi ? h->off + h->len : hi;

		if (a >= b)
			continue;
		if (h->data)
			memcpy((char *)io->buf + (a - lo), h->data + (a - h->off), b - a);
		else
			memset((char *)io->buf + (a - lo), 0, b - a);
	}
}

/* The error to inject into request number n, or 0. */
static int injected(struct fault_dev *f, const struct sn_io *io, uint64_t n)
{
	if (!(f->fail_ops & (1u << io->op)))
		return 0;
	if (n == f->eio_at || chance(f, f->eio_prob)) {
		f->st.eio_injected++;
		return -EIO;
	}
	if (io->op == SN_OP_WRITE && (n == f->enospc_at || chance(f, f->enospc_prob))) {
		f->st.enospc_injected++;
		return -ENOSPC;
	}
	return 0;
}

/*
 * A flush that failed (err) or a sync that completed: like Linux's errseq with one file
 * description per queue, a failure is reported to the queue that saw it and, once, to
 * every other queue's next flush or FUA write, however well that one went.
 */
static int flush_result(struct fault_dev *f, struct fault_queue *fq, int err)
{
	if (err)
		f->errseq++;
	else if (fq->errseq_seen != f->errseq)
		err = -EIO;
	fq->errseq_seen = f->errseq;
	return err;
}

static int64_t run_one(struct fault_dev *f, struct fault_queue *fq, const struct sn_io *io)
{
	struct sn_queue *iq = fq->inner;
	uint64_t n = ++f->st.ios;
	int err;

	if (f->crash_at && n == f->crash_at && !f->crashed)
		crash(f, iq);
	if (f->crashed)
		return -EIO;
	err = injected(f, io, n);
	if (err) {
		/* Linux marks pages clean after a failed writeback (ATC'20): a failed flush
		 * loses what it was to make durable. */
		if (io->op == SN_OP_FLUSH) {
			f->st.writes_dropped += f->nheld;
			drop_held(f);
			flush_result(f, fq, err);
		}
		return err;
	}
	switch (io->op) {
	case SN_OP_READ:
		if (f->map) { /* the CPU's view: held writes and stores never persisted */
			memcpy(io->buf, f->map + io->offset, io->len);
		} else {
			err = sn_queue_pread(iq, io->buf, io->len, io->offset);
			if (err)
				return err;
			overlay(f, io);
		}
		if (chance(f, f->flip_prob)) {
			uint64_t bit = rnd(f) % ((uint64_t)io->len * 8);

			((unsigned char *)io->buf)[bit / 8] ^= (unsigned char)(1u << (bit % 8));
			f->st.bits_flipped++;
		}
		return io->len;
	case SN_OP_WRITE:
		if (f->map)
			memcpy(f->map + io->offset, io->buf, io->len);
		if (io->flags & SN_IO_FUA) {
			struct sn_io w = *io;

			w.user_data = 0;
			/* Durable now; held too, so replay keeps it after older held writes. */
			err = sn_queue_pwrite(iq, io->buf, io->len, io->offset);
			if (!err)
				err = sn_queue_flush(iq);
			if (!err)
				err = hold(f, &w, 1);
			if (!err)
				err = flush_result(f, fq, 0);
			return err ? err : (int64_t)io->len;
		}
		err = hold(f, io, 0);
		return err ? err : (int64_t)io->len;
	case SN_OP_DISCARD:
		if (f->map)
			memset(f->map + io->offset, 0, io->len);
		err = hold(f, io, 0);
		return err ? err : (int64_t)io->len;
	default:
		return flush_result(f, fq, write_back(f, iq));
	}
}

static int fault_submit(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	struct fault_dev *f = (struct fault_dev *)q->dev;
	struct fault_queue *fq = (struct fault_queue *)q;

	for (unsigned i = 0; i < n; i++) {
		int64_t res;

		if (f->delay_us)
			usleep((useconds_t)f->delay_us);
		pthread_mutex_lock(&f->lock);
		res = run_one(f, fq, &ios[i]);
		if (getenv("SN_FAULT_TRACE"))
			fprintf(stderr,
			        "IO %llu q %p op %d off %llu len %u flags %x -> %lld nheld %u\n",
			        (unsigned long long)f->st.ios, (void *)q, ios[i].op,
			        (unsigned long long)ios[i].offset, ios[i].len, ios[i].flags,
			        (long long)res, f->nheld);
		pthread_mutex_unlock(&f->lock);
		sn__queue_complete(q, ios[i].user_data, res);
	}
	return (int)n;
}

static int fault_map(struct sn_dev *dev, void **basep)
{
	struct fault_dev *f = (struct fault_dev *)dev;

	if (!f->map)
		return sn__err(-ENOTSUP, "fault: not byte-addressable (open it with bytes=1)");
	*basep = f->map;
	return 0;
}

/* bytes=1: the range's cache lines reach the medium. Counts as a request (a flush, for
 * crash_at, eio_at and fail_ops). */
static int fault_persist(struct sn_dev *dev, const void *addr, size_t len)
{
	struct fault_dev *f = (struct fault_dev *)dev;
	uint64_t cap = dev->info.capacity_bytes,
	         off = (uint64_t)((const unsigned char *)addr - f->map);
	uint64_t lo = off & ~63ull, hi = (off + len + 63) & ~63ull;
	struct sn_io io = { .op = SN_OP_FLUSH };
	uint64_t n;
	int err = 0;

	if (!f->map)
		return -ENOTSUP;
	if (hi > cap)
		hi = cap;
	pthread_mutex_lock(&f->lock);
	n = ++f->st.ios;
	f->st.persists++;
	if (f->crash_at && n == f->crash_at && !f->crashed)
		crash(f, f->pq);
	if (f->crashed)
		err = -EIO;
	else
		err = injected(f, &io, n);
	for (uint64_t o = lo; !err && o < hi; o += 1u << 20)
		err = sn_queue_pwrite(f->pq, f->map + o,
		                      hi - o < (1u << 20) ? (uint32_t)(hi - o) : 1u << 20, o);
	pthread_mutex_unlock(&f->lock);
	return err;
}

static int fault_ctl(struct sn_dev *dev, int op, void *arg)
{
	struct fault_dev *f = (struct fault_dev *)dev;
	struct sn_queue *iq;
	int err = 0;

	switch (op) {
	case SN_CTL_FAULT_CRASH:
		/* A queue of this thread's own: the caller may own none. */
		err = sn_queue_create(f->inner, 4, &iq);
		if (err)
			return err;
		pthread_mutex_lock(&f->lock);
		if (!f->crashed)
			err = crash(f, iq);
		pthread_mutex_unlock(&f->lock);
		sn_queue_destroy(iq);
		return err;
	case SN_CTL_FAULT_STATS:
		pthread_mutex_lock(&f->lock);
		f->st.pending_writes = f->nheld;
		*(struct sn_fault_stats *)arg = f->st;
		pthread_mutex_unlock(&f->lock);
		return 0;
	default:
		return sn__err(-ENOTSUP, "fault: unknown control op 0x%x", op);
	}
}

const struct sn_engine sn_engine_fault = {
	.version = SN_ENGINE_V1,
	.name = "fault",
	.summary = "wraps a device: simulated power loss, EIO/ENOSPC, bit flips, latency",
	.options = fault_options,
	.dev_size = sizeof(struct fault_dev),
	.queue_size = sizeof(struct fault_queue),
	.open = fault_open,
	.close = fault_close,
	.queue_init = fault_queue_init,
	.queue_fini = fault_queue_fini,
	.submit = fault_submit,
	.map = fault_map,
	.persist = fault_persist,
	.ctl = fault_ctl,
};
