/* SPDX-License-Identifier: MIT */
/*
 * bench_report.c — what `snstore bench` prints: a fio-like table for people, one JSON
 * object for scripts (the keys are an interface: see README and --help).
 */
#include <inttypes.h>
#include <stdio.h>

#include "bench.h"

static const double pcts[] = { 50, 90, 99, 99.9, 99.99 };
static const char *const pct_keys[] = { "p50", "p90", "p99", "p99.9", "p99.99" };

const char *bench_rw_name(enum bench_rw rw)
{
	static const char *const names[] = { "read", "write", "randread", "randwrite", "randrw" };

	return names[rw];
}

/*
 * The length of the well-formed UTF-8 sequence at s (1 to 4 bytes), or 0 when none starts
 * there: RFC 3629's table, so no overlong forms, no surrogates (U+D800..U+DFFF), nothing
 * above U+10FFFF. A NUL ends the check early, as it is never a continuation byte.
 */
static unsigned utf8_len(const unsigned char *s)
{
	unsigned lo = 0x80, hi = 0xbf, n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* The second byte's range shuts out the overlong, surrogate and too-large forms. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (unsigned i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * A JSON string, valid whatever s holds (paths and messages are bytes, not text): valid
 * UTF-8 is copied, control characters are escaped as \u00XX, and each byte that is not
 * part of a valid sequence becomes U+FFFD, so the output always parses.
 */
void bench_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	fputc('"', f);
	while (*p) {
		unsigned n = utf8_len(p);

		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else if (n)
			fwrite(p, 1, n, f);
		else
			fputs("\\ufffd", f);
		p += n ? n : 1;
	}
	fputc('"', f);
}

void bench_json_lat(FILE *f, const struct sn_hist *h)
{
	fprintf(f, "{\"min\": %" PRIu64 ", \"mean\": %.0f", h->count ? h->min : 0, sn_hist_mean(h));
	for (unsigned i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		fprintf(f, ", \"%s\": %" PRIu64, pct_keys[i], sn_hist_pct(h, pcts[i]));
	fprintf(f, ", \"max\": %" PRIu64 "}", h->max);
}

static double per_sec(uint64_t n, uint64_t ns)
{
	return ns ? (double)n * 1e9 / (double)ns : 0;
}

static void json_job(FILE *f, const struct bench_job_result *j)
{
	fprintf(f,
	        "{\"cpu\": %u, \"ios\": %" PRIu64 ", \"reads\": %" PRIu64 ", \"writes\": %" PRIu64
	        ", \"errors\": %" PRIu64 ", \"iops\": %.1f, \"bw_bytes\": %.0f, \"runtime_s\": %.3f"
	        ", \"lat_ns\": ",
	        j->cpu, j->ios, j->reads, j->writes, j->errors, per_sec(j->ios, j->elapsed_ns),
	        per_sec(j->bytes, j->elapsed_ns), (double)j->elapsed_ns / 1e9);
	bench_json_lat(f, &j->lat);
	fprintf(f, ", \"flushes\": %" PRIu64 ", \"flush_lat_ns\": ", j->flushes);
	bench_json_lat(f, &j->flush);
	if (j->err) {
		fprintf(f, ", \"error\": ");
		bench_json_str(f, j->errmsg);
	}
	fprintf(f, "}");
}

static void text_lat(FILE *f, const char *label, const struct sn_hist *h)
{
	fprintf(f, "  %-6s lat (µs): min %.1f  mean %.1f", label, (double)h->min / 1e3,
	        sn_hist_mean(h) / 1e3);
	for (unsigned i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		fprintf(f, "  %s %.1f", pct_keys[i], (double)sn_hist_pct(h, pcts[i]) / 1e3);
	fprintf(f, "  max %.1f\n", (double)h->max / 1e3);
}

static void text_job(FILE *f, const char *label, const struct bench_job_result *j)
{
	double iops = per_sec(j->ios, j->elapsed_ns);

	fprintf(f,
	        "%s: %.0f IOPS, %.1f MiB/s, %" PRIu64 " requests (%" PRIu64 " reads, %" PRIu64
	        " writes) in %.2f s\n",
	        label, iops, per_sec(j->bytes, j->elapsed_ns) / 1048576.0, j->ios, j->reads,
	        j->writes, (double)j->elapsed_ns / 1e9);
	if (j->lat.count)
		text_lat(f, "I/O", &j->lat);
	if (j->flushes)
		text_lat(f, "flush", &j->flush);
	if (j->errors)
		fprintf(f, "  errors: %" PRIu64 " failed request%s, the first: %s\n", j->errors,
		        j->errors > 1 ? "s" : "", j->errmsg);
}

void bench_report(FILE *f, const struct bench_opts *o, const struct sn_dev_info *in,
                  const struct bench_result *r)
{
	const struct bench_job_result *t = &r->total;

	if (o->json) {
		fprintf(f, "{\"dev\": ");
		bench_json_str(f, o->dev);
		fprintf(f, ", \"uri\": ");
		bench_json_str(f, o->uri);
		fprintf(f, ", \"engine\": ");
		bench_json_str(f, in->engine);
		fprintf(f, ", \"features\": ");
		bench_json_str(f, in->features);
		fprintf(f,
		        ", \"rw\": \"%s\", \"rwmix\": %u, \"bs\": %" PRIu64 ", \"qd\": %u, "
		        "\"batch\": %u, \"njobs\": %u, \"offset\": %" PRIu64 ", \"size\": %" PRIu64
		        ", \"seed\": %" PRIu64 ", \"runtime_s\": %.3f, \"ios\": %" PRIu64
		        ", \"reads\": %" PRIu64 ", \"writes\": %" PRIu64 ", \"errors\": %" PRIu64
		        ", \"iops\": %.1f, \"bw_bytes\": %.0f, \"lat_ns\": ",
		        bench_rw_name(o->rw), o->rwmix, o->bs, o->qd, o->batch, o->jobs, o->offset,
		        o->size, o->seed, (double)t->elapsed_ns / 1e9, t->ios, t->reads, t->writes,
		        t->errors, per_sec(t->ios, t->elapsed_ns),
		        per_sec(t->bytes, t->elapsed_ns));
		bench_json_lat(f, &t->lat);
		fprintf(f, ", \"flushes\": %" PRIu64 ", \"flush_lat_ns\": ", t->flushes);
		bench_json_lat(f, &t->flush);
		if (t->err) {
			fprintf(f, ", \"error\": ");
			bench_json_str(f, t->errmsg);
		}
		fprintf(f, ", \"jobs\": [");
		for (unsigned i = 0; i < r->njobs; i++) {
			fprintf(f, i ? ", " : "");
			json_job(f, &r->jobs[i]);
		}
		fprintf(f, "]}\n");
		return;
	}
	fprintf(f, "%s  engine %s (%s)\n", o->uri, in->engine, *in->features ? in->features : "-");
	fprintf(f, "%s, bs %" PRIu64 ", qd %u, batch %u, %u job%s, region %" PRIu64 " MiB\n",
	        bench_rw_name(o->rw), o->bs, o->qd, o->batch, o->jobs, o->jobs > 1 ? "s" : "",
	        o->size >> 20);
	if (r->njobs > 1)
		for (unsigned i = 0; i < r->njobs; i++) {
			char label[32];

			snprintf(label, sizeof(label), "job %u (cpu %u)", i, r->jobs[i].cpu);
			text_job(f, label, &r->jobs[i]);
		}
	text_job(f, r->njobs > 1 ? "total" : "result", t);
}
