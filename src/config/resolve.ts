import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors';
import type { LogFormat } from '../logger';
import { modeDefaults, validateAgainst, type DefaultsContext } from './schemas';
import { readAdminToken } from './admin-token';
import { expandJwtSecret, toAuthConfig, type AuthConfig } from './auth';
import { expandEnvMap } from './expand-env';
import { readEnvOverrides, setPath } from './env-overrides';
import { isMapping, loadConfigFile } from './load';
import { parseDuration, parseMegabytes, parseSize } from './units';

export type Mode = 'development' | 'production';
export type RuntimeName = 'node' | 'deno' | 'bun' | 'python' | 'go';

export interface CorsConfig {
  readonly enabled: boolean;
  readonly allowedOrigins: readonly string[];
  readonly allowedMethods: readonly string[];
  readonly allowedHeaders: readonly string[];
  readonly exposedHeaders: readonly string[];
  readonly allowCredentials: boolean;
  readonly maxAgeS: number;
}

/** The configuration every command works from: merged, validated, in units, frozen. */
export interface AlyxConfig {
  readonly mode: Mode;
  readonly projectDir: string;
  readonly configFile: string | null;
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly maxBodyBytes: number;
    readonly readTimeoutMs: number;
    readonly writeTimeoutMs: number;
    readonly idleTimeoutMs: number;
    readonly shutdownTimeoutMs: number;
    readonly cors: CorsConfig;
    readonly tls: { readonly enabled: boolean; readonly certFile: string; readonly keyFile: string };
  };
  readonly functions: {
    readonly path: string;
    readonly timeoutMs: number;
    readonly memoryLimitBytes: number;
    readonly env: Readonly<Record<string, string>>;
    readonly maxOutputBytes: number;
    readonly concurrency: number;
    readonly queue: number;
    readonly inheritEnv: boolean;
    readonly pool: number;
  };
  readonly runtimes: Readonly<Partial<Record<RuntimeName, { readonly command: string; readonly args: readonly string[] }>>>;
  readonly logging: { readonly level: string; readonly format: LogFormat };
  readonly dev: { readonly enabled: boolean; readonly watch: boolean; readonly schedules: boolean };
  /** SPEC §11: where background work lives. `url` is an absolute file path for SQLite, or a nats:// URL. */
  readonly state: { readonly url: string; readonly resultTtlMs: number; readonly retries: number };
  /** SPEC §13: how bearer tokens are verified; `auth.jwt` is null when neither a secret nor a JWKS URL is set. */
  readonly auth: AuthConfig;
  /** The admin endpoints' bearer token (ALYX_ADMIN_TOKEN or ALYX_ADMIN_TOKEN_FILE); null: none. A secret: never log it. */
  readonly adminToken: string | null;
  /** Keys of the earlier Alyx server found in alyx.yaml and ignored; the caller warns once. */
  readonly ignoredKeys: readonly string[];
}

/** Values given on the command line; they win over everything else. */
export interface ConfigFlags {
  port?: string | number;
  host?: string;
  functions?: string;
  watch?: boolean;
  logLevel?: string;
  logFormat?: string;
}

export interface ResolveOptions {
  /** The project folder (--cwd); alyx.yaml is read from it. */
  projectDir: string;
  /** --config, relative to the project folder. */
  configFile?: string;
  /** `alyx dev` forces development, --prod/--dev force either; otherwise dev.enabled decides. */
  mode?: Mode;
  flags?: ConfigFlags;
  env?: NodeJS.ProcessEnv;
  /** Whether stdout is a terminal: pretty logs by default in development. */
  isTTY?: boolean;
}

const FLAG_PATHS: Record<keyof ConfigFlags, { keyPath: string[]; flag: string }> = {
  port: { keyPath: ['server', 'port'], flag: '--port' },
  host: { keyPath: ['server', 'host'], flag: '--host' },
  functions: { keyPath: ['functions', 'path'], flag: '--functions' },
  watch: { keyPath: ['dev', 'watch'], flag: '--no-watch' },
  logLevel: { keyPath: ['logging', 'level'], flag: '--log-level' },
  logFormat: { keyPath: ['logging', 'format'], flag: '--log-format' },
};

/** defaults < alyx.yaml < ALYX_* environment < flags, validated and frozen. */
export function resolveConfig(options: ResolveOptions): AlyxConfig {
  const env = options.env ?? process.env;
  const projectDir = path.resolve(options.projectDir);
  const file = loadConfigFile(projectDir, options.configFile);

  const fromEnv = readEnvOverrides(env);
  assertValid(fromEnv.values, (keyPath) => `${fromEnv.sources.get(keyPath) ?? keyPath} (${keyPath})`);
  expandJwtSecret(file, env, fromEnv.sources.has('auth.jwt.secret'));

  const fromFlags: Record<string, unknown> = {};
  const flagNames = new Map<string, string>();
  for (const [name, { keyPath, flag }] of Object.entries(FLAG_PATHS)) {
    let value = options.flags?.[name as keyof ConfigFlags];
    if (value === undefined) continue;
    if (name === 'port' && typeof value === 'string' && /^\d+$/.test(value)) value = Number(value);
    setPath(fromFlags, keyPath, value);
    flagNames.set(keyPath.join('.'), flag);
  }
  assertValid(fromFlags, (keyPath) => flagNames.get(keyPath) ?? keyPath);

  const merged = deepMerge(deepMerge(structuredClone(file.values), fromEnv.values), fromFlags);
  const mode: Mode = options.mode ?? (isMapping(merged.dev) && merged.dev.enabled === true ? 'development' : 'production');
  fillModeDefaults(merged, mode, options.isTTY === true);
  // Fills in the schema's defaults; each layer was valid alone, and so must be the whole.
  const problems = validateAgainst('alyx', merged, true);
  if (problems.length > 0) throw new ConfigError(`${file.file ?? 'the configuration'}: ${problems.join('\n')}`);
  return deepFreeze(toConfig(merged, mode, { ...options, projectDir, env }, file.file, file.ignored));
}

