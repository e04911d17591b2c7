import fs from 'node:fs';
import path from 'node:path';
import { cleanEnv } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { readPidFile, waitFor } from '../helpers/processes';
import { makeProject, removeProject, writeTree, type FixtureTree } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

let root: string;
afterEach(async () => {
  await stopAllServers();
  removeProject(root);
});

const answer = (output: string): string => nodeFunction(`console.log(JSON.stringify({ success: true, output: ${output} }));`);
const invoke = (server: RunningServer, name: string, body = '{}') =>
  request(`${server.url}/api/functions/${name}`, { method: 'POST', body });
const dev = async (env: NodeJS.ProcessEnv = {}): Promise<RunningServer> => {
  const server = await startServer(['dev', '-C', root, '--log-level', 'debug'], { env: cleanEnv(env) });
  await server.waitForLog((line) => typeof line.watching === 'string');
  return server;
};
const messages = (server: RunningServer): string[] => server.logs().map((line) => String(line.msg));

/** Asserts that no log line matching `predicate` appears within `ms` (the only way to see an absence). */
async function expectQuiet(server: RunningServer, predicate: (line: Record<string, unknown>) => boolean, ms = 600): Promise<void> {
  const before = server.logs().filter(predicate).length;
  expect(await waitFor(() => server.logs().filter(predicate).length > before, ms)).toBe(false);
}

describe('re-discovery in alyx dev', () => {
  beforeEach(() => {
    root = makeProject({
      'functions/stay/index.js': answer("'stay'"),
      'functions/slow/index.js': nodeFunction(`
        require('node:fs').writeFileSync('started.pid', String(process.pid));
        setTimeout(() => console.log(JSON.stringify({ success: true, output: 'slow done' })), 1500);`),
      'functions/empty/README.md': 'no entry yet\n',
    });
  });

  it('a function folder added or removed: + added / - removed, served at once', async () => {
    const server = await dev();
    writeTree(root, { 'functions/fresh/index.js': answer("'fresh'") });
    await server.waitForLog((line) => line.msg === '+ added fresh');
    expect((await invoke(server, 'fresh')).body.output).toBe('fresh');

    fs.rmSync(path.join(root, 'functions', 'fresh'), { recursive: true });
    await server.waitForLog((line) => line.msg === '- removed fresh');
    expect((await invoke(server, 'fresh')).status).toBe(404);
  });

  it('an entry file added or removed, or a manifest changed: ~ changed', async () => {
    const server = await dev();
    expect((await invoke(server, 'empty')).status).toBe(503);
    writeTree(root, { 'functions/empty/index.py': 'import json,sys\njson.load(sys.stdin)\nprint(json.dumps({"success": True, "output": "now python"}))\n' });
    await server.waitForLog((line) => line.msg === '~ changed empty');
    expect((await invoke(server, 'empty')).body.output).toBe('now python');

    writeTree(root, { 'functions/stay/manifest.yaml': 'timeout: 2s\n' });
    await server.waitForLog((line) => line.msg === '~ changed stay');
    const listed = (await request(`${server.url}/api/functions`)).body.functions.find((fn: { name: string }) => fn.name === 'stay');
    expect(listed.timeout_ms).toBe(2000);
  });

  it('an invocation already running is not disturbed by a change to its function', async () => {
    const server = await dev();
    const running = invoke(server, 'slow');
    await readPidFile(path.join(root, 'functions', 'slow', 'started.pid'));
    writeTree(root, { 'functions/slow/manifest.yaml': 'timeout: 100ms\n' });
    await server.waitForLog((line) => line.msg === '~ changed slow');
    expect(await running).toMatchObject({ status: 200, body: { output: 'slow done' } });
  });

  it("a .env created or edited after start reaches the functions' environment", async () => {
    writeTree(root, { 'functions/env/index.js': answer('{ greeting: process.env.GREETING ?? null }') });
    const server = await dev();
    expect((await invoke(server, 'env')).body.output.greeting).toBeNull();
    writeTree(root, { '.env': 'GREETING=from dotenv\n' });
    expect(await waitFor(() => server.logs().some((line) => String(line.msg).includes('(file change)')), 5000)).toBe(true);
    expect((await invoke(server, 'env')).body.output.greeting).toBe('from dotenv');
  });

  it('source edits need no reload: the next invocation runs the new source', async () => {
    const server = await dev();
    expect((await invoke(server, 'stay')).body.output).toBe('stay');
    writeTree(root, { 'functions/stay/index.js': answer("'edited'") });
    expect((await invoke(server, 'stay')).body.output).toBe('edited');
  });
});

