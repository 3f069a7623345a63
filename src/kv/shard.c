/* SPDX-License-Identifier: MIT */
/*
 * shard.c — one shard: appending records to the head segment's in-memory image, the
 * group-commit rounds that write images out and flush, the segment cache, and reads.
 *
 * Ordering rules the recovery relies on:
 *  - One round (writes of one segment, then a device flush) is in flight at a time, so a
 *    block is never written twice concurrently, and segments become durable in sequence
 *    order: a segment's writes start only after every older segment is durable. A torn
 *    tail can therefore exist only in the newest segment.
 *  - A round rewrites the head's last partial block; its durable prefix is rewritten with
 *    the same bytes, so a sector that lands old or new keeps it.
 *  - A sealed segment's last round also writes the zeros where recovery reads the record
 *    header after its last record (its tail: seal()), so that an older segment ends
 *    cleanly even where a reused segment still holds its earlier life.
 *  - A compacted segment's header is cleared only after its copies are durable, and it
 *    is reused only after that clearing is durable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../util/crc32c.h"
#include "../util/util.h"
#include "kv_impl.h"

#define IO_ROUND_WRITE 1
#define IO_ROUND_FLUSH 2
#define IO_READ        3
#define IO_LOAD        4
#define IO_FLUSH       5 /* the worker's flush: covers the IO_ROUND_FLUSH requests listed */
#define WRITEBACK      (1u << 20) /* unwritten head bytes that start a round by themselves */
#define RESERVE_SEGS   2 /* free segments plain puts leave: one for deletes, one compaction */

struct kv_load {
	unsigned char *buf;
	unsigned pending;
	int err;
	int warm; /* for a read miss, not for compaction: an error concerns no one */
};

struct kv_io {
	int type;
	struct kv_load *load; /* IO_LOAD */
	struct kv_shard *sh;
	struct kv_req *req;
	uint32_t seg;
	uint64_t segseq;
	uint32_t off, len; /* IO_READ: the record within buf */
	unsigned char *buf;
	struct kv_io *next; /* IO_ROUND_FLUSH: in the worker's list; IO_FLUSH: the covered */
};

static int submit(struct kv_worker *w, struct sn_io *io)
{
	int r = sn_queue_submit(w->q, io, 1);

	if (r == 1)
		w->q_used++;
	return r == 1 ? 0 : r;
}

/* A segment's image, zeroed (huge pages: see sn__zalloc_big). */
void *kv_img_alloc(const struct sn_kv *kv)
{
	return sn__zalloc_big(kv->sb.segment_size);
}

void kv_img_free(const struct sn_kv *kv, void *img)
{
	sn__free_big(img, kv->sb.segment_size);
}

/* ---- cache ---- */

/* Evict durable, idle images (CLOCK) until one more fits the budget; keep `keep`. */
void kv_shard_cache_trim(struct kv_shard *sh, uint32_t keep)
{
	uint32_t seg_size = sh->kv->sb.segment_size, scanned = 0;

	while (!sh->kv->map && sh->cached_bytes + seg_size > sh->cache_budget &&
	       scanned < 2 * sh->nsegs) {
		uint32_t i = sh->clock_hand;
		struct kv_seg *s = &sh->segs[i];

		sh->clock_hand = (i + 1) % sh->nsegs;
		scanned++;
		if (!s->img || i == keep || i == sh->head || s->loading || kv_seg_dirty(s) ||
		    (sh->compacting && i == sh->compact_seg))
			continue;
		if (s->ref) {
			s->ref = 0;
			continue;
		}
		kv_img_free(sh->kv, s->img);
		s->img = NULL;
		sh->cached_bytes -= seg_size;
	}
}

/* Give segment seg an image (zeroed), making room in the cache first. */
int kv_shard_img(struct kv_shard *sh, uint32_t seg)
{
	struct kv_seg *s = &sh->segs[seg];

	if (s->img)
		return 0;
	if (sh->kv->map) {
		s->img = sh->kv->map + kv_seg_off(sh, seg);
		return 0;
	}
	kv_shard_cache_trim(sh, seg);
	s->img = kv_img_alloc(sh->kv);
	if (!s->img)
		return sn__err(-ENOMEM, "out of memory for a %u-byte segment",
		               sh->kv->sb.segment_size);
	sh->cached_bytes += sh->kv->sb.segment_size;
	return 0;
}

/* ---- segments ---- */

/* Make a free segment the head: a fresh header with the next sequence number. */
int kv_shard_open_head(struct kv_shard *sh)
{
	struct sn_kv *kv = sh->kv;
	struct sn_kv_seghdr *h;
	struct kv_seg *s;
	uint32_t i;
	int err, fresh;

	for (i = 0; i < sh->nsegs; i++)
		if (sh->segs[i].state == SEG_FREE)
			break;
	if (i == sh->nsegs)
		return sn__err(-ENOSPC, "shard %u: no free segment", sh->id);
	s = &sh->segs[i];
	fresh = !s->img; /* a new image is zeroed already */
	if ((err = kv_shard_img(sh, i)))
		return err;
	/* kv_shard_img() returned 0: s->img is set. clang-analyzer, reaching here too deep in
	 * calls to follow kv_shard_img(), takes it for possibly NULL: the NOLINTs below. */
	if (!fresh || kv->map)
		/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): s->img is set */
		memset(s->img, 0, kv->sb.segment_size);
	h = (struct sn_kv_seghdr *)s->img;
	/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): s->img is set */
	h->magic = SN_KV_SEG_MAGIC;
	memcpy(h->uuid, kv->sb.uuid, sizeof(h->uuid));
	h->seq = sh->next_segseq++;
	h->shard = sh->id;
	h->version = SN_KV_FORMAT_VERSION;
	h->crc = sn_crc32c(0, h, sizeof(*h));
	/* Numbered past the skip (the first head of a session): through a mapping, records'
	 * lines may reach the medium before the header's, so persist it first (block I/O:
	 * round_start writes it alone first). */
	if (kv->map && h->seq > sh->hdr_durable + sh->nsegs) {
		if ((err = sn_dev_persist(kv->dev, s->img, sizeof(*h)))) {
			kv_shard_fail(sh, err); /* as a failed round: no more writes */
			return sn__err(err, "shard %u: persisting a new segment's header: %s",
			               sh->id, sn_strerror(err));
		}
		sh->hdr_durable = h->seq;
	}
	s->seq = h->seq;
	s->seed = kv_rec_seed(kv, s->seq);
	s->state = SEG_HEAD;
	s->used = sizeof(*h);
	s->live = 0;
	s->written = s->durable = s->check_below = s->zeroed = s->tail = 0;
	sh->nfree--;
	sh->head = i;
	if (sh->nckpt && kv_low_on_space(sh))
		kv_ckpt_release(sh); /* space runs short: the checkpoint gives way */
	return 0;
}

/* ---- appending ---- */

