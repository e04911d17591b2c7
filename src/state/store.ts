/**
 * SPEC §11–12: background work behind one interface. The embedded SQLite store implements it
 * for one machine; a shared store for several replicas implements the same calls.
 */

export type InvocationStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'dead';

/** What started a background invocation: `{type: "async"}`, `{type: "schedule", schedule, scheduled_at}`, … */
export type Trigger = Readonly<{ type: string } & Record<string, unknown>>;

export interface NewInvocation {
  readonly requestId: string;
  readonly function: string;
  readonly input: Record<string, unknown>;
  readonly trigger: Trigger;
  readonly callbackUrl: string | null;
  /** context.auth of the caller that queued it (SPEC §13); null or absent: none. */
  readonly auth?: unknown;
  /** Its depth in a chain of internal calls; absent: 0. */
  readonly callDepth?: number;
}

export interface InvocationRecord extends NewInvocation {
  readonly status: InvocationStatus;
  /** Attempts started so far; the running one included. */
  readonly attempts: number;
  /** Attempts that ended in a retryable failure: they count against the retries. */
  readonly failures: number;
  readonly createdAt: number;
  /** When the invocation may run (next): its creation, or the end of a retry's backoff. */
  readonly runAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  /** The envelope of the last attempt, once one ended. */
  readonly envelope: Record<string, unknown> | null;
}

/** How one attempt ended, as the worker decided. */
export type AttemptOutcome =
  | { readonly status: 'succeeded' | 'dead'; readonly envelope: Record<string, unknown> }
  /** A retryable failure with retries left: it runs again at `runAt`. */
  | { readonly status: 'failed'; readonly envelope: Record<string, unknown>; readonly runAt: number }
  /** Not the function's doing (shutdown, no free slot): it goes back to the queue, no retry used. */
  | { readonly status: 'queued'; readonly runAt: number };

export interface DeadLetter {
  readonly id: string;
  readonly requestId: string;
  readonly function: string;
  readonly attempts: number;
  readonly error: unknown;
  readonly failedAt: number;
}

export interface ScheduleKey {
  readonly function: string;
  readonly name: string;
}

export interface ScheduleRun extends ScheduleKey {
  /** The last fire time that ran (ms); null when the schedule is known but never fired. */
  readonly lastFireAt: number | null;
  /** When the last run (a fire time, or a fire on request) was queued. */
  readonly lastRunAt: number | null;
  /** The status of the invocation the last run queued; null when none is recorded any more. */
  readonly lastStatus: InvocationStatus | null;
}

export interface StateStore {
  /** Where the state lives, for messages: a file path or a URL without credentials. */
  readonly location: string;
  /** Why the store cannot be used now (a lost connection it is restoring); null when it can. */
  unavailable(): string | null;
  /** Stores an invocation; an existing request id is kept as it is (`created: false`), an idempotency key. */
  enqueue(invocation: NewInvocation, now?: number): Promise<{ record: InvocationRecord; created: boolean }>;
  /** An invocation by request id; null when unknown or past `state.result_ttl`. */
  get(requestId: string, now?: number): Promise<InvocationRecord | null>;
  /** Claims the next due invocation for this process and marks it running; null when none is due. */
  claim(now?: number): Promise<InvocationRecord | null>;
  /** When the next queued invocation becomes due (or when to ask again); null when none waits. */
  nextDueAt(): Promise<number | null>;
  /** Records how a claimed attempt ended. False when the claim was lost (this process was taken for dead). */
  finish(requestId: string, outcome: AttemptOutcome, now?: number): Promise<boolean>;
  /** Takes the callbacks due to be sent (each once), for invocations that ended with a callback URL. */
  takeCallbacks(limit: number): Promise<InvocationRecord[]>;
  listDeadLetters(): Promise<DeadLetter[]>;
  /** Queues a dead letter's invocation again (its retries afresh); false when no such entry. */
  retryDeadLetter(id: string, now?: number): Promise<InvocationRecord | null>;
  dropDeadLetter(id: string): Promise<boolean>;
  /**
   * Queues the run of one fire time, unless that time or a later one already ran: exactly
   * once per fire time, whichever process asks. Returns whether this call queued it.
   */
  fireSchedule(key: ScheduleKey, fireAt: number, invocation: NewInvocation, now?: number): Promise<boolean>;
  /** Records a schedule seen for the first time, as if it last fired at `lastFireAt` (no catch-up of its past). */
  registerSchedule(key: ScheduleKey, lastFireAt: number | null): Promise<void>;
  /** Queues a fire on request: it shows as the last run, and leaves the fire times alone. */
  runScheduleNow(key: ScheduleKey, invocation: NewInvocation, now?: number): Promise<InvocationRecord>;
  scheduleRuns(): Promise<ScheduleRun[]>;
  /** Removes results older than `state.result_ttl`; returns how many. */
  purgeExpired(now?: number): Promise<number>;
  /** Gives up this process's claims (what it still runs goes back to the queue) and closes. */
  close(): Promise<void>;
}

/**
 * Request ids and dead-letter ids: what an X-Request-Id may be (SPEC §6), but not starting with
 * a dot, so that no id reads as a path segment ("..") in any store. Anything else is refused before the store.
 */
export const STATE_ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
