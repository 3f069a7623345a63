/* SPDX-License-Identifier: MIT */
/*
 * snstore/kv.h — a persistent key-value store on any snstore device, sharded across the
 * workers of a shared-nothing runtime.
 *
 *     struct sn_kv *kv;
 *     sn_kv_open("auto:/data/store", NULL, &kv);       // creates it if missing
 *     sn_kv_put(kv, "k", 1, "v", 1, SN_KV_DURABLE);    // returns once on stable storage
 *     void *v; size_t n;
 *     if (sn_kv_get(kv, "k", 1, &v, &n) == 0) { ...; free(v); }
 *     sn_kv_close(kv);
 *
 * The device is split into shards when it is formatted; a key belongs to the shard its
 * hash picks, and each shard is owned by one worker, which alone touches its log, index
 * and cache. Calls from any thread are routed to the owner: from a foreign thread through
 * the worker's inbox, from a worker through the rings (and run inline when the worker
 * owns the shard). Each shard is a log of checksummed records with an in-memory hash
 * index: a read costs at most one device I/O, none when cached. docs/format.md is the
 * on-disk format.
 *
 * Durability: a put, delete or batch is acknowledged when it is in its shard's write
 * buffer; it is durable after sn_kv_sync() returns, or when it was written with
 * SN_KV_DURABLE (then it is acknowledged only once durable). Concurrent waiters share one
 * device flush per shard (group commit). sn_kv_opts.sync makes every write durable, or
 * flushes in the background every sync_interval_us.
 *
 * Caveats:
 *  - Keys are 1..SN_KV_MAX_KEY bytes, values 0..SN_KV_MAX_VALUE bytes (less on a store
 *    whose segments are under 2 MiB: a record fits one segment; sn_kv_stats.max_value);
 *    larger ones are refused with -EINVAL (sn_errmsg() says which limit).
 *  - Blocking calls (sn_kv_put, ...) must not be made on a worker of the store's runtime
 *    (they would stop the loop they wait for): they return -EDEADLK there. Use the _async
 *    calls on workers.
 *  - Iteration (sn_kv_scan) is unordered and not a snapshot: keys written during a scan
 *    may or may not be seen.
 *  - A device write or flush that fails (EIO; or ENOSPC from the filesystem under a
 *    sparse file made with truncate) stops its shard's writes: they fail with -EIO, and
 *    sync and close report the error, until the store is reopened (recovery cuts what
 *    never became durable). A file snstore creates is allocated in full at once, so its
 *    filesystem cannot run out under it; a shard whose log is full fails with -ENOSPC
 *    and takes writes again once deletes and compaction free space.
 */
#ifndef SNSTORE_KV_H
#define SNSTORE_KV_H

#include <stddef.h>
#include <stdint.h>

#include <snstore/rt.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sn_kv;

#define SN_KV_MAX_KEY   1024u
#define SN_KV_MAX_VALUE (1u << 20)

/** Per-write flags. */
#define SN_KV_DURABLE 1u /* acknowledge only once the write is on stable storage */

/** When writes become durable without an explicit sn_kv_sync(). */
enum sn_kv_sync_mode {
	SN_KV_SYNC_NONE = 0,     /* on sn_kv_sync(), SN_KV_DURABLE writes, and close */
	SN_KV_SYNC_INTERVAL = 1, /* also every sync_interval_us, in the background */
	SN_KV_SYNC_ALWAYS = 2,   /* every write is acknowledged only once durable */
};

/** Options of sn_kv_format() and sn_kv_open(). All-zero is a good default. */
struct sn_kv_opts {
	/* Format (and open of a missing store). */
	unsigned shards;       /* 0: one per worker */
	uint64_t capacity;     /* bytes of the device to use; 0: the whole device, or 1 GiB
	                          for a new file */
	uint32_t segment_size; /* bytes per log segment, a power of two >= 64 KiB; 0: 4 MiB */

	/* Open. */
	struct sn_rt *rt; /* the runtime whose workers own the shards; NULL: the store
	                     starts its own (event mode, `workers` workers) */
	unsigned workers; /* workers of the runtime the store starts, never more than the
	                     shards (0: one per CPU); with owners, as many as asked (0: the
	                     largest owner + 1). Threads of yours that call the store want
	                     CPUs of their own: a worker sharing a CPU with a caller trades
	                     the CPU with it on every call (a blocking caller on a 2-CPU
	                     machine: about 4x the calls per second with 1 worker as with
	                     2) */
	/* owners[s]: the worker that owns shard s, one entry per shard of the store (nowners
	 * must be its shard count); NULL: shard s on worker s % workers. A worker that also
	 * runs your clients does its shards' work besides theirs: give it fewer. */
	const unsigned *owners;
	unsigned nowners;
	int no_create; /* open fails with -ENOENT rather than format a new store */
	enum sn_kv_sync_mode sync;
	unsigned sync_interval_us; /* SN_KV_SYNC_INTERVAL: 0 means 1000 */
	uint64_t cache_bytes;      /* memory for cached segments, all shards together; 0: a
	                              quarter of physical memory. Segments written since open
	                              stay cached; a get that misses reads its record (one
	                              I/O) and, while the cache has room, its whole segment
	                              too, so older data is served from memory soon after a
	                              restart */
	unsigned compact_pct;      /* compact a segment when at most this % of it is live; 0: 50 */
	int block_io;              /* on a byte-addressable device (dax, pmem, mmap) still go
	                              through block I/O and a write buffer, not the mapping */
	int no_checkpoint;         /* open scans the whole log instead of loading the index
	                              checkpoint (checking every record's CRC), and close writes
	                              none */
	int readonly;              /* open writes nothing to the device, ever: the file is
	                              opened readonly=1 (other read-only opens may share it), a
	                              torn tail recovery finds is cut in memory only, no
	                              checkpoint, no compaction; puts, deletes, batches and
	                              sn_kv_compact fail with -EROFS, sn_kv_sync returns 0.
	                              Implies no_create */
};

