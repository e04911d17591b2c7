import { exceedsDepth, MAX_JSON_DEPTH, parseInputText } from '../../../src/invoke/json-input';

const nested = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);

describe('parseInputText', () => {
  it('an object is the input; an empty text is {}', () => {
    expect(parseInputText('{"name": "World"}')).toEqual({ ok: true, value: { name: 'World' } });
    expect(parseInputText(' \n')).toEqual({ ok: true, value: {} });
  });

  it.each([
    ['[1]', 'an array'],
    ['null', 'null'],
    ['42', 'a number'],
    ['"text"', 'a string'],
  ])('%s is not an object: %s', (text, reason) => {
    expect(parseInputText(text)).toEqual({ ok: false, problem: 'not_object', reason });
  });

  it('text that is not JSON says why', () => {
    expect(parseInputText('{"a":')).toMatchObject({ ok: false, problem: 'not_json', reason: expect.any(String) });
  });

  it(`nesting up to ${MAX_JSON_DEPTH} levels is an input; one more is too deep`, () => {
    expect(parseInputText(`{"a": ${nested(MAX_JSON_DEPTH - 1)}}`).ok).toBe(true);
    expect(parseInputText(`{"a": ${nested(MAX_JSON_DEPTH)}}`)).toMatchObject({ ok: false, problem: 'too_deep' });
  });

  it('a million levels are refused without overflowing the stack', () => {
    expect(parseInputText(`{"a": ${nested(1_000_000)}}`)).toMatchObject({ ok: false, problem: 'too_deep' });
  });

  it('__proto__ stays an own key', () => {
    const parsed = parseInputText('{"__proto__": {"polluted": true}}');
    expect(parsed.ok && Object.keys(parsed.value)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('exceedsDepth', () => {
  it('counts arrays and objects, not scalars', () => {
    expect(exceedsDepth('text', 0)).toBe(false);
    expect(exceedsDepth({ a: { b: [1] } }, 3)).toBe(false);
    expect(exceedsDepth({ a: { b: [[1]] } }, 3)).toBe(true);
  });
});
