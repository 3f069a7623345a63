/* SPDX-License-Identifier: MIT */
/*
 * bench.c — `snstore bench`: a fio-like benchmark of any device URI. Jobs are threads,
 * each pinned to a CPU with its own queue (shared-nothing). Latency is submission to
 * completion per request, from one clock reading per submit call and one per reap call,
 * so the benchmark's own cost stays near the null engine's (docs: README, --help).
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
	fprintf(f,
	        "usage: snstore bench --dev URI [OPTIONS]\n"
	        "       snstore bench --compare [--file PATH] [--size SIZE] [--runtime S] "
	        "[--json]\n"
	        "\n"
	        "Measure a storage device: IOPS, bandwidth and per-request latency (submission to\n"
	        "completion) percentiles. Each job is a thread pinned to a CPU with its own "
	        "queue,\n"
	        "as a shared-nothing program would run.\n"
	        "\n"
	        "  --dev URI          device to measure, e.g. 'uring:/data/f?direct=1' (quote it:\n"
	        "                     the shell treats ? and & specially). See snstore probe "
	        "--engines\n"
	        "  --rw MODE          read | write | randread | randwrite | randrw (default "
	        "randread)\n"
	        "  --rwmix PCT        percentage of reads in randrw (default 50)\n"
	        "  --bs SIZE          block size of every request (default 4k); a multiple of the\n"
	        "                     device's direct-I/O alignment\n"
	        "  --qd N             requests in flight per job (default 32)\n"
	        "  --batch N          requests per submit call (default 1, as fio's "
	        "iodepth_batch);\n"
	        "                     larger batches save syscalls on fast devices\n"
	        "  --jobs N           threads, each with its own queue, pinned to CPU i mod #CPUs\n"
	        "                     (default 1). Random jobs share the whole region; sequential\n"
	        "                     jobs each take their own slice of it\n"
	        "  --size SIZE        region to use (default: the whole device). If the file is\n"
	        "                     missing or shorter, it is created or extended and, when the\n"
	        "                     workload reads, laid out with real writes first, like fio\n"
	        "  --offset SIZE      start of the region (default 0)\n"
	        "  --runtime S        seconds to run (default 10 unless --ios is given)\n"
	        "  --ios N            requests per job, then stop\n"
	        "  --ramp S           seconds of warm-up before measuring (default 0)\n"
	        "  --fsync-every N    a flush after every N completed writes per job; flush "
	        "latency\n"
	        "                     is reported on its own line\n"
	        "  --verify           write every block of the region once with a pattern "
	        "(header:\n"
	        "                     magic, offset, seed, length), flush, read it all back and\n"
	        "                     check; exit 1 on any mismatch\n"
	        "  --seed N           random seed (default 1): same seed, same offsets\n"
	        "  --json             one JSON object on stdout: iops, bw_bytes, lat_ns{min, "
	        "mean,\n"
	        "                     p50, p90, p99, p99.9, p99.99, max}, jobs[...], and more\n"
	        "  --quiet            no progress line\n"
	        "  --compare          the seed's comparison: 4 KiB randread and randwrite at QD1 "
	        "and\n"
	        "                     QD32 on every engine that works here, on one scratch file\n"
	        "                     (--file, default ./snstore-bench.dat; --size default 1g;\n"
	        "                     --runtime default 3 per cell); prints one table\n"
	        "  -h, --help         this text\n"
	        "\n"
	        "SIZE takes k, m, g, t suffixes (powers of 1024). Exit status: 0 success, 1 "
	        "device\n"
	        "or I/O error or verify mismatch, 2 bad usage.\n"
	        "\n"
	        "Examples:\n"
	        "  snstore bench --dev 'uring:/data/f?direct=1' --rw randread --qd 32 --runtime "
	        "10\n"
	        "  snstore bench --dev 'uring:/data/f?direct=1' --size 2g --rw randwrite --jobs 2 "
	        "--json\n"
	        "  snstore bench --dev 'psync:/dev/nvme0n1?direct=1' --rw randrw --rwmix 70 --qd "
	        "1\n"
	        "  snstore bench --dev 'null:?size=1g' --qd 32 --runtime 3\n"
	        "  snstore bench --dev 'uring:/data/f?direct=1' --size 256m --verify --qd 16\n");
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
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
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
		O_CPUS
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
		{ "verify", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "compare", no_argument, NULL, 'c' },
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
	if (!o->dev && !o->compare) {
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

/*
 * With --size on a file engine, make sure the file holds offset+size bytes. Returns
 * the URI to open (in buf) and whether the file was created or grown (needs layout).
 */
static const char *effective_uri(const struct bench_opts *o, char *buf, size_t len, int *grown)
{
	const char *colon = strchr(o->dev, ':'), *path, *q;
	char file[4096];
	struct stat st;
	uint64_t want = o->offset + o->size;

	*grown = 0;
	if (!o->size || !colon || !takes_key(o->dev, "size") || strstr(o->dev, "size=") ||
	    !strncmp(o->dev, "fault:", 6))
		return o->dev;
	path = colon + 1;
	q = strchr(path, '?');
	snprintf(file, sizeof(file), "%.*s", (int)(q ? q - path : (long)strlen(path)), path);
	if (stat(file, &st) == 0 && (S_ISBLK(st.st_mode) || (uint64_t)st.st_size >= want))
		return o->dev;
	*grown = 1;
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
	o.dev = effective_uri(&o, uri, sizeof(uri), &grown);
	err = sn_dev_open(o.dev, &dev);
	if (err) {
		fprintf(stderr, "snstore bench: cannot open %s: %s\n", o.dev,
		        *sn_errmsg() ? sn_errmsg() : sn_strerror(err));
		return 1;
	}
	sn_dev_info(dev, &in);
	if (!o.size)
		o.size = in.capacity_bytes > o.offset ? in.capacity_bytes - o.offset : 0;
	err = bench_check_geometry(&o, &in);
	if (!err && grown && o.rw != RW_WRITE && o.rw != RW_RANDWRITE && !o.verify)
		err = bench_layout(dev, &o, !o.quiet && !o.json);
	if (!err && o.verify)
		err = bench_verify(dev, &o);
	else if (!err) {
		err = bench_run(dev, &o, &r, !o.quiet && !o.json);
		if (!err)
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
