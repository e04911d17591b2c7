import path from 'node:path';
import { runBuild, type BuildResult } from '../functions/build';
import type { FunctionDef } from '../functions/types';
import type { Logger } from '../logger';

interface BuildState {
  timer: NodeJS.Timeout | null;
  running: Promise<void> | null;
  /** A change arrived during the running build: exactly one more build follows it. */
  again: boolean;
  /** While a build is pending or running: settles when neither is left. */
  idle: { promise: Promise<void>; resolve: () => void } | null;
}

export interface DevBuilderOptions {
  readonly projectDir: string;
  readonly logger: Logger;
  /** Looks up the current definition (a reload may have changed it since the change was seen). */
  readonly lookup: (name: string) => FunctionDef | undefined;
  /** Whether development runs this function's build output (runtime binary); otherwise its source runs, and its build is for production only. */
  readonly runsOutput?: (name: string) => boolean;
  /** Called after every build, so the registry can pick up a new or restored output. */
  readonly onBuilt: (name: string, result: BuildResult) => void;
  readonly debounceMs?: number;
}

/**
 * Development builds: debounced per function, one at a time per function, and a change
 * during a build queues exactly one more (never a pile of them).
 */
export class DevBuilder {
  readonly #options: DevBuilderOptions;
  readonly #states = new Map<string, BuildState>();
  readonly #abort = new AbortController();
  /** Functions whose failing production build was reported already (development runs their source). */
  readonly #quietFailures = new Set<string>();

  constructor(options: DevBuilderOptions) {
    this.#options = options;
  }

  /** A watched file of `name` changed: build after the debounce. */
  schedule(name: string): void {
    const state = this.#state(name);
    this.#markBusy(state);
    if (state.timer) clearTimeout(state.timer);
    state.timer = setTimeout(() => {
      state.timer = null;
      void this.build(name);
    }, this.#options.debounceMs ?? 100);
  }

  /** Builds now, or after the running build if there is one; resolves when the function is idle. */
  build(name: string): Promise<void> {
    const state = this.#state(name);
    if (state.running) {
      state.again = true;
      this.#options.logger.debug({ function: name, build: 'queued' }, `${name} changed during its build: one more build follows`);
      return this.whenIdle(name);
    }
    this.#markBusy(state);
    state.running = this.#runLoop(name, state);
    return this.whenIdle(name);
  }

  /** Resolves once `name` has no build running, pending or waiting out its debounce. */
  whenIdle(name: string): Promise<void> {
    return this.#states.get(name)?.idle?.promise ?? Promise.resolve();
  }

  /** Stops pending builds and ends running ones. */
  close(): void {
    for (const state of this.#states.values()) {
      if (state.timer) clearTimeout(state.timer);
      state.timer = null;
      state.again = false;
      this.#settleIfIdle(state);
    }
    this.#abort.abort();
  }

  async #runLoop(name: string, state: BuildState): Promise<void> {
    try {
      do {
        state.again = false;
        await this.#buildOnce(name);
      } while (state.again && !this.#abort.signal.aborted);
    } finally {
      state.running = null;
      this.#settleIfIdle(state);
    }
  }

  #markBusy(state: BuildState): void {
    if (state.idle) return;
    let resolve!: () => void;
    const promise = new Promise<void>((settle) => (resolve = settle));
    state.idle = { promise, resolve };
  }

  #settleIfIdle(state: BuildState): void {
    if (state.timer || state.running || !state.idle) return;
    state.idle.resolve();
    state.idle = null;
  }

  async #buildOnce(name: string): Promise<void> {
    const fn = this.#options.lookup(name);
    if (!fn?.build?.command || this.#abort.signal.aborted) return;
    const { logger, projectDir } = this.#options;
    const log = logger.child({ function: name });
    log.info({ build: 'started' }, `building ${name}: ${[fn.build.command, ...fn.build.args].join(' ')}`);
    const result = await runBuild(fn, { projectDir, signal: this.#abort.signal });
    if (result.ok) {
      log.info({ build: 'succeeded', duration_ms: result.durationMs }, `built ${name} in ${result.durationMs} ms -> ${path.relative(projectDir, fn.build.output)}`);
      this.#quietFailures.delete(name);
    } else if (this.#options.runsOutput?.(name) === false) {
      // Development runs the source: a failing production build changes nothing here. Said once, until it succeeds.
      if (!this.#quietFailures.has(name)) {
        this.#quietFailures.add(name);
        log.warn(
          { build: 'failed', duration_ms: result.durationMs, output: result.log },
          `the production build of ${name} fails (${result.problem}); development runs its source and is not affected; "alyx build ${name}" shows the whole output`,
        );
      } else log.debug({ build: 'failed', duration_ms: result.durationMs }, `the production build of ${name} still fails`);
    } else {
      const restored = result.restored ? '; the previous output was put back' : '';
      log.error(
        { build: 'failed', duration_ms: result.durationMs, output: result.log },
        `build of ${name} failed after ${result.durationMs} ms: ${result.problem}${restored}\n${result.log.trimEnd()}`,
      );
    }
    this.#options.onBuilt(name, result);
  }

  #state(name: string): BuildState {
    let state = this.#states.get(name);
    if (!state) {
      state = { timer: null, running: null, again: false, idle: null };
      this.#states.set(name, state);
    }
    return state;
  }
}
