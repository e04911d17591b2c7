import fs from 'node:fs';
import path from 'node:path';
import { ALYX_BIN, cleanEnv, runCli, runCommand } from '../helpers/cli';
import { executable, makeProject, removeProject, type FixtureTree } from '../helpers/project';
import { hasCommand, warnSkip } from '../helpers/tools';

const echoFunction = `
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => {
  const { input } = JSON.parse(data);
  console.log(JSON.stringify({ success: true, output: { echo: input, mode: process.env.ALYX_MODE } }));
});
`;

const tree: FixtureTree = {
  'functions/echo/index.js': echoFunction,
  'functions/fails/index.py': 'import sys, json\njson.load(sys.stdin)\nprint(json.dumps({"success": False, "error": "no"}))\n',
  'functions/built/index.ts': 'process.stdin.resume();\nprocess.stdin.on("end", () => console.log(JSON.stringify({ success: true, output: { from: "source" } })));\n',
  'functions/built/manifest.yaml': [
    'build:',
    '  command: sh',
    '  args: ["-c", "mkdir -p dist && printf \'%s\\\\n\' \\"process.stdin.resume(); process.stdin.on(\\\\\\"end\\\\\\", () => console.log(JSON.stringify({success: true, output: {from: \\\\\\"output\\\\\\"}})))\\" > dist/index.js && echo bundled"]',
    '  output: dist/index.js',
    '',
  ].join('\n'),
  'functions/broken-build/index.js': echoFunction,
  'functions/broken-build/manifest.yaml': 'build:\n  command: sh\n  args: ["-c", "echo compiling; echo half > out.js; echo \'error: it broke\' >&2; exit 1"]\n  output: out.js\n',
  'functions/broken-build/out.js': '// the previous, good output\n',
  'functions/bad name/index.js': echoFunction,
  'functions/_private/index.js': echoFunction,
  'functions/prebuilt/manifest.yaml': 'runtime: binary\nbuild:\n  output: run.sh\n',
  'functions/prebuilt/run.sh': executable('#!/bin/sh\necho \'{"success": true, "output": {"prebuilt": true}}\'\n'),
  'payload.json': '{"name": "from a file"}',
};

