// latprobe ROOT LIST INTERVAL_MS -- CMD ARGS...: runs CMD, and until it exits, lstat()s the next
// path of LIST (under ROOT) every INTERVAL_MS ms, timing each call. Prints one JSON line:
// {"n":..,"max_ms":..,"p99_ms":..,"p50_ms":..,"cmd_s":..,"status":..}
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
  if (argc < 6 || strcmp(argv[4], "--")) { fprintf(stderr, "usage: latprobe ROOT LIST INTERVAL_MS -- CMD...\n"); return 2; }
  FILE *f = fopen(argv[2], "r");
  if (!f) { perror(argv[2]); return 2; }
  size_t cap = 1 << 16, np = 0;
  char **paths = malloc(cap * sizeof *paths), line[8192];
  while (fgets(line, sizeof line, f) && np < cap) {
    size_t l = strlen(line);
    if (l && line[l - 1] == '\n') line[--l] = 0;
    paths[np] = malloc(strlen(argv[1]) + l + 2);
    sprintf(paths[np++], "%s/%s", argv[1], line);
  }
  if (!np) { fprintf(stderr, "latprobe: empty list\n"); return 2; }
  double interval = atof(argv[3]) / 1000, t0 = now();
  pid_t pid = fork();
  if (pid == 0) { execvp(argv[5], argv + 5); perror(argv[5]); _exit(127); }
  size_t n = 0, lcap = 1 << 16;
  double *lat = malloc(lcap * sizeof *lat);
  int status = 0;
  struct stat st;
  for (size_t i = 0;; i++) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    double a = now();
    lstat(paths[i % np], &st);
    double b = now();
    if (n < lcap) lat[n++] = (b - a) * 1000;
    double rest = interval - (now() - a);
    if (rest > 0) { struct timespec ts = { (time_t)rest, (long)((rest - (time_t)rest) * 1e9) }; nanosleep(&ts, 0); }
  }
  double cmd = now() - t0;
  qsort(lat, n, sizeof *lat, cmp);
  double max = n ? lat[n - 1] : 0, p99 = n ? lat[(size_t)((n - 1) * 0.99)] : 0, p50 = n ? lat[(n - 1) / 2] : 0;
  printf("{\"n\":%zu,\"max_ms\":%.3f,\"p99_ms\":%.3f,\"p50_ms\":%.3f,\"cmd_s\":%.3f,\"status\":%d}\n",
         n, max, p99, p50, cmd, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
