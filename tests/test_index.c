/* SPDX-License-Identifier: MIT */
/*
 * test_index.c — the shard index (src/kv/index.c) against a plain array of what each key
 * should hold, through random upserts, finds and removes that grow the table many times
 * and shrink it again. Growth moves entries some slots per upsert (the index's default,
 * and one slot, which keeps the old table longest), so many checks happen while a key may
 * be in either table: every key is looked up after every burst, a walk after
 * sn_idx_settle() must see exactly the live keys, and with a hash that collides on purpose
 * (long probe runs that wrap around the table's end) the same must hold.
 */
#include <stdlib.h>

#include "kv/index.h"
#include "test.h"

#define NKEYS 40000

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* splitmix64: fixed seeds, so a failure reproduces */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Key k: decimal, padded to 8 to 40 bytes by k (both inline and allocated keys). */
static size_t key_of(uint64_t k, char *buf)
{
	size_t len = 8 + (size_t)(k % 33);

	snprintf(buf, 41, "%040llu", (unsigned long long)k);
	memmove(buf, buf + 40 - len, len);
	return len;
}

/* weak: few distinct hashes, so probe runs are long and wrap around. */
static uint64_t hash_of(const char *key, size_t len, int weak)
{
	uint64_t h = sn_kv_hash(key, len);

	return weak ? (h % 61) * 0x9e3779b97f4a7c15ull | 1 : h;
}

/* Every key as the model says: present with its value, or absent. */
static int check_all(struct sn_idx *ix, const uint32_t *want, int weak)
{
	char key[48];
	uint64_t live = 0;

	for (uint64_t k = 0; k < NKEYS; k++) {
		size_t len = key_of(k, key);
		struct sn_idx_ent *e = sn_idx_find(ix, hash_of(key, len, weak), key, len);

		if (!want[k]) {
			if (e)
				T_FAILED("key %llu is found after its remove",
				         (unsigned long long)k);
			continue;
		}
		live++;
		if (!e)
			T_FAILED("key %llu is lost", (unsigned long long)k);
		ASSERT_EQ(e->off, want[k]);
		ASSERT_EQ(e->klen, len);
		ASSERT_TRUE(!memcmp(sn_idx_key(e), key, len));
	}
	ASSERT_EQ(ix->used, live);
	return T_PASS;
}

/* step: slots an upsert moves while the table grows (0: the index's default; 1 keeps old
 * around longest, so finds, upserts and removes meet it most). */
static int run(int weak, uint64_t seed, unsigned step)
{
	static uint32_t want[NKEYS]; /* 0: absent; else the entry's off */
	struct sn_idx ix;
	char key[48];
	unsigned grows = 0, moving = 0;

	rng_state = seed;
	memset(want, 0, sizeof(want));
	ASSERT_OK(sn_idx_init(&ix, 16));
	ix.mig_step = step;
	for (int round = 0; round < 12; round++) {
		/* Grow to about round-dependent fullness, then remove part of it again. */
		unsigned ops = 20000 + (unsigned)(rng() % 40000), remove_pct = round % 3 ? 20 : 70;

		for (unsigned i = 0; i < ops; i++) {
			uint64_t k = rng() % NKEYS, mask = ix.mask;
			size_t len = key_of(k, key);
			uint64_t h = hash_of(key, len, weak);
			struct sn_idx_ent *e;
			int fresh;

			if (rng() % 100 < remove_pct) {
				e = sn_idx_find(&ix, h, key, len);
				ASSERT_EQ(!!e, !!want[k]);
				if (e)
					sn_idx_remove(&ix, e);
				want[k] = 0;
				continue;
			}
			e = sn_idx_upsert(&ix, h, key, len, &fresh);
			ASSERT_TRUE(e != NULL);
			ASSERT_EQ(fresh, !want[k]);
			if (fresh)
				ASSERT_EQ(e->seg, UINT32_MAX);
			else
				ASSERT_EQ(e->off, want[k]);
			e->seg = 1;
			e->off = want[k] = 1 + (uint32_t)(rng() % 1000000);
			grows += ix.mask != mask;
			moving += ix.old != NULL;
		}
		if (check_all(&ix, want, weak))
			return T_FAIL;
	}
	sn_idx_settle(&ix);
	ASSERT_TRUE(ix.old == NULL);
	{
		uint64_t n = 0;

		for (uint64_t i = 0; i <= ix.mask; i++)
			n += ix.t[i].hash != 0;
		ASSERT_EQ(n, ix.used);
	}
	if (check_all(&ix, want, weak))
		return T_FAIL;
	printf("    %s hash, %s step: %u growths, %u upserts while one was moving entries, %llu "
	       "keys at the end in %llu slots\n",
	       weak ? "colliding" : "real", step ? "1-slot" : "default", grows, moving,
	       (unsigned long long)ix.used, (unsigned long long)ix.mask + 1);
	ASSERT_GE(grows, 8);
	ASSERT_GE(moving, step ? 10000u : 500u);
	sn_idx_free(&ix);
	return T_PASS;
}

int main(void)
{
	printf("test_index: the shard index against a model, growing incrementally\n");
	T_RUN("random upserts, finds and removes, real hash", run(0, 1, 0));
	T_RUN("random upserts, finds and removes, colliding hash (long runs, wrap-around)",
	      run(1, 2, 0));
	T_RUN("the same, moving one slot per upsert while growing, real hash", run(0, 3, 1));
	T_RUN("the same, moving one slot per upsert while growing, colliding hash", run(1, 4, 1));
	return t_end();
}
