/* SPDX-License-Identifier: MIT */
/*
 * snstore/err.h — error codes and messages.
 *
 * Every snstore function returns 0 (or a count) on success and a negative errno on failure
 * (-EINVAL, -EIO, -ENOSPC ...). Where no errno says it, snstore uses its own codes, all
 * below -4095 so they never collide with the kernel's. No function sets errno.
 *
 * Caveats:
 *  - sn_errmsg() is per thread: read it on the thread that saw the failure, before the
 *    next snstore call on that thread.
 */
#ifndef SNSTORE_ERR_H
#define SNSTORE_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, text): snstore's own codes, beyond the kernel's errno range. */
#define SN_ERRORS(X)                                                                 \
	X(SN_ECORRUPT, -10001, "checksum mismatch: stored data is corrupt")          \
	X(SN_EFORMAT, -10002, "not an snstore device, or an unknown format version") \
	X(SN_ESTOPPED, -10003, "stopped after a failed flush: reopen to recover")    \
	X(SN_ENOTAVAIL, -10004, "engine not available in this build or on this machine")

enum {
#define SN__ERR_ENUM(name, value, text) name = value,
	SN_ERRORS(SN__ERR_ENUM)
#undef SN__ERR_ENUM
};

/**
 * The generic text for an error code: snstore's own codes and every errno
 * (negative or positive). Never NULL; the string is static. Any thread.
 */
const char *sn_strerror(int err);

/**
 * The symbolic name of an error code ("EINVAL", "SN_ECORRUPT"), for logs and JSON.
 * Never NULL; "E?" for an unknown code. Any thread.
 */
const char *sn_errname(int err);

/**
 * The specific reason for the last failure on the calling thread, naming the rule
 * that was broken ("offset 4097 is not a multiple of the 512-byte alignment that
 * direct I/O on /dev/loop0 needs"). "" when the last failure left no detail.
 * The buffer is thread-local and overwritten by the next failing call on this thread.
 */
const char *sn_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif
