import fs from 'node:fs';
import path from 'node:path';
import { resolveConfig } from '../../src/config/resolve';
import { Invoker } from '../../src/invoke/invoker';
import { ProcessPool } from '../../src/process/pool';
import { WATCHDOG_NAME } from '../../src/process/watchdog';
import { FunctionRegistry, loadSnapshot } from '../../src/functions/registry';
import { cleanEnv } from '../helpers/cli';
import { captureLogs } from '../helpers/logs';
import { isAlive, processesWithArgs, readPidFile, waitFor } from '../helpers/processes';
import { executable, makeProject, removeProject, writeTree } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

/**
 * `warm` notes every process start in spawned.log and every run in ran.log, in the project
 * folder (outside the function's folder, whose changes end warm processes in development). While the file
 * `early` holds a positive count it writes a line before reading its request (and counts down).
 */
const WARM_FUNCTION = `
const fs = require('node:fs');
process.chdir('../..');
fs.appendFileSync('spawned.log', process.pid + '\\n');
try {
  const left = Number(fs.readFileSync('early', 'utf8'));
  if (left > 0) { fs.writeFileSync('early', String(left - 1)); console.log('too early'); }
} catch {}
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => {
  const request = JSON.parse(data);
  fs.appendFileSync('ran.log', request.request_id + ' ' + process.pid + '\\n');
  const answer = () => console.log(JSON.stringify({ success: true, output: {
    pid: process.pid, request_id: request.request_id, token: request.context.internal_token, input: request.input } }));
  if (request.input.ms) setTimeout(answer, Number(request.input.ms)); else answer();
});
`;

/**
 * Notes its pid in stubborn.log, ignores SIGTERM and SIGHUP, and, given no request (EOF alone,
 * as when alyx is gone) or `hang` (noted in hung.log), stays forever: only a SIGKILL ends it.
 * `ms` delays its answer.
 */
const STUBBORN_FUNCTION = `
const fs = require('node:fs');
process.on('SIGTERM', () => undefined);
process.on('SIGHUP', () => undefined);
fs.appendFileSync('../../stubborn.log', process.pid + '\\n');
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => {
  if (data !== '' && JSON.parse(data).input.hang) fs.writeFileSync('../../hung.log', String(process.pid));
  if (data === '' || JSON.parse(data).input.hang) return void setInterval(() => undefined, 1000);
  setTimeout(() => console.log(JSON.stringify({ success: true, output: { pid: process.pid } })), JSON.parse(data).input.ms ?? 0);
});
`;

