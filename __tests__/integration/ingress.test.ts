import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cleanEnv, runCli } from '../helpers/cli';
import { recordingFunction, runsOf, waitForInvocation } from '../helpers/background';
import { makeProject, removeProject, type FixtureTree } from '../helpers/project';
import { rawRequest, request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

/** SPEC §13 routes and webhooks against a real alyx, with signatures computed as each sender documents. */
const GITHUB_SECRET = 'gh-secret';
const STRIPE_SECRET = 'whsec_stripe_test_secret';
const STANDARD_KEY = randomBytes(24);
const STANDARD_SECRET = `whsec_${STANDARD_KEY.toString('base64')}`;

const ECHO = recordingFunction('reply({ input: r.input, trigger: r.context.trigger });');
const FUNCTIONS: FixtureTree = {
  'functions/users/index.js': ECHO,
  'functions/users/manifest.yaml': 'routes:\n  - { path: /users/:id, methods: [GET, DELETE] }\n  - { path: /files/*, methods: [GET] }\n',
  'functions/me/index.js': ECHO,
  'functions/me/manifest.yaml': 'routes:\n  - { path: /users/me, methods: [GET] }\n',
  'functions/github/index.js': ECHO,
  'functions/github/manifest.yaml': [
    'hooks:',
    '  - type: webhook',
    '    mode: sync',
    '    config: { path: /webhooks/github }',
    '    verification: { type: hmac-sha256, header: X-Hub-Signature-256, secret: "${GITHUB_WEBHOOK_SECRET}" }',
    '  - type: webhook',
    '    config: { path: /webhooks/lenient }',
    '    verification: { type: hmac-sha256, secret: "${GITHUB_WEBHOOK_SECRET}", skip_invalid: true }',
    '  - { type: database, config: { table: users, events: [insert] } }',
    '',
  ].join('\n'),
  'functions/stripe/index.js': ECHO,
  'functions/stripe/manifest.yaml': 'hooks:\n  - { type: webhook, mode: async, config: { path: /webhooks/stripe }, verification: { type: stripe, secret: ' + STRIPE_SECRET + ' } }\n',
  'functions/standard/index.js': ECHO,
  'functions/standard/manifest.yaml': `hooks:\n  - { type: webhook, config: { path: /webhooks/standard }, verification: { type: standard-webhooks, secret: "${STANDARD_SECRET}" } }\n`,
};

const hex = (algorithm: string, key: string | Buffer, text: string): string => createHmac(algorithm, key).update(text).digest('hex');

describe('routes and webhooks', () => {
  let project: string;
  let server: RunningServer;
  const post = (pathname: string, body: string, headers: Record<string, string>) => request(`${server.url}${pathname}`, { method: 'POST', body, headers });

  beforeAll(async () => {
    project = makeProject(FUNCTIONS);
    server = await startServer(['serve', '-C', project], { env: cleanEnv({ GITHUB_WEBHOOK_SECRET: GITHUB_SECRET }) });
  });
  afterAll(async () => {
    await stopAllServers();
    removeProject(project);
  });

  it('a route runs its function with the path parameters merged into the input and listed in the trigger', async () => {
    const answer = await request(`${server.url}/users/42?id=query&view=full`);
    expect(answer.status).toBe(200);
    expect(answer.body.output).toEqual({
      input: { id: '42', view: 'full' },
      trigger: { type: 'http', method: 'GET', path: '/users/42', params: { id: '42' }, query: { id: 'query', view: 'full' } },
    });
  });

  it('static segments win over parameters, a final * takes the rest, and other methods get 405 with Allow', async () => {
    expect((await request(`${server.url}/users/me`)).body.output.trigger).toMatchObject({ path: '/users/me', params: {} });
    expect((await request(`${server.url}/files/a/b/c.txt`)).body.output.trigger.params).toEqual({ '*': 'a/b/c.txt' });
    const refused = await request(`${server.url}/users/42`, { method: 'POST', body: '{}' });
    expect(refused).toMatchObject({ status: 405, body: { error: { code: 'METHOD_NOT_ALLOWED' } } });
    expect(refused.headers.get('allow')).toBe('GET, DELETE, HEAD');
    expect(await request(`${server.url}/nowhere`)).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
  });

  it('lists routes and webhooks, never a secret; warns once about the hooks that need the earlier server', async () => {
    const listed = await request(`${server.url}/api/functions`);
    const byName = new Map<string, Record<string, unknown>>(listed.body.functions.map((fn: { name: string }) => [fn.name, fn]));
    expect(byName.get('users')).toMatchObject({ routes: [{ path: '/users/:id', methods: ['GET', 'DELETE'] }, { path: '/files/*', methods: ['GET'] }] });
    expect(byName.get('github')).toMatchObject({ webhooks: [{ path: '/webhooks/github', methods: ['POST'], mode: 'sync', verification: 'hmac-sha256' }, expect.anything()] });
    expect(JSON.stringify(listed.body)).not.toContain(GITHUB_SECRET);
    expect(JSON.stringify(listed.body)).not.toContain(STRIPE_SECRET);
    expect(server.logs().filter((line) => line.function === 'github' && String(line.msg).includes('database'))).toHaveLength(1);
    // The startup table's line for each function carries its routes.
    expect(server.logs().find((line) => line.msg === 'function' && line.function === 'users')).toMatchObject({ routes: 'GET,DELETE /users/:id, GET /files/*' });
    const table = await runCli(['list', '-C', project], { env: cleanEnv({ GITHUB_WEBHOOK_SECRET: GITHUB_SECRET }) });
    expect(table.stdout).toMatch(/users\s+node\s+ready\s+index\.js\s+-\s+\/users\/:id \/files\/\*/);
  });

  it("hmac-sha256: GitHub's sha256= header over the raw body; the function gets the body byte for byte", async () => {
    const body = '{"action":"opened",  "number": 1}\n';
    const answer = await post('/webhooks/github?x=1', body, { 'X-Hub-Signature-256': `sha256=${hex('sha256', GITHUB_SECRET, body)}`, 'Content-Type': 'application/json' });
    expect(answer.status).toBe(200);
    expect(answer.body.output.input).toMatchObject({ method: 'POST', path: '/webhooks/github', body, query: { x: '1' }, verified: true, webhook_id: null });
    expect(answer.body.output.input.headers['x-hub-signature-256']).toMatch(/^sha256=/);
    expect(answer.body.output.trigger).toMatchObject({ type: 'webhook', path: '/webhooks/github' });
  });

  it.each([
    ['a bad signature', (body: string) => ({ 'X-Hub-Signature-256': `sha256=${hex('sha256', 'other-secret', body)}` }), (body: string) => body],
    ['a missing header', () => ({}), (body: string) => body],
    ['a wrong scheme', (body: string) => ({ 'X-Hub-Signature-256': `sha1=${hex('sha1', GITHUB_SECRET, body)}` }), (body: string) => body],
    ['a body altered by one byte', (body: string) => ({ 'X-Hub-Signature-256': `sha256=${hex('sha256', GITHUB_SECRET, body)}` }), (body: string) => body.replace('1', '2')],
  ])('hmac-sha256 refuses %s with 401', async (_name, sign, alter) => {
    const body = '{"number": 1}';
    const before = runsOf(project).length;
    const answer = await post('/webhooks/github', alter(body), sign(body));
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });
    expect(runsOf(project)).toHaveLength(before);
  });

  it('skip_invalid runs the function with verified: false', async () => {
    const answer = await post('/webhooks/lenient', '{}', { 'X-Hub-Signature-256': 'sha256=00' });
    expect(answer).toMatchObject({ status: 200, body: { output: { input: { verified: false } } } });
  });

  it("stripe: t=…,v1=… over t.payload, async: 202 then it runs; an old timestamp gets 401", async () => {
    const body = '{"type":"charge.succeeded"}';
    const t = Math.floor(Date.now() / 1000);
    const queued = await post('/webhooks/stripe', body, { 'Stripe-Signature': `t=${t},v1=${hex('sha256', STRIPE_SECRET, `${t}.${body}`)}` });
    expect(queued).toMatchObject({ status: 202, body: { status: 'queued' } });
    const done = await waitForInvocation(server, queued.body.request_id, ['succeeded']);
    expect(done.envelope.output.input).toMatchObject({ body, verified: true });
    const old = t - 600;
    const stale = await post('/webhooks/stripe', body, { 'Stripe-Signature': `t=${old},v1=${hex('sha256', STRIPE_SECRET, `${old}.${body}`)}` });
    expect(stale).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED', message: expect.stringContaining('old') } } });
  });

  it('standard-webhooks: id.timestamp.payload with the whsec_ key; the same webhook-id again is acknowledged without a second run', async () => {
    const body = '{"event":"ping"}';
    const id = `msg_${randomBytes(6).toString('hex')}`;
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = createHmac('sha256', STANDARD_KEY).update(`${id}.${timestamp}.${body}`).digest('base64');
    const headers = { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
    const first = await post('/webhooks/standard', body, headers);
    expect(first).toMatchObject({ status: 200, body: { success: true, output: { input: { webhook_id: id, verified: true, body } } } });
    const runs = runsOf(project).length;
    const again = await post('/webhooks/standard', body, headers);
    expect(again).toMatchObject({ status: 200, body: { success: true, duplicate: true, webhook_id: id } });
    expect(runsOf(project)).toHaveLength(runs);
    const forged = await post('/webhooks/standard', body, { ...headers, 'webhook-id': `${id}x` });
    expect(forged.status).toBe(401);
  });
});

