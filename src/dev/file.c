/* SPDX-License-Identifier: MIT */
/*
 * file.c — opening regular files and block devices for the file-backed engines
 * (psync, uring, mmap). Capacity comes from BLKGETSIZE64 or the file size; the
 * logical block size from BLKSSZGET; direct-I/O alignment from statx STATX_DIOALIGN
 * (Linux 6.1+), else the logical block size. Discard is BLKDISCARD on a block device
 * and FALLOC_FL_PUNCH_HOLE on a file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "../util/util.h"
#include "engine.h"

static int open_errno(int err, const char *path, int direct)
{
	if (err == -EINVAL && direct)
		return sn__err(err,
		               "'%s' refuses O_DIRECT (its filesystem, tmpfs for one, has no "
		               "direct I/O): drop direct=1 or use a path on a disk",
		               path);
	if (err == -EACCES || err == -EPERM)
		return sn__err(err, "no permission to open '%s' for %s", path,
		               "reading and writing (add readonly=1 to only read)");
	if (err == -EISDIR)
		return sn__err(err, "'%s' is a directory: give a file or block device", path);
	return sn__err(err, "cannot open '%s': %s", path, sn_strerror(err));
}

static int dio_align(int fd, struct sn_dev_info *in, uint32_t lbs)
{
	struct statx stx;
	struct stat st;

	/* Prefer what the filesystem says (ext4 on a 4Kn disk wants 4096); fall back to
	 * the logical block size, which every Linux block layer accepts. */
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		in->offset_align = stx.stx_dio_offset_align;
		in->mem_align = stx.stx_dio_mem_align ? stx.stx_dio_mem_align : lbs;
		return 0;
	}
	/* No answer (kernels before 6.1, some filesystems): a regular file's filesystem
	 * block, up to 4 KiB, is safe where its disk has 4 KiB sectors and 512 is not. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_blksize > (blksize_t)lbs)
		lbs = st.st_blksize < 4096 ? (uint32_t)st.st_blksize : 4096;
	in->offset_align = lbs;
	in->mem_align = lbs;
	return 0;
}

/*
 * Extend a file from cur to size bytes, reserving the space now so later writes never
 * hit ENOSPC. A failed fallocate may leave blocks allocated (ext4 allocates until the
 * disk is full): give them back, and remove a file this open created.
 */
