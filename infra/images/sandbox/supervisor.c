/*
 * The exec supervisor, run inside the sandbox as the sandbox user by `docker exec`:
 *   berth-supervisor run  TAG TIMEOUT_MS WORKDIR -- ARGV...
 *   berth-supervisor kill TAG
 *   berth-supervisor standby
 * `run` becomes a child subreaper, enters WORKDIR (relative to /mnt/data, opened one component at
 * a time with O_NOFOLLOW, so no symlink is followed), and runs ARGV as its child. Every process
 * the command starts stays below it, even after setsid or a double fork: orphans are reparented
 * to the nearest subreaper. When the command exits, or at TIMEOUT_MS, the whole tree is killed, so
 * an exec never leaves processes behind. Exit status: the command's (128+N when killed by signal
 * N), 137 at the timeout, 125 when WORKDIR is unusable, 127/126 when ARGV can't be run, 64 for a
 * malformed call. After the tree is gone, `run` writes that status on stdout as its last line,
 * `\x1e` "berth-exit TAG CODE\n" (the exit trailer), which the API strips from the output.
 * `kill` is the outside backstop, for when the supervisor itself was stopped or killed by the code
 * it runs: it kills the tree of every process tagged TAG, and every process of this uid that was
 * orphaned to PID 1 (where escaped descendants of a dead supervisor land), except the sandbox's
 * own first process.
 * `standby` is a `run` started ahead of its command, so an exec costs no Docker exec of its own: it
 * waits on stdin for one frame, a 4-byte big-endian length and then that many bytes of
 * NUL-terminated fields, `ENVC ENV... TAG TIMEOUT_MS WORKDIR ARGV...`. It sets the ENVC
 * `NAME=value` variables over its own (as an exec's Env sets them over the image's) and becomes
 * `run TAG TIMEOUT_MS WORKDIR -- ARGV...`; the bytes after the frame are the command's stdin. It
 * reads nothing past the frame. EOF before a whole frame (the API let it go): exit 0 quietly; a
 * malformed frame: 64.
 *
 * C, static, no allocation beyond a few arrays sized from /proc: it starts in well under a
 * millisecond, where the Python it replaces took ~40 ms per exec. Same protocol, same behaviour.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROOT "/mnt/data"
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct proc {
  pid_t pid, ppid;
  unsigned long long start;
};

/* Every process we can see; *n gets the count. The caller frees. */
static struct proc *processes(size_t *n) {
  size_t cap = 256, len = 0;
  struct proc *out = malloc(cap * sizeof *out);
  DIR *dir = opendir("/proc");
  if (!out || !dir) {
    if (dir) closedir(dir);
    *n = 0;
    return out;
  }
  struct dirent *e;
  while ((e = readdir(dir))) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0) continue;
    buf[got] = 0;
    /* The command name may hold anything, spaces and parentheses included: fields start after
     * the last ')'. Then: state ppid ... with starttime the 20th field after state. */
    char *p = strrchr(buf, ')');
    if (!p) continue;
    p += 2;
    unsigned long long fields[22] = {0};
    int i = 0;
    for (char *tok = strtok(p, " "); tok && i < 22; tok = strtok(NULL, " "), i++)
      fields[i] = strtoull(tok, NULL, 10);
    if (i < 20) continue;
    if (len == cap) {
      struct proc *grown = realloc(out, (cap *= 2) * sizeof *out);
      if (!grown) break;
      out = grown;
    }
    out[len++] = (struct proc){(pid_t)pid, (pid_t)fields[1], fields[19]};
  }
  closedir(dir);
  *n = len;
  return out;
}

/* Marks in `mark` (parallel to procs) every descendant of a marked process; roots are marked. */
static void mark_descendants(struct proc *procs, size_t n, char *mark) {
  for (int changed = 1; changed;) {
    changed = 0;
    for (size_t i = 0; i < n; i++) {
      if (mark[i]) continue;
      for (size_t j = 0; j < n; j++)
        if (mark[j] && procs[j].pid == procs[i].ppid) {
          mark[i] = 1;
          changed = 1;
          break;
        }
    }
  }
}

