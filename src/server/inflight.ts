/** The invocations running now, so shutdown can wait for them and then end what remains. */
export class InflightInvocations {
  readonly #running = new Map<AbortController, Promise<unknown>>();

  get size(): number {
    return this.#running.size;
  }

  /** Runs `work` with an AbortController that shutdown can use; the entry leaves when it settles. */
  track<T>(controller: AbortController, work: Promise<T>): Promise<T> {
    this.#running.set(controller, work);
    const remove = (): void => {
      this.#running.delete(controller);
    };
    work.then(remove, remove);
    return work;
  }

  /** Resolves true when every invocation has finished, false when `timeoutMs` passed first. */
  async waitForAll(timeoutMs: number): Promise<boolean> {
    if (this.#running.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const settled = Promise.allSettled([...this.#running.values()]).then(() => true as const);
    const finished = await Promise.race([settled, timedOut]);
    clearTimeout(timer);
    return finished;
  }

  /** Aborts every running invocation with `reason`. */
  abortAll(reason: unknown): void {
    for (const controller of this.#running.keys()) controller.abort(reason);
  }
}