/**
 * Write a new, empty store on the device at uri, replacing whatever was there. A plain
 * path (no engine) means auto:PATH; a missing file is created (with opts->capacity
 * rounded up to 4 KiB, or 1 GiB; a URI whose options say create= creates as they say).
 * Returns 0, -EINVAL (bad options or a device too small for its shards), or the
 * device's error. Any thread but a worker.
 */
int sn_kv_format(const char *uri, const struct sn_kv_opts *opts);

/**
 * Open the store at uri (formatting a new one when the device holds none: its first MiB
 * is zeros; unless opts->no_create), recover every shard in parallel on its worker, and return it.
 * Recovery loads the index checkpoint the last clean close wrote (if it is whole) and
 * scans the log written after it, or scans the whole log; it cuts a torn log tail (writes
 * never made durable) at the last valid record, and goes on past damage elsewhere (a bad
 * record, or zeros where records were) at the next valid record, counting it; what it
 * found is in sn_kv_stats (recovered_*, checkpoint_*, torn_*, corrupt_*).
 * Returns 0 and *kvp, or:
 *   SN_EFORMAT  the device holds something else, or a store of a newer format version
 *   -ENOENT     no store and opts->no_create
 *   -EBUSY      the store is open already (in this process or another): a store has one
 *               open at a time, held by the file's lock (the file engines' lock=)
 *   -ESHUTDOWN  opts->rt was stopped
 *   -EACCES     no permission to write the file (opts->readonly opens it only to read)
 *   -EINVAL     bad options
 *   other       the device's or runtime's error, with sn_errmsg()
 * Any thread but a worker.
 */
int sn_kv_open(const char *uri, const struct sn_kv_opts *opts, struct sn_kv **kvp);

/**
 * Make every acknowledged write durable, stop compaction, write each shard's index
 * checkpoint (so the next open need not scan the log; skipped without free segments for
 * it), and free the store (and the runtime it started). Calls still in flight complete
 * first. Returns 0 or the first error of the final flush or the checkpoint writes (the
 * store is freed either way; the data is safe when only a checkpoint failed). Any thread
 * but a worker. Close a store before stopping the runtime given in opts.rt: after
 * sn_rt_stop() has returned, close only frees the store and returns -ESHUTDOWN (writes
 * not yet durable are lost, as in a crash).
 */
int sn_kv_close(struct sn_kv *kv);

/* ---- blocking calls: any thread except the store's workers ---- */

/** Store value under key (replacing any older value). 0, -EINVAL, -ENOSPC, -EIO. */
int sn_kv_put(struct sn_kv *kv, const void *key, size_t klen, const void *val, size_t vlen,
              unsigned flags);

/**
 * Fetch key's value into a malloc()ed buffer *valp (free it) of *vlenp bytes.
 * Returns 0, -ENOENT (absent), SN_ECORRUPT (the record failed its checksum: reported,
 * never returned as data), -EIO.
 */
int sn_kv_get(struct sn_kv *kv, const void *key, size_t klen, void **valp, size_t *vlenp);

/** Delete key. Returns 0 whether or not it existed, or -EINVAL, -ENOSPC, -EIO. */
int sn_kv_del(struct sn_kv *kv, const void *key, size_t klen, unsigned flags);

/** Make every write acknowledged so far durable (one flush per shard with writes). */
int sn_kv_sync(struct sn_kv *kv);

/* ---- write batches: all or nothing, across shards, across a crash ---- */

struct sn_kv_batch;

/** A new, empty batch (NULL if out of memory). Any thread; one thread at a time. */
struct sn_kv_batch *sn_kv_batch_new(void);
/** Add a put or a delete; key and value are copied. 0, -EINVAL, -ENOMEM. */
int sn_kv_batch_put(struct sn_kv_batch *b, const void *key, size_t klen, const void *val,
                    size_t vlen);
int sn_kv_batch_del(struct sn_kv_batch *b, const void *key, size_t klen);
/** Empty the batch for reuse; free it. */
void sn_kv_batch_clear(struct sn_kv_batch *b);
void sn_kv_batch_free(struct sn_kv_batch *b);

