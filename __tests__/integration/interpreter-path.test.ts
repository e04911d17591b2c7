import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { realInterpreter } from '../../src/functions/interpreter-path';
import { RUNTIME_TABLE } from '../../src/functions/runtimes';
import { cleanEnv, runCli } from '../helpers/cli';
import { executable, makeProject, removeProject } from '../helpers/project';
import { hasCommand, warnSkip } from '../helpers/tools';

const nodeSelfPath = RUNTIME_TABLE.node.selfPathArgs;
/** The real node: this test's own, which is a native executable. */
const realNode = fs.realpathSync(process.execPath);
/** A version manager's shim: a script that looks up the interpreter and execs it. */
const shim = (target: string): string => `#!/bin/sh\n# a version manager's shim\nexec "${target}" "$@"\n`;

let root: string;
beforeEach(() => {
  root = makeProject({
    'shims/node': executable(shim(realNode)),
    'shims/broken': executable('#!/bin/sh\nexit 3\n'),
    'shims/slow': executable('#!/bin/sh\nexec sleep 5\n'),
    'shims/liar': executable('#!/bin/sh\necho not-a-path\n'),
  });
});
afterEach(() => removeProject(root));

describe('realInterpreter: seeing through version-manager shims', () => {
  it('resolves a shim script to the executable the interpreter reports', () => {
    expect(realInterpreter(path.join(root, 'shims/node'), nodeSelfPath, root)).toBe(realNode);
  });

  it('keeps a native executable as it is, without running it', () => {
    expect(realInterpreter(realNode, nodeSelfPath, root)).toBe(realNode);
  });

  it.each([
    ['fails', 'broken'],
    ['prints something that is not an executable', 'liar'],
  ])('keeps the PATH entry when the probe %s', (_what, name) => {
    const file = path.join(root, 'shims', name);
    expect(realInterpreter(file, nodeSelfPath, root)).toBe(file);
  });

  it('keeps the PATH entry when the probe does not answer in time', () => {
    const file = path.join(root, 'shims', 'slow');
    const started = Date.now();
    expect(realInterpreter(file, nodeSelfPath, root, 300)).toBe(file);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('asks each shim once: the answer is cached', () => {
    const file = path.join(root, 'shims/node');
    expect(realInterpreter(file, nodeSelfPath, root)).toBe(realNode);
    fs.writeFileSync(file, '#!/bin/sh\nexit 1\n');
    expect(realInterpreter(file, nodeSelfPath, root)).toBe(realNode);
  });

  it('leaves runtimes without a self-path question (go) alone', () => {
    const file = path.join(root, 'shims/node');
    expect(realInterpreter(file, RUNTIME_TABLE.go.selfPathArgs, root)).toBe(file);
  });
});

describe('alyx list shows the resolved interpreter', () => {
  it('runs the real node behind a shim that comes first on PATH, and names the shim', async () => {
    fs.mkdirSync(path.join(root, 'functions', 'hello'), { recursive: true });
    fs.writeFileSync(path.join(root, 'functions', 'hello', 'index.js'), "process.stdin.resume();\n");
    const env = cleanEnv({ PATH: `${path.join(root, 'shims')}${path.delimiter}${process.env.PATH}` });
    const json = await runCli(['list', '--json', '-C', root], { env });
    expect(json.code).toBe(0);
    const [fn] = JSON.parse(json.stdout).functions;
    expect(fn.command[0]).toBe(realNode);
    expect(fn.shim).toBe(path.join(root, 'shims', 'node'));
    const text = await runCli(['list', '-C', root], { env });
    expect(text.stdout).toContain(`${path.join(root, 'shims', 'node')} is a shim: alyx runs ${realNode}`);
  });

  const python = hasCommand('python3');
  if (!python) warnSkip('python3 shim resolution', 'python3');
  (python ? it : it.skip)('runs python3 through the executable it reports (sys.executable)', async () => {
    fs.mkdirSync(path.join(root, 'functions', 'py'), { recursive: true });
    fs.writeFileSync(path.join(root, 'functions', 'py', 'index.py'), 'import sys\n');
    const json = await runCli(['list', '--json', '-C', root]);
    const [fn] = JSON.parse(json.stdout).functions;
    const real = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { cwd: root, encoding: 'utf8' }).stdout.trim();
    expect(fn.command[0]).toBe(real);
    expect(fs.readFileSync(fn.command[0]).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  });
});
