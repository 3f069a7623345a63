/* SPDX-License-Identifier: MIT */
/*
 * snstore/rt.h — the shared-nothing runtime: one worker thread per core, each owning its
 * data and its device queues, talking to the others only by messages.
 *
 *     static void hello(void *arg) { printf("worker %u: %s\n", sn_rt_self(), (char *)arg); }
 *
 *     struct sn_rt *rt;
 *     struct sn_rt_opts o = { 0 };               // a worker per CPU, pinned, event mode
 *     sn_rt_create(&o, &rt);
 *     sn_rt_call(rt, 1, hello, "hi");            // runs hello on worker 1, waits for it
 *     sn_rt_destroy(rt);                         // drains messages and I/O, joins
 *
 * Every worker runs one loop: reap the completions of its device queues, drain its
 * inbound message rings, run its due timers and deferred tasks, then spin (poll mode)
 * or sleep until work arrives (event mode). Between every ordered pair of workers there
 * is a single-producer single-consumer ring; threads outside the runtime ("foreign"
 * threads) enter through a per-worker multi-producer inbox.
 *
 * Caveats:
 *  - Message handlers, timers, deferred tasks and completion callbacks run on the worker
 *    and must not block: a blocked worker stops everything it owns.
 *  - Sends are asynchronous and never dropped: a full ring refuses with -EAGAIN and the
 *    sender decides (retry from a later loop iteration, or bound what it has in flight).
 *  - Messages from one sender to one worker run in the order they were sent. Nothing is
 *    ordered between different senders.
 *  - A worker's sends are published in batches: at most SN_RT_BATCH messages, or the end
 *    of the current loop iteration, whichever comes first (sn_rt_flush() publishes now).
 */
#ifndef SNSTORE_RT_H
#define SNSTORE_RT_H

#include <stdint.h>

#include <snstore/dev.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sn_rt;

/** What sn_rt_self() and sn_rt_sender() return for a thread outside the runtime. */
#define SN_RT_FOREIGN 0xffffffffu

/** A worker publishes its sends after this many messages to one worker (or sooner). */
#define SN_RT_BATCH 16

/** A message handler, timer, or deferred task: runs on a worker, must not block. */
typedef void (*sn_rt_fn)(void *arg);

/** How an idle worker waits. */
enum sn_rt_mode {
	SN_RT_EVENT = 0, /* spin for idle_spin_us (2 µs polling, then yielding the CPU; only
	                    yielding while another thread shows it wants the CPU), then sleep
	                    on an eventfd: no CPU when idle */
	SN_RT_POLL = 1,  /* spin always: lowest latency, burns its core (the SPDK model) */
};

/** sn_rt_opts.flags */
#define SN_RT_NOPIN 1u /* do not pin workers to CPUs (the scheduler places them) */

/** Runtime options. All-zero is a good default. */
struct sn_rt_opts {
	unsigned workers;      /* 0: one per CPU this process may run on */
	const unsigned *cpus;  /* worker i runs on cpus[i]; NULL: the i-th allowed CPU */
	enum sn_rt_mode mode;  /* SN_RT_EVENT (default) or SN_RT_POLL */
	unsigned flags;        /* SN_RT_NOPIN */
	unsigned ring_size;    /* slots in each worker-to-worker ring, a power of two; 0: 512 */
	unsigned inbox_size;   /* slots in each foreign inbox, a power of two; 0: 4096 */
	unsigned idle_spin_us; /* event mode: spin this long idle before sleeping; 0: 50 */
	/* Optional: run on each worker before it takes messages, and after it drained. */
	void (*init)(unsigned worker, void *arg);
	void (*fini)(unsigned worker, void *arg);
	void *arg;
};

/**
 * Start a runtime: create the workers, pin them, allocate each worker's inbound rings
 * on its own CPU (first touch: its NUMA node), run opts->init on each, and return once
 * every worker is ready to take messages. opts may be NULL (all defaults).
 * Returns 0 and *rtp, -EINVAL (bad option: sn_errmsg() says which), -ENOMEM, or the
 * error of creating a thread or an eventfd. Any thread but a worker.
 */
int sn_rt_create(const struct sn_rt_opts *opts, struct sn_rt **rtp);

/**
 * Stop: refuse further sends from foreign threads (-ESHUTDOWN), let the workers run
 * until every message already sent has been handled, every message those handlers sent
 * too, and every watched queue has no I/O in flight; then run opts->fini on each worker
 * and join them. Timers not yet due never fire. Returns 0; a second call does nothing.
 * Any thread but a worker.
 */
int sn_rt_stop(struct sn_rt *rt);

/**
 * 1 once sn_rt_stop() has returned: every worker has exited, so what they owned may be
 * freed by any thread. 0 before, and while a stop is under way. Any thread.
 */
int sn_rt_stopped(const struct sn_rt *rt);

