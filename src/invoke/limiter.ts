import { AlyxError, ClientClosedError, OverloadedError } from '../errors';

interface Waiter {
  readonly name: string;
  readonly functionLimit: number | null;
  readonly grant: (release: () => void) => void;
}

/**
 * At most `limit` invocations run at once, and at most a function's own `concurrency` of
 * that function. The rest wait, first come first served, in one queue of at most `queue`;
 * past that, OVERLOADED. A waiter whose signal aborts leaves the queue without ever running.
 */
export class ConcurrencyLimiter {
  readonly #limit: number;
  readonly #queueLimit: number;
  readonly #runningByFunction = new Map<string, number>();
  readonly #waiting: Waiter[] = [];
  readonly #internalWaiting = new Set<Waiter>();
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

  /** Resolves with a release function once the invocation may run; `onWait` is called when it has to queue. */
  acquire(name: string, functionLimit: number | null, signal?: AbortSignal, onWait?: () => void, beyondGlobalLimit = false): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    // An internal call: its caller holds a global slot while it waits, so only its own function's limit applies.
    if (beyondGlobalLimit) return this.#acquireForFunction(name, functionLimit, signal);
    // Waiters that could run are started at every release, so while a slot is free every
    // waiter is held by its own function's limit and does not stand in this one's way.
    if (this.#canRun(name, functionLimit)) return Promise.resolve(this.#start(name));
    if (this.#waiting.length >= this.#queueLimit) return Promise.reject(new OverloadedError());
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.#waiting.indexOf(waiter);
        if (index !== -1) this.#waiting.splice(index, 1);
        reject(abortReason(signal as AbortSignal));
      };
      const waiter: Waiter = {
        name,
        functionLimit,
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
      onWait?.();
    });
  }

  /** Counted against the function's limit only, waiting (without a queue bound) while it is reached. */
  #acquireForFunction(name: string, functionLimit: number | null, signal: AbortSignal | undefined): Promise<() => void> {
    const start = (): (() => void) => {
      this.#runningByFunction.set(name, (this.#runningByFunction.get(name) ?? 0) + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (this.#runningByFunction.get(name) ?? 1) - 1;
        if (left === 0) this.#runningByFunction.delete(name);
        else this.#runningByFunction.set(name, left);
        this.#grantWaiting();
        this.#grantInternal();
      };
    };
    if (functionLimit === null || (this.#runningByFunction.get(name) ?? 0) < functionLimit) return Promise.resolve(start());
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#internalWaiting.delete(waiter);
        reject(abortReason(signal as AbortSignal));
      };
      const waiter: Waiter = {
        name,
        functionLimit,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(start());
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#internalWaiting.add(waiter);
    });
  }

  /** Starts the internal calls whose function has room again. */
  #grantInternal(): void {
    for (const waiter of this.#internalWaiting) {
      if (waiter.functionLimit === null || (this.#runningByFunction.get(waiter.name) ?? 0) < waiter.functionLimit) {
        this.#internalWaiting.delete(waiter);
        waiter.grant(() => undefined);
      }
    }
  }

  #canRun(name: string, functionLimit: number | null): boolean {
    if (this.#running >= this.#limit) return false;
    return functionLimit === null || (this.#runningByFunction.get(name) ?? 0) < functionLimit;
  }

  #start(name: string): () => void {
    this.#running++;
    this.#runningByFunction.set(name, (this.#runningByFunction.get(name) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      const left = (this.#runningByFunction.get(name) ?? 1) - 1;
      if (left === 0) this.#runningByFunction.delete(name);
      else this.#runningByFunction.set(name, left);
      this.#grantWaiting();
      this.#grantInternal();
    };
  }

  /** Starts the first waiters that may run; one held back by its function's limit does not block others. */
  #grantWaiting(): void {
    for (let index = 0; index < this.#waiting.length && this.#running < this.#limit; ) {
      const waiter = this.#waiting[index];
      if (this.#canRun(waiter.name, waiter.functionLimit)) {
        this.#waiting.splice(index, 1);
        waiter.grant(this.#start(waiter.name));
      } else {
        index++;
      }
    }
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason instanceof AlyxError ? signal.reason : new ClientClosedError();
}
