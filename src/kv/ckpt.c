/* SPDX-License-Identifier: MIT */
/*
 * ckpt.c — the index checkpoint (docs/format.md, "Index checkpoint"). A clean close
 * writes each shard's index and segment table into free segments of the shard; the next
 * open loads the newest complete checkpoint instead of scanning the segments it covers,
 * then scans only the log written after it (kv_shard_recover in recover.c).
 *
 * A checkpoint stays sound however old it is, because recovery checks it against the
 * segments as they are on disk: a segment counts as covered only while it still carries
 * the sequence number the checkpoint recorded (a compacted segment's records were copied
 * to the log's tail before its header was cleared, and a reused one has a newer number),
 * every record written after it is in a newer segment or past the recorded end of a
 * covered one (the head then, or a segment a later recovery reopened as the head), and
 * that tail is replayed over the checkpoint in log order. So the checkpoint
 * needs no clearing when the store runs on: its segments are kept while space is
 * plentiful, and given back as free space (their headers left as they are) when the
 * shard runs short; a crash after that means a full scan at the next open.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../util/crc32c.h"
#include "../util/util.h"
#include "kv_impl.h"

#define CKPT_HDR ((uint32_t)sizeof(struct sn_kv_ckpthdr))

static uint32_t hdr_crc(const struct sn_kv_ckpthdr *h)
{
	struct sn_kv_ckpthdr c = *h;

	c.crc = 0;
	return sn_crc32c(0, &c, sizeof(c));
}

/* ---- writing, at a clean close ---- */

static void put(unsigned char **p, const void *src, size_t len)
{
	if (len)
		memcpy(*p, src, len);
	*p += len;
}

/* The payload: header, segment table, batch ids, entries (format.h). */
static unsigned char *build(struct kv_shard *sh, uint64_t *lenp)
{
	uint64_t len = sizeof(struct sn_kv_ckpt), ids = 0, n = 0;
	struct sn_kv_ckpt c = { 0 };
	unsigned char *buf, *p;

	for (uint32_t i = 0; i < sh->nsegs; i++) {
		const struct kv_seg *s = &sh->segs[i];

		len += sizeof(struct sn_kv_ckpt_seg);
		if (s->seq)
			ids += s->nbatches;
	}
	len += ids * 8;
	sn_idx_settle(&sh->idx); /* every entry in idx.t */
	for (uint64_t i = 0; i <= sh->idx.mask; i++)
		if (sh->idx.t[i].hash) {
			len += sizeof(struct sn_kv_ckpt_ent) + sh->idx.t[i].klen;
			n++;
		}
	if (!(buf = malloc(len)))
		return NULL;
	c.segments = sh->nsegs;
	c.head = sh->head;
	c.head_seq = sh->segs[sh->head].seq;
	c.head_pos = sh->segs[sh->head].used;
	c.next_recseq = sh->next_recseq;
	c.entries = n;
	c.batch_ids = ids;
	c.close_id = sh->kv->close_id;
	p = buf;
	put(&p, &c, sizeof(c));
	for (uint32_t i = 0; i < sh->nsegs; i++) {
		const struct kv_seg *s = &sh->segs[i];
		struct sn_kv_ckpt_seg t = { 0 };

		if (s->seq) {
			t.seq = s->seq;
			t.used = s->used;
			t.commits = s->commits;
			t.nbatches = s->nbatches;
		}
		put(&p, &t, sizeof(t));
	}
	for (uint32_t i = 0; i < sh->nsegs; i++)
		if (sh->segs[i].seq)
			put(&p, sh->segs[i].batches, sh->segs[i].nbatches * 8ull);
	/* In table order: loading inserts them into a table of about the same size almost
	 * in order, instead of all over it. */
	for (uint64_t i = 0; i <= sh->idx.mask; i++) {
		const struct sn_idx_ent *e = &sh->idx.t[i];
		struct sn_kv_ckpt_ent t = { 0 };

		if (!e->hash)
			continue;
		t.seg = e->seg;
		t.off = e->off;
		t.len = e->len;
		t.klen = e->klen;
		t.tomb = e->tomb;
		put(&p, &t, sizeof(t));
		put(&p, sn_idx_key(e), e->klen);
	}
	*lenp = len;
	return buf;
}

