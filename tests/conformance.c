/* SPDX-License-Identifier: MIT */
/*
 * conformance.c — the checks every engine must pass, whatever moves its bytes: data
 * written is read back byte for byte, every started request completes exactly once,
 * back-pressure never drops, bad requests are refused before anything is submitted
 * (and leave the device untouched), and each capability bit in sn_dev_info is honest.
 * A case gets a device freshly opened from the URI; see conformance.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "conformance.h"
#include "test.h"
#include "util/uri.h"

#define MAX_REQS 1024
#define TAG      0xfeed000000000000ull /* user_data = TAG | index: the high bits must survive */

static uint64_t rup(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static uint64_t rdown(uint64_t x, uint64_t a)
{
	return x / a * a;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static const char *op_name(unsigned op)
{
	static const char *const names[] = { "read", "write", "flush", "discard" };

	return op < 4 ? names[op] : "bad-op";
}

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The byte at device offset x depends on x and seed only, so any slice can be checked. */
static uint64_t pattern_word(uint64_t x, uint64_t seed)
{
	return mix((x >> 3) ^ (seed * 0x100000001b3ull));
}

void conf_fill(void *buf, uint64_t len, uint64_t off, uint64_t seed)
{
	unsigned char *b = buf;
	uint64_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		b[i] = (unsigned char)(pattern_word(off + i, seed) >> (((off + i) & 7) * 8));
	for (; i + 8 <= len; i += 8) {
		uint64_t w = pattern_word(off + i, seed);

		memcpy(b + i, &w, 8); /* little-endian: byte k of the word is at x + k */
	}
	for (; i < len; i++)
		b[i] = (unsigned char)(pattern_word(off + i, seed) >> (((off + i) & 7) * 8));
}

int conf_check(const void *buf, uint64_t len, uint64_t off, uint64_t seed)
{
	const unsigned char *b = buf;

	for (uint64_t i = 0; i < len; i++) {
		unsigned char want =
		        (unsigned char)(pattern_word(off + i, seed) >> (((off + i) & 7) * 8));

		if (b[i] != want) {
			printf("    data differs at device offset %llu (byte %llu of [%llu, "
			       "+%llu)): "
			       "0x%02x, expected 0x%02x\n",
			       (unsigned long long)(off + i), (unsigned long long)i,
			       (unsigned long long)off, (unsigned long long)len, b[i], want);
			return T_FAIL;
		}
	}
	return T_PASS;
}

int64_t conf_io(struct sn_queue *q, uint8_t op, uint8_t flags, void *buf, uint32_t len,
                uint64_t off)
{
	const uint64_t tag = 0x5eed5eed5eed5eedull;
	struct sn_cqe cqe;
	struct sn_io io;
	int r;

	sn_io_prep(&io, op, buf, len, off, tag);
	io.flags = flags;
	r = sn_queue_submit(q, &io, 1);
	if (r != 1)
		return r < 0 ? r : -EPROTO;
	r = sn_queue_reap(q, &cqe, 1, 1);
	if (r != 1) {
		printf("    sn_queue_reap(min_wait 1) returned %d\n", r);
		return r < 0 ? r : -EPROTO;
	}
	if (cqe.user_data != tag) {
		printf("    completion carries user_data 0x%llx, expected 0x%llx\n",
		       (unsigned long long)cqe.user_data, (unsigned long long)tag);
		return -EPROTO;
	}
	return cqe.res;
}

/* One request, done and checked: res must be len (0 for a flush). */
#define ASSERT_IO(q, op, flags, buf, len, off)                                                \
	do {                                                                                  \
		uint64_t l_ = (len), o_ = (off);                                              \
		int64_t res_ = conf_io((q), (op), (flags), (buf), (uint32_t)l_, o_);          \
		int64_t want_ = (op) == SN_OP_FLUSH ? 0 : (int64_t)l_;                        \
		if (res_ != want_)                                                            \
			T_FAILED("%s of %llu bytes at %llu: res %lld (%s), expected %lld",    \
			         op_name(op), (unsigned long long)l_, (unsigned long long)o_, \
			         (long long)res_, sn_errname((int)res_), (long long)want_);   \
	} while (0)

/* A request that sn_queue_submit() must refuse with err, naming the rule. */
#define ASSERT_REFUSED(q, io, err, why)                           \
	do {                                                      \
		unsigned infl_ = sn_queue_inflight(q);            \
		ASSERT_ERR(sn_queue_submit((q), (io), 1), (err)); \
		ASSERT_STR_HAS(sn_errmsg(), (why));               \
		ASSERT_EQ(sn_queue_inflight(q), infl_);           \
	} while (0)

/*
 * Start ios[started..n) on q as room allows (ios[0..started) are in flight already) and
 * reap until all completed. Every user_data (TAG | i) must come back exactly once, with
 * res = len (0 for a flush).
 */
static int run_from(struct sn_queue *q, const struct sn_io *ios, unsigned n, unsigned started)
{
	unsigned char seen[MAX_REQS] = { 0 };
	unsigned next = started, done = 0;
	struct sn_cqe cqes[7]; /* fewer than the queue holds: reap in parts */

	ASSERT_LE(n, MAX_REQS);
	while (done < n) {
		int r;

		if (next < n) {
			r = sn_queue_submit(q, ios + next, n - next);
			if (r > 0)
				next += (unsigned)r;
			else if (r != -EAGAIN)
				T_FAILED("submit of request %u (%s at %llu): %d (%s)", next,
				         op_name(ios[next].op),
				         (unsigned long long)ios[next].offset, r, sn_errname(r));
		}
		r = sn_queue_reap(q, cqes, 7, 1);
		if (r < 0)
			T_FAILED("sn_queue_reap: %d (%s)", r, sn_errname(r));
		if (r == 0 && sn_queue_inflight(q))
			T_FAILED("reap with min_wait 1 returned nothing while %u in flight",
			         sn_queue_inflight(q));
		for (int k = 0; k < r; k++) {
			uint64_t i = cqes[k].user_data & ~TAG;
			int64_t want;

			if ((cqes[k].user_data & TAG) != TAG || i >= n)
				T_FAILED("completion with unknown user_data 0x%llx",
				         (unsigned long long)cqes[k].user_data);
			if (seen[i]++)
				T_FAILED("request %llu completed twice", (unsigned long long)i);
			if (i >= next)
				T_FAILED("request %llu completed but was never started",
				         (unsigned long long)i);
			want = ios[i].op == SN_OP_FLUSH ? 0 : (int64_t)ios[i].len;
			if (cqes[k].res != want)
				T_FAILED("%s of %u bytes at %llu: res %lld (%s), expected %lld",
				         op_name(ios[i].op), ios[i].len,
				         (unsigned long long)ios[i].offset, (long long)cqes[k].res,
				         sn_errname((int)cqes[k].res), (long long)want);
			done++;
		}
	}
	ASSERT_EQ(sn_queue_inflight(q), 0);
	return T_PASS;
}

static int run_all(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	return run_from(q, ios, n, 0);
}

static char *scheme_of(const char *uri, char *out, size_t len)
{
	snprintf(out, len, "%.*s", (int)strcspn(uri, ":"), uri);
	return out;
}

static int case_info(struct conf *c)
{
	const struct sn_dev_info *in = &c->info;
	struct sn_dev_info again;
	char scheme[32];
	struct sn_uri u;
	uint64_t size = 0;
	int direct = 0;

	printf("    %s: engine %s, %llu bytes, block %u, align %u/%u, depth <= %u, caps 0x%x, "
	       "features \"%s\"%s%s\n",
	       c->uri, in->engine, (unsigned long long)in->capacity_bytes, in->block_size,
	       in->offset_align, in->mem_align, in->max_queue_depth, in->caps, in->features,
	       *in->note ? ", note: " : "", in->note);
	ASSERT_TRUE(in->engine && *in->engine);
	scheme_of(c->uri, scheme, sizeof(scheme));
	if (strcmp(scheme, "auto") == 0) {
		ASSERT_TRUE(strcmp(in->engine, "auto") != 0);
		ASSERT_STR_HAS(in->note, "auto: chose");
	} else {
		ASSERT_EQ(strcmp(in->engine, scheme), 0);
	}
	ASSERT_TRUE(in->path && in->features && in->note);
	ASSERT_TRUE(in->flush_does && *in->flush_does);
	ASSERT_TRUE(in->capacity_bytes > 0);
	ASSERT_TRUE(in->block_size && !(in->block_size & (in->block_size - 1)));
	ASSERT_TRUE(in->offset_align && !(in->offset_align & (in->offset_align - 1)));
	ASSERT_TRUE(in->mem_align && !(in->mem_align & (in->mem_align - 1)));
	ASSERT_EQ(in->capacity_bytes % in->offset_align, 0);
	ASSERT_GE(in->max_queue_depth, 1);
	ASSERT_GE(in->max_transfer_bytes, in->offset_align);
	ASSERT_EQ(in->max_transfer_bytes % in->offset_align, 0);

	ASSERT_OK(sn__uri_parse(c->uri, &u));
	if (strcmp(scheme, "auto") != 0 && strcmp(in->path, u.path) != 0) {
		sn__uri_free(&u);
		T_FAILED("info.path \"%s\" is not the URI's path", in->path);
	}
	if (sn__uri_size(&u, "size", &size) || sn__uri_bool(&u, "direct", &direct)) {
		sn__uri_free(&u);
		T_FAILED("URI %s does not parse", c->uri);
	}
	sn__uri_free(&u);
	/* size= is the capacity, less what direct I/O alignment cuts off. */
	if (size && !(in->caps & SN_CAP_BLOCKDEV))
		ASSERT_EQ(in->capacity_bytes, rdown(size, in->offset_align));
	if (direct)
		ASSERT_TRUE(in->caps & SN_CAP_DIRECT);
	if (in->caps & SN_CAP_BYTE_ADDR)
		ASSERT_EQ(in->offset_align, 1);

	sn_dev_info(c->dev, &again);
	ASSERT_EQ(memcmp(in, &again, sizeof(again)), 0);
	ASSERT_TRUE(sn_queue_dev(c->q) == c->dev);
	ASSERT_EQ(sn_queue_inflight(c->q), 0);
	return T_PASS;
}

static int case_read_after_write(struct conf *c)
{
	static const uint32_t sizes[] = {
		1, 3, 511, 512, 4096, 4097, 12288, 65536, 1 << 20, 4 << 20
	};
	uint64_t cap = c->info.capacity_bytes, a = c->align, prev = 0, seed = 1;
	uint64_t maxlen = rup(4 << 20, a), B = rup(4096, a), X;
	unsigned char *wb, *rb;

	if (maxlen > c->info.max_transfer_bytes)
		maxlen = rdown(c->info.max_transfer_bytes, a);
	ASSERT_OK(sn_queue_buf_alloc(c->q, maxlen, (void **)&wb));
	ASSERT_OK(sn_queue_buf_alloc(c->q, maxlen, (void **)&rb));
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		uint64_t len = rup(sizes[s], a);
		uint64_t offs[] = { 0,        a, rup(4095, a), rdown(12345, a), rdown(cap / 3, a),
			            cap - len };

		if (len == prev || len > maxlen || len > cap)
			continue;
		prev = len;
		for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
			uint64_t off = offs[o] > cap - len ? cap - len : offs[o];

			seed++;
			conf_fill(wb, len, off, seed);
			ASSERT_IO(c->q, SN_OP_WRITE, 0, wb, len, off);
			memset(rb, 0xa5, len);
			ASSERT_IO(c->q, SN_OP_READ, 0, rb, len, off);
			if (c->data && conf_check(rb, len, off, seed))
				T_FAILED("read-after-write of %llu bytes at %llu",
				         (unsigned long long)len, (unsigned long long)off);
		}
	}
	if (!c->data) {
		printf("    %s moves no data: lengths checked, contents not\n", c->info.engine);
		return T_PASS;
	}

	/* A small write changes exactly its own bytes, not its neighbours'. */
	X = rdown(cap / 2, B);
	conf_fill(wb, 3 * B, X - B, 1000);
	ASSERT_IO(c->q, SN_OP_WRITE, 0, wb, 3 * B, X - B);
	conf_fill(wb, a, X, 1001);
	ASSERT_IO(c->q, SN_OP_WRITE, 0, wb, a, X);
	ASSERT_IO(c->q, SN_OP_READ, 0, rb, 3 * B, X - B);
	ASSERT_OK(conf_check(rb, B, X - B, 1000));
	ASSERT_OK(conf_check(rb + B, a, X, 1001));
	ASSERT_OK(conf_check(rb + B + a, 2 * B - a, X + a, 1000));
	return T_PASS;
}

