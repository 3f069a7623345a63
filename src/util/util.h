/* SPDX-License-Identifier: MIT */
/*
 * util.h — internal helpers shared by every layer: the thread-local error message,
 * the clock, and small arithmetic. Nothing here depends on another layer.
 */
#ifndef SN_UTIL_H
#define SN_UTIL_H

#include <stdint.h>
#include <time.h>

#define SN_LIKELY(x)     __builtin_expect(!!(x), 1)
#define SN_UNLIKELY(x)   __builtin_expect(!!(x), 0)
#define SN_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SN_CACHELINE     64

/* Record why the current call fails; returns err so callers can `return sn__err(...)`. */
int sn__errf(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A macro so that the result is err where it is used: to the static analyzer
 * (clang-tidy) a function of another file may return anything, and `err = sn__err(-ENOMEM,
 * ...)` looked like it could yield 0 and go on as if the call had succeeded. err is
 * evaluated once. */
#define sn__err(err, ...)                              \
	__extension__({                                \
		const int sn__err_ = (err);            \
		(void)sn__errf(sn__err_, __VA_ARGS__); \
		sn__err_;                              \
	})

/* Record a fixed reason without formatting (hot paths such as a full queue). */
int sn__err_str(int err, const char *msg);

/* Clear the thread's message (a call that succeeds does not have to). */
void sn__err_clear(void);

static inline uint64_t sn__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int sn__is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/*
 * len zeroed bytes, 4 KiB-aligned (direct I/O can use them). From 2 MiB on, their own
 * mapping, aligned to and advised into huge pages (MADV_HUGEPAGE; Debian's default THP
 * mode is "madvise"): a new one costs a fault per 2 MiB and no memset, and random
 * accesses miss the TLB far less. Free with sn__free_big(p, the same len).
 */
void *sn__zalloc_big(size_t len);
void sn__free_big(void *p, size_t len);

/* n zeroed elements of size bytes, cache-line aligned (free()): per-thread structures
 * side by side, none sharing a line with its neighbour's when size is a multiple of
 * SN_CACHELINE (give the type _Alignas(SN_CACHELINE)). NULL when out of memory. */
void *sn__zalloc_lines(size_t n, size_t size);

/* Format a byte count with a binary suffix ("4 KiB", "1.5 GiB") into buf. */
const char *sn__fmt_bytes(uint64_t bytes, char *buf, unsigned len);

#endif
