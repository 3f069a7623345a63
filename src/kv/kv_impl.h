/* SPDX-License-Identifier: MIT */
/*
 * kv_impl.h — the store's internals, shared by store.c (API, routing), shard.c (log,
 * cache, group commit), recover.c and compact.c. A shard's state is touched only by its
 * owning worker; struct kv_worker is one worker's share of the store.
 */
#ifndef SN_KV_IMPL_H
#define SN_KV_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include <snstore/kv.h>

#include "../util/crc32c.h"
#include "../util/util.h"
#include "format.h"
#include "index.h"
#include "u64map.h"

struct sn_kv;
struct kv_shard;
struct kv_worker;

enum kv_op { KV_PUT, KV_DEL, KV_GET, KV_SYNC, KV_BATCH_PART, KV_BATCH_COMMIT, KV_BATCH_APPLY };

/* Where a batch record landed, for applying it after the commit. */
struct kv_pos {
	uint32_t seg, off, len;
	uint8_t type;
};

#define KV_GET_INLINE 256 /* a get carries room for a value this small */

/* One call, from the caller to the owning worker and back. Key and value follow it. */
struct kv_req {
	struct sn_kv *kv;
	uint8_t op;    /* enum kv_op */
	uint8_t flags; /* SN_KV_DURABLE */
	uint16_t klen;
	uint32_t vlen;
	uint64_t hash;
	unsigned shard;
	unsigned origin; /* the calling worker, or SN_RT_FOREIGN */
	sn_kv_cb cb;
	void *arg;
	int res;
	void *rval; /* get: the value (malloc), handed to cb */
	size_t rvlen;
	uint64_t wait_seg, wait_pos; /* durable once the shard is durable to here */
	struct kv_req *next;         /* on a waiter or completion list */
	uint64_t batch;              /* batch id (parts, commit) */
	uint32_t nops;               /* batch parts: operations in data; commit: records */
	struct kv_pos *pos;          /* batch parts: where each landed */
	struct kv_req *part;         /* batch apply: the part it applies */
	uint8_t single;              /* batch part: the whole batch (commit here too) */
	uint8_t batch_ok;            /* batch apply: committed (else dropped) */
	uint8_t commit_lost;         /* batch apply: committed, but its flush failed */
	uint8_t inflight;            /* batch part: counted in its shard's batches_inflight */
	uint8_t keep;                /* the caller frees it after cb (batch requests) */
	char *msg;                   /* sn_errmsg() of a failure, carried to the caller */
	struct kv_rcache *home;      /* the thread cache it came from (req.c), or NULL */
	unsigned char data[];        /* key, then value */
};

enum kv_seg_state {
	SEG_FREE = 0,
	SEG_HEAD,      /* being appended to */
	SEG_SEALED,    /* full (or cut at recovery); may not be durable yet */
	SEG_COMPACTED, /* its live records were copied; free once the copies are durable */
	SEG_ZEROING,   /* its header is being cleared */
	SEG_CKPT,      /* holds a part of the index checkpoint recovery loaded (ckpt.c) */
};

/*
 * A small round on a regular file that passes what earlier rounds wrote also writes the
 * head's zeros 1 to 2 times this far past its end (format writes the first this many
 * bytes of each shard's first head):
 * filesystems allocate space as unwritten extents (the store's file is preallocated),
 * and a flush after a write into one commits the extent's conversion in the
 * filesystem's journal: 2x the flush's cost on ext4. Later rounds then overwrite blocks
 * already written, and their flush is a device cache flush only.
 */
#define KV_ZERO_AHEAD (128u << 10)

