import { parseJsonObject, queryToInput } from '../../../src/server/body';
import { BodyBudget } from '../../../src/server/body-budget';

const codeOf = (work: () => unknown): string | undefined => {
  try {
    work();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
};

describe('parseJsonObject', () => {
  it('a JSON object is the input; an empty body is {}', () => {
    expect(parseJsonObject(Buffer.from('{"a": 1}'))).toEqual({ a: 1 });
    expect(parseJsonObject(Buffer.alloc(0))).toEqual({});
  });

  it.each([
    ['not JSON', Buffer.from('{nope'), 'INVALID_JSON'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]), 'INVALID_JSON'],
    ['an array', Buffer.from('[1, 2]'), 'INVALID_INPUT'],
    ['nested too deeply', Buffer.from(`{"a": ${'['.repeat(600)}${']'.repeat(600)}}`), 'INVALID_INPUT'],
  ])('%s: %s', (_, body, code) => {
    expect(codeOf(() => parseJsonObject(body))).toBe(code);
  });

  it('valid multi-byte UTF-8 passes', () => {
    expect(parseJsonObject(Buffer.from('{"name": "Zoë 🌍"}'))).toEqual({ name: 'Zoë 🌍' });
  });
});

describe('queryToInput', () => {
  it('a repeated key gives an array; a single one a string', () => {
    expect(queryToInput(new URLSearchParams('a=1&a=2&b=x'))).toEqual({ a: ['1', '2'], b: 'x' });
  });

  it('__proto__ and constructor are own keys, and nothing is polluted', () => {
    const input = queryToInput(new URLSearchParams('__proto__=a&constructor=b'));
    expect(Object.keys(input)).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(input)).toBe(Object.prototype);
    expect(JSON.stringify(input)).toBe('{"__proto__":"a","constructor":"b"}');
  });
});

describe('BodyBudget', () => {
  it('takes up to its limit, refuses past it, and takes again once given back', () => {
    const budget = new BodyBudget(100);
    expect(budget.take(60)).toBe(true);
    expect(budget.take(50)).toBe(false);
    expect(budget.heldBytes).toBe(60);
    budget.giveBack(60);
    expect(budget.take(100)).toBe(true);
  });

  it('holds eight bodies of the largest size, at least 64 MiB', () => {
    expect(BodyBudget.forMaxBody(1024).limitBytes).toBe(64 * 1024 * 1024);
    expect(BodyBudget.forMaxBody(16 * 1024 * 1024).limitBytes).toBe(128 * 1024 * 1024);
  });
});
