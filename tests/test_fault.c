/* SPDX-License-Identifier: MIT */
/*
 * test_fault.c — the fault: engine keeps its fault model (docs/engines.md): flushed and
 * FUA data survive a crash, held writes are lost, kept or torn at block boundaries as
 * crash= says and in submission order, injected EIO/ENOSPC hit exactly the Nth request,
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

static int test_crash_tear(void)
{
	unsigned torn_seen = 0;

	/* 8-block writes: a torn one leaves a head or a tail, cut at a block boundary. */
	for (unsigned seed = 1; seed <= 40 && !torn_seen; seed++) {
		struct sn_dev *dev;
		struct sn_queue *q;
		struct sn_fault_stats st;
		char opts[64];
		unsigned char v[8];
		unsigned first_new = 8, last_new = 0, n_new = 0;

		snprintf(opts, sizeof(opts), "crash=tear&tear_block=4096&seed=%u", seed);
		if (reset() || open_fault(opts, &dev, &q))
			return T_FAIL;
		ASSERT_OK(fill_write(q, 8, 8, 'T'));
		ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_CRASH, NULL));
		ASSERT_OK(sn_dev_ctl(dev, SN_CTL_FAULT_STATS, &st));
		close_dev(dev, q);
		for (unsigned i = 0; i < 8; i++) {
			ASSERT_OK(on_medium(8 + i, 0, &v[i]));
			ASSERT_TRUE(v[i] == 0 || v[i] == 'T');
			if (v[i] == 'T') {
				first_new = first_new < i ? first_new : i;
				last_new = i;
				n_new++;
			}
		}
		if (!st.writes_torn)
			continue;
		torn_seen = 1;
		/* One contiguous part, touching one end, neither empty nor whole. */
		ASSERT_TRUE(n_new > 0 && n_new < 8);
		ASSERT_EQ(last_new - first_new + 1, n_new);
		ASSERT_TRUE(first_new == 0 || last_new == 7);
		printf("    seed %u tore the write: blocks %u..%u reached the medium\n", seed,
		       first_new, last_new);
	}
	ASSERT_TRUE(torn_seen);
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
	T_RUN("crash=tear: head or tail of a write, at a block boundary", test_crash_tear());
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
