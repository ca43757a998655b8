# Runs inside a new sandbox as root (no capabilities), before any sandbox code:
# `python3 -I -S -c <this> TAG`. Reads frames from stdin: [u32 path length][path][u32 executable]
# [u32 size][bytes], ended by a zero length, and writes them under /mnt/skills (a root-owned
# tmpfs). Paths were checked by Berth; they are re-checked and opened with O_NOFOLLOW anyway.
# At the end every file and directory is made read-only: the sandbox user (not the owner) can
# read, never write, rename or delete. Exit codes: 4 no space, 5 stream cut short, 64 bad path.
import os, struct, sys

ROOT = '/mnt/skills'
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def read_exact(stream, n):
    buf = b''
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            sys.exit(5)
        buf += chunk
    return buf


def main():
    inp = sys.stdin.buffer
    count = 0
    while True:
        (n,) = struct.unpack('>I', read_exact(inp, 4))
        if n == 0:
            break
        parts = read_exact(inp, n).decode('utf-8').split('/')
        executable, size = struct.unpack('>II', read_exact(inp, 8))
        if len(parts) < 2 or any(p in ('', '.', '..') for p in parts):
            sys.exit(64)
        fd = os.open(ROOT, DIR_FLAGS)
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
        out = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
        left = size
        while left:
            chunk = inp.read(min(left, 1 << 20))
            if not chunk:
                sys.exit(5)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
            left -= len(chunk)
        os.fchmod(out, 0o555 if executable else 0o444)
        os.close(out)
        os.close(fd)
        count += 1
    for dirpath, _dirs, _files in os.walk(ROOT, topdown=False):
        os.chmod(dirpath, 0o555, follow_symlinks=False)
    sys.stdout.write('%d\n' % count)


try:
    main()
except OSError as e:
    import errno
    if e.errno == errno.ENOSPC:
        sys.exit(4)
    raise
