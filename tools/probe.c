/* SPDX-License-Identifier: MIT */
/* probe.c — placeholder, being written. */
#include <stdio.h>

#include "cmd.h"

int cmd_probe(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "snstore probe: not built yet\n");
	return 1;
}
