import fs from 'node:fs';
import path from 'node:path';
import { discoverFunctions } from '../../../src/functions/discovery';
import type { FunctionDef } from '../../../src/functions/types';
import { executable, makeProject, removeProject, type FixtureTree } from '../../helpers/project';

let projects: string[] = [];
afterEach(() => {
  projects.forEach(removeProject);
  projects = [];
});

function project(tree: FixtureTree): string {
  const root = makeProject(tree);
  projects.push(root);
  return root;
}

/** Discovers the functions of a fresh project; `functions/` is prefixed to every path of `tree`. */
function discover(tree: FixtureTree, env: NodeJS.ProcessEnv = {}): { root: string; fns: FunctionDef[] } {
  const root = project(Object.fromEntries(Object.entries(tree).map(([file, entry]) => [`functions/${file}`, entry])));
  return { root, fns: discoverFunctions(path.join(root, 'functions'), env) };
}

/** The one function a tree defines. */
function discoverOne(tree: FixtureTree, env: NodeJS.ProcessEnv = {}): { dir: string; fn: FunctionDef } {
  const { root, fns } = discover(tree, env);
  expect(fns).toHaveLength(1);
  return { dir: path.join(root, 'functions', fns[0].name), fn: fns[0] };
}

/** Discovers the one function of `tree` and expects it invalid, with a reason matching `reason`. */
function expectInvalid(tree: FixtureTree, reason: RegExp): FunctionDef {
  const { fn } = discoverOne(tree);
  expect(fn.invalid).toMatch(reason);
  expect(fn.runtime).toBeNull();
  expect(fn.entry).toBeNull();
  return fn;
}

const HANDLER = '// handler\n';

describe('entry-file table (SPEC §3), first match wins', () => {
  const TABLE: Array<[string, string]> = [
    ['mod.ts', 'node'],
    ['main.ts', 'node'],
    ['index.js', 'node'],
    ['index.mjs', 'node'],
    ['index.cjs', 'node'],
    ['index.ts', 'node'],
    ['index.mts', 'node'],
    ['index.cts', 'node'],
    ['index.tsx', 'bun'],
    ['index.py', 'python'],
    ['main.go', 'go'],
    ['index.go', 'go'],
  ];

  it.each(TABLE.map(([file, runtime], row) => [file, runtime, TABLE.slice(row).map(([later]) => later)]))(
    '%s -> %s, even beside every later row',
    (file, runtime, present) => {
      const { dir, fn } = discoverOne(Object.fromEntries((present as string[]).map((name) => [`fn/${name}`, HANDLER])));
      expect(fn.invalid).toBeNull();
      expect(fn.runtime).toBe(runtime);
      expect(fn.entry).toBe(path.join(dir, file as string));
    },
  );

  it.each([
    ['mod.ts', 'deno.json'],
    ['mod.ts', 'deno.jsonc'],
    ['main.ts', 'deno.json'],
    ['main.ts', 'deno.jsonc'],
  ])('%s is deno when %s is in the folder', (file, config) => {
    const { dir, fn } = discoverOne({ [`fn/${file}`]: HANDLER, [`fn/${config}`]: '{}' });
    expect(fn.runtime).toBe('deno');
    expect(fn.entry).toBe(path.join(dir, file));
  });

  it('a deno.json does not make index.ts deno', () => {
    expect(discoverOne({ 'fn/index.ts': HANDLER, 'fn/deno.json': '{}' }).fn.runtime).toBe('node');
  });

  it('a function without a manifest has no build and no settings', () => {
    const { dir, fn } = discoverOne({ 'fn/index.js': HANDLER });
    expect(fn).toEqual({
      name: 'fn', dir, runtime: 'node', entry: path.join(dir, 'index.js'), manifestFile: null, description: null,
      timeoutMs: null, memoryBytes: null, concurrency: null, pool: null, reuse: false, env: {}, build: null, schedules: [], retries: null,
      routes: [], webhooks: [], auth: 'optional', ignoredHooks: [],
      invalid: null,
    });
  });
});