struct kv_seg {
	uint64_t seq;      /* 0 when free */
	uint32_t seed;     /* CRC seed of its records: from seq and the store's uuid */
	uint8_t state;     /* enum kv_seg_state */
	uint8_t ref;       /* CLOCK bit: read since the hand last passed */
	uint8_t loading;   /* a read of the whole segment is in flight */
	uint8_t nocompact; /* KV_NOCOMPACT_BAD: compaction could not read it all back, leave it;
	                    * KV_NOCOMPACT_LATER: no room or no queue slot for it this time */
	uint32_t used;     /* bytes holding records (and the header) */
	uint32_t live;     /* bytes of records the index points at */
	uint32_t commits;  /* bytes of commit records (not in the index; maybe still needed) */
	uint32_t written;  /* bytes handed to the device (block-aligned down when rewritten) */
	uint32_t durable;  /* bytes known durable */
	uint32_t zeroed;   /* bytes written since it became the head (see KV_ZERO_AHEAD) */
	/* Sealed: bytes past `used` that its writes must also cover (0, or the size of a
	 * record header): the zeros where recovery reads the header that ends the segment,
	 * when no write of this life covered them yet (kv_seg_end). */
	uint32_t tail;
	/* Records below this offset in img came from the device unchecked (a whole-segment
	 * load, or the part of a head an index checkpoint covers): a get checks their CRC.
	 * Records the store wrote itself, or recovery scanned, are trusted in memory. */
	uint32_t check_below;
	uint64_t zero_after_seq, zero_after_pos; /* SEG_COMPACTED: free after this is durable */
	unsigned char *img;                      /* the segment's bytes in memory, or NULL */
	/* SEG_COMPACTED: the first block as its clearing writes it, the header zeroed and
	 * every other byte as on disk, so a write torn between sectors leaves either the
	 * old header with all its records or no header, never a header over a hole. */
	unsigned char *clear_blk;
	uint64_t *batches; /* ids of batches with records here (each once), for sn_kv.bparts */
	uint32_t nbatches, batches_cap;
};

/* A batch record found by recovery: applied once every shard has been scanned, if its
 * batch committed. */
struct kv_part {
	uint64_t hash, batch;
	uint32_t seg, off, len;
	uint16_t klen;
	uint8_t type;
	unsigned char *key;
};

struct kv_shard {
	_Alignas(SN_CACHELINE) struct sn_kv *kv; /* (owners side by side: no line shared) */
	struct kv_worker *w;
	unsigned id;
	uint64_t base; /* device offset of segment 0 */
	struct kv_seg *segs;
	uint32_t nsegs, nfree;
	uint32_t head; /* index of the head segment */
	uint64_t next_segseq, next_recseq;
	/* The largest segment (or checkpoint) number whose header is known durable. A head
	 * numbered more than nsegs past it writes its header alone, and flushes, before its
	 * records (shard.c round_start; docs/format.md, the writer's rules). */
	uint64_t hdr_durable;
	unsigned char *hdr_blk; /* that write's block: the header, then zeros */
	struct sn_idx idx;
	uint64_t cached_bytes, cache_budget;
	uint64_t loading_bytes; /* segments on their way into the cache (kv_shard_load) */
	uint32_t clock_hand;

	/* Group commit: one round (writes, then a flush) in flight at a time. */
	struct kv_req *waiters, **waiters_tail;
	int round_active, round_ios; /* a round's writes are in flight */
	int round_wants_room;        /* a round found the worker's queue full */
	int flushing;                /* flushes in flight (at most 2) */
	uint64_t flush_seg;          /* the segment the newest flush covers */
	int round_err;
	uint64_t round_seg, round_pos; /* what the round makes durable */
	uint64_t durable_seg, durable_pos;
	uint32_t unsynced_seals; /* sealed segments not yet durable */
	uint32_t ncompacted;     /* segments in SEG_COMPACTED */
	int failed;              /* a write or flush failed: the shard takes no more writes */
	int closed;              /* closing: deferred tasks and timers do nothing */
	struct sn_rt_task round_task;
	struct sn_rt_timer sync_timer;

	/* Writes waiting for space that a round or compaction is about to free. */
	struct kv_req *space_head, **space_tail;

	/* Reads waiting for the queue, and segments being loaded. */
	struct kv_req *read_wait;

