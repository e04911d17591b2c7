import { ShuttingDownError } from '../errors';
import { toEnvelope, type Invoker } from '../invoke/invoker';
import type { Logger } from '../logger';
import type { AttemptOutcome, InvocationRecord, StateStore } from '../state/store';
import { backoffMs, verdictFor } from './retry-policy';

export interface WorkerOptions {
  readonly store: StateStore;
  readonly invoker: Invoker;
  readonly logger: Logger;
  /** How many background invocations run at once: half the global limit, at least 1 (SPEC §11). */
  readonly slots: number;
  /** The retries of a function's invocations: its manifest's, else state.retries. */
  readonly retriesOf: (functionName: string) => number;
  /** Told when an invocation has ended for good and has a callback URL. */
  readonly onFinished?: () => void;
}

/** How long the worker sleeps, at most, before it looks for work queued by another process. */
const POLL_MS = 1000;
/** The pause before an invocation that found every slot and the queue taken tries again. */
const OVERLOADED_PAUSE_MS = 1000;
/** Time allowed, after the drain, for invocations ended by shutdown to report back. */
const ABORT_GRACE_MS = 3000;

/**
 * Runs queued invocations from the store through the invoker, at most `slots` at a time, and
 * records each attempt's end: success, a retry after a backoff, or a dead letter.
 */
export class BackgroundWorker {
  readonly #options: WorkerOptions;
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  #stopping = false;
  #pumping = false;
  #pumpAgain = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: WorkerOptions) {
    this.#options = options;
  }

  get running(): number {
    return this.#running.size;
  }

  start(): void {
    this.wake();
  }

  /** Looks for due work now: something was queued, or a slot came free. */
  wake(): void {
    if (this.#stopping) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    void this.#pump();
  }

  /**
   * Takes no new work, lets what runs finish within `timeoutMs`, then ends the rest: those go
   * back to the queue, without using up a retry.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (!(await this.#settled(timeoutMs))) {
      this.#options.logger.warn({ running: this.#running.size }, `ending ${this.#running.size} background invocation(s) still running: they go back to the queue`);
      for (const { controller } of this.#running.values()) controller.abort(new ShuttingDownError());
      await this.#settled(ABORT_GRACE_MS);
    }
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    if (this.#timer) clearTimeout(this.#timer);
    try {
      do {
        this.#pumpAgain = false;
        while (!this.#stopping && this.#running.size < this.#options.slots) {
          const record = await this.#options.store.claim();
          if (!record) break;
          if (this.#stopping) {
            // The stop came while the claim waited for work: this one goes back, no retry used.
            await this.#options.store.finish(record.requestId, { status: 'queued', runAt: record.runAt });
            break;
          }
          this.#start(record);
        }
        // A wake that comes while this looks for the next due time is kept by #pumpAgain.
        if (!this.#pumpAgain && !this.#stopping && this.#running.size < this.#options.slots) await this.#sleepUntilDue();
      } while (this.#pumpAgain && !this.#stopping);
    } catch (error) {
      this.#options.logger.error({ err: error }, 'background work: the state store failed; trying again shortly');
      this.#arm(POLL_MS);
    } finally {
      this.#pumping = false;
    }
  }

  async #sleepUntilDue(): Promise<void> {
    const next = await this.#options.store.nextDueAt();
    this.#arm(next === null ? POLL_MS : Math.min(POLL_MS, Math.max(0, next - Date.now())));
  }

  #arm(delayMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#stopping) return;
    this.#timer = setTimeout(() => this.wake(), delayMs);
    this.#timer.unref();
  }

  #start(record: InvocationRecord): void {
    const controller = new AbortController();
    // A background slot is free once the answer is recorded and the process has left its limiter slot.
    let slotFreed!: () => void;
    const freed = new Promise<void>((resolve) => (slotFreed = resolve));
    const done = Promise.all([this.#run(record, controller.signal, slotFreed), freed])
      .then(() => undefined)
      .catch((error: unknown) => this.#options.logger.error({ err: error, request_id: record.requestId }, 'background work: recording an attempt failed; it runs again'))
      .finally(() => {
        this.#running.delete(record.requestId);
        this.wake();
      });
    this.#running.set(record.requestId, { controller, done });
  }

  async #run(record: InvocationRecord, signal: AbortSignal, onSlotFreed: () => void): Promise<void> {
    const { store, invoker, logger } = this.#options;
    const result = await invoker.invoke(record.function, record.input, {
      requestId: record.requestId,
      signal,
      trigger: record.trigger,
      attempt: record.attempts,
      onSlotFreed,
      auth: record.auth ?? null,
      callDepth: record.callDepth ?? 0,
    });
    const outcome = this.#outcome(record, verdictFor(result), toEnvelope(result));
    const kept = await store.finish(record.requestId, outcome);
    const code = result.error?.code;
    logger.info(
      { function: record.function, request_id: record.requestId, attempt: record.attempts, status: outcome.status, duration_ms: result.durationMs, ...(code ? { code } : {}) },
      `background ${record.function} attempt ${record.attempts}: ${outcome.status}${code ? ` (${code})` : ''} ${result.durationMs}ms`,
    );
    if (!kept) logger.warn({ request_id: record.requestId }, 'background work: this attempt ended after its claim was given up; its result is not recorded');
    else if (record.callbackUrl && (outcome.status === 'succeeded' || outcome.status === 'dead')) this.#options.onFinished?.();
  }

  #outcome(record: InvocationRecord, verdict: ReturnType<typeof verdictFor>, envelope: Record<string, unknown>): AttemptOutcome {
    const now = Date.now();
    switch (verdict) {
      case 'succeeded':
        return { status: 'succeeded', envelope };
      case 'requeue':
        // Back in its place in the queue, not behind what came after it.
        return { status: 'queued', runAt: record.runAt };
      case 'requeue_later':
        return { status: 'queued', runAt: now + OVERLOADED_PAUSE_MS };
      case 'retry': {
        const retry = record.failures + 1;
        if (retry <= this.#options.retriesOf(record.function)) return { status: 'failed', envelope, runAt: now + backoffMs(retry) };
        return { status: 'dead', envelope };
      }
      case 'final':
        return { status: 'dead', envelope };
    }
  }

  async #settled(timeoutMs: number): Promise<boolean> {
    const all = Promise.all([...this.#running.values()].map(({ done }) => done)).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const settled = await Promise.race([all, late]);
    clearTimeout(timer);
    return settled || this.#running.size === 0;
  }
}
