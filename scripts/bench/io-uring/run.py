#!/usr/bin/env python3
"""Interleaved /dev/fuse vs io_uring measurement driver (layerfs uring study).

Per round and per transport: fresh mount of passthrough_hp --nocache --direct-io
--nopassthrough over /work/uring/src, run the workloads, record wall time
(client), daemon CPU (utime+stime of the whole process from /proc/<pid>/stat,
and sum of per-thread schedstat runtime), client CPU, and the number of FUSE
requests of this connection (tracepoint fuse:fuse_request_send in a private
trace instance filtered on the connection's device minor; entries+overrun).
"""
import json, os, resource, subprocess, sys, time, signal

# The work directory: libfuse built in $W/libfuse (meson, examples on), the bench client in $W/bench,
# the source tree and file in $W/src (see native-notes/fuse-io-uring.md).
W = os.environ.get('URING_DIR', '/work/uring')
HP = f'{W}/libfuse/build/example/passthrough_hp'
SRC = f'{W}/src'
MNT = f'{W}/mnt1'
BENCH = f'{W}/bench'
T = '/sys/kernel/tracing/instances/layerfs_uring'
TICK = os.sysconf('SC_CLK_TCK')
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
EXTRA = os.environ.get('EXTRA') == '1'
OUT = sys.argv[2] if len(sys.argv) > 2 else f'{W}/results.jsonl'

WORKLOADS = [
    ('treestat_cold', ['treestat', f'{MNT}/tree']),
    ('statloop_100k', ['statloop', f'{MNT}/big', '100000']),
    ('randread_4k_100k', ['randread', f'{MNT}/big', '100000', '4096']),
    ('seqread_1m_4x256MiB', ['seqread', f'{MNT}/big', '1048576', '4']),
]

if EXTRA:
    WORKLOADS = [
        ('par2_statloop_2x50k', ['PAR2', 'statloop', f'{MNT}/big', '50000']),
        ('randread_4k_100k', ['randread', f'{MNT}/big', '100000', '4096']),
        ('seqread_1m_4x256MiB', ['seqread', f'{MNT}/big', '1048576', '4']),
    ]
    TRANSPORTS = ('dev_nosplice', 'uring')
else:
    TRANSPORTS = ('dev', 'uring')

def run_bench(cmd):
    if cmd[0] != 'PAR2':
        r = subprocess.run([BENCH] + cmd, capture_output=True, text=True)
        if r.returncode:
            print(r.stderr, file=sys.stderr); raise SystemExit('bench failed')
        return dict(x.split('=') for x in r.stdout.split())
    ps = [subprocess.Popen(['taskset', '-c', str(c), BENCH] + cmd[1:],
                           stdout=subprocess.PIPE, text=True) for c in (0, 1)]
    outs = [dict(x.split('=') for x in p.communicate()[0].split()) for p in ps]
    return dict(wall_s=max(float(o['wall_s']) for o in outs),
                ops=sum(int(o['ops']) for o in outs),
                cli_user_s=sum(float(o['cli_user_s']) for o in outs),
                cli_sys_s=sum(float(o['cli_sys_s']) for o in outs))

def wr(path, s):
    with open(path, 'w') as f:
        f.write(s)

def proc_cpu(pid):
    with open(f'/proc/{pid}/stat') as f:
        fs = f.read().rsplit(')', 1)[1].split()
    # fields after ')' start at field 3 (state); utime=14, stime=15
    ut, st = int(fs[11]), int(fs[12])
    sched = 0
    for t in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{t}/schedstat') as f:
                sched += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return ut / TICK, st / TICK, sched / 1e9

def trace_count():
    n = 0
    for c in os.listdir(f'{T}/per_cpu'):
        with open(f'{T}/per_cpu/{c}/stats') as f:
            for line in f:
                k, v = line.split(':', 1)
                if k in ('entries', 'overrun'):
                    n += int(v)
    return n

def opcode_breakdown():
    counts = {}
    with open(f'{T}/trace') as f:
        for line in f:
            if 'fuse_request_send' not in line:
                continue
            op = line.split('(')[-1].split(')')[0]
            counts[op] = counts.get(op, 0) + 1
    return counts

def mount(transport):
    args = [HP, '--foreground', '--nocache', '--direct-io', '--nopassthrough']
    if transport == 'uring':
        args += ['-o', 'io_uring']
    if transport == 'dev_nosplice':
        args += ['--nosplice']
    args += [SRC, MNT]
    env = dict(os.environ, FUSE_INIT_STATUS='1')
    log = open(f'{W}/logs/daemon_{transport}.log', 'w')
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    for _ in range(100):
        if subprocess.run(['mountpoint', '-q', MNT]).returncode == 0:
            break
        time.sleep(0.05)
    else:
        p.kill(); raise SystemExit('mount failed')
    time.sleep(0.3)
    with open(f'{W}/logs/daemon_{transport}.log') as f:
        status = [l.strip() for l in f if 'io_uring=' in l]
    return p, status

def umount(p):
    subprocess.run(['fusermount3', '-u', MNT])
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()

def run_one(rnd, transport, out, breakdown):
    p, status = mount(transport)
    dev = subprocess.run(['mountpoint', '-d', MNT], capture_output=True,
                         text=True).stdout.strip()
    minor = int(dev.split(':')[1])
    wr(f'{T}/tracing_on', '0')
    wr(f'{T}/events/fuse/fuse_request_send/filter', f'connection == {minor}')
    wr(f'{T}/events/fuse/fuse_request_send/enable', '1')
    try:
        run_workloads(rnd, transport, out, breakdown, p, status)
    finally:
        wr(f'{T}/tracing_on', '0')
        wr(f'{T}/events/fuse/fuse_request_send/enable', '0')
        umount(p)

def run_workloads(rnd, transport, out, breakdown, p, status):
    for name, cmd in WORKLOADS:
        wr(f'{T}/trace', '')  # clear buffer + counters
        wr(f'{T}/tracing_on', '1')
        load = open('/proc/loadavg').read().split()[0]
        c0 = proc_cpu(p.pid)
        kv = run_bench(cmd)
        c1 = proc_cpu(p.pid)
        wr(f'{T}/tracing_on', '0')
        rec = dict(round=rnd, transport=transport, workload=name,
                   io_uring_status=status, load1=float(load),
                   wall_s=float(kv['wall_s']), ops=int(kv['ops']),
                   cli_user_s=float(kv['cli_user_s']),
                   cli_sys_s=float(kv['cli_sys_s']),
                   d_user_s=c1[0] - c0[0], d_sys_s=c1[1] - c0[1],
                   d_sched_s=c1[2] - c0[2], requests=trace_count())
        if breakdown:
            rec['opcodes'] = opcode_breakdown()
        out.write(json.dumps(rec) + '\n'); out.flush()
        print(f"r{rnd} {transport:5s} {name:22s} wall={rec['wall_s']:.3f}s "
              f"req={rec['requests']} dcpu={rec['d_user_s']+rec['d_sys_s']:.2f}s "
              f"sched={rec['d_sched_s']:.2f}s load={load}", flush=True)

def main():
    os.makedirs(f'{W}/logs', exist_ok=True)
    os.makedirs(T, exist_ok=True)
    wr(f'{T}/buffer_size_kb', '16384')
    with open(OUT, 'a') as out:
        for rnd in range(1, ROUNDS + 1):
            for transport in TRANSPORTS:
                run_one(rnd, transport, out, breakdown=(rnd == 1))

if __name__ == '__main__':
    main()
