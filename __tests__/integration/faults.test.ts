import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { cleanEnv, runCli } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { processesWithEnv, readPidFile, waitFor } from '../helpers/processes';
import { executable, makeProject, removeProject, type FixtureTree } from '../helpers/project';
import { openSocket, request, startServer, stopAllServers, type RunningServer } from '../helpers/server';
import { hasCommand, warnSkip } from '../helpers/tools';

/**
 * Faults a function or a client can throw at alyx, against the real server: each case checks
 * the exact envelope, and that no process of the function survives. Every function process
 * carries FAULT_MARKER (from functions.env), so survivors are found by their environment,
 * whichever group or parent they ended up in.
 */
const MARKER = `fault-${process.pid}-${Date.now()}`;
const ADMIN_TOKEN = `admin-${MARKER}`;
const MB = 1024 * 1024;

const respond = (response: string): string => `console.log(JSON.stringify(${response}));`;
/** A prebuilt executable shell function, with its manifest. */
const script = (name: string, body: string, manifest = ''): FixtureTree => ({
  [`functions/${name}/manifest.yaml`]: `runtime: binary\nbuild:\n  output: run.sh\n${manifest}`,
  [`functions/${name}/run.sh`]: executable(`#!/bin/sh\n${body}\n`),
});

const HOG = 'const hold = Buffer.alloc(300 * 1024 * 1024, 1); setTimeout(() => console.log(hold.length), 30000);';

