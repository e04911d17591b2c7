import * as errors from '../../src/errors';
import { CLI_ONLY_CODES, headersFor, httpStatusFor, STATUS_BY_CODE } from '../../src/server/status';

/** One instance of every error class alyx defines. */
const instances: errors.AlyxError[] = [
  new errors.ConfigError('x'),
  new errors.UsageError('x'),
  new errors.InvalidJsonError(),
  new errors.InvalidInputError(),
  new errors.FunctionNotFoundError('f'),
  new errors.FunctionNotReadyError('f', 'not_built', 'run "alyx build f"'),
  new errors.ExecutionError('x'),
  new errors.OutputTooLargeError(1),
  new errors.MemoryLimitExceededError(1, 2),
  new errors.TimeoutError(1),
  new errors.PayloadTooLargeError(1),
  new errors.NotFoundError('/x'),
  new errors.MethodNotAllowedError('POST', ['GET']),
  new errors.UnauthorizedError(),
  new errors.InvalidTokenError('expired', 'The bearer token is not valid: it expired at 2026-05-01T10:00:00.000Z (exp): sign in again.'),
  new errors.OverloadedError(),
  new errors.ShuttingDownError(),
  new errors.ClientClosedError(),
  new errors.InternalError(),
  new errors.ServerStartError('x'),
  new errors.FunctionExistsError('functions/x'),
  new errors.StateUnavailableError('x'),
  new errors.InvalidIdError('request id'),
  new errors.InvocationNotFoundError('r'),
  new errors.DeadLetterNotFoundError('d'),
  new errors.InvalidCallbackUrlError('ftp://x'),
  new errors.ScheduleNotFoundError('f/n'),
  new errors.WebhookSignatureError('X-Hub-Signature-256 is missing'),
  new errors.AuthRequiredError('f'),
  new errors.CallDepthExceededError(9),
];

describe('the error catalogue', () => {
  it('covers every error class in src/errors.ts', () => {
    const classes = Object.values(errors).filter((value) => typeof value === 'function' && value !== errors.AlyxError);
    expect(instances.map((error) => error.constructor).sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      classes.sort((a, b) => (a as { name: string }).name.localeCompare((b as { name: string }).name)),
    );
  });

  it.each(instances.map((error) => [error.code, error]))('%s has a stable code mapped to one status (or is CLI-only)', (code, error) => {
    expect(error).toBeInstanceOf(errors.AlyxError);
    expect(code).toMatch(/^[A-Z_]+$/);
    if (CLI_ONLY_CODES.includes(code)) {
      expect(STATUS_BY_CODE[code]).toBeUndefined();
    } else {
      expect(STATUS_BY_CODE[code]).toBeGreaterThanOrEqual(400);
      expect(httpStatusFor(code)).toBe(STATUS_BY_CODE[code]);
    }
  });

  it('every code in the table belongs to an error class', () => {
    expect(Object.keys(STATUS_BY_CODE).sort()).toEqual([...new Set(instances.map((e) => e.code).filter((c) => !CLI_ONLY_CODES.includes(c)))].sort());
  });

  it('SPEC §6 statuses', () => {
    expect(Object.fromEntries(['INVALID_JSON', 'INVALID_INPUT', 'FUNCTION_NOT_FOUND', 'NOT_FOUND', 'PAYLOAD_TOO_LARGE', 'EXECUTION_ERROR', 'OUTPUT_TOO_LARGE',
      'MEMORY_LIMIT_EXCEEDED', 'FUNCTION_NOT_READY', 'OVERLOADED', 'SHUTTING_DOWN', 'TIMEOUT'].map((code) => [code, httpStatusFor(code)]))).toEqual({
      INVALID_JSON: 400, INVALID_INPUT: 400, FUNCTION_NOT_FOUND: 404, NOT_FOUND: 404, PAYLOAD_TOO_LARGE: 413, EXECUTION_ERROR: 502,
      OUTPUT_TOO_LARGE: 502, MEMORY_LIMIT_EXCEEDED: 502, FUNCTION_NOT_READY: 503, OVERLOADED: 503, SHUTTING_DOWN: 503, TIMEOUT: 504,
    });
  });

  it("a function's own failure is 500 unless it asked for a status", () => {
    expect(httpStatusFor('FUNCTION_ERROR', true, null)).toBe(500);
    expect(httpStatusFor('ANY_CODE_OF_ITS_OWN', true, 422)).toBe(422);
    expect(httpStatusFor('TIMEOUT', true, null)).toBe(500);
  });

  it('OVERLOADED answers carry Retry-After', () => {
    expect(headersFor('OVERLOADED')).toEqual({ 'Retry-After': '1' });
    expect(headersFor('TIMEOUT')).toEqual({});
    expect(headersFor(undefined)).toEqual({});
  });
});