/** Stop (if not stopped) and free the runtime. Any thread but a worker. */
void sn_rt_destroy(struct sn_rt *rt);

/** The number of workers. Any thread. */
unsigned sn_rt_workers(const struct sn_rt *rt);

/** The CPU worker w is pinned to (or was meant for, with SN_RT_NOPIN). Any thread. */
unsigned sn_rt_cpu(const struct sn_rt *rt, unsigned w);

/** The calling worker's index, or SN_RT_FOREIGN on a thread outside every runtime. */
unsigned sn_rt_self(void);

/** The runtime the calling worker belongs to, or NULL on a foreign thread. */
struct sn_rt *sn_rt_current(void);

/**
 * Inside a message handler: the index of the worker that sent it, or SN_RT_FOREIGN
 * when a foreign thread did. Elsewhere SN_RT_FOREIGN. The reply path is a send back:
 * sn_rt_send(sn_rt_current(), sn_rt_sender(), reply_fn, arg).
 */
unsigned sn_rt_sender(void);

/**
 * Run fn(arg) on worker w, later; does not wait. From a worker this goes through the
 * ring from it to w (w may be itself); from a foreign thread, through w's inbox.
 * Returns 0, or:
 *   -EAGAIN     the ring (inbox) is full: nothing was sent; try again later
 *   -ESHUTDOWN  from a foreign thread, after sn_rt_stop() began
 *   -EINVAL     w is not a worker of rt
 * Any thread.
 */
int sn_rt_send(struct sn_rt *rt, unsigned w, sn_rt_fn fn, void *arg);

/** Publish the calling worker's batched sends now. A no-op on a foreign thread. */
void sn_rt_flush(void);

/**
 * Run fn(arg) on worker w and wait until it has returned; waits while the inbox is
 * full. On worker w itself it calls fn at once. Returns 0, -ESHUTDOWN, -EINVAL, or
 * -EDEADLK when called on another worker (a worker must never block on a worker).
 */
int sn_rt_call(struct sn_rt *rt, unsigned w, sn_rt_fn fn, void *arg);

/**
 * A countdown latch: how a foreign thread waits for work it handed to workers.
 * sn_rt_latch_init(&l, n) before sending; each of the n completions calls
 * sn_rt_latch_done(&l) (any thread, never blocks); sn_rt_latch_wait(&l) returns once
 * all n are done (it spins briefly, then sleeps on a futex).
 */
struct sn_rt_latch {
	uint32_t count; /* accessed atomically */
};
void sn_rt_latch_init(struct sn_rt_latch *l, unsigned n);
void sn_rt_latch_done(struct sn_rt_latch *l);
void sn_rt_latch_wait(struct sn_rt_latch *l);

/**
 * Timers, owned by the caller (no allocation): sn_rt_timer_arm() makes t fire fn(arg)
 * on the calling worker delay_ns from now (re-arming an armed timer moves it);
 * sn_rt_timer_cancel() disarms it (no-op if not armed). The struct must stay valid
 * while armed. Return 0, or -EPERM on a foreign thread. Worker only.
 */
struct sn_rt_timer {
	uint64_t when_ns; /* CLOCK_MONOTONIC deadline */
	sn_rt_fn fn;
	void *arg;
	unsigned slot; /* position in the worker's heap + 1; 0 when not armed */
};
int sn_rt_timer_arm(struct sn_rt_timer *t, uint64_t delay_ns, sn_rt_fn fn, void *arg);
void sn_rt_timer_cancel(struct sn_rt_timer *t);

/**
 * A deferred task runs once at the end of the calling worker's current loop iteration,
 * after the messages and completions of that iteration: the place to coalesce work
 * (one flush for many writes). Deferring a task that is already queued does nothing.
 * Returns 0, or -EPERM on a foreign thread. Worker only.
 */
struct sn_rt_task {
	sn_rt_fn fn;
	void *arg;
	struct sn_rt_task *next;
	int queued;
};
int sn_rt_defer(struct sn_rt_task *t);

/** Completions of a watched queue, in batches. */
typedef void (*sn_rt_cqe_fn)(void *arg, const struct sn_cqe *cqes, unsigned n);

/**
 * Let the calling worker reap q (a queue it created): every loop iteration the worker
 * collects q's completions and passes them to cb(arg, cqes, n). In event mode the
 * worker sleeps only when q's engine can wake it (io_uring) or q has nothing in
 * flight. sn_rt_stop() waits for watched queues to empty. Returns 0, -ENOMEM, -EPERM
 * on a foreign thread. Worker only.
 */
int sn_rt_queue_watch(struct sn_queue *q, sn_rt_cqe_fn cb, void *arg);

/** Stop reaping q (before destroying it). Worker only; a no-op for an unwatched q. */
void sn_rt_queue_unwatch(struct sn_queue *q);

#ifdef __cplusplus
}
#endif
#endif
