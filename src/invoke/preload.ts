import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionPlan } from '../functions/entrypoint';
import type { FunctionDef } from '../functions/types';

/**
 * Node and python keep stdout open through their own teardown and the kernel's (about 10 ms
 * here) after the function's last line has run. alyx answers at end-of-file, so each gets a
 * small preload that ends stdout once no code of the function can write any more. `ahead`: the
 * process starts before its request (a warm pool's).
 */
export function argsWithPreload(runtime: FunctionDef['runtime'], plan: ExecutionPlan, ahead = false): readonly string[] {
  if (plan.exec !== 'interpreter') return plan.args;
  if (runtime === 'node') return ['--require', ahead ? NODE_PRELOAD_AHEAD : NODE_PRELOAD, ...plan.args];
  if (runtime === 'python') return [...plan.args.slice(0, -1), '-c', pythonPreloadText(), ...plan.args.slice(-1)];
  return plan.args;
}

/** The shims ship beside src/ and dist/ alike: code that runs inside a function's process, as files of its language. */
const SHIMS = path.resolve(__dirname, '..', '..', 'shims');
const NODE_PRELOAD = path.join(SHIMS, 'node-preload.cjs');
/** The folder holding alyx's python helper package (`from alyx import handler`), appended to PYTHONPATH. */
export const PYTHON_HELPER_DIR = path.join(SHIMS, 'python');
/** For a process started ahead of its request: it also compiles the path the request takes in while it waits. */
const NODE_PRELOAD_AHEAD = path.join(SHIMS, 'node-preload-warm.cjs');

let pythonPreload: string | undefined;

/** shims/python-preload.py, given to python with -c (read once). */
function pythonPreloadText(): string {
  pythonPreload ??= fs.readFileSync(path.join(SHIMS, 'python-preload.py'), 'utf8');
  return pythonPreload;
}
