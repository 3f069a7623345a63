/* SPDX-License-Identifier: MIT */
/*
 * bench_compare.c — `snstore bench --compare`: the seed's comparison table (4 KiB random
 * reads and writes at QD1 and QD32) measured now on every engine that opens here, all
 * on one scratch file laid out once. An engine that cannot open says why in its row.
 * Every file cell starts from a synced, dropped page cache, so no cell inherits another's.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <snstore/snstore.h>

#include "bench.h"

struct cell {
	enum bench_rw rw;
	unsigned qd;
};

static const struct cell cells[] = {
	{ RW_RANDREAD, 1 },
	{ RW_RANDREAD, 32 },
	{ RW_RANDWRITE, 1 },
	{ RW_RANDWRITE, 32 },
};
#define NCELLS ((unsigned)(sizeof(cells) / sizeof(cells[0])))

struct row {
	char uri[4200];
	const char *label;
	int on_file; /* the scratch file: drop its cache before each cell */
	char why[300];
	double iops[NCELLS];
	struct sn_hist lat[NCELLS];
};

/*
 * Write back and evict the file's cached pages. Without this a buffered row reads what
 * the row before it cached, and an O_DIRECT read first waits for the dirty pages that
 * a buffered write cell left behind: the order of rows, not the engine, would decide.
 */
static void drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

/* The row's line off a terminal: logs and pipes get one line per row, not one per cell. */
static void log_row(const struct row *row, unsigned row_no, unsigned nrows, unsigned cells_done)
{
	fprintf(stderr, "  [%u/%u] %s: ", row_no + 1, nrows, row->uri);
	if (*row->why) {
		fprintf(stderr, "%s: %s\n", cells_done ? "failed" : "not available", row->why);
		return;
	}
	for (unsigned c = 0; c < NCELLS; c++)
		fprintf(stderr, "%s%s qd %u %.0f", c ? ", " : "", bench_rw_name(cells[c].rw),
		        cells[c].qd, row->iops[c]);
	fprintf(stderr, " IOPS\n");
}

/*
 * Each cell opens the device afresh: a mapping left from the cell before would keep its
 * pages cached (mapped pages cannot be dropped). progress: 0 none, 1 a line per cell (a
 * terminal), 2 a line per row (stderr is a file or a pipe).
 */
static void run_row(struct row *row, const struct bench_opts *base, const char *file,
                    unsigned row_no, unsigned nrows, int progress)
{
	unsigned c;

	for (c = 0; c < NCELLS && !*row->why; c++) {
		struct bench_opts o = *base;
		struct bench_result r;
		struct sn_dev *dev;
		int err;

		o.dev = o.uri = row->uri;
		o.rw = cells[c].rw;
		o.qd = cells[c].qd;
		o.bs = 4096;
		o.jobs = 1;
		o.batch = 1;
		o.json = 0;
		if (row->on_file)
			drop_cache(file);
		if (progress == 1)
			fprintf(stderr, "  [%2u/%u] %-34s %-9s qd %-2u ", row_no * NCELLS + c + 1,
			        nrows * NCELLS, row->uri, bench_rw_name(o.rw), o.qd);
		err = sn_dev_open(row->uri, &dev);
		if (err) {
			snprintf(row->why, sizeof(row->why), "%s",
			         *sn_errmsg() ? sn_errmsg() : sn_strerror(err));
			if (progress == 1)
				fprintf(stderr, "not available: %s\n", row->why);
			break;
		}
		if (bench_run(dev, &o, &r, 0) == 0) {
			row->iops[c] = r.total.elapsed_ns ? (double)r.total.ios * 1e9 /
			                                            (double)r.total.elapsed_ns
			                                  : 0;
			row->lat[c] = r.total.lat;
			if (progress == 1)
				fprintf(stderr, "%10.0f IOPS  p99 %8.1f µs\n", row->iops[c],
				        (double)sn_hist_pct(&r.total.lat, 99) / 1e3);
		} else {
			snprintf(row->why, sizeof(row->why), "%s", r.total.errmsg);
			if (progress == 1)
				fprintf(stderr, "failed: %s\n", row->why);
		}
		bench_result_free(&r);
		sn_dev_close(dev);
	}
	if (progress == 2)
		log_row(row, row_no, nrows, c);
}

/* "AMD EPYC 7B13, 2 CPUs, Linux 6.1.0, ext4": what the numbers were measured on. */
static void describe_machine(const char *file, char *out, size_t len)
{
	static const struct {
		unsigned long magic;
		const char *name;
	} fs[] = {
		{ 0xEF53, "ext4" },      { 0x58465342, "xfs" },       { 0x9123683E, "btrfs" },
		{ 0x01021994, "tmpfs" }, { 0x794c7630, "overlayfs" }, { 0x2FC12FC1, "zfs" },
		{ 0xF2F52010, "f2fs" },  { 0x6969, "nfs" },
	};
	char model[128] = "unknown CPU", line[256], fsname[32] = "unknown filesystem";
	struct utsname u;
	struct statfs sf;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "?");
	if (statfs(file, &sf) == 0) {
		snprintf(fsname, sizeof(fsname), "filesystem 0x%lx", (unsigned long)sf.f_type);
		for (unsigned i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
			if ((unsigned long)sf.f_type == fs[i].magic)
				snprintf(fsname, sizeof(fsname), "%s", fs[i].name);
	}
	snprintf(out, len, "%s, %ld CPUs online, Linux %s, file on %s", model,
	         sysconf(_SC_NPROCESSORS_ONLN), u.release, fsname);
}

