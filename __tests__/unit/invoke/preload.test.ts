import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionPlan } from '../../../src/functions/entrypoint';
import { WARM_PROCESS_VARIABLE, warmProcessEnv } from '../../../src/invoke/preload';

const plan = (exec: ExecutionPlan['exec']): ExecutionPlan => ({ status: 'ready', message: null, exec, from: 'source', file: 'index.js', command: '/usr/bin/node', args: ['index.js'] });

describe('warmProcessEnv', () => {
  it('marks a node process run by its interpreter, whose preload reads the mark', () => {
    expect(warmProcessEnv('node', plan('interpreter'))).toEqual({ [WARM_PROCESS_VARIABLE]: '1' });
  });

  it('adds nothing where no preload would take the mark away again', () => {
    expect(warmProcessEnv('node', plan('direct'))).toEqual({});
    for (const runtime of ['python', 'deno', 'bun', 'go', 'binary'] as const) expect(warmProcessEnv(runtime, plan('interpreter'))).toEqual({});
  });

  it('names the variable the node preload reads', () => {
    const preload = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'shims', 'node-preload.cjs'), 'utf8');
    expect(preload).toContain(`const WARM_PROCESS_VARIABLE = '${WARM_PROCESS_VARIABLE}';`);
  });
});
