/* SPDX-License-Identifier: MIT */
/*
 * rtbench.c — `snstore rtbench`: what the runtime's messages cost. For each loop mode:
 * one-way throughput of every worker pair (2k sends to 2k+1 as fast as the ring takes,
 * publishing in batches of SN_RT_BATCH), the round-trip time of a message from worker 0
 * to worker 1 and back, one at a time, and the round trip of sn_rt_call() from a thread
 * outside the runtime.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "bench.h"
#include "cmd.h"

#define MAXW       1024
#define PUMP_BURST 256 /* sends per loop iteration before the sender yields to its loop */

struct rtb_opts {
	unsigned workers, ring, ncpus, cpus[MAXW];
	int modes; /* bit 0: poll, bit 1: event */
	double runtime_s;
	int json;
};

struct pair {
	_Alignas(64) uint64_t sent, t0, t1; /* the sender's */
	struct sn_rt_task pump;
	_Alignas(64) uint64_t received; /* the receiver's */
};

struct run {
	struct sn_rt *rt;
	uint64_t deadline;
	struct pair *pairs;
	struct sn_rt_latch done;
	/* ping-pong */
	struct sn_hist rtt;
	uint64_t t_ping, round_trips;
};

static struct run *cur;

static void count(void *arg)
{
	((struct pair *)arg)->received++;
}

static void pump(void *arg)
{
	struct pair *p = arg;
	unsigned to = sn_rt_self() + 1, k;
	uint64_t now = bench_now();

	if (now >= cur->deadline) {
		p->t1 = now;
		sn_rt_latch_done(&cur->done);
		return;
	}
	for (k = 0; k < PUMP_BURST; k++) {
		if (sn_rt_send(cur->rt, to, count, p))
			break;
		p->sent++;
	}
	sn_rt_defer(&p->pump);
}

static void pump_start(void *arg)
{
	struct pair *p = arg;

	p->t0 = bench_now();
	p->pump = (struct sn_rt_task){ pump, p, NULL, 0 };
	sn_rt_defer(&p->pump);
}

static void ping(void *arg);

static void pong(void *arg)
{
	sn_rt_send(cur->rt, 0, ping, arg); /* back to worker 0 */
}

static void ping(void *arg)
{
	uint64_t now = bench_now();

	if (arg) { /* a reply: one round trip done */
		sn_hist_add(&cur->rtt, now - cur->t_ping);
		cur->round_trips++;
	}
	if (now >= cur->deadline) {
		sn_rt_latch_done(&cur->done);
		return;
	}
	cur->t_ping = bench_now();
	sn_rt_send(cur->rt, 1, pong, (void *)1);
}

static void nop(void *arg)
{
	(void)arg;
}

struct mode_result {
	const char *mode;
	unsigned npairs;
	double pair_rate[MAXW / 2], total_rate;
	struct sn_hist rtt, call;
};

