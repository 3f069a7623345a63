/* SPDX-License-Identifier: MIT */
/*
 * test_kv_crash.c — power loss and failing I/O under the KV store, on the fault: engine
 * (docs/engines.md). Every outcome is checked against the reference model of kv_model.h:
 * a durable write survives unless a later write replaced it, a key never goes back to an
 * older value nor shows bytes no write produced, a batch is all or nothing, recovery never
 * fails. Recovery may cut a torn tail (torn_bytes) but never reports a corrupt record
 * (corrupt_records: docs/format.md, the writer's rules): every open of the crash chains
 * checks it, and each chain ends with a scan of the whole log (no index checkpoint, as
 * `snstore kv check` opens); the error sweep does not (see verify).
 *
 *   fault ENGINE   chains of seeded random workloads (puts, overwrites, deletes, batches
 *                  across 4 shards, syncs, SN_KV_DURABLE writes, gets; compactions with
 *                  --compact) on fault:ENGINE:FILE?direct=1, each crashed at an I/O index
 *                  drawn uniformly over the run's I/Os (crash_at=N; crash=random, tear, all
 *                  or keep). The next open goes through a fresh fault layer (so recovery
 *                  itself may crash) or, to verify, straight to ENGINE. A chain is one
 *                  run without a crash (it counts the I/Os), then 16 crashes, on one store;
 *                  each chain starts from a new store.
 *   ENGINE bytes   fault:psync:FILE?bytes=1, byte-addressable: the store's log is the
 *                  mapping (appends are stores, syncs persist cache lines); a crash drops,
 *                  keeps or tears each cache line never persisted.
 *   errors ENGINE  a fixed workload with EIO, then ENOSPC, injected at each I/O index in
 *                  turn (eio_at=N, enospc_at=N): every call returns a clean error, nothing
 *                  hangs, and the store reopened without faults is consistent. ENOSPC only
 *                  where the workload makes write requests (bytes makes none: skipped).
 *
 *   test_kv_crash DIR fault|errors psync|uring|bytes [--points N] [--seed S] [--chain C]
 *                 [--compact] [--workers N] [--buffered] [--segment SIZE] [--big PCT]
 *
 * --points: crash points to try (fault; default 5000); --seed: the seed of everything
 * (default: from the clock, printed); --chain C: run only chain C (to reproduce a failure);
 * --compact: workloads also call sn_kv_compact() (forced compaction of every shard, so
 * crashes land in copies, header clears and dropped commits and tombstones); --workers N: runtime workers, each with its own
 * queue on the device (default 2; with 1 the error sweep hits the same I/O at the same
 * index every run); --buffered: no O_DIRECT, for DIR on tmpfs (/dev/shm: a soak then
 * spends its time in the store, not in the disk's flushes). SN_CRASH_POINTS and SN_CRASH_SEED in the
 * environment set --points and --seed.
 *
 * --segment SIZE: the store's segment size in bytes, a power of two from 64 KiB (the
 * default) to 16 MiB. The store keeps its shape: 4 shards of 8 segments after the log's
 * first MiB (the device is that, rounded up to a multiple of SIZE: 3 MiB for 64 KiB, 66 MiB
 * for 2 MiB), values up to 40000/65536 of a segment (40000 bytes for 64 KiB) but no more
 * than the store takes (SN_KV_MAX_VALUE, 1 MiB, from 2 MiB segments on). Bigger segments
 * reach what 64 KiB ones never do in src/kv/shard.c's round_start(): zeros written ahead of
 * the head that stop inside the segment (KV_ZERO_AHEAD), rounds of more than one write
 * (max_xfer, 1 MiB: from 2 MiB segments on), rounds the store starts by itself (a head with
 * WRITEBACK, 1 MiB, unwritten); not rounds cut short for want of queue room (observe_op
 * says why). With --segment, the fault mode also prints how often its rounds did that and
 * its crashes came in such an op (observe_op). --big PCT: percent of the values drawn
 * large, from 8000 bytes to the largest (default 8), so a head reaches 1 MiB unwritten more
 * often: with --segment 2097152, a round of 2 writes came in about 1 run in 4 with 60, 1 in
 * 7 with 40, 1 in 200 with 8. Both options apply to the error sweep's store and workload too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "kv/kv_impl.h"
#include "kv_model.h"
#include "test.h"

#define NKEYS      24
#define NOPS       40 /* per workload, then a sync */
#define CHAIN      16 /* crashes on one store */
#define SHARDS     4
#define SHARD_SEGS 8          /* segments per shard */
#define LOG_OFFSET (1u << 20) /* where the store's log starts (store.c, do_format) */

