/* SPDX-License-Identifier: MIT */
/*
 * recover.c — opening a shard: read every segment header, scan the valid segments in
 * sequence order and rebuild the index from their records (later records win), stop a
 * segment at its first record that fails its checksum, and make the newest segment the
 * head again. Runs on the shard's worker at open, shards in parallel; blocking reads are
 * fine here because the store serves nothing yet.
 *
 * A bad record in the newest segment is a torn tail (writes never made durable: shard.c
 * makes older segments durable first): the tail is cut, zeroed on disk, and reported;
 * unless the newest index checkpoint says records reached past it (they were durable):
 * then it is corruption, as in an older segment. A read-only open cuts in memory only.
 * A bad record in an older segment (or zeros where a valid record follows) is corruption:
 * counted, and the scan resumes at the next valid record of the segment's present life
 * (resync). Batch records wait until every shard is scanned (kv_shard_apply_batches).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../util/crc32c.h"
#include "../util/util.h"
#include "kv_impl.h"

struct order {
	uint64_t seq;
	uint32_t idx;
};

static int cmp_order(const void *a, const void *b)
{
	const struct order *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int header_valid(const struct kv_shard *sh, const struct sn_kv_seghdr *h)
{
	struct sn_kv_seghdr c = *h;

	c.crc = 0;
	return h->magic == SN_KV_SEG_MAGIC && sn_crc32c(0, &c, sizeof(c)) == h->crc &&
	       !memcmp(h->uuid, sh->kv->sb.uuid, sizeof(h->uuid)) && h->shard == sh->id &&
	       h->seq != 0 && h->seq < SN_KV_SEQ_LIMIT; /* (room to count on without a wrap) */
}

static int stash_part(struct kv_shard *sh, const struct sn_kv_rechdr *r, uint32_t seg, uint32_t off,
                      uint32_t len)
{
	const unsigned char *p = (const unsigned char *)r;
	struct kv_part *k;

	if (sh->nparts == sh->parts_cap) {
		size_t cap = sh->parts_cap ? 2 * sh->parts_cap : 64;
		struct kv_part *a = realloc(sh->parts, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		sh->parts = a;
		sh->parts_cap = cap;
	}
	k = &sh->parts[sh->nparts];
	k->key = malloc(r->klen ? r->klen : 1);
	if (!k->key)
		return -ENOMEM;
	memcpy(&k->batch, p + sizeof(*r), 8);
	kv_seg_note_batch(sh, seg, k->batch);
	memcpy(k->key, p + sizeof(*r) + 8, r->klen);
	k->klen = r->klen;
	k->hash = sn_kv_hash(k->key, r->klen);
	k->seg = seg;
	k->off = off;
	k->len = len;
	k->type = r->type;
	sh->nparts++;
	return 0;
}

/* Add id to one of the store's lists of batch ids (recovery runs shards in parallel). */
static int add_id(struct sn_kv *kv, uint64_t **list, size_t *n, size_t *cap, uint64_t id)
{
	int err = 0;

	pthread_mutex_lock(&kv->batch_lock);
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		uint64_t *a = realloc(*list, c * sizeof(*a));

		if (a) {
			*list = a;
			*cap = c;
		} else {
			err = sn__err(-ENOMEM, "out of memory");
		}
	}
	if (!err)
		(*list)[(*n)++] = id;
	pthread_mutex_unlock(&kv->batch_lock);
	return err;
}

static int add_commit(struct sn_kv *kv, const unsigned char *extra)
{
	uint64_t id;

	memcpy(&id, extra, 8);
	return add_id(kv, &kv->commits, &kv->ncommits, &kv->commits_cap, id);
}

/* The length of the valid record at off of segment s, within its first `end` bytes (the
 * checks of docs/format.md: type, lengths, CRC under the segment's seed), or 0. */
