/* SPDX-License-Identifier: MIT */
/*
 * test_dev_dax.c — what dax: and pmem: promise beyond the conformance suite: on a file
 * that is not on a DAX mount dax: fails and says so, unless fallback=msync, which opens
 * and reports the weaker (page, msync) guarantee; tmpfs is reported as RAM; each cache-line
 * flush instruction the CPU has persists; pmem: reports the granularity libpmem2 granted.
 *
 *   test_dev_dax DISKDIR SHMDIR
 *
 * DISKDIR must be on a disk filesystem that is not DAX (the build directory, ext4), SHMDIR
 * on tmpfs (/dev/shm); a case whose directory is not so skips and says why. Scratch files
 * are 1 MiB and removed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <snstore/dev.h>

#include "test.h"

static const char *disk_dir, *shm_dir;

static int fs_is_ram(const char *dir)
{
	struct statfs sfs;

	return statfs(dir, &sfs) == 0 && (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
}

static int dir_exists(const char *dir)
{
	struct stat st;

	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static void scratch(char *buf, size_t len, const char *dir, const char *what)
{
	snprintf(buf, len, "%s/snstore-test-dax-%d-%s.dat", dir, (int)getpid(), what);
	unlink(buf);
}

static int engine_built(const char *name)
{
	const struct sn_engine_desc *d;

	for (unsigned i = 0; (d = sn_engine_desc(i)); i++)
		if (!strcmp(d->name, name))
			return 1;
	return 0;
}

/* Store a pattern through the mapping, persist it, read it back through a queue; then
 * write through the queue with FUA and see it in the mapping. */
static int map_roundtrip(struct sn_dev *dev, uint64_t off, unsigned len)
{
	struct sn_queue *q;
	unsigned char *m, *buf;
	void *base;
	int r = T_FAIL;

	ASSERT_OK(sn_dev_map(dev, &base));
	ASSERT_OK(sn_queue_create(dev, 4, &q));
	if (sn_queue_buf_alloc(q, len, (void **)&buf))
		goto out;
	m = base;
	for (unsigned i = 0; i < len; i++)
		m[off + i] = (unsigned char)(i * 7 + 1);
	if (sn_dev_persist(dev, m + off, len) || sn_queue_pread(q, buf, len, off)) {
		printf("    persist or read failed: %s\n", sn_errmsg());
		goto out;
	}
	for (unsigned i = 0; i < len; i++)
		if (buf[i] != (unsigned char)(i * 7 + 1)) {
			printf("    byte %u read back 0x%02x\n", i, buf[i]);
			goto out;
		}
	for (unsigned i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 13 + 5);
	{
		struct sn_io io;
		struct sn_cqe cqe;

		sn_io_write(&io, buf, len, off + len, 9);
		io.flags = SN_IO_FUA;
		if (sn_queue_submit(q, &io, 1) != 1 || sn_queue_reap(q, &cqe, 1, 1) != 1 ||
		    cqe.res != (int64_t)len) {
			printf("    FUA write failed: %s\n", sn_errmsg());
			goto out;
		}
	}
	if (memcmp(m + off + len, buf, len) != 0) {
		printf("    the mapping does not show the queue's write\n");
		goto out;
	}
	if (sn_queue_flush(q)) {
		printf("    flush failed: %s\n", sn_errmsg());
		goto out;
	}
	r = T_PASS;
out:
	sn_queue_destroy(q);
	return r;
}

static int case_not_dax(void)
{
	char path[4200], uri[4300];
	struct sn_dev *dev;
	struct stat st;
	int err;

	if (fs_is_ram(disk_dir))
		SKIP("%s is tmpfs/ramfs; this case needs a disk filesystem", disk_dir);
	scratch(path, sizeof(path), disk_dir, "nodax");
	snprintf(uri, sizeof(uri), "dax:%s?create=1&size=1m", path);
	err = sn_dev_open(uri, &dev);
	if (err == 0) {
		struct sn_dev_info in;

		sn_dev_info(dev, &in);
		printf("    %s opened with features \"%s\"\n", path, in.features);
		sn_dev_close(dev);
		unlink(path);
		SKIP("%s accepts MAP_SYNC: it is a DAX mount", disk_dir);
	}
	printf("    %s -> %s: \"%s\"\n", uri, sn_errname(err), sn_errmsg());
	ASSERT_ERR(err, SN_ENOTAVAIL);
	ASSERT_STR_HAS(sn_errmsg(), "not on a DAX mount");
	ASSERT_STR_HAS(sn_errmsg(), "fallback=msync");
	ASSERT_STR_HAS(sn_errmsg(), path);
	/* The file this failed open created is gone again. */
	ASSERT_TRUE(stat(path, &st) != 0 && errno == ENOENT);
	return T_PASS;
}

