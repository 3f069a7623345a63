/* SPDX-License-Identifier: MIT */
/*
 * ring.h — the runtime's message queues, inline because they are the fast path.
 *
 * sn__ring: single producer, single consumer, fixed power-of-two capacity. The producer
 * and the consumer each keep a private copy of the other's index and read the shared
 * one (acquire) only when the copy says full or empty; each publishes its own index
 * (release) once per batch. Producer and consumer fields live on separate cache lines,
 * so a message costs one slot write, and a batch one line transfer each way.
 *
 * sn__inbox: many producers, one consumer (Vyukov's bounded queue): each cell carries a
 * sequence number saying whose turn it is, producers claim a cell with one CAS on the
 * tail, the consumer needs no atomic read-modify-write.
 */
#ifndef SN_RT_RING_H
#define SN_RT_RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include <snstore/rt.h>

#include "../util/util.h"

struct sn__msg {
	sn_rt_fn fn;
	void *arg;
};

struct sn__ring {
	/* Written by the consumer. */
	_Alignas(SN_CACHELINE) _Atomic uint32_t head; /* published: slots before it are free */
	uint32_t head_local;                          /* consumed, maybe not yet published */
	uint32_t tail_cache;                          /* last tail the consumer read */

	/* Written by the producer. */
	_Alignas(SN_CACHELINE) _Atomic uint32_t tail; /* published: slots before it are full */
	uint32_t tail_local;                          /* written, maybe not yet published */
	uint32_t head_cache;                          /* last head the producer read */
	int dirty;                                    /* on the producer's flush list */

	_Alignas(SN_CACHELINE) uint32_t mask;
	struct sn__msg slot[]; /* mask + 1 of them */
};

/* Producer: append one message; 0, or -EAGAIN when full (nothing written). */
static inline int sn__ring_push(struct sn__ring *r, sn_rt_fn fn, void *arg)
{
	uint32_t t = r->tail_local;

	if (t - r->head_cache > r->mask) {
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (t - r->head_cache > r->mask)
			return -EAGAIN;
	}
	r->slot[t & r->mask] = (struct sn__msg){ fn, arg };
	r->tail_local = t + 1;
	return 0;
}

/* Producer: messages written and not yet published. */
static inline uint32_t sn__ring_unpublished(const struct sn__ring *r)
{
	return r->tail_local - atomic_load_explicit(&r->tail, memory_order_relaxed);
}

/* Producer: make every written message visible to the consumer. */
static inline void sn__ring_publish(struct sn__ring *r)
{
	atomic_store_explicit(&r->tail, r->tail_local, memory_order_release);
}

/*
 * Consumer: copy up to max published messages into out and free their slots at once
 * (so handlers that send back into this ring find room). Returns how many.
 */
static inline unsigned sn__ring_pop(struct sn__ring *r, struct sn__msg *out, unsigned max)
{
	uint32_t h = r->head_local, n, i;

	n = r->tail_cache - h;
	if (n < max) {
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		n = r->tail_cache - h;
		if (!n)
			return 0;
	}
	if (n > max)
		n = max;
	for (i = 0; i < n; i++)
		out[i] = r->slot[(h + i) & r->mask];
	r->head_local = h + n;
	atomic_store_explicit(&r->head, h + n, memory_order_release);
	return n;
}

/* Anyone: does the ring hold published messages not yet popped? (A hint when racing.) */
static inline int sn__ring_pending(struct sn__ring *r)
{
	return atomic_load_explicit(&r->tail, memory_order_acquire) !=
	       atomic_load_explicit(&r->head, memory_order_acquire);
}

struct sn__cell {
	_Atomic uint64_t seq; /* == pos: free for the producer of pos; pos + 1: full */
	struct sn__msg msg;
};

struct sn__inbox {
	_Alignas(SN_CACHELINE) _Atomic uint64_t tail; /* producers claim here */
	_Atomic uint32_t entering; /* producers between the shutdown check and the push */
	_Alignas(SN_CACHELINE) _Atomic uint64_t head; /* written by the consumer alone */
	_Alignas(SN_CACHELINE) uint64_t mask;
	struct sn__cell *cell;
};

/* Any producer: 0, or -EAGAIN when full. */
static inline int sn__inbox_push(struct sn__inbox *q, sn_rt_fn fn, void *arg)
{
	uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);

	for (;;) {
		struct sn__cell *c = &q->cell[pos & q->mask];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);

		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
			                                          memory_order_relaxed,
			                                          memory_order_relaxed)) {
				c->msg = (struct sn__msg){ fn, arg };
				atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
				return 0;
			}
		} else if (dif < 0) {
			return -EAGAIN;
		} else {
			pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
		}
	}
}

/* The consumer: up to max messages into out; returns how many. */
static inline unsigned sn__inbox_pop(struct sn__inbox *q, struct sn__msg *out, unsigned max)
{
	uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	unsigned n = 0;

	while (n < max) {
		struct sn__cell *c = &q->cell[h & q->mask];

		if (atomic_load_explicit(&c->seq, memory_order_acquire) != h + 1)
			break;
		out[n++] = c->msg;
		atomic_store_explicit(&c->seq, h + q->mask + 1, memory_order_release);
		h++;
	}
	if (n)
		atomic_store_explicit(&q->head, h, memory_order_release);
	return n;
}

/* Anyone: has a producer claimed a cell the consumer has not popped? (Claimed counts:
 * its message is on the way.) */
static inline int sn__inbox_pending(struct sn__inbox *q)
{
	return atomic_load_explicit(&q->tail, memory_order_acquire) !=
	       atomic_load_explicit(&q->head, memory_order_acquire);
}

#endif
