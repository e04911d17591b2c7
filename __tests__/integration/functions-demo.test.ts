import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, runCli, shellEnv } from '../helpers/cli';
import { checkoutFiles, copyCheckout } from '../helpers/checkout';
import { makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';
import { announceExercised, hasCommand, warnSkip } from '../helpers/tools';

/**
 * examples/functions-demo end to end: a copy of what a fresh clone holds, served from source by
 * `alyx dev`, then built by `alyx build` and served from its build outputs by
 * `ALYX_DEV_ENABLED=false alyx serve --strict`. Every runtime is exercised for real.
 */
const DEMO = 'examples/functions-demo';

interface DemoFunction {
  readonly name: string;
  readonly label: string;
  readonly runtime: string;
  /** The program it needs on PATH. */
  readonly tool: string;
  /** What production runs, when the function has a build. */
  readonly output?: string;
  readonly files: readonly string[];
}

const FUNCTIONS: readonly DemoFunction[] = [
  { name: 'hello-node', label: 'Node.js', runtime: 'node', tool: 'node', files: ['index.js'] },
  { name: 'hello-python', label: 'Python', runtime: 'python', tool: 'python3', files: ['index.py'] },
  { name: 'hello-deno', label: 'Deno', runtime: 'deno', tool: 'deno', files: ['mod.ts', 'deno.json'] },
  { name: 'hello-bun', label: 'Bun', runtime: 'bun', tool: 'bun', files: ['index.tsx'] },
  {
    name: 'hello-typescript', label: 'TypeScript', runtime: 'node', tool: 'node', output: 'dist/index.js',
    files: ['index.ts', 'package.json', 'manifest.yaml'],
  },
  { name: 'hello-go', label: 'Go', runtime: 'go', tool: 'go', output: 'bin/hello-go', files: ['main.go', 'go.mod', 'manifest.yaml'] },
];

const available = FUNCTIONS.filter((fn) => hasCommand(fn.tool));
for (const fn of FUNCTIONS.filter((candidate) => !available.includes(candidate))) warnSkip(`functions-demo ${fn.name}`, fn.tool);

let project: string;
beforeAll(() => {
  project = makeProject();
  copyCheckout(DEMO, project);
  // A runtime this machine lacks would keep `serve --strict` from starting: its function goes (SKIP above).
  for (const fn of FUNCTIONS.filter((candidate) => !available.includes(candidate))) {
    fs.rmSync(path.join(project, 'functions', fn.name), { recursive: true });
  }
});
afterAll(() => removeProject(project));
afterEach(() => stopAllServers());

const invoke = (server: RunningServer, name: string) =>
  request(`${server.url}/api/functions/${name}`, {
    method: 'POST',
    body: JSON.stringify({ name: 'Demo' }),
    headers: { 'Content-Type': 'application/json' },
    timeoutMs: 60_000,
  });

const ranBy = (fn: DemoFunction): string => `${fn.runtime} (${fn.name})`;

describe('examples/functions-demo', () => {
  it('holds alyx.yaml, a README and the six functions with the files of their runtimes', async () => {
    const demo = path.join(REPO_ROOT, DEMO);
    expect(fs.existsSync(path.join(demo, 'alyx.yaml'))).toBe(true);
    for (const fn of FUNCTIONS) {
      for (const file of fn.files) expect([fn.name, file, fs.existsSync(path.join(demo, 'functions', fn.name, file))]).toEqual([fn.name, file, true]);
    }
    const listed = await runCli(['list', '--json', '--dev', '-C', demo], { env: shellEnv() });
    const byName = Object.fromEntries((JSON.parse(listed.stdout).functions as Array<{ name: string }>).map((fn) => [fn.name, fn]));
    expect(Object.keys(byName).sort()).toEqual(FUNCTIONS.map((fn) => fn.name).sort());
    for (const fn of FUNCTIONS) expect(byName[fn.name]).toMatchObject({ runtime: fn.runtime, has_build: fn.output !== undefined });
    expect(byName['hello-typescript']).toMatchObject({ entry: 'index.ts', exec: 'interpreter' });

    const manifest = (name: string): string => fs.readFileSync(path.join(demo, 'functions', name, 'manifest.yaml'), 'utf8');
    expect(manifest('hello-typescript')).toMatch(/command: npm\n\s+args: \[run, build\][\s\S]*output: dist\/index\.js/);
    expect(JSON.parse(fs.readFileSync(path.join(demo, 'functions/hello-typescript/package.json'), 'utf8'))).toMatchObject({
      scripts: { build: expect.stringMatching(/^esbuild index\.ts .*--outfile=dist\/index\.js$/) },
      devDependencies: { esbuild: expect.any(String) },
    });
    expect(manifest('hello-go')).toMatch(/command: go\n\s+args: \[build, -o, bin\/hello-go, \.\][\s\S]*output: bin\/hello-go/);
  });

  it('its README gives the exact commands of both workflows, the ones these tests run', () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, DEMO, 'README.md'), 'utf8');
    for (const command of [
      'make dev',
      '../../build/alyx dev',
      'curl -X POST http://localhost:8090/api/functions/hello-node -H "Content-Type: application/json" -d \'{"name": "World"}\'',
      '../../build/alyx build',
      'ALYX_DEV_ENABLED=false ../../build/alyx serve --strict',
      'curl -s http://localhost:8090/api/functions/hello-typescript',
      'cd functions/hello-typescript && npm install && npm run build',
    ]) {
      expect(readme).toContain(command);
    }
  });

  it('build outputs and node_modules are git-ignored and never committed', () => {
    const ignored = [
      'functions/hello-typescript/node_modules/esbuild/package.json',
      'functions/hello-typescript/dist/index.js',
      'functions/hello-go/bin/hello-go',
      'functions/hello-python/__pycache__/index.cpython-311.pyc',
      'functions/hello-python/.venv/bin/python',
    ].map((file) => `${DEMO}/${file}`);
    const checked = spawnSync('git', ['check-ignore', '--no-index', ...ignored], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(checked.stdout.split('\n').filter(Boolean)).toEqual(ignored);
    const tracked = spawnSync('git', ['ls-files', '--', 'examples'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout;
    expect(tracked).not.toMatch(/(^|\/)(node_modules|dist|bin|\.venv|__pycache__)\//m);
    expect(checkoutFiles(DEMO).filter((file) => /\/(node_modules|dist|bin)\//.test(file))).toEqual([]);
  });

  it('alyx dev runs every function from source', async () => {
    const server = await startServer(['dev', '-C', project], { env: shellEnv() });
    expect((await request(`${server.url}/api/health`)).body).toMatchObject({ mode: 'development', functions: available.length, ready: available.length });
    for (const fn of available) {
      const response = await invoke(server, fn.name);
      expect([fn.name, response.status, response.body.output]).toEqual([
        fn.name,
        200,
        expect.objectContaining({ message: `Hello, Demo! (from ${fn.label})`, ran_from: 'source', mode: 'development' }),
      ]);
    }
    announceExercised('functions-demo in development, from source', available.map(ranBy));
  }, 120_000);

  it('alyx build --no-install in a fresh clone fails for hello-typescript and says what to do', async () => {
    const result = await runCli(['build', 'hello-typescript', '--no-install', '-C', project], { env: shellEnv(), timeoutMs: 60_000 });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('functions/hello-typescript/node_modules is missing: run "alyx build" without --no-install, or "npm install" in functions/hello-typescript');
    expect(fs.existsSync(path.join(project, 'functions/hello-typescript/dist'))).toBe(false);
  }, 60_000);

  it('one alyx build (installing first), then ALYX_DEV_ENABLED=false alyx serve --strict runs every built function from its output', async () => {
    const built = await runCli(['build', '-C', project], { env: shellEnv(), timeoutMs: 180_000 });
    expect([built.code, built.stdout]).toEqual([0, expect.stringContaining('2 built, 0 failed')]);

    const server = await startServer(['serve', '--strict', '-C', project], { env: shellEnv({ ALYX_DEV_ENABLED: 'false' }) });
    expect((await request(`${server.url}/api/ready`)).status).toBe(200);
    const listed = (await request(`${server.url}/api/functions`)).body.functions as Array<{ name: string }>;
    const byName = Object.fromEntries(listed.map((fn) => [fn.name, fn]));
    if (byName['hello-go']) expect(byName['hello-go']).toMatchObject({ status: 'ready', entry: 'bin/hello-go', exec: 'direct', command: [path.join(project, 'functions/hello-go/bin/hello-go')] });
    expect(byName['hello-typescript']).toMatchObject({ status: 'ready', entry: 'dist/index.js', exec: 'interpreter' });

    for (const fn of available) {
      const response = await invoke(server, fn.name);
      const from = fn.output ? { ran_from: 'build', file: fn.output } : { ran_from: 'source' };
      expect([fn.name, response.status, response.body.output]).toEqual([
        fn.name,
        200,
        expect.objectContaining({ message: `Hello, Demo! (from ${fn.label})`, mode: 'production', ...from }),
      ]);
    }
    announceExercised('functions-demo in production (hello-typescript and hello-go from their build output)', available.map(ranBy));
  }, 600_000);
});
