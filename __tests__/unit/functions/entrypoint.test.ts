import path from 'node:path';
import type { Mode } from '../../../src/config/resolve';
import { planExecution, type PlanContext } from '../../../src/functions/entrypoint';
import type { BuildConfig, FunctionDef, Runtime } from '../../../src/functions/types';

const PROJECT = '/proj';
const LOADER = 'file:///alyx/node_modules/tsx/dist/esm/index.mjs';
const ALL_INTERPRETERS = ['node', 'deno', 'bun', 'python3', 'go'];
const MODES: Mode[] = ['development', 'production'];

/** The world as planning sees it: files that exist, which are executable, what is on PATH. */
interface World {
  mode: Mode;
  files?: string[];
  executables?: string[];
  onPath?: string[];
  runtimes?: PlanContext['runtimes'];
  typeScriptLoader?: string | null;
}

interface FakeContext extends PlanContext {
  lookups: Array<[string, string]>;
}

function context(world: World): FakeContext {
  const executables = new Set(world.executables ?? []);
  const files = new Set([...(world.files ?? []), ...executables]);
  const onPath = new Set(world.onPath ?? ALL_INTERPRETERS);
  const lookups: Array<[string, string]> = [];
  return {
    mode: world.mode,
    projectDir: PROJECT,
    runtimes: world.runtimes ?? {},
    typeScriptLoader: world.typeScriptLoader === undefined ? LOADER : world.typeScriptLoader,
    lookups,
    findExecutable(command, baseDir) {
      lookups.push([command, baseDir]);
      if (path.isAbsolute(command)) return executables.has(command) ? command : null;
      return onPath.has(command) ? `/usr/bin/${command}` : null;
    },
    exists: (file) => files.has(file),
    isExecutable: (file) => executables.has(file),
  };
}

const dirOf = (name: string): string => path.join(PROJECT, 'functions', name);

/** A valid function `fn` with this runtime and entry (relative to its folder), and optionally a build. */
function fn(runtime: Runtime, entry: string | null, build?: Partial<BuildConfig> & { output: string }): FunctionDef {
  const dir = dirOf('fn');
  return {
    name: 'fn', dir, runtime, entry: entry === null ? null : path.join(dir, entry), manifestFile: null,
    description: null, timeoutMs: null, memoryBytes: null, concurrency: null, pool: null, reuse: false, env: {}, schedules: [], retries: null, routes: [], webhooks: [], auth: 'optional', ignoredHooks: [], invalid: null,
    build: build
      ? { command: 'make', args: [], watch: null, ...build, output: path.join(dir, build.output) }
      : null,
  };
}

const inFn = (file: string): string => path.join(dirOf('fn'), file);

describe('no build: interpreter + source entry in both modes', () => {
  const ROWS: Array<[Runtime, string, string, string[]]> = [
    ['node', 'index.js', '/usr/bin/node', [inFn('index.js')]],
    ['deno', 'mod.ts', '/usr/bin/deno', ['run', '--allow-all', inFn('mod.ts')]],
    ['bun', 'index.tsx', '/usr/bin/bun', ['run', inFn('index.tsx')]],
    ['python', 'index.py', '/usr/bin/python3', [inFn('index.py')]],
    ['go', 'main.go', '/usr/bin/go', ['run', '.']],
  ];

  it.each(MODES.flatMap((mode) => ROWS.map((row) => [mode, ...row] as const)))(
    '%s: %s %s runs %s %j',
    (mode, runtime, entry, command, args) => {
      expect(planExecution(fn(runtime, entry), context({ mode }))).toEqual({
        status: 'ready', message: null, exec: 'interpreter', from: 'source', file: inFn(entry), command, args,
      });
    },
  );

  it('looks interpreters up from the project folder (PATH and node_modules/.bin)', () => {
    const ctx = context({ mode: 'development' });
    planExecution(fn('deno', 'mod.ts'), ctx);
    expect(ctx.lookups).toEqual([['deno', PROJECT]]);
  });
});

