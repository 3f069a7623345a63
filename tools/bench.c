/* SPDX-License-Identifier: MIT */
/*
 * bench.c — `snstore bench`: a fio-like benchmark of any device URI. This file parses the
 * options, opens the device (creating a file when --size asks for room) and hands over to
 * bench_run.c (timed jobs), bench_verify.c, bench_report.c and bench_compare.c. The option
 * names and the JSON keys are an interface that scripts use: keep them stable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "bench.h"
#include "cmd.h"

static volatile int g_stop;

static void usage(FILE *f)
{
	fputs("usage: snstore bench --dev URI [OPTIONS]\n"
	      "       snstore bench --compare [--file PATH] [--size SIZE] [--runtime S] [--json]\n"
	      "\n"
	      "Measure a storage device, as fio does: IOPS, bandwidth, and the latency of every "
	      "request\n"
	      "from submission to completion (percentiles from a log-linear histogram, 1.6% "
	      "steps).\n"
	      "Each job is a worker of the shared-nothing runtime (snstore/rt.h) with its own "
	      "queue\n"
	      "(an io_uring ring, ...), as a snstore program runs; no queue is ever shared. "
	      "Latency takes one clock reading per submit "
	      "call\n"
	      "and one per reap call, so the benchmark's own cost stays near the null engine's.\n"
	      "\n"
	      "Workload\n"
	      "  --dev URI          the device to measure (required unless --compare). Quote it: "
	      "the\n"
	      "                     shell treats ? and & specially. Engines and their keys: "
	      "snstore\n"
	      "                     probe --engines. Examples: 'uring:/data/f?direct=1',\n"
	      "                     'psync:/dev/nvme0n1?direct=1', 'mmap:/data/f', "
	      "'mem:?size=1G',\n"
	      "                     'null:?size=1G'\n"
	      "  --rw MODE          read | write (sequential), randread | randwrite | randrw\n"
	      "                     (default randread)\n"
	      "  --rwmix PCT        percentage of reads in randrw (default 50)\n"
	      "  --bs SIZE          bytes per request (default 4k); must be a multiple of the "
	      "device's\n"
	      "                     offset alignment (the logical block size with direct=1)\n"
	      "  --qd N             requests kept in flight per job (default 32)\n"
	      "  --batch N          requests handed over per submit call (default 1, as fio's\n"
	      "                     iodepth_batch); larger batches save syscalls on fast devices\n"
	      "  --jobs N           runtime workers, each with its own queue (default 1). Random "
	      "jobs each\n"
	      "                     cover the whole region with their own random sequence; "
	      "sequential\n"
	      "                     jobs each stream through their own slice of it\n"
	      "  --cpus LIST        pin job i to the (i mod n)-th CPU of LIST, e.g. 0,2 or 0-3\n"
	      "                     (default: not pinned, the scheduler places jobs, as fio does)\n"
	      "  --rt MODE          how a job's worker waits for completions: poll (spin on the\n"
	      "                     queue: lowest latency, a busy core) or event (sleep until\n"
	      "                     the engine signals: no CPU while waiting) (default poll)\n"
	      "  --size SIZE        bytes of the device to use (default: all of it from "
	      "--offset).\n"
	      "                     If the URI's file is missing or shorter and the URI has no\n"
	      "                     create= or size= key, the bench adds "
	      "create=1&size=OFFSET+SIZE;\n"
	      "                     a file it created or grew is laid out with real 1 MiB writes "
	      "and\n"
	      "                     flushed before a workload that reads (like fio's \"Laying out "
	      "IO\n"
	      "                     file\"), because reads of never-written extents skip the disk\n"
	      "  --offset SIZE      where the region starts (default 0)\n"
	      "  --seed N           seed of the random offsets (default 1): same seed, same "
	      "offsets\n"
	      "\n"
	      "Duration\n"
	      "  --runtime S        seconds to measure (default 10, unless --ios is given)\n"
	      "  --ios N            stop each job after N requests\n"
	      "  --ramp S           seconds of warm-up before measuring; not counted (default 0)\n"
	      "\n"
	      "Flushes and checking\n"
	      "  --fsync-every N    a flush (SN_OP_FLUSH) after every N completed writes of a "
	      "job;\n"
	      "                     flushes are counted and timed apart from reads and writes\n"
	      "  --verify           instead of timing: write every bs block of the region exactly\n"
	      "                     once (in --rw order; a random permutation for rand*), flush, "
	      "read\n"
	      "                     every block back and check it. Each block starts with a "
	      "32-byte\n"
	      "                     header (magic, offset, seed, length, payload checksum) "
	      "followed by\n"
	      "                     bytes derived from (seed, offset), so a bad block says what "
	      "it\n"
	      "                     holds: zeros, another block, an older run, or a corrupt "
	      "payload.\n"
	      "                     Jobs each take their own slice. Exit 1 on any mismatch\n"
	      "\n"
	      "Output\n"
	      "  (default)          a table: device, engine and its features; IOPS, MiB/s, and "
	      "latency\n"
	      "                     min/mean/p50/p90/p99/p99.9/p99.99/max in microseconds, per "
	      "job\n"
	      "                     when --jobs > 1 and in total; flush latency on its own line. "
	      "A\n"
	      "                     progress line on stderr once a second when stderr is a "
	      "terminal\n"
	      "  --json             one JSON object on stdout: dev, uri (as opened), engine, "
	      "features,\n"
	      "                     rw, bs, qd, njobs, runtime_s (measured), ios, errors, iops "
	      "and\n"
	      "                     bw_bytes (totals over all jobs), lat_ns {min, mean, p50, p90, "
	      "p99,\n"
	      "                     p99.9, p99.99, max}, flushes, flush_lat_ns {...}, and jobs: a\n"
	      "                     list of the same figures per job\n"
	      "  --quiet            no progress output\n"
	      "\n"
	      "Comparison\n"
	      "  --compare          the seed's comparison: 4 KiB randread and randwrite at QD1 "
	      "and\n"
	      "                     QD32 on every engine, on one scratch file laid out once: uring "
	      "and\n"
	      "                     psync with and without direct=1, mmap, mem and null. An "
	      "engine\n"
	      "                     that does not work here gets its row with the reason. Each "
	      "file\n"
	      "                     cell starts with the file's page cache written back and "
	      "dropped.\n"
	      "                     --size defaults to 1g, --runtime to 3 s per cell. Progress on\n"
	      "                     stderr: a line per cell when it is a terminal, else one line\n"
	      "                     per engine row (none with --quiet)\n"
	      "  --file PATH        the scratch file of --compare (default ./snstore-bench.dat)\n"
	      "  --memcpy           the ceiling of a byte-addressable path: instead of requests,\n"
	      "                     time plain memcpy of --bs blocks at the --rw offsets, to and\n"
	      "                     from the mapping of --dev (mmap:, dax:, pmem:, mem:), or of\n"
	      "                     anonymous memory (--size, default 64m) without --dev. One\n"
	      "                     thread, no persist; prints copies/s, MiB/s, ns per copy\n"
	      "\n"
	      "  -h, --help         this text\n"
	      "\n"
	      "SIZE is a byte count with an optional k, m, g or t suffix (powers of 1024).\n"
	      "\n"
	      "A request that fails or transfers less than --bs stops its job; the figures so far "
	      "are\n"
	      "printed with the first error. Exit status: 0 success; 1 the device failed to open, "
	      "a\n"
	      "request failed, or --verify found a mismatch; 2 bad usage (unknown option, bad "
	      "value,\n"
	      "or options that do not fit the device, such as --bs off its alignment).\n"
	      "\n"
	      "Examples\n"
	      "  snstore bench --dev 'null:?size=1g' --qd 32 --runtime 3       # the software "
	      "ceiling\n"
	      "  snstore bench --dev 'uring:/data/f?direct=1' --size 2g --rw randread --qd 32 "
	      "--json\n"
	      "  snstore bench --dev 'uring:/data/f?direct=1' --rw randwrite --jobs 4 --cpus 0-3\n"
	      "  snstore bench --dev 'psync:/dev/nvme0n1?direct=1' --rw randrw --rwmix 70 --qd 1\n"
	      "  snstore bench --dev 'psync:/data/f' --rw randwrite --fsync-every 16 --runtime 30\n"
	      "  snstore bench --dev 'uring:/data/f?direct=1' --size 256m --verify --qd 16 --jobs "
	      "2\n"
	      "  snstore bench --compare --file /data/scratch.dat --size 1g\n",
	      f);
}

static int parse_rw(const char *s, struct bench_opts *o)
{
	static const char *const names[] = { "read", "write", "randread", "randwrite", "randrw" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			o->rw = (enum bench_rw)i;
			return 0;
		}
	fprintf(stderr,
	        "snstore bench: --rw %s: expected read, write, randread, randwrite or "
	        "randrw\n",
	        s);
	return -1;
}

static int parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s < '0' || *s > '9' || v < min || v > max) {
		fprintf(stderr,
		        "snstore bench: %s %s: expected an integer from %" PRIu64 " to %" PRIu64
		        "\n",
		        opt, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_size_opt(const char *opt, const char *s, uint64_t *out)
{
	if (sn_parse_size(s, out)) {
		fprintf(stderr, "snstore bench: %s %s: %s\n", opt, s, sn_errmsg());
		return -1;
	}
	return 0;
}

/* "0,2-5" -> {0, 2, 3, 4, 5}. */
static int parse_cpus(const char *s, struct bench_opts *o)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	const char *p = s;

	o->ncpus = 0;
	while (*p) {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;

		if (end == p)
			goto bad;
		if (*end == '-') {
			p = end + 1;
			hi = strtoul(p, &end, 10);
			if (end == p || hi < lo)
				goto bad;
		}
		for (unsigned long c = lo; c <= hi; c++) {
			if ((long)c >= ncpu || o->ncpus == sizeof(o->cpus) / sizeof(o->cpus[0]))
				goto bad;
			o->cpus[o->ncpus++] = (unsigned)c;
		}
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			goto bad;
	}
	if (o->ncpus)
		return 0;
