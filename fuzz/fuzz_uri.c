/* SPDX-License-Identifier: MIT */
/*
 * fuzz_uri.c — libFuzzer target for device URIs (src/util/uri.c): sn__uri_parse(), its
 * typed getters and sn_parse_size(), and sn_dev_open() on the engines that touch no file
 * (null:, and mem: up to 64 MiB). It checks what the parser promises, not only that it
 * survives: a refusal is -EINVAL with a message and nothing to free; an acceptance splits
 * the input exactly at the first ':' and the following '?', and its options are the
 * non-empty '&'-separated tokens of the query, in order, each key non-empty and unique.
 * Sizes are checked against an independent reading of the grammar [0-9]+([kmgt]i?)?b?.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snstore/dev.h>

#include "util/uri.h"
#include "util/util.h"

/* The largest mem: device the target opens: bigger ones only cost address space. */
#define MEM_MAX (64ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "fuzz_uri: %s:%d: invariant '%s' broken: ", __FILE__, \
			        __LINE__, #cond);                                             \
			fprintf(stderr, __VA_ARGS__);                                         \
			fputc('\n', stderr);                                                  \
			abort();                                                              \
		}                                                                             \
	} while (0)

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_scheme_char(char c)
{
	return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_';
}

/* A reading of sn_parse_size()'s grammar written apart from it: 0 and *out, or -EINVAL. */
static int ref_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgt";
	unsigned __int128 n = 0;
	unsigned shift = 0;
	const char *u;

	if (!is_digit(*s))
		return -EINVAL;
	for (; is_digit(*s); s++) {
		n = n * 10 + (unsigned)(*s - '0');
		if (n > UINT64_MAX)
			n = (unsigned __int128)UINT64_MAX + 1; /* saturate: too large either way */
	}
	if (*s && (u = strchr(units, *s | 0x20)) != NULL) {
		shift = 10 * (unsigned)(u - units + 1);
		s++;
		if (*s == 'i' || *s == 'I')
			s++;
	}
	if (*s == 'b' || *s == 'B')
		s++;
	if (*s)
		return -EINVAL;
	n <<= shift;
	if (n > UINT64_MAX)
		return -EINVAL;
	*out = (uint64_t)n;
	return 0;
}

static void check_size(const char *s)
{
	uint64_t got = 0x5a5a5a5a5a5a5a5aull, want = 0;
	int ref = ref_parse_size(s, &want);
	int err;

	sn__err_clear();
	err = sn_parse_size(s, &got);
	CHECK(err == ref, "sn_parse_size(\"%s\") = %d, expected %d", s, err, ref);
	if (err) {
		CHECK(got == 0x5a5a5a5a5a5a5a5aull, "failed parse of \"%s\" wrote *out", s);
		CHECK(*sn_errmsg(), "sn_parse_size(\"%s\") failed without a message", s);
	} else {
		CHECK(got == want, "sn_parse_size(\"%s\") = %llu, expected %llu", s,
		      (unsigned long long)got, (unsigned long long)want);
	}
}

/* uint: all digits and within 64 bits, read as decimal. */
static void check_uint(const struct sn_uri *uri, const char *key, const char *v)
{
	uint64_t got = 7;
	char back[32];
	const char *digits = v;
	size_t len;
	int all_digits = *v != '\0', err;

	for (const char *c = v; *c; c++)
		all_digits &= is_digit(*c);
	while (digits[0] == '0' && digits[1])
		digits++;
	len = strlen(digits);
	sn__err_clear();
	err = sn__uri_uint(uri, key, &got);
	if (!err) {
		CHECK(all_digits, "%s=%s read as a number", key, v);
		snprintf(back, sizeof(back), "%llu", (unsigned long long)got);
		CHECK(!strcmp(back, digits), "%s=%s read as %s", key, v, back);
		return;
	}
	CHECK(err == -EINVAL && *sn_errmsg(), "%s=%s: uint error %d '%s'", key, v, err,
	      sn_errmsg());
	CHECK(got == 7, "%s=%s: failed uint wrote *out", key, v);
	CHECK(!all_digits || len > 20 || (len == 20 && strcmp(digits, "18446744073709551615") > 0),
	      "%s=%s: a number in range was refused", key, v);
}