static int case_fallback_msync(void)
{
	char path[4200], uri[4300];
	struct sn_dev_info in;
	struct sn_dev *dev;
	int r;

	if (fs_is_ram(disk_dir))
		SKIP("%s is tmpfs/ramfs; this case needs a disk filesystem", disk_dir);
	scratch(path, sizeof(path), disk_dir, "msync");
	snprintf(uri, sizeof(uri), "dax:%s?create=1&size=1m&fallback=msync", path);
	ASSERT_OK(sn_dev_open(uri, &dev));
	sn_dev_info(dev, &in);
	printf("    features \"%s\", flush: %s\n", in.features, in.flush_does);
	if (!strncmp(in.features, "MAP_SYNC", 8)) {
		sn_dev_close(dev);
		unlink(path);
		SKIP("%s accepts MAP_SYNC: it is a DAX mount, no fallback happens", disk_dir);
	}
	r = T_FAIL;
	if (in.persist_gran != SN_GRAN_PAGE || !strstr(in.features, "fallback=msync") ||
	    !strstr(in.flush_does, "fdatasync") || !(in.caps & SN_CAP_BYTE_ADDR) ||
	    (in.caps & SN_CAP_FUA))
		printf("    expected page granularity, fdatasync, no native FUA: gran %u, caps "
		       "0x%x\n",
		       in.persist_gran, in.caps);
	else
		r = map_roundtrip(dev, 4096 + 3, 5000);
	sn_dev_close(dev);
	unlink(path);
	return r;
}

static int case_tmpfs(void)
{
	char path[4200], uri[4300];
	struct sn_dev_info in;
	struct sn_dev *dev;
	int err, r;

	if (!dir_exists(shm_dir) || !fs_is_ram(shm_dir))
		SKIP("%s is not a tmpfs directory here", shm_dir);
	scratch(path, sizeof(path), shm_dir, "tmpfs");
	snprintf(uri, sizeof(uri), "dax:%s?create=1&size=1m", path);
	err = sn_dev_open(uri, &dev);
	if (err == SN_ENOTAVAIL)
		SKIP("%s", sn_errmsg()); /* no cache-line flush for this architecture */
	ASSERT_OK(err);
	sn_dev_info(dev, &in);
	printf("    features \"%s\", note: %s\n", in.features, in.note);
	r = T_FAIL;
	if (in.persist_gran != SN_GRAN_CACHE_LINE || !strstr(in.note, "tmpfs") ||
	    !strstr(in.note, "RAM") || !(in.caps & SN_CAP_FUA))
		printf("    expected cache-line granularity, FUA, a note that says tmpfs is "
		       "RAM: gran %u, caps 0x%x\n",
		       in.persist_gran, in.caps);
	else
		r = map_roundtrip(dev, 64 * 5 + 17, 300);
	sn_dev_close(dev);
	unlink(path);
	return r;
}

static int case_flush_instructions(void)
{
	static const char *const names[] = { "clwb", "clflushopt", "clflush" };
	char path[4200], uri[4300];
	int used = 0;

	if (!dir_exists(shm_dir) || !fs_is_ram(shm_dir))
		SKIP("%s is not a tmpfs directory here", shm_dir);
	scratch(path, sizeof(path), shm_dir, "flush");
	for (unsigned i = 0; i < 3; i++)
		for (int nt = 0; nt <= 1; nt++) {
			struct sn_dev_info in;
			struct sn_dev *dev;
			int err, r;

			snprintf(uri, sizeof(uri), "dax:%s?create=1&size=1m&flush=%s&nt=%d", path,
			         names[i], nt);
			err = sn_dev_open(uri, &dev);
			if (err == SN_ENOTAVAIL) {
				printf("    %s: not on this CPU: %s\n", names[i], sn_errmsg());
				break;
			}
			ASSERT_OK(err);
			sn_dev_info(dev, &in);
			r = strstr(in.features, names[i]) ? T_PASS : T_FAIL;
			if (r == T_PASS) /* odd offset and a length over 256: head, body, tail */
				r = map_roundtrip(dev, 8192 + 5, 4099);
			sn_dev_close(dev);
			if (r != T_PASS) {
				unlink(path);
				T_FAILED("flush=%s nt=%d (features \"%s\")", names[i], nt,
				         in.features);
			}
			printf("    flush=%s nt=%d: persist and FUA writes read back\n", names[i],
			       nt);
			used++;
		}
	unlink(path);
	if (!used)
		SKIP("no cache-line flush instruction is usable here");
	return T_PASS;
}

