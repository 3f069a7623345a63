/* SPDX-License-Identifier: MIT */
/*
 * probe.c — `snstore probe`: what this machine offers for storage (io_uring setup flags
 * and opcodes, O_DIRECT alignment, hugepages, DAX mounts, NVMe and block devices) and
 * which engine auto: picks for a path. Reads /proc and /sys; changes nothing, except a
 * scratch file it creates and removes when the path does not exist yet.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "cmd.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: snstore probe [PATH] [--engines]\n"
	        "\n"
	        "Report what this machine offers for storage and what auto: would choose.\n"
	        "\n"
	        "  PATH        file or block device to judge (default: the current directory);\n"
	        "              a file that does not exist is created for the probe and removed;\n"
	        "              a PATH that neither exists nor can be created is an error (exit 1)\n"
	        "  --engines   list the engines built into this snstore and every URI option\n"
	        "  -h, --help  this text\n"
	        "\n"
	        "Sections: system, io_uring (setup flags and opcodes this kernel accepts),\n"
	        "direct I/O (alignment statx reports for PATH), memory (hugepages), persistent\n"
	        "memory (DAX mounts, /dev/pmem*, /dev/dax*), NVMe (controllers and namespaces),\n"
	        "block devices, engines, and the auto: decision for PATH.\n");
}

static void print_engines(int with_options)
{
	const struct sn_engine_desc *d;

	for (unsigned i = 0; (d = sn_engine_desc(i)); i++) {
		printf("  %-7s %s\n", d->name, d->summary);
		for (const struct sn_option *o = d->options; with_options && o && o->key; o++) {
			char kv[48];

			snprintf(kv, sizeof(kv), "%s=%s", o->key, o->arg);
			printf("            %-22s %s\n", kv, o->help);
		}
	}
}

/* The engines of DESIGN.md missing from this build, and why. */
static void print_not_built(const char *indent)
{
	const struct sn_engine_desc *d;
	int pmem = 0;

	for (unsigned i = 0; (d = sn_engine_desc(i)); i++)
		pmem |= !strcmp(d->name, "pmem");
	if (!pmem)
		printf("%spmem: not built (libpmem2-dev was missing when snstore was built)\n",
		       indent);
	printf("%snot built: nvme, pci, nvmf, spdk (not implemented yet)\n", indent);
}

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return 0;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static void probe_uring(void)
{
	static const struct {
		unsigned flag;
		const char *name;
	} flags[] = {
		{ IORING_SETUP_SQPOLL, "SQPOLL" },
		{ IORING_SETUP_IOPOLL, "IOPOLL" },
		{ IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN (5.19)" },
		{ IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL (5.18)" },
		{ IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER (6.0)" },
		{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN (6.1)" },
	};
	static const struct {
		int op;
		const char *name;
	} ops[] = {
		{ IORING_OP_READ, "READ" },
		{ IORING_OP_WRITE, "WRITE" },
		{ IORING_OP_READ_FIXED, "READ_FIXED" },
		{ IORING_OP_WRITE_FIXED, "WRITE_FIXED" },
		{ IORING_OP_FSYNC, "FSYNC" },
		{ IORING_OP_FALLOCATE, "FALLOCATE" },
		{ IORING_OP_URING_CMD, "URING_CMD (NVMe passthrough)" },
	};
	struct io_uring ring;
	struct io_uring_probe *p;
	struct rlimit rl;
	char line[64];
	int err;

	printf("io_uring:\n");
	if (read_line("/proc/sys/kernel/io_uring_disabled", line, sizeof(line)))
		printf("  kernel.io_uring_disabled = %s%s\n", line,
		       !strcmp(line, "0") ? "" : " (restricted)");
	err = io_uring_queue_init(8, &ring, 0);
	if (err) {
		printf("  not usable: %s\n", sn_strerror(err));
		return;
	}
	printf("  ring features: %s%s%s%s\n", ring.features & IORING_FEAT_NODROP ? "NODROP " : "",
	       ring.features & IORING_FEAT_FAST_POLL ? "FAST_POLL " : "",
	       ring.features & IORING_FEAT_EXT_ARG ? "EXT_ARG " : "",
	       ring.features & IORING_FEAT_NATIVE_WORKERS ? "NATIVE_WORKERS" : "");
	io_uring_queue_exit(&ring);
	printf("  setup flags:");
	for (unsigned i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct io_uring_params prm = { 0 };

		prm.flags = flags[i].flag;
		err = io_uring_queue_init_params(8, &ring, &prm);
		printf(" %s%s", flags[i].name, err ? "=no" : "");
		if (!err)
			io_uring_queue_exit(&ring);
	}
	printf("\n  opcodes:");
	p = io_uring_get_probe();
	for (unsigned i = 0; p && i < sizeof(ops) / sizeof(ops[0]); i++)
		printf(" %s%s", ops[i].name, io_uring_opcode_supported(p, ops[i].op) ? "" : "=no");
	if (p)
		io_uring_free_probe(p);
	getrlimit(RLIMIT_MEMLOCK, &rl);
	if (rl.rlim_cur == RLIM_INFINITY)
		printf("\n  RLIMIT_MEMLOCK: unlimited\n");
	else
		printf("\n  RLIMIT_MEMLOCK: %llu KiB%s\n", (unsigned long long)rl.rlim_cur / 1024,
		       geteuid() == 0 ? " (root: fixed buffers are not charged)" : "");
}

static void probe_direct(const char *path, const char *target)
{
	struct statx stx;

	printf("direct I/O on %s:\n", path);
	if (statx(AT_FDCWD, target, 0, STATX_BASIC_STATS | STATX_DIOALIGN, &stx) != 0) {
		printf("  statx failed: %s\n", sn_strerror(-errno));
		return;
	}
	if (stx.stx_mask & STATX_DIOALIGN) {
		if (stx.stx_dio_offset_align)
			printf("  supported: offsets/lengths multiple of %u, buffers of %u "
			       "(statx STATX_DIOALIGN)\n",
			       stx.stx_dio_offset_align, stx.stx_dio_mem_align);
		else
			printf("  not supported by this filesystem (statx reports no alignment)\n");
	} else {
		printf("  statx gives no DIOALIGN here (kernel < 6.1 or filesystem)\n");
	}
}

static void probe_memory(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256], thp[128];

	printf("memory:\n");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "MemTotal", 8) || !strncmp(line, "HugePages_Total", 15) ||
		    !strncmp(line, "HugePages_Free", 14) || !strncmp(line, "Hugepagesize", 12))
			printf("  %s", line);
	if (f)
		fclose(f);
	if (read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof(thp)))
		printf("  transparent hugepages: %s\n", thp);
}