/*
 * The tail a segment whose records end at s->used needs (struct kv_seg.tail): recovery
 * reads a record header there, and on a reused segment the bytes this life never wrote
 * still hold the earlier life's (a block device, or a file without zeros written ahead;
 * through a mapping, the zeros the head was given are stores, lost unless persisted). When
 * the header's bytes are among them, they must be written (zeros: the image past used
 * always is) before the segment counts as durable. Rounds write whole blocks: this costs
 * one block more, and only when the end is within a header's size of a block boundary
 * that no write of this life passed.
 */
static uint32_t tail_needed(const struct kv_shard *sh, const struct kv_seg *s)
{
	uint32_t hdr = sizeof(struct sn_kv_rechdr);

	return s->used + hdr <= sh->kv->sb.segment_size && s->zeroed < s->used + hdr ? hdr : 0;
}

/*
 * The head s is full: seal it, with its tail. Recovery reads a record header at its end
 * once it is an older segment, where a bad one is corruption; its last round writes the
 * tail, before any block of the next head (rounds go in segment order).
 */
static int seal(struct kv_shard *sh, struct kv_seg *s)
{
	struct sn_kv *kv = sh->kv;
	uint32_t tail = tail_needed(sh, s);
	int err;

	/* Through a mapping, any cache line may reach the media whenever it is evicted: the
	 * next head's first records could land before this head's last ones, and recovery
	 * would then take a torn segment for a whole one. Its last records first, and the
	 * zeros after them (stores into the mapping, until persisted). */
	if (kv->map && s->durable < s->used + tail &&
	    (err = sn_dev_persist(kv->dev, s->img + s->durable, s->used + tail - s->durable)))
		return sn__err(err, "shard %u: persisting a full segment: %s", sh->id,
		               sn_strerror(err));
	s->tail = tail;
	s->state = SEG_SEALED;
	sh->unsynced_seals += kv_seg_dirty(s);
	return 0;
}

int kv_shard_append(struct kv_shard *sh, unsigned type, const void *key, uint32_t klen,
                    const void *val, uint32_t vlen, const void *extra, uint32_t *segp,
                    uint32_t *offp)
{
	struct sn_kv *kv = sh->kv;
	uint32_t len = sn_kv_rec_len(type, klen, vlen), xlen = sn_kv_rec_extra(type);
	struct kv_seg *s = &sh->segs[sh->head];
	struct sn_kv_rechdr *r;
	unsigned char *p;
	int err;

	if (sh->failed)
		return sn__err(-EIO,
		               "shard %u: an earlier write or flush failed (%s): the shard takes "
		               "no more writes until the store is reopened",
		               sh->id, sn_strerror(sh->failed));
	if (s->state != SEG_HEAD || s->used + len > kv->sb.segment_size) {
		/* Normal writes leave the reserve to compaction, which frees space. */
		unsigned keep = sh->compact_appending                             ? 0u
		                : type == SN_KV_REC_DEL || type == SN_KV_REC_BDEL ? RESERVE_SEGS - 1
		                                                                  : RESERVE_SEGS;

		if (sh->nfree <= keep) {
			kv_compact_maybe(sh); /* free what can be freed for the next attempt */
			return sn__err(-ENOSPC, "shard %u is full (%u segments of %u bytes)",
			               sh->id, sh->nsegs, kv->sb.segment_size);
		}
		if (s->state == SEG_HEAD && (err = seal(sh, s)))
			return err;
		if ((err = kv_shard_open_head(sh)))
			return err;
		s = &sh->segs[sh->head];
		kv_shard_round_kick(sh);
	}
	p = s->img + s->used;
	r = (struct sn_kv_rechdr *)p;
	r->type = (uint8_t)type;
	r->rsvd = 0;
	r->klen = (uint16_t)klen;
	r->vlen = vlen;
	r->pad = 0;
	r->seq = sh->next_recseq++;
	/* Only batch and commit records have extra bytes, and their callers pass them (those of
	 * puts and deletes pass NULL). clang-analyzer, too deep in calls to evaluate
	 * sn_kv_rec_extra(), takes xlen for any value. */
	if (xlen)
		/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): see above */
		memcpy(p + sizeof(*r), extra, xlen);
	if (klen)
		memcpy(p + sizeof(*r) + xlen, key, klen);
	if (vlen)
		memcpy(p + sizeof(*r) + xlen + klen, val, vlen);
	r->crc = sn_crc32c(s->seed, p + 4, sizeof(*r) - 4 + xlen + klen + vlen);
	if (type == SN_KV_REC_BPUT || type == SN_KV_REC_BDEL)
		kv_seg_note_batch(sh, sh->head, *(const uint64_t *)extra);
	else if (type == SN_KV_REC_COMMIT)
		s->commits += len;
	*segp = sh->head;
	*offp = s->used;
	s->used += len;
	return 0;
}

/* One more (d +1) or one less (d -1) segment holds records of batch. */
static void bpart_count(struct sn_kv *kv, uint64_t batch, int d)
{
	struct u64map_ent *c;

	pthread_mutex_lock(&kv->bparts_lock);
	c = d > 0 ? u64map_get(&kv->bparts, batch) : u64map_find(&kv->bparts, batch);
	if (!c)
		kv->bparts_lost = 1;
	else if ((c->val += (uint64_t)(int64_t)d) == 0)
		u64map_del(&kv->bparts, c);
	pthread_mutex_unlock(&kv->bparts_lock);
}

/* How many segments on disk hold records of batch (UINT64_MAX: the count was lost). */
uint64_t kv_batch_segments(struct sn_kv *kv, uint64_t batch)
{
	const struct u64map_ent *c;
	uint64_t n;

	pthread_mutex_lock(&kv->bparts_lock);
	c = u64map_find(&kv->bparts, batch);
	n = kv->bparts_lost ? UINT64_MAX : c ? c->val : 0;
	pthread_mutex_unlock(&kv->bparts_lock);
	return n;
}

/* Does recovery still need the commit record of batch? */
int kv_batch_needed(struct sn_kv *kv, uint64_t batch)
{
	return kv_batch_segments(kv, batch) != 0;
}

/* Segment seg holds a record of batch (appended, or found by recovery). */
void kv_seg_note_batch(struct kv_shard *sh, uint32_t seg, uint64_t batch)
{
	struct kv_seg *s = &sh->segs[seg];

	for (uint32_t i = s->nbatches; i-- > 0 && i + 4 >= s->nbatches;)
		if (s->batches[i] == batch) /* a batch's records come together */
			return;
	if (s->nbatches == s->batches_cap) {
		uint32_t cap = s->batches_cap ? 2 * s->batches_cap : 8;
		uint64_t *n = realloc(s->batches, cap * sizeof(*n));

		if (!n) {
			sh->kv->bparts_lost = 1;
			return;
		}
		s->batches = n;
		s->batches_cap = cap;
	}
	s->batches[s->nbatches++] = batch;
	bpart_count(sh->kv, batch, 1);
}

/* Segment seg is free (its cleared header is durable): its batch records are gone. */
static void seg_forget_batches(struct kv_shard *sh, uint32_t seg)
{
	struct kv_seg *s = &sh->segs[seg];

	for (uint32_t i = 0; i < s->nbatches; i++)
		bpart_count(sh->kv, s->batches[i], -1);
	free(s->batches);
	s->batches = NULL;
	s->nbatches = s->batches_cap = 0;
}

