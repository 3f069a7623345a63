/* SPDX-License-Identifier: MIT */
/*
 * test_dev_conformance.c — runs the engine conformance suite (conformance.c) against the
 * device URI in argv[1]. CTest registers it once per engine and option set, so a failing
 * test names the engine that broke the contract.
 *
 *   test_dev_conformance URI [--scratch]
 *
 * --scratch: URI's path is a scratch file of this test: removed before and after.
 * Exits 77 when the engine is not available here (SN_ENOTAVAIL).
 */
#include <stdlib.h>
#include <unistd.h>

#include "conformance.h"
#include "test.h"
#include "util/uri.h"

static void remove_scratch(const char *uri)
{
	struct sn_uri u;

	if (sn__uri_parse(uri, &u))
		return;
	if (*u.path)
		unlink(u.path);
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
