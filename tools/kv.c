/* SPDX-License-Identifier: MIT */
/*
 * kv.c — `snstore kv SUBCOMMAND`: the key-value store (snstore/kv.h) from the shell:
 * format, put, get, del, scan, stat, check, compact. Each subcommand opens the store
 * (which runs recovery), does one thing, and closes it (which makes every write durable).
 *
 * Facts it relies on: a plain PATH means auto:PATH and sn_kv_open creates a missing file
 * (so commands that only read refuse a missing file before opening); put and del are
 * written with SN_KV_DURABLE, so exit 0 means on stable storage; sn_kv_scan visits every
 * live key once, unordered, fetching each value by key; recovery checks every record's
 * CRC-32C at open and counts what it cut (torn_bytes) and what failed (corrupt_records).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "bench.h"
#include "cmd.h"
#include "kvbench.h"

/* Which options a subcommand takes. */
enum {
	O_SHARDS = 1 << 0,
	O_CAPACITY = 1 << 1,
	O_SEGMENT = 1 << 2,
	O_SYNC = 1 << 3,
	O_VALUE_FILE = 1 << 4,
	O_RAW = 1 << 5,
	O_LIMIT = 1 << 6,
	O_KEYS_ONLY = 1 << 7,
	O_JSON = 1 << 8,
	O_FORCE = 1 << 9,
	O_ESCAPED = 1 << 10,
};

struct kv_args {
	const char *cmd; /* "snstore kv get", for messages */
	const char *path;
	struct sn_kv_opts o;
	const char *value_file;
	uint64_t limit;
	int raw, keys_only, json, force, escaped;
	char **pos; /* positional arguments after PATH */
	int npos;
};

struct sub {
	const char *name, *synopsis, *summary, *help;
	unsigned opts;
	int npos_min, npos_max;
	int (*fn)(struct kv_args *a);
};

/* ---- helpers ---- */

/* The command's first error, for --json: a command that fails still prints one object,
 * {"error": MESSAGE}. */
static char first_err[1024];

/* Why the command fails, on stderr ("snstore kv get: MESSAGE"); the first one is kept. */
static void __attribute__((format(printf, 2, 3))) say(const struct kv_args *a, const char *fmt, ...)
{
	char msg[sizeof(first_err)];
	va_list ap;

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): false positive, va_start above */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", a->cmd, msg);
	if (!*first_err)
		snprintf(first_err, sizeof(first_err), "%s", msg);
}

static int fail(const struct kv_args *a, int err)
{
	const char *m = sn_errmsg();

	say(a, "%s: %s", a->path, *m ? m : sn_strerror(err));
	return 1;
}

/* Bytes as people read them: "512 B", "1.5 KiB", "20.0 MiB", "1.00 GiB". */
static const char *fmt_size(uint64_t b, char *buf, size_t len)
{
	if (b < 1024)
		snprintf(buf, len, "%" PRIu64 " B", b);
	else if (b < (1ull << 20))
		snprintf(buf, len, "%.1f KiB", (double)b / 1024);
	else if (b < (1ull << 30))
		snprintf(buf, len, "%.1f MiB", (double)b / (1 << 20));
	else
		snprintf(buf, len, "%.2f GiB", (double)b / (1 << 30));
	return buf;
}

/* Printable ASCII as is; backslash as \\; every other byte (tab, newline too) as \xNN. */
static void put_escaped(FILE *f, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\')
			fputs("\\\\", f);
		else if (s[i] >= 0x20 && s[i] < 0x7f)
			fputc(s[i], f);
		else
			fprintf(f, "\\x%02x", s[i]);
	}
}

static int hexval(int c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* Undo put_escaped in place (--escaped); the length comes back, -1 on a bad escape. */
static long unescape(char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i]; i++) {
		if (s[i] != '\\') {
			s[o++] = s[i];
		} else if (s[i + 1] == '\\') {
			s[o++] = '\\';
			i++;
		} else if (s[i + 1] == 'x' && hexval(s[i + 2]) >= 0 && hexval(s[i + 3]) >= 0) {
			s[o++] = (char)(hexval(s[i + 2]) * 16 + hexval(s[i + 3]));
			i += 3;
		} else {
			return -1;
		}
	}
	return (long)o;
}

/* The key of positional argument i, decoded with --escaped; -1 (printed) if malformed. */
static int arg_bytes(const struct kv_args *a, int i, const char *what, size_t *lenp)
{
	long n = a->escaped ? unescape(a->pos[i]) : (long)strlen(a->pos[i]);

	if (n < 0) {
		say(a, "%s '%s': bad escape (use \\\\ and \\xNN)", what, a->pos[i]);
		return -1;
	}
	if (!strcmp(what, "KEY") && (n < 1 || n > SN_KV_MAX_KEY)) {
		say(a, "KEY of %ld bytes: keys are 1..%u bytes", n, SN_KV_MAX_KEY);
		return -1;
	}
	*lenp = (size_t)n;
	return 0;
}

