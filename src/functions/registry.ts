import fs from 'node:fs';
import type { AlyxConfig } from '../config/resolve';
import { FunctionNotReadyError } from '../errors';
import { discoverFunctions } from './discovery';
import { checkIngress } from './ingress-check';
import { readDotenv } from './dotenv';
import { planExecution, type ExecutionPlan } from './entrypoint';
import { ExecutableFinder, isExecutableFile } from './executables';
import { realInterpreter } from './interpreter-path';
import { findTypeScriptLoader } from './typescript-loader';
import type { FunctionDef } from './types';

export interface RegisteredFunction {
  readonly def: FunctionDef;
  readonly plan: ExecutionPlan;
}

/** FUNCTION_NOT_READY for a function that cannot run as planned, saying what to do; null when it is ready. */
export function notReadyError({ def, plan }: RegisteredFunction): FunctionNotReadyError | null {
  return plan.status === 'ready' ? null : new FunctionNotReadyError(def.name, plan.status, plan.message ?? 'it cannot run');
}

/** Everything one discovery pass found. Replaced whole on reload, never edited. */
export interface FunctionSnapshot {
  readonly functions: ReadonlyMap<string, RegisteredFunction>;
  /** The project's .env file, parsed; it feeds the functions' environment. */
  readonly dotenv: Readonly<Record<string, string>>;
}

/** Discovers the functions of `config` and plans what each runs in the config's mode. */
export function loadSnapshot(config: AlyxConfig, env: NodeJS.ProcessEnv = process.env): FunctionSnapshot {
  const finder = new ExecutableFinder(config.projectDir, env.PATH);
  const context = {
    mode: config.mode,
    projectDir: config.projectDir,
    runtimes: config.runtimes,
    findExecutable: (command: string, baseDir: string) => finder.find(command, baseDir),
    realInterpreter: (found: string, selfPathArgs: readonly string[] | undefined) => realInterpreter(found, selfPathArgs, config.projectDir),
    exists: (file: string) => fs.existsSync(file),
    isExecutable: isExecutableFile,
    typeScriptLoader: findTypeScriptLoader(),
  };
  const functions = new Map<string, RegisteredFunction>();
  for (const def of checkIngress(discoverFunctions(config.functions.path, env), { jwtConfigured: config.auth.jwt !== null })) {
    functions.set(def.name, { def, plan: planExecution(def, context) });
  }
  return { functions, dotenv: readDotenv(config.projectDir) };
}

/** The functions being served. A reload swaps the snapshot in one step; running invocations keep theirs. */
export class FunctionRegistry {
  #snapshot: FunctionSnapshot;
  readonly #load: () => FunctionSnapshot;

  constructor(load: () => FunctionSnapshot) {
    this.#load = load;
    this.#snapshot = load();
  }

  get snapshot(): FunctionSnapshot {
    return this.#snapshot;
  }

  get(name: string): RegisteredFunction | undefined {
    return this.#snapshot.functions.get(name);
  }

  list(): RegisteredFunction[] {
    return [...this.#snapshot.functions.values()];
  }

  /**
   * Re-discovers the functions; returns the previous snapshot so callers can report changes. A
   * function whose definition and plan did not change keeps its RegisteredFunction object, so
   * what is keyed on it (its spawn spec, its warm processes) carries over; a changed .env
   * changes every function.
   */
  reload(): FunctionSnapshot {
    const previous = this.#snapshot;
    const next = this.#load();
    const sameEnv = sameJson(previous.dotenv, next.dotenv);
    const functions = new Map<string, RegisteredFunction>();
    for (const [name, fn] of next.functions) {
      const before = previous.functions.get(name);
      functions.set(name, sameEnv && before && sameJson(before, fn) ? before : fn);
    }
    this.#snapshot = { functions, dotenv: next.dotenv };
    return previous;
  }
}

export interface SnapshotChanges {
  readonly added: string[];
  readonly removed: string[];
  readonly changed: string[];
}

/** Which functions a reload added, removed or changed (definition or what runs). */
export function diffSnapshots(previous: FunctionSnapshot, next: FunctionSnapshot): SnapshotChanges {
  const added: string[] = [];
  const changed: string[] = [];
  for (const [name, fn] of next.functions) {
    const before = previous.functions.get(name);
    if (!before) added.push(name);
    else if (before !== fn && !sameJson(before, fn)) changed.push(name);
  }
  const removed = [...previous.functions.keys()].filter((name) => !next.functions.has(name));
  return { added, removed, changed };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
