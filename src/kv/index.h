/* SPDX-License-Identifier: MIT */
/*
 * index.h — a shard's in-memory index: key -> where its newest record is. Open addressing
 * with linear probing on a 64-bit key hash; keys up to 16 bytes live in the entry, longer
 * ones in their own allocation, so a lookup never touches the device. Deleted keys stay
 * as tombstone entries until compaction drops their record. One owner thread.
 */
#ifndef SN_KV_INDEX_H
#define SN_KV_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define SN_IDX_INLINE 16

struct sn_idx_ent {
	uint64_t hash; /* 0 marks an empty slot (real hashes are forced non-zero) */
	uint32_t seg;  /* segment index in the shard */
	uint32_t off;  /* record offset in the segment */
	uint32_t len;  /* record length on disk (8-byte padded) */
	uint16_t klen;
	uint8_t tomb; /* the newest record is a delete */
	union {
		uint8_t key[SN_IDX_INLINE];
		uint8_t *kptr;
	} k;
};

/*
 * Growing is incremental: a full table becomes `old` and a table twice its size takes its
 * place; every upsert then moves some of old's slots (index.c: MIG_STEP), in order from
 * just after an empty one (mig_start), so no single call pays for the whole table. A key
 * is in exactly one of the two: t, or a slot of old not yet moved. Moved slots keep their bytes (probes of old
 * pass over them) but never match.
 */
struct sn_idx {
	struct sn_idx_ent *t;
	uint64_t mask; /* capacity - 1 */
	uint64_t used; /* entries, tombstones included, in both tables */
	uint64_t tombs;
	struct sn_idx_ent *old; /* growing: the previous table, or NULL */
	uint64_t old_mask;
	uint64_t mig_start, mig_done; /* an empty slot of old; slots moved after it */
	unsigned mig_step;            /* slots each upsert moves (0: the default; tests: 1) */
};

uint64_t sn_kv_hash(const void *key, size_t klen);

int sn_idx_init(struct sn_idx *ix, uint64_t expect);
void sn_idx_free(struct sn_idx *ix);

static inline const uint8_t *sn_idx_key(const struct sn_idx_ent *e)
{
	return e->klen <= SN_IDX_INLINE ? e->k.key : e->k.kptr;
}

/* Start loading hash's home slot of t into the cache (an entry may straddle two lines),
 * so that a find or upsert soon after does not wait for memory. */
static inline void sn_idx_prefetch(const struct sn_idx *ix, uint64_t hash)
{
	const char *p = (const char *)&ix->t[hash & ix->mask];

	__builtin_prefetch(p, 1);
	__builtin_prefetch(p + sizeof(struct sn_idx_ent) - 1, 1);
}

/* The entry for key, or NULL. */
struct sn_idx_ent *sn_idx_find(struct sn_idx *ix, uint64_t hash, const void *key, size_t klen);

/*
 * The entry for key, inserting an empty one (seg = UINT32_MAX, len 0) when missing.
 * *fresh says which. NULL when out of memory. May move entries (growth): pointers from
 * earlier calls are invalid afterwards, as after a remove (find moves nothing).
 */
struct sn_idx_ent *sn_idx_upsert(struct sn_idx *ix, uint64_t hash, const void *key, size_t klen,
                                 int *fresh);

/* Remove e (from find or upsert). */
void sn_idx_remove(struct sn_idx *ix, struct sn_idx_ent *e);

/* Finish a growth in progress: afterwards every entry is in t[0..mask] (for walks over
 * all of them). May move entries. */
void sn_idx_settle(struct sn_idx *ix);

#endif