void cmd_uri_file(const char *uri, char *file, size_t len)
{
	const char *colon = strchr(uri, ':'), *slash = strchr(uri, '/');

	/* A wrapping engine (fault:psync:PATH): the path is after the last engine. */
	while (colon && (!slash || colon < slash) && strchr(colon + 1, ':') &&
	       strchr(colon + 1, ':') < (slash ? slash : colon + strlen(colon)))
		colon = strchr(colon + 1, ':');
	if (!colon || (slash && slash < colon))
		snprintf(file, len, "%s", uri);
	else
		snprintf(file, len, "%.*s", (int)strcspn(colon + 1, "?"), colon + 1);
}

/* Commands that only read refuse a missing file before sn_kv_open, which would create it. */
static int must_exist(const struct kv_args *a)
{
	char file[4096];
	struct stat st;

	cmd_uri_file(a->path, file, sizeof(file));
	if (!*file || stat(file, &st) == 0 || errno != ENOENT)
		return 0;
	say(a, "%s: no such file (no store here; 'snstore kv format' or 'put' creates one)", file);
	return -1;
}

/* Open for a subcommand: read-only commands never create a store. 0, or exit status. */
enum open_mode { OPEN_READ, OPEN_WRITE, OPEN_CREATE };

/* OPEN_READ writes nothing to the store (opts.readonly): get, scan, stat and check leave
 * its bytes as they were, work on a file they may only read, and share it with each
 * other; OPEN_CREATE makes the store when PATH has none. */
static int open_store(struct kv_args *a, enum open_mode mode, struct sn_kv **kvp)
{
	int create = mode == OPEN_CREATE, err;

	if (!create && must_exist(a))
		return 1;
	a->o.no_create = !create;
	a->o.readonly = mode == OPEN_READ;
	err = sn_kv_open(a->path, &a->o, kvp);
	if (err == -ENOENT && !create) {
		say(a, "%s: the device holds no store", a->path);
		return 1;
	}
	if (err)
		return fail(a, err);
	if (mode != OPEN_READ) {
		/* A write's exit 0 means durable: nothing is on a device that keeps nothing. */
		struct sn_dev_info in;

		sn_dev_info(sn_kv_dev(*kvp), &in);
		if (!(in.caps & SN_CAP_PERSISTS)) {
			say(a,
			    "%s: engine %s keeps nothing once this command exits: a write there "
			    "could never be durable",
			    a->path, in.engine);
			sn_kv_close(*kvp);
			return 1;
		}
	}
	return 0;
}

static int close_store(const struct kv_args *a, struct sn_kv *kv, int rc)
{
	int err = sn_kv_close(kv);

	if (err && !rc)
		return fail(a, err);
	return rc;
}

/* ---- stat, shared by stat, check, format ---- */

/* ro: the command opened the store read-only (stat, check): it reads through block I/O
 * whatever the engine, and appends nothing. */
static void print_stats(FILE *f, const char *path, const struct sn_kv *kv,
                        const struct sn_kv_stats *s, int ro)
{
	char eng[64], note[256], b1[32], b2[32], b3[32], b4[32];
	uint64_t lookups = s->cache_hits + s->cache_misses;

	kv_engine(kv, eng, sizeof(eng), note, sizeof(note));
	fprintf(f, "store        %s (engine %s%s%s)\n", path, eng, *note ? "; " : "", note);
	fprintf(f,
	        "layout       %u shards on %u workers, %s segments, %u-byte blocks, "
	        "capacity %s; values up to %s\n",
	        s->shards, s->workers, fmt_size(s->segment_size, b1, sizeof(b1)), s->block_size,
	        fmt_size(s->capacity_bytes, b2, sizeof(b2)),
	        fmt_size(s->max_value, b3, sizeof(b3)));
	fprintf(f, "log path     %s\n",
	        ro          ? "read-only open: reads through block I/O, nothing is appended"
	        : s->mapped ? "the device's mapping: appends are stores, syncs persist cache lines"
	                    : "block I/O: appends fill a write buffer, syncs write and flush");
	fprintf(f, "keys         %" PRIu64 "\n", s->keys);
	fprintf(f,
	        "space        live %s, dead %s (reclaimable by compaction); %" PRIu64 " of %" PRIu64
	        " segments used (%s)\n",
	        fmt_size(s->live_bytes, b1, sizeof(b1)), fmt_size(s->dead_bytes, b2, sizeof(b2)),
	        s->segments_used, s->segments_total,
	        fmt_size(s->segments_used * s->segment_size, b3, sizeof(b3)));
	fprintf(f,
	        "operations   %" PRIu64 " puts, %" PRIu64 " gets, %" PRIu64 " dels, %" PRIu64
	        " batches, %" PRIu64 " syncs, %" PRIu64 " device flushes (since this open)\n",
	        s->puts, s->gets, s->dels, s->batches, s->syncs, s->flushes);
	fprintf(f, "cache        %s held; %" PRIu64 " hits, %" PRIu64 " misses",
	        fmt_size(s->cache_bytes, b4, sizeof(b4)), s->cache_hits, s->cache_misses);
	if (lookups)
		fprintf(f, " (%.1f%% hits)", 100.0 * (double)s->cache_hits / (double)lookups);
	fprintf(f, "\ncompaction   %" PRIu64 " segments rewritten, %s of live records moved\n",
	        s->compactions, fmt_size(s->compacted_bytes, b1, sizeof(b1)));
	fprintf(f,
	        "recovery     %" PRIu64 " keys from the index checkpoint, %" PRIu64
	        " log records replayed, in %.1f ms; torn tail cut: %s (writes never made "
	        "durable); corrupt records: %" PRIu64 "\n",
	        s->checkpoint_keys, s->recovered_records, (double)s->recovery_ns / 1e6,
	        fmt_size(s->torn_bytes, b1, sizeof(b1)), s->corrupt_records);
	fprintf(f,
	        "checkpoint   %u segments held (%s; given back as free space when space runs "
	        "short)\n",
	        s->checkpoint_segments,
	        fmt_size((uint64_t)s->checkpoint_segments * s->segment_size, b1, sizeof(b1)));
	if (s->max_value < SN_KV_MAX_VALUE)
		fprintf(f,
		        "note         values above %u bytes are refused: a record fits one %u-byte "
		        "segment (format shrinks its default segment to fit a small capacity)\n",
		        s->max_value, s->segment_size);
}