int kv_ckpt_write(struct kv_shard *sh)
{
	struct sn_kv *kv = sh->kv;
	uint32_t seg = kv->sb.segment_size, bs = kv->sb.block_size, room = seg - CKPT_HDR;
	uint32_t nparts, part = 0;
	uint64_t total, seq;
	unsigned char *payload, *blk = NULL;
	int err;

	if (sh->failed || sh->w->flush_failed || sh->batches_inflight || sh->head == UINT32_MAX ||
	    !sh->segs)
		return 0; /* not a state to record: the next open scans the log */
	if ((err = kv_shard_flush_all(sh)))
		return sn__err(err, "shard %u: making the log durable at close: %s", sh->id,
		               sn_strerror(err));
	if (!(payload = build(sh, &total)))
		return 0; /* out of memory: no checkpoint, nothing lost */
	nparts = (uint32_t)((total + room - 1) / room);
	if (nparts > sh->nfree || posix_memalign((void **)&blk, 4096, seg)) {
		free(payload); /* no room for it: the next open scans the log */
		return 0;
	}
	seq = sh->next_segseq++;
	for (uint32_t i = 0; i < sh->nsegs && part < nparts && !err; i++) {
		struct sn_kv_ckpthdr *h = (struct sn_kv_ckpthdr *)blk;
		uint64_t from = (uint64_t)part * room;
		uint32_t len = total - from < room ? (uint32_t)(total - from) : room;

		if (sh->segs[i].state != SEG_FREE)
			continue;
		memset(blk, 0, seg);
		h->magic = SN_KV_CKPT_MAGIC;
		memcpy(h->uuid, kv->sb.uuid, sizeof(h->uuid));
		h->seq = seq;
		h->shard = sh->id;
		h->version = SN_KV_FORMAT_VERSION;
		h->part = part++;
		h->nparts = nparts;
		h->len = len;
		h->total = total;
		memcpy(blk + CKPT_HDR, payload + from, len);
		h->payload_crc = sn_crc32c(0, blk + CKPT_HDR, len);
		h->crc = hdr_crc(h);
		err = kv_shard_write(sh, blk, (CKPT_HDR + len + bs - 1) & ~(bs - 1),
		                     kv_seg_off(sh, i));
	}
	if (!err)
		err = sn_queue_flush(sh->w->q);
	free(blk);
	free(payload);
	if (err)
		return sn__err(err, "shard %u: writing the index checkpoint at close: %s", sh->id,
		               sn_strerror(err));
	return 0;
}

/* ---- loading, at open ---- */

/* A checkpoint header recovery found: sanity-checked, its payload not yet read. */
int kv_ckpt_header(const struct kv_shard *sh, const void *blk, uint32_t seg_idx,
                   struct kv_ckpt_part *out)
{
	const struct sn_kv_ckpthdr *h = blk;
	uint32_t room = sh->kv->sb.segment_size - CKPT_HDR;

	if (h->magic != SN_KV_CKPT_MAGIC || hdr_crc(h) != h->crc ||
	    memcmp(h->uuid, sh->kv->sb.uuid, sizeof(h->uuid)) != 0 || h->shard != sh->id ||
	    !h->seq || h->seq >= SN_KV_SEQ_LIMIT || h->version != SN_KV_FORMAT_VERSION ||
	    !h->nparts || h->nparts > sh->nsegs || h->part >= h->nparts || h->len > room || !h->len)
		return 0;
	/* Every part but the last is full; the total says how full the last one is. */
	if (h->part + 1 < h->nparts
	            ? h->len != room || h->total <= (uint64_t)(h->nparts - 1) * room ||
	                      h->total > (uint64_t)h->nparts * room
	            : h->total != (uint64_t)(h->nparts - 1) * room + h->len)
		return 0;
	out->seq = h->seq;
	out->total = h->total;
	out->seg = seg_idx;
	out->part = h->part;
	out->nparts = h->nparts;
	out->len = h->len;
	out->crc = h->payload_crc;
	return 1;
}

/* A reader over the payload: every take is bounds-checked. */
struct cursor {
	const unsigned char *p, *end;
};

static const void *take(struct cursor *c, uint64_t len)
{
	const unsigned char *at = c->p;

	if ((uint64_t)(c->end - c->p) < len)
		return NULL;
	c->p += len;
	return at;
}

/*
 * Check the payload against itself and the segments on disk (disk_seq[i]: the sequence
 * number of segment i's valid header, or 0): 1 when it can be used.
 */
