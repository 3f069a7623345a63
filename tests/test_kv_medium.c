/* SPDX-License-Identifier: MIT */
/*
 * test_kv_medium.c — what the medium does to a KV store, on one device: a full device
 * (-ENOSPC, nothing lost, usable again after deletes and compaction; background compaction
 * keeps a store that is mostly dead from filling), bytes flipped on the medium (reported,
 * never returned as a value), what a reused segment's earlier life leaves after the end of
 * its records (never taken for corruption), the superblock's version check and its second
 * copy, a file that is not a store, a reformat over an old store, a device that fails
 * (errors carry a reason; calls return), batches that must not leave their commit records
 * behind, batches written while compaction runs (they must be applied), and gets and syncs
 * made after a write that waits for space (they must see it). Stores use 64 KiB segments
 * and 4 shards, as in test_kv.c.
 *
 *   test_kv_medium URI     URI names a scratch file of this test (removed before and after)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "kv/kv_impl.h"
#include "kv_model.h"
#include "test.h"
#include "util/crc32c.h"
#include "util/util.h"

/* ---- a full device ---- */

static int test_full_device(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st;
	struct sn_kv *kv;
	char key[32];
	unsigned n = 0, i;
	int err = 0;

	/* 4 segments per shard, the fewest the format allows. */
	o.capacity = (1u << 20) + KM_SHARDS * 4 * KM_SEG;
	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	while (n < 100000 && !(err = km_put(kv, key, km_name(key, "f", n), 2000, n, 0)))
		n++;
	ASSERT_OK(sn_kv_stat(kv, &st));
	printf("    %llu bytes of log: -ENOSPC after %u puts of 2000 bytes\n",
	       (unsigned long long)st.capacity_bytes, n);
	ASSERT_EQ(err, -ENOSPC);
	ASSERT_TRUE(n > 10);
	printf("    nothing acknowledged is lost: all readable, also after reopen\n");
	for (i = 0; i < n; i++)
		if (km_expect(kv, key, km_name(key, "f", i), 2000, i))
			return T_FAIL;
	if (km_reopen(&kv, &o))
		return T_FAIL;
	for (i = 0; i < n; i++)
		if (km_expect(kv, key, km_name(key, "f", i), 2000, i))
			return T_FAIL;
	printf("    delete 3 in 4, compact: the store takes writes again\n");
	for (i = 0; i < n; i++) {
		if (!(i % 4))
			continue;
		err = sn_kv_del(kv, key, km_name(key, "f", i), 0);
		if (err)
			T_FAILED("delete %u of %u on the full store: %s: a full store that refuses "
			         "deletes can never free space",
			         i, n, sn_errname(err));
	}
	ASSERT_OK(sn_kv_compact(kv, 1));
	for (i = 0; i < n / 2; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "g", i), 2000, i + 5000, 0));
	ASSERT_OK(sn_kv_sync(kv));
	if (km_reopen(&kv, &o))
		return T_FAIL;
	for (i = 0; i < n; i++)
		if (i % 4 ? km_expect_absent(kv, key, km_name(key, "f", i))
		          : km_expect(kv, key, km_name(key, "f", i), 2000, i))
			return T_FAIL;
	for (i = 0; i < n / 2; i++)
		if (km_expect(kv, key, km_name(key, "g", i), 2000, i + 5000))
			return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/* ---- corruption on the medium ---- */

/* The offset of the first occurrence of pat in the scratch file, or -1. */
static int64_t find_in_file(const void *pat, size_t len)
{
	static unsigned char buf[(4u << 20) + 4096];
	int fd = open(km_path, O_RDONLY);
	int64_t at = -1;
	uint64_t off = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = pread(fd, buf, sizeof(buf), (off_t)off)) > (ssize_t)len) {
		unsigned char *p = memmem(buf, (size_t)n, pat, len);

		if (p) {
			at = (int64_t)(off + (uint64_t)(p - buf));
			break;
		}
		off += (uint64_t)n - len;
	}
	close(fd);
	return at;
}

static int flip_byte(uint64_t off)
{
	int fd = open(km_path, O_RDWR);
	unsigned char c;

	if (fd < 0 || pread(fd, &c, 1, (off_t)off) != 1)
		return -1;
	c ^= 0x20;
	if (pwrite(fd, &c, 1, (off_t)off) != 1 || fdatasync(fd))
		return -1;
	return close(fd);
}

static void marker(unsigned char *buf, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)what[i % strlen(what)];
}

static int test_corrupt_while_open(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats a, b;
	unsigned char val[4000];
	struct sn_kv *kv;
	char key[32];
	int64_t at;
	void *v;
	size_t vl;

	o.cache_bytes = 1; /* two segments per shard: older ones are read from the device */
	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	marker(val, sizeof(val), "<victim-while-open>");
	ASSERT_OK(sn_kv_put(kv, "victim", 6, val, sizeof(val), 0));
	for (unsigned i = 0; i < 400; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "fill", i), 3000, i, 0));
	/* The cache evicts only durable segments, when a new one needs room: with slow
	 * flushes the victim's could still be cached. Durable now, then new segments. */
	ASSERT_OK(sn_kv_sync(kv));
	for (unsigned i = 400; i < 600; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "fill", i), 3000, i, 0));
	ASSERT_OK(sn_kv_sync(kv));
	ASSERT_OK(sn_kv_stat(kv, &a));
	ASSERT_OK(sn_kv_get(kv, "victim", 6, &v, &vl));
	ASSERT_TRUE(vl == sizeof(val) && !memcmp(v, val, vl));
	free(v);
	ASSERT_OK(sn_kv_stat(kv, &b));
	if (b.mapped) {
		printf("    the log is the device's mapping: the get read the medium\n");
	} else {
		printf("    the victim's segment is not cached (%llu bytes cached of %llu "
		       "segments): its get read the device\n",
		       (unsigned long long)b.cache_bytes, (unsigned long long)b.segments_used);
		ASSERT_EQ(b.cache_misses, a.cache_misses + 1);
	}
	at = find_in_file(val, sizeof(val));
	ASSERT_TRUE(at >= 0);
	printf("    flip one byte of its value on the medium (offset %lld): get -> "
	       "SN_ECORRUPT, counted\n",
	       (long long)at);
	ASSERT_OK(flip_byte((uint64_t)at + 1000));
	ASSERT_EQ(sn_kv_get(kv, "victim", 6, &v, &vl), SN_ECORRUPT);
	ASSERT_OK(sn_kv_stat(kv, &b));
	ASSERT_EQ(b.corrupt_records, a.corrupt_records + 1);
	if (km_expect(kv, key, km_name(key, "fill", 599), 3000, 599))
		return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/* A fresh store with key "victim" = val (after a 10-byte older version, with older) and
 * then n keys after-0.. of 1000 bytes, closed; then one byte of val's on the medium
 * flipped. */
static int closed_victim(const struct sn_kv_opts *o, int older, const unsigned char *val,
                         size_t vlen, unsigned n)
{
	struct sn_kv *kv;
	char key[32];
	int64_t at;

	if (km_open_fresh(o, &kv))
		return T_FAIL;
	if (older)
		ASSERT_OK(km_put(kv, "victim", 6, 10, 1, 0));
	ASSERT_OK(sn_kv_put(kv, "victim", 6, val, vlen, 0));
	for (unsigned i = 0; i < n; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "after", i), 1000, i, 0));
	ASSERT_OK(sn_kv_close(kv));
	at = find_in_file(val, vlen);
	ASSERT_TRUE(at >= 0);
	ASSERT_OK(flip_byte((uint64_t)at + 10));
	return T_PASS;
}

/*
 * A byte flipped while the store was closed. Scanning the log (full_scan), recovery finds
 * it: the only acceptable outcomes for each key are its value, SN_ECORRUPT, or -ENOENT
 * (or the key's previous value) with the loss reported in corrupt_records / torn_bytes;
 * never other bytes. From the index checkpoint, recovery does not read the record: the
 * get finds it (SN_ECORRUPT, counted), whether the record is in a cached head or read
 * from the device, and every other key is intact.
 */
static int corrupt_closed(int older_segment, int full_scan)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st;
	unsigned char val[3000];
	struct sn_kv *kv;
	char key[32];
	unsigned n = older_segment ? 200 : 20;
	void *v;
	size_t vl;
	int err;

	o.shards = 1; /* every key in one log: "later records" is well defined */
	marker(val, sizeof(val), older_segment ? "<victim-older>" : "<victim-newest>");
	if (closed_victim(&o, 1, val, sizeof(val), n))
		return T_FAIL;
	o.no_checkpoint = full_scan;
	ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
	ASSERT_OK(sn_kv_stat(kv, &st));
	err = sn_kv_get(kv, "victim", 6, &v, &vl);
	if (!full_scan) {
		printf("    victim in %s segment, recovery from the checkpoint (%llu keys): get = "
		       "%s\n",
		       older_segment ? "an older" : "the newest",
		       (unsigned long long)st.checkpoint_keys, sn_errname(err));
		ASSERT_TRUE(st.checkpoint_keys > 0);
		ASSERT_EQ(err, SN_ECORRUPT);
		ASSERT_OK(sn_kv_stat(kv, &st));
		ASSERT_TRUE(st.corrupt_records >= 1);
		for (unsigned i = 0; i < n; i++)
			if (km_expect(kv, key, km_name(key, "after", i), 1000, i))
				return T_FAIL;
		ASSERT_OK(sn_kv_close(kv));
		return T_PASS;
	}
	printf("    victim in %s segment: get = %s; recovery: %llu corrupt records, %llu "
	       "torn bytes\n",
	       older_segment ? "an older" : "the newest", sn_errname(err),
	       (unsigned long long)st.corrupt_records, (unsigned long long)st.torn_bytes);
	if (!err) {
		unsigned char older[10];
		int is_older;

		/* The record is cut: the key's previous record is its newest valid one. Allowed
		 * (a torn tail looks the same), as long as the loss is reported. */
		km_fill(older, sizeof(older), 1);
		is_older = vl == sizeof(older) && !memcmp(v, older, vl);
		free(v);
		if (!is_older)
			T_FAILED("get returned %zu bytes that were never the key's value", vl);
		printf("    the key's previous value came back, the loss is reported\n");
		ASSERT_TRUE(st.corrupt_records + st.torn_bytes > 0);
		err = -ENOENT;
	}
	ASSERT_TRUE(err == SN_ECORRUPT || err == -ENOENT);
	ASSERT_TRUE(st.corrupt_records + st.torn_bytes > 0);
	/* The scan resyncs at the next valid record (docs/format.md): nothing written after
	 * the victim is lost with it, in its segment or later ones. */
	for (unsigned i = 0; i < n; i++)
		if (km_expect(kv, key, km_name(key, "after", i), 1000, i))
			return T_FAIL;
	printf("    all %u records written after it are there\n", n);
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

