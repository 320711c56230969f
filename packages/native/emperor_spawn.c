// Spawning an instance without fork(): Node's spawn forks, which copies the page tables of the
// whole emperor (the cost grows with its RSS: 1.2 ms per spawn at 52 MB, 3 ms at 106 MB, 10 ms
// at 262 MB, measured in docs/benchmarks.md) and blocks its event loop meanwhile. Here the child
// shares the parent's memory (CLONE_VM | CLONE_VFORK, what glibc's posix_spawn does) and the
// parent waits only until the child has exec'd: the cost no longer depends on the emperor's size.
//
// The child also does what Node's spawn cannot, so no wrapper has to be exec'd first: its own
// process group, the parent-death signal, supplementary groups, a umask of its own,
// and LISTEN_PID / WATCHDOG_PID equal to its own pid (sd_listen_fds() requires it).
//
// Between clone() and execve() the child runs on its own small stack, in the parent's memory,
// with every signal blocked: it only makes raw system calls and writes to its own args struct.
//
// Containment: with a cgroup, the child is created inside it (clone3 with CLONE_INTO_CGROUP,
// Linux 5.7+), or, where clone3 is unavailable (older kernels, container seccomp profiles that
// answer ENOSYS, other architectures), moves itself there as its first step by writing "0" into
// the cgroup's cgroup.procs. Either way no code of the vassal ever runs outside the cgroup.
#define _GNU_SOURCE
#include "emperor_native.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#ifdef __GLIBC__
#include <malloc.h> // malloc_trim: glibc only
#endif
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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
// Defined by hand: kernel headers older than 5.3 (clone3) or 5.7 (CLONE_INTO_CGROUP) lack them.
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435 // the same number on every architecture (asm-generic numbering since 5.3)
#endif
// Headers older than 5.9 lack it; at run time an older kernel answers ENOSYS (the loop below).
#ifndef SYS_close_range
#define SYS_close_range 436 // the same number on every architecture, as clone3's
#endif
// struct clone_args as of Linux 5.7 (CLONE_ARGS_SIZE_VER2), our own copy for the same reason.
typedef struct {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
      cgroup;
} clone3_args_t;

// clone3() has no glibc wrapper, and a CLONE_VM child that returns from syscall() onto a new
// stack would find no frame to return to: as glibc's own __clone3 does, the child side is a few
// instructions that call fn(arg) on the new stack and exit with its result. Returns the pid, or
// -errno. Only where written; elsewhere clone3 counts as unavailable (-ENOSYS).
#if defined(__x86_64__)
#define HAVE_CLONE3_TRAMPOLINE 1
long emperor_clone3(clone3_args_t *args, size_t size, int (*fn)(void *), void *arg);
__asm__(".text\n"
        ".globl emperor_clone3\n"
        ".hidden emperor_clone3\n"
        ".type emperor_clone3,@function\n"
        "emperor_clone3:\n"
        "  mov %rdx, %r8\n" // fn and arg in registers the syscall preserves, in both processes
        "  mov %rcx, %r9\n"
        "  mov $435, %eax\n"
        "  syscall\n"
        "  test %rax, %rax\n"
        "  jnz 1f\n"
        "  xor %ebp, %ebp\n" // child: rsp = stack + stack_size, 16-byte aligned
        "  mov %r9, %rdi\n"
        "  call *%r8\n"
        "  mov %eax, %edi\n"
        "  mov $60, %eax\n" // exit (child_main never returns; this is for safety)
        "  syscall\n"
        "  hlt\n"
        "1: ret\n"
        ".size emperor_clone3, .-emperor_clone3\n");
#elif defined(__aarch64__)
#define HAVE_CLONE3_TRAMPOLINE 1
long emperor_clone3(clone3_args_t *args, size_t size, int (*fn)(void *), void *arg);
__asm__(".text\n"
        ".globl emperor_clone3\n"
        ".hidden emperor_clone3\n"
        ".type emperor_clone3,%function\n"
        "emperor_clone3:\n"
        "  mov x10, x2\n" // the kernel preserves every register but x0 across svc
        "  mov x11, x3\n"
        "  mov x8, #435\n"
        "  svc #0\n"
        "  cbnz x0, 1f\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, x11\n"
        "  blr x10\n"
        "  mov x8, #93\n" // exit
        "  svc #0\n"
        "1: ret\n"
        ".size emperor_clone3, .-emperor_clone3\n");
