/* SPDX-License-Identifier: MIT */
/*
 * compact.c — reclaiming space: the owning worker copies the live records of a mostly-dead
 * sealed segment to the head (as new records) a slice at a time, from a deferred task, so
 * foreground requests interleave. The segment is freed by later rounds: its header is
 * cleared once the copies are durable (shard.c).
 *
 * A delete record is dropped instead of copied when its segment is the oldest one still
 * on disk: no older record of the key can come back then. Compaction waits while a batch
 * is in flight on the shard (records it replaced must survive until it commits).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"
#include "kv_impl.h"

#define SLICE 64 /* records per step */

static uint32_t pick_victim(struct kv_shard *sh, int force)
{
	unsigned pct = sh->kv->opts.compact_pct;
	uint32_t best = UINT32_MAX;
	uint64_t best_live = 0, best_used = 1;

	for (uint32_t i = 0; i < sh->nsegs; i++) {
		const struct kv_seg *s = &sh->segs[i];
		uint64_t data = s->used - sizeof(struct sn_kv_seghdr);
		/* Forced, a segment of live records and commits would be copied round and
		 * round while its batches' records stay: count commits as kept there. */
		uint64_t live = s->live + (force ? s->commits : 0);

		if (s->state != SEG_SEALED || kv_seg_dirty(s) || s->nocompact || live >= data)
			continue;
		if (!force && live * 100 > (uint64_t)pct * data)
			continue;
		/* Least live share first. */
		if (best == UINT32_MAX || live * best_used < best_live * data) {
			best = i;
			best_live = live;
			best_used = data;
		}
	}
	return best;
}

static int oldest_on_disk(const struct kv_shard *sh, uint32_t seg)
{
	uint64_t seq = sh->segs[seg].seq;

	for (uint32_t i = 0; i < sh->nsegs; i++)
		if (sh->segs[i].state != SEG_FREE && sh->segs[i].state != SEG_CKPT &&
		    sh->segs[i].seq < seq)
			return 0;
	return 1;
}

/* Will a round or a compaction free a segment soon? (Then a full shard makes writers
 * wait instead of failing.) */
int kv_space_coming(struct kv_shard *sh)
{
	return !sh->failed &&
	       (sh->round_active || sh->flushing || sh->unsynced_seals || sh->compacting ||
	        sh->ncompacted || pick_victim(sh, 1) != UINT32_MAX);
}

/* v's first block as its clearing will write it (struct kv_seg.clear_blk). */
static int clear_block(struct kv_shard *sh, struct kv_seg *v)
{
	uint32_t bs = sh->kv->sb.block_size;
	void *b;

	if (posix_memalign(&b, 4096, bs))
		return -ENOMEM;
	memcpy(b, v->img, bs);
	memset(b, 0, sizeof(struct sn_kv_seghdr));
	free(v->clear_blk);
	v->clear_blk = b;
	return 0;
}

static void finish(struct kv_shard *sh)
{
	struct kv_seg *v = &sh->segs[sh->compact_seg];
	struct kv_seg *h = &sh->segs[sh->head];

	/* Damage with no valid record after it stopped the sweep short of the end, or a live
	 * record (one the index points to, a get finds it corrupt) is in damage it skipped:
	 * keep the segment. Damage naming a batch other segments hold records of: keep it
	 * for now. Out of memory for the clearing: leave it for now. */
	if (sh->compact_off < v->used || v->live)
		v->nocompact = KV_NOCOMPACT_BAD;
	else if (sh->compact_keep || (!sh->kv->map && clear_block(sh, v)))
		v->nocompact = KV_NOCOMPACT_LATER;
	if (!v->nocompact) {
		v->state = SEG_COMPACTED;
		sh->ncompacted++;
		v->zero_after_seq = h->seq;
		v->zero_after_pos = h->used;
		sh->compactions++;
	}
	sh->compact_seg = UINT32_MAX;
	sh->compacting = 0;
	kv_shard_round_kick(sh);
	sn_rt_defer(&sh->compact_task); /* the next victim, if any */
}

