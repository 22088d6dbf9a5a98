// The python prelude of the step-by-step comparison scripts: `step(name, f)` runs f and records
// [name, its value or 'ok'] or [name, the errno's name], in `out`, so that one script run on
// layerfs and on kernel overlayfs gives two lists to compare, errno for errno.
export const PY_STEPS = String.raw`
import os, errno, json
out = []
def step(name, f):
    try:
        v = f()
        out.append([name, 'ok' if v is None else v])
    except OSError as e:
        out.append([name, errno.errorcode[e.errno]])
`
