// The few syscalls the emperor needs and Node does not offer (see README.md; spawning is in
// emperor_spawn.c, the subreaper in emperor_reaper.c):
//  - a listening socket that is never accepted on (a net.Server always accepts), so that the
//    emperor can hold it, pass it to instances and notice a waiting client without taking it;
//  - unix datagram sockets in the abstract namespace, to receive sd_notify messages, and one
//    send, for the emperor's own sd_notify to systemd.
// Policy (dual-stack fallback, messages, errno names) lives in the TypeScript wrapper; this file
// only does syscalls and reports failures as an Error with `errno` (number) and `syscall`.
#define _GNU_SOURCE
#include "emperor_native.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <node_api.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#define DATAGRAM_MAX 4096     // systemd's own limit for a notify message (PIPE_BUF)
#define DATAGRAMS_PER_CALL 256 // bounded drain: a flooding sender cannot stall the event loop
#define FDS_PER_MESSAGE 16

// Throws Error(strerror) with .errno and .syscall; the wrapper turns errno into its name.
napi_value throw_errno(napi_env env, const char *syscall, int err) {
  napi_value msg, error, num, sys;
  CHECK(napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg));
  CHECK(napi_create_error(env, NULL, msg, &error));
  CHECK(napi_create_int32(env, err, &num));
  CHECK(napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys));
  CHECK(napi_set_named_property(env, error, "errno", num));
  CHECK(napi_set_named_property(env, error, "syscall", sys));
  napi_throw(env, error);
  return NULL;
}

// Closes fd without losing the errno that made us give up on it.
static napi_value fail(napi_env env, int fd, const char *syscall) {
  int err = errno;
  if (fd >= 0) close(fd);
  return throw_errno(env, syscall, err);
}

napi_status get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_status s = napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (s == napi_ok && argc < want) {
    napi_throw_type_error(env, NULL, "missing argument");
    return napi_invalid_arg;
  }
  return s;
}

napi_status get_int(napi_env env, napi_value v, int32_t *out) {
  napi_status s = napi_get_value_int32(env, v, out);
  if (s != napi_ok) napi_throw_type_error(env, NULL, "expected a number");
  return s;
}

// Copies a JS string of at most max bytes into buf (max + 1 bytes); ENAMETOOLONG if longer.
napi_status get_string(napi_env env, napi_value v, char *buf, size_t max, size_t *len) {
  napi_status s = napi_get_value_string_utf8(env, v, NULL, 0, len);
  if (s != napi_ok) napi_throw_type_error(env, NULL, "expected a string");
  else if (*len > max) {
    throw_errno(env, "bind", ENAMETOOLONG);
    return napi_invalid_arg;
  } else
    s = napi_get_value_string_utf8(env, v, buf, max + 1, len);
  return s;
}

static napi_value make_int(napi_env env, int32_t value) {
  napi_value v;
  CHECK(napi_create_int32(env, value, &v));
  return v;
}

// bindTcp(host: numeric IP, port, backlog, v6only) -> {fd, port}
static napi_value bind_tcp(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  char host[INET6_ADDRSTRLEN + 1];
  size_t host_len;
  int32_t port, backlog;
  bool v6only;
  CHECK(get_args(env, info, 4, argv));
  CHECK(get_string(env, argv[0], host, sizeof host - 1, &host_len));
  CHECK(get_int(env, argv[1], &port));
  CHECK(get_int(env, argv[2], &backlog));
  CHECK(napi_get_value_bool(env, argv[3], &v6only));

  struct sockaddr_storage ss = {0};
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  socklen_t len;
  if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    len = sizeof *sin6;
  } else if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    len = sizeof *sin;
  } else {
    return throw_errno(env, "inet_pton", EINVAL);
  }

  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(env, -1, "socket");
  int one = 1, v6 = v6only ? 1 : 0;
  // SO_REUSEADDR: a restarted emperor can bind again while old connections sit in TIME_WAIT.
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) return fail(env, fd, "setsockopt");
  // Set IPV6_V6ONLY explicitly either way: the default depends on the bindv6only sysctl.
  if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6) < 0)
    return fail(env, fd, "setsockopt");
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) return fail(env, fd, "bind");
  if (listen(fd, backlog) < 0) return fail(env, fd, "listen");
  len = sizeof ss; // port 0 asks the kernel for one: report which
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return fail(env, fd, "getsockname");
  int bound_port = ntohs(ss.ss_family == AF_INET6 ? sin6->sin6_port : sin->sin_port);

  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "fd", make_int(env, fd)));
  CHECK(napi_set_named_property(env, result, "port", make_int(env, bound_port)));
  return result;
}

