import type { AddressInfo } from 'node:net';
import type { AlyxConfig } from '../config/resolve';
import { serverUrl } from '../config/server-url';
import { ServerStartError, ShuttingDownError } from '../errors';
import { Invoker } from '../invoke/invoker';
import { processStartNote, processStartWay } from '../process/native-process';
import { ProcessPool } from '../process/pool';
import { ResidentPool } from '../process/resident-pool';
import { diffSnapshots, FunctionRegistry, loadSnapshot, type FunctionSnapshot } from '../functions/registry';
import { owner } from '../process/owner';
import { startDevLoop } from '../dev/dev-loop';
import { Background } from '../background/background';
import type { Logger } from '../logger';
import { createHttpServer } from './app';
import { BodyBudget } from './body-budget';
import { InflightInvocations } from './inflight';
import type { ServerContext } from './routes';
import { reportFunctions } from './startup-report';
import { SeenWebhooks } from './ingress/seen-webhooks';
import { TIMESTAMP_TOLERANCE_MS } from '../ingress/webhook-signature';
import { IdentityVerifier } from '../ingress/identity';

export interface RunServerOptions {
  readonly config: AlyxConfig;
  readonly logger: Logger;
  readonly version: string;
  /** --strict: refuse to start unless every function is ready. */
  readonly strict?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** Time allowed, after the drain, for invocations ended by shutdown to report back. */
const ABORT_GRACE_MS = 3000;

/**
 * Starts the server and serves until SIGTERM or SIGINT. Resolves once it has drained and
 * closed. A second signal exits at once with status 1; SIGHUP re-discovers the functions.
 */
export async function runServer(options: RunServerOptions): Promise<void> {
  const { config, logger } = options;
  const env = options.env ?? process.env;
  const registry = new FunctionRegistry(() => loadSnapshot(config, env));
  const functions = registry.list();
  const notReady = functions.filter((fn) => fn.plan.status !== 'ready');
  if (options.strict && notReady.length > 0) {
    reportFunctions(logger, config, functions, '');
    throw new ServerStartError(
      `--strict: ${notReady.length} function(s) not ready: ${notReady.map((fn) => `${fn.def.name} (${fn.plan.status}: ${fn.plan.message})`).join('; ')}`,
    );
  }

  let shuttingDown = false;
  const inflight = new InflightInvocations();
  const pool = new ProcessPool({ logger });
  const residents = new ResidentPool({ logger });
  /** Set once made: the development watcher may reload before. */
  let startedBackground: Background | null = null;
  /**
   * Re-discovers the functions. Warm processes run what they loaded when they started: an
   * operator's reload (SIGHUP, the admin endpoint) picking up a deploy ends them all; a
   * development reload ends only those of functions that changed or left.
   */
  const reload = (reason: string, scope: 'all' | 'changed' = 'all'): number => {
    const previous = registry.reload();
    if (scope === 'all') {
      void pool.drain(reason);
      residents.drain(reason);
    } else {
      for (const [name, before] of previous.functions) {
        if (registry.get(name) === before) continue;
        void pool.drainFunction(name, reason);
        residents.drainFunction(name, reason);
      }
    }
    logChanges(logger, previous, registry.snapshot, reason);
    startedBackground?.reloaded();
    return registry.snapshot.functions.size;
  };
  const devLoop =
    config.mode === 'development'
      ? await startDevLoop({
          config,
          registry,
          logger,
          reload: (reason) => reload(reason, 'changed'),
          onFunctionChange: (name) => {
            void pool.drainFunction(name, 'its files changed');
            residents.drainFunction(name, 'its files changed');
          },
        })
      : null;
  const invoker = new Invoker(config, registry, logger, env, { waitForBuild: devLoop?.waitForBuild, pool, residents });
  const background = new Background({ config, registry, invoker, logger });
  startedBackground = background;
  const context: ServerContext = {
    config,
    registry,
    invoker,
    logger,
    inflight,
    bodies: BodyBudget.forMaxBody(config.server.maxBodyBytes),
    version: options.version,
    startedAt: Date.now(),
    isShuttingDown: () => shuttingDown,
    reload: () => reload('admin reload'),
    env,
    background,
    webhooksSeen: new SeenWebhooks(TIMESTAMP_TOLERANCE_MS),
    identity: IdentityVerifier.fromConfig(config.auth),
  };
  const server = createHttpServer(context);
  let url: string;
  try {
    url = await listen(server, config);
  } catch (error) {
    // The watcher and warm processes would otherwise keep a server that never started alive.
    await Promise.all([devLoop?.close(), pool.close(), residents.close()]);
    throw error;
  }
  invoker.useBaseUrl(url);
  try {
    // After listen: background invocations are told the address they may call back.
    await background.start();
  } catch (error) {
    server.close();
    await Promise.all([devLoop?.close(), pool.close(), residents.close(), background.stop(0)]);
    throw error;
  }
  owner.reportTo(logger);
  logger.info({ url, mode: config.mode, process_start: processStartWay(), subreaper: owner.isSubreaper }, `alyx ${config.mode === 'development' ? 'dev' : 'serve'} listening on ${url}`);
  if (processStartWay() !== 'posix_spawn') logger.info(processStartNote());
  reportFunctions(logger, config, functions, url);

  return new Promise<void>((resolve) => {
    const shutdown = async (signal: NodeJS.Signals): Promise<void> => {
      shuttingDown = true;
      const again = inflight.size > 0 ? ` (${signal === 'SIGINT' ? 'press Ctrl-C' : `send ${signal}`} again to exit now)` : '';
      logger.info({ signal, running: inflight.size }, `${signal}: shutting down, ${inflight.size} invocation(s) running${again}`);
      server.close();
      server.closeIdleConnections();
      await Promise.all([devLoop?.close(), pool.close()]);
      const drainRequests = async (): Promise<void> => {
        if (await inflight.waitForAll(config.server.shutdownTimeoutMs)) return;
        logger.warn({ running: inflight.size }, `ending ${inflight.size} invocation(s) still running after server.shutdown_timeout`);
        inflight.abortAll(new ShuttingDownError());
        await inflight.waitForAll(ABORT_GRACE_MS);
      };
      // Background invocations get the same time; what does not finish goes back to the queue.
      await Promise.all([drainRequests(), background.stop(config.server.shutdownTimeoutMs)]);
      // Reuse processes serving an invocation end after its answer: by now every one is answered.
      await residents.close();
      server.closeAllConnections();
      logger.info('stopped');
      removeHandlers();
      resolve();
    };
    const onStop = (signal: NodeJS.Signals): void => {
      if (shuttingDown) {
        const killed = owner.killEverything();
        process.stderr.write(`alyx: ${signal} again: exiting now${killed ? `, ending ${killed} running invocation(s)` : ''}\n`);
        process.exit(1);
      }
      void shutdown(signal);
    };
    const onHangup = (): void => {
      reload('SIGHUP');
    };
    const removeHandlers = (): void => {
      process.off('SIGTERM', onStop);
      process.off('SIGINT', onStop);
      process.off('SIGHUP', onHangup);
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', onHangup);
  });
}

function listen(server: ReturnType<typeof createHttpServer>, config: AlyxConfig): Promise<string> {
  const { host, port, tls } = config.server;
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const hint = error.code === 'EADDRINUSE' ? `port ${port} is in use: choose another with --port or server.port` : error.message;
      reject(new ServerStartError(`cannot listen on ${host}:${port}: ${hint}`));
    });
    server.listen(port, host, () => {
      const address = server.address() as AddressInfo;
      resolve(serverUrl(tls.enabled, address.address, address.port));
    });
  });
}

/** Logs what a reload changed: + added, - removed, ~ changed. */
export function logChanges(logger: Logger, previous: FunctionSnapshot, next: FunctionSnapshot, reason: string): void {
  const changes = diffSnapshots(previous, next);
  if (changes.added.length + changes.removed.length + changes.changed.length === 0) {
    logger.debug({ reason }, `functions re-discovered (${reason}): no change`);
    return;
  }
  for (const name of changes.added) logger.info({ function: name, change: 'added', reason }, `+ added ${name}`);
  for (const name of changes.removed) logger.info({ function: name, change: 'removed', reason }, `- removed ${name}`);
  for (const name of changes.changed) logger.info({ function: name, change: 'changed', reason }, `~ changed ${name}`);
  logger.info({ reason, functions: next.functions.size, ...changes }, `functions re-discovered (${reason}): ${next.functions.size}`);
}