	/* Compaction. */
	int compacting;
	int compact_appending;     /* appends may take the reserved segment */
	unsigned batches_inflight; /* multi-shard batches between their parts and commit */
	uint32_t compact_seg, compact_off;
	uint64_t compact_seq, compact_budget; /* the sweep's last record, its resync budget */
	int compact_keep; /* the sweep skipped damage naming a batch held elsewhere too */
	struct sn_rt_task compact_task;
	struct sn_rt_latch *compact_done; /* sn_kv_compact() waits */
	int compact_force;

	/* The index checkpoint recovery loaded: its segments are kept while space lasts. */
	uint32_t nckpt;     /* segments in SEG_CKPT */
	uint64_t ckpt_keys; /* index entries recovery took from it */

	struct kv_recovery *rec; /* between the phases of recovery (recover.c) */
	struct kv_part *parts;   /* recovery only */
	size_t nparts, parts_cap;

	/* Statistics (read by the owner for sn_kv_stat). */
	uint64_t batches;
	uint64_t puts, gets, dels, syncs, flushes, hits, misses, compactions, compacted_bytes;
	uint64_t recovered, recovery_ns, torn_bytes, corrupt;
};

/*
 * Calls a worker makes to another worker's shards travel in batches (post.c): one
 * message carries many calls, packed, and comes back with their results.
 */
#define KV_MB_SIZE     (64u << 10)      /* a batch's buffer: calls, then the owner's replies */
#define KV_MB_CALLS    (KV_MB_SIZE / 2) /* calls fill at most this much of it */
#define KV_MB_MAX      256u             /* calls in one batch */
#define KV_MB_EARLY    16u              /* a batch this full is sent at once */
#define KV_MB_CALL_MAX 2048u            /* a bigger call (key and value) goes as a request */

/* One call in a batch; its key and value follow, and the next call starts 8-aligned.
 * The caller writes it; the owner writes res and rlen only when they are not 0, so a
 * put's lines go one way. */
struct kv_call {
	uint8_t op, flags; /* enum kv_op: KV_PUT, KV_DEL, KV_GET; SN_KV_DURABLE */
	uint16_t klen;
	uint32_t vlen;
	uint64_t hash;
	int32_t res;   /* the result, or KV_HANDED: it became a request of its own */
	uint32_t rlen; /* bytes of its reply (a get's value, an error's message) */
	sn_kv_cb cb;
	void *arg;
};

struct kv_mb {
	struct sn_kv *kv;
	struct kv_mb *next; /* the caller's free list; the owner's list of unsent replies */
	unsigned from, to;  /* the calling worker, the owning worker */
	uint32_t n, len;    /* calls, and their bytes in data */
	_Alignas(64) unsigned char data[]; /* calls, then replies in call order */
};

/*
 * A worker's share: its queue on the device, and completions to deliver locally.
 *
 * The queue's flushes are the worker's, not a shard's: one at a time, covering every
 * shard that asked before it was issued. The queue is one file description, and Linux
 * reports a failed writeback once per description to whichever flush checks first: two
 * overlapping flushes could see one fail and the other succeed for the same lost data.
 * One at a time, a flush fails exactly when something written before it was lost; then
 * every shard of the worker fails (their unflushed writes may be among the lost).
 */
struct kv_io;
struct kv_worker {
	_Alignas(SN_CACHELINE) struct sn_kv *kv; /* (workers side by side: no line shared) */
	unsigned idx;
	struct sn_queue *q;
	unsigned q_depth, q_used;
	struct kv_io *flush_head, **flush_tail;  /* shards' flush requests not yet issued */
	int flush_busy;                          /* a flush is in flight */
	int flush_failed;                        /* a flush failed: no more are issued */
	struct kv_req *done_head, **done_tail;   /* callbacks for this worker's own calls */
	struct kv_req *reply_head, **reply_tail; /* replies that found a ring full */
	struct sn_rt_task done_task;
	struct kv_mb **mb_open; /* per owning worker: the batch being filled, or NULL */
	struct kv_mb *mb_free;  /* empty batch buffers */
	struct kv_mb *mb_ran, **mb_ran_tail;       /* batches to its own shards that ran */
	struct kv_mb *mb_unsent, **mb_unsent_tail; /* replies that found a ring full */
	struct sn_rt_task mb_task; /* sends the open batches at the end of the iteration */
	const unsigned *own;       /* the shards this worker owns (nown of them) */
	unsigned nown;
	int err;
	char errmsg[256];
	int open_left; /* close: a batch for another worker is still open (its ring was full) */
	int close_err; /* writing a checkpoint at close failed */
	char close_msg[256];
};