describe('build, runtime node/deno/bun/python', () => {
  it.each([
    ['node', 'index.ts', 'dist/index.js'],
    ['deno', 'mod.ts', 'dist/index.js'],
    ['bun', 'index.tsx', 'dist/index.js'],
    ['python', 'index.py', 'dist/app.py'],
  ] as const)('development runs %s from source %s, built or not', (runtime, entry, output) => {
    const plan = planExecution(fn(runtime, entry, { output }), context({ mode: 'development' }));
    expect(plan).toMatchObject({ status: 'ready', exec: 'interpreter', from: 'source', file: inFn(entry) });
    expect(plan.args).toContain(inFn(entry));
  });

  it.each(['node', 'deno', 'bun', 'python'] as const)('production %s: a missing output is not_built, saying to run alyx build', (runtime) => {
    const plan = planExecution(fn(runtime, 'index.x', { output: 'dist/out' }), context({ mode: 'production' }));
    expect(plan).toMatchObject({ status: 'not_built', from: 'output', file: inFn('dist/out'), command: null });
    expect(plan.message).toContain('run "alyx build fn"');
  });

  it.each(['node', 'deno', 'bun', 'python'] as const)('production %s: an executable output is spawned directly, without arguments', (runtime) => {
    const output = inFn('dist/server');
    expect(planExecution(fn(runtime, 'index.x', { output: 'dist/server' }), context({ mode: 'production', executables: [output] }))).toEqual({
      status: 'ready', message: null, exec: 'direct', from: 'output', file: output, command: output, args: [],
    });
  });

  it('production: an executable output needs no interpreter', () => {
    const output = inFn('dist/index.js');
    const plan = planExecution(fn('node', 'index.ts', { output: 'dist/index.js' }), context({ mode: 'production', executables: [output], onPath: [] }));
    expect(plan).toMatchObject({ status: 'ready', exec: 'direct', command: output });
  });

  it.each([
    ['node', 'dist/index.js', '/usr/bin/node', []],
    ['node', 'dist/index.mjs', '/usr/bin/node', []],
    ['node', 'dist/index.cjs', '/usr/bin/node', []],
    ['deno', 'dist/bundle.js', '/usr/bin/deno', ['run', '--allow-all']],
    ['bun', 'dist/index.mjs', '/usr/bin/bun', ['run']],
    ['python', 'dist/app.py', '/usr/bin/python3', []],
  ] as const)('production %s: a non-executable %s runs through the interpreter', (runtime, output, command, args) => {
    const file = inFn(output);
    expect(planExecution(fn(runtime, 'index.ts', { output }), context({ mode: 'production', files: [file] }))).toEqual({
      status: 'ready', message: null, exec: 'interpreter', from: 'output', file, command, args: [...args, file],
    });
  });

  it('production: a JavaScript output of a TypeScript source needs no loader', () => {
    const file = inFn('dist/index.js');
    const plan = planExecution(fn('node', 'index.ts', { output: 'dist/index.js' }), context({ mode: 'production', files: [file], typeScriptLoader: null }));
    expect(plan).toMatchObject({ status: 'ready', command: '/usr/bin/node', args: [file] });
  });

  it.each([
    ['node', 'dist/server'],
    ['node', 'dist/app.py'],
    ['python', 'dist/index.js'],
    ['deno', 'dist/app.py'],
  ] as const)('production %s: a non-executable %s of a foreign extension is not_executable, saying chmod +x', (runtime, output) => {
    const file = inFn(output);
    const plan = planExecution(fn(runtime, 'index.x', { output }), context({ mode: 'production', files: [file] }));
    expect(plan).toMatchObject({ status: 'not_executable', from: 'output', file, command: null, args: [] });
    expect(plan.message).toContain(`chmod +x functions/fn/${output}`);
  });

  it('production: the interpreter an output needs may be missing', () => {
    const file = inFn('dist/app.py');
    const plan = planExecution(fn('python', 'index.py', { output: 'dist/app.py' }), context({ mode: 'production', files: [file], onPath: [] }));
    expect(plan).toMatchObject({ status: 'runtime_missing', from: 'output', command: null });
    expect(plan.message).toContain('install Python 3');
  });
});

describe('build, runtime go', () => {
  const build = { command: 'go', args: ['build', '-o', 'bin/hello', '.'], output: 'bin/hello' };
  const output = inFn('bin/hello');

  it('development: go run . in the folder, whether built or not', () => {
    expect(planExecution(fn('go', 'main.go', build), context({ mode: 'development', executables: [output] }))).toEqual({
      status: 'ready', message: null, exec: 'interpreter', from: 'source', file: inFn('main.go'), command: '/usr/bin/go', args: ['run', '.'],
    });
  });

  it('production: the output, executed directly; go itself is not needed', () => {
    expect(planExecution(fn('go', 'main.go', build), context({ mode: 'production', executables: [output], onPath: [] }))).toEqual({
      status: 'ready', message: null, exec: 'direct', from: 'output', file: output, command: output, args: [],
    });
  });

  it('production: not built yet', () => {
    const plan = planExecution(fn('go', 'main.go', build), context({ mode: 'production' }));
    expect(plan.status).toBe('not_built');
    expect(plan.message).toContain('run "alyx build fn"');
  });

  it('production: an output without the executable bit is not_executable', () => {
    const plan = planExecution(fn('go', 'main.go', build), context({ mode: 'production', files: [output] }));
    expect(plan.status).toBe('not_executable');
    expect(plan.message).toContain('chmod +x functions/fn/bin/hello');
  });
});