/* Print the entries of dir whose names start with prefix, after label; returns how many. */
static int list_dir(const char *label, const char *dir, const char *prefix, int sep_lines)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && !strncmp(de->d_name, prefix, strlen(prefix)))
			printf(sep_lines ? "%s%s\n" : "%s%s", n++ && !sep_lines ? ", " : label,
			       de->d_name);
	if (d)
		closedir(d);
	if (n && !sep_lines)
		printf("\n");
	return n;
}

static void probe_pmem(void)
{
	FILE *f = fopen("/proc/mounts", "r");
	char dev[256], dir[256], type[64], opts[512];
	int n = 0;

	printf("persistent memory:\n");
	while (f && fscanf(f, "%255s %255s %63s %511s %*d %*d", dev, dir, type, opts) == 4)
		if (strstr(opts, "dax")) {
			printf("  DAX mount: %s on %s (%s, %s)\n", dev, dir, type, opts);
			n++;
		}
	if (f)
		fclose(f);
	n += list_dir("  fs-DAX block devices: /dev/", "/dev", "pmem", 0);
	n += list_dir("  device DAX: /dev/", "/dev", "dax", 0);
	if (!n)
		printf("  none (no DAX mounts, no /dev/pmem*, no /dev/dax*)\n");
}

static void probe_nvme(void)
{
	char path[512], model[128];
	DIR *d = opendir("/sys/class/nvme");
	struct dirent *de;
	int n = 0;

	printf("NVMe:\n");
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/nvme/%s/model", de->d_name);
		if (!read_line(path, model, sizeof(model)))
			snprintf(model, sizeof(model), "?");
		printf("  controller %s: %s\n", de->d_name, model);
		n++;
	}
	if (d)
		closedir(d);
	list_dir("  generic char devices (uring_cmd passthrough): /dev/", "/dev", "ng", 0);
	if (!n)
		printf("  no NVMe controllers\n");
}

