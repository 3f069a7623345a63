/* SPDX-License-Identifier: MIT */
/*
 * test_fault.c — the fault: engine keeps its fault model (docs/engines.md): flushed and
 * FUA data survive a crash, held writes are lost, kept or torn (a head, a tail or holes,
 * never all) as crash= says and in submission order, injected EIO/ENOSPC hit exactly the Nth request,
 * a failed flush loses the held writes, reads may come back with one bit flipped, and a
 * seed reproduces every choice. The wrapped device is a psync file; after a crash the
 * test opens that file directly to see what "reached the medium".
 *
 *   test_fault [SCRATCH_DIR]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "test.h"

#define BLK  4096
#define NBLK 64

static char path[1024];

static int open_fault(const char *opts, struct sn_dev **dev, struct sn_queue **q)
{
	char uri[1400];

	snprintf(uri, sizeof(uri), "fault:psync:%s?size=%d&%s", path, BLK * NBLK, opts);
	ASSERT_OK(sn_dev_open(uri, dev));
	ASSERT_OK(sn_queue_create(*dev, 8, q));
	return T_PASS;
}

static void close_dev(struct sn_dev *dev, struct sn_queue *q)
{
	sn_queue_destroy(q);
	sn_dev_close(dev);
}

/* A fresh backing file of NBLK zero blocks. */
static int reset(void)
{
	char uri[1200];
	struct sn_dev *dev;

	unlink(path);
	snprintf(uri, sizeof(uri), "psync:%s?create=1&size=%d", path, BLK * NBLK);
	ASSERT_OK(sn_dev_open(uri, &dev));
	sn_dev_close(dev);
	return T_PASS;
}

/* Block b of the backing file, read without the fault engine: what survived. */
static int on_medium(unsigned b, unsigned off_in_blk, unsigned char *out)
{
	char uri[1200];
	struct sn_dev *dev;
	struct sn_queue *q;
	static unsigned char buf[BLK];

	snprintf(uri, sizeof(uri), "psync:%s", path);
	if (sn_dev_open(uri, &dev) || sn_queue_create(dev, 1, &q))
		return -1;
	if (sn_queue_pread(q, buf, BLK, (uint64_t)b * BLK))
		return -1;
	*out = buf[off_in_blk];
	sn_queue_destroy(q);
	sn_dev_close(dev);
	return 0;
}

static int fill_write(struct sn_queue *q, unsigned b, unsigned nblk, unsigned char v)
{
	static unsigned char buf[BLK * 8];

	memset(buf, v, (size_t)nblk * BLK);
	return sn_queue_pwrite(q, buf, nblk * BLK, (uint64_t)b * BLK);
}

static int test_crash_all(void)
{
	struct sn_dev *dev;
	struct sn_queue *q;
	struct sn_fault_stats st;
	unsigned char v, buf[BLK];

	if (reset() || open_fault("crash=all", &dev, &q))
		return T_FAIL;
	ASSERT_OK(fill_write(q, 0, 1, 'A'));
	ASSERT_OK(sn_queue_flush(q));
	ASSERT_OK(fill_write(q, 1, 1, 'B'));
	ASSERT_OK(fill_write(q, 0, 1, 'C')); /* overwrites flushed data, not flushed */
	/* Reads see held writes before the crash. */
	ASSERT_OK(sn_queue_pread(q, buf, BLK, 0));
	ASSERT_EQ(buf[7], 'C');
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_CRASH, NULL));
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_STATS, &st));
	ASSERT_EQ(st.crashes, 1);
	ASSERT_EQ(st.writes_dropped, 2);
	ASSERT_EQ(st.writes_kept, 0);
	/* After the crash nothing works until reopen. */
	ASSERT_EQ(sn_queue_pread(q, buf, BLK, 0), -EIO);
	close_dev(dev, q);
	ASSERT_OK(on_medium(0, 7, &v));
	ASSERT_EQ(v, 'A');
	ASSERT_OK(on_medium(1, 7, &v));
	ASSERT_EQ(v, 0);
	return T_PASS;
}

