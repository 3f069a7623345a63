/* SPDX-License-Identifier: MIT */
/*
 * store.c — the KV store's API: format and open (superblock, runtime, per-worker queues,
 * parallel recovery), routing each call to the worker that owns its key's shard, handing
 * results back (inline, by a reply message, or on the owner for foreign callers), the
 * blocking wrappers, batches, scan, stats and close.
 *
 * Batches: the operations of each shard are appended as batch records (not yet in the
 * index); with more than one shard they are made durable, then a commit record is
 * appended to the first shard, and then each shard applies its records to the index.
 * Recovery applies batch records only when it finds their commit (recover.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../util/crc32c.h"
#include "../util/uri.h"
#include "../util/util.h"
#include "kv_impl.h"

#define DEFAULT_SEGMENT  (4u << 20)
#define DEFAULT_NEW_SIZE (1ull << 30)
#define QUEUE_DEPTH      256
#define BATCH_OP_HDR     7 /* type u8, klen u16, vlen u32 */

struct sn_kv_batch {
	unsigned char *buf;
	size_t len, cap;
	uint32_t nops;
};

struct sn_rt *sn_kv_rt(const struct sn_kv *kv)
{
	return kv->rt;
}

struct sn_dev *sn_kv_dev(const struct sn_kv *kv)
{
	return kv->dev;
}

/* ---- completion delivery ---- */

static void deliver(struct kv_req *r)
{
	if (r->keep) { /* the caller frees it, and reads its message */
		r->cb(r->arg, r->res, NULL, 0);
		return;
	}
	/* The reason for a failure, on the thread that runs the callback (none: no stale
	 * one either). */
	if (r->res < 0 && r->msg)
		sn__err(r->res, "%s", r->msg);
	else if (r->res < 0)
		sn__err_clear();
	free(r->msg);
	r->msg = NULL;
	if (r->cb)
		r->cb(r->arg, r->res, r->rval, r->rvlen);
	if (r->rval != (void *)(r->data + r->klen))
		free(r->rval);
	free(r->pos);
	kv_req_free(r);
}

static void reply_msg(void *arg)
{
	deliver(arg);
}

/* Local completions and replies that found a ring full, at the end of the iteration. */
static void done_task(void *arg)
{
	struct kv_worker *w = arg;
	struct kv_req *r = w->done_head, *rep = w->reply_head;

	w->done_head = NULL;
	w->done_tail = &w->done_head;
	w->reply_head = NULL;
	w->reply_tail = &w->reply_head;
	while (r) {
		struct kv_req *next = r->next;

		deliver(r);
		r = next;
	}
	while (rep) {
		struct kv_req *next = rep->next;

		if (sn_rt_send(w->kv->rt, rep->origin, reply_msg, rep)) {
			rep->next = NULL;
			*w->reply_tail = rep;
			w->reply_tail = &rep->next;
		}
		rep = next;
	}
	kv_post_retry(w);
	kv_post_done_local(w);
	if (w->reply_head || w->mb_unsent)
		sn_rt_defer(&w->done_task);
}

static void waiter_cb(void *arg, int res, const void *val, size_t vlen);

/* r is done: its callback runs at the end of this iteration (the caller is this worker,
 * or a plain thread whose callbacks run on the owner) or on the calling worker. Not here:
 * the shard code that completes r may be in the middle of a list the callback's own calls
 * would join. A blocking call's callback (and a batch part's) only wakes a thread: that
 * one runs at once. */
void kv_complete(struct kv_worker *w, struct kv_req *r)
{
	if (r->res < 0 && r->res != -ENOENT && !r->msg && *sn_errmsg())
		r->msg = strdup(sn_errmsg()); /* (a miss needs no reason, nor a strdup) */
	if (r->origin == SN_RT_FOREIGN && (r->cb == waiter_cb || r->keep)) {
		deliver(r);
		return;
	}
	r->next = NULL;
	if (r->origin == w->idx || r->origin == SN_RT_FOREIGN) {
		*w->done_tail = r;
		w->done_tail = &r->next;
	} else if (!w->reply_head && !sn_rt_send(w->kv->rt, r->origin, reply_msg, r)) {
		return;
	} else {
		*w->reply_tail = r;
		w->reply_tail = &r->next;
	}
	sn_rt_defer(&w->done_task);
}

/* ---- routing ---- */

static void exec_msg(void *arg)
{
	struct kv_req *r = arg;

	kv_shard_exec(&r->kv->shards[r->shard], r);
}

static int on_worker(const struct sn_kv *kv)
{
	return sn_rt_current() == kv->rt;
}

static int on_worker_any(void)
{
	return sn_rt_self() != SN_RT_FOREIGN;
}

static int check_kv(size_t klen, size_t vlen, const struct sn_kv *kv)
{
	if (!klen || klen > SN_KV_MAX_KEY)
		return sn__err(-EINVAL, "key of %zu bytes: keys are 1..%u bytes", klen,
		               SN_KV_MAX_KEY);
	if (vlen > kv->max_value)
		return sn__err(-EINVAL, "value of %zu bytes: values are at most %llu bytes", vlen,
		               (unsigned long long)kv->max_value);
	return 0;
}

struct kv_req *kv_req_new(struct sn_kv *kv, enum kv_op op, const void *key, size_t klen,
                          const void *val, size_t vlen, unsigned flags, sn_kv_cb cb, void *arg)
{
	struct kv_req *r = kv_req_alloc(sizeof(*r) + klen + (op == KV_GET ? KV_GET_INLINE : vlen));
	struct kv_rcache *home;

	if (!r)
		return NULL;
	home = r->home;
	memset(r, 0, sizeof(*r));
	r->home = home;
	r->kv = kv;
	r->op = (uint8_t)op;
	r->flags = (uint8_t)flags;
	r->klen = (uint16_t)klen;
	r->vlen = (uint32_t)vlen;
	if (klen) {
		memcpy(r->data, key, klen);
		r->hash = sn_kv_hash(key, klen);
		r->shard = kv_shard_of(kv, r->hash);
	}
	if (vlen && val) /* (no val: room for the caller to fill) */
		memcpy(r->data + klen, val, vlen);
	r->cb = cb;
	r->arg = arg;
	return r;
}

/* Send r to the owner of its shard (or run it here, when this worker owns it). */
static int route(struct sn_kv *kv, struct kv_req *r)
{
	unsigned owner = kv_owner(kv, r->shard);
	int err;

	r->origin = on_worker(kv) ? sn_rt_self() : SN_RT_FOREIGN;
	/* Calls to one worker run in order: the batch of earlier ones goes (or runs) first. */
	err = r->origin < kv->nworkers ? kv_post_send(&kv->workers[r->origin], owner) : 0;
	if (!err && r->origin == owner) {
		kv_shard_exec(&kv->shards[r->shard], r);
		return 0;
	}
	if (!err)
		err = sn_rt_send(kv->rt, owner, exec_msg, r);
	if (err) {
		kv_req_free(r);
		return err;
	}
	return 0;
}

static int read_only(void)
{
	return sn__err(-EROFS, "the store was opened read-only (opts.readonly): it takes no "
	                       "writes");
}

static int submit_op(struct sn_kv *kv, enum kv_op op, const void *key, size_t klen, const void *val,
                     size_t vlen, unsigned flags, sn_kv_cb cb, void *arg)
{
	struct kv_req *r;
	int err;

	if ((err = check_kv(klen, vlen, kv)))
		return err;
	if (flags & ~SN_KV_DURABLE)
		return sn__err(-EINVAL, "unknown flags 0x%x", flags & ~SN_KV_DURABLE);
	if (op != KV_GET && kv->opts.readonly)
		return read_only();
	/* On a worker with a share of the store (a runtime may have more workers than the
	 * store has shards), a quick call (no wait for a flush, a small value) needs no
	 * request. */
	if (on_worker(kv) && sn_rt_self() < kv->nworkers && !(flags & SN_KV_DURABLE) &&
	    kv->opts.sync != SN_KV_SYNC_ALWAYS &&
	    sizeof(struct kv_call) + klen + vlen <= KV_MB_CALL_MAX)
		return kv_post(kv, op, sn_kv_hash(key, klen), key, (uint32_t)klen, val,
		               (uint32_t)vlen, flags, cb, arg);
	if (!(r = kv_req_new(kv, op, key, klen, val, vlen, flags, cb, arg)))
		return sn__err(-ENOMEM, "out of memory");
	return route(kv, r);
}

int sn_kv_put_async(struct sn_kv *kv, const void *key, size_t klen, const void *val, size_t vlen,
                    unsigned flags, sn_kv_cb cb, void *arg)
{
	return submit_op(kv, KV_PUT, key, klen, val, vlen, flags, cb, arg);
}

