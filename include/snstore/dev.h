/* SPDX-License-Identifier: MIT */
/*
 * snstore/dev.h — the device layer: one asynchronous, batched I/O API over every
 * storage path the machine offers (io_uring, O_DIRECT, block devices, mmap, RAM ...).
 *
 * A device is opened from a URI, ENGINE:PATH?key=value&key=value:
 *
 *     uring:/data/f?direct=1      io_uring, O_DIRECT
 *     psync:/dev/loop0?direct=1   pread/pwrite on a block device
 *     mmap:/data/f                a shared mapping, msync to flush
 *     dax:/pmem/f                 MAP_SYNC mapping of a DAX file, CLWB + SFENCE to persist
 *     pmem:/pmem/f                the same through PMDK's libpmem2 (when built in)
 *     mem:?size=1G                RAM (data moves, nothing persists)
 *     null:?size=1G               no data moves: the software-overhead ceiling
 *     auto:/data/f                the best engine that works for this path here
 *
 * I/O goes through queues. A queue belongs to the thread that created it: it is
 * never locked, and it maps to the engine's own parallel resource (an io_uring ring,
 * an NVMe queue pair). Give every thread its own queue; that is the shared-nothing rule.
 *
 *     struct sn_io io[2];
 *     sn_io_write(&io[0], buf, 4096, 0, 1);
 *     sn_io_flush(&io[1], 2);
 *     sn_queue_submit(q, io, 2);        // starts both, does not wait
 *     sn_queue_reap(q, cqe, 2, 2);      // waits for both completions
 *
 * Caveats:
 *  - A queue is used only by the thread that created it (the io_uring SINGLE_ISSUER rule).
 *  - Writes are durable only after a completed flush (SN_OP_FLUSH), a completed write
 *    with SN_IO_FUA, or sn_dev_persist() on a byte-addressable device. Completions of
 *    writes and flushes submitted together are not ordered: wait for the writes, then
 *    submit the flush.
 *  - After a flush fails, data written since the previous successful flush may be lost
 *    even if a later flush succeeds (Linux marks failed pages clean). Do not retry and
 *    acknowledge: treat the device as failed.
 *  - Do not fork() while a device is open and use it in the child.
 *  - Destroy every queue before closing its device.
 */
#ifndef SNSTORE_DEV_H
#define SNSTORE_DEV_H

#include <stddef.h>
#include <stdint.h>

#include <snstore/err.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sn_dev;
struct sn_queue;

/** I/O opcodes. Flush is an opcode, as in io_uring, NVMe and SPDK, so it batches with data. */
enum sn_op {
	SN_OP_READ = 0,    /* read len bytes at offset into buf */
	SN_OP_WRITE = 1,   /* write len bytes from buf at offset */
	SN_OP_FLUSH = 2,   /* make every completed write durable; offset, len, buf ignored */
	SN_OP_DISCARD = 3, /* the range's contents become undefined; space may be freed */
};

/** Flags of struct sn_io. */
#define SN_IO_FUA (1u << 0) /* write: complete only once the data is durable */

/**
 * One request. Fill it with the sn_io_*() helpers below; sn_queue_submit() copies it,
 * so the struct itself may be reused at once. The buffer must stay valid, and for a
 * write unchanged, until the request completes.
 */
struct sn_io {
	uint8_t op;         /* enum sn_op */
	uint8_t flags;      /* SN_IO_* */
	uint16_t reserved;  /* must be 0 */
	uint32_t len;       /* bytes; 0 for flush */
	uint64_t offset;    /* bytes from the start of the device */
	void *buf;          /* data; see sn_dev_info.mem_align */
	uint64_t user_data; /* handed back unchanged in the completion */
};

/** One completion, as returned by sn_queue_reap(). */
struct sn_cqe {
	uint64_t user_data; /* from the request */
	int64_t res;        /* bytes transferred (always the full len) or a negative errno */
};

