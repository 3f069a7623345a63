/* SPDX-License-Identifier: MIT */
/*
 * mapsync_probe.c — does this file support MAP_SYNC (a DAX mapping whose metadata is
 * durable at page fault, so CPU cache flushes alone make stores durable)? The DAX guest
 * runs it on the ext4 mount with -o dax (must succeed) and with -o dax=never (must fail
 * with EOPNOTSUPP), so that the guest proves its filesystem is DAX before trusting a test.
 * Linux: mmap(MAP_SHARED_VALIDATE|MAP_SYNC) returns EOPNOTSUPP on a file without DAX and
 * EINVAL on kernels before 4.15 (which do not know the flag).
 *
 *   mapsync_probe FILE yes|no    creates FILE (2 MiB), maps it, removes it; exit 0 when the
 *                                outcome is the expected one, 1 otherwise, 2 on bad usage
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

#define LEN (2u << 20)

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[2], "yes") && strcmp(argv[2], "no"))) {
		fprintf(stderr, "usage: %s FILE yes|no\n", argv[0]);
		return 2;
	}
	int want = !strcmp(argv[2], "yes");
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || ftruncate(fd, LEN) < 0) {
		fprintf(stderr, "mapsync_probe: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	void *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	int err = p == MAP_FAILED ? errno : 0;

	if (!err) {
		/* Touch it: the page fault is where a DAX filesystem allocates and syncs. */
		memset(p, 0xa5, LEN);
		munmap(p, LEN);
	}
	close(fd);
	unlink(argv[1]);

	int ok = want ? err == 0 : err == EOPNOTSUPP;

	printf("mapsync_probe: %s: MAP_SYNC %s (expected %s) -> %s\n", argv[1],
	       err ? strerror(err) : "works", want ? "to work" : "EOPNOTSUPP", ok ? "ok" : "WRONG");
	return ok ? 0 : 1;
}