static void print_stats_json(FILE *f, const char *path, const struct sn_kv *kv,
                             const struct sn_kv_stats *s)
{
	char eng[64], note[256];

	kv_engine(kv, eng, sizeof(eng), note, sizeof(note));
	fputs("{\"path\":", f);
	bench_json_str(f, path);
	fputs(",\"engine\":", f);
	bench_json_str(f, eng);
	fprintf(f,
	        ",\"shards\":%u,\"workers\":%u,\"segment_size\":%u,\"block_size\":%u,"
	        "\"capacity_bytes\":%" PRIu64 ",\"keys\":%" PRIu64 ",\"live_bytes\":%" PRIu64
	        ",\"dead_bytes\":%" PRIu64 ",\"segments_used\":%" PRIu64
	        ",\"segments_total\":%" PRIu64 ",\"puts\":%" PRIu64 ",\"gets\":%" PRIu64
	        ",\"dels\":%" PRIu64 ",\"batches\":%" PRIu64 ",\"syncs\":%" PRIu64
	        ",\"flushes\":%" PRIu64 ",\"cache_hits\":%" PRIu64 ",\"cache_misses\":%" PRIu64
	        ",\"cache_bytes\":%" PRIu64 ",\"compactions\":%" PRIu64
	        ",\"compacted_bytes\":%" PRIu64 ",\"recovered_records\":%" PRIu64
	        ",\"recovery_ns\":%" PRIu64 ",\"torn_bytes\":%" PRIu64
	        ",\"corrupt_records\":%" PRIu64 ",\"checkpoint_keys\":%" PRIu64
	        ",\"checkpoint_segments\":%u,\"max_value\":%u,\"mapped\":%s}\n",
	        s->shards, s->workers, s->segment_size, s->block_size, s->capacity_bytes, s->keys,
	        s->live_bytes, s->dead_bytes, s->segments_used, s->segments_total, s->puts, s->gets,
	        s->dels, s->batches, s->syncs, s->flushes, s->cache_hits, s->cache_misses,
	        s->cache_bytes, s->compactions, s->compacted_bytes, s->recovered_records,
	        s->recovery_ns, s->torn_bytes, s->corrupt_records, s->checkpoint_keys,
	        s->checkpoint_segments, s->max_value, s->mapped ? "true" : "false");
}

/* ---- subcommands ---- */

static int do_format(struct kv_args *a)
{
	struct sn_kv_stats st;
	struct sn_kv *kv;
	int err, rc;

	if ((err = sn_kv_format(a->path, &a->o)))
		return fail(a, err);
	if ((rc = open_store(a, OPEN_READ, &kv)))
		return rc;
	if ((err = sn_kv_stat(kv, &st)))
		return close_store(a, kv, fail(a, err));
	print_stats(stdout, a->path, kv, &st, 1);
	return close_store(a, kv, 0);
}

/* The value of put: VALUE, or all of --value-file F ('-' or VALUE '-': stdin). */
static int read_value(struct kv_args *a, char **valp, size_t *lenp)
{
	const char *file = a->value_file;
	size_t cap = 1 << 16, len = 0;
	char *buf;
	FILE *f;

	if (!file && strcmp(a->pos[1], "-") != 0) {
		if (arg_bytes(a, 1, "VALUE", lenp))
			return 2;
		*valp = a->pos[1];
		return 0;
	}
	if (!file || !strcmp(file, "-"))
		f = stdin, file = "stdin";
	else if (!(f = fopen(file, "rb"))) {
		say(a, "%s: %s", file, strerror(errno));
		return 1;
	}
	buf = malloc(cap);
	while (buf) {
		size_t n = fread(buf + len, 1, cap - len, f);

		len += n;
		if (n == 0 || len > SN_KV_MAX_VALUE)
			break;
		if (len == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				free(buf);
			buf = nb;
			cap *= 2;
		}
	}
	if (!buf || ferror(f) || len > SN_KV_MAX_VALUE) {
		say(a, "%s: %s", file,
		    !buf        ? "out of memory"
		    : ferror(f) ? strerror(errno)
		                : "longer than the largest value (1 MiB)");
		free(buf);
		if (f != stdin)
			fclose(f);
		return 1;
	}
	if (f != stdin)
		fclose(f);
	*valp = buf;
	*lenp = len;
	a->value_file = file; /* marks buf as ours to free */
	return 0;
}

