// mkfiles DIR COUNT: mkdir DIR, then COUNT files of 100 bytes (open O_CREAT|O_EXCL, write, close),
// 100 per subdirectory.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: mkfiles DIR COUNT\n"); return 2; }
  long count = atol(argv[2]);
  char data[100], path[8192];
  memset(data, 'x', sizeof data);
  if (mkdir(argv[1], 0755) && errno != EEXIST) { perror(argv[1]); return 1; }
  for (long i = 0; i < count; i++) {
    if (i % 100 == 0) {
      snprintf(path, sizeof path, "%s/d%04ld", argv[1], i / 100);
      if (mkdir(path, 0755)) { perror(path); return 1; }
    }
    snprintf(path, sizeof path, "%s/d%04ld/f%06ld.txt", argv[1], i / 100, i);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) { perror(path); return 1; }
    if (write(fd, data, sizeof data) != sizeof data) { perror("write"); return 1; }
    close(fd);
  }
  return 0;
}
