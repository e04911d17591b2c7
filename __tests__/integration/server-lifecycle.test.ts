import fs from 'node:fs';
import path from 'node:path';
import { cleanEnv } from '../helpers/cli';
import { nodeFunction, serverFunctions } from '../helpers/fixtures';
import { isAlive, readPidFile, waitFor } from '../helpers/processes';
import { makeProject, removeProject, writeTree } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

let root: string;
beforeEach(() => {
  root = makeProject(serverFunctions);
});
afterEach(async () => {
  await stopAllServers();
  removeProject(root);
});

const serve = (env: NodeJS.ProcessEnv = {}): Promise<RunningServer> => startServer(['serve', '-C', root], { env: cleanEnv(env) });

/** Starts a slow invocation and resolves once its process runs, with its pid and pending response. */
async function startSlow(server: RunningServer, ms: number, tag: string) {
  const response = request(`${server.url}/api/functions/slow`, { method: 'POST', body: JSON.stringify({ ms, tag }) });
  const pid = await readPidFile(path.join(root, 'functions', 'slow', `started-${tag}.pid`));
  return { pid, response };
}

describe('signals', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('%s lets the running invocation finish, refuses new connections, exits 0', async (signal) => {
    const server = await serve();
    const slow = await startSlow(server, 1500, 'drain');
    const exited = server.stop(signal);
    await server.waitForLog((line) => String(line.msg).includes('shutting down'));
    await expect(request(`${server.url}/api/health`, { timeoutMs: 2000 })).rejects.toThrow();
    expect(await slow.response).toMatchObject({ status: 200, body: { success: true, output: { slept: 1500 } } });
    expect(await exited).toEqual({ code: 0, signal: null });
  });

  it('past server.shutdown_timeout, running invocations end with 503 SHUTTING_DOWN and their processes are gone', async () => {
    fs.writeFileSync(path.join(root, 'alyx.yaml'), 'server:\n  shutdown_timeout: 300ms\n');
    const server = await serve();
    const slow = await startSlow(server, 30_000, 'cut');
    const started = Date.now();
    const exited = server.stop('SIGTERM');
    const response = await slow.response;
    expect([response.status, response.body.error.code]).toEqual([503, 'SHUTTING_DOWN']);
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(isAlive(slow.pid)).toBe(false);
  });

  it('a second signal exits at once with status 1, ending what runs', async () => {
    const server = await serve();
    const slow = await startSlow(server, 30_000, 'twice');
    slow.response.catch(() => undefined);
    server.child.kill('SIGTERM');
    await server.waitForLog((line) => String(line.msg).includes('shutting down'));
    const started = Date.now();
    expect(await server.stop('SIGTERM')).toEqual({ code: 1, signal: null });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await waitFor(() => !isAlive(slow.pid), 3000)).toBe(true);
  });

  it('SIGHUP re-discovers; an invocation already running finishes on what it started', async () => {
    const server = await serve();
    const slow = await startSlow(server, 1000, 'reload');
    fs.rmSync(path.join(root, 'functions', 'slow'), { recursive: true });
    writeTree(root, { 'functions/fresh/index.js': nodeFunction("console.log(JSON.stringify({ success: true, output: 'new deploy' }));") });
    server.child.kill('SIGHUP');
    await server.waitForLog((line) => line.msg === '+ added fresh');
    await server.waitForLog((line) => line.msg === '- removed slow');
    expect(await slow.response).toMatchObject({ status: 200, body: { output: { slept: 1000 } } });
    expect((await request(`${server.url}/api/functions/fresh`, { method: 'POST' })).body.output).toBe('new deploy');
    expect((await request(`${server.url}/api/functions/slow`, { method: 'POST' })).status).toBe(404);
    expect(server.child.exitCode).toBeNull();
  });
});

describe('concurrency', () => {
  it('past functions.concurrency and functions.queue: 503 OVERLOADED with Retry-After', async () => {
    const server = await serve({ ALYX_FUNCTIONS_CONCURRENCY: '1', ALYX_FUNCTIONS_QUEUE: '1' });
    const running = await startSlow(server, 1500, 'first');
    // One slot runs, one request may wait: of two more, whichever comes second is refused.
    const [first, second] = await Promise.all(
      ['a', 'b'].map((tag) => request(`${server.url}/api/functions/echo`, { method: 'POST', body: JSON.stringify({ tag }) })),
    );
    const refused = [first, second].filter((response) => response.status === 503);
    const served = [first, second].filter((response) => response.status === 200);
    expect(refused).toHaveLength(1);
    expect(served).toHaveLength(1);
    expect(refused[0].body.error.code).toBe('OVERLOADED');
    expect(refused[0].headers.get('retry-after')).toBe('1');
    expect((await running.response).status).toBe(200);
  });
});
