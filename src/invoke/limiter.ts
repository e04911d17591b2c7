import { AlyxError, ClientClosedError, OverloadedError } from '../errors';

interface Waiter {
  readonly name: string;
  readonly functionLimit: number | null;
  /** False for an internal call, which only its own function's limit holds back. */
  readonly global: boolean;
  readonly grant: (release: () => void) => void;
}

/**
 * At most `limit` invocations run at once, and at most a function's own `concurrency` of
 * that function. The rest wait, first come first served, in one queue of at most `queue`;
 * past that, OVERLOADED. A waiter whose signal aborts leaves the queue without ever running.
 *
 * An internal call (SPEC §13) is not counted against `limit` nor the queue bound: its caller
 * holds a slot while it waits, and callers filling every slot must not deadlock. It still
 * counts against, and waits for, its own function's limit.
 */
export class ConcurrencyLimiter {
  readonly #limit: number;
  readonly #queueLimit: number;
  readonly #runningByFunction = new Map<string, number>();
  readonly #waiting: Waiter[] = [];
  /** Waiters counted against the queue bound: those that are not internal calls. */
  #waitingGlobal = 0;
  #running = 0;

  constructor(limit: number, queueLimit: number) {
    this.#limit = Math.max(1, limit);
    this.#queueLimit = Math.max(0, queueLimit);
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves with a release function once the invocation may run; `onWait` is called when it has
   * to queue. `internal`: an internal call, held back by its function's limit only.
   */
  acquire(name: string, functionLimit: number | null, signal?: AbortSignal, onWait?: () => void, internal = false): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const global = !internal;
    // Waiters that could run are started at every release, so while a slot is free every
    // waiter is held by its own function's limit and does not stand in this one's way.
    if (this.#canRun(name, functionLimit, global)) return Promise.resolve(this.#start(name, global));
    if (global && this.#waitingGlobal >= this.#queueLimit) return Promise.reject(new OverloadedError());
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#dequeue(waiter);
        reject(abortReason(signal as AbortSignal));
      };
      const waiter: Waiter = {
        name,
        functionLimit,
        global,
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
      if (global) this.#waitingGlobal++;
      onWait?.();
    });
  }

  #canRun(name: string, functionLimit: number | null, global: boolean): boolean {
    if (global && this.#running >= this.#limit) return false;
    return functionLimit === null || (this.#runningByFunction.get(name) ?? 0) < functionLimit;
  }

  #start(name: string, global: boolean): () => void {
    if (global) this.#running++;
    this.#runningByFunction.set(name, (this.#runningByFunction.get(name) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (global) this.#running--;
      const left = (this.#runningByFunction.get(name) ?? 1) - 1;
      if (left === 0) this.#runningByFunction.delete(name);
      else this.#runningByFunction.set(name, left);
      this.#grantWaiting();
    };
  }

  #dequeue(waiter: Waiter): void {
    const index = this.#waiting.indexOf(waiter);
    if (index === -1) return;
    this.#waiting.splice(index, 1);
    if (waiter.global) this.#waitingGlobal--;
  }

  /** Starts the first waiters that may run; one held back by its function's limit does not block others. */
  #grantWaiting(): void {
    for (let index = 0; index < this.#waiting.length; ) {
      const waiter = this.#waiting[index];
      if (this.#canRun(waiter.name, waiter.functionLimit, waiter.global)) {
        this.#dequeue(waiter);
        waiter.grant(this.#start(waiter.name, waiter.global));
      } else {
        index++;
      }
    }
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason instanceof AlyxError ? signal.reason : new ClientClosedError();
}
