import { resolveConfig, type AlyxConfig, type Mode } from '../config/resolve';
import { UsageError } from '../errors';
import { createLogger, type Logger } from '../logger';
import { guardAdminToken } from './admin-token-guard';

/** Options every command that reads a project accepts. */
export interface ProjectOptions {
  cwd?: string;
  config?: string;
  functions?: string;
  port?: string;
  host?: string;
  watch?: boolean;
  logLevel?: string;
  logFormat?: string;
  dev?: boolean;
  prod?: boolean;
}

export interface CommandContext {
  readonly config: AlyxConfig;
  readonly logger: Logger;
  /** How a function could still read the admin token, each with what to do; empty when it cannot. */
  readonly adminTokenExposures: readonly string[];
}

/** --dev / --prod, when given, decide the mode; otherwise `fallback` (or dev.enabled) does. */
export function modeFromFlags(options: ProjectOptions, fallback?: Mode): Mode | undefined {
  if (options.dev && options.prod) throw new UsageError('--dev and --prod cannot be used together: choose one.');
  if (options.dev) return 'development';
  if (options.prod) return 'production';
  return fallback;
}

/**
 * Resolves the configuration and makes the logger; warns once about ignored keys. The admin
 * token leaves alyx's environment here, before any process is started.
 */
export function loadContext(options: ProjectOptions, mode: Mode | undefined, logFd: 1 | 2): CommandContext {
  const config = resolveConfig({
    projectDir: options.cwd ?? process.cwd(),
    configFile: options.config,
    mode,
    flags: {
      port: options.port,
      host: options.host,
      functions: options.functions,
      watch: options.watch === false ? false : undefined,
      logLevel: options.logLevel,
      logFormat: options.logFormat,
    },
    isTTY: Boolean(logFd === 1 ? process.stdout.isTTY : process.stderr.isTTY),
  });
  const adminTokenExposures = guardAdminToken(config.adminToken);
  const logger = createLogger({ level: config.logging.level, format: config.logging.format, fd: logFd });
  if (config.ignoredKeys.length > 0) {
    logger.warn(
      { keys: config.ignoredKeys },
      `${config.configFile}: ignoring keys that alyx does not use (from the earlier Alyx server): ${config.ignoredKeys.join(', ')}`,
    );
  }
  return { config, logger, adminTokenExposures };
}
