# The exec supervisor, run inside the sandbox as the sandbox user by `docker exec`:
#   python3 -I -S -c <this> run  TAG TIMEOUT_MS WORKDIR -- ARGV...
#   python3 -I -S -c <this> kill TAG
# `run` becomes a child subreaper, enters WORKDIR (relative to /mnt/data, opened one component at a
# time with O_NOFOLLOW, so no symlink is followed), and runs ARGV as its child. Every process the
# command starts stays below it, even after setsid or a double fork: orphans are reparented to the
# nearest subreaper. When the command exits, or at TIMEOUT_MS, the whole tree is killed, so an exec
# never leaves processes behind. Exit status: the command's (128+N when killed by signal N), 137 at
# the timeout, 125 when WORKDIR is unusable, 127/126 when ARGV can't be run.
# `kill` is the outside backstop, for when the supervisor itself was stopped or killed by the code
# it runs: it kills the tree of every process tagged TAG, and every process of this uid that was
# orphaned to PID 1 (where escaped descendants of a dead supervisor land), except the sandbox's
# own first process.
import ctypes, os, signal, sys, time

ROOT = '/mnt/data'
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def processes():
    """pid -> (ppid, starttime) for every process we can see."""
    out = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, 'rb') as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b')') + 2:].split()
        out[int(name)] = (int(fields[1]), int(fields[19]))
    return out


def descendants(roots, procs):
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def reap():
    """Collects every child that has exited; pid -> wait status."""
    done = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done[pid] = status


def kill_tree(me):
    # A process may fork while we kill: repeat until a pass finds nothing below us.
    for _ in range(200):
        below = descendants([me], processes())
        if not below:
            return
        kill_all(below)
        reap()
        time.sleep(0.002)


def enter_workdir(rel):
    fd = os.open(ROOT, DIR_FLAGS)
    for part in [p for p in rel.split('/') if p]:
        if part in ('.', '..'):
            raise OSError('not a plain path')
        nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.fchdir(fd)
    os.close(fd)


def run(tag, timeout_ms, workdir, argv):
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    try:
        enter_workdir(workdir)
    except OSError as e:
        os.write(2, ("berth: workdir '/mnt/data/%s' is not a directory of /mnt/data "
                     "(symlinks are not followed): %s\n" % (workdir, e.strerror or e)).encode())
        return 125
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
    deadline = time.monotonic() + timeout_ms / 1000.0
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
        # Python ignores SIGPIPE, and an ignored signal stays ignored across exec.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            os.write(2, ('berth: %s: %s\n' % (argv[0], e.strerror or e)).encode())
            os._exit(127 if isinstance(e, FileNotFoundError) else 126)
    status = None
    while status is None:
        left = deadline - time.monotonic()
        if left <= 0:
            kill_tree(os.getpid())
            return 137
        signal.sigtimedwait([signal.SIGCHLD], min(left, 1.0))
        status = reap().get(child)
    # The command is done; whatever it left running goes with it.
    kill_tree(os.getpid())
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def tagged(tag, me):
    roots = []
    for name in os.listdir('/proc'):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                args = f.read().split(b'\0')
        except OSError:
            continue
        if tag in args:
            roots.append(int(name))
    return roots


def kill(tag):
    me = os.getpid()
    tag = tag.encode()
    for _ in range(50):
        procs = processes()
        targets = set(tagged(tag, me))
        targets |= descendants(targets, procs)
        orphans = [(start, pid) for pid, (ppid, start) in procs.items() if ppid == 1]
        # The first child of PID 1 is the sandbox's own main process; later orphans escaped an exec.
        orphans.sort()
        targets |= {pid for _, pid in orphans[1:]}
        targets.discard(me)
        targets = {p for p in targets if _same_uid(p)}
        if not targets:
            return 0
        kill_all(targets)
        time.sleep(0.005)
    return 1


def _same_uid(pid):
    try:
        return os.stat('/proc/%d' % pid).st_uid == os.getuid()
    except OSError:
        return False


def main():
    args = sys.argv[1:]
    if len(args) >= 6 and args[0] == 'run' and args[4] == '--':
        sys.exit(run(args[1], int(args[2]), args[3], args[5:]))
    if len(args) == 2 and args[0] == 'kill':
        sys.exit(kill(args[1]))
    sys.exit(64)


main()
