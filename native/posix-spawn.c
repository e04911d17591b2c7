/*
 * posix_spawn as a Node-API addon: the way to start a process that libuv uses on macOS only
 * (on Linux it forks, libuv/libuv#3520). glibc's posix_spawn starts the child with
 * clone(CLONE_VM | CLONE_VFORK): no copy of the parent's page tables, which fork() makes and
 * exec then throws away, and the parent's thread is held only until the exec.
 *
 *   spawn(file, argv, envp, cwd) -> [pid, stdin fd, stdout fd, stderr fd, and the inodes of the
 *     child's ends of those three sockets: whoever holds one later is the invocation's]
 *     three socket pairs; the child in a new session with default signal handlers and no signals
 *     blocked, as libuv sets up a detached child, and with no fd but 0-2 (closefrom in the child:
 *     a descriptor some library opened without close-on-exec does not reach a function);
 *     throws an Error whose code is the errno name, or ERR_NUL_BYTE for a string that holds a
 *     NUL (C would cut it there silently)
 *   reap(pid) -> [exit code or null, signal number or null], or null while it runs
 *   subreaper() -> true once this process is a child subreaper: descendants orphaned by their
 *     parent's exit become its children instead of init's, so they can still be found and ended
 *   undumpable() -> true once this process is not dumpable: see Undumpable below
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A failed Node-API call leaves a pending exception, or gets one here. */
#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      bool pending = false;                                                \
      napi_is_exception_pending((env), &pending);                          \
      if (!pending) napi_throw_error((env), "ERR_NAPI", #call " failed"); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static napi_value throw_errno(napi_env env, int number) {
  const char *name = strerrorname_np(number);
  napi_throw_error(env, name ? name : "EUNKNOWN", strerror(number));
  return NULL;
}

/* A copy of a JS string for C, or NULL with an exception pending. */
static char *string_of(napi_env env, napi_value value) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a string");
    return NULL;
  }
  char *text = malloc(length + 1);
  if (!text) {
    throw_errno(env, ENOMEM);
    return NULL;
  }
  if (napi_get_value_string_utf8(env, value, text, length + 1, &length) != napi_ok) {
    free(text);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a string");
    return NULL;
  }
  if (strlen(text) != length) {
    free(text);
    napi_throw_error(env, "ERR_NUL_BYTE", "a string for the new process holds a NUL byte");
    return NULL;
  }
  return text;
}

static void free_strings(char **list) {
  if (!list) return;
  for (char **item = list; *item; item++) free(*item);
  free(list);
}

/* A NULL-terminated copy of an array of strings, or NULL with an exception pending. */
static char **strings_of(napi_env env, napi_value array) {
  uint32_t count;
  if (napi_get_array_length(env, array, &count) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected an array of strings");
    return NULL;
  }
  char **list = calloc((size_t)count + 1, sizeof(char *));
  if (!list) {
    throw_errno(env, ENOMEM);
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    if (napi_get_element(env, array, i, &item) != napi_ok || !(list[i] = string_of(env, item))) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (!pending) napi_throw_error(env, "ERR_NAPI", "cannot read an array element");
      free_strings(list);
      return NULL;
    }
  }
  return list;
}

static void close_all(const int *fds, int count) {
  for (int i = 0; i < count; i++)
    if (fds[i] >= 0) close(fds[i]);
}

/* Sets up the file actions and attributes and spawns; returns 0 or an errno. */
static int spawn_with(pid_t *pid, const char *file, const char *cwd, char **argv, char **envp, int in, int out, int err) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  int failed = posix_spawn_file_actions_init(&actions);
  if (failed) return failed;
  failed = posix_spawnattr_init(&attributes);
  if (failed) {
    posix_spawn_file_actions_destroy(&actions);
    return failed;
  }
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  if (!failed) failed = posix_spawn_file_actions_adddup2(&actions, in, 0);
  if (!failed) failed = posix_spawn_file_actions_adddup2(&actions, out, 1);
  if (!failed) failed = posix_spawn_file_actions_adddup2(&actions, err, 2);
  if (!failed) failed = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (!failed) failed = posix_spawn_file_actions_addchdir_np(&actions, cwd);
  if (!failed) failed = posix_spawnattr_setsigmask(&attributes, &none);
  if (!failed) failed = posix_spawnattr_setsigdefault(&attributes, &all);
  if (!failed) failed = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (!failed) failed = posix_spawn(pid, file, &actions, &attributes, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  return failed;
}

