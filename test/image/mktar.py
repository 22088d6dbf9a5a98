#!/usr/bin/env python3
# Writes tar archives from JSON, for the tarballs GNU tar will not make (hostile names,
# whiteouts in a chosen order, pax records, odd types).
#   mktar.py OUT [truncate:N] < [entry, ...]        one archive (cut to N bytes)
#   mktar.py --batch < {OUT: {"entries": [...], "truncate": N}, ...}
# Entry: {"name", "type": file|dir|symlink|link|chardev|blockdev|fifo, "data", "linkname",
#         "mode", "uid", "gid", "mtime", "devmajor", "devminor", "pax": {key: value}}
import io, json, sys, tarfile

TYPES = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'link': tarfile.LNKTYPE,
         'chardev': tarfile.CHRTYPE, 'blockdev': tarfile.BLKTYPE, 'fifo': tarfile.FIFOTYPE}


def write(path, entries, truncate=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            ti = tarfile.TarInfo(e['name'])
            ti.type = TYPES[e.get('type', 'file')]
            data = e.get('data', '').encode()
            ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
            ti.linkname = e.get('linkname', '')
            ti.mode = e.get('mode', 0o755 if ti.type == tarfile.DIRTYPE else 0o644)
            ti.uid, ti.gid = e.get('uid', 0), e.get('gid', 0)
            ti.mtime = e.get('mtime', 1_600_000_000)
            ti.devmajor, ti.devminor = e.get('devmajor', 0), e.get('devminor', 0)
            ti.pax_headers = e.get('pax', {})
            tar.addfile(ti, io.BytesIO(data) if ti.size else None)
    out = buf.getvalue()
    if truncate is not None:
        out = out[:truncate]
    with open(path, 'wb') as f:
        f.write(out)


if sys.argv[1] == '--batch':
    for path, spec in json.load(sys.stdin).items():
        write(path, spec['entries'], spec.get('truncate'))
else:
    cut = sys.argv[2] if len(sys.argv) > 2 else ''
    write(sys.argv[1], json.load(sys.stdin), int(cut.split(':')[1]) if cut.startswith('truncate:') else None)
