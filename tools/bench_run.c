/* SPDX-License-Identifier: MIT */
/*
 * bench_run.c — the job engine of `snstore bench`: one pinned thread and one queue per
 * job, qd requests kept in flight, latency from one clock reading per submit call and
 * one per reap call. Also the file layout pass and --verify.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "bench.h"

#define FLUSH_TAG UINT64_MAX

struct job {
	const struct bench_opts *o;
	struct sn_dev *dev;
	unsigned idx;
	pthread_barrier_t *start;
	uint64_t region_off, region_blocks; /* in bs blocks from o->offset */
	uint64_t rng;
	uint64_t done; /* completions, for the progress line (relaxed atomics) */
	int finished;
	struct bench_job_result res;
};

/* xorshift64*: one multiply per offset. */
static inline uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t seed_for(uint64_t seed, unsigned job)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull * (job + 1);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1;
}

/* --cpus: job i runs on the (i mod n)-th CPU of the list; without it the scheduler
 * places jobs, as fio does by default. */
static void pin(const struct bench_opts *o, unsigned job)
{
	cpu_set_t set;

	if (!o->ncpus)
		return;
	CPU_ZERO(&set);
	CPU_SET((int)o->cpus[job % o->ncpus], &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void job_fail(struct job *j, int err, const char *what)
{
	if (j->res.err)
		return;
	j->res.err = err;
	snprintf(j->res.errmsg, sizeof(j->res.errmsg), "job %u: %s: %s", j->idx, what,
	         *sn_errmsg() ? sn_errmsg() : sn_strerror(err));
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	const struct bench_opts *o = j->o;
	const int is_rand = o->rw >= RW_RANDREAD, mixed = o->rw == RW_RANDRW;
	const int all_write = o->rw == RW_WRITE || o->rw == RW_RANDWRITE;
	const uint32_t mix = (uint32_t)((uint64_t)o->rwmix * 65536 / 100);
	const unsigned qd = o->qd;
	uint8_t *slot_write = NULL;
	uint64_t *t_sub = NULL, seq = 0, issued = 0, writes_since_flush = 0;
	uint64_t t0, t_measure, t_end, now, last = 0;
	struct sn_cqe *cqe = NULL;
	struct sn_io *batch = NULL;
	unsigned *free_slots = NULL, nfree = qd, inflight = 0, flush_inflight = 0;
	struct sn_queue *q = NULL;
	uint64_t flush_t = 0;
	int measuring, err;
	char *buf = NULL;

	pin(o, j->idx);
	j->res.cpu = (unsigned)sched_getcpu();
	sn_hist_init(&j->res.lat);
	sn_hist_init(&j->res.flush);
	err = sn_queue_create(j->dev, qd + (o->fsync_every ? 1 : 0), &q);
	if (!err)
		err = sn_queue_buf_alloc(q, (size_t)(qd * o->bs), (void **)&buf);
	t_sub = calloc(qd, sizeof(*t_sub));
	slot_write = calloc(qd, 1);
	cqe = calloc(qd + 1, sizeof(*cqe));
	batch = calloc(qd, sizeof(*batch));
	free_slots = calloc(qd, sizeof(*free_slots));
	if (!err && (!t_sub || !slot_write || !cqe || !batch || !free_slots))
		err = -ENOMEM;
	if (err)
		job_fail(j, err, "setup");
	for (unsigned i = 0; buf && i < qd * o->bs; i++)
		buf[i] = (char)(next_rand(&j->rng) | 1);
	for (unsigned i = 0; free_slots && i < qd; i++)
		free_slots[i] = qd - 1 - i;
	pthread_barrier_wait(j->start);
	if (err)
		goto out;

	t0 = bench_now();
	t_measure = t0 + o->ramp_s * 1000000000ull;
	t_end = o->runtime_s ? t_measure + o->runtime_s * 1000000000ull : UINT64_MAX;
	measuring = o->ramp_s == 0;
	now = t0;
	for (;;) {
		int stop = bench_stop_requested() || now >= t_end || j->res.err ||
		           (o->ios && issued >= o->ios);
		unsigned n = 0;
		int r;

		/* Fill every free slot, handing them to the device batch by batch. */
		while (!stop && nfree && !(o->ios && issued >= o->ios)) {
			unsigned slot = free_slots[--nfree];
			struct sn_io *io = &batch[n++];
			uint64_t blk;
			int is_write;

			if (is_rand)
				blk = (uint64_t)(((unsigned __int128)next_rand(&j->rng) *
				                  j->region_blocks) >>
				                 64);
			else
				blk = seq++ % j->region_blocks;
			is_write = mixed ? (uint32_t)(next_rand(&j->rng) >> 48) >= mix : all_write;
			sn_io_prep(io, is_write ? SN_OP_WRITE : SN_OP_READ, buf + slot * o->bs,
			           (uint32_t)o->bs, o->offset + (j->region_off + blk) * o->bs,
			           slot);
			slot_write[slot] = (uint8_t)is_write;
			issued++;
			if (n == o->batch || !nfree || (o->ios && issued >= o->ios)) {
				uint64_t t = bench_now();

				for (unsigned i = 0; i < n; i++)
					t_sub[batch[i].user_data] = t;
				for (unsigned i = 0; i < n;) {
					r = sn_queue_submit(q, batch + i, n - i);
					if (r < 0) {
						job_fail(j, r, "submit");
						stop = 1;
						break;
					}
					i += (unsigned)r;
				}
				if (stop)
					break;
				inflight += n;
				n = 0;
			}
		}
		if (o->fsync_every && writes_since_flush >= o->fsync_every && !flush_inflight &&
		    !j->res.err) {
			struct sn_io f;

			sn_io_flush(&f, FLUSH_TAG);
			flush_t = bench_now();
			if ((r = sn_queue_submit(q, &f, 1)) < 0)
				job_fail(j, r, "flush submit");
			else
				flush_inflight = 1;
			writes_since_flush = 0;
		}
		if (!inflight && !flush_inflight)
			break;
		r = sn_queue_reap(q, cqe, qd + 1, 1);
		now = bench_now();
		if (r < 0) {
			job_fail(j, r, "reap");
			break;
		}
		if (!measuring && now >= t_measure)
			measuring = 1;
		for (int i = 0; i < r; i++) {
			uint64_t ud = cqe[i].user_data;

			if (ud == FLUSH_TAG) {
				flush_inflight = 0;
				if (cqe[i].res < 0)
					job_fail(j, (int)cqe[i].res, "flush");
				else if (measuring) {
					sn_hist_add(&j->res.flush, now - flush_t);
					j->res.flushes++;
				}
				continue;
			}
			inflight--;
			free_slots[nfree++] = (unsigned)ud;
			if (cqe[i].res != (int64_t)o->bs) {
				job_fail(j, cqe[i].res < 0 ? (int)cqe[i].res : -EIO,
				         slot_write[ud] ? "write" : "read");
				continue;
			}
			writes_since_flush += slot_write[ud];
			if (!measuring)
				continue;
			sn_hist_add(&j->res.lat, now - t_sub[ud]);
			j->res.ios++;
			j->res.writes += slot_write[ud];
			last = now;
		}
		__atomic_store_n(&j->done, j->res.ios, __ATOMIC_RELAXED);
	}
	j->res.elapsed_ns = last > t_measure ? last - t_measure : 0;
	j->res.reads = j->res.ios - j->res.writes;
	j->res.bytes = j->res.ios * o->bs;
out:
	if (q)
		sn_queue_destroy(q);
	free(t_sub);
	free(slot_write);
	free(cqe);
	free(batch);
	free(free_slots);
	__atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void progress_line(struct job *jobs, unsigned n, const struct bench_opts *o, uint64_t t0,
                          uint64_t *prev_done, uint64_t *prev_t)
{
	uint64_t done = 0, now = bench_now();
	double dt = (double)(now - *prev_t) / 1e9, iops;

	for (unsigned i = 0; i < n; i++)
		done += __atomic_load_n(&jobs[i].done, __ATOMIC_RELAXED);
	iops = dt > 0 ? (double)(done - *prev_done) / dt : 0;
	if (o->runtime_s)
		fprintf(stderr, "\r  [%3.0f/%" PRIu64 " s] %10.0f IOPS %9.1f MiB/s   ",
		        (double)(now - t0) / 1e9, o->runtime_s + o->ramp_s, iops,
		        iops * (double)o->bs / 1048576.0);
	else
		fprintf(stderr, "\r  [%" PRIu64 "/%" PRIu64 " ios] %10.0f IOPS %9.1f MiB/s   ",
		        done, o->ios * n, iops, iops * (double)o->bs / 1048576.0);
	*prev_done = done;
	*prev_t = now;
}

int bench_run(struct sn_dev *dev, const struct bench_opts *o, struct bench_result *r, int progress)
{
	uint64_t blocks = o->size / o->bs, t0, prev_done = 0, prev_t, tick;
	pthread_barrier_t start;
	pthread_t *tid;
	struct job *jobs;
	unsigned live;
	int failed = 0;

	memset(r, 0, sizeof(*r));
	progress = progress && isatty(2);
	jobs = calloc(o->jobs, sizeof(*jobs));
	tid = calloc(o->jobs, sizeof(*tid));
	r->jobs = calloc(o->jobs, sizeof(*r->jobs));
	if (!jobs || !tid || !r->jobs) {
		fprintf(stderr, "snstore bench: out of memory\n");
		free(jobs);
		free(tid);
		return -1;
	}
	r->njobs = o->jobs;
	pthread_barrier_init(&start, NULL, o->jobs + 1);
	bench_request_stop(0);
	for (unsigned i = 0; i < o->jobs; i++) {
		struct job *j = &jobs[i];

		j->o = o;
		j->dev = dev;
		j->idx = i;
		j->start = &start;
		j->rng = seed_for(o->seed, i);
		if (o->rw >= RW_RANDREAD) {
			j->region_blocks = blocks;
		} else {
			/* Sequential jobs each stream through a slice of their own. */
			j->region_off = blocks / o->jobs * i;
			j->region_blocks = blocks / o->jobs;
		}
		if (pthread_create(&tid[i], NULL, job_main, j)) {
			fprintf(stderr, "snstore bench: cannot start job %u\n", i);
			exit(1);
		}
	}
	pthread_barrier_wait(&start);
	t0 = prev_t = tick = bench_now();
	do {
		usleep(50000);
		live = 0;
		for (unsigned i = 0; i < o->jobs; i++)
			live += !__atomic_load_n(&jobs[i].finished, __ATOMIC_ACQUIRE);
		if (progress && bench_now() - tick >= 1000000000ull) {
			tick = bench_now();
			progress_line(jobs, o->jobs, o, t0, &prev_done, &prev_t);
		}
	} while (live);
	if (progress)
		fprintf(stderr, "\r%70s\r", "");
	sn_hist_init(&r->total.lat);
	sn_hist_init(&r->total.flush);
	for (unsigned i = 0; i < o->jobs; i++) {
		struct bench_job_result *jr = &jobs[i].res, *t = &r->total;

		pthread_join(tid[i], NULL);
		r->jobs[i] = *jr;
		t->ios += jr->ios;
		t->reads += jr->reads;
		t->writes += jr->writes;
		t->bytes += jr->bytes;
		t->flushes += jr->flushes;
		if (jr->elapsed_ns > t->elapsed_ns)
			t->elapsed_ns = jr->elapsed_ns;
		sn_hist_merge(&t->lat, &jr->lat);
		sn_hist_merge(&t->flush, &jr->flush);
		if (jr->err) {
			fprintf(stderr, "snstore bench: %s\n", jr->errmsg);
			if (!t->err) {
				t->err = jr->err;
				snprintf(t->errmsg, sizeof(t->errmsg), "%s", jr->errmsg);
			}
			failed = 1;
		}
	}
	pthread_barrier_destroy(&start);
	free(jobs);
	free(tid);
	return failed ? -1 : 0;
}

void bench_result_free(struct bench_result *r)
{
	free(r->jobs);
	r->jobs = NULL;
}

/* Write [offset, offset+size) sequentially in 1 MiB requests and flush, as fio lays out a
 * new file: reads of never-written extents return zeros without touching the disk. */
int bench_layout(struct sn_dev *dev, const struct bench_opts *o, int progress)
{
	const uint32_t chunk = 1u << 20;
	uint64_t pos = 0, t_last = bench_now();
	struct sn_queue *q;
	struct sn_cqe cqe[8];
	struct sn_io io;
	unsigned inflight = 0;
	char *buf;
	int err;

	progress = progress && isatty(2);
	if (sn_queue_create(dev, 8, &q)) {
		fprintf(stderr, "snstore bench: layout: %s\n", sn_errmsg());
		return -1;
	}
	if (sn_queue_buf_alloc(q, 8 * chunk, (void **)&buf)) {
		sn_queue_destroy(q);
		fprintf(stderr, "snstore bench: layout: %s\n", sn_errmsg());
		return -1;
	}
	for (unsigned i = 0; i < 8 * chunk; i++)
		buf[i] = (char)(i * 2654435761u >> 24 | 1);
	while (pos < o->size || inflight) {
		while (pos < o->size && inflight < 8) {
			uint32_t n = (uint32_t)(o->size - pos < chunk ? o->size - pos : chunk);

			sn_io_write(&io, buf + (pos / chunk % 8) * chunk, n, o->offset + pos, 0);
			if ((err = sn_queue_submit(q, &io, 1)) < 0)
				goto fail;
			pos += n;
			inflight++;
		}
		err = sn_queue_reap(q, cqe, 8, 1);
		if (err < 0)
			goto fail;
		for (int i = 0; i < err; i++)
			if (cqe[i].res < 0) {
				err = (int)cqe[i].res;
				goto fail;
			}
		inflight -= (unsigned)err;
		if (progress && bench_now() - t_last > 500000000ull) {
			t_last = bench_now();
			fprintf(stderr, "\r  laying out: %3.0f%%",
			        100.0 * (double)pos / (double)o->size);
		}
	}
	err = sn_queue_flush(q);
	if (progress)
		fprintf(stderr, "\r%30s\r", "");
	if (err)
		goto fail;
	sn_queue_destroy(q);
	return 0;
fail:
	fprintf(stderr, "snstore bench: layout failed: %s\n",
	        *sn_errmsg() ? sn_errmsg() : sn_strerror(err));
	sn_queue_destroy(q);
	return -1;
}

/* --verify: every block gets a self-describing pattern, then is read back and checked. */
#define VERIFY_MAGIC 0x796669726576736eull /* "nsverify" */

struct vhdr {
	uint64_t magic;
	uint64_t offset;
	uint64_t seed;
	uint32_t len;
	uint32_t job;
};

struct vjob {
	struct sn_dev *dev;
	const struct bench_opts *o;
	unsigned idx;
	uint64_t first, n; /* blocks of this job's slice */
	uint64_t perm_a;   /* block i of the walk is first + (perm_a * i) mod n */
	uint64_t written, verified, mismatches;
	int err;
	char errmsg[256];
};

static pthread_mutex_t g_print_lock = PTHREAD_MUTEX_INITIALIZER;

static void fill_pattern(char *p, uint64_t len, uint64_t off, uint64_t seed, unsigned job)
{
	struct vhdr h = { VERIFY_MAGIC, off, seed, (uint32_t)len, job };
	uint64_t s = seed_for(seed ^ off, 0);

	memcpy(p, &h, sizeof(h));
	for (uint64_t i = sizeof(h); i + 8 <= len; i += 8) {
		uint64_t v = next_rand(&s);

		memcpy(p + i, &v, 8);
	}
	for (uint64_t i = len - len % 8; i < len && i >= sizeof(h); i++)
		p[i] = (char)(off + i);
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

static int verify_phase(struct vjob *v, struct sn_queue *q, char *buf, char *want, int write)
{
	const struct bench_opts *o = v->o;
	const int is_rand = o->rw >= RW_RANDREAD;
	uint64_t next = 0, done = 0, *slot_off;
	unsigned *free_slots, nfree = o->qd;
	struct sn_cqe *cqe;
	int err = 0;

	slot_off = calloc(o->qd, sizeof(*slot_off));
	free_slots = calloc(o->qd, sizeof(*free_slots));
	cqe = calloc(o->qd, sizeof(*cqe));
	if (!slot_off || !free_slots || !cqe) {
		err = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < o->qd; i++)
		free_slots[i] = i;
	while (done < v->n && !err) {
		int r;

		while (next < v->n && nfree) {
			unsigned slot = free_slots[--nfree];
			uint64_t blk = is_rand ? (unsigned __int128)v->perm_a * next % v->n : next;
			uint64_t off = o->offset + (v->first + blk) * o->bs;
			char *p = buf + (uint64_t)slot * o->bs;
			struct sn_io io;

			if (write)
				fill_pattern(p, o->bs, off, o->seed, v->idx);
			sn_io_prep(&io, write ? SN_OP_WRITE : SN_OP_READ, p, (uint32_t)o->bs, off,
			           slot);
			slot_off[slot] = off;
			if ((r = sn_queue_submit(q, &io, 1)) < 0) {
				err = r;
				goto out;
			}
			next++;
		}
		r = sn_queue_reap(q, cqe, o->qd, 1);
		if (r < 0) {
			err = r;
			break;
		}
		for (int i = 0; i < r; i++) {
			unsigned slot = (unsigned)cqe[i].user_data;
			char *p = buf + (uint64_t)slot * o->bs;

			free_slots[nfree++] = slot;
			done++;
			if (cqe[i].res != (int64_t)o->bs) {
				err = cqe[i].res < 0 ? (int)cqe[i].res : -EIO;
				continue;
			}
			if (write) {
				v->written++;
				continue;
			}
			fill_pattern(want, o->bs, slot_off[slot], o->seed, v->idx);
			if (memcmp(p, want, o->bs) == 0) {
				v->verified++;
				continue;
			}
			if (v->mismatches++ < 5) {
				const struct vhdr *h = (const struct vhdr *)p;

				pthread_mutex_lock(&g_print_lock);
				fprintf(stderr,
				        "  mismatch at offset %" PRIu64 ": header says offset "
				        "%" PRIu64 ", magic %s\n",
				        slot_off[slot], h->offset,
				        h->magic == VERIFY_MAGIC ? "ok" : "wrong");
				pthread_mutex_unlock(&g_print_lock);
			}
		}
	}
out:
	if (err) {
		/* Collect what is still in flight before the buffers go away. */
		while (sn_queue_inflight(q) && sn_queue_reap(q, cqe, o->qd, 1) >= 0)
			;
		v->err = err;
		snprintf(v->errmsg, sizeof(v->errmsg), "job %u: %s failed: %s", v->idx,
		         write ? "write" : "read", *sn_errmsg() ? sn_errmsg() : sn_strerror(err));
	}
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

	pin(v->o, v->idx);
	err = sn_queue_create(v->dev, v->o->qd, &q);
	if (err) {
		v->err = err;
		snprintf(v->errmsg, sizeof(v->errmsg), "job %u: %s", v->idx, sn_errmsg());
		return NULL;
	}
	want = malloc(v->o->bs);
	if (!want || sn_queue_buf_alloc(q, (size_t)(v->o->qd * v->o->bs), (void **)&buf)) {
		v->err = -ENOMEM;
		snprintf(v->errmsg, sizeof(v->errmsg), "job %u: out of memory", v->idx);
	} else if (!verify_phase(v, q, buf, want, 1)) {
		if ((err = sn_queue_flush(q))) {
			v->err = err;
			snprintf(v->errmsg, sizeof(v->errmsg), "job %u: flush: %s", v->idx,
			         sn_strerror(err));
		} else {
			verify_phase(v, q, buf, want, 0);
		}
	}
	free(want);
	sn_queue_destroy(q);
	return NULL;
}

int bench_verify(struct sn_dev *dev, const struct bench_opts *o)
{
	uint64_t blocks = o->size / o->bs, written = 0, verified = 0, bad = 0, t0 = bench_now();
	struct vjob *v = calloc(o->jobs, sizeof(*v));
	pthread_t *tid = calloc(o->jobs, sizeof(*tid));
	int failed = 0;

	if (!v || !tid || o->bs < sizeof(struct vhdr)) {
		fprintf(stderr, "snstore bench: --verify needs --bs of at least %zu bytes\n",
		        sizeof(struct vhdr));
		free(v);
		free(tid);
		return -1;
	}
	for (unsigned i = 0; i < o->jobs; i++) {
		v[i].dev = dev;
		v[i].o = o;
		v[i].idx = i;
		v[i].first = blocks / o->jobs * i;
		v[i].n = blocks / o->jobs;
		/* An odd multiplier coprime with n walks every block exactly once. */
		v[i].perm_a = (seed_for(o->seed, i) | 1) % (v[i].n ? v[i].n : 1);
		while (v[i].n > 1 && gcd(v[i].perm_a, v[i].n) != 1)
			v[i].perm_a++;
		if (!v[i].perm_a)
			v[i].perm_a = 1;
		pthread_create(&tid[i], NULL, verify_main, &v[i]);
	}
	for (unsigned i = 0; i < o->jobs; i++) {
		pthread_join(tid[i], NULL);
		written += v[i].written;
		verified += v[i].verified;
		bad += v[i].mismatches;
		if (v[i].err) {
			fprintf(stderr, "snstore bench: %s\n", v[i].errmsg);
			failed = 1;
		}
	}
	if (o->json) {
		printf("{\"verify\": true, \"dev\": ");
		bench_json_str(stdout, o->dev);
		printf(", \"bs\": %" PRIu64 ", \"blocks_written\": %" PRIu64
		       ", \"blocks_verified\": "
		       "%" PRIu64 ", \"mismatches\": %" PRIu64
		       ", \"errors\": %d, \"elapsed_s\": %.3f}\n",
		       o->bs, written, verified, bad, failed, (double)(bench_now() - t0) / 1e9);
	} else
		printf("verify %s: %" PRIu64 " blocks of %" PRIu64 " bytes written, %" PRIu64
		       " read back intact, %" PRIu64 " mismatched%s (%.1f s)\n",
		       o->dev, written, o->bs, verified, bad, failed ? ", I/O errors" : "",
		       (double)(bench_now() - t0) / 1e9);
	free(v);
	free(tid);
	return failed || bad ? -1 : 0;
}
