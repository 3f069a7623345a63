/* SPDX-License-Identifier: MIT */
/*
 * kvbench_work.c — the clients of `snstore kvbench` and their workloads. A client either
 * runs ON a worker of the store's runtime and keeps up to --depth asynchronous calls in
 * flight, issuing the next one from each completion (callbacks run on the calling worker,
 * never inside the call), or (--foreign) is a plain thread: at --depth 1 it makes
 * blocking calls; deeper, it keeps --depth asynchronous calls in flight, whose callbacks
 * run on the owning workers and hand the finished call back to the thread. Each
 * client owns its counters and latency histogram: nothing is shared on the hot path but
 * the key counter of YCSB inserts.
 *
 * db_bench facts (LevelDB benchmarks/db_bench.cc, as bench/kvref.c): keys are the key
 * number in zero-padded decimal ("%016llu"); random keys are uniform over [0, num) from
 * one splitmix64 stream per client, seeded from --seed and the benchmark's name, with the
 * code kvref uses (bench/kvgen.h), so both drivers write and read the same keys, and time
 * operations with the same clock; values are consecutive slices of db_bench's
 * RandomGenerator pool (1 MiB of 100-byte pieces, each 50 random printable bytes twice).
 * YCSB facts (core workloads A-F): request keys follow a scrambled zipfian (theta 0.99,
 * Gray et al.'s generator, rank hashed with FNV-1a over the key space); D reads the latest
 * inserts (zipfian over recency); inserts take fresh key numbers after num; the load
 * phase inserts every key once in a scrambled ("hashed") order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../bench/kvgen.h"
#include "kvbench.h"

#define ZIPF_THETA 0.99

enum role { R_SEQ_WRITE, R_RAND_WRITE, R_WRITE_UNTIL_STOP, R_READ, R_LOAD, R_YCSB };
enum op { OP_GET, OP_PUT, OP_INSERT, OP_RMW, OP_SCAN };

/* Gray et al., "Quickly generating billion-record synthetic databases" (YCSB's
 * ZipfianGenerator): rank 0 is the most popular of n items. */
struct zipf {
	uint64_t n;
	double zetan, zeta2, alpha, eta;
};

struct client;

/* One call in flight (worker clients have --depth of them). */
struct slot {
	struct client *c;
	uint64_t t0, key;
	uint8_t op, step;  /* step: RMW 0 get, 1 put; SCAN the point read */
	struct slot *next; /* on the retry list; a foreign client's lists */
	int res;           /* foreign, asynchronous: the call's result and when it came */
	uint64_t t1;
};

struct run;

struct client {
	_Alignas(64) _Atomic uint64_t done; /* finished operations, for the progress line */
	struct run *run;
	unsigned idx, worker, depth, inflight;
	enum role role;
	unsigned flags; /* SN_KV_DURABLE or 0 */
	uint64_t lo, n; /* R_SEQ_WRITE, R_LOAD: operations lo..lo+n-1; others: n operations */
	uint64_t issued, ops, reads, found;
	uint64_t rng;
	size_t vpos;
	uint64_t t_start, t_end;
	struct sn_hist *h;
	struct zipf z;
	struct slot *slots, *retry, **retry_tail;
	_Atomic(struct slot *) finished; /* foreign, asynchronous: calls the workers ended */
	struct sn_rt_task retry_task;
	int stopping, err;
	char errmsg[200];
	pthread_t tid;
	char key[SN_KV_MAX_KEY];
};

struct run {
	const struct kb_env *env;
	const struct kb_opts *o;
	enum kb_kind kind;
	struct client *cs;
	unsigned n;
	struct sn_rt_latch latch;
	pthread_barrier_t barrier;
	_Atomic int stop;
	_Atomic unsigned readers_left, active;
	_Atomic uint64_t next_insert, acked_inserts;
	uint64_t perm_a, perm_b; /* load: the i-th key is (a * i + b) mod num */
};

/* ---- numbers ---- */

static double rng_unit(uint64_t *s)
{
	return (double)(kg_rng_next(s) >> 11) * 0x1p-53;
}

/* FNV-1a of the 8 bytes of v: YCSB's scrambling of zipfian ranks. */
static uint64_t fnv64(uint64_t v)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (int i = 0; i < 8; i++, v >>= 8)
		h = (h ^ (v & 0xff)) * 0x100000001b3ull;
	return h;
}