static int foreign_io(struct conf *c, unsigned char *wb, unsigned char *rb, uint64_t len,
                      uint64_t off, uint64_t seed)
{
	conf_fill(wb, len, off, seed);
	ASSERT_IO(c->q, SN_OP_WRITE, 0, wb, len, off);
	memset(rb, 0, len);
	ASSERT_IO(c->q, SN_OP_READ, 0, rb, len, off);
	if (c->data)
		ASSERT_OK(conf_check(rb, len, off, seed));
	return T_PASS;
}

static int case_buffers(struct conf *c)
{
	uint64_t a = c->align, ma = max64(c->info.mem_align, sizeof(void *));
	uint64_t len = rup(65536, a), off = rdown(c->info.capacity_bytes / 5, a);
	unsigned char *big, *other, *heap = NULL;
	int r;

	/* A slice of an allocated buffer, at an offset that is not a page boundary. */
	ASSERT_OK(sn_queue_buf_alloc(c->q, 3 * len + 2 * ma, (void **)&big));
	ASSERT_EQ(foreign_io(c, big + ma, big + len + 2 * ma, len, off, 31), T_PASS);

	/* A buffer from another queue of the same device. */
	ASSERT_OK(sn_queue_create(c->dev, 4, &c->q2));
	ASSERT_OK(sn_queue_buf_alloc(c->q2, 2 * len, (void **)&other));
	ASSERT_EQ(foreign_io(c, other, other + len, len, off + len, 32), T_PASS);

	/* Plain heap memory that the engine never saw. */
	if (posix_memalign((void **)&heap, ma, 2 * len))
		SKIP("out of memory");
	r = foreign_io(c, heap, heap + len, len, off + 2 * len, 33);
	free(heap);
	return r;
}

