/* SPDX-License-Identifier: MIT */
/*
 * uri.c — parse ENGINE:PATH?key=value&... device URIs and their typed option values.
 * The path is everything between the first ':' and the first '?', so a wrapping engine
 * (fault:uring:/f) sees "uring:/f" as its path. No percent-decoding: paths with '?' or
 * '&' cannot be expressed, and are refused rather than misread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <snstore/dev.h>

#include "uri.h"
#include "util.h"

static int is_scheme_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

int sn__uri_parse(const char *s, struct sn_uri *uri)
{
	char *p, *colon, *q, *tok, *save = NULL;

	memset(uri, 0, sizeof(*uri));
	if (!s || !*s)
		return sn__err(-EINVAL, "empty device URI: expected ENGINE:PATH?key=value "
		                        "(for example uring:/data/file?direct=1)");
	colon = strchr(s, ':');
	if (!colon)
		return sn__err(-EINVAL,
		               "device URI '%s' has no engine: write ENGINE:PATH, for example "
		               "uring:%s or auto:%s",
		               s, s, s);
	if (colon == s)
		return sn__err(-EINVAL, "device URI '%s' has an empty engine name before ':'", s);
	for (const char *c = s; c < colon; c++)
		if (!is_scheme_char(*c))
			return sn__err(
			        -EINVAL,
			        "device URI '%s': engine name may hold only a-z, 0-9 and '_'", s);
	uri->buf = strdup(s);
	if (!uri->buf)
		return -ENOMEM;
	p = uri->buf;
	colon = p + (colon - s);
	*colon = '\0';
	uri->engine = p;
	uri->path = colon + 1;
	q = strchr(colon + 1, '?');
	if (!q)
		return 0;
	*q = '\0';
	for (tok = strtok_r(q + 1, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq = '\0';
		if (!*tok) {
			sn__uri_free(uri);
			return sn__err(-EINVAL, "device URI '%s' has an option with no key", s);
		}
		if (sn__uri_get(uri, tok)) {
			int err =
			        sn__err(-EINVAL, "device URI '%s' gives option '%s' twice", s, tok);
			sn__uri_free(uri);
			return err;
		}
		if (uri->nkv == SN_URI_MAX_KEYS) {
			sn__uri_free(uri);
			return sn__err(-EINVAL, "device URI '%s' has more than %d options", s,
			               SN_URI_MAX_KEYS);
		}
		uri->kv[uri->nkv].key = tok;
		uri->kv[uri->nkv].value = eq ? eq + 1 : "";
		uri->nkv++;
	}
	return 0;
}

void sn__uri_free(struct sn_uri *uri)
{
	free(uri->buf);
	memset(uri, 0, sizeof(*uri));
}

const char *sn__uri_get(const struct sn_uri *uri, const char *key)
{
	for (unsigned i = 0; i < uri->nkv; i++)
		if (strcmp(uri->kv[i].key, key) == 0)
			return uri->kv[i].value;
	return NULL;
}

int sn__uri_bool(const struct sn_uri *uri, const char *key, int *out)
{
	const char *v = sn__uri_get(uri, key);

	if (!v)
		return 0;
	if (!*v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) {
		*out = 0;
		return 0;
	}
	return sn__err(-EINVAL, "option %s=%s: expected 0 or 1", key, v);
}

int sn__uri_uint(const struct sn_uri *uri, const char *key, uint64_t *out)
{
	const char *v = sn__uri_get(uri, key);
	char *end;
	unsigned long long n;

	if (!v)
		return 0;
	if (*v < '0' || *v > '9')
		return sn__err(-EINVAL, "option %s=%s: expected a non-negative integer", key, v);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end)
		return sn__err(-EINVAL, "option %s=%s: expected a non-negative integer", key, v);
	*out = n;
	return 0;
}

int sn__uri_size(const struct sn_uri *uri, const char *key, uint64_t *out)
{
	const char *v = sn__uri_get(uri, key);
	int err;

	if (!v)
		return 0;
	err = sn_parse_size(v, out);
	if (err)
		return sn__err(err, "option %s=%s: expected a size such as 4096, 64k, 1g", key, v);
	return 0;
}

int sn_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long n;
	unsigned shift = 0;

	if (!s || *s < '0' || *s > '9')
		return sn__err(-EINVAL, "'%s' is not a size (examples: 4096, 4k, 1M, 2G)",
		               s ? s : "");
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno)
		return sn__err(-EINVAL, "size '%s' is too large", s);
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	default:
		break;
	}
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return sn__err(-EINVAL, "'%s' is not a size (examples: 4096, 4k, 1M, 2G)", s);
	if (shift && n > (UINT64_MAX >> shift))
		return sn__err(-EINVAL, "size '%s' is too large", s);
	*out = (uint64_t)n << shift;
	return 0;
}