/* zeta(n) = sum of 1/i^theta for i in 1..n: exact for the first 10M terms, then the
 * integral of the midpoint rule (error far below the generator's resolution), so a huge
 * --num does not spend minutes here. */
static void zipf_grow(struct zipf *z, uint64_t n)
{
	const uint64_t exact = 10000000;
	uint64_t i;

	for (i = z->n + 1; i <= n && i <= exact; i++)
		z->zetan += 1.0 / pow((double)i, ZIPF_THETA);
	if (n >= i)
		z->zetan += (pow((double)n + 0.5, 1 - ZIPF_THETA) -
		             pow((double)i - 0.5, 1 - ZIPF_THETA)) /
		            (1 - ZIPF_THETA);
	z->n = n;
	z->eta = (1 - pow(2.0 / (double)n, 1 - ZIPF_THETA)) / (1 - z->zeta2 / z->zetan);
}

static void zipf_init(struct zipf *z, uint64_t n)
{
	memset(z, 0, sizeof(*z));
	z->zeta2 = 1 + pow(0.5, ZIPF_THETA);
	z->alpha = 1 / (1 - ZIPF_THETA);
	zipf_grow(z, n);
}

static uint64_t zipf_next(const struct zipf *z, double u)
{
	double uz = u * z->zetan;
	uint64_t r;

	if (uz < 1)
		return 0;
	if (uz < z->zeta2)
		return 1;
	r = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1, z->alpha));
	return r < z->n ? r : z->n - 1;
}

/* ---- values: consecutive slices of the pool (kvgen.h) ---- */

static const char *value_next(struct client *c, size_t len)
{
	if (c->vpos + len > KG_VALUE_POOL)
		c->vpos = 0;
	c->vpos += len;
	return c->run->env->vpool + c->vpos - len;
}

int kb_is_read(enum kb_kind k)
{
	return k == KB_READRANDOM || k == KB_READWHILEWRITING || (k >= KB_YCSBA && k <= KB_YCSBF);
}

/* ---- the next operation of a client ---- */

static uint64_t ycsb_key(struct client *c)
{
	return fnv64(zipf_next(&c->z, rng_unit(&c->rng))) % c->run->o->num;
}

static void ycsb_next(struct client *c, struct slot *s)
{
	struct run *r = c->run;
	uint64_t p = kg_rng_below(&c->rng, 100), max;

	s->op = OP_GET;
	switch (r->kind) {
	case KB_YCSBA: /* 50% read, 50% update */
	case KB_YCSBB: /* 95% read, 5% update */
		if (p >= (r->kind == KB_YCSBA ? 50u : 95u))
			s->op = OP_PUT;
		s->key = ycsb_key(c);
		break;
	case KB_YCSBD: /* 95% read of the latest keys, 5% insert */
	case KB_YCSBE: /* 95% scan, 5% insert */
		if (p >= 95) {
			s->op = OP_INSERT;
			s->key = r->o->num + atomic_fetch_add(&r->next_insert, 1);
		} else if (r->kind == KB_YCSBE) {
			s->op = OP_SCAN;
			s->key = ycsb_key(c);
		} else {
			max = r->o->num +
			      atomic_load_explicit(&r->acked_inserts, memory_order_relaxed);
			if (max > c->z.n)
				zipf_grow(&c->z, max);
			s->key = max - 1 - zipf_next(&c->z, rng_unit(&c->rng));
		}
		break;
	case KB_YCSBF: /* 50% read, 50% read-modify-write */
		if (p >= 50)
			s->op = OP_RMW;
		s->key = ycsb_key(c);
		break;
	default: /* C: 100% read */
		s->key = ycsb_key(c);
	}
}