static int do_put(struct kv_args *a)
{
	struct sn_kv *kv;
	size_t klen, vlen;
	char *val;
	int rc, err;

	if (a->value_file && a->npos > 1) {
		say(a, "give VALUE or --value-file, not both");
		return 2;
	}
	if (!a->value_file && a->npos < 2) {
		say(a, "VALUE is missing (or --value-file F; see --help)");
		return 2;
	}
	if (arg_bytes(a, 0, "KEY", &klen))
		return 2;
	if ((rc = read_value(a, &val, &vlen)))
		return rc;
	if (!(rc = open_store(a, OPEN_CREATE, &kv))) {
		err = sn_kv_put(kv, a->pos[0], klen, val, vlen, SN_KV_DURABLE);
		rc = close_store(a, kv, err ? fail(a, err) : 0);
	}
	if (a->value_file)
		free(val);
	return rc;
}

static int do_get(struct kv_args *a)
{
	struct sn_kv *kv;
	size_t klen, vlen;
	void *val;
	int rc, err;

	/* Exit 1 only for "the store holds no such key"; any failure is 2 (as grep), so a
	 * script never takes a missing store or a bad record for an absent key. */
	if (arg_bytes(a, 0, "KEY", &klen))
		return 2;
	if (open_store(a, OPEN_READ, &kv))
		return 2;
	err = sn_kv_get(kv, a->pos[0], klen, &val, &vlen);
	if (err == -ENOENT) {
		fprintf(stderr, "%s: ", a->cmd);
		put_escaped(stderr, a->pos[0], klen);
		fprintf(stderr, ": not found\n");
		return close_store(a, kv, 1);
	}
	if (err) {
		fail(a, err);
		return close_store(a, kv, 2);
	}
	fwrite(val, 1, vlen, stdout);
	if (!a->raw && isatty(STDOUT_FILENO))
		fputc('\n', stdout);
	free(val);
	rc = 0;
	if (fflush(stdout)) {
		say(a, "writing the value: %s", strerror(errno));
		rc = 2;
	}
	return close_store(a, kv, rc) ? 2 : 0;
}

static int do_del(struct kv_args *a)
{
	struct sn_kv *kv;
	size_t klen, vlen;
	void *val = NULL;
	int rc, err;

	if (arg_bytes(a, 0, "KEY", &klen))
		return 2;
	if ((rc = open_store(a, OPEN_WRITE, &kv)))
		return rc;
	/* sn_kv_del does not say whether the key existed: look first, to tell the user. */
	err = sn_kv_get(kv, a->pos[0], klen, &val, &vlen);
	free(val);
	if (err == -ENOENT) {
		fprintf(stderr, "%s: ", a->cmd);
		put_escaped(stderr, a->pos[0], klen);
		fprintf(stderr, ": not found (nothing to delete)\n");
		return close_store(a, kv, 0);
	}
	/* A record that fails its checksum can still be deleted: that is one way out. */
	if (err && err != SN_ECORRUPT)
		return close_store(a, kv, fail(a, err));
	err = sn_kv_del(kv, a->pos[0], klen, SN_KV_DURABLE);
	return close_store(a, kv, err ? fail(a, err) : 0);
}

struct scan_ctx {
	const struct kv_args *a;
	uint64_t n, bytes;
	int out_err;
};

static int scan_print(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct scan_ctx *c = arg;

	if (c->a->limit && c->n >= c->a->limit)
		return 1;
	put_escaped(stdout, key, klen);
	if (!c->a->keys_only) {
		fputc('\t', stdout);
		put_escaped(stdout, val, vlen);
	}
	fputc('\n', stdout);
	c->n++;
	if (ferror(stdout)) { /* a closed pipe (head): stop quietly */
		c->out_err = 1;
		return 1;
	}
	return 0;
}

static int do_scan(struct kv_args *a)
{
	struct scan_ctx c = { a, 0, 0, 0 };
	struct sn_kv *kv;
	int rc, err;

	if ((rc = open_store(a, OPEN_READ, &kv)))
		return rc;
	err = sn_kv_scan(kv, scan_print, &c);
	if (err < 0)
		return close_store(a, kv, fail(a, err));
	fflush(stdout);
	return close_store(a, kv, 0);
}

static int do_stat(struct kv_args *a)
{
	struct sn_kv_stats st;
	struct sn_kv *kv;
	int rc, err;

	if ((rc = open_store(a, OPEN_READ, &kv)))
		return rc;
	if ((err = sn_kv_stat(kv, &st)))
		return close_store(a, kv, fail(a, err));
	if (a->json)
		print_stats_json(stdout, a->path, kv, &st);
	else
		print_stats(stdout, a->path, kv, &st, 1);
	return close_store(a, kv, 0);
}

