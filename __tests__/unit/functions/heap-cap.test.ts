import { heapWasExhausted, withHeapCap } from '../../../src/functions/heap-cap';

const MB = 1024 * 1024;

describe('withHeapCap', () => {
  it('adds --max-old-space-size equal to the cap in MB to NODE_OPTIONS', () => {
    expect(withHeapCap({ PATH: '/bin' }, 128 * MB)).toEqual({ PATH: '/bin', NODE_OPTIONS: '--max-old-space-size=128' });
  });

  it("keeps the function's own NODE_OPTIONS, and its own heap limit when it sets one", () => {
    expect(withHeapCap({ NODE_OPTIONS: '--enable-source-maps' }, 64 * MB).NODE_OPTIONS).toBe('--enable-source-maps --max-old-space-size=64');
    expect(withHeapCap({ NODE_OPTIONS: '--max-old-space-size=20' }, 64 * MB).NODE_OPTIONS).toBe('--max-old-space-size=20');
  });

  it('leaves the environment alone without a cap, and never goes below what V8 needs', () => {
    const env = { PATH: '/bin' };
    expect(withHeapCap(env, 0)).toBe(env);
    expect(withHeapCap(env, 1 * MB).NODE_OPTIONS).toBe('--max-old-space-size=16');
  });
});

describe('heapWasExhausted', () => {
  it("recognises node's fatal heap message", () => {
    expect(heapWasExhausted('\n<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n')).toBe(true);
    expect(heapWasExhausted('Error: boom\n    at main (index.js:1:1)\n')).toBe(false);
  });
});