/* Picks the client's next operation into s; 0 when it has none left. */
static int next_op(struct client *c, struct slot *s)
{
	struct run *r = c->run;

	if (c->stopping)
		return 0;
	if (c->role == R_WRITE_UNTIL_STOP) {
		if (atomic_load_explicit(&r->stop, memory_order_relaxed))
			return 0;
	} else if (c->issued >= c->n) {
		return 0;
	}
	s->step = 0;
	switch (c->role) {
	case R_SEQ_WRITE:
		s->op = OP_PUT;
		s->key = c->lo + c->issued;
		break;
	case R_RAND_WRITE:
	case R_WRITE_UNTIL_STOP:
		s->op = OP_PUT;
		s->key = kg_rng_below(&c->rng, r->o->num);
		break;
	case R_READ:
		s->op = OP_GET;
		s->key = kg_rng_below(&c->rng, r->o->num);
		break;
	case R_LOAD:
		s->op = OP_PUT;
		s->key = (uint64_t)(((unsigned __int128)r->perm_a * (c->lo + c->issued) +
		                     r->perm_b) %
		                    r->o->num);
		break;
	case R_YCSB:
		ycsb_next(c, s);
		break;
	}
	c->issued++;
	return 1;
}

static int is_get(const struct slot *s)
{
	return s->op == OP_GET || s->op == OP_SCAN || (s->op == OP_RMW && s->step == 0);
}

static void client_error(struct client *c, int err, const char *msg)
{
	if (!c->err) {
		c->err = err;
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", *msg ? msg : sn_strerror(err));
	}
	c->stopping = 1;
}

/* An operation finished: count it. */
static void op_done(struct client *c, struct slot *s, uint64_t now)
{
	if (s->op == OP_INSERT)
		atomic_fetch_add_explicit(&c->run->acked_inserts, 1, memory_order_relaxed);
	sn_hist_add(c->h, now - s->t0);
	c->ops++;
	atomic_store_explicit(&c->done, c->ops, memory_order_relaxed);
}

/* The client has nothing left in flight: record its end and tell the main thread. */
static void client_finish(struct client *c)
{
	struct run *r = c->run;

	c->t_end = kg_now_ns();
	if (c->role == R_READ && atomic_fetch_sub(&r->readers_left, 1) == 1)
		atomic_store(&r->stop, 1);
	atomic_fetch_sub(&r->active, 1);
	if (!r->o->foreign)
		sn_rt_latch_done(&r->latch); /* the main thread may free c from here on */
}

/* ---- clients on workers: asynchronous calls ---- */

static void on_done(void *arg, int res, const void *val, size_t vlen);

static int submit_cb(struct client *c, struct slot *s, sn_kv_cb cb)
{
	const struct kb_opts *o = c->run->o;
	struct sn_kv *kv = c->run->env->kv;

	kg_fmt_key(c->key, o->key_size, s->key); /* the store copies key and value at once */
	if (is_get(s))
		return sn_kv_get_async(kv, c->key, o->key_size, cb, s);
	return sn_kv_put_async(kv, c->key, o->key_size, value_next(c, o->value_size), o->value_size,
	                       c->flags, cb, s);
}

static int submit(struct client *c, struct slot *s)
{
	return submit_cb(c, s, on_done);
}

/* A call ended: is it an error (msg says why), or a step of a longer operation (RMW,
 * SCAN)? 1: the operation is over; 0: s goes on (start it again); -1: the client failed. */
static int call_ended(struct client *c, struct slot *s, int res, const char *msg)
{
	if (res && !(res == -ENOENT && is_get(s))) {
		client_error(c, res, msg);
		return -1;
	}
	if (is_get(s)) {
		c->reads++;
		c->found += !res;
	}
	if ((s->op == OP_RMW && s->step == 0) || (s->op == OP_SCAN && s->step + 1 < KB_SCAN_LEN)) {
		s->step++;
		s->key += s->op == OP_SCAN;
		return 0;
	}
	return 1;
}

static void slot_idle(struct client *c)
{
	if (--c->inflight == 0)
		client_finish(c);
}

static void start_op(struct client *c, struct slot *s)
{
	/* Behind calls already waiting for room, so none of them starves. */
	int err = c->retry ? -EAGAIN : submit(c, s);

	if (!err)
		return;
	if (err == -EAGAIN) { /* a ring is full: try again at the end of this iteration */
		s->next = NULL;
		*c->retry_tail = s;
		c->retry_tail = &s->next;
		sn_rt_defer(&c->retry_task);
		return;
	}
	client_error(c, err, sn_errmsg());
	slot_idle(c);
}

