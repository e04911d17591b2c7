/*
 * posix_spawn as a Node-API addon: the way to start a process that libuv uses on macOS only
 * (on Linux it forks, libuv/libuv#3520). glibc's posix_spawn starts the child with
 * clone(CLONE_VM | CLONE_VFORK): no copy of the parent's page tables, which fork() makes and
 * exec then throws away, and the parent's thread is held only until the exec.
 *
 *   spawn(file, argv, envp, cwd[, input]) -> [pid, stdin fd, stdout fd, stderr fd, the inodes of
 *     the child's ends of those three sockets (whoever holds one later is the invocation's), and
 *     how many bytes of the input went in]
 *     three socket pairs; the child in a new session with default signal handlers and no signals
 *     blocked, as libuv sets up a detached child, and with no fd but 0-2 (closefrom in the child:
 *     a descriptor some library opened without close-on-exec does not reach a function);
 *     with an input (the request document), what stdin's socket takes of it goes in before the
 *     process starts, and when that is all of it (the usual case) its end follows and stdin's fd
 *     is closed here (-1 in its place), else the caller writes the rest;
 *     throws an Error whose code is the errno name, or ERR_NUL_BYTE for a string that holds a
 *     NUL (C would cut it there silently)
 *   start(file, argv, envp, cwd, input) -> [a promise of [pid, stdin fd or -1, bytes of the
 *     input written], -1, stdout fd, stderr fd, the three inodes, 0]
 *     the same process as spawn's, started on a thread of libuv's pool: glibc's posix_spawn
 *     holds the thread that calls it until the child has exec'd, and this way that is not the
 *     JavaScript thread. The input goes in on that thread, as spawn's does; stdin's fd, if the
 *     rest is the caller's to write, comes with the pid. stdout's and stderr's fds are there at
 *     once; the promise rejects as spawn throws, and they are then the caller's to close. The
 *     child is a child of that pool thread: it never shows in the main thread's /proc
 *     children, where orphans come (see src/process/orphans.ts)
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

/* What one start needs, copied from its JS arguments; owned by C until freed. */
typedef struct {
  char *file, *cwd;
  char **argv, **envp;
  /* The request document for stdin, if given, and how much of it the socket took before the start. */
  char *input;
  size_t input_length, written;
  /* Ours: stdin's writing end, stdout's and stderr's reading ends. The child's: the others. */
  int ours[3], child_ends[3];
  double inodes[3];
} Request;

static void free_request(Request *request) {
  free(request->file);
  free(request->cwd);
  free_strings(request->argv);
  free_strings(request->envp);
  free(request->input);
  request->file = request->cwd = request->input = NULL;
  request->argv = request->envp = NULL;
}

/* The optional input as UTF-8; false with an exception pending. */
static bool input_of(napi_env env, napi_value value, Request *request) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) {
    napi_throw_error(env, "ERR_NAPI", "cannot read the input");
    return false;
  }
  if (type == napi_undefined) return true;
  size_t length;
  if (type != napi_string || napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the input is a string");
    return false;
  }
  if (!(request->input = malloc(length + 1))) {
    throw_errno(env, ENOMEM);
    return false;
  }
  if (napi_get_value_string_utf8(env, value, request->input, length + 1, &request->input_length) != napi_ok) {
    napi_throw_error(env, "ERR_NAPI", "cannot read the input");
    return false;
  }
  return true;
}

/*
 * Puts what the socket takes of the input into it at once, before the process exists. All of
 * it (the usual case): the end of the input follows, and stdin's fd is closed here.
 */
