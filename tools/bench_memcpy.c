/* SPDX-License-Identifier: MIT */
/*
 * bench_memcpy.c — `snstore bench --memcpy`: the ceiling of a byte-addressable path,
 * plain memcpy of --bs blocks at the workload's offsets, with no persist and no queue.
 * With --dev the copies go to and from the device's mapping (sn_dev_map), so the same
 * memory, page-table and cache effects as the engine's rows; without it, anonymous memory
 * of --size bytes. One thread; the clock is read once per 1024 copies, and the fastest
 * such batch is reported too, a figure that a busy machine disturbs less than the mean.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <snstore/snstore.h>

#include "bench.h"

#define CLOCK_EVERY 1024

struct copy_result {
	uint64_t copies, reads, bytes, ns;
	uint64_t best_batch_ns; /* the fastest batch of CLOCK_EVERY copies: robust to noise */
};

/* The copy loop: returns what it did. mem is the region, size bytes, bs-aligned. */
static void copy_loop(const struct bench_opts *o, char *mem, uint64_t size, char *buf,
                      struct copy_result *r)
{
	uint64_t nblocks = size / o->bs, rng = bench_seed(o->seed, 0), seq = 0, t0, now, prev;
	uint64_t deadline = o->runtime_s ? o->runtime_s * 1000000000ull : UINT64_MAX;
	int rnd = o->rw >= RW_RANDREAD;

	memset(r, 0, sizeof(*r));
	r->best_batch_ns = UINT64_MAX;
	t0 = prev = bench_now();
	for (;;) {
		for (unsigned i = 0; i < CLOCK_EVERY; i++) {
			uint64_t blk = rnd ? bench_rand(&rng) % nblocks : seq++ % nblocks;
			char *at = mem + blk * o->bs;
			int rd = o->rw == RW_READ || o->rw == RW_RANDREAD ||
			         (o->rw == RW_RANDRW && bench_rand(&rng) % 100 < o->rwmix);

			if (rd)
				memcpy(buf, at, o->bs);
			else
				memcpy(at, buf, o->bs);
			/* Keep the compiler from dropping copies whose result is unused. */
			__asm__ volatile("" : : "r"(buf), "r"(at) : "memory");
			r->reads += (uint64_t)rd;
			r->copies++;
			if (o->ios && r->copies >= o->ios)
				break;
		}
		now = bench_now();
		if (r->copies % CLOCK_EVERY == 0 && now - prev < r->best_batch_ns)
			r->best_batch_ns = now - prev;
		prev = now;
		if ((o->ios && r->copies >= o->ios) || now - t0 >= deadline ||
		    bench_stop_requested())
			break;
	}
	r->ns = now - t0;
	r->bytes = r->copies * o->bs;
}

int bench_memcpy(struct sn_dev *dev, const struct bench_opts *o)
{
	struct copy_result r;
	struct sn_dev_info in = { 0 };
	const char *target = "anonymous memory";
	char *mem = NULL, *region, *buf;
	uint64_t size = o->size ? o->size : 64ull << 20, anon_len = 0;
	void *base;
	double secs, per_s, best;

	if (dev) {
		sn_dev_info(dev, &in);
		if (sn_dev_map(dev, &base)) {
			fprintf(stderr,
			        "snstore bench: --memcpy needs a byte-addressable device (mmap:, "
			        "dax:, pmem:, mem:), or no --dev for anonymous memory: %s\n",
			        sn_errmsg());
			return 2;
		}
		region = (char *)base + o->offset;
	} else {
		anon_len = size;
		mem = mmap(NULL, anon_len, PROT_READ | PROT_WRITE,
		           MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (mem == MAP_FAILED) {
			fprintf(stderr, "snstore bench: cannot map %" PRIu64 " bytes\n", size);
			return 1;
		}
		memset(mem, 0x5a, anon_len); /* every page faulted and dirty, as a mapping */
		region = mem;
	}
	if (size < o->bs) {
		fprintf(stderr, "snstore bench: --size is smaller than one --bs block\n");
		if (mem)
			munmap(mem, anon_len);
		return 2;
	}
	buf = aligned_alloc(4096, (o->bs + 4095) / 4096 * 4096);
	if (!buf) {
		if (mem)
			munmap(mem, anon_len);
		return 1;
	}
	memset(buf, 0xa5, o->bs);
	copy_loop(o, region, size - size % o->bs, buf, &r);
	free(buf);
	if (mem)
		munmap(mem, anon_len);

	secs = (double)r.ns / 1e9;
	best = r.best_batch_ns != UINT64_MAX ? (double)r.best_batch_ns / CLOCK_EVERY : 0;
	per_s = secs > 0 ? (double)r.copies / secs : 0;
	if (o->json) {
		printf("{\"memcpy\": true, \"target\": ");
		bench_json_str(stdout, dev ? o->uri : target);
		printf(", \"rw\": \"%s\", \"bs\": %" PRIu64 ", \"size\": %" PRIu64
		       ", \"runtime_s\": %.3f, \"copies\": %" PRIu64 ", \"reads\": %" PRIu64
		       ", \"copies_per_s\": %.1f, \"bw_bytes\": %.0f, \"ns_per_copy\": %.1f"
		       ", \"best_ns_per_copy\": %.1f}\n",
		       bench_rw_name(o->rw), o->bs, size, secs, r.copies, r.reads, per_s,
		       per_s * (double)o->bs, per_s > 0 ? 1e9 / per_s : 0, best);
		return 0;
	}
	printf("memcpy reference: %s, bs %" PRIu64 ", region %" PRIu64 " MiB of %s%s "
	       "(no persist, no queue)\n",
	       bench_rw_name(o->rw), o->bs, size >> 20, dev ? "the mapping of " : "",
	       dev ? o->uri : target);
	printf("result: %.0f copies/s, %.1f MiB/s, %.1f ns per copy (%.1f in the fastest batch "
	       "of %d), %" PRIu64 " copies in %.2f s\n",
	       per_s, per_s * (double)o->bs / 1048576.0, per_s > 0 ? 1e9 / per_s : 0, best,
	       CLOCK_EVERY, r.copies, secs);
	return 0;
}
