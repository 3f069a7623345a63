/* SPDX-License-Identifier: MIT */
/*
 * conformance.h — the engine conformance cases (SQLite's iotester.c): every engine,
 * opened from a URI, must pass the same checks of dev.h's contract. Shared by
 * test_dev_conformance (files, memory) and test_blockdev (loop devices).
 */
#ifndef SN_TEST_CONFORMANCE_H
#define SN_TEST_CONFORMANCE_H

#include <snstore/dev.h>

/* What a case gets: a freshly opened device and queue, closed again after the case. */
struct conf {
	const char *uri;
	struct sn_dev *dev;
	struct sn_queue *q;  /* depth c->depth */
	struct sn_queue *q2; /* a case's second queue: destroyed by the runner */
	struct sn_dev *dev2; /* a case's second device: closed by the runner */
	struct sn_dev_info info;
	unsigned depth;
	uint32_t align; /* offset_align */
	int data;       /* 0 for null:, which moves no data: check lengths only */
};

struct conf_case {
	const char *name;
	int (*fn)(struct conf *c);
};

/* Every case, ending with { NULL, NULL }. */
extern const struct conf_case conf_cases[];

/*
 * Open uri, run fn on it, close everything. Returns T_PASS, T_FAIL or T_SKIP.
 */
int conf_run(const char *uri, int (*fn)(struct conf *c));

/*
 * Whether uri can be opened here. Returns T_PASS, T_SKIP (SN_ENOTAVAIL: the engine is
 * not built in or not usable on this machine, with the reason printed) or T_FAIL.
 */
int conf_probe(const char *uri);

/* Fill/check buf as the bytes at device offset off under pattern seed. check prints the
 * first difference and returns T_FAIL, else T_PASS. */
void conf_fill(void *buf, uint64_t len, uint64_t off, uint64_t seed);
int conf_check(const void *buf, uint64_t len, uint64_t off, uint64_t seed);

/* Submit one request and wait for its completion; returns its res (or a submit error). */
int64_t conf_io(struct sn_queue *q, uint8_t op, uint8_t flags, void *buf, uint32_t len,
                uint64_t off);

#endif
