import { backoffMs, verdictFor } from '../../../src/background/retry-policy';
import type { InvocationResult } from '../../../src/invoke/invoker';

const result = (fields: Partial<InvocationResult>): InvocationResult => ({
  requestId: 'r',
  functionName: 'f',
  durationMs: 1,
  success: false,
  logs: [],
  reportedByFunction: false,
  requestedStatus: null,
  ...fields,
});
const failure = (code: string): InvocationResult => result({ error: { code, message: 'x' } });
const reported = (status: number | null): InvocationResult => result({ error: { code: 'OWN', message: 'x' }, reportedByFunction: true, requestedStatus: status });

describe('which attempts are tried again (SPEC §11)', () => {
  it.each([
    ['a success', result({ success: true }), 'succeeded'],
    ['EXECUTION_ERROR', failure('EXECUTION_ERROR'), 'retry'],
    ['TIMEOUT', failure('TIMEOUT'), 'retry'],
    ['MEMORY_LIMIT_EXCEEDED', failure('MEMORY_LIMIT_EXCEEDED'), 'retry'],
    ['a function error without a status (500)', reported(null), 'retry'],
    ['a function error of 503', reported(503), 'retry'],
    ['a function error of 422', reported(422), 'final'],
    ['a function error of 400', reported(400), 'final'],
    ['FUNCTION_NOT_FOUND', failure('FUNCTION_NOT_FOUND'), 'final'],
    ['FUNCTION_NOT_READY', failure('FUNCTION_NOT_READY'), 'final'],
    ['OUTPUT_TOO_LARGE', failure('OUTPUT_TOO_LARGE'), 'final'],
    ["alyx's shutdown", failure('SHUTTING_DOWN'), 'requeue'],
    ['a full queue', failure('OVERLOADED'), 'requeue_later'],
  ])('%s: %s', (_name, given, verdict) => {
    expect(verdictFor(given)).toBe(verdict);
  });
});

describe('the delay before a retry', () => {
  it('starts at 1 s and doubles, within ±20%, up to 5 min', () => {
    expect([1, 2, 3, 4].map((retry) => backoffMs(retry, () => 0.5))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffMs(1, () => 0)).toBe(800);
    expect(backoffMs(1, () => 1)).toBe(1200);
    expect(backoffMs(20, () => 0.5)).toBe(300_000);
    expect(backoffMs(60, () => 1)).toBe(300_000);
    expect(backoffMs(9, () => 0)).toBe(204_800);
  });
});
