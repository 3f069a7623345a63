/* SPDX-License-Identifier: MIT */
/*
 * kv_model.c — deterministic keys and values, random workloads, and the reference model of
 * what may survive a crash (kv_model.h says what is allowed and why).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "kv/kv_impl.h"
#include "kv_model.h"
#include "test.h"
#include "util/uri.h"

#define NONE UINT32_MAX

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void km_fill(void *buf, size_t n, uint64_t tag)
{
	unsigned char *p = buf;
	uint64_t s = tag ^ 0x5bd1e9955bd1e995ull, x = 0;
	size_t i = 0;

	if (n >= 8) {
		memcpy(p, &tag, 8);
		i = 8;
	}
	for (; i < n; i++) {
		if (!(i & 7) || i < 8)
			x = splitmix(&s);
		p[i] = (unsigned char)(x >> (8 * (i & 7)));
	}
}

size_t km_name(char *buf, const char *prefix, unsigned i)
{
	return (size_t)sprintf(buf, "%s-%05u", prefix, i);
}

static unsigned char *scratch(size_t n)
{
	static unsigned char *buf;
	static size_t cap;

	if (n > cap || !buf) {
		free(buf);
		cap = n < 4096 ? 4096 : n;
		buf = malloc(cap);
		if (!buf)
			cap = 0;
	}
	return buf;
}

int km_put(struct sn_kv *kv, const void *key, size_t klen, size_t n, uint64_t tag, unsigned flags)
{
	unsigned char *buf = scratch(n);

	if (!buf)
		return -ENOMEM;
	km_fill(buf, n, tag);
	return sn_kv_put(kv, key, klen, buf, n, flags);
}

int km_expect(struct sn_kv *kv, const void *key, size_t klen, size_t n, uint64_t tag)
{
	unsigned char *want = scratch(n);
	void *v = NULL;
	size_t vl = 0;
	int err, same;

	ASSERT_TRUE(want);
	km_fill(want, n, tag);
	err = sn_kv_get(kv, key, klen, &v, &vl);
	same = !err && vl == n && !memcmp(v, want, n);
	free(v);
	if (!same)
		T_FAILED("key '%.*s': get = %s, %zu bytes; expected %zu bytes of value %llu",
		         (int)(klen < 40 ? klen : 40), (const char *)key, sn_errname(err), vl, n,
		         (unsigned long long)tag);
	return T_PASS;
}

int km_expect_absent(struct sn_kv *kv, const void *key, size_t klen)
{
	void *v = NULL;
	size_t vl = 0;
	int err = sn_kv_get(kv, key, klen, &v, &vl);

	free(v);
	if (err != -ENOENT)
		T_FAILED("key '%.*s': get = %s (%zu bytes), expected ENOENT",
		         (int)(klen < 40 ? klen : 40), (const char *)key, sn_errname(err), vl);
	return T_PASS;
}

/* ---- the scratch store ---- */

const char *km_uri;
char km_path[1024];

int km_main(int argc, char **argv, const char *title)
{
	struct sn_kv_opts o = km_opts();
	struct sn_uri u;
	struct sn_kv *kv;
	int err;

	if (argc != 2 || sn__uri_parse(argv[1], &u) || !*u.path) {
		fprintf(stderr,
		        "usage: %s URI   (a scratch file's URI, e.g. "
		        "'psync:/tmp/kv.dat?create=1&size=64m&direct=1')\n",
		        argv[0]);
		return T_FAIL;
	}
	km_uri = argv[1];
	snprintf(km_path, sizeof(km_path), "%s", u.path);
	sn__uri_free(&u);
	t_begin(title);
	printf("device: %s\n", km_uri);
	unlink(km_path);
	err = sn_kv_open(km_uri, &o, &kv);
	if (err == SN_ENOTAVAIL) {
		printf("    skipped: %s\n", sn_errmsg());
		return T_SKIP;
	}
	if (err) {
		printf("    cannot open a store on %s: %s (%s)\n", km_uri, sn_errname(err),
		       sn_errmsg());
		return T_FAIL;
	}
	sn_kv_close(kv);
	return T_PASS;
}

struct sn_kv_opts km_opts(void)
{
	struct sn_kv_opts o = { 0 };

	o.shards = KM_SHARDS;
	o.segment_size = KM_SEG;
	return o;
}

