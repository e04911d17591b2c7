import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, runCommand, shellEnv } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { sqlitePrebuildEnv } from '../helpers/sqlite-prebuild';
import { makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

/**
 * alyx installed as users install it: `npm pack` on a fresh clone of this repository (its
 * prepack builds alyx and the prebuilt addon), the tarball installed with `npm install` into a
 * folder that holds nothing but functions/, with no C compiler on the PATH, then run through
 * npx. The TypeScript function is the demo's index.ts alone (no manifest, so no build): source
 * in both modes.
 */
const demoSource = (file: string): string => fs.readFileSync(path.join(REPO_ROOT, 'examples/functions-demo/functions', file), 'utf8');

let packDir: string;
let clone: string;
let app: string;
let noCompiler: string;
let tarball: { filename: string; files: Array<{ path: string }> };

/** A PATH with node, npm, npx and sh (npm runs scripts with it), and nothing else: no cc, c++ or make. */
function pathWithoutCompiler(): string {
  const dir = makeProject();
  for (const tool of ['node', 'npm', 'npx']) fs.symlinkSync(path.join(path.dirname(process.execPath), tool), path.join(dir, tool));
  fs.symlinkSync('/bin/sh', path.join(dir, 'sh'));
  return dir;
}

beforeAll(async () => {
  packDir = makeProject();
  clone = makeProject();
  noCompiler = pathWithoutCompiler();
  app = makeProject({
    'functions/hello-js/index.js': demoSource('hello-node/index.js'),
    'functions/hello-ts/index.ts': demoSource('hello-typescript/index.ts'),
    'functions/bad-manifest/index.js': nodeFunction("console.log('{}');"),
    'functions/bad-manifest/manifest.yaml': 'timeout: soon\n',
  });
  const cloned = await runCommand('git', ['clone', '--quiet', '--depth', '1', `file://${REPO_ROOT}`, clone], { env: shellEnv(), timeoutMs: 60_000 });
  expect([cloned.code, cloned.stderr]).toEqual([0, '']);
  const ci = await runCommand('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: clone, env: shellEnv(sqlitePrebuildEnv()), timeoutMs: 300_000 });
  expect([ci.code, ci.stderr]).toEqual([0, expect.any(String)]);
  const packed = await runCommand('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: clone, env: shellEnv(), timeoutMs: 180_000 });
  expect([packed.code, packed.stderr]).toEqual([0, expect.any(String)]);
  [tarball] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<typeof tarball>;
  const installed = await runCommand('npm', ['install', '--save-dev', '--no-audit', '--no-fund', path.join(packDir, tarball.filename)], {
    cwd: app,
    env: shellEnv({ PATH: noCompiler, npm_config_prefer_offline: 'true' }),
    timeoutMs: 300_000,
  });
  expect([installed.code, installed.stderr]).toEqual([0, expect.any(String)]);
}, 600_000);

afterAll(() => {
  for (const dir of [packDir, clone, app, noCompiler]) removeProject(dir);
});
afterEach(() => stopAllServers());

/** `npx alyx <command>` in the app folder, on an ephemeral port of 127.0.0.1. */
const npxAlyx = (command: string): Promise<RunningServer> =>
  startServer(['alyx', command, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json'], {
    command: 'npx',
    cwd: app,
    env: shellEnv(),
    timeoutMs: 60_000,
  });

const invoke = (server: RunningServer, name: string) =>
  request(`${server.url}/api/functions/${name}`, { method: 'POST', body: '{"name": "Package"}', headers: { 'Content-Type': 'application/json' } });

describe('npm pack, installed into a folder holding only functions/', () => {
  it('the tarball holds the CLI, the compiled code and the JSON Schemas, and no sources or tests', () => {
    const files = tarball.files.map((file) => file.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'bin/alyx.js', 'dist/cli/index.js', 'dist/index.d.ts', 'schemas/alyx.schema.json', 'schemas/manifest.schema.json', 'shims/node-preload.cjs',
        'shims/python-preload.py', 'shims/handler/index.cjs', 'shims/handler/index.mjs', 'shims/handler/index.d.cts', 'shims/handler/index.d.mts',
        'shims/python/alyx/__init__.py', 'shims/python/alyx/py.typed', 'shims/go/alyx.go', 'native/posix-spawn.c', 'binding.gyp', 'scripts/build-addon.cjs', 'LICENSE', 'package.json',
      ]),
    );
    if (process.platform === 'linux' && process.arch === 'x64') expect(files).toContain('prebuilds/linux-x64/alyx.glibc.node');
    expect(files.filter((file) => /^(src|__tests__|examples|bench)\/|\.map$/.test(file))).toEqual([]);
  });

  it('installs, with no C compiler on the PATH, without any of its devDependencies', () => {
    const devDependencies = Object.keys((JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: object }).devDependencies);
    const present = devDependencies.filter((name) => fs.existsSync(path.join(app, 'node_modules', name)));
    expect(present).toEqual([]);
    fs.accessSync(path.join(app, 'node_modules', '.bin', 'alyx'), fs.constants.X_OK);
  });

  it('npx alyx dev serves JavaScript and TypeScript sources, and validates manifests with the shipped schemas', async () => {
    const server = await npxAlyx('dev');
    expect((await request(`${server.url}/api/health`)).body).toMatchObject({ status: 'ok', mode: 'development', version: '0.1.0', functions: 3, ready: 2 });
    expect(await invoke(server, 'hello-js')).toMatchObject({ status: 200, body: { output: { message: 'Hello, Package! (from Node.js)', mode: 'development' } } });
    expect(await invoke(server, 'hello-ts')).toMatchObject({
      status: 200,
      body: { output: { message: 'Hello, Package! (from TypeScript)', ran_from: 'source', file: 'index.ts', mode: 'development' } },
    });
    const listed = (await request(`${server.url}/api/functions`)).body.functions as Array<{ name: string; status: string; message?: string }>;
    expect(listed.find((fn) => fn.name === 'bad-manifest')).toMatchObject({ status: 'invalid', message: expect.stringContaining('timeout: must be a duration') });
  }, 90_000);

  it('without a compiler or a prebuilt SQLite driver, synchronous calls work and background work says what it needs', async () => {
    const driverBuilt = fs.existsSync(path.join(app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'));
    const server = await npxAlyx('serve');
    expect(await invoke(server, 'hello-js')).toMatchObject({ status: 200 });
    const queued = await request(`${server.url}/api/async/functions/hello-js`, { method: 'POST', body: '{}' });
    if (driverBuilt) {
      expect(queued.status).toBe(202);
    } else {
      expect(queued).toMatchObject({ status: 503, body: { error: { code: 'STATE_UNAVAILABLE', message: expect.stringContaining('npm rebuild better-sqlite3') } } });
    }
  }, 60_000);

  it('starts processes with the prebuilt addon it ships, where one fits this machine', async () => {
    if (!(process.platform === 'linux' && process.arch === 'x64')) return;
    const server = await npxAlyx('serve');
    expect(server.logs().find((line) => String(line.msg).includes('listening'))).toMatchObject({ process_start: 'posix_spawn' });
  }, 60_000);

  it('npx alyx serve serves in production', async () => {
    const server = await npxAlyx('serve');
    expect((await request(`${server.url}/api/health`)).body).toMatchObject({ mode: 'production', functions: 3 });
    expect(await invoke(server, 'hello-js')).toMatchObject({ status: 200, body: { output: { mode: 'production' } } });
    expect(await invoke(server, 'hello-ts')).toMatchObject({ status: 200, body: { output: { message: 'Hello, Package! (from TypeScript)', file: 'index.ts', mode: 'production' } } });
    const broken = await invoke(server, 'bad-manifest');
    expect([broken.status, broken.body.error.code, broken.body.error.details.status]).toEqual([503, 'FUNCTION_NOT_READY', 'invalid']);
  }, 90_000);
});

describe('where no addon fits the machine', () => {
  it('alyx says so in one info line at start and in alyx list, and still serves', async () => {
    fs.rmSync(path.join(app, 'node_modules', 'alyx', 'prebuilds'), { recursive: true, force: true });
    const listed = await runCommand('npx', ['alyx', 'list'], { cwd: app, env: shellEnv() });
    expect(listed.stdout).toMatch(/^function processes start with child_process\.spawn: alyx's addon is not built for this machine/m);
    const server = await npxAlyx('serve');
    const note = await server.waitForLog((line) => String(line.msg).startsWith('function processes start with child_process.spawn'));
    expect(note).toMatchObject({ level: 30 });
    expect(server.logs().filter((line) => (line.level as number) >= 50)).toEqual([]);
    expect(await invoke(server, 'hello-js')).toMatchObject({ status: 200 });
  }, 60_000);
});

describe('the package as a library', () => {
  it("require('alyx') gives the error classes, the status table and the version, with types", () => {
    const entry = path.join(app, 'node_modules', 'alyx');
    const manifest = JSON.parse(fs.readFileSync(path.join(entry, 'package.json'), 'utf8')) as { version: string; types: string; exports: Record<string, unknown> };
    expect(Object.keys(manifest.exports)).toEqual(['.', './handler', './package.json']);
    expect(fs.existsSync(path.join(entry, manifest.types))).toBe(true);
    expect(fs.existsSync(path.join(entry, 'LICENSE'))).toBe(true);
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const alyx = require(require.resolve('alyx', { paths: [app] })) as { TimeoutError: new (ms: number) => { code: string }; STATUS_BY_CODE: Record<string, number>; version: () => string };
    expect(new alyx.TimeoutError(5).code).toBe('TIMEOUT');
    expect(alyx.STATUS_BY_CODE.TIMEOUT).toBe(504);
    expect(alyx.version()).toBe(manifest.version);
  });
});

describe("the README's tour, word for word, in an empty folder", () => {
  let tour: string;
  beforeAll(async () => {
    tour = makeProject();
    const installed = await runCommand('npm', ['install', '--save-dev', '--no-audit', '--no-fund', path.join(packDir, tarball.filename)], {
      cwd: tour,
      env: shellEnv({ npm_config_prefer_offline: 'true', ...sqlitePrebuildEnv() }),
      timeoutMs: 300_000,
    });
    expect([installed.code, installed.stderr]).toEqual([0, expect.any(String)]);
  }, 300_000);
  afterAll(() => removeProject(tour));

  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  /** A command of the tour: it must stand in the README as it is run here. */
  const tourCommand = (command: string): string => {
    expect(readme).toContain(command);
    return command;
  };
  const sh = (command: string) => runCommand('sh', ['-c', command], { cwd: tour, env: shellEnv({ npm_config_prefer_offline: 'true' }), timeoutMs: 300_000 });
  /** `npx alyx dev` or `serve` as the README types it; the port comes from the environment, so tests can run side by side. */
  const serveAs = (command: string): Promise<RunningServer> =>
    startServer(tourCommand(command).split(' ').slice(1), {
      command: 'npx',
      cwd: tour,
      env: shellEnv({ ALYX_SERVER_PORT: '0', ALYX_SERVER_HOST: '127.0.0.1', ALYX_LOGGING_FORMAT: 'json' }),
      timeoutMs: 60_000,
    });
  const onServer = (command: string, server: RunningServer): string => tourCommand(command).replaceAll('http://127.0.0.1:8090', server.url);

  it('1-2: alyx new, alyx dev, curl and alyx invoke', async () => {
    expect((await sh(tourCommand('npx alyx new hello'))).code).toBe(0);
    expect(fs.readFileSync(path.join(tour, 'functions', 'hello', 'index.mjs'), 'utf8')).toContain("from 'alyx/handler'");
    const server = await serveAs('npx alyx dev');
    const posted = await sh(onServer(`curl -X POST http://127.0.0.1:8090/api/functions/hello -H 'Content-Type: application/json' -d '{"name": "World"}'`, server));
    expect(JSON.parse(posted.stdout)).toMatchObject({ success: true, output: { message: 'Hello, World! (from Node.js)' } });
    const got = await sh(onServer(`curl 'http://127.0.0.1:8090/api/functions/hello?name=GET'`, server));
    expect(JSON.parse(got.stdout)).toMatchObject({ success: true, output: { message: 'Hello, GET! (from Node.js)' } });
    const invoked = await sh(tourCommand(`npx alyx invoke hello -d '{"name": "CLI"}'`));
    expect([invoked.code, JSON.parse(invoked.stdout).output]).toEqual([0, { message: 'Hello, CLI! (from Node.js)' }]);
    // 4: the same code in reuse mode.
    expect(readme).toContain('reuse: true');
    fs.appendFileSync(path.join(tour, 'functions', 'hello', 'manifest.yaml'), 'reuse: true\n');
    const reused = await sh(`npx alyx invoke hello -d '{"name": "CLI"}'`);
    expect([reused.code, JSON.parse(reused.stdout).output]).toEqual([0, { message: 'Hello, CLI! (from Node.js)' }]);
  }, 120_000);

  it('3: a TypeScript function, alyx build, alyx list --prod and alyx serve --strict', async () => {
    expect((await sh(tourCommand('npx alyx new hello-ts --runtime typescript'))).code).toBe(0);
    const built = await sh(tourCommand('npx alyx build'));
    expect([built.code, built.stdout]).toEqual([0, expect.stringMatching(/installing: npm[\s\S]*✓ hello-ts built/)]);
    const listed = await sh(tourCommand('npx alyx list --prod'));
    expect(listed.stdout).toMatch(/hello-ts .*dist\/index\.js/);
    const server = await serveAs('npx alyx serve --strict');
    const answered = await request(`${server.url}/api/functions/hello-ts`, { method: 'POST', body: '{"name": "Prod"}' });
    expect(answered).toMatchObject({ status: 200, body: { output: { message: 'Hello, Prod! (from TypeScript)' } } });
  }, 300_000);
});
