/* SPDX-License-Identifier: MIT */
/*
 * test_dev_errors.c — bad input to sn_dev_open() and sn_queue_create() is answered with
 * the right code and a message in sn_errmsg() that names the problem and, where there is
 * one, the fix; sn_strerror()/sn_errname() cover errno values and snstore's own codes.
 *
 *   test_dev_errors [SCRATCH_DIR]   (files are created there and removed)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <snstore/dev.h>

#include "test.h"

static char dir[512];

static const char *scratch(const char *name)
{
	static char path[1024];

	snprintf(path, sizeof(path), "%s/errors-%d-%s", dir, (int)getpid(), name);
	return path;
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Open must fail with err, leave *devp NULL, and name w1 and w2 (if given). */
static int open_fails(const char *uri, int err, const char *w1, const char *w2)
{
	struct sn_dev *dev = (struct sn_dev *)&dev;

	printf("    \"%s\"\n", uri);
	ASSERT_ERR(sn_dev_open(uri, &dev), err);
	ASSERT_TRUE(dev == NULL);
	if (w1)
		ASSERT_STR_HAS(sn_errmsg(), w1);
	if (w2)
		ASSERT_STR_HAS(sn_errmsg(), w2);
	printf("      -> %s: %s\n", sn_errname(err), sn_errmsg());
	return T_PASS;
}

#define OPEN_FAILS(fmt, arg, err, w1, w2)                  \
	do {                                               \
		char u_[1200];                             \
		snprintf(u_, sizeof(u_), fmt, arg);        \
		if (open_fails(u_, err, w1, w2) != T_PASS) \
			return T_FAIL;                     \
	} while (0)

static int unknown_engine(void)
{
	OPEN_FAILS("%s:/tmp/x", "bogus", SN_ENOTAVAIL, "unknown engine 'bogus'", "psync");
	/* The message lists what this build has. */
	for (const char *e = "mem\0null\0psync\0mmap\0uring\0auto\0"; *e; e += strlen(e) + 1)
		ASSERT_STR_HAS(sn_errmsg(), e);
	return T_PASS;
}

static int malformed_uri(void)
{
	OPEN_FAILS("%s", "", -EINVAL, "empty device URI", NULL);
	OPEN_FAILS("%s", "/data/file", -EINVAL, "has no engine", "ENGINE:PATH");
	OPEN_FAILS("%s", "Mem:?size=1m", -EINVAL, "engine name", NULL);
	OPEN_FAILS("%s", "mem:?size=1m&size=2m", -EINVAL, "'size' twice", NULL);
	OPEN_FAILS("%s", "psync:", -EINVAL, "needs a path", NULL);
	OPEN_FAILS("%s", "mmap:?create=1&size=1m", -EINVAL, "needs a path", NULL);
	return T_PASS;
}

static int unknown_key(void)
{
	OPEN_FAILS("%s", "mem:?size=1m&colour=red", -EINVAL, "'colour'", "size");
	OPEN_FAILS("%s", "null:?direct=1", -EINVAL, "'direct'", "null");
	OPEN_FAILS("psync:%s?create=1&size=1m&sqpoll=1", scratch("k"), -EINVAL, "'sqpoll'",
	           "direct");
	ASSERT_TRUE(!exists(scratch("k")));
	return T_PASS;
}

static int bad_values(void)
{
	OPEN_FAILS("psync:%s?create=1&size=1m&direct=maybe", scratch("v"), -EINVAL, "direct=maybe",
	           NULL);
	OPEN_FAILS("psync:%s?create=2&size=1m", scratch("v"), -EINVAL, "create=2", NULL);
	OPEN_FAILS("psync:%s?create=1&size=-5", scratch("v"), -EINVAL, "size=-5", NULL);
	OPEN_FAILS("mmap:%s?create=1&size=1m&populate=sometimes", scratch("v"), -EINVAL,
	           "populate=sometimes", NULL);
	ASSERT_TRUE(!exists(scratch("v"))); /* refused before anything was created */
	OPEN_FAILS("%s", "mem:?size=abc", -EINVAL, "size=abc", NULL);
	OPEN_FAILS("%s", "mem:?size=99999999t", -EINVAL, "size=99999999t", NULL);
	OPEN_FAILS("%s", "mem:?size=0", -EINVAL, "size=0", NULL);
	OPEN_FAILS("%s", "null:?size=0", -EINVAL, "size=0", NULL);
	return T_PASS;
}

