/* SPDX-License-Identifier: MIT */
/*
 * test_json.c — bench_json_str (tools/bench_report.c), through which every JSON writer of
 * the CLI prints strings: paths and messages are bytes, and the output must be valid JSON
 * whatever they hold. Valid UTF-8 passes through, quotes and backslashes are escaped,
 * control characters become \u00XX, and each byte of an ill-formed sequence (RFC 3629:
 * stray continuation bytes, overlong forms, surrogates, code points over U+10FFFF,
 * truncated sequences) becomes \ufffd. Exact outputs for chosen cases, then sweeps over
 * every string of up to 2 bytes, of 3 bytes that start with a lead byte (0xc0..0xff), and
 * of 4 bytes at the edges of UTF-8's ranges, each checked by an independent decoder.
 */
#include <stdlib.h>

#include "bench.h"
#include "test.h"

static char out[4096];

/* bench_json_str(s) as a C string in out. */
static const char *json(FILE *f, const char *s)
{
	long n;

	rewind(f);
	bench_json_str(f, s);
	fflush(f);
	n = ftell(f);
	out[n < 0 ? 0 : n] = '\0';
	return out;
}

static const struct {
	const char *in, *want, *what;
} cases[] = {
	{ "plain /data/f.db", "\"plain /data/f.db\"", "ASCII" },
	{ "", "\"\"", "empty" },
	{ "a\"b\\c", "\"a\\\"b\\\\c\"", "quote and backslash" },
	{ "\n\t\x01\x1f\x7f", "\"\\u000a\\u0009\\u0001\\u001f\\u007f\"", "control characters" },
	{ "\xc2\x80 \xc3\xa9 \xe2\x82\xac \xef\xbf\xbd \xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf",
	  "\"\xc2\x80 \xc3\xa9 \xe2\x82\xac \xef\xbf\xbd \xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf\"",
	  "valid 2, 3 and 4-byte sequences, U+0080 to U+10FFFF" },
	{ "\xed\x9f\xbf\xee\x80\x80", "\"\xed\x9f\xbf\xee\x80\x80\"", "U+D7FF and U+E000" },
	{ "a\xff"
	  "b",
	  "\"a\\ufffdb\"", "0xff" },
	{ "\xfe\xff\xf5\xf8", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "bytes never in UTF-8" },
	{ "\x80\xbf", "\"\\ufffd\\ufffd\"", "stray continuation bytes" },
	{ "\xc0\xaf", "\"\\ufffd\\ufffd\"", "overlong '/' in 2 bytes" },
	{ "\xc1\xbf", "\"\\ufffd\\ufffd\"", "overlong U+007F" },
	{ "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"", "overlong '/' in 3 bytes" },
	{ "\xe0\x9f\xbf", "\"\\ufffd\\ufffd\\ufffd\"", "overlong U+07FF" },
	{ "\xf0\x80\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "overlong '/' in 4 bytes" },
	{ "\xf0\x8f\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "overlong U+FFFF" },
	{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", "surrogate U+D800" },
	{ "\xed\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\"", "surrogate U+DFFF" },
	{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "U+110000" },
	{ "\xe2\x82", "\"\\ufffd\\ufffd\"", "truncated at the end" },
	{ "\xe2\x82"
	  "A",
	  "\"\\ufffd\\ufffdA\"", "truncated before ASCII" },
	{ "\xf0\x9d\x84\"", "\"\\ufffd\\ufffd\\ufffd\\\"\"", "truncated before a quote" },
	{ "\xc3\n", "\"\\ufffd\\u000a\"", "truncated before a control character" },
	{ "\xc3\xc3\xa9", "\"\\ufffd\xc3\xa9\"", "a lead byte, then a valid sequence" },
};

static int exact(void)
{
	FILE *f = fmemopen(out, sizeof(out), "w");

	ASSERT_TRUE(f != NULL);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json(f, cases[i].in);
		if (strcmp(out, cases[i].want)) {
			fclose(f);
			T_FAILED("%s: got %s, want %s", cases[i].what, out, cases[i].want);
		}
	}
	json(f, NULL);
	ASSERT_EQ(strcmp(out, "\"\""), 0);
	fclose(f);
	return T_PASS;
}

/*
 * The code point of the UTF-8 sequence at s and its length in *len, or -1 when it is not
 * well-formed. Decodes first and judges the value after, unlike bench_json_str's table of
 * second-byte ranges, so the two do not share a mistake.
 */
static long decode(const unsigned char *s, unsigned *len)
{
	unsigned n = s[0] < 0x80       ? 1
	             : s[0] >> 5 == 6  ? 2
	             : s[0] >> 4 == 14 ? 3
	             : s[0] >> 3 == 30 ? 4
	                               : 0;
	static const long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	long cp;

	if (!n)
		return -1;
	cp = n == 1 ? s[0] : s[0] & (0x7f >> n);
	for (unsigned i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	*len = n;
	return cp < min[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ? -1 : cp;
}

/* in is text bench_json_str copies as it is: well-formed UTF-8 without control characters
 * (DEL included), quotes or backslashes. */
static int plain(const char *in)
{
	const unsigned char *s = (const unsigned char *)in;
	unsigned n;
	long cp;

	for (; *s; s += n)
		if ((cp = decode(s, &n)) < 0x20 || cp == 0x7f || cp == '"' || cp == '\\')
			return 0;
	return 1;
}

/* o is one valid JSON string (RFC 8259): quoted, escapes well-formed, the rest well-formed
 * UTF-8 without U+0000..U+001F. */
static int valid(const char *o)
{
	const unsigned char *s = (const unsigned char *)o;
	size_t len = strlen(o);
	unsigned n;

	if (len < 2 || s[0] != '"' || s[len - 1] != '"')
		return 0;
	for (size_t i = 1; i < len - 1; i += n) {
		n = 1;
		if (s[i] == '\\') {
			if (s[i + 1] == '"' || s[i + 1] == '\\')
				n = 2;
			else if (s[i + 1] == 'u' && strspn(o + i + 2, "0123456789abcdef") >= 4)
				n = 6;
			else
				return 0;
		} else if (s[i] == '"' || s[i] < 0x20 || decode(s + i, &n) < 0) {
			return 0;
		}
		if (i + n > len - 1)
			return 0;
	}
	return 1;
}

/* Every input comes out valid, and one that needs no escape comes out unchanged. */
static int check(const char *in, const char *o)
{
	char want[64];

	if (!valid(o))
		T_FAILED("invalid JSON %s for input %02x %02x %02x %02x", o, (unsigned char)in[0],
		         (unsigned char)in[1], (unsigned char)in[2], (unsigned char)in[3]);
	snprintf(want, sizeof(want), "\"%s\"", in);
	if (plain(in) != !strcmp(o, want))
		T_FAILED("input %02x %02x %02x %02x: %s, yet it %s escapes", (unsigned char)in[0],
		         (unsigned char)in[1], (unsigned char)in[2], (unsigned char)in[3], o,
		         plain(in) ? "needs no" : "needs");
	return T_PASS;
}

static int sweep(void)
{
	static const unsigned char edge[] = { 0x01, 0x1f, 0x20, 0x22, 0x41, 0x5c, 0x7e, 0x7f,
		                              0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
		                              0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0,
		                              0xf1, 0xf3, 0xf4, 0xf5, 0xf8, 0xfe, 0xff };
	const unsigned ne = sizeof(edge), ne4 = ne * ne * ne * ne;
	FILE *f = fmemopen(out, sizeof(out), "w");
	unsigned long n = 0;
	char in[8];

	ASSERT_TRUE(f != NULL);
	/* Every string of 1 and 2 non-NUL bytes, and of 3 that starts with a lead byte. */
	for (unsigned v = 1; v < 1u << 24; v = v == 0xffff ? 0xc00000 : v + 1) {
		unsigned b0 = v >> 16, b1 = v >> 8 & 0xff, b2 = v & 0xff, k = 0;

		if (b0)
			in[k++] = (char)b0;
		if (b0 || b1)
			in[k++] = (char)b1;
		in[k++] = (char)b2;
		in[k] = '\0';
		if (strlen(in) != k)
			continue;
		if (check(in, json(f, in)) != T_PASS) {
			fclose(f);
			return T_FAIL;
		}
		n++;
	}
	/* Every 4-byte string of the bytes at the edges of UTF-8's ranges. */
	for (unsigned v = 0; v < ne4; v++) {
		in[0] = (char)edge[v % ne];
		in[1] = (char)edge[v / ne % ne];
		in[2] = (char)edge[v / ne / ne % ne];
		in[3] = (char)edge[v / ne / ne / ne];
		in[4] = '\0';
		if (check(in, json(f, in)) != T_PASS) {
			fclose(f);
			return T_FAIL;
		}
		n++;
	}
	fclose(f);
	printf("    %lu strings, each valid JSON, unchanged where no escape is needed\n", n);
	return T_PASS;
}

int main(void)
{
	t_begin("test_json: bench_json_str writes valid JSON whatever bytes a string holds");
	T_RUN("exact output: escapes, valid UTF-8 kept, each bad byte as \\ufffd", exact());
	T_RUN("every 1-2 byte string, 3-byte string from a lead byte, 4-byte string of edge bytes",
	      sweep());
	return t_end();
}