static void check_bool(const struct sn_uri *uri, const char *key, const char *v)
{
	static const char *const yes[] = { "", "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	int got = 7, want = -1, err;

	for (size_t i = 0; i < SN_ARRAY_SIZE(yes); i++)
		if (!strcmp(v, yes[i]))
			want = 1;
	for (size_t i = 0; i < SN_ARRAY_SIZE(no); i++)
		if (!strcmp(v, no[i]))
			want = 0;
	sn__err_clear();
	err = sn__uri_bool(uri, key, &got);
	if (want < 0) {
		CHECK(err == -EINVAL && *sn_errmsg() && got == 7, "%s=%s: bool gave %d, %d", key, v,
		      err, got);
	} else {
		CHECK(!err && got == want, "%s=%s: bool gave %d, %d, expected %d", key, v, err, got,
		      want);
	}
}

/* msg is "option KEY=...", cut where the 512-byte message buffer ends. */
static int names_key(const char *msg, const char *key)
{
	size_t mlen = strlen(msg), klen = strlen(key);

	if (strncmp(msg, "option ", 7))
		return 0;
	msg += 7;
	mlen -= 7;
	if (mlen <= klen)
		return mlen > 0 && !strncmp(msg, key, mlen) && mlen + 7 == 511;
	return !strncmp(msg, key, klen) && msg[klen] == '=';
}

static void check_getters(const struct sn_uri *uri, const char *key, const char *v)
{
	uint64_t sz = 7, ref = 0;
	int err, want;

	CHECK(sn__uri_get(uri, key) == v, "sn__uri_get(%s) is not the parsed value", key);
	check_bool(uri, key, v);
	check_uint(uri, key, v);
	want = ref_parse_size(v, &ref);
	sn__err_clear();
	err = sn__uri_size(uri, key, &sz);
	CHECK(err == want, "%s=%s: size gave %d, expected %d", key, v, err, want);
	if (err)
		CHECK(sz == 7 && names_key(sn_errmsg(), key),
		      "%s=%s: failed size wrote %llu or left no message naming the key", key, v,
		      (unsigned long long)sz);
	else
		CHECK(sz == ref, "%s=%s: size %llu, expected %llu", key, v, (unsigned long long)sz,
		      (unsigned long long)ref);
	check_size(v);
}

/* A key that is absent: every getter leaves *out alone and succeeds. */
static void check_absent(const struct sn_uri *uri, const char *key)
{
	uint64_t n = 9;
	int b = 9;

	if (sn__uri_get(uri, key))
		return;
	CHECK(!sn__uri_bool(uri, key, &b) && b == 9, "absent %s: bool changed", key);
	CHECK(!sn__uri_uint(uri, key, &n) && n == 9, "absent %s: uint changed", key);
	CHECK(!sn__uri_size(uri, key, &n) && n == 9, "absent %s: size changed", key);
}

static int points_into(const struct sn_uri *uri, size_t len, const char *p)
{
	return p >= uri->buf && p + strlen(p) <= uri->buf + len;
}

/* An accepted URI: compare every field with a split of the original string. */
static void check_accepted(const char *s, const struct sn_uri *uri)
{
	const char *colon = strchr(s, ':'), *q, *tok;
	size_t len = strlen(s), n, i = 0;

	CHECK(colon && colon > s, "accepted '%s' without an engine", s);
	CHECK(uri->buf && uri->engine && uri->path, "accepted '%s' with NULL fields", s);
	CHECK(points_into(uri, len, uri->engine) && points_into(uri, len, uri->path),
	      "fields of '%s' outside the copy", s);
	n = (size_t)(colon - s);
	CHECK(strlen(uri->engine) == n && !memcmp(uri->engine, s, n), "engine of '%s' is '%s'", s,
	      uri->engine);
	for (const char *c = uri->engine; *c; c++)
		CHECK(is_scheme_char(*c), "engine '%s' has a bad character", uri->engine);
	q = strchr(colon + 1, '?');
	n = q ? (size_t)(q - colon - 1) : strlen(colon + 1);
	CHECK(strlen(uri->path) == n && !memcmp(uri->path, colon + 1, n), "path of '%s' is '%s'", s,
	      uri->path);
	CHECK(uri->nkv <= SN_URI_MAX_KEYS, "%u options", uri->nkv);
	CHECK(q || uri->nkv == 0, "options without '?' in '%s'", s);

	/* The options are the non-empty '&' tokens of the query, in order. */
	for (tok = q ? q + 1 : ""; *tok;) {
		size_t tlen = strcspn(tok, "&"), klen;
		const struct sn_uri_kv *kv;

		if (!tlen) {
			tok++;
			continue;
		}
		CHECK(i < uri->nkv, "'%s': token %zu missing from %u options", s, i, uri->nkv);
		kv = &uri->kv[i++];
		CHECK(kv->key && kv->value && points_into(uri, len, kv->key) &&
		              (!*kv->value || points_into(uri, len, kv->value)),
		      "'%s': option %zu points outside the copy", s, i - 1);
		klen = strlen(kv->key);
		CHECK(klen > 0, "'%s': option %zu has an empty key", s, i - 1);
		CHECK(!strpbrk(kv->key, "&="), "'%s': key '%s' holds '&' or '='", s, kv->key);
		CHECK(!strchr(kv->value, '&'), "'%s': value '%s' holds '&'", s, kv->value);
		CHECK(!memcmp(tok, kv->key, klen), "'%s': key '%s' is not the token's", s, kv->key);
		if (klen == tlen)
			CHECK(!*kv->value, "'%s': key '%s' without '=' has a value", s, kv->key);
		else
			CHECK(tok[klen] == '=' && strlen(kv->value) == tlen - klen - 1 &&
			              !memcmp(tok + klen + 1, kv->value, tlen - klen - 1),
			      "'%s': value of '%s' is '%s'", s, kv->key, kv->value);
		for (unsigned j = 0; j + 1 < i; j++)
			CHECK(strcmp(uri->kv[j].key, kv->key), "'%s': key '%s' twice", s, kv->key);
		tok += tlen;
	}
	CHECK(i == uri->nkv, "'%s': %zu tokens but %u options", s, i, uri->nkv);

	for (unsigned j = 0; j < uri->nkv; j++)
		check_getters(uri, uri->kv[j].key, uri->kv[j].value);
	check_absent(uri, "size");
	check_absent(uri, "direct");
	check_absent(uri, "qd");
}

/* Two parses of one string give the same answer: nothing depends on leftover state. */
static void check_same(const char *s, int err, const struct sn_uri *a, const char *msg)
{
	struct sn_uri b;
	int err2;

	sn__err_clear();
	err2 = sn__uri_parse(s, &b);
	CHECK(err2 == err, "'%s' parsed to %d, then %d", s, err, err2);
	if (err) {
		CHECK(!strcmp(msg, sn_errmsg()), "'%s' refused with '%s', then '%s'", s, msg,
		      sn_errmsg());
		return;
	}
	CHECK(!strcmp(a->engine, b.engine) && !strcmp(a->path, b.path) && a->nkv == b.nkv,
	      "'%s' parsed two ways", s);
	for (unsigned i = 0; i < a->nkv; i++)
		CHECK(!strcmp(a->kv[i].key, b.kv[i].key) && !strcmp(a->kv[i].value, b.kv[i].value),
		      "'%s': option %u parsed two ways", s, i);
	sn__uri_free(&b);
}

/* null: and mem: (with a size of at most MEM_MAX) only: nothing else is safe to open. */
static void check_open(const char *s, int parse_err, const struct sn_uri *uri)
{
	struct sn_dev_info info;
	struct sn_dev *dev = (struct sn_dev *)(uintptr_t)1; /* open must reset it on failure */
	uint64_t size = 1ull << 30;
	int mem = !strncmp(s, "mem:", 4), err;

	if (!mem && strncmp(s, "null:", 5))
		return;
	if (!parse_err) {
		if (mem && (!sn__uri_get(uri, "size") || sn__uri_size(uri, "size", &size) ||
		            size > MEM_MAX))
			return;
		sn__uri_size(uri, "size", &size);
	}
	sn__err_clear();
	err = sn_dev_open(s, &dev);
	if (parse_err)
		CHECK(err == parse_err, "'%s': open gave %d, parse %d", s, err, parse_err);
	if (err) {
		CHECK(err < 0 && !dev && *sn_errmsg(), "'%s': failed open gave %d, %p, '%s'", s,
		      err, (void *)dev, sn_errmsg());
		return;
	}
	CHECK(dev, "'%s': opened without a device", s);
	sn_dev_info(dev, &info);
	CHECK(!strcmp(info.engine, mem ? "mem" : "null"), "'%s' opened as %s", s, info.engine);
	CHECK(!strcmp(info.path, uri->path), "'%s' opened path '%s'", s, info.path);
	CHECK(info.capacity_bytes == size && size > 0, "'%s': capacity %llu, expected %llu", s,
	      (unsigned long long)info.capacity_bytes, (unsigned long long)size);
	for (unsigned i = 0; i < uri->nkv; i++)
		CHECK(!strcmp(uri->kv[i].key, "size"), "'%s': unknown option '%s' accepted", s,
		      uri->kv[i].key);
	sn_dev_close(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), msg[512];
	struct sn_uri uri;
	int err;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0'; /* a NUL inside the input ends the string, as it would for a caller */

	check_size(s);

	memset(&uri, 0xa5, sizeof(uri));
	sn__err_clear();
	err = sn__uri_parse(s, &uri);
	snprintf(msg, sizeof(msg), "%s", sn_errmsg());
	if (err) {
		CHECK(err == -EINVAL || err == -ENOMEM, "'%s': parse gave %d", s, err);
		CHECK(err == -ENOMEM || *msg, "'%s' refused without a message", s);
		CHECK(!uri.buf && !uri.nkv, "'%s' refused but left something to free", s);
	} else {
		check_accepted(s, &uri);
	}
	check_same(s, err, &uri, msg);
	check_open(s, err, &uri);
	sn__uri_free(&uri);
	CHECK(!uri.buf && !uri.nkv, "sn__uri_free left fields behind");
	sn__uri_free(&uri); /* twice is harmless */
	free(s);
	return 0;
}
