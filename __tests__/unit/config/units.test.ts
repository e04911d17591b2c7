import { parseDuration, parseMegabytes, parseSize } from '../../../src/config/units';

const KB = 1024;
const MB = 1024 ** 2;
const GB = 1024 ** 3;

describe('parseSize (SPEC §2: 512kb, 6mb, 1gb in powers of 1024, or bytes)', () => {
  it.each<[string | number, number]>([
    ['512kb', 512 * KB],
    ['6mb', 6 * MB],
    ['1gb', GB],
    ['6MB', 6 * MB],
    ['1.5mb', 1.5 * MB],
    [' 6 mb ', 6 * MB],
    ['100b', 100],
    ['1024', 1024],
    [2048, 2048],
    [0, 0],
    ['0', 0],
  ])('%p is %p bytes', (value, bytes) => {
    expect(parseSize(value)).toBe(bytes);
  });

  it.each<string | number>(['6 potatoes', 'mb', '', '-1', '1tb', '6m', -1, Number.NaN, Number.POSITIVE_INFINITY])(
    '%p is not a size',
    (value) => {
      expect(parseSize(value)).toBeUndefined();
    },
  );
});

describe('parseDuration (SPEC §2: 500ms, 30s, 2m, or seconds) in milliseconds', () => {
  it.each<[string | number, number]>([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['30S', 30_000],
    ['1.5s', 1_500],
    ['45', 45_000],
    [45, 45_000],
    [0.5, 500],
    [0, 0],
  ])('%p is %p ms', (value, ms) => {
    expect(parseDuration(value)).toBe(ms);
  });

  it.each<string | number>(['forever', 's', '', '-5s', '5 minutes', '10d', -1, Number.NaN])('%p is not a duration', (value) => {
    expect(parseDuration(value)).toBeUndefined();
  });
});

describe('parseMegabytes (memory caps: a plain number is MB, a string is a size)', () => {
  it.each<[string | number, number]>([
    [128, 128 * MB],
    [0, 0],
    ['256mb', 256 * MB],
    ['1gb', GB],
    ['512kb', 512 * KB],
  ])('%p is %p bytes', (value, bytes) => {
    expect(parseMegabytes(value)).toBe(bytes);
  });

  it.each<string | number>(['lots', -1])('%p is not a memory size', (value) => {
    expect(parseMegabytes(value)).toBeUndefined();
  });
});
