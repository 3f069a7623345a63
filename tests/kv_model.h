/* SPDX-License-Identifier: MIT */
/*
 * kv_model.h — what the KV tests share: deterministic keys and values, checks of one key,
 * and a reference model of what a crash may leave behind.
 *
 * The model keeps, per key, every write issued since a baseline (the state last read back
 * from the store) with how far it got: tried (started, no answer or an error), acknowledged,
 * or durable (SN_KV_DURABLE acknowledged, or a later sn_kv_sync() returned 0). After a
 * crash a key may hold the value of its last durable write (or the baseline when it has
 * none) or of any write issued after that one; never an older value, never bytes no write
 * produced. A batch is all or nothing: one key showing the batch and another showing only
 * what preceded it is a torn batch. Every value's bytes are derived from a unique tag, so a
 * value read back names the write that produced it.
 */
#ifndef SN_TEST_KV_MODEL_H
#define SN_TEST_KV_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <snstore/kv.h>

/* ---- keys, values, and checks of one key (T_PASS / T_FAIL, as test.h) ---- */

/* n deterministic bytes of the value named tag; the first 8 are the tag when n >= 8. */
void km_fill(void *buf, size_t n, uint64_t tag);
/* "prefix-NNNNN" into buf; returns its length. */
size_t km_name(char *buf, const char *prefix, unsigned i);
/* Put n bytes of value tag under key. Returns what sn_kv_put returned. */
int km_put(struct sn_kv *kv, const void *key, size_t klen, size_t n, uint64_t tag, unsigned flags);
/* key holds exactly n bytes of value tag; key is absent. Print why not. */
int km_expect(struct sn_kv *kv, const void *key, size_t klen, size_t n, uint64_t tag);
int km_expect_absent(struct sn_kv *kv, const void *key, size_t klen);

/* ---- the scratch store of test_kv and test_kv_medium ---- */

#define KM_SEG           (64u << 10)
#define KM_SHARDS        4
/* The largest value a 64 KiB segment takes: the segment, less its header, the header of a
 * batch record with a 1024-byte key, and 8 bytes (sn_kv_open's documented rule). */
#define KM_SEG_MAX_VALUE (KM_SEG - 64 - (24 + 8 + 1024) - 8)

extern const char *km_uri; /* the device URI of the program's scratch store */
extern char km_path[1024]; /* its file */

/* Take the URI from argv[1], say what runs: T_PASS to go on, T_SKIP, or T_FAIL (usage). */
int km_main(int argc, char **argv, const char *title);
/* 64 KiB segments, 4 shards. */
struct sn_kv_opts km_opts(void);
/* A store on a fresh (removed, so all-zero) scratch file; close and open it again. */
int km_open_fresh(const struct sn_kv_opts *o, struct sn_kv **kv);
int km_reopen(struct sn_kv **kv, const struct sn_kv_opts *o);

/* ---- workloads ---- */

#define KM_MAX_KEY_IDX 4096 /* key indexes are below this */
#define KM_MAX_BOPS    6

enum km_type { KM_PUT, KM_DEL, KM_BATCH, KM_SYNC, KM_GET, KM_COMPACT };

struct km_bop {
	uint16_t key;
	uint8_t del;
	uint32_t vlen;
};

struct km_op {
	uint8_t type;  /* enum km_type */
	uint8_t flags; /* SN_KV_DURABLE */
	uint8_t nb;    /* KM_BATCH: operations in b */
	uint16_t key;  /* KM_PUT, KM_DEL, KM_GET */
	uint32_t vlen; /* KM_PUT */
	struct km_bop b[KM_MAX_BOPS];
};

struct km_workload {
	struct km_op *ops;
	unsigned n;
	uint64_t id; /* unique per workload: part of every value's tag */
};

/* What a generated workload does, in percent of its operations. */
struct km_mix {
	unsigned nops, nkeys;
	unsigned put, del, batch, sync, get, compact; /* the rest: puts */
	unsigned durable;                             /* of puts, deletes and batches */
	uint32_t max_vlen;                            /* values up to this (some large) */
	unsigned big; /* percent of values drawn from 8000..max_vlen; 0: 8 */
};

/* The key of index i: one 1-byte key, one 1024-byte key, the rest 8..47 bytes. */
size_t km_key(unsigned i, char *buf);
/* The tag of the value written by part j of op i of workload w. */
uint64_t km_tag(const struct km_workload *w, unsigned i, unsigned j);
int km_generate(struct km_workload *w, uint64_t id, uint64_t seed, const struct km_mix *mix);
void km_workload_free(struct km_workload *w);