static int grow(int fd, const char *path, uint64_t cur, uint64_t size, int created)
{
	struct statvfs vfs;
	int err;

	if (fstatvfs(fd, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < size - cur) {
		err = sn__err(-ENOSPC,
		              "cannot grow '%s' to %llu bytes: its filesystem has %llu "
		              "bytes free",
		              path, (unsigned long long)size,
		              (unsigned long long)vfs.f_bavail * vfs.f_frsize);
		goto undo;
	}
	err = posix_fallocate(fd, 0, (off_t)size);
	if (err == EOPNOTSUPP || err == EINVAL)
		err = ftruncate(fd, (off_t)size) ? errno : 0;
	if (!err)
		return 0;
	err = sn__err(-err, "cannot grow '%s' to %llu bytes: %s", path, (unsigned long long)size,
	              sn_strerror(err));
undo:
	if (ftruncate(fd, (off_t)cur) == 0 && created)
		unlink(path);
	return err;
}

/* fsync the directory that holds path. */
static int sync_parent(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd, err = 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return sn__err(-errno, "cannot open '%s' to make '%s' durable: %s", dir, path,
		               strerror(errno));
	if (fsync(fd) < 0 && errno != EINVAL) /* (EINVAL: a filesystem without it) */
		err = sn__err(-errno, "fsync of '%s' (the directory of new file '%s'): %s", dir,
		              path, strerror(errno));
	close(fd);
	return err;
}

/*
 * One writer at a time: two opens that both write (two processes on one store, say) would
 * each append where the other does and lose each other's records. flock() locks the open
 * file description, so a second open in the same process conflicts as well; read-only
 * opens share. A filesystem without flock() (some FUSE ones) goes unlocked.
 */
static int lock_file(int fd, const char *path, int readonly)
{
	struct stat st;
	int tries = fstat(fd, &st) == 0 && S_ISBLK(st.st_mode) ? 200 : 1;

	/* systemd-udevd takes a whole disk's lock (shared) for a moment after each writer
	 * closes it, to probe it: wait that out on a block device, up to 2 s. */
	while (flock(fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK)
			return 0;
		if (--tries == 0)
			break;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	if (tries)
		return 0;
	return sn__err(-EBUSY,
	               "'%s' is in use: another open of it, in this process or another, holds "
	               "its lock (%s; lock=0 skips the check)",
	               path,
	               readonly ? "a writer has it" : "a file or device has one writer at a time");
}

int sn__file_open(struct sn_dev *dev, const struct sn_uri *uri, const struct sn_file_opts *o)
{
	struct sn_dev_info *in = &dev->info;
	const char *path = uri->path;
	int create = 0, readonly = o->readonly, lock = 1, flags, fd, err, exists;
	uint64_t size = 0, cap;
	uint32_t lbs = 512;
	struct stat st;

	if ((err = sn__uri_bool(uri, "create", &create)) ||
	    (err = sn__uri_size(uri, "size", &size)) ||
	    (err = sn__uri_bool(uri, "readonly", &readonly)) ||
	    (err = sn__uri_bool(uri, "lock", &lock)))
		return err;
	if (!*path)
		return sn__err(-EINVAL, "engine %s needs a path: %s:/path/to/file-or-device",
		               dev->engine->name, dev->engine->name);
	exists = stat(path, &st) == 0;
	if (!exists && errno != ENOENT)
		return open_errno(-errno, path, 0);
	if (!exists && !create)
		return sn__err(-ENOENT, "'%s' does not exist (add create=1&size=N to create it)",
		               path);
	if (!exists && !size)
		return sn__err(-EINVAL, "create=1 needs size=N to know how big to make '%s'", path);
	if (readonly && (create && !exists))
		return sn__err(-EINVAL, "readonly=1 and create=1 contradict each other");

	flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (create ? O_CREAT : 0);
	flags |= (o->direct ? O_DIRECT : 0) | (o->dsync ? O_DSYNC : 0);
	fd = open(path, flags, 0644);
	if (fd < 0)
		return open_errno(-errno, path, o->direct);
	if (lock && (err = lock_file(fd, path, readonly))) {
		close(fd); /* (not unlinked: whoever holds the lock may have just made it) */
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = sn__err(-errno, "cannot stat '%s'", path);
		goto fail;
	}
	if (S_ISBLK(st.st_mode)) {
		int ssz = 0;

		if (ioctl(fd, BLKGETSIZE64, &cap) < 0 || ioctl(fd, BLKSSZGET, &ssz) < 0) {
			err = sn__err(-errno, "cannot read the size of block device '%s'", path);
			goto fail;
		}
		lbs = (uint32_t)ssz;
		in->caps |= SN_CAP_BLOCKDEV | SN_CAP_DISCARD;
		if (size > cap) {
			err = sn__err(-EINVAL, "size=%llu exceeds block device '%s' (%llu bytes)",
			              (unsigned long long)size, path, (unsigned long long)cap);
			goto fail;
		}
	} else if (S_ISREG(st.st_mode)) {
		cap = (uint64_t)st.st_size;
		lbs = 512;
		in->caps |= SN_CAP_DISCARD;
		if (size > cap) {
			if (readonly) {
				err = sn__err(-EINVAL,
				              "size=%llu exceeds read-only file '%s' (%llu "
				              "bytes)",
				              (unsigned long long)size, path,
				              (unsigned long long)cap);
				goto fail;
			}
			err = grow(fd, path, cap, size, !exists);
			if (err)
				goto fail;
			cap = size;
		}
	} else {
		err = sn__err(-EINVAL, "'%s' is neither a regular file nor a block device", path);
		goto fail;
	}
	if (size)
		cap = size;
	if (cap == 0) {
		err = sn__err(-EINVAL, "'%s' is empty: give size=N to use N bytes of it", path);
		goto fail;
	}
	in->capacity_bytes = cap;
	in->block_size = lbs;
	in->caps |= SN_CAP_FLUSH | SN_CAP_PERSISTS;
	dev->readonly = readonly;
	if (o->direct) {
		in->caps |= SN_CAP_DIRECT;
		dio_align(fd, in, lbs);
		/* Keep capacity a whole number of aligned blocks. */
		in->capacity_bytes -= in->capacity_bytes % in->offset_align;
		if (!in->capacity_bytes) {
			err = sn__err(-EINVAL,
			              "'%s' has %llu bytes, less than one %u-byte block "
			              "of direct I/O",
			              path, (unsigned long long)cap, in->offset_align);
			goto fail;
		}
	}
	/* A new file's name is durable too: a flush covers the file's data, not the
	 * directory entry that finds it after a power loss. */
	if (!exists && (err = sync_parent(path)))
		goto fail;
	return fd;
fail:
	close(fd);
	if (!exists)
		unlink(path); /* made here: nothing of it is left behind */
	return err;
}

int sn__file_reopen(struct sn_dev *dev, int fd)
{
	int flags = fcntl(fd, F_GETFL), nfd;
	struct stat a, b;
	char proc[64];

	if (flags < 0 || fstat(fd, &a) < 0)
		return -errno;
	flags &= O_ACCMODE | O_DIRECT | O_DSYNC | O_SYNC | O_NOATIME;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	nfd = open(proc, flags | O_CLOEXEC);
	if (nfd < 0 && errno == ENOENT) /* no /proc: the path, if it is still the file */
		nfd = open(dev->path, flags | O_CLOEXEC);
	if (nfd < 0) {
		int err = -errno;

		return sn__err(err, "cannot open '%s' again for a queue: %s", dev->path,
		               sn_strerror(err));
	}
	if (fstat(nfd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(nfd);
		return sn__err(-ESTALE, "'%s' is no longer the file the device opened", dev->path);
	}
	return nfd;
}

int sn__file_queue_init(struct sn_queue *q, int dev_fd, int own)
{
	struct sn_file_queue *fq = (struct sn_file_queue *)q;

	fq->fd = own ? sn__file_reopen(q->dev, dev_fd) : -1;
	return own && fq->fd < 0 ? fq->fd : 0; /* (-EPERM is -1: not "no fd") */
}

void sn__file_queue_fini(struct sn_queue *q)
{
	struct sn_file_queue *fq = (struct sn_file_queue *)q;

	if (fq->fd >= 0)
		close(fq->fd);
}

int64_t sn__file_rw(int fd, int write, void *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t r = write ? pwrite(fd, (char *)buf + done, len - done, (off_t)(off + done))
		                  : pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (r == 0) {
			/* A read past the end of a file that shrank under us: the bytes are
			 * not there. Zero-filling would invent data, so fail. */
			return -EIO;
		}
		done += (uint64_t)r;
	}
	return (int64_t)done;
}

int sn__file_discard(int fd, int is_blockdev, uint64_t off, uint64_t len)
{
	if (is_blockdev) {
		uint64_t range[2] = { off, len };

		return ioctl(fd, BLKDISCARD, range) < 0 ? -errno : 0;
	}
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0
	               ? -errno
	               : 0;
}

int sn__msync_range(char *base, size_t page, uint64_t off, uint64_t len, int *lost)
{
	uint64_t start = off & ~(uint64_t)(page - 1);
	int err = msync(base + start, off + len - start, MS_SYNC) < 0 ? -errno : 0, zero = 0;

	if (err)
		__atomic_compare_exchange_n(lost, &zero, err, 0, __ATOMIC_RELAXED,
		                            __ATOMIC_RELAXED);
	return err ? err : __atomic_load_n(lost, __ATOMIC_RELAXED);
}
