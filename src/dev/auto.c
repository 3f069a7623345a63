/* SPDX-License-Identifier: MIT */
/*
 * auto: opens the best engine that works for PATH on this machine and records why, in
 * the seed's recommendation order for a portable deployment: dax for an existing file on a
 * DAX mount (MAP_SYNC works: persistent memory, byte-addressable), then io_uring, then
 * O_DIRECT pread/pwrite, then standard I/O. Direct I/O is used when the filesystem takes it,
 * because snstore's users keep their own caches and the page cache would hold data twice.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../util/util.h"
#include "engine.h"

static const struct sn_option auto_options[] = {
	{ "direct", "0|1", "force O_DIRECT on or off (default: on where the filesystem allows)" },
	SN_FILE_OPTIONS,
	{ NULL, NULL, NULL },
};

/* Whether O_DIRECT works for path (or, for a file yet to be created, its directory). */
static int direct_ok(const char *path, char *why, size_t len)
{
	char dir[4096];
	struct statfs sfs;
	char *slash;
	int fd;

	/* For a file yet to be created, judge its directory. */
	snprintf(dir, sizeof(dir), "%s", path);
	if (access(path, F_OK) != 0) {
		slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		else
			snprintf(dir, sizeof(dir), ".");
	}
	/* tmpfs takes O_DIRECT since Linux 6.6, but its page cache is the medium itself:
	 * bypassing it only adds copies. */
	if (statfs(dir, &sfs) == 0 && (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC)) {
		snprintf(why, len, "buffered because %.180s is in memory (tmpfs)", dir);
		return 0;
	}
	if (strcmp(dir, path) != 0) {
		/* An unnamed file in that directory says whether its filesystem takes O_DIRECT
		 * (where it takes O_TMPFILE at all; elsewhere: assume so, it is on a disk). */
		if ((fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600)) >= 0) {
			close(fd);
			snprintf(why, len,
			         "O_DIRECT because the new file's filesystem supports it");
			return 1;
		}
		if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0) {
			close(fd);
			snprintf(why, len,
			         "buffered because the new file's filesystem refuses "
			         "O_DIRECT");
			return 0;
		}
		snprintf(why, len, "O_DIRECT (the new file's filesystem is on a disk)");
		return 1;
	}
	fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		snprintf(why, len, "O_DIRECT because the filesystem supports it");
		return 1;
	}
	snprintf(why, len, "buffered because the filesystem refuses O_DIRECT");
	return 0;
}

/* Is path an existing file on a DAX mount? (A MAP_SYNC mapping works; tmpfs, which
 * accepts MAP_SYNC without meaning it on some kernels, is not.) */
static int on_dax(const char *path)
{
	struct statfs sfs;
	void *p;
	int fd, ok = 0;

	if (statfs(path, &sfs) || sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC)
		return 0;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	if (p != MAP_FAILED) {
		munmap(p, 4096);
		ok = 1;
	}
	close(fd);
	return ok;
}

/* Rebuild the URI for engine, with direct= set and the other options passed through. */
static void build_uri(char *out, size_t len, const char *engine, const struct sn_uri *uri,
                      int direct)
{
	size_t used = direct < 0 ? (size_t)snprintf(out, len, "%s:%s?", engine, uri->path)
	                         : (size_t)snprintf(out, len, "%s:%s?direct=%d", engine, uri->path,
	                                            direct);

	for (unsigned i = 0; i < uri->nkv && used < len; i++)
		if (strcmp(uri->kv[i].key, "direct") != 0)
			used += (size_t)snprintf(out + used, len - used, "%s%s=%s",
			                         out[used - 1] == '?' ? "" : "&", uri->kv[i].key,
			                         uri->kv[i].value);
}

static int auto_resolve(const struct sn_uri *uri, struct sn_dev **devp)
{
	static const char *const order[] = { "uring", "psync" };
	char why_direct[256], refused[512] = "", target[4400];
	int direct = -1, err = -EINVAL;

	if (!*uri->path)
		return sn__err(-EINVAL, "auto: needs a path: auto:/path/to/file-or-device");
	if ((err = sn__uri_bool(uri, "direct", &direct)))
		return err;
	if (direct < 0 && on_dax(uri->path)) {
		build_uri(target, sizeof(target), "dax", uri, -1);
		if ((err = sn_dev_open(target, devp)) == 0) {
			snprintf((*devp)->note, sizeof((*devp)->note),
			         "auto: chose dax, '%.180s' is on a DAX mount (MAP_SYNC works)",
			         uri->path);
			return 0;
		}
		if (err == -EBUSY) /* in use: any engine would find it so */
			return err;
		snprintf(refused, sizeof(refused), "dax refused: %.200s", sn_errmsg());
	}
	if (direct < 0)
		direct = direct_ok(uri->path, why_direct, sizeof(why_direct));
	else
		snprintf(why_direct, sizeof(why_direct), "direct=%d as asked", direct);

	for (unsigned i = 0; i < SN_ARRAY_SIZE(order); i++) {
		size_t used = strlen(refused);

		build_uri(target, sizeof(target), order[i], uri, direct);
		err = sn_dev_open(target, devp);
		if (err == 0) {
			struct sn_dev *dev = *devp;

			snprintf(dev->note, sizeof(dev->note), "auto: chose %s, %.100s%s%.120s",
			         order[i], why_direct, *refused ? "; " : "", refused);
			return 0;
		}
		/* A problem with the path itself will not go away with another engine. */
		if (err == -ENOENT || err == -EACCES || err == -EISDIR || err == -EBUSY ||
		    (err == -EINVAL && i == 0 && strstr(sn_errmsg(), "io_uring") == NULL))
			return err;
		snprintf(refused + used, sizeof(refused) - used, "%s%s refused: %s",
		         used ? "; " : "", order[i], sn_errmsg());
	}
	return sn__err(err, "auto: no engine could open '%s': %s", uri->path, refused);
}

static int auto_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	(void)dev, (void)uri;
	return -ENOTSUP; /* never called: resolve opens the chosen engine */
}

const struct sn_engine sn_engine_auto = {
	.version = SN_ENGINE_V1,
	.name = "auto",
	.summary = "picks the best engine that works for the path here, and says why",
	.options = auto_options,
	.dev_size = sizeof(struct sn_dev),
	.queue_size = sizeof(struct sn_queue),
	.open = auto_open,
	.resolve = auto_resolve,
};
