/* SPDX-License-Identifier: MIT */
/*
 * test_uri.c — the device-URI parser (src/util/uri.c): ENGINE:PATH?key=value&..., its
 * typed getters and sn_parse_size(). Every refusal must come with a message that names
 * the fault, because a user typing a URI on the command line sees nothing else.
 */
#include <errno.h>
#include <stdlib.h>

#include <snstore/dev.h>

#include "test.h"
#include "util/uri.h"

static int good_uris(void)
{
	struct sn_uri u;

	ASSERT_OK(sn__uri_parse("uring:/data/f?direct=1&size=4k", &u));
	ASSERT_STR_HAS(u.engine, "uring");
	ASSERT_EQ(strcmp(u.engine, "uring"), 0);
	ASSERT_EQ(strcmp(u.path, "/data/f"), 0);
	ASSERT_EQ(u.nkv, 2);
	ASSERT_EQ(strcmp(u.kv[0].key, "direct"), 0);
	ASSERT_EQ(strcmp(u.kv[0].value, "1"), 0);
	ASSERT_EQ(strcmp(sn__uri_get(&u, "size"), "4k"), 0);
	ASSERT_TRUE(sn__uri_get(&u, "sqpoll") == NULL);
	sn__uri_free(&u);

	/* No path, no options. */
	ASSERT_OK(sn__uri_parse("mem:", &u));
	ASSERT_EQ(strcmp(u.engine, "mem"), 0);
	ASSERT_EQ(strcmp(u.path, ""), 0);
	ASSERT_EQ(u.nkv, 0);
	sn__uri_free(&u);

	ASSERT_OK(sn__uri_parse("null:?size=1g", &u));
	ASSERT_EQ(strcmp(u.path, ""), 0);
	ASSERT_EQ(u.nkv, 1);
	sn__uri_free(&u);

	ASSERT_OK(sn__uri_parse("psync:/dev/loop0?", &u));
	ASSERT_EQ(strcmp(u.path, "/dev/loop0"), 0);
	ASSERT_EQ(u.nkv, 0);
	sn__uri_free(&u);

	/* The path runs to the first '?': a wrapping engine sees the inner URI. */
	ASSERT_OK(sn__uri_parse("fault:uring:/f?x=1", &u));
	ASSERT_EQ(strcmp(u.engine, "fault"), 0);
	ASSERT_EQ(strcmp(u.path, "uring:/f"), 0);
	ASSERT_EQ(strcmp(sn__uri_get(&u, "x"), "1"), 0);
	sn__uri_free(&u);

	/* Digits and '_' are scheme characters; a value may hold '='. */
	ASSERT_OK(sn__uri_parse("my_eng2:rel/path?k=a=b", &u));
	ASSERT_EQ(strcmp(u.engine, "my_eng2"), 0);
	ASSERT_EQ(strcmp(u.path, "rel/path"), 0);
	ASSERT_EQ(strcmp(sn__uri_get(&u, "k"), "a=b"), 0);
	sn__uri_free(&u);

	/* Freeing twice, or a never-parsed zeroed struct, is harmless. */
	sn__uri_free(&u);
	return T_PASS;
}

static int refused(const char *s, const char *why)
{
	struct sn_uri u;

	memset(&u, 0xa5, sizeof(u));
	ASSERT_ERR(sn__uri_parse(s, &u), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), why);
	ASSERT_TRUE(u.buf == NULL); /* nothing left to free */
	sn__uri_free(&u);
	return T_PASS;
}

static int bad_uris(void)
{
	struct sn_uri u;

	ASSERT_ERR(sn__uri_parse(NULL, &u), -EINVAL);
	ASSERT_EQ(refused("", "empty device URI"), T_PASS);
	ASSERT_EQ(refused(":/data/f", "empty engine"), T_PASS);
	ASSERT_EQ(refused("/data/f", "has no engine"), T_PASS);
	ASSERT_EQ(refused("data", "ENGINE:PATH"), T_PASS);
	ASSERT_EQ(refused("URING:/f", "engine name may hold only"), T_PASS);
	ASSERT_EQ(refused("ur-ing:/f", "engine name may hold only"), T_PASS);
	ASSERT_EQ(refused("a b:/f", "engine name may hold only"), T_PASS);
	ASSERT_EQ(refused("null?size=1:x", "engine name may hold only"), T_PASS);
	return T_PASS;
}