/* Point e at a new record, moving the live-byte accounting. */
void kv_shard_index_set(struct kv_shard *sh, struct sn_idx_ent *e, unsigned type, uint32_t seg,
                        uint32_t off, uint32_t len)
{
	int tomb = type == SN_KV_REC_DEL || type == SN_KV_REC_BDEL;

	if (e->seg != UINT32_MAX)
		sh->segs[e->seg].live -= e->len;
	sh->idx.tombs += (uint64_t)tomb - e->tomb;
	e->seg = seg;
	e->off = off;
	e->len = len;
	e->tomb = (uint8_t)tomb;
	sh->segs[seg].live += len;
}

/* Remove e from the index (a delete compaction drops), with its accounting. */
void kv_shard_index_drop(struct kv_shard *sh, struct sn_idx_ent *e)
{
	sh->segs[e->seg].live -= e->len;
	sn_idx_remove(&sh->idx, e);
}

/* ---- group commit rounds ---- */

static int durable_to(const struct kv_shard *sh, uint64_t seg, uint64_t pos)
{
	return seg < sh->durable_seg || (seg == sh->durable_seg && pos <= sh->durable_pos);
}

/* Complete the waiters that are durable now (all of them, failed, on err). The list is
 * whole again before any completes: a completion may add a waiter. */
static void complete_waiters(struct kv_shard *sh, int err)
{
	struct kv_req **pp = &sh->waiters, *done = NULL, **done_tail = &done;

	while (*pp) {
		struct kv_req *r = *pp;

		if (!err && !durable_to(sh, r->wait_seg, r->wait_pos)) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		*done_tail = r;
		done_tail = &r->next;
	}
	sh->waiters_tail = pp;
	*done_tail = NULL;
	while (done) {
		struct kv_req *r = done;

		done = r->next;
		if (err)
			r->res = err;
		kv_complete(sh->w, r);
	}
}

/* The oldest segment with bytes not yet durable, or UINT32_MAX. */
static uint32_t oldest_dirty(const struct kv_shard *sh)
{
	uint32_t best = UINT32_MAX;

	for (uint32_t i = 0; i < sh->nsegs; i++) {
		const struct kv_seg *s = &sh->segs[i];

		if ((s->state == SEG_HEAD || s->state == SEG_SEALED) && kv_seg_dirty(s) &&
		    (best == UINT32_MAX || s->seq < sh->segs[best].seq))
			best = i;
	}
	return best;
}

static void round_write(struct kv_shard *sh, uint64_t off, unsigned char *buf, uint32_t len)
{
	struct sn_kv *kv = sh->kv;
	struct kv_io *x;
	struct sn_io io;
	int err;

	if (kv->map) {
		/* The image is the mapping: the bytes are in place, make them durable. */
		(void)buf;
		if (!sh->round_err && (err = sn_dev_persist(kv->dev, kv->map + off, len)))
			sh->round_err = err;
		return;
	}
	if (!(x = malloc(sizeof(*x)))) {
		sh->round_err = -ENOMEM;
		return;
	}
	x->type = IO_ROUND_WRITE;
	x->sh = sh;
	sn_io_write(&io, buf, len, off, (uintptr_t)x);
	if ((err = submit(sh->w, &io))) {
		free(x);
		sh->round_err = err;
		return;
	}
	sh->round_ios++;
}

static void round_fail(struct kv_shard *sh, int err)
{
	sn__err(err, "shard %u: a write or flush failed (%s): the shard takes no more writes",
	        sh->id, sn_strerror(err));
	sh->failed = err;
	complete_waiters(sh, err);
	kv_shard_space_retry(sh); /* they fail now (the shard is read-only) */
	if (sh->compact_done)     /* sn_kv_compact() waits: let it see the failure */
		sn_rt_defer(&sh->compact_task);
}

void kv_shard_fail(struct kv_shard *sh, int err)
{
	if (!sh->failed)
		round_fail(sh, err);
}

static void round_flush(struct kv_shard *sh);
static void round_done(struct kv_shard *sh, uint64_t seg, uint64_t pos);
static void worker_flush(struct kv_worker *w);

/* The block a head's header goes to the device in alone (struct kv_shard.hdr_durable):
 * the header, then zeros. NULL when out of memory. */
static unsigned char *header_block(struct kv_shard *sh, const struct kv_seg *s)
{
	uint32_t bs = sh->kv->sb.block_size;

	if (!sh->hdr_blk && posix_memalign((void **)&sh->hdr_blk, 4096, bs))
		return sh->hdr_blk = NULL;
	memset(sh->hdr_blk, 0, bs);
	memcpy(sh->hdr_blk, s->img, sizeof(struct sn_kv_seghdr));
	return sh->hdr_blk;
}

