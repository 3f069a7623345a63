/* SPDX-License-Identifier: MIT */
/*
 * test_kv.c — the KV store's semantics (include/snstore/kv.h) on one device: round trips at
 * the size limits, overwrite and delete, bad arguments, scan, statistics, reopen, sync and
 * SN_KV_DURABLE, the async API from a foreign thread and from a worker, batches across
 * shards, and compaction. Stores use 64 KiB segments and 4 shards so that little data
 * crosses segments, shards and workers. test_kv_medium.c has what the medium does to a
 * store: full, corrupt, foreign, reformatted, failing.
 *
 *   test_kv URI       URI names a scratch file of this test (removed before and after),
 *                     e.g. 'uring:/tmp/kv.dat?create=1&size=64m&direct=1'
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "kv/format.h"
#include "kv_model.h"
#include "test.h"

/* ---- round trips and limits ---- */

static int test_roundtrip_limits(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv *kv;
	static char k1024[SN_KV_MAX_KEY + 1];
	static unsigned char big[KM_SEG_MAX_VALUE + 1];
	void *v;
	size_t vl;

	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	memset(k1024, 'K', sizeof(k1024));
	km_fill(big, sizeof(big), 7);
	printf("    empty value, 1-byte key, 1024-byte key, a %u-byte value (the largest a "
	       "64 KiB segment takes)\n",
	       KM_SEG_MAX_VALUE);
	ASSERT_OK(sn_kv_put(kv, "empty", 5, "", 0, 0));
	ASSERT_OK(km_put(kv, "x", 1, 100, 1, 0));
	ASSERT_OK(km_put(kv, k1024, SN_KV_MAX_KEY, 300, 2, 0));
	ASSERT_OK(sn_kv_put(kv, "maxval", 6, big, KM_SEG_MAX_VALUE, 0));
	/* The largest value with the largest key, as a batch record: fills the segment. */
	{
		struct sn_kv_batch *b = sn_kv_batch_new();

		ASSERT_TRUE(b);
		ASSERT_OK(sn_kv_batch_put(b, k1024 + 1, SN_KV_MAX_KEY - 1, big, KM_SEG_MAX_VALUE));
		ASSERT_OK(sn_kv_write(kv, b, 0));
		sn_kv_batch_free(b);
	}
	ASSERT_OK(sn_kv_get(kv, "empty", 5, &v, &vl));
	ASSERT_EQ(vl, 0);
	ASSERT_TRUE(v != NULL); /* a buffer to free even for an empty value */
	free(v);
	if (km_expect(kv, "x", 1, 100, 1) || km_expect(kv, k1024, SN_KV_MAX_KEY, 300, 2) ||
	    km_expect(kv, "maxval", 6, KM_SEG_MAX_VALUE, 7) ||
	    km_expect(kv, k1024 + 1, SN_KV_MAX_KEY - 1, KM_SEG_MAX_VALUE, 7) ||
	    km_expect_absent(kv, "nope", 4))
		return T_FAIL;

	printf("    bad keys and values: -EINVAL with a reason\n");
	ASSERT_ERR(sn_kv_put(kv, "", 0, "v", 1, 0), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "1..1024");
	ASSERT_ERR(sn_kv_put(kv, k1024, SN_KV_MAX_KEY + 1, "v", 1, 0), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "1025");
	ASSERT_ERR(sn_kv_put(kv, "big", 3, big, KM_SEG_MAX_VALUE + 1, 0), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "at most");
	ASSERT_ERR(sn_kv_get(kv, "", 0, &v, &vl), -EINVAL);
	ASSERT_ERR(sn_kv_get(kv, k1024, SN_KV_MAX_KEY + 1, &v, &vl), -EINVAL);
	ASSERT_ERR(sn_kv_del(kv, "", 0, 0), -EINVAL);
	ASSERT_ERR(sn_kv_put(kv, "x", 1, "v", 1, 0x80), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "flags");
	if (km_expect_absent(kv, "big", 3) || km_expect(kv, "x", 1, 100, 1))
		return T_FAIL;

	printf("    reopen: every value byte-exact\n");
	if (km_reopen(&kv, &o))
		return T_FAIL;
	ASSERT_OK(sn_kv_get(kv, "empty", 5, &v, &vl));
	ASSERT_EQ(vl, 0);
	free(v);
	if (km_expect(kv, "x", 1, 100, 1) || km_expect(kv, k1024, SN_KV_MAX_KEY, 300, 2) ||
	    km_expect(kv, "maxval", 6, KM_SEG_MAX_VALUE, 7) ||
	    km_expect(kv, k1024 + 1, SN_KV_MAX_KEY - 1, KM_SEG_MAX_VALUE, 7))
		return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

static int test_one_mib_value(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st;
	struct sn_kv *kv;
	unsigned char *big = malloc(SN_KV_MAX_VALUE + 1);

	ASSERT_TRUE(big);
	o.segment_size = 2u << 20; /* max value = min(1 MiB, segment - overhead) = 1 MiB */
	if (km_open_fresh(&o, &kv)) {
		free(big);
		return T_FAIL;
	}
	ASSERT_OK(sn_kv_stat(kv, &st));
	ASSERT_EQ(st.segment_size, 2u << 20);
	printf("    2 MiB segments: a 1 MiB value round-trips, 1 MiB + 1 is refused\n");
	km_fill(big, SN_KV_MAX_VALUE + 1, 99);
	ASSERT_OK(sn_kv_put(kv, "mib", 3, big, SN_KV_MAX_VALUE, 0));
	ASSERT_ERR(sn_kv_put(kv, "mib+1", 5, big, SN_KV_MAX_VALUE + 1, 0), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "1048576");
	ASSERT_OK(sn_kv_put(kv, "mib2", 4, big + 1, SN_KV_MAX_VALUE, SN_KV_DURABLE));
	if (km_expect(kv, "mib", 3, SN_KV_MAX_VALUE, 99) || km_reopen(&kv, &o) ||
	    km_expect(kv, "mib", 3, SN_KV_MAX_VALUE, 99) || km_expect_absent(kv, "mib+1", 5)) {
		free(big);
		return T_FAIL;
	}
	{
		void *v;
		size_t vl;

		ASSERT_OK(sn_kv_get(kv, "mib2", 4, &v, &vl));
		ASSERT_EQ(vl, SN_KV_MAX_VALUE);
		ASSERT_TRUE(!memcmp(v, big + 1, vl));
		free(v);
	}
	free(big);
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/* ---- overwrite, delete, scan, stats ---- */

static int test_overwrite_delete(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv *kv;

	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	printf("    overwrite returns the newest; delete -> ENOENT; deleting an absent key -> 0\n");
	ASSERT_OK(km_put(kv, "k", 1, 10, 1, 0));
	ASSERT_OK(km_put(kv, "k", 1, 2000, 2, 0));
	ASSERT_OK(km_put(kv, "k", 1, 30, 3, 0));
	if (km_expect(kv, "k", 1, 30, 3))
		return T_FAIL;
	ASSERT_OK(km_put(kv, "d", 1, 10, 4, 0));
	ASSERT_OK(sn_kv_del(kv, "d", 1, 0));
	if (km_expect_absent(kv, "d", 1))
		return T_FAIL;
	ASSERT_OK(sn_kv_del(kv, "d", 1, 0));
	ASSERT_OK(sn_kv_del(kv, "never", 5, SN_KV_DURABLE));
	ASSERT_OK(km_put(kv, "r", 1, 10, 5, 0));
	ASSERT_OK(sn_kv_del(kv, "r", 1, 0));
	ASSERT_OK(km_put(kv, "r", 1, 11, 6, 0)); /* back after a delete */
	printf("    the same after reopen\n");
	if (km_reopen(&kv, &o) || km_expect(kv, "k", 1, 30, 3) || km_expect_absent(kv, "d", 1) ||
	    km_expect_absent(kv, "never", 5) || km_expect(kv, "r", 1, 11, 6))
		return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

#define SCAN_KEYS 300

struct scan_ctx {
	unsigned char seen[SCAN_KEYS];
	unsigned count, bad, stop_after;
};

/* Keys are "s-NNNNN"; the value of key i is km_fill(i + 1000 * version), version in the
 * first byte's slot of seen[] (1 = first put, 2 = overwritten). */
static int scan_fn(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct scan_ctx *c = arg;
	unsigned char want[600];
	unsigned i;

	if (klen != 7 || memcmp(key, "s-", 2) || sscanf((const char *)key + 2, "%5u", &i) != 1 ||
	    i >= SCAN_KEYS || c->seen[i] || vlen > sizeof(want)) {
		c->bad++;
		return 0;
	}
	c->seen[i] = 1;
	km_fill(want, vlen, i % 3 == 1 ? i + 2000 : i + 1000);
	if (vlen != (i % 3 == 1 ? 500u : i % 97) || memcmp(val, want, vlen))
		c->bad++;
	c->count++;
	return c->stop_after && c->count == c->stop_after ? 42 : 0;
}

static int check_scan(struct sn_kv *kv)
{
	struct scan_ctx c = { 0 };
	unsigned live = 0;

	ASSERT_OK(sn_kv_scan(kv, scan_fn, &c));
	for (unsigned i = 0; i < SCAN_KEYS; i++) {
		int want = i % 3 != 2;

		live += want;
		if (c.seen[i] != want)
			T_FAILED("scan: key %u seen %d, expected %d", i, c.seen[i], want);
	}
	ASSERT_EQ(c.bad, 0);
	ASSERT_EQ(c.count, live);
	return T_PASS;
}

static int test_scan(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv *kv;
	struct scan_ctx c = { 0 };
	char key[32];

	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	printf("    %u keys; every third overwritten, every third deleted: scan sees exactly "
	       "the live ones with their newest values\n",
	       SCAN_KEYS);
	for (unsigned i = 0; i < SCAN_KEYS; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "s", i), i % 97, i + 1000, 0));
	for (unsigned i = 0; i < SCAN_KEYS; i++) {
		if (i % 3 == 1)
			ASSERT_OK(km_put(kv, key, km_name(key, "s", i), 500, i + 2000, 0));
		else if (i % 3 == 2)
			ASSERT_OK(sn_kv_del(kv, key, km_name(key, "s", i), 0));
	}
	if (check_scan(kv))
		return T_FAIL;
	printf("    a callback's non-zero return stops the scan and is returned\n");
	c.stop_after = 5;
	ASSERT_EQ(sn_kv_scan(kv, scan_fn, &c), 42);
	ASSERT_EQ(c.count, 5);
	printf("    the same after reopen\n");
	if (km_reopen(&kv, &o) || check_scan(kv))
		return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

static int test_stats(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st, st0;
	struct sn_kv *kv;
	uint64_t p10, p900, d;

	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	ASSERT_OK(sn_kv_stat(kv, &st0));
	printf("    fresh: %u shards, %u workers, %llu segments of %u bytes, %llu in use\n",
	       st0.shards, st0.workers, (unsigned long long)st0.segments_total, st0.segment_size,
	       (unsigned long long)st0.segments_used);
	ASSERT_EQ(st0.shards, KM_SHARDS);
	ASSERT_EQ(st0.segment_size, KM_SEG);
	ASSERT_EQ(st0.keys, 0);
	ASSERT_EQ(st0.live_bytes, 0);
	ASSERT_EQ(st0.dead_bytes, 0);
	ASSERT_EQ(st0.capacity_bytes, st0.segments_total * KM_SEG);
	ASSERT_TRUE(st0.block_size >= 4096);

	/* Record sizes from the format: header, key, value, padded to 8. */
	p10 = sn_kv_rec_len(SN_KV_REC_PUT, 5, 10);
	p900 = sn_kv_rec_len(SN_KV_REC_PUT, 5, 900);
	d = sn_kv_rec_len(SN_KV_REC_DEL, 5, 0);
	printf("    put: keys 1, live = one record (%llu bytes)\n", (unsigned long long)p10);
	ASSERT_OK(km_put(kv, "stat1", 5, 10, 1, 0));
	ASSERT_OK(sn_kv_stat(kv, &st));
	ASSERT_EQ(st.keys, 1);
	ASSERT_EQ(st.live_bytes, p10);
	ASSERT_EQ(st.dead_bytes, 0);
	ASSERT_EQ(st.puts, 1);
	printf("    overwrite: the old record becomes dead\n");
	ASSERT_OK(km_put(kv, "stat1", 5, 900, 2, 0));
	ASSERT_OK(sn_kv_stat(kv, &st));
	ASSERT_EQ(st.keys, 1);
	ASSERT_EQ(st.live_bytes, p900);
	ASSERT_EQ(st.dead_bytes, p10);
	printf("    delete: keys 0, the put is dead, the tombstone is live until compacted\n");
	ASSERT_OK(sn_kv_del(kv, "stat1", 5, 0));
	ASSERT_OK(sn_kv_stat(kv, &st));
	ASSERT_EQ(st.keys, 0);
	ASSERT_EQ(st.live_bytes, d);
	ASSERT_EQ(st.dead_bytes, p10 + p900);
	ASSERT_EQ(st.dels, 1);
	printf("    deleting an absent key writes nothing\n");
	ASSERT_OK(sn_kv_del(kv, "stat2", 5, 0));
	ASSERT_OK(sn_kv_stat(kv, &st));
	ASSERT_EQ(st.live_bytes, d);
	ASSERT_EQ(st.dead_bytes, p10 + p900);
	{
		void *v;
		size_t vl;

		ASSERT_ERR(sn_kv_get(kv, "stat1", 5, &v, &vl), -ENOENT);
		ASSERT_OK(sn_kv_stat(kv, &st));
		ASSERT_EQ(st.gets, 1);
	}
	printf("    sync: a flush; reopen (from the index checkpoint, then scanning the whole "
	       "log): the same live and dead bytes\n");
	ASSERT_OK(sn_kv_sync(kv));
	ASSERT_OK(sn_kv_stat(kv, &st));
	ASSERT_TRUE(st.flushes >= 1);
	ASSERT_TRUE(st.syncs >= 1);
	for (int full = 0; full < 2; full++) {
		o.no_checkpoint = full;
		if (km_reopen(&kv, &o))
			return T_FAIL;
		ASSERT_OK(sn_kv_stat(kv, &st));
		ASSERT_EQ(st.keys, 0);
		ASSERT_EQ(st.live_bytes, d);
		ASSERT_EQ(st.dead_bytes, p10 + p900);
		ASSERT_EQ(st.recovered_records, full ? 3 : 0);
		ASSERT_EQ(st.checkpoint_keys, full ? 0 : 1); /* the delete's entry */
		ASSERT_EQ(st.torn_bytes, 0);
		ASSERT_EQ(st.corrupt_records, 0);
	}
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/* After a restart the cache is empty: gets that miss read their record and, while there
 * is room, the record's whole segment, so the gets after them are served from memory. */
static int test_cache_warms(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats a, b;
	uint64_t hits = 0, gets = 0;
	struct sn_kv *kv;
	char key[32];
	unsigned pass;
	enum { N = 3000 };

	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	for (unsigned i = 0; i < N; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "warm", i), 400, i, 0));
	if (km_reopen(&kv, &o))
		return T_FAIL;
	ASSERT_OK(sn_kv_stat(kv, &a));
	if (a.mapped) {
		ASSERT_OK(sn_kv_close(kv));
		SKIP("the log is the device's mapping: gets read it, nothing is cached");
	}
	/* Segments load in the background: later passes find them, one of the first
	 * few finds every get in memory (a slow machine gets 20 passes). */
	for (pass = 0; pass < 20; pass++) {
		for (unsigned i = 0; i < N; i++)
			if (km_expect(kv, key, km_name(key, "warm", i), 400, i))
				return T_FAIL;
		ASSERT_OK(sn_kv_stat(kv, &b));
		hits = b.cache_hits - a.cache_hits;
		gets = hits + b.cache_misses - a.cache_misses;
		printf("    pass %u: %llu of %llu gets from memory, %llu of %llu segments "
		       "cached\n",
		       pass, (unsigned long long)hits, (unsigned long long)gets,
		       (unsigned long long)(b.cache_bytes / KM_SEG),
		       (unsigned long long)b.segments_used);
		if (pass == 0)
			ASSERT_TRUE(b.cache_misses - a.cache_misses >= b.segments_used / 2);
		else if (hits == gets)
			break;
		a = b;
	}
	ASSERT_EQ(hits, gets);
	/* A cache of 2 segments a shard (the least it takes; the head is one): the misses
	 * fill the rest and no more, loads under way counted. */
	o.cache_bytes = 2ull * KM_SHARDS * KM_SEG;
	if (km_reopen(&kv, &o))
		return T_FAIL;
	for (pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < N; i++)
			if (km_expect(kv, key, km_name(key, "warm", i), 400, i))
				return T_FAIL;
	ASSERT_OK(sn_kv_stat(kv, &b));
	printf("    a cache of %llu bytes: %llu cached, %llu gets from memory of %llu\n",
	       (unsigned long long)o.cache_bytes, (unsigned long long)b.cache_bytes,
	       (unsigned long long)b.cache_hits,
	       (unsigned long long)(b.cache_hits + b.cache_misses));
	ASSERT_LE(b.cache_bytes, o.cache_bytes);
	ASSERT_TRUE(b.cache_hits > 0);
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/* Many keys over several segments of every shard survive a clean close. */
static int test_reopen_many(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st;
	struct sn_kv *kv;
	char key[32];
	const unsigned n = 600;

	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	for (unsigned i = 0; i < n; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "m", i), 100 + (i * 37) % 3000, i, 0));
	ASSERT_OK(sn_kv_stat(kv, &st));
	printf("    %u keys in %llu segments; close, reopen, read every value\n", n,
	       (unsigned long long)st.segments_used);
	ASSERT_TRUE(st.segments_used > 2 * KM_SHARDS);
	/* From the checkpoint the close wrote, from the one the next close wrote, and by
	 * scanning the log. */
	for (int pass = 0; pass < 3; pass++) {
		o.no_checkpoint = pass == 2;
		if (km_reopen(&kv, &o))
			return T_FAIL;
		ASSERT_OK(sn_kv_stat(kv, &st));
		ASSERT_EQ(st.keys, n);
		ASSERT_EQ(st.recovered_records, pass == 2 ? n : 0);
		ASSERT_EQ(st.checkpoint_keys, pass == 2 ? 0 : n);
		ASSERT_TRUE(pass == 2 ? !st.checkpoint_segments : st.checkpoint_segments > 0);
		if (pass == 0) {
			struct sn_kv *kv2 = NULL;

			printf("    a second open while it is open: -EBUSY (the file's lock)\n");
			ASSERT_ERR(sn_kv_open(km_uri, &o, &kv2), -EBUSY);
			ASSERT_STR_HAS(sn_errmsg(), "in use");
			ASSERT_TRUE(kv2 == NULL);
		}
		for (unsigned i = 0; i < n; i++)
			if (km_expect(kv, key, km_name(key, "m", i), 100 + (i * 37) % 3000, i))
				return T_FAIL;
	}
	ASSERT_OK(sn_kv_close(kv));
	o.no_checkpoint = 0;

	printf("    no_create on a device without a store: -ENOENT\n");
	o.no_create = 1;
	unlink(km_path);
	ASSERT_ERR(sn_kv_open(km_uri, &o, &kv), -ENOENT);
	ASSERT_TRUE(kv == NULL);
	return T_PASS;
}

