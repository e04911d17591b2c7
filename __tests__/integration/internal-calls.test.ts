import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { waitForInvocation } from '../helpers/background';
import { cleanEnv } from '../helpers/cli';
import { makeProject, removeProject, type FixtureTree } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

/** SPEC §13 identity on calls and internal calls, against a real alyx and real node functions that call it back. */
const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';

/** An HS256 token as the earlier Alyx server signs them. */
function sign(claims: Record<string, unknown>, secret = SECRET): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

const fn = (body: string): string => `let text = '';
process.stdin.on('data', (chunk) => (text += chunk)).on('end', async () => {
  const r = JSON.parse(text);
  const reply = (output) => process.stdout.write(JSON.stringify({ request_id: r.request_id, success: true, output }));
  const call = async (name, input) => {
    const answer = await fetch(r.context.alyx_url + '/api/functions/' + name, {
      method: 'POST', body: JSON.stringify(input), headers: { Authorization: 'Bearer ' + r.context.internal_token },
    });
    return { status: answer.status, body: await answer.json() };
  };
  ${body}
});
`;

const FUNCTIONS: FixtureTree = {
  'alyx.yaml': `auth: { jwt: { secret: "${SECRET}" } }\nfunctions: { concurrency: 2, pool: 0 }\n`,
  'functions/who/index.js': fn('reply({ auth: r.context.auth, trigger: r.context.trigger });'),
  'functions/guarded/index.js': fn('reply({ auth: r.context.auth });'),
  'functions/guarded/manifest.yaml': 'auth: required\n',
  'functions/caller/index.js': fn("const callee = await call(r.input.target ?? 'who', {}); reply({ callee, token: r.context.internal_token, request_id: r.request_id });"),
  // The JavaScript helper's ctx.invoke, as authors write it (SPEC §10), calling through the internal token.
  'functions/helped/index.cjs': `const { handler } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'shims', 'handler', 'index.cjs'))});
module.exports = handler(async (input, ctx) => ({ callee: await ctx.invoke('guarded', { from: 'helper' }) }));
`,
  'functions/queuer/index.js': fn(`const answer = await fetch(r.context.alyx_url + '/api/async/functions/who', {
    method: 'POST', body: '{}', headers: { Authorization: 'Bearer ' + r.context.internal_token },
  });
  reply({ status: answer.status, queued: await answer.json(), request_id: r.request_id });`),
  'functions/recurse/index.js': fn("const n = r.input.n ?? 0; const next = await call('recurse', { n: n + 1 }); reply(next.status === 200 ? next.body.output : { stopped_at: n, status: next.status, code: next.body.error.code });"),
};

describe('identity and internal calls', () => {
  let project: string;
  let server: RunningServer;
  const call = (name: string, token?: string, body = '{}') =>
    request(`${server.url}/api/functions/${name}`, { method: 'POST', body, headers: token ? { Authorization: `Bearer ${token}` } : {} });

  beforeAll(async () => {
    project = makeProject(FUNCTIONS);
    fs.appendFileSync(path.join(project, 'alyx.yaml'), `state: { url: ${path.join(project, 'state.db')} }\n`);
    server = await startServer(['serve', '-C', project], { env: cleanEnv() });
  });
  afterAll(async () => {
    await stopAllServers();
    removeProject(project);
  });

  it('a valid token gives context.auth in the earlier server\'s names; none gives null; a bad one gets 401', async () => {
    const token = sign({ sub: 'user-1', email: 'ada@example.com', role: 'admin', verified: true, exp: Math.floor(Date.now() / 1000) + 600 });
    expect((await call('who', token)).body.output.auth).toMatchObject({ id: 'user-1', email: 'ada@example.com', role: 'admin', verified: true, claims: { sub: 'user-1' } });
    expect((await call('who')).body.output.auth).toBeNull();
    expect(await call('who', sign({ sub: 'x' }, 'another-secret-of-at-least-32-bytes-long'))).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });
    expect(await call('who', sign({ sub: 'x', exp: Math.floor(Date.now() / 1000) - 3600 }))).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });
  });

  it('auth: required answers 401 without a valid token, and runs with one', async () => {
    expect(await call('guarded')).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED', message: expect.stringContaining('Bearer') } } });
    expect(await call('guarded', sign({ sub: 'user-2' }))).toMatchObject({ status: 200, body: { output: { auth: { id: 'user-2' } } } });
    const queued = await request(`${server.url}/api/async/functions/guarded`, { method: 'POST', body: '{}' });
    expect(queued).toMatchObject({ status: 401 });
  });

  it("an internal call carries the caller's identity and says who called; the token is refused once the caller has ended", async () => {
    const token = sign({ sub: 'user-3' });
    const answer = await call('caller', token, JSON.stringify({ target: 'guarded' }));
    expect(answer.status).toBe(200);
    const { callee, token: internalToken, request_id: callerId } = answer.body.output;
    expect(callee).toMatchObject({ status: 200, body: { output: { auth: { id: 'user-3' } } } });
    const direct = await call('caller', undefined, JSON.stringify({ target: 'who' }));
    expect(direct.body.output.callee.body.output).toMatchObject({ auth: null, trigger: { type: 'internal', caller: 'caller', caller_request_id: direct.body.output.request_id } });
    expect(callerId).toBe(answer.body.request_id);
    expect(await call('who', internalToken)).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });
  });

  it("the helper's ctx.invoke makes an internal call, which satisfies auth: required", async () => {
    const answer = await call('helped', sign({ sub: 'user-4' }));
    expect(answer).toMatchObject({ status: 200, body: { output: { callee: { auth: { id: 'user-4' } } } } });
  });

  it("an async internal call is queued with the caller's identity, and runs as an internal call", async () => {
    const answer = await call('queuer', sign({ sub: 'user-5' }));
    expect(answer.body.output).toMatchObject({ status: 202, queued: { status: 'queued' } });
    const done = await waitForInvocation(server, answer.body.output.queued.request_id, ['succeeded']);
    expect(done.envelope.output).toMatchObject({ auth: { id: 'user-5' }, trigger: { type: 'internal', caller: 'queuer', caller_request_id: answer.body.output.request_id } });
  });

  it('a chain deeper than 8 answers 508 CALL_DEPTH_EXCEEDED', async () => {
    const answer = await call('recurse');
    expect(answer.status).toBe(200);
    expect(answer.body.output).toEqual({ stopped_at: 8, status: 508, code: 'CALL_DEPTH_EXCEEDED' });
  }, 60_000);

  it('callers filling the whole concurrency limit, each calling another function, all complete', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => call('caller', undefined, JSON.stringify({ target: 'who' }))));
    expect(answers.map((answer) => [answer.status, answer.body.output?.callee?.status])).toEqual(Array.from({ length: 6 }, () => [200, 200]));
  }, 60_000);
});

describe('auth: required without auth.jwt', () => {
  it('makes the function invalid, saying what to configure', async () => {
    const project = makeProject({ 'functions/guarded/index.js': fn('reply({});'), 'functions/guarded/manifest.yaml': 'auth: required\n' });
    try {
      const server = await startServer(['serve', '-C', project], { env: cleanEnv() });
      const listed = await request(`${server.url}/api/functions`);
      expect(listed.body.functions[0]).toMatchObject({ status: 'invalid', message: expect.stringContaining('auth.jwt.secret or auth.jwt.jwks_url') });
    } finally {
      await stopAllServers();
      fs.rmSync(path.join(project), { recursive: true, force: true });
    }
  });
});
