import path from 'node:path';
import type { AlyxConfig, Mode } from '../config/resolve';
import { RUNTIME_TABLE } from './runtimes';
import type { FunctionDef } from './types';

export type FunctionStatus = 'ready' | 'not_built' | 'not_executable' | 'runtime_missing' | 'invalid';

/** What one function runs in one mode, and whether it can. */
export interface ExecutionPlan {
  readonly status: FunctionStatus;
  /** What to do about a status other than ready; null when ready. */
  readonly message: string | null;
  readonly exec: 'interpreter' | 'direct';
  /** Whether the source entry or the build output runs. */
  readonly from: 'source' | 'output';
  /** The file that runs (source entry or build output); null when the function is invalid. */
  readonly file: string | null;
  /** Absolute path of the program to spawn; null when not ready. */
  readonly command: string | null;
  /** The interpreter as found on PATH, when it is a shim that `command` resolves; otherwise null. */
  readonly shim?: string | null;
  readonly args: readonly string[];
}

/** What planning needs from the world, so the decision itself stays a pure function. */
export interface PlanContext {
  readonly mode: Mode;
  readonly projectDir: string;
  readonly runtimes: AlyxConfig['runtimes'];
  findExecutable(command: string, baseDir: string): string | null;
  /** The real executable behind an interpreter found on PATH (a version manager's shim); default: itself. */
  realInterpreter?(found: string, selfPathArgs: readonly string[] | undefined): string;
  exists(file: string): boolean;
  isExecutable(file: string): boolean;
  /** file: URL of the TypeScript loader alyx ships, passed to node with --import. */
  readonly typeScriptLoader: string | null;
}

/**
 * SPEC §4: decides for (function, mode) whether it runs its source through the interpreter,
 * its build output through the interpreter, or its build output directly; and its status.
 */
export function planExecution(fn: FunctionDef, context: PlanContext): ExecutionPlan {
  if (fn.invalid !== null || fn.runtime === null) {
    return notReady('invalid', fn.invalid ?? 'the function is invalid', 'source', fn.entry);
  }
  const runsOutput = fn.runtime === 'binary' || (context.mode === 'production' && fn.build !== null);
  if (!runsOutput || !fn.build) return throughInterpreter(fn, fn.entry as string, 'source', context);

  const output = fn.build.output;
  const shown = path.relative(context.projectDir, output) || output;
  if (!context.exists(output)) {
    const what = fn.build.command
      ? `its build output ${shown} is missing: run "alyx build ${fn.name}"`
      : `its executable ${shown} is missing: put the prebuilt program there (alyx does not build a binary without build.command)`;
    return notReady('not_built', what, 'output', output);
  }
  if (context.isExecutable(output)) {
    return { status: 'ready', message: null, exec: 'direct', from: 'output', file: output, command: output, args: [] };
  }
  if (fn.runtime !== 'binary' && RUNTIME_TABLE[fn.runtime].outputExtensions.includes(path.extname(output))) {
    return throughInterpreter(fn, output, 'output', context);
  }
  return notReady('not_executable', `${shown} is not executable: chmod +x ${shown}`, 'output', output);
}

function throughInterpreter(
  fn: FunctionDef,
  file: string,
  from: 'source' | 'output',
  context: PlanContext,
): ExecutionPlan {
  const runtime = fn.runtime as Exclude<FunctionDef['runtime'], 'binary' | null>;
  const spec = RUNTIME_TABLE[runtime];
  const override = context.runtimes[runtime];
  const local = spec.localInterpreter ? path.join(fn.dir, spec.localInterpreter) : null;
  const command = local && context.isExecutable(local) ? local : (override?.command ?? spec.command);
  const found = context.findExecutable(command, context.projectDir);
  if (!found) {
    return notReady('runtime_missing', `${command} was not found: ${spec.installHint}`, from, file);
  }
  // Shims are a PATH matter (version managers): the function's own .venv interpreter runs as it is, wrapper script or not.
  const ownInterpreter = command === local;
  const resolved = ownInterpreter ? found : (context.realInterpreter?.(found, spec.selfPathArgs) ?? found);
  const args = [...(override?.args ?? spec.args)];
  if (spec.typeScriptExtensions?.includes(path.extname(file))) {
    if (!context.typeScriptLoader) {
      return notReady('runtime_missing', "alyx's TypeScript loader (tsx) is missing: reinstall alyx", from, file);
    }
    args.unshift('--import', context.typeScriptLoader);
  }
  args.push(spec.target === 'folder' ? '.' : file);
  const shim = resolved === found ? null : found;
  return { status: 'ready', message: null, exec: 'interpreter', from, file, command: resolved, args, ...(shim ? { shim } : {}) };
}

function notReady(
  status: Exclude<FunctionStatus, 'ready'>,
  message: string,
  from: 'source' | 'output',
  file: string | null,
): ExecutionPlan {
  return { status, message, exec: from === 'output' ? 'direct' : 'interpreter', from, file, command: null, args: [] };
}
