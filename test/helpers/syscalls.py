#!/usr/bin/env python3
# Runs a list of syscalls (JSON on stdin) in its cwd and prints one JSON result per op:
# {"ok": true, "value": ...} or {"errno": "ENOENT"}. Exact errno from the real syscall, which
# is what the scenario stories compare between layerfs and the kernel. Paths are used as given
# (relative to cwd). Open fds can be kept under a name ("as") for later ops.
import ctypes, errno, json, mmap, os, stat, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
libc.syscall.restype = ctypes.c_long
SYS_GETDENTS64 = {"x86_64": 217, "aarch64": 61}.get(os.uname().machine)
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
STATX_BTIME = 0x800
libc.statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p]
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(Timespec), ctypes.c_int]

def timespec_of(v):
    # "now", "omit", or nanoseconds since the epoch (a decimal string or an int; negative before 1970).
    if v == "now":
        return Timespec(0, UTIME_NOW)
    if v == "omit":
        return Timespec(0, UTIME_OMIT)
    sec, nsec = divmod(int(v), 10**9)
    return Timespec(sec, nsec)
RENAME_FLAGS = {"NOREPLACE": 1, "EXCHANGE": 2, "WHITEOUT": 4}
FALLOC_FLAGS = {"KEEP_SIZE": 1, "PUNCH_HOLE": 2, "COLLAPSE_RANGE": 8, "ZERO_RANGE": 16, "INSERT_RANGE": 32}
SEEK_WHENCE = {"SET": os.SEEK_SET, "CUR": os.SEEK_CUR, "END": os.SEEK_END, "DATA": os.SEEK_DATA, "HOLE": os.SEEK_HOLE}
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]

class Fds(dict):
    # An fd name that an earlier op failed to open: EBADF, as using a closed fd would be.
    def __missing__(self, key):
        raise OSError(errno.EBADF, "no open fd named %s" % key)

fds = Fds()

def checked(r):
    # A libc call's result through ctypes: a negative one raises its errno, as os.* calls do.
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r

def bits_of(names, table):
    # "A|B" (names of a table's flags; "" for none) as one number.
    v = 0
    for f in names.split("|"):
        if f:
            v |= table[f]
    return v

def fd_of(op):
    # op["fd"]: a name an earlier op kept, or an fd number (within a self-contained op).
    return op["fd"] if isinstance(op["fd"], int) else fds[op["fd"]]

def flags_of(s):
    v = 0
    for f in s.split("|"):
        v |= getattr(os, f.strip())
    return v