describe('runtime binary: build.output executed directly in both modes', () => {
  const output = inFn('bin/tool');

  it.each(MODES)('%s: ready, direct, no interpreter needed', (mode) => {
    expect(planExecution(fn('binary', null, { output: 'bin/tool', command: null }), context({ mode, executables: [output], onPath: [] }))).toEqual({
      status: 'ready', message: null, exec: 'direct', from: 'output', file: output, command: output, args: [],
    });
  });

  it.each(MODES)('%s: present but not executable is not_executable, saying chmod +x', (mode) => {
    const plan = planExecution(fn('binary', null, { output: 'bin/tool', command: null }), context({ mode, files: [output] }));
    expect(plan).toMatchObject({ status: 'not_executable', command: null });
    expect(plan.message).toContain('chmod +x functions/fn/bin/tool');
  });

  it.each(MODES)('%s: missing with build.command is not_built, saying to run alyx build', (mode) => {
    const plan = planExecution(fn('binary', null, { output: 'bin/tool', command: 'make' }), context({ mode }));
    expect(plan.status).toBe('not_built');
    expect(plan.message).toContain('run "alyx build fn"');
  });

  it('missing without build.command (prebuilt) is not_built, and does not suggest alyx build', () => {
    const plan = planExecution(fn('binary', null, { output: 'bin/tool', command: null }), context({ mode: 'production' }));
    expect(plan.status).toBe('not_built');
    expect(plan.message).toContain('bin/tool');
    expect(plan.message).not.toContain('alyx build');
  });
});