static void retry_task(void *arg)
{
	struct client *c = arg;

	c->inflight++; /* held until the end: the client cannot finish under us */
	while (c->retry) {
		struct slot *s = c->retry;
		int err;

		c->retry = s->next;
		if (!c->retry)
			c->retry_tail = &c->retry;
		err = c->stopping ? -ECANCELED : submit(c, s);
		if (err == -EAGAIN) {
			s->next = c->retry;
			if (!c->retry)
				c->retry_tail = &s->next;
			c->retry = s;
			sn_rt_defer(&c->retry_task);
			break;
		}
		if (err) {
			if (err != -ECANCELED)
				client_error(c, err, sn_errmsg());
			slot_idle(c);
		}
	}
	slot_idle(c);
}

static void on_done(void *arg, int res, const void *val, size_t vlen)
{
	struct slot *s = arg;
	struct client *c = s->c;
	uint64_t now;

	(void)val;
	(void)vlen;
	switch (call_ended(c, s, res, sn_strerror(res))) {
	case -1:
		slot_idle(c);
		return;
	case 0:
		start_op(c, s);
		return;
	}
	now = kg_now_ns();
	op_done(c, s, now);
	if (next_op(c, s)) {
		s->t0 = now;
		start_op(c, s);
	} else {
		slot_idle(c);
	}
}

static void client_start(void *arg)
{
	struct client *c = arg;

	c->retry_tail = &c->retry;
	c->retry_task = (struct sn_rt_task){ retry_task, c, NULL, 0 };
	c->t_start = kg_now_ns();
	c->inflight = 1; /* held while starting */
	for (unsigned i = 0; i < c->depth; i++) {
		struct slot *s = &c->slots[i];

		if (!next_op(c, s))
			break;
		c->inflight++;
		s->t0 = kg_now_ns();
		start_op(c, s);
	}
	slot_idle(c);
}

/* ---- foreign clients: plain threads, blocking calls ---- */

/* One operation as blocking calls; 0, or -1 when the client failed. */
static int blocking_op(struct client *c, struct slot *s)
{
	const struct kb_opts *o = c->run->o;
	struct sn_kv *kv = c->run->env->kv;
	void *v;
	size_t vl;
	int err, r;

	do {
		kg_fmt_key(c->key, o->key_size, s->key);
		if (is_get(s)) {
			if (!(err = sn_kv_get(kv, c->key, o->key_size, &v, &vl)))
				free(v);
		} else {
			err = sn_kv_put(kv, c->key, o->key_size, value_next(c, o->value_size),
			                o->value_size, c->flags);
		}
	} while (!(r = call_ended(c, s, err, sn_errmsg())));
	return r < 0 ? -1 : 0;
}

/* ---- foreign clients, deeper than 1: plain threads, asynchronous calls ---- */

/* On the owning worker: hand the finished call back to its thread. */
static void on_done_foreign(void *arg, int res, const void *val, size_t vlen)
{
	struct slot *s = arg;
	struct client *c = s->c;
	struct slot *head = atomic_load_explicit(&c->finished, memory_order_relaxed);

	(void)val;
	(void)vlen;
	s->res = res;
	s->t1 = kg_now_ns();
	do
		s->next = head;
	while (!atomic_compare_exchange_weak_explicit(&c->finished, &head, s, memory_order_release,
	                                              memory_order_relaxed));
}

/* Keep c->depth calls in flight from this thread until the client's operations end. */
static void async_thread(struct client *c)
{
	struct slot *ready = NULL, **ready_tail = &ready;
	unsigned inflight = 0, idle = 0;

	for (unsigned i = 0; i < c->depth && next_op(c, &c->slots[i]); i++) {
		c->slots[i].t0 = kg_now_ns();
		*ready_tail = &c->slots[i];
		ready_tail = &c->slots[i].next;
	}
	*ready_tail = NULL;
	while (ready || inflight) {
		struct slot *f;

		while (ready) {
			struct slot *s = ready,
			            *next = s->next; /* s->next is the worker's once sent */
			int err = c->stopping ? -ECANCELED : submit_cb(c, s, on_done_foreign);

			if (err == -EAGAIN) /* an inbox is full: reap, then try again */
				break;
			if (!(ready = next))
				ready_tail = &ready;
			if (!err)
				inflight++;
			else if (err != -ECANCELED)
				client_error(c, err, sn_errmsg());
		}
		/* Look before taking: an exchange on every turn would hold the line the
		 * workers push onto. */
		f = atomic_load_explicit(&c->finished, memory_order_relaxed)
		            ? atomic_exchange_explicit(&c->finished, NULL, memory_order_acquire)
		            : NULL;
		if (!f) {
			/* Yield now and then: on a machine with fewer CPUs than threads, the
			 * workers this thread waits for may need this CPU. */
			if (++idle % 64 == 0)
				sched_yield();
			continue;
		}
		idle = 0;
		while (f) {
			struct slot *s = f;
			int r = call_ended(c, s, s->res, sn_strerror(s->res));

			f = s->next;
			inflight--;
			if (r > 0) {
				op_done(c, s, s->t1);
				if (!next_op(c, s))
					continue;
				s->t0 = kg_now_ns();
			} else if (r < 0) {
				continue;
			}
			s->next = NULL;
			*ready_tail = s;
			ready_tail = &s->next;
		}
	}
}