/* ---- durability calls ---- */

static int test_sync_durable(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st0, st;
	struct sn_kv *kv;

	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	ASSERT_OK(sn_kv_stat(kv, &st0));
	printf("    SN_KV_DURABLE put and delete, sn_kv_sync: each waits for a flush\n");
	ASSERT_OK(km_put(kv, "dur", 3, 100, 1, SN_KV_DURABLE));
	ASSERT_OK(sn_kv_stat(kv, &st));
	ASSERT_TRUE(st.flushes > st0.flushes);
	ASSERT_OK(km_put(kv, "dur2", 4, 100, 2, 0));
	ASSERT_OK(sn_kv_del(kv, "dur", 3, SN_KV_DURABLE));
	ASSERT_OK(sn_kv_sync(kv));
	ASSERT_OK(sn_kv_sync(kv)); /* nothing new: still 0 */
	ASSERT_OK(sn_kv_stat(kv, &st0));
	ASSERT_TRUE(st0.syncs >= KM_SHARDS);
	ASSERT_OK(sn_kv_close(kv));

	printf("    sync=always and sync=interval stores: writes are acknowledged and kept\n");
	o.sync = SN_KV_SYNC_ALWAYS;
	ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
	ASSERT_OK(sn_kv_stat(kv, &st0));
	ASSERT_OK(km_put(kv, "always", 6, 100, 3, 0));
	ASSERT_OK(sn_kv_stat(kv, &st));
	ASSERT_TRUE(st.flushes > st0.flushes);
	if (km_reopen(&kv, &o))
		return T_FAIL;
	o.sync = SN_KV_SYNC_INTERVAL;
	o.sync_interval_us = 200;
	if (km_reopen(&kv, &o))
		return T_FAIL;
	ASSERT_OK(sn_kv_stat(kv, &st0));
	ASSERT_OK(km_put(kv, "interval", 8, 100, 4, 0));
	for (int i = 0; i < 2000; i++) { /* a background flush within 2 s */
		ASSERT_OK(sn_kv_stat(kv, &st));
		if (st.flushes > st0.flushes)
			break;
		usleep(1000);
	}
	ASSERT_TRUE(st.flushes > st0.flushes);
	if (km_expect_absent(kv, "dur", 3) || km_expect(kv, "dur2", 4, 100, 2) ||
	    km_expect(kv, "always", 6, 100, 3) || km_expect(kv, "interval", 8, 100, 4))
		return T_FAIL;
	o.sync = 7;
	ASSERT_OK(sn_kv_close(kv));
	ASSERT_ERR(sn_kv_open(km_uri, &o, &kv), -EINVAL);
	return T_PASS;
}