let root: string;
const dir = (): string => path.join(root, 'functions', 'warm');
const lines = (file: string): string[] => {
  try {
    return fs.readFileSync(path.join(root, file), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};
const spawned = (): number[] => lines('spawned.log').map(Number);
const ran = (): Array<{ id: string; pid: number }> => lines('ran.log').map((line) => ({ id: line.split(' ')[0], pid: Number(line.split(' ')[1]) }));
/** Processes of `warm` alive and not (yet) given a request. */
const waiting = (): number[] => {
  const used = new Set(ran().map((entry) => entry.pid));
  return spawned().filter((pid) => !used.has(pid) && isAlive(pid));
};

beforeEach(() => {
  root = makeProject({ 'functions/warm/index.js': WARM_FUNCTION });
});
afterEach(async () => {
  await stopAllServers();
  for (const pid of spawned()) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  removeProject(root);
});

const serve = (env: NodeJS.ProcessEnv = {}, command = 'serve'): Promise<RunningServer> => startServer([command, '-C', root], { env: cleanEnv(env) });
const invoke = (server: RunningServer, input: Record<string, unknown> = {}) =>
  request(`${server.url}/api/functions/warm`, { method: 'POST', body: JSON.stringify(input) });

/** Waits until exactly `count` processes wait, and returns them. */
async function waitingExactly(count: number, timeoutMs = 10_000): Promise<number[]> {
  if (!(await waitFor(() => waiting().length === count, timeoutMs))) {
    throw new Error(`expected ${count} waiting process(es), have ${waiting().length}; spawned ${spawned().join(',')}`);
  }
  return waiting();
}

describe('the warm pool in production (functions.pool default 1)', () => {
  it('answers from a warm process with a fresh request id and token; no request runs twice or is lost', async () => {
    const server = await serve();
    const first = await invoke(server, { n: 0 });
    expect(first.status).toBe(200);
    const [warm] = await waitingExactly(1);

    const second = await invoke(server, { n: 1 });
    expect(second.status).toBe(200);
    expect(second.body.output.pid).toBe(warm);
    expect(second.body.output.request_id).toBe(second.body.request_id);
    expect(second.body.output.request_id).not.toBe(first.body.output.request_id);
    expect(second.body.output.token).toMatch(/^[0-9a-f]{64}$/);
    expect(second.body.output.token).not.toBe(first.body.output.token);
    expect(second.body.output.input).toEqual({ n: 1 });

    const sequential = [];
    for (let n = 2; n < 12; n++) sequential.push(await invoke(server, { n }));
    const concurrent = await Promise.all(Array.from({ length: 10 }, (_, i) => invoke(server, { n: 12 + i })));
    const all = [first, second, ...sequential, ...concurrent];
    expect(all.map((response) => response.status)).toEqual(all.map(() => 200));
    expect(all.map((response) => response.body.output.input.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 22 }, (_, i) => i));

    const runs = ran();
    expect(runs).toHaveLength(22);
    expect(new Set(runs.map((entry) => entry.id)).size).toBe(22);
    expect(new Set(runs.map((entry) => entry.pid)).size).toBe(22); // one process per invocation
    expect(runs.map((entry) => entry.id).sort()).toEqual(all.map((response) => response.body.request_id).sort());
  });

  it('has a warm node process compile its way in while it waits, and never shows the function why', async () => {
    // At the function's first line the preload's warm-up socket (abstract, so no file) is listening.
    writeTree(root, {
      'functions/sees/index.js': `
const fs = require('node:fs');
const warmingUp = fs.readFileSync('/proc/net/unix', 'utf8').includes('@alyx-warm-' + process.pid);
const variables = Object.keys(process.env).filter((key) => key.startsWith('ALYX_')).sort();
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => console.log(JSON.stringify({ success: true, output: { pid: process.pid, warmingUp, variables, input: JSON.parse(data).input } })));
`,
    });
    const server = await serve();
    const call = (n: number) => request(`${server.url}/api/functions/sees`, { method: 'POST', body: JSON.stringify({ n }) });
    const cold = await call(0);
    expect(cold.status).toBe(200);
    expect(cold.body.output).toMatchObject({ warmingUp: false, variables: ['ALYX_FUNCTION', 'ALYX_MODE'], input: { n: 0 } });
    // The pool started its replacement once the first had finished; the next invocation takes it.
    const started = Date.now();
    let warm = await call(1);
    while (warm.body.output?.warmingUp !== true && Date.now() - started < 10_000) warm = await call(2);
    expect(warm.status).toBe(200);
    expect(warm.body.output).toMatchObject({ warmingUp: true, variables: ['ALYX_FUNCTION', 'ALYX_MODE'] });
    // The warm-up holds nothing open: the process ends once it has answered.
    expect(await waitFor(() => !isAlive(warm.body.output.pid), 5000)).toBe(true);
  });

  it('counts the timeout from the request, not from the start of the waiting process', async () => {
    writeTree(root, { 'functions/warm/manifest.yaml': 'timeout: 1s\n' });
    const server = await serve();
    expect((await invoke(server)).status).toBe(200);
    const [warm] = await waitingExactly(1);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // longer than the timeout
    const response = await invoke(server, { ms: 100 });
    expect([response.status, response.body.output?.pid]).toEqual([200, warm]);

    const late = await invoke(server, { ms: 5000 });
    expect([late.status, late.body.error.code]).toEqual([504, 'TIMEOUT']);
    const timedOut = ran().find((entry) => entry.id === late.body.request_id)?.pid as number;
    expect(await waitFor(() => !isAlive(timedOut), 3000)).toBe(true);
  });

  it('replaces a waiting process that exits', async () => {
    const server = await serve();
    await invoke(server);
    const [warm] = await waitingExactly(1);
    process.kill(warm, 'SIGKILL');
    await server.waitForLog((line) => String(line.msg).startsWith('discarded a warm process') && String(line.reason).includes('exited while waiting'));
    const [replacement] = await waitingExactly(1);
    expect(replacement).not.toBe(warm);
    const response = await invoke(server);
    expect([response.status, response.body.output.pid]).toEqual([200, replacement]);
  });

  it('discards a waiting process that writes before it has its request', async () => {
    const server = await serve();
    await invoke(server);
    const [warm] = await waitingExactly(1);
    fs.writeFileSync(path.join(root, 'early'), '1');
    process.kill(warm, 'SIGKILL');
    await server.waitForLog((line) => String(line.reason).includes('wrote output before it had its request'));
    const chatty = spawned()[spawned().indexOf(warm) + 1];
    // Until it is gone, the discarded process still counts as waiting here.
    expect(await waitFor(() => !isAlive(chatty), 3000)).toBe(true);
    const [clean] = await waitingExactly(1);
    expect(chatty).not.toBe(clean);
    const response = await invoke(server);
    expect([response.status, response.body.output.pid]).toEqual([200, clean]);
    expect(response.body.logs).toEqual([]);
  });

  it('stops pooling a function whose waiting processes keep failing, and still answers', async () => {
    fs.writeFileSync(path.join(root, 'early'), '1000');
    const server = await serve();
    await invoke(server);
    await server.waitForLog((line) => String(line.msg).includes('is no longer kept warm'));
    fs.writeFileSync(path.join(root, 'early'), '0');
    const before = spawned().length;
    const response = await invoke(server);
    expect(response.status).toBe(200);
    expect(spawned().length).toBe(before + 1); // its own process, and no replacement
  });

  it('grows to the recent concurrency, within the cap', async () => {
    writeTree(root, { 'functions/warm/manifest.yaml': 'pool: 3\n' });
    const server = await serve();
    await Promise.all(Array.from({ length: 5 }, () => invoke(server, { ms: 300 })));
    await waitingExactly(3);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(waiting()).toHaveLength(3);
  });

  it.each([
    ['functions.pool: 0', { ALYX_FUNCTIONS_POOL: '0' }, {}],
    ['manifest pool: 0', {}, { 'functions/warm/manifest.yaml': 'pool: 0\n' }],
  ])('%s disables it', async (_what, env, files) => {
    writeTree(root, files);
    const server = await serve(env);
    for (let n = 0; n < 3; n++) expect((await invoke(server)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(spawned()).toHaveLength(3);
  });
});

describe('the pool drains', () => {
  it('on SIGHUP, and refills on the next invocation', async () => {
    const server = await serve();
    await invoke(server);
    const [warm] = await waitingExactly(1);
    server.child.kill('SIGHUP');
    expect(await waitFor(() => !isAlive(warm), 5000)).toBe(true);
    expect((await invoke(server)).status).toBe(200);
    await waitingExactly(1);
  });

  it('on POST /api/admin/reload', async () => {
    const server = await serve({ ALYX_ADMIN_TOKEN: 'secret' });
    await invoke(server);
    const [warm] = await waitingExactly(1);
    const reload = await request(`${server.url}/api/admin/reload`, { method: 'POST', headers: { Authorization: 'Bearer secret' } });
    expect(reload.status).toBe(200);
    expect(await waitFor(() => !isAlive(warm), 5000)).toBe(true);
  });

  it('on shutdown (SIGTERM)', async () => {
    const server = await serve();
    await invoke(server);
    const [warm] = await waitingExactly(1);
    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(await waitFor(() => !isAlive(warm), 3000)).toBe(true);
  });

  it('when alyx is killed with SIGKILL: waiting processes read EOF and exit', async () => {
    writeTree(root, { 'functions/warm/manifest.yaml': 'pool: 3\n' });
    const server = await serve();
    await Promise.all(Array.from({ length: 3 }, () => invoke(server, { ms: 200 })));
    const warm = await waitingExactly(3);
    expect(await server.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await waitFor(() => warm.every((pid) => !isAlive(pid)), 5000)).toBe(true);
  });

  it('when alyx is killed with SIGKILL: the watchdog ends a waiting process that ignores EOF and SIGTERM, a hung invocation, and itself', async () => {
    writeTree(root, { 'functions/stubborn/index.js': STUBBORN_FUNCTION, 'functions/stubborn/manifest.yaml': 'pool: 2\n' });
    const alive = (): number[] => lines('stubborn.log').map(Number).filter(isAlive);
    const server = await serve();
    const invokeStubborn = (input: Record<string, unknown>) => request(`${server.url}/api/functions/stubborn`, { method: 'POST', body: JSON.stringify(input) });
    try {
      // Two at once make the pool keep two; the hung invocation then takes one of them.
      const answered = await Promise.all([invokeStubborn({ ms: 300 }), invokeStubborn({ ms: 300 })]);
      expect(answered.map((response) => response.status)).toEqual([200, 200]);
      expect(await waitFor(() => alive().length === 2, 10_000)).toBe(true);
      const hung = invokeStubborn({ hang: true }).catch(() => null);
      const hungPid = await readPidFile(path.join(root, 'hung.log'));
      // The pool keeps two in all: the hung one, and one waiting in its place.
      expect(await waitFor(() => alive().length === 2 && alive().includes(hungPid), 10_000)).toBe(true);
      const watchdogs = (): number[] => processesWithArgs(WATCHDOG_NAME, String(server.child.pid));
      expect(watchdogs()).toHaveLength(1);

      expect(await server.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
      await hung;
      expect(await waitFor(() => alive().length === 0 && watchdogs().length === 0, 5000)).toBe(true);
    } finally {
      for (const pid of alive()) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('development mode', () => {
  it('keeps no warm process by default', async () => {
    const server = await serve({}, 'dev');
    for (let n = 0; n < 3; n++) expect((await invoke(server)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(spawned()).toHaveLength(3);
  });

  it('keeps one when functions.pool asks, and ends it when the source changes', async () => {
    writeTree(root, { 'alyx.yaml': 'functions:\n  pool: 1\n' });
    const server = await serve({}, 'dev');
    await invoke(server);
    const [warm] = await waitingExactly(1);
    fs.writeFileSync(path.join(dir(), 'index.js'), WARM_FUNCTION.replace('pid: process.pid,', "pid: process.pid, edited: true,"));
    expect(await waitFor(() => !isAlive(warm), 5000)).toBe(true);
    const response = await invoke(server);
    expect([response.status, response.body.output.edited]).toEqual([200, true]);
  });
});

describe('the pool inside the invoker', () => {
  const setUp = (idleMs: number) => {
    const config = resolveConfig({ projectDir: root, mode: 'production', env: cleanEnv() });
    const { logger, lines: logLines } = captureLogs();
    const pool = new ProcessPool({ logger, idleMs });
    const invoker = new Invoker(config, new FunctionRegistry(() => loadSnapshot(config, cleanEnv())), logger, cleanEnv(), { pool });
    return { pool, invoker, logLines };
  };

  it('ends the warm processes of a function idle for the idle period', async () => {
    const { pool, invoker } = setUp(300);
    try {
      expect((await invoker.invoke('warm', {})).success).toBe(true);
      const [warm] = await waitingExactly(1);
      expect(await waitFor(() => !isAlive(warm), 5000)).toBe(true);
      expect(pool.waiting).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('answers a warm process that closed its stdout while it waited, and frees its slot', async () => {
    writeTree(root, {
      'alyx.yaml': 'functions:\n  concurrency: 1\n',
      'functions/closes-stdout/manifest.yaml': 'runtime: binary\nbuild:\n  output: run.sh\n',
      'functions/closes-stdout/run.sh': executable('#!/bin/sh\nexec 1>&-\necho $$ >> ../../closed.log\ncat > /dev/null\nexit 0\n'),
    });
    const { pool, invoker } = setUp(60_000);
    try {
      // The first spawns; each later one takes a warm process whose stdout is already closed.
      for (let i = 0; i < 3; i++) {
        if (i > 0) expect(await waitFor(() => pool.waiting === 1 && lines('closed.log').length === i + 1)).toBe(true);
        const result = await invoker.invoke('closes-stdout', {});
        expect([result.success, result.error?.code]).toEqual([false, 'EXECUTION_ERROR']);
        expect(result.error?.message).toContain('without writing a response');
      }
    } finally {
      await pool.close();
    }
  });

  it("ends a warm process's helper in a session of its own, with an empty environment, when the pool goes idle", async () => {
    writeTree(root, {
      'functions/helper/index.js': `
const { spawn } = require('node:child_process');
const helper = spawn('/bin/sleep', ['300'], { detached: true, stdio: 'ignore', env: {} });
helper.unref();
require('node:fs').appendFileSync('../../helpers.log', helper.pid + '\\n');
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => console.log(JSON.stringify({ success: true, output: {} })));
`,
    });
    const { pool, invoker } = setUp(300);
    const helpers = (): number[] => lines('helpers.log').map(Number);
    try {
      expect((await invoker.invoke('helper', {})).success).toBe(true);
      // The second helper is the warm process's, started once the first invocation had finished.
      expect(await waitFor(() => helpers().length === 2 && pool.waiting === 1, 5000)).toBe(true);
      const warmHelper = helpers()[1];
      expect(isAlive(warmHelper)).toBe(true);
      expect(await waitFor(() => pool.waiting === 0 && !isAlive(warmHelper), 5000)).toBe(true);
    } finally {
      await pool.close();
      for (const pid of helpers()) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('applies max_output and the leftover-process cleanup to a pooled invocation as to any other', async () => {
    writeTree(root, {
      'alyx.yaml': 'functions:\n  max_output: 64kb\n',
      'functions/warm/index.js': WARM_FUNCTION.replace(
        "if (request.input.ms)",
        "if (request.input.big) { process.stdout.write('x'.repeat(1024 * 1024)); return; }\n  if (request.input.leave) { const c = require('node:child_process').spawn('sleep', ['300'], { stdio: 'ignore' }); c.unref(); fs.writeFileSync('left.pid', String(c.pid)); }\n  if (request.input.ms)",
      ),
    });
    const { pool, invoker, logLines } = setUp(60_000);
    try {
      await invoker.invoke('warm', {});
      const [warm] = await waitingExactly(1);
      const big = await invoker.invoke('warm', { big: true });
      expect([big.success, big.error?.code]).toEqual([false, 'OUTPUT_TOO_LARGE']);
      expect(ran().at(-1)?.pid).toBe(warm);
      expect(await waitFor(() => !isAlive(warm), 3000)).toBe(true);

      const [next] = await waitingExactly(1);
      const leaving = await invoker.invoke('warm', { leave: true });
      expect([leaving.success, ran().at(-1)?.pid]).toEqual([true, next]);
      const left = Number(fs.readFileSync(path.join(root, 'left.pid'), 'utf8'));
      expect(await waitFor(() => !isAlive(left), 3000)).toBe(true);
      expect(logLines().some((line) => String(line.msg).includes('ended 1 process(es) the function left behind'))).toBe(true);
    } finally {
      await pool.close();
    }
  });
});
