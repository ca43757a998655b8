# The per-call side of a session, run inside the sandbox as the sandbox user by `docker exec`:
#   python3 -I -S -c <this> TAG SID run TIMEOUT_MS GRACE_MS   (request JSON on stdin)
#   python3 -I -S -c <this> TAG SID ping
#   python3 -I -S -c <this> TAG SID kill
# `run` takes the session's lock (one run at a time, across API replicas), relays the runner's
# JSON lines to stdout, and owns the timeout: at TIMEOUT_MS it sends the runner SIGINT
# (KeyboardInterrupt); if the runner has not finished GRACE_MS later it is SIGKILLed and the
# caller restarts it. Events it adds: busy, absent, interrupting, killed, died {oom}.
# The runner's pid comes from the socket itself (SO_PEERCRED), not from a file code could edit.
import fcntl, json, os, select, signal, socket, struct, sys, time

TAG, SID, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
DIR = '/tmp/berth-sessions/' + SID
OOM_FILES = ('/sys/fs/cgroup/memory/memory.oom_control', '/sys/fs/cgroup/memory.events')


def emit(event):
    sys.stdout.write(json.dumps(event) + '\n')
    sys.stdout.flush()


def oom_count():
    for path in OOM_FILES:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith('oom_kill '):
                        return int(line.split()[1])
        except (OSError, ValueError):
            continue
    return -1


def connect(wait_s):
    deadline = time.monotonic() + wait_s
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(DIR + '/sock')
            pid = struct.unpack('3i', s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            return s, pid
        except OSError:
            s.close()
            if time.monotonic() >= deadline:
                return None, 0
            time.sleep(0.02)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def runners():
    """Pids of this session's runner processes (tagged argv, our uid)."""
    mark = ('berth-session:' + SID).encode()
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            if os.stat('/proc/' + name).st_uid != os.getuid():
                continue
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                if mark in f.read().split(b'\0'):
                    found.append(int(name))
        except OSError:
            continue
    return found


def kill():
    for _ in range(100):
        pids = runners()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)
    for name in ('sock', 'berth_inline.py', 'lock'):
        try:
            os.unlink(os.path.join(DIR, name))
        except OSError:
            pass
    return 0 if not runners() else 1


def ping():
    s, pid = connect(10.0)
    if s is None:
        return 3
    s.sendall(b'{"op":"ping"}\n')
    s.settimeout(10.0)
    data = b''
    try:
        while b'\n' not in data:
            chunk = s.recv(4096)
            if not chunk:
                return 3
            data += chunk
    except OSError:
        return 3
    emit({'t': 'pong', 'pid': pid})
    return 0


def run(timeout_ms, grace_ms):
    request = sys.stdin.buffer.read()
    try:
        lockfd = os.open(DIR + '/lock', os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        emit({'t': 'busy'})
        return 0
    except OSError:
        emit({'t': 'absent'})
        return 0
    s, pid = connect(2.0)
    if s is None:
        emit({'t': 'absent'})
        return 0
    ooms = oom_count()
    start = time.monotonic()
    deadline = start + timeout_ms / 1000.0
    kill_at = None
    s.sendall(request.rstrip(b'\n') + b'\n')
    pending = b''
    out = sys.stdout.buffer
    while True:
        now = time.monotonic()
        if kill_at is None and now >= deadline:
            emit({'t': 'interrupting'})
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass
            kill_at = now + grace_ms / 1000.0
        if kill_at is not None and now >= kill_at:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            emit({'t': 'killed'})
            return 0
        wait = (kill_at if kill_at is not None else deadline) - now
        ready, _, _ = select.select([s], [], [], max(0.0, min(wait, 1.0)))
        if not ready:
            continue
        try:
            chunk = s.recv(1 << 20)
        except OSError:
            chunk = b''
        if not chunk:
            break
        pending += chunk
        lines = pending.split(b'\n')
        pending = lines.pop()
        for line in lines:
            out.write(line + b'\n')
            if line.startswith(b'{"t": "done"'):
                out.flush()
                return 0
        out.flush()
    # The runner went away mid-run: killed by the kernel (OOM), os._exit, or a signal.
    for _ in range(50):
        if not alive(pid):
            break
        time.sleep(0.01)
    emit({'t': 'died', 'oom': oom_count() > ooms >= 0})
    return 0


def main():
    if MODE == 'run' and len(sys.argv) == 6:
        sys.exit(run(int(sys.argv[4]), int(sys.argv[5])))
    if MODE == 'ping':
        sys.exit(ping())
    if MODE == 'kill':
        sys.exit(kill())
    sys.exit(64)


main()