#else
#define HAVE_CLONE3_TRAMPOLINE 0
#endif

// How a child is put into its cgroup (the `cgroupMethod` option).
enum { CGROUP_CLONE3 = 0, CGROUP_PROCS = 1 };
// Set once clone3 has answered ENOSYS (or E2BIG: a kernel before 5.7 without the cgroup field):
// every later spawn goes straight to the cgroup.procs method.
static bool clone3_unusable = !HAVE_CLONE3_TRAMPOLINE;

#define CHILD_STACK_SIZE (64 * 1024)
#define PID_DIGITS 11

typedef struct {
  const char *file;
  char **argv;
  char **sh_argv; // execvp's fallback for a script without "#!": /bin/sh FILE ARGS...
  char **envp;
  const int *fds; // the child's fd i is fds[i]
  int *moved;     // scratch, nfds entries
  int nfds;
  const char *cwd; // NULL: the emperor's
  int umask;       // -1: inherit
  int nice;        // 0: inherit
  bool set_uid, set_gid;
  uid_t uid;
  gid_t gid;
  int ngroups; // -1: unchanged
  gid_t *groups;
  int pdeathsig;
  pid_t parent;
  char **pid_slots; // digits written here: the tails of "LISTEN_PID=" entries of envp
  int npid_slots;
  int cgroup_procs_fd; // >= 0: the child writes "0" here first (moves itself into the cgroup)
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

// The kernel's own sigaction: glibc's refuses the two signals it uses itself (32, 33), which a
// new program must get with their defaults too.
struct kernel_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

static void block_all(uint64_t *old) {
  uint64_t all = ~(uint64_t)0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, sizeof all);
}

static void set_mask(const uint64_t *mask) {
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, mask, NULL, sizeof *mask);
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
  struct kernel_sigaction dfl = {.handler = SIG_DFL};
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
  // Into the cgroup before anything else, and while still the emperor's user (the move needs
  // write access to cgroup.procs of the target and of the common ancestor).
  if (a->cgroup_procs_fd >= 0) STEP("cgroup", (int)write(a->cgroup_procs_fd, "0", 1));
  // A process group of its own (for stopping it with its children), in the emperor's session:
  // with the kernel's autogroup scheduling, a session of its own would give every instance as
  // much CPU as a whole other login or service, and a booting generation could starve the
  // rest of the machine (measured in docs/benchmarks.md). supervisord does the same (setpgrp).
  STEP("setpgid", setpgid(0, 0));
  // Move every source fd above the targets first, so that no dup2 overwrites a later source.
  int *moved = a->moved;
  for (int i = 0; i < a->nfds; i++) {
    moved[i] = a->fds[i];
    if (moved[i] >= 0 && moved[i] < a->nfds) STEP("fcntl", moved[i] = fcntl(moved[i], F_DUPFD_CLOEXEC, a->nfds));
  }
  for (int i = 0; i < a->nfds; i++)
    if (moved[i] >= 0) STEP("dup2", dup2(moved[i], i)); // the copy is not close-on-exec
    else close(i);
  // Nothing else is inherited, not even an fd the emperor itself inherited without close-on-exec
  // (as systemd does for its services). Before Linux 5.9, one close per possible fd.
  if (syscall(SYS_close_range, a->nfds, ~0U, 0) < 0) {
    struct rlimit lim;
    long max = syscall(SYS_getrlimit, RLIMIT_NOFILE, &lim) == 0 ? (long)lim.rlim_cur : 1024;
    for (long fd = a->nfds; fd < max && fd < 65536; fd++) close((int)fd);
  }
  if (a->cwd) STEP("chdir", chdir(a->cwd));
  if (a->umask >= 0) umask((mode_t)a->umask);
  if (a->nice != 0) syscall(SYS_setpriority, PRIO_PROCESS, 0, a->nice); // best effort
  // Raw syscalls: glibc's set*id() would try to change the credentials of the emperor's other
  // threads too (they share this memory), which must not happen from here.
  if (a->ngroups >= 0) STEP("setgroups", (int)syscall(SYS_setgroups, a->ngroups, a->groups));
  if (a->set_gid) STEP("setgid", (int)syscall(SYS_setresgid, a->gid, a->gid, a->gid));
  if (a->set_uid) STEP("setuid", (int)syscall(SYS_setresuid, a->uid, a->uid, a->uid));
  // After the credentials: changing them clears the parent-death signal.
  if (a->pdeathsig) {
    STEP("prctl", prctl(PR_SET_PDEATHSIG, SIGKILL));
    if (getppid() != a->parent) _exit(127); // the emperor died before the prctl: nobody to serve
  }
  pid_t self = (pid_t)syscall(SYS_getpid);
  for (int i = 0; i < a->npid_slots; i++) write_pid(a->pid_slots[i], self);
  uint64_t none = 0;
  set_mask(&none);
  execve(a->file, a->argv, a->envp);
  // As execvp(3): a file the kernel cannot run (a script without "#!") is run by the shell.
  if (errno == ENOEXEC) execve("/bin/sh", a->sh_argv, a->envp);
  a->failed_step = "execve";
  a->failed_errno = errno;
  _exit(127);
}

