/* SPDX-License-Identifier: MIT */
/*
 * kvref.c — the reference side of bench/vs-rocksdb.sh: db_bench-shaped workloads run
 * against Debian's RocksDB, LevelDB or LMDB through their C APIs, reporting the same
 * JSON as `snstore kvbench --json`, so the two sides of the comparison differ only in
 * the store.
 *
 * db_bench facts it relies on (rocksdb tools/db_bench_tool.cc, leveldb
 * benchmarks/db_bench.cc): --num 1000000, 16-byte keys, 100-byte values, --sync=false
 * with the WAL on, --batch_size 1; fillseq/fillrandom/fillsync start from a fresh DB,
 * overwrite/readrandom/readwhilewriting use the DB as the previous benchmark left it;
 * fillsync writes num/1000 random keys with sync=true; random keys are uniform over
 * [0, num), so fillrandom leaves about 1 - 1/e = 63.2% of the key space present and a
 * following readrandom finds about that share. Values come from db_bench's
 * RandomGenerator: 1 MiB of 100-byte pieces, each piece 50 random printable bytes
 * written twice (compression_ratio 0.5), handed out as consecutive slices.
 *
 * Where kvref departs from db_bench, and why:
 *   - keys are LevelDB's decimal "%016llu" (rocksdb's db_bench writes 8 big-endian
 *     bytes padded with '0'); both sort in key-number order;
 *   - --threads T splits num across T threads (db_bench gives every thread num ops),
 *     so the data set is num keys whatever T is;
 *   - no compression and a 1 GiB block cache (db_bench: snappy, 32 MiB): snstore does
 *     not compress, and this comparison is "data fits in memory" (1M x 116 B);
 *   - 10-bit Bloom filters on RocksDB and LevelDB (db_bench: none; RocksDB's own
 *     benchmark.sh uses 10), so a store with a hash index is not compared with an LSM
 *     that must search every level for the ~37% missing keys;
 *   - every get copies the value into the caller's buffer, on all three stores (RocksDB
 *     through a pinned slice, LevelDB's C API copies anyway, LMDB from the map).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <leveldb/c.h>
#include <lmdb.h>
#include <rocksdb/c.h>

#include "kvgen.h"

#define MIB              (1024ull * 1024)
#define CACHE_BYTES      (1024 * MIB) /* block cache: holds the whole 1M x 116 B data set */
#define WRITE_BUFFER     (64 * MIB)   /* db_bench's (= RocksDB's default) memtable size */
#define BLOOM_BITS       10
#define MAX_KEY_SIZE     511 /* LMDB's default maximum key size */
#define MAX_VALUE_SIZE   (1 * MIB)
#define MAX_THREADS      1024
#define MAX_BATCH        100000
#define MAX_BENCHMARKS   64
#define FILLSYNC_DIVISOR 1000
#define FILLSYNC_MIN     1000

/* ---- latency histogram: the layout of src/util/hist.h (values below 64 ns exact, every
 * power of two above split in 64 buckets: percentiles within 1/64) ---- */
#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 44
#define HIST_BUCKETS  ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count, sum, min, max;
	uint64_t b[HIST_BUCKETS];
};

static void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static unsigned hist_index(uint64_t v)
{
	unsigned shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	if (v >= (1ull << HIST_MAX_BITS))
		v = (1ull << HIST_MAX_BITS) - 1;
	shift = 63u - (unsigned)__builtin_clzll(v) - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

/* n samples of v: a batch of n puts that completed together. */
static void hist_add_n(struct hist *h, uint64_t v, uint64_t n)
{
	h->b[hist_index(v)] += n;
	h->count += n;
	h->sum += v * n;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

static void hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

static uint64_t hist_pct(const struct hist *h, double p)
{
	uint64_t rank, seen = 0, v;
	unsigned shift;

	if (!h->count)
		return 0;
	rank = (uint64_t)(p / 100.0 * (double)h->count + 0.999999);
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen < rank)
			continue;
		if (i < HIST_SUB)
			return i;
		shift = i / HIST_SUB - 1;
		v = ((uint64_t)(HIST_SUB + i % HIST_SUB) << shift) + ((1ull << shift) >> 1);
		return v < h->min ? h->min : v > h->max ? h->max : v;
	}
	return h->max;
}