static int check_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct scan_ctx *c = arg;

	(void)key;
	(void)val;
	c->n++;
	c->bytes += klen + vlen;
	return 0;
}

static int do_check(struct kv_args *a)
{
	struct scan_ctx c = { a, 0, 0, 0 };
	struct sn_kv_stats st0, st;
	struct sn_kv *kv;
	char b1[32], b2[32], msg[256] = "";
	int rc, err, scan_err;

	a->o.no_checkpoint = 1; /* recovery reads every record of the log, checkpoint or not */
	if ((rc = open_store(a, OPEN_READ, &kv)))
		return rc;
	if ((err = sn_kv_stat(kv, &st0)))
		return close_store(a, kv, fail(a, err));
	printf("recovery: %" PRIu64 " records replayed in %.1f ms; torn tail cut: %s (writes "
	       "never made durable, not corruption); corrupt records: %" PRIu64 "\n",
	       st0.recovered_records, (double)st0.recovery_ns / 1e6,
	       fmt_size(st0.torn_bytes, b1, sizeof(b1)), st0.corrupt_records);
	/* Every live value read back by key; a record failing its CRC stops the scan. */
	scan_err = sn_kv_scan(kv, check_visit, &c);
	if (scan_err)
		snprintf(msg, sizeof(msg), "%s",
		         *sn_errmsg() ? sn_errmsg() : sn_strerror(scan_err));
	if ((err = sn_kv_stat(kv, &st)))
		return close_store(a, kv, fail(a, err));
	printf("scan: %" PRIu64 " keys read back, %s of keys and values%s%s\n", c.n,
	       fmt_size(c.bytes, b2, sizeof(b2)), scan_err ? "; stopped: " : "", msg);
	print_stats(stdout, a->path, kv, &st, 1);
	if (scan_err && scan_err != SN_ECORRUPT) {
		printf("check %s: FAILED: the scan stopped with an error: %s\n", a->path, msg);
		rc = 1;
	} else if (scan_err || st.corrupt_records) {
		printf("check %s: CORRUPT: %" PRIu64 " corrupt record%s (%s); %" PRIu64
		       " keys readable\n",
		       a->path, st.corrupt_records + (scan_err && !st.corrupt_records),
		       st.corrupt_records == 1 ? "" : "s",
		       scan_err ? "the scan stopped at one: later keys were not read"
		                : "found by recovery: a damaged stretch of the log costs the "
		                  "records "
		                  "in it, whose keys (and a damaged batch's) keep a previous value "
		                  "or none; recovery goes on at the next valid record after it",
		       c.n);
		rc = 1;
	} else if (c.n != st.keys) {
		printf("check %s: INCONSISTENT: the index counts %" PRIu64 " keys, the scan read "
		       "%" PRIu64 "\n",
		       a->path, st.keys, c.n);
		rc = 1;
	} else {
		printf("check %s: clean: %" PRIu64 " keys, every value read back; %s cut from torn "
		       "tails\n",
		       a->path, c.n, fmt_size(st.torn_bytes, b1, sizeof(b1)));
	}
	return close_store(a, kv, rc);
}

static int do_compact(struct kv_args *a)
{
	struct sn_kv_stats b, s;
	struct sn_kv *kv;
	char b1[32], b2[32];
	int rc, err;

	if ((rc = open_store(a, OPEN_WRITE, &kv)))
		return rc;
	/* sn_kv_compact returns once the rewritten segments are free again. */
	if ((err = sn_kv_stat(kv, &b)) || (err = sn_kv_compact(kv, a->force)) ||
	    (err = sn_kv_stat(kv, &s)))
		return close_store(a, kv, fail(a, err));
	printf("before: %" PRIu64 " segments used, %s dead\n", b.segments_used,
	       fmt_size(b.dead_bytes, b1, sizeof(b1)));
	printf("after:  %" PRIu64 " segments used, %s dead; %" PRIu64
	       " segments rewritten, %s of live records moved\n",
	       s.segments_used, fmt_size(s.dead_bytes, b1, sizeof(b1)),
	       s.compactions - b.compactions,
	       fmt_size(s.compacted_bytes - b.compacted_bytes, b2, sizeof(b2)));
	if (!a->force && s.compactions == b.compactions && s.dead_bytes)
		printf("(nothing rewritten: the store compacts by itself only once space runs "
		       "short; --force rewrites every segment holding dead records)\n");
	return close_store(a, kv, 0);
}

/* ---- the command ---- */