/* Compaction gave up on a segment: parked writes may have to fail now. */
static void gave_up(struct kv_shard *sh)
{
	if (sh->space_head && !kv_space_coming(sh))
		kv_shard_space_retry(sh);
	/* sn_kv_compact() waits: go on to the next victim, or release it (a failed shard). */
	if (sh->compact_done)
		sn_rt_defer(&sh->compact_task);
}

struct held_ctx {
	struct kv_shard *sh;
	const struct kv_seg *v;
};

/* Damage in v names batch id: while other segments hold records of it, v stays, or a
 * later recovery would apply them without the damaged one (recovery leaves such a batch
 * out because the damage names it; docs/format.md). */
static int held_elsewhere(void *arg, uint64_t id)
{
	struct held_ctx *c = arg;
	uint64_t here = 0, n = kv_batch_segments(c->sh->kv, id);

	for (uint32_t i = 0; i < c->v->nbatches && !here; i++)
		here = c->v->batches[i] == id;
	if (n > here)
		c->sh->compact_keep = 1;
	return 0;
}

/* Copy (or drop) one live record at v's offset off; returns the bytes to go on by (its
 * length, or those of damage skipped), 0 at the end. */
static uint32_t one_record(struct kv_shard *sh, uint32_t vi, uint32_t off, int *stop)
{
	struct kv_seg *v = &sh->segs[vi];
	const unsigned char *p = v->img + off;
	const struct sn_kv_rechdr *r = (const struct sn_kv_rechdr *)p;
	uint32_t len, seg, noff, next;
	const unsigned char *key;
	struct sn_idx_ent *e;
	unsigned type;
	int err;

	if (off + sizeof(*r) > v->used)
		return 0;
	/* An image read back from the device is checked here. Anything but a valid record
	 * before `used` is damage (recovery resynced past it, or a get will find it): go on
	 * at the next valid record, as recovery does. What the damage held is lost either
	 * way; a live record in it keeps the segment (finish). */
	if (!(len = kv_rec_valid(sh, v, off, v->used))) {
		sh->corrupt++;
		next = kv_rec_resync(sh, v, off, v->used, sh->compact_seq, &sh->compact_budget);
		if (next)
			kv_damage_batches(v, off, next, held_elsewhere,
			                  &(struct held_ctx){ sh, v });
		return next ? next - off : 0;
	}
	sh->compact_seq = r->seq;
	key = p + sizeof(*r) + sn_kv_rec_extra(r->type);
	if (r->type == SN_KV_REC_COMMIT) {
		uint64_t batch;

		/* A commit is needed while a segment on disk holds a record of its batch
		 * (recovery applies one only with its commit). Even a dead one: what
		 * replaced it may not be durable yet, and a crash would bring the batch
		 * record back without its commit. None left: drop it. */
		memcpy(&batch, p + sizeof(*r), 8);
		if (!kv_batch_needed(sh->kv, batch))
			return len;
		type = SN_KV_REC_COMMIT;
		e = NULL;
	} else {
		e = sn_idx_find(&sh->idx, sn_kv_hash(key, r->klen), key, r->klen);
		if (!e || e->seg != vi || e->off != off)
			return len; /* dead */
		type = r->type == SN_KV_REC_BPUT   ? SN_KV_REC_PUT
		       : r->type == SN_KV_REC_BDEL ? SN_KV_REC_DEL
		                                   : r->type;
		if (type == SN_KV_REC_DEL && oldest_on_disk(sh, vi)) {
			kv_shard_index_drop(sh, e);
			return len;
		}
	}
	sh->compact_appending = 1;
	err = kv_shard_append(sh, type, key, r->klen, key + r->klen, r->vlen,
	                      type == SN_KV_REC_COMMIT ? p + sizeof(*r) : NULL, &seg, &noff);
	sh->compact_appending = 0;
	if (err) {
		*stop = 1;
		return 0;
	}
	sh->compacted_bytes += len;
	if (e)
		kv_shard_index_set(sh, e, type, seg, noff, sn_kv_rec_len(type, r->klen, r->vlen));
	return len;
}

