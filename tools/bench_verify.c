/* SPDX-License-Identifier: MIT */
/*
 * bench_verify.c — `snstore bench --verify`: every bs block of the region is written exactly
 * once, flushed, read back and checked. Each block starts with a 32-byte header (magic,
 * offset, seed, length, payload checksum) so a bad block says what it holds instead:
 * nothing, another block (misdirected), an older run (stale) or a corrupt payload.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snstore/snstore.h>

#include "bench.h"

#define VERIFY_MAGIC  0x796669726576736eull /* "nsverify" */
#define VERIFY_POISON 0xee                  /* read buffers hold this until a read fills them */
#define VERIFY_SHOW   8                     /* mismatches printed (per job, then overall) */

struct vhdr {
	uint64_t magic;
	uint64_t offset;
	uint64_t seed;
	uint32_t len;
	uint32_t sum; /* of the payload, bytes [32, len) */
};

struct vbad {
	uint64_t offset;
	char why[96];
};

struct vjob {
	struct sn_dev *dev;
	const struct bench_opts *o;
	unsigned idx;
	uint64_t first, n;       /* this job's slice, in blocks from o->offset */
	uint64_t perm_a, perm_c; /* random order: block i of the walk is (a*i + c) mod n */
	uint64_t written, verified, mismatches;
	uint64_t write_ns, read_ns;
	struct vbad bad[VERIFY_SHOW];
	int err;
	char errmsg[256];
};