struct sn_kv {
	struct sn_kv_opts opts;
	struct sn_dev *dev;
	struct sn_dev_info info;
	struct sn_rt *rt;
	int own_rt;
	struct sn_kv_super sb;
	unsigned nworkers; /* workers that own shards, and those before them */
	uint16_t *owner;   /* per shard: its worker (opts.owners, or shard % nworkers) */
	unsigned *own;     /* every worker's kv_worker.own, one after the other */
	struct kv_shard *shards;
	struct kv_worker *workers;
	uint64_t max_value; /* largest value a segment holds */
	unsigned char *map; /* byte-addressable device: every segment's image is its place in
	                       the mapping (appends are stores, rounds are persists, reads are
	                       loads); NULL: images are buffers in memory, written by I/O */
	int pipeline;       /* a round may write while the previous round's flush runs. Off
	                       (SN_KV_PIPE=1 in the environment turns it on): the waiters
	                       that come during a flush then share one round after it,
	                       where pipelined rounds split them (fillsync, 32 writers, 2
	                       workers: 168k against 125k ops/s on a virtio disk) */
	int zero_ahead;     /* a regular file, not mapped: rounds write zeros ahead of the head
	                       (KV_ZERO_AHEAD; SN_KV_NOZERO=1 turns it off) */

	/* Batches: ids, and the commits recovery found. */
	uint64_t batch_base; /* random per open: batch ids never repeat across opens */
	_Atomic uint64_t next_batch;
	pthread_mutex_t batch_lock;
	/* Batch id -> how many segments on disk hold records of it, all shards together:
	 * a commit record is needed exactly while its batch has one (see compact.c).
	 * bparts_lost: bookkeeping failed (out of memory): keep every commit record. */
	pthread_mutex_t bparts_lock;
	struct u64map bparts;
	int bparts_lost;
	uint64_t *commits; /* sorted, after recovery */
	size_t ncommits, commits_cap;
	uint64_t *damaged; /* recovery: batches that lost records to damage (resync) */
	size_t ndamaged, damaged_cap;
	char report[512];  /* what recovery found, for the CLI */
	int ckpt_on_close; /* the close made everything durable: write index checkpoints */
	uint64_t close_id; /* the close's, in each of its checkpoints */
	int ckpt_use;      /* every shard found a checkpoint of the same close: load them */
};

/* The worker that owns shard s. */
static inline unsigned kv_owner(const struct sn_kv *kv, unsigned s)
{
	return kv->owner[s];
}

static inline unsigned kv_shard_of(const struct sn_kv *kv, uint64_t hash)
{
	return (unsigned)(((hash >> 32) * kv->sb.shards) >> 32);
}

/* How far the device must hold segment s: its records, and a sealed segment's tail. A
 * reused segment still holds its earlier life where this one never wrote: recovery, reading
 * a record header at the end of an older segment, must find zeros there (a clean stop), not
 * those bytes (a bad record: corruption). */
static inline uint32_t kv_seg_end(const struct kv_seg *s)
{
	return s->used + s->tail;
}

/* Does s have bytes (records, or its tail) not yet durable? */
static inline int kv_seg_dirty(const struct kv_seg *s)
{
	return s->durable < kv_seg_end(s);
}

static inline uint64_t kv_seg_off(const struct kv_shard *sh, uint32_t seg)
{
	return sh->base + (uint64_t)seg * sh->kv->sb.segment_size;
}

/* Background compaction starts when a quarter or less of the segments are free, or only
 * the reserve (and one more) is left on small shards; a held checkpoint gives its
 * segments back first. */
