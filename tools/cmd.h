/* SPDX-License-Identifier: MIT */
/* cmd.h — the subcommands of the snstore CLI, one file each. */
#ifndef SN_TOOLS_CMD_H
#define SN_TOOLS_CMD_H

#include <stddef.h>

/* Each returns the process exit status: 0 success, 1 failure, 2 bad usage. */
int cmd_bench(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_rtbench(int argc, char **argv);
int cmd_kv(int argc, char **argv);
int cmd_kvbench(int argc, char **argv);

/* The file behind a store's URI: a plain path, or the path of ENGINE:PATH[?...] (after
 * the last engine of a wrapping one, fault:psync:PATH); "" for a URI without one (mem:). */
void cmd_uri_file(const char *uri, char *file, size_t len);

/* Does another open hold file's lock (a store open in another process, say: lock= of the
 * file engines)? Then it must not be removed. 0 too when file cannot be opened. */
int cmd_file_in_use(const char *file);

#endif