/* ---- the model ---- */

enum km_state { KM_TRIED, KM_ACKED, KM_DURABLE };

struct km_write {
	uint64_t tag;
	uint32_t vlen;
	uint8_t del;
	uint8_t state;  /* enum km_state */
	uint32_t batch; /* 0, or the batch's number in the model (from 1) */
};

struct km_hist {
	struct km_write *w;
	unsigned n, cap;
	int base_present; /* the baseline: what the key held when the history began */
	uint32_t base_len;
	unsigned char *base;
};

struct km_model {
	unsigned nkeys;
	struct km_hist *keys;
	uint32_t nbatches;
	/* Where each op of the current workload put its writes, to acknowledge them. */
	uint32_t *pos; /* per (op, part): index in its key's history */
	unsigned pos_cap;
};

/* Totals over verifications. */
struct km_counts {
	uint64_t keys;             /* keys checked */
	uint64_t durable_verified; /* keys whose last durable write was checked */
	uint64_t lost;             /* a durable write gone: an older value or absent */
	uint64_t corrupt;          /* bytes no write produced, or a read error */
	uint64_t batches;          /* batches checked for atomicity */
	uint64_t torn_batches;     /* part of a batch visible, part not */
	uint64_t gets;             /* gets during workloads, checked against the model */
	/* Recoveries checked by km_check_recovery: how many, the corrupt records they reported
	 * (must stay 0), and the torn tail bytes they cut (allowed after a crash). */
	uint64_t recoveries, corrupt_records, torn_bytes, torn_recoveries;
};

int km_model_init(struct km_model *m, unsigned nkeys);
void km_model_free(struct km_model *m);

/* Op i of the current workload starts (its writes are tried) / returned 0. */
void km_begin(struct km_model *m, const struct km_workload *w, unsigned i);
void km_ack(struct km_model *m, const struct km_workload *w, unsigned i);
/* sn_kv_close() or sn_kv_sync() returned 0: every acknowledged write is durable. */
void km_all_durable(struct km_model *m);
/* A crash (or a close that failed): acknowledged writes not yet durable may be gone, so
 * they count as tried; later gets are judged from each key's last durable write. */
void km_crashed(struct km_model *m);

/*
 * Read every key back (sn_kv_get) and check it against the model, then check batches and
 * that sn_kv_scan sees exactly the present keys. With rebase, the values read become the
 * new baseline and the history is dropped. Returns 0, or -1 with the first violation in
 * why (counted in c).
 */
int km_verify(struct sn_kv *kv, struct km_model *m, int rebase, struct km_counts *c, char *why,
              size_t whylen);

/*
 * Right after an open that recovered a store nothing corrupted on purpose (power loss, a
 * kill, a clean close): recovery must report no corrupt record. docs/format.md, "The
 * writer's rules": a crash leaves a torn tail only in a shard's newest segment (cut and
 * counted in torn_bytes), and every older segment ends cleanly, reused or not, so a bad
 * record in an older segment is damage to the medium, never a leftover of a crash. Counts
 * the recovery in c; returns 0, or -1 with the count per shard in why.
 */
int km_check_recovery(struct sn_kv *kv, struct km_counts *c, char *why, size_t whylen);

/* Called before (acked < 0) and after (acked = 1 ok, 0 failed) each op of km_run. */
typedef void (*km_event_fn)(void *arg, unsigned op, int acked);

struct km_run_result {
	unsigned done;     /* ops that returned */
	unsigned failed;   /* ... with an error */
	int first_err;     /* the first error, or 0 */
	unsigned first_op; /* the op that returned it */
	unsigned skipped;  /* KM_COMPACT ops skipped after an error (see km_run) */
};

/*
 * Run ops [from, w->n) of w on kv, keeping the model; every get must return what the model
 * allows. stop_on_error: stop after the first failed op. Compaction ops are skipped once an
 * op has failed (sn_kv_compact() does not return on a failed shard: test_kv_disk.c).
 * Returns 0, or -1 when a get broke the model (why says how).
 */
int km_run(struct sn_kv *kv, struct km_model *m, const struct km_workload *w, unsigned from,
           int stop_on_error, km_event_fn ev, void *arg, struct km_run_result *r,
           struct km_counts *c, char *why, size_t whylen);

#endif
