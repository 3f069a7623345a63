/* SPDX-License-Identifier: MIT */
/*
 * uring: io_uring engine (liburing). One ring per queue. At open a probe ring finds the
 * setup flags this kernel takes, best first: SINGLE_ISSUER + DEFER_TASKRUN (6.1),
 * COOP_TASKRUN (5.19), plain, the first two with TASKRUN_FLAG (5.19: an empty reap
 * enters the kernel only when the ring says completions wait); SUBMIT_ALL (5.18); the file is registered (fixed file)
 * and buffers from sn_queue_buf_alloc() are registered into a sparse table (5.19).
 * Flush is IORING_OP_FSYNC with IORING_FSYNC_DATASYNC; FUA is RWF_DSYNC on the write.
 * Short transfers, -EAGAIN and -EINTR are retried here, so a completion always carries
 * the full length or a real error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../util/util.h"
#include "engine.h"

#define URING_MAX_BUFS 64           /* sparse fixed-buffer table slots per queue */
#define URING_BUF_MAX  (1ull << 30) /* the kernel's limit on one fixed buffer */

struct uring_dev {
	struct sn_dev dev;
	int fd;
	unsigned setup_flags; /* IORING_SETUP_* that worked on the probe ring */
	int sqpoll_cpu;       /* -1: let the kernel place the SQ thread */
	unsigned sq_idle_ms;
	int use_fixed_file;
	int use_fixed_bufs;
};

/* A request in flight: kept so a short or -EAGAIN completion can be resubmitted. */
struct uring_slot {
	struct sn_io io;
	uint32_t done;   /* bytes already transferred */
	int16_t buf_idx; /* fixed-buffer slot, -1 if none */
	uint16_t next_free;
};

struct uring_buf {
	uintptr_t start, end;
	int idx;
};

struct uring_queue {
	struct sn_queue q;
	struct io_uring ring;
	struct uring_slot *slots;
	unsigned free_head; /* stack of free slots, linked through next_free */
	unsigned nslots;
	int need_submit; /* SQEs prepared but not yet handed to the kernel */
	struct uring_buf bufs[URING_MAX_BUFS];
	unsigned nbufs;
	unsigned last_buf; /* most recent hit: most jobs slice one big buffer */
	int fixed_bufs;    /* the sparse table was registered */
	int fd;            /* its own file description: see sn__file_reopen() */
	int fixed_file;    /* the file is registered as index 0 */
	int poll_events;   /* completions wait for an io_uring_enter (DEFER/COOP_TASKRUN) */
	int taskrun_flag;  /* the kernel says when they wait: IORING_SQ_TASKRUN (5.19) */
};

static const struct sn_option uring_options[] = {
	{ "direct", "0|1", "O_DIRECT: bypass the page cache (aligned I/O only)" },
	{ "sqpoll", "0|1", "a kernel thread polls the submission ring: no submit syscalls" },
	{ "sqpoll_cpu", "N", "pin the sqpoll thread to CPU N" },
	{ "sq_idle_ms", "N", "sqpoll thread sleeps after N ms without work (default 100)" },
	{ "iopoll", "0|1", "busy-poll for completions (needs direct=1 and poll queues)" },
	{ "fixedbufs", "0|1", "register buffers from sn_queue_buf_alloc (default 1)" },
	{ "regfile", "0|1", "register the file with the ring (default 1)" },
	SN_FILE_OPTIONS,
	{ NULL, NULL, NULL },
};

static int setup_error(int err, unsigned depth)
{
	struct rlimit rl;

	if (err == -ENOMEM) {
		getrlimit(RLIMIT_MEMLOCK, &rl);
		return sn__err(err,
		               "io_uring setup with %u entries failed: the kernel refused to "
		               "lock memory (RLIMIT_MEMLOCK is %llu bytes): raise 'ulimit -l' "
		               "or use a smaller queue depth",
		               depth, (unsigned long long)rl.rlim_cur);
	}
	if (err == -EPERM)
		return sn__err(err, "io_uring is disabled on this system (sysctl "
		                    "kernel.io_uring_disabled, or a seccomp policy): use psync:");
	if (err == -ENOSYS)
		return sn__err(err, "this kernel has no io_uring (Linux 5.1+): use psync:");
	return sn__err(err, "io_uring setup with %u entries failed: %s", depth, sn_strerror(err));
}