int sn_kv_get_async(struct sn_kv *kv, const void *key, size_t klen, sn_kv_cb cb, void *arg)
{
	return submit_op(kv, KV_GET, key, klen, NULL, 0, 0, cb, arg);
}

int sn_kv_del_async(struct sn_kv *kv, const void *key, size_t klen, unsigned flags, sn_kv_cb cb,
                    void *arg)
{
	return submit_op(kv, KV_DEL, key, klen, NULL, 0, flags, cb, arg);
}

/* sync: one request per shard; cb runs when all are done, with the first error. */
struct multi {
	_Atomic unsigned left;
	_Atomic int err;
	sn_kv_cb cb;
	void *arg;
	struct sn_kv *kv;
	struct sn_rt_task task;  /* runs cb when the call itself saw the last one end */
	struct sn_rt_task retry; /* on a worker: asks the shards whose ring was full again */
	unsigned nwait;          /* those shards, in wait[] */
	uint32_t wait[];
};

static void multi_finish(void *arg)
{
	struct multi *m = arg;

	m->cb(m->arg, atomic_load(&m->err), NULL, 0);
	free(m);
}

/* One shard's sync ended, or was never sent (res says why): the last one runs cb. */
static void multi_one(void *arg, int res, const void *val, size_t vlen)
{
	struct multi *m = arg;
	int zero = 0;

	(void)val;
	(void)vlen;
	if (res)
		atomic_compare_exchange_strong(&m->err, &zero, res);
	if (atomic_fetch_sub(&m->left, 1) == 1)
		multi_finish(m);
}

/* Send shard s its sync: 0, or the error that kept it from going. A foreign thread waits
 * for room in a full inbox; a worker must not (the owner may wait for it): -EAGAIN. */
static int multi_send(struct multi *m, uint32_t s)
{
	struct kv_req *r;
	int err;

	do {
		if (!(r = kv_req_new(m->kv, KV_SYNC, NULL, 0, NULL, 0, 0, multi_one, m)))
			return sn__err(-ENOMEM, "out of memory");
		r->shard = s;
		if ((err = route(m->kv, r)) == -EAGAIN && !on_worker(m->kv))
			sched_yield();
	} while (err == -EAGAIN && !on_worker(m->kv));
	return err;
}

/* On the calling worker, from its loop: the shards whose ring was full, again. Those still
 * refused wait for the next iteration (the owners drain their rings meanwhile). */
static void multi_retry(void *arg)
{
	struct multi *m = arg;
	unsigned n = m->nwait, k = 0, failed = 0;
	int first = 0, zero = 0;

	atomic_fetch_add(&m->left, 1); /* this task's own count: m stays while it runs */
	for (unsigned i = 0; i < n; i++) {
		int err = multi_send(m, m->wait[i]);

		if (err == -EAGAIN) {
			m->wait[k++] = m->wait[i];
		} else if (err) { /* never sent: done and failed */
			failed++;
			first = first ? first : err;
		}
	}
	m->nwait = k;
	if (k)
		sn_rt_defer(&m->retry);
	if (first)
		atomic_compare_exchange_strong(&m->err, &zero, first);
	/* The counts of the shards that failed, and this task's: the last one runs cb. */
	if (atomic_fetch_sub(&m->left, failed + 1) == failed + 1)
		multi_finish(m);
}

int sn_kv_sync_async(struct sn_kv *kv, sn_kv_cb cb, void *arg)
{
	unsigned n = kv->sb.shards, unsent = 0;
	struct multi *m = malloc(sizeof(*m) + n * sizeof(uint32_t));
	int first = 0, zero = 0;

	if (!m)
		return sn__err(-ENOMEM, "out of memory");
	/* One count per shard and one this call holds until every request is out: no shard's
	 * callback can free m while the loop below still uses it. */
	atomic_init(&m->left, n + 1);
	atomic_init(&m->err, 0);
	m->cb = cb;
	m->arg = arg;
	m->kv = kv;
	m->task = (struct sn_rt_task){ multi_finish, m, NULL, 0 };
	m->retry = (struct sn_rt_task){ multi_retry, m, NULL, 0 };
	m->nwait = 0;
	for (uint32_t s = 0; s < n; s++) {
		int err = multi_send(m, s);

		if (err == -EAGAIN) { /* on a worker, a full ring: sent from its loop */
			m->wait[m->nwait++] = s;
		} else if (err) { /* never sent: done and failed, counted off below */
			unsent++;
			first = first ? first : err;
		}
	}
	if (unsent == n) { /* nothing went out: the call fails, and cb never runs */
		free(m);
		return first;
	}
	if (first)
		atomic_compare_exchange_strong(&m->err, &zero, first);
	if (m->nwait)
		sn_rt_defer(&m->retry); /* holds a count per waiting shard: m stays */
	/* The counts of the shards never sent, and this call's own. */
	if (atomic_fetch_sub(&m->left, unsent + 1) == unsent + 1) {
		/* Every shard's sync ended already: cb still must not run inside this call. */
		int err = 0;

		if (on_worker(kv))
			sn_rt_defer(&m->task);
		else
			while ((err = sn_rt_send(kv->rt, 0, multi_finish, m)) == -EAGAIN)
				sched_yield();
		if (err) /* the runtime is going away: here rather than never */
			multi_finish(m);
	}
	return 0;
}

/* ---- blocking calls ---- */

struct waiter {
	struct sn_rt_latch done;
	int res;
	void *val;
	size_t vlen;
	int want_val;
	char msg[256]; /* sn_errmsg() of the failure, from the worker */
};

static void waiter_cb(void *arg, int res, const void *val, size_t vlen)
{
	struct waiter *w = arg;

	w->res = res;
	if (res < 0)
		snprintf(w->msg, sizeof(w->msg), "%s",
		         *sn_errmsg() ? sn_errmsg() : sn_strerror(res));
	if (!res && w->want_val) {
		w->val = malloc(vlen ? vlen : 1);
		if (w->val) {
			memcpy(w->val, val, vlen);
			w->vlen = vlen;
		} else {
			w->res = -ENOMEM;
		}
	}
	sn_rt_latch_done(&w->done);
}

static int not_on_worker(const struct sn_kv *kv, const char *what)
{
	if (on_worker(kv))
		return sn__err(-EDEADLK, "%s would block a worker of the store: use %s_async", what,
		               what);
	return 0;
}

/* Send until the inbox takes it (a blocking caller may wait for room). */
static int blocking(struct sn_kv *kv, enum kv_op op, const void *key, size_t klen, const void *val,
                    size_t vlen, unsigned flags, struct waiter *w)
{
	int err;

	sn_rt_latch_init(&w->done, 1);
	while ((err = submit_op(kv, op, key, klen, val, vlen, flags, waiter_cb, w)) == -EAGAIN)
		sched_yield();
	if (err)
		return err;
	sn_rt_latch_wait(&w->done);
	if (w->res < 0)
		sn__err(w->res, "%s", w->msg);
	return w->res;
}

int sn_kv_put(struct sn_kv *kv, const void *key, size_t klen, const void *val, size_t vlen,
              unsigned flags)
{
	struct waiter w = { 0 };
	int err = not_on_worker(kv, "sn_kv_put");

	return err ? err : blocking(kv, KV_PUT, key, klen, val, vlen, flags, &w);
}

int sn_kv_del(struct sn_kv *kv, const void *key, size_t klen, unsigned flags)
{
	struct waiter w = { 0 };
	int err = not_on_worker(kv, "sn_kv_del");

	return err ? err : blocking(kv, KV_DEL, key, klen, NULL, 0, flags, &w);
}

int sn_kv_get(struct sn_kv *kv, const void *key, size_t klen, void **valp, size_t *vlenp)
{
	struct waiter w = { .want_val = 1 };
	int err = not_on_worker(kv, "sn_kv_get");

	*valp = NULL;
	*vlenp = 0;
	if (err || (err = blocking(kv, KV_GET, key, klen, NULL, 0, 0, &w)))
		return err;
	*valp = w.val;
	*vlenp = w.vlen;
	return 0;
}

int sn_kv_sync(struct sn_kv *kv)
{
	struct waiter w = { 0 };
	int err = not_on_worker(kv, "sn_kv_sync");

	if (err || kv->opts.readonly) /* (read-only: nothing was written) */
		return err;
	sn_rt_latch_init(&w.done, 1);
	/* A failed call sent nothing: its callback never runs, there is nothing to wait for. */
	if ((err = sn_kv_sync_async(kv, waiter_cb, &w)))
		return err;
	sn_rt_latch_wait(&w.done);
	if (w.res < 0)
		sn__err(w.res, "%s", w.msg);
	return w.res;
}

/* ---- batches ---- */

struct sn_kv_batch *sn_kv_batch_new(void)
{
	return calloc(1, sizeof(struct sn_kv_batch));
}

