'use strict';
/**
 * alyx/handler: the helper that lets a JavaScript or TypeScript function (node, bun, deno) speak
 * alyx's protocol without reading stdin itself. Plain JavaScript with no dependencies and no
 * build step, so that it loads unchanged in every runtime and adds little to a function's start.
 *
 * index.mjs is this file's ESM twin: node loads an ESM file about 2 ms faster than it loads a
 * CommonJS file from ESM, which is most of what the helper costs an ESM function. Below the
 * marker the two are the same text (a test holds them so). That text requires nothing: node's
 * builtins come from process.getBuiltinModule, so that it runs as either format, and inside a
 * bundle whose format has no require (esbuild --format=esm).
 */
// Inside an ESM bundle this file has no __filename; the bundle is then the entry anyway.
const SELF = typeof __filename === 'string' ? __filename : '';

// ---- the same in index.cjs and index.mjs from here to the exports ----

const LEVELS = ['debug', 'info', 'warn', 'error'];
/** In reuse mode, how long after the end of input the process may keep itself alive before it is ended. */
const REUSE_EXIT_GRACE_MS = 1000;

/** An error whose code, message, status and details become the response's `error`. */
class FunctionError extends Error {
  constructor(code, message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FunctionError';
    this.code = String(code);
    if (options.status !== undefined) this.status = options.status;
    if (options.details !== undefined) this.details = options.details;
  }
}

/**
 * In reuse mode stdout carries only the protocol from the moment the helper loads: a module runs
 * after its imports, so even the first lines of the function's own module print to stderr.
 */
const writeProtocol = process.env.ALYX_REUSE === '1' ? redirectStdout() : null;
let serving = false;

/** Serves requests with `fn` once the calling module has finished evaluating, and returns `fn`. */
function handler(fn) {
  if (typeof fn !== 'function') throw new TypeError('handler() takes the function that answers each request');
  if (serving || !shouldServe()) return fn;
  serving = true;
  if (writeProtocol) setImmediate(() => serveReuse(fn, writeProtocol));
  else setImmediate(() => serveOnce(fn));
  return fn;
}

/**
 * alyx names the function it starts (ALYX_FUNCTION). Elsewhere (the earlier server, a test, a
 * shell) the helper serves only when handler() was called by the program's entry file: a test
 * that imports a function's module gets its function back, and its own stdin is left alone.
 */
function shouldServe() {
  if (process.env.ALYX_FUNCTION) return true;
  if (builtin('node:worker_threads')?.isMainThread === false) return false;
  const entry = process.argv[1];
  if (!entry) return false;
  const caller = callerFile();
  if (caller === null) return true;
  const same = (a, b) => a === b || stripExtension(a) === b;
  return same(realPath(caller), realPath(entry)) || same(caller, entry);
}

/** The file of the first stack frame outside this helper: the module that called handler(). */
function callerFile() {
  const stack = new Error().stack;
  if (typeof stack !== 'string') return null;
  const own = new Set([SELF, realPath(SELF)]);
  for (const line of stack.split('\n').slice(1)) {
    const match = /(?:\(|at )((?:file:\/\/)?\/[^():]*):\d+:\d+\)?\s*$/.exec(line);
    if (!match) continue;
    const file = match[1].startsWith('file://') ? decodeURIComponent(new URL(match[1]).pathname) : match[1];
    if (!own.has(file) && !own.has(realPath(file))) return file;
  }
  return null;
}

/**
 * A builtin module, or undefined where process.getBuiltinModule is missing (node before 20.16):
 * only the checks made outside alyx and the console of bun and deno (which have it) use one.
 */
function builtin(name) {
  return process.getBuiltinModule?.(name);
}

function realPath(file) {
  try {
    return builtin('node:fs')?.realpathSync(file) ?? file;
  } catch {
    return file;
  }
}

function stripExtension(file) {
  return file.replace(/\.[cm]?[jt]sx?$/, '');
}

/** One request from all of stdin, one response line on stdout; the process then ends by itself. */
function serveOnce(fn) {
  const chunks = [];
  process.stdin.on('data', (chunk) => chunks.push(chunk));
  process.stdin.on('end', () => {
    const request = parseRequest(Buffer.concat(chunks).toString('utf8'));
    if (request === null) {
      process.exitCode = 1;
      return;
    }
    void invoke(fn, request).then((line) => process.stdout.write(line));
  });
}

