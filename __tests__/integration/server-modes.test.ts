import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import net from 'node:net';
import { cleanEnv, runCli } from '../helpers/cli';
import { builtOutput, nodeFunction, serverFunctions } from '../helpers/fixtures';
import { waitFor } from '../helpers/processes';
import { makeProject, removeProject, writeTree } from '../helpers/project';
import { openSocket, request, startServer, stopAllServers, type RunningServer } from '../helpers/server';
import { hasCommand, warnSkip } from '../helpers/tools';

let root: string;
afterEach(async () => {
  await stopAllServers();
  removeProject(root);
});

const serve = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningServer> =>
  startServer([...args, '-C', root], { env: cleanEnv(env) });

const invoke = (server: RunningServer, name: string, body = '{}', headers: Record<string, string> = {}) =>
  request(`${server.url}/api/functions/${name}`, { method: 'POST', body, headers });

describe('modes', () => {
  beforeEach(() => {
    root = makeProject({ ...serverFunctions, ...builtOutput });
  });

  it('alyx dev runs sources through interpreters; EXECUTION_ERROR carries stderr', async () => {
    const server = await serve(['dev']);
    expect((await invoke(server, 'built')).body.output).toEqual({ from: 'source' });
    expect((await invoke(server, 'echo')).body.output.mode).toBe('development');
    const crashed = await invoke(server, 'crash');
    expect(crashed.body.error.details.stderr).toContain('secret stack detail');
    expect((await request(`${server.url}/api/health`)).body.mode).toBe('development');
  });

  it('alyx serve runs the build output directly in production, and logs what each function runs', async () => {
    const server = await serve(['serve']);
    expect((await invoke(server, 'built')).body.output).toEqual({ from: 'output' });
    const startup = await server.waitForLog((line) => line.function === 'built' && line.runs !== undefined);
    expect(startup).toMatchObject({ status: 'ready', runs: 'functions/built/dist/run.sh (executable)' });
    const listed = (await request(`${server.url}/api/functions`)).body.functions.find((fn: { name: string }) => fn.name === 'built');
    expect(listed).toMatchObject({ exec: 'direct', entry: 'dist/run.sh', has_build: true });
  });

  it.each(['true', '1', 'yes', 'TRUE'])('alyx serve with ALYX_DEV_ENABLED=%s is development', async (value) => {
    const server = await serve(['serve'], { ALYX_DEV_ENABLED: value });
    expect((await request(`${server.url}/api/health`)).body.mode).toBe('development');
    expect((await invoke(server, 'built')).body.output).toEqual({ from: 'source' });
  });

  it('--strict exits 1 when a function is not ready, naming it; starts when all are', async () => {
    fs.rmSync(path.join(root, 'functions', 'built', 'dist'), { recursive: true });
    const refused = await runCli(['serve', '--strict', '-C', root, '-p', '0', '--host', '127.0.0.1', '--log-format', 'json'], { env: cleanEnv() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/--strict: 1 function\(s\) not ready: built \(not_built: .*alyx build built/);

    writeTree(root, builtOutput);
    const server = await serve(['serve', '--strict']);
    expect((await request(`${server.url}/api/ready`)).status).toBe(200);
  });
});

describe('CORS', () => {
  beforeEach(() => {
    root = makeProject(serverFunctions);
  });

  it('in development every origin is allowed, and preflights get the configured methods and headers', async () => {
    const server = await serve(['dev']);
    const response = await invoke(server, 'echo', '{}', { Origin: 'http://localhost:3000' });
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-expose-headers')).toBe('X-Request-Id');
    const preflight = await request(`${server.url}/api/functions/echo`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://localhost:3000', 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, POST, PUT, PATCH, DELETE, OPTIONS');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('Content-Type, Authorization, X-Request-Id');
    expect(preflight.headers.get('access-control-max-age')).toBe('300');
  });

  it('server.cors in production: listed origins are echoed, others get no header', async () => {
    fs.writeFileSync(
      path.join(root, 'alyx.yaml'),
      'server:\n  cors:\n    enabled: true\n    allowed_origins: [https://app.example]\n    allow_credentials: true\n',
    );
    const server = await serve(['serve']);
    const allowed = await invoke(server, 'echo', '{}', { Origin: 'https://app.example' });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    expect(allowed.headers.get('vary')).toBe('Origin');
    const other = await invoke(server, 'echo', '{}', { Origin: 'https://evil.example' });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('POST /api/admin/reload', () => {
  beforeEach(() => {
    root = makeProject(serverFunctions);
  });
  const reload = (server: RunningServer, headers: Record<string, string> = {}) =>
    request(`${server.url}/api/admin/reload`, { method: 'POST', headers });
  const addFunction = (): void => writeTree(root, { 'functions/added/index.js': nodeFunction('console.log(JSON.stringify({ success: true, output: { added: true } }));') });

  it('in development needs no token and re-discovers', async () => {
    const server = await serve(['dev']);
    addFunction();
    expect(await reload(server)).toMatchObject({ status: 200, body: { success: true, count: 10 } });
    expect((await invoke(server, 'added')).body.output).toEqual({ added: true });
    await server.waitForLog((line) => line.msg === '+ added added');
  });

  it('in production is 404 without ALYX_ADMIN_TOKEN', async () => {
    const server = await serve(['serve']);
    const response = await reload(server, { Authorization: 'Bearer anything' });
    expect([response.status, response.body.error.code]).toEqual([404, 'NOT_FOUND']);
  });

  it('in production needs the bearer token (401 UNAUTHORIZED otherwise); the token never reaches functions', async () => {
    const server = await serve(['serve'], { ALYX_ADMIN_TOKEN: 's3cret-token' });
    for (const authorization of [undefined, 'Bearer wrong', 'Bearer s3cret-token-longer', 'Basic s3cret-token', 'Bearer ']) {
      const response = await reload(server, authorization ? { Authorization: authorization } : {});
      expect([authorization, response.status, response.body.error.code]).toEqual([authorization, 401, 'UNAUTHORIZED']);
    }
    addFunction();
    expect(await reload(server, { Authorization: 'Bearer s3cret-token' })).toMatchObject({ status: 200, body: { success: true, count: 10 } });
    expect((await invoke(server, 'echo')).body.output.admin_token).toBeNull();
  });
});

describe('server settings', () => {
  beforeEach(() => {
    root = makeProject(serverFunctions);
  });

  it('server.read_timeout closes a connection whose request never completes', async () => {
    fs.writeFileSync(path.join(root, 'alyx.yaml'), 'server:\n  read_timeout: 1s\n');
    const server = await serve(['serve']);
    const { socket, received } = await openSocket(server);
    socket.write('POST /api/functions/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"partial":');
    const closed = await waitFor(() => socket.destroyed || socket.readableEnded, 6000);
    socket.destroy();
    expect(closed).toBe(true);
    expect(received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('server.idle_timeout closes a kept-alive connection once it has been idle that long', async () => {
    fs.writeFileSync(path.join(root, 'alyx.yaml'), 'server:\n  idle_timeout: 1s\n');
    const server = await serve(['serve']);
    const { socket, received } = await openSocket(server);
    socket.write('GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await waitFor(() => received().endsWith('}'), 5000)).toBe(true);
    const answeredAt = Date.now();
    expect(received()).toMatch(/^HTTP\/1\.1 200[\s\S]*Connection: keep-alive/i);
    const closed = await waitFor(() => socket.destroyed || socket.readableEnded, 10_000);
    const idleMs = Date.now() - answeredAt;
    socket.destroy();
    expect(closed).toBe(true);
    expect(idleMs).toBeGreaterThanOrEqual(900);
  });

  it('server.write_timeout cuts off a client that does not read its answer', async () => {
    const size = 32 * 1024 * 1024; // far more than the kernel buffers a connection can hold
    writeTree(root, {
      'alyx.yaml': 'server:\n  write_timeout: 1s\nfunctions:\n  max_output: 64mb\n',
      'functions/huge/index.js': nodeFunction(`process.stdout.write(JSON.stringify({ success: true, output: 'x'.repeat(${size}) }));`),
    });
    const server = await serve(['serve']);
    const url = new URL(server.url);
    const socket = net.connect(Number(url.port), url.hostname); // never read until the server gave up
    socket.on('error', () => undefined);
    try {
      socket.write('POST /api/functions/huge HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
      const cut = await server.waitForLog((line) => line.write_timeout_ms === 1000, 20_000);
      expect(cut).toMatchObject({ level: 40, msg: expect.stringContaining('server.write_timeout') });
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      expect(await waitFor(() => socket.readableEnded || socket.destroyed, 10_000)).toBe(true);
      expect(bytes).toBeGreaterThan(0);
      expect(bytes).toBeLessThan(size);
    } finally {
      socket.destroy();
    }
  });

  const openssl = hasCommand('openssl');
  if (!openssl) warnSkip('HTTPS test', 'openssl');
  (openssl ? it : it.skip)('server.tls serves HTTPS', async () => {
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', path.join(root, 'key.pem'), '-out', path.join(root, 'cert.pem')], { encoding: 'utf8' });
    expect(made.status).toBe(0);
    fs.writeFileSync(path.join(root, 'alyx.yaml'), 'server:\n  tls: { enabled: true, cert_file: cert.pem, key_file: key.pem }\n');
    const server = await serve(['serve']);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(`${server.url}/api/health`, { rejectUnauthorized: false }, (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk));
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    expect(JSON.parse(body)).toMatchObject({ status: 'ok' });
  });

  it('an unreadable TLS file stops the start with a clear message, exit 1', async () => {
    fs.writeFileSync(path.join(root, 'alyx.yaml'), 'server:\n  tls: { enabled: true, cert_file: missing.pem, key_file: missing.pem }\n');
    const result = await runCli(['serve', '-C', root, '-p', '0'], { env: cleanEnv() });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/server\.tls\.cert_file .*missing\.pem cannot be read \(ENOENT\)/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
