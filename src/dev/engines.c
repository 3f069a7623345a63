/* SPDX-License-Identifier: MIT */
/*
 * engines.c — the engines built into this library, one line each, in the order auto:
 * prefers them for a file path (the seed's recommendation matrix: io_uring, then
 * O_DIRECT/standard I/O, then a mapping). mem and null serve tests and benchmarks.
 * pmem is compiled in only where libpmem2 was found (SN_HAVE_PMEM2).
 */
#include <stddef.h>

#include "engine.h"

const struct sn_engine *const sn__engines[] = {
	&sn_engine_auto, &sn_engine_uring, &sn_engine_psync, &sn_engine_mmap,
	&sn_engine_dax,
#ifdef SN_HAVE_PMEM2
	&sn_engine_pmem,
#endif
	&sn_engine_mem,  &sn_engine_null,  &sn_engine_fault, NULL,
};