static int run_mode(const struct rtb_opts *o, enum sn_rt_mode mode, struct mode_result *mr)
{
	struct sn_rt_opts ro = { .workers = o->workers, .mode = mode, .ring_size = o->ring };
	uint64_t ns = (uint64_t)(o->runtime_s * 1e9);
	unsigned i, np = o->workers / 2;
	struct run r;

	memset(&r, 0, sizeof(r));
	memset(mr, 0, sizeof(*mr));
	mr->mode = mode == SN_RT_POLL ? "poll" : "event";
	mr->npairs = np;
	if (o->ncpus)
		ro.cpus = o->cpus;
	if (sn_rt_create(&ro, &r.rt)) {
		fprintf(stderr, "snstore rtbench: %s\n", sn_errmsg());
		return -1;
	}
	cur = &r;
	r.pairs = aligned_alloc(64, np * sizeof(*r.pairs));
	memset(r.pairs, 0, np * sizeof(*r.pairs));

	/* One-way throughput, every pair at once. */
	sn_rt_latch_init(&r.done, np);
	r.deadline = bench_now() + ns;
	for (i = 0; i < np; i++)
		sn_rt_send(r.rt, 2 * i, pump_start, &r.pairs[i]);
	sn_rt_latch_wait(&r.done);

	/* Round trips 0 -> 1 -> 0, one at a time. */
	sn_hist_init(&r.rtt);
	sn_rt_latch_init(&r.done, 1);
	r.deadline = bench_now() + ns;
	sn_rt_send(r.rt, 0, ping, NULL);
	sn_rt_latch_wait(&r.done);

	/* sn_rt_call from this (foreign) thread, for a tenth of the time. */
	sn_hist_init(&mr->call);
	for (uint64_t end = bench_now() + ns / 10, t; (t = bench_now()) < end;) {
		sn_rt_call(r.rt, 1, nop, NULL);
		sn_hist_add(&mr->call, bench_now() - t);
	}
	sn_rt_destroy(r.rt); /* drains: every pair's messages have arrived */
	for (i = 0; i < np; i++) {
		struct pair *p = &r.pairs[i];

		if (p->received != p->sent) {
			fprintf(stderr,
			        "snstore rtbench: pair %u sent %" PRIu64 " but %" PRIu64
			        " arrived\n",
			        i, p->sent, p->received);
			free(r.pairs);
			return -1;
		}
		mr->pair_rate[i] =
		        p->t1 > p->t0 ? (double)p->sent * 1e9 / (double)(p->t1 - p->t0) : 0;
		mr->total_rate += mr->pair_rate[i];
	}
	mr->rtt = r.rtt;
	free(r.pairs);
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: snstore rtbench [--workers N] [--mode poll|event|both] [--runtime S]\n"
	      "                       [--ring N] [--cpus LIST] [--json]\n"
	      "\n"
	      "Measure the shared-nothing runtime's messages (snstore/rt.h), in each loop mode:\n"
	      "  one-way   worker 2k sends to worker 2k+1 as fast as the ring takes (sends are\n"
	      "            published in batches of 16); messages per second per pair, and the "
	      "sum\n"
	      "  rtt       worker 0 sends to worker 1, which replies; one message in flight;\n"
	      "            round-trip percentiles\n"
	      "  call      sn_rt_call() from a thread outside the runtime to worker 1 and back\n"
	      "Every message sent is checked to have arrived.\n"
	      "\n"
	      "Options\n"
	      "  --workers N   workers, at least 2 (default 2); pinned one per CPU\n"
	      "  --mode M      poll (workers spin), event (workers sleep when idle), or both\n"
	      "                (default both)\n"
	      "  --runtime S   seconds per measurement (default 2; decimals allowed)\n"
	      "  --ring N      slots per worker-to-worker ring, a power of two (default 512)\n"
	      "  --cpus LIST   worker i on the i-th CPU of LIST (default: the CPUs this process\n"
	      "                may use, in order)\n"
	      "  --json        one JSON object on stdout instead of the table\n"
	      "\n"
	      "Example\n"
	      "  snstore rtbench --mode poll --runtime 5\n",
	      f);
}

