/* SPDX-License-Identifier: MIT */
/*
 * rt.c — the runtime's lifecycle (create, stop, destroy), sends, blocking calls and the
 * latch foreign threads wait on. The loop itself is in worker.c.
 *
 * A foreign send announces itself in the target inbox's `entering` before it checks
 * `stopping`, and sn_rt_stop() sets `stopping` before it waits for `entering` to drain:
 * so a send either sees the stop and refuses, or its message is in the inbox before the
 * workers can decide they are quiet.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../util/util.h"
#include "worker.h"

#define DEFAULT_RING_SIZE  512
#define DEFAULT_INBOX_SIZE 4096
#define DEFAULT_IDLE_SPIN  50 /* µs: about two context switches */
#define LATCH_WAITERS      0x80000000u
#define LATCH_SPINS        200 /* polls of the count before sleeping */

unsigned sn_rt_workers(const struct sn_rt *rt)
{
	return rt->n;
}

unsigned sn_rt_cpu(const struct sn_rt *rt, unsigned w)
{
	return w < rt->n ? rt->w[w].cpu : UINT_MAX;
}

unsigned sn_rt_self(void)
{
	return sn__self ? sn__self->idx : SN_RT_FOREIGN;
}

struct sn_rt *sn_rt_current(void)
{
	return sn__self ? sn__self->rt : NULL;
}

unsigned sn_rt_sender(void)
{
	return sn__sender;
}

static int check_opts(struct sn_rt_opts *o, const cpu_set_t *allowed, unsigned nallowed)
{
	if (!o->workers)
		o->workers = nallowed;
	if (o->workers > 4096)
		return sn__err(-EINVAL, "%u workers: at most 4096", o->workers);
	if (o->mode != SN_RT_EVENT && o->mode != SN_RT_POLL)
		return sn__err(-EINVAL, "unknown runtime mode %d", (int)o->mode);
	if (o->flags & ~SN_RT_NOPIN)
		return sn__err(-EINVAL, "unknown runtime flags 0x%x", o->flags & ~SN_RT_NOPIN);
	if (!o->ring_size)
		o->ring_size = DEFAULT_RING_SIZE;
	if (!o->inbox_size)
		o->inbox_size = DEFAULT_INBOX_SIZE;
	if (!o->idle_spin_us)
		o->idle_spin_us = DEFAULT_IDLE_SPIN;
	if (!sn__is_pow2(o->ring_size) || o->ring_size < 2 || o->ring_size > (1u << 24))
		return sn__err(-EINVAL, "ring_size %u: a power of two in 2..16M", o->ring_size);
	if (!sn__is_pow2(o->inbox_size) || o->inbox_size < 2 || o->inbox_size > (1u << 24))
		return sn__err(-EINVAL, "inbox_size %u: a power of two in 2..16M", o->inbox_size);
	if (o->cpus && !(o->flags & SN_RT_NOPIN))
		for (unsigned i = 0; i < o->workers; i++)
			if (o->cpus[i] >= CPU_SETSIZE || !CPU_ISSET(o->cpus[i], allowed))
				return sn__err(-EINVAL,
				               "CPU %u (worker %u) is not one this process may use",
				               o->cpus[i], i);
	if (!o->cpus && o->workers > nallowed && !(o->flags & SN_RT_NOPIN))
		return sn__err(-EINVAL,
		               "%u workers but this process may use %u CPUs: give cpus, fewer "
		               "workers, or SN_RT_NOPIN",
		               o->workers, nallowed);
	return 0;
}

static void free_rt(struct sn_rt *rt)
{
	unsigned i;

	for (i = 0; rt->ring && i < rt->n * rt->n; i++)
		free(rt->ring[i]);
	for (i = 0; rt->w && i < rt->n; i++) {
		struct sn__worker *w = &rt->w[i];

		if (w->efd >= 0)
			close(w->efd);
		free(w->inbox.cell);
		free(w->dirty);
		free(w->dirty_to);
		free(w->heap);
		free(w->watch);
	}
	free(rt->ring);
	free(rt->w);
	if (rt->phase)
		pthread_mutex_destroy(&rt->lock), pthread_cond_destroy(&rt->cond);
	free(rt);
}