static int case_batch(struct conf *c)
{
	struct sn_io ios[64];
	uint64_t cap = c->info.capacity_bytes, len = rup(4096, c->align), base, stride;
	unsigned n = c->depth < 64 ? c->depth : 64;
	unsigned char *wb, *rb;

	stride = 3 * len; /* gaps between requests catch a request landing on a neighbour */
	if ((uint64_t)n * stride > cap)
		SKIP("device too small for %u requests", n);
	base = rdown(cap / 4, c->align);
	if (base + (uint64_t)n * stride > cap)
		base = 0;
	ASSERT_OK(sn_queue_buf_alloc(c->q, n * len, (void **)&wb));
	ASSERT_OK(sn_queue_buf_alloc(c->q, n * len, (void **)&rb));
	for (unsigned i = 0; i < n; i++) {
		conf_fill(wb + i * len, len, base + i * stride, 2000 + i);
		sn_io_write(&ios[i], wb + i * len, (uint32_t)len, base + i * stride, TAG | i);
	}
	/* The queue is empty and deep enough: one call starts the whole batch. */
	ASSERT_EQ(sn_queue_submit(c->q, ios, n), n);
	ASSERT_EQ(sn_queue_inflight(c->q), n);
	ASSERT_EQ(run_from(c->q, ios, n, n), T_PASS);
	for (unsigned i = 0; i < n; i++)
		sn_io_read(&ios[i], rb + i * len, (uint32_t)len, base + i * stride, TAG | i);
	ASSERT_EQ(sn_queue_submit(c->q, ios, n), n);
	ASSERT_EQ(run_from(c->q, ios, n, n), T_PASS);
	for (unsigned i = 0; i < n && c->data; i++)
		if (conf_check(rb + i * len, len, base + i * stride, 2000 + i))
			T_FAILED("batched read %u of %u", i, n);
	return T_PASS;
}

static int case_flush(struct conf *c)
{
	uint64_t len = rup(4096, c->align), off = rdown(c->info.capacity_bytes / 7, c->align);
	struct sn_io ios[3];
	unsigned char *b;

	ASSERT_OK(sn_queue_flush(c->q));
	ASSERT_OK(sn_queue_buf_alloc(c->q, 2 * len, (void **)&b));
	conf_fill(b, 2 * len, off, 77);
	ASSERT_IO(c->q, SN_OP_WRITE, 0, b, len, off);
	ASSERT_IO(c->q, SN_OP_FLUSH, 0, NULL, 0, 0);

	/* offset, len and buf of a flush are ignored. */
	sn_io_flush(&ios[0], TAG);
	ios[0].len = 4096;
	ios[0].offset = c->info.capacity_bytes + 4096;
	ASSERT_EQ(run_all(c->q, ios, 1), T_PASS);

	/* Batched with writes: each completes once; the flush with 0. */
	sn_io_write(&ios[0], b, (uint32_t)len, off, TAG | 0);
	sn_io_write(&ios[1], b + len, (uint32_t)len, off + len, TAG | 1);
	sn_io_flush(&ios[2], TAG | 2);
	ASSERT_EQ(run_all(c->q, ios, 3), T_PASS);
	ASSERT_OK(sn_queue_flush(c->q));
	return T_PASS;
}

static int case_fua(struct conf *c)
{
	uint64_t len = rup(8192, c->align), off = rdown(c->info.capacity_bytes / 9, c->align);
	unsigned char *b;
	struct sn_io io;
	int r;

	ASSERT_OK(sn_queue_buf_alloc(c->q, 2 * len, (void **)&b));
	conf_fill(b, len, off, 88);
	sn_io_write(&io, b, (uint32_t)len, off, TAG);
	io.flags = SN_IO_FUA;
	r = sn_queue_submit(c->q, &io, 1);
	if (r == -ENOTSUP && !(c->info.caps & SN_CAP_FUA)) {
		ASSERT_TRUE(*sn_errmsg());
		printf("    FUA refused with -ENOTSUP (no SN_CAP_FUA): \"%s\"\n", sn_errmsg());
		return T_PASS;
	}
	ASSERT_EQ(r, 1);
	ASSERT_EQ(run_from(c->q, &io, 1, 1), T_PASS);
	ASSERT_IO(c->q, SN_OP_READ, 0, b + len, len, off);
	if (c->data)
		ASSERT_OK(conf_check(b + len, len, off, 88));
	/* FUA is for writes only. */
	sn_io_read(&io, b, (uint32_t)len, off, TAG);
	io.flags = SN_IO_FUA;
	ASSERT_REFUSED(c->q, &io, -EINVAL, "FUA");
	return T_PASS;
}

static int case_reopen(struct conf *c)
{
	uint64_t cap = c->info.capacity_bytes, a = c->align, len = rup(65536, a);
	uint64_t offs[] = { rup(3 * 4096, a), rdown(cap / 2 + 12345, a), cap - len };
	struct sn_dev_info in;
	unsigned char *b;
	int err;

	if (!(c->info.caps & SN_CAP_PERSISTS))
		SKIP("engine %s does not persist data (no SN_CAP_PERSISTS)", c->info.engine);
	ASSERT_OK(sn_queue_buf_alloc(c->q, len, (void **)&b));
	for (unsigned i = 0; i < 3; i++) {
		conf_fill(b, len, offs[i], 4242 + i);
		ASSERT_IO(c->q, SN_OP_WRITE, 0, b, len, offs[i]);
	}
	ASSERT_OK(sn_queue_flush(c->q));
	sn_queue_destroy(c->q);
	c->q = NULL;
	sn_dev_close(c->dev);
	c->dev = NULL;

	err = sn_dev_open(c->uri, &c->dev);
	if (err)
		T_FAILED("reopen %s: %d (%s)", c->uri, err, sn_errname(err));
	sn_dev_info(c->dev, &in);
	ASSERT_EQ(in.capacity_bytes, cap);
	ASSERT_OK(sn_queue_create(c->dev, 4, &c->q));
	ASSERT_OK(sn_queue_buf_alloc(c->q, len, (void **)&b));
	for (unsigned i = 0; i < 3; i++) {
		ASSERT_IO(c->q, SN_OP_READ, 0, b, len, offs[i]);
		if (conf_check(b, len, offs[i], 4242 + i))
			T_FAILED("data written before close is not there after reopen");
	}
	return T_PASS;
}

