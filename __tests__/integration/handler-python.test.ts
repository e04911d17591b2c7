import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cleanEnv, REPO_ROOT, runCommand } from '../helpers/cli';
import { waitFor } from '../helpers/processes';
import { makeProject, removeProject } from '../helpers/project';
import { announceExercised, hasCommand, warnSkip } from '../helpers/tools';

/**
 * SPEC §10: the Python helper (`from alyx import handler, FunctionError`), driven as alyx drives
 * a function: one request on stdin (one-shot), or `ALYX_REUSE=1` and one request per line.
 * Every case runs under each python from 3.9 on that the machine has.
 */

const SHIMS = path.join(REPO_ROOT, 'shims', 'python');
const PRELOAD = fs.readFileSync(path.join(REPO_ROOT, 'shims', 'python-preload.py'), 'utf8');
const DEADLINE_MS = 15_000;

const FUNCTION = `import atexit
import os
import sys

from alyx import FunctionError, handler

calls = 0
atexit.register(lambda: sys.stderr.write("atexit ran\\n"))


@handler
def main(input, ctx):
    global calls
    calls += 1
    mode = input.get("mode")
    if mode == "fail":
        raise FunctionError("OUT_OF_STOCK", "none left", 409, {"sku": "A1"})
    if mode == "fail-plain":
        raise FunctionError("NOT_READY", "later")
    if mode == "crash":
        raise ValueError("the crash message")
    if mode == "context":
        return {"request_id": ctx.request_id, "function": ctx.function, "auth": ctx.auth, "env": ctx.env,
                "trigger": ctx.trigger, "attempt": ctx.attempt, "traceparent": ctx.traceparent}
    if mode == "log":
        ctx.log.debug("debugging")
        ctx.log.info("counted", {"n": 1})
        ctx.log.warn("careful", [1, 2])
        ctx.log.error("broken", {"set": {1}})
        return "logged"
    if mode == "log-then-fail":
        ctx.log.warn("about to fail")
        raise FunctionError("FAILED_AFTER_LOG", "it logged first")
    if mode == "invoke":
        return {"got": ctx.invoke(input["target"], input.get("input"))}
    if mode == "invoke-error":
        try:
            ctx.invoke(input["target"], input.get("input"))
        except FunctionError as error:
            return {"code": error.code, "message": error.message, "status": error.status, "details": error.details}
        return "no error"
    if mode == "print":
        print("printed by the function")
        return "printed"
    if mode == "not-json":
        return {"when": object()}
    return {"echo": input, "calls": calls, "pid": os.getpid()}
`;

/** A loop-bound resource (a task started by the first call) must outlive its invocation. */
const ASYNC_FUNCTION = `import asyncio

from alyx import FunctionError, handler

state = {}


async def tick():
    while True:
        state["ticks"] += 1
        await asyncio.sleep(0.005)


@handler
async def main(input, ctx):
    loop = asyncio.get_running_loop()
    if "loop" not in state:
        state["loop"] = id(loop)
        state["ticks"] = 0
        state["ticker"] = loop.create_task(tick())
    await asyncio.sleep(0.05)
    if input.get("mode") == "fail":
        raise FunctionError("ASYNC_FAIL", "failed after awaiting", 418)
    if input.get("mode") == "crash":
        raise RuntimeError("async crash")
    ctx.log.info("awaited")
    return {"same_loop": state["loop"] == id(loop), "ticking": state["ticks"] > 0, "n": input.get("n")}
`;

/** Prints while its module loads (after importing the helper) and while it runs. */
const LOUD_FUNCTION = `from alyx import handler

print("printed while loading")


@handler
def main(input, ctx):
    print("printed by the handler")
    return {"quiet": False}
`;