int sn_rt_create(const struct sn_rt_opts *opts, struct sn_rt **rtp)
{
	struct sn_rt_opts o = opts ? *opts : (struct sn_rt_opts){ 0 };
	struct sn_rt *rt;
	cpu_set_t allowed;
	unsigned i, cpu, nallowed, started;
	int err = 0;

	*rtp = NULL;
	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return sn__err(-errno, "sched_getaffinity: %s", strerror(errno));
	nallowed = (unsigned)CPU_COUNT(&allowed);
	if ((err = check_opts(&o, &allowed, nallowed)))
		return err;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return sn__err(-ENOMEM, "out of memory");
	rt->opts = o;
	rt->opts.cpus = NULL; /* the caller's array need not outlive this call */
	rt->n = o.workers;
	rt->w = aligned_alloc(SN_CACHELINE, rt->n * sizeof(*rt->w));
	rt->ring = calloc((size_t)rt->n * rt->n, sizeof(struct sn__ring *));
	if (!rt->w || !rt->ring) {
		free(rt->w);
		rt->w = NULL;
		free_rt(rt);
		return sn__err(-ENOMEM, "out of memory for %u workers", rt->n);
	}
	memset(rt->w, 0, rt->n * sizeof(*rt->w));
	for (i = 0, cpu = 0; i < rt->n; i++) {
		struct sn__worker *w = &rt->w[i];

		w->rt = rt;
		w->idx = i;
		if (o.cpus) {
			w->cpu = o.cpus[i];
		} else {
			/* The i-th allowed CPU, wrapping when unpinned workers outnumber CPUs. */
			while (!CPU_ISSET(cpu % CPU_SETSIZE, &allowed))
				cpu++;
			w->cpu = cpu % CPU_SETSIZE;
			cpu = (cpu + 1) % CPU_SETSIZE;
		}
		w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->efd < 0 && !err)
			err = sn__err(-errno, "eventfd: %s", strerror(errno));
	}
	if (err) {
		free_rt(rt);
		return err;
	}
	pthread_mutex_init(&rt->lock, NULL);
	pthread_cond_init(&rt->cond, NULL);
	for (i = 0; i < rt->n && !err; i++) {
		int e = pthread_create(&rt->w[i].thread, NULL, sn__worker_main, &rt->w[i]);

		if (e)
			err = sn__err(-e, "cannot start worker %u: %s", i, strerror(e));
	}
	started = err ? i - 1 : rt->n;
	pthread_mutex_lock(&rt->lock);
	while (!err && rt->nready < rt->n)
		pthread_cond_wait(&rt->cond, &rt->lock);
	for (i = 0; i < started && !err; i++)
		if (rt->w[i].err)
			err = sn__err(rt->w[i].err, "%s", rt->w[i].errmsg);
	/* Every ring exists (or setup failed): let the workers run their init, or leave. */
	rt->phase = err ? -1 : 1;
	pthread_cond_broadcast(&rt->cond);
	while (!err && rt->nready < 2 * rt->n)
		pthread_cond_wait(&rt->cond, &rt->lock);
	pthread_mutex_unlock(&rt->lock);
	if (err) {
		for (i = 0; i < started; i++)
			pthread_join(rt->w[i].thread, NULL);
		free_rt(rt);
		return err;
	}
	*rtp = rt;
	return 0;
}

int sn_rt_stop(struct sn_rt *rt)
{
	unsigned i;

	if (atomic_load(&rt->stopped))
		return 0;
	atomic_store(&rt->stopping, 1);
	for (i = 0; i < rt->n; i++)
		while (atomic_load(&rt->w[i].inbox.entering))
			sched_yield();
	for (i = 0; i < rt->n; i++) {
		uint64_t one = 1;

		(void)!write(rt->w[i].efd, &one, sizeof(one));
	}
	for (i = 0; i < rt->n; i++)
		pthread_join(rt->w[i].thread, NULL);
	atomic_store(&rt->stopped, 1);
	return 0;
}

int sn_rt_stopped(const struct sn_rt *rt)
{
	return atomic_load(&rt->stopped);
}

void sn_rt_destroy(struct sn_rt *rt)
{
	if (!rt)
		return;
	sn_rt_stop(rt);
	free_rt(rt);
}