uint32_t kv_rec_valid(const struct kv_shard *sh, const struct kv_seg *s, uint32_t off, uint32_t end)
{
	const unsigned char *p = s->img + off;
	const struct sn_kv_rechdr *r = (const struct sn_kv_rechdr *)p;
	uint32_t len;

	if (off + sizeof(*r) > end || !r->type || r->type > SN_KV_REC_COMMIT)
		return 0;
	len = sn_kv_rec_len(r->type, r->klen, r->vlen);
	if (r->vlen > end || len > end - off || (r->type != SN_KV_REC_COMMIT && !r->klen) ||
	    r->klen > SN_KV_MAX_KEY || r->vlen > sh->kv->max_value ||
	    ((r->type == SN_KV_REC_DEL || r->type == SN_KV_REC_BDEL ||
	      r->type == SN_KV_REC_COMMIT) &&
	     r->vlen) ||
	    (r->type == SN_KV_REC_COMMIT && r->klen) ||
	    sn_crc32c(s->seed, p + 4,
	              sizeof(*r) - 4 + sn_kv_rec_extra(r->type) + r->klen + r->vlen) != r->crc)
		return 0;
	return len;
}

/*
 * Where the records of segment s go on after damage at off (a bad record, or zeros where
 * records were): the next offset below `end` holding a valid record of this life of the
 * segment, one numbered above `after` (an earlier life's records are numbered below, and
 * fail the CRC under this life's seed anyway); 0 when none follows. *budget bounds the
 * bytes checksummed for candidates (crafted bytes could otherwise make every offset one);
 * spent, the search gives up.
 */
uint32_t kv_rec_resync(const struct kv_shard *sh, const struct kv_seg *s, uint32_t off,
                       uint32_t end, uint64_t after, uint64_t *budget)
{
	for (uint32_t c = off + 8; c + sizeof(struct sn_kv_rechdr) <= end; c += 8) {
		const struct sn_kv_rechdr *r = (const struct sn_kv_rechdr *)(s->img + c);
		uint32_t len;

		if (!r->type || r->type > SN_KV_REC_COMMIT || r->seq <= after ||
		    r->klen > SN_KV_MAX_KEY || r->vlen > sh->kv->max_value)
			continue;
		len = sn_kv_rec_len(r->type, r->klen, r->vlen);
		if (len > end - c)
			continue;
		if (len > *budget)
			return 0;
		if (kv_rec_valid(sh, s, c, end))
			return c;
		*budget -= len;
	}
	return 0;
}

/* The length a record header claims, in 64 bits: a damaged one can claim anything. */
static uint64_t hdr_len(const struct sn_kv_rechdr *r)
{
	return (sizeof(*r) + sn_kv_rec_extra(r->type) + (uint64_t)r->klen + r->vlen + 7) & ~7ull;
}

/*
 * The batches damage between off and next of segment s names: the skipped bytes walked as
 * record headers, from off, by each header's length while its type is a record's; fn
 * gets the id of each batch record header (a damaged header can name a wrong batch, and
 * zeros name none). 0, or the first error of fn.
 */
int kv_damage_batches(const struct kv_seg *s, uint32_t off, uint32_t next,
                      int (*fn)(void *arg, uint64_t id), void *arg)
{
	while (off + sizeof(struct sn_kv_rechdr) + 8 <= next) {
		const struct sn_kv_rechdr *r = (const struct sn_kv_rechdr *)(s->img + off);
		uint64_t len = hdr_len(r);
		uint64_t id;
		int err;

		if (!r->type || r->type > SN_KV_REC_COMMIT)
			break; /* no header: nothing more can be read */
		if (r->type == SN_KV_REC_BPUT || r->type == SN_KV_REC_BDEL) {
			memcpy(&id, (const unsigned char *)r + sizeof(*r), 8);
			if ((err = fn(arg, id)))
				return err;
		}
		off += (uint32_t)(len < next - off ? len : next - off);
	}
	return 0;
}

struct damage_ctx {
	struct kv_shard *sh;
	uint32_t seg;
};

/* A batch lost a record to damage in segment c->seg: it is applied nowhere, and the
 * segment counts as holding its records (compaction keeps the damage while the batch's
 * other records are on disk: a later recovery must see it again). */
static int damaged_batch(void *arg, uint64_t id)
{
	struct damage_ctx *c = arg;
	struct sn_kv *kv = c->sh->kv;

	kv_seg_note_batch(c->sh, c->seg, id);
	return add_id(kv, &kv->damaged, &kv->ndamaged, &kv->damaged_cap, id);
}

/* Scan segment i's image from off; returns the end of its valid records (*clean: a zero
 * header or the segment's end stopped the scan, not a bad record). A stop before
 * `damaged_below` is damage, not the log's end, when a valid record follows it: the scan
 * goes on there, and the shard counts one corrupt record for the bytes it skipped. */
