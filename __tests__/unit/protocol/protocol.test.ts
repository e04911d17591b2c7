import { DEFAULT_FUNCTION_ERROR_CODE, normaliseResponse, parseStdout } from '../../../src/protocol/protocol';

/**
 * Work per line over millions of lines takes seconds; bounded work, tens of ms. The line between
 * them leaves room for a loaded 2-core machine (this is no speed target, which benchmarks hold).
 */
const BOUNDED_MS = 1000;

const OK = { request_id: 'r1', success: true, output: { message: 'Hello, World!' }, logs: [{ level: 'info', message: 'hi' }] };

describe('parseStdout (SPEC §5)', () => {
  it('reads the whole of stdout when it is one JSON object, even pretty-printed over many lines', () => {
    expect(parseStdout(JSON.stringify(OK, null, 2))).toEqual({
      response: { success: true, output: { message: 'Hello, World!' }, logs: [{ level: 'info', message: 'hi' }] },
      otherLines: [],
    });
  });

  it('accepts surrounding whitespace and CRLF line ends', () => {
    expect(parseStdout(`\r\n  ${JSON.stringify(OK)}  \r\n`).response).toMatchObject({ success: true });
    expect(parseStdout(`debug\r\n${JSON.stringify(OK)}\r\n`)).toMatchObject({ response: { success: true }, otherLines: ['debug'] });
  });

  it('takes the JSON line after console.log output; the other non-empty lines are the function\'s output', () => {
    const stdout = ['starting', '', 'loaded 3 users', JSON.stringify(OK), ''].join('\n');
    expect(parseStdout(stdout)).toEqual({
      response: { success: true, output: OK.output, logs: OK.logs },
      otherLines: ['starting', 'loaded 3 users'],
    });
  });

  it('the last JSON-object line wins; earlier ones are output', () => {
    const first = JSON.stringify({ success: true, output: 'first' });
    const last = JSON.stringify({ success: true, output: 'last' });
    const result = parseStdout([first, 'log', last, '[1,2]', 'tail'].join('\n'));
    expect(result.response).toEqual({ success: true, output: 'last', logs: [] });
    expect(result.otherLines).toEqual([first, 'log', '[1,2]', 'tail']);
  });

  it.each([
    ['empty stdout', '', []],
    ['plain text', 'hello\nworld\n', ['hello', 'world']],
    ['a JSON array', '[{"success":true}]', ['[{"success":true}]']],
    ['a JSON string', '"ok"', ['"ok"']],
    ['broken JSON', '{"success": true', ['{"success": true']],
  ])('%s has no response', (_what, stdout, otherLines) => {
    expect(parseStdout(stdout)).toEqual({ response: null, otherLines });
  });

  it('reads a multi-megabyte response on one line', () => {
    const big = 'x'.repeat(8 * 1024 * 1024);
    const result = parseStdout(`${JSON.stringify({ success: true, output: { big } })}\n`);
    expect(result.otherLines).toEqual([]);
    expect(result.response?.success).toBe(true);
    expect((result.response as { output: { big: string } }).output.big).toHaveLength(big.length);
  });

  it('reads a multi-megabyte response on the last line after log lines', () => {
    const big = 'y'.repeat(5 * 1024 * 1024);
    const result = parseStdout(`log line\n${JSON.stringify({ output: big })}`);
    expect(result.otherLines).toEqual(['log line']);
    expect(result.response).toEqual({ success: true, output: big, logs: [] });
  });

  it('a last line that looks like an object but is not JSON is output; the last one that is JSON is the response (SPEC §5)', () => {
    const earlier = JSON.stringify({ success: true, output: 'earlier' });
    const result = parseStdout([earlier, '{not json}', 'tail'].join('\n'));
    expect(result).toEqual({ response: { success: true, output: 'earlier', logs: [] }, otherLines: ['{not json}', 'tail'] });
  });

  it('tries at most 64 lines that look like objects, from the last back, so millions of them cannot hold the server', () => {
    const response = JSON.stringify({ success: true, output: 1 });
    const within = parseStdout([response, ...Array.from({ length: 63 }, () => '{x}')].join('\n'));
    expect(within.response).toEqual({ success: true, output: 1, logs: [] });
    const beyond = parseStdout([response, ...Array.from({ length: 64 }, () => '{x}')].join('\n'));
    expect(beyond.response).toBeNull();
  });

  it('a line that only starts or only ends with a brace is output, not the candidate', () => {
    const response = JSON.stringify({ success: true, output: 1 });
    const result = parseStdout([response, '{ starts', 'ends }', '  ', 'x } y'].join('\n'));
    expect(result.response).toEqual({ success: true, output: 1, logs: [] });
    expect(result.otherLines).toEqual(['{ starts', 'ends }', 'x } y']);
  });

  it('a candidate surrounded by blanks and a CR is still found', () => {
    expect(parseStdout(`log\n \t{"output": 2}\t \r\n\n`)).toEqual({ response: { success: true, output: 2, logs: [] }, otherLines: ['log'] });
  });

  it('keeps the first other lines within the limits and counts the rest, from the first line that did not fit', () => {
    const stdout = ['a', '', 'bb', 'ccc', 'dddd', JSON.stringify({ output: 'ok' }), 'after'].join('\n');
    expect(parseStdout(stdout, { lines: 2, bytes: 1024 })).toEqual({
      response: { success: true, output: 'ok', logs: [] },
      otherLines: ['a', 'bb'],
      dropped: { lines: 3, bytes: 'ccc\ndddd\n'.length + 'after'.length },
    });
    expect(parseStdout(stdout, { lines: 100, bytes: 4 })).toMatchObject({ otherLines: ['a', 'bb'], dropped: { lines: 3 } });
    expect(parseStdout('one long line', { lines: 100, bytes: 4 })).toEqual({ response: null, otherLines: [], dropped: { lines: 1, bytes: 13 } });
  });

  it('counts bytes, not characters', () => {
    expect(parseStdout('é\nab\n', { lines: 10, bytes: 2 })).toEqual({ response: null, otherLines: ['é'], dropped: { lines: 1, bytes: 3 } });
  });

  it('3,000,000 short lines and then the response: read in well under the time of one health poll', () => {
    const lines = 3_000_000;
    const stdout = `${'x\n'.repeat(lines)}${JSON.stringify({ success: true, output: { lines } })}\n`;
    const started = performance.now();
    const result = parseStdout(stdout);
    const elapsedMs = performance.now() - started;
    expect(result.response).toEqual({ success: true, output: { lines }, logs: [] });
    expect(result.otherLines).toHaveLength(1000);
    expect(result.dropped).toEqual({ lines: lines - 1000, bytes: 2 * (lines - 1000) });
    expect(elapsedMs).toBeLessThan(BOUNDED_MS);
  });

  it('a flood of lines that end with a brace is passed over without parsing each', () => {
    const stdout = `${JSON.stringify({ output: 'first' })}\n${'x}\n'.repeat(1_000_000)}`;
    const started = performance.now();
    const result = parseStdout(stdout);
    expect(performance.now() - started).toBeLessThan(BOUNDED_MS);
    expect(result.response).toEqual({ success: true, output: 'first', logs: [] });
    expect(result.dropped?.lines).toBe(1_000_000 - 1000);
  });
});

