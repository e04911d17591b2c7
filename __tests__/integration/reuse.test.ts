import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { cleanEnv, REPO_ROOT, runCli } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { isAlive, processesWithEnv, waitFor } from '../helpers/processes';
import { makeProject, removeProject, type FixtureTree } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

/**
 * Reuse mode (SPEC §10) against the real server and the real JavaScript helper: one process
 * serves many invocations, and a fault fails only the invocation that caused it. Each fault
 * case checks the exact envelope, that the next invocation of the same function succeeds, and
 * that the faulty process is gone. Every function process carries REUSE_MARKER (from
 * functions.env), so survivors are found by their environment, wherever they went.
 */
const MARKER = `reuse-${process.pid}-${Date.now()}`;
const ADMIN_TOKEN = `admin-${MARKER}`;

/** One function that does, per invocation, what its input asks: the fault cases share its process. */
const FAULTY = `
const fs = require('node:fs');
const { handler, FunctionError } = require('alyx/handler');
let served = 0;
module.exports = handler(async (input, ctx) => {
  served++;
  switch (input.do) {
    case 'throw': throw new Error('broken on purpose');
    case 'refuse': throw new FunctionError('NOT_ALLOWED', 'no', { status: 403, details: { why: 'test' } });
    case 'exit': process.exit(7);
    case 'loop': for (;;) {}
    case 'grow': { const hold = []; for (;;) hold.push('y'.repeat(1024) + hold.length); }
    case 'print': console.log('printed by console.log'); process.stdout.write('written by process.stdout.write\\n'); break;
    case 'raw': fs.writeSync(1, 'written to fd 1 directly\\n'); await new Promise((resolve) => setTimeout(resolve, 5000)); break;
    case 'no-newline': fs.writeSync(1, JSON.stringify({ request_id: ctx.requestId, success: true, output: 'unframed' })); await new Promise((resolve) => setTimeout(resolve, 5000)); break;
    case 'half-line': fs.writeSync(1, '{"request_id": "' + ctx.requestId); process.exit(0);
    case 'crash-after': setTimeout(() => process.exit(9), 20); break;
  }
  return { pid: process.pid, served, requestId: ctx.requestId, reuse: process.env.ALYX_REUSE ?? null };
});
`;

const SLOW = `
const { handler } = require('alyx/handler');
let running = 0;
module.exports = handler(async (input) => {
  running++;
  const overlapped = running > 1;
  await new Promise((resolve) => setTimeout(resolve, input.ms));
  running--;
  return { pid: process.pid, overlapped };
});
`;

const functions: FixtureTree = {
  'alyx.yaml': ['functions:', '  max_output: 64kb', '  env:', `    REUSE_MARKER: ${MARKER}`, ''].join('\n'),
  'node_modules/alyx': { symlink: REPO_ROOT },
  'functions/faulty/index.js': FAULTY,
  'functions/faulty/manifest.yaml': 'reuse: true\ntimeout: 1500ms\nmemory: 96mb\n',
  'functions/slow/index.js': SLOW,
  'functions/slow/manifest.yaml': 'reuse: true\nconcurrency: 2\ntimeout: 10s\n',
  // Takes a second to start, as a function that loads a lot does.
  'functions/slow-start/index.js': "require('node:fs').appendFileSync('started.log', process.pid + '\\n');\nconst started = Date.now(); while (Date.now() - started < 1000) {}\nconst { handler } = require('alyx/handler');\nmodule.exports = handler(async () => ({ pid: process.pid }));\n",
  'functions/slow-start/manifest.yaml': 'reuse: true\ntimeout: 10s\n',
  // Written without a helper: it waits for an end of stdin that never comes in reuse mode.
  'functions/plain/index.js': nodeFunction("console.log(JSON.stringify({ success: true, output: 'plain' }));"),
  'functions/plain/manifest.yaml': 'reuse: true\ntimeout: 1s\n',
  // Written without a helper, and answers at once without reading stdin.
  'functions/eager/index.js': "console.log(JSON.stringify({ success: true, output: 'eager' }));\n",
  'functions/eager/manifest.yaml': 'reuse: true\n',
};

let root: string;
let server: RunningServer;

beforeAll(async () => {
  root = makeProject(functions);
  server = await startServer(['serve', '-C', root, '--log-level', 'debug'], { env: cleanEnv({ ALYX_ADMIN_TOKEN: ADMIN_TOKEN }) });
});

afterAll(async () => {
  const stopped = await server?.stop('SIGTERM');
  expect(stopped?.code).toBe(0);
  await stopAllServers();
  removeProject(root);
  const gone = await waitFor(() => processesWithEnv(`REUSE_MARKER=${MARKER}`).length === 0, 5000, 50);
  expect(gone ? [] : processesWithEnv(`REUSE_MARKER=${MARKER}`)).toEqual([]);
});

const invoke = (name: string, input: unknown = {}) =>
  request(`${server.url}/api/functions/${name}`, { method: 'POST', body: JSON.stringify(input), headers: { 'Content-Type': 'application/json' }, timeoutMs: 15_000 });

