/* SPDX-License-Identifier: MIT */
/*
 * worker.c — a worker's loop: reap watched device queues, drain inbound rings and the
 * foreign inbox, run due timers and deferred tasks, publish batched sends; then spin
 * (poll mode) or sleep on an eventfd (event mode).
 *
 * Sleeping without losing a wakeup (a Dekker handshake): the worker sets `sleeping`,
 * fences, and looks at its rings once more before poll(); a sender publishes, fences,
 * and writes the eventfd only if it sees `sleeping`. One of the two sees the other.
 *
 * Stopping without losing a message: once sn_rt_stop() began, a worker that finds
 * nothing to do sets `idle`; before touching new work it clears `idle` and bumps `gen`.
 * The runtime is quiet when every worker is idle, every ring and inbox is empty, no
 * foreign sender is mid-push, and a second look finds the same `gen`s (a double
 * collect): nothing can be in flight, because only a non-idle worker sends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../util/util.h"
#include "worker.h"

__thread struct sn__worker *sn__self;
__thread unsigned sn__sender = SN_RT_FOREIGN;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

void sn__worker_wake(struct sn__worker *w)
{
	uint64_t one = 1;

	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&w->sleeping, memory_order_relaxed))
		(void)!write(w->efd, &one, sizeof(one));
}

/* Publish every outbound ring with unpublished messages, waking sleeping receivers. */
void sn__worker_publish(struct sn__worker *w)
{
	int event = w->rt->opts.mode == SN_RT_EVENT;
	unsigned i;

	for (i = 0; i < w->ndirty; i++) {
		struct sn__ring *r = w->dirty[i];

		r->dirty = 0;
		if (!sn__ring_unpublished(r))
			continue;
		sn__ring_publish(r);
		if (event)
			sn__worker_wake(&w->rt->w[w->dirty_to[i]]);
	}
	w->ndirty = 0;
}

/* ---- timers: a binary min-heap of caller-owned structs ---- */

static void heap_set(struct sn__worker *w, unsigned i, struct sn_rt_timer *t)
{
	w->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct sn__worker *w, unsigned i)
{
	struct sn_rt_timer *t = w->heap[i];

	while (i > 0) {
		unsigned p = (i - 1) / 2;

		if (w->heap[p]->when_ns <= t->when_ns)
			break;
		heap_set(w, i, w->heap[p]);
		i = p;
	}
	heap_set(w, i, t);
}

static void heap_down(struct sn__worker *w, unsigned i)
{
	struct sn_rt_timer *t = w->heap[i];

	for (;;) {
		unsigned c = 2 * i + 1;

		if (c >= w->nheap)
			break;
		if (c + 1 < w->nheap && w->heap[c + 1]->when_ns < w->heap[c]->when_ns)
			c++;
		if (t->when_ns <= w->heap[c]->when_ns)
			break;
		heap_set(w, i, w->heap[c]);
		i = c;
	}
	heap_set(w, i, t);
}

static void heap_remove(struct sn__worker *w, struct sn_rt_timer *t)
{
	unsigned i = t->slot - 1;

	t->slot = 0;
	if (--w->nheap == i)
		return;
	heap_set(w, i, w->heap[w->nheap]);
	heap_down(w, i);
	heap_up(w, w->heap[i]->slot - 1);
}

int sn_rt_timer_arm(struct sn_rt_timer *t, uint64_t delay_ns, sn_rt_fn fn, void *arg)
{
	struct sn__worker *w = sn__self;

	if (!w)
		return sn__err(-EPERM, "sn_rt_timer_arm: not on a worker");
	if (t->slot)
		heap_remove(w, t);
	if (w->nheap == w->heap_cap) {
		unsigned cap = w->heap_cap ? 2 * w->heap_cap : 16;
		struct sn_rt_timer **h = realloc(w->heap, cap * sizeof(struct sn_rt_timer *));

		if (!h)
			return sn__err(-ENOMEM, "sn_rt_timer_arm: out of memory");
		w->heap = h;
		w->heap_cap = cap;
	}
	t->when_ns = sn__now_ns() + delay_ns;
	t->fn = fn;
	t->arg = arg;
	heap_set(w, w->nheap++, t);
	heap_up(w, w->nheap - 1);
	return 0;
}

void sn_rt_timer_cancel(struct sn_rt_timer *t)
{
	if (sn__self && t->slot)
		heap_remove(sn__self, t);
}

static unsigned run_timers(struct sn__worker *w)
{
	unsigned n = 0;
	uint64_t now;

	if (!w->nheap)
		return 0;
	now = sn__now_ns();
	while (w->nheap && w->heap[0]->when_ns <= now) {
		struct sn_rt_timer *t = w->heap[0];

		heap_remove(w, t);
		t->fn(t->arg);
		n++;
	}
	return n;
}

