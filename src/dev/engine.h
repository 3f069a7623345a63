/* SPDX-License-Identifier: MIT */
/*
 * engine.h — what an engine implements, and the generic parts of a device and a queue.
 * An engine's own device struct begins with struct sn_dev and its queue struct with
 * struct sn_queue (SQLite's sqlite3_file subclassing); dev_size and queue_size tell
 * dev.c how much to allocate. Only dev.c calls the ops.
 *
 * To add an engine: copy null.c, fill the ops it can do, add it to engines.c and to
 * CMakeLists.txt. Ops left NULL are answered by dev.c with -ENOTSUP or a default.
 */
#ifndef SN_DEV_ENGINE_H
#define SN_DEV_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <snstore/dev.h>

#include "../util/uri.h"

#define SN_ENGINE_V1 1
#define SN_ENGINE_V2 2 /* adds notify */

struct sn_engine {
	int version;                     /* SN_ENGINE_V1; fields are only ever appended */
	const char *name;                /* URI scheme */
	const char *summary;             /* one line for help and probe */
	const struct sn_option *options; /* URI keys accepted; others are refused */
	size_t dev_size;                 /* sizeof the engine's device struct */
	size_t queue_size;               /* sizeof the engine's queue struct */

	/* Fill dev->info (capacity, alignment, caps ...) from the URI. */
	int (*open)(struct sn_dev *dev, const struct sn_uri *uri);
	void (*close)(struct sn_dev *dev);
	int (*queue_init)(struct sn_queue *q);  /* q->dev, q->depth are set */
	void (*queue_fini)(struct sn_queue *q); /* nothing is in flight */

	/*
	 * Start ios[0..n): every request is valid and n <= free slots. Returns how many
	 * were started (they then complete exactly once) or a negative errno if none was.
	 * Engines that finish I/O at once post results with sn__queue_complete().
	 */
	int (*submit)(struct sn_queue *q, const struct sn_io *ios, unsigned n);

	/* Optional: collect completions the engine holds (uring); NULL if all are posted. */
	int (*reap)(struct sn_queue *q, struct sn_cqe *out, unsigned max, unsigned min_wait);

	/* Optional: make a buffer cheaper to use for I/O on q (io_uring fixed buffers). */
	int (*buf_register)(struct sn_queue *q, void *buf, size_t len);
	void (*buf_unregister)(struct sn_queue *q, void *buf, size_t len);

	/* Optional: byte-addressable devices. */
	int (*map)(struct sn_dev *dev, void **basep);
	int (*persist)(struct sn_dev *dev, const void *addr, size_t len);

	/* Optional: an engine that stands for another (auto:) opens that one instead and
	 * says why in the device's note; when set, no other op is called. */
	int (*resolve)(const struct sn_uri *uri, struct sn_dev **devp);

	/* Optional: sn_dev_ctl(). */
	int (*ctl)(struct sn_dev *dev, int op, void *arg);
	/* Version 1 ends here. */

	/* Optional: signal eventfd efd (-1: stop) whenever a completion becomes ready. NULL
	 * for engines that complete requests inside submit(). Version 2. */
	int (*notify)(struct sn_queue *q, int efd);
};

struct sn_dev {
	const struct sn_engine *engine;
	struct sn_dev_info info;
	char *path;           /* owned copy; info.path points here */
	char note[256];       /* info.note */
	char features[128];   /* info.features */
	int readonly;         /* writes and discards are refused */
	unsigned fast_op_max; /* highest opcode check_io() may pass without a closer look */
};

struct sn_buf_rec {
	void *addr; /* what the user sees */
	size_t len; /* usable length */
	void *map;  /* what was mmap()ed */
	size_t map_len;
};

struct sn_queue {
	struct sn_dev *dev;
	unsigned depth;
	unsigned inflight; /* started and not yet handed to the user */