// A JS array of strings as a NULL-terminated char* array, with room for a pid after each.
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

// A number option, read as uint32 (uids and gids go up to 2^32 - 2); absent or null: false.
static bool get_named_u32(napi_env env, napi_value obj, const char *key, uint32_t *out, napi_status *status) {
  napi_value v;
  napi_valuetype type;
  if ((*status = napi_get_named_property(env, obj, key, &v)) != napi_ok) return false;
  if ((*status = napi_typeof(env, v, &type)) != napi_ok || type != napi_number) return false;
  return (*status = napi_get_value_uint32(env, v, out)) == napi_ok;
}

#define TRY(call)                                                                                            \
  do {                                                                                                       \
    if ((call) != napi_ok) goto done;                                                                        \
  } while (0)

// spawn(file, argv[], env[], options) -> {pid, pidfd}
// options: {fds: number[], cwd: string|null, umask (-1: inherit), nice (0: inherit), uid, gid (absent: unchanged),
// initGroups: user name|null, groupsGid: the user's primary gid for initGroups, clearGroups,
// pdeathsig, pidVars: number[] (indexes of env entries "NAME=" to complete with the child's pid)}.
// Throws with .errno and .syscall naming the failed step (chdir, setuid, execve...).
napi_value emperor_spawn(napi_env env, napi_callback_info info) {
  napi_value argv[4], v, list, result = NULL;
  napi_status st = napi_ok;
  spawn_args_t a = {.umask = -1, .ngroups = -1, .parent = getpid(), .cgroup_procs_fd = -1};
  char file[4097], cwd[4097], user[256];
  size_t len;
  uint32_t n, nenv = 0, nargs = 0;
  int *fds = NULL;
  gid_t *groups = NULL;
  char *slots[8];
  const char *fail_step = NULL;
  int fail_errno = 0;

  TRY(get_args(env, info, 4, argv));
  TRY(get_string(env, argv[0], file, sizeof file - 1, &len));
  a.file = file;
  a.argv = string_array(env, argv[1], &nargs);
  a.envp = string_array(env, argv[2], &nenv);
  a.sh_argv = calloc(nargs + 2, sizeof *a.sh_argv);
  if (!a.argv || !a.envp || !a.sh_argv || nargs == 0) {
    fail_step = "spawn";
    fail_errno = nargs == 0 && a.argv ? EINVAL : ENOMEM;
    goto done;
  }
  a.sh_argv[0] = "/bin/sh";
  a.sh_argv[1] = file;
  for (uint32_t i = 1; i < nargs; i++) a.sh_argv[i + 1] = a.argv[i];

  napi_value opts = argv[3];
  TRY(napi_get_named_property(env, opts, "fds", &list));
  TRY(napi_get_array_length(env, list, &n));
  fds = calloc(n + 1, sizeof *fds);
  a.moved = calloc(n + 1, sizeof *a.moved);
  if (!fds || !a.moved) {
    fail_step = "spawn";
    fail_errno = ENOMEM;
    goto done;
  }
  for (uint32_t i = 0; i < n; i++) {
    TRY(napi_get_element(env, list, i, &v));
    TRY(get_int(env, v, &fds[i]));
  }
  a.fds = fds;
  a.nfds = (int)n;

  napi_valuetype type;
  TRY(napi_get_named_property(env, opts, "cwd", &v));
  TRY(napi_typeof(env, v, &type));
  if (type == napi_string) {
    TRY(get_string(env, v, cwd, sizeof cwd - 1, &len));
    a.cwd = cwd;
  }
  int32_t mask;
  TRY(napi_get_named_property(env, opts, "umask", &v));
  TRY(get_int(env, v, &mask));
  a.umask = mask;
  int32_t nice;
  TRY(napi_get_named_property(env, opts, "nice", &v));
  TRY(get_int(env, v, &nice));
  a.nice = nice;
  uint32_t id;
  if (get_named_u32(env, opts, "uid", &id, &st)) a.set_uid = true, a.uid = id;
  TRY(st);
  if (get_named_u32(env, opts, "gid", &id, &st)) a.set_gid = true, a.gid = id;
  TRY(st);

  bool flag = false;
  TRY(napi_get_named_property(env, opts, "clearGroups", &v));
  TRY(napi_get_value_bool(env, v, &flag));
  if (flag) a.ngroups = 0;
  TRY(napi_get_named_property(env, opts, "initGroups", &v));
  TRY(napi_typeof(env, v, &type));
  if (type == napi_string) {
    uint32_t base = 0;
    TRY(get_string(env, v, user, sizeof user - 1, &len));
    // No default: 0 would hand the root group to the child.
    if (!get_named_u32(env, opts, "groupsGid", &base, &st)) {
      TRY(st);
      fail_step = "getgrouplist";
      fail_errno = EINVAL;
      goto done;
    }
    // NSS lookups run here, in the parent: nothing in the child may take a lock.
    int count = 64;
    for (;;) {
      gid_t *more = realloc(groups, (size_t)count * sizeof *groups);
      if (!more) {
        fail_step = "getgrouplist";
        fail_errno = ENOMEM;
        goto done;
      }
      groups = more;
      int want = count;
      if (getgrouplist(user, base, groups, &want) >= 0) {
        count = want;
        break;
      }
      if (want <= count || want > 65536) {
        fail_step = "getgrouplist";
        fail_errno = ERANGE;
        goto done;
      }
      count = want;
    }
    a.groups = groups;
    a.ngroups = count;
  }
  TRY(napi_get_named_property(env, opts, "pdeathsig", &v));
  TRY(napi_get_value_bool(env, v, &flag));
  a.pdeathsig = flag;

  // cgroupFd: a directory fd of the target cgroup, or -1; cgroupMethod: CGROUP_CLONE3 or CGROUP_PROCS.
  int32_t cgroup_fd = -1, cgroup_method = CGROUP_CLONE3;
  TRY(napi_get_named_property(env, opts, "cgroupFd", &v));
  TRY(napi_typeof(env, v, &type));
  if (type == napi_number) TRY(get_int(env, v, &cgroup_fd));
  TRY(napi_get_named_property(env, opts, "cgroupMethod", &v));
  TRY(napi_typeof(env, v, &type));
  if (type == napi_number) TRY(get_int(env, v, &cgroup_method));
  bool use_clone3 = cgroup_fd >= 0 && cgroup_method == CGROUP_CLONE3 && !clone3_unusable;
  if (cgroup_fd >= 0 && !use_clone3) {
    a.cgroup_procs_fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (a.cgroup_procs_fd < 0) {
      fail_step = "cgroup";
      fail_errno = errno;
      goto done;
    }
  }

  TRY(napi_get_named_property(env, opts, "pidVars", &list));
  TRY(napi_get_array_length(env, list, &n));
  for (uint32_t i = 0; i < n && i < sizeof slots / sizeof slots[0]; i++) {
    int32_t index;
    TRY(napi_get_element(env, list, i, &v));
    TRY(get_int(env, v, &index));
    if (index < 0 || (uint32_t)index >= nenv) continue;
    slots[a.npid_slots++] = a.envp[index] + strlen(a.envp[index]); // string_array left room
  }
  a.pid_slots = slots;

  char *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    fail_step = "mmap";
    fail_errno = errno;
    goto done;
  }
  // A child that switches user makes the shared memory non-dumpable (the kernel does that on a
  // change of credentials): the emperor's own, until the child execs. Restored below.
  int dumpable = prctl(PR_GET_DUMPABLE);
  // Every signal blocked (glibc's two included) until the child has reset its handlers: a signal
  // must never run one of Node's handlers on the child's side of the shared memory.
  uint64_t old_mask;
  block_all(&old_mask);
  int pidfd = -1;
  pid_t pid = -1;
  int clone_errno = 0;
