// Spawning an instance without fork(): Node's spawn forks, which copies the page tables of the
// whole emperor (the cost grows with its RSS: 1.2 ms per spawn at 52 MB, 3 ms at 106 MB, 10 ms
// at 262 MB, measured in docs/benchmarks.md) and blocks its event loop meanwhile. Here the child
// shares the parent's memory (CLONE_VM | CLONE_VFORK, what glibc's posix_spawn does) and the
// parent waits only until the child has exec'd: the cost no longer depends on the emperor's size.
//
// The child also does what Node's spawn cannot, so no wrapper has to be exec'd first: its own
// session and process group, the parent-death signal, supplementary groups, a umask of its own,
// and LISTEN_PID / WATCHDOG_PID equal to its own pid (sd_listen_fds() requires it).
//
// Between clone() and execve() the child runs on its own small stack, in the parent's memory,
// with every signal blocked: it only makes raw system calls and writes to its own args struct.
#define _GNU_SOURCE
#include "emperor_native.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define CHILD_STACK_SIZE (64 * 1024)
#define MAX_GROUPS 1024
#define PID_DIGITS 11

typedef struct {
  const char *file;
  char **argv;
  char **envp;
  const int *fds; // the child's fd i is fds[i]
  int nfds;
  const char *cwd; // NULL: the emperor's
  int umask;       // -1: inherit
  int uid, gid;    // -1: unchanged
  int ngroups;     // -1: unchanged
  gid_t *groups;
  int pdeathsig;
  pid_t parent;
  char **pid_slots; // digits written here: the tails of "LISTEN_PID=" entries of envp
  int npid_slots;
  // Written by the child when a step fails; the parent reads them once the child is gone.
  const char *failed_step;
  int failed_errno;
} spawn_args_t;

static void write_pid(char *slot, pid_t pid) {
  char digits[PID_DIGITS];
  int n = 0;
  do digits[n++] = (char)('0' + pid % 10);
  while ((pid /= 10) > 0 && n < PID_DIGITS);
  for (int i = 0; i < n; i++) slot[i] = digits[n - 1 - i];
  slot[n] = '\0';
}

#define STEP(name, call)                                                                                     \
  do {                                                                                                       \
    if ((call) < 0) {                                                                                        \
      a->failed_step = name;                                                                                 \
      a->failed_errno = errno;                                                                               \
      _exit(127);                                                                                            \
    }                                                                                                        \
  } while (0)

static int child_main(void *arg) {
  spawn_args_t *a = arg;
  // Node ignores SIGPIPE and handles others: an exec'd program must start from the defaults.
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL); // EINVAL for glibc's own: fine
  STEP("setsid", setsid());
  // Move every source fd above the targets first, so that no dup2 overwrites a later source.
  int moved[a->nfds];
  for (int i = 0; i < a->nfds; i++) {
    moved[i] = a->fds[i];
    if (moved[i] >= 0 && moved[i] < a->nfds) STEP("fcntl", moved[i] = fcntl(moved[i], F_DUPFD_CLOEXEC, a->nfds));
  }
  for (int i = 0; i < a->nfds; i++)
    if (moved[i] >= 0) STEP("dup2", dup2(moved[i], i)); // the copy is not close-on-exec
    else close(i);
  // Nothing else is inherited, not even an fd the emperor itself inherited without close-on-exec
  // (as systemd does for its services). ENOSYS before Linux 5.9: close-on-exec still applies.
  syscall(SYS_close_range, a->nfds, ~0U, 0);
  if (a->cwd) STEP("chdir", chdir(a->cwd));
  if (a->umask >= 0) umask((mode_t)a->umask);
  // Raw syscalls: glibc's set*id() would try to change the credentials of the emperor's other
  // threads too (they share this memory), which must not happen from here.
  if (a->ngroups >= 0) STEP("setgroups", (int)syscall(SYS_setgroups, a->ngroups, a->groups));
  if (a->gid >= 0) STEP("setgid", (int)syscall(SYS_setresgid, a->gid, a->gid, a->gid));
  if (a->uid >= 0) STEP("setuid", (int)syscall(SYS_setresuid, a->uid, a->uid, a->uid));
  // After the credentials: changing them clears the parent-death signal.
  if (a->pdeathsig) {
    STEP("prctl", prctl(PR_SET_PDEATHSIG, SIGKILL));
    if (getppid() != a->parent) _exit(127); // the emperor died before the prctl: nobody to serve
  }
  pid_t self = (pid_t)syscall(SYS_getpid);
  for (int i = 0; i < a->npid_slots; i++) write_pid(a->pid_slots[i], self);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execve(a->file, a->argv, a->envp);
  a->failed_step = "execve";
  a->failed_errno = errno;
  _exit(127);
}