static void round_start(struct kv_shard *sh)
{
	struct sn_kv *kv = sh->kv;
	struct kv_worker *w = sh->w;
	uint32_t bs = kv->sb.block_size, d = oldest_dirty(sh), max_xfer = 1u << 20;
	uint32_t from = 0, to = 0, room, chunks;
	int zeroing = 0, hdr_first;

	if (sh->round_active || sh->flushing > 1)
		return;
	/* While the previous round's flush is in flight, the next round may write (its
	 * data is a superset of what the flush covers) but only to the same segment:
	 * older segments must be durable before a newer one is written. */
	if (sh->flushing && (!kv->pipeline || d == UINT32_MAX || sh->segs[d].seq != sh->flush_seg ||
	                     sh->segs[d].written >= kv_seg_end(&sh->segs[d])))
		return;
	if (sh->failed) {
		sn__err(sh->failed,
		        "shard %u: an earlier write or flush failed (%s): the shard "
		        "takes no more writes",
		        sh->id, sn_strerror(sh->failed));
		complete_waiters(sh, sh->failed);
		return;
	}
	if (kv->opts.readonly) {
		/* Nothing was appended: everything there is, is as durable as it gets (a head
		 * recovery opened in memory keeps its header unwritten). */
		const struct kv_seg *h = &sh->segs[sh->head];

		sh->durable_seg = h->seq;
		sh->durable_pos = h->used;
		complete_waiters(sh, 0);
		return;
	}
	/* A round submits no more writes than the worker's queue has room for, less a slot
	 * for the worker's flush (a full queue is no device failure): the dirty stretch
	 * first, in part if it must be (the round makes durable what it wrote), then the
	 * clears that fit; the rest waits for the next round. With no room at all the
	 * round waits for a completion (kv_shard_io_done starts it again). */
	room = kv->map ? UINT32_MAX : w->q_used + 1 < w->q_depth ? w->q_depth - w->q_used - 1 : 0;
	if (!room) {
		sh->round_wants_room = 1;
		return;
	}
	if (kv->info.max_transfer_bytes && kv->info.max_transfer_bytes < max_xfer)
		max_xfer = kv->info.max_transfer_bytes & ~(bs - 1);
	sh->round_err = 0;
	sh->round_ios = 0;
	if (d == UINT32_MAX && !sh->flushing) {
		/* Nothing is dirty and nothing in flight: everything appended is durable. Say
		 * so in the shard's durable position too (compacted segments wait on it), and
		 * drop a stale count of sealed segments (it would ask for rounds forever). */
		const struct kv_seg *h = &sh->segs[sh->head];

		sh->unsynced_seals = 0;
		if (h->seq > sh->durable_seg ||
		    (h->seq == sh->durable_seg && h->used > sh->durable_pos)) {
			sh->durable_seg = h->seq;
			sh->durable_pos = h->used;
		}
	}
	/* A head numbered past the skip at open (see recover.c) whose header is not durable
	 * yet: this round writes its header alone (then zeros to the block's end) and flushes;
	 * its records follow in the next. Were they written together and a crash kept the
	 * records but not the header, the next open would number a new head the same, in
	 * the same place, and those records would pass its checksums. */
	hdr_first = d != UINT32_MAX && !kv->map && !sh->segs[d].written &&
	            sh->segs[d].seq > sh->hdr_durable + sh->nsegs;
	if (hdr_first && sh->flushing)
		return; /* its header's flush is in flight (a pipelined round): wait for it */
	if (hdr_first) {
		if (room != UINT32_MAX)
			room--;
	} else if (d != UINT32_MAX) {
		struct kv_seg *s = &sh->segs[d];

		from = s->written & ~(bs - 1);
		to = (kv_seg_end(s) + bs - 1) & ~(bs - 1);
		if (kv->zero_ahead && to > s->zeroed && to - from < KV_ZERO_AHEAD)
			to = (to + 2 * KV_ZERO_AHEAD - 1) & ~(KV_ZERO_AHEAD - 1);
		if (to > kv->sb.segment_size)
			to = kv->sb.segment_size;
		chunks = (to - from + max_xfer - 1) / max_xfer;
		if (chunks > room) {
			to = from + room * max_xfer;
			chunks = room;
		}
		if (room != UINT32_MAX)
			room -= chunks;
	}
	/* Clear the headers of compacted segments whose copies are durable. */
	for (uint32_t i = 0; !sh->flushing && room && i < sh->nsegs; i++) {
		struct kv_seg *s = &sh->segs[i];

		if (s->state != SEG_COMPACTED ||
		    !durable_to(sh, s->zero_after_seq, s->zero_after_pos))
			continue;
		s->state = SEG_ZEROING;
		sh->ncompacted--;
		room -= room != UINT32_MAX;
		if (kv->map) {
			/* One cache line: however a crash tears it, the header is whole or
			 * invalid. */
			memset(s->img, 0, sizeof(struct sn_kv_seghdr));
			round_write(sh, kv_seg_off(sh, i), s->img, sizeof(struct sn_kv_seghdr));
		} else {
			round_write(sh, kv_seg_off(sh, i), s->clear_blk, bs);
		}
		zeroing = 1;
	}
	if (hdr_first) {
		unsigned char *blk = header_block(sh, &sh->segs[d]);

		sh->round_seg = sh->segs[d].seq;
		sh->round_pos = sizeof(struct sn_kv_seghdr);
		if (blk)
			round_write(sh, kv_seg_off(sh, d), blk, bs);
		else
			sh->round_err = sn__err(-ENOMEM, "out of memory");
	} else if (d != UINT32_MAX) {
		struct kv_seg *s = &sh->segs[d];
		uint32_t end = kv_seg_end(s) < to ? kv_seg_end(s) : to;

		if (to > s->zeroed)
			s->zeroed = to;
		sh->round_seg = s->seq;
		sh->round_pos = end;
		for (uint32_t o = from; o < to; o += max_xfer)
			round_write(sh, kv_seg_off(sh, d) + o, s->img + o,
			            to - o < max_xfer ? to - o : max_xfer);
		s->written = end;
	} else if (!zeroing) {
		/* Nothing to write: everything appended is durable. */
		complete_waiters(sh, 0);
		return;
	} else {
		sh->round_seg = sh->durable_seg;
		sh->round_pos = sh->durable_pos;
	}
	sh->round_active = 1;
	if (sh->round_err && !sh->round_ios) {
		sh->round_active = 0;
		round_fail(sh, sh->round_err);
	} else if (!sh->round_ios) {
		round_flush(sh); /* all written already: only the flush is missing */
	}
}

/* The round's writes completed: flush, and let the next round's writes start. */
static void round_flush(struct kv_shard *sh)
{
	struct kv_io *x;
	struct kv_worker *w = sh->w;

	if (sh->kv->map) { /* persisted already: durable now */
		sh->round_active = 0;
		sh->flushing++;
		sh->flush_seg = sh->round_seg;
		round_done(sh, sh->round_seg, sh->round_pos);
		return;
	}
	x = malloc(sizeof(*x));

	sh->round_active = 0;
	if (!x) {
		round_fail(sh, -ENOMEM);
		return;
	}
	x->type = IO_ROUND_FLUSH;
	x->sh = sh;
	x->segseq = sh->round_seg;
	x->off = (uint32_t)sh->round_pos;
	x->next = NULL;
	*w->flush_tail = x;
	w->flush_tail = &x->next;
	sh->flushing++;
	sh->flush_seg = sh->round_seg;
	worker_flush(w);
	kv_shard_round_kick(sh);
}

/* Fail every shard of w: a flush of its queue failed (see struct kv_worker). */
static void worker_flush_fail(struct kv_worker *w, struct kv_io *covered, int err)
{
	struct sn_kv *kv = w->kv;

	w->flush_failed = err;
	while (covered || w->flush_head) {
		struct kv_io *x = covered ? covered : w->flush_head;

		if (covered)
			covered = x->next;
		else if (!(w->flush_head = x->next))
			w->flush_tail = &w->flush_head;
		x->sh->flushing--;
		if (!x->sh->failed)
			round_fail(x->sh, err);
		else
			complete_waiters(x->sh, x->sh->failed);
		free(x);
	}
	for (unsigned i = 0; i < w->nown; i++)
		if (!kv->shards[w->own[i]].failed)
			round_fail(&kv->shards[w->own[i]], err);
}

/* Issue one flush for every request queued, unless one is in flight. */
static void worker_flush(struct kv_worker *w)
{
	struct kv_io *x;
	struct sn_io io;
	int err;

	if (w->flush_busy || !w->flush_head)
		return;
	if (w->flush_failed) {
		worker_flush_fail(w, NULL, w->flush_failed);
		return;
	}
	if (!(x = malloc(sizeof(*x)))) {
		worker_flush_fail(w, NULL, -ENOMEM);
		return;
	}
	x->type = IO_FLUSH;
	x->sh = NULL;
	x->next = w->flush_head;
	sn_io_flush(&io, (uintptr_t)x);
	if ((err = submit(w, &io))) {
		free(x);
		/* A full queue: the flush goes when a completion makes room (io_done). */
		if (err != -EAGAIN)
			worker_flush_fail(w, NULL, err);
		return;
	}
	w->flush_head = NULL;
	w->flush_tail = &w->flush_head;
	w->flush_busy = 1;
}

