import { LineSplitter } from '../../src/line-splitter';

const collect = (stopAt = Number.POSITIVE_INFINITY, maxLine?: number) => {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => {
    if (lines.length >= stopAt) return false;
    lines.push(line);
    return true;
  }, maxLine);
  return { lines, splitter };
};

describe('LineSplitter', () => {
  it('joins lines across chunks and drops the newline and a carriage return before it', () => {
    const { lines, splitter } = collect();
    expect(splitter.push('one\r\ntw')).toBeNull();
    expect(splitter.push('o\nthree')).toBeNull();
    expect(lines).toEqual(['one', 'two']);
    expect(splitter.flush()).toBeNull();
    expect(lines).toEqual(['one', 'two', 'three']);
  });

  it('hands back the unsplit rest once onLine says stop', () => {
    const { lines, splitter } = collect(1);
    expect(splitter.push('a\nb\nc')).toBe('b\nc');
    expect(lines).toEqual(['a']);
    expect(splitter.flush()).toBeNull();
  });

  it('passes a line longer than maxLine on in pieces', () => {
    const { lines, splitter } = collect(Number.POSITIVE_INFINITY, 4);
    splitter.push('abcdefgh');
    expect(lines).toEqual(['abcdefgh']);
    splitter.push('xy\n');
    expect(lines).toEqual(['abcdefgh', 'xy']);
  });
});
