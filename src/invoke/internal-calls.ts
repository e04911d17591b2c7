import { randomHex } from '../random-hex';

/** Who holds an internal token: the running invocation it was issued to. */
export interface InternalCaller {
  readonly functionName: string;
  readonly requestId: string;
  /** The caller's own context.auth, handed on to what it calls. */
  readonly auth: unknown;
  /** 0 for an invocation a client started; 1 for one an invocation called; and so on. */
  readonly depth: number;
}

/** SPEC §13: a chain of internal calls deeper than this is refused with 508. */
export const MAX_CALL_DEPTH = 8;

/**
 * The internal tokens of the invocations running now (SPEC §13). Each invocation gets a fresh
 * one in its context; alyx accepts it as a bearer token while that invocation runs, and never after.
 */
export class InternalCalls {
  readonly #callers = new Map<string, InternalCaller>();

  issue(caller: InternalCaller): string {
    const token = randomHex(32);
    this.#callers.set(token, caller);
    return token;
  }

  /** The invocation that holds `token`, while it runs; undefined otherwise. */
  callerOf(token: string): InternalCaller | undefined {
    return this.#callers.get(token);
  }

  revoke(token: string): void {
    this.#callers.delete(token);
  }
}