struct thread_arg {
	struct conf *c;
	pthread_t tid;
	unsigned idx;
	uint64_t base, span;
	int r;
};

#define THREADS     4
#define THREAD_REQS 48

static int thread_body(struct thread_arg *t, struct sn_queue *q)
{
	struct sn_io ios[THREAD_REQS];
	uint64_t len = rup(16384, t->c->align), stride = rdown(t->span / THREAD_REQS, t->c->align);
	unsigned char *wb, *rb;

	if (stride < len)
		T_FAILED("thread %u: its range of %llu bytes is too small", t->idx,
		         (unsigned long long)t->span);
	ASSERT_OK(sn_queue_buf_alloc(q, THREAD_REQS * len, (void **)&wb));
	ASSERT_OK(sn_queue_buf_alloc(q, THREAD_REQS * len, (void **)&rb));
	for (unsigned i = 0; i < THREAD_REQS; i++) {
		uint64_t off = t->base + i * stride;

		conf_fill(wb + i * len, len, off, 5000 + t->idx * 100 + i);
		sn_io_write(&ios[i], wb + i * len, (uint32_t)len, off, TAG | i);
	}
	ASSERT_EQ(run_all(q, ios, THREAD_REQS), T_PASS);
	for (unsigned i = 0; i < THREAD_REQS; i++)
		sn_io_read(&ios[i], rb + i * len, (uint32_t)len, t->base + i * stride, TAG | i);
	ASSERT_EQ(run_all(q, ios, THREAD_REQS), T_PASS);
	for (unsigned i = 0; i < THREAD_REQS && t->c->data; i++)
		if (conf_check(rb + i * len, len, t->base + i * stride, 5000 + t->idx * 100 + i))
			T_FAILED("thread %u, request %u", t->idx, i);
	return T_PASS;
}

static void *thread_main(void *arg)
{
	struct thread_arg *t = arg;
	struct sn_queue *q;
	int err = sn_queue_create(t->c->dev, 16, &q);

	if (err) {
		printf("    thread %u: sn_queue_create: %s: %s\n", t->idx, sn_errname(err),
		       sn_errmsg());
		t->r = T_FAIL;
		return NULL;
	}
	t->r = thread_body(t, q);
	sn_queue_destroy(q);
	return NULL;
}

static int case_threads(struct conf *c)
{
	struct thread_arg t[THREADS];
	uint64_t span = rdown(c->info.capacity_bytes / THREADS, c->align);
	int r = T_PASS;

	for (unsigned i = 0; i < THREADS; i++) {
		t[i] = (struct thread_arg){ .c = c, .idx = i, .base = i * span, .span = span };
		if (pthread_create(&t[i].tid, NULL, thread_main, &t[i]))
			T_FAILED("pthread_create %u", i);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(t[i].tid, NULL);
		if (t[i].r != T_PASS)
			r = T_FAIL;
	}
	return r;
}

static int case_misaligned(struct conf *c)
{
	uint64_t a = c->align, ma = c->info.mem_align, B = rup(4096, a);
	struct sn_io io, ios[2];
	unsigned char *b;

	if (a == 1 && ma == 1)
		SKIP("%s takes any offset, length and buffer address", c->uri);
	ASSERT_OK(sn_queue_buf_alloc(c->q, 2 * B + ma, (void **)&b));
	if (a > 1) {
		sn_io_read(&io, b, (uint32_t)B, a / 2, TAG);
		ASSERT_REFUSED(c->q, &io, -EINVAL, "align");
		sn_io_write(&io, b, (uint32_t)B, B + a / 2, TAG);
		ASSERT_REFUSED(c->q, &io, -EINVAL, "align");
		sn_io_write(&io, b, (uint32_t)(B + a / 2), 0, TAG);
		ASSERT_REFUSED(c->q, &io, -EINVAL, "align");
		sn_io_read(&io, b, (uint32_t)(a / 2), 0, TAG);
		ASSERT_REFUSED(c->q, &io, -EINVAL, "align");
		ASSERT_ERR(sn_queue_pread(c->q, b, (uint32_t)B, a / 2), -EINVAL);
		ASSERT_STR_HAS(sn_errmsg(), "align");
		ASSERT_ERR(sn_queue_pwrite(c->q, b, (uint32_t)(a / 2), 0), -EINVAL);
		ASSERT_STR_HAS(sn_errmsg(), "align");
		if (c->info.caps & SN_CAP_DISCARD) {
			sn_io_discard(&io, (uint32_t)B, a / 2, TAG);
			ASSERT_REFUSED(c->q, &io, -EINVAL, "align");
		}
	}
	if (ma > 1) {
		sn_io_read(&io, b + ma / 2, (uint32_t)B, 0, TAG);
		ASSERT_REFUSED(c->q, &io, -EINVAL, "align");
		sn_io_write(&io, b + 1, (uint32_t)B, 0, TAG);
		ASSERT_REFUSED(c->q, &io, -EINVAL, "align");
		ASSERT_ERR(sn_queue_pread(c->q, b + ma / 2, (uint32_t)B, 0), -EINVAL);
		ASSERT_STR_HAS(sn_errmsg(), "align");
	}
	/* In a batch the good request before the bad one starts; the bad one then fails. */
	sn_io_read(&ios[0], b, (uint32_t)B, 0, TAG | 0);
	if (a > 1)
		sn_io_read(&ios[1], b + B, (uint32_t)B, a / 2, TAG | 1);
	else
		sn_io_read(&ios[1], b + B + ma / 2, (uint32_t)B, 0, TAG | 1);
	ASSERT_EQ(sn_queue_submit(c->q, ios, 2), 1);
	ASSERT_REFUSED(c->q, &ios[1], -EINVAL, "align");
	ASSERT_EQ(sn_queue_inflight(c->q), 1);
	ASSERT_EQ(run_from(c->q, ios, 1, 1), T_PASS);
	return T_PASS;
}

/* The file's size, or -1 when the device is not a regular file. */
static long long file_size(const struct conf *c)
{
	struct stat st;

	if (!*c->info.path || stat(c->info.path, &st) || !S_ISREG(st.st_mode))
		return -1;
	return (long long)st.st_size;
}

