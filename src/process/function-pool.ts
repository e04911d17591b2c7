import { AlyxError } from '../errors';
import type { Logger } from '../logger';
import type { FunctionProcess } from './native-process';
import { owner } from './owner';
import type { PoolLease } from './pool';
import { endFunctionProcess, spawnFunctionProcess, type SpawnSpec } from './spawn';

/** A function whose fresh processes keep failing while they wait is not pooled any more. */
const MAX_CONSECUTIVE_DISCARDS = 3;

/** One function's waiting processes and its recent concurrency. */
export class FunctionPool {
  readonly definition: object;
  readonly #name: string;
  readonly #spec: () => SpawnSpec;
  readonly #logger: Logger;
  readonly #windowMs: number;
  readonly #idle: FunctionProcess[] = [];
  readonly #stopWatching = new Map<FunctionProcess, () => void>();
  inUse = 0;
  lastUsed = Date.now();
  #cap = 0;
  #peak = 0;
  #previousPeak = 0;
  #windowStart = Date.now();
  #discards = 0;
  #disabled = false;
  #draining = false;
  #refillScheduled = false;

  constructor(name: string, definition: object, spec: () => SpawnSpec, logger: Logger, windowMs: number) {
    this.#name = name;
    this.definition = definition;
    this.#spec = spec;
    this.#logger = logger;
    this.#windowMs = windowMs;
  }

  get waiting(): number {
    return this.#idle.length;
  }

  acquire(cap: number): PoolLease {
    this.#cap = cap;
    this.inUse++;
    this.lastUsed = Date.now();
    this.#recordConcurrency();
    const child = this.#takeLive();
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.inUse--;
      this.lastUsed = Date.now();
      // Replaced once the invocation has finished: spawn() holds the thread for milliseconds,
      // which the invocation's own response should not wait behind.
      this.#scheduleRefill();
    };
    return { child, release };
  }

  async drain(reason: string): Promise<void> {
    this.#draining = true;
    const ending = this.#idle.splice(0);
    if (ending.length > 0) this.#logger.debug({ processes: ending.length, reason }, `ending ${ending.length} warm process(es): ${reason}`);
    await Promise.all(ending.map((child) => this.#end(child)));
  }

  /** Size: the most invocations of this function that ran at once lately, at least 1, at most the cap. */
  #target(): number {
    if (this.#disabled || this.#draining) return 0;
    this.#recordConcurrency();
    return Math.min(this.#cap, Math.max(1, this.#peak, this.#previousPeak));
  }

  #recordConcurrency(): void {
    const now = Date.now();
    if (now - this.#windowStart >= this.#windowMs) {
      // Two windows are kept, so the size follows a drop in load within one to two windows.
      this.#previousPeak = now - this.#windowStart >= 2 * this.#windowMs ? 0 : this.#peak;
      this.#peak = 0;
      this.#windowStart = now;
    }
    this.#peak = Math.max(this.#peak, this.inUse);
  }

  #takeLive(): FunctionProcess | null {
    for (;;) {
      const child = this.#idle.shift();
      if (!child) return null;
      this.#unwatch(child);
      if (child.exitCode === null && child.signalCode === null) {
        this.#discards = 0;
        return child;
      }
      void this.#end(child);
    }
  }

  /** Spawns one process per turn of the event loop, so requests and responses get through in between. */
  #scheduleRefill(): void {
    if (this.#refillScheduled) return;
    this.#refillScheduled = true;
    setImmediate(() => {
      this.#refillScheduled = false;
      // Processes an invocation took are in use: the pool holds target minus those running.
      if (this.#idle.length >= this.#target()) return;
      this.#spawnOne();
      this.#scheduleRefill();
    });
  }

  #spawnOne(): void {
    let child: FunctionProcess;
    try {
      child = spawnFunctionProcess(this.#spec(), true);
    } catch (error) {
      const why = error instanceof AlyxError ? error.message : ((error as NodeJS.ErrnoException).code ?? String(error));
      this.#discarded(null, `it could not be started (${why})`);
      return;
    }
    if (child.pid === undefined) {
      child.once('error', (error: NodeJS.ErrnoException) => this.#discarded(null, `it could not be started (${error.code ?? error.message})`));
      return;
    }
    const discard = (reason: string): void => {
      const index = this.#idle.indexOf(child);
      if (index === -1) return;
      this.#idle.splice(index, 1);
      this.#unwatch(child);
      void this.#end(child);
      this.#discarded(child, reason);
    };
    const onEarlyOutput = (): void => discard('it wrote output before it had its request');
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      discard(`it exited while waiting (${signal ? `signal ${signal}` : `code ${code}`})`);
    const onError = (): void => discard('it could not be started');
    const ignore = (): void => undefined;
    child.stdout?.on('data', onEarlyOutput);
    child.stderr?.on('data', onEarlyOutput);
    child.once('exit', onExit);
    child.once('error', onError);
    child.stdin?.on('error', ignore);
    this.#stopWatching.set(child, () => {
      child.stdout?.off('data', onEarlyOutput);
      child.stderr?.off('data', onEarlyOutput);
      child.off('exit', onExit);
      child.off('error', onError);
      child.stdin?.off('error', ignore);
      owner.noLongerWarm(child.pid as number);
    });
    // An orphan nobody can attribute waits for every function process that ran when it
    // started; a waiting one, which may be its parent, is ended with its tree and replaced.
    owner.markWarm(child.pid, () => {
      const index = this.#idle.indexOf(child);
      if (index === -1) return;
      this.#idle.splice(index, 1);
      this.#logger.debug({ pid: child.pid }, `replacing a warm process of ${this.#name}: an orphan it may have started waits for it`);
      void this.#end(child);
      this.#scheduleRefill();
    });
    this.#idle.push(child);
  }

  #unwatch(child: FunctionProcess): void {
    this.#stopWatching.get(child)?.();
    this.#stopWatching.delete(child);
  }

  #discarded(child: FunctionProcess | null, reason: string): void {
    this.#discards++;
    this.#logger.warn({ pid: child?.pid, reason }, `discarded a warm process of ${this.#name}: ${reason}`);
    if (this.#discards >= MAX_CONSECUTIVE_DISCARDS) {
      this.#disabled = true;
      this.#logger.warn(`${this.#name} is no longer kept warm: its last ${this.#discards} warm processes failed while waiting (${reason}); each invocation starts its own process`);
      return;
    }
    this.#scheduleRefill();
  }

  async #end(child: FunctionProcess): Promise<void> {
    this.#unwatch(child);
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.stdin?.destroy();
    // Whatever it started while it waited (a helper in its own session, with its own
    // environment) goes with it, as with an invocation's end.
    await endFunctionProcess(child);
  }
}
