/* SPDX-License-Identifier: MIT */
/*
 * post.c — calls a worker makes to shards that another worker owns, in batches.
 *
 * A put, delete or get made on a worker for another worker's shard is not a request and
 * a message of its own: it is appended to the open batch for that worker (a struct
 * kv_call, the key, the value, packed), and the batch goes as one message once 16 calls
 * wait in it (KV_MB_EARLY), or at the end of the caller's loop iteration. The owner runs
 * the calls in order and sends the batch back, and the caller runs their callbacks and
 * keeps the buffer for the next batch. So a call costs no allocation and no message of
 * its own, the owner reads the calls in one sequential sweep, and for a put it writes
 * nothing back: res and rlen start at 0 and are written only when they are not. Values of
 * gets and the messages of errors follow the calls in the buffer, in call order.
 *
 * A call that cannot finish at once on the owner (a write that waits for space or for
 * its flush, a get that must read the device, a value that does not fit the buffer)
 * becomes a request of its own (struct kv_req) there, and completes as requests do.
 *
 * Order: a worker's calls to one owner run in the order they were made. Calls that do
 * not go in a batch (durable writes, syncs, big values) send the open batch first
 * (kv_post_send from route()).
 *
 * Calls to the worker's own shards go in a batch too (mb_open[w->idx]), which runs on
 * this worker where another would be sent: once KV_MB_EARLY calls wait in it, at the end
 * of the iteration, or before a call that does not go in a batch (kv_post_send). Its
 * callbacks run at the end of the iteration (kv_post_done_local). A batch starts all its
 * calls' index slots on their way from memory before it runs the first: a lone call
 * waits for its misses one after another, a batch overlaps them (then the records of its
 * gets: readrandom on one worker 2.3x).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"
#include "kv_impl.h"

static void send_task(void *arg);

#define MSG_MAX 256 /* the bytes an error's message may take in a buffer (a longer one is cut) */

static uint32_t call_len(uint32_t klen, uint32_t vlen)
{
	return (uint32_t)((sizeof(struct kv_call) + klen + vlen + 7) & ~(size_t)7);
}

int kv_post_init(struct kv_worker *w)
{
	unsigned n = w->kv->nworkers;

	w->mb_open = calloc(n, sizeof(struct kv_mb *));
	w->mb_unsent_tail = &w->mb_unsent;
	w->mb_ran_tail = &w->mb_ran;
	w->mb_task = (struct sn_rt_task){ send_task, w, NULL, 0 };
	if (!w->mb_open)
		return sn__err(-ENOMEM, "out of memory");
	return 0;
}

void kv_post_free(struct kv_worker *w)
{
	for (unsigned i = 0; w->mb_open && i < w->kv->nworkers; i++)
		free(w->mb_open[i]);
	while (w->mb_ran) {
		struct kv_mb *mb = w->mb_ran;

		w->mb_ran = mb->next;
		free(mb);
	}
	w->mb_ran_tail = &w->mb_ran;
	while (w->mb_free) {
		struct kv_mb *mb = w->mb_free;

		w->mb_free = mb->next;
		free(mb);
	}
	free(w->mb_open);
	w->mb_open = NULL;
}

static void mb_put(struct kv_worker *w, struct kv_mb *mb)
{
	mb->next = w->mb_free;
	w->mb_free = mb;
}

/* ---- the owner ---- */

static void done_msg(void *arg);

static void reply(struct kv_worker *w, struct kv_mb *mb)
{
	if (!w->mb_unsent && !sn_rt_send(w->kv->rt, mb->from, done_msg, mb))
		return;
	mb->next = NULL;
	*w->mb_unsent_tail = mb;
	w->mb_unsent_tail = &mb->next;
	sn_rt_defer(&w->done_task);
}

/* Replies that found the ring full, again (from the worker's done_task). */
void kv_post_retry(struct kv_worker *w)
{
	struct kv_mb *mb = w->mb_unsent;

	w->mb_unsent = NULL;
	w->mb_unsent_tail = &w->mb_unsent;
	while (mb) {
		struct kv_mb *next = mb->next;

		reply(w, mb);
		mb = next;
	}
}

/* The call as a request of its own: it completes as requests do, with the call's
 * callback, on the caller. NULL when out of memory (c says so). */
static struct kv_req *hand_over(struct kv_mb *mb, struct kv_call *c, const unsigned char *key)
{
	struct kv_req *r = kv_req_new(mb->kv, c->op, key, c->klen, key + c->klen, c->vlen, c->flags,
	                              c->cb, c->arg);

