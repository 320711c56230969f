// Helpers shared by the addon's source files.
#pragma once
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHECK(call)                                                                                          \
  do {                                                                                                       \
    if ((call) != napi_ok) return NULL;                                                                      \
  } while (0)

napi_value throw_errno(napi_env env, const char *syscall, int err);
napi_status get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
napi_status get_int(napi_env env, napi_value v, int32_t *out);
napi_status get_string(napi_env env, napi_value v, char *buf, size_t max, size_t *len);
// waitid(idtype, id, WEXITED | WNOHANG) as JS: [code, signal] once exited (code -1 when killed), else null.
napi_value reap_result(napi_env env, int idtype, int32_t id);

napi_value emperor_spawn(napi_env env, napi_callback_info info);
napi_value emperor_reap(napi_env env, napi_callback_info info);
napi_value emperor_pipe(napi_env env, napi_callback_info info);
napi_value emperor_pipe_size(napi_env env, napi_callback_info info);
napi_value emperor_trim_memory(napi_env env, napi_callback_info info);
napi_value emperor_set_group_priority(napi_env env, napi_callback_info info);
napi_value emperor_set_child_subreaper(napi_env env, napi_callback_info info);
napi_value emperor_is_child_subreaper(napi_env env, napi_callback_info info);
napi_value emperor_reap_pid(napi_env env, napi_callback_info info);
napi_value emperor_pidfd_open(napi_env env, napi_callback_info info);
napi_value emperor_execve(napi_env env, napi_callback_info info);