static void probe_blockdevs(void)
{
	char path[512], rot[16], lbs[16], sched[128], size[32];
	DIR *d = opendir("/sys/block");
	struct dirent *de;

	printf("block devices:\n");
	while (d && (de = readdir(d))) {
		const char *line = de->d_name;

		if (line[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/size", line);
		if (!read_line(path, size, sizeof(size)) || !strcmp(size, "0"))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/queue/rotational", line);
		read_line(path, rot, sizeof(rot));
		snprintf(path, sizeof(path), "/sys/block/%s/queue/logical_block_size", line);
		read_line(path, lbs, sizeof(lbs));
		snprintf(path, sizeof(path), "/sys/block/%s/queue/scheduler", line);
		if (!read_line(path, sched, sizeof(sched)))
			sched[0] = '\0';
		printf("  %-8s %8.1f GiB  %s-byte blocks  %s  scheduler: %s\n", line,
		       atof(size) * 512 / (1 << 30), lbs, !strcmp(rot, "1") ? "rotational" : "ssd",
		       sched);
	}
	if (d)
		closedir(d);
}

static void probe_auto(const char *path, const char *target, int scratch)
{
	char uri[4200];
	struct sn_dev *dev;
	struct sn_dev_info in;
	int err;

	snprintf(uri, sizeof(uri), "auto:%s%s", target, scratch ? "?create=1&size=1m" : "");
	printf("auto:\n");
	err = sn_dev_open(uri, &dev);
	if (err) {
		printf("  %s: %s\n", path, sn_errmsg());
		return;
	}
	sn_dev_info(dev, &in);
	printf("  %s -> %s:%s\n  why: %s\n  features: %s\n", path, in.engine,
	       scratch ? path : in.path, in.note, in.features);
	sn_dev_close(dev);
}

int cmd_probe(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "engines", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = ".";
	int engines_only = 0, scratch = 0, missing, c, fd;
	char target[4200];
	struct utsname u;
	struct stat st;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			engines_only = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		path = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "snstore probe: one PATH at most (got '%s' too)\n", argv[optind]);
		return 2;
	}
	if (engines_only) {
		printf("engines built into snstore %s (URI: ENGINE:PATH?key=value&...):\n",
		       SNSTORE_VERSION);
		print_engines(1);
		print_not_built("");
		return 0;
	}
	/* Judge a directory, or a file yet to be made, by a scratch file in it. */
	missing = stat(path, &st) != 0 ? errno : 0;
	if (missing || S_ISDIR(st.st_mode)) {
		if (!missing)
			snprintf(target, sizeof(target), "%s%s.snstore-probe-%d", path,
			         path[strlen(path) - 1] == '/' ? "" : "/", (int)getpid());
		else
			snprintf(target, sizeof(target), "%s", path);
		/* Only a file made here is removed after (not, say, a dangling symlink). */
		fd = open(target, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0) {
			close(fd);
			scratch = 1;
		} else if (missing) {
			/* Nothing there and nothing can be made there (a missing directory, a
			 * typo): every section about PATH would only say it is not there. */
			fprintf(stderr,
			        "snstore probe: %s: %s (PATH must exist, or be a file that can be "
			        "created)\n",
			        path,
			        strerror(errno == EEXIST || errno == EISDIR ? missing : errno));
			return 1;
		}
	} else {
		snprintf(target, sizeof(target), "%s", path);
	}
	uname(&u);
	printf("system:\n  %s %s %s, %ld online CPUs\n", u.sysname, u.release, u.machine,
	       sysconf(_SC_NPROCESSORS_ONLN));
	probe_uring();
	probe_direct(path, target);
	probe_memory();
	probe_pmem();
	probe_nvme();
	probe_blockdevs();
	printf("engines:\n");
	print_engines(0);
	print_not_built("  ");
	probe_auto(path, target, scratch);
	if (scratch)
		unlink(target);
	return 0;
}