	if (!r) {
		c->res = sn__err(-ENOMEM, "out of memory");
		return NULL;
	}
	r->origin = mb->from;
	c->res = KV_HANDED;
	return r;
}

/* sn_errmsg() into dst, cut to room and MSG_MAX bytes with its NUL: the bytes taken, 0
 * when it is empty or there is no room. */
static uint32_t copy_msg(void *dst, size_t room)
{
	size_t n = strlen(sn_errmsg()) + 1, max = room < MSG_MAX ? room : MSG_MAX;

	if (n == 1 || !max)
		return 0;
	if (n > max)
		n = max;
	memcpy(dst, sn_errmsg(), n - 1);
	((char *)dst)[n - 1] = '\0';
	return (uint32_t)n;
}

/* Run a batch's calls on their owner (this worker): their results go into mb. */
static void exec_calls(struct kv_mb *mb)
{
	struct sn_kv *kv = mb->kv;
	unsigned char *p = mb->data, *end = p + mb->len, *rep = end;
	uint32_t room = KV_MB_SIZE - mb->len;

	/* Start every call's index slot on its way from memory first: the batch's misses
	 * then overlap instead of coming one after another. */
	for (unsigned char *q = p; q < end;) {
		struct kv_call *c = (struct kv_call *)q;

		sn_idx_prefetch(&kv->shards[kv_shard_of(kv, c->hash)].idx, c->hash);
		q += call_len(c->klen, c->vlen);
	}
	/* Then the records of the gets, from the slots that are on their way. Each get looks
	 * its key up again when it runs: a put before it in the batch may grow the index and
	 * move the entry. */
	for (unsigned char *q = p; q < end;) {
		struct kv_call *c = (struct kv_call *)q;

		if (c->op == KV_GET)
			kv_shard_prefetch_rec(&kv->shards[kv_shard_of(kv, c->hash)], c->hash,
			                      q + sizeof(*c), c->klen);
		q += call_len(c->klen, c->vlen);
	}
	while (p < end) {
		struct kv_call *c = (struct kv_call *)p;
		const unsigned char *key = p + sizeof(*c);
		struct kv_shard *sh = &kv->shards[kv_shard_of(kv, c->hash)];
		const unsigned char *rec = NULL;
		const struct sn_idx_ent *e = NULL;
		struct kv_req *r;
		int res;

		p += call_len(c->klen, c->vlen);
		if (c->op != KV_GET) {
			res = kv_shard_write_now(sh, c->op == KV_DEL, c->hash, key, c->klen,
			                         key + c->klen, c->vlen, c->flags);
			if (res > 0 && (r = hand_over(mb, c, key))) {
				kv_shard_write_done(sh, r, res);
				continue;
			}
		} else {
			res = kv_shard_get_now(sh, c->hash, key, c->klen, &rec, &e);
			if (!res) {
				const struct sn_kv_rechdr *h = (const struct sn_kv_rechdr *)rec;

				if (h->vlen <= room) {
					memcpy(rep,
					       rec + sizeof(*h) + sn_kv_rec_extra(h->type) +
					               h->klen,
					       h->vlen);
					c->rlen = h->vlen;
					rep += h->vlen;
					room -= h->vlen;
					continue;
				}
			}
			if ((res == 0 || res == KV_MISS || res == KV_PARK) &&
			    (r = hand_over(mb, c, key))) {
				kv_shard_get_done(sh, r, res, rec, e);
				continue;
			}
		}
		if (res >= 0) /* it needed a request, and there was no memory for one */
			res = c->res;
		if (res < 0) {
			c->res = res;
			if (res != -ENOENT) { /* the message follows the calls, if there is room */
				c->rlen = copy_msg(rep, room);
				rep += c->rlen;
				room -= c->rlen;
			}
		}
	}
}

static void exec_msg(void *arg)
{
	struct kv_mb *mb = arg;

	exec_calls(mb);
	reply(&mb->kv->workers[mb->to], mb);
}

/* ---- the caller ---- */

/* Back on the caller: run the callbacks of the calls that finished on the owner. */
static void done_msg(void *arg)
{
	struct kv_mb *mb = arg;
	struct kv_worker *w = &mb->kv->workers[mb->from];
	unsigned char *p = mb->data, *end = p + mb->len, *rep = end;

	while (p < end) {
		struct kv_call *c = (struct kv_call *)p;

		p += call_len(c->klen, c->vlen);
		if (c->res == KV_HANDED)
			continue;
		if (c->res < 0 && c->rlen)
			sn__err(c->res, "%s", (const char *)rep);
		else if (c->res < 0)
			sn__err_clear(); /* no reason came: leave no stale one */
		if (c->cb)
			c->cb(c->arg, c->res, c->op == KV_GET && !c->res ? rep : NULL,
			      c->op == KV_GET && !c->res ? c->rlen : 0);
		rep += c->rlen;
	}
	mb_put(w, mb);
}