static double hist_mean(const struct hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

/* ---- helpers (the rest are kvgen.h's, shared with kvbench) ---- */
static unsigned digits(uint64_t v)
{
	unsigned d = 1;

	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

/* ---- options ---- */
struct opts {
	const char *store;
	const char *db;
	const char *benchmarks;
	uint64_t num;
	unsigned threads, writers, key_size, value_size, batch;
	int sync, json;
	uint64_t seed;
};

/* ---- the stores ---- */
struct worker;

struct kv {
	const struct store *s;
	const struct opts *o;
	int open;
	/* rocksdb */
	rocksdb_t *rdb;
	rocksdb_options_t *ropts;
	rocksdb_cache_t *rcache;
	rocksdb_writeoptions_t *rwo[2]; /* [sync] */
	rocksdb_readoptions_t *rro;
	/* leveldb */
	leveldb_t *ldb;
	leveldb_options_t *lopts;
	leveldb_cache_t *lcache;
	leveldb_filterpolicy_t *lfilter;
	leveldb_writeoptions_t *lwo[2];
	leveldb_readoptions_t *lro;
	/* lmdb */
	MDB_env *env;
	MDB_dbi dbi;
};

struct store {
	const char *name;
	int (*open)(struct kv *kv, char *err, size_t errlen);
	void (*close)(struct kv *kv);
	/* Makes later writes synced or not; NULL when sync is per write (WriteOptions). */
	int (*set_sync)(struct kv *kv, int sync, char *err, size_t errlen);
	/* n puts as one atomic write (one Put for n == 1, else a WriteBatch / one txn). */
	int (*write)(struct kv *kv, struct worker *w, const char *keys, char *const *vals,
	             unsigned n, int sync);
	/* 0 and *found, or -1 with w->err set. The value is copied to w->vbuf. */
	int (*get)(struct kv *kv, struct worker *w, const char *key, int *found);
	/* Releases per-thread state, on the worker's own thread. */
	void (*thread_end)(struct kv *kv, struct worker *w);
};

enum role { ROLE_SEQ_WRITE, ROLE_RAND_WRITE, ROLE_WRITE_UNTIL_STOP, ROLE_READ };

struct run;

struct worker {
	_Alignas(64) _Atomic uint64_t done;
	struct run *run;
	pthread_t tid;
	enum role role;
	int sync;
	uint64_t lo, n; /* ROLE_SEQ_WRITE: keys [lo, lo + n); others: n operations */
	uint64_t rng;
	size_t vpos;
	uint64_t ops, found;
	uint64_t t_start, t_end;
	struct hist *h;
	void *ts; /* store's per-thread state */
	char *vbuf;
	int failed;
	char err[512];
};

struct run {
	struct kv *kv;
	const char *vpool;
	size_t vpool_len;
	pthread_barrier_t barrier;
	_Atomic int stop;
	_Atomic unsigned readers_left;
	_Atomic unsigned active;
};

static void set_err(struct worker *w, const char *what, const char *msg)
{
	snprintf(w->err, sizeof(w->err), "%s: %s", what, msg ? msg : "unknown error");
	w->failed = 1;
}

/* RocksDB: db_bench's options, except those the file comment lists. */
static int rocks_open(struct kv *kv, char *err, size_t errlen)
{
	rocksdb_block_based_table_options_t *bbt;
	char *e = NULL;

	kv->ropts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(kv->ropts, 1);
	rocksdb_options_set_write_buffer_size(kv->ropts, WRITE_BUFFER);
	rocksdb_options_set_compression(kv->ropts, rocksdb_no_compression);
	kv->rcache = rocksdb_cache_create_lru(CACHE_BYTES);
	bbt = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(bbt, kv->rcache);
	/* The table options take ownership of the policy. */
	rocksdb_block_based_options_set_filter_policy(
	        bbt, rocksdb_filterpolicy_create_bloom(BLOOM_BITS));
	rocksdb_options_set_block_based_table_factory(kv->ropts, bbt);
	rocksdb_block_based_options_destroy(bbt);
	for (int s = 0; s < 2; s++) {
		kv->rwo[s] = rocksdb_writeoptions_create();
		rocksdb_writeoptions_set_sync(kv->rwo[s], (unsigned char)s);
	}
	kv->rro = rocksdb_readoptions_create();
	kv->rdb = rocksdb_open(kv->ropts, kv->o->db, &e);
	if (e) {
		snprintf(err, errlen, "rocksdb_open %s: %s", kv->o->db, e);
		rocksdb_free(e);
		return -1;
	}
	return 0;
}

static void rocks_close(struct kv *kv)
{
	if (kv->rdb)
		rocksdb_close(kv->rdb);
	kv->rdb = NULL;
	for (int s = 0; s < 2; s++)
		if (kv->rwo[s])
			rocksdb_writeoptions_destroy(kv->rwo[s]);
	if (kv->rro)
		rocksdb_readoptions_destroy(kv->rro);
	if (kv->ropts)
		rocksdb_options_destroy(kv->ropts);
	if (kv->rcache)
		rocksdb_cache_destroy(kv->rcache);
	kv->rwo[0] = kv->rwo[1] = NULL;
	kv->rro = NULL;
	kv->ropts = NULL;
	kv->rcache = NULL;
}

static int rocks_write(struct kv *kv, struct worker *w, const char *keys, char *const *vals,
                       unsigned n, int sync)
{
	size_t ks = kv->o->key_size, vs = kv->o->value_size;
	char *e = NULL;

	if (n == 1) {
		rocksdb_put(kv->rdb, kv->rwo[sync], keys, ks, vals[0], vs, &e);
	} else {
		if (!w->ts)
			w->ts = rocksdb_writebatch_create();
		rocksdb_writebatch_clear(w->ts);
		for (unsigned i = 0; i < n; i++)
			rocksdb_writebatch_put(w->ts, keys + i * ks, ks, vals[i], vs);
		rocksdb_write(kv->rdb, kv->rwo[sync], w->ts, &e);
	}
	if (e) {
		set_err(w, "rocksdb write", e);
		rocksdb_free(e);
		return -1;
	}
	return 0;
}

static int rocks_get(struct kv *kv, struct worker *w, const char *key, int *found)
{
	rocksdb_pinnableslice_t *p;
	const char *v;
	size_t vlen;
	char *e = NULL;

	p = rocksdb_get_pinned(kv->rdb, kv->rro, key, kv->o->key_size, &e);
	if (e) {
		set_err(w, "rocksdb get", e);
		rocksdb_free(e);
		return -1;
	}
	*found = p != NULL;
	if (p) {
		v = rocksdb_pinnableslice_value(p, &vlen);
		memcpy(w->vbuf, v, vlen < kv->o->value_size ? vlen : kv->o->value_size);
		rocksdb_pinnableslice_destroy(p);
	}
	return 0;
}

static void rocks_thread_end(struct kv *kv, struct worker *w)
{
	(void)kv;
	if (w->ts)
		rocksdb_writebatch_destroy(w->ts);
	w->ts = NULL;
}

/* LevelDB: the same memtable, cache, filter and compression choices as RocksDB. */
static int level_open(struct kv *kv, char *err, size_t errlen)
{
	char *e = NULL;

	kv->lopts = leveldb_options_create();
	leveldb_options_set_create_if_missing(kv->lopts, 1);
	leveldb_options_set_write_buffer_size(kv->lopts, WRITE_BUFFER);
	leveldb_options_set_compression(kv->lopts, leveldb_no_compression);
	kv->lcache = leveldb_cache_create_lru(CACHE_BYTES);
	leveldb_options_set_cache(kv->lopts, kv->lcache);
	kv->lfilter = leveldb_filterpolicy_create_bloom(BLOOM_BITS);
	leveldb_options_set_filter_policy(kv->lopts, kv->lfilter);
	for (int s = 0; s < 2; s++) {
		kv->lwo[s] = leveldb_writeoptions_create();
		leveldb_writeoptions_set_sync(kv->lwo[s], (unsigned char)s);
	}
	kv->lro = leveldb_readoptions_create();
	kv->ldb = leveldb_open(kv->lopts, kv->o->db, &e);
	if (e) {
		snprintf(err, errlen, "leveldb_open %s: %s", kv->o->db, e);
		leveldb_free(e);
		return -1;
	}
	return 0;
}

static void level_close(struct kv *kv)
{
	if (kv->ldb)
		leveldb_close(kv->ldb);
	kv->ldb = NULL;
	for (int s = 0; s < 2; s++)
		if (kv->lwo[s])
			leveldb_writeoptions_destroy(kv->lwo[s]);
	if (kv->lro)
		leveldb_readoptions_destroy(kv->lro);
	if (kv->lopts)
		leveldb_options_destroy(kv->lopts);
	if (kv->lfilter)
		leveldb_filterpolicy_destroy(kv->lfilter);
	if (kv->lcache)
		leveldb_cache_destroy(kv->lcache);
	kv->lwo[0] = kv->lwo[1] = NULL;
	kv->lro = NULL;
	kv->lopts = NULL;
	kv->lfilter = NULL;
	kv->lcache = NULL;
}

static int level_write(struct kv *kv, struct worker *w, const char *keys, char *const *vals,
                       unsigned n, int sync)
{
	size_t ks = kv->o->key_size, vs = kv->o->value_size;
	char *e = NULL;

	if (n == 1) {
		leveldb_put(kv->ldb, kv->lwo[sync], keys, ks, vals[0], vs, &e);
	} else {
		if (!w->ts)
			w->ts = leveldb_writebatch_create();
		leveldb_writebatch_clear(w->ts);
		for (unsigned i = 0; i < n; i++)
			leveldb_writebatch_put(w->ts, keys + i * ks, ks, vals[i], vs);
		leveldb_write(kv->ldb, kv->lwo[sync], w->ts, &e);
	}
	if (e) {
		set_err(w, "leveldb write", e);
		leveldb_free(e);
		return -1;
	}
	return 0;
}

static int level_get(struct kv *kv, struct worker *w, const char *key, int *found)
{
	size_t vlen = 0;
	char *e = NULL, *v;

	/* The C API has no pinned get: the value comes back in a malloc'd copy. */
	v = leveldb_get(kv->ldb, kv->lro, key, kv->o->key_size, &vlen, &e);
	if (e) {
		set_err(w, "leveldb get", e);
		leveldb_free(e);
		return -1;
	}
	*found = v != NULL;
	if (v) {
		memcpy(w->vbuf, v, vlen < kv->o->value_size ? vlen : kv->o->value_size);
		leveldb_free(v);
	}
	return 0;
}

static void level_thread_end(struct kv *kv, struct worker *w)
{
	(void)kv;
	if (w->ts)
		leveldb_writebatch_destroy(w->ts);
	w->ts = NULL;
}

/* LMDB: one write transaction per write call; durability set by MDB_NOSYNC (see help). */
static int lmdb_open(struct kv *kv, char *err, size_t errlen)
{
	const struct opts *o = kv->o;
	uint64_t map = 8 * o->num * (o->key_size + o->value_size + 16);
	unsigned readers = o->threads + o->writers + 8;
	MDB_txn *txn;
	int rc;

	if (map < 1024 * MIB)
		map = 1024 * MIB;
	if (mkdir(o->db, 0755) && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", o->db, strerror(errno));
		return -1;
	}
	rc = mdb_env_create(&kv->env);
	if (!rc)
		rc = mdb_env_set_mapsize(kv->env, (size_t)map);
	if (!rc)
		rc = mdb_env_set_maxreaders(kv->env, readers < 126 ? 126 : readers);
	if (!rc)
		rc = mdb_env_open(kv->env, o->db, o->sync ? 0 : MDB_NOSYNC, 0644);
	if (!rc)
		rc = mdb_txn_begin(kv->env, NULL, 0, &txn);
	if (!rc) {
		rc = mdb_dbi_open(txn, NULL, 0, &kv->dbi);
		if (rc)
			mdb_txn_abort(txn);
		else
			rc = mdb_txn_commit(txn);
	}
	if (rc) {
		snprintf(err, errlen, "lmdb open %s: %s", o->db, mdb_strerror(rc));
		return -1;
	}
	return 0;
}

static void lmdb_close(struct kv *kv)
{
	if (kv->env)
		mdb_env_close(kv->env);
	kv->env = NULL;
}

static int lmdb_set_sync(struct kv *kv, int sync, char *err, size_t errlen)
{
	int rc = mdb_env_set_flags(kv->env, MDB_NOSYNC, sync ? 0 : 1);

	if (rc)
		snprintf(err, errlen, "mdb_env_set_flags: %s", mdb_strerror(rc));
	return rc ? -1 : 0;
}

static int lmdb_write(struct kv *kv, struct worker *w, const char *keys, char *const *vals,
                      unsigned n, int sync)
{
	size_t ks = kv->o->key_size;
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	(void)sync; /* set for the whole environment by lmdb_set_sync */
	rc = mdb_txn_begin(kv->env, NULL, 0, &txn);
	if (rc) {
		set_err(w, "mdb_txn_begin", mdb_strerror(rc));
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		k.mv_size = ks;
		k.mv_data = (void *)(keys + i * ks);
		v.mv_size = kv->o->value_size;
		v.mv_data = vals[i];
		rc = mdb_put(txn, kv->dbi, &k, &v, 0);
		if (rc) {
			mdb_txn_abort(txn);
			set_err(w, "mdb_put", mdb_strerror(rc));
			return -1;
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc) {
		set_err(w, "mdb_txn_commit", mdb_strerror(rc));
		return -1;
	}
	return 0;
}

/* A get is one read snapshot, as RocksDB's Get: renew the thread's reader, look up,
 * reset (the documented cheap way; a reset reader does not pin old pages). */
static int lmdb_get(struct kv *kv, struct worker *w, const char *key, int *found)
{
	MDB_val k = { kv->o->key_size, (void *)key }, v;
	MDB_txn *txn = w->ts;
	int rc;

	rc = txn ? mdb_txn_renew(txn) : mdb_txn_begin(kv->env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		set_err(w, "lmdb read txn", mdb_strerror(rc));
		return -1;
	}
	w->ts = txn;
	rc = mdb_get(txn, kv->dbi, &k, &v);
	if (rc && rc != MDB_NOTFOUND) {
		mdb_txn_reset(txn);
		set_err(w, "mdb_get", mdb_strerror(rc));
		return -1;
	}
	*found = rc == 0;
	if (!rc)
		memcpy(w->vbuf, v.mv_data,
		       v.mv_size < kv->o->value_size ? v.mv_size : kv->o->value_size);
	mdb_txn_reset(txn);
	return 0;
}

static void lmdb_thread_end(struct kv *kv, struct worker *w)
{
	(void)kv;
	if (w->ts)
		mdb_txn_abort(w->ts);
	w->ts = NULL;
}

static const struct store stores[] = {
	{ "rocksdb", rocks_open, rocks_close, NULL, rocks_write, rocks_get, rocks_thread_end },
	{ "leveldb", level_open, level_close, NULL, level_write, level_get, level_thread_end },
	{ "lmdb", lmdb_open, lmdb_close, lmdb_set_sync, lmdb_write, lmdb_get, lmdb_thread_end },
};

/* Removes a database directory kvref may own: it must be missing, empty, or look like
 * one of the three stores (CURRENT, data.mdb) and hold no subdirectories. */
/* A file RocksDB, LevelDB or LMDB makes in its directory. */
static int store_file(const char *n)
{
	static const char *const exact[] = { "CURRENT", "IDENTITY", "LOCK",    "LOG",
		                             "LOG.old", "data.mdb", "lock.mdb" };
	static const char *const prefix[] = { "MANIFEST-", "OPTIONS-", "LOG.old." };
	static const char *const suffix[] = { ".sst", ".ldb", ".log", ".dbtmp" };
	size_t len = strlen(n);

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcmp(n, exact[i]))
			return 1;
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (!strncmp(n, prefix[i], strlen(prefix[i])))
			return 1;
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++)
		if (len > strlen(suffix[i]) && !strcmp(n + len - strlen(suffix[i]), suffix[i]))
			return 1;
	return 0;
}

/* Remove a store's directory: only one that holds a store (an LSM's CURRENT and a
 * MANIFEST, or LMDB's data.mdb) and nothing but files such stores make. */
static int remove_db(const char *dir, char *err, size_t errlen)
{
	struct dirent *e;
	struct stat st;
	int entries = 0, current = 0, manifest = 0, mdb = 0, strange = 0, known, fd, rc = 0;
	DIR *d = opendir(dir);

	if (!d) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "opendir %s: %s", dir, strerror(errno));
		return -1;
	}
	fd = dirfd(d);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		entries++;
		current |= !strcmp(e->d_name, "CURRENT");
		manifest |= !strncmp(e->d_name, "MANIFEST-", 9);
		mdb |= !strcmp(e->d_name, "data.mdb");
		strange |= !store_file(e->d_name);
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) || S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "refusing to remove %s: %s/%s is a directory", dir,
			         dir, e->d_name);
			closedir(d);
			return -1;
		}
	}
	known = ((current && manifest) || mdb) && !strange;
	if (entries && !known) {
		snprintf(err, errlen,
		         "refusing to remove %s: not empty and not a RocksDB/LevelDB/LMDB "
		         "directory",
		         dir);
		closedir(d);
		return -1;
	}
	rewinddir(d);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(fd, e->d_name, 0) && errno != ENOENT) {
			snprintf(err, errlen, "unlink %s/%s: %s", dir, e->d_name, strerror(errno));
			rc = -1;
			break;
		}
	}
	closedir(d);
	if (!rc && rmdir(dir)) {
		snprintf(err, errlen, "rmdir %s: %s", dir, strerror(errno));
		rc = -1;
	}
	return rc;
}