/* ---- deferred tasks ---- */

int sn_rt_defer(struct sn_rt_task *t)
{
	struct sn__worker *w = sn__self;

	if (!w)
		return sn__err(-EPERM, "sn_rt_defer: not on a worker");
	if (t->queued)
		return 0;
	t->queued = 1;
	t->next = NULL;
	if (w->defer_tail)
		w->defer_tail->next = t;
	else
		w->defer_head = t;
	w->defer_tail = t;
	return 0;
}

/* Run the tasks queued so far; ones they defer wait for the next iteration. */
static unsigned run_deferred(struct sn__worker *w)
{
	struct sn_rt_task *t = w->defer_head;
	unsigned n = 0;

	w->defer_head = w->defer_tail = NULL;
	while (t) {
		struct sn_rt_task *next = t->next;

		t->queued = 0;
		t->fn(t->arg);
		t = next;
		n++;
	}
	return n;
}

/* ---- watched queues ---- */

int sn_rt_queue_watch(struct sn_queue *q, sn_rt_cqe_fn cb, void *arg)
{
	struct sn__worker *w = sn__self;
	struct sn__watch *e;

	if (!w)
		return sn__err(-EPERM, "sn_rt_queue_watch: not on a worker");
	if (w->nwatch == w->watch_cap) {
		unsigned cap = w->watch_cap ? 2 * w->watch_cap : 4;
		struct sn__watch *a = realloc(w->watch, cap * sizeof(*a));

		if (!a)
			return sn__err(-ENOMEM, "sn_rt_queue_watch: out of memory");
		w->watch = a;
		w->watch_cap = cap;
	}
	e = &w->watch[w->nwatch++];
	*e = (struct sn__watch){ q, cb, arg, 0 };
	if (w->rt->opts.mode == SN_RT_EVENT)
		e->notify = sn_queue_notify(q, w->efd) == 0;
	sn__err_clear(); /* -ENOTSUP from notify is an answer, not an error */
	return 0;
}

void sn_rt_queue_unwatch(struct sn_queue *q)
{
	struct sn__worker *w = sn__self;
	unsigned i;

	if (!w)
		return;
	for (i = 0; i < w->nwatch; i++) {
		if (w->watch[i].q != q)
			continue;
		if (w->watch[i].notify)
			sn_queue_notify(q, -1);
		w->watch[i].q = NULL;
		w->watch_swept = 1;
	}
}

static unsigned reap_queues(struct sn__worker *w)
{
	struct sn_cqe cqe[SN_RT_POP_MAX];
	unsigned i, total = 0;

	for (i = 0; i < w->nwatch; i++) {
		struct sn__watch *e = &w->watch[i];
		int n;

		if (!e->q || !sn_queue_inflight(e->q))
			continue;
		n = sn_queue_reap(e->q, cqe, SN_RT_POP_MAX, 0);
		if (n > 0) {
			e->cb(e->arg, cqe, (unsigned)n);
			total += (unsigned)n;
		}
	}
	if (w->watch_swept) {
		unsigned j = 0;

		for (i = 0; i < w->nwatch; i++)
			if (w->watch[i].q)
				w->watch[j++] = w->watch[i];
		w->nwatch = j;
		w->watch_swept = 0;
	}
	return total;
}

/* I/O in flight that no eventfd will announce: the worker must not sleep on it. */
static int io_needs_polling(const struct sn__worker *w)
{
	unsigned i;

	for (i = 0; i < w->nwatch; i++)
		if (w->watch[i].q && !w->watch[i].notify && sn_queue_inflight(w->watch[i].q))
			return 1;
	return 0;
}

static int io_inflight(const struct sn__worker *w)
{
	unsigned i;

	for (i = 0; i < w->nwatch; i++)
		if (w->watch[i].q && sn_queue_inflight(w->watch[i].q))
			return 1;
	return 0;
}

/* ---- messages ---- */

static unsigned drain(struct sn__worker *w)
{
	struct sn_rt *rt = w->rt;
	struct sn__msg m[SN_RT_POP_MAX];
	unsigned from, i, k, total = 0;

	for (from = 0; from < rt->n; from++) {
		k = sn__ring_pop(rt->ring[w->idx * rt->n + from], m, SN_RT_POP_MAX);
		if (!k)
			continue;
		sn__sender = from;
		for (i = 0; i < k; i++)
			m[i].fn(m[i].arg);
		total += k;
	}
	sn__sender = SN_RT_FOREIGN;
	k = sn__inbox_pop(&w->inbox, m, SN_RT_POP_MAX);
	for (i = 0; i < k; i++)
		m[i].fn(m[i].arg);
	return total + k;
}

