/* SPDX-License-Identifier: MIT */
/* bench.h — the parts of `snstore bench`: options, the job engine, reports, compare. */
#ifndef SN_TOOLS_BENCH_H
#define SN_TOOLS_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include <snstore/dev.h>
#include <snstore/rt.h>

#include "util/hist.h"

enum bench_rw { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW };

struct bench_opts {
	const char *dev;  /* --dev as given */
	const char *uri;  /* what was opened: dev, plus create=1&size= when the bench made room */
	const char *file; /* --compare scratch file */
	enum bench_rw rw;
	unsigned rwmix, qd, batch, jobs;
	uint64_t bs, size, offset, runtime_s, ios, ramp_s, fsync_every, seed;
	int verify, json, quiet, compare;
	int memcpy_ref;          /* --memcpy: time plain memcpy at the workload's offsets instead */
	enum sn_rt_mode rt_mode; /* --rt: how job workers wait */
	unsigned ncpus;          /* --cpus: pin job i to cpus[i % ncpus]; 0: no pinning */
	unsigned cpus[256];
};

struct bench_job_result {
	unsigned cpu;
	uint64_t ios, reads, writes, bytes, flushes;
	uint64_t errors; /* failed requests (the job stops at the first) */
	uint64_t elapsed_ns;
	struct sn_hist lat;   /* reads and writes */
	struct sn_hist flush; /* flushes */
	int err;              /* first failed request, or 0 */
	char errmsg[256];
};

struct bench_result {
	unsigned njobs;
	struct bench_job_result *jobs;
	struct bench_job_result total; /* merged; elapsed = the longest job */
	const char *features;
};

/* xorshift64*: one multiply per random number, fast enough for the hot loop. */
static inline uint64_t bench_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* splitmix64 of (seed, stream): independent, never-zero xorshift states per job. */
static inline uint64_t bench_seed(uint64_t seed, uint64_t stream)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull * (stream + 1);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1;
}

/* bench.c */
uint64_t bench_now(void);
int bench_stop_requested(void);
void bench_request_stop(int v);
int bench_check_geometry(const struct bench_opts *o, const struct sn_dev_info *in);

/* bench_run.c: run the jobs; 0, or -1 after printing why. */
int bench_run(struct sn_dev *dev, const struct bench_opts *o, struct bench_result *r, int progress);
void bench_result_free(struct bench_result *r);
int bench_layout(struct sn_dev *dev, const struct bench_opts *o, int progress);
void bench_pin(const struct bench_opts *o, unsigned job);

/* bench_verify.c: write, flush, read back and check the region; 0, or -1 (printed). */
int bench_verify(struct sn_dev *dev, const struct bench_opts *o);

/* bench_report.c */
const char *bench_rw_name(enum bench_rw rw);
void bench_report(FILE *f, const struct bench_opts *o, const struct sn_dev_info *in,
                  const struct bench_result *r);
void bench_json_lat(FILE *f, const struct sn_hist *h);
/* s as a JSON string, quoted; always valid JSON: control characters escaped, each byte of an
 * invalid UTF-8 sequence (bad, overlong, surrogate, over U+10FFFF) as \ufffd. NULL is "". */
void bench_json_str(FILE *f, const char *s);

/* bench_memcpy.c: the memcpy ceiling on dev's mapping (or anonymous memory when dev is
 * NULL); returns the exit status. */
int bench_memcpy(struct sn_dev *dev, const struct bench_opts *o);

/* bench_compare.c */
int bench_compare(const struct bench_opts *o);

#endif