#if HAVE_CLONE3_TRAMPOLINE
  if (use_clone3) {
    clone3_args_t ca = {
        .flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_INTO_CGROUP,
        .pidfd = (uint64_t)(uintptr_t)&pidfd,
        .exit_signal = SIGCHLD,
        .stack = (uint64_t)(uintptr_t)stack,
        .stack_size = CHILD_STACK_SIZE,
        .cgroup = (uint64_t)cgroup_fd,
    };
    long r = emperor_clone3(&ca, sizeof ca, child_main, &a);
    pid = r < 0 ? -1 : (pid_t)r;
    clone_errno = r < 0 ? (int)-r : 0;
    if (r == -ENOSYS || r == -E2BIG) {
      // No clone3, or one without CLONE_INTO_CGROUP: the child moves itself, now and from now on.
      clone3_unusable = true;
      a.cgroup_procs_fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
      if (a.cgroup_procs_fd < 0) clone_errno = errno;
      else use_clone3 = false;
    }
  }
#endif
  if (!use_clone3) {
    pid = clone(child_main, stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &a, &pidfd);
    clone_errno = pid < 0 ? errno : 0;
  }
  set_mask(&old_mask);
  munmap(stack, CHILD_STACK_SIZE);
  if (dumpable == 1 && prctl(PR_GET_DUMPABLE) != 1) prctl(PR_SET_DUMPABLE, 1);
  if (pid < 0) {
    fail_step = use_clone3 ? "clone3" : "clone";
    fail_errno = clone_errno;
    goto done;
  }
  napi_value jpid, jfd;
  if (a.failed_step == NULL &&
      (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, pid, &jpid) != napi_ok ||
       napi_create_int32(env, pidfd, &jfd) != napi_ok || napi_set_named_property(env, result, "pid", jpid) != napi_ok ||
       napi_set_named_property(env, result, "pidfd", jfd) != napi_ok)) {
    result = NULL;
    kill(pid, SIGKILL); // nobody could supervise it
  }
  if (result == NULL) {
    // The child has exited (127), is about to, or was just killed: reap it, leave no zombie.
    siginfo_t si;
    while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR) {
    }
    close(pidfd);
    if (a.failed_step) {
      fail_step = a.failed_step;
      fail_errno = a.failed_errno;
    }
  }