static int scan(struct kv_shard *sh, uint32_t i, uint32_t off, uint32_t damaged_below,
                uint32_t *endp, int *clean, unsigned *skips)
{
	struct kv_seg *s = &sh->segs[i];
	uint32_t size = sh->kv->sb.segment_size;
	static const unsigned char zero[sizeof(struct sn_kv_rechdr)];
	uint64_t budget = 4ull * size;

	*skips = 0;
	for (;;) {
		const unsigned char *p = s->img + off;
		const struct sn_kv_rechdr *r = (const struct sn_kv_rechdr *)p;
		uint32_t len = 0, next;
		int err, fresh;

		if (off + sizeof(struct sn_kv_rechdr) <= size) {
			*clean = !r->type && !memcmp(p, zero, sizeof(zero));
			len = *clean ? 0 : kv_rec_valid(sh, s, off, size);
		} else {
			*clean = 1;
		}
		if (!len) {
			if (off >= damaged_below ||
			    !(next = kv_rec_resync(sh, s, off, size, sh->next_recseq - 1, &budget)))
				break;
			if ((err = kv_damage_batches(s, off, next, damaged_batch,
			                             &(struct damage_ctx){ sh, i })))
				return err;
			sh->corrupt++;
			(*skips)++;
			off = next;
			continue;
		}
		if (r->seq >= sh->next_recseq)
			sh->next_recseq = r->seq + 1;
		if (r->type == SN_KV_REC_PUT || r->type == SN_KV_REC_DEL) {
			const unsigned char *key = p + sizeof(*r);
			struct sn_idx_ent *e = sn_idx_upsert(&sh->idx, sn_kv_hash(key, r->klen),
			                                     key, r->klen, &fresh);

			if (!e)
				return sn__err(-ENOMEM, "out of memory for the index");
			kv_shard_index_set(sh, e, r->type, i, off, len);
		} else if (r->type == SN_KV_REC_COMMIT) {
			s->commits += len;
			if ((err = add_commit(sh->kv, p + sizeof(*r))))
				return err;
		} else if ((err = stash_part(sh, r, i, off, len))) {
			return err;
		}
		sh->recovered++;
		off += len;
	}
	*endp = off;
	return 0;
}

/*
 * The bytes after end (where the newest segment's scan stopped on a bad record) that
 * records of this life of the segment take: walk the headers from end while they carry
 * sequence numbers above `after`, as every record appended after the last good one does,
 * whatever else is wrong with them. Zeros, bytes that are no header (no record type: an
 * earlier life's value, say) and an earlier life's record (a reused segment's: all its
 * numbers lie below) end the walk; a length past the segment takes the rest.
 */
static uint32_t torn_extent(const struct kv_shard *sh, const unsigned char *img, uint32_t end,
                            uint32_t tail, uint64_t after)
{
	uint32_t size = sh->kv->sb.segment_size, off = end;

	while (off < tail && off + sizeof(struct sn_kv_rechdr) <= size) {
		const struct sn_kv_rechdr *r = (const struct sn_kv_rechdr *)(img + off);
		uint64_t len = hdr_len(r);

		if (!r->type || r->type > SN_KV_REC_COMMIT || r->seq <= after)
			break;
		if (len > size - off)
			return tail - end;
		off += (uint32_t)len;
	}
	return (off < tail ? off : tail) - end;
}

/* What the first phase of a shard's recovery found, for the second. */
struct kv_recovery {
	struct order *ord; /* the valid segments, oldest first */
	uint32_t n;
	uint64_t *disk_seq; /* per segment: its valid header's sequence number, or 0 */
	struct kv_ckpt_found ck;
	uint64_t ns; /* time spent */
};

void kv_shard_recover_free(struct kv_shard *sh)
{
	if (!sh->rec)
		return;
	free(sh->rec->ord);
	free(sh->rec->disk_seq);
	kv_ckpt_found_free(&sh->rec->ck);
	free(sh->rec);
	sh->rec = NULL;
}

/*
 * Phase 1: read every segment header, and find the newest whole, valid index checkpoint
 * (sh->rec->ck). The store loads checkpoints only when every shard found one of the
 * same close (kv->ckpt_use): a batch's records and its commit can be on different
 * shards, and one shard's checkpoint from an older close could cover a commit whose
 * batch record another shard's log tail holds.
 */
