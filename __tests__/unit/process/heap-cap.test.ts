import { heapWasExhausted, withHeapCap } from '../../../src/process/spawn';

const MB = 1024 * 1024;

describe('withHeapCap', () => {
  it('adds --max-old-space-size equal to the cap in MB for node (NODE_OPTIONS) and deno (DENO_V8_FLAGS)', () => {
    expect(withHeapCap({ PATH: '/bin' }, 128 * MB)).toEqual({
      PATH: '/bin',
      NODE_OPTIONS: '--max-old-space-size=128',
      DENO_V8_FLAGS: '--max-old-space-size=128',
    });
  });

  it("keeps the function's own flags, and its own heap limit when it sets one", () => {
    const env = withHeapCap({ NODE_OPTIONS: '--enable-source-maps', DENO_V8_FLAGS: '--max-old-space-size=20' }, 64 * MB);
    expect(env.NODE_OPTIONS).toBe('--enable-source-maps --max-old-space-size=64');
    expect(env.DENO_V8_FLAGS).toBe('--max-old-space-size=20');
    expect(withHeapCap({ DENO_V8_FLAGS: '--stack-size=2000' }, 64 * MB).DENO_V8_FLAGS).toBe('--stack-size=2000,--max-old-space-size=64');
  });

  it('leaves the environment alone without a cap, and never goes below what V8 needs', () => {
    const env = { PATH: '/bin' };
    expect(withHeapCap(env, 0)).toBe(env);
    expect(withHeapCap(env, 1 * MB).NODE_OPTIONS).toBe('--max-old-space-size=16');
  });
});

describe('heapWasExhausted', () => {
  it("recognises node's and deno's fatal heap messages", () => {
    expect(heapWasExhausted('\n<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n')).toBe(true);
    expect(heapWasExhausted('# Fatal JavaScript out of memory: Reached heap limit\n')).toBe(true);
    expect(heapWasExhausted('Error: boom\n    at main (index.js:1:1)\n')).toBe(false);
  });
});