static int batch_add(struct sn_kv_batch *b, unsigned type, const void *key, size_t klen,
                     const void *val, size_t vlen)
{
	size_t need = BATCH_OP_HDR + klen + vlen;
	uint16_t kl = (uint16_t)klen;
	uint32_t vl = (uint32_t)vlen;
	uint8_t t = (uint8_t)type;

	if (!klen || klen > SN_KV_MAX_KEY || vlen > SN_KV_MAX_VALUE)
		return sn__err(-EINVAL,
		               "batch: key of %zu or value of %zu bytes out of range "
		               "(keys 1..%u, values up to %u bytes)",
		               klen, vlen, SN_KV_MAX_KEY, SN_KV_MAX_VALUE);
	if (b->len + need > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		unsigned char *nb;

		while (cap < b->len + need)
			cap *= 2;
		if (!(nb = realloc(b->buf, cap)))
			return sn__err(-ENOMEM, "out of memory");
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, &t, 1);
	memcpy(b->buf + b->len + 1, &kl, 2);
	memcpy(b->buf + b->len + 3, &vl, 4);
	memcpy(b->buf + b->len + BATCH_OP_HDR, key, klen);
	if (vlen)
		memcpy(b->buf + b->len + BATCH_OP_HDR + klen, val, vlen);
	b->len += need;
	b->nops++;
	return 0;
}

int sn_kv_batch_put(struct sn_kv_batch *b, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
	return batch_add(b, SN_KV_REC_BPUT, key, klen, val, vlen);
}

int sn_kv_batch_del(struct sn_kv_batch *b, const void *key, size_t klen)
{
	return batch_add(b, SN_KV_REC_BDEL, key, klen, NULL, 0);
}

void sn_kv_batch_clear(struct sn_kv_batch *b)
{
	b->len = 0;
	b->nops = 0;
}

void sn_kv_batch_free(struct sn_kv_batch *b)
{
	if (b) {
		free(b->buf);
		free(b);
	}
}

/* Walk the operations packed in a buffer. */
struct bop {
	uint8_t type;
	uint16_t klen;
	uint32_t vlen;
	const unsigned char *key, *val;
};

static size_t bop_next(const unsigned char *p, struct bop *o)
{
	memcpy(&o->type, p, 1);
	memcpy(&o->klen, p + 1, 2);
	memcpy(&o->vlen, p + 3, 4);
	o->key = p + BATCH_OP_HDR;
	o->val = o->key + o->klen;
	return BATCH_OP_HDR + o->klen + o->vlen;
}

/* On the owner: apply the records of a committed batch part to the index. */
static void batch_apply(struct kv_shard *sh, struct kv_req *r)
{
	const unsigned char *p = r->data;

	for (uint32_t i = 0; i < r->nops; i++) {
		struct kv_pos *ps = &r->pos[i];
		struct sn_idx_ent *e;
		struct bop o;
		int fresh;

		p += bop_next(p, &o);
		e = sn_idx_upsert(&sh->idx, sn_kv_hash(o.key, o.klen), o.key, o.klen, &fresh);
		if (!e) {
			r->res = sn__err(-ENOMEM, "out of memory for the index");
			break;
		}
		/* A write that landed after the part wins, as it would have in the log. */
		if (fresh || sh->segs[e->seg].seq < sh->segs[ps->seg].seq ||
		    (e->seg == ps->seg && e->off < ps->off))
			kv_shard_index_set(sh, e, ps->type, ps->seg, ps->off, ps->len);
		if (o.type == SN_KV_REC_BPUT)
			sh->puts++;
		else
			sh->dels++;
	}
}

static int append_commit(struct kv_shard *sh, uint64_t id, uint32_t nrec)
{
	unsigned char extra[16] = { 0 };
	uint32_t seg, off;

	memcpy(extra, &id, 8);
	memcpy(extra + 8, &nrec, 4);
	return kv_shard_append(sh, SN_KV_REC_COMMIT, NULL, 0, NULL, 0, extra, &seg, &off);
}

/* Complete r once durable if asked (or always, for parts of multi-shard batches). */
static void finish_write(struct kv_shard *sh, struct kv_req *r, int force_durable)
{
	if (force_durable || (r->flags & SN_KV_DURABLE) || sh->kv->opts.sync == SN_KV_SYNC_ALWAYS)
		kv_shard_wait_durable(sh, r);
	else
		kv_complete(sh->w, r);
}

/* On the owner: append the part's records; a single-shard batch also commits here. */
static void exec_batch_part(struct kv_shard *sh, struct kv_req *r)
{
	const unsigned char *p = r->data;
	uint32_t seg, off;
	int err = 0;

	r->pos = calloc(r->nops, sizeof(*r->pos));
	if (!r->pos)
		err = sn__err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; !err && i < r->nops; i++) {
		struct bop o;

		p += bop_next(p, &o);
		err = kv_shard_append(sh, o.type, o.key, o.klen, o.val, o.vlen, &r->batch, &seg,
		                      &off);
		if (!err)
			r->pos[i] =
			        (struct kv_pos){ seg, off, sn_kv_rec_len(o.type, o.klen, o.vlen),
				                 o.type };
	}
	if (!err && r->single)
		err = append_commit(sh, r->batch, r->nops);
	if (err) {
		/* What was appended stays as uncommitted records: recovery ignores them. */
		r->res = err;
		kv_complete(sh->w, r);
		return;
	}
	sh->batches++;
	if (r->single)
		batch_apply(sh, r);
	else
		sh->batches_inflight++, r->inflight = 1; /* compaction waits for the outcome */
	finish_write(sh, r, !r->single);
}

static void batch_msg(void *arg)
{
	struct kv_req *r = arg;
	struct kv_shard *sh = &r->kv->shards[r->shard];
	int err;

	switch (r->op) {
	case KV_BATCH_PART:
		exec_batch_part(sh, r);
		break;
	case KV_BATCH_COMMIT:
		if ((err = append_commit(sh, r->batch, r->nops))) {
			r->res = err;
			kv_complete(sh->w, r);
		} else {
			/* In the log now: recovery may find it whatever its flush does, so the
			 * batch counts as committed from here on. */
			r->batch_ok = 1;
			finish_write(sh, r, 0);
		}
		break;
	case KV_BATCH_APPLY:
		if (r->batch_ok)
			batch_apply(sh, r->part);
		/* The commit is in the log but its flush failed: a crash may keep it or lose
		 * it. The batch's records here must stay as they are (batch records, which
		 * recovery applies only with the commit), so compaction must never rewrite
		 * them as plain ones or drop them: the shard takes no more writes. */
		if (r->commit_lost)
			kv_shard_fail(sh, -EIO);
		sh->batches_inflight--;
		kv_compact_maybe(sh);
		kv_complete(sh->w, r);
		break;
	}
}

static void latch_cb(void *arg, int res, const void *val, size_t vlen)
{
	(void)res;
	(void)val;
	(void)vlen;
	sn_rt_latch_done(arg);
}

/* Send r to its shard's owner from a foreign thread, waiting while the inbox is full. */
static int send_wait(struct sn_kv *kv, struct kv_req *r)
{
	int err;

	r->origin = SN_RT_FOREIGN;
	while ((err = sn_rt_send(kv->rt, kv_owner(kv, r->shard), batch_msg, r)) == -EAGAIN)
		sched_yield();
	return err;
}

/* Send one request per shard that has a part, and wait for all (r->res is kept). */
static int fan_out(struct sn_kv *kv, struct kv_req **reqs, unsigned n, unsigned count)
{
	struct sn_rt_latch latch;
	int err = 0;

	sn_rt_latch_init(&latch, count);
	for (unsigned s = 0; s < n; s++) {
		if (!reqs[s])
			continue;
		reqs[s]->keep = 1;
		reqs[s]->cb = latch_cb;
		reqs[s]->arg = &latch;
		if (send_wait(kv, reqs[s])) {
			reqs[s]->res = -ESHUTDOWN;
			sn_rt_latch_done(&latch);
		}
	}
	sn_rt_latch_wait(&latch);
	for (unsigned s = 0; s < n; s++)
		if (reqs[s] && reqs[s]->res && !err) {
			err = reqs[s]->res;
			if (reqs[s]->msg)
				sn__err(err, "%s", reqs[s]->msg);
		}
	return err;
}

static void free_reqs(struct kv_req **reqs, unsigned n)
{
	for (unsigned s = 0; reqs && s < n; s++)
		if (reqs[s]) {
			free(reqs[s]->msg);
			free(reqs[s]->pos);
			kv_req_free(reqs[s]);
		}
	free(reqs);
}

