/* SPDX-License-Identifier: MIT */
/* bench.h — the parts of `snstore bench`: options, the job engine, reports, compare. */
#ifndef SN_TOOLS_BENCH_H
#define SN_TOOLS_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include <snstore/dev.h>

#include "util/hist.h"

enum bench_rw { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW };

struct bench_opts {
	const char *dev;
	const char *file; /* --compare scratch file */
	enum bench_rw rw;
	unsigned rwmix, qd, batch, jobs;
	uint64_t bs, size, offset, runtime_s, ios, ramp_s, fsync_every, seed;
	int verify, json, quiet, compare;
	unsigned ncpus; /* --cpus: pin job i to cpus[i % ncpus]; 0: no pinning */
	unsigned cpus[256];
};

struct bench_job_result {
	unsigned cpu;
	uint64_t ios, reads, writes, bytes, flushes;
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

/* bench.c */
uint64_t bench_now(void);
int bench_stop_requested(void);
void bench_request_stop(int v);
int bench_check_geometry(const struct bench_opts *o, const struct sn_dev_info *in);

/* bench_run.c: run the jobs; 0, or -1 after printing why. */
int bench_run(struct sn_dev *dev, const struct bench_opts *o, struct bench_result *r, int progress);
void bench_result_free(struct bench_result *r);
int bench_layout(struct sn_dev *dev, const struct bench_opts *o, int progress);
int bench_verify(struct sn_dev *dev, const struct bench_opts *o);

/* bench_report.c */
const char *bench_rw_name(enum bench_rw rw);
void bench_report(FILE *f, const struct bench_opts *o, const struct sn_dev_info *in,
                  const struct bench_result *r);
void bench_json_lat(FILE *f, const struct sn_hist *h);
void bench_json_str(FILE *f, const char *s);

/* bench_compare.c */
int bench_compare(const struct bench_opts *o);

#endif
