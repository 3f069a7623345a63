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

/* Remove file unless another open holds its lock (a store open in another process, say:
 * lock= of the file engines), holding the lock meanwhile: 0, -EBUSY, or unlink's error. */
int cmd_unlink_unused(const char *file);

#endif
