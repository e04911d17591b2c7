import type { InvocationResult } from '../invoke/invoker';

/** The first retry's delay; each one after doubles it, up to MAX_DELAY_MS (SPEC §11). */
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 5 * 60_000;
/** Each delay is spread by up to this share either way, so that retries of many failures do not arrive together. */
const JITTER = 0.2;

/** What alyx does with an attempt's result. */
export type AttemptVerdict = 'succeeded' | 'retry' | 'final' | 'requeue' | 'requeue_later';

/** Codes alyx gives a failed attempt that another attempt may not repeat. */
const RETRYABLE_CODES = new Set(['EXECUTION_ERROR', 'TIMEOUT', 'MEMORY_LIMIT_EXCEEDED']);

/**
 * SPEC §11: a crash, a timeout, the memory cap or a function error of status 500 or more is
 * tried again; a function error with a 4xx status, and anything alyx refused, is final.
 * Shutdown puts the invocation back in the queue; so does a full queue of waiting invocations,
 * after a pause. Neither uses up a retry.
 */
export function verdictFor(result: InvocationResult): AttemptVerdict {
  if (result.success) return 'succeeded';
  const code = result.error?.code ?? '';
  if (result.reportedByFunction) return (result.requestedStatus ?? 500) >= 500 ? 'retry' : 'final';
  if (code === 'SHUTTING_DOWN' || code === 'CLIENT_CLOSED_REQUEST') return 'requeue';
  if (code === 'OVERLOADED') return 'requeue_later';
  return RETRYABLE_CODES.has(code) ? 'retry' : 'final';
}

/** The delay before retry number `retry` (1 for the first): 1 s, 2 s, 4 s … up to 5 min, with jitter. */
export function backoffMs(retry: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.max(0, retry - 1));
  return Math.min(MAX_DELAY_MS, Math.round(base * (1 - JITTER + 2 * JITTER * random())));
}