static inline void sn_io_prep(struct sn_io *io, enum sn_op op, void *buf, uint32_t len,
                              uint64_t offset, uint64_t user_data)
{
	io->op = (uint8_t)op;
	io->flags = 0;
	io->reserved = 0;
	io->len = len;
	io->offset = offset;
	io->buf = buf;
	io->user_data = user_data;
}

static inline void sn_io_read(struct sn_io *io, void *buf, uint32_t len, uint64_t offset,
                              uint64_t user_data)
{
	sn_io_prep(io, SN_OP_READ, buf, len, offset, user_data);
}

static inline void sn_io_write(struct sn_io *io, const void *buf, uint32_t len, uint64_t offset,
                               uint64_t user_data)
{
	sn_io_prep(io, SN_OP_WRITE, (void *)buf, len, offset, user_data);
}

static inline void sn_io_flush(struct sn_io *io, uint64_t user_data)
{
	sn_io_prep(io, SN_OP_FLUSH, NULL, 0, 0, user_data);
}

static inline void sn_io_discard(struct sn_io *io, uint32_t len, uint64_t offset,
                                 uint64_t user_data)
{
	sn_io_prep(io, SN_OP_DISCARD, NULL, len, offset, user_data);
}

/** Capability bits of struct sn_dev_info.caps. */
#define SN_CAP_FLUSH     (1u << 0) /* SN_OP_FLUSH makes writes durable */
#define SN_CAP_FUA       (1u << 1) /* SN_IO_FUA is honoured natively */
#define SN_CAP_DISCARD   (1u << 2) /* SN_OP_DISCARD frees space */
#define SN_CAP_BYTE_ADDR (1u << 3) /* sn_dev_map() and sn_dev_persist() work */
#define SN_CAP_PERSISTS  (1u << 4) /* data survives the process and a power loss after flush */
#define SN_CAP_DIRECT    (1u << 5) /* bypasses the page cache (alignment rules apply) */
#define SN_CAP_BLOCKDEV  (1u << 6) /* the path is a block device */

/** What a device is and what it can do; filled by sn_dev_info(). */
struct sn_dev_info {
	const char *engine;          /* URI scheme of the engine that serves it ("uring") */
	const char *path;            /* file or device path ("" for mem/null) */
	uint64_t capacity_bytes;     /* I/O must lie in [0, capacity_bytes) */
	uint32_t block_size;         /* logical block size of the medium */
	uint32_t offset_align;       /* offset and len must be multiples of this (1: any) */
	uint32_t mem_align;          /* buffer addresses must be multiples of this (1: any) */
	uint32_t max_queue_depth;    /* deepest queue sn_queue_create() accepts */
	uint32_t max_transfer_bytes; /* largest len of one request */
	uint32_t caps;               /* SN_CAP_* */
	const char *flush_does;      /* one sentence: what SN_OP_FLUSH does on this engine */
	const char *features;        /* engine features in use ("fixed-files fixed-bufs") */
	const char *note;            /* auto: which engine it chose and why; dax/pmem: caveats
	                              * of the medium (tmpfs is RAM); else "" */
	uint32_t persist_gran;       /* SN_GRAN_*: what makes a store through sn_dev_map()
	                              * durable; SN_GRAN_NONE when not byte-addressable */
};

/**
 * Values of sn_dev_info.persist_gran: the power-fail granularity of a byte-addressable
 * device (libpmem2's store granularity), weakest last. A larger value is a weaker
 * guarantee and a slower sn_dev_persist().
 */
enum sn_gran {
	SN_GRAN_NONE = 0,       /* not byte-addressable, or nothing persists (mem:) */
	SN_GRAN_BYTE = 1,       /* CPU caches are in the power-fail domain (eADR): persist is a
	                         * store fence */
	SN_GRAN_CACHE_LINE = 2, /* persist flushes the range's cache lines (CLWB, CLFLUSHOPT or
	                         * CLFLUSH) and fences: MAP_SYNC on a DAX file */
	SN_GRAN_PAGE = 3,       /* persist is msync(MS_SYNC) of the range's pages through the page
	                         * cache: an ordinary file (mmap:, dax: with fallback=msync) */
};

