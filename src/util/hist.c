/* SPDX-License-Identifier: MIT */
/*
 * hist.c — the log-linear histogram's non-inline half. Bucket i for i >= 64 covers
 * [(64 + i % 64) << (i / 64 - 1), ... + (1 << (i / 64 - 1))).
 */
#include <string.h>

#include "hist.h"

void sn_hist_init(struct sn_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void sn_hist_merge(struct sn_hist *dst, const struct sn_hist *src)
{
	for (unsigned i = 0; i < SN_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

static uint64_t bucket_mid(unsigned i)
{
	unsigned shift;

	if (i < SN_HIST_SUB)
		return i;
	shift = i / SN_HIST_SUB - 1;
	return ((uint64_t)(SN_HIST_SUB + i % SN_HIST_SUB) << shift) + ((1ull << shift) >> 1);
}

uint64_t sn_hist_pct(const struct sn_hist *h, double p)
{
	uint64_t rank, seen = 0, v;

	if (!h->count)
		return 0;
	if (p <= 0)
		return h->min;
	if (p >= 100)
		return h->max;
	/* The smallest value with at least p% of samples at or below it. */
	rank = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < SN_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			v = bucket_mid(i);
			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	return h->max;
}