static _Atomic int synced; /* 1: sync_cb ran with 0, -1: with an error */

static void sync_cb(void *arg, int res, const void *val, size_t vlen)
{
	(void)val, (void)vlen;
	atomic_store((_Atomic int *)arg, res ? -1 : 1);
}

/* CRC-32C of the whole scratch file: did an open write anything? */
static uint32_t file_crc(void)
{
	static unsigned char buf[1u << 20];
	int fd = open(km_path, O_RDONLY);
	uint32_t crc = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crc = sn_crc32c(crc, buf, (size_t)n);
	close(fd);
	return crc;
}

/*
 * A byte flipped in the newest segment where the index checkpoint of the clean close says
 * records were durable: no torn write, corruption. A read-only scan of the whole log (what
 * `snstore kv check` does) reports it as such and writes nothing; the records after it
 * stay on disk, and a store opened from the checkpoint serves them.
 */
static int test_corrupt_covered_readonly(void)
{
	struct sn_kv_opts o = km_opts(), ro;
	struct sn_kv_stats st;
	struct sn_kv_batch *b;
	unsigned char val[3000];
	struct sn_kv *kv, *kv2;
	const unsigned n = 20;
	char key[32];
	uint32_t crc;
	void *v;
	size_t vl;
	int err;

	o.shards = 1;
	marker(val, sizeof(val), "<victim-covered>");
	if (closed_victim(&o, 0, val, sizeof(val), n))
		return T_FAIL;
	crc = file_crc();

	ro = o;
	ro.readonly = 1;
	ro.no_checkpoint = 1;
	ASSERT_OK(sn_kv_open(km_uri, &ro, &kv));
	ASSERT_OK(sn_kv_stat(kv, &st));
	printf("    read-only scan of the whole log: %llu corrupt records, %llu torn bytes, %llu "
	       "keys\n",
	       (unsigned long long)st.corrupt_records, (unsigned long long)st.torn_bytes,
	       (unsigned long long)st.keys);
	ASSERT_TRUE(st.corrupt_records >= 1);
	ASSERT_EQ(st.torn_bytes, 0);
	printf("    writes refused with -EROFS; a second read-only open shares the file, a "
	       "writer does not\n");
	ASSERT_ERR(km_put(kv, "new", 3, 10, 1, 0), -EROFS);
	ASSERT_STR_HAS(sn_errmsg(), "read-only");
	ASSERT_ERR(sn_kv_del(kv, "victim", 6, 0), -EROFS);
	ASSERT_TRUE((b = sn_kv_batch_new()) != NULL);
	ASSERT_OK(sn_kv_batch_put(b, "new", 3, "x", 1));
	ASSERT_ERR(sn_kv_write(kv, b, 0), -EROFS);
	sn_kv_batch_free(b);
	ASSERT_ERR(sn_kv_compact(kv, 1), -EROFS);
	ASSERT_OK(sn_kv_sync(kv));
	atomic_store(&synced, 0);
	ASSERT_OK(sn_kv_sync_async(kv, sync_cb, &synced)); /* (a head opened in memory) */
	for (int i = 0; i < 10000 && !atomic_load(&synced); i++)
		usleep(1000);
	err = atomic_load(&synced);
	ASSERT_EQ(err, 1);
	ASSERT_OK(sn_kv_open(km_uri, &ro, &kv2));
	ASSERT_OK(sn_kv_close(kv2));
	ASSERT_ERR(sn_kv_open(km_uri, &o, &kv2), -EBUSY);
	ASSERT_OK(sn_kv_close(kv));
	ASSERT_EQ(file_crc(), crc);

	printf("    opened from the checkpoint: the victim is SN_ECORRUPT, every later record "
	       "is there\n");
	ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
	ASSERT_ERR(sn_kv_get(kv, "victim", 6, &v, &vl), SN_ECORRUPT);
	for (unsigned i = 0; i < n; i++)
		if (km_expect(kv, key, km_name(key, "after", i), 1000, i))
			return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));

	/* (-EINVAL: the URI says create=1, which contradicts readonly=1 for a missing file) */
	printf("    a read-only open of a missing store fails and makes no file\n");
	unlink(km_path);
	err = sn_kv_open(km_uri, &ro, &kv);
	ASSERT_TRUE(err == -ENOENT || (err == -EINVAL && strstr(km_uri, "create=1")));
	ASSERT_TRUE(access(km_path, F_OK) != 0);
	return T_PASS;
}

static int test_corrupt_newest(void)
{
	return corrupt_closed(0, 1);
}

static int test_corrupt_older(void)
{
	return corrupt_closed(1, 1);
}

static int test_corrupt_newest_ckpt(void)
{
	return corrupt_closed(0, 0);
}

static int test_corrupt_older_ckpt(void)
{
	return corrupt_closed(1, 0);
}

/* Overwrite n bytes of the scratch file at off with zeros (a sector the medium lost, or
 * returns as zeros). */
static int zero_range(uint64_t off, size_t n)
{
	static const unsigned char zeros[8192];
	int fd = open(km_path, O_RDWR);

	if (fd < 0 || n > sizeof(zeros) || pwrite(fd, zeros, n, (off_t)off) != (ssize_t)n ||
	    fdatasync(fd))
		return -1;
	return close(fd);
}

/* How many of after-0..n-1 read back right; the rest must be absent or fail their
 * checksum (loaded from a checkpoint, a record is checked when read), never other bytes.
 * lost: the first key missing, or n. */
static int count_after(struct sn_kv *kv, unsigned n, unsigned *found, unsigned *lost)
{
	char key[32];

	*found = 0;
	*lost = n;
	for (unsigned i = 0; i < n; i++) {
		size_t kl = km_name(key, "after", i);
		void *v;
		size_t vl;
		int err = sn_kv_get(kv, key, kl, &v, &vl);

		if (err == -ENOENT || err == SN_ECORRUPT) {
			*lost = *lost < i ? *lost : i;
			continue;
		}
		ASSERT_OK(err);
		free(v);
		if (km_expect(kv, key, kl, 1000, i))
			return T_FAIL;
		(*found)++;
	}
	return T_PASS;
}

/* A fresh store (opts o) holding after-0..n-1 of 1000 bytes, closed. */
static int fresh_after(const struct sn_kv_opts *o, unsigned n)
{
	struct sn_kv *kv;
	char key[32];

	if (km_open_fresh(o, &kv))
		return T_FAIL;
	for (unsigned i = 0; i < n; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "after", i), 1000, i, 0));
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/* 4 KiB of the closed store zeroed from the start of record after-i on. */
static int zero_from_record(unsigned i)
{
	unsigned char want[1000];
	char key[32];
	int64_t at;

	km_fill(want, sizeof(want), i);
	at = find_in_file(want, sizeof(want));
	ASSERT_TRUE(at >= 0);
	at -= (int64_t)(sizeof(struct sn_kv_rechdr) + km_name(key, "after", i));
	ASSERT_OK(zero_range((uint64_t)at, 4096));
	return T_PASS;
}

#define ZB_FIRST 3 /* the first record zeroed */

/*
 * 4 KiB of a closed store zeroed from the start of record after-3 on: where records were,
 * recovery finds zeros, a clean end of the log to look at. Scanning the whole log in a
 * read-write open, it must count that as corruption and go on at the next valid record
 * (resync), never cut or overwrite what follows: only after-3..6 (1,040 bytes each) are
 * gone. Reopened (the first open's close writes a checkpoint, the second loads it) and
 * scanned whole once more, the store has the same keys. Compaction then rewrites the
 * damaged segment past the damage too and frees it: a full scan finds no corruption left,
 * and the same keys.
 */
static int zeroed_block(int older_segment)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st;
	struct sn_kv *kv;
	unsigned n = older_segment ? 200 : 20, found, again, lost;

	o.shards = 1;
	if (fresh_after(&o, n) || zero_from_record(ZB_FIRST))
		return T_FAIL;

	o.no_checkpoint = 1;
	ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
	ASSERT_OK(sn_kv_stat(kv, &st));
	if (count_after(kv, n, &found, &lost))
		return T_FAIL;
	printf("    read-write scan of the whole log: %llu corrupt records, %llu torn bytes; "
	       "%u of %u records there, the first missing after-%u\n",
	       (unsigned long long)st.corrupt_records, (unsigned long long)st.torn_bytes, found, n,
	       lost);
	ASSERT_EQ(st.corrupt_records, 1);
	ASSERT_EQ(st.torn_bytes, 0);
	ASSERT_EQ(lost, ZB_FIRST);
	ASSERT_EQ(found, n - 4);
	ASSERT_OK(km_put(kv, "new", 3, 10, 7, 0)); /* the head takes writes */
	ASSERT_OK(sn_kv_close(kv));
	/* Opens that load a checkpoint (the second one's, written by the first's close),
	 * then scans of the whole log: one compacts (a checkpoint's index still points at
	 * the damaged records, which keeps their segment), one after it. */
	for (int pass = 0; pass < 5; pass++) {
		int full = pass >= 2;

		o.no_checkpoint = full;
		ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
		if (pass == 3)
			ASSERT_OK(sn_kv_compact(kv, 1));
		ASSERT_OK(sn_kv_stat(kv, &st));
		if (count_after(kv, n, &again, &lost) || km_expect(kv, "new", 3, 10, 7))
			return T_FAIL;
		printf("    reopened (%s%s; %llu keys from a checkpoint): %u of %u, %llu corrupt "
		       "records\n",
		       full ? "scanning the log" : "from the checkpoint",
		       pass == 3 ? ", compacted" : "", (unsigned long long)st.checkpoint_keys,
		       again, n, (unsigned long long)st.corrupt_records);
		ASSERT_EQ(again, found);
		ASSERT_TRUE(pass != 1 || st.checkpoint_keys > 0);
		ASSERT_TRUE(pass != 2 || st.corrupt_records == 1);
		ASSERT_TRUE(pass != 3 || st.corrupt_records >= 1);
		ASSERT_TRUE(pass != 3 || st.compactions > 0);
		ASSERT_TRUE(pass != 4 || st.corrupt_records == 0);
		ASSERT_OK(sn_kv_close(kv));
	}
	return T_PASS;
}