static const struct sub subs[] = {
	{ "format", "PATH [--shards N] [--capacity SIZE] [--segment SIZE]",
	  "write a new, empty store (replacing whatever PATH holds)",
	  "Writes a new, empty store on PATH, replacing whatever was there, then prints its\n"
	  "layout. A missing file is created with --capacity bytes, rounded up to 4 KiB\n"
	  "(default 1 GiB), also when PATH is a URI with options that do not say create=.\n"
	  "  --shards N       shards (default: one per CPU); each worker owns some\n"
	  "  --capacity SIZE  bytes of the device to use (default: all of it; 1 GiB for a\n"
	  "                   new file)\n"
	  "  --segment SIZE   log segment size, a power of two from 64k to 1g (default 4m)\n",
	  O_SHARDS | O_CAPACITY | O_SEGMENT, 0, 0, do_format },
	{ "put", "PATH KEY VALUE | PATH KEY --value-file F",
	  "store VALUE under KEY; returns once it is durable",
	  "Stores VALUE under KEY (replacing any older value) and exits 0 only once the write\n"
	  "is on stable storage (SN_KV_DURABLE). A missing store is created (as format with\n"
	  "the defaults). Keys are 1..1024 bytes, values 0..1 MiB (less on a store with\n"
	  "segments under 2 MiB: stat says). Refused on an engine that keeps nothing (mem:).\n"
	  "  --value-file F   the value is the whole of file F (binary safe); F '-' or a\n"
	  "                   VALUE of '-' reads standard input\n"
	  "  -e, --escaped    KEY and VALUE use the escapes scan prints: \\\\ and \\xNN\n"
	  "  --sync MODE      the store's sync mode while open: none, interval or always\n"
	  "                   (the put itself is durable in every mode)\n",
	  O_VALUE_FILE | O_ESCAPED | O_SYNC, 1, 2, do_put },
	{ "get", "PATH KEY [--raw]", "print the value of KEY",
	  "Prints KEY's value: the bytes exactly, plus a newline when standard output is a\n"
	  "terminal, and exits 0. Exit 1, with \"KEY: not found\" on stderr, only when the\n"
	  "store holds no KEY; exit 2 with the reason for anything else: bad usage, no store\n"
	  "at PATH, a store in use, a record that fails its checksum (never printed as data),\n"
	  "an I/O error.\n"
	  "  --raw            no newline, even on a terminal\n"
	  "  -e, --escaped    KEY uses the escapes scan prints: \\\\ and \\xNN\n",
	  O_RAW | O_ESCAPED, 1, 1, do_get },
	{ "del", "PATH KEY", "delete KEY; returns once the delete is durable",
	  "Deletes KEY and exits 0 once the delete is on stable storage. When KEY is absent\n"
	  "nothing is written, stderr says \"KEY: not found (nothing to delete)\", and the exit\n"
	  "status is still 0 (the key is absent either way, as with rm -f).\n"
	  "  -e, --escaped    KEY uses the escapes scan prints: \\\\ and \\xNN\n"
	  "  --sync MODE      the store's sync mode while open: none, interval or always\n",
	  O_ESCAPED | O_SYNC, 1, 1, do_del },
	{ "scan", "PATH [--limit N] [--keys-only]", "print every key and value",
	  "Prints KEY<TAB>VALUE per line for every live key, in no particular order (the\n"
	  "store is a hash: unordered). Bytes outside printable ASCII, tabs and newlines\n"
	  "included, print as \\xNN and a backslash as \\\\; -e takes keys in that form.\n"
	  "  --limit N        stop after N keys\n"
	  "  --keys-only      keys only\n",
	  O_LIMIT | O_KEYS_ONLY, 0, 0, do_scan },
	{ "stat", "PATH [--json]", "show keys, space (live, dead), cache, recovery",
	  "Prints the store's statistics (struct sn_kv_stats): layout, keys, live and dead\n"
	  "bytes (dead bytes are what compaction can reclaim), segments used, operation and\n"
	  "flush counts and cache hits since this open, compaction, and what recovery found\n"
	  "at this open: keys loaded from the index checkpoint the last clean close wrote,\n"
	  "log records replayed after it (all of them without a checkpoint), torn tail bytes\n"
	  "cut (writes that were never made durable), corrupt records; and the segments the\n"
	  "checkpoint holds.\n"
	  "  --json           one JSON object with every field of struct sn_kv_stats; on\n"
	  "                   failure {\"error\": MESSAGE} (and the message on stderr)\n",
	  O_JSON, 0, 0, do_stat },
	{ "check", "PATH", "verify every record; exit 1 on corruption",
	  "Opens the store scanning the whole log, not the index checkpoint (recovery checks\n"
	  "the CRC-32C of every record, cuts a torn tail and counts corrupt records), prints\n"
	  "what recovery found, then reads\n"
	  "every live key's value back (sn_kv_scan) and prints the statistics and a summary\n"
	  "line. Exit 0 when clean (a torn tail is not corruption: those writes were never\n"
	  "acknowledged as durable), 1 when a record failed its checksum, the scan failed, or\n"
	  "the scan disagrees with the index. A bad record where the index checkpoint says\n"
	  "records were durable is corruption, never taken for a torn tail. Check writes\n"
	  "nothing to the store (a torn tail is cut by the next open that writes).\n",
	  0, 0, 0, do_check },
	{ "compact", "PATH [--force]", "rewrite mostly-dead segments; show space before/after",
	  "Compacts every segment that is at most half live, waits, and prints the segments\n"
	  "used and dead bytes before and after. Never the segment appends go to (each\n"
	  "shard's newest) nor those holding the index checkpoint: their dead bytes stay.\n"
	  "  --force          every other segment with any dead bytes, whatever its live\n"
	  "                   share\n"
	  "  --sync MODE      the store's sync mode while open: none, interval or always\n",
	  O_FORCE | O_SYNC, 0, 0, do_compact },
};