static int duplicate_and_empty_keys(void)
{
	struct sn_uri u;

	ASSERT_EQ(refused("null:?size=1m&size=2m", "'size' twice"), T_PASS);
	ASSERT_EQ(refused("null:?direct&direct=1", "'direct' twice"), T_PASS);
	ASSERT_EQ(refused("null:?=1", "no key"), T_PASS);
	ASSERT_EQ(refused("psync:/f?direct=1&=x", "no key"), T_PASS);

	/* A key without '=' has the value "", which a bool reads as 1. */
	ASSERT_OK(sn__uri_parse("psync:/f?direct&size=1m", &u));
	ASSERT_EQ(u.nkv, 2);
	ASSERT_EQ(strcmp(sn__uri_get(&u, "direct"), ""), 0);
	{
		int direct = 0;
		uint64_t n = 7;

		ASSERT_OK(sn__uri_bool(&u, "direct", &direct));
		ASSERT_EQ(direct, 1);
		sn__uri_free(&u);
		/* ... but not a size or a number. */
		ASSERT_OK(sn__uri_parse("mem:?size&n", &u));
		ASSERT_ERR(sn__uri_size(&u, "size", &n), -EINVAL);
		ASSERT_STR_HAS(sn_errmsg(), "size");
		ASSERT_ERR(sn__uri_uint(&u, "n", &n), -EINVAL);
		ASSERT_EQ(n, 7);
	}
	sn__uri_free(&u);
	return T_PASS;
}

static int too_many_keys(void)
{
	char s[1024];
	size_t used = (size_t)snprintf(s, sizeof(s), "null:?");
	struct sn_uri u;

	for (int i = 0; i < SN_URI_MAX_KEYS; i++)
		used += (size_t)snprintf(s + used, sizeof(s) - used, "%sk%d=%d", i ? "&" : "", i,
		                         i);
	ASSERT_OK(sn__uri_parse(s, &u));
	ASSERT_EQ(u.nkv, SN_URI_MAX_KEYS);
	ASSERT_EQ(strcmp(sn__uri_get(&u, "k31"), "31"), 0);
	sn__uri_free(&u);

	snprintf(s + used, sizeof(s) - used, "&one=more");
	ASSERT_EQ(refused(s, "more than 32 options"), T_PASS);
	return T_PASS;
}

static int size_ok(const char *s, uint64_t want)
{
	uint64_t n = 0;

	ASSERT_OK(sn_parse_size(s, &n));
	if (n != want)
		T_FAILED("sn_parse_size(\"%s\") = %llu, expected %llu", s, (unsigned long long)n,
		         (unsigned long long)want);
	return T_PASS;
}

static int size_bad(const char *s, const char *why)
{
	uint64_t n = 12345;

	ASSERT_ERR(sn_parse_size(s, &n), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), why);
	ASSERT_EQ(n, 12345); /* untouched */
	return T_PASS;
}