/* Set up ring with the best flags this kernel takes, starting from u->setup_flags. */
static int ring_init(struct uring_dev *u, struct io_uring *ring, unsigned entries,
                     unsigned *flags_out)
{
	const unsigned base = IORING_SETUP_SUBMIT_ALL;
	unsigned tries[6], ntries = 0, extra;
	int err = -EINVAL;

	*flags_out = 0;
	extra = u->setup_flags & (IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF | IORING_SETUP_IOPOLL);
	if (u->setup_flags & IORING_SETUP_SQPOLL) {
		/* DEFER_TASKRUN needs the submitter to reap; sqpoll submits by itself. */
		tries[ntries++] = extra | base | IORING_SETUP_SINGLE_ISSUER;
	} else {
		/* TASKRUN_FLAG: a flag in the ring says when completions wait for an enter,
		 * so an idle worker's reaps need no system call until one does. */
		unsigned defer =
		        extra | base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

		tries[ntries++] = defer | IORING_SETUP_TASKRUN_FLAG;
		tries[ntries++] = defer;
		tries[ntries++] =
		        extra | base | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
		tries[ntries++] = extra | base | IORING_SETUP_COOP_TASKRUN;
	}
	tries[ntries++] = extra;
	for (unsigned i = 0; i < ntries; i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 2;
		p.sq_thread_idle = u->sq_idle_ms;
		if (u->sqpoll_cpu >= 0)
			p.sq_thread_cpu = (unsigned)u->sqpoll_cpu;
		err = io_uring_queue_init_params(entries, ring, &p);
		if (err == 0) {
			*flags_out = tries[i];
			return 0;
		}
		/* Only an unknown flag (-EINVAL) is worth retrying with fewer. */
		if (err != -EINVAL)
			break;
	}
	return setup_error(err, entries);
}

/*
 * Polled completions need a driver with poll queues (NVMe with nvme.poll_queues=N);
 * elsewhere the kernel fails polled reads with EOPNOTSUPP. The block layer says which in
 * queue/io_poll of the device that holds the file (or of its parent, for a partition).
 */
static int iopoll_check(struct uring_dev *u, const char *path)
{
	char sys[128], val[8] = "";
	struct stat st;
	FILE *f = NULL;

	if (fstat(u->fd, &st) < 0)
		return 0;
	dev_t d = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/queue/io_poll", major(d), minor(d));
	if (!(f = fopen(sys, "r"))) {
		snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/../queue/io_poll", major(d),
		         minor(d));
		f = fopen(sys, "r");
	}
	if (!f)
		return 0; /* cannot tell: let the I/O answer */
	if (!fgets(val, sizeof(val), f))
		val[0] = '\0';
	fclose(f);
	if (val[0] == '0')
		return sn__err(-EOPNOTSUPP,
		               "iopoll=1: the device under '%s' cannot complete "
		               "polled I/O (queue/io_poll is 0; NVMe needs "
		               "nvme.poll_queues=N): drop iopoll=1",
		               path);
	return 0;
}

