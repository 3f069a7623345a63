/* SPDX-License-Identifier: MIT */
/*
 * hist.h — log-linear latency histogram (HdrHistogram's layout): values below 64 are
 * exact; above, every power of two is split into 64 buckets, so a percentile is off by
 * at most 1/64 (1.6%). Fixed size, no allocation; merging is adding counts.
 */
#ifndef SN_HIST_H
#define SN_HIST_H

#include <stdint.h>

#define SN_HIST_SUB_BITS 6
#define SN_HIST_SUB      (1u << SN_HIST_SUB_BITS)
#define SN_HIST_MAX_BITS 44 /* values are clamped below 2^44 ns, about 4.9 hours */
#define SN_HIST_BUCKETS  ((SN_HIST_MAX_BITS - SN_HIST_SUB_BITS + 1) * SN_HIST_SUB)

struct sn_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min, max;
	uint64_t b[SN_HIST_BUCKETS];
};

void sn_hist_init(struct sn_hist *h);

static inline unsigned sn_hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < SN_HIST_SUB)
		return (unsigned)v;
	if (v >= (1ull << SN_HIST_MAX_BITS))
		v = (1ull << SN_HIST_MAX_BITS) - 1;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - SN_HIST_SUB_BITS;
	return (shift + 1) * SN_HIST_SUB + (unsigned)((v >> shift) & (SN_HIST_SUB - 1));
}

/* Record n samples of value v (n > 1 when a batch completed together). */
static inline void sn_hist_add_n(struct sn_hist *h, uint64_t v, uint64_t n)
{
	h->b[sn_hist_index(v)] += n;
	h->count += n;
	h->sum += v * n;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

static inline void sn_hist_add(struct sn_hist *h, uint64_t v)
{
	sn_hist_add_n(h, v, 1);
}

void sn_hist_merge(struct sn_hist *dst, const struct sn_hist *src);

/* The value at percentile p (0..100): the middle of the bucket holding that rank,
 * clamped to [min, max]. 0 when empty. */
uint64_t sn_hist_pct(const struct sn_hist *h, double p);

static inline double sn_hist_mean(const struct sn_hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

#endif