/* The child of test_sync_unsent: a store on a runtime of its own, stopped under it. */
static int sync_unsent_child(void)
{
	struct sn_rt_opts ro = { .workers = 2, .flags = SN_RT_NOPIN };
	struct sn_kv_opts o = km_opts();
	struct sn_rt *rt;
	struct sn_kv *kv, *kv2 = NULL;

	ASSERT_OK(sn_rt_create(&ro, &rt));
	o.rt = rt;
	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	ASSERT_OK(km_put(kv, "durable", 7, 100, 7, SN_KV_DURABLE));
	ASSERT_OK(km_put(kv, "unsent", 6, 100, 5, 0));
	ASSERT_EQ(sn_rt_stopped(rt), 0);
	ASSERT_OK(sn_rt_stop(rt));
	ASSERT_EQ(sn_rt_stopped(rt), 1);
	ASSERT_ERR(sn_kv_sync(kv), -ESHUTDOWN);
	/* Opening a store on that runtime fails too, at once. */
	ASSERT_ERR(sn_kv_open(km_uri, &o, &kv2), -ESHUTDOWN);
	/* Close cannot flush, but frees the store all the same (the workers are gone); the
	 * child leaves through exit(), so a leak shows in the sanitizer build. */
	ASSERT_ERR(sn_kv_close(kv), -ESHUTDOWN);
	sn_rt_destroy(rt);
	/* As after a crash: the durable write is there. */
	o.rt = NULL;
	ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
	ASSERT_OK(km_expect(kv, "durable", 7, 100, 7));
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/* sn_kv_sync when no shard's sync can be sent (here: the runtime given in opts.rt was
 * stopped; out of memory takes the same path) returns the error instead of waiting for a
 * callback that never runs, and sn_kv_close still frees the store. In a child that
 * SIGALRM ends if a call never returns. */
static int test_sync_unsent(void)
{
	int status;
	pid_t pid;

	printf("    sn_kv_sync, sn_kv_open and sn_kv_close with the runtime stopped: -ESHUTDOWN "
	       "within 30 s\n");
	fflush(stdout);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		int r;

		alarm(30);
		r = sync_unsent_child();
		fflush(stdout);
		exit(r);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		T_FAILED("the child died of signal %d (%s)", WTERMSIG(status),
		         WTERMSIG(status) == SIGALRM ? "a call never returned" : "a crash");
	ASSERT_EQ(WEXITSTATUS(status), T_PASS);
	return T_PASS;
}

/* The runtime a store starts has opts.workers workers, never more than its shards. */
static int test_own_workers(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st;
	struct sn_rt *rt;
	struct sn_kv *kv;
	char key[32];
	const unsigned want[] = { 1, 3, KM_SHARDS + 2 }, got[] = { 1, 3, KM_SHARDS };

	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		o.workers = want[i];
		if (km_open_fresh(&o, &kv))
			return T_FAIL;
		ASSERT_OK(sn_kv_stat(kv, &st));
		printf("    opts.workers %u: %u workers for %u shards\n", want[i], st.workers,
		       st.shards);
		ASSERT_EQ(st.workers, got[i]);
		ASSERT_EQ(sn_rt_workers(sn_kv_rt(kv)), got[i]);
		for (unsigned k = 0; k < 64; k++)
			ASSERT_OK(km_put(kv, key, km_name(key, "w", k), 20, k, 0));
		for (unsigned k = 0; k < 64; k++)
			if (km_expect(kv, key, km_name(key, "w", k), 20, k))
				return T_FAIL;
		ASSERT_OK(sn_kv_close(kv));
	}
	printf("    opts.workers with a runtime of the caller's (opts.rt): refused\n");
	{
		struct sn_rt_opts ro = { .workers = 1, .flags = SN_RT_NOPIN };

		ASSERT_OK(sn_rt_create(&ro, &rt));
		o.rt = rt;
		o.workers = 1;
		ASSERT_ERR(sn_kv_open(km_uri, &o, &kv), -EINVAL);
		sn_rt_destroy(rt);
	}
	return T_PASS;
}

/* ---- asynchronous calls ---- */

struct async_ctx {
	struct sn_rt_latch latch;
	struct sn_rt *rt;
	unsigned worker; /* the worker the calls were made on, or SN_RT_FOREIGN */
	int in_call;     /* set while the calling function runs (worker case) */
	_Atomic unsigned wrong_thread, inside_call, errors, bad_values, calls;
};

struct async_op {
	struct async_ctx *c;
	int want_res;
	size_t want_len;
	uint32_t tag; /* get: expected value */
};