static void reap(pid_t child, int *child_status, int *child_done) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    if (pid == child) {
      *child_status = status;
      *child_done = 1;
    }
}

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A process may fork while we kill: repeat until a pass finds nothing below us. */
static void kill_tree(pid_t me) {
  int unused_status, unused_done;
  for (int pass = 0; pass < 200; pass++) {
    size_t n;
    struct proc *procs = processes(&n);
    char *mark = calloc(n ? n : 1, 1);
    if (!procs || !mark) {
      free(procs);
      free(mark);
      return;
    }
    /* Seed with our direct children, then widen to every descendant. */
    for (size_t i = 0; i < n; i++) mark[i] = procs[i].ppid == me;
    mark_descendants(procs, n, mark);
    int found = 0;
    for (size_t i = 0; i < n; i++)
      if (mark[i] && procs[i].pid != me) {
        kill(procs[i].pid, SIGKILL);
        found = 1;
      }
    free(procs);
    free(mark);
    if (!found) return;
    reap(-1, &unused_status, &unused_done);
    nap_ms(2);
  }
}

static int enter_workdir(const char *rel) {
  int fd = open(ROOT, DIR_FLAGS);
  if (fd < 0) return -1;
  char *copy = strdup(rel);
  if (!copy) {
    close(fd);
    return -1;
  }
  for (char *save, *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
    if (!strcmp(part, ".") || !strcmp(part, "..")) {
      close(fd);
      free(copy);
      errno = EINVAL;
      return -2;
    }
    int next = openat(fd, part, DIR_FLAGS);
    int saved = errno;
    close(fd);
    if (next < 0) {
      free(copy);
      errno = saved;
      return -1;
    }
    fd = next;
  }
  free(copy);
  int rc = fchdir(fd);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int run(long timeout_ms, const char *workdir, char **argv) {
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  int entered = enter_workdir(workdir);
  if (entered != 0) {
    dprintf(2,
            "berth: workdir '/mnt/data/%s' is not a directory of /mnt/data (symlinks are not "
            "followed): %s\n",
            workdir, entered == -2 ? "not a plain path" : strerror(errno));
    return 125;
  }
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  double deadline = now_ms() + (double)timeout_ms;
  pid_t child = fork();
  if (child < 0) {
    dprintf(2, "berth: fork: %s\n", strerror(errno));
    return 126;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* An ignored signal stays ignored across exec: the command gets the defaults. */
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv);
    int e = errno;
    dprintf(2, "berth: %s: %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  pid_t me = getpid();
  int status = 0, done = 0;
  while (!done) {
    double left = deadline - now_ms();
    if (left <= 0) {
      kill_tree(me);
      return 137;
    }
    if (left > 1000) left = 1000;
    struct timespec wait = {(time_t)(left / 1000), (long)((left - (long)(left / 1000) * 1000) * 1e6)};
    sigtimedwait(&chld, NULL, &wait);
    reap(child, &status, &done);
  }
  /* The command is done; whatever it left running goes with it. */
  kill_tree(me);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

/* Whether pid's argv holds `tag` as a whole argument. */
static int tagged(pid_t pid, const char *tag) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  static char buf[65536];
  ssize_t got = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (got <= 0) return 0;
  buf[got] = 0;
  size_t len = strlen(tag);
  for (ssize_t i = 0; i < got;) {
    size_t arg = strlen(buf + i);
    if (arg == len && !memcmp(buf + i, tag, len)) return 1;
    i += (ssize_t)arg + 1;
  }
  return 0;
}

static int same_uid(pid_t pid) {
  char path[64];
  struct stat st;
  snprintf(path, sizeof path, "/proc/%d", pid);
  return stat(path, &st) == 0 && st.st_uid == getuid();
}

static int kill_tagged(const char *tag) {
  pid_t me = getpid();
  for (int pass = 0; pass < 50; pass++) {
    size_t n;
    struct proc *procs = processes(&n);
    char *mark = calloc(n ? n : 1, 1);
    if (!procs || !mark) {
      free(procs);
      free(mark);
      return 1;
    }
    for (size_t i = 0; i < n; i++) mark[i] = procs[i].pid != me && tagged(procs[i].pid, tag);
    mark_descendants(procs, n, mark);
    /* The first child of PID 1 is the sandbox's own main process; later orphans escaped an exec. */
    ssize_t first = -1;
    for (size_t i = 0; i < n; i++)
      if (procs[i].ppid == 1 && (first < 0 || procs[i].start < procs[first].start ||
                                 (procs[i].start == procs[first].start && procs[i].pid < procs[first].pid)))
        first = (ssize_t)i;
    for (size_t i = 0; i < n; i++)
      if (procs[i].ppid == 1 && (ssize_t)i != first) mark[i] = 1;
    int found = 0;
    for (size_t i = 0; i < n; i++)
      if (mark[i] && procs[i].pid != me && same_uid(procs[i].pid)) {
        kill(procs[i].pid, SIGKILL);
        found = 1;
      }
    free(procs);
    free(mark);
    if (!found) return 0;
    nap_ms(5);
  }
  return 1;
}

/* Reads exactly n bytes (fewer only at EOF or on an error). */
static size_t read_full(int fd, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  return got;
}

/* The largest frame: the API refuses execs whose argv and env pass the kernel's own limits. */
#define MAX_FRAME (8u << 20)
#define MAX_FIELDS 65536

static int standby(const char *self) {
  unsigned char head[4];
  size_t got = read_full(0, (char *)head, sizeof head);
  if (got == 0) return 0;
  if (got != sizeof head) return 64;
  uint32_t len;
  memcpy(&len, head, sizeof len);
  len = ntohl(len);
  if (len == 0 || len > MAX_FRAME) return 64;
  char *frame = malloc(len);
  char **fields = malloc(MAX_FIELDS * sizeof *fields);
  if (!frame || !fields) return 64;
  if (read_full(0, frame, len) != len) return 64;
  if (frame[len - 1] != 0) return 64;
  size_t n = 0;
  for (size_t at = 0; at < len; at += strlen(frame + at) + 1) {
    if (n + 8 >= MAX_FIELDS) return 64;
    fields[n++] = frame + at;
  }
  char *end;
  long envc = strtol(fields[0], &end, 10);
  /* ENVC, the variables, TAG, TIMEOUT_MS, WORKDIR and at least one word of ARGV. */
  if (*end || end == fields[0] || envc < 0 || (size_t)envc + 5 > n) return 64;
  for (long i = 1; i <= envc; i++) {
    char *eq = strchr(fields[i], '=');
    if (!eq || eq == fields[i]) return 64;
    *eq = 0;
    if (setenv(fields[i], eq + 1, 1) != 0) return 64;
  }
  /* `run` takes it from here: argv[0], run, TAG, TIMEOUT_MS, WORKDIR, --, ARGV..., NULL. */
  size_t rest = n - 1 - (size_t)envc;
  char **argv = malloc((rest + 4) * sizeof *argv);
  if (!argv) return 64;
  char **from = fields + 1 + envc;
  argv[0] = (char *)self;
  argv[1] = "run";
  argv[2] = from[0];
  argv[3] = from[1];
  argv[4] = from[2];
  argv[5] = "--";
  for (size_t i = 3; i < rest; i++) argv[i + 3] = from[i];
  argv[rest + 3] = NULL;
  execv("/proc/self/exe", argv);
  dprintf(2, "berth: standby: %s\n", strerror(errno));
  return 126;
}

int main(int argc, char **argv) {
  if (argc >= 7 && !strcmp(argv[1], "run") && !strcmp(argv[5], "--")) {
    char *end;
    long timeout = strtol(argv[3], &end, 10);
    if (*end || timeout < 0) return 64;
    int code = run(timeout, argv[4], argv + 6);
    /* The exit trailer, last on stdout once the whole tree is gone: the API reads the code from
     * it instead of asking Docker (an exec inspect, a round trip per exec). */
    signal(SIGPIPE, SIG_IGN);
    dprintf(1, "\x1e" "berth-exit %s %d\n", argv[2], code);
    return code;
  }
  if (argc == 3 && !strcmp(argv[1], "kill")) return kill_tagged(argv[2]);
  if (argc == 2 && !strcmp(argv[1], "standby")) return standby(argv[0]);
  return 64;
}
