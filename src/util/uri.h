/* SPDX-License-Identifier: MIT */
/*
 * uri.h — device URIs: ENGINE:PATH?key=value&key=value. The parser copies the string
 * once and points into the copy; keys are kept in order and must be unique.
 */
#ifndef SN_URI_H
#define SN_URI_H

#include <stdint.h>

#define SN_URI_MAX_KEYS 32

struct sn_uri_kv {
	const char *key;
	const char *value; /* "" when the key had no '=' */
};

struct sn_uri {
	char *buf;          /* owned copy the fields point into */
	const char *engine; /* scheme, lowercase letters, digits and '_' */
	const char *path;   /* may be "" */
	unsigned nkv;
	struct sn_uri_kv kv[SN_URI_MAX_KEYS];
};

/* Parse s into *uri. Returns 0, -EINVAL (sn_errmsg() names the fault) or -ENOMEM. */
int sn__uri_parse(const char *s, struct sn_uri *uri);
void sn__uri_free(struct sn_uri *uri);

/* The value of key, or NULL when absent. */
const char *sn__uri_get(const struct sn_uri *uri, const char *key);

/* Typed getters: absent keys leave *out unchanged and return 0; bad values -EINVAL. */
int sn__uri_bool(const struct sn_uri *uri, const char *key, int *out);
int sn__uri_size(const struct sn_uri *uri, const char *key, uint64_t *out);
int sn__uri_uint(const struct sn_uri *uri, const char *key, uint64_t *out);

#endif