int sn_kv_write(struct sn_kv *kv, struct sn_kv_batch *b, unsigned flags)
{
	unsigned n = kv->sb.shards, involved = 0, first = UINT32_MAX;
	struct kv_req **parts = NULL, **apply = NULL, *commit[1] = { NULL };
	size_t *len = NULL;
	uint64_t id;
	int err = not_on_worker(kv, "sn_kv_write");

	if (err)
		return err;
	if (!b->nops)
		return sn__err(-EINVAL, "the batch is empty");
	if (kv->opts.readonly)
		return read_only();
	if (flags & ~SN_KV_DURABLE)
		return sn__err(-EINVAL, "unknown flags 0x%x", flags & ~SN_KV_DURABLE);
	parts = calloc(n, sizeof(struct kv_req *));
	apply = calloc(n, sizeof(struct kv_req *));
	len = calloc(n, sizeof(*len));
	if (!parts || !apply || !len) {
		err = sn__err(-ENOMEM, "out of memory");
		goto out;
	}
	/* Split by shard: sizes first, then copies. */
	for (size_t o = 0; o < b->len;) {
		struct bop op;
		size_t l = bop_next(b->buf + o, &op);

		if ((err = check_kv(op.klen, op.vlen, kv)))
			goto out;
		len[kv_shard_of(kv, sn_kv_hash(op.key, op.klen))] += l;
		o += l;
	}
	id = kv->batch_base ^ (atomic_fetch_add(&kv->next_batch, 1) * 0x9e3779b97f4a7c15ull);
	for (unsigned s = 0; s < n; s++) {
		if (!len[s])
			continue;
		/* Its apply too, now: once a part is in, a shard waits for its apply (phase
		 * 3), and a request that could not be had then would leave it waiting. */
		if (!(parts[s] = kv_req_new(kv, KV_BATCH_PART, NULL, 0, NULL, len[s], flags, NULL,
		                            NULL)) ||
		    !(apply[s] = kv_req_new(kv, KV_BATCH_APPLY, NULL, 0, NULL, 0, 0, NULL, NULL))) {
			err = sn__err(-ENOMEM, "out of memory");
			goto out;
		}
		parts[s]->vlen = 0;
		parts[s]->shard = s;
		parts[s]->batch = id;
		involved++;
		if (first == UINT32_MAX)
			first = s;
		len[s] = 0;
	}
	for (size_t o = 0; o < b->len;) {
		struct bop op;
		size_t l = bop_next(b->buf + o, &op);
		unsigned s = kv_shard_of(kv, sn_kv_hash(op.key, op.klen));

		memcpy(parts[s]->data + len[s], b->buf + o, l);
		len[s] += l;
		parts[s]->nops++;
		o += l;
	}
	for (unsigned s = 0; s < n; s++)
		if (parts[s])
			parts[s]->single = involved == 1;

	/* Phase 1: every shard appends its part (durable first when several shards). */
	err = fan_out(kv, parts, n, involved);
	if (involved == 1)
		goto out;
	/* Phase 2: the commit record, on the first shard involved. */
	if (!err) {
		/* Durable always: once applied, a batch record may hide (or let compaction
		 * drop) an older durable record, and a later durable write on its shard waits
		 * only for its own shard's log, not for this commit. */
		if (!(commit[0] = kv_req_new(kv, KV_BATCH_COMMIT, NULL, 0, NULL, 0,
		                             flags | SN_KV_DURABLE, NULL, NULL))) {
			err = sn__err(-ENOMEM, "out of memory");
		} else {
			commit[0]->shard = first;
			commit[0]->batch = id;
			commit[0]->nops = b->nops;
			err = fan_out(kv, commit, 1, 1);
		}
	}
	/* Phase 3: apply the parts everywhere, or drop them after a failure. */
	for (unsigned s = 0; s < n; s++) {
		/* A part that failed before its records were in (append) counts for nothing;
		 * one whose flush failed after is in batches_inflight: it is dropped (no
		 * commit went out) but must count off there, or compaction waits for ever. */
		if (!parts[s] || !apply[s]) /* both or neither */
			continue;
		if (parts[s]->res && !parts[s]->inflight) {
			kv_req_free(apply[s]);
			apply[s] = NULL;
			continue;
		}
		apply[s]->shard = s;
		apply[s]->part = parts[s];
		/* Applied exactly when a commit record went into the log (even if making it
		 * durable failed: then the caller gets the error, and the batch may or may not
		 * survive a crash, but memory must agree with what recovery could find). */
		apply[s]->batch_ok = commit[0] && commit[0]->batch_ok;
		apply[s]->commit_lost = apply[s]->batch_ok && commit[0]->res < 0;
	}
	{
		/* The first shard (it holds the commit) applies last: until every record of
		 * the batch is in its shard's index, its compaction (paused while the batch
		 * is in flight) must not judge the commit record unneeded. */
		struct kv_req *last = first < n ? apply[first] : NULL;
		unsigned napply = 0;

		if (last)
			apply[first] = NULL;
		for (unsigned s = 0; s < n; s++)
			napply += apply[s] != NULL;
		if (napply)
			fan_out(kv, apply, n, napply);
		if (last) {
			apply[first] = last;
			fan_out(kv, &apply[first], 1, 1);
		}
	}
out:
	free_reqs(parts, n);
	free_reqs(apply, n);
	if (commit[0]) {
		free(commit[0]->msg);
		kv_req_free(commit[0]);
	}
	free(len);
	return err;
}

/* ---- format ---- */

static int default_shards(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
}

/* Past the engine names of a layered URI (fault:psync:PATH): the innermost one into
 * name (engine_takes), and what follows it. */
static const char *inner_path(const char *uri, char name[32])
{
	const char *p = uri, *c;

	name[0] = '\0';
	while ((c = strchr(p, ':')) && (size_t)(c - p) < 32 && !memchr(p, '/', c - p) &&
	       !memchr(p, '?', c - p)) {
		snprintf(name, 32, "%.*s", (int)(c - p), p);
		p = c + 1;
	}
	return p;
}

/*
 * A plain path means auto:PATH. A missing file is created with `size` bytes rounded up
 * to 4 KiB (a direct-I/O engine sees only whole blocks of it: a capacity of 5,000,000
 * would not fit its own file), unless the URI says create= itself.
 */
static char *device_uri(const char *uri, uint64_t size)
{
	const char *colon = strchr(uri, ':'), *slash = strchr(uri, '/'), *file;
	char *out = NULL, *with = NULL, name[32];
	struct sn_uri u;
	struct stat st;
	int r, missing;

	if (!colon || (slash && slash < colon))
		r = asprintf(&out, "auto:%s", uri);
	else
		r = asprintf(&out, "%s", uri);
	if (r < 0)
		return NULL;
	/* A URI that does not parse goes as it is: the engine's open says what is wrong. */
	if (!size || sn__uri_parse(out, &u))
		return out;
	file = inner_path(u.path, name);
	missing = *file && !sn__uri_get(&u, "create") && stat(file, &st) && errno == ENOENT;
	if (missing && sn__uri_get(&u, "size"))
		r = asprintf(&with, "%s&create=1", out);
	else if (missing)
		r = asprintf(&with, "%s%ccreate=1&size=%llu", out, strchr(out, '?') ? '&' : '?',
		             (unsigned long long)((size + 4095) & ~(uint64_t)4095));
	sn__uri_free(&u);
	if (!missing)
		return out;
	free(out);
	return r < 0 ? NULL : with;
}

static uint32_t format_block(const struct sn_dev_info *in)
{
	uint32_t bs = SN_KV_MIN_BLOCK;

	while (bs < in->block_size || bs < in->mem_align)
		bs *= 2;
	return bs;
}

static int write_super(struct sn_dev *dev, const struct sn_kv_super *sb)
{
	struct sn_queue *q;
	unsigned char *buf;
	int err;

	if ((err = sn_queue_create(dev, 4, &q)))
		return err;
	if ((err = sn_queue_buf_alloc(q, 2 * sb->block_size, (void **)&buf))) {
		sn_queue_destroy(q);
		return err;
	}
	memcpy(buf, sb, sizeof(*sb));
	memcpy(buf + sb->block_size, sb, sizeof(*sb));
	err = sn_queue_pwrite(q, buf, 2 * sb->block_size, 0);
	if (!err)
		err = sn_queue_flush(q);
	if (err)
		err = sn__err(err, "writing the superblock: %s", sn_strerror(err));
	sn_queue_destroy(q);
	return err;
}

/* On a regular file, write the zeros at the start of each shard's first segment (its
 * first head), so a fresh store's first durable puts need no extent conversion (see
 * KV_ZERO_AHEAD). */
static int zero_first_heads(struct sn_dev *dev, const struct sn_kv_super *sb)
{
	uint32_t len = sb->segment_size < KV_ZERO_AHEAD ? sb->segment_size : KV_ZERO_AHEAD;
	struct sn_queue *q;
	unsigned char *buf;
	int err;

	if ((err = sn_queue_create(dev, 4, &q)))
		return err;
	if (!(err = sn_queue_buf_alloc(q, len, (void **)&buf))) {
		memset(buf, 0, len);
		for (unsigned s = 0; !err && s < sb->shards; s++)
			err = sn_queue_pwrite(q, buf, len,
			                      sb->log_offset + (uint64_t)s * sb->shard_segments *
			                                               sb->segment_size);
	}
	sn_queue_destroy(q);
	return err ? sn__err(err, "writing the first segments: %s", sn_strerror(err)) : 0;
}

