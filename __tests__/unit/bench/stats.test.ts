import { medianDifference, percentile } from '../../../bench/stats';

/** n values spread evenly over [from, from + width). */
const spread = (n: number, from: number, width: number): number[] => Array.from({ length: n }, (_, i) => from + (width * i) / n);

describe('percentile', () => {
  it('takes the nearest rank, and is NaN for nothing', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 99)).toBe(4);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('medianDifference', () => {
  it('finds a clear shift, with an interval around it that excludes 0', () => {
    const result = medianDifference(spread(200, 100, 10), spread(200, 103, 10));
    expect(result.difference).toBeCloseTo(3, 5);
    expect(result.low).toBeGreaterThan(0);
    expect(result.low).toBeLessThanOrEqual(3);
    expect(result.high).toBeGreaterThanOrEqual(3);
  });

  it('gives an interval holding 0 when two small samples of a wide spread cannot be told apart', () => {
    const result = medianDifference(spread(40, 100, 40), spread(40, 100.5, 40));
    expect(result.low).toBeLessThan(0);
    expect(result.high).toBeGreaterThan(0);
  });

  it('is the same for the same data (a fixed seed), and NaN for an empty sample', () => {
    const a = spread(50, 10, 5);
    const b = spread(50, 11, 5);
    expect(medianDifference(a, b)).toEqual(medianDifference(a, b));
    expect(medianDifference([], b).low).toBeNaN();
  });
});
