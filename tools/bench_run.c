/* SPDX-License-Identifier: MIT */
/*
 * bench_run.c — the job engine of `snstore bench`: one thread and one queue per job (never
 * shared), qd requests kept in flight, latency from one clock reading per submit call and
 * one per reap call so the loop costs little more than the engine. Also the layout pass
 * that writes a new file before it is read.
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

/* The 4-byte fields go in pairs: no holes, a job is a cache line smaller and the worker's
 * state spans two cache lines, not three (clang-analyzer's optin.performance.Padding). */
struct job {
	_Alignas(64) const struct bench_opts *o; /* jobs never share a cache line */
	struct sn_dev *dev;
	unsigned idx;
	int finished;                       /* release: the result is complete */
	uint64_t region_off, region_blocks; /* in bs blocks from o->offset */
	uint64_t rng;
	uint64_t done; /* completions, for the progress line (relaxed atomics) */
	struct sn_rt_latch *all_done;
	struct bench_job_result res;

	/* The job's state on its worker. */
	struct sn_queue *q;
	struct slot *slots;
	struct sn_io *batch;
	unsigned *free_slots, nfree, inflight, flush_inflight;
	int measuring, stopping;
	uint64_t seq, issued, writes_since_flush;
	uint64_t t_measure, t_end, last, flush_t;
	char *buf;
	_Alignas(64) char end[0];
};

/* --cpus: job i runs on the (i mod n)-th CPU of the list; without it the scheduler
 * places jobs, as fio does by default. For threads outside the runtime (--verify). */