/* A flush completed: everything written before it was issued is durable. */
static void round_done(struct kv_shard *sh, uint64_t seg, uint64_t pos)
{
	int freed = 0;

	sh->flushing--;
	if (sh->failed) {
		/* An earlier flush failed while this one was in flight: what that flush
		 * covered may be gone even though this one succeeded (Linux drops the dirty
		 * state of pages whose writeback failed). Nothing more becomes durable. */
		complete_waiters(sh, sh->failed);
		return;
	}
	sh->flushes++;
	if (pos && seg > sh->hdr_durable) /* a flush past a segment's start: its header too */
		sh->hdr_durable = seg;
	if (seg > sh->durable_seg || (seg == sh->durable_seg && pos > sh->durable_pos)) {
		sh->durable_seg = seg;
		sh->durable_pos = pos;
	}
	for (uint32_t i = 0; i < sh->nsegs; i++) {
		struct kv_seg *s = &sh->segs[i];

		uint32_t was = s->durable;

		if (s->seq && s->seq < sh->durable_seg &&
		    (s->state == SEG_HEAD || s->state == SEG_SEALED))
			s->durable = kv_seg_end(s);
		else if (s->seq == sh->durable_seg && s->durable < sh->durable_pos)
			s->durable = (uint32_t)sh->durable_pos;
		if (s->state == SEG_SEALED && was < kv_seg_end(s) && !kv_seg_dirty(s))
			sh->unsynced_seals--;
		if (s->state == SEG_ZEROING) {
			seg_forget_batches(sh, i);
			free(s->clear_blk);
			s->clear_blk = NULL;
			s->state = SEG_FREE;
			s->seq = 0;
			s->used = s->live = s->written = s->durable = s->commits = 0;
			s->check_below = s->tail = 0;
			if (s->img && !sh->kv->map) {
				sh->cached_bytes -= sh->kv->sb.segment_size;
				kv_img_free(sh->kv, s->img);
				s->img = NULL;
			}
			sh->nfree++;
			freed = 1;
		}
	}
	/* Space came back: segments compaction gave up on for want of it are candidates
	 * again. */
	for (uint32_t i = 0; freed && i < sh->nsegs; i++)
		if (sh->segs[i].nocompact == KV_NOCOMPACT_LATER)
			sh->segs[i].nocompact = 0;
	complete_waiters(sh, 0);
	kv_compact_maybe(sh);
	kv_shard_round_kick(sh);
	if (sh->space_head)
		kv_shard_space_retry(sh);
}

/* Read or write len bytes at off on the shard's queue and wait, in transfers the device
 * takes (recovery and close only). */
static int blocking_io(struct kv_shard *sh, int write, unsigned char *buf, uint32_t len,
                       uint64_t off)
{
	uint32_t chunk = 1u << 20, max = sh->kv->info.max_transfer_bytes;

	if (max && max < chunk)
		chunk = max & ~(sh->kv->sb.block_size - 1);
	for (uint32_t o = 0; o < len; o += chunk) {
		uint32_t n = len - o < chunk ? len - o : chunk;
		int err = write ? sn_queue_pwrite(sh->w->q, buf + o, n, off + o)
		                : sn_queue_pread(sh->w->q, buf + o, n, off + o);

		if (err)
			return sn__err(err, "shard %u: %s offset %llu: %s", sh->id,
			               write ? "writing" : "reading", (unsigned long long)off + o,
			               sn_strerror(err));
	}
	return 0;
}

int kv_shard_read(struct kv_shard *sh, unsigned char *buf, uint64_t off, uint32_t len)
{
	return blocking_io(sh, 0, buf, len, off);
}

int kv_shard_write(struct kv_shard *sh, const unsigned char *buf, uint32_t len, uint64_t off)
{
	return blocking_io(sh, 1, (unsigned char *)buf, len, off);
}

/*
 * At close, with nothing else running on the shard: make every appended byte durable,
 * oldest segment first and a flush after each (the order rounds keep), so the index as
 * it stands describes the log on disk; the head's tail too.
 */
int kv_shard_flush_all(struct kv_shard *sh)
{
	struct sn_kv *kv = sh->kv;
	uint32_t bs = kv->sb.block_size, d;
	int err = 0;

	/* The next open reads a record header at the head's end too: zeros there, so that
	 * a clean close leaves no torn tail to find. */
	if (sh->head != UINT32_MAX && sh->segs[sh->head].state == SEG_HEAD)
		sh->segs[sh->head].tail = tail_needed(sh, &sh->segs[sh->head]);

	while (!err && (d = oldest_dirty(sh)) != UINT32_MAX) {
		struct kv_seg *s = &sh->segs[d];
		uint32_t from = s->durable & ~(bs - 1), to = (kv_seg_end(s) + bs - 1) & ~(bs - 1);

		if (to > kv->sb.segment_size)
			to = kv->sb.segment_size;
		if (!kv->map && !s->written && s->seq > sh->hdr_durable + sh->nsegs) {
			/* Its header first, alone, as round_start writes it (hdr_first). */
			unsigned char *blk = header_block(sh, s);

			if (!blk)
				return sn__err(-ENOMEM, "out of memory");
			if ((err = kv_shard_write(sh, blk, bs, kv_seg_off(sh, d))) ||
			    (err = sn_queue_flush(sh->w->q)))
				break;
			sh->hdr_durable = s->seq;
		}
		if (kv->map)
			err = sn_dev_persist(kv->dev, s->img + from, to - from);
		else if (!(err = kv_shard_write(sh, s->img + from, to - from,
		                                kv_seg_off(sh, d) + from)))
			err = sn_queue_flush(sh->w->q);
		if (!err)
			s->durable = s->written = kv_seg_end(s);
	}
	return err;
}

/* Is there a reason to start a round now? (Cheap: runs after every iteration with puts.) */
static int round_wanted(struct kv_shard *sh)
{
	const struct kv_seg *h = &sh->segs[sh->head];

	if (sh->round_active || sh->flushing > 1)
		return 0;
	/* Waiters; sealed segments not yet durable (they hold back the head); a head with
	 * a lot unwritten; compacted segments (make the copies durable, clear headers). */
	return sh->waiters || sh->unsynced_seals || h->used - h->written >= WRITEBACK ||
	       sh->ncompacted;
}

static void round_task(void *arg)
{
	struct kv_shard *sh = arg;

	if (!sh->closed && round_wanted(sh))
		round_start(sh);
}

void kv_shard_round_kick(struct kv_shard *sh)
{
	sn_rt_defer(&sh->round_task);
}

static void sync_tick(void *arg)
{
	struct kv_shard *sh = arg;

	if (oldest_dirty(sh) != UINT32_MAX)
		round_start(sh);
	sn_rt_timer_arm(&sh->sync_timer, (uint64_t)sh->kv->opts.sync_interval_us * 1000, sync_tick,
	                sh);
}