// A socket file is stale when nobody listens on it: connect() is refused. Returns 0 once it is
// removed, EEXIST for something that is not a socket (never deleted), EADDRINUSE if it is alive.
static int remove_stale_socket(const struct sockaddr_un *addr) {
#ifdef __GLIBC__
  // statx rather than lstat: glibc 2.33 gave lstat a new symbol version, and the prebuilt addon
  // must load with glibc 2.28, the oldest Node 20 itself runs on.
  struct statx st;
  if (statx(AT_FDCWD, addr->sun_path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &st) < 0) return errno == ENOENT ? 0 : errno;
  if (!S_ISSOCK(st.stx_mode)) return EEXIST;
#else
  struct stat st;
  if (lstat(addr->sun_path, &st) < 0) return errno == ENOENT ? 0 : errno;
  if (!S_ISSOCK(st.st_mode)) return EEXIST;
#endif
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe < 0) return errno;
  // Non-blocking: a live listener with a full backlog answers EAGAIN instead of blocking us.
  int r = connect(probe, (const struct sockaddr *)addr, sizeof *addr);
  int err = r < 0 ? errno : 0;
  close(probe);
  if (err != ECONNREFUSED) return EADDRINUSE;
  return unlink(addr->sun_path) < 0 && errno != ENOENT ? errno : 0;
}

// bindUnix(path, backlog, mode or -1, uid or -1, gid or -1) -> fd
static napi_value bind_unix(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t path_len;
  int32_t backlog, mode, uid, gid;
  CHECK(get_args(env, info, 5, argv));
  CHECK(get_string(env, argv[0], addr.sun_path, sizeof addr.sun_path - 1, &path_len));
  CHECK(get_int(env, argv[1], &backlog));
  CHECK(get_int(env, argv[2], &mode));
  CHECK(get_int(env, argv[3], &uid));
  CHECK(get_int(env, argv[4], &gid));

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(env, -1, "socket");
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    if (errno != EADDRINUSE) return fail(env, fd, "bind");
    int err = remove_stale_socket(&addr);
    if (err) {
      close(fd);
      return throw_errno(env, "bind", err);
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return fail(env, fd, "bind");
  }
  // Permissions and owner before listen(): no client can connect through a wider mode meanwhile.
  const char *failed = NULL;
  if (mode >= 0 && chmod(addr.sun_path, (mode_t)mode) < 0) failed = "chmod";
  else if ((uid >= 0 || gid >= 0) && chown(addr.sun_path, (uid_t)uid, (gid_t)gid) < 0) failed = "chown";
  else if (listen(fd, backlog) < 0) failed = "listen";
  if (failed) {
    int err = errno;
    unlink(addr.sun_path);
    close(fd);
    return throw_errno(env, failed, err);
  }
  return make_int(env, fd);
}

// pollReadable(fd) -> boolean: a pending connection (or datagram) is queued; nothing is consumed.
static napi_value poll_readable(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int32_t fd;
  CHECK(get_args(env, info, 1, argv));
  CHECK(get_int(env, argv[0], &fd));
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r;
  do r = poll(&p, 1, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return fail(env, -1, "poll");
  if (p.revents & POLLNVAL) return throw_errno(env, "poll", EBADF);
  CHECK(napi_get_boolean(env, r > 0 && (p.revents & POLLIN), &result));
  return result;
}

// A uv_poll_t on the emperor's own event loop: the callback runs when fd becomes readable.
// Level-triggered: it runs again on every loop turn while the fd stays readable.
typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  bool stopped;
} watch_t;