/* Non-zero when dir holds another kind of store (an LSM's CURRENT, LMDB's data.mdb):
 * opening it would mix two stores' files in one directory. */
static int foreign_db(const char *dir, const char *store, char *err, size_t errlen)
{
	const char *other = strcmp(store, "lmdb") ? "data.mdb" : "CURRENT";
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, other);
	if (access(path, F_OK))
		return 0;
	snprintf(err, errlen, "%s holds %s: not a %s directory", dir, other, store);
	return -1;
}

/* ---- workers ---- */
static char *value_next(struct worker *w, size_t len)
{
	const struct run *r = w->run;

	if (w->vpos + len > r->vpool_len)
		w->vpos = 0;
	w->vpos += len;
	return (char *)r->vpool + w->vpos - len;
}

static void do_writes(struct worker *w, const struct opts *o, struct kv *kv)
{
	unsigned ks = o->key_size, n;
	char *keys = malloc((size_t)o->batch * ks);
	char **vals = malloc((size_t)o->batch * sizeof(*vals));
	uint64_t i = 0, t0;

	if (!keys || !vals) {
		set_err(w, "malloc", strerror(ENOMEM));
		goto out;
	}
	for (;;) {
		if (w->role == ROLE_WRITE_UNTIL_STOP) {
			if (atomic_load_explicit(&w->run->stop, memory_order_relaxed))
				break;
			n = o->batch;
		} else {
			if (i >= w->n)
				break;
			n = w->n - i < o->batch ? (unsigned)(w->n - i) : o->batch;
		}
		for (unsigned j = 0; j < n; j++) {
			uint64_t k = w->role == ROLE_SEQ_WRITE ? w->lo + i + j
			                                       : kg_rng_below(&w->rng, o->num);
			kg_fmt_key(keys + (size_t)j * ks, ks, k);
			vals[j] = value_next(w, o->value_size);
		}
		t0 = kg_now_ns();
		if (kv->s->write(kv, w, keys, vals, n, w->sync))
			break;
		hist_add_n(w->h, kg_now_ns() - t0, n);
		i += n;
		atomic_store_explicit(&w->done, i, memory_order_relaxed);
	}
out:
	w->ops = i;
	free(keys);
	free(vals);
}

