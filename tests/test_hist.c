/* SPDX-License-Identifier: MIT */
/*
 * test_hist.c — the log-linear latency histogram (src/util/hist.c). Its promise is that a
 * percentile is within 1/64 of the exact one; this checks that promise against a sort of
 * random samples spread over many orders of magnitude, plus merge, min/max and the empty
 * histogram.
 */
#include <stdlib.h>

#include "test.h"
#include "util/hist.h"

#define NSAMPLES 200000

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* splitmix64: fixed seed, so a failure reproduces */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Log-uniform over [0, 2^bits): latencies from nanoseconds to hours. */
static uint64_t sample(unsigned bits)
{
	unsigned msb = (unsigned)(rng() % bits);

	return rng() & ((2ull << msb) - 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The exact value at percentile ppm/10^4 (ppm in millionths): the smallest value with
 * at least that share of samples at or below it. */
static uint64_t exact_pct(const uint64_t *sorted, uint64_t n, uint64_t ppm)
{
	uint64_t rank = (ppm * n + 999999) / 1000000;

	return sorted[rank ? rank - 1 : 0];
}

static int check_pcts(const struct sn_hist *h, const uint64_t *sorted, uint64_t n)
{
	static const uint64_t ppms[] = { 1,      1000,   10000,  100000, 250000, 500000,
		                         750000, 900000, 990000, 999000, 999900, 999999 };

	for (size_t i = 0; i < sizeof(ppms) / sizeof(ppms[0]); i++) {
		uint64_t want = exact_pct(sorted, n, ppms[i]);
		uint64_t got = sn_hist_pct(h, (double)ppms[i] / 10000.0);
		uint64_t err = got > want ? got - want : want - got;

		if (err * 64 > want)
			T_FAILED("p%g: histogram says %llu, exact is %llu (off by more than 1/64)",
			         (double)ppms[i] / 10000.0, (unsigned long long)got,
			         (unsigned long long)want);
	}
	ASSERT_TRUE(sn_hist_pct(h, 0) == sorted[0]);
	ASSERT_TRUE(sn_hist_pct(h, 100) == sorted[n - 1]);
	return T_PASS;
}

static int percentiles(unsigned bits)
{
	uint64_t *v = malloc(NSAMPLES * sizeof(*v));
	struct sn_hist *h = malloc(sizeof(*h));
	double sum = 0;
	int r;

	if (!v || !h) {
		free(v);
		free(h);
		SKIP("out of memory");
	}
	sn_hist_init(h);
	for (unsigned i = 0; i < NSAMPLES; i++) {
		v[i] = sample(bits);
		sum += (double)v[i];
		sn_hist_add(h, v[i]);
	}
	qsort(v, NSAMPLES, sizeof(*v), cmp_u64);
	r = check_pcts(h, v, NSAMPLES);
	if (r == T_PASS && (h->count != NSAMPLES || h->min != v[0] || h->max != v[NSAMPLES - 1]))
		r = T_FAIL, printf("    count/min/max disagree with the samples\n");
	if (r == T_PASS && (sn_hist_mean(h) - sum / NSAMPLES) > 1e-6 * (sum / NSAMPLES))
		r = T_FAIL, printf("    mean %f, expected %f\n", sn_hist_mean(h), sum / NSAMPLES);
	free(v);
	free(h);
	return r;
}

static int small_values_exact(void)
{
	struct sn_hist h;

	/* Below 64 every value has its own bucket: percentiles are exact. */
	sn_hist_init(&h);
	for (uint64_t i = 1; i <= 50; i++)
		sn_hist_add(&h, i);
	ASSERT_EQ(sn_hist_pct(&h, 50), 25);
	ASSERT_EQ(sn_hist_pct(&h, 2), 1);
	ASSERT_EQ(sn_hist_pct(&h, 99), 50);
	ASSERT_EQ(sn_hist_pct(&h, 100), 50);
	ASSERT_EQ(sn_hist_pct(&h, 0), 1);
	return T_PASS;
}

static int buckets(void)
{
	unsigned prev = 0;

	/* The index never leaves the table and never goes down as values grow. */
	for (unsigned k = 0; k < 64; k++) {
		uint64_t vs[] = { (1ull << k) - 1, 1ull << k, (1ull << k) + ((1ull << k) >> 1) };

		for (unsigned j = 0; j < 3; j++) {
			unsigned i = sn_hist_index(vs[j]);

			ASSERT_LT(i, SN_HIST_BUCKETS);
			ASSERT_GE(i, prev);
			prev = i;
		}
	}
	ASSERT_EQ(sn_hist_index(UINT64_MAX), SN_HIST_BUCKETS - 1);
	ASSERT_EQ(sn_hist_index((1ull << SN_HIST_MAX_BITS) - 1), SN_HIST_BUCKETS - 1);
	return T_PASS;
}

static int min_max_and_clamp(void)
{
	struct sn_hist h;

	sn_hist_init(&h);
	sn_hist_add(&h, 1000);
	/* One sample: every percentile is that sample, not the bucket's middle. */
	for (double p = 0; p <= 100; p += 12.5)
		ASSERT_EQ(sn_hist_pct(&h, p), 1000);
	ASSERT_EQ(h.min, 1000);
	ASSERT_EQ(h.max, 1000);

	/* Values past 2^44 land in the last bucket but min/max stay exact. */
	sn_hist_add(&h, 1ull << 50);
	ASSERT_EQ(h.max, 1ull << 50);
	ASSERT_EQ(sn_hist_pct(&h, 100), 1ull << 50);
	/* p50 is the middle of 1000's bucket, within 1/64 of it. */
	ASSERT_GE(sn_hist_pct(&h, 50), 1000);
	ASSERT_LE(sn_hist_pct(&h, 50), 1000 + 1000 / 64);
	ASSERT_GE(sn_hist_pct(&h, 99), (1ull << SN_HIST_MAX_BITS) - (1ull << 38));

	/* add_n(v, n) is n adds. */
	{
		struct sn_hist a, b;

		sn_hist_init(&a);
		sn_hist_init(&b);
		sn_hist_add_n(&a, 777, 5);
		for (int i = 0; i < 5; i++)
			sn_hist_add(&b, 777);
		ASSERT_EQ(memcmp(&a, &b, sizeof(a)), 0);
	}
	return T_PASS;
}

static int empty(void)
{
	struct sn_hist h, e;

	sn_hist_init(&h);
	ASSERT_EQ(h.count, 0);
	ASSERT_EQ(sn_hist_pct(&h, 50), 0);
	ASSERT_EQ(sn_hist_pct(&h, 0), 0);
	ASSERT_EQ(sn_hist_pct(&h, 100), 0);
	ASSERT_TRUE(sn_hist_mean(&h) == 0.0);

	/* Merging empties stays empty; merging into an empty one copies. */
	sn_hist_init(&e);
	sn_hist_merge(&h, &e);
	ASSERT_EQ(h.count, 0);
	ASSERT_EQ(sn_hist_pct(&h, 50), 0);
	sn_hist_add(&e, 42);
	sn_hist_merge(&h, &e);
	ASSERT_EQ(h.count, 1);
	ASSERT_EQ(h.min, 42);
	ASSERT_EQ(h.max, 42);
	ASSERT_EQ(sn_hist_pct(&h, 50), 42);
	return T_PASS;
}

static int merge(void)
{
	struct sn_hist *all = malloc(sizeof(*all)), *part = malloc(4 * sizeof(*part));
	struct sn_hist *sum = malloc(sizeof(*sum));
	int r = T_PASS;

	if (!all || !part || !sum) {
		free(all), free(part), free(sum);
		SKIP("out of memory");
	}
	sn_hist_init(all);
	sn_hist_init(sum);
	for (int i = 0; i < 4; i++)
		sn_hist_init(&part[i]);
	/* Four threads' histograms with different ranges, as the bench merges them. */
	for (unsigned i = 0; i < 40000; i++) {
		uint64_t v = sample(10 + 8 * (i % 4));

		sn_hist_add(all, v);
		sn_hist_add(&part[i % 4], v);
	}
	for (int i = 3; i >= 0; i--)
		sn_hist_merge(sum, &part[i]);
	if (memcmp(all, sum, sizeof(*all)) != 0) {
		printf("    merged histogram differs from the one that saw every sample\n");
		r = T_FAIL;
	}
	free(all), free(part), free(sum);
	return r;
}

int main(void)
{
	t_begin("test_hist: log-linear histogram percentiles, merge, min/max, empty");
	T_RUN("percentiles within 1/64 of exact: values up to 2^20", percentiles(20));
	T_RUN("percentiles within 1/64 of exact: values up to 2^44", percentiles(44));
	T_RUN("values below 64 are exact", small_values_exact());
	T_RUN("bucket index stays in the table and is monotonic", buckets());
	T_RUN("min, max, clamping past 2^44, add_n", min_max_and_clamp());
	T_RUN("empty histogram", empty());
	T_RUN("merge equals recording everything in one", merge());
	return t_end();
}
