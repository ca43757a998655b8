# Runs inside the sandbox as the sandbox user: `python3 -I -S -c <this> TAG MODE [PATH [SOCKET]]`
# (TAG marks the process for the outside kill sweep). With SOCKET, a write or read moves its bytes
# over that Unix socket of the service's in /run/berth-files instead of stdin or stdout.
# Every path is opened one component at a time from /mnt/data with O_NOFOLLOW, so no symlink
# anywhere in a path is ever followed. Exit codes: 2 missing, 3 not a regular file or a link,
# 4 no space, 5 upload not completed, 64 bad arguments, 75 the socket can't be reached (the
# sandbox predates the channel: the service falls back to stdio).
import errno, os, stat, struct, sys

ROOT = '/mnt/data'
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
TEMP_PREFIX = '.berth-upload-'
LIST_LIMIT = 10000
CHANNEL_DIR = '/run/berth-files'


def channel(name):
    import socket
    if len(name) != 37 or not name.endswith('.sock') or name[:32].strip('0123456789abcdef'):
        sys.exit(64)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(CHANNEL_DIR + '/' + name)
    except OSError:
        sys.exit(75)
    return s


def parent(rel, create):
    parts = [p for p in rel.split('/') if p]
    if not parts or any(p in ('.', '..') for p in parts):
        sys.exit(64)
    fd = os.open(ROOT, DIR_FLAGS)
    for part in parts[:-1]:
        try:
            nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(part, 0o755, dir_fd=fd)
            nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
        os.close(fd)
        fd = nfd
    return fd, parts[-1]


# The exec's pipes hold 64 KiB: a pipe of 1 MiB (the unprivileged maximum) lets each side move
# a frame in one wake-up instead of sixteen. A kernel that refuses keeps the default.
F_SETPIPE_SZ = 1031
CHUNK = 1 << 20


def widen(fd):
    import fcntl
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, CHUNK)
    except OSError:
        pass


def unnamed(fd):
    # A file with no name in the target directory (O_TMPFILE): a helper killed mid-upload leaves
    # nothing behind, the kernel frees it with the process. None where the filesystem can't.
    try:
        return os.open('.', os.O_TMPFILE | os.O_WRONLY, 0o644, dir_fd=fd)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None
        raise


def link(out, fd, name, tmp):
    # The complete file gets its name: straight away when nothing has it (True), else under the
    # temporary name, to be renamed over what is there (False).
    src = '/proc/self/fd/%d' % out
    try:
        os.link(src, name, dst_dir_fd=fd)
        return True
    except FileExistsError:
        os.link(src, tmp, dst_dir_fd=fd)
        return False


def write(rel, sock=None):
    # Connected first: the service waits for the connection before it sends anything.
    conn = channel(sock) if sock else None
    src = conn.fileno() if conn else 0
    fd, name = parent(rel, True)
    tmp = TEMP_PREFIX + str(os.getpid())
    out = unnamed(fd)
    named = out is None
    if named:
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
    done = False
    committed = False
    total = 0
    try:
        if not conn:
            widen(0)
        # Frames are [u32 length][bytes], a zero length ends the upload: read into one buffer
        # (no object per read) and written from it; stdin's end before the zero frame is a failure.
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        start = end = 0
        need = 0
        header = b''
        while True:
            if start == end:
                start, end = 0, os.readv(src, [buf])
                if not end:
                    break
            if need:
                k = min(need, end - start)
                chunk = view[start:start + k]
                while chunk:
                    chunk = chunk[os.write(out, chunk):]
                start += k
                need -= k
                total += k
                continue
            take = min(4 - len(header), end - start)
            header += view[start:start + take]
            start += take
            if len(header) == 4:
                need = struct.unpack('>I', header)[0]
                header = b''
                if need == 0:
                    done = True
                    break
        if done:
            if not named:
                committed = link(out, fd, name, tmp)
                named = not committed
            if not committed:
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
                committed = True
            sys.stdout.write('%d\n' % total)
    finally:
        os.close(out)
        # Incomplete, or refused its name (a directory in the way): the temporary name goes.
        if named and not committed:
            try:
                os.unlink(tmp, dir_fd=fd)
            except FileNotFoundError:
                pass
    if not done:
        sys.exit(5)


def read(rel, sock=None):
    fd, name = parent(rel, False)
    # O_NONBLOCK: a FIFO swapped in by the sandbox must not hang the open; fstat refuses it below.
    f = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    st = os.fstat(f)
    if not stat.S_ISREG(st.st_mode):
        sys.exit(3)
    # A missing or unusable file has exited above without connecting: the service hears the code.
    conn = channel(sock) if sock else None
    dst = conn.fileno() if conn else 1
    header = b'%d\n' % st.st_size
    if conn:
        conn.sendall(header)
    else:
        out = sys.stdout.buffer
        out.write(header)
        out.flush()
        widen(1)
    # The file's pages go into the pipe without passing through here (sendfile); no more than the
    # size just announced, even if the file grows meanwhile. A short file ends the loop.
    left = st.st_size
    try:
        while left:
            n = os.sendfile(dst, f, None, min(left, CHUNK))
            if not n:
                return
            left -= n
    except OSError as e:
        # stdout is not something sendfile writes to (it is a pipe here, unless that changes).
        if e.errno not in (errno.EINVAL, errno.ENOSYS):
            raise
    while left:
        chunk = os.read(f, min(left, CHUNK))
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]
        left -= len(chunk)


def listing():
    out = sys.stdout.buffer
    count = 0

    def walk(fd, prefix, depth):
        nonlocal count
        with os.scandir(fd) as entries:
            for e in entries:
                if count >= LIST_LIMIT:
                    return
                if e.name.startswith(TEMP_PREFIX) or e.is_symlink():
                    continue
                if e.is_dir(follow_symlinks=False):
                    if depth < 32:
                        sub = os.open(e.name, DIR_FLAGS, dir_fd=fd)
                        try:
                            walk(sub, prefix + e.name + '/', depth + 1)
                        finally:
                            os.close(sub)
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    out.write(os.fsencode(prefix + e.name) + b'\0' + str(st.st_size).encode() + b'\0'
                              + str(st.st_mtime_ns // 1000000).encode() + b'\0')
                    count += 1

    walk(os.open(ROOT, DIR_FLAGS), '', 0)
    out.flush()


def remove(rel):
    fd, name = parent(rel, False)
    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        sys.exit(3)
    os.unlink(name, dir_fd=fd)


def main():
    args = sys.argv[2:]
    mode = args[0] if args else ''
    try:
        if mode == 'write' and len(args) in (2, 3):
            write(*args[1:])
        elif mode == 'read' and len(args) in (2, 3):
            read(*args[1:])
        elif mode == 'list':
            listing()
        elif mode == 'remove' and len(args) == 2:
            remove(args[1])
        else:
            sys.exit(64)
    except FileNotFoundError:
        sys.exit(2)
    except (OSError, IsADirectoryError) as e:
        if e.errno == errno.ENOSPC:
            sys.exit(4)
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY,
                       errno.EACCES, errno.EPERM, errno.ENAMETOOLONG):
            sys.exit(3)
        raise


main()
