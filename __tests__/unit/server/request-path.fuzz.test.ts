import fc from 'fast-check';
import { AlyxError } from '../../../src/errors';
import { parseStdout } from '../../../src/protocol/protocol';
import { parseJsonObject, queryToInput } from '../../../src/server/body';
import { route } from '../../../src/server/routes';

/**
 * Property tests of the request path's pure parts: whatever arrives, each either gives a
 * usable value or refuses with an AlyxError whose code the HTTP layer maps; nothing else escapes.
 */

const RUNS = 2000;

const refusedWith = (work: () => unknown): string | null => {
  try {
    work();
    return null;
  } catch (error) {
    if (!(error instanceof AlyxError)) throw error;
    return error.code;
  }
};

/** JSON-ish text: valid documents, their truncations and mutations, and deep nesting. */
const jsonishText = fc.oneof(
  fc.json(),
  fc.json().map((text) => text.slice(0, Math.max(0, text.length - 1))),
  fc.string(),
  fc.fullUnicodeString(),
  fc.nat({ max: 3000 }).map((depth) => `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`),
  fc.constantFrom('{"__proto__": {"x": 1}}', '{"constructor": {"prototype": {}}}', '{}', '  ', '\ufeff{}'),
);

describe('request body parsing', () => {
  it('any bytes: an object, or 400 INVALID_JSON / INVALID_INPUT', () => {
    fc.assert(
      fc.property(fc.oneof(jsonishText.map((text) => Buffer.from(text)), fc.uint8Array({ maxLength: 256 }).map((bytes) => Buffer.from(bytes))), (body) => {
        const code = refusedWith(() => {
          const input = parseJsonObject(body);
          expect(typeof input === 'object' && input !== null && !Array.isArray(input)).toBe(true);
          JSON.stringify(input);
        });
        expect([null, 'INVALID_JSON', 'INVALID_INPUT']).toContain(code);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('query parsing', () => {
  it('any query string: an object of own string or string-array values that encodes to JSON', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.fullUnicodeString(), fc.webQueryParameters()), (query) => {
        const input = queryToInput(new URLSearchParams(query));
        expect(Object.getPrototypeOf(input)).toBe(Object.prototype);
        for (const key of Object.keys(input)) {
          const value = input[key];
          expect(typeof value === 'string' || (Array.isArray(value) && value.every((item) => typeof item === 'string'))).toBe(true);
        }
        expect(JSON.parse(JSON.stringify(input))).toEqual(input);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('routing', () => {
  const methods = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', '');
  const paths = fc.oneof(
    fc.webPath(),
    fc.string().map((text) => `/${text}`),
    fc.tuple(fc.constantFrom('/api/functions/', '/api/', '/api/functions', '/api/admin/', '/'), fc.fullUnicodeString()).map(([prefix, rest]) => prefix + rest),
    fc.tuple(fc.constantFrom('/api/functions/'), fc.webSegment(), fc.constantFrom('', '/', '/x', '%2F..', '/..')).map((parts) => parts.join('')),
  );

  it('any method and path: a handler, or NOT_FOUND / METHOD_NOT_ALLOWED with its Allow list', () => {
    fc.assert(
      fc.property(methods, paths, (method, pathname) => {
        try {
          const found = route(method, pathname);
          expect(typeof found.handler).toBe('function');
        } catch (error) {
          expect(error).toBeInstanceOf(AlyxError);
          expect(['NOT_FOUND', 'METHOD_NOT_ALLOWED']).toContain((error as AlyxError).code);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe("parsing a function's stdout", () => {
  const line = fc.oneof(fc.json(), fc.string(), fc.fullUnicodeString(), fc.constantFrom('{"success": false, "error": 42}', '{"error": null}', '{"success": "yes"}', '{}', '{"error": {"status": 700}}'));
  const stdout = fc.oneof(
    fc.array(line, { maxLength: 8 }).map((lines) => lines.join('\n')),
    fc.array(line, { maxLength: 8 }).map((lines) => lines.join('\r\n')),
    fc.fullUnicodeString(),
  );

  it('any output: a normalised response or none, never a throw', () => {
    fc.assert(
      fc.property(stdout, (text) => {
        const parsed = parseStdout(text);
        if (parsed.response === null) return;
        expect(Array.isArray(parsed.response.logs)).toBe(true);
        if (!parsed.response.success) {
          expect(typeof parsed.response.error.code).toBe('string');
          expect(typeof parsed.response.error.message).toBe('string');
          const status = parsed.response.status;
          expect(status === null || (Number.isInteger(status) && status >= 400 && status <= 599)).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