TYPES = [(stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "chardev"),
         (stat.S_ISBLK, "blockdev"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket")]

def describe(st, fields):
    out = {}
    for f in fields:
        if f == "type":
            out[f] = next(n for p, n in TYPES if p(st.st_mode))
        elif f == "mode":
            out[f] = oct(stat.S_IMODE(st.st_mode))
        elif f == "rdev":
            out[f] = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
        elif f in ("atime_ns", "mtime_ns", "ctime_ns"):
            out[f] = str(getattr(st, "st_" + f))
        else:
            out[f] = getattr(st, "st_" + f)
    return out

DEFAULT_FIELDS = ["type", "mode", "uid", "gid", "size", "nlink"]

def content(data, op):
    # File content as text; with "digest": N, content longer than N bytes as {len, sha256} instead.
    if "digest" in op and len(data) > op["digest"]:
        import hashlib
        return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return data.decode("utf-8", "replace")

def do(op):
    name = op["op"]
    p = op.get("path")
    if name == "open":
        fd = os.open(p, flags_of(op.get("flags", "O_RDONLY")), op.get("mode", 0o644))
        if "as" in op:
            fds[op["as"]] = fd
        else:
            os.close(fd)
        return None
    if name == "close":
        os.close(fds[op["fd"]])
        del fds[op["fd"]]
        return None
    if name == "write":
        return os.write(fds[op["fd"]], op["data"].encode())
    if name == "pwrite":
        return os.pwrite(fds[op["fd"]], op["data"].encode(), op["offset"])
    if name == "btime":
        # statx(2) asking for the birth time, of "path" (not following a last symlink) or of
        # open fd "fd" (AT_EMPTY_PATH): [sec, nsec], or None where none is known.
        buf = ctypes.create_string_buffer(256)
        if "fd" in op:
            checked(libc.statx(fds[op["fd"]], b"", AT_EMPTY_PATH, STATX_BTIME, buf))
        else:
            checked(libc.statx(AT_FDCWD, os.fsencode(p), AT_SYMLINK_NOFOLLOW, STATX_BTIME, buf))
        mask = int.from_bytes(buf.raw[0:4], "little")
        if not mask & STATX_BTIME:
            return None
        return [int.from_bytes(buf.raw[80:88], "little", signed=True), int.from_bytes(buf.raw[88:92], "little")]
    if name == "mmapwrite":
        # data written through a MAP_SHARED mapping of the open file at "offset", then msync
        data = op["data"].encode()
        start = op.get("offset", 0)
        base = start - start % mmap.ALLOCATIONGRANULARITY
        with mmap.mmap(fds[op["fd"]], start - base + len(data), offset=base) as m:
            m[start - base:start - base + len(data)] = data
            m.flush()
        return None
    if name == "read":
        return os.pread(fds[op["fd"]], op.get("size", 1 << 20), op.get("offset", 0)).decode("utf-8", "replace")
    if name == "lseek":
        # whence: SET, CUR, END, DATA or HOLE
        return os.lseek(fds[op["fd"]], op.get("offset", 0), SEEK_WHENCE[op["whence"]])
    if name == "fallocate":
        # mode: "|"-separated FALLOC_FL_ names without the prefix ("" for the default mode)
        checked(libc.fallocate(fd_of(op), bits_of(op.get("mode", ""), FALLOC_FLAGS), op.get("offset", 0), op["length"]))
        return None
    if name == "copy_file_range":
        # from fd "fd" (at "offset_in") to fd "to" (at "offset_out"): bytes copied
        return os.copy_file_range(fds[op["fd"]], fds[op["to"]], op["length"], op.get("offset_in"), op.get("offset_out"))
    if name == "extents":
        # Where an open file has data: (start, end) pairs found with SEEK_DATA and SEEK_HOLE.
        fd = fds[op["fd"]]
        out, pos = [], 0
        while True:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    return out
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append([start, end])
            pos = end
    if name == "linkfd":
        # linkat(2) of an open fd to "to": through /proc/self/fd/N (AT_SYMLINK_FOLLOW), or with
        # "empty": true as linkat(fd, "", AT_EMPTY_PATH) (CAP_DAC_READ_SEARCH).
        fd = fd_of(op)
        if op.get("empty"):
            checked(libc.linkat(fd, b"", AT_FDCWD, op["to"].encode(), 0x1000))
            return None
        return os.link("/proc/self/fd/%d" % fd, op["to"], follow_symlinks=True)
    if name == "fstat":
        return describe(os.fstat(fds[op["fd"]]), op.get("fields", DEFAULT_FIELDS))
    if name == "fsync":
        return os.fsync(fds[op["fd"]])
    if name == "ftruncate":
        return os.ftruncate(fds[op["fd"]], op["length"])
    if name == "fchmod":
        return os.fchmod(fds[op["fd"]], op["mode"])
    if name == "fchown":
        return os.fchown(fds[op["fd"]], op["uid"], op["gid"])
    if name == "futimens":
        return os.utime(fds[op["fd"]], ns=(int(op["atime_ns"]), int(op["mtime_ns"])))
    if name == "fsetxattr":
        return os.setxattr(fds[op["fd"]], op["name"], op["value"].encode(), op.get("flags", 0))
    if name == "fgetxattr":
        return os.getxattr(fds[op["fd"]], op["name"]).decode("utf-8", "replace")
    if name == "flistxattr":
        return sorted(os.listxattr(fds[op["fd"]]))
    if name == "fremovexattr":
        return os.removexattr(fds[op["fd"]], op["name"])
    if name == "flistdir":
        # readdir(3) of an open directory (glibc reads a removed one's ENOENT as the end).
        return sorted(os.listdir(fds[op["fd"]]))
    if name == "getdents":
        # getdents64(2) itself, from the start: the names, sorted, or its errno.
        fd = fds[op["fd"]]
        os.lseek(fd, 0, os.SEEK_SET)
        buf = ctypes.create_string_buffer(1 << 16)
        names = []
        while True:
            n = checked(libc.syscall(SYS_GETDENTS64, fd, buf, len(buf)))
            if n == 0:
                return sorted(names)
            pos = 0
            while pos < n:
                reclen = int.from_bytes(buf.raw[pos + 16:pos + 18], "little")
                names.append(buf.raw[pos + 19:pos + reclen].split(b"\0", 1)[0].decode("utf-8", "replace"))
                pos += reclen
    if name == "openat":
        # open(path, flags) relative to an open directory, then close.
        return os.close(os.open(p, flags_of(op.get("flags", "O_RDONLY")), op.get("mode", 0o644), dir_fd=fds[op["fd"]]))
    if name == "mkdirat":
        return os.mkdir(p, op.get("mode", 0o755), dir_fd=fds[op["fd"]])
    if name == "reopen":
        # open(/proc/self/fd/N): the object behind an open fd, opened again (kept "as").
        fds[op["as"]] = os.open("/proc/self/fd/%d" % fds[op["fd"]], flags_of(op.get("flags", "O_RDONLY")))
        return None
    if name == "fchdir":
        return os.fchdir(fds[op["fd"]])
    if name == "readfile":
        with open(p, "rb") as f:
            return content(f.read(), op)
    if name == "preadfile":
        # open O_RDONLY, pread(size at offset), close: one self-contained op.
        fd = os.open(p, os.O_RDONLY)
        try:
            return content(os.pread(fd, op.get("size", 1 << 20), op.get("offset", 0)), op)
        finally:
            os.close(fd)
    if name == "pwritefile":
        # open(flags, mode), then pwrite at "offset" (or write(2) when no offset: O_APPEND), close.
        # One self-contained op, so that an op list stays valid when ops are dropped from it.
        fd = os.open(p, flags_of(op.get("flags", "O_WRONLY")), op.get("mode", 0o644))
        try:
            data = op["data"].encode()
            return os.pwrite(fd, data, op["offset"]) if "offset" in op else os.write(fd, data)
        finally:
            os.close(fd)
    if name == "fallocatefile":
        # open(flags), fallocate(mode, offset, length), close: self-contained, as pwritefile.
        fd = os.open(p, flags_of(op.get("flags", "O_WRONLY")))
        try:
            return do({"op": "fallocate", "fd": fd, "mode": op.get("mode", ""), "offset": op.get("offset", 0), "length": op["length"]})
        finally:
            os.close(fd)
    if name == "twofd":
        # Two opens of one path held at once ("first", "second": flags), then "steps" on either
        # ("fd": "a" or "b"; "do": pwrite, read, ftruncate, mmapwrite or size), then both closed:
        # what one open sees of what the other did, across a copy-up made by the second open.
        # Self-contained, as pwritefile. Each step gives its value or its errno name; an open
        # that fails ends the op with "a: ERRNO" or "b: ERRNO".
        opened = {}
        try:
            for key, flags in (("a", op["first"]), ("b", op["second"])):
                try:
                    opened[key] = os.open(p, flags_of(flags))
                except OSError as e:
                    return "%s: %s" % (key, errno.errorcode.get(e.errno, str(e.errno)))
            out = []
            for st in op["steps"]:
                fd = opened[st["fd"]]
                try:
                    if st["do"] == "pwrite":
                        out.append(os.pwrite(fd, st["data"].encode(), st.get("offset", 0)))
                    elif st["do"] == "read":
                        out.append(content(os.pread(fd, 1 << 20, st.get("offset", 0)), {"digest": 256}))
                    elif st["do"] == "ftruncate":
                        os.ftruncate(fd, st["length"])
                        out.append("ok")
                    elif st["do"] == "size":
                        out.append(os.fstat(fd).st_size)
                    elif st["do"] == "mmapwrite":
                        # Within the file only (a store past its end is SIGBUS).
                        data = st["data"].encode()
                        if os.fstat(fd).st_size < len(data):
                            out.append("short")
                        else:
                            with mmap.mmap(fd, len(data)) as m:
                                m[0:len(data)] = data
                                m.flush()
                            out.append("ok")
                except OSError as e:
                    out.append(errno.errorcode.get(e.errno, str(e.errno)))
            return out
        finally:
            for fd in opened.values():
                os.close(fd)
    if name == "tmpfilein":
        # open(dir, O_TMPFILE|O_RDWR, mode), write, fstat, a link of it (linkfd: through /proc,
        # or with "empty" by AT_EMPTY_PATH; its errno, or "ok"), close: self-contained.
        fd = os.open(p, os.O_TMPFILE | os.O_RDWR, op.get("mode", 0o644))
        try:
            os.write(fd, op.get("data", "").encode())
            st = describe(os.fstat(fd), op.get("fields", DEFAULT_FIELDS))
            try:
                do({"op": "linkfd", "fd": fd, "to": op["to"], "empty": op.get("empty", False)})
                linked = "ok"
            except OSError as e:
                linked = errno.errorcode.get(e.errno, str(e.errno))
            return {"stat": st, "link": linked}
        finally:
            os.close(fd)
    if name == "writefile":
        fd = os.open(p, flags_of(op.get("flags", "O_WRONLY|O_CREAT|O_TRUNC")), op.get("mode", 0o644))
        try:
            os.write(fd, op["data"].encode())
        finally:
            os.close(fd)
        return None
    if name == "stat":
        return describe(os.stat(p), op.get("fields", DEFAULT_FIELDS))
    if name == "lstat":
        return describe(os.lstat(p), op.get("fields", DEFAULT_FIELDS))
    if name == "access":
        return os.access(p, op.get("mode", os.F_OK))
    if name == "unlink":
        return os.unlink(p)
    if name == "rmdir":
        return os.rmdir(p)
    if name == "mkdir":
        return os.mkdir(p, op.get("mode", 0o755))
    if name == "rename":
        if op.get("probe"):
            # Also says whether the target existed just before (rename replaced something).
            try:
                os.lstat(op["to"])
                existed = True
            except OSError:
                existed = False
            os.rename(p, op["to"])
            return {"replaced": existed}
        return os.rename(p, op["to"])
    if name == "renameat2":
        checked(libc.renameat2(AT_FDCWD, p.encode(), AT_FDCWD, op["to"].encode(), bits_of(op.get("flags", ""), RENAME_FLAGS)))
        return None
    if name == "link":
        return os.link(p, op["to"])
    if name == "symlink":
        return os.symlink(op["target"], p)
    if name == "readlink":
        return os.readlink(p)
    if name == "truncate":
        return os.truncate(p, op.get("length", 0))
    if name == "chmod":
        return os.chmod(p, op["mode"], follow_symlinks=op.get("follow", True))
    if name == "chown":
        return os.chown(p, op["uid"], op["gid"], follow_symlinks=op.get("follow", True))
    if name == "utime":
        return os.utime(p, ns=(int(op["atime_ns"]), int(op["mtime_ns"])), follow_symlinks=op.get("follow", True))
    if name == "utimensat":
        # atime/mtime: "now", "omit" or ns since the epoch; follow=False is AT_SYMLINK_NOFOLLOW.
        ts = (Timespec * 2)(timespec_of(op.get("atime", "now")), timespec_of(op.get("mtime", "now")))
        checked(libc.utimensat(AT_FDCWD, p.encode(), ts, 0 if op.get("follow", True) else AT_SYMLINK_NOFOLLOW))
        return None
    if name == "setxattr":
        return os.setxattr(p, op["name"], op["value"].encode(), op.get("flags", 0), follow_symlinks=op.get("follow", True))
    if name == "getxattr":
        return os.getxattr(p, op["name"], follow_symlinks=op.get("follow", True)).decode("utf-8", "replace")
    if name == "removexattr":
        return os.removexattr(p, op["name"], follow_symlinks=op.get("follow", True))
    if name == "listxattr":
        return sorted(os.listxattr(p, follow_symlinks=op.get("follow", True)))
    if name == "mknod":
        kind = {"chr": stat.S_IFCHR, "blk": stat.S_IFBLK, "fifo": stat.S_IFIFO, "reg": stat.S_IFREG, "sock": stat.S_IFSOCK}[op.get("kind", "chr")]
        return os.mknod(p, kind | op.get("mode", 0o644), os.makedev(op.get("major", 0), op.get("minor", 0)))
    if name == "mkfifo":
        return os.mkfifo(p, op.get("mode", 0o644))
    if name == "readdir":
        # Raw order and every entry as the kernel gives it (duplicates would show), with d_ino.
        out = []
        with os.scandir(p or ".") as it:
            for e in it:
                out.append({"name": e.name, "d_ino": e.inode(), "type": ("dir" if e.is_dir(follow_symlinks=False) else "symlink" if e.is_symlink() else "file" if e.is_file(follow_symlinks=False) else "other")})
        if op.get("stat"):
            # With "stat": each entry's st_ino from an lstat right after the listing (d_ino == st_ino checks).
            for ent in out:
                try:
                    ent["ino"] = os.lstat(os.path.join(p or ".", ent["name"])).st_ino
                except OSError as e:
                    ent["lstat"] = errno.errorcode.get(e.errno, str(e.errno))
        return out
    if name == "listdir":
        return sorted(os.listdir(p or "."))
    if name == "statvfs":
        s = os.statvfs(p or ".")
        return {"bsize": s.f_bsize, "blocks": s.f_blocks, "namemax": s.f_namemax, "flag": s.f_flag}
    if name == "chdir":
        return os.chdir(p)
    raise ValueError("unknown op " + name)

results = []
for op in json.load(sys.stdin):
    try:
        v = do(op)
        results.append({"ok": True} if v is None else {"ok": True, "value": v})
    except OSError as e:
        results.append({"errno": errno.errorcode.get(e.errno, str(e.errno))})
json.dump(results, sys.stdout)