int km_open_fresh(const struct sn_kv_opts *o, struct sn_kv **kv)
{
	unlink(km_path);
	ASSERT_OK(sn_kv_open(km_uri, o, kv));
	return T_PASS;
}

int km_reopen(struct sn_kv **kv, const struct sn_kv_opts *o)
{
	ASSERT_OK(sn_kv_close(*kv));
	*kv = NULL;
	ASSERT_OK(sn_kv_open(km_uri, o, kv));
	return T_PASS;
}

int km_check_recovery(struct sn_kv *kv, struct km_counts *c, char *why, size_t whylen)
{
	struct sn_kv_stats st;
	size_t used;
	int err = sn_kv_stat(kv, &st);

	if (err) {
		snprintf(why, whylen, "sn_kv_stat after recovery = %s (%s)", sn_errname(err),
		         sn_errmsg());
		return -1;
	}
	c->recoveries++;
	c->corrupt_records += st.corrupt_records;
	c->torn_bytes += st.torn_bytes;
	c->torn_recoveries += st.torn_bytes > 0;
	if (!st.corrupt_records)
		return 0;
	/* Which shards: the counters are the owners', but recovery is over and nothing else
	 * counts here unless a read fails, so reading them now is good enough for a report. */
	used = (size_t)snprintf(why, whylen,
	                        "recovery reported %llu corrupt record%s (%llu torn bytes) on a "
	                        "store nothing corrupted: shard",
	                        (unsigned long long)st.corrupt_records,
	                        st.corrupt_records == 1 ? "" : "s",
	                        (unsigned long long)st.torn_bytes);
	for (uint32_t i = 0; i < kv->sb.shards && used < whylen; i++)
		if (kv->shards[i].corrupt)
			used += (size_t)snprintf(why + used, whylen - used, " %u: %llu", i,
			                         (unsigned long long)kv->shards[i].corrupt);
	return -1;
}

/* ---- workloads ---- */

size_t km_key(unsigned i, char *buf)
{
	size_t n, len;

	if (i == 0) {
		buf[0] = 'z';
		return 1;
	}
	if (i == 1) {
		for (n = 0; n < SN_KV_MAX_KEY; n++)
			buf[n] = (char)('A' + n % 26);
		return SN_KV_MAX_KEY;
	}
	n = (size_t)sprintf(buf, "k%u.", i);
	len = 8 + (i * 7) % 40;
	for (; n < len; n++)
		buf[n] = (char)('a' + (i + n) % 26);
	return len;
}

uint64_t km_tag(const struct km_workload *w, unsigned i, unsigned j)
{
	return (w->id << 24) | ((uint64_t)i << 4) | j;
}

/* big: percent of values drawn from 8000..max (0: 8); the rest keep their shares */
static uint32_t pick_vlen(uint64_t *s, uint32_t max, unsigned big)
{
	unsigned r = (unsigned)(splitmix(s) % 100);
	uint32_t v;

	if (big && big < 100)
		r = r < 100 - big ? r * 92 / (100 - big) : 92;
	else if (big)
		r = 92;
	if (r < 35)
		v = (uint32_t)(splitmix(s) % 65);
	else if (r < 70)
		v = 64 + (uint32_t)(splitmix(s) % 1000);
	else if (r < 92)
		v = 1000 + (uint32_t)(splitmix(s) % 8000);
	else
		v = 8000 + (uint32_t)(splitmix(s) % (max > 8000 ? max - 8000 : 1));
	return v < max ? v : max;
}

