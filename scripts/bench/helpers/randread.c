// randread FILE COUNT SEED: COUNT preads of 4 KiB at random 4 KiB-aligned offsets (xorshift, seeded).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/stat.h>
int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: randread FILE COUNT SEED\n"); return 2; }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) { perror(argv[1]); return 2; }
  struct stat st;
  fstat(fd, &st);
  uint64_t blocks = st.st_size / 4096, x = strtoull(argv[3], 0, 10) * 2654435761u + 88172645463325252ull;
  long count = atol(argv[2]);
  char buf[4096];
  for (long i = 0; i < count; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    if (pread(fd, buf, 4096, (off_t)(x % blocks) * 4096) != 4096) { perror("pread"); return 1; }
  }
  return 0;
}
