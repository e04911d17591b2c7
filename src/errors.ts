/**
 * Every error a user or an HTTP client can see is an AlyxError with a stable `code`.
 * HTTP statuses are not decided here: the server maps codes to statuses in one table.
 */
export class AlyxError extends Error {
  readonly code: string;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** A bad alyx.yaml, environment override or flag value. CLI exit status 2. */
export class ConfigError extends AlyxError {
  constructor(message: string) {
    super('CONFIG_ERROR', message);
  }
}

/** A command used wrongly (unknown function name on the command line, bad --data). Exit status 2. */
export class UsageError extends AlyxError {
  constructor(message: string) {
    super('USAGE_ERROR', message);
  }
}

export class InvalidJsonError extends AlyxError {
  constructor(message = 'The request body is not valid JSON: send a JSON object.') {
    super('INVALID_JSON', message);
  }
}

export class InvalidInputError extends AlyxError {
  constructor(message = 'The input must be a JSON object, such as {"name": "World"}.') {
    super('INVALID_INPUT', message);
  }
}

export class FunctionNotFoundError extends AlyxError {
  constructor(name: string) {
    super('FUNCTION_NOT_FOUND', `No function named "${name}": see GET /api/functions or "alyx list".`);
  }
}

export class FunctionNotReadyError extends AlyxError {
  constructor(name: string, status: string, message: string) {
    super('FUNCTION_NOT_READY', `Function "${name}" is ${status}: ${message}`, { status });
  }
}

/** The function's process failed without a valid response: crash, garbage output, bad exit. */
export class ExecutionError extends AlyxError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('EXECUTION_ERROR', message, details);
  }
}

export class OutputTooLargeError extends AlyxError {
  constructor(limitBytes: number) {
    super('OUTPUT_TOO_LARGE', `The function wrote more than ${limitBytes} bytes to stdout (functions.max_output).`);
  }
}

export class MemoryLimitExceededError extends AlyxError {
  /** `usedBytes` is the peak resident memory seen; `heap` when the interpreter's own heap limit stopped it first. */
  constructor(limitBytes: number, usedBytes: number, heap = false) {
    const cap = `${Math.round(limitBytes / 1048576)} MB`;
    super(
      'MEMORY_LIMIT_EXCEEDED',
      heap
        ? `The function's heap reached its memory cap of ${cap} and it was ended: raise memory in its manifest or use less.`
        : `The function used ${Math.round(usedBytes / 1048576)} MB, over its memory cap of ${cap}: raise memory in its manifest or use less.`,
      { limit_bytes: limitBytes, used_bytes: usedBytes },
    );
  }
}

export class TimeoutError extends AlyxError {
  constructor(timeoutMs: number, message = `The function did not answer within ${timeoutMs} ms and was ended.`) {
    super('TIMEOUT', message, { timeout_ms: timeoutMs });
  }
}

export class PayloadTooLargeError extends AlyxError {
  constructor(limitBytes: number) {
    super('PAYLOAD_TOO_LARGE', `The request body is larger than ${limitBytes} bytes (server.max_body_size).`, { limit_bytes: limitBytes });
  }
}

export class NotFoundError extends AlyxError {
  constructor(pathname: string) {
    super('NOT_FOUND', `Nothing at ${pathname}: functions are at /api/functions/<name>.`);
  }
}

export class MethodNotAllowedError extends AlyxError {
  readonly allowed: readonly string[];

  constructor(method: string, allowed: readonly string[]) {
    super('METHOD_NOT_ALLOWED', `${method} is not allowed here: use ${allowed.join(', ')}.`);
    this.allowed = allowed;
  }
}

export class UnauthorizedError extends AlyxError {
  constructor() {
    super('UNAUTHORIZED', 'Send the admin token as "Authorization: Bearer <ALYX_ADMIN_TOKEN>".');
  }
}

/** Why a bearer token was refused (SPEC §13); clients can tell "sign in again" from "fix the client". */
export type InvalidTokenReason =
  | 'malformed'
  | 'unsupported_alg'
  | 'bad_signature'
  | 'unknown_key'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'jwks_unavailable';

/** A bearer token that does not verify: a bad token is an error, not anonymity (SPEC §13). */
export class InvalidTokenError extends AlyxError {
  readonly reason: InvalidTokenReason;

