/** The one table that maps error codes to HTTP statuses (SPEC §6). */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  INVALID_JSON: 400,
  INVALID_INPUT: 400,
  INVALID_ID: 400,
  INVALID_CALLBACK_URL: 400,
  UNAUTHORIZED: 401,
  FUNCTION_NOT_FOUND: 404,
  NOT_FOUND: 404,
  INVOCATION_NOT_FOUND: 404,
  DEAD_LETTER_NOT_FOUND: 404,
  SCHEDULE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  EXECUTION_ERROR: 502,
  OUTPUT_TOO_LARGE: 502,
  MEMORY_LIMIT_EXCEEDED: 502,
  FUNCTION_NOT_READY: 503,
  OVERLOADED: 503,
  SHUTTING_DOWN: 503,
  STATE_UNAVAILABLE: 503,
  TIMEOUT: 504,
  CALL_DEPTH_EXCEEDED: 508,
  CLIENT_CLOSED_REQUEST: 499,
  INTERNAL_ERROR: 500,
};

/** Codes that never reach an HTTP client: they end a CLI command instead. */
export const CLI_ONLY_CODES: readonly string[] = ['CONFIG_ERROR', 'USAGE_ERROR', 'SERVER_START_ERROR', 'FUNCTION_EXISTS'];

/**
 * The HTTP status of a failure. A failure the function reported itself is 500 unless it asked
 * for a status between 400 and 599 with `error.status`.
 */
export function httpStatusFor(code: string, reportedByFunction = false, requestedStatus: number | null = null): number {
  if (reportedByFunction) return requestedStatus ?? 500;
  return STATUS_BY_CODE[code] ?? 500;
}

/** Headers that go with a code wherever it is answered. */
const HEADERS_BY_CODE: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  OVERLOADED: { 'Retry-After': '1' },
};

export function headersFor(code: string | undefined): Readonly<Record<string, string>> {
  return (code && HEADERS_BY_CODE[code]) || {};
}
