import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, runCommand, shellEnv } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

/**
 * alyx installed as users install it: the tarball of `npm pack`, installed with `npm install
 * --omit=dev` into a folder that holds nothing but functions/, then run through npx. The
 * TypeScript function is the demo's index.ts alone (no manifest, so no build): source in both modes.
 */
const demoSource = (file: string): string => fs.readFileSync(path.join(REPO_ROOT, 'examples/functions-demo/functions', file), 'utf8');

let packDir: string;
let app: string;
let tarball: { filename: string; files: Array<{ path: string }> };

beforeAll(async () => {
  packDir = makeProject();
  app = makeProject({
    'functions/hello-js/index.js': demoSource('hello-node/index.js'),
    'functions/hello-ts/index.ts': demoSource('hello-typescript/index.ts'),
    'functions/bad-manifest/index.js': nodeFunction("console.log('{}');"),
    'functions/bad-manifest/manifest.yaml': 'timeout: soon\n',
  });
  const packed = await runCommand('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], { env: shellEnv(), timeoutMs: 60_000 });
  expect([packed.code, packed.stderr]).toEqual([0, expect.any(String)]);
  [tarball] = JSON.parse(packed.stdout) as Array<typeof tarball>;
  const installed = await runCommand('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', path.join(packDir, tarball.filename)], {
    cwd: app,
    env: shellEnv({ npm_config_prefer_offline: 'true' }),
    timeoutMs: 300_000,
  });
  expect([installed.code, installed.stderr]).toEqual([0, expect.any(String)]);
}, 420_000);

afterAll(() => {
  removeProject(packDir);
  removeProject(app);
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
    expect(files).toEqual(expect.arrayContaining(['bin/alyx.js', 'dist/cli/index.js', 'schemas/alyx.schema.json', 'schemas/manifest.schema.json', 'shims/node-preload.cjs', 'shims/python-preload.py', 'native/posix-spawn.c', 'scripts/build-addon.cjs', 'package.json']));
    expect(files.filter((file) => /^(src|__tests__|examples|bench)\/|\.map$/.test(file))).toEqual([]);
  });

  it('installs without any devDependency', () => {
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

  it('npx alyx serve serves in production', async () => {
    const server = await npxAlyx('serve');
    expect((await request(`${server.url}/api/health`)).body).toMatchObject({ mode: 'production', functions: 3 });
    expect(await invoke(server, 'hello-js')).toMatchObject({ status: 200, body: { output: { mode: 'production' } } });
    expect(await invoke(server, 'hello-ts')).toMatchObject({ status: 200, body: { output: { message: 'Hello, Package! (from TypeScript)', file: 'index.ts', mode: 'production' } } });
    const broken = await invoke(server, 'bad-manifest');
    expect([broken.status, broken.body.error.code, broken.body.error.details.status]).toEqual([503, 'FUNCTION_NOT_READY', 'invalid']);
  }, 90_000);
});

describe('the package as a library', () => {
  it("require('alyx') gives the error classes, the status table and the version, with types", () => {
    const entry = path.join(app, 'node_modules', 'alyx');
    const manifest = JSON.parse(fs.readFileSync(path.join(entry, 'package.json'), 'utf8')) as { version: string; types: string; exports: Record<string, unknown> };
    expect(Object.keys(manifest.exports)).toEqual(['.', './package.json']);
    expect(fs.existsSync(path.join(entry, manifest.types))).toBe(true);
    expect(fs.existsSync(path.join(entry, 'LICENSE'))).toBe(true);
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const alyx = require(require.resolve('alyx', { paths: [app] })) as { TimeoutError: new (ms: number) => { code: string }; STATUS_BY_CODE: Record<string, number>; version: () => string };
    expect(new alyx.TimeoutError(5).code).toBe('TIMEOUT');
    expect(alyx.STATUS_BY_CODE.TIMEOUT).toBe(504);
    expect(alyx.version()).toBe(manifest.version);
  });
});
