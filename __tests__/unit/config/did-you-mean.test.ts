import { closestMatch, editDistance } from '../../../src/config/did-you-mean';

describe('closestMatch', () => {
  const keys = ['path', 'timeout', 'memory_limit', 'max_output', 'concurrency', 'queue'];

  it.each([
    ['timeot', 'timeout'],
    ['timout', 'timeout'],
    ['Timeout', 'timeout'],
    ['max-output', 'max_output'],
    ['max_ouput', 'max_output'],
    ['concurency', 'concurrency'],
    ['paht', 'path'],
    ['memory-limit', 'memory_limit'],
  ])('%s -> %s', (typed, meant) => {
    expect(closestMatch(typed, keys)).toBe(meant);
  });

  it.each(['colour', 'retries', 'xyz', 'memory'])('%s: nothing close', (typed) => {
    expect(closestMatch(typed, keys)).toBeNull();
  });

  it('counts a swap of two neighbours as one edit', () => {
    expect(editDistance('paht', 'path')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });
});
