/* SPDX-License-Identifier: MIT */
/*
 * bench_compare.c — `snstore bench --compare`: the seed's comparison table (4 KiB random
 * reads and writes at QD1 and QD32) measured now on every engine that opens here, all
 * on one scratch file laid out once. An engine that cannot open says why in its row.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#define NCELLS (sizeof(cells) / sizeof(cells[0]))

struct row {
	char uri[4200];
	const char *label;
	char why[300];
	double iops[NCELLS];
	uint64_t p99[NCELLS];
	struct sn_hist lat[NCELLS];
};

static int run_row(struct row *row, const struct bench_opts *base, int progress)
{
	struct sn_dev *dev;
	int err = sn_dev_open(row->uri, &dev);

	if (err) {
		snprintf(row->why, sizeof(row->why), "%s",
		         *sn_errmsg() ? sn_errmsg() : sn_strerror(err));
		return -1;
	}
	for (unsigned c = 0; c < NCELLS; c++) {
		struct bench_opts o = *base;
		struct bench_result r;

		o.dev = row->uri;
		o.rw = cells[c].rw;
		o.qd = cells[c].qd;
		o.bs = 4096;
		o.jobs = 1;
		o.batch = 1;
		o.json = 0;
		if (progress)
			fprintf(stderr, "\r  %-34s %-9s qd %-2u ...          ", row->label,
			        bench_rw_name(o.rw), o.qd);
		if (bench_run(dev, &o, &r, 0) == 0) {
			row->iops[c] = r.total.elapsed_ns ? (double)r.total.ios * 1e9 /
			                                            (double)r.total.elapsed_ns
			                                  : 0;
			row->p99[c] = sn_hist_pct(&r.total.lat, 99);
			row->lat[c] = r.total.lat;
		} else {
			snprintf(row->why, sizeof(row->why), "%s", r.total.errmsg);
		}
		bench_result_free(&r);
	}
	sn_dev_close(dev);
	return 0;
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
	int progress = !o.quiet && isatty(2);
	struct row *rows = calloc(nrows, sizeof(*rows));
	char uri[4200];
	struct sn_dev *dev;

	if (!rows)
		return 1;
	if (!o.size)
		o.size = 1ull << 30;
	/* Lay the file out once, with real writes, so reads reach the disk. */
	snprintf(uri, sizeof(uri), "psync:%s?create=1&size=%" PRIu64, file, o.size);
	if (sn_dev_open(uri, &dev)) {
		fprintf(stderr, "snstore bench --compare: cannot create %s: %s\n", file,
		        sn_errmsg());
		free(rows);
		return 1;
	}
	o.offset = 0;
	if (progress)
		fprintf(stderr, "  laying out %s (%" PRIu64 " MiB)\n", file, o.size >> 20);
	if (bench_layout(dev, &o, progress)) {
		sn_dev_close(dev);
		free(rows);
		return 1;
	}
	sn_dev_close(dev);
	for (unsigned i = 0; i < nfile; i++) {
		snprintf(rows[i].uri, sizeof(rows[i].uri), file_uris[i][0], file);
		rows[i].label = file_uris[i][1];
	}
	snprintf(rows[nfile].uri, sizeof(rows[0].uri), "mem:?size=%" PRIu64, o.size);
	rows[nfile].label = "mem (RAM, not persistent)";
	snprintf(rows[nfile + 1].uri, sizeof(rows[0].uri), "null:?size=%" PRIu64, o.size);
	rows[nfile + 1].label = "null (no data moved)";
	for (unsigned i = 0; i < nrows; i++)
		run_row(&rows[i], &o, progress);
	if (progress)
		fprintf(stderr, "\r%70s\r", "");

	if (o.json) {
		printf("{\"compare\": true, \"file\": ");
		bench_json_str(stdout, file);
		printf(", \"size\": %" PRIu64 ", \"runtime_s\": %" PRIu64
		       ", \"cpus\": %ld, \"results\": [",
		       o.size, o.runtime_s, sysconf(_SC_NPROCESSORS_ONLN));
		for (unsigned i = 0; i < nrows; i++) {
			printf("%s{\"dev\": ", i ? ", " : "");
			bench_json_str(stdout, rows[i].uri);
			if (*rows[i].why) {
				printf(", \"error\": ");
				bench_json_str(stdout, rows[i].why);
			}
			printf(", \"cells\": [");
			for (unsigned c = 0; c < NCELLS && !*rows[i].why; c++) {
				printf("%s{\"rw\": \"%s\", \"qd\": %u, \"bs\": 4096, \"iops\": "
				       "%.1f, "
				       "\"lat_ns\": ",
				       c ? ", " : "", bench_rw_name(cells[c].rw), cells[c].qd,
				       rows[i].iops[c]);
				bench_json_lat(stdout, &rows[i].lat[c]);
				printf("}");
			}
			printf("]}");
		}
		printf("]}\n");
		free(rows);
		return 0;
	}
	printf("4 KiB random I/O on %s (%" PRIu64 " MiB), %" PRIu64 " s per cell, 1 job, measured "
	       "now on %ld CPUs\n\n",
	       file, o.size >> 20, o.runtime_s, sysconf(_SC_NPROCESSORS_ONLN));
	printf("%-28s %12s %10s %12s %12s %12s\n", "engine", "read QD1", "p99 µs", "read QD32",
	       "write QD1", "write QD32");
	printf("%-28s %12s %10s %12s %12s %12s\n", "", "IOPS", "(QD1)", "IOPS", "IOPS", "IOPS");
	for (unsigned i = 0; i < nrows; i++) {
		if (*rows[i].why) {
			printf("%-28s not available: %s\n", rows[i].label, rows[i].why);
			continue;
		}
		printf("%-28s %12.0f %10.1f %12.0f %12.0f %12.0f\n", rows[i].label, rows[i].iops[0],
		       (double)rows[i].p99[0] / 1e3, rows[i].iops[1], rows[i].iops[2],
		       rows[i].iops[3]);
	}
	printf("\nBuffered and mmap writes land in the page cache: durable only after a flush.\n"
	       "psync runs one request at a time whatever the QD. Rerun one cell with\n"
	       "snstore bench --dev URI --rw randread --qd 32 (URIs: uring:%s?direct=1, ...).\n",
	       file);
	free(rows);
	return 0;
}
