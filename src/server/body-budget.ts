/**
 * The memory that request bodies in flight may hold together. Each body is capped by
 * server.max_body_size, but many at once are not: past this budget a request gets
 * 503 OVERLOADED instead of its body being kept. A body's share is held from its first byte
 * until its answer is sent, as its input and request document live that long.
 */
export class BodyBudget {
  readonly limitBytes: number;
  #heldBytes = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  /** Eight bodies of the largest size allowed, and never less than 64 MiB. */
  static forMaxBody(maxBodyBytes: number): BodyBudget {
    return new BodyBudget(Math.max(8 * maxBodyBytes, 64 * 1024 * 1024));
  }

  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Takes `bytes` more of the budget; false (and nothing taken) when that would pass it. */
  take(bytes: number): boolean {
    if (this.#heldBytes + bytes > this.limitBytes) return false;
    this.#heldBytes += bytes;
    return true;
  }

  giveBack(bytes: number): void {
    this.#heldBytes = Math.max(0, this.#heldBytes - bytes);
  }
}
