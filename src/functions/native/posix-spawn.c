/*
 * posix_spawn as a Node-API addon: the way to start a process that libuv uses on macOS only
 * (on Linux it forks, libuv/libuv#3520). glibc's posix_spawn starts the child with
 * clone(CLONE_VM | CLONE_VFORK): no copy of the parent's page tables, which fork() makes and
 * exec then throws away, and the parent's thread is held only until the exec.
 *
 *   spawn(file, argv, envp, cwd) -> [pid, stdin fd, stdout fd, stderr fd]
 *     three socket pairs; the child in a new session with default signal handlers and no signals
 *     blocked, as libuv sets up a detached child; throws an Error whose code is the errno name
 *   reap(pid) -> [exit code or null, signal number or null], or null while it runs
 *
 * Built by native/build.ts after the TypeScript, where a C compiler and node's headers are.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char *string_of(napi_env env, napi_value value) {
  size_t length;
  napi_get_value_string_utf8(env, value, NULL, 0, &length);
  char *text = malloc(length + 1);
  napi_get_value_string_utf8(env, value, text, length + 1, &length);
  return text;
}

static char **strings_of(napi_env env, napi_value array) {
  uint32_t count;
  napi_get_array_length(env, array, &count);
  char **list = calloc(count + 1, sizeof(char *));
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    napi_get_element(env, array, i, &item);
    list[i] = string_of(env, item);
  }
  return list;
}

static void free_strings(char **list) {
  for (char **item = list; *item; item++) free(*item);
  free(list);
}

static napi_value throw_errno(napi_env env, int number) {
  const char *name = strerrorname_np(number);
  napi_throw_error(env, name ? name : "EUNKNOWN", strerror(number));
  return NULL;
}

static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);

  // Socket pairs, as libuv gives child_process's children: the process sees the same stdio.
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out) ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, err)) {
    int number = errno;
    int fds[6] = {in[0], in[1], out[0], out[1], err[0], err[1]};
    for (int i = 0; i < 6; i++) if (fds[i] >= 0) close(fds[i]);
    return throw_errno(env, number);
  }
  char *file = string_of(env, args[0]), *cwd = string_of(env, args[3]);
  char **argv = strings_of(env, args[1]), **envp = strings_of(env, args[2]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawn_file_actions_addchdir_np(&actions, cwd);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid;
  int failed = posix_spawn(&pid, file, &actions, &attributes, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  free(file);
  free(cwd);
  free_strings(argv);
  free_strings(envp);
  if (failed) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    return throw_errno(env, failed);
  }
  napi_value result;
  napi_create_array_with_length(env, 4, &result);
  int values[4] = {pid, in[1], out[0], err[0]};
  for (uint32_t i = 0; i < 4; i++) {
    napi_value number;
    napi_create_int32(env, values[i], &number);
    napi_set_element(env, result, i, number);
  }
  return result;
}

static napi_value Reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  int32_t pid;
  napi_get_value_int32(env, args[0], &pid);
  int status;
  pid_t reaped;
  do reaped = waitpid(pid, &status, WNOHANG);
  while (reaped < 0 && errno == EINTR);
  napi_value result, code, signal;
  if (reaped == 0) {
    napi_get_null(env, &result);
    return result;
  }
  // Gone without a status (reaped elsewhere): reported as exited with neither.
  if (reaped > 0 && WIFEXITED(status)) napi_create_int32(env, WEXITSTATUS(status), &code);
  else napi_get_null(env, &code);
  if (reaped > 0 && WIFSIGNALED(status)) napi_create_int32(env, WTERMSIG(status), &signal);
  else napi_get_null(env, &signal);
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, code);
  napi_set_element(env, result, 1, signal);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, Spawn, NULL, &function);
  napi_set_named_property(env, exports, "spawn", function);
  napi_create_function(env, "reap", NAPI_AUTO_LENGTH, Reap, NULL, &function);
  napi_set_named_property(env, exports, "reap", function);
  return exports;
}