bad:
	fprintf(stderr,
	        "snstore bench: --cpus %s: expected a list such as 0,1 or 2-5 of CPUs "
	        "below %ld\n",
	        s, ncpu);
	return -1;
}

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	enum {
		O_RWMIX = 256,
		O_BS,
		O_QD,
		O_BATCH,
		O_JOBS,
		O_SIZE,
		O_OFFSET,
		O_RUNTIME,
		O_IOS,
		O_RAMP,
		O_FSYNC,
		O_SEED,
		O_FILE,
		O_CPUS,
		O_RT
	};
	static const struct option longopts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "rw", required_argument, NULL, 'r' },
		{ "rwmix", required_argument, NULL, O_RWMIX },
		{ "bs", required_argument, NULL, O_BS },
		{ "qd", required_argument, NULL, O_QD },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "jobs", required_argument, NULL, O_JOBS },
		{ "size", required_argument, NULL, O_SIZE },
		{ "offset", required_argument, NULL, O_OFFSET },
		{ "runtime", required_argument, NULL, O_RUNTIME },
		{ "ios", required_argument, NULL, O_IOS },
		{ "ramp", required_argument, NULL, O_RAMP },
		{ "fsync-every", required_argument, NULL, O_FSYNC },
		{ "seed", required_argument, NULL, O_SEED },
		{ "file", required_argument, NULL, O_FILE },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "rt", required_argument, NULL, O_RT },
		{ "verify", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "compare", no_argument, NULL, 'c' },
		{ "memcpy", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v = 0;
	int c, bad = 0;

	memset(o, 0, sizeof(*o));
	o->rw = RW_RANDREAD;
	o->rwmix = 50;
	o->bs = 4096;
	o->qd = 32;
	o->batch = 1;
	o->rt_mode = SN_RT_POLL;
	o->jobs = 1;
	o->seed = 1;
	opterr = 0;
	optind = 1;
	while (!bad && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->dev = optarg;
			break;
		case 'r':
			bad = parse_rw(optarg, o);
			break;
		case O_RWMIX:
			bad = parse_uint("--rwmix", optarg, 0, 100, &v);
			o->rwmix = (unsigned)v;
			break;
		case O_BS:
			bad = parse_size_opt("--bs", optarg, &o->bs);
			break;
		case O_QD:
			bad = parse_uint("--qd", optarg, 1, 32768, &v);
			o->qd = (unsigned)v;
			break;
		case O_BATCH:
			bad = parse_uint("--batch", optarg, 1, 32768, &v);
			o->batch = (unsigned)v;
			break;
		case O_JOBS:
			bad = parse_uint("--jobs", optarg, 1, 1024, &v);
			o->jobs = (unsigned)v;
			break;
		case O_SIZE:
			bad = parse_size_opt("--size", optarg, &o->size);
			break;
		case O_OFFSET:
			bad = parse_size_opt("--offset", optarg, &o->offset);
			break;
		case O_RUNTIME:
			bad = parse_uint("--runtime", optarg, 1, 86400 * 30, &o->runtime_s);
			break;
		case O_IOS:
			bad = parse_uint("--ios", optarg, 1, UINT64_MAX, &o->ios);
			break;
		case O_RAMP:
			bad = parse_uint("--ramp", optarg, 0, 86400, &o->ramp_s);
			break;
		case O_FSYNC:
			bad = parse_uint("--fsync-every", optarg, 1, UINT32_MAX, &o->fsync_every);
			break;
		case O_SEED:
			bad = parse_uint("--seed", optarg, 0, UINT64_MAX, &o->seed);
			break;
		case O_FILE:
			o->file = optarg;
			break;
		case O_CPUS:
			bad = parse_cpus(optarg, o);
			break;
		case O_RT:
			if (!strcmp(optarg, "poll") || !strcmp(optarg, "event")) {
				o->rt_mode = optarg[0] == 'p' ? SN_RT_POLL : SN_RT_EVENT;
			} else {
				fprintf(stderr, "snstore bench: --rt %s: expected poll or event\n",
				        optarg);
				bad = 1;
			}
			break;
		case 'v':
			o->verify = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'c':
			o->compare = 1;
			break;
		case 'm':
			o->memcpy_ref = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr,
			        "snstore bench: unknown or incomplete option '%s' (see --help)\n",
			        argv[optind - 1]);
			return -1;
		}
	}
	if (bad)
		return -1;
	if (optind < argc) {
		fprintf(stderr, "snstore bench: unexpected argument '%s' (see --help)\n",
		        argv[optind]);
		return -1;
	}
	if (o->memcpy_ref && (o->compare || o->verify)) {
		fprintf(stderr, "snstore bench: --memcpy does not go with --compare or --verify\n");
		return -1;
	}
	if (!o->dev && !o->compare && !o->memcpy_ref) {
		fprintf(stderr,
		        "snstore bench: --dev URI is required (or --compare); see --help\n");
		return -1;
	}
	if (o->dev && o->compare) {
		fprintf(stderr,
		        "snstore bench: --compare measures its own set of devices: drop --dev\n");
		return -1;
	}
	if (o->bs == 0 || o->bs > (1u << 30)) {
		fprintf(stderr, "snstore bench: --bs must be from 1 byte to 1 GiB\n");
		return -1;
	}
	if (o->batch > o->qd)
		o->batch = o->qd;
	if (!o->runtime_s && !o->ios)
		o->runtime_s = o->compare ? 3 : 10;
	return 0;
}