describe("the earlier server's manifest in examples/earlier-server", () => {
  let stateDir: string;
  afterEach(async () => {
    await stopAllServers();
    removeProject(stateDir);
  });

  it('is served unmodified: its route, its schedule, and its webhook', async () => {
    const example = path.join(__dirname, '..', '..', 'examples', 'earlier-server');
    // The state goes to a temporary folder, not into the example.
    stateDir = makeProject();
    const server = await startServer(['serve', '-C', example], { env: cleanEnv({ GITHUB_WEBHOOK_SECRET: GITHUB_SECRET, ALYX_STATE_URL: path.join(stateDir, 'state.db') }) });
    const [orders] = (await request(`${server.url}/api/functions`)).body.functions;
    expect(orders).toMatchObject({
      name: 'orders',
      status: 'ready',
      routes: [{ path: '/orders/:id', methods: ['GET', 'DELETE'] }],
      webhooks: [{ path: '/webhooks/github', mode: 'async', verification: 'hmac-sha256' }],
      schedules: [{ name: 'nightly-report', type: 'cron', timezone: 'Europe/Berlin' }],
    });
    expect(server.logs().filter((line) => line.function === 'orders' && String(line.msg).includes('database'))).toHaveLength(1);
    expect((await request(`${server.url}/orders/7`)).body.output).toEqual({ order: '7', method: 'GET' });
    const body = '{"ref":"refs/heads/main"}';
    const queued = await request(`${server.url}/webhooks/github`, { method: 'POST', body, headers: { 'X-Hub-Signature-256': `sha256=${hex('sha256', GITHUB_SECRET, body)}` } });
    expect(queued.status).toBe(202);
    const done = await waitForInvocation(server, queued.body.request_id, ['succeeded']);
    expect(done.envelope.output).toEqual({ received: { ref: 'refs/heads/main' }, verified: true });
  });
});