int km_generate(struct km_workload *w, uint64_t id, uint64_t seed, const struct km_mix *mix)
{
	uint64_t s = seed;

	w->id = id;
	w->n = mix->nops;
	w->ops = calloc(mix->nops ? mix->nops : 1, sizeof(*w->ops));
	if (!w->ops || mix->nkeys < 2 || mix->nkeys > KM_MAX_KEY_IDX)
		return -1;
	for (unsigned i = 0; i < mix->nops; i++) {
		struct km_op *op = &w->ops[i];
		unsigned r = (unsigned)(splitmix(&s) % 100), t = 0;

		op->key = (uint16_t)(splitmix(&s) % mix->nkeys);
		if (r < (t += mix->put))
			op->type = KM_PUT;
		else if (r < (t += mix->del))
			op->type = KM_DEL;
		else if (r < (t += mix->batch))
			op->type = KM_BATCH;
		else if (r < (t += mix->sync))
			op->type = KM_SYNC;
		else if (r < (t += mix->get))
			op->type = KM_GET;
		else if (r < (t += mix->compact))
			op->type = KM_COMPACT;
		else
			op->type = KM_PUT;
		if ((op->type == KM_PUT || op->type == KM_DEL || op->type == KM_BATCH) &&
		    splitmix(&s) % 100 < mix->durable)
			op->flags = SN_KV_DURABLE;
		if (op->type == KM_PUT)
			op->vlen = pick_vlen(&s, mix->max_vlen, mix->big);
		if (op->type == KM_BATCH) {
			op->nb = (uint8_t)(2 + splitmix(&s) % (KM_MAX_BOPS - 1));
			for (unsigned j = 0; j < op->nb; j++) {
				struct km_bop *b = &op->b[j];

				b->key = (uint16_t)(splitmix(&s) % mix->nkeys);
				if (j && splitmix(&s) % 5 == 0) /* the same key again: later wins */
					b->key = op->b[j - 1].key;
				b->del = splitmix(&s) % 4 == 0;
				b->vlen = b->del ? 0 : pick_vlen(&s, mix->max_vlen / 4, mix->big);
			}
		}
	}
	return 0;
}

void km_workload_free(struct km_workload *w)
{
	free(w->ops);
	w->ops = NULL;
	w->n = 0;
}

/* ---- the model ---- */

int km_model_init(struct km_model *m, unsigned nkeys)
{
	memset(m, 0, sizeof(*m));
	m->nkeys = nkeys;
	m->keys = calloc(nkeys, sizeof(*m->keys));
	return m->keys ? 0 : -1;
}

void km_model_free(struct km_model *m)
{
	for (unsigned k = 0; m->keys && k < m->nkeys; k++) {
		free(m->keys[k].w);
		free(m->keys[k].base);
	}
	free(m->keys);
	free(m->pos);
	memset(m, 0, sizeof(*m));
}

static uint32_t push(struct km_hist *h, uint64_t tag, uint32_t vlen, int del, uint32_t batch)
{
	if (h->n == h->cap) {
		unsigned cap = h->cap ? 2 * h->cap : 16;
		struct km_write *n = realloc(h->w, cap * sizeof(*n));

		if (!n)
			abort(); /* a test tool: out of memory is fatal */
		h->w = n;
		h->cap = cap;
	}
	h->w[h->n] = (struct km_write){ tag, vlen, (uint8_t)del, KM_TRIED, batch };
	return h->n++;
}

void km_begin(struct km_model *m, const struct km_workload *w, unsigned i)
{
	const struct km_op *op = &w->ops[i];
	uint32_t *pos;

	if (m->pos_cap < w->n * KM_MAX_BOPS) {
		free(m->pos);
		m->pos_cap = w->n * KM_MAX_BOPS;
		m->pos = malloc((m->pos_cap ? m->pos_cap : 1) * sizeof(*m->pos));
		if (!m->pos)
			abort();
	}
	/* Every slot of op i, always: a slot left from an earlier workload (another one at
	 * the same address) would make km_ack() mark some other write. */
	pos = &m->pos[i * KM_MAX_BOPS];
	memset(pos, 0xff, KM_MAX_BOPS * sizeof(*pos));
	switch (op->type) {
	case KM_PUT:
	case KM_DEL:
		pos[0] = push(&m->keys[op->key], km_tag(w, i, 0), op->vlen, op->type == KM_DEL, 0);
		break;
	case KM_BATCH:
		m->nbatches++;
		for (unsigned j = 0; j < op->nb; j++) {
			unsigned later = 0;

			for (unsigned l = j + 1; l < op->nb; l++)
				later |= op->b[l].key == op->b[j].key;
			if (!later) /* only the last operation on a key takes effect */
				pos[j] = push(&m->keys[op->b[j].key], km_tag(w, i, j),
				              op->b[j].vlen, op->b[j].del, m->nbatches);
		}
		break;
	}
}