static int do_format(struct sn_dev *dev, const struct sn_kv_opts *o, struct sn_kv_super *sb)
{
	int err;
	struct sn_dev_info in;
	uint64_t cap, segs;
	uint32_t seg = o->segment_size ? o->segment_size : DEFAULT_SEGMENT;
	unsigned shards = o->shards ? o->shards : (unsigned)default_shards();
	struct timespec ts;

	sn_dev_info(dev, &in);
	cap = o->capacity ? o->capacity : in.capacity_bytes;
	if (cap > in.capacity_bytes)
		return sn__err(-EINVAL, "capacity %llu is larger than the device (%llu bytes)",
		               (unsigned long long)cap, (unsigned long long)in.capacity_bytes);
	if (!sn__is_pow2(seg) || seg < SN_KV_MIN_SEG || seg > SN_KV_MAX_SEG)
		return sn__err(-EINVAL, "segment size %u: a power of two from 64 KiB to 1 GiB",
		               seg);
	if (shards > SN_KV_MAX_SHARDS)
		return sn__err(-EINVAL, "%u shards: at most %u", shards, SN_KV_MAX_SHARDS);
	memset(sb, 0, sizeof(*sb));
	memcpy(sb->magic, SN_KV_SB_MAGIC, 8);
	sb->version = SN_KV_FORMAT_VERSION;
	if (getrandom(sb->uuid, sizeof(sb->uuid), 0) != sizeof(sb->uuid))
		return sn__err(-EIO, "no random bytes for the store's uuid");
	sb->block_size = format_block(&in);
	if (sb->block_size > 65536)
		return sn__err(-EINVAL, "device block size %u: at most 64 KiB", in.block_size);
	sb->log_offset = 1u << 20;
	if (sb->log_offset < 2ull * sb->block_size)
		sb->log_offset = 2ull * sb->block_size;
	/* Shrink segments on small devices: every shard needs a head, a spare for
	 * compaction, and room to move. */
	if (!o->segment_size)
		while (seg > SN_KV_MIN_SEG && cap > sb->log_offset &&
		       (cap - sb->log_offset) / seg / shards < 8)
			seg /= 2;
	segs = cap > sb->log_offset ? (cap - sb->log_offset) / seg / shards : 0;
	if (segs < 4)
		return sn__err(-EINVAL,
		               "%llu bytes hold %llu segments of %u bytes per shard for %u shards: "
		               "each shard needs at least 4; use a larger device, fewer shards or "
		               "smaller segments",
		               (unsigned long long)cap, (unsigned long long)segs, seg, shards);
	sb->segment_size = seg;
	sb->capacity = cap;
	sb->shards = shards;
	sb->shard_segments = segs;
	clock_gettime(CLOCK_REALTIME, &ts);
	sb->created_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	sb->crc = sn_crc32c(0, sb, offsetof(struct sn_kv_super, crc));
	if (!(in.caps & SN_CAP_BLOCKDEV) && (err = zero_first_heads(dev, sb)))
		return err;
	return write_super(dev, sb);
}

/* Does the engine that opens uri's path (the innermost of fault:psync:PATH) take key? */
static int engine_takes(const char *uri, const char *key)
{
	const struct sn_engine_desc *d;
	char name[32];

	inner_path(uri, name);
	for (unsigned i = 0; (d = sn_engine_desc(i)); i++)
		for (const struct sn_option *o = d->options; !strcmp(d->name, name) && o->key; o++)
			if (!strcmp(o->key, key))
				return 1;
	return 0;
}

static int open_dev(const char *uri, const struct sn_kv_opts *o, struct sn_dev **devp)
{
	/* size 0: never create a missing file (no_create). */
	char *u = device_uri(uri, o && o->no_create  ? 0
	                          : o && o->capacity ? o->capacity
	                                             : DEFAULT_NEW_SIZE);
	int err;

	if (!u)
		return sn__err(-ENOMEM, "out of memory");
	if (o && o->readonly && !strstr(u, "readonly=") && engine_takes(u, "readonly")) {
		char *ro = NULL;
		int r = asprintf(&ro, "%s%sreadonly=1", u, strchr(u, '?') ? "&" : "?");

		free(u);
		if (r < 0)
			return sn__err(-ENOMEM, "out of memory");
		err = sn_dev_open(ro, devp);
		free(ro);
		return err;
	}
	err = sn_dev_open(u, devp);
	free(u);
	return err;
}

int sn_kv_format(const char *uri, const struct sn_kv_opts *opts)
{
	struct sn_kv_opts o = opts ? *opts : (struct sn_kv_opts){ 0 };
	struct sn_kv_super sb;
	struct sn_dev *dev;
	int err;

	if (on_worker_any())
		return sn__err(-EDEADLK, "sn_kv_format on a worker");
	if (o.readonly)
		return sn__err(-EINVAL, "opts.readonly: a format writes");
	if ((err = open_dev(uri, &o, &dev)))
		return err;
	err = do_format(dev, &o, &sb);
	sn_dev_close(dev);
	return err;
}

/* ---- open ---- */

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

#define NO_STORE_BYTES (1u << 20) /* read_super: all zeros here means no store */

/* 0 and *sb; -ENOENT when the device's first MiB is zeros (no store); SN_EFORMAT
 * otherwise. */
static int read_super(struct sn_dev *dev, struct sn_kv_super *sb)
{
	struct sn_dev_info in;
	uint32_t bs, win;
	struct sn_queue *q;
	unsigned char *buf;
	int err, newer = 0;

	sn_dev_info(dev, &in);
	bs = format_block(&in);
	if (in.capacity_bytes < 2ull * bs)
		return sn__err(-ENOENT, "the device is too small to hold a store");
	/* Copy B sits at the store's block size, which may differ from this device's block
	 * now (the same file on another filesystem, say): read far enough for any. And a
	 * device is taken for empty (formatted by sn_kv_open) only when its whole first MiB
	 * is zeros, where filesystems and partition tables keep their signatures: a file
	 * of other data after 128 KiB of zeros is not overwritten. */
	win = NO_STORE_BYTES;
	if (win > (in.capacity_bytes & ~(uint64_t)(bs - 1)))
		win = (uint32_t)(in.capacity_bytes & ~(uint64_t)(bs - 1));
	if ((err = sn_queue_create(dev, 2, &q)))
		return err;
	err = sn_queue_buf_alloc(q, win, (void **)&buf);
	for (uint32_t o = 0, chunk; !err && o < win; o += chunk) {
		chunk = win - o;
		if (in.max_transfer_bytes && chunk > in.max_transfer_bytes)
			chunk = in.max_transfer_bytes >= bs ? in.max_transfer_bytes & ~(bs - 1)
			                                    : bs;
		err = sn_queue_pread(q, buf + o, chunk, o);
	}
	if (err) {
		sn_queue_destroy(q);
		return sn__err(err, "reading the superblock: %s", sn_strerror(err));
	}
	err = SN_EFORMAT;
	/* Copy A at 0, copy B at its block size: every copy with a valid checksum counts. One
	 * newer than this binary refuses the store, even when another is older (a half-done
	 * upgrade must not be read by the old format's rules); else the first one serves. */
	for (uint32_t off = 0; off <= 65536 && off + sizeof(struct sn_kv_super) <= win;
	     off = off ? 2 * off : SN_KV_MIN_BLOCK) {
		const struct sn_kv_super *s = (const struct sn_kv_super *)(buf + off);

		if (off % bs || memcmp(s->magic, SN_KV_SB_MAGIC, 8) != 0 ||
		    sn_crc32c(0, s, offsetof(struct sn_kv_super, crc)) != s->crc ||
		    (off && s->block_size != off))
			continue;
		if (s->version > SN_KV_FORMAT_VERSION) {
			newer = (int)s->version;
			continue;
		}
		if (err) {
			*sb = *s;
			err = 0;
		}
	}
	if (newer)
		err = SN_EFORMAT;
	if (err && newer)
		err = sn__err(SN_EFORMAT,
		              "the store has format version %d; this snstore reads "
		              "version %u and older: upgrade snstore",
		              newer, SN_KV_FORMAT_VERSION);
	else if (err && all_zero(buf, win))
		err = sn__err(-ENOENT, "the device holds no store");
	else if (err && !memcmp(buf, SN_KV_SB_MAGIC, 8))
		err = sn__err(SN_ECORRUPT, "both superblock copies fail their checksum");
	else if (err)
		err = sn__err(SN_EFORMAT, "the device holds something that is not an snstore KV "
		                          "store (use 'snstore kv format' to overwrite it)");
	sn_queue_destroy(q);
	if (err)
		return err;
	/* Checked fields: a damaged but checksummed superblock must not crash us. Flags are
	 * feature bits: one this binary does not know changes the format under it. */
	if (sb->version < 1 || sb->flags)
		return sn__err(SN_EFORMAT,
		               "the superblock has version %u and flags 0x%x: this snstore reads "
		               "version 1 to %u with no flags",
		               sb->version, sb->flags, SN_KV_FORMAT_VERSION);
	if (!sn__is_pow2(sb->block_size) || sb->block_size < bs || sb->block_size > 65536 ||
	    !sn__is_pow2(sb->segment_size) || sb->segment_size < SN_KV_MIN_SEG ||
	    sb->segment_size > SN_KV_MAX_SEG || !sb->shards || sb->shards > SN_KV_MAX_SHARDS ||
	    sb->shard_segments < 4 || sb->shard_segments >= (1ull << 32) ||
	    sb->log_offset % sb->block_size || sb->log_offset < 2ull * sb->block_size ||
	    sb->capacity > in.capacity_bytes || sb->log_offset > sb->capacity ||
	    /* sb->log_offset + shard_segments * segment_size * shards <= capacity, without
	     * the overflow a crafted superblock would use to pass it */
	    sb->shard_segments > (sb->capacity - sb->log_offset) / sb->segment_size / sb->shards)
		return sn__err(SN_EFORMAT,
		               "the superblock describes an impossible layout (capacity "
		               "%llu, %u shards of %llu segments of %u bytes, device %llu "
		               "bytes)",
		               (unsigned long long)sb->capacity, sb->shards,
		               (unsigned long long)sb->shard_segments, sb->segment_size,
		               (unsigned long long)in.capacity_bytes);
	return 0;
}