static void do_reads(struct worker *w, const struct opts *o, struct kv *kv)
{
	char key[MAX_KEY_SIZE];
	uint64_t i, t0;
	int found;

	for (i = 0; i < w->n; i++) {
		kg_fmt_key(key, o->key_size, kg_rng_below(&w->rng, o->num));
		t0 = kg_now_ns();
		if (kv->s->get(kv, w, key, &found))
			break;
		hist_add_n(w->h, kg_now_ns() - t0, 1);
		w->found += (uint64_t)found;
		atomic_store_explicit(&w->done, i + 1, memory_order_relaxed);
	}
	w->ops = i;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;
	struct kv *kv = r->kv;

	pthread_barrier_wait(&r->barrier);
	w->t_start = kg_now_ns();
	if (w->role == ROLE_READ)
		do_reads(w, kv->o, kv);
	else
		do_writes(w, kv->o, kv);
	w->t_end = kg_now_ns();
	kv->s->thread_end(kv, w);
	if (w->role == ROLE_READ && atomic_fetch_sub(&r->readers_left, 1) == 1)
		atomic_store(&r->stop, 1);
	atomic_fetch_sub(&r->active, 1);
	return NULL;
}

/* ---- benchmarks ---- */
enum bench_kind { FILLSEQ, FILLRANDOM, OVERWRITE, READRANDOM, READWHILEWRITING, FILLSYNC };

