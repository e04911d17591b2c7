import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ALYX_BIN, REPO_ROOT, cleanEnv, runCli } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { readPidFile, waitFor } from '../helpers/processes';
import { makeProject, removeProject, writeTree } from '../helpers/project';
import { request, startServer, stopAllServers } from '../helpers/server';
import { endAllTerminals, runOnTerminal } from '../helpers/terminal';

/** The rough edges a newcomer meets on a first run (issue 17, point 5), one contract each. */

const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const hello = nodeFunction("console.log(JSON.stringify({ success: true, output: { message: 'Hello, ' + (request.input.name || 'World') } }));");
const slow = nodeFunction(`
  require('node:fs').writeFileSync('started.pid', String(process.pid));
  setTimeout(() => console.log(JSON.stringify({ success: true, output: 'done' })), 30000);`);

let root: string;
beforeEach(() => {
  root = makeProject({ 'functions/hello/index.js': hello });
});
afterEach(async () => {
  await Promise.all([stopAllServers(), endAllTerminals()]);
  removeProject(root);
});

describe('alyx dev on a port in use', () => {
  it('prints that the port is in use and exits 1: the watcher does not keep it alive', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const started = Date.now();
      const result = await runCli(['dev', '-C', root, '--port', String(port), '--host', '127.0.0.1'], { timeoutMs: 10_000 });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`alyx: cannot listen on 127.0.0.1:${port}: port ${port} is in use: choose another with --port or server.port`);
      expect(Date.now() - started).toBeLessThan(8000);
    } finally {
      taken.close();
    }
  });
});

