/* SPDX-License-Identifier: MIT */
/*
 * test.h — the harness every test program uses: libuv's ASSERT_EQ (prints both values and
 * file:line) and liburing's exit codes (0 pass, 1 fail, 77 skip). A failed check prints
 * sn_errmsg() too and returns T_FAIL from the enclosing function, so a case is a function
 * returning T_PASS, T_FAIL or T_SKIP, and a program is a list of T_RUN() lines.
 */
#ifndef SN_TEST_H
#define SN_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <snstore/err.h>

enum { T_PASS = 0, T_FAIL = 1, T_SKIP = 77 };

#define T_FAILED(...)                                               \
	do {                                                        \
		printf("    %s:%d: ", __FILE__, __LINE__);          \
		printf(__VA_ARGS__);                                \
		printf("\n    sn_errmsg(): \"%s\"\n", sn_errmsg()); \
		return T_FAIL;                                      \
	} while (0)

#define ASSERT_TRUE(c)                               \
	do {                                         \
		if (!(c))                            \
			T_FAILED("%s is false", #c); \
	} while (0)

#define T_CMP(a, op, b)                                                          \
	do {                                                                     \
		long long a_ = (long long)(a), b_ = (long long)(b);              \
		if (!(a_ op b_))                                                 \
			T_FAILED("%s " #op " %s: %lld vs %lld", #a, #b, a_, b_); \
	} while (0)
#define ASSERT_EQ(a, b) T_CMP(a, ==, b)
#define ASSERT_NE(a, b) T_CMP(a, !=, b)
#define ASSERT_LE(a, b) T_CMP(a, <=, b)
#define ASSERT_LT(a, b) T_CMP(a, <, b)
#define ASSERT_GE(a, b) T_CMP(a, >=, b)

/* e must return 0 (or a count: ASSERT_EQ it instead). */
#define ASSERT_OK(e) ASSERT_ERR(e, 0)

/* e must fail with exactly err and, when it fails, leave a reason in sn_errmsg(). */
#define ASSERT_ERR(e, err)                                                         \
	do {                                                                       \
		long long r_ = (long long)(e), w_ = (err);                         \
		if (r_ != w_)                                                      \
			T_FAILED("%s = %lld (%s), expected %s (%s)", #e, r_,       \
			         r_ > 0 ? "a count" : sn_errname((int)r_), #err,   \
			         sn_errname((int)w_));                             \
		if (w_ && !*sn_errmsg())                                           \
			T_FAILED("%s failed with %s but sn_errmsg() is empty", #e, \
			         sn_errname((int)w_));                             \
	} while (0)

#define ASSERT_STR_HAS(s, sub)                                                                  \
	do {                                                                                    \
		const char *s_ = (s);                                                           \
		if (!s_ || !strstr(s_, (sub)))                                                  \
			T_FAILED("%s = \"%s\" does not mention \"%s\"", #s, s_ ? s_ : "(null)", \
			         (sub));                                                        \
	} while (0)

#define SKIP(...)                        \
	do {                             \
		printf("    skipped: "); \
		printf(__VA_ARGS__);     \
		printf("\n");            \
		return T_SKIP;           \
	} while (0)

static int t_passed, t_failed, t_skipped;

static inline void t_begin(const char *what)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* keep order with ctest's capture */
	printf("%s\n", what);
}

static inline void t_result(const char *name, int r)
{
	printf("[ %s ] %s\n", r == T_PASS ? " OK " : r == T_SKIP ? "SKIP" : "FAIL", name);
	*(r == T_PASS ? &t_passed : r == T_SKIP ? &t_skipped : &t_failed) += 1;
}

/* Run one case: say what it checks before, so a hang shows where. */
#define T_RUN(name, call)                        \
	do {                                     \
		printf("[ RUN  ] %s\n", (name)); \
		t_result((name), (call));        \
	} while (0)

/* Print the summary; the exit status: 1 on any failure, 77 when every case skipped. */
static inline int t_end(void)
{
	printf("%d passed, %d failed (%d skipped)\n", t_passed, t_failed, t_skipped);
	return t_failed ? 1 : t_passed ? 0 : T_SKIP;
}

#endif
