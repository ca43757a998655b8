# One stateful Python interpreter of a session, run inside the sandbox as the sandbox user by a
# detached `docker exec` (never under the exec supervisor, which would kill it when it returns):
#   python3 -I -c <this> berth-session:SID SID
# It listens on a Unix socket in /tmp/berth-sessions/SID (mode 0700, the sandbox user's), never on
# a network port. Each connection carries one request line (JSON) and gets JSON lines back:
#   {"op":"ping"}                       -> {"t":"pong","pid":N}
#   {"op":"run","code":S,"max_output":N} -> stdout/stderr/display/result/error events, then done
# One request at a time: the per-run client holds a lock, and the socket is served serially.
# SIGINT raises KeyboardInterrupt only while code runs, so an interrupt that arrives late never
# breaks the loop. A client that goes away mid-run interrupts the run the same way.
import ast, base64, builtins, io, json, linecache, os, signal, socket, sys, threading, time
import traceback, types

SID = sys.argv[2]
BASE = '/tmp/berth-sessions'
DIR = os.path.join(BASE, SID)
FIGURES = '/mnt/data/figures'
BACKEND = '''# Written by the Berth session runner: figures shown are sent back as PNG.
import sys
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas, new_figure_manager
def show(*args, **kwargs):
    sys.modules['berth_session'].flush_figures()
'''

state = {'executing': False, 'conn': None, 'cap': 1 << 20, 'sent': {}, 'truncated': set()}
lock = threading.Lock()
figure_count = [0]


def send(event):
    conn = state['conn']
    if conn is None:
        return
    data = (json.dumps(event) + '\n').encode()
    with lock:
        try:
            conn.sendall(data)
        except OSError:
            state['conn'] = None


class Output(io.TextIOBase):
    """sys.stdout / sys.stderr of the session: buffered per line, capped per run."""

    def __init__(self, name):
        self.name_ = name
        self.buf = []
        self.size = 0

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError('write() argument must be str, not %s' % type(s).__name__)
        self.buf.append(s)
        self.size += len(s)
        if '\n' in s or '\r' in s or self.size > 4096:
            self.flush()
        return len(s)

    def flush(self):
        if not self.buf:
            return
        text = ''.join(self.buf)
        self.buf, self.size = [], 0
        used = state['sent'].get(self.name_, 0)
        room = state['cap'] - used
        if room <= 0:
            state['truncated'].add(self.name_)
            return
        if len(text) > room:
            text = text[:room]
            state['truncated'].add(self.name_)
        state['sent'][self.name_] = used + len(text)
        send({'t': self.name_, 'text': text})

    @property
    def encoding(self):
        return 'utf-8'

    def isatty(self):
        return False


def flush_figures():
    """Every open figure, as display_data does in Jupyter: PNG back, and a copy in /mnt/data."""
    if 'matplotlib.pyplot' not in sys.modules:
        return
    try:
        from matplotlib._pylab_helpers import Gcf
        import matplotlib.pyplot as plt
        managers = Gcf.get_all_fig_managers()
    except Exception:
        return
    for manager in managers:
        try:
            buf = io.BytesIO()
            manager.canvas.figure.savefig(buf, format='png')
            png = buf.getvalue()
        except Exception as e:
            send({'t': 'stderr', 'text': 'berth: could not render a figure: %r\n' % (e,)})
            continue
        figure_count[0] += 1
        path = os.path.join(FIGURES, '%s-%d.png' % (SID, figure_count[0]))
        try:
            os.makedirs(FIGURES, exist_ok=True)
            with open(path, 'wb') as f:
                f.write(png)
        except OSError:
            path = None
        send({'t': 'display', 'mime': 'image/png', 'data': base64.b64encode(png).decode(),
              'path': path})
    try:
        plt.close('all')
    except Exception:
        pass


namespace = {'__name__': '__main__', '__builtins__': builtins}
cells = [0]