static int case_bad_options(void)
{
	static const char *const bad[] = { "fallback=maybe", "flush=sfence", "nt=2" };
	char path[4200], uri[4300];
	struct sn_dev *dev;
	struct stat st;

	scratch(path, sizeof(path), disk_dir, "badopt");
	for (unsigned i = 0; i < 3; i++) {
		snprintf(uri, sizeof(uri), "dax:%s?create=1&size=1m&fallback=msync&%s", path,
		         bad[i]);
		if (i == 0)
			snprintf(uri, sizeof(uri), "dax:%s?create=1&size=1m&%s", path, bad[i]);
		ASSERT_ERR(sn_dev_open(uri, &dev), -EINVAL);
		printf("    %s: \"%s\"\n", bad[i], sn_errmsg());
		ASSERT_TRUE(stat(path, &st) != 0);
	}
	return T_PASS;
}

static int pmem_case(const char *dir, const char *force, enum sn_gran want, const char *what)
{
	char path[4200], uri[4300];
	struct sn_dev_info in;
	struct sn_dev *dev;
	int err, r;

	if (!engine_built("pmem"))
		SKIP("pmem: not built (libpmem2-dev was missing at build time)");
	if (!dir_exists(dir))
		SKIP("%s does not exist here", dir);
	if (force)
		setenv("PMEM2_FORCE_GRANULARITY", force, 1);
	else
		unsetenv("PMEM2_FORCE_GRANULARITY");
	scratch(path, sizeof(path), dir, what);
	snprintf(uri, sizeof(uri), "pmem:%s?create=1&size=1m", path);
	err = sn_dev_open(uri, &dev);
	unsetenv("PMEM2_FORCE_GRANULARITY");
	ASSERT_OK(err);
	sn_dev_info(dev, &in);
	printf("    features \"%s\", flush: %s%s%s\n", in.features, in.flush_does,
	       *in.note ? "; note: " : "", in.note);
	r = T_FAIL;
	if (in.persist_gran != want || !(in.caps & SN_CAP_BYTE_ADDR))
		printf("    expected granularity %u, got %u\n", want, in.persist_gran);
	else if (want == SN_GRAN_PAGE && !strstr(in.flush_does, "fdatasync"))
		printf("    page granularity, but flush is not fdatasync\n");
	else if (want != SN_GRAN_PAGE && !(in.caps & SN_CAP_FUA))
		printf("    cache-line granularity should give native FUA\n");
	else
		r = map_roundtrip(dev, 12345, 6000);
	sn_dev_close(dev);
	unlink(path);
	return r;
}

static int case_pmem_page_tmpfs(void)
{
	if (!fs_is_ram(shm_dir))
		SKIP("%s is not tmpfs here", shm_dir);
	return pmem_case(shm_dir, NULL, SN_GRAN_PAGE, "page");
}

static int case_pmem_forced(void)
{
	if (!fs_is_ram(shm_dir))
		SKIP("%s is not tmpfs here", shm_dir);
	return pmem_case(shm_dir, "CACHE_LINE", SN_GRAN_CACHE_LINE, "cl");
}

static int case_pmem_disk(void)
{
	if (fs_is_ram(disk_dir))
		SKIP("%s is tmpfs/ramfs; this case needs a disk filesystem", disk_dir);
	return pmem_case(disk_dir, NULL, SN_GRAN_PAGE, "disk");
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s DISKDIR SHMDIR   (e.g. the build directory, /dev/shm)\n",
		        argv[0]);
		return 1;
	}
	disk_dir = argv[1];
	shm_dir = argv[2];
	t_begin("test_dev_dax: dax: and pmem: on DAX, non-DAX and tmpfs files");
	T_RUN("dax: on a non-DAX disk file fails: not on a DAX mount", case_not_dax());
	T_RUN("dax: fallback=msync opens it, reports page granularity", case_fallback_msync());
	T_RUN("dax: on tmpfs: cache-line path, reported as RAM", case_tmpfs());
	T_RUN("dax: every flush instruction the CPU has, with and without movnt",
	      case_flush_instructions());
	T_RUN("dax: bad option values refused, no file left", case_bad_options());
	T_RUN("pmem: tmpfs gets page granularity (snstore's msync)", case_pmem_page_tmpfs());
	T_RUN("pmem: PMEM2_FORCE_GRANULARITY=CACHE_LINE gives cache-line", case_pmem_forced());
	T_RUN("pmem: disk file gets page granularity (snstore's msync)", case_pmem_disk());
	return t_end();
}