/**
 * A function whose development entry is its build output: a "compiler" (build.sh) copies
 * src.sh to out/run.sh, slowly, and records each build outside the function folder.
 */
const builtTree = (buildSeconds = 0.3): FixtureTree => ({
  'functions/tool/manifest.yaml': 'runtime: binary\nbuild:\n  command: sh\n  args: [build.sh]\n  output: out/run.sh\n',
  'functions/tool/build.sh': [
    'echo build >> ../../builds.log',
    `sleep ${buildSeconds}`,
    'if grep -q BROKEN src.sh; then echo "src.sh: line 1: syntax error" >&2; rm -f out/run.sh; exit 1; fi',
    'mkdir -p out && cp src.sh out/run.sh.tmp && chmod +x out/run.sh.tmp && mv out/run.sh.tmp out/run.sh',
    '',
  ].join('\n'),
  'functions/tool/src.sh': version('v1'),
});

function version(text: string): string {
  return `#!/bin/sh\ncat > /dev/null\necho '{"success": true, "output": "${text}"}'\n`;
}

const edit = (text: string): void => writeTree(root, { 'functions/tool/src.sh': version(text) });

describe('builds on change', () => {
  const builds = (): number => (fs.existsSync(path.join(root, 'builds.log')) ? fs.readFileSync(path.join(root, 'builds.log'), 'utf8').split('\n').filter(Boolean).length : 0);

  it('at startup a missing output is built, and the first invocation waits for it', async () => {
    root = makeProject(builtTree());
    const server = await dev();
    expect(await invoke(server, 'tool')).toMatchObject({ status: 200, body: { output: 'v1' } });
    expect(messages(server)).toEqual(expect.arrayContaining([expect.stringMatching(/^building tool: sh build\.sh/), expect.stringMatching(/^built tool in \d+ ms -> functions\/tool\/out\/run\.sh/)]));
    expect(builds()).toBe(1);
  });

  it('an edit rebuilds (debounced: a burst of saves is one build) and the next invocation waits for it', async () => {
    root = makeProject(builtTree());
    const server = await dev();
    await invoke(server, 'tool');
    for (let save = 2; save <= 5; save++) edit(`v${save}`);
    await server.waitForLog((line) => line.build === 'started' && builds() === 2);
    expect((await invoke(server, 'tool')).body.output).toBe('v5');
    // The second success: two builds can take the same number of milliseconds, so not by its text.
    const succeeded = await server.waitForLog((line) => line.build === 'succeeded' && line !== server.logs().find((l) => l.build === 'succeeded'));
    expect(succeeded.duration_ms).toEqual(expect.any(Number));
    await expectQuiet(server, (line) => line.build === 'started');
    expect(builds()).toBe(2);
  });

  it('a change during a build queues exactly one more build', async () => {
    root = makeProject(builtTree(0.8));
    const server = await dev();
    await invoke(server, 'tool');
    edit('v2');
    await waitFor(() => builds() === 2, 5000);
    const queued = () => server.logs().filter((line) => line.build === 'queued').length;
    for (const [index, text] of ['v3', 'v4', 'v5'].entries()) {
      edit(text);
      await server.waitForLog(() => queued() === index + 1); // each save seen while the build runs
    }
    expect((await invoke(server, 'tool')).body.output).toBe('v5');
    await expectQuiet(server, (line) => line.build === 'started', 1500);
    expect(builds()).toBe(3);
  });

  it('a failed build logs its output and keeps the previous output serving', async () => {
    root = makeProject(builtTree());
    const server = await dev();
    await invoke(server, 'tool');
    edit('BROKEN');
    const failed = await server.waitForLog((line) => line.build === 'failed');
    expect(failed.msg).toMatch(/^build of tool failed after \d+ ms: "sh build\.sh" exited with code 1; the previous output was put back\nsrc\.sh: line 1: syntax error/);
    expect((await invoke(server, 'tool')).body.output).toBe('v1');
    expect(fs.readFileSync(path.join(root, 'functions/tool/out/run.sh'), 'utf8')).toBe(version('v1'));
  });

  it('editing the build output itself never starts a build', async () => {
    root = makeProject(builtTree());
    const server = await dev();
    await invoke(server, 'tool');
    writeTree(root, { 'functions/tool/out/run.sh': { content: version('hand-edited'), mode: 0o755 } });
    await expectQuiet(server, (line) => line.build === 'started');
    expect(builds()).toBe(1);
    expect((await invoke(server, 'tool')).body.output).toBe('hand-edited');
  });

  it('build.watch globs choose the inputs', async () => {
    root = makeProject({
      ...builtTree(),
      'functions/tool/manifest.yaml': 'runtime: binary\nbuild:\n  command: sh\n  args: [build.sh]\n  output: out/run.sh\n  watch: ["src/**/*.txt"]\n',
    });
    const server = await dev();
    await invoke(server, 'tool');
    edit('not watched');
    await expectQuiet(server, (line) => line.build === 'started');
    writeTree(root, { 'functions/tool/src/deep/input.txt': 'watched\n' });
    await server.waitForLog((line) => line.build === 'succeeded' && builds() === 2);
    expect((await invoke(server, 'tool')).body.output).toBe('not watched');
  });
});

