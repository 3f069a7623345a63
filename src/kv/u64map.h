/* SPDX-License-Identifier: MIT */
/*
 * u64map.h — a small open-addressing map from uint64_t to uint64_t (linear probing,
 * backward-shift deletion), for the KV store's bookkeeping of batch records. Not
 * thread-safe; all of it is static inline.
 */
#ifndef SN_KV_U64MAP_H
#define SN_KV_U64MAP_H

#include <stdint.h>
#include <stdlib.h>

struct u64map_ent {
	uint64_t key, val;
	uint8_t used;
};

struct u64map {
	struct u64map_ent *t;
	uint64_t mask; /* capacity - 1; 0 with no table yet */
	uint64_t n;
};

static inline uint64_t u64map_slot(const struct u64map *m, uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return key & m->mask;
}

/* The entry of key, or NULL. */
static inline struct u64map_ent *u64map_find(const struct u64map *m, uint64_t key)
{
	if (!m->t)
		return NULL;
	for (uint64_t i = u64map_slot(m, key);; i = (i + 1) & m->mask) {
		if (!m->t[i].used)
			return NULL;
		if (m->t[i].key == key)
			return &m->t[i];
	}
}

static inline int u64map_grow(struct u64map *m)
{
	uint64_t cap = m->t ? 2 * (m->mask + 1) : 64;
	struct u64map old = *m;

	m->t = calloc(cap, sizeof(*m->t));
	if (!m->t) {
		*m = old;
		return -1;
	}
	m->mask = cap - 1;
	m->n = 0;
	for (uint64_t i = 0; old.t && i <= old.mask; i++) {
		if (!old.t[i].used)
			continue;
		uint64_t j = u64map_slot(m, old.t[i].key);

		while (m->t[j].used)
			j = (j + 1) & m->mask;
		m->t[j] = old.t[i];
		m->n++;
	}
	free(old.t);
	return 0;
}

/* The entry of key, added with val 0 when missing; NULL when out of memory. */
static inline struct u64map_ent *u64map_get(struct u64map *m, uint64_t key)
{
	struct u64map_ent *e = u64map_find(m, key);
	uint64_t i;

	if (e)
		return e;
	if ((!m->t || 4 * (m->n + 1) > 3 * (m->mask + 1)) && u64map_grow(m))
		return NULL;
	for (i = u64map_slot(m, key); m->t[i].used; i = (i + 1) & m->mask)
		;
	m->t[i] = (struct u64map_ent){ key, 0, 1 };
	m->n++;
	return &m->t[i];
}

/* Remove e (from u64map_find or u64map_get): later entries of its run move back. */
static inline void u64map_del(struct u64map *m, struct u64map_ent *e)
{
	uint64_t i = (uint64_t)(e - m->t), j = i;

	for (;;) {
		j = (j + 1) & m->mask;
		if (!m->t[j].used)
			break;
		uint64_t home = u64map_slot(m, m->t[j].key);

		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		m->t[i] = m->t[j];
		i = j;
	}
	m->t[i].used = 0;
	m->n--;
}

static inline void u64map_free(struct u64map *m)
{
	free(m->t);
	m->t = NULL;
	m->mask = m->n = 0;
}

#endif
