import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { cleanEnv, runCli } from '../helpers/cli';
import { queue, recordingFunction, runsOf, waitForInvocation } from '../helpers/background';
import { waitFor } from '../helpers/processes';
import { makeProject, removeProject, type FixtureTree } from '../helpers/project';
import { storeBackends } from '../helpers/state-backends';
import { rawRequest, request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

/** SPEC §11 against real alyx processes, real functions, and each real store: an SQLite file, and a nats-server with JetStream. */
const FUNCTIONS: FixtureTree = {
  'functions/echo/index.js': recordingFunction('reply({ input: r.input, attempt: r.context.attempt, trigger: r.context.trigger });'),
  'functions/flaky/index.js': recordingFunction('if (r.context.attempt < 2) process.exit(3); reply({ attempt: r.context.attempt });'),
  'functions/client-error/index.js': recordingFunction("fail({ code: 'BAD_ORDER', message: 'no such order', status: 422 });"),
  'functions/server-error/index.js': recordingFunction("fail({ code: 'DOWNSTREAM', message: 'the bank is down', status: 503 });"),
  'functions/server-error/manifest.yaml': 'retries: 1\n',
  'functions/slow/index.js': recordingFunction('setTimeout(() => reply({ slept: r.input.ms }), r.input.ms ?? 3000);'),
  // Answers at once, then keeps its process (and so its slot) for a while.
  'functions/linger/index.js': recordingFunction('reply({}); setTimeout(() => undefined, r.input.ms ?? 3000);'),
};

describe.each(storeBackends('background invocations on JetStream'))('background invocations ($name)', (store) => {
  const it = store.available ? global.it : global.it.skip;
  const jetstream = store.name === 'jetstream';
  let project: string;
  const serve = (args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunningServer> =>
    startServer(['serve', '-C', project, ...args], { env: cleanEnv({ ...store.env(), ...env }) });
  const dev = (env: NodeJS.ProcessEnv = {}): Promise<RunningServer> => startServer(['dev', '-C', project, '--no-watch'], { env: cleanEnv({ ...store.env(), ...env }) });
  const cli = (args: string[]): ReturnType<typeof runCli> => runCli(args, { env: cleanEnv(store.env()) });

  beforeEach(async () => {
    project = makeProject(FUNCTIONS);
    await store.setUp();
  });
  afterEach(async () => {
    await stopAllServers();
    await store.tearDown();
    removeProject(project);
  });

  it('answers 202 once stored, runs the invocation, and keeps its state and envelope', async () => {
    const server = await serve();
    const answer = await request(`${server.url}/api/async/functions/echo`, { method: 'POST', body: '{"name":"Ada"}', headers: { 'X-Request-Id': 'order-17' } });
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ request_id: 'order-17', status: 'queued', status_url: '/api/invocations/order-17' });
    const done = await waitForInvocation(server, 'order-17', ['succeeded']);
    expect(done).toMatchObject({ request_id: 'order-17', function: 'echo', status: 'succeeded', attempts: 1 });
    expect(done.envelope).toMatchObject({ request_id: 'order-17', success: true, output: { input: { name: 'Ada' }, attempt: 1, trigger: { type: 'async' } } });
    for (const key of ['created_at', 'started_at', 'finished_at']) expect(Date.parse(done[key])).not.toBeNaN();
    // The embedded store is a file in the project; the shared one leaves none.
    expect(fs.existsSync(path.join(project, '.alyx', 'state.db'))).toBe(!jetstream);

    // The request id is an idempotency key: queued again, it is the same invocation.
    const again = await request(`${server.url}/api/async/functions/echo`, { method: 'POST', body: '{}', headers: { 'X-Request-Id': 'order-17' } });
    expect(again).toMatchObject({ status: 202, body: { request_id: 'order-17', status: 'succeeded' } });
    expect(runsOf(project)).toEqual([['order-17', 1]]);
  });

  it('retries a crash after a backoff of about a second, with context.attempt counting from 1', async () => {
    const server = await serve();
    const id = await queue(server, 'flaky');
    const waiting = await waitForInvocation(server, id, ['failed', 'succeeded']);
    if (waiting.status === 'failed') {
      expect(waiting.envelope.error.code).toBe('EXECUTION_ERROR');
      expect(Date.parse(waiting.retry_at)).toBeGreaterThan(Date.parse(waiting.started_at));
    }
    const done = await waitForInvocation(server, id, ['succeeded']);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2, envelope: { output: { attempt: 2 } } });
    expect(runsOf(project)).toEqual([[id, 1], [id, 2]]);
    const starts = server.logs().filter((line) => line.request_id === id && typeof line.attempt === 'number');
    expect(starts.map((line) => [line.attempt, line.status])).toEqual([[1, 'failed'], [2, 'succeeded']]);
    const gap = Date.parse(starts[1].time as string) - Date.parse(starts[0].time as string);
    expect(gap).toBeGreaterThanOrEqual(750);
  });

  it('a 4xx function error is final; a 5xx one is retried up to retries; then both are dead letters', async () => {
    const server = await dev();
    const [clientError, serverError] = [await queue(server, 'client-error'), await queue(server, 'server-error')];
    expect(await waitForInvocation(server, clientError, ['dead'])).toMatchObject({ attempts: 1, envelope: { error: { code: 'BAD_ORDER' } } });
    expect(await waitForInvocation(server, serverError, ['dead'])).toMatchObject({ attempts: 2, envelope: { error: { code: 'DOWNSTREAM' } } });

    const listed = await request(`${server.url}/api/dead-letters`);
    expect(listed.status).toBe(200);
    expect(listed.body.count).toBe(2);
    const byRequest = new Map<string, Record<string, any>>(listed.body.dead_letters.map((letter: Record<string, any>) => [letter.request_id, letter])); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(byRequest.get(serverError)).toMatchObject({ function: 'server-error', attempts: 2, error: { code: 'DOWNSTREAM', message: 'the bank is down' } });
    expect(Date.parse(byRequest.get(serverError)?.failed_at)).not.toBeNaN();

    // Retried: queued again with its retries afresh, and dead again after two more attempts.
    const retried = await request(`${server.url}/api/dead-letters/${byRequest.get(serverError)?.id}/retry`, { method: 'POST' });
    expect(retried).toMatchObject({ status: 202, body: { request_id: serverError, status: 'queued' } });
    expect(await waitForInvocation(server, serverError, ['dead'])).toMatchObject({ attempts: 4 });

    const clientLetter = byRequest.get(clientError)?.id as string;
    expect(await request(`${server.url}/api/dead-letters/${clientLetter}`, { method: 'DELETE' })).toMatchObject({ status: 200, body: { success: true, id: clientLetter } });
    expect(await request(`${server.url}/api/dead-letters/${clientLetter}`, { method: 'DELETE' })).toMatchObject({ status: 404, body: { error: { code: 'DEAD_LETTER_NOT_FOUND' } } });
    expect(await request(`${server.url}/api/dead-letters/${clientLetter}/retry`, { method: 'POST' })).toMatchObject({ status: 404, body: { error: { code: 'DEAD_LETTER_NOT_FOUND' } } });
    const after = await request(`${server.url}/api/dead-letters`);
    expect(after.body.dead_letters.map((letter: { request_id: string }) => letter.request_id)).toEqual([serverError]);
  });

  it('in production the dead-letter endpoints need the admin token, and do not exist without one', async () => {
    const without = await serve();
    expect(await request(`${without.url}/api/dead-letters`)).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    await without.stop();
    const server = await serve([], { ALYX_ADMIN_TOKEN: 'the-admin-token' });
    expect(await request(`${server.url}/api/dead-letters`)).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });
    expect(await request(`${server.url}/api/dead-letters/abc/retry`, { method: 'POST', headers: { Authorization: 'Bearer wrong' } })).toMatchObject({ status: 401 });
    expect(await request(`${server.url}/api/dead-letters`, { headers: { Authorization: 'Bearer the-admin-token' } })).toMatchObject({
      status: 200,
      body: { dead_letters: [], count: 0 },
    });
  });

  it('refuses bad ids, bad callback URLs and bad bodies with clear errors, and stores nothing for them', async () => {
    const server = await serve([], { ALYX_ADMIN_TOKEN: 'the-admin-token' });
    const admin = { Authorization: 'Bearer the-admin-token' };
    expect(await request(`${server.url}/api/invocations/never-queued`)).toMatchObject({ status: 404, body: { error: { code: 'INVOCATION_NOT_FOUND' } } });
    for (const bad of ['a%20b', '..%2F..%2Fetc', '%2e%2e', 'x'.repeat(129), '%ZZ']) {
      // Sent as written: fetch would resolve the dot segments before alyx saw them.
      const state = await rawRequest(server, 'GET', `/api/invocations/${bad}`);
      expect({ status: state.status, code: JSON.parse(state.body).error.code }).toEqual({ status: 400, code: 'INVALID_ID' });
      const retry = await request(`${server.url}/api/dead-letters/${bad}/retry`, { method: 'POST', headers: admin });
      if (!bad.includes('%2e')) expect(retry).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ID' } } });
    }
    for (const callback of ['ftp://127.0.0.1/x', 'file:///etc/passwd', 'not a url', '/relative']) {
      const answer = await request(`${server.url}/api/async/functions/echo`, { method: 'POST', body: '{}', headers: { 'X-Callback-Url': callback, 'X-Request-Id': 'refused' } });
      expect(answer).toMatchObject({ status: 400, body: { error: { code: 'INVALID_CALLBACK_URL' } } });
      expect(answer.body.error.message).toContain('http://');
    }
    expect(await request(`${server.url}/api/async/functions/nope`, { method: 'POST', body: '{}' })).toMatchObject({ status: 404, body: { error: { code: 'FUNCTION_NOT_FOUND' } } });
    expect(await request(`${server.url}/api/async/functions/echo`, { method: 'POST', body: '{not json' })).toMatchObject({ status: 400, body: { error: { code: 'INVALID_JSON' } } });
    expect(await request(`${server.url}/api/async/functions/echo`, { method: 'POST', body: '[1]' })).toMatchObject({ status: 400, body: { error: { code: 'INVALID_INPUT' } } });
    expect(await request(`${server.url}/api/async/functions/echo`, { method: 'GET' })).toMatchObject({ status: 405 });
    expect(await request(`${server.url}/api/invocations/refused`)).toMatchObject({ status: 404 });
    // The store is still consistent: new work runs.
    const id = await queue(server, 'echo');
    expect(await waitForInvocation(server, id, ['succeeded'])).toMatchObject({ attempts: 1 });
  });

  it('POSTs the envelope to X-Callback-Url; a target that hangs or refuses holds up nothing else', async () => {
    const received: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
    const hung: http.ServerResponse[] = [];
    const target = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk)).on('end', () => {
        if (req.url === '/hang') {
          hung.push(res);
          return;
        }
        received.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    const refusing = http.createServer();
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    const refusedUrl = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/gone`;
    await new Promise<void>((resolve) => refusing.close(() => resolve()));
    try {
      const server = await serve();
      const hanging = await queue(server, 'echo', {}, { 'X-Callback-Url': `${base}/hang` });
      const refused = await queue(server, 'echo', {}, { 'X-Callback-Url': refusedUrl });
      await waitFor(() => hung.length === 1, 10_000);
      const delivered = await queue(server, 'echo', { n: 3 }, { 'X-Callback-Url': `${base}/hook` });
      expect(await waitFor(() => received.length === 1, 10_000)).toBe(true);
      expect(received[0].headers['x-request-id']).toBe(delivered);
      expect(received[0].headers['content-type']).toBe('application/json');
      expect(JSON.parse(received[0].body)).toMatchObject({ request_id: delivered, success: true, output: { input: { n: 3 } } });
      // The callbacks that fail leave the results as they were.
      expect(await waitForInvocation(server, hanging, ['succeeded'])).toMatchObject({ status: 'succeeded' });
      expect(await waitForInvocation(server, refused, ['succeeded'])).toMatchObject({ status: 'succeeded' });
      expect(hung).toHaveLength(1);
    } finally {
      for (const res of hung) res.destroy();
      target.closeAllConnections();
      await new Promise<void>((resolve) => target.close(() => resolve()));
    }
  });

  it('a backlog of background work does not delay synchronous calls: it uses half the slots', async () => {
    fs.writeFileSync(path.join(project, 'alyx.yaml'), 'functions: { concurrency: 2, pool: 0 }\n');
    const server = await serve();
    const backlog = [];
    for (let i = 0; i < 4; i++) backlog.push(await queue(server, 'slow', { ms: 4000 }));
    await waitForInvocation(server, backlog[0], ['running']);
    const started = Date.now();
    const answer = await request(`${server.url}/api/functions/echo`, { method: 'POST', body: '{}' });
    const took = Date.now() - started;
    expect(answer.status).toBe(200);
    expect(took).toBeLessThan(3000);
    // Only one background invocation ran meanwhile: half of the concurrency of 2.
    const states = await Promise.all(backlog.map((id) => request(`${server.url}/api/invocations/${id}`)));
    expect(states.map((state) => state.body.status).sort()).toEqual(['queued', 'queued', 'queued', 'running']);
  });

  it('a background invocation holds its slot until its process is gone, not only until its answer', async () => {
    fs.writeFileSync(path.join(project, 'alyx.yaml'), 'functions: { concurrency: 4, pool: 0 }\n');
    const server = await serve();
    const backlog = [];
    for (let i = 0; i < 8; i++) backlog.push(await queue(server, 'linger', { ms: 3000 }));
    await waitForInvocation(server, backlog[1], ['succeeded']);
    for (let round = 0; round < 3; round++) {
      const answer = await request(`${server.url}/api/functions/echo`, { method: 'POST', body: '{}', headers: { 'X-Request-Id': `sync-${round}` } });
      expect(answer.status).toBe(200);
    }
    // Two background processes at most (half of 4): the synchronous calls never waited for a slot.
    expect(server.logs().filter((line) => String(line.request_id).startsWith('sync-') && String(line.msg).includes('waiting for a free slot'))).toEqual([]);
    const states = await Promise.all(backlog.map((id) => request(`${server.url}/api/invocations/${id}`)));
    expect(states.filter((state) => state.body.status === 'succeeded').length).toBeLessThanOrEqual(4);
  });

  it('SIGTERM puts what did not finish back in the queue; the next alyx runs it again', async () => {
    fs.writeFileSync(path.join(project, 'alyx.yaml'), 'server: { shutdown_timeout: 300ms }\n');
    const first = await serve();
    const id = await queue(first, 'slow', { ms: 2500 });
    // Running, and its process has started (a claim is marked running just before).
    await waitFor(() => runsOf(project).length === 1, 10_000);
    expect(await first.stop('SIGTERM')).toMatchObject({ code: 0 });
    const second = await serve();
    expect(await waitForInvocation(second, id, ['succeeded'])).toMatchObject({ attempts: 2 });
    expect(runsOf(project)).toEqual([[id, 1], [id, 2]]);
  });

  it('after a SIGKILL of alyx, what was running runs again at the next start', async () => {
    // On JetStream it is delivered again once its ack deadline (the longest function timeout and 10 s) has passed.
    if (jetstream) fs.writeFileSync(path.join(project, 'alyx.yaml'), 'functions: { timeout: 3s }\n');
    const first = await serve();
    const id = await queue(first, 'slow', { ms: 1500 });
    await waitForInvocation(first, id, ['running']);
    await first.stop('SIGKILL');
    const second = await serve();
    expect(await waitForInvocation(second, id, ['succeeded'], 40_000)).toMatchObject({ attempts: 2, envelope: { success: true } });
  });

  it('two alyx processes on one state never run one invocation at the same time', async () => {
    fs.writeFileSync(path.join(project, 'functions/slow/manifest.yaml'), 'reuse: false\n');
    const [one, two] = [await serve(), await serve()];
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await queue(i % 2 ? one : two, 'slow', { ms: 150 }));
    for (const id of ids) await waitForInvocation(one, id, ['succeeded'], 30_000);
    const runs = runsOf(project);
    expect(runs).toHaveLength(30);
    expect(new Set(runs.map(([id]) => id)).size).toBe(30);
    const ranOn = (server: RunningServer): number => server.logs().filter((line) => line.status === 'succeeded' && typeof line.attempt === 'number').length;
    expect(ranOn(one) + ranOn(two)).toBe(30);
  });

  it('a function deleted while its invocations wait: they end dead with FUNCTION_NOT_FOUND', async () => {
    const queued = await cli(['invoke', 'echo', '--async', '-C', project, '-d', '{"n":1}']);
    expect(queued.code).toBe(0);
    const { request_id: id } = JSON.parse(queued.stdout);
    fs.rmSync(path.join(project, 'functions', 'echo'), { recursive: true });
    const server = await serve();
    const done = await waitForInvocation(server, id, ['dead']);
    expect(done).toMatchObject({ function: 'echo', attempts: 1, envelope: { success: false, error: { code: 'FUNCTION_NOT_FOUND' } } });
  });

  it('alyx invoke --async and alyx dead-letters work on the store without a server', async () => {
    const queued = await cli(['invoke', 'client-error', '--async', '-C', project]);
    expect(queued.code).toBe(0);
    const { request_id: id, status } = JSON.parse(queued.stdout);
    expect(status).toBe('queued');
    expect((await cli(['invoke', 'nope', '--async', '-C', project])).code).toBe(1);
    expect((await cli(['invoke', 'echo', '--async', '-C', project, '-d', '[1]'])).code).toBe(2);

    const server = await serve();
    await waitForInvocation(server, id, ['dead']);
    await server.stop();

    const listed = await cli(['dead-letters', '--json', '-C', project]);
    expect(listed.code).toBe(0);
    const [letter] = JSON.parse(listed.stdout).dead_letters;
    expect(letter).toMatchObject({ request_id: id, function: 'client-error', attempts: 1, error: { code: 'BAD_ORDER' } });
    const retried = await cli(['dead-letters', 'retry', letter.id, '-C', project]);
    expect(retried).toMatchObject({ code: 0 });
    expect(retried.stdout).toContain(`${id} (client-error) is queued again`);
    expect(JSON.parse((await cli(['dead-letters', '--json', '-C', project])).stdout).count).toBe(0);
    const unknown = await cli(['dead-letters', 'drop', 'abcdef', '-C', project]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No dead letter "abcdef"');
    const malformed = await cli(['dead-letters', 'drop', '../x', '-C', project]);
    expect(malformed.code).toBe(2);
    expect((await cli(['dead-letters', 'resurrect', 'x', '-C', project])).code).toBe(2);
  });

  if (!jetstream) it('a corrupt state file stops alyx at start with exit 1 and a message that names the path', async () => {
    const file = path.join(project, '.alyx', 'state.db');
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, 'not a database '.repeat(1000));
    const result = await cli(['serve', '-C', project, '--port', '0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`state.url ${file} cannot be used`);
    expect(result.stderr).toContain('move it away');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