/* ---- requests ---- */

/* Wait for durability of everything appended so far, then complete r. */
void kv_shard_wait_durable(struct kv_shard *sh, struct kv_req *r)
{
	struct kv_seg *h = &sh->segs[sh->head];

	r->wait_seg = h->seq;
	r->wait_pos = h->used;
	if (durable_to(sh, r->wait_seg, r->wait_pos) && !sh->failed) {
		kv_complete(sh->w, r);
		return;
	}
	r->next = NULL;
	*sh->waiters_tail = r;
	sh->waiters_tail = &r->next;
	kv_shard_round_kick(sh);
}

/* Park r until a round or compaction frees space (writes keep their order). */
static void space_wait(struct kv_shard *sh, struct kv_req *r)
{
	r->next = NULL;
	*sh->space_tail = r;
	sh->space_tail = &r->next;
	kv_compact_maybe(sh);
	kv_shard_round_kick(sh);
}

/* Space was (or may have been) freed: run the parked writes again, in order. */
void kv_shard_space_retry(struct kv_shard *sh)
{
	struct kv_req *r = sh->space_head;

	sh->space_head = NULL;
	sh->space_tail = &sh->space_head;
	while (r) {
		struct kv_req *next = r->next;

		kv_shard_exec(sh, r);
		r = next;
	}
}

/*
 * The index had no memory for the record just appended at (seg, off). The caller is told
 * the write failed, so the record must not come back at the next open: take it back out
 * of the head while no round has taken it. Once one has, the shard stops taking writes.
 */
static int index_oom(struct kv_shard *sh, uint32_t seg, uint32_t off)
{
	struct kv_seg *s = &sh->segs[seg];
	/* Undone only if no round can have taken the record: the writes of a round in flight
	 * reach past the end it had (zeros ahead) and read the image while in flight, so a
	 * record appended meanwhile may be on its way (a round done wrote before it). */
	int undo = seg == sh->head && s->written <= off &&
	           !(sh->round_active && sh->round_seg == s->seq && off < s->zeroed);

	if (undo) {
		memset(s->img + off, 0, s->used - off);
		/* On a mapping the record's stores may reach the media any time. */
		if (sh->kv->map && sn_dev_persist(sh->kv->dev, s->img + off, s->used - off))
			undo = 0;
		else
			s->used = off;
	}
	if (!undo)
		round_fail(sh, -ENOMEM);
	return sn__err(-ENOMEM, "shard %u: out of memory for the index%s", sh->id,
	               sh->failed ? " (the record was on its way to the device: the shard "
	                            "takes no more writes)"
	                          : "");
}

int kv_shard_write_now(struct kv_shard *sh, int del, uint64_t hash, const void *key, uint32_t klen,
                       const void *val, uint32_t vlen, unsigned flags)
{
	unsigned type = del ? SN_KV_REC_DEL : SN_KV_REC_PUT;
	struct sn_idx_ent *e;
	uint32_t seg, off;
	int fresh, err;

	if (sh->space_head) /* earlier writes wait for space: stay behind them */
		return KV_PARK;
	sn_idx_prefetch(&sh->idx, hash); /* loads while the record is appended */
	if (del) {
		e = sn_idx_find(&sh->idx, hash, key, klen);
		if (!e || e->tomb) { /* nothing to delete: nothing to write */
			sh->dels++;
			goto done;
		}
	}
	err = kv_shard_append(sh, type, key, klen, val, vlen, NULL, &seg, &off);
	if (!err) {
		e = sn_idx_upsert(&sh->idx, hash, key, klen, &fresh);
		if (e)
			kv_shard_index_set(sh, e, type, seg, off, sn_kv_rec_len(type, klen, vlen));
		else
			err = index_oom(sh, seg, off);
	}
	/* A round or compaction in progress will free space: wait instead of failing (a
	 * write stall, not an error). */
	if (err == -ENOSPC && kv_space_coming(sh))
		return KV_PARK;
	if (del)
		sh->dels++;
	else
		sh->puts++;
	if (err)
		return err;
	if (sh->segs[sh->head].used - sh->segs[sh->head].written >= WRITEBACK)
		kv_shard_round_kick(sh);
done:
	return (flags & SN_KV_DURABLE) || sh->kv->opts.sync == SN_KV_SYNC_ALWAYS ? KV_WAIT : 0;
}

/* Finish r after kv_shard_write_now() said res. */
void kv_shard_write_done(struct kv_shard *sh, struct kv_req *r, int res)
{
	if (res == KV_PARK) {
		space_wait(sh, r);
	} else if (res == KV_WAIT) {
		kv_shard_wait_durable(sh, r);
	} else {
		r->res = res;
		kv_complete(sh->w, r);
	}
}

static void exec_write(struct kv_shard *sh, struct kv_req *r)
{
	kv_shard_write_done(sh, r,
	                    kv_shard_write_now(sh, r->op == KV_DEL, r->hash, r->data, r->klen,
	                                       r->data + r->klen, r->vlen, r->flags));
}

/* The value of the record at p (already checked), into r. */
static void take_value(struct kv_req *r, const unsigned char *p)
{
	const struct sn_kv_rechdr *h = (const struct sn_kv_rechdr *)p;

	r->rvlen = h->vlen;
	/* Small values go in the room a get request carries after its key. */
	r->rval = h->vlen <= KV_GET_INLINE ? r->data + r->klen : malloc(h->vlen ? h->vlen : 1);
	if (!r->rval) {
		r->res = -ENOMEM;
		return;
	}
	memcpy(r->rval, p + sizeof(*h) + sn_kv_rec_extra(h->type) + h->klen, h->vlen);
	r->res = 0;
}

static int check_record(const struct kv_shard *sh, uint64_t segseq, const unsigned char *p,
                        uint32_t len, const void *key, uint32_t klen)
{
	const struct sn_kv_rechdr *h = (const struct sn_kv_rechdr *)p;
	uint32_t x = sn_kv_rec_extra(h->type);

	/* The header's lengths first: bytes read back unchecked can claim anything, and a
	 * huge vlen would wrap the length sum into one that matches. */
	if (h->type < SN_KV_REC_PUT || h->type > SN_KV_REC_COMMIT || h->klen > SN_KV_MAX_KEY ||
	    h->vlen > sh->kv->max_value || sn_kv_rec_len(h->type, h->klen, h->vlen) != len ||
	    h->klen != klen ||
	    sn_crc32c(kv_rec_seed(sh->kv, segseq), p + 4, sizeof(*h) - 4 + x + h->klen + h->vlen) !=
	            h->crc ||
	    memcmp(p + sizeof(*h) + x, key, klen) != 0)
		return SN_ECORRUPT;
	return 0;
}