/** The schema's defaults for this mode (x-mode-default) where a key is not set; the rest come from `default`. */
function fillModeDefaults(values: Record<string, unknown>, mode: Mode, isTTY: boolean): void {
  if (mode !== 'development') return;
  for (const { keyPath, byContext } of modeDefaults('alyx')) {
    const contexts: DefaultsContext[] = isTTY ? ['development on a terminal', 'development'] : ['development'];
    const context = contexts.find((each) => each in byContext);
    if (context && getPath(values, keyPath) === undefined) setPath(values, keyPath, byContext[context]);
  }
}

function getPath(values: Record<string, unknown>, keyPath: string[]): unknown {
  let node: unknown = values;
  for (const key of keyPath) node = isMapping(node) ? node[key] : undefined;
  return node;
}

/** Validates one layer, naming each problem by where it came from (a variable or a flag). */
function assertValid(values: Record<string, unknown>, sourceOf: (keyPath: string) => string): void {
  const problems = validateAgainst('alyx', structuredClone(values));
  if (problems.length === 0) return;
  const named = problems.map((problem) => {
    const colon = problem.indexOf(': ');
    return `${sourceOf(problem.slice(0, colon))}${problem.slice(colon)}`;
  });
  throw new ConfigError(named.join('\n'));
}

/**
 * The validated keys, every default filled in, as the resolved configuration: units parsed,
 * paths made absolute. No default is decided here (the schema holds them all); exported so a
 * test can check that every key of the schema is read.
 */
export function toConfig(
  raw: Record<string, any>, // eslint-disable-line @typescript-eslint/no-explicit-any -- validated by the schema
  mode: Mode,
  options: ResolveOptions & { projectDir: string; env: NodeJS.ProcessEnv },
  configFile: string | null,
  ignoredKeys: string[],
): AlyxConfig {
  const { server, functions, logging, dev, state, auth } = raw;
  const tls = { enabled: server.tls.enabled, certFile: server.tls.cert_file, keyFile: server.tls.key_file };
  if (tls.enabled && (!tls.certFile || !tls.keyFile)) {
    throw new ConfigError(`${configFile ?? 'alyx.yaml'}: server.tls.cert_file and server.tls.key_file are required when server.tls.enabled is true`);
  }
  const runtimes: Record<string, { command: string; args: string[] }> = {};
  for (const [name, runtime] of Object.entries(raw.runtimes as Record<string, { command: string; args?: string[] }>)) {
    runtimes[name] = { command: runtime.command, args: runtime.args ?? [] };
  }
  return {
    mode,
    projectDir: options.projectDir,
    configFile,
    server: {
      host: server.host,
      port: server.port,
      maxBodyBytes: parseSize(server.max_body_size) as number,
      readTimeoutMs: parseDuration(server.read_timeout) as number,
      writeTimeoutMs: parseDuration(server.write_timeout) as number,
      idleTimeoutMs: parseDuration(server.idle_timeout) as number,
      shutdownTimeoutMs: parseDuration(server.shutdown_timeout) as number,
      cors: {
        enabled: server.cors.enabled,
        allowedOrigins: server.cors.allowed_origins,
        allowedMethods: server.cors.allowed_methods,
        allowedHeaders: server.cors.allowed_headers,
        exposedHeaders: server.cors.exposed_headers,
        allowCredentials: server.cors.allow_credentials,
        maxAgeS: server.cors.max_age,
      },
      tls: {
        ...tls,
        certFile: tls.certFile && path.resolve(options.projectDir, tls.certFile),
        keyFile: tls.keyFile && path.resolve(options.projectDir, tls.keyFile),
      },
    },
    functions: {
      path: path.resolve(options.projectDir, functions.path),
      timeoutMs: parseDuration(functions.timeout) as number,
      memoryLimitBytes: parseMegabytes(functions.memory_limit) as number,
      env: expandEnvMap(functions.env, options.env),
      maxOutputBytes: parseSize(functions.max_output) as number,
      concurrency: functions.concurrency || 2 * os.availableParallelism(),
      queue: functions.queue,
      inheritEnv: functions.inherit_env,
      pool: functions.pool,
    },
    runtimes,
    logging: { level: logging.level, format: logging.format },
    dev: { enabled: dev.enabled, watch: dev.watch, schedules: dev.schedules },
    state: {
      url: /^[a-z][a-z0-9+.-]*:\/\//i.test(state.url) ? state.url : path.resolve(options.projectDir, state.url),
      resultTtlMs: parseDuration(state.result_ttl) as number,
      retries: state.retries,
    },
    auth: toAuthConfig(auth),
    adminToken: readAdminToken(options.env),
    ignoredKeys,
  };
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): Record<string, unknown> {
  for (const [key, value] of Object.entries(source)) {
    target[key] = isMapping(value) && isMapping(target[key]) ? deepMerge(target[key] as Record<string, unknown>, value) : value;
  }
  return target;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
