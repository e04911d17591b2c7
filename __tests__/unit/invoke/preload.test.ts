import type { ExecutionPlan } from '../../../src/functions/entrypoint';
import { argsWithPreload } from '../../../src/invoke/preload';

const plan = (exec: ExecutionPlan['exec'], args = ['/app/index.js']): ExecutionPlan => ({ status: 'ready', message: null, exec, from: 'source', file: 'index.js', command: '/usr/bin/node', args });

describe('argsWithPreload', () => {
  it('node: the preload first; a process started ahead of its request gets the one that also warms its read path', () => {
    const now = argsWithPreload('node', plan('interpreter'));
    const ahead = argsWithPreload('node', plan('interpreter'), true);
    expect(now).toEqual(['--require', expect.stringMatching(/shims\/node-preload\.cjs$/), '/app/index.js']);
    expect(ahead).toEqual(['--require', expect.stringMatching(/shims\/node-preload-warm\.cjs$/), '/app/index.js']);
  });

  it('python: the preload as -c before the script, the same ahead or not', () => {
    const args = argsWithPreload('python', plan('interpreter', ['/app/index.py']));
    expect(args).toEqual(['-c', expect.stringContaining('def _alyx_preload():'), '/app/index.py']);
    expect(argsWithPreload('python', plan('interpreter', ['/app/index.py']), true)).toEqual(args);
  });

  it('adds nothing to what runs directly, nor to deno, bun or go', () => {
    expect(argsWithPreload('node', plan('direct', []))).toEqual([]);
    for (const runtime of ['deno', 'bun', 'go'] as const) expect(argsWithPreload(runtime, plan('interpreter'))).toEqual(['/app/index.js']);
  });
});
