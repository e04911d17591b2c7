import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { SCHEMA_DIR, ignoredKeyPaths, validateAgainst, type SchemaName } from '../../../src/config/schemas';
import { DURATION_PATTERN_SOURCE, SIZE_PATTERN_SOURCE } from '../../../src/config/units';

const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';

function readSchemaFile(name: SchemaName): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, `${name}.schema.json`), 'utf8')) as Record<string, unknown>;
}

describe.each<SchemaName>(['alyx', 'manifest'])('schemas/%s.schema.json', (name) => {
  it('is JSON that declares draft-07 and is valid against the draft-07 meta-schema', () => {
    const schema = readSchemaFile(name);
    expect(schema.$schema).toBe(DRAFT_07);
    const ajv = new Ajv({ allowUnionTypes: true });
    expect(ajv.validateSchema(schema)).toBe(true);
    expect(ajv.errors).toBeNull();
  });

  it('compiles, with the size and duration formats alyx defines', () => {
    const ajv = new Ajv({ allowUnionTypes: true, strictRequired: false });
    ajv.addKeyword({ keyword: 'x-mode-default', schemaType: 'object' });
    ajv.addFormat('size', true);
    ajv.addFormat('duration', true);
    expect(typeof ajv.compile(readSchemaFile(name))).toBe('function');
  });

  it('accepts an empty document: every key is optional', () => {
    expect(validateAgainst(name, {})).toEqual([]);
  });
});

describe('alyx schema', () => {
  it("marks exactly SPEC §2's keys of the earlier server as ignored (auth.*: every key of auth but auth.jwt's four)", () => {
    const ignored = ignoredKeyPaths('alyx').map((keyPath) => keyPath.join('.'));
    expect(ignored.sort()).toEqual(
      [
        'database', 'auth.*', 'auth.jwt.*', 'realtime', 'docs', 'admin_ui',
        'server.tls.auto_tls', 'server.tls.domain',
        'functions.enabled', 'functions.runtime', 'functions.cpu_limit', 'functions.pools',
        'logging.caller', 'logging.timestamp', 'logging.output',
        'dev.auto_migrate', 'dev.auto_generate', 'dev.generate_languages', 'dev.generate_output',
      ].sort(),
    );
  });

  it('fills in the defaults when asked to', () => {
    const data: Record<string, Record<string, unknown>> = {};
    expect(validateAgainst('alyx', data, true)).toEqual([]);
    expect(data.server).toMatchObject({ port: 8090, max_body_size: '6mb', read_timeout: '30s', shutdown_timeout: '10s' });
    expect(data.functions).toMatchObject({ path: './functions', timeout: '30s', memory_limit: 0, concurrency: 0, queue: 100, inherit_env: true, pool: 1 });
    expect(data.dev).toEqual({ enabled: false, watch: true, schedules: false });
    expect(data.state).toEqual({ url: '.alyx/state.db', result_ttl: '24h', retries: 3 });
    expect(data.auth).toEqual({ jwt: { secret: '', jwks_url: '', issuer: '', audience: '' } });
  });

  it('accepts any other key of auth and of auth.jwt (the earlier server\'s), and checks the four alyx uses', () => {
    expect(validateAgainst('alyx', {
      auth: { jwt: { secret: 's', jwks_url: 'https://id.example/jwks.json', issuer: 'i', audience: ['a', 'b'], access_ttl: '15m', expiry: 3600 }, oauth: { github: {} }, providers: [], allow_registration: true },
    })).toEqual([]);
    expect(validateAgainst('alyx', { auth: { jwt: { jwks_url: 'ftp://id.example/jwks.json', issuer: 1, audience: [1] } } })).toEqual(
      expect.arrayContaining([
        'auth.jwt.jwks_url: must be an http:// or https:// URL of an identity provider\'s JSON Web Key Set (got "ftp://id.example/jwks.json")',
        'auth.jwt.issuer: must be a string (got 1)',
        expect.stringMatching(/^auth\.jwt\.audience\.0: must be a string/),
      ]),
    );
    expect(validateAgainst('alyx', { auth: 'yes' })).toEqual(['auth: must be a mapping of keys (got "yes")']);
  });

  it('never shows the value of auth.jwt.secret in a problem', () => {
    expect(validateAgainst('alyx', { auth: { jwt: { secret: 123456789 } } })).toEqual([
      'auth.jwt.secret: must be a string (got a value not shown here: it is a secret)',
    ]);
  });

  it('describes a bad memory_limit as a size, in words that read', () => {
    expect(validateAgainst('alyx', { functions: { memory_limit: 'plenty' } })).toEqual([
      expect.stringMatching(/^functions\.memory_limit: must be a size .*\(got "plenty"\)$/),
    ]);
  });

  it('names problems by dotted key path', () => {
    expect(validateAgainst('alyx', { server: { port: 'x', tls: { enabled: 'no' } }, functions: { timeout: '1 week' } })).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server\.port: must be an integer/),
        expect.stringMatching(/^server\.tls\.enabled: must be true or false/),
        expect.stringMatching(/^functions\.timeout: must be a duration/),
      ]),
    );
  });
});