#define NSUBS (sizeof(subs) / sizeof(subs[0]))

static void usage(FILE *f)
{
	fputs("usage: snstore kv SUBCOMMAND PATH [ARGS] [OPTIONS]\n"
	      "\n"
	      "The key-value store (snstore/kv.h) from the shell. PATH is a file, a block device\n"
	      "or a device URI (ENGINE:PATH?key=value); a plain path means auto:PATH. Each\n"
	      "subcommand opens the store (running recovery), does one thing, and closes it.\n"
	      "get, scan, stat and check open it read-only: they write nothing to it, share it\n"
	      "with each other, and work on a file they may only read. Any open is refused\n"
	      "while another writes the store (\"... is in use\").\n"
	      "\n"
	      "subcommands:\n",
	      f);
	for (unsigned i = 0; i < NSUBS; i++)
		fprintf(f, "  %-8s %s\n", subs[i].name, subs[i].summary);
	fputs("\n'snstore kv SUBCOMMAND --help' describes each. Put '--' before a KEY or\n"
	      "VALUE that starts with '-' (a '-h' among the arguments is refused, not taken for\n"
	      "--help). Exit status: 0 success; 1 failure (the message comes from the store:\n"
	      "sn_errmsg()) or corruption for check; 2 bad usage. get alone: 1 only when the\n"
	      "key is absent, 2 for every failure.\n"
	      "\n"
	      "examples:\n"
	      "  snstore kv format /data/kv --shards 4 --capacity 8g\n"
	      "  snstore kv put /data/kv user:1 '{\"name\":\"ada\"}'\n"
	      "  snstore kv get /data/kv user:1\n"
	      "  snstore kv put /data/kv blob --value-file ./photo.jpg\n"
	      "  snstore kv scan /data/kv --limit 10\n"
	      "  snstore kv check /data/kv && snstore kv compact /data/kv\n",
	      f);
}

static void sub_usage(FILE *f, const struct sub *s)
{
	fprintf(f, "usage: snstore kv %s %s\n\n%s", s->name, s->synopsis, s->help);
	fputs("\nPATH is a file, block device or device URI; a plain path means auto:PATH.\n", f);
	if (s->opts & (O_CAPACITY | O_SEGMENT))
		fputs("SIZE takes k, m, g, t suffixes (powers of 1024).\n", f);
	if (s->fn == do_get)
		fputs("Exit status 0 found, 1 absent, 2 failure or bad usage.\n", f);
	else
		fputs("Exit status 0 success, 1 failure, 2 bad usage.\n", f);
}

static int parse_u64(const struct kv_args *a, const char *opt, const char *s, uint64_t max,
                     int size, uint64_t *out)
{
	char *end;

	errno = 0;
	if (size) {
		if (sn_parse_size(s, out) == 0 && *out && *out <= max)
			return 0;
	} else {
		*out = strtoull(s, &end, 10);
		if (!errno && end != s && !*end && *s >= '0' && *s <= '9' && *out && *out <= max)
			return 0;
	}
	say(a, "%s %s: expected %s from 1 to %" PRIu64, opt, s,
	    size ? "a size (4096, 64k, 1g)" : "an integer", max);
	return -1;
}

/* "--name" of option c, for messages (argv[optind - 1] may be its argument). */
static const char *opt_name(const struct option *lopts, int c)
{
	static char name[40];

	for (; lopts->name; lopts++)
		if (lopts->val == c) {
			snprintf(name, sizeof(name), "--%s", lopts->name);
			return name;
		}
	return "?";
}