/*
 * A batch of 4 keys on one shard (its records and commit side by side in the log), a byte
 * of its first record flipped while the store was closed. Scanning the whole log,
 * recovery resyncs past the bad record: the other three records and the commit are
 * valid, but applying them would break the batch (3 of its 4 writes). The batch must not
 * be applied at all: every key keeps its value from before it; what follows is there.
 * So too after compaction freed the damaged segment (nothing else held the batch's
 * records), and in the scan after that.
 */
#define DB_AFTER 100

static int test_damaged_batch(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st;
	struct sn_kv_batch *b;
	unsigned char val[3000], v1[100];
	struct sn_kv *kv;
	char key[32];
	int64_t at;

	o.shards = 1;
	marker(val, sizeof(val), "<batch-victim>");
	km_fill(v1, sizeof(v1), 2);
	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	for (unsigned i = 0; i < 4; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "b", i), 100, 1, 0));
	ASSERT_TRUE((b = sn_kv_batch_new()) != NULL);
	ASSERT_OK(sn_kv_batch_put(b, key, km_name(key, "b", 0), val, sizeof(val)));
	for (unsigned i = 1; i < 4; i++)
		ASSERT_OK(sn_kv_batch_put(b, key, km_name(key, "b", i), v1, sizeof(v1)));
	ASSERT_OK(sn_kv_write(kv, b, 0));
	sn_kv_batch_free(b);
	for (unsigned i = 0; i < DB_AFTER; i++) /* (the batch's segment gets sealed) */
		ASSERT_OK(km_put(kv, key, km_name(key, "after", i), 1000, i, 0));
	ASSERT_OK(sn_kv_close(kv));
	at = find_in_file(val, sizeof(val));
	ASSERT_TRUE(at >= 0);
	ASSERT_OK(flip_byte((uint64_t)at + 10));

	/* Scans of the whole log: then compaction (it frees the damaged segment: nothing
	 * else holds the batch's records), and again. */
	o.no_checkpoint = 1;
	for (int pass = 0; pass < 3; pass++) {
		ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
		if (pass == 1)
			ASSERT_OK(sn_kv_compact(kv, 1));
		ASSERT_OK(sn_kv_stat(kv, &st));
		printf("    scan of the whole log%s: %llu corrupt records, %llu segments "
		       "compacted; the batch's keys:",
		       pass == 1 ? ", compacted" : "", (unsigned long long)st.corrupt_records,
		       (unsigned long long)st.compactions);
		for (unsigned i = 0; i < 4; i++) {
			void *v;
			size_t vl;
			int err = sn_kv_get(kv, key, km_name(key, "b", i), &v, &vl);

			printf(" %s", err                               ? sn_errname(err)
			              : vl == 100 && !memcmp(v, v1, vl) ? "batch's"
			                                                : "before");
			if (!err)
				free(v);
		}
		printf("\n");
		ASSERT_TRUE(pass == 2 || st.corrupt_records >= 1);
		ASSERT_TRUE(pass != 1 || st.compactions > 0);
		for (unsigned i = 0; i < 4; i++)
			if (km_expect(kv, key, km_name(key, "b", i), 100, 1))
				return T_FAIL;
		for (unsigned i = 0; i < DB_AFTER; i++)
			if (km_expect(kv, key, km_name(key, "after", i), 1000, i))
				return T_FAIL;
		ASSERT_OK(sn_kv_close(kv));
	}
	return T_PASS;
}

/*
 * The segment that was the head when the index checkpoint was written grows after it
 * (in a session that loads the checkpoint and ends in a power loss), then is sealed.
 * 4 KiB from the first record written after the checkpoint zeroed: an open that loads the
 * checkpoint must scan that segment past its recorded end even though zeros are there,
 * resync, and keep every later record.
 */
static int test_zeroed_after_checkpoint(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st;
	struct sn_kv *kv;
	const unsigned n = 20, m = 120;
	unsigned found, lost;
	char key[32], fault[1200];

	o.shards = 1;
	if (fresh_after(&o, n)) /* the checkpoint: its head holds after-0..19 */
		return T_FAIL;
	/* A session that loads it and ends in a power loss: the checkpoint stays the newest. */
	snprintf(fault, sizeof(fault), "fault:%s%ccrash=all", km_uri,
	         strchr(km_uri, '?') ? '&' : '?');
	ASSERT_OK(sn_kv_open(fault, &o, &kv));
	for (unsigned i = n; i < m; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "after", i), 1000, i, SN_KV_DURABLE));
	ASSERT_OK(sn_dev_ctl(sn_kv_dev(kv), SN_CTL_FAULT_CRASH, NULL));
	sn_kv_close(kv); /* fails: the device is gone */
	if (zero_from_record(n))
		return T_FAIL;

	ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
	ASSERT_OK(sn_kv_stat(kv, &st));
	if (count_after(kv, m, &found, &lost))
		return T_FAIL;
	printf("    %llu keys from the checkpoint, %llu records replayed, %llu corrupt; %u of %u "
	       "records there, the first missing after-%u\n",
	       (unsigned long long)st.checkpoint_keys, (unsigned long long)st.recovered_records,
	       (unsigned long long)st.corrupt_records, found, m, lost);
	ASSERT_EQ(st.checkpoint_keys, n);
	ASSERT_EQ(st.corrupt_records, 1);
	ASSERT_EQ(lost, n);
	ASSERT_EQ(found, m - 4);
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

static int test_zeroed_newest(void)
{
	return zeroed_block(0);
}

static int test_zeroed_older(void)
{
	return zeroed_block(1);
}

/* ---- reused segments: what an earlier life left after the end ---- */

/* Segment i of shard 0 as the file holds it. */
static int read_seg(const struct sn_kv_super *sb, uint32_t i, unsigned char *buf)
{
	int fd = open(km_path, O_RDONLY);
	ssize_t n = -1;

	if (fd >= 0) {
		n = pread(fd, buf, sb->segment_size,
		          (off_t)(sb->log_offset + (uint64_t)i * sb->segment_size));
		close(fd);
	}
	return n == (ssize_t)sb->segment_size ? 0 : -1;
}

static int nonzero(const unsigned char *p, size_t n)
{
	while (n--)
		if (*p++)
			return 1;
	return 0;
}

/* Where the chain of records of a segment image ends (at the first that is not one). */
static uint32_t chain_end(const unsigned char *seg)
{
	uint32_t off = sizeof(struct sn_kv_seghdr);

	while (off + sizeof(struct sn_kv_rechdr) <= KM_SEG) {
		const struct sn_kv_rechdr *r = (const struct sn_kv_rechdr *)(seg + off);
		uint32_t len = sn_kv_rec_len(r->type, r->klen, r->vlen);

		if (r->type < SN_KV_REC_PUT || r->type > SN_KV_REC_COMMIT || len > KM_SEG - off)
			break;
		off += len;
	}
	return off;
}

#define RS_SEGS 16 /* segments of the one shard */

/*
 * Compaction frees segments, and the head reuses them; the blocks a new life never writes
 * keep the earlier life's bytes (a block device, or a file with SN_KV_NOZERO=1; through a
 * mapping, the zeros the store gave the head are lost unless persisted, as fault bytes=1
 * drops them at close). Here every segment of the new life ends `gap` bytes before the
 * last block boundary (0: on it; 8: its next record header would straddle it): recovery
 * reads a record header there and must find zeros, a clean stop, not the earlier life:
 * corruption in an older segment, a torn tail in the newest. Both kinds are checked: the
 * reused segments sealed there, and the head a clean close leaves there. With crash, the
 * puts are SN_KV_DURABLE (each segment is durable up to its end before it is sealed) and
 * the store ends in a power loss (uri is a fault: device) instead of a close: the rounds
 * themselves must have made the sealed segments' zeros durable. The head's end is then
 * not clean, but what follows it is the earlier life's, not a torn write: torn_bytes
 * stays 0.
 */