static int case_out_of_range(struct conf *c)
{
	uint64_t cap = c->info.capacity_bytes, a = c->align, B = rup(4096, a);
	uint64_t big_len = rup(cap + 1, a), far = rdown(UINT64_MAX, a);
	long long size0 = file_size(c);
	unsigned char *b, *big;
	struct sn_io io;

	if (2 * B > cap)
		SKIP("device smaller than two blocks");
	ASSERT_OK(sn_queue_buf_alloc(c->q, 4 * B, (void **)&b));
	/* Sentinels: the last two blocks. Writing exactly up to the end is allowed. */
	conf_fill(b, 2 * B, cap - 2 * B, 0x5e);
	ASSERT_IO(c->q, SN_OP_WRITE, 0, b, 2 * B, cap - 2 * B);

	sn_io_write(&io, b, (uint32_t)B, cap, TAG);
	ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
	sn_io_write(&io, b, (uint32_t)(2 * B), cap - B, TAG); /* straddles the end */
	ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
	sn_io_write(&io, b, (uint32_t)a, cap, TAG);
	ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
	sn_io_write(&io, b, (uint32_t)B, cap + B, TAG);
	ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
	/* offset + len wraps around 2^64 to a small number. */
	sn_io_write(&io, b, (uint32_t)B, far, TAG);
	ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
	sn_io_write(&io, b, (uint32_t)B, far - B + a, TAG);
	ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
	sn_io_read(&io, b, (uint32_t)B, cap, TAG);
	ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
	sn_io_read(&io, b, (uint32_t)(2 * B), cap - B, TAG);
	ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
	ASSERT_ERR(sn_queue_pwrite(c->q, b, (uint32_t)B, cap), -ERANGE);
	ASSERT_ERR(sn_queue_pread(c->q, b, (uint32_t)B, cap - B + a), -ERANGE);
	if (c->info.caps & SN_CAP_DISCARD) {
		sn_io_discard(&io, (uint32_t)(2 * B), cap - B, TAG);
		ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
	}
	/* Longer than the whole device, from offset 0 (len - capacity must not wrap). */
	if (big_len <= c->info.max_transfer_bytes) {
		ASSERT_OK(sn_queue_buf_alloc(c->q, big_len, (void **)&big));
		sn_io_write(&io, big, (uint32_t)big_len, 0, TAG);
		ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
		sn_io_read(&io, big, (uint32_t)big_len, 0, TAG);
		ASSERT_REFUSED(c->q, &io, -ERANGE, "past the end");
		sn_queue_buf_free(c->q, big);
	}

	/* Nothing moved: the sentinels are intact and a file did not grow. */
	memset(b, 0, 2 * B);
	ASSERT_IO(c->q, SN_OP_READ, 0, b, 2 * B, cap - 2 * B);
	if (c->data)
		ASSERT_OK(conf_check(b, 2 * B, cap - 2 * B, 0x5e));
	ASSERT_EQ(file_size(c), size0);
	return T_PASS;
}

static int case_zero_length(struct conf *c)
{
	unsigned char *b;
	struct sn_io io;

	ASSERT_OK(sn_queue_buf_alloc(c->q, 4096, (void **)&b));
	sn_io_read(&io, b, 0, 0, TAG);
	ASSERT_REFUSED(c->q, &io, -EINVAL, "zero-length");
	sn_io_write(&io, b, 0, c->align, TAG);
	ASSERT_REFUSED(c->q, &io, -EINVAL, "zero-length");
	if (c->info.caps & SN_CAP_DISCARD) {
		sn_io_discard(&io, 0, 0, TAG);
		ASSERT_REFUSED(c->q, &io, -EINVAL, "zero-length");
	}
	ASSERT_ERR(sn_queue_pread(c->q, b, 0, 0), -EINVAL);
	ASSERT_ERR(sn_queue_pwrite(c->q, b, 0, 0), -EINVAL);
	/* Submitting no requests at all is not an error. */
	ASSERT_EQ(sn_queue_submit(c->q, &io, 0), 0);
	ASSERT_EQ(sn_queue_inflight(c->q), 0);
	return T_PASS;
}

static int case_invalid_requests(struct conf *c)
{
	uint64_t B = rup(4096, c->align);
	struct sn_io io, ios[2];
	unsigned char *b;

	ASSERT_OK(sn_queue_buf_alloc(c->q, 2 * B, (void **)&b));
	sn_io_read(&io, b, (uint32_t)B, 0, TAG);
	io.op = 9;
	ASSERT_REFUSED(c->q, &io, -EINVAL, "opcode");
	sn_io_write(&io, b, (uint32_t)B, 0, TAG);
	io.flags = 0x80;
	ASSERT_REFUSED(c->q, &io, -EINVAL, "flags");
	sn_io_read(&io, b, (uint32_t)B, 0, TAG);
	io.reserved = 1;
	ASSERT_REFUSED(c->q, &io, -EINVAL, "reserved");
	sn_io_write(&io, NULL, (uint32_t)B, 0, TAG);
	ASSERT_REFUSED(c->q, &io, -EINVAL, "NULL");
	sn_io_read(&io, NULL, (uint32_t)B, 0, TAG);
	ASSERT_REFUSED(c->q, &io, -EINVAL, "NULL");
	if (c->info.max_transfer_bytes < UINT32_MAX) {
		sn_io_read(&io, b,
		           (uint32_t)rup((uint64_t)c->info.max_transfer_bytes + 1, c->align), 0,
		           TAG);
		ASSERT_REFUSED(c->q, &io, -EINVAL, "maximum transfer");
	}
	/* A good request ahead of a bad one starts; the call says how many. */
	sn_io_read(&ios[0], b, (uint32_t)B, 0, TAG | 0);
	sn_io_read(&ios[1], b + B, (uint32_t)B, 0, TAG | 1);
	ios[1].op = 200;
	ASSERT_EQ(sn_queue_submit(c->q, ios, 2), 1);
	ASSERT_REFUSED(c->q, &ios[1], -EINVAL, "opcode");
	ASSERT_EQ(run_from(c->q, ios, 1, 1), T_PASS);
	return T_PASS;
}

static int case_queue_depth(struct conf *c)
{
	uint64_t B = rup(4096, c->align), off = rdown(c->info.capacity_bytes / 11, c->align);
	struct sn_queue *q = (struct sn_queue *)&q;
	struct sn_io ios[5];
	unsigned char *b;

	ASSERT_ERR(sn_queue_create(c->dev, 0, &q), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "depth");
	ASSERT_TRUE(q == NULL);
	if (c->info.max_queue_depth < UINT32_MAX) {
		ASSERT_ERR(sn_queue_create(c->dev, c->info.max_queue_depth + 1, &q), -EINVAL);
		ASSERT_STR_HAS(sn_errmsg(), "depth");
		ASSERT_TRUE(q == NULL);
	}
	/* Depth 1: one request at a time, still every one completes. */
	ASSERT_OK(sn_queue_create(c->dev, 1, &c->q2));
	ASSERT_OK(sn_queue_buf_alloc(c->q2, 5 * B, (void **)&b));
	for (unsigned i = 0; i < 5; i++) {
		conf_fill(b + i * B, B, off + i * B, 600 + i);
		sn_io_write(&ios[i], b + i * B, (uint32_t)B, off + i * B, TAG | i);
	}
	ASSERT_EQ(sn_queue_submit(c->q2, ios, 5), 1);
	ASSERT_EQ(run_from(c->q2, ios, 5, 1), T_PASS);
	memset(b, 0, 5 * B);
	for (unsigned i = 0; i < 5; i++)
		ios[i].op = SN_OP_READ;
	ASSERT_EQ(run_all(c->q2, ios, 5), T_PASS);
	for (unsigned i = 0; i < 5 && c->data; i++)
		ASSERT_OK(conf_check(b + i * B, B, off + i * B, 600 + i));
	return T_PASS;
}