describe('Ctrl-C in alyx dev with a call in flight', () => {
  it('the log says a second Ctrl-C exits now, and it does, with status 1', async () => {
    writeTree(root, { 'functions/slow/index.js': slow });
    const terminal = runOnTerminal(['dev', '-C', root, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json']);
    await terminal.waitForOutput(/"msg":"alyx dev listening on (http:\/\/127\.0\.0\.1:\d+)"/);
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(terminal.output())?.[1] as string;
    request(`${url}/api/functions/slow`, { method: 'POST' }).catch(() => undefined);
    await readPidFile(path.join(root, 'functions', 'slow', 'started.pid'));

    terminal.type('\x03');
    await terminal.waitForOutput(/"msg":"SIGINT: shutting down, 1 invocation\(s\) running \(press Ctrl-C again to exit now\)"/);
    terminal.type('\x03');
    expect({ status: await terminal.exited(5000), output: terminal.output() }).toEqual({ status: 1, output: expect.any(String) });
    expect(terminal.output()).toContain('alyx: SIGINT again: exiting now');
  });

  it('with nothing running, Ctrl-C stops at once and says nothing about a second one', async () => {
    const terminal = runOnTerminal(['dev', '-C', root, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json']);
    await terminal.waitForOutput(/alyx dev listening on/);
    terminal.type('\x03');
    // With what alyx printed, so that a failure shows how far it got.
    expect({ status: await terminal.exited(10_000), output: terminal.output() }).toEqual({ status: 0, output: expect.any(String) });
    expect(terminal.output()).toContain('"msg":"SIGINT: shutting down, 0 invocation(s) running"');
    expect(terminal.output()).not.toContain('again');
  });
});

describe('the project folder', () => {
  it.each([['dev'], ['serve'], ['list'], ['invoke', 'hello'], ['build'], ['new', 'x']])('alyx %s -C /nonexistent: exit 2, naming the folder', async (...args) => {
    const missing = path.join(root, 'no-such-folder');
    const result = await runCli([...args, '-C', missing], { timeoutMs: 10_000 });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`alyx: ${missing}: no such folder (given with -C/--cwd): give the project folder, the one that holds functions/.\n`);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('-C naming a file: exit 2, it is not a folder', async () => {
    const file = path.join(root, 'functions', 'hello', 'index.js');
    const result = await runCli(['list', '-C', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`alyx: ${file} is not a folder (given with -C/--cwd)`);
  });

  it('a missing functions/ folder is reported in JSON logs', async () => {
    fs.rmSync(path.join(root, 'functions'), { recursive: true });
    const server = await startServer(['dev', '-C', root], { env: cleanEnv() });
    const line = await server.waitForLog((entry) => entry.level === 40 && entry.functions_path === path.join(root, 'functions'));
    expect(line).toMatchObject({ exists: false, msg: expect.stringMatching(/^the functions folder \S+ does not exist: create it and add a folder such as functions\/hello\/index\.js, or run "alyx new hello"$/) });
  });

  it('a missing functions/ folder is reported in pretty logs, and by alyx list', async () => {
    fs.rmSync(path.join(root, 'functions'), { recursive: true });
    const child = spawn(process.execPath, [ALYX_BIN, 'dev', '-C', root, '--port', '0', '--host', '127.0.0.1', '--log-format', 'pretty'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      expect(await waitFor(() => /WARN.*the functions folder \S+ does not exist/.test(output), 15_000)).toBe(true);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const listed = await runCli(['list', '-C', root]);
    expect(listed).toMatchObject({ code: 0, stdout: expect.stringContaining(`The functions folder ${path.join(root, 'functions')} does not exist`) });
  });
});

describe('a function folder added while alyx dev runs', () => {
  it('is logged with the reason it cannot be served', async () => {
    const server = await startServer(['dev', '-C', root], { env: cleanEnv() });
    await server.waitForLog((line) => typeof line.watching === 'string');
    writeTree(root, { 'functions/broken/index.js': hello, 'functions/broken/manifest.yaml': 'timeout: 30 seconds\n' });
    const line = await server.waitForLog((entry) => entry.function === 'broken' && entry.status === 'invalid');
    expect(line).toMatchObject({
      level: 40,
      reason: expect.stringContaining('timeout: must be a duration such as 500ms, 30s or 2m, or a number of seconds (got "30 seconds")'),
      msg: expect.stringMatching(/^broken is invalid: manifest\.yaml: timeout: must be a duration/),
    });
    await server.waitForLog((entry) => entry.msg === '+ added broken');
    expect((await request(`${server.url}/api/functions/broken`, { method: 'POST' })).status).toBe(503);
  });
});

describe('configuration mistakes', () => {
  it('an unknown key gets a "did you mean"; a YAML error gives its position once', async () => {
    fs.writeFileSync(path.join(root, 'alyx.yaml'), 'functions:\n  timeot: 3s\n');
    const typo = await runCli(['list', '-C', root]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('functions.timeot: unknown key, did you mean timeout? (known keys of functions: ');

    fs.writeFileSync(path.join(root, 'alyx.yaml'), 'server:\n  port: 8090\n  hosts: [a, b\nfunctions: {}\n');
    const broken = await runCli(['list', '-C', root]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/is not valid YAML \(line 4, column 1: [^\n]*\)\n$/);
    expect(broken.stderr.match(/line \d+, column \d+/g)).toEqual(['line 4, column 1']);
  });
});

describe('alyx -v and alyx new', () => {
  it('-v prints the version, as --version does', async () => {
    expect(await runCli(['-v'])).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    expect(await runCli(['--version'])).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  });

  it('without --runtime and not on a terminal: a node function, no question asked', async () => {
    writeTree(root, { 'node_modules/alyx': { symlink: REPO_ROOT } });
    const created = await runCli(['new', 'plain', '-C', root]);
    expect(created).toMatchObject({ code: 0, stdout: expect.stringContaining('Created functions/plain (node):') });
    const invoked = await runCli(['invoke', 'plain', '--dev', '-C', root, '-d', '{"name": "Newcomer"}']);
    expect(JSON.parse(invoked.stdout)).toMatchObject({ success: true, output: { message: 'Hello, Newcomer! (from Node.js)' } });
  });

  it('without --runtime on a terminal: asks, by name or number; Enter takes node; Ctrl-C creates nothing', async () => {
    const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([key]) => key !== 'CI'));
    const byNumber = runOnTerminal(['new', 'asked', '-C', root], { env });
    await byNumber.waitForOutput(/Runtime for asked\? {2}1\) node {2}2\) typescript {2}3\) python {2}4\) deno {2}5\) bun {2}6\) go {2}\[node\]: /);
    byNumber.type('3\r');
    expect(await byNumber.exited()).toBe(0);
    expect(byNumber.output()).toContain('Created functions/asked (python):');
    expect(fs.existsSync(path.join(root, 'functions', 'asked', 'index.py'))).toBe(true);

    const byDefault = runOnTerminal(['new', 'defaulted', '-C', root], { env });
    await byDefault.waitForOutput(/\[node\]: /);
    byDefault.type('ruby\r');
    await byDefault.waitForOutput(/"ruby" is not one of node, typescript, python, deno, bun, go\./);
    byDefault.type('\r');
    expect(await byDefault.exited()).toBe(0);
    expect(byDefault.output()).toContain('Created functions/defaulted (node):');

    const cancelled = runOnTerminal(['new', 'cancelled', '-C', root], { env });
    await cancelled.waitForOutput(/\[node\]: /);
    cancelled.type('\x03');
    expect(await cancelled.exited()).toBe(130);
    expect(cancelled.output()).toContain('alyx: cancelled, nothing was created.');
    expect(fs.existsSync(path.join(root, 'functions', 'cancelled'))).toBe(false);
  });

  it('on a terminal in CI (CI set): node, without asking', async () => {
    const terminal = runOnTerminal(['new', 'in-ci', '-C', root], { env: cleanEnv({ CI: 'true' }) });
    expect(await terminal.exited()).toBe(0);
    expect(terminal.output()).toMatch(/^Created functions\/in-ci \(node\):/);
  });

  it('every scaffold writes a manifest whose first line points editors at the schema of the alyx that runs', async () => {
    for (const runtime of ['node', 'typescript', 'python', 'deno', 'bun', 'go']) {
      expect((await runCli(['new', `s-${runtime}`, '--runtime', runtime, '-C', root])).code).toBe(0);
      const [first] = fs.readFileSync(path.join(root, 'functions', `s-${runtime}`, 'manifest.yaml'), 'utf8').split('\n');
      expect([runtime, first]).toEqual([runtime, `# yaml-language-server: $schema=${path.join(REPO_ROOT, 'schemas', 'manifest.schema.json')}`]);
    }
    const listed = JSON.parse((await runCli(['list', '--json', '--dev', '-C', root])).stdout);
    expect(listed.functions.filter((fn: { status: string }) => fn.status === 'invalid')).toEqual([]);
  });

  it('installed in the project, the schema line is relative: it points into node_modules/alyx and holds in every clone', async () => {
    const installed = path.join(root, 'node_modules', 'alyx');
    for (const part of ['bin', 'dist', 'schemas', 'shims', 'package.json']) fs.cpSync(path.join(REPO_ROOT, part), path.join(installed, part), { recursive: true });
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(installed, 'node_modules'));
    const { spawnSync } = await import('node:child_process');
    const run = spawnSync(process.execPath, [path.join(installed, 'bin', 'alyx.js'), 'new', 'local'], { cwd: root, env: cleanEnv(), encoding: 'utf8', timeout: 20_000 });
    expect(run.status).toBe(0);
    const manifest = path.join(root, 'functions', 'local', 'manifest.yaml');
    const [first] = fs.readFileSync(manifest, 'utf8').split('\n');
    expect(first).toBe('# yaml-language-server: $schema=../../node_modules/alyx/schemas/manifest.schema.json');
    const schema = path.resolve(path.dirname(manifest), first.split('$schema=')[1]);
    expect(JSON.parse(fs.readFileSync(schema, 'utf8')).title).toBe(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'schemas', 'manifest.schema.json'), 'utf8')).title);
  });
});