static void async_cb(void *arg, int res, const void *val, size_t vlen)
{
	struct async_op *op = arg;
	struct async_ctx *c = op->c;

	if (c->worker == SN_RT_FOREIGN) {
		/* A foreign caller's callback runs on the owning worker. */
		if (sn_rt_self() == SN_RT_FOREIGN || sn_rt_current() != c->rt)
			c->wrong_thread++;
	} else {
		if (sn_rt_self() != c->worker)
			c->wrong_thread++;
		if (c->in_call)
			c->inside_call++;
	}
	if (res != op->want_res)
		c->errors++;
	if (!res && op->want_len != (size_t)-1) {
		unsigned char want[256];

		km_fill(want, op->want_len, op->tag);
		if (vlen != op->want_len || memcmp(val, want, vlen))
			c->bad_values++;
	}
	c->calls++;
	sn_rt_latch_done(&c->latch);
}

#define ASYNC_KEYS 16

/* Issue puts, gets of those puts (same order per key: routed in order), a get of an absent
 * key, deletes and a sync: 4 * ASYNC_KEYS + 2 callbacks. */
static int issue_async(struct sn_kv *kv, struct async_ctx *c, struct async_op *ops)
{
	unsigned char val[256];
	char key[32];
	unsigned n = 0;
	int err = 0;

	for (unsigned i = 0; i < ASYNC_KEYS && !err; i++) {
		size_t kl = km_name(key, "a", i);

		km_fill(val, 50 + i, 500 + i);
		ops[n] = (struct async_op){ c, 0, (size_t)-1, 0 };
		err = sn_kv_put_async(kv, key, kl, val, 50 + i, 0, async_cb, &ops[n++]);
		if (!err) {
			ops[n] = (struct async_op){ c, 0, 50 + i, 500 + i };
			err = sn_kv_get_async(kv, key, kl, async_cb, &ops[n++]);
		}
	}
	if (!err) {
		ops[n] = (struct async_op){ c, -ENOENT, (size_t)-1, 0 };
		err = sn_kv_get_async(kv, "absent", 6, async_cb, &ops[n++]);
	}
	for (unsigned i = 0; i < ASYNC_KEYS && !err; i++) {
		size_t kl = km_name(key, "b", i);

		ops[n] = (struct async_op){ c, 0, (size_t)-1, 0 };
		err = sn_kv_put_async(kv, key, kl, "x", 1, SN_KV_DURABLE, async_cb, &ops[n++]);
		if (!err) {
			ops[n] = (struct async_op){ c, 0, (size_t)-1, 0 };
			err = sn_kv_del_async(kv, key, kl, 0, async_cb, &ops[n++]);
		}
	}
	if (!err) {
		ops[n] = (struct async_op){ c, 0, (size_t)-1, 0 };
		err = sn_kv_sync_async(kv, async_cb, &ops[n++]);
	}
	return err;
}

static int check_async(struct async_ctx *c, struct sn_kv *kv)
{
	char key[32];

	printf("    %u callbacks: %u on a wrong thread, %u inside the call, %u wrong results, "
	       "%u wrong values\n",
	       c->calls, c->wrong_thread, c->inside_call, c->errors, c->bad_values);
	ASSERT_EQ(c->calls, 4 * ASYNC_KEYS + 2);
	ASSERT_EQ(c->wrong_thread, 0);
	ASSERT_EQ(c->inside_call, 0);
	ASSERT_EQ(c->errors, 0);
	ASSERT_EQ(c->bad_values, 0);
	for (unsigned i = 0; i < ASYNC_KEYS; i++)
		if (km_expect(kv, key, km_name(key, "a", i), 50 + i, 500 + i) ||
		    km_expect_absent(kv, key, km_name(key, "b", i)))
			return T_FAIL;
	return T_PASS;
}

static void never_cb(void *arg, int res, const void *val, size_t vlen)
{
	(void)res;
	(void)val;
	(void)vlen;
	(*(_Atomic unsigned *)arg)++;
}

static int test_async_foreign(void)
{
	struct sn_kv_opts o = km_opts();
	static struct async_ctx c;
	static struct async_op ops[4 * ASYNC_KEYS + 2];
	static _Atomic unsigned never;
	struct sn_kv *kv;

	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	memset(&c, 0, sizeof(c));
	c.rt = sn_kv_rt(kv);
	c.worker = SN_RT_FOREIGN;
	printf("    from this (foreign) thread: callbacks run on the owning worker; a latch "
	       "waits\n");
	sn_rt_latch_init(&c.latch, 4 * ASYNC_KEYS + 2);
	ASSERT_OK(issue_async(kv, &c, ops));
	sn_rt_latch_wait(&c.latch);
	if (check_async(&c, kv))
		return T_FAIL;
	printf("    a refused call (-EINVAL) never runs its callback\n");
	ASSERT_ERR(sn_kv_put_async(kv, "", 0, "v", 1, 0, never_cb, &never), -EINVAL);
	ASSERT_ERR(sn_kv_get_async(kv, "", 0, never_cb, &never), -EINVAL);
	ASSERT_ERR(sn_kv_del_async(kv, "k", 1, 0x10, never_cb, &never), -EINVAL);
	ASSERT_OK(sn_kv_sync(kv));
	ASSERT_EQ(never, 0);
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/*
 * Callbacks that make durable calls. A foreign thread's callbacks run on the owning
 * worker, which may be completing a group commit's waiters at that moment; a durable put
 * made there waits for the next round, on that same list. Every call must come back (one
 * lost leaves the count short) and every key must read back.
 */
#define CHAIN_CALLS 100 /* from this thread; each callback makes one more */

struct chain {
	struct sn_kv *kv;
	_Atomic unsigned done, made;
	_Atomic int bad;
};

static void chain_key(char *key, size_t len, unsigned n)
{
	snprintf(key, len, "chain-%u", n);
}

static void chain_done(void *arg, int res, const void *val, size_t vlen)
{
	struct chain *c = arg;

	(void)val;
	(void)vlen;
	if (res)
		c->bad = res;
	c->done++;
}

static void chain_next(void *arg, int res, const void *val, size_t vlen)
{
	struct chain *c = arg;
	char key[32];
	int err;

	chain_done(arg, res, val, vlen);
	chain_key(key, sizeof(key), CHAIN_CALLS + c->made++);
	err = sn_kv_put_async(c->kv, key, strlen(key), key, strlen(key), SN_KV_DURABLE, chain_done,
	                      c);
	if (err)
		c->bad = err;
}

static int test_callback_chains(void)
{
	static struct chain c;
	struct sn_kv *kv;

	for (unsigned shards = 1; shards <= 2; shards++) {
		struct sn_kv_opts o = km_opts();

		o.shards = shards;
		o.workers = shards;
		if (km_open_fresh(&o, &kv))
			return T_FAIL;
		memset(&c, 0, sizeof(c));
		c.kv = kv;
		/* Half the calls one at a time (each is the round's last waiter), half at once
		 * (other waiters follow it). */
		for (unsigned n = 0; n < CHAIN_CALLS; n++) {
			char key[32];
			int err;

			chain_key(key, sizeof(key), n);
			while ((err = sn_kv_put_async(kv, key, strlen(key), key, strlen(key),
			                              SN_KV_DURABLE, chain_next, &c)) == -EAGAIN)
				sched_yield();
			ASSERT_OK(err);
			for (int ms = 0;
			     n < CHAIN_CALLS / 2 && ms < 5000 && c.done < 2 * (n + 1) && !c.bad;
			     ms++)
				usleep(1000);
		}
		for (int ms = 0; ms < 20000 && c.done < 2 * CHAIN_CALLS && !c.bad; ms++)
			usleep(1000);
		printf("    %u shard(s): %u of %u calls came back\n", shards, (unsigned)c.done,
		       2 * CHAIN_CALLS);
		ASSERT_EQ(c.bad, 0);
		ASSERT_EQ(c.done, 2 * CHAIN_CALLS);
		for (unsigned n = 0; n < 2 * CHAIN_CALLS; n++) {
			char key[32];
			void *v;
			size_t vl;

			chain_key(key, sizeof(key), n);
			ASSERT_OK(sn_kv_get(kv, key, strlen(key), &v, &vl));
			ASSERT_TRUE(vl == strlen(key) && !memcmp(v, key, vl));
			free(v);
		}
		ASSERT_OK(sn_kv_close(kv));
	}
	return T_PASS;
}

/* A fresh store on a runtime of our own with 2 workers (not pinned): o->rt is set. */
static int open_on_own_rt(struct sn_kv_opts *o, struct sn_rt **rt, struct sn_kv **kv)
{
	struct sn_rt_opts ro = { 0 };

	ro.workers = 2;
	ro.flags = SN_RT_NOPIN;
	ASSERT_OK(sn_rt_create(&ro, rt));
	o->rt = *rt;
	return km_open_fresh(o, kv);
}

/*
 * Threads that exit while their calls are in flight. A plain thread's requests come from a
 * cache of that thread (src/kv/req.c) and go back to it when they complete; here each
 * thread's first callback holds its worker until the thread has been joined, so that
 * request (and those queued behind it) come back to the cache of a thread that is gone.
 * ASan and TSan builds check the cache's memory; this checks every call's result.
 */
#define EXIT_THREADS 4
#define EXIT_CALLS   200 /* per thread: all fit in the workers' inboxes at once */

struct exit_thread {
	struct sn_kv *kv;
	pthread_t tid;
	unsigned idx;
	int err;
};

static _Atomic int exit_gate;
static _Atomic unsigned exit_done, exit_bad, exit_held;

static void exit_cb(void *arg, int res, const void *val, size_t vlen)
{
	uintptr_t call = (uintptr_t)arg;

	(void)val;
	(void)vlen;
	if (res)
		exit_bad++;
	if (call % EXIT_CALLS == 0) { /* a thread's first call: wait until it is gone */
		exit_held++;
		while (!atomic_load(&exit_gate))
			sched_yield();
	}
	exit_done++;
}

static void *exit_thread_main(void *arg)
{
	struct exit_thread *t = arg;
	unsigned char val[100];
	char key[32];

	for (unsigned i = 0; i < EXIT_CALLS && !t->err; i++) {
		uintptr_t call = (uintptr_t)t->idx * EXIT_CALLS + i;
		size_t kl = km_name(key, "x", (unsigned)call);

		km_fill(val, sizeof(val), (uint32_t)call);
		t->err =
		        sn_kv_put_async(t->kv, key, kl, val, sizeof(val), 0, exit_cb, (void *)call);
	}
	return NULL; /* without waiting for a single callback */
}

static int test_async_threads_exit(void)
{
	struct sn_kv_opts o = km_opts();
	struct exit_thread t[EXIT_THREADS];
	struct sn_rt *rt;
	struct sn_kv *kv;
	char key[32];

	if (open_on_own_rt(&o, &rt, &kv))
		return T_FAIL;
	printf("    %u threads each make %u async puts and exit; the first callback of each "
	       "waits until they are joined\n",
	       EXIT_THREADS, EXIT_CALLS);
	exit_gate = 0;
	exit_done = exit_bad = exit_held = 0;
	for (unsigned i = 0; i < EXIT_THREADS; i++) {
		t[i] = (struct exit_thread){ .kv = kv, .idx = i };
		ASSERT_EQ(pthread_create(&t[i].tid, NULL, exit_thread_main, &t[i]), 0);
	}
	for (unsigned i = 0; i < EXIT_THREADS; i++) {
		ASSERT_EQ(pthread_join(t[i].tid, NULL), 0);
		ASSERT_OK(t[i].err);
	}
	atomic_store(&exit_gate, 1);
	while (atomic_load(&exit_done) < EXIT_THREADS * EXIT_CALLS)
		sched_yield();
	printf("    %u callbacks (%u held), %u failed\n", exit_done, exit_held, exit_bad);
	ASSERT_EQ(exit_held, EXIT_THREADS);
	ASSERT_EQ(exit_bad, 0);
	for (unsigned i = 0; i < EXIT_THREADS * EXIT_CALLS; i++)
		if (km_expect(kv, key, km_name(key, "x", i), 100, i))
			return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));
	sn_rt_destroy(rt);
	return T_PASS;
}