static int parse_list(const char *s, struct rtb_opts *o)
{
	char *end;

	o->ncpus = 0;
	while (*s) {
		unsigned long a = strtoul(s, &end, 10), b = a;

		if (end == s)
			return -1;
		if (*end == '-') {
			s = end + 1;
			b = strtoul(s, &end, 10);
			if (end == s || b < a)
				return -1;
		}
		for (unsigned long c = a; c <= b && o->ncpus < MAXW; c++)
			o->cpus[o->ncpus++] = (unsigned)c;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return o->ncpus ? 0 : -1;
}

static int parse(int argc, char **argv, struct rtb_opts *o)
{
	static const struct option longopts[] = {
		{ "workers", required_argument, NULL, 'w' },
		{ "mode", required_argument, NULL, 'm' },
		{ "runtime", required_argument, NULL, 't' },
		{ "ring", required_argument, NULL, 'r' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long v;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->workers = 2;
	o->modes = 3;
	o->runtime_s = 2;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'w':
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || *optarg < '0' || *optarg > '9' || v < 2 || v > MAXW) {
				fprintf(stderr, "snstore rtbench: --workers %s: expected 2..%d\n",
				        optarg, MAXW);
				return -1;
			}
			o->workers = (unsigned)v;
			break;
		case 'm':
			o->modes = !strcmp(optarg, "poll")    ? 1
			           : !strcmp(optarg, "event") ? 2
			           : !strcmp(optarg, "both")  ? 3
			                                      : 0;
			if (!o->modes) {
				fprintf(stderr,
				        "snstore rtbench: --mode %s: expected poll, event or "
				        "both\n",
				        optarg);
				return -1;
			}
			break;
		case 't':
			o->runtime_s = strtod(optarg, &end);
			if (*end || !(o->runtime_s > 0 && o->runtime_s <= 3600)) {
				fprintf(stderr,
				        "snstore rtbench: --runtime %s: expected seconds in "
				        "(0, 3600]\n",
				        optarg);
				return -1;
			}
			break;
		case 'r':
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || *optarg < '0' || *optarg > '9' || v < 2 ||
			    v > (1u << 24) || (v & (v - 1))) {
				fprintf(stderr,
				        "snstore rtbench: --ring %s: expected a power of two from "
				        "2 "
				        "to 16777216\n",
				        optarg);
				return -1;
			}
			o->ring = (unsigned)v;
			break;
		case 'c':
			if (parse_list(optarg, o)) {
				fprintf(stderr,
				        "snstore rtbench: --cpus %s: expected a list such as "
				        "0,1 or 2-5\n",
				        optarg);
				return -1;
			}
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr,
			        "snstore rtbench: unknown or incomplete option '%s' (see "
			        "--help)\n",
			        argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "snstore rtbench: unexpected argument '%s' (see --help)\n",
		        argv[optind]);
		return -1;
	}
	if (o->ncpus && o->ncpus < o->workers) {
		fprintf(stderr, "snstore rtbench: --cpus names %u CPUs for %u workers\n", o->ncpus,
		        o->workers);
		return -1;
	}
	return 0;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void print_table(const struct rtb_opts *o, const struct mode_result *mr, unsigned n)
{
	printf("rtbench: %u workers, ring %u slots, publish batch %d, %.1f s per measurement\n\n",
	       o->workers, o->ring ? o->ring : 512, SN_RT_BATCH, o->runtime_s);
	printf("%-6s %-10s %14s   %s\n", "mode", "test", "rate",
	       "latency µs: p50 / p90 / p99 / "
	       "p99.9 / max");
	for (unsigned m = 0; m < n; m++) {
		const struct mode_result *r = &mr[m];

		for (unsigned i = 0; i < r->npairs; i++)
			printf("%-6s %u->%-7u %11.2f M/s\n", r->mode, 2 * i, 2 * i + 1,
			       r->pair_rate[i] / 1e6);
		if (r->npairs > 1)
			printf("%-6s %-10s %11.2f M/s\n", r->mode, "all pairs",
			       r->total_rate / 1e6);
		for (int k = 0; k < 2; k++) {
			const struct sn_hist *h = k ? &r->call : &r->rtt;

			printf("%-6s %-10s %11.2f M/s   %.2f / %.2f / %.2f / %.2f / %.2f\n",
			       r->mode, k ? "call" : "rtt 0-1-0",
			       h->count ? 1e3 / sn_hist_mean(h) : 0, us(sn_hist_pct(h, 50)),
			       us(sn_hist_pct(h, 90)), us(sn_hist_pct(h, 99)),
			       us(sn_hist_pct(h, 99.9)), us(h->max));
		}
	}
}

static void print_json(const struct rtb_opts *o, const struct mode_result *mr, unsigned n)
{
	printf("{\"workers\": %u, \"ring\": %u, \"batch\": %d, \"runtime_s\": %.3f, \"modes\": [",
	       o->workers, o->ring ? o->ring : 512, SN_RT_BATCH, o->runtime_s);
	for (unsigned m = 0; m < n; m++) {
		printf("%s{\"mode\": \"%s\", \"pairs\": [", m ? ", " : "", mr[m].mode);
		for (unsigned i = 0; i < mr[m].npairs; i++)
			printf("%s{\"from\": %u, \"to\": %u, \"msgs_per_sec\": %.0f}",
			       i ? ", " : "", 2 * i, 2 * i + 1, mr[m].pair_rate[i]);
		printf("], \"total_msgs_per_sec\": %.0f, \"rtt_ns\": ", mr[m].total_rate);
		bench_json_lat(stdout, &mr[m].rtt);
		printf(", \"call_ns\": ");
		bench_json_lat(stdout, &mr[m].call);
		printf("}");
	}
	printf("]}\n");
}

int cmd_rtbench(int argc, char **argv)
{
	static struct mode_result mr[2];
	struct rtb_opts o;
	unsigned n = 0;

	if (parse(argc, argv, &o))
		return 2;
	if ((o.modes & 1) && run_mode(&o, SN_RT_POLL, &mr[n++]))
		return 1;
	if ((o.modes & 2) && run_mode(&o, SN_RT_EVENT, &mr[n++]))
		return 1;
	if (o.json)
		print_json(&o, mr, n);
	else
		print_table(&o, mr, n);
	return 0;
}