describe('manifest schema', () => {
  it('accepts every documented key', () => {
    expect(
      validateAgainst('manifest', {
        name: 'hello-typescript',
        runtime: 'node',
        entry: 'src/handler.ts',
        description: 'text',
        timeout: '30s',
        memory: '128mb',
        concurrency: 4,
        pool: 2,
        env: { KEY: 'value', N: 1, B: true },
        build: { command: 'npm', args: ['run', 'build'], watch: ['*.ts', 'src/**/*.ts'], output: 'dist/index.js' },
        reuse: true,
        retries: 3,
        schedules: [{ name: 'nightly', type: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin', config: { input: {} }, enabled: true }],
      }),
    ).toEqual([]);
  });

  it.each(['node', 'deno', 'bun', 'python', 'go', 'binary'])('accepts runtime %s', (runtime) => {
    expect(validateAgainst('manifest', { runtime })).toEqual([]);
  });

  it('rejects an unknown runtime, listing the known ones', () => {
    expect(validateAgainst('manifest', { runtime: 'ruby' })).toEqual([
      'runtime: must be one of node, deno, bun, python, go, binary (got "ruby")',
    ]);
  });

  it('accepts and ignores routes, hooks and dependencies of the earlier server', () => {
    expect(
      validateAgainst('manifest', {
        routes: [{ path: '/hello', methods: ['GET'] }],
        hooks: [{ type: 'database', source: 'users' }],
        dependencies: ['lodash'],
      }),
    ).toEqual([]);
  });

  it("accepts schedules in the earlier server's shape, other keys of config included", () => {
    expect(
      validateAgainst('manifest', {
        retries: 0,
        schedules: [
          { name: 'nightly', type: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin', config: { input: { a: 1 }, timeout: '1m' }, enabled: false },
          { name: 'poll', type: 'interval', expression: '5m' },
          { name: 'once', type: 'one_time', expression: '2026-05-01T10:00:00Z', config: {} },
        ],
      }),
    ).toEqual([]);
  });

  it('rejects a schedule without name, type or expression, with another key, or with a bad type, and retries out of 0..100', () => {
    expect(validateAgainst('manifest', { retries: 101, schedules: [{ cron: '0 0 * * *' }, { name: 'a', type: 'daily', expression: '@daily', config: { input: [] } }] })).toEqual(
      expect.arrayContaining([
        'retries: must be <= 100 (got 101)',
        'schedules.0.name: is required',
        'schedules.0.type: is required',
        'schedules.0.expression: is required',
        expect.stringMatching(/^schedules\.0\.cron: unknown key/),
        'schedules.1.type: must be one of cron, interval, one_time (got "daily")',
        'schedules.1.config.input: must be a mapping of keys (got [])',
      ]),
    );
    expect(validateAgainst('manifest', { schedules: [{ name: 'has space', type: 'cron', expression: '@daily' }] })).toEqual([
      expect.stringMatching(/^schedules\.0\.name: /),
    ]);
  });

  it('rejects an unknown key with readable text', () => {
    const problems = validateAgainst('manifest', { handler: 'index.js' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^handler: unknown key \(known keys: .*entry/);
  });

  it('rejects an unknown key inside build', () => {
    expect(validateAgainst('manifest', { build: { command: 'make', output: 'out', outdir: 'x' } })).toEqual([
      expect.stringMatching(/^build\.outdir: unknown key/),
    ]);
  });

  it.each([undefined, 'node', 'python', 'go'])('build without command is an error for runtime %p', (runtime) => {
    expect(validateAgainst('manifest', { runtime, build: { output: 'dist/index.js' } })).toEqual(['build.command: is required']);
  });

  it('build without command is allowed for runtime binary (a prebuilt executable)', () => {
    expect(validateAgainst('manifest', { runtime: 'binary', build: { output: 'bin/app' } })).toEqual([]);
  });

  it('build without output is an error, whatever the runtime', () => {
    expect(validateAgainst('manifest', { runtime: 'binary', build: {} })).toEqual(['build.output: is required']);
    expect(validateAgainst('manifest', { build: { command: 'npm' } })).toEqual(['build.output: is required']);
  });

  it.each([
    ['timeout', { timeout: 'soon' }, /^timeout: must be a duration.*"soon"/],
    ['memory', { memory: 'plenty' }, /^memory: must be a size .*\(got "plenty"\)$/],
    ['concurrency', { concurrency: 0 }, /^concurrency: must be >= 1 \(got 0\)$/],
    ['env', { env: { A: { nested: true } } }, /^env\.A: must be a string or a number or true or false/],
  ])('rejects a bad %s with its key path', (_key, manifest, problem) => {
    expect(validateAgainst('manifest', manifest)).toEqual([expect.stringMatching(problem)]);
  });
});

describe('what editors see: the size and duration patterns', () => {
  /** Every node of a schema with a size or duration format, with its dotted place in the file. */
  function unitNodes(name: SchemaName): Array<{ at: string; node: Record<string, unknown> }> {
    const found: Array<{ at: string; node: Record<string, unknown> }> = [];
    const walk = (node: unknown, at: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const record = node as Record<string, unknown>;
      if (record.format === 'size' || record.format === 'duration') found.push({ at, node: record });
      for (const [key, child] of Object.entries(record)) walk(child, at ? `${at}.${key}` : key);
    };
    walk(readSchemaFile(name), '');
    return found;
  }

  it.each<SchemaName>(['alyx', 'manifest'])('every size and duration in %s.schema.json carries the pattern alyx checks', (name) => {
    const nodes = unitNodes(name);
    expect(nodes.length).toBeGreaterThanOrEqual(2);
    for (const { at, node } of nodes) {
      expect([at, node.pattern]).toEqual([at, node.format === 'size' ? SIZE_PATTERN_SOURCE : DURATION_PATTERN_SOURCE]);
    }
  });

  it('an editor that knows no alyx formats rejects "30 seconds" and "lots", and accepts what alyx accepts', () => {
    // Editors' validators ignore unknown formats: only the pattern stands between them and "30 seconds".
    const ajv = new Ajv({ allowUnionTypes: true, strict: false, validateFormats: false });
    const alyx = ajv.compile(readSchemaFile('alyx'));
    const manifest = ajv.compile(readSchemaFile('manifest'));
    expect(alyx({ functions: { timeout: '30 seconds' } })).toBe(false);
    expect(alyx({ server: { max_body_size: 'lots' } })).toBe(false);
    expect(manifest({ timeout: '30 seconds' })).toBe(false);
    expect(manifest({ memory: '128 megabytes' })).toBe(false);
    for (const timeout of ['500ms', '30s', '2m', '1h', '1.5S', ' 30s ', '30', 30]) expect([timeout, alyx({ functions: { timeout } })]).toEqual([timeout, true]);
    for (const size of ['512kb', '6MB', '1gb', '100b', '1024', 1024]) expect([size, alyx({ server: { max_body_size: size } })]).toEqual([size, true]);
    expect(manifest({ timeout: '10s', memory: '128mb' })).toBe(true);
  });

  it('alyx reports a value that breaks both the pattern and the format once', () => {
    expect(validateAgainst('alyx', { functions: { timeout: '30 seconds' } })).toEqual([
      'functions.timeout: must be a duration such as 500ms, 30s or 2m, or a number of seconds (got "30 seconds")',
    ]);
  });
});

describe('unknown keys', () => {
  it('suggest the known key a typo is close to', () => {
    expect(validateAgainst('alyx', { functions: { timeot: '3s' }, sevrer: {} })).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^functions\.timeot: unknown key, did you mean timeout\? \(known keys of functions: path, timeout/),
        expect.stringMatching(/^sevrer: unknown key, did you mean server\? \(known keys: server, /),
      ]),
    );
    expect(validateAgainst('alyx', { runtimes: { pyhton: { command: 'python3' } } })).toEqual([
      expect.stringMatching(/^runtimes\.pyhton: unknown key, did you mean python\? /),
    ]);
    expect(validateAgainst('manifest', { memroy: '1mb' })).toEqual([expect.stringMatching(/^memroy: unknown key, did you mean memory\? /)]);
  });

  it('suggest nothing when no key is close, and never a key alyx ignores', () => {
    const [problem] = validateAgainst('alyx', { colour: 'blue' });
    expect(problem).toMatch(/^colour: unknown key \(known keys: /);
    // "docss" is one letter from "docs", a key of the earlier server that alyx ignores.
    expect(validateAgainst('alyx', { docss: {} })[0]).not.toContain('did you mean');
  });
});