static const struct {
	const char *name;
	enum bench_kind kind;
	int fresh; /* db_bench's fresh_db */
} bench_table[] = {
	{ "fillseq", FILLSEQ, 1 },
	{ "fillrandom", FILLRANDOM, 1 },
	{ "overwrite", OVERWRITE, 0 },
	{ "readrandom", READRANDOM, 0 },
	{ "readwhilewriting", READWHILEWRITING, 0 },
	{ "fillsync", FILLSYNC, 1 },
};

struct result {
	const char *name;
	enum bench_kind kind;
	unsigned threads;
	uint64_t ops, found, writer_ops;
	double secs, writer_secs;
	struct hist *h;
};

static int run_benchmark(struct kv *kv, const char *vpool, unsigned bi, struct result *res)
{
	const struct opts *o = kv->o;
	enum bench_kind kind = bench_table[bi].kind;
	unsigned nthreads, nreaders = 0, i;
	uint64_t total, t0 = UINT64_MAX, t1 = 0, target = 0, seed;
	struct worker *ws;
	struct run r;
	char err[512];
	int sync = kind == FILLSYNC ? 1 : o->sync, failed = 0;

	err[0] = 0;
	if (bench_table[bi].fresh && kv->open) {
		kv->s->close(kv);
		kv->open = 0;
	}
	if (bench_table[bi].fresh && remove_db(o->db, err, sizeof(err))) {
		fprintf(stderr, "kvref: %s\n", err);
		return -1;
	}
	if (!kv->open) {
		if (foreign_db(o->db, kv->s->name, err, sizeof(err))) {
			fprintf(stderr, "kvref: %s\n", err);
			return -1;
		}
		if (kv->s->open(kv, err, sizeof(err))) {
			fprintf(stderr, "kvref: %s\n", err);
			kv->s->close(kv);
			return -1;
		}
		kv->open = 1;
	}
	if (kv->s->set_sync && kv->s->set_sync(kv, sync, err, sizeof(err))) {
		fprintf(stderr, "kvref: %s\n", err);
		return -1;
	}

	switch (kind) {
	case FILLSYNC:
		total = o->num / FILLSYNC_DIVISOR;
		if (total < FILLSYNC_MIN)
			total = FILLSYNC_MIN;
		nthreads = o->writers;
		break;
	case READWHILEWRITING:
		total = o->num;
		nreaders = o->threads;
		nthreads = o->threads + 1;
		break;
	default:
		total = o->num;
		nthreads = o->threads;
	}

	memset(&r, 0, sizeof(r));
	r.kv = kv;
	r.vpool = vpool;
	r.vpool_len = KG_VALUE_POOL;
	atomic_init(&r.stop, 0);
	atomic_init(&r.readers_left, nreaders);
	atomic_init(&r.active, nthreads);
	ws = aligned_alloc(64, sizeof(*ws) * nthreads);
	if (!ws) {
		fprintf(stderr, "kvref: out of memory\n");
		return -1;
	}
	memset(ws, 0, sizeof(*ws) * nthreads);
	seed = o->seed ^ kg_hash_str(bench_table[bi].name);
	for (i = 0; i < nthreads; i++) {
		struct worker *w = &ws[i];
		unsigned parts = kind == READWHILEWRITING ? nreaders : nthreads;
		uint64_t share = total / parts, extra = total % parts;

		atomic_init(&w->done, 0);
		w->run = &r;
		w->sync = sync;
		w->rng = kg_client_seed(seed, i);
		w->vpos = (size_t)(kg_rng_below(&w->rng, KG_VALUE_POOL / KG_VALUE_PIECE) *
		                   KG_VALUE_PIECE);
		w->h = malloc(sizeof(*w->h));
		w->vbuf = malloc(o->value_size + 1);
		if (!w->h || !w->vbuf) {
			fprintf(stderr, "kvref: out of memory\n");
			return -1;
		}
		hist_init(w->h);
		if (kind == READWHILEWRITING && i == nreaders) {
			w->role = ROLE_WRITE_UNTIL_STOP;
			continue;
		}
		w->n = share + (i < extra);
		w->lo = share * i + (i < extra ? i : extra);
		target += w->n;
		if (kind == FILLSEQ)
			w->role = ROLE_SEQ_WRITE;
		else if (kind == READRANDOM || kind == READWHILEWRITING)
			w->role = ROLE_READ;
		else
			w->role = ROLE_RAND_WRITE;
	}
	if (pthread_barrier_init(&r.barrier, NULL, nthreads + 1)) {
		fprintf(stderr, "kvref: pthread_barrier_init failed\n");
		return -1;
	}
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i])) {
			fprintf(stderr, "kvref: pthread_create failed\n");
			exit(1);
		}
	pthread_barrier_wait(&r.barrier);
	if (isatty(STDERR_FILENO)) {
		uint64_t start = kg_now_ns();

		while (atomic_load(&r.active) > 0) {
			struct timespec ts = { 0, 250000000 };
			uint64_t done = 0;
			double el;

			nanosleep(&ts, NULL);
			for (i = 0; i < nthreads; i++)
				if (ws[i].role != ROLE_WRITE_UNTIL_STOP)
					done += atomic_load_explicit(&ws[i].done,
					                             memory_order_relaxed);
			el = (double)(kg_now_ns() - start) / 1e9;
			fprintf(stderr, "\r%s %s: %5.1f%%  %10.0f ops/s\033[K", kv->s->name,
			        bench_table[bi].name,
			        target ? 100.0 * (double)done / (double)target : 0,
			        el > 0 ? (double)done / el : 0.0);
		}
		fprintf(stderr, "\r\033[K");
	}
	res->name = bench_table[bi].name;
	res->kind = kind;
	res->threads = kind == READWHILEWRITING ? nreaders : nthreads;
	res->h = malloc(sizeof(*res->h));
	if (!res->h) {
		fprintf(stderr, "kvref: out of memory\n");
		return -1;
	}
	hist_init(res->h);
	for (i = 0; i < nthreads; i++) {
		struct worker *w = &ws[i];

		pthread_join(w->tid, NULL);
		if (w->failed) {
			fprintf(stderr, "kvref: %s %s thread %u: %s\n", kv->s->name, res->name, i,
			        w->err);
			failed = 1;
		}
		if (w->role == ROLE_WRITE_UNTIL_STOP) {
			res->writer_ops = w->ops;
			res->writer_secs = (double)(w->t_end - w->t_start) / 1e9;
		} else {
			res->ops += w->ops;
			res->found += w->found;
			hist_merge(res->h, w->h);
			if (w->t_start < t0)
				t0 = w->t_start;
			if (w->t_end > t1)
				t1 = w->t_end;
		}
		free(w->h);
		free(w->vbuf);
	}
	pthread_barrier_destroy(&r.barrier);
	free(ws);
	res->secs = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
	return failed ? -1 : 0;
}