/* FNV-1a over 64-bit words, folded to 32 bits: cheap, and corruption almost surely shows. */
static uint32_t payload_sum(const char *p, uint64_t len)
{
	uint64_t h = 0xcbf29ce484222325ull, i;

	for (i = sizeof(struct vhdr); i + 8 <= len; i += 8) {
		uint64_t v;

		memcpy(&v, p + i, 8);
		h = (h ^ v) * 0x100000001b3ull;
	}
	for (; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

/* The payload depends on (seed, offset) only, so the reader rebuilds it from the address. */
static void fill_pattern(char *p, uint64_t len, uint64_t off, uint64_t seed)
{
	struct vhdr h = { VERIFY_MAGIC, off, seed, (uint32_t)len, 0 };
	uint64_t s = bench_seed(seed, off), i;

	for (i = sizeof(h); i + 8 <= len; i += 8) {
		uint64_t v = bench_rand(&s);

		memcpy(p + i, &v, 8);
	}
	for (; i < len; i++)
		p[i] = (char)bench_rand(&s);
	h.sum = payload_sum(p, len);
	memcpy(p, &h, sizeof(h));
}

/* Why the block read at off is not what was written there. */
static void diagnose(const char *got, const char *want, uint64_t len, uint64_t off, uint64_t seed,
                     char *why, size_t n)
{
	struct vhdr h;
	uint64_t first = 0, ndiff = 0, i;
	int all_poison = 1, all_zero = 1;

	memcpy(&h, got, sizeof(h));
	for (i = 0; i < len; i++) {
		all_poison &= (unsigned char)got[i] == VERIFY_POISON;
		all_zero &= got[i] == 0;
		if (got[i] != want[i] && !ndiff++)
			first = i;
	}
	if (all_poison)
		snprintf(why, n, "the read moved no data into the buffer");
	else if (all_zero)
		snprintf(why, n, "zeros: never written");
	else if (h.magic != VERIFY_MAGIC)
		snprintf(why, n, "no verify header: foreign data");
	else if (h.offset != off)
		snprintf(why, n, "holds the block written at offset %" PRIu64 " (misdirected)",
		         h.offset);
	else if (h.seed != seed)
		snprintf(why, n, "written with --seed %" PRIu64 " (stale)", h.seed);
	else if (h.len != len)
		snprintf(why, n, "written with --bs %u", h.len);
	else
		snprintf(why, n,
		         "%" PRIu64 " byte(s) differ, the first at +%" PRIu64 "; checksum %s",
		         ndiff, first,
		         payload_sum(got, len) == h.sum ? "matches (rewritten?)" : "bad");
}

static void vjob_fail(struct vjob *v, int err, const char *what, const char *detail)
{
	if (v->err)
		return;
	v->err = err;
	snprintf(v->errmsg, sizeof(v->errmsg), "job %u: %s: %s", v->idx, what, detail);
}

/* One pass over the slice with qd requests in flight: writes with the pattern, or reads
 * checked against it. */
static int verify_pass(struct vjob *v, struct sn_queue *q, char *buf, char *want, int write)
{
	const struct bench_opts *o = v->o;
	const int is_rand = o->rw >= RW_RANDREAD;
	const unsigned qd = o->qd;
	uint64_t next = 0, done = 0, *slot_off, t0 = bench_now();
	unsigned *free_slots, nfree = qd, inflight = 0;
	struct sn_cqe *cqe;
	int err = 0;

	slot_off = calloc(qd, sizeof(*slot_off));
	free_slots = calloc(qd, sizeof(*free_slots));
	cqe = calloc(qd, sizeof(*cqe));
	if (!slot_off || !free_slots || !cqe) {
		vjob_fail(v, -ENOMEM, "setup", "out of memory");
		err = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < qd; i++)
		free_slots[i] = i;
	if (!write) /* a read that moves nothing must not pass on what the buffer held */
		memset(buf, VERIFY_POISON, (size_t)qd * o->bs);
	while (done < v->n && !err) {
		int r;

		while (next < v->n && nfree) {
			unsigned slot = free_slots[nfree - 1];
			uint64_t blk = is_rand ? (uint64_t)(((unsigned __int128)v->perm_a * next +
			                                     v->perm_c) %
			                                    v->n)
			                       : next;
			uint64_t off = o->offset + (v->first + blk) * o->bs;
			char *p = buf + (uint64_t)slot * o->bs;
			struct sn_io io;

			if (write)
				fill_pattern(p, o->bs, off, o->seed);
			sn_io_prep(&io, write ? SN_OP_WRITE : SN_OP_READ, p, (uint32_t)o->bs, off,
			           slot);
			r = sn_queue_submit(q, &io, 1);
			if (r == -EAGAIN && inflight)
				break; /* the queue is full after all: reap first */
			if (r < 0) {
				vjob_fail(v, r, write ? "write" : "read", sn_errmsg());
				err = r;
				break;
			}
			slot_off[slot] = off;
			nfree--;
			inflight++;
			next++;
		}
		if (!inflight)
			break;
		r = sn_queue_reap(q, cqe, qd, 1);
		if (r < 0) {
			vjob_fail(v, r, "reap", sn_errmsg());
			err = r;
			break;
		}
		for (int i = 0; i < r; i++) {
			unsigned slot = (unsigned)cqe[i].user_data;
			char *p = buf + (uint64_t)slot * o->bs;
			char why[160];

			free_slots[nfree++] = slot;
			inflight--;
			done++;
			if (cqe[i].res != (int64_t)o->bs) {
				char what[64];

				snprintf(what, sizeof(what), "%s at offset %" PRIu64,
				         write ? "write" : "read", slot_off[slot]);
				if (cqe[i].res < 0)
					snprintf(why, sizeof(why), "%s",
					         sn_strerror((int)cqe[i].res));
				else
					snprintf(why, sizeof(why),
					         "%" PRId64 " of %" PRIu64 " bytes", cqe[i].res,
					         o->bs);
				vjob_fail(v, cqe[i].res < 0 ? (int)cqe[i].res : -EIO, what, why);
				err = v->err;
				continue;
			}
			if (write) {
				v->written++;
				continue;
			}
			fill_pattern(want, o->bs, slot_off[slot], o->seed);
			if (memcmp(p, want, o->bs) == 0) {
				v->verified++;
			} else if (v->mismatches++ < VERIFY_SHOW) {
				struct vbad *b = &v->bad[v->mismatches - 1];

				b->offset = slot_off[slot];
				diagnose(p, want, o->bs, b->offset, o->seed, b->why,
				         sizeof(b->why));
			}
			memset(p, VERIFY_POISON, o->bs);
		}
	}
	/* Collect what is still in flight before the buffers go away. */
	while (sn_queue_inflight(q) && sn_queue_reap(q, cqe, qd, 1) >= 0)
		;
out:
	*(write ? &v->write_ns : &v->read_ns) = bench_now() - t0;
	free(slot_off);
	free(free_slots);
	free(cqe);
	return err;
}

static void *verify_main(void *arg)
{
	struct vjob *v = arg;
	struct sn_queue *q;
	char *buf, *want;
	int err;

	bench_pin(v->o, v->idx);
	err = sn_queue_create(v->dev, v->o->qd, &q);
	if (err) {
		vjob_fail(v, err, "queue", sn_errmsg());
		return NULL;
	}
	want = malloc(v->o->bs);
	if (!want || sn_queue_buf_alloc(q, (size_t)(v->o->qd * v->o->bs), (void **)&buf))
		vjob_fail(v, -ENOMEM, "buffers", "out of memory");
	else if (verify_pass(v, q, buf, want, 1) == 0) {
		err = sn_queue_flush(q);
		if (err)
			vjob_fail(v, err, "flush", sn_strerror(err));
		else
			verify_pass(v, q, buf, want, 0);
	}
	free(want);
	sn_queue_destroy(q);
	return NULL;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static void report(const struct bench_opts *o, const struct sn_dev_info *in, const struct vjob *v,
                   uint64_t elapsed_ns)
{
	uint64_t blocks = 0, written = 0, verified = 0, bad = 0, wns = 0, rns = 0;
	unsigned shown = 0, failed = 0;

	for (unsigned i = 0; i < o->jobs; i++) {
		blocks += v[i].n;
		written += v[i].written;
		verified += v[i].verified;
		bad += v[i].mismatches;
		failed += v[i].err != 0;
		wns = v[i].write_ns > wns ? v[i].write_ns : wns;
		rns = v[i].read_ns > rns ? v[i].read_ns : rns;
	}
	if (!o->json) {
		printf("verify %s  engine %s, bs %" PRIu64 ", qd %u, %u job%s, %s order\n", o->uri,
		       in->engine, o->bs, o->qd, o->jobs, o->jobs > 1 ? "s" : "",
		       o->rw >= RW_RANDREAD ? "random" : "sequential");
		printf("  written:  %" PRIu64 " of %" PRIu64 " blocks in %.2f s (%.1f MiB/s)\n",
		       written, blocks, (double)wns / 1e9,
		       wns ? (double)(written * o->bs) / 1048576.0 / ((double)wns / 1e9) : 0.0);
		printf("  verified: %" PRIu64 " intact, %" PRIu64 " mismatched in %.2f s\n",
		       verified, bad, (double)rns / 1e9);
		for (unsigned i = 0; i < o->jobs; i++)
			for (unsigned k = 0; k < v[i].mismatches && k < VERIFY_SHOW; k++)
				if (shown++ < VERIFY_SHOW)
					printf("  mismatch at offset %" PRIu64 ": %s\n",
					       v[i].bad[k].offset, v[i].bad[k].why);
		if (bad > shown)
			printf("  ... and %" PRIu64 " more mismatches\n", bad - shown);
		printf("%s\n", failed ? "FAILED: I/O errors (above)"
		               : bad  ? "FAILED: data mismatches"
		                      : "OK: every block read back as written");
		return;
	}
	printf("{\"verify\": true, \"dev\": ");
	bench_json_str(stdout, o->dev);
	printf(", \"uri\": ");
	bench_json_str(stdout, o->uri);
	printf(", \"engine\": ");
	bench_json_str(stdout, in->engine);
	printf(", \"features\": ");
	bench_json_str(stdout, in->features);
	printf(", \"rw\": \"%s\", \"bs\": %" PRIu64
	       ", \"qd\": %u, \"njobs\": %u, \"offset\": %" PRIu64 ", \"size\": %" PRIu64
	       ", \"seed\": %" PRIu64 ", \"blocks\": %" PRIu64 ", \"blocks_written\": %" PRIu64
	       ", \"blocks_verified\": %" PRIu64 ", \"mismatches\": %" PRIu64
	       ", \"errors\": %u, \"write_s\": %.3f, \"read_s\": %.3f"
	       ", \"elapsed_s\": %.3f, \"first_mismatches\": [",
	       bench_rw_name(o->rw), o->bs, o->qd, o->jobs, o->offset, o->size, o->seed, blocks,
	       written, verified, bad, failed, (double)wns / 1e9, (double)rns / 1e9,
	       (double)elapsed_ns / 1e9);
	for (unsigned i = 0; i < o->jobs; i++)
		for (unsigned k = 0; k < v[i].mismatches && k < VERIFY_SHOW; k++)
			if (shown < VERIFY_SHOW) {
				printf("%s{\"offset\": %" PRIu64 ", \"why\": ", shown++ ? ", " : "",
				       v[i].bad[k].offset);
				bench_json_str(stdout, v[i].bad[k].why);
				printf("}");
			}
	printf("]}\n");
}

int bench_verify(struct sn_dev *dev, const struct bench_opts *o)
{
	uint64_t blocks = o->size / o->bs, bad = 0, t0 = bench_now();
	struct vjob *v;
	pthread_t *tid;
	struct sn_dev_info in;
	int failed = 0;

	if (o->bs < sizeof(struct vhdr)) {
		fprintf(stderr, "snstore bench: --verify needs --bs of at least %zu bytes\n",
		        sizeof(struct vhdr));
		return -1;
	}
	v = calloc(o->jobs, sizeof(*v));
	tid = calloc(o->jobs, sizeof(*tid));
	if (!v || !tid) {
		fprintf(stderr, "snstore bench: out of memory\n");
		free(v);
		free(tid);
		return -1;
	}
	sn_dev_info(dev, &in);
	for (unsigned i = 0; i < o->jobs; i++) {
		uint64_t rng = bench_seed(o->seed, i);

		v[i].dev = dev;
		v[i].o = o;
		v[i].idx = i;
		/* Slices differ by at most one block, and cover every block of the region. */
		v[i].first = blocks * i / o->jobs;
		v[i].n = blocks * (i + 1) / o->jobs - v[i].first;
		/* A multiplier coprime with n makes i -> (a*i + c) mod n a permutation. */
		v[i].perm_a = bench_rand(&rng) % v[i].n;
		while (v[i].n > 1 && gcd(v[i].perm_a, v[i].n) != 1)
			v[i].perm_a++;
		v[i].perm_c = bench_rand(&rng) % v[i].n;
		if (pthread_create(&tid[i], NULL, verify_main, &v[i])) {
			fprintf(stderr, "snstore bench: cannot start job %u\n", i);
			exit(1);
		}
	}
	for (unsigned i = 0; i < o->jobs; i++) {
		pthread_join(tid[i], NULL);
		bad += v[i].mismatches;
		if (v[i].err) {
			fprintf(stderr, "snstore bench: %s\n", v[i].errmsg);
			failed = 1;
		}
	}
	fflush(stderr);
	report(o, &in, v, bench_now() - t0);
	free(v);
	free(tid);
	return failed || bad ? -1 : 0;
}