static int uring_open(struct sn_dev *dev, const struct sn_uri *uri)
{
	struct uring_dev *u = (struct uring_dev *)dev;
	struct sn_file_opts o = { 0 };
	int sqpoll = 0, iopoll = 0, err;
	uint64_t cpu = UINT64_MAX, idle = 100;
	struct io_uring probe;
	unsigned flags;

	u->use_fixed_file = 1;
	u->use_fixed_bufs = 1;
	if ((err = sn__uri_bool(uri, "direct", &o.direct)) ||
	    (err = sn__uri_bool(uri, "sqpoll", &sqpoll)) ||
	    (err = sn__uri_uint(uri, "sqpoll_cpu", &cpu)) ||
	    (err = sn__uri_uint(uri, "sq_idle_ms", &idle)) ||
	    (err = sn__uri_bool(uri, "iopoll", &iopoll)) ||
	    (err = sn__uri_bool(uri, "fixedbufs", &u->use_fixed_bufs)) ||
	    (err = sn__uri_bool(uri, "regfile", &u->use_fixed_file)))
		return err;
	if (iopoll && !o.direct)
		return sn__err(-EINVAL, "iopoll=1 needs direct=1: polled completions exist only "
		                        "for O_DIRECT I/O");
	if (cpu != UINT64_MAX && !sqpoll)
		return sn__err(-EINVAL, "sqpoll_cpu needs sqpoll=1");
	if (cpu != UINT64_MAX && cpu >= CPU_SETSIZE)
		return sn__err(-EINVAL, "sqpoll_cpu=%llu: not a CPU number",
		               (unsigned long long)cpu);
	if (idle > 3600000)
		return sn__err(-EINVAL, "sq_idle_ms=%llu: at most 3600000 (an hour)",
		               (unsigned long long)idle);
	u->sqpoll_cpu = cpu == UINT64_MAX ? -1 : (int)cpu;
	u->sq_idle_ms = (unsigned)idle;
	u->setup_flags = (sqpoll ? IORING_SETUP_SQPOLL : 0) | (iopoll ? IORING_SETUP_IOPOLL : 0) |
	                 (u->sqpoll_cpu >= 0 ? IORING_SETUP_SQ_AFF : 0);
	u->fd = sn__file_open(dev, uri, &o);
	if (u->fd < 0)
		return u->fd;
	if (iopoll && (err = iopoll_check(u, uri->path))) {
		close(u->fd);
		return err;
	}

	/* A probe ring: fail at open rather than at the first queue if io_uring is off,
	 * and learn once which flags work so every queue sets up on the first try. */
	err = ring_init(u, &probe, 8, &flags);
	if (err) {
		close(u->fd);
		return err;
	}
	u->setup_flags = flags;
	if (u->use_fixed_bufs && io_uring_register_buffers_sparse(&probe, URING_MAX_BUFS) < 0)
		u->use_fixed_bufs = 0;
	/* Not u->fd: a ring's teardown runs after io_uring_queue_exit() returns (tens of ms),
	 * and until it does, the file it registered holds u->fd's lock (file.c) — past this
	 * process's exit, when the process is short, refusing the next open of the store. */
	if (u->use_fixed_file) {
		int efd = eventfd(0, EFD_CLOEXEC);

		if (efd < 0 || io_uring_register_files(&probe, &efd, 1) < 0)
			u->use_fixed_file = 0;
		if (efd >= 0)
			close(efd);
	}
	io_uring_queue_exit(&probe);

	dev->info.max_queue_depth = 32767; /* the SQ holds depth + 1: IORING_MAX_ENTRIES */
	dev->info.max_transfer_bytes = 1u << 30;
	dev->info.caps |= SN_CAP_FUA;
	dev->info.flush_does = "IORING_OP_FSYNC with IORING_FSYNC_DATASYNC (fdatasync): data "
	                       "and the metadata needed to read it reach stable storage";
	snprintf(dev->features, sizeof(dev->features), "%s%s%s%s%s%s%s%s%s%s",
	         o.direct ? "O_DIRECT " : "", u->use_fixed_file ? "fixed-file " : "",
	         u->use_fixed_bufs ? "fixed-bufs " : "",
	         flags & IORING_SETUP_SINGLE_ISSUER ? "single-issuer " : "",
	         flags & IORING_SETUP_DEFER_TASKRUN ? "defer-taskrun " : "",
	         flags & IORING_SETUP_COOP_TASKRUN ? "coop-taskrun " : "",
	         flags & IORING_SETUP_TASKRUN_FLAG ? "taskrun-flag " : "",
	         flags & IORING_SETUP_SUBMIT_ALL ? "submit-all " : "",
	         flags & IORING_SETUP_SQPOLL ? "sqpoll " : "",
	         flags & IORING_SETUP_IOPOLL ? "iopoll " : "");
	return 0;
}