const failure = (error: Record<string, unknown>) => ({ request_id: expect.any(String), success: false, error, logs: [], duration_ms: expect.any(Number) });

/** The pid of the process that serves `name` now (an invocation that succeeds). */
async function servingPid(name = 'faulty'): Promise<number> {
  const response = await invoke(name);
  expect(response.status).toBe(200);
  return response.body.output.pid as number;
}

describe('one process serves many invocations', () => {
  it('answers each in turn from the same process, with a fresh request id, and ALYX_REUSE=1 in its environment', async () => {
    const first = await invoke('faulty');
    const second = await invoke('faulty');
    expect(first.status).toBe(200);
    expect(second.body.output.pid).toBe(first.body.output.pid);
    expect(second.body.output.served).toBe(first.body.output.served + 1);
    expect(second.body.output.requestId).toBe(second.body.request_id);
    expect(second.body.request_id).not.toBe(first.body.request_id);
    expect(first.body.output.reuse).toBe('1');
  });

  it('runs one invocation at a time per process, and no more processes than the function\'s concurrency', async () => {
    const answers = await Promise.all([1, 2, 3, 4].map(() => invoke('slow', { ms: 300 })));
    for (const answer of answers) expect({ status: answer.status, overlapped: answer.body.output.overlapped }).toEqual({ status: 200, overlapped: false });
    const pids = new Set(answers.map((answer) => answer.body.output.pid));
    expect(pids.size).toBe(2);
  });

  it('lists the function with reuse: true', async () => {
    const list = await request(`${server.url}/api/functions`);
    const faulty = list.body.functions.find((fn: { name: string }) => fn.name === 'faulty');
    expect(faulty.reuse).toBe(true);
  });
});