/* Published messages waiting for w (from any thread's point of view). */
static int msgs_pending(struct sn__worker *w)
{
	struct sn_rt *rt = w->rt;
	unsigned from;

	for (from = 0; from < rt->n; from++)
		if (sn__ring_pending(rt->ring[w->idx * rt->n + from]))
			return 1;
	return sn__inbox_pending(&w->inbox);
}

/* ---- the loop ---- */

static int has_work(struct sn__worker *w)
{
	return msgs_pending(w) || io_inflight(w) || w->defer_head ||
	       (w->nheap && w->heap[0]->when_ns <= sn__now_ns());
}

/* The double collect of the file comment: 1 when the whole runtime is quiet. */
static int runtime_quiet(struct sn_rt *rt)
{
	uint64_t gen[64], *g = rt->n <= 64 ? gen : malloc(rt->n * sizeof(*g));
	int quiet = g != NULL;
	unsigned i;

	for (i = 0; quiet && i < rt->n; i++) {
		quiet = atomic_load(&rt->w[i].idle);
		g[i] = atomic_load(&rt->w[i].gen);
	}
	for (i = 0; quiet && i < rt->n; i++)
		quiet = !msgs_pending(&rt->w[i]) && !atomic_load(&rt->w[i].inbox.entering);
	for (i = 0; quiet && i < rt->n; i++)
		quiet = atomic_load(&rt->w[i].idle) && atomic_load(&rt->w[i].gen) == g[i];
	if (g != gen)
		free(g);
	return quiet;
}

/* Event mode: sleep until a send, a completion, the next timer, or timeout_ns. */
static void sleep_until_work(struct sn__worker *w, uint64_t timeout_ns)
{
	struct pollfd pfd = { .fd = w->efd, .events = POLLIN };
	struct timespec ts, *tsp = NULL;
	uint64_t v;

	atomic_store(&w->sleeping, 1);
	atomic_thread_fence(memory_order_seq_cst);
	if (msgs_pending(w) || io_needs_polling(w) || atomic_load(&w->rt->done)) {
		atomic_store(&w->sleeping, 0);
		return;
	}
	if (w->nheap) {
		uint64_t now = sn__now_ns(), when = w->heap[0]->when_ns;

		if (when <= now) {
			atomic_store(&w->sleeping, 0);
			return;
		}
		if (when - now < timeout_ns)
			timeout_ns = when - now;
	}
	if (timeout_ns != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long)(timeout_ns % 1000000000u);
		tsp = &ts;
	}
	if (ppoll(&pfd, 1, tsp, NULL) > 0)
		(void)!read(w->efd, &v, sizeof(v));
	atomic_store(&w->sleeping, 0);
}

/*
 * Idle spinning. Work that comes within microseconds (the next call of a blocking caller,
 * a reply from another worker) is seen at once by a pause loop, while a yield is a system
 * call. But a thread that shares this CPU (a client thread on an oversubscribed machine)
 * must run at once, not after our spin. A yield that takes long says one ran; the
 * occasional long one (an interrupt, the hypervisor) does not, so only many in a short
 * window make the worker yield from the start of its idle stretches for a while.
 */
#define PAUSE_NS     2000u     /* an idle stretch first spins this long, no system call */
#define LONG_YIELD   5000u     /* ns: a yield this long let another thread run */
#define SHARED_LONGS 8         /* long yields within SHARED_WIN: the CPU is shared */
#define SHARED_WIN   1000000u  /* ns */
#define SHARED_FOR   10000000u /* ns: then yield from the start, this long */

static void idle_yield(struct sn__worker *w, uint64_t now)
{
	uint64_t took;

	sched_yield();
	if ((took = sn__now_ns() - now) < LONG_YIELD)
		return;
	if (now - w->long_since > SHARED_WIN) {
		w->long_since = now;
		w->longs = 0;
	}
	if (++w->longs >= SHARED_LONGS)
		w->shared_until = now + took + SHARED_FOR;
}

/* Nothing happened this iteration: spin or sleep, as the mode says. */
static void idle_wait(struct sn__worker *w, int stopping)
{
	const struct sn_rt_opts *o = &w->rt->opts;
	uint64_t now;

	if (o->mode == SN_RT_POLL) {
		cpu_relax();
		return;
	}
	now = sn__now_ns();
	if (!w->idle_since)
		w->idle_since = now;
	if (now - w->idle_since < (uint64_t)o->idle_spin_us * 1000u) {
		if (now - w->idle_since < PAUSE_NS && now >= w->shared_until)
			cpu_relax();
		else
			idle_yield(w, now);
		return;
	}
	/* While stopping, look again now and then: quietness is decided by others too. */
	sleep_until_work(w, stopping ? 1000000u : UINT64_MAX);
}