static inline int kv_low_on_space(const struct kv_shard *sh)
{
	return sh->nfree * 4 <= sh->nsegs || sh->nfree <= 3;
}

/* The CRC seed of records in the segment with sequence number seq: a record from another
 * store (a reformatted device) or another life of the segment fails its check. */
static inline uint32_t kv_rec_seed(const struct sn_kv *kv, uint64_t seq)
{
	return sn_crc32c(sn_kv_rec_seed(seq), kv->sb.uuid, sizeof(kv->sb.uuid));
}

/* shard.c */
int kv_shard_init(struct kv_shard *sh);
void kv_shard_fini(struct kv_shard *sh);
void kv_shard_exec(struct kv_shard *sh, struct kv_req *r);
/* What a write or get did at once, besides 0 or a negative errno: */
#define KV_NOCOMPACT_BAD   1 /* kv_seg.nocompact: for the rest of the session */
#define KV_NOCOMPACT_LATER 2 /* kv_seg.nocompact: until a round frees a segment */

#define KV_PARK   1 /* write: wait for space (nothing written); get: wait behind such writes */
#define KV_WAIT   2 /* write: done, the caller waits for it to be durable */
#define KV_MISS   3 /* get: the record is not in memory: read it (*ep says where) */
#define KV_HANDED 4 /* post.c: the call became a request of its own */
int kv_shard_write_now(struct kv_shard *sh, int del, uint64_t hash, const void *key, uint32_t klen,
                       const void *val, uint32_t vlen, unsigned flags);
void kv_shard_prefetch_rec(struct kv_shard *sh, uint64_t hash, const void *key, uint32_t klen);
int kv_shard_get_now(struct kv_shard *sh, uint64_t hash, const void *key, uint32_t klen,
                     const unsigned char **recp, const struct sn_idx_ent **ep);
void kv_shard_get_done(struct kv_shard *sh, struct kv_req *r, int res, const unsigned char *rec,
                       const struct sn_idx_ent *e);
void kv_shard_write_done(struct kv_shard *sh, struct kv_req *r, int res);
void kv_shard_io_done(struct kv_worker *w, const struct sn_cqe *cqe, unsigned n);
void kv_shard_round_kick(struct kv_shard *sh);
void *kv_img_alloc(const struct sn_kv *kv);
void kv_img_free(const struct sn_kv *kv, void *img);
void kv_shard_wait_durable(struct kv_shard *sh, struct kv_req *r);
void kv_shard_space_retry(struct kv_shard *sh);
/* Stop the shard taking writes (and compaction copying), after err: it is read-only. */
void kv_shard_fail(struct kv_shard *sh, int err);
int kv_shard_open_head(struct kv_shard *sh);
int kv_shard_img(struct kv_shard *sh, uint32_t seg);
int kv_shard_load(struct kv_shard *sh, uint32_t seg, int warm);
void kv_shard_cache_trim(struct kv_shard *sh, uint32_t keep);
int kv_shard_append(struct kv_shard *sh, unsigned type, const void *key, uint32_t klen,
                    const void *val, uint32_t vlen, const void *extra, uint32_t *segp,
                    uint32_t *offp);
void kv_shard_index_set(struct kv_shard *sh, struct sn_idx_ent *e, unsigned type, uint32_t seg,
                        uint32_t off, uint32_t len);
void kv_shard_index_drop(struct kv_shard *sh, struct sn_idx_ent *e);
void kv_seg_note_batch(struct kv_shard *sh, uint32_t seg, uint64_t batch);
int kv_batch_needed(struct sn_kv *kv, uint64_t batch);
uint64_t kv_batch_segments(struct sn_kv *kv, uint64_t batch);
int kv_shard_read(struct kv_shard *sh, unsigned char *buf, uint64_t off, uint32_t len);
int kv_shard_write(struct kv_shard *sh, const unsigned char *buf, uint32_t len, uint64_t off);
int kv_shard_flush_all(struct kv_shard *sh);
int kv_shard_scan_keys(struct kv_shard *sh, unsigned char **bufp, size_t *lenp);