struct on_worker {
	struct sn_kv *kv;
	struct async_ctx *c;
	struct async_op *ops;
	int err, blocking;
};

static void issue_on_worker(void *arg)
{
	struct on_worker *w = arg;
	void *v;
	size_t vl;

	w->c->in_call = 1;
	w->c->worker = sn_rt_self();
	w->err = issue_async(w->kv, w->c, w->ops);
	/* Blocking calls would stop this worker's loop: refused. */
	w->blocking = sn_kv_put(w->kv, "k", 1, "v", 1, 0);
	if (w->blocking == -EDEADLK)
		w->blocking = sn_kv_get(w->kv, "k", 1, &v, &vl);
	if (w->blocking == -EDEADLK)
		w->blocking = sn_kv_sync(w->kv);
	w->c->in_call = 0;
}

static int test_async_worker(void)
{
	struct sn_kv_opts o = km_opts();
	static struct async_ctx c;
	static struct async_op ops[4 * ASYNC_KEYS + 2];
	struct on_worker w;
	struct sn_rt *rt;
	struct sn_kv *kv;

	if (open_on_own_rt(&o, &rt, &kv))
		return T_FAIL;
	ASSERT_TRUE(sn_kv_rt(kv) == rt);
	for (unsigned wk = 0; wk < 2; wk++) {
		memset(&c, 0, sizeof(c));
		c.rt = rt;
		w = (struct on_worker){ kv, &c, ops, 0, 0 };
		printf("    on worker %u of our own runtime: callbacks on that worker, after the "
		       "call returned; blocking calls -EDEADLK\n",
		       wk);
		sn_rt_latch_init(&c.latch, 4 * ASYNC_KEYS + 2);
		ASSERT_OK(sn_rt_call(rt, wk, issue_on_worker, &w));
		ASSERT_OK(w.err);
		ASSERT_EQ(w.blocking, -EDEADLK);
		sn_rt_latch_wait(&c.latch);
		ASSERT_EQ(c.worker, wk);
		if (check_async(&c, kv))
			return T_FAIL;
	}
	ASSERT_OK(sn_kv_close(kv));
	sn_rt_destroy(rt); /* the store did not own it */
	return T_PASS;
}

/*
 * A sync made on a worker whose ring to another shard's owner is full: the call takes it
 * (returns 0), the shard it could not reach is asked again from the worker's loop, and
 * the callback runs once, with 0. Before, that shard was skipped and the callback got
 * -EAGAIN, a "failed" sync for a caller that had nothing to retry.
 */
struct full_ring {
	struct sn_kv *kv;
	struct sn_rt_latch done; /* the sync's callback ran */
	unsigned accepted, eagain;
	_Atomic unsigned put_cbs, put_bad, sync_cbs;
	_Atomic int sync_res;
	int sync_ret;
};

static void full_ring_put_cb(void *arg, int res, const void *val, size_t vlen)
{
	struct full_ring *f = arg;

	(void)val;
	(void)vlen;
	f->put_cbs++;
	f->put_bad += res != 0;
}

static void full_ring_sync_cb(void *arg, int res, const void *val, size_t vlen)
{
	struct full_ring *f = arg;

	(void)val;
	(void)vlen;
	f->sync_res = res;
	if (f->sync_cbs++ == 0)
		sn_rt_latch_done(&f->done);
}

static void full_ring_fill(void *arg)
{
	struct full_ring *f = arg;
	char key[32];

	/* Durable puts go as requests of their own: those to worker 1's shard fill the ring. */
	for (unsigned i = 0; i < 1000000 && !f->eagain; i++) {
		int err = sn_kv_put_async(f->kv, key, km_name(key, "r", i), "v", 1, SN_KV_DURABLE,
		                          full_ring_put_cb, f);

		if (err == -EAGAIN)
			f->eagain = 1;
		else if (!err)
			f->accepted++;
	}
	f->sync_ret = sn_kv_sync_async(f->kv, full_ring_sync_cb, f);
}

static int test_sync_full_ring(void)
{
	struct sn_kv_opts o = km_opts();
	static struct full_ring f;
	struct sn_rt *rt;

	o.shards = 2;
	if (open_on_own_rt(&o, &rt, &f.kv))
		return T_FAIL;
	sn_rt_latch_init(&f.done, 1);
	ASSERT_OK(sn_rt_call(rt, 0, full_ring_fill, &f));
	printf("    worker 0: %u durable puts taken before -EAGAIN, then sn_kv_sync_async\n",
	       f.accepted);
	ASSERT_EQ(f.eagain, 1);
	ASSERT_OK(f.sync_ret);
	sn_rt_latch_wait(&f.done);
	while (atomic_load(&f.put_cbs) < f.accepted)
		sched_yield();
	ASSERT_OK(sn_kv_close(f.kv));
	sn_rt_destroy(rt);
	printf("    sync callback ran %u time(s) with %d; %u puts failed\n", f.sync_cbs, f.sync_res,
	       f.put_bad);
	ASSERT_EQ(f.sync_cbs, 1);
	ASSERT_OK(f.sync_res);
	ASSERT_EQ(f.put_bad, 0);
	return T_PASS;
}

/*
 * Many calls from two workers at once, each worker to every shard: the calls to another
 * worker's shards travel in batches, its own run at once (src/kv/post.c). Values of
 * 0..2599 bytes (the larger ones go as requests of their own), a cache too small for
 * the data (gets that must read the device), two puts and a get of one key issued back
 * to back (the get sees the second put), then deletes.
 */
/* val holds exactly the want_len bytes of value tag (from a callback: any worker). */
static int value_is(const void *val, size_t vlen, size_t want_len, uint64_t tag)
{
	static _Thread_local unsigned char want[3000];

	if (vlen != want_len || want_len > sizeof(want))
		return 0;
	km_fill(want, want_len, tag);
	return !vlen || !memcmp(val, want, vlen);
}

#define DRV_KEYS  700
#define DRV_DEPTH 48

/* Between DEL and SPILL the test syncs the store: SPILL's new segments then push the
 * (durable) older ones out of the cache, and CHECK's gets read the device. */
