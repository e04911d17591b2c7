import { createHash } from 'node:crypto';

/** How many deliveries are remembered at most: the oldest are forgotten first. */
const MAX_ENTRIES = 10_000;

/**
 * Standard Webhooks deliveries already answered, by function and `webhook-id`, for as long as
 * a delivery's timestamp may be accepted: the same delivery again is acknowledged, not run.
 * Kept in this process's memory: bounded, and keyed by a digest, so long ids cost no more.
 */
export class SeenWebhooks {
  readonly #expiresAt = new Map<string, number>();
  readonly #ttlMs: number;

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  has(functionName: string, webhookId: string, now = Date.now()): boolean {
    const key = keyOf(functionName, webhookId);
    const expires = this.#expiresAt.get(key);
    if (expires === undefined) return false;
    if (expires > now) return true;
    this.#expiresAt.delete(key);
    return false;
  }

  add(functionName: string, webhookId: string, now = Date.now()): void {
    const key = keyOf(functionName, webhookId);
    this.#expiresAt.delete(key);
    this.#expiresAt.set(key, now + this.#ttlMs);
    // Insertion order is expiry order: the first entries are the oldest.
    for (const [oldest, expires] of this.#expiresAt) {
      if (this.#expiresAt.size <= MAX_ENTRIES && expires > now) break;
      this.#expiresAt.delete(oldest);
    }
  }
}

function keyOf(functionName: string, webhookId: string): string {
  return createHash('sha256').update(`${functionName}\0${webhookId}`).digest('base64');
}
