/* SPDX-License-Identifier: MIT */
/*
 * worker.h — the runtime's internals, shared by rt.c (lifecycle, sends) and worker.c
 * (the loop). rt->ring[to * n + from] is the ring from worker `from` to worker `to`;
 * worker `to` allocates its inbound rings on its own CPU.
 */
#ifndef SN_RT_WORKER_H
#define SN_RT_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include <snstore/rt.h>

#include "ring.h"

#define SN_RT_POP_MAX 64 /* messages taken from one ring per loop iteration */

struct sn__watch {
	struct sn_queue *q; /* NULL once unwatched (swept at the end of the iteration) */
	sn_rt_cqe_fn cb;
	void *arg;
	int notify; /* the engine signals our eventfd on completion */
};

struct sn__worker {
	struct sn_rt *rt;
	unsigned idx, cpu;
	pthread_t thread;
	int efd; /* eventfd: wakes the worker in event mode */

	/* The loop's own state: only this worker touches it. */
	struct sn__ring **dirty; /* outbound rings with unpublished messages */
	unsigned *dirty_to;      /* their destination workers */
	unsigned ndirty;
	struct sn_rt_timer **heap; /* min-heap on when_ns */
	unsigned nheap, heap_cap;
	struct sn_rt_task *defer_head, *defer_tail;
	struct sn__watch *watch;
	unsigned nwatch, watch_cap, watch_swept;
	uint64_t idle_since; /* event mode: when the current idle stretch began, 0 if busy */
	uint64_t shared_until, long_since; /* event mode: another thread wants this CPU */
	unsigned longs;                    /* long yields since long_since (idle_yield) */

	struct sn__inbox inbox; /* from foreign threads */

	/* Read by other threads. */
	_Alignas(SN_CACHELINE) _Atomic int sleeping; /* in (or entering) poll() on efd */
	_Atomic int idle;                            /* stopping: nothing to do here */
	_Atomic uint64_t gen;                        /* stopping: bumped on leaving idle */
	int err;                                     /* setup failure, before the loop */
	char errmsg[256];                            /* its sn_errmsg() */
};

struct sn_rt {
	struct sn_rt_opts opts;
	unsigned n;
	struct sn__worker *w;
	struct sn__ring **ring; /* n * n */
	pthread_mutex_t lock;   /* setup: workers count in, the creator says go */
	pthread_cond_t cond;
	unsigned nready;      /* n when every ring exists, 2n when every init ran */
	int phase;            /* 0 setting up, 1 go, -1 leave (setup failed) */
	_Atomic int stopping; /* sn_rt_stop() began */
	_Atomic int done;     /* every worker quiet: leave the loop */
	_Atomic int stopped;  /* joined */
};

/* worker.c */
void *sn__worker_main(void *arg);
void sn__worker_wake(struct sn__worker *w);
void sn__worker_publish(struct sn__worker *w);
extern __thread struct sn__worker *sn__self;
extern __thread unsigned sn__sender;

#endif