done:
  if (a.cgroup_procs_fd >= 0) close(a.cgroup_procs_fd);
  free_strings(a.argv);
  free_strings(a.envp);
  free(a.sh_argv);
  free(fds);
  free(a.moved);
  free(groups);
  if (fail_step) return throw_errno(env, fail_step, fail_errno);
  bool pending = false;
  if (result == NULL && napi_is_exception_pending(env, &pending) == napi_ok && !pending)
    napi_throw_type_error(env, NULL, "spawn: bad arguments");
  return result;
}

napi_value reap_result(napi_env env, int idtype, int32_t id) {
  napi_value result, code, sig;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r;
  while ((r = waitid((idtype_t)idtype, (id_t)id, &si, WEXITED | WNOHANG)) < 0 && errno == EINTR) {
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

// reap(pidfd) -> [code, signal] once the process has exited (the pidfd is then readable), else
// null. code is the exit status or -1; signal the number that killed it or 0.
napi_value emperor_reap(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t pidfd;
  CHECK(get_args(env, info, 1, argv));
  CHECK(get_int(env, argv[0], &pidfd));
  return reap_result(env, P_PIDFD, pidfd);
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

// pipeSize(fd, bytes) -> the pipe's capacity after asking for `bytes` (F_SETPIPE_SZ), or its
// current capacity when bytes is 0 (F_GETPIPE_SZ). A burst of output moves through a bigger pipe
// in fewer reads; an idle vassal gives the kernel memory back by asking for the default again.
napi_value emperor_pipe_size(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int32_t fd, bytes;
  CHECK(get_args(env, info, 2, argv));
  CHECK(get_int(env, argv[0], &fd));
  CHECK(get_int(env, argv[1], &bytes));
  int size = fcntl(fd, bytes > 0 ? F_SETPIPE_SZ : F_GETPIPE_SZ, bytes);
  if (size < 0) return throw_errno(env, bytes > 0 ? "F_SETPIPE_SZ" : "F_GETPIPE_SZ", errno);
  CHECK(napi_create_int32(env, size, &result));
  return result;
}

// trimMemory(): malloc_trim(0), so the free memory glibc keeps in its heaps after a burst of
// allocations (log output, say) goes back to the kernel. Returns whether any was released.
napi_value emperor_trim_memory(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#ifdef __GLIBC__
  CHECK(napi_get_boolean(env, malloc_trim(0) == 1, &result));
#else
  CHECK(napi_get_boolean(env, false, &result)); // musl returns free memory by itself
#endif
  return result;
}

// setGroupPriority(pgid, nice): every process of the group (Node's os.setPriority takes one pid).
napi_value emperor_set_group_priority(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t pgid, nice;
  CHECK(get_args(env, info, 2, argv));
  CHECK(get_int(env, argv[0], &pgid));
  CHECK(get_int(env, argv[1], &nice));
  if (setpriority(PRIO_PGRP, (id_t)pgid, nice) < 0) return throw_errno(env, "setpriority", errno);
  return NULL;
}

// execve(file, argv, envp): `emperor run` restarts its own Node with the V8 flags that only take
// effect on Node's command line, keeping its pid (systemd's MAINPID, a supervisor's child).
// Node marks stdio (and every fd it inherited) close-on-exec at start: stdio is kept open here, and
// nothing past fd 2 is carried over. Returns only when exec failed, by throwing, with stdio's
// flags as they were.
napi_value emperor_execve(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t len;
  CHECK(get_args(env, info, 3, argv));
  CHECK(napi_get_value_string_utf8(env, argv[0], NULL, 0, &len));
  char *file = malloc(len + 1);
  char **args = string_array(env, argv[1], NULL);
  char **envp = string_array(env, argv[2], NULL);
  int err = ENOMEM;
  if (file && args && envp && napi_get_value_string_utf8(env, argv[0], file, len + 1, &len) == napi_ok) {
    int flags[3];
    for (int fd = 0; fd < 3; fd++)
      if ((flags[fd] = fcntl(fd, F_GETFD)) >= 0) fcntl(fd, F_SETFD, flags[fd] & ~FD_CLOEXEC);
    execve(file, args, envp);
    err = errno;
    for (int fd = 0; fd < 3; fd++)
      if (flags[fd] >= 0) fcntl(fd, F_SETFD, flags[fd]);
  }
  free(file);
  free_strings(args);
  free_strings(envp);
  return throw_errno(env, "execve", err);
}