static void worker_io(void *arg, const struct sn_cqe *cqe, unsigned n)
{
	kv_shard_io_done(arg, cqe, n);
}

static void worker_setup(void *arg)
{
	struct kv_worker *w = arg;
	struct sn_kv *kv = w->kv;
	int err;

	w->done_tail = &w->done_head;
	w->reply_tail = &w->reply_head;
	w->flush_tail = &w->flush_head;
	w->done_task = (struct sn_rt_task){ done_task, w, NULL, 0 };
	w->q_depth =
	        kv->info.max_queue_depth < QUEUE_DEPTH ? kv->info.max_queue_depth : QUEUE_DEPTH;
	err = kv_post_init(w);
	if (!err)
		err = sn_queue_create(kv->dev, w->q_depth, &w->q);
	if (!err)
		err = sn_rt_queue_watch(w->q, worker_io, w);
	for (unsigned i = 0; !err && i < w->nown; i++)
		err = kv_shard_init(&kv->shards[w->own[i]]);
	if (err) {
		w->err = err;
		snprintf(w->errmsg, sizeof(w->errmsg), "%s", sn_errmsg());
	}
}

enum { REC_HEADERS, REC_SCAN, REC_BATCHES }; /* the phases of recovery, in order */

struct recover_ctx {
	struct kv_worker *w;
	struct sn_rt_latch *done;
	int phase;
};

static void worker_recover(void *arg)
{
	struct recover_ctx *c = arg;
	struct kv_worker *w = c->w;
	struct sn_kv *kv = w->kv;

	for (unsigned i = 0; !w->err && i < w->nown; i++) {
		struct kv_shard *sh = &kv->shards[w->own[i]];
		int err = c->phase == REC_HEADERS ? kv_shard_recover_headers(sh)
		          : c->phase == REC_SCAN  ? kv_shard_recover(sh)
		                                  : kv_shard_apply_batches(sh);

		if (err) {
			w->err = err;
			snprintf(w->errmsg, sizeof(w->errmsg), "%s", sn_errmsg());
		}
	}
	sn_rt_latch_done(c->done);
}

/* Run one phase of recovery on every worker at once. */
static int recover_all(struct sn_kv *kv, int phase)
{
	struct recover_ctx *c = calloc(kv->nworkers, sizeof(*c));
	struct sn_rt_latch done;
	int err = 0;

	if (!c)
		return sn__err(-ENOMEM, "out of memory");
	sn_rt_latch_init(&done, kv->nworkers);
	for (unsigned i = 0; i < kv->nworkers; i++) {
		int serr;

		c[i] = (struct recover_ctx){ &kv->workers[i], &done, phase };
		while ((serr = sn_rt_send(kv->rt, i, worker_recover, &c[i])) == -EAGAIN)
			sched_yield();
		if (serr) { /* the runtime stopped: that worker will not count down */
			err = err ? err
			          : sn__err(serr, "worker %u of the runtime: %s", i,
			                    sn_strerror(serr));
			sn_rt_latch_done(&done);
		}
	}
	sn_rt_latch_wait(&done);
	free(c);
	for (unsigned i = 0; i < kv->nworkers && !err; i++)
		if (kv->workers[i].err)
			err = sn__err(kv->workers[i].err, "%s", kv->workers[i].errmsg);
	return err;
}

static void worker_close(void *arg)
{
	struct kv_worker *w = arg;
	struct sn_kv *kv = w->kv;
	struct sn_cqe cqe[64];

	for (unsigned i = 0; i < w->nown; i++)
		kv->shards[w->own[i]].closed = 1;
	if (w->q) {
		/* Let reads and loads still in flight finish into their owners. */
		while (w->q_used) {
			int n = sn_queue_reap(w->q, cqe, 64, 1);

			if (n <= 0)
				break;
			kv_shard_io_done(w, cqe, (unsigned)n);
		}
		for (unsigned i = 0; kv->ckpt_on_close && i < w->nown; i++) {
			int err = kv_ckpt_write(&kv->shards[w->own[i]]);

			if (err && !w->close_err) {
				w->close_err = err;
				snprintf(w->close_msg, sizeof(w->close_msg), "%s", sn_errmsg());
			}
		}
		sn_rt_queue_unwatch(w->q);
		sn_queue_destroy(w->q);
		w->q = NULL;
	}
	for (unsigned i = 0; i < w->nown; i++)
		kv_shard_fini(&kv->shards[w->own[i]]);
}

/* One more message to each worker: deferred tasks of earlier iterations have run. */
static void nop(void *arg)
{
	(void)arg;
}

/* Close, first step, on each worker: send the batches it holds open for other workers. */
static void worker_send_open(void *arg)
{
	struct kv_worker *w = arg;

	w->open_left = 0;
	for (unsigned i = 0; w->mb_open && i < w->kv->nworkers; i++)
		if (kv_post_send(w, i))
			w->open_left = 1;
}

/* Calls workers made to other workers' shards reach them before any closes, and their
 * replies come back: every batch is sent, then each worker runs whole iterations (the
 * owners run the batches, the callers their callbacks). */
static void drain_batches(struct sn_kv *kv)
{
	for (int again = 1; again;) {
		again = 0;
		for (unsigned i = 0; i < kv->nworkers; i++)
			sn_rt_call(kv->rt, i, worker_send_open, &kv->workers[i]);
		for (unsigned i = 0; i < kv->nworkers; i++)
			again |= kv->workers[i].open_left;
		if (again)
			sched_yield();
	}
	for (int round = 0; round < 3; round++)
		for (unsigned i = 0; i < kv->nworkers; i++)
			sn_rt_call(kv->rt, i, nop, NULL);
}

static unsigned max_owner(const struct sn_kv_opts *o)
{
	unsigned m = 0;

	for (unsigned s = 0; s < o->nowners; s++)
		m = o->owners[s] > m ? o->owners[s] : m;
	return m;
}

/*
 * Which worker owns each shard (kv->owner), and how many workers the store uses
 * (kv->nworkers: every owner among them; a worker past them owns nothing). -EINVAL when
 * opts.owners does not fit the store or the runtime.
 */
static int place_shards(struct sn_kv *kv)
{
	const struct sn_kv_opts *o = &kv->opts;
	unsigned rtw = sn_rt_workers(kv->rt), shards = kv->sb.shards;

	if (o->owners && o->nowners != shards)
		return sn__err(-EINVAL, "owners lists %u shards; the store has %u", o->nowners,
		               shards);
	if (o->owners && max_owner(o) >= rtw)
		return sn__err(-EINVAL, "owners names worker %u; the runtime has %u", max_owner(o),
		               rtw);
	kv->nworkers = o->owners ? max_owner(o) + 1 : rtw < shards ? rtw : shards;
	if (!(kv->owner = malloc(shards * sizeof(*kv->owner))))
		return sn__err(-ENOMEM, "out of memory");
	/* nworkers >= 1: a runtime has a worker at least, a store a shard at least (read_super
	 * refuses 0). clang-analyzer does not know sn_rt_workers() of rt.c. */
	for (unsigned s = 0; s < shards; s++)
		/* NOLINTNEXTLINE(clang-analyzer-core.DivideZero): see above */
		kv->owner[s] = (uint16_t)(o->owners ? o->owners[s] : s % kv->nworkers);
	kv->opts.owners = NULL; /* the caller's array: not kept */
	return 0;
}

