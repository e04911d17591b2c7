import fs from 'node:fs';
import path from 'node:path';
import { runCommand, shellEnv } from '../helpers/cli';
import { copyCheckout } from '../helpers/checkout';
import { waitFor } from '../helpers/processes';
import { sqlitePrebuildEnv } from '../helpers/sqlite-prebuild';
import { makeProject, removeProject } from '../helpers/project';
import { startServer, stopAllServers, type RunningServer } from '../helpers/server';
import { hasCommand, warnSkip } from '../helpers/tools';

/**
 * What a new user does on a fresh clone: `make dev`, and the manual checks of the production build
 * plan, run as written. The clone is a copy of the files git would commit, so nothing git ignores
 * (node_modules, dist, build outputs) comes along and the repository itself is never written to.
 *
 * The plan's commands are run verbatim through sh, with two changes, both through the environment
 * or the URL and never the commands: ALYX_SERVER_PORT=0 gives each server an ephemeral port (8090
 * would collide with parallel test runs), and curl talks to 127.0.0.1:<that port> instead of
 * localhost:8090. `alyx serve` also gets ALYX_SERVER_HOST=127.0.0.1 (it binds 0.0.0.0 otherwise).
 */
let clone: string;
beforeAll(() => {
  clone = makeProject();
  copyCheckout('.', clone);
});
afterAll(() => removeProject(clone));
afterEach(() => stopAllServers());

/** Runs a shell command line in the clone, as a user types it. */
const sh = (line: string, cwd = clone, timeoutMs = 240_000) => runCommand('sh', ['-c', line], { cwd, env: shellEnv(), timeoutMs });

/** Starts a shell command line that runs an alyx server; resolves once it listens. */
const startLine = (line: string, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<RunningServer> =>
  startServer(['-c', line], { command: '/bin/sh', cwd: clone, env: shellEnv({ ALYX_SERVER_PORT: '0', ...env }), timeoutMs });

/** A curl command of the plan, sent to the server's real address. */
async function curl(server: RunningServer, line: string): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const result = await sh(line.replace('http://localhost:8090', server.url), clone, 30_000);
  expect([result.code, result.stderr]).toEqual([0, expect.any(String)]);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

describe('a fresh clone', () => {
  it('has no node_modules, dist or build outputs', () => {
    for (const ignored of ['node_modules', 'dist', 'build', 'examples/functions-demo/functions/hello-typescript/node_modules']) {
      expect([ignored, fs.existsSync(path.join(clone, ignored))]).toEqual([ignored, false]);
    }
  });

  it('make dev installs, builds and serves the demo in development mode', async () => {
    // npm ci is real; a warm npm cache (make test has just filled it) keeps it short, and the SQLite
    // driver comes built, as a user's download of its prebuilt binary would.
    const server = await startServer(['dev'], {
      command: 'make',
      cwd: clone,
      env: shellEnv({ ALYX_SERVER_PORT: '0', npm_config_prefer_offline: 'true', ...sqlitePrebuildEnv() }),
      timeoutMs: 540_000,
    });
    expect(fs.existsSync(path.join(clone, 'node_modules', '.install-stamp'))).toBe(true);
    expect(fs.existsSync(path.join(clone, 'dist', 'cli', 'index.js'))).toBe(true);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${server.url}/api/health`).then((response) => response.json());
    expect(health).toMatchObject({ status: 'ok', mode: 'development', functions: 6 });
    const hello = await curl(server, 'curl -s http://localhost:8090/api/functions/hello-typescript?name=Make');
    expect(hello.output).toMatchObject({ message: 'Hello, Make! (from TypeScript)', ran_from: 'source', mode: 'development' });
    await server.stop();
    expect(await waitFor(() => !groupAlive(server.child.pid as number), 10_000)).toBe(true);
  }, 600_000);

  const curlInstalled = hasCommand('curl');
  if (!curlInstalled) warnSkip("the production build plan's manual checks", 'curl');
  (curlInstalled ? it : it.skip)("make build makes build/alyx, which needs only Node; the plan's manual checks then work", async () => {
    const made = await sh('make build', clone, 540_000);
    expect([made.code, made.stderr]).toEqual([0, expect.any(String)]);
    const alyx = path.join(clone, 'build', 'alyx');
    fs.accessSync(alyx, fs.constants.X_OK);
    expect(fs.readFileSync(alyx, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);

    // A PATH that holds node and nothing else: build/alyx needs no npm, npx, tsx or esbuild, and
    // neither do hello-node and hello-typescript in development.
    const nodeOnly = path.join(clone, '.node-only');
    fs.mkdirSync(nodeOnly);
    fs.symlinkSync(process.execPath, path.join(nodeOnly, 'node'));
    const dev = await startLine('cd examples/functions-demo && ../../build/alyx dev', { PATH: nodeOnly });
    expect(announcedMode(dev)).toBe('development');
    const greeted = await curl(
      dev,
      'curl -X POST http://localhost:8090/api/functions/hello-node -H "Content-Type: application/json" -d \'{"name": "World"}\'',
    );
    expect(greeted).toMatchObject({ success: true, output: { message: 'Hello, World! (from Node.js)' } });
    const interpreted = await curl(dev, 'curl -s http://localhost:8090/api/functions/hello-typescript');
    expect(interpreted.output).toMatchObject({ message: 'Hello, World! (from TypeScript)', ran_from: 'source', file: 'index.ts', mode: 'development' });
    await dev.stop();

    // One alyx build in the fresh clone installs hello-typescript's esbuild, then builds every function (hello-go where go is).
    const built = await sh(hasCommand('go') ? '../../build/alyx build' : '../../build/alyx build hello-typescript', path.join(clone, 'examples/functions-demo'));
    expect([built.code, built.stdout]).toEqual([0, expect.stringMatching(/installing: npm ci[\s\S]*✓ hello-typescript built .* -> functions\/hello-typescript\/dist\/index\.js/)]);
    const serve = await startLine('cd examples/functions-demo && ALYX_DEV_ENABLED=false ../../build/alyx serve', { ALYX_SERVER_HOST: '127.0.0.1' });
    expect(announcedMode(serve)).toBe('production');
    const compiled = await curl(serve, 'curl -s http://localhost:8090/api/functions/hello-typescript');
    expect(compiled).toMatchObject({
      success: true,
      output: { message: 'Hello, World! (from TypeScript)', ran_from: 'build', file: 'dist/index.js', mode: 'production' },
    });
  }, 900_000);
});

/** Whether any process of the process group led by `pid` is still there. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The mode the server announced when it started listening. */
function announcedMode(server: RunningServer): unknown {
  return server.logs().find((line) => typeof line.url === 'string')?.mode;
}