static int valid(const struct kv_shard *sh, const unsigned char *buf, uint64_t total,
                 const uint64_t *disk_seq)
{
	uint32_t size = sh->kv->sb.segment_size;
	struct cursor c = { buf, buf + total };
	const struct sn_kv_ckpt *h = take(&c, sizeof(*h));
	const unsigned char *tab;
	uint64_t ids = 0;

	if (!h || h->segments != sh->nsegs || h->head >= sh->nsegs || !h->head_seq ||
	    h->head_pos < sizeof(struct sn_kv_seghdr) || h->head_pos > size || !h->next_recseq)
		return 0;
	if (!(tab = take(&c, (uint64_t)sh->nsegs * sizeof(struct sn_kv_ckpt_seg))))
		return 0;
	for (uint32_t i = 0; i < sh->nsegs; i++) {
		struct sn_kv_ckpt_seg t;

		memcpy(&t, tab + (uint64_t)i * sizeof(t), sizeof(t));
		if (t.seq > h->head_seq || (i == h->head) != (t.seq == h->head_seq))
			return 0;
		if (t.seq && (t.used < sizeof(struct sn_kv_seghdr) || t.used > size ||
		              t.commits > t.used || (i == h->head && t.used != h->head_pos)))
			return 0;
		if (!t.seq && (t.used || t.commits || t.nbatches))
			return 0;
		/* A segment on disk from before the checkpoint must be one it recorded. */
		if (disk_seq[i] && disk_seq[i] <= h->head_seq && disk_seq[i] != t.seq)
			return 0;
		ids += t.nbatches;
	}
	if (ids != h->batch_ids || !take(&c, ids * 8))
		return 0;
	for (uint64_t n = 0; n < h->entries; n++) {
		const unsigned char *p = take(&c, sizeof(struct sn_kv_ckpt_ent));
		struct sn_kv_ckpt_ent e;
		struct sn_kv_ckpt_seg t;

		if (!p)
			return 0;
		memcpy(&e, p, sizeof(e));
		if (e.seg >= sh->nsegs || !e.klen || e.klen > SN_KV_MAX_KEY || e.tomb > 1 ||
		    !take(&c, e.klen))
			return 0;
		memcpy(&t, tab + (uint64_t)e.seg * sizeof(t), sizeof(t));
		if (!t.seq || e.off < sizeof(struct sn_kv_seghdr) || e.off % 8 || e.len % 8 ||
		    e.len < sizeof(struct sn_kv_rechdr) + e.klen || e.off > t.used ||
		    e.len > t.used - e.off)
			return 0;
	}
	return c.p == c.end;
}

/* Read the checkpoint whose parts are parts[0..n-1] (one of each, sorted by part) and
 * check every part's CRC: 1 and *bufp, 0 when it is damaged, or an error. */
static int read_payload(struct kv_shard *sh, const struct kv_ckpt_part *parts, uint32_t n,
                        unsigned char **bufp)
{
	uint32_t seg = sh->kv->sb.segment_size, bs = sh->kv->sb.block_size;
	uint32_t room = seg - CKPT_HDR;
	unsigned char *buf = malloc(parts[0].total), *blk = NULL;
	int err = 0, ok = 1;

	if (!buf || posix_memalign((void **)&blk, 4096, seg)) {
		free(buf);
		return sn__err(-ENOMEM, "out of memory for the index checkpoint");
	}
	for (uint32_t k = 0; k < n && ok && !err; k++) {
		uint32_t len = (CKPT_HDR + parts[k].len + bs - 1) & ~(bs - 1);

		if ((err = kv_shard_read(sh, blk, kv_seg_off(sh, parts[k].seg), len)))
			break;
		ok = sn_crc32c(0, blk + CKPT_HDR, parts[k].len) == parts[k].crc;
		if (ok)
			memcpy(buf + (uint64_t)k * room, blk + CKPT_HDR, parts[k].len);
	}
	free(blk);
	if (err || !ok) {
		free(buf);
		return err ? err : 0;
	}
	*bufp = buf;
	return 1;
}

static int cmp_part(const void *a, const void *b)
{
	const struct kv_ckpt_part *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq > y->seq ? -1 : 1; /* newest checkpoint first */
	return x->part < y->part ? -1 : x->part > y->part;
}

/* Restore the segment table and the index from a valid payload. */
static int apply(struct kv_shard *sh, const unsigned char *buf, uint64_t total,
                 const uint64_t *disk_seq)
{
	struct cursor c = { buf, buf + total };
	const struct sn_kv_ckpt *h = take(&c, sizeof(*h));
	const unsigned char *tab = take(&c, (uint64_t)sh->nsegs * sizeof(struct sn_kv_ckpt_seg));
	int err;

	for (uint32_t i = 0; i < sh->nsegs; i++) {
		struct kv_seg *s = &sh->segs[i];
		struct sn_kv_ckpt_seg t;
		const unsigned char *ids;

		memcpy(&t, tab + (uint64_t)i * sizeof(t), sizeof(t));
		ids = take(&c, t.nbatches * 8ull);
		if (!t.seq || disk_seq[i] != t.seq)
			continue; /* not covered: compacted since, or reused (then in the tail) */
		s->seq = t.seq;
		s->seed = kv_rec_seed(sh->kv, s->seq);
		s->state = SEG_SEALED;
		s->used = s->written = s->durable = t.used;
		s->commits = t.commits;
		sh->nfree--;
		for (uint32_t b = 0; b < t.nbatches; b++) {
			uint64_t id;

			memcpy(&id, ids + b * 8ull, 8);
			kv_seg_note_batch(sh, i, id);
		}
	}
	sn_idx_free(&sh->idx);
	if ((err = sn_idx_init(&sh->idx, h->entries + h->entries / 8 + 1024)))
		return sn__err(err, "out of memory for the index");
	for (uint64_t n = 0; n < h->entries; n++) {
		struct sn_kv_ckpt_ent e;
		const unsigned char *key;
		struct sn_idx_ent *x;
		int fresh;

		memcpy(&e, take(&c, sizeof(e)), sizeof(e));
		key = take(&c, e.klen);
		if (sh->segs[e.seg].state != SEG_SEALED)
			continue; /* its segment was compacted: the tail has the copy */
		x = sn_idx_upsert(&sh->idx, sn_kv_hash(key, e.klen), key, e.klen, &fresh);
		if (!x)
			return sn__err(-ENOMEM, "out of memory for the index");
		kv_shard_index_set(sh, x, e.tomb ? SN_KV_REC_DEL : SN_KV_REC_PUT, e.seg, e.off,
		                   e.len);
		sh->ckpt_keys++;
	}
	sh->next_recseq = h->next_recseq;
	return 0;
}