describe('manifest', () => {
  it('is read whole: settings in units, env expanded, build paths absolute', () => {
    const { dir, fn } = discoverOne(
      {
        'hello-typescript/index.ts': HANDLER,
        'hello-typescript/manifest.yaml': [
          'name: hello-typescript',
          'description: says hello',
          'timeout: 5s',
          'memory: 128',
          'concurrency: 4',
          'pool: 2',
          'reuse: true',
          'retries: 5',
          'env: { GREETING: "hi $WHO", URL: "${HOST}/x" }',
          'build:',
          '  command: npm',
          '  args: [run, build]',
          '  watch: ["src/**/*.ts"]',
          '  output: dist/index.js',
          '',
        ].join('\n'),
      },
      { WHO: 'world', HOST: 'http://h' },
    );
    expect(fn).toEqual({
      name: 'hello-typescript',
      dir,
      runtime: 'node',
      entry: path.join(dir, 'index.ts'),
      manifestFile: path.join(dir, 'manifest.yaml'),
      description: 'says hello',
      timeoutMs: 5_000,
      memoryBytes: 128 * 1024 * 1024,
      concurrency: 4,
      pool: 2,
      reuse: true,
      env: { GREETING: 'hi world', URL: 'http://h/x' },
      build: { command: 'npm', args: ['run', 'build'], watch: ['src/**/*.ts'], output: path.join(dir, 'dist/index.js') },
      schedules: [],
      retries: 5,
      routes: [],
      webhooks: [],
      auth: 'optional',
      ignoredHooks: [],
      invalid: null,
    });
  });

  it('manifest.yml is read too', () => {
    const { dir, fn } = discoverOne({ 'fn/index.js': HANDLER, 'fn/manifest.yml': 'description: yml\n' });
    expect(fn.manifestFile).toBe(path.join(dir, 'manifest.yml'));
    expect(fn.description).toBe('yml');
  });

  it('entry overrides the table, and the runtime follows its extension', () => {
    const { dir, fn } = discoverOne({
      'fn/index.js': HANDLER,
      'fn/src/handler.py': HANDLER,
      'fn/manifest.yaml': 'entry: src/handler.py\n',
    });
    expect(fn.invalid).toBeNull();
    expect(fn.entry).toBe(path.join(dir, 'src/handler.py'));
    expect(fn.runtime).toBe('python');
  });

  it('runtime overrides detection from the entry file', () => {
    const { dir, fn } = discoverOne({ 'fn/index.ts': HANDLER, 'fn/manifest.yaml': 'runtime: bun\n' });
    expect(fn.runtime).toBe('bun');
    expect(fn.entry).toBe(path.join(dir, 'index.ts'));
  });

  it('runtime and entry together', () => {
    const { dir, fn } = discoverOne({ 'fn/app/server.ts': HANDLER, 'fn/manifest.yaml': 'runtime: deno\nentry: app/server.ts\n' });
    expect(fn.runtime).toBe('deno');
    expect(fn.entry).toBe(path.join(dir, 'app/server.ts'));
  });

  it('runtime binary needs no entry file: entry null, build.output the executable', () => {
    const { dir, fn } = discoverOne({
      'tool/bin/app': executable('#!/bin/sh\n'),
      'tool/manifest.yaml': 'runtime: binary\nbuild:\n  output: bin/app\n',
    });
    expect(fn.invalid).toBeNull();
    expect(fn.runtime).toBe('binary');
    expect(fn.entry).toBeNull();
    expect(fn.build).toEqual({ command: null, args: [], watch: null, output: path.join(dir, 'bin/app') });
  });

  it('runtime binary with build.command keeps it (alyx builds it)', () => {
    const { fn } = discoverOne({ 'tool/manifest.yaml': 'runtime: binary\nbuild:\n  command: make\n  output: out/tool\n' });
    expect(fn.invalid).toBeNull();
    expect(fn.build?.command).toBe('make');
  });

  it('runtime binary without build is invalid: it needs build.output', () => {
    expectInvalid({ 'tool/manifest.yaml': 'runtime: binary\n' }, /build\.output/);
  });

  it('a runtime named in the manifest with none of its entry files is invalid, saying what to add', () => {
    expectInvalid({ 'fn/index.js': HANDLER, 'fn/manifest.yaml': 'runtime: python\n' }, /add one of index\.py/);
  });

  it('an entry that does not exist is invalid', () => {
    expectInvalid({ 'fn/index.js': HANDLER, 'fn/manifest.yaml': 'entry: src/missing.js\n' }, /src\/missing\.js.*does not exist/);
  });

  it('a name different from the folder name is invalid, naming both', () => {
    const fn = expectInvalid({ 'fn/index.js': HANDLER, 'fn/manifest.yaml': 'name: other\n' }, /"other".*"fn"/);
    expect(fn.manifestFile).toMatch(/manifest\.yaml$/);
  });

  it('the keys of the earlier server alyx ignores (routes, hooks, dependencies) are accepted', () => {
    const { fn } = discoverOne({
      'fn/index.js': HANDLER,
      'fn/manifest.yaml': 'routes: [{ path: /x }]\nhooks: []\nschedules: []\ndependencies: [lodash]\n',
    });
    expect(fn.invalid).toBeNull();
    expect(fn.runtime).toBe('node');
    expect(fn.schedules).toEqual([]);
  });
});

