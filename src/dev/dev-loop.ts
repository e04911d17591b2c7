import path from 'node:path';
import type { AlyxConfig } from '../config/resolve';
import { diffSnapshots, type FunctionRegistry, type FunctionSnapshot } from '../functions/registry';
import type { Logger } from '../logger';
import { DevBuilder } from './builder';
import { FunctionWatcher } from './watcher';

export interface DevLoop {
  /** Resolves once a function whose development entry is its build output has no build under way. */
  waitForBuild(name: string): Promise<void>;
  close(): Promise<void>;
}

export interface DevLoopOptions {
  readonly config: AlyxConfig;
  readonly registry: FunctionRegistry;
  readonly logger: Logger;
  /** Re-discovers the functions and logs what changed; what did not change keeps its state (warm processes). */
  readonly reload: (reason: string) => void;
  /** Any file of a function changed (its warm processes run what they loaded at start). */
  readonly onFunctionChange?: (name: string) => void;
}

const RELOAD_DEBOUNCE_MS = 100;

/**
 * SPEC §7: builds at startup what development runs from build output and is missing, then
 * (unless dev.watch is off) re-discovers and rebuilds as files change.
 */
export async function startDevLoop({ config, registry, logger, reload, onFunctionChange }: DevLoopOptions): Promise<DevLoop> {
  const builder = new DevBuilder({
    projectDir: config.projectDir,
    logger,
    lookup: (name) => registry.get(name)?.def,
    runsOutput: (name) => registry.get(name)?.plan.from === 'output',
    // A new output changes what the function runs even where its definition stayed the same.
    onBuilt: (name) => {
      onFunctionChange?.(name);
      reload('build');
    },
  });
  for (const { def, plan } of registry.list()) {
    if (plan.from === 'output' && plan.status === 'not_built' && def.build?.command) void builder.build(def.name);
  }

  let watcher: FunctionWatcher | null = null;
  let reloadTimer: NodeJS.Timeout | null = null;
  if (config.dev.watch) {
    watcher = new FunctionWatcher({
      projectDir: config.projectDir,
      functionsPath: config.functions.path,
      projectFiles: [path.join(config.projectDir, '.env')],
      lookup: (name) => registry.get(name)?.def,
      onStructureChange: () => {
        if (reloadTimer) clearTimeout(reloadTimer);
        reloadTimer = setTimeout(() => {
          reloadTimer = null;
          const previous = registry.snapshot;
          reload('file change');
          reportNotReady(logger, previous, registry.snapshot);
        }, RELOAD_DEBOUNCE_MS);
      },
      onBuildInput: (name) => builder.schedule(name),
      onFunctionChange,
      onError: (error) => logger.warn({ err: error }, 'file watcher error'),
    });
    await watcher.start();
    logger.info({ watching: config.functions.path }, `watching ${path.relative(config.projectDir, config.functions.path) || '.'} for changes`);
  }

  return {
    waitForBuild: (name) => (registry.get(name)?.plan.from === 'output' ? builder.whenIdle(name) : Promise.resolve()),
    async close() {
      if (reloadTimer) clearTimeout(reloadTimer);
      builder.close();
      await watcher?.close();
    },
  };
}

/**
 * A function added or changed while alyx dev runs that cannot be served says why, as startup
 * does. A missing build output is left to the builder, which is building it and logs how that went.
 */
function reportNotReady(logger: Logger, previous: FunctionSnapshot, next: FunctionSnapshot): void {
  const { added, changed } = diffSnapshots(previous, next);
  for (const name of [...added, ...changed]) {
    const fn = next.functions.get(name);
    if (!fn || fn.plan.status === 'ready' || fn.plan.status === 'not_built') continue;
    logger.warn({ function: name, status: fn.plan.status, reason: fn.plan.message }, `${name} is ${fn.plan.status}: ${fn.plan.message}`);
  }
}
