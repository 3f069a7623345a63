/* SPDX-License-Identifier: MIT */
/*
 * kvbench.c — `snstore kvbench`: db_bench-shaped benchmarks of the key-value store, with
 * the JSON of bench/kvref.c (the RocksDB/LevelDB/LMDB side of bench/vs-rocksdb.sh), so
 * the two drivers differ only in the store. This file parses the options, owns the store
 * (fresh for fill*, reused otherwise, as db_bench) and prints the results;
 * kvbench_work.c runs the clients.
 *
 * db_bench facts: fillseq, fillrandom and fillsync start from an empty store (db_bench's
 * fresh_db); overwrite, readrandom and readwhilewriting use what the previous benchmark
 * left; fillsync writes max(num/1000, 1000) keys, each synced. As kvref (and unlike
 * db_bench, which gives every thread num operations) --threads splits num over the
 * clients, so the data set is num keys whatever the client count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../bench/kvgen.h"
#include "bench.h"
#include "cmd.h"
#include "kvbench.h"

#define MAX_BENCHMARKS 64
#define MIB            (1ull << 20)

static const struct {
	const char *name;
	enum kb_kind kind;
	int fresh; /* db_bench's fresh_db: starts from a newly formatted store */
} benches[] = {
	{ "fillseq", KB_FILLSEQ, 1 },
	{ "fillrandom", KB_FILLRANDOM, 1 },
	{ "overwrite", KB_OVERWRITE, 0 },
	{ "readrandom", KB_READRANDOM, 0 },
	{ "readwhilewriting", KB_READWHILEWRITING, 0 },
	{ "fillsync", KB_FILLSYNC, 1 },
	{ "ycsba", KB_YCSBA, 0 },
	{ "ycsbb", KB_YCSBB, 0 },
	{ "ycsbc", KB_YCSBC, 0 },
	{ "ycsbd", KB_YCSBD, 0 },
	{ "ycsbe", KB_YCSBE, 0 },
	{ "ycsbf", KB_YCSBF, 0 },
};

#define NBENCHES (sizeof(benches) / sizeof(benches[0]))

struct store {
	const struct kb_opts *o;
	struct sn_rt *rt;
	struct sn_kv *kv;
	struct sn_kv_stats last; /* after the previous benchmark: the next one's baseline */
	char engine[64], note[256];
};

/* What --json prints when kvbench fails: the first error, and the benchmarks that finished
 * before it. Scripts parse stdout as one JSON object, so a failure must print one too. */
static struct {
	int json;
	const struct kb_result *res;
	unsigned done;
	char error[8192]; /* room for a message with a path of PATH_MAX */
} failure;

static void print_json_result(const struct kb_result *r, int first);

static void print_json_error(void)
{
	printf("{\"error\":");
	bench_json_str(stdout, *failure.error ? failure.error : "failed");
	printf(",\"results\":[");
	for (unsigned i = 0; i < failure.done; i++)
		print_json_result(&failure.res[i], i == 0);
	printf("]}\n");
}

/* A failure's exit status, after the error object when --json was given. */
static int failed(int rc)
{
	if (failure.json)
		print_json_error();
	return rc;
}

static void kb_verror(const char *fmt, va_list ap)
{
	char msg[sizeof(failure.error)];

	/* The callers va_start ap; clang-analyzer loses track of it here. */
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "snstore kvbench: %s\n", msg);
	if (!*failure.error)
		snprintf(failure.error, sizeof(failure.error), "%s", msg);
}

void kb_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kb_verror(fmt, ap);
	va_end(ap);
}

void kb_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kb_verror(fmt, ap);
	va_end(ap);
	exit(failed(1));
}

