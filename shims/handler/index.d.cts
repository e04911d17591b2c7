/** What a function receives besides its input: the request's context, a logger, and calls to other functions. */
export interface Context {
  /** This invocation's id: fresh per invocation, the idempotency key for background work. */
  readonly requestId: string;
  /** The function's name. */
  readonly function: string;
  /** The caller's identity when it sent a valid token, else null. */
  readonly auth: Auth | null;
  /** `functions.env` and the manifest's `env`. */
  readonly env: Readonly<Record<string, string>>;
  /** What started this invocation; null from a server that does not say. */
  readonly trigger: Trigger | null;
  /** 1 for the first attempt of a background invocation, 2 for its first retry, and so on. */
  readonly attempt: number;
  /** The W3C trace context of this invocation, or null. */
  readonly traceparent: string | null;
  /** Lines for the response's `logs`, which alyx writes to its log with the function and request id. */
  readonly log: Logger;
  /**
   * Calls another function through alyx as part of this invocation, and resolves to its output.
   * Its failure is thrown as a FunctionError whose status is the HTTP status alyx answered.
   */
  invoke<O = unknown>(name: string, input?: Record<string, unknown>): Promise<O>;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One entry of the response's `logs`. */
export interface LogEntry {
  level: LogLevel;
  message: string;
  data?: unknown;
  /** ISO 8601. */
  timestamp: string;
}

/** ctx.log: each call adds one entry to the response's `logs`. */
export interface Logger {
  debug(message: string, data?: unknown): void;
  info(message: string, data?: unknown): void;
  warn(message: string, data?: unknown): void;
  error(message: string, data?: unknown): void;
}

/** The identity of a verified token. */
export interface Auth {
  id: string;
  email?: string | null;
  role?: string | null;
  verified?: boolean;
  /** The token's whole payload. */
  claims: Record<string, unknown>;
}

export interface HttpTrigger {
  type: 'http';
  method: string;
  path: string;
  params?: Record<string, string>;
  query?: Record<string, string | string[]>;
}

/** A call from another function's ctx.invoke. */
export interface InternalTrigger {
  type: 'internal';
  caller: string;
  caller_request_id: string;
}

export interface ScheduleTrigger {
  type: 'schedule';
  schedule: string;
  scheduled_at: string;
}

export type Trigger = HttpTrigger | InternalTrigger | ScheduleTrigger;

/**
 * The input a function gets when it names no type: always a JSON object, whose fields are `any`
 * so that an untyped function reads them without casts.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Input = Record<string, any>;

/** A function: its return value (or what its promise resolves to) is the response's `output`. */
export type Handler<I = Input, O = unknown> = (input: I, ctx: Context) => O | Promise<O>;

/**
 * Serves requests with `fn` once the calling module has finished evaluating (when alyx runs the
 * process, or when the calling module is the program's entry), and returns `fn` unchanged.
 */
export declare function handler<I = Input, O = unknown>(fn: Handler<I, O>): Handler<I, O>;

export interface FunctionErrorOptions {
  /** An HTTP status from 400 to 599; alyx answers with it. Others are ignored (500). */
  status?: number;
  /** Any JSON value, sent to the caller as `error.details`. */
  details?: unknown;
  cause?: unknown;
}

/** Thrown by a function, it becomes the response's `error`: `{code, message, details?, status?}`. */
export declare class FunctionError extends Error {
  constructor(code: string, message: string, options?: FunctionErrorOptions);
  readonly code: string;
  readonly status?: number;
  readonly details?: unknown;
}
