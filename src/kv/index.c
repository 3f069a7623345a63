/* SPDX-License-Identifier: MIT */
/*
 * index.c — the shard index (index.h). Growth doubles the table at 3/4 load; removal
 * shifts later entries of the probe run back (no deleted-slot markers), so probe runs
 * stay short however many keys come and go.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

#define HUGE_PAGE (2ull << 20)

/*
 * A zeroed table of cap entries. Tables of 2 MiB and more are their own mapping, in huge
 * pages where the kernel gives them (MADV_HUGEPAGE; Debian's default THP mode is
 * "madvise"): a lookup is a random access, and with 4 KiB pages each one is also a TLB
 * miss, and the table's first touch a fault per page.
 */
static struct sn_idx_ent *table_alloc(uint64_t cap)
{
	size_t len = cap * sizeof(struct sn_idx_ent);
	void *p;

	if (len < HUGE_PAGE)
		return calloc(cap, sizeof(struct sn_idx_ent));
	len = (len + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, len, MADV_HUGEPAGE); /* a hint: 4 KiB pages work too */
	return p;
}

static void table_free(struct sn_idx_ent *t, uint64_t cap)
{
	size_t len = cap * sizeof(struct sn_idx_ent);

	if (len < HUGE_PAGE)
		free(t);
	else if (t)
		munmap(t, (len + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
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

struct sn_idx_ent *sn_idx_find(struct sn_idx *ix, uint64_t hash, const void *key, size_t klen)
{
	for (uint64_t i = hash & ix->mask;; i = (i + 1) & ix->mask) {
		struct sn_idx_ent *e = &ix->t[i];

		if (!e->hash)
			return NULL;
		if (key_eq(e, hash, key, klen))
			return e;
	}
}

static int grow(struct sn_idx *ix)
{
	uint64_t cap = (ix->mask + 1) * 2;
	struct sn_idx_ent *t = table_alloc(cap);

	if (!t)
		return -ENOMEM;
	for (uint64_t i = 0; i <= ix->mask; i++) {
		uint64_t j;

		if (!ix->t[i].hash)
			continue;
		for (j = ix->t[i].hash & (cap - 1); t[j].hash; j = (j + 1) & (cap - 1))
			;
		t[j] = ix->t[i];
	}
	table_free(ix->t, ix->mask + 1);
	ix->t = t;
	ix->mask = cap - 1;
	return 0;
}

struct sn_idx_ent *sn_idx_upsert(struct sn_idx *ix, uint64_t hash, const void *key, size_t klen,
                                 int *fresh)
{
	struct sn_idx_ent *e;
	uint64_t i;

	for (i = hash & ix->mask;; i = (i + 1) & ix->mask) {
		e = &ix->t[i];
		if (!e->hash)
			break;
		if (key_eq(e, hash, key, klen)) {
			*fresh = 0;
			return e;
		}
	}
	if ((ix->used + 1) * 4 > (ix->mask + 1) * 3) {
		if (grow(ix))
			return NULL;
		for (i = hash & ix->mask; ix->t[i].hash; i = (i + 1) & ix->mask)
			;
		e = &ix->t[i];
	}
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
	uint64_t i = (uint64_t)(e - ix->t), j = i;

	if (e->klen > SN_IDX_INLINE)
		free(e->k.kptr);
	ix->used--;
	ix->tombs -= e->tomb;
	/* Backward shift: move up any later entry whose home slot is at or before the hole. */
	for (;;) {
		uint64_t home;

		ix->t[i].hash = 0;
		for (;;) {
			j = (j + 1) & ix->mask;
			if (!ix->t[j].hash)
				return;
			home = ix->t[j].hash & ix->mask;
			/* Can j's entry move to i? Only if home is not cyclically in (i, j]. */
			if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
				break;
		}
		ix->t[i] = ix->t[j];
		i = j;
	}
}
