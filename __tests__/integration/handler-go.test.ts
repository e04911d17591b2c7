import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { cleanEnv, REPO_ROOT, runCommand } from '../helpers/cli';
import { waitFor } from '../helpers/processes';
import { makeProject, removeProject } from '../helpers/project';
import { hasCommand, warnSkip } from '../helpers/tools';

/**
 * SPEC §10: the Go helper (shims/go/alyx.go, which `alyx new --runtime go` puts beside main.go),
 * built once into a function binary and driven as alyx drives it: one request on stdin
 * (one-shot), or `ALYX_REUSE=1` and one request per line.
 */

const HELPER = path.join(REPO_ROOT, 'shims', 'go', 'alyx.go');
const DEADLINE_MS = 15_000;

const MAIN_GO = `package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

type input struct {
	Mode   string \`json:"mode"\`
	N      int    \`json:"n,omitempty"\`
	Text   string \`json:"text,omitempty"\`
	Target string \`json:"target,omitempty"\`
	Input  any    \`json:"input,omitempty"\`
}

var calls int

func main() {
	Handle(func(in input, ctx *Context) (any, error) {
		calls++
		switch in.Mode {
		case "fail":
			return nil, &FunctionError{Code: "OUT_OF_STOCK", Message: "none left", Status: 409, Details: map[string]any{"sku": "A1"}}
		case "fail-plain":
			return nil, NewFunctionError("NOT_READY", "later")
		case "wrapped":
			return nil, fmt.Errorf("while checking stock: %w", &FunctionError{Code: "OUT_OF_STOCK", Message: "none left", Status: 409})
		case "plain-error":
			return nil, errors.New("the plain error")
		case "panic":
			var stock map[string]int
			stock["A1"]--
		case "context":
			return map[string]any{"request_id": ctx.RequestID, "function": ctx.Function, "auth": ctx.Auth, "env": ctx.Env,
				"trigger": ctx.Trigger, "attempt": ctx.Attempt, "traceparent": ctx.Traceparent}, nil
		case "log":
			ctx.Log.Debug("debugging")
			ctx.Log.Info("counted", map[string]int{"n": 1})
			ctx.Log.Warn("careful", 1, 2)
			ctx.Log.Error("broken", make(chan int))
			return "logged", nil
		case "log-then-fail":
			ctx.Log.Warn("about to fail")
			return nil, NewFunctionError("FAILED_AFTER_LOG", "it logged first")
		case "invoke":
			got, err := ctx.Invoke(in.Target, in.Input)
			if err != nil {
				return nil, err
			}
			return map[string]json.RawMessage{"got": got}, nil
		case "invoke-error":
			_, err := ctx.Invoke(in.Target, in.Input)
			var failure *FunctionError
			if errors.As(err, &failure) {
				return map[string]any{"code": failure.Code, "message": failure.Message, "status": failure.Status, "details": failure.Details}, nil
			}
			return "no error", nil
		case "print":
			fmt.Println("printed by the function")
			return "printed", nil
		case "not-json":
			return map[string]any{"when": make(chan int)}, nil
		}
		return map[string]any{"echo": in, "calls": calls, "pid": os.Getpid()}, nil
	})
}
`;

/** A handler whose input is the raw JSON and whose output is typed. */
const RAW_GO = `package main

import "encoding/json"

type answer struct {
	Length int    \`json:"length"\`
	Raw    string \`json:"raw"\`
}

func main() {
	Handle(func(input json.RawMessage, ctx *Context) (answer, error) {
		return answer{Length: len(input), Raw: string(input)}, nil
	})
}
`;

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
    if (req.url === '/api/functions/too-large') {
      // Refused before its body is read, as alyx refuses a declared size far over its limit.
      const refusal = { request_id: 'callee', success: false, error: { code: 'PAYLOAD_TOO_LARGE', message: 'the body is over 1 MB' } };
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify(refusal));
      return;
    }
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
      const hello = { request_id: 'callee', success: true, output: { hello: (parsed as { name: string }).name }, duration_ms: 1 };
      const payload = Buffer.from(JSON.stringify(hello));
      if (req.url === '/api/functions/greeter') answer(200, hello);
      else if (req.url === '/api/functions/chunked-greeter') {
        // Two writes before end: node frames them as chunks. The cut may split a UTF-8 character.
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', trailer: 'x-check' });
        res.write(payload.subarray(0, payload.length >> 1));
        res.write(payload.subarray(payload.length >> 1));
        res.addTrailers({ 'x-check': 'done' });
        res.end();
      } else if (req.url === '/api/functions/sized-greeter') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': payload.length }).end(payload);
      } else answer(422, { request_id: 'callee', success: false, error: { code: 'INVALID_NAME', message: 'no such name', details: { field: 'name' } }, duration_ms: 1 });
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received }));
  });
}