/* File engines take create= and size=; give them those when the bench must make room. */
static int takes_key(const char *uri, const char *key)
{
	const struct sn_engine_desc *d;
	size_t n = strcspn(uri, ":");

	for (unsigned i = 0; (d = sn_engine_desc(i)); i++)
		if (strlen(d->name) == n && !strncmp(d->name, uri, n))
			for (const struct sn_option *op = d->options; op && op->key; op++)
				if (!strcmp(op->key, key))
					return 1;
	return 0;
}

/* Whether the URI's query names key (as "key=" at the start or after '&'). */
static int has_key(const char *uri, const char *key)
{
	const char *p = strchr(uri, '?');
	size_t n = strlen(key);

	while (p) {
		p++;
		if (!strncmp(p, key, n) && p[n] == '=')
			return 1;
		p = strchr(p, '&');
	}
	return 0;
}

/*
 * With --size on a file engine, make sure the file holds offset+size bytes. Returns
 * the URI to open (in buf) and whether the file was created or grown (needs layout).
 * A URI that says size= itself is the user's choice and is left alone.
 */
static const char *effective_uri(const struct bench_opts *o, char *buf, size_t len, int *grown)
{
	const char *colon = strchr(o->dev, ':'), *path, *q;
	char file[4096];
	struct stat st;
	uint64_t want = o->offset + o->size;

	*grown = 0;
	if (!o->size || !colon || !takes_key(o->dev, "size") || !takes_key(o->dev, "create") ||
	    has_key(o->dev, "size"))
		return o->dev;
	path = colon + 1;
	q = strchr(path, '?');
	snprintf(file, sizeof(file), "%.*s", (int)(q ? q - path : (long)strlen(path)), path);
	if (stat(file, &st) == 0 && (S_ISBLK(st.st_mode) || (uint64_t)st.st_size >= want))
		return o->dev;
	*grown = 1;
	if (has_key(o->dev, "create")) /* the user's create=, but it needs a size */
		snprintf(buf, len, "%s&size=%" PRIu64, o->dev, want);
	else
		snprintf(buf, len, "%s%ccreate=1&size=%" PRIu64, o->dev, q ? '&' : '?', want);
	return buf;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_result r;
	struct sn_dev_info in;
	struct sn_dev *dev;
	char uri[4200];
	int grown, err;

	if (parse_args(argc, argv, &o))
		return 2;
	if (o.compare)
		return bench_compare(&o);
	if (o.memcpy_ref && !o.dev)
		return bench_memcpy(NULL, &o);
	o.uri = effective_uri(&o, uri, sizeof(uri), &grown);
	err = sn_dev_open(o.uri, &dev);
	if (err) {
		fprintf(stderr, "snstore bench: cannot open %s: %s\n", o.uri,
		        *sn_errmsg() ? sn_errmsg() : sn_strerror(err));
		return 1;
	}
	sn_dev_info(dev, &in);
	if (!o.size)
		o.size = in.capacity_bytes > o.offset ? in.capacity_bytes - o.offset : 0;
	/* Options that do not fit this device are bad usage, like any other bad option. */
	if (bench_check_geometry(&o, &in)) {
		sn_dev_close(dev);
		return 2;
	}
	err = 0;
	if (grown && o.rw != RW_WRITE && o.rw != RW_RANDWRITE && !o.verify)
		err = bench_layout(dev, &o, !o.quiet && !o.json);
	if (!err && o.memcpy_ref) {
		int rc = bench_memcpy(dev, &o);

		sn_dev_close(dev);
		return rc;
	} else if (!err && o.verify) {
		err = bench_verify(dev, &o);
	} else if (!err) {
		/* A job that failed part-way still has figures worth printing, with the error. */
		err = bench_run(dev, &o, &r, !o.quiet && !o.json);
		if (r.jobs)
			bench_report(stdout, &o, &in, &r);
		bench_result_free(&r);
	}
	sn_dev_close(dev);
	return err ? 1 : 0;
}