const TYPED_FUNCTION = `from __future__ import annotations

from typing import Any, Dict, List

from alyx import Context, FunctionError, handler


@handler
def main(input: Dict[str, Any], ctx: Context) -> Dict[str, Any]:
    name = input.get("name")
    if not isinstance(name, str):
        raise FunctionError("INVALID_NAME", "name must be a string", status=422, details={"field": "name"})
    ctx.log.info("greeting", {"name": name})
    friends: List[Any] = ctx.invoke("friends", {"of": name}) if ctx.env.get("WITH_FRIENDS") else []
    attempt: int = ctx.attempt or 1
    return {"message": "Hello, %s!" % name, "friends": friends, "attempt": attempt, "request": ctx.request_id}
`;

/** A handler that cannot take (input, ctx), and a log call with the wrong type: mypy must refuse both. */
const MISTYPED_FUNCTION = `from __future__ import annotations

from typing import Any, Dict

from alyx import Context, handler


@handler
def main(input: Dict[str, Any]) -> str:
    return "no ctx"


def other(ctx: Context) -> None:
    ctx.log.info(42)
`;

interface Python {
  command: string;
  version: string;
}

function versionOf(command: string): string | null {
  const probe = spawnSync(command, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'], { encoding: 'utf8', timeout: 10_000 });
  return probe.status === 0 ? probe.stdout.trim() : null;
}

/** python3, every python3.X in PATH and /usr/bin, and pyenv's versions: each distinct version from 3.9 on. */
function findPythons(): Python[] {
  const candidates = ['python3'];
  const folders = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin'];
  for (const folder of new Set(folders.filter((entry) => entry !== ''))) {
    const names = fs.existsSync(folder) ? fs.readdirSync(folder) : [];
    for (const name of names) if (/^python3\.\d+$/.test(name)) candidates.push(path.join(folder, name));
  }
  const pyenv = path.join(process.env.PYENV_ROOT ?? path.join(os.homedir(), '.pyenv'), 'versions');
  const versions = fs.existsSync(pyenv) ? fs.readdirSync(pyenv) : [];
  for (const version of versions) candidates.push(path.join(pyenv, version, 'bin', 'python3'));

  const found = new Map<string, string>();
  for (const command of candidates) {
    if (command !== 'python3' && !fs.existsSync(command)) continue;
    const version = versionOf(command);
    const [major, minor] = (version ?? '0.0').split('.').map(Number);
    if (version !== null && major === 3 && minor >= 9 && !found.has(version)) found.set(version, command);
  }
  return [...found].map(([version, command]) => ({ command, version })).sort((a, b) => a.version.localeCompare(b.version, 'en', { numeric: true }));
}

/** A function process whose stdout is read as lines; it lives in its own group, which afterEach ends. */
class FunctionProcess {
  static readonly started = new Set<FunctionProcess>();
  readonly child: ChildProcessWithoutNullStreams;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout = '';
  stderr = '';
  closed = false;
  #read = 0;

  constructor(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { cwd, env, stdio: 'pipe', detached: true });
    FunctionProcess.started.add(this);
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    // A process that has already exited makes a write fail with EPIPE; its exit status tells the story.
    this.child.stdin.on('error', () => undefined);
    this.exit = new Promise((resolve) => {
      this.child.on('error', () => resolve({ code: null, signal: null }));
      this.child.on('close', (code, signal) => {
        this.closed = true;
        resolve({ code, signal });
      });
    });
  }

  send(request: unknown): void {
    this.child.stdin.write(`${JSON.stringify(request)}\n`);
  }

  /** The next complete stdout line. */
  async nextLine(timeoutMs = DEADLINE_MS): Promise<string> {
    await waitFor(() => this.stdout.includes('\n', this.#read) || this.closed, timeoutMs);
    const end = this.stdout.indexOf('\n', this.#read);
    if (end === -1) throw new Error(`no line on stdout within ${timeoutMs} ms (exited: ${this.closed}); stderr:\n${this.stderr}`);
    const line = this.stdout.slice(this.#read, end);
    this.#read = end + 1;
    return line;
  }

  async nextResponse(): Promise<Record<string, unknown>> {
    return JSON.parse(await this.nextLine()) as Record<string, unknown>;
  }

  async exited(timeoutMs = DEADLINE_MS): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`the process did not exit within ${timeoutMs} ms; stderr:\n${this.stderr}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exit, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the process group, whatever state it is in, and waits for the end. */
  async end(): Promise<void> {
    if (!this.closed && this.child.pid !== undefined) {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.exited(5000).catch(() => undefined);
    FunctionProcess.started.delete(this);
  }
}

afterEach(async () => {
  await Promise.all([...FunctionProcess.started].map((started) => started.end()));
});

const request = (input: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  request_id: `req-${Math.random().toString(16).slice(2)}`,
  function: 'shop',
  input,
  context: { auth: null, env: {}, alyx_url: 'http://127.0.0.1:9', internal_token: 'token' },
  ...extra,
});

/** A tiny stand-in for alyx's /api/functions/:name, recording what it was sent. */
interface Received {
  method: string;
  url: string;
  authorization: string | undefined;
  traceparent: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

function startAlyxStandIn(): Promise<{ server: http.Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const parsed: unknown = JSON.parse(body);
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        traceparent: req.headers.traceparent as string | undefined,
        contentType: req.headers['content-type'],
        body: parsed,
      });
      const answer = (status: number, envelope: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(envelope));
      };
      if (req.url === '/api/functions/greeter') answer(200, { request_id: 'callee', success: true, output: { hello: (parsed as { name: string }).name }, duration_ms: 1 });
      else answer(422, { request_id: 'callee', success: false, error: { code: 'INVALID_NAME', message: 'no such name', details: { field: 'name' } }, duration_ms: 1 });
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received }));
  });
}

const pythons = hasCommand('python3') ? findPythons() : [];
if (pythons.length === 0) warnSkip('the Python helper', 'python3 (3.9 or later)');
else announceExercised('the Python helper', pythons.map((python) => `python ${python.version} (${python.command})`));

let root: string;
let standIn: Awaited<ReturnType<typeof startAlyxStandIn>>;

beforeAll(async () => {
  root = makeProject({ 'shop/index.py': FUNCTION, 'async/index.py': ASYNC_FUNCTION, 'loud/index.py': LOUD_FUNCTION, 'typed/index.py': TYPED_FUNCTION, 'mistyped/index.py': MISTYPED_FUNCTION });
  standIn = await startAlyxStandIn();
});

afterAll(async () => {
  standIn.server.closeAllConnections();
  await new Promise((resolve) => standIn.server.close(resolve));
  removeProject(root);
});

/** The environment alyx gives a python function: the helper's folder appended to PYTHONPATH. */
const functionEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv =>
  cleanEnv({
    PYTHONPATH: [process.env.PYTHONPATH, SHIMS].filter((entry) => entry !== undefined && entry !== '').join(path.delimiter),
    // The checkout's shims/ stays free of __pycache__ folders.
    PYTHONDONTWRITEBYTECODE: '1',
    ...extra,
  });

// describe.each refuses an empty table: without python there is nothing to run (warnSkip said so).
const eachPython = pythons.length > 0 ? describe.each(pythons) : describe.skip.each([{ command: 'python3', version: 'missing' }]);

eachPython('python $version', ({ command }) => {
  const start = (fn: string, env: NodeJS.ProcessEnv = {}, args: string[] = ['index.py']): FunctionProcess =>
    new FunctionProcess(command, args, path.join(root, fn), functionEnv(env));

  /** One-shot: the request, then EOF; the response is stdout's last line. */
  const once = async (fn: string, body: Record<string, unknown> | string, env: NodeJS.ProcessEnv = {}) => {
    const proc = start(fn, env);
    proc.child.stdin.end(typeof body === 'string' ? body : JSON.stringify(body));
    const { code } = await proc.exited();
    const lines = proc.stdout.split('\n').filter((line) => line !== '');
    const response = lines.length > 0 ? (JSON.parse(lines[lines.length - 1]) as Record<string, unknown>) : null;
    return { code, stdout: proc.stdout, stderr: proc.stderr, lines, response };
  };

  describe('one-shot', () => {
    test('the value returned is output, with the request id, as one JSON line on stdout; the process ends normally', async () => {
      const sent = request({ name: 'World' });
      const result = await once('shop', sent);
      expect(result.code).toBe(0);
      expect(result.lines).toHaveLength(1);
      expect(result.response).toEqual({ request_id: sent.request_id, success: true, output: { echo: { name: 'World' }, calls: 1, pid: expect.any(Number) }, logs: [] });
      expect(result.stderr).toContain('atexit ran');
    });

    test('a FunctionError becomes error with its code, message, status and details', async () => {
      const result = await once('shop', request({ mode: 'fail' }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'OUT_OF_STOCK', message: 'none left', status: 409, details: { sku: 'A1' } } });
      expect(result.code).toBe(0);
    });

    test('a FunctionError without status or details has neither', async () => {
      const result = await once('shop', request({ mode: 'fail-plain' }));
      expect(result.response?.error).toEqual({ code: 'NOT_READY', message: 'later' });
    });

    test('any other exception becomes FUNCTION_ERROR with its message; its traceback goes to stderr', async () => {
      const result = await once('shop', request({ mode: 'crash' }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR', message: 'the crash message' } });
      expect(result.stderr).toContain('Traceback (most recent call last)');
      expect(result.stderr).toMatch(/index\.py", line \d+, in main/);
      expect(result.stderr).toContain('ValueError: the crash message');
      expect(result.stdout).not.toContain('Traceback');
    });

    test('output that is not JSON becomes FUNCTION_ERROR saying so', async () => {
      const result = await once('shop', request({ mode: 'not-json' }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR', message: expect.stringContaining('output is not JSON') } });
    });

    test('ctx holds the request id, the function and the context; missing fields are None', async () => {
      const context = {
        auth: { id: 'user-1', role: 'admin', claims: { sub: 'user-1' } },
        env: { KEY: 'value' },
        alyx_url: standIn.url,
        internal_token: 'secret',
        trigger: { type: 'http', method: 'POST', path: '/api/functions/shop' },
        attempt: 2,
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      };
      const full = await once('shop', request({ mode: 'context' }, { request_id: 'req-ctx', context }));
      expect(full.response?.output).toEqual({
        request_id: 'req-ctx', function: 'shop', auth: context.auth, env: { KEY: 'value' },
        trigger: context.trigger, attempt: 2, traceparent: context.traceparent,
      });
      const bare = await once('shop', { request_id: 'req-bare', function: 'shop', input: { mode: 'context' } });
      expect(bare.response?.output).toEqual({ request_id: 'req-bare', function: 'shop', auth: null, env: {}, trigger: null, attempt: null, traceparent: null });
    });

    test('ctx.log fills logs with level, message, data and an ISO-8601 UTC timestamp', async () => {
      const result = await once('shop', request({ mode: 'log' }));
      const logs = result.response?.logs as Array<Record<string, unknown>>;
      expect(logs.map(({ timestamp: _timestamp, ...entry }) => entry)).toEqual([
        { level: 'debug', message: 'debugging' },
        { level: 'info', message: 'counted', data: { n: 1 } },
        { level: 'warn', message: 'careful', data: [1, 2] },
        { level: 'error', message: 'broken', data: '{\'set\': {1}}' },
      ]);
      for (const { timestamp } of logs) expect(timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(result.response?.output).toBe('logged');
    });

    test('a failed invocation keeps what it logged', async () => {
      const result = await once('shop', request({ mode: 'log-then-fail' }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'FAILED_AFTER_LOG' }, logs: [{ level: 'warn', message: 'about to fail' }] });
    });

    test('ctx.invoke POSTs the input to alyx with the internal token and returns the output', async () => {
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const context = { auth: null, env: {}, alyx_url: `${standIn.url}/`, internal_token: 'token-for-invoke', traceparent };
      const before = standIn.received.length;
      const result = await once('shop', request({ mode: 'invoke', target: 'greeter', input: { name: 'Ada' } }, { context }));
      expect(result.response).toMatchObject({ success: true, output: { got: { hello: 'Ada' } } });
      expect(standIn.received.slice(before)).toEqual([
        { method: 'POST', url: '/api/functions/greeter', authorization: 'Bearer token-for-invoke', traceparent, contentType: 'application/json', body: { name: 'Ada' } },
      ]);
    });

    test("ctx.invoke raises the callee's error as a FunctionError whose status is the HTTP status", async () => {
      const context = { auth: null, env: {}, alyx_url: standIn.url, internal_token: 'token' };
      const result = await once('shop', request({ mode: 'invoke-error', target: 'picky', input: { name: '?' } }, { context }));
      expect(result.response?.output).toEqual({ code: 'INVALID_NAME', message: 'no such name', status: 422, details: { field: 'name' } });
    });

    test("ctx.invoke's error, not caught, becomes the function's own error with that status", async () => {
      const context = { auth: null, env: {}, alyx_url: standIn.url, internal_token: 'token' };
      const result = await once('shop', request({ mode: 'invoke', target: 'picky' }, { context }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'INVALID_NAME', message: 'no such name', status: 422, details: { field: 'name' } } });
    });

    test('ctx.invoke without anything listening raises INVOKE_FAILED', async () => {
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      const context = { auth: null, env: {}, alyx_url: `http://127.0.0.1:${port}`, internal_token: 'token' };
      const result = await once('shop', request({ mode: 'invoke-error', target: 'greeter' }, { context }));
      expect(result.response?.output).toMatchObject({ code: 'INVOKE_FAILED', status: null });
    });

    test('an async def handler runs to its result, and its FunctionError keeps its status', async () => {
      const ok = await once('async', request({ n: 7 }));
      expect(ok.response).toMatchObject({ success: true, output: { same_loop: true, n: 7 }, logs: [{ level: 'info', message: 'awaited' }] });
      const failed = await once('async', request({ mode: 'fail' }));
      expect(failed.response).toMatchObject({ success: false, error: { code: 'ASYNC_FAIL', status: 418 } });
      expect(ok.code).toBe(0);
      expect(failed.code).toBe(0);
    });

    test("the function's prints stay on stdout, before the response line, as before helpers", async () => {
      const result = await once('loud', request({}));
      expect(result.lines.slice(0, -1)).toEqual(['printed while loading', 'printed by the handler']);
      expect(result.response).toMatchObject({ success: true, output: { quiet: false } });
    });

    test('stdin that is not a request: a clear message on stderr and exit status 1', async () => {
      for (const body of ['this is not json', '[1, 2]', '']) {
        const result = await once('shop', body);
        expect(result.code).toBe(1);
        expect(result.stdout).toBe('');
        expect(result.stderr).toContain('stdin is not a request');
        expect(result.stderr).not.toContain('Traceback');
      }
    });

    test('imported rather than run, the decorator returns the function and serves nothing', async () => {
      const proc = start('shop', {}, ['-c', 'import index; print(index.main({"a": 1}, None)["echo"])']);
      proc.child.stdin.end();
      expect(await proc.exited()).toEqual({ code: 0, signal: null });
      expect(proc.stdout).toBe("{'a': 1}\n");
    });

    test("under alyx's preload the handler serves as under the plain interpreter", async () => {
      const proc = start('shop', {}, ['-c', PRELOAD, 'index.py']);
      const sent = request({ name: 'preloaded' });
      proc.child.stdin.end(JSON.stringify(sent));
      expect(await proc.exited()).toEqual({ code: 0, signal: null });
      expect(JSON.parse(proc.stdout)).toMatchObject({ request_id: sent.request_id, success: true, output: { echo: { name: 'preloaded' } } });
    });
  });

  describe('reuse (ALYX_REUSE=1)', () => {
    const reuse = (fn: string, args?: string[]): FunctionProcess => start(fn, { ALYX_REUSE: '1' }, args);

    test('a handshake line, then one response line per request, in order, from one process', async () => {
      const proc = reuse('shop');
      expect(await proc.nextLine()).toBe('{"alyx_reuse":1}');
      const sent = [request({ n: 1 }), request({ n: 2 }), request({ n: 3 })];
      for (const each of sent) proc.send(each);
      const answers = [await proc.nextResponse(), await proc.nextResponse(), await proc.nextResponse()];
      expect(answers.map((answer) => answer.request_id)).toEqual(sent.map((each) => each.request_id));
      expect(answers.map((answer) => (answer.output as { calls: number }).calls)).toEqual([1, 2, 3]);
      expect(new Set(answers.map((answer) => (answer.output as { pid: number }).pid))).toEqual(new Set([proc.child.pid]));
    });

    test('EOF on stdin ends the process with status 0', async () => {
      const proc = reuse('shop');
      await proc.nextLine();
      proc.send(request({}));
      await proc.nextResponse();
      proc.child.stdin.end();
      expect(await proc.exited()).toEqual({ code: 0, signal: null });
      expect(proc.stderr).toContain('atexit ran');
    });

    test('an error in one request answers that request and the process goes on', async () => {
      const proc = reuse('shop');
      await proc.nextLine();
      const sent = [request({ mode: 'crash' }), request({ mode: 'fail' }), request({ n: 3 })];
      for (const each of sent) proc.send(each);
      expect(await proc.nextResponse()).toMatchObject({ request_id: sent[0].request_id, success: false, error: { code: 'FUNCTION_ERROR', message: 'the crash message' } });
      expect(await proc.nextResponse()).toMatchObject({ request_id: sent[1].request_id, success: false, error: { code: 'OUT_OF_STOCK', status: 409 } });
      expect(await proc.nextResponse()).toMatchObject({ request_id: sent[2].request_id, success: true, output: { calls: 3 } });
      expect(proc.stderr).toContain('ValueError: the crash message');
      expect(proc.closed).toBe(false);
    });

    test("the function's prints, while loading and while running, go to stderr: stdout holds only protocol lines", async () => {
      const proc = reuse('loud');
      expect(await proc.nextLine()).toBe('{"alyx_reuse":1}');
      proc.send(request({}));
      proc.send(request({ mode: 'print' }));
      expect(await proc.nextResponse()).toMatchObject({ success: true, output: { quiet: false } });
      expect(await proc.nextResponse()).toMatchObject({ success: true });
      proc.child.stdin.end();
      expect(await proc.exited()).toEqual({ code: 0, signal: null });
      expect(proc.stdout.split('\n').filter((line) => line !== '')).toHaveLength(3);
      expect(proc.stderr).toContain('printed while loading\nprinted by the handler\nprinted by the handler\n');
    });

    test('empty lines are ignored and a request of several megabytes is one line', async () => {
      const proc = reuse('shop');
      await proc.nextLine();
      const text = 'x'.repeat(4 * 1024 * 1024);
      const big = request({ text });
      proc.child.stdin.write('\n\n');
      proc.send(big);
      proc.child.stdin.write('\n');
      proc.send(request({ n: 2 }));
      const answer = await proc.nextResponse();
      expect(answer.request_id).toBe(big.request_id);
      expect((answer.output as { echo: { text: string } }).echo.text).toHaveLength(text.length);
      expect(await proc.nextResponse()).toMatchObject({ success: true, output: { calls: 2 } });
    });

    test('a last request without its newline is still answered before EOF ends the process', async () => {
      const proc = reuse('shop');
      await proc.nextLine();
      const sent = request({ n: 1 });
      proc.child.stdin.end(JSON.stringify(sent));
      expect((await proc.nextResponse()).request_id).toBe(sent.request_id);
      expect(await proc.exited()).toEqual({ code: 0, signal: null });
    });

    test('ctx.log entries belong to their own invocation', async () => {
      const proc = reuse('shop');
      await proc.nextLine();
      proc.send(request({ mode: 'log' }));
      proc.send(request({}));
      expect(((await proc.nextResponse()).logs as unknown[]).length).toBe(4);
      expect((await proc.nextResponse()).logs).toEqual([]);
    });

    test('async handlers share one event loop, where what one invocation started keeps running', async () => {
      const proc = reuse('async');
      await proc.nextLine();
      for (const n of [1, 2]) proc.send(request({ n }));
      proc.send(request({ mode: 'crash' }));
      proc.send(request({ n: 4 }));
      expect(await proc.nextResponse()).toMatchObject({ success: true, output: { same_loop: true, n: 1 } });
      expect(await proc.nextResponse()).toMatchObject({ success: true, output: { same_loop: true, ticking: true, n: 2 } });
      expect(await proc.nextResponse()).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR', message: 'async crash' } });
      expect(await proc.nextResponse()).toMatchObject({ success: true, output: { same_loop: true, ticking: true, n: 4 } });
      proc.child.stdin.end();
      // The ticker task is still pending at EOF: the helper cancels it, as asyncio.run would.
      expect(await proc.exited()).toEqual({ code: 0, signal: null });
      expect(proc.stderr).not.toContain('Task was destroyed');
    });

    test('a line that is not a request: a clear message on stderr and exit status 1', async () => {
      const proc = reuse('shop');
      await proc.nextLine();
      proc.child.stdin.write('not a request\n');
      expect(await proc.exited()).toEqual({ code: 1, signal: null });
      expect(proc.stderr).toContain('stdin is not a request');
    });

    test("under alyx's preload: handshake, responses, and status 0 at EOF", async () => {
      const proc = reuse('shop', ['-c', PRELOAD, 'index.py']);
      expect(await proc.nextLine()).toBe('{"alyx_reuse":1}');
      const sent = [request({ n: 1 }), request({ mode: 'print' })];
      for (const each of sent) proc.send(each);
      expect((await proc.nextResponse()).request_id).toBe(sent[0].request_id);
      expect((await proc.nextResponse()).request_id).toBe(sent[1].request_id);
      proc.child.stdin.end();
      expect(await proc.exited()).toEqual({ code: 0, signal: null });
      expect(proc.stderr).toContain('printed by the function');
    });
  });
});