describe('TypeScript without a build', () => {
  it('a .ts entry runs from source with the loader alyx ships; the project installs nothing', async () => {
    root = makeProject({
      'functions/typed/index.ts': [
        'interface Greeting { message: string; length: number }',
        'const greet = (name: string): Greeting => ({ message: `Hello, ${name}!`, length: name.length });',
        "let data = '';",
        'process.stdin.on("data", (chunk: Buffer) => (data += chunk));',
        'process.stdin.on("end", () => console.log(JSON.stringify({ success: true, output: greet(JSON.parse(data).input.name as string) })));',
        '',
      ].join('\n'),
      'functions/module/index.mts': 'const value: number = 42;\nprocess.stdin.resume();\nprocess.stdin.on("end", () => console.log(JSON.stringify({ success: true, output: { value } })));\n',
    });
    expect(fs.existsSync(path.join(root, 'node_modules'))).toBe(false);
    const server = await dev();
    expect((await invoke(server, 'typed', '{"name": "TS"}')).body.output).toEqual({ message: 'Hello, TS!', length: 2 });
    expect((await invoke(server, 'module')).body.output).toEqual({ value: 42 });
  });
});

describe('production has no watcher', () => {
  it('in alyx serve, new folders are not discovered and edits start no build', async () => {
    root = makeProject({ ...builtTree(), 'functions/tool/out/run.sh': { content: version('shipped'), mode: 0o755 } });
    const server = await startServer(['serve', '-C', root], { env: cleanEnv() });
    writeTree(root, { 'functions/fresh/index.js': answer("'fresh'") });
    edit('v2');
    await expectQuiet(server, (line) => line.build !== undefined || String(line.msg).startsWith('+ added'));
    expect((await invoke(server, 'fresh')).status).toBe(404);
    expect((await invoke(server, 'tool')).body.output).toBe('shipped');
    expect(builds()).toBe(0);
    expect(server.logs().some((line) => line.watching !== undefined)).toBe(false);

    function builds(): number {
      return fs.existsSync(path.join(root, 'builds.log')) ? 1 : 0;
    }
  });

  it('--no-watch in development starts no watcher either', async () => {
    root = makeProject({ 'functions/stay/index.js': answer("'stay'") });
    const server = await startServer(['dev', '--no-watch', '-C', root], { env: cleanEnv() });
    writeTree(root, { 'functions/fresh/index.js': answer("'fresh'") });
    await expectQuiet(server, (line) => String(line.msg).startsWith('+ added'));
    expect((await invoke(server, 'fresh')).status).toBe(404);
  });
});