def execute(code):
    cells[0] += 1
    filename = '<cell-%d>' % cells[0]
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        tree = ast.parse(code, filename)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        state['executing'] = True
        exec(compile(tree, filename, 'exec'), namespace)
        if last is not None:
            value = eval(compile(last, filename, 'eval'), namespace)
            state['executing'] = False
            if value is not None:
                namespace['_'] = value
                text = repr(value)
                send({'t': 'result', 'repr': text[:state['cap']]})
        state['executing'] = False
    except BaseException as e:  # KeyboardInterrupt and SystemExit too: the session lives on
        state['executing'] = False
        tb = e.__traceback__
        # Drop this function's own frame: the traceback starts in the cell.
        if tb is not None and tb.tb_frame.f_code is execute.__code__:
            tb = tb.tb_next
        report = traceback.TracebackException(type(e), e, tb)
        # Frames of the runner itself (the SIGINT handler) are noise to the user.
        report.stack = traceback.StackSummary.from_list(
            [f for f in report.stack if f.filename != '<string>'])
        lines = list(report.format())
        send({'t': 'error', 'ename': type(e).__name__, 'evalue': str(e)[:65536],
              'traceback': [l[:65536] for l in lines[-200:]]})
    finally:
        state['executing'] = False


def on_sigint(_signum, _frame):
    if state['executing']:
        raise KeyboardInterrupt


def watch(conn):
    """The client went away mid-run (its caller gave up): interrupt the code."""
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass
    if state['executing'] and state.get('current') is conn:
        os.kill(os.getpid(), signal.SIGINT)


def read_request(conn, limit=64 << 20):
    chunks, size = [], 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return None
        nl = chunk.find(b'\n')
        if nl >= 0:
            chunks.append(chunk[:nl])
            return json.loads(b''.join(chunks))
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None


def serve(conn):
    # A connection that never sends its request (code in the sandbox poking the socket) must not
    # hold the session's only loop.
    conn.settimeout(10.0)
    try:
        request = read_request(conn)
    except (OSError, ValueError):
        return
    conn.settimeout(None)
    if not isinstance(request, dict):
        return
    state['conn'] = conn
    if request.get('op') == 'ping':
        send({'t': 'pong', 'pid': os.getpid()})
        return
    if request.get('op') != 'run' or not isinstance(request.get('code'), str):
        return
    state['cap'] = int(request.get('max_output') or (1 << 20))
    state['sent'], state['truncated'] = {}, set()
    state['current'] = conn
    threading.Thread(target=watch, args=(conn,), daemon=True).start()
    started = time.monotonic()
    send({'t': 'started', 'pid': os.getpid()})
    execute(request['code'])
    for out in (sys.stdout, sys.stderr):
        try:
            out.flush()
        except Exception:
            pass
    try:
        flush_figures()
    except BaseException:
        pass
    send({'t': 'done', 'duration_ms': (time.monotonic() - started) * 1000,
          'truncated': sorted(state['truncated'])})
    state['current'] = None


def main():
    os.makedirs(BASE, mode=0o700, exist_ok=True)
    os.makedirs(DIR, mode=0o700, exist_ok=True)
    os.chmod(DIR, 0o700)
    # Nothing reads the exec's own stdio: a full pipe must never block a child the code started.
    null = os.open('/dev/null', os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    with open(os.path.join(DIR, 'berth_inline.py'), 'w') as f:
        f.write(BACKEND)
    sys.path.append(DIR)
    os.environ['MPLBACKEND'] = 'module://berth_inline'
    sys.modules['berth_session'] = types.SimpleNamespace(flush_figures=flush_figures)
    sys.stdout, sys.stderr = Output('stdout'), Output('stderr')
    sys.stdin = open(os.devnull)
    signal.signal(signal.SIGINT, on_sigint)
    try:
        os.chdir('/mnt/data')
    except OSError:
        pass
    path = os.path.join(DIR, 'sock')
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    server.bind(path)
    os.umask(old)
    server.listen(8)
    while True:
        conn, _ = server.accept()
        try:
            serve(conn)
        except Exception:
            pass
        finally:
            state['conn'] = None
            state['current'] = None
            try:
                conn.close()
            except OSError:
                pass


main()