/* The workers, and each one's list of the shards it owns (kv->own, in shard order). */
static int own_lists(struct sn_kv *kv)
{
	unsigned at = 0;

	kv->workers = sn__zalloc_lines(kv->nworkers, sizeof(*kv->workers));
	kv->own = malloc(kv->sb.shards * sizeof(*kv->own));
	if (!kv->workers || !kv->own)
		return sn__err(-ENOMEM, "out of memory");
	for (unsigned i = 0; i < kv->nworkers; i++) {
		kv->workers[i].own = kv->own + at;
		for (unsigned s = 0; s < kv->sb.shards; s++)
			if (kv->owner[s] == i)
				kv->own[at++] = s;
		kv->workers[i].nown = (unsigned)(kv->own + at - kv->workers[i].own);
	}
	return 0;
}

/* Stop every worker's share (writing checkpoints when ckpt_on_close) and free the store:
 * 0 or the first checkpoint error. */
static int kv_free(struct sn_kv *kv)
{
	int err = 0;

	if (kv->rt && kv->workers) {
		/* A runtime of the caller's stopped under the store (close fails its sync and
		 * writes no checkpoint): its workers have exited, so nothing else touches what
		 * they owned, and this thread frees it. While a stop is still under way
		 * nothing can be freed safely: that leaks. */
		for (unsigned i = 0; i < kv->nworkers; i++)
			if (sn_rt_call(kv->rt, i, worker_close, &kv->workers[i]) &&
			    sn_rt_stopped(kv->rt))
				worker_close(&kv->workers[i]);
		for (unsigned i = 0; i < kv->nworkers; i++)
			sn_rt_call(kv->rt, i, nop, NULL);
		for (unsigned i = 0; i < kv->nworkers && !err; i++)
			if (kv->workers[i].close_err)
				err = sn__err(kv->workers[i].close_err, "%s",
				              kv->workers[i].close_msg);
	}
	if (kv->own_rt)
		sn_rt_destroy(kv->rt);
	for (unsigned i = 0; kv->workers && i < kv->nworkers; i++)
		kv_post_free(&kv->workers[i]);
	if (kv->dev)
		sn_dev_close(kv->dev);
	pthread_mutex_destroy(&kv->batch_lock);
	pthread_mutex_destroy(&kv->bparts_lock);
	u64map_free(&kv->bparts);
	free(kv->commits);
	free(kv->damaged);
	free(kv->shards);
	free(kv->owner);
	free(kv->own);
	free(kv->workers);
	free(kv);
	return err;
}

int sn_kv_open(const char *uri, const struct sn_kv_opts *opts, struct sn_kv **kvp)
{
	struct sn_kv *kv;
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	uint64_t seg_over;
	int err;

	*kvp = NULL;
	if (on_worker_any())
		return sn__err(-EDEADLK, "sn_kv_open on a worker");
	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return sn__err(-ENOMEM, "out of memory");
	pthread_mutex_init(&kv->batch_lock, NULL);
	pthread_mutex_init(&kv->bparts_lock, NULL);
	kv->opts = opts ? *opts : (struct sn_kv_opts){ 0 };
	if (!kv->opts.sync_interval_us)
		kv->opts.sync_interval_us = 1000;
	if (!kv->opts.compact_pct)
		kv->opts.compact_pct = 50;
	if (!kv->opts.cache_bytes)
		kv->opts.cache_bytes =
		        pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz / 4 : 1ull << 30;
	if (kv->opts.sync > SN_KV_SYNC_ALWAYS || kv->opts.compact_pct > 100) {
		err = sn__err(-EINVAL, "bad sync mode or compact_pct");
		goto fail;
	}
	if (kv->opts.rt && kv->opts.workers) {
		err = sn__err(-EINVAL, "opts.workers is for a runtime the store starts: the "
		                       "runtime given (opts.rt) has its own workers");
		goto fail;
	}
	if (kv->opts.readonly) { /* nothing to make durable: never a write, never a format */
		kv->opts.no_create = 1;
		kv->opts.sync = SN_KV_SYNC_NONE;
	}
	if (kv->opts.rt && sn_rt_stopped(kv->opts.rt)) {
		err = sn__err(-ESHUTDOWN, "the runtime given (opts.rt) was stopped");
		goto fail;
	}
	if ((err = open_dev(uri, &kv->opts, &kv->dev)))
		goto fail;
	sn_dev_info(kv->dev, &kv->info);
	/* Through the mapping only where persisting is a cache-line flush: an msync would
	 * report a failed writeback once for every worker (one file description). */
	if ((kv->info.caps & SN_CAP_BYTE_ADDR) && !kv->opts.block_io && !kv->opts.readonly &&
	    (kv->info.persist_gran == SN_GRAN_BYTE ||
	     kv->info.persist_gran == SN_GRAN_CACHE_LINE)) {
		void *base;

		if (sn_dev_map(kv->dev, &base) == 0)
			kv->map = base;
	}
	kv->pipeline = getenv("SN_KV_PIPE") != NULL;
	kv->zero_ahead = !kv->map && !(kv->info.caps & SN_CAP_BLOCKDEV) && !getenv("SN_KV_NOZERO");
	err = read_super(kv->dev, &kv->sb);
	if (err == -ENOENT && !kv->opts.no_create)
		err = do_format(kv->dev, &kv->opts, &kv->sb);
	if (err)
		goto fail;
	if (kv->opts.rt) {
		kv->rt = kv->opts.rt;
	} else {
		struct sn_rt_opts ro = { 0 };
		unsigned cpus = (unsigned)default_shards();

		unsigned want = kv->opts.workers ? kv->opts.workers : cpus;

		if (kv->opts.owners && !kv->opts.workers)
			want = max_owner(&kv->opts) + 1;
		ro.workers = kv->sb.shards < want && !kv->opts.owners ? kv->sb.shards : want;
		if (ro.workers > cpus) /* asked for: more than one per CPU, so not pinned */
			ro.flags |= SN_RT_NOPIN;
		if ((err = sn_rt_create(&ro, &kv->rt)))
			goto fail;
		kv->own_rt = 1;
	}
	if ((err = place_shards(kv)))
		goto fail;
	seg_over = sizeof(struct sn_kv_seghdr) + sn_kv_rec_len(SN_KV_REC_BPUT, SN_KV_MAX_KEY, 0);
	kv->max_value = kv->sb.segment_size - seg_over - 8;
	if (kv->max_value > SN_KV_MAX_VALUE)
		kv->max_value = SN_KV_MAX_VALUE;
	/* sb.shards >= 1 (read_super, do_format); clang-analyzer forgets sb across sn_rt_create */
	/* NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI): see above */
	kv->shards = sn__zalloc_lines(kv->sb.shards, sizeof(*kv->shards));
	if (!kv->shards) {
		err = sn__err(-ENOMEM, "out of memory");
		goto fail;
	}
	if ((err = own_lists(kv)))
		goto fail;
	for (unsigned s = 0; s < kv->sb.shards; s++) {
		struct kv_shard *sh = &kv->shards[s];

		sh->kv = kv;
		sh->id = s;
		sh->w = &kv->workers[kv_owner(kv, s)];
		sh->nsegs = (uint32_t)kv->sb.shard_segments;
		sh->base = kv->sb.log_offset +
		           (uint64_t)s * kv->sb.shard_segments * kv->sb.segment_size;
	}
	for (unsigned i = 0; i < kv->nworkers; i++) {
		kv->workers[i].kv = kv;
		kv->workers[i].idx = i;
		if ((err = sn_rt_call(kv->rt, i, worker_setup, &kv->workers[i]))) {
			err = sn__err(err, "worker %u of the runtime: %s", i, sn_strerror(err));
			goto fail;
		}
		if (kv->workers[i].err) {
			err = sn__err(kv->workers[i].err, "%s", kv->workers[i].errmsg);
			goto fail;
		}
	}
	if ((err = recover_all(kv, REC_HEADERS)))
		goto fail;
	/* Checkpoints only of one close on every shard (see kv_shard_recover_headers). */
	{
		uint64_t id, id0;

		kv->ckpt_use = !kv->opts.no_checkpoint && kv_shard_ckpt_close(&kv->shards[0], &id0);
		for (unsigned s = 1; s < kv->sb.shards && kv->ckpt_use; s++)
			kv->ckpt_use = kv_shard_ckpt_close(&kv->shards[s], &id) && id == id0;
	}
	if ((err = recover_all(kv, REC_SCAN)))
		goto fail;
	kv_commits_sort(kv);
	if ((err = recover_all(kv, REC_BATCHES)))
		goto fail;
	if (getrandom(&kv->batch_base, sizeof(kv->batch_base), 0) != sizeof(kv->batch_base))
		kv->batch_base = sn__now_ns() * 0x9e3779b97f4a7c15ull;
	*kvp = kv;
	return 0;
fail:
	if (kv->workers && kv->rt)
		for (unsigned i = 0; i < kv->nworkers; i++)
			if (!kv->workers[i].kv)
				kv->workers[i].kv = kv, kv->workers[i].idx = i;
	{
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", sn_errmsg());
		kv_free(kv);
		sn__err(err, "%s", msg);
	}
	return err;
}