int kv_shard_recover_headers(struct kv_shard *sh)
{
	struct sn_kv *kv = sh->kv;
	uint32_t bs = kv->sb.block_size, n = 0, nck = 0;
	uint64_t t0 = sn__now_ns();
	struct kv_recovery *rc = calloc(1, sizeof(*rc));
	struct order *ord = calloc(sh->nsegs, sizeof(*ord));
	struct kv_ckpt_part *ck = calloc(sh->nsegs, sizeof(*ck));
	uint64_t *disk_seq = calloc(sh->nsegs, sizeof(*disk_seq));
	unsigned char *hb = NULL;
	int err = 0;

	if (!rc || !ord || !ck || !disk_seq || posix_memalign((void **)&hb, 4096, bs)) {
		free(rc);
		free(ord);
		free(ck);
		free(disk_seq);
		return sn__err(-ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < sh->nsegs && !err; i++) {
		const struct sn_kv_seghdr *h = (const struct sn_kv_seghdr *)hb;

		if ((err = kv_shard_read(sh, hb, kv_seg_off(sh, i), bs)))
			break;
		if (kv_ckpt_header(sh, hb, i, &ck[nck])) {
			if (ck[nck].seq >= sh->next_segseq) /* never reused for a segment */
				sh->next_segseq = ck[nck].seq + 1;
			nck++;
			continue;
		}
		if (!header_valid(sh, h))
			continue;
		disk_seq[i] = h->seq;
		ord[n].seq = h->seq;
		ord[n++].idx = i;
	}
	free(hb);
	if (n)
		qsort(ord, n, sizeof(*ord), cmp_order);
	/* Found even when not loaded (no_checkpoint): what it covers was durable, which tells
	 * a torn tail from corruption (kv_shard_recover). An open that does not load it gets
	 * past one it cannot read (a bad sector, no memory): as if there were none. */
	if (!err && (err = kv_ckpt_find(sh, ck, nck, disk_seq, &rc->ck)) &&
	    kv->opts.no_checkpoint) {
		kv_ckpt_found_free(&rc->ck);
		sn__err_clear();
		err = 0;
	}
	free(ck);
	rc->ord = ord;
	rc->n = n;
	rc->disk_seq = disk_seq;
	sh->rec = rc;
	rc->ns = sn__now_ns() - t0;
	return err;
}

/* After phase 1: 1 and the close that wrote the checkpoint it found, or 0: none. */
int kv_shard_ckpt_close(const struct kv_shard *sh, uint64_t *close_id)
{
	if (!sh->rec || !sh->rec->ck.buf)
		return 0;
	*close_id = sh->rec->ck.close_id;
	return 1;
}

/* Could records follow offset `at` of covered segment i? (Is anything there but zeros?)
 * A recovery that scanned the log, or the "newest full segment" rule, can reopen any
 * segment as the head after the checkpoint was written. */
static int appended(struct kv_shard *sh, uint32_t i, uint32_t at, unsigned char *blk, int *err)
{
	static const unsigned char zero[sizeof(struct sn_kv_rechdr)];
	uint32_t bs = sh->kv->sb.block_size, from = at & ~(bs - 1);

	if (at + sizeof(zero) > sh->kv->sb.segment_size)
		return 0;
	if (sh->kv->map)
		return memcmp(sh->segs[i].img + at, zero, sizeof(zero)) != 0;
	/* blk holds two blocks: a record header can straddle the boundary. */
	if ((*err = kv_shard_read(sh, blk, kv_seg_off(sh, i) + from,
	                          at - from + sizeof(zero) > bs ? 2 * bs : bs)))
		return 0;
	return memcmp(blk + (at - from), zero, sizeof(zero)) != 0;
}

/*
 * Phase 2: load the checkpoint when the store uses them (the segments it covers come
 * back SEG_SEALED, their records up to the recorded end not scanned), then scan the log
 * in segment order: every valid segment whole, or those the checkpoint does not cover
 * whole and the covered ones from their recorded end, where something follows it (the
 * head the checkpoint recorded, or a segment a later recovery reopened as the head).
 */
int kv_shard_recover(struct kv_shard *sh)
{
	struct sn_kv *kv = sh->kv;
	struct kv_recovery *rc = sh->rec;
	struct order *ord = rc->ord;
	uint32_t bs = kv->sb.block_size, size = kv->sb.segment_size, n = rc->n;
	uint32_t ck_head = kv_ckpt_head(&rc->ck);
	uint64_t t0 = sn__now_ns();
	const int ckpt = kv->ckpt_use; /* a checkpoint is loaded, and blk allocated */
	unsigned char *blk = NULL;
	int err = 0;

	if (ckpt && !(err = kv_ckpt_apply(sh, &rc->ck, rc->disk_seq)) &&
	    posix_memalign((void **)&blk, 4096, 2 * bs))
		err = sn__err(-ENOMEM, "out of memory");
	for (uint32_t k = 0; k < n && !err; k++) {
		uint32_t i = ord[k].idx, end = 0, start = sizeof(struct sn_kv_seghdr);
		struct kv_seg *s = &sh->segs[i];
		int clean = 1, last = k + 1 == n;
		unsigned skips;
		uint32_t covered;

		if (ord[k].seq >= sh->next_segseq)
			sh->next_segseq = ord[k].seq + 1;
		/* Only kv_ckpt_apply seals a segment before this loop: covered by the checkpoint.
		 * The head it recorded is scanned from there whatever is there: damage at its
		 * recorded end must not hide the records appended after it (a resync finds
		 * them); another covered segment can have records there only as the head. */
		if (ckpt && s->state == SEG_SEALED) {
			start = s->used;
			if (!last && i != ck_head && !appended(sh, i, start, blk, &err)) {
				if (err)
					break;
				continue;
			}
		} else {
			s->seq = ord[k].seq;
			s->seed = kv_rec_seed(kv, s->seq);
			s->state = SEG_SEALED;
			sh->nfree--;
		}
		if ((err = kv_shard_img(sh, i)) ||
		    (!kv->map && (err = kv_shard_read(sh, s->img, kv_seg_off(sh, i), size))))
			break;
		s->check_below = start; /* the checkpoint's part is checked by gets */
		/* A stop in an older segment, or in the newest one where the checkpoint says
		 * records were durable, is damage when a valid record follows: the scan goes
		 * on there. Past that point the newest segment's stop is its end. */
		covered = last ? kv_ckpt_covered(sh, &rc->ck, i, s->seq) : size;
		if ((err = scan(sh, i, start, covered, &end, &clean, &skips)))
			break;
		s->used = s->written = s->durable = end;
		/* A stop where the checkpoint says records were durable, with none after it,
		 * is no torn write: it is corruption, as in an older segment, and what follows
		 * stays on disk, untouched (a load of the checkpoint serves those records).
		 * The segment stays sealed; a new head follows. */
		if (last && end < covered) {
			last = 0;
			clean = 0;
		}
		if (!last) {
			if (!clean)
				sh->corrupt++; /* no valid record follows: the rest is lost */
		} else {
			/* The newest segment: cut what follows its last valid record, on disk too,
			 * so that no stale record past the cut can ever be read as valid. */
			uint32_t tail = end, from = end & ~(bs - 1);

			for (uint32_t o = size; o > end; o--)
				if (s->img[o - 1]) {
					tail = o;
					break;
				}
			if (tail > end) {
				/* next_recseq - 1: the newest record seen, this segment's last good
				 * one when it has any (its records are the shard's newest). */
				if (!clean)
					sh->torn_bytes += torn_extent(sh, s->img, end, tail,
					                              sh->next_recseq - 1);
				memset(s->img + end, 0, size - end);
				if (kv->opts.readonly)
					; /* cut in memory only */
				else if (kv->map)
					err = sn_dev_persist(kv->dev, s->img + from,
					                     ((tail + bs - 1) & ~(bs - 1)) - from);
				else if (!(err = sn_queue_pwrite(sh->w->q, s->img + from,
				                                 ((tail + bs - 1) & ~(bs - 1)) -
				                                         from,
				                                 kv_seg_off(sh, i) + from)))
					err = sn_queue_flush(sh->w->q);
				if (err)
					err = sn__err(err, "shard %u: clearing a cut log tail: %s",
					              sh->id, sn_strerror(err));
			}
			/* A newest segment the scan resynced in stays sealed: without the
			 * checkpoint a later recovery would take its damage for a torn tail. */
			if (!err && !skips && end + sizeof(struct sn_kv_rechdr) < size) {
				s->state = SEG_HEAD;
				sh->head = i;
			}
		}
		/* Keep what the cache budget allows (the head always). */
		if (!kv->map && sh->cached_bytes > sh->cache_budget && i != sh->head) {
			kv_img_free(kv, s->img);
			s->img = NULL;
			sh->cached_bytes -= size;
		}
	}
	/* Sequence numbers of segments opened after the last durable header may have been
	 * used for data that reached the disk without its header. Never reuse them: a record
	 * left by such a segment would carry the same CRC seed as a new one in the same
	 * place. Within a session a segment is written only once the one before it is
	 * durable, header and all, so the skip covers the newest; and the first head a
	 * session opens past the skip makes its header durable before its records
	 * (hdr_durable), so the next open's skip starts past it. */
	sh->hdr_durable = sh->next_segseq - 1;
	sh->next_segseq += sh->nsegs;
	if (!err && sh->nckpt && kv_low_on_space(sh) && !kv->opts.readonly)
		kv_ckpt_release(sh); /* space is short: the checkpoint gives way */
	if (!err && sh->head == UINT32_MAX && n && !sh->nfree) {
		/* The newest segment is full and nothing is free: open anyway, so deletes and
		 * compaction can make room (puts get -ENOSPC meanwhile). */
		struct kv_seg *s = &sh->segs[ord[n - 1].idx];

		if (!s->img && !(err = kv_shard_img(sh, ord[n - 1].idx))) {
			err = kv_shard_read(sh, s->img, kv_seg_off(sh, ord[n - 1].idx), size);
			/* Its image went for the cache budget: read back, so gets check it. */
			s->check_below = s->used;
		}
		sh->head = ord[n - 1].idx;
		s->state = SEG_HEAD;
	}
	if (!err && sh->head == UINT32_MAX)
		err = kv_shard_open_head(sh);
	if (!err) {
		struct kv_seg *h = &sh->segs[sh->head];

		sh->durable_seg = h->seq;
		sh->durable_pos = h->durable;
	}
	free(blk);
	sh->recovery_ns = rc->ns + sn__now_ns() - t0;
	kv_shard_recover_free(sh);
	return err;
}

/* After every shard was scanned: apply batch records whose batch committed. */
int kv_shard_apply_batches(struct kv_shard *sh)
{
	struct sn_kv *kv = sh->kv;

	for (size_t i = 0; i < sh->nparts; i++) {
		struct kv_part *k = &sh->parts[i];
		struct sn_idx_ent *e;
		int fresh;

		if (!kv->ncommits ||
		    !bsearch(&k->batch, kv->commits, kv->ncommits, sizeof(uint64_t), cmp_u64))
			continue; /* never committed: as if never written */
		e = sn_idx_upsert(&sh->idx, k->hash, k->key, k->klen, &fresh);
		if (!e)
			return sn__err(-ENOMEM, "out of memory for the index");
		/* Log order decides: only a record written later than the part wins. */
		if (fresh || sh->segs[e->seg].seq < sh->segs[k->seg].seq ||
		    (e->seg == k->seg && e->off < k->off))
			kv_shard_index_set(sh, e, k->type, k->seg, k->off, k->len);
	}
	for (size_t i = 0; i < sh->nparts; i++)
		free(sh->parts[i].key);
	free(sh->parts);
	sh->parts = NULL;
	sh->nparts = sh->parts_cap = 0;
	return 0;
}

/* Sort the commits recovery found, less those of damaged batches (once, before
 * kv_shard_apply_batches runs anywhere). */
void kv_commits_sort(struct sn_kv *kv)
{
	size_t n = 0;

	if (kv->ncommits)
		qsort(kv->commits, kv->ncommits, sizeof(uint64_t), cmp_u64);
	if (kv->ndamaged)
		qsort(kv->damaged, kv->ndamaged, sizeof(uint64_t), cmp_u64);
	/* A batch that lost a record to damage is applied nowhere: as if never committed. */
	for (size_t i = 0; i < kv->ncommits; i++)
		if (!kv->ndamaged ||
		    !bsearch(&kv->commits[i], kv->damaged, kv->ndamaged, sizeof(uint64_t), cmp_u64))
			kv->commits[n++] = kv->commits[i];
	kv->ncommits = n;
	free(kv->damaged);
	kv->damaged = NULL;
	kv->ndamaged = kv->damaged_cap = 0;
}