/* A fault device (crash=keep) holding an older write of block 2 ('o'), then a FUA write
 * of it ('F'), done. */
static int held_then_fua(struct sn_dev **dev, struct sn_queue **q)
{
	static unsigned char buf[BLK];
	struct sn_io io;
	struct sn_cqe c;

	if (reset() || open_fault("crash=keep", dev, q))
		return T_FAIL;
	ASSERT_OK(fill_write(*q, 2, 1, 'o'));
	memset(buf, 'F', BLK);
	sn_io_write(&io, buf, BLK, 2 * BLK, 9);
	io.flags = SN_IO_FUA;
	ASSERT_EQ(sn_queue_submit(*q, &io, 1), 1);
	ASSERT_EQ(sn_queue_reap(*q, &c, 1, 1), 1);
	ASSERT_EQ(c.res, BLK);
	return T_PASS;
}

/* The older held write is replayed at the crash (crash=keep: a mode that might drop it
 * would make the check vacuous), and must not land over the FUA write. */
static int test_fua_survives(void)
{
	struct sn_fault_stats st;
	struct sn_dev *dev;
	struct sn_queue *q;
	unsigned char v;

	if (held_then_fua(&dev, &q))
		return T_FAIL;
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_CRASH, NULL));
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_STATS, &st));
	ASSERT_EQ(st.writes_dropped, 0);
	ASSERT_EQ(st.writes_kept, 1); /* the older write was replayed (FUA ones are not counted) */
	close_dev(dev, q);
	ASSERT_OK(on_medium(2, 100, &v));
	ASSERT_EQ(v, 'F');
	return T_PASS;
}

/* The same through a flush: the held writes reach the medium, the FUA write stays last. */
static int test_fua_survives_flush(void)
{
	struct sn_dev *dev;
	struct sn_queue *q;
	unsigned char v;

	if (held_then_fua(&dev, &q))
		return T_FAIL;
	ASSERT_OK(sn_queue_flush(q));
	close_dev(dev, q);
	ASSERT_OK(on_medium(2, 100, &v));
	ASSERT_EQ(v, 'F');
	return T_PASS;
}

static int test_crash_keep_order(void)
{
	struct sn_dev *dev;
	struct sn_queue *q;
	unsigned char v;

	if (reset() || open_fault("crash=keep", &dev, &q))
		return T_FAIL;
	ASSERT_OK(fill_write(q, 3, 1, '1'));
	ASSERT_OK(fill_write(q, 3, 1, '2'));
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_CRASH, NULL));
	close_dev(dev, q);
	ASSERT_OK(on_medium(3, 0, &v));
	ASSERT_EQ(v, '2'); /* replayed in submission order */
	return T_PASS;
}

/* crash=random keeps some writes and drops others; the same seed picks the same ones. */
static int random_outcome(const char *opts, unsigned char out[NBLK])
{
	struct sn_dev *dev;
	struct sn_queue *q;

	if (reset() || open_fault(opts, &dev, &q))
		return T_FAIL;
	for (unsigned b = 0; b < 32; b++)
		ASSERT_OK(fill_write(q, b, 1, (unsigned char)('a' + b % 26)));
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_CRASH, NULL));
	close_dev(dev, q);
	for (unsigned b = 0; b < 32; b++) {
		ASSERT_OK(on_medium(b, 1, &out[b]));
		/* Each block is either the write or the old zeros, never anything else. */
		ASSERT_TRUE(out[b] == 0 || out[b] == (unsigned char)('a' + b % 26));
	}
	return T_PASS;
}

static int test_crash_random_seeded(void)
{
	unsigned char a[NBLK], b[NBLK], c[NBLK];
	unsigned kept = 0, differ = 0;

	if (random_outcome("crash=random&seed=42", a) ||
	    random_outcome("crash=random&seed=42", b) || random_outcome("crash=random&seed=43", c))
		return T_FAIL;
	for (unsigned i = 0; i < 32; i++) {
		ASSERT_EQ(a[i], b[i]);
		kept += a[i] != 0;
		differ += a[i] != c[i];
	}
	printf("    seed 42 kept %u of 32 held writes; seed 43 differs in %u blocks\n", kept,
	       differ);
	ASSERT_TRUE(kept > 0 && kept < 32);
	ASSERT_TRUE(differ > 0);
	return T_PASS;
}