// A JS array of strings as a NULL-terminated char* array; extra[i] bytes of room after string i.
static char **string_array(napi_env env, napi_value array, uint32_t *count) {
  uint32_t n;
  if (napi_get_array_length(env, array, &n) != napi_ok) return NULL;
  char **out = calloc(n + 1, sizeof *out);
  if (!out) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    size_t len;
    if (napi_get_element(env, array, i, &item) != napi_ok ||
        napi_get_value_string_utf8(env, item, NULL, 0, &len) != napi_ok)
      goto fail;
    // Room for a pid after any "NAME=" entry the caller asks to fill in.
    out[i] = malloc(len + PID_DIGITS + 1);
    if (!out[i] || napi_get_value_string_utf8(env, item, out[i], len + 1, &len) != napi_ok) goto fail;
  }
  if (count) *count = n;
  return out;
fail:
  for (uint32_t i = 0; i < n; i++) free(out[i]);
  free(out);
  return NULL;
}

static void free_strings(char **strings) {
  if (!strings) return;
  for (char **s = strings; *s; s++) free(*s);
  free(strings);
}

static int get_named_int(napi_env env, napi_value obj, const char *key, int32_t *out) {
  napi_value v;
  return napi_get_named_property(env, obj, key, &v) == napi_ok && napi_get_value_int32(env, v, out) == napi_ok;
}