static int reused_segments(const char *uri, int mapped, uint32_t gap, int crash)
{
	static unsigned char buf[KM_SEG];
	struct sn_kv_opts o = km_opts();
	struct sn_kv_super sb;
	struct sn_kv_stats st;
	struct sn_kv *kv;
	uint32_t end, len = 0, hdr = sizeof(struct sn_kv_rechdr), vlen, per_seg, head_seg = 0;
	uint64_t head_seq = 0;
	unsigned n_old = 80, n_new, sealed = 0, at_head = 0, stale[RS_SEGS] = { 0 };
	char key[32];
	size_t klen = km_name(key, "new", 0);

	o.shards = 1;
	o.capacity = (1u << 20) + RS_SEGS * KM_SEG;
	unlink(km_path);
	ASSERT_OK(sn_kv_open(uri, &o, &kv));
	ASSERT_OK(sn_kv_stat(kv, &st));
	if (mapped && !st.mapped) {
		ASSERT_OK(sn_kv_close(kv));
		SKIP("the store on %s does not use the mapping", uri);
	}
	sb = kv->sb;
	end = KM_SEG - sb.block_size - gap;
	/* The shortest record (with a 9-byte key) that does not fit after end, a whole
	 * number of them from the segment header to end. */
	for (uint32_t k = (end - 64) / sb.block_size; k >= 1 && !len; k--) {
		uint32_t l = (end - 64) / k;

		if ((end - 64) % k == 0 && l % 8 == 0 && l > KM_SEG - end &&
		    l - hdr - klen <= KM_SEG_MAX_VALUE)
			len = l;
	}
	if (!len) {
		ASSERT_OK(sn_kv_close(kv));
		SKIP("no record length ends a segment at %u with %u-byte blocks", end,
		     sb.block_size);
	}
	per_seg = (end - 64) / len;
	vlen = len - hdr - (uint32_t)klen;
	ASSERT_EQ(sn_kv_rec_len(SN_KV_REC_PUT, (uint32_t)klen, vlen), len);
	/* The earlier life: 3000-byte values over every offset of a few segments, then
	 * deleted and compacted away. */
	for (unsigned i = 0; i < n_old; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "old", i), 3000, i, 0));
	for (unsigned i = 0; i < n_old; i++)
		ASSERT_OK(sn_kv_del(kv, key, km_name(key, "old", i), 0));
	ASSERT_OK(sn_kv_compact(kv, 1));
	ASSERT_OK(sn_kv_sync(kv));
	ASSERT_OK(sn_kv_stat(kv, &st));
	ASSERT_TRUE(st.compactions >= 3);
	for (uint32_t i = 0; i < RS_SEGS; i++) {
		const struct sn_kv_seghdr *h = (const struct sn_kv_seghdr *)buf;

		ASSERT_OK(read_seg(&sb, i, buf));
		stale[i] = !h->magic && nonzero(buf + end, hdr);
		if (h->magic == SN_KV_SEG_MAGIC && h->seq > head_seq) {
			head_seq = h->seq;
			head_seg = i;
		}
	}
	ASSERT_TRUE(head_seq > 0);
	ASSERT_OK(read_seg(&sb, head_seg, buf));
	/* The new life: what still fits in the head, then three segments (the first free
	 * ones, which compaction freed) of per_seg records each; the last is the head. */
	n_new = (KM_SEG - chain_end(buf)) / len + 3 * per_seg;
	for (unsigned i = 0; i < n_new; i++)
		ASSERT_OK(km_put(kv, key, km_name(key, "new", i), vlen, 1000 + i,
		                 crash ? SN_KV_DURABLE : 0));
	if (crash) {
		ASSERT_OK(sn_dev_ctl(kv->dev, SN_CTL_FAULT_CRASH, NULL));
		sn_kv_close(kv); /* fails: the device is gone */
	} else {
		ASSERT_OK(sn_kv_close(kv));
	}
	kv = NULL;
	head_seq = 0;
	for (uint32_t i = 0; i < RS_SEGS; i++) {
		const struct sn_kv_seghdr *h = (const struct sn_kv_seghdr *)buf;

		ASSERT_OK(read_seg(&sb, i, buf));
		if (h->magic == SN_KV_SEG_MAGIC && h->seq > head_seq) {
			head_seq = h->seq;
			head_seg = i;
		}
	}
	for (uint32_t i = 0; i < RS_SEGS; i++) {
		const struct sn_kv_seghdr *h = (const struct sn_kv_seghdr *)buf;

		ASSERT_OK(read_seg(&sb, i, buf));
		if (!stale[i] || h->magic != SN_KV_SEG_MAGIC || chain_end(buf) != end)
			continue;
		printf("    segment %u: reused after compaction, %s at %u (%u-byte blocks); the %u "
		       "bytes there: %s\n",
		       i, i == head_seg ? "the head, ends" : "sealed", end, sb.block_size, hdr,
		       nonzero(buf + end, hdr) ? "the earlier life's" : "zeros");
		*(i == head_seg ? &at_head : &sealed) += 1;
	}
	if (!sealed || !at_head)
		T_FAILED("reused segments ending at %u: %u sealed, %u the head: the case was not "
		         "reached",
		         end, sealed, at_head);
	for (int ck = 1; ck >= 0; ck--) {
		o.no_checkpoint = !ck;
		ASSERT_OK(sn_kv_open(uri, &o, &kv));
		ASSERT_OK(sn_kv_stat(kv, &st));
		printf("    reopened (%s): %llu keys, %llu corrupt records, %llu torn bytes\n",
		       crash && ck ? "after the power loss"
		       : ck        ? "from the checkpoint"
		                   : "scanning the log",
		       (unsigned long long)st.keys, (unsigned long long)st.corrupt_records,
		       (unsigned long long)st.torn_bytes);
		ASSERT_EQ(st.corrupt_records, 0);
		ASSERT_EQ(st.torn_bytes, 0); /* every write was durable: an earlier life's bytes */
		ASSERT_EQ(st.keys, n_new);
		for (unsigned i = 0; i < n_new; i++)
			if (km_expect(kv, key, km_name(key, "new", i), vlen, 1000 + i))
				return T_FAIL;
		ASSERT_OK(sn_kv_close(kv));
	}
	return T_PASS;
}

/* As on a block device: no zeros written ahead of the head. */
static int test_reused_segments(void)
{
	char fault[1200];
	int r;

	snprintf(fault, sizeof(fault), "fault:%s%ccrash=all", km_uri,
	         strchr(km_uri, '?') ? '&' : '?');
	setenv("SN_KV_NOZERO", "1", 1);
	r = reused_segments(km_uri, 0, 0, 0);
	if (r == T_PASS)
		r = reused_segments(km_uri, 0, 8, 0);
	if (r == T_PASS)
		r = reused_segments(fault, 0, 0, 1);
	unsetenv("SN_KV_NOZERO");
	return r;
}

/* Byte-addressable: the segments are the mapping. */
static int test_reused_segments_mapped(void)
{
	char uri[1200];
	int r;

	snprintf(uri, sizeof(uri), "fault:psync:%s?create=1&size=4m&bytes=1&crash=all", km_path);
	r = reused_segments(uri, 1, 0, 0);
	if (r == T_PASS)
		r = reused_segments(uri, 1, 8, 0);
	return r == T_PASS ? reused_segments(uri, 1, 0, 1) : r;
}

/* ---- superblock ---- */

static int rw_super(int write, uint64_t off, struct sn_kv_super *sb)
{
	int fd = open(km_path, O_RDWR);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write ? pwrite(fd, sb, sizeof(*sb), (off_t)off)
	          : pread(fd, sb, sizeof(*sb), (off_t)off);
	if (write)
		fdatasync(fd);
	close(fd);
	return n == sizeof(*sb) ? 0 : -1;
}

static int test_format_version(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_super sb, copy;
	struct sn_kv *kv;
	uint32_t bs;

	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	ASSERT_OK(km_put(kv, "k", 1, 10, 1, 0));
	ASSERT_OK(sn_kv_close(kv));
	ASSERT_OK(rw_super(0, 0, &sb));
	ASSERT_TRUE(!memcmp(sb.magic, SN_KV_SB_MAGIC, 8));
	ASSERT_EQ(sb.version, SN_KV_FORMAT_VERSION);
	ASSERT_EQ(sb.crc, sn_crc32c(0, &sb, offsetof(struct sn_kv_super, crc)));
	bs = sb.block_size;
	ASSERT_OK(rw_super(0, bs, &copy));
	ASSERT_TRUE(!memcmp(&sb, &copy, sizeof(sb)));

	printf("    copy A damaged: copy B serves\n");
	copy.crc ^= 1;
	ASSERT_OK(rw_super(1, 0, &copy));
	ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
	if (km_expect(kv, "k", 1, 10, 1))
		return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));

	/* Each case rewrites copy A (valid CRC) and keeps copy B as it was (version 1), or
	 * rewrites both. */
	{
		static const struct {
			const char *what, *says;
			uint32_t version, flags;
			uint64_t log_offset;
		} bad[] = {
			{ "copy A version 2, copy B version 1", "upgrade", 2, 0, 0 },
			{ "version 0", "version 0", 0, 0, 0 },
			{ "unknown flags", "flags 0x4", 1, 4, 0 },
			{ "log_offset 0 (over the superblocks)", "impossible layout", 1, 0, 1 },
		};
		struct sn_kv_super b;

		ASSERT_OK(rw_super(0, bs, &copy));
		for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			b = sb;
			b.version = bad[i].version;
			b.flags = bad[i].flags;
			if (bad[i].log_offset)
				b.log_offset = 0;
			b.crc = sn_crc32c(0, &b, offsetof(struct sn_kv_super, crc));
			ASSERT_OK(rw_super(1, 0, &b));
			if (bad[i].log_offset)
				ASSERT_OK(rw_super(1, bs, &b));
			printf("    %s: SN_EFORMAT\n", bad[i].what);
			ASSERT_ERR(sn_kv_open(km_uri, &o, &kv), SN_EFORMAT);
			ASSERT_STR_HAS(sn_errmsg(), bad[i].says);
			ASSERT_TRUE(kv == NULL);
			ASSERT_OK(rw_super(1, bs, &copy));
		}
	}

	printf("    version 2 with a valid CRC in both copies: SN_EFORMAT, 'newer' in words\n");
	sb.version = 2;
	sb.crc = sn_crc32c(0, &sb, offsetof(struct sn_kv_super, crc));
	ASSERT_OK(rw_super(1, 0, &sb));
	ASSERT_OK(rw_super(1, bs, &sb));
	ASSERT_ERR(sn_kv_open(km_uri, &o, &kv), SN_EFORMAT);
	printf("    sn_errmsg(): %s\n", sn_errmsg());
	ASSERT_STR_HAS(sn_errmsg(), "version 2");
	ASSERT_STR_HAS(sn_errmsg(), "upgrade");
	ASSERT_TRUE(kv == NULL);
	return T_PASS;
}

static int test_not_a_store(void)
{
	static unsigned char junk[1u << 20];
	struct sn_kv_opts o = km_opts();
	struct sn_kv *kv;
	int fd;

	ASSERT_OK(km_open_fresh(&o, &kv));
	ASSERT_OK(sn_kv_close(kv));
	for (size_t i = 0; i < sizeof(junk); i += 256)
		ASSERT_EQ(getrandom(junk + i, 256, 0), 256);
	fd = open(km_path, O_RDWR);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	close(fd);
	printf("    random bytes: SN_EFORMAT, and nothing is overwritten\n");
	ASSERT_ERR(sn_kv_open(km_uri, &o, &kv), SN_EFORMAT);
	printf("    sn_errmsg(): %s\n", sn_errmsg());
	ASSERT_STR_HAS(sn_errmsg(), "not an snstore");
	ASSERT_EQ(find_in_file(junk, 4096), 0);
	return T_PASS;
}

/*
 * sn_kv_format "replaces whatever was there". A new store's first segment is at the same
 * place, with the same sequence number (1), as the old store's; the old records that lie
 * past the new store's last written block must not come back.
 */