const functions: FixtureTree = {
  'alyx.yaml': [
    'server:',
    '  max_body_size: 1mb',
    '  read_timeout: 2s',
    'functions:',
    '  timeout: 1s',
    '  max_output: 256kb',
    '  env:',
    `    FAULT_MARKER: ${MARKER}`,
    '',
  ].join('\n'),
  'functions/healthy/index.js': nodeFunction(respond("{ success: true, output: { ok: true } }")),
  'functions/crash/index.js': nodeFunction("console.error('a secret stack'); process.exit(3);"),
  ...script('crash-signal', 'cat > /dev/null\nkill -KILL $$'),
  'functions/hang-busy/index.js': nodeFunction('for (;;) {}'),
  // Ignores SIGTERM: only the SIGKILL after the grace ends it.
  ...script('hang-stubborn', "trap '' TERM\ncat > /dev/null\nwhile :; do sleep 1; done"),
  'functions/garbage/index.js': nodeFunction("process.stdout.write(Buffer.from([0, 255, 254, 10])); console.log('not json'); console.log('{\"half\": ');"),
  'functions/huge/index.js': nodeFunction(respond("{ success: true, output: 'x'.repeat(8 * 1024 * 1024) }")),
  ...script('endless', 'exec yes'),
  ...script('stdout-closed', 'exec 1>&-\ncat > /dev/null\nsleep 0.2\nexit 0'),
  ...script('stdout-closed-hang', 'exec 1>&-\ncat > /dev/null\nexec sleep 300'),
  'functions/no-stdin/index.js': respond("{ success: true, output: { read: false } }"),
  'functions/forks/index.js': nodeFunction(`
    const child = require('node:child_process').spawn('sleep', ['300'], { stdio: 'ignore' });
    child.unref();
    ${respond('{ success: true, output: { child: child.pid } }')}`),
  // node's detached is setsid: the child leaves the function's process group and session.
  'functions/forks-detached/index.js': nodeFunction(`
    const { spawn } = require('node:child_process');
    const child = spawn('sh', ['-c', 'sleep 300 & sleep 300'], { stdio: 'ignore', detached: true });
    child.unref();
    ${respond('{ success: true, output: { child: child.pid } }')}`),
  // Leaves with its own process group and never exits: the timeout must reach it too.
  'functions/hang-detached/index.js': nodeFunction(`
    require('node:child_process').spawn('sleep', ['300'], { stdio: 'ignore', detached: true });
    setInterval(() => {}, 1000);`),
  'functions/hog-buffer/index.js': nodeFunction(HOG),
  'functions/hog-buffer/manifest.yaml': 'memory: 64mb\ntimeout: 10s\n',
  'functions/hog-heap/index.js': nodeFunction('const hold = []; for (;;) hold.push({ n: hold.length, s: "y".repeat(64) + hold.length });'),
  'functions/hog-heap/manifest.yaml': 'memory: 64mb\ntimeout: 10s\n',
  // Its own heap limit, far under the cap, stops it: alyx still names the memory cap.
  'functions/hog-own-limit/index.js': nodeFunction('const hold = []; for (;;) hold.push({ n: hold.length, s: "y".repeat(64) + hold.length });'),
  'functions/hog-own-limit/manifest.yaml': 'memory: 1gb\ntimeout: 10s\nenv:\n  NODE_OPTIONS: --max-old-space-size=24\n',
  'functions/heap-limit/index.js': nodeFunction(respond("{ success: true, output: { node_options: process.env.NODE_OPTIONS, heap_mb: require('node:v8').getHeapStatistics().heap_size_limit / 1048576 } }")),
  'functions/heap-limit/manifest.yaml': 'memory: 96mb\n',
  'functions/heap-limit-deno/mod.ts': "import v8 from 'node:v8';\nconsole.log(JSON.stringify({ success: true, output: { heap_mb: v8.getHeapStatistics().heap_size_limit / 1048576 } }));\n",
  'functions/heap-limit-deno/deno.json': '{}\n',
  'functions/heap-limit-deno/manifest.yaml': 'memory: 96mb\ntimeout: 20s\n',
  // The hog left the process group: the cap still counts it.
  'functions/hog-escaped/index.js': nodeFunction(`
    require('node:child_process').spawn(process.execPath, ['-e', '${HOG}'], { stdio: 'ignore', detached: true });
    setInterval(() => {}, 1000);`),
  'functions/hog-escaped/manifest.yaml': 'memory: 64mb\ntimeout: 10s\n',
  // The hog is a grandchild: the cap holds for the whole tree.
  ...script('hog-tree', `cat > /dev/null\nnode -e '${HOG}'`, 'memory: 64mb\ntimeout: 10s\n'),
  'functions/slow/index.js': nodeFunction(`
    require('node:fs').writeFileSync('started-' + request.input.tag + '.pid', String(process.pid));
    setTimeout(() => console.log(JSON.stringify({ success: true, output: { tag: request.input.tag } })), Number(request.input.ms));`),
  'functions/slow/manifest.yaml': 'timeout: 30s\nconcurrency: 1\n',
};

/** Manifests a careless or hostile author could write: each function is invalid, the others run. */
const ALIAS_BOMB = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...'bcdefgh'.split('').map((key, index) => {
  const previous = 'abcdefg'[index];
  return `${key}: &${key} [${Array(9).fill(`*${previous}`).join(',')}]`;
})].join('\n');