/* Bytes [off, off+len) of the backing file, read without the fault engine. */
static int medium(uint64_t off, unsigned len, unsigned char *out)
{
	char uri[1200];
	struct sn_dev *dev;
	struct sn_queue *q;
	int err;

	snprintf(uri, sizeof(uri), "psync:%s", path);
	if (sn_dev_open(uri, &dev))
		return -1;
	err = sn_queue_create(dev, 1, &q);
	if (!err) {
		err = sn_queue_pread(q, out, len, off);
		sn_queue_destroy(q);
	}
	sn_dev_close(dev);
	return err;
}

#define TEAR_MAX 128 /* tear blocks a case looks at */

/*
 * crash=tear&seed=SEED&tear_block=TB: one held write of nblk 4 KiB blocks ('T') at block 8,
 * then, when later is set, a held 4 KiB write ('U') at block 8 + later - 1; crash. out[i]
 * says what tear block i of the first write holds on the medium: 1 new, 0 old (zeros).
 * Every tear block must be whole, old or new (or 'U' where the later write covers it).
 */
static int tear_case(unsigned seed, unsigned tb, unsigned nblk, unsigned later,
                     struct sn_fault_stats *st, unsigned char *out, unsigned *nout)
{
	static unsigned char buf[16 * BLK], got[16 * BLK];
	struct sn_dev *dev;
	struct sn_queue *q;
	char opts[96];
	unsigned len = nblk * BLK;

	snprintf(opts, sizeof(opts), "crash=tear&tear_block=%u&seed=%u", tb, seed);
	if (reset() || open_fault(opts, &dev, &q))
		return T_FAIL;
	memset(buf, 'T', len);
	ASSERT_OK(sn_queue_pwrite(q, buf, len, 8 * BLK));
	if (later)
		ASSERT_OK(fill_write(q, 8 + later - 1, 1, 'U'));
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_CRASH, NULL));
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_STATS, st));
	close_dev(dev, q);
	ASSERT_OK(medium(8 * BLK, len, got));
	*nout = (len + tb - 1) / tb;
	ASSERT_LE(*nout, TEAR_MAX);
	for (unsigned i = 0; i < *nout; i++) {
		unsigned lo = i * tb, hi = lo + tb < len ? lo + tb : len;

		out[i] = got[lo] == 'T';
		for (unsigned k = lo; k < hi; k++) {
			unsigned in_later = later && k / BLK == later - 1;

			if (in_later && got[k] == 'U')
				continue;
			if (got[k] != (out[i] ? 'T' : 0))
				T_FAILED("seed %u tear_block %u: byte %u of the write is 0x%02x, "
				         "its tear block starts with 0x%02x",
				         seed, tb, k, got[k], got[lo]);
		}
	}
	return T_PASS;
}

/* The blocks of v[0..n) that are new (non-zero): how many, the first and the last. */
static unsigned new_blocks(const unsigned char *v, unsigned n, unsigned *first, unsigned *last)
{
	unsigned n_new = 0;

	*first = n;
	*last = 0;
	for (unsigned i = 0; i < n; i++) {
		if (v[i]) {
			*first = *first < i ? *first : i;
			*last = i;
			n_new++;
		}
	}
	return n_new;
}

/* A torn 8-block write: a head, a tail, or any subset, holes (an old block between new
 * ones) included; never all of it, never none. Over 300 seeds heads, tails and holes all
 * show up, and a seed's holes are the same every time. */