static void uring_close(struct sn_dev *dev)
{
	close(((struct uring_dev *)dev)->fd);
}

static int uring_queue_init(struct sn_queue *q)
{
	struct uring_queue *uq = (struct uring_queue *)q;
	struct uring_dev *u = (struct uring_dev *)q->dev;
	unsigned flags;
	int err;

	/* depth + 1: a blocking helper may add one request to a full queue. */
	uq->nslots = q->depth + 1;
	uq->slots = calloc(uq->nslots, sizeof(*uq->slots));
	if (!uq->slots)
		return -ENOMEM;
	for (unsigned i = 0; i < uq->nslots; i++)
		uq->slots[i].next_free = (uint16_t)(i + 1);
	uq->free_head = 0;
	uq->fd = sn__file_reopen(q->dev, u->fd);
	if (uq->fd < 0) {
		free(uq->slots);
		return uq->fd;
	}
	err = ring_init(u, &uq->ring, uq->nslots, &flags);
	if (err) {
		close(uq->fd);
		free(uq->slots);
		return err;
	}
	/* Registration only saves work per request; without it I/O still works. */
	uq->fixed_file = u->use_fixed_file && io_uring_register_files(&uq->ring, &uq->fd, 1) == 0;
	uq->poll_events = !!(flags & (IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN));
	uq->taskrun_flag = !!(flags & IORING_SETUP_TASKRUN_FLAG);
	uq->fixed_bufs = u->use_fixed_bufs &&
	                 io_uring_register_buffers_sparse(&uq->ring, URING_MAX_BUFS) == 0;
	/* Saves the fd lookup on every io_uring_enter (5.18). */
	io_uring_register_ring_fd(&uq->ring);
	return 0;
}

static void uring_queue_fini(struct sn_queue *q)
{
	struct uring_queue *uq = (struct uring_queue *)q;

	io_uring_queue_exit(&uq->ring);
	close(uq->fd);
	free(uq->slots);
}

static int buf_lookup(struct uring_queue *uq, const void *p, uint32_t len)
{
	uintptr_t a = (uintptr_t)p;
	struct uring_buf *b = &uq->bufs[uq->last_buf];

	if (a >= b->start && a + len <= b->end)
		return b->idx;
	for (unsigned i = 0; i < uq->nbufs; i++) {
		b = &uq->bufs[i];
		if (a >= b->start && a + len <= b->end) {
			uq->last_buf = i;
			return b->idx;
		}
	}
	return -1;
}

/*
 * The SQ has a slot for every request, so it only runs short while a sqpoll thread has
 * not yet consumed earlier entries: wait for it.
 */
static struct io_uring_sqe *get_sqe(struct uring_queue *uq)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&uq->ring))) {
		io_uring_submit(&uq->ring);
		io_uring_sqring_wait(&uq->ring);
	}
	return sqe;
}

static void prep_slot(struct uring_queue *uq, struct io_uring_sqe *sqe, unsigned idx)
{
	struct uring_slot *s = &uq->slots[idx];
	const struct sn_io *io = &s->io;
	int fd = uq->fixed_file ? 0 : uq->fd;
	/* Flushes and discards have no buffer: NULL + 0 is still undefined in C. */
	char *buf = io->buf ? (char *)io->buf + s->done : NULL;
	unsigned len = io->len - s->done;
	uint64_t off = io->offset + s->done;

	switch (io->op) {
	case SN_OP_READ:
		if (s->buf_idx >= 0)
			io_uring_prep_read_fixed(sqe, fd, buf, len, off, s->buf_idx);
		else
			io_uring_prep_read(sqe, fd, buf, len, off);
		break;
	case SN_OP_WRITE:
		if (s->buf_idx >= 0)
			io_uring_prep_write_fixed(sqe, fd, buf, len, off, s->buf_idx);
		else
			io_uring_prep_write(sqe, fd, buf, len, off);
		if (io->flags & SN_IO_FUA)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case SN_OP_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	default: /* SN_OP_DISCARD; on a block device fallocate discards or zeroes */
		io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		                        io->offset, io->len);
		break;
	}
	if (uq->fixed_file)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, idx);
}