/* store.c: hand a finished request back to its caller (on the owning worker). */
void kv_complete(struct kv_worker *w, struct kv_req *r);
/* req.c */
struct kv_req *kv_req_alloc(size_t size);
void kv_req_free(struct kv_req *r);

struct kv_req *kv_req_new(struct sn_kv *kv, enum kv_op op, const void *key, size_t klen,
                          const void *val, size_t vlen, unsigned flags, sn_kv_cb cb, void *arg);

/* post.c: calls between workers, in batches. */
int kv_post_init(struct kv_worker *w);
void kv_post_free(struct kv_worker *w);
/* A call of a worker with a share of the store (vlen is 0 for a get), into the open
 * batch for its shard's owner (post.c): 0, -EAGAIN (a ring is full) or -ENOMEM. */
int kv_post(struct sn_kv *kv, enum kv_op op, uint64_t hash, const void *key, uint32_t klen,
            const void *val, uint32_t vlen, unsigned flags, sn_kv_cb cb, void *arg);
void kv_post_done_local(struct kv_worker *w);
int kv_post_send(struct kv_worker *w, unsigned owner);
void kv_post_retry(struct kv_worker *w);

/* recover.c */
int kv_shard_recover_headers(struct kv_shard *sh);
int kv_shard_recover(struct kv_shard *sh);
void kv_shard_recover_free(struct kv_shard *sh);
int kv_shard_ckpt_close(const struct kv_shard *sh, uint64_t *close_id);
int kv_shard_apply_batches(struct kv_shard *sh);
void kv_commits_sort(struct sn_kv *kv);
uint32_t kv_rec_valid(const struct kv_shard *sh, const struct kv_seg *s, uint32_t off,
                      uint32_t end);
uint32_t kv_rec_resync(const struct kv_shard *sh, const struct kv_seg *s, uint32_t off,
                       uint32_t end, uint64_t after, uint64_t *budget);
int kv_damage_batches(const struct kv_seg *s, uint32_t off, uint32_t next,
                      int (*fn)(void *arg, uint64_t id), void *arg);

/* ckpt.c: the index checkpoint. */
struct kv_ckpt_part { /* a checkpoint segment's header, as recovery found it */
	uint64_t seq, total;
	uint32_t seg, part, nparts, len, crc;
};
struct kv_ckpt_found {      /* the newest whole, valid checkpoint of a shard */
	unsigned char *buf; /* its payload; NULL: none */
	uint64_t total, close_id;
	uint32_t *segs, nsegs; /* the segments holding it */
};
int kv_ckpt_write(struct kv_shard *sh);
int kv_ckpt_header(const struct kv_shard *sh, const void *blk, uint32_t seg_idx,
                   struct kv_ckpt_part *out);
int kv_ckpt_find(struct kv_shard *sh, struct kv_ckpt_part *parts, uint32_t n,
                 const uint64_t *disk_seq, struct kv_ckpt_found *f);
int kv_ckpt_apply(struct kv_shard *sh, const struct kv_ckpt_found *f, const uint64_t *disk_seq);
uint32_t kv_ckpt_head(const struct kv_ckpt_found *f);
/* How far the checkpoint f says segment seg's records reach, when the segment there has
 * sequence number seq (what was durable when it was written); else 0. */
uint32_t kv_ckpt_covered(const struct kv_shard *sh, const struct kv_ckpt_found *f, uint32_t seg,
                         uint64_t seq);
void kv_ckpt_found_free(struct kv_ckpt_found *f);
void kv_ckpt_release(struct kv_shard *sh);

/* compact.c */
void kv_compact_init(struct kv_shard *sh);
void kv_compact_maybe(struct kv_shard *sh);
void kv_compact_start(struct kv_shard *sh, int force, struct sn_rt_latch *done);
void kv_compact_loaded(struct kv_shard *sh);
int kv_space_coming(struct kv_shard *sh);

#endif