static void read_miss(struct kv_shard *sh, struct kv_req *r, const struct sn_idx_ent *e)
{
	struct sn_kv *kv = sh->kv;
	uint32_t bs = kv->sb.block_size, from = e->off & ~(bs - 1);
	uint32_t to = (e->off + e->len + bs - 1) & ~(bs - 1);
	struct kv_io *x;
	struct sn_io io;
	int err;

	if (sh->w->q_used + 32 >= sh->w->q_depth) { /* keep room for rounds */
		r->next = sh->read_wait;
		sh->read_wait = r;
		return;
	}
	x = calloc(1, sizeof(*x));
	if (!x || posix_memalign((void **)&x->buf, 4096, to - from)) { /* the read fills it */
		free(x);
		r->res = -ENOMEM;
		kv_complete(sh->w, r);
		return;
	}
	x->type = IO_READ;
	x->sh = sh;
	x->req = r;
	x->seg = e->seg;
	x->segseq = sh->segs[e->seg].seq;
	x->off = e->off - from;
	x->len = e->len;
	sn_io_read(&io, x->buf, to - from, kv_seg_off(sh, e->seg) + from, (uintptr_t)x);
	if ((err = submit(sh->w, &io))) {
		free(x->buf);
		free(x);
		r->res = err;
		kv_complete(sh->w, r);
		return;
	}
	/* While the cache has room, the miss also reads the record's whole segment into it,
	 * so that the gets after it are served from memory: after a restart the cache starts
	 * empty, and writes alone would never fill it with the older data. Full, it keeps
	 * what it has (a miss is one small read, never a segment's worth). */
	if (sh->cached_bytes + sh->loading_bytes + kv->sb.segment_size <= sh->cache_budget)
		(void)kv_shard_load(sh, e->seg, 1); /* a busy queue, no memory: a later miss */
}

int kv_shard_get_now(struct kv_shard *sh, uint64_t hash, const void *key, uint32_t klen,
                     const unsigned char **recp, const struct sn_idx_ent **ep)
{
	const struct sn_idx_ent *e;
	struct kv_seg *s;
	int err;

	if (sh->space_head) /* earlier writes wait for space: stay behind them */
		return KV_PARK;
	e = sn_idx_find(&sh->idx, hash, key, klen);
	sh->gets++;
	if (!e || e->tomb)
		return -ENOENT;
	s = &sh->segs[e->seg];
	if (!s->img) {
		sh->misses++;
		*ep = e;
		return KV_MISS;
	}
	s->ref = 1;
	sh->hits++;
	/* A cached image is memory we wrote or checked, unless it came back from the device
	 * unchecked; the mapping is the medium: check it. */
	if ((sh->kv->map || e->off < s->check_below) &&
	    (err = check_record(sh, s->seq, s->img + e->off, e->len, key, klen))) {
		sh->corrupt++;
		return sn__err(err, "shard %u: record at segment %u offset %u fails its checksum",
		               sh->id, e->seg, e->off);
	}
	*recp = s->img + e->off;
	return 0;
}

/* Start the record a get of key would read (its cached image) on its way into the
 * cache: the index slot should be there or on its way already (sn_idx_prefetch). */
void kv_shard_prefetch_rec(struct kv_shard *sh, uint64_t hash, const void *key, uint32_t klen)
{
	const struct sn_idx_ent *e = sn_idx_find(&sh->idx, hash, key, klen);
	const unsigned char *rec;

	if (!e || e->tomb || !sh->segs[e->seg].img)
		return;
	rec = sh->segs[e->seg].img + e->off;
	for (uint32_t o = 0; o < e->len; o += 64)
		__builtin_prefetch(rec + o);
	__builtin_prefetch(rec + e->len - 1);
}

/* Finish r after kv_shard_get_now() said res (rec, e: what it found). */
void kv_shard_get_done(struct kv_shard *sh, struct kv_req *r, int res, const unsigned char *rec,
                       const struct sn_idx_ent *e)
{
	if (res == KV_MISS) {
		read_miss(sh, r, e);
		return;
	}
	if (res == KV_PARK) {
		space_wait(sh, r);
		return;
	}
	if (res)
		r->res = res;
	else
		take_value(r, rec);
	kv_complete(sh->w, r);
}

static void exec_get(struct kv_shard *sh, struct kv_req *r)
{
	const struct sn_idx_ent *e = NULL;
	const unsigned char *rec = NULL;
	int res = kv_shard_get_now(sh, r->hash, r->data, r->klen, &rec, &e);

	kv_shard_get_done(sh, r, res, rec, e);
}

void kv_shard_exec(struct kv_shard *sh, struct kv_req *r)
{
	switch (r->op) {
	case KV_PUT:
	case KV_DEL:
		exec_write(sh, r);
		break;
	case KV_GET:
		exec_get(sh, r);
		break;
	case KV_SYNC:
		if (sh->space_head) { /* it covers the writes waiting for space: after them */
			space_wait(sh, r);
			break;
		}
		sh->syncs++;
		kv_shard_wait_durable(sh, r);
		break;
	default:
		r->res = -EINVAL;
		kv_complete(sh->w, r);
	}
}

/* ---- completions of the worker's queue ---- */

static void read_done(struct kv_io *x, int64_t res)
{
	struct kv_shard *sh = x->sh;
	struct kv_req *r = x->req;
	struct sn_idx_ent *e = sn_idx_find(&sh->idx, r->hash, r->data, r->klen);

	if (res < 0) {
		r->res = sn__err((int)res, "shard %u: reading a record: %s", sh->id,
		                 sn_strerror((int)res));
	} else if (!e || e->seg != x->seg || sh->segs[x->seg].seq != x->segseq) {
		/* The key moved (overwritten, compacted) while we read: look again. */
		kv_shard_exec(sh, r);
		sh->gets--;
		return;
	} else if ((r->res = check_record(sh, x->segseq, x->buf + x->off, x->len, r->data,
	                                  r->klen))) {
		sh->corrupt++;
		sn__err(r->res, "shard %u: record at segment %u offset %u fails its checksum",
		        sh->id, x->seg, e->off);
	} else {
		take_value(r, x->buf + x->off);
	}
	kv_complete(sh->w, r);
}

/* One piece of a whole-segment read arrived; the last one installs the image. */
static void load_done(struct kv_io *x, int64_t res)
{
	struct kv_shard *sh = x->sh;
	struct kv_seg *s = &sh->segs[x->seg];
	struct kv_load *l = x->load;

	if (res < 0 && !l->err)
		l->err = (int)res;
	if (--l->pending)
		return;
	s->loading = 0;
	sh->loading_bytes -= sh->kv->sb.segment_size;
	if (!l->err && s->seq == x->segseq && !s->img) {
		s->img = l->buf;
		s->check_below = s->used; /* read back, not checked: gets check each record */
		sh->cached_bytes += sh->kv->sb.segment_size;
		kv_compact_loaded(sh);
	} else {
		if (l->err && !l->warm)
			s->nocompact = KV_NOCOMPACT_BAD;
		kv_img_free(sh->kv, l->buf);
		kv_compact_loaded(sh); /* pick another victim, or finish */
	}
	free(l);
}

/* Read segment seg whole into the cache, asynchronously: for compaction, or (warm) for a
 * read miss while the cache has room. */