enum { DRV_FILL, DRV_PAIRS, DRV_DEL, DRV_PAUSE, DRV_SPILL, DRV_CHECK, DRV_DONE };

struct drv;
struct drv_op {
	struct drv *d;
	int want_res;
	size_t want_len; /* (size_t)-1: no value expected */
	uint32_t tag;
};

struct drv {
	struct sn_kv *kv;
	unsigned w, phase, next, inflight, in_call;
	unsigned calls, errors, bad_values, wrong_thread, inside_call, eagain;
	struct sn_rt_latch *done;
	struct sn_rt_task pump_task;
	struct drv_op ops[3 * DRV_KEYS];
};

static uint32_t drv_len(unsigned i)
{
	return (i * 131u) % 2600u;
}

static void drv_pump(void *arg);

static void drv_cb(void *arg, int res, const void *val, size_t vlen)
{
	struct drv_op *op = arg;
	struct drv *d = op->d;

	d->calls++;
	d->wrong_thread += sn_rt_self() != d->w;
	d->inside_call += d->in_call;
	if (res != op->want_res) {
		if (d->errors++ < 3)
			printf("    worker %u: a call returned %d, not %d (%s)\n", d->w, res,
			       op->want_res, res ? sn_errmsg() : "");
	} else if (!res && op->want_len != (size_t)-1) {
		d->bad_values += !value_is(val, vlen, op->want_len, op->tag);
	}
	d->inflight--;
	drv_pump(d);
}

/* Issue the next call of the current phase; 0, 1 when the phase has none left, or the
 * call's error. */
static int drv_issue(struct drv *d)
{
	unsigned i = d->next, k = d->w * DRV_KEYS + i;
	unsigned char val[2600];
	char key[32];
	size_t kl = km_name(key, "drv", k);
	struct drv_op *op = &d->ops[3 * i];
	int err;

	if (i >= DRV_KEYS)
		return 1;
	switch (d->phase) {
	case DRV_FILL:
		km_fill(val, drv_len(i) / 2, 1000000 + k);
		*op = (struct drv_op){ d, 0, (size_t)-1, 0 };
		err = sn_kv_put_async(d->kv, key, kl, val, drv_len(i) / 2, 0, drv_cb, op);
		break;
	case DRV_PAIRS:
		/* Two puts and a get of one key at once: calls to one shard run in order,
		 * also when the first goes in a batch and the second (a value over 2 KiB) as
		 * a request. */
		km_fill(val, drv_len(i) / 3, 3000000 + k);
		*op = (struct drv_op){ d, 0, (size_t)-1, 0 };
		err = sn_kv_put_async(d->kv, key, kl, val, drv_len(i) / 3, 0, drv_cb, op);
		if (!err) {
			d->inflight++; /* on its way, whatever the next calls do */
			km_fill(val, drv_len(i), 2000000 + k);
			op[1] = (struct drv_op){ d, 0, (size_t)-1, 0 };
			err = sn_kv_put_async(d->kv, key, kl, val, drv_len(i), 0, drv_cb, op + 1);
		}
		if (!err) {
			d->inflight++;
			op[2] = (struct drv_op){ d, 0, drv_len(i), 2000000 + k };
			err = sn_kv_get_async(d->kv, key, kl, drv_cb, op + 2);
		}
		break;
	case DRV_SPILL:
		if (i >= DRV_KEYS / 2)
			return 1;
		kl = km_name(key, "spill", k);
		km_fill(val, 1900, 4000000 + k);
		*op = (struct drv_op){ d, 0, (size_t)-1, 0 };
		err = sn_kv_put_async(d->kv, key, kl, val, 1900, 0, drv_cb, op);
		break;
	case DRV_DEL:
		*op = (struct drv_op){ d, 0, (size_t)-1, 0 };
		err = i % 3 ? 0 : sn_kv_del_async(d->kv, key, kl, 0, drv_cb, op);
		if (i % 3) {
			d->next++;
			return 0;
		}
		break;
	default: /* DRV_CHECK */
		*op = (struct drv_op){ d, i % 3 ? 0 : -ENOENT, i % 3 ? drv_len(i) : (size_t)-1,
			               2000000 + k };
		err = sn_kv_get_async(d->kv, key, kl, drv_cb, op);
	}
	if (err)
		return err;
	d->inflight++;
	d->next++;
	return 0;
}

static void drv_pump(void *arg)
{
	struct drv *d = arg;

	d->in_call = 1;
	while (d->phase != DRV_DONE && d->phase != DRV_PAUSE && d->inflight < DRV_DEPTH) {
		int r = drv_issue(d);

		if (r == -EAGAIN) { /* a ring is full: later */
			d->eagain++;
			sn_rt_defer(&d->pump_task);
			break;
		}
		if (r < 0) {
			d->errors++;
			printf("    worker %u: a call was refused: %s\n", d->w, sn_errmsg());
			d->phase = DRV_DONE;
			sn_rt_latch_done(d->done); /* the test fails on errors */
		} else if (r == 1) {
			if (d->inflight)
				break; /* the next phase waits for this one's answers */
			d->next = 0;
			if (++d->phase == DRV_DONE || d->phase == DRV_PAUSE)
				sn_rt_latch_done(d->done);
		}
	}
	d->in_call = 0;
}

static int test_async_two_workers(void)
{
	struct sn_kv_opts o = km_opts();
	static struct drv d[2];
	struct sn_rt_latch done;
	struct sn_kv_stats st;
	struct sn_rt *rt;
	struct sn_kv *kv;

	o.cache_bytes = 256u << 10; /* 4 segments: most gets read the device */
	if (open_on_own_rt(&o, &rt, &kv))
		return T_FAIL;
	sn_rt_latch_init(&done, 2);
	for (unsigned w = 0; w < 2; w++) {
		memset(&d[w], 0, sizeof(d[w]));
		d[w].kv = kv;
		d[w].w = w;
		d[w].done = &done;
		d[w].pump_task = (struct sn_rt_task){ drv_pump, &d[w], NULL, 0 };
		ASSERT_OK(sn_rt_send(rt, w, drv_pump, &d[w]));
	}
	sn_rt_latch_wait(&done);
	ASSERT_OK(sn_kv_sync(kv));
	sn_rt_latch_init(&done, 2);
	for (unsigned w = 0; w < 2; w++) {
		ASSERT_EQ(d[w].phase, DRV_PAUSE);
		d[w].phase = DRV_SPILL;
		ASSERT_OK(sn_rt_send(rt, w, drv_pump, &d[w]));
	}
	sn_rt_latch_wait(&done);
	for (unsigned w = 0; w < 2; w++) {
		printf("    worker %u: %u callbacks: %u errors, %u wrong values, %u on a wrong "
		       "thread, %u inside the call; %u times a full ring\n",
		       w, d[w].calls, d[w].errors, d[w].bad_values, d[w].wrong_thread,
		       d[w].inside_call, d[w].eagain);
		ASSERT_EQ(d[w].calls, DRV_KEYS * 5 + (DRV_KEYS + 2) / 3 + DRV_KEYS / 2);
		ASSERT_EQ(d[w].errors, 0);
		ASSERT_EQ(d[w].bad_values, 0);
		ASSERT_EQ(d[w].wrong_thread, 0);
		ASSERT_EQ(d[w].inside_call, 0);
	}
	ASSERT_OK(sn_kv_stat(kv, &st));
	printf("    %llu gets from memory, %llu from the device\n",
	       (unsigned long long)st.cache_hits, (unsigned long long)st.cache_misses);
	if (!st.mapped)
		ASSERT_TRUE(st.cache_misses > 0);
	for (unsigned k = 0; k < 2 * DRV_KEYS; k++) {
		char key[32];
		size_t kl = km_name(key, "drv", k);
		unsigned i = k % DRV_KEYS;

		if (i % 3 ? km_expect(kv, key, kl, drv_len(i), 2000000 + k)
		          : km_expect_absent(kv, key, kl))
			return T_FAIL;
	}
	ASSERT_OK(sn_kv_close(kv));
	sn_rt_destroy(rt);
	return T_PASS;
}

/*
 * Random calls from two workers, each on keys of its own: puts of 0..2999 bytes (over
 * 2 KiB they go as requests), deletes, durable puts and deletes (requests), syncs and
 * gets, up to 32 in flight. Calls to one shard run in the order made, whichever path
 * each takes, so every get must return what the worker's last put or delete of that key
 * before it said, and the store must end as the last of them said.
 */
#define RND_KEYS 48
#define RND_OPS  3000

struct rnd;
struct rnd_op {
	struct rnd *d;
	int get, want_res;
	uint32_t want_len, want_tag;
};

struct rnd {
	struct sn_kv *kv;
	unsigned w, issued, inflight, calls, errors, bad_values;
	uint64_t rng;
	uint32_t len[RND_KEYS], tag[RND_KEYS]; /* the model: tag 0 = absent */
	struct sn_rt_latch *done;
	struct sn_rt_task pump_task;
	struct rnd_op ops[RND_OPS];
};