static void print_json(const struct bench_opts *o, const char *file, const char *machine,
                       const struct row *rows, unsigned nrows)
{
	printf("{\"compare\": true, \"file\": ");
	bench_json_str(stdout, file);
	printf(", \"size\": %" PRIu64 ", \"runtime_s\": %" PRIu64 ", \"cpus\": %ld, \"machine\": ",
	       o->size, o->runtime_s, sysconf(_SC_NPROCESSORS_ONLN));
	bench_json_str(stdout, machine);
	printf(", \"results\": [");
	for (unsigned i = 0; i < nrows; i++) {
		printf("%s{\"dev\": ", i ? ", " : "");
		bench_json_str(stdout, rows[i].uri);
		printf(", \"label\": ");
		bench_json_str(stdout, rows[i].label);
		if (*rows[i].why) {
			printf(", \"error\": ");
			bench_json_str(stdout, rows[i].why);
		}
		printf(", \"cells\": [");
		for (unsigned c = 0; c < NCELLS && !*rows[i].why; c++) {
			printf("%s{\"rw\": \"%s\", \"qd\": %u, \"bs\": 4096, \"iops\": %.1f, "
			       "\"lat_ns\": ",
			       c ? ", " : "", bench_rw_name(cells[c].rw), cells[c].qd,
			       rows[i].iops[c]);
			bench_json_lat(stdout, &rows[i].lat[c]);
			printf("}");
		}
		printf("]}");
	}
	printf("]}\n");
}

static void print_table(const struct bench_opts *o, const char *file, const char *machine,
                        const struct row *rows, unsigned nrows)
{
	int w = 6;

	for (unsigned i = 0; i < nrows; i++)
		if ((int)strlen(rows[i].uri) > w)
			w = (int)strlen(rows[i].uri);
	printf("4 KiB random I/O on %s (%" PRIu64 " MiB), %" PRIu64 " s per cell, 1 job.\n"
	       "Measured now on %s.\n\n",
	       file, o->size >> 20, o->runtime_s, machine);
	printf("%-*s %11s %9s %11s %11s %11s\n", w, "engine", "read QD1", "p99 µs", "read QD32",
	       "write QD1", "write QD32");
	printf("%-*s %11s %9s %11s %11s %11s\n", w, "", "IOPS", "QD1 read", "IOPS", "IOPS", "IOPS");
	for (unsigned i = 0; i < nrows; i++) {
		if (*rows[i].why) {
			printf("%-*s not available: %s\n", w, rows[i].uri, rows[i].why);
			continue;
		}
		printf("%-*s %11.0f %9.1f %11.0f %11.0f %11.0f\n", w, rows[i].uri, rows[i].iops[0],
		       (double)sn_hist_pct(&rows[i].lat[0], 99) / 1e3, rows[i].iops[1],
		       rows[i].iops[2], rows[i].iops[3]);
	}
	printf("\nEach file cell starts with the file's page cache written back and dropped.\n"
	       "Buffered and mmap writes land in the page cache: durable only after a flush.\n"
	       "psync runs one request at a time whatever the QD; mem and null store nothing\n"
	       "durable (null moves no data: the API's own cost). Rerun one cell with\n"
	       "snstore bench --dev URI --rw randread --qd 32.\n");
}

int bench_compare(const struct bench_opts *in)
{
	struct bench_opts o = *in;
	const char *file = o.file ? o.file : "./snstore-bench.dat";
	static const char *const file_uris[][2] = {
		{ "uring:%s?direct=1", "uring, O_DIRECT" },
		{ "uring:%s", "uring, buffered" },
		{ "psync:%s?direct=1", "psync, O_DIRECT" },
		{ "psync:%s", "psync, buffered" },
		{ "mmap:%s", "mmap" },
	};
	const unsigned nfile = sizeof(file_uris) / sizeof(file_uris[0]), nrows = nfile + 2;
	struct row *rows = calloc(nrows, sizeof(*rows));
	/* Progress per cell is for a person watching; a log gets a line per row. */
	int progress = o.quiet ? 0 : isatty(STDERR_FILENO) ? 1 : 2;
	char uri[4200], machine[512];
	struct sn_dev *dev;

	if (!rows) {
		fprintf(stderr, "snstore bench: out of memory\n");
		return 1;
	}
	if (!o.size)
		o.size = 1ull << 30;
	o.offset = 0;
	/* Lay the file out once, with real writes, so reads reach the disk. */
	snprintf(uri, sizeof(uri), "psync:%s?create=1&size=%" PRIu64, file, o.size);
	if (sn_dev_open(uri, &dev)) {
		fprintf(stderr, "snstore bench --compare: cannot create %s: %s\n", file,
		        sn_errmsg());
		free(rows);
		return 1;
	}
	if (progress == 1)
		fprintf(stderr, "  laying out %s (%" PRIu64 " MiB)\n", file, o.size >> 20);
	if (bench_layout(dev, &o, !o.quiet)) {
		sn_dev_close(dev);
		free(rows);
		return 1;
	}
	sn_dev_close(dev);
	for (unsigned i = 0; i < nfile; i++) {
		snprintf(rows[i].uri, sizeof(rows[i].uri), file_uris[i][0], file);
		rows[i].label = file_uris[i][1];
		rows[i].on_file = 1;
	}
	snprintf(rows[nfile].uri, sizeof(rows[0].uri), "mem:?size=%" PRIu64, o.size);
	rows[nfile].label = "mem (RAM, not persistent)";
	snprintf(rows[nfile + 1].uri, sizeof(rows[0].uri), "null:?size=%" PRIu64, o.size);
	rows[nfile + 1].label = "null (no data moved)";
	for (unsigned i = 0; i < nrows; i++)
		run_row(&rows[i], &o, file, i, nrows, progress);
	describe_machine(file, machine, sizeof(machine));
	if (o.json)
		print_json(&o, file, machine, rows, nrows);
	else
		print_table(&o, file, machine, rows, nrows);
	free(rows);
	return 0;
}
