/* SPDX-License-Identifier: MIT */
/*
 * mem.c — large zeroed buffers in huge pages (util.h): the shard index's tables and the
 * KV store's segment images.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util.h"

#define HUGE_PAGE (2ul << 20)

void *sn__zalloc_lines(size_t n, size_t size)
{
	size_t len;
	void *p;

	if (__builtin_mul_overflow(n, size, &len) || len > SIZE_MAX - SN_CACHELINE)
		return NULL;
	len = (len + SN_CACHELINE - 1) & ~(size_t)(SN_CACHELINE - 1);
	if (!(p = aligned_alloc(SN_CACHELINE, len ? len : SN_CACHELINE)))
		return NULL;
	return memset(p, 0, len);
}

void *sn__zalloc_big(size_t len)
{
	unsigned char *p;
	size_t pad;

	if (len < HUGE_PAGE) {
		void *q = NULL;

		if (posix_memalign(&q, 4096, len))
			return NULL;
		return memset(q, 0, len);
	}
	/* Map a huge page more and trim both ends to a 2 MiB boundary: THP backs only the
	 * aligned 2 MiB ranges of a mapping. */
	p = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	pad = (HUGE_PAGE - ((uintptr_t)p & (HUGE_PAGE - 1))) & (HUGE_PAGE - 1);
	if (pad)
		munmap(p, pad);
	munmap(p + pad + len, HUGE_PAGE - pad);
	(void)madvise(p + pad, len, MADV_HUGEPAGE); /* a hint: 4 KiB pages work too */
	return p + pad;                             /* a new mapping reads as zeros */
}

void sn__free_big(void *p, size_t len)
{
	if (len < HUGE_PAGE)
		free(p);
	else if (p)
		munmap(p, len);
}