static uint32_t rnd_next(struct rnd *d, uint32_t n)
{
	d->rng = d->rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(((d->rng >> 33) * n) >> 31);
}

static void rnd_pump(void *arg);

static void rnd_cb(void *arg, int res, const void *val, size_t vlen)
{
	struct rnd_op *op = arg;
	struct rnd *d = op->d;

	d->calls++;
	if (res != op->want_res) {
		if (d->errors++ < 3)
			printf("    worker %u: a call returned %d, not %d\n", d->w, res,
			       op->want_res);
	} else if (op->get && !res) {
		d->bad_values += !value_is(val, vlen, op->want_len, op->want_tag);
	}
	d->inflight--;
	rnd_pump(d);
}

static int rnd_issue(struct rnd *d)
{
	struct rnd_op *op = &d->ops[d->issued];
	unsigned i = rnd_next(d, RND_KEYS), k = d->w * RND_KEYS + i, p = rnd_next(d, 100);
	unsigned flags = rnd_next(d, 10) ? 0 : SN_KV_DURABLE;
	unsigned char val[3000];
	char key[32];
	size_t kl = km_name(key, "rnd", k);
	int err;

	*op = (struct rnd_op){ d, 0, 0, 0, 0 };
	if (p < 35) {
		op->get = 1;
		op->want_res = d->tag[i] ? 0 : -ENOENT;
		op->want_len = d->len[i];
		op->want_tag = d->tag[i];
		err = sn_kv_get_async(d->kv, key, kl, rnd_cb, op);
	} else if (p < 50) {
		err = sn_kv_del_async(d->kv, key, kl, flags, rnd_cb, op);
		if (!err)
			d->tag[i] = 0;
	} else if (p < 54) {
		err = sn_kv_sync_async(d->kv, rnd_cb, op);
	} else {
		uint32_t len = rnd_next(d, 3000), tag = 5000000 + d->w * RND_OPS + d->issued;

		km_fill(val, len, tag);
		err = sn_kv_put_async(d->kv, key, kl, val, len, flags, rnd_cb, op);
		if (!err) {
			d->len[i] = len;
			d->tag[i] = tag;
		}
	}
	if (!err) {
		d->inflight++;
		d->issued++;
	}
	return err;
}

static void rnd_pump(void *arg)
{
	struct rnd *d = arg;

	while (d->issued < RND_OPS && d->inflight < 32) {
		int err = rnd_issue(d);

		if (err == -EAGAIN) {
			sn_rt_defer(&d->pump_task);
			return;
		}
		if (err) {
			printf("    worker %u: a call was refused: %s\n", d->w, sn_errmsg());
			d->errors++;
			d->issued = RND_OPS;
		}
	}
	if (d->issued == RND_OPS && !d->inflight) {
		d->issued++; /* once */
		sn_rt_latch_done(d->done);
	}
}

/* Both workers make random calls; each one's calls run in order. owners: the placement
 * (NULL: the default). The store stays open in *kvp (on *rtp) for more checks. */
static int random_order(const unsigned *owners, struct sn_rt **rtp, struct sn_kv **kvp)
{
	struct sn_kv_opts o = km_opts();
	static struct rnd d[2];
	struct sn_rt_latch done;
	struct sn_rt *rt;
	struct sn_kv *kv;

	o.owners = owners;
	o.nowners = owners ? KM_SHARDS : 0;
	if (open_on_own_rt(&o, &rt, &kv))
		return T_FAIL;
	*rtp = rt;
	*kvp = kv;
	sn_rt_latch_init(&done, 2);
	for (unsigned w = 0; w < 2; w++) {
		d[w] = (struct rnd){
			.kv = kv, .w = w, .rng = 0x9e3779b97f4a7c15ull * (w + 1), .done = &done
		};
		d[w].pump_task = (struct sn_rt_task){ rnd_pump, &d[w], NULL, 0 };
		ASSERT_OK(sn_rt_send(rt, w, rnd_pump, &d[w]));
	}
	sn_rt_latch_wait(&done);
	for (unsigned w = 0; w < 2; w++) {
		printf("    worker %u: %u calls: %u wrong results, %u wrong values\n", w,
		       d[w].calls, d[w].errors, d[w].bad_values);
		ASSERT_EQ(d[w].calls, RND_OPS);
		ASSERT_EQ(d[w].errors, 0);
		ASSERT_EQ(d[w].bad_values, 0);
		for (unsigned i = 0; i < RND_KEYS; i++) {
			char key[32];
			size_t kl = km_name(key, "rnd", w * RND_KEYS + i);

			if (d[w].tag[i] ? km_expect(kv, key, kl, d[w].len[i], d[w].tag[i])
			                : km_expect_absent(kv, key, kl))
				return T_FAIL;
		}
	}
	return T_PASS;
}

static int test_async_random_order(void)
{
	struct sn_rt *rt = NULL;
	struct sn_kv *kv = NULL;
	int r = random_order(NULL, &rt, &kv);

	if (r == T_PASS)
		ASSERT_OK(sn_kv_close(kv));
	sn_rt_destroy(rt);
	return r;
}

/*
 * opts.owners: the same calls with worker 0 owning one shard of four, then none (every
 * call of both workers goes to worker 1); the data reopens under the default placement;
 * a list of the wrong length or naming a worker the runtime lacks is refused.
 */
static int test_owners(void)
{
	static const unsigned one[KM_SHARDS] = { 1, 0, 1, 1 }, none[KM_SHARDS] = { 1, 1, 1, 1 };
	const unsigned *place[] = { one, none };
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st;
	struct sn_rt *rt = NULL;
	struct sn_kv *kv = NULL;
	char key[32];

	for (unsigned p = 0; p < 2; p++) {
		printf("    owners %u,%u,%u,%u\n", place[p][0], place[p][1], place[p][2],
		       place[p][3]);
		if (random_order(place[p], &rt, &kv) != T_PASS)
			return T_FAIL;
		ASSERT_OK(sn_kv_stat(kv, &st));
		ASSERT_EQ(st.workers, 2);
		for (unsigned k = 0; k < 64; k++)
			ASSERT_OK(km_put(kv, key, km_name(key, "own", k), 20, k + p, 0));
		ASSERT_OK(sn_kv_close(kv));
		/* The placement is not on disk: the default one finds every key. */
		o.rt = rt;
		ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
		for (unsigned k = 0; k < 64; k++)
			if (km_expect(kv, key, km_name(key, "own", k), 20, k + p))
				return T_FAIL;
		ASSERT_OK(sn_kv_close(kv));
		sn_rt_destroy(rt);
	}
	printf("    owners of 3 shards for a store of %u; naming worker 2 of 2: refused\n",
	       KM_SHARDS);
	{
		static const unsigned bad[KM_SHARDS] = { 0, 1, 2, 0 };
		struct sn_rt_opts ro = { .workers = 2, .flags = SN_RT_NOPIN };

		ASSERT_OK(sn_rt_create(&ro, &rt));
		o.rt = rt;
		o.owners = one;
		o.nowners = KM_SHARDS - 1;
		ASSERT_ERR(sn_kv_open(km_uri, &o, &kv), -EINVAL);
		o.owners = bad;
		o.nowners = KM_SHARDS;
		ASSERT_ERR(sn_kv_open(km_uri, &o, &kv), -EINVAL);
		printf("    (%s)\n", sn_errmsg());
		sn_rt_destroy(rt);
	}
	return T_PASS;
}

/* ---- batches ---- */