void km_all_durable(struct km_model *m)
{
	for (unsigned k = 0; k < m->nkeys; k++)
		for (unsigned j = 0; j < m->keys[k].n; j++)
			if (m->keys[k].w[j].state == KM_ACKED)
				m->keys[k].w[j].state = KM_DURABLE;
}

void km_crashed(struct km_model *m)
{
	for (unsigned k = 0; k < m->nkeys; k++)
		for (unsigned j = 0; j < m->keys[k].n; j++)
			if (m->keys[k].w[j].state == KM_ACKED)
				m->keys[k].w[j].state = KM_TRIED;
}

void km_ack(struct km_model *m, const struct km_workload *w, unsigned i)
{
	const struct km_op *op = &w->ops[i];
	uint8_t st = (op->flags & SN_KV_DURABLE) ? KM_DURABLE : KM_ACKED;

	if (op->type == KM_SYNC) {
		km_all_durable(m);
		return;
	}
	if (op->type != KM_PUT && op->type != KM_DEL && op->type != KM_BATCH)
		return;
	for (unsigned j = 0; j < (op->type == KM_BATCH ? op->nb : 1u); j++) {
		uint32_t p = m->pos[i * KM_MAX_BOPS + j];
		unsigned key = op->type == KM_BATCH ? op->b[j].key : op->key;

		if (p != NONE && m->keys[key].w[p].state < st)
			m->keys[key].w[p].state = st;
	}
}

/* What a get returned. */
struct obs {
	int present;
	unsigned char *val;
	size_t len;
};

/* Does write j (-1: the baseline) of h leave the key as o shows it? */
static int explains(const struct km_hist *h, int j, const struct obs *o)
{
	const struct km_write *w;
	unsigned char *want;

	if (j < 0)
		return h->base_present == o->present &&
		       (!o->present || (h->base_len == o->len && !memcmp(h->base, o->val, o->len)));
	w = &h->w[j];
	if (w->del)
		return !o->present;
	if (!o->present || w->vlen != o->len)
		return 0;
	if (!(want = scratch(o->len)))
		abort();
	km_fill(want, o->len, w->tag);
	return !memcmp(want, o->val, o->len);
}

static void describe(char *buf, size_t len, const struct obs *o)
{
	uint64_t tag = 0;

	if (!o->present) {
		snprintf(buf, len, "absent");
		return;
	}
	if (o->len >= 8)
		memcpy(&tag, o->val, 8);
	snprintf(buf, len, "%zu bytes, first 8 = tag %llu (workload %llu op %llu part %llu)",
	         o->len, (unsigned long long)tag, (unsigned long long)(tag >> 24),
	         (unsigned long long)((tag >> 4) & 0xfffff), (unsigned long long)(tag & 15));
}

/* The last write of h at or above state (-1: the baseline). */
static int last_at(const struct km_hist *h, uint8_t state)
{
	for (int j = (int)h->n - 1; j >= 0; j--)
		if (h->w[j].state >= state)
			return j;
	return -1;
}

/* 0 when o is allowed for key k: the write `from` or any later one. Else 1 (an older
 * value: lost) or 2 (no write produced it: corrupt). */
static int judge(const struct km_hist *h, int from, const struct obs *o)
{
	for (int j = from; j < (int)h->n; j++)
		if (explains(h, j, o))
			return 0;
	for (int j = -1; j < from; j++)
		if (explains(h, j, o))
			return 1;
	return 2;
}

static void explain_failure(char *why, size_t whylen, const struct km_model *m, unsigned k,
                            const struct obs *o, int from, int verdict, const char *when)
{
	const struct km_hist *h = &m->keys[k];
	char seen[160], key[SN_KV_MAX_KEY];
	size_t kl = km_key(k, key);

	describe(seen, sizeof(seen), o);
	if (from >= 0)
		snprintf(why, whylen,
		         "%s: key %u ('%.*s'): %s value: %s; allowed: write %d (tag %llu, %s%u "
		         "bytes, "
		         "%s) or one of the %d after it",
		         when, k, (int)(kl < 24 ? kl : 24), key,
		         verdict == 1 ? "an older (lost)" : "a never-written (corrupt)", seen, from,
		         (unsigned long long)h->w[from].tag, h->w[from].del ? "delete, " : "",
		         h->w[from].vlen,
		         h->w[from].state == KM_DURABLE ? "durable"
		         : h->w[from].state == KM_ACKED ? "acknowledged"
		                                        : "tried",
		         (int)h->n - from - 1);
	else
		snprintf(why, whylen,
		         "%s: key %u ('%.*s'): %s value: %s; allowed: the baseline (%s, %u bytes) "
		         "or "
		         "one of %u writes after it",
		         when, k, (int)(kl < 24 ? kl : 24), key,
		         verdict == 1 ? "an older (lost)" : "a never-written (corrupt)", seen,
		         h->base_present ? "present" : "absent", h->base_len, h->n);
}