/**
 * Open a device from a URI (see the top of this file). Options an engine does not
 * know are refused, never ignored. File engines take create=1 (create the file if
 * missing) and size=N (use N bytes, extending the file to N if it is shorter;
 * suffixes k, m, g, t are powers of 1024).
 *
 * Returns 0 and *devp, or:
 *   -EINVAL       malformed URI, unknown option, or bad value (sn_errmsg() says which)
 *   -ENOENT       the file does not exist and create=1 was not given
 *   -EBUSY        another open of the file holds its lock (file engines: an open takes
 *                 flock(), exclusive, or shared with readonly=1; lock=0 skips it)
 *   SN_ENOTAVAIL  unknown engine, or one not built in / not usable on this machine
 *   other -errno  from the operating system, with the path in sn_errmsg()
 * The device may be shared by many threads; each uses its own queues. Any thread.
 */
int sn_dev_open(const char *uri, struct sn_dev **devp);

/**
 * Close a device. Every queue on it must have been destroyed. Does not flush: data
 * written without a completed flush may be lost. Any thread, once.
 */
void sn_dev_close(struct sn_dev *dev);

/** Fill *info. The strings live as long as the device. Any thread. */
void sn_dev_info(const struct sn_dev *dev, struct sn_dev_info *info);

/**
 * Create a queue that keeps up to depth requests in flight (depth 1 ..
 * info.max_queue_depth). The queue belongs to the calling thread.
 * Returns 0 and *qp, or -EINVAL (depth out of range), -ENOMEM (including the kernel
 * refusing to lock memory for an io_uring: sn_errmsg() says which limit), or another
 * -errno from the engine.
 */
int sn_queue_create(struct sn_dev *dev, unsigned depth, struct sn_queue **qp);

/**
 * Wait for every request in flight on q, discard their completions, free q's buffers
 * and q. Only the owning thread.
 */
void sn_queue_destroy(struct sn_queue *q);

/**
 * Start up to n requests; does not wait for them. Each request is checked first:
 * alignment, range and opcode errors are refused here, before anything is submitted.
 *
 * Returns how many of ios[0..n) were started (1..n; fewer than n when the queue filled
 * up or ios[k] was refused: submit the rest later to see why), or:
 *   -EAGAIN  the queue is full (depth requests in flight): reap, then submit again
 *   -EINVAL  ios[0] broke a rule: zero length, misalignment, bad opcode or flags
 *   -ERANGE  ios[0] reaches past the end of the device
 *   -ENOTSUP ios[0] needs a capability the device lacks (discard, FUA on some engines)
 * Every started request completes exactly once through sn_queue_reap(); a refused
 * one never does. Only the owning thread.
 */
int sn_queue_submit(struct sn_queue *q, const struct sn_io *ios, unsigned n);

/**
 * Collect up to max completions into cqes, waiting until at least min_wait are
 * available (min_wait is capped at the number in flight, so it never hangs).
 * Returns the count (0..max) or a negative errno if the engine failed to wait.
 * I/O errors are reported per request in sn_cqe.res, never here. Only the owning thread.
 */
int sn_queue_reap(struct sn_queue *q, struct sn_cqe *cqes, unsigned max, unsigned min_wait);

/** Requests started on q and not yet reaped. Only the owning thread. */
unsigned sn_queue_inflight(const struct sn_queue *q);

/**
 * Have q's engine signal the eventfd efd (write 1) whenever a completion becomes ready,
 * so the owning thread can sleep in poll() with I/O in flight; efd -1 stops it.
 * Returns 0, or -ENOTSUP when the engine completes requests inside sn_queue_submit()
 * (their completions are ready at once: nothing to wait for), or the engine's error.
 * Only the owning thread.
 */