/* ---- output ---- */
static double ops_per_sec(const struct result *r)
{
	return r->secs > 0 ? (double)r->ops / r->secs : 0;
}

static int is_read(enum bench_kind k)
{
	return k == READRANDOM || k == READWHILEWRITING;
}

static void print_header(const struct opts *o)
{
	printf("kvref: %s", o->store);
	if (!strcmp(o->store, "leveldb"))
		printf(" %d.%d", leveldb_major_version(), leveldb_minor_version());
	else if (!strcmp(o->store, "lmdb"))
		printf(" (%s)", mdb_version(NULL, NULL, NULL));
	printf("  db %s\n", o->db);
	printf("keys %u B, values %u B, num %" PRIu64 ", threads %u, fillsync writers %u, "
	       "batch %u, seed %" PRIu64 "\n",
	       o->key_size, o->value_size, o->num, o->threads, o->writers, o->batch, o->seed);
	printf("writes: %s; fillsync: fsync per write\n",
	       o->sync ? "fsync per write (power-loss safe)" : "no fsync (process-crash safe)");
	printf("%-18s %10s %12s %9s %9s %9s %9s %9s\n", "benchmark", "ops", "ops/s", "µs/op", "p50",
	       "p99", "p99.9", "max");
	printf("%-18s %10s %12s %9s %9s %9s %9s %9s\n", "", "", "", "(thread)", "(µs)", "(µs)",
	       "(µs)", "(µs)");
	fflush(stdout);
}