describe('alyx list, invoke and build', () => {
  let root: string;
  beforeEach(() => {
    root = makeProject(tree);
  });
  afterEach(() => removeProject(root));
  const alyx = (args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}) =>
    runCli(['-C', root, ...args], { input: options.input, env: options.env ?? cleanEnv() });

  describe('list', () => {
    it('--json prints the API body: every function, invalid ones with their reason', async () => {
      const result = await alyx(['list', '--json']);
      expect(result.code).toBe(0);
      const body = JSON.parse(result.stdout);
      expect(body.count).toBe(6);
      const byName = Object.fromEntries(body.functions.map((fn: { name: string }) => [fn.name, fn]));
      expect(Object.keys(byName).sort()).toEqual(['bad name', 'broken-build', 'built', 'echo', 'fails', 'prebuilt']);
      expect(byName.echo).toMatchObject({ runtime: 'node', status: 'ready', entry: 'index.js', exec: 'interpreter', has_build: false, timeout_ms: 30000 });
      expect(byName['bad name']).toMatchObject({ status: 'invalid', message: expect.stringContaining('not a valid function name') });
      expect(byName.prebuilt).toMatchObject({ runtime: 'binary', status: 'ready', exec: 'direct', entry: 'run.sh' });
    });

    it('uses production unless --dev or dev.enabled: a missing build output is not_built', async () => {
      const production = JSON.parse((await alyx(['list', '--json'])).stdout);
      const built = production.functions.find((fn: { name: string }) => fn.name === 'built');
      expect(built).toMatchObject({ status: 'not_built', message: expect.stringContaining('run "alyx build built"') });

      for (const run of [alyx(['list', '--json', '--dev']), alyx(['list', '--json'], { env: cleanEnv({ ALYX_DEV_ENABLED: 'yes' }) })]) {
        const development = JSON.parse((await run).stdout);
        const fn = development.functions.find((f: { name: string }) => f.name === 'built');
        expect(fn).toMatchObject({ status: 'ready', entry: 'index.ts', exec: 'interpreter' });
      }
    });

    it('prints a table with the mode, each status and what runs', async () => {
      const result = await alyx(['list']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^production mode/);
      expect(result.stdout).toMatch(/NAME\s+RUNTIME\s+STATUS\s+ENTRY\s+SCHEDULES\s+ROUTES\s+RUNS\n/);
      expect(result.stdout).toMatch(/echo\s+node\s+ready\s+index\.js\s+-\s+-\s+\S*node\S* \S*functions\/echo\/index\.js/);
      expect(result.stdout).toMatch(/built\s+node\s+not_built/);
      expect(result.stdout).toContain('4 of 6 ready');
    });

    it('shows each function\'s schedules: their count in the table, the list in --json; a bad schedule makes it invalid', async () => {
      fs.writeFileSync(
        path.join(root, 'functions', 'echo', 'manifest.yaml'),
        'schedules:\n  - { name: nightly, type: cron, expression: "0 3 * * *", timezone: Europe/Berlin }\n  - { name: poll, type: interval, expression: 5m }\n',
      );
      fs.writeFileSync(path.join(root, 'functions', 'fails', 'manifest.yaml'), 'schedules:\n  - { name: nightly, type: cron, expression: "61 * * * *" }\n');

      const table = await alyx(['list']);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/echo\s+node\s+ready\s+index\.js\s+2\s+-\s+\S*node/);
      expect(table.stdout).toMatch(/fails\s+-\s+invalid\s+-\s+-\s+-\s+manifest\.yaml: schedules\[0\] "nightly": expression "61 \* \* \* \*" is not a valid cron expression/);

      const byName = Object.fromEntries(JSON.parse((await alyx(['list', '--json'])).stdout).functions.map((fn: { name: string }) => [fn.name, fn]));
      expect(byName.echo.schedules).toEqual([
        { name: 'nightly', type: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin', enabled: true },
        { name: 'poll', type: 'interval', expression: '5m', timezone: 'UTC', enabled: true },
      ]);
      expect(byName.fails).toMatchObject({ status: 'invalid', message: expect.stringContaining('(Invalid value for minute: 61)') });
      expect(byName.fails).not.toHaveProperty('schedules');
      expect(byName.prebuilt).not.toHaveProperty('schedules');
    });
  });

  describe('invoke', () => {
    it('runs a function with --data and prints the envelope, exit 0', async () => {
      const result = await alyx(['invoke', 'echo', '-d', '{"name": "World"}']);
      expect(result.code).toBe(0);
      const envelope = JSON.parse(result.stdout);
      expect(envelope).toMatchObject({ success: true, output: { echo: { name: 'World' }, mode: 'production' }, logs: [] });
      expect(envelope.request_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(typeof envelope.duration_ms).toBe('number');
    });

    it('reads --data @file and --data - (standard input)', async () => {
      const fromFile = JSON.parse((await alyx(['invoke', 'echo', '--data', '@payload.json'])).stdout);
      expect(fromFile.output.echo).toEqual({ name: 'from a file' });
      const fromStdin = JSON.parse((await alyx(['invoke', 'echo', '-d', '-'], { input: '{"piped": true}' })).stdout);
      expect(fromStdin.output.echo).toEqual({ piped: true });
    });

    it('exits 2 when the data is not a JSON object', async () => {
      for (const data of ['[1, 2]', '"text"', '{not json']) {
        const result = await alyx(['invoke', 'echo', '-d', data]);
        expect(result.code).toBe(2);
        expect(result.stderr).toMatch(/^alyx: --data (must be a JSON object|is not valid JSON)/);
        expect(result.stdout).toBe('');
      }
    });

    it('exits 1 and prints the error envelope when the function fails', async () => {
      const result = await alyx(['invoke', 'fails']);
      expect(result.code).toBe(1);
      expect(JSON.parse(result.stdout)).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR', message: 'no' } });
    });

    it('reports unknown and not-ready functions with their codes, exit 1', async () => {
      const unknown = await alyx(['invoke', 'nope']);
      expect(unknown.code).toBe(1);
      expect(JSON.parse(unknown.stdout).error.code).toBe('FUNCTION_NOT_FOUND');

      const notBuilt = await alyx(['invoke', 'built', '--prod']);
      expect(notBuilt.code).toBe(1);
      expect(JSON.parse(notBuilt.stdout).error).toMatchObject({
        code: 'FUNCTION_NOT_READY',
        details: { status: 'not_built' },
        message: expect.stringContaining('alyx build built'),
      });
    });

    it('runs a TypeScript source in development without a build', async () => {
      const result = await alyx(['invoke', 'built', '--dev']);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout).output).toEqual({ from: 'source' });
    });
  });

  describe('build', () => {
    it('builds, shows progress and duration, and production then runs the output', async () => {
      const result = await alyx(['build', 'built']);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('▸ built: sh -c');
      expect(result.stdout).toContain('│ bundled');
      expect(result.stdout).toMatch(/✓ built built in \d+\.\d\ds -> functions\/built\/dist\/index\.js/);

      const invoked = await alyx(['invoke', 'built', '--prod']);
      expect(JSON.parse(invoked.stdout).output).toEqual({ from: 'output' });
    });

    it('exits 1 when a build fails, shows its output, and puts the previous output back', async () => {
      const result = await alyx(['build']);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('│ error: it broke');
      expect(result.stdout).toMatch(/✗ broken-build failed after \d+\.\d\ds: .*exited with code 1 \(the previous output was put back\)/);
      expect(result.stdout).toContain('✓ built built in');
      expect(result.stdout).toContain('✗ bad name: invalid');
      expect(fs.readFileSync(path.join(root, 'functions', 'broken-build', 'out.js'), 'utf8')).toBe('// the previous, good output\n');
    });

    it('exits 2 for an unknown name or a function without a build', async () => {
      const unknown = await alyx(['build', 'nope']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('No function named "nope"');
      const nothing = await alyx(['build', 'echo']);
      expect(nothing.code).toBe(2);
      expect(nothing.stderr).toContain('echo has nothing to build');
    });
  });

  describe('configuration errors', () => {
    it('exit 2 with the file, the key path and the problem, and no stack trace', async () => {
      fs.writeFileSync(path.join(root, 'alyx.yaml'), 'server:\n  port: eighty\nfunctions:\n  timeout: soon\n  colour: blue\n');
      const result = await alyx(['list']);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(path.join(root, 'alyx.yaml'));
      expect(result.stderr).toContain('server.port: must be an integer');
      expect(result.stderr).toContain('functions.timeout: must be a duration');
      expect(result.stderr).toContain('functions.colour: unknown key');
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });

    it('exit 2 for a bad boolean in the environment, naming the variable', async () => {
      const result = await alyx(['list'], { env: cleanEnv({ ALYX_DEV_ENABLED: 'maybe' }) });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('ALYX_DEV_ENABLED: must be one of true, false, 1, 0, yes, no (got "maybe")');
    });

    it('loads an alyx.yaml of the earlier server and warns once about the ignored keys', async () => {
      fs.writeFileSync(
        path.join(root, 'alyx.yaml'),
        'server:\n  port: 9000\n  tls:\n    auto_tls: true\ndatabase:\n  path: data.db\nauth:\n  jwt: { secret: a-secret-of-at-least-32-bytes-long!!, expiry: 24h }\n  oauth: { enabled: false }\nfunctions:\n  dir: ./functions\n  cpu_limit: 2\nlogging:\n  caller: true\n',
      );
      const result = await alyx(['list', '--json']);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout).count).toBe(6);
      const warnings = result.stderr.split('\n').filter((line) => line.includes('ignoring keys'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('server.tls.auto_tls, functions.cpu_limit, logging.caller, database, auth.jwt.expiry, auth.oauth');
    });
  });

  describe('the command line itself', () => {
    it('--version and --help exit 0; an unknown command or option exits 2', async () => {
      const version = await runCli(['--version']);
      expect(version).toMatchObject({ code: 0, stdout: `${JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version}\n` });
      const help = await runCli(['--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('invoke');
      expect((await runCli(['frobnicate'])).code).toBe(2);
      expect((await runCli(['list', '--colour'])).code).toBe(2);
    });

    it('a reader that stops reading (alyx list | true) ends it quietly, exit 0', async () => {
      // `true` exits without reading, so every write alyx makes meets a closed pipe (EPIPE).
      const piped = await runCommand('bash', ['-c', `set -o pipefail; "${process.execPath}" "${ALYX_BIN}" -C "${root}" list | true`]);
      expect(piped).toMatchObject({ code: 0, stderr: '' });
    });
  });
});

const go = hasCommand('go');
if (!go) warnSkip('Go build and run tests', 'go');
(go ? describe : describe.skip)('a Go function', () => {
  let root: string;
  beforeAll(() => {
    root = makeProject({
      'functions/hello-go/go.mod': 'module example.com/hello\n\ngo 1.19\n',
      'functions/hello-go/main.go': [
        'package main',
        '',
        'import (',
        '\t"encoding/json"',
        '\t"os"',
        ')',
        '',
        'func main() {',
        '\tvar request struct{ Input map[string]any `json:"input"` }',
        '\t_ = json.NewDecoder(os.Stdin).Decode(&request)',
        '\t_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"success": true, "output": map[string]any{"message": "Hello, " + request.Input["name"].(string) + "! (from Go)", "mode": os.Getenv("ALYX_MODE")}})',
        '}',
        '',
      ].join('\n'),
      'functions/hello-go/manifest.yaml': 'build:\n  command: go\n  args: [build, -o, bin/hello, .]\n  output: bin/hello\n',
    });
  });
  afterAll(() => removeProject(root));
  const alyx = (args: string[]) => runCli(['-C', root, ...args], { env: cleanEnv({ GOFLAGS: '-mod=mod' }), timeoutMs: 120_000 });

  it('runs with go run in development, and as a built executable in production', async () => {
    const development = await alyx(['invoke', 'hello-go', '--dev', '-d', '{"name": "Gopher"}']);
    expect(JSON.parse(development.stdout)).toMatchObject({ success: true, output: { message: 'Hello, Gopher! (from Go)', mode: 'development' } });

    const built = await alyx(['build', 'hello-go']);
    expect(built.code).toBe(0);
    const listed = JSON.parse((await alyx(['list', '--json', '--prod'])).stdout).functions[0];
    expect(listed).toMatchObject({ status: 'ready', exec: 'direct', entry: 'bin/hello', command: [path.join(root, 'functions/hello-go/bin/hello')] });

    const production = await alyx(['invoke', 'hello-go', '--prod', '-d', '{"name": "Prod"}']);
    expect(JSON.parse(production.stdout)).toMatchObject({ success: true, output: { message: 'Hello, Prod! (from Go)', mode: 'production' } });
  }, 180_000);
});