static int test_crash_tear(void)
{
	unsigned head = 0, tail = 0, middle = 0, holes = 0, torn = 0, hole_seed = 0;
	unsigned char v[TEAR_MAX], again[TEAR_MAX];

	for (unsigned seed = 1; seed <= 300; seed++) {
		struct sn_fault_stats st;
		unsigned n, n_new, first, last;

		if (tear_case(seed, BLK, 8, 0, &st, v, &n))
			return T_FAIL;
		n_new = new_blocks(v, n, &first, &last);
		ASSERT_EQ(st.writes_torn + st.writes_kept + st.writes_dropped, 1);
		if (!st.writes_torn) {
			ASSERT_EQ(n_new, st.writes_kept ? 8 : 0);
			continue;
		}
		torn++;
		ASSERT_TRUE(n_new > 0 && n_new < 8);
		if (last - first + 1 > n_new) { /* an old block between two new ones */
			holes++;
			if (!hole_seed) {
				hole_seed = seed;
				printf("    seed %u left holes: blocks", seed);
				for (unsigned i = 0; i < n; i++)
					printf(" %c", v[i] ? 'T' : '.');
				printf("\n");
			}
		} else if (first == 0) {
			head++;
		} else if (last == 7) {
			tail++;
		} else {
			middle++; /* one run, old blocks on both sides */
		}
	}
	printf("    300 seeds: %u torn writes: %u heads, %u tails, %u middles, %u with holes\n",
	       torn, head, tail, middle, holes);
	ASSERT_TRUE(head > 0 && tail > 0 && holes > 0);
	/* The same seed leaves the same holes. */
	{
		struct sn_fault_stats st;
		unsigned n;

		if (tear_case(hole_seed, BLK, 8, 0, &st, v, &n) ||
		    tear_case(hole_seed, BLK, 8, 0, &st, again, &n))
			return T_FAIL;
		ASSERT_TRUE(!memcmp(v, again, n));
	}
	return T_PASS;
}

/* Tear blocks that are not 4 KiB, over 64 KiB writes: 128 of 512 bytes (more than one
 * 64-bit draw), 12 KiB ones (the last one 4 KiB), and two of 32 KiB (where half of all
 * subsets drawn are all or none, and must be turned into a head or a tail). Every tear
 * block is whole; a torn write is never all of it nor none. */
static int test_crash_tear_blocks(void)
{
	static const unsigned tbs[] = { 512, 3 * BLK, 8 * BLK };
	unsigned char v[TEAR_MAX];

	for (unsigned t = 0; t < sizeof(tbs) / sizeof(tbs[0]); t++) {
		unsigned torn = 0, holes = 0;

		for (unsigned seed = 1; seed <= 120; seed++) {
			struct sn_fault_stats st;
			unsigned n, n_new, first, last;

			if (tear_case(seed, tbs[t], 16, 0, &st, v, &n))
				return T_FAIL;
			n_new = new_blocks(v, n, &first, &last);
			if (!st.writes_torn)
				continue;
			torn++;
			holes += last - first + 1 > n_new;
			ASSERT_TRUE(n_new > 0 && n_new < n);
		}
		printf("    tear_block %u: %u torn 64 KiB writes, %u with holes\n", tbs[t], torn,
		       holes);
		ASSERT_TRUE(torn > 0);
		ASSERT_TRUE(holes > 0 || tbs[t] == 8 * BLK);
	}
	return T_PASS;
}

/* A torn write's blocks land before the later held writes: a later write of a block it
 * covers wins wherever it was kept. */
static int test_crash_tear_order(void)
{
	unsigned checked = 0;
	unsigned char v[TEAR_MAX], got;

	for (unsigned seed = 1; seed <= 300; seed++) {
		struct sn_fault_stats st;
		unsigned n, later = 1 + seed % 8; /* block 8 + later - 1: one of the 8 */

		if (tear_case(seed, BLK, 8, later, &st, v, &n))
			return T_FAIL;
		ASSERT_OK(medium((uint64_t)(8 + later - 1) * BLK + 5, 1, &got));
		/* The later 1-block write is kept whole or dropped: never torn. */
		if (st.writes_torn == 1 && st.writes_kept == 1) {
			ASSERT_EQ(got, 'U');
			checked++;
		} else if (st.writes_torn == 1) {
			ASSERT_TRUE(got == 0 || got == 'T');
		}
	}
	printf("    %u crashes tore the first write and kept the later one, which won\n", checked);
	ASSERT_TRUE(checked > 0);
	return T_PASS;
}

