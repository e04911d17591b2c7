import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { resolveConfig, type Mode } from '../../src/config/resolve';
import { Invoker, type InvocationResult } from '../../src/invoke/invoker';
import { FunctionRegistry, loadSnapshot } from '../../src/functions/registry';
import { ShuttingDownError } from '../../src/errors';
import { owner } from '../../src/process/owner';
import { runProcess } from '../../src/process/runner';
import { spawnFunctionProcess, type SpawnSpec } from '../../src/process/spawn';
import { captureLogs } from '../helpers/logs';
import { isAlive, readPidFile, waitFor } from '../helpers/processes';
import { executable, makeProject, removeProject, type FixtureTree } from '../helpers/project';
import { hasCommand, warnSkip } from '../helpers/tools';

/** Reads the whole request, then answers with what `answer(request)` returns. */
const nodeFunction = (answer: string): string => `
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => {
  const request = JSON.parse(data);
  ${answer}
});
`;

const tree: FixtureTree = {
  'alyx.yaml': 'functions:\n  timeout: 20s\n  max_output: 1mb\n  env:\n    GREETING: Hello\n',
  '.env': 'FROM_DOTENV=yes\nALYX_SECRET=must-not-pass\n',
  'functions/node-ok/index.js': nodeFunction(`
    console.log('a log line before the response');
    console.error('a line on stderr');
    console.log(JSON.stringify({
      success: true,
      output: {
        message: process.env.GREETING + ', ' + request.input.name + '!',
        request_id: request.request_id,
        function: request.function,
        token_length: request.context.internal_token.length,
        context_env: request.context.env,
        mode: process.env.ALYX_MODE,
        fn: process.env.ALYX_FUNCTION,
        dotenv: process.env.FROM_DOTENV,
        alyx_secret: process.env.ALYX_SECRET ?? null,
        cwd: process.cwd(),
      },
      logs: [{ level: 'info', message: 'from the function' }],
    }));`),
  'functions/node-fail/index.js': nodeFunction(
    `console.log(JSON.stringify({ success: false, error: { code: 'NOPE', message: 'not today', status: 422, details: { why: 'test' } } }));`,
  ),
  'functions/node-crash/index.js': nodeFunction(`throw new Error('boom in the function');`),
  'functions/node-garbage/index.js': nodeFunction(`console.log('this is not json'); console.log('{ nor is this');`),
  'functions/node-hang/index.js': `
const { spawn } = require('node:child_process');
const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
require('node:fs').writeFileSync('grandchild.pid', String(sleeper.pid));
setInterval(() => {}, 1000);
`,
  'functions/node-hang/manifest.yaml': 'timeout: 700ms\n',
  'functions/node-big/index.js': nodeFunction(`process.stdout.write(JSON.stringify({ success: true, output: 'x'.repeat(2 * 1024 * 1024) }));`),
  'functions/node-leaves-child/index.js': nodeFunction(`
    const { spawn } = require('node:child_process');
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    child.unref();
    require('node:fs').writeFileSync('leftover.pid', String(child.pid));
    console.log(JSON.stringify({ success: true, output: { left: child.pid } }));`),
  'functions/python-ok/index.py': [
    'import json, os, sys',
    'request = json.load(sys.stdin)',
    'print("python says hi")',
    'print(json.dumps({"success": True, "output": {"message": "Hello, " + request["input"]["name"] + "!", "mode": os.environ["ALYX_MODE"]}}))',
    '',
  ].join('\n'),
  'functions/python-string-error/index.py': [
    'import json, sys',
    'json.load(sys.stdin)',
    'print(json.dumps({"success": False, "error": "it went wrong", "error_code": "PY_FAIL"}))',
    '',
  ].join('\n'),
  // Reports what python shows the script about itself; imports a module beside it.
  'functions/python-self/helper.py': 'NAME = "helper beside the script"\n',
  'functions/python-self/index.py': [
    'import json, os, sys',
    'import helper',
    'json.load(sys.stdin)',
    'print(json.dumps({"success": True, "output": {"argv": sys.argv, "path0": sys.path[0], "file": __file__,',
    '    "name": __name__, "helper": helper.NAME, "globals": sorted(k for k in globals() if not k.startswith("__"))}}))',
    '',
  ].join('\n'),
  'functions/python-atexit/index.py': [
    'import atexit, json, sys',
    'json.load(sys.stdin)',
    'atexit.register(lambda: print(json.dumps({"success": True, "output": {"from": "atexit"}})))',
    '',
  ].join('\n'),
  // Answers, then takes 2 s to tear down: a finalizer runs after every atexit handler.
  'functions/python-slow-teardown/index.py': [
    'import json, os, sys, time',
    'class SlowToFinalize:',
    '    def __init__(self):',
    '        self.sleep = time.sleep',
    '    def __del__(self):',
    '        self.sleep(2)',
    'holder = SlowToFinalize()',
    'json.load(sys.stdin)',
    'print(json.dumps({"success": True, "output": {"pid": os.getpid()}}))',
    '',
  ].join('\n'),
  'functions/python-crash/index.py': 'import json, sys\njson.load(sys.stdin)\nraise RuntimeError("boom in python")\n',
  'functions/python-syntax-error/index.py': 'import json\ndef (:\n',
  'functions/shell-ok/manifest.yaml': 'runtime: binary\nbuild:\n  output: run.sh\n',
  'functions/shell-ok/run.sh': executable('#!/bin/sh\nread -r request\necho "shell: got $(printf %s "$request" | wc -c) bytes" >&2\necho \'{"success": true, "output": {"shell": true}}\'\n'),
  'functions/shell-no-stdin/manifest.yaml': 'runtime: binary\nbuild:\n  output: run.sh\n',
  'functions/shell-no-stdin/run.sh': executable('#!/bin/sh\necho \'{"success": true, "output": {"read": false}}\'\n'),
  'functions/shell-hang/manifest.yaml': 'runtime: binary\ntimeout: 700ms\nbuild:\n  output: run.sh\n',
  'functions/shell-hang/run.sh': executable('#!/bin/sh\nsleep 300 &\necho $! > grandchild.pid\nwait\n'),
  'functions/shell-exit-3/manifest.yaml': 'runtime: binary\nbuild:\n  output: run.sh\n',
  'functions/shell-exit-3/run.sh': executable('#!/bin/sh\necho "fatal: something broke" >&2\nexit 3\n'),
  // Answers, closes its stdout, and goes on for 2 s.
  'functions/shell-closes-stdout/manifest.yaml': 'runtime: binary\nbuild:\n  output: run.sh\n',
  'functions/shell-closes-stdout/run.sh': executable('#!/bin/sh\ncat >/dev/null\necho "{\\"success\\": true, \\"output\\": {\\"pid\\": $$}}"\nexec >&-\nsleep 2\n'),
  // Tells whether what its previous run left behind still runs, leaves a process (not holding its stdout), answers and exits.
  'functions/shell-leaves-sleep/manifest.yaml': 'runtime: binary\nbuild:\n  output: run.sh\n',
  'functions/shell-leaves-sleep/run.sh': executable(
    [
      '#!/bin/sh',
      'cat >/dev/null',
      'previous=false',
      'if [ -f leftover.pid ]; then',
      '  state=$(cut -d" " -f3 "/proc/$(cat leftover.pid)/stat" 2>/dev/null)',
      '  if [ -n "$state" ] && [ "$state" != Z ]; then previous=true; fi',
      'fi',
      // It ignores SIGTERM: ending it takes alyx's grace period and a SIGKILL.
      'sh -c "trap \\"\\" TERM; sleep 300" >/dev/null 2>&1 &',
      'echo $! > leftover.pid',
      'echo "{\\"success\\": true, \\"output\\": {\\"previous_alive\\": $previous, \\"left\\": $!}}"',
      '',
    ].join('\n'),
  ),
  'functions/node-exit-listener/index.js': nodeFunction(
    `process.on('exit', () => console.log(JSON.stringify({ success: true, output: { from: 'exit listener' } })));`,
  ),
};