int kv_shard_load(struct kv_shard *sh, uint32_t seg, int warm)
{
	struct sn_kv *kv = sh->kv;
	uint32_t size = kv->sb.segment_size, chunk = 1u << 20;
	struct kv_seg *s = &sh->segs[seg];
	struct kv_load *l;

	if (s->loading || s->img)
		return 0;
	if (kv->info.max_transfer_bytes && kv->info.max_transfer_bytes < chunk)
		chunk = kv->info.max_transfer_bytes & ~(kv->sb.block_size - 1);
	if (sh->w->q_used + size / chunk + 32 >= sh->w->q_depth)
		return 0; /* the queue is busy: a later step tries again */
	kv_shard_cache_trim(sh, seg);
	l = calloc(1, sizeof(*l));
	if (!l || !(l->buf = kv_img_alloc(kv))) {
		free(l);
		return -ENOMEM;
	}
	s->loading = 1;
	sh->loading_bytes += size;
	l->warm = warm;
	for (uint32_t o = 0; o < size; o += chunk) {
		struct kv_io *x = calloc(1, sizeof(*x));
		struct sn_io io;

		if (!x) {
			l->err = -ENOMEM;
			break;
		}
		x->type = IO_LOAD;
		x->sh = sh;
		x->seg = seg;
		x->segseq = s->seq;
		x->load = l;
		sn_io_read(&io, l->buf + o, size - o < chunk ? size - o : chunk,
		           kv_seg_off(sh, seg) + o, (uintptr_t)x);
		if (submit(sh->w, &io)) {
			free(x);
			l->err = -EIO;
			break;
		}
		l->pending++;
	}
	if (!l->pending) {
		s->loading = 0;
		sh->loading_bytes -= size;
		kv_img_free(sh->kv, l->buf);
		free(l);
		return -EIO;
	}
	return 0;
}

void kv_shard_io_done(struct kv_worker *w, const struct sn_cqe *cqe, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct kv_io *x = (struct kv_io *)(uintptr_t)cqe[i].user_data;
		struct kv_shard *sh = x->sh;

		w->q_used--;
		switch (x->type) {
		case IO_ROUND_WRITE:
			if (cqe[i].res < 0 && !sh->round_err)
				sh->round_err = (int)cqe[i].res;
			if (--sh->round_ios == 0) {
				if (sh->round_err) {
					sh->round_active = 0;
					round_fail(sh, sh->round_err);
				} else {
					round_flush(sh);
				}
			}
			break;
		case IO_FLUSH:
			w->flush_busy = 0;
			if (cqe[i].res < 0) {
				worker_flush_fail(w, x->next, (int)cqe[i].res);
				break;
			}
			for (struct kv_io *c = x->next, *next; c; c = next) {
				next = c->next;
				round_done(c->sh, c->segseq, c->off);
				free(c);
			}
			worker_flush(w);
			break;
		case IO_READ:
			read_done(x, cqe[i].res);
			free(x->buf);
			break;
		case IO_LOAD:
			load_done(x, cqe[i].res);
			break;
		}
		free(x);
	}
	worker_flush(w); /* (one that found the queue full) */
	/* Reads that waited for queue room; compaction steps and rounds that did. */
	for (unsigned i = 0; i < w->nown; i++) {
		struct kv_shard *sh = &w->kv->shards[w->own[i]];
		struct kv_req *r = sh->read_wait;

		if (sh->round_wants_room) {
			sh->round_wants_room = 0;
			kv_shard_round_kick(sh);
		}

		if (sh->space_head && !sh->compacting)
			kv_compact_maybe(sh);

		sh->read_wait = NULL;
		while (r) {
			struct kv_req *next = r->next;

			kv_shard_exec(sh, r);
			sh->gets--;
			r = next;
		}
	}
}

/* ---- lifecycle ---- */

static void round_task_fn(void *arg)
{
	round_task(arg);
}

int kv_shard_init(struct kv_shard *sh)
{
	struct sn_kv *kv = sh->kv;

	sh->segs = calloc(sh->nsegs, sizeof(*sh->segs));
	if (!sh->segs)
		return sn__err(-ENOMEM, "out of memory");
	sh->nfree = sh->nsegs;
	sh->waiters_tail = &sh->waiters;
	sh->space_tail = &sh->space_head;
	sh->round_task = (struct sn_rt_task){ round_task_fn, sh, NULL, 0 };
	sh->next_segseq = 1;
	sh->next_recseq = 1;
	sh->head = UINT32_MAX;
	sh->compact_seg = UINT32_MAX;
	kv_compact_init(sh);
	for (uint32_t i = 0; kv->map && i < sh->nsegs; i++)
		kv_shard_img(sh, i); /* the mapping: every segment is "cached" */
	sh->cache_budget = kv->opts.cache_bytes / kv->sb.shards;
	if (sh->cache_budget < 2ull * kv->sb.segment_size)
		sh->cache_budget = 2ull * kv->sb.segment_size;
	if (sn_idx_init(&sh->idx, 1024))
		return sn__err(-ENOMEM, "out of memory");
	if (kv->opts.sync == SN_KV_SYNC_INTERVAL)
		sn_rt_timer_arm(&sh->sync_timer, (uint64_t)kv->opts.sync_interval_us * 1000,
		                sync_tick, sh);
	return 0;
}

void kv_shard_fini(struct kv_shard *sh)
{
	sn_rt_timer_cancel(&sh->sync_timer);
	kv_shard_recover_free(sh); /* a recovery that failed between its phases */
	/* Batch records held by a recovery that failed before applying them. */
	for (size_t i = 0; i < sh->nparts; i++)
		free(sh->parts[i].key);
	free(sh->parts);
	sh->parts = NULL;
	sh->nparts = 0;
	for (uint32_t i = 0; sh->segs && i < sh->nsegs; i++) {
		if (!sh->kv->map)
			kv_img_free(sh->kv, sh->segs[i].img);
		free(sh->segs[i].batches);
		free(sh->segs[i].clear_blk);
	}
	free(sh->hdr_blk);
	sh->hdr_blk = NULL;
	free(sh->segs);
	sh->segs = NULL;
	sn_idx_free(&sh->idx);
}

/*
 * Every live key of the shard with its record length, for sn_kv_scan: a buffer of
 * (uint16 klen, key) entries. The caller then fetches values by key.
 */
int kv_shard_scan_keys(struct kv_shard *sh, unsigned char **bufp, size_t *lenp)
{
	size_t len = 0, cap = 4096;
	unsigned char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	sn_idx_settle(&sh->idx); /* every entry in idx.t */
	for (uint64_t i = 0; i <= sh->idx.mask; i++) {
		const struct sn_idx_ent *e = &sh->idx.t[i];
		uint16_t kl = e->klen;

		if (!e->hash || e->tomb)
			continue;
		if (len + 2 + kl > cap) {
			unsigned char *nb;

			while (len + 2 + kl > cap)
				cap *= 2;
			if (!(nb = realloc(buf, cap))) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		memcpy(buf + len, &kl, 2);
		memcpy(buf + len + 2, sn_idx_key(e), kl);
		len += 2 + kl;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}