static int test_reformat(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv *kv;
	/* A record of 4032 bytes after the 64-byte segment header ends on a 4 KiB boundary. */
	const size_t vlen = 4032 - 24 - 2;

	o.shards = 1;
	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	ASSERT_EQ(sn_kv_rec_len(SN_KV_REC_PUT, 2, (uint32_t)vlen) + 64, 4096);
	ASSERT_OK(km_put(kv, "a1", 2, vlen, 1, 0));
	ASSERT_OK(km_put(kv, "old", 3, 100, 2, 0));
	ASSERT_OK(sn_kv_close(kv));
	printf("    old store: 'a1' fills the first block, 'old' starts the second; "
	       "sn_kv_format, then the new store writes one block-filling record\n");
	ASSERT_OK(sn_kv_format(km_uri, &o));
	ASSERT_OK(sn_kv_open(km_uri, &o, &kv));
	if (km_expect_absent(kv, "a1", 2) || km_expect_absent(kv, "old", 3))
		return T_FAIL;
	ASSERT_OK(km_put(kv, "b1", 2, vlen, 3, 0));
	printf("    reopen the new store: only 'b1'\n");
	if (km_reopen(&kv, &o) || km_expect(kv, "b1", 2, vlen, 3) ||
	    km_expect_absent(kv, "a1", 2) || km_expect_absent(kv, "old", 3))
		return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/*
 * A store that is mostly dead must not fill up: overwrite one key with 8000-byte values
 * until ten times the log's capacity has been written. Background compaction (compact_pct)
 * has to reclaim the dead segments; the store never calls for sn_kv_compact().
 */
static int test_background_compaction(void)
{
	unsigned failed = 0;

	for (unsigned segs = 4; segs <= 16; segs *= 2) {
		struct sn_kv_opts o = km_opts();
		struct sn_kv_stats st;
		struct sn_kv *kv;
		unsigned i, n = (unsigned)(10ull * segs * KM_SEG / 8000);
		int err = 0;

		o.shards = 1;
		o.capacity = (1u << 20) + segs * KM_SEG;
		if (km_open_fresh(&o, &kv))
			return T_FAIL;
		for (i = 0; i < n && !err; i++)
			err = km_put(kv, "only", 4, 8000, i, 0);
		ASSERT_OK(sn_kv_stat(kv, &st));
		printf("    %2u segments: %u of %u overwrites done (%s), %llu segments compacted\n",
		       segs, err ? i - 1 : i, n, sn_errname(err),
		       (unsigned long long)st.compactions);
		failed += err != 0;
		if (km_expect(kv, "only", 4, 8000, err ? i - 2 : n - 1))
			return T_FAIL;
		ASSERT_OK(sn_kv_close(kv));
	}
	if (failed)
		T_FAILED("%u of 3 stores holding one 8000-byte value ran out of space: dead "
		         "segments were not compacted in the background",
		         failed);
	return T_PASS;
}

/* Errors raised on the worker that owns the shard reach the caller with a reason. */
/* An asynchronous put made on a worker: its result and sn_errmsg() in its callback. */
struct async_put {
	struct sn_kv *kv;
	const char *key;
	struct sn_rt_latch done;
	int err, res;
	char msg[256];
};

static void async_put_cb(void *arg, int res, const void *val, size_t vlen)
{
	struct async_put *a = arg;

	(void)val;
	(void)vlen;
	a->res = res;
	snprintf(a->msg, sizeof(a->msg), "%s", sn_errmsg());
	sn_rt_latch_done(&a->done);
}

static void async_put_on_worker(void *arg)
{
	struct async_put *a = arg;
	unsigned char val[2000];

	km_fill(val, sizeof(val), 7);
	sn__err_clear();
	a->err = sn_kv_put_async(a->kv, a->key, strlen(a->key), val, sizeof(val), 0, async_put_cb,
	                         a);
	if (a->err)
		sn_rt_latch_done(&a->done);
}

static int test_errors_have_reasons(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_rt_opts ro = { .workers = 3, .flags = SN_RT_NOPIN };
	struct async_put a;
	struct sn_rt *rt;
	struct sn_kv *kv;
	char uri[1200], key[32];
	unsigned n = 0;
	int err;

	o.shards = 2;
	o.capacity = (1u << 20) + 8 * KM_SEG;
	ASSERT_OK(sn_rt_create(&ro, &rt));
	o.rt = rt;
	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	do {
		sn__err_clear();
		err = km_put(kv, key, km_name(key, "f", n), 2000, n, 0);
	} while (!err && ++n < 10000);
	printf("    a full store: put = %s, sn_errmsg() \"%s\"\n", sn_errname(err), sn_errmsg());
	ASSERT_ERR(err, -ENOSPC);
	/* The same key again from each worker: from its shard's owner the put runs at once,
	 * from the other shard's owner it travels in a batch, from worker 2 (which owns no
	 * shard: 2 shards) as a request. The callback has the reason every way. */
	km_name(key, "f", n);
	for (unsigned w = 0; w < 3; w++) {
		a = (struct async_put){ .kv = kv, .key = key };
		sn_rt_latch_init(&a.done, 1);
		ASSERT_OK(sn_rt_call(rt, w, async_put_on_worker, &a));
		sn_rt_latch_wait(&a.done);
		printf("    the same from worker %u, asynchronously: %s, \"%s\"\n", w,
		       sn_errname(a.err ? a.err : a.res), a.msg);
		ASSERT_OK(a.err);
		ASSERT_ERR(a.res, -ENOSPC);
		ASSERT_TRUE(strstr(a.msg, "is full") != NULL);
	}
	ASSERT_OK(sn_kv_close(kv));
	sn_rt_destroy(rt);
	o.rt = NULL;

	/* Every flush fails: the durable put fails with EIO, and says why. */
	snprintf(uri, sizeof(uri), "fault:psync:%s?eio_prob=1&fail_ops=flush", km_path);
	ASSERT_OK(sn_kv_open(uri, &o, &kv));
	sn__err_clear();
	err = km_put(kv, "k", 1, 10, 1, SN_KV_DURABLE);
	printf("    a failing flush: put = %s, sn_errmsg() \"%s\"\n", sn_errname(err), sn_errmsg());
	ASSERT_ERR(err, -EIO);
	sn_kv_close(kv);
	return T_PASS;
}

/*
 * After a flush failed, a shard takes no more writes (SN_ESTOPPED-like): every call must
 * still return. The check runs in a child with a deadline, so a hang fails this case
 * instead of the whole program.
 */
static int compact_after_failure(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv *kv;
	char uri[1200];
	int err;

	o.shards = 1;
	snprintf(uri, sizeof(uri), "fault:psync:%s?eio_prob=1&fail_ops=flush", km_path);
	if (sn_kv_open(uri, &o, &kv))
		return 2;
	err = km_put(kv, "k", 1, 10, 1, SN_KV_DURABLE);
	printf("    every flush fails: durable put = %s; now sn_kv_compact(kv, 1) ...\n",
	       sn_errname(err));
	err = sn_kv_compact(kv, 1);
	printf("    ... returned %s\n", sn_errname(err));
	sn_kv_close(kv);
	return 0;
}

/* sn_kv_scan callback: count the keys seen, and those longer than any put can write. */
struct scan_count {
	unsigned keys, too_long;
};

static int count_keys(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct scan_count *c = arg;

	(void)key;
	(void)val;
	(void)vlen;
	c->keys++;
	c->too_long += klen > SN_KV_MAX_KEY;
	return 0;
}

/* Run fn in a child with a deadline: its exit status, or -1 when the deadline passed. */
static int in_child(int (*fn)(void), unsigned seconds)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -2;
	if (pid == 0) {
		alarm(seconds);
		_exit(fn());
	}
	if (waitpid(pid, &status, 0) != pid)
		return -2;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
}

static int test_calls_return_after_failure(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv *kv;
	int r;

	o.shards = 1;
	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));
	r = in_child(compact_after_failure, 10);
	if (r == -1)
		T_FAILED("sn_kv_compact() did not return within 10 s on a store whose shard "
		         "stopped after a failed flush");
	ASSERT_EQ(r, 0);
	return T_PASS;
}

/*
 * Batches over two shards leave a commit record behind. Once their records are overwritten
 * nothing needs the commit any more: the space must come back. 10000 batches rewriting the
 * same 6 keys (240 live bytes) in a log of 512 KiB (the commits alone would need 400 KiB);
 * then sn_kv_compact(kv, 1) must return.
 */
static int batches_in_small_store(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_batch *b = sn_kv_batch_new();
	struct sn_kv_stats st;
	struct sn_kv *kv;
	char key[32];
	unsigned i;
	int err = 0;

	o.shards = 2;
	o.capacity = (1u << 19) + 2 * 8 * KM_SEG;
	unlink(km_path);
	if (!b || sn_kv_open(km_uri, &o, &kv))
		return 3;
	for (i = 0; i < 10000 && !err; i++) {
		sn_kv_batch_clear(b);
		for (unsigned j = 0; j < 6; j++)
			sn_kv_batch_put(b, key, km_name(key, "b", j), "v", 1);
		err = sn_kv_write(kv, b, 0);
	}
	sn_kv_stat(kv, &st);
	printf("    %u batches: %s; %llu live bytes, %llu dead, %llu of %llu segments in use\n",
	       err ? i - 1 : i, sn_errname(err), (unsigned long long)st.live_bytes,
	       (unsigned long long)st.dead_bytes, (unsigned long long)st.segments_used,
	       (unsigned long long)st.segments_total);
	if (err)
		return 2;
	printf("    sn_kv_compact(kv, 1) ...\n");
	fflush(stdout);
	sn_kv_compact(kv, 1);
	sn_kv_batch_free(b);
	return sn_kv_close(kv) ? 4 : 0;
}

static int test_batch_commits_reclaimed(void)
{
	int r;

	r = in_child(batches_in_small_store, 180);

	if (r == 2)
		T_FAILED("the store filled up with batches whose records were all overwritten: "
		         "their commit records are never reclaimed");
	if (r == -1)
		T_FAILED("did not finish within 180 s (sn_kv_compact rewriting commit records "
		         "forever?)");
	ASSERT_EQ(r, 0);
	return T_PASS;
}

/*
 * A record with a valid checksum that no put could have written — a key of 1100 or 9000
 * bytes — appended to the log of a closed store (as a bug or a stray writer would leave
 * it). Recovery must treat it as corrupt: the store opens with the anchor as its only key
 * (sn_kv_stat and sn_kv_scan agree), the loss is reported (the record ends the newest
 * segment, so docs/format.md counts it in torn_bytes; corrupt_records were it in an older
 * one), the anchor reads back. Each size runs in a child: a heap overflow must not take
 * the program.
 */
static unsigned long_klen;

