/* SPDX-License-Identifier: MIT */
/*
 * err.c — sn_strerror(), sn_errname() and the thread-local detail message. errno text
 * comes from strerrordesc_np() (glibc >= 2.32), which unlike strerror() is thread-safe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <snstore/err.h>

#include "util.h"

static __thread char t_errmsg[512];

int sn__errf(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): false positive, va_start above */
	vsnprintf(t_errmsg, sizeof(t_errmsg), fmt, ap);
	va_end(ap);
	return err;
}

int sn__err_str(int err, const char *msg)
{
	size_t n = strlen(msg);

	if (n >= sizeof(t_errmsg))
		n = sizeof(t_errmsg) - 1;
	memcpy(t_errmsg, msg, n);
	t_errmsg[n] = '\0';
	return err;
}

void sn__err_clear(void)
{
	t_errmsg[0] = '\0';
}

const char *sn_errmsg(void)
{
	return t_errmsg;
}

const char *sn_strerror(int err)
{
	const char *s;

	switch (err) {
#define SN__ERR_TEXT(name, value, text) \
	case value:                     \
		return text;
		SN_ERRORS(SN__ERR_TEXT)
#undef SN__ERR_TEXT
	default:
		break;
	}
	if (err == 0)
		return "success";
	s = strerrordesc_np(err < 0 ? -err : err);
	return s ? s : "unknown error";
}

const char *sn_errname(int err)
{
	const char *s;

	switch (err) {
#define SN__ERR_NAME(name, value, text) \
	case value:                     \
		return #name;
		SN_ERRORS(SN__ERR_NAME)
#undef SN__ERR_NAME
	default:
		break;
	}
	if (err == 0)
		return "OK";
	s = strerrorname_np(err < 0 ? -err : err);
	return s ? s : "E?";
}

const char *sn__fmt_bytes(uint64_t bytes, char *buf, unsigned len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < SN_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v == (double)(uint64_t)v)
		snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}