/* An older held 8-block write, then an FUA write over it: never torn, in any seed. */
static int test_crash_tear_fua(void)
{
	static unsigned char buf[8 * BLK], got[8 * BLK];

	for (unsigned seed = 1; seed <= 40; seed++) {
		struct sn_dev *dev;
		struct sn_queue *q;
		struct sn_io io;
		struct sn_cqe c;
		char opts[64];

		snprintf(opts, sizeof(opts), "crash=tear&tear_block=%d&seed=%u", BLK, seed);
		if (reset() || open_fault(opts, &dev, &q))
			return T_FAIL;
		ASSERT_OK(fill_write(q, 8, 8, 'o'));
		memset(buf, 'F', sizeof(buf));
		sn_io_write(&io, buf, sizeof(buf), 8 * BLK, 1);
		io.flags = SN_IO_FUA;
		ASSERT_EQ(sn_queue_submit(q, &io, 1), 1);
		ASSERT_EQ(sn_queue_reap(q, &c, 1, 1), 1);
		ASSERT_EQ(c.res, (int64_t)sizeof(buf));
		ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_CRASH, NULL));
		close_dev(dev, q);
		ASSERT_OK(medium(8 * BLK, sizeof(got), got));
		ASSERT_TRUE(!memcmp(got, buf, sizeof(got)));
	}
	return T_PASS;
}

static int test_crash_at(void)
{
	struct sn_dev *dev;
	struct sn_queue *q;
	unsigned char v;

	/* Requests: 1 write, 2 flush, 3 write, 4 -> crash before it. */
	if (reset() || open_fault("crash_at=4", &dev, &q))
		return T_FAIL;
	ASSERT_OK(fill_write(q, 0, 1, 'x'));
	ASSERT_OK(sn_queue_flush(q));
	ASSERT_OK(fill_write(q, 1, 1, 'y'));
	ASSERT_EQ(fill_write(q, 2, 1, 'z'), -EIO);
	close_dev(dev, q);
	ASSERT_OK(on_medium(0, 0, &v));
	ASSERT_EQ(v, 'x');
	ASSERT_OK(on_medium(1, 0, &v));
	ASSERT_EQ(v, 0);
	return T_PASS;
}

static int test_inject_errors(void)
{
	struct sn_dev *dev;
	struct sn_queue *q;
	struct sn_fault_stats st;
	unsigned char buf[BLK], v;

	if (reset() || open_fault("eio_at=2&enospc_at=4", &dev, &q))
		return T_FAIL;
	ASSERT_OK(fill_write(q, 0, 1, 'a'));             /* 1 */
	ASSERT_EQ(sn_queue_pread(q, buf, BLK, 0), -EIO); /* 2: EIO */
	ASSERT_OK(sn_queue_pread(q, buf, BLK, 0));       /* 3 */
	ASSERT_EQ(buf[0], 'a');
	ASSERT_EQ(fill_write(q, 5, 1, 'e'), -ENOSPC); /* 4: ENOSPC, not held */
	ASSERT_OK(sn_queue_flush(q));                 /* 5 */
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_STATS, &st));
	ASSERT_EQ(st.eio_injected, 1);
	ASSERT_EQ(st.enospc_injected, 1);
	ASSERT_EQ(st.ios, 5);
	close_dev(dev, q);
	ASSERT_OK(on_medium(5, 0, &v));
	ASSERT_EQ(v, 0);
	ASSERT_OK(on_medium(0, 0, &v));
	ASSERT_EQ(v, 'a');
	return T_PASS;
}

