import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { ExecutionPlan } from '../../src/functions/entrypoint';
import { RUNTIME_TABLE } from '../../src/functions/runtimes';
import { findTypeScriptLoader } from '../../src/functions/typescript-loader';
import { argsWithPreload } from '../../src/invoke/preload';
import { cleanEnv } from '../helpers/cli';
import { makeProject, removeProject, type FixtureTree } from '../helpers/project';
import { announceExercised, hasCommand, warnSkip } from '../helpers/tools';

/**
 * SPEC §10: alyx/handler, the helper for JavaScript and TypeScript functions. One function,
 * written with the helper, runs as alyx would run it under node (ESM, CommonJS, TypeScript
 * through alyx's loader), bun and deno, in a project whose node_modules/alyx is this checkout.
 * The tests speak the protocol to the processes directly: one request on stdin (one-shot), or
 * the line protocol of reuse mode (ALYX_REUSE=1).
 */

jest.setTimeout(90_000);

const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** The longest any one process may take; it is killed then, and the test fails. */
const RUN_DEADLINE_MS = 30_000;

/** The function, with each runtime's import and export lines around it. */
const functionSource = (importLine: string, exportStart: string): string => `${importLine}
console.log('the module starts');
let calls = 0;
let loaded = false;
${exportStart} handler(async (input, ctx) => {
  calls += 1;
  switch (input.mode) {
    case 'fail':
      throw new FunctionError('NAME_TAKEN', 'that name is taken', { status: 409, details: { name: input.name } });
    case 'throw':
      throw new Error('kaboom');
    case 'log':
      ctx.log.debug('debugging', { step: 1 });
      ctx.log.info('informing');
      ctx.log.warn('warning', { n: 2 });
      ctx.log.error('failing', [3]);
      return { logged: 4 };
    case 'invoke':
      return { got: await ctx.invoke(input.target, input.payload) };
    case 'print':
      console.log('via console.log');
      console.info('via console.info');
      process.stdout.write('via process.stdout.write\\n');
      return { printed: true };
    case 'nothing':
      return undefined;
    default:
      return {
        input, calls, loaded,
        requestId: ctx.requestId, function: ctx.function, auth: ctx.auth, env: ctx.env,
        trigger: ctx.trigger, attempt: ctx.attempt, traceparent: ctx.traceparent,
      };
  }
});
loaded = true;
`;

const ESM_IMPORT = "import { handler, FunctionError } from 'alyx/handler';";

interface Runtime {
  name: string;
  /** The entry file, relative to the project (or absolute); its folder is the working directory. */
  entry: string;
  command: () => { command: string; args: string[] };
}

/** The command alyx's plan gives an interpreted function, with the preload alyx adds. */
function interpreted(runtime: 'node' | 'bun' | 'deno', entry: () => string): () => { command: string; args: string[] } {
  return () => {
    const file = entry();
    const args = [...RUNTIME_TABLE[runtime].args];
    if (RUNTIME_TABLE[runtime].typeScriptExtensions?.includes(path.extname(file))) {
      const loader = findTypeScriptLoader();
      if (!loader) throw new Error('tsx, the TypeScript loader alyx ships, is not installed');
      args.unshift('--import', loader);
    }
    args.push(file);
    const plan: ExecutionPlan = { status: 'ready', message: null, exec: 'interpreter', from: 'source', file, command: RUNTIME_TABLE[runtime].command, args };
    return { command: RUNTIME_TABLE[runtime].command, args: [...argsWithPreload(runtime, plan)] };
  };
}

let root = '';
const inProject = (relative: string) => (): string => path.join(root, relative);

const RUNTIMES: Runtime[] = [
  { name: 'node ESM (.mjs)', entry: 'functions/esm/index.mjs', command: interpreted('node', inProject('functions/esm/index.mjs')) },
  { name: 'node CommonJS (.cjs)', entry: 'functions/cjs/index.cjs', command: interpreted('node', inProject('functions/cjs/index.cjs')) },
  { name: 'node TypeScript (.ts)', entry: 'functions/typescript/index.ts', command: interpreted('node', inProject('functions/typescript/index.ts')) },
  { name: 'node TypeScript ESM (.mts)', entry: 'functions/typescript-esm/index.mts', command: interpreted('node', inProject('functions/typescript-esm/index.mts')) },
  { name: 'bun', entry: 'functions/bun/index.ts', command: interpreted('bun', inProject('functions/bun/index.ts')) },
  { name: 'deno', entry: 'functions/deno/mod.ts', command: interpreted('deno', inProject('functions/deno/mod.ts')) },
];