static int missing_file(void)
{
	static const char *const engines[] = { "psync", "mmap", "uring", "auto" };
	const char *path = scratch("missing");
	struct sn_dev *dev;
	char uri[1200];

	for (unsigned i = 0; i < sizeof(engines) / sizeof(engines[0]); i++) {
		snprintf(uri, sizeof(uri), "%s:%s", engines[i], path);
		if (sn_dev_open(uri, &dev) == SN_ENOTAVAIL) {
			printf("    %s: not available here (%s)\n", engines[i], sn_errmsg());
			continue;
		}
		if (open_fails(uri, -ENOENT, "create=1", path) != T_PASS)
			return T_FAIL;
	}
	/* create=1 alone does not say how big. */
	OPEN_FAILS("psync:%s?create=1", path, -EINVAL, "size=", NULL);
	ASSERT_TRUE(!exists(path));
	OPEN_FAILS("psync:%s?create=1&readonly=1&size=1m", path, -EINVAL, "contradict", NULL);
	ASSERT_TRUE(!exists(path));
	/* More than the filesystem holds: refused before any block is allocated, and the
	 * file this open created is gone again (a partial fallocate once filled a disk). */
	OPEN_FAILS("psync:%s?create=1&size=1024t", path, -ENOSPC, "free", NULL);
	ASSERT_TRUE(!exists(path));
	return T_PASS;
}

static int not_a_file(void)
{
	OPEN_FAILS("psync:%s", dir, -EISDIR, "is a directory", NULL);
	OPEN_FAILS("mmap:%s?size=1m", dir, -EISDIR, "is a directory", NULL);
	/* Read-only, a directory opens; it is then refused for what it is. */
	OPEN_FAILS("psync:%s?readonly=1", dir, -EINVAL, "neither a regular file nor a block", NULL);
	OPEN_FAILS("psync:%s", "/dev/null", -EINVAL, "neither a regular file nor a block", NULL);
	return T_PASS;
}

static int file_sizes(void)
{
	const char *path = scratch("sized");
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	struct sn_dev *dev;
	char uri[1200];
	int r = T_FAIL;

	ASSERT_TRUE(fd >= 0);
	close(fd);
	/* An empty file and no size=: nothing to use. */
	snprintf(uri, sizeof(uri), "psync:%s", path);
	if (open_fails(uri, -EINVAL, "is empty", "size=") != T_PASS)
		goto out;
	/* Read-only cannot grow a file. */
	snprintf(uri, sizeof(uri), "psync:%s?size=1m", path);
	if (sn_dev_open(uri, &dev)) {
		printf("    %s: %s\n", uri, sn_errmsg());
		goto out;
	}
	sn_dev_close(dev);
	snprintf(uri, sizeof(uri), "psync:%s?size=2m&readonly=1", path);
	if (open_fails(uri, -EINVAL, "exceeds", "read-only") != T_PASS)
		goto out;
	/* With direct=1 the capacity is whole aligned blocks: none here is no device. */
	snprintf(uri, sizeof(uri), "psync:%s?size=100&direct=1", path);
	if (open_fails(uri, -EINVAL, "less than one", "direct I/O") != T_PASS)
		goto out;
	snprintf(uri, sizeof(uri), "uring:%s?size=100&direct=1", path);
	if (sn_dev_open(uri, &dev) == SN_ENOTAVAIL)
		printf("    uring: not available here (%s)\n", sn_errmsg());
	else if (open_fails(uri, -EINVAL, "less than one", "direct I/O") != T_PASS)
		goto out;
	r = T_PASS;
out:
	unlink(path);
	return r;
}

static int queue_depth(void)
{
	struct sn_dev_info in;
	struct sn_queue *q = (struct sn_queue *)&q;
	struct sn_dev *dev;
	int r = T_FAIL;

	ASSERT_OK(sn_dev_open("mem:?size=1m", &dev));
	sn_dev_info(dev, &in);
	if (sn_queue_create(dev, 0, &q) != -EINVAL || q != NULL ||
	    !strstr(sn_errmsg(), "depth 0")) {
		printf("    depth 0 not refused as expected: %s\n", sn_errmsg());
		goto out;
	}
	printf("      -> %s\n", sn_errmsg());
	if (sn_queue_create(dev, in.max_queue_depth + 1, &q) != -EINVAL || q != NULL ||
	    !strstr(sn_errmsg(), "out of range")) {
		printf("    depth %u not refused as expected: %s\n", in.max_queue_depth + 1,
		       sn_errmsg());
		goto out;
	}
	printf("      -> %s\n", sn_errmsg());
	r = T_PASS;
out:
	sn_dev_close(dev);
	return r;
}

static int direct_on_tmpfs(void)
{
	const char *shm = "/dev/shm";
	char path[256], uri[400];
	struct statfs sfs;
	struct sn_dev *dev;
	int err;

	if (statfs(shm, &sfs) || sfs.f_type != TMPFS_MAGIC)
		SKIP("%s is absent or not tmpfs", shm);
	snprintf(path, sizeof(path), "%s/snstore-test-%d.dat", shm, (int)getpid());
	snprintf(uri, sizeof(uri), "psync:%s?create=1&size=1m&direct=1", path);
	err = sn_dev_open(uri, &dev);
	unlink(path);
	if (err == 0) {
		sn_dev_close(dev);
		SKIP("this kernel's tmpfs takes O_DIRECT (Linux 6.6+): nothing to refuse");
	}
	printf("    %s\n      -> %s: %s\n", uri, sn_errname(err), sn_errmsg());
	ASSERT_EQ(err, -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "O_DIRECT");
	ASSERT_STR_HAS(sn_errmsg(), "tmpfs");
	ASSERT_STR_HAS(sn_errmsg(), "direct=1");
	return T_PASS;
}