static int case_queue_full(struct conf *c)
{
	enum { D = 8, N = D + 5 };
	uint64_t B = rup(4096, c->align), off = rdown(c->info.capacity_bytes / 13, c->align);
	unsigned char seen[3 * D] = { 0 };
	struct sn_io ios[3 * D];
	struct sn_cqe cqe[3 * D];
	unsigned char *b;
	int r, got = 0;

	ASSERT_LE(D, c->info.max_queue_depth);
	ASSERT_OK(sn_queue_create(c->dev, D, &c->q2));
	ASSERT_OK(sn_queue_buf_alloc(c->q2, 3 * D * B, (void **)&b));
	for (unsigned i = 0; i < 3 * D; i++) {
		conf_fill(b + i * B, B, off + i * B, 700 + i);
		sn_io_write(&ios[i], b + i * B, (uint32_t)B, off + i * B, TAG | i);
	}
	/* depth + 5 at once: depth start, then the queue answers -EAGAIN. */
	ASSERT_EQ(sn_queue_submit(c->q2, ios, N), D);
	ASSERT_EQ(sn_queue_inflight(c->q2), D);
	ASSERT_ERR(sn_queue_submit(c->q2, ios + D, N - D), -EAGAIN);
	ASSERT_STR_HAS(sn_errmsg(), "full");
	ASSERT_EQ(sn_queue_inflight(c->q2), D);
	/* Reap three: three slots free, and exactly three more start. */
	ASSERT_EQ(sn_queue_reap(c->q2, cqe, 3, 3), 3);
	ASSERT_EQ(sn_queue_submit(c->q2, ios + D, N - D), 3);
	ASSERT_ERR(sn_queue_submit(c->q2, ios + D + 3, N - D - 3), -EAGAIN);
	got = 3;
	while (got < D + 3) {
		r = sn_queue_reap(c->q2, cqe + got, (unsigned)(3 * D - got), 1);
		ASSERT_GE(r, 1);
		got += r;
	}
	ASSERT_EQ(sn_queue_inflight(c->q2), 0);
	ASSERT_EQ(sn_queue_submit(c->q2, ios + D + 3, N - D - 3), N - D - 3);
	while (got < N) {
		r = sn_queue_reap(c->q2, cqe + got, (unsigned)(3 * D - got), 1);
		ASSERT_GE(r, 1);
		got += r;
	}
	/* Nothing dropped, nothing twice. */
	for (int k = 0; k < got; k++) {
		uint64_t i = cqe[k].user_data & ~TAG;

		ASSERT_TRUE((cqe[k].user_data & TAG) == TAG && i < N);
		ASSERT_EQ(seen[i]++, 0);
		ASSERT_EQ(cqe[k].res, B);
	}
	/* Waiting for more than is in flight returns at once. */
	ASSERT_EQ(sn_queue_reap(c->q2, cqe, 4, 4), 0);
	ASSERT_EQ(sn_queue_inflight(c->q2), 0);

	/* Three times the depth, through back-pressure, then read it all back. */
	ASSERT_EQ(run_all(c->q2, ios, 3 * D), T_PASS);
	memset(b, 0, 3 * D * B);
	for (unsigned i = 0; i < 3 * D; i++)
		ios[i].op = SN_OP_READ;
	ASSERT_EQ(run_all(c->q2, ios, 3 * D), T_PASS);
	for (unsigned i = 0; i < 3 * D && c->data; i++)
		ASSERT_OK(conf_check(b + i * B, B, off + i * B, 700 + i));
	return T_PASS;
}

static int case_blocking_mixed(struct conf *c)
{
	enum { D = 8 };
	uint64_t B = rup(4096, c->align), off = rdown(c->info.capacity_bytes / 17, c->align);
	uint64_t other = off + (D + 2) * B;
	struct sn_io ios[D];
	unsigned char *b, *x;

	ASSERT_OK(sn_queue_create(c->dev, D, &c->q2));
	ASSERT_OK(sn_queue_buf_alloc(c->q2, D * B, (void **)&b));
	ASSERT_OK(sn_queue_buf_alloc(c->q2, B, (void **)&x));
	for (unsigned i = 0; i < D; i++) {
		conf_fill(b + i * B, B, off + i * B, 800 + i);
		sn_io_write(&ios[i], b + i * B, (uint32_t)B, off + i * B, TAG | i);
	}
	/* Four writes in flight, then blocking calls: the four stay for the next reap. */
	ASSERT_EQ(sn_queue_submit(c->q2, ios, 4), 4);
	conf_fill(x, B, other, 899);
	ASSERT_OK(sn_queue_pwrite(c->q2, x, (uint32_t)B, other));
	ASSERT_EQ(sn_queue_inflight(c->q2), 4);
	memset(x, 0, B);
	ASSERT_OK(sn_queue_pread(c->q2, x, (uint32_t)B, other));
	if (c->data)
		ASSERT_OK(conf_check(x, B, other, 899));
	ASSERT_OK(sn_queue_flush(c->q2));
	ASSERT_EQ(sn_queue_inflight(c->q2), 4);
	ASSERT_EQ(run_from(c->q2, ios, 4, 4), T_PASS);

	/* A full queue still takes a blocking call. */
	ASSERT_EQ(sn_queue_submit(c->q2, ios + 4, D - 4), D - 4);
	for (unsigned i = 0; i < 4; i++)
		ios[i].op = SN_OP_READ;
	memset(b, 0, 4 * B);
	ASSERT_EQ(sn_queue_submit(c->q2, ios, 4), 4);
	ASSERT_EQ(sn_queue_inflight(c->q2), D);
	memset(x, 0, B);
	ASSERT_OK(sn_queue_pread(c->q2, x, (uint32_t)B, other));
	if (c->data)
		ASSERT_OK(conf_check(x, B, other, 899));
	ASSERT_EQ(sn_queue_inflight(c->q2), D);
	ASSERT_ERR(sn_queue_submit(c->q2, ios, 1), -EAGAIN);
	ASSERT_EQ(run_from(c->q2, ios, D, D), T_PASS);
	for (unsigned i = 0; i < 4 && c->data; i++)
		ASSERT_OK(conf_check(b + i * B, B, off + i * B, 800 + i));
	return T_PASS;
}

