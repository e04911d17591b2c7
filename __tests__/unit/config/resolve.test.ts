import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig, toConfig, type AlyxConfig, type ResolveOptions } from '../../../src/config/resolve';
import { SCHEMA_DIR, validateAgainst } from '../../../src/config/schemas';
import { ConfigError } from '../../../src/errors';
import { makeProject, removeProject } from '../../helpers/project';

const MB = 1024 ** 2;

let projects: string[] = [];
afterEach(() => {
  projects.forEach(removeProject);
  projects = [];
});

/** A fresh project whose alyx.yaml holds `yaml` (none when undefined). */
function project(yaml?: string): string {
  const dir = makeProject(yaml === undefined ? {} : { 'alyx.yaml': yaml });
  projects.push(dir);
  return dir;
}

/** resolveConfig on a fresh project; the environment is always explicit, never process.env. */
function resolve(yaml?: string, options: Partial<ResolveOptions> = {}): AlyxConfig {
  return resolveConfig({ projectDir: project(yaml), env: {}, ...options });
}

/** The ConfigError that resolving throws. */
function configError(yaml?: string, options: Partial<ResolveOptions> = {}): ConfigError {
  try {
    resolve(yaml, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CONFIG_ERROR');
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

function expectDeepFrozen(value: unknown, at = 'config'): void {
  if (typeof value !== 'object' || value === null) return;
  if (!Object.isFrozen(value)) throw new Error(`${at} is not frozen`);
  for (const [key, child] of Object.entries(value)) expectDeepFrozen(child, `${at}.${key}`);
}

describe('defaults', () => {
  it('without alyx.yaml, production: every documented default, in bytes and ms', () => {
    const config = resolve(undefined, { mode: 'production' });
    expect(config.mode).toBe('production');
    expect(config.configFile).toBeNull();
    expect(config.server).toEqual({
      host: '0.0.0.0',
      port: 8090,
      maxBodyBytes: 6 * MB,
      readTimeoutMs: 30_000,
      writeTimeoutMs: 30_000,
      idleTimeoutMs: 60_000,
      shutdownTimeoutMs: 10_000,
      cors: {
        enabled: false,
        allowedOrigins: ['*'],
        allowedMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
        allowedHeaders: ['Content-Type', 'Authorization', 'X-Request-Id'],
        exposedHeaders: ['X-Request-Id'],
        allowCredentials: false,
        maxAgeS: 300,
      },
      tls: { enabled: false, certFile: '', keyFile: '' },
    });
    expect(config.functions).toEqual({
      path: path.join(config.projectDir, 'functions'),
      timeoutMs: 30_000,
      memoryLimitBytes: 0,
      env: {},
      maxOutputBytes: 6 * MB,
      concurrency: 2 * os.availableParallelism(),
      queue: 100,
      inheritEnv: true,
      pool: 1,
    });
    expect(config.runtimes).toEqual({});
    expect(config.logging).toEqual({ level: 'info', format: 'json' });
    expect(config.dev).toEqual({ enabled: false, watch: true, schedules: false });
    expect(config.state).toEqual({ url: path.join(config.projectDir, '.alyx', 'state.db'), resultTtlMs: 24 * 3_600_000, retries: 3 });
    expect(config.auth).toEqual({ jwt: null });
    expect(config.ignoredKeys).toEqual([]);
  });

  it.each([
    ['development', '127.0.0.1', true],
    ['production', '0.0.0.0', false],
  ] as const)('in %s the host is %s and CORS enabled is %p', (mode, host, corsEnabled) => {
    const config = resolve(undefined, { mode });
    expect(config.server.host).toBe(host);
    expect(config.server.cors.enabled).toBe(corsEnabled);
    expect(config.server.cors.allowedOrigins).toEqual(['*']);
  });

  it.each([
    ['development', true, 'pretty'],
    ['development', false, 'json'],
    ['development', undefined, 'json'],
    ['production', true, 'json'],
    ['production', false, 'json'],
  ] as const)('logging.format in %s with isTTY %p is %s', (mode, isTTY, format) => {
    expect(resolve(undefined, { mode, isTTY }).logging.format).toBe(format);
  });

  it('an explicit logging.format or server.cors.enabled wins over the mode default', () => {
    const dev = resolve('logging: { format: json }\nserver: { cors: { enabled: false } }\n', { mode: 'development', isTTY: true });
    expect(dev.logging.format).toBe('json');
    expect(dev.server.cors.enabled).toBe(false);
    const prod = resolve('logging: { format: pretty }\nserver: { cors: { enabled: true } }\n', { mode: 'production' });
    expect(prod.logging.format).toBe('pretty');
    expect(prod.server.cors.enabled).toBe(true);
  });

  it('functions.pool: 1 in production, 0 in development unless alyx.yaml or the environment sets it', () => {
    expect(resolve(undefined, { mode: 'production' }).functions.pool).toBe(1);
    expect(resolve(undefined, { mode: 'development' }).functions.pool).toBe(0);
    expect(resolve('functions: { pool: 2 }\n', { mode: 'development' }).functions.pool).toBe(2);
    expect(resolve(undefined, { mode: 'development', env: { ALYX_FUNCTIONS_POOL: '1' } }).functions.pool).toBe(1);
    expect(resolve('functions: { pool: 0 }\n', { mode: 'production' }).functions.pool).toBe(0);
  });

  it('functions.concurrency 0 means 2 x CPU cores; any other number is kept', () => {
    expect(resolve('functions: { concurrency: 0 }\n').functions.concurrency).toBe(2 * os.availableParallelism());
    expect(resolve('functions: { concurrency: 3 }\n').functions.concurrency).toBe(3);
  });
});

describe('alyx.yaml values', () => {
  it('converts sizes to bytes and durations to milliseconds, and resolves paths against the project', () => {
    const config = resolve(
      [
        'server:',
        '  host: 10.0.0.1',
        '  port: 9000',
        '  max_body_size: 512kb',
        '  read_timeout: 500ms',
        '  write_timeout: 2m',
        '  idle_timeout: 90',
        '  shutdown_timeout: 1.5s',
        'functions:',
        '  path: ./fns',
        '  timeout: 45s',
        '  memory_limit: 128',
        '  max_output: 1gb',
        '  queue: 7',
        '  inherit_env: false',
        '  pool: 0',
        'runtimes:',
        '  python: { command: python3.12 }',
        '  node: { command: node22, args: [--no-warnings] }',
        'logging: { level: debug }',
        '',
      ].join('\n'),
    );
    expect(config.configFile).toBe(path.join(config.projectDir, 'alyx.yaml'));
    expect(config.server).toMatchObject({
      host: '10.0.0.1',
      port: 9000,
      maxBodyBytes: 512 * 1024,
      readTimeoutMs: 500,
      writeTimeoutMs: 120_000,
      idleTimeoutMs: 90_000,
      shutdownTimeoutMs: 1_500,
    });
    expect(config.functions).toMatchObject({
      path: path.join(config.projectDir, 'fns'),
      timeoutMs: 45_000,
      memoryLimitBytes: 128 * MB,
      maxOutputBytes: 1024 ** 3,
      queue: 7,
      inheritEnv: false,
      pool: 0,
    });
    expect(config.runtimes).toEqual({
      python: { command: 'python3.12', args: [] },
      node: { command: 'node22', args: ['--no-warnings'] },
    });
    expect(config.logging.level).toBe('debug');
  });

  it('reads functions.dir (the earlier server\'s name) as functions.path', () => {
    const config = resolve('functions:\n  dir: ./legacy-functions\n');
    expect(config.functions.path).toBe(path.join(config.projectDir, 'legacy-functions'));
  });

  it('expands ${VAR} and $VAR in functions.env from the given environment', () => {
    const config = resolve('functions:\n  env:\n    URL: "${API_HOST}:$API_PORT/v1"\n    PLAIN: plain\n    COUNT: 3\n', {
      env: { API_HOST: 'https://api.example', API_PORT: '8443' },
    });
    expect(config.functions.env).toEqual({ URL: 'https://api.example:8443/v1', PLAIN: 'plain', COUNT: '3' });
  });

  it('expands ALYX_* variables to nothing: the settings of alyx never reach functions under another name', () => {
    const config = resolve('functions:\n  env:\n    TOKEN: "${ALYX_ADMIN_TOKEN}"\n    PORT: "$ALYX_SERVER_PORT!"\n', {
      env: { ALYX_ADMIN_TOKEN: 'secret', ALYX_SERVER_PORT: '9000' },
    });
    expect(config.functions.env).toEqual({ TOKEN: '', PORT: '!' });
  });

  it('an alyx.yaml of the earlier server loads, reporting the keys it ignores as dotted paths', () => {
    const config = resolve(
      [
        'server:',
        '  port: 8091',
        '  tls: { enabled: false, auto_tls: true, domain: example.com }',
        'database: { path: ./data.db }',
        'auth:',
        '  jwt: { secret: "an HS256 secret of at least 32 bytes long", access_ttl: 15m, refresh_ttl: 168h }',
        '  password: { min_length: 8 }',
        '  oauth: { github: { client_id: x, client_secret: y } }',
        '  allow_registration: true',
        'realtime: { enabled: true }',
        'docs: { enabled: true }',
        'admin_ui: { enabled: true }',
        'functions: { enabled: true, runtime: docker, cpu_limit: 1, pools: {} }',
        'logging: { level: warn, caller: true, timestamp: true, output: stdout }',
        'dev: { auto_migrate: true, auto_generate: true, generate_languages: [ts], generate_output: ./gen }',
        '',
      ].join('\n'),
    );
    expect(config.server.port).toBe(8091);
    expect(config.logging.level).toBe('warn');
    expect(config.auth.jwt?.secret).toBe('an HS256 secret of at least 32 bytes long');
    expect([...config.ignoredKeys].sort()).toEqual(
      [
        'database', 'auth.jwt.access_ttl', 'auth.jwt.refresh_ttl', 'auth.password', 'auth.oauth', 'auth.allow_registration', 'realtime', 'docs', 'admin_ui', 'server.tls.auto_tls', 'server.tls.domain',
        'functions.enabled', 'functions.runtime', 'functions.cpu_limit', 'functions.pools', 'logging.caller',
        'logging.timestamp', 'logging.output', 'dev.auto_migrate', 'dev.auto_generate', 'dev.generate_languages',
        'dev.generate_output',
      ].sort(),
    );
  });

  it('reads the file --config names, relative to the project', () => {
    const dir = makeProject({ 'config/staging.yaml': 'server: { port: 7000 }\n' });
    projects.push(dir);
    const config = resolveConfig({ projectDir: dir, configFile: 'config/staging.yaml', env: {} });
    expect(config.server.port).toBe(7000);
    expect(config.configFile).toBe(path.join(dir, 'config/staging.yaml'));
  });

  it('--config pointing to a missing file is a ConfigError naming it', () => {
    const error = configError(undefined, { configFile: 'nope.yaml' });
    expect(error.message).toContain('nope.yaml');
  });
});

describe('a bad alyx.yaml is a ConfigError naming the file, the key path and the problem', () => {
  it.each([
    ['unknown key', 'server:\n  prot: 8090\n', 'server.prot', /unknown key/],
    ['unknown section', 'servers: {}\n', 'servers', /unknown key/],
    ['wrong type', 'server:\n  port: eighty\n', 'server.port', /must be an integer.*"eighty"/],
    ['wrong type of boolean', 'dev:\n  watch: sometimes\n', 'dev.watch', /must be true or false/],
    ['bad size', 'server:\n  max_body_size: 6 potatoes\n', 'server.max_body_size', /must be a size.*"6 potatoes"/],
    ['bad duration', 'functions:\n  timeout: forever\n', 'functions.timeout', /must be a duration.*"forever"/],
    ['out of range', 'server:\n  port: 70000\n', 'server.port', /70000/],
    ['unknown runtime', 'runtimes:\n  ruby: { command: ruby }\n', 'runtimes.ruby', /unknown key/],
  ])('%s', (_what, yaml, keyPath, problem) => {
    const error = configError(yaml);
    expect(error.message).toContain(path.join(projects[0], 'alyx.yaml'));
    expect(error.message).toContain(`${keyPath}:`);
    expect(error.message).toMatch(problem);
  });

  it.each([
    ['YAML syntax error', 'server:\n  port: [8090\n', /not valid YAML.*line \d+/],
    ['top level not a mapping', '- server\n- functions\n', /must be a mapping/],
    ['top level a scalar', 'just text\n', /must be a mapping/],
  ])('%s', (_what, yaml, problem) => {
    const error = configError(yaml);
    expect(error.message).toContain(path.join(projects[0], 'alyx.yaml'));
    expect(error.message).toMatch(problem);
  });

  it('a key written with nothing after it (or only comments) counts as not set', () => {
    const config = resolve('server:\n  # port: 9000\nfunctions:\n  timeout:\n', { mode: 'production' });
    expect(config.server.port).toBe(8090);
    expect(config.functions.timeoutMs).toBe(30_000);
  });

  it('lists every problem, not just the first', () => {
    const error = configError('server:\n  port: eighty\nfunctions:\n  timeout: forever\n');
    expect(error.message).toContain('server.port:');
    expect(error.message).toContain('functions.timeout:');
  });

  it('TLS enabled without certificate files is a ConfigError naming the keys', () => {
    const error = configError('server:\n  tls: { enabled: true }\n');
    expect(error.message).toContain('server.tls.cert_file');
    expect(error.message).toContain('server.tls.key_file');
  });
});

describe('precedence: flags > ALYX_* environment > alyx.yaml > defaults', () => {
  const yaml = 'server: { port: 8100, host: yaml.host }\nlogging: { level: warn }\ndev: { watch: true }\nfunctions: { path: ./from-yaml }\n';

  it('alyx.yaml beats the defaults', () => {
    const config = resolve(yaml);
    expect(config.server.port).toBe(8100);
    expect(config.server.host).toBe('yaml.host');
    expect(config.logging.level).toBe('warn');
    expect(config.functions.path).toBe(path.join(config.projectDir, 'from-yaml'));
  });

  it('the environment beats alyx.yaml', () => {
    const config = resolve(yaml, {
      env: {
        ALYX_SERVER_PORT: '8200',
        ALYX_SERVER_HOST: 'env.host',
        ALYX_LOGGING_LEVEL: 'error',
        ALYX_DEV_WATCH: 'false',
        ALYX_FUNCTIONS_PATH: './from-env',
      },
    });
    expect(config.server.port).toBe(8200);
    expect(config.server.host).toBe('env.host');
    expect(config.logging.level).toBe('error');
    expect(config.dev.watch).toBe(false);
    expect(config.functions.path).toBe(path.join(config.projectDir, 'from-env'));
  });

  it('flags beat the environment', () => {
    const config = resolve(yaml, {
      env: { ALYX_SERVER_PORT: '8200', ALYX_SERVER_HOST: 'env.host', ALYX_LOGGING_LEVEL: 'error', ALYX_DEV_WATCH: 'true', ALYX_LOGGING_FORMAT: 'json' },
      flags: { port: '8300', host: 'flag.host', logLevel: 'debug', watch: false, logFormat: 'pretty', functions: './from-flag' },
    });
    expect(config.server.port).toBe(8300);
    expect(config.server.host).toBe('flag.host');
    expect(config.logging).toEqual({ level: 'debug', format: 'pretty' });
    expect(config.dev.watch).toBe(false);
    expect(config.functions.path).toBe(path.join(config.projectDir, 'from-flag'));
  });

  it('a key the environment does not set keeps its alyx.yaml value', () => {
    const config = resolve('server: { port: 8100, max_body_size: 1mb }\n', { env: { ALYX_SERVER_PORT: '8200' } });
    expect(config.server.port).toBe(8200);
    expect(config.server.maxBodyBytes).toBe(MB);
  });

  it('a bad flag value is a ConfigError naming the flag', () => {
    expect(configError(undefined, { flags: { port: 'eighty' } }).message).toContain('--port');
  });
});

describe('ALYX_* environment variables', () => {
  it.each([
    ['true', true], ['TRUE', true], ['True', true], ['1', true], ['yes', true], ['YES', true],
    ['false', false], ['FALSE', false], ['0', false], ['no', false], ['No', false],
  ])('boolean %p is %p', (raw, value) => {
    expect(resolve(undefined, { env: { ALYX_DEV_WATCH: raw } }).dev.watch).toBe(value);
  });

  it.each(['maybe', 'on', 'off', '2', 'y', ''])('boolean %p is a ConfigError naming the variable', (raw) => {
    const error = configError(undefined, { env: { ALYX_DEV_WATCH: raw } });
    expect(error.message).toContain('ALYX_DEV_WATCH');
  });

  it.each([
    ['2mb', 2 * MB],
    ['512kb', 512 * 1024],
    ['4096', 4096],
  ])('ALYX_SERVER_MAX_BODY_SIZE=%s is %p bytes', (raw, bytes) => {
    expect(resolve(undefined, { env: { ALYX_SERVER_MAX_BODY_SIZE: raw } }).server.maxBodyBytes).toBe(bytes);
  });

  it.each([
    ['500ms', 500],
    ['2m', 120_000],
    ['45', 45_000],
  ])('ALYX_FUNCTIONS_TIMEOUT=%s is %p ms', (raw, ms) => {
    expect(resolve(undefined, { env: { ALYX_FUNCTIONS_TIMEOUT: raw } }).functions.timeoutMs).toBe(ms);
  });

  it.each<[string, string, (config: AlyxConfig) => unknown, unknown]>([
    ['ALYX_SERVER_READ_TIMEOUT', '1.5', (c) => c.server.readTimeoutMs, 1_500],
    ['ALYX_SERVER_SHUTDOWN_TIMEOUT', '250ms', (c) => c.server.shutdownTimeoutMs, 250],
    ['ALYX_SERVER_CORS_ENABLED', 'yes', (c) => c.server.cors.enabled, true],
    ['ALYX_SERVER_CORS_MAX_AGE', '60', (c) => c.server.cors.maxAgeS, 60],
    ['ALYX_FUNCTIONS_MEMORY_LIMIT', '128', (c) => c.functions.memoryLimitBytes, 128 * MB],
    ['ALYX_FUNCTIONS_MAX_OUTPUT', '1mb', (c) => c.functions.maxOutputBytes, MB],
    ['ALYX_FUNCTIONS_CONCURRENCY', '8', (c) => c.functions.concurrency, 8],
    ['ALYX_FUNCTIONS_QUEUE', '5', (c) => c.functions.queue, 5],
    ['ALYX_FUNCTIONS_INHERIT_ENV', 'No', (c) => c.functions.inheritEnv, false],
    ['ALYX_FUNCTIONS_POOL', '0', (c) => c.functions.pool, 0],
    ['ALYX_LOGGING_FORMAT', 'pretty', (c) => c.logging.format, 'pretty'],
    ['ALYX_RUNTIMES_PYTHON_COMMAND', 'python3.11', (c) => c.runtimes.python, { command: 'python3.11', args: [] }],
    ['ALYX_AUTH_JWT_SECRET', 'a secret with $DOLLARS, of 32 bytes or more', (c) => c.auth.jwt?.secret, 'a secret with $DOLLARS, of 32 bytes or more'],
    ['ALYX_AUTH_JWT_JWKS_URL', 'https://id.example/.well-known/jwks.json', (c) => c.auth.jwt, { secret: null, jwksUrl: 'https://id.example/.well-known/jwks.json', issuer: null, audience: null }],
  ])('every scalar key has its variable: %s=%s', (variable, raw, read, expected) => {
    expect(read(resolve(undefined, { env: { [variable]: raw } }))).toEqual(expected);
  });

  it.each([
    ['ALYX_SERVER_MAX_BODY_SIZE', 'huge', 'server.max_body_size'],
    ['ALYX_FUNCTIONS_TIMEOUT', 'forever', 'functions.timeout'],
    ['ALYX_SERVER_PORT', 'eighty', 'server.port'],
    ['ALYX_LOGGING_LEVEL', 'loud', 'logging.level'],
  ])('a bad %s is a ConfigError naming the variable and the key', (variable, raw, keyPath) => {
    const error = configError(undefined, { env: { [variable]: raw } });
    expect(error.message).toContain(variable);
    expect(error.message).toContain(keyPath);
  });

  it.each([
    ['ALYX_DEV_ENABLED=true', 'development', { ALYX_DEV_ENABLED: 'true' }, undefined],
    ['ALYX_DEV_ENABLED=yes', 'development', { ALYX_DEV_ENABLED: 'yes' }, undefined],
    ['ALYX_DEV_ENABLED=false over dev.enabled true', 'production', { ALYX_DEV_ENABLED: 'false' }, 'dev: { enabled: true }\n'],
    ['dev.enabled true in alyx.yaml', 'development', {}, 'dev: { enabled: true }\n'],
    ['nothing', 'production', {}, undefined],
  ] as const)('with no mode passed, %s means %s', (_what, mode, env, yaml) => {
    const config = resolve(yaml, { env });
    expect(config.mode).toBe(mode);
    expect(config.server.host).toBe(mode === 'development' ? '127.0.0.1' : '0.0.0.0');
  });

  it('a negative number says it must not be negative, naming the variable', () => {
    const error = configError(undefined, { env: { ALYX_FUNCTIONS_CONCURRENCY: '-1' } });
    expect(error.message).toMatch(/^ALYX_FUNCTIONS_CONCURRENCY \(functions\.concurrency\): must be >= 0/);
  });

  it('a mode passed in (alyx dev, --prod) wins over ALYX_DEV_ENABLED', () => {
    expect(resolve(undefined, { mode: 'development', env: { ALYX_DEV_ENABLED: 'false' } }).mode).toBe('development');
    expect(resolve(undefined, { mode: 'production', env: { ALYX_DEV_ENABLED: 'true' } }).mode).toBe('production');
  });

  it('reads only the environment it is given', () => {
    const saved = process.env.ALYX_SERVER_PORT;
    process.env.ALYX_SERVER_PORT = '1234';
    try {
      expect(resolve(undefined, { env: {} }).server.port).toBe(8090);
    } finally {
      if (saved === undefined) delete process.env.ALYX_SERVER_PORT;
      else process.env.ALYX_SERVER_PORT = saved;
    }
  });
});

describe('auth.jwt (SPEC §2, §13)', () => {
  const SECRET = 'an HS256 secret of at least 32 bytes long';

  it('a secret gives auth.jwt; empty keys are null', () => {
    expect(resolve(`auth:\n  jwt: { secret: "${SECRET}", jwks_url: "", issuer: "", audience: "" }\n`).auth).toEqual({
      jwt: { secret: SECRET, jwksUrl: null, issuer: null, audience: null },
    });
  });

  it('a JWKS URL alone gives auth.jwt, with issuer and audience', () => {
    const config = resolve('auth:\n  jwt: { jwks_url: "https://id.example/.well-known/jwks.json", issuer: "https://id.example/", audience: my-api }\n');
    expect(config.auth.jwt).toEqual({ secret: null, jwksUrl: 'https://id.example/.well-known/jwks.json', issuer: 'https://id.example/', audience: 'my-api' });
  });

  it("audience may be a list, as in the earlier server; a list of one is that one", () => {
    expect(resolve(`auth: { jwt: { secret: "${SECRET}", audience: [web, mobile] } }\n`).auth.jwt?.audience).toEqual(['web', 'mobile']);
    expect(resolve(`auth: { jwt: { secret: "${SECRET}", audience: [web] } }\n`).auth.jwt?.audience).toBe('web');
    expect(resolve(`auth: { jwt: { secret: "${SECRET}" } }\n`, { env: { ALYX_AUTH_JWT_AUDIENCE: 'web,mobile' } }).auth.jwt?.audience).toEqual(['web', 'mobile']);
  });

  it('without a secret or a JWKS URL, auth.jwt is null, whatever else is set', () => {
    expect(resolve('auth:\n  jwt: { issuer: alyx, audience: x, access_ttl: 15m }\n  allow_registration: true\n').auth).toEqual({ jwt: null });
    expect(resolve('auth:\n').auth).toEqual({ jwt: null });
  });

  it('expands ${VAR} and $VAR in the secret from the environment', () => {
    const config = resolve('auth:\n  jwt:\n    secret: ${JWT_SECRET}\n', { env: { JWT_SECRET: SECRET } });
    expect(config.auth.jwt?.secret).toBe(SECRET);
    expect(resolve('auth: { jwt: { secret: "$A-$B" } }\n', { env: { A: 'first half of the secret', B: 'and the second half' } }).auth.jwt?.secret).toBe(
      'first half of the secret-and the second half',
    );
  });

  it('a secret of variables that are not set is an error, not verification switched off', () => {
    const error = configError('auth:\n  jwt:\n    secret: ${JWT_SECRET}\n');
    expect(error.message).toContain(path.join(projects[0], 'alyx.yaml'));
    expect(error.message).toContain('auth.jwt.secret is "${JWT_SECRET}", which expands to nothing');
    // ALYX_* variables are not expanded in alyx.yaml, here as in functions.env.
    expect(configError('auth: { jwt: { secret: "${ALYX_SECRET}" } }\n', { env: { ALYX_SECRET: SECRET } }).message).toContain('ALYX_* variables are never expanded');
  });

  it('ALYX_AUTH_JWT_SECRET wins over alyx.yaml, unexpanded, even when the file\'s variable is not set', () => {
    const config = resolve('auth:\n  jwt:\n    secret: ${JWT_SECRET}\n', { env: { ALYX_AUTH_JWT_SECRET: `$HOME ${SECRET}` } });
    expect(config.auth.jwt?.secret).toBe(`$HOME ${SECRET}`);
  });

  it('a secret shorter than 32 bytes is an error that does not show it', () => {
    const error = configError('auth: { jwt: { secret: short-secret } }\n');
    expect(error.message).toMatch(/^auth\.jwt\.secret: must be at least 32 bytes for HS256, .*\(got 12\)/);
    expect(error.message).not.toContain('short-secret');
    expect(configError(undefined, { env: { ALYX_AUTH_JWT_SECRET: 'short-secret' } }).message).not.toContain('short-secret');
  });

  it.each([
    ['not http(s)', 'ftp://id.example/jwks.json'],
    ['not a URL', 'jwks.json'],
  ])('a jwks_url that is %s is an error naming the key', (_what, url) => {
    expect(configError(`auth: { jwt: { jwks_url: "${url}" } }\n`).message).toContain('auth.jwt.jwks_url: must be an http:// or https:// URL');
    expect(configError(undefined, { env: { ALYX_AUTH_JWT_JWKS_URL: url } }).message).toMatch(/^ALYX_AUTH_JWT_JWKS_URL \(auth\.jwt\.jwks_url\): must be an http/);
  });

  it('the environment sets every key: ALYX_AUTH_JWT_SECRET, _JWKS_URL, _ISSUER, _AUDIENCE', () => {
    const config = resolve(undefined, {
      env: {
        ALYX_AUTH_JWT_SECRET: SECRET,
        ALYX_AUTH_JWT_JWKS_URL: 'https://id.example/jwks.json',
        ALYX_AUTH_JWT_ISSUER: 'https://id.example/',
        ALYX_AUTH_JWT_AUDIENCE: 'my-api',
      },
    });
    expect(config.auth.jwt).toEqual({ secret: SECRET, jwksUrl: 'https://id.example/jwks.json', issuer: 'https://id.example/', audience: 'my-api' });
  });

  it('every other key of auth is accepted and reported as ignored', () => {
    const config = resolve(`auth:\n  jwt: { secret: "${SECRET}", expiry: 24h }\n  providers: [google]\n  oauth: {}\n`);
    expect([...config.ignoredKeys].sort()).toEqual(['auth.jwt.expiry', 'auth.oauth', 'auth.providers']);
    expect(config.auth.jwt?.secret).toBe(SECRET);
  });
});

describe('the resolved config', () => {
  it('is frozen all the way down', () => {
    const config = resolve('runtimes:\n  python: { command: python3, args: [-u] }\nfunctions:\n  env: { A: b }\nauth: { jwt: { jwks_url: "https://id.example/jwks.json", audience: [a, b] } }\n', {
      mode: 'development',
    });
    expectDeepFrozen(config);
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
  });
});

describe('one definition per key', () => {
  /** Every key of alyx.yaml that alyx acts on: the schema's leaves, without the earlier server's ignored keys. */
  function leafKeyPaths(): string[] {
    const schema = JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, 'alyx.schema.json'), 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const found: string[] = [];
    const walk = (node: Record<string, any>, prefix: string[]): void => { // eslint-disable-line @typescript-eslint/no-explicit-any
      if (node.$ref === '#/definitions/ignored') return;
      const properties = node.properties as Record<string, Record<string, unknown>> | undefined;
      if (!properties || node.type !== 'object' || prefix.join('.') === 'runtimes') {
        if (prefix.length > 0) found.push(prefix.join('.'));
        return;
      }
      for (const [key, child] of Object.entries(properties)) if (key !== '$schema' && key !== 'dir') walk(child as Record<string, unknown>, [...prefix, key]);
    };
    walk(schema, []);
    return found.sort();
  }

  /** Wraps `value` so that every key path read from it is noted. */
  function recording(value: Record<string, unknown>, read: Set<string>, prefix: string[] = []): Record<string, unknown> {
    return new Proxy(value, {
      get(target, key) {
        const child = target[key as string];
        if (typeof key !== 'string') return child;
        read.add([...prefix, key].join('.'));
        return typeof child === 'object' && child !== null && !Array.isArray(child) ? recording(child as Record<string, unknown>, read, [...prefix, key]) : child;
      },
    });
  }

  it('the resolved configuration reads every key the schema defines, and defaults come from the schema alone', () => {
    const raw: Record<string, unknown> = { server: {}, functions: {}, logging: {}, dev: {}, runtimes: {}, state: {}, auth: {} };
    expect(validateAgainst('alyx', raw, true)).toEqual([]);
    const read = new Set<string>();
    toConfig(recording(raw, read), 'production', { projectDir: '/project', env: {} }, null, []);
    const missing = leafKeyPaths().filter((keyPath) => !read.has(keyPath));
    expect(missing).toEqual([]);
  });
});