static int send_foreign(struct sn_rt *rt, struct sn__worker *to, sn_rt_fn fn, void *arg)
{
	int err;

	atomic_fetch_add(&to->inbox.entering, 1);
	if (atomic_load(&rt->stopping)) {
		atomic_fetch_sub(&to->inbox.entering, 1);
		return sn__err_str(-ESHUTDOWN, "the runtime is stopping");
	}
	err = sn__inbox_push(&to->inbox, fn, arg);
	atomic_fetch_sub_explicit(&to->inbox.entering, 1, memory_order_release);
	if (err)
		return sn__err_str(err, "the worker's inbox is full");
	if (rt->opts.mode == SN_RT_EVENT)
		sn__worker_wake(to);
	return 0;
}

int sn_rt_send(struct sn_rt *rt, unsigned w, sn_rt_fn fn, void *arg)
{
	struct sn__worker *self = sn__self;
	struct sn__ring *r;

	if (SN_UNLIKELY(w >= rt->n))
		return sn__err(-EINVAL, "worker %u: the runtime has %u", w, rt->n);
	if (!self || self->rt != rt)
		return send_foreign(rt, &rt->w[w], fn, arg);
	r = rt->ring[w * rt->n + self->idx];
	if (SN_UNLIKELY(sn__ring_push(r, fn, arg))) {
		/* Full: publish what is written so the receiver can make room. */
		sn__worker_publish(self);
		return sn__err_str(-EAGAIN, "the ring to that worker is full");
	}
	if (!r->dirty) {
		r->dirty = 1;
		self->dirty_to[self->ndirty] = w;
		self->dirty[self->ndirty++] = r;
	} else if (sn__ring_unpublished(r) >= SN_RT_BATCH) {
		sn__worker_publish(self);
	}
	return 0;
}

void sn_rt_flush(void)
{
	if (sn__self)
		sn__worker_publish(sn__self);
}

struct call {
	sn_rt_fn fn;
	void *arg;
	struct sn_rt_latch done;
};

static void call_run(void *arg)
{
	struct call *c = arg;

	c->fn(c->arg);
	sn_rt_latch_done(&c->done);
}

int sn_rt_call(struct sn_rt *rt, unsigned w, sn_rt_fn fn, void *arg)
{
	struct call c = { fn, arg, { 0 } };
	int err;

	if (w >= rt->n)
		return sn__err(-EINVAL, "worker %u: the runtime has %u", w, rt->n);
	if (sn__self && sn__self->rt == rt) {
		if (sn__self->idx != w)
			return sn__err(-EDEADLK,
			               "sn_rt_call from worker %u to worker %u would "
			               "block a worker: use sn_rt_send",
			               sn__self->idx, w);
		fn(arg);
		return 0;
	}
	sn_rt_latch_init(&c.done, 1);
	while ((err = send_foreign(rt, &rt->w[w], call_run, &c)) == -EAGAIN)
		sched_yield();
	if (err)
		return err;
	sn_rt_latch_wait(&c.done);
	return 0;
}

/* ---- latch: a count, with a flag bit saying a waiter sleeps on the futex ---- */

static long futex(uint32_t *addr, int op, uint32_t val)
{
	return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

void sn_rt_latch_init(struct sn_rt_latch *l, unsigned n)
{
	atomic_store((_Atomic uint32_t *)&l->count, n);
}

void sn_rt_latch_done(struct sn_rt_latch *l)
{
	uint32_t old = atomic_fetch_sub((_Atomic uint32_t *)&l->count, 1);

	if (old == (LATCH_WAITERS | 1)) {
		atomic_store((_Atomic uint32_t *)&l->count, 0);
		futex(&l->count, FUTEX_WAKE_PRIVATE, INT_MAX);
	}
}

void sn_rt_latch_wait(struct sn_rt_latch *l)
{
	_Atomic uint32_t *c = (_Atomic uint32_t *)&l->count;
	uint32_t v;
	int i;

	/* Spin a little (the answer of a polling worker takes about a microsecond), then
	 * yield for a while (the worker may need this CPU), then sleep. */
	for (i = 0; i < LATCH_SPINS; i++) {
		if (!atomic_load_explicit(c, memory_order_acquire))
			return;
		if (i < 64) {
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
		} else {
			sched_yield();
		}
	}
	while ((v = atomic_load(c)) != 0) {
		if (!(v & LATCH_WAITERS) && !atomic_compare_exchange_weak(c, &v, v | LATCH_WAITERS))
			continue;
		futex(&l->count, FUTEX_WAIT_PRIVATE, v | LATCH_WAITERS);
	}
}