int bench_check_geometry(const struct bench_opts *o, const struct sn_dev_info *in)
{
	if (o->bs % in->offset_align) {
		fprintf(stderr,
		        "snstore bench: --bs %" PRIu64 " is not a multiple of the %u-byte "
		        "alignment %s needs (direct I/O)\n",
		        o->bs, in->offset_align, in->path);
		return -1;
	}
	if (o->offset % in->offset_align) {
		fprintf(stderr,
		        "snstore bench: --offset %" PRIu64 " is not a multiple of the "
		        "%u-byte alignment %s needs\n",
		        o->offset, in->offset_align, in->path);
		return -1;
	}
	if (o->offset > in->capacity_bytes || o->size > in->capacity_bytes - o->offset) {
		fprintf(stderr,
		        "snstore bench: region [%" PRIu64 ", %" PRIu64 ") is past the end of "
		        "the device (%" PRIu64 " bytes)\n",
		        o->offset, o->offset + o->size, in->capacity_bytes);
		return -1;
	}
	if (o->size < o->bs * o->jobs) {
		fprintf(stderr,
		        "snstore bench: the region (%" PRIu64 " bytes) holds fewer than one "
		        "--bs block per job\n",
		        o->size);
		return -1;
	}
	return 0;
}

/* The clock the jobs share: CLOCK_MONOTONIC in ns. */
uint64_t bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_stop_requested(void)
{
	return __atomic_load_n(&g_stop, __ATOMIC_RELAXED);
}

void bench_request_stop(int v)
{
	__atomic_store_n(&g_stop, v, __ATOMIC_RELAXED);
}