/** A server that answers every request with `reply`, byte for byte, then closes; it records each request as text. */
async function withRawServer<T>(reply: string, use: (url: string, requests: string[]) => Promise<T>): Promise<T> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined).on('close', () => sockets.delete(socket));
    let text = '';
    let answered = false;
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      text += chunk;
      const headEnd = text.indexOf('\r\n\r\n');
      if (answered || headEnd === -1) return;
      const length = /\r\ncontent-length: *(\d+)\r\n/i.exec(`${text.slice(0, headEnd)}\r\n`)?.[1];
      if (length === undefined || text.length < headEnd + 4 + Number(length)) return;
      answered = true;
      requests.push(text);
      socket.end(reply, 'latin1');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

const go = hasCommand('go');
if (!go) warnSkip('the Go helper', 'go');
const maybe = go ? describe : describe.skip;

/** Go builds offline: the helper needs nothing but the standard library. */
const goEnv = (): NodeJS.ProcessEnv => cleanEnv({ GOPROXY: 'off', CGO_ENABLED: '0' });

let root: string;
let standIn: Awaited<ReturnType<typeof startAlyxStandIn>>;

maybe('the Go helper', () => {
  beforeAll(async () => {
    const goMod = (name: string): string => `module example.com/${name}\n\ngo 1.19\n`;
    const helper = fs.readFileSync(HELPER, 'utf8');
    root = makeProject({
      'shop/main.go': MAIN_GO, 'shop/alyx.go': helper, 'shop/go.mod': goMod('shop'),
      'raw/main.go': RAW_GO, 'raw/alyx.go': helper, 'raw/go.mod': goMod('raw'),
    });
    for (const fn of ['shop', 'raw']) {
      const built = await runCommand('go', ['build', '-o', `bin/${fn}`, '.'], { cwd: path.join(root, fn), env: goEnv(), timeoutMs: 180_000 });
      if (built.code !== 0) throw new Error(`go build of ${fn} failed:\n${built.stdout}${built.stderr}`);
    }
    standIn = await startAlyxStandIn();
  }, 400_000);

  afterAll(async () => {
    if (standIn) {
      standIn.server.closeAllConnections();
      await new Promise((resolve) => standIn.server.close(resolve));
    }
    if (root) removeProject(root);
  });

  const start = (fn: string, env: NodeJS.ProcessEnv = {}): FunctionProcess =>
    new FunctionProcess(path.join(root, fn, 'bin', fn), [], path.join(root, fn), cleanEnv(env));

  /** One-shot: the request, then EOF; the response is stdout's last line. */
  const once = async (fn: string, body: Record<string, unknown> | string) => {
    const proc = start(fn);
    proc.child.stdin.end(typeof body === 'string' ? body : JSON.stringify(body));
    const { code } = await proc.exited();
    const lines = proc.stdout.split('\n').filter((line) => line !== '');
    const response = lines.length > 0 ? (JSON.parse(lines[lines.length - 1]) as Record<string, unknown>) : null;
    return { code, stdout: proc.stdout, stderr: proc.stderr, lines, response };
  };

  test('a function built with the helper depends on neither net/http nor anything in crypto/, whose package init would slow every start', async () => {
    const listed = await runCommand('go', ['list', '-deps', '.'], { cwd: path.join(root, 'shop'), env: goEnv(), timeoutMs: 120_000 });
    expect([listed.code, listed.stderr]).toEqual([0, '']);
    const deps = listed.stdout.split('\n');
    expect(deps).toContain('net');
    expect(deps).not.toContain('net/http');
    expect(deps).not.toContain('crypto/tls');
    expect(deps.filter((dep) => dep.startsWith('crypto/'))).toEqual([]);
  }, 150_000);

  test('the helper file is gofmt-clean and passes go vet beside a main.go', async () => {
    const formatted = await runCommand('gofmt', ['-l', HELPER], { env: goEnv() });
    expect([formatted.code, formatted.stdout]).toEqual([0, '']);
    const vetted = await runCommand('go', ['vet', '.'], { cwd: path.join(root, 'shop'), env: goEnv(), timeoutMs: 120_000 });
    expect([vetted.code, vetted.stderr]).toEqual([0, '']);
  }, 150_000);

  describe('one-shot', () => {
    test('the value returned is output, with the request id, as one JSON line on stdout; the process exits 0', async () => {
      const sent = request({ mode: 'echo', n: 1 });
      const result = await once('shop', sent);
      expect(result.code).toBe(0);
      expect(result.lines).toHaveLength(1);
      expect(result.response).toEqual({ request_id: sent.request_id, success: true, output: { echo: { mode: 'echo', n: 1 }, calls: 1, pid: expect.any(Number) }, logs: [] });
    });

    test('the input decodes into the handler\'s type: json.RawMessage gets the input as sent', async () => {
      const result = await once('raw', request({ a: [1, 2] }));
      expect(result.response?.output).toEqual({ length: 11, raw: '{"a":[1,2]}' });
    });

    test('an input that does not fit the input type is INVALID_INPUT with status 400', async () => {
      const result = await once('shop', request({ n: 'not a number' }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'INVALID_INPUT', status: 400, message: expect.stringContaining('input type') } });
    });

    test('a *FunctionError becomes error with its code, message, status and details', async () => {
      const result = await once('shop', request({ mode: 'fail' }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'OUT_OF_STOCK', message: 'none left', status: 409, details: { sku: 'A1' } } });
      expect(result.code).toBe(0);
    });

    test('NewFunctionError has neither status nor details; a wrapped *FunctionError is found with errors.As', async () => {
      expect((await once('shop', request({ mode: 'fail-plain' }))).response?.error).toEqual({ code: 'NOT_READY', message: 'later' });
      expect((await once('shop', request({ mode: 'wrapped' }))).response?.error).toEqual({ code: 'OUT_OF_STOCK', message: 'none left', status: 409 });
    });

    test('any other error becomes FUNCTION_ERROR with its message', async () => {
      const result = await once('shop', request({ mode: 'plain-error' }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR', message: 'the plain error' } });
    });

    test('a panic becomes FUNCTION_ERROR with its value; the stack goes to stderr', async () => {
      const result = await once('shop', request({ mode: 'panic' }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR', message: 'assignment to entry in nil map' } });
      expect(result.stderr).toContain('panic: assignment to entry in nil map');
      expect(result.stderr).toMatch(/main\.go:\d+/);
      expect(result.stdout).not.toContain('goroutine');
      expect(result.code).toBe(0);
    });

    test('output that is not JSON becomes FUNCTION_ERROR saying so', async () => {
      const result = await once('shop', request({ mode: 'not-json' }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR', message: expect.stringContaining('output is not JSON') } });
    });

    test('ctx holds the request id, the function and the context; missing fields are zero', async () => {
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
      expect(bare.response?.output).toEqual({ request_id: 'req-bare', function: 'shop', auth: null, env: {}, trigger: null, attempt: 0, traceparent: '' });
    });

    test('ctx.Log fills logs with level, message, data and an ISO-8601 UTC timestamp', async () => {
      const result = await once('shop', request({ mode: 'log' }));
      const logs = result.response?.logs as Array<Record<string, unknown>>;
      expect(logs.map(({ timestamp: _timestamp, ...entry }) => entry)).toEqual([
        { level: 'debug', message: 'debugging' },
        { level: 'info', message: 'counted', data: { n: 1 } },
        { level: 'warn', message: 'careful', data: [1, 2] },
        { level: 'error', message: 'broken', data: expect.stringMatching(/^0x[0-9a-f]+$/) },
      ]);
      for (const { timestamp } of logs) expect(timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(result.response?.output).toBe('logged');
    });

    test('a failed invocation keeps what it logged', async () => {
      const result = await once('shop', request({ mode: 'log-then-fail' }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'FAILED_AFTER_LOG' }, logs: [{ level: 'warn', message: 'about to fail' }] });
    });

    test('ctx.Invoke POSTs the input to alyx with the internal token and returns the output', async () => {
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const context = { auth: null, env: {}, alyx_url: `${standIn.url}/`, internal_token: 'token-for-invoke', traceparent };
      const before = standIn.received.length;
      const result = await once('shop', request({ mode: 'invoke', target: 'greeter', input: { name: 'Ada' } }, { context }));
      expect(result.response).toMatchObject({ success: true, output: { got: { hello: 'Ada' } } });
      expect(standIn.received.slice(before)).toEqual([
        { method: 'POST', url: '/api/functions/greeter', authorization: 'Bearer token-for-invoke', traceparent, contentType: 'application/json', body: { name: 'Ada' } },
      ]);
    });

    test("ctx.Invoke returns the callee's error as a *FunctionError whose Status is the HTTP status", async () => {
      const context = { auth: null, env: {}, alyx_url: standIn.url, internal_token: 'token' };
      const result = await once('shop', request({ mode: 'invoke-error', target: 'picky', input: { name: '?' } }, { context }));
      expect(result.response?.output).toEqual({ code: 'INVALID_NAME', message: 'no such name', status: 422, details: { field: 'name' } });
    });

    test("ctx.Invoke's error, returned as is, becomes the function's own error with that status", async () => {
      const context = { auth: null, env: {}, alyx_url: standIn.url, internal_token: 'token' };
      const result = await once('shop', request({ mode: 'invoke', target: 'picky' }, { context }));
      expect(result.response).toMatchObject({ success: false, error: { code: 'INVALID_NAME', message: 'no such name', status: 422, details: { field: 'name' } } });
    });

    test('ctx.Invoke reads a chunked answer (two writes, then a trailer), whatever the size and wherever the cut falls', async () => {
      const name = `Ada ${'é'.repeat(40_000)}`;
      const context = { auth: null, env: {}, alyx_url: standIn.url, internal_token: 'token' };
      const result = await once('shop', request({ mode: 'invoke', target: 'chunked-greeter', input: { name } }, { context }));
      expect(result.response).toMatchObject({ success: true, output: { got: { hello: name } } });
    });

    test('ctx.Invoke reads an answer framed by Content-Length, counted in bytes', async () => {
      const name = `Ada ${'é'.repeat(40_000)}`;
      const context = { auth: null, env: {}, alyx_url: standIn.url, internal_token: 'token' };
      const result = await once('shop', request({ mode: 'invoke', target: 'sized-greeter', input: { name } }, { context }));
      expect(result.response).toMatchObject({ success: true, output: { got: { hello: name } } });
    });

    test('ctx.Invoke gets the answer of a server that refuses the input before reading all of it', async () => {
      const context = { auth: null, env: {}, alyx_url: standIn.url, internal_token: 'token' };
      const result = await once('shop', request({ mode: 'invoke-error', target: 'too-large', input: { text: 'x'.repeat(8 * 1024 * 1024) } }, { context }));
      expect(result.response?.output).toEqual({ code: 'PAYLOAD_TOO_LARGE', message: 'the body is over 1 MB', status: 413, details: null });
    });

    test('ctx.Invoke sends one HTTP/1.1 POST, the name escaped as a path segment, and reads an answer that ends with the connection', async () => {
      const reply = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"success":true,"output":{"to":"eof"}}';
      await withRawServer(reply, async (url, requests) => {
        const context = { auth: null, env: {}, alyx_url: url, internal_token: 'raw-token' };
        const result = await once('shop', request({ mode: 'invoke', target: 'a b/c', input: { name: 'Ada' } }, { context }));
        expect(result.response).toMatchObject({ success: true, output: { got: { to: 'eof' } } });
        expect(requests).toHaveLength(1);
        const [head, body] = requests[0].split('\r\n\r\n');
        const [requestLine, ...fields] = head.split('\r\n');
        expect(requestLine).toBe('POST /api/functions/a%20b%2Fc HTTP/1.1');
        expect(Object.fromEntries(fields.map((field) => [field.slice(0, field.indexOf(':')).toLowerCase(), field.slice(field.indexOf(':') + 1).trim()]))).toEqual({
          host: url.slice('http://'.length), 'content-type': 'application/json', 'content-length': String(body.length),
          authorization: 'Bearer raw-token', connection: 'close',
        });
        expect(JSON.parse(body)).toEqual({ name: 'Ada' });
      });
    });

    test('ctx.Invoke skips an interim 1xx answer', async () => {
      const envelope = '{"success":true,"output":{"after":"continue"}}';
      const reply = `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: ${envelope.length}\r\n\r\n${envelope}`;
      await withRawServer(reply, async (url) => {
        const context = { auth: null, env: {}, alyx_url: url, internal_token: 'token' };
        const result = await once('shop', request({ mode: 'invoke', target: 'greeter' }, { context }));
        expect(result.response).toMatchObject({ success: true, output: { got: { after: 'continue' } } });
      });
    });

    test('ctx.Invoke given an answer cut short of its Content-Length is INVOKE_FAILED with status 0', async () => {
      await withRawServer('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"success":true', async (url) => {
        const context = { auth: null, env: {}, alyx_url: url, internal_token: 'token' };
        const result = await once('shop', request({ mode: 'invoke-error', target: 'greeter' }, { context }));
        expect(result.response?.output).toMatchObject({ code: 'INVOKE_FAILED', status: 0, message: expect.stringContaining('could not read the answer of greeter') });
      });
    });

    test('ctx.Invoke with an alyx_url that is not http://host:port is INVOKE_FAILED, saying so', async () => {
      for (const alyxUrl of ['https://127.0.0.1:8443', 'ftp://127.0.0.1:21', '127.0.0.1:8090']) {
        const context = { auth: null, env: {}, alyx_url: alyxUrl, internal_token: 'token' };
        const result = await once('shop', request({ mode: 'invoke-error', target: 'greeter' }, { context }));
        expect(result.response?.output).toMatchObject({ code: 'INVOKE_FAILED', status: 0, message: expect.stringContaining('is not http://host:port') });
      }
    });

    test('ctx.Invoke without anything listening is INVOKE_FAILED', async () => {
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      const context = { auth: null, env: {}, alyx_url: `http://127.0.0.1:${port}`, internal_token: 'token' };
      const result = await once('shop', request({ mode: 'invoke-error', target: 'greeter' }, { context }));
      expect(result.response?.output).toMatchObject({ code: 'INVOKE_FAILED', status: 0 });
    });

    test("the function's fmt.Println stays on stdout, before the response line, as before helpers", async () => {
      const result = await once('shop', request({ mode: 'print' }));
      expect(result.lines[0]).toBe('printed by the function');
      expect(result.response).toMatchObject({ success: true, output: 'printed' });
    });

    test('stdin that is not a request: a clear message on stderr and exit status 1', async () => {
      for (const body of ['this is not json', '[1, 2]', '']) {
        const result = await once('shop', body);
        expect(result.code).toBe(1);
        expect(result.stdout).toBe('');
        expect(result.stderr).toContain('stdin is not a request');
      }
    });
  });

  describe('reuse (ALYX_REUSE=1)', () => {
    const reuse = (fn: string): FunctionProcess => start(fn, { ALYX_REUSE: '1' });

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
    });

    test('an error or a panic in one request answers that request and the process goes on', async () => {
      const proc = reuse('shop');
      await proc.nextLine();
      const sent = [request({ mode: 'panic' }), request({ mode: 'fail' }), request({ mode: 'plain-error' }), request({ n: 4 })];
      for (const each of sent) proc.send(each);
      expect(await proc.nextResponse()).toMatchObject({ request_id: sent[0].request_id, success: false, error: { code: 'FUNCTION_ERROR', message: 'assignment to entry in nil map' } });
      expect(await proc.nextResponse()).toMatchObject({ request_id: sent[1].request_id, success: false, error: { code: 'OUT_OF_STOCK', status: 409 } });
      expect(await proc.nextResponse()).toMatchObject({ request_id: sent[2].request_id, success: false, error: { code: 'FUNCTION_ERROR', message: 'the plain error' } });
      expect(await proc.nextResponse()).toMatchObject({ request_id: sent[3].request_id, success: true, output: { calls: 4 } });
      expect(proc.stderr).toContain('panic: assignment to entry in nil map');
      expect(proc.closed).toBe(false);
    });

    test("the function's fmt.Println goes to stderr: stdout holds only protocol lines", async () => {
      const proc = reuse('shop');
      expect(await proc.nextLine()).toBe('{"alyx_reuse":1}');
      proc.send(request({ mode: 'print' }));
      proc.send(request({ mode: 'print' }));
      expect(await proc.nextResponse()).toMatchObject({ success: true, output: 'printed' });
      expect(await proc.nextResponse()).toMatchObject({ success: true, output: 'printed' });
      proc.child.stdin.end();
      expect(await proc.exited()).toEqual({ code: 0, signal: null });
      expect(proc.stdout.split('\n').filter((line) => line !== '')).toHaveLength(3);
      expect(proc.stderr).toBe('printed by the function\nprinted by the function\n');
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

    test('ctx.Log entries belong to their own invocation', async () => {
      const proc = reuse('shop');
      await proc.nextLine();
      proc.send(request({ mode: 'log' }));
      proc.send(request({}));
      expect(((await proc.nextResponse()).logs as unknown[]).length).toBe(4);
      expect((await proc.nextResponse()).logs).toEqual([]);
    });

    test('a line that is not a request: a clear message on stderr and exit status 1', async () => {
      const proc = reuse('shop');
      await proc.nextLine();
      proc.child.stdin.write('not a request\n');
      expect(await proc.exited()).toEqual({ code: 1, signal: null });
      expect(proc.stderr).toContain('stdin is not a request');
    });
  });
});