const C_PROGRAM = `
#include <stdio.h>
int main(void) {
  size_t total = 0; char buffer[4096]; size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, stdin)) > 0) total += n;
  printf("{\\"success\\": true, \\"output\\": {\\"compiled\\": true, \\"bytes_in\\": %zu}}\\n", total);
  return 0;
}
`;

describe('the runner, with real interpreters and executables', () => {
  let root: string;
  const logs = captureLogs();

  function invoker(mode: Mode): Invoker {
    const config = resolveConfig({ projectDir: root, mode, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
    const env = { ...process.env, ALYX_SECRET: 'also-must-not-pass' };
    return new Invoker(config, new FunctionRegistry(() => loadSnapshot(config, env)), logs.logger, env);
  }
  const invoke = (name: string, input: Record<string, unknown> = {}, mode: Mode = 'production'): Promise<InvocationResult> =>
    invoker(mode).invoke(name, input);

  /**
   * With one slot: the function (which reports its pid) is answered while its process still
   * runs, and a second invocation can only start once that process has exited.
   */
  function oneAtATimeInvoker(): Invoker {
    const config = resolveConfig({ projectDir: root, mode: 'production', env: { PATH: process.env.PATH, HOME: process.env.HOME, ALYX_FUNCTIONS_CONCURRENCY: '1' } });
    return new Invoker(config, new FunctionRegistry(() => loadSnapshot(config, process.env)), logs.logger, process.env);
  }

  async function expectAnswerBeforeExitAndSlotHeld(name: string): Promise<void> {
    const oneAtATime = oneAtATimeInvoker();
    const first = await oneAtATime.invoke(name, {});
    const firstPid = (first.output as { pid: number }).pid;
    expect(first.success).toBe(true);
    expect(isAlive(firstPid)).toBe(true);
    const second = await oneAtATime.invoke(name, {});
    expect(second.success).toBe(true);
    expect(isAlive(firstPid)).toBe(false);
    expect(await waitFor(() => !isAlive((second.output as { pid: number }).pid), 5000)).toBe(true);
  }

  beforeAll(() => {
    root = makeProject(tree);
  });
  afterAll(() => removeProject(root));

  describe('node', () => {
    it('passes the request, context and environment, and returns the output', async () => {
      const result = await invoke('node-ok', { name: 'World' });
      expect(result.success).toBe(true);
      expect(result.output).toEqual({
        message: 'Hello, World!',
        request_id: result.requestId,
        function: 'node-ok',
        token_length: 64,
        context_env: { GREETING: 'Hello' },
        mode: 'production',
        fn: 'node-ok',
        dotenv: 'yes',
        alyx_secret: null,
        cwd: path.join(root, 'functions', 'node-ok'),
      });
      expect(result.logs).toEqual([{ level: 'info', message: 'from the function' }]);
    });

    it('logs stdout lines before the response and stderr lines with function name and request id', async () => {
      const result = await invoke('node-ok', { name: 'Log' });
      const mine = logs.lines().filter((line) => line.request_id === result.requestId);
      expect(mine).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ function: 'node-ok', stream: 'stdout', msg: 'a log line before the response' }),
          expect.objectContaining({ function: 'node-ok', stream: 'stderr', msg: 'a line on stderr' }),
        ]),
      );
    });

    it('reports the function error with its code, details and requested status', async () => {
      const result = await invoke('node-fail');
      expect(result.success).toBe(false);
      expect(result.error).toEqual({ code: 'NOPE', message: 'not today', details: { why: 'test' } });
      expect(result.reportedByFunction).toBe(true);
      expect(result.requestedStatus).toBe(422);
    });

    it('turns a crash into EXECUTION_ERROR with the exit code, and stderr in development only', async () => {
      const production = await invoke('node-crash');
      expect(production.error?.code).toBe('EXECUTION_ERROR');
      expect(production.error?.details).toEqual({ exit_code: 1, signal: null });

      const development = await invoke('node-crash', {}, 'development');
      expect(development.error?.code).toBe('EXECUTION_ERROR');
      expect((development.error?.details as { stderr: string }).stderr).toContain('boom in the function');
    });

    it('turns output without a JSON object into EXECUTION_ERROR', async () => {
      const result = await invoke('node-garbage');
      expect(result.error?.code).toBe('EXECUTION_ERROR');
      expect(result.error?.message).toContain('without writing a JSON object');
    });

    it('ends the whole tree on timeout: the grandchild sleep is gone afterwards', async () => {
      const pidFile = path.join(root, 'functions', 'node-hang', 'grandchild.pid');
      const result = await invoke('node-hang');
      expect(result.error?.code).toBe('TIMEOUT');
      expect(result.durationMs).toBeGreaterThanOrEqual(700);
      const grandchild = await readPidFile(pidFile);
      expect(isAlive(grandchild)).toBe(false);
    });

    it('ends a function whose stdout passes max_output with OUTPUT_TOO_LARGE', async () => {
      const result = await invoke('node-big');
      expect(result.error?.code).toBe('OUTPUT_TOO_LARGE');
    });

    it('ends processes a function leaves behind, and logs how many', async () => {
      const result = await invoke('node-leaves-child');
      expect(result.success).toBe(true);
      const leftover = (result.output as { left: number }).left;
      expect(await waitFor(() => !isAlive(leftover))).toBe(true);
      // The answer can come before the exit; the warning comes with the exit.
      const warning = (): Record<string, unknown> | undefined => logs.lines().find((line) => line.request_id === result.requestId && line.level === 40);
      expect(await waitFor(() => warning() !== undefined)).toBe(true);
      expect(warning()).toMatchObject({ processes: 1, msg: expect.stringContaining('left behind') });
    });

    it("still delivers a response written by an 'exit' listener (alyx closes stdout only after the last one)", async () => {
      const result = await invoke('node-exit-listener');
      expect(result).toMatchObject({ success: true, output: { from: 'exit listener' } });
    });

    it('reports a function that does not exist as FUNCTION_NOT_FOUND', async () => {
      const result = await invoke('no-such-function');
      expect(result.error?.code).toBe('FUNCTION_NOT_FOUND');
    });
  });

  describe('python3', () => {
    it('answers after a print line, which is logged', async () => {
      const result = await invoke('python-ok', { name: 'Py' });
      expect(result).toMatchObject({ success: true, output: { message: 'Hello, Py!', mode: 'production' } });
      const printed = logs.lines().find((line) => line.request_id === result.requestId && line.stream === 'stdout');
      expect(printed?.msg).toBe('python says hi');
    });

    it('normalises a string error with error_code', async () => {
      const result = await invoke('python-string-error');
      expect(result.error).toEqual({ code: 'PY_FAIL', message: 'it went wrong' });
    });

    it('runs the script as python would: argv, sys.path[0], __file__, __name__, a module beside it', async () => {
      const result = await invoke('python-self');
      const dir = path.join(root, 'functions', 'python-self');
      expect(result.output).toEqual({
        argv: [path.join(dir, 'index.py')],
        path0: fs.realpathSync(dir),
        file: path.join(dir, 'index.py'),
        name: '__main__',
        helper: 'helper beside the script',
        globals: ['helper', 'json', 'os', 'sys'],
      });
    });

    it('still delivers a response printed by an atexit handler (stdout ends only after the last one)', async () => {
      const result = await invoke('python-atexit');
      expect(result).toMatchObject({ success: true, output: { from: 'atexit' } });
    });

    it('answers before the interpreter has finished tearing down, and holds the slot until it has', async () => {
      await expectAnswerBeforeExitAndSlotHeld('python-slow-teardown');
    });

    it.each(['python-crash', 'python-syntax-error'])('prints the traceback python itself prints for %s, without the preload (development)', async (name) => {
      const result = await invoke(name, {}, 'development');
      expect(result.error).toMatchObject({ code: 'EXECUTION_ERROR', details: { exit_code: 1 } });
      const stderr = (result.error?.details as { stderr: string }).stderr;
      const script = path.join(root, 'functions', name, 'index.py');
      const direct = spawnSync('python3', [script], { cwd: path.dirname(script), input: '{}', encoding: 'utf8' });
      expect(direct.stderr).toContain(`File "${script}", line`);
      expect(stderr.trim()).toBe(direct.stderr.trim());
      expect(stderr).not.toContain('<string>');
    });
  });

  describe('executables run directly', () => {
    it('runs a shell script', async () => {
      const result = await invoke('shell-ok', { name: 'sh' });
      expect(result).toMatchObject({ success: true, output: { shell: true } });
    });

    it('answers even when the function never reads its (large) request', async () => {
      const result = await invoke('shell-no-stdin', { blob: 'y'.repeat(1024 * 1024) });
      expect(result).toMatchObject({ success: true, output: { read: false } });
    });

    it('ends a shell script and its background sleep on timeout', async () => {
      const result = await invoke('shell-hang');
      expect(result.error?.code).toBe('TIMEOUT');
      const grandchild = await readPidFile(path.join(root, 'functions', 'shell-hang', 'grandchild.pid'));
      expect(isAlive(grandchild)).toBe(false);
    });

    it('answers once stdout has ended with a response, and holds the concurrency slot until the process has exited', async () => {
      // The script answers, closes its stdout, and goes on for 2 s.
      await expectAnswerBeforeExitAndSlotHeld('shell-closes-stdout');
    });

    it('ends what a program left behind once it has answered by exiting, before its slot is free', async () => {
      // The answer goes out first; the next invocation can only start once the leftover is gone.
      const oneAtATime = oneAtATimeInvoker();
      const first = await oneAtATime.invoke('shell-leaves-sleep', {});
      expect(first).toMatchObject({ success: true, output: { previous_alive: false } });
      const second = await oneAtATime.invoke('shell-leaves-sleep', {});
      expect(second).toMatchObject({ success: true, output: { previous_alive: false } });
      expect(isAlive((first.output as { left: number }).left)).toBe(false);
      expect(await waitFor(() => !isAlive((second.output as { left: number }).left))).toBe(true);
      const warning = logs.lines().find((line) => line.request_id === first.requestId && line.level === 40);
      // The shell, and its sleep once it has started one.
      expect(warning).toMatchObject({ processes: expect.any(Number), msg: expect.stringContaining('left behind') });
      expect(warning?.processes).toBeGreaterThanOrEqual(1);
    });

    it('reports a non-zero exit without a response as EXECUTION_ERROR with the exit code', async () => {
      const result = await invoke('shell-exit-3');
      expect(result.error).toMatchObject({ code: 'EXECUTION_ERROR', details: { exit_code: 3, signal: null } });
    });

    const cc = hasCommand('cc');
    if (!cc) warnSkip('compiled-program runner test', 'cc');
    (cc ? it : it.skip)('runs a compiled C program', async () => {
      const dir = path.join(root, 'functions', 'c-bin');
      fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'main.c'), C_PROGRAM);
      fs.writeFileSync(path.join(dir, 'manifest.yaml'), 'runtime: binary\nbuild:\n  output: bin/hello\n');
      const compiled = spawnSync('cc', ['-O2', '-o', path.join(dir, 'bin', 'hello'), path.join(dir, 'main.c')], { encoding: 'utf8' });
      expect(compiled.stderr).toBe('');
      const result = await invoke('c-bin', { name: 'C' });
      expect(result.success).toBe(true);
      expect(result.output).toMatchObject({ compiled: true });
      expect((result.output as { bytes_in: number }).bytes_in).toBeGreaterThan(50);
    });
  });
});