describe('a fault fails only its own invocation: exact envelope, the next one succeeds, the process is replaced', () => {
  it.each([
    ['exit', 502, { code: 'EXECUTION_ERROR', message: "The function's process exited with code 7 during the invocation.", details: { exit_code: 7, signal: null } }],
    ['loop', 504, { code: 'TIMEOUT', message: 'The function did not answer within 1500 ms and was ended.', details: { timeout_ms: 1500 } }],
    [
      'raw',
      502,
      {
        code: 'EXECUTION_ERROR',
        message:
          'In reuse mode stdout carries only responses, and the function wrote another line on it ("written to fd 1 directly"): write output with console.log or print, which the helper sends to stderr, not to file descriptor 1 directly.',
      },
    ],
    ['no-newline', 504, { code: 'TIMEOUT', message: expect.stringMatching(/^The function did not answer within 1500 ms and was ended; it had written \d+ bytes of a line without the newline that ends a response in reuse mode\.$/), details: { timeout_ms: 1500 } }],
    ['half-line', 502, { code: 'EXECUTION_ERROR', message: expect.stringMatching(/^The function's process exited with code 0 during the invocation, after 5\d bytes of a line without its newline\.$/), details: { exit_code: 0, signal: null } }],
  ])('%s: %i', async (fault, status, error) => {
    const before = await servingPid();
    const response = await invoke('faulty', { do: fault });
    expect({ status: response.status, body: response.body }).toEqual({ status, body: failure(error) });
    expect(await waitFor(() => !isAlive(before), 5000)).toBe(true);
    const after = await servingPid();
    expect(after).not.toBe(before);
  });

  it('grow: the memory cap ends it with MEMORY_LIMIT_EXCEEDED', async () => {
    const before = await servingPid();
    const response = await invoke('faulty', { do: 'grow' });
    expect(response.status).toBe(502);
    expect(response.body).toEqual(failure({ code: 'MEMORY_LIMIT_EXCEEDED', message: expect.stringMatching(/memory cap of 96 MB/), details: { limit_bytes: 96 * 1048576, used_bytes: expect.any(Number) } }));
    expect(await waitFor(() => !isAlive(before), 5000)).toBe(true);
    expect(await servingPid()).not.toBe(before);
  });

  it('a throw becomes FUNCTION_ERROR and a FunctionError its own code and status, and the same process goes on', async () => {
    const before = await servingPid();
    const thrown = await invoke('faulty', { do: 'throw' });
    expect({ status: thrown.status, body: thrown.body }).toEqual({ status: 500, body: failure({ code: 'FUNCTION_ERROR', message: 'broken on purpose' }) });
    const refused = await invoke('faulty', { do: 'refuse' });
    expect({ status: refused.status, body: refused.body }).toEqual({ status: 403, body: failure({ code: 'NOT_ALLOWED', message: 'no', details: { why: 'test' } }) });
    expect(await servingPid()).toBe(before);
    const stack = await server.waitForLog((line) => line.stream === 'stderr' && typeof line.msg === 'string' && line.msg.includes('broken on purpose'));
    expect(stack.function).toBe('faulty');
  });

  it('console.log and process.stdout.write go to the log as stderr, and the process goes on', async () => {
    const before = await servingPid();
    const response = await invoke('faulty', { do: 'print' });
    expect(response.status).toBe(200);
    expect(response.body.output.pid).toBe(before);
    for (const text of ['printed by console.log', 'written by process.stdout.write']) {
      const line = await server.waitForLog((entry) => entry.msg === text);
      expect({ stream: line.stream, request_id: line.request_id }).toEqual({ stream: 'stderr', request_id: response.body.request_id });
    }
  });

  it('a crash between two invocations: the next one gets a new process and succeeds', async () => {
    const response = await invoke('faulty', { do: 'crash-after' });
    expect(response.status).toBe(200);
    const crashed = response.body.output.pid as number;
    // Reaped, not only a zombie: node's other threads can hold its stdin open for a few ms after
    // its main thread is one, and only the whole exit is what alyx (and a next caller) can know of.
    expect(await waitFor(() => !fs.existsSync(`/proc/${crashed}`), 5000)).toBe(true);
    const next = await invoke('faulty');
    expect({ status: next.status, error: next.body.error }).toEqual({ status: 200, error: undefined });
    expect(next.body.output.pid).not.toBe(crashed);
  });
});

describe('a caller that leaves', () => {
  it('while its process starts: the process goes on starting and serves the next call', async () => {
    const log = path.join(root, 'functions', 'slow-start', 'started.log');
    const gone = http.request(`${server.url}/api/functions/slow-start`, { method: 'POST' });
    gone.on('error', () => undefined);
    gone.end('{}');
    expect(await waitFor(() => fs.existsSync(log), 10_000)).toBe(true);
    gone.destroy();
    await server.waitForLog((line) => line.function === 'slow-start' && line.status === 499);
    const next = await invoke('slow-start');
    expect(next.status).toBe(200);
    const started = fs.readFileSync(log, 'utf8').trim().split('\n').map(Number);
    expect(started).toEqual([next.body.output.pid]);
  });
});

describe('a function with reuse: true written without a helper', () => {
  it('that waits for the end of stdin fails with EXECUTION_ERROR saying to use the helper or remove reuse', async () => {
    const response = await invoke('plain');
    expect(response.status).toBe(502);
    expect(response.body.error.code).toBe('EXECUTION_ERROR');
    expect(response.body.error.message).toMatch(/did not announce reuse mode within 1000 ms: .*use the helper, or remove reuse from its manifest/);
  });

  it('that answers without reading fails at once with EXECUTION_ERROR saying the same', async () => {
    const response = await invoke('eager');
    expect(response.status).toBe(502);
    expect(response.body.error.code).toBe('EXECUTION_ERROR');
    expect(response.body.error.message).toMatch(/wrote to stdout before announcing reuse mode .*use the helper, or remove reuse from its manifest/);
    expect(response.body.duration_ms).toBeLessThan(5000);
  });
});

describe('processes are replaced so that what runs is what is deployed', () => {
  it('SIGHUP and the admin reload end the processes: the next invocation runs in a new one', async () => {
    const first = await servingPid();
    server.child.kill('SIGHUP');
    expect(await waitFor(() => !isAlive(first), 5000)).toBe(true);
    const second = await servingPid();
    expect(second).not.toBe(first);
    const reload = await request(`${server.url}/api/admin/reload`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(reload.status).toBe(200);
    expect(await waitFor(() => !isAlive(second), 5000)).toBe(true);
    expect(await servingPid()).not.toBe(second);
  });
});

describe('alyx dev', () => {
  let devRoot: string;
  afterEach(() => removeProject(devRoot));

  it('an edit of the function is live on the next call: its process is replaced', async () => {
    devRoot = makeProject({
      'node_modules/alyx': { symlink: REPO_ROOT },
      'functions/greet/index.js': "const { handler } = require('alyx/handler');\nmodule.exports = handler(async () => ({ says: 'one', pid: process.pid }));\n",
      'functions/greet/manifest.yaml': 'reuse: true\n',
    });
    const dev = await startServer(['dev', '-C', devRoot]);
    const call = () => request(`${dev.url}/api/functions/greet`, { method: 'POST', body: '{}' });
    const first = await call();
    expect(first.body.output.says).toBe('one');
    await dev.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('watching'));
    fs.writeFileSync(path.join(devRoot, 'functions', 'greet', 'index.js'), "const { handler } = require('alyx/handler');\nmodule.exports = handler(async () => ({ says: 'two', pid: process.pid }));\n");
    // The watcher's event takes a moment to arrive: called until the edit shows, within 10 s.
    let says = 'one';
    for (let attempt = 0; attempt < 40 && says !== 'two'; attempt++) {
      const answer = await call();
      says = answer.body.output.says;
      if (says !== 'two') await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(says).toBe('two');
    expect(await waitFor(() => !isAlive(first.body.output.pid), 5000)).toBe(true);
    expect((await dev.stop('SIGINT')).code).toBe(0);
  });
});

describe('alyx invoke', () => {
  it('runs a reuse function once and leaves no process behind', async () => {
    const result = await runCli(['invoke', 'faulty', '-C', root, '--json'], { env: cleanEnv(), timeoutMs: 15_000 });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ success: true, output: { served: 1, reuse: '1' } });
    const pid = JSON.parse(result.stdout).output.pid as number;
    expect(isAlive(pid)).toBe(false);
  });
});