struct scan_ctx {
	struct km_model *m;
	struct obs *obs;
	unsigned char *seen;
	unsigned count, unknown, mismatch;
};

static int scan_fn(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct scan_ctx *c = arg;
	char buf[SN_KV_MAX_KEY];

	for (unsigned k = 0; k < c->m->nkeys; k++) {
		if (km_key(k, buf) != klen || memcmp(buf, key, klen))
			continue;
		if (c->seen[k]++ || !c->obs[k].present || c->obs[k].len != vlen ||
		    memcmp(c->obs[k].val, val, vlen))
			c->mismatch++;
		c->count++;
		return 0;
	}
	c->unknown++;
	return 0;
}

int km_verify(struct sn_kv *kv, struct km_model *m, int rebase, struct km_counts *c, char *why,
              size_t whylen)
{
	struct obs *obs = calloc(m->nkeys, sizeof(*obs));
	unsigned char *seen = calloc(m->nkeys, 1);
	char key[SN_KV_MAX_KEY];
	unsigned present = 0;
	int bad = 0;

	if (!obs || !seen)
		abort();
	*why = '\0';
	for (unsigned k = 0; k < m->nkeys; k++) {
		const struct km_hist *h = &m->keys[k];
		size_t kl = km_key(k, key);
		void *v = NULL;
		int err = sn_kv_get(kv, key, kl, &v, &obs[k].len), d, verdict;

		c->keys++;
		if (err && err != -ENOENT) {
			c->corrupt++;
			if (!bad++)
				snprintf(why, whylen, "after recovery: key %u: get = %s (%s)", k,
				         sn_errname(err), sn_errmsg());
			continue;
		}
		obs[k].present = !err;
		obs[k].val = v;
		present += !err;
		d = last_at(h, KM_DURABLE);
		verdict = judge(h, d, &obs[k]);
		if (verdict) {
			*(verdict == 1 ? &c->lost : &c->corrupt) += 1;
			if (!bad++)
				explain_failure(why, whylen, m, k, &obs[k], d, verdict,
				                "after recovery");
		} else if (d >= 0) {
			c->durable_verified++;
		}
	}

	/* Batches: all or nothing. */
	for (uint32_t b = 1; b <= m->nbatches; b++) {
		unsigned shows_b = 0, shows_pre = 0, where_b = 0, where_pre = 0;

		for (unsigned k = 0; k < m->nkeys; k++) {
			const struct km_hist *h = &m->keys[k];

			for (int p = 0; p < (int)h->n; p++) {
				int other = 0, before = 0, after = 0;

				if (h->w[p].batch != b)
					continue;
				for (int j = -1; j < (int)h->n; j++) {
					if (j == p || !explains(h, j, &obs[k]))
						continue;
					other = 1;
					*(j < p ? &before : &after) = 1;
				}
				if (explains(h, p, &obs[k]) && !other)
					shows_b++, where_b = k;
				else if (before && !after && !explains(h, p, &obs[k]))
					shows_pre++, where_pre = k;
			}
		}
		c->batches++;
		if (shows_b && shows_pre) {
			c->torn_batches++;
			if (!bad++)
				snprintf(why, whylen,
				         "after recovery: batch %u is torn: key %u shows it, key "
				         "%u shows "
				         "only what came before it",
				         b, where_b, where_pre);
		}
	}

	/* Scan: exactly the present keys, with the values get returned. */
	{
		struct scan_ctx sc = { m, obs, seen, 0, 0, 0 };
		int err = sn_kv_scan(kv, scan_fn, &sc);

		if (err || sc.unknown || sc.mismatch || sc.count != present) {
			c->corrupt += sc.unknown + sc.mismatch;
			if (!bad++)
				snprintf(why, whylen,
				         "after recovery: scan = %s: %u keys (get found %u), %u "
				         "unknown, "
				         "%u differing from get",
				         sn_errname(err), sc.count, present, sc.unknown,
				         sc.mismatch);
		}
	}

	for (unsigned k = 0; k < m->nkeys; k++) {
		struct km_hist *h = &m->keys[k];

		if (rebase && !bad) {
			free(h->base);
			h->base = obs[k].val;
			h->base_len = (uint32_t)obs[k].len;
			h->base_present = obs[k].present;
			h->n = 0;
		} else {
			free(obs[k].val);
		}
	}
	if (rebase && !bad)
		m->nbatches = 0;
	free(obs);
	free(seen);
	return bad ? -1 : 0;
}

