import http from 'node:http';
import path from 'node:path';
import { cleanEnv } from '../helpers/cli';
import { serverFunctions } from '../helpers/fixtures';
import { isAlive, readPidFile, waitFor } from '../helpers/processes';
import { makeProject, removeProject } from '../helpers/project';
import { rawRequest, request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

const CONFIG = 'server:\n  max_body_size: 1kb\n  read_timeout: 1s\nfunctions:\n  max_output: 64kb\n';

let root: string;
afterEach(async () => {
  await stopAllServers();
  removeProject(root);
});

const serve = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningServer> =>
  startServer([...args, '-C', root], { env: cleanEnv(env) });

const post = (server: RunningServer, name: string, body: string, headers: Record<string, string> = {}) =>
  request(`${server.url}/api/functions/${name}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });

describe('the SPEC §6 status table, over real HTTP (production)', () => {
  let server: RunningServer;
  beforeEach(async () => {
    root = makeProject({ 'alyx.yaml': CONFIG, ...serverFunctions });
    server = await serve(['serve']);
  });

  it('200: the function succeeded; the envelope and X-Request-Id', async () => {
    const response = await post(server, 'echo', '{"name": "World"}');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      request_id: response.headers.get('x-request-id'),
      success: true,
      output: { input: { name: 'World' }, mode: 'production', admin_token: null },
      logs: [],
      duration_ms: expect.any(Number),
    });
  });

  it('X-Request-Id is reused when valid, replaced when not', async () => {
    const reused = await post(server, 'echo', '{}', { 'X-Request-Id': 'trace-1.a_b' });
    expect(reused.headers.get('x-request-id')).toBe('trace-1.a_b');
    expect(reused.body.request_id).toBe('trace-1.a_b');
    for (const bad of ['x'.repeat(129), 'has space', 'semi;colon']) {
      const replaced = await post(server, 'echo', '{}', { 'X-Request-Id': bad });
      expect(replaced.body.request_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(replaced.headers.get('x-request-id')).toBe(replaced.body.request_id);
    }
  });

  it('GET invokes with the query string (a repeated key gives an array); PUT, PATCH and DELETE with the body', async () => {
    const get = await request(`${server.url}/api/functions/echo?name=World&tag=a&tag=b`);
    expect(get.body.output.input).toEqual({ name: 'World', tag: ['a', 'b'] });
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const response = await request(`${server.url}/api/functions/echo`, { method, body: '{"via": "' + method + '"}' });
      expect(response.status).toBe(200);
      expect(response.body.output.input).toEqual({ via: method });
    }
    const empty = await request(`${server.url}/api/functions/echo`, { method: 'POST' });
    expect(empty.body.output.input).toEqual({});
  });

  it('400 INVALID_JSON and INVALID_INPUT', async () => {
    const invalidJson = await post(server, 'echo', '{"name": ');
    expect(invalidJson.status).toBe(400);
    expect(invalidJson.body).toMatchObject({ success: false, error: { code: 'INVALID_JSON' } });
    for (const body of ['[1, 2]', '"text"', '42', 'null']) {
      const invalidInput = await post(server, 'echo', body);
      expect(invalidInput.status).toBe(400);
      expect(invalidInput.body.error.code).toBe('INVALID_INPUT');
    }
  });

  it('404 FUNCTION_NOT_FOUND for unknown names and names that try to escape; NOT_FOUND for other paths', async () => {
    // Sent byte for byte (fetch would normalise the dots away).
    for (const name of ['nope', '..', '%2e%2e', 'echo%2F..%2Fcrash', '..%2F..%2Fetc%2Fpasswd', '%00', '%E0%A4%A', 'x/../echo']) {
      const response = await rawRequest(server, 'POST', `/api/functions/${name}`, '{}');
      const expected = name.includes('/') ? 'NOT_FOUND' : 'FUNCTION_NOT_FOUND';
      expect([name, response.status, JSON.parse(response.body).error.code]).toEqual([name, 404, expected]);
    }
    for (const pathname of ['/', '/api', '/api/nothing', '/api/functions/echo/extra']) {
      const response = await request(`${server.url}${pathname}`);
      expect([response.status, response.body.error.code]).toEqual([404, 'NOT_FOUND']);
    }
  });

  it('405 METHOD_NOT_ALLOWED with Allow for a known path', async () => {
    const response = await request(`${server.url}/api/health`, { method: 'POST' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
  });

  it('413 PAYLOAD_TOO_LARGE, whether declared or streamed without a length', async () => {
    const declared = await post(server, 'echo', JSON.stringify({ blob: 'y'.repeat(2048) }));
    expect([declared.status, declared.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);

    const streamed = await rawRequest(server, 'POST', '/api/functions/echo', ['{"blob": "', 'z'.repeat(4096), '"}']);
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.body).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('500 FUNCTION_ERROR by default; error.status chooses the status', async () => {
    const failed = await post(server, 'fail-default', '{}');
    expect(failed.status).toBe(500);
    expect(failed.body.error).toEqual({ code: 'FUNCTION_ERROR', message: 'it did not work' });
    const unprocessable = await post(server, 'fail-422', '{}');
    expect(unprocessable.status).toBe(422);
    expect(unprocessable.body.error).toEqual({ code: 'UNPROCESSABLE', message: 'bad name' });
  });

  it('502 EXECUTION_ERROR (stderr never sent in production), OUTPUT_TOO_LARGE, MEMORY_LIMIT_EXCEEDED', async () => {
    const crashed = await post(server, 'crash', '{}');
    expect([crashed.status, crashed.body.error.code]).toEqual([502, 'EXECUTION_ERROR']);
    expect(JSON.stringify(crashed.body)).not.toContain('secret stack detail');
    const big = await post(server, 'big', '{}');
    expect([big.status, big.body.error.code]).toEqual([502, 'OUTPUT_TOO_LARGE']);
    const hog = await post(server, 'hog', '{}');
    expect([hog.status, hog.body.error.code]).toEqual([502, 'MEMORY_LIMIT_EXCEEDED']);
    expect(hog.body.error.details.used_bytes).toBeGreaterThan(64 * 1024 * 1024);
  });

  it('503 FUNCTION_NOT_READY with the status and what to do', async () => {
    const response = await post(server, 'built', '{}');
    expect(response.status).toBe(503);
    expect(response.body.error).toMatchObject({
      code: 'FUNCTION_NOT_READY',
      details: { status: 'not_built' },
      message: expect.stringContaining('run "alyx build built"'),
    });
  });

  it('504 TIMEOUT', async () => {
    const response = await post(server, 'times-out', '{}');
    expect([response.status, response.body.error.code]).toEqual([504, 'TIMEOUT']);
    expect(response.body.duration_ms).toBeGreaterThanOrEqual(500);
  });

  it('logs one access line per invocation: function, request id, status, duration', async () => {
    const response = await post(server, 'fail-422', '{}', { 'X-Request-Id': 'access-log-1' });
    const line = await server.waitForLog((l) => l.request_id === 'access-log-1' && l.status !== undefined);
    expect(line).toMatchObject({ function: 'fail-422', request_id: 'access-log-1', status: 422, duration_ms: response.body.duration_ms, code: 'UNPROCESSABLE' });
    expect(server.logs().filter((l) => l.request_id === 'access-log-1' && l.status !== undefined)).toHaveLength(1);
  });

  it('GET /api/functions lists every function with the SPEC fields', async () => {
    const response = await request(`${server.url}/api/functions`);
    expect(response.status).toBe(200);
    expect(response.body.count).toBe(Object.keys(serverFunctions).filter((f) => f.endsWith('index.js')).length);
    expect(response.body.functions.find((fn: { name: string }) => fn.name === 'echo')).toMatchObject({
      name: 'echo', runtime: 'node', status: 'ready', entry: 'index.js', exec: 'interpreter', has_build: false, timeout_ms: 30000,
    });
  });

  it('GET /api/health and /api/ready (503 with the reasons while a function is not ready)', async () => {
    const health = await request(`${server.url}/api/health`);
    expect(health.body).toEqual({ status: 'ok', mode: 'production', version: expect.any(String), uptime_s: expect.any(Number), functions: 9, ready: 8 });
    const ready = await request(`${server.url}/api/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body.reasons).toEqual([{ function: 'built', status: 'not_built', message: expect.stringContaining('alyx build built') }]);
  });

  it('CORS is off by default in production; OPTIONS is still answered with 204', async () => {
    const response = await post(server, 'echo', '{}', { Origin: 'http://example.test' });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await request(`${server.url}/api/functions/echo`, { method: 'OPTIONS', headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'POST' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('a client that disconnects mid-invocation ends the function and its process', async () => {
    const url = new URL(`${server.url}/api/functions/slow`);
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST' });
    req.on('error', () => undefined); // the test destroys it
    req.end('{"ms": 20000, "tag": "gone"}');
    const pid = await readPidFile(path.join(root, 'functions', 'slow', 'started-gone.pid'));
    expect(isAlive(pid)).toBe(true);
    req.destroy();
    expect(await waitFor(() => !isAlive(pid), 5000)).toBe(true);
  });
});