	/* Completions posted and not yet reaped: a ring of cq_cap (a power of two). */
	struct sn_cqe *cq;
	unsigned cq_cap, cq_head, cq_tail;

	struct sn_buf_rec *bufs;
	unsigned nbufs, bufs_cap;
};

/* Post a completion from inside submit() (engines that finish I/O synchronously). */
static inline void sn__queue_complete(struct sn_queue *q, uint64_t user_data, int64_t res)
{
	struct sn_cqe *c = &q->cq[q->cq_tail++ & (q->cq_cap - 1)];

	c->user_data = user_data;
	c->res = res;
}

/* The engine table, in auto: preference order. */
extern const struct sn_engine *const sn__engines[];
const struct sn_engine *sn__engine_find(const char *name);

/* Engines. */
extern const struct sn_engine sn_engine_null;
extern const struct sn_engine sn_engine_mem;
extern const struct sn_engine sn_engine_psync;
extern const struct sn_engine sn_engine_uring;
extern const struct sn_engine sn_engine_mmap;
extern const struct sn_engine sn_engine_dax;
extern const struct sn_engine sn_engine_pmem; /* only with SN_HAVE_PMEM2 */
extern const struct sn_engine sn_engine_auto;
extern const struct sn_engine sn_engine_fault;

/*
 * file.c: open a regular file or block device for the file-backed engines.
 * Reads create=, size= and direct= handling from the URI and fills dev->info with the
 * capacity, block size and direct-I/O alignment. Returns the fd or a negative errno.
 */
struct sn_file_opts {
	int direct;   /* O_DIRECT */
	int dsync;    /* O_DSYNC */
	int readonly; /* O_RDONLY */
};
int sn__file_open(struct sn_dev *dev, const struct sn_uri *uri, const struct sn_file_opts *o);

/*
 * A file description of a queue's own for the file behind fd, with fd's flags. Linux
 * reports a writeback error once per file description (errseq), so queues that share
 * one would each take a failed flush for another's success; with one each, every
 * queue's next flush fails. Returns the new fd or a negative errno.
 */
int sn__file_reopen(struct sn_dev *dev, int fd);

/* The queue of a file engine: a file description of its own for flushes, or -1. */
struct sn_file_queue {
	struct sn_queue q;
	int fd;
};
/* queue_init: q's own description of dev_fd's file (sn__file_reopen) when own, else -1. */
int sn__file_queue_init(struct sn_queue *q, int dev_fd, int own);
void sn__file_queue_fini(struct sn_queue *q); /* queue_fini: closes it */

/* Blocking full-length pread/pwrite for an fd: retries short transfers and EINTR. */
int64_t sn__file_rw(int fd, int write, void *buf, uint64_t len, uint64_t off);

/* Discard [off, off+len) of fd: BLKDISCARD on block devices, hole punch on files. */
int sn__file_discard(int fd, int is_blockdev, uint64_t off, uint64_t len);

/*
 * msync [off, off+len) of a shared mapping at base (pages of `page` bytes). Linux reports
 * a failed writeback once to the mapping's one file description, so to whichever thread
 * syncs first: *lost keeps the first error, and every later sync of the device returns it
 * (data was lost; a later success must not say otherwise).
 */
int sn__msync_range(char *base, size_t page, uint64_t off, uint64_t len, int *lost);

/* An option table entry with this key accepts any other key (a wrapping engine passes
 * them to the engine it wraps). */
#define SN_OPTION_ANY "*"

/* Options every file engine accepts, to splice into an engine's option table. */
#define SN_FILE_OPTIONS                                                                            \
	{ "create", "0|1", "create the file if it is missing (needs size=)" },                     \
	        { "size", "SIZE", "use SIZE bytes; a shorter file is extended (fallocate)" },      \
	        { "readonly", "0|1", "open read-only; writes are refused" },                       \
	{                                                                                          \
		"lock", "0|1", "1 (default): refuse the file while another open writes it (flock)" \
	}

#endif