const hasBun = hasCommand('bun');
const hasDeno = hasCommand('deno');
if (!hasBun) warnSkip('alyx/handler under bun', 'bun');
if (!hasDeno) warnSkip('alyx/handler under deno', 'deno');
const available = RUNTIMES.filter(({ name }) => (name !== 'bun' || hasBun) && (name !== 'deno' || hasDeno));

const tree: FixtureTree = {
  'node_modules/alyx': { symlink: REPO_ROOT },
  'functions/esm/index.mjs': functionSource(ESM_IMPORT, 'export default'),
  'functions/cjs/index.cjs': functionSource("const { handler, FunctionError } = require('alyx/handler');", 'module.exports ='),
  'functions/typescript/index.ts': functionSource(ESM_IMPORT, 'export default'),
  'functions/typescript-esm/index.mts': functionSource(ESM_IMPORT, 'export default'),
  'functions/bun/index.ts': functionSource(ESM_IMPORT, 'export default'),
  'functions/deno/mod.ts': functionSource("import { handler, FunctionError } from 'npm:alyx/handler';", 'export default'),
  // deno resolves npm: specifiers from the project's node_modules, with no registry.
  'functions/deno/deno.json': '{ "nodeModulesDir": "manual" }\n',
  // A test that imports a function's module gets the function, and its stdin is left alone.
  'functions/esm/imports.mjs': "import fn from './index.mjs';\nconsole.log(JSON.stringify(await fn({ mode: 'fail-free' }, { requestId: 'direct' })));\n",
  'functions/cjs/requires.cjs': "const fn = require('./index.cjs');\nconsole.log(JSON.stringify({ type: typeof fn }));\n",
};

beforeAll(() => {
  root = makeProject(tree);
  announceExercised('alyx/handler', available.map(({ name }) => name));
});
afterAll(() => removeProject(root));

const live = new Set<ChildProcessWithoutNullStreams>();

/** Ends every process a test started, whatever happened to the test (their whole groups). */
afterEach(async () => {
  const waits: Promise<unknown>[] = [];
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      waits.push(new Promise((resolve) => child.once('close', resolve)));
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  live.clear();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(waits), new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
  clearTimeout(timer);
});

/** The environment alyx gives a function, with `extra` on top. */
function functionEnv(functionName: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...cleanEnv(), NO_PROXY: '127.0.0.1,localhost', ALYX_MODE: 'development', ALYX_FUNCTION: functionName, ...extra };
}

