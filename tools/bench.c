/* SPDX-License-Identifier: MIT */
/* bench.c — placeholder, being written. */
#include <stdio.h>

#include "cmd.h"

int cmd_bench(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "snstore bench: not built yet\n");
	return 1;
}
