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
 *                 [--compact] [--workers N] [--buffered]
 *
 * --points: crash points to try (fault; default 5000); --seed: the seed of everything
 * (default: from the clock, printed); --chain C: run only chain C (to reproduce a failure);
 * --compact: workloads also call sn_kv_compact() (forced compaction of every shard, so
 * crashes land in copies, header clears and dropped commits and tombstones); --workers N: runtime workers, each with its own
 * queue on the device (default 2; with 1 the error sweep hits the same I/O at the same
 * index every run); --buffered: no O_DIRECT, for DIR on tmpfs (/dev/shm: a soak then
 * spends its time in the store, not in the disk's flushes). SN_CRASH_POINTS and SN_CRASH_SEED in the
 * environment set --points and --seed.
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

#define NKEYS    24
#define NOPS     40 /* per workload, then a sync */
#define CHAIN    16 /* crashes on one store */
#define CAPACITY (3u << 20)

static struct {
	const char *dir, *mode, *engine;
	uint64_t seed, points;
	long long chain; /* -1: all */
	int compact;
	unsigned workers;
	/* bytes: fault:psync:FILE?bytes=1 (byte-addressable, the store's mapped log) */
	const char *inner, *dopts, *fopts; /* engine and options of direct and fault opens */
} cfg = { .points = 5000, .chain = -1, .workers = 2 };

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

	o.shards = 4;
	o.segment_size = 64u << 10;
	o.capacity = CAPACITY;
	o.cache_bytes = 1; /* two segments per shard: gets also read the device */
	o.rt = rt;
	return o;
}

static int fresh_store(void)
{
	struct sn_kv_opts o = store_opts();
	char uri[1200];

	unlink(file);
	snprintf(uri, sizeof(uri), "psync:%s?create=1&size=%u&%s", file, CAPACITY, cfg.dopts);
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
	x.max_vlen = 40000;
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
		struct sn_kv *kv;
		char uri[1200], why[1024];
		int err, crashed = 0, verified, last = it == CHAIN || *budget == 1;

		snprintf(where, sizeof(where),
		         "  seed %llu, chain %llu, crash %u: fault:%s (crash_at=%llu crash=%s "
		         "seed=%llu)\n  reproduce: test_kv_crash %s fault %s --seed %llu --chain "
		         "%llu\n",
		         (unsigned long long)cfg.seed, (unsigned long long)chain, it, cfg.engine,
		         (unsigned long long)at, mode, (unsigned long long)fseed, cfg.dir,
		         cfg.engine, (unsigned long long)cfg.seed, (unsigned long long)chain);
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
			if (km_run(kv, &m, &w, 0, 1, NULL, NULL, &rr, &tot, why, sizeof(why))) {
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
	       "crashes on a %u-byte store of 4 shards; compaction calls %s\n",
	       (unsigned long long)cfg.points, cfg.engine, NKEYS, NOPS, CHAIN, CAPACITY,
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
	         "  %s=%llu on fault:%s\n  reproduce: test_kv_crash %s errors %s\n", opt,
	         (unsigned long long)at, cfg.engine, cfg.dir, cfg.engine);
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
	        "[--compact] [--workers N] [--buffered]\n",
	        prog);
	return 1;
}

int main(int argc, char **argv)
{
	struct sn_rt_opts ro = { 0 };
	const char *env;
	int r, buffered = 0;

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
		else
			return usage(argv[0]);
	}
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

		snprintf(uri, sizeof(uri), "%s:%s?create=1&size=%u&%s", cfg.inner, file, CAPACITY,
		         cfg.dopts);
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
