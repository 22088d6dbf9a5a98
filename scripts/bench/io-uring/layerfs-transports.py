#!/usr/bin/env python3
"""layerfs's two FUSE transports, measured on layerfs itself: requests read from /dev/fuse (the
default) against requests over io_uring (LAYERFS_FUSE_URING=1). Same layers, same workloads,
the transports interleaved, fresh mounts each round; medians.

  scripts/bench/io-uring/layerfs-transports.py [ROUNDS] [DIR]

DIR (default /tmp/layerfs-transports) gets an ext4 image holding the layers, mounted on a loop
device while the script runs.
Needs root (mount, loop device, the fuse module's enable_uring, which it turns on and restores).
Workloads (each request a round trip to the daemon; none is cached by the kernel):
  getxattr  N getxattr(2) of user.none on a lower file: ENODATA, answered by JS
  read-4k   N O_DIRECT 4 KiB preads at random offsets of a 64 MiB lower file: READ, answered in C
  lookup    a stat of each of N new names (negative lookups): LOOKUP, answered by JS
  ... x2    the same from two processes at once (per call: wall time over 2N calls)
Prints a table: wall µs per call and daemon CPU µs per call, per transport, and their ratio.
"""
import os, random, statistics, subprocess, sys, time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
DIR = sys.argv[2] if len(sys.argv) > 2 else '/tmp/layerfs-transports'
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '../../..'))
BIN = os.path.join(ROOT, 'bin/layerfs')
PARAM = '/sys/module/fuse/parameters/enable_uring'
TICK = os.sysconf('SC_CLK_TCK')
N = 20000


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def setup():
    os.makedirs(DIR, exist_ok=True)
    img, disk = f'{DIR}/disk.img', f'{DIR}/disk'
    os.makedirs(disk, exist_ok=True)
    if not os.path.ismount(disk):
        if not os.path.exists(img):
            sh('truncate', '-s', '512M', img)
            sh('mkfs.ext4', '-q', '-F', img)
        sh('mount', '-o', 'loop', img, disk)
    lower = f'{disk}/lower'
    if not os.path.exists(f'{lower}/big'):
        os.makedirs(lower, exist_ok=True)
        with open(f'{lower}/big', 'wb') as f:
            f.write(random.Random(1).randbytes(64 << 20))
        with open(f'{lower}/small', 'w') as f:
            f.write('x\n')
    return disk, lower


def mount(disk, lower, uring):
    for d in ('upper', 'work'):
        sh('rm', '-rf', f'{disk}/{d}')
        os.makedirs(f'{disk}/{d}')
    mnt = f'{DIR}/mnt'
    os.makedirs(mnt, exist_ok=True)
    env = dict(os.environ, LAYERFS_FUSE_URING='1' if uring else '0', DEBUG='layerfs:fuse')
    log = f'{DIR}/daemon.log'
    with open(log, 'w') as err:
        p = subprocess.Popen([BIN, 'mount', '-f', '-o', f'lowerdir={lower},upperdir={disk}/upper,workdir={disk}/work', mnt],
                             env=env, stderr=err, stdout=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.ismount(mnt):
            break
        time.sleep(0.05)
    else:
        p.kill()
        sys.exit('the mount did not come up: ' + open(log).read())
    time.sleep(0.2)
    return mnt, p.pid, open(log).read()


def cpu(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def getxattr(mnt):
    p = f'{mnt}/small'
    for _ in range(N):
        try:
            os.getxattr(p, 'user.none')
        except OSError:
            pass


def read4k(mnt):
    fd = os.open(f'{mnt}/big', os.O_RDONLY | os.O_DIRECT)
    import mmap
    buf = mmap.mmap(-1, 4096)
    rnd = random.Random(7)
    try:
        for _ in range(N):
            os.preadv(fd, [buf], rnd.randrange(0, (64 << 20) // 4096) * 4096)
    finally:
        os.close(fd)


def lookup(mnt):
    for i in range(N):
        try:
            os.stat(f'{mnt}/none-{i}')
        except FileNotFoundError:
            pass


def two(fn):
    # Two clients at once (N calls each, counted as 2N): requests of two CPUs in flight together.
    def run(mnt):
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                try:
                    fn(mnt)
                finally:
                    os._exit(0)
            pids.append(pid)
        for pid in pids:
            os.waitpid(pid, 0)
    return run


WORKLOADS = [('getxattr', getxattr), ('read-4k', read4k), ('lookup', lookup),
             ('getxattr x2', two(getxattr)), ('read-4k x2', two(read4k))]
CALLS = {'getxattr x2': 2 * N, 'read-4k x2': 2 * N}


def main():
    disk, lower = setup()
    was = open(PARAM).read().strip() if os.path.exists(PARAM) else None
    if was is None:
        sys.exit('this kernel has no FUSE over io_uring (no ' + PARAM + ')')
    with open(PARAM, 'w') as f:
        f.write('Y')
    res = {}
    try:
        for r in range(ROUNDS):
            for uring in ((False, True) if r % 2 == 0 else (True, False)):
                mnt, pid, log = mount(disk, lower, uring)
                try:
                    if ('io_uring on' in log) != uring:
                        sys.exit(f'transport not as asked (uring={uring}): {log}')
                    for name, fn in WORKLOADS:
                        c0, t0 = cpu(pid), time.perf_counter()
                        fn(mnt)
                        t1, c1 = time.perf_counter(), cpu(pid)
                        n = CALLS.get(name, N)
                        res.setdefault((name, uring), []).append(((t1 - t0) / n * 1e6, (c1 - c0) / n * 1e6))
                finally:
                    sh('fusermount', '-u', mnt)
                    for _ in range(50):
                        if not os.path.exists(f'/proc/{pid}'):
                            break
                        time.sleep(0.1)
    finally:
        with open(PARAM, 'w') as f:
            f.write(was)
        # The image stays for the next run; nothing stays mounted.
        subprocess.run(['umount', disk])
    print(f'{ROUNDS} rounds, {N} calls a workload, medians (µs per call)')
    print('| workload | /dev/fuse wall | io_uring wall | ratio | /dev/fuse daemon CPU | io_uring daemon CPU |')
    print('|---|---:|---:|---:|---:|---:|')
    for name, _ in WORKLOADS:
        d, u = res[(name, False)], res[(name, True)]
        dw, uw = statistics.median(x[0] for x in d), statistics.median(x[0] for x in u)
        dc, uc = statistics.median(x[1] for x in d), statistics.median(x[1] for x in u)
        print(f'| {name} | {dw:.1f} | {uw:.1f} | {uw / dw:.2f} | {dc:.1f} | {uc:.1f} |')


if __name__ == '__main__':
    main()