static int names_and_texts(void)
{
	static const struct {
		int err;
		const char *name;
	} own[] = {
#define SN__T(name, value, text) { value, #name },
		SN_ERRORS(SN__T)
#undef SN__T
	};

	ASSERT_EQ(strcmp(sn_errname(-EINVAL), "EINVAL"), 0);
	ASSERT_EQ(strcmp(sn_errname(EINVAL), "EINVAL"), 0);
	ASSERT_EQ(strcmp(sn_errname(-ENOENT), "ENOENT"), 0);
	ASSERT_EQ(strcmp(sn_errname(-EAGAIN), "EAGAIN"), 0);
	ASSERT_EQ(strcmp(sn_errname(-ERANGE), "ERANGE"), 0);
	ASSERT_EQ(strcmp(sn_errname(0), "OK"), 0);
	ASSERT_EQ(strcmp(sn_errname(-9999), "E?"), 0);
	ASSERT_EQ(strcmp(sn_strerror(-ENOENT), sn_strerror(ENOENT)), 0);
	ASSERT_STR_HAS(sn_strerror(-ENOENT), "No such file");
	ASSERT_STR_HAS(sn_strerror(-EINVAL), "nvalid");
	ASSERT_TRUE(sn_strerror(0) && *sn_strerror(0));
	ASSERT_TRUE(sn_strerror(-9999) && *sn_strerror(-9999));
	ASSERT_TRUE(sn_strerror(-10999) && *sn_strerror(-10999));
	ASSERT_EQ(strcmp(sn_errname(-10999), "E?"), 0);
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		/* Below the kernel's range, so never mistaken for an errno. */
		ASSERT_LT(own[i].err, -4095);
		ASSERT_EQ(strcmp(sn_errname(own[i].err), own[i].name), 0);
		ASSERT_TRUE(*sn_strerror(own[i].err));
		for (size_t j = 0; j < i; j++)
			ASSERT_NE(own[i].err, own[j].err);
	}
	ASSERT_STR_HAS(sn_strerror(SN_ECORRUPT), "checksum");
	ASSERT_STR_HAS(sn_strerror(SN_ENOTAVAIL), "engine");
	return T_PASS;
}

static void *fail_elsewhere(void *arg)
{
	struct sn_dev *dev;

	(void)arg;
	sn_dev_open("elsewhere:/x", &dev);
	return NULL;
}

static int errmsg_per_thread(void)
{
	struct sn_dev *dev;
	pthread_t t;

	ASSERT_ERR(sn_dev_open("mem:?size=1m&here=1", &dev), -EINVAL);
	ASSERT_EQ(pthread_create(&t, NULL, fail_elsewhere, NULL), 0);
	pthread_join(t, NULL);
	/* Another thread's failure did not overwrite this thread's message. */
	ASSERT_STR_HAS(sn_errmsg(), "'here'");
	return T_PASS;
}

static int engine_list(void)
{
	const struct sn_engine_desc *d;
	unsigned n = 0, found = 0;

	for (; (d = sn_engine_desc(n)); n++) {
		unsigned k = 0;

		ASSERT_TRUE(d->name && *d->name && d->summary && *d->summary);
		for (const struct sn_option *o = d->options; o && o->key; o++, k++)
			ASSERT_TRUE(*o->key && o->arg && o->help && *o->help);
		printf("    %-6s %u options: %s\n", d->name, k, d->summary);
		for (const char *e = "mem\0null\0psync\0mmap\0"; *e; e += strlen(e) + 1)
			found += strcmp(d->name, e) == 0;
	}
	ASSERT_GE(n, 4);
	ASSERT_EQ(found, 4);
	ASSERT_TRUE(sn_engine_desc(n) == NULL);
	ASSERT_TRUE(sn_engine_desc(1000) == NULL);
	return T_PASS;
}

int main(int argc, char **argv)
{
	snprintf(dir, sizeof(dir), "%s", argc > 1 ? argv[1] : ".");
	t_begin("test_dev_errors: bad input is refused with a code and a reason");
	T_RUN("unknown engine: SN_ENOTAVAIL, message lists the engines", unknown_engine());
	T_RUN("malformed URIs", malformed_uri());
	T_RUN("unknown URI option: -EINVAL naming it and the known ones", unknown_key());
	T_RUN("invalid option values", bad_values());
	T_RUN("missing file: -ENOENT suggesting create=1; create=1 without size", missing_file());
	T_RUN("a directory or a character device as the path", not_a_file());
	T_RUN("empty or too short a file; read-only cannot grow", file_sizes());
	T_RUN("queue depth 0 and above the maximum: -EINVAL", queue_depth());
	T_RUN("O_DIRECT on tmpfs refused with a reason", direct_on_tmpfs());
	T_RUN("sn_strerror and sn_errname: errno values and snstore codes", names_and_texts());
	T_RUN("sn_errmsg is per thread", errmsg_per_thread());
	T_RUN("sn_engine_desc lists the engines and their options", engine_list());
	return t_end();
}