static int long_key_child(void)
{
	struct sn_kv_opts o = km_opts();
	struct sn_kv_super sb;
	struct sn_kv_seghdr sh;
	struct sn_kv_rechdr *r;
	struct sn_kv fake; /* kv_rec_seed() reads the store's uuid from it */
	struct sn_kv_stats st;
	struct scan_count seen = { 0 };
	unsigned char val[200], *rec;
	uint64_t start, seg0;
	uint32_t len;
	struct sn_kv *kv;
	int fd, err;

	o.shards = 1;
	unlink(km_path);
	if (sn_kv_open(km_uri, &o, &kv))
		return 3;
	marker(val, sizeof(val), "<anchor>");
	if (sn_kv_put(kv, "anchor", 6, val, sizeof(val), 0) || sn_kv_close(kv))
		return 3;
	/* The anchor's record, its segment, the segment's sequence number. */
	start = (uint64_t)find_in_file(val, sizeof(val)) - sizeof(*r) - 6;
	fd = open(km_path, O_RDWR);
	if (fd < 0 || pread(fd, &sb, sizeof(sb), 0) != sizeof(sb))
		return 3;
	seg0 = sb.log_offset + (start - sb.log_offset) / sb.segment_size * sb.segment_size;
	if (pread(fd, &sh, sizeof(sh), (off_t)seg0) != sizeof(sh) || sh.magic != SN_KV_SEG_MAGIC)
		return 3;
	len = sn_kv_rec_len(SN_KV_REC_PUT, long_klen, 5);
	rec = calloc(1, len);
	r = (struct sn_kv_rechdr *)rec;
	r->type = SN_KV_REC_PUT;
	r->klen = (uint16_t)long_klen;
	r->vlen = 5;
	r->seq = 1u << 20;
	memset(rec + sizeof(*r), 'L', long_klen);
	memcpy(rec + sizeof(*r) + long_klen, "hello", 5);
	memcpy(fake.sb.uuid, sb.uuid, sizeof(sb.uuid));
	r->crc = sn_crc32c(kv_rec_seed(&fake, sh.seq), rec + 4, sizeof(*r) - 4 + long_klen + 5);
	start += sn_kv_rec_len(SN_KV_REC_PUT, 6, sizeof(val));
	if (pwrite(fd, rec, len, (off_t)start) != (ssize_t)len || fdatasync(fd) || close(fd))
		return 3;
	free(rec);
	err = sn_kv_open(km_uri, &o, &kv);
	if (err) {
		printf("    a %u-byte key: open = %s (%s)\n", long_klen, sn_errname(err),
		       sn_errmsg());
		return 2;
	}
	if (sn_kv_stat(kv, &st)) {
		printf("    a %u-byte key: sn_kv_stat failed (%s)\n", long_klen, sn_errmsg());
		return 1;
	}
	err = sn_kv_scan(kv, count_keys, &seen);
	printf("    a %u-byte key in the log: open OK (%llu keys, %llu corrupt records, %llu torn "
	       "bytes); scan = %s (%u keys, %u over %u bytes)\n",
	       long_klen, (unsigned long long)st.keys, (unsigned long long)st.corrupt_records,
	       (unsigned long long)st.torn_bytes, sn_errname(err), seen.keys, seen.too_long,
	       SN_KV_MAX_KEY);
	if (err || st.keys != 1 || seen.keys != 1 || seen.too_long)
		return 1;
	if (st.corrupt_records + st.torn_bytes == 0) {
		printf("    the record was dropped, but the loss is not reported\n");
		return 1;
	}
	{
		void *v;
		size_t vl;

		err = sn_kv_get(kv, "anchor", 6, &v, &vl);
		if (err || vl != sizeof(val) || memcmp(v, val, vl))
			return 1;
		free(v);
	}
	return sn_kv_close(kv) ? 1 : 0;
}

static int test_oversized_key_record(void)
{
	int failed = 0;

	for (unsigned i = 0; i < 2; i++) {
		int r;

		long_klen = i ? 9000 : 1100;
		r = in_child(long_key_child, 30);
		if (r == 3)
			T_FAILED("setting up the store failed");
		if (r) {
			printf("    a %u-byte key: %s\n", long_klen,
			       r == -2 ? "the child crashed (a signal)" : "recovery took it");
			failed++;
		}
	}
	if (failed)
		T_FAILED(
		        "recovery accepted records whose key is over %u bytes: it indexes the key, "
		        "does not report the loss, or sn_kv_scan fails (-EINVAL) or overflows its "
		        "key buffer",
		        SN_KV_MAX_KEY);
	return T_PASS;
}

/* ---- batches and compaction at once ---- */

/*
 * The records of a batch over several shards wait in their shards' logs until the commit
 * is decided (sn_kv_write's phases 1 to 3). Should compaction copy an older live record of
 * one of the batch's keys to the head meanwhile, the copy lands after the batch's record,
 * and when the commit is applied (or found by recovery) the later record wins: the key
 * keeps its old value though sn_kv_write returned 0. One thread runs sn_kv_compact(kv, 1)
 * over and over while this one writes CB_ROUNDS batches of CB_BATCH keys picked out of
 * CB_KEYS (on both shards; each batch leaves dead records in the older segments, so there
 * is always a segment to compact). After each batch every key it wrote must read back the
 * batch's value; at the end every key its last batch's value, open and after a reopen.
 * A value's tag is round << 16 | key: a stale value says which round wrote it.
 */
#define CB_KEYS   4096
#define CB_BATCH  64
#define CB_ROUNDS 300
#define CB_VLEN   100

struct cb_compactor {
	struct sn_kv *kv;
	_Atomic int stop;
	int err; /* read after the join */
	unsigned calls;
};

static void *cb_compact_main(void *arg)
{
	struct cb_compactor *c = arg;

	while (!c->stop && !c->err) {
		c->err = sn_kv_compact(c->kv, 1);
		c->calls++;
	}
	return NULL;
}

/* The tag of a value this test wrote, or UINT64_MAX for bytes no write of it produced. */
static uint64_t cb_tag(const void *val, size_t vlen)
{
	unsigned char want[CB_VLEN];
	uint64_t tag;

	if (vlen != CB_VLEN)
		return UINT64_MAX;
	memcpy(&tag, val, 8);
	km_fill(want, sizeof(want), tag);
	return memcmp(val, want, vlen) ? UINT64_MAX : tag;
}

/* An asynchronous get of the check after a batch. */
struct cb_get {
	struct sn_rt_latch *done;
	int res;
	uint64_t tag;
};

static void cb_get_done(void *arg, int res, const void *val, size_t vlen)
{
	struct cb_get *g = arg;

	g->res = res;
	g->tag = res ? UINT64_MAX : cb_tag(val, vlen);
	sn_rt_latch_done(g->done);
}

/* Read every key back: how many do not hold want[key]. */
static unsigned cb_check_all(struct sn_kv *kv, const uint64_t *want, const char *when)
{
	unsigned bad = 0;
	char name[32];

	for (unsigned k = 0; k < CB_KEYS; k++) {
		size_t klen = km_name(name, "cb", k), vl;
		void *v = NULL;
		int err = sn_kv_get(kv, name, klen, &v, &vl);
		uint64_t got = err ? UINT64_MAX : cb_tag(v, vl);

		free(v);
		if (got != want[k] && !bad++)
			printf("    %s: %s holds %s %llu, not that of its last batch, round "
			       "%llu\n",
			       when, name, err ? sn_errname(err) : "the value of round",
			       err ? 0ull : (unsigned long long)(got >> 16),
			       (unsigned long long)(want[k] >> 16));
	}
	return bad;
}

static int test_batch_during_compaction(void)
{
	static uint64_t want[CB_KEYS];
	struct sn_kv_opts o = km_opts();
	struct sn_kv_batch *b = sn_kv_batch_new();
	struct cb_compactor c = { 0 };
	struct cb_get gets[CB_BATCH];
	struct sn_rt_latch done;
	struct sn_kv_stats st0, st;
	unsigned char val[CB_VLEN];
	unsigned stale_batches = 0, stale_keys = 0, bad_open, bad_reopen;
	uint64_t rnd = 0x243f6a8885a308d3ull;
	struct sn_kv *kv;
	pthread_t tid;
	char name[32];
	int err = 0;

	ASSERT_TRUE(b != NULL);
	o.shards = 2;
	o.workers = 2;
	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	for (unsigned k = 0; k < CB_KEYS; k++) {
		want[k] = k;
		ASSERT_OK(km_put(kv, name, km_name(name, "cb", k), CB_VLEN, want[k], 0));
	}
	ASSERT_OK(sn_kv_sync(kv));
	ASSERT_OK(sn_kv_stat(kv, &st0));
	c.kv = kv;
	ASSERT_EQ(pthread_create(&tid, NULL, cb_compact_main, &c), 0);
	for (unsigned r = 1; r <= CB_ROUNDS && !err; r++) {
		unsigned keys[CB_BATCH], first, step, stale = 0;

		/* CB_BATCH distinct keys: a random start and a random odd stride. */
		rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
		first = (unsigned)rnd % CB_KEYS;
		step = (unsigned)(rnd >> 32) % CB_KEYS | 1;
		sn_kv_batch_clear(b);
		for (unsigned j = 0; j < CB_BATCH && !err; j++) {
			keys[j] = (first + j * step) % CB_KEYS;
			km_fill(val, sizeof(val), (uint64_t)r << 16 | keys[j]);
			err = sn_kv_batch_put(b, name, km_name(name, "cb", keys[j]), val,
			                      sizeof(val));
		}
		if (err || (err = sn_kv_write(kv, b, 0)))
			break;
		/* The check's gets go out all at once, so that the next batch follows this
		 * one closely: a segment whose compaction began after this batch is then
		 * likely still half copied when the next batch's records arrive. */
		sn_rt_latch_init(&done, CB_BATCH);
		for (unsigned j = 0; j < CB_BATCH; j++) {
			size_t klen = km_name(name, "cb", keys[j]);

			want[keys[j]] = (uint64_t)r << 16 | keys[j];
			gets[j] = (struct cb_get){ .done = &done };
			while (!err && (err = sn_kv_get_async(kv, name, klen, cb_get_done,
			                                      &gets[j])) == -EAGAIN)
				err = sched_yield();
			if (err) /* refused (this one or an earlier one): no callback */
				sn_rt_latch_done(&done);
		}
		sn_rt_latch_wait(&done);
		for (unsigned j = 0; j < CB_BATCH && !err; j++) {
			if ((err = gets[j].res))
				break;
			if (gets[j].tag != want[keys[j]] && !stale++ && !stale_batches)
				printf("    round %u: cb-%05u holds round %llu's value though the "
				       "batch returned 0\n",
				       r, keys[j], (unsigned long long)(gets[j].tag >> 16));
		}
		stale_batches += stale != 0;
		stale_keys += stale;
	}
	c.stop = 1;
	ASSERT_EQ(pthread_join(tid, NULL), 0);
	ASSERT_OK(err);
	ASSERT_OK(c.err);
	ASSERT_OK(sn_kv_stat(kv, &st));
	printf("    %u batches of %u keys on 2 shards, %u forced compactions (%llu segments) at "
	       "the same time: %u batches had keys that kept an older value (%u keys)\n",
	       CB_ROUNDS, CB_BATCH, c.calls, (unsigned long long)(st.compactions - st0.compactions),
	       stale_batches, stale_keys);
	ASSERT_TRUE(st.compactions > st0.compactions);
	bad_open = cb_check_all(kv, want, "open");
	if (km_reopen(&kv, &o))
		return T_FAIL;
	bad_reopen = cb_check_all(kv, want, "reopened");
	printf("    every key its last batch's value: %u keys wrong while open, %u after "
	       "reopen\n",
	       bad_open, bad_reopen);
	ASSERT_OK(sn_kv_close(kv));
	sn_kv_batch_free(b);
	if (stale_batches || bad_open || bad_reopen)
		T_FAILED("a batch's record lost to an older record of its key that compaction "
		         "copied while the batch waited for its commit");
	return T_PASS;
}