static void *client_thread(void *arg)
{
	struct client *c = arg;
	struct slot *s = &c->slots[0];

	pthread_barrier_wait(&c->run->barrier);
	c->t_start = kg_now_ns();
	if (c->depth > 1) {
		async_thread(c);
		client_finish(c);
		return NULL;
	}
	while (next_op(c, s)) {
		s->t0 = kg_now_ns();
		if (blocking_op(c, s))
			break;
		op_done(c, s, kg_now_ns());
	}
	client_finish(c);
	return NULL;
}

/* ---- one benchmark ---- */

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static int setup_clients(struct run *r, unsigned nreaders, uint64_t total, const char *name)
{
	const struct kb_opts *o = r->o;
	unsigned workers = sn_rt_workers(r->env->rt), parts = nreaders ? nreaders : r->n;
	uint64_t seed = o->seed ^ kg_hash_str(name), share = total / parts, extra = total % parts;
	struct zipf z;

	if (r->kind >= KB_YCSBA && r->kind <= KB_YCSBF)
		zipf_init(&z, o->num);
	for (unsigned i = 0; i < r->n; i++) {
		struct client *c = &r->cs[i];

		atomic_init(&c->done, 0);
		c->run = r;
		c->idx = i;
		c->worker = i % workers;
		c->depth = r->kind == KB_FILLSYNC ? 1 : o->depth;
		c->flags = r->kind == KB_FILLSYNC || o->sync ? SN_KV_DURABLE : 0;
		c->rng = kg_client_seed(seed, i);
		c->vpos = (size_t)(kg_rng_below(&c->rng, KG_VALUE_POOL / KG_VALUE_PIECE) *
		                   KG_VALUE_PIECE);
		atomic_init(&c->finished, NULL);
		c->h = malloc(sizeof(*c->h));
		c->slots = calloc(c->depth, sizeof(*c->slots));
		if (!c->h || !c->slots)
			return -1;
		sn_hist_init(c->h);
		for (unsigned j = 0; j < c->depth; j++)
			c->slots[j].c = c;
		if (r->kind == KB_READWHILEWRITING && i == nreaders) {
			c->role = R_WRITE_UNTIL_STOP;
			c->n = UINT64_MAX;
			continue;
		}
		c->n = share + (i < extra);
		c->lo = share * i + (i < extra ? i : extra);
		switch (r->kind) {
		case KB_FILLSEQ:
			c->role = R_SEQ_WRITE;
			break;
		case KB_READRANDOM:
		case KB_READWHILEWRITING:
			c->role = R_READ;
			break;
		case KB_LOAD:
			c->role = R_LOAD;
			break;
		case KB_FILLRANDOM:
		case KB_OVERWRITE:
		case KB_FILLSYNC:
			c->role = R_RAND_WRITE;
			break;
		default:
			c->role = R_YCSB;
			c->z = z;
		}
	}
	/* The load's order: a multiplier coprime with num walks every key once. */
	r->perm_a = 0x9e3779b97f4a7c15ull % o->num;
	while (o->num > 1 && (r->perm_a == 0 || gcd(r->perm_a, o->num) != 1))
		r->perm_a = (r->perm_a + 1) % o->num;
	r->perm_b = o->seed % o->num;
	return 0;
}