static void step(void *arg)
{
	struct kv_shard *sh = arg;
	int stop = 0;

	if (sh->closed)
		return;
	if (!sh->compacting && sh->failed) { /* nothing more will be written here */
		if (sh->compact_done) {
			sn_rt_latch_done(sh->compact_done);
			sh->compact_done = NULL;
		}
		return;
	}
	/* Not while a batch's records here wait for its commit, not even halfway through a
	 * segment: a copy lands after them in the log, and would win over them when the
	 * batch is applied (and in recovery) though it holds an older value.
	 * kv_compact_maybe() runs again when the batch is decided. */
	if (sh->batches_inflight)
		return;
	if (!sh->compacting) {
		uint32_t v;

		v = pick_victim(sh, sh->compact_force || sh->space_head);
		if (v == UINT32_MAX && sh->space_head && !sh->round_active && !sh->flushing &&
		    !sh->ncompacted && !sh->unsynced_seals) {
			kv_shard_space_retry(sh); /* nothing will free space: they fail */
			return;
		}
		/* Background passes stop once space is no longer short; sn_kv_compact()
		 * (compact_done set) goes through every segment under compact_pct. */
		if (v == UINT32_MAX ||
		    (!sh->compact_force && !sh->compact_done && !kv_low_on_space(sh))) {
			for (uint32_t i = 0; sh->compact_done && i < sh->nsegs; i++)
				if (sh->segs[i].state == SEG_COMPACTED ||
				    sh->segs[i].state == SEG_ZEROING ||
				    (sh->segs[i].state == SEG_SEALED &&
				     kv_seg_dirty(&sh->segs[i]) && !sh->segs[i].nocompact)) {
					/* Wait until the rounds have freed them, or made sealed
					 * ones durable (candidates then: the round's end runs
					 * this again). */
					kv_shard_round_kick(sh);
					return;
				}
			sh->compact_force = 0;
			if (sh->compact_done) {
				sn_rt_latch_done(sh->compact_done);
				sh->compact_done = NULL;
			}
			return;
		}
		if (!sh->segs[v].img) {
			if (kv_shard_load(sh, v, 0)) { /* compaction resumes when it is read */
				sh->segs[v].nocompact = KV_NOCOMPACT_LATER;
				gave_up(sh);
			}
			return;
		}
		sh->compacting = 1;
		sh->compact_seg = v;
		sh->compact_off = sizeof(struct sn_kv_seghdr);
		sh->compact_seq = 0;
		sh->compact_budget = 4ull * sh->kv->sb.segment_size;
		sh->compact_keep = 0;
	}
	for (int i = 0; i < SLICE && !stop; i++) {
		uint32_t len = one_record(sh, sh->compact_seg, sh->compact_off, &stop);

		if (!len) {
			if (stop) { /* no room even for the copies: give up on this one */
				sh->segs[sh->compact_seg].nocompact = KV_NOCOMPACT_LATER;
				sh->compact_seg = UINT32_MAX;
				sh->compacting = 0;
				gave_up(sh);
				return;
			}
			finish(sh);
			return;
		}
		sh->compact_off += len;
	}
	sn_rt_defer(&sh->compact_task);
}

void kv_compact_init(struct kv_shard *sh)
{
	sh->compact_task = (struct sn_rt_task){ step, sh, NULL, 0 };
}

void kv_compact_maybe(struct kv_shard *sh)
{
	if (sh->kv->opts.readonly)
		return;
	if (sh->compact_done || sh->compacting || kv_low_on_space(sh))
		sn_rt_defer(&sh->compact_task);
}

void kv_compact_start(struct kv_shard *sh, int force, struct sn_rt_latch *done)
{
	sh->compact_force = force;
	if (sh->compact_done) /* an earlier caller: release it now */
		sn_rt_latch_done(sh->compact_done);
	sh->compact_done = done;
	sn_rt_defer(&sh->compact_task);
}

/* A segment read for compaction arrived. */
void kv_compact_loaded(struct kv_shard *sh)
{
	sn_rt_defer(&sh->compact_task);
}
