/* SPDX-License-Identifier: MIT */
/*
 * snstore/fault.h — the fault: engine, for testing what a program does when storage
 * fails. It wraps any other device URI:
 *
 *     fault:psync:/dev/shm/f?crash=random&seed=7      power loss drops a random subset
 *     fault:uring:/data/f?direct=1&eio_at=100         the 100th request fails with EIO
 *
 * Writes not yet made durable (by a completed flush, or SN_IO_FUA) are held by the
 * engine and shown to reads. At a simulated crash (sn_dev_ctl(SN_CTL_FAULT_CRASH), or
 * crash_at=N) some of them reach the inner device and the rest are lost, as the crash=
 * mode says; after that every request fails with -EIO until the device is reopened
 * (open the inner URI to see what survived). docs/engines.md gives the full fault model.
 *
 * With bytes=1 the device is byte-addressable (sn_dev_map, sn_dev_persist; cache-line
 * granularity), like dax: over a wrapped psync:, mmap: or mem: device. The mapping is
 * memory of the engine's own, the CPU's view; sn_dev_persist() copies the range's cache
 * lines to the wrapped device, the medium. At a crash, every line of the mapping that
 * differs from the medium (a store never persisted) is lost, kept with p=1/2 (a cache
 * eviction got it there first), or torn at an 8-byte boundary, as crash= says.
 *
 * Caveats:
 *  - Requests run synchronously under one device-wide lock: this engine is for
 *    correctness tests, not speed.
 *  - The held writes cost memory until the next flush.
 */
#ifndef SNSTORE_FAULT_H
#define SNSTORE_FAULT_H

#include <stdint.h>

#include <snstore/dev.h>

#ifdef __cplusplus
extern "C" {
#endif

/** sn_dev_ctl() ops of the fault: engine. */
enum {
	SN_CTL_FAULT_CRASH = 0x100, /* arg NULL: simulate power loss now */
	SN_CTL_FAULT_STATS = 0x101, /* arg struct sn_fault_stats *: counters so far */
};

struct sn_fault_stats {
	uint64_t ios;          /* requests seen (reads, writes, flushes, discards) */
	uint64_t eio_injected; /* requests failed with -EIO on purpose */
	uint64_t enospc_injected;
	uint64_t bits_flipped;   /* reads returned with one bit flipped */
	uint64_t pending_writes; /* writes held, not yet durable */
	uint64_t crashes;        /* 0 or 1 */
	uint64_t writes_kept;    /* at the crash: held writes that reached the device whole */
	uint64_t writes_torn;    /* ... that reached it in part (crash=tear: some of its blocks) */
	uint64_t writes_dropped; /* ... that were lost */
	uint64_t persists;       /* bytes=1: sn_dev_persist() calls */
	uint64_t lines_kept;     /* bytes=1, at the crash: unpersisted cache lines that survived */
	uint64_t lines_torn;     /* ... that survived in part (a prefix of 8-byte words) */
	uint64_t lines_dropped;  /* ... that were lost */
};

#ifdef __cplusplus
}
#endif
#endif
