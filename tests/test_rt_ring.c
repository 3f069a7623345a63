/* SPDX-License-Identifier: MIT */
/*
 * test_rt_ring.c — the runtime's message queues (src/rt/ring.h) on their own: the SPSC
 * ring's full/empty edges, wrap-around of the 32-bit indices, batched publication (the
 * consumer sees nothing until the producer publishes), and two-thread and many-producer
 * runs that check every message arrives once, in order per producer. Built for TSan too.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "rt/ring.h"
#include "test.h"

#define STRESS_MSGS 1000000u
#define PRODUCERS   4

static struct sn__ring *ring_new(unsigned slots)
{
	size_t sz = sizeof(struct sn__ring) + slots * sizeof(struct sn__msg);
	struct sn__ring *r = aligned_alloc(SN_CACHELINE, (sz + 63) & ~(size_t)63);

	memset(r, 0, sizeof(*r));
	r->mask = slots - 1;
	return r;
}

static void nop(void *arg)
{
	(void)arg;
}

static int full_and_empty(void)
{
	struct sn__ring *r = ring_new(8);
	struct sn__msg m[16];
	uintptr_t i;

	ASSERT_EQ(sn__ring_pop(r, m, 16), 0);
	for (i = 0; i < 8; i++)
		ASSERT_OK(sn__ring_push(r, nop, (void *)i));
	ASSERT_EQ(sn__ring_push(r, nop, (void *)8), -EAGAIN);
	ASSERT_EQ(sn__ring_unpublished(r), 8);
	/* Unpublished messages are invisible to the consumer. */
	ASSERT_EQ(sn__ring_pop(r, m, 16), 0);
	ASSERT_TRUE(!sn__ring_pending(r));
	sn__ring_publish(r);
	ASSERT_TRUE(sn__ring_pending(r));
	ASSERT_EQ(sn__ring_pop(r, m, 3), 3);
	ASSERT_EQ((uintptr_t)m[0].arg, 0);
	ASSERT_EQ((uintptr_t)m[2].arg, 2);
	/* Popped slots are free at once: three more fit, a fourth does not. */
	for (i = 8; i < 11; i++)
		ASSERT_OK(sn__ring_push(r, nop, (void *)i));
	ASSERT_EQ(sn__ring_push(r, nop, (void *)11), -EAGAIN);
	sn__ring_publish(r);
	ASSERT_EQ(sn__ring_pop(r, m, 16), 8);
	for (i = 0; i < 8; i++)
		ASSERT_EQ((uintptr_t)m[i].arg, i + 3);
	ASSERT_EQ(sn__ring_pop(r, m, 16), 0);
	free(r);
	return T_PASS;
}

/* Indices are free-running 32-bit counters: start them just below 2^32. */
static int wrap_around(void)
{
	struct sn__ring *r = ring_new(4);
	struct sn__msg m[4];
	uintptr_t next = 0, want = 0;
	unsigned round;

	r->head_local = r->tail_cache = r->tail_local = r->head_cache = UINT32_MAX - 5;
	atomic_store(&r->head, UINT32_MAX - 5);
	atomic_store(&r->tail, UINT32_MAX - 5);
	for (round = 0; round < 10; round++) {
		unsigned k, n = 1 + round % 4;

		for (k = 0; k < n; k++)
			ASSERT_OK(sn__ring_push(r, nop, (void *)next++));
		sn__ring_publish(r);
		ASSERT_EQ(sn__ring_pop(r, m, 4), n);
		for (k = 0; k < n; k++)
			ASSERT_EQ((uintptr_t)m[k].arg, want++);
	}
	ASSERT_TRUE(r->tail_local < 100); /* it did wrap */
	free(r);
	return T_PASS;
}

struct spsc {
	struct sn__ring *r;
	unsigned batch;
	uint64_t full; /* pushes refused */
};

static void *producer(void *arg)
{
	struct spsc *s = arg;
	uintptr_t i = 0;

	while (i < STRESS_MSGS) {
		if (sn__ring_push(s->r, nop, (void *)i)) {
			sn__ring_publish(s->r);
			s->full++;
			continue;
		}
		i++;
		if (sn__ring_unpublished(s->r) >= s->batch)
			sn__ring_publish(s->r);
	}
	sn__ring_publish(s->r);
	return NULL;
}

