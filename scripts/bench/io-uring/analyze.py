import json, statistics as st, sys
def load(fn):
    return [json.loads(l) for l in open(fn)]
def table(rows, title):
    print(f"\n### {title}\n")
    print("| workload | transport | n | wall s median (min–max) | requests | µs wall / req | daemon CPU s median (min–max) | daemon CPU µs / req (user+sys) | client sys µs / req | io_uring status |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    keys = []
    for r in rows:
        k = (r['workload'], r['transport'])
        if k not in keys: keys.append(k)
    keys.sort(key=lambda k: (k[0], k[1]))
    med = {}
    for k in keys:
        rs = [r for r in rows if (r['workload'], r['transport']) == k]
        w = [r['wall_s'] for r in rs]; req = [r['requests'] for r in rs]
        d = [r['d_user_s'] + r['d_sys_s'] for r in rs]
        cs = [r['cli_sys_s'] for r in rs]
        mreq = st.median(req)
        med[k] = (st.median(w), st.median(d), mreq)
        rq = f"{int(mreq)}" if min(req)==max(req) else f"{int(mreq)} ({min(req)}–{max(req)})"
        stat = rs[0]['io_uring_status'][0].replace('FUSE_INIT: ','') if rs[0]['io_uring_status'] else ''
        print(f"| {k[0]} | {k[1]} | {len(rs)} | {st.median(w):.3f} ({min(w):.3f}–{max(w):.3f}) | {rq} | "
              f"{st.median(w)/mreq*1e6:.1f} | {st.median(d):.2f} ({min(d):.2f}–{max(d):.2f}) | "
              f"{st.median(d)/mreq*1e6:.1f} | {st.median(cs)/mreq*1e6:.1f} | {stat} |")
    print("\nRatios (io_uring / /dev/fuse, medians):\n")
    wl = sorted(set(k[0] for k in keys))
    for w in wl:
        ts = [k for k in keys if k[0]==w]
        if len(ts)==2:
            a, b = med[ts[0]], med[ts[1]]
            u = b if 'uring' in ts[1][1] else a; dv = a if u is b else b
            print(f"- {w}: wall {u[0]/dv[0]:.2f}x, daemon CPU {u[1]/dv[1]:.2f}x")
    # per-round paired ratios (spread of the A/B comparison)
    print("\nPer-round paired wall ratio uring/dev (min / median / max):\n")
    for w in wl:
        rat = []
        for rnd in sorted(set(r['round'] for r in rows)):
            x = {r['transport']: r['wall_s'] for r in rows if r['workload']==w and r['round']==rnd}
            if len(x)==2:
                u = [v for t,v in x.items() if 'uring' in t][0]; dv=[v for t,v in x.items() if 'uring' not in t][0]
                rat.append(u/dv)
        if rat: print(f"- {w}: {min(rat):.2f} / {st.median(rat):.2f} / {max(rat):.2f} over {len(rat)} rounds")
    l = [r['load1'] for r in rows]
    print(f"\nSystem load1 during runs: {min(l):.2f}–{max(l):.2f} (2 CPUs; another engineer's jobs were running)")
table(load('results.jsonl'), "Main run: passthrough_hp --nocache --direct-io --nopassthrough; /dev/fuse (default, splice on) vs -o io_uring; 7 interleaved rounds")
table(load('results_extra.jsonl'), "Extra run: /dev/fuse with --nosplice vs io_uring; includes 2 parallel clients pinned to CPU0/CPU1; 5 interleaved rounds")
