/* SPDX-License-Identifier: MIT */
/*
 * index.c — the shard index (index.h). Growth doubles the table at 3/4 load, moving the
 * entries a few slots per upsert (no stall of a whole rehash: 10 M keys took ~1 s in one
 * call); removal shifts later entries of the probe run back (no deleted-slot markers), so
 * probe runs stay short however many keys come and go.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"
#include "index.h"

/* A 64-bit hash of the key: 8-byte words through multiply-xorshift rounds, then the
 * splitmix64 finaliser. Never 0 (0 marks an empty slot). */
uint64_t sn_kv_hash(const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (klen * 0xc2b2ae3d27d4eb4full);
	size_t i = 0;

	for (; i + 8 <= klen; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ (w * 0xff51afd7ed558ccdull)) * 0x9fb21c651e98df25ull;
		h ^= h >> 29;
	}
	if (i < klen) {
		uint64_t w = 0;

		memcpy(&w, p + i, klen - i);
		h = (h ^ (w * 0xff51afd7ed558ccdull)) * 0x9fb21c651e98df25ull;
		h ^= h >> 29;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h ? h : 1;
}

/* A zeroed table of cap entries, in huge pages when large: a lookup is a random access,
 * and with 4 KiB pages each one is also a TLB miss. */
static struct sn_idx_ent *table_alloc(uint64_t cap)
{
	return sn__zalloc_big(cap * sizeof(struct sn_idx_ent));
}

static void table_free(struct sn_idx_ent *t, uint64_t cap)
{
	sn__free_big(t, cap * sizeof(struct sn_idx_ent));
}

int sn_idx_init(struct sn_idx *ix, uint64_t expect)
{
	uint64_t cap = 64;

	while (cap * 3 / 4 < expect)
		cap *= 2;
	memset(ix, 0, sizeof(*ix));
	ix->t = table_alloc(cap);
	if (!ix->t)
		return -ENOMEM;
	ix->mask = cap - 1;
	return 0;
}

void sn_idx_free(struct sn_idx *ix)
{
	sn_idx_settle(ix);
	for (uint64_t i = 0; ix->t && i <= ix->mask; i++)
		if (ix->t[i].hash && ix->t[i].klen > SN_IDX_INLINE)
			free(ix->t[i].k.kptr);
	table_free(ix->t, ix->mask + 1);
	ix->t = NULL;
}

static int key_eq(const struct sn_idx_ent *e, uint64_t hash, const void *key, size_t klen)
{
	return e->hash == hash && e->klen == klen && !memcmp(sn_idx_key(e), key, klen);
}

/* Slots of old each upsert moves: old has 2/3 of the new table's room for inserts left
 * to finish in (3/8 -> 3/4 full), and is half its size, so anything above 4/3 will do.
 * More is faster: while old is there, an upsert of a new key also probes old (a miss
 * that nothing prefetched), and a move is a sequential read of old and a write into t
 * prefetched one upsert ahead. 64 ends a growth within 1/48 of the inserts that fill the
 * new table instead of 1/3 of them: fillrandom 1M on one worker 4.6M -> 4.9-5.2M puts/s,
 * p99.9 unchanged (kvbench --num 1000000 --workers 1, medians of 6-7 interleaved runs). */
#define MIG_STEP 64

static int moved(const struct sn_idx *ix, uint64_t i)
{
	return ((i - ix->mig_start - 1) & ix->old_mask) < ix->mig_done;
}

static struct sn_idx_ent *find_in(struct sn_idx_ent *t, uint64_t mask, uint64_t hash,
                                  const void *key, size_t klen)
{
	for (uint64_t i = hash & mask;; i = (i + 1) & mask) {
		struct sn_idx_ent *e = &t[i];

		if (!e->hash)
			return NULL;
		if (key_eq(e, hash, key, klen))
			return e;
	}
}

/* The entry for key in old's slots not yet moved, or NULL. */
static struct sn_idx_ent *find_old(struct sn_idx *ix, uint64_t hash, const void *key, size_t klen)
{
	for (uint64_t i = hash & ix->old_mask;; i = (i + 1) & ix->old_mask) {
		struct sn_idx_ent *e = &ix->old[i];

		if (!e->hash)
			return NULL;
		if (!moved(ix, i) && key_eq(e, hash, key, klen))
			return e;
	}
}

struct sn_idx_ent *sn_idx_find(struct sn_idx *ix, uint64_t hash, const void *key, size_t klen)
{
	struct sn_idx_ent *e = find_in(ix->t, ix->mask, hash, key, klen);

	return e || !ix->old ? e : find_old(ix, hash, key, klen);
}

