/* SPDX-License-Identifier: MIT */
/*
 * test_dev_conformance.c — runs the engine conformance suite (conformance.c) against the
 * device URI in argv[1]. CTest registers it once per engine and option set, so a failing
 * test names the engine that broke the contract.
 *
 *   test_dev_conformance URI [--scratch]
 *
 * --scratch: URI's path is a scratch file of this test: removed before and after.
 * Exits 77 when the engine is not available here (SN_ENOTAVAIL), or when the scratch
 * file's directory does not exist (/dev/shm in some containers).
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conformance.h"
#include "test.h"
#include "util/uri.h"

/* The file of a URI: past the inner engine's scheme of a wrapper (fault:psync:/f). */
static const char *file_of(const struct sn_uri *u)
{
	const char *p = u->path;

	while (*p && *p != '/' && strchr(p, ':'))
		p = strchr(p, ':') + 1;
	return p;
}

/* The directory of a scratch file must exist (/dev/shm is missing in some containers). */
static int scratch_dir_missing(const char *uri)
{
	char dir[4096];
	struct sn_uri u;
	struct stat st;
	char *slash;
	int missing = 0;

	if (sn__uri_parse(uri, &u))
		return 0;
	snprintf(dir, sizeof(dir), "%s", file_of(&u));
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		missing = stat(dir, &st) != 0 || !S_ISDIR(st.st_mode);
		if (missing)
			printf("    skipped: the scratch file's directory %s does not exist here\n",
			       dir);
	}
	sn__uri_free(&u);
	return missing;
}

static void remove_scratch(const char *uri)
{
	struct sn_uri u;

	if (sn__uri_parse(uri, &u))
		return;
	if (*file_of(&u))
		unlink(file_of(&u));
	sn__uri_free(&u);
}

int main(int argc, char **argv)
{
	const char *uri = argc > 1 ? argv[1] : NULL;
	int scratch = argc > 2 && strcmp(argv[2], "--scratch") == 0;
	int r;

	if (!uri || (argc > 2 && !scratch)) {
		fprintf(stderr, "usage: %s URI [--scratch]   (for example mem:?size=64m)\n",
		        argv[0]);
		return 1;
	}
	t_begin("test_dev_conformance: the engine contract of dev.h, on one device");
	printf("device: %s\n", uri);
	if (scratch && scratch_dir_missing(uri))
		return T_SKIP;
	if (scratch)
		remove_scratch(uri);
	r = conf_probe(uri);
	if (r == T_PASS)
		for (const struct conf_case *k = conf_cases; k->name; k++)
			T_RUN(k->name, conf_run(uri, k->fn));
	else
		t_result("open the device", r);
	if (scratch)
		remove_scratch(uri);
	return t_end();
}