static int test_failed_flush_loses(void)
{
	struct sn_dev *dev;
	struct sn_queue *q;
	unsigned char v;

	/* Only flushes fail: the held write is lost, as after a failed fsync on Linux. */
	if (reset() || open_fault("eio_at=2&fail_ops=flush", &dev, &q))
		return T_FAIL;
	ASSERT_OK(fill_write(q, 4, 1, 'L'));
	ASSERT_EQ(sn_queue_flush(q), -EIO);
	ASSERT_OK(sn_queue_flush(q));
	close_dev(dev, q);
	ASSERT_OK(on_medium(4, 0, &v));
	ASSERT_EQ(v, 0);
	return T_PASS;
}

/* A failed flush on one queue is reported once to every other queue of the device (as
 * Linux reports a writeback error once per file description): their writes went too. */
static int test_failed_flush_other_queues(void)
{
	struct sn_dev *dev;
	struct sn_queue *q, *q2, *q3;
	unsigned char v;

	if (reset() || open_fault("eio_at=3&fail_ops=flush", &dev, &q))
		return T_FAIL;
	ASSERT_OK(sn_queue_create(dev, 8, &q2));
	ASSERT_OK(fill_write(q2, 6, 1, 'B'));    /* 1: q2's write, held */
	ASSERT_OK(fill_write(q, 4, 1, 'A'));     /* 2 */
	ASSERT_EQ(sn_queue_flush(q), -EIO);      /* 3: fails, drops both writes */
	ASSERT_OK(sn_queue_create(dev, 8, &q3)); /* after the failure: nothing to report */
	ASSERT_EQ(sn_queue_flush(q2), -EIO);     /* q2 learns of it, once */
	ASSERT_OK(sn_queue_flush(q2));
	ASSERT_OK(sn_queue_flush(q)); /* q was told already */
	ASSERT_OK(sn_queue_flush(q3));
	ASSERT_OK(fill_write(q2, 7, 1, 'C'));
	ASSERT_OK(sn_queue_flush(q2));
	sn_queue_destroy(q3);
	sn_queue_destroy(q2);
	close_dev(dev, q);
	ASSERT_OK(on_medium(4, 0, &v));
	ASSERT_EQ(v, 0);
	ASSERT_OK(on_medium(6, 0, &v));
	ASSERT_EQ(v, 0);
	ASSERT_OK(on_medium(7, 0, &v));
	ASSERT_EQ(v, 'C');
	return T_PASS;
}

/* bytes=1: persisted lines reach the medium; a crash drops (all) or keeps (keep) the
 * lines stored and never persisted. */
static int bytes_crash(const char *mode, unsigned char *persisted, unsigned char *unpersisted)
{
	struct sn_dev *dev;
	struct sn_queue *q;
	struct sn_fault_stats st;
	char opts[64];
	unsigned char *base;

	snprintf(opts, sizeof(opts), "bytes=1&crash=%s", mode);
	if (reset() || open_fault(opts, &dev, &q))
		return T_FAIL;
	ASSERT_OK(sn_dev_map(dev, (void **)&base));
	memset(base + 100, 'P', 100); /* lines 1..3 */
	ASSERT_OK(sn_dev_persist(dev, base + 100, 100));
	memset(base + BLK, 'U', 64);
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_CRASH, NULL));
	ASSERT_EQ(sn_dev_persist(dev, base, 64), -EIO);
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_STATS, &st));
	ASSERT_EQ(st.persists, 2);
	ASSERT_EQ(st.lines_dropped + st.lines_kept, 1);
	close_dev(dev, q);
	if (on_medium(0, 150, persisted) || on_medium(1, 0, unpersisted))
		return T_FAIL;
	return T_PASS;
}

static int test_bytes_mode(void)
{
	struct sn_dev *dev;
	struct sn_queue *q;
	unsigned char p, u;
	void *base;

	if (bytes_crash("all", &p, &u))
		return T_FAIL;
	ASSERT_EQ(p, 'P');
	ASSERT_EQ(u, 0);
	if (bytes_crash("keep", &p, &u))
		return T_FAIL;
	ASSERT_EQ(p, 'P');
	ASSERT_EQ(u, 'U');
	if (reset() || open_fault("crash=all", &dev, &q))
		return T_FAIL;
	ASSERT_EQ(sn_dev_map(dev, &base), -ENOTSUP);
	close_dev(dev, q);
	return T_PASS;
}

