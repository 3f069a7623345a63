/* SPDX-License-Identifier: MIT */
/*
 * test_blockdev.c — psync and uring on a raw block device with direct=1: a loop device
 * over a backing file, once with 512-byte and once with 4096-byte logical sectors. It
 * checks the geometry snstore reads (capacity, logical block size, alignment) and runs the
 * conformance suite on it. Block devices are where 4Kn alignment and BLKDISCARD live,
 * which files on a 512-byte-block filesystem never exercise.
 *
 *   test_blockdev [SCRATCH_DIR]
 *
 * Needs root and losetup; exits 77 (skipped) saying why when either is missing or the
 * loop device cannot be attached. The suite runs in a child process, so the loop device
 * is detached even when a check crashes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conformance.h"
#include "test.h"

#define BACKING_BYTES (64ull << 20)

static unsigned g_sector; /* the variant's logical sector size */

struct counts {
	int done, passed, failed, skipped;
};

static int case_geometry(struct conf *c)
{
	const struct sn_dev_info *in = &c->info;
	unsigned char *b;
	struct sn_io io;

	ASSERT_TRUE(in->caps & SN_CAP_BLOCKDEV);
	ASSERT_TRUE(in->caps & SN_CAP_DIRECT);
	ASSERT_TRUE(in->caps & SN_CAP_DISCARD);
	ASSERT_EQ(in->capacity_bytes, BACKING_BYTES);
	ASSERT_EQ(in->block_size, g_sector);
	ASSERT_EQ(in->offset_align, g_sector);
	ASSERT_LE(in->mem_align, g_sector);
	ASSERT_OK(sn_queue_buf_alloc(c->q, 2 * g_sector, (void **)&b));
	/* On a 4Kn device, 512-byte alignment is not enough. */
	for (unsigned off = 512; off < g_sector; off *= 2) {
		sn_io_read(&io, b, g_sector, off, 1);
		ASSERT_ERR(sn_queue_submit(c->q, &io, 1), -EINVAL);
		ASSERT_STR_HAS(sn_errmsg(), "align");
		sn_io_write(&io, b, off, 0, 1);
		ASSERT_ERR(sn_queue_submit(c->q, &io, 1), -EINVAL);
	}
	sn_io_read(&io, b, g_sector, g_sector, 1);
	ASSERT_EQ(sn_queue_submit(c->q, &io, 1), 1);
	{
		struct sn_cqe cqe;

		ASSERT_EQ(sn_queue_reap(c->q, &cqe, 1, 1), 1);
		ASSERT_EQ(cqe.res, g_sector);
	}
	return T_PASS;
}

/* Run the suite for each engine on loopdev; in a child, so a crash cannot skip detach. */
static void run_variant(const char *loopdev, struct counts *out)
{
	static const char *const engines[] = { "psync", "uring" };
	char uri[256], name[256];

	for (unsigned e = 0; e < sizeof(engines) / sizeof(engines[0]); e++) {
		int r;

		snprintf(uri, sizeof(uri), "%s:%s?direct=1", engines[e], loopdev);
		printf("device: %s (%u-byte sectors)\n", uri, g_sector);
		snprintf(name, sizeof(name), "%s %u: open", engines[e], g_sector);
		r = conf_probe(uri);
		if (r != T_PASS) {
			t_result(name, r);
			continue;
		}
		snprintf(name, sizeof(name), "%s %u: geometry: capacity, block size, alignment",
		         engines[e], g_sector);
		T_RUN(name, conf_run(uri, case_geometry));
		for (const struct conf_case *k = conf_cases; k->name; k++) {
			snprintf(name, sizeof(name), "%s %u: %s", engines[e], g_sector, k->name);
			T_RUN(name, conf_run(uri, k->fn));
		}
	}
	out->passed = t_passed;
	out->failed = t_failed;
	out->skipped = t_skipped;
	out->done = 1;
}

/* losetup --find --show: the loop device's path in dev, or -1 saying why. */
static int attach(const char *backing, unsigned sector, char *dev, size_t len)
{
	char cmd[1200];
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "losetup --find --show %s '%s' 2>&1",
	         sector == 512 ? "" : "--sector-size 4096", backing);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (!fgets(dev, (int)len, p))
		dev[0] = '\0';
	st = pclose(p);
	dev[strcspn(dev, "\n")] = '\0';
	if (st != 0 || strncmp(dev, "/dev/", 5) != 0) {
		printf("    %s: %s\n", cmd, *dev ? dev : "failed");
		return -1;
	}
	return 0;
}

static void detach(const char *dev)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "losetup -d '%s'", dev);
	if (system(cmd) != 0)
		printf("    warning: '%s' failed: detach %s by hand\n", cmd, dev);
}

/* Attach, run the variant in a child, detach. T_SKIP when attaching failed. */
static int variant(const char *backing, unsigned sector, struct counts *shared)
{
	char dev[256];
	pid_t pid;
	int st;

	g_sector = sector;
	if (attach(backing, sector, dev, sizeof(dev)))
		return T_SKIP;
	memset(shared, 0, sizeof(*shared));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		t_passed = t_failed = t_skipped = 0;
		run_variant(dev, shared);
		fflush(stdout);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		st = -1;
	detach(dev);
	t_passed += shared->passed;
	t_failed += shared->failed;
	t_skipped += shared->skipped;
	if (!shared->done || !WIFEXITED(st)) {
		printf("[ FAIL ] %u-byte sectors: the checks died (status 0x%x)\n", sector, st);
		t_failed++;
	}
	return T_PASS;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	struct counts *shared;
	char backing[1024];
	int fd, r;

	t_begin("test_blockdev: psync and uring with direct=1 on loop devices (512, 4096)");
	if (geteuid() != 0) {
		printf("skipped: attaching a loop device needs root\n");
		return T_SKIP;
	}
	if (system("command -v losetup >/dev/null 2>&1") != 0) {
		printf("skipped: losetup (util-linux) is not installed\n");
		return T_SKIP;
	}
	snprintf(backing, sizeof(backing), "%s/blockdev-%d.img", dir, (int)getpid());
	if (strchr(backing, '\'')) {
		printf("skipped: scratch path %s holds a quote\n", backing);
		return T_SKIP;
	}
	fd = open(backing, O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)BACKING_BYTES)) {
		printf("cannot create the backing file %s: %s\n", backing, strerror(errno));
		return 1;
	}
	close(fd);
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
	              0);
	if (shared == MAP_FAILED) {
		unlink(backing);
		return 1;
	}

	r = variant(backing, 512, shared);
	if (r == T_SKIP) {
		printf("skipped: cannot attach a loop device (see above)\n");
		unlink(backing);
		return T_SKIP;
	}
	if (variant(backing, 4096, shared) == T_SKIP)
		t_result("4096-byte sectors: losetup --sector-size 4096 is not supported here",
		         T_SKIP);
	munmap(shared, sizeof(*shared));
	unlink(backing);
	return t_end();
}