static void send_input(Request *request) {
  if (!request->input) return;
  int fd = request->ours[0];
  while (request->written < request->input_length) {
    ssize_t sent = send(fd, request->input + request->written, request->input_length - request->written, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return;
    request->written += (size_t)sent;
  }
  shutdown(fd, SHUT_WR);
  close(fd);
  request->ours[0] = -1;
}

/*
 * Reads (file, argv, envp, cwd[, input]) and makes the three socket pairs (as libuv gives
 * child_process's children: the process sees the same stdio). Returns false with an exception
 * pending, having freed and closed everything.
 */
static bool prepare(napi_env env, napi_callback_info info, Request *request) {
  size_t argc = 5;
  napi_value args[5];
  *request = (Request){.ours = {-1, -1, -1}, .child_ends = {-1, -1, -1}};
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok) {
    napi_throw_error(env, "ERR_NAPI", "cannot read the arguments");
    return false;
  }
  if (argc < 4) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "(file, argv, envp, cwd)");
    return false;
  }
  request->file = string_of(env, args[0]);
  request->cwd = request->file ? string_of(env, args[3]) : NULL;
  request->argv = request->cwd ? strings_of(env, args[1]) : NULL;
  request->envp = request->argv ? strings_of(env, args[2]) : NULL;
  if (!request->envp || (argc >= 5 && !input_of(env, args[4], request))) {
    free_request(request);
    return false;
  }
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out) ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, err)) {
    int failed = errno;
    int all[6] = {in[0], in[1], out[0], out[1], err[0], err[1]};
    close_all(all, 6);
    free_request(request);
    throw_errno(env, failed);
    return false;
  }
  int ours[3] = {in[1], out[0], err[0]}, child_ends[3] = {in[0], out[1], err[1]};
  for (int i = 0; i < 3; i++) {
    request->ours[i] = ours[i];
    request->child_ends[i] = child_ends[i];
    struct stat status;
    if (fstat(child_ends[i], &status) == 0) request->inodes[i] = (double)status.st_ino;
  }
  return true;
}

/*
 * Puts the input in, then starts the process; returns 0 or an errno. Frees the strings and
 * closes the child's ends.
 */
static int launch(Request *request, pid_t *pid) {
  send_input(request);
  int failed = spawn_with(pid, request->file, request->cwd, request->argv, request->envp, request->child_ends[0], request->child_ends[1], request->child_ends[2]);
  free_request(request);
  close_all(request->child_ends, 3);
  for (int i = 0; i < 3; i++) request->child_ends[i] = -1;
  return failed;
}

/* An array of `first`, then our three fds, the three inodes and how much input went in; NULL if it cannot be made. */
static napi_value started_array(napi_env env, napi_value first, const Request *request) {
  napi_value result;
  if (napi_create_array_with_length(env, 8, &result) != napi_ok || napi_set_element(env, result, 0, first) != napi_ok) return NULL;
  double values[7] = {request->ours[0], request->ours[1], request->ours[2], request->inodes[0], request->inodes[1], request->inodes[2], (double)request->written};
  for (uint32_t i = 0; i < 7; i++) {
    napi_value number;
    if (napi_create_double(env, values[i], &number) != napi_ok || napi_set_element(env, result, i + 1, number) != napi_ok) return NULL;
  }
  return result;
}

static void end_process(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

static napi_value Spawn(napi_env env, napi_callback_info info) {
  Request request;
  if (!prepare(env, info, &request)) return NULL;
  pid_t pid = 0;
  int failed = launch(&request, &pid);
  if (failed) {
    close_all(request.ours, 3);
    return throw_errno(env, failed);
  }
  napi_value pid_value, result = NULL;
  // The process runs from here on: the fds are handed over even if the array cannot be made.
  if (napi_create_double(env, pid, &pid_value) == napi_ok) result = started_array(env, pid_value, &request);
  if (!result) {
    close_all(request.ours, 3);
    end_process(pid);
    napi_throw_error(env, "ERR_NAPI", "cannot return the started process");
  }
  return result;
}

/* A start on libuv's pool: prepared on the JS thread, launched on the pool, settled back on the JS thread. */
typedef struct {
  Request request;
  napi_async_work work;
  napi_deferred deferred;
  pid_t pid;
  int failed;
  bool launched;
} Start;

static void start_execute(napi_env env, void *data) {
  (void)env;
  Start *start = data;
  start->failed = launch(&start->request, &start->pid);
  start->launched = true;
}

/* [pid, stdin fd or -1, bytes of the input written]; NULL if it cannot be made. */
static napi_value started_value(napi_env env, const Start *start) {
  napi_value result, number;
  double values[3] = {start->pid, start->request.ours[0], (double)start->request.written};
  if (napi_create_array_with_length(env, 3, &result) != napi_ok) return NULL;
  for (uint32_t i = 0; i < 3; i++)
    if (napi_create_double(env, values[i], &number) != napi_ok || napi_set_element(env, result, i, number) != napi_ok) return NULL;
  return result;
}

/* An Error as spawn throws it: the errno name as its code. NULL if it cannot be made. */
static napi_value errno_error(napi_env env, int number) {
  const char *name = strerrorname_np(number);
  napi_value code, message, error;
  if (napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, strerror(number), NAPI_AUTO_LENGTH, &message) != napi_ok || napi_create_error(env, code, message, &error) != napi_ok)
    return NULL;
  return error;
}