/* ---- running a workload ---- */

static int do_op(struct sn_kv *kv, struct km_model *m, const struct km_workload *w, unsigned i,
                 struct km_counts *c, char *why, size_t whylen)
{
	static struct sn_kv_batch *b;
	const struct km_op *op = &w->ops[i];
	char key[SN_KV_MAX_KEY];
	size_t kl = op->type == KM_BATCH ? 0 : km_key(op->key, key);
	unsigned char *buf;
	int err;

	switch (op->type) {
	case KM_PUT:
		return km_put(kv, key, kl, op->vlen, km_tag(w, i, 0), op->flags);
	case KM_DEL:
		return sn_kv_del(kv, key, kl, op->flags);
	case KM_SYNC:
		return sn_kv_sync(kv);
	case KM_COMPACT:
		return sn_kv_compact(kv, 1);
	case KM_BATCH:
		if (!b && !(b = sn_kv_batch_new()))
			return -ENOMEM;
		sn_kv_batch_clear(b);
		for (unsigned j = 0; j < op->nb; j++) {
			const struct km_bop *p = &op->b[j];

			kl = km_key(p->key, key);
			if (p->del) {
				err = sn_kv_batch_del(b, key, kl);
			} else {
				if (!(buf = scratch(p->vlen)))
					return -ENOMEM;
				km_fill(buf, p->vlen, km_tag(w, i, j));
				err = sn_kv_batch_put(b, key, kl, buf, p->vlen);
			}
			if (err)
				return err;
		}
		return sn_kv_write(kv, b, op->flags);
	case KM_GET: {
		struct obs o = { 0, NULL, 0 };
		void *v = NULL;
		int verdict;

		err = sn_kv_get(kv, key, kl, &v, &o.len);
		if (err == SN_ECORRUPT) {
			c->corrupt++;
			snprintf(why, whylen, "during the workload: op %u: get of key %u: %s (%s)",
			         i, op->key, sn_errname(err), sn_errmsg());
			return 1;
		}
		if (err && err != -ENOENT)
			return err;
		o.present = !err;
		o.val = v;
		c->gets++;
		verdict = judge(&m->keys[op->key], last_at(&m->keys[op->key], KM_ACKED), &o);
		if (verdict) {
			*(verdict == 1 ? &c->lost : &c->corrupt) += 1;
			explain_failure(why, whylen, m, op->key, &o,
			                last_at(&m->keys[op->key], KM_ACKED), verdict,
			                "during the workload");
		}
		free(v);
		return verdict ? 1 : 0;
	}
	}
	return -EINVAL;
}

int km_run(struct sn_kv *kv, struct km_model *m, const struct km_workload *w, unsigned from,
           int stop_on_error, km_event_fn ev, void *arg, struct km_run_result *r,
           struct km_counts *c, char *why, size_t whylen)
{
	memset(r, 0, sizeof(*r));
	for (unsigned i = from; i < w->n; i++) {
		int err;

		if (w->ops[i].type == KM_COMPACT && r->failed) {
			r->skipped++;
			continue;
		}
		if (ev)
			ev(arg, i, -1);
		km_begin(m, w, i);
		err = do_op(kv, m, w, i, c, why, whylen);
		if (err == 1)
			return -1; /* a get the model forbids */
		r->done++;
		if (!err) {
			km_ack(m, w, i);
			if (ev)
				ev(arg, i, 1);
			continue;
		}
		if (ev)
			ev(arg, i, 0);
		if (!r->failed++) {
			r->first_err = err;
			r->first_op = i;
		}
		if (stop_on_error)
			break;
	}
	return 0;
}
