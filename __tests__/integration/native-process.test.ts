import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { nodeHeadersDir } = require('../../scripts/build-addon.cjs') as { nodeHeadersDir: () => string | null };
import { processStartWay, startNativeProcess, startNativeProcessAsync, type FunctionProcess } from '../../src/process/native-process';
import { owner } from '../../src/process/owner';
import { cleanEnv, REPO_ROOT } from '../helpers/cli';
import { isAlive } from '../helpers/processes';
import { makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers } from '../helpers/server';
import { hasCommand, warnSkip } from '../helpers/tools';

/** What one process wrote and how it ended. */
interface Ended {
  stdout: string;
  stderr: string;
  exit: [number | null, NodeJS.Signals | null];
  order: string[];
}

function run(child: FunctionProcess, input = ''): Promise<Ended> {
  const ended: Ended = { stdout: '', stderr: '', exit: [null, null], order: [] };
  child.stdout?.on('data', (chunk: Buffer) => (ended.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (ended.stderr += chunk.toString()));
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(input);
  return new Promise((resolve) => {
    child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      ended.exit = [code, signal];
      ended.order.push('exit');
    });
    child.stdout?.on('close', () => ended.order.push('stdout closed'));
    child.on('close', () => resolve(ended));
  });
}

/**
 * What a process printed of `cat /proc/self/stat /proc/self/status`: it leads its own session
 * and group, blocks no signal and ignores none of 1 to 31 (glibc's posix_spawn leaves its own
 * two, 32 and 33, ignored; glibc resets them at start).
 */