/* Send the open batch for owner: 0 (or nothing open), or -EAGAIN (the ring is full; it
 * stays open). */
int kv_post_send(struct kv_worker *w, unsigned owner)
{
	struct kv_mb *mb = w->mb_open[owner];
	int err;

	if (!mb)
		return 0;
	if (owner == w->idx) { /* calls to this worker's own shards: run them now */
		w->mb_open[owner] = NULL;
		exec_calls(mb);
		mb->next = NULL;
		*w->mb_ran_tail = mb;
		w->mb_ran_tail = &mb->next;
		sn_rt_defer(&w->done_task);
		return 0;
	}
	if ((err = sn_rt_send(w->kv->rt, owner, exec_msg, mb)))
		return err;
	w->mb_open[owner] = NULL;
	return 0;
}

/* End of the iteration: send every open batch (a full ring: next iteration). */
static void send_task(void *arg)
{
	struct kv_worker *w = arg;
	int again = 0;

	for (unsigned i = 0; i < w->kv->nworkers; i++)
		again |= kv_post_send(w, i);
	if (again)
		sn_rt_defer(&w->mb_task);
	kv_post_done_local(w);
}

static struct kv_mb *mb_get(struct kv_worker *w)
{
	struct kv_mb *mb = w->mb_free;

	if (mb)
		w->mb_free = mb->next;
	else
		mb = aligned_alloc(64, sizeof(*mb) + KV_MB_SIZE);
	return mb;
}

static struct kv_mb *open_batch(struct kv_worker *w, unsigned owner)
{
	struct kv_mb *mb = mb_get(w);

	if (!mb)
		return NULL;
	mb->kv = w->kv;
	mb->from = w->idx;
	mb->to = owner;
	mb->n = mb->len = 0;
	w->mb_open[owner] = mb;
	sn_rt_defer(&w->mb_task);
	return mb;
}

/* Append a call to the open batch for its shard's owner (this worker included). */
int kv_post(struct sn_kv *kv, enum kv_op op, uint64_t hash, const void *key, uint32_t klen,
            const void *val, uint32_t vlen, unsigned flags, sn_kv_cb cb, void *arg)
{
	struct kv_worker *w = &kv->workers[sn_rt_self()];
	unsigned owner = kv_owner(kv, kv_shard_of(kv, hash));
	struct kv_mb *mb = w->mb_open[owner];
	uint32_t len = call_len(klen, vlen);
	struct kv_call *c;

	if (mb && (mb->n == KV_MB_MAX || mb->len + len > KV_MB_CALLS) && kv_post_send(w, owner))
		return sn__err(-EAGAIN, "the ring to worker %u is full", owner);
	if (!(mb = w->mb_open[owner]) && !(mb = open_batch(w, owner)))
		return sn__err(-ENOMEM, "out of memory");
	c = (struct kv_call *)(mb->data + mb->len);
	*c = (struct kv_call){ .op = (uint8_t)op,
		               .flags = (uint8_t)flags,
		               .klen = (uint16_t)klen,
		               .vlen = vlen,
		               .hash = hash,
		               .cb = cb,
		               .arg = arg };
	memcpy(c + 1, key, klen);
	if (vlen)
		memcpy((unsigned char *)(c + 1) + klen, val, vlen);
	mb->len += len;
	/* Send early: the owner starts on these while this worker goes on (the latency of
	 * a call, not the size of its batch, bounds a caller with few calls in flight). A
	 * full ring: the end of the iteration sends it. */
	if (++mb->n >= KV_MB_EARLY && !kv_post_send(w, owner) && owner != w->idx)
		sn_rt_flush();
	return 0;
}

/* The end of the iteration: run the callbacks of calls to the worker's own shards. */
void kv_post_done_local(struct kv_worker *w)
{
	struct kv_mb *mb = w->mb_ran;

	w->mb_ran = NULL; /* calls the callbacks make go to new batches */
	w->mb_ran_tail = &w->mb_ran;
	while (mb) {
		struct kv_mb *next = mb->next;

		done_msg(mb);
		mb = next;
	}
}