describe('normaliseResponse (SPEC §5)', () => {
  it('success: output (null when absent) and logs (empty when absent)', () => {
    expect(normaliseResponse({ success: true, output: [1, 2] })).toEqual({ success: true, output: [1, 2], logs: [] });
    expect(normaliseResponse({ success: true })).toEqual({ success: true, output: null, logs: [] });
  });

  it('without a success field, a response with no error succeeded', () => {
    expect(normaliseResponse({ output: 'x' })).toEqual({ success: true, output: 'x', logs: [] });
    expect(normaliseResponse({ output: 'x', error: null })).toMatchObject({ success: true });
  });

  it('without a success field, a response with an error failed', () => {
    expect(normaliseResponse({ error: 'boom' })).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR', message: 'boom' } });
  });

  it('a string error with error_code becomes {code, message}', () => {
    expect(normaliseResponse({ success: false, error: 'name is required', error_code: 'VALIDATION', logs: ['l'] })).toEqual({
      success: false,
      error: { code: 'VALIDATION', message: 'name is required' },
      status: null,
      logs: ['l'],
    });
  });

  it('a string error without error_code gets the code FUNCTION_ERROR', () => {
    expect(DEFAULT_FUNCTION_ERROR_CODE).toBe('FUNCTION_ERROR');
    expect(normaliseResponse({ success: false, error: 'boom' })).toEqual({
      success: false,
      error: { code: 'FUNCTION_ERROR', message: 'boom' },
      status: null,
      logs: [],
    });
  });

  it('an error object keeps code, message and details', () => {
    expect(normaliseResponse({ success: false, error: { code: 'NOT_FOUND', message: 'no such user', details: { id: 7 } } })).toEqual({
      success: false,
      error: { code: 'NOT_FOUND', message: 'no such user', details: { id: 7 } },
      status: null,
      logs: [],
    });
  });

  it('an error object without a code gets FUNCTION_ERROR, and a message all the same', () => {
    const response = normaliseResponse({ success: false, error: { message: 'bad' } });
    expect(response).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR', message: 'bad' } });
    const bare = normaliseResponse({ success: false, error: {} });
    expect(bare).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR', message: expect.any(String) } });
  });

  it('success false with no error at all is a failure with FUNCTION_ERROR', () => {
    expect(normaliseResponse({ success: false })).toMatchObject({ success: false, error: { code: 'FUNCTION_ERROR' }, status: null });
  });

  it.each([
    [400, 400],
    [404, 404],
    [422, 422],
    [599, 599],
    [399, null],
    [600, null],
    [200, null],
    [302, null],
    [404.5, null],
    ['404', null],
    [null, null],
  ])('error.status %p becomes HTTP status %p', (status, expected) => {
    expect(normaliseResponse({ success: false, error: { code: 'E', message: 'm', status } })).toMatchObject({ status: expected });
  });

  it('error.status is pulled out of the error body', () => {
    const response = normaliseResponse({ success: false, error: { code: 'E', message: 'm', status: 418 } });
    expect(response).toEqual({ success: false, error: { code: 'E', message: 'm' }, status: 418, logs: [] });
  });
});