// spawn(file, argv[], env[], options) -> {pid, pidfd}
// options: {fds: number[], cwd: string|null, umask, uid, gid (-1: unchanged), initGroups: user
// name|null, clearGroups: boolean, pdeathsig: boolean, pidVars: number[] (indexes of env entries
// "NAME=" to complete with the child's pid)}.
// Throws with .errno and .syscall naming the failed step (chdir, setuid, execve...).
napi_value emperor_spawn(napi_env env, napi_callback_info info) {
  napi_value argv[4], v, result;
  spawn_args_t a = {.umask = -1, .uid = -1, .gid = -1, .ngroups = -1, .parent = getpid()};
  char file[4097], cwd[4097];
  size_t len;
  char **args = NULL, **envp = NULL;
  int fds[64];
  gid_t groups[MAX_GROUPS];
  char *slots[8];
  napi_value spawned = NULL;
  const char *fail_step = NULL;
  int fail_errno = 0;

  CHECK(get_args(env, info, 4, argv));
  CHECK(get_string(env, argv[0], file, sizeof file - 1, &len));
  a.file = file;
  args = string_array(env, argv[1], NULL);
  uint32_t nenv = 0;
  envp = string_array(env, argv[2], &nenv);
  if (!args || !envp) {
    fail_step = "spawn";
    fail_errno = ENOMEM;
    goto done;
  }
  a.argv = args;
  a.envp = envp;

  napi_value opts = argv[3], list;
  uint32_t n;
  CHECK(napi_get_named_property(env, opts, "fds", &list));
  CHECK(napi_get_array_length(env, list, &n));
  if (n > sizeof fds / sizeof fds[0]) {
    fail_step = "spawn";
    fail_errno = EMFILE;
    goto done;
  }
  for (uint32_t i = 0; i < n; i++) {
    CHECK(napi_get_element(env, list, i, &v));
    CHECK(napi_get_value_int32(env, v, &fds[i]));
  }
  a.fds = fds;
  a.nfds = (int)n;

  napi_valuetype type;
  CHECK(napi_get_named_property(env, opts, "cwd", &v));
  CHECK(napi_typeof(env, v, &type));
  if (type == napi_string) {
    CHECK(get_string(env, v, cwd, sizeof cwd - 1, &len));
    a.cwd = cwd;
  }
  int32_t num;
  if (get_named_int(env, opts, "umask", &num)) a.umask = num;
  if (get_named_int(env, opts, "uid", &num)) a.uid = num;
  if (get_named_int(env, opts, "gid", &num)) a.gid = num;

  bool flag = false;
  CHECK(napi_get_named_property(env, opts, "clearGroups", &v));
  CHECK(napi_get_value_bool(env, v, &flag));
  if (flag) a.ngroups = 0;
  CHECK(napi_get_named_property(env, opts, "initGroups", &v));
  CHECK(napi_typeof(env, v, &type));
  if (type == napi_string) {
    char user[256];
    CHECK(get_string(env, v, user, sizeof user - 1, &len));
    // NSS lookups run here, in the parent: nothing in the child may take a lock.
    int count = MAX_GROUPS;
    if (getgrouplist(user, (gid_t)(a.gid >= 0 ? a.gid : 0), groups, &count) < 0) {
      fail_step = "getgrouplist";
      fail_errno = ERANGE;
      goto done;
    }
    a.groups = groups;
    a.ngroups = count;
  }
  CHECK(napi_get_named_property(env, opts, "pdeathsig", &v));
  CHECK(napi_get_value_bool(env, v, &flag));
  a.pdeathsig = flag;

  CHECK(napi_get_named_property(env, opts, "pidVars", &list));
  CHECK(napi_get_array_length(env, list, &n));
  for (uint32_t i = 0; i < n && i < sizeof slots / sizeof slots[0]; i++) {
    int32_t index;
    CHECK(napi_get_element(env, list, i, &v));
    CHECK(napi_get_value_int32(env, v, &index));
    if (index < 0 || (uint32_t)index >= nenv) continue;
    slots[a.npid_slots++] = envp[index] + strlen(envp[index]); // string_array left room
  }
  a.pid_slots = slots;

  char *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    fail_step = "mmap";
    fail_errno = errno;
    goto done;
  }
  // Blocked until the child has reset its handlers: a signal must never run one of Node's
  // handlers on the child's side of the shared memory.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  pid_t pid = clone(child_main, stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &a, &pidfd);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  munmap(stack, CHILD_STACK_SIZE);
  if (pid < 0) {
    fail_step = "clone";
    fail_errno = clone_errno;
    goto done;
  }
  if (a.failed_step) {
    // The child has exited (127) or is about to: reap it so that no zombie is left.
    siginfo_t si;
    while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR) {
    }
    close(pidfd);
    fail_step = a.failed_step;
    fail_errno = a.failed_errno;
    goto done;
  }
  napi_value jpid, jfd;
  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, pid, &jpid) != napi_ok ||
      napi_create_int32(env, pidfd, &jfd) != napi_ok || napi_set_named_property(env, result, "pid", jpid) != napi_ok ||
      napi_set_named_property(env, result, "pidfd", jfd) != napi_ok)
    result = NULL; // the exception is pending; the child runs on, unsupervised: cannot happen short of OOM
  spawned = result;

done:
  free_strings(args);
  free_strings(envp);
  if (fail_step) return throw_errno(env, fail_step, fail_errno);
  return spawned;
}

// reap(pidfd) -> [code, signal] once the process has exited (the pidfd is then readable), else
// null. code is the exit status or -1; signal the number that killed it or 0.
napi_value emperor_reap(napi_env env, napi_callback_info info) {
  napi_value argv[1], result, code, sig;
  int32_t pidfd;
  CHECK(get_args(env, info, 1, argv));
  CHECK(get_int(env, argv[0], &pidfd));
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r;
  while ((r = waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r < 0) return throw_errno(env, "waitid", errno);
  if (si.si_pid == 0) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  bool exited = si.si_code == CLD_EXITED;
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_create_int32(env, exited ? si.si_status : -1, &code));
  CHECK(napi_create_int32(env, exited ? 0 : si.si_status, &sig));
  CHECK(napi_set_element(env, result, 0, code));
  CHECK(napi_set_element(env, result, 1, sig));
  return result;
}

// pipe() -> [readFd, writeFd], both close-on-exec (the spawn dup's the write end into place).
napi_value emperor_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int p[2];
  napi_value result, r, w;
  if (pipe2(p, O_CLOEXEC) < 0) return throw_errno(env, "pipe2", errno);
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_create_int32(env, p[0], &r));
  CHECK(napi_create_int32(env, p[1], &w));
  CHECK(napi_set_element(env, result, 0, r));
  CHECK(napi_set_element(env, result, 1, w));
  return result;
}