static int uring_submit(struct sn_queue *q, const struct sn_io *ios, unsigned n)
{
	struct uring_queue *uq = (struct uring_queue *)q;
	unsigned i;
	int r;

	for (i = 0; i < n; i++) {
		unsigned idx = uq->free_head;
		struct io_uring_sqe *sqe;
		struct uring_slot *s;

		if (idx >= uq->nslots)
			break;
		sqe = get_sqe(uq);
		s = &uq->slots[idx];
		uq->free_head = s->next_free;
		s->io = ios[i];
		s->done = 0;
		s->buf_idx = (int16_t)(uq->nbufs && ios[i].op <= SN_OP_WRITE
		                               ? buf_lookup(uq, ios[i].buf, ios[i].len)
		                               : -1);
		prep_slot(uq, sqe, idx);
	}
	if (i == 0)
		return -EAGAIN;
	/* With deferred task work, entering the kernel is also when completions get posted:
	 * ask for them now, so the next reap may find them without a second syscall. */
	r = uq->poll_events ? io_uring_submit_and_get_events(&uq->ring)
	                    : io_uring_submit(&uq->ring);
	/* SQEs the kernel did not take stay in the ring (it pushed back with -EBUSY, took
	 * only some, or failed): reap hands them over later, so they count as started. Were
	 * this call to fail now, they would still run, uncounted. An error that lasts comes
	 * back from the reap that enters again. */
	uq->need_submit = io_uring_sq_ready(&uq->ring) > 0;
	if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -EINTR)
		sn__err(r, "io_uring_submit failed: %s", sn_strerror(r));
	return (int)i;
}

/* Resubmit the rest of a short or -EAGAIN request. */
static void retry_slot(struct uring_queue *uq, unsigned idx)
{
	prep_slot(uq, get_sqe(uq), idx);
	uq->need_submit = 1;
}

/* Completions wait for an io_uring_enter to post them (or the CQ overflowed). */
static int taskrun_pending(const struct io_uring *ring)
{
	return !!(IO_URING_READ_ONCE(*ring->sq.kflags) &
	          (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW));
}

static int uring_reap(struct sn_queue *q, struct sn_cqe *out, unsigned max, unsigned min_wait)
{
	struct uring_queue *uq = (struct uring_queue *)q;
	struct io_uring *ring = &uq->ring;
	unsigned got = 0;
	int entered = 0;

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int r;

		io_uring_for_each_cqe(ring, head, cqe)
		{
			unsigned idx = (unsigned)cqe->user_data;
			struct uring_slot *s = &uq->slots[idx];
			int res = cqe->res;

			if (got == max)
				break;
			seen++;
			if (res == -EAGAIN || res == -EINTR) {
				retry_slot(uq, idx);
				continue;
			}
			if (res > 0 && s->io.op <= SN_OP_WRITE &&
			    s->done + (unsigned)res < s->io.len) {
				s->done += (unsigned)res;
				retry_slot(uq, idx);
				continue;
			}
			out[got].user_data = s->io.user_data;
			if (res < 0)
				out[got].res = res;
			else if (s->io.op <= SN_OP_WRITE)
				out[got].res = res == 0 ? -EIO : (int64_t)s->io.len;
			else
				out[got].res = s->io.op == SN_OP_DISCARD ? (int64_t)s->io.len : 0;
			got++;
			s->next_free = (uint16_t)uq->free_head;
			uq->free_head = idx;
		}
		io_uring_cq_advance(ring, seen);
		if (got >= min_wait) {
			/* A non-waiting reap that found nothing: with deferred task work the
			 * kernel posts completions only inside io_uring_enter, so enter once
			 * (with TASKRUN_FLAG, only when the ring says some wait). */
			if (got == 0 && !entered && got < max &&
			    ((uq->poll_events && (!uq->taskrun_flag || taskrun_pending(ring))) ||
			     uq->need_submit)) {
				entered = 1;
				r = io_uring_submit_and_get_events(ring);
				uq->need_submit = r < 0 || io_uring_sq_ready(ring) > 0;
				continue;
			}
			if (uq->need_submit) {
				r = io_uring_submit(ring);
				uq->need_submit = r < 0 || io_uring_sq_ready(ring) > 0;
			}
			return (int)got;
		}
		/* One syscall hands over pending SQEs and waits for completions. */
		r = io_uring_submit_and_wait(ring, min_wait - got);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME)
			return got ? (int)got
			           : sn__err(r, "io_uring wait failed: %s", sn_strerror(r));
		uq->need_submit = io_uring_sq_ready(ring) > 0;
	}
}