/**
 * Reuse mode: a handshake line, then one request per stdin line and one response line each, one
 * request at a time. stdout carries nothing else. At the end of input the process ends.
 */
function serveReuse(fn, writeProtocol) {
  const lines = [];
  let partial = [];
  let busy = false;
  let ended = false;
  let stopped = false;

  const next = () => {
    if (busy || stopped) return;
    const line = lines.shift();
    if (line === undefined) {
      if (ended) {
        stopped = true;
        finish(0);
      }
      return;
    }
    const request = parseRequest(line);
    if (request === null) {
      // alyx never sends such a line: the process ends, and alyx reports the invocation it sent.
      stopped = true;
      process.stdin.destroy();
      finish(1);
      return;
    }
    busy = true;
    void invoke(fn, request).then((response) => {
      writeProtocol(response, () => {
        busy = false;
        next();
      });
    });
  };

  process.stdin.on('data', (chunk) => {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      partial.push(chunk.subarray(start, newline));
      pushLine(Buffer.concat(partial).toString('utf8'));
      partial = [];
      start = newline + 1;
    }
    if (start < chunk.length) partial.push(chunk.subarray(start));
    next();
  });
  process.stdin.on('end', () => {
    if (partial.length > 0) pushLine(Buffer.concat(partial).toString('utf8'));
    partial = [];
    ended = true;
    next();
  });

  function pushLine(line) {
    if (line.trim() !== '') lines.push(line);
  }

  writeProtocol('{"alyx_reuse":1}\n');
}

/**
 * Ends a reuse process: at once if nothing else keeps it alive, otherwise after a short grace,
 * since what a function keeps in globals (connections, timers) would hold it open for good.
 */
function finish(code) {
  if (code !== 0) process.exitCode = code;
  setTimeout(() => process.exit(), REUSE_EXIT_GRACE_MS).unref();
}

/**
 * Sends the function's stdout writes to stderr, and returns a writer to the real stdout. node's
 * console writes through process.stdout.write; bun's and deno's write to fd 1 themselves, so
 * there the console's methods are replaced by those of a console that writes to stderr.
 */
function redirectStdout() {
  const stdout = process.stdout;
  const write = stdout.write.bind(stdout);
  const stderr = process.stderr;
  stdout.write = function writeToStderr(...args) {
    return stderr.write(...args);
  };
  const Console = process.versions.bun || process.versions.deno ? builtin('node:console')?.Console : undefined;
  if (Console) {
    const quiet = new Console({ stdout: stderr, stderr });
    for (const key of Object.keys(quiet)) {
      if (typeof quiet[key] === 'function' && typeof console[key] === 'function') console[key] = quiet[key].bind(quiet);
    }
  }
  return (line, done) => write(line, done);
}

/** The request document of one line or of all stdin, or null (reported on stderr) when it is not one. */
function parseRequest(text) {
  let request;
  try {
    request = JSON.parse(text);
  } catch (error) {
    process.stderr.write(`alyx/handler: the request on stdin is not JSON (${error.message.replace(/\s+/g, ' ')})\n`);
    return null;
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    process.stderr.write('alyx/handler: the request on stdin is not a JSON object\n');
    return null;
  }
  return request;
}

/** Runs `fn` on one request and resolves to its response line; never rejects. */
async function invoke(fn, request) {
  const logs = [];
  const logger = makeLogger(logs);
  const ctx = makeContext(request, logger.log);
  let response;
  try {
    const output = await fn(request.input ?? {}, ctx);
    response = { request_id: request.request_id, success: true, output: output === undefined ? null : output, logs };
  } catch (error) {
    response = { request_id: request.request_id, success: false, error: describeError(error), logs };
  }
  logger.close();
  return encode(response);
}