static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "spawn(file, argv, envp, cwd)");
    return NULL;
  }

  char *file = string_of(env, args[0]);
  char *cwd = file ? string_of(env, args[3]) : NULL;
  char **argv = cwd ? strings_of(env, args[1]) : NULL;
  char **envp = argv ? strings_of(env, args[2]) : NULL;
  if (!envp) {
    free(file);
    free(cwd);
    free_strings(argv);
    return NULL;
  }

  // Socket pairs, as libuv gives child_process's children: the process sees the same stdio.
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  int failed = 0;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out) ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, err))
    failed = errno;
  pid_t pid = 0;
  if (!failed) failed = spawn_with(&pid, file, cwd, argv, envp, in[0], out[1], err[1]);
  free(file);
  free(cwd);
  free_strings(argv);
  free_strings(envp);
  int child_ends[3] = {in[0], out[1], err[1]};
  double inodes[3] = {0, 0, 0};
  for (int i = 0; i < 3 && !failed; i++) {
    struct stat status;
    if (fstat(child_ends[i], &status) == 0) inodes[i] = (double)status.st_ino;
  }
  close_all(child_ends, 3);
  if (failed) {
    int ours[3] = {in[1], out[0], err[0]};
    close_all(ours, 3);
    return throw_errno(env, failed);
  }

  napi_value result;
  double values[7] = {pid, in[1], out[0], err[0], inodes[0], inodes[1], inodes[2]};
  // The process runs from here on: the fds are handed over even if the array cannot be made.
  if (napi_create_array_with_length(env, 7, &result) != napi_ok) {
    int ours[3] = {in[1], out[0], err[0]};
    close_all(ours, 3);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    napi_throw_error(env, "ERR_NAPI", "cannot return the started process");
    return NULL;
  }
  for (uint32_t i = 0; i < 7; i++) {
    napi_value number;
    if (napi_create_double(env, values[i], &number) != napi_ok || napi_set_element(env, result, i, number) != napi_ok) {
      int ours[3] = {in[1], out[0], err[0]};
      close_all(ours, 3);
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      napi_throw_error(env, "ERR_NAPI", "cannot return the started process");
      return NULL;
    }
  }
  return result;
}

static napi_value Reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  int32_t pid;
  if (argc < 1 || napi_get_value_int32(env, args[0], &pid) != napi_ok || pid <= 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "reap(pid) takes a positive pid");
    return NULL;
  }
  int status = 0;
  pid_t reaped;
  do reaped = waitpid(pid, &status, WNOHANG);
  while (reaped < 0 && errno == EINTR);
  napi_value result, code, signal;
  if (reaped == 0) {
    CHECK(env, napi_get_null(env, &result));
    return result;
  }
  // Gone without a status (reaped elsewhere): reported as exited with neither.
  if (reaped > 0 && WIFEXITED(status)) CHECK(env, napi_create_int32(env, WEXITSTATUS(status), &code));
  else CHECK(env, napi_get_null(env, &code));
  if (reaped > 0 && WIFSIGNALED(status)) CHECK(env, napi_create_int32(env, WTERMSIG(status), &signal));
  else CHECK(env, napi_get_null(env, &signal));
  CHECK(env, napi_create_array_with_length(env, 2, &result));
  CHECK(env, napi_set_element(env, result, 0, code));
  CHECK(env, napi_set_element(env, result, 1, signal));
  return result;
}

/* prctl(option, value), then true; throws the errno when it fails. */
static napi_value set_process_option(napi_env env, int option, unsigned long value) {
  if (prctl(option, value, 0, 0, 0) != 0) return throw_errno(env, errno);
  napi_value result;
  CHECK(env, napi_get_boolean(env, true, &result));
  return result;
}

static napi_value Subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  return set_process_option(env, PR_SET_CHILD_SUBREAPER, 1);
}

/*
 * undumpable() -> true once this process is not dumpable (PR_SET_DUMPABLE 0): its /proc/<pid>
 * environ, mem and fd become readable by root only (its own environ and mem included) and
 * processes of the same user cannot ptrace it, so a function cannot read alyx's secrets. What
 * it starts is dumpable again after exec.
 */
static napi_value Undumpable(napi_env env, napi_callback_info info) {
  (void)info;
  return set_process_option(env, PR_SET_DUMPABLE, 0);
}

static napi_value export_function(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value function;
  CHECK(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, NULL, &function));
  CHECK(env, napi_set_named_property(env, exports, name, function));
  return exports;
}

NAPI_MODULE_INIT() {
  if (!export_function(env, exports, "spawn", Spawn)) return NULL;
  if (!export_function(env, exports, "reap", Reap)) return NULL;
  if (!export_function(env, exports, "subreaper", Subreaper)) return NULL;
  if (!export_function(env, exports, "undumpable", Undumpable)) return NULL;
  return exports;
}