describe('types (mypy --strict)', () => {
  const mypy = hasCommand('mypy');
  if (!mypy) warnSkip('type-checking the Python helper', 'mypy');
  const maybe = mypy ? test : test.skip;
  let cache: string;
  beforeAll(() => {
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-mypy-'));
  });
  afterAll(() => fs.rmSync(cache, { recursive: true, force: true }));

  const check = (args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) =>
    runCommand('mypy', ['--strict', '--cache-dir', cache, '--no-color-output', ...args], { cwd, env: cleanEnv(env), timeoutMs: 120_000 });

  maybe('the helper package passes', async () => {
    const result = await check(['shims/python'], REPO_ROOT);
    expect(result.stdout).toContain('Success');
    expect(result.code).toBe(0);
  }, 150_000);

  maybe('a typed function that uses handler, Context, ctx.log, ctx.invoke and FunctionError passes', async () => {
    const result = await check(['index.py'], path.join(root, 'typed'), { MYPYPATH: SHIMS });
    expect(result.stdout).toContain('Success');
    expect(result.code).toBe(0);
  }, 150_000);

  maybe('a handler that cannot take (input, ctx), and a mistyped log call, are refused', async () => {
    const result = await check(['index.py'], path.join(root, 'mistyped'), { MYPYPATH: SHIMS });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/index\.py:8: error: Value of type variable .* of "handler" cannot be/);
    expect(result.stdout).toMatch(/index\.py:14: error: Argument 1 to "info" of "Log" has incompatible type "int"; expected "str"/);
  }, 150_000);
});