static void print_row(const struct result *r)
{
	double thread_us = r->ops ? r->secs * r->threads * 1e6 / (double)r->ops : 0;

	printf("%-18s %10" PRIu64 " %12.0f %9.3f %9.1f %9.1f %9.1f %9.1f", r->name, r->ops,
	       ops_per_sec(r), thread_us, (double)hist_pct(r->h, 50) / 1e3,
	       (double)hist_pct(r->h, 99) / 1e3, (double)hist_pct(r->h, 99.9) / 1e3,
	       (double)r->h->max / 1e3);
	if (is_read(r->kind))
		printf("  (%" PRIu64 " of %" PRIu64 " found)", r->found, r->ops);
	if (r->kind == READWHILEWRITING)
		printf("  writer: %" PRIu64 " puts, %.0f/s", r->writer_ops,
		       r->writer_secs > 0 ? (double)r->writer_ops / r->writer_secs : 0);
	if (r->kind == FILLSYNC)
		printf("  (%u writers)", r->threads);
	printf("\n");
	fflush(stdout);
}

static void print_json(const struct opts *o, const struct result *res, unsigned n)
{
	printf("{\"store\":\"%s\",\"num\":%" PRIu64 ",\"key_size\":%u,\"value_size\":%u,"
	       "\"sync\":%d,\"results\":[",
	       o->store, o->num, o->key_size, o->value_size, o->sync);
	for (unsigned i = 0; i < n; i++) {
		const struct result *r = &res[i];

		printf("%s{\"name\":\"%s\",\"ops\":%" PRIu64 ",\"ops_per_sec\":%.1f", i ? "," : "",
		       r->name, r->ops, ops_per_sec(r));
		if (is_read(r->kind))
			printf(",\"found\":%" PRIu64, r->found);
		printf(",\"lat_ns\":{\"mean\":%.1f,\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
		       ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}}",
		       hist_mean(r->h), hist_pct(r->h, 50), hist_pct(r->h, 99),
		       hist_pct(r->h, 99.9), r->h->count ? r->h->max : 0);
	}
	printf("]}\n");
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: kvref --store rocksdb|leveldb|lmdb --db DIR --benchmarks LIST --num N\n"
	        "             [--threads T] [--writers W] [--key-size 16] [--value-size 100]\n"
	        "             [--sync 0|1] [--batch K] [--seed S] [--json]\n"
	        "\n"
	        "db_bench-shaped workloads on Debian's RocksDB, LevelDB or LMDB (the reference\n"
	        "side of bench/vs-rocksdb.sh). Benchmarks run in the order given on one DB dir:\n"
	        "  fillseq           keys 0..N-1 in order (fresh DB: DIR is removed first)\n"
	        "  fillrandom        N puts of uniform random keys in [0,N) (fresh DB; leaves\n"
	        "                    ~63%% of the keys present, as db_bench)\n"
	        "  overwrite         fillrandom on the existing DB\n"
	        "  readrandom        N gets of uniform random keys; reports how many were found\n"
	        "  readwhilewriting  T readers do readrandom while 1 writer puts random keys\n"
	        "                    until they finish; reports the readers (writer on the side)\n"
	        "  fillsync          max(N/1000, 1000) random puts, each synced (fresh DB), by\n"
	        "                    --writers W concurrent threads: measures group commit\n"
	        "--threads T splits N over T threads (db_bench gives each thread N). Keys are\n"
	        "decimal, zero-padded to --key-size (LevelDB db_bench's %%016llu); values are\n"
	        "db_bench's: slices of 1 MiB of 100-byte pieces, each 50 random printable bytes\n"
	        "twice (compressible 2:1, but no store compresses here).\n"
	        "\n"
	        "Durability (the same guarantee on every store):\n"
	        "  --sync 0 (default)  no fsync: survives a process crash, not power loss.\n"
	        "      RocksDB/LevelDB: WriteOptions.sync=false, WAL on (db_bench's default);\n"
	        "      LMDB: MDB_NOSYNC, one transaction per write call (its pages reach the\n"
	        "      page cache by write(2) at commit, like the WAL's write(2)).\n"
	        "  --sync 1 and fillsync  fsync per write call: survives power loss.\n"
	        "      RocksDB/LevelDB: sync=true (fdatasync of the WAL; concurrent writers\n"
	        "      share one sync through the store's group commit); LMDB: its default\n"
	        "      commit (fdatasync of data, then of the meta page; writers serialise on\n"
	        "      LMDB's single writer lock, it has no group commit).\n"
	        "  --batch K (default 1)  K puts per WriteBatch / LMDB transaction; each put is\n"
	        "      then recorded with its batch's latency.\n"
	        "\n"
	        "Store settings: no compression (snstore does not compress); 64 MiB write buffer\n"
	        "(RocksDB's and db_bench's default; LevelDB's default is 4 MiB); 1 GiB LRU block\n"
	        "cache (the data fits in memory; db_bench uses 32 MiB); 10-bit Bloom filters\n"
	        "(RocksDB benchmark.sh); other RocksDB options at their defaults (2 background\n"
	        "jobs). LMDB map size max(1 GiB, 8 x N x (key + value + 16)) (address space;\n"
	        "the file grows as used). A get copies the value into the caller's buffer on all\n"
	        "stores; a LMDB get is one read transaction (renew, get, reset).\n"
	        "\n"
	        "Output: per benchmark ops, ops/s (ops / wall time), thread-µs per op (as\n"
	        "db_bench), latency per call p50/p99/p99.9/max from a log-linear histogram (1/64\n"
	        "resolution) of CLOCK_MONOTONIC around each store call. --json prints one object:\n"
	        "  "
	        "{\"store\",\"num\",\"key_size\",\"value_size\",\"sync\",\"results\":[{\"name\","
	        "\"ops\",\n"
	        "   \"ops_per_sec\",\"found\" (reads only),\"lat_ns\":{mean,p50,p99,p999,max}}]}\n"
	        "the interface of `snstore kvbench --json`. Progress goes to stderr when it is a\n"
	        "terminal. Exit status 1 on any store error.\n");
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	uint64_t v;

	if (parse_u64(s, lo, hi, &v))
		return -1;
	*out = (unsigned)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "db", required_argument, NULL, 'd' },
		{ "benchmarks", required_argument, NULL, 'b' },
		{ "num", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
		{ "writers", required_argument, NULL, 'w' },
		{ "key-size", required_argument, NULL, 'k' },
		{ "value-size", required_argument, NULL, 'v' },
		{ "sync", required_argument, NULL, 'y' },
		{ "batch", required_argument, NULL, 'B' },
		{ "seed", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .num = 1000000,
		          .threads = 1,
		          .writers = 1,
		          .key_size = 16,
		          .value_size = 100,
		          .batch = 1,
		          .seed = 301 };
	unsigned bench[MAX_BENCHMARKS], nbench = 0, i;
	struct result res[MAX_BENCHMARKS];
	struct kv kv;
	char *list, *tok, *save, *vpool;
	uint64_t v;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		const char *bad = NULL;

		switch (c) {
		case 's':
			o.store = optarg;
			break;
		case 'd':
			o.db = optarg;
			break;
		case 'b':
			o.benchmarks = optarg;
			break;
		case 'n':
			if (parse_u64(optarg, 1, 1000000000000ull, &o.num))
				bad = "--num";
			break;
		case 't':
			bad = parse_uint(optarg, 1, MAX_THREADS, &o.threads) ? "--threads" : NULL;
			break;
		case 'w':
			bad = parse_uint(optarg, 1, MAX_THREADS, &o.writers) ? "--writers" : NULL;
			break;
		case 'k':
			bad = parse_uint(optarg, 1, MAX_KEY_SIZE, &o.key_size) ? "--key-size"
			                                                       : NULL;
			break;
		case 'v':
			bad = parse_uint(optarg, 0, MAX_VALUE_SIZE, &o.value_size) ? "--value-size"
			                                                           : NULL;
			break;
		case 'B':
			bad = parse_uint(optarg, 1, MAX_BATCH, &o.batch) ? "--batch" : NULL;
			break;
		case 'y':
			if (parse_u64(optarg, 0, 1, &v))
				bad = "--sync";
			o.sync = (int)v;
			break;
		case 'S':
			if (parse_u64(optarg, 0, UINT64_MAX, &o.seed))
				bad = "--seed";
			break;
		case 'j':
			o.json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "kvref: bad value for %s: '%s' (see --help)\n", bad,
			        optarg);
			return 2;
		}
	}
	if (optind < argc || !o.store || !o.db || !o.benchmarks) {
		fprintf(stderr,
		        "kvref: --store, --db and --benchmarks are required (see --help)\n");
		return 2;
	}
	if (digits(o.num - 1) > o.key_size) {
		fprintf(stderr, "kvref: --key-size %u is too short for key %" PRIu64 "\n",
		        o.key_size, o.num - 1);
		return 2;
	}
	memset(&kv, 0, sizeof(kv));
	kv.o = &o;
	for (i = 0; i < sizeof(stores) / sizeof(stores[0]); i++)
		if (!strcmp(stores[i].name, o.store))
			kv.s = &stores[i];
	if (!kv.s) {
		fprintf(stderr, "kvref: unknown store '%s' (rocksdb, leveldb, lmdb)\n", o.store);
		return 2;
	}
	list = strdup(o.benchmarks);
	if (!list)
		return 1;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned j;

		for (j = 0; j < sizeof(bench_table) / sizeof(bench_table[0]); j++)
			if (!strcmp(bench_table[j].name, tok))
				break;
		if (j == sizeof(bench_table) / sizeof(bench_table[0])) {
			fprintf(stderr, "kvref: unknown benchmark '%s' (see --help)\n", tok);
			return 2;
		}
		if (nbench == MAX_BENCHMARKS) {
			fprintf(stderr, "kvref: more than %d benchmarks\n", MAX_BENCHMARKS);
			return 2;
		}
		bench[nbench++] = j;
	}
	free(list);
	if (!nbench) {
		fprintf(stderr, "kvref: --benchmarks is empty\n");
		return 2;
	}

	kg_clock_setup();
	vpool = kg_make_values(MAX_VALUE_SIZE);
	if (!vpool) {
		fprintf(stderr, "kvref: out of memory\n");
		return 1;
	}
	memset(res, 0, sizeof(res));
	if (!o.json)
		print_header(&o);
	for (i = 0; i < nbench; i++) {
		if (run_benchmark(&kv, vpool, bench[i], &res[i])) {
			rc = 1;
			break;
		}
		if (!o.json)
			print_row(&res[i]);
	}
	if (kv.open)
		kv.s->close(&kv);
	if (!rc && o.json)
		print_json(&o, res, nbench);
	for (i = 0; i < nbench; i++)
		free(res[i].h);
	free(vpool);
	return rc;
}