/** The response's `error` for what the function threw. */
function describeError(error) {
  if (isFunctionError(error)) {
    const described = { code: error.code, message: String(error.message) };
    if (error.details !== undefined) described.details = error.details;
    if (Number.isInteger(error.status) && error.status >= 400 && error.status <= 599) described.status = error.status;
    return described;
  }
  // An unexpected throw: its stack is for the author (stderr, alyx's log), its message for the caller.
  process.stderr.write(`${error instanceof Error && error.stack ? error.stack : String(error)}\n`);
  return { code: 'FUNCTION_ERROR', message: error instanceof Error ? error.message : String(error) };
}

/** Also recognises a FunctionError from another copy of this helper (a function with its own install). */
function isFunctionError(error) {
  return error instanceof FunctionError || (error instanceof Error && error.name === 'FunctionError' && typeof error.code === 'string');
}

/** The response as one JSON line; output or log data that JSON cannot hold becomes a FUNCTION_ERROR. */
function encode(response) {
  try {
    return `${JSON.stringify(response)}\n`;
  } catch (error) {
    const problem = `the response cannot be encoded as JSON: ${error.message}`;
    process.stderr.write(`alyx/handler: ${problem}\n`);
    const logs = response.logs.map(({ level, message, timestamp }) => ({ level, message, timestamp }));
    return `${JSON.stringify({ request_id: response.request_id, success: false, error: { code: 'FUNCTION_ERROR', message: problem }, logs })}\n`;
  }
}

/** The `ctx` a function receives: the request's context, a logger that fills `logs`, and invoke(). */
function makeContext(request, log) {
  const context = request.context !== null && typeof request.context === 'object' ? request.context : {};
  return {
    requestId: request.request_id,
    function: request.function,
    auth: context.auth ?? null,
    env: context.env ?? {},
    trigger: context.trigger ?? null,
    attempt: context.attempt ?? 1,
    traceparent: context.traceparent ?? null,
    log,
    invoke: (name, input) => invokeFunction(context, name, input),
  };
}

/** ctx.log, which fills `logs` until close(): the response has been encoded by then. */
function makeLogger(logs) {
  let closed = false;
  const log = {};
  for (const level of LEVELS) {
    log[level] = (message, data) => {
      const entry = { level, message: String(message) };
      if (data !== undefined) entry.data = data;
      entry.timestamp = new Date().toISOString();
      // A line logged after the response was written would be lost with its array: stderr keeps it.
      if (closed) process.stderr.write(`${safeStringify(entry)}\n`);
      else logs.push(entry);
    };
  }
  return { log, close: () => (closed = true) };
}

function safeStringify(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return JSON.stringify({ ...value, data: '[not JSON]' });
  }
}

/**
 * Calls another function through alyx as this invocation (its internal token), and returns that
 * function's output or throws its error as a FunctionError with the HTTP status.
 */
async function invokeFunction(context, name, input = {}) {
  if (typeof context.alyx_url !== 'string' || typeof context.internal_token !== 'string') {
    throw new FunctionError('INVOKE_UNAVAILABLE', 'ctx.invoke needs alyx_url and internal_token in the request context');
  }
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${context.internal_token}` };
  if (typeof context.traceparent === 'string') headers.traceparent = context.traceparent;
  const url = `${context.alyx_url.replace(/\/+$/, '')}/api/functions/${encodeURIComponent(name)}`;
  let response;
  let text;
  try {
    response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(input) });
    text = await response.text();
  } catch (error) {
    throw new FunctionError('INVOKE_FAILED', `calling ${name} through alyx failed: ${error.message}`, { status: 502, cause: error });
  }
  let envelope;
  try {
    envelope = JSON.parse(text);
  } catch {
    envelope = null;
  }
  if (envelope === null || typeof envelope !== 'object') {
    throw new FunctionError('INVOKE_FAILED', `calling ${name}: alyx answered ${response.status} without an envelope`, { status: 502 });
  }
  if (envelope.success === true) return envelope.output;
  const error = envelope.error !== null && typeof envelope.error === 'object' ? envelope.error : {};
  const options = { status: response.status };
  if (error.details !== undefined) options.details = error.details;
  throw new FunctionError(error.code ?? 'FUNCTION_ERROR', error.message ?? `${name} failed`, options);
}

// ---- end of the shared text ----

module.exports = { handler, FunctionError };