static void usage(FILE *f)
{
	fputs("usage: snstore kvbench [--db PATH] [--benchmarks LIST] [--num N] [--threads T]\n"
	      "                       [--writers W] [--depth D] [--foreign] [--sync 0|1] [--json]\n"
	      "                       [OPTIONS]\n"
	      "\n"
	      "db_bench-shaped benchmarks of the key-value store (snstore/kv.h). Benchmarks run "
	      "in\n"
	      "the order given, on one store:\n"
	      "  fillseq           keys 0..N-1 in order (fresh store: PATH is formatted first)\n"
	      "  fillrandom        N puts of uniform random keys in [0,N) (fresh store; leaves\n"
	      "                    ~63% of the keys present, as db_bench)\n"
	      "  overwrite         fillrandom on the existing store\n"
	      "  readrandom        N gets of uniform random keys; reports how many were found\n"
	      "  readwhilewriting  T reader clients do readrandom while 1 writer client puts\n"
	      "                    random keys until they finish; reports the readers\n"
	      "  fillsync          max(N/1000, 1000) random durable puts (fresh store) by W\n"
	      "                    clients at depth 1: with W > 1 this measures group commit\n"
	      "  ycsba .. ycsbf    YCSB core workloads, N operations over keys [0,N), zipfian\n"
	      "                    (theta 0.99, scrambled): A 50% read/50% update, B 95/5, C all\n"
	      "                    reads, D 95% read latest/5% insert, E 95% scan/5% insert, F "
	      "50%\n"
	      "                    read/50% read-modify-write. A \"scan\" is 10 point reads of\n"
	      "                    consecutive key numbers, one after another (the store is a\n"
	      "                    hash: it has no ordered scan). When the store holds fewer\n"
	      "                    than N keys, YCSB first loads every key of [0,N) once, in a\n"
	      "                    scrambled order (YCSB's hashed insert order): a \"load\" row\n"
	      "Default \"fillrandom,readrandom\". --threads T splits N over T clients (db_bench\n"
	      "gives each thread N). Keys are decimal, zero-padded to --key-size (LevelDB\n"
	      "db_bench's %016llu); values are db_bench's: slices of 1 MiB of 100-byte pieces,\n"
	      "each 50 random printable bytes twice. Keys and values match bench/kvref.c's for\n"
	      "the same --seed, so \"found\" counts agree with RocksDB/LevelDB/LMDB runs.\n"
	      "\n"
	      "Clients\n"
	      "  (default)         client i runs ON runtime worker i mod W as a shared-nothing\n"
	      "                    program does: up to --depth asynchronous calls in flight\n"
	      "                    (sn_kv_put_async ...), the next issued from each completion\n"
	      "  --foreign         clients are plain threads, not workers, as in a program that\n"
	      "                    calls the store from its own threads: up to --depth\n"
	      "                    asynchronous calls in flight through the workers' inboxes,\n"
	      "                    their callbacks run on the owning workers and hand each\n"
	      "                    finished call back to the thread; --depth 1 makes blocking\n"
	      "                    calls (sn_kv_put ...), as bench/kvref.c's clients do\n"
	      "  --threads T       clients (default 1)\n"
	      "  --writers W       fillsync clients, each at depth 1 (default 1)\n"
	      "  --depth D         calls in flight per client (default 1024; 1 = one at a time,\n"
	      "                    as a blocking client; fillsync always 1). A call to a shard\n"
	      "                    of another worker waits for a round trip between the two\n"
	      "                    workers' loops, and for the owner's pauses (a 2 MiB page\n"
	      "                    of a new segment takes ~0.2 ms to fault in): a client needs\n"
	      "                    calls in flight to cover them (2 workers, fillrandom: 256\n"
	      "                    reach about 90% of 1024 with 1 or 2 clients)\n"
	      "  --workers N       runtime workers, pinned one per CPU (default: one per CPU;\n"
	      "                    with --foreign, one per CPU the client threads leave, at\n"
	      "                    least 1: a worker that shares its CPU with a client thread\n"
	      "                    trades the CPU with it on every call)\n"
	      "  --mode M          how idle workers wait: event (sleep; default) or poll (spin;\n"
	      "                    with a worker on every CPU, --foreign threads starve)\n"
	      "\n"
	      "Store\n"
	      "  --db PATH         the store: a file, block device or device URI (default\n"
	      "                    ./snstore-kvbench.db). A fresh benchmark formats it; a plain\n"
	      "                    file is first removed and created again. kvbench refuses a\n"
	      "                    file or device whose first MiB is neither zeros nor a store\n"
	      "                    (`snstore kv format` replaces anything). The store is left in\n"
	      "                    place at the end (as db_bench leaves its DB)\n"
	      "  --shards S        shards at format, shard s on worker s mod W (default: one\n"
	      "                    per worker)\n"
	      "  --owners LIST     the worker that owns each shard, comma-separated: 0,1,1 is 3\n"
	      "                    shards, one on worker 0 (sn_kv_opts.owners). A client's worker\n"
	      "                    does its client's work besides its shards': with fewer\n"
	      "                    clients than workers, giving it fewer shards balances the\n"
	      "                    workers (here it pays for gets, not for puts: README)\n"
	      "  --capacity SIZE   size of a store kvbench creates (default: room for 3x the\n"
	      "                    records of N keys, at least 1 GiB)\n"
	      "  --cache SIZE      segment cache (default: a quarter of memory, as the store)\n"
	      "  --sync 0|1        0 (default): writes are acknowledged in the shard's write\n"
	      "                    buffer, durable at close; 1: every write is SN_KV_DURABLE\n"
	      "                    (acknowledged once on stable storage; concurrent writes share\n"
	      "                    a flush). fillsync is always durable\n"
	      "\n"
	      "Workload\n"
	      "  --num N           keys, and operations per benchmark (default 1000000)\n"
	      "  --key-size B      key bytes (default 16; at least the digits of N-1)\n"
	      "  --value-size B    value bytes (default 100)\n"
	      "  --seed S          seed of the key streams (default 301, as kvref)\n"
	      "  --benchmarks LIST comma-separated, from the list above\n"
	      "\n"
	      "Output\n"
	      "  (default)         a table per benchmark: ops, ops/s (ops / wall time), µs/op per\n"
	      "                    client (as db_bench), latency per operation from submission to\n"
	      "                    completion p50/p99/p99.9/max (log-linear histogram, 1/64\n"
	      "                    steps), found for reads; then a line of store statistics\n"
	      "                    (keys, live/dead MiB, cache hits, device flushes). A progress\n"
	      "                    line goes to stderr when it is a terminal\n"
	      "  --json            one JSON object: {\"store\":\"snstore\",\"engine\",\"num\",\n"
	      "                    "
	      "\"key_size\",\"value_size\",\"sync\",\"threads\",\"workers\",\"depth\",\n"
	      "                    \"results\":[{\"name\",\"ops\",\"ops_per_sec\",\"found\" "
	      "(reads),\n"
	      "                    \"lat_ns\":{\"mean\",\"p50\",\"p99\",\"p999\",\"max\"}}, ...]}, "
	      "one result\n"
	      "                    per benchmark in the order given (the shape of bench/kvref.c).\n"
	      "                    On failure (bad usage too) still one JSON object on stdout:\n"
	      "                    {\"error\": MESSAGE, \"results\": [the benchmarks that "
	      "finished]},\n"
	      "                    and the message on stderr\n"
	      "\n"
	      "SIZE takes k, m, g suffixes (powers of 1024). Exit status: 0 success, 1 a store\n"
	      "error (printed), 2 bad usage.\n"
	      "\n"
	      "Examples\n"
	      "  snstore kvbench --db /data/kv.db --benchmarks fillrandom,readrandom --num "
	      "1000000\n"
	      "  snstore kvbench --benchmarks fillsync --writers 32 --json\n"
	      "  snstore kvbench --benchmarks ycsba,ycsbb,ycsbc --threads 4 --depth 16\n"
	      "  snstore kvbench --benchmarks fillseq,readrandom --foreign --threads 2 --depth 1\n",
	      f);
}