describe('runtime_missing says what to install', () => {
  it.each([
    ['node', 'index.js', /node was not found: install Node\.js/],
    ['deno', 'mod.ts', /deno was not found: install deno or add it to the project's devDependencies/],
    ['bun', 'index.tsx', /bun was not found: install bun or add it to the project's devDependencies/],
    ['python', 'index.py', /python3 was not found: install Python 3/],
    ['go', 'main.go', /go was not found: install Go/],
  ] as const)('%s', (runtime, entry, message) => {
    const plan = planExecution(fn(runtime, entry), context({ mode: 'development', onPath: [] }));
    expect(plan).toMatchObject({ status: 'runtime_missing', from: 'source', file: inFn(entry), command: null, args: [] });
    expect(plan.message).toMatch(message);
  });
});

describe('python', () => {
  const venvPython = inFn('.venv/bin/python');

  it.each(MODES)("%s: prefers the folder's .venv/bin/python", (mode) => {
    const plan = planExecution(fn('python', 'index.py'), context({ mode, executables: [venvPython] }));
    expect(plan).toMatchObject({ status: 'ready', command: venvPython, args: [inFn('index.py')] });
  });

  it('uses the .venv even when python3 is not on PATH', () => {
    const plan = planExecution(fn('python', 'index.py'), context({ mode: 'development', executables: [venvPython], onPath: [] }));
    expect(plan).toMatchObject({ status: 'ready', command: venvPython });
  });

  it('without a .venv, python3', () => {
    expect(planExecution(fn('python', 'index.py'), context({ mode: 'development' })).command).toBe('/usr/bin/python3');
  });
});

describe('TypeScript entries run under node through the shipped loader', () => {
  it.each(['index.ts', 'index.mts', 'index.cts', 'main.ts'])('%s gets --import <loader> before the entry', (entry) => {
    expect(planExecution(fn('node', entry), context({ mode: 'development' }))).toMatchObject({
      status: 'ready', command: '/usr/bin/node', args: ['--import', LOADER, inFn(entry)],
    });
  });

  it.each(['index.js', 'index.mjs', 'index.cjs'])('%s needs no loader', (entry) => {
    expect(planExecution(fn('node', entry), context({ mode: 'development', typeScriptLoader: null })).args).toEqual([inFn(entry)]);
  });

  it('without the loader a TypeScript entry is runtime_missing, saying so', () => {
    const plan = planExecution(fn('node', 'index.ts'), context({ mode: 'development', typeScriptLoader: null }));
    expect(plan).toMatchObject({ status: 'runtime_missing', command: null });
    expect(plan.message).toMatch(/TypeScript loader/);
  });

  it.each([
    ['deno', 'mod.ts', ['run', '--allow-all']],
    ['bun', 'index.ts', ['run']],
  ] as const)('%s runs %s natively, without the loader', (runtime, entry, args) => {
    expect(planExecution(fn(runtime, entry), context({ mode: 'development', typeScriptLoader: null }))).toMatchObject({
      status: 'ready', args: [...args, inFn(entry)],
    });
  });
});

describe('runtimes: overrides the command and args placed before the entry', () => {
  const runtimes = { python: { command: 'python3.12', args: ['-X', 'utf8'] }, node: { command: 'node22', args: ['--no-warnings'] } };

  it('python: the override command and its args', () => {
    const ctx = context({ mode: 'development', runtimes, onPath: ['python3.12'] });
    expect(planExecution(fn('python', 'index.py'), ctx)).toMatchObject({
      status: 'ready', command: '/usr/bin/python3.12', args: ['-X', 'utf8', inFn('index.py')],
    });
    expect(ctx.lookups).toEqual([['python3.12', PROJECT]]);
  });

  it('node with a TypeScript entry: the override args and the loader, all before the entry', () => {
    const plan = planExecution(fn('node', 'index.ts'), context({ mode: 'development', runtimes, onPath: ['node22'] }));
    expect(plan.command).toBe('/usr/bin/node22');
    expect(plan.args).toHaveLength(4);
    expect(plan.args[3]).toBe(inFn('index.ts'));
    expect(plan.args).toContain('--no-warnings');
    expect(plan.args[plan.args.indexOf('--import') + 1]).toBe(LOADER);
  });

  it('an override command that is not found is runtime_missing, naming it', () => {
    const plan = planExecution(fn('python', 'index.py'), context({ mode: 'development', runtimes }));
    expect(plan.status).toBe('runtime_missing');
    expect(plan.message).toContain('python3.12 was not found');
  });

  it('a runtime without an override keeps its own command', () => {
    expect(planExecution(fn('bun', 'index.tsx'), context({ mode: 'development', runtimes })).command).toBe('/usr/bin/bun');
  });
});

describe('invalid functions stay invalid', () => {
  it.each(MODES)('%s: status invalid with the reason, nothing to spawn', (mode) => {
    const invalid: FunctionDef = { ...fn('node', 'index.js', { output: 'dist/index.js' }), runtime: null, entry: null, invalid: 'manifest.yaml: handler: unknown key' };
    expect(planExecution(invalid, context({ mode, executables: [inFn('dist/index.js')] }))).toMatchObject({
      status: 'invalid', message: 'manifest.yaml: handler: unknown key', command: null, args: [],
    });
  });
});

describe('interpreter shims', () => {
  it('runs the real executable behind a shim, asking with the runtime\'s self-path arguments, and names the shim', () => {
    const asked: Array<[string, readonly string[] | undefined]> = [];
    const world = {
      ...context({ mode: 'production' }),
      realInterpreter(found: string, selfPathArgs: readonly string[] | undefined) {
        asked.push([found, selfPathArgs]);
        return found === '/usr/bin/python3' ? '/opt/python/3.12/bin/python3' : found;
      },
    };
    const python = planExecution(fn('python', 'index.py'), world);
    expect([python.command, python.shim]).toEqual(['/opt/python/3.12/bin/python3', '/usr/bin/python3']);
    expect(asked).toEqual([['/usr/bin/python3', ['-c', 'import sys; print(sys.executable)']]]);
    const node = planExecution(fn('node', 'index.js'), world);
    expect([node.command, node.shim]).toEqual(['/usr/bin/node', undefined]);
  });

  it("runs the function's own .venv/bin/python as it is, even when it is a wrapper script", () => {
    const venvPython = path.join(dirOf('fn'), '.venv/bin/python');
    const asked: string[] = [];
    const world = {
      ...context({ mode: 'production', executables: [venvPython] }),
      realInterpreter(found: string) {
        asked.push(found);
        return '/usr/bin/python3.11';
      },
    };
    const plan = planExecution(fn('python', 'index.py'), world);
    expect([plan.command, plan.shim]).toEqual([venvPython, undefined]);
    expect(asked).toEqual([]);
  });
});