static int test_batches(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_batch *b = sn_kv_batch_new();
	static unsigned char big[KM_SEG_MAX_VALUE + 1];
	struct sn_kv *kv;
	char key[32];
	const unsigned n = 64;

	ASSERT_TRUE(b);
	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	for (unsigned i = 0; i < n; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "old", i), 20, i, 0));
	printf("    one batch of %u puts and %u deletes over all shards: all applied\n", n, n / 2);
	for (unsigned i = 0; i < n; i++)
		ASSERT_OK(sn_kv_batch_put(b, key, km_name(key, "bat", i), "v", 1));
	for (unsigned i = 0; i < n; i += 2)
		ASSERT_OK(sn_kv_batch_del(b, key, km_name(key, "old", i)));
	/* Later operations win: put/put, put/del, del/put on one key. */
	km_fill(big, 300, 1);
	ASSERT_OK(sn_kv_batch_put(b, "pp", 2, "first", 5));
	ASSERT_OK(sn_kv_batch_put(b, "pp", 2, big, 300));
	ASSERT_OK(sn_kv_batch_put(b, "pd", 2, "first", 5));
	ASSERT_OK(sn_kv_batch_del(b, "pd", 2));
	ASSERT_OK(sn_kv_batch_del(b, "dp", 2));
	ASSERT_OK(sn_kv_batch_put(b, "dp", 2, big, 300));
	ASSERT_OK(sn_kv_write(kv, b, 0));
	for (int pass = 0; pass < 2; pass++) {
		if (pass) {
			printf("    later operations in the batch won; the same after reopen\n");
			if (km_reopen(&kv, &o))
				return T_FAIL;
		}
		for (unsigned i = 0; i < n; i++) {
			void *v;
			size_t vl;

			ASSERT_OK(sn_kv_get(kv, key, km_name(key, "bat", i), &v, &vl));
			ASSERT_TRUE(vl == 1 && *(char *)v == 'v');
			free(v);
			if (i % 2 ? km_expect(kv, key, km_name(key, "old", i), 20, i)
			          : km_expect_absent(kv, key, km_name(key, "old", i)))
				return T_FAIL;
		}
		if (km_expect(kv, "pp", 2, 300, 1) || km_expect_absent(kv, "pd", 2) ||
		    km_expect(kv, "dp", 2, 300, 1))
			return T_FAIL;
	}
	printf("    a durable single-key batch; a reused (cleared) batch\n");
	sn_kv_batch_clear(b);
	ASSERT_OK(sn_kv_batch_put(b, "solo", 4, big, 10));
	ASSERT_OK(sn_kv_write(kv, b, SN_KV_DURABLE));
	if (km_expect(kv, "solo", 4, 10, 1))
		return T_FAIL;

	printf("    refused batches change nothing: empty, a value too big, bad flags\n");
	sn_kv_batch_clear(b);
	ASSERT_ERR(sn_kv_write(kv, b, 0), -EINVAL);
	ASSERT_ERR(sn_kv_batch_put(b, "", 0, "v", 1), -EINVAL);
	ASSERT_ERR(sn_kv_batch_del(b, key, SN_KV_MAX_KEY + 1), -EINVAL);
	ASSERT_OK(sn_kv_batch_put(b, "ok-part", 7, "v", 1));
	ASSERT_OK(sn_kv_batch_put(b, "too-big", 7, big, KM_SEG_MAX_VALUE + 1));
	ASSERT_ERR(sn_kv_write(kv, b, 0), -EINVAL);
	ASSERT_ERR(sn_kv_write(kv, b, 0x40), -EINVAL);
	if (km_expect_absent(kv, "ok-part", 7) || km_expect_absent(kv, "too-big", 7))
		return T_FAIL;
	sn_kv_batch_free(b);
	sn_kv_batch_free(NULL);
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/* ---- compaction ---- */

static int check_compacted_set(struct sn_kv *kv, unsigned n)
{
	char key[32];

	for (unsigned i = 0; i < n; i++) {
		size_t kl = km_name(key, "c", i);

		if (i % 10 == 0   ? km_expect(kv, key, kl, 700, i + 100000)
		    : i % 10 == 1 ? km_expect(kv, key, kl, 1500, i)
		                  : km_expect_absent(kv, key, kl))
			return T_FAIL;
	}
	return T_PASS;
}

/* Hundreds of dead segments compacted at once: their header clears outnumber the worker's
 * queue slots (256), and must wait for room, not fail the shard. */
static int test_compact_many(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats a, b;
	const char *size = strstr(km_uri, "size=64m");
	char key[32], uri[1200];
	struct sn_kv *kv;
	unsigned n;

	if (!size)
		SKIP("the device URI does not say size=64m (this test makes it 256m)");
	snprintf(uri, sizeof(uri), "%.*ssize=256m%s", (int)(size - km_uri), km_uri, size + 8);
	o.shards = 1;
	o.workers = 1;
	o.cache_bytes = 1ull << 30; /* every image stays: compaction needs no reads */
	unlink(km_path);
	if (sn_kv_open(uri, &o, &kv) == -ENOSPC)
		SKIP("no room for a 256 MiB store here: %s", sn_errmsg());
	ASSERT_OK(sn_kv_stat(kv, &a));
	n = (unsigned)(a.segments_total * 7 / 8); /* one record a segment */
	for (unsigned i = 0; i < n; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "m", i), KM_SEG_MAX_VALUE, i, 0));
	ASSERT_OK(sn_kv_sync(kv));
	for (unsigned i = 0; i < n; i++)
		ASSERT_OK(sn_kv_del(kv, key, km_name(key, "m", i), 0));
	ASSERT_OK(sn_kv_sync(kv));
	ASSERT_OK(sn_kv_stat(kv, &a));
	ASSERT_OK(sn_kv_compact(kv, 0));
	ASSERT_OK(km_put(kv, "after", 5, 100, 1, SN_KV_DURABLE));
	ASSERT_OK(sn_kv_stat(kv, &b));
	printf("    %u segments of one record each, deleted: compaction freed %llu of %llu used "
	       "(%llu compacted)\n",
	       n, (unsigned long long)(a.segments_used - b.segments_used),
	       (unsigned long long)a.segments_used, (unsigned long long)b.compactions);
	ASSERT_TRUE(a.segments_used - b.segments_used > 256);
	ASSERT_OK(sn_kv_close(kv));
	ASSERT_OK(sn_kv_open(uri, &o, &kv));
	if (km_expect(kv, "after", 5, 100, 1) ||
	    km_expect_absent(kv, key, km_name(key, "m", n / 2)))
		return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));
	unlink(km_path); /* the next test makes it at 64m again */
	return T_PASS;
}

static int test_compaction(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats a, b;
	struct sn_kv *kv;
	char key[32];
	const unsigned n = 800;

	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	for (unsigned i = 0; i < n; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "c", i), 1500, i, 0));
	/* 10% overwritten, 80% deleted, 10% untouched. */
	for (unsigned i = 0; i < n; i++) {
		size_t kl = km_name(key, "c", i);

		if (i % 10 == 0)
			ASSERT_OK(km_put(kv, key, kl, 700, i + 100000, 0));
		else if (i % 10 != 1)
			ASSERT_OK(sn_kv_del(kv, key, kl, 0));
	}
	ASSERT_OK(sn_kv_stat(kv, &a));
	ASSERT_OK(sn_kv_compact(kv, 1));
	ASSERT_OK(sn_kv_stat(kv, &b));
	printf("    before: %llu segments, %llu live, %llu dead bytes; after: %llu segments, "
	       "%llu live, %llu dead; %llu segments compacted, %llu bytes moved\n",
	       (unsigned long long)a.segments_used, (unsigned long long)a.live_bytes,
	       (unsigned long long)a.dead_bytes, (unsigned long long)b.segments_used,
	       (unsigned long long)b.live_bytes, (unsigned long long)b.dead_bytes,
	       (unsigned long long)b.compactions, (unsigned long long)b.compacted_bytes);
	ASSERT_EQ(b.keys, n / 5);
	ASSERT_TRUE(b.compactions > 0);
	ASSERT_TRUE(b.dead_bytes < a.dead_bytes / 4);
	ASSERT_TRUE(b.segments_used < a.segments_used);
	ASSERT_TRUE(b.live_bytes <= a.live_bytes);
	printf("    every live value readable, deleted keys stay deleted; also after reopen\n");
	if (check_compacted_set(kv, n) || km_reopen(&kv, &o) || check_compacted_set(kv, n))
		return T_FAIL;
	ASSERT_OK(sn_kv_stat(kv, &a));
	ASSERT_EQ(a.keys, n / 5);
	ASSERT_EQ(a.corrupt_records, 0);
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

int main(int argc, char **argv)
{
	int r = km_main(argc, argv, "test_kv: the KV store's semantics on one device");

	if (r != T_PASS)
		return r;
	T_RUN("put/get round trip at the limits; bad keys and values refused",
	      test_roundtrip_limits());
	T_RUN("a 1 MiB value in a store of 2 MiB segments", test_one_mib_value());
	T_RUN("overwrite returns the newest; delete; delete of an absent key",
	      test_overwrite_delete());
	T_RUN("scan sees exactly the live keys with their values", test_scan());
	T_RUN("stats: keys, live and dead bytes move as records do", test_stats());
	T_RUN("reopen after a clean close keeps every value byte-exact", test_reopen_many());
	T_RUN("after a reopen, gets that miss fill the cache", test_cache_warms());
	T_RUN("sync, SN_KV_DURABLE, sync=always, sync=interval", test_sync_durable());
	T_RUN("sn_kv_sync that can send nothing fails at once", test_sync_unsent());
	T_RUN("a store's own runtime has opts.workers workers", test_own_workers());
	T_RUN("async calls from a foreign thread", test_async_foreign());
	T_RUN("async calls from a worker of the store's runtime", test_async_worker());
	T_RUN("a sync on a worker whose ring to an owner is full", test_sync_full_ring());
	T_RUN("threads that exit before their async calls complete", test_async_threads_exit());
	T_RUN("callbacks of a foreign thread's calls make durable calls", test_callback_chains());
	T_RUN("many async calls from two workers at once, to every shard",
	      test_async_two_workers());
	T_RUN("random async calls from two workers keep each worker's order",
	      test_async_random_order());
	T_RUN("shards placed on workers by opts.owners", test_owners());
	T_RUN("batches across shards: all applied, later operations win", test_batches());
	T_RUN("compaction frees dead space, keeps live values", test_compaction());
	T_RUN("compacting more dead segments than the queue has slots", test_compact_many());
	unlink(km_path);
	return t_end();
}