static void on_closed(uv_handle_t *handle) {
  watch_t *w = handle->data;
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->async);
  free(w);
}

static void stop_watch(watch_t *w) {
  if (w->stopped) return;
  w->stopped = true;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  watch_t *w = handle->data;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value callback, recv, arg, exception;
  if (w->stopped || napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_get_reference_value(env, w->callback, &callback);
  napi_get_global(env, &recv); // make_callback needs an object as `this`
  // A poll error (e.g. EBADF) stops the watch: the callback gets the negated errno, once.
  if (status < 0) stop_watch(w);
  napi_create_int32(env, status < 0 ? -status : 0, &arg);
  // make_callback (not call_function) so promises and nextTicks queued by the callback run.
  if (napi_make_callback(env, w->async, recv, callback, 1, &arg, NULL) == napi_pending_exception &&
      napi_get_and_clear_last_exception(env, &exception) == napi_ok)
    napi_fatal_exception(env, exception); // surfaces as 'uncaughtException', like any callback
  napi_close_handle_scope(env, scope);
}

// watch(fd, callback(errno)) -> handle for unwatch()
static napi_value watch(napi_env env, napi_callback_info info) {
  napi_value argv[2], name, resource, result;
  int32_t fd;
  uv_loop_t *loop;
  CHECK(get_args(env, info, 2, argv));
  CHECK(get_int(env, argv[0], &fd));
  CHECK(napi_get_uv_event_loop(env, &loop));
  CHECK(napi_create_string_utf8(env, "EmperorWatchReadable", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_object(env, &resource));
  watch_t *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "watch", ENOMEM);
  w->env = env;
  w->poll.data = w;
  // JS-side objects first: once polling starts, nothing may fail and leave an active handle behind.
  // No finalizer on the external: the handle is freed by on_closed after unwatch(), never by the GC.
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok) {
    free(w);
    return NULL;
  }
  CHECK(napi_async_init(env, resource, name, &w->async));
  CHECK(napi_create_external(env, w, NULL, NULL, &result));
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r < 0) {
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->async);
    free(w);
    return throw_errno(env, "uv_poll_init", -r);
  }
  r = uv_poll_start(&w->poll, UV_READABLE, on_readable);
  if (r < 0) {
    stop_watch(w);
    return throw_errno(env, "uv_poll_start", -r);
  }
  return result;
}

// unwatch(handle): stops polling at once; idempotent.
static napi_value unwatch(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *w;
  CHECK(get_args(env, info, 1, argv));
  CHECK(napi_get_value_external(env, argv[0], &w));
  stop_watch(w);
  return NULL;
}

// openDatagram(abstract name without its leading NUL) -> fd. The abstract namespace has no file
// to clean up and no 108-byte path problem beyond the name itself.
static napi_value open_datagram(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  char name[sizeof addr.sun_path];
  size_t name_len;
  CHECK(get_args(env, info, 1, argv));
  CHECK(get_string(env, argv[0], name, sizeof addr.sun_path - 1, &name_len));
  // sun_path[0] stays NUL: that is what makes the address abstract.
  memcpy(addr.sun_path + 1, name, name_len);
  // The address length counts exactly the name: abstract names are not NUL-terminated.
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + name_len);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(env, -1, "socket");
  int one = 1;
  // SO_PASSCRED: the kernel attaches the sender's pid to every message, so we know the instance.
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) return fail(env, fd, "setsockopt");
  if (bind(fd, (struct sockaddr *)&addr, len) < 0) return fail(env, fd, "bind");
  return make_int(env, fd);
}