static int test_bit_flips(void)
{
	struct sn_dev *dev;
	struct sn_queue *q;
	struct sn_fault_stats st;
	static unsigned char buf[BLK];
	unsigned flipped_bits = 0;

	if (reset() || open_fault("flip_prob=1", &dev, &q))
		return T_FAIL;
	ASSERT_OK(fill_write(q, 0, 1, 0x55));
	ASSERT_OK(sn_queue_pread(q, buf, BLK, 0));
	for (unsigned i = 0; i < BLK; i++)
		flipped_bits += (unsigned)__builtin_popcount(buf[i] ^ 0x55);
	ASSERT_EQ(flipped_bits, 1);
	ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_STATS, &st));
	ASSERT_EQ(st.bits_flipped, 1);
	close_dev(dev, q);
	return T_PASS;
}

static int test_bad_options(void)
{
	struct sn_dev *dev;
	char uri[1200];

	snprintf(uri, sizeof(uri), "fault:psync:%s?crash=sometimes", path);
	ASSERT_ERR(sn_dev_open(uri, &dev), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "crash=sometimes");
	snprintf(uri, sizeof(uri), "fault:psync:%s?eio_prob=2", path);
	ASSERT_ERR(sn_dev_open(uri, &dev), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "probability");
	snprintf(uri, sizeof(uri), "fault:psync:%s?fail_ops=write,fsync", path);
	ASSERT_ERR(sn_dev_open(uri, &dev), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "fsync");
	ASSERT_ERR(sn_dev_open("fault:?seed=1", &dev), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "wraps another device");
	/* Options the fault engine does not know go to the wrapped engine, which refuses. */
	snprintf(uri, sizeof(uri), "fault:psync:%s?bogus=1", path);
	ASSERT_ERR(sn_dev_open(uri, &dev), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "bogus");
	/* Other engines have no fault controls. */
	ASSERT_OK(sn_dev_open("mem:?size=1m", &dev));
	ASSERT_ERR(sn_dev_ctl(dev, SN_CTL_FAULT_CRASH, NULL), -ENOTSUP);
	sn_dev_close(dev);
	return T_PASS;
}

int main(int argc, char **argv)
{
	snprintf(path, sizeof(path), "%s/fault-%d.dat", argc > 1 ? argv[1] : ".", (int)getpid());
	t_begin("fault engine: power-loss model, error injection, reproducibility");
	T_RUN("crash=all: flushed data stays, held writes are lost", test_crash_all());
	T_RUN("FUA write survives a crash, after older held writes", test_fua_survives());
	T_RUN("FUA write survives a flush, after older held writes", test_fua_survives_flush());
	T_RUN("crash=keep replays held writes in order", test_crash_keep_order());
	T_RUN("crash=random: a subset, the same for the same seed", test_crash_random_seeded());
	T_RUN("crash=tear: a head, a tail or holes, never all of a write", test_crash_tear());
	T_RUN("crash=tear: tear blocks of 512 B, 12 KiB and 32 KiB stay whole",
	      test_crash_tear_blocks());
	T_RUN("crash=tear: a later held write wins over a torn one", test_crash_tear_order());
	T_RUN("crash=tear: FUA writes are never torn", test_crash_tear_fua());
	T_RUN("crash_at=N crashes before the Nth request", test_crash_at());
	T_RUN("eio_at / enospc_at hit exactly the Nth request", test_inject_errors());
	T_RUN("a failed flush loses the held writes", test_failed_flush_loses());
	T_RUN("a failed flush is reported once to every other queue",
	      test_failed_flush_other_queues());
	T_RUN("bytes=1: persisted lines survive, unpersisted ones as crash= says",
	      test_bytes_mode());
	T_RUN("flip_prob flips one bit of a read", test_bit_flips());
	T_RUN("bad options refused with a reason", test_bad_options());
	unlink(path);
	return t_end();
}