describe('runProcess owns the process it is given', () => {
  const logs = captureLogs();
  /** Reads its request, then runs until it is ended. */
  const spec: SpawnSpec = { command: '/bin/sh', args: ['-c', 'cat > /dev/null; exec sleep 30'], cwd: '/tmp', env: { PATH: '/usr/bin:/bin' } };
  const run = (signal: AbortSignal, started?: ReturnType<typeof spawnFunctionProcess>) =>
    runProcess({ ...spec, payload: '{}', timeoutMs: 10_000, maxOutputBytes: 1024, signal, logger: logs.logger }, started);

  it('ends a warm process handed to it with a cancelled invocation, and resolves with the reason', async () => {
    const warm = spawnFunctionProcess(spec, true);
    const pid = warm.pid as number;
    expect(owner.runningLeader(pid)).not.toBeNull();
    const result = await run(AbortSignal.abort(new ShuttingDownError()), warm);
    expect(result.ok ? null : result.error.code).toBe(new ShuttingDownError().code);
    await result.finished;
    expect(isAlive(pid)).toBe(false);
    expect(owner.runningLeader(pid)).toBeNull();
  });

  it('spawns nothing for an invocation cancelled before it starts, and never rejects', async () => {
    const result = await run(AbortSignal.abort());
    expect(result).toMatchObject({ ok: false, error: { code: 'EXECUTION_ERROR' } });
    await result.finished;
  });

  it('resolves with the errno of a program that cannot be started, and frees its slot', async () => {
    const result = await runProcess({ ...spec, command: '/nonexistent/program', payload: '{}', timeoutMs: 10_000, maxOutputBytes: 1024, logger: logs.logger });
    expect(result).toMatchObject({ ok: false, error: { code: 'EXECUTION_ERROR', details: { errno: 'ENOENT' } } });
    await result.finished;
  });
});