describe('schedules (SPEC §12)', () => {
  it('are read with their defaults: timezone UTC, input {}, enabled', () => {
    const { fn } = discoverOne({
      'reports/index.js': HANDLER,
      'reports/manifest.yaml': [
        'schedules:',
        '  - { name: nightly, type: cron, expression: "0 3 * * *", timezone: Europe/Berlin, config: { input: { kind: full } } }',
        '  - { name: poll, type: interval, expression: 5m, enabled: false }',
        '  - { name: launch, type: one_time, expression: 2026-05-01T10:00:00Z }',
        '',
      ].join('\n'),
    });
    expect(fn.invalid).toBeNull();
    expect(fn.retries).toBeNull();
    expect(fn.schedules).toEqual([
      { name: 'nightly', type: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin', input: { kind: 'full' }, enabled: true },
      { name: 'poll', type: 'interval', expression: '5m', timezone: 'UTC', input: {}, enabled: false, intervalMs: 300_000 },
      { name: 'launch', type: 'one_time', expression: '2026-05-01T10:00:00Z', timezone: 'UTC', input: {}, enabled: true, at: Date.parse('2026-05-01T10:00:00Z') },
    ]);
  });

  it('a bad expression makes the function invalid, naming the schedule; the others are unaffected', () => {
    const { fns } = discover({
      'broken/index.js': HANDLER,
      'broken/manifest.yaml': 'schedules:\n  - { name: ok, type: interval, expression: 1h }\n  - { name: nightly, type: cron, expression: "61 * * * *" }\n',
      'fine/index.js': HANDLER,
    });
    expect(fns.map((fn) => [fn.name, fn.invalid === null])).toEqual([['broken', false], ['fine', true]]);
    expect(fns[0]).toMatchObject({ runtime: null, schedules: [], manifestFile: expect.stringMatching(/manifest\.yaml$/) });
    expect(fns[0].invalid).toBe(
      'manifest.yaml: schedules[1] "nightly": expression "61 * * * *" is not a valid cron expression (Invalid value for minute: 61): ' +
        'write 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or one of @hourly, @daily, @weekly, @monthly, @yearly, @annually, @midnight',
    );
  });

  it.each([
    ['an unknown timezone', '{ name: a, type: cron, expression: "@daily", timezone: Mars/Olympus }', /schedules\[0\] "a": timezone "Mars\/Olympus" is not an IANA time zone/],
    ['a name used twice', '{ name: a, type: cron, expression: "@daily" }\n  - { name: a, type: interval, expression: 1h }', /schedules\[1\] "a": the name is already used by schedules\[0\]/],
    ['an unknown type (schema)', '{ name: a, type: weekly, expression: "@daily" }', /schedules\.0\.type: must be one of cron, interval, one_time \(got "weekly"\)/],
    ['a missing expression (schema)', '{ name: a, type: cron }', /schedules\.0\.expression: is required/],
    ['an unknown key (schema)', '{ name: a, type: cron, expression: "@daily", cron: "@daily" }', /schedules\.0\.cron: unknown key/],
  ])('%s makes the function invalid', (_what, item, reason) => {
    expectInvalid({ 'fn/index.js': HANDLER, 'fn/manifest.yaml': `schedules:\n  - ${item}\n` }, reason);
  });

  it.each([['-1'], ['101'], ['2.5'], ['"3"']])('retries %s is out of range or not an integer', (retries) => {
    expectInvalid({ 'fn/index.js': HANDLER, 'fn/manifest.yaml': `retries: ${retries}\n` }, /manifest\.yaml: retries: must be/);
  });
});

describe('invalid functions are listed with their reason; the others are unaffected', () => {
  it.each([
    ['an unknown key', 'handler: index.js\n', /manifest\.yaml.*handler: unknown key/],
    ['a bad duration', 'timeout: forever\n', /manifest\.yaml.*timeout: must be a duration/],
    ['build without command', 'build:\n  output: dist/index.js\n', /manifest\.yaml.*build\.command: is required/],
    ['a YAML syntax error', 'env: [unclosed\n', /manifest\.yaml is not valid YAML/],
    ['a list at the top level', '- node\n', /manifest\.yaml must be a mapping/],
  ])('a manifest with %s', (_what, manifest, reason) => {
    const { fns } = discover({
      'broken/index.js': HANDLER,
      'broken/manifest.yaml': manifest,
      'fine/index.js': HANDLER,
    });
    expect(fns.map((fn) => fn.name)).toEqual(['broken', 'fine']);
    expect(fns[0].invalid).toMatch(reason);
    expect(fns[0].manifestFile).toMatch(/manifest\.yaml$/);
    expect(fns[1]).toMatchObject({ invalid: null, runtime: 'node' });
  });

  it('a folder with no entry file: the reason says what to add', () => {
    expectInvalid({ 'empty/README.md': 'nothing to run' }, /no entry file: add one of .*index\.js.*index\.py.*main\.go.*or a manifest\.yaml with entry or runtime/);
  });

  it.each(['has space', 'dotted.name', '-leading-dash', 'a'.repeat(65), 'ünïcode'])('a folder named %p is invalid', (name) => {
    const { fns } = discover({ [`${name}/index.js`]: HANDLER, 'ok/index.js': HANDLER });
    const bad = fns.find((fn) => fn.name === name);
    expect(bad?.invalid).toMatch(/not a valid function name/);
    expect(fns.find((fn) => fn.name === 'ok')?.invalid).toBeNull();
  });

  it.each(['a', '9lives', 'A_b-C', 'x'.repeat(64)])('a folder named %p is a valid name', (name) => {
    expect(discoverOne({ [`${name}/index.js`]: HANDLER }).fn.invalid).toBeNull();
  });
});

describe('entry and build.output must stay inside the function folder', () => {
  const outside = { 'elsewhere/index.js': HANDLER, 'elsewhere/bin/app': executable('#!/bin/sh\n') };

  it.each([
    ['entry', 'by ..', (_root: string) => 'entry: ../../elsewhere/index.js\n'],
    ['entry', 'by an absolute path', (root: string) => `entry: ${path.join(root, 'elsewhere/index.js')}\n`],
    ['entry', 'through a symbolic link', (_root: string) => 'entry: link.js\n'],
    ['entry', 'through a linked folder', (_root: string) => 'entry: linked/index.js\n'],
    ['build.output', 'by ..', (_root: string) => 'build: { command: make, output: ../../elsewhere/bin/app }\n'],
    ['build.output', 'by an absolute path', (root: string) => `build: { command: make, output: ${path.join(root, 'elsewhere/bin/app')} }\n`],
    ['build.output', 'through a symbolic link', (_root: string) => 'build: { command: make, output: link.js }\n'],
    ['build.output', 'through a linked folder not yet built', (_root: string) => 'build: { command: make, output: linked/not-built-yet }\n'],
    ['build.output', 'through a symbolic link to a file not yet built', (_root: string) => 'build: { command: make, output: dangling }\n'],
  ])('%s escaping %s is invalid', (key, _how, manifest) => {
    const root = project({
      ...outside,
      'functions/fn/index.js': HANDLER,
      'functions/fn/link.js': { symlink: '../../elsewhere/index.js' },
      'functions/fn/linked': { symlink: '../../elsewhere' },
      'functions/fn/dangling': { symlink: '../../elsewhere/not-built-yet' },
    });
    fs.writeFileSync(path.join(root, 'functions/fn/manifest.yaml'), manifest(root));
    const [fn] = discoverFunctions(path.join(root, 'functions'), {});
    expect(fn.invalid).toMatch(new RegExp(`^${key.replace('.', '\\.')} `));
    expect(fn.invalid).toMatch(/inside the function folder|outside the function folder/);
    expect(fn.runtime).toBeNull();
  });

  it('an entry file found by the table that links outside the folder is invalid', () => {
    const root = project({ ...outside, 'functions/fn/index.js': { symlink: '../../elsewhere/index.js' } });
    const [fn] = discoverFunctions(path.join(root, 'functions'), {});
    expect(fn.invalid).toMatch(/^entry "index\.js" leads outside the function folder through a symbolic link/);
  });

  it('a symbolic link that stays inside the folder is fine', () => {
    const { dir, fn } = discoverOne({
      'fn/src/real.js': HANDLER,
      'fn/handler.js': { symlink: 'src/real.js' },
      'fn/manifest.yaml': 'entry: handler.js\nbuild: { command: make, output: out/../dist/index.js }\n',
    });
    expect(fn.invalid).toBeNull();
    expect(fn.entry).toBe(path.join(dir, 'handler.js'));
    expect(fn.build?.output).toBe(path.join(dir, 'dist/index.js'));
  });

  it('a function folder that is a symbolic link to outside the functions folder is invalid', () => {
    const root = project({ 'elsewhere/index.js': HANDLER, 'functions/linked': { symlink: '../elsewhere' }, 'functions/ok/index.js': HANDLER });
    const fns = discoverFunctions(path.join(root, 'functions'), {});
    expect(fns.map((fn) => [fn.name, fn.invalid === null])).toEqual([['linked', false], ['ok', true]]);
    expect(fns[0].invalid).toMatch(/symbolic link.*outside the functions folder/);
  });
});

describe('the functions folder', () => {
  it('skips folders starting with . or _, node_modules, and plain files', () => {
    const { fns } = discover({
      '.hidden/index.js': HANDLER,
      '_shared/index.js': HANDLER,
      'node_modules/index.js': HANDLER,
      'README.md': 'not a function',
      'index.js': HANDLER,
      'real/index.js': HANDLER,
    });
    expect(fns.map((fn) => fn.name)).toEqual(['real']);
  });

  it('may itself be reached through a symbolic link', () => {
    const root = project({ 'src/fns/a/index.js': HANDLER, functions: { symlink: 'src/fns' } });
    const fns = discoverFunctions(path.join(root, 'functions'), {});
    expect(fns).toEqual([expect.objectContaining({ name: 'a', invalid: null, entry: path.join(root, 'functions/a/index.js') })]);
  });

  it('a missing functions folder means no functions', () => {
    const root = project({});
    expect(discoverFunctions(path.join(root, 'functions'), {})).toEqual([]);
  });

  it('lists the functions sorted by name', () => {
    const { fns } = discover({
      'zeta/index.js': HANDLER,
      'alpha/index.py': HANDLER,
      'mid/main.go': HANDLER,
      'beta/README.md': 'invalid, still listed in order',
    });
    expect(fns.map((fn) => fn.name)).toEqual(['alpha', 'beta', 'mid', 'zeta']);
  });
});
