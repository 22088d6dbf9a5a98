#!/usr/bin/env python3
# Lists the layers of a `podman image save --format docker-archive` tarball, one canonical line
# per tar entry, sorted within each layer: what a registry would get, whiteouts (.wh.*) and
# opaque markers (.wh..wh..opq) included.
#   image-layers.py IMAGE.tar T0
# Line: L<i> <path> <type> <mode> <uid>:<gid> <size> <mtime> <content> [xattrs]
#   content: sha256 (16 hex) of a file, '-> target' of a symlink or hard link, major:minor.
#   mtime: the entry's mtime when it is older than T0 (made before the scenario ran: kept
#   from the base image or set on purpose), else 'new'.
import hashlib
import json
import sys
import tarfile

KINDS = {
    tarfile.REGTYPE: 'file', tarfile.AREGTYPE: 'file', tarfile.DIRTYPE: 'dir', tarfile.SYMTYPE: 'symlink',
    tarfile.LNKTYPE: 'hardlink', tarfile.FIFOTYPE: 'fifo', tarfile.CHRTYPE: 'chardev', tarfile.BLKTYPE: 'blockdev',
}


def entries(f, t0):
    out = []
    with tarfile.open(fileobj=f, mode='r:*') as t:
        for m in t:
            kind = KINDS.get(m.type, 'type-' + repr(m.type))
            if m.isfile():
                content = hashlib.sha256(t.extractfile(m).read()).hexdigest()[:16]
            elif m.issym() or m.islnk():
                content = '-> ' + m.linkname
            elif m.ischr() or m.isblk():
                content = f'{m.devmajor}:{m.devminor}'
            else:
                content = '-'
            mtime = int(m.mtime) if m.mtime < t0 else 'new'
            xattrs = ' '.join(f'{k[len("SCHILY.xattr."):]}={v.encode("utf-8", "surrogateescape").hex()}'
                              for k, v in sorted(m.pax_headers.items()) if k.startswith('SCHILY.xattr.'))
            name = m.name.rstrip('/') or '.'
            size = str(m.size) if m.isfile() else '-'
            out.append(f'{name} {kind} {m.mode:o} {m.uid}:{m.gid} {size} {mtime} {content}' + (f' {xattrs}' if xattrs else ''))
    return sorted(out)


def main():
    path, t0 = sys.argv[1], int(sys.argv[2])
    with tarfile.open(path) as img:
        manifest = json.load(img.extractfile('manifest.json'))
        for i, layer in enumerate(manifest[0]['Layers']):
            for e in entries(img.extractfile(layer), t0):
                print(f'L{i} {e}')


main()