/* Two threads, for each publish batch size: every message once, in order. */
static int two_threads(void)
{
	static const unsigned batches[] = { 1, 7, 16, 64, 256 };

	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		struct spsc s = { ring_new(256), batches[b], 0 };
		struct sn__msg m[64];
		uintptr_t want = 0;
		pthread_t t;

		pthread_create(&t, NULL, producer, &s);
		while (want < STRESS_MSGS) {
			unsigned n = sn__ring_pop(s.r, m, 1 + (unsigned)(want % 64));

			for (unsigned k = 0; k < n; k++, want++)
				if ((uintptr_t)m[k].arg != want)
					T_FAILED("batch %u: got message %lu, expected %lu", s.batch,
					         (unsigned long)(uintptr_t)m[k].arg,
					         (unsigned long)want);
		}
		pthread_join(t, NULL);
		ASSERT_EQ(sn__ring_pop(s.r, m, 64), 0);
		printf("    batch %3u: %u messages in order, producer found the ring full %lu "
		       "times\n",
		       s.batch, STRESS_MSGS, (unsigned long)s.full);
		free(s.r);
	}
	return T_PASS;
}

struct mp {
	struct sn__inbox *q;
	unsigned id;
	uint64_t full;
};

static void *inbox_producer(void *arg)
{
	struct mp *p = arg;
	uintptr_t i = 0;

	while (i < STRESS_MSGS / PRODUCERS) {
		if (sn__inbox_push(p->q, nop, (void *)(((uintptr_t)p->id << 32) | i))) {
			p->full++;
			continue;
		}
		i++;
	}
	return NULL;
}

/* Many producers into one inbox: each producer's messages once, in its order. */
static int inbox_many_producers(void)
{
	struct sn__inbox q;
	struct mp p[PRODUCERS];
	pthread_t t[PRODUCERS];
	uint64_t next[PRODUCERS] = { 0 }, got = 0, full = 0;
	struct sn__msg m[64];
	unsigned i;

	memset(&q, 0, sizeof(q));
	q.mask = 63;
	q.cell = calloc(64, sizeof(*q.cell));
	for (i = 0; i < 64; i++)
		atomic_init(&q.cell[i].seq, i);
	ASSERT_TRUE(!sn__inbox_pending(&q));
	for (i = 0; i < PRODUCERS; i++) {
		p[i] = (struct mp){ &q, i, 0 };
		pthread_create(&t[i], NULL, inbox_producer, &p[i]);
	}
	while (got < (STRESS_MSGS / PRODUCERS) * PRODUCERS) {
		unsigned n = sn__inbox_pop(&q, m, 64);

		for (unsigned k = 0; k < n; k++, got++) {
			uintptr_t v = (uintptr_t)m[k].arg, id = v >> 32, seq = v & 0xffffffffu;

			if (id >= PRODUCERS || seq != next[id])
				T_FAILED("producer %lu: got %lu, expected %lu", (unsigned long)id,
				         (unsigned long)seq,
				         (unsigned long)(id < PRODUCERS ? next[id] : 0));
			next[id]++;
		}
	}
	for (i = 0; i < PRODUCERS; i++) {
		pthread_join(t[i], NULL);
		full += p[i].full;
	}
	ASSERT_EQ(sn__inbox_pop(&q, m, 64), 0);
	ASSERT_TRUE(!sn__inbox_pending(&q));
	printf("    %d producers: %lu messages, each producer's in order; inbox full %lu "
	       "times\n",
	       PRODUCERS, (unsigned long)got, (unsigned long)full);
	free(q.cell);
	return T_PASS;
}

int main(void)
{
	t_begin("rt rings: SPSC ring and MPSC inbox");
	T_RUN("ring full and empty, publish makes messages visible", full_and_empty());
	T_RUN("ring indices wrap around 2^32", wrap_around());
	T_RUN("ring, two threads, publish batches 1..256: once and in order", two_threads());
	T_RUN("inbox, 4 producers: once and in order per producer", inbox_many_producers());
	return t_end();
}