/*
 * Calls made after a write that waits for space. A shard that is full while a round or a
 * compaction will free space parks the write (src/kv/shard.c, space_wait) instead of
 * failing it; a get of the same key and a sync made after it must wait behind it, as a
 * worker's calls to one owner run in the order made (src/kv/post.c). A store of 2 shards
 * with 6 segments each (2 held in reserve) takes put + get pairs on 16 keys and a sync
 * every 16 puts (2.6 times the log per caller), all in one go, from each caller in turn:
 * worker 0 of the store's runtime (shard 0's calls run at once, shard 1's go in batches
 * to worker 1), worker 1 (the other way round), and a foreign thread (requests through
 * each owner's inbox). Every get must read the value of the put just before it, every
 * sync must call back after the puts made before it.
 *
 * The caller's own shard runs out of space within its one go. A shard of another worker
 * is made full first: its owner puts to it until a write waits for space, and holds there
 * until the caller has made all its calls, so that they reach writes still parked. Parked
 * writes are seen on the owner: after each of its own puts (space_head), and for the
 * other shards by a probe sent to the owner after each sync (it runs behind the calls made
 * before it). Only overwritten values die, so compaction always frees space and no write
 * may fail.
 */
#define SP_KEYS    16 /* 8 per shard */
#define SP_SEGS    6  /* per shard */
#define SP_PUTS    2000
#define SP_VLEN    1000
#define SP_SYNC_IN 16 /* a sync after this many puts */
#define SP_OPS     (2 * SP_PUTS + SP_PUTS / SP_SYNC_IN)
#define SP_FILL    600 /* puts at most to make a shard full: more than it holds */

enum { SP_PUT, SP_GET, SP_SYNC };
static const char *const sp_what[] = { "put", "get", "sync" };

struct sp_drv;

struct sp_op {
	struct sp_drv *d;
	uint8_t type, shard;
	uint16_t key;       /* SP_PUT, SP_GET */
	uint64_t tag;       /* put: its value's; get: the put's just before it */
	unsigned before[2]; /* sync: puts made before it, per shard */
	unsigned seen[2];   /* sync: puts called back when it was */
	int res, called;
	uint64_t got; /* get: the tag it read (UINT64_MAX: none) */
};

/* A shard of another worker, made full by its owner before the caller's calls. */
struct sp_fill {
	struct sp_drv *d;
	unsigned shard, made, failed;
	_Atomic int holding;
	struct sp_op ops[SP_FILL];
};

/* One caller's calls. */
struct sp_drv {
	struct sn_kv *kv;
	struct sn_rt *rt;
	unsigned who; /* the worker it runs on, or SN_RT_FOREIGN */
	struct sp_op *ops;
	unsigned next;
	_Atomic unsigned puts_done[2];
	unsigned puts_made[2];
	unsigned parked_own; /* own puts that found the shard waiting for space */
	unsigned puts_own;   /* puts to a shard this worker owns */
	_Atomic unsigned probes[2], probes_parked[2];
	int err;                 /* the first call refused (not -EAGAIN) */
	_Atomic int gate;        /* the calls are made: held owners go on */
	struct sn_rt_latch done; /* every callback, probe and fill */
	struct sn_rt_task task;
	struct sp_probe {
		struct sp_drv *d;
		unsigned shard;
	} probe[2];
	struct sp_fill fill[2];
};

static char sp_names[SP_KEYS][32];
static size_t sp_klen[SP_KEYS];

static void sp_cb(void *arg, int res, const void *val, size_t vlen)
{
	struct sp_op *op = arg;
	struct sp_drv *d = op->d;
	unsigned char want[SP_VLEN];

	op->res = res;
	op->called++;
	if (op->type == SP_PUT) {
		atomic_fetch_add(&d->puts_done[op->shard], 1);
	} else if (op->type == SP_GET) {
		op->got = UINT64_MAX;
		if (!res && vlen == SP_VLEN) {
			memcpy(&op->got, val, 8);
			km_fill(want, sizeof(want), op->got);
			if (memcmp(val, want, vlen))
				op->got = UINT64_MAX;
		}
	} else {
		op->seen[0] = atomic_load(&d->puts_done[0]);
		op->seen[1] = atomic_load(&d->puts_done[1]);
	}
	sn_rt_latch_done(&d->done);
}

static void sp_fill_cb(void *arg, int res, const void *val, size_t vlen)
{
	struct sp_op *op = arg;

	(void)val;
	(void)vlen;
	op->res = res;
	sn_rt_latch_done(&op->d->done);
}

/* On the owner of f->shard: puts to it until one waits for space, then hold the worker
 * until the gate opens (so no round or compaction frees space meanwhile). */
static void sp_fill(void *arg)
{
	struct sp_fill *f = arg;
	struct sp_drv *d = f->d;
	unsigned char val[SP_VLEN];

	while (f->made < SP_FILL && !d->kv->shards[f->shard].space_head) {
		struct sp_op *op = &f->ops[f->made];
		unsigned k = f->shard * SP_KEYS / 2 + f->made % (SP_KEYS / 2);

		*op = (struct sp_op){ .d = d,
			              .type = SP_PUT,
			              .shard = (uint8_t)f->shard,
			              .key = (uint16_t)k,
			              .tag = (uint64_t)4 << 32 | f->made };
		km_fill(val, sizeof(val), op->tag);
		if (sn_kv_put_async(d->kv, sp_names[k], sp_klen[k], val, sizeof(val), 0, sp_fill_cb,
		                    op)) {
			f->failed++;
			break;
		}
		f->made++;
	}
	for (unsigned i = f->made; i < SP_FILL; i++)
		sn_rt_latch_done(&d->done);
	atomic_store(&f->holding, 1);
	while (!atomic_load(&d->gate))
		sched_yield();
}

/* On the owner of p->shard, behind the calls made before it: are writes parked there? */
static void sp_probe(void *arg)
{
	struct sp_probe *p = arg;
	struct sp_drv *d = p->d;

	atomic_fetch_add(&d->probes[p->shard], 1);
	if (d->kv->shards[p->shard].space_head)
		atomic_fetch_add(&d->probes_parked[p->shard], 1);
	sn_rt_latch_done(&d->done);
}

/* Make call i: 0, or the call's error (-EAGAIN: make it again later). */
static int sp_call(struct sp_drv *d, unsigned i)
{
	struct sp_op *op = &d->ops[i];
	unsigned char val[SP_VLEN];
	int err;

	switch (op->type) {
	case SP_PUT:
		km_fill(val, sizeof(val), op->tag);
		err = sn_kv_put_async(d->kv, sp_names[op->key], sp_klen[op->key], val, sizeof(val),
		                      0, sp_cb, op);
		if (err)
			return err;
		d->puts_made[op->shard]++;
		if (d->who == kv_owner(d->kv, op->shard)) { /* it ran at once, here */
			d->puts_own++;
			d->parked_own += d->kv->shards[op->shard].space_head != NULL;
		}
		return 0;
	case SP_GET:
		return sn_kv_get_async(d->kv, sp_names[op->key], sp_klen[op->key], sp_cb, op);
	default:
		op->before[0] = d->puts_made[0];
		op->before[1] = d->puts_made[1];
		if ((err = sn_kv_sync_async(d->kv, sp_cb, op)))
			return err;
		for (unsigned s = 0; s < 2; s++) {
			unsigned owner = kv_owner(d->kv, s);

			/* Behind the sync on the ring (or inbox) to the owner; none to this
			 * worker's own shard (it would run after this whole go). */
			if (owner == d->who || sn_rt_send(d->rt, owner, sp_probe, &d->probe[s]))
				sn_rt_latch_done(&d->done);
		}
		return 0;
	}
}

/* Calls from d->next on were refused or never made: no callbacks, no probes. */
static void sp_refused(struct sp_drv *d)
{
	for (unsigned i = d->next; i < SP_OPS; i++)
		for (unsigned j = d->ops[i].type == SP_SYNC ? 3 : 1; j; j--)
			sn_rt_latch_done(&d->done);
}

/* A worker's calls, all in one go. A full ring: let the held owner go, and make the rest
 * at the end of the iteration. */
static void sp_pump(void *arg)
{
	struct sp_drv *d = arg;
	int err = 0;

	while (d->next < SP_OPS) {
		if ((err = sp_call(d, d->next)) == -EAGAIN) {
			atomic_store(&d->gate, 1);
			sn_rt_defer(&d->task);
			return;
		}
		if (err)
			break;
		d->next++;
	}
	atomic_store(&d->gate, 1);
	if ((d->err = err))
		sp_refused(d);
}

/* Check one caller's calls, counting per shard the gets that read an older value and the
 * syncs that called back before puts made ahead of them: the calls that broke (the first
 * few printed). */