describe('processes started beside other invocations (off the JavaScript thread)', () => {
  it('answers each of many concurrent invocations of a program that exits at once without output', async () => {
    const { logger } = captureLogs();
    const spec = { command: '/bin/true', args: [], cwd: '/tmp', env: {}, payload: '{}', timeoutMs: 5000, maxOutputBytes: 1024, logger };
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(Array.from({ length: 16 }, () => runProcess(spec)));
      await Promise.all(results.map((result) => result.finished));
      expect(results.map((result) => (result.ok ? 'ok' : result.error.code))).toEqual(Array(16).fill('EXECUTION_ERROR'));
    }
  }, 30_000);

  it('records each process with the owner from the moment its pid arrives, its request delivered whole', async () => {
    const { logger } = captureLogs();
    const request = JSON.stringify({ body: 'x'.repeat(1024 * 1024) });
    const spec = { command: '/bin/sh', args: ['-c', 'echo "{\\"success\\":true,\\"output\\":$(wc -c)}"; exec sleep 2'], cwd: '/tmp', env: { PATH: '/usr/bin:/bin' }, payload: request, timeoutMs: 5000, maxOutputBytes: 4096, logger };
    const results = await Promise.all(Array.from({ length: 8 }, () => runProcess(spec)));
    for (const result of results) {
      expect(result.ok && result.response.success ? result.response.output : result).toBe(Buffer.byteLength(request));
    }
    // Answered well before the sleep ends (2 s, for a loaded machine): the processes are still the owner's until they are gone.
    expect(owner.runningInvocations().length).toBeGreaterThanOrEqual(1);
    await Promise.all(results.map((result) => result.finished));
    expect(owner.runningInvocations()).toEqual([]);
  }, 30_000);
});
