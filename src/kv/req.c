/* SPDX-License-Identifier: MIT */
/*
 * req.c — the memory of requests (struct kv_req): every call of a plain thread, the
 * calls of workers that need one (durable writes, syncs, big values, calls an owner
 * cannot finish at once), and the parts of batches. All go through kv_req_alloc and
 * kv_req_free; those over RC_SIZE bytes are plain malloc.
 *
 * A request is allocated on the calling thread and freed on another: the worker that
 * completes a plain thread's call, the caller that a worker's reply reaches. With malloc
 * alone that is a free of another thread's memory on every call, and on a busy store both
 * threads then queue on the allocator's arena lock (futex waits on both sides). So each
 * thread keeps a cache of small requests: it takes them from a free list of its own, the
 * thread that is done with one gives it back by pushing it onto the cache's return list
 * (one compare-and-swap), and the owner takes that whole list when its own runs dry.
 *
 * A cache can outlive its thread: requests of it may still be in flight when the thread
 * exits. The thread's exit then marks the return list orphaned and adds the requests still
 * out to `pending`; a thread that finds the list orphaned frees the request instead and
 * takes one from `pending`, and whoever brings `pending` to zero frees the cache. Such a
 * give-back may come first (pending below zero for a while): the count reaches zero only
 * when the exiting thread's share and every give-back are in.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"
#include "kv_impl.h"

#define RC_SIZE 512  /* bytes of a cached request: the header, a key and a small value */
#define RC_KEEP 1024 /* free requests a cache keeps at most (512 KiB) */

#define ORPHAN ((struct kv_req *)1)

/* back is written by other threads: it has a cache line of its own, away from the
 * owner's fields (the padding is the point). */
/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding): see above */
struct kv_rcache {
	struct kv_req *list; /* free requests, the thread's own */
	unsigned nfree;
	uint64_t out; /* taken from the cache and not seen back */
	_Alignas(SN_CACHELINE) _Atomic(struct kv_req *) back; /* given back by others */
	_Atomic int64_t pending; /* orphaned: requests still out (see above) */
};

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok;
static __thread struct kv_rcache *mine;

static void free_list(struct kv_req *r)
{
	while (r) {
		struct kv_req *next = r->next;

		free(r);
		r = next;
	}
}

/* Thread exit: free what is here, and leave the rest to the threads that hold it. */
static void orphan(void *arg)
{
	struct kv_rcache *c = arg;
	struct kv_req *back = atomic_exchange(&c->back, ORPHAN);
	int64_t out = (int64_t)c->out;

	for (struct kv_req *r = back; r; r = r->next)
		out--;
	free_list(back);
	free_list(c->list);
	mine = NULL;
	if (atomic_fetch_add(&c->pending, out) + out == 0)
		free(c);
}

static void make_key(void)
{
	key_ok = !pthread_key_create(&key, orphan);
}

static struct kv_rcache *cache(void)
{
	struct kv_rcache *c = mine;

	if (c)
		return c;
	pthread_once(&key_once, make_key);
	if (!key_ok || !(c = aligned_alloc(SN_CACHELINE, sizeof(*c))))
		return NULL;
	memset(c, 0, sizeof(*c));
	if (pthread_setspecific(key, c)) {
		free(c);
		return NULL;
	}
	return mine = c;
}

struct kv_req *kv_req_alloc(size_t size)
{
	struct kv_rcache *c;
	struct kv_req *r;

	if (size > RC_SIZE || !(c = cache())) {
		if ((r = malloc(size)))
			r->home = NULL;
		return r;
	}
	if (!c->list) { /* take what was given back, keeping at most RC_KEEP */
		struct kv_req *back =
		        atomic_exchange_explicit(&c->back, NULL, memory_order_acquire);

		while (back) {
			r = back;
			back = r->next;
			c->out--;
			if (c->nfree == RC_KEEP) {
				free(r);
				continue;
			}
			r->next = c->list;
			c->list = r;
			c->nfree++;
		}
	}
	if ((r = c->list)) {
		c->list = r->next;
		c->nfree--;
	} else if (!(r = malloc(RC_SIZE))) {
		return NULL;
	}
	c->out++;
	r->home = c;
	return r;
}

void kv_req_free(struct kv_req *r)
{
	struct kv_rcache *c = r->home;
	struct kv_req *head;

	if (!c) {
		free(r);
		return;
	}
	head = atomic_load_explicit(&c->back, memory_order_relaxed);
	do {
		if (head == ORPHAN) {
			free(r);
			if (atomic_fetch_sub(&c->pending, 1) == 1)
				free(c);
			return;
		}
		r->next = head;
	} while (!atomic_compare_exchange_weak_explicit(&c->back, &head, r, memory_order_release,
	                                                memory_order_relaxed));
}