/* An empty slot of t for hash. */
static struct sn_idx_ent *free_slot(struct sn_idx *ix, uint64_t hash)
{
	uint64_t i = hash & ix->mask;

	while (ix->t[i].hash)
		i = (i + 1) & ix->mask;
	return &ix->t[i];
}

/*
 * Empty slot i of t (mask): move up any later entry of the probe run whose home is at or
 * before the hole (backward shift: no deleted-slot markers, probe runs stay short).
 */
static void shift_back(struct sn_idx_ent *t, uint64_t mask, uint64_t i)
{
	uint64_t j = i;

	for (;;) {
		uint64_t home;

		t[i].hash = 0;
		for (;;) {
			j = (j + 1) & mask;
			if (!t[j].hash)
				return;
			home = t[j].hash & mask;
			/* Can j's entry move to i? Only if home is not cyclically in (i, j]. */
			if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
				break;
		}
		t[i] = t[j];
		i = j;
	}
}

/* Move up to n more slots of old into t; free old once all are. */
static void migrate(struct sn_idx *ix, uint64_t n)
{
	uint64_t last = ix->old_mask; /* slots to move: all but mig_start */

	/* The slots of t that the next upsert's moves will fill: on their way now. */
	for (uint64_t k = ix->mig_done + n; k < ix->mig_done + 2 * n && k < last; k++) {
		const struct sn_idx_ent *e = &ix->old[(ix->mig_start + 1 + k) & ix->old_mask];

		if (e->hash)
			__builtin_prefetch(&ix->t[e->hash & ix->mask], 1);
	}
	while (n-- && ix->mig_done < last) {
		struct sn_idx_ent *e = &ix->old[(ix->mig_start + 1 + ix->mig_done) & ix->old_mask];

		if (e->hash)
			*free_slot(ix, e->hash) = *e;
		ix->mig_done++;
	}
	if (ix->mig_done == last) {
		table_free(ix->old, ix->old_mask + 1);
		ix->old = NULL;
	}
}

void sn_idx_settle(struct sn_idx *ix)
{
	if (ix->old)
		migrate(ix, UINT64_MAX);
}

/* Start growing: t becomes old, a table twice its size t. */
static int grow(struct sn_idx *ix)
{
	uint64_t cap = (ix->mask + 1) * 2, s = 0;
	struct sn_idx_ent *t;

	sn_idx_settle(ix);
	if (!(t = table_alloc(cap)))
		return -ENOMEM;
	while (ix->t[s].hash) /* there is one: the table is at most 3/4 full */
		s++;
	ix->old = ix->t;
	ix->old_mask = ix->mask;
	ix->mig_start = s;
	ix->mig_done = 0;
	ix->t = t;
	ix->mask = cap - 1;
	return 0;
}

struct sn_idx_ent *sn_idx_upsert(struct sn_idx *ix, uint64_t hash, const void *key, size_t klen,
                                 int *fresh)
{
	struct sn_idx_ent *e, *o;

	if (ix->old)
		migrate(ix, ix->mig_step ? ix->mig_step : MIG_STEP);
	*fresh = 0;
	if ((e = find_in(ix->t, ix->mask, hash, key, klen)))
		return e;
	if (ix->old && (o = find_old(ix, hash, key, klen))) {
		/* Not moved yet: move it now (upserts hand out entries of t only). */
		e = free_slot(ix, hash);
		*e = *o;
		shift_back(ix->old, ix->old_mask, (uint64_t)(o - ix->old));
		return e;
	}
	if ((ix->used + 1) * 4 > (ix->mask + 1) * 3 && grow(ix))
		return NULL;
	e = free_slot(ix, hash);
	memset(e, 0, sizeof(*e));
	if (klen > SN_IDX_INLINE) {
		e->k.kptr = malloc(klen);
		if (!e->k.kptr)
			return NULL;
		memcpy(e->k.kptr, key, klen);
	} else {
		memcpy(e->k.key, key, klen);
	}
	e->hash = hash;
	e->klen = (uint16_t)klen;
	e->seg = UINT32_MAX;
	ix->used++;
	*fresh = 1;
	return e;
}

void sn_idx_remove(struct sn_idx *ix, struct sn_idx_ent *e)
{
	int in_old = ix->old && e >= ix->old && e <= ix->old + ix->old_mask;

	if (e->klen > SN_IDX_INLINE)
		free(e->k.kptr);
	ix->used--;
	ix->tombs -= e->tomb;
	/* In old the shift stays among slots not yet moved: the run ends at mig_start's
	 * empty slot at the latest, and slots are moved in order from just after it. */
	if (in_old)
		shift_back(ix->old, ix->old_mask, (uint64_t)(e - ix->old));
	else
		shift_back(ix->t, ix->mask, (uint64_t)(e - ix->t));
}