static int case_discard(struct conf *c)
{
	uint64_t G = max64(65536, c->align), off = rdown(c->info.capacity_bytes / 2, G);
	unsigned char *b;
	struct sn_io io;

	if (!(c->info.caps & SN_CAP_DISCARD)) {
		sn_io_discard(&io, (uint32_t)G, 0, TAG);
		ASSERT_REFUSED(c->q, &io, -ENOTSUP, "discard");
		printf("    no SN_CAP_DISCARD: refused with -ENOTSUP\n");
		return T_PASS;
	}
	if (off + 4 * G > c->info.capacity_bytes)
		SKIP("device too small");
	ASSERT_OK(sn_queue_buf_alloc(c->q, 4 * G, (void **)&b));
	conf_fill(b, 4 * G, off, 900);
	ASSERT_IO(c->q, SN_OP_WRITE, 0, b, 4 * G, off);
	ASSERT_IO(c->q, SN_OP_DISCARD, 0, NULL, 2 * G, off + G);
	/* The discarded middle reads as anything; its neighbours are intact. */
	memset(b, 0xa5, 4 * G);
	ASSERT_IO(c->q, SN_OP_READ, 0, b, 4 * G, off);
	if (c->data) {
		ASSERT_OK(conf_check(b, G, off, 900));
		ASSERT_OK(conf_check(b + 3 * G, G, off + 3 * G, 900));
	}
	/* And the range takes new data. */
	conf_fill(b, 2 * G, off + G, 901);
	ASSERT_IO(c->q, SN_OP_WRITE, 0, b, 2 * G, off + G);
	memset(b, 0, 2 * G);
	ASSERT_IO(c->q, SN_OP_READ, 0, b, 2 * G, off + G);
	if (c->data)
		ASSERT_OK(conf_check(b, 2 * G, off + G, 901));
	return T_PASS;
}