function expectSetUpAsSpawnDoes(stdout: string, pid: number): void {
  const stat = stdout.split('\n')[0];
  // After the name: state, ppid, process group, session.
  const [, , group, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  expect([group, session]).toEqual([pid, pid]);
  const mask = (name: string): bigint => BigInt(`0x${new RegExp(`^${name}:\\s+([0-9a-f]+)$`, 'm').exec(stdout)?.[1]}`);
  expect(mask('SigBlk')).toBe(0n);
  expect(mask('SigIgn') & 0x7fffffffn).toBe(0n);
}

const start = (command: string, args: string[], env: Record<string, string> = { PATH: process.env.PATH ?? '' }, cwd = '/tmp'): FunctionProcess => {
  const child = startNativeProcess(command, args, cwd, env);
  if (!child) throw new Error('the posix_spawn addon is not built');
  return child;
};

const buildable = process.platform === 'linux' && hasCommand('cc') && nodeHeadersDir() !== null;
if (!buildable) warnSkip('starting function processes with posix_spawn', process.platform !== 'linux' ? 'Linux' : hasCommand('cc') ? "node's headers (node_api.h)" : 'cc');
const describeNative = buildable ? describe : describe.skip;

describeNative('function processes started with posix_spawn', () => {
  it('is built with node-gyp where a compiler and node headers are (npm run build did it for this run), and used', () => {
    const built = path.join(REPO_ROOT, 'build', 'Release', 'posix_spawn.node');
    expect(fs.existsSync(built)).toBe(true);
    const loaded = { exports: {} as Record<string, unknown> };
    process.dlopen(loaded, built);
    expect(Object.keys(loaded.exports)).toEqual(expect.arrayContaining(['reap', 'spawn', 'subreaper']));
    expect(processStartWay()).toBe('posix_spawn');
  });

  it('passes the program its arguments, environment, working folder and stdin, and reports its exit code', async () => {
    const cwd = fs.realpathSync(fs.mkdtempSync('/tmp/alyx-native-'));
    try {
      const child = start('/bin/sh', ['-c', 'echo "$1 $GREETING $(pwd)"; cat; echo oops >&2; exit 3', 'sh', 'argument'], { GREETING: 'hello' }, cwd);
      expect(child.pid).toBeGreaterThan(0);
      const ended = await run(child, 'the request');
      expect(ended).toMatchObject({ stdout: `argument hello ${cwd}\nthe request`, stderr: 'oops\n', exit: [3, null] });
      expect(isAlive(child.pid as number)).toBe(false); // reaped: no zombie left
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('starts it as the leader of a new session, with no signal blocked and none ignored (node ignores SIGPIPE)', async () => {
    const child = start('/bin/cat', ['/proc/self/stat', '/proc/self/status']);
    expectSetUpAsSpawnDoes((await run(child)).stdout, child.pid as number);
  });

  it('reports the signal that ended it', async () => {
    const child = start('/bin/sleep', ['30']);
    const ending = run(child);
    process.kill(child.pid as number, 'SIGTERM');
    expect((await ending).exit).toEqual([null, 'SIGTERM']);
  });

  it('reports the exit while a process it left behind still holds its stdout', async () => {
    const child = start('/bin/sh', ['-c', 'sleep 1 & exit 7']);
    const ended = await run(child);
    expect(ended.exit).toEqual([7, null]);
    expect(ended.order).toEqual(['exit', 'stdout closed']);
  });

  it('gives the program fds 0-2 only, even one its starter holds without close-on-exec', () => {
    const dir = fs.mkdtempSync('/tmp/alyx-native-');
    const fd = fs.openSync(`${dir}/held`, 'w');
    try {
      // A node process that holds it at fd 40 (node marks a few low fds close-on-exec itself) starts a shell with the addon.
      const starter = `
        const { startNativeProcess } = require(${JSON.stringify(require.resolve('../../dist/process/native-process.js'))});
        const child = startNativeProcess('/bin/sh', ['-c', 'ls /proc/$$/fd'], '/tmp', { PATH: '/usr/bin:/bin' });
        let out = '';
        child.stdout.on('data', (chunk) => (out += chunk));
        child.stdin.end();
        child.on('close', () => console.log(JSON.stringify(out.split(/\\s+/).filter(Boolean))));`;
      const run = spawnSync(process.execPath, ['-e', starter], { stdio: ['ignore', 'pipe', 'inherit', ...Array<'ignore'>(37).fill('ignore'), fd], encoding: 'utf8' });
      expect(JSON.parse(run.stdout)).toEqual(['0', '1', '2']);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('given the request, puts it and its end in stdin as the process starts, leaving no stdin stream', async () => {
    for (const request of ['the request', 'x'.repeat(8 * 1024 * 1024)]) {
      const child = startNativeProcess('/usr/bin/wc', ['-c'], '/tmp', {}, request);
      expect(child?.stdin).toBeNull();
      expect((await run(child as FunctionProcess)).stdout.trim()).toBe(String(request.length));
    }
  });

  it('throws the errno of a program that cannot be started', () => {
    const notExecutable = fs.mkdtempSync('/tmp/alyx-native-') + '/data.txt';
    fs.writeFileSync(notExecutable, 'text', { mode: 0o644 });
    try {
      expect(() => start('/no/such/program', [])).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(() => start(notExecutable, [])).toThrow(expect.objectContaining({ code: 'EACCES' }));
    } finally {
      fs.rmSync(notExecutable.slice(0, notExecutable.lastIndexOf('/')), { recursive: true, force: true });
    }
  });
});

describeNative('function processes started off the JavaScript thread, given their request', () => {
  const startWith = (command: string, args: string[], input: string, env: Record<string, string> = { PATH: process.env.PATH ?? '' }, cwd = '/tmp'): Promise<FunctionProcess> => {
    const starting = startNativeProcessAsync(command, args, cwd, env, input, () => undefined);
    if (!starting) throw new Error('the posix_spawn addon is not built');
    return starting;
  };

  it('passes the program its arguments, environment, working folder and the request on stdin, then its end', async () => {
    const cwd = fs.realpathSync(fs.mkdtempSync('/tmp/alyx-native-'));
    try {
      const child = await startWith('/bin/sh', ['-c', 'echo "$1 $GREETING $(pwd)"; cat; echo oops >&2; exit 3', 'sh', 'argument'], 'the request', { GREETING: 'hello' }, cwd);
      expect(child.pid).toBeGreaterThan(0);
      expect(child.stdin).toBeNull();
      const ended = await run(child);
      expect(ended).toMatchObject({ stdout: `argument hello ${cwd}\nthe request`, stderr: 'oops\n', exit: [3, null] });
      expect(isAlive(child.pid as number)).toBe(false);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('delivers a request larger than the socket takes at once, whole', async () => {
    const request = 'x'.repeat(8 * 1024 * 1024);
    const child = await startWith('/usr/bin/wc', ['-c'], request);
    expect((await run(child)).stdout.trim()).toBe(String(request.length));
  });

  it('starts it as spawn does: its own session, no signal blocked or ignored, fds 0-2 only', async () => {
    const child = await startWith('/bin/sh', ['-c', 'cat /proc/self/stat /proc/self/status; ls /proc/$$/fd'], '');
    const { stdout } = await run(child);
    expectSetUpAsSpawnDoes(stdout, child.pid as number);
    expect(stdout.trim().split('\n').slice(-3)).toEqual(['0', '1', '2']);
  });

  it('rejects with the errno of a program that cannot be started', async () => {
    await expect(startWith('/no/such/program', [], 'the request')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('is not taken for an adopted orphan, and is ended by the exit handler before its pid reaches JavaScript', async () => {
    const starting = startWith('/bin/sleep', ['30'], '');
    // The loop is held, as at process.exit: the pid cannot arrive, but the process has started.
    const deadline = Date.now() + 5000;
    let unannounced = owner.orphans.poolThreadsChildren();
    while (unannounced.length === 0 && Date.now() < deadline) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      unannounced = owner.orphans.poolThreadsChildren();
    }
    expect(unannounced).toHaveLength(1);
    expect(owner.orphans.isAdopted(unannounced[0])).toBe(false);
    owner.killEverything();
    const child = await starting;
    expect(child.pid).toBe(unannounced[0].pid);
    expect((await run(child)).exit).toEqual([null, 'SIGKILL']);
  });
});

describe('ALYX_POSIX_SPAWN=0', () => {
  let root: string;
  beforeEach(() => {
    root = makeProject({ 'functions/hello/index.js': "process.stdin.resume().on('end', () => console.log(JSON.stringify({ success: true, output: { pid: process.pid } })));\n" });
  });
  afterEach(async () => {
    await stopAllServers();
    removeProject(root);
  });

  it.each([
    ['0', 'child_process.spawn'],
    ['', buildable ? 'posix_spawn' : 'child_process.spawn'],
  ])('with %j the server starts function processes with %s, and answers', async (value, way) => {
    const server = await startServer(['serve', '-C', root], { env: cleanEnv({ ALYX_POSIX_SPAWN: value, ALYX_FUNCTIONS_POOL: '0' }) });
    const listening = server.logs().find((line) => String(line.msg).includes('listening'));
    expect(listening?.process_start).toBe(way);
    const answer = await request(`${server.url}/api/functions/hello`, { method: 'POST', body: '{}' });
    expect(answer.status).toBe(200);
    expect(answer.body.output.pid).toBeGreaterThan(0);
  });
});