static unsigned sp_check(const struct sp_drv *d, const char *name, unsigned stale[2],
                         unsigned early[2])
{
	unsigned bad = 0;

	stale[0] = stale[1] = early[0] = early[1] = 0;
	for (unsigned i = 0; i < SP_OPS; i++) {
		const struct sp_op *op = &d->ops[i];

		if (op->called != 1 || op->res) {
			if (bad++ < 3)
				printf("    %s: call %u (%s) called back %d times, %s\n", name, i,
				       sp_what[op->type], op->called, sn_errname(op->res));
			continue;
		}
		if (op->type == SP_GET && op->got != op->tag) {
			if (!stale[0] && !stale[1])
				printf("    %s: get %u of %s read %s %lld, not put %llu's value\n",
				       name, i, sp_names[op->key],
				       op->got == UINT64_MAX ? "no value of this test" : "put",
				       op->got == UINT64_MAX ? -1 : (long long)(op->got & 0xffffff),
				       (unsigned long long)(op->tag & 0xffffff));
			stale[op->shard]++;
			bad++;
		}
		for (unsigned s = 0; op->type == SP_SYNC && s < 2; s++) {
			if (op->seen[s] >= op->before[s])
				continue;
			if (!early[0] && !early[1])
				printf("    %s: sync %u called back when %u of the %u puts to "
				       "shard %u made before it had\n",
				       name, i, op->seen[s], op->before[s], s);
			early[s]++;
			bad++;
		}
	}
	return bad;
}

static int test_calls_behind_parked_writes(void)
{
	static struct sp_op ops[SP_OPS];
	static struct sp_drv d;
	struct sn_rt_opts ro = {
		.workers = 2, .flags = SN_RT_NOPIN, .ring_size = 4096, .inbox_size = 8192
	};
	struct sn_kv_opts o = km_opts();
	struct sn_kv_stats st;
	struct sn_rt *rt;
	struct sn_kv *kv;
	unsigned per[2] = { 0, 0 }, failed = 0;
	uint64_t last[SP_KEYS] = { 0 };

	o.shards = 2;
	o.capacity = (1u << 20) + 2 * SP_SEGS * KM_SEG;
	ASSERT_OK(sn_rt_create(&ro, &rt));
	o.rt = rt;
	if (km_open_fresh(&o, &kv))
		return T_FAIL;
	/* 8 keys of each shard: keys 0..7 in shard 0, 8..15 in shard 1. */
	for (unsigned i = 0; per[0] + per[1] < SP_KEYS; i++) {
		char name[32];
		size_t kl = km_name(name, "sp", i);
		unsigned s = kv_shard_of(kv, sn_kv_hash(name, kl));

		if (per[s] == SP_KEYS / 2)
			continue;
		memcpy(sp_names[s * SP_KEYS / 2 + per[s]], name, kl + 1);
		sp_klen[s * SP_KEYS / 2 + per[s]++] = kl;
	}
	for (unsigned who = 0; who < 3; who++) {
		const char *name = who == 0 ? "worker 0" : who == 1 ? "worker 1" : "foreign thread";
		unsigned n = 0, puts = 0, nfill = 0, stale[2], early[2], bad, unparked = 0;
		uint64_t t0, t1;

		memset(ops, 0, sizeof(ops));
		memset(&d, 0, sizeof(d));
		d.kv = kv;
		d.rt = rt;
		d.who = who < 2 ? who : SN_RT_FOREIGN;
		d.ops = ops;
		d.task = (struct sn_rt_task){ sp_pump, &d, NULL, 0 };
		for (unsigned s = 0; s < 2; s++)
			d.probe[s] = (struct sp_probe){ &d, s };
		/* Put, get of that key; the keys of the two shards in turn. */
		while (n < SP_OPS) {
			unsigned k = (puts & 1) * SP_KEYS / 2 + (puts / 2) % (SP_KEYS / 2);
			uint64_t tag = (uint64_t)(who + 1) << 32 | puts;

			ops[n++] = (struct sp_op){ .d = &d,
				                   .type = SP_PUT,
				                   .shard = (uint8_t)(k / (SP_KEYS / 2)),
				                   .key = (uint16_t)k,
				                   .tag = tag };
			ops[n] = ops[n - 1];
			ops[n++].type = SP_GET;
			last[k] = tag;
			if (++puts % SP_SYNC_IN == 0)
				ops[n++] = (struct sp_op){ .d = &d, .type = SP_SYNC };
		}
		nfill = 2 - (who < 2);
		sn_rt_latch_init(&d.done, SP_OPS + 2 * (SP_PUTS / SP_SYNC_IN) + nfill * SP_FILL);
		t0 = sn__now_ns();
		/* The other workers' shards full first, their owners held. */
		for (unsigned s = 0; s < 2; s++) {
			if (kv_owner(kv, s) == d.who)
				continue;
			d.fill[s].d = &d;
			d.fill[s].shard = s;
			ASSERT_OK(sn_rt_send(rt, kv_owner(kv, s), sp_fill, &d.fill[s]));
			while (!atomic_load(&d.fill[s].holding))
				sched_yield();
		}
		if (who < 2) {
			ASSERT_OK(sn_rt_send(rt, who, sp_pump, &d));
		} else {
			int err = 0;

			while (d.next < SP_OPS) {
				/* A full inbox: let the held owners go. */
				while ((err = sp_call(&d, d.next)) == -EAGAIN)
					atomic_store(&d.gate, 1), sched_yield();
				if (err)
					break;
				d.next++;
			}
			atomic_store(&d.gate, 1);
			if ((d.err = err))
				sp_refused(&d);
		}
		sn_rt_latch_wait(&d.done);
		t1 = sn__now_ns();
		ASSERT_OK(d.err);
		bad = sp_check(&d, name, stale, early);
		printf("    %s, %.0f ms:\n", name, (double)(t1 - t0) / 1e6);
		for (unsigned s = 0; s < 2; s++) {
			unsigned owner = kv_owner(kv, s), own = owner == d.who;
			unsigned parked = own ? d.parked_own : d.probes_parked[s];
			const char *path = own       ? "calls run at once on its owner,"
			                   : who < 2 ? "batches to"
			                             : "requests to";

			if (!own)
				printf("      shard %u made full first: %u puts on worker %u until "
				       "one "
				       "waited for space\n",
				       s, d.fill[s].made, owner);
			printf("      shard %u (%s worker %u): writes waiting for space %s %u of "
			       "%u %s; %u gets read an older value, %u syncs called back ahead "
			       "of puts\n",
			       s, path, owner, own ? "after" : "at", parked,
			       own ? d.puts_own : d.probes[s], own ? "puts" : "probes", stale[s],
			       early[s]);
			unparked += !parked;
			for (unsigned i = 0; !own && i < d.fill[s].made; i++)
				ASSERT_OK(d.fill[s].ops[i].res);
			ASSERT_OK(d.fill[s].failed);
		}
		failed += bad != 0;
		if (unparked)
			T_FAILED("%s: no write waited for space on %u shards: their calls were not "
			         "checked",
			         name, unparked);
	}
	ASSERT_OK(sn_kv_stat(kv, &st));
	printf("    %llu segments compacted, %llu puts\n", (unsigned long long)st.compactions,
	       (unsigned long long)st.puts);
	ASSERT_TRUE(st.compactions > 0);
	for (unsigned k = 0; k < SP_KEYS; k++)
		if (km_expect(kv, sp_names[k], sp_klen[k], SP_VLEN, last[k]))
			return T_FAIL;
	ASSERT_OK(sn_kv_close(kv));
	sn_rt_destroy(rt);
	if (failed) {
		sn__err_clear(); /* no call failed: their order did */
		T_FAILED("calls made after a write that waited for space ran before it (%u of 3 "
		         "callers)",
		         failed);
	}
	return T_PASS;
}

int main(int argc, char **argv)
{
	int r = km_main(argc, argv, "test_kv_medium: what the medium does to a KV store");

	if (r != T_PASS)
		return r;
	T_RUN("a full device: -ENOSPC, nothing lost, usable after delete + compact",
	      test_full_device());
	T_RUN("background compaction keeps a mostly dead store from filling",
	      test_background_compaction());
	T_RUN("a byte flipped under an open store: SN_ECORRUPT", test_corrupt_while_open());
	T_RUN("a byte flipped in the newest segment of a closed store", test_corrupt_newest());
	T_RUN("a byte flipped in an older segment of a closed store", test_corrupt_older());
	T_RUN("a byte flipped where the checkpoint says records were durable, read-only",
	      test_corrupt_covered_readonly());
	T_RUN("a byte flipped in the newest segment, found by the get after a checkpoint load",
	      test_corrupt_newest_ckpt());
	T_RUN("a byte flipped in an older segment, found by the get after a checkpoint load",
	      test_corrupt_older_ckpt());
	T_RUN("a byte flipped in a batch's record: the batch is not applied at all",
	      test_damaged_batch());
	T_RUN("4 KiB zeroed after the checkpoint's end of its head, sealed since: records kept",
	      test_zeroed_after_checkpoint());
	T_RUN("4 KiB zeroed in the newest segment: counted, the records after it kept",
	      test_zeroed_newest());
	T_RUN("4 KiB zeroed in an older segment: counted, the records after it kept",
	      test_zeroed_older());
	T_RUN("reused segments ending at a block boundary: no corruption or torn tail at reopen",
	      test_reused_segments());
	T_RUN("the same through a mapping (fault bytes=1)", test_reused_segments_mapped());
	T_RUN("superblock: newer version refused, either copy serves", test_format_version());
	T_RUN("a file that is not a store: SN_EFORMAT", test_not_a_store());
	T_RUN("a reformat leaves nothing of the old store readable", test_reformat());
	T_RUN("errors raised on a worker leave a reason in sn_errmsg()",
	      test_errors_have_reasons());
	T_RUN("sn_kv_compact returns on a shard stopped by a failed flush",
	      test_calls_return_after_failure());
	T_RUN("the commit records of overwritten batches are reclaimed",
	      test_batch_commits_reclaimed());
	T_RUN("recovery refuses a record with a key no put could write",
	      test_oversized_key_record());
	T_RUN("a batch written while compaction runs is applied", test_batch_during_compaction());
	T_RUN("calls made after a write that waits for space see that write",
	      test_calls_behind_parked_writes());
	unlink(km_path);
	return t_end();
}
