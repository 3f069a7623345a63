/* SPDX-License-Identifier: MIT */
/*
 * kvgen.h — what the two benchmark drivers, `snstore kvbench` (tools/kvbench_work.c) and
 * bench/kvref.c, must do alike so that their numbers compare: the clock that times each
 * operation, the random streams that choose keys, the keys' text and the values' bytes.
 * One copy, so the same --seed gives both the same keys and values.
 */
#ifndef SN_BENCH_KVGEN_H
#define SN_BENCH_KVGEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the clock ----
 *
 * Each operation reads the clock once or twice. clock_gettime's vDSO fences its TSC read
 * (lfence), which waits for every load before it to finish, the cache misses of calls in
 * flight included: in kvbench's 2-worker runs that cost 10-15% of the throughput. Where
 * the kernel itself keeps time with the TSC (so the TSC is invariant and in step on every
 * CPU), kg_now_ns reads it without the fence and scales it by the rate kg_clock_setup
 * measured against CLOCK_MONOTONIC; elsewhere it is clock_gettime. */

static inline uint64_t kg_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct {
	int on;
	uint64_t tsc0, ns0, mult; /* ns = ns0 + ((tsc - tsc0) * mult >> 32) */
} kg_tsc;

/* Call once, before any thread reads the clock. Spins 20 ms where it uses the TSC. */
static inline void kg_clock_setup(void)
{
#if defined(__x86_64__)
	char src[32] = "";
	FILE *f;
	uint64_t t0, n0, t1, n1;

	if (kg_tsc.on ||
	    !(f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r")))
		return;
	if (!fgets(src, sizeof(src), f) || strcmp(src, "tsc\n")) {
		fclose(f);
		return;
	}
	fclose(f);
	n0 = kg_clock_ns();
	t0 = __builtin_ia32_rdtsc();
	do
		n1 = kg_clock_ns();
	while (n1 - n0 < 20000000); /* the rate to within a few parts per million */
	t1 = __builtin_ia32_rdtsc();
	if (t1 <= t0)
		return;
	kg_tsc.mult = (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (t1 - t0));
	kg_tsc.tsc0 = t1;
	kg_tsc.ns0 = n1;
	kg_tsc.on = 1;
#endif
}

static inline uint64_t kg_now_ns(void)
{
#if defined(__x86_64__)
	if (kg_tsc.on) {
		unsigned __int128 d = __builtin_ia32_rdtsc() - kg_tsc.tsc0;

		return kg_tsc.ns0 + (uint64_t)((d * kg_tsc.mult) >> 32);
	}
#endif
	return kg_clock_ns();
}

/* ---- random streams: splitmix64 ---- */

static inline uint64_t kg_rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static inline uint64_t kg_rng_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)kg_rng_next(s) * n) >> 64);
}

/* splitmix64 streams are one sequence read from different places: states a few steps
 * apart replay each other's keys. A hashed start puts clients 2^64-far apart at random. */
static inline uint64_t kg_client_seed(uint64_t seed, unsigned client)
{
	uint64_t s = seed ^ (0xd1b54a32d192ed03ull * (client + 1ull));

	return kg_rng_next(&s) ^ kg_rng_next(&s);
}

/* FNV-1a of a string: a benchmark's name turns --seed into that benchmark's seed. */
static inline uint64_t kg_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
	return h;
}

/* ---- keys and values ---- */

/* Key number k as zero-padded decimal of width ks (LevelDB db_bench's "%016llu"), without
 * snprintf's cost: the digits, then the zeros in one go. */
static inline void kg_fmt_key(char *dst, unsigned ks, uint64_t k)
{
	unsigned i = ks;

	while (i > 0 && k) {
		dst[--i] = (char)('0' + k % 10);
		k /= 10;
	}
	memset(dst, '0', i);
}

#define KG_VALUE_POOL  (1u << 20) /* db_bench's RandomGenerator: 1 MiB ... */
#define KG_VALUE_PIECE 100u       /* ... of 100-byte pieces */

/* db_bench's RandomGenerator: pieces of 50 random printable bytes written twice
 * (compression ratio 0.5), from a fixed seed; values are consecutive slices. The pool
 * runs max_value past KG_VALUE_POOL, so any slice that starts in it fits. */
static inline char *kg_make_values(size_t max_value)
{
	size_t len = KG_VALUE_POOL + max_value;
	char *pool = malloc(len);
	uint64_t s = 301;

	if (!pool)
		return NULL;
	for (size_t p = 0; p < len; p += KG_VALUE_PIECE)
		for (size_t j = 0; j < KG_VALUE_PIECE / 2 && p + j < len; j++) {
			pool[p + j] = (char)(' ' + kg_rng_below(&s, 95));
			if (p + j + KG_VALUE_PIECE / 2 < len)
				pool[p + j + KG_VALUE_PIECE / 2] = pool[p + j];
		}
	return pool;
}

#endif