function start(runtime: Runtime, env: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams {
  const { command, args } = runtime.command();
  const child = spawn(command, args, { cwd: path.dirname(path.resolve(root, runtime.entry)), env, stdio: 'pipe', detached: true });
  live.add(child);
  child.stdin.on('error', () => undefined);
  return child;
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a process's output until it exits, failing past the deadline. */
function finished(child: ChildProcessWithoutNullStreams, what: string): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not end within ${RUN_DEADLINE_MS} ms; stderr: ${stderr}`)), RUN_DEADLINE_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** One-shot: the request on stdin, then end-of-file; the process's output once it has exited. */
async function runOnce(runtime: Runtime, request: unknown, env = functionEnv('fn')): Promise<Finished> {
  const child = start(runtime, env);
  const done = finished(child, runtime.name);
  child.stdin.end(typeof request === 'string' ? request : JSON.stringify(request));
  return done;
}

/** The response line of a one-shot run: the last line of stdout. */
function responseOf(result: Finished): Record<string, unknown> {
  const lines = result.stdout.split('\n').filter((line) => line.trim() !== '');
  if (lines.length === 0) throw new Error(`no response on stdout (exit ${result.code}); stderr: ${result.stderr}`);
  return JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
}

const CONTEXT = {
  auth: { id: 'user-1', email: 'ada@example.com', role: 'admin', verified: true, claims: { sub: 'user-1' } },
  env: { GREETING: 'Hello' },
  alyx_url: 'http://127.0.0.1:9',
  internal_token: 'a'.repeat(64),
  trigger: { type: 'http', method: 'POST', path: '/api/functions/fn' },
  attempt: 2,
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
};

const request = (id: string, input: Record<string, unknown>, context: Record<string, unknown> = CONTEXT): Record<string, unknown> => ({
  request_id: id,
  function: 'fn',
  input,
  context,
});

/** A stand-in for alyx's HTTP API on 127.0.0.1: one function that answers, one that fails. */
interface FakeAlyx {
  url: string;
  seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  close(): Promise<void>;
}

async function startFakeAlyx(): Promise<FakeAlyx> {
  const seen: FakeAlyx['seen'] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.setHeader('content-type', 'application/json');
      if (req.url === '/api/functions/greet') {
        const input = JSON.parse(body) as { name: string };
        res.end(JSON.stringify({ request_id: 'callee-1', success: true, output: { greeting: `Hi, ${input.name}` }, logs: [], duration_ms: 1 }));
      } else {
        res.statusCode = 403;
        res.end(JSON.stringify({ request_id: 'callee-2', success: false, error: { code: 'NOT_YOURS', message: 'that is not yours', details: { owner: 'someone' } }, duration_ms: 1 }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe.each(available)('alyx/handler under $name', (runtime) => {
  it('answers one request from stdin: the return value is output, ctx holds the context, the request id is kept', async () => {
    const result = await runOnce(runtime, request('req-1', { name: 'Ada' }));
    expect(result.code).toBe(0);
    expect(responseOf(result)).toEqual({
      request_id: 'req-1',
      success: true,
      output: {
        input: { name: 'Ada' },
        calls: 1,
        loaded: true,
        requestId: 'req-1',
        function: 'fn',
        auth: CONTEXT.auth,
        env: CONTEXT.env,
        trigger: CONTEXT.trigger,
        attempt: 2,
        traceparent: CONTEXT.traceparent,
      },
      logs: [],
    });
  });

  it('turns a thrown FunctionError into error {code, message, details, status}', async () => {
    const result = await runOnce(runtime, request('req-2', { mode: 'fail', name: 'Ada' }));
    expect(result.code).toBe(0);
    expect(responseOf(result)).toEqual({
      request_id: 'req-2',
      success: false,
      error: { code: 'NAME_TAKEN', message: 'that name is taken', details: { name: 'Ada' }, status: 409 },
      logs: [],
    });
    expect(result.stderr).not.toContain('NAME_TAKEN');
  });

  it('turns any other throw into FUNCTION_ERROR with its message, and writes its stack to stderr', async () => {
    const result = await runOnce(runtime, request('req-3', { mode: 'throw' }));
    expect(responseOf(result)).toMatchObject({ request_id: 'req-3', success: false, error: { code: 'FUNCTION_ERROR', message: 'kaboom' } });
    expect((responseOf(result).error as Record<string, unknown>).status).toBeUndefined();
    expect(result.stderr).toMatch(/kaboom/);
    expect(result.stderr).toMatch(/\n\s+at .*(index|mod)\.[cm]?[jt]s/);
  });

  it('fills logs from ctx.log, with level, message, data and an ISO timestamp', async () => {
    const result = await runOnce(runtime, request('req-4', { mode: 'log' }));
    const response = responseOf(result);
    expect(response).toMatchObject({ success: true, output: { logged: 4 } });
    const logs = response.logs as Array<Record<string, unknown>>;
    expect(logs.map(({ timestamp: _timestamp, ...rest }) => rest)).toEqual([
      { level: 'debug', message: 'debugging', data: { step: 1 } },
      { level: 'info', message: 'informing' },
      { level: 'warn', message: 'warning', data: { n: 2 } },
      { level: 'error', message: 'failing', data: [3] },
    ]);
    for (const { timestamp } of logs) expect(new Date(timestamp as string).toISOString()).toBe(timestamp);
  });

  it('ctx.invoke posts to alyx with the internal token and returns the output, or throws the error with its HTTP status', async () => {
    const alyx = await startFakeAlyx();
    try {
      const context = { ...CONTEXT, alyx_url: alyx.url };
      const ok = await runOnce(runtime, request('req-5', { mode: 'invoke', target: 'greet', payload: { name: 'Grace' } }, context));
      expect(responseOf(ok)).toMatchObject({ request_id: 'req-5', success: true, output: { got: { greeting: 'Hi, Grace' } } });
      expect(alyx.seen).toHaveLength(1);
      expect(alyx.seen[0]).toMatchObject({ method: 'POST', url: '/api/functions/greet', body: '{"name":"Grace"}' });
      expect(alyx.seen[0].headers).toMatchObject({ authorization: `Bearer ${CONTEXT.internal_token}`, 'content-type': 'application/json' });
      // alyx gives the callee a fresh request id; the trace goes on.
      expect(alyx.seen[0].headers['x-request-id']).toBeUndefined();
      expect(alyx.seen[0].headers.traceparent).toBe(CONTEXT.traceparent);

      const refused = await runOnce(runtime, request('req-6', { mode: 'invoke', target: 'private', payload: {} }, context));
      expect(responseOf(refused)).toEqual({
        request_id: 'req-6',
        success: false,
        error: { code: 'NOT_YOURS', message: 'that is not yours', details: { owner: 'someone' }, status: 403 },
        logs: [],
      });
    } finally {
      await alyx.close();
    }
  });

  it('reuse mode: a handshake, then one response line per request line, in order; a throw ends only its request; end of input ends the process with 0', async () => {
    const child = start(runtime, functionEnv('fn', { ALYX_REUSE: '1' }));
    const done = finished(child, runtime.name);
    child.stdin.write(`${JSON.stringify(request('r-1', { mode: 'print' }))}\n`);
    child.stdin.write(`\n${JSON.stringify(request('r-2', { mode: 'throw' }))}\n${JSON.stringify(request('r-3', { name: 'Ada' }))}\n`);
    child.stdin.end();
    const result = await done;

    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines[0]).toBe('{"alyx_reuse":1}');
    const responses = lines.slice(1).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(responses.map(({ request_id, success }) => ({ request_id, success }))).toEqual([
      { request_id: 'r-1', success: true },
      { request_id: 'r-2', success: false },
      { request_id: 'r-3', success: true },
    ]);
    expect(responses[1].error).toEqual({ code: 'FUNCTION_ERROR', message: 'kaboom' });
    // Globals live on between invocations of one process.
    expect(responses[2].output).toMatchObject({ requestId: 'r-3', calls: 3, loaded: true });
    // The function's own output goes to stderr, so stdout holds only the protocol, from the module's first line on.
    expect(result.stderr).toContain('the module starts');
    expect(result.stderr).toContain('via console.log');
    expect(result.stderr).toContain('via console.info');
    expect(result.stderr).toContain('via process.stdout.write');
  });
});

const nodeEsm = RUNTIMES[0];
const nodeCjs = RUNTIMES[1];

describe('alyx/handler under node: the edges', () => {
  it('a returned undefined is output null', async () => {
    const result = await runOnce(nodeEsm, request('req-7', { mode: 'nothing' }));
    expect(responseOf(result)).toEqual({ request_id: 'req-7', success: true, output: null, logs: [] });
  });

  it('stdin that is not JSON: a message on stderr, no response on stdout, exit status 1', async () => {
    const result = await runOnce(nodeEsm, 'this is not json');
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('the module starts\n');
    expect(result.stderr).toMatch(/alyx\/handler: the request on stdin is not JSON/);
  });

  it('serves without ALYX_FUNCTION when the function is the program entry, as on the earlier server', async () => {
    const env = cleanEnv({ NO_PROXY: '127.0.0.1' });
    for (const runtime of [nodeEsm, nodeCjs]) {
      const result = await runOnce(runtime, request('req-8', { name: 'Ada' }), env);
      expect(responseOf(result)).toMatchObject({ request_id: 'req-8', success: true, output: { requestId: 'req-8' } });
    }
  });

  it('imported by another module outside alyx, handler() returns the function and leaves stdin alone', async () => {
    for (const importer of ['functions/esm/imports.mjs', 'functions/cjs/requires.cjs']) {
      const runtime: Runtime = { name: importer, entry: importer, command: () => ({ command: process.execPath, args: [path.join(root, importer)] }) };
      // stdin stays open: a helper that read it would keep the process alive past the deadline.
      const child = start(runtime, cleanEnv());
      const result = await finished(child, importer);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout.trim().split('\n').pop() ?? '')).toEqual(importer.endsWith('.mjs') ? { input: { mode: 'fail-free' }, calls: 1, loaded: true, requestId: 'direct' } : { type: 'function' });
    }
  });

  it('reuse mode: a request line of several megabytes, written in pieces, gets its response line', async () => {
    const child = start(nodeCjs, functionEnv('fn', { ALYX_REUSE: '1' }));
    const done = finished(child, 'big request');
    const big = 'x'.repeat(3 * 1024 * 1024);
    const line = `${JSON.stringify(request('big-1', { name: big }))}\n${JSON.stringify(request('small-2', { name: 'Ada' }))}\n`;
    for (let offset = 0; offset < line.length; offset += 100_000) child.stdin.write(line.slice(offset, offset + 100_000));
    child.stdin.end();
    const result = await done;
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    const first = JSON.parse(lines[1]) as { request_id: string; output: { input: { name: string } } };
    expect(first.request_id).toBe('big-1');
    expect(first.output.input.name).toHaveLength(big.length);
    expect(JSON.parse(lines[2])).toMatchObject({ request_id: 'small-2', success: true });
  });
});

describe('alyx/handler files', () => {
  it('index.mjs is the same text as index.cjs below the marker and up to the exports', () => {
    const shared = (file: string): string => {
      const text = fs.readFileSync(path.join(REPO_ROOT, 'shims', 'handler', file), 'utf8');
      const start = text.indexOf('// ---- the same in index.cjs and index.mjs from here to the exports ----');
      const end = text.indexOf('// ---- end of the shared text ----');
      expect(start).toBeGreaterThan(0);
      expect(end).toBeGreaterThan(start);
      return text.slice(start, end);
    };
    expect(shared('index.mjs')).toBe(shared('index.cjs'));
  });
});

describe('alyx/handler in a bundle', () => {
  // The TypeScript scaffold's build script, and the same with ESM output.
  it.each(['cjs', 'esm'])('works inlined by esbuild --bundle --platform=node --format=%s, with no node_modules beside it', async (format) => {
    const out = makeProject();
    try {
      const outfile = path.join(out, format === 'esm' ? 'index.mjs' : 'index.js');
      const esbuild = path.join(path.dirname(require.resolve('esbuild/package.json')), 'bin', 'esbuild');
      const build = spawnSync(esbuild, [path.join(root, 'functions/typescript/index.ts'), '--bundle', '--platform=node', `--format=${format}`, `--outfile=${outfile}`, '--log-level=warning'], {
        cwd: path.join(root, 'functions/typescript'),
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(build.stderr).toBe('');
      expect(build.status).toBe(0);
      const bundled: Runtime = { name: `bundle (${format})`, entry: outfile, command: interpreted('node', () => outfile) };
      for (const env of [functionEnv('fn'), cleanEnv()]) {
        const result = await runOnce(bundled, request('req-9', { name: 'Ada' }), env);
        expect(responseOf(result)).toMatchObject({ request_id: 'req-9', success: true, output: { requestId: 'req-9', loaded: true } });
      }
    } finally {
      removeProject(out);
    }
  });
});

describe('alyx/handler types', () => {
  const TYPED = `import { handler, FunctionError, type Context, type Handler, type Logger } from 'alyx/handler';

interface Greeting { name: string }
interface Answer { message: string }

const greet: Handler<Greeting, Answer> = async (input, ctx) => {
  const log: Logger = ctx.log;
  log.info('greeting', { name: input.name });
  if (ctx.trigger?.type === 'http') log.debug(ctx.trigger.method);
  const attempt: number = ctx.attempt;
  const other = await ctx.invoke<{ count: number }>('count', { name: input.name });
  if (!input.name) throw new FunctionError('NO_NAME', 'name is required', { status: 400, details: { attempt, count: other.count } });
  return { message: \`Hello, \${input.name}\` };
};

export default handler(greet);

export const untyped = handler(async (input, ctx: Context) => ({ id: ctx.requestId, anything: input.whatever }));

// @ts-expect-error a status is a number
new FunctionError('CODE', 'message', { status: '400' });

// @ts-expect-error the output must match the declared type
export const wrong: Handler<Greeting, Answer> = async () => ({ text: 'no' });
`;

  it.each([
    ['node16', 'node16'],
    ['esnext', 'bundler'],
    // The resolution of older projects: no exports maps, so typesVersions leads it to the declarations.
    ['commonjs', 'node'],
  ])('a function type-checks against the declarations with module %s, moduleResolution %s', (module, moduleResolution) => {
    const dir = path.join(root, `typecheck-${moduleResolution}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'esm.mts'), TYPED);
    fs.writeFileSync(path.join(dir, 'plain.ts'), TYPED);
    const files = moduleResolution === 'node' ? ['plain.ts'] : ['esm.mts', 'plain.ts'];
    if (module === 'node16') {
      fs.writeFileSync(path.join(dir, 'cjs.cts'), "import helper = require('alyx/handler');\nexport = helper.handler(async (input: { a: number }) => { if (input.a < 0) throw new helper.FunctionError('NEGATIVE', 'a is negative'); return { b: input.a }; });\n");
      files.push('cjs.cts');
    }
    const tsconfig = { compilerOptions: { module, moduleResolution, target: 'ES2022', strict: true, noEmit: true, types: [], skipLibCheck: false }, files };
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
    const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });
});
