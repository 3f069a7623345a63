/* SPDX-License-Identifier: MIT */
/*
 * fuzz_kv_recover.c — libFuzzer target for the KV store's recovery (src/kv/recover.c and
 * everything sn_kv_open() reads): the input is laid out as a small store — one shard of
 * four 64 KiB segments, the smallest the format allows — on a memfd device, then the store
 * is opened, scanned, written to, compacted and closed. It must never crash, hang or
 * leak; an open either fails with an error and a reason, or gives a store that works: a
 * put is read back exactly, the scan returns keys and values within the limits.
 *
 * Input: byte 0 is a set of flags, bytes 1..8192 are the two superblock copies (device
 * offsets 0 and 4096), the rest is the log (device offset 1 MiB, up to 256 KiB); missing
 * bytes are zeros. Flags make the target repair checksums after the mutation, so that the
 * fuzzer reaches the code behind them: 1 the superblocks' CRCs, 2 the segment headers',
 * 4 the records'; 8 opens the store through fault:...?bytes=1, a byte-addressable device,
 * so that recovery and the rest run on the mapped log. Flag 2 also repairs the CRCs of
 * index checkpoint parts (header and payload). The seed corpus (fuzz/corpus/kv_recover/) holds images of real stores;
 * FUZZ_KV_RECOVER_SEEDS=DIR ./fuzz_kv_recover writes them again (from the API) and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "kv/kv_impl.h"
#include "util/crc32c.h"
#include "util/util.h"

#define SB_AREA  8192u
#define LOG_OFF  (1u << 20)
#define SEG      (64u << 10)
#define NSEGS    4u
#define LOG_AREA (NSEGS * SEG)
#define DEV_SIZE (LOG_OFF + LOG_AREA)

enum { FIX_SUPER = 1, FIX_SEGHDR = 2, FIX_RECORDS = 4, MAPPED = 8 };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_kv_recover: %s:%d: '%s' broken: ", __FILE__, \
			        __LINE__, #cond);                                          \
			fprintf(stderr, __VA_ARGS__);                                      \
			fputc('\n', stderr);                                               \
			abort();                                                           \
		}                                                                          \
	} while (0)

static int dev_fd = -1, allow_einval;
static char dev_uri[64], mapped_uri[96];
static struct sn_rt *rt;
static unsigned char sb_buf[SB_AREA], log_buf[LOG_AREA];

static struct sn_kv_opts store_opts(void)
{
	struct sn_kv_opts o = { 0 };

	o.shards = 1;
	o.segment_size = SEG;
	o.capacity = DEV_SIZE;
	o.cache_bytes = 1; /* two segments: reads go to the device too */
	o.rt = rt;
	return o;
}

/* ---- checksums, repaired on request ---- */

static void fix_super(void)
{
	for (unsigned c = 0; c < 2; c++) {
		struct sn_kv_super *s = (struct sn_kv_super *)(sb_buf + c * 4096);

		s->crc = sn_crc32c(0, s, offsetof(struct sn_kv_super, crc));
	}
}

static void fix_log(unsigned flags)
{
	const struct sn_kv_super *sb = (const struct sn_kv_super *)sb_buf;
	struct sn_kv fake; /* kv_rec_seed() reads the store's uuid from it */

	memcpy(fake.sb.uuid, sb->uuid, sizeof(fake.sb.uuid));
	for (unsigned i = 0; i < NSEGS; i++) {
		unsigned char *seg = log_buf + i * SEG;
		struct sn_kv_seghdr *h = (struct sn_kv_seghdr *)seg, c;
		uint32_t off = sizeof(*h), seed;

		if (h->magic == SN_KV_CKPT_MAGIC && (flags & FIX_SEGHDR)) {
			/* An index checkpoint's part: its payload's CRC, then the header's. */
			struct sn_kv_ckpthdr *k = (struct sn_kv_ckpthdr *)seg, kc;

			if (k->len <= SEG - sizeof(*k))
				k->payload_crc = sn_crc32c(0, seg + sizeof(*k), k->len);
			kc = *k;
			kc.crc = 0;
			k->crc = sn_crc32c(0, &kc, sizeof(kc));
			continue;
		}
		if (h->magic != SN_KV_SEG_MAGIC)
			continue;
		if (flags & FIX_SEGHDR) {
			c = *h;
			c.crc = 0;
			h->crc = sn_crc32c(0, &c, sizeof(c));
		}
		if (!(flags & FIX_RECORDS))
			continue;
		seed = kv_rec_seed(&fake, h->seq);
		while (off + sizeof(struct sn_kv_rechdr) <= SEG) {
			struct sn_kv_rechdr *r = (struct sn_kv_rechdr *)(seg + off);
			uint32_t x, len;

			if (!r->type || r->type > SN_KV_REC_COMMIT || r->vlen > SEG)
				break;
			x = sn_kv_rec_extra(r->type);
			len = sn_kv_rec_len(r->type, r->klen, r->vlen);
			if (len > SEG - off)
				break;
			r->crc = sn_crc32c(seed, seg + off + 4,
			                   sizeof(*r) - 4 + x + r->klen + r->vlen);
			off += len;
		}
	}
}