static int sizes(void)
{
	static const struct {
		const char *s;
		uint64_t n;
	} good[] = {
		{ "0", 0 },
		{ "1", 1 },
		{ "4096", 4096 },
		{ "512b", 512 },
		{ "4k", 4096 },
		{ "4K", 4096 },
		{ "4kb", 4096 },
		{ "4KiB", 4096 },
		{ "64m", 64ull << 20 },
		{ "1MiB", 1ull << 20 },
		{ "2g", 2ull << 30 },
		{ "2G", 2ull << 30 },
		{ "3t", 3ull << 40 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215t", 16777215ull << 40 },
		{ "17179869183g", 17179869183ull << 30 },
	};
	static const char *const bad[] = { "abc",  "-1",  "+1", " 4k", "4x",   "4kk",
		                           "1.5g", "4 k", "k",  "4ib", "4kbb", "0x10" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ASSERT_EQ(size_ok(good[i].s, good[i].n), T_PASS);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_EQ(size_bad(bad[i], "is not a size"), T_PASS);
	ASSERT_EQ(size_bad("", "is not a size"), T_PASS);
	ASSERT_ERR(sn_parse_size(NULL, &(uint64_t){ 0 }), -EINVAL);

	/* Overflow: of the digits, and of the suffix shift. */
	ASSERT_EQ(size_bad("18446744073709551616", "too large"), T_PASS);
	ASSERT_EQ(size_bad("99999999999999999999999", "too large"), T_PASS);
	ASSERT_EQ(size_bad("16777216t", "too large"), T_PASS);
	ASSERT_EQ(size_bad("17179869184g", "too large"), T_PASS);
	ASSERT_EQ(size_bad("18446744073709551615k", "too large"), T_PASS);
	return T_PASS;
}

static int typed_getters(void)
{
	static const char *const yes[] = { "", "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	char s[128];
	struct sn_uri u;
	uint64_t n;
	int b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]) + sizeof(no) / sizeof(no[0]); i++) {
		int is_yes = i < sizeof(yes) / sizeof(yes[0]);
		const char *v = is_yes ? yes[i] : no[i - sizeof(yes) / sizeof(yes[0])];

		snprintf(s, sizeof(s), "psync:/f?direct=%s", v);
		ASSERT_OK(sn__uri_parse(s, &u));
		b = -1;
		ASSERT_OK(sn__uri_bool(&u, "direct", &b));
		sn__uri_free(&u);
		if (b != is_yes)
			T_FAILED("direct=%s read as %d", v, b);
	}
	ASSERT_OK(sn__uri_parse("psync:/f?direct=maybe&sqpoll=2&size=1m&n=42&bad=4k", &u));
	b = -1;
	ASSERT_ERR(sn__uri_bool(&u, "direct", &b), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "direct=maybe");
	ASSERT_ERR(sn__uri_bool(&u, "sqpoll", &b), -EINVAL);
	ASSERT_EQ(b, -1);
	/* Absent keys leave the default alone. */
	ASSERT_OK(sn__uri_bool(&u, "absent", &b));
	ASSERT_EQ(b, -1);
	n = 99;
	ASSERT_OK(sn__uri_size(&u, "absent", &n));
	ASSERT_EQ(n, 99);
	ASSERT_OK(sn__uri_uint(&u, "absent", &n));
	ASSERT_EQ(n, 99);

	ASSERT_OK(sn__uri_size(&u, "size", &n));
	ASSERT_EQ(n, 1 << 20);
	ASSERT_OK(sn__uri_uint(&u, "n", &n));
	ASSERT_EQ(n, 42);
	n = 99;
	ASSERT_ERR(sn__uri_uint(&u, "bad", &n), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "bad=4k");
	ASSERT_EQ(n, 99);
	ASSERT_ERR(sn__uri_size(&u, "direct", &n), -EINVAL);
	ASSERT_STR_HAS(sn_errmsg(), "direct=maybe");
	sn__uri_free(&u);

	ASSERT_OK(sn__uri_parse("x:?a=-1&b=99999999999999999999&c=18446744073709551615", &u));
	ASSERT_ERR(sn__uri_uint(&u, "a", &n), -EINVAL);
	ASSERT_ERR(sn__uri_uint(&u, "b", &n), -EINVAL);
	ASSERT_OK(sn__uri_uint(&u, "c", &n));
	ASSERT_TRUE(n == UINT64_MAX);
	sn__uri_free(&u);
	return T_PASS;
}

int main(void)
{
	t_begin("test_uri: device URI parsing, typed options and sizes");
	T_RUN("well-formed URIs split into engine, path and options", good_uris());
	T_RUN("malformed URIs refused with a reason", bad_uris());
	T_RUN("duplicate keys and empty keys refused; key without value",
	      duplicate_and_empty_keys());
	T_RUN("at most SN_URI_MAX_KEYS options", too_many_keys());
	T_RUN("sizes: suffixes, refusals and overflow", sizes());
	T_RUN("typed getters: bools, sizes, integers", typed_getters());
	return t_end();
}