// recvDatagrams(fd) -> [{data, pid, uid, truncated}], every queued message up to DATAGRAMS_PER_CALL.
static napi_value recv_datagrams(napi_env env, napi_callback_info info) {
  napi_value argv[1], list;
  int32_t fd;
  CHECK(get_args(env, info, 1, argv));
  CHECK(get_int(env, argv[0], &fd));
  CHECK(napi_create_array(env, &list));
  char data[DATAGRAM_MAX];
  union { // aligned as cmsg needs
    char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * FDS_PER_MESSAGE)];
    struct cmsghdr align;
  } control;
  for (uint32_t count = 0; count < DATAGRAMS_PER_CALL; count++) {
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      return fail(env, -1, "recvmsg");
    }
    napi_value item, text, pid, uid, truncated;
    CHECK(napi_get_undefined(env, &pid));
    CHECK(napi_get_undefined(env, &uid));
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS) {
        struct ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof cred);
        CHECK(napi_create_int32(env, cred.pid, &pid));
        CHECK(napi_create_uint32(env, cred.uid, &uid));
      } else if (c->cmsg_type == SCM_RIGHTS) {
        // FDSTORE=1 and friends are not supported: close passed fds rather than leak them.
        int nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < nfds; i++) {
          int passed;
          memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
          close(passed);
        }
      }
    }
    CHECK(napi_create_string_utf8(env, data, (size_t)n, &text));
    CHECK(napi_get_boolean(env, (msg.msg_flags & MSG_TRUNC) != 0, &truncated));
    CHECK(napi_create_object(env, &item));
    CHECK(napi_set_named_property(env, item, "data", text));
    CHECK(napi_set_named_property(env, item, "pid", pid));
    CHECK(napi_set_named_property(env, item, "uid", uid));
    CHECK(napi_set_named_property(env, item, "truncated", truncated));
    CHECK(napi_set_element(env, list, count, item));
  }
  return list;
}

// sendDatagram(address, data): one datagram to a unix socket, `@name` abstract or a path
// (sd_notify). Connectionless and blocking-free: a full or absent receiver is an error.
static napi_value send_datagram(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  char target[sizeof addr.sun_path];
  char data[DATAGRAM_MAX];
  size_t target_len, data_len;
  CHECK(get_args(env, info, 2, argv));
  CHECK(get_string(env, argv[0], target, sizeof addr.sun_path - 1, &target_len));
  CHECK(napi_get_value_string_utf8(env, argv[1], data, sizeof data, &data_len));
  socklen_t len;
  if (target[0] == '@') { // abstract: a leading NUL and no terminating one
    addr.sun_path[0] = '\0';
    memcpy(addr.sun_path + 1, target + 1, target_len - 1);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + target_len);
  } else {
    memcpy(addr.sun_path, target, target_len);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + target_len + 1);
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(env, -1, "socket");
  if (sendto(fd, data, data_len, MSG_NOSIGNAL, (struct sockaddr *)&addr, len) < 0) return fail(env, fd, "sendto");
  close(fd);
  return NULL;
}

// closeFd(fd): the wrapper makes sure it is called once per fd, after its watch is stopped.
static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  CHECK(get_args(env, info, 1, argv));
  CHECK(get_int(env, argv[0], &fd));
  // Linux releases the fd even when close() reports EINTR: never retry, which could close a reused fd.
  if (close(fd) < 0 && errno != EINTR) return fail(env, -1, "close");
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  const napi_property_descriptor fns[] = {
      {"bindTcp", NULL, bind_tcp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindUnix", NULL, bind_unix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollReadable", NULL, poll_readable, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatch", NULL, unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openDatagram", NULL, open_datagram, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvDatagrams", NULL, recv_datagrams, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendDatagram", NULL, send_datagram, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawn", NULL, emperor_spawn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reap", NULL, emperor_reap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pipe", NULL, emperor_pipe, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pipeSize", NULL, emperor_pipe_size, NULL, NULL, NULL, napi_enumerable, NULL},
      {"trimMemory", NULL, emperor_trim_memory, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setGroupPriority", NULL, emperor_set_group_priority, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setChildSubreaper", NULL, emperor_set_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"isChildSubreaper", NULL, emperor_is_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reapPid", NULL, emperor_reap_pid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdOpen", NULL, emperor_pidfd_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"execve", NULL, emperor_execve, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));
  return exports;
}