/* ---- the device ---- */

static int write_device(void)
{
	if (ftruncate(dev_fd, 0) || ftruncate(dev_fd, DEV_SIZE) ||
	    pwrite(dev_fd, sb_buf, SB_AREA, 0) != (ssize_t)SB_AREA ||
	    pwrite(dev_fd, log_buf, LOG_AREA, LOG_OFF) != (ssize_t)LOG_AREA)
		return -1;
	return 0;
}

static int setup(void)
{
	struct sn_rt_opts ro = { 0 };

	if (dev_fd >= 0)
		return 0;
	dev_fd = memfd_create("fuzz_kv_recover", 0);
	if (dev_fd < 0 || ftruncate(dev_fd, DEV_SIZE))
		return -1;
	snprintf(dev_uri, sizeof(dev_uri), "psync:/proc/self/fd/%d", dev_fd);
	snprintf(mapped_uri, sizeof(mapped_uri), "fault:psync:/proc/self/fd/%d?bytes=1", dev_fd);
	ro.workers = 1;
	ro.flags = SN_RT_NOPIN;
	return sn_rt_create(&ro, &rt);
}

/* ---- what a recovered store must do ---- */

struct scan_ctx {
	unsigned keys;
};

static int scan_fn(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct scan_ctx *c = arg;

	(void)key;
	(void)val;
	CHECK(klen >= 1 && klen <= SN_KV_MAX_KEY, "scan gave a key of %zu bytes", klen);
	CHECK(vlen <= SN_KV_MAX_VALUE, "scan gave a value of %zu bytes", vlen);
	c->keys++;
	return 0;
}

static void exercise(struct sn_kv *kv)
{
	static const char val[] = "a value written after recovery";
	struct scan_ctx sc = { 0 };
	struct sn_kv_stats st;
	void *v = NULL;
	size_t vl = 0;
	int err;

	err = sn_kv_scan(kv, scan_fn, &sc);
	/* A record recovery accepted must be one the store can serve: a key over 1024 bytes
	 * makes the scan's get fail with -EINVAL. FUZZ_KV_ALLOW_EINVAL=1 looks past that. */
	CHECK(!err || err == SN_ECORRUPT || err == -EIO || (err == -EINVAL && allow_einval),
	      "scan = %d (%s)", err, sn_errmsg());
	CHECK(!sn_kv_stat(kv, &st), "stat failed");
	CHECK(err || sc.keys <= st.keys, "scan saw %u keys, stat says %llu", sc.keys,
	      (unsigned long long)st.keys);
	/* The recovered store takes writes, and reads them back exactly. */
	err = sn_kv_put(kv, "fuzz-key", 8, val, sizeof(val), SN_KV_DURABLE);
	CHECK(!err || err == -ENOSPC || err == -EIO, "put = %d", err);
	if (!err) {
		err = sn_kv_get(kv, "fuzz-key", 8, &v, &vl);
		CHECK(!err && vl == sizeof(val) && !memcmp(v, val, vl),
		      "get after put = %d, %zu bytes", err, vl);
		free(v);
		err = sn_kv_del(kv, "fuzz-key", 8, 0);
		CHECK(!err || err == -ENOSPC || err == -EIO, "del = %d", err);
	}
	sn_kv_compact(kv, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sn_kv_opts o;
	struct sn_kv *kv;
	unsigned flags;
	int err;

	if (setup())
		abort();
	flags = size ? data[0] : 0;
	data += size != 0;
	size -= size != 0;
	memset(sb_buf, 0, sizeof(sb_buf));
	memset(log_buf, 0, sizeof(log_buf));
	memcpy(sb_buf, data, size < SB_AREA ? size : SB_AREA);
	if (size > SB_AREA)
		memcpy(log_buf, data + SB_AREA,
		       size - SB_AREA < LOG_AREA ? size - SB_AREA : LOG_AREA);
	if (flags & FIX_SUPER)
		fix_super();
	if (flags & (FIX_SEGHDR | FIX_RECORDS))
		fix_log(flags);
	if (write_device())
		abort();

	o = store_opts();
	o.no_create = 1;
	sn__err_clear();
	err = sn_kv_open(flags & MAPPED ? mapped_uri : dev_uri, &o, &kv);
	if (err) {
		CHECK(err < 0 && !kv, "open = %d", err);
		CHECK(*sn_errmsg(), "open failed with %d without a reason", err);
		return 0;
	}
	exercise(kv);
	err = sn_kv_close(kv);
	CHECK(!err || err == -EIO, "close = %d", err);
	return 0;
}

/* ---- the seed corpus, from real stores ---- */

static int save(const char *dir, const char *name, unsigned flags, size_t log_len)
{
	char path[1024];
	FILE *f;

	/* Trailing zeros are implied: keep the files small. */
	while (log_len && !log_buf[log_len - 1])
		log_len--;
	if (pread(dev_fd, sb_buf, SB_AREA, 0) != (ssize_t)SB_AREA)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return -1;
	fputc((int)flags, f);
	fwrite(sb_buf, 1, SB_AREA, f);
	if (log_len)
		fwrite(log_buf, 1, log_len, f);
	printf("%s: %zu bytes\n", path, 1 + SB_AREA + log_len);
	return fclose(f);
}

static int read_log(void)
{
	return pread(dev_fd, log_buf, LOG_AREA, LOG_OFF) == (ssize_t)LOG_AREA ? 0 : -1;
}

static void value(char *buf, size_t n, unsigned tag)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + (tag + i * 7) % 26);
}