describe('alyx invoke', () => {
  beforeEach(() => {
    writeTree(root, {
      'functions/fails/index.js': nodeFunction("console.log(JSON.stringify({ success: false, error: { code: 'BAD_NAME', message: 'no such person', details: { name: request.input.name } } }));"),
      'functions/text/index.js': nodeFunction("console.log(JSON.stringify({ success: true, output: 'line one\\nline two', logs: ['looked it up'] }));"),
    });
  });

  it('on a terminal prints the output readably, then one line with the outcome', async () => {
    const terminal = runOnTerminal(['invoke', 'hello', '-C', root, '-d', '{"name": "Tty"}']);
    expect(await terminal.exited()).toBe(0);
    expect(terminal.output()).toMatch(/^\{\n {2}"message": "Hello, Tty"\n\}\n\n✓ hello succeeded in \d+ ms \(request [0-9a-f-]{36}\)\n$/);

    const text = runOnTerminal(['invoke', 'text', '-C', root]);
    expect(await text.exited()).toBe(0);
    expect(text.output()).toMatch(/^line one\nline two\n\nlogs:\n {2}looked it up\n\n✓ text succeeded in \d+ ms/);
  });

  it('on a terminal a failure shows its code, message and details, exit 1', async () => {
    const terminal = runOnTerminal(['invoke', 'fails', '-C', root, '-d', '{"name": "Nobody"}']);
    expect(await terminal.exited()).toBe(1);
    expect(terminal.output()).toMatch(/^✗ fails failed in \d+ ms: BAD_NAME: no such person \(request [0-9a-f-]{36}\)\n {2}details: \{"name":"Nobody"\}\n$/);
  });

  it('--json, or stdout that is not a terminal, prints the exact envelope scripts rely on', async () => {
    const terminal = runOnTerminal(['invoke', 'hello', '-C', root, '--json']);
    expect(await terminal.exited()).toBe(0);
    expect(JSON.parse(terminal.output())).toMatchObject({ success: true, output: { message: 'Hello, World' }, logs: [] });

    const piped = await runCli(['invoke', 'hello', '-C', root]);
    expect(piped.code).toBe(0);
    expect(Object.keys(JSON.parse(piped.stdout))).toEqual(['request_id', 'success', 'output', 'logs', 'duration_ms']);
  });
});