static struct {
	const char *dir, *mode, *engine;
	uint64_t seed, points;
	long long chain; /* -1: all */
	int compact;
	unsigned workers;
	uint32_t segment, max_vlen; /* --segment, and the largest value workloads write */
	uint64_t capacity;          /* of the device: the log's start and SHARD_SEGS per shard */
	unsigned big;               /* --big: percent of values drawn large (0: kv_model's 8) */
	int observe;                /* --segment given: count what the crashes met (observe_op) */
	/* What a reproduce line repeats: the store's variables in the environment, and the
	 * options besides --points, --seed and --chain. */
	char env[64], args[128];
	/* bytes: fault:psync:FILE?bytes=1 (byte-addressable, the store's mapped log) */
	const char *inner, *dopts, *fopts; /* engine and options of direct and fault opens */
} cfg = { .points = 5000, .chain = -1, .workers = 2, .segment = 64u << 10 };

static char file[1024];
static struct sn_rt *rt;
static struct km_counts tot;
static char where[1024]; /* what runs now: the watchdog prints it */

static void watchdog(int sig)
{
	static const char msg[] = "\nwatchdog: past the deadline (a hang) in:\n";

	(void)sig;
	if (write(1, msg, sizeof(msg) - 1) < 0 || write(1, where, strlen(where)) < 0)
		_exit(124);
	/* A core of the hang, where core dumps are on (ulimit -c): every thread's stack. */
	signal(SIGABRT, SIG_DFL);
	abort();
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static struct sn_kv_opts store_opts(void)
{
	struct sn_kv_opts o = { 0 };

	o.shards = SHARDS;
	o.segment_size = cfg.segment;
	o.capacity = cfg.capacity;
	o.cache_bytes = 1; /* two segments per shard: gets also read the device */
	o.rt = rt;
	return o;
}

static int fresh_store(void)
{
	struct sn_kv_opts o = store_opts();
	char uri[1200];

	unlink(file);
	snprintf(uri, sizeof(uri), "psync:%s?create=1&size=%llu&%s", file,
	         (unsigned long long)cfg.capacity, cfg.dopts);
	ASSERT_OK(sn_kv_format(uri, &o));
	return T_PASS;
}

/* Recoveries whose corrupt_records were checked (km_check_recovery): through the fault
 * layer, straight on ENGINE, and full scans (no checkpoint, as `snstore kv check`). */
static uint64_t checked_fault, checked_straight, checked_full;

/*
 * The store straight on ENGINE: read everything back and check it against the model. With
 * check_corrupt, recovery must also have reported no corrupt record (km_check_recovery):
 * the crash chains corrupt nothing on purpose. The error sweep passes 0: it injects EIO
 * and ENOSPC (a failed write is not held, a failed flush drops every held write), not the
 * power loss that docs/format.md's writer's rules reason about.
 */
/* Open the store straight on the inner engine (no fault layer), never creating it;
 * no_checkpoint scans the whole log. what names the open in a failure. */
static int open_straight(int no_checkpoint, const char *what, struct sn_kv **kv)
{
	struct sn_kv_opts o = store_opts();
	char uri[1200];
	int err;

	o.no_create = 1;
	o.no_checkpoint = no_checkpoint;
	snprintf(uri, sizeof(uri), "%s:%s?%s", cfg.inner, file, cfg.dopts);
	err = sn_kv_open(uri, &o, kv);
	if (err)
		T_FAILED("%s: sn_kv_open = %s (%s)\n%s", what, sn_errname(err), sn_errmsg(), where);
	return T_PASS;
}

static int verify(struct km_model *m, int rebase, int check_corrupt)
{
	struct sn_kv *kv;
	char why[1024];

	if (open_straight(0, "recovery failed", &kv))
		return T_FAIL;
	if (check_corrupt && km_check_recovery(kv, &tot, why, sizeof(why))) {
		sn_kv_close(kv);
		T_FAILED("opened straight on %s: %s\n  after:\n%s", cfg.inner, why, where);
	}
	checked_straight += check_corrupt;
	if (km_verify(kv, m, rebase, &tot, why, sizeof(why))) {
		sn_kv_close(kv);
		T_FAILED("%s\n%s", why, where);
	}
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

/*
 * After the chain's last verification (a clean close): open once more scanning the whole
 * log, as `snstore kv check` does, so segments an index checkpoint covers are read from
 * their first record too. No corrupt record there either.
 */
static int full_scan(void)
{
	struct sn_kv *kv;
	char why[1024];

	if (open_straight(1, "full scan", &kv))
		return T_FAIL;
	if (km_check_recovery(kv, &tot, why, sizeof(why))) {
		sn_kv_close(kv);
		T_FAILED("full scan (no_checkpoint) after the chain's last clean close: %s\n  "
		         "after:\n%s",
		         why, where);
	}
	checked_full++;
	ASSERT_OK(sn_kv_close(kv));
	return T_PASS;
}

static struct km_mix workload_mix(void)
{
	struct km_mix x = { 0 };

	x.nops = NOPS + 1;
	x.nkeys = NKEYS;
	x.put = 45;
	x.del = 12;
	x.batch = 15;
	x.sync = 8;
	x.get = 14;
	x.compact = cfg.compact ? 3 : 0;
	x.durable = 25;
	x.max_vlen = cfg.max_vlen;
	x.big = cfg.big;
	return x;
}

static int make_workload(struct km_workload *w, uint64_t id, uint64_t seed)
{
	struct km_mix x = workload_mix();

	if (km_generate(w, id, seed, &x))
		return -1;
	w->ops[w->n - 1] = (struct km_op){ .type = KM_SYNC };
	return 0;
}

static int fault_stats(struct sn_kv *kv, struct sn_fault_stats *fs)
{
	/* The store opened the device itself: reach it through the internals. */
	return sn_dev_ctl(kv->dev, SN_CTL_FAULT_STATS, fs);
}

/* ---- fault: crash chains ---- */

static struct {
	uint64_t crashes, in_open, in_close, clean, enospc, verifies, ios, chains;
} fs_tot;

static const char *const modes[] = { "random", "tear", "all", "keep" };

/*
 * --segment: what the crash chains met in the code of shard.c that only bigger segments
 * reach, seen from outside. After every op of a workload every segment of every shard
 * (kv_impl.h) is read on its worker (sn_rt_call: no race with the store), and the fault
 * layer's stats. A round sets its segment's written (the end of the records it writes)
 * and zeroed (how far its writes reach) as it starts, so two reads around an op show what
 * that op's rounds did to each segment, summed (a segment that took a new sequence number
 * became a head anew: from 0): zeros written ahead of the records, stopping inside the
 * segment (KV_ZERO_AHEAD; a 64 KiB segment is written to its end), and a stretch of more
 * than max_xfer past the block where written was (a round of two or more writes, unless
 * an op ran two rounds on one segment, each of at most max_xfer: WRITEBACK starts one
 * once a head has 1 MiB unwritten). Such a round during an op that waits for no
 * durability (a put or delete without SN_KV_DURABLE, a get) was started by the store:
 * WRITEBACK, a head sealed, or a compaction. A crash counts for the op after which the
 * fault layer first shows it (crashes in an open or a close are not counted), with what
 * that op's rounds did: wrote from past a segment's first KV_ZERO_AHEAD bytes, zeros
 * ahead, 2+ writes (the crash may have come before or after them). A round cut short for
 * want of queue room is not seen (the next one finishes it before the op returns), and
 * this test makes none: the worker's queue is 256 deep, its ops come one at a time.
 */
static struct {
	uint64_t zero_ahead, multi, multi_self; /* per op and segment, before a crash */
	uint64_t crashes, crash_past, crash_zero, crash_multi;
	uint32_t max_xfer;
} ob;

struct seg_snap {
	uint64_t seq; /* 0: free */
	uint32_t written, zeroed;
};

#define SNAP_SEGS (SHARDS * SHARD_SEGS)

struct observe {
	struct sn_kv *kv;
	const struct km_workload *w;
	int have, crashed;
	struct seg_snap prev[SNAP_SEGS];
};

struct snap_ctx {
	struct sn_kv *kv;
	unsigned worker;
	struct seg_snap *snap;
};

/* On a worker: the segments of its shards. */
static void snap_worker(void *arg)
{
	struct snap_ctx *c = arg;
	const struct kv_worker *w = &c->kv->workers[c->worker];

	for (unsigned i = 0; i < w->nown; i++) {
		const struct kv_shard *sh = &c->kv->shards[w->own[i]];

		for (uint32_t j = 0; j < sh->nsegs && j < SHARD_SEGS; j++) {
			const struct kv_seg *s = &sh->segs[j];

			c->snap[w->own[i] * SHARD_SEGS + j] =
			        (struct seg_snap){ s->seq, s->written, s->zeroed };
		}
	}
}

static void snap(struct sn_kv *kv, struct seg_snap *snap)
{
	memset(snap, 0, SNAP_SEGS * sizeof(*snap));
	for (unsigned i = 0; i < kv->nworkers; i++) {
		struct snap_ctx c = { kv, i, snap };

		sn_rt_call(kv->rt, i, snap_worker, &c);
	}
}

static void observe_init(struct observe *o, struct sn_kv *kv, const struct km_workload *w)
{
	uint32_t bs = kv->sb.block_size;

	memset(o, 0, sizeof(*o));
	o->kv = kv;
	o->w = w;
	/* as round_start() splits a round's writes */
	ob.max_xfer = 1u << 20;
	if (kv->info.max_transfer_bytes && kv->info.max_transfer_bytes < ob.max_xfer)
		ob.max_xfer = kv->info.max_transfer_bytes & ~(bs - 1);
}

/* km_event_fn: before op i (acked < 0), and after it. */
static void observe_op(void *arg, unsigned i, int acked)
{
	struct observe *o = arg;
	const struct km_op *op = &o->w->ops[i];
	uint32_t bs = o->kv->sb.block_size;
	unsigned zero = 0, multi = 0, past = 0;
	struct sn_fault_stats fs = { 0 };
	struct seg_snap now[SNAP_SEGS];
	int self = (op->type == KM_PUT || op->type == KM_DEL || op->type == KM_GET) &&
	           !(op->flags & SN_KV_DURABLE);

	if (acked < 0) {
		if (!o->have)
			snap(o->kv, o->prev);
		o->have = 1;
		return;
	}
	if (o->crashed) /* rounds after the crash write nothing */
		return;
	snap(o->kv, now);
	fault_stats(o->kv, &fs);
	for (unsigned j = 0; j < SNAP_SEGS; j++) {
		struct seg_snap a = o->prev[j];
		const struct seg_snap *b = &now[j];

		if (!b->seq)
			continue;
		if (a.seq != b->seq) /* a head anew */
			a = (struct seg_snap){ 0 };
		past += b->written > a.written && (a.written & ~(bs - 1)) >= KV_ZERO_AHEAD;
		/* zeros past the records, by the last round: to went past end (round_start) */
		zero += b->zeroed > a.zeroed && b->zeroed < cfg.segment &&
		        b->zeroed > ((b->written + bs - 1) & ~(bs - 1));
		multi += b->written > a.written &&
		         b->written - (a.written & ~(bs - 1)) > ob.max_xfer;
	}
	ob.zero_ahead += zero;
	ob.multi += multi;
	ob.multi_self += self ? multi : 0;
	if (fs.crashes) {
		o->crashed = 1;
		ob.crashes++;
		ob.crash_past += past > 0;
		ob.crash_zero += zero > 0;
		ob.crash_multi += multi > 0;
	}
	memcpy(o->prev, now, sizeof(now));
}

static int run_chain(uint64_t chain, uint64_t *budget)
{
	uint64_t s = cfg.seed ^ (chain + 1) * 0xd1342543de82ef95ull;
	struct sn_kv_opts o = store_opts();
	struct km_model m;
	uint64_t n = 0; /* I/Os of a run: the first one counts them (no crash) */
	char before[1024] = "  a fresh store\n"; /* what the next open recovers from */
	int r = T_PASS;

	if (fresh_store() || km_model_init(&m, NKEYS))
		return T_FAIL;
	fs_tot.chains++;
	for (unsigned it = 0; it <= CHAIN && *budget && r == T_PASS; it++) {
		uint64_t at = n ? 1 + rnd(&s) % (n + n / 8 + 1) : 0;
		uint64_t fseed = rnd(&s), wseed = rnd(&s);
		const char *mode = modes[rnd(&s) % 8 % 4]; /* random and tear twice as often */
		struct sn_fault_stats fs = { 0 };
		struct km_workload w = { 0 };
		struct km_run_result rr = { 0 };
		struct observe obs;
		struct sn_kv *kv;
		char uri[1200], why[1024];
		int err, crashed = 0, verified, last = it == CHAIN || *budget == 1;

		snprintf(where, sizeof(where),
		         "  seed %llu, chain %llu, crash %u: fault:%s (crash_at=%llu crash=%s "
		         "seed=%llu)\n  reproduce: %stest_kv_crash %s fault %s --seed %llu --chain "
		         "%llu%s\n",
		         (unsigned long long)cfg.seed, (unsigned long long)chain, it, cfg.engine,
		         (unsigned long long)at, mode, (unsigned long long)fseed, cfg.env, cfg.dir,
		         cfg.engine, (unsigned long long)cfg.seed, (unsigned long long)chain,
		         cfg.args);
		alarm(60);
		snprintf(uri, sizeof(uri), "fault:%s:%s?%s&crash=%s&crash_at=%llu&seed=%llu",
		         cfg.inner, file, cfg.fopts, mode, (unsigned long long)at,
		         (unsigned long long)fseed);
		err = sn_kv_open(uri, &o, &kv);
		if (err == -EIO && at) { /* the crash hit recovery */
			crashed = 1;
			fs_tot.in_open++;
		} else if (err) {
			printf("    open through the fault layer: %s (%s)\n%s", sn_errname(err),
			       sn_errmsg(), where);
			r = T_FAIL;
			break;
		} else {
			struct sn_kv_stats st;

			/* bytes: the store must take the mapped path, or this tests nothing new */
			if (!strcmp(cfg.engine, "bytes") && (sn_kv_stat(kv, &st) || !st.mapped)) {
				printf("    the store on fault bytes=1 does not use the mapping\n");
				sn_kv_close(kv);
				r = T_FAIL;
				break;
			}
			/* This recovery met what the last run (or verification) left: a crash
			 * or a clean close, never corruption. */
			if (km_check_recovery(kv, &tot, why, sizeof(why))) {
				printf("    opened through the fault layer: %s\n  after:\n%s  "
				       "then (this open's faults):\n%s",
				       why, before, where);
				sn_kv_close(kv);
				r = T_FAIL;
				break;
			}
			checked_fault++;
			if (make_workload(&w, chain * 64 + it + 1, wseed)) {
				r = T_FAIL;
				break;
			}
			observe_init(&obs, kv, &w);
			if (km_run(kv, &m, &w, 0, 1, cfg.observe ? observe_op : NULL, &obs, &rr,
			           &tot, why, sizeof(why))) {
				printf("    %s\n%s", why, where);
				sn_kv_close(kv);
				r = T_FAIL;
				break;
			}
			fault_stats(kv, &fs);
			err = sn_kv_close(kv);
			crashed = fs.crashes || err;
			/* The stats are from before the close: a close that fails with none shown
			 * must have met its crash inside, so one must still be ahead of the run. */
			if (err && !fs.crashes) {
				fs_tot.in_close++;
				if (!at || at <= fs.ios) {
					printf("    close = %s (%s) with no crash (crash_at=%llu, "
					       "%llu I/Os before the close)\n%s",
					       sn_errname(err), sn_errmsg(), (unsigned long long)at,
					       (unsigned long long)fs.ios, where);
					r = T_FAIL;
				}
			}
			if (!crashed && rr.failed && rr.first_err != -ENOSPC) {
				printf("    op %u failed with %s, with no crash\n%s", rr.first_op,
				       sn_errname(rr.first_err), where);
				r = T_FAIL;
			}
			if (!crashed) {
				fs_tot.clean++;
				fs_tot.enospc += rr.failed != 0;
				if (!rr.failed)
					km_all_durable(&m);
				if (!rr.failed) /* the run's I/O count: where crashes are drawn from */
					n = n ? (3 * n + fs.ios) / 4 : fs.ios;
			}
			km_workload_free(&w);
		}
		fs_tot.ios = n;
		if (crashed) {
			fs_tot.crashes++;
			(*budget)--;
			km_crashed(&m);
		}
		/* Verify straight on the engine now and then (and at the end of the chain);
		 * otherwise the next open recovers through the fault layer. */
		verified = r == T_PASS && (last || rnd(&s) % 2 == 0);
		if (verified) {
			fs_tot.verifies++;
			r = verify(&m, 1, 1);
		}
		if (r == T_PASS && last)
			r = full_scan();
		snprintf(before, sizeof(before), "%s  (%s%s)\n", where,
		         crashed ? "it crashed" : "no crash: it closed cleanly",
		         verified ? "; then verified straight on the engine, closed cleanly" : "");
	}
	km_model_free(&m);
	return r;
}

/* A line every 60 s on long runs: points done, rate, time left. */
static void progress(const struct timespec *t0, uint64_t done)
{
	static double next = 60;
	struct timespec t;
	double el;

	clock_gettime(CLOCK_MONOTONIC, &t);
	el = (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
	if (el < next || !done)
		return;
	next = el + 60;
	printf("    ... %llu/%llu crash points, %.0f/s, %.0f s left; lost %llu, corrupt %llu\n",
	       (unsigned long long)done, (unsigned long long)cfg.points, (double)done / el,
	       (double)(cfg.points - done) * el / (double)done, (unsigned long long)tot.lost,
	       (unsigned long long)tot.corrupt);
	fflush(stdout);
}

static int test_fault_chains(void)
{
	uint64_t budget = cfg.points, chain = cfg.chain >= 0 ? (uint64_t)cfg.chain : 0;
	struct timespec t0, t1;
	int r = T_PASS;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("    %llu crash points on fault:%s, %d keys, %d ops per workload, chains of %d "
	       "crashes on a %llu-byte store of %d shards, %u-byte segments, values up to %u "
	       "bytes; compaction calls %s\n",
	       (unsigned long long)cfg.points, cfg.engine, NKEYS, NOPS, CHAIN,
	       (unsigned long long)cfg.capacity, SHARDS, cfg.segment, cfg.max_vlen,
	       cfg.compact ? "on" : "off");
	while (budget && r == T_PASS) {
		r = run_chain(chain, &budget);
		if (cfg.chain >= 0)
			break;
		chain++;
		progress(&t0, cfg.points - budget);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("    crash points tried: %llu (%llu during recovery: %.0f %%; %llu during a close), "
	       "runs without a crash: %llu (%llu stopped by ENOSPC) in %llu chains, "
	       "verifications: %llu, ~%llu I/Os per run, %.1f s\n",
	       (unsigned long long)fs_tot.crashes, (unsigned long long)fs_tot.in_open,
	       fs_tot.crashes ? 100.0 * (double)fs_tot.in_open / (double)fs_tot.crashes : 0.0,
	       (unsigned long long)fs_tot.in_close, (unsigned long long)fs_tot.clean,
	       (unsigned long long)fs_tot.enospc, (unsigned long long)fs_tot.chains,
	       (unsigned long long)fs_tot.verifies, (unsigned long long)fs_tot.ios,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	printf("    acknowledged-durable writes verified: %llu (keys checked %llu, gets checked "
	       "%llu, batches checked %llu)\n",
	       (unsigned long long)tot.durable_verified, (unsigned long long)tot.keys,
	       (unsigned long long)tot.gets, (unsigned long long)tot.batches);
	printf("    writes lost: %llu, corrupt values returned: %llu, torn batches: %llu\n",
	       (unsigned long long)tot.lost, (unsigned long long)tot.corrupt,
	       (unsigned long long)tot.torn_batches);
	printf("    recoveries checked: %llu (%llu through the fault layer, %llu straight on %s, "
	       "%llu full scans), corrupt records reported: %llu; torn bytes cut: %llu in %llu "
	       "recoveries\n",
	       (unsigned long long)tot.recoveries, (unsigned long long)checked_fault,
	       (unsigned long long)checked_straight, cfg.inner, (unsigned long long)checked_full,
	       (unsigned long long)tot.corrupt_records, (unsigned long long)tot.torn_bytes,
	       (unsigned long long)tot.torn_recoveries);
	if (cfg.observe)
		printf("    %u-byte segments, rounds seen between a workload's ops: %llu wrote "
		       "zeros ahead that stop inside the segment, %llu wrote more than %u bytes "
		       "(2+ writes; %llu of them in ops that wait for no durability: WRITEBACK); "
		       "crash points in an op: %llu, in one whose rounds wrote past a segment's "
		       "first %u bytes %llu, that wrote zeros ahead %llu, 2+ writes %llu\n",
		       cfg.segment, (unsigned long long)ob.zero_ahead, (unsigned long long)ob.multi,
		       ob.max_xfer, (unsigned long long)ob.multi_self,
		       (unsigned long long)ob.crashes, KV_ZERO_AHEAD,
		       (unsigned long long)ob.crash_past, (unsigned long long)ob.crash_zero,
		       (unsigned long long)ob.crash_multi);
	ASSERT_EQ(tot.lost, 0);
	ASSERT_EQ(tot.corrupt, 0);
	ASSERT_EQ(tot.torn_batches, 0);
	ASSERT_EQ(tot.corrupt_records, 0);
	if (r != T_PASS)
		return r;
	if (cfg.chain < 0)
		ASSERT_EQ(fs_tot.crashes, cfg.points);
	/* What was verified must be more than nothing: each chain starts with a run that has no
	 * crash (it counts the I/Os crashes are drawn from), some values were durable, and a
	 * crash that fails the open (-EIO, counted as one during recovery without more proof)
	 * is not most of them: the crash index is drawn over a whole run, whose workload and
	 * close make about half its I/Os or more. */
	ASSERT_GE(fs_tot.clean, fs_tot.chains);
	ASSERT_TRUE(tot.durable_verified > 0);
	ASSERT_TRUE(fs_tot.verifies > 0);
	ASSERT_LE(fs_tot.in_open * 100, fs_tot.crashes * 80);
	return r;
}

/* ---- errors: EIO and ENOSPC at every I/O index ---- */

static int clean_error(int err)
{
	return err == -EIO || err == -ENOSPC || err == SN_ESTOPPED;
}

/* One run: a fresh store, the workload through fault:ENGINE with `opt`, then verify. */
static int sweep_one(const struct km_workload *w, const char *opt, uint64_t at,
                     struct sn_fault_stats *fs, unsigned *errors)
{
	struct sn_kv_opts o = store_opts();
	struct km_run_result rr;
	struct km_model m;
	struct sn_kv *kv;
	char uri[1200], why[1024];
	int err, r = T_PASS;

	memset(fs, 0, sizeof(*fs));
	snprintf(where, sizeof(where),
	         "  %s=%llu on fault:%s\n  reproduce: %stest_kv_crash %s errors %s%s\n", opt,
	         (unsigned long long)at, cfg.engine, cfg.env, cfg.dir, cfg.engine, cfg.args);
	alarm(60);
	if (fresh_store() || km_model_init(&m, NKEYS))
		return T_FAIL;
	snprintf(uri, sizeof(uri), "fault:%s:%s?%s&%s=%llu", cfg.inner, file, cfg.fopts, opt,
	         (unsigned long long)at);
	err = sn_kv_open(uri, &o, &kv);
	if (err) {
		if (!clean_error(err))
			T_FAILED("open = %s (%s)\n%s", sn_errname(err), sn_errmsg(), where);
		fs->eio_injected = err == -EIO;
		fs->enospc_injected = err == -ENOSPC;
		*errors += 1;
	} else {
		if (km_run(kv, &m, w, 0, 0, NULL, NULL, &rr, &tot, why, sizeof(why))) {
			sn_kv_close(kv);
			T_FAILED("%s\n%s", why, where);
		}
		if (rr.failed && !clean_error(rr.first_err))
			T_FAILED("op %u failed with %s (%s)\n%s", rr.first_op,
			         sn_errname(rr.first_err), sn_errmsg(), where);
		*errors += rr.failed;
		fault_stats(kv, fs);
		if (sn_kv_close(kv))
			km_crashed(&m); /* held writes die with the fault layer */
		else
			km_all_durable(&m);
	}
	r = verify(&m, 0, 0);
	km_model_free(&m);
	return r;
}

/* The sweep's workload: 40 ops (compactions with --compact), then a sync. */
static int sweep_workload(struct km_workload *w)
{
	struct km_mix x = workload_mix();

	x.nops = 40;
	x.compact = cfg.compact ? 3 : 0;
	if (km_generate(w, 1, 42, &x))
		return -1;
	w->ops[w->n - 1] = (struct km_op){ .type = KM_SYNC };
	return 0;
}

/*
 * Sweep opt=N over every I/O index of the workload. *points: errors injected; *indexes: the
 * I/O indexes the workload makes without a fault (the sweep tries two more).
 */
static int sweep(const char *opt, uint64_t *points, uint64_t *indexes)
{
	struct sn_fault_stats fs;
	struct km_workload w;
	uint64_t n;
	unsigned errors = 0;

	if (sweep_workload(&w))
		return T_FAIL;
	/* Count the workload's I/Os (open and close included) with an option that never
	 * fires. */
	if (sweep_one(&w, opt, 0, &fs, &errors)) {
		km_workload_free(&w);
		return T_FAIL;
	}
	n = fs.ios;
	*indexes = n;
	ASSERT_EQ(errors, 0);
	for (uint64_t at = 1; at <= n + 2; at++) {
		if (sweep_one(&w, opt, at, &fs, &errors)) {
			km_workload_free(&w);
			return T_FAIL;
		}
		*points += fs.eio_injected + fs.enospc_injected;
	}
	printf("    %s: %llu I/O indexes, %llu errors injected, %u calls failed cleanly\n", opt,
	       (unsigned long long)n + 2, (unsigned long long)*points, errors);
	km_workload_free(&w);
	return T_PASS;
}

/*
 * Whether the workload makes any write request that ENOSPC could fail: one run with every
 * write failing (enospc_prob=1). A mapped log (bytes) appends with stores and persists
 * (flushes), so there it makes none, and an ENOSPC sweep would inject nothing.
 */
static int makes_writes(int *yes)
{
	struct sn_fault_stats fs;
	struct km_workload w;
	unsigned errors = 0;
	int r;

	if (sweep_workload(&w))
		return T_FAIL;
	r = sweep_one(&w, "enospc_prob", 1, &fs, &errors);
	km_workload_free(&w);
	*yes = fs.enospc_injected > 0 || errors > 0;
	return r;
}

static int test_error_sweep(void)
{
	uint64_t eio = 0, enospc = 0, eio_n = 0, enospc_n = 0;
	struct timespec t0, t1;
	int writes = 1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sweep("eio_at", &eio, &eio_n))
		return T_FAIL;
	if (!strcmp(cfg.engine, "bytes") && makes_writes(&writes))
		return T_FAIL;
	if (!writes)
		printf("    enospc_at: skipped: the mapped log makes no write request (appends are "
		       "stores, syncs persist cache lines), checked with enospc_prob=1\n");
	else if (sweep("enospc_at", &enospc, &enospc_n))
		return T_FAIL;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("    EIO points: %llu, ENOSPC points: %llu; durable writes verified %llu, lost "
	       "%llu, "
	       "corrupt %llu, torn batches %llu; %.1f s\n",
	       (unsigned long long)eio, (unsigned long long)enospc,
	       (unsigned long long)tot.durable_verified, (unsigned long long)tot.lost,
	       (unsigned long long)tot.corrupt, (unsigned long long)tot.torn_batches,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	/* Every request of the workload can fail with EIO, and with one worker the Nth request
	 * is the same one each run: nearly every index must inject (a few may move when two
	 * workers race). Only writes take ENOSPC. */
	ASSERT_GE(eio * 10, eio_n * 9);
	ASSERT_TRUE(!writes || enospc > 5);
	ASSERT_TRUE(tot.durable_verified > 0);
	ASSERT_EQ(tot.lost + tot.corrupt + tot.torn_batches, 0);
	return T_PASS;
}

static int usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s DIR fault|errors psync|uring|bytes [--points N] [--seed S] [--chain C] "
	        "[--compact] [--workers N] [--buffered] [--segment SIZE] [--big PCT]\n",
	        prog);
	return 1;
}

int main(int argc, char **argv)
{
	struct sn_rt_opts ro = { 0 };
	uint64_t seg = 64u << 10, most;
	const char *env;
	int r, buffered = 0, n = 0;

	if (argc < 4)
		return usage(argv[0]);
	cfg.dir = argv[1];
	cfg.mode = argv[2];
	cfg.engine = argv[3];
	if ((env = getenv("SN_CRASH_POINTS")) && *env)
		cfg.points = strtoull(env, NULL, 0);
	if ((env = getenv("SN_CRASH_SEED")) && *env)
		cfg.seed = strtoull(env, NULL, 0);
	else
		cfg.seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--points") && i + 1 < argc)
			cfg.points = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			cfg.seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--chain") && i + 1 < argc)
			cfg.chain = strtoll(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--compact"))
			cfg.compact = 1;
		else if (!strcmp(argv[i], "--buffered"))
			buffered = 1;
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			cfg.workers = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--big") && i + 1 < argc)
			cfg.big = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--segment") && i + 1 < argc) {
			seg = strtoull(argv[++i], NULL, 0);
			cfg.observe = 1;
		} else
			return usage(argv[0]);
	}
	if (seg < (64u << 10) || seg > (16u << 20) || (seg & (seg - 1)) || cfg.big > 100)
		return usage(argv[0]);
	/* The store of 64 KiB segments, scaled: SHARD_SEGS per shard after the log's start,
	 * values up to 40000/65536 of a segment but no more than the store takes (store.c:
	 * a segment less its header, a batch record's with the longest key, and 8). */
	cfg.segment = (uint32_t)seg;
	cfg.capacity = (LOG_OFFSET + (uint64_t)SHARDS * SHARD_SEGS * seg + seg - 1) & ~(seg - 1);
	cfg.max_vlen = (uint32_t)(40000 * seg / (64u << 10));
	most = seg - sizeof(struct sn_kv_seghdr) - sn_kv_rec_len(SN_KV_REC_BPUT, SN_KV_MAX_KEY, 0) -
	       8;
	if (cfg.max_vlen > most)
		cfg.max_vlen = (uint32_t)most;
	if (cfg.max_vlen > SN_KV_MAX_VALUE)
		cfg.max_vlen = SN_KV_MAX_VALUE;
	for (unsigned i = 0; i < 2; i++) {
		const char *var = i ? "SN_KV_NOZERO" : "SN_KV_PIPE";

		if ((env = getenv(var)) && *env && n < (int)sizeof(cfg.env))
			n += snprintf(cfg.env + n, sizeof(cfg.env) - (size_t)n, "%s=%s ", var, env);
	}
	snprintf(cfg.args, sizeof(cfg.args), "%s%s --workers %u --segment %u --big %u",
	         cfg.compact ? " --compact" : "", buffered ? " --buffered" : "", cfg.workers,
	         cfg.segment, cfg.big);
	if ((strcmp(cfg.mode, "fault") && strcmp(cfg.mode, "errors")) ||
	    (strcmp(cfg.engine, "psync") && strcmp(cfg.engine, "uring") &&
	     strcmp(cfg.engine, "bytes")))
		return usage(argv[0]);
	cfg.inner = strcmp(cfg.engine, "bytes") ? cfg.engine : "psync";
	cfg.dopts = strcmp(cfg.engine, "bytes") && !buffered ? "direct=1" : "direct=0";
	cfg.fopts = strcmp(cfg.engine, "bytes") ? cfg.dopts : "bytes=1";
	snprintf(file, sizeof(file), "%s/kv-crash-%s-%s-%d.dat", cfg.dir, cfg.mode, cfg.engine,
	         (int)getpid());
	signal(SIGALRM, watchdog);
	t_begin("test_kv_crash: power loss and failing I/O under the KV store (fault: engine)");
	printf("seed %llu (set with --seed or SN_CRASH_SEED)\n", (unsigned long long)cfg.seed);
	ro.workers = cfg.workers ? cfg.workers : 1;
	ro.flags = SN_RT_NOPIN;
	if (sn_rt_create(&ro, &rt)) {
		printf("cannot start a runtime: %s\n", sn_errmsg());
		return 1;
	}
	{
		struct sn_dev *dev;
		char uri[1200];
		int err;

		snprintf(uri, sizeof(uri), "%s:%s?create=1&size=%llu&%s", cfg.inner, file,
		         (unsigned long long)cfg.capacity, cfg.dopts);
		err = sn_dev_open(uri, &dev);
		if (err == SN_ENOTAVAIL) {
			printf("skipped: %s\n", sn_errmsg());
			sn_rt_destroy(rt);
			return T_SKIP;
		}
		if (!err)
			sn_dev_close(dev);
	}
	if (!strcmp(cfg.mode, "fault"))
		T_RUN("crash at random I/O indexes; recover; durable writes survive, nothing older "
		      "or never written comes back, batches are atomic",
		      test_fault_chains());
	else
		T_RUN("EIO, then ENOSPC, at every I/O index: clean errors, a consistent store",
		      test_error_sweep());
	sn_rt_destroy(rt);
	r = t_end();
	if (r == 1)
		printf("seed %llu; the store is kept for a post-mortem: %s\n",
		       (unsigned long long)cfg.seed, file);
	else
		unlink(file);
	return r;
}