static int write_seeds(const char *dir)
{
	struct sn_kv_opts o = store_opts();
	struct sn_kv_batch *b = sn_kv_batch_new();
	static char val[20000];
	char key[32];
	struct sn_kv *kv;
	int err = 0;

	if (!b || ftruncate(dev_fd, 0) || ftruncate(dev_fd, DEV_SIZE) ||
	    (err = sn_kv_open(dev_uri, &o, &kv)))
		return err ? err : -1;
	sn_kv_close(kv);
	err |= read_log();
	err |= save(dir, "empty-store", 0, LOG_AREA);

	/* A few puts, an overwrite, deletes, a batch (its records and commit). */
	if (sn_kv_open(dev_uri, &o, &kv))
		return -1;
	for (unsigned i = 0; i < 12; i++) {
		value(val, 20 + i * 13, i);
		sn_kv_put(kv, key, (size_t)sprintf(key, "key-%u", i), val, 20 + i * 13, 0);
	}
	sn_kv_put(kv, "key-3", 5, "new", 3, 0);
	sn_kv_del(kv, "key-4", 5, 0);
	sn_kv_batch_put(b, "batch-a", 7, "A", 1);
	sn_kv_batch_put(b, "batch-b", 7, "B", 1);
	sn_kv_batch_del(b, "key-5", 5);
	sn_kv_write(kv, b, 0);
	sn_kv_put(kv, "", 0, "", 0, 0); /* refused: nothing written */
	sn_kv_close(kv);
	read_log();
	err |= save(dir, "small-store", 0, LOG_AREA);
	err |= save(dir, "small-store-fix-all", FIX_SUPER | FIX_SEGHDR | FIX_RECORDS, LOG_AREA);

	/* The checkpoint that close wrote, and a log tail written after it (synced, never
	 * closed: recovery loads the checkpoint and scans the tail). */
	if (sn_kv_open(dev_uri, &o, &kv))
		return -1;
	sn_kv_put(kv, "key-1", 5, "after the checkpoint", 20, 0);
	sn_kv_del(kv, "key-2", 5, 0);
	sn_kv_put(kv, "tail-key", 8, "tail", 4, 0);
	sn_kv_sync(kv);
	if (read_log())
		err = -1;
	sn_kv_close(kv);
	err |= save(dir, "checkpoint-and-tail", 0, LOG_AREA);
	err |= save(dir, "checkpoint-and-tail-fix-all", FIX_SEGHDR | FIX_RECORDS, LOG_AREA);
	err |= save(dir, "checkpoint-and-tail-mapped", MAPPED, LOG_AREA);
	if (read_log())
		err = -1;

	/* Cut in the middle of the log: a torn tail. */
	{
		size_t used = LOG_AREA;

		while (used && !log_buf[used - 1])
			used--;
		memset(log_buf + used / 2, 0, LOG_AREA - used / 2);
		err |= save(dir, "torn-tail", FIX_SEGHDR, used / 2);
	}

	/* Three segments of values, most overwritten or deleted, some compacted away. */
	if (ftruncate(dev_fd, 0) || ftruncate(dev_fd, DEV_SIZE) || sn_kv_open(dev_uri, &o, &kv))
		return -1;
	for (unsigned i = 0; i < 40; i++) {
		value(val, 4000, i);
		sn_kv_put(kv, key, (size_t)sprintf(key, "many-%u", i % 20), val, 3000 + i * 50, 0);
	}
	for (unsigned i = 0; i < 20; i += 3)
		sn_kv_del(kv, key, (size_t)sprintf(key, "many-%u", i), 0);
	sn_kv_sync(kv);
	read_log();
	err |= save(dir, "several-segments", FIX_RECORDS, LOG_AREA);
	sn_kv_compact(kv, 1);
	sn_kv_batch_clear(b);
	sn_kv_batch_put(b, "after", 5, "compaction", 10);
	sn_kv_batch_put(b, "many-1", 6, "x", 1);
	sn_kv_write(kv, b, SN_KV_DURABLE);
	sn_kv_close(kv);
	read_log();
	err |= save(dir, "compacted", 0, LOG_AREA);
	err |= save(dir, "compacted-fix-records", FIX_RECORDS, LOG_AREA);
	sn_kv_batch_free(b);
	return err;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_KV_RECOVER_SEEDS");

	(void)argc;
	(void)argv;
	allow_einval = getenv("FUZZ_KV_ALLOW_EINVAL") != NULL;
	if (setup())
		abort();
	if (dir) {
		int err = write_seeds(dir);

		printf("seeds written to %s: %s\n", dir, err ? "with errors" : "ok");
		exit(err ? 1 : 0);
	}
	return 0;
}