int kv_ckpt_find(struct kv_shard *sh, struct kv_ckpt_part *parts, uint32_t n,
                 const uint64_t *disk_seq, struct kv_ckpt_found *f)
{
	memset(f, 0, sizeof(*f));
	if (!n)
		return 0;
	qsort(parts, n, sizeof(*parts), cmp_part);
	for (uint32_t k = 0; k < n;) {
		uint32_t m = 1, whole;
		unsigned char *buf = NULL;
		int r;

		while (k + m < n && parts[k + m].seq == parts[k].seq)
			m++;
		/* Complete: parts 0..nparts-1, each once, agreeing on the layout. */
		whole = m == parts[k].nparts;
		for (uint32_t j = 0; whole && j < m; j++)
			whole = parts[k + j].part == j && parts[k + j].nparts == parts[k].nparts &&
			        parts[k + j].total == parts[k].total;
		if (whole && (r = read_payload(sh, parts + k, m, &buf)) != 0) {
			if (r < 0)
				return r;
			if (valid(sh, buf, parts[k].total, disk_seq)) {
				if (!(f->segs = malloc(m * sizeof(*f->segs)))) {
					free(buf);
					return sn__err(-ENOMEM, "out of memory");
				}
				for (uint32_t j = 0; j < m; j++)
					f->segs[j] = parts[k + j].seg;
				f->nsegs = m;
				f->buf = buf;
				f->total = parts[k].total;
				/* read_payload() returned 1, so buf is set (its errors are negative:
				 * clang-analyzer cannot see kv_shard_read's in shard.c). */
				/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): see above */
				f->close_id = ((const struct sn_kv_ckpt *)buf)->close_id;
				return 0;
			}
			free(buf);
		}
		k += m;
	}
	return 0;
}

uint32_t kv_ckpt_covered(const struct kv_shard *sh, const struct kv_ckpt_found *f, uint32_t seg,
                         uint64_t seq)
{
	struct sn_kv_ckpt_seg t;

	if (!f->buf || seg >= sh->nsegs)
		return 0;
	/* valid() checked the table is there: the header, then one entry per segment. */
	memcpy(&t, f->buf + sizeof(struct sn_kv_ckpt) + (uint64_t)seg * sizeof(t), sizeof(t));
	return t.seq == seq ? t.used : 0;
}

/* The segment that was the head when checkpoint f was written (the one covered segment
 * whose records can go on past its recorded end), or UINT32_MAX. */
uint32_t kv_ckpt_head(const struct kv_ckpt_found *f)
{
	struct sn_kv_ckpt h;

	if (!f->buf)
		return UINT32_MAX;
	memcpy(&h, f->buf, sizeof(h));
	return h.head;
}

/* Load what kv_ckpt_find() found: the segments it covers come back SEG_SEALED, with
 * their recorded end as used (recovery scans only what follows it). */
int kv_ckpt_apply(struct kv_shard *sh, const struct kv_ckpt_found *f, const uint64_t *disk_seq)
{
	int err = apply(sh, f->buf, f->total, disk_seq);

	for (uint32_t j = 0; !err && j < f->nsegs; j++) {
		sh->segs[f->segs[j]].state = SEG_CKPT;
		sh->nfree--;
		sh->nckpt++;
	}
	return err;
}

void kv_ckpt_found_free(struct kv_ckpt_found *f)
{
	free(f->buf);
	free(f->segs);
	memset(f, 0, sizeof(*f));
}

/* Give the checkpoint's segments back as free space (the shard runs short). */
void kv_ckpt_release(struct kv_shard *sh)
{
	for (uint32_t i = 0; sh->nckpt && i < sh->nsegs; i++)
		if (sh->segs[i].state == SEG_CKPT) {
			sh->segs[i].state = SEG_FREE;
			sh->nfree++;
			sh->nckpt--;
		}
}
