import fs from 'node:fs';
import type { AlyxConfig } from '../config/resolve';
import type { FunctionRegistry } from '../functions/registry';
import type { Invoker } from '../invoke/invoker';
import type { Logger } from '../logger';
import { StateUnavailableError } from '../errors';
import { isSharedStore, openFileStore, openStateStore } from '../state/open-store';
import type { InvocationRecord, NewInvocation, StateStore } from '../state/store';
import { CallbackSender } from './callbacks';
import { Scheduler } from './scheduler';
import { BackgroundWorker } from './worker';

/** How often a server without a state file looks whether one appeared. */
const FILE_LOOK_MS = 1000;
/** A shared store's ack deadline exceeds the longest function timeout by this much. */
const ACK_WAIT_MARGIN_MS = 10_000;

export interface BackgroundOptions {
  readonly config: AlyxConfig;
  readonly registry: FunctionRegistry;
  readonly invoker: Invoker;
  readonly logger: Logger;
}

/**
 * A server's background work (SPEC §11–12): the state store, the worker that runs what is
 * queued, the callbacks, and the schedules. The store opens at start when there is something
 * to serve (a state file, schedules that fire), otherwise at the first background request, so
 * a server that never uses background work never creates a file.
 */
export class Background {
  readonly #options: BackgroundOptions;
  #store: StateStore | null = null;
  #worker: BackgroundWorker | null = null;
  #callbacks: CallbackSender | null = null;
  #scheduler: Scheduler | null = null;
  #stopped = false;
  #lookForFile: NodeJS.Timeout | null = null;

  constructor(options: BackgroundOptions) {
    this.#options = options;
  }

  /** Whether schedules fire by themselves: in production, and in development with dev.schedules. */
  get firesSchedules(): boolean {
    const { config } = this.#options;
    return config.mode === 'production' || config.dev.schedules;
  }

  /**
   * At server start. A shared store (NATS) is connected to now. A file store opens when the file
   * exists or schedules will fire; otherwise this looks for the file every second: `alyx invoke
   * --async` may create it while this server runs. Throws StateUnavailableError.
   */
  async start(): Promise<void> {
    const { config, registry, logger } = this.#options;
    if (isSharedStore(config)) {
      const store = await openStateStore(config, { ackWaitMs: this.#ackWaitMs(), log: (message) => logger.info(message) });
      if (this.#stopped) await store.close();
      else this.#begin(store);
      return;
    }
    const hasSchedules = registry.list().some(({ def }) => def.schedules.length > 0);
    if (fs.existsSync(config.state.url) || (this.firesSchedules && hasSchedules)) {
      this.store();
      return;
    }
    if (this.#lookForFile) clearInterval(this.#lookForFile);
    this.#lookForFile = setInterval(() => {
      if (this.#store || this.#stopped || !fs.existsSync(config.state.url)) return;
      try {
        this.store();
      } catch (error) {
        if (this.#lookForFile) clearInterval(this.#lookForFile);
        logger.error({ err: error }, (error as Error).message);
      }
    }, FILE_LOOK_MS);
    this.#lookForFile.unref();
  }

  /** The store, opened (and the work on it started) on first use. Throws StateUnavailableError. */
  store(): StateStore {
    if (this.#store) return this.#store;
    // A shared store is connected to at start (a failure there ends the server): it cannot be missing later.
    if (isSharedStore(this.#options.config)) throw new StateUnavailableError('the state store is not connected');
    return this.#begin(openFileStore(this.#options.config));
  }

  /** Why background work cannot be served now; null when it can (or no store is in use). */
  unavailable(): string | null {
    return this.#store?.unavailable() ?? null;
  }

  #begin(store: StateStore): StateStore {
    const { config, registry, invoker, logger } = this.#options;
    this.#store = store;
    if (this.#lookForFile) clearInterval(this.#lookForFile);
    logger.info({ state: store.location }, `background state in ${store.location}`);
    const callbacks = new CallbackSender({ store, logger });
    this.#callbacks = callbacks;
    this.#worker = new BackgroundWorker({
      store,
      invoker,
      logger,
      slots: Math.max(1, Math.floor(config.functions.concurrency / 2)),
      retriesOf: (name) => registry.get(name)?.def.retries ?? config.state.retries,
      onFinished: () => callbacks.kick(),
    });
    this.#scheduler = new Scheduler({ store, registry, logger, fires: this.firesSchedules, onQueued: () => this.#worker?.wake() });
    if (!this.#stopped) {
      this.#worker.start();
      this.#scheduler.start();
      callbacks.kick();
    }
    return store;
  }

  /** The store when there is one to read: open, or a state file that exists; null when nothing was ever stored. */
  existingStore(): StateStore | null {
    if (this.#store || isSharedStore(this.#options.config)) return this.store();
    return fs.existsSync(this.#options.config.state.url) ? this.store() : null;
  }

  /** Stores an invocation and wakes the worker; an existing request id is answered as it stands. */
  async enqueue(invocation: NewInvocation): Promise<{ record: InvocationRecord; created: boolean }> {
    const stored = await this.store().enqueue(invocation);
    if (stored.created) this.#worker?.wake();
    return stored;
  }

  /** The functions were re-discovered: schedules may have come, gone or changed. */
  reloaded(): void {
    if (!this.#store && this.firesSchedules && !isSharedStore(this.#options.config)) {
      this.start().catch((error: unknown) => this.#options.logger.error({ err: error }, (error as Error).message));
    }
    this.#scheduler?.refresh();
  }

  /** Longer than any function's timeout: a delivery is taken for lost only when its invocation must have ended. */
  #ackWaitMs(): number {
    const { config, registry } = this.#options;
    const longest = Math.max(config.functions.timeoutMs, ...registry.list().map(({ def }) => def.timeoutMs ?? 0));
    return longest + ACK_WAIT_MARGIN_MS;
  }

  /** Wakes the worker: work was queued that it does not know of. */
  wake(): void {
    this.#worker?.wake();
  }

  get scheduler(): Scheduler | null {
    return this.#scheduler;
  }

  /** SIGTERM: no new work; running invocations get `timeoutMs`, then go back to the queue. */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopped = true;
    if (this.#lookForFile) clearInterval(this.#lookForFile);
    this.#scheduler?.stop();
    await this.#worker?.stop(timeoutMs);
    await this.#callbacks?.close();
    await this.#store?.close();
  }
}
