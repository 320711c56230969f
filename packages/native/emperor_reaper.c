// The subreaper fallback of containment (where the emperor cannot have cgroups): the emperor
// becomes a child subreaper, so a vassal's process that leaves its group (setsid, a double fork)
// is re-parented to the emperor instead of init, where it can be found and killed; and since
// such orphans are nobody's spawned children, the emperor must reap them itself, by pid (a
// waitpid(-1) would steal the exits of the children that libuv and the pidfds wait for).
#define _GNU_SOURCE
#include "emperor_native.h"
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 // the same number on every architecture (Linux 5.3)
#endif

// setChildSubreaper(on: boolean)
napi_value emperor_set_child_subreaper(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  bool on;
  CHECK(get_args(env, info, 1, argv));
  CHECK(napi_get_value_bool(env, argv[0], &on));
  if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) < 0) return throw_errno(env, "prctl", errno);
  return NULL;
}

// isChildSubreaper() -> boolean
napi_value emperor_is_child_subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  int on = 0;
  if (prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0) < 0) return throw_errno(env, "prctl", errno);
  CHECK(napi_get_boolean(env, on != 0, &result));
  return result;
}

// reapPid(pid) -> [code, signal] if that child had exited and is now reaped, null if it still
// runs. Throws ECHILD when it is not (or no longer) our child.
napi_value emperor_reap_pid(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t pid;
  CHECK(get_args(env, info, 1, argv));
  CHECK(get_int(env, argv[0], &pid));
  if (pid <= 0) return throw_errno(env, "waitid", EINVAL);
  return reap_result(env, P_PID, pid);
}

// pidfdOpen(pid) -> fd: a pidfd for any process, our child or not (a self-forking daemon that
// init adopted). It becomes readable when that process exits, so it can be watched on the event
// loop instead of looking at /proc; it is close-on-exec by the kernel's rule. Throws ESRCH when
// no such process, ENOSYS before Linux 5.3.
napi_value emperor_pidfd_open(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int32_t pid;
  CHECK(get_args(env, info, 1, argv));
  CHECK(get_int(env, argv[0], &pid));
  if (pid <= 0) return throw_errno(env, "pidfd_open", EINVAL);
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return throw_errno(env, "pidfd_open", errno);
  CHECK(napi_create_int32(env, (int32_t)fd, &result));
  return result;
}
