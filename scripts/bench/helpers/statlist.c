// statlist ROOT LIST: lstat(ROOT/line) for every line of LIST. Prints how many failed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: statlist ROOT LIST\n"); return 2; }
  FILE *f = fopen(argv[2], "r");
  if (!f) { perror(argv[2]); return 2; }
  char line[8192], path[8192 + 4096];
  long n = 0, bad = 0;
  struct stat st;
  while (fgets(line, sizeof line, f)) {
    size_t l = strlen(line);
    if (l && line[l - 1] == '\n') line[--l] = 0;
    snprintf(path, sizeof path, "%s/%s", argv[1], line);
    if (lstat(path, &st) != 0) bad++;
    n++;
  }
  if (bad) { fprintf(stderr, "statlist: %ld of %ld failed\n", bad, n); return 1; }
  return 0;
}