static int parse(const struct sub *s, int argc, char **argv, struct kv_args *a)
{
	static const struct option lopts[] = {
		{ "shards", required_argument, NULL, 'S' },
		{ "capacity", required_argument, NULL, 'C' },
		{ "segment", required_argument, NULL, 'G' },
		{ "sync", required_argument, NULL, 'y' },
		{ "value-file", required_argument, NULL, 'f' },
		{ "raw", no_argument, NULL, 'r' },
		{ "limit", required_argument, NULL, 'l' },
		{ "keys-only", no_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'F' },
		{ "escaped", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const unsigned bit[128] = {
		['S'] = O_SHARDS,     ['C'] = O_CAPACITY, ['G'] = O_SEGMENT, ['y'] = O_SYNC,
		['f'] = O_VALUE_FILE, ['r'] = O_RAW,      ['l'] = O_LIMIT,   ['k'] = O_KEYS_ONLY,
		['j'] = O_JSON,       ['F'] = O_FORCE,    ['e'] = O_ESCAPED,
	};
	uint64_t v;
	int c, idx, help = 0;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "he", lopts, &idx)) != -1) {
		if (c == 'h') {
			help = 1;
			continue;
		}
		if (c == '?' || c == ':' || c >= 128) {
			/* (a long option is the element just read; for a short one, getopt
			 * may still be inside an element: its letter) */
			if (optopt && optopt != '?' && strncmp(argv[optind - 1], "--", 2) != 0)
				say(a,
				    "unknown option '-%c' (see --help; put '--' before a KEY or "
				    "VALUE that starts with '-')",
				    optopt);
			else
				say(a, "unknown or incomplete option '%s' (see --help)",
				    argv[optind - 1]);
			return -1;
		}
		if (!(s->opts & bit[c])) {
			say(a, "option '%s' does not apply here (see --help)", opt_name(lopts, c));
			return -1;
		}
		switch (c) {
		case 'S':
			if (parse_u64(a, "--shards", optarg, 4096, 0, &v))
				return -1;
			a->o.shards = (unsigned)v;
			break;
		case 'C':
			if (parse_u64(a, "--capacity", optarg, UINT64_MAX, 1, &a->o.capacity))
				return -1;
			break;
		case 'G':
			if (parse_u64(a, "--segment", optarg, 1u << 30, 1, &v))
				return -1;
			if (v < (64u << 10) || (v & (v - 1))) {
				say(a, "--segment %s: a power of two from 64k to 1g", optarg);
				return -1;
			}
			a->o.segment_size = (uint32_t)v;
			break;
		case 'y':
			if (!strcmp(optarg, "none"))
				a->o.sync = SN_KV_SYNC_NONE;
			else if (!strcmp(optarg, "interval"))
				a->o.sync = SN_KV_SYNC_INTERVAL;
			else if (!strcmp(optarg, "always"))
				a->o.sync = SN_KV_SYNC_ALWAYS;
			else {
				say(a, "--sync %s: expected none, interval or always", optarg);
				return -1;
			}
			break;
		case 'f':
			a->value_file = optarg;
			break;
		case 'r':
			a->raw = 1;
			break;
		case 'l':
			if (parse_u64(a, "--limit", optarg, UINT64_MAX, 0, &a->limit))
				return -1;
			break;
		case 'k':
			a->keys_only = 1;
			break;
		case 'j':
			a->json = 1;
			break;
		case 'F':
			a->force = 1;
			break;
		case 'e':
			a->escaped = 1;
			break;
		}
	}
	/* --help alone: the help. With PATH, a KEY or a VALUE as well, the caller may have
	 * meant a key or value "-h" (a script's "$key"): refuse, rather than do nothing and
	 * exit 0. */
	if (help && argc == optind) {
		sub_usage(stdout, s);
		exit(0);
	}
	if (help) {
		say(a, "-h/--help with arguments: put '--' before a KEY or VALUE that starts "
		       "with '-'");
		return -1;
	}
	if (optind >= argc) {
		say(a, "PATH is missing");
		return -1;
	}
	a->path = argv[optind++];
	a->pos = argv + optind;
	a->npos = argc - optind;
	if (a->npos < s->npos_min || a->npos > s->npos_max) {
		say(a, "%s (usage: snstore kv %s %s)",
		    a->npos < s->npos_min ? "missing arguments" : "too many arguments", s->name,
		    s->synopsis);
		return -1;
	}
	return 0;
}

/* Is there a store at path with a key in it, or is it open elsewhere? (Then it is not
 * the empty leftover of a failed command.) */
static int worth_keeping(const char *path)
{
	struct sn_kv_opts o = { .readonly = 1 };
	struct sn_kv_stats st;
	struct sn_kv *kv;
	int err = sn_kv_open(path, &o, &kv);

	if (err)
		return err == -EBUSY;
	err = sn_kv_stat(kv, &st);
	sn_kv_close(kv);
	return err || st.keys > 0;
}

/* Run a subcommand. One that fails leaves no file it created itself behind (a failed
 * format or put would otherwise leave a 1 GiB file, formatted or not); a file another
 * process made meanwhile, and filled or holds open, stays. */
static int run_sub(const struct sub *sub, struct kv_args *a)
{
	char file[4096];
	struct stat st;
	int created, rc;

	cmd_uri_file(a->path, file, sizeof(file));
	created = *file && stat(file, &st) != 0 && errno == ENOENT;
	rc = sub->fn(a);
	if (rc && created && stat(file, &st) == 0 && S_ISREG(st.st_mode) && !worth_keeping(a->path))
		cmd_unlink_unused(file);
	return rc;
}

int cmd_kv(int argc, char **argv)
{
	struct kv_args a;
	char cmd[64];
	int rc, json;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (unsigned i = 0; i < NSUBS; i++) {
		if (strcmp(argv[1], subs[i].name) != 0)
			continue;
		memset(&a, 0, sizeof(a));
		snprintf(cmd, sizeof(cmd), "snstore kv %s", subs[i].name);
		a.cmd = cmd;
		rc = parse(&subs[i], argc - 1, argv + 1, &a) ? 2 : run_sub(&subs[i], &a);
		/* --json anywhere on the line of a command that has it: after a bad option too. */
		json = rc && strstr(subs[i].synopsis, "--json");
		for (int k = 2; json && k < argc && strcmp(argv[k], "--") != 0; k++)
			if (!strcmp(argv[k], "--json")) {
				printf("{\"error\":");
				bench_json_str(stdout, *first_err ? first_err : "failed");
				printf("}\n");
				break;
			}
		return rc;
	}
	fprintf(stderr, "snstore kv: unknown subcommand '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
