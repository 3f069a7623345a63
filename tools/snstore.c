/* SPDX-License-Identifier: MIT */
/*
 * snstore.c — the command-line tool: dispatches to one file per subcommand.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <snstore/snstore.h>

#include "cmd.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} cmds[] = {
	{ "bench", cmd_bench, "measure a device: IOPS, bandwidth, latency percentiles" },
	{ "rtbench", cmd_rtbench, "measure the runtime's messages: throughput, round trips" },
	{ "probe", cmd_probe, "show what this machine offers and what auto: would pick" },
	{ "kv", cmd_kv, "the key-value store: format, put, get, del, scan, stat, check, compact" },
	{ "kvbench", cmd_kvbench, "db_bench/YCSB-shaped benchmarks of the key-value store" },
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: snstore COMMAND [OPTIONS]\n\n"
	        "snstore %s: the fastest path to persistent storage for shared-nothing\n"
	        "programs, behind one asynchronous API.\n\ncommands:\n",
	        SNSTORE_VERSION);
	for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\n'snstore COMMAND --help' describes each command.\n"
	           "Device URIs are ENGINE:PATH?key=value&...; 'snstore probe --engines' lists "
	           "every engine and its options.\n");
}

/* A command whose output could not all be written (a full disk, say) failed, whatever
 * else it did: a truncated scan or JSON must not look like a whole one. */
static int output_written(int rc)
{
	int err;

	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return rc;
	err = errno;
	fprintf(stderr, "snstore: writing the output failed%s%s\n", err ? ": " : "",
	        err ? strerror(err) : "");
	return rc ? rc : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("snstore %s\n", SNSTORE_VERSION);
		return 0;
	}
	for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return output_written(cmds[i].fn(argc - 1, argv + 1));
	fprintf(stderr, "snstore: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