  /** `message` says what is wrong and what to do; it never holds key material or the token. */
  constructor(reason: InvalidTokenReason, message: string) {
    super('UNAUTHORIZED', message, { reason });
    this.reason = reason;
  }
}

export class OverloadedError extends AlyxError {
  constructor() {
    super('OVERLOADED', 'Too many invocations are running or waiting: retry shortly.');
  }
}

export class ShuttingDownError extends AlyxError {
  constructor() {
    super('SHUTTING_DOWN', 'The server is shutting down: retry on another instance or after the restart.');
  }
}

/** The client went away before its answer; nobody reads this, but the invocation ends with it. */
export class ClientClosedError extends AlyxError {
  constructor() {
    super('CLIENT_CLOSED_REQUEST', 'The client closed the connection before the answer.');
  }
}

/** An error alyx did not expect: the client learns only that, the log gets the stack. */
export class InternalError extends AlyxError {
  constructor() {
    super('INTERNAL_ERROR', 'alyx failed to handle this request; the server log has the details.');
  }
}

/** `alyx new` refuses to overwrite an existing function folder. */
export class FunctionExistsError extends AlyxError {
  constructor(folder: string) {
    super('FUNCTION_EXISTS', `${folder} already exists: choose another name, or remove the folder first.`);
  }
}

/** The server could not start (port in use, unreadable TLS files). */
export class ServerStartError extends AlyxError {
  constructor(message: string) {
    super('SERVER_START_ERROR', message);
  }
}

/** The state store cannot be opened or written: a bad path, a corrupt file, no SQLite driver. Exit status 1. */
export class StateUnavailableError extends AlyxError {
  constructor(message: string) {
    super('STATE_UNAVAILABLE', message);
  }
}

/** An id in a path that cannot be a request id or a dead letter's id: it never reaches the store. */
export class InvalidIdError extends AlyxError {
  constructor(what: string) {
    super('INVALID_ID', `The ${what} is not a valid id: ids are 1 to 128 letters, digits, ".", "_" and "-", not starting with ".".`);
  }
}

export class InvocationNotFoundError extends AlyxError {
  constructor(requestId: string) {
    super('INVOCATION_NOT_FOUND', `No background invocation "${requestId}": it was never queued here, or its result is older than state.result_ttl.`);
  }
}

export class DeadLetterNotFoundError extends AlyxError {
  constructor(id: string) {
    super('DEAD_LETTER_NOT_FOUND', `No dead letter "${id}": see GET /api/dead-letters or "alyx dead-letters" for the ids.`);
  }
}

/** X-Callback-Url must be an absolute http(s) URL. */
export class InvalidCallbackUrlError extends AlyxError {
  constructor(given: string) {
    super('INVALID_CALLBACK_URL', `X-Callback-Url ${JSON.stringify(given.slice(0, 200))} is not an absolute http:// or https:// URL: give one, or leave the header out.`);
  }
}

/** `alyx schedules run FUNCTION/NAME` named no schedule. */
export class ScheduleNotFoundError extends AlyxError {
  constructor(spec: string) {
    super('SCHEDULE_NOT_FOUND', `No schedule "${spec}": see "alyx schedules" or GET /api/schedules for FUNCTION/NAME.`);
  }
}

/** A webhook whose signature does not verify (SPEC §13): the reason names the header or the check, never the secret. */
export class WebhookSignatureError extends AlyxError {
  constructor(reason: string) {
    super('UNAUTHORIZED', `The webhook's signature does not verify: ${reason}.`);
  }
}

/** A function with `auth: required` called without a valid bearer token or an internal token (SPEC §13). */
export class AuthRequiredError extends AlyxError {
  constructor(name: string) {
    super('UNAUTHORIZED', `Function "${name}" needs a signed-in caller: send "Authorization: Bearer <token>" with a valid token.`);
  }
}

/** A chain of internal calls deeper than 8 (SPEC §13). */
export class CallDepthExceededError extends AlyxError {
  constructor(depth: number) {
    super('CALL_DEPTH_EXCEEDED', `This internal call would be ${depth} calls deep, past the limit of 8: a function probably calls itself in a loop.`, { depth });
  }
}
