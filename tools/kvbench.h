/* SPDX-License-Identifier: MIT */
/* kvbench.h — the parts of `snstore kvbench` (kvbench.c: options, store, report;
 * kvbench_work.c: the clients and their workloads) and two helpers kv.c shares. */
#ifndef SN_TOOLS_KVBENCH_H
#define SN_TOOLS_KVBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <snstore/snstore.h>

#include "util/hist.h"

/* kvbench.c, shared with kv.c: the engine of an open store's device, and its note */
void kv_engine(const struct sn_kv *kv, char *engine, size_t elen, char *note, size_t nlen);

/* kvbench.c: why kvbench fails, on stderr ("snstore kvbench: MESSAGE"); the first message
 * becomes the "error" of the object --json prints on failure. Main thread only. */
void kb_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* kb_error, then exit(1) at once, where a failure leaves threads that cannot be joined;
 * with --json the error object is printed first. */
_Noreturn void kb_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

enum kb_kind {
	KB_FILLSEQ,
	KB_FILLRANDOM,
	KB_OVERWRITE,
	KB_READRANDOM,
	KB_READWHILEWRITING,
	KB_FILLSYNC,
	KB_YCSBA,
	KB_YCSBB,
	KB_YCSBC,
	KB_YCSBD,
	KB_YCSBE,
	KB_YCSBF,
	KB_LOAD, /* YCSB's load phase: every key of [0, num) once, in a scrambled order */
};

#define KB_MAX_CLIENTS 1024
#define KB_MAX_SHARDS  4096 /* the store's limit (sn_kv_format refuses more) */
#define KB_SCAN_LEN    10   /* YCSB E: a "scan" is this many consecutive key numbers */

struct kb_opts {
	const char *db, *benchmarks;
	uint64_t num, seed, cache, capacity;
	unsigned threads, writers, key_size, value_size, depth, shards, workers;
	unsigned owners[KB_MAX_SHARDS], nowners; /* --owners: the worker of each shard */
	int sync, json, foreign;
	enum sn_rt_mode mode;
};

struct kb_result {
	const char *name;
	enum kb_kind kind;
	unsigned clients;
	uint64_t ops, reads, found;
	uint64_t writer_ops; /* readwhilewriting: the writer's puts, reported apart */
	double secs, writer_secs;
	struct sn_hist *h;
};

/* What a benchmark runs against. */
struct kb_env {
	const struct kb_opts *o;
	struct sn_kv *kv;
	struct sn_rt *rt;
	const char *vpool; /* KG_VALUE_POOL + the largest value, from kg_make_values */
};

/* kvbench_work.c */
int kb_is_read(enum kb_kind k);
/* Runs one benchmark; 0, or -1 after saying why (kb_error). res->h is malloc()ed. */
int kb_run(const struct kb_env *env, enum kb_kind kind, const char *name, struct kb_result *res,
           int progress);

#endif