static unsigned iteration(struct sn__worker *w)
{
	unsigned n = reap_queues(w);

	n += drain(w);
	n += run_timers(w);
	n += run_deferred(w);
	if (w->ndirty)
		sn__worker_publish(w);
	return n;
}

static void loop(struct sn__worker *w)
{
	struct sn_rt *rt = w->rt;

	for (;;) {
		int stopping = atomic_load_explicit(&rt->stopping, memory_order_relaxed);

		if (stopping) {
			if (atomic_load(&rt->done))
				return;
			if (atomic_load(&w->idle)) {
				if (!has_work(w)) {
					if (runtime_quiet(rt)) {
						atomic_store(&rt->done, 1);
						for (unsigned i = 0; i < rt->n; i++)
							sn__worker_wake(&rt->w[i]);
						return;
					}
					idle_wait(w, 1);
					continue;
				}
				atomic_store(&w->idle, 0);
				atomic_fetch_add(&w->gen, 1);
			}
		}
		if (iteration(w)) {
			w->idle_since = 0;
			continue;
		}
		if (w->defer_head || io_needs_polling(w)) {
			cpu_relax();
			continue;
		}
		if (stopping) {
			if (!io_inflight(w))
				atomic_store(&w->idle, 1);
			continue;
		}
		idle_wait(w, 0);
	}
}

static int pin(struct sn__worker *w)
{
	cpu_set_t set;
	int err;

	if (w->rt->opts.flags & SN_RT_NOPIN)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	return err ? sn__err(-err, "cannot pin worker %u to CPU %u: %s", w->idx, w->cpu,
	                     strerror(err))
	           : 0;
}

/* This worker's inbound rings, allocated here so that they live on this CPU's node. */
static int alloc_rings(struct sn__worker *w)
{
	struct sn_rt *rt = w->rt;
	unsigned slots = rt->opts.ring_size, from;
	size_t sz = sizeof(struct sn__ring) + slots * sizeof(struct sn__msg);

	sz = (sz + SN_CACHELINE - 1) & ~(size_t)(SN_CACHELINE - 1);
	for (from = 0; from < rt->n; from++) {
		struct sn__ring *r = aligned_alloc(SN_CACHELINE, sz);

		if (!r)
			return sn__err(-ENOMEM, "out of memory for worker %u's rings", w->idx);
		memset(r, 0, sizeof(*r));
		r->mask = slots - 1;
		rt->ring[w->idx * rt->n + from] = r;
	}
	w->inbox.cell = aligned_alloc(SN_CACHELINE, rt->opts.inbox_size * sizeof(struct sn__cell));
	/* rt->n >= 1: check_opts() makes 0 workers one per CPU. */
	/* NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI): see above */
	w->dirty = calloc(rt->n, sizeof(struct sn__ring *));
	w->dirty_to = calloc(rt->n, sizeof(*w->dirty_to));
	if (!w->inbox.cell || !w->dirty || !w->dirty_to)
		return sn__err(-ENOMEM, "out of memory for worker %u", w->idx);
	w->inbox.mask = rt->opts.inbox_size - 1;
	for (uint64_t i = 0; i < rt->opts.inbox_size; i++)
		atomic_init(&w->inbox.cell[i].seq, i);
	return 0;
}

/* Count this worker in and wait for the creator's word: 1 when it may go on. */
static int check_in(struct sn_rt *rt, int wait)
{
	int go;

	pthread_mutex_lock(&rt->lock);
	rt->nready++;
	pthread_cond_broadcast(&rt->cond);
	while (wait && !rt->phase)
		pthread_cond_wait(&rt->cond, &rt->lock);
	go = rt->phase == 1;
	pthread_mutex_unlock(&rt->lock);
	return go;
}

void *sn__worker_main(void *arg)
{
	struct sn__worker *w = arg;
	struct sn_rt *rt = w->rt;

	w->err = pin(w);
	if (!w->err)
		w->err = alloc_rings(w);
	if (w->err)
		snprintf(w->errmsg, sizeof(w->errmsg), "%s", sn_errmsg());
	if (!check_in(rt, 1)) /* every ring exists */
		return NULL;
	sn__self = w;
	if (rt->opts.init)
		rt->opts.init(w->idx, rt->opts.arg);
	check_in(rt, 0); /* initialised: sn_rt_create returns when all are */
	loop(w);
	if (rt->opts.fini)
		rt->opts.fini(w->idx, rt->opts.arg);
	sn__self = NULL;
	return NULL;
}
