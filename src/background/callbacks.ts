import type { Logger } from '../logger';
import type { InvocationRecord, StateStore } from '../state/store';

export interface CallbackOptions {
  readonly store: StateStore;
  readonly logger: Logger;
  /** How long one POST may take, its answer included. */
  readonly timeoutMs?: number;
  /** Between tries: the nth retry waits retryDelayMs × 2^(n-1). */
  readonly retryDelayMs?: number;
}

/** SPEC §11: a callback is tried once and retried up to 3 times. */
const RETRIES = 3;
/** Callbacks in flight at once; the rest wait in the store. */
const MAX_IN_FLIGHT = 16;

/**
 * Sends each finished invocation's envelope to its X-Callback-Url. Callbacks never hold an
 * invocation slot, and each try is bounded in time, so a target that hangs or refuses delays
 * nothing but its own callback. A callback's failure is logged; the invocation's result stays.
 */
export class CallbackSender {
  readonly #options: CallbackOptions;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  #taking = false;

  constructor(options: CallbackOptions) {
    this.#options = options;
  }

  /** Sends the callbacks that are due, as far as there is room. */
  kick(): void {
    if (this.#taking || this.#stop.signal.aborted || this.#inFlight.size >= MAX_IN_FLIGHT) return;
    this.#taking = true;
    this.#options.store
      .takeCallbacks(MAX_IN_FLIGHT - this.#inFlight.size)
      .then((records) => {
        for (const record of records) {
          const sending: Promise<void> = this.#send(record).finally(() => {
            this.#inFlight.delete(sending);
            this.kick();
          });
          this.#inFlight.add(sending);
        }
      })
      .catch((error: unknown) => this.#options.logger.error({ err: error }, 'callbacks: the state store failed'))
      .finally(() => {
        this.#taking = false;
      });
  }

  /** Ends the tries still waiting or running: those callbacks are not sent. */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled([...this.#inFlight]);
  }

  async #send(record: InvocationRecord): Promise<void> {
    const { logger } = this.#options;
    const url = record.callbackUrl as string;
    const body = JSON.stringify(record.envelope);
    let problem = '';
    for (let attempt = 0; attempt <= RETRIES && !this.#stop.signal.aborted; attempt++) {
      if (attempt > 0 && !(await this.#pause((this.#options.retryDelayMs ?? 1000) * 2 ** (attempt - 1)))) break;
      problem = await this.#post(url, body, record.requestId);
      if (!problem) {
        logger.debug({ request_id: record.requestId, callback_url: url }, 'callback delivered');
        return;
      }
    }
    logger.warn({ request_id: record.requestId, callback_url: url, problem }, `callback to ${url} failed after ${RETRIES + 1} tries: ${problem}`);
  }

  /** One try: '' when the target answered 2xx, else what went wrong. */
  async #post(url: string, body: string, requestId: string): Promise<string> {
    const timeout = AbortSignal.timeout(this.#options.timeoutMs ?? 10_000);
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Request-Id': requestId },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([timeout, this.#stop.signal]),
      });
      await response.body?.cancel();
      return response.ok ? '' : `it answered ${response.status}`;
    } catch (error) {
      if (timeout.aborted) return `no answer within ${this.#options.timeoutMs ?? 10_000} ms`;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      return cause?.code ?? cause?.message ?? (error as Error).message;
    }
  }

  /** Waits, unless closed first; false when closed. */
  #pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.#stop.signal.aborted) return resolve(false);
      const timer = setTimeout(() => {
        this.#stop.signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      this.#stop.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