static void start_complete(napi_env env, napi_status status, void *data) {
  Start *start = data;
  // Cancelled before it ran (the environment is going away): nothing was started.
  if (!start->launched) {
    free_request(&start->request);
    close_all(start->request.child_ends, 3);
    start->failed = ECANCELED;
  }
  (void)status;
  napi_value started = start->failed ? NULL : started_value(env, start);
  if (started) {
    // A deferred is spent by a settle that fails too: it is not touched again.
    if (napi_resolve_deferred(env, start->deferred, started) != napi_ok) {
      if (start->request.ours[0] >= 0) close(start->request.ours[0]);
      end_process(start->pid);
    }
  } else {
    // stdin is this side's until the promise resolves (the caller has the other two).
    if (start->request.ours[0] >= 0) close(start->request.ours[0]);
    if (!start->failed) {
      // Started, but JavaScript cannot be told its pid: it must not run unowned.
      end_process(start->pid);
      start->failed = ENOMEM;
    }
    napi_value error = errno_error(env, start->failed);
    // Without an Error the promise still settles (with undefined): a caller waiting on it must not wait forever.
    if (!error && napi_get_undefined(env, &error) != napi_ok) error = NULL;
    if (!error || napi_reject_deferred(env, start->deferred, error) != napi_ok) {
      // Node-API itself is failing (the environment is going away): there is nobody left to tell.
    }
  }
  if (napi_delete_async_work(env, start->work) != napi_ok) {
    // The work is then freed with the environment.
  }
  free(start);
}

static napi_value Start_(napi_env env, napi_callback_info info) {
  Start *start = calloc(1, sizeof(Start));
  if (!start) return throw_errno(env, ENOMEM);
  if (!prepare(env, info, &start->request)) {
    free(start);
    return NULL;
  }
  napi_value name, promise, result = NULL;
  bool made_work = false, made_promise = false;
  if (napi_create_string_utf8(env, "alyx:posix_spawn", NAPI_AUTO_LENGTH, &name) == napi_ok &&
      napi_create_async_work(env, NULL, name, start_execute, start_complete, start, &start->work) == napi_ok) {
    made_work = true;
    made_promise = napi_create_promise(env, &start->deferred, &promise) == napi_ok;
    // stdin stays here until the promise resolves: -1 in its place.
    Request shown = start->request;
    shown.ours[0] = -1;
    if (made_promise) result = started_array(env, promise, &shown);
  }
  if (!result || napi_queue_async_work(env, start->work) != napi_ok) {
    // Nothing started: everything goes back. The promise, which nobody holds, is settled quietly.
    close_all(start->request.ours, 3);
    close_all(start->request.child_ends, 3);
    free_request(&start->request);
    if (made_promise) {
      napi_value undefined;
      if (napi_get_undefined(env, &undefined) != napi_ok || napi_resolve_deferred(env, start->deferred, undefined) != napi_ok) {
        // Nobody holds the promise: left pending, it is collected with the rest.
      }
    }
    if (made_work && napi_delete_async_work(env, start->work) != napi_ok) {
      // The work never queued: it is freed with the environment.
    }
    free(start);
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) napi_throw_error(env, "ERR_NAPI", "cannot start the process");
    return NULL;
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
  if (!export_function(env, exports, "start", Start_)) return NULL;
  if (!export_function(env, exports, "reap", Reap)) return NULL;
  if (!export_function(env, exports, "subreaper", Subreaper)) return NULL;
  if (!export_function(env, exports, "undumpable", Undumpable)) return NULL;
  return exports;
}