static int parse_num(const char *opt, const char *s, uint64_t lo, uint64_t hi, int size,
                     uint64_t *out)
{
	char *end;

	errno = 0;
	if (size ? sn_parse_size(s, out) == 0
	         : (*out = strtoull(s, &end, 10),
	            !errno && end != s && !*end && *s >= '0' && *s <= '9'))
		if (*out >= lo && *out <= hi)
			return 0;
	kb_error("%s %s: expected %s from %" PRIu64 " to %" PRIu64, opt, s,
	         size ? "a size" : "an integer", lo, hi);
	return -1;
}

static unsigned digits(uint64_t v)
{
	unsigned d = 1;

	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

/* --owners LIST: a worker number per shard, comma-separated. */
static int parse_owners(const char *list, struct kb_opts *o)
{
	const char *p = list;

	o->nowners = 0;
	for (;;) {
		char num[16];
		size_t n = strcspn(p, ",");
		uint64_t v;

		if (o->nowners == KB_MAX_SHARDS) {
			kb_error("--owners %s: more than %u shards", list, KB_MAX_SHARDS);
			return -1;
		}
		if (n >= sizeof(num)) {
			kb_error("--owners %s: '%.*s' is not a worker number", list, (int)n, p);
			return -1;
		}
		snprintf(num, sizeof(num), "%.*s", (int)n, p);
		if (parse_num("--owners", num, 0, 1023, 0, &v))
			return -1;
		o->owners[o->nowners++] = (unsigned)v;
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

static int parse_args(int argc, char **argv, struct kb_opts *o, unsigned *bench, unsigned *nb)
{
	static const struct option lopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "benchmarks", required_argument, NULL, 'b' },
		{ "num", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
		{ "writers", required_argument, NULL, 'w' },
		{ "key-size", required_argument, NULL, 'k' },
		{ "value-size", required_argument, NULL, 'v' },
		{ "sync", required_argument, NULL, 'y' },
		{ "depth", required_argument, NULL, 'D' },
		{ "shards", required_argument, NULL, 'S' },
		{ "workers", required_argument, NULL, 'W' },
		{ "owners", required_argument, NULL, 'O' },
		{ "mode", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },
		{ "cache", required_argument, NULL, 'c' },
		{ "capacity", required_argument, NULL, 'C' },
		{ "foreign", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v = 0;
	char *list, *tok, *save;
	int c, bad = 0;

	opterr = 0;
	optind = 1;
	while (!bad && (c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->db = optarg;
			break;
		case 'b':
			o->benchmarks = optarg;
			break;
		case 'n':
			bad = parse_num("--num", optarg, 1, 1000000000000ull, 0, &o->num);
			break;
		case 't':
			bad = parse_num("--threads", optarg, 1, KB_MAX_CLIENTS - 1, 0, &v);
			o->threads = (unsigned)v;
			break;
		case 'w':
			bad = parse_num("--writers", optarg, 1, KB_MAX_CLIENTS, 0, &v);
			o->writers = (unsigned)v;
			break;
		case 'k':
			bad = parse_num("--key-size", optarg, 1, SN_KV_MAX_KEY, 0, &v);
			o->key_size = (unsigned)v;
			break;
		case 'v':
			bad = parse_num("--value-size", optarg, 0, SN_KV_MAX_VALUE, 0, &v);
			o->value_size = (unsigned)v;
			break;
		case 'y':
			bad = parse_num("--sync", optarg, 0, 1, 0, &v);
			o->sync = (int)v;
			break;
		case 'D':
			bad = parse_num("--depth", optarg, 1, 65536, 0, &v);
			o->depth = (unsigned)v;
			break;
		case 'S':
			bad = parse_num("--shards", optarg, 1, KB_MAX_SHARDS, 0, &v);
			o->shards = (unsigned)v;
			break;
		case 'W':
			bad = parse_num("--workers", optarg, 1, 1024, 0, &v);
			o->workers = (unsigned)v;
			break;
		case 'O':
			bad = parse_owners(optarg, o);
			break;
		case 'm':
			if (strcmp(optarg, "poll") != 0 && strcmp(optarg, "event") != 0) {
				kb_error("--mode %s: expected poll or event", optarg);
				bad = 1;
			}
			o->mode = optarg[0] == 'p' ? SN_RT_POLL : SN_RT_EVENT;
			break;
		case 's':
			bad = parse_num("--seed", optarg, 0, UINT64_MAX, 0, &o->seed);
			break;
		case 'c':
			bad = parse_num("--cache", optarg, 1, UINT64_MAX, 1, &o->cache);
			break;
		case 'C':
			bad = parse_num("--capacity", optarg, 16 * MIB, UINT64_MAX, 1,
			                &o->capacity);
			break;
		case 'f':
			o->foreign = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			kb_error("unknown or incomplete option '%s' (see --help)",
			         argv[optind - 1]);
			bad = 1;
		}
	}
	if (bad) {
		/* The error object goes to stdout when --json was given, after the bad option
		 * too: read the rest of the line for it alone. */
		while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1)
			o->json |= c == 'j';
		return -1;
	}
	if (optind < argc) {
		kb_error("unexpected argument '%s' (see --help)", argv[optind]);
		return -1;
	}
	if (digits(o->num - 1) > o->key_size) {
		kb_error("--key-size %u is too short for key %" PRIu64, o->key_size, o->num - 1);
		return -1;
	}
	if (!(list = strdup(o->benchmarks))) {
		kb_error("out of memory");
		return -1;
	}
	*nb = 0;
	for (tok = strtok_r(list, ",", &save); tok && !bad; tok = strtok_r(NULL, ",", &save)) {
		unsigned j;

		for (j = 0; j < NBENCHES && strcmp(benches[j].name, tok) != 0; j++)
			;
		if (j == NBENCHES || *nb == MAX_BENCHMARKS) {
			kb_error("%s '%s' (see --help)",
			         j == NBENCHES ? "unknown benchmark" : "too many benchmarks at",
			         tok);
			bad = 1;
		} else {
			bench[(*nb)++] = j;
		}
	}
	free(list);
	if (!bad && !*nb) {
		kb_error("--benchmarks is empty");
		bad = 1;
	}
	/* YCSB D and E insert keys after num: up to 2 num - 1. */
	for (unsigned i = 0; !bad && i < *nb; i++)
		if ((benches[bench[i]].kind == KB_YCSBD || benches[bench[i]].kind == KB_YCSBE) &&
		    digits(2 * o->num - 1) > o->key_size) {
			kb_error("--key-size %u is too short for the keys %s "
			         "inserts (up to %" PRIu64 ")",
			         o->key_size, benches[bench[i]].name, 2 * o->num - 1);
			bad = 1;
		}
	return bad ? -1 : 0;
}

/* ---- the store ---- */

/* The file behind --db when it is a plain path (kvbench may remove and recreate it). */
static int plain_path(const char *db)
{
	const char *colon = strchr(db, ':'), *slash = strchr(db, '/');

	return !colon || (slash && slash < colon);
}

static int file_exists(const char *db)
{
	char file[4096];
	struct stat st;

	cmd_uri_file(db, file, sizeof(file));
	return !*file || stat(file, &st) == 0;
}

int cmd_unlink_unused(const char *file)
{
	/* Exclusive where the file opens for writing (NFS emulates flock with fcntl locks,
	 * whose exclusive kind needs it); a shared lock still conflicts with a writer's. */
	int fd = open(file, O_RDWR | O_CLOEXEC), how = LOCK_EX, err = 0;

	if (fd < 0 && (fd = open(file, O_RDONLY | O_CLOEXEC)) >= 0)
		how = LOCK_SH;
	if (fd >= 0 && flock(fd, how | LOCK_NB) != 0 && errno == EWOULDBLOCK)
		err = -EBUSY;
	if (!err && unlink(file)) /* under the lock: no open of it can start meanwhile */
		err = -errno;
	if (fd >= 0)
		close(fd);
	return err;
}

#define CHECK_BYTES (1u << 20) /* filesystems keep their superblocks within this */

/*
 * Before a fresh benchmark: the file or device behind --db must be missing, empty, all
 * zeros in its first MiB, or a store (any earlier run's); anything else is refused rather
 * than destroyed (`snstore kv format` replaces whatever a path holds, when that is the
 * intent). A plain regular file is then removed, so the format creates it at the right
 * size; devices and URIs are formatted in place.
 */
static int remove_store_file(const char *db)
{
	char file[4096];
	unsigned char *head = malloc(CHECK_BYTES);
	ssize_t n = 0;
	struct stat st;
	int fd, foreign = 0, err;

	cmd_uri_file(db, file, sizeof(file));
	if (!head) {
		kb_error("out of memory");
		return -1;
	}
	if (*file && stat(file, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		if ((fd = open(file, O_RDONLY)) < 0 || (n = read(fd, head, CHECK_BYTES)) < 0) {
			kb_error("reading %s: %s", file, strerror(errno));
			if (fd >= 0)
				close(fd);
			free(head);
			return -1;
		}
		close(fd);
		if (n < 8 || memcmp(head, "snstorKV", 8) != 0)
			for (ssize_t i = 0; i < n && !foreign; i++)
				foreign = head[i] != 0;
	}
	free(head);
	if (foreign) {
		kb_error("--db %s holds something that is not an snstore store "
		         "(its first MiB is not zero): refusing to format it (`snstore kv format` "
		         "replaces what a path holds)",
		         db);
		return -1;
	}
	if (!plain_path(db) || !*file || stat(file, &st) || !S_ISREG(st.st_mode))
		return 0;
	if ((err = cmd_unlink_unused(file)) == -EBUSY) {
		kb_error("--db %s is in use: another open of it holds its lock (a store open in "
		         "another process?): refusing to remove it",
		         db);
		return -1;
	}
	if (err) {
		kb_error("removing %s: %s", db, strerror(-err));
		return -1;
	}
	return 0;
}

static int store_fail(const char *what, const char *db, int err)
{
	kb_error("%s %s: %s", what, db, *sn_errmsg() ? sn_errmsg() : sn_strerror(err));
	return -1;
}

/* Open the store for a benchmark: formatted first when fresh, else as it is. */
static int store_ready(struct store *s, int fresh)
{
	const struct kb_opts *o = s->o;
	uint64_t rec = (24u + o->key_size + o->value_size + 7) & ~7ull;
	struct sn_kv_opts ko = { 0 };
	int err;

	if (s->kv && fresh) {
		err = sn_kv_close(s->kv);
		s->kv = NULL;
		if (err)
			return store_fail("closing", o->db, err);
	}
	if (s->kv)
		return 0;
	if (fresh && remove_store_file(o->db))
		return -1;
	ko.shards = o->shards ? o->shards : o->nowners ? o->nowners : sn_rt_workers(s->rt);
	ko.owners = o->nowners ? o->owners : NULL;
	ko.nowners = o->nowners;
	ko.capacity = o->capacity;
	/* A new file: room for the run, unless the URI sizes the device (size=N: all of it). */
	if (!ko.capacity && !file_exists(o->db) && !strstr(o->db, "size=")) {
		ko.capacity = 3 * o->num * rec + 64 * MIB;
		ko.capacity = ko.capacity < 1024 * MIB ? 1024 * MIB
		                                       : (ko.capacity + MIB - 1) & ~(MIB - 1);
	}
	ko.rt = s->rt;
	ko.cache_bytes = o->cache;
	ko.sync = SN_KV_SYNC_NONE;
	if (fresh && (err = sn_kv_format(o->db, &ko)))
		return store_fail("formatting", o->db, err);
	if ((err = sn_kv_open(o->db, &ko, &s->kv)))
		return store_fail("opening", o->db, err);
	if (!s->engine[0])
		kv_engine(s->kv, s->engine, sizeof(s->engine), s->note, sizeof(s->note));
	if ((err = sn_kv_stat(s->kv, &s->last)))
		return store_fail("stat of", o->db, err);
	return 0;
}

/* ---- shared with kv.c ---- */

/* The engine serving an open store, and auto:'s reason for it (sn_kv_dev's info). */
void kv_engine(const struct sn_kv *kv, char *engine, size_t elen, char *note, size_t nlen)
{
	struct sn_dev_info in;

	sn_dev_info(sn_kv_dev(kv), &in);
	snprintf(engine, elen, "%s", in.engine);
	snprintf(note, nlen, "%s", in.note ? in.note : "");
}

/* ---- output ---- */

static double ops_per_sec(const struct kb_result *r)
{
	return r->secs > 0 ? (double)r->ops / r->secs : 0;
}

static void print_header(const struct kb_opts *o, const struct store *s)
{
	printf("snstore kvbench: %s  engine %s%s%s%s\n", o->db, s->engine, *s->note ? " (" : "",
	       s->note, *s->note ? ")" : "");
	printf("keys %u B, values %u B, num %" PRIu64 ", seed %" PRIu64 "; ", o->key_size,
	       o->value_size, o->num, o->seed);
	if (o->foreign && o->depth > 1)
		printf("%u foreign client thread%s, depth %u (asynchronous calls)", o->threads,
		       o->threads > 1 ? "s" : "", o->depth);
	else if (o->foreign)
		printf("%u foreign client thread%s, blocking calls", o->threads,
		       o->threads > 1 ? "s" : "");
	else
		printf("%u client%s on workers, depth %u", o->threads, o->threads > 1 ? "s" : "",
		       o->depth);
	printf("; %u worker%s (%s), fillsync writers %u\n", sn_rt_workers(s->rt),
	       sn_rt_workers(s->rt) > 1 ? "s" : "", o->mode == SN_RT_POLL ? "poll" : "event",
	       o->writers);
	printf("shards: %u", s->last.shards);
	if (o->nowners) {
		printf(" (worker of each: ");
		for (unsigned i = 0; i < o->nowners; i++)
			printf("%s%u", i ? "," : "", o->owners[i]);
		printf(")");
	}
	printf("\n");
	printf("writes: %s; fillsync: durable per write\n",
	       o->sync ? "durable per write (SN_KV_DURABLE; group commit)"
	               : "acknowledged in the write buffer, durable at close");
	if (o->depth > 1)
		printf("latency: issue to callback, with up to %u calls in flight per client: "
		       "queueing included (--depth 1 for one call at a time)\n",
		       o->depth);
	printf("%-18s %10s %12s %9s %9s %9s %9s %9s\n", "benchmark", "ops", "ops/s", "µs/op", "p50",
	       "p99", "p99.9", "max");
	printf("%-18s %10s %12s %9s %9s %9s %9s %9s\n", "", "", "", "(client)", "(µs)", "(µs)",
	       "(µs)", "(µs)");
	fflush(stdout);
}

static void print_row(const struct kb_result *r)
{
	double client_us = r->ops ? r->secs * r->clients * 1e6 / (double)r->ops : 0;

	printf("%-18s %10" PRIu64 " %12.0f %9.3f %9.1f %9.1f %9.1f %9.1f", r->name, r->ops,
	       ops_per_sec(r), client_us, (double)sn_hist_pct(r->h, 50) / 1e3,
	       (double)sn_hist_pct(r->h, 99) / 1e3, (double)sn_hist_pct(r->h, 99.9) / 1e3,
	       (double)r->h->max / 1e3);
	if (kb_is_read(r->kind))
		printf("  (%" PRIu64 " of %" PRIu64 " gets found)", r->found, r->reads);
	if (r->kind == KB_READWHILEWRITING)
		printf("  writer: %" PRIu64 " puts, %.0f/s", r->writer_ops,
		       r->writer_secs > 0 ? (double)r->writer_ops / r->writer_secs : 0);
	if (r->kind == KB_FILLSYNC)
		printf("  (%u writers)", r->clients);
	printf("\n");
	fflush(stdout);
}

static void print_stat_line(struct store *s)
{
	struct sn_kv_stats st, *l = &s->last;
	uint64_t hits, misses;

	if (sn_kv_stat(s->kv, &st))
		return;
	hits = st.cache_hits - l->cache_hits;
	misses = st.cache_misses - l->cache_misses;
	printf("  store: %" PRIu64 " keys, live %.1f MiB, dead %.1f MiB, %" PRIu64 "/%" PRIu64
	       " segments; gets from cache %s",
	       st.keys, (double)st.live_bytes / MIB, (double)st.dead_bytes / MIB, st.segments_used,
	       st.segments_total, hits + misses ? "" : "-");
	if (hits + misses)
		printf("%.1f%%", 100.0 * (double)hits / (double)(hits + misses));
	printf("; %" PRIu64 " device flushes, %" PRIu64 " segments compacted\n",
	       st.flushes - l->flushes, st.compactions - l->compactions);
	*l = st;
	fflush(stdout);
}

static void print_json_result(const struct kb_result *r, int first)
{
	printf("%s{\"name\":", first ? "" : ",");
	bench_json_str(stdout, r->name);
	printf(",\"ops\":%" PRIu64 ",\"ops_per_sec\":%.1f", r->ops, ops_per_sec(r));
	if (kb_is_read(r->kind))
		printf(",\"found\":%" PRIu64 ",\"reads\":%" PRIu64, r->found, r->reads);
	if (r->kind == KB_READWHILEWRITING)
		printf(",\"writer_ops\":%" PRIu64 ",\"writer_ops_per_sec\":%.1f", r->writer_ops,
		       r->writer_secs > 0 ? r->writer_ops / r->writer_secs : 0);
	printf(",\"lat_ns\":{\"mean\":%.1f,\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
	       ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}}",
	       sn_hist_mean(r->h), sn_hist_pct(r->h, 50), sn_hist_pct(r->h, 99),
	       sn_hist_pct(r->h, 99.9), r->h->count ? r->h->max : 0);
}

static void print_json(const struct kb_opts *o, const struct store *s, const struct kb_result *res,
                       unsigned n)
{
	printf("{\"store\":\"snstore\",\"engine\":");
	bench_json_str(stdout, s->engine);
	printf(",\"num\":%" PRIu64 ",\"key_size\":%u,\"value_size\":%u,\"sync\":%d,\"threads\":%u,"
	       "\"writers\":%u,\"workers\":%u,\"shards\":%u,\"depth\":%u,\"clients\":\"%s\","
	       "\"mode\":\"%s\",\"results\":[",
	       o->num, o->key_size, o->value_size, o->sync, o->threads, o->writers,
	       sn_rt_workers(s->rt), s->last.shards, o->depth, o->foreign ? "foreign" : "worker",
	       o->mode == SN_RT_POLL ? "poll" : "event");
	for (unsigned i = 0; i < n; i++)
		print_json_result(&res[i], i == 0);
	printf("]}\n");
}

/* YCSB runs on a loaded store: every key of [0, num) is written once when the store holds
 * fewer than num keys (empty, or left by fillrandom or fillsync). */
static int ycsb_load(struct store *s, const struct kb_env *env, int progress)
{
	struct kb_result r;
	struct sn_kv_stats st;
	int err;

	if ((err = sn_kv_stat(s->kv, &st)))
		return store_fail("stat of", s->o->db, err);
	if (st.keys >= s->o->num)
		return 0;
	err = kb_run(env, KB_LOAD, "load", &r, progress);
	if (!err && !s->o->json) {
		print_row(&r);
		print_stat_line(s);
	}
	free(r.h);
	return err;
}

int cmd_kvbench(int argc, char **argv)
{
	struct kb_opts o = { .db = "./snstore-kvbench.db",
		             .benchmarks = "fillrandom,readrandom",
		             .num = 1000000,
		             .threads = 1,
		             .writers = 1,
		             .key_size = 16,
		             .value_size = 100,
		             .depth = 1024,
		             .seed = 301,
		             .mode = SN_RT_EVENT };
	unsigned bench[MAX_BENCHMARKS], nb = 0, i;
	/* Static: failure.res points to it, and failure outlives this call. */
	static struct kb_result res[MAX_BENCHMARKS];
	struct sn_rt_opts ro = { 0 };
	struct store s = { 0 };
	cpu_set_t cpus;
	struct kb_env env = { 0 };
	int progress = isatty(STDERR_FILENO), rc = 0, bad, err;
	char *vpool;

	memset(res, 0, sizeof(res));
	failure.res = res;
	bad = parse_args(argc, argv, &o, bench, &nb);
	failure.json = o.json;
	if (bad)
		return failed(2);
	ro.workers = o.workers;
	ro.mode = o.mode;
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) {
		unsigned ncpu = (unsigned)CPU_COUNT(&cpus), nw = o.workers ? o.workers : ncpu;

		/* Plain client threads need CPUs of their own: a worker that shares its CPU
		 * with a client hands the CPU back and forth with it on every call. */
		if (o.foreign && !o.workers)
			ro.workers = nw = ncpu > o.threads ? ncpu - o.threads : 1;

		/* More workers than CPUs cannot be pinned one per CPU: let the scheduler
		 * place them (SN_RT_NOPIN) rather than refuse. */
		if (nw > ncpu) {
			ro.flags |= SN_RT_NOPIN;
			fprintf(stderr,
			        "snstore kvbench: %u workers on %u CPUs: workers not pinned\n", nw,
			        ncpu);
		}
		/* Spinning workers on every CPU leave a blocking caller no CPU to run on: it
		 * gets one scheduler slice at a time (milliseconds per call). */
		if (o.foreign && o.mode == SN_RT_POLL && nw >= ncpu)
			fprintf(stderr,
			        "snstore kvbench: warning: --foreign with --mode poll and a "
			        "worker on every CPU: client threads wait for scheduler "
			        "slices (ms per call)\n");
	}
	if ((err = sn_rt_create(&ro, &s.rt))) {
		kb_error("starting the runtime: %s", *sn_errmsg() ? sn_errmsg() : sn_strerror(err));
		return failed(1);
	}
	s.o = &o;
	if (!(vpool = kg_make_values(o.value_size))) {
		kb_error("out of memory");
		sn_rt_destroy(s.rt);
		return failed(1);
	}
	env.o = &o;
	env.rt = s.rt;
	env.vpool = vpool;
	for (i = 0; i < nb && !rc; i++) {
		enum kb_kind kind = benches[bench[i]].kind;

		if (store_ready(&s, benches[bench[i]].fresh)) {
			rc = 1;
			break;
		}
		env.kv = s.kv;
		if (i == 0 && !o.json)
			print_header(&o, &s);
		if (kind >= KB_YCSBA && kind <= KB_YCSBF && ycsb_load(&s, &env, progress)) {
			rc = 1;
			break;
		}
		if (kb_run(&env, kind, benches[bench[i]].name, &res[i], progress))
			rc = 1;
		else
			failure.done = i + 1;
		if (!rc && !o.json)
			print_row(&res[i]);
		if (!o.json)
			print_stat_line(&s);
	}
	if (s.kv && (err = sn_kv_close(s.kv)) && !rc)
		rc = store_fail("closing", o.db, err) ? 1 : 0;
	if (rc)
		failed(rc);
	else if (o.json)
		print_json(&o, &s, res, nb);
	for (i = 0; i < nb; i++)
		free(res[i].h);
	free(vpool);
	sn_rt_destroy(s.rt);
	return rc;
}