static int uring_notify(struct sn_queue *q, int efd)
{
	struct io_uring *ring = &((struct uring_queue *)q)->ring;
	int r = efd < 0 ? io_uring_unregister_eventfd(ring) : io_uring_register_eventfd(ring, efd);

	return r < 0 ? sn__err(r, "io_uring eventfd registration: %s", sn_strerror(r)) : 0;
}

static int uring_buf_register(struct sn_queue *q, void *buf, size_t len)
{
	struct uring_queue *uq = (struct uring_queue *)q;
	struct iovec iov = { buf, len };
	__u64 tag = 0;
	int idx = -1;

	if (!uq->fixed_bufs || len > URING_BUF_MAX || uq->nbufs == URING_MAX_BUFS)
		return -ENOTSUP;
	/* Take the lowest slot no registered buffer uses. */
	for (int cand = 0; cand < URING_MAX_BUFS && idx < 0; cand++) {
		idx = cand;
		for (unsigned i = 0; i < uq->nbufs; i++)
			if (uq->bufs[i].idx == cand)
				idx = -1;
	}
	if (io_uring_register_buffers_update_tag(&uq->ring, (unsigned)idx, &iov, &tag, 1) != 1)
		return -ENOTSUP;
	uq->bufs[uq->nbufs].start = (uintptr_t)buf;
	uq->bufs[uq->nbufs].end = (uintptr_t)buf + len;
	uq->bufs[uq->nbufs].idx = idx;
	uq->nbufs++;
	return 0;
}

static void uring_buf_unregister(struct sn_queue *q, void *buf, size_t len)
{
	struct uring_queue *uq = (struct uring_queue *)q;
	struct iovec iov = { NULL, 0 };
	__u64 tag = 0;

	(void)len;
	for (unsigned i = 0; i < uq->nbufs; i++) {
		if (uq->bufs[i].start != (uintptr_t)buf)
			continue;
		io_uring_register_buffers_update_tag(&uq->ring, (unsigned)uq->bufs[i].idx, &iov,
		                                     &tag, 1);
		uq->bufs[i] = uq->bufs[--uq->nbufs];
		uq->last_buf = 0;
		return;
	}
}

const struct sn_engine sn_engine_uring = {
	.version = SN_ENGINE_V2,
	.name = "uring",
	.summary = "io_uring: batched async I/O, fixed files and buffers; direct=1, sqpoll=1",
	.options = uring_options,
	.dev_size = sizeof(struct uring_dev),
	.queue_size = sizeof(struct uring_queue),
	.open = uring_open,
	.close = uring_close,
	.queue_init = uring_queue_init,
	.queue_fini = uring_queue_fini,
	.submit = uring_submit,
	.reap = uring_reap,
	.buf_register = uring_buf_register,
	.buf_unregister = uring_buf_unregister,
	.notify = uring_notify,
};