const hostileManifests: Record<string, { manifest: string | { symlink: string }; reason: RegExp }> = {
  'm-bad-yaml': { manifest: 'timeout: [unclosed\n', reason: /manifest\.yaml is not valid YAML \(line \d+/ },
  'm-alias-bomb': { manifest: `${ALIAS_BOMB}\n`, reason: /not valid YAML \(Excessive alias count/ },
  'm-dev-zero': { manifest: { symlink: '/dev/zero' }, reason: /manifest\.yaml is not a regular file/ },
  'm-oversized': { manifest: `description: ${'z'.repeat(2 * MB)}\n`, reason: /manifest\.yaml is \d+ bytes, over the 1 MB/ },
  'm-list': { manifest: '- runtime: node\n', reason: /must be a mapping/ },
  'm-proto': { manifest: '__proto__: { polluted: true }\n', reason: /__proto__/ },
  'm-wrong-types': { manifest: 'timeout: forever\nconcurrency: 0\n', reason: /timeout/ },
  'm-escape-dots': { manifest: 'entry: ../healthy/index.js\n', reason: /entry "\.\.\/healthy\/index\.js" must stay inside the function folder/ },
  'm-escape-absolute': { manifest: 'entry: /etc/passwd\n', reason: /entry "\/etc\/passwd" must stay inside the function folder/ },
  'm-escape-link': { manifest: 'runtime: binary\nbuild:\n  output: bin/run\n', reason: /build\.output "bin\/run" leads outside the function folder through a symbolic link/ },
};

for (const [name, { manifest }] of Object.entries(hostileManifests)) {
  functions[`functions/${name}/index.js`] = nodeFunction(respond('{ success: true }'));
  functions[`functions/${name}/manifest.yaml`] = manifest;
}
functions['functions/m-escape-link/bin'] = { symlink: '/usr/bin' };

const mkfifo = (file: string): void => {
  expect(spawnSync('mkfifo', [file]).status).toBe(0);
};

let root: string;
let server: RunningServer;

beforeAll(async () => {
  root = makeProject(functions);
  // A FIFO would block a plain read for good.
  fs.mkdirSync(path.join(root, 'functions', 'm-fifo'));
  fs.writeFileSync(path.join(root, 'functions', 'm-fifo', 'index.js'), nodeFunction(respond('{ success: true }')));
  mkfifo(path.join(root, 'functions', 'm-fifo', 'manifest.yaml'));
  server = await startServer(['serve', '-C', root, '--log-level', 'debug'], { env: cleanEnv({ ALYX_ADMIN_TOKEN: ADMIN_TOKEN }) });
});

afterAll(async () => {
  await stopAllServers();
  removeProject(root);
  await expectNoSurvivors();
});

const invoke = (name: string, input: unknown = {}, headers: Record<string, string> = {}) =>
  request(`${server.url}/api/functions/${name}`, { method: 'POST', body: JSON.stringify(input), headers: { 'Content-Type': 'application/json', ...headers } });

/** No process that carries `marker` (and `name`, when given) is alive (polled with a deadline). */
async function expectNoneMarked(marker: string, name?: string): Promise<void> {
  const entries = [`FAULT_MARKER=${marker}`, ...(name ? [`ALYX_FUNCTION=${name}`] : [])];
  const gone = await waitFor(() => processesWithEnv(...entries).length === 0, 5000, 50);
  expect({ name, survivors: gone ? [] : processesWithEnv(...entries) }).toEqual({ name, survivors: [] });
}

/**
 * No process of function `name` (of any, without a name) from the shared server is alive. The
 * server keeps a warm process per function (functions.pool): a reload ends those first, since a
 * process waiting for the next request is no survivor of the last one.
 */
async function expectNoSurvivors(name?: string): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    const reload = await request(`${server.url}/api/admin/reload`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(reload.status).toBe(200);
  }
  await expectNoneMarked(MARKER, name);
}

/** The envelope of a success. */
const success = (output: unknown, requestId: unknown = expect.any(String)) => ({
  request_id: requestId,
  success: true,
  output,
  logs: [],
  duration_ms: expect.any(Number),
});

/** The envelope alyx answers with for a failure of its own. */
const failure = (error: Record<string, unknown>) => ({
  request_id: expect.any(String),
  success: false,
  error,
  logs: [],
  duration_ms: expect.any(Number),
});

describe('a faulty function gets the exact envelope, and none of its processes survives', () => {
  it.each([
    ['crash', 502, { code: 'EXECUTION_ERROR', message: 'The function exited with code 3 without writing a response.', details: { exit_code: 3, signal: null } }],
    ['crash-signal', 502, { code: 'EXECUTION_ERROR', message: 'The function was ended by signal SIGKILL without writing a response.', details: { exit_code: null, signal: 'SIGKILL' } }],
    ['hang-busy', 504, { code: 'TIMEOUT', message: 'The function did not answer within 1000 ms and was ended.', details: { timeout_ms: 1000 } }],
    ['hang-stubborn', 504, { code: 'TIMEOUT', message: 'The function did not answer within 1000 ms and was ended.', details: { timeout_ms: 1000 } }],
    ['hang-detached', 504, { code: 'TIMEOUT', message: 'The function did not answer within 1000 ms and was ended.', details: { timeout_ms: 1000 } }],
    ['garbage', 502, { code: 'EXECUTION_ERROR', message: 'The function exited with code 0 without writing a JSON object on stdout.', details: { exit_code: 0, signal: null } }],
    ['huge', 502, { code: 'OUTPUT_TOO_LARGE', message: 'The function wrote more than 262144 bytes to stdout (functions.max_output).' }],
    ['endless', 502, { code: 'OUTPUT_TOO_LARGE', message: 'The function wrote more than 262144 bytes to stdout (functions.max_output).' }],
    ['stdout-closed', 502, { code: 'EXECUTION_ERROR', message: 'The function exited with code 0 without writing a response.', details: { exit_code: 0, signal: null } }],
    ['stdout-closed-hang', 504, { code: 'TIMEOUT', message: 'The function did not answer within 1000 ms and was ended.', details: { timeout_ms: 1000 } }],
  ])('%s: %i', async (name, status, error) => {
    const response = await invoke(name);
    expect({ status: response.status, body: response.body }).toEqual({ status, body: failure(error) });
    expect(response.headers.get('x-request-id')).toBe(response.body.request_id);
    expect(JSON.stringify(response.body)).not.toContain('a secret stack');
    await expectNoSurvivors(name);
  });

  it.each(['hog-buffer', 'hog-heap', 'hog-tree', 'hog-escaped'])('%s: 502 MEMORY_LIMIT_EXCEEDED for the whole process tree', async (name) => {
    const response = await invoke(name);
    expect({ status: response.status, body: response.body }).toEqual({
      status: 502,
      body: failure({
        code: 'MEMORY_LIMIT_EXCEEDED',
        message: expect.stringMatching(/(used \d+ MB, over its memory cap|heap reached its memory cap) of 64 MB: raise memory in its manifest or use less\.$/),
        details: { limit_bytes: 64 * MB, used_bytes: expect.any(Number) },
      }),
    });
    await expectNoSurvivors(name);
  });

  it("node gets a V8 heap limit equal to its memory cap", async () => {
    const response = await invoke('heap-limit');
    expect(response.body.output.node_options).toBe('--max-old-space-size=96');
    expect(response.body.output.heap_mb).toBeLessThan(160);
    await expectNoSurvivors('heap-limit');
  });

  const deno = hasCommand('deno');
  if (!deno) warnSkip('deno heap limit', 'deno');
  (deno ? it : it.skip)('deno gets the same V8 heap limit, through DENO_V8_FLAGS', async () => {
    const response = await invoke('heap-limit-deno');
    expect(response.status).toBe(200);
    // The old space plus deno's young generation; without the flag it is about 4 GB.
    expect(response.body.output.heap_mb).toBeLessThanOrEqual(96 + 128);
    await expectNoSurvivors('heap-limit-deno');
  });

  it("a node function stopped by its heap limit is reported as MEMORY_LIMIT_EXCEEDED, not a crash", async () => {
    const response = await invoke('hog-own-limit');
    expect({ status: response.status, body: response.body }).toEqual({
      status: 502,
      body: failure({
        code: 'MEMORY_LIMIT_EXCEEDED',
        message: "The function's heap reached its memory cap of 1024 MB and it was ended: raise memory in its manifest or use less.",
        details: { limit_bytes: 1024 * MB, used_bytes: expect.any(Number) },
      }),
    });
    await expectNoSurvivors('hog-own-limit');
  });

  it('a function that never reads its (large) request still answers', async () => {
    const response = await invoke('no-stdin', { blob: 'q'.repeat(900 * 1024) });
    expect({ status: response.status, body: response.body }).toEqual({
      status: 200,
      body: success({ read: false }),
    });
    await expectNoSurvivors('no-stdin');
  });

  it.each([
    ['forks', 'stays in its process group', { processes: 1, escaped_groups: 0, msg: 'ended 1 process(es) the function left behind' }],
    ['forks-detached', 'left its process group and session', { processes: 0, escaped_groups: 1, msg: 'ended 1 process group(s) that had left its group' }],
  ])('%s: a child that %s and would outlive the function is ended with its own children; the log says so', async (name, _how, logged) => {
    const requestId = `${name}-1`;
    const response = await invoke(name, {}, { 'X-Request-Id': requestId });
    expect({ status: response.status, body: response.body }).toEqual({ status: 200, body: success({ child: expect.any(Number) }, requestId) });
    expect(await server.waitForLog((line) => line.request_id === requestId && line.escaped_groups !== undefined)).toMatchObject(logged);
    await expectNoSurvivors(name);
  });
});

describe('clients that misbehave', () => {
  it('a client that disconnects mid-invocation ends it: no process survives, the log says 499', async () => {
    const pending = rawInvoke('slow', { ms: 30_000, tag: 'gone' }, 'gone-1');
    await readPidFile(path.join(root, 'functions', 'slow', 'started-gone.pid'));
    pending.destroy();
    await server.waitForLog((line) => line.request_id === 'gone-1' && line.status === 499);
    await expectNoSurvivors('slow');
  });

  it('a queued request whose client disconnects is dropped without spawning', async () => {
    // slow has concurrency 1: "held" runs, "dropped" waits behind it.
    const held = invoke('slow', { ms: 1500, tag: 'held' });
    await readPidFile(path.join(root, 'functions', 'slow', 'started-held.pid'));
    const queued = rawInvoke('slow', { ms: 10, tag: 'dropped' }, 'dropped-1');
    await server.waitForLog((line) => line.request_id === 'dropped-1' && line.msg === 'waiting for a free slot');
    queued.destroy();
    expect(await server.waitForLog((line) => line.request_id === 'dropped-1' && line.status !== undefined)).toMatchObject({
      status: 499,
      code: 'CLIENT_CLOSED_REQUEST',
    });
    expect((await held).body.output).toEqual({ tag: 'held' });
    // First come, first served: had "dropped" stayed queued, it would have run before "after".
    expect((await invoke('slow', { ms: 10, tag: 'after' })).body.output).toEqual({ tag: 'after' });
    expect(fs.existsSync(path.join(root, 'functions', 'slow', 'started-dropped.pid'))).toBe(false);
    await expectNoSurvivors('slow');
  });

  it('a slow client that trickles its body gets 408 after read_timeout; others are served meanwhile', async () => {
    const { socket, received } = await openSocket(server);
    socket.write('POST /api/functions/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"a":');
    const trickle = setInterval(() => socket.write(' '), 200);
    try {
      expect((await invoke('healthy')).status).toBe(200);
      expect(await waitFor(() => socket.destroyed || socket.readableEnded, 8000)).toBe(true);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
    expect(received()).toMatch(/^HTTP\/1\.1 408/);
    await expectNoSurvivors('healthy');
  });

  it('a body over server.max_body_size is refused with 413 while streaming, never read whole', async () => {
    const response = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
      const url = new URL(server.url);
      const req = http.request({ host: url.hostname, port: url.port, path: '/api/functions/healthy', method: 'POST' }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body: text }));
      });
      req.on('error', reject);
      // 64 MB offered without a Content-Length; alyx must stop at 1 MB.
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 'a');
      const pump = (): void => {
        while (sent < 64 * MB && !req.destroyed) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      req.on('response', () => (sent = Infinity));
      pump();
    });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body)).toEqual({
      request_id: expect.any(String),
      success: false,
      error: { code: 'PAYLOAD_TOO_LARGE', message: `The request body is larger than ${MB} bytes (server.max_body_size).`, details: { limit_bytes: MB } },
    });
  });
});