int sn_kv_close(struct sn_kv *kv)
{
	int err;

	if (!kv)
		return 0;
	if ((err = not_on_worker(kv, "sn_kv_close")))
		return err;
	if (kv->nworkers > 1)
		drain_batches(kv);
	err = sn_kv_sync(kv);
	/* Checkpoints only of a store whose every acknowledged write is durable. */
	kv->ckpt_on_close = !err && !kv->opts.no_checkpoint && !kv->opts.readonly;
	if (getrandom(&kv->close_id, sizeof(kv->close_id), 0) != sizeof(kv->close_id))
		kv->close_id = sn__now_ns() * 0x9e3779b97f4a7c15ull;
	{
		int cerr = kv_free(kv);

		if (!err)
			err = cerr;
	}
	return err;
}

/* ---- stats, scan, compaction ---- */

struct stat_ctx {
	struct sn_kv *kv;
	unsigned w;
	struct sn_kv_stats st;
};

static void worker_stat(void *arg)
{
	struct stat_ctx *c = arg;
	struct sn_kv *kv = c->kv;
	struct sn_kv_stats *st = &c->st;

	for (unsigned j = 0; j < kv->workers[c->w].nown; j++) {
		const struct kv_shard *sh = &kv->shards[kv->workers[c->w].own[j]];

		st->keys += sh->idx.used - sh->idx.tombs;
		for (uint32_t i = 0; i < sh->nsegs; i++) {
			const struct kv_seg *g = &sh->segs[i];

			if (g->state == SEG_FREE)
				continue;
			if (g->state == SEG_CKPT) {
				st->checkpoint_segments++;
				continue;
			}
			st->segments_used++;
			st->live_bytes += g->live;
			if (g->state != SEG_COMPACTED && g->state != SEG_ZEROING)
				st->dead_bytes += g->used - sizeof(struct sn_kv_seghdr) - g->live;
		}
		st->puts += sh->puts;
		st->gets += sh->gets;
		st->dels += sh->dels;
		st->batches += sh->batches;
		st->syncs += sh->syncs;
		st->flushes += sh->flushes;
		st->cache_hits += sh->hits;
		st->cache_misses += sh->misses;
		st->cache_bytes += sh->cached_bytes;
		st->compactions += sh->compactions;
		st->compacted_bytes += sh->compacted_bytes;
		st->recovered_records += sh->recovered;
		st->checkpoint_keys += sh->ckpt_keys;
		if (sh->recovery_ns > st->recovery_ns)
			st->recovery_ns = sh->recovery_ns;
		st->torn_bytes += sh->torn_bytes;
		st->corrupt_records += sh->corrupt;
	}
}

int sn_kv_stat(struct sn_kv *kv, struct sn_kv_stats *st)
{
	int err = not_on_worker(kv, "sn_kv_stat");

	if (err)
		return err;
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < kv->nworkers; i++) {
		struct stat_ctx c = { kv, i, { 0 } };

		if ((err = sn_rt_call(kv->rt, i, worker_stat, &c)))
			return err;
		st->keys += c.st.keys;
		st->live_bytes += c.st.live_bytes;
		st->dead_bytes += c.st.dead_bytes;
		st->segments_used += c.st.segments_used;
		st->puts += c.st.puts;
		st->gets += c.st.gets;
		st->dels += c.st.dels;
		st->batches += c.st.batches;
		st->syncs += c.st.syncs;
		st->flushes += c.st.flushes;
		st->cache_hits += c.st.cache_hits;
		st->cache_misses += c.st.cache_misses;
		st->cache_bytes += c.st.cache_bytes;
		st->compactions += c.st.compactions;
		st->compacted_bytes += c.st.compacted_bytes;
		st->recovered_records += c.st.recovered_records;
		if (c.st.recovery_ns > st->recovery_ns)
			st->recovery_ns = c.st.recovery_ns;
		st->torn_bytes += c.st.torn_bytes;
		st->corrupt_records += c.st.corrupt_records;
		st->checkpoint_keys += c.st.checkpoint_keys;
		st->checkpoint_segments += c.st.checkpoint_segments;
	}
	st->shards = kv->sb.shards;
	st->workers = kv->nworkers;
	st->mapped = kv->map != NULL;
	st->segment_size = kv->sb.segment_size;
	st->max_value = kv->max_value;
	st->block_size = kv->sb.block_size;
	st->segments_total = kv->sb.shard_segments * kv->sb.shards;
	st->capacity_bytes = st->segments_total * kv->sb.segment_size;
	return 0;
}

struct keys_ctx {
	struct kv_shard *sh;
	unsigned char *buf;
	size_t len;
	int err;
};

static void shard_keys(void *arg)
{
	struct keys_ctx *c = arg;

	c->err = kv_shard_scan_keys(c->sh, &c->buf, &c->len);
}

int sn_kv_scan(struct sn_kv *kv,
               int (*fn)(void *arg, const void *key, size_t klen, const void *val, size_t vlen),
               void *arg)
{
	int err = not_on_worker(kv, "sn_kv_scan");

	for (unsigned s = 0; !err && s < kv->sb.shards; s++) {
		struct keys_ctx c = { &kv->shards[s], NULL, 0, 0 };

		if ((err = sn_rt_call(kv->rt, kv_owner(kv, s), shard_keys, &c)) || (err = c.err))
			break;
		for (size_t o = 0; !err && o < c.len;) {
			uint16_t kl;
			void *v;
			size_t vl;

			memcpy(&kl, c.buf + o, 2);
			err = sn_kv_get(kv, c.buf + o + 2, kl, &v, &vl);
			if (err == -ENOENT) { /* deleted since: skip */
				err = 0;
			} else if (!err) {
				err = fn(arg, c.buf + o + 2, kl, v, vl);
				free(v);
			}
			o += 2u + kl;
		}
		free(c.buf);
	}
	return err;
}

struct compact_ctx {
	struct kv_shard *sh;
	int force;
	struct sn_rt_latch *done;
};

static void shard_compact(void *arg)
{
	struct compact_ctx *c = arg;

	kv_compact_start(c->sh, c->force, c->done);
}

struct failed_ctx {
	struct sn_kv *kv;
	unsigned w, shard;
	int err; /* the first failed shard of worker w: its failure */
};

static void worker_failed(void *arg)
{
	struct failed_ctx *f = arg;
	const struct kv_worker *w = &f->kv->workers[f->w];

	for (unsigned i = 0; !f->err && i < w->nown; i++)
		if ((f->err = f->kv->shards[w->own[i]].failed))
			f->shard = w->own[i];
}

int sn_kv_compact(struct sn_kv *kv, int force)
{
	struct compact_ctx *c;
	struct sn_rt_latch done;
	int err = not_on_worker(kv, "sn_kv_compact");

	if (err)
		return err;
	if (kv->opts.readonly)
		return read_only();
	if (!(c = calloc(kv->sb.shards, sizeof(*c))))
		return sn__err(-ENOMEM, "out of memory");
	sn_rt_latch_init(&done, kv->sb.shards);
	for (unsigned s = 0; s < kv->sb.shards; s++) {
		int serr;

		c[s] = (struct compact_ctx){ &kv->shards[s], force, &done };
		while ((serr = sn_rt_send(kv->rt, kv_owner(kv, s), shard_compact, &c[s])) ==
		       -EAGAIN)
			sched_yield();
		if (serr) { /* never sent: count it done, failed */
			sn_rt_latch_done(&done);
			err = err ? err : serr;
		}
	}
	sn_rt_latch_wait(&done);
	free(c);
	if (err)
		return sn__err(err, "sn_kv_compact: %s", sn_strerror(err));
	/* A shard that stopped taking writes (an earlier write or flush failed) could not:
	 * ask each owner (its shards' state is its own). */
	for (unsigned w = 0; w < kv->nworkers; w++) {
		struct failed_ctx f = { kv, w, 0, 0 };

		sn_rt_call(kv->rt, w, worker_failed, &f);
		if (f.err)
			return sn__err(f.err,
			               "shard %u takes no more writes (an earlier write or flush "
			               "failed: %s): it cannot be compacted",
			               f.shard, sn_strerror(f.err));
	}
	return 0;
}
