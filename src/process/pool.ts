import type { Logger } from '../logger';
import { FunctionPool } from './function-pool';
import type { FunctionProcess } from './native-process';
import type { SpawnSpec } from './spawn';

/**
 * Warm processes: a function's process started ahead of its invocation, blocked reading stdin.
 * An invocation takes one and writes its request to it, so it pays no interpreter start-up;
 * the protocol is unchanged (one process per invocation, one request, then EOF).
 */

export interface ProcessPoolOptions {
  readonly logger: Logger;
  /** A function's warm processes are ended after this long without an invocation. */
  readonly idleMs?: number;
  /** How far back the recent concurrency of a function is remembered. */
  readonly windowMs?: number;
}

/**
 * What one invocation got from the pool. The warm process is handed to runProcess, which owns
 * it from then on; `release` is called once the invocation has finished.
 */
export interface PoolLease {
  /** A warm process, or null when none was waiting (the invocation spawns its own). */
  readonly child: FunctionProcess | null;
  readonly release: () => void;
}

const DEFAULT_IDLE_MS = 60_000;
const DEFAULT_WINDOW_MS = 10_000;

/** The warm processes of every function, each sized to its recent concurrency within its cap. */
export class ProcessPool {
  readonly #logger: Logger;
  readonly #idleMs: number;
  readonly #windowMs: number;
  readonly #pools = new Map<string, FunctionPool>();
  #sweeper: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: ProcessPoolOptions) {
    this.#logger = options.logger;
    this.#idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
    this.#windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
  }

  /** Processes waiting now, all functions together. */
  get waiting(): number {
    let total = 0;
    for (const pool of this.#pools.values()) total += pool.waiting;
    return total;
  }

  /**
   * Takes a warm process of `name` if one waits, and tops the pool up in the background.
   * `definition` identifies what the processes run: a pool made for another one is drained.
   */
  acquire(name: string, definition: object, cap: number, spec: () => SpawnSpec): PoolLease {
    let pool = this.#pools.get(name);
    if (pool && pool.definition !== definition) {
      void pool.drain('the function changed');
      pool = undefined;
    }
    if (!pool) {
      if (cap <= 0 || this.#closed) return { child: null, release: () => undefined };
      pool = new FunctionPool(name, definition, spec, this.#logger.child({ function: name }), this.#windowMs);
      this.#pools.set(name, pool);
      this.#startSweeper();
    }
    return pool.acquire(cap);
  }

  /** Ends the waiting processes of one function (dev: its files changed). */
  async drainFunction(name: string, reason: string): Promise<void> {
    const pool = this.#pools.get(name);
    this.#pools.delete(name);
    await pool?.drain(reason);
  }

  /** Shutdown: ends every waiting process and starts no more. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.drain('shutdown');
  }

  /** Ends every waiting process: reload, SIGHUP. */
  async drain(reason: string): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = null;
    await Promise.all(pools.map((pool) => pool.drain(reason)));
  }

  #startSweeper(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const [name, pool] of this.#pools) {
        if (pool.inUse === 0 && now - pool.lastUsed >= this.#idleMs) {
          this.#pools.delete(name);
          void pool.drain('idle');
        }
      }
      if (this.#pools.size === 0 && this.#sweeper) {
        clearInterval(this.#sweeper);
        this.#sweeper = null;
      }
    }, Math.max(10, Math.min(this.#idleMs / 2, 5000)));
    this.#sweeper.unref();
  }
}