static void progress_line(const struct run *r, const char *name, uint64_t target, uint64_t t0)
{
	uint64_t done = 0;
	double el = (double)(kg_now_ns() - t0) / 1e9;

	for (unsigned i = 0; i < r->n; i++)
		if (r->cs[i].role != R_WRITE_UNTIL_STOP)
			done += atomic_load_explicit(&r->cs[i].done, memory_order_relaxed);
	fprintf(stderr, "\rsnstore %s: %5.1f%%  %10.0f ops/s\033[K", name,
	        target ? 100.0 * (double)done / (double)target : 0, el > 0 ? (double)done / el : 0);
}

int kb_run(const struct kb_env *env, enum kb_kind kind, const char *name, struct kb_result *res,
           int progress)
{
	const struct kb_opts *o = env->o;
	uint64_t total = o->num, t0 = UINT64_MAX, t1 = 0, start;
	unsigned nreaders = 0, i;
	struct run r;
	int failed = 0;

	kg_clock_setup();
	memset(&r, 0, sizeof(r));
	memset(res, 0, sizeof(*res));
	r.env = env;
	r.o = o;
	r.kind = kind;
	r.n = o->threads;
	if (kind == KB_FILLSYNC) {
		total = o->num / 1000 > 1000 ? o->num / 1000 : 1000;
		r.n = o->writers;
	} else if (kind == KB_READWHILEWRITING) {
		nreaders = o->threads;
		r.n = o->threads + 1;
	}
	atomic_init(&r.stop, 0);
	atomic_init(&r.readers_left, nreaders);
	atomic_init(&r.active, r.n);
	atomic_init(&r.next_insert, 0);
	atomic_init(&r.acked_inserts, 0);
	r.cs = aligned_alloc(64, sizeof(*r.cs) * r.n);
	if (!r.cs)
		goto oom;
	memset(r.cs, 0, sizeof(*r.cs) * r.n);
	if (setup_clients(&r, nreaders, total, name))
		goto oom;

	if (o->foreign) {
		pthread_barrier_init(&r.barrier, NULL, r.n + 1);
		for (i = 0; i < r.n; i++)
			if (pthread_create(&r.cs[i].tid, NULL, client_thread, &r.cs[i]))
				kb_fatal("starting client thread %u: pthread_create failed", i);
		pthread_barrier_wait(&r.barrier);
	} else {
		sn_rt_latch_init(&r.latch, r.n);
		for (i = 0; i < r.n; i++) {
			int err;

			while ((err = sn_rt_send(env->rt, r.cs[i].worker, client_start,
			                         &r.cs[i])) == -EAGAIN)
				sched_yield();
			if (err)
				kb_fatal("starting client %u: %s", i, sn_strerror(err));
		}
	}
	start = kg_now_ns();
	if (progress) {
		while (atomic_load(&r.active) > 0) {
			struct timespec ts = { 0, 250000000 };

			nanosleep(&ts, NULL);
			progress_line(&r, name, total, start);
		}
		fprintf(stderr, "\r\033[K");
	}
	if (o->foreign) {
		for (i = 0; i < r.n; i++)
			pthread_join(r.cs[i].tid, NULL);
		pthread_barrier_destroy(&r.barrier);
	} else {
		sn_rt_latch_wait(&r.latch);
	}

	res->name = name;
	res->kind = kind;
	res->clients = nreaders ? nreaders : r.n;
	res->h = malloc(sizeof(*res->h));
	if (res->h)
		sn_hist_init(res->h);
	for (i = 0; i < r.n; i++) {
		struct client *c = &r.cs[i];

		if (c->err) {
			kb_error("%s client %u: %s", name, i, c->errmsg);
			failed = 1;
		}
		if (c->role == R_WRITE_UNTIL_STOP) {
			res->writer_ops = c->ops;
			res->writer_secs = (double)(c->t_end - c->t_start) / 1e9;
		} else {
			res->ops += c->ops;
			res->reads += c->reads;
			res->found += c->found;
			if (res->h)
				sn_hist_merge(res->h, c->h);
			t0 = c->t_start < t0 ? c->t_start : t0;
			t1 = c->t_end > t1 ? c->t_end : t1;
		}
		free(c->h);
		free(c->slots);
	}
	free(r.cs);
	res->secs = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
	if (!res->h) {
		kb_error("out of memory");
		return -1;
	}
	return failed ? -1 : 0;
oom:
	kb_fatal("out of memory");
}
