import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { cleanEnv } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { processesWithEnv, waitFor } from '../helpers/processes';
import { makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

/** Requests and deploys that try to break the server: each gets a clear answer, and nothing is left behind. */

const ECHO = nodeFunction('console.log(JSON.stringify({ success: true, output: { input: request.input, own: Object.keys(request.input) } }));');
const SLOW_ECHO = nodeFunction('setTimeout(() => console.log(JSON.stringify({ success: true, output: { bytes: JSON.stringify(request.input).length } })), 300);');

let root: string;
afterEach(async () => {
  await stopAllServers();
  if (root) removeProject(root);
});

const serve = (args: string[]): Promise<RunningServer> => startServer([...args, '-C', root], { env: cleanEnv() });
const post = (server: RunningServer, name: string, body: string | Buffer, headers: Record<string, string> = {}) =>
  request(`${server.url}/api/functions/${name}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });

const nested = (levels: number): string => `{"a": ${'['.repeat(levels)}${']'.repeat(levels)}}`;

describe('a deeply nested JSON body', () => {
  it.each([
    ['production with the default pool', ['serve'], ''],
    ['production without a pool', ['serve'], 'pool: 0\n'],
    ['development', ['dev', '--no-watch'], ''],
  ])('%s: 400 INVALID_INPUT before any process is taken, and no process is left', async (_, args, manifest) => {
    const marker = `deep-${process.hrtime.bigint()}`;
    root = makeProject({ 'functions/hello/index.js': ECHO, 'functions/hello/manifest.yaml': `env: { MARKER: ${marker} }\n${manifest}` });
    const server = await serve(args);
    expect((await post(server, 'hello', '{"warm": 1}')).status).toBe(200);

    for (let attempt = 0; attempt < 20; attempt++) {
      const response = await post(server, 'hello', nested(5000));
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('INVALID_INPUT');
      expect(response.body.error.message).toMatch(/nested too deeply/);
    }
    // At most the one warm process the pool keeps: none per rejected request.
    expect(await waitFor(() => processesWithEnv(`MARKER=${marker}`).length <= 1, 5000)).toBe(true);
    const after = await post(server, 'hello', nested(100));
    expect(after.status).toBe(200);
  });
});

describe('input as the function receives it', () => {
  beforeEach(async () => {
    root = makeProject({ 'functions/echo/index.js': ECHO });
  });

  it('GET ?__proto__=a arrives as an own key of the input', async () => {
    const server = await serve(['serve']);
    const response = await request(`${server.url}/api/functions/echo?__proto__=a&constructor=b`);
    expect(response.status).toBe(200);
    expect(response.body.output.own).toEqual(['__proto__', 'constructor']);
  });

  it('invalid UTF-8 in a JSON body is 400 INVALID_JSON, not replaced with U+FFFD', async () => {
    const server = await serve(['serve']);
    const response = await post(server, 'echo', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('INVALID_JSON');
    expect(response.body.error.message).toMatch(/UTF-8/);
  });
});

describe('HEAD', () => {
  it('answers like GET without a body wherever GET is allowed; Allow lists it', async () => {
    root = makeProject({ 'functions/echo/index.js': ECHO });
    const server = await serve(['serve']);
    for (const pathname of ['/api/health', '/api/ready', '/api/functions', '/api/functions/echo?x=1']) {
      const get = await request(`${server.url}${pathname}`);
      const head = await request(`${server.url}${pathname}`, { method: 'HEAD' });
      expect([pathname, head.status]).toEqual([pathname, get.status]);
      expect(head.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(head.body).toBe('');
    }
    const reload = await request(`${server.url}/api/admin/reload`, { method: 'HEAD' });
    expect(reload.status).toBe(405);
    expect(reload.headers.get('allow')).toBe('POST');
    const put = await request(`${server.url}/api/health`, { method: 'PUT' });
    expect(put.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('files that change after discovery (production)', () => {
  it('an entry replaced by a symbolic link that leads outside its folder is not run', async () => {
    root = makeProject({
      'functions/swap/index.js': ECHO,
      'outside.js': nodeFunction("console.log(JSON.stringify({ success: true, output: 'outside' }));"),
    });
    const server = await serve(['serve']);
    expect((await request(`${server.url}/api/functions/swap`)).status).toBe(200);
    const entry = path.join(root, 'functions', 'swap', 'index.js');
    fs.rmSync(entry);
    fs.symlinkSync(path.join(root, 'outside.js'), entry);

    const response = await request(`${server.url}/api/functions/swap`);
    expect(response.status).toBe(503);
    expect(response.body.error.code).toBe('FUNCTION_NOT_READY');
    expect(response.body.error.message).toMatch(/leads outside functions\/swap through a symbolic link/);
  });

  it('a function whose folder was removed says so', async () => {
    root = makeProject({ 'functions/gone/index.js': ECHO });
    const server = await serve(['serve']);
    fs.rmSync(path.join(root, 'functions', 'gone'), { recursive: true });

    const response = await request(`${server.url}/api/functions/gone`);
    expect(response.status).toBe(503);
    expect(response.body.error.code).toBe('FUNCTION_NOT_READY');
    expect(response.body.error.message).toMatch(/its folder functions\/gone is gone/);
  });
});

/** Sends a whole request on a raw socket before reading anything, as python's http.client does. */
function sendAllThenRead(server: RunningServer, head: string, bodyBytes: number): Promise<{ answer: string; error: string | null }> {
  const url = new URL(server.url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(url.port), url.hostname);
    let answer = '';
    let error: string | null = null;
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', (failure: NodeJS.ErrnoException) => (error ??= failure.code ?? failure.message));
    socket.on('close', () => resolve({ answer, error }));
    socket.setTimeout(20_000, () => socket.destroy());
    socket.write(head);
    socket.end(Buffer.alloc(bodyBytes, 0x20));
  });
}

describe('bodies over max_body_size', () => {
  it('a client still writing its body (Connection: close) gets its 413, not a reset', async () => {
    root = makeProject({ 'functions/echo/index.js': ECHO });
    const server = await serve(['serve']);
    const size = 6_350_000;
    for (const headers of [`Content-Length: ${size}\r\n`, 'Transfer-Encoding: chunked\r\n']) {
      const chunked = headers.startsWith('Transfer');
      const head = `POST /api/functions/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n${headers}\r\n`;
      const { answer, error } = chunked
        ? await sendAllThenRead(server, `${head}${size.toString(16)}\r\n${' '.repeat(size)}\r\n0\r\n\r\n`, 0)
        : await sendAllThenRead(server, head, size);
      expect([headers, error]).toEqual([headers, null]);
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(answer).toContain('"code":"PAYLOAD_TOO_LARGE"');
    }
  });
});

/** Resident memory of a process, in MiB. */
function residentMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const kb = Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return kb / 1024;
}

describe('many large bodies at once', () => {
  it('bodies in flight are bounded together: past the budget 503 OVERLOADED, and alyx stays small', async () => {
    root = makeProject({ 'functions/slow/index.js': SLOW_ECHO, 'functions/slow/manifest.yaml': 'pool: 0\n' });
    const server = await serve(['serve']);
    const pid = server.child.pid as number;
    const body = JSON.stringify({ blob: 'x'.repeat(5 * 1024 * 1024) });
    const responses = await Promise.all(Array.from({ length: 48 }, () => post(server, 'slow', body, { Connection: 'close' })));

    const statuses = responses.map((response) => response.status);
    const overloaded = responses.filter((response) => response.status === 503);
    expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(8);
    expect(overloaded.length).toBeGreaterThan(0);
    expect(statuses.every((status) => status === 200 || status === 503)).toBe(true);
    for (const response of overloaded) {
      expect(response.body.error.code).toBe('OVERLOADED');
      expect(response.headers.get('retry-after')).toBe('1');
    }
    // 48 bodies of 5 MB held at once took alyx past 790 MB; the budget (64 MiB of bodies) keeps it far below.
    expect(residentMiB(pid, 'VmHWM')).toBeLessThan(450);
    // The budget is given back: a body is accepted again once the burst is over.
    expect((await post(server, 'slow', body)).status).toBe(200);
  });
});

describe('a log destination that stops reading', () => {
  it('does not hold up answers: /api/health answers while the log pipe is full', async () => {
    const noisy = nodeFunction("for (let i = 0; i < 3000; i++) console.error('noise '.repeat(40) + i); console.log(JSON.stringify({ success: true, output: 1 }));");
    root = makeProject({ 'functions/noisy/index.js': noisy });
    const server = await serve(['serve']);
    // Nobody reads alyx's stdout from here on: the pipe fills within the first invocation.
    server.child.stdout?.pause();
    const slowest: number[] = [];
    for (let round = 0; round < 5; round++) {
      const invoked = post(server, 'noisy', '{}');
      const started = performance.now();
      const health = await request(`${server.url}/api/health`, { timeoutMs: 5000 });
      slowest.push(performance.now() - started);
      expect(health.status).toBe(200);
      expect((await invoked).status).toBe(200);
    }
    expect(Math.max(...slowest)).toBeLessThan(1000);
    server.child.stdout?.resume();
  });
});

describe('a deeply nested response', () => {
  it('is 502 EXECUTION_ERROR that says why, not a 500', async () => {
    root = makeProject({ 'functions/deep/index.js': nodeFunction("process.stdout.write('{\"success\": true, \"output\": ' + '['.repeat(5000) + ']'.repeat(5000) + '}\\n');") });
    const server = await serve(['serve']);
    const response = await request(`${server.url}/api/functions/deep`);
    expect(response.status).toBe(502);
    expect(response.body.error.code).toBe('EXECUTION_ERROR');
    expect(response.body.error.message).toMatch(/more than 512 levels deep/);
  });
});

describe('refusals on a kept-alive connection', () => {
  it('many refused POSTs on one connection leave no listener behind (no MaxListenersExceededWarning)', async () => {
    root = makeProject({ 'functions/echo/index.js': ECHO });
    const server = await serve(['serve']);
    const url = new URL(server.url);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 30; i++) {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = http.request({ host: url.hostname, port: url.port, path: '/api/functions/nope', method: 'POST', agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        });
        req.on('error', reject);
        req.end('{"a": 1}');
      });
      expect(status).toBe(404);
    }
    agent.destroy();
    expect(server.stderr()).not.toMatch(/MaxListenersExceededWarning/);
  });
});