void bench_pin(const struct bench_opts *o, unsigned job)
{
	cpu_set_t set;

	if (!o->ncpus)
		return;
	CPU_ZERO(&set);
	CPU_SET((int)o->cpus[job % o->ncpus], &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* The CPU list of --cpus, one per job, for the runtime (NULL: let the scheduler place). */
static unsigned *job_cpus(const struct bench_opts *o)
{
	unsigned *c;

	if (!o->ncpus || !(c = calloc(o->jobs, sizeof(*c))))
		return NULL;
	for (unsigned i = 0; i < o->jobs; i++)
		c[i] = o->cpus[i % o->ncpus];
	return c;
}

/* A request in flight: when it was submitted, and what it was, for the error message. */
struct slot {
	uint64_t t_sub;
	uint64_t off;
	uint8_t write;
};

/* A call into the library failed: sn_errmsg() has the specific reason. */
static void job_fail(struct job *j, int err, const char *what)
{
	j->res.errors++;
	if (j->res.err)
		return;
	j->res.err = err;
	snprintf(j->res.errmsg, sizeof(j->res.errmsg), "job %u: %s: %s", j->idx, what,
	         *sn_errmsg() ? sn_errmsg() : sn_strerror(err));
}

/* A request completed with an error or a short count: sn_errmsg() is not about it. */
static void job_fail_io(struct job *j, int64_t res, const char *what, uint64_t off, uint64_t len)
{
	j->res.errors++;
	if (j->res.err)
		return;
	j->res.err = res < 0 ? (int)res : -EIO;
	if (!len) /* flush */
		snprintf(j->res.errmsg, sizeof(j->res.errmsg), "job %u: %s: %s", j->idx, what,
		         sn_strerror(j->res.err));
	else if (res < 0)
		snprintf(j->res.errmsg, sizeof(j->res.errmsg),
		         "job %u: %s at offset %" PRIu64 ": %s", j->idx, what, off,
		         sn_strerror((int)res));
	else
		snprintf(j->res.errmsg, sizeof(j->res.errmsg),
		         "job %u: %s at offset %" PRIu64 ": %" PRId64 " of %" PRIu64 " bytes",
		         j->idx, what, off, res, len);
}

/* Nothing left in flight and nothing more to start: hand the result over. */
static void job_finish(struct job *j)
{
	if (j->q) {
		sn_rt_queue_unwatch(j->q);
		sn_queue_destroy(j->q);
		j->q = NULL;
	}
	j->res.elapsed_ns = j->last > j->t_measure ? j->last - j->t_measure : 0;
	j->res.reads = j->res.ios - j->res.writes;
	j->res.bytes = j->res.ios * j->o->bs;
	free(j->slots);
	free(j->batch);
	free(j->free_slots);
	j->slots = NULL;
	j->batch = NULL;
	j->free_slots = NULL;
	__atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
	sn_rt_latch_done(j->all_done);
}

/* Fill every free slot, handing requests to the device batch by batch; then a flush
 * when --fsync-every says so. */
static void job_fill(struct job *j, uint64_t now)
{
	const struct bench_opts *o = j->o;
	const int is_rand = o->rw >= RW_RANDREAD, mixed = o->rw == RW_RANDRW;
	const int all_write = o->rw == RW_WRITE || o->rw == RW_RANDWRITE;
	const uint32_t mix = (uint32_t)((uint64_t)o->rwmix * 65536 / 100);
	unsigned n = 0;
	int r;

	j->stopping |= bench_stop_requested() || now >= j->t_end || j->res.err;
	while (!j->stopping && j->nfree && !(o->ios && j->issued >= o->ios)) {
		unsigned slot = j->free_slots[--j->nfree];
		struct sn_io *io = &j->batch[n++];
		uint64_t blk;
		int is_write;

		/* Multiply-shift and compare-and-wrap: no division per request. */
		if (is_rand) {
			blk = (uint64_t)(((unsigned __int128)bench_rand(&j->rng) *
			                  j->region_blocks) >>
			                 64);
		} else {
			blk = j->seq;
			if (++j->seq == j->region_blocks)
				j->seq = 0;
		}
		is_write = mixed ? (uint32_t)(bench_rand(&j->rng) >> 48) >= mix : all_write;
		sn_io_prep(io, is_write ? SN_OP_WRITE : SN_OP_READ, j->buf + slot * o->bs,
		           (uint32_t)o->bs, o->offset + (j->region_off + blk) * o->bs, slot);
		j->slots[slot].write = (uint8_t)is_write;
		j->slots[slot].off = io->offset;
		j->issued++;
		if (n == o->batch || !j->nfree || (o->ios && j->issued >= o->ios)) {
			uint64_t t = bench_now();
			unsigned sent = 0;
			int full = 0;

			for (unsigned i = 0; i < n; i++)
				j->slots[j->batch[i].user_data].t_sub = t;
			while (sent < n) {
				r = sn_queue_submit(j->q, j->batch + sent, n - sent);
				/* Full: wait for completions. With nothing in flight it never drains. */
				if (r == -EAGAIN && j->inflight + sent) {
					full = 1;
					break;
				}
				if (r < 0) {
					job_fail(j, r, "submit");
					j->stopping = 1;
					break;
				}
				sent += (unsigned)r;
			}
			j->inflight += sent;
			/* What the queue did not take is drawn again later. */
			for (unsigned i = sent; i < n; i++)
				j->free_slots[j->nfree++] = (unsigned)j->batch[i].user_data;
			j->issued -= n - sent;
			n = 0;
			if (full)
				break;
		}
	}
	if (o->fsync_every && j->writes_since_flush >= o->fsync_every && !j->flush_inflight &&
	    !j->res.err) {
		struct sn_io f;

		sn_io_flush(&f, FLUSH_TAG);
		j->flush_t = bench_now();
		r = sn_queue_submit(j->q, &f, 1);
		if (r >= 0) {
			j->flush_inflight = 1;
			j->writes_since_flush = 0;
		} else if (r != -EAGAIN) { /* full: try again after the next completion */
			job_fail(j, r, "flush submit");
		}
	}
	if (!j->inflight && !j->flush_inflight)
		job_finish(j);
}

/* The worker reaped completions of the job's queue: account for them, start more. */
static void job_cqes(void *arg, const struct sn_cqe *cqe, unsigned n)
{
	struct job *j = arg;
	uint64_t now = bench_now();

	if (!j->measuring && now >= j->t_measure)
		j->measuring = 1;
	for (unsigned i = 0; i < n; i++) {
		uint64_t ud = cqe[i].user_data;

		if (ud == FLUSH_TAG) {
			j->flush_inflight = 0;
			if (cqe[i].res < 0)
				job_fail_io(j, cqe[i].res, "flush", 0, 0);
			else if (j->measuring) {
				sn_hist_add(&j->res.flush, now - j->flush_t);
				j->res.flushes++;
			}
			continue;
		}
		j->inflight--;
		j->free_slots[j->nfree++] = (unsigned)ud;
		if (cqe[i].res != (int64_t)j->o->bs) {
			job_fail_io(j, cqe[i].res, j->slots[ud].write ? "write" : "read",
			            j->slots[ud].off, j->o->bs);
			continue;
		}
		j->writes_since_flush += j->slots[ud].write;
		if (!j->measuring)
			continue;
		sn_hist_add(&j->res.lat, now - j->slots[ud].t_sub);
		j->res.ios++;
		j->res.writes += j->slots[ud].write;
		j->last = now;
	}
	__atomic_store_n(&j->done, j->res.ios, __ATOMIC_RELAXED);
	job_fill(j, now);
}

/* On the job's worker: its own queue and buffers, then the first requests. */
static void job_start(void *arg)
{
	struct job *j = arg;
	const struct bench_opts *o = j->o;
	const unsigned qd = o->qd;
	size_t len = (size_t)qd * o->bs;
	uint64_t t0;
	int err;

	j->res.cpu = (unsigned)sched_getcpu();
	sn_hist_init(&j->res.lat);
	sn_hist_init(&j->res.flush);
	err = sn_queue_create(j->dev, qd + (o->fsync_every ? 1 : 0), &j->q);
	if (!err)
		err = sn_queue_buf_alloc(j->q, len, (void **)&j->buf);
	if (!err)
		err = sn_rt_queue_watch(j->q, job_cqes, j);
	j->slots = calloc(qd, sizeof(*j->slots));
	j->batch = calloc(qd, sizeof(*j->batch));
	j->free_slots = calloc(qd, sizeof(*j->free_slots));
	if (!err && (!j->slots || !j->batch || !j->free_slots))
		err = -ENOMEM;
	if (err) {
		job_fail(j, err, "setup");
		job_finish(j);
		return;
	}
	/* Non-zero random bytes, so compressing or deduplicating devices cannot cheat. */
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = bench_rand(&j->rng) | 0x0101010101010101ull;

		memcpy(j->buf + i, &v, 8);
	}
	for (size_t i = len & ~(size_t)7; i < len; i++)
		j->buf[i] = (char)(bench_rand(&j->rng) | 1);
	for (unsigned i = 0; i < qd; i++)
		j->free_slots[i] = qd - 1 - i;
	j->nfree = qd;
	t0 = bench_now();
	j->t_measure = t0 + o->ramp_s * 1000000000ull;
	j->t_end = o->runtime_s ? j->t_measure + o->runtime_s * 1000000000ull : UINT64_MAX;
	j->measuring = o->ramp_s == 0;
	job_fill(j, t0);
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

/* Jobs are runtime workers: one per job, each owning its queue. */
int bench_run(struct sn_dev *dev, const struct bench_opts *o, struct bench_result *r, int progress)
{
	uint64_t blocks = o->size / o->bs, t0, prev_done = 0, prev_t, tick;
	struct sn_rt_opts ro = { .workers = o->jobs, .mode = o->rt_mode };
	struct sn_rt_latch all_done;
	struct sn_rt *rt = NULL;
	unsigned *cpus = job_cpus(o);
	struct job *jobs;
	unsigned live;
	int failed = 0;

	memset(r, 0, sizeof(*r));
	progress = progress && isatty(2);
	jobs = aligned_alloc(64, o->jobs * sizeof(*jobs));
	if (jobs)
		memset(jobs, 0, o->jobs * sizeof(*jobs));
	r->jobs = calloc(o->jobs, sizeof(*r->jobs));
	ro.cpus = cpus;
	ro.flags = cpus ? 0 : SN_RT_NOPIN;
	if (!jobs || !r->jobs || sn_rt_create(&ro, &rt)) {
		fprintf(stderr, "snstore bench: cannot start %u jobs: %s\n", o->jobs,
		        jobs && r->jobs ? sn_errmsg() : "out of memory");
		free(jobs);
		free(cpus);
		return -1;
	}
	free(cpus);
	r->njobs = o->jobs;
	bench_request_stop(0);
	sn_rt_latch_init(&all_done, o->jobs);
	for (unsigned i = 0; i < o->jobs; i++) {
		struct job *j = &jobs[i];

		j->o = o;
		j->dev = dev;
		j->idx = i;
		j->all_done = &all_done;
		j->rng = bench_seed(o->seed, i);
		if (o->rw >= RW_RANDREAD) {
			j->region_blocks = blocks;
		} else {
			/* Sequential jobs each stream through a slice of their own. */
			j->region_off = blocks * i / o->jobs;
			j->region_blocks = blocks * (i + 1) / o->jobs - j->region_off;
		}
	}
	for (unsigned i = 0; i < o->jobs; i++)
		sn_rt_call(rt, i, job_start, &jobs[i]);
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
	sn_rt_latch_wait(&all_done);
	sn_rt_destroy(rt);
	if (progress)
		fprintf(stderr, "\r%70s\r", "");
	sn_hist_init(&r->total.lat);
	sn_hist_init(&r->total.flush);
	for (unsigned i = 0; i < o->jobs; i++) {
		struct bench_job_result *jr = &jobs[i].res, *t = &r->total;

		r->jobs[i] = *jr;
		t->ios += jr->ios;
		t->reads += jr->reads;
		t->writes += jr->writes;
		t->bytes += jr->bytes;
		t->flushes += jr->flushes;
		t->errors += jr->errors;
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
	free(jobs);
	return failed ? -1 : 0;
}

void bench_result_free(struct bench_result *r)
{
	free(r->jobs);
	r->jobs = NULL;
}

/* Write the region sequentially in 1 MiB requests and flush, as fio lays out a new file:
 * reads of never-written extents return zeros without touching the disk. */
int bench_layout(struct sn_dev *dev, const struct bench_opts *o, int progress)
{
	const uint64_t end = o->size - o->size % o->bs; /* the blocks the jobs will use */
	struct sn_dev_info in;
	uint64_t pos = 0, t_last = bench_now();
	uint32_t chunk = 1u << 20;
	struct sn_queue *q;
	struct sn_cqe cqe[8];
	struct sn_io io;
	unsigned inflight = 0;
	const char *why = NULL;
	char *buf;
	int err;

	sn_dev_info(dev, &in);
	if (in.max_transfer_bytes && chunk > in.max_transfer_bytes)
		chunk = in.max_transfer_bytes - in.max_transfer_bytes % (uint32_t)o->bs;
	if (!chunk) /* the device takes less than one block: the jobs will fail anyway */
		chunk = (uint32_t)o->bs;
	progress = progress && isatty(2);
	if (sn_queue_create(dev, 8, &q)) {
		fprintf(stderr, "snstore bench: layout: %s\n", sn_errmsg());
		return -1;
	}
	if (sn_queue_buf_alloc(q, 8 * (size_t)chunk, (void **)&buf)) {
		sn_queue_destroy(q);
		fprintf(stderr, "snstore bench: layout: %s\n", sn_errmsg());
		return -1;
	}
	for (size_t i = 0; i < 8 * (size_t)chunk; i++)
		buf[i] = (char)(i * 2654435761u >> 24 | 1);
	while (pos < end || inflight) {
		while (pos < end && inflight < 8) {
			uint32_t n = (uint32_t)(end - pos < chunk ? end - pos : chunk);

			sn_io_write(&io, buf + (pos / chunk % 8) * chunk, n, o->offset + pos, 0);
			if ((err = sn_queue_submit(q, &io, 1)) < 0) {
				why = sn_errmsg();
				goto fail;
			}
			pos += n;
			inflight++;
		}
		err = sn_queue_reap(q, cqe, 8, 1);
		if (err < 0) {
			why = sn_errmsg();
			goto fail;
		}
		for (int i = 0; i < err; i++)
			if (cqe[i].res < 0) {
				err = (int)cqe[i].res;
				goto fail;
			}
		inflight -= (unsigned)err;
		if (progress && bench_now() - t_last > 500000000ull) {
			t_last = bench_now();
			fprintf(stderr, "\r  laying out: %3.0f%% of %" PRIu64 " MiB",
			        100.0 * (double)pos / (double)end, end >> 20);
		}
	}
	err = sn_queue_flush(q);
	if (progress)
		fprintf(stderr, "\r%40s\r", "");
	if (err)
		goto fail;
	sn_queue_destroy(q);
	return 0;
fail:
	fprintf(stderr, "snstore bench: layout failed: %s\n", why && *why ? why : sn_strerror(err));
	sn_queue_destroy(q);
	return -1;
}