int sn_queue_notify(struct sn_queue *q, int efd);

/** The device a queue belongs to. */
struct sn_dev *sn_queue_dev(const struct sn_queue *q);

/**
 * Blocking helpers: one request, submitted and waited for. They may be mixed with
 * asynchronous requests on the same queue: completions of others that arrive while
 * waiting are kept for the next sn_queue_reap(). They work even on a full queue.
 * Return 0 or a negative errno (the request's result, or a refusal as in
 * sn_queue_submit()). Only the owning thread.
 */
int sn_queue_pread(struct sn_queue *q, void *buf, uint32_t len, uint64_t offset);
int sn_queue_pwrite(struct sn_queue *q, const void *buf, uint32_t len, uint64_t offset);
int sn_queue_flush(struct sn_queue *q);

/**
 * Allocate a buffer of len bytes for I/O on q: aligned for direct I/O, and registered
 * with the engine where it can be (io_uring fixed buffers) so I/O into it skips page
 * pinning. It works with any queue of the device, fastest with q. Contents are zero.
 * Returns 0 and *bufp, or -ENOMEM. Free it with sn_queue_buf_free() on the same q.
 * Only the owning thread.
 */
int sn_queue_buf_alloc(struct sn_queue *q, size_t len, void **bufp);

/** Free a buffer from sn_queue_buf_alloc(); no I/O may be using it. Only the owning thread. */
void sn_queue_buf_free(struct sn_queue *q, void *buf);

/**
 * Byte-addressable devices (SN_CAP_BYTE_ADDR): the device's bytes, mapped.
 * *basep points at offset 0; capacity_bytes long. Loads and stores go straight to the
 * medium's page cache or persistent memory; sn_dev_persist() makes a range durable.
 * Stores made through the mapping are made durable by sn_dev_persist() only: at
 * cache-line granularity (dax:, pmem:) SN_OP_FLUSH covers the queue's writes, not stores
 * it never saw (at page granularity its fdatasync happens to write back every dirty page;
 * do not rely on that). info.persist_gran says what sn_dev_persist() does here.
 * Returns 0, or -ENOTSUP when the device is not byte-addressable. Any thread.
 */
int sn_dev_map(struct sn_dev *dev, void **basep);

/**
 * Make [addr, addr+len) of the mapping durable (msync, or cache-line flush + fence).
 * Returns 0, -EINVAL if the range is outside the mapping, -ENOTSUP, or the I/O error
 * (msync's; a cache-line flush cannot fail). Any thread.
 */
int sn_dev_persist(struct sn_dev *dev, const void *addr, size_t len);

/**
 * Engine-specific controls (SQLite's xFileControl): op is an SN_CTL_* code of the
 * engine (see snstore/fault.h). Returns what the op returns, or -ENOTSUP when the
 * engine has no such op. Any thread, unless the op says otherwise.
 */
int sn_dev_ctl(struct sn_dev *dev, int op, void *arg);

/** One URI option an engine accepts. */
struct sn_option {
	const char *key;  /* "direct" */
	const char *arg;  /* "0|1", "SIZE", "N" */
	const char *help; /* one line */
};

/** An engine compiled into this library, for help and probe output. */
struct sn_engine_desc {
	const char *name;                /* URI scheme */
	const char *summary;             /* one line */
	const struct sn_option *options; /* terminated by an entry with key == NULL */
};

/** The idx-th engine compiled in, or NULL past the last. Any thread. */
const struct sn_engine_desc *sn_engine_desc(unsigned idx);

/**
 * Parse a size such as "4096", "4k", "1M", "2g" (powers of 1024; an optional trailing
 * "b"/"ib" is accepted). Returns 0 and *out, or -EINVAL with sn_errmsg() set.
 */
int sn_parse_size(const char *s, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