static int case_buf_alloc(struct conf *c)
{
	static const size_t sizes[] = { 1, 100, 4096, 4097, 65536, 1 << 20, 2 << 20, 3 << 20 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	static const unsigned order[N] = { 3, 0, 7, 5, 1, 6, 2, 4 };
	unsigned char *p[N];
	void *none = &none;

	for (unsigned i = 0; i < N; i++) {
		ASSERT_OK(sn_queue_buf_alloc(c->q, sizes[i], (void **)&p[i]));
		ASSERT_TRUE(p[i] != NULL);
		ASSERT_EQ((uintptr_t)p[i] % c->info.mem_align, 0);
		for (size_t k = 0; k < sizes[i]; k++)
			if (p[i][k])
				T_FAILED("byte %zu of a new %zu-byte buffer is 0x%02x, not 0", k,
				         sizes[i], p[i][k]);
		memset(p[i], 0x5a, sizes[i]); /* all of it is ours */
	}
	for (unsigned i = 0; i < N; i++)
		for (unsigned j = 0; j < N; j++)
			if (i != j && p[i] < p[j] + sizes[j] && p[j] < p[i] + sizes[i])
				T_FAILED("buffers %u and %u overlap", i, j);
	for (unsigned i = 0; i < N; i++)
		if (p[i][sizes[i] - 1] != 0x5a)
			T_FAILED("buffer %u was overwritten", i);
	for (unsigned i = 0; i < N; i++)
		sn_queue_buf_free(c->q, p[order[i]]);
	/* Freed and allocated again: zero again. */
	ASSERT_OK(sn_queue_buf_alloc(c->q, 3 << 20, (void **)&p[0]));
	for (size_t k = 0; k < (3u << 20); k++)
		if (p[0][k])
			T_FAILED("byte %zu of a reallocated buffer is not 0", k);
	ASSERT_ERR(sn_queue_buf_alloc(c->q, 0, &none), -EINVAL);
	ASSERT_TRUE(none == NULL);
	return T_PASS;
}

static int takes_option(const char *engine, const char *key)
{
	const struct sn_engine_desc *d;

	for (unsigned i = 0; (d = sn_engine_desc(i)); i++) {
		if (strcmp(d->name, engine) != 0)
			continue;
		for (const struct sn_option *o = d->options; o && o->key; o++)
			if (strcmp(o->key, key) == 0)
				return 1;
	}
	return 0;
}

/* A file has one writer at a time: a second open of it is refused while c->dev is open,
 * unless it says lock=0. */
static int case_lock(struct conf *c)
{
	char uri[1024], scheme[32];
	struct sn_dev *dev = NULL;

	scheme_of(c->uri, scheme, sizeof(scheme));
	if (!takes_option(scheme, "lock"))
		SKIP("engine %s has no file to lock", scheme);
	if (strstr(c->uri, "lock="))
		SKIP("the URI sets lock= itself");
	ASSERT_ERR(sn_dev_open(c->uri, &dev), -EBUSY);
	ASSERT_STR_HAS(sn_errmsg(), "in use");
	snprintf(uri, sizeof(uri), "%s%sreadonly=1", c->uri, strchr(c->uri, '?') ? "&" : "?");
	ASSERT_ERR(sn_dev_open(uri, &dev), -EBUSY);
	snprintf(uri, sizeof(uri), "%s%slock=0", c->uri, strchr(c->uri, '?') ? "&" : "?");
	ASSERT_OK(sn_dev_open(uri, &dev));
	sn_dev_close(dev);
	return T_PASS;
}

static int case_readonly(struct conf *c)
{
	uint64_t B = rup(8192, c->align), off = rdown(c->info.capacity_bytes / 19, c->align);
	char uri[1024], scheme[32];
	struct sn_dev_info in;
	unsigned char *b, *rb;
	struct sn_io io;
	int err;

	scheme_of(c->uri, scheme, sizeof(scheme));
	if (!takes_option(scheme, "readonly"))
		SKIP("engine %s has no readonly option", scheme);
	if (strstr(c->uri, "readonly="))
		SKIP("the URI sets readonly= itself");
	/* (lock=0: c->dev, open for writing, holds the file's lock) */
	snprintf(uri, sizeof(uri), "%s%sreadonly=1&lock=0", c->uri,
	         strchr(c->uri, '?') ? "&" : "?");

	ASSERT_OK(sn_queue_buf_alloc(c->q, 2 * B, (void **)&b));
	conf_fill(b, B, off, 1100);
	ASSERT_IO(c->q, SN_OP_WRITE, 0, b, B, off);
	ASSERT_OK(sn_queue_flush(c->q));

	err = sn_dev_open(uri, &c->dev2);
	if (err)
		T_FAILED("open %s: %d (%s)", uri, err, sn_errname(err));
	sn_dev_info(c->dev2, &in);
	ASSERT_EQ(in.capacity_bytes, c->info.capacity_bytes);
	ASSERT_OK(sn_queue_create(c->dev2, 4, &c->q2));
	ASSERT_OK(sn_queue_buf_alloc(c->q2, B, (void **)&rb));
	ASSERT_IO(c->q2, SN_OP_READ, 0, rb, B, off);
	ASSERT_OK(conf_check(rb, B, off, 1100));

	/* Every kind of write is refused, and the data stays. */
	conf_fill(rb, B, off, 1101);
	sn_io_write(&io, rb, (uint32_t)B, off, TAG);
	ASSERT_REFUSED(c->q2, &io, -EBADF, "read-only");
	io.flags = SN_IO_FUA;
	ASSERT_REFUSED(c->q2, &io, -EBADF, "read-only");
	sn_io_discard(&io, (uint32_t)B, off, TAG);
	ASSERT_REFUSED(c->q2, &io, -EBADF, "read-only");
	ASSERT_ERR(sn_queue_pwrite(c->q2, rb, (uint32_t)B, off), -EBADF);
	ASSERT_STR_HAS(sn_errmsg(), "read-only");
	/* A flush has nothing to write back, and completes. */
	ASSERT_OK(sn_queue_flush(c->q2));
	ASSERT_IO(c->q, SN_OP_READ, 0, b + B, B, off);
	ASSERT_OK(conf_check(b + B, B, off, 1100));
	return T_PASS;
}

static int case_byte_addr(struct conf *c)
{
	uint64_t cap = c->info.capacity_bytes, len = rup(8192, c->align);
	uint64_t off = rdown(cap / 3, c->align) + (c->align == 1 ? 3 : 0);
	uint64_t off2 = rdown(cap / 3 * 2, c->align);
	void *base = &base, *again;
	unsigned char *b, *m;

	ASSERT_OK(sn_queue_buf_alloc(c->q, len, (void **)&b));
	if (!(c->info.caps & SN_CAP_BYTE_ADDR)) {
		ASSERT_ERR(sn_dev_map(c->dev, &base), -ENOTSUP);
		ASSERT_TRUE(base == NULL);
		ASSERT_ERR(sn_dev_persist(c->dev, b, 8), -ENOTSUP);
		printf("    not byte-addressable: sn_dev_map refused with -ENOTSUP\n");
		return T_PASS;
	}
	ASSERT_OK(sn_dev_map(c->dev, &base));
	ASSERT_TRUE(base != NULL);
	ASSERT_OK(sn_dev_map(c->dev, &again));
	ASSERT_TRUE(again == base);
	m = base;

	/* Stores through the mapping, persisted, are what the queue reads. */
	conf_fill(m + off, len, off, 1200);
	ASSERT_OK(sn_dev_persist(c->dev, m + off, len));
	ASSERT_IO(c->q, SN_OP_READ, 0, b, len, off);
	ASSERT_OK(conf_check(b, len, off, 1200));
	/* And what the queue writes, the mapping shows. */
	conf_fill(b, len, off2, 1201);
	ASSERT_IO(c->q, SN_OP_WRITE, 0, b, len, off2);
	ASSERT_OK(conf_check(m + off2, len, off2, 1201));

	ASSERT_OK(sn_dev_persist(c->dev, m + 100, 10)); /* any address, not only pages */
	ASSERT_OK(sn_dev_persist(c->dev, m, cap));
	ASSERT_OK(sn_dev_persist(c->dev, m + cap - 1, 1));
	ASSERT_ERR(sn_dev_persist(c->dev, m + cap - 8, 16), -EINVAL);
	ASSERT_ERR(sn_dev_persist(c->dev, (void *)((uintptr_t)m - 8), 8), -EINVAL);
	ASSERT_ERR(sn_dev_persist(c->dev, m, cap + 1), -EINVAL);
	return T_PASS;
}

const struct conf_case conf_cases[] = {
	{ "info: capacity, alignments, engine name", case_info },
	{ "read-after-write across offsets and sizes", case_read_after_write },
	{ "buffers: slices, another queue's, plain heap", case_buffers },
	{ "batch: one submit, every completion once", case_batch },
	{ "flush: SN_OP_FLUSH and sn_queue_flush", case_flush },
	{ "FUA write", case_fua },
	{ "reopen after close shows the data", case_reopen },
	{ "many queues on many threads", case_threads },
	{ "misaligned direct I/O refused", case_misaligned },
	{ "out-of-range refused, device untouched", case_out_of_range },
	{ "zero-length requests refused", case_zero_length },
	{ "bad opcode, flags, NULL buffer refused", case_invalid_requests },
	{ "queue depth limits; depth 1", case_queue_depth },
	{ "queue full: -EAGAIN, nothing dropped", case_queue_full },
	{ "blocking helpers mixed with async I/O", case_blocking_mixed },
	{ "discard", case_discard },
	{ "sn_queue_buf_alloc: aligned, zeroed", case_buf_alloc },
	{ "a second open is refused while one writes (lock)", case_lock },
	{ "readonly=1 refuses writes", case_readonly },
	{ "byte-addressable map/persist, or -ENOTSUP", case_byte_addr },
	{ NULL, NULL },
};

int conf_probe(const char *uri)
{
	struct sn_dev *dev;
	int err = sn_dev_open(uri, &dev);

	if (err == SN_ENOTAVAIL ||
	    ((err == -ENOSYS || err == -EPERM) && strstr(sn_errmsg(), "io_uring"))) {
		printf("    skipped: %s is not usable here: %s\n", uri, sn_errmsg());
		return T_SKIP;
	}
	if (err) {
		printf("    cannot open %s: %d (%s): %s\n", uri, err, sn_errname(err), sn_errmsg());
		return T_FAIL;
	}
	sn_dev_close(dev);
	return T_PASS;
}

int conf_run(const char *uri, int (*fn)(struct conf *c))
{
	struct conf c = { .uri = uri };
	int err, r;

	err = sn_dev_open(uri, &c.dev);
	if (err) {
		printf("    cannot open %s: %d (%s): %s\n", uri, err, sn_errname(err), sn_errmsg());
		return T_FAIL;
	}
	sn_dev_info(c.dev, &c.info);
	c.depth = c.info.max_queue_depth < 64 ? c.info.max_queue_depth : 64;
	c.align = c.info.offset_align;
	c.data = strcmp(c.info.engine, "null") != 0;
	err = sn_queue_create(c.dev, c.depth, &c.q);
	if (err) {
		printf("    sn_queue_create(%u): %d (%s): %s\n", c.depth, err, sn_errname(err),
		       sn_errmsg());
		sn_dev_close(c.dev);
		return T_FAIL;
	}
	r = fn(&c);
	/* Queues first (they may belong to either device), then devices. */
	sn_queue_destroy(c.q2);
	sn_queue_destroy(c.q);
	sn_dev_close(c.dev2);
	sn_dev_close(c.dev);
	return r;
}