describe('malformed and hostile manifests', () => {
  it.each([...Object.entries(hostileManifests).map(([name, { reason }]) => [name, reason] as const), ['m-fifo', /manifest\.yaml is not a regular file/] as const])(
    '%s is listed invalid with the reason, answers 503 FUNCTION_NOT_READY, and the rest still runs',
    async (name, reason) => {
      const listed = (await request(`${server.url}/api/functions`)).body.functions.find((fn: { name: string }) => fn.name === name);
      expect(listed).toMatchObject({ name, status: 'invalid', message: expect.stringMatching(reason) });
      const response = await invoke(name);
      expect({ status: response.status, body: response.body }).toEqual({
        status: 503,
        body: failure({ code: 'FUNCTION_NOT_READY', message: expect.stringMatching(reason), details: { status: 'invalid' } }),
      });
      expect((await invoke('healthy')).body.output).toEqual({ ok: true });
    },
  );
});

describe('malformed and hostile alyx.yaml', () => {
  const configs: Record<string, { config: string | { symlink: string } | 'fifo'; problem: RegExp }> = {
    'bad YAML': { config: 'server: [port\n', problem: /alyx\.yaml is not valid YAML \(line \d+/ },
    'an alias bomb': { config: `${ALIAS_BOMB}\n`, problem: /alyx\.yaml is not valid YAML \(Excessive alias count/ },
    'a FIFO': { config: 'fifo', problem: /alyx\.yaml is not a regular file/ },
    'a link to /dev/zero': { config: { symlink: '/dev/zero' }, problem: /alyx\.yaml is not a regular file/ },
    'an oversized file': { config: `# ${'z'.repeat(2 * MB)}\n`, problem: /alyx\.yaml is \d+ bytes, over the 1 MB/ },
    'a list at the top': { config: '- server\n', problem: /must be a mapping/ },
    'a prototype key': { config: '__proto__: { port: 1 }\n', problem: /__proto__/ },
    'an unknown key': { config: 'server:\n  prot: 8090\n', problem: /server\.prot/ },
    'a wrong type': { config: 'server:\n  port: eighty\n', problem: /server\.port/ },
    'a bad size': { config: 'server:\n  max_body_size: 6 parsecs\n', problem: /server\.max_body_size/ },
  };

  it('each one stops alyx serve with exit 2 and a message that names the file and the problem, no stack', async () => {
    const projects = Object.entries(configs).map(([what, { config, problem }]) => {
      const project = makeProject({ 'functions/ok/index.js': nodeFunction(respond('{ success: true }')) });
      if (config === 'fifo') mkfifo(path.join(project, 'alyx.yaml'));
      else if (typeof config === 'string') fs.writeFileSync(path.join(project, 'alyx.yaml'), config);
      else fs.symlinkSync(config.symlink, path.join(project, 'alyx.yaml'));
      return { what, project, problem };
    });
    try {
      const results = await Promise.all(
        projects.map(async ({ what, project, problem }) => {
          const result = await runCli(['serve', '-C', project, '--port', '0', '--host', '127.0.0.1'], { env: cleanEnv(), timeoutMs: 15_000 });
          return { what, code: result.code, problem: problem.test(result.stderr), stack: /\n\s+at /.test(result.stderr), stderr: result.stderr };
        }),
      );
      for (const result of results) {
        expect({ ...result, stderr: result.problem ? '' : result.stderr }).toEqual({ what: result.what, code: 2, problem: true, stack: false, stderr: '' });
      }
    } finally {
      projects.forEach(({ project }) => removeProject(project));
    }
  });
});

/** A POST that the test can cut off: the caller destroys it. */
function rawInvoke(name: string, input: unknown, requestId: string): http.ClientRequest {
  const url = new URL(server.url);
  const req = http.request({ host: url.hostname, port: url.port, path: `/api/functions/${name}`, method: 'POST', headers: { 'X-Request-Id': requestId } });
  req.on('error', () => undefined); // the test destroys it
  req.end(JSON.stringify(input));
  return req;
}

describe('signals while invocations run', () => {
  it('SIGTERM while 20 run: the short ones finish, the rest end with 503 SHUTTING_DOWN, alyx exits 0 and no process survives', async () => {
    const project = makeProject({
      'alyx.yaml': `server:\n  shutdown_timeout: 4s\nfunctions:\n  concurrency: 32\n  timeout: 60s\n  env:\n    FAULT_MARKER: ${MARKER}-term\n`,
      ...script('sleeper', [
        'read -r request',
        'echo $$ > "started-$$.pid"',
        'case "$request" in *\'"long"\'*) sleep 120 ;; *) sleep 2 ;; esac',
        'echo \'{"success": true, "output": {"slept": true}}\'',
      ].join('\n')),
    });
    try {
      const draining = await startServer(['serve', '-C', project], { env: cleanEnv() });
      const responses = Array.from({ length: 20 }, (_, index) =>
        request(`${draining.url}/api/functions/sleeper`, { method: 'POST', body: JSON.stringify({ kind: index % 2 === 0 ? 'short' : 'long' }), timeoutMs: 30_000 }),
      );
      const folder = path.join(project, 'functions', 'sleeper');
      expect(await waitFor(() => fs.readdirSync(folder).filter((file) => file.startsWith('started-')).length === 20, 15_000)).toBe(true);
      const exited = draining.stop('SIGTERM', 20_000);
      const answers = await Promise.all(responses);
      expect(await exited).toEqual({ code: 0, signal: null });
      const byStatus = (status: number) => answers.filter((answer) => answer.status === status);
      expect(byStatus(200).map((answer) => answer.body.output)).toEqual(Array(10).fill({ slept: true }));
      expect(byStatus(503).map((answer) => answer.body)).toEqual(
        Array(10).fill(failure({ code: 'SHUTTING_DOWN', message: 'The server is shutting down: retry on another instance or after the restart.' })),
      );
      await expectNoneMarked(`${MARKER}-term`);
    } finally {
      removeProject(project);
    }
  });

  it('a second SIGTERM exits at once with status 1, ending the running invocations and the children that left their group', async () => {
    const project = makeProject({
      'alyx.yaml': `functions:\n  timeout: 60s\n  env:\n    FAULT_MARKER: ${MARKER}-twice\n`,
      'functions/hangs/index.js': nodeFunction(`
        const child = require('node:child_process').spawn('sleep', ['300'], { stdio: 'ignore', detached: true });
        require('node:fs').writeFileSync('started-' + request.input.tag + '.pid', String(child.pid));
        setInterval(() => {}, 1000);`),
    });
    try {
      const impatient = await startServer(['serve', '-C', project], { env: cleanEnv() });
      const pending = ['a', 'b'].map((tag) =>
        request(`${impatient.url}/api/functions/hangs`, { method: 'POST', body: JSON.stringify({ tag }) }).catch(() => null),
      );
      for (const tag of ['a', 'b']) await readPidFile(path.join(project, 'functions', 'hangs', `started-${tag}.pid`));
      impatient.child.kill('SIGTERM');
      await impatient.waitForLog((line) => String(line.msg).includes('shutting down'));
      expect(await impatient.stop('SIGTERM')).toEqual({ code: 1, signal: null });
      await Promise.all(pending);
      await expectNoneMarked(`${MARKER}-twice`);
    } finally {
      removeProject(project);
    }
  });
});