/**
 * Apply every operation of b, atomically: after a crash either all of them are present or
 * none. Later operations on a key in b win over earlier ones. Returns 0, -EINVAL (empty
 * batch), -ENOSPC, -EIO. The batch is not freed.
 */
int sn_kv_write(struct sn_kv *kv, struct sn_kv_batch *b, unsigned flags);

/* ---- iteration and statistics ---- */

/**
 * Call fn(arg, key, klen, val, vlen) for every live key, shard by shard, in no particular
 * order; fn runs on the calling thread and may stop the scan by returning non-zero (which
 * sn_kv_scan then returns). Returns 0, fn's value, or an error.
 */
int sn_kv_scan(struct sn_kv *kv,
               int (*fn)(void *arg, const void *key, size_t klen, const void *val, size_t vlen),
               void *arg);

struct sn_kv_stats {
	uint32_t shards, workers;
	uint32_t segment_size, block_size;
	uint64_t capacity_bytes; /* of the store's log space */
	uint64_t keys;           /* live keys */
	uint64_t live_bytes;     /* records that are the newest of their key */
	uint64_t dead_bytes;     /* overwritten or deleted records not yet compacted */
	uint64_t segments_used;  /* segments holding records */
	uint64_t segments_total;
	uint64_t puts, gets, dels, batches, syncs;
	uint64_t flushes;                  /* device flushes (one serves many syncs) */
	uint64_t cache_hits, cache_misses; /* gets served from memory, from the device */
	uint64_t cache_bytes;              /* memory holding cached segments */
	uint64_t compactions;              /* segments rewritten */
	uint64_t compacted_bytes;          /* live bytes they moved */
	uint64_t recovered_records, recovery_ns;
	uint64_t torn_bytes;          /* cut from log tails at open: writes never made durable */
	uint64_t corrupt_records;     /* checksum failures and damage seen by recovery, reads and
	                                 compaction (met twice, counted twice) */
	uint32_t mapped;              /* 1: the log is the device's mapping (dax, pmem): appends are
	                             stores, syncs persist cache lines, reads are loads; 0: block
	                             I/O from a write buffer */
	uint32_t checkpoint_segments; /* segments held by the index checkpoint open loaded */
	uint64_t checkpoint_keys;     /* index entries open took from a checkpoint (the rest
	                                 came from scanning the log written after it) */
	uint32_t max_value;           /* the largest value the store takes: SN_KV_MAX_VALUE,
	                                 less when its segments are under 2 MiB */
};

/** Fill *st, summed over shards. Any thread but a worker. */
int sn_kv_stat(struct sn_kv *kv, struct sn_kv_stats *st);

/**
 * Compact every segment that is at most opts.compact_pct % live (with force, every one
 * with any dead bytes), on every shard, and wait: never a shard's head (the segment
 * appends go to) nor the segments of the index checkpoint. Returns 0 or an error. Any
 * thread but a worker.
 */
int sn_kv_compact(struct sn_kv *kv, int force);

/* ---- asynchronous calls: any thread ---- */

/**
 * Completion of an asynchronous call: res is 0 or a negative errno (-ENOENT for an
 * absent key); for a get, val/vlen hold the value during the call only.
 * Where it runs: on the calling worker when the call was made on a worker of the store's
 * runtime (never inside the call itself); on the owning worker otherwise (keep it short
 * and thread-safe).
 */
typedef void (*sn_kv_cb)(void *arg, int res, const void *val, size_t vlen);

/**
 * Asynchronous put, get, delete, sync. Keys and values are copied at once. Return 0 when
 * the call is on its way (cb will run exactly once), or a negative errno when it was
 * refused (cb will not run): -EINVAL (bad key/value), -EAGAIN (a ring or inbox is full:
 * call again later), -ENOMEM.
 * Order: the calls one thread makes to one shard (so to one key) run in the order made: a
 * get sees the put made before it. Their callbacks need not come in that order: calls to
 * different shards finish independently, and a call that waits (for the device, a flush,
 * room in the log) finishes after later calls that did not.
 * sn_kv_sync_async made on a worker is not refused for a full ring: the shards it cannot
 * reach at once are asked from the worker's loop, and cb runs once all have synced.
 */
int sn_kv_put_async(struct sn_kv *kv, const void *key, size_t klen, const void *val, size_t vlen,
                    unsigned flags, sn_kv_cb cb, void *arg);
int sn_kv_get_async(struct sn_kv *kv, const void *key, size_t klen, sn_kv_cb cb, void *arg);
int sn_kv_del_async(struct sn_kv *kv, const void *key, size_t klen, unsigned flags, sn_kv_cb cb,
                    void *arg);
int sn_kv_sync_async(struct sn_kv *kv, sn_kv_cb cb, void *arg);

/** The runtime the store runs on (its own, or opts.rt). */
struct sn_rt *sn_kv_rt(const struct sn_kv *kv);

/**
 * The device the store is on, for sn_dev_info() (which engine, and why auto: chose it).
 * The store owns it: do not close it, make queues on it, or write to it. Any thread.
 */
struct sn_dev *sn_kv_dev(const struct sn_kv *kv);

#ifdef __cplusplus
}
#endif
#endif