describe('a development reload reaches only what changed', () => {
  /** Notes its pid in the project folder when it starts (outside its own folder, whose changes end its warm processes). */
  const PID_NOTING = nodeFunction("console.log(JSON.stringify({ success: true, output: process.pid }));").replace(
    "let data = '';",
    "require('node:fs').appendFileSync(require('node:path').join(__dirname, '..', '..', 'b-started.log'), process.pid + '\\n');\nlet data = '';",
  );
  const started = (): number[] => {
    const file = path.join(root, 'b-started.log');
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').map(Number) : [];
  };

  beforeEach(() => {
    root = makeProject({
      'alyx.yaml': 'functions:\n  pool: 1\n',
      'functions/a/index.js': answer("'a'"),
      'functions/a/manifest.yaml': 'build:\n  command: sh\n  args: [-c, "mkdir -p out && echo built > out/stamp"]\n  watch: ["src/**"]\n  output: out/stamp\n',
      'functions/b/index.js': PID_NOTING,
    });
  });

  it("editing A's manifest, or rebuilding A, leaves B's warm process alone", async () => {
    const server = await dev();
    expect((await invoke(server, 'b')).status).toBe(200);
    // B's first invocation started its own process, and the pool one more to wait for the next.
    expect(await waitFor(() => started().length === 2, 10_000)).toBe(true);
    const warm = started()[1];

    writeTree(root, { 'functions/a/manifest.yaml': 'description: changed\nbuild:\n  command: sh\n  args: [-c, "mkdir -p out && echo built > out/stamp"]\n  watch: ["src/**"]\n  output: out/stamp\n' });
    await server.waitForLog((line) => line.msg === '~ changed a');
    writeTree(root, { 'functions/a/src/main.txt': 'edited\n' });
    await server.waitForLog((line) => line.build === 'succeeded' && line.function === 'a');
    await server.waitForLog((line) => line.reason === 'build' && String(line.msg).startsWith('functions re-discovered'));

    const answered = await invoke(server, 'b');
    expect(answered.body.output).toBe(warm);
  });

  it('SIGHUP still ends every warm process: an operator reload picks up a deploy', async () => {
    const server = await dev();
    expect((await invoke(server, 'b')).status).toBe(200);
    expect(await waitFor(() => started().length === 2, 10_000)).toBe(true);
    const warm = started()[1];
    server.child.kill('SIGHUP');
    await server.waitForLog((line) => line.reason === 'SIGHUP');
    const answered = await invoke(server, 'b');
    expect(answered.body.output).not.toBe(warm);
  });
});

describe('a production build that fails while development runs the source', () => {
  it('is one warning, not an error on every save, and the source keeps serving', async () => {
    root = makeProject({
      'functions/ts/index.ts': answer("'from source'"),
      'functions/ts/manifest.yaml': 'build:\n  command: sh\n  args: [-c, "echo esbuild: not found >&2; exit 127"]\n  watch: ["*.ts"]\n  output: dist/index.js\n',
    });
    const server = await dev();
    for (const round of [1, 2, 3]) {
      writeTree(root, { 'functions/ts/index.ts': answer(`'from source ${round}'`) });
      await server.waitForLog((line) => line.build === 'failed' && server.logs().filter((each) => each.build === 'failed').length >= round, 10_000);
      expect((await invoke(server, 'ts')).body.output).toBe(`from source ${round}`);
    }
    const failures = server.logs().filter((line) => line.build === 'failed');
    expect(failures.filter((line) => line.level === 40)).toHaveLength(1);
    expect(failures.filter((line) => (line.level as number) >= 50)).toEqual([]);
    expect(failures[0].msg).toMatch(/^the production build of ts fails .*development runs its source and is not affected/);
  });
});
