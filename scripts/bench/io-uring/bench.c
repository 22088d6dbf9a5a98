/* Client-side workloads for the FUSE transport study.
 * Prints one line: "wall_s=<s> ops=<n> cli_user_s=<s> cli_sys_s=<s>"
 *   bench treestat DIR           walk DIR recursively, fstatat() every entry
 *   bench statloop PATH N        N x stat(PATH)
 *   bench randread FILE N BS     N x pread(BS) at random BS-aligned offsets
 *   bench seqread FILE BS PASSES read FILE sequentially in BS chunks
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long walk(int dfd)
{
	long n = 0;
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	struct stat st;
	if (!d) { perror("fdopendir"); exit(1); }
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			perror(e->d_name); exit(1);
		}
		n++;
		if (S_ISDIR(st.st_mode)) {
			int c = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY);
			if (c < 0) { perror("openat"); exit(1); }
			n += walk(c);
		}
	}
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	long ops = 0;
	double t0, t1;
	struct rusage ru;
	if (argc < 3) { fprintf(stderr, "usage\n"); return 2; }
	const char *mode = argv[1];
	if (!strcmp(mode, "treestat")) {
		int fd = open(argv[2], O_RDONLY | O_DIRECTORY);
		if (fd < 0) { perror(argv[2]); return 1; }
		t0 = now();
		ops = walk(fd);
		t1 = now();
	} else if (!strcmp(mode, "statloop")) {
		long n = atol(argv[3]);
		struct stat st;
		t0 = now();
		for (long i = 0; i < n; i++)
			if (stat(argv[2], &st)) { perror("stat"); return 1; }
		t1 = now();
		ops = n;
	} else if (!strcmp(mode, "randread")) {
		long n = atol(argv[3]);
		size_t bs = atol(argv[4]);
		char *buf = aligned_alloc(4096, bs);
		int fd = open(argv[2], O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st)) { perror(argv[2]); return 1; }
		long blocks = st.st_size / bs;
		unsigned long long x = 88172645463325252ULL;
		t0 = now();
		for (long i = 0; i < n; i++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			if (pread(fd, buf, bs, (off_t)(x % blocks) * bs) != (ssize_t)bs) {
				perror("pread"); return 1;
			}
		}
		t1 = now();
		ops = n;
		close(fd);
	} else if (!strcmp(mode, "seqread")) {
		size_t bs = atol(argv[3]);
		int passes = atoi(argv[4]);
		char *buf = aligned_alloc(4096, bs);
		t0 = now();
		for (int p = 0; p < passes; p++) {
			int fd = open(argv[2], O_RDONLY);
			ssize_t r;
			if (fd < 0) { perror(argv[2]); return 1; }
			while ((r = read(fd, buf, bs)) > 0)
				ops++;
			if (r < 0) { perror("read"); return 1; }
			close(fd);
		}
		t1 = now();
	} else {
		fprintf(stderr, "bad mode\n");
		return 2;
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("wall_s=%.6f ops=%ld cli_user_s=%.6f cli_sys_s=%.6f\n", t1 - t0, ops,
	       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	return 0;
}