describe('routes that cannot be served', () => {
  let project: string;
  afterEach(() => removeProject(project));

  it('a reserved prefix or a route two functions claim makes the manifests invalid, naming the other function', async () => {
    project = makeProject({
      'functions/a/index.js': ECHO,
      'functions/a/manifest.yaml': 'routes:\n  - { path: /things/:id, methods: [GET] }\n',
      'functions/b/index.js': ECHO,
      'functions/b/manifest.yaml': 'routes:\n  - { path: /things/:thing }\n',
      'functions/c/index.js': ECHO,
      'functions/c/manifest.yaml': 'routes:\n  - { path: /api/mine }\n',
      'functions/d/index.js': ECHO,
      'functions/d/manifest.yaml': 'routes:\n  - { path: /d/:id/*/more }\n',
    });
    const listed = JSON.parse((await runCli(['list', '--json', '-C', project])).stdout);
    const byName = new Map<string, { status: string; message: string }>(listed.functions.map((fn: { name: string }) => [fn.name, fn]));
    expect(byName.get('a')).toMatchObject({ status: 'invalid', message: expect.stringContaining('GET /things/: is also claimed by function "b"') });
    expect(byName.get('b')).toMatchObject({ status: 'invalid', message: expect.stringContaining('is also claimed by function "a"') });
    expect(byName.get('c')).toMatchObject({ status: 'invalid', message: expect.stringContaining('which alyx keeps for itself') });
    expect(byName.get('d')).toMatchObject({ status: 'invalid', message: expect.stringContaining('may only be the last segment') });
  });

  it('routes are read again on SIGHUP', async () => {
    project = makeProject({ 'functions/a/index.js': ECHO });
    const server = await startServer(['serve', '-C', project], { env: cleanEnv() });
    try {
      expect((await rawRequest(server, 'GET', '/late')).status).toBe(404);
      fs.writeFileSync(path.join(project, 'functions/a/manifest.yaml'), 'routes:\n  - { path: /late }\n');
      server.child.kill('SIGHUP');
      await server.waitForLog((line) => line.change === 'changed' && line.function === 'a');
      expect((await rawRequest(server, 'GET', '/late')).status).toBe(200);
    } finally {
      await stopAllServers();
    }
  });
});
