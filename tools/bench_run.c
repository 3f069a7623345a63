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

/* --cpus: job i runs on the (i mod n)-th CPU of the list; without it the scheduler
 * places jobs, as fio does by default. */
void bench_pin(const struct bench_opts *o, unsigned job)
{
	cpu_set_t set;

	if (!o->ncpus)
		return;
	CPU_ZERO(&set);
	CPU_SET((int)o->cpus[job % o->ncpus], &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
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

static void *job_main(void *arg)
{
	struct job *j = arg;
	const struct bench_opts *o = j->o;
	const int is_rand = o->rw >= RW_RANDREAD, mixed = o->rw == RW_RANDRW;
	const int all_write = o->rw == RW_WRITE || o->rw == RW_RANDWRITE;
	const uint32_t mix = (uint32_t)((uint64_t)o->rwmix * 65536 / 100);
	const unsigned qd = o->qd;
	struct slot *slots = NULL;
	uint64_t seq = 0, issued = 0, writes_since_flush = 0;
	uint64_t t0, t_measure, t_end, now, last = 0;
	struct sn_cqe *cqe = NULL;
	struct sn_io *batch = NULL;
	unsigned *free_slots = NULL, nfree = qd, inflight = 0, flush_inflight = 0;
	struct sn_queue *q = NULL;
	uint64_t flush_t = 0;
	int measuring, err;
	char *buf = NULL;

	bench_pin(o, j->idx);
	j->res.cpu = (unsigned)sched_getcpu();
	sn_hist_init(&j->res.lat);
	sn_hist_init(&j->res.flush);
	err = sn_queue_create(j->dev, qd + (o->fsync_every ? 1 : 0), &q);
	if (!err)
		err = sn_queue_buf_alloc(q, (size_t)(qd * o->bs), (void **)&buf);
	slots = calloc(qd, sizeof(*slots));
	cqe = calloc(qd + 1, sizeof(*cqe));
	batch = calloc(qd, sizeof(*batch));
	free_slots = calloc(qd, sizeof(*free_slots));
	if (!err && (!slots || !cqe || !batch || !free_slots))
		err = -ENOMEM;
	if (err)
		job_fail(j, err, "setup");
	/* Non-zero random bytes, so compressing or deduplicating devices cannot cheat. */
	for (size_t i = 0; buf && i + 8 <= qd * o->bs; i += 8) {
		uint64_t v = bench_rand(&j->rng) | 0x0101010101010101ull;

		memcpy(buf + i, &v, 8);
	}
	for (size_t i = qd * o->bs & ~(size_t)7; buf && i < qd * o->bs; i++)
		buf[i] = (char)(bench_rand(&j->rng) | 1);
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
		int r, full = 0;

		/* Fill every free slot, handing them to the device batch by batch. */
		while (!stop && nfree && !(o->ios && issued >= o->ios)) {
			unsigned slot = free_slots[--nfree];
			struct sn_io *io = &batch[n++];
			uint64_t blk;
			int is_write;

			/* Multiply-shift and compare-and-wrap: no division per request. */
			if (is_rand) {
				blk = (uint64_t)(((unsigned __int128)bench_rand(&j->rng) *
				                  j->region_blocks) >>
				                 64);
			} else {
				blk = seq;
				if (++seq == j->region_blocks)
					seq = 0;
			}
			is_write = mixed ? (uint32_t)(bench_rand(&j->rng) >> 48) >= mix : all_write;
			sn_io_prep(io, is_write ? SN_OP_WRITE : SN_OP_READ, buf + slot * o->bs,
			           (uint32_t)o->bs, o->offset + (j->region_off + blk) * o->bs,
			           slot);
			slots[slot].write = (uint8_t)is_write;
			slots[slot].off = io->offset;
			issued++;
			if (n == o->batch || !nfree || (o->ios && issued >= o->ios)) {
				uint64_t t = bench_now();
				unsigned sent = 0;

				for (unsigned i = 0; i < n; i++)
					slots[batch[i].user_data].t_sub = t;
				while (sent < n) {
					r = sn_queue_submit(q, batch + sent, n - sent);
					/* Full: reap first. With nothing in flight it never drains. */
					if (r == -EAGAIN && inflight + sent) {
						full = 1;
						break;
					}
					if (r < 0) {
						job_fail(j, r, "submit");
						stop = 1;
						break;
					}
					sent += (unsigned)r;
				}
				inflight += sent;
				/* What the queue did not take is drawn again later. */
				for (unsigned i = sent; i < n; i++)
					free_slots[nfree++] = (unsigned)batch[i].user_data;
				issued -= n - sent;
				n = 0;
				if (full || stop)
					break;
			}
		}
		if (o->fsync_every && writes_since_flush >= o->fsync_every && !flush_inflight &&
		    !j->res.err) {
			struct sn_io f;

			sn_io_flush(&f, FLUSH_TAG);
			flush_t = bench_now();
			r = sn_queue_submit(q, &f, 1);
			if (r >= 0) {
				flush_inflight = 1;
				writes_since_flush = 0;
			} else if (r != -EAGAIN) { /* full: try again after the next reap */
				job_fail(j, r, "flush submit");
			}
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
					job_fail_io(j, cqe[i].res, "flush", 0, 0);
				else if (measuring) {
					sn_hist_add(&j->res.flush, now - flush_t);
					j->res.flushes++;
				}
				continue;
			}
			inflight--;
			free_slots[nfree++] = (unsigned)ud;
			if (cqe[i].res != (int64_t)o->bs) {
				job_fail_io(j, cqe[i].res, slots[ud].write ? "write" : "read",
				            slots[ud].off, o->bs);
				continue;
			}
			writes_since_flush += slots[ud].write;
			if (!measuring)
				continue;
			sn_hist_add(&j->res.lat, now - slots[ud].t_sub);
			j->res.ios++;
			j->res.writes += slots[ud].write;
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
	free(slots);
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
		j->rng = bench_seed(o->seed, i);
		if (o->rw >= RW_RANDREAD) {
			j->region_blocks = blocks;
		} else {
			/* Sequential jobs each stream through a slice of their own. */
			j->region_off = blocks * i / o->jobs;
			j->region_blocks = blocks * (i + 1) / o->jobs - j->region_off;
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
